//! Storage: the pools libvirt has, and the volumes in them (list, create, grow, delete).
//! Uploads of ISO and disk images into new volumes are in [`super::uploads`].
//!
//! Pools themselves belong to the host's configuration (`[[storage.pools]]`), so adding and
//! removing one goes through the host daemon, which saves the configuration's next generation
//! and makes or forgets the pool in libvirt at once; removing one never deletes its data.
//!
//! Like the VM routes, each handler opens a connection to libvirt on the blocking pool and
//! makes one or two calls into mfv-vm. Sizes are checked here, before libvirt is asked, so a
//! wrong size is a `400` naming the field rather than libvirt's words; a volume a VM uses is
//! not deleted (`409` naming the VMs), nor one an upload is still writing.

use mfv_auth::Permission;
use mfv_vm::{ImageFormat, ObjectKind, PoolInfo, VirtError, VolumeInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warp::http::{Method, StatusCode};

use mfv_api::{Request as DaemonRequest, Response as DaemonResponse};

use super::ApiError;
use super::doc::{Answer, schema};
use super::links::ask_host;
use super::table::{Call, HandlerFuture, Route};
use super::vms::{libvirt, virt_error, with_hypervisor};
use crate::daemon::CONFIG_TIMEOUT;
use crate::reply::json_response;

/// The largest volume taken: 64 TiB.
pub(super) const MAX_VOLUME_BYTES: u64 = 64 << 40;

/// The longest volume name taken.
const MAX_VOLUME_NAME: usize = 128;

/// The routes.
pub fn routes() -> Vec<Route> {
    let route = Route::allowed;
    use Permission::{ManageHost, ManageStorage, ViewInventory};
    vec![
        route(
            Method::GET,
            "/api/v1/pools",
            ViewInventory,
            (None, Answer::Ok(schema::<PoolList>)),
            "list_pools",
            "Every storage pool with its type, state, path and sizes",
            list_pools as fn(Call) -> HandlerFuture,
        ),
        route(
            Method::POST,
            "/api/v1/pools",
            ManageHost,
            (
                Some(schema::<NewPool>),
                Answer::Created(schema::<AddedPool>),
            ),
            "add_pool",
            "Add a storage pool to the configuration and make it now (administrators: a pool \
             is a place on the host libvirt writes to as root): name, kind dir (path), \
             logical (device: an empty block device) or nfs (server, export, optional path)",
            add_pool,
        ),
        route(
            Method::DELETE,
            "/api/v1/pools/{pool}",
            ManageHost,
            (None, Answer::Ok(schema::<RemovedPool>)),
            "remove_pool",
            "Remove a storage pool from the configuration and stop it; its data stays. \
             Refused while a VM has a disk in it or an upload writes into it",
            remove_pool,
        ),
        route(
            Method::GET,
            "/api/v1/pools/{pool}/volumes",
            ViewInventory,
            (None, Answer::Ok(schema::<VolumeList>)),
            "list_volumes",
            "The volumes of a pool with their path, format and sizes",
            list_volumes,
        ),
        route(
            Method::POST,
            "/api/v1/pools/{pool}/volumes",
            ManageStorage,
            (
                Some(schema::<NewVolume>),
                Answer::Created(schema::<VolumeAnswer>),
            ),
            "create_volume",
            "Create an empty volume: name, size_gib or size_bytes, format qcow2 (default) \
             or raw",
            create_volume,
        ),
        route(
            Method::PUT,
            "/api/v1/pools/{pool}/volumes/{volume}/size",
            ManageStorage,
            (Some(schema::<NewSize>), Answer::Ok(schema::<VolumeAnswer>)),
            "resize_volume",
            "Grow a volume to size_bytes; shrinking is refused",
            resize_volume,
        ),
        route(
            Method::DELETE,
            "/api/v1/pools/{pool}/volumes/{volume}",
            ManageStorage,
            (None, Answer::Ok(schema::<DeletedVolume>)),
            "delete_volume",
            "Delete a volume and its data, unless a VM uses it or an upload writes it",
            delete_volume,
        ),
    ]
}

/// libvirt's refusal as the API's error, a missing pool or volume naming its field.
pub(super) fn storage_error(error: VirtError) -> ApiError {
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

/// Refuses a volume name that is empty, too long, or not made of letters, digits, `.`, `_`
/// and `-` starting with a letter or digit (so never `..`, a path, or a hidden file).
pub(super) fn check_volume_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid("name", "the volume needs a name"));
    }
    if name.len() > MAX_VOLUME_NAME {
        return Err(ApiError::invalid(
            "name",
            format!(
                "{} characters is too long: {MAX_VOLUME_NAME} at most",
                name.len()
            ),
        ));
    }
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric());
    let charset_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !starts_well || !charset_ok {
        return Err(ApiError::invalid(
            "name",
            format!(
                "{name:?} is not a volume name: use letters, digits, '.', '_' and '-', \
                 starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// `value` (the JSON field `field`) as a whole number from `min` to `max`.
pub(super) fn whole_number(
    field: &str,
    value: &Value,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match value.as_u64() {
        Some(number) if (min..=max).contains(&number) => Ok(number),
        _ => Err(ApiError::invalid(
            field,
            format!("must be a whole number from {min} to {max}, got {value}"),
        )),
    }
}

/// A new volume's size from exactly one of `size_gib` and `size_bytes`.
fn volume_size(size_gib: Option<&Value>, size_bytes: Option<&Value>) -> Result<u64, ApiError> {
    match (size_gib, size_bytes) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "size_bytes",
            "give size_gib or size_bytes, not both",
        )),
        (None, None) => Err(ApiError::invalid(
            "size_gib",
            "the volume needs a size: size_gib or size_bytes",
        )),
        (Some(gib), None) => Ok(whole_number("size_gib", gib, 1, MAX_VOLUME_BYTES >> 30)? << 30),
        (None, Some(bytes)) => whole_number("size_bytes", bytes, 1, MAX_VOLUME_BYTES),
    }
}

fn list_pools(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pools = with_hypervisor(uri, |hypervisor| {
            hypervisor.list_pools().map_err(storage_error)
        })
        .await?;
        Ok(json_response(StatusCode::OK, &PoolList { pools }))
    })
}

