//! The guest's serial console as seen by a test: an in-memory log split into lines, filled by
//! a reader thread, and deadline-bound waits for a line containing some text.
//!
//! A reader thread copies everything the guest writes into a [`SerialBuffer`] and wakes
//! waiters through a `Condvar`. Lines end at `\n`; a trailing `\r` is dropped and bytes that
//! are not UTF-8 are replaced. Only complete lines are matched (the last, unterminated line
//! becomes complete when the console closes), so a returned line is never cut short.
//!
//! [`SerialConsole::wait_for_line`] searches from a cursor: it looks at lines already received
//! as well as new ones, and after a match the cursor moves past the matching line, so
//! consecutive waits find successive lines and a phase logged before the wait began is still
//! found. When the console closes (QEMU exited) the wait fails at once instead of sitting out
//! its deadline.

use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How many lines of the log a failure message shows.
pub(crate) const TAIL_LINES: usize = 40;

/// Everything the guest wrote to its serial console so far.
#[derive(Debug, Default)]
pub(crate) struct SerialBuffer {
    state: Mutex<SerialState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SerialState {
    /// Every byte received, for the full log.
    raw: Vec<u8>,
    /// Complete lines, without their line ending.
    lines: Vec<String>,
    /// Bytes after the last `\n`.
    partial: Vec<u8>,
    /// Why the console closed, once it has.
    closed: Option<String>,
}

impl SerialState {
    fn finish_line(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        self.lines.push(String::from_utf8_lossy(bytes).into_owned());
    }
}

impl SerialBuffer {
    fn lock(&self) -> MutexGuard<'_, SerialState> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters for a log, so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends bytes received from the guest.
    pub(crate) fn push(&self, bytes: &[u8]) {
        let mut state = self.lock();
        state.raw.extend_from_slice(bytes);
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&byte| byte == b'\n') {
            let mut line = std::mem::take(&mut state.partial);
            line.extend_from_slice(&rest[..newline]);
            state.finish_line(&line);
            rest = &rest[newline + 1..];
        }
        state.partial.extend_from_slice(rest);
        self.changed.notify_all();
    }

    /// Marks the console closed; the unterminated last line, if any, becomes a line.
    pub(crate) fn close(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if !state.partial.is_empty() {
            let line = std::mem::take(&mut state.partial);
            state.finish_line(&line);
        }
        state.closed.get_or_insert(reason.into());
        self.changed.notify_all();
    }

    /// The whole log so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().raw).into_owned()
    }

    /// The last `count` lines, the unterminated one included, joined with `\n`.
    pub(crate) fn tail(&self, count: usize) -> String {
        let state = self.lock();
        let mut tail: Vec<String> = Vec::with_capacity(count + 1);
        if !state.partial.is_empty() {
            tail.push(String::from_utf8_lossy(&state.partial).into_owned());
        }
        for line in state.lines.iter().rev() {
            if tail.len() >= count {
                break;
            }
            tail.push(line.clone());
        }
        tail.reverse();
        tail.join("\n")
    }
}

/// Starts a thread copying `reader` into `buffer` until end of file or an error, then closes
/// the buffer.
pub(crate) fn spawn_reader(
    mut reader: impl Read + Send + 'static,
    buffer: Arc<SerialBuffer>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("serial-reader".into())
        .spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        buffer.close("the serial console closed (QEMU exited)");
                        return;
                    }
                    Ok(read) => buffer.push(&chunk[..read]),
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(error) => {
                        buffer.close(format!("reading the serial console failed: {error}"));
                        return;
                    }
                }
            }
        })
}

/// A reading position in a [`SerialBuffer`].
#[derive(Debug)]
pub(crate) struct SerialConsole {
    buffer: Arc<SerialBuffer>,
    /// Index of the first line not yet matched.
    cursor: usize,
    /// Where QEMU writes the same log, named in failure messages.
    log_path: PathBuf,
}

impl SerialConsole {
    pub(crate) fn new(buffer: Arc<SerialBuffer>, log_path: PathBuf) -> Self {
        SerialConsole {
            buffer,
            cursor: 0,
            log_path,
        }
    }

