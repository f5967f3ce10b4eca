//! Config mode over real HTTPS on loopback: the server with the host's identity, the host
//! daemon's handler spending a real token file, and a client that writes its requests by
//! hand and records the certificate it was shown. The network requests, which the daemon
//! hands to PID 1, are answered by a double that records them.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfv_api::{ApiError, ErrorKind, NetworkOutcome, Request, Response};
use mfv_host::daemon::{DetachedInit, HostDaemon, Peer};
use mfv_host::setup_token;
use mfv_host::web_identity::WebIdentity;
use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::config_mode::{ConfigMode, SESSION_COOKIE};
use mfv_web::daemon::{DaemonError, DaemonLink};
use mfv_web::server::{Limits, Listeners, serve};
use serde_json::json;

/// The `[network]` section in effect on the test host: the console chose DHCP on eth0.
const CONSOLE_NETWORK: &str = "[[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n";

/// What PID 1 would do with network requests, and what it was asked.
#[derive(Debug, Default)]
struct NetworkDouble {
    /// Applied changes, by their network section; a change's id is its place here, from 1.
    applied: Vec<String>,
    /// The confirmations that reached the daemon.
    confirmed: Vec<u64>,
    /// Why applying or confirming rolls back, when it does.
    roll_back: Option<String>,
    /// Whether the daemon cannot be asked to confirm.
    unreachable: bool,
}

/// The host daemon's own handler, asked as the web user, with the network double.
#[derive(Debug, Clone)]
struct Daemon {
    handler: Arc<Mutex<HostDaemon<DetachedInit>>>,
    network: Arc<Mutex<NetworkDouble>>,
}

impl DaemonLink for Daemon {
    async fn ask(&self, request: Request, _: Duration) -> Result<Response, DaemonError> {
        // The protocol's server loop validates before the handler, as here.
        request.validate().map_err(DaemonError::Refused)?;
        let mut network = self.network.lock().unwrap();
        let rolled_back = |reason: &String| {
            Ok(Response::Network(NetworkOutcome::RolledBack {
                reason: reason.clone(),
            }))
        };
        match request {
            Request::Inventory => Ok(Response::Inventory {
                inventory: json!({
                    "nics": [
                        {"name": "lo", "mac": "00:00:00:00:00:00", "driver": null,
                         "carrier": true, "speed_mbps": null, "is_virtual": true},
                        {"name": "eth0", "mac": "52:54:00:12:34:56", "driver": "e1000",
                         "carrier": true, "speed_mbps": 1000, "is_virtual": false},
                    ],
                    "block_devices": [],
                }),
            }),
            Request::NetworkApply {
                network_toml,
                confirm_within_secs,
            } => {
                if let Some(reason) = &network.roll_back {
                    return rolled_back(reason);
                }
                network.applied.push(network_toml);
                Ok(Response::Network(NetworkOutcome::Applied {
                    apply_id: network.applied.len() as u64,
                    confirm_within_secs,
                    changes: vec!["eth0: addresses set".to_owned()],
                }))
            }
            Request::NetworkConfirm { apply_id } => {
                if network.unreachable {
                    return Err(DaemonError::Unreachable("connection refused".to_owned()));
                }
                network.confirmed.push(apply_id);
                if let Some(reason) = &network.roll_back {
                    return rolled_back(reason);
                }
                if apply_id as usize > network.applied.len() {
                    return Err(DaemonError::Refused(ApiError::new(
                        ErrorKind::NotFound,
                        format!("no network change {apply_id}"),
                    )));
                }
                Ok(Response::Network(NetworkOutcome::Confirmed))
            }
            // The handler blocks (and starts a runtime of its own for an auth test), as it
            // may on the daemon's own threads: this worker leaves the server's runtime
            // while it runs.
            request => tokio::task::block_in_place(|| {
                self.handler
                    .lock()
                    .unwrap()
                    .handle(Peer::Web, request)
                    .map_err(DaemonError::Refused)
            }),
        }
    }
}

