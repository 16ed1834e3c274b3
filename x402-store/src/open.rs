//! [`open`]: a settlement store from its address.

use std::path::PathBuf;
use std::sync::Arc;

use x402_core::{MemoryStore, SettlementStore, StoreOptions};

use crate::redact::redact_url;

/// Why a store could not be opened. Every text names the store by its redacted address
/// ([`redact_url`]): no password or query ever appears.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The address names no store this crate knows.
    #[error(
        "unknown settlement store `{0}`: expected `memory`, `sqlite:<path>`, `file:<path>` or `postgres://…`"
    )]
    UnknownScheme(String),
    /// The address names a backend this build was compiled without.
    #[error(
        "settlement store `{url}` needs the `{feature}` feature of x402-store, which this build lacks"
    )]
    NotCompiled {
        /// The redacted address.
        url: String,
        /// The Cargo feature that compiles the backend in.
        feature: &'static str,
    },
    /// Another process (or another store in this one) holds the SQLite file.
    #[error(
        "the SQLite settlement store {} is in use by another process{holder}: one facilitator process per file (several replicas need PostgreSQL)",
        path.display()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// Who holds it, as its lock file says (`" (pid 1234)"`), or empty.
        holder: String,
    },
    /// The SQLite file could not be opened, configured or migrated.
    #[error("cannot open the SQLite settlement store {}: {reason}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The PostgreSQL database could not be reached or migrated.
    #[error("cannot open the PostgreSQL settlement store {url}: {reason}")]
    Postgres {
        /// The redacted address.
        url: String,
        /// What failed (free of credentials).
        reason: String,
    },
}

/// Opens the settlement store at `url`:
///
/// | address | store |
/// | --- | --- |
/// | `memory` | [`MemoryStore`]: nothing survives the process |
/// | `sqlite:<path>`, `file:<path>` (also `sqlite:///abs/path`) | [`SqliteStore`](crate::SqliteStore), feature `sqlite`; parent folders are created |
/// | `postgres://…`, `postgresql://…` | [`PostgresStore`](crate::PostgresStore), feature `postgres` |
///
/// # Errors
/// An unknown scheme, a backend not compiled in (naming its feature), or the backend's own
/// failure to open; see [`OpenError`]. No error text carries the address's password or query.
pub async fn open(url: &str, options: StoreOptions) -> Result<Arc<dyn SettlementStore>, OpenError> {
    let url = url.trim();
    if url == "memory" {
        return Ok(Arc::new(MemoryStore::with_options(
            options,
            x402_core::system_clock(),
        )));
    }
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "sqlite" | "file" => open_sqlite(url, options).await,
        "postgres" | "postgresql" => open_postgres(url, options).await,
        _ => Err(OpenError::UnknownScheme(redact_url(url))),
    }
}

/// The file of a `sqlite:` or `file:` address: what follows the scheme, less a leading `//`
/// (`sqlite:///srv/s.db` is `/srv/s.db`, `sqlite:data/s.db` is relative). `None` when it names
/// no file, or carries a query or fragment (SQLite URI parameters are not taken: the store sets
/// its own mode).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let (_, rest) = url.split_once(':')?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    (!path.is_empty() && !path.contains(['?', '#'])).then(|| PathBuf::from(path))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn SettlementStore>, OpenError> {
    let path = sqlite_path(url).ok_or_else(|| OpenError::Sqlite {
        path: PathBuf::new(),
        reason: format!(
            "`{}` names no file (write `sqlite:<path>`, without a query)",
            redact_url(url)
        ),
    })?;
    let store = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::SqliteStore::open(path, options)
    })
    .await
    .map_err(|e| OpenError::Sqlite {
        path,
        reason: format!("the opening task failed: {e}"),
    })??;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(
    url: &str,
    _options: StoreOptions,
) -> Result<Arc<dyn SettlementStore>, OpenError> {
    let _ = sqlite_path;
    Err(OpenError::NotCompiled {
        url: redact_url(url),
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn SettlementStore>, OpenError> {
    Ok(Arc::new(crate::PostgresStore::connect(url, options).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    url: &str,
    _options: StoreOptions,
) -> Result<Arc<dyn SettlementStore>, OpenError> {
    Err(OpenError::NotCompiled {
        url: redact_url(url),
        feature: "postgres",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_addresses_name_their_file() {
        assert_eq!(sqlite_path("sqlite:data/s.db"), Some("data/s.db".into()));
        assert_eq!(sqlite_path("sqlite:///srv/s.db"), Some("/srv/s.db".into()));
        assert_eq!(sqlite_path("file:/srv/s.db"), Some("/srv/s.db".into()));
        assert_eq!(sqlite_path("sqlite:"), None);
        assert_eq!(sqlite_path("sqlite:s.db?mode=ro"), None);
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_echoing_secrets() {
        for url in ["redis://u:SECRET@h/0", "host=db password=SECRET", "SECRET"] {
            let e = open(url, StoreOptions::default()).await.unwrap_err();
            assert!(matches!(e, OpenError::UnknownScheme(_)), "{e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
            assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        }
    }

    #[tokio::test]
    async fn memory_opened_by_address_passes_the_conformance_suite() {
        let quick = StoreOptions {
            abandon_after: std::time::Duration::from_millis(300),
            ..StoreOptions::default()
        };
        let default_store = open("memory", StoreOptions::default()).await.unwrap();
        let quick_store = open("memory", quick).await.unwrap();
        assert_eq!(default_store.kind(), "memory");
        x402_core::settlement::conformance::run(|options| {
            if options == quick {
                Arc::clone(&quick_store)
            } else {
                Arc::clone(&default_store)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_backend_left_out_names_its_feature() {
        // Both are compiled in here; the message shape is what a slim build shows.
        let e = OpenError::NotCompiled {
            url: redact_url("postgres://u:SECRET@db/x402"),
            feature: "postgres",
        };
        assert_eq!(
            e.to_string(),
            "settlement store `postgres://u:***@db/x402` needs the `postgres` feature of x402-store, which this build lacks"
        );
    }
}
