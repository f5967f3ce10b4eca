//! Benchmarks that boot the appliance under QEMU TCG and record their figures in
//! BENCHMARKS.md, each in its own section:
//! - `cargo xtask bench boot`: our image against a reference image of the seed's classic stack
//!   ([`bench_reference`]: busybox shell init, modprobe loop, udhcpc, lighttpd with php-cgi),
//!   built from the same kernel and driver modules and booted in the same run with the same
//!   QEMU flags: QEMU start to the first HTTP(S) answer (split at the kernel's start), kernel
//!   start to /init, coldplug, and the RAM in use once the web answers, against the targets of
//!   issue 17.
//! - `cargo xtask bench probe`: driver coldplug by mfv-init against the shell way (busybox
//!   `modprobe` over every modalias, repeated until settled), on the same machine
//!   ([`mfv_tests::with_probe_hardware`]) in the same run; see [`probe`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use mfv_tests::https::HttpsClient;
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, NicModel, with_probe_hardware,
};

use crate::bench_reference::{self, INIT_MARKER, PAGE_MARKER, ReferenceReport, SHELL_MARKER};
use crate::image::{self, ImageReport, Profile};
use crate::{Workspace, bench_vm, cmd, kernel, media};

/// The line the image's /init (mfv-early-init) prints first, once the payload is mounted:
/// `mfv-early-init: /init at kernel uptime 1.634 s; payload ...`.
pub(crate) const INIT_LINE: &str = "mfv-early-init: /init at kernel uptime ";
const KERNEL_UPTIME: &str = "kernel uptime ";
const BANNER_TIMEOUT: Duration = Duration::from_secs(120);
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(120);
const BENCHMARKS_FILE: &str = "BENCHMARKS.md";
const SECTION_HEADING: &str = "## Boot (`cargo xtask bench boot`)";
const PROBE_HEADING: &str = "## Driver coldplug (`cargo xtask bench probe`)";

/// Kernel arguments of every boot of both images after the boot media's own
/// ([`media::kernel_args_without_console`]: a quiet kernel, whose messages would cut into the
/// console lines read, and no crypto self-tests): mfv-init's root shell on the console while the
/// services run, and DHCP on the NIC with no configuration (config mode). The reference's
/// shell init ignores the `mfv.` arguments; they are the same so that both boot the same
/// command line.
const BOOT_KERNEL_ARGS: [&str; 2] = ["mfv.rescue", "mfv.net=eth0:dhcp"];

/// Every kernel argument of both images' boots after `console=ttyS0`.
fn boot_kernel_args() -> Vec<&'static str> {
    media::kernel_args_without_console()
        .chain(BOOT_KERNEL_ARGS)
        .collect()
}
/// The blank virtio disk both images boot with, so coldplug binds a disk as well as the NIC.
const BOOT_DISK_BYTES: u64 = 64 * 1024 * 1024;
/// What the shell prints: `MEMINFO <MemTotal kB> <MemAvailable kB>`; the marker is split with
/// quotes so that the echo of the typed command does not contain it.
const MEMINFO_LINE: &str = "MEMINFO ";
const READ_MEMINFO: &str = "echo \"MEM\"\"INFO $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo) \
    $(sed -n 's/^MemAvailable: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)\"\n";
/// How long the services may take to come up under TCG.
const SERVICES_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one HTTP try may wait for an answer: QEMU's forward holds a connection without one
/// while the guest has no address yet.
const HTTP_TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Time between the starts of two HTTP tries.
const HTTP_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The address QEMU's user network gives the guest, which our certificate names.
const GUEST_ADDRESS: &str = "10.0.2.15";
/// What each try for the first answer sends, over HTTP or HTTPS.
const FIRST_PAGE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: 10.0.2.15\r\nconnection: close\r\n\r\n";

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

/// One boot of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// QEMU start to the first HTTP(S) answer, in seconds.
    qemu_start_to_web: f64,
    /// QEMU start to the kernel's start, in seconds: when /init's line came (QEMU's wall
    /// clock) less the kernel's uptime in it.
    qemu_start_to_kernel: f64,
    /// Kernel start to /init, in seconds (guest uptime).
    kernel_to_init: f64,
    /// Driver coldplug, start to settled, in seconds.
    coldplug: f64,
    /// The coldplug's passes over the devices.
    coldplug_passes: u32,
    /// MemTotal minus MemAvailable once the web answered, in MiB.
    ram_in_use_mib: f64,
}

