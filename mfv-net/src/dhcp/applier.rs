//! Configuring an interface with a lease: the [`LeaseApplier`] trait, its netlink
//! implementation and a recording fake.
//!
//! The lease's router becomes a default route at its own metric ([`LEASE_ROUTE_METRIC`]
//! unless the caller chooses another), added and never put in place of a route that is
//! there: a static default route (metric 0, as the kernel gives IPv4 routes without one)
//! keeps carrying the traffic and the lease's router serves as fallback. Ending a lease
//! removes the route at that metric only, so a static route through the same router stays.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{DhcpError, Lease};
use crate::cidr::IpCidr;
use crate::dns::write_resolv_conf;
use crate::netlink::{NetError, Netlink, Route};

/// The metric of a lease's default route unless [`NetlinkLeaseApplier::with_route_metric`]
/// chooses another: above the 0 of IPv4 default routes configured without a metric, so a
/// static gateway always wins.
pub const LEASE_ROUTE_METRIC: u32 = 1024;

/// Puts a lease on an interface and takes it off again.
pub trait LeaseApplier: Send {
    /// Configures `lease` on `interface`: address, default route through the first router,
    /// MTU, DNS. `previous` is the lease this one extends (same address), if any.
    fn apply(
        &mut self,
        interface: &str,
        previous: Option<&Lease>,
        lease: &Lease,
    ) -> impl Future<Output = Result<(), DhcpError>> + Send;

    /// Removes `lease`'s default route and address from `interface`.
    fn remove(
        &mut self,
        interface: &str,
        lease: &Lease,
    ) -> impl Future<Output = Result<(), DhcpError>> + Send;
}

/// Applies leases through rtnetlink, and writes `resolv.conf` when the lease names DNS
/// servers and the applier was given a file.
#[derive(Debug, Clone)]
pub struct NetlinkLeaseApplier {
    netlink: Netlink,
    resolv_conf: Option<PathBuf>,
    route_metric: u32,
}

impl NetlinkLeaseApplier {
    /// Applies through `netlink`; `resolv_conf` is the file to write DNS settings to
    /// (`None` leaves DNS alone). The lease's default route gets [`LEASE_ROUTE_METRIC`].
    pub fn new(netlink: Netlink, resolv_conf: Option<PathBuf>) -> NetlinkLeaseApplier {
        NetlinkLeaseApplier {
            netlink,
            resolv_conf,
            route_metric: LEASE_ROUTE_METRIC,
        }
    }

    /// Gives the lease's default route `metric`: with clients on several interfaces, each
    /// needs its own, and the lowest carries the traffic.
    pub fn with_route_metric(mut self, metric: u32) -> NetlinkLeaseApplier {
        self.route_metric = metric;
        self
    }

    /// The default route through `router` a lease on `interface` installs.
    fn lease_route(&self, interface: &str, router: Ipv4Addr) -> Route {
        Route {
            metric: Some(self.route_metric),
            ..Route::default_via(IpAddr::V4(router), interface)
        }
    }

    /// Adds the lease's default route. The same route there already (a lease left
    /// configured by an earlier client) is fine; another route at the lease's metric is
    /// never replaced.
    async fn add_lease_route(&self, interface: &str, router: Ipv4Addr) -> Result<(), DhcpError> {
        let route = self.lease_route(interface, router);
        let action = format!(
            "add the default route via {router} metric {}",
            self.route_metric
        );
        match self.netlink.add_route(&route).await {
            Ok(()) => Ok(()),
            Err(NetError::RouteExists { .. }) => {
                let routes = self
                    .netlink
                    .routes()
                    .await
                    .map_err(apply_failed(interface, action.clone()))?;
                if routes.iter().any(|actual| route.matches(actual)) {
                    return Ok(());
                }
                let holder = routes.into_iter().find(|actual| {
                    actual.is_default()
                        && matches!(actual.destination, IpCidr::V4(_))
                        && actual.metric == Some(self.route_metric)
                });
                Err(DhcpError::RouteMetricTaken {
                    interface: interface.into(),
                    action,
                    holder: holder.map_or_else(
                        || "another route".to_owned(),
                        |holder| format!("the route {holder}"),
                    ),
                })
            }
            Err(error) => Err(apply_failed(interface, action)(error)),
        }
    }

    /// Removes the lease's default route through `router`; one that is gone already is
    /// fine. Routes at other metrics are never touched.
    async fn remove_lease_route(&self, interface: &str, router: Ipv4Addr) -> Result<(), DhcpError> {
        match self
            .netlink
            .remove_route(&self.lease_route(interface, router))
            .await
        {
            Ok(()) | Err(NetError::RouteNotPresent { .. }) => Ok(()),
            Err(error) => Err(apply_failed(
                interface,
                format!("remove the default route via {router}"),
            )(error)),
        }
    }

