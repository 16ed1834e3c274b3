// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.17;

import {ISignatureTransfer} from "permit2/src/interfaces/ISignatureTransfer.sol";
import {x402Permit2ProxyBase} from "./x402Permit2ProxyBase.sol";

/// @title x402 `exact` payments through Permit2 (x402-spec.md §3.2).
/// @notice Transfers exactly the signed `permitted.amount` from the buyer to the recipient the buyer
///         signed in the witness. Anyone may submit the settlement; the signature fixes everything
///         that matters (token, amount, recipient, time window, single use via the Permit2 nonce).
contract x402ExactPermit2Proxy is x402Permit2ProxyBase {
    /// @notice The witness type tail Permit2 appends to `PermitWitnessTransferFrom(...,`.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    /// @notice EIP-712 type hash of the witness struct.
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");

    /// @notice What the buyer binds besides the permit: the recipient and the earliest settle time.
    struct Witness {
        address to;
        uint256 validAfter;
    }

    /// @notice Settles a payment whose payer has already approved Permit2 for the token.
    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _requireSettleable(permit.permitted.amount, owner, witness.to, witness.validAfter);
        _transfer(permit, owner, witness, signature);
        emit Settled();
    }

    /// @notice Settles a payment after submitting the payer's EIP-2612 permit for Permit2.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        if (permit2612.value != permit.permitted.amount) revert Permit2612AmountMismatch();
        _requireSettleable(permit.permitted.amount, owner, witness.to, witness.validAfter);
        _tryPermit2612(permit.permitted.token, owner, permit2612);
        _transfer(permit, owner, witness, signature);
        emit SettledWithPermit();
    }

    /// @dev Moves the full permitted amount; callers have run `_requireSettleable`.
    function _transfer(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        bytes32 witnessHash = keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter));
        _pull(permit, permit.permitted.amount, owner, witness.to, witnessHash, WITNESS_TYPE_STRING, signature);
    }
}