    pub(crate) fn buffer(&self) -> &SerialBuffer {
        &self.buffer
    }

    /// Waits until a line at or after the cursor contains `needle` and returns it, moving the
    /// cursor past it. Fails when `timeout` passes or the console closes first; the error
    /// names the needle, the timeout and shows the tail of the log.
    pub(crate) fn wait_for_line(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.buffer.lock();
        loop {
            if let Some(offset) = state.lines[self.cursor..]
                .iter()
                .position(|line| line.contains(needle))
            {
                let index = self.cursor + offset;
                self.cursor = index + 1;
                return Ok(state.lines[index].clone());
            }
            // Lines before the end were searched; only new lines need looking at next time.
            self.cursor = state.lines.len();
            let why = if let Some(reason) = &state.closed {
                reason.clone()
            } else {
                let now = Instant::now();
                if now < deadline {
                    state = self
                        .buffer
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                "the deadline passed".to_string()
            };
            drop(state);
            bail!(
                "no serial line containing {needle:?} within {timeout:?}: {why}\n\
                 --- last {TAIL_LINES} lines of the serial log ({}) ---\n{}\n--- end of serial log ---",
                self.log_path.display(),
                self.buffer.tail(TAIL_LINES),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::mpsc;

    use super::*;

    fn console() -> SerialConsole {
        SerialConsole::new(
            Arc::new(SerialBuffer::default()),
            PathBuf::from("/tmp/guest/serial.log"),
        )
    }

    /// A reader that hands out the chunks it receives over a channel, ending when the sender is
    /// dropped, like a socket the guest writes to over time.
    struct ChannelReader(mpsc::Receiver<Vec<u8>>, Vec<u8>);

    impl Read for ChannelReader {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(chunk) => self.1 = chunk,
                    Err(_) => return Ok(0),
                }
            }
            let count = out.len().min(self.1.len());
            out[..count].copy_from_slice(&self.1[..count]);
            self.1.drain(..count);
            Ok(count)
        }
    }

    #[test]
    fn lines_are_split_across_chunks_and_lose_carriage_returns() {
        let buffer = SerialBuffer::default();
        buffer.push(b"first li");
        buffer.push(b"ne\r\nsecond\r\nthi");
        assert_eq!(buffer.lock().lines, ["first line", "second"]);
        assert_eq!(buffer.tail(10), "first line\nsecond\nthi");
        buffer.close("done");
        assert_eq!(buffer.lock().lines, ["first line", "second", "thi"]);
        assert_eq!(buffer.text(), "first line\r\nsecond\r\nthi");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let buffer = SerialBuffer::default();
        buffer.push(b"a\xffb\n");
        assert_eq!(buffer.lock().lines, ["a\u{fffd}b"]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let buffer = SerialBuffer::default();
        for index in 0..50 {
            buffer.push(format!("line {index}\n").as_bytes());
        }
        let tail = buffer.tail(3);
        assert_eq!(tail, "line 47\nline 48\nline 49");
    }

    #[test]
    fn finds_lines_received_before_the_wait() {
        let mut console = console();
        console
            .buffer()
            .push(b"boot\nphase mounts: ok\nphase cmdline: ok\n");
        let line = console.wait_for_line("cmdline", Duration::ZERO).unwrap();
        assert_eq!(line, "phase cmdline: ok");
    }

    #[test]
    fn consecutive_waits_find_successive_lines() {
        let mut console = console();
        console.buffer().push(b"tick 1\ntock\ntick 2\ntick 3\n");
        assert_eq!(
            console.wait_for_line("tick", Duration::ZERO).unwrap(),
            "tick 1"
        );
        assert_eq!(
            console.wait_for_line("tick", Duration::ZERO).unwrap(),
            "tick 2"
        );
        assert_eq!(
            console.wait_for_line("tick", Duration::ZERO).unwrap(),
            "tick 3"
        );
        assert!(console.wait_for_line("tick", Duration::ZERO).is_err());
    }

    #[test]
    fn a_matched_line_is_not_found_again_out_of_order() {
        let mut console = console();
        console.buffer().push(b"phase b: ok\nphase a: ok\n");
        console.wait_for_line("phase a", Duration::ZERO).unwrap();
        // "phase b" came before "phase a": waiting for it now must fail, which is how a test
        // checks the order of phases.
        assert!(console.wait_for_line("phase b", Duration::ZERO).is_err());
    }

    #[test]
    fn partial_lines_are_not_matched_until_complete() {
        let mut console = console();
        console
            .buffer()
            .push(b"Minifed-Virt mfv-init 0.1.0 (kernel");
        assert!(
            console
                .wait_for_line("Minifed-Virt", Duration::from_millis(20))
                .is_err()
        );
        console.buffer().push(b" uptime 1.6 s)\r\n");
        let line = console
            .wait_for_line("Minifed-Virt", Duration::ZERO)
            .unwrap();
        assert_eq!(line, "Minifed-Virt mfv-init 0.1.0 (kernel uptime 1.6 s)");
    }

    #[test]
    fn waits_for_lines_arriving_from_the_reader_thread() {
        let buffer = Arc::new(SerialBuffer::default());
        let mut console = SerialConsole::new(buffer.clone(), PathBuf::from("serial.log"));
        let (sender, receiver) = mpsc::channel();
        let reader = spawn_reader(ChannelReader(receiver, Vec::new()), buffer).unwrap();
        let writer = std::thread::spawn(move || {
            for chunk in ["early\n", "mid", "dle line\n", "late line\n"] {
                std::thread::sleep(Duration::from_millis(30));
                sender.send(chunk.as_bytes().to_vec()).unwrap();
            }
        });
        assert_eq!(
            console
                .wait_for_line("middle", Duration::from_secs(10))
                .unwrap(),
            "middle line"
        );
        assert_eq!(
            console
                .wait_for_line("late", Duration::from_secs(10))
                .unwrap(),
            "late line"
        );
        writer.join().unwrap();
        reader.join().unwrap();
        let error = console
            .wait_for_line("never", Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(error.contains("QEMU exited"), "{error}");
    }

    #[test]
    fn deadline_error_names_needle_timeout_and_tail() {
        let mut console = console();
        console
            .buffer()
            .push(b"Kernel panic - not syncing: VFS\nlast words");
        let started = Instant::now();
        let error = console
            .wait_for_line("boot sequence complete", Duration::from_millis(200))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        let error = error.to_string();
        assert!(error.contains("\"boot sequence complete\""), "{error}");
        assert!(error.contains("200ms"), "{error}");
        assert!(error.contains("the deadline passed"), "{error}");
        assert!(error.contains("/tmp/guest/serial.log"), "{error}");
        assert!(
            error.contains("Kernel panic - not syncing: VFS\nlast words"),
            "{error}"
        );
    }

    #[test]
    fn closed_console_fails_without_waiting_for_the_deadline() {
        let mut console = console();
        console.buffer().push(b"reboot: Power down\n");
        console
            .buffer()
            .close("the serial console closed (QEMU exited)");
        let started = Instant::now();
        let error = console
            .wait_for_line("login", Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(error.contains("QEMU exited"), "{error}");
        assert!(error.contains("reboot: Power down"), "{error}");
    }

    #[test]
    fn reader_error_closes_the_console_with_the_reason() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(
                    ErrorKind::ConnectionReset,
                    "reset by peer",
                ))
            }
        }
        let buffer = Arc::new(SerialBuffer::default());
        spawn_reader(Failing, buffer.clone())
            .unwrap()
            .join()
            .unwrap();
        let reason = buffer.lock().closed.clone().unwrap();
        assert!(reason.contains("reset by peer"), "{reason}");
    }

    #[test]
    fn reader_copies_everything_until_end_of_file() {
        let buffer = Arc::new(SerialBuffer::default());
        spawn_reader(Cursor::new(b"one\ntwo".to_vec()), buffer.clone())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(buffer.lock().lines, ["one", "two"]);
    }
}