    /// Everything of `lease` but its address: MTU, default route, DNS.
    async fn apply_settings(
        &self,
        interface: &str,
        previous: Option<&Lease>,
        lease: &Lease,
    ) -> Result<(), DhcpError> {
        if let Some(mtu) = lease.mtu {
            self.netlink
                .set_mtu(interface, mtu.into())
                .await
                .map_err(apply_failed(interface, format!("set the MTU to {mtu}")))?;
        }
        let old_router = previous.and_then(|previous| previous.routers.first().copied());
        let new_router = lease.routers.first().copied();
        if let Some(old) = old_router
            && old_router != new_router
        {
            self.remove_lease_route(interface, old).await?;
        }
        if let Some(router) = new_router {
            self.add_lease_route(interface, router).await?;
        }
        if let Some(path) = &self.resolv_conf
            && !lease.dns_servers.is_empty()
        {
            write_resolv_conf(path, &lease.dns_config()).map_err(|source| {
                DhcpError::ResolvConf {
                    interface: interface.into(),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

/// A netlink failure of `action` on `interface`.
fn apply_failed(interface: &str, action: String) -> impl FnOnce(NetError) -> DhcpError {
    let interface = interface.to_owned();
    move |source| DhcpError::Apply {
        interface,
        action,
        source,
    }
}

impl LeaseApplier for NetlinkLeaseApplier {
    async fn apply(
        &mut self,
        interface: &str,
        previous: Option<&Lease>,
        lease: &Lease,
    ) -> Result<(), DhcpError> {
        let address = IpCidr::V4(lease.address);
        let added_address = match previous {
            Some(_) => false,
            None => match self.netlink.add_address(interface, address).await {
                Ok(()) => true,
                // A remembered lease confirmed after a restart may still be configured.
                Err(NetError::AddressExists { .. }) => false,
                Err(error) => {
                    return Err(apply_failed(
                        interface,
                        format!("add the leased address {address}"),
                    )(error));
                }
            },
        };
        let applied = self.apply_settings(interface, previous, lease).await;
        if applied.is_err() && added_address {
            // A lease is used whole or not at all; the failure is what gets reported.
            let _ = self.netlink.remove_address(interface, address).await;
        }
        applied
    }

    async fn remove(&mut self, interface: &str, lease: &Lease) -> Result<(), DhcpError> {
        if let Some(&router) = lease.routers.first() {
            self.remove_lease_route(interface, router).await?;
        }
        let address = IpCidr::V4(lease.address);
        match self.netlink.remove_address(interface, address).await {
            Ok(()) | Err(NetError::AddressNotPresent { .. }) => Ok(()),
            Err(error) => Err(apply_failed(
                interface,
                format!("remove the leased address {address}"),
            )(error)),
        }
    }
}

/// One call a [`RecordingApplier`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedChange {
    /// [`LeaseApplier::apply`].
    Apply {
        /// The interface.
        interface: String,
        /// The lease extended, if any.
        previous: Option<Lease>,
        /// The lease applied.
        lease: Lease,
    },
    /// [`LeaseApplier::remove`].
    Remove {
        /// The interface.
        interface: String,
        /// The lease removed.
        lease: Lease,
    },
}

/// A [`LeaseApplier`] that changes nothing and records every call; clones share the record.
/// [`RecordingApplier::failing`] makes every call fail, to test error paths.
#[derive(Debug, Clone, Default)]
pub struct RecordingApplier {
    changes: Arc<Mutex<Vec<AppliedChange>>>,
    fail: bool,
}

impl RecordingApplier {
    /// An applier that records and succeeds.
    pub fn new() -> RecordingApplier {
        RecordingApplier::default()
    }

    /// An applier that records and then fails every call as if the interface were gone.
    pub fn failing() -> RecordingApplier {
        RecordingApplier {
            fail: true,
            ..RecordingApplier::default()
        }
    }

    /// The calls so far, in order.
    pub fn changes(&self) -> Vec<AppliedChange> {
        self.changes
            .lock()
            .map(|changes| changes.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn record(&self, interface: &str, change: AppliedChange) -> Result<(), DhcpError> {
        match self.changes.lock() {
            Ok(mut changes) => changes.push(change),
            Err(poisoned) => poisoned.into_inner().push(change),
        }
        if self.fail {
            return Err(DhcpError::Apply {
                interface: interface.into(),
                action: "apply the lease".into(),
                source: NetError::NoSuchInterface {
                    name: interface.into(),
                },
            });
        }
        Ok(())
    }
}

impl LeaseApplier for RecordingApplier {
    async fn apply(
        &mut self,
        interface: &str,
        previous: Option<&Lease>,
        lease: &Lease,
    ) -> Result<(), DhcpError> {
        self.record(
            interface,
            AppliedChange::Apply {
                interface: interface.into(),
                previous: previous.cloned(),
                lease: lease.clone(),
            },
        )
    }

    async fn remove(&mut self, interface: &str, lease: &Lease) -> Result<(), DhcpError> {
        self.record(
            interface,
            AppliedChange::Remove {
                interface: interface.into(),
                lease: lease.clone(),
            },
        )
    }
}
