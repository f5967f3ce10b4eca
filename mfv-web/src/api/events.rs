//! Server-sent events: a page learns that a VM started or a task moved on without polling
//! the lists.
//!
//! `GET /api/v1/events` answers a `text/event-stream` that stays open. Events are `vm` (a
//! VM's name, state and why it changed), `task` (a task as `GET /api/v1/tasks/{id}` shows
//! it, each time it starts, reports progress or ends), `lagged` (events were lost: re-read
//! the lists) and `end` (the caller's session or token ended; the stream closes). Each has
//! an `id:`, increasing across the server; a reconnecting client is not sent what it
//! missed, it re-reads the lists. A `: keepalive` comment every [`KEEPALIVE`] keeps
//! proxies from closing a quiet stream.
//!
//! Why one hub: every stream subscribes to one tokio broadcast channel ([`EventHub`]), so
//! a task or a VM change is published once whatever the number of listeners, and a
//! listener that falls more than [`CHANNEL_CAPACITY`] events behind loses the oldest (and
//! is told so with `lagged`) instead of holding memory for them.
//!
//! VM changes come from one watcher per server, not one per stream: a thread started when
//! the first stream opens, comparing libvirt's listings every [`VM_POLL`]
//! ([`mfv_vm::LifecycleEvents`]; the binding has no event callbacks). It stops when no
//! stream listens and starts again with the next one. A stream's answer waits until the
//! watcher has its first listing, so every change made after a client got the answer's
//! head is sent.
//!
//! A stream outlives any single check of its caller, so it checks again every
//! [`SESSION_RECHECK`] as the dispatcher would, and ends with an `end` event when the
//! session was ended or revoked, the token revoked or the user's role no longer lets them
//! see VMs. The server's answer deadline ([`crate::server::Limits::response`]) bounds the
//! time to the answer's head only, so it does not cut a stream.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::body::Bytes;
use mfv_auth::Permission;
use mfv_vm::{Hypervisor, LifecycleEvent, VmState};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use warp::Reply;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use warp::http::{HeaderMap, Method};

use super::doc::Answer;
use super::session_checks::SESSION_RECHECK;
use super::table::{Access, Call, HandlerFuture, Route};
use super::{ApiError, ApiState};

/// The event a task's change is sent as.
pub const TASK_EVENT: &str = "task";

/// The event a VM's change is sent as.
pub const VM_EVENT: &str = "vm";

/// How many events a listener may fall behind before it loses the oldest.
pub const CHANNEL_CAPACITY: usize = 256;

/// How long a stream may stay quiet before a `: keepalive` comment is sent.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// How often the watcher compares libvirt's listings.
pub const VM_POLL: Duration = Duration::from_secs(1);

/// How long the watcher waits before reconnecting to libvirt after a failure.
const VM_RETRY: Duration = Duration::from_secs(5);

/// How long a stream's answer waits for the watcher's first listing.
const WATCHER_START: Duration = Duration::from_secs(10);

/// How long a client may take to accept one event before its stream is closed: a client
/// that stopped reading does not keep a connection and a task forever.
const STALLED: Duration = Duration::from_secs(60);

/// Events waiting to be written to one client's connection.
const CLIENT_BUFFER: usize = 16;

/// One event as sent: its id, its name and its data as JSON text.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// Increasing across the server.
    pub id: u64,
    /// `vm`, `task`, `lagged` or `end`.
    pub kind: &'static str,
    /// The data, JSON on one line.
    pub data: Arc<str>,
}

impl ServerEvent {
    /// The event in the `text/event-stream` format.
    fn to_bytes(&self) -> Bytes {
        Bytes::from(format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            self.id, self.kind, self.data
        ))
    }
}

/// Whether the VM watcher runs, and whether it has its first listing.
#[derive(Debug, Default)]
struct Watcher {
    running: bool,
    ready: Option<watch::Receiver<bool>>,
}

#[derive(Debug)]
struct Hub {
    sender: broadcast::Sender<ServerEvent>,
    next_id: Mutex<u64>,
    watcher: Mutex<Watcher>,
}

