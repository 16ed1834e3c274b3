//! The EVM signer pool, receipt waits and the failover provider against a real anvil: nonces
//! stay contiguous under load, refused sends consume no nonce, stale nonces recover, caps refuse
//! before signing, ambiguous broadcasts keep their hash, receipt waits are bounded, and neither
//! keys nor RPC URLs leak into `Debug` output or errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use x402_evm::error::{SendError, describe_rpc_error};
use x402_evm::provider::connect;
use x402_evm::receipt::{ReceiptOutcome, wait_for_receipt};
use x402_evm::signers::{SignerPool, TxConfig, TxRequest};
use x402_tests::evm::{EvmTestBed, IFiatToken};
use x402_tests::wait;

const ETH: u128 = 1_000_000_000_000_000_000;
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Gives `address` `wei` of ETH.
async fn set_balance(bed: &EvmTestBed, address: Address, wei: u128) {
    let _: serde_json::Value = bed
        .provider()
        .raw_request("anvil_setBalance".into(), (address, U256::from(wei)))
        .await
        .unwrap();
}

/// `n` fresh keys with 100 ETH each.
async fn funded_signers(bed: &EvmTestBed, n: usize) -> Vec<PrivateKeySigner> {
    let mut signers = Vec::new();
    for _ in 0..n {
        let signer = PrivateKeySigner::random();
        set_balance(bed, signer.address(), 100 * ETH).await;
        signers.push(signer);
    }
    signers
}

async fn pool(bed: &EvmTestBed, signers: Vec<PrivateKeySigner>, config: TxConfig) -> SignerPool {
    let provider = connect(&[bed.endpoint()], RPC_TIMEOUT).unwrap();
    SignerPool::new(provider, signers, config).await.unwrap()
}

/// A USDC `transfer(to, value)` call.
fn transfer(bed: &EvmTestBed, to: Address, value: u64, from: Option<Address>) -> TxRequest {
    let data = IFiatToken::transferCall {
        to,
        value: U256::from(value),
    }
    .abi_encode();
    TxRequest {
        to: bed.usdc(),
        data: Bytes::from(data),
        gas_limit: 100_000,
        from,
        value: U256::ZERO,
    }
}

/// A plain call to the seller's account (21,000 gas; always succeeds).
fn ping(bed: &EvmTestBed, from: Option<Address>) -> TxRequest {
    TxRequest {
        to: bed.seller().address,
        data: Bytes::new(),
        gas_limit: 21_000,
        from,
        value: U256::ZERO,
    }
}

async fn chain_nonce(provider: &DynProvider, address: Address) -> u64 {
    provider.get_transaction_count(address).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sends_over_four_signers_keep_nonces_contiguous() {
    let bed = EvmTestBed::start().await;
    let signers = funded_signers(&bed, 4).await;
    for s in &signers {
        bed.mint_usdc(s.address(), U256::from(1_000u64)).await;
    }
    // What is tested is the nonces, not how fast 200 receipts arrive on a loaded 2-core
    // machine: the receipt bound is the facilitator's default times five.
    let config = TxConfig {
        receipt_timeout: TxConfig::default().receipt_timeout * 5,
        ..TxConfig::default()
    };
    let pool = pool(&bed, signers, config).await;
    let seller = bed.seller().address;

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let pool = pool.clone();
        let request = transfer(&bed, seller, 1, None);
        tasks.spawn(async move { pool.send(request).await });
    }
    let mut sent = Vec::new();
    while let Some(result) = tasks.join_next().await {
        sent.push(result.unwrap().expect("every send is accepted"));
    }
    let send_time = started.elapsed();

    let mut waits = tokio::task::JoinSet::new();
    for s in &sent {
        let (pool, hash) = (pool.clone(), s.hash);
        waits.spawn(async move { pool.wait(hash).await });
    }
    while let Some(outcome) = waits.join_next().await {
        let outcome = outcome.unwrap();
        assert!(outcome.is_success(), "every transfer succeeds: {outcome:?}");
    }
    eprintln!(
        "200 sends over 4 signers: {send_time:?} to broadcast, {:?} until all receipts",
        started.elapsed()
    );

    assert_eq!(bed.usdc_balance(seller).await, U256::from(200u64));
    let stats = pool.stats();
    assert_eq!(stats.sent, 200);
    assert_eq!(stats.nonce_conflicts, 0, "{stats:?}");
    assert_eq!(stats.rejected + stats.ambiguous, 0, "{stats:?}");

    let mut by_signer: BTreeMap<Address, Vec<u64>> = BTreeMap::new();
    for s in &sent {
        by_signer.entry(s.from).or_default().push(s.nonce);
    }
    assert_eq!(by_signer.len(), 4, "every signer takes a share");
    for (address, mut nonces) in by_signer {
        nonces.sort_unstable();
        let count = nonces.len() as u64;
        assert_eq!(
            nonces,
            (0..count).collect::<Vec<_>>(),
            "{address}: contiguous"
        );
        assert_eq!(chain_nonce(&pool.provider().clone(), address).await, count);
        eprintln!("{address}: {count} transactions");
    }
}

