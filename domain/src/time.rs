//! Points in time, as milliseconds since the Unix epoch.
//!
//! The domain never reads a clock: callers pass `now` in, from the `Clock` port.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch itself.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down (the unit of a DynamoDB TTL).
    pub const fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// This timestamp moved forward by `duration`, saturating at the far future.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_duration_moves_the_timestamp_forward_by_its_milliseconds() {
        let start = Timestamp::from_unix_secs(10);

        let later = start.saturating_add(Duration::from_millis(1500));

        assert_eq!(later.unix_millis(), 11_500);
        assert_eq!(later.unix_secs(), 11);
        assert_eq!(later.saturating_since(start), Duration::from_millis(1500));
    }

    #[test]
    fn time_since_a_later_timestamp_is_zero_rather_than_negative() {
        let early = Timestamp::from_unix_millis(5);
        let late = Timestamp::from_unix_millis(9);

        assert_eq!(early.saturating_since(late), Duration::ZERO);
    }

    #[test]
    fn adding_a_huge_duration_saturates_instead_of_wrapping() {
        let near_end = Timestamp::from_unix_millis(u64::MAX - 1);

        assert_eq!(
            near_end
                .saturating_add(Duration::from_secs(60))
                .unix_millis(),
            u64::MAX
        );
    }
}
