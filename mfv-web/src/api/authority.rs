//! Who the callers are: logins, sessions and API tokens, behind one trait so the API does not
//! care where the auth database is.
//!
//! [`LocalAuthority`] runs an [`Authenticator`] in this process: `--dev` mode on an ordinary
//! machine and the API's tests, with a SQLite database this process may write.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use std::time::Duration;

use mfv_auth::{
    Actor, AdminError, AuditEntry, AuditFilter, AuthError, Authenticator, CheckError, LoginError,
    Password, Role, UserActivity, UserRecord, Username, check_display_name,
};
use serde::Serialize;
use warp::http::StatusCode;

use super::ApiError;
use super::accounts::{
    AuditQuery, AuthPolicyView, CreatedToken, NewToken, NewUser, SessionView, TokenView,
    TotpEnrolmentView, TotpStatusView, UserChange, UserView, change_refusal,
    password_check_refusal, read_failure, throttled,
};

/// What an [`Authority`] returns.
pub type AuthorityFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// A login attempt as the client sent it.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// The user name as typed.
    pub username: String,
    /// The password.
    pub password: mfv_api::Secret,
    /// The TOTP or recovery code, for a user who enrolled one.
    pub totp: Option<String>,
    /// Where the attempt came from, for throttling and the audit log.
    pub client: IpAddr,
}

/// A successful login: the session's secret (the cookie's value) and who it is for.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session token; only its digest is stored.
    pub session: mfv_api::Secret,
    /// Who signed in.
    pub caller: Caller,
    /// When the session ends however much it is used (Unix seconds).
    pub expires_at: i64,
}

/// Who made a request, as the session or token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The user name.
    pub username: String,
    /// What the user may do; for a token, the lower of its role and its owner's.
    pub role: Role,
    /// How the caller proved who it is.
    pub credential: Credential,
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// The session cookie of a login.
    Session,
    /// An API token, by its id.
    Token {
        /// The token's id (not its secret).
        id: i64,
    },
}

/// A change asked for through the API, as the audit log keeps it.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The route's operation (`vm_start`).
    pub operation: &'static str,
    /// What it was asked of: the request's path.
    pub target: &'a str,
    /// How it was answered.
    pub status: warp::http::StatusCode,
    /// Where the request came from.
    pub client: IpAddr,
}

impl Change<'_> {
    /// The audit entry's detail: `vm_start /api/v1/vms/web-1/start: 202`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}: {}",
            self.operation,
            self.target,
            self.status.as_u16()
        )
    }
}

