//! A private chronyd serving NTP in a test network namespace, killed in `Drop`.
//!
//! It runs in the foreground (`-d`, logging to stderr) as root (`-u root`), with `-x` so it
//! never adjusts or sets the clock (network namespaces do not separate clocks: without
//! `-x` it would change this machine's time). Its configuration lives in its temp dir: no
//! command socket (`cmdport 0`, `bindcmdaddress /`), the pid file there, no drift file.
#![allow(dead_code)] // Each test binary uses a different part of the fixture.

use anyhow::{Context, Result};

use crate::support::daemon::NetnsDaemon;

/// The NTP port.
const NTP_PORT: u16 = 123;

/// A chronyd process serving NTP inside a network namespace.
#[derive(Debug)]
pub struct Chronyd {
    daemon: NetnsDaemon,
}

impl Chronyd {
    /// Starts chronyd in `namespace`, answering the clients in `allow` (a subnet such as
    /// `192.0.2.0/24`, or `all`), with the extra configuration `directives` (e.g.
    /// `local stratum 8` to serve the local clock as synchronised); returns once it listens
    /// on port 123.
    pub fn start(namespace: &str, allow: &str, directives: &[&str]) -> Result<Chronyd> {
        let dir = tempfile::tempdir().context("create a directory for chronyd")?;
        let conf = dir.path().join("chrony.conf");
        let mut text = format!(
            "allow {allow}\ncmdport 0\nbindcmdaddress /\npidfile {}\n",
            dir.path().join("chronyd.pid").display()
        );
        for directive in directives {
            text.push_str(directive);
            text.push('\n');
        }
        std::fs::write(&conf, text).with_context(|| format!("write {}", conf.display()))?;
        let args = ["-d", "-x", "-u", "root", "-f"]
            .map(String::from)
            .into_iter()
            .chain([conf.display().to_string()])
            .collect::<Vec<_>>();
        let daemon = NetnsDaemon::start("chronyd", namespace, &args, dir, NTP_PORT)?;
        Ok(Chronyd { daemon })
    }

    /// chronyd's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}
