//! `mfv vm` against a real private libvirtd running a real QEMU (TCG) guest: create from a
//! spec file with direct kernel boot, start, stream the serial console, kill or shut down,
//! delete. Needs root; a missing tool fails the test.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed fixture fails the test"
)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mfv_tests::libvirtd::{GUEST_POWER_BUTTON, GUEST_READY, GuestFiles, PrivateLibvirtd, unique};
use mfv_vm::Hypervisor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a TCG guest may take from start to its first serial line.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `mfv vm console` may take to end once the VM stopped.
const CONSOLE_END_TIMEOUT: Duration = Duration::from_secs(15);

struct Shared {
    daemon: PrivateLibvirtd,
    guest: GuestFiles,
    /// A dir pool for the guests' disks.
    pool: String,
}

/// One daemon, pool and pair of initrds for the whole test binary.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let daemon = PrivateLibvirtd::start().unwrap();
        let guest = GuestFiles::write_to(daemon.dir()).unwrap();
        let pool = unique("cli-pool");
        Hypervisor::connect(daemon.uri())
            .unwrap()
            .ensure_dir_pool(&pool, &daemon.dir().join(&pool))
            .unwrap();
        Shared {
            guest,
            pool,
            daemon,
        }
    })
}

/// `mfv vm --uri <daemon> ARGS...`.
fn mfv_vm(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mfv"));
    command
        .args(["vm", "--uri", shared().daemon.uri()])
        .args(args);
    command
}

/// Runs `mfv vm ARGS...`, which must succeed, and returns its stdout.
fn run_ok(args: &[&str]) -> Result<String> {
    let output = mfv_vm(args).output()?;
    check_success(args, &output)?;
    Ok(String::from_utf8(output.stdout)?)
}

fn check_success(args: &[&str], output: &Output) -> Result<()> {
    if !output.status.success() {
        bail!(
            "mfv vm {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    Ok(())
}

/// Writes a spec file for a one-vCPU guest booting the shared kernel and `initrd` directly,
/// with a serial console and a new 1 GiB qcow2 disk in the shared pool.
fn write_spec(name: &str, initrd: &Path) -> Result<PathBuf> {
    let shared = shared();
    let spec = serde_json::json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": 128,
        "serial_console": true,
        "kernel_boot": {
            "kernel": shared.guest.kernel,
            "initrd": initrd,
            "cmdline": "console=ttyS0 quiet",
        },
        "disks": [{"target": "vda", "source": {"new_volume": {"pool": shared.pool, "size_gib": 1}}}],
    });
    let path = shared.daemon.dir().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(path)
}

/// Creates and starts a VM through the CLI.
fn create_and_start(name: &str, initrd: &Path) -> Result<()> {
    let spec = write_spec(name, initrd)?;
    let created = run_ok(&["create", "--spec", spec.to_str().unwrap(), "--accel", "tcg"])?;
    assert_eq!(created, format!("created VM {name} (tcg)\n"));
    assert_eq!(run_ok(&["start", name])?, format!("started VM {name}\n"));
    Ok(())
}

/// A running `mfv vm console NAME`, its stdout read line by line on a thread.
struct Console {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    seen: Vec<String>,
}

impl Console {
    fn attach(name: &str) -> Result<Self> {
        let mut child = mfv_vm(&["console", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("console stdout")?;
        let (sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Console {
            child,
            lines,
            reader: Some(reader),
            seen: Vec::new(),
        })
    }

    /// Waits for a line of the console's stdout that contains `token`.
    fn wait_for_line(&mut self, token: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(token);
                    self.seen.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(_) => bail!(
                    "no {token:?} from `mfv vm console` within {timeout:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the console command to exit and returns its exit status, all of its stdout
    /// lines and its stderr.
    fn wait_for_exit(
        mut self,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, Vec<String>, String)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "`mfv vm console` still runs {timeout:?} after the VM stopped; it printed:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.seen.extend(self.lines.try_iter());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr)?;
        }
        Ok((status, std::mem::take(&mut self.seen), stderr))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn console_streams_the_serial_line_and_ends_when_the_vm_is_killed() -> Result<()> {
    let name = unique("console");
    create_and_start(&name, &shared().guest.initrd)?;
    let mut console = Console::attach(&name)?;
    console
        .wait_for_line(GUEST_READY, BOOT_TIMEOUT)
        .with_context(|| shared().daemon.qemu_log(&name))?;
    // The stream goes on while the guest runs: a second line arrives a second later.
    console.wait_for_line(GUEST_READY, Duration::from_secs(10))?;

    assert_eq!(run_ok(&["kill", &name])?, format!("VM {name} forced off\n"));
    let (status, lines, stderr) = console.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        lines
            .iter()
            .filter(|line| line.contains(GUEST_READY))
            .count()
            >= 2,
        "{lines:?}"
    );

    let stopped = mfv_vm(&["console", &name]).output()?;
    assert!(!stopped.status.success());
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot open the console of VM \"{name}\" in its current state (shut_off)"
        )),
        "{stderr}"
    );