/// A config-mode server on loopback, stopped when dropped.
struct Server {
    https: SocketAddr,
    http: SocketAddr,
    token: String,
    identity: WebIdentity,
    network: Arc<Mutex<NetworkDouble>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        // A host that booted without a configuration, with the console's DHCP on eth0.
        mfv_host::daemon::write_host_state(
            &run_dir,
            &mfv_host::daemon::HostState {
                boot: mfv_api::BootReport::new(mfv_api::ConfigProvenance::NotFound),
                virtualization: mfv_api::Virtualization::Tcg,
            },
        )
        .unwrap();
        let in_effect = mfv_host::network::handover::in_effect_path(&run_dir);
        std::fs::create_dir_all(in_effect.parent().unwrap()).unwrap();
        std::fs::write(&in_effect, CONSOLE_NETWORK).unwrap();
        let token = setup_token::issue(&run_dir).unwrap().unwrap();
        let identity = WebIdentity::generate("vmhost").unwrap();
        let tls = mfv_web::tls::server_config_for(&identity).unwrap();
        let network = Arc::new(Mutex::new(NetworkDouble::default()));
        let daemon = Daemon {
            handler: Arc::new(Mutex::new(HostDaemon {
                run_dir,
                roots: roots(dir.path()),
                init: DetachedInit,
            })),
            network: Arc::clone(&network),
        };
        let https = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addresses = (https.local_addr().unwrap(), http.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                https.set_nonblocking(true).unwrap();
                http.set_nonblocking(true).unwrap();
                let listeners = Listeners {
                    https: tokio::net::TcpListener::from_std(https).unwrap(),
                    http: Some(tokio::net::TcpListener::from_std(http).unwrap()),
                    bench_http: None,
                };
                let routes = mfv_web::config_mode::routes(ConfigMode::new(daemon));
                serve(listeners, tls, warp::service(routes), limits, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        Server {
            https: addresses.0,
            http: addresses.1,
            token: token.as_str().to_owned(),
            identity,
            network,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn client(&self) -> HttpsClient {
        HttpsClient::new(self.https, "vmhost").unwrap()
    }

    /// Stops the server and waits until it is gone.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn roots(dir: &Path) -> mfv_probe::SystemRoots {
    mfv_probe::SystemRoots {
        sysfs: dir.join("sys"),
        proc: dir.join("proc"),
        dev: dir.join("dev"),
    }
}

fn claim(client: &HttpsClient, token: &str) -> HttpResponse {
    client
        .post_json("/api/v1/setup/claim", &[], &json!({ "token": token }))
        .unwrap()
}

fn kind(response: &HttpResponse) -> String {
    response.json().unwrap()["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The session cookie's `name=value` from a `Set-Cookie` answer.
fn session_of(response: &HttpResponse) -> String {
    let cookie = response.header("set-cookie").unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[test]
fn the_token_is_exchanged_once_for_a_session_over_the_hosts_certificate() {
    let server = Server::start(Limits::default());
    let client = server.client();

    let refused = client.get("/api/v1/setup", &[]).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(kind(&refused), "setup_token_required");
    assert_eq!(
        client.served_fingerprint().unwrap(),
        server.identity.fingerprint().to_string()
    );
    for (header, value) in [
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(refused.header(header), Some(value), "{header}");
    }
    assert!(
        refused
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let wrong = claim(&client, "abcde-fghjk-mnpqr-stuvw");
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    let body = wrong.json().unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["field"].as_str()),
        (Some("not_permitted"), Some("token"))
    );
    assert!(wrong.header("set-cookie").is_none());

    // Typed loosely, as a person would.
    let typed = server.token.to_uppercase().replace('-', " ");
    let claimed = claim(&client, &typed);
    assert_eq!(claimed.status, 200, "{}", claimed.text());
    let set_cookie = claimed.header("set-cookie").unwrap();
    assert!(set_cookie.starts_with(&format!("{SESSION_COOKIE}=")));
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session = session_of(&claimed);

    let state = client
        .get("/api/v1/setup", &[("cookie", &session)])
        .unwrap();
    assert_eq!(state.status, 200, "{}", state.text());
    assert_eq!(state.json().unwrap()["mode"], "config");

    // The token is spent: the same token from anyone is refused, and no second session.
    let again = claim(&client, &server.token);
    assert_eq!(again.status, 403);
    assert!(again.text().contains("used already"), "{}", again.text());
    let forged = client
        .get(
            "/api/v1/setup",
            &[("cookie", &format!("{SESSION_COOKIE}={}", "0".repeat(64)))],
        )
        .unwrap();
    assert_eq!(forged.status, 401);
}

/// A claimed session's cookie.
fn claimed_session(server: &Server, client: &HttpsClient) -> String {
    session_of(&claim(client, &server.token))
}

#[test]
fn the_setup_api_needs_the_session_and_passes_on_what_the_host_says() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let body = json!({ "config_text": "version = 1\n[host]\nhostnme = \"x\"\n" });
    for (method, path) in [
        ("GET", "/api/v1/setup/volumes"),
        ("POST", "/api/v1/setup/validate"),
        ("POST", "/api/v1/setup/auth/test"),
        ("POST", "/api/v1/setup/save"),
    ] {
        let bytes = body.to_string();
        let answer = client
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                (method == "POST").then_some(bytes.as_bytes()),
            )
            .unwrap();
        assert_eq!(
            (answer.status, kind(&answer)),
            (401, "setup_token_required".to_owned()),
            "{path}"
        );
    }
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];

    // The test host has no disks.
    let volumes = client.get("/api/v1/setup/volumes", &cookie).unwrap();
    assert_eq!(volumes.status, 200, "{}", volumes.text());
    assert_eq!(volumes.json().unwrap()["volumes"], json!([]));

    let validated = client
        .post_json("/api/v1/setup/validate", &cookie, &body)
        .unwrap();
    assert_eq!(validated.status, 200, "{}", validated.text());
    let errors = &validated.json().unwrap()["errors"];
    let fields: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert_eq!(fields, ["host.hostname", "host.hostnme"], "{errors}");

    let save = |config: &str, admin: &str, headers: &[(&str, &str)]| {
        client
            .post_json(
                "/api/v1/setup/save",
                headers,
                &json!({
                    "config_text": config,
                    "volume": {"kind": "format", "device": "/dev/mfv-no-such-disk", "fs": "ext4",
                               "confirm": "/dev/mfv-no-such-disk"},
                    "admin": admin,
                    "password": "a long enough password",
                }),
            )
            .unwrap()
    };
    let valid = "version = 1\n[host]\nhostname = \"h\"\n";
    let invalid = save("version = 1\n[host]\nhostnme = \"h\"\n", "alice", &cookie);
    assert_eq!(invalid.status, 400, "{}", invalid.text());
    assert_eq!(kind(&invalid), "invalid_config");
    // Every problem comes along, for the wizard to show each beside its field.
    let problems = invalid.json().unwrap()["errors"].clone();
    let fields: Vec<&str> = problems
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|problem| problem["field"].as_str())
        .collect();
    assert_eq!(fields, ["host.hostname", "host.hostnme"], "{problems}");
    let bad_admin = save(valid, "Alice Smith", &cookie);
    assert_eq!(
        bad_admin.json().unwrap()["field"],
        "admin",
        "{}",
        bad_admin.text()
    );
    let missing = save(valid, "alice", &cookie);
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json().unwrap()["field"], "device");
    let foreign = save(
        valid,
        "alice",
        &[
            ("cookie", session.as_str()),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(
        (foreign.status, kind(&foreign)),
        (403, "cross_origin".to_owned())
    );
    let unconfirmed = client
        .post_json(
            "/api/v1/setup/save",
            &cookie,
            &json!({
                "config_text": valid,
                "volume": {"kind": "format", "device": "/dev/sdb", "fs": "ext4", "confirm": "sdb"},
                "admin": "alice",
                "password": "a long enough password",
            }),
        )
        .unwrap();
    assert_eq!(
        unconfirmed.json().unwrap()["field"],
        "confirm",
        "{}",
        unconfirmed.text()
    );
}

#[test]
fn the_auth_backend_is_tested_with_the_session_and_a_failure_names_the_field() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let test = |config: &str, headers: &[(&str, &str)]| {
        client
            .post_json(
                "/api/v1/setup/auth/test",
                headers,
                &json!({ "config_text": config }),
            )
            .unwrap()
    };
    let local = "version = 1\n[host]\nhostname = \"h\"\n";
    let refused = test(local, &[]);
    assert_eq!(
        (refused.status, kind(&refused)),
        (401, "setup_token_required".to_owned()),
        "{}",
        refused.text()
    );
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];

