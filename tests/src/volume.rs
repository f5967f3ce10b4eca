//! Volume images that hold files, made on the host without root: an ext4 or vfat file system
//! (on the whole disk or on the one partition of an MBR or GPT disk) or an iso9660 image, with
//! files such as a config volume's `mfv.toml`. The partition table is written here; the file
//! system is made in place at the partition's offset (`mkfs.ext4 -E offset= -d DIR`,
//! `mkfs.vfat --offset` then `mcopy -i IMAGE@@OFFSET`), and the iso9660 image by
//! `xorriso -as mkisofs` (with Rock Ridge, so names keep their case).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::spec::{FLOPPY_SIZES, create_sparse, find_program};

/// Bytes per sector of the images.
const SECTOR: u64 = 512;
/// Where the partition starts: sector 2048 (1 MiB), as partitioning tools align it.
const PARTITION_START: u64 = 2048;
/// GPT: partition entries and their size.
const GPT_ENTRIES: u64 = 128;
const GPT_ENTRY_SIZE: u64 = 128;
/// GPT: sectors taken by the partition entry array (128 × 128 bytes).
const GPT_ENTRY_SECTORS: u64 = GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR;
/// The GPT partition type "Linux filesystem data" (0FC63DAF-8483-4772-8E79-3D69D8477DE4),
/// in its on-disk byte order.
const LINUX_FILESYSTEM_TYPE: [u8; 16] = [
    0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4,
];

/// Directories searched for programs after `PATH` (mkfs is in sbin).
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

/// The file system of a [`VolumeImage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeFilesystem {
    /// ext4 (`mkfs.ext4`, e2fsprogs).
    Ext4,
    /// FAT (`mkfs.vfat`, dosfstools; files copied with `mcopy`, mtools).
    Vfat,
    /// iso9660 with Rock Ridge (`xorriso`); never partitioned here.
    Iso9660,
}

/// How the disk is divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    /// No table: the file system covers the whole disk.
    None,
    /// An MBR (DOS) table with one primary partition from 1 MiB to 1 MiB before the end.
    Mbr,
    /// A GPT with one partition from 1 MiB to 1 MiB before the end, named by
    /// [`VolumeImage::partition_name`] (`PARTLABEL=`).
    Gpt,
}

/// A disk image with a labelled file system holding some files, built by [`VolumeImage::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeImage {
    filesystem: VolumeFilesystem,
    label: String,
    table: PartitionTable,
    partition_name: String,
    size_bytes: u64,
    files: Vec<(String, Vec<u8>)>,
}

impl VolumeImage {
    /// A 32 MiB image whose whole disk holds `filesystem` labelled `label`.
    pub fn new(filesystem: VolumeFilesystem, label: impl Into<String>) -> Self {
        VolumeImage {
            filesystem,
            label: label.into(),
            table: PartitionTable::None,
            partition_name: "mfv".to_owned(),
            size_bytes: 32 << 20,
            files: Vec::new(),
        }
    }

    /// Puts the file system on the one partition of `table`.
    pub fn partition_table(mut self, table: PartitionTable) -> Self {
        self.table = table;
        self
    }

    /// The GPT partition name (default `mfv`).
    pub fn partition_name(mut self, name: impl Into<String>) -> Self {
        self.partition_name = name.into();
        self
    }

    /// The disk size (default 32 MiB, at least 8 MiB; ignored for iso9660, whose size follows
    /// its files). An unpartitioned vfat image may also have a standard floppy size (1.44 MB:
    /// 1 474 560 bytes), to go in a floppy drive ([`DiskInterface::Floppy`](crate::DiskInterface)).
    pub fn size_bytes(mut self, size_bytes: u64) -> Self {
        self.size_bytes = size_bytes;
        self
    }