    assert_eq!(
        run_ok(&["delete", &name, "--with-disks"])?,
        format!("deleted VM {name} and its disk volumes\n")
    );
    Ok(())
}

#[test]
fn console_of_an_unknown_vm_fails() -> Result<()> {
    let name = unique("absent");
    let output = mfv_vm(&["console", &name]).output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&name), "{stderr}");
    assert!(output.stdout.is_empty());
    Ok(())
}

#[test]
fn an_interrupted_console_leaves_the_vm_running() -> Result<()> {
    let name = unique("interrupt");
    create_and_start(&name, &shared().guest.initrd)?;
    let mut console = Console::attach(&name)?;
    console
        .wait_for_line(GUEST_READY, BOOT_TIMEOUT)
        .with_context(|| shared().daemon.qemu_log(&name))?;
    kill(Pid::from_raw(console.child.id() as i32), Signal::SIGINT)?;
    let (status, _, _) = console.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert!(!status.success(), "{status}");

    let shown = run_ok(&["show", &name])?;
    assert!(shown.contains("state:      running"), "{shown}");
    // A new console attaches to the same guest.
    let mut again = Console::attach(&name)?;
    again.wait_for_line(GUEST_READY, Duration::from_secs(10))?;
    run_ok(&["kill", &name])?;
    let (status, _, stderr) = again.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert!(status.success(), "{status}: {stderr}");
    run_ok(&["delete", &name, "--with-disks"])?;
    Ok(())
}

#[test]
fn acpi_shutdown_ends_the_guest_and_its_console() -> Result<()> {
    let name = unique("acpi");
    create_and_start(&name, &shared().guest.acpi_initrd)?;
    let mut console = Console::attach(&name)?;
    console
        .wait_for_line(GUEST_READY, BOOT_TIMEOUT)
        .with_context(|| shared().daemon.qemu_log(&name))?;

    let stopping = Instant::now();
    let stopped = run_ok(&["shutdown", &name, "--timeout", "30"])?;
    assert_eq!(stopped, format!("VM {name} shut down\n"));
    assert!(stopping.elapsed() < Duration::from_secs(30));
    let (status, lines, stderr) = console.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        lines.iter().any(|line| line.contains(GUEST_POWER_BUTTON)),
        "{lines:?}"
    );
    run_ok(&["delete", &name, "--with-disks"])?;
    Ok(())
}

#[test]
fn a_console_taken_over_by_another_client_ends_with_an_error() -> Result<()> {
    let name = unique("takeover");
    create_and_start(&name, &shared().guest.initrd)?;
    let mut first = Console::attach(&name)?;
    first
        .wait_for_line(GUEST_READY, BOOT_TIMEOUT)
        .with_context(|| shared().daemon.qemu_log(&name))?;
    let mut second = Console::attach(&name)?;
    second.wait_for_line(GUEST_READY, Duration::from_secs(10))?;

    let (status, _, stderr) = first.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "mfv: the serial console of VM {name} closed while the VM is running: another \
             client took it over\n"
        )
    );
    // The new client goes on streaming until the VM stops.
    second.wait_for_line(GUEST_READY, Duration::from_secs(10))?;
    run_ok(&["kill", &name])?;
    let (status, _, stderr) = second.wait_for_exit(CONSOLE_END_TIMEOUT)?;
    assert!(status.success(), "{status}: {stderr}");
    run_ok(&["delete", &name, "--with-disks"])?;
    Ok(())
}
