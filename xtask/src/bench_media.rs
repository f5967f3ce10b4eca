//! `cargo xtask bench media`: each boot medium `cargo xtask image` writes, booted as a user
//! boots it, timed from QEMU's start to the first HTTPS answer, with the media's sizes.
//!
//! Media carry their own kernel command line (no `mfv.net=`), so a host boots into the
//! setup screen; the bench answers it at the serial console as an operator does (DHCP on the
//! first card) as soon as it shows, then asks for config mode's page. What differs between
//! media is the firmware and how the kernel and initrd reach RAM (QEMU's `-kernel` as the
//! reference row, iPXE over QEMU's TFTP server, El Torito from a CD, a USB disk), so the
//! table shows what each way costs before /init.

use std::path::Path;

use anyhow::{Context, Result, bail};
use mfv_tests::setup_screen::choose_dhcp_on_the_first_card;
use mfv_tests::{ApplianceImage, BootSource, Firmware, GuestSpec, IPXE_SCRIPT, ISO_FILE, NicModel};

use crate::Workspace;
use crate::bench::{self, INIT_LINE, Stats, first_config_mode_answer, today};
use crate::image::{self, Profile, mib};

/// The section's heading in BENCHMARKS.md.
const HEADING: &str = "## Boot media (`cargo xtask bench media`)";
/// Firmware, the medium, boot and the services, under TCG.
const BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// One way to boot.
struct Medium {
    name: &'static str,
    source: BootSource,
    firmware: Firmware,
}

/// The media, the direct kernel boot first as the reference row.
fn media(image: &ApplianceImage) -> Result<Vec<Medium>> {
    let pxe = || -> Result<BootSource> {
        image.medium(IPXE_SCRIPT)?;
        Ok(BootSource::Network {
            tftp_dir: image.dir().to_path_buf(),
            bootfile: IPXE_SCRIPT.to_owned(),
        })
    };
    let iso = image.medium(ISO_FILE)?;
    Ok(vec![
        Medium {
            name: "QEMU `-kernel` / `-initrd` (no medium)",
            source: BootSource::Kernel,
            firmware: Firmware::Bios,
        },
        Medium {
            name: "PXE on BIOS (iPXE, QEMU's TFTP)",
            source: pxe()?,
            firmware: Firmware::Bios,
        },
        Medium {
            name: "PXE on UEFI (OVMF's iPXE, QEMU's TFTP)",
            source: pxe()?,
            firmware: Firmware::Uefi,
        },
        Medium {
            name: "ISO as a CD on BIOS",
            source: BootSource::Cdrom(iso.clone()),
            firmware: Firmware::Bios,
        },
        Medium {
            name: "ISO as a CD on UEFI",
            source: BootSource::Cdrom(iso.clone()),
            firmware: Firmware::Uefi,
        },
        Medium {
            name: "ISO on a USB stick on BIOS",
            source: BootSource::UsbStick(iso.clone()),
            firmware: Firmware::Bios,
        },
        Medium {
            name: "ISO on a USB stick on UEFI",
            source: BootSource::UsbStick(iso),
            firmware: Firmware::Uefi,
        },
    ])
}

/// One boot: QEMU start to /init and to the first HTTPS answer, in seconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    to_init: f64,
    to_answer: f64,
}

/// Builds the release image and its media, boots each medium `runs` times and records the
/// figures in BENCHMARKS.md.
pub fn media_bench(workspace: &Workspace, runs: u32) -> Result<()> {
    let report = image::build(workspace, Profile::Release)?;
    let image = ApplianceImage::at(&workspace.appliance_dir())?;
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let mut rows = Vec::new();
    for medium in media(&image)? {
        let mut samples = Vec::new();
        for run in 1..=runs {
            let sample = boot_once(&image, &medium, scratch.path())
                .with_context(|| format!("{}, boot {run} of {runs}", medium.name))?;
            println!(
                "{}, boot {run}/{runs}: QEMU start to /init {:.3} s, to the first HTTPS answer {:.3} s",
                medium.name, sample.to_init, sample.to_answer
            );
            samples.push(sample);
        }
        rows.push((medium.name, samples));
    }
    let sizes = [
        ("vmlinuz", image.kernel.clone()),
        ("initrd.img", image.initrd.clone()),
        (ISO_FILE, image.medium(ISO_FILE)?),
    ];
    let mut size_rows = Vec::new();
    for (name, path) in sizes {
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        size_rows.push((name.to_owned(), bytes));
    }
    size_rows.push((
        "payload.squashfs (in initrd.img)".to_owned(),
        report.squashfs_bytes,
    ));
    let table = table(&rows, &size_rows)?;
    println!("\n{table}");
    let section = format!(
        "{HEADING}\n\nBoots the release image from each medium `cargo xtask image` writes, as a \
         user boots it (the harness's `BootSource` and `Firmware`, as `tests/tests/media.rs` \
         does), `--runs` times each: q35, 1 vCPU, 1024 MiB, TCG, one virtio NIC on \
         `-netdev user,restrict=on` with port 443 forwarded; PXE through QEMU's own TFTP \
         server; the USB stick is the ISO as a usb-storage disk on xHCI. The media's kernel \
         command line has no `mfv.net=`, so the host shows the setup screen: the bench chooses \
         DHCP on the first card at the serial console as soon as it shows, then asks for config \
         mode's page (a new try every 100 ms, as `bench boot`). The QEMU `-kernel` row is the \
         same image without a medium, with `console=ttyS0` and the media's other arguments (the \
         media's `console=tty0` is left out: the last `console=` is the one /init writes to). The CD and USB rows \
         include the 3 s GRUB's menu waits for a key; the PXE rows, iPXE's TFTP transfer of the kernel \
         and initrd (about 7 MB/s). GRUB's network boot \
         (`grub-netboot.cfg`) is not timed here: GRUB's TFTP client is much slower than iPXE's \
         (see `tests/tests/media.rs`).\n\n\
         - Command: `cargo xtask bench media --runs {runs}`\n\
         - Machine: {}\n\
         - Date: {}\n\n{table}",
        bench::machine_description(),
        today()
    );
    bench::record(workspace, HEADING, &section)
}

