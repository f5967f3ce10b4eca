//! Root-only tests of applying a desired network state, verifying it and rolling it back.
// Helpers outside the #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "support/dnsmasq.rs"]
mod dnsmasq;
mod support;

use std::time::Duration;

use anyhow::Result;
use dnsmasq::Dnsmasq;
use mfv_net::{
    ApplyError, ApplyOptions, DnsConfig, InterfaceConfig, InterfaceKind, IpCidr, NetError, Netlink,
    NetworkState, ProvisionalOutcome, Route, apply, apply_provisional, current_state,
};
use support::{ServerAndClient, TestNamespace, can_run_as_root};

fn cidr(text: &str) -> IpCidr {
    text.parse().unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_string()).collect()
}

/// A namespace with the veth pair veth0/veth1 up and 192.0.2.10/24 plus a default route
/// through 192.0.2.1 on veth0.
fn configured_namespace() -> Result<TestNamespace> {
    let namespace = TestNamespace::new()?;
    namespace.add_veth("veth0", "veth1")?;
    namespace.ip(&["address", "add", "192.0.2.10/24", "dev", "veth0"])?;
    namespace.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
    Ok(namespace)
}

fn ipv4_of(namespace: &TestNamespace, interface: &str) -> Result<String> {
    let shown = namespace.ip(&["-4", "-o", "address", "show", "dev", interface])?;
    Ok(shown
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect::<Vec<_>>()
        .join(" "))
}

fn default_route(namespace: &TestNamespace) -> Result<String> {
    Ok(namespace
        .ip(&["route", "show", "default"])?
        .trim()
        .to_string())
}

fn veth0_static(address: &str, gateway: &str) -> NetworkState {
    NetworkState {
        interfaces: vec![InterfaceConfig {
            name: "veth0".into(),
            kind: InterfaceKind::Existing,
            addresses: vec![cidr(address)],
            mtu: None,
            up: true,
        }],
        routes: vec![Route::default_via(gateway.parse().unwrap(), "veth0")],
        dns: None,
    }
}

#[test]
fn static_address_and_gateway_are_applied_and_verified() -> Result<()> {
    if !can_run_as_root("static_address_and_gateway_are_applied_and_verified") {
        return Ok(());
    }
    let namespace = TestNamespace::new()?;
    namespace.add_veth("veth0", "veth1")?;
    let directory = tempfile::tempdir()?;
    let resolv_conf = directory.path().join("resolv.conf");
    let options = ApplyOptions {
        resolv_conf: Some(resolv_conf.clone()),
    };
    let mut desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    desired.interfaces[0].mtu = Some(1400);
    desired.dns = Some(DnsConfig {
        nameservers: vec!["198.51.100.1".parse()?],
        search: vec![],
        options: vec![],
    });
    let (first, second) = namespace.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        let first = apply(&netlink, &desired, &options).await?;
        let second = apply(&netlink, &desired, &options).await?;
        Ok::<_, ApplyError>((first, second))
    })??;
    assert_eq!(
        first.changes,
        [
            "set the MTU of veth0 to 1400".to_string(),
            "add 198.51.100.5/24 to veth0".into(),
            "add the route default via 198.51.100.1 dev veth0".into(),
            format!("write {}", resolv_conf.display()),
        ]
    );
    assert_eq!(second.changes, [format!("write {}", resolv_conf.display())]);
    assert_eq!(ipv4_of(&namespace, "veth0")?, "198.51.100.5/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 198.51.100.1 dev veth0 proto static"
    );
    let written = std::fs::read_to_string(&resolv_conf)?;
    assert!(
        written.ends_with("\nnameserver 198.51.100.1\n"),
        "{written}"
    );
    Ok(())
}

