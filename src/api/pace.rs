//! Request pacing for chatgpt.com: a token bucket tuned to the service's observed
//! limits (a burst of about 200 requests, then about one a minute), at most
//! `max_in_flight` requests at once, and a cooldown after 429s that honours
//! `Retry-After` (at most an hour) or backs off exponentially with jitter.
//!
//! The bucket and cooldown are saved (in the archive, through a [`PaceStore`]) as they change: a cooldown at
//! once, a bucket that has just run dry at once, and otherwise at most once a
//! minute, so a restart during a backfill neither forgets a cooldown nor bursts
//! again. Every save is flushed explicitly (the daemon runs sled without its
//! background flusher), and saves are serialised, so an older state never
//! overwrites a newer one.
//!
//! Numbers from outside (the server's `Retry-After`, saved state) are bounded and all
//! arithmetic saturates: nothing here can panic, so the bucket's lock is never
//! poisoned, and a poisoned lock would still be used rather than pacing switched off.

use crate::config::ApiConfig;
use crate::model::time::now_secs;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The longest wait taken from the server (`Retry-After`) or from saved state.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);
/// While requests go out, the bucket is saved at most this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(60);

/// What is saved between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PaceState {
    /// Tokens left at `at`.
    pub tokens: f64,
    /// Wall time of `tokens` (epoch seconds).
    pub at: f64,
    /// No request before this wall time (epoch seconds).
    pub cooldown_until: Option<f64>,
    /// 429s in a row (drives the backoff).
    pub consecutive_429: u32,
}

/// State key in the archive.
pub const STATE_KEY: &str = "api_pace";

/// Where a pacer keeps its state between runs. The product keeps it in the archive
/// (see `session`); the client itself knows nothing of storage.
pub trait PaceStore: Send + Sync {
    /// The saved state, if any (blocking).
    fn load(&self) -> Option<PaceState>;
    /// Saves the state durably (blocking).
    fn save(&self, state: &PaceState) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    cooldown_until: Option<Instant>,
    consecutive_429: u32,
}

/// When the state was last saved, and whether the bucket was dry then.
#[derive(Default)]
struct SaveMark {
    at: Option<Instant>,
    dry: bool,
}

/// The pacer shared by all requests of a client.
pub struct Pacer {
    bucket: Mutex<Bucket>,
    in_flight: Semaphore,
    burst: f64,
    per_sec: f64,
    base_backoff: Duration,
    max_backoff: Duration,
    /// Where the state is saved (see [`Pacer::load`]).
    store: Option<Arc<dyn PaceStore>>,
    /// Held while saving, so saves happen one after another, each of the newest state.
    saved: tokio::sync::Mutex<SaveMark>,
}

/// `secs` as a duration: negative or NaN is zero, too large is `Duration::MAX`.
pub(crate) fn secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// `now + wait`, saturating far in the future instead of overflowing.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(MAX_SERVER_WAIT))
        .unwrap_or(now)
}

impl Pacer {
    /// A pacer with a full bucket and no cooldown.
    pub fn new(cfg: &ApiConfig) -> Self {
        Self::from_state(cfg, None)
    }

    /// A pacer resuming saved state (refilled for the time since it was saved). Saved
    /// values are not trusted: a cooldown is cut to the longest this pacer would choose.
    pub fn from_state(cfg: &ApiConfig, saved: Option<PaceState>) -> Self {
        let burst = f64::from(cfg.burst.max(1));
        let per_sec = cfg.refill_per_minute / 60.0;
        let base_backoff = Duration::from_secs(cfg.rate_limit_base_secs);
        let max_backoff =
            Duration::from_secs(cfg.rate_limit_max_secs.max(cfg.rate_limit_base_secs));
        let longest = max_backoff.saturating_mul(2).max(MAX_SERVER_WAIT);
        let now_wall = now_secs();
        let now = Instant::now();
        let (tokens, cooldown_until, consecutive_429) = match saved {
            Some(s) => {
                let elapsed = if (now_wall - s.at).is_finite() {
                    (now_wall - s.at).max(0.0)
                } else {
                    0.0
                };
                let left = if s.tokens.is_finite() { s.tokens } else { 0.0 };
                let tokens = (left + elapsed * per_sec).clamp(0.0, burst);
                let cooldown = s
                    .cooldown_until
                    .filter(|&u| u > now_wall)
                    .map(|u| later(now, secs_f64(u - now_wall).min(longest)));
                (tokens, cooldown, s.consecutive_429)
            }
            None => (burst, None, 0),
        };
        Self {
            bucket: Mutex::new(Bucket {
                tokens,
                refilled: now,
                cooldown_until,
                consecutive_429,
            }),
            in_flight: Semaphore::new(cfg.max_in_flight.max(1) as usize),
            burst,
            per_sec,
            base_backoff,
            max_backoff,
            store: None,
            saved: tokio::sync::Mutex::new(SaveMark::default()),
        }
    }

