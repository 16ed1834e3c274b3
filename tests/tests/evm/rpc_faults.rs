//! RPC faults never turn into wrong answers: an `exact` facilitator whose provider goes through
//! fault-injecting proxies in front of anvil. A JSON-RPC or HTTP error is a transient failure,
//! never a verdict; rate limits are backed off (per `Retry-After`) and failed over; a send that
//! may have reached a node is watched (its receipt settles it), never settled twice; an endpoint on
//! another chain is refused; a lagging node cannot make a payment settle twice. Every refusal
//! checks that nothing was broadcast and no funds or nonces moved. [`fresh`]: reads behind the
//! newest block seen are never taken; [`stuck`]: lost sends go out again, stuck ones are replaced;
//! [`blocks`]: receipts come from one read per block; [`coalesce`]: concurrent reads share one
//! head check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blocks;
mod coalesce;
mod fresh;
mod stuck;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::DynProvider;
use scheme_exact_evm::{Facilitator, Policy};
use x402_core::wire::VerifyRequest;
use x402_core::{
    Facilitator as _, FacilitatorError, FacilitatorRole as _, LocalFacilitator, MemoryStore,
    Reason, Registry, SchemeError, SettlementStore as _,
};
use x402_evm::assets::TransferMethod;
use x402_evm::error::ConnectError;
use x402_evm::provider::{RpcOptions, connect_checked};
use x402_evm::signers::{SignerPool, TxConfig};
use x402_tests::evm::exact::{ExactHarness, UNITS, harness_tx_config};
use x402_tests::evm::rpc_proxy::{Fault, RpcProxy};

const SEND: &str = "eth_sendRawTransaction";

/// A bed, proxies in front of its anvil, and a facilitator reading and sending through them (in
/// list order, with failover) with a store of its own.
struct Proxied {
    h: ExactHarness,
    proxies: Vec<RpcProxy>,
    facilitator: LocalFacilitator,
    store: Arc<MemoryStore>,
    pool: SignerPool,
    provider: DynProvider,
}

fn options(h: &ExactHarness) -> RpcOptions {
    RpcOptions {
        timeout: Duration::from_secs(5),
        chain_id: Some(h.bed.chain_id()),
        ..RpcOptions::default()
    }
}

impl Proxied {
    async fn start(endpoints: usize) -> Self {
        let h = ExactHarness::start().await;
        let options = options(&h);
        Self::over(h, endpoints, options).await
    }

    async fn over(h: ExactHarness, endpoints: usize, options: RpcOptions) -> Self {
        Self::with_tx(h, endpoints, options, harness_tx_config()).await
    }

    /// Like [`Proxied::over`], the pool sending with `tx`.
    async fn with_tx(h: ExactHarness, endpoints: usize, options: RpcOptions, tx: TxConfig) -> Self {
        let mut proxies = Vec::new();
        for _ in 0..endpoints {
            proxies.push(RpcProxy::start(h.bed.endpoint()).await);
        }
        let urls: Vec<&str> = proxies.iter().map(RpcProxy::url).collect();
        let provider = connect_checked(&urls, &options).await.expect("provider");
        let pool = SignerPool::new(
            provider.clone(),
            vec![h.bed.facilitator().signer.clone()],
            tx,
        )
        .await
        .expect("pool");
        let store = Arc::new(MemoryStore::new());
        let facilitator = facilitator(&h, provider.clone(), pool.clone(), store.clone());
        Self {
            h,
            proxies,
            facilitator,
            store,
            pool,
            provider,
        }
    }

    async fn payment(&self, buyer: usize) -> VerifyRequest {
        let req = self
            .h
            .requirements(x402_tests::evm::exact::PRICE, TransferMethod::Eip3009)
            .await;
        self.h
            .pay_v2(&self.h.bed.buyer(buyer).signer.clone(), &req)
            .await
    }

    /// Sends that reached anvil through any proxy.
    fn broadcasts(&self) -> usize {
        self.proxies.iter().map(|p| p.forwarded(SEND)).sum()
    }
}

fn facilitator(
    h: &ExactHarness,
    provider: DynProvider,
    pool: SignerPool,
    store: Arc<MemoryStore>,
) -> LocalFacilitator {
    let policy = Policy {
        assets: Some(vec![h.bed.usdc()]),
        ..Policy::default()
    };
    let f =
        Facilitator::new(h.network.clone(), provider, pool, store, policy).expect("facilitator");
    let mut registry = Registry::new();
    registry
        .register(
            h.network.as_str(),
            scheme_exact_evm::VERSIONS,
            f.into_scheme(),
        )
        .expect("register");
    LocalFacilitator::new(registry)
}

