//! The console screen: what PID 1 keeps on the console instead of a root shell.
//!
//! The console (VGA, a serial line, IPMI serial-over-LAN, a hypervisor's console) is reachable
//! by whoever stands at the machine or holds its management network, so it must not bypass
//! the host's authentication. The screen shows the host's status (name, addresses, where the
//! configuration came from) and opens a shell only for an administrator among the local users,
//! checked by mfv-auth and written to the audit log, as is the shell's end. Before the first
//! administrator exists it says so and how to go on. A root shell without a login exists only
//! with `mfv.rescue` on the kernel command line, which PID 1 handles itself.
//!
//! The pieces with a system behind them are traits, so the screen's whole dialogue is tested
//! with a scripted terminal: [`Terminal`] (the console line by line, with or without echo),
//! [`ShellGate`] (the login check and the audit) and [`ShellRunner`] (the shell itself).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use mfv_auth::{AuditOutcome, Authenticator, LoginError, Role, Username};
use mfv_config::discovery::DiscoveryParams;
use mfv_linux::error_chain;
use mfv_linux::terminal_text::escape_lines;
use mfv_net::Netlink;

use crate::auth::{AuthSettings, AuthSetupError, MissingDatabase};
use crate::config::{ConfigKeyError, StoreVolume, load};
use crate::network::change::read_view;

pub mod setup;
pub mod setup_host;

/// The file in PID 1's runtime directory that holds the config discovery report, for the
/// console screen to show.
pub const CONFIG_REPORT_FILE: &str = "config-report";

/// The host's status, as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The host name.
    pub hostname: String,
    /// One line per interface that is not loopback: name, state and addresses.
    pub interfaces: Vec<String>,
    /// The config discovery report PID 1 published, if it did.
    pub config_report: Option<String>,
    /// How VMs run (`KVM`, or `TCG ...`), once PID 1 published its boot report.
    pub virtualization: Option<String>,
    /// The supervised services in a few words (`all 5 running`, or those that are not, with
    /// their state), once PID 1 published them.
    pub services: Option<String>,
    /// How to reach the web server, once its certificate is published.
    pub web: Option<WebAccess>,
}

/// How to reach the web server: what the operator types and checks in a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAccess {
    /// `https://ADDRESS[:PORT]/` for each address of the host a browser can reach.
    pub urls: Vec<String>,
    /// The certificate's SHA-256 fingerprint, as browsers show it.
    pub fingerprint: String,
    /// The setup token while a host without a configuration waits for it.
    pub setup_token: Option<SetupTokenState>,
}

/// The setup token, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupTokenState {
    /// It waits to be typed in a browser.
    Waiting(String),
    /// A browser presented it; config mode is that browser's.
    Used,
}

/// The file in PID 1's runtime directory that holds the web server's HTTPS port.
pub const WEB_PORT_FILE: &str = "web-port";

impl fmt::Display for HostStatus {
    /// The status screen's text, ending with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nMinifed-Virt {} on {}",
            env!("CARGO_PKG_VERSION"),
            self.hostname
        )?;
        if self.interfaces.is_empty() {
            writeln!(f, "  network: no interface besides loopback")?;
        }
        for line in &self.interfaces {
            writeln!(f, "  {line}")?;
        }
        match &self.config_report {
            // A configuration in use needs its headline only; otherwise every candidate and
            // error says what to fix.
            Some(report) if report.starts_with("config: using ") => {
                writeln!(f, "  {}", report.lines().next().unwrap_or_default())?;
            }
            Some(report) => {
                for line in report.lines() {
                    writeln!(f, "  {line}")?;
                }
            }
            None => writeln!(f, "  config: no report from the boot")?,
        }
        if let Some(virtualization) = &self.virtualization {
            writeln!(f, "  virtualization: {virtualization}")?;
        }
        if let Some(services) = &self.services {
            writeln!(f, "  services: {services}")?;
        }
        if let Some(web) = &self.web {
            write!(f, "{web}")?;
        }
        Ok(())
    }
}

impl fmt::Display for WebAccess {
    /// The URLs, the fingerprint in two lines of 16 bytes (it fits 80 columns), and the
    /// token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.urls.as_slice() {
            [] => writeln!(f, "  web: no address yet (waiting for the network)")?,
            urls => writeln!(f, "  web: {}", urls.join("  "))?,
        }
        writeln!(
            f,
            "  certificate SHA-256 fingerprint (compare it with the browser's):"
        )?;
        let bytes: Vec<&str> = self.fingerprint.split(':').collect();
        for half in bytes.chunks(16) {
            writeln!(f, "    {}", half.join(":"))?;
        }
        match &self.setup_token {
            Some(SetupTokenState::Waiting(token)) => writeln!(
                f,
                "  setup token: {token}\n    type it in the browser to set up this host; it \
                 works once"
            ),
            Some(SetupTokenState::Used) => writeln!(
                f,
                "  setup token: used; setup goes on in the browser that presented it"
            ),
            None => Ok(()),
        }
    }
}

