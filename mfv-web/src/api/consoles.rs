//! The browser consoles: a VM's VNC display and its serial console, each carried by a
//! websocket on the server's own HTTPS address, so that they work wherever the pages do
//! (behind a reverse proxy too) and need no VNC port, password or firewall opening.
//!
//! Why this shape: the server is unprivileged and has no VNC password, so libvirt hands it
//! a socket to the display with the display's own authentication skipped
//! (`virDomainOpenGraphicsFD`); who may use it is decided here, by the `use_console`
//! permission. A browser cannot put a custom header (the CSRF token) on a websocket, so the
//! page's `Origin` must be this host's. Both consoles are bytes both ways in binary frames
//! (noVNC speaks RFB over them; the serial page writes what it receives to its terminal),
//! and text frames typed into the serial console count as their UTF-8 bytes.
//!
//! A console stays open until one side closes it, the VM's side ends (the VM stopped,
//! another browser took the serial console over: libvirt gives a serial console to one
//! client at a time and the newest wins), the caller's session or token stops passing (it
//! is checked again every [`SESSION_RECHECK`]), or the server shuts down. Each of these
//! ends with a close frame whose code and reason say which ([`Ending`]). Each console opened
//! is written to the audit log, as who may see a VM's screen is a matter of access.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use mfv_auth::Permission;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use warp::http::header::{
    CONNECTION, HeaderValue, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use super::dispatch::ApiState;
use super::doc::Answer;
use super::session_checks::SESSION_RECHECK;
use super::table::{Call, HandlerFuture, Route};
use super::vms::{libvirt, virt_error, with_hypervisor};
use super::{ApiError, Caller, Change};
use crate::server::UpgradePlace;

/// The routes.
pub fn routes() -> Vec<Route> {
    let route = Route::allowed;
    vec![
        route(
            Method::GET,
            "/api/v1/vms/{name}/console/vnc",
            Permission::UseConsole,
            (None, Answer::Websocket),
            "open_vnc_console",
            "The running VM's VNC display as a websocket (RFB in binary frames, for noVNC); \
             no VNC password is needed",
            vnc as fn(Call) -> HandlerFuture,
        ),
        route(
            Method::GET,
            "/api/v1/vms/{name}/console/serial",
            Permission::UseConsole,
            (None, Answer::Websocket),
            "open_serial_console",
            "The running VM's serial console as a websocket (its output in binary frames; \
             text or binary frames typed in); taken over from any other client",
            serial,
        ),
    ]
}

/// The largest message a browser may send: a paste into the serial console, or an RFB
/// client message (the largest, a clipboard text, is cut by noVNC well below this).
const MAX_MESSAGE: usize = 1024 * 1024;

/// How much the VM's side is read at once.
const CHUNK: usize = 64 * 1024;

/// The bytes buffered between the serial console's threads and the websocket.
const SERIAL_BUFFER: usize = 64 * 1024;

/// How often the serial console's reader looks whether the websocket has gone.
const SERIAL_POLL: Duration = Duration::from_millis(200);

/// How long a frame may wait for the browser to take it, or bytes for the VM's side to take
/// them, before the console is given up: a stalled side must not keep the console from
/// seeing its session end or the server stop.
const STALLED: Duration = Duration::from_secs(30);

/// How often a quiet console sends a ping, so that a reverse proxy does not close it as
/// idle (nginx closes a websocket silent for 60 s by default).
const KEEPALIVE: Duration = Duration::from_secs(25);

/// How long the close frame may take to leave.
const CLOSING: Duration = Duration::from_secs(2);

fn vnc(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let opening = Opening::check(&call)?;
        let uri = libvirt(&call)?;
        let name = call.param("name").to_owned();
        let socket = with_hypervisor(uri, move |hypervisor| {
            hypervisor.open_vnc(&name).map_err(virt_error)
        })
        .await?;
        let socket = socket
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(socket))
            .map_err(|error| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the VNC display's socket could not be used: {error}"),
                )
            })?;
        Ok(opening.accept(call, socket, Console::Vnc).await)
    })
}

fn serial(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let opening = Opening::check(&call)?;
        let uri = libvirt(&call)?;
        let name = call.param("name").to_owned();
        let console = with_hypervisor(uri, move |hypervisor| {
            hypervisor.open_serial_console(&name).map_err(virt_error)
        })
        .await?;
        Ok(opening
            .accept(call, serial_pipe(console), Console::Serial)
            .await)
    })
}

/// Which console a websocket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Console {
    Vnc,
    Serial,
}

/// A websocket request that passed every check, holding its place among the upgraded
/// connections.
struct Opening {
    upgrade: hyper::upgrade::OnUpgrade,
    place: UpgradePlace,
    accept_key: String,
    binary_protocol: bool,
}

