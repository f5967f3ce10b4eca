//! The host daemon, as this server reaches it: one request per connection over its socket,
//! each with a deadline. Config mode and the API ask it for everything privileged, so what
//! both need to read its answers is here too: how long each kind of request may take, the
//! network cards of its inventory, and what a network change's outcome means.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use mfv_api::{NetworkOutcome, Request as DaemonRequest, Response as DaemonResponse};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use crate::api::ApiError;

/// How long the host daemon may take to answer a request that waits for nothing on the host.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the host daemon may take to answer a network request: it waits up to 30 s for
/// PID 1, which applies and verifies the change.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(40);

/// How long the host daemon may take to restart a service: it waits up to 10 s for PID 1 to
/// start the new process.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the host daemon may take to read or save the configuration: it waits up to 30 s
/// for its turn at the config volume, then mounts it.
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(45);

/// Why the host daemon gave no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon refused the request.
    #[error("{}", .0.message)]
    Refused(mfv_api::ApiError),
    /// The daemon could not be asked.
    #[error("the host daemon could not be asked: {0}")]
    Unreachable(String),
}

/// How this server reaches the host daemon, which does the privileged work.
pub trait DaemonLink: Send + Sync + 'static {
    /// Sends `request` and waits at most `within` for its answer.
    fn ask(
        &self,
        request: DaemonRequest,
        within: Duration,
    ) -> impl Future<Output = Result<DaemonResponse, DaemonError>> + Send;
}

/// The host daemon on its socket: one connection per request.
#[derive(Debug, Clone)]
pub struct DaemonSocket {
    /// The daemon's socket.
    pub socket: PathBuf,
}

impl DaemonLink for DaemonSocket {
    async fn ask(
        &self,
        request: DaemonRequest,
        within: Duration,
    ) -> Result<DaemonResponse, DaemonError> {
        let ask = async {
            let mut client = mfv_api::AsyncClient::connect_as(&self.socket, "mfv-web").await?;
            client.request(&request).await
        };
        match tokio::time::timeout(within, ask).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(mfv_api::ClientError::Api(error))) => Err(DaemonError::Refused(error)),
            Ok(Err(error)) => Err(DaemonError::Unreachable(mfv_linux::error_chain(&error))),
            Err(_) => Err(DaemonError::Unreachable(format!(
                "no answer within {} s",
                within.as_secs()
            ))),
        }
    }
}

impl From<DaemonError> for ApiError {
    /// The daemon's refusal with the status its kind stands for (and, for an invalid
    /// configuration, every problem); a daemon that could not be asked is `503 unavailable`.
    fn from(error: DaemonError) -> ApiError {
        match error {
            DaemonError::Refused(error) => ApiError::from(&error),
            DaemonError::Unreachable(_) => ApiError::unavailable(format!(
                "{error}; look at the host's console, then try again"
            )),
        }
    }
}

/// The daemon's answer named `response`, which does not answer the request asked.
pub(crate) fn unexpected_answer(response: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "internal",
        format!("the host daemon answered with {response}, which does not answer the request"),
    )
}

/// A network card as the pages and the API list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub(crate) struct NetworkCard {
    /// The kernel's name, e.g. `eth0`.
    name: String,
    /// The hardware address, if it has one.
    mac: Option<String>,
    /// The driver, e.g. `e1000`.
    driver: Option<String>,
    /// `up` when the card has carrier (a cable to a live port), else `down`.
    link: &'static str,
    /// The link speed in Mbit/s, where the driver tells it.
    speed_mbps: Option<u32>,
}

/// The part of mfv-probe's inventory the card list reads (the daemon sends it as JSON).
#[derive(Debug, Deserialize)]
struct InventoryNics {
    nics: Vec<InventoryNic>,
}

/// One interface of the inventory.
#[derive(Debug, Deserialize)]
struct InventoryNic {
    name: String,
    mac: Option<String>,
    driver: Option<String>,
    carrier: bool,
    speed_mbps: Option<u32>,
    is_virtual: bool,
}

/// The network cards of the daemon's `inventory` (software interfaces such as loopback left
/// out), or the error saying the inventory could not be read.
pub(crate) fn network_cards(inventory: serde_json::Value) -> Result<Vec<NetworkCard>, ApiError> {
    let InventoryNics { nics } = serde_json::from_value(inventory).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "internal",
            format!(
                "the host daemon's inventory lists no network cards this server reads: {error}"
            ),
        )
    })?;
    Ok(nics
        .into_iter()
        .filter(|nic| !nic.is_virtual)
        .map(|nic| NetworkCard {
            name: nic.name,
            mac: nic.mac,
            driver: nic.driver,
            link: if nic.carrier { "up" } else { "down" },
            speed_mbps: nic.speed_mbps,
        })
        .collect())
}

/// The outcome a network answer carries.
pub(crate) fn network_outcome(response: DaemonResponse) -> Option<NetworkOutcome> {
    match response {
        DaemonResponse::Network(outcome) => Some(outcome),
        _ => None,
    }
}

/// The refusal of a change the host undid: the previous network is back.
pub(crate) fn rolled_back(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "rolled_back",
        format!("the host went back to its previous network: {reason}"),
    )
}

/// The refusal of a network outcome that does not answer the request.
pub(crate) fn unexpected_outcome(outcome: &NetworkOutcome) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "internal",
        format!(
            "the host daemon answered with the network outcome {outcome:?}, which does not \
             answer the request"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_list_leaves_software_interfaces_out() {
        let inventory = serde_json::json!({
            "nics": [
                {"name": "lo", "mac": "00:00:00:00:00:00", "driver": null, "carrier": true,
                 "speed_mbps": null, "is_virtual": true, "bus": null},
                {"name": "eth0", "mac": "52:54:00:12:34:56", "driver": "e1000", "carrier": true,
                 "speed_mbps": 1000, "is_virtual": false, "operstate": "up"},
                {"name": "eth1", "mac": null, "driver": "virtio_net", "carrier": false,
                 "speed_mbps": null, "is_virtual": false},
            ],
            "block_devices": [],
        });
        let cards = network_cards(inventory).unwrap_or_default();
        let shown: Vec<(&str, &str)> = cards
            .iter()
            .map(|card| (card.name.as_str(), card.link))
            .collect();
        assert_eq!(shown, [("eth0", "up"), ("eth1", "down")]);
        let unreadable = network_cards(serde_json::json!({"disks": []})).unwrap_err();
        assert_eq!(unreadable.status, StatusCode::BAD_GATEWAY);
    }
}
