//! Acceptance tests for driver coldplug, the hardware inventory and hotplug (mfv-probe inside
//! mfv-init), on the real image under QEMU TCG.
//!
//! The main test boots one machine with every NIC model and a disk on every interface
//! ([`with_probe_hardware`]) and checks, from the console: coldplug settled, no module failed,
//! no PCI device is left without a driver while a module for it is loaded, each NIC is bound
//! to its driver, each disk is listed with its file system and label, a module option from
//! the kernel command line reached its module, and `mfv probe` (table, `--json`, `--load`)
//! agrees; then a USB disk plugged in through QMP shows
//! up as a hotplug event with its label, and pulling it out as another. A second boot checks
//! that a blacklisted driver stays unloaded.

use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Filesystem, Guest, GuestSpec, NicModel, PROBE_DISKS,
    with_probe_hardware,
};

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// usb-storage waits this long (seconds) before scanning a new USB disk; 0 makes coldplug
/// find the USB disk of the boot, and checks that module options from the command line work.
const USB_DELAY_ARG: &str = "usb-storage.delay_use=0";

/// Waits for the coldplug phase and returns the messages logged up to its end.
fn boot_through_coldplug(guest: &mut Guest) -> anyhow::Result<Vec<String>> {
    guest.wait_for_phase("coldplug", LINE_TIMEOUT)
}

/// Runs `command` in the console shell and returns what it printed after `marker`. The
/// marker is written split in two in the command, so the echo of the typed line never
/// matches.
fn shell_output(guest: &mut Guest, marker: &str, command: &str) -> anyhow::Result<String> {
    let (head, tail) = marker.split_at(marker.len() / 2);
    guest.write_serial(&format!("echo \"{head}\"\"{tail}$({command})\"\n"))?;
    let line = guest.wait_for_line(marker, LINE_TIMEOUT)?;
    let (_, output) = line
        .split_once(marker)
        .with_context(|| format!("no {marker} in {line:?}"))?;
    Ok(output.trim().to_owned())
}

fn find<'a>(
    messages: &'a [String],
    what: &str,
    predicate: impl Fn(&str) -> bool,
) -> anyhow::Result<&'a str> {
    messages
        .iter()
        .map(String::as_str)
        .find(|message| predicate(message))
        .with_context(|| format!("no console line for {what} in:\n{}", messages.join("\n")))
}

