//! A throw-away PostgreSQL cluster on a free loopback port, killed and deleted when its guard
//! drops.
//!
//! [`PgServer::start`] runs `initdb` (trust authentication, fsync left on) into a temporary
//! folder, starts `postgres` under [`ChildGuard`] on a free port of 127.0.0.1 with its socket in
//! that folder, polls `pg_isready` until the server accepts connections, and creates the
//! database `x402`. [`PgServer::stop`] stops it the way a crash would (`pg_ctl stop -m
//! immediate`: no checkpoint), [`PgServer::start_again`] starts it on the same data and port;
//! [`PgServer::freeze`] and [`PgServer::thaw`] make it hang and go on (a partition).
//!
//! PostgreSQL refuses to run as root. Run as root (CI, this machine), the harness runs the
//! server tools as the `postgres` user (created by Debian's package), else as `nobody`, through
//! `setpriv`, and hands the temporary folder to that user; run as anyone else, it runs them as
//! they are.
//!
//! The binaries are found with `pg_config --bindir`, else in the newest
//! `/usr/lib/postgresql/*/bin`. Missing binaries fail the test: `scripts/install-tools.sh`
//! installs Debian's `postgresql` package.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::process::ChildGuard;
use crate::wait::{HANG_GUARD, POLL_INTERVAL};

/// The superuser `initdb` creates (`-U`).
pub const SUPERUSER: &str = "postgres";

/// The database [`PgServer::start`] creates.
pub const DATABASE: &str = "x402";

/// How many of the server's last output lines are kept for error messages.
const LOG_TAIL: usize = 80;

/// How many free ports are tried when the one picked was taken before the server bound it.
const PORT_ATTEMPTS: usize = 5;

/// Who runs the server tools.
#[derive(Debug, Clone)]
struct RunAs {
    user: String,
    uid: u32,
    gid: u32,
    setpriv: PathBuf,
}

/// The last lines the server wrote, shared with the threads that drain its pipes.
type LogTail = Arc<Mutex<VecDeque<String>>>;

/// A running (or stopped) throw-away PostgreSQL server; dropping it kills the server and deletes
/// its data.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    child: Option<ChildGuard>,
    frozen: bool,
    log: LogTail,
    // Declared last: dropped after the server is gone.
    dir: tempfile::TempDir,
}

