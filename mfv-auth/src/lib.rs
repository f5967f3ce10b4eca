//! Who may do what on the host: users, roles and permissions, and (later) password hashing,
//! sessions, API tokens and the SQLite, LDAP and MySQL backends.
//!
//! `mfv-auth` owns the access-control model. Today it provides:
//!
//! - [`Role`] (admin, operator, viewer) and the [`Permission`]s each role has
//!   ([`Role::allows`]), the one place that decides what a role may do;
//! - [`Username`], a validated account name that is safe to put in an LDAP filter or DN
//!   and in SQL (it is still escaped and parameterized there; the charset is a second wall).
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

mod role;
mod username;

pub use role::{Permission, Role, UnknownNameError};
pub use username::{RESERVED_USERNAMES, Username, UsernameError};