#[test]
fn the_bridge_takes_over_the_address_and_default_route() -> Result<()> {
    if !can_run_as_root("the_bridge_takes_over_the_address_and_default_route") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let report = namespace.run(|| async {
        let netlink = Netlink::connect().unwrap();
        let mut desired = current_state(&netlink, &names(&["veth0"]))
            .await
            .map_err(ApplyError::Snapshot)?;
        desired.move_to_bridge("veth0", "br0");
        apply(&netlink, &desired, &ApplyOptions::default()).await
    })??;
    assert_eq!(
        report.changes,
        [
            "create bridge br0",
            "make veth0 a port of br0",
            "remove the route default via 192.0.2.1 dev veth0",
            "remove 192.0.2.10/24 from veth0",
            "add 192.0.2.10/24 to br0",
            "set br0 up",
            "add the route default via 192.0.2.1 dev br0",
        ]
    );
    assert_eq!(ipv4_of(&namespace, "veth0")?, "");
    assert_eq!(ipv4_of(&namespace, "br0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev br0 proto static"
    );
    assert!(
        namespace
            .ip(&["link", "show", "veth0"])?
            .contains("master br0")
    );
    Ok(())
}

/// Applies a state holding one virtual interface of `kind` built on veth0; `None` when this
/// kernel has no driver for it (the test then says so and passes).
fn apply_virtual(namespace: &TestNamespace, config: InterfaceConfig) -> Result<Option<()>> {
    let desired = NetworkState {
        interfaces: vec![config],
        routes: vec![],
        dns: None,
    };
    let result = namespace.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        apply(&netlink, &desired, &ApplyOptions::default()).await
    })?;
    match result {
        Ok(_) => Ok(Some(())),
        Err(ApplyError::Change {
            source: NetError::LinkKindUnsupported { name, kind },
            rollback,
        }) => {
            assert!(rollback.failures.is_empty(), "{rollback}");
            eprintln!(
                "skipping: this kernel cannot create the {kind} {name}; the appliance tests in \
                 tests/tests/net.rs (vlans_from_the_configuration_and_the_cli_carry_their_addresses, \
                 an_active_backup_bond_fails_over_to_the_second_nic) cover it"
            );
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

#[test]
fn a_vlan_sub_interface_is_created_with_its_address() -> Result<()> {
    if !can_run_as_root("a_vlan_sub_interface_is_created_with_its_address") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let vlan = InterfaceConfig {
        name: "veth0.42".into(),
        kind: InterfaceKind::Vlan {
            parent: "veth0".into(),
            id: 42,
        },
        addresses: vec![cidr("203.0.113.5/24")],
        mtu: None,
        up: true,
    };
    if apply_virtual(&namespace, vlan)?.is_none() {
        return Ok(());
    }
    let shown = namespace.ip(&["-d", "link", "show", "veth0.42"])?;
    assert!(shown.contains("vlan protocol 802.1Q id 42"), "{shown}");
    assert_eq!(ipv4_of(&namespace, "veth0.42")?, "203.0.113.5/24");
    Ok(())
}

#[test]
fn an_active_backup_bond_takes_its_ports() -> Result<()> {
    if !can_run_as_root("an_active_backup_bond_takes_its_ports") {
        return Ok(());
    }
    let namespace = TestNamespace::new()?;
    namespace.add_veth("veth0", "veth1")?;
    namespace.add_veth("veth2", "veth3")?;
    let bond = InterfaceConfig {
        name: "bond0".into(),
        kind: InterfaceKind::ActiveBackupBond {
            ports: names(&["veth0", "veth2"]),
            primary: Some("veth2".into()),
        },
        addresses: vec![cidr("192.0.2.20/24")],
        mtu: None,
        up: true,
    };
    if apply_virtual(&namespace, bond)?.is_none() {
        let left = namespace.ip(&["link", "show"])?;
        assert!(!left.contains("bond0"), "{left}");
        return Ok(());
    }
    let shown = namespace.ip(&["-d", "link", "show", "bond0"])?;
    assert!(shown.contains("mode active-backup"), "{shown}");
    assert!(shown.contains("miimon 100"), "{shown}");
    assert!(shown.contains("primary veth2"), "{shown}");
    assert!(
        namespace
            .ip(&["link", "show", "veth2"])?
            .contains("master bond0")
    );
    assert_eq!(ipv4_of(&namespace, "bond0")?, "192.0.2.20/24");
    Ok(())
}

#[test]
fn a_bond_with_a_missing_primary_port_is_refused_and_nothing_is_left() -> Result<()> {
    if !can_run_as_root("a_bond_with_a_missing_primary_port_is_refused_and_nothing_is_left") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let desired = NetworkState {
        interfaces: vec![InterfaceConfig {
            name: "bond0".into(),
            kind: InterfaceKind::ActiveBackupBond {
                ports: names(&["veth0", "nope0"]),
                primary: Some("nope0".into()),
            },
            addresses: vec![],
            mtu: None,
            up: true,
        }],
        routes: vec![],
        dns: None,
    };
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &ApplyOptions::default()).await
        })?
        .unwrap_err();
    let ApplyError::Change { source, rollback } = &error else {
        panic!("expected a failed change, got {error:?}");
    };
    assert!(rollback.failures.is_empty(), "{rollback}");
    assert_eq!(source.to_string(), "no interface named \"nope0\"");
    let left = namespace.ip(&["link", "show"])?;
    assert!(!left.contains("bond0"), "{left}");
    assert!(!left.contains("master"), "{left}");
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    Ok(())
}

