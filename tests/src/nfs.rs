//! A private NFSv4 server for tests: NFS-Ganesha, the userspace server, exporting a directory
//! of its temp dir on a free port of 127.0.0.1, under the watchdog of [`crate::server`].
//!
//! Ganesha rather than the kernel's nfsd: it runs as an ordinary process that the watchdog
//! stops, listens on a port of our choosing on loopback only, and needs nothing from the
//! host's kernel (nfsd, rpcbind, a network namespace of its own). Only NFSv4 over TCP is
//! served, the protocol the appliance's nfs pools mount, so no rpcbind, statd or lockd is
//! involved; D-Bus and Kerberos are absent, which ganesha logs and then does without. The
//! grace period is off (a fresh server has no clients to wait for), and owners travel as
//! numbers, so a client without an ID mapper sees the real ones.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::free_local_port;
use crate::server::{ServerProcess, require_binary};

/// The path clients mount (`SERVER:EXPORT`): ganesha's NFSv4 pseudo path for the export.
pub const EXPORT: &str = "/export";

/// What ganesha logs once it serves.
const READY_LINE: &str = "NFS SERVER INITIALIZED";

/// Where the VFS back end (package nfs-ganesha-vfs) lives; ganesha loads it at start.
const VFS_BACKEND: &str = "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so";

/// A running private ganesha.
#[derive(Debug)]
pub struct NfsServer {
    process: ServerProcess,
    port: u16,
}

impl NfsServer {
    /// Starts ganesha exporting an empty directory read-write to any client, root not
    /// squashed, and waits until it accepts connections.
    pub fn start() -> Result<NfsServer> {
        let ganesha = require_binary("ganesha.nfsd", "nfs-ganesha")?;
        if !std::path::Path::new(VFS_BACKEND).is_file() {
            anyhow::bail!(
                "{VFS_BACKEND} is missing: install the Debian package nfs-ganesha-vfs \
                 (`cargo xtask deps` installs every package the tests need)"
            );
        }
        let port = free_local_port()?;
        let mut process = ServerProcess::new("ganesha", |dir| {
            let args = [
                "-F",
                "-f",
                &dir.join("ganesha.conf").display().to_string(),
                "-L",
                "STDERR",
                "-p",
                &dir.join("ganesha.pid").display().to_string(),
                "-N",
                "NIV_EVENT",
            ]
            .map(str::to_owned)
            .to_vec();
            (ganesha, args)
        })?;
        let dir = process.dir().to_owned();
        for sub in ["export", "recovery"] {
            let path = dir.join(sub);
            fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        }
        let config = dir.join("ganesha.conf");
        fs::write(&config, ganesha_conf(&dir, port))
            .with_context(|| format!("writing {}", config.display()))?;
        process.start()?;
        process.wait_for_port(port, Duration::from_secs(20))?;
        // The port opens before the worker threads run; this line comes after them.
        let log = dir.join("server.log");
        process.wait_until(Duration::from_secs(20), || {
            fs::read_to_string(&log).is_ok_and(|log| log.contains(READY_LINE))
        })?;
        Ok(NfsServer { process, port })
    }

    /// The TCP port on 127.0.0.1 ganesha serves NFS on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory behind [`EXPORT`], on this host.
    pub fn export_dir(&self) -> PathBuf {
        self.process.dir().join("export")
    }

    /// What ganesha logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

fn ganesha_conf(dir: &std::path::Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "NFS_CORE_PARAM {{
    Protocols = 4;
    NFS_Port = {port};
    Bind_Addr = 127.0.0.1;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}}
NFS_KRB5 {{
    Active_krb5 = false;
    CCacheDir = {dir}/ccache;
}}
NFSv4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = {dir}/recovery;
    Only_Numeric_Owners = true;
}}
EXPORT {{
    Export_Id = 1;
    Path = {dir}/export;
    Pseudo = {EXPORT};
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{
        Name = VFS;
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ganesha_serves_nfsv4_on_loopback_and_stops_with_its_fixture() {
        let server = NfsServer::start().unwrap();
        let export = server.export_dir();
        assert!(export.is_dir());
        std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        let log = server.log();
        assert!(log.contains(READY_LINE), "{log}");
        // Every line of the configuration was understood.
        assert!(
            log.contains("Configuration file successfully parsed"),
            "{log}"
        );
        // Nothing outside the temp dir: the callback credentials cache is there too.
        assert!(server.process.dir().join("ccache").is_dir());
        for level in [":CONFIG :CRIT", ":CONFIG :MAJ", ":CONFIG :WARN :Unknown"] {
            assert!(!log.contains(level), "{log}");
        }
        drop(server);
        assert!(!export.exists(), "the watchdog left {}", export.display());
    }
}
