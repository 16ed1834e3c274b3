//! Read freshness: no read that decides a payment is answered from a state older than the newest
//! block the facilitator has seen on the network.
//!
//! Behind a load balancer, or after a failover, a node may lag: asked at `latest`, it answers
//! from an older block — where the authorization we just settled is still unused, and the
//! payment would verify (and settle) again. So the transport keeps the highest block number seen
//! ([`ChainHead`]: from `eth_blockNumber` answers and from receipts) and, once it knows one:
//!
//! - an endpoint is asked for its head (`eth_blockNumber`) before each state read at `latest`
//!   (`eth_call`, `eth_estimateGas`, `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`,
//!   `eth_getStorageAt`), and before a lookup whose "not found" is taken as an answer
//!   (`eth_getTransactionReceipt`, `eth_getTransactionByHash`);
//! - an endpoint whose head is behind the block seen is *lagging*: the request goes to the next
//!   endpoint, and when every endpoint lags it fails as an RPC failure (a transient error, never
//!   a verdict);
//! - the state read is made at that head **by number**, so a load balancer handing it to a
//!   backend that does not have the block yet gets "header not found" (also lagging) instead of
//!   an older state;
//! - an `eth_blockNumber` answer behind the block seen is lagging too.
//!
//! A reorganisation to a shorter chain can leave every endpoint behind the block seen for a
//! block or two: reads fail as transient errors until the chain is back there.
//!
//! **Without the extra round trip while the head is fresh.** While settlements wait, the block
//! watcher ([`crate::blocks`]) reads the head every block time ÷ 4; when the block seen was
//! confirmed by an answer less than [`PIN_WITHOUT_ASKING`] ago, a state read at `latest` is pinned
//! at that block directly, without asking the endpoint for its head first. The guarantee is the
//! same — the read is at the newest block seen, and an endpoint without it answers "header not
//! found" (lagging) — at one call instead of two. Lookups by hash (receipts, transactions) are
//! not pinned and keep the head check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alloy::primitives::U64;
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket, ResponsePayload};
use alloy::transports::http::reqwest::{Client, Url};
use serde_json::Value;

use super::attempt::{AttemptError, attempt};

/// The block number request an endpoint's head is read with.
const BLOCK_NUMBER_REQUEST: &[u8] =
    br#"{"jsonrpc":"2.0","id":0,"method":"eth_blockNumber","params":[]}"#;

/// Words (lower case) of a node's answer that it does not have the block asked for.
const UNKNOWN_BLOCK: &[&str] = &[
    "header not found",
    "unknown block",
    "block not found",
    "missing trie node",
    "block height",
    "not yet available",
    "future block",
];

/// How recently the block seen must have been confirmed for a state read to be pinned at it
/// without asking the endpoint for its head first.
pub const PIN_WITHOUT_ASKING: Duration = Duration::from_millis(300);

/// The highest block number seen on one network; cheap to clone (shared). Share one between the
/// providers of one network (see [`super::RpcOptions::head`]).
#[derive(Debug, Clone, Default)]
pub struct ChainHead(Arc<Head>);

#[derive(Debug, Default)]
struct Head {
    seen: AtomicU64,
    /// When an answer last named the block seen (or a newer one), in milliseconds since
    /// [`epoch`] plus one (0: never).
    confirmed_ms: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

impl ChainHead {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest block number seen (0: none yet).
    pub fn seen(&self) -> u64 {
        self.0.seen.load(Ordering::SeqCst)
    }

    /// Records that block `number` exists.
    pub fn observe(&self, number: u64) {
        let before = self.0.seen.fetch_max(number, Ordering::SeqCst);
        if number >= before {
            self.0.confirmed_ms.store(now_ms(), Ordering::SeqCst);
        }
    }

    /// The block seen, if an answer confirmed it less than `within` ago.
    pub fn fresh(&self, within: Duration) -> Option<u64> {
        let seen = self.seen();
        let at = self.0.confirmed_ms.load(Ordering::SeqCst);
        let age = now_ms().saturating_sub(at);
        (seen > 0 && at > 0 && u128::from(age) < within.as_millis()).then_some(seen)
    }
}

/// What freshness asks of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Need {
    /// Nothing (writes, reads at an explicit block, `pending`, everything else).
    Nothing,
    /// `eth_blockNumber`: its answer must not be behind the block seen.
    Head,
    /// The endpoint's head must not be behind the block seen.
    Current,
    /// Also read at the endpoint's head by number: the block parameter's position.
    Pin(usize),
}

impl Need {
    /// What `request` needs.
    pub(super) fn of(request: &RequestPacket) -> Self {
        let RequestPacket::Single(r) = request else {
            return Self::Nothing;
        };
        let method = r.method();
        let position = match method {
            "eth_blockNumber" => return Self::Head,
            "eth_getTransactionReceipt" | "eth_getTransactionByHash" => return Self::Current,
            "eth_call"
            | "eth_estimateGas"
            | "eth_getBalance"
            | "eth_getTransactionCount"
            | "eth_getCode" => 1,
            "eth_getStorageAt" => 2,
            _ => return Self::Nothing,
        };
        let params: Vec<Value> = r
            .params()
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        match params.get(position) {
            None | Some(Value::Null) => Self::Pin(position),
            Some(Value::String(tag)) if tag == "latest" => Self::Pin(position),
            Some(_) => Self::Nothing,
        }
    }
}

