//! `GET /ready`: the chains, the signers' funds and the settlement store, probed at most once per
//! `[limits] ready_interval_ms`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use x402_core::NetworkPattern;

use super::{AppState, json_response};

/// Ready when every configured network's RPC answers, its signers are funded and the settlement
/// store answers. The chains are
/// probed at most once per `[limits] ready_interval_ms`: callers in between get the last answer,
/// and callers during a probe wait for it, so `/ready` cannot be used to multiply RPC traffic.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let mut last = state.ready.lock().await;
    let interval = Duration::from_millis(state.limits.ready_interval_ms);
    if let Some((taken, status, report)) = last.as_ref()
        && taken.elapsed() < interval
    {
        return json_response(*status, report);
    }
    let (status, report) = probe(&state).await;
    let answer = json_response(status, &report);
    *last = Some((Instant::now(), status, report));
    answer
}

/// Probes every configured (scheme, network) once: the readiness status and report.
async fn probe(state: &AppState) -> (StatusCode, serde_json::Value) {
    let mut report = serde_json::Map::new();
    let mut all_ready = true;
    let mut seen = std::collections::HashSet::new();
    for entry in state.facilitator.registry().entries() {
        let NetworkPattern::Exact(network) = &entry.pattern else {
            continue;
        };
        let key = format!("{}/{}", entry.scheme.scheme(), network);
        if !seen.insert(key.clone()) {
            continue;
        }
        let started = Instant::now();
        let status = entry.scheme.status(network).await;
        let labels = vec![("network", network.to_string())];
        state.metrics.observe(
            "x402_rpc_probe_duration_seconds",
            labels.clone(),
            started.elapsed(),
        );
        let value = match status {
            Ok(None) => json!({ "ready": true }),
            Ok(Some(s)) => {
                state.metrics.set("x402_rpc_up", labels.clone(), 1.0);
                let funded = s.signers.iter().all(|x| x.funded);
                all_ready &= funded;
                let signers: Vec<_> = s
                    .signers
                    .iter()
                    .map(|x| {
                        let balance = x.balance.to_string();
                        state.metrics.set(
                            "x402_signer_balance",
                            vec![
                                ("network", network.to_string()),
                                ("address", x.address.clone()),
                            ],
                            balance.parse::<f64>().unwrap_or(f64::MAX),
                        );
                        json!({ "address": x.address, "balance": balance, "funded": x.funded })
                    })
                    .collect();
                json!({ "ready": funded, "rpc": "up", "signers": signers })
            }
            Err(e) => {
                all_ready = false;
                state.metrics.set("x402_rpc_up", labels.clone(), 0.0);
                state.metrics.inc("x402_rpc_errors_total", labels);
                json!({ "ready": false, "rpc": "down", "error": e.to_string() })
            }
        };
        report.insert(key, value);
    }
    let mut store_report = None;
    if let Some(store) = state.facilitator.store() {
        let value = match store.health().await {
            Ok(()) => {
                if let Ok(counts) = store.counts().await {
                    state.metrics.set(
                        "x402_settlements_unresolved",
                        Vec::new(),
                        counts.unresolved as f64,
                    );
                }
                json!({ "ready": true, "kind": store.kind() })
            }
            Err(e) => {
                all_ready = false;
                json!({ "ready": false, "kind": store.kind(), "error": e.to_string() })
            }
        };
        store_report = Some(value);
    }
    let status = if all_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut answer = json!({ "ready": all_ready, "schemes": report });
    if let Some(store) = store_report {
        answer["store"] = store;
    }
    (status, answer)
}
