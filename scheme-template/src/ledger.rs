//! The toy chain: balances and used nonces, changed only by whole transfers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use x402_core::{Amount, Network, Reason, Rejection, SchemeError};

use crate::{Account, Nonce, Transfer};

#[derive(Debug, Default)]
struct State {
    balances: HashMap<Account, Amount>,
    used: HashSet<(Account, Nonce)>,
}

/// A toy ledger: what a chain is to a real scheme. Every party in the process reads the same one
/// for a network ([`Ledger::of`]), as every party reads the same chain.
#[derive(Debug, Default)]
pub struct Ledger {
    state: Mutex<State>,
}

/// The ledgers of this process, by network.
fn ledgers() -> MutexGuard<'static, HashMap<Network, Arc<Ledger>>> {
    static LEDGERS: OnceLock<Mutex<HashMap<Network, Arc<Ledger>>>> = OnceLock::new();
    LEDGERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    /// A ledger with these opening balances, not attached to any network.
    pub fn new(balances: impl IntoIterator<Item = (Account, Amount)>) -> Self {
        Self {
            state: Mutex::new(State {
                balances: balances.into_iter().collect(),
                used: HashSet::new(),
            }),
        }
    }

    /// Creates `network`'s ledger with its opening balances. A network has one genesis per
    /// process: opening it twice is a configuration error.
    pub fn open(
        network: &Network,
        balances: impl IntoIterator<Item = (Account, Amount)>,
    ) -> Result<Arc<Self>, SchemeError> {
        let mut all = ledgers();
        if all.contains_key(network) {
            return Err(SchemeError::Config(format!(
                "the toy ledger of {network} is already open in this process"
            )));
        }
        let ledger = Arc::new(Self::new(balances));
        all.insert(network.clone(), Arc::clone(&ledger));
        Ok(ledger)
    }

    /// The ledger of `network`, once a facilitator has opened it.
    pub fn of(network: &Network) -> Option<Arc<Self>> {
        ledgers().get(network).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is made whole under the lock; a panic elsewhere leaves it consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The balance of `account` (zero when it has none).
    pub fn balance(&self, account: &Account) -> Amount {
        self.lock()
            .balances
            .get(account)
            .copied()
            .unwrap_or(Amount::ZERO)
    }

    /// Whether `t` can be applied now: `from` holds the amount, and the nonce is unused.
    pub fn check(&self, t: &Transfer) -> Result<(), Rejection> {
        check(&self.lock(), t).map(|_| ())
    }

    /// Applies a transfer atomically: checked as [`Ledger::check`] and applied under one lock,
    /// or nothing changes and the rejection says why.
    pub fn apply(&self, t: &Transfer) -> Result<(), Rejection> {
        let mut state = self.lock();
        let from_after = check(&state, t)?;
        // A self-transfer leaves the balance as it is.
        let to_before = if t.to == t.from {
            from_after
        } else {
            state.balances.get(&t.to).copied().unwrap_or(Amount::ZERO)
        };
        let Some(to_after) = to_before.get().checked_add(t.amount.get()) else {
            return Err(Rejection::with_message(
                Reason::TRANSACTION_FAILED,
                "the recipient's balance would overflow",
            ));
        };
        state.balances.insert(t.from, from_after);
        state.balances.insert(t.to, Amount::from(to_after));
        state.used.insert((t.from, t.nonce));
        Ok(())
    }
}

/// The ledger's rules for a transfer, in order; `Ok` is `from`'s balance after it.
fn check(state: &State, t: &Transfer) -> Result<Amount, Rejection> {
    let balance = state.balances.get(&t.from).copied().unwrap_or(Amount::ZERO);
    let Some(after) = balance.get().checked_sub(t.amount.get()) else {
        let m = format!("{} holds {balance}", t.from);
        return Err(Rejection::with_message(Reason::INSUFFICIENT_FUNDS, m));
    };
    if state.used.contains(&(t.from, t.nonce)) {
        let m = "this nonce was already used";
        return Err(Rejection::with_message(
            crate::reason::INVALID_EXACT_TOY_NONCE_ALREADY_USED,
            m,
        ));
    }
    Ok(Amount::from(after))
}
