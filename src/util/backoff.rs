//! The one backoff formula: after the n-th failure in a row, wait `base × 2^(n−1)`, at
//! most `max`. Sync runs, browser re-reads, attachment downloads, request retries, 429
//! cooldowns and unreadable ZIPs all back off this way, each with its own base and cap.

use std::time::Duration;

/// The wait after `failures` failures in a row (none after none); saturates, never
/// overflows.
pub fn backoff(base: Duration, failures: u32, max: Duration) -> Duration {
    let Some(doublings) = failures.checked_sub(1) else {
        return Duration::ZERO;
    };
    base.saturating_mul(1u32 << doublings.min(31)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(6 * 3600));
        let waits: Vec<u64> = (0..11).map(|n| backoff(base, n, max).as_secs()).collect();
        assert_eq!(
            waits,
            [0, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600]
        );
        assert_eq!(backoff(base, u32::MAX, max), max);
        assert_eq!(
            backoff(Duration::MAX, 3, Duration::MAX),
            Duration::MAX,
            "saturates"
        );
    }
}
