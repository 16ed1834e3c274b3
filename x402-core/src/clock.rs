//! Time as a value each component holds, never a process-wide setting: a facilitator, a buyer or
//! a settlement store reads "now" from its own [`Clock`], so a test can move one instance's time
//! without touching any other test running beside it.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::UnixTime;

/// A source of the current Unix time.
pub trait Clock: Send + Sync + Debug {
    /// The time now.
    fn now(&self) -> UnixTime;
}

/// A clock shared by the components that read it.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// The system clock, shared.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A plain function as a clock (a fixed time for a test vector, say).
impl Clock for fn() -> UnixTime {
    fn now(&self) -> UnixTime {
        self()
    }
}

/// The system clock moved by an adjustable number of seconds; each instance has its own shift.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    shift: AtomicI64,
}

impl ShiftedClock {
    /// The system clock moved by `seconds` (negative: into the past).
    pub fn new(seconds: i64) -> Self {
        Self {
            shift: AtomicI64::new(seconds),
        }
    }

    /// Moves this clock to `seconds` away from the system clock (0: back to it).
    pub fn set_shift(&self, seconds: i64) {
        self.shift.store(seconds, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> UnixTime {
        UnixTime(
            UnixTime::now()
                .0
                .saturating_add_signed(self.shift.load(Ordering::SeqCst)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_clocks_are_independent() {
        let a = ShiftedClock::new(0);
        let b = ShiftedClock::new(0);
        a.set_shift(1_000);
        let (ta, tb) = (a.now().0, b.now().0);
        assert!(ta >= tb + 999, "{ta} {tb}");
        a.set_shift(-1_000);
        assert!(a.now().0 + 999 <= SystemClock.now().0);
        fn fixed() -> UnixTime {
            UnixTime(42)
        }
        let f: fn() -> UnixTime = fixed;
        assert_eq!(Clock::now(&f), UnixTime(42));
    }
}
