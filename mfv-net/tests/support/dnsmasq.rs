//! A private dnsmasq serving DHCP on one interface of a test network namespace, killed in
//! `Drop`.
#![allow(dead_code)] // Each test binary uses a different part of the fixture.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long dnsmasq may take to open its DHCP socket.
const READY_DEADLINE: Duration = Duration::from_secs(5);

/// A dnsmasq process serving DHCP inside a network namespace.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq in `namespace` on `interface` (which must have an address in the range)
    /// with `--dhcp-range=RANGE`, router and DNS server 192.0.2.1 / 192.0.2.53, domain
    /// example.org, plus `extra` arguments; returns once it listens on port 67.
    pub fn start(namespace: &str, interface: &str, range: &str, extra: &[&str]) -> Result<Dnsmasq> {
        let dir = tempfile::tempdir().context("create a directory for dnsmasq")?;
        let log = File::create(dir.path().join("dnsmasq.log")).context("create the dnsmasq log")?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", namespace, "dnsmasq"])
            .args([
                "--no-ping",
                "--conf-file=/dev/null",
                "--port=0",
                "--bind-interfaces",
                "--no-daemon",
                "--user=root",
                "--log-facility=-",
                "--log-dhcp",
            ])
            .arg(format!("--interface={interface}"))
            .arg(format!("--dhcp-range={range}"))
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.path().join("leases").display()
            ))
            .args([
                "--dhcp-option=option:router,192.0.2.1",
                "--dhcp-option=option:dns-server,192.0.2.53",
                "--dhcp-option=option:domain-name,example.org",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("clone the log handle")?)
            .stderr(log);
        let child = command
            .spawn()
            .context("start dnsmasq (is it installed?)")?;
        let mut dnsmasq = Dnsmasq {
            child: Some(child),
            dir,
        };
        dnsmasq.wait_until_listening()?;
        Ok(dnsmasq)
    }

    fn wait_until_listening(&mut self) -> Result<()> {
        let started = Instant::now();
        let Some(child) = self.child.as_mut() else {
            bail!("dnsmasq was stopped");
        };
        let udp_table = format!("/proc/{}/net/udp", child.id());
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("dnsmasq exited with {status}: {}", self.log());
            }
            let table = std::fs::read_to_string(&udp_table).unwrap_or_default();
            // Local address column `00000000:0043`: port 67 on any address.
            if table.lines().any(|line| line.contains(":0043 ")) {
                return Ok(());
            }
            if started.elapsed() > READY_DEADLINE {
                bail!(
                    "dnsmasq did not open port 67 within {READY_DEADLINE:?}: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// dnsmasq's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }

    /// The lease database dnsmasq keeps.
    pub fn lease_file(&self) -> PathBuf {
        self.dir.path().join("leases")
    }

    /// Kills dnsmasq and waits for it; stopping twice is fine.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}