    let tested = test(local, &cookie);
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(
        tested.json().unwrap(),
        json!({
            "backend": "sqlite",
            "message": "users are the local ones, kept in users.sqlite on the config volume, \
                        which setup's save creates with the first administrator",
        })
    );

    // Nothing listens on the port the listener had.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ldap://127.0.0.1:{port}");
    let unreachable = test(
        &format!(
            "{local}[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"{url}\"\n\
             base_dn = \"ou=people,dc=example,dc=org\"\n"
        ),
        &cookie,
    );
    assert_eq!(unreachable.status, 503, "{}", unreachable.text());
    let body = unreachable.json().unwrap();
    assert_eq!(
        (body["kind"].as_str(), body["field"].as_str()),
        (Some("unavailable"), Some("auth.ldap.url")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot reach {url}: ")),
        "{body}"
    );

    let invalid = test("version = 1\n[auth]\nbackend = \"nis\"\n", &cookie);
    assert_eq!(invalid.status, 400, "{}", invalid.text());
    assert_eq!(kind(&invalid), "invalid_config");

    // The files [auth] names come with the test before there is a volume; only those.
    let with_files = |files: serde_json::Value| {
        client
            .post_json(
                "/api/v1/setup/auth/test",
                &cookie,
                &json!({
                    "config_text": format!(
                        "{local}[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"{url}\"\n\
                         base_dn = \"ou=people,dc=example,dc=org\"\n\
                         bind_dn = \"cn=reader,dc=example,dc=org\"\n\
                         bind_password_file = \"secrets/ldap-bind\"\n"
                    ),
                    "files": files,
                }),
            )
            .unwrap()
    };
    let used = with_files(json!({ "auth.ldap.bind_password_file": "the bind password" }));
    assert_eq!(
        (used.status, used.json().unwrap()["field"].as_str()),
        (503, Some("auth.ldap.url")),
        "the file was there, the server is not: {}",
        used.text()
    );
    let foreign_key = with_files(json!({ "auth.sqlite.path": "x" }));
    assert_eq!(
        (
            foreign_key.status,
            foreign_key.json().unwrap()["field"].as_str()
        ),
        (400, Some("files.auth.sqlite.path")),
        "{}",
        foreign_key.text()
    );

    let mut foreign = cookie.to_vec();
    foreign.push(("origin", "https://evil.example"));
    let foreign = test(local, &foreign);
    assert_eq!(
        (foreign.status, kind(&foreign)),
        (403, "cross_origin".to_owned())
    );
}

#[test]
fn a_person_claims_the_host_through_the_pages() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let page = client.get("/", &[]).unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text().contains("action=\"/setup/claim\""),
        "{}",
        page.text()
    );
    let bundle = mfv_web::assets::href(mfv_web::assets::Bundle::AppCss);
    assert!(
        page.text().contains(&format!("href=\"{bundle}\"")),
        "{}",
        page.text()
    );
    let bundle = client.get(bundle, &[("accept-encoding", "br")]).unwrap();
    assert_eq!(
        (bundle.status, bundle.header("content-encoding")),
        (200, Some("br"))
    );
    assert_eq!(
        bundle.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let form = |token: &str| {
        let body = format!("token={token}");
        client
            .send(
                "POST",
                "/setup/claim",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", "https://vmhost"),
                ],
                Some(body.as_bytes()),
            )
            .unwrap()
    };
    let wrong = form("%3Cscript%3E");
    assert_eq!(wrong.status, 200);
    assert!(
        wrong.text().contains("the setup token is wrong"),
        "{}",
        wrong.text()
    );
    let accepted = form(&server.token);
    assert_eq!(accepted.status, 303, "{}", accepted.text());
    assert_eq!(accepted.header("location"), Some("/"));
    let session = session_of(&accepted);
    let page = client.get("/", &[("cookie", &session)]).unwrap();
    assert!(
        page.text().contains("The setup token was accepted"),
        "{}",
        page.text()
    );
}

