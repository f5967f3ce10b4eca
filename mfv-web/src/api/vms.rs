//! VMs: list, show, create, start, shut down, force off, reboot, delete, autostart, the
//! CD-ROM's media and snapshots, on the libvirt the server was given.
//!
//! The handlers are thin: each opens a connection to libvirt per request on the blocking
//! pool (libvirt's client blocks) and makes one call into mfv-vm, or one workflow of
//! mfv-host (`vm::create`, `vm::describe`). What takes long — creating a VM, shutting one
//! down with a deadline, taking a snapshot — answers `202 Accepted` with a task
//! ([`super::tasks`]); the rest answers when it is done. Every change holds the VM's lock
//! while it runs, so a second change of the same VM meanwhile is refused with `409`.
//!
//! A shutdown asks the guest (ACPI) and forces the VM off when the deadline passes (like
//! Proxmox's `forceStop`, always on): a shutdown task always ends with the VM off, and its
//! result says how (`graceful`, `forced_off`, `already_off`).
//!
//! Changing the CD-ROM's media needs `manage_vms`, not `control_vms`: it changes the VM's
//! definition and gives the guest any file libvirt can read on the host, as a spec's disk
//! paths do.

use std::path::PathBuf;
use std::time::Duration;

use mfv_auth::Permission;
use mfv_host::vm::VmDescription;
use mfv_host::vm::{self as workflows, VmWorkflowError};
use mfv_vm::{
    Hypervisor, ObjectKind, ShutdownOutcome, SnapshotInfo, SpecErrors, VirtError, VmSpec,
    VmSummary, VolumePolicy,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::query::{Param, ParamKind};
use super::table::{Call, HandlerFuture, Route};
use super::tasks::accepted;
use crate::reply::{json_bytes, json_response, json_text_response};

/// How long a shutdown waits for the guest when the request does not say.
const DEFAULT_SHUTDOWN_SECS: u64 = 60;

/// The longest shutdown deadline taken.
const MAX_SHUTDOWN_SECS: u64 = 3600;

/// The parameters of `DELETE /api/v1/vms/{name}`.
const DELETE_PARAMETERS: &[Param] = &[Param {
    name: "volumes",
    kind: ParamKind::Choice {
        choices: &["keep", "delete"],
        default: Some("keep"),
    },
    about: "keep the VM's disk volumes, or delete them with it",
}];

/// A VM's summary, as a change to it answers.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct VmAnswer {
    vm: VmSummary,
}

/// What `GET /api/v1/vms` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct VmList {
    vms: Vec<VmSummary>,
}

/// What `GET /api/v1/vms/{name}` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct VmDetail {
    vm: VmDescription,
}

/// What a VM's deletion answers.
#[derive(Debug, Serialize, JsonSchema)]
struct Deleted {
    /// The VM's name.
    deleted: String,
    /// `kept` or `deleted`.
    volumes: &'static str,
}

/// What a shutdown task's result is.
#[derive(Debug, Serialize, JsonSchema)]
struct ShutdownResult {
    outcome: ShutdownOutcome,
    deadline_secs: u64,
}

/// What `GET /api/v1/vms/{name}/snapshots` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct SnapshotList {
    snapshots: Vec<SnapshotInfo>,
}

/// What a snapshot task's result is.
#[derive(Debug, Serialize, JsonSchema)]
struct SnapshotAnswer {
    snapshot: SnapshotInfo,
}

