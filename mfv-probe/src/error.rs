//! Errors of the probe and the issues it records while it goes on.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Something the probe could not read or understand, with the sysfs path it was about.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A directory that must exist for the listing could not be read.
    #[error("cannot list {path}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// An attribute file or link could not be read.
    #[error("cannot read {path}")]
    ReadAttribute {
        /// The attribute file or link.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// An attribute was read but does not hold what the kernel writes there.
    #[error("{path}: unexpected value {value:?}, expected {expected}")]
    Malformed {
        /// The attribute file.
        path: PathBuf,
        /// What it held, trimmed.
        value: String,
        /// What was expected, in words.
        expected: &'static str,
    },
}

/// A problem met during a listing that did not stop it: one entry or attribute is missing
/// from the result and this says why. Serializes as `{"path": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeIssue {
    /// The sysfs path the problem is about.
    pub path: PathBuf,
    /// The problem with its cause, e.g. `cannot read /sys/class/net/eth0/speed: Is a directory (os error 21)`.
    pub message: String,
}

impl ProbeIssue {
    /// Records `error` (with its cause) as an issue.
    pub(crate) fn from_error(error: &ProbeError) -> Self {
        let (path, cause) = match error {
            ProbeError::ReadDir { path, source } | ProbeError::ReadAttribute { path, source } => {
                (path.clone(), Some(source.to_string()))
            }
            ProbeError::Malformed { path, .. } => (path.clone(), None),
        };
        let message = match cause {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        };
        ProbeIssue { path, message }
    }
}

impl std::fmt::Display for ProbeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
