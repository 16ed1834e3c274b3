//! `erc20ApprovalGasSponsoring` on anvil with a token without EIP-2612 (`contracts/test/
//! PlainToken.sol`): a fresh wallet holding tokens and no ETH pays `exact` (Permit2) and `upto`
//! through a seller declaring the extension — its signed `approve(Permit2)` rides in the
//! payment, the facilitator funds its gas, broadcasts it and then settles. Two concurrent
//! payments of the wallet produce one approval; every check refuses with its reason while
//! nothing is broadcast (the buyer's nonce and balances, the facilitator's nonce unchanged).

use std::sync::Arc;

use alloy::consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718 as _;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::signers::Signer as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use x402_core::client::FacilitatorClient;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequired, PaymentRequirements, VerifyRequest,
};
use x402_core::{Amount, BuyerRole as _, Facilitator as _, X402Version};
use x402_evm::facilitator::{Erc20Sponsor, Erc20SponsorConfig};
use x402_evm::sponsor::ERC20_APPROVAL_GAS_SPONSORING;
use x402_tests::e2e::approval::{ApprovalBed, PlainToken, serve_sponsoring};
use x402_tests::e2e::{EXACT_UNITS, UPTO_MAX_UNITS, UPTO_USED_UNITS};
use x402_tests::evm::PERMIT2_ADDRESS;

use crate::settled;

