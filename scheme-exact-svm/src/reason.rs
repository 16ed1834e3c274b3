//! Reason codes of `exact` on Solana (the official `@x402/svm` strings, `exact/facilitator`),
//! then ours for rules the reference does not enforce (docs/reasons.md).

use x402_core::Reason;

x402_core::reason_codes! {
    // exact / SVM
    /// The payload's or the requirements' scheme is not `exact`.
    INVALID_EXACT_SVM_UNSUPPORTED_SCHEME = "invalid_exact_svm_unsupported_scheme";
    /// The payload's network is not the requirements'.
    INVALID_EXACT_SVM_NETWORK_MISMATCH = "invalid_exact_svm_network_mismatch";
    FEE_PAYER_NOT_MANAGED_BY_FACILITATOR = "invalid_exact_svm_fee_payer_not_managed_by_facilitator";
    /// Account 0 (the fee payer) is not `extra.feePayer`.
    FEE_PAYER_MISMATCH = "invalid_exact_svm_fee_payer_mismatch";
    TRANSACTION_SIMULATION_FAILED = "invalid_exact_svm_transaction_simulation_failed";
    /// The settlement transaction failed (on chain, or it could not be sent).
    INVALID_EXACT_SVM_TRANSACTION_FAILED = "invalid_exact_svm_transaction_failed";
    INVALID_EXACT_SVM_PAYLOAD_MISSING_FEE_PAYER = "invalid_exact_svm_payload_missing_fee_payer";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED = "invalid_exact_svm_payload_transaction_could_not_be_decoded";
    /// A signature the transaction requires is missing or does not verify.
    INVALID_EXACT_SVM_PAYLOAD_SIGNATURE = "invalid_exact_svm_payload_signature_invalid";
    /// The transaction requires more signatures than the facilitator accepts.
    TOO_MANY_SIGNATURES = "invalid_exact_svm_payload_excessive_signers";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH = "invalid_exact_svm_payload_transaction_instructions_length";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction";
    /// The compute-unit limit is above the facilitator's maximum.
    INVALID_EXACT_SVM_PAYLOAD_COMPUTE_LIMIT_TOO_HIGH = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION = "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_PRICE_INSTRUCTION_TOO_HIGH = "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high";
    INVALID_EXACT_SVM_PAYLOAD_NO_TRANSFER_INSTRUCTION = "invalid_exact_svm_payload_no_transfer_instruction";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_FEE_PAYER_TRANSFERRING_FUNDS = "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds";
    INVALID_EXACT_SVM_PAYLOAD_MINT_MISMATCH = "invalid_exact_svm_payload_mint_mismatch";
    INVALID_EXACT_SVM_PAYLOAD_RECIPIENT_MISMATCH = "invalid_exact_svm_payload_recipient_mismatch";
    INVALID_EXACT_SVM_PAYLOAD_AMOUNT_MISMATCH = "invalid_exact_svm_payload_amount_mismatch";
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FOURTH_INSTRUCTION = "invalid_exact_svm_payload_unknown_fourth_instruction";
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_FIFTH_INSTRUCTION = "invalid_exact_svm_payload_unknown_fifth_instruction";
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SIXTH_INSTRUCTION = "invalid_exact_svm_payload_unknown_sixth_instruction";
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION = "invalid_exact_svm_payload_unknown_seventh_instruction";
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_OPTIONAL_INSTRUCTION = "invalid_exact_svm_payload_unknown_optional_instruction";
    INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT = "invalid_exact_svm_payload_memo_count";
    INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH = "invalid_exact_svm_payload_memo_mismatch";
    // exact / SVM, the reference's smart-wallet checks: the same conditions, checked on every
    // transaction here
    /// A fee payer appears in an instruction's accounts.
    FEE_PAYER_IN_INSTRUCTION_ACCOUNTS = "invalid_exact_svm_smart_wallet_fee_payer_not_isolated";
    /// The transaction uses address lookup tables, which this facilitator does not resolve.
    ADDRESS_LOOKUP_TABLES_NOT_SUPPORTED = "invalid_exact_svm_smart_wallet_alt_resolution_not_available";
    // Our additions (docs/reasons.md)
    UNSUPPORTED_TOKEN_EXTENSION = "unsupported_token_extension";
    INVALID_EXACT_SVM_PAYLOAD_PRIORITY_FEE_TOO_HIGH = "invalid_exact_svm_payload_priority_fee_too_high";
    INVALID_EXACT_SVM_PAYLOAD_DURABLE_NONCE = "invalid_exact_svm_payload_durable_nonce";
    // The v1 mechanism's spellings (see `V1_SPELLINGS`)
    V1_FEE_PAYER_NOT_MANAGED_BY_FACILITATOR = "fee_payer_not_managed_by_facilitator";
    V1_TRANSACTION_SIMULATION_FAILED = "transaction_simulation_failed";
}

/// The conditions the reference's v1 `exact` Solana mechanism (`ExactSvmSchemeV1`) answers with
/// another string than its v2 one: (current string, v1 string).
pub const V1_SPELLINGS: &[(Reason, Reason)] = &[
    (
        INVALID_EXACT_SVM_UNSUPPORTED_SCHEME,
        Reason::UNSUPPORTED_SCHEME,
    ),
    (INVALID_EXACT_SVM_NETWORK_MISMATCH, Reason::NETWORK_MISMATCH),
    (
        FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
        V1_FEE_PAYER_NOT_MANAGED_BY_FACILITATOR,
    ),
    (
        TRANSACTION_SIMULATION_FAILED,
        V1_TRANSACTION_SIMULATION_FAILED,
    ),
    (
        INVALID_EXACT_SVM_TRANSACTION_FAILED,
        Reason::TRANSACTION_FAILED,
    ),
];
