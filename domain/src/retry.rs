//! How often and how long to retry a throttled or failed post.

use std::time::Duration;

/// Exponential backoff with full jitter, bounded in attempts and in total time.
///
/// The delay before retry `n` (from 0) is a uniformly random duration in
/// `[0, min(max_delay, base_delay * 2^n))` (AWS's "full jitter"), which spreads retries of
/// many connections throttled at once instead of sending them back in a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per post, the first included.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry.
    pub base_delay: Duration,
    /// The highest backoff ceiling.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
            budget: Duration::from_secs(5),
        }
    }
}

/// The share of a fan-out's length that its slow clients may add to it (see
/// [`RetryPolicy::slow_tail_grace`]).
pub const SLOW_TAIL_SHARE: f64 = 0.10;
/// The least grace slow clients get at a fan-out's end: enough for two retries of a small
/// push's one throttled post under the default backoff (ceilings 25 and 50 ms).
pub const SLOW_TAIL_FLOOR: Duration = Duration::from_millis(100);

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first retry); `unit` is a random
    /// number in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// How long connections that have answered nothing but 429 may go on retrying once
    /// every other connection of the fan-out has had its first post answered, after a
    /// fan-out of `fan_out` until then: [`SLOW_TAIL_SHARE`] of it, at least
    /// [`SLOW_TAIL_FLOOR`]. A client whose buffer stays full would otherwise hold the whole
    /// push (and its Lambda invocation) for its retries' backoff, about half a second with
    /// the defaults; past the grace it is reported failed, and re-enqueued with the other
    /// failures.
    pub fn slow_tail_grace(&self, fan_out: Duration) -> Duration {
        fan_out.mul_f64(SLOW_TAIL_SHARE).max(SLOW_TAIL_FLOOR)
    }

    /// Whether another attempt may start after `attempts_made` attempts, `elapsed` since the
    /// first, and a wait of `delay`.
    pub fn allows_retry(&self, attempts_made: u32, elapsed: Duration, delay: Duration) -> bool {
        attempts_made < self.max_attempts && elapsed.saturating_add(delay) <= self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            budget: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_backoff_ceiling_doubles_with_each_retry_until_the_maximum() {
        let ceilings: Vec<_> = (0..5).map(|n| policy().delay(n, 1.0)).collect();

        assert_eq!(
            ceilings,
            [100, 200, 400, 500, 500].map(Duration::from_millis)
        );
    }

    #[test]
    fn slow_clients_may_add_a_share_of_the_fan_out_and_at_least_the_floor() {
        assert_eq!(
            policy().slow_tail_grace(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
        assert_eq!(
            policy().slow_tail_grace(Duration::from_millis(20)),
            SLOW_TAIL_FLOOR
        );
    }

    #[test]
    fn full_jitter_scales_the_ceiling_by_the_random_unit() {
        assert_eq!(policy().delay(1, 0.25), Duration::from_millis(50));
        assert_eq!(policy().delay(1, 0.0), Duration::ZERO);
    }

    #[test]
    fn a_huge_retry_number_does_not_overflow() {
        assert_eq!(policy().delay(u32::MAX, 1.0), Duration::from_millis(500));
    }

    #[test]
    fn retries_stop_after_the_last_attempt() {
        assert!(policy().allows_retry(3, Duration::ZERO, Duration::ZERO));
        assert!(!policy().allows_retry(4, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn retries_stop_when_the_wait_would_overrun_the_time_budget() {
        let policy = policy();

        assert!(policy.allows_retry(1, Duration::from_millis(1_800), Duration::from_millis(200)));
        assert!(!policy.allows_retry(1, Duration::from_millis(1_900), Duration::from_millis(200)));
    }
}
