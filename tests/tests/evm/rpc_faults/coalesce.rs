//! Coalesced head checks (`x402_evm::provider::coalescing`): concurrent `pending` reads inside the
//! scope share one `eth_blockNumber` in one batch, each gets its own answer, and a batch that
//! fails — a lagging endpoint, a rate limit — ends each read exactly as it would have ended
//! alone. The same for reads under load (`x402_evm::provider::batching`, the verify path).
//! Counts are asserted at the proxy, never durations.
//!
//! The reads are `eth_call`s at `pending` to the identity precompile (it answers its input), so
//! an answer handed to the wrong caller is seen. Each burst starts with one lookup by hash
//! (`eth_getTransactionByHash`, also checked for freshness): with no read made just before it,
//! it goes out at once, alone, and the `eth_call`s after it gather (the test runtime is one
//! thread: every read of the burst joins before the gathering's timer can run).

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes, address};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::transports::{RpcError, TransportErrorKind};
use x402_evm::provider::coalesce::{MAX_BATCH, UNDER_LOAD_DEPTH, shareable};
use x402_evm::provider::{AttemptError, RATE_LIMIT_RETRIES, RpcFailure, batching, coalescing};
use x402_tests::evm::rpc_proxy::{Fault, RpcProxy};

use super::Proxied;

const IDENTITY: Address = address!("0000000000000000000000000000000000000004");
/// `eth_call`s per burst.
const CALLS: usize = 8;

type Answer = Result<Bytes, RpcError<TransportErrorKind>>;

/// What the `i`-th call sends (and the identity precompile answers).
fn echo(i: usize) -> Bytes {
    let mut data = vec![0xc0, 0xa1];
    data.extend_from_slice(&(i as u64).to_be_bytes());
    data.into()
}

async fn pending_echo(provider: &DynProvider, i: usize) -> Answer {
    let tx = TransactionRequest::default()
        .to(IDENTITY)
        .input(echo(i).into());
    provider.call(tx).block(BlockId::pending()).await
}

/// One lookup by hash, then [`CALLS`] pending calls, all concurrent; the calls' answers.
async fn burst(provider: &DynProvider) -> Vec<Answer> {
    burst_of(provider, CALLS).await
}

/// One lookup by hash, then `calls` pending calls, all concurrent; the calls' answers.
async fn burst_of(provider: &DynProvider, calls: usize) -> Vec<Answer> {
    let lookup = async {
        provider
            .get_transaction_by_hash(B256::repeat_byte(0x42))
            .await
            .map(|_| ())
    };
    let calls = futures::future::join_all((0..calls).map(|i| pending_echo(provider, i)));
    let (lookup, calls) = futures::join!(lookup, calls);
    // The lookup's own outcome is the calls' too (same endpoint, same moment).
    if calls.iter().all(Result::is_ok) {
        lookup.expect("the lookup");
    }
    calls
}

/// [`CALLS`] pending calls made by one task, each after the previous one answered.
async fn one_after_another(provider: &DynProvider) -> Vec<Answer> {
    let mut answers = Vec::new();
    for i in 0..CALLS {
        answers.push(pending_echo(provider, i).await);
    }
    answers
}

fn assert_echoes(answers: &[Answer]) {
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Ok(bytes) => assert_eq!(*bytes, echo(i), "call {i} got another call's answer"),
            Err(e) => panic!("call {i} failed: {e}"),
        }
    }
}

/// The failover failure behind an error answer.
fn failure(answer: &Answer) -> RpcFailure {
    match answer {
        Err(RpcError::Transport(TransportErrorKind::Custom(e))) => e
            .downcast_ref::<RpcFailure>()
            .unwrap_or_else(|| panic!("not an RPC failure: {e}"))
            .clone(),
        other => panic!("expected a transport failure, got {other:?}"),
    }
}

/// A bed whose provider has seen a block (reads carry a head check from then on).
async fn seen(endpoints: usize) -> (Proxied, u64) {
    let p = Proxied::start(endpoints).await;
    p.h.mine().await;
    let block = p.provider.get_block_number().await.unwrap();
    assert!(block > 0);
    (p, block)
}

