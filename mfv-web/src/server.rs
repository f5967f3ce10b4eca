//! The connections: TLS on the HTTPS listener, a redirect on the plain HTTP one, and the
//! limits that keep a slow or hostile client from tying the server up.
//!
//! A third listener exists for `cargo xtask bench web` only (`mfv-web --dev --bench-http`): it
//! serves the same routes over plain HTTP, so that the server can be measured on the same
//! protocol as a plain-HTTP reference server; nothing else opens it.
//!
//! warp writes the routes; the accept loop is ours rather than warp's, because the limits an
//! appliance on an open network needs sit below the routes: a TLS handshake and a request
//! head must arrive within a deadline, a request must be answered within one, and only so
//! many connections are served at once (others are closed at once). Every response, the
//! routes' own and the refusals, leaves with the security headers of [`crate::reply`].
//!
//! Shutdown is graceful: the listeners close, each open connection finishes the request it
//! is serving and closes, and after the grace period whatever is left is dropped. A
//! connection closes by lingering, as nginx does, so that an answer given before the
//! request's body was read reaches a client that is still sending it.
//!
//! A route may take its connection over (the browser consoles' websockets, through hyper's
//! upgrades). An upgraded connection leaves the connection count, which is for requests, and
//! takes a place among [`Limits::upgraded`] instead ([`Upgrades`]); it is told when the
//! server shuts down and closes within the grace period like the others. hyper-util's
//! `GracefulShutdown` does not watch upgradeable connections, so each connection watches
//! the server's shutdown itself, and the server waits for the places of both kinds to come
//! back.

mod lingering;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use warp::http::{Request, StatusCode};

use crate::reply::{ErrorBody, error_response, with_security_headers};
use lingering::Lingering;

/// How long each step may take and how many connections are served at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the TCP connection to the end of the TLS handshake.
    pub handshake: Duration,
    /// For a request's head (request line and headers) to arrive once the server waits for
    /// one, also between requests on a kept-alive connection.
    pub request_head: Duration,
    /// From a request's head to its response's head, for a request without a body; a body
    /// adds the time its length takes at [`Limits::min_body_rate`].
    pub response: Duration,
    /// The slowest a declared body is expected to arrive, bytes per second: an image chunk
    /// of 64 MiB gets 4 minutes more at 256 KiB/s. Only routes that stream their body read
    /// one that large, after they checked the caller.
    pub min_body_rate: u64,
    /// Connections served at once, HTTPS and HTTP together.
    pub connections: usize,
    /// Upgraded connections (the consoles' websockets) open at once; they do not count
    /// among [`Limits::connections`].
    pub upgraded: usize,
    /// After shutdown began, how long open connections may take to finish.
    pub shutdown_grace: Duration,
    /// How long a closing connection reads away what the client still sends, so that the
    /// client reads the answer rather than a reset.
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            request_head: Duration::from_secs(10),
            response: Duration::from_secs(60),
            min_body_rate: 256 * 1024,
            connections: 256,
            upgraded: 64,
            shutdown_grace: Duration::from_secs(5),
            linger: Duration::from_secs(5),
        }
    }
}

/// The address of the client a request came from, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The places of upgraded connections and the server's shutdown, in each request's
/// extensions for the routes that take their connection over.
#[derive(Debug, Clone)]
pub struct Upgrades {
    places: Arc<Semaphore>,
    limit: usize,
    stopping: watch::Receiver<bool>,
}

impl Upgrades {
    /// `limit` places, and a sender that tells their holders the server is shutting down.
    fn new(limit: usize) -> (Upgrades, watch::Sender<bool>) {
        let (stop, stopping) = watch::channel(false);
        let upgrades = Upgrades {
            places: Arc::new(Semaphore::new(limit)),
            limit,
            stopping,
        };
        (upgrades, stop)
    }

    /// A place for one more upgraded connection; `None` when all are taken.
    pub fn claim(&self) -> Option<UpgradePlace> {
        let permit = Arc::clone(&self.places).try_acquire_owned().ok()?;
        Some(UpgradePlace {
            _permit: permit,
            stopping: self.stopping.clone(),
        })
    }

