// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.17;

import {ISignatureTransfer} from "permit2/src/interfaces/ISignatureTransfer.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title Shared plumbing of the x402 Permit2 proxies (x402-spec.md §3.2, §3.3).
/// @notice The proxy is the Permit2 `spender` a buyer signs for. The buyer's signature also covers a
///         witness (at least the recipient and the earliest settle time), so whoever submits the
///         settlement can neither redirect the funds nor settle early.
/// @dev Written for placement by `anvil_setCode` as well as for a normal deployment: the contract
///      has no constructor and no immutables, so its runtime code alone is the whole contract.
///      The reentrancy flag lives in ordinary storage and treats the initial zero as "idle".
abstract contract x402Permit2ProxyBase {
    /// @notice Uniswap's canonical Permit2 (same address on every chain).
    ISignatureTransfer public constant PERMIT2 = ISignatureTransfer(0x000000000022D473030F116dDEE9F6B43aC78BA3);

    /// @notice The EIP-2612 permit a buyer may attach so that the token grants Permit2 an allowance
    ///         in the same transaction (`eip2612GasSponsoring`).
    struct EIP2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    /// @notice A payment was transferred by `settle`.
    event Settled();
    /// @notice A payment was transferred by `settleWithPermit`.
    event SettledWithPermit();
    /// @notice The attached EIP-2612 permit reverted with `Error(string)`; settlement went on.
    event EIP2612PermitFailedWithReason(address indexed token, address indexed owner, string reason);
    /// @notice The attached EIP-2612 permit reverted with `Panic(uint256)`; settlement went on.
    event EIP2612PermitFailedWithPanic(address indexed token, address indexed owner, uint256 errorCode);
    /// @notice The attached EIP-2612 permit reverted with other data; settlement went on.
    event EIP2612PermitFailedWithData(address indexed token, address indexed owner, bytes data);

    /// @notice The amount to transfer is zero.
    error InvalidAmount();
    /// @notice The payer (`owner`) is the zero address.
    error InvalidOwner();
    /// @notice The recipient (`witness.to`) is the zero address.
    error InvalidDestination();
    /// @notice `block.timestamp` is before `witness.validAfter`.
    error PaymentTooEarly();
    /// @notice The EIP-2612 permit's value differs from the Permit2 permitted amount.
    error Permit2612AmountMismatch();
    /// @notice A settle function was entered again while one was running.
    error ReentrancyGuardReentrantCall();

    /// @dev Values of `_entered`. Zero (fresh storage, e.g. after `anvil_setCode`) counts as idle;
    ///      after the first call the slot holds `_IDLE`, which keeps later writes cheap.
    uint256 private constant _IDLE = 1;
    uint256 private constant _BUSY = 2;
    uint256 private _entered;

    modifier nonReentrant() {
        if (_entered == _BUSY) revert ReentrancyGuardReentrantCall();
        _entered = _BUSY;
        _;
        _entered = _IDLE;
    }

    /// @dev Checks every proxy performs before moving funds.
    function _requireSettleable(uint256 amount, address owner, address to, uint256 validAfter) internal view {
        if (amount == 0) revert InvalidAmount();
        if (owner == address(0)) revert InvalidOwner();
        if (to == address(0)) revert InvalidDestination();
        if (block.timestamp < validAfter) revert PaymentTooEarly();
    }

    /// @dev Moves `amount` of `permit.permitted.token` from `owner` to `to` through Permit2, which
    ///      checks the signature over the permit, this contract as spender and the witness.
    function _pull(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        address to,
        bytes32 witnessHash,
        string memory witnessTypeString,
        bytes calldata signature
    ) internal {
        PERMIT2.permitWitnessTransferFrom(
            permit,
            ISignatureTransfer.SignatureTransferDetails({to: to, requestedAmount: amount}),
            owner,
            witnessHash,
            witnessTypeString,
            signature
        );
    }

    /// @dev Submits the buyer's EIP-2612 permit granting Permit2 an allowance. A failure (for
    ///      example a permit already submitted by someone else) is only logged: if the allowance is
    ///      there anyway the transfer still succeeds, otherwise Permit2's transfer reverts.
    function _tryPermit2612(address token, address owner, EIP2612Permit calldata p) internal {
        try IERC20Permit(token).permit(owner, address(PERMIT2), p.value, p.deadline, p.v, p.r, p.s) {}
        catch Error(string memory reason) {
            emit EIP2612PermitFailedWithReason(token, owner, reason);
        } catch Panic(uint256 errorCode) {
            emit EIP2612PermitFailedWithPanic(token, owner, errorCode);
        } catch (bytes memory data) {
            emit EIP2612PermitFailedWithData(token, owner, data);
        }
    }
}
