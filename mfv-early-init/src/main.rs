//! mfv-early-init: the initrd's `/init`. Joins the payload and executes mfv-init from it,
//! which keeps PID 1; if it cannot, says why on the console and halts. The why is in the
//! library's documentation.

use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::time::{Duration, Instant};

use mfv_early_init::{EarlyInitError, Layout, failure_message, join_payload};
use nix::sys::reboot::{RebootMode, reboot};
use nix::time::{ClockId, clock_gettime};

/// Exit code when started as anything but PID 1.
const EXIT_NOT_PID1: i32 = 2;

fn main() {
    if nix::unistd::getpid().as_raw() != 1 {
        eprintln!(
            "mfv-early-init: this is the initrd's /init and runs only as PID 1 (the host's \
             programs are mfv-init and mfv)"
        );
        std::process::exit(EXIT_NOT_PID1);
    }
    let layout = Layout::system();
    let started = Instant::now();
    let at_start = kernel_uptime();
    let paths = layout.payload_paths();
    let error = match join_payload(&layout) {
        Ok(mounted) => {
            say(&format!(
                "/init at kernel uptime {}.{:03} s; payload {} ({:.1} MiB) mounted read-only \
                 on {} through {} in {:.1} ms",
                at_start.as_secs(),
                at_start.subsec_millis(),
                paths.image.display(),
                mounted.image_bytes as f64 / (1024.0 * 1024.0),
                paths.mount_point.display(),
                mounted.device.display(),
                started.elapsed().as_secs_f64() * 1000.0
            ));
            EarlyInitError::Execute {
                path: layout.mfv_init(),
                source: execute_mfv_init(&layout),
            }
        }
        Err(error) => error,
    };
    say(&failure_message(&error, &layout));
    halt()
}

/// Executes mfv-init with this process's arguments and environment; returns only on failure.
fn execute_mfv_init(layout: &Layout) -> nix::Error {
    let Ok(program) = CString::new(layout.mfv_init().as_os_str().as_bytes()) else {
        return nix::Error::EINVAL;
    };
    let arguments: Result<Vec<CString>, _> = std::env::args_os()
        .map(|argument| CString::new(argument.as_bytes()))
        .collect();
    let Ok(arguments) = arguments else {
        return nix::Error::EINVAL;
    };
    match nix::unistd::execv(&program, &arguments) {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

/// CLOCK_BOOTTIME, time since the kernel started (zero if it cannot be read).
fn kernel_uptime() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

/// A line on the console, stamped like the kernel's and mfv-init's.
fn say(message: &str) {
    let uptime = kernel_uptime();
    let mut console = std::io::stdout().lock();
    let _ = writeln!(
        console,
        "[{:>5}.{:06}] mfv-early-init: {message}",
        uptime.as_secs(),
        uptime.subsec_micros()
    );
    let _ = console.flush();
}

/// Halts the machine, leaving the message on the screen; PID 1 must never exit.
fn halt() -> ! {
    let _ = reboot(RebootMode::RB_HALT_SYSTEM);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
