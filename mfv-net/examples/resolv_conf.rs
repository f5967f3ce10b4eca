//! Writes a resolv.conf atomically to the path given as first argument:
//! `cargo run -p mfv-net --example resolv_conf -- /tmp/resolv.conf 192.0.2.53 --search example.org --option ndots:2`
//! then prints what it wrote.

use std::process::ExitCode;

use mfv_net::{DnsConfig, write_resolv_conf};

const USAGE: &str =
    "usage: resolv_conf PATH [NAMESERVER]... [--search DOMAIN]... [--option OPTION]...";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut args = args.into_iter();
    let path = args.next().ok_or(USAGE)?;
    let mut config = DnsConfig::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--search" => config.search.push(args.next().ok_or(USAGE)?),
            "--option" => config.options.push(args.next().ok_or(USAGE)?),
            server => config.nameservers.push(
                server
                    .parse()
                    .map_err(|_| format!("{server:?} is not an IP address\n{USAGE}"))?,
            ),
        }
    }
    write_resolv_conf(&path, &config).map_err(|error| {
        let cause = std::error::Error::source(&error)
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
        format!("{error}{cause}")
    })?;
    let written = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    print!("{written}");
    Ok(())
}
