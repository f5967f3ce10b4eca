//! Users and sessions from the configuration: the `[auth]` section of `mfv.toml`, the config
//! volume its relative paths are on, and optional overrides (the `mfv` command's flags) become
//! one user backend and the auth database ([`AuthSettings::resolve`]), then an
//! [`Authenticator`] over them ([`ResolvedAuth::open`]). PID 1, the host daemon, the web server
//! and `mfv user`/`mfv auth` all build theirs here; setup's "test connection" checks the
//! backend built the same way ([`check_backend`]).
//!
//! Every setting is the override when there is one, else the section's value, else its
//! default. Relative paths from the section are on the config volume; paths given as overrides
//! are used as they are. The rules, each once, here:
//!
//! - the auth database (sessions, API tokens, TOTP and the audit log whatever the backend, and
//!   the users of the sqlite backend): `[auth.sqlite] path` on the volume, `users.sqlite` by
//!   default; without a configuration [`DEFAULT_AUTH_DB`];
//! - the backend: `[auth] backend`, sqlite by default;
//! - the minimum password length: `[auth] min_password_length`, without a configuration
//!   [`mfv_auth::DEFAULT_MIN_PASSWORD_CHARS`];
//! - LDAP: `url` and `base_dn` are required ([`AuthSetupError::Missing`]); a `bind_dn` needs a
//!   `bind_password_file` ([`AuthSetupError::NoBindPassword`]), without one the search is
//!   anonymous; `group_base` defaults to the parent of the base DN in effect
//!   ([`AuthSetupError::NoGroupBase`] when it has none); `user_filter` is the section's,
//!   without a section [`mfv_auth::ldap::DEFAULT_USER_FILTER`]; `disabled_filter` is the
//!   section's, else [`mfv_auth::ldap::DEFAULT_DISABLED_FILTER`]; `starttls` is off and
//!   `ca_certificate` absent (the system's CAs); `insecure` is the section's, off without
//!   one; `group_roles` defaults to [`DEFAULT_LDAP_GROUP_ROLES`];
//! - MySQL: `host` is required unless a socket is given (an override only), `port` defaults
//!   to 3306, `database` and `user` are required, without `password_file` there is no password;
//!   `tls`, `ca_certificate` and `insecure` are the section's (off, the system's CAs, off
//!   without one) and are not used over a socket, which never leaves the machine.
//!
//! The backends refuse cleartext to a host that is not loopback unless `insecure` is set, so
//! a url or host given as an override gets the same protection as the validated section.
//!
//! Password files hold the secret on their first line.
//!
//! ```no_run
//! use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = AuthSettings::load("/mnt/config/mfv.toml".as_ref())?;
//! let authenticator = settings
//!     .with_overrides(AuthOverrides::default())
//!     .open(MissingDatabase::Create)
//!     .await?;
//! println!("users come from the {} backend", authenticator.backend().name());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mfv_auth::ldap::GroupRole;
use mfv_auth::{
    Argon2Params, AuthPolicy, Authenticator, BackendError, DEFAULT_MIN_PASSWORD_CHARS, HashError,
    LdapBackend, LdapConfig, MySqlBackend, MySqlConfig, PasswordHasher, Role, SqliteState,
    SqliteUserBackend, StoreError, SystemClock, UserBackend,
};
use mfv_config::schema::{
    AuthBackend, AuthConfig, AuthRole, LdapAuthConfig, LoadError, MysqlAuthConfig,
    default_ldap_group_roles, default_mysql_port, default_sqlite_path, load_config_file, parent_dn,
};

pub use check::{AuthCheckError, BackendCheck, CHECK_DEADLINE, check_backend};
pub use mfv_config::schema::DEFAULT_LDAP_GROUP_ROLES;

mod check;
pub mod live;

/// The auth database when there is neither a configuration nor an override. The root file
/// system is RAM, so it only survives a reboot where /var/lib/mfv is persistent storage (a
/// host installed on disk); the appliance keeps its database on the config volume.
pub const DEFAULT_AUTH_DB: &str = "/var/lib/mfv/auth.sqlite";

