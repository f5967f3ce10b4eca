//! Hotplug: kernel uevents from netlink, parsed and turned into typed events, drivers loaded.
//!
//! The kernel announces every device it adds or removes on a `NETLINK_KOBJECT_UEVENT` socket
//! as `ACTION@DEVPATH\0KEY=VALUE\0...`. [`UeventListener`] receives them, [`parse_uevent`]
//! reads one, [`HotplugEvent::from_uevent`] says what it means for the host (a disk or NIC came
//! or went), and [`handle_uevent`] loads the driver of a new device through the same
//! [`DriverLoader`] coldplug uses.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, setsockopt,
    socket, sockopt,
};
use serde::Serialize;

use crate::coldplug::{DriverLoader, ModuleStep};

/// The netlink multicast group the kernel sends uevents to (udevd re-sends on group 2).
const KERNEL_UEVENT_GROUP: u32 = 1;

/// Receive buffer asked for, so a burst of uevents (a USB hub with many devices) fits.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// Room for one message; the kernel's limit is 2048 bytes of properties plus the header.
const MESSAGE_BYTES: usize = 16 << 10;

/// What happened to the device, from the message header and `ACTION=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UeventAction {
    /// The device was added.
    Add,
    /// The device was removed.
    Remove,
    /// Something about it changed (e.g. media inserted, size changed).
    Change,
    /// It was renamed or moved in the device tree.
    Move,
    /// It was brought online (CPUs, memory).
    Online,
    /// It was taken offline.
    Offline,
    /// A driver was bound to it.
    Bind,
    /// Its driver was unbound.
    Unbind,
}

impl UeventAction {
    /// The kernel's spelling, e.g. `add`.
    pub fn as_str(self) -> &'static str {
        match self {
            UeventAction::Add => "add",
            UeventAction::Remove => "remove",
            UeventAction::Change => "change",
            UeventAction::Move => "move",
            UeventAction::Online => "online",
            UeventAction::Offline => "offline",
            UeventAction::Bind => "bind",
            UeventAction::Unbind => "unbind",
        }
    }

    fn from_kernel(text: &str) -> Option<Self> {
        Some(match text {
            "add" => UeventAction::Add,
            "remove" => UeventAction::Remove,
            "change" => UeventAction::Change,
            "move" => UeventAction::Move,
            "online" => UeventAction::Online,
            "offline" => UeventAction::Offline,
            "bind" => UeventAction::Bind,
            "unbind" => UeventAction::Unbind,
            _ => return None,
        })
    }
}

