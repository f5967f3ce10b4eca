//! API tokens and sessions, for administrators: list them, make a token (its secret is in
//! that answer only: only its digest is kept), revoke either by id.
//!
//! A revoked session stops working at its next request: the dispatcher forgets its recent
//! checks of the session's user. (Token checks are never kept.)

use mfv_auth::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::accounts::{CreatedToken, NewToken, SessionView, TokenView};
use super::doc::{Answer, Done, schema};
use super::session::signed_in;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::users::role;
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    let manage = Access::Allowed(Permission::ManageUsers);
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/tokens",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<TokenList>),
            operation: "listTokens",
            summary: "Every API token (never its secret)",
            handler: list_tokens,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/tokens",
            access: manage,
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<CreateToken>),
            answer: Answer::Created(schema::<CreatedToken>),
            operation: "createToken",
            summary: "Make an API token: owner (default: the caller), name, role, \
                      expires_in_days; the answer holds its secret, shown this once",
            handler: create_token,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/tokens/{id}",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<Done>),
            operation: "revokeToken",
            summary: "Revoke an API token",
            handler: revoke_token,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/sessions",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<SessionList>),
            operation: "listSessions",
            summary: "Every unexpired session: user, address, when opened and last used",
            handler: list_sessions,
        },
        Route {
            method: Method::DELETE,
            path: "/api/v1/sessions/{id}",
            access: manage,
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<Done>),
            operation: "revokeSession",
            summary: "End a session at once",
            handler: revoke_session,
        },
    ]
}

/// `POST /api/v1/tokens`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    owner: Option<String>,
    name: String,
    #[schemars(with = "mfv_auth::Role")]
    role: String,
    expires_in_days: u64,
}

/// What `GET /api/v1/tokens` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct TokenList {
    tokens: Vec<TokenView>,
}

/// What `GET /api/v1/sessions` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct SessionList {
    sessions: Vec<SessionView>,
}

/// The path parameter `id`, a token's or session's id.
fn id(call: &Call) -> Result<i64, ApiError> {
    let text = call.param("id");
    text.parse().map_err(|_| {
        ApiError::invalid(
            "id",
            format!("{text:?} is not an id: ids are whole numbers"),
        )
    })
}

fn list_tokens(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let tokens = call.state.authority.list_tokens().await?;
        Ok(json_response(StatusCode::OK, &TokenList { tokens }))
    })
}

fn create_token(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let body: CreateToken = call.json()?;
        let token = NewToken {
            owner: body.owner.unwrap_or_else(|| caller.username.clone()),
            name: body.name,
            role: role(&body.role, "role")?,
            expires_in_days: body.expires_in_days,
        };
        let created = call
            .state
            .authority
            .create_token(caller, call.client.ip(), token)
            .await?;
        Ok(json_response(StatusCode::CREATED, &created))
    })
}

fn revoke_token(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let id = id(&call)?;
        call.state
            .authority
            .revoke_token(caller, call.client.ip(), id)
            .await?;
        Ok(json_response(StatusCode::OK, &Done {}))
    })
}

fn list_sessions(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let sessions = call.state.authority.list_sessions().await?;
        Ok(json_response(StatusCode::OK, &SessionList { sessions }))
    })
}

fn revoke_session(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let caller = signed_in(&call)?;
        let id = id(&call)?;
        let session = call
            .state
            .authority
            .revoke_session(caller, call.client.ip(), id)
            .await?;
        call.state.forget_user(&session.username);
        Ok(json_response(StatusCode::OK, &Done {}))
    })
}
