//! The host network: the cards and the network in effect, and changes made safely.
//!
//! A change is applied provisionally by PID 1 and rolled back unless it is confirmed in
//! time, so a change that cuts the client off undoes itself: apply, then confirm from
//! wherever the host still answers (the same address, or the new one with a new login).
//! A change the host undid is `409 rolled_back` with the reason.

use mfv_api::{NetworkOutcome, Request as DaemonRequest, Response as DaemonResponse};
use mfv_auth::Permission;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::doc::{Answer, schema};
use super::links::ask_host;
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use crate::daemon::{
    ANSWER_TIMEOUT, NETWORK_TIMEOUT, NetworkCard, network_cards, network_outcome, rolled_back,
    unexpected_outcome,
};
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/network",
            access: Access::Allowed(Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<NetworkView>),
            operation: "get_network",
            summary: "The network cards (name, MAC, driver, link, speed) and the [network] \
                      section in effect",
            handler: get_network,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/network/apply",
            access: Access::Allowed(Permission::ManageNetwork),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ApplyRequest>),
            answer: Answer::Ok(schema::<Applied>),
            operation: "apply_network",
            summary: "Apply a [network] section provisionally: it is rolled back unless \
                      confirmed within confirm_within_secs (1 to 600)",
            handler: apply_network,
        },
        Route {
            method: Method::POST,
            path: "/api/v1/network/confirm",
            access: Access::Allowed(Permission::ManageNetwork),
            max_body: SMALL_BODY,
            query: &[],
            request: Some(schema::<ConfirmRequest>),
            answer: Answer::Ok(schema::<Confirmed>),
            operation: "confirm_network",
            summary: "Keep a provisionally applied network change, by its apply_id",
            handler: confirm_network,
        },
    ]
}

/// What `POST /api/v1/network/apply` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    /// The `[network]` section, header included.
    network_toml: String,
    /// Seconds the host waits for the confirmation.
    confirm_within_secs: u32,
}

/// What `POST /api/v1/network/confirm` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    /// The change to keep.
    apply_id: u64,
}

/// A change applied and waiting for its confirmation.
#[derive(Debug, Serialize, JsonSchema)]
struct Applied {
    /// What the confirmation names.
    apply_id: u64,
    /// Seconds left to confirm.
    confirm_within_secs: u32,
    /// What was changed, one line each.
    changes: Vec<String>,
}

/// What `GET /api/v1/network` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct NetworkView {
    /// The network cards.
    interfaces: Vec<NetworkCard>,
    /// The `[network]` section in effect, if the host has one.
    in_effect: Option<String>,
}

/// What a confirmation answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Confirmed {
    /// The change kept.
    apply_id: u64,
    /// Always `confirmed`.
    outcome: &'static str,
}

fn get_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let host = call.state.host.as_ref();
        let inventory =
            ask_host(
                host,
                DaemonRequest::Inventory,
                ANSWER_TIMEOUT,
                |response| match response {
                    DaemonResponse::Inventory { inventory } => Some(inventory),
                    _ => None,
                },
            )
            .await?;
        let interfaces = network_cards(inventory)?;
        let in_effect = ask_host(
            host,
            DaemonRequest::HostStatus,
            ANSWER_TIMEOUT,
            |response| match response {
                DaemonResponse::HostStatus(status) => Some(status.network_in_effect),
                _ => None,
            },
        )
        .await?;
        Ok(json_response(
            StatusCode::OK,
            &NetworkView {
                interfaces,
                in_effect,
            },
        ))
    })
}

fn apply_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let ApplyRequest {
            network_toml,
            confirm_within_secs,
        } = call.json()?;
        let outcome = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::NetworkApply {
                network_toml,
                confirm_within_secs,
            },
            NETWORK_TIMEOUT,
            network_outcome,
        )
        .await?;
        match outcome {
            NetworkOutcome::Applied {
                apply_id,
                confirm_within_secs,
                changes,
            } => {
                if let Some(caller) = &call.caller {
                    println!(
                        "mfv-web: {} applied network change {apply_id} from {}, to be \
                         confirmed within {confirm_within_secs} s",
                        caller.username, call.client
                    );
                }
                Ok(json_response(
                    StatusCode::OK,
                    &Applied {
                        apply_id,
                        confirm_within_secs,
                        changes,
                    },
                ))
            }
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason)),
            other => Err(unexpected_outcome(&other)),
        }
    })
}

fn confirm_network(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let ConfirmRequest { apply_id } = call.json()?;
        let outcome = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::NetworkConfirm { apply_id },
            NETWORK_TIMEOUT,
            network_outcome,
        )
        .await?;
        match outcome {
            NetworkOutcome::Confirmed => Ok(json_response(
                StatusCode::OK,
                &Confirmed {
                    apply_id,
                    outcome: "confirmed",
                },
            )),
            NetworkOutcome::RolledBack { reason } => Err(rolled_back(&reason)),
            other => Err(unexpected_outcome(&other)),
        }
    })
}
