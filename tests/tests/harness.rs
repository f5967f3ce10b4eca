//! Tests of the QEMU harness itself against a real guest: QEMU accepts every device the
//! harness can describe, port forwards listen on the host, QMP answers, failed waits report
//! what they waited for, and dropping a guest kills QEMU and keeps its files on failure.
//! They wait only for the kernel's first line, so they do not depend on what the initrd does.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::{ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, MachineType, NicModel};
use serde_json::{Value, json};

const LINE_TIMEOUT: Duration = Duration::from_secs(60);
/// The first line every Linux kernel prints.
const KERNEL_BANNER: &str = "Linux version";
const MIB: u64 = 1 << 20;
const FLOPPY_1440K: u64 = 1_474_560;

fn boot_to_kernel(spec: GuestSpec) -> anyhow::Result<Guest> {
    let mut guest = spec.boot()?;
    guest.wait_for_line(KERNEL_BANNER, LINE_TIMEOUT)?;
    Ok(guest)
}

/// Boots a guest with every kind of NIC and disk on `machine` and checks QEMU built them.
fn check_all_devices(machine: MachineType) -> anyhow::Result<()> {
    let spec = GuestSpec::new(ApplianceImage::shared()?)
        .machine(machine)
        .nic(NicModel::E1000)
        .nic(NicModel::VirtioNet)
        .nic(NicModel::Rtl8139)
        .forward_port(443)
        .disk(DiskSpec::blank(DiskInterface::Virtio, 64 * MIB))
        .disk(DiskSpec::blank(DiskInterface::Sata, 64 * MIB))
        .disk(DiskSpec::blank(DiskInterface::Sata, 32 * MIB))
        .disk(DiskSpec::blank(DiskInterface::Usb, 64 * MIB))
        .disk(DiskSpec::blank(DiskInterface::Floppy, FLOPPY_1440K));
    let mut guest = boot_to_kernel(spec)?;

    let status = guest.qmp("query-status", Value::Null)?;
    ensure!(
        status["running"] == json!(true),
        "guest not running: {status}"
    );
    let qtree = guest.qmp(
        "human-monitor-command",
        json!({ "command-line": "info qtree" }),
    )?;
    let qtree = qtree.as_str().context("info qtree returned no text")?;
    for device in [
        "e1000",
        "virtio-net-pci",
        "rtl8139",
        "virtio-blk-pci",
        "ich9-ahci",
        "ide-hd",
        "qemu-xhci",
        "usb-storage",
        "floppy",
    ] {
        ensure!(
            qtree.contains(&format!("dev: {device},")),
            "{device} missing from info qtree"
        );
    }

    let sizes = [64 * MIB, 64 * MIB, 32 * MIB, 64 * MIB, FLOPPY_1440K];
    ensure!(guest.disk_paths().len() == sizes.len());
    for (path, size) in guest.disk_paths().iter().zip(sizes) {
        ensure!(
            path.starts_with(guest.dir()),
            "{} outside the guest dir",
            path.display()
        );
        ensure!(
            std::fs::metadata(path)?.len() == size,
            "{} has the wrong size",
            path.display()
        );
    }

    let port = guest
        .host_port(443)
        .context("no host port for guest port 443")?;
    TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    ensure!(guest.host_port(22).is_none());
    Ok(())
}

#[test]
fn q35_accepts_every_nic_and_disk_kind() -> anyhow::Result<()> {
    check_all_devices(MachineType::Q35)
}

#[test]
fn pc_accepts_every_nic_and_disk_kind() -> anyhow::Result<()> {
    check_all_devices(MachineType::Pc)
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn failed_waits_report_and_drop_kills_qemu_keeping_its_files() -> anyhow::Result<()> {
    let mut guest = boot_to_kernel(GuestSpec::new(ApplianceImage::shared()?))?;
    let pid = guest.qemu_pid();
    let dir = guest.dir().to_path_buf();

    let error = guest
        .wait_for_line("a line no guest prints", Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    ensure!(error.contains("\"a line no guest prints\""), "{error}");
    ensure!(error.contains("500ms"), "{error}");
    ensure!(
        error.contains("lines of the serial log") && error.contains("serial.log"),
        "no serial tail in: {error}"
    );

    let error = guest
        .wait_for_exit(Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    ensure!(error.contains("did not exit within 300ms"), "{error}");

    ensure!(process_exists(pid));
    drop(guest);
    ensure!(!process_exists(pid), "QEMU ({pid}) still exists after drop");
    // The failed waits make the guest keep its files for inspection.
    let log = std::fs::read_to_string(dir.join("serial.log"))?;
    ensure!(log.contains(KERNEL_BANNER));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn guest_dropped_while_panicking_is_killed_and_keeps_its_files() -> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let outcome = std::panic::catch_unwind(|| {
        let guest = boot_to_kernel(GuestSpec::new(image)).unwrap();
        std::panic::panic_any((guest.qemu_pid(), guest.dir().to_path_buf()));
    });
    let payload = outcome.err().context("the closure did not panic")?;
    let (pid, dir) = payload
        .downcast_ref::<(u32, PathBuf)>()
        .context("unexpected panic payload")?
        .clone();
    ensure!(
        !process_exists(pid),
        "QEMU ({pid}) still exists after a panic"
    );
    ensure!(
        dir.join("serial.log").exists(),
        "{} was not kept",
        dir.display()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn clean_drop_removes_the_guest_dir() -> anyhow::Result<()> {
    let guest = boot_to_kernel(GuestSpec::new(ApplianceImage::shared()?))?;
    let (pid, dir) = (guest.qemu_pid(), guest.dir().to_path_buf());
    drop(guest);
    ensure!(!process_exists(pid), "QEMU ({pid}) still exists after drop");
    ensure!(!dir.exists(), "{} left behind", dir.display());
    Ok(())
}
