//! IPv4 and IPv6 addresses of interfaces.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

use super::{NetError, Netlink, kernel_errno, request_failed};
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

impl Netlink {
    /// Every address of the interface (IPv4 first, in the kernel's order, then IPv6), including
    /// IPv6 link-local addresses.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpCidr>, NetError> {
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
        let mut addresses: Vec<IpCidr> = messages
            .iter()
            .filter(|message| message.header.index == index)
            .filter_map(decode_address)
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
        let Some(message) = messages.into_iter().find(|message| {
            message.header.index == index && decode_address(message) == Some(address)
        }) else {
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
