//! Reason codes of `exact` on EVM (TypeScript `exact/facilitator/errors.ts`); the Permit2 codes
//! are `x402_evm::reason`'s.

x402_core::reason_codes! {
    // exact / EVM / EIP-3009 (TypeScript `exact/facilitator/errors.ts`)
    INVALID_EXACT_EVM_SCHEME = "invalid_exact_evm_scheme";
    INVALID_EXACT_EVM_NETWORK_MISMATCH = "invalid_exact_evm_network_mismatch";
    INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN = "invalid_exact_evm_missing_eip712_domain";
    INVALID_EXACT_EVM_RECIPIENT_MISMATCH = "invalid_exact_evm_recipient_mismatch";
    INVALID_EXACT_EVM_SIGNATURE = "invalid_exact_evm_signature";
    INVALID_EXACT_EVM_AUTHORIZATION_VALUE = "invalid_exact_evm_authorization_value";
    INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH = "invalid_exact_evm_token_name_mismatch";
    INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH = "invalid_exact_evm_token_version_mismatch";
    INVALID_EXACT_EVM_EIP3009_NOT_SUPPORTED = "invalid_exact_evm_eip3009_not_supported";
    INVALID_EXACT_EVM_NONCE_ALREADY_USED = "invalid_exact_evm_nonce_already_used";
    INVALID_EXACT_EVM_INSUFFICIENT_BALANCE = "invalid_exact_evm_insufficient_balance";
    INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED = "invalid_exact_evm_transaction_simulation_failed";
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before";
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after";
    INVALID_EXACT_EVM_PAYLOAD_UNDEPLOYED_SMART_WALLET = "invalid_exact_evm_payload_undeployed_smart_wallet";
}
