//! A facilitator of `exact` on the EVM test bed, with a seller and buyers: everything a test of
//! the scheme needs to sign, verify and settle real payments on anvil.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use scheme_exact_evm::payload::{self, Eip3009Payload, ExactEvmPayload, Permit2Payload};
use scheme_exact_evm::{Buyer, Facilitator, Policy, Seller};
use x402_core::json::JsonLimits;
use x402_core::settlement::StoreError;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV2, Raw,
    SettleResponse, VerifyRequest, VerifyResponse,
};
use x402_core::{
    Amount, Claim, DispatchError, Facilitator as _, LocalFacilitator, MemoryStore, Network,
    Outcome, PaymentId, Price, PriceRequest, Reason, Registry, SettlementStore, SharedClock,
    ShiftedClock, UnixTime, X402Version, system_clock,
};
use x402_core::{BuyerRole as _, FacilitatorRole as _, SellerRole as _};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::abi::permit2_exact;
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_evm::signers::{SignerPool, TxConfig};

use crate::evm::x402::{deploy_wallet, deploy_wallet_factory, exact_payment, sign_eip712};
use crate::evm::{EvmTestBed, EvmTestBedConfig, USDC_DECIMALS, USDC_NAME, USDC_VERSION};

/// The price the `exact` tests charge, in decimal USDC.
pub const PRICE: &str = "0.01";
/// [`PRICE`] in USDC base units.
pub const UNITS: u64 = 10_000;

/// A test bed with an `exact` facilitator in front of it.
#[derive(Debug)]
pub struct ExactHarness {
    /// The chain.
    pub bed: EvmTestBed,
    /// The network (`eip155:<chain id>`).
    pub network: Network,
    /// The dispatcher with `exact` registered for v1 and v2.
    pub facilitator: LocalFacilitator,
    /// The facilitator's settlement store.
    pub store: Arc<MemoryStore>,
    /// The facilitator's signers.
    pub pool: SignerPool,
    /// The seller side (asset table with the bed's USDC).
    pub seller: Seller,
}

impl ExactHarness {
    /// A bed on chain 84532 (a chain v1 names: `base-sepolia`) with one facilitator signer.
    pub async fn start() -> Self {
        Self::start_with(1, Policy::default()).await
    }

    /// A bed with `signers` facilitator signers (funded fresh keys) and `policy`.
    pub async fn start_with(signers: usize, policy: Policy) -> Self {
        Self::start_with_tx(signers, policy, harness_tx_config()).await
    }

    /// A bed whose signer pool sends with `tx` (fee and gas caps, receipt polling) instead of the
    /// harness's defaults.
    pub async fn start_with_tx(signers: usize, mut policy: Policy, tx: TxConfig) -> Self {
        let bed = EvmTestBed::start_with(EvmTestBedConfig {
            chain_id: 84532,
            ..EvmTestBedConfig::default()
        })
        .await;
        let network = Network::eip155(bed.chain_id());
        let mut keys = vec![bed.facilitator().signer.clone()];
        for _ in 1..signers {
            let key = PrivateKeySigner::random();
            let _: serde_json::Value = bed
                .provider()
                .raw_request(
                    "anvil_setBalance".into(),
                    (key.address(), U256::from(10u128.pow(21))),
                )
                .await
                .expect("fund signer");
            keys.push(key);
        }
        let pool = SignerPool::new(bed.provider(), keys, tx)
            .await
            .expect("signer pool");
        if policy.assets.is_none() {
            policy.assets = Some(vec![bed.usdc()]);
        }
        let store = Arc::new(MemoryStore::new());
        let facilitator = Facilitator::new(
            network.clone(),
            bed.provider(),
            pool.clone(),
            store.clone(),
            policy,
        )
        .expect("facilitator");
        let mut registry = Registry::new();
        registry
            .register(
                network.as_str(),
                &[X402Version::V1, X402Version::V2],
                facilitator.into_scheme(),
            )
            .expect("register");
        let mut assets = AssetTable::empty();
        assets.insert(
            network.clone(),
            usdc_info(bed.usdc(), TransferMethod::Eip3009),
        );
        Self {
            network,
            facilitator: LocalFacilitator::new(registry),
            store,
            pool,
            seller: Seller::new(assets),
            bed,
        }
    }