#[test]
fn malformed_oversized_and_foreign_requests_are_refused_with_their_reason() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let json_claim = |body: &[u8], headers: &[(&str, &str)]| {
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/json"));
        client
            .send("POST", "/api/v1/setup/claim", &headers, Some(body))
            .unwrap()
    };

    // The declared length is refused before any of the body is read; the body is not sent,
    // as a server that answers early and closes may reset a connection whose body it left
    // unread, and the answer with it.
    let oversized = client
        .send(
            "POST",
            "/api/v1/setup/claim",
            &[
                ("content-type", "application/json"),
                ("content-length", "71680"),
            ],
            None,
        )
        .unwrap();
    assert_eq!(
        (oversized.status, kind(&oversized)),
        (413, "too_large".to_owned())
    );

    let malformed = json_claim(b"{\"token\": ", &[]);
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json().unwrap()["field"], "token");

    let unknown_field = json_claim(b"{\"token\": \"x\", \"admin\": true}", &[]);
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.text());

    let too_long_token = json_claim(
        json!({ "token": "a".repeat(500) }).to_string().as_bytes(),
        &[],
    );
    assert_eq!(too_long_token.status, 400, "{}", too_long_token.text());

    let foreign = json_claim(
        json!({ "token": server.token }).to_string().as_bytes(),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(
        (foreign.status, kind(&foreign)),
        (403, "cross_origin".to_owned())
    );

    let chunked = client
        .send_raw(
            b"POST /api/v1/setup/claim HTTP/1.1\r\nhost: vmhost\r\nconnection: close\r\n\
              content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\n{\"to\"\r\n0\r\n\r\n",
        )
        .unwrap();
    assert_eq!(chunked.status, 411, "{}", chunked.text());

    let wrong_method = client.get("/api/v1/setup/claim", &[]).unwrap();
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text());
    let unknown = client.get("/etc/passwd", &[]).unwrap();
    assert_eq!(
        (unknown.status, kind(&unknown)),
        (404, "not_found".to_owned())
    );

    let garbage = client.send_raw(b"\x01\x02 nonsense\r\n\r\n").unwrap();
    assert_eq!(garbage.status, 400);

    // None of this spent the token.
    assert_eq!(claim(&client, &server.token).status, 200);
}

