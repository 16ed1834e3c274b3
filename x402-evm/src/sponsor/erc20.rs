//! `erc20ApprovalGasSponsoring` (x402-spec §3.5): the seller's declaration, the buyer's signed
//! `approve(Permit2, amount)` transaction, read and validated strictly without any chain call,
//! and signed for a buyer ([`buyer_erc20_entry`]).
//!
//! These checks are what a facilitator must pass before it may broadcast the transaction: it
//! calls the payment's token, its calldata is exactly `approve(Permit2, amount)` with nothing
//! after it, it moves no ether, it is signed for this chain by the payer, and its gas fields are
//! within the operator's caps. Whether its nonce is the buyer's next is the chain's to say
//! (`x402_evm::facilitator::sponsored_approval`, which also funds and broadcasts it).

use alloy::consensus::{SignableTransaction, Transaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::signers::Signer;
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use x402_core::Rejection;

use super::{ERC20_APPROVAL_GAS_SPONSORING, INFO_VERSION, lenient_address, version_ok};
use crate::addresses::PERMIT2;
use crate::reason as r;

alloy::sol! {
    /// ERC-20 `approve`.
    interface IErc20Approve {
        function approve(address spender, uint256 amount) external returns (bool);
    }
}

/// The gas limit a buyer signs its approval with (the reference client's).
pub const APPROVE_GAS_LIMIT: u64 = 70_000;
/// The `maxFeePerGas` a buyer signs with when the node gives no estimate (the reference's), wei.
pub const DEFAULT_MAX_FEE_PER_GAS: u128 = 1_000_000_000;
/// The `maxPriorityFeePerGas` a buyer signs with when the node gives no estimate, wei.
pub const DEFAULT_MAX_PRIORITY_FEE_PER_GAS: u128 = 100_000_000;

/// The declaration a seller puts under [`ERC20_APPROVAL_GAS_SPONSORING`] in its 402: the
/// facilitator broadcasts the buyer's signed `approve(Permit2, …)` (`info {description,
/// version}` and the JSON Schema of the buyer's `info`), byte for byte the reference's
/// `declareErc20ApprovalGasSponsoringExtension()` (`@x402/extensions` 2.27).
pub fn erc20_declaration() -> x402_core::extension::JsonObject {
    use x402_core::extension::JsonObject;
    let field = super::schema_field;
    const ADDRESS: &str = "^0x[a-fA-F0-9]{40}$";
    let properties = JsonObject::new()
        .with(
            "from",
            &field(ADDRESS, "The address of the sender (token owner)."),
        )
        .with(
            "asset",
            &field(ADDRESS, "The address of the ERC-20 token contract."),
        )
        .with(
            "spender",
            &field(ADDRESS, "The address of the spender (Canonical Permit2)."),
        )
        .with(
            "amount",
            &field(
                "^[0-9]+$",
                "The amount approved (uint256). Always MaxUint256.",
            ),
        )
        .with(
            "signedTransaction",
            &field(
                "^0x[a-fA-F0-9]+$",
                "The RLP-encoded signed EIP-1559 transaction as a hex string.",
            ),
        )
        .with(
            "version",
            &field(r"^[0-9]+(\.[0-9]+)*$", "Schema version identifier."),
        );
    let required = [
        "from",
        "asset",
        "spender",
        "amount",
        "signedTransaction",
        "version",
    ];
    super::declaration(
        "The facilitator broadcasts a pre-signed ERC-20 approve() transaction to grant Permit2 allowance.",
        &properties,
        &required,
    )
}

/// The buyer's `info` under [`ERC20_APPROVAL_GAS_SPONSORING`], as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erc20ApprovalInfo {
    /// The token owner (the payer).
    pub from: String,
    /// The token.
    pub asset: String,
    /// The spender approved (Permit2).
    pub spender: String,
    /// The allowance approved (decimal).
    pub amount: String,
    /// The signed transaction, EIP-2718 encoded, hex.
    pub signed_transaction: String,
    /// The info version (`"1"`).
    pub version: String,
}

/// The operator's bounds on a buyer's approval transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalCaps {
    /// The largest gas limit accepted.
    pub max_gas_limit: u64,
    /// The largest `maxFeePerGas` (or legacy gas price) accepted, wei.
    pub max_fee_per_gas: u128,
}

