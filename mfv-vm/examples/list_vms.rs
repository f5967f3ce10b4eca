//! Lists the VMs of a libvirt daemon with their state, as a table or JSON.
//!
//! `cargo run -p mfv-vm --example list_vms -- [URI] [--json]` (default URI `qemu:///system`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let json = std::env::args().any(|arg| arg == "--json");
    let uri = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_else(|| "qemu:///system".into());
    let listed = mfv_vm::Hypervisor::connect(&uri).and_then(|hypervisor| hypervisor.list());
    let vms = match listed {
        Ok(vms) => vms,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&vms) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{:<32} {:<14} {:<9} UUID", "NAME", "STATE", "AUTOSTART");
        for vm in vms {
            println!(
                "{:<32} {:<14} {:<9} {}",
                vm.name, vm.state, vm.autostart, vm.uuid
            );
        }
    }
    ExitCode::SUCCESS
}
