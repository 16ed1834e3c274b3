//! What a verify asks the chain, counted through a proxy in front of anvil: one HTTP round trip
//! (one JSON-RPC call, or one batch of the freshness head check and the simulation) for an EOA's
//! EIP-3009 or Permit2 payment once the token's code is known; and an EIP-7702 delegated payer
//! verified by its current delegation, before and after it changes (nothing about a delegation
//! is cached).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::eip7702::Authorization;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use scheme_exact_evm::{Facilitator, Policy};
use x402_core::wire::VerifyRequest;
use x402_core::{
    Facilitator as _, FacilitatorRole as _, LocalFacilitator, MemoryStore, Registry,
    SettlementStore as _,
};
use x402_evm::assets::TransferMethod;
use x402_evm::provider::{RpcOptions, connect_checked};
use x402_evm::signers::{SignerPool, TxConfig};
use x402_tests::evm::exact::{ExactHarness, PRICE, UNITS, harness_tx_config};
use x402_tests::evm::rpc_proxy::{Fault, RpcProxy};
use x402_tests::evm::x402::{deploy_wallet, deploy_wallet_factory};

const SEND: &str = "eth_sendRawTransaction";

/// A bed and a facilitator reading through one counting proxy; fee quotes are kept for an hour
/// (one `eth_feeHistory` per run, not per verify: fees are no part of what is counted here).
struct Counted {
    h: ExactHarness,
    proxy: RpcProxy,
    facilitator: LocalFacilitator,
    store: Arc<MemoryStore>,
    /// The pool's block watcher: its polls (while a settlement waits, and for
    /// [`x402_evm::blocks::LINGER`] after) are not the verify's calls.
    blocks: x402_evm::blocks::Blocks,
}

impl Counted {
    async fn start() -> Self {
        let h = ExactHarness::start().await;
        let proxy = RpcProxy::start(h.bed.endpoint()).await;
        let options = RpcOptions {
            timeout: Duration::from_secs(5),
            chain_id: Some(h.bed.chain_id()),
            ..RpcOptions::default()
        };
        let provider: DynProvider = connect_checked(&[proxy.url()], &options)
            .await
            .expect("provider");
        let tx = TxConfig {
            fee_cache_ttl: Duration::from_secs(3600),
            ..harness_tx_config()
        };
        let pool = SignerPool::new(
            provider.clone(),
            vec![h.bed.facilitator().signer.clone()],
            tx,
        )
        .await
        .expect("pool");
        let blocks = pool.blocks().clone();
        let policy = Policy {
            assets: Some(vec![h.bed.usdc()]),
            ..Policy::default()
        };
        let store = Arc::new(MemoryStore::new());
        let f = Facilitator::new(
            h.network.clone(),
            provider,
            pool,
            Arc::clone(&store) as _,
            policy,
        )
        .expect("facilitator");
        let mut registry = Registry::new();
        registry
            .register(
                h.network.as_str(),
                scheme_exact_evm::VERSIONS,
                f.into_scheme(),
            )
            .expect("register");
        Self {
            h,
            proxy,
            facilitator: LocalFacilitator::new(registry),
            store,
            blocks,
        }
    }

    async fn payment(&self, buyer: &PrivateKeySigner, method: TransferMethod) -> VerifyRequest {
        let req = self.h.requirements(PRICE, method).await;
        self.h.pay_v2(buyer, &req).await
    }

