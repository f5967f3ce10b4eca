//! Storage through libvirt: directory pools and the qcow2 volumes in them (create, delete,
//! resize, clone on a backing file, upload an ISO with progress), logical pools: an LVM
//! volume group on a block device, built only on a device that holds nothing, and NFS pools:
//! libvirt's `netfs` pools, mounted over NFSv4.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use quick_xml::events::BytesText;
use serde::Serialize;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::connection::Hypervisor;
use crate::libvirt::{
    ObjectKind, VirtError, attribute, build_xml, code, next_event, operation_error,
};
use crate::spec::ImageFormat;

/// The volume group format of logical pools, as libvirt names it.
const LVM2: &str = "lvm2";

/// A volume in a storage pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VolumeInfo {
    /// The volume's name in its pool.
    pub name: String,
    /// Its path on the host (what a domain's `<source file=...>` names).
    pub path: String,
    /// Size the guest sees, bytes.
    pub capacity_bytes: u64,
    /// Space used on the host, bytes.
    pub allocation_bytes: u64,
    /// Its format as libvirt knows it (`qcow2`, `raw`, `iso`...).
    pub format: String,
}

/// A storage pool as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PoolInfo {
    /// The pool's name.
    pub name: String,
    /// libvirt's pool type (`dir`, `logical`, `netfs`...).
    pub kind: String,
    /// `running`, `inactive`, `building`, `degraded` or `inaccessible`.
    pub state: &'static str,
    /// Whether libvirt starts it when the daemon starts.
    pub autostart: bool,
    /// Where its volumes are (a directory, `/dev/VG`), when it says.
    pub path: Option<String>,
    /// Its size, bytes (0 while it is not running).
    pub capacity_bytes: u64,
    /// Space its volumes use, bytes.
    pub allocation_bytes: u64,
    /// Space left for volumes, bytes.
    pub available_bytes: u64,
}

/// Progress of [`Hypervisor::upload_volume`]: bytes sent so far and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    /// Bytes sent so far.
    pub sent: u64,
    /// Bytes to send in all.
    pub total: u64,
}

const UPLOAD_CHUNK: usize = 256 * 1024;

