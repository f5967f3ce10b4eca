//! The host's clock from the configuration's `[host]` section. `ntp_servers` are host names
//! or addresses (`[v6]:port` or `name:port` for another port than 123): they are resolved
//! in the background, retried until at least one resolves (the network may still be waiting
//! for its DHCP lease at boot), and mfv-net's SNTP client keeps the clock with them, its
//! events reported as lines. `time_zone` is reported, not applied: the image carries no time
//! zone data, so the host's clock and logs are UTC.

use std::net::SocketAddr;
use std::sync::Arc;

use mfv_linux::error_chain;
use mfv_net::sntp::{
    NTP_PORT, SntpClient, SntpConfig, SntpEvent, SystemClock, Timing, UdpTransport,
};
use tokio::sync::oneshot;

use crate::network::LineSink;
use crate::task::run_forwarding;

/// Why the clock cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The runtime the SNTP client runs on could not start.
    #[error("cannot start the clock runtime")]
    Runtime(#[source] std::io::Error),
    /// No server was given.
    #[error("no NTP server given")]
    NoServers,
}

/// Keeping the clock with SNTP servers.
pub trait TimeSync {
    /// Starts keeping the clock with `servers` (names or addresses, optionally with a port);
    /// a client already running is stopped first.
    fn start(&mut self, servers: &[String]) -> Result<(), ClockError>;
}

/// The real one: mfv-net's SNTP client with the system clock, on a runtime thread of its
/// own (`clock`).
pub struct SntpTimeSync {
    lines: LineSink,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for SntpTimeSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SntpTimeSync")
            .field("running", &self.stop.is_some())
            .finish_non_exhaustive()
    }
}

impl SntpTimeSync {
    /// The client's lines go to `lines`.
    pub fn new(lines: LineSink) -> SntpTimeSync {
        SntpTimeSync {
            lines,
            runtime: None,
            stop: None,
        }
    }
}

impl TimeSync for SntpTimeSync {
    fn start(&mut self, servers: &[String]) -> Result<(), ClockError> {
        if servers.is_empty() {
            return Err(ClockError::NoServers);
        }
        if let Some(stop) = self.stop.take() {
            // A client that ended by itself has nobody to tell.
            let _ = stop.send(());
        }
        let runtime = match self.runtime.take() {
            Some(runtime) => runtime,
            None => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("clock")
                .enable_all()
                .build()
                .map_err(ClockError::Runtime)?,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(keep_time(
            servers.to_vec(),
            Arc::clone(&self.lines),
            stopped,
        ));
        self.runtime = Some(runtime);
        self.stop = Some(stop);
        Ok(())
    }
}

/// Resolves `servers` until at least one resolves, then runs the SNTP client until `stopped`.
async fn keep_time(servers: Vec<String>, lines: LineSink, stopped: oneshot::Receiver<()>) {
    let retry = Timing::default().first_retry;
    let addresses = loop {
        let (addresses, failures) = resolve(&servers).await;
        for failure in failures {
            lines(format!("clock: {failure}"));
        }
        if !addresses.is_empty() {
            break addresses;
        }
        lines(format!(
            "clock: no NTP server resolves yet; trying again in {} s",
            retry.as_secs()
        ));
        tokio::time::sleep(retry).await;
    };
    let transport = match UdpTransport::bind() {
        Ok(transport) => transport,
        Err(error) => {
            lines(format!("clock: SNTP stopped: {}", error_chain(&error)));
            return;
        }
    };
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let client = SntpClient::new(SntpConfig::new(addresses), transport, SystemClock::new())
        .with_events(events);
    let run = client.run(async move {
        let _ = stopped.await;
    });
    let mut shown = SntpLines::default();
    let ended = run_forwarding(run, &mut received, |event| {
        if let Some(line) = shown.line(&event) {
            lines(line);
        }
    })
    .await;
    if let Err(error) = ended {
        lines(format!("clock: SNTP stopped: {}", error_chain(&error)));
    }
}

/// The addresses of `servers` (port 123 unless one is given), and a line for each name that
/// does not resolve.
async fn resolve(servers: &[String]) -> (Vec<SocketAddr>, Vec<String>) {
    let mut addresses = Vec::new();
    let mut failures = Vec::new();
    for server in servers {
        let looked_up = match server.parse::<SocketAddr>() {
            Ok(address) => Ok(vec![address]),
            Err(_) => match server.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(vec![SocketAddr::new(ip, NTP_PORT)]),
                Err(_) if server.contains(':') => tokio::net::lookup_host(server.as_str())
                    .await
                    .map(Iterator::collect),
                Err(_) => tokio::net::lookup_host((server.as_str(), NTP_PORT))
                    .await
                    .map(Iterator::collect),
            },
        };
        match looked_up {
            Ok(found) => addresses.extend(found),
            Err(error) => failures.push(format!("cannot resolve NTP server {server}: {error}")),
        }
    }
    (addresses, failures)
}