/// `value` as JSON, for a task's result (plain data: serializing it cannot fail).
pub(super) fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The routes.
pub fn routes() -> Vec<Route> {
    let route = Route::allowed;
    let vm = Answer::Ok(schema::<VmAnswer>);
    use Permission::{ControlVms, ManageVms, ViewInventory};
    vec![
        route(
            Method::GET,
            "/api/v1/vms",
            ViewInventory,
            (None, Answer::Ok(schema::<VmList>)),
            "list_vms",
            "Every VM with its state and autostart",
            list as fn(Call) -> HandlerFuture,
        ),
        route(
            Method::POST,
            "/api/v1/vms",
            ManageVms,
            (Some(schema::<VmSpec>), Answer::Task(schema::<VmAnswer>)),
            "create_vm",
            "Create a VM from a spec: checked at once (400 invalid_spec lists every \
             problem), then created by a task",
            create,
        ),
        route(
            Method::GET,
            "/api/v1/vms/{name}",
            ViewInventory,
            (None, Answer::Ok(schema::<VmDetail>)),
            "show_vm",
            "One VM: state, figures, counters and its spec read back",
            show,
        ),
        Route {
            query: DELETE_PARAMETERS,
            ..route(
                Method::DELETE,
                "/api/v1/vms/{name}",
                ManageVms,
                (None, Answer::Ok(schema::<Deleted>)),
                "delete_vm",
                "Delete a shut-off VM; ?volumes=delete deletes its disk volumes too \
                 (default keep)",
                delete,
            )
        },
        route(
            Method::POST,
            "/api/v1/vms/{name}/start",
            ControlVms,
            (None, vm),
            "start_vm",
            "Start a VM",
            start,
        ),
        route(
            Method::POST,
            "/api/v1/vms/{name}/shutdown",
            ControlVms,
            (
                Some(schema::<Shutdown>),
                Answer::Task(schema::<ShutdownResult>),
            ),
            "shutdown_vm",
            "Ask the guest to power off, forcing it off after deadline_secs (default 60); \
             a task whose result says how it stopped",
            shutdown,
        ),
        route(
            Method::POST,
            "/api/v1/vms/{name}/force-off",
            ControlVms,
            (None, vm),
            "force_off_vm",
            "Stop a VM at once, like pulling the power cord",
            force_off,
        ),
        route(
            Method::POST,
            "/api/v1/vms/{name}/reboot",
            ControlVms,
            (None, vm),
            "reboot_vm",
            "Ask the guest to reboot",
            reboot,
        ),
        route(
            Method::PUT,
            "/api/v1/vms/{name}/autostart",
            ManageVms,
            (Some(schema::<Autostart>), vm),
            "set_vm_autostart",
            "Set whether the VM starts when the host boots",
            autostart,
        ),
        route(
            Method::PUT,
            "/api/v1/vms/{name}/cdrom",
            ManageVms,
            (Some(schema::<Media>), vm),
            "change_vm_cdrom",
            "Put an ISO image in the VM's CD-ROM drive, {\"path\"} on the host or \
             {\"pool\", \"volume\"}; a running VM sees it at once",
            change_cdrom,
        ),
        route(
            Method::DELETE,
            "/api/v1/vms/{name}/cdrom",
            ManageVms,
            (None, vm),
            "eject_vm_cdrom",
            "Eject the media of the VM's CD-ROM drive",
            eject_cdrom,
        ),
        route(
            Method::GET,
            "/api/v1/vms/{name}/snapshots",
            ViewInventory,
            (None, Answer::Ok(schema::<SnapshotList>)),
            "list_snapshots",
            "The VM's snapshots, oldest first",
            list_snapshots,
        ),
        route(
            Method::POST,
            "/api/v1/vms/{name}/snapshots",
            ManageVms,
            (
                Some(schema::<NewSnapshot>),
                Answer::Task(schema::<SnapshotAnswer>),
            ),
            "create_snapshot",
            "Take a snapshot (qcow2 disks, BIOS guests) by a task",
            create_snapshot,
        ),
        route(
            Method::POST,
            "/api/v1/vms/{name}/snapshots/{snapshot}/revert",
            ManageVms,
            (None, vm),
            "revert_snapshot",
            "Return the VM to a snapshot",
            revert_snapshot,
        ),
        route(
            Method::DELETE,
            "/api/v1/vms/{name}/snapshots/{snapshot}",
            ManageVms,
            (None, vm),
            "delete_snapshot",
            "Delete a snapshot; the VM's current state stays",
            delete_snapshot,
        ),
    ]
}

/// How long a client waits before it asks again while the host restores its VMs.
const RESTORING_RETRY_SECS: u32 = 2;