    /// A file at the root of the file system.
    pub fn file(mut self, name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Writes the image to `path` (which must not exist).
    pub fn build(&self, path: &Path) -> anyhow::Result<()> {
        let staging = tempfile::tempdir().context("creating a staging directory")?;
        for (name, contents) in &self.files {
            let file = staging.path().join(name);
            std::fs::write(&file, contents)
                .with_context(|| format!("writing {}", file.display()))?;
        }
        if self.filesystem == VolumeFilesystem::Iso9660 {
            ensure!(
                self.table == PartitionTable::None,
                "an iso9660 image is not partitioned here"
            );
            return run(Command::new(program("xorriso", "xorriso")?)
                .args(["-as", "mkisofs", "-quiet", "-r", "-V", &self.label, "-o"])
                .arg(path)
                .arg(staging.path()));
        }
        let floppy = self.filesystem == VolumeFilesystem::Vfat
            && self.table == PartitionTable::None
            && FLOPPY_SIZES.contains(&self.size_bytes);
        ensure!(
            self.size_bytes % SECTOR == 0 && (self.size_bytes >= 8 << 20 || floppy),
            "a volume image takes a whole number of sectors and at least 8 MiB (or, for an \
             unpartitioned vfat floppy, one of {FLOPPY_SIZES:?} bytes), not {} bytes",
            self.size_bytes
        );
        create_sparse(path, self.size_bytes)?;
        let sectors = self.size_bytes / SECTOR;
        let (offset, fs_bytes) = match self.table {
            PartitionTable::None => (0, self.size_bytes),
            PartitionTable::Mbr | PartitionTable::Gpt => {
                let count = sectors - 2 * PARTITION_START;
                let tables = match self.table {
                    PartitionTable::Mbr => mbr(sectors, count, self.filesystem),
                    _ => gpt(sectors, count, &self.partition_name),
                };
                write_at(path, &tables)?;
                (PARTITION_START * SECTOR, count * SECTOR)
            }
        };
        match self.filesystem {
            VolumeFilesystem::Ext4 => run(Command::new(program("mkfs.ext4", "e2fsprogs")?)
                .args(["-q", "-F", "-L", &self.label, "-E"])
                .arg(format!("offset={offset}"))
                .arg("-d")
                .arg(staging.path())
                .arg(path)
                .arg(format!("{}k", fs_bytes / 1024))),
            VolumeFilesystem::Vfat => {
                run(Command::new(program("mkfs.vfat", "dosfstools")?)
                    .arg("--offset")
                    .arg((offset / SECTOR).to_string())
                    .args(["-n", &self.label])
                    .arg(path)
                    .arg((fs_bytes / 1024).to_string()))?;
                let mcopy = program("mcopy", "mtools")?;
                for (name, _) in &self.files {
                    run(Command::new(&mcopy)
                        .arg("-i")
                        .arg(format!("{}@@{offset}", path.display()))
                        .arg(staging.path().join(name))
                        .arg(format!("::{name}")))?;
                }
                Ok(())
            }
            VolumeFilesystem::Iso9660 => Ok(()),
        }
    }
}

/// A program found on `PATH` or in the sbin directories, or an error naming its package.
fn program(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    find_program(Path::new(name))
        .or_else(|| {
            SBIN_DIRS
                .iter()
                .find_map(|dir| find_program(&Path::new(dir).join(name)))
        })
        .with_context(|| {
            format!(
                "{name} not found: install the Debian package {package} (apt-get install {package})"
            )
        })
}

/// Runs `command`; fails with its output unless it exits 0.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Writes each `(sector, bytes)` of `blocks` into the image.
fn write_at(path: &Path, blocks: &[(u64, Vec<u8>)]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for (sector, bytes) in blocks {
        file.seek(SeekFrom::Start(sector * SECTOR))
            .and_then(|_| file.write_all(bytes))
            .with_context(|| format!("writing the partition table of {}", path.display()))?;
    }
    Ok(())
}

/// A 32-bit value as sector/size field of an MBR (tests use small disks: it always fits).
fn u32_field(value: u64) -> [u8; 4] {
    u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes()
}

/// An MBR with one partition entry at 446: `type_byte`, starting at `start`, `count` sectors.
fn mbr_sector(type_byte: u8, start: u64, count: u64) -> Vec<u8> {
    let mut sector = vec![0u8; 512];
    sector[440..444].copy_from_slice(&0x4D46_5631u32.to_le_bytes()); // disk signature
    let entry = &mut sector[446..462];
    // CHS fields are ignored by Linux: the conventional "beyond CHS" values.
    entry[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    entry[4] = type_byte;
    entry[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    entry[8..12].copy_from_slice(&u32_field(start));
    entry[12..16].copy_from_slice(&u32_field(count));
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector
}

/// An MBR disk of `sectors` with one partition of `count` sectors at [`PARTITION_START`].
fn mbr(_sectors: u64, count: u64, filesystem: VolumeFilesystem) -> Vec<(u64, Vec<u8>)> {
    let type_byte = match filesystem {
        VolumeFilesystem::Vfat => 0x0C, // FAT32 with LBA
        _ => 0x83,                      // Linux
    };
    vec![(0, mbr_sector(type_byte, PARTITION_START, count))]
}

/// A GPT disk of `sectors`: protective MBR, primary header and entries, backup entries and
/// header, one partition of `count` sectors at [`PARTITION_START`] named `name`.
fn gpt(sectors: u64, count: u64, name: &str) -> Vec<(u64, Vec<u8>)> {
    let last = sectors - 1;
    let mut entries = vec![0u8; (GPT_ENTRIES * GPT_ENTRY_SIZE) as usize];
    entries[0..16].copy_from_slice(&LINUX_FILESYSTEM_TYPE);
    entries[16..32].copy_from_slice(b"mfv-test-part-01");
    entries[32..40].copy_from_slice(&PARTITION_START.to_le_bytes());
    entries[40..48].copy_from_slice(&(PARTITION_START + count - 1).to_le_bytes());
    for (index, unit) in name.encode_utf16().take(36).enumerate() {
        entries[56 + 2 * index..58 + 2 * index].copy_from_slice(&unit.to_le_bytes());
    }
    let entries_crc = crc32(&entries);
    let header = |own: u64, alternate: u64, entries_at: u64| {
        let mut header = vec![0u8; 512];
        header[0..8].copy_from_slice(b"EFI PART");
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&92u32.to_le_bytes());
        header[24..32].copy_from_slice(&own.to_le_bytes());
        header[32..40].copy_from_slice(&alternate.to_le_bytes());
        header[40..48].copy_from_slice(&(2 + GPT_ENTRY_SECTORS).to_le_bytes());
        header[48..56].copy_from_slice(&(last - 1 - GPT_ENTRY_SECTORS).to_le_bytes());
        header[56..72].copy_from_slice(b"mfv-test-disk-01");
        header[72..80].copy_from_slice(&entries_at.to_le_bytes());
        header[80..84].copy_from_slice(&u32_field(GPT_ENTRIES));
        header[84..88].copy_from_slice(&u32_field(GPT_ENTRY_SIZE));
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&header[..92]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    };
    let backup_entries = last - GPT_ENTRY_SECTORS;
    vec![
        (
            0,
            mbr_sector(0xEE, 1, (sectors - 1).min(u64::from(u32::MAX))),
        ),
        (1, header(1, last, 2)),
        (2, entries.clone()),
        (backup_entries, entries),
        (last, header(last, 1, backup_entries)),
    ]
}

/// CRC-32 (IEEE 802.3, reflected, as GPT uses it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `blkid -p -o export` of `path` (optionally at byte `offset`), as `KEY=value` lines.
    fn blkid(path: &Path, offset: Option<u64>) -> String {
        let mut command = Command::new(program("blkid", "util-linux").unwrap());
        command.args(["-p", "-o", "export"]);
        if let Some(offset) = offset {
            command.arg("-O").arg(offset.to_string());
        }
        let output = command.arg(path).output().unwrap();
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn whole_disk_and_partitioned_images_carry_label_and_files() {
        let dir = tempfile::tempdir().unwrap();
        for (filesystem, label, table, kind) in [
            (
                VolumeFilesystem::Ext4,
                "mfv-config",
                PartitionTable::None,
                "ext4",
            ),
            (
                VolumeFilesystem::Vfat,
                "MFV-CONFIG",
                PartitionTable::Mbr,
                "vfat",
            ),
            (
                VolumeFilesystem::Ext4,
                "mfv-config",
                PartitionTable::Gpt,
                "ext4",
            ),
        ] {
            let path = dir.path().join(format!("{kind}-{table:?}.img"));
            VolumeImage::new(filesystem, label)
                .partition_table(table)
                .file("mfv.toml", "version = 1\n")
                .build(&path)
                .unwrap();
            let offset = (table != PartitionTable::None).then_some(PARTITION_START * SECTOR);
            let probed = blkid(&path, offset);
            assert!(probed.contains(&format!("TYPE={kind}\n")), "{probed}");
            assert!(probed.contains(&format!("LABEL={label}\n")), "{probed}");
            if table != PartitionTable::None {
                let whole = blkid(&path, None);
                let expected = if table == PartitionTable::Gpt {
                    "gpt"
                } else {
                    "dos"
                };
                assert!(whole.contains(&format!("PTTYPE={expected}\n")), "{whole}");
            }
        }
    }

    #[test]
    fn iso_images_keep_their_label_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.iso");
        VolumeImage::new(VolumeFilesystem::Iso9660, "mfv-config")
            .file("mfv.toml", "version = 1\n")
            .build(&path)
            .unwrap();
        let probed = blkid(&path, None);
        assert!(probed.contains("TYPE=iso9660\n"), "{probed}");
        assert!(probed.contains("LABEL=mfv-config\n"), "{probed}");
        let error = VolumeImage::new(VolumeFilesystem::Iso9660, "x")
            .partition_table(PartitionTable::Mbr)
            .build(&dir.path().join("bad.iso"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "an iso9660 image is not partitioned here"
        );
    }

    #[test]
    fn a_vfat_floppy_image_has_a_standard_floppy_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floppy.img");
        VolumeImage::new(VolumeFilesystem::Vfat, "MFV-CONFIG")
            .size_bytes(1_474_560)
            .file("mfv.toml", "version = 1\n")
            .build(&path)
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1_474_560);
        let probed = blkid(&path, None);
        assert!(probed.contains("TYPE=vfat\n"), "{probed}");
        assert!(probed.contains("LABEL=MFV-CONFIG\n"), "{probed}");
        let listing = Command::new(program("mdir", "mtools").unwrap())
            .args(["-b", "-i"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout).trim(),
            "::/mfv.toml"
        );
        // Only unpartitioned vfat images may be that small.
        for image in [
            VolumeImage::new(VolumeFilesystem::Ext4, "x").size_bytes(1_474_560),
            VolumeImage::new(VolumeFilesystem::Vfat, "X")
                .size_bytes(1_474_560)
                .partition_table(PartitionTable::Mbr),
            VolumeImage::new(VolumeFilesystem::Vfat, "X").size_bytes(1_000_448),
        ] {
            let error = image.build(&dir.path().join("bad.img")).unwrap_err();
            assert!(error.to_string().contains("at least 8 MiB"), "{error}");
        }
    }

    #[test]
    fn a_tiny_image_is_refused_and_a_failing_tool_shows_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let error = VolumeImage::new(VolumeFilesystem::Ext4, "x")
            .size_bytes(4096)
            .build(&dir.path().join("tiny.img"))
            .unwrap_err();
        assert!(error.to_string().contains("at least 8 MiB"), "{error}");
        let error = VolumeImage::new(VolumeFilesystem::Vfat, "LABEL-TOO-LONG-FOR-FAT")
            .build(&dir.path().join("long.img"))
            .unwrap_err();
        assert!(error.to_string().contains("failed"), "{error}");
    }
}
