//! A recording, fault-injecting JSON-RPC proxy in front of the validator (loopback, port 0).
//!
//! It counts `sendTransaction` calls (the NO-BROADCAST invariant of threat-model.md) and can
//! drop them (answering with the transaction's signature, as a node that lost it would), or run
//! a hook before the first one and force `skipPreflight` (to land a transaction that fails).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::http1;

/// Mainnet-beta's genesis hash, answered by a proxy set to [`RpcProxy::set_other_chain`].
const OTHER_GENESIS: &str = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d";

/// An action the proxy runs once.
pub type SendHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What the proxy does with `sendTransaction`.
#[derive(Default)]
pub enum SendMode {
    /// Forward it.
    #[default]
    Forward,
    /// Answer with the transaction's signature without forwarding (the transaction is lost).
    Drop,
    /// Run the hook before forwarding the first one, with `skipPreflight` forced on.
    HookFirst(Option<SendHook>),
}

impl std::fmt::Debug for SendMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Forward => "Forward",
            Self::Drop => "Drop",
            Self::HookFirst(_) => "HookFirst",
        })
    }
}

struct State {
    upstream: String,
    client: reqwest::Client,
    sends: AtomicUsize,
    simulations: AtomicUsize,
    co_signed_simulations: AtomicUsize,
    signatures: Mutex<std::collections::BTreeSet<String>>,
    calls: Mutex<Vec<String>>,
    preflight: Mutex<Vec<String>>,
    down: AtomicBool,
    other_chain: AtomicBool,
    requests: AtomicUsize,
    batches: AtomicUsize,
    refuse_batches: AtomicBool,
    mode: tokio::sync::Mutex<SendMode>,
}