/// A buyer's approval transaction that passed every check [`check_erc20_approval`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erc20Approval {
    /// The signer (the payer).
    pub from: Address,
    /// The token called.
    pub token: Address,
    /// The allowance the transaction grants Permit2.
    pub amount: U256,
    /// The transaction's nonce (must be the payer's next).
    pub nonce: u64,
    /// Its gas limit.
    pub gas_limit: u64,
    /// Its `maxFeePerGas` (legacy: gas price), wei.
    pub max_fee_per_gas: u128,
    /// The most it can cost its sender: gas limit × max fee, wei.
    pub max_cost: U256,
    /// The signed transaction as sent.
    pub raw: Bytes,
}

/// The buyer's approval `info` in a payment's `extensions`: `Ok(None)` when there is none (or
/// the seller's declaration echoed, without `signedTransaction`), the info when well formed,
/// `invalid_erc20_approval_extension_format` otherwise.
pub fn read_erc20_approval(
    extensions: Option<&RawValue>,
) -> Result<Option<Erc20ApprovalInfo>, Rejection> {
    let format = |m: String| Rejection::with_message(r::INVALID_ERC20_APPROVAL_EXTENSION_FORMAT, m);
    let all = x402_core::extension::read_extensions(extensions).map_err(format)?;
    let Some(entry) = all.get(ERC20_APPROVAL_GAS_SPONSORING) else {
        return Ok(None);
    };
    let entry: serde_json::Value = serde_json::from_str(entry.get())
        .map_err(|e| format(format!("{ERC20_APPROVAL_GAS_SPONSORING}: {e}")))?;
    let Some(info) = entry.get("info") else {
        return Ok(None);
    };
    if info.get("signedTransaction").is_none() && info.get("from").is_none() {
        return Ok(None);
    }
    let info: Erc20ApprovalInfo = serde_json::from_value(info.clone())
        .map_err(|e| format(format!("{ERC20_APPROVAL_GAS_SPONSORING}.info: {e}")))?;
    if !version_ok(&info.version) {
        return Err(format(format!(
            "info.version {:?} is not digits and dots",
            info.version
        )));
    }
    Ok(Some(info))
}

