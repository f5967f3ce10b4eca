//! Prints every network interface of this machine with its operational state, and whether its
//! name is one the kernel would accept: `cargo run -p mfv-linux --example operstate`.

use mfv_linux::{OperState, check_interface_name};

fn main() -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir("/sys/class/net")?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let state = std::fs::read_to_string(entry.path().join("operstate"))
            .ok()
            .and_then(|text| OperState::from_sysfs(&text))
            .map_or_else(|| "?".to_owned(), |state| state.to_string());
        let valid = check_interface_name(&name)
            .map_or_else(|error| error.to_string(), |()| "valid name".to_owned());
        println!("{name:<16} {state:<15} {valid}");
    }
    Ok(())
}