/// The libvirt URI, or `503` saying the server manages no VMs or that the host has not
/// restored its VMs yet.
pub(super) fn libvirt(call: &Call) -> Result<String, ApiError> {
    let uri = call
        .state
        .libvirt
        .as_ref()
        .map(|uri| uri.0.clone())
        .ok_or_else(|| {
            ApiError::unavailable(
                "this server manages no VMs: mfv-web --dev needs --libvirt URI \
                 (e.g. qemu:///system) for them",
            )
        })?;
    match &call.state.restored_vms {
        Some(restored) if !restored.are_restored() => Err(ApiError::unavailable(
            "the host is still restoring its VMs: libvirtd and the VM keeper start once the \
             web server answers, a few seconds after boot; try again shortly \
             (`mfv host services` shows them; if it lasts, `mfv host logs vm-keeper` says why)",
        )
        .retry_after(RESTORING_RETRY_SECS)),
        _ => Ok(uri),
    }
}

/// Runs `work` with a connection to `uri` on the blocking pool.
pub(super) async fn with_hypervisor<T, F>(uri: String, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Hypervisor) -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || work(&connect(&uri)?))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the libvirt call failed unexpectedly",
            )
        })?
}

pub(super) fn connect(uri: &str) -> Result<Hypervisor, ApiError> {
    Hypervisor::connect(uri).map_err(virt_error)
}

/// libvirt's refusal as the API's error.
pub(super) fn virt_error(error: VirtError) -> ApiError {
    let message = mfv_linux::error_chain(&error);
    match error {
        VirtError::NotFound { kind, .. } => {
            let refusal = ApiError::not_found(message);
            match kind {
                ObjectKind::Vm => refusal.with_field("name"),
                ObjectKind::Snapshot => refusal.with_field("snapshot"),
                _ => refusal,
            }
        }
        VirtError::AlreadyExists { .. }
        | VirtError::WrongState { .. }
        | VirtError::NoCdromDrive { .. }
        | VirtError::NoVncDisplay { .. }
        | VirtError::ConsoleClosed { .. }
        | VirtError::Unsupported { .. }
        | VirtError::NotEnoughMemory { .. } => ApiError::conflict(message),
        VirtError::DaemonNotRunning { .. }
        | VirtError::AccessDenied { .. }
        | VirtError::Connect { .. } => ApiError::unavailable(message),
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "libvirt", message),
    }
}

/// An invalid spec: `400 invalid_spec` with every problem, each naming its field.
pub(super) fn invalid_spec(errors: &SpecErrors) -> ApiError {
    let issues: Vec<mfv_api::ConfigIssue> = errors
        .errors()
        .iter()
        .map(|error| {
            let text = error.to_string();
            let prefix = format!("{}: ", error.field());
            let message = text.strip_prefix(&prefix).unwrap_or(&text);
            mfv_api::ConfigIssue::new(error.field(), message)
        })
        .collect();
    let first = issues.first().map(|issue| issue.field.clone());
    let refusal = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_spec",
        format!("the VM spec has {} problem(s): {errors}", issues.len()),
    )
    .with_errors(issues);
    match first {
        Some(field) => refusal.with_field(field),
        None => refusal,
    }
}

fn workflow_error(error: VmWorkflowError) -> ApiError {
    match error {
        VmWorkflowError::InvalidSpec { errors } => invalid_spec(&errors),
        VmWorkflowError::Virt(error) => virt_error(error),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "libvirt",
            mfv_linux::error_chain(&other),
        ),
    }
}

fn ok(body: serde_json::Value) -> warp::reply::Response {
    json_response(StatusCode::OK, &body)
}

/// The VM's summary after a change, as the change's answer.
pub(super) fn summary_of(
    hypervisor: &Hypervisor,
    name: &str,
) -> Result<serde_json::Value, ApiError> {
    let info = hypervisor.info(name).map_err(virt_error)?;
    Ok(to_json(&VmAnswer { vm: info.summary }))
}

