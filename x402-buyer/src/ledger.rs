//! The ledger of every payment a [`Buyer`](crate::Buyer) signed: an append-only store, a JSON
//! lines file by default ([`JsonlLedger`]), that the rolling budgets and the per-origin rate
//! limit are rebuilt from when a buyer starts (and kept up to date from, when other buyers write
//! to it too: [`Ledger::news`]), and that `x402 history` prints.
//!
//! A payment is appended **after it is signed and before it is sent**: nothing leaves the
//! process that is not in the ledger. When the seller reports a settlement, a second record
//! with its transaction follows (records are never rewritten).

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use x402_core::{Amount, UnixTime};

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed (a file that cannot be opened, read, written or synced).
    #[error("ledger {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A complete record cannot be read: the ledger was edited or damaged. Budgets cannot be
    /// counted from it, so no payment is made until it is repaired.
    #[error(
        "ledger {path}: line {line} is not a ledger record ({message}); repair or move the file"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A store other than a file failed.
    #[error("ledger: {0}")]
    Other(String),
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Record {
    /// A payment was signed (and is about to be sent).
    Payment(PaymentRecord),
    /// The seller reported the settlement of an earlier payment.
    Settlement(SettlementRecord),
}

/// A signed payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    /// This payment's id (unique within the ledger; settlement records refer to it).
    pub id: String,
    /// When it was signed (UTC, RFC 3339 in the file).
    #[serde(with = "rfc3339")]
    pub time: UnixTime,
    /// The URL paid for.
    pub url: String,
    /// The URL's origin (`scheme://host[:port]`), which the rate limit counts by.
    pub origin: String,
    /// The network (CAIP-2).
    pub network: String,
    /// The token address or mint.
    pub asset: String,
    /// The amount authorized, in the asset's atomic units.
    pub amount: Amount,
    /// The asset's decimals (from the buyer's known assets).
    pub decimals: u8,
    /// The asset's display symbol.
    pub symbol: String,
    /// The recipient.
    pub pay_to: String,
    /// The scheme (`exact`, `upto`).
    pub scheme: String,
    /// The x402 version of the payment.
    pub x402_version: u8,
    /// The payer, when the signed payload names it (EVM `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// A settlement the seller reported for an earlier payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementRecord {
    /// The payment's id.
    pub id: String,
    /// When it was reported (UTC, RFC 3339 in the file).
    #[serde(with = "rfc3339")]
    pub time: UnixTime,
    /// Whether the seller reported success.
    pub success: bool,
    /// The transaction, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The payer the settlement names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The failure reason, when it failed (or is still pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the ledger is kept. Implement it to keep the ledger elsewhere than in a file (a
/// database, say); [`JsonlLedger`] is the default.
///
/// Both methods block (file or network I/O): the buyer calls them on tokio's blocking pool.
pub trait Ledger: Send + Sync + Debug {
    /// Every record, oldest first. A buyer reads them once, when it is given the ledger, to
    /// count the payments still inside its windows.
    fn records(&self) -> Result<Vec<Record>, LedgerError>;

    /// Appends `record` durably: when this returns `Ok` the record survives a crash.
    fn append(&self, record: &Record) -> Result<(), LedgerError>;

    /// The records other writers (other processes, other handles) appended since this handle
    /// last read or wrote, oldest first; never this handle's own. A buyer asks before each
    /// choice, so buyers sharing a store count each other's payments. The default, for a store
    /// only one buyer writes, is none.
    fn news(&self) -> Result<Vec<Record>, LedgerError> {
        Ok(Vec::new())
    }
}

/// The ledger as a JSON lines file: one [`Record`] per line, appended and `fsync`ed, never
/// rewritten.
///
/// Reading skips a trailing line without its newline (a write cut short by a crash: that payment
/// was never sent, because a payment is sent only once its line is stored) and refuses any other
/// line it cannot read ([`LedgerError::Corrupt`]). The next append removes such a cut-short
/// tail first, so the file stays readable. Appends take an exclusive lock on the file, so
/// processes sharing it never interleave their lines, and [`Ledger::news`] returns what the
/// others appended (a buyer counts another process's payments from its next choice on; two
/// processes signing in the same instant can still both pass a budget only one fits — one
/// process never does).
#[derive(Debug)]
pub struct JsonlLedger {
    path: PathBuf,
    file: Mutex<Handle>,
}

/// The open file and how far this handle has read it.
#[derive(Debug)]
struct Handle {
    file: File,
    /// The bytes read or written by this handle (complete lines only).
    offset: u64,
    /// The lines before `offset`.
    lines: usize,
    /// Other writers' records met while appending, not yet returned by `news`.
    unseen: Vec<Record>,
}

