//! Read freshness: no read that decides a payment is answered from a state older than the newest
//! block the facilitator has seen on the network.
//!
//! Behind a load balancer, or after a failover, a node may lag: asked at `latest`, it answers
//! from an older block — where the authorization we just settled is still unused, and the
//! payment would verify (and settle) again. So the transport keeps the highest block number seen
//! ([`ChainHead`]: from `eth_blockNumber` answers and from receipts) and, once it knows one:
//!
//! - an endpoint is asked for its head (`eth_blockNumber`) with each state read at `latest`
//!   (`eth_call`, `eth_estimateGas`, `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`,
//!   `eth_getStorageAt`), with each simulation at `pending` (`eth_call`, `eth_estimateGas`: the
//!   state after the endpoint's head and its mempool), and with a lookup whose "not found" is
//!   taken as an answer (`eth_getTransactionReceipt`, `eth_getTransactionByHash`);
//! - an endpoint whose head is behind the block seen is *lagging*: the request goes to the next
//!   endpoint, and when every endpoint lags it fails as an RPC failure (a transient error, never
//!   a verdict);
//! - a state read at `latest` is made at that head **by number**, so a load balancer handing it
//!   to a backend that does not have the block yet gets "header not found" (also lagging)
//!   instead of an older state;
//! - an `eth_blockNumber` answer behind the block seen is lagging too.
//!
//! **One round trip.** The head and the read go out together, as one JSON-RPC batch
//! (`[eth_blockNumber, the read]`, a read at `latest` pinned at the block seen). When the
//! endpoint's head is the block seen — the usual case while payments come faster than blocks —
//! the pinned read *is* the read at its head, and the answer is taken. When its head is newer,
//! a pinned read is made again at that head (a second round trip, as before); an unpinned one
//! (a `pending` simulation, a receipt) is taken. An endpoint that does not take batches (no array
//! answer, an HTTP 4xx, an answer that does not parse) is asked in two steps — head, then the
//! pinned read — for [`BATCH_RECHECK`] before batches are tried on it again. A request that is a
//! batch itself is handled item by item the same way. Any item refused for a rate limit makes
//! the whole answer a rate-limit refusal (see [`super::attempt`]).
//!
//! **One head check for many reads.** Inside [`super::coalescing`] (the settle path), `pending`
//! simulations and lookups by hash made by concurrent tasks within a few milliseconds go out as
//! one batch `[eth_blockNumber, read₁, …, readₖ]` — the same guarantee, every read in the batch
//! its endpoint's head was checked in, at one head check for `k` reads (see [`super::coalesce`]).
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
use alloy::rpc::json_rpc::{
    Id, RequestPacket, Response, ResponsePacket, ResponsePayload, SerializedRequest,
};
use alloy::transports::http::reqwest::{Client, Url};
use serde_json::Value;
use x402_core::transport::TransportFailure;

use super::attempt::{AttemptError, attempt};
pub use super::endpoint::BATCH_RECHECK;
use super::endpoint::Endpoint;

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

/// What freshness asks of one request item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    /// Nothing (writes, reads at an explicit block, `pending`, everything else).
    Nothing,
    /// `eth_blockNumber`: its answer must not be behind the block seen.
    Head,
    /// The endpoint's head must not be behind the block seen (`receipt`: the answer names a
    /// block, which is seen).
    Current {
        /// `eth_getTransactionReceipt`.
        receipt: bool,
    },
    /// Also read at the endpoint's head by number: the block parameter's position.
    Pin(usize),
}

impl Item {
    fn of(r: &SerializedRequest) -> Self {
        let position = match r.method() {
            "eth_blockNumber" => return Self::Head,
            "eth_getTransactionReceipt" => return Self::Current { receipt: true },
            "eth_getTransactionByHash" => return Self::Current { receipt: false },
            "eth_call"
            | "eth_estimateGas"
            | "eth_getBalance"
            | "eth_getTransactionCount"
            | "eth_getCode" => 1,
            "eth_getStorageAt" => 2,
            _ => return Self::Nothing,
        };
        // The block parameter alone is read (the transaction object before it is read through
        // without being built); params that are not a JSON array read as no parameter at all.
        match Param::of_request(r.serialized().get(), position) {
            Param::Absent | Param::Null | Param::Latest => Self::Pin(position),
            // A simulation at `pending` (alloy's default for `eth_call`: it sees copies of a
            // payment waiting in the mempool, threat-model S31) cannot be pinned; its endpoint's
            // head is checked.
            Param::Pending if matches!(r.method(), "eth_call" | "eth_estimateGas") => {
                Self::Current { receipt: false }
            }
            Param::Pending | Param::Other => Self::Nothing,
        }
    }
}