fn heads(proxy: &RpcProxy) -> usize {
    proxy.received("eth_blockNumber")
}

#[tokio::test]
async fn concurrent_pending_calls_share_one_head_check_and_each_gets_its_own_answer() {
    let (p, _) = seen(1).await;
    let proxy = &p.proxies[0];

    // Outside the scope: a head check per read, as before.
    let (h0, c0, r0) = (heads(proxy), proxy.received("eth_call"), proxy.requests());
    assert_echoes(&burst(&p.provider).await);
    assert_eq!(heads(proxy) - h0, CALLS + 1, "one head check per read");
    assert_eq!(proxy.received("eth_call") - c0, CALLS);
    assert_eq!(proxy.requests() - r0, CALLS + 1);

    // Inside: the lookup alone, the calls in one batch with one head check.
    let (h0, c0, r0) = (heads(proxy), proxy.received("eth_call"), proxy.requests());
    let answers = coalescing(burst(&p.provider)).await;
    assert_echoes(&answers);
    eprintln!(
        "{} reads: {} eth_blockNumber in {} HTTP requests",
        CALLS + 1,
        heads(proxy) - h0,
        proxy.requests() - r0
    );
    assert_eq!(heads(proxy) - h0, 2, "the lookup's and the batch's");
    assert_eq!(
        proxy.received("eth_call") - c0,
        CALLS,
        "each call made once"
    );
    assert_eq!(proxy.requests() - r0, 2);

    // One task's reads one after the other inside the scope: each goes out alone, at once.
    let (h0, r0) = (heads(proxy), proxy.requests());
    let answers = coalescing(one_after_another(&p.provider)).await;
    assert_echoes(&answers);
    assert_eq!(heads(proxy) - h0, CALLS);
    assert_eq!(proxy.requests() - r0, CALLS);
}

#[tokio::test]
async fn a_full_batch_goes_at_once_and_the_next_one_gathers() {
    let (p, _) = seen(1).await;
    let proxy = &p.proxies[0];
    let calls = MAX_BATCH + 3;
    let (h0, c0) = (heads(proxy), proxy.received("eth_call"));
    assert_echoes(&coalescing(burst_of(&p.provider, calls)).await);
    assert_eq!(
        proxy.received("eth_call") - c0,
        calls,
        "each call made once"
    );
    assert_eq!(
        heads(proxy) - h0,
        3,
        "the lookup's, a full batch's, the rest's"
    );
}

#[tokio::test]
async fn a_lagging_endpoint_fails_the_batch_over_whole() {
    let (p, block) = seen(2).await;
    let (first, second) = (&p.proxies[0], &p.proxies[1]);
    first.lag_at(Some(block - 1));
    let (h0, c0) = (heads(second), second.forwarded("eth_call"));
    let answers = coalescing(burst(&p.provider)).await;
    assert_echoes(&answers);
    assert_eq!(
        second.forwarded("eth_call") - c0,
        CALLS,
        "every call answered by the endpoint that has the block, once"
    );
    assert!(heads(second) - h0 <= 2, "{}", heads(second) - h0);
    assert!(heads(first) >= 1, "the lagging one was asked and skipped");
}

#[tokio::test]
async fn when_every_endpoint_lags_each_read_fails_as_it_would_alone() {
    let (p, block) = seen(1).await;
    let proxy = &p.proxies[0];
    proxy.lag_at(Some(block - 1));
    let lagging = vec![(
        0,
        AttemptError::Lagging {
            head: block - 1,
            seen: block,
        },
    )];
    // Alone (outside the scope): a transient failure naming the lag.
    assert_eq!(
        failure(&pending_echo(&p.provider, 0).await).failures(),
        lagging
    );
    let (h0, c0) = (heads(proxy), proxy.received("eth_call"));
    let answers = coalescing(burst(&p.provider)).await;
    for answer in &answers {
        assert_eq!(failure(answer).failures(), lagging, "as alone");
    }
    // The batch failed whole, then each call was asked again alone.
    assert_eq!(proxy.received("eth_call") - c0, 2 * CALLS);
    assert_eq!(heads(proxy) - h0, 1 + 1 + CALLS);
}

