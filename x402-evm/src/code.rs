//! Code lookups for verification, cached only where the answer cannot change under us.
//!
//! What is at an address decides two things: whether a call to it proves anything (a call to an
//! address without code "succeeds", threat-model S32), and how a payer's signature is checked
//! (ECDSA, or the wallet's EIP-1271). What each answer may become later:
//!
//! - **Contract code** (anything but an EIP-7702 designator) does not change once deployed:
//!   since Cancun (EIP-6780) `SELFDESTRUCT` removes code only in the transaction that created
//!   it, so no later transaction can empty the address or redeploy other code there. It is
//!   cached — for [`CodeCache::DEFAULT_TTL`] at most, which bounds how long a pre-Cancun chain's
//!   metamorphic contract (self-destructed, then redeployed by `CREATE2`) could be seen stale.
//! - **An EIP-7702 delegation** (`0xef0100 ‖ address`, 23 bytes) is set, changed or removed by
//!   any transaction the account signs: never cached.
//! - **No code** becomes code when a counterfactual wallet is deployed or an account delegates:
//!   never cached either.
//!
//! The cache holds at most [`CodeCache::DEFAULT_CAPACITY`] addresses (the oldest go first), so
//! payments naming ever new addresses cannot grow it. A cached answer never makes a payment
//! valid by itself: every accepted payment is simulated against the chain (verify and again at
//! settle), and the chain's own checks decide; the cache only chooses which call is simulated.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes};
use alloy::providers::DynProvider;
use x402_core::SchemeError;

use crate::chain;

/// The prefix of an EIP-7702 delegation designator (`0xef0100 ‖ address`).
pub const DELEGATION_PREFIX: [u8; 3] = [0xef, 0x01, 0x00];

/// What is at an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Nothing: an account without code (or no account).
    None,
    /// An EIP-7702 delegation to this address: an account whose calls run that code, and whose
    /// key still signs (it can change the delegation at any time).
    Delegated(Address),
    /// Contract code.
    Contract,
}

impl Code {
    /// Classifies the bytes `eth_getCode` answered.
    pub fn of(code: &[u8]) -> Self {
        match code {
            [] => Self::None,
            [0xef, 0x01, 0x00, target @ ..] if target.len() == 20 => {
                Self::Delegated(Address::from_slice(target))
            }
            _ => Self::Contract,
        }
    }

    /// Whether calls to the address run code.
    pub fn is_some(self) -> bool {
        self != Self::None
    }
}

/// Contract code seen at addresses, bounded in size and age (see the module).
#[derive(Debug)]
pub struct CodeCache {
    seen: Mutex<HashMap<Address, Instant>>,
    capacity: usize,
    ttl: Duration,
}

impl Default for CodeCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_TTL)
    }
}

impl CodeCache {
    /// How many addresses are remembered at most.
    pub const DEFAULT_CAPACITY: usize = 4096;
    /// How long an address is remembered at most.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

    /// A cache of at most `capacity` addresses, each for `ttl` at most.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Instant>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `address` is remembered with contract code (and not expired).
    pub fn cached(&self, address: Address) -> bool {
        let mut seen = self.lock();
        match seen.get(&address) {
            Some(at) if at.elapsed() < self.ttl => true,
            Some(_) => {
                seen.remove(&address);
                false
            }
            None => false,
        }
    }

    /// Remembers what `eth_getCode` answered for `address` (only contract code is kept).
    pub fn record(&self, address: Address, code: &Bytes) -> Code {
        let kind = Code::of(code);
        if kind == Code::Contract && self.capacity > 0 {
            let mut seen = self.lock();
            if seen.len() >= self.capacity && !seen.contains_key(&address) {
                let ttl = self.ttl;
                seen.retain(|_, at| at.elapsed() < ttl);
                if seen.len() >= self.capacity
                    && let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a)
                {
                    seen.remove(&oldest);
                }
            }
            seen.insert(address, Instant::now());
        }
        kind
    }

    /// What is at `address`: from the cache, or one `eth_getCode`.
    pub async fn code(
        &self,
        provider: &DynProvider,
        address: Address,
    ) -> Result<Code, SchemeError> {
        if self.cached(address) {
            return Ok(Code::Contract);
        }
        let code = chain::code(provider, address).await?;
        Ok(self.record(address, &code))
    }

    /// Whether calls to `address` run code (a contract, or a delegated account).
    pub async fn has_code(
        &self,
        provider: &DynProvider,
        address: Address,
    ) -> Result<bool, SchemeError> {
        Ok(self.code(provider, address).await?.is_some())
    }

    /// How many addresses are remembered (expired ones included until they are looked at).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    const A: Address = address!("0x00000000000000000000000000000000000000aa");
    const B: Address = address!("0x00000000000000000000000000000000000000bb");
    const C: Address = address!("0x00000000000000000000000000000000000000cc");

    fn delegation(to: Address) -> Bytes {
        let mut code = DELEGATION_PREFIX.to_vec();
        code.extend_from_slice(to.as_slice());
        code.into()
    }

    #[test]
    fn code_is_classified() {
        assert_eq!(Code::of(&[]), Code::None);
        assert_eq!(Code::of(&delegation(B)), Code::Delegated(B));
        assert_eq!(Code::of(&[0x60, 0x80, 0x60, 0x40]), Code::Contract);
        // The prefix with a wrong length is not a designator (it is not valid code either,
        // but it is code).
        assert_eq!(Code::of(&[0xef, 0x01, 0x00, 0x01]), Code::Contract);
        assert!(Code::Delegated(B).is_some() && !Code::None.is_some());
    }

    #[test]
    fn only_contract_code_is_remembered() {
        let cache = CodeCache::default();
        assert_eq!(cache.record(A, &Bytes::new()), Code::None);
        assert_eq!(cache.record(B, &delegation(A)), Code::Delegated(A));
        assert!(!cache.cached(A) && !cache.cached(B), "may change: not kept");
        assert_eq!(
            cache.record(C, &Bytes::from(vec![0x60, 0x80])),
            Code::Contract
        );
        assert!(cache.cached(C));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded_in_size_and_age() {
        let code = Bytes::from(vec![0x60, 0x80]);
        let cache = CodeCache::new(2, Duration::from_secs(3600));
        cache.record(A, &code);
        cache.record(B, &code);
        cache.record(C, &code);
        assert_eq!(cache.len(), 2);
        assert!(!cache.cached(A), "the oldest went first");
        assert!(cache.cached(B) && cache.cached(C));
        for i in 0..1000u16 {
            let mut raw = [0u8; 20];
            raw[..2].copy_from_slice(&i.to_be_bytes());
            cache.record(Address::from(raw), &code);
        }
        assert_eq!(cache.len(), 2, "new addresses never grow it");

        let expired = CodeCache::new(8, Duration::ZERO);
        expired.record(A, &code);
        assert!(!expired.cached(A), "expired");
        assert!(expired.is_empty(), "and dropped");
        let none = CodeCache::new(0, Duration::from_secs(3600));
        none.record(A, &code);
        assert!(none.is_empty());
    }
}
