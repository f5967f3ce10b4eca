//! The configuration schema (`mfv.toml`, `version = 1`), its validation and version handling.
//!
//! [`parse_config`] reads the text and checks it completely: it returns either a [`Config`]
//! or every problem found, each with line, column and field path ([`ConfigErrors`], shown one
//! per line as `LINE:COL: FIELD: message`). [`Config::to_toml`] writes a configuration back;
//! `parse_config(&config.to_toml()) == Ok(config)` for every valid configuration.
//! [`Config::validate`] runs the same value checks on a configuration built in code.
//!
//! ```
//! use mfv_config::schema::parse_config;
//!
//! let config = parse_config("version = 1\n[host]\nhostname = \"vmhost1\"\n").unwrap();
//! assert_eq!(config.host.time_zone, "UTC");
//! assert_eq!(config.web.port, 443);
//!
//! let errors = parse_config("version = 1\n[host]\nhostnme = \"vmhost1\"\n").unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "2:1: host.hostname: missing required field\n\
//!      3:1: host.hostnme: unknown field \"hostnme\"; did you mean \"hostname\"?"
//! );
//! ```
//!
//! # Versions and migration
//! Every file carries `version`. A file without it, or with a version this release does not
//! know, is refused with a clear error; a version above [`CURRENT_VERSION`] is reported as
//! written by a newer release. [`migrate`] is the entry point for files of any known version:
//! it brings an older file up to [`CURRENT_VERSION`] and says what it changed
//! ([`MigrationNote`]). Version 1 is the first version, so today it only accepts version 1.
//!
//! How version 2 will be added: the version 1 reader stays as it is; a step function turns a
//! version 1 TOML tree into a version 2 tree (renaming or moving keys, filling new required
//! fields) and returns one note per change; [`migrate`] runs the steps from the file's version
//! up to the current one, then validates the result as the current version. Errors found
//! before the steps point into the original text; the store writes the migrated
//! configuration back on the next save, never during discovery.

mod error;
mod reader;
mod types;
mod validate;

use std::io::Read;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use error::{ConfigError, ConfigErrors, Position};
pub use types::*;

use reader::{Reader, Span, VersionField};

/// The name of the configuration file at the root of a config volume.
pub const CONFIG_FILE_NAME: &str = "mfv.toml";

/// The schema version this release reads and writes.
pub const CURRENT_VERSION: u32 = 1;

/// The largest configuration file accepted, in bytes (1 MiB). A real configuration is a few
/// kilobytes; the limit keeps a wrong file (a disk image, a log) from being read into memory.
pub const MAX_CONFIG_SIZE: usize = 1024 * 1024;

/// Reads and validates a configuration of the current version, returning every problem found.
pub fn parse_config(text: &str) -> Result<Config, ConfigErrors> {
    read_document(text)
}

/// [`parse_config`] for raw file contents: also refuses binary data (NUL bytes) and text that
/// is not UTF-8, with the position of the first offending byte.
pub fn parse_config_bytes(bytes: &[u8]) -> Result<Config, ConfigErrors> {
    if let Some(error) = check_size(bytes.len()) {
        return Err(single(error));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(utf8_error) => {
            let (offset, message) = match bytes.iter().position(|byte| *byte == 0) {
                Some(nul) => (nul, binary_message()),
                None => {
                    let offset = utf8_error.valid_up_to();
                    let message = format!(
                        "the file is not UTF-8 text (byte 0x{:02x} at offset {offset})",
                        bytes[offset]
                    );
                    (offset, message)
                }
            };
            let valid = String::from_utf8_lossy(&bytes[..offset]);
            return Err(single(ConfigError {
                position: Some(Position::at_offset(&valid, offset)),
                path: String::new(),
                message,
            }));
        }
    };
    parse_config(text)
}

/// A change [`migrate`] made to bring a file up to the current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationNote {
    /// The version the step started from.
    pub from_version: u32,
    /// The version the step produced.
    pub to_version: u32,
    /// The field the change is about, in the new version's terms.
    pub path: String,
    /// What was changed, for the operator.
    pub message: String,
}

