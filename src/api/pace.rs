//! Request pacing for chatgpt.com: a token bucket tuned to the service's observed
//! limits (a burst of about 200 requests, then about one a minute), at most
//! `max_in_flight` requests at once, and a cooldown after 429s that honours
//! `Retry-After` or backs off exponentially with jitter. The bucket and cooldown are
//! saved in the archive so a restart does not hammer the server.

use crate::archive::Archive;
use crate::config::ApiConfig;
use crate::model::time::now_secs;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

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

struct Bucket {
    tokens: f64,
    refilled: Instant,
    cooldown_until: Option<Instant>,
    consecutive_429: u32,
}

/// The pacer shared by all requests of a client.
pub struct Pacer {
    bucket: Mutex<Bucket>,
    in_flight: Semaphore,
    burst: f64,
    per_sec: f64,
    base_backoff: Duration,
    max_backoff: Duration,
    /// Where a cooldown is saved the moment a 429 sets it (see [`Pacer::load`]).
    store: Option<Archive>,
}

impl Pacer {
    /// A pacer with a full bucket and no cooldown.
    pub fn new(cfg: &ApiConfig) -> Self {
        Self::from_state(cfg, None)
    }

    /// A pacer resuming saved state (refilled for the time since it was saved).
    pub fn from_state(cfg: &ApiConfig, saved: Option<PaceState>) -> Self {
        let burst = f64::from(cfg.burst.max(1));
        let per_sec = cfg.refill_per_minute / 60.0;
        let now_wall = now_secs();
        let now = Instant::now();
        let (tokens, cooldown_until, consecutive_429) = match saved {
            Some(s) => {
                let elapsed = (now_wall - s.at).max(0.0);
                let tokens = (s.tokens + elapsed * per_sec).min(burst);
                let cooldown = s
                    .cooldown_until
                    .filter(|&u| u > now_wall)
                    .map(|u| now + Duration::from_secs_f64(u - now_wall));
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
            base_backoff: Duration::from_secs(cfg.rate_limit_base_secs),
            max_backoff: Duration::from_secs(cfg.rate_limit_max_secs.max(cfg.rate_limit_base_secs)),
            store: None,
        }
    }

    /// Loads saved state from the archive (blocking; call from a blocking context).
    /// The pacer then also saves its state there whenever a 429 sets a cooldown, so a
    /// process stopped while it waits one out does not forget it.
    pub fn load(cfg: &ApiConfig, archive: &Archive) -> Self {
        Self {
            store: Some(archive.clone()),
            ..Self::from_state(cfg, archive.state(STATE_KEY).ok().flatten())
        }
    }

    /// The state to save.
    pub fn snapshot(&self) -> PaceState {
        let Ok(mut b) = self.bucket.lock() else {
            return PaceState::default();
        };
        self.refill(&mut b, Instant::now());
        let now_wall = now_secs();
        PaceState {
            tokens: b.tokens,
            at: now_wall,
            cooldown_until: b
                .cooldown_until
                .and_then(|u| u.checked_duration_since(Instant::now()))
                .map(|d| now_wall + d.as_secs_f64()),
            consecutive_429: b.consecutive_429,
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.refilled = now;
    }

    /// How long until a request may go, reserving its token when it may go now.
    fn try_take(&self) -> Option<Duration> {
        let Ok(mut b) = self.bucket.lock() else {
            return None;
        };
        let now = Instant::now();
        if let Some(until) = b.cooldown_until {
            if until > now {
                return Some(until - now);
            }
            b.cooldown_until = None;
        }
        self.refill(&mut b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            let missing = 1.0 - b.tokens;
            Some(Duration::from_secs_f64(missing / self.per_sec.max(1e-9)))
        }
    }

    /// The wait before the next request could start, without taking anything.
    pub fn wait_hint(&self) -> Duration {
        let Ok(mut b) = self.bucket.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        if let Some(until) = b.cooldown_until.filter(|u| *u > now) {
            return until - now;
        }
        self.refill(&mut b, now);
        if b.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec.max(1e-9))
        }
    }

    /// Waits for a slot and a token. `on_wait` is told about waits of a second or more.
    pub async fn acquire(&self, on_wait: impl Fn(Duration)) -> SemaphorePermit<'_> {
        let permit = match self.in_flight.acquire().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable!("pacer semaphore closed"),
        };
        while let Some(wait) = self.try_take() {
            if wait >= Duration::from_secs(1) {
                on_wait(wait);
            }
            tokio::time::sleep(wait).await;
        }
        permit
    }

    /// Records a 429 and returns the cooldown chosen: `Retry-After` when given, else
    /// `base × 2^(n-1)` capped at the maximum, with up to 25% jitter.
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) -> Duration {
        let wait = self.start_cooldown(retry_after);
        if let Some(archive) = &self.store {
            // A small write (sled flushes it within a second), made at once so that a
            // restart during the wait still honours it.
            if let Err(e) = archive.set_state(STATE_KEY, &self.snapshot()) {
                tracing::warn!("could not save the rate-limit cooldown: {e}");
            }
        }
        wait
    }

    fn start_cooldown(&self, retry_after: Option<Duration>) -> Duration {
        let Ok(mut b) = self.bucket.lock() else {
            return self.base_backoff;
        };
        b.consecutive_429 = b.consecutive_429.saturating_add(1);
        let wait = match retry_after {
            Some(d) => d,
            None => {
                let exp = b.consecutive_429.saturating_sub(1).min(16);
                let backoff = self
                    .base_backoff
                    .saturating_mul(1u32 << exp)
                    .min(self.max_backoff);
                backoff
                    .mul_f64(1.0 + fastrand::f64() * 0.25)
                    .min(self.max_backoff.mul_f64(1.25))
            }
        };
        b.cooldown_until = Some(Instant::now() + wait);
        // The server says the budget is spent.
        b.tokens = 0.0;
        wait
    }

    /// Records a success (resets the 429 backoff).
    pub fn on_success(&self) {
        if let Ok(mut b) = self.bucket.lock() {
            b.consecutive_429 = 0;
        }
    }
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
            p.on_rate_limited(Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        let start = Instant::now();
        drop(p.acquire(|_| {}).await);
        assert!(start.elapsed() >= Duration::from_secs(7));
        let first = p.on_rate_limited(None);
        let second = p.on_rate_limited(None);
        assert!(
            first >= Duration::from_secs(120) && first <= Duration::from_secs(150),
            "{first:?}"
        );
        assert!(
            second >= Duration::from_secs(240) && second <= Duration::from_secs(300),
            "{second:?}"
        );
        for _ in 0..10 {
            p.on_rate_limited(None);
        }
        assert!(p.on_rate_limited(None) <= Duration::from_secs(1125));
        p.on_success();
        let w = p.on_rate_limited(None);
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
            p.on_rate_limited(Some(Duration::from_secs(600)));
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
}