#[test]
fn coldplug_binds_every_device_and_lists_the_hardware_then_hotplug_reports_a_usb_disk()
-> anyhow::Result<()> {
    let spec = with_probe_hardware(GuestSpec::new(ApplianceImage::shared()?))
        .empty_cd_drive()
        .kernel_arg(USB_DELAY_ARG)
        .kernel_arg("mfv.rescue");
    let mut guest = spec.boot()?;
    let coldplug = boot_through_coldplug(&mut guest)?;

    // An empty CD drive is listed as one, without a placeholder size or an error.
    let drive = find(&coldplug, "the empty CD drive", |m| {
        m.starts_with("disk: sr0 ")
    })?;
    ensure!(
        drive.starts_with("disk: sr0 size=0B kind=optical ") && drive.ends_with(" medium=none"),
        "the empty CD drive: {drive}"
    );
    ensure!(
        !coldplug
            .iter()
            .any(|m| m.starts_with("inventory: issue: ") && m.contains("sr0")),
        "an issue with the empty CD drive: {}",
        coldplug.join("\n")
    );

    let report = find(&coldplug, "the coldplug report", |m| {
        m.starts_with("coldplug: ")
    })?;
    ensure!(
        report.starts_with("coldplug: settled after "),
        "coldplug did not settle: {report}"
    );
    ensure!(
        report.contains(" 0 failed,"),
        "a module failed: {}",
        coldplug.join("\n")
    );
    for message in &coldplug {
        ensure!(
            !message.contains("FAILED"),
            "failure in the report: {message}"
        );
        ensure!(
            !(message.starts_with("  no driver: pci ") && message.ends_with("(module loaded)")),
            "a PCI device with a loaded module has no driver: {message}"
        );
    }
    for module in [
        "virtio_pci",
        "e1000",
        "virtio_net",
        "ahci",
        "xhci_pci",
        "usb_storage",
        "sd_mod",
        "virtio_blk",
    ] {
        find(&coldplug, &format!("module {module} loaded"), |m| {
            m.starts_with(&format!("  loaded {module} for "))
        })?;
    }

    for (index, model) in [NicModel::E1000, NicModel::VirtioNet, NicModel::Rtl8139]
        .iter()
        .enumerate()
    {
        let mac = format!("mac=52:54:00:12:34:{:02x}", 0x56 + index);
        let nic = find(&coldplug, &format!("the {model:?} NIC"), |m| {
            m.starts_with("nic: ") && m.contains(&mac)
        })?;
        let drivers: &[&str] = match model {
            NicModel::E1000 => &["driver=e1000 "],
            NicModel::VirtioNet => &["driver=virtio_net "],
            // Both drivers claim QEMU's RTL8139 (revision 0x20); whichever binds is right.
            NicModel::Rtl8139 => &["driver=8139cp ", "driver=8139too "],
        };
        // virtio-net sits on the virtio bus that virtio_pci makes, the others on PCI.
        let bus = match model {
            NicModel::VirtioNet => " bus=virtio ",
            NicModel::E1000 | NicModel::Rtl8139 => " bus=pci ",
        };
        ensure!(
            drivers.iter().any(|driver| nic.contains(driver)) && nic.contains(bus),
            "{model:?} NIC not bound as expected: {nic}"
        );
    }

    for disk in PROBE_DISKS {
        let size = format!(" size={}.0MiB ", disk.size_bytes >> 20);
        let (fs, label) = match disk.filesystem {
            Some((filesystem, label)) => (filesystem.blkid_type(), label),
            None => ("-", "-"),
        };
        let wanted = format!(" fs={fs} label={label} ");
        let prefix = match disk.interface {
            DiskInterface::Virtio => "disk: vd",
            _ => "disk: sd",
        };
        find(
            &coldplug,
            &format!("the {:?} disk{wanted}", disk.interface),
            |m| m.starts_with(prefix) && m.contains(&size) && m.contains(&wanted),
        )?;
    }

    guest.wait_for_line(
        "mfv-init: hotplug: listening for kernel uevents",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    let delay = shell_output(
        &mut guest,
        "DELAY_USE=",
        "cat /sys/module/usb_storage/parameters/delay_use",
    )?;
    ensure!(delay == "0", "usb-storage.delay_use is {delay:?}, not 0");

    // The `mfv probe` command sees the same hardware; after coldplug nothing is left to load.
    let nic_rows = shell_output(
        &mut guest,
        "NIC_ROWS=",
        "mfv probe | grep -c 52:54:00:12:34:5",
    )?;
    ensure!(nic_rows == "3", "mfv probe lists {nic_rows} of the 3 NICs");
    let labels = shell_output(
        &mut guest,
        "JSON_LABELS=",
        "mfv probe --json | grep -c -e '\"label\": \"virtio-data\"' -e '\"label\": \"MFVSTICK\"'",
    )?;
    ensure!(labels == "2", "mfv probe --json shows {labels} of 2 labels");
    let again = shell_output(&mut guest, "LOAD_AGAIN=", "mfv probe --load | head -n 1")?;
    ensure!(
        again.starts_with("coldplug: settled after ")
            && again.contains(" 0 modules loaded, 0 failed"),
        "mfv probe --load after boot: {again}"
    );

    let stick = DiskSpec::formatted(DiskInterface::Usb, 8 << 20, Filesystem::Vfat, "HOTSTICK");
    let id = guest.hotplug_usb_disk(&stick)?;
    let added = guest.wait_for_line("mfv-init: hotplug: disk added: ", LINE_TIMEOUT)?;
    ensure!(
        added.contains(" fs=vfat label=HOTSTICK "),
        "the hot-plugged disk is not described with its label: {added}"
    );
    let name = added
        .split_once("disk added: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .context("no disk name")?
        .to_owned();
    guest.unplug(&id)?;
    guest.wait_for_line(
        &format!("mfv-init: hotplug: disk removed: {name}"),
        LINE_TIMEOUT,
    )?;
    Ok(())
}

#[test]
fn a_blacklisted_driver_is_not_loaded() -> anyhow::Result<()> {
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("mfv.blacklist=e1000")
        .kernel_arg("mfv.halt=poweroff")
        .nic(NicModel::E1000)
        .nic(NicModel::VirtioNet)
        .boot()?;
    let coldplug = boot_through_coldplug(&mut guest)?;
    find(&coldplug, "the blacklisted e1000", |m| {
        m.starts_with("  blacklisted e1000 for pci:v00008086d0000100E")
    })?;
    find(&coldplug, "the NIC left without driver", |m| {
        m.starts_with("  no driver: pci ")
            && m.contains(" pci:v00008086d0000100E")
            && !m.ends_with("(module loaded)")
    })?;
    find(&coldplug, "the virtio NIC", |m| {
        m.starts_with("nic: ") && m.contains("driver=virtio_net ")
    })?;
    ensure!(
        !coldplug.iter().any(|m| m.contains("driver=e1000")),
        "e1000 bound although blacklisted:\n{}",
        coldplug.join("\n")
    );
    let status = guest.wait_for_exit(LINE_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}
