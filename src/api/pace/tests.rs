use super::control::{Control, FIRST_STEPS, MIN_RATE, STEPS};
use super::*;

fn cfg(pacing: Pacing, burst: u32, per_min: f64, per_sec: f64) -> ApiConfig {
    ApiConfig {
        pacing,
        burst,
        refill_per_minute: per_min,
        max_per_second: per_sec,
        rate_limit_base_secs: 5,
        rate_limit_max_secs: 900,
        ..ApiConfig::default()
    }
}

fn adaptive(burst: u32, per_min: f64, per_sec: f64) -> ApiConfig {
    cfg(Pacing::Adaptive, burst, per_min, per_sec)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 + 1e-6 * b.abs()
}

/// Takes a token at `now` or panics with the wait.
fn take(c: &mut Control, now: Instant) {
    if let Some(w) = c.try_take(now) {
        panic!("expected to go at once, must wait {w:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn fixed_mode_bursts_then_refills_at_its_rate() {
    let p = Pacer::new(&cfg(Pacing::Fixed, 3, 60.0, 1000.0));
    let start = Instant::now();
    for _ in 0..3 {
        drop(p.acquire(|_| {}).await);
    }
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "the burst goes at once"
    );
    drop(p.acquire(|_| {}).await);
    let e = start.elapsed();
    assert!(
        e >= Duration::from_millis(999) && e <= Duration::from_millis(1100),
        "{e:?}"
    );
    // A 429 leaves the rate where it is in fixed mode.
    p.on_rate_limited(None).await;
    assert!(close(p.rate_per_minute(), 60.0));
}

#[tokio::test(start_paused = true)]
async fn the_ceiling_spaces_requests_however_large_the_budget() {
    for pacing in [Pacing::Adaptive, Pacing::Fixed] {
        let p = Pacer::new(&cfg(pacing, 1000, 60_000.0, 2.0));
        let start = Instant::now();
        for _ in 0..11 {
            drop(p.acquire(|_| {}).await);
        }
        // 11 requests at 2 a second: the last one 5 s after the first.
        let e = start.elapsed();
        assert!(e >= secs(4.99) && e <= secs(5.01), "{pacing:?}: {e:?}");
    }
}

#[test]
fn adaptive_starts_with_the_burst_and_raises_the_rate_only_when_it_holds_requests_back() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(5, 1.0, 2.0)), t0);
    let mut now = t0;
    for _ in 0..5 {
        take(&mut c, now);
        c.on_success();
        now += secs(0.5);
    }
    // The burst did not change the rate: the budget, not the rate, was the limit.
    assert!(close(c.rate(), 1.0 / 60.0), "{}", c.rate());
    // The next request waits for a token at one a minute (minus what refilled meanwhile).
    let w = c.try_take(now).expect("the budget is spent");
    assert!(w > secs(55.0) && w <= secs(60.0), "{w:?}");
    now += w;
    take(&mut c, now);
    c.on_success();
    // That success was held back by the rate: the rate doubles (a slow rate) or rises
    // by ceiling / FIRST_STEPS, whichever is less.
    assert!(
        close(
            c.rate(),
            (2.0 / 60.0_f64).min(1.0 / 60.0 + 2.0 / FIRST_STEPS)
        ),
        "{}",
        c.rate()
    );
}

#[test]
fn a_429_halves_the_rate_and_the_probe_doubles_up_to_its_cap() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(1, 60.0, 2.0)), t0);
    assert!(close(c.rate(), 1.0));
    let mut now = t0;
    take(&mut c, now);
    let w = c.on_rate_limited(now, None);
    assert_eq!(w, secs(5.0), "the first probe");
    assert!(close(c.rate(), 0.5));
    assert_eq!(c.threshold(), Some(0.5), "half the refused rate");
    // The probe also waits for a token at the halved rate (2 s, less than the probe).
    assert_eq!(c.wait(now), Some(secs(5.0)));
    now += secs(5.0);
    take(&mut c, now);
    let mut waits = vec![];
    for _ in 0..10 {
        waits.push(c.on_rate_limited(now, None).as_secs());
    }
    assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 900, 900, 900]);
    // Halved on every 429, down to one every 15 minutes; the threshold is the first's.
    assert!(close(c.rate(), MIN_RATE), "{}", c.rate());
    assert_eq!(c.threshold(), Some(0.5));
    // A success ends the run of 429s: the next probe starts at 5 s again.
    now += secs(900.0);
    take(&mut c, now);
    c.on_success();
    assert_eq!(c.on_rate_limited(now, None), secs(5.0));
}