/// `POST /api/v1/pools`: one `[[storage.pools]]` entry of the configuration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewPool {
    /// Letters, digits, `.`, `_` and `-`, not starting with `.`.
    name: String,
    /// `dir`, `logical` or `nfs`.
    #[schemars(with = "mfv_api::PoolKind")]
    kind: String,
    /// `dir`: the directory holding the images (made if missing); `nfs`: where the export is
    /// mounted (default `/var/lib/mfv/pools/NAME`). Absolute.
    #[serde(default)]
    path: Option<String>,
    /// `logical`: the block device for the LVM volume group, which must hold nothing.
    #[serde(default)]
    device: Option<String>,
    /// `nfs`: the server's host name or IP address.
    #[serde(default)]
    server: Option<String>,
    /// `nfs`: the exported directory. Absolute.
    #[serde(default)]
    export: Option<String>,
    /// The configuration generation the change is based on (`GET /api/v1/config`); left out:
    /// whatever is current.
    #[serde(default)]
    generation: Option<u64>,
}

/// What `POST /api/v1/pools` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct AddedPool {
    /// The pool as libvirt has it now.
    pool: PoolInfo,
    /// The configuration's new generation.
    generation: u64,
}

/// What `DELETE /api/v1/pools/{pool}` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct RemovedPool {
    /// The pool's name.
    removed: String,
    /// The configuration's new generation; `null` when only libvirt had the pool.
    generation: Option<u64>,
}

/// A blank optional field is a field left out.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

fn add_pool(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let new: NewPool = call.json()?;
        let kind = match new.kind.as_str() {
            "dir" => mfv_api::PoolKind::Dir,
            "logical" => mfv_api::PoolKind::Logical,
            "nfs" => mfv_api::PoolKind::Nfs,
            other => {
                return Err(ApiError::invalid(
                    "kind",
                    format!("{other:?} is not a pool kind: dir, logical or nfs"),
                ));
            }
        };
        let pool = mfv_api::PoolSpec {
            name: new.name.trim().to_owned(),
            kind,
            path: given(new.path),
            device: given(new.device),
            server: given(new.server),
            export: given(new.export),
        };
        let name = pool.name.clone();
        let generation = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::StoragePoolAdd {
                pool,
                base_generation: new.generation,
            },
            CONFIG_TIMEOUT,
            |response| match response {
                DaemonResponse::PoolAdded { generation } => Some(generation),
                _ => None,
            },
        )
        .await?;
        let listed = name.clone();
        let pool = with_hypervisor(uri, move |hypervisor| {
            hypervisor
                .list_pools()
                .map_err(storage_error)?
                .into_iter()
                .find(|pool| pool.name == listed)
                .ok_or_else(|| ApiError::not_found(format!("pool {listed:?} is gone already")))
        })
        .await?;
        if let Some(caller) = &call.caller {
            println!(
                "mfv-web: {} added storage pool {name} (configuration generation {generation}) \
                 from {}",
                caller.username, call.client
            );
        }
        Ok(json_response(
            StatusCode::CREATED,
            &AddedPool { pool, generation },
        ))
    })
}