#[tokio::test]
async fn a_refused_send_consumes_no_nonce() {
    let bed = EvmTestBed::start().await;
    let broke = PrivateKeySigner::random();
    let funded = funded_signers(&bed, 1).await.remove(0);
    let (broke_addr, funded_addr) = (broke.address(), funded.address());
    let pool = pool(&bed, vec![broke, funded], TxConfig::default()).await;

    // No ETH: the node refuses before accepting; nothing is consumed.
    let err = pool.send(ping(&bed, Some(broke_addr))).await.unwrap_err();
    assert!(
        matches!(err, SendError::InsufficientFunds { from, .. } if from == broke_addr),
        "{err:?}"
    );
    assert!(err.maybe_broadcast().is_none());
    assert_eq!(pool.next_nonce(broke_addr).await, Some(0));

    // Gas below the intrinsic cost: refused, nonce given back.
    let mut low_gas = ping(&bed, Some(funded_addr));
    low_gas.gas_limit = 20_000;
    let err = pool.send(low_gas).await.unwrap_err();
    assert!(matches!(err, SendError::Rejected { .. }), "{err:?}");
    assert_eq!(pool.next_nonce(funded_addr).await, Some(0));

    // The next send from each signer uses nonce 0 and lands.
    let sent = pool.send(ping(&bed, Some(funded_addr))).await.unwrap();
    assert_eq!(sent.nonce, 0);
    assert!(pool.wait(sent.hash).await.is_success());
    set_balance(&bed, broke_addr, ETH).await;
    let sent = pool.send(ping(&bed, Some(broke_addr))).await.unwrap();
    assert_eq!(sent.nonce, 0);
    assert!(pool.wait(sent.hash).await.is_success());
    assert_eq!(pool.stats().rejected, 2);
}

#[tokio::test]
async fn automatic_selection_skips_a_signer_without_funds() {
    let bed = EvmTestBed::start().await;
    let broke = PrivateKeySigner::random();
    let funded = funded_signers(&bed, 1).await.remove(0);
    let funded_addr = funded.address();
    let pool = pool(&bed, vec![broke, funded], TxConfig::default()).await;
    for expected_nonce in 0..4 {
        let sent = pool.send(ping(&bed, None)).await.unwrap();
        assert_eq!(sent.from, funded_addr);
        assert_eq!(sent.nonce, expected_nonce);
    }
    // The broke signer was tried at most once, then skipped.
    assert!(pool.stats().rejected <= 1, "{:?}", pool.stats());
}

#[tokio::test]
async fn a_stale_nonce_is_resynced_and_the_send_lands() {
    let bed = EvmTestBed::start().await;
    let spare = bed.spare_accounts()[0].clone();
    let pool = pool(&bed, vec![spare.signer.clone()], TxConfig::default()).await;
    let first = pool.send(ping(&bed, None)).await.unwrap();
    assert!(pool.wait(first.hash).await.is_success());

    // The same key used outside the pool: the pool's count is now one behind.
    let outside = TransactionRequest::default()
        .with_from(spare.address)
        .with_to(bed.seller().address)
        .with_value(U256::ZERO);
    bed.send(outside, "send outside the pool").await;
    assert_eq!(pool.next_nonce(spare.address).await, Some(first.nonce + 1));

    let sent = pool.send(ping(&bed, None)).await.unwrap();
    assert_eq!(
        sent.nonce,
        first.nonce + 2,
        "resynced past the outside transaction"
    );
    assert!(pool.wait(sent.hash).await.is_success());
    assert_eq!(pool.stats().nonce_conflicts, 1);
    assert_eq!(
        chain_nonce(&bed.provider(), spare.address).await,
        sent.nonce + 1
    );
}

