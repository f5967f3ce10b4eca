//! The host network: the cards and the network in effect, and changes made safely.
//!
//! A change is applied provisionally by PID 1 and rolled back unless it is confirmed in
//! time, so a change that cuts the client off undoes itself: apply, then confirm from
//! wherever the host still answers (the same address, or the new one with a new login).
//! A change the host undid is `409 rolled_back` with the reason.
//!
//! The section in effect is given twice: as the TOML text the editor starts from, and read
//! by mfv-config into one entry per link (interface, VLAN, bond, bridge) with its addresses
//! and ports, so that a page or a script shows the layout without parsing TOML itself.

use mfv_api::{NetworkOutcome, Request as DaemonRequest, Response as DaemonResponse};
use mfv_auth::Permission;
use mfv_config::schema::{InterfaceConfig, InterfaceMode, NetworkConfig, parse_network_section};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::links::ask_host;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::daemon::{
    ANSWER_TIMEOUT, NETWORK_TIMEOUT, NetworkCard, network_cards, network_outcome, rolled_back,
    unexpected_outcome,
};
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/network",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<NetworkView>),
            operation: "get_network",
            summary: "The network cards (name, MAC, driver, link, speed) and the [network] \
                      section in effect, as TOML and read into its links (interfaces, VLANs, \
                      bonds, the bridge) with their addresses, gateways and ports",
            handler: get_network,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/network/apply",
            access: Access::Allowed(Permission::ManageNetwork),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ApplyRequest>),
            answer: Answer::Ok(schema::<Applied>),
            operation: "apply_network",
            summary: "Apply a [network] section provisionally: it is rolled back unless \
                      confirmed within confirm_within_secs (1 to 600)",
            handler: apply_network,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/network/confirm",
            access: Access::Allowed(Permission::ManageNetwork),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ConfirmRequest>),
            answer: Answer::Ok(schema::<Confirmed>),
            operation: "confirm_network",
            summary: "Keep a provisionally applied network change, by its apply_id",
            handler: confirm_network,
        },
    ]
}

/// What `POST /api/v1/network/apply` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    /// The `[network]` section, header included.
    network_toml: String,
    /// Seconds the host waits for the confirmation.
    confirm_within_secs: u32,
}

/// What `POST /api/v1/network/confirm` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    /// The change to keep.
    apply_id: u64,
}

/// A change applied and waiting for its confirmation.
#[derive(Debug, Serialize, JsonSchema)]
struct Applied {
    /// What the confirmation names.
    apply_id: u64,
    /// Seconds left to confirm.
    confirm_within_secs: u32,
    /// What was changed, one line each.
    changes: Vec<String>,
}

/// What `GET /api/v1/network` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct NetworkView {
    /// The network cards.
    interfaces: Vec<NetworkCard>,
    /// The `[network]` section in effect, if the host has one.
    in_effect: Option<String>,
    /// The same section read: its links and DNS; absent when `in_effect` is.
    layout: Option<NetworkLayout>,
}

/// The `[network]` section in effect, read.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
struct NetworkLayout {
    /// Every link the section brings up, in the section's order; a bridge without an
    /// interface entry of its own comes last.
    links: Vec<ConfiguredLink>,
    /// The name servers written to resolv.conf; empty: those learned by DHCP.
    dns_servers: Vec<String>,
    /// The search domains, tried in order for short names.
    dns_search: Vec<String>,
}

/// What a link is, as the host makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum LinkKind {
    /// A link the host has already (a network card): configured, not created.
    Interface,
    /// An 802.1Q VLAN link on a parent link.
    Vlan,
    /// An active-backup bond of its ports.
    Bond,
    /// The Linux bridge VM NICs attach to, over its ports.
    Bridge,
}

/// How a link gets its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum AddressMode {
    /// A DHCPv4 client.
    Dhcp,
    /// The addresses and gateways of the section.
    Static,
    /// Up without addresses: a bridge or bond port, a VLAN parent.
    Manual,
}

/// One link of the section.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
struct ConfiguredLink {
    /// The kernel's name, e.g. `eth0`, `eth0.10`, `br0`.
    name: String,
    /// What the link is.
    kind: LinkKind,
    /// How it gets its addresses.
    mode: AddressMode,
    /// Static addresses with prefix length, e.g. `192.0.2.10/24`.
    addresses: Vec<String>,
    /// The IPv4 default gateway through this link.
    gateway: Option<String>,
    /// The IPv6 default gateway through this link.
    gateway6: Option<String>,
    /// The MTU in bytes, where the section sets one.
    mtu: Option<u32>,
    /// A bridge's or bond's ports; empty for other links.
    ports: Vec<String>,
    /// A VLAN's parent link.
    vlan_parent: Option<String>,
    /// A VLAN's 802.1Q id.
    vlan_id: Option<u16>,
    /// A bond's preferred port.
    bond_primary: Option<String>,
    /// Whether a bridge runs the spanning tree protocol; absent for other links.
    stp: Option<bool>,
    /// The bridge or bond this link is a port of.
    port_of: Option<String>,
}

