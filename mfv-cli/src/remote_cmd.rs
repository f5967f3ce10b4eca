//! `mfv --remote https://HOST[:PORT] ...`: the VM, host, user, token and audit commands
//! against a host's REST API through mfv-client, printed as on the host itself. The token
//! comes from `--token` or `MFV_TOKEN` and is never printed; the host's certificate is pinned
//! by `--fingerprint`, or by the known hosts file (recorded at the first connection, which is
//! said on standard error).
//!
//! The other commands read or change this machine (its hardware, network, configuration
//! volume, auth database) and are refused with `--remote`, naming where the API offers them.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use mfv_client::{Client, ConnectOptions, Fingerprint};
use mfv_linux::terminal_text::escape_lines;

use crate::output::Output;
use crate::{Command, auth_cmd, host_cmd, vm_cmd};

/// The options that send a command to another host.
#[derive(Debug, Clone, Args)]
pub struct RemoteOptions {
    /// Manage the host at this URL through its REST API instead of this machine
    /// (`mfv vm`, `mfv host`, `mfv user`, `mfv token` and `mfv audit`).
    #[arg(long, global = true, value_name = "https://HOST[:PORT]")]
    pub remote: Option<String>,
    /// The API token for --remote (an administrator makes one with `mfv token create`);
    /// without --remote it is not used, so an exported MFV_TOKEN leaves local commands alone.
    #[arg(
        long,
        global = true,
        env = "MFV_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// The SHA-256 fingerprint the host's certificate must have (mfv-web prints it on the
    /// host's console); recorded in the known hosts file [default: the one recorded there,
    /// or the first one seen].
    #[arg(long, global = true, value_name = "SHA256", requires = "remote")]
    pub fingerprint: Option<Fingerprint>,
    /// Where hosts' certificate fingerprints are kept
    /// [default: $XDG_CONFIG_HOME/mfv/known_hosts, else ~/.config/mfv/known_hosts].
    #[arg(long, global = true, value_name = "PATH", requires = "remote")]
    pub known_hosts: Option<PathBuf>,
}

/// Runs `command` on the host at `url`.
pub fn run(url: String, options: RemoteOptions, command: Command) -> anyhow::Result<Output> {
    let remote_name = match &command {
        Command::Vm(_)
        | Command::Host(_)
        | Command::User(_)
        | Command::Token(_)
        | Command::Audit(_) => None,
        Command::Net(_) => Some(("net", "/api/v1/network")),
        Command::Config { .. } => Some(("config", "/api/v1/config")),
        Command::Probe { .. } => Some(("probe", "/api/v1/host/inventory")),
        Command::Auth(_) => Some(("auth", "/api/v1/session")),
        Command::Cmdline { .. } => Some(("cmdline", "/api/v1/host")),
    };
    if let Some((name, route)) = remote_name {
        bail!(
            "mfv {name} cannot run with --remote; use the web API ({}{route}, described at \
             /api/v1/openapi.json) or run it on the host",
            url.trim_end_matches('/')
        );
    }
    let mut client = Client::connect(&ConnectOptions {
        url,
        token: options.token,
        fingerprint: options.fingerprint,
        known_hosts: options.known_hosts,
    })?;
    // Said at once, before anything the command shows as it runs (a task's progress).
    if let Some(notice) = client.trust_notice() {
        let line = format!("mfv: {notice}\n");
        let _ = std::io::stderr().write_all(escape_lines(&line).as_bytes());
    }
    match command {
        Command::Vm(args) => vm_cmd::run_remote(args, &mut client),
        Command::Host(args) => host_cmd::run_remote(args, &mut client),
        Command::User(args) => auth_cmd::run_user_remote(args, &mut client),
        Command::Token(args) => auth_cmd::run_token_remote(args, &mut client),
        Command::Audit(args) => auth_cmd::run_audit_remote(args, &mut client),
        _ => unreachable!("refused above"),
    }
}
