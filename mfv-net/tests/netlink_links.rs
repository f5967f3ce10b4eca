//! Root-only tests of links, addresses and routes through netlink, in throwaway namespaces.
// Helpers outside the #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use anyhow::Result;
use mfv_net::{IpCidr, NetError, Netlink, OperState, Route};
use support::{TestNamespace, can_run_as_root};

fn cidr(text: &str) -> IpCidr {
    text.parse().unwrap()
}

/// A namespace with the veth pair veth0/veth1, both up.
fn namespace_with_veth() -> Result<TestNamespace> {
    let namespace = TestNamespace::new()?;
    namespace.add_veth("veth0", "veth1")?;
    Ok(namespace)
}

#[test]
fn link_table_describes_the_veth_pair() -> Result<()> {
    if !can_run_as_root("link_table_describes_the_veth_pair") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let links = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink
            .wait_for_carrier("veth0", Duration::from_secs(2))
            .await?;
        netlink.links().await
    })??;
    let names: Vec<&str> = links.iter().map(|link| link.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in ["lo", "veth0", "veth1"] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert!(links.windows(2).all(|pair| pair[0].index < pair[1].index));
    let veth0 = links.iter().find(|link| link.name == "veth0").unwrap();
    assert_eq!(veth0.kind.as_deref(), Some("veth"));
    assert_eq!(veth0.mtu, 1500);
    assert!(veth0.admin_up && veth0.carrier);
    assert_eq!(veth0.state, OperState::Up);
    assert_eq!(veth0.master, None);
    let mac = veth0.mac.as_deref().unwrap();
    let shown = namespace.ip(&["link", "show", "veth0"])?;
    assert!(shown.contains(&format!("link/ether {mac} ")), "{shown}");
    let json = serde_json::to_value(veth0)?;
    assert_eq!(json["kind"], "veth");
    assert_eq!(json["state"], "up");
    Ok(())
}

#[test]
fn mtu_and_admin_state_are_set() -> Result<()> {
    if !can_run_as_root("mtu_and_admin_state_are_set") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let link = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink.set_mtu("veth0", 1400).await?;
        netlink.set_down("veth0").await?;
        netlink.link_by_name("veth0").await
    })??;
    assert_eq!(link.mtu, 1400);
    assert!(!link.admin_up);
    let shown = namespace.ip(&["link", "show", "veth0"])?;
    assert!(
        shown.contains("mtu 1400") && shown.contains("state DOWN"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn waiting_for_carrier_ends_at_the_deadline() -> Result<()> {
    if !can_run_as_root("waiting_for_carrier_ends_at_the_deadline") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    namespace.ip(&["link", "set", "veth1", "down"])?;
    let error = namespace
        .run(|| async {
            let netlink = Netlink::connect()?;
            netlink
                .wait_for_carrier("veth0", Duration::from_millis(150))
                .await
        })?
        .unwrap_err();
    assert!(matches!(error, NetError::NoCarrier { .. }), "{error:?}");
    assert_eq!(error.to_string(), "veth0 has no carrier after 150ms");
    Ok(())
}

#[test]
fn static_address_and_default_route() -> Result<()> {
    if !can_run_as_root("static_address_and_default_route") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let (addresses, routes) = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink.add_address("veth0", cidr("192.0.2.10/24")).await?;
        netlink
            .add_address("veth0", cidr("2001:db8::10/64"))
            .await?;
        netlink
            .add_route(&Route::default_via("192.0.2.1".parse().unwrap(), "veth0"))
            .await?;
        netlink
            .add_route(&Route {
                destination: cidr("198.51.100.0/24"),
                gateway: Some("192.0.2.254".parse().unwrap()),
                interface: "veth0".into(),
                metric: Some(20),
            })
            .await?;
        Ok::<_, NetError>((netlink.addresses("veth0").await?, netlink.routes().await?))
    })??;
    assert_eq!(
        &addresses[..2],
        [cidr("192.0.2.10/24"), cidr("2001:db8::10/64")]
    );
    let printed: Vec<String> = routes.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            "default via 192.0.2.1 dev veth0",
            "198.51.100.0/24 via 192.0.2.254 dev veth0 metric 20"
        ]
    );
    let shown = namespace.ip(&["route", "show"])?;
    assert!(shown.contains("default via 192.0.2.1 dev veth0"), "{shown}");
    assert!(
        shown.contains("198.51.100.0/24 via 192.0.2.254 dev veth0"),
        "{shown}"
    );

    let left = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink
            .remove_route(&Route::default_via("192.0.2.1".parse().unwrap(), "veth0"))
            .await?;
        netlink
            .remove_address("veth0", cidr("192.0.2.10/24"))
            .await?;
        netlink.routes().await
    })??;
    assert!(left.is_empty(), "{left:?}");
    Ok(())
}

#[test]
fn a_nonexistent_interface_is_named() -> Result<()> {
    if !can_run_as_root("a_nonexistent_interface_is_named") {
        return Ok(());
    }
    let namespace = TestNamespace::new()?;
    let errors = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        Ok::<_, NetError>(vec![
            netlink.set_up("nosuch0").await.unwrap_err(),
            netlink
                .add_address("nosuch0", cidr("192.0.2.10/24"))
                .await
                .unwrap_err(),
            netlink.link_by_name("nosuch0").await.unwrap_err(),
            netlink
                .add_route(&Route::default_via("192.0.2.1".parse().unwrap(), "nosuch0"))
                .await
                .unwrap_err(),
        ])
    })??;
    for error in errors {
        assert!(matches!(error, NetError::NoSuchInterface { ref name } if name == "nosuch0"));
        assert_eq!(error.to_string(), "no interface named \"nosuch0\"");
    }
    Ok(())
}

