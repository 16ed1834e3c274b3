//! Each facilitator's `/supported`, cached for
//! [`SellerOptions::supported_ttl`](crate::SellerOptions::supported_ttl): a stale answer is served
//! while one refresh runs in the background, and a failed refresh keeps the last good answer and
//! is retried after [`SellerOptions::supported_retry`](crate::SellerOptions::supported_retry).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x402_core::wire::SupportedResponse;
use x402_core::{Facilitator, FacilitatorError};

#[derive(Debug, Default)]
struct State {
    /// The last good answer.
    current: Option<Arc<SupportedResponse>>,
    /// When to refresh it.
    due: Option<Instant>,
    /// Whether a refresh is running.
    refreshing: bool,
    /// Until when a facilitator whose fetch failed with no good answer to keep is skipped while
    /// another facilitator serves (see [`SupportedCache::get_unless_down`]).
    down_until: Option<Instant>,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct SupportedCache {
    ttl: Duration,
    retry: Duration,
    state: Mutex<State>,
    /// Serializes the first fetches, so concurrent first requests share one.
    first: tokio::sync::Mutex<()>,
}

impl SupportedCache {
    pub(crate) fn new(ttl: Duration, retry: Duration) -> Self {
        Self {
            ttl,
            retry,
            state: Mutex::default(),
            first: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome of a fetch; answers the current value.
    fn record(
        &self,
        fetched: Result<SupportedResponse, FacilitatorError>,
    ) -> Result<Arc<SupportedResponse>, FacilitatorError> {
        let mut state = self.lock();
        state.refreshing = false;
        match fetched {
            Ok(answer) => {
                let answer = Arc::new(answer);
                state.down_until = None;
                state.current = Some(answer.clone());
                state.due = Some(Instant::now() + self.ttl);
                Ok(answer)
            }
            Err(e) => match state.current.clone() {
                Some(current) => {
                    tracing::warn!(error = %e, retry_in = ?self.retry, "refreshing the facilitator's /supported failed; keeping the last answer");
                    state.due = Some(Instant::now() + self.retry);
                    Ok(current)
                }
                None => {
                    state.down_until = Some(Instant::now() + self.retry);
                    Err(e)
                }
            },
        }
    }

    /// Like [`SupportedCache::get`], but `None` without asking when the facilitator has no good
    /// answer and its last fetch failed less than `retry` ago: a seller with several
    /// facilitators skips it while another serves (and asks it again when none does).
    pub(crate) async fn get_unless_down(
        self: &Arc<Self>,
        facilitator: &Arc<dyn Facilitator>,
    ) -> Option<Result<Arc<SupportedResponse>, FacilitatorError>> {
        {
            let state = self.lock();
            if state.current.is_none()
                && state.down_until.is_some_and(|until| Instant::now() < until)
            {
                return None;
            }
        }
        Some(self.get(facilitator).await)
    }

    /// Fetches now, whatever the cache holds (start-up validation); a failure keeps the last
    /// good answer, as a failed refresh does, and is the caller's.
    pub(crate) async fn fetch_now(
        &self,
        facilitator: &Arc<dyn Facilitator>,
    ) -> Result<Arc<SupportedResponse>, String> {
        match facilitator.supported().await {
            Ok(answer) => self.record(Ok(answer)).map_err(|e| e.to_string()),
            Err(e) => {
                let message = e.to_string();
                let _ = self.record(Err(e));
                Err(message)
            }
        }
    }

    /// The current answer: fetched on first use (a failure is not cached), refreshed in the
    /// background once stale.
    pub(crate) async fn get(
        self: &Arc<Self>,
        facilitator: &Arc<dyn Facilitator>,
    ) -> Result<Arc<SupportedResponse>, FacilitatorError> {
        {
            let mut state = self.lock();
            if let Some(current) = state.current.clone() {
                let stale = state.due.is_none_or(|due| Instant::now() >= due);
                if stale && !state.refreshing {
                    state.refreshing = true;
                    let (cache, facilitator) = (self.clone(), facilitator.clone());
                    tokio::spawn(async move {
                        let fetched = facilitator.supported().await;
                        let _ = cache.record(fetched);
                    });
                }
                return Ok(current);
            }
        }
        let _first = self.first.lock().await;
        if let Some(current) = self.lock().current.clone() {
            return Ok(current);
        }
        self.record(facilitator.supported().await)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use x402_core::X402Version;
    use x402_core::wire::{
        SettleRequest, SettleResponse, SupportedKind, VerifyRequest, VerifyResponse,
    };

    use super::*;

    /// A facilitator whose `/supported` lists `kinds` networks, or fails (fault injection).
    #[derive(Default)]
    struct Changing {
        kinds: AtomicUsize,
        failing: AtomicBool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Facilitator for Changing {
        async fn verify(&self, _: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
            unreachable!("not asked")
        }
        async fn settle(&self, _: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
            unreachable!("not asked")
        }
        async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(FacilitatorError::Transport("injected".into()));
            }
            let kinds = (0..self.kinds.load(Ordering::SeqCst))
                .map(|i| SupportedKind {
                    x402_version: X402Version::V2,
                    scheme: "exact".into(),
                    network: format!("eip155:{}", i + 1),
                    extra: None,
                })
                .collect();
            Ok(SupportedResponse {
                kinds,
                ..SupportedResponse::default()
            })
        }
    }

    /// Asks until the answer lists `n` kinds (each ask may start a background refresh).
    async fn until_kinds(cache: &Arc<SupportedCache>, f: &Arc<dyn Facilitator>, n: usize) {
        while cache.get(f).await.unwrap().kinds.len() != n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_kind_added_later_is_picked_up_and_a_failed_refresh_keeps_the_last_answer() {
        let changing = Arc::new(Changing::default());
        let f: Arc<dyn Facilitator> = changing.clone();
        changing.kinds.store(1, Ordering::SeqCst);
        // Stale at once; after a failure, retried only an hour later.
        let cache = Arc::new(SupportedCache::new(
            Duration::ZERO,
            Duration::from_secs(3600),
        ));

        // The first fetch fails: nothing is cached, the error is the caller's.
        changing.failing.store(true, Ordering::SeqCst);
        assert!(cache.get(&f).await.is_err());
        changing.failing.store(false, Ordering::SeqCst);
        assert_eq!(cache.get(&f).await.unwrap().kinds.len(), 1);

        // A kind the facilitator adds after start reaches the seller.
        changing.kinds.store(2, Ordering::SeqCst);
        until_kinds(&cache, &f, 2).await;

        // The facilitator fails: the last good answer is served, and the refresh is not retried
        // before `retry`.
        changing.failing.store(true, Ordering::SeqCst);
        changing.kinds.store(3, Ordering::SeqCst);
        let before = changing.calls.load(Ordering::SeqCst);
        while changing.calls.load(Ordering::SeqCst) == before || cache.lock().refreshing {
            assert_eq!(cache.get(&f).await.unwrap().kinds.len(), 2);
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            assert_eq!(cache.get(&f).await.unwrap().kinds.len(), 2);
        }
        assert_eq!(changing.calls.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test]
    async fn a_facilitator_whose_first_fetch_failed_is_skipped_until_retry() {
        let changing = Arc::new(Changing::default());
        let f: Arc<dyn Facilitator> = changing.clone();
        changing.kinds.store(1, Ordering::SeqCst);
        changing.failing.store(true, Ordering::SeqCst);
        let cache = Arc::new(SupportedCache::new(
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        ));
        assert!(cache.get_unless_down(&f).await.unwrap().is_err());
        assert_eq!(changing.calls.load(Ordering::SeqCst), 1);
        // Down: skipped without asking.
        changing.failing.store(false, Ordering::SeqCst);
        assert!(cache.get_unless_down(&f).await.is_none());
        assert_eq!(changing.calls.load(Ordering::SeqCst), 1);
        // Asked directly (no other facilitator serves), it answers and is up again.
        assert_eq!(cache.get(&f).await.unwrap().kinds.len(), 1);
        assert_eq!(
            cache
                .get_unless_down(&f)
                .await
                .unwrap()
                .unwrap()
                .kinds
                .len(),
            1
        );
        // A fetch at start-up always asks; its failure keeps the last good answer.
        changing.failing.store(true, Ordering::SeqCst);
        assert!(cache.fetch_now(&f).await.is_err());
        assert_eq!(cache.get(&f).await.unwrap().kinds.len(), 1);
    }
}
