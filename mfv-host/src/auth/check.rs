//! Setup's "test connection": whether the user backend of an `[auth]` section can be reached
//! and used before the operator relies on it, without saving or changing anything.
//!
//! The backend is built from the section exactly as the host builds it ([`AuthSettings`]),
//! so the test passes only where the host's logins would: LDAP connects (LDAPS or StartTLS
//! as configured), binds as the service account and counts the entries the user filter finds
//! under the user base; MySQL connects (TLS as configured) and counts the rows of
//! `mfv_users`, without creating the tables the host creates at its first start. The local
//! users of the sqlite backend need no server: the answer says where they are kept.
//!
//! A failure names the step that failed, the server, and the `[auth]` key to look at
//! ([`AuthCheckError::key`]), so config mode can point at the field. The whole check has a
//! deadline, so a server that drops the traffic does not hold the operator for long.

use std::path::Path;
use std::time::Duration;

use mfv_auth::mysql::MySqlAddress;
use mfv_auth::{
    Argon2Params, BackendError, LdapBackend, LdapConfig, MySqlBackend, MySqlConfig, PasswordHasher,
    ServerCheckError, ServerStep, UserCount,
};
use mfv_config::schema::{AuthBackend, AuthConfig, default_sqlite_path};

use super::{AuthSettings, AuthSetupError, BackendSettings};

/// How long a check may take by default: a few of the backends' own 5 s steps, and still
/// short enough for an operator waiting in front of a form.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(10);

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCheck {
    /// The backend checked.
    pub backend: AuthBackend,
    /// What was checked and found, in one sentence.
    pub message: String,
}

/// Why the backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthCheckError {
    /// A file of the section is given relative to the config volume, and there is none yet
    /// (first-boot setup before its save).
    #[error(
        "{key} = {path:?} is a file on the config volume, which this host does not have yet: \
         give an absolute path to test now, or test again once the configuration is saved"
    )]
    NotOnVolume {
        /// The key, e.g. `auth.ldap.bind_password_file`.
        key: &'static str,
        /// The path as the section gives it.
        path: String,
    },
    /// The settings are incomplete, a password file cannot be read, or the backend refused
    /// its settings.
    #[error("the {} backend cannot be set up", backend.as_str())]
    Settings {
        /// The backend.
        backend: AuthBackend,
        /// Why.
        #[source]
        source: AuthSetupError,
    },
    /// The server did not take the connection.
    #[error("cannot reach {server}: check the address and the port, and that the server runs")]
    Unreachable {
        /// The key to look at.
        key: &'static str,
        /// The server.
        server: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
    /// TLS with the server failed: its certificate does not verify, it offers no TLS, or
    /// the port does not speak it.
    #[error(
        "TLS with {server} failed: check that the server speaks TLS on that port and that \
         its certificate is signed by the CA in ca_certificate (by a system CA without one)"
    )]
    Tls {
        /// The key to look at.
        key: &'static str,
        /// The server.
        server: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
    /// The server refused the account the host logs in with.
    #[error("{server} refused the login as {account}: check the account and its password file")]
    LoginRefused {
        /// The key to look at.
        key: &'static str,
        /// The server.
        server: String,
        /// The LDAP bind DN or the MySQL user.
        account: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
    /// Logged in, but the users cannot be read where the section says they are.
    #[error("cannot read the users in {place} on {server}")]
    Users {
        /// The key to look at.
        key: &'static str,
        /// The server.
        server: String,
        /// The LDAP user base or the MySQL database.
        place: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
    /// The deadline passed.
    #[error(
        "{server} did not answer within {} s: check the address and the port, and that no \
         firewall drops the traffic",
        after.as_secs()
    )]
    Timeout {
        /// The key to look at.
        key: &'static str,
        /// The server.
        server: String,
        /// The deadline.
        after: Duration,
    },
}

impl AuthCheckError {
    /// The configuration key the operator should look at, e.g. `auth.ldap.url`, when one can
    /// be named.
    pub fn key(&self) -> Option<String> {
        match self {
            Self::NotOnVolume { key, .. }
            | Self::Unreachable { key, .. }
            | Self::Tls { key, .. }
            | Self::LoginRefused { key, .. }
            | Self::Users { key, .. }
            | Self::Timeout { key, .. } => Some((*key).to_owned()),
            Self::Settings { backend, source } => {
                let section = backend.as_str();
                match source {
                    AuthSetupError::Missing { setting } => {
                        Some(format!("auth.{section}.{}", setting.key()))
                    }
                    AuthSetupError::NoBindPassword { .. } => {
                        Some("auth.ldap.bind_password_file".to_owned())
                    }
                    AuthSetupError::NoGroupBase { .. } => Some("auth.ldap.group_base".to_owned()),
                    AuthSetupError::SecretFile { .. } => Some(match backend {
                        AuthBackend::Mysql => "auth.mysql.password_file".to_owned(),
                        _ => "auth.ldap.bind_password_file".to_owned(),
                    }),
                    _ => None,
                }
            }
        }
    }
}

