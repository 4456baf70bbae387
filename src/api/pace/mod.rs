//! Request pacing for chatgpt.com. The service publishes no limits: public clients
//! report a bucket of about 200 requests refilled at about one a minute, and elsewhere
//! 429s after a few hundred reads that clear within a minute. So by default the pace is
//! learnt ([`Pacing::Adaptive`], see [`control`]): it starts with the configured burst
//! and rate, raises the rate while requests succeed and halves it on a 429. The fixed
//! mode keeps a plain token bucket. Either way one request is in flight at a time (fixed
//! mode: `max_in_flight`) and at most `max_per_second` go out a second.
//!
//! What the pacer learnt (the bucket, the rate, a cooldown) is saved per account (in the
//! archive, through a [`PaceStore`]) as it changes: a cooldown at once, a bucket that has
//! just run dry at once, and otherwise at most once a minute, so a restart during a
//! backfill neither forgets a cooldown nor bursts again. Saves are serialised, so an
//! older state never overwrites a newer one. The account is known once the session
//! exchange names it; until then the state is kept under the account the credentials
//! were last verified for (or, for credentials never verified, under no account).
//!
//! Numbers from outside (the server's `Retry-After`, saved state) are bounded and all
//! arithmetic saturates: nothing here can panic, so the controller's lock is never
//! poisoned, and a poisoned lock would still be used rather than pacing switched off.

pub mod control;

use crate::config::{ApiConfig, Pacing};
use crate::model::time::now_secs;
use control::{Control, Tuning};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The longest wait taken from the server (`Retry-After`) or from saved state.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);
/// While requests go out, the state is saved at most this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(60);
/// 429s in a row after which a call gives up (the run stops; the cooldown is saved).
pub const MAX_429_IN_A_ROW: u32 = 8;

/// What is saved between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PaceState {
    /// Tokens left at `at`.
    pub tokens: f64,
    /// Wall time of `tokens` (epoch seconds).
    pub at: f64,
    /// No request before this wall time (epoch seconds).
    pub cooldown_until: Option<f64>,
    /// 429s in a row (drives the probe delay).
    pub consecutive_429: u32,
    /// The rate learnt, requests a second (adaptive pacing).
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Half the rate the service last refused, requests a second (adaptive pacing).
    #[serde(default)]
    pub threshold_per_sec: Option<f64>,
}

/// State key in the archive for credentials whose account is not known; an account's
/// state is kept under [`state_key`].
pub const STATE_KEY: &str = "api_pace";

/// The archive state key of an account's pacing (`api_pace/<account>`), or
/// [`STATE_KEY`] when the account is not known.
pub fn state_key(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("{STATE_KEY}/{a}"),
        None => STATE_KEY.to_owned(),
    }
}

/// Where a pacer keeps its state between runs, per account. The product keeps it in
/// the archive (see `session`); the client itself knows nothing of storage.
pub trait PaceStore: Send + Sync {
    /// The saved state of this account, if any (blocking).
    fn load(&self, account: Option<&str>) -> Option<PaceState>;
    /// Saves the state of this account durably (blocking).
    fn save(
        &self,
        account: Option<&str>,
        state: &PaceState,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// What a 429 means for the call that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cooldown {
    /// How long nothing goes out.
    pub wait: Duration,
    /// Whether the call should give up (too many 429s in a row, or a wait longer than
    /// the longest probe): the run stops and the next one honours the saved cooldown.
    pub give_up: bool,
}

/// When the state was last saved, and whether the bucket was dry then.
#[derive(Default)]
struct SaveMark {
    at: Option<Instant>,
    dry: bool,
}

/// The pacer shared by all requests of a client.
pub struct Pacer {
    control: Mutex<Control>,
    tuning: Tuning,
    mode: Pacing,
    in_flight: Semaphore,
    /// Where the state is saved (see [`Pacer::load`]).
    store: Option<Arc<dyn PaceStore>>,
    /// The account the state belongs to.
    account: Mutex<Option<String>>,
    /// Held while saving, so saves happen one after another, each of the newest state.
    saved: tokio::sync::Mutex<SaveMark>,
    /// 429s met so far.
    rate_limited: AtomicU64,
}

/// `secs` as a duration: negative or NaN is zero, too large is `Duration::MAX`.
pub(crate) fn secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The controller's tuning from the configuration.
pub fn tuning(cfg: &ApiConfig) -> Tuning {
    let ceiling = if cfg.max_per_second.is_finite() && cfg.max_per_second > 0.0 {
        cfg.max_per_second
    } else {
        2.0
    };
    let start = cfg.refill_per_minute / 60.0;
    Tuning {
        adaptive: cfg.pacing == Pacing::Adaptive,
        burst: f64::from(cfg.burst.max(1)),
        start_rate: if start.is_finite() && start > 0.0 {
            start
        } else {
            1.0 / 60.0
        },
        ceiling,
        probe_base: Duration::from_secs(cfg.rate_limit_base_secs),
        probe_max: Duration::from_secs(cfg.rate_limit_max_secs.max(cfg.rate_limit_base_secs)),
    }
}

impl Pacer {
    /// A pacer with a full bucket and no cooldown.
    pub fn new(cfg: &ApiConfig) -> Self {
        Self::from_state(cfg, None)
    }

