//! Prints the network interfaces of this machine (or of a sysfs tree given as argument) as a
//! table: `cargo run -p mfv-probe --example nics [SYSFS_ROOT]`.

use std::process::ExitCode;

use mfv_probe::{DEFAULT_SYSFS_ROOT, Nic, list_nics_at};

fn main() -> ExitCode {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_SYSFS_ROOT.to_owned());
    let nics = match list_nics_at(&root) {
        Ok(nics) => nics,
        Err(error) => {
            let cause = std::error::Error::source(&error)
                .map(|cause| format!(": {cause}"))
                .unwrap_or_default();
            eprintln!("error: {error}{cause}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{:<16} {:<17} {:<12} {:<7} {:<7} {:<14} {:>6} {:<8} DEVICE",
        "NAME", "MAC", "DRIVER", "BUS", "CARRIER", "STATE", "MBIT/S", "KIND"
    );
    for nic in &nics {
        println!("{}", row(nic));
    }
    for nic in &nics {
        for issue in &nic.issues {
            eprintln!("warning: {}: {issue}", nic.name);
        }
    }
    ExitCode::SUCCESS
}

fn row(nic: &Nic) -> String {
    format!(
        "{:<16} {:<17} {:<12} {:<7} {:<7} {:<14} {:>6} {:<8} {}",
        nic.name,
        nic.mac.as_deref().unwrap_or("-"),
        nic.driver.as_deref().unwrap_or("-"),
        nic.bus.as_deref().unwrap_or("-"),
        if nic.carrier { "yes" } else { "no" },
        nic.operstate.map_or("-", |state| state.as_str()),
        nic.speed_mbps
            .map_or("-".to_owned(), |speed| speed.to_string()),
        if nic.is_virtual {
            "virtual"
        } else {
            "physical"
        },
        nic.device_path
            .as_ref()
            .map_or("-".to_owned(), |path| path.display().to_string()),
    )
}
