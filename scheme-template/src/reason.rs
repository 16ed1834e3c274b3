//! The reason codes this scheme adds to the shared vocabulary (`x402_core::Reason`'s constants):
//! a scheme crate defines its own here, without editing `x402-core`, and they join the build's
//! one list (`x402_core::reason::ReasonCode::all`) that the workspace's golden test pins. Name
//! them as the references do: `invalid_<scheme>_<namespace>_payload_<what>`.

x402_core::reason_codes! {
    /// The transfer pays someone other than the requirements' `payTo`.
    INVALID_EXACT_TOY_PAYLOAD_RECIPIENT_MISMATCH = "invalid_exact_toy_payload_recipient_mismatch";
    /// The transfer's amount is not exactly the requirements' `amount`.
    INVALID_EXACT_TOY_PAYLOAD_AMOUNT_MISMATCH = "invalid_exact_toy_payload_amount_mismatch";
    /// The signature is not the payer's over this transfer on this network.
    INVALID_EXACT_TOY_PAYLOAD_SIGNATURE = "invalid_exact_toy_payload_signature";
    /// The transfer's nonce was already used by a settled transfer of the same payer.
    INVALID_EXACT_TOY_NONCE_ALREADY_USED = "invalid_exact_toy_nonce_already_used";
}
