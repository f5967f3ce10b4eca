//! IPv4 and IPv6 addresses of interfaces.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};

use super::{NetError, Netlink, is_link_local, kernel_errno, request_failed};
use crate::{IpCidr, Ipv4Cidr, Ipv6Cidr};

fn decode_address(message: &AddressMessage) -> Option<IpCidr> {
    let mut address = None;
    let mut local = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            _ => {}
        }
    }
    let prefix_len = message.header.prefix_len;
    match local.or(address)? {
        IpAddr::V4(ip) => Ipv4Cidr::new(ip, prefix_len).ok().map(IpCidr::V4),
        IpAddr::V6(ip) => Ipv6Cidr::new(ip, prefix_len).ok().map(IpCidr::V6),
    }
}

/// Whether the kernel made the address itself rather than someone configuring it: an IPv6
/// link-local address, or one the kernel derived from a router advertisement (SLAAC and
/// privacy addresses, which carry a lifetime and so lack the permanent flag, and which
/// kernels since 6.0 also mark with the `kernel_ra` protocol). Such addresses come and go
/// with the routers of the network, so a desired state neither lists nor removes them.
fn is_kernel_made(message: &AddressMessage, address: &IpCidr) -> bool {
    if !matches!(address, IpCidr::V6(_)) {
        return false;
    }
    if is_link_local(address) {
        return true;
    }
    let mut permanent = message.header.flags.contains(AddressHeaderFlags::Permanent);
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Flags(flags) => permanent = flags.contains(AddressFlags::Permanent),
            AddressAttribute::Protocol(
                AddressProtocol::RouterAnnouncement | AddressProtocol::LinkLocal,
            ) => return true,
            _ => {}
        }
    }
    !permanent
}

impl Netlink {
    /// The messages of the interface's addresses, with the interface's index.
    async fn address_messages(&self, name: &str) -> Result<Vec<AddressMessage>, NetError> {
        let index = self.index_of(name).await?;
        let messages: Vec<AddressMessage> = self
            .handle()
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|error| request_failed(format!("list the addresses of {name}"), error))?;
        Ok(messages
            .into_iter()
            .filter(|message| message.header.index == index)
            .collect())
    }

    /// Every address of the interface (IPv4 first, in the kernel's order, then IPv6), including
    /// IPv6 link-local addresses.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpCidr>, NetError> {
        let mut addresses: Vec<IpCidr> = self
            .address_messages(name)
            .await?
            .iter()
            .filter_map(decode_address)
            .collect();
        addresses.sort_by_key(|address| matches!(address, IpCidr::V6(_)));
        Ok(addresses)
    }

    /// The addresses someone configured on the interface, in the order of
    /// [`addresses`](Self::addresses): those the kernel made itself (IPv6 link-local ones and
    /// those from router advertisements) are left out.
    pub async fn configured_addresses(&self, name: &str) -> Result<Vec<IpCidr>, NetError> {
        let mut addresses: Vec<IpCidr> = self
            .address_messages(name)
            .await?
            .iter()
            .filter_map(|message| {
                decode_address(message).filter(|address| !is_kernel_made(message, address))
            })
            .collect();
        addresses.sort_by_key(|address| matches!(address, IpCidr::V6(_)));
        Ok(addresses)
    }

    /// Adds `address` to the interface; [`NetError::AddressExists`] if it has it already.
    pub async fn add_address(&self, name: &str, address: IpCidr) -> Result<(), NetError> {
        let index = self.index_of(name).await?;
        let result = self
            .handle()
            .address()
            .add(index, address.address(), address.prefix_len())
            .execute()
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if kernel_errno(&error) == Some(Errno::EEXIST as i32) => {
                Err(NetError::AddressExists {
                    interface: name.into(),
                    address,
                })
            }
            Err(error) => Err(request_failed(format!("add {address} to {name}"), error)),
        }
    }

    /// Removes `address` from the interface; [`NetError::AddressNotPresent`] if it lacks it.
    ///
    /// The kernel removes the routes that depended on the address with it.
    pub async fn remove_address(&self, name: &str, address: IpCidr) -> Result<(), NetError> {
        let messages = self.address_messages(name).await?;
        let Some(message) = messages
            .into_iter()
            .find(|message| decode_address(message) == Some(address))
        else {
            return Err(NetError::AddressNotPresent {
                interface: name.into(),
                address,
            });
        };
        let result = self.handle().address().del(message).execute().await;
        match result {
            Ok(()) => Ok(()),
            Err(error) if kernel_errno(&error) == Some(Errno::EADDRNOTAVAIL as i32) => {
                Err(NetError::AddressNotPresent {
                    interface: name.into(),
                    address,
                })
            }
            Err(error) => Err(request_failed(
                format!("remove {address} from {name}"),
                error,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flags: AddressHeaderFlags, attributes: Vec<AddressAttribute>) -> AddressMessage {
        let mut message = AddressMessage::default();
        message.header.flags = flags;
        message.attributes = attributes;
        message
    }

    fn v6(text: &str) -> IpCidr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_without_a_lifetime_is_configured() {
        let permanent = message(AddressHeaderFlags::Permanent, vec![]);
        assert!(!is_kernel_made(&permanent, &v6("2001:db8::5/64")));
        let with_flags = message(
            AddressHeaderFlags::Permanent,
            vec![AddressAttribute::Flags(AddressFlags::Permanent)],
        );
        assert!(!is_kernel_made(&with_flags, &v6("2001:db8::5/64")));
    }

    #[test]
    fn a_slaac_address_is_the_kernels() {
        let dynamic = message(
            AddressHeaderFlags::empty(),
            vec![AddressAttribute::Flags(AddressFlags::Managetempaddr)],
        );
        assert!(is_kernel_made(
            &dynamic,
            &v6("2001:db8::5054:ff:fe12:3456/64")
        ));
        let marked = message(
            AddressHeaderFlags::Permanent,
            vec![AddressAttribute::Protocol(
                AddressProtocol::RouterAnnouncement,
            )],
        );
        assert!(is_kernel_made(
            &marked,
            &v6("2001:db8::5054:ff:fe12:3456/64")
        ));
    }

    #[test]
    fn the_32_bit_flags_win_over_the_headers_8_bits() {
        let dynamic = message(
            AddressHeaderFlags::Permanent,
            vec![AddressAttribute::Flags(AddressFlags::empty())],
        );
        assert!(is_kernel_made(&dynamic, &v6("2001:db8::5/64")));
    }

    #[test]
    fn link_local_addresses_are_the_kernels_and_ipv4_never_is() {
        let permanent = message(AddressHeaderFlags::Permanent, vec![]);
        assert!(is_kernel_made(&permanent, &v6("fe80::1/64")));
        let dynamic = message(AddressHeaderFlags::empty(), vec![]);
        assert!(!is_kernel_made(&dynamic, &"192.0.2.10/24".parse().unwrap()));
    }
}
