//! Virtual interfaces: bridges for VMs, VLAN sub-interfaces, active-backup bonds, and ports.

use nix::errno::Errno;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::packet_route::link::{BondMode, LinkMessage};
use rtnetlink::{LinkBond, LinkBridge, LinkUnspec, LinkVlan};

use super::{Link, NetError, Netlink, Route, kernel_errno, request_failed};
use crate::IpCidr;

/// MII link monitoring interval of the bonds created here, in milliseconds.
const BOND_MIIMON_MS: u32 = 100;

/// What [`Netlink::move_to_bridge`] moved from the port to the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedConfig {
    /// The addresses now on the bridge.
    pub addresses: Vec<IpCidr>,
    /// The routes now leaving through the bridge.
    pub routes: Vec<Route>,
}

impl Netlink {
    /// Creates a bridge, administratively down.
    pub async fn create_bridge(&self, name: &str) -> Result<(), NetError> {
        let message = LinkBridge::new(name).down().build();
        self.create_link(message, name, "bridge").await
    }

    /// Creates the VLAN sub-interface `name` with tag `id` on `parent`, administratively down.
    pub async fn create_vlan(&self, name: &str, parent: &str, id: u16) -> Result<(), NetError> {
        let parent_index = self.index_of(parent).await?;
        let message = LinkVlan::new(name, parent_index, id).down().build();
        self.create_link(message, name, "vlan").await
    }

    /// Creates an active-backup bond, administratively down, that checks the link of its ports
    /// every 100 ms (MII monitoring) and fails over when the active one loses it. `primary`,
    /// which must exist, is the port that is active whenever it has link, once enslaved.
    pub async fn create_active_backup_bond(
        &self,
        name: &str,
        primary: Option<&str>,
    ) -> Result<(), NetError> {
        let mut builder = LinkBond::new(name)
            .mode(BondMode::ActiveBackup)
            .miimon(BOND_MIIMON_MS);
        if let Some(primary) = primary {
            builder = builder.primary(self.index_of(primary).await?);
        }
        let message = builder.down().build();
        match self.create_link(message.clone(), name, "bond").await {
            Err(NetError::LinkExists { .. }) => {
                // The kernel loads the bonding driver on demand for this request, and the
                // driver creates `bond0` when it loads (its `max_bonds` parameter is 1 unless
                // set to 0) before the request is retried: an empty bond that is down is that
                // one, and gets these settings instead.
                let links = self.links().await?;
                if !is_fresh_bond(name, &links) {
                    return Err(NetError::LinkExists { name: name.into() });
                }
                self.handle()
                    .link()
                    .add(message)
                    .set_flags(NLM_F_REQUEST | NLM_F_ACK)
                    .execute()
                    .await
                    .map_err(|error| request_failed(format!("configure the bond {name}"), error))
            }
            other => other,
        }
    }

    /// Makes `port` a port of the bridge or bond `master`. A bond port is set down first, as
    /// the bonding driver requires; the driver brings it up again.
    pub async fn set_master(&self, port: &str, master: &str) -> Result<(), NetError> {
        let master_link = self.link_by_name(master).await?;
        let port_index = self.index_of(port).await?;
        if master_link.kind.as_deref() == Some("bond") {
            self.set_down(port).await?;
        }
        let message = LinkUnspec::new_with_index(port_index)
            .controller(master_link.index)
            .build();
        self.set_link(message, format!("make {port} a port of {master}"))
            .await
    }

    /// Takes `port` out of its bridge or bond.
    pub async fn remove_master(&self, port: &str) -> Result<(), NetError> {
        let port_index = self.index_of(port).await?;
        let message = LinkUnspec::new_with_index(port_index)
            .nocontroller()
            .build();
        self.set_link(message, format!("take {port} out of its bridge or bond"))
            .await
    }

