//! `mfv user`, `mfv token`, `mfv auth test` and `mfv audit`: user administration, API tokens,
//! user backend checks and the audit log, run by root on the host (actor `local` in the audit
//! log).
//!
//! Where things are: the auth database (SQLite) always holds sessions, API tokens, TOTP and
//! the audit log, and the users too with the `sqlite` backend. It is `--db PATH`; without it,
//! the `[auth.sqlite] path` of `--backend-config FILE` (relative to that file's directory, the
//! config volume), else [`DEFAULT_AUTH_DB`]. The user backend is `--backend`, else the
//! `[auth] backend` of `--backend-config`, else `sqlite`; LDAP and MySQL take their
//! connection settings from flags, which override `[auth.ldap]` / `[auth.mysql]`.
//!
//! Passwords never come from the command line: they are read from the terminal without echo
//! (asked twice), or as one line from stdin with `--password-stdin`. Service account
//! passwords (LDAP bind, MySQL) are read from files.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mfv_auth::ldap::GroupRole;
use mfv_auth::{
    Actor, Argon2Params, AuthPolicy, Authenticator, LdapBackend, LdapConfig, MAX_PASSWORD_BYTES,
    MySqlBackend, MySqlConfig, Password, PasswordHasher, Role, SqliteState, SqliteUserBackend,
    SystemClock, UserBackend, UserRecord, Username,
};
use mfv_config::schema::{AuthBackend, AuthConfig, default_sqlite_path, load_config_file};

use crate::output::{Output, Status};

/// The auth database when neither `--db` nor `--backend-config` says otherwise. The root file
/// system is RAM, so this only survives a reboot where /var/lib/mfv is persistent storage (a
/// host installed on disk, or a bind mount from the config volume); on the appliance pass the
/// config file (`--backend-config /path/to/mfv.toml`) so the database on the config volume is
/// used.
pub const DEFAULT_AUTH_DB: &str = "/var/lib/mfv/auth.sqlite";

/// The default lifetime of an API token, in days.
pub const DEFAULT_TOKEN_DAYS: u64 = 90;

/// How many audit entries `mfv audit` shows by default.
pub const DEFAULT_AUDIT_LIMIT: u32 = 50;

/// The LDAP group-to-role mapping used when no `--ldap-group-role` is given: groups named by
/// their `cn`.
pub const DEFAULT_LDAP_GROUP_ROLES: [(&str, Role); 3] = [
    ("mfv-admins", Role::Admin),
    ("mfv-operators", Role::Operator),
    ("mfv-viewers", Role::Viewer),
];

/// A user backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Users in the auth database.
    Sqlite,
    /// Users in an LDAP directory (read-only here).
    Ldap,
    /// Users in a MySQL/MariaDB database.
    Mysql,
}

/// Where the auth database and the users are; shared by every auth command.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthOptions {
    /// The auth database [default: `[auth.sqlite] path` of --backend-config, else
    /// /var/lib/mfv/auth.sqlite].
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Read the `[auth]` section of this config file (mfv.toml); flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub backend_config: Option<PathBuf>,
    /// Where users are [default: `[auth] backend` of --backend-config, else sqlite].
    #[arg(long, global = true, value_enum)]
    pub backend: Option<BackendKind>,
    /// LDAP server, `ldap://host[:port]` or `ldaps://host[:port]`.
    #[arg(long, global = true, value_name = "URL", help_heading = "LDAP backend")]
    pub ldap_url: Option<String>,
    /// Upgrade the `ldap://` connection with StartTLS.
    #[arg(long, global = true, help_heading = "LDAP backend")]
    pub ldap_starttls: bool,
    /// PEM file of the CA that signs the server's certificate [default: the system's CAs].
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "LDAP backend"
    )]
    pub ldap_ca_cert: Option<PathBuf>,
    /// Service account DN used to search [default: anonymous search].
    #[arg(long, global = true, value_name = "DN", help_heading = "LDAP backend")]
    pub ldap_bind_dn: Option<String>,
    /// File holding the service account's password (one line).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "LDAP backend"
    )]
    pub ldap_bind_password_file: Option<PathBuf>,
    /// Where users are searched (subtree).
    #[arg(long, global = true, value_name = "DN", help_heading = "LDAP backend")]
    pub ldap_user_base: Option<String>,
    /// Filter that finds one user; `{username}` stands for the escaped name
    /// [default: (&(objectClass=inetOrgPerson)(uid={username}))].
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        help_heading = "LDAP backend"
    )]
    pub ldap_user_filter: Option<String>,
    /// Where groups are searched (subtree) [default: the parent of the user base].
    #[arg(long, global = true, value_name = "DN", help_heading = "LDAP backend")]
    pub ldap_group_base: Option<String>,
    /// A group (its DN, or its cn) whose members get ROLE; repeatable; the highest role wins
    /// [default: mfv-admins=admin, mfv-operators=operator, mfv-viewers=viewer].
    #[arg(long, global = true, value_name = "GROUP=ROLE", value_parser = parse_group_role, help_heading = "LDAP backend")]
    pub ldap_group_role: Vec<GroupRole>,
    /// MySQL server host.
    #[arg(
        long,
        global = true,
        value_name = "HOST",
        help_heading = "MySQL backend"
    )]
    pub mysql_host: Option<String>,
    /// MySQL server port [default: 3306].
    #[arg(
        long,
        global = true,
        value_name = "PORT",
        help_heading = "MySQL backend"
    )]
    pub mysql_port: Option<u16>,
    /// Connect over this Unix socket instead of TCP.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "MySQL backend"
    )]
    pub mysql_socket: Option<PathBuf>,
    /// Database holding the users table.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "MySQL backend"
    )]
    pub mysql_database: Option<String>,
    /// Account to connect as.
    #[arg(
        long,
        global = true,
        value_name = "USER",
        help_heading = "MySQL backend"
    )]
    pub mysql_user: Option<String>,
    /// File holding that account's password (one line).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "MySQL backend"
    )]
    pub mysql_password_file: Option<PathBuf>,
}

