//! One process per SQLite store: an exclusive advisory lock on a sibling lock file, held for the
//! store's lifetime (`flock`, so a second open — by another process or the same one — fails, and
//! the kernel drops the lock when the holder dies however it dies).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::OpenError;

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file beside `db`: `<db>.lock`.
    pub(crate) fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `db` without waiting, and writes this process's id into the lock file
    /// (for the message a second process shows).
    pub(crate) fn acquire(db: &Path) -> Result<Self, OpenError> {
        let path = Self::path_for(db);
        let failed = |e: std::io::Error| OpenError::Sqlite {
            path: db.to_owned(),
            reason: format!("lock file {}: {e}", path.display()),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(OpenError::Locked {
                    path: db.to_owned(),
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" ({holder})")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        file.set_len(0).map_err(failed)?;
        file.rewind().map_err(failed)?;
        writeln!(file, "pid {}", std::process::id()).map_err(failed)?;
        Ok(Self { _file: file, path })
    }

    /// Where the lock file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
