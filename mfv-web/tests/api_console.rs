//! The browser consoles over real HTTPS websockets, against a private libvirtd running the
//! tiny test guest under real QEMU (TCG): the VNC display speaks RFB without its password,
//! the serial console carries the guest's output and what is typed into it, and every
//! refusal (no caller, a role without consoles, another site's page, a stopped or unknown
//! VM, a plain GET, too many consoles) comes before the connection is taken over; an open
//! console closes when its session ends, another client takes it over, the VM stops, or the
//! server stops, and a quiet one is pinged.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;
mod console;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{guest_spec, shared};
use common::{Browser, PASSWORD, Server, kind};
use console::{Tls, read_until};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use mfv_tests::libvirtd::{GUEST_HEARD, GUEST_READY, unique};
use mfv_web::api::links::NoHostDaemon;
use mfv_web::server::Limits;
use serde_json::{Value, json};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{ClientRequestBuilder, Message, WebSocket};

/// The headers of a websocket handshake, for requests that must be refused before it.
const HANDSHAKE: [(&str, &str); 4] = [
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// Opens the websocket at `path` with `headers`; the refusal's status otherwise.
fn open(server: &Server, path: &str, headers: &[(&str, &str)]) -> Result<WebSocket<Tls>, u16> {
    let stream = server.client.connect().unwrap();
    let uri = format!("wss://vmhost{path}").parse().unwrap();
    let mut request = ClientRequestBuilder::new(uri);
    for (name, value) in headers {
        request = request.with_header(*name, *value);
    }
    match tungstenite::client::client(request, stream) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(answer))) => {
            Err(answer.status().as_u16())
        }
        Err(error) => panic!("{path}: {error}"),
    }
}

