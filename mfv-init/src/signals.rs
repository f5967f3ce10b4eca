//! Signals PID 1 reacts to: blocked at start and read from a signalfd in the main loop (no
//! asynchronous handlers), and which shutdown each one asks for.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::Context;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::system::ShutdownAction;

/// The signals mfv-init handles; they are blocked from the start of main so none is lost.
pub const HANDLED_SIGNALS: [Signal; 7] = [
    Signal::SIGCHLD,
    // From the host daemon: service restart requests wait in the runtime directory.
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    // From PID 1's own power button thread.
    Signal::SIGPWR,
];

/// A shutdown: the action and what asked for it (shown in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownRequest {
    /// How to shut down.
    pub action: ShutdownAction,
    /// `mfv.halt`, a signal name, or `fatal error`.
    pub requested_by: &'static str,
}

/// The shutdown a signal asks for; `None` for signals that do not (SIGCHLD).
pub fn request_for_signal(signal: Signal) -> Option<ShutdownRequest> {
    let (action, requested_by) = match signal {
        Signal::SIGINT => (ShutdownAction::Reboot, "SIGINT (ctrl-alt-del)"),
        Signal::SIGTERM => (ShutdownAction::Poweroff, "SIGTERM"),
        Signal::SIGUSR1 => (ShutdownAction::Halt, "SIGUSR1"),
        Signal::SIGUSR2 => (ShutdownAction::Poweroff, "SIGUSR2"),
        Signal::SIGPWR => (ShutdownAction::Poweroff, "the power button (SIGPWR)"),
        _ => return None,
    };
    Some(ShutdownRequest {
        action,
        requested_by,
    })
}

/// Where the main loop gets its signals from.
pub trait SignalSource {
    /// The next signal, waiting at most `timeout` (forever when `None`); `Ok(None)` when the
    /// time ran out.
    fn next(&mut self, timeout: Option<Duration>) -> anyhow::Result<Option<Signal>>;
}

impl<T: SignalSource + ?Sized> SignalSource for &mut T {
    fn next(&mut self, timeout: Option<Duration>) -> anyhow::Result<Option<Signal>> {
        (**self).next(timeout)
    }
}

/// The real source: the handled signals blocked, read through a signalfd.
#[derive(Debug)]
pub struct SignalFdSource {
    fd: SignalFd,
}

impl SignalFdSource {
    /// Blocks [`HANDLED_SIGNALS`] in this thread and opens a signalfd for them. Call it first
    /// in main. The mask is inherited by every child: each is started with an empty one
    /// again (see `system.rs`).
    pub fn block_and_open() -> anyhow::Result<SignalFdSource> {
        let mut mask = SigSet::empty();
        for signal in HANDLED_SIGNALS {
            mask.add(signal);
        }
        mask.thread_block().context("block signals")?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("signalfd")?;
        Ok(SignalFdSource { fd })
    }
}

impl SignalSource for SignalFdSource {
    fn next(&mut self, timeout: Option<Duration>) -> anyhow::Result<Option<Signal>> {
        let timeout = match timeout {
            // Round up so a short wait does not become a busy loop of zero-length polls.
            Some(duration) => PollTimeout::try_from(duration + Duration::from_micros(999))
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(error) => return Err(error).context("poll signalfd"),
        }
        let Some(info) = self.fd.read_signal().context("read signalfd")? else {
            return Ok(None);
        };
        let number = i32::try_from(info.ssi_signo).context("signal number out of range")?;
        Signal::try_from(number)
            .map(Some)
            .with_context(|| format!("unknown signal {number}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_shutdowns() {
        let cases = [
            (
                Signal::SIGINT,
                Some((ShutdownAction::Reboot, "SIGINT (ctrl-alt-del)")),
            ),
            (Signal::SIGTERM, Some((ShutdownAction::Poweroff, "SIGTERM"))),
            (Signal::SIGUSR1, Some((ShutdownAction::Halt, "SIGUSR1"))),
            (Signal::SIGUSR2, Some((ShutdownAction::Poweroff, "SIGUSR2"))),
            (
                Signal::SIGPWR,
                Some((ShutdownAction::Poweroff, "the power button (SIGPWR)")),
            ),
            (Signal::SIGCHLD, None),
            (Signal::SIGHUP, None),
        ];
        for (signal, expected) in cases {
            let got = request_for_signal(signal).map(|r| (r.action, r.requested_by));
            assert_eq!(got, expected, "{signal}");
        }
    }

    #[test]
    fn signalfd_source_reads_a_blocked_signal() {
        // Runs in its own test thread: the mask and the raised signal stay in this thread.
        let mut source = SignalFdSource::block_and_open().unwrap();
        assert_eq!(source.next(Some(Duration::from_millis(10))).unwrap(), None);
        nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
        assert_eq!(
            source.next(Some(Duration::from_secs(5))).unwrap(),
            Some(Signal::SIGUSR2)
        );
        assert_eq!(source.next(Some(Duration::ZERO)).unwrap(), None);
    }
}
