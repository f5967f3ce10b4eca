//! The API's test server: real HTTPS on loopback, users and API tokens in a real SQLite auth
//! database (the `--dev` authority), and the host daemon link each test file chooses.

#![allow(dead_code, reason = "each test file uses a part of it")]
#![allow(clippy::unwrap_used, reason = "test code")]

pub mod guest;
pub mod host_daemon;
pub mod pages;
pub mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mfv_auth::{Actor, Authenticator, Password, Role, UserRecord, Username};
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::web_identity::WebIdentity;
use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::api::links::{HostLink, LibvirtUri, NoHostDaemon, RestoredVms, VmCapabilities};
use mfv_web::api::{Api, ApiParts, LocalAuthority};
use mfv_web::server::{Limits, Listeners, serve};
use serde_json::json;

pub const PASSWORD: &str = "a password long enough";

/// The server on a free port, with an admin, an operator and a viewer, and a token of each.
pub struct Server {
    pub client: HttpsClient,
    /// `(role, bearer header value)`.
    pub tokens: Vec<(Role, String)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn authenticator(dir: &std::path::Path) -> Authenticator {
    AuthSettings::new()
        .with_overrides(AuthOverrides {
            database: Some(dir.join("users.sqlite")),
            ..AuthOverrides::default()
        })
        .open(MissingDatabase::Create)
        .await
        .unwrap()
}

/// The API with `authenticator`, the host daemon behind `host`, and VMs on `libvirt` if
/// given (created for TCG), restored once `restored_marker` exists if given.
pub fn api(
    authenticator: Authenticator,
    host: Arc<dyn HostLink>,
    libvirt: Option<&str>,
    restored_marker: Option<PathBuf>,
) -> Arc<Api> {
    Api::new(ApiParts {
        authority: Arc::new(LocalAuthority::new(authenticator)),
        host,
        libvirt: libvirt.map(|uri| LibvirtUri(uri.to_owned())),
        restored_vms: restored_marker.map(RestoredVms::once_marked_by),
        proc_root: std::path::PathBuf::from("/proc"),
        vm_capabilities: VmCapabilities::Fixed(mfv_vm::HostCapabilities::tcg_only()),
        upload_idle: std::time::Duration::from_secs(3),
    })
}

impl Server {
    /// The server without a host daemon or libvirt (as `--dev` runs without `--libvirt`).
    pub fn start() -> Server {
        Server::with(Arc::new(NoHostDaemon), None)
    }

    /// The server reaching the host daemon through `host`.
    pub fn with_host(host: Arc<dyn HostLink>) -> Server {
        Server::with(host, None)
    }

    /// The server with VMs on the libvirt at `uri`.
    pub fn with_libvirt(uri: &str) -> Server {
        Server::with(Arc::new(NoHostDaemon), Some(uri))
    }

    /// The server reaching the host daemon through `host` and libvirt at `libvirt`.
    pub fn with(host: Arc<dyn HostLink>, libvirt: Option<&str>) -> Server {
        Server::serving(host, libvirt, None, false, Limits::default())
    }

    /// The whole site with VMs on the libvirt at `uri`, restored once `marker` exists, as
    /// the appliance's VM keeper marks them.
    pub fn with_vms_restored_once(uri: &str, marker: PathBuf) -> Server {
        Server::serving(
            Arc::new(NoHostDaemon),
            Some(uri),
            Some(marker),
            true,
            Limits::default(),
        )
    }

    /// [`Server::with`], serving within `limits`.
    pub fn with_limits(host: Arc<dyn HostLink>, libvirt: Option<&str>, limits: Limits) -> Server {
        Server::serving(host, libvirt, None, false, limits)
    }

    /// The whole site, the web pages beside the API ([`mfv_web::ui::site`]), reaching the host
    /// daemon through `host` and libvirt at `libvirt`.
    pub fn site(host: Arc<dyn HostLink>, libvirt: Option<&str>) -> Server {
        Server::serving(host, libvirt, None, true, Limits::default())
    }

