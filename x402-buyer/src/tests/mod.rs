//! The buyer against a v2 seller on a local port, with a stand-in scheme (no chain): hooks,
//! selectors, filters, recipients, rolling budgets across restarts, concurrency, the rate limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use x402_core::wire::Raw;
use x402_core::{
    BuyerRole, Network, Registry, RequirementsView, SchemeError, ShiftedClock, X402Version,
};

use crate::{Buyer, Error, JsonlLedger, KnownAsset, Ledger as _, Policy, Record};

mod governance;
mod hooks;

pub(crate) const NETWORK: &str = "eip155:84532";
pub(crate) const ASSET: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
pub(crate) const SELLER: &str = "0x00000000000000000000000000000000000000aa";
pub(crate) const OTHER: &str = "0x00000000000000000000000000000000000000bb";
pub(crate) const PAYER: &str = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A";

/// A stand-in `exact` buyer: waits `delay`, then signs (or fails), counting signatures.
#[derive(Debug, Default)]
pub(crate) struct Signer {
    pub(crate) delay: Duration,
    pub(crate) fail: bool,
    pub(crate) signed: AtomicUsize,
}

#[derive(Debug)]
struct Role(Arc<Signer>);

#[async_trait]
impl BuyerRole for Role {
    fn scheme(&self) -> &'static str {
        "exact"
    }

    async fn sign(&self, _: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        tokio::time::sleep(self.0.delay).await;
        if self.0.fail {
            return Err(SchemeError::signer("the signer is locked"));
        }
        self.0.signed.fetch_add(1, Ordering::SeqCst);
        let payload = format!(r#"{{"signature":"0x01","authorization":{{"from":"{PAYER}"}}}}"#);
        Ok(serde_json::value::RawValue::from_string(payload).unwrap())
    }
}

/// An `exact` option of `units` to `pay_to`.
pub(crate) fn option(units: u64, pay_to: &str) -> serde_json::Value {
    serde_json::json!({
        "scheme": "exact",
        "network": NETWORK,
        "amount": units.to_string(),
        "asset": ASSET,
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    })
}