#[test]
fn without_retry_after_the_probe_waits_for_a_token_at_the_halved_rate() {
    // A stingy service (one a minute) is not probed every 5 seconds.
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(1, 2.0, 2.0)), t0);
    take(&mut c, t0);
    c.on_rate_limited(t0, None);
    // Rate 1/min: the probe's 5 s are not enough, the token takes 60 s.
    let w = c.wait(t0).expect("a wait");
    assert!(w >= secs(59.9) && w <= secs(60.0), "{w:?}");
}

#[test]
fn retry_after_is_honoured_and_one_request_goes_then() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(1, 1.0, 2.0)), t0);
    take(&mut c, t0);
    assert_eq!(c.on_rate_limited(t0, Some(secs(7.0))), secs(7.0));
    assert_eq!(c.wait(t0 + secs(6.0)), Some(secs(1.0)));
    take(&mut c, t0 + secs(7.0));
    // The next one waits for the (halved) rate again.
    assert!(c.wait(t0 + secs(7.0)).expect("paced") > secs(100.0));
    // A Retry-After beyond an hour is cut to the hour.
    assert_eq!(
        c.on_rate_limited(t0, Some(Duration::from_secs(u64::MAX))),
        MAX_SERVER_WAIT
    );
    assert_eq!(c.on_rate_limited(t0, Some(Duration::MAX)), MAX_SERVER_WAIT);
}

#[test]
fn below_the_threshold_the_rate_doubles_back_then_grows_by_a_fixed_step() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(1, 120.0, 2.0)), t0);
    let mut now = t0;
    take(&mut c, now);
    c.on_rate_limited(now, None); // rate 1, threshold 1
    take_after_wait(&mut c, &mut now);
    c.on_rate_limited(now, None); // rate 0.5 (the same run: threshold stays 1)
    take_after_wait(&mut c, &mut now);
    c.on_rate_limited(now, None); // rate 0.25
    assert!(close(c.rate(), 0.25));
    assert_eq!(c.threshold(), Some(1.0));
    let mut rates = vec![];
    for _ in 0..4 {
        take_after_wait(&mut c, &mut now);
        c.on_success();
        rates.push(c.rate());
    }
    let step = 1.0 / STEPS;
    let want = [0.5, 1.0, 1.0 + step, 1.0 + 2.0 * step];
    for (got, want) in rates.iter().zip(want) {
        assert!(close(*got, want), "{rates:?}");
    }
}

/// Waits (in simulated time) until `c` lets a request go, and takes it.
fn take_after_wait(c: &mut Control, now: &mut Instant) {
    while let Some(w) = c.try_take(*now) {
        *now += w;
    }
}

#[test]
fn the_rate_never_exceeds_the_ceiling() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(1, 60.0, 2.0)), t0);
    let mut now = t0;
    for _ in 0..500 {
        take_after_wait(&mut c, &mut now);
        c.on_success();
    }
    assert!(close(c.rate(), 2.0), "{}", c.rate());
    let start = now;
    for _ in 0..100 {
        take_after_wait(&mut c, &mut now);
        c.on_success();
    }
    assert!(now - start >= secs(49.5), "{:?}", now - start);
}

/// A service with a token bucket: `capacity`, refilled at `per_sec`; a refused request
/// costs nothing (as the fake server models it).
struct Service {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl Service {
    fn admit(&mut self, now: Instant) -> bool {
        self.tokens =
            (self.tokens + (now - self.at).as_secs_f64() * self.per_sec).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Drives a controller against a service for `n` requests; (requests, 429s, time).
fn drive(c: &mut Control, s: &mut Service, now: &mut Instant, n: u32) -> (u32, u32, Duration) {
    let (mut ok, mut refused, start) = (0, 0, *now);
    while ok < n {
        take_after_wait(c, now);
        if s.admit(*now) {
            ok += 1;
            c.on_success();
        } else {
            refused += 1;
            c.on_rate_limited(*now, None);
        }
        *now += secs(0.05);
    }
    (ok, refused, *now - start)
}

#[test]
fn against_a_bucket_of_200_refilled_once_a_minute_the_steady_state_is_polite_and_full_speed() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(200, 1.0, 2.0)), t0);
    let mut s = Service {
        capacity: 200.0,
        per_sec: 1.0 / 60.0,
        tokens: 200.0,
        at: t0,
    };
    let mut now = t0;
    // The burst, then learning the rate.
    let (_, learning, _) = drive(&mut c, &mut s, &mut now, 260);
    assert!(learning <= 6, "{learning} 429s while learning");
    // Steady state: fewer than one 429 per 100 requests, at the service's rate.
    let (ok, refused, took) = drive(&mut c, &mut s, &mut now, 600);
    assert!(
        f64::from(refused) < f64::from(ok) / 100.0,
        "{refused} 429s in {ok}"
    );
    let per_min = f64::from(ok) / took.as_secs_f64() * 60.0;
    assert!(
        per_min > 0.9,
        "{per_min:.3} a minute against a service of 1"
    );
}