/// The proxy; stops when dropped.
pub struct RpcProxy {
    url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RpcProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcProxy")
            .field("url", &self.url)
            .field("sends", &self.sends())
            .finish_non_exhaustive()
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RpcProxy {
    /// A proxy to `upstream` on the current runtime.
    pub async fn start(upstream: &str, mode: SendMode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            client: reqwest::Client::new(),
            sends: AtomicUsize::new(0),
            simulations: AtomicUsize::new(0),
            co_signed_simulations: AtomicUsize::new(0),
            signatures: Mutex::default(),
            calls: Mutex::new(Vec::new()),
            preflight: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            other_chain: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
            refuse_batches: AtomicBool::new(false),
            mode: tokio::sync::Mutex::new(mode),
        });
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self { url, state, task }
    }

    /// The proxy's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many `sendTransaction` calls reached the proxy.
    pub fn sends(&self) -> usize {
        self.state.sends.load(Ordering::SeqCst)
    }

    /// How many `simulateTransaction` calls reached the proxy, and how many of them carried a
    /// fee payer's signature (slot 0 not all zero): a transaction that could have been broadcast.
    pub fn simulations(&self) -> (usize, usize) {
        (
            self.state.simulations.load(Ordering::SeqCst),
            self.state.co_signed_simulations.load(Ordering::SeqCst),
        )
    }

    /// The distinct transactions (by first signature) sent through the proxy: a re-send of the
    /// same bytes is one transaction.
    pub fn transactions_sent(&self) -> usize {
        self.state
            .signatures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// How many HTTP requests (round trips) reached the proxy, and how many of them were
    /// JSON-RPC batches it forwarded.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.state.requests.load(Ordering::SeqCst),
            self.state.batches.load(Ordering::SeqCst),
        )
    }

    /// While set, a JSON-RPC batch is answered with one JSON-RPC error object (`-32600`, as
    /// gateways that do not take batches answer) and not forwarded.
    pub fn set_refuse_batches(&self, refuse: bool) {
        self.state.refuse_batches.store(refuse, Ordering::SeqCst);
    }

    /// The methods called so far, in order (each call of a batch counts).
    pub fn calls(&self) -> Vec<String> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The `preflightCommitment` of each `sendTransaction` with a preflight so far (`"-"` when
    /// absent); re-sends without a preflight are not listed.
    pub fn preflight_commitments(&self) -> Vec<String> {
        self.state
            .preflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// While `down`, every connection is closed without an answer (an unreachable endpoint).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// While set, `getGenesisHash` answers another cluster's hash (an endpoint repointed to
    /// another chain); every other call is still forwarded.
    pub fn set_other_chain(&self, other: bool) {
        self.state.other_chain.store(other, Ordering::SeqCst);
    }

    /// Replaces the `sendTransaction` behaviour.
    pub async fn set_mode(&self, mode: SendMode) {
        *self.state.mode.lock().await = mode;
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Some(body) = http1::read_body(&mut read).await? {
        if state.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        let answer = state.handle(body).await;
        http1::write_json(&mut write, 200, None, &answer).await?;
    }
    Ok(())
}

impl State {
    async fn handle(&self, body: Vec<u8>) -> Vec<u8> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Value::Array(calls) = &request {
            if self.refuse_batches.load(Ordering::SeqCst) {
                let answer = json!({"jsonrpc": "2.0", "id": null, "error":
                    {"code": -32600, "message": "batch requests are not supported"}});
                return serde_json::to_vec(&answer).expect("json");
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            for call in calls {
                let method = self.record(call);
                // The facilitator never batches these: a batch carrying one would escape the
                // proxy's genesis and send handling, so it fails the test loudly.
                assert!(
                    method != "getGenesisHash" && method != "sendTransaction",
                    "{method} in a batch"
                );
            }
            return self.forward(&request).await;
        }
        let method = self.record(&request);
        if method == "getGenesisHash" && self.other_chain.load(Ordering::SeqCst) {
            // Mainnet-beta's genesis hash: a real cluster, just not the one served.
            let answer = json!({"jsonrpc": "2.0", "result": OTHER_GENESIS, "id": request["id"]});
            return serde_json::to_vec(&answer).expect("json");
        }
        if method == "sendTransaction" {
            self.sends.fetch_add(1, Ordering::SeqCst);
            if request["params"][1]["skipPreflight"] != Value::Bool(true) {
                let preflight = request["params"][1]["preflightCommitment"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned();
                self.preflight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(preflight);
            }
            let decoded = transaction_of(&request).expect("a base64 transaction");
            let signature = decoded.tx.signatures[0].to_string();
            self.signatures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(signature.clone());
            let mut mode = self.mode.lock().await;
            match &mut *mode {
                SendMode::Forward => {}
                SendMode::Drop => {
                    let answer =
                        json!({"jsonrpc": "2.0", "result": signature, "id": request["id"]});
                    return serde_json::to_vec(&answer).expect("json");
                }
                SendMode::HookFirst(hook) => {
                    if let Some(hook) = hook.take() {
                        hook().await;
                    }
                    request["params"][1]["skipPreflight"] = Value::Bool(true);
                }
            }
        }
        self.forward(&request).await
    }

    /// Records one call (its method, and whether it is a simulation of a co-signed
    /// transaction) and gives its method.
    fn record(&self, request: &Value) -> String {
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(method.clone());
        if method == "simulateTransaction" {
            self.simulations.fetch_add(1, Ordering::SeqCst);
            // A transaction the proxy cannot read counts as co-signed: a test never passes
            // because the proxy could not tell.
            let co_signed = transaction_of(request).is_none_or(|d| {
                d.tx.signatures.first() != Some(&solana_signature::Signature::default())
            });
            if co_signed {
                self.co_signed_simulations.fetch_add(1, Ordering::SeqCst);
            }
        }
        method
    }

    async fn forward(&self, request: &Value) -> Vec<u8> {
        let forwarded = self
            .client
            .post(&self.upstream)
            .json(request)
            .send()
            .await
            .expect("forward to the validator");
        forwarded.bytes().await.expect("validator answer").to_vec()
    }
}

/// The transaction a `simulateTransaction` or `sendTransaction` request carries (base64).
fn transaction_of(request: &Value) -> Option<scheme_exact_svm::payload::DecodedTransaction> {
    let tx = request["params"][0].as_str()?;
    let bytes = x402_core::header::decode_base64(tx, 4096).ok()?;
    scheme_exact_svm::payload::decode_bytes(&bytes).ok()
}