    /// Requirements for `price` (decimal USDC) paid to the bed's seller, by EIP-3009 or Permit2.
    pub async fn requirements(&self, price: &str, method: TransferMethod) -> PaymentRequirementsV2 {
        let mut assets = AssetTable::empty();
        assets.insert(self.network.clone(), usdc_info(self.bed.usdc(), method));
        Seller::new(assets)
            .requirements(&PriceRequest {
                network: self.network.clone(),
                price: Price::Decimal(price.into()),
                pay_to: self.bed.seller().address.to_checksum(None),
                asset: None,
                max_timeout_seconds: Some(120),
                facilitator_kind: None,
            })
            .await
            .expect("requirements")
    }

    /// `buyer` signs `requirements` (any version) and returns the scheme payload.
    pub async fn sign(&self, buyer: &PrivateKeySigner, requirements: &PaymentRequirements) -> Raw {
        let view = requirements.view().expect("view");
        Buyer::new(Arc::new(buyer.clone()))
            .sign(&view)
            .await
            .expect("sign")
    }

    /// A v2 verify/settle request: `buyer` pays `requirements`.
    pub async fn pay_v2(
        &self,
        buyer: &PrivateKeySigner,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let reqs = PaymentRequirements::V2(requirements.clone());
        let payload = self.sign(buyer, &reqs).await;
        request_v2(requirements, payload)
    }

    /// A v1 verify/settle request for the same requirements written as v1.
    pub async fn pay_v1(
        &self,
        buyer: &PrivateKeySigner,
        requirements: &PaymentRequirementsV2,
    ) -> VerifyRequest {
        let reqs = PaymentRequirements::V1(to_v1(requirements));
        let payload = self.sign(buyer, &reqs).await;
        request_v1(requirements, payload)
    }

    /// The USDC balance of `who`.
    pub async fn usdc(&self, who: Address) -> U256 {
        self.bed.usdc_balance(who).await
    }

    /// Each facilitator signer's on-chain nonce: unchanged means nothing was broadcast.
    pub async fn signer_nonces(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for a in self.pool.addresses() {
            out.push(
                self.bed
                    .provider()
                    .get_transaction_count(a)
                    .pending()
                    .await
                    .expect("nonce"),
            );
        }
        out
    }

