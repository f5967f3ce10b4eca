//! The boot media `cargo xtask image` writes beside `vmlinuz` and `initrd.img`, so that every
//! way a bare machine boots the appliance comes out of one build: an iPXE script and a GRUB
//! network-boot configuration for PXE (both load the two files from the server they came
//! from), and a hybrid ISO that boots as a CD and, written to a USB stick, from BIOS and UEFI.
//!
//! Every medium boots the same kernel command line, [`KERNEL_ARGS`]: the kernel and PID 1
//! speak on the screen (`tty0`) and on the first serial port, where racks have their serial
//! consoles, and `quiet` keeps kernel messages off the console screen.
//!
//! The ISO is made with `grub-mkimage` and `xorriso` rather than `grub-mkrescue`, which stamps
//! the volume with the current time (its UUID, which its embedded configuration searches for)
//! and copies every GRUB module and font (about 20 MB). Here the modules the boot needs are
//! built into the two GRUB core images, one for BIOS (El Torito, and on a stick through
//! GRUB's hybrid MBR) and one for UEFI (`EFI/BOOT/BOOTX64.EFI` in a small FAT image, both the
//! El Torito EFI image and the stick's EFI system partition). Both search the ISO by its
//! UUID, which xorriso derives from the volume date; that date, every file date and the FAT
//! image's come from the image's `SOURCE_DATE_EPOCH`, so the same inputs give the same ISO
//! byte for byte. Nothing on the medium is written at boot (no GRUB environment block), and
//! once the kernel has loaded the initrd the appliance needs nothing from the medium.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use mfv_linux::utc::UtcTime;
// The names the appliance tests boot the ISO and the iPXE script by.
use mfv_tests::{GRUB_NETBOOT_CONFIG, IPXE_SCRIPT, ISO_FILE};

use crate::cmd;

/// The kernel command line of every boot medium: the console on the screen and the first serial
/// port, no kernel messages on it, and no crypto self-tests at boot (about 0.2 s of the kernel's
/// start; the kernel runs them anyway when booted with `fips=1`).
pub const KERNEL_ARGS: &str = "console=tty0 console=ttyS0,115200n8 quiet cryptomgr.notests";

/// The media's kernel arguments other than `console=`, for QEMU boots of the same image
/// without a medium, which name their own console.
pub fn kernel_args_without_console() -> impl Iterator<Item = &'static str> {
    KERNEL_ARGS
        .split(' ')
        .filter(|arg| !arg.starts_with("console="))
}
/// The ISO's volume label.
const VOLUME_ID: &str = "MINIFED_VIRT";
/// Where the kernel and initrd are on the ISO, and its GRUB configuration.
const ISO_KERNEL: &str = "/boot/vmlinuz";
const ISO_INITRD: &str = "/boot/initrd.img";
const ISO_GRUB_DIR: &str = "/boot/grub";
/// The BIOS core image on the ISO (El Torito boot image, also what the hybrid MBR loads).
const ISO_BIOS_IMAGE: &str = "/boot/grub/bios.img";
/// The GRUB module directories of the two platforms, with their Debian packages.
const GRUB_BIOS: (&str, &str) = ("/usr/lib/grub/i386-pc", "grub-pc-bin");
const GRUB_EFI: (&str, &str) = ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin");
/// GRUB's MBR for an ISO written to a disk: it loads the El Torito core image.
const HYBRID_MBR: &str = "boot_hybrid.img";
/// The GRUB modules built into both core images: read the ISO (also as a partitioned disk),
/// find it by UUID, run the menu, load Linux, speak on the serial port.
const GRUB_MODULES: &[&str] = &[
    "iso9660",
    "part_msdos",
    "part_gpt",
    "search",
    "search_fs_uuid",
    "normal",
    "configfile",
    "echo",
    "test",
    "linux",
    "serial",
    "terminal",
    "all_video",
];
/// The BIOS core image also needs the BIOS disk driver.
const GRUB_BIOS_MODULES: &[&str] = &["biosdisk"];
/// The FAT image's volume id and label (fixed, for a reproducible ISO).
const EFI_IMAGE_VOLUME_ID: &str = "4d465601";
const EFI_IMAGE_LABEL: &str = "MFV_EFI";
/// Room in the FAT image beside the EFI core image, in KiB.
const EFI_IMAGE_SLACK_KIB: u64 = 256;
/// How long GRUB's menu waits before it boots, in seconds.
const MENU_TIMEOUT_SECONDS: u32 = 3;
/// The name the menus give the appliance.
const MENU_ENTRY: &str = "Minifed-Virt";

/// What [`write()`] made.
#[derive(Debug, Clone)]
pub struct MediaReport {
    /// The files written, with their sizes in bytes, in the order written.
    pub files: Vec<(PathBuf, u64)>,
}