/// Reads the host's status: the host name from `proc_dir`, the interfaces through `netlink`
/// (an error takes the place of the list), the report PID 1 published in `run_dir`.
pub async fn read_status(proc_dir: &Path, run_dir: &Path, netlink: &Netlink) -> HostStatus {
    let hostname = std::fs::read_to_string(proc_dir.join("sys/kernel/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|error| format!("(host name unreadable: {error})"));
    let mut reachable = Vec::new();
    let interfaces = match read_view(netlink).await {
        Ok(view) => view
            .interfaces
            .iter()
            .filter(|interface| interface.link.name != "lo")
            .map(|interface| {
                let mut line = format!("{} {}", interface.link.name, interface.link.state);
                for address in &interface.addresses {
                    line.push_str(&format!(" {address}"));
                    reachable.push(address.address());
                }
                line
            })
            .collect(),
        Err(error) => vec![format!("network: cannot read: {}", error_chain(&error))],
    };
    let virtualization = crate::daemon::read_host_state(run_dir)
        .ok()
        .flatten()
        .map(|state| match state.virtualization {
            mfv_api::Virtualization::Kvm => "KVM".to_owned(),
            mfv_api::Virtualization::Pending => "being prepared".to_owned(),
            _ => "TCG (software emulation, many times slower)".to_owned(),
        });
    let services = services_summary(&crate::services::read_status(run_dir).unwrap_or_default());
    HostStatus {
        hostname,
        interfaces,
        config_report: std::fs::read_to_string(run_dir.join(CONFIG_REPORT_FILE)).ok(),
        virtualization,
        services,
        web: read_web_access(run_dir, &reachable),
    }
}

/// How to reach the web server at `addresses`, from what the host daemon and PID 1
/// published in `run_dir`; `None` until the certificate is published.
pub fn read_web_access(run_dir: &Path, addresses: &[IpAddr]) -> Option<WebAccess> {
    let identity =
        crate::web_identity::WebIdentity::read(&run_dir.join(crate::web_identity::RUN_SUBDIR))
            .ok()?;
    let port = std::fs::read_to_string(run_dir.join(WEB_PORT_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok())
        .unwrap_or(443);
    let urls = addresses
        .iter()
        .filter(|address| match address {
            // Link-local IPv6 needs a zone a URL cannot carry portably.
            IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        })
        .map(|address| web_url(*address, port))
        .collect();
    let setup_token = match crate::setup_token::current(run_dir) {
        Ok(Some(token)) => Some(SetupTokenState::Waiting(token.as_str().to_owned())),
        _ if run_dir.join(crate::setup_token::CLAIMED_FILE).exists() => Some(SetupTokenState::Used),
        _ => None,
    };
    Some(WebAccess {
        urls,
        fingerprint: identity.fingerprint().to_string(),
        setup_token,
    })
}

/// `https://ADDRESS[:PORT]/`, the port left out when it is 443.
pub fn web_url(address: IpAddr, port: u16) -> String {
    let host = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    match port {
        443 => format!("https://{host}/"),
        port => format!("https://{host}:{port}/"),
    }
}

/// The services in a few words: `all 5 running`, or how many run and each that does not,
/// with its state and restarts; `None` when PID 1 published none.
fn services_summary(services: &[mfv_api::ServiceStatus]) -> Option<String> {
    if services.is_empty() {
        return None;
    }
    let running = services
        .iter()
        .filter(|service| service.state == mfv_api::ServiceState::Running)
        .count();
    if running == services.len() {
        return Some(format!("all {running} running"));
    }
    let others: Vec<String> = services
        .iter()
        .filter(|service| service.state != mfv_api::ServiceState::Running)
        .map(|service| {
            let state = service.state;
            match service.restarts {
                0 => format!("{} {state}", service.name),
                restarts => format!("{} {state} ({restarts} restarts)", service.name),
            }
        })
        .collect();
    Some(format!(
        "{running} of {} running; {}",
        services.len(),
        others.join(", ")
    ))
}

/// How often the screen looks at the status again while it waits for Enter: an address a
/// DHCP server hands out after the screen was drawn shows within this time.
pub const STATUS_REFRESH: Duration = Duration::from_secs(5);

/// What came while the screen waited for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// A line (its text is not used).
    Line,
    /// Nothing, within the time.
    Nothing,
    /// The end of input.
    End,
}

/// The console, a line at a time.
pub trait Terminal {
    /// Writes `text` as it is (the screen's own text; what it quotes is escaped already).
    fn write(&mut self, text: &str) -> io::Result<()>;
    /// Waits at most `timeout` for a line and consumes it.
    fn wait_for_line(&mut self, timeout: Duration) -> io::Result<Waited>;
    /// Reads a line without its newline, echoed or not (a password); `None` at end of input.
    fn read_line(&mut self, echo: bool) -> io::Result<Option<String>>;
}

/// Who was let in, for the audit of the shell's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellGrant {
    /// The administrator's user name.
    pub username: String,
}

/// Why the console did not open a shell; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleLoginError {
    /// No administrator exists among the local users yet.
    #[error(
        "no administrator account exists yet: add one to users.sqlite on the config volume \
         (mfv user add NAME --role admin --db users.sqlite; see the README), or boot with \
         mfv.rescue for a shell"
    )]
    NoAdministrator,
    /// Wrong name or password, or a disabled account: one answer for all.
    #[error("login incorrect")]
    Incorrect,
    /// The password was right; a TOTP code is needed.
    #[error("a TOTP code (or a recovery code) is required")]
    TotpRequired,
    /// The account is locked after too many failures.
    #[error("{0}")]
    LockedOut(String),
    /// The user is not an administrator.
    #[error("{0} is not an administrator: a shell on the console needs the admin role")]
    NotAdministrator(String),
    /// The users could not be checked (no config volume, a database error): no shell.
    #[error("cannot check the login: {0}")]
    Unavailable(String),
}

