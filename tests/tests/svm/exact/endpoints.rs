//! What the facilitator asks of each RPC endpoint (threat-model S74, issue #12 "RPC faults"):
//!
//! * the send's preflight runs at `processed`, the state the transaction executes against;
//! * once start-up has pinned the chain by its genesis hash, an endpoint that failed is used
//!   again only after its genesis hash is read anew and matches: one that comes back serving
//!   another cluster is skipped (its reads and sends go to the next endpoint), and taken back
//!   when it serves ours again.

use std::sync::Arc;
use std::time::Duration;

use scheme_exact_svm::rpc::Rpc;
use scheme_exact_svm::{Facilitator, check_genesis};
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_core::{Facilitator as _, LocalFacilitator, MemoryStore, Network};
use x402_tests::solana::exact::{RpcProxy, SendMode, SvmHarness, harness_policy, local};

use super::{AMOUNT, TX_FEE};

/// Calls of `method` the proxy received so far.
fn count(proxy: &RpcProxy, method: &str) -> usize {
    proxy.calls().iter().filter(|m| *m == method).count()
}

/// Pays one request through `f` and checks it moved exactly one payment's worth and one fee.
async fn pays_once(h: &SvmHarness, f: &LocalFacilitator) {
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let s0 = h.bed.token_balance(&h.seller.pubkey(), &mint.address).await;
    let sol0: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    let v = f.verify(&request).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let s = f.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        s0 + AMOUNT,
        "one transfer"
    );
    let sol1: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    assert_eq!(sol0 - sol1, TX_FEE, "one fee");
}

#[tokio::test]
async fn the_preflight_runs_at_processed_and_a_recovered_endpoint_must_serve_our_chain_again() {
    let h = SvmHarness::start().await;
    let first = RpcProxy::start(h.bed.rpc_url(), SendMode::Forward).await;
    let urls = [first.url().to_owned(), h.proxy.url().to_owned()];
    let rpc = Rpc::new(&urls, Duration::from_secs(5)).unwrap();
    // The harness serves the validator under solana-devnet's id; the chain pinned here is the
    // validator's own, as `check_genesis` pins it for the configured network at start-up.
    let genesis = h.bed.rpc().get_genesis_hash().await.unwrap().to_string();
    let local_chain = Network::parse(&format!("solana:{}", &genesis[..32])).unwrap();
    check_genesis(&rpc, &local_chain).await.unwrap();
    let f = local(
        &h.network,
        Facilitator::new(
            h.network.clone(),
            rpc,
            h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
            Arc::new(MemoryStore::new()),
            harness_policy(),
        )
        .unwrap(),
    );

    // Healthy: the first endpoint takes everything, the preflight at `processed`.
    pays_once(&h, &f).await;
    assert_eq!(first.transactions_sent(), 1);
    assert_eq!(first.preflight_commitments(), vec!["processed".to_owned()]);
    assert_eq!(h.proxy.transactions_sent(), 0);

    // Down: the next endpoint serves; the first is now suspect.
    first.set_down(true);
    pays_once(&h, &f).await;
    assert_eq!(h.proxy.transactions_sent(), 1);
    assert_eq!(
        h.proxy.preflight_commitments(),
        vec!["processed".to_owned()]
    );

    // Back, but serving another cluster: asked only for its genesis hash, never for a read or a
    // send; the payment goes through the next endpoint.
    first.set_down(false);
    first.set_other_chain(true);
    let before = first.calls().len();
    let genesis_before = count(&first, "getGenesisHash");
    pays_once(&h, &f).await;
    let after = first.calls();
    assert!(
        after[before..].iter().all(|m| m == "getGenesisHash"),
        "an endpoint on another chain was asked {:?}",
        &after[before..]
    );
    assert!(count(&first, "getGenesisHash") > genesis_before);
    assert_eq!(
        first.transactions_sent(),
        1,
        "no send through the other chain's endpoint"
    );
    assert_eq!(h.proxy.transactions_sent(), 2);

    // Serving ours again: taken back after one more genesis read.
    first.set_other_chain(false);
    pays_once(&h, &f).await;
    assert_eq!(first.transactions_sent(), 2, "the endpoint is used again");
    assert_eq!(h.proxy.transactions_sent(), 2);
}

/// A facilitator over `proxy` alone, with the harness's fee payers.
fn over(h: &SvmHarness, proxy: &RpcProxy) -> LocalFacilitator {
    let rpc = Rpc::new(&[proxy.url().to_owned()], Duration::from_secs(5)).unwrap();
    local(
        &h.network,
        Facilitator::new(
            h.network.clone(),
            rpc,
            h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
            Arc::new(MemoryStore::new()),
            harness_policy(),
        )
        .unwrap(),
    )
}

/// A verify is one HTTP round trip, `[getMultipleAccounts, simulateTransaction]` in one JSON-RPC
/// batch (issue 19). An endpoint that refuses batches is asked the two calls one after the
/// other, and is not sent a batch again for a while; the verdict is the same either way.
#[tokio::test]
async fn a_verify_is_one_round_trip_and_an_endpoint_refusing_batches_is_asked_twice() {
    let h = SvmHarness::start().await;
    let proxy = RpcProxy::start(h.bed.rpc_url(), SendMode::Forward).await;
    let f = over(&h, &proxy);
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;

    // What one verify sent: (HTTP requests, of them batches) and the calls, in order.
    let verify = async || {
        let (requests, batches) = proxy.requests();
        let calls = proxy.calls().len();
        let v = f.verify(&request).await.unwrap();
        assert!(v.is_valid, "{v:?}");
        let after = proxy.requests();
        (
            (after.0 - requests, after.1 - batches),
            proxy.calls()[calls..].to_vec(),
        )
    };
    let both = vec![
        "getMultipleAccounts".to_owned(),
        "simulateTransaction".to_owned(),
    ];

    assert_eq!(verify().await, ((1, 1), both.clone()), "one batch");
    assert_eq!(proxy.simulations().1, 0, "never a co-signed simulation");

    // Refused: the batch, then the two calls singly; then singly only, remembered.
    proxy.set_refuse_batches(true);
    assert_eq!(verify().await, ((3, 0), both.clone()), "refused, then two");
    assert_eq!(verify().await, ((2, 0), both.clone()), "two, remembered");
    proxy.set_refuse_batches(false);
    assert_eq!(
        verify().await,
        ((2, 0), both),
        "still two: batches are tried again only after BATCH_RECHECK"
    );
    assert_eq!(proxy.sends(), 0, "a verify sends nothing");
}