fn assert_transient<T: std::fmt::Debug>(result: Result<T, FacilitatorError>, what: &str) {
    match result {
        Err(FacilitatorError::Scheme(SchemeError::Rpc(text))) => {
            assert!(!text.contains("127.0.0.1"), "{what}: a URL leaked: {text}");
        }
        other => panic!("{what}: expected a transient RPC failure, got {other:?}"),
    }
}

#[tokio::test]
async fn rpc_errors_are_transient_failures_never_verdicts_and_send_nothing() {
    let p = Proxied::start(1).await;
    let proxy = &p.proxies[0];
    let request = p.payment(0).await;
    let payer = p.h.bed.buyer(0).address;
    let before = p.h.snapshot(&[payer]).await;
    let faults = [
        ("internal error", Fault::error(-32603, "internal error")),
        ("limit exceeded", Fault::error(-32005, "limit exceeded")),
        ("header not found", Fault::error(-32000, "header not found")),
        (
            "429 without a body",
            Fault::RateLimited {
                body: false,
                retry_after: None,
            },
        ),
        ("dropped connection", Fault::Drop),
    ];
    for (what, fault) in faults {
        proxy.fault("eth_call", fault);
        assert_transient(p.facilitator.verify(&request).await, what);
        assert_transient(p.facilitator.settle(&request).await, what);
        proxy.heal();
    }
    assert_eq!(p.broadcasts(), 0, "nothing was broadcast");
    assert_eq!(p.h.snapshot(&[payer]).await, before, "nothing moved");

    // Sends refused for a rate limit everywhere never reached a node: nothing is pending, the
    // nonce is given back and the payment stays settleable.
    proxy.fault(
        SEND,
        Fault::RateLimited {
            body: true,
            retry_after: Some(0),
        },
    );
    let s = p.facilitator.settle(&request).await.unwrap();
    assert_eq!(
        s.error_reason,
        Some(Reason::UNEXPECTED_SETTLE_ERROR),
        "{s:?}"
    );
    assert_eq!(s.transaction, "", "{s:?}");
    assert_eq!(p.broadcasts(), 0);
    assert_eq!(
        proxy.received(SEND),
        1 + x402_evm::provider::RATE_LIMIT_RETRIES as usize
    );
    assert_eq!(p.h.snapshot(&[payer]).await, before, "nothing moved");
    assert_eq!(p.store.counts().await.unwrap().unresolved, 0);

    proxy.heal();
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    let s = p.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        p.h.usdc(p.h.bed.seller().address).await,
        before.usdc[0].1 + U256::from(UNITS)
    );
}

#[tokio::test]
async fn rate_limits_are_backed_off_per_retry_after_then_failed_over() {
    let p = Proxied::start(2).await;
    let (first, second) = (&p.proxies[0], &p.proxies[1]);
    let request = p.payment(0).await;

    // Refused twice with `Retry-After: 1`, then served: three attempts, a second apart at least.
    let limited = Fault::RateLimited {
        body: true,
        retry_after: Some(1),
    };
    first.fault_times("eth_call", limited, 2);
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    let arrivals = first.arrivals("eth_call");
    assert_eq!(arrivals.len(), 3, "two refusals, one answer");
    for pair in arrivals.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_secs(1), "{arrivals:?}");
    }
    assert_eq!(second.received("eth_call"), 0, "no failover was needed");

    // A JSON-RPC -32005 without an HTTP error status, twice: backed off, same endpoint.
    first.fault_times("eth_call", Fault::error(-32005, "limit exceeded"), 2);
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    assert_eq!(first.received("eth_call"), 6);
    assert_eq!(second.received("eth_call"), 0);

    // Asked to wait longer than is honoured: no wait, the next endpoint answers.
    first.fault(
        "eth_call",
        Fault::RateLimited {
            body: false,
            retry_after: Some(3600),
        },
    );
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    assert_eq!(first.received("eth_call"), 7, "asked once");
    assert_eq!(second.received("eth_call"), 1);
    assert!(second.received("eth_chainId") >= 1, "checked before use");
}

