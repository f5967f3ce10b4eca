//! The dispatcher: from a request to its route's handler, through every check the table
//! promises, in this order: the route (404, or 405 naming the methods the path takes), the
//! caller (401), the role (403), CSRF on changes made with the session cookie (403), the
//! body's size (413) and type (415).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use hyper::body::{Buf, Bytes};
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::http::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use super::events::EventHub;
use super::links::{HostLink, LibvirtUri, RestoredVms, VmCapabilities};
use super::metrics::HttpMetrics;
use super::path::TemplateIndex;
use super::query::Query;
use super::session_checks::SessionChecks;
use super::table::{Access, BodyStream, Call, Route, Takeover};
use super::tasks::Tasks;
use super::uploads::Uploads;
use super::vm_list::VmList;
use super::{ApiError, Authority, Caller, Change};
use crate::server::{ClientAddr, Upgrades};

/// The session cookie. `__Host-` makes browsers keep it to this host, over HTTPS, for the
/// whole site.
pub const SESSION_COOKIE: &str = "__Host-mfv-session";

/// The header a change made with the session cookie carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the API is made of: who checks the callers, and what it reaches.
pub struct ApiParts {
    /// Who the callers are.
    pub authority: Arc<dyn Authority>,
    /// The host daemon.
    pub host: Arc<dyn HostLink>,
    /// libvirt, when this server manages VMs (`None`: the VM routes say it does not).
    pub libvirt: Option<LibvirtUri>,
    /// Whether the host's VMs are restored, on a host whose VM keeper restores them at boot
    /// (`None`: the VM routes serve at once).
    pub restored_vms: Option<RestoredVms>,
    /// Where the host's counters are read for the metrics: `/proc` but in tests.
    pub proc_root: PathBuf,
    /// What VMs created here may use (KVM, OVMF): probed under `/` on a host.
    pub vm_capabilities: VmCapabilities,
    /// How long an upload's chunk may send nothing before it is given up
    /// ([`super::uploads::BODY_IDLE`] but in tests).
    pub upload_idle: std::time::Duration,
}

impl std::fmt::Debug for ApiParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiParts")
            .field("libvirt", &self.libvirt)
            .finish_non_exhaustive()
    }
}

/// What the handlers share.
pub struct ApiState {
    /// Who the callers are.
    pub authority: Arc<dyn Authority>,
    /// The host daemon.
    pub host: Arc<dyn HostLink>,
    /// libvirt, when this server manages VMs.
    pub libvirt: Option<LibvirtUri>,
    /// Whether the host's VMs are restored, when something restores them.
    pub restored_vms: Option<RestoredVms>,
    /// Where the host's counters are read.
    pub proc_root: PathBuf,
    /// The requests answered, for the metrics.
    pub http_metrics: HttpMetrics,
    /// What VMs created here may use.
    pub vm_capabilities: VmCapabilities,
    /// How long an upload's chunk may send nothing.
    pub upload_idle: std::time::Duration,
    /// The long operations started, and the VMs' locks.
    pub tasks: Tasks,
    /// What the event streams send: VM state changes and task updates.
    pub events: EventHub,
    /// The uploads of images into volumes.
    pub uploads: Uploads,
    /// The VM list's last reading.
    pub vm_list: VmList,
    /// Recent session checks.
    sessions: SessionChecks,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// Forgets the check of the session `token` (it was ended).
    pub(crate) fn forget_session(&self, token: &str) {
        self.sessions.forget_session(token);
    }

    /// Forgets the checks of every session of `username` (the user was changed, disabled or
    /// deleted, or one of their sessions was revoked by its id), so their next request is
    /// checked again.
    pub(crate) fn forget_user(&self, username: &str) {
        self.sessions.forget_user(username);
    }

    /// Who the request's credentials stand for, and its session token when it used the
    /// cookie. Credentials that do not pass are refused even on routes open to anyone, so a
    /// client learns at once that its token or session ended. A long answer (an event
    /// stream) asks again now and then, so it ends with its caller's session or token.
    pub(crate) async fn caller(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Option<Caller>, Option<String>), ApiError> {
        match presented(headers) {
            Presented::Nothing => Ok((None, None)),
            Presented::Token(token) => {
                let caller = self.authority.check_token(&token).await?;
                Ok((Some(caller), None))
            }
            Presented::Session(session) => {
                let caller = self.session_caller(&session).await?;
                Ok((Some(caller), Some(session)))
            }
        }
    }

