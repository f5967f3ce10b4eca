//! The MySQL/MariaDB user backend: users in a table of a central database, for fleets of
//! hosts that share their accounts.
//!
//! The backend owns two tables, prefixed so they can share a database with other software:
//! `mfv_schema_version` (one row: the schema version) and `mfv_users` (user name, display
//! name, role, disabled flag, argon2id hash, and `id`, numbered by the server's
//! `AUTO_INCREMENT` for every row inserted, the [`UserRecord::account_id`]; servers older than
//! MySQL 8.0 and MariaDB 10.2.4 forget the counter on restart and may number a row again
//! after the highest was deleted). It creates and upgrades them itself on first
//! use ([`MIGRATIONS`]), under a named server lock (`GET_LOCK`) so hosts starting together
//! do not race; a database newer than this build is refused, never downgraded.
//!
//! Over TCP the connection uses TLS when [`MySqlConfig::tls`] is set: the server's certificate
//! must chain to [`MySqlConfig::ca_certificate`] (or the system's CAs) and be issued for the
//! configured host, and a server that offers no TLS is refused, never used in cleartext.
//! Without TLS the password exchange and every hash travel in cleartext, so that is accepted
//! only to a loopback host or with [`MySqlConfig::insecure`] (see `tls.rs`). A Unix socket
//! never leaves the machine and carries no TLS.
//!
//! Every statement is a prepared statement with parameters; no value is ever formatted into
//! SQL. Connections come from a pool; each operation has a deadline
//! ([`MySqlConfig::timeout`]). A server that cannot be reached yields
//! [`BackendError::Unavailable`]: no login.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{
    Conn, DriverError, IoError, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, SslOpts,
};
use tokio::sync::OnceCell;

use crate::backend::{
    AdminError, BoxFuture, CheckReport, ServerCheckError, ServerStep, StepOutcome, UserAdmin,
    UserBackend, UserCount, UserRecord, check_display_name,
};
use crate::tls::{refuse_cleartext, trusted_certificates};
use crate::{BackendError, Password, PasswordHasher, Role, Username};

/// The backend's name in messages and reports.
const BACKEND: &str = "mysql";

