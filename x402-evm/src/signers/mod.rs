//! The signer pool: N local keys on one chain, each with its own nonce sequence.
//!
//! - Nonces are read once per signer (`eth_getTransactionCount(addr, "pending")`) when the pool
//!   starts, then counted locally; the node is asked again only after a nonce conflict.
//! - Each signer serializes assign nonce → sign → `eth_sendRawTransaction`, so its nonces are
//!   contiguous; receipt waiting ([`SignerPool::wait`]) happens outside that section.
//! - A send the node refuses (or that never reached it) gives its nonce back; a nonce conflict
//!   triggers a resync and one retry; a send whose outcome is unknown keeps its nonce and returns
//!   [`SendError::Ambiguous`] with the locally computed hash (see [`nonce`] for reconciliation).
//! - Without `from`, the least busy healthy signer is chosen (round-robin among equals); a
//!   signer the node finds short of funds is skipped for a while and the next one is tried.
//! - Fees: EIP-1559 within the configured caps, or the legacy gas price on chains without a base
//!   fee, observed at most once per [`TxConfig::fee_cache_ttl`].
//!
//! Private keys never appear in `Debug` output, logs or errors.

mod fees;
mod nonce;
mod replace;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use tracing::warn;

use self::fees::{FeeCaps, FeeOracle};
use self::nonce::{Ctx, Slot, SlotState};
pub use self::replace::{MIN_BUMP_PERCENT, Rebroadcast, Replacement, bumped};
use crate::blocks::Blocks;
use crate::error::{PoolError, SendError, describe_rpc_error};
use crate::receipt::ReceiptOutcome;

/// Limits and timings of the pool's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxConfig {
    /// Requests with a larger gas limit are refused before signing.
    pub gas_limit_cap: u64,
    /// Highest `maxFeePerGas` (or legacy gas price) ever signed, in wei.
    pub max_fee_per_gas_cap: u128,
    /// Highest `maxPriorityFeePerGas` ever signed, in wei.
    pub max_priority_fee_cap: u128,
    /// How long [`SignerPool::wait`] waits for a receipt at most (a settle's answer deadline
    /// may end the wait earlier).
    pub receipt_timeout: Duration,
    /// The longest interval between two reads of the chain's head while settlements wait (the
    /// block watcher polls every block time ÷ 4, never less often than this; see
    /// [`crate::blocks`]).
    pub poll_interval: Duration,
    /// Blocks (the transaction's own included) a receipt needs before it counts.
    pub confirmations: u64,
    /// How long an observed fee market is reused.
    pub fee_cache_ttl: Duration,
    /// How long a signer the node found short of funds is skipped by automatic selection.
    pub low_funds_backoff: Duration,
    /// Blocks after which a settlement transaction still not mined is replaced with higher fees
    /// (see [`SignerPool::replace`]).
    pub stuck_after_blocks: u64,
}

impl Default for TxConfig {
    fn default() -> Self {
        Self {
            gas_limit_cap: 1_000_000,
            max_fee_per_gas_cap: 200_000_000_000,
            max_priority_fee_cap: 5_000_000_000,
            receipt_timeout: x402_core::SettleTimeouts::DEFAULT_ANSWER_WITHIN,
            poll_interval: Duration::from_millis(250),
            confirmations: 1,
            fee_cache_ttl: Duration::from_secs(1),
            low_funds_backoff: Duration::from_secs(30),
            stuck_after_blocks: 3,
        }
    }
}

/// A contract call (or a plain transfer of ether) to sign and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRequest {
    /// The contract (or account) called.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
    /// The gas limit (at most [`TxConfig::gas_limit_cap`]).
    pub gas_limit: u64,
    /// Send from this signer (required by `upto`, which must use the witness facilitator);
    /// `None` lets the pool choose.
    pub from: Option<Address>,
    /// The ether sent with it, wei (zero for every settlement; the gas funding of an
    /// `erc20ApprovalGasSponsoring` payer sends some).
    pub value: U256,
}

/// A transaction the node accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its hash (computed from the signed bytes).
    pub hash: TxHash,
    /// The signer.
    pub from: Address,
    /// Its nonce.
    pub nonce: u64,
}

/// A signed transaction about to be broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Its hash.
    pub hash: TxHash,
    /// The signer.
    pub from: Address,
    /// Its nonce.
    pub nonce: u64,
    /// The EIP-2718 bytes, as they will be sent.
    pub raw: Bytes,
}

