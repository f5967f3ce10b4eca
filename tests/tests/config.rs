//! Acceptance tests for config discovery in mfv-init (the `config` phase), on the real image
//! under QEMU TCG: volumes made on the host ([`VolumeImage`]) are attached as disks, and the
//! console must show the provenance report (every candidate and its verdict), the host name
//! taken from the configuration, and the boot going on to `mfv.halt=poweroff`.
//!
//! One guest per outcome that needs its own boot (discovery takes the first valid
//! configuration): an ext4 volume found after an invalid one whose errors are all shown; a
//! vfat partition of an MBR disk; an ext4 partition of a GPT disk chosen by
//! `mfv.config=PARTLABEL=`; an iso9660 volume (read-only source); a USB stick plugged in 3 s
//! after the discovery started waiting (`mfv.config_wait=15`); a USB stick present at
//! power-on, found with the default command line while its disk is still appearing; a
//! floppy with a configuration and an empty floppy drive (no medium, no I/O errors); a torn
//! `mfv.toml` and a hand-edited invalid one, each with a last-known-good `mfv.toml.prev`;
//! and `mfv.config=none`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, PartitionTable, VolumeFilesystem,
    VolumeImage,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// What mfv-init says when no usable configuration was found.
const SETUP_NEEDED: &str = "config: no usable configuration; setup is needed";

/// A valid configuration naming the host `hostname`.
fn valid_config(hostname: &str) -> String {
    format!("version = 1\n\n[host]\nhostname = \"{hostname}\"\n")
}

/// A configuration with three errors (host name, port, unknown table).
const INVALID_CONFIG: &str =
    "version = 1\n\n[host]\nhostname = \"-bad-host-\"\n\n[web]\nport = 70000\n\n[netwrk]\n";
/// The report's lines for the errors of [`INVALID_CONFIG`].
const INVALID_CONFIG_ERRORS: [&str; 3] = [
    "    mfv.toml:4:12: host.hostname: \"-bad-host-\": the label \"-bad-host-\" starts or ends \
     with '-'",
    "    mfv.toml:7:8: web.port: 70000 is out of range (1 to 65535)",
    "    mfv.toml:9:2: netwrk: unknown field \"netwrk\"; did you mean \"network\"?",
];

/// Builds `volume` as `name` in `dir`.
fn image(dir: &TempDir, name: &str, volume: &VolumeImage) -> anyhow::Result<PathBuf> {
    let path = dir.path().join(name);
    volume
        .build(&path)
        .with_context(|| format!("building {}", path.display()))?;
    Ok(path)
}

/// A guest with the image, `mfv.halt=poweroff`, `quiet` (no kernel messages between the
/// report's lines) and `args`, with each of `disks` as a virtio disk.
fn guest(args: &[&str], disks: &[&Path]) -> anyhow::Result<GuestSpec> {
    let mut spec = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.halt=poweroff");
    for arg in args {
        spec = spec.kernel_arg(*arg);
    }
    for disk in disks {
        spec = spec.disk(DiskSpec::file(DiskInterface::Virtio, *disk));
    }
    Ok(spec)
}

/// Waits for the end of the `config` phase and returns its report: the messages from the
/// first `config: ` line up to the end of the phase, without the hotplug thread's lines.
fn config_report(guest: &mut Guest) -> anyhow::Result<Vec<String>> {
    let messages = guest.wait_for_phase("config", LINE_TIMEOUT)?;
    let start = messages
        .iter()
        .position(|message| message.starts_with("config: "))
        .context("no config report on the console")?;
    Ok(messages[start..]
        .iter()
        .filter(|message| !message.starts_with("hotplug: "))
        .cloned()
        .collect())
}

/// Waits for the `config` phase's report and compares it with `expected`, then
/// [`expect_hostname_then_poweroff`].
fn expect_report_then_hostname(
    guest: &mut Guest,
    expected: &[&str],
    hostname: Option<&str>,
) -> anyhow::Result<()> {
    let report = config_report(guest)?;
    ensure!(
        report == expected,
        "unexpected config report:\n{report:#?}\nexpected:\n{expected:#?}"
    );
    expect_hostname_then_poweroff(guest, hostname)
}

