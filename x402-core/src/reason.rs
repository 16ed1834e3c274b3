//! Reason codes: the one vocabulary for why a payment was refused or a settlement failed.
//!
//! The strings are the TypeScript reference's (x402-spec §2.1), because those are what Node
//! facilitators emit and what interop tests assert; the few we add for rules the references do
//! not enforce are grouped at the end. Every string is defined here once and pinned by the golden
//! list in `tests/golden/reasons.txt`.
//!
//! Reason strings are opaque on the wire: a reason this build does not know (a newer peer's) is
//! kept verbatim as [`Reason::Other`] rather than refused.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! reasons {
    ($($variant:ident => $text:literal,)*) => {
        /// Why a payment is invalid or a settlement failed.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
            /// A reason string this build does not know, kept verbatim.
            Other(String),
        }

        impl Reason {
            /// Every known reason, in catalogue order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Reason::$variant => $text,)*
                    Reason::Other(s) => s,
                }
            }

            /// Reads a wire string; unknown strings become [`Reason::Other`].
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($text => Reason::$variant,)*
                    other => Reason::Other(other.to_owned()),
                }
            }
        }
    };
}

reasons! {
    // Generic (spec §9 and TypeScript)
    InsufficientFunds => "insufficient_funds",
    InvalidNetwork => "invalid_network",
    InvalidPayload => "invalid_payload",
    InvalidPaymentRequirements => "invalid_payment_requirements",
    InvalidScheme => "invalid_scheme",
    UnsupportedScheme => "unsupported_scheme",
    InvalidX402Version => "invalid_x402_version",
    InvalidTransactionState => "invalid_transaction_state",
    UnexpectedVerifyError => "unexpected_verify_error",
    UnexpectedSettleError => "unexpected_settle_error",
    UnsupportedPayloadType => "unsupported_payload_type",
    // exact / EVM / EIP-3009 (TypeScript `exact/facilitator/errors.ts`)
    InvalidExactEvmScheme => "invalid_exact_evm_scheme",
    InvalidExactEvmNetworkMismatch => "invalid_exact_evm_network_mismatch",
    InvalidExactEvmMissingEip712Domain => "invalid_exact_evm_missing_eip712_domain",
    InvalidExactEvmRecipientMismatch => "invalid_exact_evm_recipient_mismatch",
    InvalidExactEvmSignature => "invalid_exact_evm_signature",
    InvalidExactEvmAuthorizationValue => "invalid_exact_evm_authorization_value",
    InvalidExactEvmTransactionFailed => "invalid_exact_evm_transaction_failed",
    InvalidExactEvmTokenNameMismatch => "invalid_exact_evm_token_name_mismatch",
    InvalidExactEvmTokenVersionMismatch => "invalid_exact_evm_token_version_mismatch",
    InvalidExactEvmEip3009NotSupported => "invalid_exact_evm_eip3009_not_supported",
    InvalidExactEvmNonceAlreadyUsed => "invalid_exact_evm_nonce_already_used",
    InvalidExactEvmInsufficientBalance => "invalid_exact_evm_insufficient_balance",
    InvalidExactEvmTransactionSimulationFailed => "invalid_exact_evm_transaction_simulation_failed",
    InvalidExactEvmPayloadAuthorizationValidBefore => "invalid_exact_evm_payload_authorization_valid_before",
    InvalidExactEvmPayloadAuthorizationValidAfter => "invalid_exact_evm_payload_authorization_valid_after",
    InvalidExactEvmPayloadUndeployedSmartWallet => "invalid_exact_evm_payload_undeployed_smart_wallet",
    // Permit2 (exact and upto)
    InvalidPermit2Spender => "invalid_permit2_spender",
    InvalidPermit2RecipientMismatch => "invalid_permit2_recipient_mismatch",
    InvalidPermit2Signature => "invalid_permit2_signature",
    Permit2DeadlineExpired => "permit2_deadline_expired",
    Permit2NotYetValid => "permit2_not_yet_valid",
    Permit2AmountMismatch => "permit2_amount_mismatch",
    Permit2TokenMismatch => "permit2_token_mismatch",
    Permit2AllowanceRequired => "permit2_allowance_required",
    Permit2SimulationFailed => "permit2_simulation_failed",
    Permit2InsufficientBalance => "permit2_insufficient_balance",
    Permit2ProxyNotDeployed => "permit2_proxy_not_deployed",
    Permit2InvalidAmount => "permit2_invalid_amount",
    Permit2InvalidDestination => "permit2_invalid_destination",
    Permit2InvalidOwner => "permit2_invalid_owner",
    Permit2PaymentTooEarly => "permit2_payment_too_early",
    Permit2InvalidNonce => "permit2_invalid_nonce",
    Permit22612AmountMismatch => "permit2_2612_amount_mismatch",
    // Gas-sponsoring extensions
    InvalidErc20ApprovalExtensionFormat => "invalid_erc20_approval_extension_format",
    Erc20ApprovalFromMismatch => "erc20_approval_from_mismatch",
    Erc20ApprovalAssetMismatch => "erc20_approval_asset_mismatch",
    Erc20ApprovalSpenderNotPermit2 => "erc20_approval_spender_not_permit2",
    Erc20ApprovalTxWrongTarget => "erc20_approval_tx_wrong_target",
    Erc20ApprovalTxWrongSelector => "erc20_approval_tx_wrong_selector",
    Erc20ApprovalTxWrongSpender => "erc20_approval_tx_wrong_spender",
    Erc20ApprovalTxInvalidCalldata => "erc20_approval_tx_invalid_calldata",
    Erc20ApprovalTxSignerMismatch => "erc20_approval_tx_signer_mismatch",
    Erc20ApprovalTxInvalidSignature => "erc20_approval_tx_invalid_signature",
    Erc20ApprovalTxParseFailed => "erc20_approval_tx_parse_failed",
    Erc20ApprovalTxFailed => "erc20_approval_tx_failed",
    InvalidEip2612ExtensionFormat => "invalid_eip2612_extension_format",
    Eip2612FromMismatch => "eip2612_from_mismatch",
    Eip2612AssetMismatch => "eip2612_asset_mismatch",
    Eip2612SpenderNotPermit2 => "eip2612_spender_not_permit2",
    Eip2612DeadlineExpired => "eip2612_deadline_expired",
    // upto / EVM
    InvalidUptoEvmScheme => "invalid_upto_evm_scheme",
    InvalidUptoEvmNetworkMismatch => "invalid_upto_evm_network_mismatch",
    InvalidUptoEvmPayloadSettlementExceedsAmount => "invalid_upto_evm_payload_settlement_exceeds_amount",
    UptoAmountExceedsPermitted => "upto_amount_exceeds_permitted",
    UptoUnauthorizedFacilitator => "upto_unauthorized_facilitator",
    UptoFacilitatorMismatch => "upto_facilitator_mismatch",
    // exact / SVM (TypeScript, Python)
    NetworkMismatch => "network_mismatch",
    FeePayerNotManagedByFacilitator => "fee_payer_not_managed_by_facilitator",
    TransactionSimulationFailed => "transaction_simulation_failed",
    InvalidExactSvmPayloadMissingFeePayer => "invalid_exact_svm_payload_missing_fee_payer",
    InvalidExactSvmPayloadTransactionCouldNotBeDecoded => "invalid_exact_svm_payload_transaction_could_not_be_decoded",
    InvalidExactSvmPayloadTransactionInstructionsLength => "invalid_exact_svm_payload_transaction_instructions_length",
    InvalidExactSvmPayloadTransactionInstructionsComputeLimitInstruction => "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction",
    InvalidExactSvmPayloadTransactionInstructionsComputePriceInstruction => "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction",
    InvalidExactSvmPayloadTransactionInstructionsComputePriceInstructionTooHigh => "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high",
    InvalidExactSvmPayloadNoTransferInstruction => "invalid_exact_svm_payload_no_transfer_instruction",
    InvalidExactSvmPayloadTransactionFeePayerTransferringFunds => "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
    InvalidExactSvmPayloadMintMismatch => "invalid_exact_svm_payload_mint_mismatch",
    InvalidExactSvmPayloadRecipientMismatch => "invalid_exact_svm_payload_recipient_mismatch",
    InvalidExactSvmPayloadAmountMismatch => "invalid_exact_svm_payload_amount_mismatch",
    InvalidExactSvmPayloadUnknownFourthInstruction => "invalid_exact_svm_payload_unknown_fourth_instruction",
    InvalidExactSvmPayloadUnknownFifthInstruction => "invalid_exact_svm_payload_unknown_fifth_instruction",
    InvalidExactSvmPayloadUnknownSixthInstruction => "invalid_exact_svm_payload_unknown_sixth_instruction",
    InvalidExactSvmPayloadUnknownOptionalInstruction => "invalid_exact_svm_payload_unknown_optional_instruction",
    InvalidExactSvmPayloadMemoCount => "invalid_exact_svm_payload_memo_count",
    InvalidExactSvmPayloadMemoMismatch => "invalid_exact_svm_payload_memo_mismatch",
    VerificationFailed => "verification_failed",
    DuplicateSettlement => "duplicate_settlement",
    TransactionFailed => "transaction_failed",
    // Our additions (threat-model.md rules the references do not enforce)
    SettlementPending => "settlement_pending",
    AuthorizationAlreadyUsed => "authorization_already_used",
    AcceptedRequirementsMismatch => "accepted_requirements_mismatch",
    UnsupportedAsset => "unsupported_asset",
    AuthorizationWindowTooLong => "authorization_window_too_long",
    PayerBusy => "payer_busy",
    PayerThrottled => "payer_throttled",
    TransferNotObserved => "transfer_not_observed",
    GasLimitExceeded => "gas_limit_exceeded",
    GasPriceTooHigh => "gas_price_too_high",
    ExtensionUnsupported => "extension_unsupported",
    FeePayerInInstructionAccounts => "fee_payer_in_instruction_accounts",
    FeePayerMismatch => "fee_payer_mismatch",
    TooManySignatures => "too_many_signatures",
    AddressLookupTablesNotSupported => "address_lookup_tables_not_supported",
    UnsupportedTokenExtension => "unsupported_token_extension",
    InvalidExactSvmPayloadSignature => "invalid_exact_svm_payload_signature",
    InvalidExactSvmPayloadComputeLimitTooHigh => "invalid_exact_svm_payload_compute_limit_too_high",
    InvalidExactSvmPayloadPriorityFeeTooHigh => "invalid_exact_svm_payload_priority_fee_too_high",
    InvalidExactSvmPayloadDurableNonce => "invalid_exact_svm_payload_durable_nonce",
}

impl Reason {
    /// Whether this reason is one of the known catalogue strings.
    pub fn is_known(&self) -> bool {
        !matches!(self, Reason::Other(_))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Reason::from_wire(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        for r in Reason::ALL {
            assert_eq!(&Reason::from_wire(r.as_str()), r);
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), *r);
        }
        let other: Reason = serde_json::from_str("\"some_new_reason\"").unwrap();
        assert_eq!(other, Reason::Other("some_new_reason".into()));
        assert!(!other.is_known());
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"some_new_reason\""
        );
    }
}