/// What a confirmation answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Confirmed {
    /// The change kept.
    apply_id: u64,
    /// Always `confirmed`.
    outcome: &'static str,
}

fn get_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let host = call.state.host.as_ref();
        let inventory =
            ask_host(
                host,
                DaemonRequest::Inventory,
                ANSWER_TIMEOUT,
                |response| match response {
                    DaemonResponse::Inventory { inventory } => Some(inventory),
                    _ => None,
                },
            )
            .await?;
        let interfaces = network_cards(inventory)?;
        let in_effect = ask_host(
            host,
            DaemonRequest::HostStatus,
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::HostStatus(status) => Some(status.network_in_effect),
                _ => None,
            },
        )
        .await?;
        let layout = in_effect.as_deref().map(network_layout).transpose()?;
        Ok(json_response(
            StatusCode::OK,
            &NetworkView {
                interfaces,
                in_effect,
                layout,
            },
        ))
    })
}

fn apply_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let ApplyRequest {
            network_toml,
            confirm_within_secs,
        } = call.json()?;
        let outcome = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::NetworkApply {
                network_toml,
                confirm_within_secs,
            },
            NETWORK_TIMEOUT,
            network_outcome,
        )
        .await?;
        match outcome {
            NetworkOutcome::Applied {
                apply_id,
                confirm_within_secs,
                changes,
            } => {
                if let Some(caller) = &call.caller {
                    println!(
                        "mfv-web: {} applied network change {apply_id} from {}, to be \
                         confirmed within {confirm_within_secs} s",
                        caller.username, call.client
                    );
                }
                Ok(json_response(
                    StatusCode::OK,
                    &Applied {
                        apply_id,
                        confirm_within_secs,
                        changes,
                    },
                ))
            }
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason)),
            other => Err(unexpected_outcome(&other)),
        }
    })
}

fn confirm_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let ConfirmRequest { apply_id } = call.json()?;
        let outcome = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::NetworkConfirm { apply_id },
            NETWORK_TIMEOUT,
            network_outcome,
        )
        .await?;
        match outcome {
            NetworkOutcome::Confirmed => Ok(json_response(
                StatusCode::OK,
                &Confirmed {
                    apply_id,
                    outcome: "confirmed",
                },
            )),
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason)),
            other => Err(unexpected_outcome(&other)),
        }
    })
}

/// The section in effect `text` read into its links, or the error saying the host daemon
/// published a section this server cannot read.
fn network_layout(text: &str) -> Result<NetworkLayout, ApiError> {
    let network = parse_network_section(text).map_err(|errors| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "internal",
            format!("the host daemon's [network] section in effect cannot be read: {errors}"),
        )
    })?;
    let bridge_entry = network.bridge.as_ref().filter(|bridge| {
        !network
            .interfaces
            .iter()
            .any(|interface| interface.name == bridge.name)
    });
    let mut links: Vec<ConfiguredLink> = network
        .interfaces
        .iter()
        .map(|interface| configured_link(interface, &network))
        .collect();
    links.extend(bridge_entry.map(|bridge| ConfiguredLink {
        name: bridge.name.clone(),
        kind: LinkKind::Bridge,
        mode: AddressMode::Manual,
        addresses: Vec::new(),
        gateway: None,
        gateway6: None,
        mtu: None,
        ports: bridge.ports.clone(),
        vlan_parent: None,
        vlan_id: None,
        bond_primary: None,
        stp: Some(bridge.stp),
        port_of: None,
    }));
    Ok(NetworkLayout {
        links,
        dns_servers: network
            .dns
            .servers
            .iter()
            .map(ToString::to_string)
            .collect(),
        dns_search: network.dns.search,
    })
}

