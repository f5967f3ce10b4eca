//! Saves a configuration file to a config store and shows what the store holds.
//!
//! `cargo run -p mfv-config --example store -- DIR [FILE]` uses a directory store in DIR
//! (`mfv.toml` + `mfv.toml.prev`); `--sqlite DB [FILE]` uses an SQLite store instead. With
//! FILE, its text is validated and saved as a new generation first. Then the loaded
//! configuration (current or last-known-good, with any warning) and every generation are
//! printed. The directory is used as it is: no remounting.

use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use mfv_config::store::{ConfigStore, DirectoryStore, PlainDirectory, SqliteStore};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sqlite = args.first().is_some_and(|arg| arg == "--sqlite");
    if sqlite {
        args.remove(0);
    }
    let (location, file) = match args.as_slice() {
        [location] => (location, None),
        [location, file] => (location, Some(file)),
        _ => bail!("usage: store [--sqlite] DIR|DB [FILE]"),
    };
    let store: Box<dyn ConfigStore> = if sqlite {
        Box::new(SqliteStore::new(location, PlainDirectory))
    } else {
        Box::new(DirectoryStore::new(location, PlainDirectory))
    };

    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let saved = store.save(&text)?;
        println!(
            "saved generation {} to {} (sha256 {})",
            saved.generation, saved.location, saved.sha256
        );
    }

    match store.load()? {
        None => println!("the store is empty"),
        Some(loaded) => {
            for warning in &loaded.warnings {
                println!("warning: {warning}");
            }
            let generation = loaded
                .generation
                .map_or_else(|| "written by hand".to_owned(), |number| number.to_string());
            println!(
                "loaded the {} config from {} (generation {generation}, {} bytes)",
                loaded.origin,
                loaded.location,
                loaded.text.len()
            );
        }
    }

    println!("generations:");
    for info in store.generations()? {
        let written = info
            .written_at
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or_else(|| "?".to_owned(), |age| age.as_secs().to_string());
        let status = match &info.status {
            Ok(()) => "usable".to_owned(),
            Err(problem) => problem.to_string(),
        };
        println!(
            "  {}: generation {}, {} bytes, written at {written} (Unix time), sha256 {}: {status}",
            info.location,
            info.generation
                .map_or_else(|| "-".to_owned(), |number| number.to_string()),
            info.length,
            info.sha256
        );
    }
    Ok(())
}
