//! Asks an NTP server for the time and prints how far this machine's clock is off, without
//! changing it: one round of the SNTP client against a `RecordingClock`.
//!
//! ```text
//! cargo run -p mfv-net --example sntp_query -- SERVER [--timeout SECONDS]
//! ```
//!
//! SERVER is an address (`192.0.2.1`, `2001:db8::1`), a name, or either with a port
//! (`192.0.2.1:123`, `[2001:db8::1]:123`, `ntp.example.org:123`); every address a name
//! resolves to is asked and the answer with the lowest delay is printed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mfv_net::sntp::{NTP_PORT, RecordingClock, SntpClient, SntpConfig, SntpEvent, UdpTransport};
use tokio::sync::{mpsc, oneshot};

const USAGE: &str = "usage: sntp_query SERVER[:PORT] [--timeout SECONDS]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's addresses: `text` as a socket address, an IP address on port 123, or a
/// name (with or without a port) resolved by the system resolver.
async fn resolve(text: &str) -> Result<Vec<SocketAddr>> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(vec![address]);
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, NTP_PORT)]);
    }
    let with_port = if text.contains(':') {
        text.to_owned()
    } else {
        format!("{text}:{NTP_PORT}")
    };
    let addresses: Vec<_> = tokio::net::lookup_host(&with_port)
        .await
        .with_context(|| format!("cannot resolve {text}"))?
        .collect();
    if addresses.is_empty() {
        bail!("{text} has no address");
    }
    Ok(addresses)
}

async fn run(args: Vec<String>) -> Result<()> {
    let mut args = args.into_iter();
    let server = args.next().context(USAGE)?;
    let mut timeout = Duration::from_secs(2);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout" => {
                let seconds = args.next().context(USAGE)?;
                timeout = seconds
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| *seconds > 0.0 && *seconds < 3600.0)
                    .map(Duration::from_secs_f64)
                    .with_context(|| format!("{seconds:?} is not a number of seconds\n{USAGE}"))?;
            }
            _ => bail!(USAGE),
        }
    }
    let mut config = SntpConfig::new(resolve(&server).await?);
    config.timing.response_timeout = timeout;
    let transport = UdpTransport::bind()?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    // The recording clock follows this machine's clock and records the correction the
    // client asks for, instead of making it.
    let client = SntpClient::new(config, transport, RecordingClock::new()).with_events(events_tx);
    let task = tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    let mut failed = false;
    while let Some(event) = events.recv().await {
        match event {
            SntpEvent::ServerFailed { server, reason } => eprintln!("{server}: {reason}"),
            SntpEvent::Synced { .. } => break,
            SntpEvent::RoundFailed { .. } => {
                failed = true;
                break;
            }
            _ => {}
        }
    }
    let _ = stop.send(());
    let exit = task.await.context("the client task failed")??;
    match exit.last_sync {
        Some(sample) if !failed => {
            println!(
                "{}: offset {}, delay {:.6} s, stratum {} (the clock was not changed)",
                sample.server,
                sample.offset,
                sample.delay.as_secs_f64(),
                sample.stratum
            );
            Ok(())
        }
        _ => bail!("no usable answer from {server}"),
    }
}
