//! Who the callers are: logins, sessions and API tokens, behind one trait so the API does not
//! care where the auth database is.
//!
//! [`LocalAuthority`] runs an [`Authenticator`] in this process: `--dev` mode on an ordinary
//! machine and the API's tests, with a SQLite database this process may write.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use mfv_auth::{Authenticator, CheckError, LoginError, Role};
use serde::Serialize;
use warp::http::StatusCode;

use super::ApiError;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        LoginError::LockedOut { .. } | LoginError::AttemptsInProgress => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message)
        }
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
