//! `cargo xtask bench boot`: boots the appliance repeatedly under QEMU TCG with
//! `mfv.halt=poweroff`, reads the boot timings from the serial console and records them in
//! BENCHMARKS.md.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use mfv_tests::{ApplianceImage, GuestSpec};

use crate::image::{self, ImageReport, Profile};
use crate::{Workspace, cmd};

/// The banner line mfv-init prints first:
/// `Minifed-Virt mfv-init <version> (kernel uptime 1.634 s)`.
const BANNER: &str = "Minifed-Virt mfv-init";
const KERNEL_UPTIME: &str = "kernel uptime ";
/// The line that ends the boot sequence: `mfv-init: boot sequence complete in 0.066 s`.
const BOOT_COMPLETE: &str = "boot sequence complete in ";
const BANNER_TIMEOUT: Duration = Duration::from_secs(120);
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(120);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
const BENCHMARKS_FILE: &str = "BENCHMARKS.md";
const SECTION_HEADING: &str = "## Boot (`cargo xtask bench boot`)";

/// One boot's timings in seconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    kernel_to_init: f64,
    init_to_complete: f64,
    qemu_start_to_exit: f64,
}

/// Median, minimum and maximum of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    /// None for an empty series.
    fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 0 {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        };
        Some(Self { median, min, max })
    }
}

/// Builds the release image, boots it `runs` times and writes BENCHMARKS.md.
pub fn boot(workspace: &Workspace, runs: u32) -> Result<()> {
    let report = image::build(workspace, Profile::Release)?;
    let image = ApplianceImage::at(&workspace.appliance_dir())?;
    let mut samples = Vec::new();
    for run in 1..=runs {
        let sample = boot_once(&image).with_context(|| format!("boot {run} of {runs}"))?;
        println!(
            "boot {run}/{runs}: kernel start to /init {:.3} s, /init to boot complete {:.3} s, QEMU start to exit {:.3} s",
            sample.kernel_to_init, sample.init_to_complete, sample.qemu_start_to_exit
        );
        samples.push(sample);
    }
    let table = figures_table(&samples, &report)?;
    println!("\n{table}");
    let section = section(runs, &machine_description(), &today(), &table);
    let path = workspace.root.join(BENCHMARKS_FILE);
    let existing = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    fs::write(&path, replace_section(existing.as_deref(), &section))
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("recorded in {}", path.display());
    Ok(())
}

fn boot_once(image: &ApplianceImage) -> Result<Sample> {
    let mut guest = GuestSpec::new(image)
        .kernel_arg("mfv.halt=poweroff")
        .boot()?;
    let banner = guest.wait_for_line(BANNER, BANNER_TIMEOUT)?;
    let complete = guest.wait_for_line(BOOT_COMPLETE, COMPLETE_TIMEOUT)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    let qemu_start_to_exit = guest.elapsed().as_secs_f64();
    if guest.serial_log().contains("Kernel panic") {
        bail!(
            "the kernel panicked; serial log: {}",
            guest.serial_log_path().display()
        );
    }
    if !status.success() {
        bail!("QEMU exited with {status} instead of powering off cleanly");
    }
    Ok(Sample {
        kernel_to_init: number_after(&banner, KERNEL_UPTIME)?,
        init_to_complete: number_after(&complete, BOOT_COMPLETE)?,
        qemu_start_to_exit,
    })
}

/// The number of seconds right after `marker` in `line` (as in `... in 0.066 s`).
fn number_after(line: &str, marker: &str) -> Result<f64> {
    let (_, rest) = line
        .split_once(marker)
        .with_context(|| format!("no {marker:?} in console line {line:?}"))?;
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .with_context(|| format!("no number of seconds after {marker:?} in console line {line:?}"))
}

/// The Markdown table of figures.
fn figures_table(samples: &[Sample], report: &ImageReport) -> Result<String> {
    let series = |pick: fn(&Sample) -> f64| {
        Stats::of(&samples.iter().map(pick).collect::<Vec<_>>()).context("no boots were timed")
    };
    let rows = [
        (
            "Kernel start to /init (banner `kernel uptime`)",
            series(|s| s.kernel_to_init)?,
        ),
        (
            "/init to end of boot sequence (`boot sequence complete in`)",
            series(|s| s.init_to_complete)?,
        ),
        (
            "QEMU start to QEMU exit (`mfv.halt=poweroff`)",
            series(|s| s.qemu_start_to_exit)?,
        ),
    ];
    let mut table = String::from("| Measure | Median | Min | Max |\n|---|---:|---:|---:|\n");
    for (name, stats) in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "| {name} | {:.3} s | {:.3} s | {:.3} s |",
            stats.median, stats.min, stats.max
        );
    }
    let _ = write!(
        table,
        "\n| Initrd | Size |\n|---|---:|\n\
         | compressed (zstd, `initrd.img`) | {} ({} bytes) |\n\
         | uncompressed (cpio archive) | {} ({} bytes) |\n\
         | files / kernel modules | {} / {} |\n",
        image::mib(report.compressed_bytes),
        report.compressed_bytes,
        image::mib(report.uncompressed_bytes),
        report.uncompressed_bytes,
        report.files,
        report.modules,
    );
    Ok(table)
}

/// This machine: cores, CPU model, QEMU version.
fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model(&text))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let qemu = cmd::stdout(Command::new("qemu-system-x86_64").arg("--version"))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "QEMU (version unknown)".to_owned());
    format!("{cores} cores ({cpu}), {qemu}, TCG (`-accel tcg`); guest: q35, 1 vCPU, 1024 MiB")
}