/// Where events are published and streams subscribe. Cheap to clone: clones share it.
#[derive(Debug, Clone)]
pub struct EventHub {
    hub: Arc<Hub>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            hub: Arc::new(Hub {
                sender: broadcast::channel(CHANNEL_CAPACITY).0,
                next_id: Mutex::new(0),
                watcher: Mutex::new(Watcher::default()),
            }),
        }
    }
}

impl EventHub {
    /// Sends `data` as a `kind` event to every stream (none listening: nothing is kept).
    pub fn publish(&self, kind: &'static str, data: &impl Serialize) {
        let data = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
        let mut next_id = lock(&self.hub.next_id);
        *next_id += 1;
        // Sent under the lock so that ids leave in increasing order.
        let _ = self.hub.sender.send(ServerEvent {
            id: *next_id,
            kind,
            data: data.into(),
        });
    }

    /// The id of the last event sent: when it moves, a VM or a task changed.
    pub(crate) fn last_id(&self) -> u64 {
        *lock(&self.hub.next_id)
    }

    /// An event for one stream only, with an id from the same sequence.
    fn private(&self, kind: &'static str, data: &serde_json::Value) -> ServerEvent {
        let mut next_id = lock(&self.hub.next_id);
        *next_id += 1;
        ServerEvent {
            id: *next_id,
            kind,
            data: data.to_string().into(),
        }
    }

    /// A new listener, with the VM watcher of `libvirt` started if it is not running; and
    /// what tells when the watcher has its first listing (`None` without libvirt).
    pub(crate) fn subscribe(
        &self,
        libvirt: Option<&str>,
    ) -> (
        broadcast::Receiver<ServerEvent>,
        Option<watch::Receiver<bool>>,
    ) {
        let mut watcher = lock(&self.hub.watcher);
        // Subscribed under the watcher's lock: a watcher deciding to stop for lack of
        // listeners decides under it too, so it never stops right after this listener came.
        let receiver = self.hub.sender.subscribe();
        let Some(uri) = libvirt else {
            return (receiver, None);
        };
        if !watcher.running {
            let (ready, readiness) = watch::channel(false);
            let hub = self.clone();
            let uri = uri.to_owned();
            let started = std::thread::Builder::new()
                .name("mfv-vm-events".to_owned())
                .spawn(move || hub.watch_vms(&uri, &ready));
            match started {
                Ok(_) => {
                    watcher.running = true;
                    watcher.ready = Some(readiness);
                }
                Err(error) => {
                    eprintln!("mfv-web: cannot start the VM event watcher: {error}");
                    return (receiver, None);
                }
            }
        }
        (receiver, watcher.ready.clone())
    }

    /// Whether the watcher should stop because no stream listens; if so it is marked
    /// stopped, under the lock [`EventHub::subscribe`] takes.
    fn unheard(&self) -> bool {
        let mut watcher = lock(&self.hub.watcher);
        if self.hub.sender.receiver_count() > 0 {
            return false;
        }
        watcher.running = false;
        watcher.ready = None;
        true
    }

