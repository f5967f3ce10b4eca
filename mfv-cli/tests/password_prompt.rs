//! `mfv user add` reading the password from a terminal (a pseudo-terminal here): asked twice
//! without echo, refused when the two differ; and refused when stdin is no terminal and
//! `--password-stdin` is not given.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// `mfv ARGS` with stdin and stderr on a new pseudo-terminal; returns the child and the
/// terminal's master side.
fn spawn_on_terminal(args: &[&str]) -> (Child, File) {
    // openpty's descriptors are inherited by every child spawned meanwhile (they lack
    // close-on-exec), and a child of another test holding this terminal open would keep its
    // master from ever seeing the end. So they are replaced at once by close-on-exec copies
    // (`try_clone`), and no other terminal is opened meanwhile.
    static OPENING: Mutex<()> = Mutex::new(());
    let _opening = OPENING.lock().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let (master, slave) = (
        pty.master.try_clone().unwrap(),
        pty.slave.try_clone().unwrap(),
    );
    drop(pty);
    let child = Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    (child, File::from(master))
}

/// Reads the terminal until `expected` has appeared; returns everything read.
fn read_until(terminal: &mut File, transcript: &mut String, expected: &str) {
    let mut buffer = [0u8; 256];
    while !transcript.contains(expected) {
        let count = terminal.read(&mut buffer).unwrap();
        assert!(
            count > 0,
            "the terminal closed before {expected:?}: {transcript:?}"
        );
        transcript.push_str(&String::from_utf8_lossy(&buffer[..count]));
    }
}

/// Reads the terminal until the child has closed it.
fn read_to_end(terminal: &mut File, transcript: &mut String) {
    let mut buffer = [0u8; 256];
    loop {
        match terminal.read(&mut buffer) {
            Ok(0) => return,
            Ok(count) => transcript.push_str(&String::from_utf8_lossy(&buffer[..count])),
            // Linux reports the closed slave side as EIO.
            Err(error) if error.raw_os_error() == Some(nix::libc::EIO) => return,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("reading the terminal: {error}"),
        }
    }
}

/// Types `first` and `second` at the two prompts; returns the exit code and the transcript.
fn add_user_typing(db: &str, first: &str, second: &str) -> (Option<i32>, String) {
    let (mut child, mut terminal) = spawn_on_terminal(&["user", "add", "carol", "--db", db]);
    let mut transcript = String::new();
    read_until(&mut terminal, &mut transcript, "New password: ");
    terminal.write_all(format!("{first}\n").as_bytes()).unwrap();
    read_until(&mut terminal, &mut transcript, "Retype the password: ");
    terminal
        .write_all(format!("{second}\n").as_bytes())
        .unwrap();
    read_to_end(&mut terminal, &mut transcript);
    (child.wait().unwrap().code(), transcript)
}

#[test]
fn the_password_is_asked_twice_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite").display().to_string();
    let (code, transcript) = add_user_typing(&db, "typed-secret", "typed-secret");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(
        !transcript.contains("typed-secret"),
        "echoed: {transcript:?}"
    );
    assert!(
        transcript.ends_with("added user carol with role viewer to the sqlite backend\r\n"),
        "{transcript:?}"
    );
}

#[test]
fn two_different_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite").display().to_string();
    let (code, transcript) = add_user_typing(&db, "first-secret", "second-secret");
    assert_eq!(code, Some(1), "{transcript}");
    assert!(
        transcript.ends_with("mfv: the passwords do not match\r\n"),
        "{transcript:?}"
    );
}

#[test]
fn a_password_is_not_read_from_a_pipe_without_password_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("auth.sqlite").display().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(["user", "add", "carol", "--db", &db])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "mfv: stdin is not a terminal: pass --password-stdin to read the password from it\n"
    );
}