/// Runs the quick change `work` on the VM named by the path, holding its lock, and answers
/// the VM's summary after it.
async fn change<F>(
    call: Call,
    kind: &'static str,
    work: F,
) -> Result<warp::reply::Response, ApiError>
where
    F: FnOnce(&Hypervisor, &str) -> Result<(), VirtError> + Send + 'static,
{
    change_answering(call, kind, move |hypervisor, name| {
        work(hypervisor, name).map_err(virt_error)
    })
    .await
}

/// [`change`] with work that words its own refusals.
async fn change_answering<F>(
    call: Call,
    kind: &'static str,
    work: F,
) -> Result<warp::reply::Response, ApiError>
where
    F: FnOnce(&Hypervisor, &str) -> Result<(), ApiError> + Send + 'static,
{
    let uri = libvirt(&call)?;
    let name = call.param("name").to_owned();
    let lock = call.state.tasks.lock(&name, kind)?;
    let answer = with_hypervisor(uri, move |hypervisor| {
        work(hypervisor, &name)?;
        summary_of(hypervisor, &name)
    })
    .await;
    drop(lock);
    answer.map(ok)
}

fn list(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let state = &call.state;
        let answer = state
            .vm_list
            .answer(
                || state.events.last_id(),
                || async move {
                    let vms =
                        with_hypervisor(uri, |hypervisor| hypervisor.list().map_err(virt_error))
                            .await?;
                    Ok(json_bytes(&VmList { vms }))
                },
            )
            .await?;
        Ok(json_text_response(StatusCode::OK, answer))
    })
}

fn show(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let name = call.param("name").to_owned();
        let vm = with_hypervisor(uri, move |hypervisor| {
            workflows::describe(hypervisor, &name).map_err(virt_error)
        })
        .await?;
        Ok(json_response(StatusCode::OK, &VmDetail { vm }))
    })
}

fn create(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let spec: VmSpec = call.json()?;
        let checked = spec.clone();
        with_hypervisor(uri.clone(), move |hypervisor| {
            let existing = workflows::existing_vms(hypervisor).map_err(virt_error)?;
            checked
                .validate_among(&mfv_vm::SpecLimits::default(), &existing)
                .map_err(|errors| invalid_spec(&errors))
        })
        .await?;
        let host = call.state.vm_capabilities.now();
        let name = spec.name.clone();
        let task = call
            .state
            .tasks
            .spawn("vm_create", &name, move |progress| {
                let hypervisor = connect(&uri)?;
                progress.report(None, "creating the volumes and defining the VM");
                let created =
                    workflows::create(&hypervisor, &spec, &host).map_err(workflow_error)?;
                summary_of(&hypervisor, &created.name)
            })?;
        Ok(accepted(&task))
    })
}

/// The query `?volumes=keep|delete` of a deletion.
fn volume_policy(call: &Call) -> Result<VolumePolicy, ApiError> {
    match call.query.choice("volumes")? {
        Some("delete") => Ok(VolumePolicy::DeleteDisks),
        _ => Ok(VolumePolicy::Keep),
    }
}

fn delete(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let policy = volume_policy(&call)?;
        let name = call.param("name").to_owned();
        let lock = call.state.tasks.lock(&name, "vm_delete")?;
        let deleted = name.clone();
        let answer = with_hypervisor(uri, move |hypervisor| {
            hypervisor.undefine(&name, policy).map_err(virt_error)
        })
        .await;
        drop(lock);
        answer?;
        let volumes = match policy {
            VolumePolicy::Keep => "kept",
            VolumePolicy::DeleteDisks => "deleted",
        };
        Ok(json_response(StatusCode::OK, &Deleted { deleted, volumes }))
    })
}

fn start(call: Call) -> HandlerFuture {
    Box::pin(change(call, "vm_start", |hypervisor, name| {
        hypervisor.start(name)
    }))
}

fn force_off(call: Call) -> HandlerFuture {
    Box::pin(change(call, "vm_force_off", |hypervisor, name| {
        hypervisor.force_off(name)
    }))
}

fn reboot(call: Call) -> HandlerFuture {
    Box::pin(change(call, "vm_reboot", |hypervisor, name| {
        hypervisor.reboot(name)
    }))
}

