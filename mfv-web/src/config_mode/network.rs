//! Config mode's network step: the cards the host has, a provisional network change, and its
//! confirmation from wherever the browser still reaches the host afterwards.
//!
//! A network change can cut the browser off: the host gets another address, or the old one
//! stops answering. So the change is applied provisionally (PID 1 rolls it back unless it is
//! confirmed in time) and confirmed from the address that works once it is in effect. At the
//! same address the wizard confirms in place with its session. At a new address the browser
//! has no session (a `__Host-` cookie belongs to the address that set it), so the answer to
//! the apply carries a link with a one-time key standing in for the session there: opening
//! it confirms the change and moves the session to that browser. The key is random, compared
//! in constant time and works once; a wrong one spends nothing.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mfv_api::{NetworkOutcome, Request as DaemonRequest};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use super::{ConfigMode, DaemonError, DaemonLink, Refusal, daemon_refusal, new_random_hex};
use crate::daemon::{NETWORK_TIMEOUT, network_outcome, rolled_back, unexpected_outcome};
use crate::reply::ErrorBody;

/// What `POST /api/v1/setup/network/apply` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApplyRequest {
    /// The `[network]` section, header included.
    pub network_toml: String,
    /// Seconds the host waits for the confirmation.
    pub confirm_within_secs: u32,
    /// Where the host answers once the change is in effect (`192.0.2.10` or
    /// `192.0.2.10:8443`), when that is not where it answers now.
    #[serde(default)]
    pub confirm_address: Option<String>,
}

/// What `POST /api/v1/setup/network/confirm` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmRequest {
    /// The change to keep.
    pub apply_id: u64,
}

/// A change applied and waiting for its confirmation, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Applied {
    /// What the confirmation names.
    apply_id: u64,
    /// Seconds left to confirm.
    confirm_within_secs: u32,
    /// The link that confirms the change from the address the host answers on afterwards.
    confirm_url: String,
    /// What was changed, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<String>,
}

/// The change config mode applied last, while it waits for its confirmation.
#[derive(Debug, Clone)]
pub(super) struct PendingChange {
    apply_id: u64,
    /// The one-time key of the confirm link.
    key: String,
    /// The confirm link.
    confirm_url: String,
    /// When the host rolls the change back unless confirmed.
    deadline: Instant,
}

impl PendingChange {
    /// The change as the API shows it at `now`, or `None` once its deadline has passed.
    pub(super) fn shown_at(&self, now: Instant) -> Option<Applied> {
        let left = self.deadline.checked_duration_since(now)?;
        Some(Applied {
            apply_id: self.apply_id,
            confirm_within_secs: u32::try_from(left.as_secs()).unwrap_or(u32::MAX),
            confirm_url: self.confirm_url.clone(),
            changes: Vec::new(),
        })
    }
}

/// The `host[:port]` a browser reaches the host at, from `text` as a person types it or a
/// `Host` header carries it: a host name, an IPv4 address or an IPv6 address (bare or in
/// brackets), then an optional port. `None` for anything else, so nothing but an address
/// gets into a link.
pub(super) fn authority(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<Ipv6Addr>() {
        return Some(format!("[{address}]"));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address.to_string());
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        Some(_) => return None,
        None => (text, None),
    };
    if let Some(port) = port {
        port.parse::<u16>().ok().filter(|port| *port != 0)?;
    }
    let plain = host.parse::<Ipv4Addr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            }));
    plain.then(|| text.to_ascii_lowercase())
}

/// The refusal of a confirmation of a change that is not waiting here.
fn not_waiting() -> Refusal {
    (
        StatusCode::NOT_FOUND,
        ErrorBody::new(
            "no_pending_change",
            "no network change applied here waits for this confirmation: it was confirmed \
             already, rolled back, or never applied",
        )
        .with_field("apply_id"),
    )
}

