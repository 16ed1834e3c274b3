//! Reason codes of the EVM family shared by its schemes: what the shared settlement engine and
//! Permit2 check sequence answer, the gas-sponsoring extensions, and the transaction bounds every
//! EVM facilitator enforces (the official `@x402/evm` strings; additions in docs/reasons.md).

x402_core::reason_codes! {
    // Settlement outcomes the shared engine answers (`@x402/evm` exact's strings)
    /// An `exact` settlement transaction reverted.
    INVALID_EXACT_EVM_TRANSACTION_FAILED = "invalid_exact_evm_transaction_failed";
    /// The settlement transaction succeeded but its receipt shows no transfer of the exact
    /// amount to the recipient.
    TRANSFER_NOT_OBSERVED = "invalid_exact_evm_transfer_event_mismatch";
    /// The EIP-3009 authorization's nonce is already used (on chain).
    INVALID_EXACT_EVM_NONCE_ALREADY_USED = "invalid_exact_evm_nonce_already_used";
    /// No contract is deployed at the requirements' asset.
    ASSET_NOT_DEPLOYED_CONTRACT = "asset_not_deployed_contract";
    // Permit2 (exact and upto)
    INVALID_PERMIT2_SPENDER = "invalid_permit2_spender";
    INVALID_PERMIT2_RECIPIENT_MISMATCH = "invalid_permit2_recipient_mismatch";
    INVALID_PERMIT2_SIGNATURE = "invalid_permit2_signature";
    PERMIT2_DEADLINE_EXPIRED = "permit2_deadline_expired";
    PERMIT2_NOT_YET_VALID = "permit2_not_yet_valid";
    PERMIT2_AMOUNT_MISMATCH = "permit2_amount_mismatch";
    PERMIT2_TOKEN_MISMATCH = "permit2_token_mismatch";
    PERMIT2_ALLOWANCE_REQUIRED = "permit2_allowance_required";
    PERMIT2_SIMULATION_FAILED = "permit2_simulation_failed";
    PERMIT2_INSUFFICIENT_BALANCE = "permit2_insufficient_balance";
    PERMIT2_PROXY_NOT_DEPLOYED = "permit2_proxy_not_deployed";
    PERMIT2_INVALID_AMOUNT = "permit2_invalid_amount";
    PERMIT2_INVALID_DESTINATION = "permit2_invalid_destination";
    PERMIT2_INVALID_OWNER = "permit2_invalid_owner";
    PERMIT2_PAYMENT_TOO_EARLY = "permit2_payment_too_early";
    PERMIT2_INVALID_NONCE = "permit2_invalid_nonce";
    PERMIT2_2612_AMOUNT_MISMATCH = "permit2_2612_amount_mismatch";
    // Gas-sponsoring extensions
    INVALID_ERC20_APPROVAL_EXTENSION_FORMAT = "invalid_erc20_approval_extension_format";
    ERC20_APPROVAL_FROM_MISMATCH = "erc20_approval_from_mismatch";
    ERC20_APPROVAL_ASSET_MISMATCH = "erc20_approval_asset_mismatch";
    ERC20_APPROVAL_SPENDER_NOT_PERMIT2 = "erc20_approval_spender_not_permit2";
    ERC20_APPROVAL_TX_WRONG_TARGET = "erc20_approval_tx_wrong_target";
    ERC20_APPROVAL_TX_WRONG_SELECTOR = "erc20_approval_tx_wrong_selector";
    ERC20_APPROVAL_TX_WRONG_SPENDER = "erc20_approval_tx_wrong_spender";
    ERC20_APPROVAL_TX_INVALID_CALLDATA = "erc20_approval_tx_invalid_calldata";
    ERC20_APPROVAL_TX_SIGNER_MISMATCH = "erc20_approval_tx_signer_mismatch";
    ERC20_APPROVAL_TX_INVALID_SIGNATURE = "erc20_approval_tx_invalid_signature";
    ERC20_APPROVAL_TX_PARSE_FAILED = "erc20_approval_tx_parse_failed";
    ERC20_APPROVAL_TX_FAILED = "erc20_approval_tx_failed";
    ERC20_APPROVAL_BROADCAST_FAILED = "erc20_approval_broadcast_failed";
    ERC20_APPROVAL_INSUFFICIENT_ETH_FOR_GAS = "erc20_approval_insufficient_eth_for_gas";
    INVALID_EIP2612_EXTENSION_FORMAT = "invalid_eip2612_extension_format";
    EIP2612_FROM_MISMATCH = "eip2612_from_mismatch";
    EIP2612_ASSET_MISMATCH = "eip2612_asset_mismatch";
    EIP2612_SPENDER_NOT_PERMIT2 = "eip2612_spender_not_permit2";
    EIP2612_DEADLINE_EXPIRED = "eip2612_deadline_expired";
    // Our additions (docs/reasons.md)
    GAS_LIMIT_EXCEEDED = "gas_limit_exceeded";
    GAS_PRICE_TOO_HIGH = "gas_price_too_high";
}