    /// Who holds the session `token`: a recent check, or the authority's answer.
    async fn session_caller(&self, token: &str) -> Result<Caller, ApiError> {
        self.sessions
            .caller(token, || self.authority.check_session(token))
            .await
    }
}

/// One request as the dispatcher takes it, but for its body.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: &'a str,
    /// The query string without its `?`.
    pub query: &'a str,
    /// The headers.
    pub headers: HeaderMap,
    /// Where it came from.
    pub client: SocketAddr,
    /// What taking its connection over needs.
    pub takeover: Takeover,
}

/// The API: its state and its routes.
#[derive(Debug)]
pub struct Api {
    state: Arc<ApiState>,
    routes: Vec<Route>,
    /// Where each request's route is looked up.
    index: TemplateIndex,
}

/// The CSRF token of the session `token`: a digest only the holder of the session can
/// compute, which a page of this site reads from the login's answer and sends with changes.
pub(crate) fn csrf_token(session: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"mfv-csrf\0")
        .chain_update(session.as_bytes())
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Credentials as the request presents them.
enum Presented {
    Nothing,
    Session(String),
    Token(String),
}

fn presented(headers: &HeaderMap) -> Presented {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        return Presented::Token(token.trim().to_owned());
    }
    match crate::request::cookie(headers, SESSION_COOKIE) {
        Some(session) => Presented::Session(session),
        None => Presented::Nothing,
    }
}

impl Api {
    /// The API of `parts`, with every route of the table.
    pub fn new(parts: ApiParts) -> Arc<Api> {
        let events = EventHub::default();
        let routes = super::table::routes();
        let index = TemplateIndex::new(routes.iter().map(|route| route.path));
        Arc::new(Api {
            state: Arc::new(ApiState {
                authority: parts.authority,
                host: parts.host,
                libvirt: parts.libvirt,
                restored_vms: parts.restored_vms,
                proc_root: parts.proc_root,
                http_metrics: HttpMetrics::default(),
                vm_capabilities: parts.vm_capabilities,
                upload_idle: parts.upload_idle,
                tasks: Tasks::with_events(events.clone()),
                events,
                uploads: Uploads::default(),
                vm_list: VmList::default(),
                sessions: SessionChecks::default(),
            }),
            routes,
            index,
        })
    }

    /// What the handlers share: the web pages check their visitor's session with it.
    pub(crate) fn state(&self) -> &ApiState {
        &self.state
    }

