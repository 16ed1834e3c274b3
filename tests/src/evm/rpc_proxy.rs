//! A fault-injecting JSON-RPC proxy in front of anvil (loopback, port 0), switchable at run time.
//!
//! Faults are set per JSON-RPC method (`"*"` matches every method), for every request or for
//! the next `n`: drop the connection (before or after forwarding), delay, HTTP 429 (with or
//! without a body, with or without `Retry-After`), a JSON-RPC error answer (instead of
//! forwarding, or after forwarding — the node got the request), or a fixed result. A lagging node
//! is modelled by [`RpcProxy::lag_at`]: state reads at `latest` answer from an older block, newer
//! blocks are unknown, and transactions mined after it are not found. The proxy counts what it
//! received and forwarded per method, so tests check attempts and broadcasts without timing, and
//! the HTTP requests ([`RpcProxy::requests`]: round trips).
//!
//! A JSON-RPC batch is judged call by call: a fault for one of its methods that concerns the
//! connection (drop, delay, 429) applies to the whole request, an error or fixed answer replaces
//! that call's answer only; the lag model applies to each call. A rule for `"batch"` applies to a
//! batch as a whole (drop, 429, or an error object instead of the array: a node without batches).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::http1;

/// What the proxy does with a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Close the connection without forwarding (the node never sees it).
    Drop,
    /// Forward, then close the connection without answering (the node got it).
    DropAfterForward,
    /// Wait, then forward.
    Delay(Duration),
    /// HTTP 429: with a JSON-RPC error body (-32005) or an empty one, with `Retry-After` (seconds)
    /// or without.
    RateLimited {
        /// Whether a JSON-RPC error body comes with it.
        body: bool,
        /// The `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
    /// A JSON-RPC error answer (HTTP 200), not forwarded.
    Error {
        /// The error code (e.g. -32005 "limit exceeded", -32603 "internal error").
        code: i64,
        /// The message.
        message: String,
    },
    /// Forward (the node processes it), then answer a JSON-RPC error instead of its answer.
    ErrorAfterForward {
        /// The error code.
        code: i64,
        /// The message.
        message: String,
    },
    /// Answer this result, not forwarded (e.g. another chain's id for `eth_chainId`).
    Result(Value),
}

impl Fault {
    /// A JSON-RPC error answer with `code` and `message`.
    pub fn error(code: i64, message: &str) -> Self {
        Self::Error {
            code,
            message: message.to_owned(),
        }
    }

    /// Forward, then a JSON-RPC error answer with `code` and `message`.
    pub fn error_after_forward(code: i64, message: &str) -> Self {
        Self::ErrorAfterForward {
            code,
            message: message.to_owned(),
        }
    }
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    /// How many more requests it applies to; `None`: all.
    remaining: Option<usize>,
}

#[derive(Debug, Default)]
struct Counts {
    /// HTTP requests (a batch is one).
    requests: usize,
    received: HashMap<String, usize>,
    forwarded: HashMap<String, usize>,
    arrivals: HashMap<String, Vec<Instant>>,
}

