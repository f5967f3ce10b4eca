//! Prints the hardware inventory of this machine as tables, or as JSON with `--json`:
//! `cargo run -p mfv-probe --example inventory [--json] [SYSFS_ROOT PROC_ROOT DEV_ROOT]`.

use std::path::PathBuf;
use std::process::ExitCode;

use mfv_probe::{SystemRoots, inventory_at};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.first().is_some_and(|arg| arg == "--json");
    if json {
        args.remove(0);
    }
    let roots = match args.as_slice() {
        [] => SystemRoots::default(),
        [sysfs, proc, dev] => SystemRoots {
            sysfs: PathBuf::from(sysfs),
            proc: PathBuf::from(proc),
            dev: PathBuf::from(dev),
        },
        _ => {
            eprintln!("usage: inventory [--json] [SYSFS_ROOT PROC_ROOT DEV_ROOT]");
            return ExitCode::from(2);
        }
    };
    let inventory = inventory_at(&roots);
    if json {
        match serde_json::to_string_pretty(&inventory) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot write the inventory as JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{inventory}");
        println!();
        for nic in &inventory.nics {
            println!("nic {}", nic.summary());
        }
        for disk in &inventory.block_devices {
            println!("disk {}", disk.summary());
        }
    }
    ExitCode::SUCCESS
}
