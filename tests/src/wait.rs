//! Readiness waits: poll a condition at a short interval until it holds. The deadline is a hang
//! guard, generous enough for a loaded two-core machine, never a timing assertion.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the waits poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The default hang guard of a wait: far above how long any awaited condition takes.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Polls `condition` until it returns `true` or `hang_guard` has passed; whether it held. For a
/// caller whose own assertions, checked next, say best what is missing.
pub async fn poll<F, Fut>(hang_guard: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = Instant::now() + hang_guard;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls `condition` until it returns `true`.
///
/// # Panics
/// When it still does not hold after `hang_guard`, naming `what`.
pub async fn until<F, Fut>(what: &str, hang_guard: Duration, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        poll(hang_guard, condition).await,
        "{what}: still not the case after {hang_guard:?}"
    );
}

/// [`until`] for a blocking `condition`, polled on the calling thread.
///
/// # Panics
/// When it still does not hold after `hang_guard`, naming `what`.
pub fn until_blocking(what: &str, hang_guard: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + hang_guard;
    while !condition() {
        assert!(
            Instant::now() < give_up,
            "{what}: still not the case after {hang_guard:?}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}
