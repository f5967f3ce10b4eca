//! Storage through libvirt: directory pools and the qcow2 volumes in them (create, delete,
//! resize, clone on a backing file, upload an ISO with progress).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use quick_xml::events::BytesText;
use serde::Serialize;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::connection::Hypervisor;
use crate::libvirt::{ObjectKind, VirtError, build_xml, code, operation_error};

/// A volume in a storage pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// The volume's name in its pool.
    pub name: String,
    /// Its path on the host (what a domain's `<source file=...>` names).
    pub path: String,
    /// Size the guest sees, bytes.
    pub capacity_bytes: u64,
    /// Space used on the host, bytes.
    pub allocation_bytes: u64,
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
        let pool = match self.connection.lookup_storage_pool_by_name(name) {
            Ok(pool) => pool,
            Err(error) if code(&error) == Some(virt::error::ErrorNumber::NoStoragePool) => {
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
                let pool = self
                    .connection
                    .define_storage_pool_xml(&xml, 0)
                    .map_err(|error| operation_error("define", ObjectKind::Pool, name, error))?;
                pool.build(0)
                    .map_err(|error| operation_error("build", ObjectKind::Pool, name, error))?;
                pool
            }
            Err(error) => return Err(operation_error("look up", ObjectKind::Pool, name, error)),
        };
        if !pool.is_active().unwrap_or(false) {
            pool.create(0)
                .map_err(|error| operation_error("start", ObjectKind::Pool, name, error))?;
        }
        pool.set_autostart(true)
            .map(drop)
            .map_err(|error| operation_error("set autostart of", ObjectKind::Pool, name, error))
    }

    /// The volumes of a pool, sorted by name.
    pub fn list_volumes(&self, pool_name: &str) -> Result<Vec<VolumeInfo>, VirtError> {
        let pool = self.pool(pool_name)?;
        pool.refresh(0)
            .map_err(|error| operation_error("refresh", ObjectKind::Pool, pool_name, error))?;
        let volumes = pool
            .list_all_volumes(0)
            .map_err(|error| operation_error("list", ObjectKind::Pool, pool_name, error))?;
        let mut infos = volumes
            .iter()
            .map(|volume| volume_info(volume, pool_name))
            .collect::<Result<Vec<_>, _>>()?;
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
        let pool = self.pool(pool_name)?;
        let xml = volume_xml(name, capacity_bytes, "qcow2", None)?;
        let volume = StorageVol::create_xml(&pool, &xml, 0)
            .map_err(|error| operation_error("create", ObjectKind::Volume, name, error))?;
        volume_info(&volume, name)
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
        let backing_format = volume_format(&pool, source)?;
        let xml = volume_xml(
            new_name,
            backing.capacity_bytes,
            "qcow2",
            Some((&backing.path, &backing_format)),
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
        let mut upload = || -> Result<(), VirtError> {
            let failed = |error| operation_error("upload", ObjectKind::Volume, name, error);
            let stream = Stream::new(&self.connection, 0).map_err(failed)?;
            volume.upload(&stream, 0, total, 0).map_err(failed)?;
            let mut buffer = vec![0u8; UPLOAD_CHUNK];
            let mut sent = 0u64;
            progress(UploadProgress { sent, total });
            loop {
                let read = match input.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(source) => {
                        // The stream's own error would hide the cause; the read error is
                        // the one worth reporting.
                        let _ = stream.abort();
                        return Err(io_error("read", source));
                    }
                };
                let mut offset = 0;
                while offset < read {
                    let written = stream.send(&buffer[offset..read]).map_err(failed)?;
                    offset += usize::try_from(written).unwrap_or(0).max(1);
                }
                sent += read as u64;
                progress(UploadProgress { sent, total });
            }
            stream.finish().map_err(failed)
        };
        if let Err(error) = upload() {
            // Leave no half-written volume behind; the upload error is what matters.
            let _ = volume.delete(0);
            return Err(error);
        }
        volume_info(&volume, name)
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

fn volume_info(volume: &StorageVol, name: &str) -> Result<VolumeInfo, VirtError> {
    let read = |error| operation_error("read", ObjectKind::Volume, name, error);
    let info = volume.info().map_err(read)?;
    Ok(VolumeInfo {
        name: volume.name().map_err(read)?,
        path: volume.path().map_err(read)?,
        capacity_bytes: info.capacity,
        allocation_bytes: info.allocation,
    })
}

/// The format (`qcow2`, `raw`...) of a volume, read from its XML.
fn volume_format(pool: &StoragePool, name: &str) -> Result<String, VirtError> {
    let volume = pool
        .lookup_storage_vol_by_name(name)
        .map_err(|error| operation_error("look up", ObjectKind::Volume, name, error))?;
    let xml = volume
        .xml_desc(0)
        .map_err(|error| operation_error("read", ObjectKind::Volume, name, error))?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|source| VirtError::Xml {
            name: name.to_owned(),
            source,
        })?;
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
    fn qcow2_volume_xml() {
        assert_eq!(
            volume_xml("d.qcow2", 1 << 30, "qcow2", None).unwrap(),
            "<volume>\n  <name>d.qcow2</name>\n  <capacity unit=\"bytes\">1073741824</capacity>\n  \
             <allocation>0</allocation>\n  <target>\n    <format type=\"qcow2\"/>\n  </target>\n</volume>"
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
