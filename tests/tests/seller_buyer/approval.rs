//! `erc20ApprovalGasSponsoring` on anvil with a token without EIP-2612 (`contracts/test/
//! PlainToken.sol`): a fresh wallet holding tokens and no ETH pays `exact` (Permit2) and `upto`
//! through a seller declaring the extension — its signed `approve(Permit2)` rides in the
//! payment, the facilitator funds its gas, broadcasts it and then settles. Two concurrent
//! payments of the wallet produce one approval; every check refuses with its reason while
//! nothing is broadcast (the buyer's nonce and balances, the facilitator's nonce unchanged).

use std::sync::Arc;

use alloy::consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718 as _;
use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::Signer as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use axum::Extension;
use axum::routing::get;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequired, PaymentRequirements, VerifyRequest,
};
use x402_core::{
    Amount, BuyerRole as _, Facilitator as _, FacilitatorRole as _, LocalFacilitator, Price,
    Registry, SellerRole as _, X402Version,
};
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::facilitator::{Erc20Sponsor, Erc20SponsorConfig};
use x402_evm::sponsor::{
    EIP2612_GAS_SPONSORING, ERC20_APPROVAL_GAS_SPONSORING, eip2612_declaration,
};
use x402_seller::{Accept, Charge, RawExtension, Route, Seller};
use x402_tests::e2e::{Counting, EXACT_UNITS, UPTO_MAX_UNITS, UPTO_USED_UNITS};
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::tools;

use crate::settled;

alloy::sol! {
    #[sol(rpc)]
    contract PlainToken {
        constructor(string name_, string symbol_);
        function mint(address to, uint256 value) external;
        function balanceOf(address who) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
    }
}

const TOKEN_NAME: &str = "Plain Token";

/// The bed, the plain token, our facilitator with the sponsor, and a seller.
struct Bed {
    h: ExactHarness,
    token: Address,
    sponsor: Arc<Erc20Sponsor>,
    facilitator_url: String,
    url: String,
}

/// Deploys the plain token from the deployer.
async fn deploy_token(h: &ExactHarness) -> Address {
    let artifact = tools::read_json(&tools::contracts_dir(), "PlainToken.json");
    let code = artifact["bytecode"].as_str().expect("bytecode");
    let mut code = alloy::hex::decode(code.trim_start_matches("0x")).expect("hex");
    code.extend(
        PlainToken::constructorCall {
            name_: TOKEN_NAME.into(),
            symbol_: "PLAIN".into(),
        }
        .abi_encode(),
    );
    let tx = TransactionRequest::default()
        .with_from(h.bed.deployer().address)
        .with_deploy_code(Bytes::from(code));
    h.bed
        .send(tx, "deploy PlainToken")
        .await
        .contract_address
        .expect("a contract")
}

/// Our facilitator (exact and upto on the bed's network, the plain token only) sponsoring with
/// `config`, over HTTP.
async fn serve_sponsoring(h: &ExactHarness, token: Address, sponsor: Arc<Erc20Sponsor>) -> String {
    let exact = scheme_exact_evm::Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        scheme_exact_evm::Policy {
            assets: Some(vec![token]),
            ..scheme_exact_evm::Policy::default()
        },
    )
    .unwrap()
    .with_erc20_sponsor(sponsor.clone());
    let upto = scheme_upto_evm::Facilitator::new(
        h.network.clone(),
        h.bed.provider(),
        h.pool.clone(),
        h.store.clone(),
        scheme_upto_evm::Policy {
            assets: Some(vec![token]),
            ..scheme_upto_evm::Policy::default()
        },
    )
    .unwrap()
    .with_erc20_sponsor(sponsor);
    let mut registry = Registry::new();
    registry
        .register(
            h.network.as_str(),
            &[X402Version::V2],
            exact.into_scheme(),
        )
        .unwrap();
    registry
        .register(h.network.as_str(), &[X402Version::V2], upto.into_scheme())
        .unwrap();
    x402_tests::e2e::serve_facilitator(LocalFacilitator::new(registry)).await
}

fn funding() -> Erc20SponsorConfig {
    Erc20SponsorConfig {
        fund_gas: true,
        ..Erc20SponsorConfig::default()
    }
}

impl Bed {
    async fn start() -> Self {
        let h = ExactHarness::start().await;
        let token = deploy_token(&h).await;
        let sponsor = Arc::new(Erc20Sponsor::new(funding()));
        let facilitator_url = serve_sponsoring(&h, token, sponsor.clone()).await;
        let url = seller(&h, token, &facilitator_url).await;
        Self {
            h,
            token,
            sponsor,
            facilitator_url,
            url,
        }
    }

    fn provider(&self) -> DynProvider {
        self.h.bed.provider()
    }

    fn contract(&self) -> PlainToken::PlainTokenInstance<DynProvider> {
        PlainToken::new(self.token, self.provider())
    }

    async fn balance(&self, who: Address) -> U256 {
        self.contract().balanceOf(who).call().await.unwrap()
    }

    async fn allowance(&self, who: Address) -> U256 {
        self.contract()
            .allowance(who, PERMIT2_ADDRESS)
            .call()
            .await
            .unwrap()
    }

    async fn eth(&self, who: Address) -> U256 {
        self.provider().get_balance(who).await.unwrap()
    }