/// How long one operation (connect, query) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most connections the pool opens by default.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// The schema migrations, in order: migration `n` (1-based) brings the schema to version
/// `n`. Never edit one that was released; append a new one.
pub const MIGRATIONS: &[&[&str]] = &[
    &["CREATE TABLE IF NOT EXISTS mfv_users (
        username VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
        display_name VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        role VARCHAR(16) CHARACTER SET ascii NOT NULL
            CHECK (role IN ('viewer', 'operator', 'admin')),
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    ) ENGINE=InnoDB"],
    // Version 2: the account's identity (`UserRecord::account_id`), numbered by the server
    // for every row, whoever inserts it, so a row deleted and inserted again under the same
    // name is another account. Existing rows are numbered as the column is added.
    &["ALTER TABLE mfv_users
        ADD COLUMN id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT UNIQUE"],
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The name of the server lock held while migrating.
const MIGRATION_LOCK: &str = "mfv_auth_schema";

/// MySQL server error codes (ER_* in the server's errmsg).
const ER_DUP_ENTRY: u16 = 1062;
const ER_ACCESS_DENIED: [u16; 3] = [1044, 1045, 1142];
const ER_BAD_DB: u16 = 1049;
const ER_NO_SUCH_TABLE: u16 = 1146;
const ER_TOO_MANY_CONNECTIONS: u16 = 1040;
const ER_SERVER_SHUTDOWN: u16 = 1053;

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MySqlAddress {
    /// TCP to a host name or address and a port (MySQL's is 3306).
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket on this machine.
    Socket(PathBuf),
}

/// Where the user table lives and how to log in to the server.
#[derive(Clone)]
pub struct MySqlConfig {
    /// The server.
    pub address: MySqlAddress,
    /// The database holding the `mfv_*` tables; it must exist.
    pub database: String,
    /// The account to log in with; it needs SELECT, INSERT, UPDATE, DELETE, and CREATE for
    /// the first start and schema upgrades.
    pub user: String,
    /// Its password (never shown by `Debug`).
    pub password: String,
    /// Most connections the pool keeps.
    pub pool_size: usize,
    /// Limit for each operation, connecting included.
    pub timeout: Duration,
    /// Use TLS over TCP, with the server's certificate verified; a server without TLS is
    /// refused. Not with a Unix socket.
    pub tls: bool,
    /// A PEM file with the CA certificate(s) that sign the server's certificate, for TLS.
    /// `None`: the system's trusted CAs.
    pub ca_certificate: Option<PathBuf>,
    /// Accept TCP without TLS to a host that is not loopback, where the password exchange
    /// and the hashes cross the network in cleartext. Off: such a configuration is refused.
    pub insecure: bool,
}

impl MySqlConfig {
    /// A configuration for a server reached over TCP.
    pub fn tcp(
        host: impl Into<String>,
        port: u16,
        database: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        MySqlConfig {
            address: MySqlAddress::Tcp {
                host: host.into(),
                port,
            },
            database: database.into(),
            user: user.into(),
            password: password.into(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            tls: false,
            ca_certificate: None,
            insecure: false,
        }
    }

    /// A configuration for a server reached over a Unix socket.
    pub fn socket(
        path: impl Into<PathBuf>,
        database: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        MySqlConfig {
            address: MySqlAddress::Socket(path.into()),
            ..MySqlConfig::tcp("", 0, database, user, password)
        }
    }

    /// Parses `mysql://user:password@host:port/database` (percent-encoded where needed);
    /// `?socket=/path` selects a Unix socket instead of TCP, `?require_ssl=true` sets
    /// [`MySqlConfig::tls`] (the certificate is verified whatever the URL says).
    pub fn from_url(url: &str) -> Result<Self, BackendError> {
        let opts = Opts::from_url(url).map_err(|error| {
            misconfigured(format!("the MySQL URL is invalid: {error} (expected mysql://user:password@host:port/database)"))
        })?;
        let database = opts
            .db_name()
            .ok_or_else(|| misconfigured("the MySQL URL names no database (…/database)".into()))?;
        let mut config = MySqlConfig::tcp(
            opts.ip_or_hostname(),
            opts.tcp_port(),
            database,
            opts.user().unwrap_or_default(),
            opts.pass().unwrap_or_default(),
        );
        if let Some(socket) = opts.socket() {
            config.address = MySqlAddress::Socket(socket.into());
        }
        config.tls = opts.ssl_opts().is_some();
        Ok(config)
    }

    /// Checks the configuration without contacting the server.
    fn validate(&self) -> Result<(), BackendError> {
        if self.database.is_empty() || self.user.is_empty() {
            return Err(misconfigured("database and user must not be empty".into()));
        }
        match &self.address {
            MySqlAddress::Tcp { host, port } if host.is_empty() || *port == 0 => {
                return Err(misconfigured(format!(
                    "the server address {host:?} port {port} is incomplete"
                )));
            }
            MySqlAddress::Tcp { host, .. } if !self.tls => refuse_cleartext(
                BACKEND,
                &self.describe_address(),
                host,
                self.insecure,
                "set tls = true",
            )?,
            MySqlAddress::Tcp { .. } => {}
            MySqlAddress::Socket(path) if self.tls => {
                return Err(misconfigured(format!(
                    "tls = true, and {} is a Unix socket, which carries no TLS: connect over                      TCP or drop tls",
                    path.display()
                )));
            }
            MySqlAddress::Socket(_) => {}
        }
        if self.pool_size == 0 {
            return Err(misconfigured("pool_size must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(misconfigured("timeout must be more than zero".into()));
        }
        Ok(())
    }

    /// Where the server is, for messages.
    fn describe_address(&self) -> String {
        match &self.address {
            MySqlAddress::Tcp { host, port } => format!("{host}:{port}"),
            MySqlAddress::Socket(path) => path.display().to_string(),
        }
    }

    /// How the connection travels, for messages.
    fn transport(&self) -> &'static str {
        match (&self.address, self.tls) {
            (MySqlAddress::Socket(_), _) => "over a Unix socket",
            (MySqlAddress::Tcp { .. }, true) => "over TLS",
            (MySqlAddress::Tcp { .. }, false) => "without TLS",
        }
    }

    /// The TLS settings: the trusted certificates and nothing else, so the server's
    /// certificate and name are always verified.
    fn ssl_opts(&self) -> Result<Option<SslOpts>, BackendError> {
        if !self.tls {
            return Ok(None);
        }
        let roots = trusted_certificates(BACKEND, self.ca_certificate.as_deref())?
            .into_iter()
            .map(|certificate| certificate.to_vec().into())
            .collect();
        Ok(Some(
            SslOpts::default()
                .with_disable_built_in_roots(true)
                .with_root_certs(roots),
        ))
    }

    fn opts(&self) -> Result<Opts, BackendError> {
        let constraints = PoolConstraints::new(0, self.pool_size)
            .ok_or_else(|| misconfigured(format!("pool_size {} is not usable", self.pool_size)))?;
        let builder = OptsBuilder::default()
            .user(Some(&self.user))
            .pass(Some(&self.password))
            .db_name(Some(&self.database))
            .pool_opts(PoolOpts::default().with_constraints(constraints))
            // UPDATE reports rows matched, not rows changed: setting a role a user already
            // has is not "no such user".
            .client_found_rows(true)
            // Never switch from the configured TCP address to a socket behind our back.
            .prefer_socket(false)
            .ssl_opts(self.ssl_opts()?);
        let builder = match &self.address {
            MySqlAddress::Tcp { host, port } => builder.ip_or_hostname(host).tcp_port(*port),
            MySqlAddress::Socket(path) => builder.socket(Some(path.display().to_string())),
        };
        Ok(builder.into())
    }
}

impl fmt::Debug for MySqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlConfig")
            .field("address", &self.address)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .field("ca_certificate", &self.ca_certificate)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Users in a MySQL or MariaDB table.
pub struct MySqlBackend {
    config: MySqlConfig,
    pool: Pool,
    hasher: PasswordHasher,
    /// Set once the schema is known to be current.
    schema: OnceCell<()>,
}

impl fmt::Debug for MySqlBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlBackend")
            .field("config", &self.config)
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

/// A row of `mfv_users` without the hash.
type UserColumns = (String, String, String, bool, u64);

impl MySqlBackend {
    /// Checks `config` and prepares the pool; connects (and creates or upgrades the tables)
    /// on first use, so a server that is down at start only fails the requests made while
    /// it is down. New passwords are hashed with `hasher`. Needs a tokio runtime.
    pub fn new(config: MySqlConfig, hasher: PasswordHasher) -> Result<Self, BackendError> {
        config.validate()?;
        let pool = Pool::new(config.opts()?);
        Ok(MySqlBackend {
            config,
            pool,
            hasher,
            schema: OnceCell::new(),
        })
    }

    /// Closes the pool's connections.
    pub async fn close(self) -> Result<(), BackendError> {
        let MySqlBackend { config, pool, .. } = self;
        pool.disconnect().await.map_err(|error| {
            unavailable(format!(
                "closing the connections to {}: {error}",
                config.describe_address()
            ))
        })
    }

    /// A connection with the schema current.
    async fn conn(&self) -> Result<Conn, BackendError> {
        let mut conn = self
            .deadline("connecting", async {
                self.pool
                    .get_conn()
                    .await
                    .map_err(|error| self.error("connecting", error))
            })
            .await?;
        self.schema
            .get_or_try_init(|| self.migrate(&mut conn))
            .await?;
        Ok(conn)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], under the migration lock.
    async fn migrate(&self, conn: &mut Conn) -> Result<(), BackendError> {
        self.deadline("upgrading the schema", async {
            let lock_seconds = self.config.timeout.as_secs().max(1);
            let locked: Option<Option<i64>> = conn
                .exec_first("SELECT GET_LOCK(?, ?)", (MIGRATION_LOCK, lock_seconds))
                .await
                .map_err(|error| self.error("taking the schema lock", error))?;
            if locked.flatten() != Some(1) {
                return Err(unavailable(format!(
                    "another host held the schema lock {MIGRATION_LOCK} for {lock_seconds} s"
                )));
            }
            let result = self.migrate_locked(conn).await;
            let released: Result<Option<Option<i64>>, _> = conn
                .exec_first("SELECT RELEASE_LOCK(?)", (MIGRATION_LOCK,))
                .await;
            result?;
            released.map_err(|error| self.error("releasing the schema lock", error))?;
            Ok(())
        })
        .await
    }

    async fn migrate_locked(&self, conn: &mut Conn) -> Result<(), BackendError> {
        conn.query_drop(
            "CREATE TABLE IF NOT EXISTS mfv_schema_version (
                id TINYINT NOT NULL PRIMARY KEY CHECK (id = 1),
                version INT NOT NULL
            ) ENGINE=InnoDB",
        )
        .await
        .map_err(|error| self.error("creating mfv_schema_version", error))?;
        let version: Option<i64> = conn
            .query_first("SELECT version FROM mfv_schema_version WHERE id = 1")
            .await
            .map_err(|error| self.error("reading the schema version", error))?;
        let version = usize::try_from(version.unwrap_or(0))
            .map_err(|_| invalid_data(format!("mfv_schema_version holds {version:?}")))?;
        if version > SCHEMA_VERSION {
            return Err(misconfigured(format!(
                "database {} has schema version {version}, newer than this build's \
                 {SCHEMA_VERSION}: upgrade mfv on this host",
                self.config.database
            )));
        }
        for (index, statements) in MIGRATIONS.iter().enumerate().skip(version) {
            let target = index + 1;
            for statement in *statements {
                conn.query_drop(*statement)
                    .await
                    .map_err(|error| self.error(&format!("migrating to schema {target}"), error))?;
            }
            conn.exec_drop(
                "INSERT INTO mfv_schema_version (id, version) VALUES (1, ?) \
                 ON DUPLICATE KEY UPDATE version = VALUES(version)",
                (target,),
            )
            .await
            .map_err(|error| self.error("recording the schema version", error))?;
        }
        Ok(())
    }

    /// Runs `operation` with the configured deadline.
    async fn deadline<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.config.timeout, operation)
            .await
            .map_err(|_| self.no_answer(what))?
    }

    /// Maps a driver error while doing `what`.
    fn error(&self, what: &str, error: mysql_async::Error) -> BackendError {
        let place = self.config.describe_address();
        match &error {
            mysql_async::Error::Server(server) if ER_ACCESS_DENIED.contains(&server.code) => {
                misconfigured(format!(
                    "{what}: the server at {place} refused user {}: {} (check user, password \
                     and grants on database {})",
                    self.config.user, server.message, self.config.database
                ))
            }
            mysql_async::Error::Server(server) if server.code == ER_BAD_DB => {
                misconfigured(format!(
                    "{what}: database {} does not exist on {place}",
                    self.config.database
                ))
            }
            mysql_async::Error::Server(server)
                if [ER_TOO_MANY_CONNECTIONS, ER_SERVER_SHUTDOWN].contains(&server.code) =>
            {
                unavailable(format!("{what}: {place}: {}", server.message))
            }
            mysql_async::Error::Server(server) => BackendError::Query {
                backend: BACKEND,
                reason: format!("{what}: {server}"),
            },
            mysql_async::Error::Url(url) => misconfigured(format!("{what}: {url}")),
            mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
                misconfigured(format!(
                    "{what}: the server at {place} offers no TLS, and tls = true asks for it: \
                     give the server a certificate (ssl_cert, ssl_key)"
                ))
            }
            _ => match tls_failure(&error) {
                Some(tls) => misconfigured(format!(
                    "{what}: TLS with {place} failed: {tls} (is the server's certificate \
                     signed by the CA in ca_certificate, or by a system CA when there is none, \
                     and issued for the configured host?)"
                )),
                None => unavailable(format!("{what}: {place}: {error}")),
            },
        }
    }

    /// Connects and counts the rows of `mfv_users`, changing nothing (the schema is neither
    /// created nor upgraded): whether this configuration can reach and use the database,
    /// for an operator about to rely on it.
    pub async fn count_users(&self) -> Result<UserCount, ServerCheckError> {
        let connected = tokio::time::timeout(self.config.timeout, self.pool.get_conn()).await;
        let mut conn = match connected {
            Err(_) => {
                return Err(ServerCheckError::new(
                    ServerStep::Connect,
                    self.no_answer("connecting"),
                ));
            }
            Ok(Err(error)) => {
                let step = match &error {
                    mysql_async::Error::Server(server) if server.code == ER_BAD_DB => {
                        ServerStep::Users
                    }
                    mysql_async::Error::Server(server)
                        if ER_ACCESS_DENIED.contains(&server.code) =>
                    {
                        ServerStep::Login
                    }
                    mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
                        ServerStep::Tls
                    }
                    _ if tls_failure(&error).is_some() => ServerStep::Tls,
                    _ => ServerStep::Connect,
                };
                return Err(ServerCheckError::new(step, self.error("connecting", error)));
            }
            Ok(Ok(conn)) => conn,
        };
        const WHAT: &str = "counting the users";
        let counted = tokio::time::timeout(
            self.config.timeout,
            conn.query_first::<u64, _>("SELECT COUNT(*) FROM mfv_users"),
        )
        .await;
        drop(conn);
        let users_failed = |error| ServerCheckError::new(ServerStep::Users, error);
        match counted {
            Err(_) => Err(users_failed(self.no_answer(WHAT))),
            Ok(Ok(users)) => Ok(UserCount {
                users: users.unwrap_or_default(),
                limited: false,
            }),
            Ok(Err(mysql_async::Error::Server(server))) if server.code == ER_NO_SUCH_TABLE => {
                Err(users_failed(misconfigured(format!(
                    "{WHAT}: database {} on {} has no table mfv_users: the host creates it at \
                     its first start only if user {} may CREATE tables there (grant it, or \
                     create the tables from mfv-auth's MIGRATIONS)",
                    self.config.database,
                    self.config.describe_address(),
                    self.config.user
                ))))
            }
            Ok(Err(error)) => Err(users_failed(self.error(WHAT, error))),
        }
    }

    /// The deadline of `what` passed.
    fn no_answer(&self, what: &str) -> BackendError {
        unavailable(format!(
            "{what}: no answer from {} within {:?}",
            self.config.describe_address(),
            self.config.timeout
        ))
    }

    /// Runs a query for one user's columns (and hash, if `with_hash`).
    async fn select_user(
        &self,
        conn: &mut Conn,
        user: &Username,
        with_hash: bool,
    ) -> Result<Option<(UserRecord, String)>, BackendError> {
        let row: Option<Row> = self
            .deadline("reading the user", async {
                conn.exec_first(
                    "SELECT username, display_name, role, disabled, id, \
                     IF(?, password_hash, '') FROM mfv_users WHERE username = ?",
                    (with_hash, user.as_str()),
                )
                .await
                .map_err(|error| self.error("reading the user", error))
            })
            .await?;
        row.map(|row| {
            let (username, display_name, role, disabled, id, hash) =
                mysql_async::from_row_opt::<(String, String, String, bool, u64, String)>(row)
                    .map_err(|error| invalid_data(format!("user {user}: {error}")))?;
            Ok((record((username, display_name, role, disabled, id))?, hash))
        })
        .transpose()
    }

    async fn verify(
        &self,
        user: &Username,
        password: &Password,
    ) -> Result<Option<UserRecord>, BackendError> {
        let mut conn = self.conn().await?;
        let found = self.select_user(&mut conn, user, true).await?;
        drop(conn);
        let (record, hash) = match found {
            Some((record, hash)) => (Some(record), Some(hash)),
            None => (None, None),
        };
        // An unknown user is verified against a dummy hash: the same time as a wrong password.
        let matches = self
            .hasher
            .verify_blocking(password, hash)
            .await
            .map_err(|error| invalid_data(format!("password hash of {user}: {error}")))?;
        Ok(record.filter(|record| matches && !record.disabled))
    }

    async fn find(&self, user: &Username) -> Result<Option<UserRecord>, BackendError> {
        let mut conn = self.conn().await?;
        Ok(self
            .select_user(&mut conn, user, false)
            .await?
            .map(|(record, _)| record))
    }

    async fn list(&self) -> Result<Vec<UserRecord>, BackendError> {
        let mut conn = self.conn().await?;
        let rows: Vec<Row> = self
            .deadline("listing the users", async {
                conn.exec(
                    "SELECT username, display_name, role, disabled, id FROM mfv_users \
                     ORDER BY username",
                    (),
                )
                .await
                .map_err(|error| self.error("listing the users", error))
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let columns = mysql_async::from_row_opt::<UserColumns>(row)
                    .map_err(|error| invalid_data(format!("a row of mfv_users: {error}")))?;
                record(columns)
            })
            .collect()
    }

    /// Runs one changing statement and fails with `NoSuchUser` if it matched no row.
    async fn change(
        &self,
        what: &str,
        user: &Username,
        statement: &str,
        params: mysql_async::Params,
    ) -> Result<(), AdminError> {
        let mut conn = self.conn().await?;
        let matched = self
            .deadline(what, async {
                conn.exec_drop(statement, params)
                    .await
                    .map_err(|error| self.error(what, error))?;
                Ok(conn.affected_rows())
            })
            .await?;
        if matched == 0 {
            return Err(AdminError::NoSuchUser { user: user.clone() });
        }
        Ok(())
    }

    async fn add(&self, user: &UserRecord, password: &Password) -> Result<(), AdminError> {
        check_display_name(&user.display_name)?;
        let hash = self.hasher.hash_blocking(password).await?;
        let mut conn = self.conn().await?;
        let inserted = self
            .deadline("adding the user", async {
                Ok(conn
                    .exec_drop(
                        "INSERT INTO mfv_users \
                         (username, display_name, role, disabled, password_hash) \
                         VALUES (?, ?, ?, ?, ?)",
                        (
                            user.username.as_str(),
                            user.display_name.as_str(),
                            user.role.as_str(),
                            user.disabled,
                            hash,
                        ),
                    )
                    .await)
            })
            .await?;
        match inserted {
            Ok(()) => Ok(()),
            Err(mysql_async::Error::Server(server)) if server.code == ER_DUP_ENTRY => {
                Err(AdminError::UserExists {
                    user: user.username.clone(),
                })
            }
            Err(error) => Err(self.error("adding the user", error).into()),
        }
    }

    async fn run_check(&self, user: &Username) -> CheckReport {
        let mut report = CheckReport::new(BACKEND, user.clone());
        let place = self.config.describe_address();
        let connected = self
            .deadline("connecting", async {
                self.pool
                    .get_conn()
                    .await
                    .map_err(|error| self.error("connecting", error))
            })
            .await;
        let mut conn = match connected {
            Ok(mut conn) => {
                let version: Result<Option<String>, _> = conn.query_first("SELECT VERSION()").await;
                match version {
                    Ok(version) => report.push(
                        "connect",
                        StepOutcome::Passed(format!(
                            "connected to {place} {} as {} (server {}), database {}",
                            self.config.transport(),
                            self.config.user,
                            version.unwrap_or_default(),
                            self.config.database
                        )),
                    ),
                    Err(error) => {
                        report.push(
                            "connect",
                            StepOutcome::Failed(self.error("connecting", error).to_string()),
                        );
                        skip(&mut report, &["schema", "user"], "cannot connect");
                        return report;
                    }
                }
                conn
            }
            Err(error) => {
                report.push("connect", StepOutcome::Failed(error.to_string()));
                skip(&mut report, &["schema", "user"], "cannot connect");
                return report;
            }
        };
        match self
            .schema
            .get_or_try_init(|| self.migrate(&mut conn))
            .await
        {
            Ok(()) => report.push(
                "schema",
                StepOutcome::Passed(format!("mfv_users at schema version {SCHEMA_VERSION}")),
            ),
            Err(error) => {
                report.push("schema", StepOutcome::Failed(error.to_string()));
                skip(&mut report, &["user"], "the schema is not usable");
                return report;
            }
        }
        let outcome = match self.select_user(&mut conn, user, false).await {
            Ok(Some((record, _))) if record.disabled => StepOutcome::Failed(format!(
                "{} is disabled (role {}): enable the user to let them log in",
                record.username, record.role
            )),
            Ok(Some((record, _))) => StepOutcome::Passed(format!(
                "{} ({:?}), role {}",
                record.username, record.display_name, record.role
            )),
            Ok(None) => StepOutcome::Failed(format!("no user {user} in mfv_users")),
            Err(error) => StepOutcome::Failed(error.to_string()),
        };
        report.push("user", outcome);
        report
    }
}

