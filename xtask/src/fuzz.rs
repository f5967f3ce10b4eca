//! `cargo xtask fuzz`: runs each cargo-fuzz target (mfv-config, mfv-net) for a bounded time, reads the
//! executions and crashes from libFuzzer's output, and records them in BENCHMARKS.md.
//!
//! The targets need nightly features: they are built with `RUSTC_BOOTSTRAP=1` by the stable
//! toolchain, so no second toolchain is needed. cargo-fuzz is installed with
//! `cargo install cargo-fuzz --locked` when missing. Each target runs on its own corpus
//! directory (`<crate>/fuzz/corpus/<target>`); libFuzzer adds the inputs it finds there.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::bench::{record, today};
use crate::cmd;

/// The heading of this command's section in BENCHMARKS.md.
const SECTION_HEADING: &str = "## Fuzzing (`cargo xtask fuzz`)";

/// The fuzz targets, in the order they run: each with its cargo-fuzz project, relative to the
/// workspace root.
pub const TARGETS: [(&str, &str); 3] = [
    ("mfv-config/fuzz", "cmdline_parse"),
    ("mfv-config/fuzz", "config_parse"),
    ("mfv-net/fuzz", "dhcp_packet"),
];

/// What one bounded run of a target gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzRun {
    /// The target's name.
    pub target: String,
    /// Inputs executed (libFuzzer's `Done N runs`, or the last `#N` status line after a crash).
    pub executions: u64,
    /// How long libFuzzer says it ran, in seconds.
    pub seconds: u64,
    /// Crashes found (libFuzzer stops at the first one).
    pub crashes: u32,
    /// Edge coverage at the end (`cov:`), when reported.
    pub coverage: Option<u64>,
    /// Inputs in the corpus at the end (`corp:`), when reported.
    pub corpus: Option<u64>,
}

