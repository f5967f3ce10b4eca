//! The provenance report on the console (`Display`) and in JSON (serde helpers).

use std::fmt;
use std::time::Duration;

use serde::Serializer;
use serde::ser::SerializeSeq;

use super::{
    Absence, CandidateReport, ConfigSource, Discovery, DiscoveryReport, FileProblem, Verdict,
};
use crate::cmdline::ConfigLocator;
use crate::schema::{CONFIG_FILE_NAME, ConfigErrors};
use crate::store::PREVIOUS_FILE_NAME;

impl fmt::Display for DiscoveryReport {
    /// The header line, one line per candidate (indented by two spaces; the errors of an
    /// invalid `mfv.toml` follow their candidate, indented by four), then the scan issues and,
    /// after more than one pass, how long discovery waited (and why, when storage was
    /// settling). No trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last_known_good =
            self.candidates
                .last()
                .and_then(|candidate| match candidate.verdict {
                    Verdict::TakenLastKnownGood { generation, .. } => Some(generation),
                    _ => None,
                });
        match (&self.outcome, &self.requested) {
            (Discovery::Found { source, .. }, _) => match last_known_good {
                Some(generation) => write!(
                    f,
                    "config: using {PREVIOUS_FILE_NAME} ({}) from {source}",
                    LastKnownGood(generation)
                )?,
                None => write!(f, "config: using {CONFIG_FILE_NAME} from {source}")?,
            },
            (Discovery::Invalid { source, errors }, _) => write!(
                f,
                "config: {CONFIG_FILE_NAME} on {source} is invalid ({})",
                count_errors(errors)
            )?,
            (Discovery::NotFound, Some(ConfigLocator::Disabled)) => {
                f.write_str("config: discovery skipped (mfv.config=none)")?;
            }
            (Discovery::NotFound, _) => f.write_str("config: no configuration found")?,
        }
        for candidate in &self.candidates {
            write!(f, "\n  {candidate}")?;
        }
        for issue in &self.scan_issues {
            write!(f, "\n  scan: {}", issue.message)?;
        }
        if self.passes > 1 {
            write!(
                f,
                "\n  waited {:.1} s for devices ({} passes)",
                self.elapsed.as_secs_f64(),
                self.passes
            )?;
            match &self.settling {
                Some(settling) if settling.timed_out => {
                    write!(f, ": gave up, storage still settling: {}", settling.reason)?
                }
                Some(settling) => write!(f, ": storage was settling: {}", settling.reason)?,
                None => {}
            }
        }
        Ok(())
    }
}

/// `last-known-good, generation 6`, or `last-known-good` for a file without a header.
struct LastKnownGood(Option<u64>);

impl fmt::Display for LastKnownGood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("last-known-good")?;
        if let Some(generation) = self.0 {
            write!(f, ", generation {generation}")?;
        }
        Ok(())
    }
}

impl FileProblem {
    /// The problem as a phrase about the file `name`: `no mfv.toml`, `mfv.toml is a symbolic
    /// link`, `mfv.toml too large (N bytes, limit L)`, `mfv.toml corrupt: ...`, `mfv.toml
    /// invalid (2 errors)`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            FileProblem::Missing => format!("no {name}"),
            FileProblem::Unreadable { error } => error.clone(),
            FileProblem::TooLarge { size, limit } => {
                format!("{name} too large ({size} bytes, limit {limit})")
            }
            FileProblem::Corrupt { error } => format!("{name} {error}"),
            FileProblem::Invalid { errors } => format!("{name} invalid ({})", count_errors(errors)),
        }
    }

    /// The validation errors, when the file is invalid.
    fn errors(&self) -> Option<&ConfigErrors> {
        match self {
            FileProblem::Invalid { errors } => Some(errors),
            _ => None,
        }
    }
}

/// Writes each error of `errors` on its own line, indented by four, after `name:`.
fn write_errors(f: &mut fmt::Formatter<'_>, name: &str, errors: &ConfigErrors) -> fmt::Result {
    for error in errors.errors() {
        write!(f, "\n    {name}:{error}")?;
    }
    Ok(())
}

