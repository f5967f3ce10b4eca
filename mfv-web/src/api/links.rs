//! What the API reaches besides its callers' authority: the host daemon, for everything
//! privileged (the host's state, power, network and configuration), and libvirt, for VMs,
//! storage and networks, whose socket admits this server's group.

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