#[test]
fn a_failed_change_restores_the_previous_state() -> Result<()> {
    if !can_run_as_root("a_failed_change_restores_the_previous_state") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let directory = tempfile::tempdir()?;
    let resolv_conf = directory.path().join("resolv.conf");
    std::fs::write(&resolv_conf, "nameserver 192.0.2.53\n")?;
    let options = ApplyOptions {
        resolv_conf: Some(resolv_conf.clone()),
    };
    // The new gateway is not on the new network: adding the route fails after the address
    // has been changed.
    let mut desired = veth0_static("198.51.100.5/24", "203.0.113.1");
    desired.dns = Some(DnsConfig {
        nameservers: vec!["198.51.100.1".parse()?],
        search: vec![],
        options: vec![],
    });
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &options).await
        })?
        .unwrap_err();
    let ApplyError::Change { source, rollback } = &error else {
        panic!("expected a failed change, got {error:?}");
    };
    assert!(rollback.failures.is_empty(), "{rollback}");
    assert_eq!(
        source.to_string(),
        "add the route default via 203.0.113.1 dev veth0 failed"
    );
    assert_eq!(
        error.to_string(),
        "applying the network state failed; the previous state was restored"
    );
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev veth0"
    );
    assert_eq!(
        std::fs::read_to_string(&resolv_conf)?,
        "nameserver 192.0.2.53\n"
    );
    Ok(())
}

#[test]
fn a_failed_verification_restores_the_previous_state() -> Result<()> {
    if !can_run_as_root("a_failed_verification_restores_the_previous_state") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    // veth0 exists but is no VLAN: every change goes through, the check afterwards fails.
    let mut desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    desired.interfaces[0].kind = InterfaceKind::Vlan {
        parent: "veth1".into(),
        id: 5,
    };
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &ApplyOptions::default()).await
        })?
        .unwrap_err();
    let ApplyError::Verify {
        differences,
        rollback,
    } = &error
    else {
        panic!("expected a failed verification, got {error:?}");
    };
    assert!(rollback.failures.is_empty(), "{rollback}");
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(
        error.to_string(),
        "the network state differs after applying (veth0: is a veth interface, wanted a vlan); \
         the previous state was restored"
    );
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev veth0"
    );
    Ok(())
}

#[test]
fn an_unconfirmed_provisional_apply_rolls_back_by_itself() -> Result<()> {
    if !can_run_as_root("an_unconfirmed_provisional_apply_rolls_back_by_itself") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let mut desired = current_state_of(&namespace, &["veth0"])?;
    desired.move_to_bridge("veth0", "br0");
    let (applied_address, outcome) = {
        let desired = desired.clone();
        namespace.run(move || async move {
            let netlink = Netlink::connect().unwrap();
            let provisional = apply_provisional(
                &netlink,
                &desired,
                &ApplyOptions::default(),
                Duration::from_millis(300),
            )
            .await?;
            let applied = netlink
                .addresses("br0")
                .await
                .map_err(ApplyError::Snapshot)?;
            Ok::<_, ApplyError>((applied, provisional.outcome().await))
        })??
    };
    assert!(applied_address.contains(&cidr("192.0.2.10/24")));
    assert_eq!(outcome, ProvisionalOutcome::RolledBack(Default::default()));
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev veth0"
    );
    assert!(!namespace.ip(&["link", "show"])?.contains("br0"));
    Ok(())
}

#[test]
fn a_confirmed_provisional_apply_stays() -> Result<()> {
    if !can_run_as_root("a_confirmed_provisional_apply_stays") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    let outcome = namespace.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        let provisional = apply_provisional(
            &netlink,
            &desired,
            &ApplyOptions::default(),
            Duration::from_millis(300),
        )
        .await?;
        assert_eq!(provisional.report().changes.len(), 4);
        let outcome = provisional.confirm().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok::<_, ApplyError>(outcome)
    })??;
    assert_eq!(outcome, ProvisionalOutcome::Confirmed);
    assert_eq!(ipv4_of(&namespace, "veth0")?, "198.51.100.5/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 198.51.100.1 dev veth0 proto static"
    );
    Ok(())
}

#[test]
fn a_provisional_apply_rolls_back_at_once_when_asked() -> Result<()> {
    if !can_run_as_root("a_provisional_apply_rolls_back_at_once_when_asked") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    let (outcome, waited) = namespace.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        let provisional = apply_provisional(
            &netlink,
            &desired,
            &ApplyOptions::default(),
            Duration::from_secs(60),
        )
        .await?;
        let started = std::time::Instant::now();
        let outcome = provisional.roll_back().await;
        Ok::<_, ApplyError>((outcome, started.elapsed()))
    })??;
    assert_eq!(outcome, ProvisionalOutcome::RolledBack(Default::default()));
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev veth0"
    );
    Ok(())
}

fn current_state_of(namespace: &TestNamespace, interfaces: &[&str]) -> Result<NetworkState> {
    let interfaces = names(interfaces);
    Ok(namespace.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        current_state(&netlink, &interfaces).await
    })??)
}

