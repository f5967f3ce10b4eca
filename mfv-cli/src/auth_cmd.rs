//! `mfv user`, `mfv token`, `mfv auth test` and `mfv audit`: user administration, API tokens,
//! user backend checks and the audit log, run by root on the host (actor `local` in the audit
//! log), and `mfv user`, `mfv token` and `mfv audit` also against a host's API with
//! `--remote`, printing the same (the renderers are shared).
//!
//! Where things are: the auth database (SQLite) always holds sessions, API tokens, TOTP and
//! the audit log, and the users too with the `sqlite` backend. The `[auth]` section of
//! `--backend-config FILE` (whose directory is the config volume) says where it is and which
//! user backend is in use; each flag overrides one of its settings. [`mfv_host::auth`] resolves
//! them and opens the authenticator, as PID 1 and the web server do; this file maps the flags
//! to its overrides, and its errors about a missing setting to the flag that sets it.
//!
//! Passwords never come from the command line: they are read from the terminal without echo
//! (asked twice), or as one line from stdin with `--password-stdin`. Service account
//! passwords (LDAP bind, MySQL) are read from files.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use mfv_auth::ldap::GroupRole;
use mfv_auth::{
    Actor, AuditEntry, AuditFilter, Authenticator, MAX_PASSWORD_BYTES, Password, Role, Timestamp,
    UserRecord, Username,
};
use mfv_config::schema::AuthBackend;
use mfv_host::auth::{
    AuthOverrides, AuthSetting, AuthSettings, AuthSetupError, LdapOverrides, MissingDatabase,
    MysqlOverrides, ResolvedAuth,
};

use mfv_client::{Client, NewToken, UserChange};

use crate::output::{Output, Status};

/// The default lifetime of an API token, in days.
pub const DEFAULT_TOKEN_DAYS: u64 = 90;

/// How many audit entries `mfv audit` shows by default.
pub const DEFAULT_AUDIT_LIMIT: u32 = 50;

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

impl From<BackendKind> for AuthBackend {
    fn from(kind: BackendKind) -> AuthBackend {
        match kind {
            BackendKind::Sqlite => AuthBackend::Sqlite,
            BackendKind::Ldap => AuthBackend::Ldap,
            BackendKind::Mysql => AuthBackend::Mysql,
        }
    }
}

/// Where the auth database and the users are; shared by every auth command.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthOptions {
    /// The auth database [default: `[auth.sqlite] path` of --backend-config on its volume,
    /// else on a host with a configuration the one in use under --run-dir, else
    /// /var/lib/mfv/auth.sqlite].
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Where the host daemon keeps the auth database in use and its `[auth]` settings, used
    /// when neither --backend-config nor --db is given.
    #[arg(long, global = true, value_name = "DIR", default_value = "/run/mfv")]
    pub run_dir: PathBuf,
    /// Read the `[auth]` section of this config file (mfv.toml); flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub backend_config: Option<PathBuf>,
    /// Where users are [default: `[auth] backend` of --backend-config, else sqlite].
    #[arg(long, global = true, value_enum)]
    pub backend: Option<BackendKind>,
    /// LDAP server, `ldap://host[:port]` or `ldaps://host[:port]`.
    #[arg(long, global = true, value_name = "URL", help_heading = "LDAP backend")]
    pub ldap_url: Option<String>,
    /// Upgrade the `ldap://` connection with StartTLS [default: `starttls` of [auth.ldap]].
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
    /// Where groups are searched (subtree) [default: `group_base` of [auth.ldap], else the
    /// parent of the user base].
    #[arg(long, global = true, value_name = "DN", help_heading = "LDAP backend")]
    pub ldap_group_base: Option<String>,
    /// A group (its DN, or its cn) whose members get ROLE; repeatable, replaces
    /// [auth.ldap.group_roles]; the highest role wins
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
    /// Connect over TLS, verifying the server's certificate [default: `tls` of [auth.mysql]].
    #[arg(long, global = true, help_heading = "MySQL backend")]
    pub mysql_tls: bool,
    /// PEM file of the CA that signs the MySQL server's certificate [default: the system's CAs].
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "MySQL backend"
    )]
    pub mysql_ca_cert: Option<PathBuf>,
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
    #[arg(long, default_value_t = DEFAULT_AUDIT_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Only the entries about this user or done by them.
    #[arg(long)]
    user: Option<Username>,
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

