//! Cloning a shut-off VM: `POST /api/v1/vms/{name}/clone` with `{"name", "start"}`.
//!
//! The request is checked before a task starts, so what can be known at once is answered
//! at once: a source that is not shut off, a new name taken by a VM or a volume the copies
//! would need are `409`, a bad name `400`. The copying (full copies of every disk, see
//! `mfv_vm::Hypervisor::clone_vm`) then runs as a task reporting each disk. The source stays
//! locked while its disks are copied, so nobody starts or deletes it meanwhile; the task
//! holds the new name's lock, so a second clone into the same name waits its turn.

use mfv_auth::Permission;
use mfv_vm::{CloneError, VmSummary};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::tasks::accepted;
use super::vms::{connect, invalid_spec, libvirt, to_json, virt_error, with_hypervisor};

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::POST,
        path: "/api/v1/vms/{name}/clone",
        access: Access::Allowed(Permission::ManageVms),
        max_body: SMALL_BODY,
        query: &[],
        request: Some(schema::<CloneRequest>),
        answer: Answer::Task(schema::<Cloned>),
        operation: "clone_vm",
        summary: "Clone a shut-off VM as {\"name\"}: full copies of its disks, new UUID and \
                  MAC addresses, the same CD-ROM image; by a task (\"start\": true starts \
                  the clone)",
        handler: clone,
    }]
}

/// The clone's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CloneRequest {
    /// The new VM's name.
    name: String,
    /// Start the clone once it is defined.
    #[serde(default)]
    start: bool,
}

/// A clone task's result: the new VM, and the volumes copied for it.
#[derive(Debug, Serialize, JsonSchema)]
struct Cloned {
    vm: VmSummary,
    /// The VM cloned.
    source: String,
    volumes: Vec<ClonedVolume>,
}

/// A disk volume copied for the clone.
#[derive(Debug, Serialize, JsonSchema)]
struct ClonedVolume {
    pool: String,
    /// The copy.
    volume: String,
    /// The source VM's volume it copies.
    copy_of: String,
    /// The disk's target in the clone (`vda`).
    target: String,
}

/// A clone's failure as the API's error.
fn clone_error(error: CloneError) -> ApiError {
    let message = mfv_linux::error_chain(&error);
    match error {
        CloneError::SourceNotShutOff { .. } | CloneError::NotCopyable { .. } => {
            ApiError::conflict(message)
        }
        CloneError::NameTaken { .. } | CloneError::VolumeTaken { .. } => {
            ApiError::conflict(message).with_field("name")
        }
        CloneError::InvalidSpec(errors) => invalid_spec(&errors),
        CloneError::Virt(error) => virt_error(error),
        CloneError::Xml(_) | CloneError::Copy { .. } | CloneError::LeftBehind { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "libvirt", message)
        }
    }
}

fn clone(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let request: CloneRequest = call.json()?;
        let source = call.param("name").to_owned();
        if request.name == source {
            return Err(ApiError::invalid(
                "name",
                "the clone needs a name of its own, not the source's",
            ));
        }
        let source_lock = call.state.tasks.lock(&source, "vm_clone")?;
        let new_name = request.name.clone();
        let plan = with_hypervisor(uri.clone(), move |hypervisor| {
            hypervisor
                .plan_clone(&source, &new_name)
                .map_err(clone_error)
        })
        .await?;
        let host = call.state.vm_capabilities.now();
        let start = request.start;
        let task = call
            .state
            .tasks
            .spawn("vm_clone", &request.name, move |progress| {
                // Held until the copies are made and the clone defined.
                let _source_lock = source_lock;
                let hypervisor = connect(&uri)?;
                let name = hypervisor
                    .clone_vm(&plan, &host, &mut |step| {
                        let percent = (step.copied * 100)
                            .checked_div(step.disks)
                            .map_or(0, |percent| percent.min(99));
                        let message = match step.copying {
                            Some(copy) => format!(
                                "copying disk {} ({} of {}): {}/{} to {}/{}",
                                copy.target,
                                step.copied + 1,
                                step.disks,
                                copy.pool,
                                copy.source_volume,
                                copy.pool,
                                copy.volume
                            ),
                            None => format!("defining {:?}", plan.spec.name),
                        };
                        progress.report(u8::try_from(percent).ok(), message);
                    })
                    .map_err(clone_error)?;
                if start {
                    progress.report(Some(99), format!("starting {name:?}"));
                    hypervisor.start(&name).map_err(|error| {
                        let refusal = virt_error(error);
                        let message = format!(
                            "VM {name:?} was cloned but did not start: {}",
                            refusal.body.message
                        );
                        ApiError::new(refusal.status, &refusal.body.kind, message)
                    })?;
                }
                let info = hypervisor.info(&name).map_err(virt_error)?;
                Ok(to_json(&Cloned {
                    vm: info.summary,
                    source: plan.source,
                    volumes: plan
                        .copies
                        .into_iter()
                        .map(|copy| ClonedVolume {
                            pool: copy.pool,
                            volume: copy.volume,
                            copy_of: copy.source_volume,
                            target: copy.target,
                        })
                        .collect(),
                }))
            })?;
        Ok(accepted(&task))
    })
}
