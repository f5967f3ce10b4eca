//! A private server process for tests (slapd, mariadbd, ganesha.nfsd): its own temp dir, a free loopback
//! port ([`crate::free_local_port`]), and a watchdog that kills the server and removes the dir when the test process ends.
//!
//! The server is not a direct child of the test process. A small `sh` watchdog is started
//! first, as soon as the temp dir exists; its stdin is a pipe whose only writer is the test
//! process. The test prepares the dir (config, database files, certificates), then writes
//! one line: the watchdog starts the server and blocks reading the pipe again. When the test
//! process exits for any reason (end of the run, a panic, SIGKILL, even during preparation)
//! the kernel closes the pipe; the watchdog reads end-of-file, SIGKILLs the server if it
//! started, waits for it and deletes the temp dir. So a fixture kept in a `static` (never
//! dropped) still never outlives its test binary, and a fixture owned by one test stops at
//! once when dropped. Ctrl-C does not orphan the server: the watchdog ignores SIGINT and
//! SIGHUP and waits for the pipe instead. Both keep their output away from the test
//! harness's pipes (the server logs to `server.log` in the dir).

use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The watchdog: `$1` is the temp dir, the rest the server's command line, run once a line
/// arrives on stdin in a session (and process group) of its own, so that killing the group
/// also kills anything the command started (a setup script's helpers).
const WATCHDOG_SCRIPT: &str = r#"
trap '' INT HUP
dir=$1
shift
if read -r _start; then
    setsid "$@" >"$dir/server.log" 2>&1 </dev/null &
    server=$!
    echo "$server" >"$dir/server.pid"
    read -r _ignored || true
    kill -KILL "-$server" 2>/dev/null
    kill -KILL "$server" 2>/dev/null
    wait "$server" 2>/dev/null
fi
rm -rf "$dir"
"#;

/// Finds `binary` in PATH or the sbin directories, or fails naming the Debian package that
/// provides it. A missing server is a test failure, never a silent skip.
pub fn require_binary(binary: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{binary} is not installed: install the Debian package {package} \
                 (`cargo xtask deps` installs every package the tests need)"
            )
        })
}

/// Runs `command` to completion and fails with its output if it exits non-zero.
pub fn run_checked(command: &mut Command) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{command:?} failed with {}:\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// A server process under its watchdog, with its temp dir.
#[derive(Debug)]
pub struct ServerProcess {
    /// What the server is, for messages (`slapd`, `mariadbd`).
    name: &'static str,
    /// The temp dir; the watchdog removes it after the server stopped.
    dir: PathBuf,
    /// The watchdog; its stdin is the pipe whose closing stops the server.
    watchdog: Child,
    /// The write end of that pipe, `None` once the server was told to stop.
    lifeline: Option<ChildStdin>,
}

impl ServerProcess {
    /// Makes a temp dir and a watchdog for a server called `name`, whose command line
    /// `command` returns given the dir. The server does not run yet: prepare the dir, then
    /// call [`ServerProcess::start`].
    pub fn new(
        name: &'static str,
        command: impl FnOnce(&Path) -> (PathBuf, Vec<String>),
    ) -> Result<Self> {
        let temp_dir = tempfile::Builder::new()
            .prefix(&format!("mfv-test-{name}-"))
            .tempdir()
            .context("creating a temp dir")?;
        let (program, args) = command(temp_dir.path());
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("mfv-test-watchdog")
            .arg(temp_dir.path())
            .arg(&program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the watchdog for {name} (sh, package dash)"))?;
        let lifeline = watchdog.stdin.take();
        // From here on the watchdog deletes the dir, also when this process is killed.
        let dir = temp_dir.keep();
        Ok(ServerProcess {
            name,
            dir,
            watchdog,
            lifeline,
        })
    }

    /// Tells the watchdog to start the server.
    pub fn start(&mut self) -> Result<()> {
        let lifeline = self
            .lifeline
            .as_mut()
            .with_context(|| format!("{} was killed already", self.name))?;
        lifeline
            .write_all(b"start\n")
            .with_context(|| format!("telling the watchdog to start {}", self.name))
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id, once started (the watchdog writes it when it starts the
    /// server); a benchmark reads the server's memory through it.
    pub fn pid(&self) -> Result<u32> {
        let path = self.dir.join("server.pid");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("{} has not started ({})", self.name, path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{}: not a process id: {text:?}", path.display()))
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        let path = self.dir.join("server.log");
        fs::read_to_string(&path).unwrap_or_else(|error| format!("({}: {error})", path.display()))
    }

    /// Waits until `ready` returns true, for at most `deadline`; fails with the server's log
    /// if the server exited or the deadline passed.
    pub fn wait_until(
        &mut self,
        deadline: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.watchdog.try_wait().context("polling the watchdog")? {
                bail!(
                    "the {} watchdog exited ({status}) before the server was ready",
                    self.name
                );
            }
            if self.server_exited() {
                bail!(
                    "{} exited before it was ready; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if start.elapsed() > deadline {
                bail!(
                    "{} was not ready after {deadline:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server was started and has exited: it is gone or a zombie (the watchdog
    /// reaps it only when told to stop).
    fn server_exited(&self) -> bool {
        let Ok(pid) = fs::read_to_string(self.dir.join("server.pid")) else {
            return false;
        };
        match fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            // The state is the field after the parenthesized command name.
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => true,
        }
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    pub fn wait_for_port(&mut self, port: u16, deadline: Duration) -> Result<()> {
        self.wait_until(deadline, || TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    /// Kills the server at once (like a crash or a pulled cable) and waits until it is gone.
    pub fn kill(&mut self) -> Result<()> {
        drop(self.lifeline.take());
        self.watchdog
            .wait()
            .with_context(|| format!("waiting for the {} watchdog", self.name))?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            eprintln!("stopping {}: {error:#}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_failures_name_the_package_and_show_the_log() {
        let error = require_binary("no-such-server-binary", "no-such-package").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("install the Debian package no-such-package"),
            "{error}"
        );
        let mut process = ServerProcess::new("sh", |_| {
            (
                "sh".into(),
                vec!["-c".into(), "echo broken config >&2; exit 3".into()],
            )
        })
        .unwrap();
        let dir = process.dir().to_owned();
        let error = process.pid().unwrap_err();
        assert!(
            error.to_string().starts_with("sh has not started"),
            "{error}"
        );
        process.start().unwrap();
        let error = process
            .wait_for_port(crate::free_local_port().unwrap(), Duration::from_secs(10))
            .unwrap_err();
        assert!(
            error.to_string() == "sh exited before it was ready; its log:\nbroken config\n",
            "{error:#}"
        );
        assert!(process.pid().is_ok());
        drop(process);
        assert!(!dir.exists(), "the watchdog left {}", dir.display());
    }
}
