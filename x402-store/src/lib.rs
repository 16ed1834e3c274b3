#![doc = include_str!("../README.md")]

mod open;
mod payment_ids;
mod redact;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod row;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use open::{OpenError, open};
pub use payment_ids::open_payment_ids;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresSettings, PostgresStore};
pub use redact::redact_url;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
