//! `cargo xtask bench vm`: listing many defined VMs with `mfv vm list` against
//! `virsh list --all`, on libvirt's test driver and on a private libvirtd, and the define,
//! start, force off, undefine cycle of a real TCG guest; recorded in BENCHMARKS.md.
//!
//! Both listings run as separate processes, started and timed the same way from spawn to exit
//! with their output read through a pipe: that is what a user at a shell pays for each, and
//! the comparison the target (`mfv vm list` within 1.2x of `virsh list --all`) applies to.
//! Beside them, the mfv-vm example `vm_bench` (release build) times the library call
//! `Hypervisor::list()` in process, with and without opening the connection; it also writes
//! the test driver's node file, defines the VMs on the daemon and runs the guest cycle,
//! printing one `sample KEY MILLISECONDS` line per timing.
//!
//! The test driver keeps its state per connection, so the VMs cannot be defined by one
//! process and listed by another: every side connects to `test:///<node file>`, a node file
//! holding the same VMs (domain XML from `VmSpec::to_domain_xml`), which each connection
//! parses when it opens. On the private libvirtd (`mfv_tests::libvirtd`) the VMs are defined
//! once through `Hypervisor::define` and every side lists the same daemon.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mfv_tests::libvirtd::{PowerButton, PrivateLibvirtd, guest_initrd, guest_kernel};

use crate::bench::{Stats, cores_and_cpu, package_versions, record, today};
use crate::{Workspace, cmd};

const VM_HEADING: &str = "## VM listing and lifecycle (`cargo xtask bench vm`)";

/// The target: `mfv vm list` takes at most this many times as long as `virsh list --all`.
const TARGET_RATIO: f64 = 1.2;

/// What `cargo xtask bench vm` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmBenchOptions {
    /// Timed runs of each listing.
    pub runs: u32,
    /// VMs defined for the listings.
    pub domains: u32,
    /// Timed guest cycles.
    pub cycles: u32,
}

/// The programs the benchmark runs, release builds.
struct Programs {
    mfv: PathBuf,
    vm_bench: PathBuf,
}

/// Runs the benchmark and records it; fails if any run fails, not if the target is missed.
pub fn vm(workspace: &Workspace, options: VmBenchOptions) -> Result<()> {
    if !crate::deps::is_root() {
        bail!(
            "cargo xtask bench vm starts a private libvirtd in its own namespaces: run it as root"
        );
    }
    let programs = build(workspace)?;
    let scratch = tempfile::Builder::new()
        .prefix("mfv-bench-vm-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let load_before = load_average()?;

    let node = scratch.path().join("node.xml");
    let domains = options.domains.to_string();
    println!("test driver: writing a node file with {domains} VMs");
    cmd::stdout(
        Command::new(&programs.vm_bench)
            .args(["node-xml", &domains])
            .arg(&node),
    )?;
    let test_uri = test_driver_uri(&node);
    println!("test driver: listing {domains} VMs at {test_uri}");
    let test_driver = listing(&programs, &test_uri, options)?;

    println!("private libvirtd: starting");
    let daemon = PrivateLibvirtd::start()?;
    let kernel = guest_kernel()?;
    let initrd = guest_initrd(daemon.dir(), PowerButton::Ignored)?;
    println!(
        "private libvirtd: {} guest cycles (define, start, force off, undefine)",
        options.cycles
    );
    let output = cmd::stdout(
        Command::new(&programs.vm_bench)
            .args(["cycle", daemon.uri()])
            .arg(&kernel)
            .arg(&initrd)
            .arg(options.cycles.to_string()),
    )
    .with_context(|| format!("the guest cycle failed; daemon log:\n{}", daemon.log()))?;
    let cycle = Samples::parse(&output);
    println!("private libvirtd: defining {domains} VMs");
    let output =
        cmd::stdout(Command::new(&programs.vm_bench).args(["define", daemon.uri(), &domains]))?;
    let define_all = defined_milliseconds(&output)?;
    println!("private libvirtd: listing {domains} VMs");
    let daemon_listing = listing(&programs, daemon.uri(), options)?;
    println!("private libvirtd: reading {domains} definitions");
    let output = cmd::stdout(Command::new(&programs.vm_bench).args([
        "definitions",
        daemon.uri(),
        &options.runs.to_string(),
        &domains,
    ]))?;
    let read_definitions = Samples::parse(&output).get("definitions")?.to_vec();
    drop(daemon);
    let load_after = load_average()?;

    let figures = Figures {
        test_driver,
        daemon: daemon_listing,
        cycle: CycleFigures::from_samples(&cycle)?,
        define_all,
        read_definitions,
        load: (load_before, load_after),
    };
    let section = section(options, &machine_description(), &today(), &figures)?;
    println!("\n{section}");
    println!("{}", figures.verdict()?);
    record(workspace, VM_HEADING, &section)
}

/// Builds `mfv` and the `vm_bench` example in release mode.
fn build(workspace: &Workspace) -> Result<Programs> {
    println!("building mfv and the mfv-vm example vm_bench (release)");
    cmd::run(workspace.cargo().args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "mfv-cli",
        "--bin",
        "mfv",
    ]))?;
    cmd::run(workspace.cargo().args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "mfv-vm",
        "--example",
        "vm_bench",
    ]))?;
    let release = workspace.target.join("release");
    Ok(Programs {
        mfv: release.join("mfv"),
        vm_bench: release.join("examples/vm_bench"),
    })
}

