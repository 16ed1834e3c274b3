// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.17;

import {SmartWallet} from "./SmartWallet.sol";

/// @title CREATE2 factory for `SmartWallet`, the "factory" of ERC-6492 test signatures.
/// @notice `predict` gives a wallet's address before it exists (the counterfactual signer);
///         `deploy` creates it there. `deploy` is idempotent, as ERC-6492 expects of factory calls
///         that a verifier may replay: for an existing wallet it returns the address and does
///         nothing else.
contract WalletFactory {
    /// @notice A wallet for `owner` was created at `wallet` with `salt`.
    event WalletDeployed(address indexed wallet, address indexed owner, bytes32 salt);

    /// @notice CREATE2 produced another address than `predict` (cannot happen).
    error UnexpectedAddress(address deployed, address predicted);

    /// @notice Creates (once) the wallet of `owner` for `salt` and returns its address.
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = predict(owner, salt);
        if (wallet.code.length != 0) return wallet;
        address deployed = address(new SmartWallet{salt: salt}(owner));
        if (deployed != wallet) revert UnexpectedAddress(deployed, wallet);
        emit WalletDeployed(wallet, owner, salt);
    }

    /// @notice The address `deploy(owner, salt)` creates the wallet at.
    function predict(address owner, bytes32 salt) public view returns (address) {
        bytes32 initCodeHash = keccak256(abi.encodePacked(type(SmartWallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }
}
