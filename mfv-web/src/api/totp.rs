//! Second factors (TOTP): every signed-in user manages their own, administrators reset
//! another user's.
//!
//! Enrolling asks for the caller's current password and removing asks for it and a current
//! code (or a recovery code): a session left open in a browser is not enough to turn the
//! second factor off or to bind it to someone else's phone. The password check is a login's
//! as far as a guesser is concerned (same throttle counters, same lockout, audited with the
//! client's address): mfv-auth does it, not this module. Removal is `POST .../disable`
//! rather than `DELETE` with a body, since a `DELETE` here takes none.
//!
//! An administrator resets their own second factor through the self-service routes, which ask
//! for the password and a code, never through the reset route. A reset ends the user's
//! sessions, so the dispatcher forgets its recent checks of them.

use mfv_auth::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::header::{CACHE_CONTROL, HeaderValue};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::accounts::{TotpEnrolmentView, TotpStatusView};
use super::doc::{Answer, schema};
use super::session::signed_in;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::reply::json_response;

/// The self-service path, named in refusals.
const OWN: &str = "/api/v1/session/totp";

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: OWN,
            access: Access::SignedIn,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<TotpStatusView>),
            operation: "getOwnTotp",
            summary: "Where the caller's second factor stands: enabled (a secret was issued), \
                      confirmed (logins need a code), recovery_codes_left",
            handler: own_status,
        },
        Route {
            method: Method::POST,
            path: OWN,
            access: Access::SignedIn,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<Enrol>),
            answer: Answer::Created(schema::<TotpEnrolmentView>),
            operation: "enrolOwnTotp",
            summary: "Start enrolling a second factor for the caller, given their password; \
                      answers the secret, the otpauth:// URI and the recovery codes, shown \
                      this once",
            handler: enrol,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/session/totp/confirm",
            access: Access::SignedIn,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<Confirm>),
            answer: Answer::Ok(schema::<Confirmed>),
            operation: "confirmOwnTotp",
            summary: "Confirm the caller's enrolment with a first code from the app: from \
                      then on logins need a code",
            handler: confirm,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/session/totp/disable",
            access: Access::SignedIn,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<Disable>),
            answer: Answer::Ok(schema::<Removed>),
            operation: "disableOwnTotp",
            summary: "Remove the caller's second factor, given their password and a current \
                      TOTP code or a recovery code",
            handler: disable,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/users/{name}/totp",
            access: Access::Allowed(Permission::ManageUsers),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<Removed>),
            operation: "resetUserTotp",
            summary: "Reset another user's second factor (a lost phone) and end their \
                      sessions",
            handler: reset,
        },
    ]
}

/// `POST /api/v1/session/totp`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Enrol {
    password: String,
}

/// `POST /api/v1/session/totp/confirm`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Confirm {
    code: String,
}

/// `POST /api/v1/session/totp/disable`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Disable {
    password: String,
    /// Required once the second factor is confirmed.
    #[serde(default)]
    code: Option<String>,
}

/// What a confirmation answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Confirmed {
    /// Always true: logins need a code from now on.
    confirmed: bool,
}

/// What a removal or a reset answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Removed {
    /// Whether there was a second factor (confirmed or pending) to remove.
    removed: bool,
}

fn own_status(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let status = call.state.authority.own_totp_status(caller).await?;
        Ok(json_response(StatusCode::OK, &status))
    })
}

fn enrol(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: Enrol = call.json()?;
        let enrolment = call
            .state
            .authority
            .enrol_own_totp(
                caller,
                call.client.ip(),
                mfv_api::Secret::new(body.password),
            )
            .await?;
        let mut response = json_response(StatusCode::CREATED, &enrolment);
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    })
}

fn confirm(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: Confirm = call.json()?;
        call.state
            .authority
            .confirm_own_totp(caller, call.client.ip(), body.code)
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &Confirmed { confirmed: true },
        ))
    })
}

fn disable(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: Disable = call.json()?;
        let removed = call
            .state
            .authority
            .disable_own_totp(
                caller,
                call.client.ip(),
                mfv_api::Secret::new(body.password),
                body.code,
            )
            .await?;
        Ok(json_response(StatusCode::OK, &Removed { removed }))
    })
}

fn reset(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let name = call.param("name");
        if name == caller.username {
            return Err(ApiError::conflict(format!(
                "remove your own second factor with POST {OWN}/disable, which asks for your \
                 password and a current code"
            )));
        }
        let result = call
            .state
            .authority
            .reset_totp(caller, call.client.ip(), name)
            .await;
        call.state.forget_user(name);
        Ok(json_response(StatusCode::OK, &Removed { removed: result? }))
    })
}
