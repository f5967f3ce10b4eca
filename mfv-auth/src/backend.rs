//! The user backend interface: where accounts live (SQLite, LDAP or MySQL) and how they are
//! checked, changed and diagnosed. Sessions, API tokens, TOTP and the audit log are not here:
//! they always live in the SQLite state store.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::password::Password;
use crate::{Role, Username};

/// A future a backend returns; boxed so that [`UserBackend`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// One account as a backend knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The login name.
    pub username: Username,
    /// A human name; any Unicode except control characters, at most
    /// [`MAX_DISPLAY_NAME_CHARS`] characters.
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// A disabled user cannot log in and their sessions and tokens stop working.
    pub disabled: bool,
    /// The backend's own identity of the account, which a user deleted and created again
    /// under the same name does not keep: the entry's `entryUUID` (OpenLDAP, 389 DS) or
    /// `objectGUID` (Active Directory, as hex) in LDAP, the `id` column of `mfv_users` in
    /// MySQL, the random `account_id` of the `users` table in SQLite. Sessions and API tokens
    /// store it and end when the name comes to stand for another account. `None` when the
    /// backend reports none (a directory without either attribute); ignored by
    /// [`UserAdmin::add_user`], which lets the backend assign it. Not serialized: it binds
    /// this host's state to the account and is no part of what a user is shown as.
    #[serde(skip)]
    pub account_id: Option<String>,
}

impl UserRecord {
    /// Whether this is the account a session or API token was made for, given the
    /// [`account_id`](UserRecord::account_id) stored with it. A stored `None` (made before
    /// accounts had identities, or by a backend that reports none) is taken as this account;
    /// a stored identity this record does not carry is another account.
    pub(crate) fn is_account(&self, stored: Option<&str>) -> bool {
        stored.is_none_or(|stored| self.account_id.as_deref() == Some(stored))
    }
}

/// Why a display name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    /// Longer than [`MAX_DISPLAY_NAME_CHARS`].
    #[error("display name has {len} characters, at most {MAX_DISPLAY_NAME_CHARS} allowed")]
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// Holds a control character (newline, tab, NUL, ...), which would forge lines in logs.
    #[error("display name {input:?} contains a control character")]
    ControlCharacter {
        /// The name as given.
        input: String,
    },
}

/// Checks a display name: any Unicode text without control characters, at most
/// [`MAX_DISPLAY_NAME_CHARS`] characters (empty is allowed: the user name is shown instead).
pub fn check_display_name(input: &str) -> Result<(), DisplayNameError> {
    let len = input.chars().count();
    if len > MAX_DISPLAY_NAME_CHARS {
        return Err(DisplayNameError::TooLong { len });
    }
    if input.chars().any(char::is_control) {
        return Err(DisplayNameError::ControlCharacter {
            input: input.to_owned(),
        });
    }
    Ok(())
}

/// A backend could not answer. Authentication fails closed on every variant: no login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The server is down, unreachable or timed out.
    #[error(
        "{backend} user backend is unavailable: {reason} (check that the server runs and is reachable)"
    )]
    Unavailable {
        /// `sqlite`, `ldap` or `mysql`.
        backend: &'static str,
        /// What failed, e.g. the connection error.
        reason: String,
    },
    /// The configuration is wrong: bad URL, service account refused, missing table or base DN.
    #[error(
        "{backend} user backend is misconfigured: {reason} (fix the auth section of the config)"
    )]
    Misconfigured {
        /// `sqlite`, `ldap` or `mysql`.
        backend: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A query or search failed for another reason.
    #[error("{backend} user backend query failed: {reason}")]
    Query {
        /// `sqlite`, `ldap` or `mysql`.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// The backend holds data this crate refuses: an invalid user name, an unknown role, a
    /// password hash it cannot parse.
    #[error("{backend} user backend holds invalid data: {reason} (correct the stored entry)")]
    InvalidData {
        /// `sqlite`, `ldap` or `mysql`.
        backend: &'static str,
        /// What is invalid, naming the entry.
        reason: String,
    },
}

/// The step of a read-only check of a user backend's server where it stopped
/// ([`LdapBackend::count_users`](crate::LdapBackend::count_users),
/// [`MySqlBackend::count_users`](crate::MySqlBackend::count_users)), so that a caller can
/// tell the operator which setting to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStep {
    /// Reaching the server: no answer, connection refused, name not resolved.
    Connect,
    /// TLS: the server offers none, or its certificate does not verify.
    Tls,
    /// Logging in: the LDAP service account's bind, the MySQL account and its grants.
    Login,
    /// Reading the users: the LDAP user base, the MySQL database and its `mfv_users` table.
    Users,
}