    /// The watcher: publishes every VM change seen on `uri` while anyone listens. Marks
    /// `ready` once it has its first listing or failed to get one (streams then answer,
    /// with task events only until libvirt is back).
    fn watch_vms(&self, uri: &str, ready: &watch::Sender<bool>) {
        let mut missed = false;
        loop {
            if self.unheard() {
                return;
            }
            match Hypervisor::connect(uri) {
                Ok(hypervisor) => {
                    let mut changes = hypervisor.lifecycle_events(VM_POLL);
                    // The first listing reports every VM: it is what later ones compare with.
                    let primed = loop {
                        match changes.next_within(Duration::ZERO) {
                            Ok(Some(_)) => {}
                            Ok(None) => break Ok(()),
                            Err(error) => break Err(error),
                        }
                    };
                    match primed {
                        Ok(()) => {
                            ready.send_replace(true);
                            if missed {
                                self.publish(
                                    "lagged",
                                    &json!({
                                        "message": "VM states were not watched for a while \
                                                    (libvirt did not answer): re-read \
                                                    GET /api/v1/vms"
                                    }),
                                );
                            }
                            let failed = loop {
                                if self.unheard() {
                                    return;
                                }
                                match changes.next_within(Duration::ZERO) {
                                    Ok(Some(change)) => {
                                        self.publish(VM_EVENT, &VmEvent::of(&change))
                                    }
                                    Ok(None) => std::thread::sleep(VM_POLL),
                                    Err(error) => break error,
                                }
                            };
                            eprintln!(
                                "mfv-web: watching VM states: {}",
                                mfv_linux::error_chain(&failed)
                            );
                        }
                        Err(error) => eprintln!(
                            "mfv-web: watching VM states: {}",
                            mfv_linux::error_chain(&error)
                        ),
                    }
                }
                Err(error) => eprintln!(
                    "mfv-web: watching VM states: {}",
                    mfv_linux::error_chain(&error)
                ),
            }
            ready.send_replace(true);
            missed = true;
            std::thread::sleep(VM_RETRY);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A VM's change as sent: its name, its state now (`null` once undefined), the state
/// before (`null` when it was just defined) and the change in a word.
#[derive(Debug, Serialize)]
struct VmEvent<'a> {
    name: &'a str,
    state: Option<VmState>,
    previous: Option<VmState>,
    reason: &'static str,
}

impl<'a> VmEvent<'a> {
    fn of(change: &'a LifecycleEvent) -> Self {
        let reason = match (change.from, change.to) {
            (None, _) => "defined",
            (_, None) => "undefined",
            (Some(VmState::Paused), Some(VmState::Running)) => "resumed",
            (_, Some(VmState::Running)) => "started",
            (_, Some(VmState::Paused)) => "paused",
            (_, Some(VmState::ShuttingDown)) => "shutting_down",
            (_, Some(VmState::ShutOff)) => "stopped",
            (_, Some(VmState::Crashed)) => "crashed",
            (_, Some(VmState::PmSuspended)) => "pm_suspended",
            (_, Some(VmState::Unknown)) => "changed",
        };
        VmEvent {
            name: &change.name,
            state: change.to,
            previous: change.from,
            reason,
        }
    }
}

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::GET,
        path: "/api/v1/events",
        access: Access::Allowed(Permission::ViewInventory),
        max_body: 0,
        query: &[],
        request: None,
        answer: Answer::Events,
        operation: "stream_events",
        summary: "Server-sent events (text/event-stream): vm state changes, task updates, \
                  lagged (re-read the lists) and end (the session or token ended)",
        handler: stream,
    }]
}

