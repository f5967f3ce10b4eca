//! Storage pools added and removed while the host runs: the host daemon's `storage_pool_add`
//! and `storage_pool_remove`.
//!
//! Pools are part of the configuration (`[[storage.pools]]`), which the vm-keeper makes in
//! libvirt at boot. A host set up through the browser has none, and a person must be able to
//! add one without editing the file and rebooting, so a change here does both at once: the
//! configuration's next generation (edited with [`mfv_config::pools`], which keeps the rest of
//! the document) and the pool in libvirt ([`crate::vm_keeper::define_pool`], as at boot).
//!
//! The two never disagree after a request: an added pool is made in libvirt first and saved
//! only once it is ready (a pool libvirt cannot make is forgotten again and nothing is saved);
//! a removed pool is stopped and forgotten in libvirt first and removed from the file after
//! (a save that fails defines it again). Removing never deletes what a pool holds, and is
//! refused while a VM has a disk in it.
//!
//! The functions take the config store and libvirt's URI, so the web server's tests run them
//! on a directory store and a private libvirtd, where the daemon mounts the config volume and
//! talks to `qemu:///system`.

use mfv_api::{ApiError, ErrorKind, PoolKind as ApiPoolKind, PoolSpec, Response};
use mfv_config::pools::PoolEditError;
use mfv_config::schema::{PoolConfig, PoolKind};
use mfv_config::store::{ConfigStore, LoadedConfig};
use mfv_vm::{Hypervisor, VirtError};

use crate::daemon::invalid_config;
use crate::vm_keeper::{DefinePoolError, define_pool};

/// Where the daemon reaches libvirt.
pub const LIBVIRT_URI: &str = "qemu:///system";

/// Adds `spec` to the configuration in `store` as its next generation and makes it in
/// libvirt at `libvirt_uri`: what `storage_pool_add` does.
pub fn add_pool(
    store: &dyn ConfigStore,
    libvirt_uri: &str,
    spec: &PoolSpec,
    base_generation: Option<u64>,
) -> Result<Response, ApiError> {
    let loaded = load(store)?;
    if let Some(base) = base_generation.filter(|base| loaded.generation != Some(*base)) {
        return Err(ApiError::new(
            ErrorKind::StaleGeneration,
            format!(
                "the configuration changed meanwhile: the change is based on generation {base} \
                 but the current one is {}; read it again and redo the change",
                loaded
                    .generation
                    .map_or("none".to_owned(), |g| g.to_string())
            ),
        ));
    }
    let pool = pool_config(spec);
    let text = mfv_config::pools::add_pool(&loaded.text, &pool).map_err(edit_refused)?;
    let hypervisor = connect(libvirt_uri)?;
    let defined = hypervisor
        .list_pools()
        .map_err(|error| libvirt_failed("cannot list libvirt's storage pools", &error))?;
    if defined.iter().any(|known| known.name == pool.name) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!(
                "libvirt already has a storage pool named {:?} that the configuration does not \
                 list: choose another name",
                pool.name
            ),
        )
        .with_field("name"));
    }
    if let Err(error) = define_pool(&hypervisor, &pool) {
        // Whatever part of the pool libvirt kept (an NFS pool stays defined when its mount
        // fails) goes, so that nothing is left that the configuration does not list.
        let _ = hypervisor.forget_pool(&pool.name);
        return Err(define_refused(spec.kind, &error));
    }
    match store.save(&text) {
        Ok(saved) => Ok(Response::PoolAdded {
            generation: saved.generation,
        }),
        Err(error) => {
            let _ = hypervisor.forget_pool(&pool.name);
            Err(internal(
                "cannot save the configuration, so the pool was not added",
                &error,
            ))
        }
    }
}