    /// Sends a request body through the dispatcher's JSON path, as the HTTP server will.
    pub async fn verify_json(&self, request: &VerifyRequest) -> x402_core::wire::VerifyResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .verify_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("verify")
    }

    /// Settles through the dispatcher's JSON path.
    pub async fn settle_json(&self, request: &VerifyRequest) -> x402_core::wire::SettleResponse {
        let body = serde_json::to_vec(request).expect("json");
        self.facilitator
            .settle_json(&body, JsonLimits::DEFAULT)
            .await
            .expect("settle")
    }

    /// Verifies a raw request body as the HTTP server will: `Err` is a 400-class refusal of a
    /// malformed body (or a facilitator failure), never a panic.
    pub async fn verify_body(&self, body: &[u8]) -> Result<VerifyResponse, DispatchError> {
        self.facilitator
            .verify_json(body, JsonLimits::DEFAULT)
            .await
    }

    /// Settles a raw request body (see [`ExactHarness::verify_body`]).
    pub async fn settle_body(&self, body: &[u8]) -> Result<SettleResponse, DispatchError> {
        self.facilitator
            .settle_json(body, JsonLimits::DEFAULT)
            .await
    }

    /// The USDC of the seller, the facilitator signers and `watch`, and the signers' ETH and
    /// nonces: compare two snapshots to check that nothing moved and nothing was broadcast.
    pub async fn snapshot(&self, watch: &[Address]) -> Snapshot {
        let signers = self.pool.addresses();
        let mut usdc = Vec::new();
        for &a in std::iter::once(&self.bed.seller().address)
            .chain(&signers)
            .chain(watch)
        {
            usdc.push((a, self.usdc(a).await));
        }
        let mut signer_eth = Vec::new();
        for &a in &signers {
            signer_eth.push(self.bed.provider().get_balance(a).await.expect("balance"));
        }
        Snapshot {
            usdc,
            signer_eth,
            signer_nonces: self.signer_nonces().await,
        }
    }

    /// Asserts NO-FUNDS and NO-BROADCAST against `before` (same `watch` list).
    pub async fn assert_untouched(&self, before: &Snapshot, what: &str) {
        let watch: Vec<Address> = before
            .usdc
            .iter()
            .skip(1 + self.pool.addresses().len())
            .map(|(a, _)| *a)
            .collect();
        let now = self.snapshot(&watch).await;
        assert_eq!(
            now.signer_nonces, before.signer_nonces,
            "{what}: the facilitator broadcast a transaction"
        );
        assert_eq!(now.usdc, before.usdc, "{what}: USDC moved");
        assert_eq!(
            now.signer_eth, before.signer_eth,
            "{what}: the facilitator spent ETH"
        );
    }

    /// Another dispatcher over the same chain and signers, with its own settlement `store`,
    /// `policy` (no asset list means the bed's USDC only) and `clock`.
    pub fn facilitator_with(
        &self,
        store: Arc<dyn SettlementStore>,
        mut policy: Policy,
        clock: SharedClock,
    ) -> LocalFacilitator {
        if policy.assets.is_none() {
            policy.assets = Some(vec![self.bed.usdc()]);
        }
        let facilitator = Facilitator::new(
            self.network.clone(),
            self.bed.provider(),
            self.pool.clone(),
            store,
            policy,
        )
        .expect("facilitator")
        .with_clock(clock);
        let mut registry = Registry::new();
        registry
            .register(
                self.network.as_str(),
                &[X402Version::V1, X402Version::V2],
                facilitator.into_scheme(),
            )
            .expect("register");
        LocalFacilitator::new(registry)
    }

    /// The EIP-3009 authorization a buyer's wallet signs for `requirements`: `from` pays the
    /// exact amount to `payTo`, valid from ten minutes ago for two minutes, with a random nonce.
    pub fn eip3009_message(
        &self,
        from: Address,
        requirements: &PaymentRequirementsV2,
    ) -> TransferWithAuthorization {
        let now = now();
        TransferWithAuthorization {
            from,
            to: requirements.pay_to.parse().expect("payTo"),
            value: requirements.amount.get(),
            validAfter: U256::from(now - 600),
            validBefore: U256::from(now + 120),
            nonce: random_b256(),
        }
    }

    /// The bed USDC's EIP-712 domain (what a correct EIP-3009 signature is made under).
    pub fn usdc_domain(&self) -> Eip712Domain {
        self.bed.usdc_domain()
    }

    /// The Permit2 witness transfer a buyer signs for `requirements`: exact amount of the asset
    /// to `payTo` through the exact proxy, valid from ten minutes ago for two minutes, with a
    /// random nonce.
    pub fn permit2_message(
        &self,
        requirements: &PaymentRequirementsV2,
    ) -> permit2_exact::PermitWitnessTransferFrom {
        let now = now();
        exact_payment(
            requirements.asset.parse().expect("asset"),
            requirements.amount.get(),
            requirements.pay_to.parse().expect("payTo"),
            U256::from_be_bytes(random_b256().0),
            now + 120,
            now - 600,
        )
    }

    /// Permit2's EIP-712 domain on the bed's chain.
    pub fn permit2_domain(&self) -> Eip712Domain {
        self.bed.permit2_domain()
    }

    /// A smart wallet (deployed through a fresh factory) owned by a spare dev account — which
    /// has ETH, so it can switch the wallet's validation — holding one price of USDC.
    pub async fn funded_wallet(&self) -> (Address, PrivateKeySigner) {
        let owner = self.bed.spare_accounts()[0].signer.clone();
        let factory = deploy_wallet_factory(&self.bed).await;
        let wallet = deploy_wallet(&self.bed, factory, owner.address(), B256::ZERO).await;
        self.bed.mint_usdc(wallet, U256::from(UNITS)).await;
        (wallet, owner)
    }

    /// Another dispatcher like [`ExactHarness::facilitator_with`], with a settlement store of its
    /// own.
    pub fn fresh_facilitator(&self, policy: Policy, clock: SharedClock) -> LocalFacilitator {
        self.facilitator_with(Arc::new(MemoryStore::new()), policy, clock)
    }

    /// A dispatcher with a store of its own and the real clock that accepts `asset` besides the
    /// bed's USDC.
    pub fn facilitator_listing(&self, asset: Address) -> LocalFacilitator {
        self.fresh_facilitator(
            Policy {
                assets: Some(vec![self.bed.usdc(), asset]),
                ..Policy::default()
            },
            system_clock(),
        )
    }

    /// Verify says `is_valid` (the control a negative variant is derived from).
    pub async fn assert_valid(&self, request: &VerifyRequest, what: &str) {
        let v = self.verify_json(request).await;
        assert!(
            v.is_valid,
            "{what}: the unmodified payment must verify: {v:?}"
        );
    }

    /// Verify and settle both refuse `request` with `reason`; nothing moves (the seller, the
    /// facilitator signers and `watch`) and nothing is broadcast.
    pub async fn assert_refused(
        &self,
        request: &VerifyRequest,
        reason: Reason,
        watch: &[Address],
        what: &str,
    ) {
        let before = self.snapshot(watch).await;
        let v = self.verify_json(request).await;
        assert!(!v.is_valid, "{what}: verify accepted: {v:?}");
        assert_eq!(
            v.invalid_reason,
            Some(reason.clone()),
            "{what}: verify {v:?}"
        );
        assert_settle_refused(&self.settle_json(request).await, reason, what);
        self.assert_untouched(&before, what).await;
    }

    /// A request body whose payload is malformed: verify and settle answer `invalid_payload`,
    /// never an error.
    pub async fn assert_payload_refused(&self, body: &[u8], what: &str) {
        let v = self
            .verify_body(body)
            .await
            .unwrap_or_else(|e| panic!("{what}: verify failed instead of answering: {e}"));
        assert!(!v.is_valid, "{what}: {v:?}");
        assert_eq!(
            v.invalid_reason,
            Some(Reason::INVALID_PAYLOAD),
            "{what}: {v:?}"
        );
        let s = self
            .settle_body(body)
            .await
            .unwrap_or_else(|e| panic!("{what}: settle failed instead of answering: {e}"));
        assert_settle_refused(&s, Reason::INVALID_PAYLOAD, what);
    }

    /// `request` verifies, then settling it is refused with `reason` — twice, the refusal gives
    /// the claim back rather than recording a duplicate — and nothing moves or is broadcast.
    pub async fn assert_settle_refused_twice(
        &self,
        request: &VerifyRequest,
        reason: Reason,
        watch: &[Address],
        what: &str,
    ) {
        self.assert_valid(request, what).await;
        let before = self.snapshot(watch).await;
        for attempt in 0..2 {
            let s = self.settle_json(request).await;
            assert_settle_refused(&s, reason.clone(), &format!("{what} #{attempt}"));
        }
        self.assert_untouched(&before, what).await;
        assert_eq!(self.pool.stats().sent, 0);
    }

    /// `request` (valid from 30 s ago for 60 s) verifies on a dispatcher with a clock of its own
    /// ([`ShiftedClock`]); settling it with the clock moved by each `(shift, reason)` is refused
    /// with `reason` and touches nothing; back at the real clock the same payment settles: the
    /// refusals burnt nothing.
    pub async fn assert_settle_rechecks_the_window(
        &self,
        request: &VerifyRequest,
        watch: &[Address],
        shifts: &[(i64, Reason)],
    ) {
        let clock = Arc::new(ShiftedClock::default());
        let f = self.fresh_facilitator(Policy::default(), clock.clone());
        let v = f.verify(request).await.expect("verify answers");
        assert!(v.is_valid, "{v:?}");
        let before = self.snapshot(watch).await;
        // Time moves between verify and settle (the chain itself would still accept the
        // payment: only the facilitator's re-check stands in the way).
        for (shift, reason) in shifts {
            clock.set_shift(*shift);
            let s = f.settle(request).await.expect("settle answers");
            let what = format!("shift {shift}");
            assert_settle_refused(&s, reason.clone(), &what);
            self.assert_untouched(&before, &what).await;
        }
        clock.set_shift(0);
        let s = f.settle(request).await.expect("settle answers");
        assert!(s.success, "{s:?}");
        assert_eq!(
            self.usdc(self.bed.seller().address).await,
            before.usdc[0].1 + U256::from(UNITS)
        );
    }

    /// Settles `request` through a dispatcher with a store of its own that sends `tx` (and mines
    /// it) the moment the payment is claimed: after verification and simulation, before the
    /// nonce check and the broadcast. Asserts that `tx` ran; returns that dispatcher (for
    /// retries), a snapshot of `watch` from just before, and the answer.
    pub async fn settle_racing(
        &self,
        tx: TransactionRequest,
        what: &'static str,
        request: &VerifyRequest,
        watch: &[Address],
    ) -> (LocalFacilitator, Snapshot, SettleResponse) {
        let provider = self.bed.provider();
        let store = Arc::new(HookStore::new(Box::new(move || {
            Box::pin(async move {
                let pending = provider.send_transaction(tx).await.expect(what);
                let receipt = pending.get_receipt().await.expect(what);
                assert!(receipt.status(), "{what} reverted");
            })
        })));
        let f = self.facilitator_with(store.clone(), Policy::default(), system_clock());
        let before = self.snapshot(watch).await;
        let s = f.settle(request).await.expect("settle answers");
        assert!(
            store.fired().await,
            "{what}: ran after the payment was verified"
        );
        (f, before, s)
    }

    /// A third party sends `front_run` — which uses `buyer`'s payment itself — after the
    /// facilitator verified `request` and before it broadcasts: the settle reports
    /// `authorization_already_used`, the price moved exactly once (by the front-runner's
    /// transaction) and the facilitator sent nothing; a later settle is a duplicate. Returns the
    /// answer.
    pub async fn assert_front_run_wins(
        &self,
        front_run: TransactionRequest,
        request: &VerifyRequest,
        buyer: Address,
    ) -> SettleResponse {
        let (f, before, s) = self
            .settle_racing(front_run, "front-run", request, &[buyer])
            .await;
        assert!(!s.success, "{s:?}");
        assert_eq!(
            s.error_reason,
            Some(Reason::AUTHORIZATION_ALREADY_USED),
            "{s:?}"
        );
        let after = self.snapshot(&[buyer]).await;
        assert_eq!(
            after.signer_nonces, before.signer_nonces,
            "nothing broadcast"
        );
        assert_eq!(after.signer_eth, before.signer_eth);
        assert_eq!(
            after.usdc[0].1,
            before.usdc[0].1 + U256::from(UNITS),
            "paid once"
        );
        assert_eq!(
            after.usdc.last().expect("the buyer").1,
            before.usdc.last().expect("the buyer").1 - U256::from(UNITS)
        );
        // And a later settle of the same payment is never a success.
        let again = f.settle(request).await.expect("settle answers");
        assert_duplicate(&again, &s.transaction, "settle after the front-run");
        self.assert_untouched(&after, "after the front-run").await;
        s
    }

    /// Settles `requests` — each valid alone, all paid by `buyer`, who holds one price — at
    /// once: exactly one settles, with one broadcast; every other is refused with one of
    /// `refusals` before broadcast; the buyer ends with nothing and the seller gained one price.
    pub async fn assert_only_one_affordable(
        self: &Arc<Self>,
        buyer: Address,
        requests: Vec<VerifyRequest>,
        refusals: &[Reason],
    ) {
        for r in &requests {
            self.assert_valid(r, "each alone").await;
        }
        let seller = self.bed.seller().address;
        let (s0, n0) = (self.usdc(seller).await, self.signer_nonces().await);
        let mut successes = 0;
        for s in settle_all(self, requests).await {
            if s.success {
                successes += 1;
            } else {
                assert!(
                    s.error_reason
                        .as_ref()
                        .is_some_and(|r| refusals.contains(r)),
                    "{s:?}"
                );
                assert_eq!(s.transaction, "", "refused before broadcast");
            }
        }
        assert_eq!(successes, 1);
        assert_eq!(self.pool.stats().sent, 1, "no transaction that must revert");
        assert_eq!(self.signer_nonces().await[0], n0[0] + 1);
        assert_eq!(self.usdc(buyer).await, U256::ZERO);
        assert_eq!(self.usdc(seller).await, s0 + U256::from(UNITS));
    }

    /// Settles each of `variants` — one payment by `buyer` written in different ways, each
    /// verifying alone — `rounds` times, all at once (with a verify before each settle of
    /// `verify_round`): exactly one settlement succeeds, with one broadcast, every other is a
    /// duplicate, and the price moved once. Returns the winning transaction.
    pub async fn assert_variants_settle_once(
        self: &Arc<Self>,
        buyer: Address,
        variants: &[(&'static str, VerifyRequest)],
        rounds: usize,
        verify_round: Option<usize>,
    ) -> String {
        for (what, request) in variants {
            self.assert_valid(request, what).await;
        }
        let seller = self.bed.seller().address;
        let (b0, s0, n0) = (
            self.usdc(buyer).await,
            self.usdc(seller).await,
            self.signer_nonces().await,
        );
        let mut tasks = Vec::new();
        for round in 0..rounds {
            for (what, request) in variants.iter().cloned() {
                let h = self.clone();
                tasks.push(tokio::spawn(async move {
                    if verify_round == Some(round) {
                        // Verifies mixed in: any answer, never an error.
                        let _ = h
                            .facilitator
                            .verify(&request)
                            .await
                            .expect("verify answers");
                    }
                    (
                        what,
                        h.facilitator
                            .settle(&request)
                            .await
                            .expect("settle answers"),
                    )
                }));
            }
        }
        let mut winners = Vec::new();
        let mut losers = 0;
        for t in tasks {
            let (what, s) = t.await.expect("settle task");
            if s.success {
                winners.push((what, s.transaction));
            } else {
                assert_eq!(
                    s.error_reason,
                    Some(Reason::DUPLICATE_SETTLEMENT),
                    "{what}: {s:?}"
                );
                losers += 1;
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(losers, rounds * variants.len() - 1);
        assert_eq!(self.pool.stats().sent, 1, "one broadcast");
        assert_eq!(self.signer_nonces().await[0], n0[0] + 1);
        assert_eq!(self.usdc(buyer).await, b0 - U256::from(UNITS));
        assert_eq!(self.usdc(seller).await, s0 + U256::from(UNITS));
        winners.remove(0).1
    }
}

/// Settles `requests` all at once through the harness's dispatcher; the answers in order.
pub async fn settle_all(
    h: &Arc<ExactHarness>,
    requests: impl IntoIterator<Item = VerifyRequest>,
) -> Vec<SettleResponse> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let h = h.clone();
            tokio::spawn(async move { h.facilitator.settle(&r).await.expect("settle answers") })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("settle task"));
    }
    out
}