    /// The routes served.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The API as a warp filter: every request whose path starts with `/api/`, and
    /// `/metrics`; others are left to the filters after it.
    pub fn filter(
        api: Arc<Api>,
    ) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
        warp::path::full()
            .and_then(|path: warp::path::FullPath| async move {
                if path.as_str().starts_with("/api/") || path.as_str() == "/metrics" {
                    Ok(path)
                } else {
                    Err(warp::reject::not_found())
                }
            })
            .and(warp::method())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::ext::optional::<ClientAddr>())
            .and(warp::ext::optional::<hyper::upgrade::OnUpgrade>())
            .and(warp::ext::optional::<Upgrades>())
            .and(warp::body::stream())
            .then(
                move |path: warp::path::FullPath,
                      method: Method,
                      query: String,
                      headers: HeaderMap,
                      client: Option<ClientAddr>,
                      upgrade: Option<hyper::upgrade::OnUpgrade>,
                      upgrades: Option<Upgrades>,
                      body| {
                    let api = Arc::clone(&api);
                    async move {
                        let client =
                            client.map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
                        let request = Request {
                            method,
                            path: path.as_str(),
                            query: &query,
                            headers,
                            client,
                            takeover: Takeover { upgrade, upgrades },
                        };
                        api.dispatch(request, body).await
                    }
                },
            )
    }

    /// Answers one request.
    pub async fn dispatch<B: Buf + Send + 'static>(
        &self,
        request: Request<'_>,
        body: impl Stream<Item = Result<B, warp::Error>> + Unpin + Send + 'static,
    ) -> Response {
        let Request {
            method,
            path,
            query,
            headers,
            client,
            takeover,
        } = request;
        let started = Instant::now();
        let (route, params) = match self.route(&method, path) {
            Ok(found) => found,
            Err(allowed) => {
                let response = no_route(&method, path, &allowed);
                self.state
                    .http_metrics
                    .record("unrouted", response.status(), started.elapsed());
                return response;
            }
        };
        let changes = !matches!(method, Method::GET | Method::HEAD);
        let mut changed_by = None;
        let call = async {
            let (caller, session) = self.state.caller(&headers).await?;
            // A change a caller's role does not allow is audited too, as refused.
            if changes && audited_here(route) {
                changed_by.clone_from(&caller);
            }
            check_access(route, caller.as_ref())?;
            if !matches!(method, Method::GET | Method::HEAD) {
                check_csrf(&headers, session.as_deref())?;
            }
            let query = Query::parse(query, route.query)?;
            let (body, stream) = if route.streams() {
                (Bytes::new(), stream_body(route, &headers, body)?)
            } else {
                (read_body(route, &headers, body).await?, BodyStream::empty())
            };
            (route.handler)(Call {
                state: Arc::clone(&self.state),
                caller,
                session,
                params,
                query,
                headers,
                body,
                stream,
                client,
                takeover,
            })
            .await
        };
        let response = call.await.unwrap_or_else(ApiError::into_response);
        if changes && route.path.starts_with("/api/v1/vms") {
            self.state.vm_list.changed();
        }
        if let Some(caller) = changed_by {
            let change = Change {
                operation: route.operation,
                target: path,
                status: response.status(),
                client: client.ip(),
            };
            if let Err(error) = self.state.authority.record_change(&caller, &change).await {
                eprintln!(
                    "mfv-web: the audit log did not take {} {path} by {}: {}",
                    method, caller.username, error.body.message
                );
            }
        }
        self.state
            .http_metrics
            .record(route.operation, response.status(), started.elapsed());
        response
    }

    /// The route for `method` at `path`, with the path's parameters; otherwise the methods
    /// the path takes (none: nothing is served there).
    fn route(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(&Route, super::path::PathParams), Vec<&str>> {
        let mut allowed = Vec::new();
        for (position, params) in self.index.matching(path) {
            let Some(route) = self.routes.get(position) else {
                continue;
            };
            if route.method == *method {
                return Ok((route, params));
            }
            allowed.push(route.method.as_str());
        }
        Err(allowed)
    }
}

/// The routes whose changes the authority audits itself (logins, users, tokens, sessions),
/// by path prefix; the dispatcher audits every other change.
const AUDITED_BY_THE_AUTHORITY: [&str; 3] = ["/api/v1/session", "/api/v1/users", "/api/v1/tokens"];

/// Whether the dispatcher writes `route`'s changes to the audit log: every change but those
/// the authority audits itself and the chunks of an upload (its creation is audited).
fn audited_here(route: &Route) -> bool {
    !route.streams()
        && !AUDITED_BY_THE_AUTHORITY
            .iter()
            .any(|prefix| route.path.starts_with(prefix))
}

/// Refuses a caller the route's access does not admit.
fn check_access(route: &Route, caller: Option<&Caller>) -> Result<(), ApiError> {
    let needs = match route.access {
        Access::Anyone => return Ok(()),
        Access::SignedIn => None,
        Access::Allowed(permission) => Some(permission),
    };
    let Some(caller) = caller else {
        return Err(ApiError::unauthenticated(
            "sign in first (POST /api/v1/session) or send an API token as \
             \"Authorization: Bearer ...\"",
        ));
    };
    match needs {
        Some(permission) if !caller.role.allows(permission) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role does not allow {}: ask an administrator",
                caller.role.as_str(),
                permission.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses a change made with the session cookie that does not carry the session's CSRF
/// token or comes from another site's page. Token callers send no cookie a page could
/// borrow, and a request without credentials has nothing to borrow.
fn check_csrf(headers: &HeaderMap, session: Option<&str>) -> Result<(), ApiError> {
    if !crate::request::same_origin(headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "this request came from another site's page; use the host's own pages",
        ));
    }
    let Some(session) = session else {
        return Ok(());
    };
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if mfv_auth::constant_time_eq(presented.as_bytes(), csrf_token(session).as_bytes()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        format!(
            "a change made with the session cookie needs the session's CSRF token in the \
             {CSRF_HEADER} header (the login's answer and GET /api/v1/session give it)"
        ),
    ))
}