impl fmt::Display for UeventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kernel uevent. The common properties have fields; all of them are in `properties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uevent {
    /// What happened.
    pub action: UeventAction,
    /// The device below the sysfs root, e.g. `/devices/virtual/block/loop0`.
    pub devpath: String,
    /// `SUBSYSTEM`, e.g. `block`, `net`, `usb`.
    pub subsystem: Option<String>,
    /// `DEVTYPE`, e.g. `disk`, `partition`, `usb_interface`.
    pub devtype: Option<String>,
    /// `MODALIAS`: what a driver for it is matched against.
    pub modalias: Option<String>,
    /// `DEVNAME`: the device node below /dev, e.g. `sdb` or `bus/usb/001/002`.
    pub devname: Option<String>,
    /// `INTERFACE`: a network interface's name in the `net` subsystem (USB interfaces put
    /// `class/subclass/protocol` here).
    pub interface: Option<String>,
    /// `DRIVER`: the bound driver (bind and unbind events).
    pub driver: Option<String>,
    /// `SEQNUM`: the kernel's event counter.
    pub seqnum: Option<u64>,
    /// Every `KEY=VALUE` of the message.
    pub properties: BTreeMap<String, String>,
}

/// Why a message is not a kernel uevent. The listener counts these and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UeventParseError {
    /// The message had no bytes.
    #[error("empty uevent message")]
    Empty,
    /// A message udevd re-sent (it starts with `libudev`), not one from the kernel.
    #[error("uevent message from udev, not from the kernel")]
    FromUdev,
    /// The first field is not `ACTION@DEVPATH`.
    #[error("uevent header {0:?} is not ACTION@DEVPATH")]
    BadHeader(String),
    /// The action is none the kernel sends.
    #[error("unknown uevent action {0:?}")]
    UnknownAction(String),
    /// A field after the header is not `KEY=VALUE`.
    #[error("uevent property {0:?} is not KEY=VALUE")]
    BadProperty(String),
}

/// Parses one message as the kernel sends it: `ACTION@DEVPATH\0KEY=VALUE\0...`.
///
/// `ACTION=` and `DEVPATH=` win over the header when both are present; bytes that are not
/// UTF-8 are replaced, not refused.
pub fn parse_uevent(message: &[u8]) -> Result<Uevent, UeventParseError> {
    if message.is_empty() {
        return Err(UeventParseError::Empty);
    }
    if message.starts_with(b"libudev\0") {
        return Err(UeventParseError::FromUdev);
    }
    let mut fields = message
        .split(|&byte| byte == 0)
        .filter(|field| !field.is_empty())
        .map(String::from_utf8_lossy);
    let header = fields.next().ok_or(UeventParseError::Empty)?;
    let (header_action, header_devpath) = header
        .split_once('@')
        .filter(|(action, devpath)| !action.is_empty() && devpath.starts_with('/'))
        .ok_or_else(|| UeventParseError::BadHeader(header.clone().into_owned()))?;
    let mut properties = BTreeMap::new();
    for field in fields {
        let (key, value) = field
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| UeventParseError::BadProperty(field.clone().into_owned()))?;
        properties.insert(key.to_owned(), value.to_owned());
    }
    let action_text = properties
        .get("ACTION")
        .map_or(header_action, String::as_str);
    let action = UeventAction::from_kernel(action_text)
        .ok_or_else(|| UeventParseError::UnknownAction(action_text.to_owned()))?;
    let devpath = properties
        .get("DEVPATH")
        .map_or(header_devpath, String::as_str)
        .to_owned();
    let text = |key: &str| {
        properties
            .get(key)
            .filter(|value| !value.is_empty())
            .cloned()
    };
    Ok(Uevent {
        action,
        devpath,
        subsystem: text("SUBSYSTEM"),
        devtype: text("DEVTYPE"),
        modalias: text("MODALIAS"),
        devname: text("DEVNAME"),
        interface: text("INTERFACE"),
        driver: text("DRIVER"),
        seqnum: properties
            .get("SEQNUM")
            .and_then(|value| value.parse().ok()),
        properties,
    })
}

/// What a uevent means for the host. Serializes as `{"event": "disk_added", "name": "sdb"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HotplugEvent {
    /// A whole disk appeared (block subsystem, type `disk`), e.g. a USB stick.
    DiskAdded {
        /// Its name below /dev, e.g. `sdb`.
        name: String,
    },
    /// A whole disk went away.
    DiskRemoved {
        /// Its name below /dev.
        name: String,
    },
    /// A partition appeared.
    PartitionAdded {
        /// Its name below /dev, e.g. `sdb1`.
        name: String,
    },
    /// A partition went away.
    PartitionRemoved {
        /// Its name below /dev.
        name: String,
    },
    /// A network interface appeared.
    NicAdded {
        /// The interface name, e.g. `eth1`.
        name: String,
    },
    /// A network interface went away.
    NicRemoved {
        /// The interface name.
        name: String,
    },
    /// Another device with a modalias appeared: its driver may need loading.
    DeviceAdded {
        /// The device below the sysfs root.
        devpath: String,
        /// Its subsystem, e.g. `usb`.
        subsystem: Option<String>,
        /// Its modalias.
        modalias: String,
    },
    /// Another device with a modalias went away.
    DeviceRemoved {
        /// The device below the sysfs root.
        devpath: String,
        /// Its subsystem.
        subsystem: Option<String>,
        /// Its modalias.
        modalias: String,
    },
}

impl HotplugEvent {
    /// The event a uevent stands for; `None` for the many uevents the host does not care
    /// about (changes, binds, devices without a modalias).
    pub fn from_uevent(uevent: &Uevent) -> Option<Self> {
        let added = match uevent.action {
            UeventAction::Add => true,
            UeventAction::Remove => false,
            _ => return None,
        };
        let last_component = || {
            uevent
                .devpath
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        match (uevent.subsystem.as_deref(), uevent.devtype.as_deref()) {
            (Some("block"), Some(devtype @ ("disk" | "partition"))) => {
                let name = uevent.devname.clone().unwrap_or_else(last_component);
                Some(match (devtype, added) {
                    ("disk", true) => HotplugEvent::DiskAdded { name },
                    ("disk", false) => HotplugEvent::DiskRemoved { name },
                    (_, true) => HotplugEvent::PartitionAdded { name },
                    (_, false) => HotplugEvent::PartitionRemoved { name },
                })
            }
            (Some("net"), _) => {
                let name = uevent.interface.clone().unwrap_or_else(last_component);
                Some(if added {
                    HotplugEvent::NicAdded { name }
                } else {
                    HotplugEvent::NicRemoved { name }
                })
            }
            _ => {
                let devpath = uevent.devpath.clone();
                let subsystem = uevent.subsystem.clone();
                let modalias = uevent.modalias.clone()?;
                Some(if added {
                    HotplugEvent::DeviceAdded {
                        devpath,
                        subsystem,
                        modalias,
                    }
                } else {
                    HotplugEvent::DeviceRemoved {
                        devpath,
                        subsystem,
                        modalias,
                    }
                })
            }
        }
    }
}

impl fmt::Display for HotplugEvent {
    /// `disk added: sdb`, `disk removed: sdb`, `partition added: sdb1`, `nic added: eth1`,
    /// `device added: usb:v46F4p0001... at /devices/...`, `device removed: /devices/...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HotplugEvent::DiskAdded { name } => write!(f, "disk added: {name}"),
            HotplugEvent::DiskRemoved { name } => write!(f, "disk removed: {name}"),
            HotplugEvent::PartitionAdded { name } => write!(f, "partition added: {name}"),
            HotplugEvent::PartitionRemoved { name } => write!(f, "partition removed: {name}"),
            HotplugEvent::NicAdded { name } => write!(f, "nic added: {name}"),
            HotplugEvent::NicRemoved { name } => write!(f, "nic removed: {name}"),
            HotplugEvent::DeviceAdded {
                devpath, modalias, ..
            } => write!(f, "device added: {modalias} at {devpath}"),
            HotplugEvent::DeviceRemoved { devpath, .. } => write!(f, "device removed: {devpath}"),
        }
    }
}

