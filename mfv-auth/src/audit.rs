//! The audit log: one row per auth event (logins, lockouts, sessions, tokens, user changes,
//! TOTP), with time, user, acting user, source address, outcome and detail.

use std::fmt;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::clock::Timestamp;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// A login attempt (outcome says how it ended).
    Login,
    /// Too many failures: a user name or source address was locked.
    Lockout,
    /// A session ended by logout.
    Logout,
    /// A session was revoked by a user or an admin, or by a user change.
    SessionRevoked,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked.
    TokenRevoked,
    /// A user was added.
    UserAdded,
    /// A user was deleted.
    UserDeleted,
    /// A password was changed.
    PasswordChanged,
    /// A role was changed.
    RoleChanged,
    /// A user was disabled.
    UserDisabled,
    /// A user was enabled.
    UserEnabled,
    /// A display name was changed.
    DisplayNameChanged,
    /// TOTP enrolment started (secret issued).
    TotpEnrolled,
    /// TOTP enrolment confirmed with a first code: the second factor is now required.
    TotpConfirmed,
    /// TOTP was removed.
    TotpDisabled,
    /// A recovery code was used in place of a TOTP code.
    RecoveryCodeUsed,
    /// A shell on the host's console: opened for an administrator (ok), refused to a user
    /// who is not one, or closed (the detail says how it ended).
    ConsoleShell,
    /// A change to the host, its VMs, storage, network or configuration asked for through
    /// the API: the detail names the operation, its target and how it was answered.
    HostChange,
}

impl AuditEvent {
    /// Every event, in declaration order.
    pub const ALL: [AuditEvent; 19] = [
        AuditEvent::Login,
        AuditEvent::Lockout,
        AuditEvent::Logout,
        AuditEvent::SessionRevoked,
        AuditEvent::TokenCreated,
        AuditEvent::TokenRevoked,
        AuditEvent::UserAdded,
        AuditEvent::UserDeleted,
        AuditEvent::PasswordChanged,
        AuditEvent::RoleChanged,
        AuditEvent::UserDisabled,
        AuditEvent::UserEnabled,
        AuditEvent::DisplayNameChanged,
        AuditEvent::TotpEnrolled,
        AuditEvent::TotpConfirmed,
        AuditEvent::TotpDisabled,
        AuditEvent::RecoveryCodeUsed,
        AuditEvent::ConsoleShell,
        AuditEvent::HostChange,
    ];

    /// The name stored and shown: `login`, `lockout`, `token_created`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Login => "login",
            AuditEvent::Lockout => "lockout",
            AuditEvent::Logout => "logout",
            AuditEvent::SessionRevoked => "session_revoked",
            AuditEvent::TokenCreated => "token_created",
            AuditEvent::TokenRevoked => "token_revoked",
            AuditEvent::UserAdded => "user_added",
            AuditEvent::UserDeleted => "user_deleted",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::RoleChanged => "role_changed",
            AuditEvent::UserDisabled => "user_disabled",
            AuditEvent::UserEnabled => "user_enabled",
            AuditEvent::DisplayNameChanged => "display_name_changed",
            AuditEvent::TotpEnrolled => "totp_enrolled",
            AuditEvent::TotpConfirmed => "totp_confirmed",
            AuditEvent::TotpDisabled => "totp_disabled",
            AuditEvent::RecoveryCodeUsed => "recovery_code_used",
            AuditEvent::ConsoleShell => "console_shell",
            AuditEvent::HostChange => "host_change",
        }
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It worked.
    Ok,
    /// It was refused (wrong credentials, locked, not allowed).
    Refused,
    /// It could not be decided (a backend was down); access was denied.
    Error,
}

impl AuditOutcome {
    /// `ok`, `refused` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Error => "error",
        }
    }
}

/// One event about to be written.
#[derive(Debug, Clone)]
pub(crate) struct AuditRecord<'a> {
    pub event: AuditEvent,
    pub outcome: AuditOutcome,
    /// The user the event is about.
    pub username: Option<&'a str>,
    /// Who did it, when not the user themself (an admin).
    pub actor: Option<&'a str>,
    /// The client address.
    pub source: Option<String>,
    pub detail: String,
}

/// One row of the audit log, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// What happened (an [`AuditEvent`] name).
    pub event: String,
    /// The user it is about.
    pub username: Option<String>,
    /// Who did it, if not the user.
    pub actor: Option<String>,
    /// The client address.
    pub source: Option<String>,
    /// `ok`, `refused` or `error`.
    pub outcome: String,
    /// Details, e.g. why a login was refused.
    pub detail: String,
}

/// `2026-11-26T04:53:00Z login refused user=alice source=192.0.2.1: wrong password`.
impl fmt::Display for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.at, self.event, self.outcome)?;
        for (key, value) in [
            ("user", &self.username),
            ("actor", &self.actor),
            ("source", &self.source),
        ] {
            if let Some(value) = value {
                write!(f, " {key}={value}")?;
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Writes one event.
pub(crate) fn record(
    connection: &Connection,
    at: Timestamp,
    entry: &AuditRecord<'_>,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO audit (at, event, username, actor, source, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at.0,
            entry.event.as_str(),
            entry.username,
            entry.actor,
            entry.source,
            entry.outcome.as_str(),
            entry.detail
        ],
    )?;
    Ok(())
}

/// Which audit entries a search returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this user or done by them (`username` or `actor`).
    pub user: Option<String>,
    /// Only entries of this event.
    pub event: Option<AuditEvent>,
    /// Only entries written at this time or later.
    pub since: Option<Timestamp>,
    /// Only entries written at this time or earlier.
    pub until: Option<Timestamp>,
}

/// The newest `limit` entries with an id below `before` (all, if `None`) that `filter` lets
/// through, newest first.
pub(crate) fn list(
    connection: &Connection,
    limit: u32,
    before: Option<i64>,
    filter: &AuditFilter,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, at, event, username, actor, source, outcome, detail FROM audit
         WHERE id < ?1 AND (?3 IS NULL OR username = ?3 OR actor = ?3)
           AND (?4 IS NULL OR event = ?4)
           AND (?5 IS NULL OR at >= ?5) AND (?6 IS NULL OR at <= ?6)
         ORDER BY id DESC LIMIT ?2",
    )?;
    let query = params![
        before.unwrap_or(i64::MAX),
        limit,
        filter.user,
        filter.event.map(AuditEvent::as_str),
        filter.since.map(|at| at.0),
        filter.until.map(|at| at.0)
    ];
    let rows = statement.query_map(query, |row| {
        Ok(AuditEntry {
            id: row.get(0)?,
            at: Timestamp(row.get(1)?),
            event: row.get(2)?,
            username: row.get(3)?,
            actor: row.get(4)?,
            source: row.get(5)?,
            outcome: row.get(6)?,
            detail: row.get(7)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_print_on_one_line() {
        let entry = AuditEntry {
            id: 1,
            at: Timestamp(1_795_668_780),
            event: "login".into(),
            username: Some("alice".into()),
            actor: None,
            source: Some("192.0.2.1".into()),
            outcome: "refused".into(),
            detail: "invalid credentials".into(),
        };
        assert_eq!(
            entry.to_string(),
            "2026-11-26T04:53:00Z login refused user=alice source=192.0.2.1: invalid credentials"
        );
    }
}
