//! The pacing controller as a pure state machine: time is passed in, nothing sleeps,
//! nothing is saved. [`super::Pacer`] wraps it with the waiting and the saving.
//!
//! A token bucket holds the budget: it starts with `burst` requests and refills at the
//! current rate, up to `burst`. On top of it, requests are spaced by the ceiling
//! (`max_per_second`), however much budget there is.
//!
//! In adaptive mode the rate is learnt (AIMD). A success that had to wait for its token
//! (the rate, not the budget, was what held it back) raises the rate: below the
//! threshold it doubles, back to where the service last refused; above it, it grows by
//! a fixed step, a small fraction of that threshold, so the service is probed gently.
//! Each 429 halves the rate; the first 429 of a run of them sets the threshold to half
//! the rate that met it. Before the service has ever refused, the rate doubles (at
//! most by a fraction of the ceiling a step), so a generous service is reached in a
//! few minutes while a stingy one is overshot at most twofold.
//!
//! After a 429 nothing goes before its `Retry-After` (at most [`MAX_SERVER_WAIT`]), or
//! without one, a probe delay that doubles with every 429 in a row (`probe_base` up to
//! `probe_max`). Without `Retry-After` the bucket is emptied too, so the probe also
//! waits for a token at the halved rate: a stingy service that refills once a minute is
//! not probed every few seconds. With `Retry-After` the service said when: one request
//! goes then.

use super::{MAX_SERVER_WAIT, PaceState, secs_f64};
use std::time::Duration;
use tokio::time::Instant;

/// The slowest rate: a request every 15 minutes (the longest probe delay).
pub const MIN_RATE: f64 = 1.0 / 900.0;
/// Above the threshold, the rate grows by threshold / `STEPS` per success.
pub const STEPS: f64 = 200.0;
/// Before any 429, the rate doubles per success, by at most ceiling / `FIRST_STEPS`.
pub const FIRST_STEPS: f64 = 50.0;

/// How a controller is tuned (from the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Learn the rate (else a fixed bucket).
    pub adaptive: bool,
    /// Bucket capacity (requests).
    pub burst: f64,
    /// The rate to start from (fixed mode: the rate), requests a second.
    pub start_rate: f64,
    /// The most requests a second.
    pub ceiling: f64,
    /// First wait after a 429 without `Retry-After`.
    pub probe_base: Duration,
    /// Longest wait after 429s without `Retry-After`.
    pub probe_max: Duration,
}

impl Tuning {
    fn clamp_rate(&self, rate: f64) -> f64 {
        if !rate.is_finite() {
            return self.start_rate.clamp(MIN_RATE, self.ceiling);
        }
        rate.clamp(MIN_RATE.min(self.ceiling), self.ceiling)
    }
}

/// The controller's state.
#[derive(Clone, Debug)]
pub struct Control {
    t: Tuning,
    tokens: f64,
    refilled: Instant,
    rate: f64,
    threshold: Option<f64>,
    next_at: Option<Instant>,
    cooldown_until: Option<Instant>,
    consecutive_429: u32,
    /// The request being let through had to wait for its token.
    held: bool,
    /// The last request let through had to wait for its token (the rate held it back).
    last_held: bool,
}

/// `now + wait`, saturating far in the future instead of overflowing.
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(MAX_SERVER_WAIT))
        .unwrap_or(now)
}

impl Control {
    /// A fresh controller: a full bucket at the starting rate, no cooldown.
    pub fn new(t: Tuning, now: Instant) -> Self {
        let rate = if t.adaptive {
            t.clamp_rate(t.start_rate)
        } else {
            t.start_rate
        };
        Self {
            tokens: t.burst,
            refilled: now,
            rate,
            threshold: None,
            next_at: None,
            cooldown_until: None,
            consecutive_429: 0,
            held: false,
            last_held: false,
            t,
        }
    }

    /// A controller resuming saved state (`now_wall`: the wall clock, epoch seconds).
    /// Saved values are not trusted: the bucket is refilled for the time since it was
    /// saved and bounded, the rate kept within the ceiling, a cooldown cut to the
    /// longest this controller would choose.
    pub fn restore(t: Tuning, s: &PaceState, now: Instant, now_wall: f64) -> Self {
        let mut c = Self::new(t, now);
        if c.t.adaptive {
            if let Some(r) = s.rate_per_sec {
                c.rate = c.t.clamp_rate(r);
            }
            c.threshold = s
                .threshold_per_sec
                .filter(|x| x.is_finite() && *x > 0.0)
                .map(|x| x.min(c.t.ceiling));
        }
        let elapsed = if (now_wall - s.at).is_finite() {
            (now_wall - s.at).max(0.0)
        } else {
            0.0
        };
        let left = if s.tokens.is_finite() { s.tokens } else { 0.0 };
        c.tokens = (left + elapsed * c.rate).clamp(0.0, c.t.burst);
        let longest = c.t.probe_max.max(MAX_SERVER_WAIT);
        c.cooldown_until = s
            .cooldown_until
            .filter(|&u| u > now_wall)
            .map(|u| later(now, secs_f64(u - now_wall).min(longest)));
        c.consecutive_429 = s.consecutive_429;
        c
    }