/// What [`handle_uevent`] did with one uevent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandledUevent {
    /// The event for the caller, if the uevent stands for one.
    pub event: Option<HotplugEvent>,
    /// The modalias whose driver was loaded (an `add` that carries one).
    pub modalias: Option<String>,
    /// The module steps of that load, dependencies first; empty when nothing was loaded.
    pub steps: Vec<ModuleStep>,
}

/// Handles one uevent: an `add` with a modalias gets its driver loaded through `loader` (as
/// coldplug does), and the typed event is returned for the caller.
pub fn handle_uevent(uevent: &Uevent, loader: &mut dyn DriverLoader) -> HandledUevent {
    let modalias = uevent
        .modalias
        .clone()
        .filter(|_| uevent.action == UeventAction::Add);
    let steps = modalias
        .as_deref()
        .map(|modalias| loader.load_for_modalias(modalias))
        .unwrap_or_default();
    HandledUevent {
        event: HotplugEvent::from_uevent(uevent),
        modalias,
        steps,
    }
}

/// The kernel uevent socket could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum UeventError {
    /// The `NETLINK_KOBJECT_UEVENT` socket could not be created.
    #[error("cannot open the kernel uevent socket (NETLINK_KOBJECT_UEVENT)")]
    Open(#[source] Errno),
    /// Its receive buffer could not be set (even without `SO_RCVBUFFORCE`).
    #[error("cannot set the receive buffer of the kernel uevent socket")]
    ReceiveBuffer(#[source] Errno),
    /// It could not join the kernel's uevent group (root is needed on some kernels).
    #[error("cannot bind the kernel uevent socket to group {KERNEL_UEVENT_GROUP}")]
    Bind(#[source] Errno),
    /// Waiting for a message failed.
    #[error("cannot wait on the kernel uevent socket")]
    Poll(#[source] Errno),
    /// Receiving a message failed.
    #[error("cannot receive from the kernel uevent socket")]
    Receive(#[source] Errno),
}

/// Counts of what a [`UeventListener`] received and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct UeventStats {
    /// Uevents parsed and returned.
    pub received: u64,
    /// Messages that did not parse (skipped).
    pub malformed: u64,
    /// Messages not sent by the kernel (netlink port id other than 0; skipped).
    pub foreign: u64,
    /// Times the socket's buffer overflowed (`ENOBUFS`): uevents were lost, a rescan of
    /// sysfs finds what they announced.
    pub overruns: u64,
}

/// A socket subscribed to the kernel's uevents.
#[derive(Debug)]
pub struct UeventListener {
    socket: OwnedFd,
    buffer: Vec<u8>,
    stats: UeventStats,
}

impl UeventListener {
    /// Opens a `NETLINK_KOBJECT_UEVENT` socket and joins the kernel's group. Events for
    /// network interfaces arrive only from the network namespace the caller is in.
    pub fn open() -> Result<Self, UeventError> {
        let socket = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(UeventError::Open)?;
        // Root may exceed the rmem_max limit; anyone else gets what the limit allows.
        setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER_BYTES)
            .or_else(|_| setsockopt(&socket, sockopt::RcvBuf, &RECEIVE_BUFFER_BYTES))
            .map_err(UeventError::ReceiveBuffer)?;
        bind(
            socket.as_raw_fd(),
            &NetlinkAddr::new(0, KERNEL_UEVENT_GROUP),
        )
        .map_err(UeventError::Bind)?;
        Ok(UeventListener {
            socket,
            buffer: vec![0; MESSAGE_BYTES],
            stats: UeventStats::default(),
        })
    }

    /// The next kernel uevent; waits at most `timeout` (for ever with `None`) and returns
    /// `Ok(None)` when it passes. Malformed and foreign messages and buffer overruns are
    /// counted in [`UeventListener::stats`] and skipped.
    pub fn next_uevent(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Uevent>, UeventError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            let wait = match deadline {
                None => PollTimeout::NONE,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Rounded up so a sub-millisecond rest does not spin; longer waits than
                    // poll(2) takes are capped and the loop comes back.
                    let millis = left.as_micros().div_ceil(1000);
                    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(0) if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                    return Ok(None);
                }
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(error) => return Err(UeventError::Poll(error)),
            }
            if let Some(uevent) = self.receive_one()? {
                return Ok(Some(uevent));
            }
        }
    }

    /// Receives one message that is ready; `None` when it was skipped.
    fn receive_one(&mut self) -> Result<Option<Uevent>, UeventError> {
        let (length, sender) =
            match recvfrom::<NetlinkAddr>(self.socket.as_raw_fd(), &mut self.buffer) {
                Ok(received) => received,
                Err(Errno::ENOBUFS) => {
                    self.stats.overruns += 1;
                    return Ok(None);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => return Ok(None),
                Err(error) => return Err(UeventError::Receive(error)),
            };
        if sender.is_none_or(|sender| sender.pid() != 0) {
            self.stats.foreign += 1;
            return Ok(None);
        }
        match parse_uevent(&self.buffer[..length]) {
            Ok(uevent) => {
                self.stats.received += 1;
                Ok(Some(uevent))
            }
            Err(_) => {
                self.stats.malformed += 1;
                Ok(None)
            }
        }
    }

    /// What was received and skipped so far.
    pub fn stats(&self) -> UeventStats {
        self.stats
    }
}

impl AsFd for UeventListener {
    /// The socket, to wait on it together with other descriptors.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::modules::StepStatus;

    /// A message as the kernel sends it: the fields joined and ended by NUL bytes.
    fn message(fields: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for field in fields {
            bytes.extend_from_slice(field.as_bytes());
            bytes.push(0);
        }
        bytes
    }

    const USB_STORAGE_INTERFACE: &[&str] = &[
        "add@/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0",
        "ACTION=add",
        "DEVPATH=/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0",
        "SUBSYSTEM=usb",
        "DEVTYPE=usb_interface",
        "PRODUCT=46f4/1/0",
        "TYPE=0/0/0",
        "INTERFACE=8/6/80",
        "MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00",
        "SEQNUM=1893",
    ];

    const SD_DISK: &[&str] = &[
        "add@/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb",
        "ACTION=add",
        "DEVPATH=/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb",
        "SUBSYSTEM=block",
        "MAJOR=8",
        "MINOR=16",
        "DEVNAME=sdb",
        "DEVTYPE=disk",
        "DISKSEQ=9",
        "SEQNUM=1901",
    ];

    #[test]
    fn parses_a_usb_interface_add() {
        let uevent = parse_uevent(&message(USB_STORAGE_INTERFACE)).unwrap();
        assert_eq!(uevent.action, UeventAction::Add);
        assert_eq!(
            uevent.devpath,
            "/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0"
        );
        assert_eq!(uevent.subsystem.as_deref(), Some("usb"));
        assert_eq!(uevent.devtype.as_deref(), Some("usb_interface"));
        assert_eq!(
            uevent.modalias.as_deref(),
            Some("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00")
        );
        assert_eq!(uevent.seqnum, Some(1893));
        assert_eq!(uevent.devname, None);
        assert_eq!(uevent.properties.len(), 9);
        assert_eq!(uevent.properties["PRODUCT"], "46f4/1/0");
    }

    #[test]
    fn parses_loop_change_with_header_only_fields() {
        // Captured from this machine: `losetup` on loop0.
        let uevent = parse_uevent(&message(&[
            "change@/devices/virtual/block/loop0",
            "ACTION=change",
            "DEVPATH=/devices/virtual/block/loop0",
            "SUBSYSTEM=block",
            "DISK_MEDIA_CHANGE=1",
            "MAJOR=7",
            "MINOR=0",
            "DEVNAME=loop0",
            "DEVTYPE=disk",
            "DISKSEQ=11",
            "SEQNUM=822",
        ]))
        .unwrap();
        assert_eq!(uevent.action, UeventAction::Change);
        assert_eq!(uevent.devname.as_deref(), Some("loop0"));
        assert_eq!(HotplugEvent::from_uevent(&uevent), None);

        // Without ACTION= and DEVPATH= the header gives them; values may hold '=' and '@'.
        let uevent =
            parse_uevent(b"remove@/devices/virtual/net/x\0SUBSYSTEM=net\0NOTE=a=b@c\0").unwrap();
        assert_eq!(uevent.action, UeventAction::Remove);
        assert_eq!(uevent.devpath, "/devices/virtual/net/x");
        assert_eq!(uevent.properties["NOTE"], "a=b@c");
        assert_eq!(uevent.seqnum, None);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let check = |bytes: &[u8], expected: UeventParseError| {
            assert_eq!(parse_uevent(bytes), Err(expected), "{bytes:?}");
        };
        check(b"", UeventParseError::Empty);
        check(b"\0\0", UeventParseError::Empty);
        check(b"libudev\0\xfe\xed\xca\xfe", UeventParseError::FromUdev);
        check(
            b"no header here\0A=B\0",
            UeventParseError::BadHeader("no header here".into()),
        );
        check(
            b"add@relative/path\0",
            UeventParseError::BadHeader("add@relative/path".into()),
        );
        check(
            b"@/devices/x\0",
            UeventParseError::BadHeader("@/devices/x".into()),
        );
        check(
            b"frobnicate@/devices/x\0",
            UeventParseError::UnknownAction("frobnicate".into()),
        );
        check(
            b"add@/devices/x\0ACTION=explode\0",
            UeventParseError::UnknownAction("explode".into()),
        );
        check(
            b"add@/devices/x\0NOEQUALS\0",
            UeventParseError::BadProperty("NOEQUALS".into()),
        );
        check(
            b"add@/devices/x\0=value\0",
            UeventParseError::BadProperty("=value".into()),
        );
        assert_eq!(
            UeventParseError::BadProperty("X".into()).to_string(),
            "uevent property \"X\" is not KEY=VALUE"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        let uevent = parse_uevent(b"add@/devices/x\0SUBSYSTEM=input\0NAME=\xff\xfe\0").unwrap();
        assert_eq!(uevent.properties["NAME"], "\u{fffd}\u{fffd}");
    }

    fn event(fields: &[&str]) -> Option<HotplugEvent> {
        HotplugEvent::from_uevent(&parse_uevent(&message(fields)).unwrap())
    }

    #[test]
    fn typed_events() {
        assert_eq!(
            event(SD_DISK),
            Some(HotplugEvent::DiskAdded { name: "sdb".into() })
        );
        assert_eq!(
            event(&[
                "remove@/devices/virtual/block/loop9",
                "SUBSYSTEM=block",
                "DEVTYPE=disk",
            ]),
            Some(HotplugEvent::DiskRemoved {
                name: "loop9".into()
            })
        );
        assert_eq!(
            event(&[
                "add@/devices/x/block/sdb/sdb1",
                "SUBSYSTEM=block",
                "DEVTYPE=partition",
                "DEVNAME=sdb1",
                "PARTN=1"
            ]),
            Some(HotplugEvent::PartitionAdded {
                name: "sdb1".into()
            })
        );
        assert_eq!(
            event(&[
                "remove@/devices/x/block/sdb/sdb1",
                "SUBSYSTEM=block",
                "DEVTYPE=partition",
                "DEVNAME=sdb1"
            ]),
            Some(HotplugEvent::PartitionRemoved {
                name: "sdb1".into()
            })
        );
        assert_eq!(
            event(&[
                "add@/devices/pci0000:00/0000:00:03.0/virtio0/net/eth1",
                "ACTION=add",
                "SUBSYSTEM=net",
                "INTERFACE=eth1",
                "IFINDEX=3",
            ]),
            Some(HotplugEvent::NicAdded {
                name: "eth1".into()
            })
        );
        assert_eq!(
            event(&["remove@/devices/virtual/net/veth7", "SUBSYSTEM=net"]),
            Some(HotplugEvent::NicRemoved {
                name: "veth7".into()
            })
        );
        assert_eq!(
            event(USB_STORAGE_INTERFACE),
            Some(HotplugEvent::DeviceAdded {
                devpath: "/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0".into(),
                subsystem: Some("usb".into()),
                modalias: "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00".into(),
            })
        );
        let mut removed = USB_STORAGE_INTERFACE.to_vec();
        removed[0] = "remove@/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0";
        removed[1] = "ACTION=remove";
        assert!(matches!(
            event(&removed),
            Some(HotplugEvent::DeviceRemoved { .. })
        ));
        // A USB device without modalias, a bind, a block change: nothing for the host.
        assert_eq!(
            event(&[
                "add@/devices/pci0000:00/usb2/2-1",
                "SUBSYSTEM=usb",
                "DEVTYPE=usb_device"
            ]),
            None
        );
        assert_eq!(
            event(&[
                "bind@/devices/x",
                "SUBSYSTEM=usb",
                "DRIVER=usb-storage",
                "MODALIAS=usb:v1"
            ]),
            None
        );
    }

    #[test]
    fn console_text_and_json_of_events() {
        let cases = [
            (
                HotplugEvent::DiskAdded { name: "sdb".into() },
                "disk added: sdb",
                "disk_added",
            ),
            (
                HotplugEvent::DiskRemoved { name: "sdb".into() },
                "disk removed: sdb",
                "disk_removed",
            ),
            (
                HotplugEvent::PartitionAdded {
                    name: "sdb1".into(),
                },
                "partition added: sdb1",
                "partition_added",
            ),
            (
                HotplugEvent::PartitionRemoved {
                    name: "sdb1".into(),
                },
                "partition removed: sdb1",
                "partition_removed",
            ),
            (
                HotplugEvent::NicAdded {
                    name: "eth1".into(),
                },
                "nic added: eth1",
                "nic_added",
            ),
            (
                HotplugEvent::NicRemoved {
                    name: "eth1".into(),
                },
                "nic removed: eth1",
                "nic_removed",
            ),
        ];
        for (event, text, tag) in cases {
            assert_eq!(event.to_string(), text);
            let name = text.rsplit(' ').next().unwrap();
            assert_eq!(
                serde_json::to_value(&event).unwrap(),
                serde_json::json!({"event": tag, "name": name})
            );
        }
        let added = HotplugEvent::DeviceAdded {
            devpath: "/devices/x/2-1:1.0".into(),
            subsystem: Some("usb".into()),
            modalias: "usb:v46F4p0001".into(),
        };
        assert_eq!(
            added.to_string(),
            "device added: usb:v46F4p0001 at /devices/x/2-1:1.0"
        );
        assert_eq!(
            serde_json::to_value(&added).unwrap(),
            serde_json::json!({"event": "device_added", "devpath": "/devices/x/2-1:1.0", "subsystem": "usb", "modalias": "usb:v46F4p0001"})
        );
        let removed = HotplugEvent::DeviceRemoved {
            devpath: "/devices/x/2-1:1.0".into(),
            subsystem: None,
            modalias: "usb:v46F4p0001".into(),
        };
        assert_eq!(removed.to_string(), "device removed: /devices/x/2-1:1.0");
    }

    /// Records the modaliases it is asked for and answers with one loaded module.
    #[derive(Default)]
    struct RecordingLoader {
        calls: Vec<String>,
    }

    impl DriverLoader for RecordingLoader {
        fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
            self.calls.push(modalias.to_owned());
            vec![ModuleStep::new("usb_storage", StepStatus::Loaded)]
        }
    }

    #[test]
    fn an_add_with_a_modalias_loads_its_driver() {
        let mut loader = RecordingLoader::default();
        let uevent = parse_uevent(&message(USB_STORAGE_INTERFACE)).unwrap();
        let handled = handle_uevent(&uevent, &mut loader);
        assert_eq!(loader.calls, [uevent.modalias.clone().unwrap()]);
        assert_eq!(handled.modalias, uevent.modalias);
        assert_eq!(handled.steps.len(), 1);
        assert!(matches!(
            handled.event,
            Some(HotplugEvent::DeviceAdded { .. })
        ));

        // A disk has no modalias: an event, nothing loaded.
        let disk = handle_uevent(&parse_uevent(&message(SD_DISK)).unwrap(), &mut loader);
        assert_eq!(
            disk.event,
            Some(HotplugEvent::DiskAdded { name: "sdb".into() })
        );
        assert_eq!((disk.modalias, disk.steps.len()), (None, 0));

        // A remove with a modalias loads nothing.
        let mut removed = USB_STORAGE_INTERFACE.to_vec();
        removed[1] = "ACTION=remove";
        let handled = handle_uevent(&parse_uevent(&message(&removed)).unwrap(), &mut loader);
        assert!(handled.steps.is_empty());
        assert_eq!(loader.calls.len(), 1);
    }

    #[test]
    fn socket_errors_name_the_socket() {
        assert_eq!(
            UeventError::Bind(Errno::EPERM).to_string(),
            "cannot bind the kernel uevent socket to group 1"
        );
        assert_eq!(
            UeventError::Open(Errno::EPROTONOSUPPORT).to_string(),
            "cannot open the kernel uevent socket (NETLINK_KOBJECT_UEVENT)"
        );
    }

    /// A message sent to the listener by a process, not the kernel, is counted and skipped
    /// even when it is a well-formed uevent. (Sent to the listener's own port only.)
    #[test]
    fn messages_from_processes_are_foreign() {
        use nix::sys::socket::{MsgFlags, getsockname, sendto};

        let mut listener = UeventListener::open().unwrap();
        let own: NetlinkAddr = getsockname(listener.as_fd().as_raw_fd()).unwrap();
        let sender = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .unwrap();
        let fake = message(SD_DISK);
        sendto(
            sender.as_raw_fd(),
            &fake,
            &NetlinkAddr::new(own.pid(), 0),
            MsgFlags::empty(),
        )
        .unwrap();
        // Kernel uevents from other activity on this machine may come first; the fake one
        // never comes out.
        while let Some(uevent) = listener
            .next_uevent(Some(Duration::from_millis(200)))
            .unwrap()
        {
            assert_ne!(uevent.seqnum, Some(1901), "the fake uevent was accepted");
        }
        assert_eq!(listener.stats().foreign, 1);
    }

    nix::ioctl_write_int_bad!(loop_ctl_remove, 0x4C81);

    /// A loop device made for a test (`losetup /dev/loopN FILE` creates loopN when it does
    /// not exist); detached and removed on drop.
    struct LoopDevice {
        number: u32,
        node: PathBuf,
        _backing: tempfile::NamedTempFile,
    }

    impl LoopDevice {
        /// Creates the first free loop device from 3000 + pid % 1000 upward.
        fn create() -> Self {
            let backing = tempfile::NamedTempFile::new().unwrap();
            backing.as_file().set_len(1 << 20).unwrap();
            let mut number = 3000 + std::process::id() % 1000;
            while Path::new(&format!("/sys/block/loop{number}")).exists() {
                number += 1;
            }
            let node = PathBuf::from(format!("/dev/loop{number}"));
            let device = LoopDevice {
                number,
                node,
                _backing: backing,
            };
            let status = Command::new("losetup")
                .arg(&device.node)
                .arg(device._backing.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "losetup {}: {status}",
                device.node.display()
            );
            device
        }

        fn name(&self) -> String {
            format!("loop{}", self.number)
        }

        /// Detaches and removes the device; true when the kernel removed it.
        fn remove(&self) -> bool {
            let _ = Command::new("losetup").arg("-d").arg(&self.node).status();
            let Ok(control) = fs::OpenOptions::new().write(true).open("/dev/loop-control") else {
                return false;
            };
            let number = i32::try_from(self.number).unwrap();
            // SAFETY: LOOP_CTL_REMOVE takes the device number as its integer argument and
            // touches no memory of ours; `control` is an open descriptor for the call.
            let removed = unsafe { loop_ctl_remove(control.as_raw_fd(), number) }.is_ok();
            if self.node.exists() && !Path::new(&format!("/sys/block/{}", self.name())).exists() {
                let _ = fs::remove_file(&self.node);
            }
            removed
        }
    }

    impl Drop for LoopDevice {
        fn drop(&mut self) {
            if Path::new(&format!("/sys/block/{}", self.name())).exists() {
                self.remove();
            }
        }
    }

    /// The first event for which `wanted` holds, within 5 s.
    fn wait_for(
        listener: &mut UeventListener,
        wanted: impl Fn(&HotplugEvent) -> bool,
    ) -> HotplugEvent {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let uevent = listener
                .next_uevent(Some(left))
                .unwrap()
                .unwrap_or_else(|| panic!("no matching uevent within 5 s: {:?}", listener.stats()));
            if let Some(event) = HotplugEvent::from_uevent(&uevent).filter(&wanted) {
                return event;
            }
        }
    }

    /// Real kernel uevents (needs root): a loop device added and removed is seen as a disk
    /// added and removed.
    #[test]
    fn a_loop_device_comes_and_goes_as_disk_events() {
        let mut listener = UeventListener::open().unwrap();
        let device = LoopDevice::create();
        let name = device.name();
        let added = wait_for(
            &mut listener,
            |event| matches!(event, HotplugEvent::DiskAdded { name: added } if *added == name),
        );
        assert_eq!(added.to_string(), format!("disk added: {name}"));
        assert!(device.remove(), "LOOP_CTL_REMOVE {name} failed");
        let removed = wait_for(
            &mut listener,
            |event| matches!(event, HotplugEvent::DiskRemoved { name: removed } if *removed == name),
        );
        assert_eq!(removed, HotplugEvent::DiskRemoved { name });
        assert!(listener.stats().received >= 2);
        assert_eq!(listener.stats().malformed, 0);
    }

    #[test]
    fn a_timeout_without_events_is_none() {
        let mut listener = UeventListener::open().unwrap();
        // Drain whatever other activity on this machine produced, then wait briefly.
        while listener
            .next_uevent(Some(Duration::ZERO))
            .unwrap()
            .is_some()
        {}
        let started = Instant::now();
        let quiet = (0..20).find_map(|_| {
            listener
                .next_uevent(Some(Duration::from_millis(30)))
                .unwrap()
                .is_none()
                .then(Instant::now)
        });
        assert!(quiet.is_some(), "uevents never paused for 30 ms");
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
