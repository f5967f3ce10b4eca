//! Console output in the exact formats the test harness and benchmarks parse.
//!
//! - First line: `Minifed-Virt mfv-init <version> (kernel uptime <s.mmm> s)`.
//! - Every later line: `[<uptime like the kernel: {:>5}.{:06}>] mfv-init: <message>`.
//!
//! A message often carries text from outside: a key from the config volume, a volume's label,
//! a DHCP server's message. Every line is written with its control characters escaped
//! ([`escape_line`]), so nothing read from a volume or a packet drives the console or forges a
//! line of its own.

use std::fmt::Display;
use std::io::Write;
use std::time::Duration;

use mfv_linux::terminal_text::escape_line;

/// Writes the banner and log lines to any `Write` (the real console is stdout, which the
/// kernel connects to /dev/console for PID 1).
#[derive(Debug)]
pub struct Console<W: Write> {
    out: W,
}

impl<W: Write> Console<W> {
    /// Wraps a writer.
    pub fn new(out: W) -> Console<W> {
        Console { out }
    }

    /// The first line, with the kernel uptime at start.
    pub fn banner(&mut self, uptime: Duration) {
        let line = format!(
            "Minifed-Virt mfv-init {} (kernel uptime {} s)",
            env!("CARGO_PKG_VERSION"),
            seconds_3(uptime)
        );
        self.write_line(&line);
    }

    /// One log line stamped with `uptime`, also kept in the boot log.
    pub fn line(&mut self, uptime: Duration, message: impl Display) {
        let message = message.to_string();
        crate::boot_log::record(uptime, &message);
        let line = format!("{} mfv-init: {message}", kernel_stamp(uptime));
        self.write_line(&line);
    }

    /// The writer, for tests that read what was written.
    #[cfg(test)]
    pub fn output(&self) -> &W {
        &self.out
    }

    fn write_line(&mut self, line: &str) {
        // A console that cannot be written to has nobody to tell: the boot goes on regardless.
        let line = escape_line(line);
        let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
    }
}

/// `[    1.634210]`: seconds right-aligned in 5 columns, microseconds, like the kernel's log.
pub fn kernel_stamp(uptime: Duration) -> String {
    format!("[{:>5}.{:06}]", uptime.as_secs(), uptime.subsec_micros())
}

/// Seconds with 3 decimals (truncated), e.g. `1.634`.
pub fn seconds_3(duration: Duration) -> String {
    format!("{}.{:03}", duration.as_secs(), duration.subsec_millis())
}

/// Milliseconds with 1 decimal, e.g. `1.2`.
pub fn millis_1(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        for (duration, stamp, secs, millis) in [
            (Duration::ZERO, "[    0.000000]", "0.000", "0.0"),
            (
                Duration::from_micros(1_634_210),
                "[    1.634210]",
                "1.634",
                "1634.2",
            ),
            (
                Duration::from_nanos(1_999_999_999),
                "[    1.999999]",
                "1.999",
                "2000.0",
            ),
            (
                Duration::from_secs(123_456),
                "[123456.000000]",
                "123456.000",
                "123456000.0",
            ),
            (
                Duration::from_micros(1_250),
                "[    0.001250]",
                "0.001",
                "1.2",
            ),
        ] {
            assert_eq!(kernel_stamp(duration), stamp);
            assert_eq!(seconds_3(duration), secs);
            assert_eq!(millis_1(duration), millis);
        }
    }

    #[test]
    fn banner_and_lines() {
        let mut console = Console::new(Vec::new());
        console.banner(Duration::from_millis(1_600));
        console.line(
            Duration::from_micros(1_634_210),
            "phase mounts: ok (1.2 ms)",
        );
        let text = String::from_utf8(console.output().clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "Minifed-Virt mfv-init {} (kernel uptime 1.600 s)\n\
                 [    1.634210] mfv-init: phase mounts: ok (1.2 ms)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn control_characters_in_a_message_are_escaped() {
        let mut console = Console::new(Vec::new());
        console.line(Duration::ZERO, "dhcp: NAK: \x1b[2Jgone\nforged: ok");
        let text = String::from_utf8(console.output().clone()).unwrap();
        assert_eq!(
            text,
            "[    0.000000] mfv-init: dhcp: NAK: \\u001b[2Jgone\\u000aforged: ok\n"
        );
    }

    struct BrokenConsole;

    impl Write for BrokenConsole {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("console gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("console gone"))
        }
    }

    #[test]
    fn a_broken_console_is_ignored() {
        let mut console = Console::new(BrokenConsole);
        console.banner(Duration::ZERO);
        console.line(Duration::ZERO, "still running");
    }
}
