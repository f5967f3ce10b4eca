//! Network interfaces: listing them, switching them up and down, their MTU and carrier.

use std::time::Duration;

use futures_util::TryStreamExt;
use mfv_linux::OperState;
use nix::errno::Errno;
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::link::{
    InfoBond, InfoData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State as KernelOperState,
};
use serde::{Deserialize, Serialize};

use super::{NetError, Netlink, kernel_errno, request_failed};

/// How often [`Netlink::wait_for_carrier`] looks at the interface.
const CARRIER_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The operational state netlink reports, in the kernel's sysfs spelling (which
/// [`OperState`] shares with the hardware inventory).
fn oper_state(state: &KernelOperState) -> OperState {
    match state {
        KernelOperState::NotPresent => OperState::NotPresent,
        KernelOperState::Down => OperState::Down,
        KernelOperState::LowerLayerDown => OperState::LowerLayerDown,
        KernelOperState::Testing => OperState::Testing,
        KernelOperState::Dormant => OperState::Dormant,
        KernelOperState::Up => OperState::Up,
        _ => OperState::Unknown,
    }
}

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Hardware address as `aa:bb:cc:dd:ee:ff`; `None` for interfaces without one.
    pub mac: Option<String>,
    /// Maximum transmission unit in bytes.
    pub mtu: u32,
    /// Whether the interface is administratively up (`ip link set up`).
    pub admin_up: bool,
    /// The operational state.
    pub state: OperState,
    /// Whether the physical link is up (cable plugged, peer present).
    pub carrier: bool,
    /// Kind of virtual interface (`bridge`, `vlan`, `bond`, `veth`...); `None` for hardware.
    pub kind: Option<String>,
    /// The bridge or bond this interface is a port of.
    pub master: Option<String>,
}

/// A link message decoded, with the master and a bond's primary port still indices.
struct DecodedLink {
    link: Link,
    master_index: Option<u32>,
    bond_primary_index: Option<u32>,
}

