//! One configured endpoint and its chain id check.
//!
//! An endpoint is used only once its `eth_chainId` answer matched the expected chain. The check
//! is made before its first use, again whenever requests switch to it (failover, or back to the
//! first endpoint), and again after it failed in transport (a reconnect). An endpoint serving
//! another chain is taken out of rotation for [`WRONG_CHAIN_RECHECK`] (logged with its index,
//! never its URL), then checked again.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::U64;
use alloy::rpc::json_rpc::ResponsePayload;
use alloy::transports::http::reqwest::{Client, Url};
use tracing::{error, warn};

use super::attempt::{AttemptError, attempt};

/// How long an endpoint found serving another chain stays out of rotation before it is checked
/// again.
pub const WRONG_CHAIN_RECHECK: Duration = Duration::from_secs(60);

/// How long an endpoint found not to answer JSON-RPC batches is asked in single requests before
/// batches are tried on it again (see [`super::fresh`]).
pub const BATCH_RECHECK: Duration = Duration::from_secs(600);

const UNCHECKED: u8 = 0;
const CHECKED: u8 = 1;
const WRONG: u8 = 2;

/// The chain id request a check sends.
const CHAIN_ID_REQUEST: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}"#;

/// A configured endpoint.
pub(super) struct Endpoint {
    pub(super) url: Url,
    state: AtomicU8,
    /// The chain id it reported when found on the wrong chain.
    served: AtomicU64,
    /// Until when (milliseconds since the transport's epoch) a wrong-chain endpoint is skipped.
    excluded_until_ms: AtomicU64,
    /// Until when (milliseconds since the transport's epoch) it is not sent batches.
    no_batches_until_ms: AtomicU64,
}

impl Endpoint {
    pub(super) fn new(url: Url) -> Self {
        Self {
            url,
            state: AtomicU8::new(UNCHECKED),
            served: AtomicU64::new(0),
            excluded_until_ms: AtomicU64::new(0),
            no_batches_until_ms: AtomicU64::new(0),
        }
    }

    /// Whether it may be sent a JSON-RPC batch now.
    pub(super) fn batches(&self, now_ms: u64) -> bool {
        now_ms >= self.no_batches_until_ms.load(Ordering::Relaxed)
    }

    /// Records that it did not answer a batch: single requests only for [`BATCH_RECHECK`].
    pub(super) fn no_batches(&self, index: usize, now_ms: u64) {
        let until = now_ms.saturating_add(BATCH_RECHECK.as_millis() as u64);
        if self.no_batches_until_ms.swap(until, Ordering::Relaxed) <= now_ms {
            warn!(
                endpoint = index,
                "RPC endpoint does not answer JSON-RPC batches; asking it in single requests"
            );
        }
    }

    /// Forgets the last check: the next use checks the chain id again.
    pub(super) fn uncheck(&self) {
        let _ =
            self.state
                .compare_exchange(CHECKED, UNCHECKED, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether requests may go to this endpoint now; checks its chain id when `recheck` is set,
    /// when it was never checked, and when its exclusion has run out. `expected` holds the chain
    /// id (0 = not known yet: the first endpoint checked sets it).
    pub(super) async fn usable(
        &self,
        index: usize,
        client: &Client,
        expected: &AtomicU64,
        now_ms: u64,
        recheck: bool,
    ) -> Result<(), AttemptError> {
        match self.state.load(Ordering::Relaxed) {
            CHECKED if !recheck => return Ok(()),
            WRONG if now_ms < self.excluded_until_ms.load(Ordering::Relaxed) => {
                return Err(AttemptError::WrongChain {
                    served: self.served.load(Ordering::Relaxed),
                });
            }
            _ => {}
        }
        let served = self.chain_id(client).await?;
        let wanted = match expected.compare_exchange(0, served, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => served,
            Err(known) => known,
        };
        if served == wanted {
            self.state.store(CHECKED, Ordering::Relaxed);
            return Ok(());
        }
        self.served.store(served, Ordering::Relaxed);
        self.excluded_until_ms.store(
            now_ms.saturating_add(WRONG_CHAIN_RECHECK.as_millis() as u64),
            Ordering::Relaxed,
        );
        if self.state.swap(WRONG, Ordering::Relaxed) != WRONG {
            error!(
                endpoint = index,
                expected = wanted,
                served,
                "RPC endpoint serves another chain; taken out of rotation"
            );
        }
        Err(AttemptError::WrongChain { served })
    }

    /// Asks the endpoint for its chain id.
    async fn chain_id(&self, client: &Client) -> Result<u64, AttemptError> {
        let packet = match attempt(client, &self.url, CHAIN_ID_REQUEST).await {
            Ok(packet) => packet,
            Err(limited @ AttemptError::RateLimited { .. }) => return Err(limited),
            Err(AttemptError::Transport(failure)) => {
                return Err(AttemptError::ChainUnchecked(Some(failure)));
            }
            Err(_) => return Err(AttemptError::ChainUnchecked(None)),
        };
        match packet.single_payload() {
            Some(ResponsePayload::Success(raw)) => serde_json::from_str::<U64>(raw.get())
                .map(|id| id.to::<u64>())
                .map_err(|_| AttemptError::ChainUnchecked(None)),
            _ => Err(AttemptError::ChainUnchecked(None)),
        }
    }
}
