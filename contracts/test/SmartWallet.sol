// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.17;

/// @title Minimal ERC-1271 smart wallet for tests (threat-model.md S34, S35).
/// @notice One EOA owner. `isValidSignature` accepts a 65-byte ECDSA signature of the owner over
///         the given hash, as is (no wallet-specific re-hashing), so a signature the owner makes for
///         Permit2 or EIP-3009 validates for the wallet. The owner can switch validation off to
///         model a wallet whose answer flips between verification and settlement.
contract SmartWallet {
    /// @notice ERC-1271 "valid" answer: `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`.
    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    /// @notice ERC-1271 "invalid" answer.
    bytes4 internal constant ERC1271_INVALID = 0xffffffff;
    /// @dev secp256k1 order / 2: larger `s` values are the malleable twin and are refused.
    uint256 internal constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The EOA whose signatures this wallet accepts and who may call `execute`.
    address public immutable owner;
    /// @notice When true, `isValidSignature` rejects every signature.
    bool public signaturesDisabled;

    /// @notice The caller is not the owner.
    error NotOwner();
    /// @notice The call made by `execute` reverted with `data`.
    error CallFailed(bytes data);

    /// @notice `execute` called `target` with `data`.
    event Executed(address indexed target, bytes data);
    /// @notice Signature validation was switched off (`true`) or on (`false`).
    event SignaturesDisabled(bool disabled);

    constructor(address owner_) {
        owner = owner_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    receive() external payable {}

    /// @notice ERC-1271: `0x1626ba7e` iff `signature` is the owner's ECDSA signature over `hash`
    ///         and validation is switched on; `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signaturesDisabled || owner == address(0)) return ERC1271_INVALID;
        return _recover(hash, signature) == owner ? ERC1271_MAGIC : ERC1271_INVALID;
    }

    /// @notice Calls `target` with `data` from the wallet (e.g. `token.approve(Permit2, …)`).
    function execute(address target, bytes calldata data) external onlyOwner returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) revert CallFailed(result);
        emit Executed(target, data);
    }

    /// @notice Switches signature validation off (`true`) or back on (`false`).
    function setSignaturesDisabled(bool disabled) external onlyOwner {
        signaturesDisabled = disabled;
        emit SignaturesDisabled(disabled);
    }

    /// @dev The signer of a 65-byte `r ‖ s ‖ v` signature (v 27/28, or 0/1), or zero when the
    ///      signature is malformed, malleable or does not recover.
    function _recover(bytes32 hash, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > HALF_ORDER) return address(0);
        return ecrecover(hash, v, r, s);
    }
}
