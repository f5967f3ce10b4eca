//! A running guest: one QEMU process with its temp dir, serial console, QMP socket and
//! forwarded ports, cleaned up on drop.
//!
//! Boot sequence ([`Guest::boot`]):
//! 1. Check the QEMU program exists, make a temp dir `mfv-guest-XXXXXX`, choose free host
//!    ports and create blank disks in it.
//! 2. Spawn QEMU in its own process group (`process_group(0)`) with stdin from /dev/null and
//!    stdout/stderr to `qemu.log` in the temp dir.
//! 3. Connect to the serial socket. QEMU waits for this connection before it runs the guest
//!    (`server=on,wait=on`), so not a byte of output is lost. A reader thread copies the
//!    console into memory; QEMU also writes it to `serial.log`.
//!
//! QMP (`qmp.sock`) is connected on first use. USB disks can be plugged in and pulled out
//! while the guest runs ([`Guest::hotplug_usb_disk`], [`Guest::unplug`]) on the xHCI
//! controller that a USB disk at boot or [`GuestSpec::usb_controller`] puts there.
//!
//! Dropping the [`Guest`] sends SIGKILL to QEMU's
//! process group and reaps QEMU, whatever state the test is in. If the test is panicking, or a
//! wait of this guest failed, the whole serial log and QEMU's own output are printed to
//! stderr and the temp dir is kept for inspection (its path is printed).

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::qmp::QmpClient;
use crate::serial::{SerialBuffer, SerialConsole, TAIL_LINES, spawn_reader};
use crate::spec::{Console, DiskInterface, DiskSpec, GuestSpec, XHCI_BUS};

/// How long QEMU may take to create its serial socket, and to create its QMP socket.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a QMP command may take to answer.
const QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often QEMU's state is polled while waiting for a socket or for it to exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often the whole serial log is searched again for a line anywhere in it.
const LOG_SCAN_INTERVAL: Duration = Duration::from_millis(100);
/// What every mfv-init console line has after its time stamp (`[    1.634210] mfv-init: ...`).
pub const INIT_PREFIX: &str = "] mfv-init: ";

/// The QEMU process, killed with its process group and reaped when dropped.
#[derive(Debug)]
struct QemuProcess {
    child: Child,
    /// Set once the child was reaped; its process group id may then belong to someone else.
    exit: Option<ExitStatus>,
}

impl QemuProcess {
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait()?;
        }
        Ok(self.exit)
    }

    /// Kills QEMU's process group and reaps QEMU, unless it was reaped already. Idempotent.
    fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        // While QEMU is not reaped its pid, which is also its process group id, cannot be
        // reused, so this signals only QEMU and anything it started.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH (the group is gone already) is fine; nothing else can fail here.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Failing to reap leaves a zombie until the test process exits; nothing more to do.
        self.exit = self.child.wait().ok();
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A guest running under QEMU. See the module docs for what it owns and how it cleans up.
#[derive(Debug)]
pub struct Guest {
    process: QemuProcess,
    reader: Option<JoinHandle<()>>,
    console: SerialConsole,
    serial_writer: UnixStream,
    qmp: Option<QmpClient<BufReader<UnixStream>, UnixStream>>,
    /// Port forwards as (NIC, host port, guest port).
    forwards: Vec<(usize, u16, u16)>,
    disk_paths: Vec<PathBuf>,
    /// How many disks were hot-plugged so far (numbers their images, nodes and devices).
    hotplugged: usize,
    dir: Option<TempDir>,
    dir_path: PathBuf,
    started: Instant,
    failed: bool,
}