impl Hypervisor {
    /// Makes sure a directory pool `name` on `path` exists, is built, active and
    /// autostarted. Calling it again with the same pool changes nothing.
    pub fn ensure_dir_pool(&self, name: &str, path: &Path) -> Result<(), VirtError> {
        let pool = match self.find_pool(name)? {
            Some(pool) => pool,
            None => {
                let xml = build_xml(name, |writer| {
                    writer
                        .create_element("pool")
                        .with_attribute(("type", "dir"))
                        .write_inner_content(|writer| {
                            writer
                                .create_element("name")
                                .write_text_content(BytesText::new(name))?;
                            writer
                                .create_element("target")
                                .write_inner_content(|writer| {
                                    writer.create_element("path").write_text_content(
                                        BytesText::new(&path.to_string_lossy()),
                                    )?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                    Ok(())
                })?;
                self.define_and_build_pool(name, &xml)?
            }
        };
        if !pool.is_active().unwrap_or(false) {
            pool.create(0)
                .map_err(|error| operation_error("start", ObjectKind::Pool, name, error))?;
        }
        set_autostart(&pool, name)
    }

    /// Makes sure a logical pool `name` exists, is active and autostarted: the LVM volume
    /// group `name` on the block device `device`. Calling it again with the same pool changes
    /// nothing; a pool of that name defined otherwise is a [`VirtError::PoolConflict`].
    ///
    /// When the volume group is not on `device` yet, it is built there only if the device
    /// holds no signature at all (no partition table, file system, or physical volume of
    /// another volume group); otherwise the call fails with [`VirtError::PoolDevice`], which
    /// names what the device holds, and nothing on the device is touched. The device is read
    /// on this machine, so the libvirt daemon must run here too.
    pub fn ensure_logical_pool(&self, name: &str, device: &Path) -> Result<(), VirtError> {
        let wanted = PoolLayout::logical(name, device);
        let existing = self.find_pool(name)?;
        if let Some(pool) = &existing {
            check_same_place(pool, name, &wanted)?;
            if pool.is_active().unwrap_or(false) {
                return set_autostart(pool, name);
            }
        }
        let device_error = |problem: String| VirtError::PoolDevice {
            pool: name.to_owned(),
            device: device.to_owned(),
            problem,
        };
        match std::fs::metadata(device) {
            Ok(metadata) if metadata.file_type().is_block_device() => {}
            Ok(_) => return Err(device_error("it is not a block device".to_owned())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(device_error("there is no such device".to_owned()));
            }
            Err(source) => {
                return Err(VirtError::Io {
                    operation: "stat",
                    path: device.to_owned(),
                    source,
                });
            }
        }
        let groups = self.volume_groups(name)?;
        let on_device = groups
            .iter()
            .find(|group| group.devices.iter().any(|path| same_device(path, device)));
        let build = match on_device {
            Some(group) if group.name.as_deref() == Some(name) => false,
            Some(group) => {
                return Err(device_error(format!(
                    "it is a physical volume of the LVM volume group {:?}",
                    group.name.as_deref().unwrap_or_default()
                )));
            }
            None => {
                if let Some(group) = groups
                    .iter()
                    .find(|group| group.name.as_deref() == Some(name))
                {
                    return Err(device_error(format!(
                        "the LVM volume group {name:?} already exists on {}",
                        group.devices.join(", ")
                    )));
                }
                let signature = match mfv_linux::blkid::probe_signature(device) {
                    Ok(signature) => signature,
                    Err(mfv_linux::blkid::SignatureError::Ambiguous { .. }) => {
                        return Err(device_error(format!(
                            "it holds more than one signature; {NOT_BUILT}"
                        )));
                    }
                    Err(source) => {
                        return Err(VirtError::DeviceProbe {
                            pool: name.to_owned(),
                            source,
                        });
                    }
                };
                if let Some(held) = describe_signature(&signature) {
                    return Err(device_error(format!("it holds {held}; {NOT_BUILT}")));
                }
                true
            }
        };
        let (pool, defined_here) = match existing {
            Some(pool) => (pool, false),
            None => {
                let xml = wanted.to_xml(name)?;
                let pool = self
                    .connection
                    .define_storage_pool_xml(&xml, 0)
                    .map_err(|error| operation_error("define", ObjectKind::Pool, name, error))?;
                (pool, true)
            }
        };
        let started = (|| {
            if build {
                // libvirt checks again that the device holds no signature before pvcreate.
                pool.build(virt::sys::VIR_STORAGE_POOL_BUILD_NO_OVERWRITE)
                    .map_err(|error| operation_error("build", ObjectKind::Pool, name, error))?;
            }
            pool.create(0)
                .map_err(|error| operation_error("start", ObjectKind::Pool, name, error))
        })();
        if let Err(error) = started {
            if defined_here {
                // A pool that never started is not left behind; the start error is what
                // matters.
                let _ = pool.undefine();
            }
            return Err(error);
        }
        set_autostart(&pool, name)
    }

    /// The LVM volume groups libvirt finds on this host, with their physical volumes.
    fn volume_groups(&self, pool_name: &str) -> Result<Vec<PoolLayout>, VirtError> {
        let xml = self
            .connection
            .find_storage_pool_sources("logical", None, 0)
            .map_err(|error| {
                operation_error(
                    "list the LVM volume groups for",
                    ObjectKind::Pool,
                    pool_name,
                    error,
                )
            })?;
        parse_sources(pool_name, &xml)
    }

    /// Makes sure an NFS pool `name` exists that mounts `server:export` at `mount_point`
    /// over NFSv4 (which needs only TCP port 2049 on the server: no rpcbind, no statd), and
    /// that it is built (the mount point made), autostarted and active. Calling it again with
    /// the same pool changes nothing; a pool of that name defined otherwise is an error that
    /// names both definitions.
    ///
    /// The mount is tried once (`retry=0`), so a server that refuses the connection fails at
    /// once instead of after mount.nfs's two minutes. When the mount fails the pool stays
    /// defined and autostarted: [`VirtError::NfsMount`] names the server and the export, and
    /// starting the pool later (`virsh pool-start`, or libvirtd's autostart when the daemon
    /// starts) mounts it once the server answers.
    pub fn ensure_nfs_pool(
        &self,
        name: &str,
        server: &str,
        export: &str,
        mount_point: &Path,
    ) -> Result<(), VirtError> {
        let wanted = PoolLayout::nfs(server, export, mount_point);
        let pool = match self.find_pool(name)? {
            Some(pool) => {
                check_same_place(&pool, name, &wanted)?;
                pool
            }
            None => self.define_and_build_pool(name, &wanted.to_xml(name)?)?,
        };
        // Before the start, so that a pool whose server is away is still started by libvirtd
        // when the daemon starts again.
        set_autostart(&pool, name)?;
        if !pool.is_active().unwrap_or(false) {
            pool.create(0).map_err(|source| VirtError::NfsMount {
                name: name.to_owned(),
                share: format!("{server}:{export}"),
                source,
            })?;
        }
        Ok(())
    }

    /// Stops the pool `name` and forgets its definition, leaving what it holds where it is
    /// (a directory's files, an LVM volume group, the data on an NFS export): libvirt's
    /// `pool-destroy` and `pool-undefine`, never `pool-delete`. Returns whether libvirt had
    /// such a pool.
    pub fn forget_pool(&self, name: &str) -> Result<bool, VirtError> {
        let Some(pool) = self.find_pool(name)? else {
            return Ok(false);
        };
        if pool.is_active().unwrap_or(false) {
            pool.destroy()
                .map_err(|error| operation_error("stop", ObjectKind::Pool, name, error))?;
        }
        pool.undefine()
            .map_err(|error| operation_error("undefine", ObjectKind::Pool, name, error))?;
        Ok(true)
    }

    /// The volumes of a pool, sorted by name.
    pub fn list_volumes(&self, pool_name: &str) -> Result<Vec<VolumeInfo>, VirtError> {
        let pool = self.pool(pool_name)?;
        pool.refresh(0)
            .map_err(|error| operation_error("refresh", ObjectKind::Pool, pool_name, error))?;
        let volumes = pool
            .list_all_volumes(0)
            .map_err(|error| operation_error("list", ObjectKind::Pool, pool_name, error))?;
        present_volume_infos(&volumes, pool_name)
    }

    /// Every storage pool, sorted by name, with its state and sizes. Running pools are
    /// refreshed first, so their sizes count volumes made outside libvirt too.
    pub fn list_pools(&self) -> Result<Vec<PoolInfo>, VirtError> {
        let pools = self
            .connection
            .list_all_storage_pools(0)
            .map_err(|error| operation_error("list", ObjectKind::Pool, "*", error))?;
        let mut infos = Vec::with_capacity(pools.len());
        for pool in pools {
            let name = pool
                .name()
                .map_err(|error| operation_error("read", ObjectKind::Pool, "?", error))?;
            let read = |error| operation_error("read", ObjectKind::Pool, &name, error);
            let described = (|| {
                if pool.is_active().unwrap_or(false) {
                    // A refresh that fails (an NFS server gone) leaves libvirt's last figures.
                    let _ = pool.refresh(0);
                }
                let info = pool.info().map_err(read)?;
                let layout = PoolLayout::parse(&name, &pool.xml_desc(0).map_err(read)?)?;
                Ok(PoolInfo {
                    kind: layout.kind,
                    state: pool_state(info.state),
                    autostart: pool.autostart().map_err(read)?,
                    path: layout.target,
                    capacity_bytes: info.capacity,
                    allocation_bytes: info.allocation,
                    available_bytes: info.available,
                    name: name.clone(),
                })
            })();
            match described {
                Ok(info) => infos.push(info),
                // A pool removed between the listing and the reading is not listed.
                Err(VirtError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    /// Creates an empty qcow2 volume of `capacity_bytes` (allocated on demand).
    pub fn create_volume(
        &self,
        pool_name: &str,
        name: &str,
        capacity_bytes: u64,
    ) -> Result<VolumeInfo, VirtError> {
        self.create_volume_as(pool_name, name, capacity_bytes, ImageFormat::Qcow2)
    }

    /// Creates an empty volume of `capacity_bytes` in `format`: a qcow2 volume is allocated
    /// on demand, a raw one in a directory pool is a sparse file.
    pub fn create_volume_as(
        &self,
        pool_name: &str,
        name: &str,
        capacity_bytes: u64,
        format: ImageFormat,
    ) -> Result<VolumeInfo, VirtError> {
        let pool = self.pool(pool_name)?;
        let xml = volume_xml(name, capacity_bytes, format.as_str(), None)?;
        let volume = StorageVol::create_xml(&pool, &xml, 0)
            .map_err(|error| operation_error("create", ObjectKind::Volume, name, error))?;
        volume_info(&volume, name)
    }

    /// The one format new volumes of the pool `pool_name` can have: raw in a logical (LVM)
    /// pool, whose volumes libvirt allocates whole (a qcow2 there would need a sparse
    /// snapshot volume, which needs dm-snapshot and fails once it fills); `None` for a pool
    /// that takes either.
    pub fn pool_volume_format(&self, pool_name: &str) -> Result<Option<ImageFormat>, VirtError> {
        let xml = self
            .pool(pool_name)?
            .xml_desc(0)
            .map_err(|error| operation_error("read", ObjectKind::Pool, pool_name, error))?;
        let layout = PoolLayout::parse(pool_name, &xml)?;
        Ok((layout.kind == "logical").then_some(ImageFormat::Raw))
    }

    /// The volume `name` of the pool `pool_name`.
    pub fn volume_info(&self, pool_name: &str, name: &str) -> Result<VolumeInfo, VirtError> {
        volume_info(&self.volume(pool_name, name)?, name)
    }

    /// The VMs (sorted by name) with a disk on the volume `name` of the pool `pool_name`,
    /// by its path or by pool and volume name.
    pub fn vms_using_volume(&self, pool_name: &str, name: &str) -> Result<Vec<String>, VirtError> {
        let volume = volume_info(&self.volume(pool_name, name)?, name)?;
        let mut users = self.volume_users(pool_name, std::slice::from_ref(&volume))?;
        Ok(users.pop().unwrap_or_default())
    }

    /// For each of `volumes` of the pool `pool_name`, the VMs (sorted by name) with a disk on
    /// it, by its path or by pool and volume name: one reading of the VMs' definitions
    /// whatever the number of volumes, so a pool's listing can say what each volume is for.
    pub fn volume_users(
        &self,
        pool_name: &str,
        volumes: &[VolumeInfo],
    ) -> Result<Vec<Vec<String>>, VirtError> {
        let mut users = vec![Vec::new(); volumes.len()];
        for domain in self
            .connection
            .list_all_domains(0)
            .map_err(|error| operation_error("list", ObjectKind::Vm, "*", error))?
        {
            let Ok(vm) = domain.name() else { continue };
            let xml = match self.inactive_xml(&domain, &vm) {
                Ok(xml) => xml,
                // A VM undefined meanwhile uses nothing.
                Err(VirtError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let facts = crate::libvirt::DomainFacts::parse(&vm, &xml)?;
            for (volume, users) in volumes.iter().zip(users.iter_mut()) {
                let uses = facts.disks.iter().any(|disk| {
                    disk.path.as_deref() == Some(volume.path.as_str())
                        || disk
                            .pool_volume
                            .as_ref()
                            .is_some_and(|(pool, name)| pool == pool_name && *name == volume.name)
                });
                if uses {
                    users.push(vm.clone());
                }
            }
        }
        for list in &mut users {
            list.sort();
        }
        Ok(users)
    }

    /// Deletes a volume and its data.
    pub fn delete_volume(&self, pool_name: &str, name: &str) -> Result<(), VirtError> {
        self.volume(pool_name, name)?
            .delete(0)
            .map_err(|error| operation_error("delete", ObjectKind::Volume, name, error))
    }

    /// Grows a volume to `capacity_bytes`. Shrinking is refused: it would cut off data.
    pub fn resize_volume(
        &self,
        pool_name: &str,
        name: &str,
        capacity_bytes: u64,
    ) -> Result<VolumeInfo, VirtError> {
        let volume = self.volume(pool_name, name)?;
        let current = volume_info(&volume, name)?;
        if capacity_bytes < current.capacity_bytes {
            return Err(VirtError::Unsupported {
                operation: "shrinking",
                name: name.to_owned(),
                reason: format!(
                    "the volume has {} bytes and shrinking to {capacity_bytes} would cut off data",
                    current.capacity_bytes
                ),
                what_works: "create a new, smaller volume and copy the data inside the guest",
            });
        }
        volume
            .resize(capacity_bytes, 0)
            .map_err(|error| operation_error("resize", ObjectKind::Volume, name, error))?;
        volume_info(&volume, name)
    }

    /// Creates `new_name` as a qcow2 volume on top of `source` (a backing file): the clone
    /// starts with the source's data and stores only its own changes. The source must not
    /// change while clones use it.
    pub fn clone_volume(
        &self,
        pool_name: &str,
        source: &str,
        new_name: &str,
    ) -> Result<VolumeInfo, VirtError> {
        let pool = self.pool(pool_name)?;
        let backing = volume_info(&self.volume(pool_name, source)?, source)?;
        let xml = volume_xml(
            new_name,
            backing.capacity_bytes,
            "qcow2",
            Some((&backing.path, &backing.format)),
        )?;
        let volume = StorageVol::create_xml(&pool, &xml, 0)
            .map_err(|error| operation_error("clone", ObjectKind::Volume, new_name, error))?;
        volume_info(&volume, new_name)
    }

    /// Uploads a file (an installer ISO) into a new raw volume `name`, calling `progress`
    /// after every chunk.
    pub fn upload_volume(
        &self,
        pool_name: &str,
        name: &str,
        file: &Path,
        progress: &mut dyn FnMut(UploadProgress),
    ) -> Result<VolumeInfo, VirtError> {
        let io_error = |operation, source| VirtError::Io {
            operation,
            path: file.to_owned(),
            source,
        };
        let mut input = File::open(file).map_err(|source| io_error("open", source))?;
        let total = input
            .metadata()
            .map_err(|source| io_error("stat", source))?
            .len();
        let pool = self.pool(pool_name)?;
        let xml = volume_xml(name, total, "raw", None)?;
        let volume = StorageVol::create_xml(&pool, &xml, 0)
            .map_err(|error| operation_error("create", ObjectKind::Volume, name, error))?;
        let sent = self.send_to_volume(&volume, name, 0, total, &mut input, progress);
        if let Err(error) = sent {
            // Leave no half-written volume behind; the upload error is what matters.
            let _ = volume.delete(0);
            return Err(match error {
                VirtError::UploadSource { source, .. } => io_error("read", source),
                other => other,
            });
        }
        volume_info(&volume, name)
    }

    /// Writes exactly `length` bytes read from `input` into the existing volume `name` at
    /// `offset`, through a libvirt stream (so it works in every pool type, and the caller
    /// needs no access to the pool's files). When `input` fails or ends early, the stream
    /// is aborted and the error is [`VirtError::UploadSource`]: the bytes from `offset` on
    /// may then be partly written, and writing them again from `offset` repairs them.
    pub fn write_volume_at(
        &self,
        pool_name: &str,
        name: &str,
        offset: u64,
        length: u64,
        input: &mut dyn Read,
    ) -> Result<(), VirtError> {
        let volume = self.volume(pool_name, name)?;
        self.send_to_volume(&volume, name, offset, length, input, &mut |_| {})
    }

    /// Refreshes the pool `pool_name` and returns its volume `name` as libvirt now sees it
    /// (its format read from its content, in directory pools).
    pub fn refreshed_volume(&self, pool_name: &str, name: &str) -> Result<VolumeInfo, VirtError> {
        self.pool(pool_name)?
            .refresh(0)
            .map_err(|error| operation_error("refresh", ObjectKind::Pool, pool_name, error))?;
        self.volume_info(pool_name, name)
    }

    /// Sends `length` bytes of `input` into `volume` at `offset`, calling `progress` after
    /// every chunk.
    fn send_to_volume(
        &self,
        volume: &StorageVol,
        name: &str,
        offset: u64,
        length: u64,
        input: &mut dyn Read,
        progress: &mut dyn FnMut(UploadProgress),
    ) -> Result<(), VirtError> {
        let failed = |error| operation_error("upload", ObjectKind::Volume, name, error);
        let source_failed = |source| VirtError::UploadSource {
            name: name.to_owned(),
            source,
        };
        let stream = Stream::new(&self.connection, 0).map_err(failed)?;
        volume.upload(&stream, offset, length, 0).map_err(failed)?;
        let mut buffer = vec![0u8; UPLOAD_CHUNK];
        let mut sent = 0u64;
        progress(UploadProgress {
            sent,
            total: length,
        });
        while sent < length {
            let want =
                usize::try_from(length - sent).map_or(UPLOAD_CHUNK, |left| left.min(UPLOAD_CHUNK));
            let read = match input.read(&mut buffer[..want]) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the data ended after {sent} of {length} bytes"),
                )),
                Ok(read) => Ok(read),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => Err(error),
            };
            let read = match read {
                Ok(read) => read,
                Err(source) => {
                    // The stream's own error would hide the cause; the read error is the one
                    // worth reporting.
                    let _ = stream.abort();
                    return Err(source_failed(source));
                }
            };
            let mut written_so_far = 0;
            while written_so_far < read {
                let written = stream.send(&buffer[written_so_far..read]).map_err(failed)?;
                written_so_far += usize::try_from(written).unwrap_or(0).max(1);
            }
            sent += read as u64;
            progress(UploadProgress {
                sent,
                total: length,
            });
        }
        stream.finish().map_err(failed)
    }

    /// The pool `name`, or `None` when libvirt has no pool of that name.
    fn find_pool(&self, name: &str) -> Result<Option<StoragePool>, VirtError> {
        match self.connection.lookup_storage_pool_by_name(name) {
            Ok(pool) => Ok(Some(pool)),
            Err(error) if code(&error) == Some(virt::error::ErrorNumber::NoStoragePool) => Ok(None),
            Err(error) => Err(operation_error("look up", ObjectKind::Pool, name, error)),
        }
    }

    /// Defines a pool from its XML and builds it (makes its directory).
    fn define_and_build_pool(&self, name: &str, xml: &str) -> Result<StoragePool, VirtError> {
        let pool = self
            .connection
            .define_storage_pool_xml(xml, 0)
            .map_err(|error| operation_error("define", ObjectKind::Pool, name, error))?;
        pool.build(0)
            .map_err(|error| operation_error("build", ObjectKind::Pool, name, error))?;
        Ok(pool)
    }

    pub(crate) fn pool(&self, name: &str) -> Result<StoragePool, VirtError> {
        self.connection
            .lookup_storage_pool_by_name(name)
            .map_err(|error| operation_error("look up", ObjectKind::Pool, name, error))
    }

    fn volume(&self, pool_name: &str, name: &str) -> Result<StorageVol, VirtError> {
        self.pool(pool_name)?
            .lookup_storage_vol_by_name(name)
            .map_err(|error| operation_error("look up", ObjectKind::Volume, name, error))
    }
}

/// Why a device holding something is refused, after what it holds.
const NOT_BUILT: &str = "a volume group is built only on a device without any signature: wipe it \
                         (wipefs -a) if nothing on it is needed, or name another device";

/// Fails with [`VirtError::PoolConflict`], naming both, unless the defined pool `name` keeps
/// its volumes where `wanted` would.
fn check_same_place(pool: &StoragePool, name: &str, wanted: &PoolLayout) -> Result<(), VirtError> {
    let xml = pool
        .xml_desc(0)
        .map_err(|error| operation_error("read", ObjectKind::Pool, name, error))?;
    let existing = PoolLayout::parse(name, &xml)?;
    if existing.same_place(wanted) {
        return Ok(());
    }
    Err(VirtError::PoolConflict {
        name: name.to_owned(),
        existing: existing.to_string(),
        wanted: wanted.to_string(),
    })
}

fn set_autostart(pool: &StoragePool, name: &str) -> Result<(), VirtError> {
    pool.set_autostart(true)
        .map(drop)
        .map_err(|error| operation_error("set autostart of", ObjectKind::Pool, name, error))
}

/// Whether two device paths name the same device (the same path, or the same node once
/// symbolic links are resolved).
fn same_device(a: &str, b: &Path) -> bool {
    Path::new(a) == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// What libblkid found, in words, or `None` when the device holds nothing.
fn describe_signature(signature: &mfv_linux::blkid::Signature) -> Option<String> {
    if let Some(table) = &signature.partition_table {
        return Some(format!("a partition table ({table})"));
    }
    let kind = signature.fs_type.as_deref()?;
    let mut held = match kind {
        "LVM2_member" => "an LVM physical volume outside any volume group".to_owned(),
        "swap" => "swap space".to_owned(),
        _ => format!("a signature of type {kind}"),
    };
    if let Some(label) = &signature.label {
        held.push_str(&format!(" labelled {label:?}"));
    }
    Some(held)
}

/// The NFS options libvirt adds to its own (`nodev,nosuid,noexec,nfsvers=4`): one mount
/// attempt, not mount.nfs's two minutes of retries.
const NFS_MOUNT_OPTIONS: &[&str] = &["retry=0"];

/// libvirt's namespace for the mount options of `fs` and `netfs` pools.
const POOL_FS_NAMESPACE: &str = "http://libvirt.org/schemas/storagepool/fs/1.0";

/// Where a pool keeps its volumes, as read from its XML or from a `<source>` of
/// `virConnectFindStoragePoolSources`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PoolLayout {
    /// The pool type (`dir`, `logical`, ...); empty for a found source.
    kind: String,
    /// `<source><device path=...>`, in document order.
    devices: Vec<String>,
    /// `<source><name>`: the volume group of a logical pool.
    name: Option<String>,
    /// `<source><host name=...>`: the server of a netfs pool.
    host: Option<String>,
    /// `<source><dir path=...>`: the export of a netfs pool.
    dir: Option<String>,
    /// `<source><format type=...>` of a netfs pool (`nfs`).
    format: Option<String>,
    /// `<source><protocol ver=...>` of a netfs pool.
    protocol: Option<String>,
    /// `<target><path>`, without a trailing `/`.
    target: Option<String>,
}

impl PoolLayout {
    fn logical(name: &str, device: &Path) -> Self {
        PoolLayout {
            kind: "logical".to_owned(),
            devices: vec![device.to_string_lossy().into_owned()],
            name: Some(name.to_owned()),
            format: Some(LVM2.to_owned()),
            ..PoolLayout::default()
        }
    }

    fn nfs(server: &str, export: &str, mount_point: &Path) -> Self {
        PoolLayout {
            kind: "netfs".to_owned(),
            host: Some(server.to_owned()),
            dir: Some(export.to_owned()),
            format: Some("nfs".to_owned()),
            protocol: Some("4".to_owned()),
            target: Some(trim_path(&mount_point.to_string_lossy())),
            ..PoolLayout::default()
        }
    }

    /// Whether `self` keeps its volumes where `wanted` (a logical or a netfs pool) would.
    fn same_place(&self, wanted: &PoolLayout) -> bool {
        if wanted.kind == "netfs" {
            return self == wanted;
        }
        self.kind == wanted.kind
            && self.name == wanted.name
            && self.devices.len() == wanted.devices.len()
            && self
                .devices
                .iter()
                .zip(&wanted.devices)
                .all(|(have, want)| same_device(have, Path::new(want)))
    }

    /// The pool's definition: a logical pool's volume group and its `/dev` directory, or a
    /// netfs pool's export, mount point and mount options.
    fn to_xml(&self, pool_name: &str) -> Result<String, VirtError> {
        let logical = self.kind == "logical";
        let group = self.name.as_deref().unwrap_or(pool_name);
        let target = if logical {
            format!("/dev/{group}")
        } else {
            self.target.clone().unwrap_or_default()
        };
        let netfs = self.kind == "netfs";
        build_xml(pool_name, |writer| {
            let mut pool = writer
                .create_element("pool")
                .with_attribute(("type", self.kind.as_str()));
            if netfs {
                pool = pool.with_attribute(("xmlns:fs", POOL_FS_NAMESPACE));
            }
            pool.write_inner_content(|writer| {
                writer
                    .create_element("name")
                    .write_text_content(BytesText::new(pool_name))?;
                writer
                    .create_element("source")
                    .write_inner_content(|writer| {
                        for device in &self.devices {
                            writer
                                .create_element("device")
                                .with_attribute(("path", device.as_str()))
                                .write_empty()?;
                        }
                        for (element, key, value) in
                            [("host", "name", &self.host), ("dir", "path", &self.dir)]
                        {
                            if let Some(value) = value {
                                writer
                                    .create_element(element)
                                    .with_attribute((key, value.as_str()))
                                    .write_empty()?;
                            }
                        }
                        if logical {
                            writer
                                .create_element("name")
                                .write_text_content(BytesText::new(group))?;
                        }
                        for (element, key, value) in [
                            ("format", "type", &self.format),
                            ("protocol", "ver", &self.protocol),
                        ] {
                            if let Some(value) = value {
                                writer
                                    .create_element(element)
                                    .with_attribute((key, value.as_str()))
                                    .write_empty()?;
                            }
                        }
                        Ok(())
                    })?;
                writer
                    .create_element("target")
                    .write_inner_content(|writer| {
                        writer
                            .create_element("path")
                            .write_text_content(BytesText::new(&target))?;
                        Ok(())
                    })?;
                if netfs {
                    writer
                        .create_element("fs:mount_opts")
                        .write_inner_content(|writer| {
                            for option in NFS_MOUNT_OPTIONS {
                                writer
                                    .create_element("fs:option")
                                    .with_attribute(("name", *option))
                                    .write_empty()?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Reads a pool's XML.
    fn parse(pool_name: &str, xml: &str) -> Result<Self, VirtError> {
        let mut layouts = parse_layouts(pool_name, xml, "pool")?;
        Ok(layouts.pop().unwrap_or_default())
    }
}

impl fmt::Display for PoolLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == "netfs" {
            let unset = "(none)";
            write!(
                f,
                "{} {}:{}",
                self.format.as_deref().unwrap_or("netfs"),
                self.host.as_deref().unwrap_or(unset),
                self.dir.as_deref().unwrap_or(unset),
            )?;
            if let Some(version) = &self.protocol {
                write!(f, " (version {version})")?;
            }
            return write!(f, " at {}", self.target.as_deref().unwrap_or(unset));
        }
        write!(f, "a {} pool", self.kind)?;
        if !self.devices.is_empty() {
            write!(f, " on {}", self.devices.join(", "))?;
        }
        if self.kind == "logical" {
            if let Some(name) = &self.name {
                write!(f, " (LVM volume group {name})")?;
            }
        } else if let Some(target) = &self.target {
            write!(f, " at {target}")?;
        }
        Ok(())
    }
}

/// The `<source>`s of `virConnectFindStoragePoolSources`' answer: one per volume group.
fn parse_sources(pool_name: &str, xml: &str) -> Result<Vec<PoolLayout>, VirtError> {
    parse_layouts(pool_name, xml, "source")
}

/// One [`PoolLayout`] per `element` (`pool` for a pool's XML, `source` for each found source):
/// its type attribute, and the devices, name and target path below it.
fn parse_layouts(pool_name: &str, xml: &str, element: &str) -> Result<Vec<PoolLayout>, VirtError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut layouts = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut current: Option<PoolLayout> = None;
    loop {
        let event = next_event(&mut reader, pool_name)?;
        let (start, empty) = match &event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::Text(text) => {
                let Some(layout) = current.as_mut() else {
                    continue;
                };
                let text = text
                    .unescape()
                    .map_err(|source| VirtError::Xml {
                        name: pool_name.to_owned(),
                        source,
                    })?
                    .trim()
                    .to_owned();
                let tail: Vec<&str> = path.iter().rev().take(2).map(String::as_str).collect();
                match tail.as_slice() {
                    ["name", "source"] => layout.name = Some(text),
                    ["path", "target"] => layout.target = Some(trim_path(&text)),
                    _ => {}
                }
                continue;
            }
            Event::End(_) => {
                if path.pop().as_deref() == Some(element) && path.len() <= 1 {
                    layouts.extend(current.take());
                }
                continue;
            }
            Event::Eof => return Ok(layouts),
            _ => continue,
        };
        let tag = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        if tag == element && path.len() <= 1 {
            current = Some(PoolLayout {
                kind: attribute(start, "type").unwrap_or_default(),
                ..PoolLayout::default()
            });
        } else if let Some(layout) = current.as_mut() {
            if path.last().is_some_and(|parent| parent == "source") {
                match tag.as_str() {
                    "device" => layout.devices.extend(attribute(start, "path")),
                    "host" => layout.host = attribute(start, "name"),
                    "dir" => layout.dir = attribute(start, "path"),
                    "format" => layout.format = attribute(start, "type"),
                    "protocol" => layout.protocol = attribute(start, "ver"),
                    _ => {}
                }
            }
        }
        if empty {
            if tag == element && path.len() <= 1 {
                layouts.extend(current.take());
            }
        } else {
            path.push(tag);
        }
    }
}

/// A path without trailing slashes (libvirt drops them), `/` itself kept.
fn trim_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// libvirt's pool state as listings name it.
fn pool_state(state: u32) -> &'static str {
    match state {
        virt::sys::VIR_STORAGE_POOL_INACTIVE => "inactive",
        virt::sys::VIR_STORAGE_POOL_BUILDING => "building",
        virt::sys::VIR_STORAGE_POOL_RUNNING => "running",
        virt::sys::VIR_STORAGE_POOL_DEGRADED => "degraded",
        _ => "inaccessible",
    }
}

/// The volumes' facts, sorted by name, leaving out a volume deleted since it was listed (a
/// failed fetch removing its volume while a listing runs): a listing is a moment's view, not
/// an error because a volume went away during it.
fn present_volume_infos(
    volumes: &[StorageVol],
    pool_name: &str,
) -> Result<Vec<VolumeInfo>, VirtError> {
    let mut infos = Vec::with_capacity(volumes.len());
    for volume in volumes {
        match volume_info(volume, pool_name) {
            Ok(info) => infos.push(info),
            Err(VirtError::NotFound {
                kind: ObjectKind::Volume,
                ..
            }) => {}
            Err(error) => return Err(error),
        }
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(infos)
}

fn volume_info(volume: &StorageVol, name: &str) -> Result<VolumeInfo, VirtError> {
    let read = |error| operation_error("read", ObjectKind::Volume, name, error);
    let info = volume.info().map_err(read)?;
    Ok(VolumeInfo {
        name: volume.name().map_err(read)?,
        path: volume.path().map_err(read)?,
        capacity_bytes: info.capacity,
        allocation_bytes: info.allocation,
        format: volume_format(volume, name)?,
    })
}

/// The format (`qcow2`, `raw`...) of a volume, read from its XML.
fn volume_format(volume: &StorageVol, name: &str) -> Result<String, VirtError> {
    let xml = volume
        .xml_desc(0)
        .map_err(|error| operation_error("read", ObjectKind::Volume, name, error))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        let event = next_event(&mut reader, name)?;
        match event {
            quick_xml::events::Event::Start(element) => path.push(element.name().as_ref().to_vec()),
            quick_xml::events::Event::Empty(element)
                if element.name().as_ref() == b"format"
                    && path.len() == 2
                    && path[1] == b"target" =>
            {
                if let Ok(Some(format)) = element.try_get_attribute("type") {
                    return Ok(String::from_utf8_lossy(&format.value).into_owned());
                }
            }
            quick_xml::events::Event::End(_) => {
                path.pop();
            }
            quick_xml::events::Event::Eof => return Ok("raw".into()),
            _ => {}
        }
    }
}

/// The XML of a full copy named `new_name` of `source` (named `source_name`): its capacity
/// and format, no backing file, so a qcow2 chain is flattened into the copy.
pub(crate) fn copy_volume_xml(
    source: &StorageVol,
    source_name: &str,
    new_name: &str,
) -> Result<String, VirtError> {
    let info = volume_info(source, source_name)?;
    volume_xml(new_name, info.capacity_bytes, &info.format, None)
}

fn volume_xml(
    name: &str,
    capacity_bytes: u64,
    format: &str,
    backing: Option<(&str, &str)>,
) -> Result<String, VirtError> {
    let capacity = capacity_bytes.to_string();
    build_xml(name, |writer| {
        writer
            .create_element("volume")
            .write_inner_content(|writer| {
                writer
                    .create_element("name")
                    .write_text_content(BytesText::new(name))?;
                writer
                    .create_element("capacity")
                    .with_attribute(("unit", "bytes"))
                    .write_text_content(BytesText::new(&capacity))?;
                if backing.is_none() && format == "qcow2" {
                    writer
                        .create_element("allocation")
                        .write_text_content(BytesText::new("0"))?;
                }
                writer
                    .create_element("target")
                    .write_inner_content(|writer| {
                        writer
                            .create_element("format")
                            .with_attribute(("type", format))
                            .write_empty()?;
                        Ok(())
                    })?;
                if let Some((path, backing_format)) = backing {
                    writer
                        .create_element("backingStore")
                        .write_inner_content(|writer| {
                            writer
                                .create_element("path")
                                .write_text_content(BytesText::new(path))?;
                            writer
                                .create_element("format")
                                .with_attribute(("type", backing_format))
                                .write_empty()?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_deleted_between_the_listing_and_its_facts_is_left_out() {
        let hypervisor = Hypervisor::connect("test:///default").unwrap();
        let pool_name = format!("vanishing-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        hypervisor.ensure_dir_pool(&pool_name, dir.path()).unwrap();
        for name in ["kept.qcow2", "gone.qcow2"] {
            hypervisor.create_volume(&pool_name, name, 1 << 20).unwrap();
        }
        let volumes = hypervisor
            .pool(&pool_name)
            .unwrap()
            .list_all_volumes(0)
            .unwrap();
        let gone = volumes
            .iter()
            .find(|volume| volume.name().unwrap() == "gone.qcow2")
            .unwrap();
        gone.delete(0).unwrap();

        let names = present_volume_infos(&volumes, &pool_name)
            .unwrap()
            .into_iter()
            .map(|info| info.name)
            .collect::<Vec<_>>();
        assert_eq!(names, ["kept.qcow2"]);
    }

    #[test]
    fn logical_pool_xml_names_device_and_volume_group() {
        let layout = PoolLayout::logical("lvm", Path::new("/dev/vdb"));
        assert_eq!(
            layout.to_xml("lvm").unwrap(),
            "<pool type=\"logical\">\n  <name>lvm</name>\n  <source>\n    \
             <device path=\"/dev/vdb\"/>\n    <name>lvm</name>\n    <format type=\"lvm2\"/>\n  \
             </source>\n  <target>\n    <path>/dev/lvm</path>\n  </target>\n</pool>"
        );
        assert_eq!(
            layout.to_string(),
            "a logical pool on /dev/vdb (LVM volume group lvm)"
        );
    }

    #[test]
    fn a_pool_read_back_from_libvirt() {
        let xml = "<pool type='logical'>\n  <name>lvm</name>\n  <uuid>u</uuid>\n  \
                   <capacity unit='bytes'>0</capacity>\n  <source>\n    \
                   <device path='/dev/vdb'/>\n    <name>lvm</name>\n    <format type='lvm2'/>\n  \
                   </source>\n  <target>\n    <path>/dev/lvm</path>\n  </target>\n</pool>";
        let layout = PoolLayout::parse("lvm", xml).unwrap();
        assert!(layout.same_place(&PoolLayout::logical("lvm", Path::new("/dev/vdb"))));
        assert!(!layout.same_place(&PoolLayout::logical("lvm", Path::new("/dev/vdc"))));
        assert!(!layout.same_place(&PoolLayout::logical("other", Path::new("/dev/vdb"))));
        let dir = PoolLayout::parse(
            "vms",
            "<pool type='dir'><name>vms</name><source/><target><path>/srv/vms</path></target></pool>",
        )
        .unwrap();
        assert_eq!(dir.to_string(), "a dir pool at /srv/vms");
        assert!(!dir.same_place(&PoolLayout::logical("vms", Path::new("/dev/vdb"))));
    }

    #[test]
    fn found_sources_are_one_per_volume_group() {
        let xml = "<sources>\n  <source>\n    <device path='/dev/sdb'/>\n    \
                   <device path='/dev/sdc'/>\n    <name>data</name>\n    \
                   <format type='lvm2'/>\n  </source>\n  <source>\n    \
                   <device path='/dev/loop3'/>\n    <name>vg&amp;1</name>\n    \
                   <format type='lvm2'/>\n  </source>\n</sources>\n";
        let sources = parse_sources("p", xml).unwrap();
        assert_eq!(
            sources
                .iter()
                .map(|source| (source.devices.clone(), source.name.clone()))
                .collect::<Vec<_>>(),
            [
                (
                    vec!["/dev/sdb".into(), "/dev/sdc".into()],
                    Some("data".into())
                ),
                (vec!["/dev/loop3".into()], Some("vg&1".into())),
            ]
        );
        assert!(
            parse_sources("p", "<sources>\n</sources>\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_sources("p", "<sources><source></sources>").is_err());
    }

    #[test]
    fn what_a_device_holds_in_words() {
        use mfv_linux::blkid::Signature;
        let signature =
            |fs_type: Option<&str>, label: Option<&str>, table: Option<&str>| Signature {
                fs_type: fs_type.map(str::to_owned),
                label: label.map(str::to_owned),
                uuid: None,
                partition_table: table.map(str::to_owned),
            };
        assert_eq!(describe_signature(&signature(None, None, None)), None);
        assert_eq!(
            describe_signature(&signature(Some("ext4"), Some("data"), None)).as_deref(),
            Some("a signature of type ext4 labelled \"data\"")
        );
        assert_eq!(
            describe_signature(&signature(None, None, Some("gpt"))).as_deref(),
            Some("a partition table (gpt)")
        );
        assert_eq!(
            describe_signature(&signature(Some("LVM2_member"), None, None)).as_deref(),
            Some("an LVM physical volume outside any volume group")
        );
    }

    #[test]
    fn qcow2_volume_xml() {
        assert_eq!(
            volume_xml("d.qcow2", 1 << 30, "qcow2", None).unwrap(),
            "<volume>\n  <name>d.qcow2</name>\n  <capacity unit=\"bytes\">1073741824</capacity>\n  \
             <allocation>0</allocation>\n  <target>\n    <format type=\"qcow2\"/>\n  </target>\n</volume>"
        );
    }

    #[test]
    fn nfs_pool_xml_mounts_nfsv4_once() {
        assert_eq!(
            PoolLayout::nfs(
                "192.0.2.7",
                "/export/vms",
                Path::new("/var/lib/mfv/pools/shared")
            )
            .to_xml("shared")
            .unwrap(),
            "<pool type=\"netfs\" xmlns:fs=\"http://libvirt.org/schemas/storagepool/fs/1.0\">\n  \
             <name>shared</name>\n  <source>\n    <host name=\"192.0.2.7\"/>\n    \
             <dir path=\"/export/vms\"/>\n    <format type=\"nfs\"/>\n    <protocol ver=\"4\"/>\n  \
             </source>\n  <target>\n    <path>/var/lib/mfv/pools/shared</path>\n  </target>\n  \
             <fs:mount_opts>\n    <fs:option name=\"retry=0\"/>\n  </fs:mount_opts>\n</pool>"
        );
    }

    #[test]
    fn a_pool_definition_is_read_as_libvirt_returns_it_and_named_in_both_forms() {
        let mount_point = Path::new("/var/lib/mfv/pools/shared/");
        let ours = PoolLayout::nfs("nfs.example.org", "/export", mount_point)
            .to_xml("shared")
            .unwrap();
        let wanted = PoolLayout::nfs("nfs.example.org", "/export", mount_point);
        assert_eq!(PoolLayout::parse("shared", &ours).unwrap(), wanted);
        assert_eq!(
            wanted.to_string(),
            "nfs nfs.example.org:/export (version 4) at /var/lib/mfv/pools/shared"
        );
        // As libvirt returns it: with a uuid, sizes, permissions and the source's order.
        let returned = "<pool type='netfs'>\n  <name>shared</name>\n  <uuid>0d5e</uuid>\n  \
            <capacity unit='bytes'>0</capacity>\n  <source>\n    <host name='nfs.example.org'/>\n    \
            <dir path='/other'/>\n    <format type='nfs'/>\n    <protocol ver='4'/>\n  </source>\n  \
            <target>\n    <path>/var/lib/mfv/pools/shared</path>\n    <permissions>\n      \
            <mode>0755</mode>\n    </permissions>\n  </target>\n</pool>";
        let existing = PoolLayout::parse("shared", returned).unwrap();
        assert_ne!(existing, wanted);
        assert_eq!(
            existing.to_string(),
            "nfs nfs.example.org:/other (version 4) at /var/lib/mfv/pools/shared"
        );
        let dir = "<pool type='dir'><name>shared</name><source/><target><path>/srv/vms</path>\
            </target></pool>";
        assert_eq!(
            PoolLayout::parse("shared", dir).unwrap().to_string(),
            "a dir pool at /srv/vms"
        );
    }

    #[test]
    fn clone_xml_names_its_backing_file() {
        let xml = volume_xml("c.qcow2", 10, "qcow2", Some(("/p/b.qcow2", "qcow2"))).unwrap();
        assert!(
            xml.contains(
                "<backingStore>\n    <path>/p/b.qcow2</path>\n    <format type=\"qcow2\"/>\n  </backingStore>"
            ),
            "{xml}"
        );
        assert!(!xml.contains("<allocation>"), "{xml}");
    }
}
