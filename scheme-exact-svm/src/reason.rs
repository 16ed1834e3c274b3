//! Reason codes of `exact` on Solana (TypeScript and Python `exact/svm`), then ours for rules the
//! references do not enforce (threat-model.md).

x402_core::reason_codes! {
    // exact / SVM (TypeScript, Python)
    FEE_PAYER_NOT_MANAGED_BY_FACILITATOR = "fee_payer_not_managed_by_facilitator";
    TRANSACTION_SIMULATION_FAILED = "transaction_simulation_failed";
    INVALID_EXACT_SVM_PAYLOAD_MISSING_FEE_PAYER = "invalid_exact_svm_payload_missing_fee_payer";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_COULD_NOT_BE_DECODED = "invalid_exact_svm_payload_transaction_could_not_be_decoded";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_LENGTH = "invalid_exact_svm_payload_transaction_instructions_length";
    INVALID_EXACT_SVM_PAYLOAD_TRANSACTION_INSTRUCTIONS_COMPUTE_LIMIT_INSTRUCTION = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction";
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
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_OPTIONAL_INSTRUCTION = "invalid_exact_svm_payload_unknown_optional_instruction";
    INVALID_EXACT_SVM_PAYLOAD_MEMO_COUNT = "invalid_exact_svm_payload_memo_count";
    INVALID_EXACT_SVM_PAYLOAD_MEMO_MISMATCH = "invalid_exact_svm_payload_memo_mismatch";
    // Our additions (threat-model.md rules the references do not enforce)
    FEE_PAYER_IN_INSTRUCTION_ACCOUNTS = "fee_payer_in_instruction_accounts";
    FEE_PAYER_MISMATCH = "fee_payer_mismatch";
    TOO_MANY_SIGNATURES = "too_many_signatures";
    ADDRESS_LOOKUP_TABLES_NOT_SUPPORTED = "address_lookup_tables_not_supported";
    UNSUPPORTED_TOKEN_EXTENSION = "unsupported_token_extension";
    INVALID_EXACT_SVM_PAYLOAD_SIGNATURE = "invalid_exact_svm_payload_signature";
    INVALID_EXACT_SVM_PAYLOAD_COMPUTE_LIMIT_TOO_HIGH = "invalid_exact_svm_payload_compute_limit_too_high";
    INVALID_EXACT_SVM_PAYLOAD_PRIORITY_FEE_TOO_HIGH = "invalid_exact_svm_payload_priority_fee_too_high";
    INVALID_EXACT_SVM_PAYLOAD_DURABLE_NONCE = "invalid_exact_svm_payload_durable_nonce";
    // exact / SVM v2 (TypeScript 2.27: a seventh instruction is allowed)
    INVALID_EXACT_SVM_PAYLOAD_UNKNOWN_SEVENTH_INSTRUCTION = "invalid_exact_svm_payload_unknown_seventh_instruction";
}
