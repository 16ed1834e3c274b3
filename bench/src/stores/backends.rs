//! Where the durable stores keep their data during the comparison: a temporary folder for the
//! SQLite files and a throw-away PostgreSQL server, whose postmaster is found in `/proc` so its
//! CPU can be counted.

use std::fmt::Write as _;
use std::path::Path;

use x402_tests::postgres::PgServer;

use super::StoreKind;
use crate::scenarios::progress;

/// Where the durable stores keep their data during the comparison; dropping it stops
/// PostgreSQL and deletes everything.
#[derive(Debug)]
pub(super) struct Backends {
    /// The server and its postmaster's pid.
    pg: Option<(PgServer, Option<u32>)>,
    dir: tempfile::TempDir,
}

impl Backends {
    /// A temporary folder, and PostgreSQL when `kinds` names it (`Err`: it did not start).
    pub(super) async fn start(kinds: &[StoreKind]) -> Result<(Self, Result<(), String>), String> {
        let dir = tempfile::Builder::new()
            .prefix("x402-bench-stores-")
            .tempdir()
            .map_err(|e| format!("a temporary folder for the stores: {e}"))?;
        let mut backends = Self { pg: None, dir };
        if !kinds.contains(&StoreKind::Postgres) {
            return Ok((backends, Ok(())));
        }
        progress("starting a throw-away PostgreSQL server");
        let started = match tokio::task::spawn_blocking(PgServer::start).await {
            Ok(server) => {
                let pid = postmaster_pid(server.port());
                backends.pg = Some((server, pid));
                Ok(())
            }
            Err(e) if e.is_panic() => Err(panic_text(e.into_panic().as_ref())),
            Err(e) => Err(e.to_string()),
        };
        Ok((backends, started))
    }

    /// A fresh store of `kind` for `round`: a new SQLite file, a new PostgreSQL database.
    pub(super) fn url(&self, kind: StoreKind, round: usize) -> Result<String, String> {
        match kind {
            StoreKind::Memory => Ok("memory".into()),
            StoreKind::Sqlite => {
                let file = self.dir.path().join(format!("round-{round}.sqlite3"));
                Ok(format!("sqlite:{}", file.display()))
            }
            StoreKind::Postgres => {
                let (server, _) = self.pg.as_ref().ok_or("PostgreSQL is not running")?;
                let name = format!("bench_round_{round}");
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.create_database(&name)
                }))
                .map_err(|p| panic_text(p.as_ref()))
            }
        }
    }

    /// The process whose CPU (with its descendants) a step of `kind` counts as the store's.
    pub(super) fn server_pid(&self, kind: StoreKind) -> Option<u32> {
        match kind {
            StoreKind::Postgres => self.pg.as_ref().and_then(|(_, pid)| *pid),
            StoreKind::Memory | StoreKind::Sqlite => None,
        }
    }

    /// Where the data lives and which PostgreSQL runs, for the report.
    pub(super) fn describe(&self) -> String {
        let mut text = format!(
            "SQLite files and PostgreSQL data under {} ({})",
            self.dir.path().display(),
            filesystem(self.dir.path())
        );
        if self.pg.is_some() {
            let version =
                std::process::Command::new(x402_tests::postgres::bindir().join("postgres"))
                    .arg("--version")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                    .unwrap_or_default();
            let _ = write!(
                text,
                "; {version}, a throw-away cluster on the same cores (fsync on, \
                 shared_buffers 16MB, the store's pool of 16 connections)"
            );
        }
        text
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

/// The postmaster listening on `port`: the `postgres` process started with `-p PORT`.
fn postmaster_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            if comm.trim() != "postgres" {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == b"-p" && w[1] == port.as_bytes())
                .then_some(pid)
        })
}

/// The file system `path` lives on (`ext4 on /dev/vda`), from `/proc/self/mounts`.
fn filesystem(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (device, point, kind) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then_some((point.len(), device, kind))
        })
        .max_by_key(|(len, _, _)| *len)
        .map_or_else(
            || "file system unknown".into(),
            |(_, device, kind)| format!("{kind} on {device}"),
        )
}