impl AuthOptions {
    /// The flags as overrides of the configuration's settings.
    fn overrides(&self) -> AuthOverrides {
        AuthOverrides {
            database: self.db.clone(),
            backend: self.backend.map(AuthBackend::from),
            ldap: LdapOverrides {
                url: self.ldap_url.clone(),
                base_dn: self.ldap_user_base.clone(),
                bind_dn: self.ldap_bind_dn.clone(),
                bind_password_file: self.ldap_bind_password_file.clone(),
                user_filter: self.ldap_user_filter.clone(),
                group_base: self.ldap_group_base.clone(),
                starttls: self.ldap_starttls.then_some(true),
                ca_certificate: self.ldap_ca_cert.clone(),
                group_roles: (!self.ldap_group_role.is_empty())
                    .then(|| self.ldap_group_role.clone()),
            },
            mysql: MysqlOverrides {
                host: self.mysql_host.clone(),
                port: self.mysql_port,
                socket: self.mysql_socket.clone(),
                database: self.mysql_database.clone(),
                user: self.mysql_user.clone(),
                password_file: self.mysql_password_file.clone(),
                tls: self.mysql_tls.then_some(true),
                ca_certificate: self.mysql_ca_cert.clone(),
            },
        }
    }

    /// The settings of `--backend-config` with the flags over them.
    fn resolve(&self) -> anyhow::Result<ResolvedAuth> {
        let settings = match &self.backend_config {
            Some(path) => AuthSettings::load(path)
                .with_context(|| format!("cannot use --backend-config {}", path.display()))?,
            None if self.db.is_none() => mfv_host::auth::live::settings(&self.run_dir)
                .with_context(|| {
                    format!(
                        "cannot use the auth database in use under {}",
                        self.run_dir.display()
                    )
                })?
                .unwrap_or_else(AuthSettings::new),
            None => AuthSettings::new(),
        };
        settings
            .with_overrides(self.overrides())
            .resolve()
            .map_err(in_flag_terms)
    }

    /// Opens the auth database and the user backend.
    async fn open(&self, missing: MissingDatabase) -> anyhow::Result<Authenticator> {
        self.resolve()?.open(missing).await.map_err(in_flag_terms)
    }
}

/// `error`, naming the flag as well where a setting is missing.
fn in_flag_terms(error: AuthSetupError) -> anyhow::Error {
    match error {
        AuthSetupError::Missing { setting } => {
            let backend = setting.backend().as_str();
            let flag = match setting {
                AuthSetting::LdapUrl => "--ldap-url",
                AuthSetting::LdapBaseDn => "--ldap-user-base",
                AuthSetting::MysqlHost => "--mysql-host or --mysql-socket",
                AuthSetting::MysqlDatabase => "--mysql-database",
                AuthSetting::MysqlUser => "--mysql-user",
            };
            anyhow!("the {backend} backend needs {flag} (or [auth.{backend}] in --backend-config)")
        }
        AuthSetupError::NoGroupBase { base_dn } => anyhow!(
            "the user base {base_dn:?} has no parent: pass --ldap-group-base (or group_base in [auth.ldap])"
        ),
        AuthSetupError::NoBindPassword { bind_dn } => anyhow!(
            "the LDAP service account {bind_dn} needs --ldap-bind-password-file (or bind_password_file in [auth.ldap])"
        ),
        AuthSetupError::NoDatabase { path } => anyhow!(
            "no auth database at {}: add the first user with `mfv user add`, or pass --db or --backend-config",
            path.display()
        ),
        other => other.into(),
    }
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
            let auth = options.open(MissingDatabase::Create).await?;
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
                account_id: None,
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
            let auth = options.open(MissingDatabase::Refuse).await?;
            auth.delete_user(&Actor::Local, &user).await?;
            writeln!(io.err, "deleted user {user}")?;
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
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
            let auth = options.open(MissingDatabase::Refuse).await?;
            let users = auth.list_users().await?;
            if json {
                print_json(io.out, serde_json::to_value(&users)?)?;
            } else {
                write!(io.out, "{}", users_table(&users))?;
            }
        }
        UserCommand::Role { user, role } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
            auth.set_role(&Actor::Local, &user, role).await?;
            writeln!(io.err, "{user} is now {role}")?;
        }
        UserCommand::Disable { user } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
            auth.set_disabled(&Actor::Local, &user, true).await?;
            writeln!(
                io.err,
                "disabled {user}; their sessions have ended and their API tokens stop working"
            )?;
        }
        UserCommand::Enable { user } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
            auth.set_disabled(&Actor::Local, &user, false).await?;
            writeln!(io.err, "enabled {user}")?;
        }
    }
    Ok(Status::Success)
}