/// Validates a buyer's approval for the Permit2 payment of `permitted` of `token` by `payer` on
/// chain `chain_id`, first failure wins, no chain call (x402-spec §3.5 order, then this
/// workspace's additions):
///
/// | check | reason |
/// |---|---|
/// | `info` fields well formed | `invalid_erc20_approval_extension_format` |
/// | `from` is the payer; `asset` the token; `spender` Permit2 | `erc20_approval_from_mismatch`, `_asset_mismatch`, `_spender_not_permit2` |
/// | the transaction decodes (EIP-2718: legacy, EIP-2930, EIP-1559), with nothing after it | `erc20_approval_tx_parse_failed` |
/// | it calls the token | `erc20_approval_tx_wrong_target` |
/// | its calldata starts with `approve`'s selector | `erc20_approval_tx_wrong_selector` |
/// | the calldata is exactly `approve(address, uint256)`: 68 bytes, a clean address word | `erc20_approval_tx_invalid_calldata` |
/// | the approved spender is Permit2 | `erc20_approval_tx_wrong_spender` |
/// | the approved amount is `info.amount` and covers the payment | `erc20_approval_tx_invalid_calldata` |
/// | it moves no ether, is signed for this chain (EIP-155), its gas limit and fee are within `caps` | `erc20_approval_tx_failed` |
/// | its signature recovers | `erc20_approval_tx_invalid_signature` |
/// | to the payer | `erc20_approval_tx_signer_mismatch` |
pub fn check_erc20_approval(
    info: &Erc20ApprovalInfo,
    payer: Address,
    token: Address,
    permitted: U256,
    chain_id: u64,
    caps: ApprovalCaps,
) -> Result<Erc20Approval, Rejection> {
    let reject = |reason, m: String| Err(Rejection::with_message(reason, m));
    let format = |e: crate::parse::FieldError| {
        Rejection::with_message(r::INVALID_ERC20_APPROVAL_EXTENSION_FORMAT, e.to_string())
    };
    let from = lenient_address("info.from", &info.from).map_err(format)?;
    let asset = lenient_address("info.asset", &info.asset).map_err(format)?;
    let spender = lenient_address("info.spender", &info.spender).map_err(format)?;
    let amount = crate::parse::uint("info.amount", &info.amount).map_err(format)?;
    let raw = signed_bytes(&info.signed_transaction)
        .map_err(|m| Rejection::with_message(r::INVALID_ERC20_APPROVAL_EXTENSION_FORMAT, m))?;
    if from != payer {
        return reject(
            r::ERC20_APPROVAL_FROM_MISMATCH,
            format!("the approval's owner {from} is not the payer {payer}"),
        );
    }
    if asset != token {
        return reject(
            r::ERC20_APPROVAL_ASSET_MISMATCH,
            format!("the approval is for {asset}, the payment for {token}"),
        );
    }
    if spender != PERMIT2 {
        return reject(
            r::ERC20_APPROVAL_SPENDER_NOT_PERMIT2,
            format!("the approval's spender {spender} is not Permit2"),
        );
    }
    let mut rest = raw.as_ref();
    let tx = match TxEnvelope::decode_2718(&mut rest) {
        Ok(tx) if rest.is_empty() => tx,
        Ok(_) => {
            return reject(
                r::ERC20_APPROVAL_TX_PARSE_FAILED,
                "bytes follow the signed transaction".into(),
            );
        }
        Err(e) => return reject(r::ERC20_APPROVAL_TX_PARSE_FAILED, format!("{e}")),
    };
    if tx.is_eip4844() || tx.is_eip7702() {
        return reject(
            r::ERC20_APPROVAL_TX_PARSE_FAILED,
            "the approval must be a legacy, EIP-2930 or EIP-1559 transaction".into(),
        );
    }
    if tx.kind() != TxKind::Call(token) {
        return reject(
            r::ERC20_APPROVAL_TX_WRONG_TARGET,
            format!(
                "the transaction calls {:?}, not the token {token}",
                tx.kind()
            ),
        );
    }
    let input = tx.input();
    if input.len() < 4 || input[..4] != IErc20Approve::approveCall::SELECTOR {
        return reject(
            r::ERC20_APPROVAL_TX_WRONG_SELECTOR,
            "the transaction does not call approve(address,uint256)".into(),
        );
    }
    // Exactly one address word and one amount word: no extra bytes (a token could read them),
    // and no dirty high bytes in the address word (decoding would hide them).
    if input.len() != 4 + 64 || input[4..16].iter().any(|b| *b != 0) {
        return reject(
            r::ERC20_APPROVAL_TX_INVALID_CALLDATA,
            format!(
                "the calldata is {} bytes, not exactly approve(address,uint256)'s 68",
                input.len()
            ),
        );
    }
    let call = IErc20Approve::approveCall::abi_decode(input).map_err(|e| {
        Rejection::with_message(r::ERC20_APPROVAL_TX_INVALID_CALLDATA, format!("{e}"))
    })?;
    if call.spender != PERMIT2 {
        return reject(
            r::ERC20_APPROVAL_TX_WRONG_SPENDER,
            format!("the transaction approves {}, not Permit2", call.spender),
        );
    }
    if call.amount != amount || call.amount < permitted {
        return reject(
            r::ERC20_APPROVAL_TX_INVALID_CALLDATA,
            format!(
                "the transaction approves {} (info.amount {amount}; the payment needs {permitted})",
                call.amount
            ),
        );
    }
    if !tx.value().is_zero() {
        return reject(
            r::ERC20_APPROVAL_TX_FAILED,
            "the approval transaction moves ether".into(),
        );
    }
    if tx.chain_id() != Some(chain_id) {
        return reject(
            r::ERC20_APPROVAL_TX_FAILED,
            format!(
                "the approval is signed for chain {:?}, not {chain_id}",
                tx.chain_id()
            ),
        );
    }
    let gas_limit = tx.gas_limit();
    let max_fee_per_gas = tx.max_fee_per_gas();
    if gas_limit > caps.max_gas_limit || max_fee_per_gas > caps.max_fee_per_gas {
        return reject(
            r::ERC20_APPROVAL_TX_FAILED,
            format!(
                "the approval's gas limit {gas_limit} or max fee {max_fee_per_gas} wei is above \
                 the caps ({} gas, {} wei)",
                caps.max_gas_limit, caps.max_fee_per_gas
            ),
        );
    }
    // EIP-2: a high-s signature is no valid transaction signature.
    let signature = tx.signature();
    if signature.normalize_s().is_some() {
        return reject(
            r::ERC20_APPROVAL_TX_INVALID_SIGNATURE,
            "the approval's signature has a high s value".into(),
        );
    }
    let signer = signature
        .recover_address_from_prehash(&tx.signature_hash())
        .map_err(|e| {
            Rejection::with_message(r::ERC20_APPROVAL_TX_INVALID_SIGNATURE, format!("{e}"))
        })?;
    if signer != payer {
        return reject(
            r::ERC20_APPROVAL_TX_SIGNER_MISMATCH,
            format!("the approval is signed by {signer}, not the payer {payer}"),
        );
    }
    Ok(Erc20Approval {
        from: signer,
        token,
        amount: call.amount,
        nonce: tx.nonce(),
        gas_limit,
        max_fee_per_gas,
        max_cost: U256::from(gas_limit) * U256::from(max_fee_per_gas),
        raw,
    })
}