/// Records each signed transaction before it is broadcast (the settlement engine's write-ahead).
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    /// Records `tx`; an error means nothing is broadcast ([`SendError::NotRecorded`]).
    async fn record(&self, tx: &Signed) -> Result<(), SendError>;
}

/// How signer keys are leased to one facilitator process at a time (a shared settlement store).
#[derive(Clone, Debug)]
pub struct Leases {
    /// Where leases live.
    pub store: Arc<dyn x402_core::SettlementStore>,
    /// How long a lease lasts; renewed on use once half of it has passed.
    pub ttl: Duration,
}

/// Counters since the pool started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Transactions the node accepted.
    pub sent: u64,
    /// Nonce conflicts reported by the node (each followed by a resync).
    pub nonce_conflicts: u64,
    /// Transactions the node refused (nonce given back).
    pub rejected: u64,
    /// Broadcasts whose outcome was unknown.
    pub ambiguous: u64,
    /// Unconfirmed transactions sent again with the same bytes.
    pub rebroadcasts: u64,
    /// Stuck transactions replaced (same nonce, higher fees).
    pub replacements: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) nonce_conflicts: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) ambiguous: AtomicU64,
    pub(crate) rebroadcasts: AtomicU64,
    pub(crate) replacements: AtomicU64,
}

/// Signers on one chain with a nonce manager; cheap to clone (shared state).
#[derive(Clone)]
pub struct SignerPool {
    inner: Arc<Inner>,
}

struct Inner {
    provider: DynProvider,
    chain_id: u64,
    config: TxConfig,
    slots: Vec<Slot>,
    fees: FeeOracle,
    counters: Counters,
    next_pick: AtomicUsize,
    leases: Option<Leases>,
    blocks: Blocks,
    /// The nonces whose settlements are being watched (see [`crate::watch`]).
    watched: crate::watch::Watched,
}

impl fmt::Debug for SignerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerPool")
            .field("chain_id", &self.inner.chain_id)
            .field("signers", &self.addresses())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Decrements a signer's queue length when a send ends (or is dropped).
