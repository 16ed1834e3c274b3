#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use alloy::signers::Signer;
use alloy::signers::local::PrivateKeySigner;
use x402_core::Reason;
use x402_core::clock::Clock;

use super::*;

#[derive(Debug)]
struct Fixed(AtomicU64);

impl Clock for Fixed {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

const T0: u64 = 1_796_360_603;

struct Bed {
    seller: SiwxSeller,
    clock: Arc<Fixed>,
    signer: Arc<dyn Signer + Send + Sync>,
}

impl Bed {
    fn new() -> Self {
        let clock = Arc::new(Fixed(AtomicU64::new(T0)));
        let seller = SiwxSeller::new("https://shop.example")
            .unwrap()
            .networks(["eip155:8453", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"])
            .with_clock(clock.clone());
        Self {
            seller,
            clock,
            signer: Arc::new(PrivateKeySigner::random()),
        }
    }

    fn challenge(&self, path: &str) -> (Challenge, Vec<SupportedChain>) {
        let d = self.seller.extension().declaration(path, &[]);
        let challenge = serde_json::from_str(d.info.to_raw().get()).unwrap();
        let chains =
            serde_json::from_str(d.siblings.get("supportedChains").unwrap().get()).unwrap();
        (challenge, chains)
    }

    async fn sign(
        &self,
        challenge: &Challenge,
        chain: &str,
        edit: impl FnOnce(&mut Proof),
    ) -> String {
        let chain = SupportedChain::for_network(chain);
        let mut p = Proof::unsigned(challenge, &chain, &crate::evm::address(&self.signer));
        edit(&mut p);
        let message = p.message().unwrap();
        p.signature = crate::evm::sign(&self.signer, &message).await.unwrap();
        p.encode()
    }

    async fn paid(&self, path: &str) {
        let payer = payer_key(&crate::evm::address(&self.signer));
        self.seller
            .inner
            .history
            .record(path, &payer, UnixTime(T0 - 3600))
            .await
            .unwrap();
    }

    fn at(&self, t: u64) {
        self.clock.0.store(t, Ordering::SeqCst);
    }
}

async fn refused(bed: &Bed, header: &str, path: &str) -> Reason {
    bed.seller.verify(header, path).await.unwrap_err().reason
}

#[tokio::test]
async fn the_challenge_is_fresh_and_bound_to_the_origin_and_path() {
    let bed = Bed::new();
    let (a, chains) = bed.challenge("/weather");
    let (b, _) = bed.challenge("/weather");
    assert_ne!(a.nonce, b.nonce);
    assert_eq!(a.nonce.len(), 32);
    assert_eq!(a.domain, "shop.example");
    assert_eq!(a.uri, "https://shop.example/weather");
    assert_eq!(a.resources, Some(vec![a.uri.clone()]));
    assert_eq!(a.issued_at, "2026-12-04T05:03:23.000Z");
    assert_eq!(
        a.expiration_time.as_deref(),
        Some("2026-12-04T05:08:23.000Z")
    );
    assert_eq!(chains[0].chain_id, "eip155:8453");
    assert_eq!(chains[0].kind, "eip191");
    assert_eq!(chains[1].kind, "ed25519");
    // Without configured networks, the 402's own networks (each once, known families only).
    let open = SiwxSeller::new("http://localhost:8080").unwrap();
    let d = open
        .extension()
        .declaration("/a", &["eip155:1", "eip155:1", "cosmos:x", "solana:abc"]);
    assert_eq!(
        d.siblings.get("supportedChains").unwrap().get(),
        r#"[{"chainId":"eip155:1","type":"eip191"},{"chainId":"solana:abc","type":"ed25519"}]"#
    );
    assert!(SiwxSeller::new("https://shop.example/path").is_err());
    assert!(SiwxSeller::new("ftp://shop.example").is_err());
}

#[tokio::test]
async fn a_payer_signs_in_once_per_proof() {
    let bed = Bed::new();
    bed.paid("/weather").await;
    let (c, _) = bed.challenge("/weather");
    let header = bed.sign(&c, "eip155:8453", |_| {}).await;
    let payer = bed.seller.verify(&header, "/weather").await.unwrap();
    assert_eq!(payer, crate::evm::address(&bed.signer));
    // The same proof again: replayed.
    assert_eq!(refused(&bed, &header, "/weather").await, reason::NONCE);
    // A new challenge signs in again.
    let (c, _) = bed.challenge("/weather");
    let header = bed.sign(&c, "eip155:8453", |_| {}).await;
    assert!(bed.seller.verify(&header, "/weather").await.is_ok());
}

#[tokio::test]
async fn refusals_name_their_reason_and_spend_no_nonce() {
    let bed = Bed::new();
    bed.paid("/weather").await;
    let (c, _) = bed.challenge("/weather");

    // Never paid for this path (a proof for another path of the same origin is refused first).
    let (other, _) = bed.challenge("/other");
    let h = bed.sign(&other, "eip155:8453", |_| {}).await;
    assert_eq!(refused(&bed, &h, "/other").await, reason::NOT_PAID);
    assert_eq!(refused(&bed, &h, "/weather").await, reason::URI_MISMATCH);

    let h = bed
        .sign(&c, "eip155:8453", |p| p.domain = "evil.example".into())
        .await;
    assert_eq!(refused(&bed, &h, "/weather").await, reason::DOMAIN_MISMATCH);
    let h = bed
        .sign(&c, "eip155:8453", |p| {
            p.uri = "https://evil.example/weather".into()
        })
        .await;
    assert_eq!(refused(&bed, &h, "/weather").await, reason::URI_MISMATCH);
    let h = bed.sign(&c, "eip155:1", |_| {}).await;
    assert_eq!(
        refused(&bed, &h, "/weather").await,
        reason::UNSUPPORTED_CHAIN
    );

    // A signature by another key, or over other fields.
    let good = bed.sign(&c, "eip155:8453", |_| {}).await;
    let mut forged = Proof::decode(&good).unwrap();
    forged.statement = Some("changed".into());
    assert_eq!(
        refused(&bed, &forged.encode(), "/weather").await,
        reason::SIGNATURE
    );
    assert_eq!(
        refused(&bed, "bm90IGpzb24=", "/weather").await,
        reason::MALFORMED
    );

    // Times, around the 30 s skew.
    bed.at(T0 + 300 + 31);
    assert_eq!(refused(&bed, &good, "/weather").await, reason::EXPIRED);
    let h = bed
        .sign(&c, "eip155:8453", |p| p.expiration_time = None)
        .await;
    bed.at(T0 + 331);
    assert_eq!(
        refused(&bed, &h, "/weather").await,
        reason::ISSUED_AT_TOO_OLD
    );
    bed.at(T0 - 31);
    assert_eq!(
        refused(&bed, &good, "/weather").await,
        reason::ISSUED_AT_IN_FUTURE
    );
    bed.at(T0);
    let h = bed
        .sign(&c, "eip155:8453", |p| {
            p.not_before = Some("2026-12-04T05:04:00.000Z".into())
        })
        .await;
    assert_eq!(refused(&bed, &h, "/weather").await, reason::NOT_YET_VALID);
    bed.at(T0 + 37 - 30);
    assert!(
        bed.seller.verify(&h, "/weather").await.is_ok(),
        "within the skew"
    );

    // None of the refused proofs spent the nonce of the good one... except the accepted one
    // above, which shares the challenge's nonce.
    assert_eq!(refused(&bed, &good, "/weather").await, reason::NONCE);
}

#[tokio::test]
async fn a_refused_proof_leaves_its_nonce_usable() {
    let bed = Bed::new();
    let (c, _) = bed.challenge("/weather");
    let h = bed.sign(&c, "eip155:8453", |_| {}).await;
    assert_eq!(refused(&bed, &h, "/weather").await, reason::NOT_PAID);
    bed.paid("/weather").await;
    assert!(bed.seller.verify(&h, "/weather").await.is_ok());
}

#[tokio::test]
async fn the_window_policy_counts_from_the_last_payment() {
    let bed = Bed::new();
    let seller = bed
        .seller
        .clone()
        .policy(AccessPolicy::Within(Duration::from_secs(1800)));
    bed.paid("/weather").await; // an hour ago
    let bed = Bed { seller, ..bed };
    let (c, _) = bed.challenge("/weather");
    let h = bed.sign(&c, "eip155:8453", |_| {}).await;
    assert_eq!(refused(&bed, &h, "/weather").await, reason::NOT_PAID);
    let payer = payer_key(&crate::evm::address(&bed.signer));
    bed.seller
        .inner
        .history
        .record("/weather", &payer, UnixTime(T0 - 60))
        .await
        .unwrap();
    assert!(bed.seller.verify(&h, "/weather").await.is_ok());
}

#[tokio::test]
async fn a_solana_keypair_signs_in() {
    let bed = Bed::new();
    let keypair = solana_keypair::Keypair::new();
    let address = crate::svm::address(&keypair);
    bed.seller
        .inner
        .history
        .record("/weather", &address, UnixTime(T0))
        .await
        .unwrap();
    let (c, _) = bed.challenge("/weather");
    let chain = SupportedChain::for_network("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    let mut p = Proof::unsigned(&c, &chain, &address);
    let message = p.message().unwrap();
    p.signature = crate::svm::sign(&keypair, &message);
    assert_eq!(
        bed.seller.verify(&p.encode(), "/weather").await.unwrap(),
        address
    );
    assert_eq!(refused(&bed, &p.encode(), "/weather").await, reason::NONCE);
}

/// Two sellers on one SQLite settlement store (one file is one process's; replicas share
/// PostgreSQL, whose tables pass the same conformance suite in tests/tests/store/postgres.rs).
#[tokio::test]
async fn sellers_on_one_sqlite_store_share_the_history_and_the_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store: Arc<dyn x402_core::SettlementStore> =
        Arc::new(x402_store::SqliteStore::open(&path, Default::default()).unwrap());
    let replica = |clock: Arc<Fixed>| {
        SiwxSeller::new("https://shop.example")
            .unwrap()
            .networks(["eip155:8453"])
            .with_clock(clock)
            .settlement_store(store.clone())
            .unwrap()
    };
    let bed = Bed::new();
    let a = replica(bed.clock.clone());
    let b = replica(bed.clock.clone());
    let payer = payer_key(&crate::evm::address(&bed.signer));
    // A payment recorded through one replica's hook store is seen by the other.
    a.inner
        .history
        .record("/weather", &payer, UnixTime(T0))
        .await
        .unwrap();
    let (c, _) = bed.challenge("/weather");
    let header = bed.sign(&c, "eip155:8453", |_| {}).await;
    assert!(b.verify(&header, "/weather").await.is_ok());
    // Replayed against the other replica: refused.
    assert_eq!(
        a.verify(&header, "/weather").await.unwrap_err().reason,
        reason::NONCE
    );
    drop((a, b));
    // Durable: the file remembers both.
    drop(store);
    let reopened = x402_store::SqliteStore::open(&path, Default::default()).unwrap();
    let tables = x402_core::SettlementStore::sign_in(&reopened).unwrap();
    assert_eq!(
        tables.last_payment("/weather", &payer).await.unwrap(),
        Some(UnixTime(T0))
    );
    let nonce = Proof::decode(&header).unwrap().nonce;
    assert!(
        !tables
            .claim_nonce(&nonce, UnixTime(T0 + 1), UnixTime(T0))
            .await
            .unwrap()
    );
}

/// A chain that never answers refuses a smart wallet's proof (a 402 for the buyer, who can
/// still pay), never hangs the request.
#[tokio::test]
async fn a_silent_rpc_refuses_the_proof_after_the_timeout() {
    use alloy::providers::{Provider as _, ProviderBuilder};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let url = format!("http://{address}").parse().unwrap();
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let bed = Bed::new();
    let seller = bed
        .seller
        .clone()
        .evm_rpc("eip155:8453", provider)
        .rpc_timeout(Duration::from_millis(200));
    bed.paid("/weather").await;
    let (c, _) = bed.challenge("/weather");
    // Signed by another key: not the address's ECDSA signature, so the chain is asked.
    let other = Bed::new();
    let chain = SupportedChain::for_network("eip155:8453");
    let mut p = Proof::unsigned(&c, &chain, &crate::evm::address(&bed.signer));
    let message = p.message().unwrap();
    p.signature = crate::evm::sign(&other.signer, &message).await.unwrap();
    let refusal = seller.verify(&p.encode(), "/weather").await.unwrap_err();
    assert_eq!(refusal.reason, reason::VERIFIER_ERROR, "{refusal}");
    held.abort();
}