/// Checks logins, sessions and API tokens.
pub trait Authority: Send + Sync + 'static {
    /// Logs a user in.
    fn login(&self, attempt: LoginAttempt) -> AuthorityFuture<'_, SignedIn>;
    /// Who holds the session `token`, if it is valid.
    fn check_session<'a>(&'a self, token: &'a str) -> AuthorityFuture<'a, Caller>;
    /// Who holds the API token `token`, if it is valid.
    fn check_token<'a>(&'a self, token: &'a str) -> AuthorityFuture<'a, Caller>;
    /// Ends the session `token`.
    fn logout<'a>(&'a self, token: &'a str, client: IpAddr) -> AuthorityFuture<'a, ()>;
    /// Writes `change`, asked for by `caller`, to the audit log.
    fn record_change<'a>(
        &'a self,
        caller: &'a Caller,
        change: &'a Change<'a>,
    ) -> AuthorityFuture<'a, ()>;

    /// The password and token rules in force.
    fn policy(&self) -> AuthorityFuture<'_, AuthPolicyView>;
    /// Every user, by name.
    fn list_users(&self) -> AuthorityFuture<'_, Vec<UserView>>;
    /// The user `username` (404 when there is none).
    fn find_user<'a>(&'a self, username: &'a str) -> AuthorityFuture<'a, UserView>;
    /// Adds a user, as `caller` from `client`.
    fn add_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        user: NewUser,
    ) -> AuthorityFuture<'a, UserView>;
    /// Changes the user `username`, as `caller` from `client`; every part is checked before
    /// any is made.
    fn change_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
        change: UserChange,
    ) -> AuthorityFuture<'a, UserView>;
    /// Deletes the user `username` with their sessions, tokens and TOTP.
    fn delete_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
    ) -> AuthorityFuture<'a, ()>;
    /// Changes the caller's own password, given the current one (checked and throttled as a
    /// login is: `403 wrong_password` naming `current`, `429 throttled`); ends their sessions.
    fn change_own_password<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        current: mfv_api::Secret,
        new: mfv_api::Secret,
    ) -> AuthorityFuture<'a, ()>;
    /// Where the caller's own second factor stands.
    fn own_totp_status<'a>(&'a self, caller: &'a Caller) -> AuthorityFuture<'a, TotpStatusView>;
    /// Starts enrolment of the caller's own second factor, given their current password
    /// (checked and throttled as a login is: `403 wrong_password` naming `password`, `429
    /// throttled`).
    fn enrol_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        password: mfv_api::Secret,
    ) -> AuthorityFuture<'a, TotpEnrolmentView>;
    /// Confirms the caller's pending enrolment with a first code (`400` naming `code` when
    /// wrong).
    fn confirm_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        code: String,
    ) -> AuthorityFuture<'a, ()>;
    /// Removes the caller's own second factor, given their current password and, when it is
    /// confirmed, a current TOTP code or a recovery code; whether there was one.
    fn disable_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        password: mfv_api::Secret,
        code: Option<String>,
    ) -> AuthorityFuture<'a, bool>;
    /// An administrator's reset of the second factor of `username` (404 when there is no
    /// such user); ends their sessions when there was one; whether there was one.
    fn reset_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
    ) -> AuthorityFuture<'a, bool>;
    /// Every API token, without secrets.
    fn list_tokens(&self) -> AuthorityFuture<'_, Vec<TokenView>>;
    /// Makes an API token, as `caller` from `client`.
    fn create_token<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        token: NewToken,
    ) -> AuthorityFuture<'a, CreatedToken>;
    /// Revokes the API token `id`.
    fn revoke_token<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        id: i64,
    ) -> AuthorityFuture<'a, ()>;
    /// Every unexpired session, without secrets.
    fn list_sessions(&self) -> AuthorityFuture<'_, Vec<SessionView>>;
    /// Revokes the session `id`; answers the session it was.
    fn revoke_session<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        id: i64,
    ) -> AuthorityFuture<'a, SessionView>;
    /// The audit entries `query` asks for, newest first.
    fn audit_log(&self, query: AuditQuery) -> AuthorityFuture<'_, Vec<AuditEntry>>;
}

/// An [`Authenticator`] in this process.
#[derive(Clone)]
pub struct LocalAuthority {
    authenticator: Arc<Authenticator>,
}

impl std::fmt::Debug for LocalAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAuthority")
            .field("backend", &self.authenticator.backend().name())
            .finish()
    }
}

impl LocalAuthority {
    /// The authority of `authenticator`.
    pub fn new(authenticator: Authenticator) -> LocalAuthority {
        LocalAuthority {
            authenticator: Arc::new(authenticator),
        }
    }
}