#[tokio::test]
async fn a_dead_endpoint_fails_over_and_the_payment_settles_once() {
    let p = Proxied::start(2).await;
    let request = p.payment(0).await;
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    p.proxies[0].fault("*", Fault::Drop);
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    let s = p.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(p.proxies[0].forwarded(SEND), 0);
    assert_eq!(p.proxies[1].forwarded(SEND), 1);
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS));
    let again = p.facilitator.settle(&request).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS));
}

#[tokio::test]
async fn an_endpoint_on_another_chain_is_refused_at_start_and_taken_out_of_rotation() {
    let h = ExactHarness::start().await;
    let wrong = RpcProxy::start(h.bed.endpoint()).await;
    let right = RpcProxy::start(h.bed.endpoint()).await;
    wrong.fault("eth_chainId", Fault::Result("0x1".into()));
    let err = connect_checked(&[wrong.url(), right.url()], &options(&h))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::WrongChain {
                index: 0,
                served: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");

    // At run time: the first endpoint switches chains; after its next failure (a reconnect) it
    // is checked again, found on chain 1 and skipped from then on, though it is the first.
    let opts = RpcOptions {
        primary_retry_after: Duration::ZERO,
        ..options(&h)
    };
    let p = Proxied::over(h, 2, opts).await;
    let (first, second) = (&p.proxies[0], &p.proxies[1]);
    let request = p.payment(0).await;
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    assert_eq!(
        (first.received("eth_call"), second.received("eth_call")),
        (1, 0)
    );
    first.fault("eth_chainId", Fault::Result("0x1".into()));
    first.fault_times("eth_call", Fault::Drop, 1);
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    assert_eq!(
        (first.received("eth_call"), second.received("eth_call")),
        (2, 1)
    );
    assert!(p.facilitator.verify(&request).await.unwrap().is_valid);
    let s = p.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(first.received("eth_call"), 2, "never asked again");
    assert_eq!(first.received(SEND), 0);
    assert_eq!(second.forwarded(SEND), 1);
}

/// Settles `request` while the send is answered with an error although it reached anvil (which
/// mines it): the send is ambiguous, so the settle watches it instead of signing anything else —
/// the receipt settles it, once.
async fn settle_through_a_lost_send(p: &Proxied, request: &VerifyRequest) {
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    let signer = p.pool.addresses()[0];
    let nonce = p.pool.next_nonce(signer).await.unwrap();

    let s = p.facilitator.settle(request).await.unwrap();
    assert!(
        s.success,
        "the lost send is watched and its receipt found: {s:?}"
    );
    assert!(!s.transaction.is_empty(), "{s:?}");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "it landed");
    assert_eq!(
        p.pool.next_nonce(signer).await,
        Some(nonce + 1),
        "the nonce is kept"
    );
    assert_eq!(p.store.counts().await.unwrap().unresolved, 0);
    let again = p.facilitator.settle(request).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction, s.transaction);
    assert_eq!(p.broadcasts(), 1, "one transaction, ever");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "paid once");
    // The pool goes on with the next nonce.
    let next = p.payment(1).await;
    let s = p.facilitator.settle(&next).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(p.pool.next_nonce(signer).await, Some(nonce + 2));
}

#[tokio::test]
async fn a_send_answered_with_an_error_after_it_reached_the_node_is_watched_and_lands_once() {
    let p = Proxied::start(1).await;
    let request = p.payment(0).await;
    p.proxies[0].fault_times(
        SEND,
        Fault::error_after_forward(-32603, "internal error"),
        1,
    );
    settle_through_a_lost_send(&p, &request).await;
}

#[tokio::test]
async fn a_failover_endpoint_refusing_a_send_the_first_may_have_delivered_is_not_a_refusal() {
    let p = Proxied::start(2).await;
    let request = p.payment(0).await;
    // The first endpoint delivers the transaction and loses the answer; the second one answers
    // an error without forwarding (it would say "nonce too low" once the first copy is mined).
    p.proxies[0].fault_times(SEND, Fault::DropAfterForward, 1);
    p.proxies[1].fault_times(SEND, Fault::error(-32000, "nonce too low"), 1);
    settle_through_a_lost_send(&p, &request).await;
    assert_eq!(
        p.proxies[1].received(SEND),
        1,
        "the failover endpoint was asked"
    );
}
