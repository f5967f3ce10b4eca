//! Appliance tests of the boot media `cargo xtask image` writes, each booted as a user boots it
//! rather than with QEMU's `-kernel`: PXE on BIOS (the NIC's iPXE ROM fetches boot.ipxe, vmlinuz
//! and initrd.img from QEMU's TFTP server) and the same on UEFI, GRUB's network boot on BIOS and on
//! UEFI (iPXE starts GRUB's PXE or EFI image from a `grub-mknetdir` directory whose grub.cfg is
//! grub-netboot.cfg, and GRUB fetches the two files), the ISO as a CD on BIOS and on UEFI, the ISO
//! written to a USB stick on BIOS and on UEFI (OVMF). Each host starts without a configuration; the
//! operator at the serial console gives it DHCP, and the test waits for the first HTTPS answer on
//! the forwarded port. Each medium's SHA-256 is the same afterwards, and the USB stick on BIOS is
//! pulled out once the host serves, which it keeps doing: it runs from RAM. Each test prints its
//! timings (`--nocapture`).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use mfv_tests::https::HttpsClient;
use mfv_tests::setup_screen::choose_dhcp_on_the_first_card;
use mfv_tests::{
    ApplianceImage, BootSource, Firmware, GRUB_NETBOOT_CONFIG, Guest, GuestSpec, IPXE_SCRIPT,
    ISO_FILE, NicModel, USB_STICK_DEVICE,
};
use sha2::{Digest, Sha256};

/// Firmware, the medium, boot and the services, under TCG on a loaded machine.
const LINE_TIMEOUT: Duration = Duration::from_secs(300);
/// The address QEMU's user network gives the host, which its certificate names.
const HOST_ADDRESS: &str = "10.0.2.15";
/// The first line mfv-init writes once the kernel started it.
const INIT_STARTED: &str = "mfv-init: phase mounts: ";

/// The SHA-256 of each file, to compare before and after a boot.
fn checksums(files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    files
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            Ok((path.clone(), digest))
        })
        .collect()
}

/// How long a boot took to reach mfv-init and the first HTTPS answer, from QEMU's start.
struct Timings {
    init: Duration,
    first_answer: Duration,
}

/// A guest booting `source` on `firmware` with one virtio NIC and port 443 forwarded.
fn spec(source: BootSource, firmware: Firmware) -> anyhow::Result<GuestSpec> {
    Ok(GuestSpec::new(ApplianceImage::shared()?)
        .boot_source(source)
        .firmware(firmware)
        .nic(NicModel::VirtioNet)
        .forward_port(443))
}

/// Boots `spec` until the web server answers: mfv-init starts, the operator at the serial
/// console chooses DHCP on the first card, and `/` over HTTPS on the forwarded port answers
/// in config mode.
fn boot_until_serving(spec: GuestSpec) -> anyhow::Result<(Guest, HttpsClient, Timings)> {
    let mut guest = spec.boot()?;
    guest.wait_for_line(INIT_STARTED, LINE_TIMEOUT)?;
    let init = guest.elapsed();
    guest.wait_for_line("config: no configuration found", LINE_TIMEOUT)?;
    choose_dhcp_on_the_first_card(&mut guest, LINE_TIMEOUT)?;
    let port = guest.host_port(443).context("no forward for 443")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), HOST_ADDRESS)?;
    let page = client.wait_until_serving(LINE_TIMEOUT)?;
    let first_answer = guest.elapsed();
    ensure!(
        page.status == 200 && page.text().contains("setup token"),
        "config mode's page: {} {}",
        page.status,
        page.text()
    );
    Ok((guest, client, Timings { init, first_answer }))
}

/// Says how long `medium` took.
fn report(medium: &str, timings: &Timings) {
    eprintln!(
        "{medium}: QEMU start to mfv-init {:.1} s, to the first HTTPS answer {:.1} s",
        timings.init.as_secs_f64(),
        timings.first_answer.as_secs_f64()
    );
}

/// The ISO written to a stick (a copy in `dir`, which the guest may write), as `dd` does.
fn written_stick(image: &ApplianceImage, dir: &Path) -> anyhow::Result<PathBuf> {
    let iso = image.medium(ISO_FILE)?;
    let stick = dir.join("stick.img");
    std::fs::copy(&iso, &stick)
        .with_context(|| format!("copying {} to {}", iso.display(), stick.display()))?;
    Ok(stick)
}