#[tokio::test]
async fn requests_above_the_caps_are_refused_before_signing() {
    let bed = EvmTestBed::start().await;
    let signer = funded_signers(&bed, 1).await.remove(0);
    let address = signer.address();
    let config = TxConfig {
        gas_limit_cap: 50_000,
        max_fee_per_gas_cap: 100_000_000_000, // 100 gwei
        ..TxConfig::default()
    };
    let pool = pool(&bed, vec![signer], config).await;

    let mut big = ping(&bed, None);
    big.gas_limit = 50_001;
    let err = pool.send(big).await.unwrap_err();
    assert!(
        matches!(
            err,
            SendError::GasLimitAboveCap {
                gas_limit: 50_001,
                cap: 50_000
            }
        ),
        "{err:?}"
    );
    assert_eq!(chain_nonce(&bed.provider(), address).await, 0);
    assert_eq!(pool.next_nonce(address).await, Some(0));

    // Base fee above the fee cap (R22): refused, nothing signed or sent.
    let _: serde_json::Value = bed
        .provider()
        .raw_request(
            "anvil_setNextBlockBaseFeePerGas".into(),
            (U256::from(500_000_000_000u64),),
        )
        .await
        .unwrap();
    let err = pool.send(ping(&bed, None)).await.unwrap_err();
    assert!(matches!(err, SendError::FeeAboveCap { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(chain_nonce(&bed.provider(), address).await, 0);
    assert_eq!(pool.next_nonce(address).await, Some(0));
}

#[tokio::test]
async fn receipt_waits_are_bounded_and_report_reverts() {
    let bed = EvmTestBed::start().await;
    let signer = funded_signers(&bed, 1).await.remove(0);
    let config = TxConfig {
        receipt_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(100),
        ..TxConfig::default()
    };
    let pool = pool(&bed, vec![signer], config).await;
    let raw = bed.provider();

    // Not mined (automine off): `Pending` once the bound has passed.
    let _: serde_json::Value = raw
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let sent = pool.send(ping(&bed, None)).await.unwrap();
    let started = Instant::now();
    let outcome = pool.wait(sent.hash).await;
    let waited = started.elapsed();
    assert!(matches!(outcome, ReceiptOutcome::Pending), "{outcome:?}");
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // Still unmined: the bound ended the wait, not a receipt.
    assert!(
        raw.get_transaction_receipt(sent.hash)
            .await
            .unwrap()
            .is_none()
    );

    // Mined: the same hash succeeds.
    let _: serde_json::Value = raw.raw_request("evm_mine".into(), ()).await.unwrap();
    assert!(pool.wait(sent.hash).await.is_success());
    let _: serde_json::Value = raw
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .unwrap();

    // A transfer of USDC the signer does not hold reverts on chain.
    let reverting = transfer(&bed, bed.seller().address, 1, None);
    let sent = pool.send(reverting).await.unwrap();
    let outcome = wait_for_receipt(
        pool.provider(),
        sent.hash,
        Duration::from_secs(10),
        Duration::from_millis(50),
    )
    .await;
    assert!(
        matches!(outcome, ReceiptOutcome::Reverted(_)),
        "{outcome:?}"
    );
    assert_eq!(outcome.receipt().unwrap().transaction_hash, sent.hash);
}

#[tokio::test]
async fn debug_output_shows_addresses_but_never_keys() {
    let bed = EvmTestBed::start().await;
    let signers = funded_signers(&bed, 2).await;
    let keys: Vec<String> = signers.iter().map(|s| hex::encode(s.to_bytes())).collect();
    let pool = pool(&bed, signers, TxConfig::default()).await;
    let debug = format!("{pool:?}").to_lowercase();
    for address in pool.addresses() {
        assert!(pool.contains(address));
        assert!(
            debug.contains(&format!("{address:?}").to_lowercase()),
            "{debug}"
        );
    }
    for key in keys {
        assert!(!debug.contains(&key), "the pool's Debug output shows a key");
    }
    assert!(!pool.contains(bed.seller().address));
    let balances = pool.balances().await;
    assert_eq!(balances.len(), 2);
    assert!(balances.iter().all(|(_, b)| *b == U256::from(100 * ETH)));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn the_provider_fails_over_and_never_names_a_url() {
    let bed = EvmTestBed::start().await;
    let dead = format!("http://127.0.0.1:{}/v2/secret-token-123", closed_port());
    // An endpoint that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!(
        "http://127.0.0.1:{}/key/hanging-secret",
        silent.local_addr().unwrap().port()
    );
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hold = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        }
    });
    let tries = || accepted.load(std::sync::atomic::Ordering::SeqCst);

    let provider = connect(
        &[dead.as_str(), silent_url.as_str(), bed.endpoint()],
        Duration::from_secs(1),
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(provider.get_chain_id().await.unwrap(), bed.chain_id());
    // The silent endpoint was tried once and its 1 s timeout waited out.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(tries(), 1);
    // Sticky: the working endpoint is used first from now on (the silent one is not tried again).
    provider.get_block_number().await.unwrap();
    assert_eq!(tries(), 1);

    let broken = connect(
        &[dead.as_str(), silent_url.as_str()],
        Duration::from_millis(300),
    )
    .unwrap();
    let err = broken.get_chain_id().await.unwrap_err();
    for text in [
        err.to_string(),
        format!("{err:?}"),
        describe_rpc_error(&err),
    ] {
        assert!(!text.contains("secret"), "URL leaked: {text}");
        assert!(!text.contains("127.0.0.1"), "URL leaked: {text}");
    }
    assert!(
        describe_rpc_error(&err).contains("#0"),
        "{}",
        describe_rpc_error(&err)
    );
    let pool_err = SignerPool::new(
        broken,
        vec![PrivateKeySigner::random()],
        TxConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(!format!("{pool_err} {pool_err:?}").contains("secret"));

    for bad in [
        "http://exa mple.com/secret",
        "ftp://rpc.example/secret",
        "secret",
    ] {
        let err = connect(&[bad], RPC_TIMEOUT).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("secret"), "{err:?}");
    }
    hold.abort();
}

/// What the proxy does with the next `eth_sendRawTransaction`.
const PASS: u8 = 0;
/// Forward it, then close the connection without answering (R5).
const DROP_REPLY: u8 = 1;
/// Close the connection without forwarding.
const SWALLOW: u8 = 2;
/// Forward it twice and answer with the node's second answer (a duplicate delivery); the second
/// copy goes once the node has mined the first (automine on).
const TWICE: u8 = 3;
/// Forward it twice back to back and answer with the node's second answer (automine off: the
/// first copy is still pending).
const TWICE_PENDING: u8 = 4;

/// An HTTP/1.1 JSON-RPC proxy in front of anvil that can lose one `eth_sendRawTransaction`.
async fn start_proxy(upstream: String, mode: Arc<AtomicU8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = alloy::transports::http::reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(
                socket,
                client.clone(),
                upstream.clone(),
                mode.clone(),
            ));
        }
    });
    url
}