/// `USER  ROLE  STATE  DISPLAY NAME` table.
fn users_table(users: &[UserRecord]) -> String {
    render_users(users.iter().map(|user| UserRow {
        username: user.username.as_str(),
        role: user.role.as_str(),
        disabled: user.disabled,
        display_name: &user.display_name,
    }))
}

/// A user as `mfv user list` shows it.
struct UserRow<'a> {
    username: &'a str,
    role: &'a str,
    disabled: bool,
    display_name: &'a str,
}

fn render_users<'a>(users: impl Iterator<Item = UserRow<'a>> + Clone) -> String {
    let width = users
        .clone()
        .map(|user| user.username.chars().count())
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
                user.username, user.role, user.display_name
            )
            .trim_end(),
        );
        text.push('\n');
    }
    text
}

/// Runs `mfv user ...` against a host's API through `client`, as the holder of the client's
/// token (the host's audit log names them); passwords come from this terminal or stdin.
pub fn run_user_remote(args: UserArgs, client: &mut Client) -> anyhow::Result<Output> {
    let host = client.host().to_owned();
    let done = |note: String| Output {
        stdout: String::new(),
        stderr: format!("{note}\n"),
        status: Status::Success,
    };
    let change = |client: &mut Client, user: &Username, change: UserChange| {
        client.change_user(user.as_str(), &change)
    };
    Ok(match args.command {
        UserCommand::Add {
            user,
            role,
            display_name,
            password_stdin,
        } => {
            mfv_auth::check_display_name(&display_name)?;
            let password = TerminalPasswords.new_password(password_stdin)?;
            let added = client.add_user(user.as_str(), &password, role.as_str(), &display_name)?;
            done(format!(
                "added user {} with role {} on {host}",
                added.username, added.role
            ))
        }
        UserCommand::Del { user } => {
            client.delete_user(user.as_str())?;
            done(format!("deleted user {user} on {host}"))
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let password = TerminalPasswords.new_password(password_stdin)?;
            change(
                client,
                &user,
                UserChange {
                    password: Some(password),
                    ..UserChange::default()
                },
            )?;
            done(format!(
                "password of {user} changed; their sessions have ended"
            ))
        }
        UserCommand::List { json } => Output::data(&client.users()?, json, |users| {
            render_users(users.iter().map(|user| UserRow {
                username: &user.username,
                role: &user.role,
                disabled: user.disabled,
                display_name: &user.display_name,
            }))
        })?,
        UserCommand::Role { user, role } => {
            let changed = change(
                client,
                &user,
                UserChange {
                    role: Some(role.as_str().to_owned()),
                    ..UserChange::default()
                },
            )?;
            done(format!("{user} is now {}", changed.role))
        }
        UserCommand::Disable { user } => {
            change(
                client,
                &user,
                UserChange {
                    disabled: Some(true),
                    ..UserChange::default()
                },
            )?;
            done(format!(
                "disabled {user}; their sessions have ended and their API tokens stop working"
            ))
        }
        UserCommand::Enable { user } => {
            change(
                client,
                &user,
                UserChange {
                    disabled: Some(false),
                    ..UserChange::default()
                },
            )?;
            done(format!("enabled {user}"))
        }
    })
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
            let auth = options.open(MissingDatabase::Create).await?;
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
            write!(
                io.err,
                "{}",
                created_token_note(
                    token.info.id,
                    &token.info.name,
                    token.info.owner.as_str(),
                    token.info.role.as_str(),
                    token.info.expires_at
                )
            )?;
        }
        TokenCommand::List { user, json } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
            let tokens = auth.list_api_tokens(user.as_ref()).await?;
            if json {
                print_json(io.out, serde_json::to_value(&tokens)?)?;
            } else {
                write!(io.out, "{}", tokens_table(&tokens))?;
            }
        }
        TokenCommand::Revoke { id } => {
            let auth = options.open(MissingDatabase::Refuse).await?;
            auth.revoke_api_token(&Actor::Local, id).await?;
            writeln!(io.err, "revoked API token {id}")?;
        }
    }
    Ok(Status::Success)
}

/// `ID  OWNER  NAME  ROLE  EXPIRES  LAST USED` table; ROLE is the effective role.
fn tokens_table(tokens: &[mfv_auth::ApiTokenInfo]) -> String {
    render_tokens(tokens.iter().map(|token| TokenRow {
        id: token.id,
        owner: token.owner.as_str(),
        name: &token.name,
        effective_role: token.effective_role.as_str(),
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
    }))
}