impl Authority for LocalAuthority {
    fn login(&self, attempt: LoginAttempt) -> AuthorityFuture<'_, SignedIn> {
        Box::pin(async move {
            let session = self
                .authenticator
                .login(
                    &attempt.username,
                    attempt.password.expose(),
                    attempt.totp.as_deref(),
                    attempt.client,
                )
                .await
                .map_err(|error| login_refusal(&error))?;
            Ok(SignedIn {
                caller: Caller {
                    username: session.info.username.as_str().to_owned(),
                    role: session.info.role,
                    credential: Credential::Session,
                },
                expires_at: session.info.expires_at.0,
                session: mfv_api::Secret::new(session.token.expose()),
            })
        })
    }

    fn check_session<'a>(&'a self, token: &'a str) -> AuthorityFuture<'a, Caller> {
        Box::pin(async move {
            let info = self
                .authenticator
                .check_session(token)
                .await
                .map_err(|error| check_refusal(&error))?;
            Ok(Caller {
                username: info.username.as_str().to_owned(),
                role: info.role,
                credential: Credential::Session,
            })
        })
    }

    fn check_token<'a>(&'a self, token: &'a str) -> AuthorityFuture<'a, Caller> {
        Box::pin(async move {
            let info = self
                .authenticator
                .check_api_token(token)
                .await
                .map_err(|error| check_refusal(&error))?;
            Ok(Caller {
                username: info.owner.as_str().to_owned(),
                role: info.effective_role,
                credential: Credential::Token { id: info.id },
            })
        })
    }

    fn logout<'a>(&'a self, token: &'a str, client: IpAddr) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            self.authenticator
                .logout(token, client)
                .await
                .map_err(|error| {
                    ApiError::unavailable(format!(
                        "the session could not be ended: {}",
                        mfv_linux::error_chain(&error)
                    ))
                })
        })
    }

    fn record_change<'a>(
        &'a self,
        caller: &'a Caller,
        change: &'a Change<'a>,
    ) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            let user = mfv_auth::Username::new(&caller.username)
                .map_err(|error| ApiError::invalid("username", mfv_linux::error_chain(&error)))?;
            // A websocket taken over (101) is a change made.
            let outcome = if change.status.is_success() || change.status.is_informational() {
                mfv_auth::AuditOutcome::Ok
            } else if change.status.is_client_error() {
                mfv_auth::AuditOutcome::Refused
            } else {
                mfv_auth::AuditOutcome::Error
            };
            self.authenticator
                .audit_host_change(&user, change.client, outcome, change.describe())
                .await
                .map_err(|error| ApiError::unavailable(mfv_linux::error_chain(&error)))
        })
    }

    fn policy(&self) -> AuthorityFuture<'_, AuthPolicyView> {
        let policy = self.authenticator.policy();
        let view = AuthPolicyView {
            min_password_chars: policy.min_password_chars,
            api_token_max_days: policy.api_token_max_lifetime.as_secs() / 86_400,
        };
        Box::pin(async move { Ok(view) })
    }

    fn list_users(&self) -> AuthorityFuture<'_, Vec<UserView>> {
        Box::pin(async move {
            let users = self
                .authenticator
                .list_users()
                .await
                .map_err(|error| read_failure(&error))?;
            let mut activity = self
                .authenticator
                .user_activity()
                .await
                .map_err(|error| read_failure(&error))?;
            Ok(users
                .into_iter()
                .map(|user| {
                    let facts = activity.remove(user.username.as_str()).unwrap_or_default();
                    UserView::new(user, facts)
                })
                .collect())
        })
    }

    fn find_user<'a>(&'a self, username: &'a str) -> AuthorityFuture<'a, UserView> {
        Box::pin(async move { self.view(username).await })
    }

    fn add_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        user: NewUser,
    ) -> AuthorityFuture<'a, UserView> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let username = Username::new(user.username.as_str())
                .map_err(|error| ApiError::invalid("username", error.to_string()))?;
            check_display_name(&user.display_name)
                .map_err(|error| ApiError::invalid("display_name", error.to_string()))?;
            let password = self.new_password(&user.password, "password")?;
            let record = UserRecord {
                username,
                display_name: user.display_name,
                role: user.role,
                disabled: false,
                account_id: None,
            };
            self.authenticator
                .add_user(&actor, &record, &password)
                .await
                .map_err(|error| change_refusal(&error))?;
            Ok(UserView::new(record, UserActivity::default()))
        })
    }

    fn change_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
        change: UserChange,
    ) -> AuthorityFuture<'a, UserView> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            if let Some(display_name) = &change.display_name {
                check_display_name(display_name)
                    .map_err(|error| ApiError::invalid("display_name", error.to_string()))?;
            }
            let password = match &change.password {
                Some(password) => Some(self.new_password(password, "password")?),
                None => None,
            };
            let user = self.record(username).await?.username;
            let auth = &self.authenticator;
            let refused = |error: AuthError| change_refusal(&error);
            if let Some(display_name) = &change.display_name {
                auth.set_display_name(&actor, &user, display_name)
                    .await
                    .map_err(refused)?;
            }
            if let Some(role) = change.role {
                auth.set_role(&actor, &user, role).await.map_err(refused)?;
            }
            if let Some(disabled) = change.disabled {
                auth.set_disabled(&actor, &user, disabled)
                    .await
                    .map_err(refused)?;
            }
            if let Some(password) = &password {
                auth.set_password(&actor, &user, password)
                    .await
                    .map_err(refused)?;
            }
            self.view(username).await
        })
    }

    fn delete_user<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
    ) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let user = self.record(username).await?.username;
            self.authenticator
                .delete_user(&actor, &user)
                .await
                .map_err(|error| change_refusal(&error))
        })
    }

    fn change_own_password<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        current: mfv_api::Secret,
        new: mfv_api::Secret,
    ) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            let current = current_password(&current, "current")?;
            let new = self.new_password(&new, "new")?;
            let user = self.record(&caller.username).await?.username;
            self.authenticator
                .change_password(&user, &current, &new, client)
                .await
                .map_err(|error| password_check_refusal(&error, "current"))
        })
    }

    fn own_totp_status<'a>(&'a self, caller: &'a Caller) -> AuthorityFuture<'a, TotpStatusView> {
        Box::pin(async move {
            let user = self.record(&caller.username).await?.username;
            let status = self
                .authenticator
                .totp_status(&user)
                .await
                .map_err(|error| read_failure(&error))?;
            Ok(status.into())
        })
    }

    fn enrol_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        password: mfv_api::Secret,
    ) -> AuthorityFuture<'a, TotpEnrolmentView> {
        Box::pin(async move {
            let password = current_password(&password, "password")?;
            let user = self.record(&caller.username).await?.username;
            let enrolment = self
                .authenticator
                .enrol_own_totp(&user, &password, client)
                .await
                .map_err(|error| password_check_refusal(&error, "password"))?;
            Ok(enrolment.into())
        })
    }

    fn confirm_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        code: String,
    ) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let user = self.record(&caller.username).await?.username;
            self.authenticator
                .confirm_totp(&actor, &user, &code)
                .await
                .map_err(|error| change_refusal(&error))
        })
    }

    fn disable_own_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        password: mfv_api::Secret,
        code: Option<String>,
    ) -> AuthorityFuture<'a, bool> {
        Box::pin(async move {
            let password = current_password(&password, "password")?;
            let user = self.record(&caller.username).await?.username;
            self.authenticator
                .disable_own_totp(&user, &password, code.as_deref(), client)
                .await
                .map_err(|error| password_check_refusal(&error, "password"))
        })
    }

    fn reset_totp<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        username: &'a str,
    ) -> AuthorityFuture<'a, bool> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let user = self.record(username).await?.username;
            self.authenticator
                .reset_totp(&actor, &user)
                .await
                .map_err(|error| change_refusal(&error))
        })
    }

    fn list_tokens(&self) -> AuthorityFuture<'_, Vec<TokenView>> {
        Box::pin(async move {
            let tokens = self
                .authenticator
                .list_api_tokens(None)
                .await
                .map_err(|error| read_failure(&error))?;
            Ok(tokens.into_iter().map(TokenView::from).collect())
        })
    }

    fn create_token<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        token: NewToken,
    ) -> AuthorityFuture<'a, CreatedToken> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let owner = Username::new(token.owner.as_str())
                .map_err(|error| ApiError::invalid("owner", error.to_string()))?;
            let max_days = self.authenticator.policy().api_token_max_lifetime.as_secs() / 86_400;
            let lifetime = token
                .expires_in_days
                .checked_mul(86_400)
                .filter(|seconds| (1..=max_days.saturating_mul(86_400)).contains(seconds))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "expires_in_days",
                        format!("an API token works for 1 to {max_days} days"),
                    )
                })?;
            let created = self
                .authenticator
                .create_api_token(
                    &actor,
                    &owner,
                    &token.name,
                    token.role,
                    Duration::from_secs(lifetime),
                )
                .await
                .map_err(|error| match error {
                    AuthError::NoSuchUser { .. } => change_refusal(&error).with_field("owner"),
                    error => change_refusal(&error),
                })?;
            Ok(CreatedToken {
                secret: mfv_api::Secret::new(created.secret.expose()),
                token: created.info.into(),
            })
        })
    }

    fn revoke_token<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        id: i64,
    ) -> AuthorityFuture<'a, ()> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            self.authenticator
                .revoke_api_token(&actor, id)
                .await
                .map_err(|error| change_refusal(&error))
        })
    }

    fn list_sessions(&self) -> AuthorityFuture<'_, Vec<SessionView>> {
        Box::pin(async move {
            let sessions = self
                .authenticator
                .list_sessions(None)
                .await
                .map_err(|error| read_failure(&error))?;
            Ok(sessions.into_iter().map(SessionView::from).collect())
        })
    }

    fn revoke_session<'a>(
        &'a self,
        caller: &'a Caller,
        client: IpAddr,
        id: i64,
    ) -> AuthorityFuture<'a, SessionView> {
        Box::pin(async move {
            let actor = Self::actor(caller, client)?;
            let session = self
                .list_sessions()
                .await?
                .into_iter()
                .find(|session| session.id == id)
                .ok_or_else(|| change_refusal(&AuthError::NoSuchSession { id }))?;
            self.authenticator
                .revoke_session(&actor, id)
                .await
                .map_err(|error| change_refusal(&error))?;
            Ok(session)
        })
    }

    fn audit_log(&self, query: AuditQuery) -> AuthorityFuture<'_, Vec<AuditEntry>> {
        Box::pin(async move {
            self.authenticator
                .search_audit_log(
                    query.limit,
                    query.before,
                    AuditFilter {
                        user: query.user,
                        event: query.event,
                        since: query.since,
                        until: query.until,
                    },
                )
                .await
                .map_err(|error| {
                    ApiError::unavailable(format!(
                        "the audit log could not be read: {}",
                        mfv_linux::error_chain(&error)
                    ))
                })
        })
    }
}