/// The test driver URI of a node file: `test:///abs/path/node.xml`.
fn test_driver_uri(node: &Path) -> String {
    format!("test://{}", node.display())
}

/// The timings of one driver's listings, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
struct Listing {
    virsh: Vec<f64>,
    mfv: Vec<f64>,
    mfv_json: Vec<f64>,
    library_connect_list: Vec<f64>,
    library_list: Vec<f64>,
}

impl Listing {
    /// Each series with how the table names it; `mfv vm list` second, the ratio row
    /// follows it.
    fn rows(&self) -> [(&'static str, &[f64]); 5] {
        [
            ("`virsh list --all` (process)", &self.virsh),
            ("`mfv vm list` (process)", &self.mfv),
            ("`mfv vm list --json` (process)", &self.mfv_json),
            (
                "library: connect + `Hypervisor::list()` (in process)",
                &self.library_connect_list,
            ),
            (
                "library: `Hypervisor::list()` on an open connection",
                &self.library_list,
            ),
        ]
    }
}

/// The three listing commands, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lister {
    Virsh,
    Mfv,
    MfvJson,
}

impl Lister {
    const ALL: [Lister; 3] = [Lister::Virsh, Lister::Mfv, Lister::MfvJson];

    /// The key of this lister's timings.
    fn key(self) -> &'static str {
        match self {
            Lister::Virsh => "virsh",
            Lister::Mfv => "mfv",
            Lister::MfvJson => "mfv --json",
        }
    }

    fn command(self, programs: &Programs, uri: &str) -> Command {
        let mut command = match self {
            Lister::Virsh => {
                let mut command = Command::new("virsh");
                command.args(["-c", uri, "list", "--all"]);
                command
            }
            Lister::Mfv | Lister::MfvJson => {
                let mut command = Command::new(&programs.mfv);
                command.args(["vm", "list", "--uri", uri]);
                command
            }
        };
        if self == Lister::MfvJson {
            command.arg("--json");
        }
        command.stdin(Stdio::null());
        command
    }

    /// The VM names in this lister's output.
    fn names(self, output: &str) -> Result<Vec<String>> {
        match self {
            Lister::Virsh => virsh_names(output),
            Lister::Mfv => mfv_names(output),
            Lister::MfvJson => json_names(output),
        }
    }
}