#[test]
fn wrong_tokens_are_spaced_out_after_a_few() {
    let server = Server::start(Limits::default());
    let client = server.client();
    for _ in 0..5 {
        assert_eq!(claim(&client, "wrong").status, 403);
    }
    let throttled = claim(&client, "wrong");
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert_eq!(kind(&throttled), "throttled");
    // The right token waits its turn too, then works.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(claim(&client, &server.token).status, 200);
}

#[test]
fn plain_http_is_sent_to_https_on_the_same_host() {
    let server = Server::start(Limits::default());
    let answer = raw_http(
        server.http,
        b"GET /api/v1/setup?x=1 HTTP/1.1\r\nhost: vmhost:80\r\nconnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(
        answer.contains(&format!(
            "location: https://vmhost:{}/api/v1/setup?x=1\r\n",
            server.https.port()
        )),
        "{answer}"
    );
    let hostile = raw_http(
        server.http,
        b"GET / HTTP/1.1\r\nhost: evil.example/x\r\nconnection: close\r\n\r\n",
    );
    assert!(hostile.starts_with("HTTP/1.1 400"), "{hostile}");
    assert!(!hostile.contains("location:"), "{hostile}");
}

#[test]
fn clients_that_stall_are_cut_off() {
    let limits = Limits {
        handshake: Duration::from_millis(500),
        request_head: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = Server::start(limits);
    // No TLS handshake at all.
    let mut silent = TcpStream::connect(server.https).unwrap();
    assert_closed_within(&mut silent, Duration::from_secs(10));
    // A handshake, then no request.
    let client = server.client();
    let mut idle = client.connect().unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = idle.read(&mut byte);
    assert!(
        matches!(read, Ok(0) | Err(_)) && started.elapsed() < Duration::from_secs(10),
        "{read:?} after {:?}",
        started.elapsed()
    );
    // Half a request head.
    let mut slow = client.connect().unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: vmhost\r\n")
        .unwrap();
    let read = slow.read(&mut byte);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The server still answers others.
    assert_eq!(client.get("/", &[]).unwrap().status, 200);
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let server = Server::start(Limits {
        connections: 2,
        ..Limits::default()
    });
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.https).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(server.https).unwrap();
    assert_closed_within(&mut third, Duration::from_secs(5));
    held.clear();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.client().get("/", &[]).unwrap().status, 200);
}

#[test]
fn shutdown_lets_the_request_in_progress_finish_and_closes_the_listeners() {
    let mut server = Server::start(Limits::default());
    let client = server.client();
    assert_eq!(client.get("/", &[]).unwrap().status, 200);
    server.stop();
    assert!(
        TcpStream::connect(server.https).is_err(),
        "the HTTPS port still accepts connections"
    );
    assert!(TcpStream::connect(server.http).is_err());
}