impl UserBackend for MySqlBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(self.verify(user, password))
    }

    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(self.find(user))
    }

    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>> {
        Box::pin(self.list())
    }

    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport> {
        Box::pin(self.run_check(user))
    }

    fn admin(&self) -> Option<&dyn UserAdmin> {
        Some(self)
    }
}

impl UserAdmin for MySqlBackend {
    fn add_user<'a>(
        &'a self,
        user: &'a UserRecord,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(self.add(user, password))
    }

    fn delete_user<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(self.change(
            "deleting the user",
            user,
            "DELETE FROM mfv_users WHERE username = ?",
            (user.as_str(),).into(),
        ))
    }

    fn set_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let hash = self.hasher.hash_blocking(password).await?;
            self.change(
                "setting the password",
                user,
                "UPDATE mfv_users SET password_hash = ? WHERE username = ?",
                (hash, user.as_str()).into(),
            )
            .await
        })
    }

    fn set_role<'a>(
        &'a self,
        user: &'a Username,
        role: Role,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(self.change(
            "setting the role",
            user,
            "UPDATE mfv_users SET role = ? WHERE username = ?",
            (role.as_str(), user.as_str()).into(),
        ))
    }

    fn set_disabled<'a>(
        &'a self,
        user: &'a Username,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(self.change(
            "disabling the user",
            user,
            "UPDATE mfv_users SET disabled = ? WHERE username = ?",
            (disabled, user.as_str()).into(),
        ))
    }

    fn set_display_name<'a>(
        &'a self,
        user: &'a Username,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            check_display_name(display_name)?;
            self.change(
                "setting the display name",
                user,
                "UPDATE mfv_users SET display_name = ? WHERE username = ?",
                (display_name, user.as_str()).into(),
            )
            .await
        })
    }
}

