//! `cargo xtask bench auth`: logins and session checks per second on each mfv-auth user
//! backend, recorded in BENCHMARKS.md.
//!
//! The measuring is done by the mfv-auth example `auth_bench` (release build), which starts a
//! private slapd and mariadbd on loopback with the same fixtures as the mfv-auth integration
//! tests (`mfv_tests::slapd`, `mfv_tests::mariadb`) and prints one `name: value unit` line per figure; this
//! module runs it, reads those lines and writes the section.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::bench::{cores_and_cpu, package_versions, record, today};
use crate::{Workspace, cmd};

const AUTH_HEADING: &str = "## Auth (`cargo xtask bench auth`)";

/// The backends measured, in table order.
const BACKENDS: [&str; 3] = ["sqlite", "ldap", "mysql"];

/// Runs the benchmark, `seconds` per measurement, and records it.
pub fn auth(workspace: &Workspace, seconds: u32) -> Result<()> {
    println!("building and running the mfv-auth example auth_bench ({seconds} s per measurement)");
    let output = cmd::stdout(workspace.cargo().args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "mfv-auth",
        "--example",
        "auth_bench",
        "--",
        &seconds.to_string(),
    ]))?;
    print!("{output}");
    let figures = Figures::parse(&output);
    let section = section(seconds, &machine_description(), &today(), &figures)?;
    println!("\n{section}");
    record(workspace, AUTH_HEADING, &section)
}

/// The `name: value unit` lines of `auth_bench`, by name.
struct Figures(BTreeMap<String, String>);

impl Figures {
    fn parse(output: &str) -> Figures {
        Figures(
            output
                .lines()
                .filter_map(|line| line.split_once(": "))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        )
    }

    /// The value of `name` with its unit, e.g. `14.5 per second`.
    fn get(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("auth_bench printed no `{name}:` line"))
    }

    /// The number of `name`, without its unit.
    fn number(&self, name: &str) -> Result<&str> {
        let value = self.get(name)?;
        Ok(value.split_whitespace().next().unwrap_or(value))
    }
}

/// This machine and the servers' package versions.
fn machine_description() -> String {
    format!(
        "{}; {}",
        cores_and_cpu(),
        package_versions(&["slapd", "mariadb-server"])
    )
}

/// The BENCHMARKS.md section.
fn section(seconds: u32, machine: &str, date: &str, figures: &Figures) -> Result<String> {
    let mut text = format!(
        "{AUTH_HEADING}\n\n\
         One client, one request at a time, through `Authenticator` (what mfv-web and the `mfv` CLI \
         call), with login throttling off so that failures can repeat. The auth state (sessions, \
         tokens, audit) is SQLite (WAL) in a temp dir for every backend; the LDAP and MySQL users \
         live in a private slapd and mariadbd on 127.0.0.1 started by the benchmark (the fixtures \
         of the mfv-auth tests). **Logins**: correct password, each creating a session and an \
         audit entry; SQLite and MySQL verify an argon2id hash, LDAP searches the user with the \
         service account, binds as the user (slapd checks its {{SSHA}} hash) and reads the \
         groups. **Session checks**: `check_session` of one token (SHA-256, one SQLite lookup); \
         the user is looked up again in the backend only every 60 s (`user_recheck`, the \
         default), and the last column looks them up at every check: the backend's own cost. \
         **Wrong password / unknown user**: mean time of a refused login; equal times mean the \
         two cannot be told apart by timing.\n\n\
         - Command: `cargo xtask bench auth --seconds {seconds}` (`{seconds}` s per measurement)\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - argon2id: {}; one hash takes {}\n\n\
         | Backend | Logins/s | Session checks/s | Session checks/s, user looked up each time | Wrong password | Unknown user | Unknown / wrong |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        figures.get("argon2id parameters")?,
        figures.get("argon2id hash")?,
    );
    for backend in BACKENDS {
        let number = |measure: &str| figures.number(&format!("{backend} {measure}"));
        writeln!(
            text,
            "| {backend} | {} | {} | {} | {} ms | {} ms | {} |",
            number("logins")?,
            number("session checks")?,
            number("session checks with user lookup")?,
            number("wrong password")?,
            number("unknown user")?,
            number("unknown/wrong time ratio")?,
        )?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "argon2id parameters: m=19456 KiB, t=2, p=1
argon2id hash: 54.3 ms
sqlite logins: 14.5 per second
sqlite wrong password: 67.72 ms
sqlite unknown user: 63.12 ms
sqlite unknown/wrong time ratio: 0.932
sqlite session checks: 16223 per second
sqlite session checks with user lookup: 11608 per second
ldap logins: 238.8 per second
ldap wrong password: 2.15 ms
ldap unknown user: 2.19 ms
ldap unknown/wrong time ratio: 1.021
ldap session checks: 30046 per second
ldap session checks with user lookup: 1051 per second
mysql logins: 9.0 per second
mysql wrong password: 138.02 ms
mysql unknown user: 114.67 ms
mysql unknown/wrong time ratio: 0.831
mysql session checks: 38788 per second
mysql session checks with user lookup: 1121 per second
";

    #[test]
    fn the_section_has_a_row_per_backend() {
        let figures = Figures::parse(OUTPUT);
        let text = section(3, "2 cores (CPU)", "2026-11-26", &figures).unwrap();
        assert!(text.starts_with("## Auth (`cargo xtask bench auth`)\n\n"));
        assert!(text.contains("- Command: `cargo xtask bench auth --seconds 3`"));
        assert!(text.contains("- argon2id: m=19456 KiB, t=2, p=1; one hash takes 54.3 ms\n"));
        assert!(
            text.contains("\n| sqlite | 14.5 | 16223 | 11608 | 67.72 ms | 63.12 ms | 0.932 |\n")
        );
        assert!(text.contains("\n| ldap | 238.8 | 30046 | 1051 | 2.15 ms | 2.19 ms | 1.021 |\n"));
        assert!(text.ends_with("| mysql | 9.0 | 38788 | 1121 | 138.02 ms | 114.67 ms | 0.831 |\n"));
    }

    #[test]
    fn seconds_default_to_three_and_are_bounded() {
        use clap::Parser as _;

        use crate::{Benchmark, Cli, Command};
        let cli = Cli::try_parse_from(["xtask", "bench", "auth"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Auth { seconds: 3 }
            }
        ));
        for seconds in ["0", "61"] {
            let argv = ["xtask", "bench", "auth", "--seconds", seconds];
            assert!(Cli::try_parse_from(argv).is_err(), "{seconds}");
        }
    }

    #[test]
    fn a_missing_figure_is_named() {
        let output = OUTPUT.replace("ldap logins: 238.8 per second\n", "");
        let figures = Figures::parse(&output);
        let error = section(3, "m", "d", &figures).unwrap_err();
        assert_eq!(
            error.to_string(),
            "auth_bench printed no `ldap logins:` line"
        );
    }
}