/// Reads a configuration of any version this release knows, migrating it to
/// [`CURRENT_VERSION`], and returns it with a note for every change made.
///
/// Version 1 is the first schema version, so there is nothing to migrate yet and the notes
/// are empty; see the module documentation for how later versions are added.
pub fn migrate(text: &str) -> Result<(Config, Vec<MigrationNote>), ConfigErrors> {
    read_document(text).map(|config| (config, Vec::new()))
}

/// Reading a configuration file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{} is not a valid configuration ({} error(s))", path.display(), errors.len())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        #[source]
        errors: ConfigErrors,
    },
}

/// Reads `path` (at most [`MAX_CONFIG_SIZE`] bytes are read) and validates it with
/// [`migrate`], so older versions are accepted.
pub fn load_config_file(path: &Path) -> Result<(Config, Vec<MigrationNote>), LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // One byte more than the limit tells a file at the limit from a larger one.
    let limit = MAX_CONFIG_SIZE as u64 + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let invalid = |errors| LoadError::Invalid {
        path: path.to_owned(),
        errors,
    };
    if bytes.len() > MAX_CONFIG_SIZE {
        let size = std::fs::metadata(path)
            .map(|metadata| metadata.len())
            .unwrap_or(bytes.len() as u64);
        return Err(invalid(single(too_large(size))));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => migrate(text).map_err(invalid),
        Err(_) => parse_config_bytes(&bytes)
            .map(|config| (config, Vec::new()))
            .map_err(invalid),
    }
}

impl Config {
    /// The configuration as `mfv.toml` text.
    pub fn to_toml(&self) -> String {
        match toml::to_string(self) {
            Ok(text) => text,
            // Every field is a string, integer, boolean, enum, list or table of those, which
            // the TOML serializer always accepts: this arm is never taken.
            Err(error) => unreachable!("a Config always serializes to TOML: {error}"),
        }
    }

    /// Runs every value check on a configuration built in code (e.g. from a form). The
    /// errors carry field paths but no positions.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        if self.version != CURRENT_VERSION {
            errors.push(ConfigError {
                position: None,
                path: "version".to_owned(),
                message: format!(
                    "version is {}; this release writes version {CURRENT_VERSION}",
                    self.version
                ),
            });
        }
        errors.extend(validate::check(self).into_iter().map(|issue| ConfigError {
            position: None,
            path: issue.path,
            message: issue.message,
        }));
        ConfigErrors::new(errors).map_or(Ok(()), Err)
    }
}

fn single(error: ConfigError) -> ConfigErrors {
    ConfigErrors::from(error)
}

fn too_large(size: u64) -> ConfigError {
    ConfigError {
        position: None,
        path: String::new(),
        message: format!(
            "the file is {size} bytes; a configuration file may be at most {MAX_CONFIG_SIZE} bytes (1 MiB)"
        ),
    }
}

fn check_size(size: usize) -> Option<ConfigError> {
    (size > MAX_CONFIG_SIZE).then(|| too_large(size as u64))
}

fn binary_message() -> String {
    "the file contains a NUL byte: it is binary data, not TOML text".to_owned()
}

/// The whole reading pipeline: size, binary data, TOML syntax, version, fields, values.
/// Reads a `[network]` section on its own, as a client sends it to change the running host's
/// network (header included, nothing else beside it: no `version`, no other section), with
/// the same reading and value checks as the section of a whole configuration. Positions are
/// in `text`.
pub fn parse_network_section(text: &str) -> Result<NetworkConfig, ConfigErrors> {
    let root = read_toml(
        text,
        "the text is empty; a network section starts with `[network]`",
    )?;
    let mut reader = Reader::default();
    let network = reader.network_section(&root);
    match finish(text, reader, validate::check_network_section(&network)) {
        Some(errors) => Err(errors),
        None => Ok(network),
    }
}