/// Checks a console login against the local users and keeps the audit log.
pub trait ShellGate {
    /// Lets `username` in when the password (and the TOTP code, if the user has TOTP) is
    /// right and the user is an administrator; every attempt is audited.
    fn open(
        &mut self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> impl Future<Output = Result<ShellGrant, ConsoleLoginError>>;
    /// Audits the end of the shell `grant` opened, with how it ended.
    fn closed(
        &mut self,
        grant: &ShellGrant,
        how: &str,
    ) -> impl Future<Output = Result<(), ConsoleLoginError>>;
}

/// The address console logins are counted and audited under: no network address, so the
/// console has a lockout of its own that no network client shares.
pub const CONSOLE_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The console's gate: the local users in the auth database on the config volume, whatever
/// `[auth] backend` says, so an unreachable directory server never locks the console out. The
/// volume is mounted (and made writable, for the audit log and the lockout counters) only for
/// the moment of a check.
#[derive(Debug, Clone)]
pub struct LocalAdminGate {
    store: StoreLocation,
    /// PID 1's runtime directory, where the host daemon keeps the auth database in use
    /// ([`crate::auth::live`]); when it has one, the gate uses it and leaves the volume be.
    run_dir: Option<std::path::PathBuf>,
}

/// Where the gate finds the configuration and the auth database.
#[derive(Debug, Clone)]
enum StoreLocation {
    /// The config volume discovery finds.
    Discovered(DiscoveryParams),
    /// A store directory (a host installed on a disk).
    Directory(std::path::PathBuf),
}

impl LocalAdminGate {
    /// Finds the config volume with `discovery` at each check.
    pub fn discovered(discovery: DiscoveryParams) -> LocalAdminGate {
        LocalAdminGate {
            store: StoreLocation::Discovered(discovery),
            run_dir: None,
        }
    }

    /// Uses the store in `dir`.
    pub fn directory(dir: impl Into<std::path::PathBuf>) -> LocalAdminGate {
        LocalAdminGate {
            store: StoreLocation::Directory(dir.into()),
            run_dir: None,
        }
    }

    /// The same gate, using the auth database in use in `run_dir` when there is one.
    pub fn with_working_copy(mut self, run_dir: impl Into<std::path::PathBuf>) -> LocalAdminGate {
        self.run_dir = Some(run_dir.into());
        self
    }

