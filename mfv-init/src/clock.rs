//! Time since kernel start, behind a small trait so tests can run on a fake clock.

use std::time::Duration;

use anyhow::Context;
use nix::time::{ClockId, clock_gettime};

/// A clock that reads time since kernel start and can sleep.
pub trait Clock {
    /// Time since the kernel started.
    fn uptime(&self) -> Duration;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

/// CLOCK_BOOTTIME: time since kernel start, readable before /proc is mounted.
#[derive(Debug, Default)]
pub struct BootClock;

impl BootClock {
    /// Reads CLOCK_BOOTTIME.
    pub fn read() -> anyhow::Result<Duration> {
        let now =
            clock_gettime(ClockId::CLOCK_BOOTTIME).context("clock_gettime(CLOCK_BOOTTIME)")?;
        Ok(Duration::from(now))
    }
}

impl Clock for BootClock {
    fn uptime(&self) -> Duration {
        // CLOCK_BOOTTIME exists on every kernel since 2.6.39; if reading it ever failed, a zero
        // time stamp in a log line is the honest answer.
        BootClock::read().unwrap_or_default()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_moves_forward() {
        let clock = BootClock;
        let first = clock.uptime();
        clock.sleep(Duration::from_millis(2));
        assert!(clock.uptime() > first);
        assert!(first > Duration::ZERO);
    }
}