    /// How many upgraded connections may be open at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits until every place is back (all upgraded connections closed).
    async fn all_back(&self) {
        let all = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let _ = self.places.acquire_many(all).await;
    }
}

/// A place taken by one upgraded connection, given back when dropped.
#[derive(Debug)]
pub struct UpgradePlace {
    _permit: OwnedSemaphorePermit,
    stopping: watch::Receiver<bool>,
}

impl UpgradePlace {
    /// Completes when the server begins to shut down: the connection should close.
    pub async fn stopping(&mut self) {
        // A closed channel means the server is gone: stopping as well.
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }
}

/// The listening sockets.
#[derive(Debug)]
pub struct Listeners {
    /// HTTPS.
    pub https: TcpListener,
    /// Plain HTTP, answered with a redirect to HTTPS; none when the host serves only HTTPS.
    pub http: Option<TcpListener>,
    /// Benchmark only: the routes themselves over plain HTTP, without TLS or redirect.
    pub bench_http: Option<TcpListener>,
}

/// How a connection is served, by the listener it came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    /// The routes over TLS.
    Tls,
    /// A redirect to HTTPS.
    Redirect,
    /// The routes over plain HTTP (benchmark only).
    BenchPlain,
}

/// What serves a request: warp's routes as a service ([`warp::service`]).
pub trait Routes:
    Service<
        Request<Incoming>,
        Response = warp::reply::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Routes for S where
    S: Service<
            Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Serves `routes` over TLS (`tls`) on `listeners.https` (and over plain HTTP on
/// `listeners.bench_http`), and redirects plain HTTP on `listeners.http` to it, until
/// `shutdown` completes; then shuts down gracefully. Returns when every connection is closed
/// or the grace period is over.
pub async fn serve(
    listeners: Listeners,
    tls: Arc<rustls::ServerConfig>,
    routes: impl Routes,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let https_port = listeners
        .https
        .local_addr()
        .map(|address| address.port())
        .unwrap_or(443);
    let slots = Arc::new(Semaphore::new(limits.connections));
    let (upgrades, stop) = Upgrades::new(limits.upgraded);
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_head)
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let (accepted, served) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listeners.https.accept() => (accepted, Served::Tls),
            accepted = accept_plain(listeners.http.as_ref()) => (accepted, Served::Redirect),
            accepted = accept_plain(listeners.bench_http.as_ref()) => {
                (accepted, Served::BenchPlain)
            }
        };
        let Ok((stream, client)) = accepted else {
            continue;
        };
        // Over the limit the connection is closed at once: a queue would only keep more
        // sockets open for whoever is flooding.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stream = Lingering::new(stream, limits.linger);
        let stopping = stop.subscribe();
        let http1 = http1.clone();
        match served {
            Served::Tls => {
                let acceptor = acceptor.clone();
                let service = answering(routes.clone(), client, limits, upgrades.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.handshake, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    serve_connection(&http1, TokioIo::new(stream), service, stopping).await;
                });
            }
            Served::BenchPlain => {
                let service = answering(routes.clone(), client, limits, upgrades.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    serve_connection(&http1, TokioIo::new(stream), service, stopping).await;
                });
            }
            Served::Redirect => {
                tokio::spawn(async move {
                    let _slot = slot;
                    let service = service_fn(move |request: Request<Incoming>| async move {
                        Ok::<_, Infallible>(redirect_to_https(&request, https_port))
                    });
                    serve_connection(&http1, TokioIo::new(stream), service, stopping).await;
                });
            }
        }
    }
    drop(listeners);
    let _ = stop.send(true);
    let every_connection = u32::try_from(limits.connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.shutdown_grace, async {
        let _ = slots.acquire_many(every_connection).await;
        upgrades.all_back().await;
    })
    .await;
}