/// Times the listings of `options.domains` VMs at `uri`: one untimed round of the three
/// commands whose outputs must name exactly the expected VMs, then `options.runs` rounds
/// (the commands alternate, so a change of load hits all three alike), then the library.
fn listing(programs: &Programs, uri: &str, options: VmBenchOptions) -> Result<Listing> {
    let expected = expected_names(options.domains);
    for lister in Lister::ALL {
        let mut command = lister.command(programs, uri);
        let names = lister.names(&cmd::stdout(&mut command)?)?;
        if names != expected {
            bail!(
                "`{}` listed {} VMs, not the {} defined (first: {:?})",
                cmd::display(&command),
                names.len(),
                expected.len(),
                names.first()
            );
        }
    }
    let mut timings: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..options.runs {
        for lister in Lister::ALL {
            let mut command = lister.command(programs, uri);
            let started = Instant::now();
            let output = cmd::stdout(&mut command)?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            let listed = lister.names(&output)?.len();
            if listed != expected.len() {
                bail!("`{}` listed {listed} VMs", cmd::display(&command));
            }
            timings.entry(lister.key()).or_default().push(elapsed);
        }
    }
    let output = cmd::stdout(Command::new(&programs.vm_bench).args([
        "list",
        uri,
        &options.runs.to_string(),
        &options.domains.to_string(),
    ]))?;
    let library = Samples::parse(&output);
    let mut take = |key: &str| timings.remove(key).unwrap_or_default();
    Ok(Listing {
        virsh: take(Lister::Virsh.key()),
        mfv: take(Lister::Mfv.key()),
        mfv_json: take(Lister::MfvJson.key()),
        library_connect_list: library.get("connect_list")?.to_vec(),
        library_list: library.get("list")?.to_vec(),
    })
}

/// The names `vm_bench` gives `count` VMs (`bench-0001`...), sorted.
fn expected_names(count: u32) -> Vec<String> {
    let mut names: Vec<String> = (1..=count)
        .map(|index| format!("bench-{index:04}"))
        .collect();
    names.sort();
    names
}

/// The names in `virsh list --all` output (` Id   Name   State` and a dashed line, then
/// ` 1    web-1   running` or ` -    db   shut off`), sorted.
fn virsh_names(output: &str) -> Result<Vec<String>> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    if header.split_whitespace().collect::<Vec<_>>() != ["Id", "Name", "State"] {
        bail!("`virsh list --all` printed {header:?} instead of its `Id Name State` header");
    }
    let mut names = Vec::new();
    for line in lines.filter(|line| !line.trim().is_empty() && !line.starts_with('-')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_id, name, _state, ..] = fields[..] else {
            bail!("`virsh list --all` printed the row {line:?} without a state");
        };
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// The names in `mfv vm list` output (`NAME  STATE  AUTOSTART`, then one row per VM),
/// sorted.
fn mfv_names(output: &str) -> Result<Vec<String>> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    if header.split_whitespace().collect::<Vec<_>>() != ["NAME", "STATE", "AUTOSTART"] {
        bail!("`mfv vm list` printed {header:?} instead of its `NAME STATE AUTOSTART` header");
    }
    let mut names = Vec::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, _state, _autostart] = fields[..] else {
            bail!("`mfv vm list` printed the row {line:?}, not `NAME STATE AUTOSTART`");
        };
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// The names in `mfv vm list --json` output (an array of objects with a `name`), sorted.
fn json_names(output: &str) -> Result<Vec<String>> {
    let vms: Vec<serde_json::Value> =
        serde_json::from_str(output).context("`mfv vm list --json` printed no JSON array")?;
    let mut names = vms
        .iter()
        .map(|vm| {
            vm.get("name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("`mfv vm list --json` printed a VM without a name: {vm}"))
        })
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// The `sample KEY MILLISECONDS` lines of `vm_bench`, by key.
#[derive(Debug, Default)]
struct Samples(BTreeMap<String, Vec<f64>>);

impl Samples {
    fn parse(output: &str) -> Samples {
        let mut samples = Samples::default();
        for line in output.lines() {
            if let ["sample", key, value] = line.split_whitespace().collect::<Vec<_>>()[..] {
                if let Ok(value) = value.parse() {
                    samples.0.entry(key.to_owned()).or_default().push(value);
                }
            }
        }
        samples
    }

    fn get(&self, key: &str) -> Result<&[f64]> {
        self.0
            .get(key)
            .map(Vec::as_slice)
            .with_context(|| format!("vm_bench printed no `sample {key}` line"))
    }
}

/// The milliseconds of `vm_bench define`'s `defined COUNT MILLISECONDS` line.
fn defined_milliseconds(output: &str) -> Result<f64> {
    output
        .lines()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["defined", _count, value] => value.parse().ok(),
                _ => None,
            },
        )
        .context("vm_bench define printed no `defined COUNT MILLISECONDS` line")
}

