//! Benchmarks that boot the appliance under QEMU TCG and record their figures in
//! BENCHMARKS.md, each in its own section:
//! - `cargo xtask bench boot`: boots repeatedly with `mfv.halt=poweroff` and reads the boot
//!   timings from the serial console, and as many times again to a running host, timing QEMU
//!   start to libvirtd ready and reading the RAM in use then, and as many times again without
//!   a configuration, timing QEMU start to the first HTTPS answer of config mode.
//! - `cargo xtask bench probe`: driver coldplug by mfv-init against the shell way (busybox
//!   `modprobe` over every modalias, repeated until settled), on the same machine
//!   ([`mfv_tests::with_probe_hardware`]) in the same run; see [`probe`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use mfv_tests::https::HttpsClient;
use mfv_tests::{ApplianceImage, Guest, GuestSpec, NicModel, with_probe_hardware};

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
const PROBE_HEADING: &str = "## Driver coldplug (`cargo xtask bench probe`)";

/// One round: a boot to `mfv.halt=poweroff` (seconds), and a boot to a running host.
#[derive(Debug, Clone, Copy)]
struct Sample {
    kernel_to_init: f64,
    init_to_complete: f64,
    qemu_start_to_exit: f64,
    /// QEMU start to mfv-init's `service libvirtd: ready`, in seconds.
    qemu_start_to_libvirtd: f64,
    /// MemTotal minus MemAvailable once libvirtd runs, in MiB.
    ram_in_use_mib: f64,
    /// QEMU start to the first HTTPS answer of config mode, in seconds.
    qemu_start_to_https: f64,
}

/// mfv-init's line once libvirtd's socket is bound.
const LIBVIRTD_READY: &str = "mfv-init: service libvirtd: ready after ";
/// What the shell prints: `MEMINFO <MemTotal kB> <MemAvailable kB>`; the marker is split with
/// quotes so that the echo of the typed command does not contain it.
const MEMINFO_LINE: &str = "MEMINFO ";
const READ_MEMINFO: &str = "echo \"MEM\"\"INFO $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo) \
    $(sed -n 's/^MemAvailable: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)\"\n";
/// How long the services may take to come up under TCG.
const SERVICES_TIMEOUT: Duration = Duration::from_secs(180);

/// Median, minimum and maximum of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stats {
    /// None for an empty series.
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
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
            "boot {run}/{runs}: kernel start to /init {:.3} s, /init to boot complete {:.3} s, QEMU start to exit {:.3} s, \
             QEMU start to libvirtd ready {:.3} s, RAM in use then {:.1} MiB, \
             QEMU start to the first HTTPS answer {:.3} s",
            sample.kernel_to_init,
            sample.init_to_complete,
            sample.qemu_start_to_exit,
            sample.qemu_start_to_libvirtd,
            sample.ram_in_use_mib,
            sample.qemu_start_to_https
        );
        samples.push(sample);
    }
    let table = figures_table(&samples, &report)?;
    println!("\n{table}");
    let section = section(runs, &machine_description(), &today(), &table);
    record(workspace, SECTION_HEADING, &section)
}

/// Writes `section` (which starts with `heading`) into BENCHMARKS.md.
pub(crate) fn record(workspace: &Workspace, heading: &str, section: &str) -> Result<()> {
    let path = workspace.root.join(BENCHMARKS_FILE);
    let existing = match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    fs::write(
        &path,
        replace_section(existing.as_deref(), heading, section),
    )
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
    drop(guest);
    let (qemu_start_to_libvirtd, ram_in_use_mib) = host_once(image)?;
    let qemu_start_to_https = web_once(image)?;
    Ok(Sample {
        kernel_to_init: number_after(&banner, KERNEL_UPTIME)?,
        init_to_complete: number_after(&complete, BOOT_COMPLETE)?,
        qemu_start_to_exit,
        qemu_start_to_libvirtd,
        ram_in_use_mib,
        qemu_start_to_https,
    })
}

