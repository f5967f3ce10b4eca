//! What the [`Authority`](super::Authority) answers and takes about accounts: users, API
//! tokens, sessions and the audit log, as the API shows them, and how mfv-auth's refusals
//! become API errors.
//!
//! Why types of our own rather than mfv-auth's: these are the API's JSON (stable whatever
//! mfv-auth keeps beside them, such as an account's identity in its backend), and the host
//! daemon's authority will carry them over its socket.

use mfv_auth::{AdminError, AuditEvent, AuthError, Role};
use schemars::JsonSchema;
use serde::Serialize;
use warp::http::StatusCode;

use super::ApiError;

/// A user, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UserView {
    /// The user name.
    pub username: String,
    /// The name shown for people (may be empty).
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// Whether the user is disabled (cannot log in; their sessions and tokens are refused).
    pub disabled: bool,
    /// Whether logins need a TOTP code (a second factor whose enrolment was confirmed).
    pub totp_enabled: bool,
    /// The last successful login (RFC 3339, UTC), or `null` if the user never logged in.
    pub last_login: Option<String>,
}

impl UserView {
    /// `record` with what the state store knows of the user's `activity`.
    pub fn new(record: mfv_auth::UserRecord, activity: mfv_auth::UserActivity) -> UserView {
        UserView {
            username: record.username.as_str().to_owned(),
            display_name: record.display_name,
            role: record.role,
            disabled: record.disabled,
            totp_enabled: activity.totp_enabled,
            last_login: activity.last_login.map(|at| at.to_string()),
        }
    }
}

/// The rules for passwords and tokens that forms show before they are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AuthPolicyView {
    /// The fewest characters a new password may have (a new user, a reset, one's own
    /// change); logins are not held to it.
    pub min_password_chars: usize,
    /// The most days an API token may work.
    pub api_token_max_days: u64,
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The user name, as given (checked by the authority: field `username`).
    pub username: String,
    /// The password (field `password`).
    pub password: mfv_api::Secret,
    /// The role.
    pub role: Role,
    /// The name shown for people (field `display_name`).
    pub display_name: String,
}

/// Changes to a user; each `None` leaves that part as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// A new role; sessions and tokens get it at their next request.
    pub role: Option<Role>,
    /// Disable (ending the user's sessions) or enable.
    pub disabled: Option<bool>,
    /// A new display name.
    pub display_name: Option<String>,
    /// A new password (ends the user's sessions).
    pub password: Option<mfv_api::Secret>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TokenView {
    /// The id (for revoking it).
    pub id: i64,
    /// Whose token it is.
    pub owner: String,
    /// Its name, unique per owner.
    pub name: String,
    /// The role it was given.
    pub role: Role,
    /// What it may do now: the lower of its role and its owner's.
    pub effective_role: Role,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
    /// When it was last used (Unix seconds), if ever.
    pub last_used_at: Option<i64>,
}

impl From<mfv_auth::ApiTokenInfo> for TokenView {
    fn from(info: mfv_auth::ApiTokenInfo) -> TokenView {
        TokenView {
            id: info.id,
            owner: info.owner.as_str().to_owned(),
            name: info.name,
            role: info.role,
            effective_role: info.effective_role,
            created_at: info.created_at.0,
            expires_at: info.expires_at.0,
            last_used_at: info.last_used_at.map(|at| at.0),
        }
    }
}

/// An API token to make.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Whose token it is (field `owner`).
    pub owner: String,
    /// Its name (field `name`).
    pub name: String,
    /// Its role, at most the owner's (field `role`).
    pub role: Role,
    /// How many days it works (field `expires_in_days`).
    pub expires_in_days: u64,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedToken {
    /// The bearer secret (`mfv_...`); only its digest is kept.
    #[schemars(with = "String")]
    pub secret: mfv_api::Secret,
    /// The token.
    pub token: TokenView,
}

/// A session as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SessionView {
    /// The id (for revoking it).
    pub id: i64,
    /// Whose session it is.
    pub username: String,
    /// The user's role as the session last saw it.
    pub role: Role,
    /// The address it was opened from.
    pub source: String,
    /// When it was opened (Unix seconds).
    pub created_at: i64,
    /// When it was last used (Unix seconds).
    pub last_seen_at: i64,
    /// When it ends if unused (Unix seconds).
    pub idle_expires_at: i64,
    /// When it ends however much it is used (Unix seconds).
    pub expires_at: i64,
}

impl From<mfv_auth::SessionInfo> for SessionView {
    fn from(info: mfv_auth::SessionInfo) -> SessionView {
        SessionView {
            id: info.id,
            username: info.username.as_str().to_owned(),
            role: info.role,
            source: info.source,
            created_at: info.created_at.0,
            last_seen_at: info.last_seen_at.0,
            idle_expires_at: info.idle_expires_at.0,
            expires_at: info.expires_at.0,
        }
    }
}