fn decode_link(message: &LinkMessage) -> DecodedLink {
    let mut link = Link {
        name: String::new(),
        index: message.header.index,
        mac: None,
        mtu: 0,
        admin_up: message.header.flags.contains(LinkFlags::Up),
        state: OperState::Unknown,
        carrier: message.header.flags.contains(LinkFlags::LowerUp),
        kind: None,
        master: None,
    };
    let mut master_index = None;
    let mut bond_primary_index = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name.clone_from(name),
            LinkAttribute::Address(bytes) if !bytes.is_empty() => {
                link.mac = Some(format_mac(bytes))
            }
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::OperState(state) => link.state = oper_state(state),
            LinkAttribute::Carrier(carrier) => link.carrier = *carrier != 0,
            LinkAttribute::Controller(index) => master_index = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::Bond(options)) => {
                            bond_primary_index = options.iter().find_map(|option| match option {
                                InfoBond::Primary(index) => Some(*index),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    DecodedLink {
        link,
        master_index,
        bond_primary_index,
    }
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Netlink {
    /// Every interface of the namespace, ordered by index.
    pub async fn links(&self) -> Result<Vec<Link>, NetError> {
        let messages: Vec<LinkMessage> =
            self.handle()
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|error| request_failed("list the interfaces".into(), error))?;
        let decoded: Vec<DecodedLink> = messages.iter().map(decode_link).collect();
        let mut links: Vec<Link> = decoded
            .iter()
            .map(|entry| {
                let mut link = entry.link.clone();
                link.master = entry.master_index.and_then(|master| {
                    decoded
                        .iter()
                        .find(|other| other.link.index == master)
                        .map(|other| other.link.name.clone())
                });
                link
            })
            .collect();
        links.sort_by_key(|link| link.index);
        Ok(links)
    }

    /// The interface named `name`.
    pub async fn link_by_name(&self, name: &str) -> Result<Link, NetError> {
        let decoded = self.decoded_link_by_name(name).await?;
        let mut link = decoded.link;
        if let Some(master) = decoded.master_index {
            link.master = Some(self.link_by_index(master).await?.name);
        }
        Ok(link)
    }

    /// The primary port of the bond `name`, once that port is enslaved; `None` for a bond
    /// without one and for other interfaces.
    pub async fn bond_primary(&self, name: &str) -> Result<Option<String>, NetError> {
        match self.decoded_link_by_name(name).await?.bond_primary_index {
            Some(index) => Ok(Some(self.link_by_index(index).await?.name)),
            None => Ok(None),
        }
    }

    /// The index of the interface named `name`.
    pub(crate) async fn index_of(&self, name: &str) -> Result<u32, NetError> {
        Ok(self.decoded_link_by_name(name).await?.link.index)
    }

    async fn decoded_link_by_name(&self, name: &str) -> Result<DecodedLink, NetError> {
        let result: Result<Option<LinkMessage>, rtnetlink::Error> = self
            .handle()
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match result {
            Ok(Some(message)) => Ok(decode_link(&message)),
            Ok(None) => Err(NetError::NoSuchInterface { name: name.into() }),
            Err(error) if kernel_errno(&error) == Some(Errno::ENODEV as i32) => {
                Err(NetError::NoSuchInterface { name: name.into() })
            }
            Err(error) => Err(request_failed(format!("look up {name}"), error)),
        }
    }

    async fn link_by_index(&self, index: u32) -> Result<Link, NetError> {
        let message = self
            .handle()
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await
            .map_err(|error| request_failed(format!("look up interface #{index}"), error))?;
        match message {
            Some(message) => Ok(decode_link(&message).link),
            None => Err(NetError::NoSuchInterface {
                name: format!("#{index}"),
            }),
        }
    }

    /// Sets the interface administratively up.
    pub async fn set_up(&self, name: &str) -> Result<(), NetError> {
        let index = self.index_of(name).await?;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.set_link(message, format!("set {name} up")).await
    }

    /// Sets the interface administratively down.
    pub async fn set_down(&self, name: &str) -> Result<(), NetError> {
        let index = self.index_of(name).await?;
        let message = LinkUnspec::new_with_index(index).down().build();
        self.set_link(message, format!("set {name} down")).await
    }

    /// Sets the interface's MTU.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetError> {
        let index = self.index_of(name).await?;
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set_link(message, format!("set the MTU of {name} to {mtu}"))
            .await
    }

    /// Deletes a (virtual) interface.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetError> {
        let index = self.index_of(name).await?;
        self.handle()
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|error| request_failed(format!("delete {name}"), error))
    }

    /// Waits until the interface reports carrier, polling until `deadline` has passed.
    pub async fn wait_for_carrier(&self, name: &str, deadline: Duration) -> Result<Link, NetError> {
        let started = tokio::time::Instant::now();
        loop {
            let link = self.link_by_name(name).await?;
            if link.carrier {
                return Ok(link);
            }
            if started.elapsed() >= deadline {
                return Err(NetError::NoCarrier {
                    interface: name.into(),
                    waited: deadline,
                });
            }
            tokio::time::sleep(CARRIER_POLL_INTERVAL).await;
        }
    }

    pub(crate) async fn set_link(
        &self,
        message: LinkMessage,
        action: String,
    ) -> Result<(), NetError> {
        self.handle()
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|error| request_failed(action, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_lowercase_colon_separated() {
        assert_eq!(
            format_mac(&[0x02, 0xAB, 0, 1, 2, 0xff]),
            "02:ab:00:01:02:ff"
        );
    }

    #[test]
    fn netlink_states_take_the_sysfs_spelling() {
        let cases = [
            (KernelOperState::Unknown, "unknown"),
            (KernelOperState::NotPresent, "notpresent"),
            (KernelOperState::Down, "down"),
            (KernelOperState::LowerLayerDown, "lowerlayerdown"),
            (KernelOperState::Testing, "testing"),
            (KernelOperState::Dormant, "dormant"),
            (KernelOperState::Up, "up"),
            (KernelOperState::Other(99), "unknown"),
        ];
        for (kernel, spelling) in cases {
            let state = oper_state(&kernel);
            assert_eq!(state.to_string(), spelling, "{kernel:?}");
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{spelling}\"")
            );
        }
    }
}