impl fmt::Display for ServerStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Tls => "TLS",
            Self::Login => "logging in",
            Self::Users => "reading the users",
        })
    }
}

/// A read-only check of a user backend's server failed at `step`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} failed")]
pub struct ServerCheckError {
    /// Where it stopped.
    pub step: ServerStep,
    /// What the backend said.
    #[source]
    pub error: BackendError,
}

impl ServerCheckError {
    pub(crate) fn new(step: ServerStep, error: BackendError) -> Self {
        ServerCheckError { step, error }
    }
}

/// How many users a read-only check of a user backend's server found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCount {
    /// The users counted.
    pub users: u64,
    /// Whether the server stopped the listing at its size limit, so there are more.
    pub limited: bool,
}

/// Where accounts live. Object safe: the authenticator holds an `Arc<dyn UserBackend>`.
pub trait UserBackend: Send + Sync {
    /// `sqlite`, `ldap` or `mysql`.
    fn name(&self) -> &'static str;

    /// Checks a password. `Ok(Some)` when it is correct and the user is enabled; `Ok(None)`
    /// when the user is unknown, the password wrong or the user disabled (indistinguishable,
    /// and in about the same time: an unknown user still costs one password verification);
    /// `Err` when the backend cannot answer.
    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>>;

    /// Looks a user up without a password (disabled users are returned, with `disabled` set).
    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>>;

    /// Every user, sorted by name.
    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>>;

    /// Checks the backend end to end for one user, step by step (`mfv auth test USER`).
    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport>;

    /// The administration interface, for backends whose users this host manages (SQLite,
    /// MySQL). `None` for read-only backends (LDAP: users are managed in the directory).
    fn admin(&self) -> Option<&dyn UserAdmin> {
        None
    }
}

/// Changes to accounts, for backends this host manages.
pub trait UserAdmin: Send + Sync {
    /// Adds a user with a password. Fails with [`AdminError::UserExists`] if the name is taken.
    fn add_user<'a>(
        &'a self,
        user: &'a UserRecord,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>>;

    /// Deletes a user.
    fn delete_user<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, Result<(), AdminError>>;

    /// Replaces a user's password.
    fn set_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>>;

    /// Changes a user's role.
    fn set_role<'a>(
        &'a self,
        user: &'a Username,
        role: Role,
    ) -> BoxFuture<'a, Result<(), AdminError>>;

    /// Disables (`true`) or enables (`false`) a user.
    fn set_disabled<'a>(
        &'a self,
        user: &'a Username,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), AdminError>>;

    /// Changes a user's display name.
    fn set_display_name<'a>(
        &'a self,
        user: &'a Username,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<(), AdminError>>;
}

/// Why a change to an account failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The backend could not answer.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A user with this name exists already.
    #[error("user {user} already exists")]
    UserExists {
        /// The name.
        user: Username,
    },
    /// No user has this name.
    #[error("no user {user}")]
    NoSuchUser {
        /// The name.
        user: Username,
    },
    /// The display name is refused.
    #[error(transparent)]
    DisplayName(#[from] DisplayNameError),
    /// The backend's users are managed elsewhere (LDAP: in the directory).
    #[error(
        "the {backend} user backend is read-only here: manage its users in the {backend} server"
    )]
    ReadOnly {
        /// `ldap`.
        backend: &'static str,
    },
    /// Hashing the password failed.
    #[error(transparent)]
    Hash(#[from] crate::password::HashError),
    /// The new password is shorter than the policy's minimum
    /// ([`AuthPolicy::min_password_chars`](crate::AuthPolicy::min_password_chars)).
    #[error(
        "password has {chars} character{}, at least {min} required",
        if *.chars == 1 { "" } else { "s" }
    )]
    PasswordTooShort {
        /// Its length in characters.
        chars: usize,
        /// The minimum.
        min: usize,
    },
}