#[test]
fn against_a_generous_service_the_rate_climbs_to_the_ceiling_quickly() {
    let t0 = Instant::now();
    let mut c = Control::new(tuning(&adaptive(200, 1.0, 2.0)), t0);
    let mut s = Service {
        capacity: 300.0,
        per_sec: 5.0,
        tokens: 300.0,
        at: t0,
    };
    let mut now = t0;
    let (_, refused, took) = drive(&mut c, &mut s, &mut now, 400);
    assert_eq!(refused, 0);
    // 200 at the ceiling (100 s), then the climb from one a minute to two a second
    // (doubling, then by steps of a fiftieth of the ceiling): a few minutes.
    assert!(took < secs(100.0 + 240.0), "{took:?}");
    assert!(close(c.rate(), 2.0));
}

#[tokio::test(start_paused = true)]
async fn a_call_gives_up_after_too_many_429s_in_a_row_or_a_wait_beyond_the_longest_probe() {
    let p = Pacer::new(&adaptive(100, 60.0, 2.0));
    for i in 1..=MAX_429_IN_A_ROW {
        let c = p.on_rate_limited(Some(Duration::ZERO)).await;
        assert!(!c.give_up, "{i}");
    }
    assert!(p.on_rate_limited(Some(Duration::ZERO)).await.give_up);
    let p = Pacer::new(&adaptive(100, 60.0, 2.0));
    let c = p.on_rate_limited(Some(Duration::from_secs(3600))).await;
    assert_eq!((c.wait, c.give_up), (MAX_SERVER_WAIT, true));
    assert_eq!(p.rate_limited(), 1);
}

#[test]
fn saved_state_carries_the_rate_the_cooldown_and_the_spent_bucket() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("rt");
    rt.block_on(async {
        let c = adaptive(200, 1.0, 2.0);
        let p = Pacer::new(&c);
        p.on_rate_limited(Some(Duration::from_secs(600))).await;
        let saved = p.snapshot();
        assert!(saved.tokens <= 1.0, "{}", saved.tokens);
        let until = saved.cooldown_until.expect("cooldown");
        assert!(until > now_secs() + 590.0);
        assert!(close(saved.rate_per_sec.expect("rate"), 1.0 / 120.0));
        let resumed = Pacer::from_state(&c, Some(saved));
        assert!(resumed.wait_hint() > Duration::from_secs(590));
        assert!(close(resumed.rate_per_minute(), 0.5));
        // An old cooldown has expired and the bucket has refilled meanwhile, at the
        // saved rate.
        let old = PaceState {
            tokens: 0.0,
            at: now_secs() - 3600.0,
            cooldown_until: Some(now_secs() - 10.0),
            consecutive_429: 1,
            rate_per_sec: Some(1.0 / 60.0),
            threshold_per_sec: None,
        };
        let resumed = Pacer::from_state(&c, Some(old));
        assert_eq!(resumed.wait_hint(), Duration::ZERO);
        assert!((resumed.snapshot().tokens - 60.0).abs() < 1.0);
        // A state saved before the rate was (the fixed bucket of earlier versions).
        let legacy: PaceState = serde_json::from_str(
            r#"{"tokens":3.0,"at":1.0,"cooldown_until":null,"consecutive_429":0}"#,
        )
        .expect("reads");
        assert_eq!(legacy.rate_per_sec, None);
        assert!(close(
            Pacer::from_state(&c, Some(legacy)).rate_per_minute(),
            1.0
        ));
    });
}

