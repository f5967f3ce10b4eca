//! Errors from libvirt mapped to what the user can do, and the small XML documents (pools,
//! volumes, snapshots) and XML facts (devices, firmware) the libvirt layer needs.

use std::fmt;
use std::io;
use std::path::PathBuf;

use quick_xml::Writer;
use quick_xml::events::Event;
use virt::error::{Error as LibvirtError, ErrorNumber};

/// What kind of libvirt object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A VM (libvirt domain).
    Vm,
    /// A storage pool.
    Pool,
    /// A storage volume.
    Volume,
    /// A snapshot of a VM.
    Snapshot,
    /// A libvirt virtual network.
    Network,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Vm => "VM",
            ObjectKind::Pool => "storage pool",
            ObjectKind::Volume => "volume",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Network => "network",
        })
    }
}

/// A failure talking to libvirt, phrased as what went wrong and what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum VirtError {
    /// Nothing answers on the URI's socket.
    #[error(
        "the libvirt daemon for {uri} is not running (no one answers on its socket): start libvirtd or check the URI"
    )]
    DaemonNotRunning {
        /// The URI that was tried.
        uri: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// The daemon answered but refused this user.
    #[error(
        "libvirt at {uri} refused access: run as root or as a member of libvirt's socket group"
    )]
    AccessDenied {
        /// The URI that was tried.
        uri: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// Any other connection failure.
    #[error("cannot connect to libvirt at {uri}")]
    Connect {
        /// The URI that was tried.
        uri: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// The name is already used by another object of the same kind.
    #[error(
        "a {kind} named {name:?} already exists: choose another name or delete the existing one"
    )]
    AlreadyExists {
        /// The kind of object.
        kind: ObjectKind,
        /// The name that is taken.
        name: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// No object of that name.
    #[error("there is no {kind} named {name:?}")]
    NotFound {
        /// The kind of object.
        kind: ObjectKind,
        /// The name looked up.
        name: String,
    },
    /// The host cannot give the VM its memory.
    #[error(
        "not enough memory on the host to start VM {name:?}: stop other VMs or give this VM less memory"
    )]
    NotEnoughMemory {
        /// The VM.
        name: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// The operation does not fit the VM's current state (e.g. suspend a stopped VM).
    #[error("cannot {operation} VM {name:?} in its current state ({state})")]
    WrongState {
        /// What was attempted.
        operation: &'static str,
        /// The VM.
        name: String,
        /// The VM's state as libvirt reports it.
        state: String,
    },
    /// The VM has no CD-ROM drive to put media in or eject it from.
    #[error(
        "VM {name:?} has no CD-ROM drive: a drive is created with the VM when its spec has a cdrom"
    )]
    NoCdromDrive {
        /// The VM.
        name: String,
    },
    /// The VM has no VNC display to open a graphical console on.
    #[error(
        "VM {name:?} has no VNC display: turn it on in its spec (vnc.enabled) and start it again to get a graphical console"
    )]
    NoVncDisplay {
        /// The VM.
        name: String,
    },
    /// The VM's serial console closed (the VM stopped, or another client took the console
    /// over) while something was being typed into it.
    #[error(
        "the serial console of VM {name:?} is closed: the VM stopped or another client took the console over"
    )]
    ConsoleClosed {
        /// The VM.
        name: String,
    },
    /// The image to put in a CD-ROM drive is missing or libvirt cannot read it.
    #[error("{path}: no image libvirt can read there: choose an existing ISO image")]
    MediaUnreadable {
        /// The image.
        path: PathBuf,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// libvirt or the hypervisor cannot do this at all.
    #[error("{operation} of {name:?} is not supported here: {reason}; {what_works}")]
    Unsupported {
        /// What was attempted.
        operation: &'static str,
        /// The object.
        name: String,
        /// Why not.
        reason: String,
        /// What the user can do instead.
        what_works: &'static str,
    },
    /// Any other libvirt failure.
    #[error("libvirt could not {operation} {name:?}")]
    Libvirt {
        /// What was attempted.
        operation: &'static str,
        /// The object.
        name: String,
        /// libvirt's error.
        #[source]
        source: LibvirtError,
    },
    /// An NFS pool is defined but its export could not be mounted (the server does not
    /// answer, or refuses the export).
    #[error(
        "storage pool {name:?} could not mount {share}; the pool stays defined and is mounted when started again (virsh pool-start {name})"
    )]
    NfsMount {
        /// The pool.
        name: String,
        /// The NFS server and the exported directory, as mount writes them: `SERVER:EXPORT`.
        share: String,
        /// libvirt's error, with mount's message.
        #[source]
        source: LibvirtError,
    },
    /// The VM did not reach the expected state in time.
    #[error("VM {name:?} did not {operation} within {seconds} s")]
    Timeout {
        /// What was awaited.
        operation: &'static str,
        /// The VM.
        name: String,
        /// The deadline in seconds.
        seconds: u64,
    },
    /// The data to write into a volume could not be read, or ended early.
    #[error("the data for volume {name:?} could not be read")]
    UploadSource {
        /// The volume.
        name: String,
        /// What went wrong while reading (`UnexpectedEof`: it ended early).
        #[source]
        source: io::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {operation} failed")]
    Io {
        /// What was attempted.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file of an export is missing, is not a regular file, or is too large (named by the
    /// error).
    #[error(transparent)]
    ExportFile(mfv_linux::regular_file::ReadError),
    /// An exported definition directory holds something this version does not understand.
    #[error("{path}: {problem}")]
    BadExport {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A storage pool of that name is already defined, differently.
    #[error(
        "storage pool {name:?} is already defined as {existing}, not as {wanted}: undefine it or choose another name"
    )]
    PoolConflict {
        /// The pool.
        name: String,
        /// What libvirt has under that name.
        existing: String,
        /// What was asked for.
        wanted: String,
    },
    /// The device a logical pool was asked to use is missing or holds something else; nothing
    /// on it was touched.
    #[error("storage pool {pool:?} cannot use {device}: {problem}")]
    PoolDevice {
        /// The pool.
        pool: String,
        /// The device.
        device: PathBuf,
        /// What is wrong with it, or what it holds.
        problem: String,
    },
    /// What is on a device could not be read.
    #[error("cannot read what is on the device of storage pool {pool:?}")]
    DeviceProbe {
        /// The pool.
        pool: String,
        /// libblkid's error, naming the device.
        #[source]
        source: mfv_linux::blkid::SignatureError,
    },
    /// XML that libvirt returned could not be parsed.
    #[error("cannot parse the XML libvirt returned for {name:?}")]
    Xml {
        /// The object.
        name: String,
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// Writing an XML document into memory failed.
    #[error("cannot build the XML document for {name:?}")]
    XmlBuild {
        /// The object.
        name: String,
        /// The writer's error.
        #[source]
        source: io::Error,
    },
}

/// The error code of a libvirt error, or `None` when libvirt used a code this binding does
/// not know.
pub(crate) fn code(error: &LibvirtError) -> Option<ErrorNumber> {
    match error.code() {
        virt::enumutil::Enum::Known(code) => Some(code),
        virt::enumutil::Enum::Unknown(_) => None,
    }
}

/// Maps a failed `virConnectOpen` to a typed error.
pub(crate) fn connect_error(uri: &str, source: LibvirtError) -> VirtError {
    let message = source.message().to_ascii_lowercase();
    let uri = uri.to_owned();
    if message.contains("no such file or directory") || message.contains("connection refused") {
        VirtError::DaemonNotRunning { uri, source }
    } else if code(&source) == Some(ErrorNumber::AuthFailed)
        || message.contains("permission denied")
        || message.contains("authentication")
    {
        VirtError::AccessDenied { uri, source }
    } else {
        VirtError::Connect { uri, source }
    }
}

/// Maps a failed operation on an object to a typed error.
pub(crate) fn operation_error(
    operation: &'static str,
    kind: ObjectKind,
    name: &str,
    source: LibvirtError,
) -> VirtError {
    let message = source.message().to_ascii_lowercase();
    let name = name.to_owned();
    match code(&source) {
        Some(
            ErrorNumber::NoDomain
            | ErrorNumber::NoStoragePool
            | ErrorNumber::NoStorageVolume
            | ErrorNumber::NoDomainSnapshot
            | ErrorNumber::NoNetwork,
        ) => return VirtError::NotFound { kind, name },
        Some(ErrorNumber::DomExist | ErrorNumber::StorageVolExist) => {
            return VirtError::AlreadyExists { kind, name, source };
        }
        _ => {}
    }
    if message.contains("already exists") {
        VirtError::AlreadyExists { kind, name, source }
    } else if message.contains("cannot allocate memory")
        || message.contains("cannot set up guest memory")
        || message.contains("out of memory")
    {
        VirtError::NotEnoughMemory { name, source }
    } else {
        VirtError::Libvirt {
            operation,
            name,
            source,
        }
    }
}

/// Builds an XML document in memory with quick-xml.
pub(crate) fn build_xml(
    name: &str,
    write: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>,
) -> Result<String, VirtError> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut writer).map_err(|source| VirtError::XmlBuild {
        name: name.to_owned(),
        source,
    })?;
    String::from_utf8(writer.into_inner()).map_err(|error| VirtError::XmlBuild {
        name: name.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, error),
    })
}