/// A request's parameter at one position, as [`Item::of`] tells block tags apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    /// No such position, or params that are not a JSON array.
    Absent,
    /// `null`.
    Null,
    /// The string `"latest"`.
    Latest,
    /// The string `"pending"`.
    Pending,
    /// Anything else (another string, a number, an object…).
    Other,
}

impl Param {
    /// The parameter at `position` of the params of `request` (a serialized JSON-RPC request),
    /// in one pass over its text and without building anything.
    fn of_request(request: &str, position: usize) -> Self {
        let mut de = serde_json::Deserializer::from_str(request);
        serde::Deserializer::deserialize_map(&mut de, ParamsOf(position))
            .and_then(|param| de.end().map(|()| param))
            .unwrap_or(Self::Absent)
    }
}

/// Reads a request object, keeping what its params hold at a position.
struct ParamsOf(usize);

impl<'de> serde::de::Visitor<'de> for ParamsOf {
    type Value = Param;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC request")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Param, A::Error> {
        let mut found = Param::Absent;
        while let Some(IsParams(is_params)) = map.next_key()? {
            if is_params {
                found = map.next_value_seed(ParamAt(self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether a key is `params`.
struct IsParams(bool);

impl<'de> serde::Deserialize<'de> for IsParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key;
        impl serde::de::Visitor<'_> for Key {
            type Value = IsParams;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> Result<IsParams, E> {
                Ok(IsParams(key == "params"))
            }
        }
        d.deserialize_str(Key)
    }
}

/// Reads a params array, keeping what the element at its position is.
struct ParamAt(usize);

impl<'de> serde::de::DeserializeSeed<'de> for ParamAt {
    type Value = Param;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Param, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ParamAt {
    type Value = Param;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a params array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Param, A::Error> {
        // Every element is read through (the others as any JSON value, nothing kept), so this
        // refuses exactly what reading the array as `Vec<serde_json::Value>` refuses.
        let mut found = Param::Absent;
        let mut index = 0;
        while let Some(param) = seq.next_element::<Param>()? {
            if index == self.0 {
                found = param;
            }
            index += 1;
        }
        Ok(found)
    }
}

impl<'de> serde::Deserialize<'de> for Param {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamVisitor)
    }
}

/// Reads one parameter; nothing is built (strings are compared with the two tags, numbers read
/// as `serde_json::Value` reads them, so out-of-range ones fail alike).
struct ParamVisitor;

impl<'de> serde::de::Visitor<'de> for ParamVisitor {
    type Value = Param;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Param, E> {
        Ok(Param::Null)
    }
    fn visit_none<E>(self) -> Result<Param, E> {
        Ok(Param::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Param, E> {
        Ok(Param::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Param, E> {
        Ok(Param::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Param, E> {
        Ok(Param::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Param, E> {
        Ok(Param::Other)
    }
    fn visit_str<E>(self, tag: &str) -> Result<Param, E> {
        Ok(match tag {
            "latest" => Param::Latest,
            "pending" => Param::Pending,
            _ => Param::Other,
        })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Param, A::Error> {
        while seq.next_element::<Param>()?.is_some() {}
        Ok(Param::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Param, A::Error> {
        while map.next_entry::<Param, Param>()?.is_some() {}
        Ok(Param::Other)
    }
}

/// What freshness asks of one request: each item's need, by id, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Need {
    items: Vec<(Id, Item)>,
}

impl Need {
    /// What `request` needs.
    pub(super) fn of(request: &RequestPacket) -> Self {
        let items = match request {
            RequestPacket::Single(r) => vec![(r.id().clone(), Item::of(r))],
            RequestPacket::Batch(rs) => rs.iter().map(|r| (r.id().clone(), Item::of(r))).collect(),
        };
        Self { items }
    }

    /// Whether some item needs the endpoint's head.
    fn wants_head(&self) -> bool {
        self.items
            .iter()
            .any(|(_, i)| matches!(i, Item::Current { .. } | Item::Pin(_)))
    }

    /// Whether some item needs the endpoint's head without being pinnable (a `pending` read, a
    /// lookup by hash).
    pub(super) fn has_current(&self) -> bool {
        self.items
            .iter()
            .any(|(_, i)| matches!(i, Item::Current { .. }))
    }

    /// Whether some item is read at the endpoint's head.
    fn pins(&self) -> bool {
        self.items.iter().any(|(_, i)| matches!(i, Item::Pin(_)))
    }

    /// The need of the answer `response` (a single answer is the single request's).
    fn item(&self, response: &Response) -> &Item {
        match self.items.as_slice() {
            [(_, only)] => only,
            items => items
                .iter()
                .find(|(id, _)| *id == response.id)
                .map_or(&Item::Nothing, |(_, i)| i),
        }
    }

    /// Whether an item carries the id the added head request would.
    fn uses_head_id(&self) -> bool {
        self.items
            .iter()
            .any(|(id, _)| matches!(id, Id::String(s) if s == HEAD_ID))
    }
}

/// The id of the head request added to a batch (alloy numbers its own requests).
const HEAD_ID: &str = "x402-head";

/// Whether an error answer says the node does not have the block asked for.
fn unknown_block(response: &Response) -> bool {
    response.payload.as_error().is_some_and(|e| {
        let message = e.message.to_ascii_lowercase();
        UNKNOWN_BLOCK.iter().any(|w| message.contains(w))
    })
}

/// A successful answer's result, parsed.
fn result<T: serde::de::DeserializeOwned>(response: &Response) -> Option<T> {
    match &response.payload {
        ResponsePayload::Success(raw) => serde_json::from_str(raw.get()).ok(),
        ResponsePayload::Failure(_) => None,
    }
}

/// Reads an endpoint's head.
async fn endpoint_head(client: &Client, url: &Url) -> Result<u64, AttemptError> {
    let packet = attempt(client, url, BLOCK_NUMBER_REQUEST).await?;
    packet
        .as_single()
        .and_then(result::<U64>)
        .map(|n| n.to::<u64>())
        .ok_or(AttemptError::Malformed)
}

/// Sends a request needing `need` (`body` as serialized) to `endpoint`, with its head check and
/// its reads pinned as the module says; `Err(Lagging)` when the endpoint is behind the block
/// seen.
pub(super) async fn exchange(
    need: &Need,
    head: &ChainHead,
    client: &Client,
    (index, endpoint, now_ms): (usize, &Endpoint, u64),
    body: &[u8],
) -> Result<ResponsePacket, AttemptError> {
    let url = &endpoint.url;
    let seen = head.seen();
    if seen == 0 || !need.wants_head() {
        let packet = attempt(client, url, body).await?;
        check_answer(need, head, &packet)?;
        return Ok(packet);
    }
    // Reads that are all pinned, while some answer confirmed the block seen moments ago: pinned
    // at it without asking (an endpoint without that block answers "unknown block"). A `pending`
    // read or a lookup by hash still has its endpoint's head checked, in the same batch.
    if !need.has_current() && head.fresh(PIN_WITHOUT_ASKING) == Some(seen) {
        return pinned(need, head, client, url, body, seen).await;
    }
    if endpoint.batches(now_ms) && !need.uses_head_id() {
        match batched(need, head, client, url, body, seen).await? {
            Batched::Answer(packet) => return Ok(packet),
            Batched::Behind(at) => return pinned(need, head, client, url, body, at).await,
            Batched::Unsupported => endpoint.no_batches(index, now_ms),
        }
    }
    let at = endpoint_head(client, url).await?;
    if at < seen {
        return Err(AttemptError::Lagging { head: at, seen });
    }
    head.observe(at);
    pinned(need, head, client, url, body, at).await
}

/// What one batch of head and read gave.
enum Batched {
    /// The answer, read at the endpoint's head.
    Answer(ResponsePacket),
    /// The endpoint's head (newer than the block the read was pinned at).
    Behind(u64),
    /// The endpoint does not answer batches.
    Unsupported,
}

/// Sends `[eth_blockNumber, the request pinned at seen]` as one batch.
async fn batched(
    need: &Need,
    head: &ChainHead,
    client: &Client,
    url: &Url,
    body: &[u8],
    seen: u64,
) -> Result<Batched, AttemptError> {
    let mut request: Value = serde_json::from_slice(body).map_err(|_| AttemptError::Malformed)?;
    pin_value(need, &mut request, seen);
    let single = !request.is_array();
    let mut items = match request {
        Value::Array(items) => items,
        one => vec![one],
    };
    items.insert(
        0,
        serde_json::json!({"jsonrpc": "2.0", "id": HEAD_ID, "method": "eth_blockNumber", "params": []}),
    );
    let batch = serde_json::to_vec(&items).map_err(|_| AttemptError::Malformed)?;
    let packet = match attempt(client, url, &batch).await {
        Ok(packet) => packet,
        Err(AttemptError::Malformed) => return Ok(Batched::Unsupported),
        Err(AttemptError::Transport(TransportFailure::Status(status)))
            if (400..500).contains(&status) =>
        {
            return Ok(Batched::Unsupported);
        }
        Err(e) => return Err(e),
    };
    let ResponsePacket::Batch(responses) = packet else {
        return Ok(Batched::Unsupported);
    };
    let head_id = Id::String(HEAD_ID.to_owned());
    let (heads, mut rest): (Vec<Response>, Vec<Response>) =
        responses.into_iter().partition(|r| r.id == head_id);
    let [answer] = heads.as_slice() else {
        return Ok(Batched::Unsupported);
    };
    if rest.len() != need.items.len()
        || need
            .items
            .iter()
            .any(|(id, _)| !rest.iter().any(|r| r.id == *id))
    {
        return Err(AttemptError::Malformed);
    }
    let at = result::<U64>(answer)
        .map(|n| n.to::<u64>())
        .ok_or(AttemptError::Malformed)?;
    if at < seen {
        return Err(AttemptError::Lagging { head: at, seen });
    }
    head.observe(at);
    if at > seen && need.pins() {
        return Ok(Batched::Behind(at));
    }
    let packet = match rest.pop() {
        Some(only) if single => ResponsePacket::Single(only),
        last => {
            rest.extend(last);
            ResponsePacket::Batch(rest)
        }
    };
    check_answer(need, head, &packet)?;
    Ok(Batched::Answer(packet))
}

/// Sends the request with its reads pinned at block `at` (the endpoint's head).
async fn pinned(
    need: &Need,
    head: &ChainHead,
    client: &Client,
    url: &Url,
    body: &[u8],
    at: u64,
) -> Result<ResponsePacket, AttemptError> {
    let mut request: Value = serde_json::from_slice(body).map_err(|_| AttemptError::Malformed)?;
    let packet = if pin_value(need, &mut request, at) {
        let body = serde_json::to_vec(&request).map_err(|_| AttemptError::Malformed)?;
        attempt(client, url, &body).await?
    } else {
        attempt(client, url, body).await?
    };
    check_answer(need, head, &packet)?;
    Ok(packet)
}

/// Pins the reads of `request` (one request or a batch, in `need`'s order) at block `at`;
/// whether any was.
fn pin_value(need: &Need, request: &mut Value, at: u64) -> bool {
    let mut pinned = false;
    let mut pin = |item: &Item, one: &mut Value| {
        let Item::Pin(position) = item else { return };
        let Some(params) = one.get_mut("params").and_then(Value::as_array_mut) else {
            return;
        };
        while params.len() <= *position {
            params.push(Value::Null);
        }
        params[*position] = Value::String(format!("{at:#x}"));
        pinned = true;
    };
    match request {
        Value::Array(items) => {
            for ((_, item), one) in need.items.iter().zip(items.iter_mut()) {
                pin(item, one);
            }
        }
        one => {
            if let Some((_, item)) = need.items.first() {
                pin(item, one);
            }
        }
    }
    pinned
}

/// Judges an endpoint's answer to a request needing `need`, item by item: a head behind the
/// block seen, or a pinned read the endpoint has no block for, is lagging; otherwise the blocks
/// it names are seen.
fn check_answer(
    need: &Need,
    head: &ChainHead,
    packet: &ResponsePacket,
) -> Result<(), AttemptError> {
    let seen = head.seen();
    for response in packet.responses() {
        match need.item(response) {
            Item::Head => {
                if let Some(n) = result::<U64>(response).map(|n| n.to::<u64>()) {
                    if n < seen {
                        return Err(AttemptError::Lagging { head: n, seen });
                    }
                    head.observe(n);
                }
            }
            Item::Pin(_) if seen > 0 && unknown_block(response) => {
                return Err(AttemptError::Lagging { head: 0, seen });
            }
            Item::Current { receipt: true } => {
                if let Some(number) = result::<Value>(response)
                    .and_then(|r| r.get("blockNumber").cloned())
                    .and_then(|n| serde_json::from_value::<U64>(n).ok())
                {
                    head.observe(number.to::<u64>());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::{Id, Request};

    fn request(method: &'static str, id: u64, params: Value) -> SerializedRequest {
        Request::new(method, Id::Number(id), params)
            .serialize()
            .unwrap()
    }

    fn need(method: &'static str, params: Value) -> Item {
        Need::of(&RequestPacket::Single(request(method, 1, params))).items[0]
            .1
            .clone()
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
        assert_eq!(need("eth_call", serde_json::json!([{}])), Item::Pin(1));
        assert_eq!(
            need("eth_call", serde_json::json!([{}, "latest"])),
            Item::Pin(1)
        );
        assert_eq!(
            need("eth_getStorageAt", serde_json::json!([a, "0x0", "latest"])),
            Item::Pin(2)
        );
        assert_eq!(
            need("eth_getTransactionCount", serde_json::json!([a, "pending"])),
            Item::Nothing
        );
        assert_eq!(
            need("eth_call", serde_json::json!([{}, "pending"])),
            Item::Current { receipt: false },
            "a pending simulation: head checked, not pinned"
        );
        assert_eq!(
            need("eth_getBalance", serde_json::json!([a, "0x10"])),
            Item::Nothing
        );
        assert_eq!(need("eth_blockNumber", serde_json::json!([])), Item::Head);
        assert_eq!(
            need("eth_sendRawTransaction", serde_json::json!(["0x00"])),
            Item::Nothing
        );
    }

    /// What `Item::of` answered when it read the params as `Vec<serde_json::Value>`.
    fn item_by_value(method: &str, params: &str) -> Item {
        let position = match method {
            "eth_call"
            | "eth_estimateGas"
            | "eth_getBalance"
            | "eth_getTransactionCount"
            | "eth_getCode" => 1,
            "eth_getStorageAt" => 2,
            _ => unreachable!(),
        };
        let params: Vec<Value> = serde_json::from_str(params).unwrap_or_default();
        match params.get(position) {
            None | Some(Value::Null) => Item::Pin(position),
            Some(Value::String(tag)) if tag == "latest" => Item::Pin(position),
            Some(Value::String(tag))
                if tag == "pending" && matches!(method, "eth_call" | "eth_estimateGas") =>
            {
                Item::Current { receipt: false }
            }
            Some(_) => Item::Nothing,
        }
    }

    #[test]
    fn the_block_tag_is_read_as_the_value_reading_read_it() {
        let tx = r#"{"from":"0x0000000000000000000000000000000000000001","to":"0x0000000000000000000000000000000000000002","gas":"0x249f0","input":"0xe3ee160e","nested":{"a":[1,2,{"b":null}],"c":"\"latest\""}}"#;
        let a = r#""0x0000000000000000000000000000000000000001""#;
        let mut cases: Vec<String> = Vec::new();
        for block in [
            "",
            r#""latest""#,
            r#""pending""#,
            r#""earliest""#,
            r#""safe""#,
            "null",
            r#""0x10""#,
            "16",
            "-1",
            "1.5",
            "1e400",
            "true",
            "{}",
            "[]",
            r#"{"blockNumber":"0x1"}"#,
            r#""lat\u0065st""#,
            r#""pending ""#,
            r#""Latest""#,
            r#""\ud800""#,
        ] {
            let sep = if block.is_empty() { "" } else { "," };
            cases.push(format!("[{tx}{sep}{block}]"));
            cases.push(format!("[{a}{sep}{block}]"));
            cases.push(format!("[{a},\"0x0\"{sep}{block}]"));
            cases.push(format!("[{tx}{sep}{block},{{}}]"));
            cases.push(format!("[{tx}{sep}{block},1e400]"));
            cases.push(format!("[1e400{sep}{block}]"));
        }
        cases.extend(
            [
                "[]",
                "{}",
                "null",
                r#""latest""#,
                r#"[{"a":1,"a":2},"0x1"]"#,
                r#"[{"a":1,"a":2},"latest"]"#,
            ]
            .map(str::to_owned),
        );
        cases.push(format!("[{}{}, \"0x1\"]", "[".repeat(200), "]".repeat(200)));
        cases.push(format!("[{}{}, \"0x1\"]", "[".repeat(100), "]".repeat(100)));
        let methods = [
            "eth_call",
            "eth_estimateGas",
            "eth_getBalance",
            "eth_getTransactionCount",
            "eth_getCode",
            "eth_getStorageAt",
        ];
        for params in &cases {
            for method in methods {
                // Text that is not JSON cannot be a request's params; what is, is compared.
                let Ok(raw) = serde_json::value::RawValue::from_string(params.clone()) else {
                    continue;
                };
                let request = Request::new(method, Id::Number(1), raw)
                    .serialize()
                    .unwrap();
                let got = Need::of(&RequestPacket::Single(request)).items[0].1.clone();
                assert_eq!(got, item_by_value(method, params), "{method} {params}");
            }
        }
    }

    #[test]
    fn a_batch_is_pinned_item_by_item() {
        let a = "0x0000000000000000000000000000000000000001";
        let packet = RequestPacket::Batch(vec![
            request("eth_getCode", 1, serde_json::json!([a, "latest"])),
            request("eth_getBalance", 2, serde_json::json!([a, "0x10"])),
            request("eth_call", 3, serde_json::json!([{}])),
            request("eth_chainId", 4, serde_json::json!([])),
        ]);
        let need = Need::of(&packet);
        assert!(need.wants_head() && need.pins() && !need.uses_head_id());
        let mut body = serde_json::to_value(&packet).unwrap();
        assert!(pin_value(&need, &mut body, 0x20));
        assert_eq!(body[0]["params"], serde_json::json!([a, "0x20"]));
        assert_eq!(
            body[1]["params"],
            serde_json::json!([a, "0x10"]),
            "explicit block kept"
        );
        assert_eq!(body[2]["params"], serde_json::json!([{}, "0x20"]));
        assert_eq!(body[3]["params"], serde_json::json!([]));

        let receipt = RequestPacket::Single(request(
            "eth_getTransactionReceipt",
            1,
            serde_json::json!(["0x00"]),
        ));
        let need = Need::of(&receipt);
        assert!(need.wants_head() && !need.pins());
    }

    #[test]
    fn answers_are_judged_by_their_request() {
        let head = ChainHead::new();
        head.observe(10);
        let packet = RequestPacket::Batch(vec![
            request("eth_blockNumber", 1, serde_json::json!([])),
            request("eth_call", 2, serde_json::json!([{}])),
        ]);
        let need = Need::of(&packet);
        let answer = |json: &str| serde_json::from_str::<ResponsePacket>(json).unwrap();
        let fine = answer(
            r#"[{"jsonrpc":"2.0","id":2,"result":"0x"},{"jsonrpc":"2.0","id":1,"result":"0xc"}]"#,
        );
        assert_eq!(check_answer(&need, &head, &fine), Ok(()));
        assert_eq!(head.seen(), 12);
        let behind = answer(r#"[{"jsonrpc":"2.0","id":1,"result":"0xb"}]"#);
        assert_eq!(
            check_answer(&need, &head, &behind),
            Err(AttemptError::Lagging { head: 11, seen: 12 })
        );
        let unknown = answer(
            r#"[{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"header not found"}}]"#,
        );
        assert_eq!(
            check_answer(&need, &head, &unknown),
            Err(AttemptError::Lagging { head: 0, seen: 12 })
        );
    }
}
