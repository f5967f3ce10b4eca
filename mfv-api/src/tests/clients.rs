//! Both clients against the server loop on a real Unix socket in a temporary directory.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::samples::{host_status, web_service};
use crate::*;

/// The test server's answers: a host with one service, `mfv-web`, and a configuration at
/// generation 3.
fn answer(request: Request) -> Result<Response, ApiError> {
    match request {
        Request::HostStatus => Ok(Response::HostStatus(host_status())),
        Request::ServiceStatus { name } => match name.as_deref() {
            None | Some("mfv-web") => Ok(Response::Services {
                services: vec![web_service()],
            }),
            Some(other) => Err(not_found(other)),
        },
        Request::ServiceRestart { name } => Err(not_found(&name)),
        Request::ConfigSave {
            base_generation: Some(3),
            ..
        } => Ok(Response::ConfigSaved { generation: 4 }),
        Request::ConfigSave { .. } => Err(ApiError::new(
            ErrorKind::StaleGeneration,
            "generation 3 is current",
        )
        .with_field("base_generation")),
        // The wrong answer, for the client to notice.
        Request::Inventory => Ok(Response::Accepted),
        Request::Reboot => Ok(Response::Accepted),
        other => Err(ApiError::new(
            ErrorKind::Internal,
            format!("the test server does not answer {}", other.name()),
        )),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no service named {name}")).with_field("name")
}

/// A listening socket in a temporary directory and the thread that serves one connection on
/// it; the thread returns how the connection ended.
struct TestServer {
    _dir: tempfile::TempDir,
    path: PathBuf,
    thread: JoinHandle<Result<String, ServeError>>,
}

impl TestServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let thread = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let hello = server_handshake(&mut stream, "test-server")?;
            serve_requests(&mut stream, &mut answer)?;
            Ok(hello.client)
        });
        Self {
            _dir: dir,
            path,
            thread,
        }
    }

    /// How the connection ended: the client's name after a clean close.
    fn finish(self) -> Result<String, ServeError> {
        self.thread.join().unwrap()
    }
}

/// What a client gets for the requests it makes, as text.
fn outcome<T: std::fmt::Debug>(result: Result<T, ClientError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(error) => format!("error: {error}"),
    }
}

/// What both clients must get from the test server on `path`, in the order the tests ask.
fn expected(path: &Path) -> Vec<String> {
    vec![
        format!("{:?}", host_status()),
        format!("{:?}", web_service()),
        format!("{:?}", vec![web_service()]),
        "error: not_found: name: no service named sshd".into(),
        "4".into(),
        "error: stale_generation: base_generation: generation 3 is current".into(),
        "error: request not sent".into(),
        format!("error: {} answered inventory with accepted", path.display()),
    ]
}

#[test]
fn the_blocking_client_calls_the_server() {
    let server = TestServer::start();
    let mut client = Client::connect_as(&server.path, "test-client").unwrap();
    assert_eq!(client.server().server, "test-server");
    assert_eq!(client.server().protocol, PROTOCOL_VERSION);
    client.set_timeout(Some(Duration::from_secs(10))).unwrap();
    let outcomes = vec![
        outcome(client.host_status()),
        outcome(client.service("mfv-web")),
        outcome(client.services()),
        outcome(client.service_restart("sshd")),
        outcome(client.config_save("version = 1\n", Some(3))),
        outcome(client.config_save("version = 1\n", Some(2))),
        outcome(client.format_config_volume("/dev/sdb1", VolumeFs::Ext4, "/dev/sda1")),
        outcome(client.inventory()),
    ];
    assert_eq!(outcomes, expected(&server.path));
    client.reboot().unwrap();
    drop(client);
    assert_eq!(server.finish().unwrap(), "test-client");
}

#[cfg(feature = "async")]
#[tokio::test]
async fn the_async_client_calls_the_server() {
    let server = TestServer::start();
    let mut client = AsyncClient::connect_as(&server.path, "test-async-client")
        .await
        .unwrap();
    assert_eq!(client.server().server, "test-server");
    let outcomes = vec![
        outcome(client.host_status().await),
        outcome(client.service("mfv-web").await),
        outcome(client.services().await),
        outcome(client.service_restart("sshd").await),
        outcome(client.config_save("version = 1\n", Some(3)).await),
        outcome(client.config_save("version = 1\n", Some(2)).await),
        outcome(
            client
                .format_config_volume("/dev/sdb1", VolumeFs::Ext4, "/dev/sda1")
                .await,
        ),
        outcome(client.inventory().await),
    ];
    assert_eq!(outcomes, expected(&server.path));
    client.reboot().await.unwrap();
    drop(client);
    assert_eq!(server.finish().unwrap(), "test-async-client");
}