/// Builds the release image and the reference image, boots each `runs` times (alternately,
/// so that the machine's changing speed weighs on both alike) and writes BENCHMARKS.md.
pub fn boot(workspace: &Workspace, runs: u32) -> Result<()> {
    let ours_report = image::build(workspace, Profile::Release)?;
    let kernel = kernel::fetch(workspace)?;
    let reference_report = bench_reference::build(workspace, &kernel, SHELL_COLDPLUG)?;
    let ours_image = ApplianceImage::at(&workspace.appliance_dir())?;
    let reference_image = ApplianceImage::at(&reference_report.dir)?;
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    let mut discarded = 0;
    let load_before = bench_vm::load_average()?;
    for run in 1..=runs {
        let (sample, wasted) = timed_boot(&format!("boot {run}/{runs}, ours"), || {
            ours_once(&ours_image).with_context(|| format!("our boot {run} of {runs}"))
        })?;
        ours.push(sample);
        let (sample, wasted_too) = timed_boot(&format!("boot {run}/{runs}, reference"), || {
            reference_once(&reference_image)
                .with_context(|| format!("reference boot {run} of {runs}"))
        })?;
        reference.push(sample);
        discarded += wasted + wasted_too;
    }
    let load = format!("{load_before:.2} / {:.2}", bench_vm::load_average()?);
    let table = figures_table(&ours, &reference, &ours_report, &reference_report)?;
    println!("\n{table}");
    let section = section(
        runs,
        &machine_description(),
        &load,
        discarded,
        &today(),
        &table,
    );
    record(workspace, SECTION_HEADING, &section)
}

/// How many times one boot may be repeated when its guest clock ran ahead of QEMU's.
const CLOCK_RETRIES: u32 = 2;

/// Runs `boot` until its sample is consistent (see [`clock_is_consistent`]), at most
/// [`CLOCK_RETRIES`] times more; returns the sample and how many were discarded.
fn timed_boot(label: &str, mut boot: impl FnMut() -> Result<Sample>) -> Result<(Sample, u32)> {
    let mut discarded = 0;
    loop {
        let sample = boot()?;
        if clock_is_consistent(&sample) {
            println!("{label}: {}", describe(&sample));
            return Ok((sample, discarded));
        }
        println!(
            "{label}: discarded, the guest clock ran ahead of QEMU's wall clock: {}",
            describe(&sample)
        );
        discarded += 1;
        if discarded > CLOCK_RETRIES {
            bail!("{label}: the guest clock ran ahead of QEMU's wall clock {discarded} times");
        }
    }
}

/// Whether the guest's uptime figures fit in QEMU's wall time: the kernel's start and the
/// coldplug both come before the first answer. A TCG guest on a loaded machine has been seen
/// to report 62.8 s from kernel start to /init in a boot that answered 17.1 s after QEMU
/// started.
fn clock_is_consistent(sample: &Sample) -> bool {
    sample.kernel_to_init + sample.coldplug <= sample.qemu_start_to_web
}

fn describe(sample: &Sample) -> String {
    format!(
        "QEMU start to the first answer {:.3} s, kernel start to /init {:.3} s, coldplug {:.3} s \
         ({} passes), RAM in use {:.1} MiB",
        sample.qemu_start_to_web,
        sample.kernel_to_init,
        sample.coldplug,
        sample.coldplug_passes,
        sample.ram_in_use_mib
    )
}

/// The machine both images boot: the same kernel arguments, a virtio NIC with `guest_port`
/// forwarded, a blank virtio disk; q35, 1 vCPU, 1024 MiB, TCG (the defaults).
fn boot_spec(image: &ApplianceImage, guest_port: u16) -> GuestSpec {
    let spec = GuestSpec::new(image)
        .nic(NicModel::VirtioNet)
        .forward_port(guest_port)
        .disk(DiskSpec::blank(DiskInterface::Virtio, BOOT_DISK_BYTES));
    boot_kernel_args()
        .into_iter()
        .fold(spec, |spec, arg| spec.kernel_arg(arg))
}

