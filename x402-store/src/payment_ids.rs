//! Opening a seller's `payment-identifier` store from the same addresses as the settlement store.

use std::sync::Arc;

use x402_core::StoreOptions;
use x402_core::extension::idempotency::{IdempotencyStore, MemoryIdempotency};

use crate::OpenError;
use crate::redact::redact_url;

/// Opens the store a seller keeps `payment-identifier` entries in (see `x402_seller`'s
/// `Seller::with_payment_id_store`), at an address [`crate::open`] takes:
///
/// | address | store |
/// | --- | --- |
/// | `memory` | this process's memory (bounded: 10 000 entries, 64 MiB of responses) |
/// | `sqlite:<path>`, `file:<path>` | table `x402_payment_ids` of the file (one process per file) |
/// | `postgres://…`, `postgresql://…` | table `x402_payment_ids`, shared by every replica |
///
/// # Errors
/// As [`crate::open`]: an unknown scheme, a backend not compiled in, or its failure to open.
pub async fn open_payment_ids(
    url: &str,
    options: StoreOptions,
) -> Result<Arc<dyn IdempotencyStore>, OpenError> {
    let url = url.trim();
    // Only the compiled-in backends take options.
    let _ = &options;
    if url == "memory" {
        return Ok(Arc::new(MemoryIdempotency::default()));
    }
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" | "file" => {
            let path = crate::open::sqlite_path(url).ok_or_else(|| OpenError::Sqlite {
                path: std::path::PathBuf::new(),
                reason: format!("`{}` names no file", redact_url(url)),
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
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            Ok(Arc::new(crate::PostgresStore::connect(url, options).await?))
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" | "file" => Err(OpenError::NotCompiled {
            url: redact_url(url),
            feature: "sqlite",
        }),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(OpenError::NotCompiled {
            url: redact_url(url),
            feature: "postgres",
        }),
        _ => Err(OpenError::UnknownScheme(redact_url(url))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_open_their_store() {
        assert!(
            open_payment_ids("memory", StoreOptions::default())
                .await
                .is_ok()
        );
        let Err(e) = open_payment_ids("redis://u:SECRET@h/0", StoreOptions::default()).await else {
            panic!("an unknown scheme is refused")
        };
        assert!(!e.to_string().contains("SECRET"), "{e}");
        #[cfg(feature = "sqlite")]
        {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("ids.db").display());
            let store = open_payment_ids(&url, StoreOptions::default())
                .await
                .unwrap();
            assert_eq!(
                store
                    .claim("k", "f", std::time::Duration::from_secs(60))
                    .await
                    .unwrap(),
                x402_core::extension::idempotency::Claim::Claimed
            );
        }
    }
}