/// Asserts `s` refuses with `reason` and names no transaction (nothing was broadcast).
pub fn assert_settle_refused(s: &SettleResponse, reason: Reason, what: &str) {
    assert!(!s.success, "{what}: settle succeeded: {s:?}");
    assert_eq!(s.error_reason, Some(reason), "{what}: settle {s:?}");
    assert_eq!(
        s.transaction, "",
        "{what}: settle names a transaction: {s:?}"
    );
}

/// Asserts `s` answers a payment already settled by `transaction`: a duplicate naming it, never
/// a second success.
pub fn assert_duplicate(s: &SettleResponse, transaction: &str, what: &str) {
    assert!(!s.success, "{what}: {s:?}");
    assert_eq!(
        s.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{what}: {s:?}"
    );
    assert_eq!(s.transaction, transaction, "{what}: {s:?}");
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    UnixTime::now().0
}

/// The scheme payload a request carries.
pub fn payload_of(request: &VerifyRequest) -> Raw {
    match &request.payment_payload {
        PaymentPayload::V1(p) => p.payload.clone(),
        PaymentPayload::V2(p) => p.payload.clone(),
    }
}

/// `request` as JSON with the member at `pointer` replaced by `value`.
///
/// # Panics
/// When the request has no member at `pointer`.
pub fn body_with(request: &VerifyRequest, pointer: &str, value: &serde_json::Value) -> Vec<u8> {
    let mut doc = serde_json::to_value(request).expect("json");
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the request has no {pointer}")) = value.clone();
    serde_json::to_vec(&doc).expect("json")
}

