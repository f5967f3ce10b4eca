//! Prints what libblkid finds on a block device or image file, read-only:
//! `cargo run -p mfv-linux --features blkid --example signature -- /dev/sda1`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(node) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: signature DEVICE-OR-IMAGE");
        return ExitCode::from(2);
    };
    match mfv_linux::blkid::probe_signature(&node) {
        Ok(signature) => {
            println!("{signature:#?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "signature: {error}: {}",
                std::error::Error::source(&error).map_or_else(String::new, ToString::to_string)
            );
            ExitCode::FAILURE
        }
    }
}
