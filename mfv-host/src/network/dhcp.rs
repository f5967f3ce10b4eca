//! DHCP clients as handles: [`DhcpSession`] starts mfv-net's client on an interface, hands
//! out its events and stops it on request, so whoever started one (PID 1 at boot, the host
//! daemon after a network change, `mfv net dhcp`) can stop or restart it. [`obtain_lease`]
//! is the one-shot use: wait for a lease, leave it configured and stop.
//!
//! A lease never takes over static settings: its router becomes a default route at the
//! session's own metric ([`DhcpSettings::route_metric`], above a static gateway's), and its
//! DNS servers are written only where the settings name a `resolv.conf`, which the boot does
//! only while no DNS servers are configured.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use mfv_net::Netlink;
use mfv_net::dhcp::{
    DhcpClient, DhcpConfig, DhcpError, DhcpEvent, LEASE_ROUTE_METRIC, Lease, NetlinkLeaseApplier,
    Timing, UdpTransport, parse_mac,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::NetworkError;
use crate::task::run_forwarding;

/// The first wait before a DHCP retransmission: 1 s instead of RFC 2131's 4 s, so that a
/// host whose first DISCOVER went out before the link was ready is not held up.
pub const DHCP_FIRST_RETRANSMIT: Duration = Duration::from_secs(1);

/// How a DHCP client is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSettings {
    /// The host name sent to the server (option 12).
    pub hostname: Option<String>,
    /// Give up when no lease is bound within this time; `None` keeps trying.
    pub acquire_timeout: Option<Duration>,
    /// Where the lease's DNS servers are written; `None` leaves the resolver alone.
    pub resolv_conf: Option<PathBuf>,
    /// Whether stopping the client releases the lease and removes its address.
    pub release_on_stop: bool,
    /// The metric of the lease's default route; the lowest metric carries the traffic.
    pub route_metric: u32,
}

impl Default for DhcpSettings {
    /// No host name, no timeout, DNS left alone, the lease kept on stop, the lease's route at
    /// [`LEASE_ROUTE_METRIC`].
    fn default() -> DhcpSettings {
        DhcpSettings {
            hostname: None,
            acquire_timeout: None,
            resolv_conf: None,
            release_on_stop: false,
            route_metric: LEASE_ROUTE_METRIC,
        }
    }
}

/// What a [`DhcpSession`] reports: the client's events, then once how it ended.
#[derive(Debug)]
pub enum SessionEvent {
    /// An event of the client.
    Dhcp(DhcpEvent),
    /// The client ended: stopped (`Ok`) or failed by itself. The last event.
    Ended(Result<(), DhcpError>),
}

