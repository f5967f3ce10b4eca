//! The changes `mfv net` (and later the host daemon) makes to a running host, each read from
//! the kernel, computed with [`plan`](super::plan) and applied through mfv-net with
//! verification and rollback; and the view of the network they show.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use mfv_linux::check_interface_name;
use mfv_net::{
    ApplyOptions, ApplyReport, IpCidr, Link, NetError, Netlink, NetworkState, ProvisionalApply,
    Route, apply, apply_provisional, current_state,
};
use serde::Serialize;

use super::NetworkError;
use super::plan::{check_bond_ports, static_state, vlan_state};

/// One interface with its addresses. Serializes as the link's fields plus `addresses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceView {
    /// The link.
    #[serde(flatten)]
    pub link: Link,
    /// Its addresses.
    pub addresses: Vec<IpCidr>,
}

/// The interfaces with their addresses, and the routes: what `mfv net show` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkView {
    /// Every interface, in kernel order.
    pub interfaces: Vec<InterfaceView>,
    /// Every route of the main table.
    pub routes: Vec<Route>,
}

/// Reads the interfaces, their addresses and the routes.
pub async fn read_view(netlink: &Netlink) -> Result<NetworkView, NetworkError> {
    let mut interfaces = Vec::new();
    for link in netlink.links().await? {
        let addresses = match netlink.addresses(&link.name).await {
            Ok(addresses) => addresses,
            // Deleted since the listing: not there any more.
            Err(NetError::NoSuchInterface { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        interfaces.push(InterfaceView { link, addresses });
    }
    let routes = netlink.routes().await?;
    Ok(NetworkView { interfaces, routes })
}

/// Gives `interface` exactly `address`, a default route through `gateway` and `dns` as the
/// resolver's servers (written to `resolv_conf`); rolled back if anything fails.
pub async fn set_static(
    netlink: &Netlink,
    interface: &str,
    address: IpCidr,
    gateway: Option<IpAddr>,
    dns: &[IpAddr],
    resolv_conf: PathBuf,
) -> Result<ApplyReport, NetworkError> {
    let desired = static_state(interface, address, gateway, dns)?;
    netlink.link_by_name(interface).await?;
    let options = ApplyOptions {
        resolv_conf: desired.dns.as_ref().map(|_| resolv_conf),
    };
    applied(
        netlink,
        &desired,
        &options,
        format!("configure {interface}"),
    )
    .await
}

/// The state that makes `port` a port of `bridge` (created if missing), the bridge taking
/// over the port's addresses and routes.
pub async fn bridge_state(
    netlink: &Netlink,
    port: &str,
    bridge: &str,
) -> Result<NetworkState, NetworkError> {
    check_interface_name(bridge)?;
    netlink.link_by_name(port).await?;
    let mut desired = read_state(netlink, &[port.to_owned(), bridge.to_owned()]).await?;
    desired.move_to_bridge(port, bridge);
    Ok(desired)
}

/// Makes `port` a port of `bridge`: see [`bridge_state`].
pub async fn make_bridge(
    netlink: &Netlink,
    port: &str,
    bridge: &str,
) -> Result<ApplyReport, NetworkError> {
    let desired = bridge_state(netlink, port, bridge).await?;
    let action = format!("make {port} a port of {bridge}");
    applied(netlink, &desired, &ApplyOptions::default(), action).await
}

/// Makes `port` a port of `bridge` provisionally: the change rolls back by itself unless
/// confirmed within `within`.
pub async fn make_bridge_provisionally(
    netlink: &Netlink,
    port: &str,
    bridge: &str,
    within: Duration,
) -> Result<ProvisionalApply, NetworkError> {
    let desired = bridge_state(netlink, port, bridge).await?;
    apply_provisional(netlink, &desired, &ApplyOptions::default(), within)
        .await
        .map_err(|source| NetworkError::Apply {
            action: format!("make {port} a port of {bridge}"),
            source,
        })
}

/// Makes `ports` the ports of the active-backup bond `bond` (created if missing), which takes
/// over their addresses and routes; `primary` is active whenever it has link.
pub async fn make_bond(
    netlink: &Netlink,
    bond: &str,
    ports: &[String],
    primary: Option<&str>,
) -> Result<ApplyReport, NetworkError> {
    check_bond_ports(bond, ports, primary)?;
    for port in ports {
        netlink.link_by_name(port).await?;
    }
    let mut involved = ports.to_vec();
    involved.push(bond.to_owned());
    let mut desired = read_state(netlink, &involved).await?;
    desired.move_to_bond(ports, bond, primary);
    let action = format!("make {} the ports of {bond}", ports.join(", "));
    applied(netlink, &desired, &ApplyOptions::default(), action).await
}

/// Creates the VLAN `id` on `parent` as `name` (`PARENT.ID` when `None`) and sets it up,
/// keeping its addresses and routes when it exists already.
pub async fn make_vlan(
    netlink: &Netlink,
    parent: &str,
    id: u16,
    name: Option<&str>,
) -> Result<ApplyReport, NetworkError> {
    let name = name.map_or_else(|| format!("{parent}.{id}"), str::to_owned);
    check_interface_name(&name)?;
    netlink.link_by_name(parent).await?;
    let existing = read_state(netlink, std::slice::from_ref(&name)).await?;
    let desired = vlan_state(parent, id, &name, existing);
    let action = format!("create the VLAN {id} on {parent}");
    applied(netlink, &desired, &ApplyOptions::default(), action).await
}

async fn read_state(
    netlink: &Netlink,
    interfaces: &[String],
) -> Result<NetworkState, NetworkError> {
    current_state(netlink, interfaces)
        .await
        .map_err(|source| NetworkError::ReadState {
            interfaces: interfaces.join(", "),
            source,
        })
}

async fn applied(
    netlink: &Netlink,
    desired: &NetworkState,
    options: &ApplyOptions,
    action: String,
) -> Result<ApplyReport, NetworkError> {
    apply(netlink, desired, options)
        .await
        .map_err(|source| NetworkError::Apply { action, source })
}
