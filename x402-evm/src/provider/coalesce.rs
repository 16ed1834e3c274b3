//! Coalescing of the reads that carry a head check: one `eth_blockNumber` for many reads.
//!
//! Once a block is seen, a read that cannot be pinned at a block number (`eth_call` /
//! `eth_estimateGas` at `pending`, a receipt or transaction looked up by hash) goes out with its
//! endpoint's head check in the same JSON-RPC batch (see [`super::fresh`]): two calls for one
//! read. Inside [`coalescing`], such reads made by concurrent tasks within [`COALESCE_WINDOW`]
//! of each other go out as **one** batch `[eth_blockNumber, read₁, …, readₖ]`: the guarantee is
//! the same (every read is in the batch its endpoint's head was checked in), at one head check
//! for `k` reads.
//!
//! - **No wait without concurrency.** A read waits for others only when another such read is
//!   on its way, or another task made one less than [`RECENT`] before it; otherwise (a quiet
//!   facilitator, one task's reads one after the other) it goes out at once, as outside the
//!   scope.
//! - **The batch is an ordinary request.** It is sent by a task of its own (a caller that gives
//!   up does not stop it) through the transport's normal path: failed over whole when its
//!   endpoint lags or fails, backed off whole when rate-limited, observed as one attempt
//!   labelled `"batch"`, under the earliest deadline of its members ([`super::within`]). Its
//!   items are renumbered (ids unique in the process, never the head check's) and each caller
//!   gets its own answer under its own id.
//! - **Any failure: each alone.** When the batch fails (every endpoint failed, an answer missing
//!   or repeated, not a batch), every member sends its own request again, alone, as outside the
//!   scope — so its error is classified exactly as it would have been (a node's error answer to
//!   one item is that item's answer, not a failure).
//! - An endpoint that does not take batches (see [`super::fresh::BATCH_RECHECK`]) is sent
//!   nothing coalesced; a batch holds at most [`MAX_BATCH`] reads.
//!
//! **Under load** ([`batching`], the verify path) the policy differs: a read that can be batched
//! ([`shareable`]: `eth_call`, `eth_getCode` and other state reads, head check or not) goes out
//! at once, alone, while fewer than [`UNDER_LOAD_DEPTH`] such requests are on their way to the
//! transport's endpoint; beyond that it joins a batch that goes out when one of those returns, or
//! after [`COALESCE_WINDOW`], whichever is first (group commit). A quiet facilitator's verify
//! waits for nothing; a busy one's verifies share HTTP round trips — and their head check — in
//! proportion to the load, at most [`COALESCE_WINDOW`] later. Everything above (renumbering, one
//! ordinary request, any failure: each alone) holds for these batches too.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::rpc::json_rpc::{
    Id, Request, RequestPacket, Response, ResponsePacket, SerializedRequest,
};
use tokio::sync::oneshot;
use tokio::task;

use super::FailoverTransport;
use super::fresh::Need;

/// How long the first read of a batch waits for others. Reads of concurrent settles come in
/// bursts (after each block, every settle in flight moves on together), so a few milliseconds
/// gather most of a burst; 10 ms is 1 % of a 1-second block, well under one HTTP round trip to a
/// hosted endpoint (30–100 ms), and paid only while reads come that close together (see
/// [`RECENT`]).
pub const COALESCE_WINDOW: Duration = Duration::from_millis(10);

/// A read waits to be coalesced only when another one is on its way, or another task made one
/// less than this before it: a lone read (a quiet facilitator, one task's reads in sequence) is
/// sent at once.
pub const RECENT: Duration = Duration::from_millis(100);

/// The most reads one batch holds (plus its head check): hosted endpoints cap batches (commonly
/// at 100 to 1,000 items, some lower), and a refused batch costs every member a second request.
pub const MAX_BATCH: usize = 50;

/// Under [`batching`], how many requests of the scope may be on their way to one transport's
/// endpoint before further reads wait to share a batch. A node answers a batch's items one after
/// the other (anvil does), so a few requests side by side keep its cores busy; beyond them,
/// reads share round trips. Measured on the bench (docs/benchmarks.md): 2 and 4 cost the same
/// facilitator CPU at peak, 4 loses less throughput at 8 concurrent verifies.
pub const UNDER_LOAD_DEPTH: usize = 4;

