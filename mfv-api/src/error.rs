//! The error a server sends instead of a reply: a stable kind a program can act on, a message
//! for people, and the request field it is about.
//!
//! Kinds are part of the protocol: their snake_case names never change, and a client that
//! meets a kind a newer server added reads it as [`ErrorKind::Unknown`] instead of failing to
//! read the reply.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ConfigIssue;

/// What went wrong, in a word a program can act on. Serializes as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or a value in it is out of range.
    InvalidRequest,
    /// The caller may not do this.
    NotPermitted,
    /// What the request names does not exist (a service, an apply id, a stored configuration).
    NotFound,
    /// The request contradicts the host's current state (e.g. confirming a network change
    /// that is already settled).
    Conflict,
    /// A configuration save was based on a generation that is no longer the current one:
    /// someone else saved in between.
    StaleGeneration,
    /// The configuration text is invalid; the problems are in [`ApiError::config_errors`].
    InvalidConfig,
    /// The host is doing something that excludes this request; try again later.
    Busy,
    /// The client's protocol version is not the server's.
    UnsupportedProtocol,
    /// The server failed; the message says how.
    Internal,
    /// What the request needs is not available on this host (e.g. no config store).
    Unavailable,
    /// A kind this client does not know, sent by a newer server.
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// The kind's name on the wire, e.g. `stale_generation`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotPermitted => "not_permitted",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::StaleGeneration => "stale_generation",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Busy => "busy",
            ErrorKind::UnsupportedProtocol => "unsupported_protocol",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply: `{"kind": "not_found", "message": "no service named x", "field": "name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ApiError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// For people: a sentence fragment without a trailing period.
    pub message: String,
    /// The request field the error is about (`confirm`, `limit`, ...), if it is about one.
    pub field: Option<String>,
    /// With [`ErrorKind::InvalidConfig`]: every problem in the configuration text. Left out
    /// of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_errors: Vec<ConfigIssue>,
}

impl ApiError {
    /// An error of `kind` with `message`, about no field in particular.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            config_errors: Vec::new(),
        }
    }

    /// The same error, about the request field `field`.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An [`ErrorKind::InvalidConfig`] error carrying every problem found in the text.
    pub fn invalid_config(message: impl Into<String>, errors: Vec<ConfigIssue>) -> Self {
        Self {
            config_errors: errors,
            ..Self::new(ErrorKind::InvalidConfig, message)
        }
    }
}

impl fmt::Display for ApiError {
    /// `KIND: [FIELD: ]MESSAGE`, e.g. `invalid_request: limit: at most 1000 lines`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