#[test]
fn a_failed_resolv_conf_write_restores_the_previous_state() -> Result<()> {
    if !can_run_as_root("a_failed_resolv_conf_write_restores_the_previous_state") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let directory = tempfile::tempdir()?;
    let options = ApplyOptions {
        resolv_conf: Some(directory.path().join("missing-directory/resolv.conf")),
    };
    let mut desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    desired.dns = Some(DnsConfig {
        nameservers: vec!["198.51.100.1".parse()?],
        search: vec![],
        options: vec![],
    });
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &options).await
        })?
        .unwrap_err();
    let ApplyError::Dns { rollback, .. } = &error else {
        panic!("expected a DNS failure, got {error:?}");
    };
    assert!(rollback.failures.is_empty(), "{rollback}");
    assert_eq!(
        error.to_string(),
        "writing the DNS settings failed; the previous state was restored"
    );
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    assert_eq!(
        default_route(&namespace)?,
        "default via 192.0.2.1 dev veth0"
    );
    Ok(())
}

#[test]
fn an_unreadable_resolv_conf_stops_before_any_change() -> Result<()> {
    if !can_run_as_root("an_unreadable_resolv_conf_stops_before_any_change") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let directory = tempfile::tempdir()?;
    let options = ApplyOptions {
        resolv_conf: Some(directory.path().to_path_buf()),
    };
    let mut desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    desired.dns = Some(DnsConfig::default());
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &options).await
        })?
        .unwrap_err();
    assert!(matches!(error, ApplyError::Snapshot(_)), "{error:?}");
    assert_eq!(error.to_string(), "cannot read the current network state");
    assert_eq!(ipv4_of(&namespace, "veth0")?, "192.0.2.10/24");
    Ok(())
}

#[test]
fn an_existing_interface_that_is_missing_is_named() -> Result<()> {
    if !can_run_as_root("an_existing_interface_that_is_missing_is_named") {
        return Ok(());
    }
    let namespace = configured_namespace()?;
    let mut desired = veth0_static("198.51.100.5/24", "198.51.100.1");
    desired.interfaces[0].name = "nosuch0".into();
    desired.routes.clear();
    let error = namespace
        .run(move || async move {
            let netlink = Netlink::connect().unwrap();
            apply(&netlink, &desired, &ApplyOptions::default()).await
        })?
        .unwrap_err();
    let ApplyError::Change { source, .. } = &error else {
        panic!("expected a failed change, got {error:?}");
    };
    assert_eq!(source.to_string(), "no interface named \"nosuch0\"");
    Ok(())
}

/// The global IPv6 addresses of `interface`, as `ip` shows them.
fn global_ipv6_of(namespace: &TestNamespace, interface: &str) -> Result<Vec<String>> {
    let shown = namespace.ip(&[
        "-6", "-o", "address", "show", "dev", interface, "scope", "global",
    ])?;
    Ok(shown
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .map(String::from)
        .collect())
}

#[test]
fn addresses_the_kernel_made_from_router_advertisements_are_left_alone() -> Result<()> {
    if !can_run_as_root("addresses_the_kernel_made_from_router_advertisements_are_left_alone") {
        return Ok(());
    }
    let ServerAndClient { server, client } = ServerAndClient::new()?;
    server.ip(&["address", "add", "2001:db8:1::1/64", "dev", "srv0", "nodad"])?;
    let _router = Dnsmasq::start(
        server.name(),
        "srv0",
        "192.0.2.100,192.0.2.150",
        &["--enable-ra", "--dhcp-range=2001:db8:1::,ra-only,64"],
    )?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let slaac = loop {
        if let Some(address) = global_ipv6_of(&client, "cl0")?
            .into_iter()
            .find(|address| address.starts_with("2001:db8:1:"))
        {
            break address;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "cl0 made no address from the router advertisements in 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let desired = NetworkState {
        interfaces: vec![InterfaceConfig {
            name: "cl0".into(),
            kind: InterfaceKind::Existing,
            addresses: vec![cidr("192.0.2.10/24")],
            mtu: None,
            up: true,
        }],
        routes: vec![Route::default_via("192.0.2.1".parse()?, "cl0")],
        dns: None,
    };
    let (report, observed) = client.run(move || async move {
        let netlink = Netlink::connect().unwrap();
        let report = apply(&netlink, &desired, &ApplyOptions::default()).await?;
        let observed = current_state(&netlink, &names(&["cl0"])).await?;
        Ok::<_, anyhow::Error>((report, observed))
    })??;
    assert_eq!(
        report.changes,
        [
            "add 192.0.2.10/24 to cl0".to_string(),
            "add the route default via 192.0.2.1 dev cl0".into(),
        ]
    );
    assert_eq!(observed.interfaces[0].addresses, [cidr("192.0.2.10/24")]);
    assert!(
        global_ipv6_of(&client, "cl0")?.contains(&slaac),
        "{slaac} was removed from cl0"
    );
    Ok(())
}