/// The shutdown's body; all of it optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Shutdown {
    /// Seconds the guest has to power off before it is forced off.
    #[serde(default)]
    deadline_secs: Option<u64>,
}

fn shutdown(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let body: Shutdown = if call.body.is_empty() {
            Shutdown::default()
        } else {
            call.json()?
        };
        let seconds = body.deadline_secs.unwrap_or(DEFAULT_SHUTDOWN_SECS);
        if seconds > MAX_SHUTDOWN_SECS {
            return Err(ApiError::invalid(
                "deadline_secs",
                format!("{seconds} s is longer than the {MAX_SHUTDOWN_SECS} s taken"),
            ));
        }
        let name = call.param("name").to_owned();
        // A VM that does not exist is refused at once, not by a failed task.
        let looked_up = name.clone();
        with_hypervisor(uri.clone(), move |hypervisor| {
            hypervisor.info(&looked_up).map(drop).map_err(virt_error)
        })
        .await?;
        let task = call
            .state
            .tasks
            .spawn("vm_shutdown", &name.clone(), move |progress| {
                let hypervisor = connect(&uri)?;
                progress.report(
                    None,
                    format!("asked the guest to power off; forcing it off after {seconds} s"),
                );
                let outcome = hypervisor
                    .shutdown(&name, Duration::from_secs(seconds))
                    .map_err(virt_error)?;
                Ok(to_json(&ShutdownResult {
                    outcome,
                    deadline_secs: seconds,
                }))
            })?;
        Ok(accepted(&task))
    })
}

/// The autostart's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Autostart {
    enabled: bool,
}

fn autostart(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let Autostart { enabled } = call.json()?;
        change(call, "vm_autostart", move |hypervisor, name| {
            hypervisor.set_autostart(name, enabled)
        })
        .await
    })
}

/// The CD-ROM change's body: a path on the host, or a volume of a storage pool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Media {
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    volume: Option<String>,
}

/// Where the media is: a path on the host, or a volume to look up.
enum MediaSource {
    Path(PathBuf),
    Volume { pool: String, volume: String },
}

impl Media {
    fn source(self) -> Result<MediaSource, ApiError> {
        match (self.path, self.pool, self.volume) {
            (Some(path), None, None) => {
                if !path.is_absolute() {
                    return Err(ApiError::invalid(
                        "path",
                        format!("{} must be an absolute path", path.display()),
                    ));
                }
                if path.to_string_lossy().chars().any(char::is_control) {
                    return Err(ApiError::invalid(
                        "path",
                        "the path must not hold control characters",
                    ));
                }
                Ok(MediaSource::Path(path))
            }
            (None, Some(pool), Some(volume)) => Ok(MediaSource::Volume { pool, volume }),
            (None, Some(_), None) => Err(ApiError::invalid(
                "volume",
                "a pool needs the volume in it: {\"pool\", \"volume\"}",
            )),
            (None, None, Some(_)) => Err(ApiError::invalid(
                "pool",
                "a volume needs its pool: {\"pool\", \"volume\"}",
            )),
            (None, None, None) => Err(ApiError::invalid(
                "path",
                "say which image: {\"path\"} on the host or {\"pool\", \"volume\"} \
                 (DELETE ejects)",
            )),
            (Some(_), _, _) => Err(ApiError::invalid(
                "path",
                "give either path or pool and volume, not both",
            )),
        }
    }
}

/// A volume that is not there, named by its field.
fn volume_error(error: VirtError) -> ApiError {
    let field = match &error {
        VirtError::NotFound {
            kind: ObjectKind::Pool,
            ..
        } => Some("pool"),
        VirtError::NotFound {
            kind: ObjectKind::Volume,
            ..
        } => Some("volume"),
        _ => None,
    };
    let refusal = virt_error(error);
    match field {
        Some(field) => refusal.with_field(field),
        None => refusal,
    }
}