/// The `model name` in /proc/cpuinfo text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: day 1..=31, month 1..=12.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// The BENCHMARKS.md section for this benchmark.
fn section(runs: u32, machine: &str, date: &str, table: &str) -> String {
    format!(
        "{SECTION_HEADING}\n\n\
         Boots the appliance (release build) under QEMU with `mfv.halt=poweroff` and reads the timings from the \
         serial console: the banner's `kernel uptime` (kernel start to /init), mfv-init's \
         `boot sequence complete in` (/init to end of boot sequence), and QEMU's wall time from start to exit.\n\n\
         - Command: `cargo xtask bench boot --runs {runs}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Boots: {runs}\n\n\
         {table}"
    )
}

/// `existing` BENCHMARKS.md text with this benchmark's section replaced (or added).
fn replace_section(existing: Option<&str>, section: &str) -> String {
    let existing = existing.unwrap_or(
        "# Benchmarks\n\nFigures recorded by `cargo xtask bench <name>`; each command rewrites its own section.\n",
    );
    let mut before = String::new();
    let mut after = String::new();
    let mut state = 0; // 0: before the section, 1: inside it, 2: after it
    for line in existing.lines() {
        if state == 0 && line == SECTION_HEADING {
            state = 1;
            continue;
        }
        if state == 1 && line.starts_with("## ") {
            state = 2;
        }
        match state {
            0 => before.push_str(line),
            2 => after.push_str(line),
            _ => continue,
        }
        if state == 0 {
            before.push('\n');
        } else {
            after.push('\n');
        }
    }
    let mut text = before.trim_end().to_owned();
    text.push_str("\n\n");
    text.push_str(section.trim_end());
    text.push('\n');
    if !after.is_empty() {
        text.push('\n');
        text.push_str(&after);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_banner_and_the_complete_line() {
        let banner = "Minifed-Virt mfv-init 0.1.0 (kernel uptime 1.634 s)";
        assert_eq!(number_after(banner, KERNEL_UPTIME).unwrap(), 1.634);
        let complete = "[    1.7] mfv-init: boot sequence complete in 0.066 s\r";
        assert_eq!(number_after(complete, BOOT_COMPLETE).unwrap(), 0.066);
    }

    #[test]
    fn a_line_without_the_figure_is_an_error() {
        let error = number_after("Minifed-Virt mfv-init 0.1.0", KERNEL_UPTIME).unwrap_err();
        assert!(error.to_string().contains("kernel uptime"), "{error}");
        let error = number_after("kernel uptime unknown", KERNEL_UPTIME).unwrap_err();
        assert!(
            error.to_string().contains("no number of seconds"),
            "{error}"
        );
    }

    #[test]
    fn stats_take_median_min_max() {
        assert_eq!(
            Stats::of(&[3.0, 1.0, 2.0, 5.0, 4.0]),
            Some(Stats {
                median: 3.0,
                min: 1.0,
                max: 5.0
            })
        );
        assert_eq!(
            Stats::of(&[4.0, 1.0]),
            Some(Stats {
                median: 2.5,
                min: 1.0,
                max: 4.0
            })
        );
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
    }

    #[test]
    fn cpu_model_comes_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn the_table_has_figures_and_sizes() {
        let samples = [
            Sample {
                kernel_to_init: 1.6,
                init_to_complete: 0.07,
                qemu_start_to_exit: 4.0,
            },
            Sample {
                kernel_to_init: 1.7,
                init_to_complete: 0.06,
                qemu_start_to_exit: 4.2,
            },
            Sample {
                kernel_to_init: 1.5,
                init_to_complete: 0.08,
                qemu_start_to_exit: 4.1,
            },
        ];
        let report = ImageReport {
            files: 10,
            uncompressed_bytes: 2 * 1024 * 1024,
            compressed_bytes: 1024 * 1024,
            modules: 3,
        };
        let table = figures_table(&samples, &report).unwrap();
        assert!(
            table.contains(
                "| Kernel start to /init (banner `kernel uptime`) | 1.600 s | 1.500 s | 1.700 s |"
            ),
            "{table}"
        );
        assert!(table.contains("| 0.070 s | 0.060 s | 0.080 s |"), "{table}");
        assert!(
            table.contains("| compressed (zstd, `initrd.img`) | 1.0 MiB (1048576 bytes) |"),
            "{table}"
        );
        assert!(
            table.contains("| uncompressed (cpio archive) | 2.0 MiB (2097152 bytes) |"),
            "{table}"
        );
        assert!(figures_table(&[], &report).is_err());
    }

    #[test]
    fn the_section_is_created_then_replaced_in_place() {
        let first = replace_section(None, &section(5, "2 cores", "2026-11-25", "| a |\n"));
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.contains(
            "- Command: `cargo xtask bench boot --runs 5`\n- Machine: 2 cores\n- Date: 2026-11-25\n"
        ));
        let with_other = format!("{first}\n## Web (`cargo xtask bench web`)\n\nweb figures\n");
        let second = replace_section(
            Some(&with_other),
            &section(3, "2 cores", "2026-11-26", "| b |\n"),
        );
        assert_eq!(second.matches(SECTION_HEADING).count(), 1);
        assert!(
            second.contains("| b |") && !second.contains("| a |"),
            "{second}"
        );
        assert!(second.contains("2026-11-26") && !second.contains("2026-11-25"));
        assert!(
            second.ends_with("## Web (`cargo xtask bench web`)\n\nweb figures\n"),
            "{second}"
        );
        let before_web = second.find("## Web").unwrap();
        assert!(second.find(SECTION_HEADING).unwrap() < before_web);
    }
}