/// Checks that the user backend of `auth` can be reached and used, within `deadline`.
/// `volume` is the directory the section's relative paths are on, `None` on a host that
/// has no config volume yet, where only absolute paths can be read.
pub async fn check_backend(
    auth: &AuthConfig,
    volume: Option<&Path>,
    deadline: Duration,
) -> Result<BackendCheck, AuthCheckError> {
    let backend = auth.backend;
    if backend == AuthBackend::Sqlite {
        return Ok(BackendCheck {
            backend,
            message: local_users(auth, volume),
        });
    }
    if volume.is_none() {
        refuse_relative_files(auth)?;
    }
    // Without a volume every path left is absolute, so the directory joined to it is moot.
    let settings = AuthSettings::from_config(auth.clone(), volume.unwrap_or(Path::new("/")));
    let settings_error = |source| AuthCheckError::Settings { backend, source };
    let resolved = settings.resolve().map_err(settings_error)?;
    let message = match resolved.backend {
        BackendSettings::Sqlite => local_users(auth, volume),
        BackendSettings::Ldap(config) => {
            let server = config.url.clone();
            let checked = tokio::time::timeout(deadline, check_ldap(*config)).await;
            checked.map_err(|_| AuthCheckError::Timeout {
                key: "auth.ldap.url",
                server,
                after: deadline,
            })??
        }
        BackendSettings::Mysql(config) => {
            let server = describe_mysql(&config);
            let checked = tokio::time::timeout(deadline, check_mysql(config)).await;
            checked.map_err(|_| AuthCheckError::Timeout {
                key: "auth.mysql.host",
                server,
                after: deadline,
            })??
        }
    };
    Ok(BackendCheck { backend, message })
}

/// Where the local users are kept.
fn local_users(auth: &AuthConfig, volume: Option<&Path>) -> String {
    let path = auth
        .sqlite
        .as_ref()
        .map_or_else(default_sqlite_path, |sqlite| sqlite.path.clone());
    match volume {
        Some(volume) => {
            let database = volume.join(&path);
            let created = if database.exists() {
                ""
            } else {
                ", which the first user added creates"
            };
            format!(
                "users are the local ones, kept in {}{created}",
                database.display()
            )
        }
        None if Path::new(&path).is_absolute() => format!(
            "users are the local ones, kept in {path}, which setup's save creates with the \
             first administrator"
        ),
        None => format!(
            "users are the local ones, kept in {path} on the config volume, which setup's \
             save creates with the first administrator"
        ),
    }
}

/// Refuses the section's files given relative to a config volume that does not exist yet.
fn refuse_relative_files(auth: &AuthConfig) -> Result<(), AuthCheckError> {
    let files: Vec<(&'static str, Option<&String>)> = match auth.backend {
        AuthBackend::Ldap => auth.ldap.as_ref().map_or_else(Vec::new, |ldap| {
            vec![
                (
                    "auth.ldap.bind_password_file",
                    ldap.bind_password_file.as_ref(),
                ),
                ("auth.ldap.ca_certificate", ldap.ca_certificate.as_ref()),
            ]
        }),
        AuthBackend::Mysql => auth.mysql.as_ref().map_or_else(Vec::new, |mysql| {
            vec![
                ("auth.mysql.password_file", mysql.password_file.as_ref()),
                ("auth.mysql.ca_certificate", mysql.ca_certificate.as_ref()),
            ]
        }),
        _ => Vec::new(),
    };
    for (key, path) in files {
        if let Some(path) = path.filter(|path| !Path::new(path).is_absolute()) {
            return Err(AuthCheckError::NotOnVolume {
                key,
                path: path.clone(),
            });
        }
    }
    Ok(())
}