fn remove_pool(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let name = call.param("pool").to_owned();
        if let Some((upload, volume)) = call.state.uploads.open_in(&name) {
            return Err(ApiError::conflict(format!(
                "upload {upload} is writing volume {volume:?} of pool {name:?}: let it finish \
                 or cancel it with DELETE /api/v1/uploads/{upload}"
            ))
            .with_field("pool"));
        }
        let generation = ask_host(
            call.state.host.as_ref(),
            DaemonRequest::StoragePoolRemove { name: name.clone() },
            CONFIG_TIMEOUT,
            |response| match response {
                DaemonResponse::PoolRemoved { generation, .. } => Some(generation),
                _ => None,
            },
        )
        .await
        .map_err(|refusal| {
            // The daemon names its request's field; here the pool is the path's.
            if refusal.body.field.as_deref() == Some("name") {
                refusal.with_field("pool")
            } else {
                refusal
            }
        })?;
        if let Some(caller) = &call.caller {
            println!(
                "mfv-web: {} removed storage pool {name} from {}; its data stays",
                caller.username, call.client
            );
        }
        Ok(json_response(
            StatusCode::OK,
            &RemovedPool {
                removed: name,
                generation,
            },
        ))
    })
}

fn list_volumes(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pool = call.param("pool").to_owned();
        let volumes = with_hypervisor(uri, move |hypervisor| {
            let volumes = hypervisor.list_volumes(&pool).map_err(storage_error)?;
            let users = hypervisor
                .volume_users(&pool, &volumes)
                .map_err(storage_error)?;
            Ok(volumes
                .into_iter()
                .zip(users)
                .map(|(volume, used_by)| ListedVolume { volume, used_by })
                .collect())
        })
        .await?;
        Ok(json_response(StatusCode::OK, &VolumeList { volumes }))
    })
}

/// `POST /api/v1/pools/{pool}/volumes`: `size_gib` or `size_bytes`, one of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewVolume {
    name: String,
    #[schemars(with = "Option<u64>", range(min = 1))]
    size_gib: Option<Value>,
    #[schemars(with = "Option<u64>", range(min = 1))]
    size_bytes: Option<Value>,
    /// Left out: the pool's own, `qcow2`, or `raw` in an LVM pool (which holds only raw).
    #[schemars(schema_with = "volume_format")]
    format: Option<String>,
}

/// The formats [`create_volume`] takes.
fn volume_format(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "null"], "enum": ["qcow2", "raw", null]})
}

/// What a volume's deletion answers.
#[derive(Debug, Serialize, JsonSchema)]
struct DeletedVolume {
    /// The volume's name.
    deleted: String,
}

/// A volume, as a change to it answers.
#[derive(Debug, Serialize, JsonSchema)]
struct VolumeAnswer {
    volume: VolumeInfo,
}

/// What `GET /api/v1/pools` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct PoolList {
    pools: Vec<PoolInfo>,
}

/// What `GET /api/v1/pools/{pool}/volumes` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct VolumeList {
    volumes: Vec<ListedVolume>,
}

/// A volume of a pool's listing.
#[derive(Debug, Serialize, JsonSchema)]
struct ListedVolume {
    #[serde(flatten)]
    volume: VolumeInfo,
    /// The VMs with a disk or CD-ROM on it, sorted by name: a volume that is used cannot be
    /// deleted.
    used_by: Vec<String>,
}