#[derive(Debug)]
struct State {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<HashMap<String, Rule>>,
    lag: Mutex<Option<u64>>,
    counts: Mutex<Counts>,
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct RpcProxy {
    url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RpcProxy {
    /// A forwarding proxy to `upstream` on the current runtime.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            client: reqwest::Client::new(),
            rules: Mutex::default(),
            lag: Mutex::default(),
            counts: Mutex::default(),
        });
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&serving)));
            }
        });
        Self { url, state, task }
    }

    /// The proxy's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies `fault` to every request for `method` (`"*"`: any method) from now on.
    pub fn fault(&self, method: &str, fault: Fault) {
        self.set(method, fault, None);
    }

    /// Applies `fault` to the next `times` requests for `method`, then forwards again.
    pub fn fault_times(&self, method: &str, fault: Fault, times: usize) {
        self.set(method, fault, Some(times));
    }

    fn set(&self, method: &str, fault: Fault, remaining: Option<usize>) {
        lock(&self.state.rules).insert(method.to_owned(), Rule { fault, remaining });
    }

    /// Removes every fault (the lag stays; see [`RpcProxy::lag_at`]).
    pub fn heal(&self) {
        lock(&self.state.rules).clear();
    }

    /// Behaves as a node whose head is `block` (`None`: up to date).
    pub fn lag_at(&self, block: Option<u64>) {
        *lock(&self.state.lag) = block;
    }

    /// How many HTTP requests reached the proxy (a JSON-RPC batch is one; its calls are counted
    /// by method too, and `"batch"` counts the batches).
    pub fn requests(&self) -> usize {
        lock(&self.state.counts).requests
    }

    /// How many requests for `method` reached the proxy (each call of a batch counts).
    pub fn received(&self, method: &str) -> usize {
        lock(&self.state.counts)
            .received
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests for `method` the proxy passed on to the node.
    pub fn forwarded(&self, method: &str) -> usize {
        lock(&self.state.counts)
            .forwarded
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// When each request for `method` arrived, in order.
    pub fn arrivals(&self, method: &str) -> Vec<Instant> {
        lock(&self.state.counts)
            .arrivals
            .get(method)
            .cloned()
            .unwrap_or_default()
    }
}

/// What to write back for one request.
enum Reply {
    Json(u16, Option<u64>, Vec<u8>),
    Close,
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Ok(Some(body)) = http1::read_body(&mut read).await {
        let (status, retry_after, answer) = match state.handle(body).await {
            Reply::Close => return,
            Reply::Json(status, retry_after, answer) => (status, retry_after, answer),
        };
        if http1::write_json(&mut write, status, retry_after, &answer)
            .await
            .is_err()
        {
            return;
        }
    }
}

fn error_value(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn error_body(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&error_value(id, code, message)).expect("json")
}

impl State {
    async fn handle(&self, body: Vec<u8>) -> Reply {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let batch = request.is_array();
        let mut items = match request {
            Value::Array(items) => items,
            one => vec![one],
        };
        let methods: Vec<String> = items
            .iter()
            .map(|r| r["method"].as_str().unwrap_or_default().to_owned())
            .collect();
        {
            let mut counts = lock(&self.counts);
            counts.requests += 1;
            if batch {
                *counts.received.entry("batch".to_owned()).or_default() += 1;
            }
            for method in &methods {
                *counts.received.entry(method.clone()).or_default() += 1;
                counts
                    .arrivals
                    .entry(method.clone())
                    .or_default()
                    .push(Instant::now());
            }
        }
        // A rule for "batch" concerns a batch as a whole (e.g. a node refusing batches).
        if batch && let Some(fault) = self.take_batch_fault() {
            match fault {
                Fault::Drop => return Reply::Close,
                Fault::Error { code, message } => {
                    return Reply::Json(200, None, error_body(&Value::Null, code, &message));
                }
                Fault::RateLimited { retry_after, .. } => {
                    return Reply::Json(429, retry_after, Vec::new());
                }
                _ => {}
            }
        }
        let faults: Vec<Option<Fault>> = methods.iter().map(|m| self.take_fault(m)).collect();
        let lag = *lock(&self.lag);
        // What happens to the whole HTTP request: the first such fault of any item.
        for fault in faults.iter().flatten() {
            match fault {
                Fault::Drop => return Reply::Close,
                Fault::Delay(wait) => tokio::time::sleep(*wait).await,
                Fault::RateLimited { body, retry_after } => {
                    let id = items.first().map_or(Value::Null, |r| r["id"].clone());
                    let answer = if *body {
                        error_body(&id, -32005, "limit exceeded")
                    } else {
                        Vec::new()
                    };
                    return Reply::Json(429, *retry_after, answer);
                }
                _ => {}
            }
        }
        // Each item: answered here (a fault's answer, a lagging node's), or forwarded.
        let mut answers: Vec<Option<Value>> = vec![None; items.len()];
        let mut forward = Vec::new();
        for (index, item) in items.iter_mut().enumerate() {
            let id = item["id"].clone();
            if let Some(head) = lag
                && let Some(answer) = lagging(item, &methods[index], head)
            {
                answers[index] = Some(answer);
                continue;
            }
            match &faults[index] {
                Some(Fault::Error { code, message }) => {
                    answers[index] = Some(error_value(&id, *code, message));
                }
                Some(Fault::Result(result)) => {
                    answers[index] = Some(json!({"jsonrpc": "2.0", "id": id, "result": result}));
                }
                _ => forward.push(index),
            }
        }
        if !forward.is_empty() {
            {
                let mut counts = lock(&self.counts);
                for &index in &forward {
                    *counts.forwarded.entry(methods[index].clone()).or_default() += 1;
                }
            }
            let sent: Vec<Value> = forward.iter().map(|&i| items[i].clone()).collect();
            let body = if batch {
                Value::Array(sent)
            } else {
                sent.into_iter().next().unwrap_or(Value::Null)
            };
            let answer: Value = self
                .client
                .post(&self.upstream)
                .json(&body)
                .send()
                .await
                .expect("forward to anvil")
                .json()
                .await
                .expect("anvil's answer");
            let mut got = match answer {
                Value::Array(all) => all,
                one => vec![one],
            };
            for &index in &forward {
                let id = &items[index]["id"];
                let position = got.iter().position(|a| a["id"] == *id);
                let answer = match position {
                    Some(p) => got.swap_remove(p),
                    None => error_value(id, -32603, "no answer from the node"),
                };
                answers[index] = Some(match &faults[index] {
                    Some(Fault::ErrorAfterForward { code, message }) => {
                        error_value(id, *code, message)
                    }
                    _ => hide_newer(answer, &methods[index], lag),
                });
            }
        }
        if faults
            .iter()
            .any(|f| matches!(f, Some(Fault::DropAfterForward)))
        {
            return Reply::Close;
        }
        let answers: Vec<Value> = answers.into_iter().flatten().collect();
        let answer = if batch {
            Value::Array(answers)
        } else {
            answers.into_iter().next().unwrap_or(Value::Null)
        };
        Reply::Json(200, None, serde_json::to_vec(&answer).expect("json"))
    }

    /// The rule for `"batch"` (only its own), counting one use down.
    fn take_batch_fault(&self) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let rule = rules.get_mut("batch")?;
        let fault = rule.fault.clone();
        if let Some(left) = &mut rule.remaining {
            *left -= 1;
            if *left == 0 {
                rules.remove("batch");
            }
        }
        Some(fault)
    }

    /// The fault for `method` (its own rule first, then `"*"`), counting one use down.
    fn take_fault(&self, method: &str) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let key = [method, "*"].into_iter().find(|k| rules.contains_key(*k))?;
        let rule = rules.get_mut(key)?;
        let fault = rule.fault.clone();
        if let Some(left) = &mut rule.remaining {
            *left -= 1;
            if *left == 0 {
                rules.remove(key);
            }
        }
        Some(fault)
    }
}

