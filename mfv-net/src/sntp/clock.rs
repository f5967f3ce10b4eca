//! The clock the client reads and corrects: [`ClockOffset`], the [`ClockSetter`] trait, the
//! system clock behind it and a recording fake.

use std::fmt;
use std::io;
use std::ops::{Add, Neg};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::libc;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime, clock_settime};

/// A signed amount of time by which a clock is off: the correction that makes it right.
/// Positive means the clock is behind and must move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClockOffset {
    nanos: i64,
}

impl ClockOffset {
    /// No offset.
    pub const ZERO: ClockOffset = ClockOffset { nanos: 0 };

    /// An offset of `nanos` nanoseconds (±292 years at most).
    pub const fn from_nanos(nanos: i64) -> ClockOffset {
        ClockOffset { nanos }
    }

    /// A forward correction of `duration`, saturating at 292 years.
    pub fn forward(duration: Duration) -> ClockOffset {
        ClockOffset::from_nanos(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX))
    }

    /// A backward correction of `duration`, saturating at 292 years.
    pub fn backward(duration: Duration) -> ClockOffset {
        -ClockOffset::forward(duration)
    }

    /// The offset in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// The offset in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.nanos as f64 / 1e9
    }

    /// The size of the offset, whatever its direction.
    pub fn magnitude(self) -> Duration {
        Duration::from_nanos(self.nanos.unsigned_abs())
    }

    /// Whether the correction moves the clock backward.
    pub const fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// `time` corrected by this offset.
    pub fn apply_to(self, time: SystemTime) -> SystemTime {
        let corrected = if self.is_negative() {
            time.checked_sub(self.magnitude())
        } else {
            time.checked_add(self.magnitude())
        };
        // Out of range only beyond SystemTime's 292 billion years.
        corrected.unwrap_or(time)
    }
}

impl Neg for ClockOffset {
    type Output = ClockOffset;

    fn neg(self) -> ClockOffset {
        ClockOffset::from_nanos(self.nanos.saturating_neg())
    }
}

impl Add for ClockOffset {
    type Output = ClockOffset;

    fn add(self, other: ClockOffset) -> ClockOffset {
        ClockOffset::from_nanos(self.nanos.saturating_add(other.nanos))
    }
}

/// Seconds with a sign and microseconds: `+0.001234 s`, `-5.000000 s`.
impl fmt::Display for ClockOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.is_negative() { '-' } else { '+' };
        let magnitude = self.magnitude();
        write!(
            f,
            "{sign}{}.{:06} s",
            magnitude.as_secs(),
            magnitude.subsec_micros()
        )
    }
}

/// The clock the client reads its timestamps from and corrects.
pub trait ClockSetter: Send {
    /// The clock's current time.
    fn now(&self) -> SystemTime;

    /// Moves the clock by `offset` at once (it may jump backward).
    fn step(&mut self, offset: ClockOffset) -> io::Result<()>;

    /// Moves the clock by `offset` gradually, so it never jumps and never runs backward.
    fn slew(&mut self, offset: ClockOffset) -> io::Result<()>;
}

/// The system's `CLOCK_REALTIME`. Setting it needs `CAP_SYS_TIME`.
///
/// A step cancels a slew in progress, then reads the clock and sets it with
/// `clock_settime`. A slew is `adjtimex` with `ADJ_OFFSET_SINGLESHOT` (what `adjtime(3)`
/// does): the kernel runs the clock 0.05 % fast or slow until the offset is made up, so
/// 128 ms take 256 s; a new slew replaces the rest of the previous one.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock.
    pub fn new() -> SystemClock {
        SystemClock
    }

    /// The part of the last slew the kernel has not made up yet. Reading it changes
    /// nothing.
    pub fn pending_slew(&self) -> io::Result<ClockOffset> {
        let micros = adjtime_singleshot(libc::ADJ_OFFSET_SS_READ, 0)?;
        #[allow(
            clippy::useless_conversion,
            reason = "c_long is narrower than i64 on 32-bit targets"
        )]
        let micros = i64::from(micros);
        Ok(ClockOffset::from_nanos(micros.saturating_mul(1000)))
    }
}