/// How a scope gathers its reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// [`coalescing`]: reads with a head check wait [`COALESCE_WINDOW`] when others are about.
    Window,
    /// [`batching`]: reads go alone up to [`UNDER_LOAD_DEPTH`] in flight, then share batches.
    UnderLoad,
}

tokio::task_local! {
    static COALESCING: Policy;
}

/// Runs `fut` with its reads that carry a head check coalesced with those of other tasks in the
/// same scope (see the module documentation). Outside it, every request goes out on its own.
pub async fn coalescing<F: Future>(fut: F) -> F::Output {
    scoped(Policy::Window, fut).await
}

/// Runs `fut` with its state reads sharing batches with those of other tasks in the same scope
/// once [`UNDER_LOAD_DEPTH`] are on their way, and going out at once otherwise (see the module
/// documentation). A scope inside another keeps the outer one's policy.
pub async fn batching<F: Future>(fut: F) -> F::Output {
    scoped(Policy::UnderLoad, fut).await
}

async fn scoped<F: Future>(policy: Policy, fut: F) -> F::Output {
    if policy_now().is_some() {
        fut.await
    } else {
        COALESCING.scope(policy, fut).await
    }
}

/// The policy of the scope the current task is in, if any.
pub(super) fn policy_now() -> Option<Policy> {
    COALESCING.try_with(|p| *p).ok()
}

/// Whether a call of `method` may share a batch under [`batching`]: a read of chain state whose
/// answer does not depend on what else is in the batch (never a send).
pub fn shareable(method: &str) -> bool {
    matches!(
        method,
        "eth_call"
            | "eth_getCode"
            | "eth_getBalance"
            | "eth_getStorageAt"
            | "eth_getTransactionCount"
            | "eth_estimateGas"
    )
}

/// Ids for renumbered items, unique in the process (a transport may be shared by providers).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One transport's gathering batch.
#[derive(Debug)]
pub(super) struct Coalescer {
    state: Mutex<State>,
    /// Coalescible reads on their way (see [`Flight`]).
    in_flight: Arc<AtomicUsize>,
    epoch: Instant,
}

#[derive(Debug, Default)]
struct State {
    open: Option<Gathering>,
    generation: u64,
    /// When a coalescible read was last made (milliseconds since `epoch`, plus one; 0: never),
    /// and by which task.
    last: (u64, Option<task::Id>),
    /// [`Policy::UnderLoad`]: its requests on their way (each holds a [`Slot`]).
    sending: usize,
    /// [`Policy::UnderLoad`]: the batch waiting for a slot.
    queued: Option<Gathering>,
}

/// A [`Policy::UnderLoad`] request on its way (alone or a batch): when it is dropped, the batch
/// waiting for a slot, if any, goes out.
#[derive(Debug)]
pub(super) struct Slot(FailoverTransport);

impl Drop for Slot {
    fn drop(&mut self) {
        let next = {
            let coalescer = &self.0.inner.coalescer;
            let mut state = coalescer
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.sending = state.sending.saturating_sub(1);
            if state.sending < UNDER_LOAD_DEPTH {
                let queued = state.queued.take();
                if queued.is_some() {
                    state.sending += 1;
                }
                queued
            } else {
                None
            }
        };
        if let Some(gathering) = next {
            send_queued(&self.0, gathering);
        }
    }
}

/// Sends a queued batch (its slot already counted) from a task of its own.
fn send_queued(transport: &FailoverTransport, gathering: Gathering) {
    let slot = Slot(transport.clone());
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(dispatch(transport.clone(), gathering.members, Some(slot)));
        }
        Err(_) => {
            // No runtime left to send from: every member goes alone.
            for member in gathering.members {
                let _ = member.reply.send(Reply::Alone(None));
            }
        }
    }
}

/// A coalescible read on its way, from before it joins a batch until its answer (or failure).
#[derive(Debug)]
pub(super) struct Flight(Arc<AtomicUsize>);

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Gathering {
    generation: u64,
    members: Vec<Member>,
}

