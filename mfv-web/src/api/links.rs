//! What the API reaches besides its callers' authority: the host daemon, for everything
//! privileged (the host's state, power, network and configuration), and libvirt, for VMs,
//! storage and networks, whose socket admits this server's group.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mfv_api::{Request as DaemonRequest, Response as DaemonResponse};
use warp::http::StatusCode;

use super::{ApiError, AuthorityFuture};
use crate::daemon::{DaemonLink, unexpected_answer};

/// The host daemon, as the API's handlers ask it: its refusals become the API's errors with
/// their kind, field and status.
pub trait HostLink: Send + Sync + 'static {
    /// Sends `request` and waits at most `within` for its answer.
    fn ask(&self, request: DaemonRequest, within: Duration) -> AuthorityFuture<'_, DaemonResponse>;
}

impl<T: DaemonLink> HostLink for T {
    fn ask(&self, request: DaemonRequest, within: Duration) -> AuthorityFuture<'_, DaemonResponse> {
        Box::pin(async move {
            DaemonLink::ask(self, request, within)
                .await
                .map_err(ApiError::from)
        })
    }
}

/// Checks `request` as the daemon will before anything else (ranges, empty names), asks
/// `host` and takes the answer `pick` wants (`None`: an answer of another kind, which does
/// not answer the request).
pub(crate) async fn ask_host<T>(
    host: &dyn HostLink,
    request: DaemonRequest,
    within: Duration,
    pick: impl FnOnce(DaemonResponse) -> Option<T>,
) -> Result<T, ApiError> {
    request.validate().map_err(|error| ApiError::from(&error))?;
    let response = host.ask(request, within).await?;
    let name = response.name();
    pick(response).ok_or_else(|| unexpected_answer(name))
}

/// No host daemon: `--dev` on an ordinary machine. Every request is refused, saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHostDaemon;

impl HostLink for NoHostDaemon {
    fn ask(&self, request: DaemonRequest, _: Duration) -> AuthorityFuture<'_, DaemonResponse> {
        Box::pin(async move {
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "this server runs without a host daemon (mfv-web --dev): the host's state, \
                     services, logs, power, network and configuration are not available here \
                     ({} was asked)",
                    request.name()
                ),
            ))
        })
    }
}

/// Where libvirt is: a connection URI (`qemu:///system` on the appliance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtUri(pub String);

/// Whether the host's VMs are restored, from the file the VM keeper writes once they are
/// ([`mfv_host::vm_keeper::vms_restored_marker`]). libvirtd starts after the web server: until
/// the keeper has restored the VMs from the config volume, libvirt lists none or some of them,
/// and the VM routes answer 503 rather than a list without them.
#[derive(Debug)]
pub struct RestoredVms {
    marker: PathBuf,
    seen: AtomicBool,
}

impl RestoredVms {
    /// Restored once `marker` exists.
    pub fn once_marked_by(marker: PathBuf) -> RestoredVms {
        RestoredVms {
            marker,
            seen: AtomicBool::new(false),
        }
    }

    /// Whether the marker exists; once it has been seen, it is not looked for again.
    pub fn are_restored(&self) -> bool {
        if self.seen.load(Ordering::Relaxed) {
            return true;
        }
        let restored = self.marker.is_file();
        if restored {
            self.seen.store(true, Ordering::Relaxed);
        }
        restored
    }
}

/// What VMs created here may use (KVM, OVMF).
#[derive(Debug, Clone)]
pub enum VmCapabilities {
    /// Probed under this root at each creation: the appliance loads the KVM module only once
    /// its web server answers, so what the server found at its start may no longer be true.
    ProbedAt(PathBuf),
    /// Always these (tests).
    Fixed(mfv_vm::HostCapabilities),
}

impl VmCapabilities {
    /// What VMs may use now.
    pub fn now(&self) -> mfv_vm::HostCapabilities {
        match self {
            VmCapabilities::ProbedAt(root) => mfv_vm::HostCapabilities::probe_at(root),
            VmCapabilities::Fixed(capabilities) => capabilities.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vms_are_restored_once_the_marker_appears_and_stay_so() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("vms-restored");
        let restored = RestoredVms::once_marked_by(marker.clone());
        assert!(!restored.are_restored());
        std::fs::write(&marker, b"").unwrap();
        assert!(restored.are_restored());
        std::fs::remove_file(&marker).unwrap();
        assert!(restored.are_restored());
    }

    #[test]
    fn probed_capabilities_see_kvm_that_appears_after_the_start() {
        let root = tempfile::tempdir().unwrap();
        let capabilities = VmCapabilities::ProbedAt(root.path().to_owned());
        assert!(!capabilities.now().kvm_usable);
        std::fs::create_dir(root.path().join("dev")).unwrap();
        std::fs::write(root.path().join("dev/kvm"), b"").unwrap();
        assert!(capabilities.now().kvm_usable);
    }
}