/// Boots a host without a configuration (`mfv.net=eth0:dhcp`, as the seed's DHCP boot) and
/// asks for config mode's page over the forwarded HTTPS port until it answers: QEMU start to
/// that answer, in seconds.
fn web_once(image: &ApplianceImage) -> Result<f64> {
    let guest = GuestSpec::new(image)
        .kernel_arg("quiet")
        .kernel_arg("mfv.net=eth0:dhcp")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .boot()?;
    let port = guest.host_port(443).context("no forward for 443")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), "10.0.2.15")?;
    let page = client
        .wait_until_serving(SERVICES_TIMEOUT)
        .with_context(|| format!("serial log: {}", guest.serial_log_path().display()))?;
    if page.status != 200 {
        bail!("config mode answered {}: {}", page.status, page.text());
    }
    Ok(guest.elapsed().as_secs_f64())
}

/// Boots to a running host (`mfv.rescue` for a shell to read /proc/meminfo in): QEMU start
/// to libvirtd ready in seconds, and the RAM in use then in MiB.
fn host_once(image: &ApplianceImage) -> Result<(f64, f64)> {
    let mut guest = GuestSpec::new(image)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .boot()?;
    // The shell starts before the services: wait in that order (the console is read from a
    // cursor that moves past each line found).
    guest.wait_for_line("mfv-init: console shell started", SERVICES_TIMEOUT)?;
    guest.wait_for_line(LIBVIRTD_READY, SERVICES_TIMEOUT)?;
    let ready = guest.elapsed().as_secs_f64();
    guest.write_serial(READ_MEMINFO)?;
    let line = guest.wait_for_line(MEMINFO_LINE, SERVICES_TIMEOUT)?;
    let ram_in_use_mib = ram_in_use(&line)?;
    guest.write_serial("mfv host poweroff\n")?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    if !status.success() {
        bail!("QEMU exited with {status} instead of powering off cleanly");
    }
    Ok((ready, ram_in_use_mib))
}

/// MemTotal minus MemAvailable in MiB, from `MEMINFO <total kB> <available kB>`.
fn ram_in_use(line: &str) -> Result<f64> {
    let (_, rest) = line
        .split_once(MEMINFO_LINE)
        .with_context(|| format!("no {MEMINFO_LINE:?} in {line:?}"))?;
    let numbers: Vec<f64> = rest
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("not two numbers of kB in {line:?}"))?;
    match numbers.as_slice() {
        [total, available] => Ok((total - available) / 1024.0),
        _ => bail!("not two numbers of kB in {line:?}"),
    }
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
        (
            "QEMU start to libvirtd ready (`service libvirtd: ready`)",
            series(|s| s.qemu_start_to_libvirtd)?,
        ),
        (
            "QEMU start to the first HTTPS answer of config mode (no configuration, DHCP)",
            series(|s| s.qemu_start_to_https)?,
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
    let ram = series(|s| s.ram_in_use_mib)?;
    let _ = writeln!(
        table,
        "| RAM in use once libvirtd runs (MemTotal - MemAvailable, `-m 1024`) | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        ram.median, ram.min, ram.max
    );
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
    let qemu = cmd::stdout(Command::new("qemu-system-x86_64").arg("--version"))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "QEMU (version unknown)".to_owned());
    format!(
        "{}, {qemu}, TCG (`-accel tcg`); guest: q35, 1 vCPU, 1024 MiB",
        cores_and_cpu()
    )
}

/// `N cores (CPU model)` of this machine, as every benchmark section states it.
pub(crate) fn cores_and_cpu() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model(&text))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores ({cpu})")
}

/// The installed versions of Debian `packages`, as `name version` joined by `, `.
pub(crate) fn package_versions(packages: &[&str]) -> String {
    packages
        .iter()
        .map(|package| {
            cmd::stdout(Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]))
                .map_or_else(
                    |_| format!("{package} (version unknown)"),
                    |version| format!("{package} {version}"),
                )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `model name` in /proc/cpuinfo text.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// Today's date (UTC) as YYYY-MM-DD.
pub(crate) fn today() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    date_of(i64::try_from(seconds).unwrap_or(0))
}

/// The UTC date `seconds` after the epoch as YYYY-MM-DD.
fn date_of(seconds: i64) -> String {
    let time = mfv_linux::utc::UtcTime::from_unix_seconds(seconds);
    format!("{:04}-{:02}-{:02}", time.year, time.month, time.day)
}