    /// Runs `check` on the local users' authenticator, with the volume writable around it.
    async fn with_local_users<T>(
        &self,
        check: impl AsyncFnOnce(&Authenticator) -> Result<T, ConsoleLoginError>,
    ) -> Result<T, ConsoleLoginError> {
        if let Some(run_dir) = &self.run_dir {
            let live = crate::auth::live::settings(run_dir).map_err(|error| unavailable(&error))?;
            if let Some(settings) = live {
                let authenticator = local_admins(settings).await?;
                return check(&authenticator).await;
            }
        }
        let volume = match &self.store {
            StoreLocation::Discovered(discovery) => {
                StoreVolume::discovered(discovery).map_err(|error| match error {
                    ConfigKeyError::NoVolume { .. } => ConsoleLoginError::NoAdministrator,
                    error => unavailable(&error),
                })?
            }
            StoreLocation::Directory(dir) => StoreVolume::directory(dir),
        };
        let access = volume.access();
        let result = match access.make_writable() {
            Ok(()) => {
                // The authenticator (and its database file) is closed before the remount.
                let result = match open_local_users(&volume).await {
                    Ok(authenticator) => check(&authenticator).await,
                    Err(error) => Err(error),
                };
                access
                    .make_read_only()
                    .map_err(|error| unavailable(&error))?;
                result
            }
            Err(error) => Err(unavailable(&error)),
        };
        volume.close().map_err(|error| unavailable(&error))?;
        result
    }
}

/// The authenticator over the local users of the configuration on `volume`; no
/// administrator when there is no configuration, no database or no enabled admin in it.
async fn open_local_users(volume: &StoreVolume) -> Result<Authenticator, ConsoleLoginError> {
    let config = match load(volume.store(), volume.dir()) {
        Ok(stored) => stored.config,
        Err(ConfigKeyError::NothingSaved { .. }) => return Err(ConsoleLoginError::NoAdministrator),
        Err(error) => return Err(unavailable(&error)),
    };
    local_admins(AuthSettings::from_config(config.auth, volume.dir())).await
}

/// The authenticator over the local users of `settings`; no administrator when there is no
/// database or no enabled admin in it.
async fn local_admins(settings: AuthSettings) -> Result<Authenticator, ConsoleLoginError> {
    let authenticator = settings
        .with_local_users()
        .open(MissingDatabase::Refuse)
        .await
        .map_err(|error| match error {
            AuthSetupError::NoDatabase { .. } => ConsoleLoginError::NoAdministrator,
            error => unavailable(&error),
        })?;
    let users = authenticator
        .list_users()
        .await
        .map_err(|error| unavailable(&error))?;
    if !users
        .iter()
        .any(|user| user.role == Role::Admin && !user.disabled)
    {
        return Err(ConsoleLoginError::NoAdministrator);
    }
    Ok(authenticator)
}

fn unavailable(error: &dyn std::error::Error) -> ConsoleLoginError {
    ConsoleLoginError::Unavailable(error_chain(error))
}

impl ShellGate for LocalAdminGate {
    async fn open(
        &mut self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<ShellGrant, ConsoleLoginError> {
        self.with_local_users(async |authenticator| {
            let session = authenticator
                .login(username, password, totp, CONSOLE_SOURCE)
                .await
                .map_err(|error| match error {
                    LoginError::InvalidCredentials
                    | LoginError::Password(_)
                    | LoginError::TotpInvalid => ConsoleLoginError::Incorrect,
                    LoginError::TotpRequired => ConsoleLoginError::TotpRequired,
                    error @ (LoginError::LockedOut { .. } | LoginError::AttemptsInProgress) => {
                        ConsoleLoginError::LockedOut(error.to_string())
                    }
                    error => unavailable(&error),
                })?;
            // The console needs no session: the shell is the session, audited on its own.
            authenticator
                .logout(session.token.expose(), CONSOLE_SOURCE)
                .await
                .map_err(|error| unavailable(&error))?;
            let user = session.info.username;
            let admin = session.info.role == Role::Admin;
            let (outcome, detail) = if admin {
                (AuditOutcome::Ok, "opened")
            } else {
                (AuditOutcome::Refused, "not an administrator")
            };
            authenticator
                .audit_console_shell(&user, outcome, detail.to_owned())
                .await
                .map_err(|error| unavailable(&error))?;
            if !admin {
                return Err(ConsoleLoginError::NotAdministrator(user.to_string()));
            }
            Ok(ShellGrant {
                username: user.to_string(),
            })
        })
        .await
    }

    async fn closed(&mut self, grant: &ShellGrant, how: &str) -> Result<(), ConsoleLoginError> {
        let user = Username::new(&grant.username)
            .map_err(|error| ConsoleLoginError::Unavailable(error.to_string()))?;
        self.with_local_users(async |authenticator| {
            authenticator
                .audit_console_shell(&user, AuditOutcome::Ok, format!("closed ({how})"))
                .await
                .map_err(|error| unavailable(&error))
        })
        .await
    }
}

/// Runs the shell on the console until it ends; returns how it ended (`exit status 0`).
pub trait ShellRunner {
    /// Runs the shell for `grant`.
    fn run(&mut self, grant: &ShellGrant) -> io::Result<String>;
}

/// The screen's loop: the status, then a login on Enter; returns at the end of input (PID 1
/// starts the screen again). `status` is read afresh before each showing, and every
/// [`STATUS_REFRESH`] while the screen waits: it is drawn again when it changed.
pub async fn serve_console(
    terminal: &mut impl Terminal,
    mut status: impl AsyncFnMut() -> HostStatus,
    gate: &mut impl ShellGate,
    shell: &mut impl ShellRunner,
) -> io::Result<()> {
    loop {
        let mut shown = status().await;
        draw(terminal, &shown)?;
        loop {
            match terminal.wait_for_line(STATUS_REFRESH)? {
                Waited::Line => break,
                Waited::End => return Ok(()),
                Waited::Nothing => {
                    let now = status().await;
                    if now != shown {
                        draw(terminal, &now)?;
                        shown = now;
                    }
                }
            }
        }
        let Some(grant) = login(terminal, gate).await? else {
            continue;
        };
        terminal.write(&format!(
            "shell for {}: exit it to return to this screen\n",
            grant.username
        ))?;
        let how = match shell.run(&grant) {
            Ok(how) => how,
            Err(error) => format!("could not start: {error}"),
        };
        terminal.write(&format!("shell ended ({how})\n"))?;
        if let Err(error) = gate.closed(&grant, &how).await {
            terminal.write(&format!("audit: {error}\n"))?;
        }
    }
}

/// The status and the invitation to log in.
fn draw(terminal: &mut impl Terminal, status: &HostStatus) -> io::Result<()> {
    terminal.write(&escape_lines(&status.to_string()))?;
    terminal.write("\nPress Enter to log in for a shell (administrators only).\n")
}

/// One login dialogue: name, password, and a TOTP code when the gate asks for one.
async fn login(
    terminal: &mut impl Terminal,
    gate: &mut impl ShellGate,
) -> io::Result<Option<ShellGrant>> {
    terminal.write("login: ")?;
    let Some(username) = terminal.read_line(true)? else {
        return Ok(None);
    };
    terminal.write("password: ")?;
    let Some(password) = terminal.read_line(false)? else {
        return Ok(None);
    };
    terminal.write("\n")?;
    let mut outcome = gate.open(username.trim(), &password, None).await;
    if matches!(outcome, Err(ConsoleLoginError::TotpRequired)) {
        terminal.write("TOTP code: ")?;
        let Some(code) = terminal.read_line(true)? else {
            return Ok(None);
        };
        outcome = gate
            .open(username.trim(), &password, Some(code.trim()))
            .await;
    }
    match outcome {
        Ok(grant) => Ok(Some(grant)),
        Err(error) => {
            terminal.write(&format!("{}\n", escape_lines(&error.to_string())))?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// In a script: the wait for Enter times out.
    pub(super) const NOTHING: &str = "<nothing>";

    /// A terminal that answers from a script and keeps what was written, marking unechoed
    /// input as `<hidden>`.
    #[derive(Default)]
    pub(super) struct ScriptedTerminal {
        pub(super) input: VecDeque<&'static str>,
        pub(super) output: String,
    }

    impl Terminal for ScriptedTerminal {
        fn write(&mut self, text: &str) -> io::Result<()> {
            self.output.push_str(text);
            Ok(())
        }

        fn wait_for_line(&mut self, _: Duration) -> io::Result<Waited> {
            Ok(match self.input.pop_front() {
                Some(NOTHING) => Waited::Nothing,
                Some(line) => {
                    self.output.push_str(line);
                    self.output.push('\n');
                    Waited::Line
                }
                None => Waited::End,
            })
        }

        fn read_line(&mut self, echo: bool) -> io::Result<Option<String>> {
            let line = self.input.pop_front().map(str::to_owned);
            if let Some(line) = &line {
                self.output
                    .push_str(if echo { line.as_str() } else { "<hidden>" });
                self.output.push('\n');
            }
            Ok(line)
        }
    }

    /// alice/right is an admin, bob/right is not, carol/right needs TOTP 123456.
    #[derive(Default)]
    struct RecordingGate {
        audit: Vec<String>,
    }

    impl ShellGate for RecordingGate {
        async fn open(
            &mut self,
            username: &str,
            password: &str,
            totp: Option<&str>,
        ) -> Result<ShellGrant, ConsoleLoginError> {
            let result = match (username, password, totp) {
                ("alice", "right", _) | ("carol", "right", Some("123456")) => Ok(ShellGrant {
                    username: username.to_owned(),
                }),
                ("carol", "right", None) => Err(ConsoleLoginError::TotpRequired),
                ("bob", "right", _) => Err(ConsoleLoginError::NotAdministrator("bob".into())),
                _ => Err(ConsoleLoginError::Incorrect),
            };
            self.audit
                .push(format!("open {username}: {}", result.is_ok()));
            result
        }

        async fn closed(&mut self, grant: &ShellGrant, how: &str) -> Result<(), ConsoleLoginError> {
            self.audit.push(format!("closed {}: {how}", grant.username));
            Ok(())
        }
    }

    #[derive(Default)]
    struct RecordingShell {
        runs: Vec<String>,
    }

    impl ShellRunner for RecordingShell {
        fn run(&mut self, grant: &ShellGrant) -> io::Result<String> {
            self.runs.push(grant.username.clone());
            Ok("exit status 0".into())
        }
    }

    fn status() -> HostStatus {
        HostStatus {
            hostname: "vmhost1".into(),
            interfaces: vec!["eth0 up 10.0.2.15/24".into()],
            config_report: Some(
                "config: using mfv.toml from /dev/vdb1 (ext4, LABEL=mfv-config)\n  \
                 LABEL=mfv-config /dev/vdb1 (ext4): taken"
                    .into(),
            ),
            virtualization: Some("KVM".into()),
            services: Some("4 of 5 running; mfv-web crash looping (5 restarts)".into()),
            web: None,
        }
    }

    /// Serves the screen on a terminal scripted with `input`, showing [`status`].
    fn serve(input: &[&'static str]) -> (ScriptedTerminal, RecordingGate, RecordingShell) {
        let mut terminal = ScriptedTerminal {
            input: input.iter().copied().collect(),
            ..ScriptedTerminal::default()
        };
        let (gate, shell) = serve_on(&mut terminal, async || status());
        (terminal, gate, shell)
    }

    /// Serves the screen on `terminal` with `status` until its script ends.
    fn serve_on(
        terminal: &mut ScriptedTerminal,
        status: impl AsyncFnMut() -> HostStatus,
    ) -> (RecordingGate, RecordingShell) {
        let mut gate = RecordingGate::default();
        let mut shell = RecordingShell::default();
        block_on(serve_console(terminal, status, &mut gate, &mut shell)).unwrap();
        (gate, shell)
    }

    #[test]
    fn the_screen_shows_the_status_and_waits_for_enter() {
        let (terminal, gate, shell) = serve(&[]);
        assert_eq!(
            terminal.output,
            format!(
                "\nMinifed-Virt {} on vmhost1\n  eth0 up 10.0.2.15/24\n  \
                 config: using mfv.toml from /dev/vdb1 (ext4, LABEL=mfv-config)\n  \
                 virtualization: KVM\n  \
                 services: 4 of 5 running; mfv-web crash looping (5 restarts)\n\n\
                 Press Enter to log in for a shell (administrators only).\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(gate.audit.is_empty() && shell.runs.is_empty());
    }

    #[test]
    fn an_administrator_gets_a_shell_and_its_end_is_audited() {
        let (terminal, gate, shell) = serve(&["", "alice", "right"]);
        assert!(
            terminal.output.contains(
                "login: alice\npassword: <hidden>\n\nshell for alice: exit it to return to \
                 this screen\nshell ended (exit status 0)\n"
            ),
            "{}",
            terminal.output
        );
        assert_eq!(shell.runs, ["alice"]);
        assert_eq!(
            gate.audit,
            ["open alice: true", "closed alice: exit status 0"]
        );
        assert_eq!(terminal.output.matches("Press Enter").count(), 2);
    }

    #[test]
    fn a_wrong_password_or_a_user_without_the_admin_role_gets_no_shell() {
        let (terminal, gate, shell) = serve(&["", "alice", "wrong", "", "bob", "right"]);
        assert!(terminal.output.contains("login incorrect\n"));
        assert!(terminal.output.contains(
            "bob is not an administrator: a shell on the console needs the admin role\n"
        ));
        assert!(shell.runs.is_empty());
        assert_eq!(gate.audit, ["open alice: false", "open bob: false"]);
    }

    #[test]
    fn the_screen_is_drawn_again_only_when_the_status_changed() {
        let mut terminal = ScriptedTerminal {
            input: [NOTHING, NOTHING, NOTHING].into_iter().collect(),
            ..ScriptedTerminal::default()
        };
        let mut reads = 0;
        let changing = async || {
            reads += 1;
            let mut status = status();
            if reads >= 3 {
                status.interfaces = vec!["eth0 up 10.0.2.15/24 10.0.2.16/24".into()];
            }
            status
        };
        serve_on(&mut terminal, changing);
        assert_eq!(terminal.output.matches("Press Enter").count(), 2);
        assert_eq!(terminal.output.matches("10.0.2.16/24").count(), 1);
    }

    #[test]
    fn a_totp_user_is_asked_for_the_code() {
        let (terminal, _, shell) = serve(&["", "carol", "right", "123456"]);
        assert!(
            terminal.output.contains("TOTP code: 123456\n"),
            "{}",
            terminal.output
        );
        assert_eq!(shell.runs, ["carol"]);
    }

    #[test]
    fn the_services_read_as_a_count_and_those_not_running() {
        use mfv_api::{ServiceState, ServiceStatus};
        assert_eq!(services_summary(&[]), None);
        let mut services = vec![
            ServiceStatus::new("libvirtd", ServiceState::Running),
            ServiceStatus::new("mfv-web", ServiceState::Running),
        ];
        assert_eq!(
            services_summary(&services).as_deref(),
            Some("all 2 running")
        );
        services[1].state = ServiceState::CrashLooping;
        services[1].restarts = 6;
        services.push(ServiceStatus::new("vm-keeper", ServiceState::Waiting));
        assert_eq!(
            services_summary(&services).as_deref(),
            Some("1 of 3 running; mfv-web crash looping (6 restarts), vm-keeper waiting")
        );
    }

    #[test]
    fn the_web_address_fingerprint_and_token_are_shown_to_fit_80_columns() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let addresses: Vec<IpAddr> = ["10.0.2.15", "fe80::1", "2001:db8::7", "169.254.1.1"]
            .iter()
            .map(|address| address.parse().unwrap())
            .collect();
        assert_eq!(read_web_access(run, &addresses), None);
        let identity = crate::web_identity::WebIdentity::generate("h").unwrap();
        identity
            .write(&run.join(crate::web_identity::RUN_SUBDIR), None)
            .unwrap();
        std::fs::write(run.join(WEB_PORT_FILE), "8443\n").unwrap();
        let token = crate::setup_token::issue(run).unwrap().unwrap();
        let web = read_web_access(run, &addresses).unwrap();
        assert_eq!(
            web.urls,
            ["https://10.0.2.15:8443/", "https://[2001:db8::7]:8443/"]
        );
        assert_eq!(
            web.setup_token,
            Some(SetupTokenState::Waiting(token.as_str().to_owned()))
        );
        let text = web.to_string();
        let fingerprint = identity.fingerprint().to_string();
        assert!(
            text.contains(&format!(
                "    {}\n    {}\n",
                &fingerprint[..47],
                &fingerprint[48..]
            )),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|line| line.len() <= 80 || line.contains(token.as_str())),
            "{text}"
        );
        assert!(
            text.contains(&format!("  setup token: {}", token.as_str())),
            "{text}"
        );

        crate::setup_token::claim(run, token.as_str()).unwrap();
        std::fs::remove_file(run.join(WEB_PORT_FILE)).unwrap();
        let web = read_web_access(run, &addresses[..1]).unwrap();
        assert_eq!(web.urls, ["https://10.0.2.15/"]);
        assert_eq!(web.setup_token, Some(SetupTokenState::Used));
        assert!(web.to_string().contains("setup token: used"));
        let offline = WebAccess {
            urls: Vec::new(),
            ..web
        };
        assert!(offline.to_string().starts_with("  web: no address yet"));
    }

    #[test]
    fn what_the_status_quotes_is_escaped() {
        let mut terminal = ScriptedTerminal::default();
        let hostile = async || HostStatus {
            hostname: "h".into(),
            interfaces: Vec::new(),
            config_report: Some(
                "config: mfv.toml on /dev/vdb1 (ext4, LABEL=\x1b[2Jevil) is invalid (1 error)\n  \
                 LABEL=\x1b[2Jevil /dev/vdb1 (ext4): invalid (1 error)"
                    .into(),
            ),
            virtualization: None,
            services: None,
            web: None,
        };
        serve_on(&mut terminal, hostile);
        assert_eq!(terminal.output.matches("LABEL=\\u001b[2Jevil").count(), 2);
        assert!(
            terminal
                .output
                .contains("network: no interface besides loopback")
        );
    }

    /// A store in a temp directory holding a configuration and, with `users`, the auth
    /// database with those users (name, role), each with the password [`PASSWORD`].
    async fn store_with_users(users: &[(&str, Role)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreVolume::directory(dir.path());
        mfv_config::store::ConfigStore::save(
            store.store(),
            "version = 1\n[host]\nhostname = \"vmhost1\"\n",
        )
        .unwrap();
        if users.is_empty() {
            return dir;
        }
        let config = load(store.store(), dir.path()).unwrap().config;
        let authenticator = AuthSettings::from_config(config.auth, dir.path())
            .open(MissingDatabase::Create)
            .await
            .unwrap();
        for (name, role) in users {
            let record = mfv_auth::UserRecord {
                username: Username::new(*name).unwrap(),
                display_name: String::new(),
                role: *role,
                disabled: false,
                account_id: None,
            };
            let password = mfv_auth::Password::new(PASSWORD).unwrap();
            authenticator
                .add_user(&mfv_auth::Actor::Local, &record, &password)
                .await
                .unwrap();
        }
        dir
    }

    const PASSWORD: &str = "correct horse battery";

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn with_a_working_copy_the_gate_uses_it_and_leaves_the_volume_be() {
        block_on(async {
            let volume = store_with_users(&[("alice", Role::Admin)]).await;
            let run = tempfile::tempdir().unwrap();
            let config = load(StoreVolume::directory(volume.path()).store(), volume.path())
                .unwrap()
                .config;
            crate::auth::live::publish(volume.path(), &config.auth, run.path()).unwrap();
            // The gate's store has nobody: only the working copy can let alice in.
            let empty = store_with_users(&[]).await;
            let mut gate = LocalAdminGate::directory(empty.path()).with_working_copy(run.path());
            let grant = gate.open("alice", PASSWORD, None).await.unwrap();
            assert_eq!(grant.username, "alice");
            // Without a working copy in the run directory, the store is used.
            let elsewhere = tempfile::tempdir().unwrap();
            let mut gate =
                LocalAdminGate::directory(empty.path()).with_working_copy(elsewhere.path());
            assert!(matches!(
                gate.open("alice", PASSWORD, None).await,
                Err(ConsoleLoginError::NoAdministrator)
            ));
        });
    }

    #[test]
    fn only_a_local_administrator_gets_a_shell_and_the_audit_log_says_so() {
        block_on(async {
            let dir = store_with_users(&[("alice", Role::Admin), ("bob", Role::Viewer)]).await;
            let mut gate = LocalAdminGate::directory(dir.path());
            assert!(matches!(
                gate.open("alice", "wrong password", None).await,
                Err(ConsoleLoginError::Incorrect)
            ));
            assert!(matches!(
                gate.open("bob", PASSWORD, None).await,
                Err(ConsoleLoginError::NotAdministrator(name)) if name == "bob"
            ));
            let grant = gate.open("alice", PASSWORD, None).await.unwrap();
            assert_eq!(grant.username, "alice");
            gate.closed(&grant, "exit status 0").await.unwrap();

            let config = load(StoreVolume::directory(dir.path()).store(), dir.path())
                .unwrap()
                .config;
            let authenticator = AuthSettings::from_config(config.auth, dir.path())
                .open(MissingDatabase::Refuse)
                .await
                .unwrap();
            let mut shells: Vec<String> = authenticator
                .audit_log(100, None)
                .await
                .unwrap()
                .into_iter()
                .filter(|entry| entry.event == "console_shell")
                .map(|entry| {
                    format!(
                        "{} {} {}",
                        entry.username.unwrap_or_default(),
                        entry.outcome,
                        entry.detail
                    )
                })
                .collect();
            shells.reverse();
            assert_eq!(
                shells,
                [
                    "bob refused not an administrator",
                    "alice ok opened",
                    "alice ok closed (exit status 0)"
                ]
            );
            let sessions = authenticator.list_sessions(None).await.unwrap();
            assert!(sessions.is_empty(), "{sessions:?}");
        });
    }

    #[test]
    fn without_an_administrator_the_console_says_so() {
        block_on(async {
            for users in [&[][..], &[("bob", Role::Operator)][..]] {
                let dir = store_with_users(users).await;
                let mut gate = LocalAdminGate::directory(dir.path());
                assert!(matches!(
                    gate.open("bob", PASSWORD, None).await,
                    Err(ConsoleLoginError::NoAdministrator)
                ));
            }
            let empty = tempfile::tempdir().unwrap();
            let mut gate = LocalAdminGate::directory(empty.path());
            assert!(matches!(
                gate.open("alice", PASSWORD, None).await,
                Err(ConsoleLoginError::NoAdministrator)
            ));
        });
    }
}