    /// The API alone, or with the pages when `pages`, within `limits`.
    fn serving(
        host: Arc<dyn HostLink>,
        libvirt: Option<&str>,
        restored_marker: Option<PathBuf>,
        pages: bool,
        limits: Limits,
    ) -> Server {
        let libvirt = libvirt.map(str::to_owned);
        let dir = tempfile::tempdir().unwrap();
        let setup = runtime();
        let tokens = setup.block_on(async {
            let auth = authenticator(dir.path()).await;
            let mut tokens = Vec::new();
            for (name, role) in [
                ("ada", Role::Admin),
                ("otto", Role::Operator),
                ("vera", Role::Viewer),
            ] {
                let username = Username::new(name).unwrap();
                let record = UserRecord {
                    username: username.clone(),
                    display_name: String::new(),
                    role,
                    disabled: false,
                    account_id: None,
                };
                auth.add_user(&Actor::Local, &record, &Password::new(PASSWORD).unwrap())
                    .await
                    .unwrap();
                let token = auth
                    .create_api_token(
                        &Actor::Local,
                        &username,
                        "tests",
                        role,
                        Duration::from_secs(3600),
                    )
                    .await
                    .unwrap();
                tokens.push((role, format!("Bearer {}", token.secret.expose())));
            }
            tokens
        });
        drop(setup);
        let identity = WebIdentity::generate("vmhost").unwrap();
        let tls = mfv_web::tls::server_config_for(&identity).unwrap();
        let https = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = https.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let database = dir.path().to_owned();
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let api = api(
                    authenticator(&database).await,
                    host,
                    libvirt.as_deref(),
                    restored_marker,
                );
                https.set_nonblocking(true).unwrap();
                let listeners = Listeners {
                    https: tokio::net::TcpListener::from_std(https).unwrap(),
                    http: None,
                    bench_http: None,
                };
                let routes = if pages {
                    mfv_web::ui::site(api)
                } else {
                    warp::Filter::boxed(mfv_web::api::routes(api))
                };
                serve(listeners, tls, warp::service(routes), limits, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        Server {
            client: HttpsClient::new(address, "vmhost").unwrap(),
            tokens,
            stop: Some(stop),
            thread: Some(thread),
            dir,
        }
    }

    pub fn token(&self, role: Role) -> &str {
        &self
            .tokens
            .iter()
            .find(|(have, _)| *have == role)
            .unwrap()
            .1
    }

    /// Logs `username` in; the answer and the cookie (`name=value`).
    pub fn login(&self, username: &str, password: &str) -> (HttpResponse, Option<String>) {
        let answer = self
            .client
            .post_json(
                "/api/v1/session",
                &[],
                &json!({"username": username, "password": password}),
            )
            .unwrap();
        let cookie = answer
            .header("set-cookie")
            .and_then(|cookie| cookie.split(';').next())
            .map(str::to_owned);
        (answer, cookie)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// `method path` with `role`'s API token, and `body` as JSON.
pub fn send(
    server: &Server,
    role: Role,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> HttpResponse {
    server.call(server.token(role), method, path, body)
}

pub fn kind(response: &HttpResponse) -> String {
    response.json().unwrap()["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A signed-in browser: the session cookie and the CSRF token its changes carry.
pub struct Browser {
    /// `name=value`.
    pub cookie: String,
    /// The login's CSRF token.
    pub csrf: String,
}

impl Server {
    /// `username` signed in with `password`, or the failed login's answer.
    pub fn sign_in(&self, username: &str, password: &str) -> Result<Browser, HttpResponse> {
        let (answer, cookie) = self.login(username, password);
        if answer.status != 200 {
            return Err(answer);
        }
        let csrf = answer.json().unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned();
        Ok(Browser {
            cookie: cookie.unwrap(),
            csrf,
        })
    }

    /// `method path` with `authorization` (a bearer header value), and `body` as JSON.
    pub fn call(
        &self,
        authorization: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> HttpResponse {
        let body = body.map(|body| body.to_string());
        self.client
            .send(
                method,
                path,
                &[
                    ("authorization", authorization),
                    ("content-type", "application/json"),
                ],
                body.as_deref().map(str::as_bytes),
            )
            .unwrap()
    }

    /// Follows the task `started` answered (202, with the task's address in `location`) until
    /// it ends, as an admin, and returns it.
    pub fn finished_task(&self, started: &HttpResponse) -> serde_json::Value {
        assert_eq!(started.status, 202, "{}", started.text());
        let id = started.json().unwrap()["task"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let location = format!("/api/v1/tasks/{id}");
        assert_eq!(started.header("location"), Some(location.as_str()));
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let task = self.call(self.token(Role::Admin), "GET", &location, None);
            assert_eq!(task.status, 200, "{}", task.text());
            let task = task.json().unwrap()["task"].clone();
            if task["state"] != "running" {
                return task;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} still runs: {task}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `browser` enrols a second factor and confirms it with the current code; the
    /// enrolment's answer (with its `secret`).
    pub fn enrol_and_confirm_totp(&self, browser: &Browser) -> serde_json::Value {
        let enrolled = self.call_as(
            browser,
            "POST",
            "/api/v1/session/totp",
            Some(json!({"password": PASSWORD})),
        );
        assert_eq!(enrolled.status, 201, "{}", enrolled.text());
        let enrolment = enrolled.json().unwrap();
        let secret = enrolment["secret"].as_str().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let code =
            mfv_auth::totp_code(secret, mfv_auth::Timestamp(i64::try_from(now).unwrap())).unwrap();
        let confirmed = self.call_as(
            browser,
            "POST",
            "/api/v1/session/totp/confirm",
            Some(json!({"code": code})),
        );
        assert_eq!(confirmed.status, 200, "{}", confirmed.text());
        enrolment
    }

    /// `method path` as `browser`, with its cookie and CSRF token, and `body` as JSON.
    pub fn call_as(
        &self,
        browser: &Browser,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> HttpResponse {
        let body = body.map(|body| body.to_string());
        self.client
            .send(
                method,
                path,
                &[
                    ("cookie", &browser.cookie),
                    ("x-csrf-token", &browser.csrf),
                    ("content-type", "application/json"),
                ],
                body.as_deref().map(str::as_bytes),
            )
            .unwrap()
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// An open `GET /api/v1/events`: the answer's head, then events read one by one from the
/// chunked body with a deadline.
pub struct EventStream {
    pub status: u16,
    pub head: String,
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    /// Body bytes received and not yet taken.
    pending: Vec<u8>,
    /// Decoded body text not yet split into events.
    text: String,
    /// The body ended (the last chunk came) or the connection closed.
    pub ended: bool,
    /// Comments seen (`: keepalive`).
    pub comments: Vec<String>,
}

impl Server {
    /// Opens `path` with the request headers `headers`; the answer's head is read.
    pub fn open_stream(&self, path: &str, headers: &[(&str, &str)]) -> EventStream {
        use std::io::{Read, Write};
        let mut tls = self.client.connect().unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: vmhost\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tls.write_all(request.as_bytes()).unwrap();
        tls.flush().unwrap();
        tls.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut received = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let end = loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(std::time::Instant::now() < deadline, "no answer head");
            let mut buffer = [0u8; 4096];
            match tls.read(&mut buffer) {
                Ok(0) => panic!("closed before the answer head"),
                Ok(read) => received.extend_from_slice(&buffer[..read]),
                Err(error) if is_timeout(&error) => {}
                Err(error) => panic!("reading the answer head: {error}"),
            }
        };
        let head = String::from_utf8_lossy(&received[..end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap();
        EventStream {
            status,
            head,
            tls,
            pending: received[end + 4..].to_vec(),
            text: String::new(),
            ended: false,
            comments: Vec::new(),
        }
    }

    /// The event stream as the holder of `authorization` (a bearer header value).
    pub fn events(&self, authorization: &str) -> EventStream {
        let stream = self.open_stream("/api/v1/events", &[("authorization", authorization)]);
        assert_eq!(stream.status, 200, "{}", stream.head);
        stream
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

impl EventStream {
    /// The value of the answer's header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// Moves whole chunks of `pending` into `text`; notes the last chunk.
    fn decode(&mut self) {
        loop {
            let Some(line_end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.pending[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if self.pending.len() < line_end + 2 + size + 2 {
                return;
            }
            let start = line_end + 2;
            self.text
                .push_str(&String::from_utf8_lossy(&self.pending[start..start + size]));
            self.pending.drain(..start + size + 2);
            if size == 0 {
                self.ended = true;
                return;
            }
        }
    }

    /// The next event within `timeout`; `None` when none came or the stream ended.
    pub fn next_within(&mut self, timeout: Duration) -> Option<StreamEvent> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.decode();
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = StreamEvent {
                    id: None,
                    event: "message".to_owned(),
                    data: serde_json::Value::Null,
                };
                let mut comment_only = true;
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        self.comments.push(comment.trim().to_owned());
                    } else if let Some((field, value)) = line.split_once(':') {
                        comment_only = false;
                        let value = value.trim_start();
                        match field {
                            "id" => event.id = value.parse().ok(),
                            "event" => event.event = value.to_owned(),
                            "data" => event.data = serde_json::from_str(value).unwrap(),
                            other => panic!("unknown field {other:?} in {block:?}"),
                        }
                    }
                }
                if !comment_only {
                    return Some(event);
                }
            }
            if self.ended || std::time::Instant::now() >= deadline {
                return None;
            }
            let mut buffer = [0u8; 4096];
            match self.tls.read(&mut buffer) {
                Ok(0) => self.ended = true,
                Ok(read) => self.pending.extend_from_slice(&buffer[..read]),
                Err(error) if is_timeout(&error) => {}
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.ended = true;
                }
                Err(error) => panic!("reading the stream: {error}"),
            }
        }
    }

    /// Reads events until one `matches`, at most `timeout`; panics with what came instead.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&StreamEvent) -> bool,
    ) -> StreamEvent {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next_within(left) {
                Some(event) if matches(&event) => return event,
                Some(event) => seen.push(event),
                None => panic!(
                    "no matching event within {timeout:?} (ended: {}); seen: {seen:#?}",
                    self.ended
                ),
            }
        }
    }
}
