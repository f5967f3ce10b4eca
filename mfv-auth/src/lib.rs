//! Who may do what on the host: users, roles and permissions, password hashing, sessions,
//! API tokens, TOTP, login throttling, the audit log and the SQLite, LDAP and MySQL backends.
//!
//! `mfv-auth` owns the access-control model:
//!
//! - [`Role`] (admin, operator, viewer) and the [`Permission`]s each role has
//!   ([`Role::allows`]), the one place that decides what a role may do;
//! - [`Username`], a validated account name that is safe to put in an LDAP filter or DN
//!   and in SQL (it is still escaped and parameterized there; the charset is a second wall);
//! - [`UserBackend`], where accounts live, and [`UserAdmin`], how they are changed;
//!   [`SqliteUserBackend`] is the embedded one;
//! - [`Password`] and [`PasswordHasher`] (argon2id, m=19456 KiB, t=2, p=1 by default);
//! - [`SqliteState`], the SQLite database that always holds sessions, API tokens, TOTP
//!   secrets, recovery codes, throttle counters and the audit log, whatever the user backend;
//!   each session and token keeps its owner's [`UserRecord::account_id`], so a user deleted
//!   in the backend and created again under the same name, before anything here noticed,
//!   does not inherit them: they end at their next re-check of the owner;
//! - [`Authenticator`], which composes the two: login with throttling and TOTP, sessions,
//!   API tokens, audited user administration, and the signed-in user's own changes (password,
//!   second factor) behind a password check throttled as logins are
//!   ([`Authenticator::check_current_password`]). Time comes from a [`Clock`].
//!
//! The LDAP and MySQL backends talk to their servers over TLS with the server's certificate
//! verified; cleartext is refused to any host that is not loopback unless the configuration
//! sets `insecure` (`LdapConfig::insecure`, `MySqlConfig::insecure`).
//!
//! # What this crate never does
//!
//! It never knows HTTP, cookies, headers or status codes: callers map its answers to their
//! protocol. It never decides on its own that a check passes when a backend fails: it fails
//! closed.
//!
//! ```
//! use mfv_auth::{Permission, Role, Username};
//!
//! assert!(Role::Operator.allows(Permission::ControlVms));
//! assert!(!Role::Viewer.allows(Permission::ControlVms));
//! let name: Username = "alice".parse()?;
//! assert_eq!(name.as_str(), "alice");
//! # Ok::<(), mfv_auth::UsernameError>(())
//! ```
#![warn(missing_docs)]

mod activity;
mod audit;
mod authenticator;
#[cfg(test)]
mod authenticator_tests;
mod backend;
mod clock;
mod console;
pub mod ldap;
#[cfg(test)]
mod lockout_tests;
pub mod mysql;
mod password;
mod reauth;
#[cfg(test)]
mod reauth_tests;
mod role;
mod second_factor;
mod secret;
mod session;
mod sqlite;
mod sqlite_users;
mod throttle;
mod tls;
mod token;
mod totp;
mod username;

pub use activity::UserActivity;
pub use audit::{AuditEntry, AuditEvent, AuditFilter, AuditOutcome};
pub use authenticator::{
    Actor, AuthError, AuthPolicy, Authenticator, CheckError, DEFAULT_MIN_PASSWORD_CHARS, LoginError,
};
pub use backend::{
    AdminError, BackendError, BoxFuture, CheckReport, CheckStep, DisplayNameError,
    MAX_DISPLAY_NAME_CHARS, ServerCheckError, ServerStep, StepOutcome, UserAdmin, UserBackend,
    UserCount, UserRecord, check_display_name,
};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use ldap::{LdapBackend, LdapConfig};
pub use mysql::{MySqlBackend, MySqlConfig};
pub use password::{
    Argon2Params, HashError, MAX_PASSWORD_BYTES, Password, PasswordError, PasswordHasher,
};
pub use role::{Permission, Role, UnknownNameError};
pub use second_factor::{TotpEnrolment, TotpStatus};
pub use secret::{RandomError, Secret};
pub use session::{Session, SessionInfo};
pub use sqlite::{SCHEMA_VERSION, SqliteState, StoreError};
pub use sqlite_users::SqliteUserBackend;
pub use throttle::ThrottleRule;
pub use token::{API_TOKEN_PREFIX, ApiTokenInfo, MAX_TOKEN_NAME_CHARS, NewApiToken};
pub use totp::{RECOVERY_CODE_COUNT, TOTP_DIGITS, TOTP_STEP_SECONDS, constant_time_eq, totp_code};
pub use username::{RESERVED_USERNAMES, Username, UsernameError};
