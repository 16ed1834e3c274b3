//! A headless Chromium driven over the DevTools protocol (CDP), just enough for the paywall
//! tests: one browser per guard (temporary profile, killed on drop), pages as flattened target
//! sessions, commands answered by id, events delivered per session.
//!
//! The browser is Debian's `chromium` (`scripts/install-tools.sh` installs it and writes
//! `X402_CHROMIUM`); a missing browser is an install bug and panics, it never skips a test.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::tools;

mod solana_wallet;
mod wallet;
pub use solana_wallet::{SOLANA_WALLET_NAME, SignRequest, TestSolanaWallet};
pub use wallet::{TestWallet, WalletRequest};

/// How long the browser may take to start, answer a command, or load a page on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;
type Listeners = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Value>>>>;

/// A running headless Chromium; killed (with its temporary profile removed) on drop.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    conn: Connection,
}

/// The WebSocket to the browser, shared by its pages.
#[derive(Debug, Clone)]
struct Connection {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    listeners: Listeners,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Connection {
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.out
            .send(message.to_string())
            .expect("the DevTools connection is open");
        match tokio::time::timeout(PATIENCE, rx).await {
            Ok(Ok(Ok(v))) => v,
            Ok(Ok(Err(e))) => panic!("DevTools {method} failed: {e}"),
            Ok(Err(_)) => panic!("the DevTools connection closed during {method}"),
            Err(_) => panic!("DevTools {method} unanswered after {PATIENCE:?}"),
        }
    }
}

impl Browser {
    /// Starts `X402_CHROMIUM` headless with a fresh profile and connects to it.
    ///
    /// # Panics
    /// When Chromium is not installed or does not start.
    pub async fn start() -> Self {
        let binary = tools::require("X402_CHROMIUM");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=900,760",
                // sandboxed frames stay in their page's process, so a test reads them through the
                // page's session (process placement only: the sandbox is the same)
                "--disable-features=IsolateSandboxedIframes",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let find = async {
            while let Some(line) = lines.next_line().await.expect("chromium stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited before listening for DevTools");
        };
        let ws_url = tokio::time::timeout(PATIENCE, find)
            .await
            .unwrap_or_else(|_| panic!("chromium did not listen for DevTools in {PATIENCE:?}"));
        // keep draining stderr so the browser never blocks on a full pipe
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to DevTools");
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(Message::text(m)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let listeners: Listeners = Arc::default();
        let (p, l) = (pending.clone(), listeners.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = p.lock().unwrap().remove(&id) {
                        let answer = match v.get("error") {
                            Some(e) => Err(e.to_string()),
                            None => Ok(v["result"].clone()),
                        };
                        let _ = tx.send(answer);
                    }
                } else if let Some(session) = v["sessionId"].as_str()
                    && let Some(tx) = l.lock().unwrap().get(session)
                {
                    let _ = tx.send(v);
                }
            }
        });
        Self {
            child,
            _profile: profile,
            conn: Connection {
                out,
                pending,
                listeners,
                next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            },
        }
    }

    /// A new blank page, with its events delivered to the returned receiver.
    pub async fn page(&self) -> (Page, mpsc::UnboundedReceiver<Value>) {
        let target = self
            .conn
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = self
            .conn
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let (tx, rx) = mpsc::unbounded_channel();
        self.conn
            .listeners
            .lock()
            .unwrap()
            .insert(session.clone(), tx);
        let page = Page {
            conn: self.conn.clone(),
            session,
        };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        (page, rx)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One page (a flattened target session).
#[derive(Debug, Clone)]
pub struct Page {
    conn: Connection,
    session: String,
}

impl Page {
    /// Sends `method` to the page and returns its result.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value.
    ///
    /// # Panics
    /// When the expression throws.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expression` until it returns a truthy value (polling), and returns it.
    ///
    /// # Panics
    /// After [`PATIENCE`].
    pub async fn wait_for(&self, expression: &str) -> Value {
        let start = std::time::Instant::now();
        loop {
            let v = self.eval(expression).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{expression} still false after {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Navigates to `url`.
    pub async fn goto(&self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(r.get("errorText").is_none(), "navigating to {url}: {r}");
        self.wait_for("document.readyState === 'complete'").await;
    }

    /// A PNG of the whole page.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64")
    }
}