/// Connects, binds and counts the users of the directory `config` describes.
async fn check_ldap(config: LdapConfig) -> Result<String, AuthCheckError> {
    let transport = if config.starttls {
        "with StartTLS"
    } else if config.url.starts_with("ldaps://") {
        "over TLS"
    } else {
        "without TLS"
    };
    let account = if config.bind_dn.is_empty() {
        "searched anonymously".to_owned()
    } else {
        format!("bound as {}", config.bind_dn)
    };
    let head = format!("connected to {} {transport}, {account}", config.url);
    let base_dn = config.user_base_dn.clone();
    let settings = CheckedServer {
        server: config.url.clone(),
        account: config.bind_dn.clone(),
        place: base_dn.clone(),
        connect_key: "auth.ldap.url",
        tls_key: if config.ca_certificate.is_some() {
            "auth.ldap.ca_certificate"
        } else {
            "auth.ldap.url"
        },
        login_key: "auth.ldap.bind_password_file",
        users_key: "auth.ldap.base_dn",
    };
    let backend = LdapBackend::new(config).map_err(|error| AuthCheckError::Settings {
        backend: AuthBackend::Ldap,
        source: AuthSetupError::Backend(error),
    })?;
    let count = backend
        .count_users()
        .await
        .map_err(|failure| settings.error(failure))?;
    Ok(format!("{head}, {} under {base_dn}", users(count)))
}

/// Connects to the database `config` describes and counts the rows of its user table.
async fn check_mysql(config: MySqlConfig) -> Result<String, AuthCheckError> {
    let server = describe_mysql(&config);
    let transport = match (&config.address, config.tls) {
        (MySqlAddress::Socket(_), _) => "over its Unix socket",
        (MySqlAddress::Tcp { .. }, true) => "over TLS",
        (MySqlAddress::Tcp { .. }, false) => "without TLS",
    };
    let head = format!(
        "connected to {server} {transport} as {}, database {}",
        config.user, config.database
    );
    let settings = CheckedServer {
        place: format!("database {}", config.database),
        server,
        account: config.user.clone(),
        connect_key: "auth.mysql.host",
        tls_key: if config.ca_certificate.is_some() {
            "auth.mysql.ca_certificate"
        } else {
            "auth.mysql.tls"
        },
        login_key: "auth.mysql.password_file",
        users_key: "auth.mysql.database",
    };
    let settings_error = |source| AuthCheckError::Settings {
        backend: AuthBackend::Mysql,
        source,
    };
    let hasher = PasswordHasher::new(Argon2Params::default())
        .map_err(|error| settings_error(AuthSetupError::Hasher(error)))?;
    let backend = MySqlBackend::new(config, hasher)
        .map_err(|error| settings_error(AuthSetupError::Backend(error)))?;
    let counted = backend.count_users().await;
    // The connection did its work; a failure to close it changes nothing the check found.
    let _ = backend.close().await;
    let count = counted.map_err(|failure| settings.error(failure))?;
    Ok(format!("{head}: {} in mfv_users", users(count)))
}

/// The server a check talks to, and the settings each of its steps depends on, so that a
/// failure names the setting to look at.
struct CheckedServer {
    /// The server, as messages name it.
    server: String,
    /// The account the check logs in as.
    account: String,
    /// Where the users are counted.
    place: String,
    connect_key: &'static str,
    tls_key: &'static str,
    login_key: &'static str,
    users_key: &'static str,
}

impl CheckedServer {
    /// The error for the step that failed, naming its setting.
    fn error(self, failure: ServerCheckError) -> AuthCheckError {
        let ServerCheckError { step, error } = failure;
        let server = self.server;
        match step {
            ServerStep::Connect => AuthCheckError::Unreachable {
                key: self.connect_key,
                server,
                source: error,
            },
            ServerStep::Tls => AuthCheckError::Tls {
                key: self.tls_key,
                server,
                source: error,
            },
            ServerStep::Login => AuthCheckError::LoginRefused {
                key: self.login_key,
                server,
                account: self.account,
                source: error,
            },
            ServerStep::Users => AuthCheckError::Users {
                key: self.users_key,
                server,
                place: self.place,
                source: error,
            },
        }
    }
}

/// Where a MySQL server is, for messages.
fn describe_mysql(config: &MySqlConfig) -> String {
    match &config.address {
        MySqlAddress::Tcp { host, port } => format!("{host}:{port}"),
        MySqlAddress::Socket(path) => path.display().to_string(),
    }
}

/// `3 users`, `1 user`, `at least 500 users` when the server's size limit stopped the count.
fn users(count: UserCount) -> String {
    let noun = if count.users == 1 { "user" } else { "users" };
    if count.limited {
        format!(
            "at least {} {noun} (the server's size limit ended the count)",
            count.users
        )
    } else {
        format!("{} {noun}", count.users)
    }
}
