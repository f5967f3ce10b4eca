//! Reads a VM spec from the JSON file given as argument, validates it and prints every problem:
//! `cargo run -p mfv-vm --example validate_spec -- mfv-vm/examples/web-1.json`.
//! Exit status 0 when valid, 1 when invalid, 2 when the file cannot be read or parsed.

use std::process::ExitCode;

use mfv_vm::{SpecLimits, VmSpec};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: validate_spec SPEC.json");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {path}: {error}");
            return ExitCode::from(2);
        }
    };
    let spec: VmSpec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("error: {path}: {error}");
            return ExitCode::from(2);
        }
    };
    match spec.validate(&SpecLimits::default()) {
        Ok(()) => {
            println!(
                "{path}: VM {:?} is valid ({} vCPUs, {} MiB, {} disks, {} NICs)",
                spec.name,
                spec.vcpus,
                spec.memory_mib,
                spec.disks.len(),
                spec.nics.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            println!("{path}: {} problems", errors.errors().len());
            for error in errors.errors() {
                println!("  {error}");
            }
            ExitCode::FAILURE
        }
    }
}
