//! Acceptance tests for booting and shutting down the appliance: banner, boot phases, the
//! clock and the configured settings the boot does not apply yet, and the four ways the boot
//! ends (mfv.halt=poweroff, mfv.halt=reboot, SIGTERM to PID 1, ctrl-alt-del). They boot the
//! real image under QEMU TCG.

use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, VolumeFilesystem, VolumeImage,
};
use serde_json::json;

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline for QEMU to exit once the guest announced the shutdown.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The boot phases mfv-init logs, in order.
const PHASES: [&str; 9] = [
    "mounts", "cmdline", "coldplug", "config", "hostname", "network", "log", "clock", "settings",
];

fn spec() -> anyhow::Result<GuestSpec> {
    Ok(GuestSpec::new(ApplianceImage::shared()?))
}

/// Waits for `/init`'s line (the payload mounted), mfv-init's banner and every phase in
/// order, then the end of the boot sequence.
fn expect_boot_sequence(guest: &mut Guest) -> anyhow::Result<()> {
    let payload = guest.wait_for_line("mfv-early-init: /init at kernel uptime ", LINE_TIMEOUT)?;
    ensure!(
        payload.contains("payload /usr/lib/mfv/payload.squashfs (")
            && payload.contains("mounted read-only on /usr/lib/mfv/payload through /dev/loop"),
        "unexpected payload line: {payload:?}"
    );
    let banner = guest.wait_for_line("Minifed-Virt mfv-init ", LINE_TIMEOUT)?;
    ensure!(
        banner.starts_with("Minifed-Virt mfv-init ") && banner.contains("kernel uptime"),
        "unexpected banner line: {banner:?}"
    );
    for phase in PHASES {
        guest.wait_for_line(&format!("mfv-init: phase {phase}: ok"), LINE_TIMEOUT)?;
    }
    guest.wait_for_line("mfv-init: boot sequence complete in", LINE_TIMEOUT)?;
    Ok(())
}

/// Expects QEMU to exit with status 0 and the log to hold no kernel panic.
fn expect_clean_exit(mut guest: Guest, test: &str) -> anyhow::Result<()> {
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    ensure!(
        !guest.serial_log().contains("Kernel panic"),
        "the serial log shows a kernel panic"
    );
    eprintln!("{test}: QEMU start to exit {:.1?}", guest.elapsed());
    Ok(())
}

#[test]
fn boots_and_powers_off() -> anyhow::Result<()> {
    let mut guest = spec()?.kernel_arg("mfv.halt=poweroff").boot()?;
    expect_boot_sequence(&mut guest)?;
    eprintln!(
        "boots_and_powers_off: QEMU start to end of boot sequence {:.1?}",
        guest.elapsed()
    );
    guest.wait_for_line(
        "mfv-init: shutdown: poweroff requested by mfv.halt",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    expect_clean_exit(guest, "boots_and_powers_off")
}

#[test]
fn a_damaged_payload_halts_the_boot_and_says_what_to_do() -> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let dir = tempfile::tempdir()?;
    let initrd = dir.path().join("initrd.img");
    let mut bytes = std::fs::read(&image.initrd)
        .with_context(|| format!("reading {}", image.initrd.display()))?;
    // The payload squashfs is the first file of the initrd, stored as it is: spoil its magic.
    let magic = bytes
        .windows(4)
        .position(|window| window == b"hsqs")
        .context("the initrd holds no squashfs")?;
    bytes[magic..magic + 4].copy_from_slice(b"XXXX");
    std::fs::write(&initrd, &bytes)?;
    let damaged = ApplianceImage {
        kernel: image.kernel.clone(),
        initrd,
    };
    let mut guest = GuestSpec::new(&damaged).boot()?;
    let line = guest.wait_for_line("mfv-early-init: cannot start the host: ", LINE_TIMEOUT)?;
    ensure!(
        line.contains("cannot mount /dev/loop0 (squashfs) on /usr/lib/mfv/payload")
            && line.contains("write the medium again")
            && line.contains("Halting."),
        "unexpected failure line: {line:?}"
    );
    ensure!(
        !guest.serial_log().contains("Minifed-Virt mfv-init"),
        "mfv-init started without its payload"
    );
    Ok(())
}