#[tokio::test]
async fn a_rate_limited_batch_is_backed_off_whole_then_each_read_alone() {
    let (p, _) = seen(1).await;
    let proxy = &p.proxies[0];
    let limited = Fault::RateLimited {
        body: false,
        retry_after: Some(0),
    };

    // Refused once: the batch (the first request with an `eth_call`; the lookup has none) is
    // asked again after `Retry-After` and answered.
    proxy.fault_times("eth_call", limited.clone(), 1);
    let (h0, c0, r0) = (heads(proxy), proxy.received("eth_call"), proxy.requests());
    assert_echoes(&coalescing(burst(&p.provider)).await);
    assert_eq!(
        proxy.received("eth_call") - c0,
        2 * CALLS,
        "the batch twice"
    );
    assert_eq!(heads(proxy) - h0, 3);
    assert_eq!(proxy.requests() - r0, 3);

    // Refused every time: the batch gives up after its retries, then each call is refused alone
    // the same way — a rate-limit failure, as without coalescing.
    proxy.fault("eth_call", limited);
    let attempts = 1 + RATE_LIMIT_RETRIES as usize;
    let c0 = proxy.received("eth_call");
    let answers = coalescing(burst(&p.provider)).await;
    for answer in &answers {
        let failure = failure(answer);
        assert!(failure.rate_limited(), "{failure}");
        assert_eq!(failure.failures().len(), 1, "{failure}");
    }
    assert_eq!(
        proxy.received("eth_call") - c0,
        attempts * CALLS + CALLS * attempts,
        "the batch's attempts, then each call's"
    );
    proxy.heal();
    assert_echoes(&coalescing(burst(&p.provider)).await);
}

#[tokio::test]
async fn concurrent_settles_inside_the_scope_settle_each_payment_once() {
    let p = super::blocks::one_second_blocks().await;
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    let (alone, _, n) = super::blocks::settle_rounds_in(&p, 2, false).await;
    let (together, _, m) = super::blocks::settle_rounds_in(&p, 2, true).await;
    assert_eq!(n, m);
    for calls in [&alone, &together] {
        assert_eq!(calls[super::SEND], n, "one broadcast each");
    }
    assert_eq!(
        together["eth_call"], alone["eth_call"],
        "each read made once, as alone"
    );
    // How many simulations meet in one batch depends on the scheduling: printed, not asserted
    // (a burst's counts are asserted above, on one thread where they are certain).
    eprintln!(
        "head checks for {n} settles: {} in {} batches alone, {} in {} batches coalesced",
        alone["eth_blockNumber"], alone["batch"], together["eth_blockNumber"], together["batch"]
    );
    assert_eq!(
        p.h.usdc(seller).await,
        s0 + alloy::primitives::U256::from(x402_tests::evm::exact::UNITS * (n + m) as u64),
        "each paid once"
    );
}

// Under load (`batching`, the verify path): reads go out alone while fewer than
// `UNDER_LOAD_DEPTH` are on their way, the rest share one batch that goes when one of those
// returns (or after the window). On the test's one thread every call of a burst joins before any
// answer is read, so the counts are certain.

/// `calls` concurrent pending calls, no lookup first.
async fn calls_of(provider: &DynProvider, calls: usize) -> Vec<Answer> {
    futures::future::join_all((0..calls).map(|i| pending_echo(provider, i))).await
}