impl JsonlLedger {
    /// Opens (or creates, with its directory) the ledger file at `path`; a new file is readable
    /// by its owner only (Unix).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_owned();
        let io = |source| LedgerError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        // A spending history is nobody else's business: a new file is the user's alone.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(io)?;
        Ok(Self {
            path,
            file: Mutex::new(Handle {
                file,
                offset: 0,
                lines: 0,
                unseen: Vec::new(),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

/// Parses a ledger file's text: complete lines only (a trailing line without its newline is
/// skipped); blank lines are ignored.
pub fn parse_records(text: &str, path: &str) -> Result<Vec<Record>, LedgerError> {
    parse_lines(text.as_bytes(), path, 0).map(|(records, _, _)| records)
}

/// Parses the complete lines of `bytes`, the first being line `before + 1`: the records, the
/// bytes and the lines consumed.
fn parse_lines(
    bytes: &[u8],
    path: &str,
    before: usize,
) -> Result<(Vec<Record>, usize, usize), LedgerError> {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[],
    };
    if complete.len() < bytes.len() {
        tracing::warn!(
            ledger = path,
            "ignoring a trailing partial line (a write cut short)"
        );
    }
    let count = complete.iter().filter(|b| **b == b'\n').count();
    let mut records = Vec::new();
    for (i, line) in complete.split(|b| *b == b'\n').take(count).enumerate() {
        let corrupt = |message: String| LedgerError::Corrupt {
            path: path.to_owned(),
            line: before + i + 1,
            message,
        };
        let line = std::str::from_utf8(line).map_err(|_| corrupt("not UTF-8".to_owned()))?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?);
    }
    Ok((records, complete.len(), count))
}

impl Handle {
    /// Reads the complete lines after `offset` (the caller holds a file lock).
    fn read_on(&mut self, path: &str) -> Result<Vec<Record>, ReadError> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(ReadError::Io)?;
        let (records, consumed, lines) =
            parse_lines(&bytes, path, self.lines).map_err(ReadError::Ledger)?;
        self.offset += consumed as u64;
        self.lines += lines;
        Ok(records)
    }
}

enum ReadError {
    Io(std::io::Error),
    Ledger(LedgerError),
}

impl JsonlLedger {
    /// Runs `f` on the handle under a file lock (shared or exclusive), released after.
    fn locked<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut Handle) -> Result<T, ReadError>,
    ) -> Result<T, LedgerError> {
        let mut handle = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let locked = if exclusive {
            handle.file.lock()
        } else {
            handle.file.lock_shared()
        };
        locked.map_err(|e| self.io(e))?;
        let result = f(&mut handle);
        let unlocked = handle.file.unlock();
        let value = result.map_err(|e| match e {
            ReadError::Io(e) => self.io(e),
            ReadError::Ledger(e) => e,
        })?;
        unlocked.map_err(|e| self.io(e))?;
        Ok(value)
    }
}

impl Ledger for JsonlLedger {
    fn records(&self) -> Result<Vec<Record>, LedgerError> {
        let path = self.path.display().to_string();
        // Shared: no other process is halfway through a line meanwhile.
        self.locked(false, |handle| {
            handle.offset = 0;
            handle.lines = 0;
            handle.unseen.clear();
            handle.read_on(&path)
        })
    }

    fn append(&self, record: &Record) -> Result<(), LedgerError> {
        let mut line =
            serde_json::to_string(record).map_err(|e| LedgerError::Other(e.to_string()))?;
        line.push('\n');
        let path = self.path.display().to_string();
        self.locked(true, |handle| {
            drop_partial_tail(&mut handle.file).map_err(ReadError::Io)?;
            // What the others appended since this handle last looked is theirs: kept for
            // `news`, and skipped over.
            let theirs = handle.read_on(&path)?;
            handle.unseen.extend(theirs);
            // One write: the line is never interleaved with another writer's.
            handle
                .file
                .write_all(line.as_bytes())
                .and_then(|()| handle.file.sync_data())
                .map_err(ReadError::Io)?;
            handle.offset += line.len() as u64;
            handle.lines += 1;
            Ok(())
        })
    }

    fn news(&self) -> Result<Vec<Record>, LedgerError> {
        let path = self.path.display().to_string();
        self.locked(false, |handle| {
            let mut news = std::mem::take(&mut handle.unseen);
            news.extend(handle.read_on(&path)?);
            Ok(news)
        })
    }
}

/// Removes a last line that has no newline (the remains of a write cut short by a crash, whose
/// payment was never sent), so the next record starts on a line of its own.
fn drop_partial_tail(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut end = len;
    let mut buf = [0u8; 4096];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(pos) = chunk.iter().rposition(|b| *b == b'\n') {
            tracing::warn!("dropping a partial last ledger line before appending");
            return file.set_len(start + pos as u64 + 1);
        }
        if start == 0 {
            tracing::warn!("dropping a partial last ledger line before appending");
            return file.set_len(0);
        }
        end = start;
    }
}

/// `UnixTime` as RFC 3339 UTC (`2026-12-04T04:21:46Z`).
pub(crate) mod rfc3339 {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use x402_core::UnixTime;

    pub(crate) fn serialize<S: Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format_args!("time {s:?} is not YYYY-MM-DDTHH:MM:SSZ"))
        })
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    /// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
    pub(crate) fn format(t: UnixTime) -> String {
        let secs = i64::try_from(t.0).unwrap_or(i64::MAX);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds are ignored) or a date alone
    /// (`YYYY-MM-DD`, midnight UTC).
    pub(crate) fn parse(s: &str) -> Option<UnixTime> {
        let num = |t: &str| -> Option<i64> {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let (date, time) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut parts = date.split('-');
        let (y, m, d) = (
            num(parts.next()?)?,
            num(parts.next()?)?,
            num(parts.next()?)?,
        );
        if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let mut secs = days_from_civil(y, m, d) * 86_400;
        if let Some(time) = time {
            let time = time.strip_suffix('Z')?;
            let time = time.split_once('.').map_or(time, |(t, _)| t);
            let mut hms = time.split(':');
            let (h, mi, se) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
            if hms.next().is_some() || h > 23 || mi > 59 || se > 60 {
                return None;
            }
            secs += h * 3600 + mi * 60 + se;
        }
        u64::try_from(secs).ok().map(UnixTime)
    }
}

#[cfg(test)]
mod tests;