/// The TOML tree of `text`, or the one error that makes it unreadable (too large, binary,
/// empty: `empty_message`, or every syntax error).
fn read_toml<'i>(text: &'i str, empty_message: &str) -> Result<DeTable<'i>, ConfigErrors> {
    if let Some(error) = check_size(text.len()) {
        return Err(single(error));
    }
    if let Some(offset) = text.find('\0') {
        return Err(single(ConfigError {
            position: Some(Position::at_offset(text, offset)),
            path: String::new(),
            message: binary_message(),
        }));
    }
    if text.trim().is_empty() {
        return Err(single(ConfigError {
            position: Some(Position { line: 1, column: 1 }),
            path: String::new(),
            message: empty_message.to_owned(),
        }));
    }
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    let syntax_errors = syntax_errors
        .iter()
        .map(|error| ConfigError {
            position: Some(Position::at_offset(
                text,
                error.span().map_or(0, |span| span.start),
            )),
            path: String::new(),
            message: format!("TOML syntax: {}", error.message().trim_end()),
        })
        .collect();
    if let Some(errors) = ConfigErrors::new(syntax_errors) {
        // The tree after a syntax error is a guess: report the syntax alone.
        return Err(errors);
    }
    Ok(root.into_inner())
}

fn read_document(text: &str) -> Result<Config, ConfigErrors> {
    let root = read_toml(
        text,
        &format!("the file is empty; a configuration starts with `version = {CURRENT_VERSION}`"),
    )?;
    let mut reader = Reader::default();
    let version_error = |message: String| ConfigError {
        position: Some(Position::at_offset(
            text,
            root.get("version").map_or(0, |value| value.span().start),
        )),
        path: "version".to_owned(),
        message,
    };
    match reader.version(&root) {
        VersionField::Number(CURRENT_VERSION) => {}
        VersionField::Number(version) if version > CURRENT_VERSION => {
            return Err(single(version_error(format!(
                "version {version} was written by a newer release of Minifed-Virt; this release reads version {CURRENT_VERSION}"
            ))));
        }
        VersionField::Number(version) => {
            return Err(single(version_error(format!(
                "unknown version {version}; this release reads version {CURRENT_VERSION}"
            ))));
        }
        VersionField::Missing => {
            reader.errors.push((
                0..0,
                "version".to_owned(),
                format!(
                    "missing `version = {CURRENT_VERSION}` (the first line of a configuration)"
                ),
            ));
        }
        VersionField::Unusable => {}
    }
    // With a missing or unusable version the rest is still checked as the current version,
    // so one run shows every problem.
    let config = reader.config(&root, CURRENT_VERSION);
    let issues = validate::check(&config);
    match finish(text, reader, issues) {
        Some(errors) => Err(errors),
        None => Ok(config),
    }
}

/// Turns the reader's errors and the value issues into positioned errors, leaving out what
/// follows from an error already reported; `None` when nothing is wrong.
fn finish(text: &str, reader: Reader, issues: Vec<validate::Issue>) -> Option<ConfigErrors> {
    let under = |path: &str, parent: &str, or_equal: bool| {
        if path.len() == parent.len() {
            return or_equal && path == parent;
        }
        path.starts_with(parent) && matches!(path.as_bytes().get(parent.len()), Some(b'.' | b'['))
    };
    let reported_paths: Vec<&str> = reader
        .errors
        .iter()
        .map(|(_, path, _)| path.as_str())
        .collect();
    let position_of = |path: &str| -> Span {
        let mut current = path;
        loop {
            if let Some(span) = reader.spans.get(current) {
                return span.clone();
            }
            match current.rfind(['.', '[']) {
                Some(cut) => current = &current[..cut],
                None => return 0..0,
            }
        }
    };
    let mut errors = Vec::new();
    for (span, path, message) in &reader.errors {
        if reported_paths
            .iter()
            .any(|parent| under(path, parent, false))
        {
            continue;
        }
        errors.push(ConfigError {
            position: Some(Position::at_offset(text, span.start)),
            path: path.clone(),
            message: message.clone(),
        });
    }
    for issue in issues {
        let quiet = reported_paths
            .iter()
            .copied()
            .chain(reader.unchecked.iter().map(String::as_str))
            .any(|parent| under(&issue.path, parent, true));
        if quiet {
            continue;
        }
        let span = position_of(issue.anchor.as_deref().unwrap_or(&issue.path));
        errors.push(ConfigError {
            position: Some(Position::at_offset(text, span.start)),
            path: issue.path,
            message: issue.message,
        });
    }
    ConfigErrors::new(errors)
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = 1 + word.chars().count() / 3;
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance in characters, ASCII case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;