#[test]
fn absurd_saved_state_is_bounded() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("rt");
    rt.block_on(async {
        let c = adaptive(200, 1.0, 2.0);
        let now = now_secs();
        for (tokens, at, until, rate) in [
            (0.0, now, now + 10_000_000_000.0, 1e300),
            (0.0, now, 9.2e18, -1.0),
            (0.0, now, f64::MAX, f64::NAN),
            (f64::NAN, f64::NAN, f64::INFINITY, f64::INFINITY),
            (f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.0),
            (-5.0, now + 1e300, now + 60.0, 1e-300),
        ] {
            let p = Pacer::from_state(
                &c,
                Some(PaceState {
                    tokens,
                    at,
                    cooldown_until: Some(until),
                    consecutive_429: u32::MAX,
                    rate_per_sec: Some(rate),
                    threshold_per_sec: Some(rate),
                }),
            );
            assert!(
                p.wait_hint() <= MAX_SERVER_WAIT,
                "{tokens} {at} {until}: {:?}",
                p.wait_hint()
            );
            let s = p.snapshot();
            assert!((0.0..=200.0).contains(&s.tokens), "{s:?}");
            let r = s.rate_per_sec.expect("rate");
            assert!((MIN_RATE..=2.0).contains(&r), "{s:?}");
            // Another 429 after that saturates instead of overflowing.
            assert!(p.on_rate_limited(None).await.wait <= Duration::from_secs(900));
        }
    });
}

#[tokio::test(start_paused = true)]
async fn a_poisoned_controller_still_paces() {
    let p = Pacer::new(&cfg(Pacing::Fixed, 1, 60.0, 1000.0));
    std::thread::scope(|s| {
        let poisoner = s.spawn(|| {
            let _held = p.control.lock();
            panic!("a panic while the controller is held");
        });
        assert!(poisoner.join().is_err());
    });
    assert!(p.control.is_poisoned());
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
struct Memory(Mutex<std::collections::BTreeMap<String, PaceState>>);

impl PaceStore for Memory {
    fn load(&self, account: Option<&str>) -> Option<PaceState> {
        self.0
            .lock()
            .expect("lock")
            .get(&state_key(account))
            .cloned()
    }
    fn save(
        &self,
        account: Option<&str>,
        s: &PaceState,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .lock()
            .expect("lock")
            .insert(state_key(account), s.clone());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_state_is_saved_when_the_bucket_runs_dry_and_otherwise_once_a_minute() {
    let store = Arc::new(Memory::default());
    let c = cfg(Pacing::Fixed, 5, 1.0, 1000.0);
    let saved = || -> PaceState { store.load(None).expect("saved state") };
    let p = Pacer::load(&c, store.clone(), None);
    assert!(store.load(None).is_none());
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
    assert!(Pacer::load(&c, store.clone(), None).wait_hint() > Duration::from_secs(50));
    waiting.await;
    // A minute later, the next change is saved again.
    tokio::time::advance(Duration::from_secs(61)).await;
    let before = saved().at;
    drop(p.acquire(|_| {}).await);
    assert!(saved().at > before, "{:?}", saved());
}

#[tokio::test(start_paused = true)]
async fn the_state_follows_the_account_the_session_names() {
    let store = Arc::new(Memory::default());
    let c = adaptive(200, 1.0, 2.0);
    // Account A learnt a slow rate and is cooling down; B has never been seen.
    let a = PaceState {
        tokens: 0.0,
        at: now_secs(),
        cooldown_until: Some(now_secs() + 300.0),
        consecutive_429: 1,
        rate_per_sec: Some(1.0 / 120.0),
        threshold_per_sec: Some(1.0 / 120.0),
    };
    store.save(Some("acct-a"), &a).expect("save");
    // Credentials not verified yet: nothing known, a fresh pacer.
    let p = Pacer::load(&c, store.clone(), None);
    assert_eq!(p.wait_hint(), Duration::ZERO);
    // The exchange names account A: its state is taken up.
    p.adopt_account("acct-a").await;
    assert_eq!(p.account().as_deref(), Some("acct-a"));
    assert!(p.wait_hint() > Duration::from_secs(290));
    assert!(close(p.rate_per_minute(), 0.5));
    // A pacer for account B saves under B and leaves A alone.
    let q = Pacer::load(&c, store.clone(), None);
    q.adopt_account("acct-b").await;
    drop(q.acquire(|_| {}).await);
    q.save().await;
    assert!(store.load(Some("acct-b")).is_some());
    assert_eq!(
        store.load(Some("acct-a")).expect("A").rate_per_sec,
        Some(1.0 / 120.0)
    );
    // A restart with credentials last verified for A starts from A's state at once.
    let r = Pacer::load(&c, store.clone(), Some("acct-a".into()));
    assert!(r.wait_hint() > Duration::from_secs(290));
}