/// `interface` as a link of `network`: what it is (by the same rule the host makes links
/// by: a VLAN, else a bond, else the bridge by name, else a link the host has) and whose port
/// it is.
fn configured_link(interface: &InterfaceConfig, network: &NetworkConfig) -> ConfiguredLink {
    let bridge = network
        .bridge
        .as_ref()
        .filter(|bridge| bridge.name == interface.name);
    let kind = match (&interface.vlan, &interface.bond, bridge) {
        (Some(_), _, _) => LinkKind::Vlan,
        (None, Some(_), _) => LinkKind::Bond,
        (None, None, Some(_)) => LinkKind::Bridge,
        (None, None, None) => LinkKind::Interface,
    };
    let ports = match (kind, &interface.bond, bridge) {
        (LinkKind::Bond, Some(bond), _) => bond.ports.clone(),
        (LinkKind::Bridge, _, Some(bridge)) => bridge.ports.clone(),
        _ => Vec::new(),
    };
    let port_of = network
        .bridge
        .iter()
        .filter(|bridge| bridge.ports.contains(&interface.name))
        .map(|bridge| bridge.name.clone())
        .chain(
            network
                .interfaces
                .iter()
                .filter(|other| {
                    other
                        .bond
                        .as_ref()
                        .is_some_and(|bond| bond.ports.contains(&interface.name))
                })
                .map(|bond| bond.name.clone()),
        )
        .next();
    ConfiguredLink {
        name: interface.name.clone(),
        kind,
        mode: match interface.mode {
            InterfaceMode::Dhcp => AddressMode::Dhcp,
            InterfaceMode::Static => AddressMode::Static,
            InterfaceMode::Manual => AddressMode::Manual,
        },
        addresses: interface
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect(),
        gateway: interface.gateway.map(|gateway| gateway.to_string()),
        gateway6: interface.gateway6.map(|gateway| gateway.to_string()),
        mtu: interface.mtu,
        ports,
        vlan_parent: interface.vlan.as_ref().map(|vlan| vlan.parent.clone()),
        vlan_id: interface.vlan.as_ref().map(|vlan| vlan.id),
        bond_primary: interface
            .bond
            .as_ref()
            .and_then(|bond| bond.primary.clone()),
        stp: bridge.map(|bridge| bridge.stp),
        port_of,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_read_into_its_links_and_an_unreadable_one_is_refused() {
        let layout = network_layout(
            "[network]\n\
             [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
             [[network.interfaces]]\nname = \"eth1\"\nmode = \"manual\"\n\
             [[network.interfaces]]\nname = \"eth2\"\nmode = \"manual\"\n\
             [[network.interfaces]]\nname = \"bond0\"\nmode = \"manual\"\n\
             bond = { ports = [\"eth1\", \"eth2\"], primary = \"eth1\" }\n\
             [[network.interfaces]]\nname = \"eth0.10\"\nmode = \"dhcp\"\n\
             vlan = { parent = \"eth0\", id = 10 }\n\
             [[network.interfaces]]\nname = \"br0\"\nmode = \"static\"\n\
             addresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\n\
             gateway = \"192.0.2.1\"\nmtu = 9000\n\
             [network.bridge]\nports = [\"eth0\", \"bond0\"]\nstp = true\n\
             [network.dns]\nservers = [\"192.0.2.53\"]\nsearch = [\"example.org\"]\n",
        )
        .unwrap();
        let shown: Vec<_> = layout
            .links
            .iter()
            .map(|link| {
                (
                    link.name.as_str(),
                    link.kind,
                    link.mode,
                    link.ports.join(","),
                    link.port_of.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "eth0",
                    LinkKind::Interface,
                    AddressMode::Manual,
                    String::new(),
                    Some("br0")
                ),
                (
                    "eth1",
                    LinkKind::Interface,
                    AddressMode::Manual,
                    String::new(),
                    Some("bond0")
                ),
                (
                    "eth2",
                    LinkKind::Interface,
                    AddressMode::Manual,
                    String::new(),
                    Some("bond0")
                ),
                (
                    "bond0",
                    LinkKind::Bond,
                    AddressMode::Manual,
                    "eth1,eth2".to_owned(),
                    Some("br0")
                ),
                (
                    "eth0.10",
                    LinkKind::Vlan,
                    AddressMode::Dhcp,
                    String::new(),
                    None
                ),
                (
                    "br0",
                    LinkKind::Bridge,
                    AddressMode::Static,
                    "eth0,bond0".to_owned(),
                    None
                ),
            ]
        );
        let [.., bond, vlan, bridge] = &layout.links[..] else {
            panic!("{layout:?}");
        };
        assert_eq!(bond.bond_primary.as_deref(), Some("eth1"));
        assert_eq!(
            (vlan.vlan_parent.as_deref(), vlan.vlan_id),
            (Some("eth0"), Some(10))
        );
        assert_eq!(bridge.addresses, ["192.0.2.10/24", "2001:db8::10/64"]);
        assert_eq!(
            (bridge.gateway.as_deref(), bridge.mtu, bridge.stp),
            (Some("192.0.2.1"), Some(9000), Some(true))
        );
        assert_eq!(
            (layout.dns_servers, layout.dns_search),
            (
                vec!["192.0.2.53".to_owned()],
                vec!["example.org".to_owned()]
            )
        );

        // A bridge without an interface entry of its own: up, without addresses, last.
        let bare = network_layout(
            "[network]\n[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
             [network.bridge]\nname = \"vmbr0\"\nports = [\"eth0\"]\n",
        )
        .unwrap();
        let bridge = bare.links.last().unwrap();
        assert_eq!(
            (bridge.name.as_str(), bridge.kind, bridge.mode, bridge.stp),
            ("vmbr0", LinkKind::Bridge, AddressMode::Manual, Some(false))
        );
        assert_eq!(bridge.ports, ["eth0"]);

        let unreadable = network_layout("[network]\nbridges = 3\n").unwrap_err();
        assert_eq!(unreadable.status, StatusCode::BAD_GATEWAY);
        assert!(
            unreadable
                .body
                .message
                .contains("[network] section in effect cannot be read"),
            "{}",
            unreadable.body.message
        );
    }
}
