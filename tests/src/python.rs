//! Runs the Python helpers of `tests/interop/python/` with the virtual environment that
//! `scripts/install-tools.sh` builds from `tests/interop/python/requirements.txt` (the official
//! `x402` Python SDK; `$X402_PYTHON` is its interpreter).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use x402_core::SettleTimeouts;

/// How long the interpreter may take to import the SDK (web3, pydantic, FastAPI) on a busy
/// machine: a hang guard, not a performance bound.
const START_UP: Duration = Duration::from_secs(120);

/// One helper script run by the SDK's virtual environment.
#[derive(Debug)]
pub struct PythonScript {
    python: PathBuf,
    script: PathBuf,
}

impl PythonScript {
    /// Prepares `tests/interop/python/<name>`.
    ///
    /// # Panics
    /// When the virtual environment is missing (an install bug: run `scripts/install-tools.sh`).
    pub fn new(name: &str) -> Self {
        let python = crate::tools::require("X402_PYTHON");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("interop/python")
            .join(name);
        assert!(script.exists(), "no script {}", script.display());
        Self { python, script }
    }

    /// The command that runs the script with `args` and `envs` (killed when dropped): for a
    /// server spoken to over its stdin/stdout, say.
    pub fn command(&self, args: &[&str], envs: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the script to completion and returns its stdout lines.
    ///
    /// # Panics
    /// When it fails, or hangs: it gets as long as a seller's facilitator client waits for a
    /// settle under the default bounds, plus the interpreter's start-up.
    pub async fn run(&self, args: &[&str], envs: &[(&str, String)]) -> Vec<String> {
        let hang_guard =
            SettleTimeouts::default().client_timeout() + SettleTimeouts::MARGIN + START_UP;
        let out = tokio::time::timeout(hang_guard, self.command(args, envs).output())
            .await
            .expect("python finished (hang guard)")
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python {} failed: {stdout}\n{}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().map(str::to_owned).collect()
    }

    /// Starts a server script and waits for its `listening on URL` line; the process is killed
    /// when the returned child is dropped.
    ///
    /// # Panics
    /// When it exits or does not start within the start-up guard.
    pub async fn serve(&self, envs: &[(&str, String)]) -> (Child, String) {
        self.serve_with(&[], envs).await
    }

    /// [`PythonScript::serve`] with command-line arguments.
    ///
    /// # Panics
    /// When it exits or does not start within the start-up guard.
    pub async fn serve_with(&self, args: &[&str], envs: &[(&str, String)]) -> (Child, String) {
        let mut child = self
            .command(args, envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_UP, async {
            while let Some(line) = lines.next_line().await.expect("read") {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.to_owned();
                }
            }
            panic!("{} exited before listening", self.script.display())
        })
        .await
        .expect("server listening in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, url)
    }
}