/// The most bytes a signed approval may have (one carries 68 bytes of calldata and a signature).
const MAX_SIGNED_BYTES: usize = 1024;

/// `info.signedTransaction`: `0x` + an even number of hex digits, at most
/// [`MAX_SIGNED_BYTES`] bytes.
fn signed_bytes(s: &str) -> Result<Bytes, String> {
    let body = s
        .strip_prefix("0x")
        .ok_or("info.signedTransaction: missing 0x prefix")?;
    if body.is_empty() || body.len() % 2 != 0 || body.len() / 2 > MAX_SIGNED_BYTES {
        return Err(format!(
            "info.signedTransaction: {} hex digits (an even number, 2 to {})",
            body.len(),
            MAX_SIGNED_BYTES * 2
        ));
    }
    alloy::primitives::hex::decode(body)
        .map(Bytes::from)
        .map_err(|e| format!("info.signedTransaction: {e}"))
}

/// What a buyer signs an approval transaction with.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalTerms {
    /// The chain id.
    pub chain_id: u64,
    /// The token.
    pub token: Address,
    /// The allowance granted Permit2.
    pub amount: U256,
    /// The buyer's next transaction nonce.
    pub nonce: u64,
    /// The gas limit.
    pub gas_limit: u64,
    /// `maxFeePerGas`, wei.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`, wei.
    pub max_priority_fee_per_gas: u128,
}

/// Signs an EIP-1559 `approve(Permit2, amount)` on the token and returns the entry the payment
/// carries under [`ERC20_APPROVAL_GAS_SPONSORING`]: `{"info": {…}}`.
pub async fn sign_erc20_approval(
    signer: &(dyn Signer + Send + Sync),
    terms: ApprovalTerms,
) -> Result<serde_json::Value, alloy::signers::Error> {
    let input = IErc20Approve::approveCall {
        spender: PERMIT2,
        amount: terms.amount,
    }
    .abi_encode();
    let tx = TxEip1559 {
        chain_id: terms.chain_id,
        nonce: terms.nonce,
        gas_limit: terms.gas_limit,
        max_fee_per_gas: terms.max_fee_per_gas,
        max_priority_fee_per_gas: terms.max_priority_fee_per_gas,
        to: TxKind::Call(terms.token),
        value: U256::ZERO,
        access_list: Default::default(),
        input: input.into(),
    };
    let signature = signer.sign_hash(&tx.signature_hash()).await?;
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    let info = Erc20ApprovalInfo {
        from: signer.address().to_checksum(None),
        asset: terms.token.to_checksum(None),
        spender: PERMIT2.to_checksum(None),
        amount: terms.amount.to_string(),
        signed_transaction: alloy::primitives::hex::encode_prefixed(envelope.encoded_2718()),
        version: INFO_VERSION.to_owned(),
    };
    Ok(serde_json::json!({ "info": info }))
}

