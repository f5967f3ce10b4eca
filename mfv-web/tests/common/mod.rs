//! The API's test server: real HTTPS on loopback, users and API tokens in a real SQLite auth
//! database (the `--dev` authority), and the host daemon link each test file chooses.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::sync::Arc;
use std::time::Duration;

use mfv_auth::{Actor, Authenticator, Password, Role, UserRecord, Username};
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::web_identity::WebIdentity;
use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::api::links::{HostLink, NoHostDaemon};
use mfv_web::api::{Api, ApiParts, LocalAuthority};
use mfv_web::server::{Limits, Listeners, serve};
use serde_json::json;

/// Every test user's password.
pub const PASSWORD: &str = "a password long enough";

/// The server on a free port, with an admin (`ada`), an operator (`otto`) and a viewer
/// (`vera`), and a token of each.
pub struct Server {
    pub client: HttpsClient,
    /// `(role, bearer header value)`.
    tokens: Vec<(Role, String)>,
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

impl Server {
    /// The server without a host daemon (as `--dev` runs).
    pub fn start() -> Server {
        Server::with_host(Arc::new(NoHostDaemon))
    }

    /// The server reaching the host daemon through `host`.
    pub fn with_host(host: Arc<dyn HostLink>) -> Server {
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
                let api = Api::new(ApiParts {
                    authority: Arc::new(LocalAuthority::new(authenticator(&database).await)),
                    host,
                    libvirt: None,
                });
                https.set_nonblocking(true).unwrap();
                let listeners = Listeners {
                    https: tokio::net::TcpListener::from_std(https).unwrap(),
                    http: None,
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

    /// The bearer header value of `role`'s token.
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

/// The error kind of `response`.
pub fn kind(response: &HttpResponse) -> String {
    response.json().unwrap()["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