/// An API token as `mfv token list` shows it.
struct TokenRow<'a> {
    id: i64,
    owner: &'a str,
    name: &'a str,
    effective_role: &'a str,
    expires_at: Timestamp,
    last_used_at: Option<Timestamp>,
}

fn render_tokens<'a>(tokens: impl Iterator<Item = TokenRow<'a>>) -> String {
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

/// What `mfv token create` says on standard error about the token made.
fn created_token_note(
    id: i64,
    name: &str,
    owner: &str,
    role: &str,
    expires_at: Timestamp,
) -> String {
    format!(
        "API token {id} {name:?} of {owner} with role {role}, expires {expires_at}: the secret \
         is shown only now\n"
    )
}

/// Runs `mfv token ...` against a host's API through `client`. Without `--role`, a new
/// token gets its owner's role, as on the host.
pub fn run_token_remote(args: TokenArgs, client: &mut Client) -> anyhow::Result<Output> {
    Ok(match args.command {
        TokenCommand::Create {
            user,
            name,
            role,
            days,
            json,
        } => {
            let role = match role {
                Some(role) => role.as_str().to_owned(),
                None => {
                    client
                        .users()?
                        .into_iter()
                        .find(|known| known.username == user.as_str())
                        .with_context(|| format!("no user {user} on {}", client.host()))?
                        .role
                }
            };
            let created = client.create_token(&NewToken {
                owner: user.as_str().to_owned(),
                name,
                role,
                expires_in_days: days,
            })?;
            let token = &created.token;
            let note = created_token_note(
                token.id,
                &token.name,
                &token.owner,
                &token.role,
                Timestamp(token.expires_at),
            );
            let stdout = if json {
                let value = serde_json::json!({
                    "secret": created.secret.expose(),
                    "token": token,
                });
                Output::data(&value, true, |_| String::new())?.stdout
            } else {
                format!("{}\n", created.secret.expose())
            };
            Output {
                stdout,
                stderr: note,
                status: Status::Success,
            }
        }
        TokenCommand::List { user, json } => {
            let mut tokens = client.tokens()?;
            if let Some(user) = &user {
                tokens.retain(|token| token.owner == user.as_str());
            }
            Output::data(&tokens, json, |tokens| {
                render_tokens(tokens.iter().map(|token| TokenRow {
                    id: token.id,
                    owner: &token.owner,
                    name: &token.name,
                    effective_role: &token.effective_role,
                    expires_at: Timestamp(token.expires_at),
                    last_used_at: token.last_used_at.map(Timestamp),
                }))
            })?
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(id)?;
            Output {
                stdout: String::new(),
                stderr: format!("revoked API token {id}\n"),
                status: Status::Success,
            }
        }
    })
}

/// `mfv auth test USER`: exit 1 when a step failed.
pub async fn auth(args: AuthArgs, io: &mut Io<'_>) -> anyhow::Result<Status> {
    match args.command {
        AuthCommand::Test { user, json } => {
            let auth = args.options.open(MissingDatabase::Create).await?;
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
    let auth = args.options.open(MissingDatabase::Refuse).await?;
    let filter = AuditFilter {
        user: args.user.map(|user| user.as_str().to_owned()),
        ..AuditFilter::default()
    };
    let entries = auth.search_audit_log(args.limit, None, filter).await?;
    if args.json {
        print_json(io.out, serde_json::to_value(&entries)?)?;
    } else {
        write!(io.out, "{}", render_audit(&entries))?;
    }
    Ok(Status::Success)
}

/// An entry a line, as [`AuditEntry`]'s `Display` writes it.
fn render_audit(entries: &[AuditEntry]) -> String {
    entries.iter().map(|entry| format!("{entry}\n")).collect()
}

/// Runs `mfv audit` against a host's API through `client`.
pub fn run_audit_remote(args: AuditArgs, client: &mut Client) -> anyhow::Result<Output> {
    let user = args.user.as_ref().map(Username::as_str);
    let entries = client.audit(args.limit, user)?;
    Output::data(&entries, args.json, |entries| {
        let entries: Vec<AuditEntry> = entries
            .iter()
            .map(|entry| AuditEntry {
                id: entry.id,
                at: Timestamp(entry.at),
                event: entry.event.clone(),
                username: entry.username.clone(),
                actor: entry.actor.clone(),
                source: entry.source.clone(),
                outcome: entry.outcome.clone(),
                detail: entry.detail.clone(),
            })
            .collect();
        render_audit(&entries)
    })
}

#[cfg(test)]
#[path = "auth_cmd_tests.rs"]
mod tests;
