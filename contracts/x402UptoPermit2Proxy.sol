// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.17;

import {ISignatureTransfer} from "permit2/src/interfaces/ISignatureTransfer.sol";
import {x402Permit2ProxyBase} from "./x402Permit2ProxyBase.sol";

/// @title x402 `upto` payments through Permit2 (x402-spec.md §3.3).
/// @notice The buyer signs a maximum (`permitted.amount`); the facilitator named in the witness
///         settles any non-zero amount up to it, once (the Permit2 nonce is consumed by the first
///         settlement). Only that facilitator may submit the settlement.
contract x402UptoPermit2Proxy is x402Permit2ProxyBase {
    /// @notice The witness type tail Permit2 appends to `PermitWitnessTransferFrom(...,`.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

    /// @notice EIP-712 type hash of the witness struct.
    bytes32 public constant WITNESS_TYPEHASH =
        keccak256("Witness(address to,address facilitator,uint256 validAfter)");

    /// @notice The settlement amount is above the signed maximum.
    error AmountExceedsPermitted();
    /// @notice The caller is not the facilitator the buyer named in the witness.
    error UnauthorizedFacilitator();

    /// @notice What the buyer binds besides the permit: recipient, settling facilitator and the
    ///         earliest settle time.
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    /// @notice Settles `amount` (at most the permitted maximum) of a payment whose payer has
    ///         already approved Permit2 for the token.
    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _check(permit, amount, owner, witness);
        _transfer(permit, amount, owner, witness, signature);
        emit Settled();
    }

    /// @notice Settles `amount` after submitting the payer's EIP-2612 permit for Permit2.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        if (permit2612.value != permit.permitted.amount) revert Permit2612AmountMismatch();
        _check(permit, amount, owner, witness);
        _tryPermit2612(permit.permitted.token, owner, permit2612);
        _transfer(permit, amount, owner, witness, signature);
        emit SettledWithPermit();
    }

    function _check(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness
    ) private view {
        if (msg.sender != witness.facilitator) revert UnauthorizedFacilitator();
        if (amount > permit.permitted.amount) revert AmountExceedsPermitted();
        _requireSettleable(amount, owner, witness.to, witness.validAfter);
    }

    function _transfer(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        bytes32 witnessHash =
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter));
        _pull(permit, amount, owner, witness.to, witnessHash, WITNESS_TYPE_STRING, signature);
    }
}
