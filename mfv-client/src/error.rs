//! What can go wrong talking to a host. Each error that concerns a host starts with it
//! (`vmhost1:443: ...`), so `mfv` prints `mfv: HOST: message` whatever failed.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Fingerprint;
use crate::known_hosts::KnownHostsError;

/// An error as the API answers it: `{kind, message, field}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The HTTP status (0 for a failed task, which has none of its own).
    #[serde(skip)]
    pub status: u16,
    /// A stable word a program acts on (`forbidden`, `not_found`, `invalid_request`).
    pub kind: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The request field at fault, if one is.
    #[serde(default)]
    pub field: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field: {field})")?;
        }
        Ok(())
    }
}

/// Where the fingerprint a host must present came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `--fingerprint` on the command line.
    Given,
    /// A line of the known hosts file.
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
    },
}

/// Why a call to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host's URL is not `https://HOST[:PORT]`.
    #[error("--remote {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No token was given.
    #[error(
        "{host}: no API token: pass --token or set MFV_TOKEN (an administrator makes one with \
         `mfv token create USER NAME` on the host, or POST /api/v1/tokens)"
    )]
    NoToken {
        /// The host.
        host: String,
    },
    /// The token holds characters an HTTP header cannot carry.
    #[error(
        "{host}: the API token holds characters a token never has (control characters or non-ASCII)"
    )]
    InvalidToken {
        /// The host.
        host: String,
    },
    /// No known hosts file was given and none has a default place.
    #[error(
        "no known hosts file: neither XDG_CONFIG_HOME nor HOME is set; pass --known-hosts PATH"
    )]
    NoKnownHostsPath,
    /// The known hosts file cannot be read or written.
    #[error(transparent)]
    KnownHosts(#[from] KnownHostsError),
    /// The host presented another certificate than the one pinned.
    #[error("{}", mismatch_message(host, expected, presented, source_of_pin))]
    FingerprintMismatch {
        /// The host.
        host: String,
        /// The fingerprint pinned.
        expected: Fingerprint,
        /// The fingerprint of the certificate the host presented.
        presented: Fingerprint,
        /// Where the pin came from.
        source_of_pin: PinSource,
    },
    /// No TCP connection could be made.
    #[error("{host}: cannot connect")]
    Connect {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (for another reason than the fingerprint).
    #[error("{host}: the TLS handshake failed")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed (the connection dropped, a malformed answer).
    #[error("{host}: the HTTP exchange failed")]
    Http {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The host took too long.
    #[error("{host}: no answer within {seconds} s ({what})")]
    Timeout {
        /// The host.
        host: String,
        /// What was waited for.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// The host refused the request.
    #[error("{host}: {error}")]
    Api {
        /// The host.
        host: String,
        /// The API's error.
        error: Box<ApiError>,
    },
    /// A task the request started failed.
    #[error("{host}: task {task} ({kind}) failed: {error}")]
    TaskFailed {
        /// The host.
        host: String,
        /// The task's id.
        task: String,
        /// What the task did.
        kind: String,
        /// Why it failed.
        error: Box<ApiError>,
    },
    /// The answer is not what the API answers there.
    #[error("{host}: unexpected answer to {request} (HTTP {status}): {reason}")]
    UnexpectedAnswer {
        /// The host.
        host: String,
        /// The request (`GET /api/v1/vms`).
        request: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
    /// The client's own runtime could not start.
    #[error("cannot start the client's runtime")]
    Runtime(#[source] std::io::Error),
}

impl ClientError {
    /// The API's error, when the host refused the request or a task failed.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } | ClientError::TaskFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn mismatch_message(
    host: &str,
    expected: &Fingerprint,
    presented: &Fingerprint,
    source: &PinSource,
) -> String {
    let (pinned_by, remedy) = match source {
        PinSource::Given => (
            "--fingerprint".to_owned(),
            "check the fingerprint mfv-web prints on the host's console and pass that one"
                .to_owned(),
        ),
        PinSource::KnownHosts { path, line } => (
            format!("{} line {line}", path.display()),
            format!(
                "if the host's certificate was changed on purpose, check the new fingerprint on \
                 its console, then delete line {line} of {} (or pass --fingerprint with the new \
                 one) and connect again",
                path.display()
            ),
        ),
    };
    format!(
        "{host}: the host presented a certificate with SHA-256 fingerprint {presented}, but \
         {pinned_by} pins {expected}: refusing to connect. Someone may be in between; {remedy}"
    )
}