/// The non-canonical spellings of the uint256 10000 (threat-model S4).
pub fn non_canonical_10000() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!(""),
        json!("-1"),
        json!("+10000"),
        json!(" 10000"),
        json!("10000 "),
        json!("10_000"),
        json!("1e4"),
        json!("0x2710"),
        json!("010000"),
        json!("10000.0"),
        json!("１００００"),
        // 2^256: one past the largest uint256.
        json!("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
        json!(10000),
        json!(1e21),
        json!(null),
    ]
}

/// Base Sepolia's real USDC address: no code on the bed.
pub const CODELESS: Address =
    alloy::primitives::address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");

/// The signer-pool settings of the harness: the defaults with fast receipt polling.
pub fn harness_tx_config() -> TxConfig {
    TxConfig {
        poll_interval: std::time::Duration::from_millis(20),
        ..TxConfig::default()
    }
}

/// What [`ExactHarness::snapshot`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// USDC of the seller, each facilitator signer and each watched account, in that order.
    pub usdc: Vec<(Address, U256)>,
    /// ETH of each facilitator signer.
    pub signer_eth: Vec<U256>,
    /// Each facilitator signer's pending nonce.
    pub signer_nonces: Vec<u64>,
}

/// Signs `message` (an EIP-3009 authorization) under `domain` with `key`: the payload as a wallet
/// sends it.
pub fn eip3009_signed(
    key: &PrivateKeySigner,
    message: &TransferWithAuthorization,
    domain: &Eip712Domain,
) -> Raw {
    eip3009_with_signature(message, sign_eip712(key, message, domain))
}

