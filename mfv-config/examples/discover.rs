//! Runs config discovery on this machine and prints the provenance report (needs root to
//! mount; mounts only read-only, in a temp dir).
//!
//! `cargo run -p mfv-config --example discover` uses `mfv.config=` and `mfv.config_wait=` from
//! /proc/cmdline; `cargo run -p mfv-config --example discover -- 'mfv.config=LABEL=x'` reads
//! them from the argument instead; `--json` (first) prints the report as JSON.

use std::path::Path;
use std::process::ExitCode;

use mfv_config::cmdline::KernelCmdline;
use mfv_config::discovery::{Discovery, DiscoveryParams, discover};
use mfv_config::mount::SysMounter;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.first().is_some_and(|arg| arg == "--json");
    if json {
        args.remove(0);
    }
    let cmdline = match args.first() {
        Some(text) => KernelCmdline::parse(text),
        None => match KernelCmdline::read_from(Path::new("/proc/cmdline")) {
            Ok(cmdline) => cmdline,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let run_dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("error: cannot create a temp dir: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut params = DiscoveryParams::from_boot_options(&cmdline.boot_options());
    params.run_dir = run_dir.path().to_owned();
    let report = discover(&params, &SysMounter);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{report}");
    }
    match report.outcome {
        Discovery::Found { .. } => ExitCode::SUCCESS,
        Discovery::Invalid { .. } | Discovery::NotFound => ExitCode::from(2),
    }
}
