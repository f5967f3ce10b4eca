//! Logging in and out: `POST /api/v1/session` exchanges a user name, password and (where
//! enrolled) TOTP code for the session cookie; `GET` says who the caller is; `DELETE` ends
//! the session.
//!
//! The login's answer carries the session's CSRF token, which a page sends back in the
//! `X-CSRF-Token` header with every change; the cookie itself is out of scripts' reach.

use mfv_auth::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::dispatch::{SESSION_COOKIE, csrf_token};
use super::doc::{Answer, Done, schema};
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::{ApiError, Caller, Credential, LoginAttempt};
use crate::reply::json_response;
use crate::request::with_cookie;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::POST,
            path: "/api/v1/session",
            access: Access::Anyone,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<Login>),
            answer: Answer::Ok(schema::<SessionAnswer>),
            operation: "login",
            summary: "Log in with a user name, password and TOTP code where enrolled; sets the \
                      session cookie and answers the CSRF token",
            handler: login,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/session",
            access: Access::SignedIn,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<SessionAnswer>),
            operation: "whoami",
            summary: "Who the caller is: user name, role, how it signed in",
            handler: whoami,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/session",
            access: Access::SignedIn,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<Done>),
            operation: "logout",
            summary: "End the caller's session and remove the cookie",
            handler: logout,
        },
    ]
}

/// The login's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// Who the caller is, as `whoami` and the login answer.
#[derive(Debug, Serialize, JsonSchema)]
struct SessionAnswer {
    username: String,
    role: Role,
    credential: Credential,
    /// The token to send in `X-CSRF-Token` with changes, for a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    /// When the session ends however much it is used (Unix seconds), after a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl SessionAnswer {
    fn new(caller: &Caller, session: Option<&str>, expires_at: Option<i64>) -> SessionAnswer {
        SessionAnswer {
            username: caller.username.clone(),
            role: caller.role,
            credential: caller.credential.clone(),
            csrf_token: session.map(csrf_token),
            expires_at,
        }
    }
}

fn login(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let login: Login = call.json()?;
        let signed_in = call
            .state
            .authority
            .login(LoginAttempt {
                username: login.username,
                password: mfv_api::Secret::new(login.password),
                totp: login.totp.filter(|code| !code.is_empty()),
                client: call.client.ip(),
            })
            .await?;
        let session = signed_in.session.expose();
        let answer =
            SessionAnswer::new(&signed_in.caller, Some(session), Some(signed_in.expires_at));
        Ok(with_cookie(
            json_response(StatusCode::OK, &answer),
            SESSION_COOKIE,
            session,
        ))
    })
}

fn whoami(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        Ok(json_response(
            StatusCode::OK,
            &SessionAnswer::new(caller, call.session.as_deref(), None),
        ))
    })
}

fn logout(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let Some(session) = call.session.as_deref() else {
            return Err(ApiError::invalid(
                "authorization",
                "an API token has no session to end: revoke the token instead",
            ));
        };
        call.state
            .authority
            .logout(session, call.client.ip())
            .await?;
        call.state.forget_session(session);
        let response: Response = json_response(StatusCode::OK, &Done {});
        Ok(with_cookie(response, SESSION_COOKIE, ""))
    })
}

/// The caller of a route open to signed-in callers only (the dispatcher made sure of one).
pub(crate) fn signed_in(call: &Call) -> Result<&Caller, ApiError> {
    call.caller
        .as_ref()
        .ok_or_else(|| ApiError::unauthenticated("sign in first (POST /api/v1/session)"))
}
