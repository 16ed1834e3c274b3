//! Reason codes of `upto` on EVM (the official `@x402/evm` strings); the Permit2 codes are
//! `x402_evm::reason`'s.

x402_core::reason_codes! {
    // upto / EVM
    INVALID_UPTO_EVM_SCHEME = "invalid_upto_evm_scheme";
    INVALID_UPTO_EVM_NETWORK_MISMATCH = "invalid_upto_evm_network_mismatch";
    INVALID_UPTO_EVM_PAYLOAD_SETTLEMENT_EXCEEDS_AMOUNT = "invalid_upto_evm_payload_settlement_exceeds_amount";
    /// An `upto` settlement transaction reverted.
    INVALID_UPTO_EVM_TRANSACTION_FAILED = "invalid_upto_evm_transaction_failed";
    UPTO_AMOUNT_EXCEEDS_PERMITTED = "upto_amount_exceeds_permitted";
    UPTO_UNAUTHORIZED_FACILITATOR = "upto_unauthorized_facilitator";
    UPTO_FACILITATOR_MISMATCH = "upto_facilitator_mismatch";
}