/// A read waiting in a batch.
#[derive(Debug)]
struct Member {
    request: SerializedRequest,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Reply>,
}

impl Member {
    /// A copy of `request` waiting in a batch, and its wait for the answer.
    fn new(request: &SerializedRequest, deadline: Option<Instant>) -> (Self, Waiting) {
        let (reply, waiting) = oneshot::channel();
        let member = Self {
            request: request.clone(),
            deadline,
            reply,
        };
        (member, waiting)
    }
}

/// What a member of a batch gets back.
#[derive(Debug)]
pub(super) enum Reply {
    /// Its answer, under its own id.
    Answer(Response),
    /// Send it alone (holding the slot, when its batch had one).
    Alone(Option<Slot>),
}

/// A member's wait for its answer.
pub(super) type Waiting = oneshot::Receiver<Reply>;

impl Default for Coalescer {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            in_flight: Arc::default(),
            epoch: Instant::now(),
        }
    }
}

impl Coalescer {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Adds `request` to the gathering batch of `transport` (opening one when other reads are
    /// about, see [`RECENT`]); `None`: send it alone now. Either way the read is on its way
    /// until the [`Flight`] is dropped.
    pub(super) fn join(
        &self,
        transport: &FailoverTransport,
        request: &SerializedRequest,
        deadline: Option<Instant>,
    ) -> (Flight, Option<Waiting>) {
        let others = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let flight = Flight(Arc::clone(&self.in_flight));
        (flight, self.gather(transport, request, deadline, others))
    }

    fn gather(
        &self,
        transport: &FailoverTransport,
        request: &SerializedRequest,
        deadline: Option<Instant>,
        others: usize,
    ) -> Option<Waiting> {
        let now = self.now_ms();
        let task = task::try_id();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last_ms, last_task) = std::mem::replace(&mut state.last, (now, task));
        let company = others > 0
            || (last_ms > 0
                && now.saturating_sub(last_ms) < RECENT.as_millis() as u64
                && last_task != task);
        // Renumbering needs the params; every coalescible read has some.
        request.params()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (member, waiting) = Member::new(request, deadline);
        match state.open.as_mut() {
            Some(gathering) => {
                gathering.members.push(member);
                if gathering.members.len() >= MAX_BATCH
                    && let Some(full) = state.open.take()
                {
                    runtime.spawn(dispatch(transport.clone(), full.members, None));
                }
            }
            None => {
                if !company {
                    return None;
                }
                state.generation = state.generation.wrapping_add(1);
                let generation = state.generation;
                state.open = Some(Gathering {
                    generation,
                    members: vec![member],
                });
                let transport = transport.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(COALESCE_WINDOW).await;
                    if let Some(gathering) = transport.inner.coalescer.take(generation) {
                        dispatch(transport, gathering.members, None).await;
                    }
                });
            }
        }
        Some(waiting)
    }

    /// [`Policy::UnderLoad`]: a [`Slot`] to send `request` alone now, or its place in the batch
    /// waiting for one.
    pub(super) fn join_under_load(
        &self,
        transport: &FailoverTransport,
        request: &SerializedRequest,
        deadline: Option<Instant>,
    ) -> Result<Slot, Waiting> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let runtime = match tokio::runtime::Handle::try_current() {
            // Renumbering needs the params; every shareable read has some.
            Ok(runtime) if request.params().is_some() => runtime,
            _ => {
                state.sending += 1;
                return Ok(Slot(transport.clone()));
            }
        };
        if state.queued.is_none() && state.sending < UNDER_LOAD_DEPTH {
            state.sending += 1;
            return Ok(Slot(transport.clone()));
        }
        let (member, waiting) = Member::new(request, deadline);
        match state.queued.as_mut() {
            Some(gathering) => {
                gathering.members.push(member);
                if gathering.members.len() >= MAX_BATCH
                    && let Some(full) = state.queued.take()
                {
                    state.sending += 1;
                    drop(state);
                    send_queued(transport, full);
                }
            }
            None => {
                state.generation = state.generation.wrapping_add(1);
                let generation = state.generation;
                state.queued = Some(Gathering {
                    generation,
                    members: vec![member],
                });
                drop(state);
                // Not past the window, even when the requests on their way are slow.
                let transport = transport.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(COALESCE_WINDOW).await;
                    if let Some(gathering) = transport.inner.coalescer.take_queued(generation) {
                        send_queued(&transport, gathering);
                    }
                });
            }
        }
        Err(waiting)
    }

    /// The gathering batch, if it is still number `generation` (not sent full already).
    fn take(&self, generation: u64) -> Option<Gathering> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        take_if(&mut state.open, generation)
    }

    /// [`Policy::UnderLoad`]: the batch waiting for a slot, if it is still number `generation`
    /// (not sent already), its slot counted.
    fn take_queued(&self, generation: u64) -> Option<Gathering> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let queued = take_if(&mut state.queued, generation);
        if queued.is_some() {
            state.sending += 1;
        }
        queued
    }
}