/// Waits for the host name line and the end of the boot, then for QEMU to power off.
fn expect_hostname_then_poweroff(guest: &mut Guest, hostname: Option<&str>) -> anyhow::Result<()> {
    guest.wait_for_line("mfv-init: phase hostname: ok", LINE_TIMEOUT)?;
    let from_config = guest
        .init_messages()
        .into_iter()
        .find(|message| message.starts_with("hostname: "));
    match hostname {
        Some(hostname) => ensure!(
            from_config
                .as_deref()
                .is_some_and(|line| line.starts_with(&format!("hostname: {hostname} (from"))),
            "host name {hostname} not set from the configuration: {from_config:?}"
        ),
        None => ensure!(
            from_config.is_none(),
            "a host name came from a configuration: {from_config:?}"
        ),
    }
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(LINE_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

#[test]
fn an_ext4_volume_is_found_after_an_invalid_one_whose_errors_are_all_shown() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let invalid = image(
        &dir,
        "invalid.img",
        &VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config").file("mfv.toml", INVALID_CONFIG),
    )?;
    let valid = image(
        &dir,
        "valid.img",
        &VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
            .file("mfv.toml", valid_config("cfg-ext4")),
    )?;
    let mut guest = guest(&[], &[&invalid, &valid])?.boot()?;
    let report = config_report(&mut guest)?;
    let expected = [
        &[
            "config: using mfv.toml from /dev/vdb (ext4, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/vda (ext4): invalid (3 errors)",
        ][..],
        &INVALID_CONFIG_ERRORS,
        &["  LABEL=mfv-config /dev/vdb (ext4): taken"],
    ]
    .concat();
    assert_eq!(report, expected);
    expect_hostname_then_poweroff(&mut guest, Some("cfg-ext4"))
}

#[test]
fn a_vfat_partition_of_an_mbr_disk_is_found() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let disk = image(
        &dir,
        "mbr.img",
        &VolumeImage::new(VolumeFilesystem::Vfat, "MFV-CONFIG")
            .partition_table(PartitionTable::Mbr)
            .file("mfv.toml", valid_config("cfg-mbr-vfat")),
    )?;
    let mut guest = guest(&[], &[&disk])?.boot()?;
    expect_report_then_hostname(
        &mut guest,
        &[
            "config: using mfv.toml from /dev/vda1 (vfat, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/vda1 (vfat): taken",
        ],
        Some("cfg-mbr-vfat"),
    )
}

#[test]
fn an_ext4_partition_of_a_gpt_disk_is_found_by_its_partition_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let disk = image(
        &dir,
        "gpt.img",
        &VolumeImage::new(VolumeFilesystem::Ext4, "any-label")
            .partition_table(PartitionTable::Gpt)
            .partition_name("mfv-config-part")
            .file("mfv.toml", valid_config("cfg-gpt")),
    )?;
    let mut guest = guest(&["mfv.config=PARTLABEL=mfv-config-part"], &[&disk])?.boot()?;
    expect_report_then_hostname(
        &mut guest,
        &[
            "config: using mfv.toml from /dev/vda1 (ext4, PARTLABEL=mfv-config-part)",
            "  PARTLABEL=mfv-config-part /dev/vda1 (ext4): taken",
        ],
        Some("cfg-gpt"),
    )
}

#[test]
fn an_iso9660_volume_is_a_read_only_source() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let iso = image(
        &dir,
        "config.iso",
        &VolumeImage::new(VolumeFilesystem::Iso9660, "mfv-config")
            .file("mfv.toml", valid_config("cfg-iso")),
    )?;
    let mut guest = guest(&[], &[&iso])?.boot()?;
    expect_report_then_hostname(
        &mut guest,
        &[
            "config: using mfv.toml from /dev/vda (iso9660, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/vda (iso9660): taken",
        ],
        Some("cfg-iso"),
    )
}

