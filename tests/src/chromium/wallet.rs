//! A test wallet injected into a page as `window.ethereum` (an EIP-1193 provider): every request
//! goes over a DevTools binding to the test, which answers with a fixed account and chain and
//! signs `eth_signTypedData_v4` with a test key (alloy), exactly the typed data the page built;
//! reads (`eth_call`) go to the chain's RPC endpoint, as a wallet forwards them to its node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use alloy::dyn_abi::TypedData;
use alloy::signers::SignerSync as _;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Page;

/// The binding the provider calls; the reply function the test evaluates.
const BINDING: &str = "__x402TestWallet";

/// The provider, defined in every new document before the page's own scripts run.
const PROVIDER: &str = r#"(() => {
  const pending = new Map();
  let next = 0;
  const binding = window.__x402TestWallet;
  window.__x402TestWalletReply = (id, ok, value) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (ok) p.resolve(value);
    else p.reject(Object.assign(new Error(value.message), { code: value.code }));
  };
  window.ethereum = {
    isX402TestWallet: true,
    request({ method, params }) {
      return new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, { resolve, reject });
        binding(JSON.stringify({ id, method, params: params || [] }));
      });
    },
  };
})();"#;

/// A request the page made to the wallet.
#[derive(Debug, Clone)]
pub struct WalletRequest {
    /// The EIP-1193 method.
    pub method: String,
    /// Its parameters.
    pub params: Value,
}

/// The wallet injected into one page; records every request it answered.
#[derive(Debug, Clone)]
pub struct TestWallet {
    requests: Arc<Mutex<Vec<WalletRequest>>>,
    current: Arc<AtomicU64>,
}

impl TestWallet {
    /// Injects the provider into `page` (for documents loaded from now on) and answers its
    /// requests from `events` (the page's DevTools events) as `signer`, reading from the node at
    /// `rpc`, whose chain is `chain_id`. The wallet starts on that chain
    /// ([`TestWallet::start_on`] changes it) and switches only to it (any other is unknown, 4902).
    pub async fn install(
        page: &Page,
        mut events: mpsc::UnboundedReceiver<Value>,
        signer: PrivateKeySigner,
        chain_id: u64,
        rpc: String,
    ) -> Self {
        page.call("Runtime.addBinding", json!({ "name": BINDING }))
            .await;
        page.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": PROVIDER }),
        )
        .await;
        let requests: Arc<Mutex<Vec<WalletRequest>>> = Arc::default();
        let current = Arc::new(AtomicU64::new(chain_id));
        let (log, page, on) = (requests.clone(), page.clone(), current.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if event["method"] != "Runtime.bindingCalled" || event["params"]["name"] != BINDING
                {
                    continue;
                }
                let Some(call) = event["params"]["payload"]
                    .as_str()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                else {
                    continue;
                };
                let request = WalletRequest {
                    method: call["method"].as_str().unwrap_or_default().to_owned(),
                    params: call["params"].clone(),
                };
                log.lock().unwrap().push(request.clone());
                let answered = match request.method.as_str() {
                    "eth_call" => forward(&rpc, &request).await,
                    _ => answer(&request, &signer, chain_id, &on),
                };
                let (ok, value) = match answered {
                    Ok(v) => (true, v),
                    Err((code, message)) => (false, json!({ "code": code, "message": message })),
                };
                let reply = format!(
                    "window.__x402TestWalletReply({}, {ok}, {value})",
                    call["id"]
                );
                page.call("Runtime.evaluate", json!({ "expression": reply }))
                    .await;
            }
        });
        Self { requests, current }
    }

    /// Puts the wallet on chain `id` (before the page asks), so that the page must switch.
    pub fn start_on(&self, id: u64) {
        self.current.store(id, Ordering::SeqCst);
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<WalletRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The typed data of every `eth_signTypedData_v4` request, parsed.
    pub fn signed_typed_data(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "eth_signTypedData_v4")
            .filter_map(|r| {
                r.params[1]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
            })
            .collect()
    }
}

fn answer(
    request: &WalletRequest,
    signer: &PrivateKeySigner,
    chain_id: u64,
    current: &AtomicU64,
) -> Result<Value, (i64, String)> {
    let refuse = |m: String| (4200, m);
    let me = signer.address().to_checksum(None);
    match request.method.as_str() {
        "eth_requestAccounts" | "eth_accounts" => Ok(json!([me])),
        "eth_chainId" => Ok(json!(format!("0x{:x}", current.load(Ordering::SeqCst)))),
        "wallet_switchEthereumChain" => {
            let wanted = request.params[0]["chainId"].as_str().unwrap_or_default();
            if wanted != format!("0x{chain_id:x}") {
                return Err((4902, format!("unknown chain {wanted}")));
            }
            current.store(chain_id, Ordering::SeqCst);
            Ok(Value::Null)
        }
        "eth_signTypedData_v4" => {
            let from = request.params[0].as_str().unwrap_or_default();
            if !from.eq_ignore_ascii_case(&me) {
                return Err(refuse(format!("unknown account {from}")));
            }
            if current.load(Ordering::SeqCst) != chain_id {
                return Err(refuse("the wallet is on another chain".into()));
            }
            let typed: TypedData = request.params[1]
                .as_str()
                .ok_or("typed data is not a string")
                .and_then(|s| serde_json::from_str(s).map_err(|_| "typed data is not JSON"))
                .map_err(|e| refuse(e.to_owned()))?;
            let hash = typed
                .eip712_signing_hash()
                .map_err(|e| refuse(e.to_string()))?;
            let signature = signer
                .sign_hash_sync(&hash)
                .map_err(|e| refuse(e.to_string()))?;
            Ok(json!(format!("0x{}", hex::encode(signature.as_bytes()))))
        }
        other => Err(refuse(format!("the test wallet does not support {other}"))),
    }
}

/// Sends a read to the node, as a wallet does.
async fn forward(rpc: &str, request: &WalletRequest) -> Result<Value, (i64, String)> {
    let failed = |e: String| (-32603, e);
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": request.method, "params": request.params });
    let answer: Value = reqwest::Client::new()
        .post(rpc)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?
        .json()
        .await
        .map_err(|e| failed(e.to_string()))?;
    match answer.get("error") {
        Some(e) => Err(failed(e.to_string())),
        None => Ok(answer["result"].clone()),
    }
}