impl fmt::Display for ConfigSource {
    /// `/dev/vdb1 (ext4, LABEL=mfv-config)`: the device, its file system type and, when the
    /// device was found by a search, the locator.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.device.display(), self.fs_type)?;
        if !matches!(self.locator, ConfigLocator::Device(_)) {
            write!(f, ", {}", self.locator)?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for CandidateReport {
    /// `LOCATOR [DEVICE] [(FS)]: VERDICT`, e.g. `/dev/sda1: absent (no such device)` or
    /// `LABEL=mfv-config /dev/vdb1 (ext4): skipped: no mfv.toml`. The device is left out when
    /// the locator is a device path (it is that path) or a search found none; the errors of an invalid
    /// file follow on their own lines, then `; ` and an unmount failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.locator)?;
        if let Some(device) = &self.device
            && !matches!(self.locator, ConfigLocator::Device(_))
        {
            write!(f, " {}", device.display())?;
        }
        if let Some(fs_type) = &self.fs_type {
            write!(f, " ({fs_type})")?;
        }
        write!(f, ": {}", self.verdict)?;
        if let Some(error) = &self.unmount_error {
            write!(f, "; {error}")?;
        }
        match &self.verdict {
            Verdict::Invalid { errors } => write_errors(f, CONFIG_FILE_NAME, errors)?,
            Verdict::TakenLastKnownGood { skipped, .. } => {
                if let Some(errors) = skipped.errors() {
                    write_errors(f, CONFIG_FILE_NAME, errors)?;
                }
            }
            Verdict::Unusable { current, previous } => {
                if let Some(errors) = current.errors() {
                    write_errors(f, CONFIG_FILE_NAME, errors)?;
                }
                if let Some(errors) = previous.errors() {
                    write_errors(f, PREVIOUS_FILE_NAME, errors)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Verdict {
    /// The verdict alone: `taken`, `absent (no such device)`, `skipped: no mfv.toml`,
    /// `invalid (2 errors)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Taken => f.write_str("taken"),
            Verdict::Absent { reason } => write!(f, "absent ({reason})"),
            Verdict::NoFileSystem => f.write_str("skipped: no file system"),
            Verdict::NotProbeable { error } => write!(f, "skipped: cannot probe: {error}"),
            Verdict::NotMountable { error } => write!(f, "skipped: not mountable: {error}"),
            Verdict::NoConfigFile => write!(
                f,
                "skipped: {}",
                FileProblem::Missing.describe(CONFIG_FILE_NAME)
            ),
            Verdict::Unreadable { error } => write!(f, "skipped: {error}"),
            Verdict::TooLarge { size, limit } => {
                let problem = FileProblem::TooLarge {
                    size: *size,
                    limit: *limit,
                };
                write!(f, "skipped: {}", problem.describe(CONFIG_FILE_NAME))
            }
            Verdict::Invalid { errors } => write!(f, "invalid ({})", count_errors(errors)),
            Verdict::Corrupt { error } => write!(f, "skipped: {CONFIG_FILE_NAME} {error}"),
            Verdict::TakenLastKnownGood {
                generation,
                skipped,
            } => write!(
                f,
                "taken: {PREVIOUS_FILE_NAME} ({}); skipped: {}",
                LastKnownGood(*generation),
                skipped.describe(CONFIG_FILE_NAME)
            ),
            Verdict::Unusable { current, previous } => write!(
                f,
                "skipped: {}; {}",
                current.describe(CONFIG_FILE_NAME),
                previous.describe(PREVIOUS_FILE_NAME)
            ),
            Verdict::AlreadyTried => f.write_str("skipped: already tried above"),
        }
    }
}

impl fmt::Display for Absence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Absence::NoDeviceNode => "no such device",
            Absence::NoMedium => "no medium",
            Absence::NoMatchingVolume => "no volume matches",
        })
    }
}

impl fmt::Display for Discovery {
    /// One line: `found on SOURCE`, `invalid on SOURCE (N errors)` or `not found`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discovery::Found { source, .. } => write!(f, "found on {source}"),
            Discovery::Invalid { source, errors } => {
                write!(f, "invalid on {source} ({})", count_errors(errors))
            }
            Discovery::NotFound => f.write_str("not found"),
        }
    }
}

/// `1 error`, `3 errors`.
fn count_errors(errors: &ConfigErrors) -> String {
    match errors.len() {
        1 => "1 error".to_owned(),
        count => format!("{count} errors"),
    }
}

/// Serializes a locator as its `mfv.config=` spelling.
pub(super) fn locator<S: Serializer>(
    locator: &ConfigLocator,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(locator)
}

/// Serializes an optional locator as its `mfv.config=` spelling or `null`.
pub(super) fn optional_locator<S: Serializer>(
    locator: &Option<ConfigLocator>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match locator {
        Some(locator) => serializer.collect_str(locator),
        None => serializer.serialize_none(),
    }
}

/// Serializes a duration as whole milliseconds.
pub(super) fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// One error of a `ConfigErrors` in JSON.
#[derive(serde::Serialize)]
struct ErrorEntry<'a> {
    line: Option<usize>,
    column: Option<usize>,
    path: &'a str,
    message: &'a str,
}

/// Serializes validation errors as a list of `{line, column, path, message}`.
pub(super) fn config_errors<S: Serializer>(
    errors: &ConfigErrors,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut list = serializer.serialize_seq(Some(errors.len()))?;
    for error in errors.errors() {
        list.serialize_element(&ErrorEntry {
            line: error.position.map(|position| position.line),
            column: error.position.map(|position| position.column),
            path: &error.path,
            message: &error.message,
        })?;
    }
    list.end()
}
