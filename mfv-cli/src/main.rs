//! `mfv`: the Minifed-Virt command on the host shell.
//!
//! A thin binary: it parses arguments with clap, calls the library crates and prints their
//! results. Exit codes: 0 success, 1 the operation failed, 2 wrong usage (clap's own).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mfv_config::cmdline::{BootOptions, KernelCmdline};

#[derive(Debug, Parser)]
#[command(name = "mfv", version, about = "Manage a Minifed-Virt host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the boot options (`mfv.*`) read from the kernel command line, and what was ignored.
    Cmdline {
        /// Read this file instead of the running kernel's command line.
        #[arg(long, default_value = "/proc/cmdline")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mfv: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Cmdline { file } => {
            let cmdline = KernelCmdline::read_from(&file)
                .with_context(|| format!("mfv cmdline --file {}", file.display()))?;
            print!("{}", render_boot_options(&cmdline.boot_options()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One `key  value` line per boot option (`-` when unset), then the warnings.
fn render_boot_options(options: &BootOptions) -> String {
    fn or_unset(value: Option<String>) -> String {
        value.unwrap_or_else(|| "-".to_owned())
    }
    let seconds = |duration: Option<std::time::Duration>| {
        or_unset(duration.map(|d| format!("{} s", d.as_secs_f64())))
    };
    let rows = [
        (
            "mfv.config",
            or_unset(options.config.as_ref().map(ToString::to_string)),
        ),
        ("mfv.config_wait", seconds(options.config_wait)),
        (
            "mfv.net",
            or_unset(options.net.as_ref().map(ToString::to_string)),
        ),
        ("mfv.setup_timeout", seconds(options.setup_timeout)),
        ("mfv.halt", or_unset(options.halt.map(|h| h.to_string()))),
        (
            "mfv.debug",
            if options.debug { "on" } else { "off" }.to_owned(),
        ),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("{key:<18} {value}\n"));
    }
    for warning in &options.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_option_and_the_warnings() {
        let options = KernelCmdline::parse(
            "quiet mfv.config=LABEL=mfv-config mfv.net=eth0:192.0.2.10/24,gw=192.0.2.1 \
             mfv.halt=poweroff mfv.confg=x mfv.config_wait=2.5",
        )
        .boot_options();
        assert_eq!(
            render_boot_options(&options),
            "mfv.config         LABEL=mfv-config\n\
             mfv.config_wait    2.5 s\n\
             mfv.net            eth0:192.0.2.10/24,gw=192.0.2.1\n\
             mfv.setup_timeout  -\n\
             mfv.halt           poweroff\n\
             mfv.debug          off\n\
             warning: unknown key mfv.confg ignored (did you mean mfv.config?)\n"
        );
    }

    #[test]
    fn an_unreadable_command_line_names_the_file() {
        let error = run(Cli {
            command: Command::Cmdline {
                file: PathBuf::from("/nonexistent/cmdline"),
            },
        })
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("/nonexistent/cmdline"), "{message}");
    }
}