/// A DHCP client running on a tokio task.
#[derive(Debug)]
pub struct DhcpSession {
    interface: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl DhcpSession {
    /// Sets `interface` up and starts a DHCP client on it with `settings`; returns the
    /// session and the client's events. Must run inside a tokio runtime: the client is a task
    /// of that runtime.
    pub async fn start(
        netlink: &Netlink,
        interface: &str,
        settings: &DhcpSettings,
    ) -> Result<(DhcpSession, UnboundedReceiver<SessionEvent>), NetworkError> {
        let link = netlink.link_by_name(interface).await?;
        let mac_text = link
            .mac
            .as_deref()
            .ok_or_else(|| NetworkError::NoHardwareAddress {
                interface: interface.to_owned(),
            })?;
        let mac = parse_mac(mac_text).map_err(NetworkError::Dhcp)?;
        if !link.admin_up {
            netlink.set_up(interface).await?;
        }
        let mut config = DhcpConfig::new(interface, mac);
        config.hostname = settings.hostname.clone();
        config.release_on_shutdown = settings.release_on_stop;
        config.timing = Timing {
            first_retransmit: DHCP_FIRST_RETRANSMIT,
            acquire_timeout: settings.acquire_timeout,
            ..Timing::default()
        };
        config.validate().map_err(NetworkError::Dhcp)?;
        let transport = UdpTransport::bind(interface).map_err(NetworkError::Dhcp)?;
        let applier = NetlinkLeaseApplier::new(netlink.clone(), settings.resolv_conf.clone())
            .with_route_metric(settings.route_metric);
        let (client_events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (events, session_events) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let client = DhcpClient::new(config, transport, applier).with_events(client_events);
        let task = tokio::spawn(async move {
            let run = client.run(async move {
                // A dropped sender stops the client too.
                let _ = stopped.await;
            });
            // Nobody listening is no reason to stop the client: sends may fail.
            let ended = run_forwarding(run, &mut received, |event| {
                let _ = events.send(SessionEvent::Dhcp(event));
            })
            .await;
            let _ = events.send(SessionEvent::Ended(ended.map(drop)));
        });
        Ok((
            DhcpSession {
                interface: interface.to_owned(),
                stop: Some(stop),
                task,
            },
            session_events,
        ))
    }

    /// The interface the client runs on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Whether the client has ended (by itself, with an error, or stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the client and waits for its task to end (how the client ended is the last
    /// [`SessionEvent`]).
    pub async fn stop(mut self) -> Result<(), NetworkError> {
        if let Some(stop) = self.stop.take() {
            // The client may have ended already: then there is nobody to tell.
            let _ = stop.send(());
        }
        self.task.await.map_err(|_| NetworkError::DhcpTask {
            interface: self.interface,
        })
    }
}

/// Obtains a lease on `interface` and leaves it configured, then stops the client (nothing
/// renews the lease afterwards). An interface that was down is set down again when no lease
/// comes.
pub async fn obtain_lease(
    netlink: &Netlink,
    interface: &str,
    timeout: Duration,
    resolv_conf: PathBuf,
) -> Result<Lease, NetworkError> {
    let was_up = netlink.link_by_name(interface).await?.admin_up;
    let settings = DhcpSettings {
        acquire_timeout: Some(timeout),
        resolv_conf: Some(resolv_conf),
        ..DhcpSettings::default()
    };
    let result = async {
        let (session, mut events) = DhcpSession::start(netlink, interface, &settings).await?;
        let mut outcome = Err(NetworkError::NoLease {
            interface: interface.to_owned(),
        });
        while let Some(event) = events.recv().await {
            match event {
                SessionEvent::Dhcp(DhcpEvent::Bound(lease)) => {
                    outcome = Ok(lease);
                    break;
                }
                SessionEvent::Ended(Err(error)) => {
                    outcome = Err(NetworkError::Dhcp(error));
                    break;
                }
                SessionEvent::Dhcp(_) | SessionEvent::Ended(Ok(())) => {}
            }
        }
        session.stop().await?;
        outcome
    }
    .await;
    if result.is_err() && !was_up {
        // The lease failure is what the operator needs to see; the interface staying up
        // does no harm.
        let _ = netlink.set_down(interface).await;
    }
    result
}

/// The console line for a DHCP client event on `interface`; `None` for the events not shown
/// (state changes, offers, ignored packets).
pub fn dhcp_event_line(interface: &str, event: &DhcpEvent) -> Option<String> {
    match event {
        DhcpEvent::Bound(lease) => {
            let mut line = format!("net: {interface} bound {}", lease.address);
            if let Some(router) = lease.routers.first() {
                let _ = write!(line, " via {router}");
            }
            let _ = write!(line, " ({})", lease_time(lease));
            Some(line)
        }
        DhcpEvent::Renewed(lease) => Some(format!(
            "net: {interface} renewed {} ({})",
            lease.address,
            lease_time(lease)
        )),
        DhcpEvent::Nak { server, message } => {
            let mut line = format!("net: {interface} refused by {server}");
            if let Some(message) = message {
                let _ = write!(line, " ({message})");
            }
            line.push_str("; asking again");
            Some(line)
        }
        DhcpEvent::Expired(lease) => Some(format!(
            "net: {interface} lease of {} expired; address removed",
            lease.address
        )),
        DhcpEvent::Released(lease) => Some(format!("net: {interface} released {}", lease.address)),
        DhcpEvent::LeaseFileProblem { problem } => Some(format!("net: {interface}: {problem}")),
        DhcpEvent::State(_) | DhcpEvent::Offered { .. } | DhcpEvent::PacketIgnored { .. } => None,
    }
}

/// `lease 86400 s`, or `lease infinite`.
fn lease_time(lease: &Lease) -> String {
    if lease.lease_seconds == u32::MAX {
        "lease infinite".to_owned()
    } else {
        format!("lease {} s", lease.lease_seconds)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use mfv_net::dhcp::{DhcpState, IgnoreReason};

    use super::*;

    fn lease(routers: &[&str], lease_seconds: u32) -> Lease {
        Lease {
            address: "10.0.2.15/24".parse().unwrap(),
            server: Ipv4Addr::new(10, 0, 2, 2),
            routers: routers
                .iter()
                .map(|router| router.parse().unwrap())
                .collect(),
            dns_servers: vec![Ipv4Addr::new(10, 0, 2, 3)],
            domain: None,
            mtu: None,
            lease_seconds,
            renew_seconds: lease_seconds / 2,
            rebind_seconds: lease_seconds / 8 * 7,
        }
    }

    #[test]
    fn dhcp_events_have_console_lines() {
        let line = |event: DhcpEvent| dhcp_event_line("eth0", &event);
        assert_eq!(
            line(DhcpEvent::Bound(lease(&["10.0.2.2"], 86400))).as_deref(),
            Some("net: eth0 bound 10.0.2.15/24 via 10.0.2.2 (lease 86400 s)")
        );
        assert_eq!(
            line(DhcpEvent::Bound(lease(&[], u32::MAX))).as_deref(),
            Some("net: eth0 bound 10.0.2.15/24 (lease infinite)")
        );
        assert_eq!(
            line(DhcpEvent::Renewed(lease(&["10.0.2.2"], 3600))).as_deref(),
            Some("net: eth0 renewed 10.0.2.15/24 (lease 3600 s)")
        );
        assert_eq!(
            line(DhcpEvent::Nak {
                server: Ipv4Addr::new(10, 0, 2, 2),
                message: Some("wrong network".into())
            })
            .as_deref(),
            Some("net: eth0 refused by 10.0.2.2 (wrong network); asking again")
        );
        assert_eq!(
            line(DhcpEvent::Nak {
                server: Ipv4Addr::UNSPECIFIED,
                message: None
            })
            .as_deref(),
            Some("net: eth0 refused by 0.0.0.0; asking again")
        );
        assert_eq!(
            line(DhcpEvent::Expired(lease(&[], 60))).as_deref(),
            Some("net: eth0 lease of 10.0.2.15/24 expired; address removed")
        );
        assert_eq!(
            line(DhcpEvent::Released(lease(&[], 60))).as_deref(),
            Some("net: eth0 released 10.0.2.15/24")
        );
        assert_eq!(
            line(DhcpEvent::LeaseFileProblem {
                problem: "cannot read the lease file /x".into()
            })
            .as_deref(),
            Some("net: eth0: cannot read the lease file /x")
        );
        assert_eq!(line(DhcpEvent::State(DhcpState::Selecting)), None);
        assert_eq!(
            line(DhcpEvent::Offered {
                server: Ipv4Addr::new(10, 0, 2, 2),
                address: Ipv4Addr::new(10, 0, 2, 15)
            }),
            None
        );
        assert_eq!(
            line(DhcpEvent::PacketIgnored {
                reason: IgnoreReason::Malformed,
                total: 1
            }),
            None
        );
    }
}
