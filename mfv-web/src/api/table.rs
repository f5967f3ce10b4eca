//! The route table: every route of the API, one line each.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use hyper::body::Bytes;
use mfv_auth::Permission;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::dispatch::ApiState;
use super::doc::{Answer, SchemaFn};
use super::path::PathParams;
use super::query::{Param, Query};
use super::{ApiError, Caller};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (logging in, the OpenAPI document).
    Anyone,
    /// Any signed-in caller, whatever the role (their own session).
    SignedIn,
    /// A caller whose role allows this.
    Allowed(Permission),
}

/// What a handler gets.
#[derive(Debug)]
pub struct Call {
    /// The server's state.
    pub state: Arc<ApiState>,
    /// Who called, when the route needs a caller (always set then).
    pub caller: Option<Caller>,
    /// The session token the caller presented, when it signed in with the cookie.
    pub session: Option<String>,
    /// The path's parameters, by name.
    pub params: PathParams,
    /// The query string's parameters, parsed against the route's [`Route::query`].
    pub query: Query,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body, within the route's limit (empty on a route that streams its body).
    pub body: Bytes,
    /// The body as it arrives, on a route that streams it ([`Route::streams`]); empty on
    /// the others.
    pub stream: BodyStream,
    /// Where the request came from.
    pub client: SocketAddr,
    /// What taking the connection over (a websocket) needs.
    pub takeover: Takeover,
}

/// What a handler needs to take its connection over: hyper's upgrade, present when the
/// request asked for one on a connection that can give it, and the server's places for
/// upgraded connections (none outside the server, as in warp's tests).
#[derive(Debug, Default)]
pub struct Takeover {
    /// The connection, once the `101` answer is sent.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// The places of upgraded connections, and the server's shutdown.
    pub upgrades: Option<crate::server::Upgrades>,
}

impl Call {
    /// The path parameter `name` (the table guarantees the route has it).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find_map(|(key, value)| (*key == name).then_some(value.as_str()))
            .unwrap_or_default()
    }

    /// The body as JSON of type `T`, or an error naming what is wrong with it (unknown
    /// fields are refused by the types themselves).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        read_json(&self.body)
    }
}

/// `body` as JSON of type `T`, or an error naming what is wrong with it and, where serde
/// says, the field.
fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        let refusal = ApiError::new(
            warp::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body is not the JSON this route takes: {error}"),
        );
        match error_field(&error) {
            Some(field) => refusal.with_field(field),
            None => refusal,
        }
    })
}

/// The field serde named in `error` (`missing field `password``, `unknown field `x``).
fn error_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let start = text.find("field `")? + "field `".len();
    let end = start + text[start..].find('`')?;
    Some(text[start..end].to_owned())
}

/// A request's body as it arrives, in the pieces the connection delivers, refused with
/// `413` once it passes the route's limit. A dropped connection ends it with an error.
pub struct BodyStream(Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>);

impl BodyStream {
    /// `pieces` as a body.
    pub fn new(pieces: impl Stream<Item = Result<Bytes, ApiError>> + Send + 'static) -> Self {
        BodyStream(Box::pin(pieces))
    }

    /// No body.
    pub fn empty() -> Self {
        BodyStream::new(futures_util::stream::empty())
    }

    /// The next piece, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Bytes, ApiError>> {
        self.0.next().await
    }
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream")
    }
}

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;

/// A route's handler.
pub type Handler = fn(Call) -> HandlerFuture;

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template (`/api/v1/vms/{name}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The largest body it takes, in bytes; 0 takes none. A limit above
    /// [`LARGEST_BUFFERED_BODY`] makes the route stream its body ([`Route::streams`]).
    pub max_body: usize,
    /// The query parameters it takes; any other is refused before the handler is called.
    pub query: &'static [Param],
    /// The schema of the JSON body it takes; `None` when it takes none or streams bytes.
    pub request: Option<SchemaFn>,
    /// What it answers when it succeeds.
    pub answer: Answer,
    /// The OpenAPI operation id.
    pub operation: &'static str,
    /// What it does, in a line.
    pub summary: &'static str,
    /// The handler.
    pub handler: Handler,
}

impl Route {
    /// A route for callers whose role allows `permission`, taking a small JSON body when it
    /// has a `request` schema and none otherwise, with no query parameters.
    pub fn allowed(
        method: Method,
        path: &'static str,
        permission: Permission,
        (request, answer): (Option<SchemaFn>, Answer),
        operation: &'static str,
        summary: &'static str,
        handler: Handler,
    ) -> Route {
        Route {
            method,
            path,
            access: Access::Allowed(permission),
            max_body: if request.is_some() { SMALL_BODY } else { 0 },
            query: &[],
            request,
            answer,
            operation,
            summary,
            handler,
        }
    }

    /// Whether the handler reads the body as it arrives ([`Call::stream`]) instead of
    /// getting it whole ([`Call::body`]): bodies that may be larger than
    /// [`LARGEST_BUFFERED_BODY`] (disk images) are never held in memory.
    pub fn streams(&self) -> bool {
        self.max_body > LARGEST_BUFFERED_BODY
    }
}

/// A small JSON body's limit: logins, settings, specs.
pub const SMALL_BODY: usize = 64 * 1024;

/// The largest body the dispatcher reads whole before calling a handler; routes that take
/// more stream their bodies.
pub const LARGEST_BUFFERED_BODY: usize = 1024 * 1024;

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    let mut routes = super::session::routes();
    routes.extend(super::openapi::routes());
    routes.extend(super::metrics::routes());
    routes.extend(super::users::routes());
    routes.extend(super::totp::routes());
    routes.extend(super::tokens::routes());
    routes.extend(super::audit::routes());
    routes.extend(super::host::routes());
    routes.extend(super::config::routes());
    routes.extend(super::network::routes());
    routes.extend(super::tasks::routes());
    routes.extend(super::events::routes());
    routes.extend(super::vms::routes());
    routes.extend(super::vm_clone::routes());
    routes.extend(super::vm_networks::routes());
    routes.extend(super::consoles::routes());
    routes.extend(super::storage::routes());
    routes.extend(super::uploads::routes());
    routes.extend(super::fetches::routes());
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_under_api_v1_or_metrics_once_with_a_unique_operation() {
        let routes = routes();
        let mut seen = std::collections::BTreeSet::new();
        let mut operations = std::collections::BTreeSet::new();
        for route in &routes {
            assert!(
                route.path.starts_with("/api/v1/") || route.path == "/metrics",
                "{}",
                route.path
            );
            assert!(
                seen.insert((route.method.to_string(), route.path)),
                "{} {} twice",
                route.method,
                route.path
            );
            assert!(operations.insert(route.operation), "{}", route.operation);
            assert!(!route.summary.is_empty(), "{}", route.path);
            if matches!(route.method, Method::GET | Method::DELETE) {
                assert_eq!(route.max_body, 0, "{} {}", route.method, route.path);
            }
            if route.streams() {
                assert_eq!(route.method, Method::PUT, "{}", route.path);
            }
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only parsed")]
        struct Login {
            username: String,
        }
        let missing = read_json::<Login>(b"{}").unwrap_err();
        assert_eq!(missing.body.field.as_deref(), Some("username"));
        let unknown = read_json::<Login>(br#"{"username":"a","role":"admin"}"#).unwrap_err();
        assert_eq!(unknown.body.field.as_deref(), Some("role"));
        let malformed = read_json::<Login>(b"{").unwrap_err();
        assert_eq!(malformed.body.kind, "invalid_request");
    }
}
