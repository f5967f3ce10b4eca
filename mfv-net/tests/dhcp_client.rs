//! Root-only tests of the DHCP client against a real dnsmasq, across a veth pair between two
//! throwaway network namespaces (server: srv0 192.0.2.1/24; client: cl0).

#[path = "support/dnsmasq.rs"]
mod dnsmasq;
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use dnsmasq::Dnsmasq;
use mfv_net::dhcp::{
    DhcpClient, DhcpConfig, DhcpError, DhcpEvent, DhcpExit, DhcpState, LEASE_ROUTE_METRIC, Lease,
    LeaseApplier, NetlinkLeaseApplier, Timing, UdpTransport, parse_mac,
};
use mfv_net::{IpCidr, Netlink};
use support::{EventLog, ServerAndClient, TestNamespace, can_run_as_root};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const RANGE: &str = "192.0.2.50,192.0.2.60,255.255.255.0,2m";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A server namespace and a client namespace joined by srv0 <-> cl0.
struct Network {
    server: TestNamespace,
    client: TestNamespace,
    dir: tempfile::TempDir,
}

impl Network {
    fn new() -> Result<Network> {
        let ServerAndClient { server, client } = ServerAndClient::new()?;
        Ok(Network {
            server,
            client,
            dir: tempfile::tempdir()?,
        })
    }

    fn dnsmasq(&self, range: &str, extra: &[&str]) -> Result<Dnsmasq> {
        Dnsmasq::start(self.server.name(), "srv0", range, extra)
    }

    fn resolv_conf(&self) -> PathBuf {
        self.dir.path().join("resolv.conf")
    }

    fn lease_file(&self) -> PathBuf {
        self.dir.path().join("cl0.lease")
    }
}

/// Fast retransmissions; lease times scaled to `percent`, with a floor low enough for them.
fn timing(percent: u32) -> Timing {
    Timing {
        min_lease: Duration::from_millis(500),
        first_retransmit: Duration::from_millis(500),
        jitter: Duration::from_millis(100),
        min_renew_retransmit: Duration::from_millis(200),
        acquire_timeout: Some(Duration::from_secs(10)),
        lease_time_percent: percent,
        ..Timing::default()
    }
}

/// A running client on cl0 (inside the client namespace).
struct Running {
    task: JoinHandle<Result<DhcpExit, DhcpError>>,
    events: EventLog<DhcpEvent>,
    stop: oneshot::Sender<()>,
}

impl Running {
    /// Waits for an event `wanted` accepts, up to `limit`; fails with every event seen.
    async fn wait_for(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&DhcpEvent) -> bool,
    ) -> Result<DhcpEvent> {
        self.events.wait_for(limit, wanted).await
    }

    async fn wait_bound(&mut self) -> Result<Lease> {
        match self
            .wait_for(Duration::from_secs(10), |event| {
                matches!(event, DhcpEvent::Bound(_))
            })
            .await?
        {
            DhcpEvent::Bound(lease) => Ok(lease),
            _ => unreachable!(),
        }
    }

    async fn shut_down(self) -> Result<DhcpExit> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

