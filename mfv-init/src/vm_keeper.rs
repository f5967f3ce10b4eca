//! `mfv-hostd --vm-keeper`: the service that keeps VMs across reboots ([`mfv_host::vm_keeper`]),
//! started by PID 1 once libvirtd is ready and stopped first at shutdown, when it shuts the running
//! VMs down. Before it restores anything it loads the modules VMs need beyond KVM (tun, bridge,
//! vhost_net, dm_mod: [`mfv_host::virtualization::load_vm_modules`]), which the boot leaves to it
//! so that the web server answers sooner. It is a process of its own because it talks to libvirt
//! all the time: a crash in that talk must never take PID 1 down.

use std::path::Path;
use std::time::Duration;

use mfv_config::cmdline::KernelCmdline;
use mfv_host::hardware::{ProbeSettings, modules_dir};
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
/// Where the kernel's modules are.
const MODULES_ROOT: &str = "/lib/modules";
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
    let mut say = |line: &str| {
        println!("{line}");
        if let Some(console) = console.as_mut() {
            console.line(BootClock.uptime(), line);
        }
    };
    for line in load_vm_modules(Path::new("/proc"), Path::new(MODULES_ROOT)) {
        say(&line);
    }
    keep(&settings, stop_requested, say);
    Ok(())
}

/// Loads the VM network and storage modules with the kernel command line's module options
/// (`<proc>/cmdline`) from the running kernel's modules below `modules_root`; returns the
/// lines of those that did not load, or why none was.
fn load_vm_modules(proc_dir: &Path, modules_root: &Path) -> Vec<String> {
    let probe = KernelCmdline::read_from(&proc_dir.join("cmdline"))
        .map_err(anyhow::Error::from)
        .and_then(|cmdline| {
            let roots = mfv_probe::SystemRoots {
                proc: proc_dir.to_owned(),
                ..mfv_probe::SystemRoots::default()
            };
            let modules = modules_dir(proc_dir, modules_root)?;
            Ok(ProbeSettings::from_cmdline(&cmdline, roots, &modules))
        });
    match probe {
        Ok(probe) => mfv_host::virtualization::load_vm_modules(&probe, None),
        Err(error) => vec![format!(
            "virtualization: no module loaded for VM networks and storage: {error:#}"
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_kernel_command_line_no_vm_module_is_loaded_and_it_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let lines = load_vm_modules(dir.path(), dir.path());
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(
                "virtualization: no module loaded for VM networks and storage: cannot read "
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn without_the_modules_of_the_running_kernel_it_says_which_index_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cmdline"), "quiet\n").unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/osrelease"), "6.1.0-test\n").unwrap();
        let lines = load_vm_modules(dir.path(), dir.path());
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(&format!(
                "virtualization: no module loaded: cannot read the module index in {}",
                dir.path().join("6.1.0-test").display()
            )),
            "{lines:?}"
        );
    }
}