impl Opening {
    /// Checks the request's origin and websocket headers and takes a place for it: `403`
    /// for another site's page, `400` naming what a websocket request lacks, `503` when as
    /// many consoles as the server keeps are open.
    fn check(call: &Call) -> Result<Opening, ApiError> {
        check_origin(&call.headers)?;
        let headers = &call.headers;
        let has_token = |name, token: &str| {
            headers.get_all(name).iter().any(|value: &HeaderValue| {
                value.to_str().is_ok_and(|value| {
                    value
                        .split(',')
                        .any(|part| part.trim().eq_ignore_ascii_case(token))
                })
            })
        };
        let missing = |what: &str| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "a console is a websocket: the request needs {what} (open it with the \
                     browser's WebSocket, or a websocket client)"
                ),
            )
        };
        if !has_token(UPGRADE, "websocket") {
            return Err(missing("the header \"Upgrade: websocket\""));
        }
        if !has_token(CONNECTION, "upgrade") {
            return Err(missing("the header \"Connection: Upgrade\""));
        }
        if headers
            .get(SEC_WEBSOCKET_VERSION)
            .is_none_or(|version| version.as_bytes() != b"13")
        {
            return Err(missing("the header \"Sec-WebSocket-Version: 13\""));
        }
        let Some(key) = headers.get(SEC_WEBSOCKET_KEY).filter(|key| !key.is_empty()) else {
            return Err(missing("a Sec-WebSocket-Key header"));
        };
        let accept_key = derive_accept_key(key.as_bytes());
        let binary_protocol = has_token(SEC_WEBSOCKET_PROTOCOL, "binary");
        let (Some(upgrade), Some(upgrades)) = (
            call.takeover.upgrade.clone(),
            call.takeover.upgrades.as_ref(),
        ) else {
            return Err(missing("an HTTP/1.1 connection that can be upgraded"));
        };
        let Some(place) = upgrades.claim() else {
            return Err(ApiError::unavailable(format!(
                "{} consoles are open, as many as this server keeps at once: close one and \
                 try again",
                upgrades.limit()
            )));
        };
        Ok(Opening {
            upgrade,
            place,
            accept_key,
            binary_protocol,
        })
    }

    /// The `101` answer, written to the audit log; once it is sent, the connection carries
    /// `console` between the websocket and `guest` (the VM's side) until one of them ends.
    async fn accept<G>(self, call: Call, guest: G, console: Console) -> Response
    where
        G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let name = call.param("name").to_owned();
        if let Some(caller) = &call.caller {
            record_opening(&call.state, caller, &name, call.client.ip(), console).await;
        }
        let Opening {
            upgrade,
            place,
            accept_key,
            binary_protocol,
        } = self;
        let state = Arc::clone(&call.state);
        let headers = call.headers;
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else {
                return;
            };
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE));
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            bridge(socket, guest, console, place, &state, &headers).await;
        });
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let answer = response.headers_mut();
        answer.insert(UPGRADE, HeaderValue::from_static("websocket"));
        answer.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept_key) {
            answer.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        if binary_protocol {
            answer.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary"));
        }
        response
    }
}

/// Writes the opening of `console` to the audit log; a log that does not take it is said on
/// the server's error output, as the dispatcher does for other changes.
async fn record_opening(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    client: std::net::IpAddr,
    console: Console,
) {
    let (operation, kind) = match console {
        Console::Vnc => ("open_vnc_console", "vnc"),
        Console::Serial => ("open_serial_console", "serial"),
    };
    let target = format!("/api/v1/vms/{name}/console/{kind}");
    let change = Change {
        operation,
        target: &target,
        status: StatusCode::SWITCHING_PROTOCOLS,
        client,
    };
    if let Err(error) = state.authority.record_change(caller, &change).await {
        eprintln!(
            "mfv-web: the audit log did not take {operation} {target} by {}: {}",
            caller.username, error.body.message
        );
    }
}

/// Refuses a websocket opened by another site's page: a browser sends the page's `Origin`
/// with every websocket, and it must be `https://` and this request's `Host`. A client
/// that is not a browser sends none and passes (it carries no cookie by another site's
/// hand).
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if crate::request::same_origin(headers) {
        return Ok(());
    }
    let origin = headers
        .get(ORIGIN)
        .map(|origin| String::from_utf8_lossy(origin.as_bytes()).into_owned())
        .unwrap_or_default();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin",
        format!(
            "a console opened from the page at {origin:?} is refused: open it from this \
             host's own pages"
        ),
    ))
}

/// Why a console ended, as its close frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The browser closed it, or the connection broke: nothing more is sent.
    Client,
    /// The VM's side ended: `1000`, naming the console.
    Guest(Console),
    /// The caller's session or token ended, or its role no longer allows consoles: `1008`.
    Caller,
    /// The server is shutting down: `1001`.
    Shutdown,
    /// The browser sent text to the VNC display: `1003`.
    TextToVnc,
}