/// `GROUP=ROLE`, split at the last `=` (a group DN holds `=` too).
fn parse_group_role(input: &str) -> Result<GroupRole, String> {
    let (group, role) = input
        .rsplit_once('=')
        .ok_or_else(|| format!("{input:?} is not GROUP=ROLE"))?;
    if group.is_empty() {
        return Err(format!("{input:?} names no group"));
    }
    let role = role.parse::<Role>().map_err(|error| error.to_string())?;
    Ok(GroupRole {
        group: group.to_owned(),
        role,
    })
}

/// `mfv user ...`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    options: AuthOptions,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is asked twice on the terminal, or read from stdin.
    Add {
        /// The login name.
        user: Username,
        /// admin, operator or viewer.
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// A human name (any Unicode, no control characters).
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password as one line from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user with their sessions, API tokens and TOTP.
    #[command(alias = "delete")]
    Del {
        /// The login name.
        user: Username,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        /// The login name.
        user: Username,
        /// Read the password as one line from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's role.
    Role {
        /// The login name.
        user: Username,
        /// admin, operator or viewer.
        role: Role,
    },
    /// Disable a user: no login, and their sessions and API tokens stop working.
    Disable {
        /// The login name.
        user: Username,
    },
    /// Enable a disabled user.
    Enable {
        /// The login name.
        user: Username,
    },
}

/// `mfv token ...`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    options: AuthOptions,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token and print its secret, once.
    Create {
        /// The owner.
        user: Username,
        /// A label, unique per owner.
        name: String,
        /// What it grants, at most the owner's role [default: the owner's role].
        #[arg(long)]
        role: Option<Role>,
        /// Days until it expires.
        #[arg(long, default_value_t = DEFAULT_TOKEN_DAYS, value_parser = clap::value_parser!(u64).range(1..))]
        days: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List API tokens (never their secrets).
    List {
        /// Only this owner's tokens.
        #[arg(long)]
        user: Option<Username>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token.
    Revoke {
        /// The token's id (from `mfv token list`).
        id: i64,
    },
}

/// `mfv auth ...`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(flatten)]
    options: AuthOptions,
    #[command(subcommand)]
    command: AuthCommand,
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// Check the user backend end to end for USER and say which step failed.
    Test {
        /// The user to look up.
        user: Username,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `mfv audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    options: AuthOptions,
    /// How many entries, newest first.
    #[arg(long, default_value_t = DEFAULT_AUDIT_LIMIT)]
    limit: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Where a new password comes from.
pub trait PasswordReader {
    /// A new password: one line from stdin when `from_stdin`, else asked twice on the
    /// terminal without echo (both must match).
    fn new_password(&mut self, from_stdin: bool) -> anyhow::Result<String>;
}

/// Reads passwords from this process's stdin and terminal.
#[derive(Debug, Default)]
pub struct TerminalPasswords;

impl PasswordReader for TerminalPasswords {
    fn new_password(&mut self, from_stdin: bool) -> anyhow::Result<String> {
        let stdin = std::io::stdin();
        if from_stdin {
            return read_password_line(&mut stdin.lock());
        }
        if !nix::unistd::isatty(&stdin).unwrap_or(false) {
            bail!("stdin is not a terminal: pass --password-stdin to read the password from it");
        }
        let first = prompt_without_echo("New password: ")?;
        let second = prompt_without_echo("Retype the password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        Ok(first)
    }
}

/// Prints `prompt` on stderr and reads a line from the terminal on stdin with echo off.
fn prompt_without_echo(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut silent = saved.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    silent.local_flags.insert(LocalFlags::ECHONL);
    // Echo off (dropping what was typed ahead) before the prompt, so nothing typed after the
    // prompt is echoed or dropped.
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &silent).context("cannot turn the terminal echo off")?;
    eprint!("{prompt}");
    let line = read_password_line(&mut stdin.lock());
    tcsetattr(&stdin, SetArg::TCSANOW, &saved).context("cannot restore the terminal echo")?;
    line
}

/// One line without its line ending; at most [`MAX_PASSWORD_BYTES`] (a longer one is
/// refused by [`Password::new`]).
fn read_password_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    // Two bytes more than the limit keep a too-long line too long after the line ending goes.
    let limit = MAX_PASSWORD_BYTES as u64 + 3;
    std::io::Read::take(input, limit)
        .read_until(b'\n', &mut bytes)
        .context("cannot read the password from stdin")?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    String::from_utf8(bytes).context("the password is not UTF-8")
}

/// The output streams and the password source of a command.
pub struct Io<'a> {
    /// What the command prints (data).
    pub out: &'a mut dyn Write,
    /// Notes for the operator (what was done).
    pub err: &'a mut dyn Write,
    /// Where new passwords come from.
    pub passwords: &'a mut dyn PasswordReader,
}

/// Runs `command` on a single-threaded runtime with this process's terminal for passwords;
/// what it prints becomes the [`Output`].
fn with_process_io<F>(command: F) -> anyhow::Result<Output>
where
    F: FnOnce(&tokio::runtime::Runtime, &mut Io<'_>) -> anyhow::Result<Status>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        passwords: &mut TerminalPasswords,
    };
    let status = command(&runtime, &mut io)?;
    Ok(Output {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        status,
    })
}

/// `mfv user ...` on this process's terminal.
pub fn run_user(args: UserArgs) -> anyhow::Result<Output> {
    with_process_io(|runtime, io| runtime.block_on(user(args, io)))
}

/// `mfv token ...` on this process's terminal.
pub fn run_token(args: TokenArgs) -> anyhow::Result<Output> {
    with_process_io(|runtime, io| runtime.block_on(token(args, io)))
}

/// `mfv auth ...` on this process's terminal.
pub fn run_auth(args: AuthArgs) -> anyhow::Result<Output> {
    with_process_io(|runtime, io| runtime.block_on(auth(args, io)))
}

/// `mfv audit` on this process's terminal.
pub fn run_audit(args: AuditArgs) -> anyhow::Result<Output> {
    with_process_io(|runtime, io| runtime.block_on(audit(args, io)))
}

/// Whether a command may create the auth database when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Create,
    Refuse,
}

/// The backend settings, resolved from the flags and the config file.
struct Resolved {
    db: PathBuf,
    kind: BackendKind,
    auth: AuthConfig,
    config_dir: Option<PathBuf>,
}

impl AuthOptions {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        let (auth, config_dir) = match &self.backend_config {
            Some(path) => {
                let (config, _notes) = load_config_file(path)
                    .with_context(|| format!("cannot use --backend-config {}", path.display()))?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (config.auth, Some(dir))
            }
            None => (AuthConfig::default(), None),
        };
        let kind = self.backend.unwrap_or(match auth.backend {
            AuthBackend::Sqlite => BackendKind::Sqlite,
            AuthBackend::Ldap => BackendKind::Ldap,
            AuthBackend::Mysql => BackendKind::Mysql,
        });
        let db = match (&self.db, &config_dir) {
            (Some(db), _) => db.clone(),
            (None, Some(dir)) => {
                let name = auth
                    .sqlite
                    .as_ref()
                    .map_or_else(default_sqlite_path, |sqlite| sqlite.path.clone());
                dir.join(name)
            }
            (None, None) => PathBuf::from(DEFAULT_AUTH_DB),
        };
        Ok(Resolved {
            db,
            kind,
            auth,
            config_dir,
        })
    }

    /// Opens the auth database and the user backend.
    async fn open(&self, missing: Missing) -> anyhow::Result<Authenticator> {
        let resolved = self.resolve()?;
        let db = &resolved.db;
        if !db.exists() {
            if missing == Missing::Refuse {
                bail!(
                    "no auth database at {}: add the first user with `mfv user add`, or pass --db or --backend-config",
                    db.display()
                );
            }
            if let Some(parent) = db.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
        }
        let state = SqliteState::open(db.clone()).await?;
        let hasher = PasswordHasher::new(Argon2Params::default())?;
        let backend: Arc<dyn UserBackend> = match resolved.kind {
            BackendKind::Sqlite => Arc::new(SqliteUserBackend::new(state.clone(), hasher)),
            BackendKind::Ldap => Arc::new(LdapBackend::new(self.ldap_config(&resolved)?)?),
            BackendKind::Mysql => {
                Arc::new(MySqlBackend::new(self.mysql_config(&resolved)?, hasher)?)
            }
        };
        Ok(Authenticator::new(
            backend,
            state,
            Arc::new(SystemClock),
            AuthPolicy::default(),
        ))
    }

    fn ldap_config(&self, resolved: &Resolved) -> anyhow::Result<LdapConfig> {
        let file = resolved.auth.ldap.as_ref();
        let url = self
            .ldap_url
            .clone()
            .or_else(|| file.map(|ldap| ldap.url.clone()))
            .context("the ldap backend needs --ldap-url (or [auth.ldap] in --backend-config)")?;
        let user_base = self
            .ldap_user_base
            .clone()
            .or_else(|| file.map(|ldap| ldap.base_dn.clone()))
            .context(
                "the ldap backend needs --ldap-user-base (or [auth.ldap] in --backend-config)",
            )?;
        let bind_dn = self
            .ldap_bind_dn
            .clone()
            .or_else(|| file.and_then(|ldap| ldap.bind_dn.clone()))
            .unwrap_or_default();
        let password_file = self.ldap_bind_password_file.clone().or_else(|| {
            file.and_then(|ldap| ldap.bind_password_file.as_deref())
                .map(|path| on_config_volume(resolved, path))
        });
        let bind_password = match password_file {
            Some(path) => read_secret_file(&path)?,
            None if bind_dn.is_empty() => String::new(),
            None => bail!(
                "the LDAP service account {bind_dn} needs --ldap-bind-password-file (or bind_password_file in [auth.ldap])"
            ),
        };
        let group_base = match &self.ldap_group_base {
            Some(base) => base.clone(),
            None => parent_dn(&user_base)
                .with_context(|| {
                    format!("the user base {user_base:?} has no parent: pass --ldap-group-base")
                })?
                .to_owned(),
        };
        let mut config = LdapConfig::new(url, bind_dn, bind_password, user_base, group_base);
        if let Some(filter) = self
            .ldap_user_filter
            .clone()
            .or_else(|| file.map(|ldap| ldap.user_filter.clone()))
        {
            config.user_filter = filter;
        }
        config.starttls = self.ldap_starttls;
        config.ca_certificate = self.ldap_ca_cert.clone();
        config.group_roles = if self.ldap_group_role.is_empty() {
            DEFAULT_LDAP_GROUP_ROLES
                .iter()
                .map(|&(group, role)| GroupRole {
                    group: group.to_owned(),
                    role,
                })
                .collect()
        } else {
            self.ldap_group_role.clone()
        };
        Ok(config)
    }

    fn mysql_config(&self, resolved: &Resolved) -> anyhow::Result<MySqlConfig> {
        let file = resolved.auth.mysql.as_ref();
        let database = self
            .mysql_database
            .clone()
            .or_else(|| file.map(|mysql| mysql.database.clone()))
            .context(
                "the mysql backend needs --mysql-database (or [auth.mysql] in --backend-config)",
            )?;
        let user = self
            .mysql_user
            .clone()
            .or_else(|| file.map(|mysql| mysql.user.clone()))
            .context(
                "the mysql backend needs --mysql-user (or [auth.mysql] in --backend-config)",
            )?;
        let password_file = self.mysql_password_file.clone().or_else(|| {
            file.and_then(|mysql| mysql.password_file.as_deref())
                .map(|path| on_config_volume(resolved, path))
        });
        let password = match password_file {
            Some(path) => read_secret_file(&path)?,
            None => String::new(),
        };
        if let Some(socket) = &self.mysql_socket {
            return Ok(MySqlConfig::socket(socket, database, user, password));
        }
        let host = self
            .mysql_host
            .clone()
            .or_else(|| file.map(|mysql| mysql.host.clone()))
            .context("the mysql backend needs --mysql-host or --mysql-socket (or [auth.mysql] in --backend-config)")?;
        let port = self
            .mysql_port
            .or_else(|| file.map(|mysql| mysql.port))
            .unwrap_or(mfv_config::schema::default_mysql_port());
        Ok(MySqlConfig::tcp(host, port, database, user, password))
    }
}

/// A path from the config file: relative ones are relative to its directory.
fn on_config_volume(resolved: &Resolved, path: &str) -> PathBuf {
    match &resolved.config_dir {
        Some(dir) => dir.join(path),
        None => PathBuf::from(path),
    }
}

/// The first line of a secret file.
fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// `ou=people,dc=example,dc=org` → `dc=example,dc=org`: the DN without its first RDN
/// (a `\,` inside a value is not a separator).
fn parent_dn(dn: &str) -> Option<&str> {
    let mut escaped = false;
    for (index, character) in dn.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                let parent = dn[index + 1..].trim_start();
                return (!parent.is_empty()).then_some(parent);
            }
            _ => {}
        }
    }
    None
}

fn print_json(out: &mut dyn Write, value: serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&value).context("output as JSON")?;
    writeln!(out, "{text}")?;
    Ok(())
}

fn new_password(io: &mut Io<'_>, from_stdin: bool) -> anyhow::Result<Password> {
    Ok(Password::new(io.passwords.new_password(from_stdin)?)?)
}

/// `mfv user ...`.
pub async fn user(args: UserArgs, io: &mut Io<'_>) -> anyhow::Result<Status> {
    let options = &args.options;
    match args.command {
        UserCommand::Add {
            user,
            role,
            display_name,
            password_stdin,
        } => {
            mfv_auth::check_display_name(&display_name)?;
            let auth = options.open(Missing::Create).await?;
            // Ask for no password when the name is taken (a read-only backend refuses below).
            if auth.backend().admin().is_some() && auth.find_user(&user).await?.is_some() {
                bail!("user {user} already exists");
            }
            let password = new_password(io, password_stdin)?;
            let record = UserRecord {
                username: user,
                display_name,
                role,
                disabled: false,
            };
            auth.add_user(&Actor::Local, &record, &password).await?;
            writeln!(
                io.err,
                "added user {} with role {role} to the {} backend",
                record.username,
                auth.backend().name()
            )?;
        }
        UserCommand::Del { user } => {
            let auth = options.open(Missing::Refuse).await?;
            auth.delete_user(&Actor::Local, &user).await?;
            writeln!(io.err, "deleted user {user}")?;
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let auth = options.open(Missing::Refuse).await?;
            if auth.backend().admin().is_some() && auth.find_user(&user).await?.is_none() {
                bail!("no user {user}");
            }
            let password = new_password(io, password_stdin)?;
            auth.set_password(&Actor::Local, &user, &password).await?;
            writeln!(
                io.err,
                "password of {user} changed; their sessions have ended"
            )?;
        }
        UserCommand::List { json } => {
            let auth = options.open(Missing::Refuse).await?;
            let users = auth.list_users().await?;
            if json {
                print_json(io.out, serde_json::to_value(&users)?)?;
            } else {
                write!(io.out, "{}", users_table(&users))?;
            }
        }
        UserCommand::Role { user, role } => {
            let auth = options.open(Missing::Refuse).await?;
            auth.set_role(&Actor::Local, &user, role).await?;
            writeln!(io.err, "{user} is now {role}")?;
        }
        UserCommand::Disable { user } => {
            let auth = options.open(Missing::Refuse).await?;
            auth.set_disabled(&Actor::Local, &user, true).await?;
            writeln!(
                io.err,
                "disabled {user}; their sessions have ended and their API tokens stop working"
            )?;
        }
        UserCommand::Enable { user } => {
            let auth = options.open(Missing::Refuse).await?;
            auth.set_disabled(&Actor::Local, &user, false).await?;
            writeln!(io.err, "enabled {user}")?;
        }
    }
    Ok(Status::Success)
}

/// `USER  ROLE  STATE  DISPLAY NAME` table.
fn users_table(users: &[UserRecord]) -> String {
    let width = users
        .iter()
        .map(|user| user.username.as_str().chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut text = format!(
        "{:<width$}  {:<8}  {:<8}  DISPLAY NAME\n",
        "USER", "ROLE", "STATE"
    );
    for user in users {
        let state = if user.disabled { "disabled" } else { "enabled" };
        text.push_str(
            format!(
                "{:<width$}  {:<8}  {state:<8}  {}",
                user.username.as_str(),
                user.role.as_str(),
                user.display_name
            )
            .trim_end(),
        );
        text.push('\n');
    }
    text
}

/// `mfv token ...`.
pub async fn token(args: TokenArgs, io: &mut Io<'_>) -> anyhow::Result<Status> {
    let options = &args.options;
    match args.command {
        TokenCommand::Create {
            user,
            name,
            role,
            days,
            json,
        } => {
            let auth = options.open(Missing::Create).await?;
            let role = match role {
                Some(role) => role,
                None => {
                    auth.find_user(&user)
                        .await?
                        .with_context(|| format!("no user {user}"))?
                        .role
                }
            };
            let lifetime = Duration::from_secs(days.saturating_mul(24 * 60 * 60));
            let token = auth
                .create_api_token(&Actor::Local, &user, &name, role, lifetime)
                .await?;
            if json {
                let value = serde_json::json!({
                    "secret": token.secret.expose(),
                    "token": token.info,
                });
                print_json(io.out, value)?;
            } else {
                writeln!(io.out, "{}", token.secret.expose())?;
            }
            writeln!(
                io.err,
                "API token {} {:?} of {} with role {}, expires {}: the secret is shown only now",
                token.info.id,
                token.info.name,
                token.info.owner,
                token.info.role,
                token.info.expires_at
            )?;
        }
        TokenCommand::List { user, json } => {
            let auth = options.open(Missing::Refuse).await?;
            let tokens = auth.list_api_tokens(user.as_ref()).await?;
            if json {
                print_json(io.out, serde_json::to_value(&tokens)?)?;
            } else {
                write!(io.out, "{}", tokens_table(&tokens))?;
            }
        }
        TokenCommand::Revoke { id } => {
            let auth = options.open(Missing::Refuse).await?;
            auth.revoke_api_token(&Actor::Local, id).await?;
            writeln!(io.err, "revoked API token {id}")?;
        }
    }
    Ok(Status::Success)
}

/// `ID  OWNER  NAME  ROLE  EXPIRES  LAST USED` table; ROLE is the effective role.
fn tokens_table(tokens: &[mfv_auth::ApiTokenInfo]) -> String {
    let mut text = String::from("ID  OWNER  NAME  ROLE  EXPIRES  LAST USED\n");
    for token in tokens {
        let last_used = token
            .last_used_at
            .map_or_else(|| "never".to_owned(), |at| at.to_string());
        text.push_str(&format!(
            "{}  {}  {:?}  {}  {}  {last_used}\n",
            token.id, token.owner, token.name, token.effective_role, token.expires_at
        ));
    }
    text
}

/// `mfv auth test USER`: exit 1 when a step failed.
pub async fn auth(args: AuthArgs, io: &mut Io<'_>) -> anyhow::Result<Status> {
    match args.command {
        AuthCommand::Test { user, json } => {
            let auth = args.options.open(Missing::Create).await?;
            let report = auth.check_backend(&user).await;
            if json {
                let value = serde_json::json!({
                    "backend": report.backend,
                    "user": report.user,
                    "passed": report.passed(),
                    "steps": report.steps,
                });
                print_json(io.out, value)?;
            } else {
                write!(io.out, "{report}")?;
            }
            Ok(if report.passed() {
                Status::Success
            } else {
                Status::Failure
            })
        }
    }
}

/// `mfv audit`: the newest entries, newest first.
pub async fn audit(args: AuditArgs, io: &mut Io<'_>) -> anyhow::Result<Status> {
    let auth = args.options.open(Missing::Refuse).await?;
    let entries = auth.audit_log(args.limit, None).await?;
    if args.json {
        print_json(io.out, serde_json::to_value(&entries)?)?;
    } else {
        for entry in &entries {
            writeln!(io.out, "{entry}")?;
        }
    }
    Ok(Status::Success)
}

#[cfg(test)]
#[path = "auth_cmd_tests.rs"]
mod tests;
