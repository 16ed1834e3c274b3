//! What each network's block time and contracts demand: the expiry buffer follows the block time
//! and is configurable (S86); Multicall3 must exist at start-up when ERC-6492 factories are
//! configured; a transaction whose target has no code is refused before simulation (S32 beyond
//! the asset). Every refusal moves nothing and broadcasts nothing.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider as _;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall as _;
use scheme_exact_evm::Policy;
use x402_core::wire::{PaymentRequirements, PaymentRequirementsV2, VerifyRequest};
use x402_core::{
    BuyerRole as _, Catalogue, Clock, Facilitator as _, LocalFacilitator, MemoryStore, Price,
    PriceRequest, Reason, Registry, SchemeConfig, SellerRole as _, Shared, UnixTime, system_clock,
};
use x402_evm::addresses::{EXACT_PERMIT2_PROXY, MULTICALL3};
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_evm::window::{MIN_EXPIRY_BUFFER_SECONDS, default_expiry_buffer};
use x402_tests::evm::exact::{
    ExactHarness, PRICE, UNITS, assert_settle_refused, eip3009_with_signature, harness_tx_config,
    now, request_v2, usdc_info,
};
use x402_tests::evm::x402::{self as contracts, IWalletFactory};
use x402_tests::evm::{EvmTestBed, PERMIT2_ADDRESS};

use super::{Ctx, Kind, each_kind};

/// A clock that always reads the same time.
#[derive(Debug)]
struct Pinned(UnixTime);

impl Clock for Pinned {
    fn now(&self) -> UnixTime {
        self.0
    }
}

/// The expired-window reason of `kind`.
fn expired(kind: Kind) -> Reason {
    kind.pick(
        scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
        x402_evm::reason::PERMIT2_DEADLINE_EXPIRED,
    )
}

async fn s86(kind: Kind) {
    // Ethereum's chain id: 12-second blocks, so a buffer longer than a block (six seconds was
    // shorter than one).
    let buffer = default_expiry_buffer(1);
    assert!(buffer > 2 * 12, "{buffer} s is not two L1 blocks");
    let h =
        Arc::new(ExactHarness::start_on_chain(1, 1, Policy::default(), harness_tx_config()).await);
    let ctx = Ctx::for_key(h.clone(), kind, h.bed.buyer(0).signer.clone()).await;
    ctx.approve_permit2().await;
    // The facilitator's clock is pinned ahead of the chain's, so the chain's own time stays
    // inside every window below however long the test takes.
    let t = now() + 1_000;
    let f = h.fresh_facilitator(Policy::default(), Arc::new(Pinned(UnixTime(t))));
    let signed = |expiry: u64| {
        let mut message = ctx.message();
        message.set_window(now() - 600, expiry);
        ctx.signed(&message)
    };

    // One second inside the buffer: refused at verify and at settle; nothing moves.
    let within = signed(t + buffer - 1);
    let before = h.snapshot(&[ctx.payer]).await;
    let v = f.verify(&within).await.unwrap();
    assert_eq!(v.invalid_reason, Some(expired(kind)), "{v:?}");
    for attempt in 0..2 {
        let s = f.settle(&within).await.unwrap();
        assert_settle_refused(&s, expired(kind), &format!("within the buffer #{attempt}"));
    }
    h.assert_untouched(&before, "within the buffer").await;

    // Exactly the buffer away: accepted, and it settles.
    let outside = signed(t + buffer);
    let v = f.verify(&outside).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let seller = h.usdc(h.bed.seller().address).await;
    let s = f.settle(&outside).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        h.usdc(h.bed.seller().address).await,
        seller + U256::from(UNITS)
    );

    // The window refused on Ethereum is fine on a 2-second chain (Base Sepolia): per network.
    let base = ExactHarness::start().await;
    assert_eq!(default_expiry_buffer(84_532), MIN_EXPIRY_BUFFER_SECONDS);
    let base_ctx = Ctx::for_key(Arc::new(base), kind, h.bed.buyer(1).signer.clone()).await;
    base_ctx.approve_permit2().await;
    let mut message = base_ctx.message();
    message.set_window(now() - 600, t + buffer - 1);
    let f = base_ctx
        .h
        .fresh_facilitator(Policy::default(), Arc::new(Pinned(UnixTime(t))));
    let v = f.verify(&base_ctx.signed(&message)).await.unwrap();
    assert!(v.is_valid, "{v:?}");
}
each_kind!(s86_the_expiry_buffer_follows_the_block_time, s86);

