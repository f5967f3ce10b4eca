//! Validates a Minifed-Virt configuration file and prints every error with its position.
//!
//! `cargo run -p mfv-config --example validate -- FILE` prints `FILE: valid` and exits 0, or
//! prints one `FILE:LINE:COL: FIELD: message` line per error and exits 1; exit 2 means the
//! file could not be read or no file was given.

use std::path::PathBuf;
use std::process::ExitCode;

use mfv_config::schema::{LoadError, load_config_file};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: validate FILE");
        return ExitCode::from(2);
    };
    match load_config_file(&path) {
        Ok((config, notes)) => {
            for note in &notes {
                println!(
                    "{}: migrated from version {} to {}: {}: {}",
                    path.display(),
                    note.from_version,
                    note.to_version,
                    note.path,
                    note.message
                );
            }
            println!(
                "{}: valid (version {}, host {})",
                path.display(),
                config.version,
                config.host.hostname
            );
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid { path, errors }) => {
            for error in errors.errors() {
                match error.position {
                    Some(_) => println!("{}:{error}", path.display()),
                    None => println!("{}: {error}", path.display()),
                }
            }
            ExitCode::FAILURE
        }
        Err(error @ LoadError::Read { .. }) => {
            let cause = std::error::Error::source(&error)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            eprintln!("error: {error}{cause}");
            ExitCode::from(2)
        }
    }
}
