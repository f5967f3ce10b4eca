//! Routes of the main table: default routes and static routes through a gateway or a link.

use std::fmt;
use std::net::IpAddr;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use serde::{Deserialize, Serialize};

use super::{NetError, Netlink, kernel_errno, request_failed};
use crate::{IpCidr, Ipv4Cidr, Ipv6Cidr};

/// A unicast route of the main table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The network reached; `0.0.0.0/0` or `::/0` for a default route.
    pub destination: IpCidr,
    /// The next hop; `None` for a route straight onto the link.
    pub gateway: Option<IpAddr>,
    /// The interface the route leaves through.
    pub interface: String,
    /// The route's metric; `None` lets the kernel choose (0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
}

impl Route {
    /// A default route through `gateway` on `interface`.
    pub fn default_via(gateway: IpAddr, interface: &str) -> Route {
        let destination = match gateway {
            IpAddr::V4(_) => IpCidr::V4(Ipv4Cidr::ANY),
            IpAddr::V6(_) => IpCidr::V6(Ipv6Cidr::ANY),
        };
        Route {
            destination,
            gateway: Some(gateway),
            interface: interface.into(),
            metric: None,
        }
    }

    /// Whether this is a default route (prefix length 0).
    pub fn is_default(&self) -> bool {
        self.destination.prefix_len() == 0
    }

    /// Whether the kernel's `actual` route is this one: same destination, gateway and
    /// interface, and the same metric unless this route leaves the metric to the kernel.
    pub fn matches(&self, actual: &Route) -> bool {
        network_of(self.destination) == network_of(actual.destination)
            && self.gateway == actual.gateway
            && self.interface == actual.interface
            && (self.metric.is_none() || self.metric == actual.metric)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            f.write_str("default")?;
        } else {
            write!(f, "{}", network_of(self.destination))?;
        }
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        write!(f, " dev {}", self.interface)?;
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

/// The network of an address: host bits cleared.
fn network_of(cidr: IpCidr) -> IpCidr {
    match cidr {
        IpCidr::V4(v4) => IpCidr::V4(v4.network()),
        IpCidr::V6(v6) => IpCidr::V6(v6.network()),
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn family_message(family: AddressFamily) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family;
    message
}

impl Netlink {
    /// The configured unicast routes of the main table, IPv4 then IPv6: those the kernel adds by
    /// itself for an address's own network or from router advertisements are left out.
    pub async fn routes(&self) -> Result<Vec<Route>, NetError> {
        Ok(self
            .routes_as_sent()
            .await?
            .into_iter()
            .map(|(route, _)| route)
            .collect())
    }

    /// [`Netlink::routes`], each with the kernel's message, which [`Netlink::add_route_as_sent`]
    /// puts back exactly (protocol, scope, preferred source included).
    pub(crate) async fn routes_as_sent(&self) -> Result<Vec<(Route, RouteMessage)>, NetError> {
        let links = self.links().await?;
        let mut routes = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let messages: Vec<RouteMessage> = self
                .handle()
                .route()
                .get(family_message(family))
                .execute()
                .try_collect()
                .await
                .map_err(|error| request_failed("list the routes".into(), error))?;
            for message in messages {
                if let Some(route) = decode_route(&message, &links) {
                    routes.push((route, message));
                }
            }
        }
        Ok(routes)
    }

    /// Adds a route as [`Netlink::routes_as_sent`] read it; `route` names it in errors.
    pub(crate) async fn add_route_as_sent(
        &self,
        route: &Route,
        message: RouteMessage,
    ) -> Result<(), NetError> {
        let result = self.handle().route().add(message).execute().await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if kernel_errno(&error) == Some(Errno::EEXIST as i32) => {
                Err(NetError::RouteExists {
                    route: Box::new(route.clone()),
                })
            }
            Err(error) => Err(request_failed(format!("add the route {route}"), error)),
        }
    }