/// The catalogue's `exact` and `upto` on the harness's chain, sharing one signer pool and store,
/// with `options` added to each scheme's table.
async fn from_config(h: &ExactHarness, options: serde_json::Value) -> LocalFacilitator {
    let catalogue = Catalogue::linked().unwrap();
    let shared = Arc::new(Shared::default());
    let store = Arc::new(MemoryStore::new());
    let mut table = serde_json::json!({
        "rpc_urls": [h.bed.endpoint()],
        "signer_keys": [format!("0x{}", alloy::hex::encode(h.bed.facilitator().signer.to_bytes()))],
        "assets": [h.bed.usdc()],
    });
    table
        .as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    let mut registry = Registry::new();
    for scheme in ["exact", "upto"] {
        let config = SchemeConfig {
            network: h.network.clone(),
            options: table.clone(),
            store: store.clone(),
            shared: shared.clone(),
        };
        registry
            .register_descriptor(catalogue.find(scheme, "eip155").unwrap(), config)
            .await
            .unwrap();
    }
    LocalFacilitator::new(registry)
}

/// `buyer`'s `upto` authorization of one price, valid for 120 s, for `f`'s facilitator.
async fn upto_payment(
    h: &ExactHarness,
    f: &LocalFacilitator,
    buyer: &PrivateKeySigner,
) -> VerifyRequest {
    let kind = f
        .supported()
        .await
        .unwrap()
        .kinds
        .into_iter()
        .find(|k| k.scheme == "upto")
        .unwrap();
    let mut assets = AssetTable::empty();
    assets.insert(
        h.network.clone(),
        usdc_info(h.bed.usdc(), TransferMethod::Permit2),
    );
    let req: PaymentRequirementsV2 = scheme_upto_evm::Seller::new(assets)
        .requirements(&PriceRequest {
            network: h.network.clone(),
            price: Price::Decimal(PRICE.into()),
            pay_to: h.bed.seller().address.to_checksum(None),
            asset: None,
            max_timeout_seconds: Some(120),
            facilitator_kind: Some(kind),
        })
        .await
        .unwrap();
    let view = PaymentRequirements::V2(req.clone());
    let payload = scheme_upto_evm::Buyer::new(Arc::new(buyer.clone()))
        .sign(&view.view().unwrap())
        .await
        .unwrap();
    request_v2(&req, payload)
}

/// `expiry_buffer_seconds` in a network's options holds for `exact` (EIP-3009 and Permit2) and
/// `upto`: buyers sign windows of 120 s, refused under a 200-second buffer (verify and settle,
/// nothing moves), accepted and settled under a 60-second one.
#[tokio::test]
async fn s86_the_expiry_buffer_is_configurable_per_network() {
    let h = ExactHarness::start().await;
    for b in h.bed.buyers() {
        h.bed
            .approve_usdc(b.address, PERMIT2_ADDRESS, U256::MAX)
            .await;
    }
    let strict = from_config(&h, serde_json::json!({"expiry_buffer_seconds": 200})).await;
    let lenient = from_config(&h, serde_json::json!({"expiry_buffer_seconds": 60})).await;
    let buyers: Vec<PrivateKeySigner> = h.bed.buyers().iter().map(|b| b.signer.clone()).collect();
    let eip3009 = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let permit2 = h.requirements(PRICE, TransferMethod::Permit2).await;
    let payments = [
        (
            "exact EIP-3009",
            h.pay_v2(&buyers[0], &eip3009).await,
            expired(Kind::Eip3009),
        ),
        (
            "exact Permit2",
            h.pay_v2(&buyers[1], &permit2).await,
            expired(Kind::Permit2),
        ),
        (
            "upto",
            upto_payment(&h, &strict, &buyers[2]).await,
            x402_evm::reason::PERMIT2_DEADLINE_EXPIRED,
        ),
    ];
    let watch: Vec<Address> = buyers.iter().map(PrivateKeySigner::address).collect();
    let before = h.snapshot(&watch).await;
    for (what, request, reason) in &payments {
        let v = strict.verify(request).await.unwrap();
        assert_eq!(v.invalid_reason.as_ref(), Some(reason), "{what}: {v:?}");
        let s = strict.settle(request).await.unwrap();
        assert_settle_refused(&s, reason.clone(), what);
    }
    h.assert_untouched(&before, "a 200-second buffer").await;
    for (what, request, _) in &payments {
        let v = lenient.verify(request).await.unwrap();
        assert!(v.is_valid, "{what}: {v:?}");
        let s = lenient.settle(request).await.unwrap();
        assert!(s.success, "{what}: {s:?}");
    }
    assert_eq!(
        h.usdc(h.bed.seller().address).await,
        before.usdc[0].1 + U256::from(3 * UNITS)
    );
}

