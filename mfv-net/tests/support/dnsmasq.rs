//! A private dnsmasq serving DHCP on one interface of a test network namespace, killed in
//! `Drop`.
#![allow(dead_code)] // Each test binary uses a different part of the fixture.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::support::daemon::NetnsDaemon;

/// The DHCP server port.
const DHCP_SERVER_PORT: u16 = 67;

/// A dnsmasq process serving DHCP inside a network namespace.
#[derive(Debug)]
pub struct Dnsmasq {
    daemon: NetnsDaemon,
}

impl Dnsmasq {
    /// Starts dnsmasq in `namespace` on `interface` (which must have an address in the range)
    /// with `--dhcp-range=RANGE`, router and DNS server 192.0.2.1 / 192.0.2.53, domain
    /// example.org, plus `extra` arguments; returns once it listens on port 67.
    pub fn start(namespace: &str, interface: &str, range: &str, extra: &[&str]) -> Result<Dnsmasq> {
        let dir = tempfile::tempdir().context("create a directory for dnsmasq")?;
        let mut args: Vec<String> = [
            "--no-ping",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--no-daemon",
            "--user=root",
            "--log-facility=-",
            "--log-dhcp",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--interface={interface}"));
        args.push(format!("--dhcp-range={range}"));
        args.push(format!(
            "--dhcp-leasefile={}",
            dir.path().join("leases").display()
        ));
        args.extend(
            [
                "--dhcp-option=option:router,192.0.2.1",
                "--dhcp-option=option:dns-server,192.0.2.53",
                "--dhcp-option=option:domain-name,example.org",
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let daemon = NetnsDaemon::start("dnsmasq", namespace, &args, dir, DHCP_SERVER_PORT)?;
        Ok(Dnsmasq { daemon })
    }

    /// dnsmasq's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The lease database dnsmasq keeps.
    pub fn lease_file(&self) -> PathBuf {
        self.daemon.dir().join("leases")
    }

    /// Kills dnsmasq and waits for it; stopping twice is fine.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}