impl PgServer {
    /// Initializes a cluster in a temporary folder, starts it on a free loopback port, waits
    /// until it accepts connections and creates the database [`DATABASE`].
    ///
    /// # Panics
    /// When the PostgreSQL binaries are missing (an install bug: run
    /// `scripts/install-tools.sh`), or `initdb`, the server or `createdb` fail; the message
    /// carries their output.
    pub fn start() -> Self {
        let bin = bindir();
        let run_as = run_as();
        let dir = tempfile::Builder::new()
            .prefix("x402-pg-")
            .tempdir()
            .expect("a temporary folder for PostgreSQL");
        std::fs::create_dir(dir.path().join("sock")).expect("the socket folder");
        if let Some(user) = &run_as {
            for path in [dir.path().to_owned(), dir.path().join("sock")] {
                std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).unwrap_or_else(
                    |e| panic!("cannot hand {} to {}: {e}", path.display(), user.user),
                );
            }
        }
        let mut server = Self {
            bin,
            run_as,
            port: 0,
            child: None,
            frozen: false,
            log: Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL))),
            dir,
        };
        let data = server.data_dir();
        let initdb = server.tool("initdb");
        server.run_tool(
            &initdb,
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => break,
                Err(log) if attempt < PORT_ATTEMPTS && log.contains("could not bind") => {}
                Err(log) => panic!(
                    "PostgreSQL did not start on port {} (attempt {attempt}); its output:\n{log}",
                    server.port
                ),
            }
        }
        let createdb = server.tool("createdb");
        let port = server.port.to_string();
        let created = Command::new(&createdb)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, DATABASE])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", createdb.display()));
        assert_ok("createdb", &created);
        server
    }

    /// The URL of the database [`DATABASE`]: `postgres://postgres@127.0.0.1:PORT/x402`.
    pub fn url(&self) -> String {
        self.database_url(DATABASE)
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` (for a test that wants one of its own) and returns its URL.
    ///
    /// # Panics
    /// When `createdb` fails.
    pub fn create_database(&self, name: &str) -> String {
        let createdb = self.tool("createdb");
        let port = self.port.to_string();
        let created = Command::new(&createdb)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", createdb.display()));
        assert_ok("createdb", &created);
        self.database_url(name)
    }

    /// The port the server listens on (kept across [`PgServer::stop`] and
    /// [`PgServer::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes the server (`SIGSTOP` to the postmaster and every backend): its port and
    /// connections stay open but nothing is answered, as with a hung host or a network
    /// partition that drops packets.
    ///
    /// # Panics
    /// When the server is not running.
    pub fn freeze(&mut self) {
        assert!(self.signal_server("-STOP"), "cannot freeze the server");
        self.frozen = true;
    }

    /// Lets a frozen server go on (`SIGCONT`).
    ///
    /// # Panics
    /// When the server is not running.
    pub fn thaw(&mut self) {
        assert!(self.signal_server("-CONT"), "cannot thaw the server");
        self.frozen = false;
    }

    /// Sends `signal` to the server: the postmaster and its children (each backend runs in a
    /// session of its own, so the process group alone would miss them); whether every process
    /// got it.
    ///
    /// # Panics
    /// When the server is not running.
    fn signal_server(&self, signal: &str) -> bool {
        assert!(self.child.is_some(), "the server is not running");
        let Some(postmaster) = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        else {
            return false;
        };
        // The postmaster first on STOP (it forks no new backend meanwhile), last on CONT.
        let mut pids = vec![postmaster];
        pids.extend(children_of(postmaster));
        if signal == "-CONT" {
            pids.reverse();
        }
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        Command::new("kill")
            .arg(signal)
            .arg("--")
            .args(&pids)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server as a crash would: `pg_ctl stop -m immediate` (every backend killed, no
    /// checkpoint; the next start replays the WAL). Returns once the server has exited.
    ///
    /// # Panics
    /// When the server is not running or does not exit.
    pub fn stop(&mut self) {
        if self.frozen {
            self.thaw();
        }
        let mut child = self.child.take().expect("stop: the server is not running");
        let pg_ctl = self.tool("pg_ctl");
        let data = self.data_dir();
        self.run_tool(
            &pg_ctl,
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
            ],
        );
        // The watchdog notices the server's exit and ends; reap it.
        let give_up = Instant::now() + HANG_GUARD;
        while !matches!(child.child_mut().try_wait(), Ok(Some(_))) && Instant::now() < give_up {
            std::thread::sleep(POLL_INTERVAL);
        }
        child.kill();
    }

    /// Starts the stopped server again on the same data folder and port, and waits until it
    /// accepts connections.
    ///
    /// # Panics
    /// When it is running already or does not come up.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: the server is running");
        if let Err(log) = self.spawn_and_wait() {
            panic!(
                "PostgreSQL did not start again on port {}; its output:\n{log}",
                self.port
            );
        }
    }

    /// The last lines the server wrote (for diagnosing a failure).
    pub fn recent_output(&self) -> String {
        tail(&self.log)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// `program args…` as the user that runs the server: through `setpriv` when we are root.
    fn as_server_user(&self, program: &Path, args: &[&std::ffi::OsStr]) -> (PathBuf, Vec<String>) {
        let mut all: Vec<String> = Vec::new();
        let run = match &self.run_as {
            Some(user) => {
                all.extend([
                    format!("--reuid={}", user.uid),
                    format!("--regid={}", user.gid),
                    "--clear-groups".into(),
                    "--".into(),
                    program.display().to_string(),
                ]);
                user.setpriv.clone()
            }
            None => program.to_owned(),
        };
        all.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
        (run, all)
    }

    /// Runs a server tool to its end.
    fn run_tool(&self, program: &Path, args: &[&std::ffi::OsStr]) {
        let (run, args) = self.as_server_user(program, args);
        let output = Command::new(&run)
            .args(&args)
            .current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", run.display()));
        let name = program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        assert_ok(&name, &output);
    }

    /// Starts `postgres` on `self.port` and waits until `pg_isready` says it accepts
    /// connections; on failure, the server's output.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let data = self.data_dir();
        let sock = self.dir.path().join("sock");
        let port = self.port.to_string();
        let args: [&std::ffi::OsStr; 12] = [
            "-D".as_ref(),
            data.as_os_str(),
            "-p".as_ref(),
            port.as_ref(),
            "-k".as_ref(),
            sock.as_os_str(),
            "-c".as_ref(),
            "listen_addresses=127.0.0.1".as_ref(),
            "-c".as_ref(),
            "shared_buffers=16MB".as_ref(),
            "-c".as_ref(),
            "max_connections=100".as_ref(),
        ];
        let (run, args) = self.as_server_user(&self.tool("postgres"), &args);
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut child = ChildGuard::spawn("postgres", &run, &args);
        for pipe in [
            child
                .child_mut()
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .child_mut()
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            spawn_drain(pipe, Arc::clone(&self.log));
        }
        let pg_isready = self.tool("pg_isready");
        loop {
            let ready = Command::new(&pg_isready)
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    SUPERUSER,
                    "-t",
                    "2",
                ])
                .status()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", pg_isready.display()));
            if ready.success() {
                self.child = Some(child);
                return Ok(());
            }
            if matches!(child.child_mut().try_wait(), Ok(Some(_))) {
                // Let the drain threads catch the last lines.
                std::thread::sleep(POLL_INTERVAL);
                return Err(tail(&self.log));
            }
            if started.elapsed() > HANG_GUARD {
                child.kill();
                return Err(format!(
                    "not accepting connections after {HANG_GUARD:?}\n{}",
                    tail(&self.log)
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.frozen && self.child.is_some() {
            self.signal_server("-CONT");
            self.frozen = false;
        }
        if let Some(mut child) = self.child.take() {
            // An immediate stop lets the server remove its shared memory; the guard then kills
            // whatever is left of the process group.
            let pg_ctl = self.tool("pg_ctl");
            let data = self.data_dir();
            let (run, args) = self.as_server_user(
                &pg_ctl,
                &[
                    "stop".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "10".as_ref(),
                ],
            );
            let _ = Command::new(run)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            child.kill();
        }
    }
}

/// The folder of the PostgreSQL server binaries.
///
/// # Panics
/// When none holds `initdb`, `postgres`, `pg_ctl`, `pg_isready` and `createdb`.
pub fn bindir() -> PathBuf {
    let has_all = |dir: &Path| {
        ["initdb", "postgres", "pg_ctl", "pg_isready", "createdb"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    let mut looked = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_all(&dir) {
            return dir;
        }
        looked.push(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    for (_, dir) in versions.into_iter().rev() {
        if has_all(&dir) {
            return dir;
        }
        looked.push(dir);
    }
    panic!(
        "the PostgreSQL server binaries (initdb, postgres, pg_ctl, pg_isready, createdb) are not \
         installed (looked in `pg_config --bindir` and /usr/lib/postgresql/*/bin: {looked:?}); \
         run scripts/install-tools.sh, which installs Debian's `postgresql` package"
    );
}

/// As root, the user to run the server tools as (PostgreSQL refuses root); `None` otherwise.
fn run_as() -> Option<RunAs> {
    if id(&["-u"]) != 0 {
        return None;
    }
    let user = ["postgres", "nobody"]
        .into_iter()
        .find(|user| {
            Command::new("id")
                .args(["-u", user])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as");
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("running as root, PostgreSQL is started as another user with setpriv (util-linux), which is missing");
    Some(RunAs {
        uid: id(&["-u", user]),
        gid: id(&["-g", user]),
        user: user.to_owned(),
        setpriv,
    })
}

/// `id ARGS` as a number.
fn id(args: &[&str]) -> u32 {
    let out = Command::new("id")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id`: {e}"));
    assert_ok("id", &out);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("`id {}` printed no number: {e}", args.join(" ")))
}

/// The processes whose parent is `parent` (from `/proc/*/stat`).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a pipe to its end, keeping the last lines.
fn spawn_drain(pipe: Box<dyn Read + Send>, log: LogTail) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() == LOG_TAIL {
                log.pop_front();
            }
            log.push_back(line);
        }
    });
}

fn tail(log: &LogTail) -> String {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.iter().cloned().collect::<Vec<_>>().join("\n")
}