#[test]
fn halt_reboot_exits_qemu() -> anyhow::Result<()> {
    let mut guest = spec()?.kernel_arg("mfv.halt=reboot").boot()?;
    expect_boot_sequence(&mut guest)?;
    guest.wait_for_line(
        "mfv-init: shutdown: reboot requested by mfv.halt",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: shutdown: reboot now", LINE_TIMEOUT)?;
    // -no-reboot turns the guest's reboot into QEMU exiting with status 0.
    expect_clean_exit(guest, "halt_reboot_exits_qemu")
}

#[test]
fn sigterm_to_pid1_powers_off() -> anyhow::Result<()> {
    let mut guest = spec()?.kernel_arg("mfv.rescue").boot()?;
    expect_boot_sequence(&mut guest)?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    guest.write_serial("kill -TERM 1\n")?;
    guest.wait_for_line(
        "mfv-init: shutdown: poweroff requested by SIGTERM",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    expect_clean_exit(guest, "sigterm_to_pid1_powers_off")
}

#[test]
fn ctrl_alt_del_reboots() -> anyhow::Result<()> {
    let mut guest = spec()?.boot()?;
    expect_boot_sequence(&mut guest)?;
    guest.wait_for_line("mfv-init: console screen started", LINE_TIMEOUT)?;
    // The PS/2 keyboard (i8042) is part of both machine types; the kernel's keyboard handler
    // turns ctrl-alt-del into SIGINT for PID 1 once mfv-init has disabled the hard reboot.
    let keys = json!({ "keys": [
        { "type": "qcode", "data": "ctrl" },
        { "type": "qcode", "data": "alt" },
        { "type": "qcode", "data": "delete" },
    ]});
    guest
        .qmp("send-key", keys)
        .context("pressing ctrl-alt-del")?;
    let line = guest.wait_for_line("mfv-init: shutdown: reboot requested by", LINE_TIMEOUT)?;
    ensure!(
        line.contains("SIGINT"),
        "unexpected shutdown reason: {line:?}"
    );
    guest.wait_for_line("mfv-init: shutdown: reboot now", LINE_TIMEOUT)?;
    expect_clean_exit(guest, "ctrl_alt_del_reboots")
}

/// What a configuration asks for that the boot does not apply is said on the console, and the
/// SNTP client starts for its `ntp_servers` (QEMU's restricted user network has no NTP server:
/// the client's sync itself is tested against chronyd in mfv-net's tests).
#[test]
fn the_clock_and_the_unapplied_settings_of_a_configuration_are_named_at_boot() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("config.img");
    let config = "version = 1\n\n[host]\nhostname = \"clockhost\"\n\
                  time_zone = \"Europe/Berlin\"\nntp_servers = [\"192.0.2.123\"]\n\n\
                  [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\n\
                  [network.bridge]\nports = [\"eth0\"]\nstp = true\n\n\
                  [auth]\nmin_password_length = 12\n";
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", config)
        .build(&volume)?;
    let mut guest = spec()?
        .kernel_arg("quiet")
        .kernel_arg("mfv.halt=poweroff")
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    let clock = guest.wait_for_phase("clock", LINE_TIMEOUT)?;
    for expected in [
        "clock: time_zone Europe/Berlin is not applied: the image carries no time zone data, \
         so times are UTC",
        "clock: keeping time with SNTP from 192.0.2.123",
    ] {
        ensure!(
            clock.iter().any(|line| line == expected),
            "{expected:?} missing in {clock:?}"
        );
    }
    let settings = guest.wait_for_phase("settings", LINE_TIMEOUT)?;
    for expected in [
        "settings: network.bridge.stp = true is not applied yet: the bridge runs without \
         spanning tree",
        "settings: auth is used by mfv user, mfv token and mfv auth; no login service runs yet",
    ] {
        ensure!(
            settings.iter().any(|line| line == expected),
            "{expected:?} missing in {settings:?}"
        );
    }
    guest.wait_for_line("mfv-init: shutdown: poweroff now", EXIT_TIMEOUT)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}