/// Settings that replace the configuration's: each `Some` wins over the `[auth]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthOverrides {
    /// The auth database.
    pub database: Option<PathBuf>,
    /// The user backend.
    pub backend: Option<AuthBackend>,
    /// `[auth.ldap]` settings.
    pub ldap: LdapOverrides,
    /// `[auth.mysql]` settings.
    pub mysql: MysqlOverrides,
}

/// Overrides of `[auth.ldap]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdapOverrides {
    /// `url`.
    pub url: Option<String>,
    /// `base_dn`: where users are searched.
    pub base_dn: Option<String>,
    /// `bind_dn`.
    pub bind_dn: Option<String>,
    /// `bind_password_file`.
    pub bind_password_file: Option<PathBuf>,
    /// `user_filter`.
    pub user_filter: Option<String>,
    /// `group_base`.
    pub group_base: Option<String>,
    /// `starttls`.
    pub starttls: Option<bool>,
    /// `ca_certificate`.
    pub ca_certificate: Option<PathBuf>,
    /// `group_roles`, replacing the section's mapping as a whole.
    pub group_roles: Option<Vec<GroupRole>>,
}

/// Overrides of `[auth.mysql]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlOverrides {
    /// `host`.
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// A Unix socket to connect over instead of TCP (no `[auth.mysql]` field: a server on
    /// the host itself is a local setup).
    pub socket: Option<PathBuf>,
    /// `database`.
    pub database: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `password_file`.
    pub password_file: Option<PathBuf>,
    /// `tls`.
    pub tls: Option<bool>,
    /// `ca_certificate`.
    pub ca_certificate: Option<PathBuf>,
}

/// A required setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSetting {
    /// `[auth.ldap] url`.
    LdapUrl,
    /// `[auth.ldap] base_dn`.
    LdapBaseDn,
    /// `[auth.mysql] host` (or a socket).
    MysqlHost,
    /// `[auth.mysql] database`.
    MysqlDatabase,
    /// `[auth.mysql] user`.
    MysqlUser,
}

impl AuthSetting {
    /// The backend that needs it.
    pub fn backend(self) -> AuthBackend {
        match self {
            Self::LdapUrl | Self::LdapBaseDn => AuthBackend::Ldap,
            Self::MysqlHost | Self::MysqlDatabase | Self::MysqlUser => AuthBackend::Mysql,
        }
    }

    /// Its key in the backend's section.
    pub fn key(self) -> &'static str {
        match self {
            Self::LdapUrl => "url",
            Self::LdapBaseDn => "base_dn",
            Self::MysqlHost => "host",
            Self::MysqlDatabase => "database",
            Self::MysqlUser => "user",
        }
    }
}

impl std::fmt::Display for AuthSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in [auth.{}]", self.key(), self.backend().as_str())
    }
}

