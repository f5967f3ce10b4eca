//! libvirt's virtual networks, as a VM's network card may name them (`NicSource::Network`):
//! listed with what a form needs to offer them (whether they run, their bridge, how they
//! reach the outside). Defining networks is not this crate's business: the host bridges are
//! the appliance's own network, and a libvirt network is one someone set up on purpose.

use quick_xml::events::Event;
use serde::Serialize;
use virt::network::Network;

use crate::connection::Hypervisor;
use crate::libvirt::{ObjectKind, VirtError, attribute, next_event, operation_error};

/// A libvirt virtual network as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NetworkInfo {
    /// The network's name (what a NIC's `source.network` names).
    pub name: String,
    /// Whether it runs: a VM on an inactive network cannot start.
    pub active: bool,
    /// Whether libvirt starts it when the daemon starts.
    pub autostart: bool,
    /// The host bridge it uses (`virbr0`), when its definition names one.
    pub bridge: Option<String>,
    /// How it reaches the outside: `nat`, `route`, `open`, `bridge`, ... as libvirt's
    /// `<forward mode>` says, or `isolated` when it has no `<forward>`.
    pub forward_mode: String,
}

/// The forward mode of a network without a `<forward>` element.
const ISOLATED: &str = "isolated";

/// libvirt's default when `<forward>` names no mode.
const DEFAULT_FORWARD_MODE: &str = "nat";

impl Hypervisor {
    /// Every libvirt network, active or not, sorted by name.
    pub fn list_networks(&self) -> Result<Vec<NetworkInfo>, VirtError> {
        let networks = self
            .connection
            .list_all_networks(0)
            .map_err(|error| operation_error("list", ObjectKind::Network, "*", error))?;
        let mut infos = networks
            .iter()
            .map(network_info)
            .collect::<Result<Vec<_>, _>>()?;
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }
}

fn network_info(network: &Network) -> Result<NetworkInfo, VirtError> {
    let name = network
        .name()
        .map_err(|error| operation_error("read", ObjectKind::Network, "?", error))?;
    let read = |error| operation_error("read", ObjectKind::Network, &name, error);
    let active = network.is_active().map_err(read)?;
    let autostart = network.autostart().map_err(read)?;
    let (bridge, forward_mode) = network_layout(&name, &network.xml_desc(0).map_err(read)?)?;
    Ok(NetworkInfo {
        name,
        active,
        autostart,
        bridge,
        forward_mode,
    })
}

/// The bridge name and forward mode of a network's XML.
fn network_layout(name: &str, xml: &str) -> Result<(Option<String>, String), VirtError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut bridge = None;
    let mut forward_mode = None;
    loop {
        let event = next_event(&mut reader, name)?;
        let (element, empty) = match &event {
            Event::Start(element) => (element, false),
            Event::Empty(element) => (element, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        // Only the network's own children: `<forward>` holds `<interface>`s and `<pf>`s.
        if depth == 1 {
            match element.name().as_ref() {
                b"bridge" => bridge = attribute(element, "name"),
                b"forward" => {
                    forward_mode = Some(
                        attribute(element, "mode")
                            .unwrap_or_else(|| DEFAULT_FORWARD_MODE.to_owned()),
                    );
                }
                _ => {}
            }
        }
        if !empty {
            depth += 1;
        }
    }
    Ok((
        bridge.filter(|bridge| !bridge.is_empty()),
        forward_mode.unwrap_or_else(|| ISOLATED.to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_names_the_bridge_and_the_forward_mode() {
        let nat = "<network><name>default</name><forward mode='nat'><nat><port start='1024' \
                   end='65535'/></nat></forward><bridge name='virbr0' stp='on'/>\
                   <ip address='192.168.122.1'/></network>";
        assert_eq!(
            network_layout("default", nat).unwrap(),
            (Some("virbr0".to_owned()), "nat".to_owned())
        );
        let isolated = "<network><name>lab</name><bridge name='virbr9'/></network>";
        assert_eq!(
            network_layout("lab", isolated).unwrap(),
            (Some("virbr9".to_owned()), "isolated".to_owned())
        );
        let unnamed_mode = "<network><name>x</name><forward/></network>";
        assert_eq!(
            network_layout("x", unnamed_mode).unwrap(),
            (None, "nat".to_owned())
        );
        let passthrough = "<network><name>sriov</name><forward mode='hostdev'>\
                           <pf dev='eth3'/><interface dev='eth4'/></forward></network>";
        assert_eq!(
            network_layout("sriov", passthrough).unwrap(),
            (None, "hostdev".to_owned())
        );
    }

    #[test]
    fn broken_xml_is_an_error_naming_the_network() {
        let error = network_layout("lab", "<network><bridge name='a'></network>").unwrap_err();
        assert!(
            matches!(error, VirtError::Xml { ref name, .. } if name == "lab"),
            "{error:?}"
        );
    }

    #[test]
    fn the_test_driver_lists_its_default_network() {
        let hypervisor = Hypervisor::connect("test:///default").unwrap();
        let networks = hypervisor.list_networks().unwrap();
        let default = networks
            .iter()
            .find(|network| network.name == "default")
            .unwrap();
        assert!(default.active, "{default:?}");
        assert_eq!(default.bridge.as_deref(), Some("virbr0"), "{default:?}");
    }
}
