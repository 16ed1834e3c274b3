//! Runs the Node helpers of `tests/interop/` against the official x402 SDKs installed by
//! `scripts/install-tools.sh` (`$X402_INTEROP_NODE_MODULES`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use x402_core::SettleTimeouts;

/// A scratch folder holding a copy of one helper script next to a `node_modules` link.
#[derive(Debug)]
pub struct NodeScript {
    _dir: tempfile::TempDir,
    script: PathBuf,
}

impl NodeScript {
    /// Prepares `tests/interop/<name>`.
    ///
    /// # Panics
    /// When the SDKs are not installed (an install bug: run `scripts/install-tools.sh`).
    pub fn new(name: &str) -> Self {
        let modules = crate::tools::require("X402_INTEROP_NODE_MODULES");
        let dir = tempfile::tempdir().expect("tempdir");
        // Node resolves ES module imports from the script's folder upwards, not from NODE_PATH.
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).expect("link");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
        std::fs::copy(source.join("package.json"), dir.path().join("package.json"))
            .expect("package.json");
        let script = dir.path().join(name);
        std::fs::copy(source.join(name), &script).expect("script");
        Self { _dir: dir, script }
    }

    fn command(&self, args: &[&str], envs: &[(&str, String)]) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(&self.script).args(args).kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the script to completion and returns its stdout lines.
    ///
    /// # Panics
    /// When it fails, or hangs: it gets as long as a seller's facilitator client waits for a
    /// settle under the default bounds, plus a margin for node's start-up.
    pub async fn run(&self, args: &[&str], envs: &[(&str, String)]) -> Vec<String> {
        let hang_guard = SettleTimeouts::default().client_timeout() + SettleTimeouts::MARGIN;
        let out = tokio::time::timeout(hang_guard, self.command(args, envs).output())
            .await
            .expect("node finished (hang guard)")
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "node {} failed: {stdout}\n{}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().map(str::to_owned).collect()
    }

    /// Starts a server script and waits for its `listening on URL` line; the process is killed
    /// when the returned child is dropped.
    ///
    /// # Panics
    /// When it does not start within 30 s.
    pub async fn serve(&self, envs: &[(&str, String)]) -> (Child, String) {
        let mut child = self
            .command(&[], envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read") {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.to_owned();
                }
            }
            panic!("the server exited before listening")
        })
        .await
        .expect("server listening in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, url)
    }

    /// Starts a script that answers JSON lines (see [`NodeSession`]) and waits for its `"ready"`
    /// line; the process is killed when the session is dropped.
    ///
    /// # Panics
    /// When it does not get ready within 30 s.
    pub async fn session(self, envs: &[(&str, String)]) -> NodeSession {
        let mut child = self
            .command(&[], envs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("session ready in time")
            .expect("read");
        assert_eq!(
            first.as_deref(),
            Some("\"ready\""),
            "node {} did not get ready",
            self.script.display()
        );
        NodeSession {
            _script: self,
            _child: child,
            stdin,
            lines,
            next_id: 0,
        }
    }
}

/// A long-lived script reading one JSON command a line on stdin and answering each with one line
/// on stdout: `{"id", "result"}`, or `{"id", "error"}` when the command threw.
#[derive(Debug)]
pub struct NodeSession {
    _script: NodeScript,
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl NodeSession {
    /// Sends `command` (a JSON object; an `id` is added) and returns the answer's `result`.
    ///
    /// # Panics
    /// When the script answers an error, exits, or hangs (the same guard as
    /// [`NodeScript::run`]).
    pub async fn call(&mut self, mut command: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = id.into();
        let mut line = serde_json::to_vec(&command).expect("json");
        line.push(b'\n');
        self.stdin.write_all(&line).await.expect("write to node");
        self.stdin.flush().await.expect("flush");
        let hang_guard = SettleTimeouts::default().client_timeout() + SettleTimeouts::MARGIN;
        let answer = tokio::time::timeout(hang_guard, self.lines.next_line())
            .await
            .expect("node answered (hang guard)")
            .expect("read")
            .expect("node exited before answering");
        let mut answer: serde_json::Value = serde_json::from_str(&answer).expect("a JSON line");
        assert_eq!(answer["id"], id, "answers come in order: {answer}");
        assert!(
            answer["error"].is_null(),
            "node failed {}: {}",
            command["cmd"],
            answer["error"]
        );
        answer["result"].take()
    }
}