/// Boots the image's directory over PXE on `firmware`: iPXE gets boot.ipxe from QEMU's TFTP
/// server, and the script the kernel and initrd beside it.
fn pxe(firmware: Firmware, medium: &str) -> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let served = [
        image.medium(IPXE_SCRIPT)?,
        image.kernel.clone(),
        image.initrd.clone(),
    ];
    let before = checksums(&served)?;
    let (_guest, _client, timings) = boot_until_serving(spec(
        BootSource::Network {
            tftp_dir: image.dir().to_path_buf(),
            bootfile: IPXE_SCRIPT.to_owned(),
        },
        firmware,
    )?)?;
    report(medium, &timings);
    ensure!(checksums(&served)? == before, "the PXE files changed");
    Ok(())
}

#[test]
fn pxe_on_bios_fetches_the_ipxe_script_kernel_and_initrd_over_tftp() -> anyhow::Result<()> {
    pxe(Firmware::Bios, "PXE on BIOS")
}

#[test]
fn pxe_on_uefi_fetches_the_ipxe_script_kernel_and_initrd_over_tftp() -> anyhow::Result<()> {
    pxe(Firmware::Uefi, "PXE on UEFI")
}

/// GRUB's PXE image below a network directory, as `grub-mknetdir --subdir=boot/grub` makes it.
const GRUB_PXE_IMAGE: &str = "boot/grub/i386-pc/core.0";