/// The gathering in `slot`, if it is number `generation`.
fn take_if(slot: &mut Option<Gathering>, generation: u64) -> Option<Gathering> {
    match slot {
        Some(gathering) if gathering.generation == generation => slot.take(),
        _ => None,
    }
}

/// Sends `members` as one batch (holding `slot`, if any) and hands each its answer (each goes
/// alone when the batch failed).
async fn dispatch(transport: FailoverTransport, mut members: Vec<Member>, slot: Option<Slot>) {
    if members.len() == 1 {
        // Alone after all: it is sent by its caller, as outside the scope, in this slot.
        if let Some(member) = members.pop() {
            let _ = member.reply.send(Reply::Alone(slot));
        }
        return;
    }
    let deadline = members.iter().filter_map(|m| m.deadline).min();
    let Some((batch, ids)) = renumber(members.iter().map(|m| &m.request)) else {
        for member in members {
            let _ = member.reply.send(Reply::Alone(None));
        }
        return;
    };
    let request = RequestPacket::Batch(batch);
    let need = Need::of(&request);
    let answer = super::within(deadline, transport.send(request, need)).await;
    let answers = answer.ok().and_then(|packet| demultiplex(&ids, packet));
    match answers {
        Some(answers) => {
            for (member, mut answer) in members.into_iter().zip(answers) {
                answer.id = member.request.id().clone();
                let _ = member.reply.send(Reply::Answer(answer));
            }
        }
        None => {
            for member in members {
                let _ = member.reply.send(Reply::Alone(None));
            }
        }
    }
    drop(slot);
}

