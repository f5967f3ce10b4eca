//! The boot log: every console line of PID 1, kept for the host daemon (`mfv host logs`),
//! because the console scrolls away and a host that runs from RAM has no other record.
//!
//! Lines come from the boot sequence and from threads in the background (DHCP, SNTP,
//! hotplug), all through [`crate::console::Console`], so the log is one shared sink. Lines
//! written before the runtime directory exists wait in memory (the newest [`MAX_WAITING`]);
//! [`open`] writes them out and sends every later line to the file. Once the configuration
//! names a syslog server, [`forward`] hands it the lines still in memory and every later one
//! (it starts in the `log` phase, before the file is opened at the end of the boot, so every
//! line since the start is still in memory unless more than [`MAX_WAITING`] came first).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use mfv_host::services::{BOOT_LOG, ServiceLog, ServicesError};

/// How many lines wait in memory before the log is open.
pub const MAX_WAITING: usize = 4096;

#[derive(Debug)]
enum Sink {
    Waiting(VecDeque<(u64, String)>),
    Open(ServiceLog),
}

/// Where each line also goes once forwarding starts: it gets the line's uptime and text, and
/// must not wait (it is called with the log locked).
pub type Forward = Box<dyn Fn(Duration, &str) + Send>;

struct BootLog {
    sink: Sink,
    forward: Option<Forward>,
}

static LOG: Mutex<BootLog> = Mutex::new(BootLog {
    sink: Sink::Waiting(VecDeque::new()),
    forward: None,
});

fn lock() -> std::sync::MutexGuard<'static, BootLog> {
    LOG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records one console line (without its time stamp) logged at `uptime`.
pub fn record(uptime: Duration, line: &str) {
    let stamp = u64::try_from(uptime.as_micros()).unwrap_or(u64::MAX);
    let mut log = lock();
    if let Some(forward) = &log.forward {
        forward(uptime, line);
    }
    match &mut log.sink {
        Sink::Waiting(lines) => {
            if lines.len() == MAX_WAITING {
                lines.pop_front();
            }
            lines.push_back((stamp, line.to_owned()));
        }
        // A full /run loses log lines, never the boot.
        Sink::Open(file) => {
            let _ = file.append(stamp, line);
        }
    }
}

/// Hands `to` every line still waiting in memory, then every line recorded from now on.
pub fn forward(to: Forward) {
    let mut log = lock();
    if let Sink::Waiting(lines) = &log.sink {
        for (stamp, line) in lines {
            to(Duration::from_micros(*stamp), line);
        }
    }
    log.forward = Some(to);
}

/// Opens the boot log in `run_dir` and writes the lines that waited.
pub fn open(run_dir: &Path) -> Result<(), ServicesError> {
    let mut file = ServiceLog::open(run_dir, BOOT_LOG)?;
    let mut log = lock();
    if let Sink::Waiting(lines) = &mut log.sink {
        for (stamp, line) in lines.drain(..) {
            file.append(stamp, &line)?;
        }
    }
    log.sink = Sink::Open(file);
    Ok(())
}