#[test]
fn a_client_of_another_protocol_is_refused() {
    let (mut client, mut server) = UnixStream::pair().unwrap();
    let thread = thread::spawn(move || server_handshake(&mut server, "test-server"));
    let hello = Hello {
        protocol: PROTOCOL_VERSION + 1,
        client: "mfv 9.0".into(),
    };
    write_message(&mut client, &hello).unwrap();
    let reply: Reply<Welcome> = read_message(&mut client).unwrap();
    let Reply::Error(error) = reply else {
        panic!("welcomed: {reply:?}");
    };
    assert_eq!(error.kind, ErrorKind::UnsupportedProtocol);
    assert_eq!(error.field.as_deref(), Some("protocol"));
    assert!(matches!(
        thread.join().unwrap(),
        Err(ServeError::Refused(refused)) if refused == error
    ));
}

#[test]
fn a_refusing_server_is_an_api_error_for_the_client() {
    let (client, mut server) = UnixStream::pair().unwrap();
    let thread = thread::spawn(move || {
        let _: Hello = read_message(&mut server).unwrap();
        let refusal = ApiError::new(ErrorKind::UnsupportedProtocol, "protocol 2 only");
        write_message(&mut server, &Reply::<Welcome>::Error(refusal)).unwrap();
    });
    let error = Client::handshake(client, Path::new("pair"), "test").unwrap_err();
    thread.join().unwrap();
    assert_eq!(
        error.api_error().map(|error| error.kind),
        Some(ErrorKind::UnsupportedProtocol)
    );
}

/// The refusal a daemon sends a peer its credentials rule out, before reading anything.
fn not_permitted() -> ApiError {
    ApiError::new(
        ErrorKind::NotPermitted,
        "uid 1000 may not use the host daemon (root and mfv-web only)",
    )
}

#[test]
fn a_refusal_sent_before_the_hello_is_read_reaches_the_client() {
    let (client, mut server) = UnixStream::pair().unwrap();
    write_message(&mut server, &Reply::<Welcome>::Error(not_permitted())).unwrap();
    drop(server);
    let error = Client::handshake(client, Path::new("pair"), "test").unwrap_err();
    assert_eq!(error.api_error(), Some(&not_permitted()), "{error:?}");
}

#[cfg(feature = "async")]
#[tokio::test]
async fn a_refusal_sent_before_the_hello_is_read_reaches_the_async_client() {
    let (client, mut server) = UnixStream::pair().unwrap();
    write_message(&mut server, &Reply::<Welcome>::Error(not_permitted())).unwrap();
    drop(server);
    client.set_nonblocking(true).unwrap();
    let client = tokio::net::UnixStream::from_std(client).unwrap();
    let error = AsyncClient::handshake(client, Path::new("pair"), "test")
        .await
        .unwrap_err();
    assert_eq!(error.api_error(), Some(&not_permitted()), "{error:?}");
}

#[test]
fn a_server_that_closes_without_a_word_is_an_io_error() {
    let (client, server) = UnixStream::pair().unwrap();
    drop(server);
    let error = Client::handshake(client, Path::new("pair"), "test").unwrap_err();
    assert!(
        matches!(&error, ClientError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe),
        "{error:?}"
    );
}