/// The text of the root element's `<name>` child, if the document has one.
pub(crate) fn xml_name(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut in_name = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(element) => {
                depth += 1;
                in_name = depth == 2 && element.name().as_ref() == b"name";
            }
            Event::Text(text) if in_name => {
                return text.unescape().ok().map(|t| t.trim().to_owned());
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_name = false;
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// One disk of a domain as far as the libvirt layer cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DomainDisk {
    /// `disk`, `cdrom` or `floppy`.
    pub device: String,
    /// The guest device name (`vda`).
    pub target: String,
    /// The bus the guest sees it on (`virtio`, `sata`).
    pub bus: Option<String>,
    /// The image format from `<driver type=...>` (`qcow2`, `raw`).
    pub format: Option<String>,
    /// `<source file=...>` or `<source dev=...>`.
    pub path: Option<String>,
    /// `<source pool=... volume=...>`.
    pub pool_volume: Option<(String, String)>,
}

/// The facts of a domain XML the libvirt layer needs: disks, NIC targets, VNC, firmware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DomainFacts {
    /// Disks, CD-ROMs and floppies in document order.
    pub disks: Vec<DomainDisk>,
    /// Host-side NIC device names (`vnet0`) of a running domain.
    pub nic_targets: Vec<String>,
    /// The VNC listen address and port, when the domain has VNC graphics.
    pub vnc: Option<(String, Option<u16>)>,
    /// The position of the VNC display among the domain's `<graphics>` devices: the index
    /// `virDomainOpenGraphicsFD` takes.
    pub vnc_index: Option<u32>,
    /// The `<graphics>` devices seen so far while parsing.
    graphics_seen: u32,
    /// The firmware is loaded from pflash (UEFI with OVMF).
    pub pflash_firmware: bool,
}