fn change_cdrom(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let source = call.json::<Media>()?.source()?;
        change_answering(call, "vm_cdrom", move |hypervisor, name| {
            let path = match source {
                MediaSource::Path(path) => path,
                MediaSource::Volume { pool, volume } => PathBuf::from(
                    hypervisor
                        .volume_path(&pool, &volume)
                        .map_err(volume_error)?,
                ),
            };
            hypervisor
                .change_media(name, Some(&path))
                .map_err(|error| match error {
                    VirtError::MediaUnreadable { .. } => {
                        ApiError::invalid("path", mfv_linux::error_chain(&error))
                    }
                    other => virt_error(other),
                })
        })
        .await
    })
}

fn eject_cdrom(call: Call) -> HandlerFuture {
    Box::pin(change(call, "vm_cdrom", |hypervisor, name| {
        hypervisor.change_media(name, None)
    }))
}

fn list_snapshots(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let name = call.param("name").to_owned();
        let snapshots = with_hypervisor(uri, move |hypervisor| {
            hypervisor.list_snapshots(&name).map_err(virt_error)
        })
        .await?;
        Ok(json_response(StatusCode::OK, &SnapshotList { snapshots }))
    })
}

/// A new snapshot's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewSnapshot {
    name: String,
    #[serde(default)]
    description: String,
}

fn create_snapshot(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let NewSnapshot { name, description } = call.json()?;
        check_snapshot_name(&name)?;
        let vm = call.param("name").to_owned();
        let looked_up = vm.clone();
        with_hypervisor(uri.clone(), move |hypervisor| {
            hypervisor.info(&looked_up).map(drop).map_err(virt_error)
        })
        .await?;
        let task = call
            .state
            .tasks
            .spawn("snapshot_create", &vm.clone(), move |progress| {
                let hypervisor = connect(&uri)?;
                progress.report(None, format!("taking snapshot {name:?}"));
                let snapshot = hypervisor
                    .create_snapshot(&vm, &name, &description)
                    .map_err(virt_error)?;
                Ok(to_json(&SnapshotAnswer { snapshot }))
            })?;
        Ok(accepted(&task))
    })
}

/// Snapshot names follow the rules of VM names: they end up in libvirt's file names.
fn check_snapshot_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            format!(
                "{name:?} is not a snapshot name: 1 to 64 letters, digits, '.', '_' and '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

fn revert_snapshot(call: Call) -> HandlerFuture {
    let snapshot = call.param("snapshot").to_owned();
    Box::pin(change(call, "snapshot_revert", move |hypervisor, name| {
        hypervisor.revert_snapshot(name, &snapshot)
    }))
}

fn delete_snapshot(call: Call) -> HandlerFuture {
    let snapshot = call.param("snapshot").to_owned();
    Box::pin(change(call, "snapshot_delete", move |hypervisor, name| {
        hypervisor.delete_snapshot(name, &snapshot)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snapshot_names_are_plain_words() {
        for good in ["before-upgrade", "s1", "v1.2_x"] {
            assert!(check_snapshot_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "../x", "<script>", &"a".repeat(65)] {
            let refusal = check_snapshot_name(bad).unwrap_err();
            assert_eq!(refusal.body.field.as_deref(), Some("name"), "{bad}");
        }
    }

    #[test]
    fn spec_problems_are_listed_each_with_its_field() {
        let spec: VmSpec = serde_json::from_value(json!({
            "name": "<script>", "vcpus": 0, "memory_mib": 64,
            "disks": [{"target": "sda", "source": {"image": {"path": "x.img"}}}]
        }))
        .unwrap();
        let errors = spec.validate(&mfv_vm::SpecLimits::default()).unwrap_err();
        let refusal = invalid_spec(&errors);
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal.body.kind, "invalid_spec");
        assert_eq!(refusal.body.field.as_deref(), Some("name"));
        let fields: Vec<&str> = refusal
            .body
            .errors
            .iter()
            .map(|issue| issue.field.as_str())
            .collect();
        assert!(fields.contains(&"vcpus"), "{fields:?}");
        assert!(fields.contains(&"disks[0].target"), "{fields:?}");
        assert!(
            refusal
                .body
                .errors
                .iter()
                .all(|issue| !issue.message.starts_with(&issue.field)),
            "{:?}",
            refusal.body.errors
        );
    }
}
