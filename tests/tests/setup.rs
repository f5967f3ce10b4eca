//! Acceptance tests of the first boot without a usable configuration: the console setup
//! screen on the serial line (plain mode), driven by typing on it, gives the host its network
//! (DHCP from QEMU's user network) and the status screen then shows the address; nobody
//! answering makes PID 1 take DHCP on the first card with link after `mfv.setup_timeout`; an
//! invalid configuration's every error is on the screen before the setup; a driver module the
//! image lacks is loaded from a volume.

use std::time::Duration;

use anyhow::Context;
use mfv_tests::setup_screen::{
    SETUP_PRESS_ENTER, USER_NETWORK_LEASE, choose_dhcp_on_the_first_card, type_line,
};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, GuestSpec, NicModel, VolumeFilesystem, VolumeImage,
};

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// The address QEMU's user network hands out first.
const LEASE: &str = USER_NETWORK_LEASE;

/// A guest with one virtio NIC, `quiet` (no kernel messages inside the lines read back) and
/// `args`.
fn spec(args: &[&str]) -> anyhow::Result<GuestSpec> {
    let mut spec = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .nic(NicModel::VirtioNet);
    for arg in args {
        spec = spec.kernel_arg(*arg);
    }
    Ok(spec)
}

#[test]
fn without_a_configuration_the_operator_picks_a_card_and_dhcp_on_the_serial_console()
-> anyhow::Result<()> {
    // A long timeout: the operator answers, not the fallback.
    let mut guest = spec(&["mfv.setup_timeout=600"])?.boot()?;
    guest.wait_for_line(
        "mfv-init: setup: waiting for an operator at the console; without one, DHCP on the \
         first network card with link in 600 s",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("Minifed-Virt 0.1.0: setup", LINE_TIMEOUT)?;
    guest.wait_for_line("This host has no usable configuration:", LINE_TIMEOUT)?;
    guest.wait_for_line("  config: no configuration found", LINE_TIMEOUT)?;
    let card = guest.wait_for_line("  1) eth0  ", LINE_TIMEOUT)?;
    anyhow::ensure!(
        card.contains("virtio_net") && card.contains("link up") && card.contains("52:54:00:"),
        "the card's line lacks its driver, link or MAC: {card:?}"
    );
    guest.wait_for_line("DHCP starts on the first card with link in ", LINE_TIMEOUT)?;
    choose_dhcp_on_the_first_card(&mut guest, LINE_TIMEOUT)?;
    let log = guest.serial_log();
    anyhow::ensure!(
        !log.contains("\u{1b}["),
        "the serial console got control sequences:\n{log}"
    );
    Ok(())
}

#[test]
fn nobody_at_the_console_means_dhcp_on_the_first_card_with_link_after_the_timeout()
-> anyhow::Result<()> {
    let mut guest = spec(&["mfv.setup_timeout=5"])?.boot()?;
    guest.wait_for_line(
        "mfv-init: setup: nobody chose a network within 5 s: DHCP on eth0 (the first network \
         card with link), until a lease arrives",
        LINE_TIMEOUT,
    )?;
    let bound = guest.wait_for_line_anywhere("mfv-init: net: eth0 bound ", LINE_TIMEOUT)?;
    anyhow::ensure!(bound.contains(LEASE), "unexpected lease: {bound:?}");
    // The screen stays the setup screen and says where the fallback stands.
    guest.wait_for_line_anywhere(
        &format!("Nobody chose a network within 5 s: DHCP on eth0 has {LEASE}."),
        LINE_TIMEOUT,
    )?;
    // Below it, how to reach config mode: the URL on the lease, the fingerprint, the token.
    guest.wait_for_line("  web: https://10.0.2.15/", LINE_TIMEOUT)?;
    guest.wait_for_line("  certificate SHA-256 fingerprint", LINE_TIMEOUT)?;
    guest.wait_for_line("  setup token: ", LINE_TIMEOUT)?;
    Ok(())
}

#[test]
fn an_invalid_configuration_shows_every_error_on_the_setup_screen_then_the_setup()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("config.img");
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file(
            "mfv.toml",
            "version = 1\n\n[host]\nhostname = \"-bad-host-\"\n\n[web]\nport = 70000\n\n\
             [netwrk]\n",
        )
        .build(&volume)
        .context("the config volume")?;
    let mut guest = spec(&["mfv.setup_timeout=600"])?
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line("This host has no usable configuration:", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "  config: mfv.toml on /dev/vda (ext4, LABEL=mfv-config) is invalid",
        LINE_TIMEOUT,
    )?;
    for error in [
        "      mfv.toml:4:12: host.hostname: \"-bad-host-\": the label \"-bad-host-\" starts or \
         ends with '-'",
        "      mfv.toml:7:8: web.port: 70000 is out of range (1 to 65535)",
        "      mfv.toml:9:2: netwrk: unknown field \"netwrk\"; did you mean \"network\"?",
    ] {
        guest.wait_for_line(error, LINE_TIMEOUT)?;
    }
    choose_dhcp_on_the_first_card(&mut guest, LINE_TIMEOUT)
}

#[test]
fn a_driver_module_the_image_lacks_is_loaded_from_a_volume() -> anyhow::Result<()> {
    // dummy.ko is a module of the kernel package that the image does not carry.
    let kernel = mfv_tests::libvirtd::guest_kernel()?;
    let version = kernel
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("vmlinuz-"))
        .context("the kernel is not named vmlinuz-<version>")?;
    let package = kernel
        .parent()
        .and_then(std::path::Path::parent)
        .context("the kernel is not in <package>/boot")?;
    let module = package
        .join("lib/modules")
        .join(version)
        .join("kernel/drivers/net/dummy.ko");
    let dir = tempfile::tempdir()?;
    let stick = dir.path().join("drivers.img");
    VolumeImage::new(VolumeFilesystem::Vfat, "DRIVERS")
        .file(
            "dummy.ko",
            std::fs::read(&module).with_context(|| module.display().to_string())?,
        )
        .file("README.txt", "not a module")
        .build(&stick)
        .context("the driver volume")?;
    let mut guest = spec(&["mfv.setup_timeout=600"])?
        .disk(DiskSpec::file(DiskInterface::Virtio, &stick))
        .boot()?;
    guest.wait_for_line_anywhere(SETUP_PRESS_ENTER, LINE_TIMEOUT)?;
    for answer in ["", "d"] {
        type_line(&mut guest, answer)?;
    }
    guest.wait_for_line(
        "  1) dummy.ko on /dev/vda (vfat, LABEL=DRIVERS)",
        LINE_TIMEOUT,
    )?;
    type_line(&mut guest, "1")?;
    guest.wait_for_line("dummy loaded: its cards show on the screen", LINE_TIMEOUT)?;
    // The screen again, for the card the driver brought (dummy brings none of hardware).
    guest.wait_for_line(SETUP_PRESS_ENTER, LINE_TIMEOUT)?;
    Ok(())
}