/// A user record from its columns, refusing names and roles this crate does not accept.
fn record(
    (username, display_name, role, disabled, id): UserColumns,
) -> Result<UserRecord, BackendError> {
    let parsed = Username::new(username.clone())
        .map_err(|error| invalid_data(format!("mfv_users row {username:?}: {error}")))?;
    let role = Role::from_str(&role)
        .map_err(|error| invalid_data(format!("mfv_users row {username:?}: {error}")))?;
    Ok(UserRecord {
        username: parsed,
        display_name,
        role,
        disabled,
        account_id: Some(id.to_string()),
    })
}

/// The TLS error inside a driver error, if the failure was TLS: a handshake the server's
/// certificate failed (rustls reports it through an I/O error) or TLS set-up.
fn tls_failure(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Io(IoError::Tls(tls)) => Some(tls.to_string()),
        mysql_async::Error::Io(IoError::Io(io)) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(ToString::to_string),
        _ => None,
    }
}

/// Marks `steps` as skipped because of `reason`.
fn skip(report: &mut CheckReport, steps: &[&'static str], reason: &str) {
    for step in steps {
        report.push(step, StepOutcome::Skipped(reason.to_owned()));
    }
}

fn misconfigured(reason: String) -> BackendError {
    BackendError::Misconfigured {
        backend: BACKEND,
        reason,
    }
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: BACKEND,
        reason,
    }
}

