//! Two facilitator replicas sharing one PostgreSQL store and the same fee payers (issue #11,
//! threat-model S25): one payment, sent 20 times across both, lands once.

use std::sync::Arc;

use scheme_exact_svm::Facilitator;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_core::{Facilitator as _, Reason, StoreOptions};
use x402_tests::postgres::PgServer;
use x402_tests::solana::exact::{SvmHarness, harness_policy, local, rpc};

use super::{AMOUNT, TX_FEE};

#[tokio::test]
async fn two_replicas_with_one_store_settle_one_payment_sent_twenty_times_once() {
    let h = Arc::new(SvmHarness::start().await);
    let pg = PgServer::start();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // Each replica opens the store itself, as a separate process would.
        let store = x402_store::open(&pg.url(), StoreOptions::default())
            .await
            .expect("the shared store");
        let facilitator = Facilitator::new(
            h.network.clone(),
            rpc(h.proxy.url()),
            h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
            store,
            harness_policy(),
        )
        .unwrap();
        replicas.push(local(&h.network, facilitator));
    }
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let s0 = h.bed.token_balance(&h.seller.pubkey(), &mint.address).await;
    let sol0: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let f = replicas[i % 2].clone();
        let request = request.clone();
        tasks.spawn(async move { f.settle(&request).await.unwrap() });
    }
    let mut successes = Vec::new();
    let mut others = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let s = done.unwrap();
        if s.success {
            successes.push(s.transaction);
        } else {
            // A copy that meets the first one's claim while its transaction is still
            // unconfirmed waits a bounded time, then may answer pending (a loaded machine).
            assert!(
                s.error_reason == Some(Reason::DUPLICATE_SETTLEMENT)
                    || s.error_reason == Some(Reason::SETTLEMENT_PENDING),
                "{s:?}"
            );
            others.push(s);
        }
    }
    assert_eq!(
        successes.len(),
        1,
        "exactly one success across the replicas"
    );
    assert_eq!(others.len(), 19);
    assert_eq!(
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
        s0 + AMOUNT,
        "one transfer on chain"
    );
    let sol1: u64 = h.snapshot(&[], &[]).await.fee_payer_sol.iter().sum();
    assert_eq!(sol0 - sol1, TX_FEE, "one fee paid");
    assert_eq!(h.proxy.transactions_sent(), 1, "one transaction broadcast");
    // Later, on either replica: a duplicate naming the transaction.
    for f in &replicas {
        let again = f.settle(&request).await.unwrap();
        assert_eq!(
            again.error_reason,
            Some(Reason::DUPLICATE_SETTLEMENT),
            "{again:?}"
        );
        assert_eq!(again.transaction, successes[0]);
    }
}
