//! Giving memory back to the OS after a load burst.
//!
//! A burst of a thousand requests in flight (each with its connection's buffers, its JSON and its
//! outgoing JSON-RPC call) needs tens of MiB for a moment. glibc's malloc keeps what they freed
//! in its arenas: it returns only the top of a heap, and only above a trim threshold that grows
//! with the largest block freed, so after the burst the process stays resident at its peak while
//! it serves a light load with a fraction of that. `malloc_trim(0)` hands every free page of every
//! arena back (`madvise(MADV_DONTNEED)`); live allocations are untouched.
//!
//! The trimmer is one thread that wakes every [`TICK`] and reads the process's CPU time
//! (`getrusage`). It trims when the process has been quiet for a tick (at most [`QUIET_CPU`] of
//! CPU in it: the burst is over and its connections are closed) and has worked at least
//! [`WORK_SINCE_TRIM`] of CPU since its last trim (something may have been freed). Under load
//! it never trims — no arena locks taken while requests are served, no pages given back only to
//! be faulted in again; idle, it trims once and then sleeps until the next work. Measured in
//! docs/benchmarks.md ("Ours, x402-rs and the TypeScript reference (issue 19)", peak RSS).
//!
//! Only on Linux with glibc; elsewhere (musl, macOS) nothing is started: those allocators have
//! no such call and return memory on their own.

#![cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]

use std::time::Duration;

/// How often the trimmer reads the process's CPU time.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// CPU time within one [`TICK`] up to which the process counts as quiet (2 % of a core).
pub(crate) const QUIET_CPU: Duration = Duration::from_millis(5);

/// CPU time since the last trim from which a quiet tick trims (less work than this frees too
/// little to be worth walking the arenas).
pub(crate) const WORK_SINCE_TRIM: Duration = Duration::from_millis(200);

/// When to trim, from the CPU time of each tick.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// CPU time since the last trim (or start).
    work: Duration,
}

impl Policy {
    /// Takes the CPU time the process spent during the last tick; true when it should trim now.
    pub(crate) fn tick(&mut self, cpu: Duration) -> bool {
        self.work = self.work.saturating_add(cpu);
        if cpu <= QUIET_CPU && self.work >= WORK_SINCE_TRIM {
            self.work = Duration::ZERO;
            return true;
        }
        false
    }
}

/// Starts the trimmer thread (Linux with glibc only); an error when the thread cannot start.
pub(crate) fn spawn_trimmer() -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::Builder::new()
        .name("x402-mem-trim".into())
        .spawn(|| {
            let mut policy = Policy::default();
            let mut last = cpu_time();
            loop {
                std::thread::sleep(TICK);
                let now = cpu_time();
                if let (Some(now), Some(last)) = (now, last)
                    && policy.tick(now.saturating_sub(last))
                {
                    let released = trim();
                    tracing::debug!(released, "gave free heap pages back to the OS");
                }
                last = now;
            }
        })?;
    Ok(())
}

/// User + system CPU time of the whole process so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cpu_time() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).ok()?)
            .checked_add(Duration::from_micros(u64::try_from(t.tv_usec()).ok()?))
    };
    micros(usage.user_time())?.checked_add(micros(usage.system_time())?)
}

/// `malloc_trim(0)`: gives every whole free page of every glibc arena back to the OS. True when
/// something was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointer and has no precondition; glibc locks each arena while
    // it walks it, so it is safe alongside allocations on other threads, and it only releases
    // pages inside free chunks (live allocations keep their contents).
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn trims_once_when_quiet_after_work() {
        let mut p = Policy::default();
        // Idle from the start: nothing was freed, nothing to trim.
        assert!(!p.tick(Duration::ZERO));
        assert!(!p.tick(MS));
        // A burst: busy ticks never trim, however much work piles up.
        for _ in 0..40 {
            assert!(!p.tick(200 * MS));
        }
        // The first quiet tick after it trims, once.
        assert!(p.tick(QUIET_CPU));
        assert!(!p.tick(Duration::ZERO));
        assert!(!p.tick(MS));
    }

    #[test]
    fn light_work_trims_only_once_it_adds_up() {
        let mut p = Policy::default();
        // A trickle of requests, each tick quiet: a trim only when the work since the last one
        // reaches WORK_SINCE_TRIM.
        let per_tick = 4 * MS;
        let ticks_per_trim = WORK_SINCE_TRIM.as_millis().div_ceil(per_tick.as_millis());
        let mut trims = Vec::new();
        for i in 1..=3 * ticks_per_trim {
            if p.tick(per_tick) {
                trims.push(i);
            }
        }
        assert_eq!(
            trims,
            vec![ticks_per_trim, 2 * ticks_per_trim, 3 * ticks_per_trim]
        );
    }

    #[test]
    fn a_busy_tick_then_a_quiet_one() {
        let mut p = Policy::default();
        assert!(!p.tick(QUIET_CPU + MS));
        // Just over the quiet bound is busy; enough work, then a quiet tick.
        assert!(!p.tick(WORK_SINCE_TRIM));
        assert!(p.tick(Duration::ZERO));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn trimming_and_the_cpu_clock_work_here() {
        let t0 = cpu_time().unwrap_or_default();
        assert!(t0 > Duration::ZERO);
        // Free a few MiB, then trim: glibc answers whether it released anything (it need not,
        // if another thread reused the pages); the call must simply work.
        drop(vec![vec![1u8; 64 * 1024]; 64]);
        let _released = trim();
        assert!(cpu_time().unwrap_or_default() >= t0);
        assert!(spawn_trimmer().is_ok());
    }
}
