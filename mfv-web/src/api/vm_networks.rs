//! libvirt's virtual networks, for the forms that give a VM a network card: a card is
//! plugged into a host bridge or into one of these (`nics[].source.network`), and a form
//! that lists them offers only names that exist.

use mfv_auth::Permission;
use mfv_vm::NetworkInfo;
use schemars::JsonSchema;
use serde::Serialize;
use warp::http::{Method, StatusCode};

use super::doc::{Answer, schema};
use super::table::{Call, HandlerFuture, Route};
use super::vms::{libvirt, virt_error, with_hypervisor};
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route::allowed(
        Method::GET,
        "/api/v1/vm-networks",
        Permission::ViewInventory,
        (None, Answer::Ok(schema::<NetworkList>)),
        "list_vm_networks",
        "Every libvirt virtual network: name, whether it is active and autostarted, its \
         bridge and its forward mode (nat, route, isolated, ...)",
        list_vm_networks,
    )]
}

/// What `GET /api/v1/vm-networks` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct NetworkList {
    /// The networks, by name.
    networks: Vec<NetworkInfo>,
}

fn list_vm_networks(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let networks = with_hypervisor(uri, |hypervisor| {
            hypervisor.list_networks().map_err(virt_error)
        })
        .await?;
        Ok(json_response(StatusCode::OK, &NetworkList { networks }))
    })
}