impl MediaReport {
    /// The manifest's section on the boot media.
    pub fn manifest(&self) -> String {
        let mut text = format!("# Boot media (kernel command line: {KERNEL_ARGS}): file, bytes\n");
        for (path, bytes) in &self.files {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{name} {bytes}");
        }
        text
    }
}

/// Writes the iPXE script, the GRUB network-boot configuration and the ISO into `out`, which
/// holds `vmlinuz` and `initrd.img`; `epoch` dates the ISO (seconds since 1970).
pub fn write(out: &Path, epoch: u32) -> Result<MediaReport> {
    let kernel = out.join("vmlinuz");
    let initrd = out.join("initrd.img");
    let mut files = Vec::new();
    for (name, text) in [
        (IPXE_SCRIPT, ipxe_script()),
        (GRUB_NETBOOT_CONFIG, grub_netboot_config()),
    ] {
        let path = out.join(name);
        fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        files.push((path, text.len() as u64));
    }
    let iso = out.join(ISO_FILE);
    write_iso(&kernel, &initrd, &out.join("iso-staging"), &iso, epoch)?;
    let bytes = fs::metadata(&iso)
        .with_context(|| format!("cannot stat {}", iso.display()))?
        .len();
    files.push((iso, bytes));
    Ok(MediaReport { files })
}

/// The iPXE script: names relative to the script's own URL, so it works from any TFTP or HTTP
/// server that serves the three files side by side. `initrd=` names the initrd for the
/// kernel's EFI stub when iPXE runs on UEFI.
fn ipxe_script() -> String {
    format!(
        "#!ipxe\n\
         # Minifed-Virt: boots vmlinuz and initrd.img from where this script came from.\n\
         echo {MENU_ENTRY}: loading vmlinuz and initrd.img from ${{cwduri}}\n\
         kernel vmlinuz initrd=initrd.img {KERNEL_ARGS}\n\
         initrd initrd.img\n\
         boot\n"
    )
}

/// Selects the serial port and screen for GRUB's menu and sets its timeout.
fn grub_terminal() -> String {
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set default=0\n\
         set timeout={MENU_TIMEOUT_SECONDS}\n"
    )
}

/// A GRUB menu entry booting `kernel` and `initrd`.
fn grub_entry(kernel: &str, initrd: &str) -> String {
    format!(
        "menuentry \"{MENU_ENTRY}\" {{\n    \
         echo \"Loading {kernel} and {initrd}...\"\n    \
         linux {kernel} {KERNEL_ARGS}\n    \
         initrd {initrd}\n\
         }}\n"
    )
}

/// The configuration of a GRUB network boot: its root is the TFTP server, so the two files
/// are read from the top of the TFTP directory.
fn grub_netboot_config() -> String {
    format!(
        "# Minifed-Virt for a GRUB network boot: the grub.cfg of the directory grub-mknetdir\n\
         # made on the TFTP server (boot/grub/grub.cfg), with vmlinuz and initrd.img at the top.\n\
         {}{}",
        grub_terminal(),
        grub_entry("/vmlinuz", "/initrd.img")
    )
}

/// The GRUB configuration on the ISO.
fn iso_grub_config() -> String {
    format!(
        "# Minifed-Virt on a CD or USB stick.\n{}{}",
        grub_terminal(),
        grub_entry(ISO_KERNEL, ISO_INITRD)
    )
}

/// The configuration built into both core images: find the ISO (on a CD, or a stick that
/// UEFI started from its EFI partition) and read its grub.cfg.
fn early_config(uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {uuid}\n\
         set prefix=($root){ISO_GRUB_DIR}\n\
         configfile $prefix/grub.cfg\n"
    )
}

/// The ISO's volume date for xorriso (`YYYYMMDDhhmmsscc`) and the UUID GRUB reads from it
/// (`YYYY-MM-DD-hh-mm-ss-cc`).
fn volume_date(epoch: u32) -> (String, String) {
    let time = UtcTime::from_unix_seconds(i64::from(epoch));
    let UtcTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    } = time;
    (
        format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}00"),
        format!("{year:04}-{month:02}-{day:02}-{hour:02}-{minute:02}-{second:02}-00"),
    )
}

/// The GRUB module directory of a platform; the error names the package that brings it.
fn grub_dir<'a>((dir, package): (&'a str, &str)) -> Result<&'a str> {
    if !Path::new(dir).is_dir() {
        bail!(
            "{dir} does not exist: the ISO needs GRUB's modules from the Debian package {package} \
             (cargo xtask deps installs it)"
        );
    }
    Ok(dir)
}

/// A command for `program`, after checking it is on the PATH; the error names its package.
fn tool(program: &str, package: &str) -> Result<Command> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if !found {
        bail!(
            "{program} not found: the ISO needs the Debian package {package} (cargo xtask deps \
             installs it)"
        );
    }
    Ok(Command::new(program))
}

