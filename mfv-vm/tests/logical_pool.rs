//! Logical (LVM) pools against a real private libvirtd, on loop devices: built only on an
//! empty device, found again on the device when libvirt has forgotten the pool, refused on a
//! device holding something else or missing, and in conflict with another pool of the name.
//!
//! The machine running these tests may lack the device mapper, so no logical volume is
//! created here: the appliance test (`tests/tests/host.rs`) does that on the appliance's
//! kernel.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed fixture fails the test"
)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};
use mfv_tests::libvirtd::{PrivateLibvirtd, unique};
use mfv_tests::loop_device::LoopDevice;
use mfv_vm::{Hypervisor, VirtError};

/// One daemon for the whole test binary.
fn daemon() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

fn connect() -> Hypervisor {
    Hypervisor::connect(daemon().uri()).unwrap()
}

/// Runs a command, failing with its output when it fails; returns its stdout.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .with_context(|| format!("running {program} (Debian packages util-linux, lvm2)"))?;
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The size of each test's loop device; its volume group metadata goes with the device's file.
const DEVICE_SIZE: u64 = 64 << 20;

/// The node of `device` as a command argument.
fn node(device: &LoopDevice) -> &str {
    device.path().to_str().unwrap()
}

fn virsh(args: &[&str]) -> Result<String> {
    let mut all = vec!["-q", "-c", daemon().uri()];
    all.extend_from_slice(args);
    run("virsh", &all)
}

/// The UUID of volume group `name`, as LVM reports it.
fn group_uuid(name: &str) -> Result<String> {
    Ok(run("vgs", &["--noheadings", "-o", "vg_uuid", name])?
        .trim()
        .to_owned())
}

#[test]
fn a_blank_device_becomes_a_volume_group_that_is_found_again() -> Result<()> {
    let hypervisor = connect();
    let device = LoopDevice::blank(DEVICE_SIZE)?;
    let name = unique("lvm");
    hypervisor.ensure_logical_pool(&name, device.path())?;
    let uuid = group_uuid(&name)?;
    let pvs = run("pvs", &["--noheadings", "-o", "vg_name", node(&device)])?;
    ensure!(pvs.trim() == name, "{pvs:?}");
    let info = virsh(&["pool-info", &name])?;
    ensure!(
        info.contains("running") && info.contains("Autostart:      yes"),
        "{info}"
    );
    ensure!(hypervisor.list_volumes(&name)?.is_empty());

    // Again: nothing changes.
    hypervisor.ensure_logical_pool(&name, device.path())?;
    ensure!(group_uuid(&name)? == uuid);

    // libvirt forgets the pool (its definitions live in RAM on the appliance): the volume
    // group on the device is taken as it is, not built again.
    virsh(&["pool-destroy", &name])?;
    virsh(&["pool-undefine", &name])?;
    hypervisor.ensure_logical_pool(&name, device.path())?;
    ensure!(group_uuid(&name)? == uuid);
    ensure!(virsh(&["pool-info", &name])?.contains("running"));

    // Defined but stopped: started again.
    virsh(&["pool-destroy", &name])?;
    hypervisor.ensure_logical_pool(&name, device.path())?;
    ensure!(virsh(&["pool-info", &name])?.contains("running"));
    Ok(())
}

#[test]
fn the_same_name_on_another_device_is_a_conflict_naming_both() -> Result<()> {
    let hypervisor = connect();
    let (first, second) = (
        LoopDevice::blank(DEVICE_SIZE)?,
        LoopDevice::blank(DEVICE_SIZE)?,
    );
    let name = unique("lvm");
    hypervisor.ensure_logical_pool(&name, first.path())?;
    let error = hypervisor
        .ensure_logical_pool(&name, second.path())
        .unwrap_err();
    assert!(matches!(error, VirtError::PoolConflict { .. }), "{error:?}");
    let message = error.to_string();
    ensure!(
        message.contains(node(&first)) && message.contains(node(&second)),
        "{message}"
    );
    // The second device is untouched.
    ensure!(blkid_type(second.path())?.is_none());

    // A directory pool of the name is a conflict too.
    let dir_pool = unique("dir");
    hypervisor.ensure_dir_pool(&dir_pool, &daemon().dir().join(&dir_pool))?;
    let error = hypervisor
        .ensure_logical_pool(&dir_pool, second.path())
        .unwrap_err();
    ensure!(
        error
            .to_string()
            .contains("already defined as a dir pool at"),
        "{error}"
    );
    Ok(())
}

/// What libblkid finds on `device` (its type), or `None`.
fn blkid_type(device: &Path) -> Result<Option<String>> {
    let output = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE"])
        .arg(device)
        .output()
        .context("blkid (Debian package util-linux)")?;
    // blkid -p exits 2 when it finds nothing.
    Ok(Some(String::from_utf8_lossy(&output.stdout).trim().to_owned()).filter(|t| !t.is_empty()))
}

/// Asks for a new logical pool on `device` and asserts it is refused for saying `holds`, and
/// that the pool is left undefined.
fn assert_refused(device: &Path, holds: &str) -> Result<()> {
    let pool = unique("lvm");
    let error = connect().ensure_logical_pool(&pool, device).unwrap_err();
    assert!(matches!(error, VirtError::PoolDevice { .. }), "{error:?}");
    let message = error.to_string();
    ensure!(
        message.starts_with(&format!(
            "storage pool {pool:?} cannot use {}: ",
            device.display()
        )),
        "{message}"
    );
    ensure!(message.contains(holds), "{holds:?} missing in {message}");
    ensure!(
        virsh(&["pool-info", &pool]).is_err(),
        "pool {pool} was left defined"
    );
    Ok(())
}

#[test]
fn a_device_with_a_file_system_is_refused_and_left_as_it_is() -> Result<()> {
    let device = LoopDevice::new(DEVICE_SIZE, |file| {
        run("mkfs.ext4", &["-q", "-L", "data", file.to_str().unwrap()]).map(drop)
    })?;
    assert_refused(
        device.path(),
        "it holds a signature of type ext4 labelled \"data\"; a volume group is built only on \
         a device without any signature",
    )?;
    ensure!(blkid_type(device.path())?.as_deref() == Some("ext4"));
    Ok(())
}

#[test]
fn a_device_with_a_partition_table_is_refused() -> Result<()> {
    let device = LoopDevice::new(DEVICE_SIZE, |file| {
        // An MBR with one partition, written by hand: type 0x83 from sector 2048, 8 MiB.
        let mut mbr = vec![0u8; 512];
        mbr[446 + 4] = 0x83;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        mbr[446 + 12..446 + 16].copy_from_slice(&16384u32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)?
            .write_all(&mbr)?;
        Ok(())
    })?;
    assert_refused(device.path(), "it holds a partition table (dos)")
}

#[test]
fn a_physical_volume_of_another_volume_group_is_refused() -> Result<()> {
    let device = LoopDevice::blank(DEVICE_SIZE)?;
    let other = unique("other");
    run("vgcreate", &[&other, node(&device)])?;
    assert_refused(
        device.path(),
        &format!("it is a physical volume of the LVM volume group {other:?}"),
    )?;
    ensure!(group_uuid(&other).is_ok(), "volume group {other} is gone");
    Ok(())
}

#[test]
fn a_missing_device_or_one_that_is_no_block_device_is_named() -> Result<()> {
    let device = format!("/dev/mfv-test-no-such-disk-{}", std::process::id());
    assert_refused(Path::new(&device), "there is no such device")?;
    assert_refused(Path::new("/dev/null"), "it is not a block device")
}