#[test]
fn an_invalid_frame_gets_an_error_reply_and_the_connection_goes_on() {
    let (mut client, mut server) = UnixStream::pair().unwrap();
    let thread = thread::spawn(move || serve_requests(&mut server, &mut answer));
    write_message(
        &mut client,
        &serde_json::json!({"type": "format_everything"}),
    )
    .unwrap();
    let reply: Reply<Response> = read_message(&mut client).unwrap();
    let Reply::Error(error) = reply else {
        panic!("answered: {reply:?}");
    };
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert!(
        error
            .message
            .starts_with("not a valid request: unknown variant `format_everything`"),
        "{}",
        error.message
    );
    // A request the client did not validate is validated by the server.
    let unchecked = Request::Logs {
        source: LogSource::Boot,
        limit: 0,
    };
    write_message(&mut client, &unchecked).unwrap();
    let reply: Reply<Response> = read_message(&mut client).unwrap();
    assert_eq!(reply, Reply::Error(unchecked.validate().unwrap_err()));
    write_message(&mut client, &Request::Reboot).unwrap();
    let reply: Reply<Response> = read_message(&mut client).unwrap();
    assert_eq!(reply, Reply::Ok(Response::Accepted));
    drop(client);
    thread.join().unwrap().unwrap();
}

#[test]
fn a_server_that_stops_answering_times_the_client_out() {
    let (client, mut server) = UnixStream::pair().unwrap();
    let thread = thread::spawn(move || {
        server_handshake(&mut server, "test-server").unwrap();
        // Reads the request and never answers; returns when the client hangs up.
        let _ = read_frame(&mut server);
        let _ = read_frame(&mut server);
    });
    let mut client = Client::handshake(client, Path::new("pair"), "test").unwrap();
    client.set_timeout(Some(Duration::from_millis(50))).unwrap();
    let error = client.host_status().unwrap_err();
    assert!(
        matches!(&error, ClientError::Io { path, .. } if path == Path::new("pair")),
        "{error:?}"
    );
    drop(client);
    thread.join().unwrap();
}

/// A server for [`apply_network`]: serves `connections` connections one after the other and
/// returns, per connection, the requests it got; an apply is answered `applied` (id 3), a
/// confirm of 3 `confirmed`.
fn network_server(
    connections: usize,
) -> (tempfile::TempDir, PathBuf, JoinHandle<Vec<Vec<String>>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            server_handshake(&mut stream, "test-server").unwrap();
            let mut requests = Vec::new();
            serve_requests(&mut stream, &mut |request: Request| {
                requests.push(request.name().to_owned());
                match request {
                    Request::NetworkApply { .. } => {
                        Ok(Response::Network(NetworkOutcome::Applied {
                            apply_id: 3,
                            confirm_within_secs: 5,
                            changes: vec!["add 192.0.2.10/24 to eth0".into()],
                        }))
                    }
                    Request::NetworkConfirm { apply_id: 3 } => {
                        Ok(Response::Network(NetworkOutcome::Confirmed))
                    }
                    other => Err(ApiError::new(ErrorKind::NotFound, other.name())),
                }
            })
            .unwrap();
            seen.push(requests);
        }
        seen
    });
    (dir, path, thread)
}

#[test]
fn a_network_change_is_confirmed_over_a_new_connection() {
    let (_dir, path, server) = network_server(2);
    let mut shown = None;
    let outcome = apply_network(&path, "test", "[network]\n", 5, |change| {
        shown = Some(change.clone());
        true
    })
    .unwrap();
    assert_eq!(outcome, NetworkOutcome::Confirmed);
    assert_eq!(
        shown,
        Some(ProvisionalChange {
            apply_id: 3,
            confirm_within_secs: 5,
            changes: vec!["add 192.0.2.10/24 to eth0".into()],
        })
    );
    assert_eq!(
        server.join().unwrap(),
        [vec!["network_apply"], vec!["network_confirm"]]
    );
}

#[test]
fn a_network_change_not_kept_is_left_to_roll_back() {
    let (_dir, path, server) = network_server(1);
    let outcome = apply_network(&path, "test", "[network]\n", 5, |_| false).unwrap();
    assert!(
        matches!(outcome, NetworkOutcome::Applied { apply_id: 3, .. }),
        "{outcome:?}"
    );
    assert_eq!(server.join().unwrap(), [vec!["network_apply"]]);
}

#[test]
fn a_network_change_whose_host_is_gone_is_not_confirmed() {
    let (_dir, path, server) = network_server(1);
    let error = apply_network(&path, "test", "[network]\n", 5, |_| {
        // The host cannot be reached any more.
        std::fs::remove_file(&path).unwrap();
        true
    })
    .unwrap_err();
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
    assert_eq!(server.join().unwrap(), [vec!["network_apply"]]);
}
