//! The boot log: every console line of PID 1, kept for the host daemon (`mfv host logs`),
//! because the console scrolls away and a host that runs from RAM has no other record.
//!
//! Lines come from the boot sequence and from threads in the background (DHCP, SNTP,
//! hotplug), all through [`crate::console::Console`], so the log is one shared sink. Lines
//! written before the runtime directory exists wait in memory (the newest [`MAX_WAITING`]);
//! [`open`] writes them out and sends every later line to the file.

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

static SINK: Mutex<Sink> = Mutex::new(Sink::Waiting(VecDeque::new()));

/// Records one console line (without its time stamp) logged at `uptime`.
pub fn record(uptime: Duration, line: &str) {
    let stamp = u64::try_from(uptime.as_micros()).unwrap_or(u64::MAX);
    let mut sink = SINK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &mut *sink {
        Sink::Waiting(lines) => {
            if lines.len() == MAX_WAITING {
                lines.pop_front();
            }
            lines.push_back((stamp, line.to_owned()));
        }
        // A full /run loses log lines, never the boot.
        Sink::Open(log) => {
            let _ = log.append(stamp, line);
        }
    }
}

/// Opens the boot log in `run_dir` and writes the lines that waited.
pub fn open(run_dir: &Path) -> Result<(), ServicesError> {
    let mut log = ServiceLog::open(run_dir, BOOT_LOG)?;
    let mut sink = SINK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Sink::Waiting(lines) = &mut *sink {
        for (stamp, line) in lines.drain(..) {
            log.append(stamp, &line)?;
        }
    }
    *sink = Sink::Open(log);
    Ok(())
}