/// The requests under fresh ids (unique in the process, numbers: never the head check's string
/// id), with those ids in order; `None` when one has no params.
fn renumber<'a>(
    requests: impl Iterator<Item = &'a SerializedRequest>,
) -> Option<(Vec<SerializedRequest>, Vec<Id>)> {
    let mut batch = Vec::new();
    let mut ids = Vec::new();
    for request in requests {
        let id = Id::Number(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let params = request.params()?.to_owned();
        let renumbered = Request::new(request.method_clone(), id.clone(), params)
            .serialize()
            .ok()?;
        batch.push(renumbered);
        ids.push(id);
    }
    Some((batch, ids))
}

/// The answers of a batch in the order of `ids`, or `None` unless it is a batch with exactly one
/// answer per id and nothing else.
fn demultiplex(ids: &[Id], packet: ResponsePacket) -> Option<Vec<Response>> {
    let ResponsePacket::Batch(mut answers) = packet else {
        return None;
    };
    if answers.len() != ids.len() {
        return None;
    }
    let mut ordered = Vec::with_capacity(ids.len());
    for id in ids {
        let position = answers.iter().position(|a| a.id == *id)?;
        ordered.push(answers.swap_remove(position));
    }
    Some(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::ResponsePayload;
    use serde_json::{Value, json};

    fn request(method: &'static str, id: Id, params: Value) -> SerializedRequest {
        Request::new(method, id, params).serialize().unwrap()
    }

    fn answers(json: &str) -> ResponsePacket {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn items_are_renumbered_uniquely_and_keep_their_method_and_params() {
        let call = json!([{"to": "0x0000000000000000000000000000000000000004", "input": "0x01"}, "pending"]);
        let receipt = json!(["0x00"]);
        // Two providers on one transport both number their requests from 0.
        let ours = [
            request("eth_call", Id::Number(0), call.clone()),
            request("eth_getTransactionReceipt", Id::Number(0), receipt.clone()),
            request("eth_call", Id::String("x402-head".into()), call.clone()),
        ];
        let (batch, ids) = renumber(ours.iter()).unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(
            batch.iter().map(|r| r.id().clone()).collect::<Vec<_>>(),
            ids
        );
        for (i, a) in ids.iter().enumerate() {
            assert!(matches!(a, Id::Number(_)), "never the head check's id");
            assert!(ids[i + 1..].iter().all(|b| a != b), "unique: {ids:?}");
        }
        let (again, later) = renumber(ours.iter()).unwrap();
        assert!(
            later.iter().all(|id| !ids.contains(id)),
            "unique across batches"
        );
        let wire: Value = serde_json::to_value(RequestPacket::Batch(again)).unwrap();
        assert_eq!(wire[0]["method"], "eth_call");
        assert_eq!(wire[0]["params"], call);
        assert_eq!(wire[1]["method"], "eth_getTransactionReceipt");
        assert_eq!(wire[1]["params"], receipt);
        assert_eq!(wire[2]["id"], serde_json::to_value(&later[2]).unwrap());
        assert_eq!(wire[2]["jsonrpc"], "2.0");

        let bare = [Request::new("eth_blockNumber", Id::Number(1), ())
            .serialize()
            .unwrap()];
        assert!(renumber(bare.iter()).is_none(), "no params: not coalesced");
    }

    #[test]
    fn answers_go_back_in_their_requests_order_or_not_at_all() {
        let ids = [Id::Number(7), Id::Number(8), Id::Number(9)];
        let shuffled = answers(
            r#"[{"jsonrpc":"2.0","id":9,"result":"0x09"},{"jsonrpc":"2.0","id":7,"result":"0x07"},
                {"jsonrpc":"2.0","id":8,"error":{"code":3,"message":"execution reverted"}}]"#,
        );
        let got = demultiplex(&ids, shuffled).unwrap();
        assert_eq!(got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), ids);
        assert!(
            matches!(&got[0].payload, ResponsePayload::Success(raw) if raw.get() == r#""0x07""#)
        );
        assert!(got[1].payload.is_error(), "an item's error is its answer");

        for broken in [
            // One missing.
            r#"[{"jsonrpc":"2.0","id":9,"result":"0x"},{"jsonrpc":"2.0","id":7,"result":"0x"}]"#,
            // One repeated instead of another.
            r#"[{"jsonrpc":"2.0","id":9,"result":"0x"},{"jsonrpc":"2.0","id":9,"result":"0x"},
                {"jsonrpc":"2.0","id":7,"result":"0x"}]"#,
            // One extra.
            r#"[{"jsonrpc":"2.0","id":9,"result":"0x"},{"jsonrpc":"2.0","id":7,"result":"0x"},
                {"jsonrpc":"2.0","id":8,"result":"0x"},{"jsonrpc":"2.0","id":1,"result":"0x"}]"#,
            // Not a batch.
            r#"{"jsonrpc":"2.0","id":7,"result":"0x"}"#,
        ] {
            assert!(demultiplex(&ids, answers(broken)).is_none(), "{broken}");
        }
    }

    #[tokio::test]
    async fn the_scope_is_entered_once_and_seen_only_inside() {
        assert_eq!(policy_now(), None);
        let inside = coalescing(async { coalescing(async { policy_now() }).await }).await;
        assert_eq!(inside, Some(Policy::Window));
        assert_eq!(policy_now(), None);
        // A scope inside another keeps the outer one's policy.
        let inner = coalescing(async { batching(async { policy_now() }).await }).await;
        assert_eq!(inner, Some(Policy::Window));
        let inner = batching(async { coalescing(async { policy_now() }).await }).await;
        assert_eq!(inner, Some(Policy::UnderLoad));
        // A task spawned from inside is outside (task-locals do not travel).
        let spawned =
            coalescing(async { tokio::spawn(async { policy_now() }).await.unwrap() }).await;
        assert_eq!(spawned, None);
    }
}
