//! Sends what a well-behaved client never sends to the host daemon's socket, for the appliance
//! tests: the appliance has no program that writes raw frames, so this one is copied into the
//! booted guest on a disk and run there. It needs nothing from the guest but its C library.
//!
//! `host-socket-probe SOCKET` tries each case on a connection of its own and prints one line
//! per case: `probe CASE: ` and the daemon's reply (its JSON), or `closed` when the daemon
//! ended the connection without one. The frames are the protocol's: a 4-byte big-endian length,
//! then that many bytes of JSON.
//!
//! `host-socket-probe as UID GID COMMAND [ARG...]` runs COMMAND as that user and group with no
//! supplementary groups: the appliance's busybox `setpriv` cannot change users.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long the probe waits for a reply before it says so.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The hello of the protocol the daemon speaks.
const HELLO: &str = r#"{"protocol": 1, "client": "host-socket-probe"}"#;

fn frame(body: &[u8]) -> Vec<u8> {
    // The probe's frames are a few bytes long.
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// The bytes each case sends, after which it closes its writing half.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let hello = frame(HELLO.as_bytes());
    let after_hello = |bytes: &[u8]| [hello.as_slice(), bytes].concat();
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"{\"type\":");
    vec![
        (
            "wrong-protocol",
            frame(br#"{"protocol": 999, "client": "host-socket-probe"}"#),
        ),
        ("malformed-hello", frame(b"{not json")),
        ("malformed-request", after_hello(&frame(b"[1, 2"))),
        (
            "unknown-request",
            after_hello(&frame(br#"{"type": "format_everything"}"#)),
        ),
        ("truncated", after_hello(&truncated)),
        ("oversized", after_hello(&u32::MAX.to_be_bytes())),
        (
            "valid",
            after_hello(&frame(br#"{"type": "service_status"}"#)),
        ),
    ]
}

/// Reads the replies until the daemon closes: each frame's body, as text. A daemon that closes
/// before reading all that was sent resets the connection after its reply; what arrived counts.
fn replies(stream: &mut UnixStream) -> std::io::Result<Vec<String>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => received.extend_from_slice(&buffer[..count]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error)
                if error.kind() == std::io::ErrorKind::ConnectionReset && !received.is_empty() =>
            {
                break;
            }
            Err(error) => return Err(error),
        }
    }
    let mut replies = Vec::new();
    let mut rest = received.as_slice();
    while let Some((prefix, after)) = rest.split_first_chunk::<4>() {
        let len = (u32::from_be_bytes(*prefix) as usize).min(after.len());
        replies.push(String::from_utf8_lossy(&after[..len]).into_owned());
        rest = &after[len..];
    }
    Ok(replies)
}

fn probe(socket: &str, bytes: &[u8]) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    // A daemon that refuses the peer answers and closes before reading: the write then breaks
    // the pipe, and the refusal is still there to read.
    match stream.write_all(bytes) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => return Err(error),
        _ => {}
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let replies = replies(&mut stream)?;
    Ok(if replies.is_empty() {
        "closed".to_owned()
    } else {
        replies.join(" | ")
    })
}

/// Drops to `uid`:`gid` without supplementary groups and replaces itself with `command`.
fn run_as(uid: &str, gid: &str, command: &[String]) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, execvp, setgid, setgroups, setuid};
    use std::ffi::CString;
    let uid: u32 = uid
        .parse()
        .map_err(|_| format!("uid {uid:?} is not a number"))?;
    let gid: u32 = gid
        .parse()
        .map_err(|_| format!("gid {gid:?} is not a number"))?;
    let argv = command
        .iter()
        .map(|arg| CString::new(arg.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "an argument holds a NUL byte".to_owned())?;
    let Some(program) = argv.first() else {
        return Err("no command to run".to_owned());
    };
    setgroups(&[]).map_err(|error| format!("setgroups: {error}"))?;
    setgid(Gid::from_raw(gid)).map_err(|error| format!("setgid {gid}: {error}"))?;
    setuid(Uid::from_raw(uid)).map_err(|error| format!("setuid {uid}: {error}"))?;
    let Err(error) = execvp(program, &argv);
    Err(format!("{}: {error}", command[0]))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, uid, gid, command @ ..] = args.as_slice() {
        if mode == "as" {
            if let Err(error) = run_as(uid, gid, command) {
                eprintln!("host-socket-probe: {error}");
            }
            std::process::exit(2);
        }
    }
    let [socket] = args.as_slice() else {
        eprintln!(
            "usage: host-socket-probe SOCKET | host-socket-probe as UID GID COMMAND [ARG...]"
        );
        std::process::exit(2);
    };
    for (case, bytes) in cases() {
        match probe(socket, &bytes) {
            Ok(reply) => println!("probe {case}: {reply}"),
            Err(error) => println!("probe {case}: failed: {error}"),
        }
    }
}