    /// The state to save.
    pub fn snapshot(&mut self, now: Instant, now_wall: f64) -> PaceState {
        self.refill(now);
        PaceState {
            tokens: self.tokens,
            at: now_wall,
            cooldown_until: self
                .cooldown_until
                .and_then(|u| u.checked_duration_since(now))
                .map(|d| now_wall + d.as_secs_f64()),
            consecutive_429: self.consecutive_429,
            rate_per_sec: Some(self.rate),
            threshold_per_sec: self.threshold,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.rate).min(self.t.burst);
            self.refilled = now;
        }
    }

    /// How long until a request may go (`None`: now), without taking anything: the
    /// cooldown, and the token still missing when it ends.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        if let Some(until) = self.cooldown_until {
            if until > now {
                let since = until.saturating_duration_since(self.refilled).as_secs_f64();
                let at_end = (self.tokens + since * self.rate).min(self.t.burst);
                let token = secs_f64((1.0 - at_end) / self.rate.max(1e-12));
                self.held = true;
                return Some(until.saturating_duration_since(now).saturating_add(token));
            }
            self.cooldown_until = None;
        }
        self.refill(now);
        if self.tokens < 1.0 {
            self.held = true;
            return Some(secs_f64((1.0 - self.tokens) / self.rate.max(1e-12)).max(MIN_WAIT));
        }
        match self.next_at {
            Some(at) if at > now => Some(at.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// Takes a token when a request may go now; else the wait.
    pub fn try_take(&mut self, now: Instant) -> Option<Duration> {
        if let Some(wait) = self.wait(now) {
            return Some(wait);
        }
        self.tokens -= 1.0;
        self.next_at = Some(later(now, secs_f64(1.0 / self.t.ceiling)));
        self.last_held = std::mem::take(&mut self.held);
        None
    }

    /// Requests that may go now without waiting for the rate (the ceiling's spacing
    /// aside): 0 during a cooldown.
    pub fn budget(&mut self, now: Instant) -> f64 {
        if self.cooldown_until.is_some_and(|u| u > now) {
            return 0.0;
        }
        self.refill(now);
        self.tokens.max(0.0)
    }

    /// Records a success: the 429 run is over, and in adaptive mode a success that
    /// was held back by the rate raises it.
    pub fn on_success(&mut self) {
        self.consecutive_429 = 0;
        if !self.t.adaptive || !std::mem::take(&mut self.last_held) {
            return;
        }
        self.rate = match self.threshold {
            Some(t) if self.rate < t => (self.rate * 2.0).min(t),
            Some(t) => self.rate + t / STEPS,
            None => (self.rate * 2.0).min(self.rate + self.t.ceiling / FIRST_STEPS),
        };
        self.rate = self.t.clamp_rate(self.rate);
    }

    /// Records a 429 and returns the wait it imposes (see the module docs).
    pub fn on_rate_limited(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        self.consecutive_429 = self.consecutive_429.saturating_add(1);
        if self.t.adaptive {
            if self.consecutive_429 == 1 {
                self.threshold = Some(self.t.clamp_rate(self.rate / 2.0));
            }
            self.rate = self.t.clamp_rate(self.rate / 2.0);
        }
        let wait = match retry_after {
            Some(d) => d.min(MAX_SERVER_WAIT),
            None => crate::util::backoff(self.t.probe_base, self.consecutive_429, self.t.probe_max),
        };
        let until = later(now, wait);
        self.cooldown_until = Some(until);
        match retry_after {
            // The service said when: one request goes then.
            Some(_) => {
                self.tokens = 1.0;
                self.refilled = until;
            }
            // The budget is spent: the probe also waits for a token at the new rate.
            None => {
                self.tokens = 0.0;
                self.refilled = now;
            }
        }
        wait
    }

    /// 429s in a row so far.
    pub fn consecutive_429(&self) -> u32 {
        self.consecutive_429
    }

    /// The current rate, requests a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Half the rate the service last refused, when it has.
    pub fn threshold(&self) -> Option<f64> {
        self.threshold
    }

    /// The time `requests` more requests take at the current rate and budget: the
    /// cooldown, then the budget at the ceiling, then the rest at the rate.
    pub fn eta(&mut self, requests: u64, now: Instant) -> Duration {
        let cooldown = self
            .cooldown_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        self.refill(now);
        let n = requests as f64;
        let paced = (n - self.tokens.max(0.0)).max(0.0) / self.rate.max(1e-12);
        let spaced = n / self.t.ceiling;
        cooldown.saturating_add(secs_f64(paced.max(spaced)))
    }
}

/// The shortest wait for a token (a sleep of nothing would spin).
const MIN_WAIT: Duration = Duration::from_millis(1);
