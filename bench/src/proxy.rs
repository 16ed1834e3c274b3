//! A counting JSON-RPC proxy on loopback: the facilitator under test talks to the chain through
//! it, and every call is tallied by method (each call of a batch counts). `GET /counts` answers
//! the tallies as JSON, so a driver in another process can read them too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::require_loopback;

/// Calls per JSON-RPC method.
pub type Counts = BTreeMap<String, u64>;

#[derive(Deserialize)]
struct Call {
    method: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Calls {
    One(Call),
    Batch(Vec<Call>),
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<Counts>,
}

/// A running proxy; dropping it stops it.
#[derive(Debug)]
pub struct RpcProxy {
    url: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl RpcProxy {
    /// Starts a proxy to `upstream` (a loopback JSON-RPC URL) on a free loopback port.
    pub async fn start(upstream: &str) -> Result<Self, String> {
        require_loopback(upstream)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("proxy address: {e}"))?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("proxy client: {e}"))?;
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            client,
            counts: Mutex::new(Counts::new()),
        });
        let app = Router::new()
            .route("/", post(forward))
            .route("/counts", get(counts))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// The URL to give the facilitator as its RPC endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The tallies so far.
    pub fn counts(&self) -> Counts {
        lock(&self.state.counts).clone()
    }
}

impl Drop for RpcProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(m: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn forward(State(state): State<Arc<ProxyState>>, body: Bytes) -> Response {
    {
        let mut counts = lock(&state.counts);
        match serde_json::from_slice::<Calls>(&body) {
            Ok(Calls::One(c)) => *counts.entry(c.method).or_default() += 1,
            Ok(Calls::Batch(calls)) => {
                for c in calls {
                    *counts.entry(c.method).or_default() += 1;
                }
            }
            Err(_) => *counts.entry("(unparsed)".into()).or_default() += 1,
        }
    }
    let answer = state
        .client
        .post(&state.upstream)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::OK);
            match r.bytes().await {
                Ok(bytes) => {
                    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn counts(State(state): State<Arc<ProxyState>>) -> Response {
    let counts = lock(&state.counts).clone();
    axum::Json(counts).into_response()
}

/// Reads the tallies of a proxy running in another process (`GET URL/counts`).
pub async fn fetch_counts(proxy_url: &str) -> Result<Counts, String> {
    require_loopback(proxy_url)?;
    let url = format!("{}/counts", proxy_url.trim_end_matches('/'));
    reqwest::get(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// `after - before`, per method, dropping methods that were not called in between.
pub fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(m, &n)| {
            let d = n.saturating_sub(before.get(m).copied().unwrap_or(0));
            (d > 0).then(|| (m.clone(), d))
        })
        .collect()
}
