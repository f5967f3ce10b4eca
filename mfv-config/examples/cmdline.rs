//! Prints the Minifed-Virt boot options and warnings found on a kernel command line.
//!
//! `cargo run -p mfv-config --example cmdline` reads /proc/cmdline;
//! `cargo run -p mfv-config --example cmdline -- 'mfv.halt=poweroff mfv.confg=x'` parses the
//! argument instead.

use std::path::Path;
use std::process::ExitCode;

use mfv_config::cmdline::KernelCmdline;

fn main() -> ExitCode {
    let cmdline = match std::env::args().nth(1) {
        Some(text) => KernelCmdline::parse(&text),
        None => match KernelCmdline::read_from(Path::new("/proc/cmdline")) {
            Ok(cmdline) => cmdline,
            Err(error) => {
                eprintln!("error: {error}: {}", error_source(&error));
                return ExitCode::FAILURE;
            }
        },
    };
    println!("parameters:");
    for param in cmdline.params() {
        println!("  {param}");
    }
    if !cmdline.init_args().is_empty() {
        println!("init arguments: {:?}", cmdline.init_args());
    }
    let options = cmdline.boot_options();
    println!("boot options:");
    println!("  config:        {:?}", options.config);
    println!("  config_wait:   {:?}", options.config_wait);
    println!("  net:           {:?}", options.net);
    println!("  setup_timeout: {:?}", options.setup_timeout);
    println!("  halt:          {:?}", options.halt);
    println!("  debug:         {}", options.debug);
    println!("warnings: {}", options.warnings.len());
    for warning in &options.warnings {
        println!("  {warning}");
    }
    ExitCode::SUCCESS
}

fn error_source(error: &dyn std::error::Error) -> String {
    error.source().map(ToString::to_string).unwrap_or_default()
}
