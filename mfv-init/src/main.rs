//! mfv-init: PID 1 of the Minifed-Virt appliance (the initrd's /init, mfv-early-init,
//! executes it from the payload), or with `--stage2` the boot sequence after another init,
//! or with `--console` (started by PID 1, never PID 1 itself) the console screen. The host
//! daemon and the VM keeper, the services that use libvirt, are `mfv-hostd`: this binary
//! links no libvirt, so PID 1 starts without loading libvirt and the fifty libraries it needs.
//!
//! As PID 1 it never exits: exiting would panic the kernel. Whatever happens, it ends in
//! reboot(2) or, if even that fails, sleeps forever. With `--stage2` and a PID other than 1,
//! signals and `mfv.halt=` still shut the machine down; a fatal error only exits.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Duration;

use mfv_init::clock::BootClock;
use mfv_init::console::kernel_stamp;
use mfv_init::console_screen;
use mfv_init::init::{CONSOLE_SCREEN_ARG, Init, RunEnd, Settings, panic_message};
use mfv_init::signals::SignalFdSource;
use mfv_init::system::{NixSystem, ShutdownAction, System};

/// Exit code when a fatal error ends a process that is not PID 1, or shutdown failed.
const EXIT_FAILED: u8 = 1;
/// Exit code for a wrong invocation.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    mfv_linux::malloc::tune_for_long_running_process();
    let is_pid1 = nix::unistd::getpid().as_raw() == 1;
    if !is_pid1 {
        // The mode PID 1 starts this binary in.
        if has_arg(CONSOLE_SCREEN_ARG) {
            return mode_exit("console screen", console_screen::run());
        }
    }
    // Before anything else PID 1 does, so that no signal arrives before the main loop can
    // read it.
    let signals = SignalFdSource::block_and_open();
    // As PID 1 the kernel passes unknown command line words as arguments: they are ignored.
    let stage2 = std::env::args_os().skip(1).any(|arg| arg == "--stage2");
    if !is_pid1 && !stage2 {
        let _ = writeln!(
            std::io::stderr(),
            "mfv-init: runs as PID 1 (the initrd's /init executes it) or with --stage2 after \
             another init"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    std::panic::set_hook(Box::new(log_panic));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut init = Init::new(
            NixSystem::default(),
            BootClock,
            std::io::stdout(),
            Settings::system(is_pid1),
        );
        init.run(signals)
    }));
    let code = match outcome {
        Ok(RunEnd::ShutDown(_)) => ExitCode::SUCCESS,
        Ok(RunEnd::ShutdownFailed(_) | RunEnd::Failed) => ExitCode::from(EXIT_FAILED),
        Err(panic) => {
            // The fatal path itself panicked: halt without further ado.
            let _ = writeln!(
                std::io::stdout(),
                "{} mfv-init: fatal: panic: {}",
                kernel_stamp(BootClock::read().unwrap_or_default()),
                panic_message(&*panic)
            );
            if is_pid1 {
                let mut system = NixSystem::default();
                system.sync();
                let _ = system.reboot(ShutdownAction::Halt);
            }
            ExitCode::from(EXIT_FAILED)
        }
    };
    if is_pid1 {
        wait_forever();
    }
    code
}

/// Whether `arg` is among the arguments.
fn has_arg(arg: &str) -> bool {
    std::env::args_os().skip(1).any(|given| given == arg)
}

/// The exit code of a mode that ended with `result`, its error printed as `mfv-init: WHAT: ...`.
fn mode_exit(what: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "mfv-init: {what}: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Logs where a panic happened, in the console format; the panic itself is caught and
/// handled as a fatal error.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|location| format!(" at {location}"))
        .unwrap_or_default();
    let message = panic_message(info.payload());
    let _ = writeln!(
        std::io::stdout(),
        "{} mfv-init: panic{location}: {message}",
        kernel_stamp(BootClock::read().unwrap_or_default())
    );
}

/// PID 1 must not exit; this is where it stays when reboot(2) did not happen.
fn wait_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
