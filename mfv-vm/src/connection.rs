//! A connection to libvirt at any URI: local system daemon, a private socket, or later
//! `qemu+ssh://` to another host.

use virt::connect::Connect;
use virt::domain::Domain;

use crate::libvirt::{ObjectKind, VirtError, connect_error, operation_error};

/// An open connection to one libvirt daemon (or libvirt's in-process test driver).
///
/// Every VM, storage, snapshot and persistence operation is a method on this type.
/// libvirt connections are thread-safe: share one `Hypervisor` between threads.
#[derive(Debug)]
pub struct Hypervisor {
    pub(crate) connection: Connect,
    uri: String,
}

impl Hypervisor {
    /// Opens a read-write connection to `uri`, e.g. `qemu:///system`,
    /// `qemu+unix:///system?socket=/run/x/libvirt-sock` or `test:///default`.
    pub fn connect(uri: &str) -> Result<Self, VirtError> {
        // libvirt prints every error on stderr by default; ours are returned instead.
        virt::error::clear_error_callback();
        let connection = Connect::open(Some(uri)).map_err(|error| connect_error(uri, error))?;
        Ok(Self {
            connection,
            uri: uri.to_owned(),
        })
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The hypervisor driver's version as `major.minor.micro` (e.g. QEMU `7.2.0`).
    pub fn hypervisor_version(&self) -> Result<String, VirtError> {
        let version = self
            .connection
            .hyp_version()
            .map_err(|error| connect_error(&self.uri, error))?;
        Ok(format!(
            "{}.{}.{}",
            version / 1_000_000,
            version / 1000 % 1000,
            version % 1000
        ))
    }

    /// Looks a VM up by name.
    pub(crate) fn domain(&self, name: &str) -> Result<Domain, VirtError> {
        self.connection
            .lookup_domain_by_name(name)
            .map_err(|error| operation_error("look up", ObjectKind::Vm, name, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_means_daemon_not_running() {
        let error = Hypervisor::connect("qemu+unix:///system?socket=/nonexistent/mfv/libvirt-sock")
            .unwrap_err();
        assert!(
            matches!(error, VirtError::DaemonNotRunning { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("start libvirtd"), "{error}");
    }

    #[test]
    fn broken_test_driver_file_is_a_connect_error() {
        let error = Hypervisor::connect("test:///nonexistent/mfv/driver.xml").unwrap_err();
        assert!(matches!(error, VirtError::Connect { .. }), "{error:?}");
    }

    #[test]
    fn test_driver_connects() {
        let hypervisor = Hypervisor::connect("test:///default").unwrap();
        assert_eq!(hypervisor.uri(), "test:///default");
        assert!(!hypervisor.hypervisor_version().unwrap().is_empty());
    }
}
