//! Solidity bindings only the tests need: what the x402 Permit2 proxies expose beyond the calls
//! the facilitator makes, and the ERC-1271 test wallet with its CREATE2 (ERC-6492) factory.
//!
//! The EIP-712 structs, the proxies' calls, errors and events, and Permit2's errors are
//! `x402_evm::abi`'s (re-exported by [`super`]); tests use the facilitator's own bindings.

#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol! {
    #![sol(all_derives)]

    /// What both `contracts/x402ExactPermit2Proxy.sol` and `contracts/x402UptoPermit2Proxy.sol`
    /// expose beyond `x402_evm::abi::permit2::{IExactPermit2Proxy, IUptoPermit2Proxy}`: the
    /// witness type getters, the logs of a failed EIP-2612 permit, and the reentrancy guard.
    #[sol(rpc)]
    interface IX402ProxyExtras {
        function WITNESS_TYPE_STRING() external view returns (string);
        function WITNESS_TYPEHASH() external view returns (bytes32);

        event EIP2612PermitFailedWithReason(address indexed token, address indexed owner, string reason);
        event EIP2612PermitFailedWithPanic(address indexed token, address indexed owner, uint256 errorCode);
        event EIP2612PermitFailedWithData(address indexed token, address indexed owner, bytes data);

        error ReentrancyGuardReentrantCall();
    }

    /// `contracts/test/SmartWallet.sol`: an ERC-1271 wallet with one EOA owner.
    #[sol(rpc)]
    interface ISmartWallet {
        function owner() external view returns (address);
        function signaturesDisabled() external view returns (bool);
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
        function execute(address target, bytes data) external returns (bytes result);
        function setSignaturesDisabled(bool disabled) external;

        event Executed(address indexed target, bytes data);
        event SignaturesDisabled(bool disabled);

        error NotOwner();
        error CallFailed(bytes data);
    }

    /// `contracts/test/WalletFactory.sol`: CREATE2 factory of [`ISmartWallet`]s (ERC-6492
    /// factory).
    #[sol(rpc)]
    interface IWalletFactory {
        function deploy(address owner, bytes32 salt) external returns (address wallet);
        function predict(address owner, bytes32 salt) external view returns (address);

        event WalletDeployed(address indexed wallet, address indexed owner, bytes32 salt);

        error UnexpectedAddress(address deployed, address predicted);
    }
}