async fn start_client(
    config_edit: impl FnOnce(&mut DhcpConfig),
    resolv: PathBuf,
) -> Result<Running> {
    let netlink = Netlink::connect()?;
    let link = netlink.link_by_name("cl0").await?;
    let mac = parse_mac(link.mac.as_deref().context("cl0 has no MAC")?)?;
    let mut config = DhcpConfig::new("cl0", mac);
    config.hostname = Some("mfv-test".into());
    config.timing = timing(100);
    config_edit(&mut config);
    let client = DhcpClient::new(
        config,
        UdpTransport::bind("cl0")?,
        NetlinkLeaseApplier::new(netlink, Some(resolv)),
    );
    let (events_tx, events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(client.with_events(events_tx).run(async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        task,
        events: EventLog::new(events),
        stop,
    })
}

/// The IPv4 addresses of cl0.
async fn addresses() -> Result<Vec<IpCidr>> {
    let netlink = Netlink::connect()?;
    Ok(netlink
        .addresses("cl0")
        .await?
        .into_iter()
        .filter(|address| matches!(address, IpCidr::V4(_)))
        .collect())
}

/// Every IPv4 default route of the namespace as (gateway, interface, metric).
async fn default_routes() -> Result<Vec<DefaultRoute>> {
    let netlink = Netlink::connect()?;
    Ok(netlink
        .routes()
        .await?
        .into_iter()
        .filter(|route| route.is_default() && matches!(route.destination, IpCidr::V4(_)))
        .map(|route| (route.gateway, route.interface, route.metric))
        .collect())
}

/// The interface `ip route get ADDRESS` picks in `namespace`.
fn route_to(namespace: &TestNamespace, address: &str) -> Result<String> {
    let output = namespace.ip(&["route", "get", address])?;
    let mut words = output.split_whitespace();
    words.find(|word| *word == "dev");
    Ok(words.next().context("no dev in ip route get")?.to_owned())
}

/// The gateways of cl0's default routes.
async fn default_gateways() -> Result<Vec<IpAddr>> {
    let netlink = Netlink::connect()?;
    Ok(netlink
        .routes()
        .await?
        .into_iter()
        .filter(|route| route.is_default() && route.interface == "cl0")
        .filter_map(|route| route.gateway)
        .collect())
}

#[test]
fn a_lease_is_obtained_applied_and_released() -> Result<()> {
    if !can_run_as_root("a_lease_is_obtained_applied_and_released") {
        return Ok(());
    }
    let network = Network::new()?;
    let server = network.dnsmasq(RANGE, &["--dhcp-option=option:mtu,1400"])?;
    let resolv = network.resolv_conf();
    let read_resolv = resolv.clone();
    let (lease, exit, after) = network.client.run(move || async move {
        let mut client = start_client(|_| {}, resolv).await?;
        let lease = client.wait_bound().await?;
        assert_eq!(addresses().await?, [IpCidr::V4(lease.address)]);
        assert_eq!(default_gateways().await?, [IpAddr::V4(GATEWAY)]);
        assert_eq!(Netlink::connect()?.link_by_name("cl0").await?.mtu, 1400);
        let exit = client.shut_down().await?;
        anyhow::Ok((lease, exit, addresses().await?))
    })??;
    let address = lease.address.address();
    assert!(
        (Ipv4Addr::new(192, 0, 2, 50)..=Ipv4Addr::new(192, 0, 2, 60)).contains(&address),
        "{lease:?}"
    );
    assert_eq!(lease.address.prefix_len(), 24);
    assert_eq!(lease.server, GATEWAY);
    assert_eq!(lease.dns_servers, [Ipv4Addr::new(192, 0, 2, 53)]);
    assert_eq!(lease.domain.as_deref(), Some("example.org"));
    assert_eq!(lease.mtu, Some(1400));
    assert_eq!(
        std::fs::read_to_string(read_resolv)?,
        "# Generated by mfv-net; changes here are overwritten.\n\
         nameserver 192.0.2.53\nsearch example.org\n"
    );
    assert_eq!(exit, DhcpExit::Released(lease.clone()));
    assert!(after.is_empty(), "{after:?}");
    // dnsmasq forgets a released lease.
    std::thread::sleep(Duration::from_millis(100));
    let leases = std::fs::read_to_string(server.lease_file()).unwrap_or_default();
    assert!(
        !leases.contains(&address.to_string()),
        "{leases}\n{}",
        server.log()
    );
    assert!(server.log().contains("DHCPRELEASE"), "{}", server.log());
    Ok(())
}

#[test]
fn the_lease_is_renewed_at_the_servers_t1() -> Result<()> {
    if !can_run_as_root("the_lease_is_renewed_at_the_servers_t1") {
        return Ok(());
    }
    let network = Network::new()?;
    let server = network.dnsmasq(
        RANGE,
        &["--dhcp-option=option:T1,4", "--dhcp-option=option:T2,7"],
    )?;
    let resolv = network.resolv_conf();
    let (lease, renewed) = network.client.run(move || async move {
        // 25 %: T1 after 1 s, T2 after 1.75 s.
        let mut client = start_client(|config| config.timing = timing(25), resolv).await?;
        let lease = client.wait_bound().await?;
        let started = tokio::time::Instant::now();
        client
            .wait_for(Duration::from_secs(5), |event| {
                *event == DhcpEvent::State(DhcpState::Renewing)
            })
            .await?;
        let renewing_after = started.elapsed();
        let renewed = client
            .wait_for(Duration::from_secs(5), |event| {
                matches!(event, DhcpEvent::Renewed(_))
            })
            .await?;
        assert!(
            renewing_after >= Duration::from_millis(900) && renewing_after < Duration::from_secs(2),
            "renewed after {renewing_after:?}"
        );
        client.shut_down().await?;
        anyhow::Ok((lease, renewed))
    })??;
    assert_eq!((lease.renew_seconds, lease.rebind_seconds), (4, 7));
    assert_eq!(renewed, DhcpEvent::Renewed(lease));
    assert!(server.log().contains("DHCPREQUEST"), "{}", server.log());
    Ok(())
}

#[test]
fn without_a_server_the_client_rebinds_then_the_lease_expires() -> Result<()> {
    if !can_run_as_root("without_a_server_the_client_rebinds_then_the_lease_expires") {
        return Ok(());
    }
    let network = Network::new()?;
    let mut server = network.dnsmasq(RANGE, &[])?;
    let resolv = network.resolv_conf();
    let (seen, after) = network.client.run(move || async move {
        // 4 % of 120 s: T1 2.4 s, T2 4.2 s, expiry 4.8 s.
        let mut client = start_client(|config| config.timing = timing(4), resolv).await?;
        client.wait_bound().await?;
        server.stop();
        client
            .wait_for(Duration::from_secs(8), |event| {
                matches!(event, DhcpEvent::Expired(_))
            })
            .await?;
        let after = addresses().await?;
        let seen = client.events.seen().to_vec();
        client.shut_down().await?;
        anyhow::Ok((seen, after))
    })??;
    let states: Vec<_> = seen
        .iter()
        .filter_map(|event| match event {
            DhcpEvent::State(state) => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            DhcpState::Selecting,
            DhcpState::Requesting,
            DhcpState::Bound,
            DhcpState::Renewing,
            DhcpState::Rebinding
        ]
    );
    assert!(after.is_empty(), "{after:?}");
    Ok(())
}

#[test]
fn a_nak_after_the_range_changes_restarts_with_a_new_address() -> Result<()> {
    if !can_run_as_root("a_nak_after_the_range_changes_restarts_with_a_new_address") {
        return Ok(());
    }
    let network = Network::new()?;
    let mut first = network.dnsmasq(
        RANGE,
        &["--dhcp-option=option:T1,4", "--dhcp-option=option:T2,7"],
    )?;
    let server_namespace = network.server.name().to_owned();
    let resolv = network.resolv_conf();
    let (old, nak, new, after, second) = network.client.run(move || async move {
        let mut client = start_client(|config| config.timing = timing(25), resolv).await?;
        let old = client.wait_bound().await?;
        first.stop();
        let second = Dnsmasq::start(
            &server_namespace,
            "srv0",
            "192.0.2.100,192.0.2.110,255.255.255.0,2m",
            &["--dhcp-authoritative"],
        )?;
        let nak = client
            .wait_for(Duration::from_secs(5), |event| {
                matches!(event, DhcpEvent::Nak { .. })
            })
            .await?;
        let new = client.wait_bound().await?;
        let after = addresses().await?;
        client.shut_down().await?;
        anyhow::Ok((old, nak, new, after, second))
    })??;
    assert!(
        matches!(nak, DhcpEvent::Nak { server, .. } if server == GATEWAY),
        "{nak:?}"
    );
    assert_ne!(old.address, new.address);
    assert!(
        (Ipv4Addr::new(192, 0, 2, 100)..=Ipv4Addr::new(192, 0, 2, 110))
            .contains(&new.address.address()),
        "{new:?}"
    );
    assert_eq!(after, [IpCidr::V4(new.address)]);
    assert!(second.log().contains("DHCPNAK"), "{}", second.log());
    Ok(())
}

#[test]
fn a_remembered_lease_is_confirmed_with_init_reboot() -> Result<()> {
    if !can_run_as_root("a_remembered_lease_is_confirmed_with_init_reboot") {
        return Ok(());
    }
    let network = Network::new()?;
    let server = network.dnsmasq(RANGE, &[])?;
    let resolv = network.resolv_conf();
    let lease_file = network.lease_file();
    let (first, second, states) = network.client.run(move || async move {
        let remember = |config: &mut DhcpConfig| {
            config.lease_file = Some(lease_file.clone());
            config.release_on_shutdown = false;
        };
        let mut client = start_client(remember, resolv.clone()).await?;
        let first = client.wait_bound().await?;
        assert_eq!(
            client.shut_down().await?,
            DhcpExit::LeftConfigured(first.clone())
        );
        let mut client = start_client(remember, resolv).await?;
        let second = client.wait_bound().await?;
        let states = client.events.seen().to_vec();
        client.shut_down().await?;
        anyhow::Ok((first, second, states))
    })??;
    assert_eq!(first.address, second.address);
    assert_eq!(
        states[..2],
        [
            DhcpEvent::State(DhcpState::Rebooting),
            DhcpEvent::State(DhcpState::Bound)
        ]
    );
    assert_eq!(
        server.log().matches("DHCPDISCOVER").count(),
        1,
        "{}",
        server.log()
    );
    Ok(())
}

#[test]
fn a_silent_server_times_out_and_leaves_the_interface_alone() -> Result<()> {
    if !can_run_as_root("a_silent_server_times_out_and_leaves_the_interface_alone") {
        return Ok(());
    }
    let network = Network::new()?;
    let resolv = network.resolv_conf();
    let (error, after) = network.client.run(move || async move {
        let client = start_client(
            |config| config.timing.acquire_timeout = Some(Duration::from_secs(2)),
            resolv,
        )
        .await?;
        let error = client.task.await?.unwrap_err();
        anyhow::Ok((error, addresses().await?))
    })??;
    assert_eq!(
        error.to_string(),
        "no DHCP lease on cl0: no server answered within 2.0 s (the interface was left as it was)"
    );
    assert!(after.is_empty());
    assert!(!network.resolv_conf().exists());
    Ok(())
}

#[test]
fn a_missing_interface_is_a_clear_error_for_socket_and_applier() -> Result<()> {
    if !can_run_as_root("a_missing_interface_is_a_clear_error_for_socket_and_applier") {
        return Ok(());
    }
    let network = Network::new()?;
    let (socket_error, apply_error, remove_error) = network.client.run(|| async {
        let socket_error = UdpTransport::bind("nosuch0").unwrap_err().to_string();
        let lease = Lease {
            address: "192.0.2.50/24".parse()?,
            server: GATEWAY,
            routers: vec![GATEWAY],
            dns_servers: vec![],
            domain: None,
            mtu: None,
            lease_seconds: 120,
            renew_seconds: 60,
            rebind_seconds: 105,
        };
        let mut applier = NetlinkLeaseApplier::new(Netlink::connect()?, None);
        let apply_error = applier.apply("nosuch0", None, &lease).await.unwrap_err();
        let remove_error = applier.remove("nosuch0", &lease).await.unwrap_err();
        anyhow::Ok((socket_error, apply_error, remove_error))
    })??;
    assert_eq!(
        socket_error,
        "cannot open the DHCP client socket (UDP port 68) on nosuch0"
    );
    assert_eq!(
        apply_error.to_string(),
        "cannot add the leased address 192.0.2.50/24 on nosuch0"
    );
    assert!(matches!(apply_error, DhcpError::Apply { .. }));
    assert_eq!(
        remove_error.to_string(),
        "cannot remove the default route via 192.0.2.1 on nosuch0"
    );
    Ok(())
}

/// The static gateway on st0, one end of a veth pair inside the client's namespace.
const STATIC_GATEWAY: &str = "198.51.100.1";

/// Gives the client's namespace st0 (a veth end, its peer st1) with 198.51.100.10/24 and a
/// static default route through 198.51.100.1.
fn add_static_default_route(client: &TestNamespace) -> Result<()> {
    client.add_veth("st0", "st1")?;
    client.ip(&["addr", "add", "198.51.100.10/24", "dev", "st0"])?;
    let route = [
        "route",
        "add",
        "default",
        "via",
        STATIC_GATEWAY,
        "dev",
        "st0",
    ];
    client.ip(&route)?;
    Ok(())
}

/// A default route as (gateway, interface, metric).
type DefaultRoute = (Option<IpAddr>, String, Option<u32>);

/// The default routes while a lease from dnsmasq is bound on cl0, then after it was
/// released.
fn routes_bound_and_released(network: &Network) -> Result<(Vec<DefaultRoute>, Vec<DefaultRoute>)> {
    let _server = network.dnsmasq(RANGE, &[])?;
    let resolv = network.resolv_conf();
    network.client.run(move || async move {
        let mut client = start_client(|_| {}, resolv).await?;
        client.wait_bound().await?;
        let bound_routes = default_routes().await?;
        client.shut_down().await?;
        anyhow::Ok((bound_routes, default_routes().await?))
    })?
}

#[test]
fn a_lease_router_never_takes_over_a_static_default_route() -> Result<()> {
    if !can_run_as_root("a_lease_router_never_takes_over_a_static_default_route") {
        return Ok(());
    }
    let network = Network::new()?;
    add_static_default_route(&network.client)?;
    let (bound_routes, released_routes) = routes_bound_and_released(&network)?;
    let static_route = (Some(STATIC_GATEWAY.parse()?), "st0".to_owned(), None);
    let lease_route = (
        Some(IpAddr::V4(GATEWAY)),
        "cl0".to_owned(),
        Some(LEASE_ROUTE_METRIC),
    );
    assert_eq!(bound_routes, [static_route.clone(), lease_route]);
    assert_eq!(released_routes, [static_route]);
    assert_eq!(route_to(&network.client, "203.0.113.9")?, "st0");
    Ok(())
}

#[test]
fn ending_a_lease_removes_only_the_route_it_installed() -> Result<()> {
    if !can_run_as_root("ending_a_lease_removes_only_the_route_it_installed") {
        return Ok(());
    }
    let network = Network::new()?;
    // A static default route through the lease's own router, on the lease's interface. A
    // static address keeps the kernel from flushing cl0's routes when the lease's address,
    // otherwise its last, goes.
    network
        .client
        .ip(&["addr", "add", "203.0.113.10/24", "dev", "cl0"])?;
    network.client.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        "cl0",
        "onlink",
    ])?;
    let (bound_routes, released_routes) = routes_bound_and_released(&network)?;
    let static_route = (Some(IpAddr::V4(GATEWAY)), "cl0".to_owned(), None);
    let lease_route = (
        Some(IpAddr::V4(GATEWAY)),
        "cl0".to_owned(),
        Some(LEASE_ROUTE_METRIC),
    );
    assert_eq!(bound_routes, [static_route.clone(), lease_route]);
    assert_eq!(released_routes, [static_route]);
    Ok(())
}