/// Whether an error answer says the node does not have the block asked for.
fn unknown_block(packet: &ResponsePacket) -> bool {
    packet
        .single_payload()
        .and_then(|p| p.as_error())
        .is_some_and(|e| {
            let message = e.message.to_ascii_lowercase();
            UNKNOWN_BLOCK.iter().any(|w| message.contains(w))
        })
}

/// A successful single answer's result, parsed.
fn result<T: serde::de::DeserializeOwned>(packet: &ResponsePacket) -> Option<T> {
    match packet.single_payload()? {
        ResponsePayload::Success(raw) => serde_json::from_str(raw.get()).ok(),
        ResponsePayload::Failure(_) => None,
    }
}

/// Reads an endpoint's head.
async fn endpoint_head(client: &Client, url: &Url) -> Result<u64, AttemptError> {
    let packet = attempt(client, url, BLOCK_NUMBER_REQUEST).await?;
    result::<U64>(&packet)
        .map(|n| n.to::<u64>())
        .ok_or(AttemptError::Malformed)
}

/// The body to send to the endpoint at `url` for a request needing `need` (`body` as
/// serialized), after its head check; `Err(Lagging)` when it is behind the block seen.
pub(super) async fn prepare(
    need: &Need,
    head: &ChainHead,
    client: &Client,
    url: &Url,
    body: &[u8],
) -> Result<Option<Vec<u8>>, AttemptError> {
    let seen = head.seen();
    if seen == 0 || matches!(need, Need::Nothing | Need::Head) {
        return Ok(None);
    }
    let at = match (need, head.fresh(PIN_WITHOUT_ASKING)) {
        // Pinned at the block seen, just confirmed: an endpoint without it says so.
        (Need::Pin(_), Some(fresh)) => fresh,
        _ => {
            let at = endpoint_head(client, url).await?;
            if at < seen {
                return Err(AttemptError::Lagging { head: at, seen });
            }
            head.observe(at);
            at
        }
    };
    let Need::Pin(position) = need else {
        return Ok(None);
    };
    let mut request: Value = serde_json::from_slice(body).map_err(|_| AttemptError::Malformed)?;
    let Some(params) = request.get_mut("params").and_then(Value::as_array_mut) else {
        return Ok(None);
    };
    while params.len() <= *position {
        params.push(Value::Null);
    }
    params[*position] = Value::String(format!("{at:#x}"));
    serde_json::to_vec(&request)
        .map(Some)
        .map_err(|_| AttemptError::Malformed)
}

/// Judges an endpoint's answer to a request needing `need`: a head behind the block seen, or a
/// pinned read the endpoint has no block for, is lagging; otherwise the blocks it names are seen.
pub(super) fn check_answer(
    need: &Need,
    method: &str,
    head: &ChainHead,
    packet: &ResponsePacket,
) -> Result<(), AttemptError> {
    let seen = head.seen();
    match need {
        Need::Head => {
            if let Some(n) = result::<U64>(packet).map(|n| n.to::<u64>()) {
                if n < seen {
                    return Err(AttemptError::Lagging { head: n, seen });
                }
                head.observe(n);
            }
        }
        Need::Pin(_) if seen > 0 && unknown_block(packet) => {
            return Err(AttemptError::Lagging { head: 0, seen });
        }
        _ => {}
    }
    if method == "eth_getTransactionReceipt"
        && let Some(number) = result::<Value>(packet)
            .and_then(|r| r.get("blockNumber").cloned())
            .and_then(|n| serde_json::from_value::<U64>(n).ok())
    {
        head.observe(number.to::<u64>());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::{Id, Request};

    fn need(method: &'static str, params: Value) -> Need {
        let request = Request::new(method, Id::Number(1), params);
        Need::of(&RequestPacket::Single(request.serialize().unwrap()))
    }

    #[test]
    fn the_head_is_fresh_only_when_just_confirmed() {
        let head = ChainHead::new();
        assert_eq!(head.fresh(Duration::from_secs(60)), None, "nothing seen");
        head.observe(10);
        assert_eq!(head.fresh(Duration::from_secs(60)), Some(10));
        assert_eq!(
            head.fresh(Duration::ZERO),
            None,
            "too old for no time at all"
        );
        // An older answer does not confirm the newer block.
        let before = head.0.confirmed_ms.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(3));
        head.observe(9);
        assert_eq!(head.0.confirmed_ms.load(Ordering::SeqCst), before);
        assert_eq!(head.seen(), 10);
    }

    #[test]
    fn only_reads_at_latest_are_pinned() {
        let a = "0x0000000000000000000000000000000000000001";
        assert_eq!(need("eth_call", serde_json::json!([{}])), Need::Pin(1));
        assert_eq!(
            need("eth_call", serde_json::json!([{}, "latest"])),
            Need::Pin(1)
        );
        assert_eq!(
            need("eth_getStorageAt", serde_json::json!([a, "0x0", "latest"])),
            Need::Pin(2)
        );
        assert_eq!(
            need("eth_getTransactionCount", serde_json::json!([a, "pending"])),
            Need::Nothing
        );
        assert_eq!(
            need("eth_getBalance", serde_json::json!([a, "0x10"])),
            Need::Nothing
        );
        assert_eq!(need("eth_blockNumber", serde_json::json!([])), Need::Head);
        assert_eq!(
            need("eth_sendRawTransaction", serde_json::json!(["0x00"])),
            Need::Nothing
        );
    }
}