async fn serve(
    mut socket: TcpStream,
    client: alloy::transports::http::reqwest::Client,
    upstream: String,
    mode: Arc<AtomicU8>,
) {
    let mut buffer = Vec::new();
    loop {
        // Read one request: headers, then Content-Length bytes of body.
        let header_end = loop {
            if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let headers = String::from_utf8_lossy(&buffer[..header_end]).to_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer[header_end..header_end + length].to_vec();
        buffer.drain(..header_end + length);

        let is_send = String::from_utf8_lossy(&body).contains("eth_sendRawTransaction");
        let action = if is_send {
            mode.swap(PASS, Ordering::SeqCst)
        } else {
            PASS
        };
        if action == SWALLOW {
            return;
        }
        let rounds = if action == TWICE || action == TWICE_PENDING {
            2
        } else {
            1
        };
        let mut answer: Vec<u8> = Vec::new();
        for round in 0..rounds {
            if round > 0 && action == TWICE {
                mined(&client, &upstream, &answer).await;
            }
            answer = client
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec();
        }
        if action == DROP_REPLY {
            return;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if socket.write_all(head.as_bytes()).await.is_err()
            || socket.write_all(&answer).await.is_err()
        {
            return;
        }
    }
}

/// Waits until the transaction whose hash the node answered (`answer`) has a receipt.
async fn mined(client: &alloy::transports::http::reqwest::Client, upstream: &str, answer: &[u8]) {
    let answer: serde_json::Value = serde_json::from_slice(answer).unwrap();
    let hash = answer["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_getTransactionReceipt",
        "params": [hash],
    });
    wait::until("the first copy is mined", wait::HANG_GUARD, || async {
        let receipt: serde_json::Value = client
            .post(upstream)
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        !receipt["result"].is_null()
    })
    .await;
}

#[tokio::test]
async fn a_lost_broadcast_answer_is_ambiguous_keeps_its_hash_and_never_reuses_the_nonce() {
    let bed = EvmTestBed::start().await;
    let signer = funded_signers(&bed, 1).await.remove(0);
    let address = signer.address();
    let mode = Arc::new(AtomicU8::new(PASS));
    let proxy = start_proxy(bed.endpoint().to_owned(), mode.clone()).await;
    let provider = connect(&[proxy.as_str()], Duration::from_secs(2)).unwrap();
    let pool = SignerPool::new(provider, vec![signer], TxConfig::default())
        .await
        .unwrap();

    // The node gets the transaction, the answer is lost: ambiguous, hash computed locally.
    mode.store(DROP_REPLY, Ordering::SeqCst);
    let err = pool.send(ping(&bed, None)).await.unwrap_err();
    let SendError::Ambiguous { hash, from, nonce } = err else {
        panic!("expected Ambiguous, got {err:?}");
    };
    assert_eq!((from, nonce), (address, 0));
    assert!(!err.is_retryable());
    assert!(
        pool.wait(hash).await.is_success(),
        "the lost-answer transaction landed"
    );

    // The next send takes the next nonce.
    let next = pool.send(ping(&bed, None)).await.unwrap();
    assert_eq!(next.nonce, 1);
    assert!(pool.wait(next.hash).await.is_success());

    // The request never reaches the node: still ambiguous (the client cannot tell); the next
    // send re-broadcasts the *same* bytes first, so both land with their own nonces.
    mode.store(SWALLOW, Ordering::SeqCst);
    let err = pool.send(ping(&bed, None)).await.unwrap_err();
    let lost = err.maybe_broadcast().expect("ambiguous");
    assert!(
        matches!(err, SendError::Ambiguous { nonce: 2, .. }),
        "{err:?}"
    );
    let after = pool.send(ping(&bed, None)).await.unwrap();
    assert_eq!(after.nonce, 3);
    assert!(
        pool.wait(lost).await.is_success(),
        "re-broadcast with the same hash"
    );
    assert!(pool.wait(after.hash).await.is_success());

    // Delivered twice. Automine mines the first copy, so the node answers the second with
    // "nonce too low": the pool finds its own transaction by hash and reports it sent.
    mode.store(TWICE, Ordering::SeqCst);
    let twice = pool.send(ping(&bed, None)).await.unwrap();
    assert_eq!(twice.nonce, 4);
    assert!(pool.wait(twice.hash).await.is_success());
    assert_eq!(pool.stats().nonce_conflicts, 1);

    // Not mined in between: the node answers the second copy "already known": accepted.
    let raw = bed.provider();
    let _: serde_json::Value = raw
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    mode.store(TWICE_PENDING, Ordering::SeqCst);
    let known = pool.send(ping(&bed, None)).await.unwrap();
    assert_eq!(known.nonce, 5);
    let _: serde_json::Value = raw.raw_request("evm_mine".into(), ()).await.unwrap();
    assert!(pool.wait(known.hash).await.is_success());

    let stats = pool.stats();
    assert_eq!((stats.ambiguous, stats.rebroadcasts), (2, 1), "{stats:?}");
    assert_eq!(
        (stats.sent, stats.nonce_conflicts, stats.rejected),
        (4, 1, 0),
        "{stats:?}"
    );
    assert_eq!(chain_nonce(&bed.provider(), address).await, 6);
}