/// The result of one step of a backend check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum StepOutcome {
    /// The step worked; what it found.
    Passed(String),
    /// The step failed; why, and what the operator can do.
    Failed(String),
    /// The step did not run (an earlier one failed, or it does not apply); why.
    Skipped(String),
}

/// One step of a backend check, e.g. `connect`, `search`, `bind`, `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStep {
    /// The step's name: `open`, `schema`, `connect`, `search`, `bind`, `group`, `user`.
    pub step: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: StepOutcome,
}

/// What `mfv auth test USER` prints: every step of a backend check in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// `sqlite`, `ldap` or `mysql`.
    pub backend: &'static str,
    /// The user the check was for.
    pub user: Username,
    /// The steps, in the order they ran.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// An empty report for `user` on `backend`.
    pub fn new(backend: &'static str, user: Username) -> Self {
        CheckReport {
            backend,
            user,
            steps: Vec::new(),
        }
    }

    /// Appends a step.
    pub fn push(&mut self, step: &'static str, outcome: StepOutcome) {
        self.steps.push(CheckStep { step, outcome });
    }

    /// Whether no step failed (and at least one ran).
    pub fn passed(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|step| !matches!(step.outcome, StepOutcome::Failed(_)))
    }
}

/// One line per step: `connect: ok: ...`, `bind: FAILED: ...`, `group: skipped: ...`.
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} user backend, user {}:", self.backend, self.user)?;
        for step in &self.steps {
            let (label, detail) = match &step.outcome {
                StepOutcome::Passed(detail) => ("ok", detail),
                StepOutcome::Failed(detail) => ("FAILED", detail),
                StepOutcome::Skipped(detail) => ("skipped", detail),
            };
            writeln!(f, "  {}: {label}: {detail}", step.step)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_take_unicode_but_no_control_characters() {
        for name in ["", "Jörg Müller", "山田太郎", "Zoë 🚀", &"é".repeat(128)] {
            check_display_name(name).unwrap();
        }
        assert_eq!(
            check_display_name(&"é".repeat(129))
                .unwrap_err()
                .to_string(),
            "display name has 129 characters, at most 128 allowed"
        );
        for name in ["a\nb", "tab\there", "nul\0"] {
            assert!(matches!(
                check_display_name(name),
                Err(DisplayNameError::ControlCharacter { .. })
            ));
        }
    }

    #[test]
    fn check_report_prints_each_step_and_fails_on_any_failure() {
        let mut report = CheckReport::new("ldap", "alice".parse().unwrap());
        assert!(!report.passed(), "an empty report has not passed");
        report.push(
            "connect",
            StepOutcome::Passed("ldap://127.0.0.1:389".into()),
        );
        assert!(report.passed());
        report.push("bind", StepOutcome::Failed("invalid credentials".into()));
        report.push("group", StepOutcome::Skipped("bind failed".into()));
        assert!(!report.passed());
        assert_eq!(
            report.to_string(),
            "ldap user backend, user alice:\n  connect: ok: ldap://127.0.0.1:389\n  bind: FAILED: invalid credentials\n  group: skipped: bind failed\n"
        );
    }

    #[test]
    fn backend_errors_tell_the_operator_what_to_do() {
        let error = BackendError::Unavailable {
            backend: "mysql",
            reason: "connection refused".into(),
        };
        assert_eq!(
            error.to_string(),
            "mysql user backend is unavailable: connection refused (check that the server runs and is reachable)"
        );
        let admin: AdminError = error.into();
        assert!(admin.to_string().starts_with("mysql user backend"));
        assert_eq!(
            AdminError::ReadOnly { backend: "ldap" }.to_string(),
            "the ldap user backend is read-only here: manage its users in the ldap server"
        );
    }
}