impl Ending {
    /// The close frame sent, none when the browser went first.
    fn frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Ending::Client => return None,
            Ending::Guest(Console::Vnc) => (
                CloseCode::Normal,
                "the VNC display closed: the VM stopped or restarted its display",
            ),
            Ending::Guest(Console::Serial) => (
                CloseCode::Normal,
                "the serial console closed: the VM stopped or another client took it over",
            ),
            Ending::Caller => (
                CloseCode::Policy,
                "the session or token ended or no longer allows consoles: sign in again",
            ),
            Ending::Shutdown => (CloseCode::Away, "the server is shutting down"),
            Ending::TextToVnc => (
                CloseCode::Unsupported,
                "the VNC console takes binary frames",
            ),
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// Carries bytes between the websocket and the VM's side until one of them ends, the
/// caller stops passing, or the server shuts down; then closes the websocket saying why.
async fn bridge<S, G>(
    mut socket: WebSocketStream<S>,
    mut guest: G,
    console: Console,
    mut place: UpgradePlace,
    state: &ApiState,
    headers: &HeaderMap,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    G: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; CHUNK];
    let start = tokio::time::Instant::now();
    let mut recheck = tokio::time::interval_at(start + SESSION_RECHECK, SESSION_RECHECK);
    let mut keepalive = tokio::time::interval_at(start + KEEPALIVE, KEEPALIVE);
    let ending = loop {
        tokio::select! {
            () = place.stopping() => break Ending::Shutdown,
            _ = recheck.tick() => {
                if !still_allowed(state, headers).await {
                    break Ending::Caller;
                }
            }
            _ = keepalive.tick() => {
                if !sent(&mut socket, Message::Ping(Bytes::new())).await {
                    break Ending::Client;
                }
            }
            read = guest.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break Ending::Guest(console),
                Ok(read) => {
                    keepalive.reset();
                    let bytes = Bytes::copy_from_slice(&buffer[..read]);
                    if !sent(&mut socket, Message::Binary(bytes)).await {
                        break Ending::Client;
                    }
                }
            },
            message = socket.next() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Text(text))) if console == Console::Serial => {
                        Bytes::from(text)
                    }
                    Some(Ok(Message::Text(_))) => break Ending::TextToVnc,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break Ending::Client,
                };
                let written = tokio::time::timeout(STALLED, guest.write_all(&bytes)).await;
                if !matches!(written, Ok(Ok(()))) {
                    break Ending::Guest(console);
                }
            }
        }
    };
    if let Some(frame) = ending.frame() {
        let _ = tokio::time::timeout(CLOSING, socket.close(Some(frame))).await;
    }
}

/// Sends `message`, unless the browser has not taken the frames before it within
/// [`STALLED`] or is gone.
async fn sent<S>(socket: &mut WebSocketStream<S>, message: Message) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    matches!(
        tokio::time::timeout(STALLED, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Whether the console's caller still passes the checks the dispatcher made when it opened.
async fn still_allowed(state: &ApiState, headers: &HeaderMap) -> bool {
    matches!(
        state.caller(headers).await,
        Ok((Some(caller), _)) if caller.role.allows(Permission::UseConsole)
    )
}

/// The serial console as an async byte pipe: a thread reads the console into it, another
/// types what comes out of it into the console. The pipe's buffer bounds what waits on
/// either side. When the console closes, the pipe ends; when the websocket's end of the
/// pipe is dropped, both threads end and the console lets go of the VM.
fn serial_pipe(console: mfv_vm::SerialConsole) -> tokio::io::DuplexStream {
    let (websocket_end, console_end) = tokio::io::duplex(SERIAL_BUFFER);
    let (mut from_browser, mut to_browser) = tokio::io::split(console_end);
    let runtime = tokio::runtime::Handle::current();
    let gone = Arc::new(AtomicBool::new(false));
    let input = console.input();
    {
        let (runtime, gone) = (runtime.clone(), Arc::clone(&gone));
        tokio::task::spawn_blocking(move || {
            let mut console = console;
            while !gone.load(Ordering::SeqCst) {
                if let Some(output) = console.next_output(SERIAL_POLL) {
                    if runtime.block_on(to_browser.write_all(&output)).is_err() {
                        break;
                    }
                } else if console.is_closed() {
                    break;
                }
            }
            let _ = runtime.block_on(to_browser.shutdown());
        });
    }
    tokio::task::spawn_blocking(move || {
        let mut typed = vec![0u8; SERIAL_BUFFER];
        loop {
            match runtime.block_on(from_browser.read(&mut typed)) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if input.send(&typed[..read]).is_err() {
                        break;
                    }
                }
            }
        }
        gone.store(true, Ordering::SeqCst);
    });
    websocket_end
}
