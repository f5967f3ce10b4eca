//! The connection to the kernel's routing netlink socket and the errors of every request on it.
//!
//! [`Netlink`] is the one handle through which this crate changes links, addresses and routes.
//! Its methods live next to the objects they manage: links in `link.rs`, addresses in
//! `address.rs`, routes in `route.rs`, bridges, VLANs and bonds in `virtual_link.rs`.

mod address;
mod link;
mod route;
mod virtual_link;

pub(crate) use virtual_link::is_link_local;

use std::io;
use std::time::Duration;

pub use link::Link;
pub use route::Route;
pub use virtual_link::MovedConfig;

use crate::IpCidr;

/// Why a netlink request failed. Every variant names the interface, address or route involved.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The routing netlink socket could not be opened.
    #[error("cannot open a routing netlink socket")]
    Connect(#[source] io::Error),
    /// No interface has this name in the network namespace.
    #[error("no interface named {name:?}")]
    NoSuchInterface {
        /// The name that was looked up.
        name: String,
    },
    /// The interface already has this address (the kernel answered EEXIST).
    #[error("{interface} already has the address {address}")]
    AddressExists {
        /// The interface.
        interface: String,
        /// The address that was to be added.
        address: IpCidr,
    },
    /// The interface does not have this address (the kernel answered EADDRNOTAVAIL).
    #[error("{interface} has no address {address}")]
    AddressNotPresent {
        /// The interface.
        interface: String,
        /// The address that was to be removed.
        address: IpCidr,
    },
    /// The route exists already (the kernel answered EEXIST).
    #[error("the route {route} exists already")]
    RouteExists {
        /// The route that was to be added.
        route: Box<Route>,
    },
    /// No such route (the kernel answered ESRCH).
    #[error("there is no route {route}")]
    RouteNotPresent {
        /// The route that was to be removed.
        route: Box<Route>,
    },
    /// An interface with this name exists already.
    #[error("an interface named {name:?} exists already")]
    LinkExists {
        /// The name that was to be created.
        name: String,
    },
    /// The kernel does not know this kind of interface (no driver built in or loadable).
    #[error("cannot create {name:?}: this kernel has no {kind} support")]
    LinkKindUnsupported {
        /// The name that was to be created.
        name: String,
        /// `bridge`, `vlan` or `bond`.
        kind: &'static str,
    },
    /// The interface had no carrier when the deadline passed.
    #[error("{interface} has no carrier after {waited:?}")]
    NoCarrier {
        /// The interface waited on.
        interface: String,
        /// How long it was waited on.
        waited: Duration,
    },
    /// The kernel refused a request; `source` is the errno it answered.
    #[error("{action} failed")]
    Kernel {
        /// What was asked, e.g. `set the MTU of eth0 to 9000`.
        action: String,
        /// The errno the kernel answered.
        #[source]
        source: io::Error,
    },
    /// The netlink exchange itself failed (socket closed, unexpected or undecodable reply).
    #[error("{action}: netlink exchange failed")]
    Protocol {
        /// What was asked.
        action: String,
        /// What went wrong.
        #[source]
        source: Box<rtnetlink::Error>,
    },
}

impl NetError {
    /// The errno the kernel answered, for [`NetError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A connected routing netlink handle for the network namespace it was opened in.
///
/// Cloning is cheap: clones share one socket. The socket's connection runs as a task on the
/// tokio runtime that was current in [`Netlink::connect`].
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens a routing netlink socket in the calling thread's network namespace.
    ///
    /// Must be called inside a tokio runtime: the connection is spawned on it.
    pub fn connect() -> Result<Netlink, NetError> {
        let (connection, handle, _messages) =
            rtnetlink::new_connection().map_err(NetError::Connect)?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub(crate) fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }
}

/// The errno in a kernel's answer, if the error is one.
fn kernel_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}

/// Wraps a failed request as [`NetError::Kernel`] or [`NetError::Protocol`].
fn request_failed(action: String, error: rtnetlink::Error) -> NetError {
    match kernel_errno(&error) {
        Some(errno) => NetError::Kernel {
            action,
            source: io::Error::from_raw_os_error(errno),
        },
        None => NetError::Protocol {
            action,
            source: Box::new(error),
        },
    }
}