#[tokio::test]
async fn under_load_reads_beyond_the_depth_share_one_batch_and_each_gets_its_own_answer() {
    let p = Proxied::start(1).await;
    let proxy = &p.proxies[0];

    // Before any block is seen (no head check), reads share batches.
    let (h0, r0) = (heads(proxy), proxy.requests());
    assert_echoes(&batching(calls_of(&p.provider, CALLS)).await);
    assert_eq!(proxy.requests() - r0, UNDER_LOAD_DEPTH + 1);
    assert_eq!(heads(proxy), h0, "nothing seen: no head check");

    // Once one is, each request carries its head check.
    p.h.mine().await;
    assert!(p.provider.get_block_number().await.unwrap() > 0);
    let (h0, c0, r0) = (heads(proxy), proxy.received("eth_call"), proxy.requests());
    assert_echoes(&batching(calls_of(&p.provider, CALLS)).await);
    assert_eq!(
        proxy.received("eth_call") - c0,
        CALLS,
        "each call made once"
    );
    assert_eq!(
        proxy.requests() - r0,
        UNDER_LOAD_DEPTH + 1,
        "the first ones alone, the rest in one batch"
    );
    assert_eq!(heads(proxy) - h0, UNDER_LOAD_DEPTH + 1, "a head check each");

    // A batch never holds more than MAX_BATCH: a full one goes at once, the rest wait.
    let calls = UNDER_LOAD_DEPTH + MAX_BATCH + 3;
    let (c0, r0) = (proxy.received("eth_call"), proxy.requests());
    assert_echoes(&batching(calls_of(&p.provider, calls)).await);
    assert_eq!(proxy.received("eth_call") - c0, calls);
    assert_eq!(proxy.requests() - r0, UNDER_LOAD_DEPTH + 2);

    // One task's reads one after the other: each goes out alone, at once (nothing waits for a
    // batch while fewer than the depth are on their way).
    let r0 = proxy.requests();
    let answers = batching(one_after_another(&p.provider)).await;
    assert_echoes(&answers);
    assert_eq!(proxy.requests() - r0, CALLS);
}

#[tokio::test]
async fn under_load_a_batch_does_not_wait_for_slow_reads_past_the_window() {
    let (p, _) = seen(1).await;
    let proxy = &p.proxies[0];
    // The reads on their way are slow (far slower than the window): the queued calls go out
    // without them.
    proxy.fault(
        "eth_getBalance",
        Fault::Delay(std::time::Duration::from_secs(30)),
    );
    let answers = batching(async {
        let slow = futures::future::join_all(
            (0..UNDER_LOAD_DEPTH)
                .map(|_| async { p.provider.get_balance(Address::repeat_byte(7)).await }),
        );
        let calls = calls_of(&p.provider, CALLS);
        tokio::select! {
            biased;
            _ = slow => panic!("the slow reads answered first"),
            answers = calls => answers,
        }
    })
    .await;
    assert_echoes(&answers);
    assert_eq!(proxy.received("eth_getBalance"), UNDER_LOAD_DEPTH);
    assert_eq!(proxy.received("eth_call"), CALLS, "in one batch, each once");
    proxy.heal();
}

#[tokio::test]
async fn under_load_a_refused_batch_ends_each_read_as_it_would_alone() {
    let (p, _) = seen(1).await;
    let proxy = &p.proxies[0];
    let limited = Fault::RateLimited {
        body: false,
        retry_after: Some(0),
    };
    proxy.fault("eth_call", limited);
    let attempts = 1 + RATE_LIMIT_RETRIES as usize;
    let c0 = proxy.received("eth_call");
    let answers = batching(calls_of(&p.provider, CALLS)).await;
    for answer in &answers {
        let failure = failure(answer);
        assert!(failure.rate_limited(), "{failure}");
        assert_eq!(failure.failures().len(), 1, "{failure}");
    }
    let queued = CALLS - UNDER_LOAD_DEPTH;
    assert_eq!(
        proxy.received("eth_call") - c0,
        UNDER_LOAD_DEPTH * attempts + queued * attempts + queued * attempts,
        "the lone ones' attempts, the batch's, then each of its calls' alone"
    );
    proxy.heal();
    assert_echoes(&batching(calls_of(&p.provider, CALLS)).await);

    // A send is never batched, nor made to wait.
    assert!(!shareable("eth_sendRawTransaction"));
    assert!(!shareable("eth_sendRawTransactionSync"));
    assert!(shareable("eth_call") && shareable("eth_getCode"));
}