async fn remove_code(bed: &EvmTestBed, address: Address) {
    let _: serde_json::Value = bed
        .provider()
        .raw_request("anvil_setCode".into(), (address, Bytes::new()))
        .await
        .unwrap();
    assert!(
        bed.provider()
            .get_code_at(address)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Start-up refuses ERC-6492 factories on a chain without Multicall3 (the deploy-and-pay batch
/// goes through it), naming it; without factories Multicall3 is not needed.
#[tokio::test]
async fn multicall3_is_required_at_start_up_with_erc6492_factories() {
    let h = ExactHarness::start().await;
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    remove_code(&h.bed, MULTICALL3).await;
    let nonces = h.signer_nonces().await;
    let descriptor = Catalogue::linked()
        .unwrap()
        .find("exact", "eip155")
        .unwrap();
    let options = |factories: Vec<Address>| {
        serde_json::json!({
            "rpc_urls": [h.bed.endpoint()],
            "signer_keys": [format!("0x{}", alloy::hex::encode(h.bed.facilitator().signer.to_bytes()))],
            "assets": [h.bed.usdc()],
            "erc6492_factories": factories,
        })
    };
    let e = (descriptor.build)(SchemeConfig::new(h.network.clone(), options(vec![factory])))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Multicall3") && e.contains(&MULTICALL3.to_string()),
        "{e}"
    );
    (descriptor.build)(SchemeConfig::new(h.network.clone(), options(Vec::new())))
        .await
        .expect("no factories: Multicall3 is not needed");
    assert_eq!(
        h.signer_nonces().await,
        nonces,
        "start-up sent a transaction"
    );
}

/// A Permit2 payment on a chain where the exact proxy has no code (a facilitator built without
/// the start-up checks): the simulation of a call to nothing would pass, and the settlement would
/// burn gas moving nothing; it is refused before, naming the proxy.
#[tokio::test]
async fn a_permit2_proxy_without_code_is_refused_before_simulation() {
    let ctx = Ctx::start(Kind::Permit2).await;
    remove_code(&ctx.h.bed, EXACT_PERMIT2_PROXY).await;
    let request = ctx.signed(&ctx.message());
    ctx.h
        .assert_refused(
            &request,
            x402_evm::reason::PERMIT2_PROXY_NOT_DEPLOYED,
            &[ctx.payer],
            "exact proxy without code",
        )
        .await;
    assert_eq!(ctx.h.pool.stats().sent, 0);
}

/// A counterfactual wallet's payment through an allow-listed factory on a chain without
/// Multicall3: its batch would call nothing; refused before simulation, nothing deployed or sent.
#[tokio::test]
async fn a_counterfactual_payment_without_multicall3_is_refused_before_simulation() {
    let h = ExactHarness::start().await;
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let f = h.fresh_facilitator(
        Policy {
            erc6492_factories: vec![factory],
            ..Policy::default()
        },
        system_clock(),
    );
    let owner = PrivateKeySigner::random();
    let salt = B256::with_last_byte(0x42);
    let wallet = contracts::wallet_factory(&h.bed, factory)
        .predict(owner.address(), salt)
        .call()
        .await
        .unwrap();
    h.bed.mint_usdc(wallet, U256::from(UNITS)).await;
    remove_code(&h.bed, MULTICALL3).await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let deploy = IWalletFactory::deployCall {
        owner: owner.address(),
        salt,
    }
    .abi_encode();
    let message = h.eip3009_message(wallet, &req);
    let inner = contracts::sign_eip712(&owner, &message, &h.usdc_domain());
    let signature = contracts::erc6492_wrap(factory, &deploy.into(), &inner);
    let request = request_v2(&req, eip3009_with_signature(&message, signature));
    let reason = scheme_exact_evm::reason::SMART_WALLET_DEPLOYMENT_FAILED;
    let before = h.snapshot(&[wallet]).await;
    let v = f.verify(&request).await.unwrap();
    assert_eq!(v.invalid_reason, Some(reason.clone()), "{v:?}");
    for attempt in 0..2 {
        let s = f.settle(&request).await.unwrap();
        assert_settle_refused(&s, reason.clone(), &format!("#{attempt}"));
    }
    h.assert_untouched(&before, "no Multicall3").await;
    assert!(
        h.bed
            .provider()
            .get_code_at(wallet)
            .await
            .unwrap()
            .is_empty()
    );
}