    /// Loads saved state from `store` (blocking; call from a blocking context). The
    /// pacer then saves its state there as it changes (see the module docs).
    pub fn load(cfg: &ApiConfig, store: Arc<dyn PaceStore>) -> Self {
        let saved = store.load();
        Self::from_state(cfg, saved).stored_in(store)
    }

    fn stored_in(mut self, store: Arc<dyn PaceStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The bucket, even if a thread panicked while holding it (nothing here panics, but a
    /// poisoned lock must never switch pacing off).
    fn bucket(&self) -> MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state to save.
    pub fn snapshot(&self) -> PaceState {
        let mut b = self.bucket();
        let now = Instant::now();
        self.refill(&mut b, now);
        let now_wall = now_secs();
        PaceState {
            tokens: b.tokens,
            at: now_wall,
            cooldown_until: b
                .cooldown_until
                .and_then(|u| u.checked_duration_since(now))
                .map(|d| now_wall + d.as_secs_f64()),
            consecutive_429: b.consecutive_429,
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.refilled = now;
    }

    /// The wait for the missing part of a token.
    fn token_wait(&self, tokens: f64) -> Duration {
        secs_f64((1.0 - tokens) / self.per_sec.max(1e-9))
    }

    /// How long until a request may go, reserving its token when it may go now.
    fn try_take(&self) -> Option<Duration> {
        let mut b = self.bucket();
        let now = Instant::now();
        if let Some(until) = b.cooldown_until {
            if until > now {
                return Some(until.saturating_duration_since(now));
            }
            b.cooldown_until = None;
        }
        self.refill(&mut b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(self.token_wait(b.tokens))
        }
    }

    /// The wait before the next request could start, without taking anything.
    pub fn wait_hint(&self) -> Duration {
        let mut b = self.bucket();
        let now = Instant::now();
        if let Some(until) = b.cooldown_until.filter(|u| *u > now) {
            return until.saturating_duration_since(now);
        }
        self.refill(&mut b, now);
        if b.tokens >= 1.0 {
            Duration::ZERO
        } else {
            self.token_wait(b.tokens)
        }
    }

    /// Waits for a slot and a token. `on_wait` is told about waits of a second or more.
    pub async fn acquire(&self, on_wait: impl Fn(Duration)) -> SemaphorePermit<'_> {
        let permit = match self.in_flight.acquire().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable!("pacer semaphore closed"),
        };
        let mut waited = false;
        while let Some(wait) = self.try_take() {
            if !waited {
                // The budget is spent: remember that at once, so a restart does not burst.
                waited = true;
                self.persist(Save::Dry).await;
            }
            if wait >= Duration::from_secs(1) {
                on_wait(wait);
            }
            tokio::time::sleep(wait).await;
        }
        self.persist(Save::IfDue).await;
        permit
    }

    /// Records a 429 and returns the cooldown chosen: `Retry-After` when given (at most
    /// [`MAX_SERVER_WAIT`]), else `base × 2^(n-1)` capped at the maximum, with up to 25%
    /// jitter. The cooldown is saved (and flushed) at once, so that a restart during the
    /// wait still honours it.
    pub async fn on_rate_limited(&self, retry_after: Option<Duration>) -> Duration {
        let wait = self.start_cooldown(retry_after);
        self.persist(Save::Now).await;
        wait
    }

    fn start_cooldown(&self, retry_after: Option<Duration>) -> Duration {
        let mut b = self.bucket();
        b.consecutive_429 = b.consecutive_429.saturating_add(1);
        let wait = match retry_after {
            Some(d) => d.min(MAX_SERVER_WAIT),
            None => {
                let backoff =
                    crate::util::backoff(self.base_backoff, b.consecutive_429, self.max_backoff);
                let jitter = 1.0 + fastrand::f64() * 0.25;
                secs_f64(backoff.as_secs_f64() * jitter)
                    .min(secs_f64(self.max_backoff.as_secs_f64() * 1.25))
            }
        };
        b.cooldown_until = Some(later(Instant::now(), wait));
        // The server says the budget is spent.
        b.tokens = 0.0;
        wait
    }

    /// Records a success (resets the 429 backoff).
    pub fn on_success(&self) {
        self.bucket().consecutive_429 = 0;
    }

    /// Saves the state now (durably); a pacer without a store does nothing.
    pub async fn save(&self) {
        self.persist(Save::Now).await;
    }

    async fn persist(&self, why: Save) {
        let Some(store) = &self.store else {
            return;
        };
        let mut mark = self.saved.lock().await;
        let due = match why {
            Save::Now => true,
            Save::Dry => !mark.dry || mark.at.is_none_or(|at| at.elapsed() >= SAVE_EVERY),
            Save::IfDue => mark.at.is_none_or(|at| at.elapsed() >= SAVE_EVERY),
        };
        if !due {
            return;
        }
        let state = self.snapshot();
        let dry = state.tokens < 1.0;
        let store = store.clone();
        let saved = crate::util::blocking("saving the request pacing state", move || {
            store.save(&state)
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::warn!("could not save the request pacing state: {e}");
        }
        *mark = SaveMark {
            at: Some(Instant::now()),
            dry,
        };
    }
}

/// Why the state is being saved.
#[derive(Clone, Copy)]
enum Save {
    /// Whatever the last save was.
    Now,
    /// The bucket ran dry: save unless the last save already was of a dry bucket.
    Dry,
    /// Only when the last save is [`SAVE_EVERY`] old.
    IfDue,
}
#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(burst: u32, per_min: f64) -> ApiConfig {
        ApiConfig {
            burst,
            refill_per_minute: per_min,
            rate_limit_base_secs: 60,
            rate_limit_max_secs: 900,
            ..ApiConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_rate() {
        let p = Pacer::new(&cfg(3, 60.0));
        let start = Instant::now();
        for _ in 0..3 {
            drop(p.acquire(|_| {}).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        drop(p.acquire(|_| {}).await);
        let e = start.elapsed();
        assert!(
            e >= Duration::from_millis(999) && e <= Duration::from_millis(1100),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_backoff_doubles() {
        let p = Pacer::new(&cfg(100, 6000.0));
        assert_eq!(
            p.on_rate_limited(Some(Duration::from_secs(7))).await,
            Duration::from_secs(7)
        );
        let start = Instant::now();
        drop(p.acquire(|_| {}).await);
        assert!(start.elapsed() >= Duration::from_secs(7));
        let first = p.on_rate_limited(None).await;
        let second = p.on_rate_limited(None).await;
        assert!(
            first >= Duration::from_secs(120) && first <= Duration::from_secs(150),
            "{first:?}"
        );
        assert!(
            second >= Duration::from_secs(240) && second <= Duration::from_secs(300),
            "{second:?}"
        );
        for _ in 0..10 {
            p.on_rate_limited(None).await;
        }
        assert!(p.on_rate_limited(None).await <= Duration::from_secs(1125));
        p.on_success();
        let w = p.on_rate_limited(None).await;
        assert!(
            w >= Duration::from_secs(60) && w <= Duration::from_secs(75),
            "{w:?}"
        );
    }

    #[test]
    fn saved_state_carries_the_cooldown_and_the_spent_bucket() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("rt");
        rt.block_on(async {
            let c = cfg(200, 1.0);
            let p = Pacer::new(&c);
            p.on_rate_limited(Some(Duration::from_secs(600))).await;
            let saved = p.snapshot();
            assert!(saved.tokens < 0.01, "{}", saved.tokens);
            let until = saved.cooldown_until.expect("cooldown");
            assert!(until > now_secs() + 590.0);
            let resumed = Pacer::from_state(&c, Some(saved));
            assert!(resumed.wait_hint() > Duration::from_secs(590));
            // An old cooldown has expired and the bucket has refilled meanwhile.
            let old = PaceState {
                tokens: 0.0,
                at: now_secs() - 3600.0,
                cooldown_until: Some(now_secs() - 10.0),
                consecutive_429: 1,
            };
            let resumed = Pacer::from_state(&c, Some(old));
            assert_eq!(resumed.wait_hint(), Duration::ZERO);
            assert!((resumed.snapshot().tokens - 60.0).abs() < 1.0);
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_an_hour_is_cut_to_an_hour_without_panicking() {
        for secs in [10_000_000_000u64, 9_200_000_000_000_000_000, u64::MAX] {
            let p = Pacer::new(&cfg(100, 6000.0));
            let w = p.on_rate_limited(Some(Duration::from_secs(secs))).await;
            assert_eq!(w, MAX_SERVER_WAIT, "{secs}");
            assert!(p.wait_hint() <= MAX_SERVER_WAIT, "{secs}");
            let until = p.snapshot().cooldown_until.expect("a cooldown");
            assert!(until <= now_secs() + 3601.0, "{secs}: {until}");
            // The pacer still works (no poisoned lock): the request goes after the hour.
            let start = Instant::now();
            drop(p.acquire(|_| {}).await);
            let e = start.elapsed();
            assert!(
                e >= Duration::from_secs(3599) && e <= Duration::from_secs(3601),
                "{secs}: {e:?}"
            );
        }
        let p = Pacer::new(&cfg(100, 6000.0));
        assert_eq!(
            p.on_rate_limited(Some(Duration::MAX)).await,
            MAX_SERVER_WAIT
        );
    }

    #[test]
    fn absurd_saved_state_is_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("rt");
        rt.block_on(async {
            let c = cfg(200, 1.0);
            let now = now_secs();
            for (tokens, at, until) in [
                (0.0, now, now + 10_000_000_000.0),
                (0.0, now, 9.2e18),
                (0.0, now, f64::MAX),
                (f64::NAN, f64::NAN, f64::INFINITY),
                (f64::INFINITY, f64::NEG_INFINITY, f64::NAN),
                (-5.0, now + 1e300, now + 60.0),
            ] {
                let p = Pacer::from_state(
                    &c,
                    Some(PaceState {
                        tokens,
                        at,
                        cooldown_until: Some(until),
                        consecutive_429: u32::MAX,
                    }),
                );
                assert!(
                    p.wait_hint() <= MAX_SERVER_WAIT,
                    "{tokens} {at} {until}: {:?}",
                    p.wait_hint()
                );
                let s = p.snapshot();
                assert!((0.0..=200.0).contains(&s.tokens), "{s:?}");
                // Another 429 after that saturates instead of overflowing.
                assert!(p.on_rate_limited(None).await <= Duration::from_secs(1125));
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_poisoned_bucket_still_paces() {
        let p = Pacer::new(&cfg(1, 60.0));
        std::thread::scope(|s| {
            let poisoner = s.spawn(|| {
                let _held = p.bucket.lock();
                panic!("a panic while the bucket is held");
            });
            assert!(poisoner.join().is_err());
        });
        assert!(p.bucket.is_poisoned());
        let start = Instant::now();
        drop(p.acquire(|_| {}).await);
        drop(p.acquire(|_| {}).await);
        assert!(
            start.elapsed() >= Duration::from_millis(999),
            "the second request waited for its token: {:?}",
            start.elapsed()
        );
    }

    /// A store in memory, standing in for the archive.
    #[derive(Default)]
    struct Memory(Mutex<Option<PaceState>>);

    impl PaceStore for Memory {
        fn load(&self) -> Option<PaceState> {
            self.0.lock().expect("lock").clone()
        }
        fn save(&self, s: &PaceState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            *self.0.lock().expect("lock") = Some(s.clone());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_state_is_saved_when_the_bucket_runs_dry_and_otherwise_once_a_minute() {
        let store = Arc::new(Memory::default());
        let c = cfg(5, 1.0);
        let saved = || -> PaceState { store.load().expect("saved state") };
        let p = Pacer::load(&c, store.clone());
        assert!(store.load().is_none());
        drop(p.acquire(|_| {}).await);
        assert!((saved().tokens - 4.0).abs() < 0.01, "{:?}", saved());
        // Within the minute nothing more is written…
        for _ in 0..4 {
            drop(p.acquire(|_| {}).await);
        }
        assert!((saved().tokens - 4.0).abs() < 0.01, "{:?}", saved());
        // …until the bucket runs dry: that is saved before the wait.
        let waiting = async {
            drop(p.acquire(|_| {}).await);
        };
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut waiting)
                .await
                .is_err(),
            "the sixth request waits for a token"
        );
        assert!(saved().tokens < 0.1, "{:?}", saved());
        // A restart now starts from the spent bucket, not a full one.
        assert!(Pacer::load(&c, store.clone()).wait_hint() > Duration::from_secs(50));
        waiting.await;
        // A minute later, the next change is saved again.
        tokio::time::advance(Duration::from_secs(61)).await;
        let before = saved().at;
        drop(p.acquire(|_| {}).await);
        assert!(saved().at > before, "{:?}", saved());
    }
}
