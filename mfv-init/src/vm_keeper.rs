//! `mfv-hostd --vm-keeper`: the service that keeps VMs across reboots ([`mfv_host::vm_keeper`]),
//! started by PID 1 once libvirtd is ready and stopped first at shutdown, when it shuts the
//! running VMs down. It is a process of its own because it talks to libvirt all the time: a
//! crash in that talk must never take PID 1 down.

use std::path::Path;
use std::time::Duration;

use mfv_host::vm_keeper::{KeeperSettings, keep};
use nix::sys::signal::Signal;

use crate::clock::{BootClock, Clock};
use crate::console::Console;
use crate::signals::{SignalFdSource, SignalSource};

/// The argument that makes mfv-hostd the VM keeper.
pub const VM_KEEPER_ARG: &str = "--vm-keeper";
/// libvirt's URI on the host.
pub const LIBVIRT_URI: &str = "qemu:///system";
/// How long running VMs get to shut down when the host shuts down.
pub const VM_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);
/// Where the operator watches.
const CONSOLE: &str = "/dev/console";
/// How often the definitions are compared with what was saved.
const SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// Keeps the VMs until SIGTERM (or SIGINT) says the host shuts down.
pub fn run(run_dir: &Path) -> anyhow::Result<()> {
    let mut signals = SignalFdSource::block_and_open()?;
    let settings = KeeperSettings {
        uri: LIBVIRT_URI.to_owned(),
        run_dir: run_dir.to_owned(),
        save_interval: SAVE_INTERVAL,
        shutdown_deadline: VM_SHUTDOWN_DEADLINE,
        connect_timeout: Duration::from_secs(30),
    };
    let stop_requested = |wait: Duration| match signals.next(Some(wait)) {
        Ok(Some(Signal::SIGTERM | Signal::SIGINT)) => true,
        Ok(_) => false,
        // Without signals nothing could stop it cleanly: stop now, shutting the VMs down.
        Err(error) => {
            println!("vms: signals: {error:#}");
            true
        }
    };
    // Its log gets every line; the console too, where the operator watches VMs come up at
    // boot and shut down at shutdown.
    let mut console = std::fs::OpenOptions::new()
        .write(true)
        .open(CONSOLE)
        .ok()
        .map(Console::new);
    keep(&settings, stop_requested, |line| {
        println!("{line}");
        if let Some(console) = console.as_mut() {
            console.line(BootClock.uptime(), line);
        }
    });
    Ok(())
}
