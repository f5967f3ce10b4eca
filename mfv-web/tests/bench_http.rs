#![allow(clippy::unwrap_used, reason = "test code")]
//! `mfv-web --dev --bench-http`: the API over plain HTTP for `cargo xtask bench web`, with
//! the same authentication as over HTTPS; and refused outside `--dev`.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfv_auth::{Actor, Password, Role, UserRecord, Username};

/// The binary, killed when the test ends.
struct MfvWeb(Child);

impl Drop for MfvWeb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `request` and reads the whole answer (the request closes the connection).
fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn get(address: SocketAddr, path: &str, cookie: &str) -> String {
    exchange(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn the_bench_listener_serves_the_api_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    common::runtime().block_on(async {
        let auth = common::authenticator(dir.path()).await;
        let record = UserRecord {
            username: Username::new("vera").unwrap(),
            display_name: String::new(),
            role: Role::Viewer,
            disabled: false,
            account_id: None,
        };
        auth.add_user(
            &Actor::Local,
            &record,
            &Password::new(common::PASSWORD).unwrap(),
        )
        .await
        .unwrap();
    });
    let https = mfv_tests::free_local_port().unwrap();
    let plain: SocketAddr = ([127, 0, 0, 1], mfv_tests::free_local_port().unwrap()).into();
    let _server = MfvWeb(
        Command::new(env!("CARGO_BIN_EXE_mfv-web"))
            .arg("--dev")
            .arg("--auth-db")
            .arg(dir.path().join("users.sqlite"))
            .args(["--https", &format!("127.0.0.1:{https}")])
            .args(["--bench-http", &plain.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while TcpStream::connect(plain).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no listener");
        std::thread::sleep(Duration::from_millis(20));
    }

    let refused = get(plain, "/api/v1/session", "x=y");
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");

    let body = format!(
        "{{\"username\":\"vera\",\"password\":\"{}\"}}",
        common::PASSWORD
    );
    let login = exchange(
        plain,
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 200 "), "{login}");
    let cookie = login
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|value| value.split(';').next())
        .unwrap();
    assert!(cookie.starts_with("__Host-mfv-session="), "{cookie}");

    let whoami = get(plain, "/api/v1/session", cookie);
    assert!(whoami.starts_with("HTTP/1.1 200 "), "{whoami}");
    assert!(whoami.contains("\"username\":\"vera\""), "{whoami}");
    // The same security headers as over HTTPS, and no redirect.
    assert!(
        whoami
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{whoami}"
    );
    // Without --libvirt the VM list is unavailable, as over HTTPS.
    let vms = get(plain, "/api/v1/vms", cookie);
    assert!(vms.starts_with("HTTP/1.1 503 "), "{vms}");
}