    /// Makes `port` a port of `bridge` (created if missing) and moves the port's configured
    /// addresses (not those the kernel made, which it makes again on the bridge) and the routes leaving through it to the bridge, so a host
    /// reached through the port keeps its address once VMs share the port. Sets both up.
    pub async fn move_to_bridge(&self, port: &str, bridge: &str) -> Result<MovedConfig, NetError> {
        let addresses = self.configured_addresses(port).await?;
        let routes: Vec<Route> = self
            .routes()
            .await?
            .into_iter()
            .filter(|route| route.interface == port)
            .map(|route| Route {
                interface: bridge.into(),
                ..route
            })
            .collect();
        match self.create_bridge(bridge).await {
            Ok(()) | Err(NetError::LinkExists { .. }) => {}
            Err(error) => return Err(error),
        }
        self.set_master(port, bridge).await?;
        for address in &addresses {
            self.remove_address(port, *address).await?;
        }
        self.set_up(port).await?;
        self.set_up(bridge).await?;
        for address in &addresses {
            self.add_address(bridge, *address).await?;
        }
        for route in &routes {
            match self.add_route(route).await {
                Ok(()) | Err(NetError::RouteExists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(MovedConfig { addresses, routes })
    }

    async fn create_link(
        &self,
        message: LinkMessage,
        name: &str,
        kind: &'static str,
    ) -> Result<(), NetError> {
        let result = self.handle().link().add(message).execute().await;
        match result {
            Ok(()) => Ok(()),
            Err(error) => match kernel_errno(&error) {
                Some(errno) if errno == Errno::EEXIST as i32 => {
                    Err(NetError::LinkExists { name: name.into() })
                }
                Some(errno) if errno == Errno::EOPNOTSUPP as i32 => {
                    Err(NetError::LinkKindUnsupported {
                        name: name.into(),
                        kind,
                    })
                }
                _ => Err(request_failed(format!("create the {kind} {name}"), error)),
            },
        }
    }
}

/// Whether `name` in `links` is a bond that is down and has no ports, as the bonding driver
/// creates it when it loads.
fn is_fresh_bond(name: &str, links: &[Link]) -> bool {
    links
        .iter()
        .any(|link| link.name == name && link.kind.as_deref() == Some("bond") && !link.admin_up)
        && !links
            .iter()
            .any(|link| link.master.as_deref() == Some(name))
}

/// Whether the address is an IPv6 link-local one (`fe80::/10`), which the kernel manages.
pub(crate) fn is_link_local(address: &IpCidr) -> bool {
    match address {
        IpCidr::V4(_) => false,
        IpCidr::V6(v6) => v6.address().segments()[0] & 0xffc0 == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, kind: Option<&str>, admin_up: bool, master: Option<&str>) -> Link {
        Link {
            name: name.into(),
            index: 1,
            mac: None,
            mtu: 1500,
            admin_up,
            state: crate::OperState::Down,
            carrier: false,
            kind: kind.map(Into::into),
            master: master.map(Into::into),
        }
    }

    #[test]
    fn only_an_empty_bond_that_is_down_is_fresh() {
        let fresh = [link("bond0", Some("bond"), false, None)];
        assert!(is_fresh_bond("bond0", &fresh));
        assert!(!is_fresh_bond("bond1", &fresh));
        let up = [link("bond0", Some("bond"), true, None)];
        assert!(!is_fresh_bond("bond0", &up));
        let with_port = [
            link("bond0", Some("bond"), false, None),
            link("eth0", None, true, Some("bond0")),
        ];
        assert!(!is_fresh_bond("bond0", &with_port));
        let not_a_bond = [link("bond0", Some("bridge"), false, None)];
        assert!(!is_fresh_bond("bond0", &not_a_bond));
    }

    #[test]
    fn only_fe80_slash_10_is_link_local() {
        assert!(is_link_local(&"fe80::1/64".parse().unwrap()));
        assert!(is_link_local(&"febf::1/64".parse().unwrap()));
        assert!(!is_link_local(&"fec0::1/64".parse().unwrap()));
        assert!(!is_link_local(&"2001:db8::1/64".parse().unwrap()));
        assert!(!is_link_local(&"192.0.2.1/24".parse().unwrap()));
    }
}