/// The BENCHMARKS.md section for this benchmark.
fn section(runs: u32, machine: &str, date: &str, table: &str) -> String {
    format!(
        "{SECTION_HEADING}\n\n\
         Boots the appliance (release build) under QEMU with `mfv.halt=poweroff` and reads the timings from the \
         serial console: the banner's `kernel uptime` (kernel start to /init), mfv-init's \
         `boot sequence complete in` (/init to end of boot sequence), and QEMU's wall time from start to exit. \
         Each round then boots a running host (`mfv.rescue`): QEMU's wall time from start to mfv-init's \
         `service libvirtd: ready`, and MemTotal minus MemAvailable read from /proc/meminfo in the shell right \
         after. A third boot per round has no configuration and `mfv.net=eth0:dhcp`: QEMU's wall time from \
         start to the first answer of config mode's page over the forwarded HTTPS port (asked every 100 ms; a try the forward holds unanswered, before the guest has its address, is given up after 2 s). \
         The seed's own stack (busybox init, modprobe, udhcpc, lighttpd + php-cgi) was measured with its web \
         server ready at 4.7 s guest uptime and 7.1 s wall on an idle machine of this kind.\n\n\
         - Command: `cargo xtask bench boot --runs {runs}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Boots: {runs}\n\n\
         {table}"
    )
}

/// Kernel arguments of both probe boots: a quiet kernel, whose messages would otherwise cut
/// into the console lines the benchmark reads, and the rescue shell the benchmark types into.
const PROBE_KERNEL_ARGS: [&str; 2] = ["quiet", "mfv.rescue"];
/// The guest CPU of both probe boots: every feature TCG emulates (PCLMULQDQ among them, which
/// the crct10dif_pclmul soft dependency of sd_mod needs), as on a real server.
const PROBE_CPU: &str = "max";
/// Makes mfv-init load no driver, leaving the work to the shell.
const COLDPLUG_OFF: &str = "mfv.coldplug=off";
/// mfv-init's line at the end of its coldplug: `phase coldplug: ok (412.3 ms)`.
const COLDPLUG_PHASE: &str = "mfv-init: phase coldplug: ok (";
/// The first line of mfv-init's coldplug report: `coldplug: settled after ...`.
const COLDPLUG_REPORT: &str = "mfv-init: coldplug: ";
const SHELL_STARTED: &str = "mfv-init: console shell started";
/// What the shell loop prints when done: `SHELL-COLDPLUG <start> <end> <passes>` (uptimes).
const SHELL_DONE: &str = "SHELL-COLDPLUG ";
/// What the module listing prints: `MODULES a b c`.
const MODULES_LINE: &str = "MODULES ";
/// How long a coldplug (ours or the shell's) may take under TCG.
const COLDPLUG_TIMEOUT: Duration = Duration::from_secs(300);
/// The shell way: modprobe every modalias on every bus, sleep as long as mfv-probe's quiet
/// period (250 ms), repeat until a pass leaves the number of devices unchanged; timed with
/// /proc/uptime inside the guest. The modaliases come from the `MODALIAS=` lines of the
/// devices' uevent files, as mfv-probe reads them (CPUs have no `modalias` file). The markers
/// are split with quotes so that the echo of the typed command does not contain them.
const SHELL_COLDPLUG: &str = "t0=$(cut -d' ' -f1 /proc/uptime); p=0; while :; do p=$((p+1)); \
    b=$(ls -d /sys/bus/*/devices/* | wc -l); \
    for m in $(sed -n 's/^MODALIAS=//p' /sys/bus/*/devices/*/uevent | sort -u); do modprobe -q \"$m\"; done; \
    sleep 0.25; a=$(ls -d /sys/bus/*/devices/* | wc -l); [ \"$a\" = \"$b\" ] && break; done; \
    echo \"SHELL\"\"-COLDPLUG $t0 $(cut -d' ' -f1 /proc/uptime) $p\"\n";
/// Lists the loaded modules on one line.
const LIST_MODULES: &str =
    "echo \"MOD\"\"ULES $(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' ')\"\n";