/// Turns the SNTP client's events into console lines: a sync, a round that gave no usable
/// time (with each server's reason, gathered from the round's failures), a server that
/// refused or asked to be polled less often. Ignored packets are not shown.
#[derive(Debug, Default)]
pub struct SntpLines {
    /// `SERVER: why`, for each server that failed in the round under way.
    failures: Vec<String>,
}

impl SntpLines {
    /// The line for `event`, if it is one to show.
    pub fn line(&mut self, event: &SntpEvent) -> Option<String> {
        match event {
            SntpEvent::Synced {
                server,
                offset,
                delay,
                stepped,
            } => {
                self.failures.clear();
                Some(format!(
                    "clock: {} by {offset} from {server} (delay {:.1} ms)",
                    if *stepped { "stepped" } else { "slewed" },
                    delay.as_secs_f64() * 1000.0
                ))
            }
            SntpEvent::ServerFailed { server, reason } => {
                self.failures.push(format!("{server}: {reason}"));
                None
            }
            SntpEvent::RoundFailed { retry_in } => {
                let why = if self.failures.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.failures.join("; "))
                };
                self.failures.clear();
                Some(format!(
                    "clock: no usable time from the NTP servers{why}; trying again in {} s",
                    retry_in.as_secs()
                ))
            }
            SntpEvent::ServerDropped { server, code } => Some(format!(
                "clock: {server} refused this host ({code:?}); it is not asked again"
            )),
            SntpEvent::ServerHeldOff { server, waiting } => Some(format!(
                "clock: {server} asked to be polled less often; waiting {} s",
                waiting.as_secs()
            )),
            SntpEvent::PacketIgnored { .. } => None,
        }
    }
}

/// A [`TimeSync`] that records what it was asked, for the tests of callers.
#[derive(Debug, Default)]
pub struct RecordingTimeSync {
    /// The servers of every start, in order.
    pub started: Vec<Vec<String>>,
}

impl TimeSync for RecordingTimeSync {
    fn start(&mut self, servers: &[String]) -> Result<(), ClockError> {
        if servers.is_empty() {
            return Err(ClockError::NoServers);
        }
        self.started.push(servers.to_vec());
        Ok(())
    }
}

/// The line that says what becomes of `time_zone`.
pub fn time_zone_line(time_zone: &str) -> String {
    if time_zone == "UTC" {
        "clock: time zone UTC".to_owned()
    } else {
        format!(
            "clock: time_zone {time_zone} is not applied: the image carries no time zone data, \
             so times are UTC"
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mfv_net::sntp::{ClockOffset, ServerFailure};

    use super::*;

    #[tokio::test]
    async fn addresses_keep_their_port_and_names_get_port_123() {
        let servers = [
            "192.0.2.1".to_owned(),
            "[2001:db8::1]:1123".to_owned(),
            "localhost".to_owned(),
            "no-such-host.invalid".to_owned(),
        ];
        let (addresses, failures) = resolve(&servers).await;
        assert_eq!(addresses[0], "192.0.2.1:123".parse().unwrap());
        assert_eq!(addresses[1], "[2001:db8::1]:1123".parse().unwrap());
        assert!(
            addresses[2..]
                .iter()
                .all(|address| address.ip().is_loopback() && address.port() == NTP_PORT),
            "{addresses:?}"
        );
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].starts_with("cannot resolve NTP server no-such-host.invalid: "),
            "{failures:?}"
        );
    }

    #[test]
    fn syncs_and_failed_rounds_have_lines_naming_why_each_server_failed() {
        let mut shown = SntpLines::default();
        let server = "192.0.2.1:123".parse().unwrap();
        let failed = SntpEvent::ServerFailed {
            server,
            reason: ServerFailure::Timeout {
                waited: Duration::from_secs(2),
            },
        };
        assert_eq!(shown.line(&failed), None);
        let round = SntpEvent::RoundFailed {
            retry_in: Duration::from_secs(16),
        };
        assert_eq!(
            shown.line(&round).unwrap(),
            "clock: no usable time from the NTP servers (192.0.2.1:123: no answer within 2.0 s); \
             trying again in 16 s"
        );
        assert_eq!(
            shown.line(&round).unwrap(),
            "clock: no usable time from the NTP servers; trying again in 16 s"
        );
        let synced = SntpEvent::Synced {
            server,
            offset: ClockOffset::forward(Duration::from_millis(5000)),
            delay: Duration::from_micros(300),
            stepped: true,
        };
        assert_eq!(
            shown.line(&synced).unwrap(),
            "clock: stepped by +5.000000 s from 192.0.2.1:123 (delay 0.3 ms)"
        );
    }

    #[test]
    fn only_utc_is_applied() {
        assert_eq!(time_zone_line("UTC"), "clock: time zone UTC");
        assert!(time_zone_line("Europe/Berlin").contains("is not applied"));
    }

    #[test]
    fn starting_without_servers_is_refused() {
        let mut recording = RecordingTimeSync::default();
        assert!(matches!(recording.start(&[]), Err(ClockError::NoServers)));
        recording.start(&["192.0.2.1".to_owned()]).unwrap();
        assert_eq!(recording.started, [["192.0.2.1"]]);
    }
}