/// Boots our image: /init's kernel uptime, mfv-init's coldplug report, QEMU start to
/// the first answer of config mode's page over HTTPS, then the RAM in use read in the
/// rescue shell.
fn ours_once(image: &ApplianceImage) -> Result<Sample> {
    let mut guest = boot_spec(image, 443).boot()?;
    let init = guest.wait_for_line(INIT_LINE, BANNER_TIMEOUT)?;
    let init_seen = guest.elapsed().as_secs_f64();
    let kernel_to_init = number_after(&init, KERNEL_UPTIME)?;
    let report = guest.wait_for_line(COLDPLUG_REPORT, COLDPLUG_TIMEOUT)?;
    if !report.contains("coldplug: settled after ") {
        bail!("mfv-init's coldplug did not settle: {report}");
    }
    first_config_mode_answer(&guest, SERVICES_TIMEOUT)?;
    let qemu_start_to_web = guest.elapsed().as_secs_f64();
    guest.wait_for_line_anywhere(SHELL_STARTED, SERVICES_TIMEOUT)?;
    Ok(Sample {
        qemu_start_to_web,
        qemu_start_to_kernel: init_seen - kernel_to_init,
        kernel_to_init,
        coldplug: f64::from(count_after(&report, " in ")?) / 1000.0,
        coldplug_passes: count_after(&report, "settled after ")?,
        ram_in_use_mib: read_ram_in_use(&mut guest)?,
    })
}

/// Boots the reference image: /init's first uptime, the coldplug loop's figures, QEMU start
/// to the first answer of the PHP page over HTTP, then the RAM in use read in its shell.
fn reference_once(image: &ApplianceImage) -> Result<Sample> {
    let mut guest = boot_spec(image, 80).boot()?;
    let init = guest.wait_for_line(INIT_MARKER, BANNER_TIMEOUT)?;
    let init_seen = guest.elapsed().as_secs_f64();
    let kernel_to_init = number_after(&init, INIT_MARKER)?;
    let coldplug = guest.wait_for_line(SHELL_DONE, COLDPLUG_TIMEOUT)?;
    let (coldplug, coldplug_passes) = shell_figures(&coldplug)?;
    let port = guest.host_port(80).context("no forward for 80")?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (status, body) = first_answer(move || http_get(address), SERVICES_TIMEOUT)
        .with_context(|| format!("serial log: {}", guest.serial_log_path().display()))?;
    let qemu_start_to_web = guest.elapsed().as_secs_f64();
    if status != 200 || !body.contains(PAGE_MARKER) {
        bail!("the reference's PHP page answered {status}: {body}");
    }
    guest.wait_for_line_anywhere(SHELL_MARKER, SERVICES_TIMEOUT)?;
    Ok(Sample {
        qemu_start_to_web,
        qemu_start_to_kernel: init_seen - kernel_to_init,
        kernel_to_init,
        coldplug,
        coldplug_passes,
        ram_in_use_mib: read_ram_in_use(&mut guest)?,
    })
}

/// Types the /proc/meminfo read into the guest's console shell: MemTotal minus MemAvailable
/// in MiB.
fn read_ram_in_use(guest: &mut Guest) -> Result<f64> {
    guest.write_serial(READ_MEMINFO)?;
    let line = guest.wait_for_line(MEMINFO_LINE, SERVICES_TIMEOUT)?;
    ram_in_use(&line)
}