    async fn nonce(&self, who: Address) -> u64 {
        self.provider()
            .get_transaction_count(who)
            .pending()
            .await
            .unwrap()
    }

    /// A fresh wallet holding `units` of the token and no ETH.
    async fn fresh_wallet(&self, units: u64) -> PrivateKeySigner {
        let wallet = PrivateKeySigner::random();
        let tx = self
            .contract()
            .mint(wallet.address(), U256::from(units))
            .into_transaction_request()
            .from(self.h.bed.deployer().address);
        self.h.bed.send(tx, "mint").await;
        wallet
    }

    /// A buyer reading the chain (so it can sign approvals), paying in the plain token.
    fn buyer(&self, wallet: &PrivateKeySigner) -> Buyer {
        let signer = Arc::new(wallet.clone());
        let (chain_id, provider) = (self.h.bed.chain_id(), self.provider());
        let mut schemes = Registry::new();
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                scheme_exact_evm::Buyer::new(signer.clone())
                    .with_rpc(chain_id, provider.clone())
                    .into_scheme(),
            )
            .unwrap();
        schemes
            .register(
                scheme_upto_evm::ANY_NETWORK,
                scheme_upto_evm::VERSIONS,
                scheme_upto_evm::Buyer::new(signer)
                    .with_rpc(chain_id, provider)
                    .into_scheme(),
            )
            .unwrap();
        let mut policy = Policy::default();
        policy.assets.push(KnownAsset {
            network: self.h.network.clone(),
            address: self.token.to_checksum(None),
            decimals: 6,
            symbol: "PLAIN".into(),
        });
        Buyer::new(reqwest::Client::new(), schemes, policy)
    }
}

/// `/exact` (declaring both gas-sponsoring extensions: the token has no permit, so the buyer
/// falls back to its approval), `/upto` (charging [`UPTO_USED_UNITS`]), `/unsponsored`.
async fn seller(h: &ExactHarness, token: Address, facilitator_url: &str) -> String {
    let info = |method| AssetInfo {
        address: token,
        name: TOKEN_NAME.into(),
        version: "1".into(),
        decimals: 6,
        method,
    };
    let (mut exact_assets, mut upto_assets) = (AssetTable::empty(), AssetTable::empty());
    exact_assets.insert(h.network.clone(), info(TransferMethod::Permit2));
    upto_assets.insert(h.network.clone(), info(TransferMethod::Permit2));
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Seller::new(exact_assets).into_scheme(),
        )
        .unwrap();
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Seller::new(upto_assets).into_scheme(),
        )
        .unwrap();
    let client = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(
        facilitator_url.to_owned(),
    ))));
    let seller = Seller::new(client, schemes);
    let pay_to = h.bed.seller().address.to_checksum(None);
    let accept = |scheme: &str, units: u64| {
        Accept::new(
            scheme,
            h.network.clone(),
            pay_to.clone(),
            Price::Atomic(Amount::from(units)),
        )
        .max_timeout_seconds(120)
    };
    let approval = || {
        RawExtension::new(
            ERC20_APPROVAL_GAS_SPONSORING,
            x402_evm::sponsor::erc20::erc20_declaration(),
        )
    };
    let paywall = |route: Route| seller.paywall(route).expect("paywall");
    let router = axum::Router::new()
        .route(
            "/exact",
            get(|| async { "exact, approval sponsored" }).layer(paywall(
                Route::new()
                    .accept(accept("exact", EXACT_UNITS))
                    .extension(RawExtension::new(
                        EIP2612_GAS_SPONSORING,
                        eip2612_declaration(),
                    ))
                    .extension(approval()),
            )),
        )
        .route(
            "/upto",
            get(|| async {
                (
                    Extension(Charge(Amount::from(UPTO_USED_UNITS))),
                    "upto, approval sponsored",
                )
            })
            .layer(paywall(
                Route::new()
                    .accept(accept("upto", UPTO_MAX_UNITS))
                    .extension(approval()),
            )),
        )
        .route(
            "/unsponsored",
            get(|| async { "never" })
                .layer(paywall(Route::new().accept(accept("exact", EXACT_UNITS)))),
        );
    x402_tests::e2e::serve(router).await
}

#[tokio::test]
async fn a_fresh_wallet_without_eth_pays_exact_and_upto_with_its_signed_approval() {
    let bed = Bed::start().await;
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

    // exact: funded, approved (once, for good), settled.
    let paid = buyer.get(&format!("{}/exact", bed.url)).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(bed.balance(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(bed.balance(seller).await, U256::from(EXACT_UNITS));
    assert_eq!(bed.allowance(who).await, U256::MAX);
    assert_eq!(bed.nonce(who).await, 1, "the approval is the wallet's only transaction");
    let stats = bed.sponsor.stats();
    assert_eq!((stats.approvals, stats.fundings), (1, 1), "{stats:?}");
    assert!(stats.funded_wei > 0 && stats.approval_cost_wei > 0, "{stats:?}");
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
    let bed = Bed::start().await;
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

async fn sign_sponsored(bed: &Bed, path: &str, wallet: &PrivateKeySigner) -> Signed {
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
    let bed = Bed::start().await;
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
    let frugal_url = serve_sponsoring(&bed.h, token, frugal.clone()).await;
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
    assert_eq!(snapshot().await, before, "no funding: nothing was broadcast");

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
    let bed = Bed::start().await;
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