/// The close frame the server ends the console with, within `timeout` (output before it
/// is skipped).
fn closed_within(socket: &mut WebSocket<Tls>, timeout: Duration) -> CloseFrame {
    let deadline = Instant::now() + timeout;
    loop {
        assert!(Instant::now() < deadline, "still open after {timeout:?}");
        match socket.read() {
            Ok(Message::Close(Some(frame))) => return frame,
            Ok(Message::Close(None)) => panic!("closed without a reason"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("waiting for the close frame: {error}"),
        }
    }
}

/// Exactly `count` bytes of RFB from the VNC websocket.
fn rfb(socket: &mut WebSocket<Tls>, pending: &mut Vec<u8>, count: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending.len() < count {
        assert!(Instant::now() < deadline, "RFB: {pending:?}");
        match socket.read() {
            Ok(Message::Binary(bytes)) => pending.extend_from_slice(&bytes),
            Ok(Message::Close(frame)) => panic!("VNC closed: {frame:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("RFB: {error}"),
        }
    }
    pending.drain(..count).collect()
}

/// Creates the test guest `name` (with its default VNC display when `vnc`, with the display
/// turned off otherwise) through the API, and starts it when `start`.
fn create_vm(server: &Server, name: &str, vnc: bool, start: bool) {
    let admin = server.token(Role::Admin);
    let extra = if vnc {
        json!({})
    } else {
        json!({ "vnc": { "enabled": false } })
    };
    let created = server.call(admin, "POST", "/api/v1/vms", Some(guest_spec(name, extra)));
    assert_eq!(created.status, 202, "{}", created.text());
    let task = created.json().unwrap()["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = server.call(admin, "GET", &format!("/api/v1/tasks/{task}"), None);
        let state = answer.json().unwrap()["task"]["state"].clone();
        if state == "succeeded" {
            break;
        }
        assert_eq!(state, "running", "{}", answer.text());
        assert!(
            Instant::now() < deadline,
            "the creation of {name} still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if start {
        let started = server.call(admin, "POST", &format!("/api/v1/vms/{name}/start"), None);
        assert_eq!(started.status, 200, "{}", started.text());
    }
}

fn delete_vm(server: &Server, name: &str) {
    let admin = server.token(Role::Admin);
    let _ = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    let deleted = server.call(admin, "DELETE", &format!("/api/v1/vms/{name}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}

/// A refused handshake's JSON answer, read in full with the plain HTTPS client.
fn refused(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all: Vec<(&str, &str)> = HANDSHAKE.to_vec();
    all.extend_from_slice(headers);
    let answer: HttpResponse = server.client.get(path, &all).unwrap();
    let body = answer.json().unwrap_or_default();
    (answer.status, body)
}

#[test]
fn the_vnc_display_speaks_rfb_without_its_password_and_the_serial_console_carries_lines() {
    let server = Server::with_libvirt(shared().daemon.uri());
    let name = unique("console");
    create_vm(&server, &name, true, true);
    let admin = server.token(Role::Admin);
    let operator = server.token(Role::Operator);

    // VNC, with the subprotocol noVNC may offer: the version, the security types (None is
    // offered, the display's password is not asked), the server's init, a first update.
    let vnc_path = format!("/api/v1/vms/{name}/console/vnc");
    let mut vnc = open(
        &server,
        &vnc_path,
        &[
            ("authorization", operator),
            ("sec-websocket-protocol", "binary"),
        ],
    )
    .unwrap();
    let mut pending = Vec::new();
    assert_eq!(rfb(&mut vnc, &mut pending, 12), b"RFB 003.008\n");
    vnc.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .unwrap();
    let count = usize::from(rfb(&mut vnc, &mut pending, 1)[0]);
    let types = rfb(&mut vnc, &mut pending, count);
    assert!(types.contains(&1), "security types {types:?}");
    vnc.send(Message::Binary(vec![1].into())).unwrap();
    assert_eq!(
        rfb(&mut vnc, &mut pending, 4),
        [0, 0, 0, 0],
        "security result"
    );
    vnc.send(Message::Binary(vec![1].into())).unwrap();
    let init = rfb(&mut vnc, &mut pending, 24);
    let (width, height) = (&init[0..2], &init[2..4]);
    assert_ne!(width, [0, 0]);
    let name_length = u32::from_be_bytes(init[20..24].try_into().unwrap());
    rfb(
        &mut vnc,
        &mut pending,
        usize::try_from(name_length).unwrap(),
    );
    let mut request = vec![3, 0, 0, 0, 0, 0];
    request.extend_from_slice(width);
    request.extend_from_slice(height);
    vnc.send(Message::Binary(request.into())).unwrap();
    assert_eq!(rfb(&mut vnc, &mut pending, 1), [0], "a FramebufferUpdate");
    // The opening is in the audit log, under the caller's name.
    let audit = server.call(admin, "GET", "/api/v1/audit?limit=50", None);
    let entries = audit.json().unwrap()["entries"].clone();
    let opened = format!("open_vnc_console {vnc_path}: 101");
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry.to_string().contains(&opened) && entry.to_string().contains("otto")),
        "{entries}"
    );
    // Text is not RFB.
    vnc.send(Message::Text("hello".into())).unwrap();
    let frame = closed_within(&mut vnc, Duration::from_secs(10));
    assert_eq!(frame.code, CloseCode::Unsupported, "{frame:?}");

    // Serial, from this host's page with the session cookie: the guest's lines, then a line
    // typed (as a terminal sends it) comes back from the guest.
    let browser: Browser = server.sign_in("otto", PASSWORD).unwrap();
    let serial_path = format!("/api/v1/vms/{name}/console/serial");
    let origin = [
        ("cookie", browser.cookie.as_str()),
        ("origin", "https://vmhost"),
    ];
    let mut serial = open(&server, &serial_path, &origin).unwrap();
    read_until(&mut serial, GUEST_READY, Duration::from_secs(60));
    serial
        .send(Message::Text("typed in a browser\r".into()))
        .unwrap();
    read_until(
        &mut serial,
        &format!("{GUEST_HEARD} typed in a browser"),
        Duration::from_secs(20),
    );
    serial
        .send(Message::Binary(b"as bytes\r".to_vec().into()))
        .unwrap();
    read_until(
        &mut serial,
        &format!("{GUEST_HEARD} as bytes"),
        Duration::from_secs(20),
    );

    // A second client takes the serial console over: the newest wins, the first is told.
    let mut second = open(&server, &serial_path, &[("authorization", admin)]).unwrap();
    let frame = closed_within(&mut serial, Duration::from_secs(15));
    assert_eq!(frame.code, CloseCode::Normal, "{frame:?}");
    assert!(frame.reason.contains("another client"), "{frame:?}");
    read_until(&mut second, GUEST_READY, Duration::from_secs(20));

    // The VM stops: its console closes.
    let stopped = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    let frame = closed_within(&mut second, Duration::from_secs(15));
    assert_eq!(frame.code, CloseCode::Normal, "{frame:?}");
    delete_vm(&server, &name);
}

#[test]
fn consoles_are_refused_before_the_connection_is_taken_over() {
    let server = Server::with_libvirt(shared().daemon.uri());
    let running = unique("refused-running");
    let stopped = unique("refused-stopped");
    create_vm(&server, &running, false, true);
    create_vm(&server, &stopped, true, false);
    let admin = server.token(Role::Admin);
    let serial = format!("/api/v1/vms/{running}/console/serial");

    assert_eq!(open(&server, &serial, &[]).unwrap_err(), 401);
    let (status, body) = refused(&server, &serial, &[]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (401, Some("unauthenticated"))
    );
    let viewer = server.token(Role::Viewer);
    let (status, body) = refused(&server, &serial, &[("authorization", viewer)]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("use_console"),
        "{body}"
    );
    assert_eq!(
        open(&server, &serial, &[("authorization", viewer)]).unwrap_err(),
        403
    );

    let browser = server.sign_in("ada", PASSWORD).unwrap();
    for origin in ["https://evil.example", "http://vmhost", "null"] {
        let headers = [("cookie", browser.cookie.as_str()), ("origin", origin)];
        let (status, body) = refused(&server, &serial, &headers);
        assert_eq!(
            (status, body["kind"].as_str()),
            (403, Some("cross_origin")),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains(origin), "{body}");
        assert_eq!(open(&server, &serial, &headers).unwrap_err(), 403);
    }

    let plain = server.call(admin, "GET", &serial, None);
    assert_eq!(
        (plain.status, kind(&plain)),
        (400, "invalid_request".to_owned())
    );
    assert!(
        plain.text().contains("Upgrade: websocket"),
        "{}",
        plain.text()
    );
    let auth = ("authorization", admin);
    for (left_out, named) in [
        ("connection", "Connection: Upgrade"),
        ("sec-websocket-version", "Sec-WebSocket-Version: 13"),
        ("sec-websocket-key", "Sec-WebSocket-Key"),
    ] {
        let headers: Vec<(&str, &str)> = HANDSHAKE
            .iter()
            .copied()
            .filter(|(name, _)| *name != left_out)
            .chain([auth])
            .collect();
        let answer = server.client.get(&serial, &headers).unwrap();
        assert_eq!(answer.status, 400, "without {left_out}: {}", answer.text());
        assert!(answer.text().contains(named), "{}", answer.text());
    }

    let (status, body) = refused(
        &server,
        &format!("/api/v1/vms/{stopped}/console/vnc"),
        &[auth],
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("shut"), "{body}");
    let (status, body) = refused(
        &server,
        &format!("/api/v1/vms/{stopped}/console/serial"),
        &[auth],
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = refused(
        &server,
        &format!("/api/v1/vms/{running}/console/vnc"),
        &[auth],
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("no VNC display"),
        "{body}"
    );
    let (status, body) = refused(&server, "/api/v1/vms/nothing-here/console/vnc", &[auth]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    delete_vm(&server, &running);
    delete_vm(&server, &stopped);
}

#[test]
fn without_libvirt_the_consoles_say_what_is_missing() {
    let server = Server::start();
    let (status, body) = refused(
        &server,
        "/api/v1/vms/x/console/serial",
        &[("authorization", server.token(Role::Admin))],
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
}

#[test]
fn a_console_closes_at_logout_past_the_limit_none_opens_and_shutdown_closes_the_rest() {
    let server = Server::with_limits(
        Arc::new(NoHostDaemon),
        Some(shared().daemon.uri()),
        Limits {
            upgraded: 1,
            ..Limits::default()
        },
    );
    let name = unique("console-limit");
    create_vm(&server, &name, true, true);
    let serial = format!("/api/v1/vms/{name}/console/serial");
    let vnc = format!("/api/v1/vms/{name}/console/vnc");
    let admin = server.token(Role::Admin);

    // The one console allowed is open: another is refused, naming the limit.
    let browser = server.sign_in("ada", PASSWORD).unwrap();
    let mut console = open(&server, &serial, &[("cookie", browser.cookie.as_str())]).unwrap();
    let (status, body) = refused(&server, &vnc, &[("authorization", admin)]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("1 consoles"),
        "{body}"
    );

    // The session ends: its console closes within the session re-check, and its place is
    // free again.
    let logout = server.call_as(&browser, "DELETE", "/api/v1/session", None);
    assert_eq!(logout.status, 200, "{}", logout.text());
    let frame = closed_within(&mut console, Duration::from_secs(15));
    assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    assert!(frame.reason.contains("sign in again"), "{frame:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reopened = loop {
        match open(&server, &vnc, &[("authorization", admin)]) {
            Ok(socket) => break socket,
            Err(503) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(status) => panic!("reopening: {status}"),
        }
    };
    let mut pending = Vec::new();
    assert_eq!(rfb(&mut reopened, &mut pending, 12), b"RFB 003.008\n");

    // A quiet console is pinged, so that a reverse proxy does not close it as idle.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(Instant::now() < deadline, "no ping on a quiet console");
        match reopened.read() {
            Ok(Message::Ping(_)) => break,
            Ok(message) => panic!("a quiet display sent {message:?}"),
            Err(tungstenite::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("waiting for a ping: {error}"),
        }
    }

    // The server stops: the open console is told so and the server does not wait for it
    // until the end of the grace period.
    let stopping = Instant::now();
    let stopper = std::thread::spawn(move || drop(server));
    let frame = closed_within(&mut reopened, Duration::from_secs(10));
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    stopper.join().unwrap();
    assert!(
        stopping.elapsed() < Limits::default().shutdown_grace,
        "{:?}",
        stopping.elapsed()
    );
    let hypervisor = mfv_vm::Hypervisor::connect(shared().daemon.uri()).unwrap();
    hypervisor.force_off(&name).unwrap();
    hypervisor
        .undefine(&name, mfv_vm::VolumePolicy::Keep)
        .unwrap();
}
