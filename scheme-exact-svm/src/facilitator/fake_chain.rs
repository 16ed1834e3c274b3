//! A scripted Solana JSON-RPC endpoint on loopback, for unit tests that need no validator: it
//! answers the handful of methods the facilitator calls (singly or in a batch) from a [`Chain`]
//! whose switches decide what happens to a transaction sent to it, and records every call.
#![cfg(feature = "buyer")] // only `durable_tests` (buyer feature) uses it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;

/// What `sendTransaction` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnSend {
    /// Lands it without error.
    Land,
    /// Lands it with an error.
    LandWithError,
    /// Answers its signature and loses it.
    Drop,
    /// Refuses it in preflight (a JSON-RPC error).
    Refuse,
}

/// The chain behind the endpoint.
#[derive(Debug)]
pub(crate) struct Chain {
    /// `getMultipleAccounts` answers these, in order.
    pub accounts: Vec<Value>,
    /// What a send does.
    pub on_send: Mutex<OnSend>,
    /// The status of the transaction: `None` unseen, `Some(true)` landed, `Some(false)` landed
    /// with an error.
    pub status: Mutex<Option<bool>>,
    /// `isBlockhashValid`.
    pub blockhash_valid: AtomicBool,
    /// `getSignatureStatuses` answers HTTP 500.
    pub status_fails: AtomicBool,
    /// `sendTransaction` calls that reached the chain.
    pub sends: AtomicUsize,
    /// Every method called, in order.
    pub calls: Mutex<Vec<String>>,
}

impl Chain {
    /// A chain holding `accounts`, landing what is sent.
    pub(crate) fn new(accounts: Vec<Value>) -> Arc<Self> {
        Arc::new(Self {
            accounts,
            on_send: Mutex::new(OnSend::Land),
            status: Mutex::new(None),
            blockhash_valid: AtomicBool::new(true),
            status_fails: AtomicBool::new(false),
            sends: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// An endpoint for this chain; with `sends_fail`, it answers `sendTransaction` with HTTP 500
    /// (a transport failure: it may or may not have taken it) and never forwards it.
    pub(crate) fn endpoint(self: &Arc<Self>, sends_fail: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let chain = Arc::clone(self);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let chain = Arc::clone(&chain);
                std::thread::spawn(move || serve(stream, &chain, sends_fail));
            }
        });
        url
    }

    /// How many times `method` was called.
    pub(crate) fn called(&self, method: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == method)
            .count()
    }

    fn set_status(&self, status: Option<bool>) {
        *self.status.lock().unwrap() = status;
    }

    /// Sets what the transaction's status is.
    pub(crate) fn land(&self, ok: bool) {
        self.set_status(Some(ok));
    }

    /// Sets what a send does.
    pub(crate) fn on_send(&self, what: OnSend) {
        *self.on_send.lock().unwrap() = what;
    }

    /// Answers one request: `None` is HTTP 500.
    fn answer(&self, request: &Value, sends_fail: bool) -> Option<Value> {
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        self.calls.lock().unwrap().push(method.clone());
        let context = json!({ "slot": 7 });
        let result = match method.as_str() {
            "getMultipleAccounts" => json!({ "context": context, "value": self.accounts }),
            "simulateTransaction" => {
                json!({ "context": context, "value": { "err": null, "logs": [] } })
            }
            "isBlockhashValid" => json!({
                "context": context,
                "value": self.blockhash_valid.load(Ordering::SeqCst)
            }),
            "getSignatureStatuses" => {
                if self.status_fails.load(Ordering::SeqCst) {
                    return None;
                }
                let status = match *self.status.lock().unwrap() {
                    None => Value::Null,
                    Some(true) => json!({
                        "slot": 7, "confirmations": null, "status": { "Ok": null }, "err": null,
                        "confirmationStatus": "finalized"
                    }),
                    Some(false) => json!({
                        "slot": 7, "confirmations": null,
                        "status": { "Err": "InsufficientFundsForFee" },
                        "err": "InsufficientFundsForFee", "confirmationStatus": "finalized"
                    }),
                };
                json!({ "context": context, "value": [status] })
            }
            "sendTransaction" => {
                if sends_fail {
                    return None;
                }
                self.sends.fetch_add(1, Ordering::SeqCst);
                let signature = signature_of(request);
                match *self.on_send.lock().unwrap() {
                    OnSend::Land => self.set_status(Some(true)),
                    OnSend::LandWithError => self.set_status(Some(false)),
                    OnSend::Drop => {}
                    OnSend::Refuse => {
                        return Some(json!({
                            "jsonrpc": "2.0", "id": request["id"],
                            "error": {
                                "code": -32002,
                                "message": "Transaction simulation failed: Attempt to debit an account but found no record of a prior credit."
                            }
                        }));
                    }
                }
                json!(signature)
            }
            _ => {
                return Some(json!({
                    "jsonrpc": "2.0", "id": request["id"],
                    "error": { "code": -32601, "message": "Method not found" }
                }));
            }
        };
        Some(json!({ "jsonrpc": "2.0", "id": request["id"], "result": result }))
    }
}

/// The first signature of the transaction a `sendTransaction` request carries.
fn signature_of(request: &Value) -> String {
    let text = request["params"][0].as_str().unwrap_or_default();
    let bytes = x402_core::header::decode_base64(text, 4096).expect("base64");
    let tx: VersionedTransaction = bincode::deserialize(&bytes).expect("a transaction");
    tx.signatures[0].to_string()
}

fn serve(stream: TcpStream, chain: &Chain, sends_fail: bool) {
    let Ok(mut write) = stream.try_clone() else {
        return;
    };
    let mut read = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            match read.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        // A JSON-RPC batch is answered call by call (HTTP 500 if any call is).
        let answer = match &request {
            Value::Array(calls) => calls
                .iter()
                .map(|call| chain.answer(call, sends_fail))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            one => chain.answer(one, sends_fail),
        };
        let response = match answer {
            Some(answer) => {
                let body = answer.to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            None => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        if write.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// An account of the token program holding `data`, as `getMultipleAccounts` shows it.
pub(crate) fn token_program_account(data: &[u8]) -> Value {
    json!({
        "lamports": 2_039_280u64,
        "data": [x402_core::header::encode_base64(data), "base64"],
        "owner": crate::instructions::TOKEN_PROGRAM.to_string(),
        "executable": false,
        "rentEpoch": 0,
        "space": data.len(),
    })
}

/// An initialized SPL Token mint of `decimals` (no authorities).
pub(crate) fn mint_data(decimals: u8) -> Vec<u8> {
    let mut data = vec![0u8; 82];
    data[36..44].copy_from_slice(&1_000_000_000u64.to_le_bytes());
    data[44] = decimals;
    data[45] = 1;
    data
}

/// An initialized SPL Token account of `owner` holding `amount` of `mint`.
pub(crate) fn token_account_data(mint: &Pubkey, owner: &Pubkey, amount: u64) -> Vec<u8> {
    let mut data = vec![0u8; 165];
    data[..32].copy_from_slice(mint.as_ref());
    data[32..64].copy_from_slice(owner.as_ref());
    data[64..72].copy_from_slice(&amount.to_le_bytes());
    data[108] = 1;
    data
}
