//! `mfv-hostd`: the host daemon, a service PID 1 starts and restarts. It listens on
//! the protocol's socket, checks each peer's credentials (SO_PEERCRED) before reading a
//! byte of its requests, and answers with [`mfv_host::daemon`], one thread per connection.
//!
//! A connection that sends nothing for [`IDLE_TIMEOUT`] is closed, and at most
//! [`MAX_CONNECTIONS`] are served at once, so a stuck or hostile client cannot tie the daemon
//! up; a malformed, truncated or oversized frame ends only its own connection.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use mfv_api::{
    ApiError, ErrorKind, FrameError, Reply, ServeError, serve_requests, server_handshake,
    write_message,
};
use mfv_host::daemon::{HostDaemon, InitControl, Peer};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::Pid;

/// The web server's user: it may use the daemon for what the web offers.
pub const WEB_USER: &str = "mfv-web";
/// A connection idle this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections served at once; more are refused with a `busy` error.
pub const MAX_CONNECTIONS: usize = 32;
/// How often the working copy of the auth database is written back when it changed.
pub const AUTH_WRITE_BACK_INTERVAL: Duration = Duration::from_secs(10);
/// The name the daemon gives in its handshake.
const SERVER_NAME: &str = concat!("mfv-hostd ", env!("CARGO_PKG_VERSION"), " host daemon");

/// PID 1, reached with signals: SIGINT reboots, SIGTERM powers off, SIGHUP reads the restart
/// and network requests (see `signals.rs`).
#[derive(Debug)]
struct Pid1;

impl InitControl for Pid1 {
    fn shut_down(&mut self, reboot: bool) -> std::io::Result<()> {
        let signal = if reboot {
            Signal::SIGINT
        } else {
            Signal::SIGTERM
        };
        kill(Pid::from_raw(1), signal).map_err(std::io::Error::from)
    }

    fn restart_requested(&mut self) -> std::io::Result<()> {
        kill(Pid::from_raw(1), Signal::SIGHUP).map_err(std::io::Error::from)
    }

    fn network_requested(&mut self) -> std::io::Result<()> {
        kill(Pid::from_raw(1), Signal::SIGHUP).map_err(std::io::Error::from)
    }

    fn setup_saved(&mut self) -> std::io::Result<()> {
        kill(Pid::from_raw(1), Signal::SIGHUP).map_err(std::io::Error::from)
    }
}

/// Runs the daemon on `socket` until the process is killed.
pub fn run(socket: &Path, run_dir: &Path) -> anyhow::Result<()> {
    let web_uid = nix::unistd::User::from_name(WEB_USER)
        .ok()
        .flatten()
        .map(|user| user.uid.as_raw());
    let web_gid = nix::unistd::Group::from_name(WEB_USER)
        .ok()
        .flatten()
        .map(|group| group.gid);
    // Before the socket is bound: the web server starts once it is, and needs these.
    let daemon = HostDaemon {
        run_dir: run_dir.to_path_buf(),
        roots: mfv_probe::SystemRoots::default(),
        init: Pid1,
    };
    for line in daemon.prepare_web(web_gid) {
        println!("host daemon: {line}");
    }
    keep_auth_written_back(daemon)?;
    let listener = listen(socket, web_gid)?;
    serve(
        listener,
        run_dir.to_path_buf(),
        move |uid| Peer::for_uid(uid, web_uid),
        || Pid1,
    )
}

/// Writes the working copy of the auth database back to the config volume every
/// [`AUTH_WRITE_BACK_INTERVAL`] when it changed, and once more when PID 1 stops the daemon
/// (SIGTERM, at shutdown), then exits. SIGTERM is blocked in every thread of the daemon but
/// the one that waits for it, so it cannot end the daemon halfway through a write.
fn keep_auth_written_back(daemon: HostDaemon<Pid1>) -> anyhow::Result<()> {
    let terminate = SigSet::from(Signal::SIGTERM);
    terminate
        .thread_block()
        .context("block SIGTERM in the daemon's threads")?;
    let daemon = Arc::new(daemon);
    let written = Arc::new(Mutex::new(None));
    let write_back = {
        let (daemon, written) = (Arc::clone(&daemon), Arc::clone(&written));
        move || {
            let mut written = written.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(line) = daemon.write_back_auth(&mut written) {
                println!("host daemon: {line}");
            }
        }
    };
    let periodic = write_back.clone();
    std::thread::Builder::new()
        .name("auth write-back".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(AUTH_WRITE_BACK_INTERVAL);
                periodic();
            }
        })
        .context("start the auth write-back thread")?;
    std::thread::Builder::new()
        .name("SIGTERM".to_owned())
        .spawn(move || {
            if terminate.wait().is_ok() {
                write_back();
                std::process::exit(0);
            }
        })
        .context("start the SIGTERM thread")?;
    Ok(())
}

/// Binds `socket` (replacing what a previous daemon left), readable and writable by root and
/// the web server's group only.
fn listen(socket: &Path, web_gid: Option<nix::unistd::Gid>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("remove {}", socket.display())),
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("bind {}", socket.display()))?;
    if let Some(gid) = web_gid {
        nix::unistd::chown(socket, None, Some(gid))
            .with_context(|| format!("chown {}", socket.display()))?;
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", socket.display()))?;
    Ok(listener)
}