/// The next event of an XML document libvirt returned for `name`.
pub(crate) fn next_event<'a>(
    reader: &mut quick_xml::Reader<&'a [u8]>,
    name: &str,
) -> Result<Event<'a>, VirtError> {
    reader.read_event().map_err(|source| VirtError::Xml {
        name: name.to_owned(),
        source,
    })
}

/// The unescaped value of attribute `key` of `element`, if it has one.
pub(crate) fn attribute(element: &quick_xml::events::BytesStart<'_>, key: &str) -> Option<String> {
    element
        .try_get_attribute(key)
        .ok()
        .flatten()
        .and_then(|value| value.unescape_value().ok().map(|value| value.into_owned()))
}

impl DomainFacts {
    /// Reads the facts from a domain XML document.
    pub(crate) fn parse(name: &str, xml: &str) -> Result<Self, VirtError> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut facts = DomainFacts::default();
        let mut path: Vec<String> = Vec::new();
        let mut in_interface = false;
        loop {
            let event = reader.read_event().map_err(|source| VirtError::Xml {
                name: name.to_owned(),
                source,
            })?;
            let (element, empty) = match &event {
                Event::Start(element) => (element, false),
                Event::Empty(element) => (element, true),
                Event::End(_) => {
                    if path.pop().as_deref() == Some("interface") {
                        in_interface = false;
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let tag = String::from_utf8_lossy(element.name().as_ref()).into_owned();
            let parent = path.last().map(String::as_str);
            match (parent, tag.as_str()) {
                (Some("devices"), "disk") => facts.disks.push(DomainDisk {
                    device: attribute(element, "device").unwrap_or_else(|| "disk".into()),
                    ..DomainDisk::default()
                }),
                (Some("disk"), "target") => {
                    if let Some(disk) = facts.disks.last_mut() {
                        disk.target = attribute(element, "dev").unwrap_or_default();
                        disk.bus = attribute(element, "bus");
                    }
                }
                (Some("disk"), "driver") => {
                    if let Some(disk) = facts.disks.last_mut() {
                        disk.format = attribute(element, "type");
                    }
                }
                (Some("disk"), "source") => {
                    if let Some(disk) = facts.disks.last_mut() {
                        disk.path =
                            attribute(element, "file").or_else(|| attribute(element, "dev"));
                        if let (Some(pool), Some(volume)) =
                            (attribute(element, "pool"), attribute(element, "volume"))
                        {
                            disk.pool_volume = Some((pool, volume));
                        }
                    }
                }
                (Some("devices"), "interface") => in_interface = !empty,
                (Some("interface"), "target") if in_interface => {
                    if let Some(dev) = attribute(element, "dev") {
                        facts.nic_targets.push(dev);
                    }
                }
                (Some("devices"), "graphics") => {
                    let index = facts.graphics_seen;
                    facts.graphics_seen += 1;
                    let vnc = attribute(element, "type").as_deref() == Some("vnc");
                    if vnc && facts.vnc.is_none() {
                        let port = attribute(element, "port")
                            .and_then(|port| port.parse::<i32>().ok())
                            .and_then(|port| u16::try_from(port).ok());
                        let listen =
                            attribute(element, "listen").unwrap_or_else(|| "127.0.0.1".into());
                        facts.vnc = Some((listen, port));
                        facts.vnc_index = Some(index);
                    }
                }
                (Some("os"), "loader")
                    if attribute(element, "type").as_deref() == Some("pflash") =>
                {
                    facts.pflash_firmware = true;
                }
                _ => {}
            }
            if !empty {
                path.push(tag);
            }
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_object_maps_to_not_found() {
        let connection = virt::connect::Connect::open(Some("test:///default")).unwrap();
        let error = connection.lookup_domain_by_name("no-such-vm").unwrap_err();
        assert_eq!(code(&error), Some(ErrorNumber::NoDomain));
        let mapped = operation_error("start", ObjectKind::Vm, "no-such-vm", error);
        assert!(
            matches!(
                mapped,
                VirtError::NotFound {
                    kind: ObjectKind::Vm,
                    ..
                }
            ),
            "{mapped}"
        );
        assert_eq!(mapped.to_string(), "there is no VM named \"no-such-vm\"");
    }

    #[test]
    fn facts_of_a_domain() {
        let facts = DomainFacts::parse(
            "t",
            r#"<domain type='qemu'><name>t</name>
              <os><type>hvm</type><loader readonly='yes' type='pflash'>/c.fd</loader></os>
              <devices>
                <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
                  <source file='/p/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
                <disk type='volume' device='cdrom'><source pool='iso' volume='d.iso'/>
                  <target dev='sda' bus='sata'/></disk>
                <interface type='bridge'><source bridge='br0'/><target dev='vnet3'/></interface>
                <graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'/>
              </devices></domain>"#,
        )
        .unwrap();
        assert_eq!(
            facts.disks,
            vec![
                DomainDisk {
                    device: "disk".into(),
                    target: "vda".into(),
                    bus: Some("virtio".into()),
                    format: Some("qcow2".into()),
                    path: Some("/p/a.qcow2".into()),
                    pool_volume: None,
                },
                DomainDisk {
                    device: "cdrom".into(),
                    target: "sda".into(),
                    bus: Some("sata".into()),
                    format: None,
                    path: None,
                    pool_volume: Some(("iso".into(), "d.iso".into())),
                },
            ]
        );
        assert_eq!(facts.nic_targets, vec!["vnet3".to_owned()]);
        assert_eq!(facts.vnc, Some(("127.0.0.1".into(), Some(5901))));
        assert!(facts.pflash_firmware);
    }

    #[test]
    fn unassigned_vnc_port_is_none() {
        let facts = DomainFacts::parse(
            "t",
            "<domain><devices><graphics type='vnc' port='-1'/></devices></domain>",
        )
        .unwrap();
        assert_eq!(facts.vnc, Some(("127.0.0.1".into(), None)));
        assert_eq!(facts.vnc_index, Some(0));
    }

    #[test]
    fn the_vnc_display_is_found_by_its_place_among_the_graphics_devices() {
        let facts = DomainFacts::parse(
            "t",
            "<domain><devices><graphics type='spice' port='-1'><listen type='none'/></graphics>\
             <graphics type='vnc' port='5902'/><graphics type='vnc' port='5903'/></devices>\
             </domain>",
        )
        .unwrap();
        assert_eq!(facts.vnc, Some(("127.0.0.1".into(), Some(5902))));
        assert_eq!(facts.vnc_index, Some(1));
        let none = DomainFacts::parse("t", "<domain><devices/></domain>").unwrap();
        assert_eq!(none.vnc_index, None);
    }

    #[test]
    fn name_of_a_document() {
        assert_eq!(
            xml_name(
                "<domain><uuid>u</uuid><name> a&amp;b </name><devices><name>x</name></devices></domain>"
            ),
            Some("a&b".into())
        );
        assert_eq!(xml_name("<domain/>"), None);
        assert_eq!(
            xml_name("<domain><devices><name>x</name></devices></domain>"),
            None
        );
    }

    #[test]
    fn broken_xml_is_an_error() {
        let error = DomainFacts::parse("t", "<domain><devices></domain>").unwrap_err();
        assert!(matches!(error, VirtError::Xml { .. }), "{error}");
    }

    #[test]
    fn pool_xml_is_escaped() {
        let xml = build_xml("p", |writer| {
            writer
                .create_element("name")
                .write_text_content(quick_xml::events::BytesText::new("a<b"))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(xml, "<name>a&lt;b</name>");
    }
}