impl<A: DaemonLink> ConfigMode<A> {
    /// The change waiting for its confirmation, if one does.
    pub(super) fn pending_network(&self) -> Option<Applied> {
        self.lock_pending()
            .as_ref()
            .and_then(|pending| pending.shown_at(Instant::now()))
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Option<PendingChange>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies `request` provisionally; `host` is the `Host` the request came to, where the
    /// confirm link points unless the request names another address.
    pub(super) async fn apply_network(
        &self,
        request: ApplyRequest,
        host: Option<&str>,
    ) -> Result<Applied, Refusal> {
        let address = match &request.confirm_address {
            Some(typed) => authority(typed).ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    ErrorBody::new(
                        "invalid_request",
                        "not an address a browser can open: give a host name, an IPv4 or an \
                         IPv6 address, optionally with :PORT",
                    )
                    .with_field("confirm_address"),
                )
            })?,
            None => host.and_then(authority).ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    ErrorBody::new(
                        "invalid_request",
                        "the request's Host header is not an address; name the address the \
                         host answers on afterwards",
                    )
                    .with_field("confirm_address"),
                )
            })?,
        };
        let daemon_request = DaemonRequest::NetworkApply {
            network_toml: request.network_toml,
            confirm_within_secs: request.confirm_within_secs,
        };
        daemon_request
            .validate()
            .map_err(|error| (StatusCode::BAD_REQUEST, ErrorBody::from(&error)))?;
        let key = new_random_hex().map_err(internal)?;
        let outcome = self
            .ask(daemon_request, NETWORK_TIMEOUT, network_outcome)
            .await?;
        match outcome {
            NetworkOutcome::Applied {
                apply_id,
                confirm_within_secs,
                changes,
            } => {
                let confirm_url =
                    format!("https://{address}/setup/confirm?apply={apply_id}&key={key}");
                let deadline = Instant::now() + Duration::from_secs(confirm_within_secs.into());
                *self.lock_pending() = Some(PendingChange {
                    apply_id,
                    key,
                    confirm_url: confirm_url.clone(),
                    deadline,
                });
                println!(
                    "mfv-web: config mode: network change {apply_id} applied, to be confirmed \
                     within {confirm_within_secs} s"
                );
                Ok(Applied {
                    apply_id,
                    confirm_within_secs,
                    confirm_url,
                    changes,
                })
            }
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason).into()),
            other => Err(unexpected_outcome(&other).into()),
        }
    }

    /// Keeps the waiting change `apply_id`, asked by the session holder at the same address.
    pub(super) async fn confirm_network(&self, apply_id: u64) -> Result<(), Refusal> {
        let pending = {
            let mut pending = self.lock_pending();
            if pending.as_ref().map(|pending| pending.apply_id) != Some(apply_id) {
                return Err(not_waiting());
            }
            pending.take()
        };
        self.send_confirm(apply_id, pending).await
    }

    /// Keeps the waiting change `apply_id` for whoever holds its one-time `key`, and gives
    /// the session to `client`: its new id. A wrong key spends nothing.
    pub(super) async fn confirm_network_with_key(
        &self,
        apply_id: u64,
        key: &str,
        client: SocketAddr,
    ) -> Result<String, Refusal> {
        let pending = {
            let mut pending = self.lock_pending();
            let matches = pending.as_ref().is_some_and(|pending| {
                pending.apply_id == apply_id
                    && mfv_auth::constant_time_eq(pending.key.as_bytes(), key.as_bytes())
            });
            if !matches {
                return Err((
                    StatusCode::FORBIDDEN,
                    ErrorBody::new(
                        "confirm_key_wrong",
                        "this confirm link is not the one of the network change waiting here, \
                         or it was used already",
                    ),
                ));
            }
            pending.take()
        };
        let id = new_random_hex().map_err(internal)?;
        self.send_confirm(apply_id, pending).await?;
        self.start_session(id.clone(), client);
        println!(
            "mfv-web: config mode: network change {apply_id} confirmed from {client}, which \
             holds the setup session now"
        );
        Ok(id)
    }

    /// Sends the confirmation of `apply_id`, whose waiting change was taken out as `pending`;
    /// it is put back when the daemon could not be asked, so the link still works.
    async fn send_confirm(
        &self,
        apply_id: u64,
        pending: Option<PendingChange>,
    ) -> Result<(), Refusal> {
        let answer = match self
            .daemon
            .ask(DaemonRequest::NetworkConfirm { apply_id }, NETWORK_TIMEOUT)
            .await
        {
            Ok(response) => {
                let name = response.name();
                network_outcome(response).ok_or_else(|| super::unexpected(name))
            }
            Err(error @ DaemonError::Unreachable(_)) => {
                *self.lock_pending() = pending;
                Err(daemon_refusal(error))
            }
            Err(error) => Err(daemon_refusal(error)),
        }?;
        match answer {
            NetworkOutcome::Confirmed => Ok(()),
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason).into()),
            other => Err(unexpected_outcome(&other).into()),
        }
    }
}

/// The refusal when no random key could be made.
fn internal(message: String) -> Refusal {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new("internal", message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_make_a_confirm_link() {
        for (typed, expected) in [
            ("192.0.2.10", Some("192.0.2.10")),
            (" 192.0.2.10:8443 ", Some("192.0.2.10:8443")),
            ("2001:db8::10", Some("[2001:db8::10]")),
            ("[2001:db8::10]:443", Some("[2001:db8::10]:443")),
            ("VMHost.example.org", Some("vmhost.example.org")),
            ("vmhost:443", Some("vmhost:443")),
            ("vmhost:0", None),
            ("vmhost:99999", None),
            ("evil.example/x", None),
            ("a b", None),
            ("-bad.example", None),
            ("user@host", None),
            ("", None),
        ] {
            assert_eq!(authority(typed).as_deref(), expected, "{typed:?}");
        }
    }
}