fn invalid_data(reason: String) -> BackendError {
    BackendError::InvalidData {
        backend: BACKEND,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_a_config() {
        let config = MySqlConfig::from_url("mysql://mfv:p%40ss@db.example:3307/auth").unwrap();
        assert_eq!(
            config.address,
            MySqlAddress::Tcp {
                host: "db.example".into(),
                port: 3307
            }
        );
        assert_eq!(
            (
                config.database.as_str(),
                config.user.as_str(),
                config.password.as_str()
            ),
            ("auth", "mfv", "p@ss")
        );
        assert!(!config.tls);
        let tls =
            MySqlConfig::from_url("mysql://mfv:pw@db.example:3307/auth?require_ssl=true").unwrap();
        assert!(tls.tls);
        let socket =
            MySqlConfig::from_url("mysql://mfv:pw@localhost/auth?socket=/run/mysqld/s.sock")
                .unwrap();
        assert_eq!(
            socket.address,
            MySqlAddress::Socket("/run/mysqld/s.sock".into())
        );
        for bad in ["postgres://x/y", "mysql://mfv:pw@host:3306"] {
            let error = MySqlConfig::from_url(bad).unwrap_err();
            assert!(
                matches!(error, BackendError::Misconfigured { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_password_is_not_shown() {
        let config = MySqlConfig::tcp("db", 3306, "auth", "mfv", "hunter2");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn records_refuse_invalid_names_and_roles() {
        let good = record(("alice".into(), "Alice".into(), "admin".into(), false, 7)).unwrap();
        assert_eq!(good.role, Role::Admin);
        assert_eq!(good.account_id.as_deref(), Some("7"));
        for (name, role, expected) in [
            ("Alice", "admin", "'A' is not allowed"),
            ("alice", "root", "is not a role"),
        ] {
            let error = record((name.into(), String::new(), role.into(), false, 1)).unwrap_err();
            assert!(matches!(error, BackendError::InvalidData { .. }));
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[tokio::test]
    async fn configuration_errors_are_caught_before_connecting() {
        let hasher = PasswordHasher::new(crate::Argon2Params::OWASP).unwrap();
        let mut config = MySqlConfig::tcp("localhost", 3306, "", "mfv", "pw");
        let check = |config: &MySqlConfig, expected: &str| {
            let error = MySqlBackend::new(config.clone(), hasher.clone()).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        };
        check(&config, "must not be empty");
        config.database = "auth".into();
        config.pool_size = 0;
        check(&config, "pool_size");
        config.pool_size = 1;
        config.timeout = Duration::ZERO;
        check(&config, "timeout");
        check(
            &MySqlConfig::tcp("", 3306, "auth", "mfv", "pw"),
            "incomplete",
        );
        MySqlBackend::new(
            MySqlConfig::socket("/run/s.sock", "auth", "mfv", "pw"),
            hasher,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn cleartext_to_another_host_is_refused_unless_insecure() {
        let hasher = PasswordHasher::new(crate::Argon2Params::OWASP).unwrap();
        let new = |config: &MySqlConfig| MySqlBackend::new(config.clone(), hasher.clone());
        for host in ["192.0.2.1", "db.example.org", "2001:db8::1"] {
            let mut config = MySqlConfig::tcp(host, 3306, "auth", "mfv", "pw");
            let error = new(&config).unwrap_err();
            assert!(matches!(error, BackendError::Misconfigured { .. }));
            let message = error.to_string();
            for expected in [
                &format!("{host}:3306 is not on this machine and the connection has no TLS"),
                "set tls = true, or set insecure = true",
            ] {
                assert!(message.contains(expected), "{message}");
            }
            config.insecure = true;
            new(&config).unwrap();
            config.insecure = false;
            config.tls = true;
            new(&config).unwrap();
        }
        for host in ["127.0.0.1", "::1", "localhost"] {
            new(&MySqlConfig::tcp(host, 3306, "auth", "mfv", "pw")).unwrap();
        }
        new(&MySqlConfig::socket("/run/s.sock", "auth", "mfv", "pw")).unwrap();
        let mut socket_tls = MySqlConfig::socket("/run/s.sock", "auth", "mfv", "pw");
        socket_tls.tls = true;
        let error = new(&socket_tls).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/run/s.sock is a Unix socket, which carries no TLS"),
            "{error}"
        );
        let mut unreadable_ca = MySqlConfig::tcp("192.0.2.1", 3306, "auth", "mfv", "pw");
        unreadable_ca.tls = true;
        unreadable_ca.ca_certificate = Some("/nonexistent/ca.pem".into());
        let error = new(&unreadable_ca).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