/// A v2 seller on a local port offering `options` at `/joke`: 402 without a payment; 200 with a
/// settlement header with one. Returns its URL and the count of paid requests.
pub(crate) async fn seller(options: Vec<serde_json::Value>) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/joke", listener.local_addr().unwrap());
    let document = serde_json::json!({
        "x402Version": 2,
        "resource": {"url": url},
        "accepts": options,
    });
    let required = x402_core::header::encode(&document).unwrap();
    let settlement = x402_core::header::encode(&serde_json::json!({
        "success": true, "transaction": "0xfeed", "network": NETWORK, "payer": PAYER
    }))
    .unwrap();
    let paid = Arc::new(AtomicUsize::new(0));
    let counter = paid.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (required, settlement, counter) =
                (required.clone(), settlement.clone(), counter.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let with_payment = text.contains("\r\npayment-signature:");
                // A stand-in for a sign-in (`Before::RetryWith`): served unpaid.
                let signed_in = text.contains("\r\nx-pass: open");
                let (status, header, body) = if signed_in && !with_payment {
                    ("200 OK", "x-free: yes".to_owned(), "a free joke")
                } else if with_payment {
                    counter.fetch_add(1, Ordering::SeqCst);
                    (
                        "200 OK",
                        format!("payment-response: {settlement}"),
                        "a joke",
                    )
                } else {
                    (
                        "402 Payment Required",
                        format!("payment-required: {required}"),
                        "{}",
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{header}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, paid)
}

pub(crate) fn usdc() -> KnownAsset {
    KnownAsset {
        network: Network::parse(NETWORK).unwrap(),
        address: ASSET.into(),
        decimals: 6,
        symbol: "USDC".into(),
    }
}

/// A buyer with `signer` and `policy` (USDC known).
pub(crate) fn buyer(signer: &Arc<Signer>, policy: Policy) -> Buyer {
    let mut schemes = Registry::new();
    schemes
        .register(
            "eip155:*",
            &[X402Version::V1, X402Version::V2],
            Role(signer.clone()).into_scheme(),
        )
        .unwrap();
    Buyer::new(reqwest::Client::new(), schemes, policy.with_asset(usdc()))
}

/// The reasons of a `NoAcceptableOption`, joined.
pub(crate) fn refusal(e: Error) -> String {
    match e {
        Error::NoAcceptableOption(reasons) => reasons.join("; "),
        other => panic!("expected a refusal, got {other}"),
    }
}

pub(crate) fn clock() -> Arc<ShiftedClock> {
    Arc::new(ShiftedClock::new(0))
}

/// The payments in a ledger.
pub(crate) fn payments(ledger: &JsonlLedger) -> Vec<crate::ledger::PaymentRecord> {
    ledger
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Payment(p) => Some(p),
            Record::Settlement(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_payment_is_recorded_with_its_settlement() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(JsonlLedger::open(dir.path().join("l.jsonl")).unwrap());
    let signer = Arc::new(Signer::default());
    let buyer = buyer(&signer, Policy::default())
        .with_ledger(ledger.clone())
        .unwrap();
    let done = buyer.get(&url).await.unwrap();
    assert_eq!(done.response.status(), 200);
    assert_eq!(paid.load(Ordering::SeqCst), 1);
    let records = ledger.records().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let Record::Payment(p) = &records[0] else {
        panic!("{records:?}")
    };
    assert_eq!(p.id, done.payment.unwrap().id);
    assert_eq!(p.url, url);
    assert_eq!(p.origin, url.trim_end_matches("/joke"));
    assert_eq!(
        (p.network.as_str(), p.asset.as_str(), p.pay_to.as_str()),
        (NETWORK, ASSET, SELLER)
    );
    assert_eq!(p.amount, x402_core::Amount::from(10_000));
    assert_eq!((p.scheme.as_str(), p.x402_version), ("exact", 2));
    assert_eq!(p.payer.as_deref(), Some(PAYER));
    let Record::Settlement(s) = &records[1] else {
        panic!("{records:?}")
    };
    assert_eq!(s.id, p.id);
    assert!(s.success);
    assert_eq!(s.transaction.as_deref(), Some("0xfeed"));
}

/// A store that cannot write.
#[derive(Debug)]
struct Full;

impl crate::Ledger for Full {
    fn records(&self) -> Result<Vec<Record>, crate::LedgerError> {
        Ok(Vec::new())
    }
    fn append(&self, _: &Record) -> Result<(), crate::LedgerError> {
        Err(crate::LedgerError::Other("the disk is full".into()))
    }
}

#[tokio::test]
async fn a_ledger_that_cannot_be_written_stops_the_payment_unsent() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let signer = Arc::new(Signer::default());
    let buyer = buyer(&signer, Policy::default().max_per_hour("0.01"))
        .with_ledger(Arc::new(Full))
        .unwrap();
    let e = buyer.get(&url).await.unwrap_err();
    assert!(
        matches!(e, Error::Ledger(_)) && e.to_string().contains("the disk is full"),
        "{e}"
    );
    assert_eq!(signer.signed.load(Ordering::SeqCst), 1);
    assert_eq!(paid.load(Ordering::SeqCst), 0, "nothing was sent");
    // The signed payment never left the process: its budget was given back.
    let usdc = usdc();
    assert_eq!(
        buyer.spent(&usdc.network, &usdc.address),
        x402_core::Amount::ZERO
    );
    let e = buyer.get(&url).await.unwrap_err();
    assert!(matches!(e, Error::Ledger(_)), "{e}");
}

#[cfg(feature = "middleware")]
#[tokio::test]
async fn the_middleware_records_the_payment_and_its_settlement() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    let signer = Arc::new(Signer::default());
    let buyer = buyer(&signer, Policy::default().max_per_day("0.01"))
        .with_ledger_file(&path)
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(crate::middleware::PayingMiddleware::new(Arc::new(buyer)))
        .build();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let payment = response
        .extensions()
        .get::<crate::Payment>()
        .unwrap()
        .clone();
    let records = JsonlLedger::open(&path).unwrap().records().unwrap();
    assert!(
        matches!(&records[..], [Record::Payment(p), Record::Settlement(s)]
            if p.id == payment.id && s.id == payment.id && s.transaction.as_deref() == Some("0xfeed")),
        "{records:?}"
    );
    // The budget applies through the middleware too.
    let e = client.get(&url).send().await.unwrap_err();
    assert!(e.to_string().contains("per 1d"), "{e}");
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}
