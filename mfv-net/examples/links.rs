//! Prints the link table of the current network namespace, then each link's addresses:
//! `cargo run -p mfv-net --example links` (add `-- --json` for JSON).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use mfv_net::{Link, NetError, Netlink};

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|arg| arg == "--json");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(render(json)) {
        Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: cannot write to standard output: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            let mut message = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn render(json: bool) -> Result<String, NetError> {
    let netlink = Netlink::connect()?;
    let links = netlink.links().await?;
    if json {
        return Ok(serde_json::to_string_pretty(&links)
            .unwrap_or_else(|error| format!("cannot render JSON: {error}"))
            + "\n");
    }
    let mut text = format!(
        "{:<5} {:<16} {:<17} {:>5} {:<5} {:<16} {:<7} {:<8} MASTER\n",
        "INDEX", "NAME", "MAC", "MTU", "ADMIN", "STATE", "CARRIER", "KIND"
    );
    for link in &links {
        text.push_str(&link_row(link));
    }
    for link in &links {
        let addresses: Vec<String> = netlink
            .addresses(&link.name)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(text, "{}: {}", link.name, addresses.join(" "));
    }
    Ok(text)
}

fn link_row(link: &Link) -> String {
    format!(
        "{:<5} {:<16} {:<17} {:>5} {:<5} {:<16} {:<7} {:<8} {}\n",
        link.index,
        link.name,
        link.mac.as_deref().unwrap_or("-"),
        link.mtu,
        if link.admin_up { "up" } else { "down" },
        link.state,
        if link.carrier { "yes" } else { "no" },
        link.kind.as_deref().unwrap_or("-"),
        link.master.as_deref().unwrap_or("-"),
    )
}
