//! A child process that cannot outlive its guard, nor the test binary that started it.
//!
//! Guards held in a `static` (a validator shared by a test binary) are never dropped, so dropping
//! alone cannot promise "no orphan after the test binary exits". Every child therefore runs under
//! a tiny bash watchdog in its own process group: the watchdog polls the test process and kills
//! the child as soon as the test process is gone. Dropping the guard kills the whole group at once.

use std::process::{Child, Command, Stdio};

/// The watchdog script: `$1` = pid to watch, the rest = the command to run.
const WATCHDOG: &str = r#"
watch=$1; shift
"$@" &
child=$!
stop() { kill -TERM "$child" 2>/dev/null; sleep 0.2; kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0; }
trap stop TERM INT HUP
while kill -0 "$watch" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5 & wait $!; done
stop
"#;

/// Owns a child process (in its own process group) and kills the group on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    /// Runs `program args…` under the watchdog, stdout and stderr piped so the caller can read
    /// its start-up lines.
    ///
    /// # Panics
    /// When the process cannot be started (an install bug: the test must fail).
    pub fn spawn(name: &'static str, program: &std::path::Path, args: &[String]) -> Self {
        use std::os::unix::process::CommandExt;
        assert!(
            program.exists(),
            "{name}: {} does not exist; run scripts/install-tools.sh",
            program.display()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("x402-watchdog")
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { child, name }
    }

    /// The watchdog's pid, which is also the process group id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child handle (to take its stdout, say).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Stops the child: asks the watchdog to terminate and reap it, then kills whatever is left
    /// of the process group, and reaps the watchdog. Nothing is left running or unreaped.
    pub fn kill(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let group = format!("-{pid}");
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