/// Removes the pool `name` from libvirt at `libvirt_uri` (stopped and forgotten, its data
/// left where it is) and from the configuration in `store`: what `storage_pool_remove` does.
/// A pool only libvirt has (defined by hand) is forgotten there alone.
pub fn remove_pool(
    store: &dyn ConfigStore,
    libvirt_uri: &str,
    name: &str,
) -> Result<Response, ApiError> {
    let loaded = load(store)?;
    let text = match mfv_config::pools::remove_pool(&loaded.text, name) {
        Ok(text) => Some(text),
        Err(PoolEditError::NoSuchPool { .. }) => None,
        Err(error) => return Err(edit_refused(error)),
    };
    let hypervisor = connect(libvirt_uri)?;
    let known = hypervisor
        .list_pools()
        .map_err(|error| libvirt_failed("cannot list libvirt's storage pools", &error))?
        .into_iter()
        .find(|pool| pool.name == name);
    if known.is_none() && text.is_none() {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("there is no storage pool named {name:?}"),
        )
        .with_field("name"));
    }
    if known.as_ref().is_some_and(|pool| pool.state == "running") {
        let users = pool_users(&hypervisor, name)?;
        if !users.is_empty() {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "storage pool {name:?} holds disks of VM(s) {}: remove those disks or VMs \
                     first",
                    users.join(", ")
                ),
            )
            .with_field("name"));
        }
    }
    let was_defined = hypervisor
        .forget_pool(name)
        .map_err(|error| libvirt_failed("cannot stop the pool", &error))?;
    let Some(text) = text else {
        return Ok(Response::PoolRemoved {
            generation: None,
            was_defined,
        });
    };
    match store.save(&text) {
        Ok(saved) => Ok(Response::PoolRemoved {
            generation: Some(saved.generation),
            was_defined,
        }),
        Err(error) => {
            if let Some(pool) = mfv_config::schema::parse_config(&loaded.text)
                .ok()
                .and_then(|config| config.storage.pools.into_iter().find(|p| p.name == name))
            {
                let _ = define_pool(&hypervisor, &pool);
            }
            Err(internal(
                "cannot save the configuration, so the pool was kept",
                &error,
            ))
        }
    }
}

/// The VMs with a disk on a volume of the running pool `name`, sorted, each once.
fn pool_users(hypervisor: &Hypervisor, name: &str) -> Result<Vec<String>, ApiError> {
    let volumes = hypervisor
        .list_volumes(name)
        .map_err(|error| libvirt_failed("cannot list the pool's volumes", &error))?;
    let mut users: Vec<String> = hypervisor
        .volume_users(name, &volumes)
        .map_err(|error| libvirt_failed("cannot find the VMs using the pool", &error))?
        .into_iter()
        .flatten()
        .collect();
    users.sort();
    users.dedup();
    Ok(users)
}

/// The pool as the configuration has it.
fn pool_config(spec: &PoolSpec) -> PoolConfig {
    PoolConfig {
        name: spec.name.clone(),
        kind: match spec.kind {
            ApiPoolKind::Dir => PoolKind::Dir,
            ApiPoolKind::Logical => PoolKind::Logical,
            ApiPoolKind::Nfs => PoolKind::Nfs,
        },
        path: spec.path.clone(),
        device: spec.device.clone(),
        server: spec.server.clone(),
        export: spec.export.clone(),
    }
}

fn load(store: &dyn ConfigStore) -> Result<LoadedConfig, ApiError> {
    store
        .load()
        .map_err(|error| internal("cannot read the configuration", &error))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                "no configuration was ever saved on this volume",
            )
        })
}

fn connect(uri: &str) -> Result<Hypervisor, ApiError> {
    Hypervisor::connect(uri)
        .map_err(|error| ApiError::new(ErrorKind::Unavailable, mfv_linux::error_chain(&error)))
}

fn edit_refused(error: PoolEditError) -> ApiError {
    match error {
        PoolEditError::InvalidConfig(errors) => invalid_config("the configuration", &errors),
        PoolEditError::InvalidPool { field, message } => {
            ApiError::new(ErrorKind::InvalidRequest, message).with_field(field)
        }
        PoolEditError::NoSuchPool { .. } => {
            ApiError::new(ErrorKind::NotFound, error.to_string()).with_field("name")
        }
    }
}

/// libvirt's refusal to make a pool, naming the field the person would change: the
/// directory, the device, the server.
fn define_refused(kind: ApiPoolKind, error: &DefinePoolError) -> ApiError {
    let message = format!(
        "the pool was not made, and nothing was saved: {}",
        mfv_linux::error_chain(error)
    );
    let field = match error {
        DefinePoolError::Missing { field, .. } => *field,
        DefinePoolError::Virt(
            VirtError::DaemonNotRunning { .. }
            | VirtError::AccessDenied { .. }
            | VirtError::Connect { .. },
        ) => return ApiError::new(ErrorKind::Unavailable, message),
        DefinePoolError::Virt(_) => match kind {
            ApiPoolKind::Dir => "path",
            ApiPoolKind::Logical => "device",
            ApiPoolKind::Nfs => "server",
        },
    };
    ApiError::new(ErrorKind::InvalidRequest, message).with_field(field)
}

fn libvirt_failed(what: &str, error: &VirtError) -> ApiError {
    let kind = match error {
        VirtError::DaemonNotRunning { .. }
        | VirtError::AccessDenied { .. }
        | VirtError::Connect { .. } => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    ApiError::new(kind, format!("{what}: {}", mfv_linux::error_chain(error)))
}

fn internal(what: &str, error: &dyn std::error::Error) -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        format!("{what}: {}", mfv_linux::error_chain(error)),
    )
}