/// An EIP-3009 payload for `message` carrying `signature` verbatim (forged, malformed, wrapped).
pub fn eip3009_with_signature(message: &TransferWithAuthorization, signature: Bytes) -> Raw {
    payload::to_json(&ExactEvmPayload::Eip3009(Eip3009Payload {
        signature,
        from: message.from,
        to: message.to,
        value: message.value,
        valid_after: message.validAfter,
        valid_before: message.validBefore,
        nonce: message.nonce,
    }))
    .expect("payload json")
}

/// Signs a Permit2 witness transfer of `owner` under `domain` with `key`.
pub fn permit2_signed(
    key: &PrivateKeySigner,
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    domain: &Eip712Domain,
) -> Raw {
    permit2_with_signature(owner, message, sign_eip712(key, message, domain))
}

/// A Permit2 payload of `owner` for `message` carrying `signature` verbatim.
pub fn permit2_with_signature(
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    signature: Bytes,
) -> Raw {
    payload::to_json(&ExactEvmPayload::Permit2(Permit2Payload {
        signature,
        from: owner,
        token: message.permitted.token,
        amount: message.permitted.amount,
        spender: message.spender,
        nonce: message.nonce,
        deadline: message.deadline,
        witness_to: message.witness.to,
        valid_after: message.witness.validAfter,
    }))
    .expect("payload json")
}

