//! A private MariaDB server for tests: mariadbd with its data dir and socket in a temp dir,
//! listening on a free loopback port, with an unprivileged account `mfv` that owns every
//! database named `mfv_*`. It offers TLS with a certificate for 127.0.0.1 signed by a test CA
//! ([`MariaDb::ca_certificate`]); clients may still connect without TLS.
//!
//! [`MariaDb::shared`] starts one per test binary; [`MariaDb::start`] starts a private one a
//! test may kill, and [`MariaDb::start_without_tls`] one that offers no TLS. Each test takes
//! its own database ([`MariaDb::create_database`]) so tests sharing the server do not see
//! each other's users. The watchdog in `server.rs` stops the
//! server when the test process ends.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;

use crate::certificates::make_certificates;
use crate::free_local_port;
use crate::server::{ServerProcess, require_binary, run_checked};

/// The account the backend connects as.
pub const USER: &str = "mfv";
/// Its password.
pub const PASSWORD: &str = "mfv-db-secret";

/// Creates the data dir, then becomes the server: `$1` is mariadb-install-db, `$2` the data
/// dir, the rest the server's command line. Both run under the watchdog, so a test process
/// killed while the data dir is being created leaves nothing behind either. Both keep their
/// temporary tables in a directory of their own beside the data dir (`TMPDIR`), never in the
/// machine's /tmp where other servers and tests work too.
const INSTALL_THEN_RUN: &str = r#"
install_db=$1
data=$2
shift 2
TMPDIR=$data.tmp
export TMPDIR
mkdir -p "$TMPDIR" || exit
"$install_db" --no-defaults --datadir="$data" --user=root \
    --auth-root-authentication-method=normal --skip-test-db || exit
exec "$@"
"#;

/// Whether the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Offered,
    Absent,
}

/// A running private mariadbd.
#[derive(Debug)]
pub struct MariaDb {
    process: ServerProcess,
    port: u16,
}

impl MariaDb {
    /// The server shared by every test of this binary, started on first use.
    pub fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<MariaDb> = OnceLock::new();
        SHARED.get_or_init(|| match MariaDb::start() {
            Ok(server) => server,
            Err(error) => panic!("starting the test mariadbd: {error:#}"),
        })
    }

    /// Creates a data dir, starts mariadbd on it with TLS offered and creates the `mfv`
    /// account.
    pub fn start() -> Result<MariaDb> {
        MariaDb::start_with(Tls::Offered)
    }

    /// [`MariaDb::start`] without TLS: the server answers a client asking for TLS that it
    /// has none.
    pub fn start_without_tls() -> Result<MariaDb> {
        MariaDb::start_with(Tls::Absent)
    }

    fn start_with(tls: Tls) -> Result<MariaDb> {
        let mariadbd = require_binary("mariadbd", "mariadb-server")?;
        let install_db = require_binary("mariadb-install-db", "mariadb-server")?;
        require_binary("mariadb", "mariadb-client")?;
        let port = free_local_port()?;
        let mut process = ServerProcess::new("mariadbd", |dir| {
            let data = dir.join("data").display().to_string();
            let mut args = vec![
                "-c".to_owned(),
                INSTALL_THEN_RUN.to_owned(),
                "mariadb-start".to_owned(),
                install_db.display().to_string(),
                data.clone(),
                mariadbd.display().to_string(),
            ];
            args.extend([
                "--no-defaults".to_owned(),
                format!("--datadir={data}"),
                format!("--socket={}", dir.join("mariadb.sock").display()),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".to_owned(),
                "--user=root".to_owned(),
                "--skip-log-bin".to_owned(),
                "--innodb-buffer-pool-size=32M".to_owned(),
            ]);
            if tls == Tls::Offered {
                let file = |name: &str| dir.join(name).display().to_string();
                args.extend([
                    format!("--ssl-ca={}", file("ca.pem")),
                    format!("--ssl-cert={}", file("server.pem")),
                    format!("--ssl-key={}", file("server.key")),
                ]);
            }
            ("sh".into(), args)
        })?;
        if tls == Tls::Offered {
            make_certificates(process.dir())?;
        }
        process.start()?;
        process.wait_for_port(port, Duration::from_secs(20))?;
        let server = MariaDb { process, port };
        // One account for TCP (127.0.0.1) and one for the socket (localhost).
        for host in ["127.0.0.1", "localhost"] {
            server.root_sql(&format!(
                "CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT ALL ON `mfv\\_%`.* TO '{USER}'@'{host}';"
            ))?;
        }
        Ok(server)
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.process.dir().join("mariadb.sock")
    }

    /// The PEM file of the CA that signed the server's certificate (a server started without
    /// TLS has none).
    pub fn ca_certificate(&self) -> PathBuf {
        self.process.dir().join("ca.pem")
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database `mfv_<label>_<n>` owned by the `mfv` account and returns
    /// its name.
    pub fn create_database(&self, label: &str) -> Result<String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("mfv_{label}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.root_sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))?;
        Ok(name)
    }

    /// Runs SQL as the server's root account over the socket.
    pub fn root_sql(&self, sql: &str) -> Result<String> {
        run_checked(
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args([
                    "--user=root",
                    "--batch",
                    "--skip-column-names",
                    "--execute",
                    sql,
                ]),
        )
    }

    /// Kills mariadbd at once, as if the server crashed.
    pub fn kill(&mut self) -> Result<()> {
        self.process.kill()
    }
}