/// One round of the probe benchmark: mfv-init's coldplug and the shell's on the same machine.
#[derive(Debug, Clone)]
struct ProbeSample {
    /// mfv-init's coldplug phase (coldplug, then the inventory), in seconds.
    ours: f64,
    /// mfv-init's coldplug alone, start to settled (the report's `in <ms> ms`), in seconds.
    ours_coldplug: f64,
    /// /init start to the end of mfv-init's coldplug phase, in seconds.
    ours_init_to_bound: f64,
    /// mfv-init's passes over the device list.
    ours_passes: u32,
    /// The shell loop, start to settled, in seconds.
    shell: f64,
    /// The shell loop's passes.
    shell_passes: u32,
    /// Modules loaded after mfv-init's coldplug.
    modules: BTreeSet<String>,
    /// Of those, the ones the shell did not load (busybox modprobe cannot resolve CPU
    /// modaliases, which are longer than its module name buffer).
    only_ours: BTreeSet<String>,
}

/// Builds the release image, then `runs` times boots the probe machine twice: once with
/// mfv-init's coldplug, once with `mfv.coldplug=off` and the shell loop typed into the console
/// shell; records both in BENCHMARKS.md. Fails if the shell loaded a module mfv-init did not,
/// or if mfv-init's coldplug did not settle.
pub fn probe(workspace: &Workspace, runs: u32) -> Result<()> {
    image::build(workspace, Profile::Release)?;
    let image = ApplianceImage::at(&workspace.appliance_dir())?;
    let mut samples = Vec::new();
    for run in 1..=runs {
        let sample = probe_once(&image).with_context(|| format!("round {run} of {runs}"))?;
        println!(
            "round {run}/{runs}: mfv-init coldplug {:.3} s ({} passes; phase with inventory {:.3} s; \
             /init to all bound {:.3} s), shell coldplug {:.3} s ({} passes), {} modules",
            sample.ours_coldplug,
            sample.ours_passes,
            sample.ours,
            sample.ours_init_to_bound,
            sample.shell,
            sample.shell_passes,
            sample.modules.len()
        );
        samples.push(sample);
    }
    let table = probe_table(&samples)?;
    println!("\n{table}");
    let section = probe_section(runs, &machine_description(), &today(), &table);
    record(workspace, PROBE_HEADING, &section)
}

fn probe_spec(image: &ApplianceImage) -> GuestSpec {
    let spec = with_probe_hardware(GuestSpec::new(image)).cpu_model(PROBE_CPU);
    PROBE_KERNEL_ARGS
        .iter()
        .fold(spec, |spec, arg| spec.kernel_arg(*arg))
}

fn probe_once(image: &ApplianceImage) -> Result<ProbeSample> {
    let mut guest = probe_spec(image).boot()?;
    let banner = guest.wait_for_line(BANNER, BANNER_TIMEOUT)?;
    let report = guest.wait_for_line(COLDPLUG_REPORT, COLDPLUG_TIMEOUT)?;
    if !report.contains("coldplug: settled after ") {
        bail!("mfv-init's coldplug did not settle: {report}");
    }
    let phase = guest.wait_for_line(COLDPLUG_PHASE, COLDPLUG_TIMEOUT)?;
    let ours = number_after(&phase, "coldplug: ok (")? / 1000.0;
    let ours_init_to_bound = console_stamp(&phase)? - number_after(&banner, KERNEL_UPTIME)?;
    let ours_passes = count_after(&report, "settled after ")?;
    let ours_coldplug = f64::from(count_after(&report, " in ")?) / 1000.0;
    guest.wait_for_line(SHELL_STARTED, COMPLETE_TIMEOUT)?;
    let ours_modules = loaded_modules(&mut guest)?;
    drop(guest);

    let mut guest = probe_spec(image).kernel_arg(COLDPLUG_OFF).boot()?;
    guest.wait_for_line(SHELL_STARTED, COMPLETE_TIMEOUT)?;
    guest.write_serial(SHELL_COLDPLUG)?;
    let done = guest.wait_for_line(SHELL_DONE, COLDPLUG_TIMEOUT)?;
    let (shell, shell_passes) = shell_figures(&done)?;
    let shell_modules = loaded_modules(&mut guest)?;
    if !shell_modules.is_subset(&ours_modules) {
        bail!(
            "the shell loaded modules mfv-init did not: {:?}",
            shell_modules.difference(&ours_modules).collect::<Vec<_>>()
        );
    }
    let only_ours = ours_modules.difference(&shell_modules).cloned().collect();
    Ok(ProbeSample {
        ours,
        ours_coldplug,
        ours_init_to_bound,
        ours_passes,
        shell,
        shell_passes,
        modules: ours_modules,
        only_ours,
    })
}