#[test]
fn a_duplicate_address_is_named_as_existing() -> Result<()> {
    if !can_run_as_root("a_duplicate_address_is_named_as_existing") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let error = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink.add_address("veth0", cidr("192.0.2.10/24")).await?;
        Ok::<_, NetError>(
            netlink
                .add_address("veth0", cidr("192.0.2.10/24"))
                .await
                .unwrap_err(),
        )
    })??;
    assert!(matches!(error, NetError::AddressExists { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "veth0 already has the address 192.0.2.10/24"
    );
    Ok(())
}

#[test]
fn missing_and_duplicate_routes_and_addresses_are_named() -> Result<()> {
    if !can_run_as_root("missing_and_duplicate_routes_and_addresses_are_named") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let messages = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink.add_address("veth0", cidr("192.0.2.10/24")).await?;
        let route = Route::default_via("192.0.2.1".parse().unwrap(), "veth0");
        netlink.add_route(&route).await?;
        Ok::<_, NetError>(vec![
            netlink.add_route(&route).await.unwrap_err().to_string(),
            netlink
                .remove_address("veth0", cidr("192.0.2.11/24"))
                .await
                .unwrap_err()
                .to_string(),
            netlink
                .remove_route(&Route::default_via("192.0.2.2".parse().unwrap(), "veth0"))
                .await
                .unwrap_err()
                .to_string(),
        ])
    })??;
    assert_eq!(
        messages,
        [
            "the route default via 192.0.2.1 dev veth0 exists already",
            "veth0 has no address 192.0.2.11/24",
            "there is no route default via 192.0.2.2 dev veth0",
        ]
    );
    Ok(())
}

#[test]
fn a_route_through_an_unreachable_gateway_is_a_kernel_error() -> Result<()> {
    if !can_run_as_root("a_route_through_an_unreachable_gateway_is_a_kernel_error") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let error = namespace
        .run(|| async {
            let netlink = Netlink::connect()?;
            netlink
                .add_route(&Route::default_via("203.0.113.1".parse().unwrap(), "veth0"))
                .await
        })?
        .unwrap_err();
    assert!(error.errno().is_some(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "add the route default via 203.0.113.1 dev veth0 failed"
    );
    Ok(())
}

#[test]
fn moving_a_port_to_a_bridge_keeps_its_address_and_default_route() -> Result<()> {
    if !can_run_as_root("moving_a_port_to_a_bridge_keeps_its_address_and_default_route") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    namespace.ip(&["address", "add", "192.0.2.10/24", "dev", "veth0"])?;
    namespace.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
    let (moved, bridge, port, port_addresses) = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        let moved = netlink.move_to_bridge("veth0", "br0").await?;
        Ok::<_, NetError>((
            moved,
            netlink.link_by_name("br0").await?,
            netlink.link_by_name("veth0").await?,
            netlink.addresses("veth0").await?,
        ))
    })??;
    assert_eq!(moved.addresses, [cidr("192.0.2.10/24")]);
    assert_eq!(moved.routes[0].to_string(), "default via 192.0.2.1 dev br0");
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    assert!(bridge.admin_up);
    assert_eq!(port.master.as_deref(), Some("br0"));
    assert!(
        port_addresses
            .iter()
            .all(|address| address.address().is_ipv6())
    );
    let shown = namespace.ip(&["-4", "address", "show", "br0"])?;
    assert!(shown.contains("inet 192.0.2.10/24"), "{shown}");
    let routes = namespace.ip(&["route", "show", "default"])?;
    assert_eq!(routes.trim(), "default via 192.0.2.1 dev br0 proto static");
    Ok(())
}

#[test]
fn a_route_added_by_another_tool_is_removed() -> Result<()> {
    if !can_run_as_root("a_route_added_by_another_tool_is_removed") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    namespace.ip(&["address", "add", "192.0.2.10/24", "dev", "veth0"])?;
    namespace.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
    namespace.ip(&["route", "add", "2001:db8:5::/48", "dev", "veth0"])?;
    namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink
            .remove_route(&Route::default_via("192.0.2.1".parse().unwrap(), "veth0"))
            .await?;
        netlink
            .remove_route(&Route {
                destination: cidr("2001:db8:5::/48"),
                gateway: None,
                interface: "veth0".into(),
                metric: None,
            })
            .await
    })??;
    assert_eq!(namespace.ip(&["route", "show", "default"])?, "");
    assert_eq!(
        namespace.ip(&["-6", "route", "show", "2001:db8:5::/48"])?,
        ""
    );
    assert!(
        namespace
            .ip(&["-4", "address", "show", "veth0"])?
            .contains("192.0.2.10/24")
    );
    Ok(())
}

#[test]
fn creating_an_existing_interface_is_named() -> Result<()> {
    if !can_run_as_root("creating_an_existing_interface_is_named") {
        return Ok(());
    }
    let namespace = namespace_with_veth()?;
    let errors = namespace.run(|| async {
        let netlink = Netlink::connect()?;
        netlink.create_bridge("br0").await?;
        Ok::<_, NetError>([
            netlink.create_bridge("br0").await.unwrap_err(),
            netlink.create_bridge("veth0").await.unwrap_err(),
        ])
    })??;
    assert_eq!(
        errors[0].to_string(),
        "an interface named \"br0\" exists already"
    );
    assert_eq!(
        errors[1].to_string(),
        "an interface named \"veth0\" exists already"
    );
    Ok(())
}