impl LocalAuthority {
    /// The actor the audit log names for `caller` acting from `client`.
    fn actor(caller: &Caller, client: IpAddr) -> Result<Actor, ApiError> {
        let user = Username::new(caller.username.as_str()).map_err(|error| {
            ApiError::unavailable(format!(
                "the caller's name is not a user name: {}",
                mfv_linux::error_chain(&error)
            ))
        })?;
        Ok(Actor::Remote {
            user,
            address: client,
        })
    }

    /// The user `username` as it is stored, or `404`.
    async fn record(&self, username: &str) -> Result<UserRecord, ApiError> {
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no user {username}"),
            )
        };
        let Ok(name) = Username::new(username) else {
            return Err(not_found());
        };
        self.authenticator
            .find_user(&name)
            .await
            .map_err(|error| read_failure(&error))?
            .ok_or_else(not_found)
    }

    /// The user `username` as the API shows them, or `404`.
    async fn view(&self, username: &str) -> Result<UserView, ApiError> {
        let record = self.record(username).await?;
        let activity = self
            .authenticator
            .activity_of(&record.username)
            .await
            .map_err(|error| read_failure(&error))?;
        Ok(UserView::new(record, activity))
    }

    /// `password` if it may be set as a new password: not empty, not too long, as long as
    /// the policy asks. Refusals name `field`.
    fn new_password(&self, password: &mfv_api::Secret, field: &str) -> Result<Password, ApiError> {
        let password = Password::new(password.expose())
            .map_err(|error| ApiError::invalid(field, mfv_linux::error_chain(&error)))?;
        let chars = password.expose().chars().count();
        let min = self.authenticator.policy().min_password_chars;
        if chars < min {
            let error = AdminError::PasswordTooShort { chars, min };
            return Err(ApiError::invalid(field, error.to_string()));
        }
        Ok(password)
    }
}

