//! Time as a parameter: expiry and lockout are computed from a [`Clock`], so tests move time
//! by hand instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Seconds since 1970-01-01T00:00:00Z, as stored in SQLite. Shown as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `self` plus `duration` (saturating; durations beyond i64 seconds mean "never").
    pub fn plus(self, duration: Duration) -> Timestamp {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(seconds))
    }

    /// `self` minus `duration` (saturating).
    pub fn minus(self, duration: Duration) -> Timestamp {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(seconds))
    }
}

/// `2026-11-26T04:53:00Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = mfv_linux::utc::UtcTime::from_unix_seconds(self.0);
        write!(f, "{}Z", time.rfc3339_seconds())
    }
}

/// Where the current time comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told: for tests and benchmarks.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let seconds = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        self.0.store(time.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        for (seconds, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_668_780, "2026-11-26T04:53:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(Timestamp(seconds).to_string(), expected, "{seconds}");
        }
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(Timestamp(100));
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), Timestamp(160));
        clock.set(Timestamp(5));
        assert_eq!(clock.now(), Timestamp(5));
        assert_eq!(Timestamp(5).plus(Duration::MAX), Timestamp(i64::MAX));
        assert_eq!(Timestamp(5).minus(Duration::from_secs(10)), Timestamp(-5));
        assert!(SystemClock.now() > Timestamp(1_700_000_000));
    }
}