/// The buyer's `erc20ApprovalGasSponsoring` entry for a Permit2 payment of `amount` of `token`
/// on `chain_id`, or `None` when it sends none: only when the 402 `offered` the extension and
/// the owner's allowance to Permit2 (read through `provider`) is short of the amount. The
/// transaction approves Permit2 for `2^256 - 1` (as the reference client does: later payments
/// need no approval), with the owner's pending nonce, [`APPROVE_GAS_LIMIT`] gas and the node's
/// fee estimate (the reference's defaults when it has none). A read that fails sends none.
pub async fn buyer_erc20_entry(
    signer: &(dyn Signer + Send + Sync),
    provider: &alloy::providers::DynProvider,
    offered_extensions: Option<&RawValue>,
    chain_id: u64,
    token: Address,
    amount: U256,
) -> Result<Option<x402_core::wire::Raw>, x402_core::SchemeError> {
    use crate::abi::eip2612::IEip2612Token;
    use alloy::providers::Provider;
    if !super::offered(offered_extensions, ERC20_APPROVAL_GAS_SPONSORING) {
        return Ok(None);
    }
    let owner = signer.address();
    let call = IEip2612Token::allowanceCall {
        owner,
        spender: PERMIT2,
    };
    let tx = alloy::rpc::types::TransactionRequest::default()
        .from(owner)
        .to(token)
        .input(Bytes::from(call.abi_encode()).into());
    let Some(allowance) = provider
        .call(tx)
        .await
        .ok()
        .and_then(|out| IEip2612Token::allowanceCall::abi_decode_returns(&out).ok())
    else {
        return Ok(None);
    };
    if allowance >= amount {
        return Ok(None);
    }
    let Ok(nonce) = provider.get_transaction_count(owner).pending().await else {
        return Ok(None);
    };
    let (max_fee_per_gas, max_priority_fee_per_gas) = match provider.estimate_eip1559_fees().await {
        Ok(f) => (f.max_fee_per_gas, f.max_priority_fee_per_gas),
        Err(_) => (DEFAULT_MAX_FEE_PER_GAS, DEFAULT_MAX_PRIORITY_FEE_PER_GAS),
    };
    let terms = ApprovalTerms {
        chain_id,
        token,
        amount: U256::MAX,
        nonce,
        gas_limit: APPROVE_GAS_LIMIT,
        max_fee_per_gas,
        max_priority_fee_per_gas,
    };
    let entry = sign_erc20_approval(signer, terms)
        .await
        .map_err(x402_core::SchemeError::signer)?;
    serde_json::value::to_raw_value(&entry)
        .map(Some)
        .map_err(x402_core::SchemeError::other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloy::primitives::address;
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    const TOKEN: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
    const CHAIN: u64 = 84532;
    const CAPS: ApprovalCaps = ApprovalCaps {
        max_gas_limit: 100_000,
        max_fee_per_gas: 10_000_000_000,
    };

    fn terms() -> ApprovalTerms {
        ApprovalTerms {
            chain_id: CHAIN,
            token: TOKEN,
            amount: U256::from(10_000u64),
            nonce: 0,
            gas_limit: 60_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        }
    }

    async fn signed(signer: &PrivateKeySigner, t: ApprovalTerms) -> Erc20ApprovalInfo {
        let entry = sign_erc20_approval(signer, t).await.unwrap();
        let raw = serde_json::value::to_raw_value(
            &serde_json::json!({ ERC20_APPROVAL_GAS_SPONSORING: entry }),
        )
        .unwrap();
        read_erc20_approval(Some(&raw)).unwrap().unwrap()
    }

    /// A transaction with `input` instead of the approve calldata, signed by `signer`.
    async fn with_input(signer: &PrivateKeySigner, input: Vec<u8>) -> String {
        let t = terms();
        let tx = TxEip1559 {
            chain_id: t.chain_id,
            nonce: 0,
            gas_limit: t.gas_limit,
            max_fee_per_gas: t.max_fee_per_gas,
            max_priority_fee_per_gas: t.max_priority_fee_per_gas,
            to: TxKind::Call(TOKEN),
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.into(),
        };
        let sig = signer.sign_hash(&tx.signature_hash()).await.unwrap();
        alloy::primitives::hex::encode_prefixed(
            TxEnvelope::from(tx.into_signed(sig)).encoded_2718(),
        )
    }

    #[tokio::test]
    async fn a_signed_approval_passes_and_each_check_refuses() {
        let buyer = PrivateKeySigner::random();
        let payer = buyer.address();
        let amount = U256::from(10_000u64);
        let check =
            |i: &Erc20ApprovalInfo| check_erc20_approval(i, payer, TOKEN, amount, CHAIN, CAPS);
        let ok = signed(&buyer, terms()).await;
        let a = check(&ok).unwrap();
        assert_eq!(
            (a.from, a.token, a.amount, a.nonce),
            (payer, TOKEN, amount, 0)
        );
        assert_eq!(a.max_cost, U256::from(60_000u64 * 2_000_000_000));

        let reason = |r: Result<Erc20Approval, Rejection>| r.unwrap_err().reason;
        let other = PrivateKeySigner::random();
        let mut i = ok.clone();
        i.from = other.address().to_checksum(None);
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_FROM_MISMATCH);
        let mut i = ok.clone();
        i.asset = other.address().to_checksum(None);
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_ASSET_MISMATCH);
        let mut i = ok.clone();
        i.spender = other.address().to_checksum(None);
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_SPENDER_NOT_PERMIT2);
        let mut i = ok.clone();
        i.signed_transaction = "0x02c0".into();
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_PARSE_FAILED);
        let mut i = ok.clone();
        i.signed_transaction.push_str("00");
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_PARSE_FAILED);
        let mut i = ok.clone();
        i.signed_transaction = "0xzz".into();
        assert_eq!(
            reason(check(&i)),
            r::INVALID_ERC20_APPROVAL_EXTENSION_FORMAT
        );

        // Another target, another chain, gas above the caps.
        let mut t = terms();
        t.token = other.address();
        let mut i = signed(&buyer, t).await;
        i.asset = ok.asset.clone();
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_WRONG_TARGET);
        let mut t = terms();
        t.chain_id = 1;
        assert_eq!(
            reason(check(&signed(&buyer, t).await)),
            r::ERC20_APPROVAL_TX_FAILED
        );
        let mut t = terms();
        t.gas_limit = CAPS.max_gas_limit + 1;
        assert_eq!(
            reason(check(&signed(&buyer, t).await)),
            r::ERC20_APPROVAL_TX_FAILED
        );
        let mut t = terms();
        t.max_fee_per_gas = CAPS.max_fee_per_gas + 1;
        assert_eq!(
            reason(check(&signed(&buyer, t).await)),
            r::ERC20_APPROVAL_TX_FAILED
        );
        // Less than the payment needs.
        let mut t = terms();
        t.amount = amount - U256::from(1);
        assert_eq!(
            reason(check(&signed(&buyer, t).await)),
            r::ERC20_APPROVAL_TX_INVALID_CALLDATA
        );

        // Calldata: another selector, extra bytes, a dirty address word, another spender.
        let approve =
            |spender: Address| IErc20Approve::approveCall { spender, amount }.abi_encode();
        let mut i = ok.clone();
        let mut transfer = approve(PERMIT2);
        transfer[..4].copy_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
        i.signed_transaction = with_input(&buyer, transfer).await;
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_WRONG_SELECTOR);
        let mut extra = approve(PERMIT2);
        extra.push(0);
        i.signed_transaction = with_input(&buyer, extra).await;
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_INVALID_CALLDATA);
        let mut dirty = approve(PERMIT2);
        dirty[4] = 1;
        i.signed_transaction = with_input(&buyer, dirty).await;
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_INVALID_CALLDATA);
        i.signed_transaction = with_input(&buyer, approve(other.address())).await;
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_WRONG_SPENDER);

        // Signed by someone else.
        let mut i = signed(&other, terms()).await;
        i.from = ok.from.clone();
        assert_eq!(reason(check(&i)), r::ERC20_APPROVAL_TX_SIGNER_MISMATCH);
    }

    /// The reference's `declareErc20ApprovalGasSponsoringExtension()` output (`@x402/extensions`),
    /// as `JSON.stringify` writes it.
    #[test]
    fn the_declaration_is_the_references() {
        let expected = concat!(
            r#"{"info":{"description":"The facilitator broadcasts a pre-signed ERC-20 approve() transaction to grant Permit2 allowance.","version":"1"},"#,
            r#""schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"#,
            r#""from":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the sender (token owner)."},"#,
            r#""asset":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the ERC-20 token contract."},"#,
            r#""spender":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the spender (Canonical Permit2)."},"#,
            r#""amount":{"type":"string","pattern":"^[0-9]+$","description":"The amount approved (uint256). Always MaxUint256."},"#,
            r#""signedTransaction":{"type":"string","pattern":"^0x[a-fA-F0-9]+$","description":"The RLP-encoded signed EIP-1559 transaction as a hex string."},"#,
            r#""version":{"type":"string","pattern":"^[0-9]+(\\.[0-9]+)*$","description":"Schema version identifier."}},"#,
            r#""required":["from","asset","spender","amount","signedTransaction","version"]}}"#,
        );
        assert_eq!(erc20_declaration().to_json(), expected);
    }

    #[test]
    fn an_echoed_declaration_is_no_approval() {
        let echoed = serde_json::value::to_raw_value(&serde_json::json!({
            ERC20_APPROVAL_GAS_SPONSORING: {"info": {"description": "x", "version": "1"}, "schema": {}}
        }))
        .unwrap();
        assert_eq!(read_erc20_approval(Some(&echoed)).unwrap(), None);
        let partial = serde_json::value::to_raw_value(&serde_json::json!({
            ERC20_APPROVAL_GAS_SPONSORING: {"info": {"from": "0x00", "version": "1"}}
        }))
        .unwrap();
        assert_eq!(
            read_erc20_approval(Some(&partial)).unwrap_err().reason,
            r::INVALID_ERC20_APPROVAL_EXTENSION_FORMAT
        );
    }
}
