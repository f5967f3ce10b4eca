//! `cargo xtask bench dhcp`: time from DHCP client start to address configured for the
//! mfv-net client, busybox udhcpc and ISC dhclient, recorded in BENCHMARKS.md.
//!
//! The measuring is done by the mfv-net example `dhcp_bench` (release build): two throwaway
//! network namespaces joined by a veth pair, one dnsmasq, each client started as a fresh
//! process, median of N runs after a warm-up. It prints one row per client,
//! `  NAME  MEDIAN ms  (MIN..MAX)`; this module runs it, reads those rows and writes the
//! section.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};

use crate::bench::{cores_and_cpu, package_versions, record, today};
use crate::{Workspace, cmd};

const DHCP_HEADING: &str = "## DHCP client (`cargo xtask bench dhcp`)";

/// The clients measured, as `dhcp_bench` names them, in table order; ours first.
const CLIENTS: [&str; 3] = ["mfv-net", "busybox udhcpc", "dhclient"];

/// Runs the benchmark with `runs` timed runs per client, and records it.
pub fn dhcp(workspace: &Workspace, runs: u32) -> Result<()> {
    if !crate::deps::is_root() {
        bail!("cargo xtask bench dhcp creates network namespaces: run it as root");
    }
    println!("building and running the mfv-net example dhcp_bench ({runs} runs per client)");
    let output = cmd::stdout(workspace.cargo().args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "mfv-net",
        "--example",
        "dhcp_bench",
        "--",
        "--runs",
        &runs.to_string(),
    ]))?;
    print!("{output}");
    let rows = parse_rows(&output)?;
    let section = section(runs, &machine_description(), &today(), &rows);
    println!("\n{section}");
    record(workspace, DHCP_HEADING, &section)
}

/// One client's figures in milliseconds.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    median: f64,
    min: f64,
    max: f64,
}

/// The rows of [`CLIENTS`] in `dhcp_bench` output, in that order; a missing one is an error.
fn parse_rows(output: &str) -> Result<Vec<Row>> {
    let parsed: Vec<Row> = output.lines().filter_map(parse_row).collect();
    CLIENTS
        .iter()
        .map(|client| {
            parsed
                .iter()
                .find(|row| row.name == *client)
                .cloned()
                .with_context(|| {
                    format!("dhcp_bench printed no figures for {client} (is it installed?)")
                })
        })
        .collect()
}

/// `  NAME  MEDIAN ms  (MIN..MAX)`; `None` for any other line.
fn parse_row(line: &str) -> Option<Row> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [name @ .., median, "ms", range] = words.as_slice() else {
        return None;
    };
    if name.is_empty() {
        return None;
    }
    let (min, max) = range
        .strip_prefix('(')?
        .strip_suffix(')')?
        .split_once("..")?;
    Some(Row {
        name: name.join(" "),
        median: median.parse().ok()?,
        min: min.parse().ok()?,
        max: max.parse().ok()?,
    })
}

/// This machine and the reference clients' and server's package versions.
fn machine_description() -> String {
    format!(
        "{}; {}",
        cores_and_cpu(),
        package_versions(&["dnsmasq-base", "busybox-static", "isc-dhcp-client"])
    )
}