/// Which audit entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// At most this many, newest first.
    pub limit: u32,
    /// Only entries with an id below this one (the next page).
    pub before: Option<i64>,
    /// Only entries about this user or done by them.
    pub user: Option<String>,
    /// Only entries of this event.
    pub event: Option<AuditEvent>,
    /// Only entries written at this time or later.
    pub since: Option<mfv_auth::Timestamp>,
    /// Only entries written at this time or earlier.
    pub until: Option<mfv_auth::Timestamp>,
}

/// A second factor just enrolled: what an authenticator app needs, and the recovery codes.
/// The only time any of it is shown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TotpEnrolmentView {
    /// The secret in base32, for typing into an app.
    #[schemars(with = "String")]
    pub secret: mfv_api::Secret,
    /// `otpauth://totp/...`, for a QR code.
    #[schemars(with = "String")]
    pub otpauth_uri: mfv_api::Secret,
    /// Single-use codes that stand in for a TOTP code, at login or to remove the factor.
    #[schemars(with = "Vec<String>")]
    pub recovery_codes: Vec<mfv_api::Secret>,
}

impl From<mfv_auth::TotpEnrolment> for TotpEnrolmentView {
    fn from(enrolment: mfv_auth::TotpEnrolment) -> TotpEnrolmentView {
        TotpEnrolmentView {
            secret: mfv_api::Secret::new(enrolment.secret_base32.expose()),
            otpauth_uri: mfv_api::Secret::new(enrolment.otpauth_uri.expose()),
            recovery_codes: enrolment
                .recovery_codes
                .iter()
                .map(|code| mfv_api::Secret::new(code.expose()))
                .collect(),
        }
    }
}

/// Where a user's second factor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TotpStatusView {
    /// A secret was issued: enrolment is awaiting its first code, or confirmed.
    pub enabled: bool,
    /// Enrolment was confirmed: logins need a TOTP code or a recovery code.
    pub confirmed: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

impl From<mfv_auth::TotpStatus> for TotpStatusView {
    fn from(status: mfv_auth::TotpStatus) -> TotpStatusView {
        TotpStatusView {
            enabled: status.enrolled,
            confirmed: status.confirmed,
            recovery_codes_left: status.recovery_codes_left,
        }
    }
}

/// mfv-auth's refusal of a change, as the API answers it: a stable kind, and the field of
/// the request at fault where there is one.
pub(crate) fn change_refusal(error: &AuthError) -> ApiError {
    let message = mfv_linux::error_chain(error);
    let conflict = |message: String| ApiError::new(StatusCode::CONFLICT, "conflict", message);
    let not_found = |message: String| ApiError::new(StatusCode::NOT_FOUND, "not_found", message);
    match error {
        AuthError::Admin(admin) => match admin {
            AdminError::UserExists { .. } => conflict(message).with_field("username"),
            AdminError::NoSuchUser { .. } => not_found(message),
            AdminError::DisplayName(_) => ApiError::invalid("display_name", message),
            AdminError::PasswordTooShort { .. } => ApiError::invalid("password", message),
            AdminError::ReadOnly { .. } => conflict(message),
            _ => ApiError::unavailable(message),
        },
        AuthError::NoSuchUser { .. } => not_found(message),
        AuthError::RoleAboveOwner { .. } => ApiError::invalid("role", message),
        AuthError::TokenName { .. } => ApiError::invalid("name", message),
        AuthError::TokenNameTaken { .. } => conflict(message).with_field("name"),
        AuthError::TokenLifetime { .. } => ApiError::invalid("expires_in_days", message),
        AuthError::NoSuchToken { .. } | AuthError::NoSuchSession { .. } => not_found(message),
        AuthError::TotpAlreadyEnabled { .. } | AuthError::TotpNotEnrolled { .. } => {
            conflict(message)
        }
        AuthError::TotpInvalid | AuthError::TotpRequired => ApiError::invalid("code", message),
        AuthError::LockedOut { .. } | AuthError::AttemptsInProgress => throttled(message),
        AuthError::WrongPassword => ApiError::new(StatusCode::FORBIDDEN, "wrong_password", message),
        _ => ApiError::unavailable(message),
    }
}

/// `429 throttled`: too many failed logins or password checks.
pub(crate) fn throttled(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message)
}

/// The refusal of a change that asked for the caller's current password in the request's
/// `password_field`: as [`change_refusal`], a wrong password (`403 wrong_password`) naming
/// that field.
pub(crate) fn password_check_refusal(error: &AuthError, password_field: &str) -> ApiError {
    let refusal = change_refusal(error);
    match error {
        AuthError::WrongPassword => refusal.with_field(password_field),
        _ => refusal,
    }
}

/// A refusal of the auth database or the user backend when reading.
pub(crate) fn read_failure(error: &impl std::error::Error) -> ApiError {
    ApiError::unavailable(format!(
        "the users could not be read: {}",
        mfv_linux::error_chain(error)
    ))
}