    /// Verifies `request` (valid), and how many HTTP requests and calls of `methods` it made.
    async fn counted_verify(
        &self,
        request: &VerifyRequest,
        methods: &[&str],
    ) -> (usize, Vec<usize>) {
        let count = |p: &RpcProxy| {
            (
                p.requests(),
                methods.iter().map(|m| p.received(m)).collect::<Vec<_>>(),
            )
        };
        // The watcher goes idle once its linger runs out; a bound far past it keeps a broken
        // watcher from hanging the test.
        let mut polls = 0;
        while self.blocks.running() {
            polls += 1;
            assert!(
                polls < 40 * x402_evm::blocks::LINGER.as_secs(),
                "the block watcher never went idle"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (r0, m0) = count(&self.proxy);
        let v = self.facilitator.verify(request).await.unwrap();
        assert!(v.is_valid, "{v:?}");
        let (r1, m1) = count(&self.proxy);
        (r1 - r0, m1.iter().zip(&m0).map(|(a, b)| a - b).collect())
    }
}

#[tokio::test]
async fn an_eoa_payment_verifies_in_one_round_trip() {
    let c = Counted::start().await;
    let permit2_buyer = c.h.bed.buyer(3).signer.clone();
    c.h.bed
        .approve_usdc(
            permit2_buyer.address(),
            x402_evm::addresses::PERMIT2,
            U256::MAX,
        )
        .await;
    let methods = [
        "eth_call",
        "eth_getCode",
        "eth_blockNumber",
        "batch",
        "eth_feeHistory",
    ];

    // The first verify learns the token's and the target's code (kept: contract code).
    let first = c
        .payment(&c.h.bed.buyer(0).signer, TransferMethod::Eip3009)
        .await;
    let (_, calls) = c.counted_verify(&first, &methods).await;
    assert!(calls[1] >= 1, "the token's code was read: {calls:?}");

    // Nothing seen yet (a fresh process): one eth_call, no code read.
    let second = c
        .payment(&c.h.bed.buyer(1).signer, TransferMethod::Eip3009)
        .await;
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!(
        (requests, calls),
        (1, vec![1, 0, 0, 0, 0]),
        "EIP-3009, unseen"
    );

    // A settlement's receipt makes its block seen: from then on every read that decides a
    // payment is checked against the endpoint's head — in the same HTTP request, as a batch.
    let s = c.facilitator.settle(&first).await.unwrap();
    assert!(s.success, "{s:?}");
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!(
        (requests, calls),
        (1, vec![1, 0, 1, 1, 0]),
        "EIP-3009, seen"
    );

    // Permit2 from an EOA: the same, once the proxy's code is known.
    let permit2 = c.payment(&permit2_buyer, TransferMethod::Permit2).await;
    let (_, calls) = c.counted_verify(&permit2, &methods).await;
    assert_eq!(calls[1], 1, "the proxy's code was read: {calls:?}");
    let (requests, calls) = c.counted_verify(&permit2, &methods).await;
    assert_eq!((requests, calls), (1, vec![1, 0, 1, 1, 0]), "Permit2, seen");

    // The chain moved past the block seen (another facilitator's transaction): the batch's head
    // is newer, which a simulation at `pending` takes as is (only a read at `latest` is pinned
    // to a block, and made again at the newer head).
    c.h.mine().await;
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!(
        (requests, calls),
        (1, vec![1, 0, 1, 1, 0]),
        "after a new block"
    );

    // Still the chain's answer: the settled payment does not verify again, nothing was sent.
    let v = c.facilitator.verify(&first).await.unwrap();
    assert!(!v.is_valid, "{v:?}");
    assert_eq!(c.proxy.forwarded(SEND), 1);
}

#[tokio::test]
async fn a_node_without_batches_is_asked_in_two_steps_and_a_refused_item_is_retried() {
    let c = Counted::start().await;
    let first = c
        .payment(&c.h.bed.buyer(0).signer, TransferMethod::Eip3009)
        .await;
    let second = c
        .payment(&c.h.bed.buyer(1).signer, TransferMethod::Eip3009)
        .await;
    let s = c.facilitator.settle(&first).await.unwrap();
    assert!(s.success, "{s:?}");
    let methods = ["eth_call", "eth_blockNumber", "batch"];

    // One item of the batch refused for a rate limit: the whole batch is asked again.
    c.proxy
        .fault_times("eth_call", Fault::error(-32005, "limit exceeded"), 1);
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!((requests, calls), (2, vec![2, 2, 2]), "retried whole");

    // A node that answers a batch with one error object: the same request in two steps (head,
    // then the read), and single requests from then on.
    c.proxy.fault(
        "batch",
        Fault::error(-32600, "batch requests are not supported"),
    );
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!(
        (requests, calls),
        (3, vec![2, 2, 1]),
        "refused batch, then two steps"
    );
    let (requests, calls) = c.counted_verify(&second, &methods).await;
    assert_eq!(
        (requests, calls),
        (2, vec![1, 1, 0]),
        "two steps, no batch tried"
    );

    // The verdicts stay the chain's.
    let v = c.facilitator.verify(&first).await.unwrap();
    assert!(!v.is_valid, "{v:?}");
    assert_eq!(c.proxy.forwarded(SEND), 1);
}

/// Concurrent verifies (the verify path runs inside `x402_evm::provider::batching`): beyond the
/// first few on their way, their simulations share HTTP round trips, and each payment still gets
/// its own verdict — funded ones valid, unfunded ones refused for their balance, nothing sent.
#[tokio::test]
async fn concurrent_verifies_share_round_trips_and_each_gets_its_own_verdict() {
    let c = Counted::start().await;
    // The first verify learns the token's and the target's code.
    let warm = c
        .payment(&c.h.bed.buyer(0).signer, TransferMethod::Eip3009)
        .await;
    c.counted_verify(&warm, &["eth_call"]).await;

    let mut funded = Vec::new();
    for i in 1..5 {
        for _ in 0..2 {
            funded.push(
                c.payment(&c.h.bed.buyer(i).signer, TransferMethod::Eip3009)
                    .await,
            );
        }
    }
    let (r0, c0) = (c.proxy.requests(), c.proxy.received("eth_call"));
    let verdicts = futures::future::join_all(funded.iter().map(|r| c.facilitator.verify(r))).await;
    for v in verdicts {
        let v = v.unwrap();
        assert!(v.is_valid, "{v:?}");
    }
    let requests = c.proxy.requests() - r0;
    eprintln!(
        "{} concurrent verifies: {requests} HTTP requests",
        funded.len()
    );
    assert_eq!(
        c.proxy.received("eth_call") - c0,
        funded.len(),
        "one simulation each"
    );
    assert!(
        requests < funded.len(),
        "{requests} round trips for {}",
        funded.len()
    );

    // Mixed with payments from accounts without USDC: each verdict is its own.
    let mut mixed: Vec<(VerifyRequest, bool)> = Vec::new();
    for i in 1..5 {
        mixed.push((
            c.payment(&c.h.bed.buyer(i).signer, TransferMethod::Eip3009)
                .await,
            true,
        ));
        mixed.push((
            c.payment(&PrivateKeySigner::random(), TransferMethod::Eip3009)
                .await,
            false,
        ));
    }
    let verdicts =
        futures::future::join_all(mixed.iter().map(|(r, _)| c.facilitator.verify(r))).await;
    for ((_, funded), v) in mixed.iter().zip(verdicts) {
        let v = v.unwrap();
        if *funded {
            assert!(v.is_valid, "{v:?}");
        } else {
            assert!(!v.is_valid, "{v:?}");
            assert_eq!(
                v.invalid_reason,
                Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_INSUFFICIENT_BALANCE),
                "{v:?}"
            );
        }
    }
    assert_eq!(c.proxy.forwarded(SEND), 0, "a verify sends nothing");
}

/// A reconciliation pass during a settle this process is running reads nothing from the chain
/// for it (the settle's own watch does), and leaves it to the settle, which lands it once.
#[tokio::test]
async fn reconciliation_leaves_a_running_settle_to_itself() {
    let c = Counted::start().await;
    let request = c
        .payment(&c.h.bed.buyer(0).signer, TransferMethod::Eip3009)
        .await;
    c.h.set_automine(false).await;
    let probe = async {
        // Until the settle's transaction is written ahead and sent (a hang guard of the
        // settle's own receipt bound, not a timing check).
        let give_up = std::time::Instant::now() + Duration::from_secs(60);
        while c.proxy.forwarded(SEND) == 0 {
            assert!(std::time::Instant::now() < give_up, "the settle never sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(c.store.counts().await.unwrap().unresolved, 1);
        let reads = ["eth_getTransactionReceipt", "eth_getTransactionByHash"];
        let before: Vec<usize> = reads.iter().map(|m| c.proxy.received(m)).collect();
        let lines = c.facilitator.reconcile().await;
        let pass = lines[0].result.as_ref().unwrap();
        assert_eq!((pass.examined, pass.pending), (1, 1), "{lines:?}");
        let after: Vec<usize> = reads.iter().map(|m| c.proxy.received(m)).collect();
        assert_eq!(before, after, "no chain read for a settle running here");
        c.h.set_automine(true).await;
        c.h.mine().await;
    };
    let (settled, ()) = futures::join!(c.facilitator.settle(&request), probe);
    let settled = settled.unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(c.proxy.forwarded(SEND), 1, "sent once");
    assert_eq!(c.store.counts().await.unwrap().unresolved, 0);
    // Once the settle answered, a pass has nothing left to judge.
    let lines = c.facilitator.reconcile().await;
    assert_eq!(lines[0].result.as_ref().unwrap().examined, 0, "{lines:?}");
}

/// Delegates `account` (a dev account; its key signs the authorization) to `to` with a type-4
/// transaction sent by the bed's deployer; `Address::ZERO` removes the delegation.
async fn delegate(h: &ExactHarness, account: &PrivateKeySigner, to: Address) {
    let nonce = h
        .bed
        .provider()
        .get_transaction_count(account.address())
        .await
        .unwrap();
    let authorization = Authorization {
        chain_id: U256::from(h.bed.chain_id()),
        address: to,
        nonce,
    };
    let signature = account
        .sign_hash_sync(&authorization.signature_hash())
        .unwrap();
    let mut tx = TransactionRequest::default()
        .from(h.bed.deployer().address)
        .to(account.address());
    tx.authorization_list = Some(vec![authorization.into_signed(signature)]);
    h.bed.send(tx, "EIP-7702 delegation").await;
    let code = h
        .bed
        .provider()
        .get_code_at(account.address())
        .await
        .unwrap();
    if to == Address::ZERO {
        assert!(code.is_empty(), "delegation removed: {code}");
    } else {
        assert_eq!(&code[..3], &[0xef, 0x01, 0x00], "a designator: {code}");
        assert_eq!(&code[3..], to.as_slice());
    }
}

#[tokio::test]
async fn a_delegated_payer_is_verified_by_its_current_delegation() {
    let c = Counted::start().await;
    let h = &c.h;
    let payer = h.bed.buyer(2).signer.clone();
    let seller = h.bed.seller().address;
    let factory = deploy_wallet_factory(&h.bed).await;
    // The test wallet accepts its owner's ECDSA signature; delegated to, it runs as the payer's
    // own code: owned by the payer it accepts the payer's key, owned by another it refuses it.
    let accepts = deploy_wallet(&h.bed, factory, payer.address(), B256::with_last_byte(1)).await;
    let refuses = deploy_wallet(
        &h.bed,
        factory,
        h.bed.spare_accounts()[0].address,
        B256::with_last_byte(2),
    )
    .await;
    let request = c.payment(&payer, TransferMethod::Eip3009).await;

    // No code: an EOA.
    assert!(c.facilitator.verify(&request).await.unwrap().is_valid);
    // Delegated to a wallet that accepts the key: the token asks it, and it says yes.
    delegate(h, &payer, accepts).await;
    let v = c.facilitator.verify(&request).await.unwrap();
    assert!(v.is_valid, "delegated, accepting: {v:?}");
    // Delegated elsewhere: the same signature is now refused, at verify and at settle.
    delegate(h, &payer, refuses).await;
    let (b0, s0) = (h.usdc(payer.address()).await, h.usdc(seller).await);
    let v = c.facilitator.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE),
        "delegated, refusing: {v:?}"
    );
    let message = v.invalid_message.unwrap_or_default();
    assert!(message.contains("EIP-7702"), "{message}");
    let s = c.facilitator.settle(&request).await.unwrap();
    assert!(!s.success, "{s:?}");
    assert_eq!(c.proxy.forwarded(SEND), 0, "nothing was broadcast");
    assert_eq!(h.usdc(payer.address()).await, b0, "nothing moved");
    // Back to the accepting wallet, then no delegation: valid each time; it settles once.
    delegate(h, &payer, accepts).await;
    assert!(c.facilitator.verify(&request).await.unwrap().is_valid);
    delegate(h, &payer, Address::ZERO).await;
    assert!(c.facilitator.verify(&request).await.unwrap().is_valid);
    let s = c.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(h.usdc(payer.address()).await, b0 - U256::from(UNITS));
    assert_eq!(h.usdc(seller).await, s0 + U256::from(UNITS));
    assert_eq!(c.proxy.forwarded(SEND), 1);
}

#[tokio::test]
async fn a_delegated_payer_settles_through_its_wallet() {
    let c = Counted::start().await;
    let h = &c.h;
    let payer = h.bed.buyer(4).signer.clone();
    let seller = h.bed.seller().address;
    let factory = deploy_wallet_factory(&h.bed).await;
    let accepts = deploy_wallet(&h.bed, factory, payer.address(), B256::with_last_byte(3)).await;
    delegate(h, &payer, accepts).await;
    let request = c.payment(&payer, TransferMethod::Eip3009).await;
    let (b0, s0) = (h.usdc(payer.address()).await, h.usdc(seller).await);
    assert!(c.facilitator.verify(&request).await.unwrap().is_valid);
    let s = c.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(h.usdc(payer.address()).await, b0 - U256::from(UNITS));
    assert_eq!(h.usdc(seller).await, s0 + U256::from(UNITS));
}
