//! Helpers shared by the modules: launching the facilitator binary on a generated config, and
//! small HTTP calls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use x402_core::SettleTimeouts;
use x402_tests::evm::exact::ExactHarness;

/// A running binary, killed on drop.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn command(config: &str, envs: &[(&str, String)]) -> (Command, tempfile::NamedTempFile) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, config.as_bytes()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_x402-facilitator"));
    cmd.arg("--config").arg(file.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    (cmd, file)
}

pub(crate) fn start(config: &str, envs: &[(&str, String)]) -> Running {
    let (mut cmd, file) = command(config, envs);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    drop(file);
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("facilitator did not start: {line:?} {err}");
    };
    // Keep stderr drained so logging never blocks the server.
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    Running {
        url: url.to_owned(),
        child,
    }
}

/// Runs the binary to completion and returns (success, stdout, stderr).
pub(crate) fn run(config: &str, envs: &[(&str, String)], args: &[&str]) -> (bool, String, String) {
    let (mut cmd, _file) = command(config, envs);
    let out = cmd.args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The settle bound of [`config`] (`[limits] settle_timeout_ms`).
pub(crate) const SETTLE_TIMEOUT_MS: u64 = 20_000;

/// A fresh directory for one server's settlement store (kept: a test may restart on it).
pub(crate) fn store_dir() -> std::path::PathBuf {
    tempfile::tempdir()
        .map(tempfile::TempDir::keep)
        .unwrap_or_else(|e| panic!("a temporary directory: {e}"))
}

pub(crate) fn config(h: &ExactHarness) -> (String, Vec<(&'static str, String)>) {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
auth = "none"
[store]
url = "sqlite:{store}/settlements.sqlite3"
[limits]
settle_timeout_ms = {SETTLE_TIMEOUT_MS}
# one chain probe per server: the probe counts the tests read are exact
ready_interval_ms = 600000
[networks."eip155:84532"]
rpc_urls = ["$X402_TEST_RPC"]
signer_keys = ["$X402_TEST_KEY"]
receipt_timeout_ms = 15000
[networks."eip155:84532".schemes.exact]
assets = ["{usdc}"]
[networks."eip155:84532".schemes.upto]
assets = ["{usdc}"]
"#,
        usdc = h.bed.usdc(),
        store = store_dir().display()
    );
    let key = format!(
        "0x{}",
        alloy::hex::encode(h.bed.facilitator().signer.to_bytes())
    );
    (
        text,
        vec![
            ("X402_TEST_RPC", h.bed.endpoint().to_owned()),
            ("X402_TEST_KEY", key),
        ],
    )
}

pub(crate) async fn post(
    url: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Declares a `len`-byte body, sends only its first kilobyte, and returns the status answered.
pub(crate) async fn oversized_status(url: &str, path: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 1024]).await.unwrap();
    let mut buf = vec![0u8; 64];
    // Hang guard: a server that waited for the rest of the body would never answer. No request
    // to a server run on [`config`] may take longer than its request deadline.
    let hang_guard =
        SettleTimeouts::new(Duration::from_millis(SETTLE_TIMEOUT_MS)).request_deadline();
    let n = tokio::time::timeout(hang_guard, stream.read(&mut buf))
        .await
        .expect("answered without reading the whole body")
        .unwrap();
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

pub(crate) async fn get(url: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
