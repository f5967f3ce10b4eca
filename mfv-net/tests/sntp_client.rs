//! Root-only tests of the SNTP client against a real chronyd, across a veth pair between two
//! throwaway network namespaces (server: srv0 192.0.2.1/24 and 2001:db8::1/64; client: cl0
//! 192.0.2.2/24 and 2001:db8::2/64). chronyd runs with `-x` and the client corrects a
//! `RecordingClock`: neither ever touches this machine's clock.

#[path = "support/chronyd.rs"]
mod chronyd;
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use chronyd::Chronyd;
use mfv_net::sntp::{
    ClockChange, RecordingClock, ServerFailure, SntpClient, SntpConfig, SntpEvent, SntpExit,
    Timing, UdpTransport,
};
use support::{EventLog, ServerAndClient, can_run_as_root};
use tokio::sync::{mpsc, oneshot};

const SERVER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// chronyd over IPv4.
const CHRONYD_V4: SocketAddr = SocketAddr::new(SERVER_V4, 123);
/// chronyd over IPv6.
const CHRONYD_V6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    123,
);
/// A port of the server where nothing listens.
const SILENT: SocketAddr = SocketAddr::new(SERVER_V4, 1123);

/// The namespaces, with IPv4 and IPv6 addresses on both ends (IPv6 without duplicate
/// address detection, so the addresses work at once).
fn network() -> Result<ServerAndClient> {
    let network = ServerAndClient::new()?;
    network
        .server
        .ip(&["addr", "add", "2001:db8::1/64", "dev", "srv0", "nodad"])?;
    network
        .client
        .ip(&["addr", "add", "192.0.2.2/24", "dev", "cl0"])?;
    network
        .client
        .ip(&["addr", "add", "2001:db8::2/64", "dev", "cl0", "nodad"])?;
    Ok(network)
}

/// Rounds every second or two, a 1 s response timeout.
fn config(servers: &[SocketAddr]) -> SntpConfig {
    let mut config = SntpConfig::new(servers.to_vec());
    config.timing = Timing {
        min_poll: Duration::from_secs(1),
        max_poll: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        first_retry: Duration::from_secs(1),
        max_retry: Duration::from_secs(2),
    };
    config
}

/// Runs a client (in the current namespace) until `count` events `wanted` accepts were
/// reported, then stops it; returns every event and the exit.
async fn run_client(
    config: SntpConfig,
    clock: RecordingClock,
    count: usize,
    wanted: impl Fn(&SntpEvent) -> bool,
) -> Result<(Vec<SntpEvent>, SntpExit)> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let client = SntpClient::new(config, UdpTransport::bind()?, clock).with_events(events_tx);
    let task = tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    let mut events = EventLog::new(events);
    for _ in 0..count {
        events.wait_for(Duration::from_secs(10), &wanted).await?;
    }
    let _ = stop.send(());
    let exit = task.await??;
    Ok((events.seen().to_vec(), exit))
}

#[test]
fn the_clock_is_stepped_then_slewed_against_chronyd_over_ipv4_and_ipv6() -> Result<()> {
    if !can_run_as_root("the_clock_is_stepped_then_slewed_against_chronyd_over_ipv4_and_ipv6") {
        return Ok(());
    }
    let network = network()?;
    let ntp = Chronyd::start(network.server.name(), "all", &["local stratum 8"])?;
    let clock = RecordingClock::starting_at(SystemTime::now() - Duration::from_secs(5));
    let recorded = clock.clone();
    let (events, exit) = network.client.run(move || async move {
        let config = config(&[CHRONYD_V4, CHRONYD_V6, SILENT]);
        run_client(config, clock, 2, |event| {
            matches!(event, SntpEvent::Synced { .. })
        })
        .await
    })??;
    let synced: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            SntpEvent::Synced {
                server,
                offset,
                delay,
                stepped,
            } => Some((*server, *offset, *delay, *stepped)),
            _ => None,
        })
        .collect();
    let answering = [CHRONYD_V4, CHRONYD_V6];
    // First the clock, 5 s behind, is stepped by about 5 s ...
    let (server, offset, delay, stepped) = synced[0];
    assert!(answering.contains(&server), "{synced:?}");
    assert!(stepped, "{synced:?}");
    let error = offset.as_nanos() - 5_000_000_000;
    assert!(error.abs() < 50_000_000, "offset {offset}");
    assert!(delay < Duration::from_millis(50), "{synced:?}");
    // ... then what is left is small and slewed.
    let (server, offset, _, stepped) = synced[1];
    assert!(answering.contains(&server), "{synced:?}");
    assert!(!stepped, "{synced:?}");
    assert!(
        offset.magnitude() < Duration::from_millis(20),
        "offset {offset}"
    );
    assert_eq!(
        recorded.changes(),
        [
            ClockChange::Step(synced[0].1),
            ClockChange::Slew(synced[1].1)
        ]
    );
    assert_eq!(exit.syncs, 2);
    assert_eq!(exit.last_sync.map(|sample| sample.stratum), Some(8));
    // Both of chronyd's addresses answered every time; the silent port never did.
    let failed: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            SntpEvent::ServerFailed { server, reason } => Some((*server, reason.clone())),
            _ => None,
        })
        .collect();
    let timeout = ServerFailure::Timeout {
        waited: Duration::from_secs(1),
    };
    assert_eq!(
        failed,
        [(SILENT, timeout.clone()), (SILENT, timeout)],
        "{}",
        ntp.log()
    );
    Ok(())
}

#[test]
fn an_unsynchronised_chronyd_is_refused_and_the_clock_left_alone() -> Result<()> {
    if !can_run_as_root("an_unsynchronised_chronyd_is_refused_and_the_clock_left_alone") {
        return Ok(());
    }
    let network = network()?;
    // Without `local`, chronyd has no reference and says so.
    let ntp = Chronyd::start(network.server.name(), "192.0.2.0/24", &[])?;
    let clock = RecordingClock::new();
    let recorded = clock.clone();
    let (events, exit) = network.client.run(move || async move {
        run_client(config(&[CHRONYD_V4]), clock, 1, |event| {
            matches!(event, SntpEvent::RoundFailed { .. })
        })
        .await
    })??;
    assert_eq!(
        events,
        [
            SntpEvent::ServerFailed {
                server: CHRONYD_V4,
                reason: ServerFailure::Unsynchronised
            },
            SntpEvent::RoundFailed {
                retry_in: Duration::from_secs(1)
            }
        ],
        "{}",
        ntp.log()
    );
    assert_eq!(exit.syncs, 0);
    assert!(recorded.changes().is_empty());
    Ok(())
}