/// Runs `try_once` until it succeeds, at most for `timeout`, starting a try every
/// [`HTTP_RETRY_PAUSE`], each in a thread of its own, and returns the first success. Tries
/// overlap because one may be held: before the guest has its address QEMU's forward takes the
/// connection and the guest's SYN is only resent a second or more later, so a try started
/// just before the server is reachable answers late; a later try answers as soon as the
/// server does. The threads of tries still running end within their own time limits.
fn first_answer<T: Send + 'static>(
    try_once: impl Fn() -> Result<T> + Send + Sync + 'static,
    timeout: Duration,
) -> Result<T> {
    let try_once = Arc::new(try_once);
    let (sender, receiver) = mpsc::channel();
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        let (sender, try_once) = (sender.clone(), Arc::clone(&try_once));
        std::thread::spawn(move || {
            // The receiver is gone once an earlier try succeeded.
            let _ = sender.send(try_once());
        });
        let next_try = Instant::now() + HTTP_RETRY_PAUSE;
        while let Ok(result) =
            receiver.recv_timeout(next_try.saturating_duration_since(Instant::now()))
        {
            match result {
                Ok(answer) => return Ok(answer),
                Err(error) => last_error = Some(error),
            }
        }
        if Instant::now() >= deadline {
            let error = last_error.unwrap_or_else(|| anyhow::anyhow!("no try ended"));
            return Err(error.context(format!("no answer within {} s", timeout.as_secs())));
        }
    }
}

/// Waits for config mode's page over HTTPS on the guest's forwarded port 443 ([`first_answer`])
/// and checks it answered 200.
pub(crate) fn first_config_mode_answer(guest: &Guest, timeout: Duration) -> Result<()> {
    let port = guest.host_port(443).context("no forward for 443")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), GUEST_ADDRESS)?;
    let page = first_answer(move || client.send_raw(FIRST_PAGE_REQUEST), timeout)
        .with_context(|| format!("serial log: {}", guest.serial_log_path().display()))?;
    if page.status != 200 {
        bail!("config mode answered {}: {}", page.status, page.text());
    }
    Ok(())
}

/// One try: `GET /` over plain HTTP, each step given up after [`HTTP_TRY_TIMEOUT`]. Returns
/// the status and the body.
fn http_get(address: SocketAddr) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, HTTP_TRY_TIMEOUT)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(HTTP_TRY_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TRY_TIMEOUT))?;
    stream
        .write_all(FIRST_PAGE_REQUEST)
        .with_context(|| format!("cannot send to {address}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("no answer from {address}"))?;
    parse_http_answer(&answer)
}

/// The status and body of an HTTP/1.x answer.
fn parse_http_answer(answer: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in the answer {text:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP status line: {status_line:?}"))?;
    Ok((status, body.to_owned()))
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

/// One measure of the comparison: how to pick it from a sample, its unit, and issue 17's
/// target as the highest ours / reference ratio that meets it.
struct Measure {
    name: &'static str,
    pick: fn(&Sample) -> f64,
    unit: Unit,
    /// The highest ratio the target allows; `None` for a measure that explains another.
    max_ratio: Option<f64>,
    target: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Seconds,
    Mib,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Self::Seconds => format!("{value:.3} s"),
            Self::Mib => format!("{value:.1} MiB"),
        }
    }
}

const MEASURES: [Measure; 6] = [
    Measure {
        name: "QEMU start to the first HTTP(S) answer (ours: config mode's page over HTTPS; reference: the PHP page over HTTP)",
        pick: |s| s.qemu_start_to_web,
        unit: Unit::Seconds,
        max_ratio: Some(0.6),
        target: "at most 0.6x",
    },
    Measure {
        name: "of which QEMU start to kernel start (firmware, loading the kernel and the initrd, unpacking the kernel; the same Debian kernel in both)",
        pick: |s| s.qemu_start_to_kernel,
        unit: Unit::Seconds,
        max_ratio: None,
        target: "none",
    },
    Measure {
        name: "of which kernel start to the first answer",
        pick: |s| s.qemu_start_to_web - s.qemu_start_to_kernel,
        unit: Unit::Seconds,
        max_ratio: None,
        target: "none",
    },
    Measure {
        name: "Kernel start to /init (ours: /init's `kernel uptime`; reference: /init's first /proc/uptime)",
        pick: |s| s.kernel_to_init,
        unit: Unit::Seconds,
        max_ratio: Some(1.0),
        target: "no later",
    },
    Measure {
        name: "Coldplug, start to settled (ours: `coldplug: settled after .. in <ms> ms`; reference: the modprobe loop)",
        pick: |s| s.coldplug,
        unit: Unit::Seconds,
        max_ratio: Some(0.5),
        target: "at most 0.5x",
    },
    Measure {
        name: "RAM in use once the web answers (MemTotal - MemAvailable, `-m 1024`)",
        pick: |s| s.ram_in_use_mib,
        unit: Unit::Mib,
        max_ratio: Some(1.0),
        target: "no more (aim 130 MiB)",
    },
];

/// `median (min-max)` in `unit`.
fn spread(stats: Stats, unit: Unit) -> String {
    format!(
        "{} ({}-{})",
        unit.format(stats.median),
        unit.format(stats.min),
        unit.format(stats.max)
    )
}

/// Whether a ratio of medians meets a target given as the highest ratio allowed, if any.
fn verdict(ratio: f64, max_ratio: Option<f64>) -> &'static str {
    match max_ratio {
        Some(max_ratio) if ratio <= max_ratio => "met",
        Some(_) => "not met",
        None => "",
    }
}