/// A GRUB network directory in `dir` for `platform`, made by `grub-mknetdir`, with the image's
/// grub-netboot.cfg as its grub.cfg and the kernel and initrd at the top.
fn grub_network_directory(
    image: &ApplianceImage,
    dir: &Path,
    platform: GrubPlatform,
) -> anyhow::Result<()> {
    let output = std::process::Command::new("grub-mknetdir")
        .arg(format!("--net-directory={}", dir.display()))
        .args(["--subdir=boot/grub", "-d", platform.modules])
        .output()
        .with_context(|| {
            format!(
                "running grub-mknetdir (install the Debian packages grub-common and {})",
                platform.package
            )
        })?;
    ensure!(
        output.status.success(),
        "grub-mknetdir failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let copies = [
        (
            image.medium(GRUB_NETBOOT_CONFIG)?,
            dir.join("boot/grub/grub.cfg"),
        ),
        (image.kernel.clone(), dir.join("vmlinuz")),
        (image.initrd.clone(), dir.join("initrd.img")),
    ];
    for (from, to) in copies {
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// What a GRUB network boot directory is made for.
#[derive(Debug, Clone, Copy)]
struct GrubPlatform {
    /// GRUB's modules for the platform.
    modules: &'static str,
    /// The Debian package that has them.
    package: &'static str,
    /// The image the firmware's network boot loads, relative to the TFTP directory.
    image: &'static str,
    firmware: Firmware,
    /// How the tests name it.
    name: &'static str,
}

const GRUB_BIOS: GrubPlatform = GrubPlatform {
    modules: "/usr/lib/grub/i386-pc",
    package: "grub-pc-bin",
    image: GRUB_PXE_IMAGE,
    firmware: Firmware::Bios,
    name: "GRUB network boot on BIOS",
};

const GRUB_UEFI: GrubPlatform = GrubPlatform {
    modules: "/usr/lib/grub/x86_64-efi",
    package: "grub-efi-amd64-bin",
    image: "boot/grub/x86_64-efi/core.efi",
    firmware: Firmware::Uefi,
    name: "GRUB network boot on UEFI",
};

/// The firmware's network boot loads GRUB from a `grub-mknetdir` directory for `platform`,
/// and GRUB reads grub-netboot.cfg and the kernel and initrd it names over TFTP.
fn grub_netboot(platform: GrubPlatform) -> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let dir = tempfile::tempdir()?;
    grub_network_directory(image, dir.path(), platform)?;
    let served = [
        dir.path().join("boot/grub/grub.cfg"),
        dir.path().join("vmlinuz"),
        dir.path().join("initrd.img"),
    ];
    let before = checksums(&served)?;
    let (guest, _client, timings) = boot_until_serving(spec(
        BootSource::Network {
            tftp_dir: dir.path().to_path_buf(),
            bootfile: platform.image.to_owned(),
        },
        platform.firmware,
    )?)?;
    report(platform.name, &timings);
    ensure!(
        guest
            .serial_log()
            .contains("Loading /vmlinuz and /initrd.img..."),
        "{}: GRUB did not run grub-netboot.cfg's entry:\n{}",
        platform.name,
        guest.serial_log()
    );
    ensure!(
        checksums(&served)? == before,
        "{}: the served files changed",
        platform.name
    );
    Ok(())
}

#[test]
fn grub_netboot_on_bios_reads_grub_netboot_cfg_and_the_files_over_tftp() -> anyhow::Result<()> {
    grub_netboot(GRUB_BIOS)
}

#[test]
fn grub_netboot_on_uefi_reads_grub_netboot_cfg_and_the_files_over_tftp() -> anyhow::Result<()> {
    grub_netboot(GRUB_UEFI)
}

/// Boots the ISO as a CD with `firmware`; `medium` names it in the timings and errors.
fn cd(firmware: Firmware, medium: &str) -> anyhow::Result<()> {
    let iso = ApplianceImage::shared()?.medium(ISO_FILE)?;
    let before = checksums(std::slice::from_ref(&iso))?;
    let (guest, _client, timings) =
        boot_until_serving(spec(BootSource::Cdrom(iso.clone()), firmware)?)?;
    report(medium, &timings);
    ensure!(
        guest.serial_log().contains("GNU GRUB"),
        "{medium}: GRUB's menu is not on the serial console:\n{}",
        guest.serial_log()
    );
    ensure!(
        checksums(std::slice::from_ref(&iso))? == before,
        "{medium}: the ISO changed"
    );
    Ok(())
}

#[test]
fn the_iso_boots_as_a_cd_on_bios() -> anyhow::Result<()> {
    cd(Firmware::Bios, "CD on BIOS")
}

#[test]
fn the_iso_boots_as_a_cd_on_uefi() -> anyhow::Result<()> {
    cd(Firmware::Uefi, "CD on UEFI")
}

#[test]
fn the_iso_on_a_usb_stick_boots_on_bios_and_the_host_serves_on_once_the_stick_is_pulled()
-> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let dir = tempfile::tempdir()?;
    let stick = written_stick(image, dir.path())?;
    let before = checksums(&[image.medium(ISO_FILE)?])?;
    let (mut guest, client, timings) =
        boot_until_serving(spec(BootSource::UsbStick(stick.clone()), Firmware::Bios)?)?;
    report("USB stick on BIOS", &timings);

    let pulled = Instant::now();
    guest.unplug(USB_STICK_DEVICE)?;
    guest.wait_for_line_anywhere("mfv-init: hotplug: disk removed: sd", LINE_TIMEOUT)?;
    let page = client.get("/", &[])?;
    ensure!(
        page.status == 200 && page.text().contains("setup token"),
        "after the stick was pulled: {} {}",
        page.status,
        page.text()
    );
    eprintln!(
        "USB stick on BIOS: pulled; the guest saw it and served again within {:.1} s",
        pulled.elapsed().as_secs_f64()
    );
    let after: Vec<String> = checksums(&[stick])?
        .into_iter()
        .map(|(_, digest)| digest)
        .collect();
    ensure!(
        after == [before[0].1.clone()],
        "the stick differs from the ISO after the boot"
    );
    Ok(())
}

#[test]
fn the_iso_on_a_usb_stick_boots_on_uefi() -> anyhow::Result<()> {
    let image = ApplianceImage::shared()?;
    let dir = tempfile::tempdir()?;
    let stick = written_stick(image, dir.path())?;
    let before = checksums(&[image.medium(ISO_FILE)?])?;
    let (guest, _client, timings) =
        boot_until_serving(spec(BootSource::UsbStick(stick.clone()), Firmware::Uefi)?)?;
    report("USB stick on UEFI", &timings);
    let log = guest.serial_log();
    ensure!(
        log.contains("BdsDxe: starting") && log.contains("GNU GRUB"),
        "OVMF did not start GRUB from the stick:\n{log}"
    );
    ensure!(
        checksums(&[stick])?[0].1 == before[0].1,
        "the stick differs from the ISO after the boot"
    );
    Ok(())
}