fn raw_http(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn assert_closed_within(stream: &mut TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    let read = stream.read(&mut buffer);
    assert!(
        matches!(read, Ok(0))
            || matches!(&read, Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?} after {:?}",
        started.elapsed()
    );
}

/// A `[network]` section as the wizard sends it.
const STATIC_ETH0: &str = "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
                           addresses = [\"192.0.2.10/24\"]\n";

fn apply(client: &HttpsClient, headers: &[(&str, &str)], body: &serde_json::Value) -> HttpResponse {
    client
        .post_json("/api/v1/setup/network/apply", headers, body)
        .unwrap()
}

/// The path and query of a confirm link.
fn path_of(confirm_url: &str) -> String {
    let rest = confirm_url.strip_prefix("https://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

#[test]
fn the_network_step_needs_the_session_and_this_sites_pages() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let body = json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 });
    for (method, path) in [
        ("GET", "/api/v1/setup/network"),
        ("POST", "/api/v1/setup/network/apply"),
        ("POST", "/api/v1/setup/network/confirm"),
        ("GET", "/api/v1/setup/draft"),
        ("PUT", "/api/v1/setup/draft"),
    ] {
        let bytes = body.to_string();
        let answer = client
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                (method != "GET").then_some(bytes.as_bytes()),
            )
            .unwrap();
        assert_eq!(
            (answer.status, kind(&answer)),
            (401, "setup_token_required".to_owned()),
            "{method} {path}"
        );
    }
    let session = claimed_session(&server, &client);
    let foreign = [
        ("cookie", session.as_str()),
        ("origin", "https://evil.example"),
    ];
    let refused = apply(&client, &foreign, &body);
    assert_eq!(
        (refused.status, kind(&refused)),
        (403, "cross_origin".to_owned())
    );
    let refused = client
        .post_json(
            "/api/v1/setup/network/confirm",
            &foreign,
            &json!({ "apply_id": 1 }),
        )
        .unwrap();
    assert_eq!(
        (refused.status, kind(&refused)),
        (403, "cross_origin".to_owned())
    );
    assert!(server.network.lock().unwrap().applied.is_empty());

    let cookie = [("cookie", session.as_str())];
    let cards = client.get("/api/v1/setup/network", &cookie).unwrap();
    assert_eq!(cards.status, 200, "{}", cards.text());
    assert_eq!(
        cards.json().unwrap(),
        json!({
            "interfaces": [{"name": "eth0", "mac": "52:54:00:12:34:56", "driver": "e1000",
                            "link": "up", "speed_mbps": 1000}],
            "in_effect": CONSOLE_NETWORK,
            "pending": null,
        })
    );
}

#[test]
fn a_change_at_a_new_address_is_confirmed_once_by_its_link_which_moves_the_session() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];

    let applied = apply(
        &client,
        &cookie,
        &json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 90,
                 "confirm_address": "192.0.2.10:8443" }),
    );
    assert_eq!(applied.status, 200, "{}", applied.text());
    let applied = applied.json().unwrap();
    assert_eq!(applied["apply_id"], 1);
    assert_eq!(applied["confirm_within_secs"], 90);
    let confirm_url = applied["confirm_url"].as_str().unwrap().to_owned();
    assert!(
        confirm_url.starts_with("https://192.0.2.10:8443/setup/confirm?apply=1&key="),
        "{confirm_url}"
    );
    assert_eq!(server.network.lock().unwrap().applied, [STATIC_ETH0]);
    let state = client.get("/api/v1/setup/network", &cookie).unwrap();
    let pending = &state.json().unwrap()["pending"];
    assert_eq!(pending["apply_id"], 1, "{pending}");
    assert_eq!(pending["confirm_url"], confirm_url.as_str());

    // Another browser, at the new address: no cookie.
    let elsewhere = server.client();
    let link = path_of(&confirm_url);
    let key = link.rsplit_once("key=").unwrap().1.to_owned();
    let wrong_key = format!("/setup/confirm?apply=1&key={}", "0".repeat(key.len()));
    for wrong in [
        wrong_key.as_str(),
        &link.replace("apply=1", "apply=2"),
        &link[..link.len() - 1],
    ] {
        let refused = elsewhere.get(wrong, &[]).unwrap();
        assert_eq!(refused.status, 403, "{wrong}: {}", refused.text());
        assert!(
            refused.text().contains("was used already"),
            "{}",
            refused.text()
        );
        assert!(refused.header("set-cookie").is_none());
    }
    // A wrong key spends nothing and asks the daemon nothing.
    assert!(server.network.lock().unwrap().confirmed.is_empty());

    let confirmed = elsewhere.get(&link, &[]).unwrap();
    assert_eq!(confirmed.status, 303, "{}", confirmed.text());
    assert_eq!(
        confirmed.header("location"),
        Some("/?network=confirmed#network")
    );
    let moved = session_of(&confirmed);
    assert!(moved.starts_with(&format!("{SESSION_COOKIE}=")));
    assert_ne!(moved, session);
    assert_eq!(server.network.lock().unwrap().confirmed, [1]);

    // The session moved: the new browser has it, the old one has it no more.
    let state = elsewhere
        .get("/api/v1/setup", &[("cookie", &moved)])
        .unwrap();
    assert_eq!(state.status, 200, "{}", state.text());
    assert_eq!(client.get("/api/v1/setup", &cookie).unwrap().status, 401);
    let cards = elsewhere
        .get("/api/v1/setup/network", &[("cookie", &moved)])
        .unwrap();
    assert_eq!(cards.json().unwrap()["pending"], serde_json::Value::Null);

    // The link works once.
    let again = server.client().get(&link, &[]).unwrap();
    assert_eq!(again.status, 403, "{}", again.text());
    assert!(again.text().contains("used already"), "{}", again.text());
    assert_eq!(server.network.lock().unwrap().confirmed, [1]);
}