/// The modules loaded in the guest, read through its console shell.
fn loaded_modules(guest: &mut Guest) -> Result<BTreeSet<String>> {
    guest.write_serial(LIST_MODULES)?;
    let line = guest.wait_for_line(MODULES_LINE, COMPLETE_TIMEOUT)?;
    let (_, list) = line
        .split_once(MODULES_LINE)
        .with_context(|| format!("no module list in {line:?}"))?;
    Ok(list.split_whitespace().map(str::to_owned).collect())
}

/// The time stamp of a console line, `[    1.634210] ...`, in seconds.
fn console_stamp(line: &str) -> Result<f64> {
    let stamp = line
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(stamp, _)| stamp.trim())
        .with_context(|| format!("no [time stamp] in console line {line:?}"))?;
    stamp
        .parse()
        .with_context(|| format!("bad time stamp {stamp:?} in console line {line:?}"))
}

/// The whole number right after `marker` in `line`.
fn count_after(line: &str, marker: &str) -> Result<u32> {
    let (_, rest) = line
        .split_once(marker)
        .with_context(|| format!("no {marker:?} in console line {line:?}"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .with_context(|| format!("no count after {marker:?} in console line {line:?}"))
}

/// Seconds and passes from the shell loop's `SHELL-COLDPLUG <start> <end> <passes>` line.
fn shell_figures(line: &str) -> Result<(f64, u32)> {
    let (_, rest) = line
        .split_once(SHELL_DONE)
        .with_context(|| format!("no {SHELL_DONE:?} in {line:?}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [start, end, passes] = fields[..] else {
        bail!("expected `{SHELL_DONE}<start> <end> <passes>`, got {line:?}");
    };
    let number = |text: &str| -> Result<f64> {
        text.parse()
            .with_context(|| format!("bad number {text:?} in {line:?}"))
    };
    let passes = passes
        .parse()
        .with_context(|| format!("bad pass count {passes:?} in {line:?}"))?;
    Ok((number(end)? - number(start)?, passes))
}

/// The Markdown table of the probe figures.
fn probe_table(samples: &[ProbeSample]) -> Result<String> {
    let series = |pick: fn(&ProbeSample) -> f64| {
        Stats::of(&samples.iter().map(pick).collect::<Vec<_>>()).context("no rounds were timed")
    };
    let ours = series(|s| s.ours_coldplug)?;
    let shell = series(|s| s.shell)?;
    let rows = [
        (
            "mfv-init coldplug, start to settled (report `coldplug: settled after .. in <ms> ms`)",
            ours,
        ),
        (
            "shell coldplug (busybox `modprobe` per modalias), start to settled",
            shell,
        ),
        (
            "mfv-init `coldplug` phase: coldplug, then inventory with blkid (`phase coldplug: ok`)",
            series(|s| s.ours)?,
        ),
        (
            "/init to all bound and inventoried with mfv-init (banner to end of `coldplug` phase)",
            series(|s| s.ours_init_to_bound)?,
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
    let passes = |pick: fn(&ProbeSample) -> u32| {
        let mut all: Vec<u32> = samples.iter().map(pick).collect();
        all.sort_unstable();
        all.dedup();
        all.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let modules = samples.first().map_or(0, |s| s.modules.len());
    let only_ours: BTreeSet<&str> = samples
        .iter()
        .flat_map(|s| s.only_ours.iter().map(String::as_str))
        .collect();
    let only_ours = if only_ours.is_empty() {
        "none".to_owned()
    } else {
        only_ours.into_iter().collect::<Vec<_>>().join(", ")
    };
    let _ = write!(
        table,
        "\nmfv-init / shell (medians): {:.2}. Passes: mfv-init {}; shell {}. \
         Modules loaded by mfv-init: {modules}; of those not loaded by the shell: {only_ours}.\n",
        ours.median / shell.median,
        passes(|s| s.ours_passes),
        passes(|s| s.shell_passes),
    );
    Ok(table)
}

/// The BENCHMARKS.md section for the probe benchmark.
fn probe_section(runs: u32, machine: &str, date: &str, table: &str) -> String {
    let args = PROBE_KERNEL_ARGS.join(" ");
    format!(
        "{PROBE_HEADING}\n\n\
         Each round boots the same machine twice (release image, kernel arguments `{args}`, \
         `-cpu {PROBE_CPU}`; NICs \
         e1000, virtio-net, rtl8139; disks virtio-blk, two AHCI SATA, USB storage on qemu-xhci): \
         once with mfv-init's `coldplug` phase (mfv-probe: modalias resolution in-process, \
         finit_module, passes until no new device appears for 250 ms), once with \
         `{COLDPLUG_OFF}` and this loop typed into the console shell, timed by /proc/uptime in \
         the guest: `modprobe -q` (busybox) for every distinct `MODALIAS=` in \
         /sys/bus/*/devices/*/uevent (what mfv-probe reads too), `sleep 0.25`, repeated until a pass leaves the number of devices \
         unchanged. Both start with no driver module loaded; the shell must not load a module \
         mfv-init did not (checked). busybox modprobe cannot resolve the CPU modaliases \
         (longer than its module name buffer), so the shell does less work: the modules only \
         mfv-init loads are listed under the table. The first two rows compare the coldplugs; \
         the third adds the inventory mfv-init takes right after (libblkid on every disk), the \
         fourth is mfv-init's whole way from /init (banner) to the end of that phase.\n\n\
         - Command: `cargo xtask bench probe --runs {runs}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Rounds: {runs}\n\n\
         {table}"
    )
}

/// `existing` BENCHMARKS.md text with the section under `heading` replaced (or added).
fn replace_section(existing: Option<&str>, heading: &str, section: &str) -> String {
    let existing = existing.unwrap_or(
        "# Benchmarks\n\nFigures recorded by `cargo xtask bench <name>`; each command rewrites its own section.\n",
    );
    let mut before = String::new();
    let mut after = String::new();
    let mut state = 0; // 0: before the section, 1: inside it, 2: after it
    for line in existing.lines() {
        if state == 0 && line == heading {
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
    fn probe_lines_parse() {
        let phase = "[    3.412345] mfv-init: phase coldplug: ok (412.5 ms)";
        assert_eq!(console_stamp(phase).unwrap(), 3.412345);
        assert_eq!(number_after(phase, "coldplug: ok (").unwrap(), 412.5);
        let report = "[    3.4] mfv-init: coldplug: settled after 3 passes in 412 ms: 57 devices";
        assert_eq!(count_after(report, "settled after ").unwrap(), 3);
        assert_eq!(count_after(report, " in ").unwrap(), 412);
        assert_eq!(
            shell_figures("SHELL-COLDPLUG 12.50 14.75 4").unwrap(),
            (2.25, 4)
        );
        assert!(console_stamp("no stamp").is_err());
        assert!(count_after(report, "devices after ").is_err());
        assert!(count_after("settled after many", "settled after ").is_err());
        let error = shell_figures("SHELL-COLDPLUG 12.50 4").unwrap_err();
        assert!(error.to_string().contains("expected"), "{error}");
        assert!(shell_figures("SHELL-COLDPLUG a b 4").is_err());
    }

    #[test]
    fn the_shell_commands_hide_their_markers_in_their_echo() {
        assert!(!SHELL_COLDPLUG.contains(SHELL_DONE));
        assert!(!LIST_MODULES.contains(MODULES_LINE));
        assert!(SHELL_COLDPLUG.ends_with('\n') && LIST_MODULES.ends_with('\n'));
    }

    #[test]
    fn the_probe_table_compares_both_ways() {
        let modules: BTreeSet<String> = ["e1000", "virtio_net"].map(String::from).into();
        let sample = |ours, shell| ProbeSample {
            ours: ours + 0.05,
            ours_coldplug: ours,
            ours_init_to_bound: ours + 0.1,
            ours_passes: 3,
            shell,
            shell_passes: 4,
            modules: modules.clone(),
            only_ours: ["kvm".to_owned()].into(),
        };
        let table = probe_table(&[sample(0.5, 2.0), sample(0.7, 3.0), sample(0.6, 2.5)]).unwrap();
        assert!(
            table.contains(
                "| mfv-init coldplug, start to settled (report `coldplug: settled after .. in <ms> ms`) | 0.600 s | 0.500 s | 0.700 s |"
            ),
            "{table}"
        );
        assert!(table.contains("| 2.500 s | 2.000 s | 3.000 s |"), "{table}");
        assert!(
            table.contains("mfv-init / shell (medians): 0.24. Passes: mfv-init 3; shell 4."),
            "{table}"
        );
        assert!(
            table.contains("Modules loaded by mfv-init: 2; of those not loaded by the shell: kvm."),
            "{table}"
        );
        assert!(probe_table(&[]).is_err());
        let section = probe_section(3, "2 cores", "2026-11-26", &table);
        assert!(section.starts_with(PROBE_HEADING));
        assert!(section.contains("- Command: `cargo xtask bench probe --runs 3`"));
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
    fn dates_from_seconds() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(19_723 * 86_400), "2024-01-01");
        assert_eq!(date_of(19_782 * 86_400 + 86_399), "2024-02-29");
        assert_eq!(date_of(20_782 * 86_400), "2026-11-25");
    }

    #[test]
    fn cpu_model_comes_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn ram_in_use_is_total_minus_available() {
        assert_eq!(
            ram_in_use("MEMINFO 1007356 700156").unwrap(),
            (1_007_356.0 - 700_156.0) / 1024.0
        );
        assert!(ram_in_use("MEMINFO 1007356").is_err());
        assert!(ram_in_use("MEMINFO x y").is_err());
        assert!(ram_in_use("nothing").is_err());
    }

    #[test]
    fn the_table_has_figures_and_sizes() {
        let samples = [
            Sample {
                kernel_to_init: 1.6,
                init_to_complete: 0.07,
                qemu_start_to_exit: 4.0,
                qemu_start_to_libvirtd: 9.0,
                ram_in_use_mib: 300.0,
                qemu_start_to_https: 7.0,
            },
            Sample {
                kernel_to_init: 1.7,
                init_to_complete: 0.06,
                qemu_start_to_exit: 4.2,
                qemu_start_to_libvirtd: 9.5,
                ram_in_use_mib: 310.0,
                qemu_start_to_https: 7.5,
            },
            Sample {
                kernel_to_init: 1.5,
                init_to_complete: 0.08,
                qemu_start_to_exit: 4.1,
                qemu_start_to_libvirtd: 8.5,
                ram_in_use_mib: 305.5,
                qemu_start_to_https: 6.5,
            },
        ];
        let report = ImageReport {
            files: 10,
            uncompressed_bytes: 2 * 1024 * 1024,
            compressed_bytes: 1024 * 1024,
            squashfs_bytes: 512 * 1024,
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
            table.contains("| QEMU start to libvirtd ready (`service libvirtd: ready`) | 9.000 s | 8.500 s | 9.500 s |"),
            "{table}"
        );
        assert!(
            table.contains("| 305.5 MiB | 300.0 MiB | 310.0 MiB |"),
            "{table}"
        );
        assert!(
            table.contains("| QEMU start to the first HTTPS answer of config mode (no configuration, DHCP) | 7.000 s | 6.500 s | 7.500 s |"),
            "{table}"
        );
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
        let first = replace_section(
            None,
            SECTION_HEADING,
            &section(5, "2 cores", "2026-11-25", "| a |\n"),
        );
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.contains(
            "- Command: `cargo xtask bench boot --runs 5`\n- Machine: 2 cores\n- Date: 2026-11-25\n"
        ));
        let with_other = format!("{first}\n## Web (`cargo xtask bench web`)\n\nweb figures\n");
        let second = replace_section(
            Some(&with_other),
            SECTION_HEADING,
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