impl Guest {
    pub(crate) fn boot(spec: GuestSpec) -> anyhow::Result<Guest> {
        let mut command = spec.command()?;
        let dir = tempfile::Builder::new()
            .prefix("mfv-guest-")
            .tempdir()
            .context("creating the guest's temp dir")?;
        let dir_path = dir.path().to_path_buf();
        let resolved = spec.resolve(Some(&dir_path))?;
        command.args(spec.qemu_args(Console::Captured { dir: &dir_path }, &resolved)?);
        let qemu_log_path = dir_path.join("qemu.log");
        let qemu_log = File::create(&qemu_log_path)
            .with_context(|| format!("creating {}", qemu_log_path.display()))?;
        let qemu_log_copy = qemu_log
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", qemu_log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(qemu_log_copy)
            .stderr(qemu_log)
            .process_group(0);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let mut process = QemuProcess { child, exit: None };

        let serial_path = dir_path.join("serial.sock");
        let serial = connect(&serial_path, &mut process, &qemu_log_path)?;
        let serial_writer = serial
            .try_clone()
            .with_context(|| format!("duplicating the handle of {}", serial_path.display()))?;
        let buffer = Arc::new(SerialBuffer::default());
        let reader =
            spawn_reader(serial, buffer.clone()).context("starting the serial reader thread")?;
        Ok(Guest {
            process,
            reader: Some(reader),
            console: SerialConsole::new(buffer, dir_path.join("serial.log")),
            serial_writer,
            qmp: None,
            forwards: spec
                .forward_nics()
                .into_iter()
                .zip(resolved.forwards)
                .map(|(nic, (host, guest))| (nic, host, guest))
                .collect(),
            disk_paths: resolved.disk_paths,
            hotplugged: 0,
            dir: Some(dir),
            dir_path,
            started,
            failed: false,
        })
    }