impl ClockSetter for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn step(&mut self, offset: ClockOffset) -> io::Result<()> {
        adjtime_singleshot(libc::ADJ_OFFSET_SINGLESHOT, 0)?;
        let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
        let nanos = i128::from(now.tv_sec()) * 1_000_000_000
            + i128::from(now.tv_nsec())
            + i128::from(offset.as_nanos());
        let out_of_range = || io::Error::from(io::ErrorKind::InvalidInput);
        let seconds =
            libc::time_t::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range())?;
        let subsec = nanos
            .rem_euclid(1_000_000_000)
            .try_into()
            .map_err(|_| out_of_range())?;
        clock_settime(ClockId::CLOCK_REALTIME, TimeSpec::new(seconds, subsec))?;
        Ok(())
    }

    fn slew(&mut self, offset: ClockOffset) -> io::Result<()> {
        let micros = libc::c_long::try_from(offset.as_nanos() / 1000)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        adjtime_singleshot(libc::ADJ_OFFSET_SINGLESHOT, micros)?;
        Ok(())
    }
}

/// Calls `adjtimex` with `modes` (`ADJ_OFFSET_SINGLESHOT` or `ADJ_OFFSET_SS_READ`) and
/// `micros`, and returns the offset field the kernel left: the slew still to make up before
/// the call.
fn adjtime_singleshot(modes: libc::c_uint, micros: libc::c_long) -> io::Result<libc::c_long> {
    // SAFETY: `timex` is a C struct of integers (and padding); all zeros is a valid value.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    timex.modes = modes;
    timex.offset = micros;
    // SAFETY: the pointer is to a live, initialized `timex` owned by this frame; the kernel
    // reads and writes only that struct, and only during the call.
    let result = unsafe { libc::adjtimex(&mut timex) };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(timex.offset)
}

/// One call a [`RecordingClock`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockChange {
    /// [`ClockSetter::step`].
    Step(ClockOffset),
    /// [`ClockSetter::slew`].
    Slew(ClockOffset),
}

impl ClockChange {
    /// The offset asked for.
    pub fn offset(self) -> ClockOffset {
        match self {
            ClockChange::Step(offset) | ClockChange::Slew(offset) => offset,
        }
    }
}

/// A [`ClockSetter`] that never touches the system clock: a simulated clock that runs with
/// tokio's clock (so a paused test clock stops it too) from a chosen start, records every
/// step and slew and applies each at once, in full. Clones share the clock and the record.
/// [`RecordingClock::failing`] makes every change fail, to test error paths.
#[derive(Debug, Clone)]
pub struct RecordingClock {
    start: SystemTime,
    started: tokio::time::Instant,
    changes: Arc<Mutex<Vec<ClockChange>>>,
    fail: bool,
}

impl Default for RecordingClock {
    fn default() -> RecordingClock {
        RecordingClock::new()
    }
}

impl RecordingClock {
    /// A clock that shows the system's time now and then runs on by itself.
    pub fn new() -> RecordingClock {
        RecordingClock::starting_at(SystemTime::now())
    }

    /// A clock that shows `start` now and then runs on by itself.
    pub fn starting_at(start: SystemTime) -> RecordingClock {
        RecordingClock {
            start,
            started: tokio::time::Instant::now(),
            changes: Arc::new(Mutex::new(Vec::new())),
            fail: false,
        }
    }

    /// This clock, recording every change and then failing it with `EPERM`, as without
    /// `CAP_SYS_TIME`.
    pub fn failing(self) -> RecordingClock {
        RecordingClock { fail: true, ..self }
    }

    /// The changes so far, in order.
    pub fn changes(&self) -> Vec<ClockChange> {
        self.changes
            .lock()
            .map(|changes| changes.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The sum of the changes applied so far.
    pub fn correction(&self) -> ClockOffset {
        self.changes()
            .into_iter()
            .filter(|_| !self.fail)
            .map(ClockChange::offset)
            .fold(ClockOffset::ZERO, Add::add)
    }

    fn record(&self, change: ClockChange) -> io::Result<()> {
        match self.changes.lock() {
            Ok(mut changes) => changes.push(change),
            Err(poisoned) => poisoned.into_inner().push(change),
        }
        if self.fail {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }
}

impl ClockSetter for RecordingClock {
    fn now(&self) -> SystemTime {
        let running = self.start.checked_add(self.started.elapsed());
        self.correction().apply_to(running.unwrap_or(self.start))
    }

    fn step(&mut self, offset: ClockOffset) -> io::Result<()> {
        self.record(ClockChange::Step(offset))
    }

    fn slew(&mut self, offset: ClockOffset) -> io::Result<()> {
        self.record(ClockChange::Slew(offset))
    }
}