/// Accepts connections on `listener` and serves each in a thread of its own, to the peers
/// `peer_of` admits by uid.
fn serve<C: InitControl + Send + 'static>(
    listener: UnixListener,
    run_dir: PathBuf,
    peer_of: impl Fn(u32) -> Option<Peer> + Send + Sync + Copy + 'static,
    init: impl Fn() -> C,
) -> anyhow::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("host daemon: accept: {error}");
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            refuse(
                &mut stream,
                ErrorKind::Busy,
                format!("the host daemon serves {MAX_CONNECTIONS} connections already"),
            );
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let daemon = HostDaemon {
            run_dir: run_dir.clone(),
            roots: mfv_probe::SystemRoots::default(),
            init: init(),
        };
        let open = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("host daemon connection".to_owned())
            .spawn(move || {
                connection(stream, daemon, peer_of);
                open.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(error) = spawned {
            eprintln!("host daemon: cannot start a connection thread: {error}");
        }
    }
    Ok(())
}

/// One client: credentials, handshake, then its requests until it hangs up.
fn connection<C: InitControl>(
    mut stream: UnixStream,
    mut daemon: HostDaemon<C>,
    peer_of: impl Fn(u32) -> Option<Peer>,
) {
    let credentials = match getsockopt(&stream, PeerCredentials) {
        Ok(credentials) => credentials,
        Err(error) => {
            eprintln!("host daemon: SO_PEERCRED: {error}");
            return;
        }
    };
    let uid = credentials.uid();
    let Some(peer) = peer_of(uid) else {
        eprintln!(
            "host daemon: refused pid {} uid {uid}: not root nor {WEB_USER}",
            credentials.pid()
        );
        refuse(
            &mut stream,
            ErrorKind::NotPermitted,
            format!("uid {uid} may not use the host daemon (root and {WEB_USER} only)"),
        );
        return;
    };
    if let Err(error) = stream
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IDLE_TIMEOUT)))
    {
        eprintln!("host daemon: cannot set timeouts: {error}");
        return;
    }
    match server_handshake(&mut stream, SERVER_NAME) {
        Ok(_) => {}
        // A client that connects and goes away (PID 1 checking that the daemon is ready).
        Err(ServeError::Frame(FrameError::Closed)) => return,
        Err(error) => {
            eprintln!("host daemon: uid {uid}: {}", mfv_linux::error_chain(&error));
            return;
        }
    }
    let mut handler = |request| daemon.handle(peer, request);
    if let Err(error) = serve_requests(&mut stream, &mut handler) {
        eprintln!("host daemon: uid {uid}: {}", mfv_linux::error_chain(&error));
    }
}

/// Tells a client why it is not served, without reading what it sent.
fn refuse(stream: &mut UnixStream, kind: ErrorKind, message: String) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write_message(stream, &Reply::<()>::Error(ApiError::new(kind, message)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_api::{Client, LogSource, Request, ServiceState, ServiceStatus};
    use mfv_host::daemon::DetachedInit;

    /// A daemon on a socket in a temp dir, serving in a thread the peers `peer_of` admits.
    fn start(peer_of: fn(u32) -> Option<Peer>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("host.sock");
        let run_dir = dir.path().join("run");
        mfv_host::services::write_status(
            &run_dir,
            &[ServiceStatus::new("libvirtd", ServiceState::Running)],
        )
        .unwrap();
        let listener = listen(&socket, None).unwrap();
        std::thread::spawn(move || serve(listener, run_dir, peer_of, || DetachedInit));
        (dir, socket)
    }

    fn anyone(_: u32) -> Option<Peer> {
        Some(Peer::Root)
    }

    #[test]
    fn a_peer_is_served_and_the_socket_is_for_root_and_the_web_group() {
        let (_dir, socket) = start(anyone);
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let mut client = Client::connect(&socket).unwrap();
        let services = client.services().unwrap();
        assert_eq!(services[0].name, "libvirtd");
        // The same connection goes on serving.
        assert!(client.logs(LogSource::Boot, 10).unwrap().is_empty());
    }

    #[test]
    fn a_peer_not_on_the_allow_list_is_refused_by_its_uid() {
        let (_dir, socket) = start(|_| None);
        let error = Client::connect(&socket).unwrap_err();
        let uid = nix::unistd::getuid();
        assert!(
            error
                .to_string()
                .contains(&format!("uid {uid} may not use the host daemon"))
                || format!("{error:?}").contains(&format!("uid {uid} may not use the host daemon")),
            "{error:?}"
        );
    }

    #[test]
    fn malformed_and_oversized_frames_end_only_their_connection() {
        use std::io::{Read, Write};
        let (_dir, socket) = start(anyone);
        // Not JSON: answered with invalid_request and the connection goes on.
        let mut client = Client::connect(&socket).unwrap();
        let reply = client.request(&Request::HostStatus);
        assert!(reply.is_err(), "no boot report yet: {reply:?}");
        // A frame announcing more than the limit: the daemon closes this connection.
        let mut raw = UnixStream::connect(&socket).unwrap();
        raw.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let mut buffer = Vec::new();
        let _ = raw.read_to_end(&mut buffer);
        // A truncated frame, then the peer goes away.
        let mut raw = UnixStream::connect(&socket).unwrap();
        raw.write_all(&[0, 0, 0, 50, b'{']).unwrap();
        drop(raw);
        // Others are still served.
        let mut client = Client::connect(&socket).unwrap();
        assert!(client.services().is_ok());
    }
}