/// The auth settings are incomplete, or the database or user backend cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// A required setting is neither overridden nor in the configuration.
    #[error("the {} backend needs {setting}", setting.backend().as_str())]
    Missing {
        /// The setting.
        setting: AuthSetting,
    },
    /// No group base is set and the user base DN has no parent to stand for it.
    #[error(
        "the user base {base_dn:?} has no parent to search groups under: set group_base in [auth.ldap]"
    )]
    NoGroupBase {
        /// The user base DN in effect.
        base_dn: String,
    },
    /// A bind DN is set without a file holding its password.
    #[error("the LDAP service account {bind_dn} needs bind_password_file in [auth.ldap]")]
    NoBindPassword {
        /// The bind DN.
        bind_dn: String,
    },
    /// A password file could not be read.
    #[error("cannot read the password file {}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The auth database does not exist and [`MissingDatabase::Refuse`] was asked for.
    #[error("no auth database at {}", path.display())]
    NoDatabase {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The directory for a new auth database could not be created.
    #[error("cannot create the directory {}", path.display())]
    DatabaseDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The auth database could not be opened (the error names it).
    #[error(transparent)]
    Database(#[from] StoreError),
    /// The password hasher could not be set up.
    #[error(transparent)]
    Hasher(#[from] HashError),
    /// The user backend refused its settings (it says which).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What opening does when the auth database does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingDatabase {
    /// Create it (and its directory): for whoever adds the first user.
    Create,
    /// Fail with [`AuthSetupError::NoDatabase`]: for whoever only reads or changes what exists.
    Refuse,
}

/// The `[auth]` section with the directory its relative paths are on, and the overrides:
/// everything [`AuthSettings::resolve`] needs.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    section: Option<(AuthConfig, PathBuf)>,
    overrides: AuthOverrides,
}

/// The resolved settings of the auth database and the user backend.
#[derive(Debug, Clone)]
pub struct ResolvedAuth {
    /// The auth database.
    pub database: PathBuf,
    /// The user backend and its settings.
    pub backend: BackendSettings,
    /// The fewest characters a password set here may have: `[auth] min_password_length`,
    /// else [`mfv_auth::DEFAULT_MIN_PASSWORD_CHARS`].
    pub min_password_chars: usize,
}

/// A user backend with its resolved settings.
#[derive(Debug, Clone)]
pub enum BackendSettings {
    /// Users in the auth database.
    Sqlite,
    /// Users in an LDAP directory (boxed: the settings are many times the other variants).
    Ldap(Box<LdapConfig>),
    /// Users in a MySQL/MariaDB database.
    Mysql(MySqlConfig),
}

impl AuthSettings {
    /// No configuration: overrides and the built-in defaults only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `[auth]` section of a configuration whose volume is mounted at `volume`.
    pub fn from_config(auth: AuthConfig, volume: impl Into<PathBuf>) -> Self {
        AuthSettings {
            section: Some((auth, volume.into())),
            overrides: AuthOverrides::default(),
        }
    }

    /// Reads and validates the configuration file `config_file`; its directory is the config
    /// volume.
    pub fn load(config_file: &Path) -> Result<Self, LoadError> {
        let (config, _notes) = load_config_file(config_file)?;
        let volume = config_file.parent().unwrap_or(Path::new(""));
        Ok(Self::from_config(config.auth, volume))
    }

    /// These settings with `overrides` in force.
    pub fn with_overrides(mut self, overrides: AuthOverrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// These settings with the local users (the auth database's own), whatever `[auth]
    /// backend` says: the console's gate, which a directory server that is down must not
    /// close.
    pub fn with_local_users(mut self) -> Self {
        self.overrides.backend = Some(AuthBackend::Sqlite);
        self
    }

    /// Resolves every setting and reads the password files; touches neither the database nor
    /// a server.
    pub fn resolve(&self) -> Result<ResolvedAuth, AuthSetupError> {
        let auth = self.section.as_ref().map(|(auth, _)| auth);
        let backend = self
            .overrides
            .backend
            .or(auth.map(|auth| auth.backend))
            .unwrap_or_default();
        let backend = match backend {
            AuthBackend::Sqlite => BackendSettings::Sqlite,
            AuthBackend::Ldap => BackendSettings::Ldap(Box::new(self.ldap_config()?)),
            AuthBackend::Mysql => BackendSettings::Mysql(self.mysql_config()?),
        };
        let min_password_chars = auth
            .and_then(|auth| usize::try_from(auth.min_password_length).ok())
            .unwrap_or(DEFAULT_MIN_PASSWORD_CHARS);
        Ok(ResolvedAuth {
            database: self.database(),
            backend,
            min_password_chars,
        })
    }

    /// [`AuthSettings::resolve`], then [`ResolvedAuth::open`].
    pub async fn open(&self, missing: MissingDatabase) -> Result<Authenticator, AuthSetupError> {
        self.resolve()?.open(missing).await
    }

    /// A path from the section: relative ones are on the config volume.
    fn on_volume(&self, path: &str) -> PathBuf {
        match &self.section {
            Some((_, volume)) => volume.join(path),
            None => PathBuf::from(path),
        }
    }

    fn database(&self) -> PathBuf {
        if let Some(database) = &self.overrides.database {
            return database.clone();
        }
        match &self.section {
            Some((auth, _)) => {
                let path = auth
                    .sqlite
                    .as_ref()
                    .map_or_else(default_sqlite_path, |sqlite| sqlite.path.clone());
                self.on_volume(&path)
            }
            None => PathBuf::from(DEFAULT_AUTH_DB),
        }
    }

    fn ldap_section(&self) -> Option<&LdapAuthConfig> {
        self.section
            .as_ref()
            .and_then(|(auth, _)| auth.ldap.as_ref())
    }

    fn mysql_section(&self) -> Option<&MysqlAuthConfig> {
        self.section
            .as_ref()
            .and_then(|(auth, _)| auth.mysql.as_ref())
    }

    /// A path from the section, on the volume.
    fn volume_path(&self, path: Option<&String>) -> Option<PathBuf> {
        path.map(|path| self.on_volume(path))
    }

    fn ldap_config(&self) -> Result<LdapConfig, AuthSetupError> {
        let given = &self.overrides.ldap;
        let section = self.ldap_section();
        let missing = |setting| AuthSetupError::Missing { setting };
        let url = pick(&given.url, section, |ldap| Some(ldap.url.clone()))
            .ok_or(missing(AuthSetting::LdapUrl))?;
        let base_dn = pick(&given.base_dn, section, |ldap| Some(ldap.base_dn.clone()))
            .ok_or(missing(AuthSetting::LdapBaseDn))?;
        let bind_dn =
            pick(&given.bind_dn, section, |ldap| ldap.bind_dn.clone()).unwrap_or_default();
        let password_file = pick(&given.bind_password_file, section, |ldap| {
            self.volume_path(ldap.bind_password_file.as_ref())
        });
        let bind_password = match password_file {
            Some(path) => read_secret_file(&path)?,
            None if bind_dn.is_empty() => String::new(),
            None => return Err(AuthSetupError::NoBindPassword { bind_dn }),
        };
        let group_base = match pick(&given.group_base, section, |ldap| ldap.group_base.clone()) {
            Some(group_base) => group_base,
            None => parent_dn(&base_dn)
                .ok_or_else(|| AuthSetupError::NoGroupBase {
                    base_dn: base_dn.clone(),
                })?
                .to_owned(),
        };
        let mut config = LdapConfig::new(url, bind_dn, bind_password, base_dn, group_base);
        if let Some(filter) = pick(&given.user_filter, section, |ldap| {
            Some(ldap.user_filter.clone())
        }) {
            config.user_filter = filter;
        }
        if let Some(filter) = section.and_then(|ldap| ldap.disabled_filter.clone()) {
            config.disabled_filter = filter;
        }
        config.starttls =
            pick(&given.starttls, section, |ldap| Some(ldap.starttls)).unwrap_or(false);
        config.ca_certificate = pick(&given.ca_certificate, section, |ldap| {
            self.volume_path(ldap.ca_certificate.as_ref())
        });
        config.insecure = section.is_some_and(|ldap| ldap.insecure);
        config.group_roles = pick(&given.group_roles, section, |ldap| {
            Some(group_roles(&ldap.group_roles))
        })
        .unwrap_or_else(|| group_roles(&default_ldap_group_roles()));
        Ok(config)
    }

    fn mysql_config(&self) -> Result<MySqlConfig, AuthSetupError> {
        let given = &self.overrides.mysql;
        let section = self.mysql_section();
        let missing = |setting| AuthSetupError::Missing { setting };
        let database = pick(&given.database, section, |mysql| {
            Some(mysql.database.clone())
        })
        .ok_or(missing(AuthSetting::MysqlDatabase))?;
        let user = pick(&given.user, section, |mysql| Some(mysql.user.clone()))
            .ok_or(missing(AuthSetting::MysqlUser))?;
        let password_file = pick(&given.password_file, section, |mysql| {
            self.volume_path(mysql.password_file.as_ref())
        });
        let password = match password_file {
            Some(path) => read_secret_file(&path)?,
            None => String::new(),
        };
        if let Some(socket) = &given.socket {
            return Ok(MySqlConfig::socket(socket, database, user, password));
        }
        let host = pick(&given.host, section, |mysql| Some(mysql.host.clone()))
            .ok_or(missing(AuthSetting::MysqlHost))?;
        let port =
            pick(&given.port, section, |mysql| Some(mysql.port)).unwrap_or_else(default_mysql_port);
        let mut config = MySqlConfig::tcp(host, port, database, user, password);
        config.tls = pick(&given.tls, section, |mysql| Some(mysql.tls)).unwrap_or(false);
        config.ca_certificate = pick(&given.ca_certificate, section, |mysql| {
            self.volume_path(mysql.ca_certificate.as_ref())
        });
        config.insecure = section.is_some_and(|mysql| mysql.insecure);
        Ok(config)
    }
}

/// The override when there is one, else what `field` finds in the section.
fn pick<S, T: Clone>(
    given: &Option<T>,
    section: Option<&S>,
    field: impl FnOnce(&S) -> Option<T>,
) -> Option<T> {
    given.clone().or_else(|| section.and_then(field))
}

impl ResolvedAuth {
    /// Sets up the user backend (without contacting its server), then opens the auth
    /// database, creating it with its directory when it is missing and `missing` allows it,
    /// and joins them in an [`Authenticator`] on the system clock with the default policy and
    /// the minimum password length in effect.
    pub async fn open(self, missing: MissingDatabase) -> Result<Authenticator, AuthSetupError> {
        let hasher = PasswordHasher::new(Argon2Params::default())?;
        // The backend checks its settings first, so a mistake there creates no database.
        let remote: Option<Arc<dyn UserBackend>> = match self.backend {
            BackendSettings::Sqlite => None,
            BackendSettings::Ldap(config) => Some(Arc::new(LdapBackend::new(*config)?)),
            BackendSettings::Mysql(config) => {
                Some(Arc::new(MySqlBackend::new(config, hasher.clone())?))
            }
        };
        let state = open_database(self.database, missing).await?;
        let backend = match remote {
            Some(backend) => backend,
            None => Arc::new(SqliteUserBackend::new(state.clone(), hasher)),
        };
        let policy = AuthPolicy {
            min_password_chars: self.min_password_chars,
            ..AuthPolicy::default()
        };
        Ok(Authenticator::new(
            backend,
            state,
            Arc::new(SystemClock),
            policy,
        ))
    }
}

async fn open_database(
    path: PathBuf,
    missing: MissingDatabase,
) -> Result<SqliteState, AuthSetupError> {
    if !path.exists() {
        if missing == MissingDatabase::Refuse {
            return Err(AuthSetupError::NoDatabase { path });
        }
        if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|source| {
                AuthSetupError::DatabaseDirectory {
                    path: directory.to_owned(),
                    source,
                }
            })?;
        }
    }
    Ok(SqliteState::open(path).await?)
}

/// The access-control role a configuration's role name stands for.
pub fn role(role: AuthRole) -> Role {
    match role {
        AuthRole::Viewer => Role::Viewer,
        AuthRole::Operator => Role::Operator,
        AuthRole::Admin => Role::Admin,
    }
}

/// `[auth.ldap.group_roles]` as the LDAP backend's mapping.
pub fn group_roles(map: &BTreeMap<String, AuthRole>) -> Vec<GroupRole> {
    map.iter()
        .map(|(group, config_role)| GroupRole {
            group: group.clone(),
            role: role(*config_role),
        })
        .collect()
}

/// The first line of a password file, without its line ending.
pub fn read_secret_file(path: &Path) -> Result<String, AuthSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::SecretFile {
        path: path.to_owned(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests;