fn create_volume(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pool = call.param("pool").to_owned();
        let request: NewVolume = call.json()?;
        check_volume_name(&request.name)?;
        let size = volume_size(request.size_gib.as_ref(), request.size_bytes.as_ref())?;
        let asked = match request.format.as_deref() {
            None => None,
            Some("qcow2") => Some(ImageFormat::Qcow2),
            Some("raw") => Some(ImageFormat::Raw),
            Some(other) => {
                return Err(ApiError::invalid(
                    "format",
                    format!("{other:?} is not a volume format here: qcow2 or raw"),
                ));
            }
        };
        let volume = with_hypervisor(uri, move |hypervisor| {
            // An LVM pool holds raw volumes only (mfv-vm's `pool_volume_format`).
            let only = hypervisor
                .pool_volume_format(&pool)
                .map_err(storage_error)?;
            let format = match (asked, only) {
                (Some(asked), Some(only)) if asked != only => {
                    return Err(ApiError::invalid(
                        "format",
                        format!("the pool {pool} holds {only} volumes only, not {asked}"),
                    ));
                }
                (Some(format), _) | (None, Some(format)) => format,
                (None, None) => ImageFormat::Qcow2,
            };
            hypervisor
                .create_volume_as(&pool, &request.name, size, format)
                .map_err(storage_error)
        })
        .await?;
        Ok(json_response(StatusCode::CREATED, &VolumeAnswer { volume }))
    })
}

/// `PUT /api/v1/pools/{pool}/volumes/{volume}/size`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewSize {
    #[schemars(with = "u64", range(min = 1))]
    size_bytes: Value,
}

fn resize_volume(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pool = call.param("pool").to_owned();
        let name = call.param("volume").to_owned();
        let request: NewSize = call.json()?;
        let size = whole_number("size_bytes", &request.size_bytes, 1, MAX_VOLUME_BYTES)?;
        let volume = with_hypervisor(uri, move |hypervisor| {
            let current = hypervisor
                .volume_info(&pool, &name)
                .map_err(storage_error)?;
            if size < current.capacity_bytes {
                return Err(ApiError::invalid(
                    "size_bytes",
                    format!(
                        "volume {name:?} has {} bytes: shrinking it to {size} would cut off \
                         data; volumes only grow",
                        current.capacity_bytes
                    ),
                ));
            }
            hypervisor
                .resize_volume(&pool, &name, size)
                .map_err(storage_error)
        })
        .await?;
        Ok(json_response(StatusCode::OK, &VolumeAnswer { volume }))
    })
}

fn delete_volume(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let pool = call.param("pool").to_owned();
        let name = call.param("volume").to_owned();
        if let Some(upload) = call.state.uploads.open_for(&pool, &name) {
            return Err(ApiError::conflict(format!(
                "upload {upload} is writing volume {name:?}: cancel it with \
                 DELETE /api/v1/uploads/{upload}"
            )));
        }
        with_hypervisor(uri, move |hypervisor| {
            let users = hypervisor
                .vms_using_volume(&pool, &name)
                .map_err(storage_error)?;
            if !users.is_empty() {
                return Err(ApiError::conflict(format!(
                    "volume {name:?} is a disk of {}: remove it from the VM or delete the VM \
                     first",
                    users
                        .iter()
                        .map(|vm| format!("VM {vm:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            hypervisor
                .delete_volume(&pool, &name)
                .map_err(storage_error)
        })
        .await?;
        Ok(json_response(
            StatusCode::OK,
            &DeletedVolume {
                deleted: call.param("volume").to_owned(),
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_names_are_plain_file_names() {
        for good in ["disk.qcow2", "debian-12.iso", "a", "9_x-y.img"] {
            assert!(check_volume_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a/b",
            "-x",
            "a b",
            "é.iso",
            &"x".repeat(129),
        ] {
            let error = check_volume_name(bad).unwrap_err();
            assert_eq!(error.body.field.as_deref(), Some("name"), "{bad}");
        }
    }

    #[test]
    fn sizes_are_one_of_two_fields_in_range() {
        assert_eq!(volume_size(Some(&json!(2)), None).unwrap(), 2 << 30);
        assert_eq!(volume_size(None, Some(&json!(4096))).unwrap(), 4096);
        for (gib, bytes, field) in [
            (None, None, "size_gib"),
            (Some(json!(1)), Some(json!(1)), "size_bytes"),
            (Some(json!(0)), None, "size_gib"),
            (Some(json!("ten")), None, "size_gib"),
            (None, Some(json!(-1)), "size_bytes"),
            (None, Some(json!(1.5)), "size_bytes"),
            (None, Some(json!(MAX_VOLUME_BYTES + 1)), "size_bytes"),
        ] {
            let error = volume_size(gib.as_ref(), bytes.as_ref()).unwrap_err();
            assert_eq!(
                error.body.field.as_deref(),
                Some(field),
                "{gib:?} {bytes:?}"
            );
        }
    }
}