/// Builds the hybrid ISO at `iso` from `kernel` and `initrd`, with its GRUB images made in
/// `staging`; written as `iso`.partial and renamed, so a reader never sees half an ISO.
fn write_iso(kernel: &Path, initrd: &Path, staging: &Path, iso: &Path, epoch: u32) -> Result<()> {
    let bios_dir = grub_dir(GRUB_BIOS)?;
    let efi_dir = grub_dir(GRUB_EFI)?;
    if staging.exists() {
        fs::remove_dir_all(staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    let efi_boot_dir = staging.join("efi/EFI/BOOT");
    fs::create_dir_all(&efi_boot_dir)
        .with_context(|| format!("cannot create {}", efi_boot_dir.display()))?;
    let (modification_date, uuid) = volume_date(epoch);
    let early = staging.join("early.cfg");
    let grub_cfg = staging.join("grub.cfg");
    for (path, text) in [
        (&early, early_config(&uuid)),
        (&grub_cfg, iso_grub_config()),
    ] {
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }

    let bios_image = staging.join("bios.img");
    let efi_binary = efi_boot_dir.join("BOOTX64.EFI");
    for (dir, format, output, extra) in [
        (bios_dir, "i386-pc-eltorito", &bios_image, GRUB_BIOS_MODULES),
        (efi_dir, "x86_64-efi", &efi_binary, &[][..]),
    ] {
        let mut mkimage = tool("grub-mkimage", "grub-common")?;
        mkimage
            .args(["-O", format, "-d", dir, "-p", ISO_GRUB_DIR, "-c"])
            .arg(&early)
            .arg("-o")
            .arg(output)
            .args(GRUB_MODULES)
            .args(extra);
        cmd::stdout(&mut mkimage)?;
    }

    // The FAT image holding EFI/BOOT/BOOTX64.EFI, its dates fixed: mkfs.vfat's --invariant
    // for the boot sector and root, and mcopy -m keeps the files' dates, set here.
    let efi_image = staging.join("efi.img");
    let efi_kib = fs::metadata(&efi_binary)
        .with_context(|| format!("cannot stat {}", efi_binary.display()))?
        .len()
        .div_ceil(1024)
        + EFI_IMAGE_SLACK_KIB;
    let dated = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(epoch));
    for path in [&efi_binary, &efi_boot_dir, &staging.join("efi/EFI")] {
        File::open(path)
            .and_then(|file| file.set_modified(dated))
            .with_context(|| format!("cannot set the date of {}", path.display()))?;
    }
    let mut mkfs = tool("mkfs.vfat", "dosfstools")?;
    mkfs.args([
        "--invariant",
        "-C",
        "-i",
        EFI_IMAGE_VOLUME_ID,
        "-n",
        EFI_IMAGE_LABEL,
    ])
    .arg(&efi_image)
    .arg(efi_kib.to_string());
    cmd::stdout(&mut mkfs)?;
    let mut mcopy = tool("mcopy", "mtools")?;
    mcopy
        .args(["-s", "-m", "-i"])
        .arg(&efi_image)
        .arg(staging.join("efi/EFI"))
        .arg("::/");
    cmd::stdout(&mut mcopy)?;

    let partial = iso.with_extension("iso.partial");
    let _ = fs::remove_file(&partial);
    let graft = |at: &str, source: &Path| -> Result<String> {
        let source = source
            .to_str()
            .with_context(|| format!("{} is not UTF-8", source.display()))?;
        // Graft points take `=` and `\` escaped.
        Ok(format!(
            "{at}={}",
            source.replace('\\', "\\\\").replace('=', "\\=")
        ))
    };
    let mut xorriso = tool("xorriso", "xorriso")?;
    xorriso
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&partial)
        .args(["-r", "-V", VOLUME_ID])
        .arg(format!("--modification-date={modification_date}"))
        .args([
            "-b",
            ISO_BIOS_IMAGE.trim_start_matches('/'),
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "--grub2-boot-info",
            "--grub2-mbr",
        ])
        .arg(Path::new(bios_dir).join(HYBRID_MBR))
        .args([
            "-eltorito-alt-boot",
            "-e",
            "--interval:appended_partition_2:all::",
            "-no-emul-boot",
            "-isohybrid-gpt-basdat",
            "-append_partition",
            "2",
            "0xef",
        ])
        .arg(&efi_image)
        .arg("-graft-points")
        .args([
            graft(ISO_KERNEL, kernel)?,
            graft(ISO_INITRD, initrd)?,
            graft(&format!("{ISO_GRUB_DIR}/grub.cfg"), &grub_cfg)?,
            graft(ISO_BIOS_IMAGE, &bios_image)?,
        ])
        // Back in xorriso's own commands: every file's dates from the epoch.
        .args(["--", "-alter_date_r", "b", &format!("={epoch}"), "/", "--"]);
    cmd::stdout(&mut xorriso)?;
    fs::rename(&partial, iso)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), iso.display()))?;
    fs::remove_dir_all(staging).with_context(|| format!("cannot remove {}", staging.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn every_medium_boots_the_same_command_line() {
        for text in [ipxe_script(), grub_netboot_config(), iso_grub_config()] {
            assert!(text.contains(KERNEL_ARGS), "{text}");
        }
        assert!(KERNEL_ARGS.contains("console=ttyS0"));
    }

    #[test]
    fn the_ipxe_script_loads_the_files_beside_it() {
        let script = ipxe_script();
        assert!(script.starts_with("#!ipxe\n"), "{script}");
        assert!(
            script.contains("\nkernel vmlinuz initrd=initrd.img console=tty0 "),
            "{script}"
        );
        assert!(script.contains("\ninitrd initrd.img\nboot\n"), "{script}");
    }

    #[test]
    fn grub_reads_the_files_from_the_tftp_root_or_the_iso() {
        let netboot = grub_netboot_config();
        assert!(netboot.contains("    linux /vmlinuz console="), "{netboot}");
        assert!(netboot.contains("    initrd /initrd.img\n"), "{netboot}");
        let iso = iso_grub_config();
        assert!(iso.contains("    linux /boot/vmlinuz console="), "{iso}");
        assert!(iso.contains("serial --unit=0 --speed=115200\n"), "{iso}");
    }

    #[test]
    fn the_volume_date_gives_grub_its_uuid() {
        assert_eq!(
            volume_date(1_700_000_000),
            (
                "2023111422132000".to_owned(),
                "2023-11-14-22-13-20-00".to_owned()
            )
        );
        assert_eq!(
            volume_date(0),
            (
                "1970010100000000".to_owned(),
                "1970-01-01-00-00-00-00".to_owned()
            )
        );
        assert!(
            early_config("2023-11-14-22-13-20-00").contains("--set=root 2023-11-14-22-13-20-00\n")
        );
    }

    #[test]
    fn a_missing_tool_or_grub_platform_names_its_package() {
        let error = tool("grub-mkimage-nonexistent", "grub-common")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("grub-mkimage-nonexistent not found"),
            "{error}"
        );
        assert!(error.contains("grub-common"), "{error}");
        let error = grub_dir(("/nonexistent/grub/i386-pc", "grub-pc-bin"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/nonexistent/grub/i386-pc") && error.contains("grub-pc-bin"),
            "{error}"
        );
    }

    #[test]
    fn the_manifest_lists_each_medium_with_its_size() {
        let report = MediaReport {
            files: vec![
                (PathBuf::from("/t/boot.ipxe"), 200),
                (PathBuf::from("/t/minifed-virt.iso"), 81_446_912),
            ],
        };
        assert_eq!(
            report.manifest(),
            format!(
                "# Boot media (kernel command line: {KERNEL_ARGS}): file, bytes\n\
                 boot.ipxe 200\nminifed-virt.iso 81446912\n"
            )
        );
    }

    /// Builds the ISO twice from small stand-ins for the kernel and initrd: the same bytes,
    /// the stand-ins on it, and a BIOS boot sector and EFI partition.
    #[test]
    fn the_iso_is_the_same_from_the_same_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        fs::write(out.join("vmlinuz"), b"a kernel").unwrap();
        fs::write(out.join("initrd.img"), b"an initrd").unwrap();
        let first = write(out, 1_700_000_000).unwrap();
        let iso = out.join(ISO_FILE);
        let bytes = fs::read(&iso).unwrap();
        assert_eq!(
            first.files.last().unwrap(),
            &(iso.clone(), bytes.len() as u64)
        );
        assert_eq!(&bytes[510..512], [0x55, 0xaa], "no MBR signature");
        assert!(!out.join("iso-staging").exists());
        assert!(!out.join("minifed-virt.iso.partial").exists());
        std::thread::sleep(Duration::from_millis(1100));
        write(out, 1_700_000_000).unwrap();
        assert!(fs::read(&iso).unwrap() == bytes, "two builds differ");
        let listing = cmd::stdout(
            Command::new("xorriso")
                .args(["-indev"])
                .arg(&iso)
                .args(["-find", "/", "-type", "f"]),
        )
        .unwrap();
        for path in ["/boot/vmlinuz", "/boot/initrd.img", "/boot/grub/grub.cfg"] {
            assert!(listing.contains(&format!("'{path}'")), "{listing}");
        }
        assert_eq!(
            fs::read_to_string(out.join(IPXE_SCRIPT)).unwrap(),
            ipxe_script()
        );
    }
}