/// A series of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread(Stats);

impl Spread {
    fn of(values: &[f64]) -> Result<Self> {
        Stats::of(values).map(Spread).context("no runs were timed")
    }

    /// `12.3 ms (11.9..13.0)`.
    fn cell(self) -> String {
        format!(
            "{:.1} ms ({:.1}..{:.1})",
            self.0.median, self.0.min, self.0.max
        )
    }
}

/// The guest cycle's steps, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
struct CycleFigures {
    steps: Vec<(&'static str, Spread)>,
}

/// `vm_bench cycle`'s sample keys and how the table names them, the whole cycle last.
const CYCLE_STEPS: [(&str, &str); 5] = [
    ("define", "define (`Hypervisor::define`)"),
    ("start", "start (`Hypervisor::start`, QEMU launched)"),
    (
        "force_off",
        "force off (`Hypervisor::force_off`, virDomainDestroy)",
    ),
    ("undefine", "undefine (`Hypervisor::undefine`)"),
    ("cycle", "whole cycle"),
];

impl CycleFigures {
    fn from_samples(samples: &Samples) -> Result<Self> {
        let steps = CYCLE_STEPS
            .iter()
            .map(|&(key, label)| Ok((label, Spread::of(samples.get(key)?)?)))
            .collect::<Result<_>>()?;
        Ok(Self { steps })
    }
}

/// Everything the section reports.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    test_driver: Listing,
    daemon: Listing,
    cycle: CycleFigures,
    /// Defining all the listed VMs on the daemon, one connection, in milliseconds.
    define_all: f64,
    /// Reading all their definitions into memory, one sample per run, in milliseconds.
    read_definitions: Vec<f64>,
    /// The 1-minute load average before and after the benchmark.
    load: (f64, f64),
}

impl Figures {
    /// `mfv vm list` median over `virsh list --all` median, test driver then daemon.
    fn ratios(&self) -> Result<[f64; 2]> {
        let ratio = |listing: &Listing| -> Result<f64> {
            Ok(Spread::of(&listing.mfv)?.0.median / Spread::of(&listing.virsh)?.0.median)
        };
        Ok([ratio(&self.test_driver)?, ratio(&self.daemon)?])
    }

    /// One line: the target, and whether each driver meets it.
    fn verdict(&self) -> Result<String> {
        let [test_driver, daemon] = self.ratios()?;
        let judge = |ratio: f64| {
            let met = if ratio <= TARGET_RATIO {
                "met"
            } else {
                "not met"
            };
            format!("**{met}** ({ratio:.2}x)")
        };
        Ok(format!(
            "Target: `mfv vm list` within {TARGET_RATIO}x of `virsh list --all` (process vs \
             process, medians): test driver {}, private libvirtd {}",
            judge(test_driver),
            judge(daemon)
        ))
    }
}

/// The 1-minute load average from /proc/loadavg.
pub(crate) fn load_average() -> Result<f64> {
    let text = fs::read_to_string("/proc/loadavg").context("cannot read /proc/loadavg")?;
    parse_load_average(&text)
}

fn parse_load_average(text: &str) -> Result<f64> {
    text.split_whitespace()
        .next()
        .and_then(|first| first.parse().ok())
        .with_context(|| format!("no load average in /proc/loadavg: {text:?}"))
}

/// This machine and the libvirt and QEMU package versions.
fn machine_description() -> String {
    format!(
        "{}; {}",
        cores_and_cpu(),
        package_versions(&["libvirt-daemon", "libvirt-clients", "qemu-system-x86"])
    )
}