    /// Waits until a serial line contains `needle` and returns that line. Lines received
    /// before the call are searched too, from a cursor that moves past each match, so
    /// consecutive waits find successive lines. On deadline (or if QEMU exits first) the error
    /// names the needle and the timeout and shows the tail of the serial log.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let result = self.console.wait_for_line(needle, timeout);
        self.failed |= result.is_err();
        result
    }

    /// Waits until QEMU exits and returns its exit status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .process
                .try_wait()
                .context("checking whether QEMU exited")?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.failed = true;
                bail!(
                    "QEMU did not exit within {timeout:?}\n--- last {TAIL_LINES} lines of the serial log ({}) ---\n{}\n--- end of serial log ---",
                    self.serial_log_path().display(),
                    self.console.buffer().tail(TAIL_LINES)
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until any serial line so far, wherever it is (no cursor: lines that interleave at
    /// their own pace, such as a DHCP client's), contains `needle`, and returns it. On deadline
    /// the error names the needle and the timeout and shows the serial log.
    pub fn wait_for_line_anywhere(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        self.wait_for_matching_line(needle, timeout, |line| line.contains(needle))
    }

    /// Waits until any serial line so far matches `matches` (`what` says what it looks for,
    /// in the error) and returns it; see [`Guest::wait_for_line_anywhere`].
    pub fn wait_for_matching_line(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.serial_log();
            if let Some(line) = log.lines().find(|line| matches(line)) {
                return Ok(line.to_owned());
            }
            if Instant::now() >= deadline {
                self.failed = true;
                anyhow::bail!(
                    "no serial line with {what:?} within {timeout:?}; serial log:\n{log}"
                );
            }
            std::thread::sleep(LOG_SCAN_INTERVAL);
        }
    }

    /// Everything the guest wrote to its serial console so far.
    pub fn serial_log(&self) -> String {
        self.console.buffer().text()
    }

    /// The mfv-init messages logged so far: the text after [`INIT_PREFIX`] on each console
    /// line that has it, in order.
    pub fn init_messages(&self) -> Vec<String> {
        self.serial_log()
            .lines()
            .filter_map(|line| {
                line.split_once(INIT_PREFIX)
                    .map(|(_, message)| message.to_owned())
            })
            .collect()
    }

    /// Waits until the mfv-init phase `name` has ended and fails unless it ended `ok`;
    /// returns the mfv-init messages logged up to its end line (without it).
    pub fn wait_for_phase(&mut self, name: &str, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let end_line = format!("phase {name}: ");
        self.wait_for_line(&format!("mfv-init: {end_line}"), timeout)?;
        let messages = self.init_messages();
        let end = messages
            .iter()
            .position(|message| message.starts_with(&end_line))
            .with_context(|| format!("no end of the {name} phase in the mfv-init messages"))?;
        ensure!(
            messages[end].starts_with(&format!("{end_line}ok")),
            "{name} phase failed: {}",
            messages[end]
        );
        Ok(messages[..end].to_vec())
    }

    /// Where QEMU writes the serial log (in the guest's temp dir).
    pub fn serial_log_path(&self) -> PathBuf {
        self.dir_path.join("serial.log")
    }

    /// Types `text` into the serial console.
    pub fn write_serial(&mut self, text: &str) -> anyhow::Result<()> {
        self.serial_writer
            .write_all(text.as_bytes())
            .and_then(|()| self.serial_writer.flush())
            .context("writing to the serial console")
    }

    /// Runs a QMP command (`arguments` may be `Value::Null`) and returns its `return` value.
    /// The QMP connection is made on first use.
    pub fn qmp(
        &mut self,
        execute: &str,
        arguments: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let client = match &mut self.qmp {
            Some(client) => client,
            None => {
                let path = self.dir_path.join("qmp.sock");
                let qemu_log = self.dir_path.join("qemu.log");
                let stream = connect(&path, &mut self.process, &qemu_log)?;
                stream
                    .set_read_timeout(Some(QMP_TIMEOUT))
                    .with_context(|| format!("setting a read timeout on {}", path.display()))?;
                let writer = stream
                    .try_clone()
                    .with_context(|| format!("duplicating the handle of {}", path.display()))?;
                self.qmp
                    .insert(QmpClient::handshake(BufReader::new(stream), writer)?)
            }
        };
        client.execute(execute, arguments)
    }

    /// Plugs a USB disk into the running guest and returns its QEMU device id (for
    /// [`Guest::unplug`]). The image is made in the guest's temp dir as `hotplug<n>.img`
    /// (blank or formatted disks) or taken as it is ([`DiskSpec::file`]); QMP then adds it
    /// as a block node (`blockdev-add`) and a `usb-storage` device on the xHCI controller
    /// (`device_add`), like a stick put into a port. Only [`DiskInterface::Usb`] disks can be
    /// plugged, and the guest needs the controller: a USB disk at boot or
    /// [`GuestSpec::usb_controller`].
    pub fn hotplug_usb_disk(&mut self, disk: &DiskSpec) -> anyhow::Result<String> {
        check_hotpluggable(disk)?;
        let index = self.hotplugged;
        let path = disk.materialize(Some(&self.dir_path), &format!("hotplug{index}.img"))?;
        let filename = path
            .to_str()
            .with_context(|| format!("path {} is not UTF-8", path.display()))?
            .to_string();
        let (node, id) = (format!("hotplug{index}"), format!("usb-hotplug{index}"));
        self.hotplugged += 1;
        self.qmp(
            "blockdev-add",
            serde_json::json!({
                "driver": "raw",
                "node-name": node,
                "file": { "driver": "file", "filename": filename },
            }),
        )
        .with_context(|| format!("adding {filename} as block node {node}"))?;
        self.qmp(
            "device_add",
            serde_json::json!({
                "driver": "usb-storage",
                "bus": XHCI_BUS,
                "drive": node,
                "id": id,
            }),
        )
        .with_context(|| {
            format!(
                "plugging {id} into {XHCI_BUS} (the guest needs a USB disk at boot or \
                 GuestSpec::usb_controller)"
            )
        })?;
        Ok(id)
    }

    /// Pulls out a device plugged in with [`Guest::hotplug_usb_disk`] (QMP `device_del`).
    pub fn unplug(&mut self, id: &str) -> anyhow::Result<()> {
        self.qmp("device_del", serde_json::json!({ "id": id }))
            .with_context(|| format!("unplugging {id}"))
            .map(drop)
    }

    /// The host port (on 127.0.0.1) forwarded to `guest_port` on the first NIC, if the spec
    /// asked for one.
    pub fn host_port(&self, guest_port: u16) -> Option<u16> {
        self.host_port_on(0, guest_port)
    }

    /// The host port (on 127.0.0.1) forwarded to `guest_port` through NIC `nic`, if the spec
    /// asked for one ([`GuestSpec::forward_port_on`]).
    pub fn host_port_on(&self, nic: usize, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|(forward_nic, _, guest)| *forward_nic == nic && *guest == guest_port)
            .map(|(_, host, _)| *host)
    }

    /// Pulls NIC `nic`'s cable (`up` false) or plugs it back in (QMP `set_link` on its netdev
    /// `n<nic>`): the guest sees the NIC lose or regain carrier.
    pub fn set_link(&mut self, nic: usize, up: bool) -> anyhow::Result<()> {
        self.qmp(
            "set_link",
            serde_json::json!({ "name": format!("n{nic}"), "up": up }),
        )
        .with_context(|| {
            format!(
                "setting the link of NIC {nic} {}",
                if up { "up" } else { "down" }
            )
        })
        .map(drop)
    }

    /// The image files of the disks, in the order they were added to the spec.
    pub fn disk_paths(&self) -> &[PathBuf] {
        &self.disk_paths
    }

    /// The guest's temp dir (serial log, QEMU output, sockets, blank disks).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// The process id of QEMU, which is also the id of its process group.
    pub fn qemu_pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Prints the serial log and QEMU's output to stderr and keeps the temp dir.
    fn dump(&mut self) {
        let kept = self.dir.take().map(TempDir::keep);
        let qemu_log = std::fs::read_to_string(self.dir_path.join("qemu.log")).unwrap_or_default();
        eprintln!(
            "===== guest failed; its files are kept in {} =====\n\
             ----- serial log ({}) -----\n{}\n\
             ----- QEMU output (qemu.log) -----\n{qemu_log}\n\
             ===== end of guest dump =====",
            kept.as_deref().unwrap_or(&self.dir_path).display(),
            self.serial_log_path().display(),
            self.serial_log(),
        );
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Kill and reap QEMU first, so the reader sees end of file
        // and the serial log is complete before it is printed.
        self.process.kill();
        if let Some(reader) = self.reader.take() {
            // The reader only ends by itself; a panic in it leaves nothing to clean up.
            let _ = reader.join();
        }
        if self.failed || std::thread::panicking() {
            self.dump();
        }
    }
}

