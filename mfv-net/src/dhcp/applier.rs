//! Configuring an interface with a lease: the [`LeaseApplier`] trait, its netlink
//! implementation and a recording fake.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{DhcpError, Lease};
use crate::cidr::IpCidr;
use crate::dns::write_resolv_conf;
use crate::netlink::{NetError, Netlink};

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
/// servers.
#[derive(Debug, Clone)]
pub struct NetlinkLeaseApplier {
    netlink: Netlink,
    resolv_conf: Option<PathBuf>,
}

impl NetlinkLeaseApplier {
    /// Applies through `netlink`; `resolv_conf` is the file to write DNS settings to
    /// (`None` leaves DNS alone).
    pub fn new(netlink: Netlink, resolv_conf: Option<PathBuf>) -> NetlinkLeaseApplier {
        NetlinkLeaseApplier {
            netlink,
            resolv_conf,
        }
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
        if previous.is_none() {
            match self.netlink.add_address(interface, address).await {
                // A remembered lease confirmed after a restart may still be configured.
                Ok(()) | Err(NetError::AddressExists { .. }) => {}
                Err(error) => {
                    return Err(apply_failed(
                        interface,
                        format!("add the leased address {address}"),
                    )(error));
                }
            }
        }
        if let Some(mtu) = lease.mtu {
            self.netlink
                .set_mtu(interface, mtu.into())
                .await
                .map_err(apply_failed(interface, format!("set the MTU to {mtu}")))?;
        }
        let old_router = previous.and_then(|previous| previous.routers.first());
        match lease.routers.first() {
            Some(&router) => self
                .netlink
                .replace_default_route(IpAddr::V4(router), interface)
                .await
                .map_err(apply_failed(
                    interface,
                    format!("set the default route via {router}"),
                ))?,
            None => {
                if let Some(&old) = old_router {
                    remove_default_route(&self.netlink, interface, old).await?;
                }
            }
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

    async fn remove(&mut self, interface: &str, lease: &Lease) -> Result<(), DhcpError> {
        if let Some(&router) = lease.routers.first() {
            remove_default_route(&self.netlink, interface, router).await?;
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

/// Removes the default route via `router`; one that is gone already is fine.
async fn remove_default_route(
    netlink: &Netlink,
    interface: &str,
    router: std::net::Ipv4Addr,
) -> Result<(), DhcpError> {
    match netlink
        .remove_default_route(IpAddr::V4(router), interface)
        .await
    {
        Ok(()) | Err(NetError::RouteNotPresent { .. }) => Ok(()),
        Err(error) => Err(apply_failed(
            interface,
            format!("remove the default route via {router}"),
        )(error)),
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