    /// Adds `route`; [`NetError::RouteExists`] if the kernel has it already.
    pub async fn add_route(&self, route: &Route) -> Result<(), NetError> {
        let message = self.route_message(route, Purpose::Add).await?;
        let result = self.handle().route().add(message).execute().await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if kernel_errno(&error) == Some(Errno::EEXIST as i32) => {
                Err(NetError::RouteExists {
                    route: Box::new(route.clone()),
                })
            }
            Err(error) => Err(request_failed(format!("add the route {route}"), error)),
        }
    }

    /// Removes `route`, whoever added it; [`NetError::RouteNotPresent`] if the kernel does not
    /// have it.
    pub async fn remove_route(&self, route: &Route) -> Result<(), NetError> {
        let message = self.route_message(route, Purpose::Remove).await?;
        let result = self.handle().route().del(message).execute().await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if kernel_errno(&error) == Some(Errno::ESRCH as i32) => {
                Err(NetError::RouteNotPresent {
                    route: Box::new(route.clone()),
                })
            }
            Err(error) => Err(request_failed(format!("remove the route {route}"), error)),
        }
    }

    async fn route_message(
        &self,
        route: &Route,
        purpose: Purpose,
    ) -> Result<RouteMessage, NetError> {
        let index = self.index_of(&route.interface).await?;
        let destination = network_of(route.destination);
        let mut message = family_message(match destination {
            IpCidr::V4(_) => AddressFamily::Inet,
            IpCidr::V6(_) => AddressFamily::Inet6,
        });
        message.header.destination_prefix_length = destination.prefix_len();
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        match purpose {
            Purpose::Add => {
                message.header.protocol = RouteProtocol::Static;
                message.header.kind = RouteType::Unicast;
                message.header.scope = if route.gateway.is_some() {
                    RouteScope::Universe
                } else {
                    RouteScope::Link
                };
            }
            // As `ip route del` does: any protocol, scope and type match.
            Purpose::Remove => {
                message.header.protocol = RouteProtocol::Unspec;
                message.header.kind = RouteType::Unspec;
                message.header.scope = RouteScope::NoWhere;
            }
        }
        if destination.prefix_len() > 0 {
            message
                .attributes
                .push(RouteAttribute::Destination(route_address(
                    destination.address(),
                )));
        }
        if let Some(gateway) = route.gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(route_address(gateway)));
        }
        message.attributes.push(RouteAttribute::Oif(index));
        if let Some(metric) = route.metric {
            message.attributes.push(RouteAttribute::Priority(metric));
        }
        Ok(message)
    }
}

/// Whether a route message adds a route or removes one.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Add,
    Remove,
}

fn decode_route(message: &RouteMessage, links: &[super::Link]) -> Option<Route> {
    let header = &message.header;
    if header.kind != RouteType::Unicast
        || matches!(header.protocol, RouteProtocol::Kernel | RouteProtocol::Ra)
    {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut gateway = None;
    let mut interface_index = None;
    let mut metric = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(address) => destination = ip_of(address),
            RouteAttribute::Gateway(address) => gateway = ip_of(address),
            RouteAttribute::Oif(index) => interface_index = Some(*index),
            RouteAttribute::Priority(priority) => metric = Some(*priority),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let prefix_len = header.destination_prefix_length;
    let destination = match (header.address_family, destination) {
        (AddressFamily::Inet, None) => IpCidr::V4(Ipv4Cidr::ANY),
        (AddressFamily::Inet6, None) => IpCidr::V6(Ipv6Cidr::ANY),
        (_, Some(IpAddr::V4(v4))) => IpCidr::V4(Ipv4Cidr::new(v4, prefix_len).ok()?),
        (_, Some(IpAddr::V6(v6))) => IpCidr::V6(Ipv6Cidr::new(v6, prefix_len).ok()?),
        _ => return None,
    };
    let interface = links
        .iter()
        .find(|link| Some(link.index) == interface_index)?
        .name
        .clone();
    Some(Route {
        destination,
        gateway,
        interface,
        metric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(destination: &str, gateway: Option<&str>, metric: Option<u32>) -> Route {
        Route {
            destination: destination.parse().unwrap(),
            gateway: gateway.map(|gateway| gateway.parse().unwrap()),
            interface: "eth0".into(),
            metric,
        }
    }

    #[test]
    fn default_route_prints_like_ip_route() {
        let route = Route::default_via("192.0.2.1".parse().unwrap(), "eth0");
        assert!(route.is_default());
        assert_eq!(route.to_string(), "default via 192.0.2.1 dev eth0");
        let v6 = Route::default_via("2001:db8::1".parse().unwrap(), "br0");
        assert_eq!(v6.to_string(), "default via 2001:db8::1 dev br0");
    }

    #[test]
    fn static_route_prints_its_network_and_metric() {
        let route = route("198.51.100.7/24", Some("192.0.2.1"), Some(50));
        assert_eq!(
            route.to_string(),
            "198.51.100.0/24 via 192.0.2.1 dev eth0 metric 50"
        );
    }

    #[test]
    fn a_route_without_metric_matches_any_metric() {
        let wanted = route("198.51.100.0/24", Some("192.0.2.1"), None);
        assert!(wanted.matches(&route("198.51.100.0/24", Some("192.0.2.1"), Some(1024))));
        let pinned = route("198.51.100.0/24", Some("192.0.2.1"), Some(10));
        assert!(!pinned.matches(&route("198.51.100.0/24", Some("192.0.2.1"), Some(1024))));
        assert!(!wanted.matches(&route("198.51.100.0/24", Some("192.0.2.2"), None)));
    }
}