/// Fails unless `disk` can be hot-plugged (only USB disks can).
fn check_hotpluggable(disk: &DiskSpec) -> anyhow::Result<()> {
    ensure!(
        disk.interface() == DiskInterface::Usb,
        "only USB disks can be hot-plugged, not {:?} disks",
        disk.interface()
    );
    Ok(())
}

/// Connects to the Unix socket `path` that QEMU creates, waiting for it to appear. Fails if
/// QEMU exits first (showing its output) or after [`SOCKET_TIMEOUT`].
fn connect(path: &Path, process: &mut QemuProcess, qemu_log: &Path) -> anyhow::Result<UnixStream> {
    let deadline = Instant::now() + SOCKET_TIMEOUT;
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                if let Some(status) = process.try_wait().context("checking whether QEMU exited")? {
                    let output = std::fs::read_to_string(qemu_log).unwrap_or_default();
                    bail!(
                        "QEMU exited ({status}) before {} could be connected:\n{output}",
                        path.display()
                    );
                }
                if Instant::now() >= deadline {
                    return Err(error).with_context(|| {
                        format!(
                            "connecting to QEMU's socket {} for {SOCKET_TIMEOUT:?}",
                            path.display()
                        )
                    });
                }
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::image::ApplianceImage;

    /// A stand-in for QEMU: a shell script with `body`.
    fn fake_qemu(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-qemu");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn spec(qemu: &Path) -> GuestSpec {
        let image = ApplianceImage {
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initrd.img".into(),
        };
        GuestSpec::new(&image).qemu(qemu)
    }

    #[test]
    fn qemu_exiting_before_the_serial_socket_shows_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let qemu = fake_qemu(dir.path(), "echo 'qemu: invalid option -bogus' >&2; exit 1");
        let error = spec(&qemu).boot().unwrap_err().to_string();
        assert!(error.contains("QEMU exited (exit status: 1)"), "{error}");
        assert!(error.contains("serial.sock"), "{error}");
        assert!(error.contains("qemu: invalid option -bogus"), "{error}");
    }

    #[test]
    fn only_usb_disks_can_be_hot_plugged() {
        check_hotpluggable(&DiskSpec::blank(DiskInterface::Usb, 1 << 20)).unwrap();
        for interface in [
            DiskInterface::Virtio,
            DiskInterface::Sata,
            DiskInterface::Floppy,
        ] {
            let error = check_hotpluggable(&DiskSpec::blank(interface, 1 << 20))
                .unwrap_err()
                .to_string();
            assert_eq!(
                error,
                format!("only USB disks can be hot-plugged, not {interface:?} disks")
            );
        }
    }

    #[test]
    fn qemu_gets_the_test_console_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let args = dir.path().join("args");
        let qemu = fake_qemu(dir.path(), &format!("echo \"$@\" > {}", args.display()));
        spec(&qemu).boot().unwrap_err();
        let args = std::fs::read_to_string(args).unwrap();
        assert!(args.contains("-serial chardev:serial0"), "{args}");
        assert!(
            args.contains("/serial.sock,server=on,wait=on,logfile="),
            "{args}"
        );
    }
}