    /// A pacer resuming saved state (see [`Control::restore`]).
    pub fn from_state(cfg: &ApiConfig, saved: Option<PaceState>) -> Self {
        let t = tuning(cfg);
        let now = Instant::now();
        let control = match &saved {
            Some(s) => Control::restore(t.clone(), s, now, now_secs()),
            None => Control::new(t.clone(), now),
        };
        let in_flight = match cfg.pacing {
            Pacing::Adaptive => 1,
            Pacing::Fixed => cfg.max_in_flight.max(1) as usize,
        };
        Self {
            control: Mutex::new(control),
            tuning: t,
            mode: cfg.pacing,
            in_flight: Semaphore::new(in_flight),
            store: None,
            account: Mutex::new(None),
            saved: tokio::sync::Mutex::new(SaveMark::default()),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// Loads the state saved for `account` (the one the credentials were last verified
    /// for, when known) from `store` (blocking; call from a blocking context). The pacer
    /// then saves its state there as it changes (see the module docs).
    pub fn load(cfg: &ApiConfig, store: Arc<dyn PaceStore>, account: Option<String>) -> Self {
        let saved = store.load(account.as_deref());
        let mut p = Self::from_state(cfg, saved);
        p.store = Some(store);
        p.account = Mutex::new(account);
        p
    }

    /// The controller, even if a thread panicked while holding it (nothing here panics,
    /// but a poisoned lock must never switch pacing off).
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pacing mode.
    pub fn mode(&self) -> Pacing {
        self.mode
    }

    /// The account the state belongs to, when known.
    pub fn account(&self) -> Option<String> {
        self.account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The state to save.
    pub fn snapshot(&self) -> PaceState {
        self.control().snapshot(Instant::now(), now_secs())
    }

    /// The wait before the next request could start, without taking anything.
    pub fn wait_hint(&self) -> Duration {
        self.control()
            .wait(Instant::now())
            .unwrap_or(Duration::ZERO)
    }

    /// Requests that may go now without waiting for the rate (0 during a cooldown).
    pub fn budget(&self) -> f64 {
        self.control().budget(Instant::now())
    }

    /// The current rate, requests a minute.
    pub fn rate_per_minute(&self) -> f64 {
        self.control().rate() * 60.0
    }

    /// The time `requests` more requests would take at the current pace.
    pub fn eta(&self, requests: u64) -> Duration {
        self.control().eta(requests, Instant::now())
    }

    /// 429s met since this pacer was made.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Waits for a slot, the ceiling and a token. `on_wait` is told about waits of a
    /// second or more.
    pub async fn acquire(&self, on_wait: impl Fn(Duration)) -> SemaphorePermit<'_> {
        let permit = match self.in_flight.acquire().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable!("pacer semaphore closed"),
        };
        let mut waited = false;
        loop {
            let wait = self.control().try_take(Instant::now());
            let Some(wait) = wait else { break };
            if !waited && self.budget() < 1.0 {
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

    /// Records a 429 and returns the cooldown it imposes (see [`control`]). The
    /// cooldown is saved (and flushed) at once, so that a restart during the wait still
    /// honours it.
    pub async fn on_rate_limited(&self, retry_after: Option<Duration>) -> Cooldown {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let (wait, in_a_row) = {
            let mut c = self.control();
            let wait = c.on_rate_limited(Instant::now(), retry_after);
            (wait, c.consecutive_429())
        };
        self.persist(Save::Now).await;
        Cooldown {
            wait,
            give_up: in_a_row > MAX_429_IN_A_ROW || wait > self.tuning.probe_max,
        }
    }

    /// Records a success.
    pub fn on_success(&self) {
        self.control().on_success();
    }

    /// The session named the account: from now on the state is the account's. When
    /// this pacer was keeping it under another (or none), the account's saved state is
    /// taken up when there is one (it knows this account), else this pacer's state is
    /// saved as the account's.
    pub async fn adopt_account(&self, account: &str) {
        if self.account().as_deref() == Some(account) {
            return;
        }
        if let Some(store) = self.store.clone() {
            let key = account.to_owned();
            let saved = crate::util::blocking("reading the request pacing state", move || {
                store.load(Some(&key))
            })
            .await
            .ok()
            .flatten();
            if let Some(s) = saved {
                *self.control() =
                    Control::restore(self.tuning.clone(), &s, Instant::now(), now_secs());
            }
        }
        *self.account.lock().unwrap_or_else(PoisonError::into_inner) = Some(account.to_owned());
        self.persist(Save::Now).await;
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
        let (store, account) = (store.clone(), self.account());
        let saved = crate::util::blocking("saving the request pacing state", move || {
            store.save(account.as_deref(), &state)
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
mod tests;
