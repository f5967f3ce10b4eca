//! What the API's test binaries share: the server over real HTTPS on loopback, with an
//! admin, an operator and a viewer in a real SQLite auth database and an API token of each.

use std::sync::Arc;
use std::time::Duration;

use mfv_auth::{Actor, Authenticator, Password, Role, UserRecord, Username};
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::web_identity::WebIdentity;
use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::api::links::{LibvirtUri, NoHostDaemon};
use mfv_web::api::{Api, ApiParts, LocalAuthority};
use mfv_web::server::{Limits, Listeners, serve};
use serde_json::json;

/// Every user's password.
pub const PASSWORD: &str = "a password long enough";

/// The server on a free port, with an admin, an operator and a viewer, and a token of each.
pub struct Server {
    /// The HTTPS client to the server.
    pub client: HttpsClient,
    /// `(role, bearer header value)`.
    tokens: Vec<(Role, String)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The server's temp dir: the auth database, and what a test keeps beside it.
    pub dir: tempfile::TempDir,
}

/// A runtime of two workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The SQLite auth database in `dir`, made when missing.
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

/// The API with `authenticator`, no host daemon, and VMs on `libvirt` if given (created for
/// TCG).
pub fn api(authenticator: Authenticator, libvirt: Option<&str>) -> Arc<Api> {
    Api::new(ApiParts {
        authority: Arc::new(LocalAuthority::new(authenticator)),
        host: Arc::new(NoHostDaemon),
        libvirt: libvirt.map(|uri| LibvirtUri(uri.to_owned())),
        vm_capabilities: mfv_vm::HostCapabilities::tcg_only(),
    })
}

impl Server {
    /// The server, with VMs on the libvirt at `libvirt` if given.
    pub fn start(libvirt: Option<&str>) -> Server {
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
                let api = api(authenticator(&database).await, libvirt.as_deref());
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