#[test]
fn a_foreign_route_at_the_lease_metric_ends_the_client_and_stays() -> Result<()> {
    if !can_run_as_root("a_foreign_route_at_the_lease_metric_ends_the_client_and_stays") {
        return Ok(());
    }
    let network = Network::new()?;
    add_static_default_route(&network.client)?;
    let metric = LEASE_ROUTE_METRIC.to_string();
    network.client.ip(&[
        "route",
        "add",
        "default",
        "via",
        STATIC_GATEWAY,
        "dev",
        "st0",
        "metric",
        &metric,
    ])?;
    let _server = network.dnsmasq(RANGE, &[])?;
    let resolv = network.resolv_conf();
    let (error, routes, after) = network.client.run(move || async move {
        let client = start_client(|_| {}, resolv).await?;
        let error = client.task.await?.unwrap_err();
        anyhow::Ok((error, default_routes().await?, addresses().await?))
    })??;
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot add the default route via 192.0.2.1 metric {metric} on cl0: \
             the route default via {STATIC_GATEWAY} dev st0 metric {metric} has that metric"
        )
    );
    let gateway: IpAddr = STATIC_GATEWAY.parse()?;
    assert_eq!(
        routes,
        [
            (Some(gateway), "st0".to_owned(), None),
            (Some(gateway), "st0".to_owned(), Some(LEASE_ROUTE_METRIC))
        ]
    );
    Ok(())
}

#[test]
fn a_hostile_domain_name_adds_no_line_to_resolv_conf() -> Result<()> {
    if !can_run_as_root("a_hostile_domain_name_adds_no_line_to_resolv_conf") {
        return Ok(());
    }
    let network = Network::new()?;
    let server = network.dnsmasq(
        RANGE,
        &[r#"--dhcp-option=option:domain-name,"example.org\nnameserver 203.0.113.9""#],
    )?;
    let resolv = network.resolv_conf();
    let lease = network.client.run(move || async move {
        let mut client = start_client(|_| {}, resolv).await?;
        let lease = client.wait_bound().await?;
        client.shut_down().await?;
        anyhow::Ok(lease)
    })??;
    assert_eq!(lease.domain, None, "{}", server.log());
    assert_eq!(
        std::fs::read_to_string(network.resolv_conf())?,
        "# Generated by mfv-net; changes here are overwritten.\n\
         nameserver 192.0.2.53\n"
    );
    Ok(())
}