#[test]
fn the_same_address_confirms_in_place_and_the_link_is_spent_with_it() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];
    let applied = apply(
        &client,
        &cookie,
        &json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 }),
    );
    assert_eq!(applied.status, 200, "{}", applied.text());
    // Without another address the link points where the request went.
    let confirm_url = applied.json().unwrap()["confirm_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        confirm_url.starts_with("https://vmhost/setup/confirm?apply=1&key="),
        "{confirm_url}"
    );

    let confirm = |apply_id: u64| {
        client
            .post_json(
                "/api/v1/setup/network/confirm",
                &cookie,
                &json!({ "apply_id": apply_id }),
            )
            .unwrap()
    };
    let other = confirm(7);
    assert_eq!(other.status, 404, "{}", other.text());
    assert_eq!(
        (kind(&other), other.json().unwrap()["field"].as_str()),
        ("no_pending_change".to_owned(), Some("apply_id"))
    );
    let kept = confirm(1);
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert_eq!(kept.json().unwrap(), json!({ "outcome": "confirmed" }));
    assert_eq!(confirm(1).status, 404);
    let link = server.client().get(&path_of(&confirm_url), &[]).unwrap();
    assert_eq!(link.status, 403, "{}", link.text());
    assert_eq!(server.network.lock().unwrap().confirmed, [1]);
    // The session stayed where it was.
    assert_eq!(client.get("/api/v1/setup", &cookie).unwrap().status, 200);
}

#[test]
fn a_rolled_back_change_says_why_and_leaves_the_session_where_it_was() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];
    let body = json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 });
    let applied = apply(&client, &cookie, &body).json().unwrap();
    let link = path_of(applied["confirm_url"].as_str().unwrap());

    server.network.lock().unwrap().roll_back = Some("the deadline passed".to_owned());
    let late = server.client().get(&link, &[]).unwrap();
    assert_eq!(late.status, 409, "{}", late.text());
    assert!(
        late.text()
            .contains("The host went back to its previous network: the deadline passed."),
        "{}",
        late.text()
    );
    assert!(late.header("set-cookie").is_none());
    assert_eq!(client.get("/api/v1/setup", &cookie).unwrap().status, 200);

    // Applying can roll back at once, too (the new network did not come up).
    let refused = apply(&client, &cookie, &body);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(kind(&refused), "rolled_back");
    assert!(
        refused.text().contains("the deadline passed"),
        "{}",
        refused.text()
    );
    let state = client.get("/api/v1/setup/network", &cookie).unwrap();
    assert_eq!(state.json().unwrap()["pending"], serde_json::Value::Null);
}

#[test]
fn a_confirmation_the_daemon_did_not_get_can_be_sent_again() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];
    let applied = apply(
        &client,
        &cookie,
        &json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 }),
    )
    .json()
    .unwrap();
    let link = path_of(applied["confirm_url"].as_str().unwrap());
    server.network.lock().unwrap().unreachable = true;
    let unanswered = server.client().get(&link, &[]).unwrap();
    assert_eq!(unanswered.status, 503, "{}", unanswered.text());
    assert!(
        unanswered.text().contains("could not be asked"),
        "{}",
        unanswered.text()
    );
    let in_place = client
        .post_json(
            "/api/v1/setup/network/confirm",
            &cookie,
            &json!({ "apply_id": 1 }),
        )
        .unwrap();
    assert_eq!(in_place.status, 503, "{}", in_place.text());

    server.network.lock().unwrap().unreachable = false;
    let confirmed = server.client().get(&link, &[]).unwrap();
    assert_eq!(confirmed.status, 303, "{}", confirmed.text());
}

