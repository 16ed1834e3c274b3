//! Reason codes of `exact` on EVM (the official `@x402/evm` strings, `exact/facilitator`); the
//! Permit2 codes and the settlement outcomes the shared engine answers are `x402_evm::reason`'s.

pub use x402_evm::reason::{
    ASSET_NOT_DEPLOYED_CONTRACT, INVALID_EXACT_EVM_NONCE_ALREADY_USED,
    INVALID_EXACT_EVM_TRANSACTION_FAILED,
};

use x402_core::Reason;

x402_core::reason_codes! {
    // exact / EVM / EIP-3009
    INVALID_EXACT_EVM_SCHEME = "invalid_exact_evm_scheme";
    INVALID_EXACT_EVM_NETWORK_MISMATCH = "invalid_exact_evm_network_mismatch";
    INVALID_EXACT_EVM_MISSING_EIP712_DOMAIN = "invalid_exact_evm_missing_eip712_domain";
    INVALID_EXACT_EVM_RECIPIENT_MISMATCH = "invalid_exact_evm_recipient_mismatch";
    INVALID_EXACT_EVM_SIGNATURE = "invalid_exact_evm_signature";
    /// The authorization's value is not the requirements' amount.
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch";
    INVALID_EXACT_EVM_TOKEN_NAME_MISMATCH = "invalid_exact_evm_token_name_mismatch";
    INVALID_EXACT_EVM_TOKEN_VERSION_MISMATCH = "invalid_exact_evm_token_version_mismatch";
    INVALID_EXACT_EVM_EIP3009_NOT_SUPPORTED = "invalid_exact_evm_eip3009_not_supported";
    INVALID_EXACT_EVM_INSUFFICIENT_BALANCE = "invalid_exact_evm_insufficient_balance";
    INVALID_EXACT_EVM_TRANSACTION_SIMULATION_FAILED = "invalid_exact_evm_transaction_simulation_failed";
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before";
    INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after";
    /// The signature does not parse (an ERC-6492 wrapper whose body does not decode).
    INVALID_EXACT_EVM_FAILED_TO_PARSE_SIGNATURE = "invalid_exact_evm_failed_to_parse_signature";
    // Smart wallets (ERC-6492)
    /// A counterfactual wallet's factory is not on the facilitator's allow-list.
    EIP6492_FACTORY_NOT_ALLOWED = "eip6492_factory_not_allowed";
    /// The counterfactual wallet's deployment (its factory call) fails.
    SMART_WALLET_DEPLOYMENT_FAILED = "smart_wallet_deployment_failed";
    // The v1 mechanism's spellings (see `V1_SPELLINGS`)
    V1_INVALID_EXACT_EVM_AUTHORIZATION_VALUE = "invalid_exact_evm_authorization_value";
}

/// The conditions the reference's v1 `exact` EVM mechanism (`ExactEvmSchemeV1`) answers with
/// another string than its v2 one: (current string, v1 string). A v1 asset without code is
/// found by that mechanism's diagnosis as a token without EIP-3009.
pub const V1_SPELLINGS: &[(Reason, Reason)] = &[
    (
        INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALUE_MISMATCH,
        V1_INVALID_EXACT_EVM_AUTHORIZATION_VALUE,
    ),
    (
        ASSET_NOT_DEPLOYED_CONTRACT,
        INVALID_EXACT_EVM_EIP3009_NOT_SUPPORTED,
    ),
];