#[test]
fn a_usb_stick_plugged_in_late_is_found_while_discovery_waits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stick = image(
        &dir,
        "stick.img",
        &VolumeImage::new(VolumeFilesystem::Vfat, "MFV-CONFIG")
            .file("mfv.toml", valid_config("cfg-usb")),
    )?;
    let mut guest = guest(&["mfv.config_wait=15", "usb-storage.delay_use=0"], &[])?
        .usb_controller()
        .boot()?;
    guest.wait_for_line("mfv-init: phase coldplug: ", LINE_TIMEOUT)?;
    std::thread::sleep(Duration::from_secs(3));
    guest.hotplug_usb_disk(&DiskSpec::file(DiskInterface::Usb, &stick))?;
    let report = config_report(&mut guest)?;
    ensure!(report.len() == 4, "unexpected report: {report:#?}");
    assert_eq!(
        report[..3],
        [
            "config: using mfv.toml from /dev/sda (vfat, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/sda (vfat): taken",
        ]
    );
    let waited = &report[3];
    let seconds: f64 = waited
        .strip_prefix("  waited ")
        .and_then(|rest| rest.split_once(" s for devices ("))
        .and_then(|(seconds, _)| seconds.parse().ok())
        .with_context(|| format!("not a wait line: {waited:?}"))?;
    ensure!(
        (3.0..15.0).contains(&seconds),
        "discovery waited {seconds} s: {waited}"
    );
    expect_hostname_then_poweroff(&mut guest, Some("cfg-usb"))
}

#[test]
fn config_none_skips_discovery() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let valid = image(
        &dir,
        "valid.img",
        &VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
            .file("mfv.toml", valid_config("cfg-ignored")),
    )?;
    let mut guest = guest(&["mfv.config=none"], &[&valid])?.boot()?;
    let report = config_report(&mut guest)?;
    assert_eq!(
        report,
        ["config: discovery skipped (mfv.config=none)", SETUP_NEEDED]
    );
    expect_hostname_then_poweroff(&mut guest, None)
}

/// A floppy image size (1.44 MB).
const FLOPPY_1440K: u64 = 1_474_560;

#[test]
fn a_config_on_a_floppy_is_found_with_the_default_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Not labelled mfv-config: the `/dev/fd0` candidate of the default order finds it.
    let floppy = image(
        &dir,
        "floppy.img",
        &VolumeImage::new(VolumeFilesystem::Vfat, "FLOPPY")
            .size_bytes(FLOPPY_1440K)
            .file("mfv.toml", valid_config("cfg-floppy")),
    )?;
    let mut guest = guest(&[], &[])?
        .disk(DiskSpec::file(DiskInterface::Floppy, &floppy))
        .boot()?;
    expect_report_then_hostname(
        &mut guest,
        &[
            "config: using mfv.toml from /dev/fd0 (vfat)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config: absent (no volume matches)",
            "  /dev/fd0 (vfat): taken",
        ],
        Some("cfg-floppy"),
    )
}

#[test]
fn an_empty_floppy_drive_has_no_medium_and_is_never_read() -> anyhow::Result<()> {
    // Waiting makes discovery ask the drive on every pass.
    let mut guest = guest(&["mfv.config_wait=2"], &[])?
        .empty_floppy_drive()
        .boot()?;
    let report = config_report(&mut guest)?;
    ensure!(report.len() == 6, "unexpected report: {report:#?}");
    assert_eq!(
        report[..4],
        [
            "config: no configuration found",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config: absent (no volume matches)",
            "  /dev/fd0: absent (no medium)",
        ]
    );
    ensure!(
        report[4].starts_with("  waited ") && report[5] == SETUP_NEEDED,
        "unexpected report: {report:#?}"
    );
    expect_hostname_then_poweroff(&mut guest, None)?;
    let log = guest.serial_log();
    ensure!(
        !log.contains("I/O error") && !log.contains("floppy: error"),
        "the empty drive was read:\n{log}"
    );
    Ok(())
}

