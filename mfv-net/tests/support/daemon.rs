//! A server process run inside a test network namespace with `ip netns exec`, its output in
//! a log file in its own temp dir, killed in `Drop`: what the dnsmasq and chronyd fixtures
//! share.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to open its port.
const READY_DEADLINE: Duration = Duration::from_secs(5);

/// A server process inside a network namespace.
#[derive(Debug)]
pub struct NetnsDaemon {
    program: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl NetnsDaemon {
    /// Starts `program args...` in `namespace`, logging to `PROGRAM.log` in `dir` (which
    /// the caller may have filled with the server's files), and returns once the server has
    /// a UDP socket on `port`. A missing program is an error, never a skip.
    pub fn start(
        program: &'static str,
        namespace: &str,
        args: &[String],
        dir: tempfile::TempDir,
        port: u16,
    ) -> Result<NetnsDaemon> {
        let log_path = dir.path().join(format!("{program}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", namespace, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("clone the log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {program} in {namespace}"))?;
        let mut daemon = NetnsDaemon {
            program,
            child: Some(child),
            dir,
        };
        daemon.wait_for_udp_port(port)?;
        Ok(daemon)
    }

    /// Waits until the process has an IPv4 UDP socket on `port` (`ip netns exec` runs the
    /// program in its own process, so the table is the server's namespace's).
    fn wait_for_udp_port(&mut self, port: u16) -> Result<()> {
        let started = Instant::now();
        let program = self.program;
        let Some(child) = self.child.as_mut() else {
            bail!("{program} was stopped");
        };
        let udp_table = format!("/proc/{}/net/udp", child.id());
        // The local address column, e.g. `00000000:0043` for port 67 on any address.
        let local_port = format!(":{port:04X}");
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{program} exited with {status} (is it installed? `cargo xtask deps` \
                     installs it): {}",
                    self.log()
                );
            }
            let table = std::fs::read_to_string(&udp_table).unwrap_or_default();
            let mut locals = table
                .lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(1));
            if locals.any(|local| local.ends_with(&local_port)) {
                return Ok(());
            }
            if started.elapsed() > READY_DEADLINE {
                bail!(
                    "{program} did not open UDP port {port} within {READY_DEADLINE:?}: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's own directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.program)))
            .unwrap_or_default()
    }

    /// Kills the server and waits for it; stopping twice is fine.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NetnsDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
