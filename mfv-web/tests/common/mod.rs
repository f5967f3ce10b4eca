//! The API's test server: real HTTPS on loopback, users and API tokens in a real SQLite auth
//! database (the `--dev` authority), and the host daemon link each test file chooses.

#![allow(dead_code, reason = "each test file uses a part of it")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use mfv_auth::{Actor, Authenticator, Password, Role, UserRecord, Username};
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::web_identity::WebIdentity;
use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::api::links::{HostLink, LibvirtUri, NoHostDaemon};
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
/// given (created for TCG).
pub fn api(
    authenticator: Authenticator,
    host: Arc<dyn HostLink>,
    libvirt: Option<&str>,
) -> Arc<Api> {
    Api::new(ApiParts {
        authority: Arc::new(LocalAuthority::new(authenticator)),
        host,
        libvirt: libvirt.map(|uri| LibvirtUri(uri.to_owned())),
        proc_root: std::path::PathBuf::from("/proc"),
        vm_capabilities: mfv_vm::HostCapabilities::tcg_only(),
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
                let api = api(authenticator(&database).await, host, libvirt.as_deref());
                https.set_nonblocking(true).unwrap();
                let listeners = Listeners {
                    https: tokio::net::TcpListener::from_std(https).unwrap(),
                    http: None,
                    bench_http: None,
                };
                let routes = mfv_web::api::routes(api);
                serve(
                    listeners,
                    tls,
                    warp::service(routes),
                    Limits::default(),
                    async {
                        let _ = stopped.await;
                    },
                )
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