/// Where a state read's block parameter sits.
fn block_param(method: &str) -> Option<usize> {
    match method {
        "eth_call"
        | "eth_getTransactionCount"
        | "eth_getBalance"
        | "eth_getCode"
        | "eth_estimateGas"
        | "eth_getBlockByNumber" => Some(if method == "eth_getBlockByNumber" {
            0
        } else {
            1
        }),
        "eth_getStorageAt" => Some(2),
        _ => None,
    }
}

/// A node whose head is `head`: `eth_blockNumber` says so, reads at a tag are read at `head`, a
/// newer block is unknown (an error answer, as a lagging node gives). `None`: forward as changed.
fn lagging(request: &mut Value, method: &str, head: u64) -> Option<Value> {
    let id = request["id"].clone();
    if method == "eth_blockNumber" {
        return Some(json!({"jsonrpc": "2.0", "id": id, "result": format!("{head:#x}")}));
    }
    let index = block_param(method)?;
    let params = request["params"].as_array_mut()?;
    while params.len() <= index {
        params.push(Value::String("latest".into()));
    }
    let asked = params[index].as_str().unwrap_or("latest").to_owned();
    match u64::from_str_radix(asked.trim_start_matches("0x"), 16) {
        Ok(number) if asked.starts_with("0x") && number > head => {
            Some(error_value(&id, -32000, "header not found"))
        }
        Ok(_) if asked.starts_with("0x") => None,
        _ => {
            params[index] = Value::String(format!("{head:#x}"));
            None
        }
    }
}

/// A lagging node does not know transactions mined after its head.
fn hide_newer(mut answer: Value, method: &str, lag: Option<u64>) -> Value {
    let Some(head) = lag else { return answer };
    if !matches!(
        method,
        "eth_getTransactionReceipt" | "eth_getTransactionByHash"
    ) {
        return answer;
    }
    let mined_at = answer["result"]["blockNumber"]
        .as_str()
        .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok());
    if mined_at.is_some_and(|n| n > head) {
        answer["result"] = Value::Null;
    }
    answer
}