/// The distinct values of a series, joined by `, `.
fn distinct(values: impl Iterator<Item = u32>) -> String {
    let values: BTreeSet<u32> = values.collect();
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown tables: ours against the reference per measure, with the targets, then the
/// sizes of both initrds.
fn figures_table(
    ours: &[Sample],
    reference: &[Sample],
    ours_report: &ImageReport,
    reference_report: &ReferenceReport,
) -> Result<String> {
    let mut table = String::from(
        "| Measure | Ours: median (min-max) | Reference: median (min-max) | Ours / reference | Target | |\n\
         |---|---:|---:|---:|---|---|\n",
    );
    for measure in &MEASURES {
        let series = |samples: &[Sample]| {
            Stats::of(&samples.iter().map(measure.pick).collect::<Vec<_>>())
                .context("no boots were timed")
        };
        let (ours, reference) = (series(ours)?, series(reference)?);
        let ratio = ours.median / reference.median;
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "| {} | {} | {} | {ratio:.2} | {} | {} |",
            measure.name,
            spread(ours, measure.unit),
            spread(reference, measure.unit),
            measure.target,
            verdict(ratio, measure.max_ratio)
        );
    }
    let ram = Stats::of(&ours.iter().map(|s| s.ram_in_use_mib).collect::<Vec<_>>())
        .context("no boots were timed")?;
    let _ = writeln!(
        table,
        "\nColdplug passes: ours {}; reference {}. Our RAM in use against the aim of 130 MiB: {}.",
        distinct(ours.iter().map(|s| s.coldplug_passes)),
        distinct(reference.iter().map(|s| s.coldplug_passes)),
        if ram.median <= 130.0 {
            "met"
        } else {
            "not met"
        }
    );
    let size = |bytes: u64| format!("{} ({bytes} bytes)", image::mib(bytes));
    let _ = write!(
        table,
        "\n| Initrd | Ours | Reference |\n|---|---:|---:|\n\
         | compressed (`initrd.img`: ours zstd, the reference gzip) | {} | {} |\n\
         | of which the payload squashfs (ours: stays compressed in RAM, read on demand) | {} | none |\n\
         | unpacked (cpio archives; ours with the squashfs in it) | {} | {} |\n\
         | files / kernel modules | {} / {} | {} / {} |\n",
        size(ours_report.compressed_bytes),
        size(reference_report.compressed_bytes),
        size(ours_report.squashfs_bytes),
        size(ours_report.uncompressed_bytes),
        size(reference_report.unpacked_bytes),
        ours_report.files,
        ours_report.modules,
        reference_report.files,
        reference_report.modules,
    );
    Ok(table)
}