#[test]
fn network_requests_that_cannot_be_right_are_refused_before_the_daemon() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];
    for (body, field) in [
        (
            json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60,
                    "confirm_address": "evil.example/phish" }),
            "confirm_address",
        ),
        (
            json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 0 }),
            "confirm_within_secs",
        ),
        (
            json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 601 }),
            "confirm_within_secs",
        ),
    ] {
        let refused = apply(&client, &cookie, &body);
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
        assert_eq!(
            refused.json().unwrap()["field"],
            field,
            "{}",
            refused.text()
        );
    }
    let unknown_field = apply(
        &client,
        &cookie,
        &json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60, "key": "x" }),
    );
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.text());
    // A Host header that is no address cannot make a link.
    let hostile_host = client
        .send_raw(
            format!(
                "POST /api/v1/setup/network/apply HTTP/1.1\r\nhost: evil.example/x\r\n\
                 connection: close\r\ncookie: {session}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n{}",
                json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 })
                    .to_string()
                    .len(),
                json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 })
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(hostile_host.status, 400, "{}", hostile_host.text());
    assert_eq!(hostile_host.json().unwrap()["field"], "confirm_address");
    assert!(server.network.lock().unwrap().applied.is_empty());

    for incomplete in [
        "/setup/confirm",
        "/setup/confirm?apply=x&key=y",
        "/setup/confirm?apply=1",
    ] {
        let page = client.get(incomplete, &[]).unwrap();
        assert_eq!(page.status, 400, "{incomplete}: {}", page.text());
        assert!(
            page.text().contains("This link is incomplete"),
            "{}",
            page.text()
        );
    }
    let no_change = client.get("/setup/confirm?apply=1&key=abc", &[]).unwrap();
    assert_eq!(no_change.status, 403, "{}", no_change.text());
    assert!(server.network.lock().unwrap().confirmed.is_empty());
}

#[test]
fn the_wizard_keeps_its_draft_for_the_session() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let cookie = [("cookie", session.as_str())];
    let empty = client.get("/api/v1/setup/draft", &cookie).unwrap();
    assert_eq!(empty.json().unwrap(), json!({ "draft": null }));
    let put = |body: &[u8], headers: &[(&str, &str)]| {
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/json"));
        client
            .send("PUT", "/api/v1/setup/draft", &headers, Some(body))
            .unwrap()
    };
    let not_an_object = put(b"[1, 2]", &cookie);
    assert_eq!(not_an_object.status, 400, "{}", not_an_object.text());
    assert_eq!(not_an_object.json().unwrap()["field"], "draft");
    let malformed = put(b"{\"fields\": ", &cookie);
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    let foreign = put(
        b"{}",
        &[
            ("cookie", session.as_str()),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(foreign.status, 403);
    let draft = json!({ "fields": { "admin": "alice", "hostname": "<b>vmhost</b>" } });
    assert_eq!(put(draft.to_string().as_bytes(), &cookie).status, 200);
    let kept = client.get("/api/v1/setup/draft", &cookie).unwrap();
    assert_eq!(kept.json().unwrap(), json!({ "draft": draft }));
}

#[test]
fn the_wizard_page_runs_the_hosts_own_script_only() {
    let server = Server::start(Limits::default());
    let client = server.client();
    let session = claimed_session(&server, &client);
    let page = client.get("/", &[("cookie", &session)]).unwrap();
    let html = page.text();
    assert!(
        html.contains("<script src=\"/assets/setup.js\" defer></script>"),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains(" style="), "{html}");
    let inline_handler = html.split(" on").skip(1).any(|rest| {
        let name_length = rest.chars().take_while(char::is_ascii_lowercase).count();
        name_length > 0 && rest[name_length..].starts_with('=')
    });
    assert!(!inline_handler, "no inline event handlers: {html}");
    for step in ["admin", "volume", "host", "network", "auth", "review"] {
        assert!(html.contains(&format!("id=\"step-{step}\"")), "{step}");
    }
    let script = client.get("/assets/setup.js", &[]).unwrap();
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(!script.text().contains("innerHTML"));
    // The token page needs no script.
    assert!(!client.get("/", &[]).unwrap().text().contains("<script"));
}