/// A current password as given in the request's `field`: not empty, not too long (any
/// length the backend may hold is checked; the policy's minimum is for new ones).
fn current_password(password: &mfv_api::Secret, field: &str) -> Result<Password, ApiError> {
    Password::new(password.expose())
        .map_err(|error| ApiError::invalid(field, mfv_linux::error_chain(&error)))
}

/// The API's answer to a refused login: a stable kind per reason, the field at fault.
pub(crate) fn login_refusal(error: &LoginError) -> ApiError {
    let message = mfv_linux::error_chain(error);
    match error {
        LoginError::InvalidCredentials => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
        }
        LoginError::Password(_) => ApiError::invalid("password", message),
        LoginError::TotpRequired => {
            ApiError::new(StatusCode::UNAUTHORIZED, "totp_required", message).with_field("totp")
        }
        LoginError::TotpInvalid => {
            ApiError::new(StatusCode::UNAUTHORIZED, "totp_invalid", message).with_field("totp")
        }
        LoginError::LockedOut { .. } | LoginError::AttemptsInProgress => throttled(message),
        _ => ApiError::unavailable(message),
    }
}

/// The API's answer to a session or token that does not pass.
pub(crate) fn check_refusal(error: &CheckError) -> ApiError {
    let message = mfv_linux::error_chain(error);
    match error {
        CheckError::SessionInvalid => {
            ApiError::new(StatusCode::UNAUTHORIZED, "session_invalid", message)
        }
        CheckError::TokenInvalid => {
            ApiError::new(StatusCode::UNAUTHORIZED, "token_invalid", message)
        }
        _ => ApiError::unavailable(message),
    }
}