/// This machine: cores, CPU model, QEMU version.
pub(crate) fn machine_description() -> String {
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
fn section(
    runs: u32,
    machine: &str,
    load: &str,
    discarded: u32,
    date: &str,
    table: &str,
) -> String {
    let args = boot_kernel_args().join(" ");
    format!(
        "{SECTION_HEADING}\n\n\
         Boots our image (release build) and a reference image of the seed's classic stack in the same \
         run, alternately, each `--runs` times, with the same QEMU flags (q35, 1 vCPU, `-m 1024`, TCG, \
         one virtio NIC on `-netdev user,restrict=on` with the web port forwarded to 127.0.0.1, one \
         blank 64 MiB virtio disk) and the same kernel command line (`console=ttyS0 {args}`; the \
         reference ignores the `mfv.` arguments). The reference (`xtask/src/bench_reference.rs`, \
         written to `target/bench-reference/`) boots the same Debian kernel with the same driver \
         modules as ours (modules.dep and modules.alias by depmod), unpacked by the kernel from one \
         gzip cpio archive: Debian's busybox-static, lighttpd, php8.2-cgi and php8.2-common (without \
         their documentation) and the libraries they link. Its /init, a busybox shell script, mounts \
         proc, sys and devtmpfs, prints /proc/uptime, runs the coldplug loop of `cargo xtask bench \
         probe` (`modprobe -q` for every distinct `MODALIAS=` of /sys/bus/*/devices/*/uevent, \
         `sleep 0.25`, repeated until a pass leaves the number of devices unchanged; timed with \
         /proc/uptime), runs `udhcpc -b` on eth0, starts lighttpd with php-cgi over FastCGI (one \
         php-cgi with 4 children, as Debian's 15-fastcgi-php.conf) serving a small PHP configuration \
         page on port 80, and leaves a root shell on the console. With all of our driver modules \
         unpacked in it, the reference is larger than the seed's own initrd was (23 MB gzip, 59 MB \
         unpacked), so it unpacks more before /init and keeps more in RAM than the seed did. Ours boots without a configuration \
         with DHCP (config mode) and `mfv.rescue`, which leaves a root shell on the console while the \
         services run. A new try for the first answer starts every 100 ms from QEMU's start, each in a \
         thread of its own and given up after 2 s, so a try the forward holds before the guest has \
         its address (the guest sees its SYN only when it is resent, a second or more later) does \
         not delay the answer of the next; the RAM in use \
         is read from /proc/meminfo by a command typed into each console shell right after that \
         answer. QEMU start to kernel start is when /init's line came on QEMU's clock less the \
         kernel's uptime in it: the firmware, loading the kernel and the initrd, and the kernel \
         unpacking itself, which both images share but for the initrd's size (Debian's kernel is \
         xz-compressed, slow to unpack under TCG). Targets (issue 17): ours against the \
         reference's medians. The machine is shared \
         (2 cores, other work running), so the figures are noisy; compare ratios within one run.\n\n\
         - Command: `cargo xtask bench boot --runs {runs}`\n\
         - Machine: {machine}\n\
         - Load average (1 min) before the first boot / after the last: {load}\n\
         - Date: {date}\n\
         - Boots: {runs} of each image; discarded and repeated because the guest clock ran ahead of \
         QEMU's wall clock (kernel start to /init plus coldplug longer than QEMU start to the first \
         answer): {discarded}\n\n\
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
    let init = guest.wait_for_line(INIT_LINE, BANNER_TIMEOUT)?;
    let report = guest.wait_for_line(COLDPLUG_REPORT, COLDPLUG_TIMEOUT)?;
    if !report.contains("coldplug: settled after ") {
        bail!("mfv-init's coldplug did not settle: {report}");
    }
    let phase = guest.wait_for_line(COLDPLUG_PHASE, COLDPLUG_TIMEOUT)?;
    let ours = number_after(&phase, "coldplug: ok (")? / 1000.0;
    let ours_init_to_bound = console_stamp(&phase)? - number_after(&init, KERNEL_UPTIME)?;
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
            "/init to all bound and inventoried with mfv-init (/init's line to end of `coldplug` phase)",
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
         fourth is the whole way from /init (mfv-early-init's line) to the end of that phase.\n\n\
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
    fn parses_our_and_the_reference_init_line() {
        let ours = "[    1.689820] mfv-early-init: /init at kernel uptime 1.634 s; payload \
                    /usr/lib/mfv/payload.squashfs (79.5 MiB) mounted read-only";
        assert!(ours.contains(INIT_LINE));
        assert_eq!(number_after(ours, KERNEL_UPTIME).unwrap(), 1.634);
        let init = "REF-INIT 2.41\r";
        assert_eq!(number_after(init, INIT_MARKER).unwrap(), 2.41);
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
    fn http_answers_parse() {
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>served by PHP 8.2.36</p>";
        assert_eq!(
            parse_http_answer(answer).unwrap(),
            (200, "<p>served by PHP 8.2.36</p>".to_owned())
        );
        assert_eq!(
            parse_http_answer(b"HTTP/1.0 503 Service Unavailable\r\n\r\n").unwrap(),
            (503, String::new())
        );
        let error = parse_http_answer(b"HTTP/1.1 200 OK\r\n").unwrap_err();
        assert!(error.to_string().contains("no end of headers"), "{error}");
        let error = parse_http_answer(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err();
        assert!(
            error.to_string().contains("not an HTTP status line"),
            "{error}"
        );
        assert!(parse_http_answer(b"HTTP/1.1 OK\r\n\r\n").is_err());
    }

    #[test]
    fn a_closed_port_is_an_error_after_the_timeout() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error =
            first_answer(move || http_get(address), Duration::from_millis(300)).unwrap_err();
        assert!(
            error.to_string().contains("no answer within 0 s"),
            "{error}"
        );
        assert!(
            format!("{error:#}").contains(&format!("cannot connect to {address}")),
            "{error:#}"
        );
    }

    #[test]
    fn a_held_try_does_not_keep_the_next_from_answering() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // The first connection is held without an answer, as QEMU's forward does before
            // the guest has its address; the second is answered.
            let (held, _) = listener.accept().unwrap();
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 1024];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nsecond")
                .unwrap();
            held
        });
        // Shorter than one try's own limit: only an overlapping try can answer in time.
        assert!(Duration::from_secs(1) < HTTP_TRY_TIMEOUT);
        assert_eq!(
            first_answer(move || http_get(address), Duration::from_secs(1)).unwrap(),
            (200, "second".to_owned())
        );
        drop(server.join().unwrap());
    }

    #[test]
    fn a_server_is_asked_until_it_answers() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 1024];
            let read = stream.read(&mut request).unwrap();
            assert!(request[..read].starts_with(b"GET / HTTP/1.1\r\n"));
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npage")
                .unwrap();
        });
        assert_eq!(
            first_answer(move || http_get(address), Duration::from_secs(10)).unwrap(),
            (200, "page".to_owned())
        );
        server.join().unwrap();
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

    fn sample(web: f64, init: f64, coldplug: f64, passes: u32, ram: f64) -> Sample {
        Sample {
            qemu_start_to_web: web,
            qemu_start_to_kernel: 0.0,
            kernel_to_init: init,
            coldplug,
            coldplug_passes: passes,
            ram_in_use_mib: ram,
        }
    }

    #[test]
    fn a_guest_clock_ahead_of_the_wall_clock_is_caught_and_the_boot_repeated() {
        assert!(clock_is_consistent(&sample(14.0, 3.9, 1.5, 3, 300.0)));
        assert!(!clock_is_consistent(&sample(17.1, 62.8, 2.3, 3, 300.0)));
        let mut boots = [
            sample(17.1, 62.8, 2.3, 3, 300.0),
            sample(14.0, 3.9, 1.5, 3, 300.0),
        ]
        .into_iter();
        let (kept, discarded) = timed_boot("test", || Ok(boots.next().unwrap())).unwrap();
        assert_eq!((kept.kernel_to_init, discarded), (3.9, 1));
        let error = timed_boot("test", || Ok(sample(17.1, 62.8, 2.3, 3, 300.0))).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ran ahead of QEMU's wall clock 3 times"),
            "{error}"
        );
        let error = timed_boot("test", || bail!("QEMU did not start")).unwrap_err();
        assert_eq!(error.to_string(), "QEMU did not start");
    }

    #[test]
    fn verdicts_compare_the_ratio_with_the_target() {
        assert_eq!(verdict(0.6, Some(0.6)), "met");
        assert_eq!(verdict(0.61, Some(0.6)), "not met");
        assert_eq!(verdict(0.99, Some(1.0)), "met");
        assert_eq!(verdict(1.01, Some(1.0)), "not met");
        assert_eq!(verdict(1.01, None), "");
        assert_eq!(distinct([3, 2, 3].into_iter()), "2, 3");
    }

    #[test]
    fn the_table_compares_ours_with_the_reference_and_lists_sizes() {
        let ours = [
            sample(6.0, 2.0, 0.5, 3, 120.0),
            sample(7.0, 2.2, 0.6, 3, 125.0),
            sample(5.0, 1.8, 0.4, 4, 122.0),
        ];
        let reference = [
            sample(10.0, 2.0, 2.0, 2, 190.0),
            sample(12.0, 2.1, 2.4, 2, 200.0),
            sample(11.0, 1.9, 2.2, 2, 195.0),
        ];
        let ours_report = ImageReport {
            files: 10,
            uncompressed_bytes: 4 * 1024 * 1024,
            compressed_bytes: 3 * 1024 * 1024,
            squashfs_bytes: 2 * 1024 * 1024,
            modules: 300,
        };
        let reference_report = ReferenceReport {
            dir: "/tmp/reference".into(),
            files: 20,
            modules: 300,
            unpacked_bytes: 8 * 1024 * 1024,
            compressed_bytes: 1024 * 1024,
        };
        let table = figures_table(&ours, &reference, &ours_report, &reference_report).unwrap();
        assert!(
            table.contains("| 6.000 s (5.000 s-7.000 s) | 11.000 s (10.000 s-12.000 s) | 0.55 | at most 0.6x | met |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| 2.000 s (1.800 s-2.200 s) | 2.000 s (1.900 s-2.100 s) | 1.00 | no later | met |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| 0.500 s (0.400 s-0.600 s) | 2.200 s (2.000 s-2.400 s) | 0.23 | at most 0.5x | met |"),
            "{table}"
        );
        assert!(
            table.contains("| 122.0 MiB (120.0 MiB-125.0 MiB) | 195.0 MiB (190.0 MiB-200.0 MiB) | 0.63 | no more (aim 130 MiB) | met |"),
            "{table}"
        );
        assert!(
            table.contains("Coldplug passes: ours 3, 4; reference 2. Our RAM in use against the aim of 130 MiB: met."),
            "{table}"
        );
        assert!(
            table.contains("| 3.0 MiB (3145728 bytes) | 1.0 MiB (1048576 bytes) |"),
            "{table}"
        );
        assert!(
            table.contains("| 2.0 MiB (2097152 bytes) | none |"),
            "{table}"
        );
        assert!(
            table.contains("| 4.0 MiB (4194304 bytes) | 8.0 MiB (8388608 bytes) |"),
            "{table}"
        );
        assert!(table.contains("| 10 / 300 | 20 / 300 |"), "{table}");
        let slower = [sample(9.0, 2.5, 1.5, 3, 250.0)];
        let table = figures_table(&slower, &reference, &ours_report, &reference_report).unwrap();
        assert_eq!(table.matches("| not met |").count(), 4, "{table}");
        assert!(table.contains("aim of 130 MiB: not met."), "{table}");
        assert!(figures_table(&[], &reference, &ours_report, &reference_report).is_err());
        assert!(figures_table(&ours, &[], &ours_report, &reference_report).is_err());
    }

    #[test]
    fn the_section_is_created_then_replaced_in_place() {
        let first = replace_section(
            None,
            SECTION_HEADING,
            &section(5, "2 cores", "7.10 / 8.20", 0, "2026-11-25", "| a |\n"),
        );
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.contains(
            "- Command: `cargo xtask bench boot --runs 5`\n- Machine: 2 cores\n\
             - Load average (1 min) before the first boot / after the last: 7.10 / 8.20\n\
             - Date: 2026-11-25\n- Boots: 5 of each image; discarded"
        ));
        let with_other = format!("{first}\n## Web (`cargo xtask bench web`)\n\nweb figures\n");
        let second = replace_section(
            Some(&with_other),
            SECTION_HEADING,
            &section(3, "2 cores", "1.00 / 1.50", 1, "2026-11-26", "| b |\n"),
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