fn stream(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let libvirt = call.state.libvirt.as_ref().map(|uri| uri.0.as_str());
        let (events, ready) = call.state.events.subscribe(libvirt);
        if let Some(mut ready) = ready {
            let _ = tokio::time::timeout(WATCHER_START, ready.wait_for(|ready| *ready)).await;
        }
        let (sender, mut receiver) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
        tokio::spawn(pump(
            Arc::clone(&call.state),
            call.headers,
            events,
            sender,
            libvirt.is_some(),
        ));
        let body = futures_util::stream::poll_fn(move |context| {
            receiver
                .poll_recv(context)
                .map(|chunk| chunk.map(Ok::<Bytes, Infallible>))
        });
        let mut response = warp::reply::stream(body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // Proxies such as nginx would otherwise hold events back in their buffers.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    })
}

/// Writes one client's stream: a `ready` event, then every event, keepalives when quiet,
/// until the client goes, stops reading, or its caller no longer passes.
async fn pump(
    state: Arc<ApiState>,
    headers: HeaderMap,
    mut events: broadcast::Receiver<ServerEvent>,
    out: mpsc::Sender<Bytes>,
    vm_events: bool,
) {
    let hub = state.events.clone();
    let hello = hub.private("ready", &json!({ "vm_events": vm_events }));
    if out.send(hello.to_bytes()).await.is_err() {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval_at(start + KEEPALIVE, KEEPALIVE);
    let mut recheck = tokio::time::interval_at(start + SESSION_RECHECK, SESSION_RECHECK);
    loop {
        let (chunk, last) = tokio::select! {
            () = out.closed() => return,
            _ = keepalive.tick() => (Bytes::from_static(b": keepalive\n\n"), false),
            _ = recheck.tick() => match still_allowed(&state, &headers).await {
                Ok(()) => continue,
                Err(error) => {
                    let body = serde_json::to_value(&error.body).unwrap_or_default();
                    (hub.private("end", &body).to_bytes(), true)
                }
            },
            received = events.recv() => match received {
                Ok(event) => {
                    keepalive.reset();
                    (event.to_bytes(), false)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let lagged = hub.private(
                        "lagged",
                        &json!({
                            "missed": missed,
                            "message": "this stream fell behind and lost events: re-read \
                                        GET /api/v1/vms and GET /api/v1/tasks",
                        }),
                    );
                    (lagged.to_bytes(), false)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        match tokio::time::timeout(STALLED, out.send(chunk)).await {
            Ok(Ok(())) if !last => {}
            _ => return,
        }
    }
}

/// Whether the stream's caller still passes the checks the dispatcher made when it opened.
async fn still_allowed(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    match state.caller(headers).await? {
        (Some(caller), _) if caller.role.allows(Permission::ViewInventory) => Ok(()),
        (Some(caller), _) => Err(ApiError::new(
            warp::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role no longer allows {}",
                caller.role.as_str(),
                Permission::ViewInventory.as_str()
            ),
        )),
        (None, _) => Err(ApiError::unauthenticated(
            "the stream's credentials are gone",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_changes_are_named_by_what_happened() {
        let change = |from, to| LifecycleEvent {
            name: "web-1".into(),
            from,
            to,
        };
        for (from, to, reason) in [
            (None, Some(VmState::ShutOff), "defined"),
            (Some(VmState::ShutOff), None, "undefined"),
            (Some(VmState::ShutOff), Some(VmState::Running), "started"),
            (Some(VmState::Paused), Some(VmState::Running), "resumed"),
            (Some(VmState::Running), Some(VmState::Paused), "paused"),
            (Some(VmState::Running), Some(VmState::ShutOff), "stopped"),
            (Some(VmState::Running), Some(VmState::Crashed), "crashed"),
        ] {
            let change = change(from, to);
            let event = serde_json::to_value(VmEvent::of(&change)).unwrap();
            assert_eq!(event["reason"], reason, "{from:?} -> {to:?}");
            assert_eq!(event["name"], "web-1");
        }
        let started = change(Some(VmState::ShutOff), Some(VmState::Running));
        let event = serde_json::to_value(VmEvent::of(&started)).unwrap();
        assert_eq!(event["state"], "running");
        assert_eq!(event["previous"], "shut_off");
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_loses_the_oldest_events_not_memory() {
        let hub = EventHub::default();
        let (mut listener, ready) = hub.subscribe(None);
        assert!(ready.is_none(), "no watcher without libvirt");
        for index in 0..CHANNEL_CAPACITY + 10 {
            hub.publish(TASK_EVENT, &json!({ "index": index }));
        }
        assert!(matches!(
            listener.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
        let next = listener.recv().await.unwrap();
        assert_eq!(next.id, 11);
        assert_eq!(&*next.data, r#"{"index":10}"#);
        assert_eq!(
            String::from_utf8(next.to_bytes().to_vec()).unwrap(),
            "id: 11\nevent: task\ndata: {\"index\":10}\n\n"
        );
    }

    #[test]
    fn publishing_without_listeners_keeps_nothing() {
        let hub = EventHub::default();
        hub.publish(TASK_EVENT, &json!({}));
        let (mut listener, _) = hub.subscribe(None);
        hub.publish(TASK_EVENT, &json!({}));
        assert_eq!(listener.try_recv().unwrap().id, 2);
        assert!(listener.try_recv().is_err());
    }
}