/// An action a [`HookStore`] runs once.
pub type ClaimHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A [`MemoryStore`] that runs a hook the first time a claim is acquired: after the facilitator
/// verified (and simulated) a payment and before it checks the nonce and broadcasts. Tests use
/// it to change the chain at exactly that moment (a front-runner, a wallet that flips).
pub struct HookStore {
    inner: MemoryStore,
    hook: tokio::sync::Mutex<Option<ClaimHook>>,
}

impl std::fmt::Debug for HookStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl HookStore {
    /// A store that runs `hook` on its first acquired claim.
    pub fn new(hook: ClaimHook) -> Self {
        Self {
            inner: MemoryStore::new(),
            hook: tokio::sync::Mutex::new(Some(hook)),
        }
    }

    /// Whether the hook has run.
    pub async fn fired(&self) -> bool {
        self.hook.lock().await.is_none()
    }
}

#[async_trait::async_trait]
impl SettlementStore for HookStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let claim = self.inner.claim(id, expires).await?;
        if matches!(claim, Claim::Acquired) {
            let hook = self.hook.lock().await.take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        Ok(claim)
    }

    async fn release(&self, id: &PaymentId) -> Result<(), StoreError> {
        self.inner.release(id).await
    }

    async fn complete(&self, id: &PaymentId, outcome: Outcome) -> Result<(), StoreError> {
        self.inner.complete(id, outcome).await
    }

    async fn outcome(&self, id: &PaymentId) -> Result<Option<Outcome>, StoreError> {
        self.inner.outcome(id).await
    }
}

/// The bed's USDC as an asset-table entry.
pub fn usdc_info(address: Address, method: TransferMethod) -> AssetInfo {
    AssetInfo {
        address,
        name: USDC_NAME.into(),
        version: USDC_VERSION.into(),
        decimals: USDC_DECIMALS,
        method,
    }
}

/// A v1 request for `requirements` written as v1 (see [`to_v1`]: the network by its v1 name,
/// `maxAmountRequired`), carrying `payload`.
pub fn request_v1(requirements: &PaymentRequirementsV2, payload: Raw) -> VerifyRequest {
    let v1 = to_v1(requirements);
    VerifyRequest::new(
        PaymentPayload::V1(PaymentPayloadV1 {
            x402_version: X402Version::V1,
            scheme: v1.scheme.clone(),
            network: v1.network.clone(),
            payload,
        }),
        PaymentRequirements::V1(v1),
    )
}

pub use crate::wire::{request_v2, to_v1};

/// 32 random bytes (a fresh key's secret).
pub fn random_b256() -> B256 {
    PrivateKeySigner::random().to_bytes()
}

/// `amount` as a uint256.
pub fn units(amount: Amount) -> U256 {
    amount.get()
}