/// Serves one connection with `service`, upgrades allowed, until it closes; once
/// `stopping` turns true, it finishes the request in progress and closes.
async fn serve_connection<I, S, B>(
    http1: &http1::Builder,
    io: I,
    service: S,
    mut stopping: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http1.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.wait_for(|stopping| *stopping) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// The service answering one connection's requests from `client` with `routes`: the
/// client's address in each request's extensions, the response deadline, the security
/// headers.
fn answering(
    routes: impl Routes,
    client: SocketAddr,
    limits: Limits,
    upgrades: Upgrades,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = warp::reply::Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ClientAddr(client));
        request.extensions_mut().insert(upgrades.clone());
        let deadline = limits.response + body_time(&request, limits.min_body_rate);
        let answer = routes.clone().call(request);
        async move {
            let response = match tokio::time::timeout(deadline, answer).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ErrorBody::new(
                        "timeout",
                        format!(
                            "the host did not answer within {} s; try again",
                            deadline.as_secs()
                        ),
                    ),
                ),
            };
            Ok::<_, Infallible>(with_security_headers(response))
        }
    })
}

/// How long the body `request` declares takes at `rate` bytes per second (nothing without a
/// `Content-Length`).
fn body_time<B>(request: &Request<B>, rate: u64) -> Duration {
    let length = request
        .headers()
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(length / rate.max(1))
}

/// The next connection on an optional plain HTTP listener; never, without one.
async fn accept_plain(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// A permanent redirect of `request` to the same host and path over HTTPS on `https_port`.
/// The host comes from the request's `Host` header when it is a plain host name or address;
/// otherwise the client is told to use HTTPS without a link.
fn redirect_to_https(request: &Request<Incoming>, https_port: u16) -> warp::reply::Response {
    let host = request
        .headers()
        .get(warp::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(host_without_port);
    let Some(host) = host else {
        return with_security_headers(error_response(
            StatusCode::BAD_REQUEST,
            &ErrorBody::new(
                "https_required",
                "this server answers over HTTPS only: use an https:// address",
            ),
        ));
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let location = format!("https://{host}{port}{path}");
    let mut response = warp::reply::Response::default();
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = warp::http::HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(warp::http::header::LOCATION, value);
    }
    with_security_headers(response)
}

/// The host of a `Host` header without its port, if it is a host name, an IPv4 address or a
/// bracketed IPv6 address, and nothing else.
fn host_without_port(header: &str) -> Option<&str> {
    let host = if let Some(rest) = header.strip_prefix('[') {
        let end = rest.find(']')?;
        let inside = &rest[..end];
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        &header[..end + 2]
    } else {
        header.split(':').next()?
    };
    let plain = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-')));
    plain.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_body_adds_the_time_it_takes_at_the_slowest_rate() {
        let with_length = |length: &str| {
            Request::builder()
                .header(warp::http::header::CONTENT_LENGTH, length)
                .body(())
                .unwrap()
        };
        let rate = Limits::default().min_body_rate;
        assert_eq!(
            body_time(&with_length("67108864"), rate),
            Duration::from_secs(256)
        );
        assert_eq!(body_time(&with_length("1000"), rate), Duration::ZERO);
        assert_eq!(body_time(&with_length("lots"), rate), Duration::ZERO);
        assert_eq!(body_time(&Request::new(()), rate), Duration::ZERO);
    }

    #[test]
    fn only_plain_hosts_are_taken_from_the_host_header() {
        for (header, host) in [
            ("vmhost", Some("vmhost")),
            ("vmhost.example:80", Some("vmhost.example")),
            ("192.0.2.7:8080", Some("192.0.2.7")),
            ("[2001:db8::1]:80", Some("[2001:db8::1]")),
            ("[2001:db8::1]", Some("[2001:db8::1]")),
            ("[nonsense]", None),
            ("evil.example/path", None),
            ("a b", None),
            ("", None),
            ("x\u{e9}", None),
        ] {
            assert_eq!(host_without_port(header), host, "{header:?}");
        }
    }
}