/// The refusal of a body larger than `route` takes.
fn too_large(route: &Route) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        if route.max_body == 0 {
            format!("{} {} takes no body", route.method, route.path)
        } else {
            format!(
                "{} {} takes a body of {} KiB at most",
                route.method,
                route.path,
                route.max_body / 1024
            )
        },
    )
}

/// Refuses a body whose declared length is more than `route` takes.
fn check_declared_length(route: &Route, headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > route.max_body) {
        return Err(too_large(route));
    }
    Ok(())
}

fn unreadable(error: &warp::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("the body could not be read: {error}"),
    )
}

/// The body as a stream of its pieces, ending with `413` once it passes the route's limit:
/// only the piece in hand is held in memory.
fn stream_body<B: Buf + Send + 'static>(
    route: &Route,
    headers: &HeaderMap,
    body: impl Stream<Item = Result<B, warp::Error>> + Unpin + Send + 'static,
) -> Result<BodyStream, ApiError> {
    check_declared_length(route, headers)?;
    let refusal = too_large(route);
    let limit = route.max_body;
    let mut seen = 0usize;
    let pieces = body.map(move |piece| {
        let mut piece = piece.map_err(|error| unreadable(&error))?;
        seen = seen.saturating_add(piece.remaining());
        if seen > limit {
            return Err(refusal.clone());
        }
        Ok(piece.copy_to_bytes(piece.remaining()))
    });
    Ok(BodyStream::new(pieces))
}

/// The body, refused when it is larger than the route takes or is not JSON.
async fn read_body<B: Buf>(
    route: &Route,
    headers: &HeaderMap,
    mut body: impl Stream<Item = Result<B, warp::Error>> + Unpin,
) -> Result<Bytes, ApiError> {
    check_declared_length(route, headers)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|error| unreadable(&error))?;
        if bytes.len() + chunk.remaining() > route.max_body {
            return Err(too_large(route));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let taken = part.len();
            chunk.advance(taken);
        }
    }
    if !bytes.is_empty() {
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with \"Content-Type: application/json\"",
            ));
        }
    }
    Ok(Bytes::from(bytes))
}

/// The answer when no route takes `method` at `path`: `404`, or `405` naming the methods
/// the path takes in the message and the `Allow` header.
fn no_route(method: &Method, path: &str, allowed: &[&str]) -> Response {
    if allowed.is_empty() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("nothing is served at {path}; GET /api/v1/openapi.json lists the API"),
        )
        .into_response();
    }
    let refusal = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{path} takes {}, not {method}", allowed.join(", ")),
    );
    with_allow(refusal.into_response(), allowed)
}

/// `response` with an `Allow` header naming `methods`.
fn with_allow(mut response: Response, methods: &[&str]) -> Response {
    if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::table::{HandlerFuture, LARGEST_BUFFERED_BODY};

    fn refuse(_: Call) -> HandlerFuture {
        Box::pin(async { Err(ApiError::not_found("not called")) })
    }

    #[tokio::test]
    async fn a_streamed_body_passes_piece_by_piece_and_ends_with_413_past_the_limit() {
        let route = Route {
            method: Method::PUT,
            path: "/api/v1/x",
            access: Access::Anyone,
            max_body: LARGEST_BUFFERED_BODY + 1,
            query: &[],
            request: None,
            answer: crate::api::doc::Answer::Ok(crate::api::doc::schema::<crate::api::doc::Done>),
            operation: "x",
            summary: "x",
            handler: refuse,
        };
        assert!(route.streams());
        let pieces = || {
            futures_util::stream::iter([
                Ok::<Bytes, warp::Error>(Bytes::from(vec![1; LARGEST_BUFFERED_BODY])),
                Ok(Bytes::from_static(b"ab")),
            ])
        };
        let mut stream = stream_body(&route, &HeaderMap::new(), pieces()).unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap().len(),
            LARGEST_BUFFERED_BODY
        );
        let past = stream.next().await.unwrap().unwrap_err();
        assert_eq!(past.status, StatusCode::PAYLOAD_TOO_LARGE);

        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from(LARGEST_BUFFERED_BODY + 2));
        let refused = stream_body(&route, &declared, pieces())
            .map(drop)
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
