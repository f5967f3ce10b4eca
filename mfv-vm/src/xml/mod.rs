//! libvirt domain XML: written from a [`VmSpec`] and read back into one.
//!
//! The XML is built as an element tree and written with quick-xml, so every name and value
//! is escaped. Reading keeps what the spec cannot express verbatim in
//! [`VmSpec::extra_xml`](crate::VmSpec::extra_xml), so a domain defined elsewhere survives
//! a round trip through the config store.

mod generate;
mod host;
mod import;
mod tree;

use crate::{SpecErrors, VmSpec};

pub(crate) use generate::cdrom_device_xml;
pub use host::{HostCapabilities, OvmfFirmware};

/// The XML namespace of this crate's `<metadata>` element.
pub const METADATA_NAMESPACE: &str = "urn:minifed-virt:vm:1";

/// A domain read from XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDomain {
    /// The spec, with what it cannot express in [`VmSpec::extra_xml`].
    pub spec: VmSpec,
    /// What was kept verbatim, e.g. `devices/video`, `domain/clock`,
    /// `devices/disk[vdb]`.
    pub preserved: Vec<String>,
    /// What could not be kept, in words, e.g. `os/bootmenu`.
    pub dropped: Vec<String>,
}

/// Why domain XML cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The text is not well-formed XML.
    #[error("domain XML is malformed: {reason}")]
    Malformed {
        /// What is wrong and where.
        reason: String,
    },
    /// The root element is not `<domain>`.
    #[error("the XML describes a <{found}>, not a <domain>")]
    NotADomain {
        /// The root element's name.
        found: String,
    },
    /// A required element is missing.
    #[error("domain XML has no {path}")]
    MissingElement {
        /// Where it should be, e.g. `domain/name`.
        path: &'static str,
    },
    /// A value cannot be read.
    #[error("{path}: {value:?} {problem}")]
    InvalidValue {
        /// Where, e.g. `domain/memory`.
        path: String,
        /// The text found.
        value: String,
        /// What is wrong, e.g. `is not a number`.
        problem: &'static str,
    },
    /// The spec is invalid, so no XML is written for it.
    #[error(transparent)]
    InvalidSpec(#[from] SpecErrors),
    /// The spec asks for UEFI and the host has no OVMF firmware.
    #[error(
        "UEFI firmware (OVMF) is not installed on this host: install the ovmf package or use BIOS firmware"
    )]
    UefiFirmwareMissing,
    /// An element of [`VmSpec::extra_xml`] cannot be used.
    #[error("{field}: {reason}")]
    InvalidExtraXml {
        /// The field, e.g. `extra_xml.devices[0]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl VmSpec {
    /// The libvirt domain XML for this spec on a host with `host`'s capabilities: domain
    /// type `kvm` when KVM is usable, else `qemu` (TCG). The spec is validated first with
    /// [`SpecLimits::default`](crate::SpecLimits::default).
    ///
    /// Autostart is not part of domain XML: set it through libvirt. It is recorded in the
    /// domain's metadata so [`VmSpec::from_domain_xml`] reads it back.
    pub fn to_domain_xml(&self, host: &HostCapabilities) -> Result<String, XmlError> {
        generate::domain_xml(self, host)
    }

    /// Reads domain XML (e.g. `virsh dumpxml --security-info`; without it libvirt leaves
    /// out the VNC password) into a spec as far as the spec can express it. Devices and
    /// settings it cannot express are kept verbatim in [`VmSpec::extra_xml`] and listed in
    /// [`ImportedDomain::preserved`]; what is lost is listed in [`ImportedDomain::dropped`].
    /// Host-specific parts (emulator path, PCI addresses, live state) are left to libvirt.
    pub fn from_domain_xml(xml: &str) -> Result<ImportedDomain, XmlError> {
        import::domain(xml)
    }
}

#[cfg(test)]
mod tests;