/// Boots `medium` until config mode answers.
fn boot_once(image: &ApplianceImage, medium: &Medium, scratch: &Path) -> Result<Sample> {
    // A stick the guest may write: a fresh copy of the ISO, as `dd` writes it.
    let source = match &medium.source {
        BootSource::UsbStick(iso) => {
            let stick = scratch.join("stick.img");
            std::fs::copy(iso, &stick)
                .with_context(|| format!("copying {} to {}", iso.display(), stick.display()))?;
            BootSource::UsbStick(stick)
        }
        other => other.clone(),
    };
    let mut spec = GuestSpec::new(image)
        .boot_source(source.clone())
        .firmware(medium.firmware)
        .nic(NicModel::VirtioNet)
        .forward_port(443);
    if matches!(source, BootSource::Kernel) {
        spec = crate::media::kernel_args_without_console()
            .fold(spec, |spec, arg| spec.kernel_arg(arg));
    }
    let mut guest = spec.boot()?;
    let init = guest.wait_for_line(INIT_LINE, BOOT_TIMEOUT)?;
    let to_init = guest.elapsed().as_secs_f64();
    if !init.contains("mounted read-only") {
        bail!("unexpected /init line: {init}");
    }
    choose_dhcp_on_the_first_card(&mut guest, BOOT_TIMEOUT)?;
    first_config_mode_answer(&guest, BOOT_TIMEOUT)?;
    let to_answer = guest.elapsed().as_secs_f64();
    Ok(Sample { to_init, to_answer })
}

/// The figures and the sizes as Markdown tables.
fn table(rows: &[(&str, Vec<Sample>)], sizes: &[(String, u64)]) -> Result<String> {
    let mut text = String::from(
        "| Medium | QEMU start to /init (payload mounted) | QEMU start to the first HTTPS answer |\n\
         |---|---:|---:|\n",
    );
    for (name, samples) in rows {
        let init: Vec<f64> = samples.iter().map(|sample| sample.to_init).collect();
        let answer: Vec<f64> = samples.iter().map(|sample| sample.to_answer).collect();
        let (Some(init), Some(answer)) = (Stats::of(&init), Stats::of(&answer)) else {
            bail!("no boots of {name}");
        };
        text.push_str(&format!(
            "| {name} | {} | {} |\n",
            seconds(init),
            seconds(answer)
        ));
    }
    text.push_str("\n| File | Size |\n|---|---:|\n");
    for (name, bytes) in sizes {
        text.push_str(&format!("| `{name}` | {} ({bytes} bytes) |\n", mib(*bytes)));
    }
    Ok(text)
}

/// `median s (min s-max s)`.
fn seconds(stats: Stats) -> String {
    format!(
        "{:.3} s ({:.3} s-{:.3} s)",
        stats.median, stats.min, stats.max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_medium_and_per_file() {
        let rows = [(
            "CD",
            vec![
                Sample {
                    to_init: 3.0,
                    to_answer: 9.0,
                },
                Sample {
                    to_init: 2.0,
                    to_answer: 8.0,
                },
                Sample {
                    to_init: 4.0,
                    to_answer: 10.0,
                },
            ],
        )];
        let table = table(&rows, &[("initrd.img".to_owned(), 2 * 1024 * 1024)]).unwrap();
        assert!(
            table.contains("| CD | 3.000 s (2.000 s-4.000 s) | 9.000 s (8.000 s-10.000 s) |"),
            "{table}"
        );
        assert!(
            table.contains("| `initrd.img` | 2.0 MiB (2097152 bytes) |"),
            "{table}"
        );
    }

    #[test]
    fn a_medium_without_boots_is_an_error() {
        let error = table(&[("CD", Vec::new())], &[]).unwrap_err();
        assert!(error.to_string().contains("no boots of CD"), "{error}");
    }
}