/// Runs every target for `seconds` each and records the figures; fails if a target crashed
/// (after recording, so the crash is on file).
pub fn run(workspace: &Workspace, seconds: u32) -> Result<()> {
    ensure_cargo_fuzz(workspace)?;
    let mut runs = Vec::new();
    for (project, target) in TARGETS {
        let fuzz_dir = workspace.root.join(project);
        let mut command = fuzz_command(workspace, &fuzz_dir, target, seconds);
        println!("$ {}", cmd::display(&command));
        let output = cmd::capture(command.stdin(Stdio::null()))?;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let fuzz_run = parse_output(target, &log)
            .with_context(|| format!("reading the libFuzzer output of {target}:\n{log}"))?;
        if fuzz_run.crashes == 0 && !output.status.success() {
            bail!("cargo fuzz run {target} failed ({}):\n{log}", output.status);
        }
        println!(
            "{target}: {} executions in {} s, {} crashes",
            fuzz_run.executions, fuzz_run.seconds, fuzz_run.crashes
        );
        runs.push(fuzz_run);
    }
    let section = section(seconds, &today(), &runs);
    record(workspace, SECTION_HEADING, &section)?;
    let crashed: Vec<&str> = runs
        .iter()
        .filter(|run| run.crashes > 0)
        .map(|run| run.target.as_str())
        .collect();
    if !crashed.is_empty() {
        bail!(
            "crashes found in {} (inputs in the artifacts/ directory of its fuzz project)",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// Installs cargo-fuzz unless `cargo fuzz --version` already works.
fn ensure_cargo_fuzz(workspace: &Workspace) -> Result<()> {
    let present = workspace
        .cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    cmd::run(
        workspace
            .cargo()
            .args(["install", "cargo-fuzz", "--locked"]),
    )
}

/// `RUSTC_BOOTSTRAP=1 cargo fuzz run -O TARGET corpus/TARGET -- -max_total_time=SECONDS`.
fn fuzz_command(workspace: &Workspace, fuzz_dir: &Path, target: &str, seconds: u32) -> Command {
    let mut command = workspace.cargo();
    command
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "-O", target])
        .arg(format!("corpus/{target}"))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"));
    command
}

/// Reads a run's figures from libFuzzer's output.
pub fn parse_output(target: &str, log: &str) -> Result<FuzzRun> {
    let crashes = log
        .lines()
        .filter(|line| line.contains("Test unit written to"))
        .count();
    let done = log.lines().rev().find_map(|line| {
        let rest = line.strip_prefix("Done ")?;
        let (executions, rest) = rest.split_once(" runs in ")?;
        let (seconds, _) = rest.split_once(" second")?;
        Some((executions.parse().ok()?, seconds.parse().ok()?))
    });
    let last_status = log
        .lines()
        .rev()
        .find(|line| line.starts_with('#') && line.contains("cov:"));
    let status_field = |name: &str| -> Option<u64> {
        let line = last_status?;
        let after = line.split_once(name)?.1.trim_start();
        let number: String = after.chars().take_while(char::is_ascii_digit).collect();
        number.parse().ok()
    };
    let (executions, seconds) = match done {
        Some(done) => done,
        None => {
            let executions = last_status
                .and_then(|line| line[1..].split_whitespace().next())
                .and_then(|number| number.parse().ok());
            match (executions, crashes) {
                (Some(executions), 1..) => (executions, 0),
                _ => bail!("no `Done N runs` line and no crash: the run did not finish"),
            }
        }
    };
    Ok(FuzzRun {
        target: target.to_owned(),
        executions,
        seconds,
        crashes: u32::try_from(crashes).unwrap_or(u32::MAX),
        coverage: status_field("cov:"),
        corpus: status_field("corp:"),
    })
}

/// The BENCHMARKS.md section.
fn section(seconds: u32, date: &str, runs: &[FuzzRun]) -> String {
    let optional = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut table = String::from(
        "| Target | Executions | Seconds | Executions/s | Crashes | Coverage (`cov`) | Corpus |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let rate = run
            .executions
            .checked_div(run.seconds)
            .map_or_else(|| "-".to_owned(), |rate| rate.to_string());
        table.push_str(&format!(
            "| `{}` | {} | {} | {rate} | {} | {} | {} |\n",
            run.target,
            run.executions,
            run.seconds,
            run.crashes,
            optional(run.coverage),
            optional(run.corpus)
        ));
    }
    format!(
        "{SECTION_HEADING}\n\n\
         Runs each cargo-fuzz target (`mfv-config/fuzz`: `cmdline_parse` feeds the \
         kernel command line parser and the boot options, `config_parse` the configuration \
         parser and validator, and the round trip of an accepted configuration through \
         `to_toml`; `mfv-net/fuzz`: `dhcp_packet` feeds the DHCP client's state machine in \
         every state) for a bounded time on its corpus, built with `-O` (release with debug \
         assertions) by the stable toolchain with `RUSTC_BOOTSTRAP=1`. The target is 0 crashes; \
         a crash fails the command and leaves its input in the project's `artifacts/`.\n\n\
         - Command: `cargo xtask fuzz --seconds {seconds}` (each target: `RUSTC_BOOTSTRAP=1 \
         cargo fuzz run -O TARGET corpus/TARGET -- -max_total_time={seconds}`)\n\
         - Date: {date}\n\n\
         {table}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINISHED: &str = "\
INFO: Seed: 1234
#2\tINITED cov: 812 ft: 2301 corp: 340/12Kb exec/s: 0 rss: 40Mb
#65536\tpulse  cov: 830 ft: 2400 corp: 352/13Kb lim: 4096 exec/s: 21845 rss: 60Mb
#1203411\tDONE   cov: 845 ft: 2455 corp: 360/14Kb lim: 4096 exec/s: 19728 rss: 300Mb
Done 1203411 runs in 61 second(s)
";

    const CRASHED: &str = "\
#2\tINITED cov: 812 ft: 2301 corp: 340/12Kb exec/s: 0 rss: 40Mb
#4096\tNEW    cov: 820 ft: 2310 corp: 341/12Kb lim: 4096 exec/s: 2048 rss: 41Mb
thread '<unnamed>' panicked at src/schema/reader.rs:1:1:
==77== ERROR: libFuzzer: deadly signal
artifact_prefix='artifacts/config_parse/'; Test unit written to artifacts/config_parse/crash-abc
";

    #[test]
    fn a_finished_run_gives_its_figures() {
        let run = parse_output("config_parse", FINISHED).unwrap();
        assert_eq!(
            run,
            FuzzRun {
                target: "config_parse".to_owned(),
                executions: 1_203_411,
                seconds: 61,
                crashes: 0,
                coverage: Some(845),
                corpus: Some(360),
            }
        );
    }

    #[test]
    fn a_crash_counts_and_keeps_the_executions_so_far() {
        let run = parse_output("config_parse", CRASHED).unwrap();
        assert_eq!(run.crashes, 1);
        assert_eq!(run.executions, 4096);
        assert_eq!(run.seconds, 0);
        assert_eq!(run.coverage, Some(820));
    }

    #[test]
    fn output_without_an_end_is_an_error() {
        let error = parse_output("cmdline_parse", "error: could not compile\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no `Done N runs` line and no crash: the run did not finish"
        );
    }

    #[test]
    fn the_section_has_a_row_per_target() {
        let runs = [
            parse_output("cmdline_parse", FINISHED).unwrap(),
            parse_output("config_parse", CRASHED).unwrap(),
        ];
        let text = section(60, "2026-11-26", &runs);
        assert!(text.starts_with(SECTION_HEADING), "{text}");
        assert!(
            text.contains("- Command: `cargo xtask fuzz --seconds 60`"),
            "{text}"
        );
        assert!(text.contains("- Date: 2026-11-26"), "{text}");
        assert!(
            text.contains("| `cmdline_parse` | 1203411 | 61 | 19728 | 0 | 845 | 360 |"),
            "{text}"
        );
        assert!(
            text.contains("| `config_parse` | 4096 | 0 | - | 1 | 820 | 341 |"),
            "{text}"
        );
    }
}