struct QueueTicket<'a>(&'a AtomicUsize);

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SignerPool {
    /// Reads the chain id and each signer's `pending` nonce, and builds the pool.
    pub async fn new(
        provider: DynProvider,
        signers: Vec<PrivateKeySigner>,
        config: TxConfig,
    ) -> Result<Self, PoolError> {
        if signers.is_empty() {
            return Err(PoolError::NoSigners);
        }
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| PoolError::Rpc(format!("eth_chainId: {}", describe_rpc_error(&e))))?;
        let mut slots: Vec<Slot> = Vec::with_capacity(signers.len());
        for signer in signers {
            let address = signer.address();
            if slots.iter().any(|s| s.address == address) {
                return Err(PoolError::DuplicateSigner(address));
            }
            let pending = provider
                .get_transaction_count(address)
                .pending()
                .await
                .map_err(|e| {
                    PoolError::Rpc(format!("nonce of {address}: {}", describe_rpc_error(&e)))
                })?;
            slots.push(Slot {
                signer,
                address,
                state: tokio::sync::Mutex::new(SlotState::new(pending)),
                queued: AtomicUsize::new(0),
                low_funds_until: std::sync::Mutex::new(None),
            });
        }
        let fees = FeeOracle::new(config.fee_cache_ttl);
        let block_time = Duration::from_millis(
            crate::window::block_time_ms(chain_id)
                .unwrap_or(crate::window::UNKNOWN_CHAIN_BLOCK_TIME_MS),
        );
        let blocks = Blocks::new(provider.clone(), block_time, config.poll_interval);
        Ok(Self {
            inner: Arc::new(Inner {
                provider,
                chain_id,
                config,
                slots,
                fees,
                counters: Counters::default(),
                next_pick: AtomicUsize::new(0),
                leases: None,
                blocks,
                watched: crate::watch::Watched::default(),
            }),
        })
    }

    /// The fee fields a transaction sent now would carry (the cached market within the
    /// configured caps), so a simulation sees the gas price execution will; none when the market
    /// cannot be read or exceeds the caps (the send itself refuses then).
    pub async fn current_fees(&self) -> crate::chain::CallFees {
        let inner = &*self.inner;
        let caps = FeeCaps {
            max_fee_per_gas: inner.config.max_fee_per_gas_cap,
            max_priority_fee: inner.config.max_priority_fee_cap,
        };
        match inner.fees.quote(&inner.provider, caps).await {
            Ok(fees::FeeQuote::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            }) => crate::chain::CallFees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            },
            Ok(fees::FeeQuote::Legacy { gas_price }) => {
                crate::chain::CallFees::Legacy { gas_price }
            }
            Err(_) => crate::chain::CallFees::None,
        }
    }

    /// Sends only with signer keys this process holds the lease of in `leases` (several
    /// facilitator processes sharing keys and a store): a key leased elsewhere is skipped, and
    /// a key (re)taken re-reads its nonce from the chain. Call before the pool is shared.
    pub fn with_leases(mut self, leases: Leases) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.leases = Some(leases);
        }
        self
    }

    /// Signs and broadcasts `request`; returns once the node accepted it (not mined).
    ///
    /// Cancel-safe: dropping the future never loses track of a nonce.
    pub async fn send(&self, request: TxRequest) -> Result<Sent, SendError> {
        self.send_recorded(request, None).await
    }

    /// Like [`SignerPool::send`], recording each signed transaction in `journal` before it is
    /// broadcast.
    pub async fn send_recorded(
        &self,
        request: TxRequest,
        journal: Option<&dyn Journal>,
    ) -> Result<Sent, SendError> {
        let cap = self.inner.config.gas_limit_cap;
        if request.gas_limit > cap {
            return Err(SendError::GasLimitAboveCap {
                gas_limit: request.gas_limit,
                cap,
            });
        }
        if let Some(from) = request.from {
            let index = self
                .inner
                .slots
                .iter()
                .position(|s| s.address == from)
                .ok_or(SendError::UnknownSigner(from))?;
            return self.send_on(index, &request, journal).await;
        }
        let mut tried = Vec::new();
        loop {
            let index = self.pick(&tried);
            match self.send_on(index, &request, journal).await {
                Err(SendError::SignerLeased(from)) => {
                    tried.push(index);
                    if tried.len() == self.inner.slots.len() {
                        return Err(SendError::SignerLeased(from));
                    }
                }
                Err(SendError::InsufficientFunds { from, message }) => {
                    let until = Instant::now() + self.inner.config.low_funds_backoff;
                    let slot = &self.inner.slots[index];
                    *slot
                        .low_funds_until
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(until);
                    warn!(%from, %message, "signer short of funds; trying another");
                    tried.push(index);
                    if tried.len() == self.inner.slots.len() {
                        return Err(SendError::InsufficientFunds { from, message });
                    }
                }
                other => return other,
            }
        }
    }

    /// Waits for `hash`'s receipt within the pool's `receipt_timeout`.
    pub async fn wait(&self, hash: TxHash) -> ReceiptOutcome {
        self.wait_until(hash, None).await
    }

    /// Waits for `hash`'s receipt within the pool's `receipt_timeout`, and no later than
    /// `deadline`, through the chain's block watcher (the transaction was sent already: its
    /// receipt is read once by hash, then looked for in each new block).
    pub async fn wait_until(
        &self,
        hash: TxHash,
        deadline: Option<std::time::Instant>,
    ) -> ReceiptOutcome {
        let config = &self.inner.config;
        let end = tokio::time::Instant::now()
            + x402_core::timing::capped(config.receipt_timeout, deadline);
        let mut waiter = self.inner.blocks.waiter().await;
        waiter.add(hash, None);
        crate::watch::mined(self, &mut waiter, &[hash], end).await.1
    }

    /// The chain's block watcher (see [`crate::blocks`]).
    pub fn blocks(&self) -> &Blocks {
        &self.inner.blocks
    }

    /// The nonces whose settlements are being watched.
    pub(crate) fn watched(&self) -> &crate::watch::Watched {
        &self.inner.watched
    }

    /// The signers' addresses, in configuration order.
    pub fn addresses(&self) -> Vec<Address> {
        self.inner.slots.iter().map(|s| s.address).collect()
    }

    /// Whether `address` is one of the pool's signers.
    pub fn contains(&self, address: Address) -> bool {
        self.inner.slots.iter().any(|s| s.address == address)
    }

    /// Each signer's native balance; signers whose balance could not be read are left out (and
    /// logged).
    pub async fn balances(&self) -> Vec<(Address, U256)> {
        let reads = self.inner.slots.iter().map(|slot| async move {
            let balance = self.inner.provider.get_balance(slot.address).await;
            (slot.address, balance)
        });
        futures::future::join_all(reads)
            .await
            .into_iter()
            .filter_map(|(address, balance)| match balance {
                Ok(balance) => Some((address, balance)),
                Err(e) => {
                    warn!(%address, error = %describe_rpc_error(&e), "cannot read signer balance");
                    None
                }
            })
            .collect()
    }

    /// The chain id read at start.
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The pool's limits.
    pub fn config(&self) -> &TxConfig {
        &self.inner.config
    }

    /// The provider the pool sends through.
    pub fn provider(&self) -> &DynProvider {
        &self.inner.provider
    }

    /// Counters since the pool started.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        PoolStats {
            sent: c.sent.load(Ordering::Relaxed),
            nonce_conflicts: c.nonce_conflicts.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            ambiguous: c.ambiguous.load(Ordering::Relaxed),
            rebroadcasts: c.rebroadcasts.load(Ordering::Relaxed),
            replacements: c.replacements.load(Ordering::Relaxed),
        }
    }

    /// The signer's next nonce as the pool counts it (`None` while it must be re-read); waits
    /// for the signer's in-progress send.
    pub async fn next_nonce(&self, address: Address) -> Option<u64> {
        let slot = self.inner.slots.iter().find(|s| s.address == address)?;
        slot.state.lock().await.next_nonce
    }

    /// Chooses a signer not in `tried`: healthy before short-of-funds, then the shortest
    /// queue, then round-robin order.
    fn pick(&self, tried: &[usize]) -> usize {
        let slots = &self.inner.slots;
        let count = slots.len();
        let start = self.inner.next_pick.fetch_add(1, Ordering::Relaxed) % count;
        let now = Instant::now();
        let mut best: Option<(bool, usize, usize)> = None;
        for step in 0..count {
            let index = (start + step) % count;
            if tried.contains(&index) {
                continue;
            }
            let slot = &slots[index];
            let short = slot
                .low_funds_until
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|until| until > now);
            let queued = slot.queued.load(Ordering::Relaxed);
            if best.is_none_or(|(b_short, b_queued, _)| (short, queued) < (b_short, b_queued)) {
                best = Some((short, queued, index));
            }
        }
        best.map_or(start, |(_, _, index)| index)
    }

    async fn send_on(
        &self,
        index: usize,
        request: &TxRequest,
        journal: Option<&dyn Journal>,
    ) -> Result<Sent, SendError> {
        let inner = &*self.inner;
        let slot = &inner.slots[index];
        slot.queued.fetch_add(1, Ordering::Relaxed);
        let _ticket = QueueTicket(&slot.queued);
        let mut state = slot.state.lock().await;
        if let Some(leases) = &inner.leases {
            self.hold_lease(leases, slot, &mut state).await?;
        }
        let ctx = Ctx {
            provider: &inner.provider,
            chain_id: inner.chain_id,
            fees: &inner.fees,
            caps: FeeCaps {
                max_fee_per_gas: inner.config.max_fee_per_gas_cap,
                max_priority_fee: inner.config.max_priority_fee_cap,
            },
            counters: &inner.counters,
        };
        nonce::send_locked(&ctx, slot, &mut state, request, journal).await
    }

    /// Takes or renews `slot`'s lease (the caller holds its state); a lease taken anew (never
    /// held, or lapsed meanwhile) re-reads the nonce, since another process may have sent.
    async fn hold_lease(
        &self,
        leases: &Leases,
        slot: &Slot,
        state: &mut SlotState,
    ) -> Result<(), SendError> {
        let now = Instant::now();
        let held_until = state.lease_until;
        if held_until.is_some_and(|until| until > now + leases.ttl / 2) {
            return Ok(());
        }
        let name = format!("evm-signer/{}/{:#x}", self.inner.chain_id, slot.address);
        let taken = leases
            .store
            .lease(&name, leases.ttl)
            .await
            .map_err(|e| SendError::NotRecorded(e.to_string()))?;
        if !taken {
            state.lease_until = None;
            return Err(SendError::SignerLeased(slot.address));
        }
        if held_until.is_none_or(|until| until <= now) {
            // Held by another process since (or never ours): its sends moved the nonce.
            state.next_nonce = None;
        }
        state.lease_until = Some(now + leases.ttl);
        Ok(())
    }
}