/// The BENCHMARKS.md section; `rows` are in [`CLIENTS`] order, ours first.
fn section(runs: u32, machine: &str, date: &str, rows: &[Row]) -> String {
    let ours = &rows[0];
    let others = &rows[1..];
    let met = others.iter().all(|other| ours.median < other.median);
    let mut text = format!(
        "{DHCP_HEADING}\n\n\
         Time from starting a DHCP client to its address being configured on the interface: \
         two throwaway network namespaces joined by a veth pair, one dnsmasq (`--no-ping`) as \
         the server, each client a fresh process started with `ip netns exec` and timed from \
         spawn to exit, a full DISCOVER/OFFER/REQUEST/ACK each time (no lease file, the address \
         flushed between runs), one warm-up run not counted. mfv-net runs its client in \
         `--oneshot` mode (exits once bound, lease left configured); `udhcpc -f -q -n` exits \
         once bound; `dhclient -1` exits when it forks into the background after binding. \
         udhcpc and dhclient configure the address and default route with `ip` from a \
         minimal script (as their stock scripts do). The measuring is the mfv-net example \
         `dhcp_bench` (`cargo run --release -p mfv-net --example dhcp_bench -- --runs {runs}`).\n\n\
         - Command: `cargo xtask bench dhcp --runs {runs}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Runs: {runs} per client (median, min, max)\n\
         - Target: mfv-net faster than both udhcpc and dhclient: **{}**\n\n\
         | Client | Median | Min | Max |\n\
         |---|---:|---:|---:|\n",
        if met { "met" } else { "not met" }
    );
    for row in rows {
        let _ = writeln!(
            text,
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            row.name, row.median, row.min, row.max
        );
    }
    let ratios: Vec<String> = others
        .iter()
        .map(|other| {
            format!(
                "{:.1}x faster than {}",
                other.median / ours.median,
                other.name
            )
        })
        .collect();
    let _ = writeln!(text, "\nmfv-net (medians): {}.", ratios.join(", "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "dhcp: start to address configured, median of 10 runs (min..max)
  mfv-net               4.0 ms  (3.6..4.1)
  busybox udhcpc       90.4 ms  (74.0..117.9)
  dhclient             20.4 ms  (14.3..30.1)
";

    #[test]
    fn rows_are_parsed_in_table_order() {
        let rows = parse_rows(OUTPUT).unwrap();
        assert_eq!(
            rows[1],
            Row {
                name: "busybox udhcpc".into(),
                median: 90.4,
                min: 74.0,
                max: 117.9
            }
        );
        let names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, CLIENTS);
    }

    #[test]
    fn other_lines_are_not_rows() {
        for line in [
            "dhcp: start to address configured, median of 10 runs (min..max)",
            "dhclient: not installed (apt-get install isc-dhcp-client), skipped",
            "  4.0 ms  (3.6..4.1)",
            "  mfv-net  x ms  (3.6..4.1)",
            "  mfv-net  4.0 ms  3.6..4.1",
            "",
        ] {
            assert_eq!(parse_row(line), None, "{line}");
        }
    }

    #[test]
    fn a_missing_client_is_named() {
        let output = OUTPUT.replace("  dhclient             20.4 ms  (14.3..30.1)\n", "");
        let error = parse_rows(&output).unwrap_err();
        assert_eq!(
            error.to_string(),
            "dhcp_bench printed no figures for dhclient (is it installed?)"
        );
    }

    #[test]
    fn the_section_has_the_table_and_the_target() {
        let rows = parse_rows(OUTPUT).unwrap();
        let text = section(10, "2 cores (CPU)", "2026-11-26", &rows);
        assert!(text.starts_with("## DHCP client (`cargo xtask bench dhcp`)\n\n"));
        assert!(text.contains("- Command: `cargo xtask bench dhcp --runs 10`\n"));
        assert!(text.contains("- Date: 2026-11-26\n"));
        assert!(text.contains("- Target: mfv-net faster than both udhcpc and dhclient: **met**\n"));
        assert!(text.contains("\n| mfv-net | 4.0 ms | 3.6 ms | 4.1 ms |\n"));
        assert!(text.contains("\n| busybox udhcpc | 90.4 ms | 74.0 ms | 117.9 ms |\n"));
        assert!(text.contains("\n| dhclient | 20.4 ms | 14.3 ms | 30.1 ms |\n"));
        assert!(text.ends_with(
            "\nmfv-net (medians): 22.6x faster than busybox udhcpc, 5.1x faster than dhclient.\n"
        ));
    }

    #[test]
    fn a_slower_client_misses_the_target() {
        let output = OUTPUT.replace("4.0 ms  (3.6..4.1)", "30.0 ms  (29.0..31.0)");
        let rows = parse_rows(&output).unwrap();
        let text = section(10, "m", "d", &rows);
        assert!(text.contains("dhclient: **not met**\n"), "{text}");
    }

    #[test]
    fn runs_default_to_ten_and_reject_zero() {
        use clap::Parser as _;

        use crate::{Benchmark, Cli, Command};
        let cli = Cli::try_parse_from(["xtask", "bench", "dhcp"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Dhcp { runs: 10 }
            }
        ));
        assert!(Cli::try_parse_from(["xtask", "bench", "dhcp", "--runs", "0"]).is_err());
    }
}