/// The BENCHMARKS.md section.
fn section(
    options: VmBenchOptions,
    machine: &str,
    date: &str,
    figures: &Figures,
) -> Result<String> {
    let VmBenchOptions {
        runs,
        domains,
        cycles,
    } = options;
    let [test_ratio, daemon_ratio] = figures.ratios()?;
    let mut text = format!(
        "{VM_HEADING}\n\n\
         **Listing {domains} defined VMs.** `mfv vm list` (release build) against \
         `virsh list --all`, each a separate process started and timed the same way, from spawn \
         to exit with its output read through a pipe (process start, connect, list with states, \
         print): the target applies to this comparison. The three commands alternate, one \
         round after another, after one untimed round whose outputs must name exactly the \
         {domains} VMs. Below them, the library call in process (mfv-vm example `vm_bench`, \
         release): connect then `Hypervisor::list()`, and `Hypervisor::list()` alone on an open \
         connection. `Hypervisor::list()` makes four listings (every domain, the active, \
         the autostarted and the persistent ones) and asks only the active domains for their \
         state; `virsh list --all` lists every domain and asks each for its state. **Test driver**: its state is per connection, so every side \
         connects to `test:///<node file>`, a node file holding the {domains} VMs \
         (domain XML from `VmSpec::to_domain_xml`: 1 vCPU, 128 MiB, serial console, no disk), \
         which each connection parses when it opens; the test driver reports them running. \
         **Private libvirtd** (`mfv_tests::libvirtd`, QEMU driver, its own namespaces, pinned \
         to CPU 0): the same VMs defined once through `Hypervisor::define`, all shut off; the \
         clients connect over its Unix socket.\n\n\
         **Guest cycle.** On the same private daemon before the VMs are defined: define, start, \
         force off (virDomainDestroy) and undefine a guest from a `VmSpec` (1 vCPU, 128 MiB, \
         direct boot of the Debian kernel and a busybox initrd, TCG), through the library in \
         process; one untimed warm-up cycle first. `start` returns once QEMU runs the guest, \
         which is forced off before it has booted.\n\n\
         - Command: `cargo xtask bench vm --runs {runs} --domains {domains} --cycles {cycles}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Load average (1 min) at start / end: {:.2} / {:.2} (other work on the machine \
         shares its 2 cores)\n\
         - Runs: {runs} per listing, {cycles} guest cycles: median (min..max)\n\
         - {}\n\n\
         | Listing {domains} VMs | Test driver | Private libvirtd |\n\
         |---|---:|---:|\n",
        figures.load.0,
        figures.load.1,
        figures.verdict()?,
    );
    let rows = figures
        .test_driver
        .rows()
        .into_iter()
        .zip(figures.daemon.rows());
    for (index, ((label, test_driver), (_, daemon))) in rows.enumerate() {
        writeln!(
            text,
            "| {label} | {} | {} |",
            Spread::of(test_driver)?.cell(),
            Spread::of(daemon)?.cell()
        )?;
        if index == 1 {
            writeln!(
                text,
                "| **`mfv vm list` / `virsh list --all`** (medians) | **{test_ratio:.2}x** | **{daemon_ratio:.2}x** |"
            )?;
        }
    }
    writeln!(
        text,
        "\nDefining the {domains} VMs on the private libvirtd (one connection, one define each): \
         {:.2} s. Reading their {domains} definitions and snapshots into memory \
         (`Hypervisor::definitions`, what the VM keeper does every 2 s to see whether a \
         definition changed; it writes only when one did): {}.\n\n\
         | Guest cycle step | Median | Min | Max |\n\
         |---|---:|---:|---:|",
        figures.define_all / 1000.0,
        Spread::of(&figures.read_definitions)?.cell()
    )?;
    for (label, spread) in &figures.cycle.steps {
        writeln!(
            text,
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms |",
            spread.0.median, spread.0.min, spread.0.max
        )?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRSH: &str = " Id    Name         State\n\
                         -----------------------------\n \
                         1     bench-0002   running\n \
                         -     bench-0001   shut off\n\n";

    const MFV: &str = "NAME                             STATE        AUTOSTART\n\
                       bench-0001                       shut_off     no\n\
                       bench-0002                       running      yes\n";

    const JSON: &str = r#"[
  {"name": "bench-0002", "uuid": "u2", "state": "running", "autostart": false, "persistent": true},
  {"name": "bench-0001", "uuid": "u1", "state": "shut_off", "autostart": false, "persistent": true}
]"#;

    #[test]
    fn every_lister_reads_the_same_names() {
        let expected = expected_names(2);
        assert_eq!(expected, ["bench-0001", "bench-0002"]);
        assert_eq!(virsh_names(VIRSH).unwrap(), expected);
        assert_eq!(mfv_names(MFV).unwrap(), expected);
        assert_eq!(json_names(JSON).unwrap(), expected);
        assert_eq!(expected_names(0), Vec::<String>::new());
        assert_eq!(
            virsh_names(" Id   Name   State\n----\n\n").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unexpected_listings_are_errors() {
        let error = virsh_names("error: failed to connect\n").unwrap_err();
        assert!(error.to_string().contains("Id Name State"), "{error}");
        let error = virsh_names(" Id Name State\n---\n 1 lonely\n").unwrap_err();
        assert!(error.to_string().contains("\" 1 lonely\""), "{error}");
        let error = mfv_names("name state\n").unwrap_err();
        assert!(
            error.to_string().contains("NAME STATE AUTOSTART"),
            "{error}"
        );
        let error = mfv_names("NAME STATE AUTOSTART\nweb running\n").unwrap_err();
        assert!(error.to_string().contains("\"web running\""), "{error}");
        assert!(json_names("NAME STATE").is_err());
        let error = json_names(r#"[{"uuid": "u"}]"#).unwrap_err();
        assert!(error.to_string().contains("without a name"), "{error}");
    }

    #[test]
    fn samples_are_grouped_by_key() {
        let samples = Samples::parse(
            "sample list 5.2\nsample connect_list 220.5\nsample list 4.8\nnoise\nsample list x\n",
        );
        assert_eq!(samples.get("list").unwrap(), [5.2, 4.8]);
        assert_eq!(samples.get("connect_list").unwrap(), [220.5]);
        let error = samples.get("cycle").unwrap_err();
        assert_eq!(error.to_string(), "vm_bench printed no `sample cycle` line");
        assert_eq!(
            defined_milliseconds("defined 1000 144.053\n").unwrap(),
            144.053
        );
        assert!(defined_milliseconds("defined 1000\n").is_err());
    }

    #[test]
    fn spreads_take_median_min_max() {
        let spread = Spread::of(&[3.0, 1.0, 2.0, 5.0, 4.0]).unwrap();
        assert_eq!(
            (spread.0.median, spread.0.min, spread.0.max),
            (3.0, 1.0, 5.0)
        );
        assert_eq!(Spread::of(&[4.0, 1.0]).unwrap().0.median, 2.5);
        assert_eq!(spread.cell(), "3.0 ms (1.0..5.0)");
        assert!(Spread::of(&[]).is_err());
    }

    #[test]
    fn load_average_is_the_first_field() {
        assert_eq!(
            parse_load_average("0.52 1.30 1.66 2/300 4242\n").unwrap(),
            0.52
        );
        assert!(parse_load_average("").is_err());
    }

    #[test]
    fn the_node_file_is_a_test_uri() {
        assert_eq!(
            test_driver_uri(Path::new("/tmp/x/node.xml")),
            "test:///tmp/x/node.xml"
        );
    }

    #[test]
    fn the_commands_are_the_ones_the_section_names() {
        let programs = Programs {
            mfv: PathBuf::from("/r/mfv"),
            vm_bench: PathBuf::from("/r/examples/vm_bench"),
        };
        let shown: Vec<String> = Lister::ALL
            .iter()
            .map(|lister| cmd::display(&lister.command(&programs, "test:///n.xml")))
            .collect();
        assert_eq!(
            shown,
            [
                "virsh -c test:///n.xml list --all",
                "/r/mfv vm list --uri test:///n.xml",
                "/r/mfv vm list --uri test:///n.xml --json",
            ]
        );
    }

    fn listing(virsh: f64, mfv: f64) -> Listing {
        Listing {
            virsh: vec![virsh, virsh + 2.0, virsh - 2.0],
            mfv: vec![mfv, mfv + 1.0, mfv - 1.0],
            mfv_json: vec![mfv + 5.0],
            library_connect_list: vec![mfv - 10.0],
            library_list: vec![4.5, 5.5],
        }
    }

    fn figures() -> Figures {
        let samples = Samples::parse(
            "sample define 3\nsample start 700\nsample force_off 90\nsample undefine 2\nsample cycle 795\n",
        );
        Figures {
            test_driver: listing(250.0, 255.0),
            daemon: listing(100.0, 300.0),
            cycle: CycleFigures::from_samples(&samples).unwrap(),
            define_all: 1234.0,
            read_definitions: vec![410.0, 400.0, 420.0],
            load: (0.5, 1.25),
        }
    }

    #[test]
    fn the_verdict_judges_each_driver() {
        assert_eq!(
            figures().verdict().unwrap(),
            "Target: `mfv vm list` within 1.2x of `virsh list --all` (process vs process, \
             medians): test driver **met** (1.02x), private libvirtd **not met** (3.00x)"
        );
    }

    #[test]
    fn the_section_has_both_tables() {
        let options = VmBenchOptions {
            runs: 3,
            domains: 1000,
            cycles: 1,
        };
        let text = section(options, "2 cores (CPU)", "2026-11-26", &figures()).unwrap();
        assert!(text.starts_with("## VM listing and lifecycle (`cargo xtask bench vm`)\n\n"));
        assert!(
            text.contains("- Command: `cargo xtask bench vm --runs 3 --domains 1000 --cycles 1`\n")
        );
        assert!(text.contains("- Load average (1 min) at start / end: 0.50 / 1.25 "));
        assert!(
            text.contains("\n- Target: `mfv vm list` within 1.2x"),
            "{text}"
        );
        assert!(text.contains(
            "\n| `virsh list --all` (process) | 250.0 ms (248.0..252.0) | 100.0 ms (98.0..102.0) |\n"
        ));
        assert!(text.contains(
            "\n| `mfv vm list` (process) | 255.0 ms (254.0..256.0) | 300.0 ms (299.0..301.0) |\n\
             | **`mfv vm list` / `virsh list --all`** (medians) | **1.02x** | **3.00x** |\n"
        ), "{text}");
        assert!(text.contains(
            "\n| library: `Hypervisor::list()` on an open connection | 5.0 ms (4.5..5.5) | 5.0 ms (4.5..5.5) |\n"
        ));
        assert!(
            text.contains(
                "(one connection, one define each): 1.23 s. Reading their 1000 definitions"
            )
        );
        assert!(
            text.contains("it writes only when one did): 410.0 ms (400.0..420.0).\n"),
            "{text}"
        );
        assert!(text.contains(
            "\n| start (`Hypervisor::start`, QEMU launched) | 700.0 ms | 700.0 ms | 700.0 ms |\n"
        ));
        assert!(
            text.ends_with("| whole cycle | 795.0 ms | 795.0 ms | 795.0 ms |\n"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_cycle_step_is_named() {
        let samples = Samples::parse("sample define 3\nsample start 700\n");
        let error = CycleFigures::from_samples(&samples).unwrap_err();
        assert_eq!(
            error.to_string(),
            "vm_bench printed no `sample force_off` line"
        );
    }

    #[test]
    fn options_have_defaults_and_reject_zero() {
        use clap::Parser as _;

        use crate::{Benchmark, Cli, Command};
        let cli = Cli::try_parse_from(["xtask", "bench", "vm"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Vm {
                    runs: 10,
                    domains: 1000,
                    cycles: 5
                }
            }
        ));
        for flag in ["--runs", "--domains", "--cycles"] {
            let argv = ["xtask", "bench", "vm", flag, "0"];
            assert!(Cli::try_parse_from(argv).is_err(), "{flag}");
        }
    }
}