#[test]
fn a_usb_stick_present_at_power_on_is_found_with_the_default_command_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stick = image(
        &dir,
        "stick.img",
        &VolumeImage::new(VolumeFilesystem::Vfat, "MFV-CONFIG")
            .file("mfv.toml", valid_config("cfg-usb-boot")),
    )?;
    // Neither mfv.config_wait= nor usb-storage.delay_use=: usb-storage scans 1 s after probing.
    let mut guest = guest(&[], &[])?
        .disk(DiskSpec::file(DiskInterface::Usb, &stick))
        .boot()?;
    let report = config_report(&mut guest)?;
    ensure!(report.len() >= 3, "unexpected report: {report:#?}");
    assert_eq!(
        report[..3],
        [
            "config: using mfv.toml from /dev/sda (vfat, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/sda (vfat): taken",
        ]
    );
    // When discovery had to wait, it says for how long and for what (at most 10 s).
    if let Some(waited) = report.get(3) {
        let seconds: f64 = waited
            .strip_prefix("  waited ")
            .and_then(|rest| rest.split_once(" s for devices ("))
            .and_then(|(seconds, _)| seconds.parse().ok())
            .with_context(|| format!("not a wait line: {waited:?}"))?;
        ensure!(
            seconds <= 11.0 && waited.contains("): storage was settling: USB interface "),
            "unexpected wait: {waited}"
        );
        ensure!(report.len() == 4, "unexpected report: {report:#?}");
    }
    expect_hostname_then_poweroff(&mut guest, Some("cfg-usb-boot"))
}

/// `body` with the generation header the config store writes.
fn stored(generation: u64, body: &str) -> Vec<u8> {
    let sha256: String = Sha256::digest(body.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "# mfv-store generation={generation} length={} sha256={sha256}\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Boots with one volume labelled mfv-config holding `current` as `mfv.toml` and
/// `previous` as `mfv.toml.prev`; returns the guest, its config report and the directory
/// that holds the image.
fn boot_with_generations(
    filesystem: VolumeFilesystem,
    current: Vec<u8>,
    previous: Vec<u8>,
) -> anyhow::Result<(Guest, Vec<String>, TempDir)> {
    let dir = tempfile::tempdir()?;
    let label = match filesystem {
        VolumeFilesystem::Vfat => "MFV-CONFIG",
        _ => "mfv-config",
    };
    let volume = image(
        &dir,
        "generations.img",
        &VolumeImage::new(filesystem, label)
            .file("mfv.toml", current)
            .file("mfv.toml.prev", previous),
    )?;
    let mut guest = guest(&[], &[&volume])?.boot()?;
    let report = config_report(&mut guest)?;
    Ok((guest, report, dir))
}

#[test]
fn a_torn_config_falls_back_to_the_last_known_good_generation() -> anyhow::Result<()> {
    let new = valid_config("cfg-torn-new");
    let mut torn = stored(2, &new);
    // A power cut on vfat: the new file's end never reached the disk.
    torn.truncate(torn.len() - 10);
    let previous = stored(1, &valid_config("cfg-last-good"));
    let (mut guest, report, _dir) = boot_with_generations(VolumeFilesystem::Vfat, torn, previous)?;
    assert_eq!(
        report,
        [
            "config: using mfv.toml.prev (last-known-good, generation 1) from /dev/vda \
             (vfat, LABEL=mfv-config)"
                .to_owned(),
            "  /dev/sda1: absent (no such device)".to_owned(),
            format!(
                "  LABEL=mfv-config /dev/vda (vfat): taken: mfv.toml.prev (last-known-good, \
                 generation 1); skipped: mfv.toml corrupt: {} bytes where the generation \
                 header says {} (torn write)",
                new.len() - 10,
                new.len()
            ),
        ]
    );
    expect_hostname_then_poweroff(&mut guest, Some("cfg-last-good"))
}

#[test]
fn an_invalid_hand_edited_config_falls_back_to_the_last_known_good_generation() -> anyhow::Result<()>
{
    // An operator's edit: no generation header (as documented), but errors.
    let current = INVALID_CONFIG.as_bytes().to_vec();
    let previous = stored(3, &valid_config("cfg-before-edit"));
    let (mut guest, report, _dir) =
        boot_with_generations(VolumeFilesystem::Ext4, current, previous)?;
    let expected = [
        &[
            "config: using mfv.toml.prev (last-known-good, generation 3) from /dev/vda \
             (ext4, LABEL=mfv-config)",
            "  /dev/sda1: absent (no such device)",
            "  LABEL=mfv-config /dev/vda (ext4): taken: mfv.toml.prev (last-known-good, \
             generation 3); skipped: mfv.toml invalid (3 errors)",
        ][..],
        &INVALID_CONFIG_ERRORS,
    ]
    .concat();
    assert_eq!(report, expected);
    expect_hostname_then_poweroff(&mut guest, Some("cfg-before-edit"))
}