#[tokio::test]
async fn a_fresh_wallet_without_eth_pays_exact_and_upto_with_its_signed_approval() {
    let bed = ApprovalBed::start().await;
    let seller = bed.h.bed.seller().address;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    assert_eq!(bed.eth(who).await, U256::ZERO);
    let buyer = bed.buyer(&wallet);

    // Without the declaration, a wallet without an allowance cannot pay (nothing moves).
    match buyer.get(&format!("{}/unsponsored", bed.url)).await {
        Err(x402_buyer::Error::Refused { status, error, .. }) => {
            assert_eq!(status, 412);
            assert_eq!(error.as_deref(), Some("permit2_allowance_required"));
        }
        other => panic!("refused with 412, not {other:?}"),
    }
    assert_eq!(bed.nonce(who).await, 0);

    // exact, on a route also offering eip2612GasSponsoring (the token has no permit: the buyer
    // falls back to its approval): funded, approved (once, for good), settled.
    let paid = buyer.get(&format!("{}/exact-both", bed.url)).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(bed.balance(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(bed.balance(seller).await, U256::from(EXACT_UNITS));
    assert_eq!(bed.allowance(who).await, U256::MAX);
    assert_eq!(
        bed.nonce(who).await,
        1,
        "the approval is the wallet's only transaction"
    );
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (1, 1), "{stats:?}");
    assert!(
        stats.funded_wei > 0 && stats.approval_cost_wei > 0,
        "{stats:?}"
    );
    assert!(stats.approval_cost_wei <= stats.funded_wei, "{stats:?}");

    // upto: the allowance is there; no second approval, no second funding.
    let paid = buyer.get(&format!("{}/upto", bed.url)).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(s.amount, Some(Amount::from(UPTO_USED_UNITS)));
    assert_eq!(
        bed.balance(who).await,
        U256::from(1_000_000 - EXACT_UNITS - UPTO_USED_UNITS)
    );
    assert_eq!(bed.nonce(who).await, 1);
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn a_fresh_wallet_pays_upto_first_with_its_approval() {
    let bed = ApprovalBed::start().await;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    let paid = bed
        .buyer(&wallet)
        .get(&format!("{}/upto", bed.url))
        .await
        .unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(s.amount, Some(Amount::from(UPTO_USED_UNITS)));
    assert_eq!(
        bed.balance(who).await,
        U256::from(1_000_000 - UPTO_USED_UNITS)
    );
    assert_eq!(bed.nonce(who).await, 1);
    assert_eq!(bed.sponsor.stats().approvals, 1);
}

/// One signed `exact` payment carrying an approval, ready to tamper with.
struct Signed {
    requirements: PaymentRequirements,
    payment: PaymentPayloadV2,
    info: serde_json::Value,
}

async fn sign_sponsored(bed: &ApprovalBed, path: &str, wallet: &PrivateKeySigner) -> Signed {
    let response = reqwest::get(format!("{}{path}", bed.url)).await.unwrap();
    let PaymentRequired::V2(required) = x402_buyer::read_402(response).await.unwrap() else {
        panic!("a v2 402")
    };
    let accepted = required.accepts[0].clone();
    let requirements = PaymentRequirements::V2(accepted.clone());
    let view = requirements.view().unwrap();
    let extensions = required.extensions.as_deref();
    let (chain_id, provider) = (bed.h.bed.chain_id(), bed.provider());
    let signer = Arc::new(wallet.clone());
    let signed = if path == "/upto" {
        scheme_upto_evm::Buyer::new(signer)
            .with_rpc(chain_id, provider)
            .sign_offered(&view, extensions)
            .await
    } else {
        scheme_exact_evm::Buyer::new(signer)
            .with_rpc(chain_id, provider)
            .sign_offered(&view, extensions)
            .await
    }
    .unwrap();
    let (key, entry) = signed.extensions.into_iter().next().expect("an entry");
    assert_eq!(key, ERC20_APPROVAL_GAS_SPONSORING);
    let entry: serde_json::Value = serde_json::from_str(entry.get()).unwrap();
    Signed {
        requirements,
        payment: PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: Some(required.resource),
            accepted,
            payload: signed.payload,
            extensions: None,
        },
        info: entry["info"].clone(),
    }
}

impl Signed {
    fn request(&self, info: &serde_json::Value) -> VerifyRequest {
        let mut payment = self.payment.clone();
        let extensions = serde_json::json!({ ERC20_APPROVAL_GAS_SPONSORING: { "info": info } });
        payment.extensions = Some(serde_json::value::to_raw_value(&extensions).unwrap());
        VerifyRequest::new(PaymentPayload::V2(payment), self.requirements.clone())
    }
}

/// The buyer's approval transaction with `edit` applied, signed by `signer`, as hex.
async fn raw_tx(
    signer: &PrivateKeySigner,
    token: Address,
    chain_id: u64,
    edit: impl FnOnce(&mut TxEip1559),
) -> String {
    let mut tx = TxEip1559 {
        chain_id,
        nonce: 0,
        gas_limit: 70_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(token),
        value: U256::ZERO,
        access_list: Default::default(),
        input: PlainToken::approveCall {
            spender: PERMIT2_ADDRESS,
            value: U256::MAX,
        }
        .abi_encode()
        .into(),
    };
    edit(&mut tx);
    let signature = signer.sign_hash(&tx.signature_hash()).await.unwrap();
    alloy::hex::encode_prefixed(TxEnvelope::from(tx.into_signed(signature)).encoded_2718())
}

#[tokio::test]
async fn every_approval_check_refuses_with_its_reason_and_nothing_is_broadcast() {
    let bed = ApprovalBed::start().await;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    let signed = sign_sponsored(&bed, "/exact", &wallet).await;
    let info = &signed.info;
    let (token, chain_id) = (bed.token, bed.h.bed.chain_id());
    let other = PrivateKeySigner::random();
    let with = |key: &str, value: serde_json::Value| {
        let mut i = info.clone();
        i[key] = value;
        i
    };
    let tx = |edit: Box<dyn FnOnce(&mut TxEip1559) + Send>| {
        let wallet = wallet.clone();
        async move { raw_tx(&wallet, token, chain_id, edit).await }
    };
    let approve = |spender: Address| -> Bytes {
        PlainToken::approveCall {
            spender,
            value: U256::MAX,
        }
        .abi_encode()
        .into()
    };
    let mut extra = approve(PERMIT2_ADDRESS).to_vec();
    extra.extend([0u8; 32]);
    let other_address = other.address();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "malformed transaction hex",
            with("signedTransaction", "0x12zz".into()),
            "invalid_erc20_approval_extension_format",
        ),
        (
            "another owner",
            with("from", other_address.to_checksum(None).into()),
            "erc20_approval_from_mismatch",
        ),
        (
            "another asset",
            with("asset", other_address.to_checksum(None).into()),
            "erc20_approval_asset_mismatch",
        ),
        (
            "info spender not Permit2",
            with("spender", other_address.to_checksum(None).into()),
            "erc20_approval_spender_not_permit2",
        ),
        (
            "not a transaction",
            with("signedTransaction", "0x02c0".into()),
            "erc20_approval_tx_parse_failed",
        ),
        (
            "another target",
            with(
                "signedTransaction",
                tx(Box::new(move |t| t.to = TxKind::Call(other_address)))
                    .await
                    .into(),
            ),
            "erc20_approval_tx_wrong_target",
        ),
        (
            "a transfer, not an approve",
            with(
                "signedTransaction",
                tx(Box::new(|t| {
                    let mut data = t.input.to_vec();
                    data[..4].copy_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
                    t.input = data.into();
                }))
                .await
                .into(),
            ),
            "erc20_approval_tx_wrong_selector",
        ),
        (
            "approve calldata with extra bytes",
            with(
                "signedTransaction",
                tx(Box::new(move |t| t.input = extra.into())).await.into(),
            ),
            "erc20_approval_tx_invalid_calldata",
        ),
        (
            "wrong spender in the calldata",
            with(
                "signedTransaction",
                tx(Box::new(move |t| t.input = approve(other_address)))
                    .await
                    .into(),
            ),
            "erc20_approval_tx_wrong_spender",
        ),
        (
            "another chain id",
            with(
                "signedTransaction",
                tx(Box::new(|t| t.chain_id = 1)).await.into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "moves ether",
            with(
                "signedTransaction",
                tx(Box::new(|t| t.value = U256::from(1u64))).await.into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "gas limit above the cap",
            with(
                "signedTransaction",
                tx(Box::new(|t| t.gas_limit = 10_000_000)).await.into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "max fee above the cap",
            with(
                "signedTransaction",
                tx(Box::new(|t| t.max_fee_per_gas = 10u128.pow(15)))
                    .await
                    .into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "max fee below the base fee",
            with(
                "signedTransaction",
                tx(Box::new(|t| {
                    t.max_fee_per_gas = 1;
                    t.max_priority_fee_per_gas = 1;
                }))
                .await
                .into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "a nonce not the buyer's next",
            with(
                "signedTransaction",
                tx(Box::new(|t| t.nonce = 5)).await.into(),
            ),
            "erc20_approval_tx_failed",
        ),
        (
            "signed by someone else",
            with(
                "signedTransaction",
                raw_tx(&other, token, chain_id, |_| {}).await.into(),
            ),
            "erc20_approval_tx_signer_mismatch",
        ),
    ];
    let facilitator = FacilitatorClient::new(bed.facilitator_url.clone());
    let seller = bed.h.bed.seller().address;
    let signer = bed.h.pool.addresses()[0];
    let snapshot = || async {
        (
            bed.balance(who).await,
            bed.balance(seller).await,
            bed.eth(who).await,
            bed.nonce(who).await,
            bed.nonce(signer).await,
            bed.allowance(who).await,
        )
    };
    let before = snapshot().await;
    assert_eq!((before.2, before.3, before.5), (U256::ZERO, 0, U256::ZERO));
    for (case, info, reason) in cases {
        let request = signed.request(&info);
        let verdict = facilitator.verify(&request).await.unwrap();
        assert!(!verdict.is_valid, "{case}: {verdict:?}");
        assert_eq!(
            verdict.invalid_reason.as_ref().map(|r| r.as_str()),
            Some(reason),
            "{case}: {verdict:?}"
        );
        let settlement = facilitator.settle(&request).await.unwrap();
        assert!(!settlement.success, "{case}: {settlement:?}");
        assert_eq!(
            settlement.error_reason.as_ref().map(|r| r.as_str()),
            Some(reason),
            "{case}: {settlement:?}"
        );
        assert_eq!(snapshot().await, before, "{case}: something was broadcast");
    }
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (0, 0), "{stats:?}");

    // A facilitator that does not fund gas refuses a wallet without ETH, nothing sent.
    let frugal = Arc::new(Erc20Sponsor::new(Erc20SponsorConfig::default()));
    let frugal_url = serve_sponsoring(&bed.h, token, Some(frugal.clone())).await;
    let request = signed.request(info);
    let frugal = FacilitatorClient::new(frugal_url);
    let verdict = frugal.verify(&request).await.unwrap();
    assert_eq!(
        verdict.invalid_reason.as_ref().map(|r| r.as_str()),
        Some("erc20_approval_insufficient_eth_for_gas"),
        "{verdict:?}"
    );
    let settlement = frugal.settle(&request).await.unwrap();
    assert_eq!(
        settlement.error_reason.as_ref().map(|r| r.as_str()),
        Some("erc20_approval_insufficient_eth_for_gas"),
        "{settlement:?}"
    );
    assert_eq!(
        snapshot().await,
        before,
        "no funding: nothing was broadcast"
    );

    // A facilitator that does not serve the extension ignores the approval: the payment is
    // refused for its missing allowance, as without it, and nothing is broadcast.
    let plain = FacilitatorClient::new(serve_sponsoring(&bed.h, token, None).await);
    let supported = plain.supported().await.unwrap();
    assert!(
        !supported
            .extensions
            .iter()
            .any(|e| e == ERC20_APPROVAL_GAS_SPONSORING)
    );
    let verdict = plain.verify(&request).await.unwrap();
    assert_eq!(
        verdict.invalid_reason.as_ref().map(|r| r.as_str()),
        Some("permit2_allowance_required"),
        "{verdict:?}"
    );
    let settlement = plain.settle(&request).await.unwrap();
    assert!(!settlement.success, "{settlement:?}");
    assert_eq!(
        snapshot().await,
        before,
        "not served: nothing was broadcast"
    );
    let supported = facilitator.supported().await.unwrap();
    assert!(
        supported
            .extensions
            .iter()
            .any(|e| e == ERC20_APPROVAL_GAS_SPONSORING)
    );

    // The untampered approval verifies and settles, once.
    assert!(facilitator.verify(&request).await.unwrap().is_valid);
    let settlement = facilitator.settle(&request).await.unwrap();
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(bed.balance(who).await, before.0 - U256::from(EXACT_UNITS));
    assert_eq!(bed.nonce(who).await, 1);
    let again = facilitator.settle(&request).await.unwrap();
    assert_eq!(again.transaction, settlement.transaction, "{again:?}");
    assert_eq!(bed.balance(who).await, before.0 - U256::from(EXACT_UNITS));
    assert_eq!(bed.sponsor.stats().approvals, 1);
}

#[tokio::test]
async fn two_concurrent_payments_of_a_fresh_wallet_broadcast_one_approval() {
    let bed = ApprovalBed::start().await;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    // Both signed before either settles: both carry an approval with the wallet's nonce 0.
    let first = sign_sponsored(&bed, "/exact", &wallet).await;
    let second = sign_sponsored(&bed, "/upto", &wallet).await;
    // The same nonce, fees and amount: the same signed approval, twice.
    assert_eq!(
        first.info["signedTransaction"],
        second.info["signedTransaction"]
    );
    let facilitator = FacilitatorClient::new(bed.facilitator_url.clone());
    let (a, b) = (first.request(&first.info), second.request(&second.info));
    let (ra, rb) = tokio::join!(facilitator.settle(&a), facilitator.settle(&b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // The payer's turn serializes them: the second finds the allowance and broadcasts nothing.
    assert!(ra.success && rb.success, "{ra:?}\n{rb:?}");
    assert_eq!(bed.nonce(who).await, 1, "one approval");
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (1, 1), "{stats:?}");
    assert_eq!(
        bed.balance(who).await,
        U256::from(1_000_000 - EXACT_UNITS - UPTO_MAX_UNITS)
    );
}

#[tokio::test]
async fn the_cli_signs_an_approval_with_its_evm_rpc() {
    let bed = ApprovalBed::start().await;
    let wallet = bed.fresh_wallet(1_000_000).await;
    let who = wallet.address();
    let key = format!("0x{}", alloy::hex::encode(wallet.to_bytes()));
    let asset = format!("{}:{}:6:PLAIN", bed.h.network, bed.token);
    let rpc = bed.h.bed.anvil().endpoint().to_owned();
    let url = format!("{}/exact", bed.url);
    let args: Vec<String> = [
        "pay",
        &url,
        "--max",
        "0.02",
        "--asset",
        &asset,
        "--evm-rpc",
        &rpc,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(code, x402_buyer::cli::Exit::Success, "{out}\n{err}");
    assert!(out.contains("exact, approval sponsored"), "{out}");
    assert_eq!(bed.balance(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(bed.nonce(who).await, 1);
    assert_eq!(bed.sponsor.stats().approvals, 1);
}
