//! Mounting a candidate config volume read-only on a private mount point, behind the narrow
//! [`Mounter`] trait so that discovery is tested without root ([`RecordingMounter`]).
//!
//! Every mount made here is read-only, `noexec`, `nosuid` and `nodev`, with the file system type
//! given explicitly (never guessed by trying every type). Discovery mounts ext3 and ext4 with
//! `noload` ([`Journal::Skip`]): a read-only mount of a journal that needs recovery would
//! otherwise replay it, which writes to a volume that may not even be ours. The volume a store
//! is about to write to is mounted with its journal loaded ([`Journal::Load`]) instead, so the
//! store's remount read-write is journaled like any other ext4 write. A [`ReadOnlyMount`]
//! unmounts when it is dropped, so every error path leaves nothing mounted.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sys_mount::{Mount, MountFlags, UnmountFlags};
use tempfile::TempDir;

/// Mounting or unmounting a volume failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The private mount point could not be created.
    #[error("cannot create a mount point in {}", dir.display())]
    MountPoint {
        /// The directory the mount point was to be created in (the run directory).
        dir: PathBuf,
        /// Why it could not be created.
        #[source]
        source: io::Error,
    },
    /// mount(2) refused the volume.
    #[error("cannot mount {} ({fs_type}) read-only on {}", device.display(), target.display())]
    Mount {
        /// The device node.
        device: PathBuf,
        /// The file system type it was mounted as.
        fs_type: String,
        /// The mount point.
        target: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// umount2(2) failed, also with `MNT_DETACH`.
    #[error("cannot unmount {}", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

/// What a read-only mount of an ext3 or ext4 volume does with the volume's journal (other file
/// systems have none and ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Not loaded (`noload`): a journal that needs recovery is left alone, so mounting writes
    /// nothing to the device. For looking at a volume (discovery).
    Skip,
    /// Loaded and, if it needs recovery, replayed: for the volume a store is about to write
    /// to, so that its remount read-write writes through the journal.
    Load,
}

/// Mounts volumes read-only and unmounts them: the one privileged action of discovery.
pub trait Mounter {
    /// Mounts `device`, whose file system is `fs_type`, read-only, `noexec`, `nosuid` and
    /// `nodev` on the existing directory `target`, treating its journal as `journal` says.
    fn mount_read_only(
        &self,
        device: &Path,
        fs_type: &str,
        journal: Journal,
        target: &Path,
    ) -> Result<(), MountError>;

    /// Unmounts whatever is mounted on `target`.
    fn unmount(&self, target: &Path) -> Result<(), MountError>;
}

/// The real [`Mounter`]: mount(2) and umount2(2) through sys-mount.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysMounter;

/// The file system specific mount data for a read-only mount of `fs_type`: `noload` for ext3
/// and ext4 with [`Journal::Skip`] (do not load or replay the journal); nothing otherwise.
pub fn read_only_mount_data(fs_type: &str, journal: Journal) -> Option<&'static str> {
    match (fs_type, journal) {
        ("ext3" | "ext4", Journal::Skip) => Some("noload"),
        _ => None,
    }
}

impl Mounter for SysMounter {
    fn mount_read_only(
        &self,
        device: &Path,
        fs_type: &str,
        journal: Journal,
        target: &Path,
    ) -> Result<(), MountError> {
        let mut builder = Mount::builder().fstype(fs_type).flags(
            MountFlags::RDONLY | MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV,
        );
        if let Some(data) = read_only_mount_data(fs_type, journal) {
            builder = builder.data(data);
        }
        builder
            .mount(device, target)
            .map(drop)
            .map_err(|source| MountError::Mount {
                device: device.to_owned(),
                fs_type: fs_type.to_owned(),
                target: target.to_owned(),
                source,
            })
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        // A busy mount (a reader still has a file open) is detached: it goes away when the
        // last file is closed and the mount point is no longer reachable.
        sys_mount::unmount(target, UnmountFlags::empty())
            .or_else(|_| sys_mount::unmount(target, UnmountFlags::DETACH))
            .map_err(|source| MountError::Unmount {
                target: target.to_owned(),
                source,
            })
    }
}

/// A volume mounted read-only on a private, freshly created directory; unmounted and the
/// directory removed on [`ReadOnlyMount::unmount`] or on drop. When the unmount fails the
/// directory is left in place (removing it would walk into the still-mounted volume).
#[derive(Debug)]
pub struct ReadOnlyMount<'m, M: Mounter + ?Sized> {
    mounter: &'m M,
    path: PathBuf,
    /// `Some` until unmounted.
    mount_point: Option<TempDir>,
}

impl<'m, M: Mounter + ?Sized> ReadOnlyMount<'m, M> {
    /// Creates a private directory (mode 0700) in `run_dir`, creating `run_dir` if needed,
    /// and mounts `device` on it read-only as `fs_type`, its journal treated as `journal`
    /// says. On failure nothing stays mounted and the directory is removed.
    pub fn new(
        mounter: &'m M,
        device: &Path,
        fs_type: &str,
        journal: Journal,
        run_dir: &Path,
    ) -> Result<Self, MountError> {
        let mount_point_error = |source| MountError::MountPoint {
            dir: run_dir.to_owned(),
            source,
        };
        fs::create_dir_all(run_dir).map_err(mount_point_error)?;
        let mount_point = tempfile::Builder::new()
            .prefix("config-volume-")
            .tempdir_in(run_dir)
            .map_err(mount_point_error)?;
        mounter.mount_read_only(device, fs_type, journal, mount_point.path())?;
        Ok(ReadOnlyMount {
            mounter,
            path: mount_point.path().to_owned(),
            mount_point: Some(mount_point),
        })
    }

    /// Where the volume is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts the volume and removes the mount point.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), MountError> {
        let Some(mount_point) = self.mount_point.take() else {
            return Ok(());
        };
        match self.mounter.unmount(mount_point.path()) {
            Ok(()) => Ok(()),
            Err(error) => {
                // Keep the directory: something may still be mounted on it.
                let _kept: PathBuf = mount_point.keep();
                Err(error)
            }
        }
    }
}

impl<M: Mounter + ?Sized> Drop for ReadOnlyMount<'_, M> {
    fn drop(&mut self) {
        // Drop cannot report: an unmount that fails here leaves the mount point in place,
        // and the explicit `unmount` is used wherever the error can be reported.
        let _ = self.release();
    }
}

/// One entry of a [`FakeVolume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeEntry {
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// An empty directory.
    Dir,
    /// A symbolic link to this target.
    Symlink(PathBuf),
}

/// What a [`RecordingMounter`] does when asked to mount a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeVolume {
    /// The mount succeeds and these entries (names relative to the volume root) appear on the
    /// mount point until it is unmounted.
    Entries(BTreeMap<String, FakeEntry>),
    /// The mount fails with this OS error number (e.g. `libc` `EINVAL` = 22).
    Fails(i32),
}

impl FakeVolume {
    /// A volume holding one file.
    pub fn with_file(name: &str, content: impl Into<Vec<u8>>) -> Self {
        FakeVolume::Entries(BTreeMap::from([(
            name.to_owned(),
            FakeEntry::File(content.into()),
        )]))
    }

    /// A volume that mounts but holds nothing.
    pub fn empty() -> Self {
        FakeVolume::Entries(BTreeMap::new())
    }
}

/// One call a [`RecordingMounter`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    /// `mount_read_only(device, fs_type, journal, target)`.
    Mount {
        /// The device node.
        device: PathBuf,
        /// The file system type.
        fs_type: String,
        /// What was asked of the journal.
        journal: Journal,
        /// The mount point.
        target: PathBuf,
    },
    /// `unmount(target)`.
    Unmount {
        /// The mount point.
        target: PathBuf,
    },
}

#[derive(Debug, Default)]
struct RecordingState {
    calls: Vec<MountCall>,
    /// Mount point to the names created there.
    mounted: BTreeMap<PathBuf, Vec<String>>,
}

/// A [`Mounter`] for tests: "mounting" a device writes the entries of its [`FakeVolume`]
/// into the mount point and unmounting removes them; every call is recorded. A device without
/// a volume fails to mount with `ENXIO`.
#[derive(Debug, Default)]
pub struct RecordingMounter {
    volumes: BTreeMap<PathBuf, FakeVolume>,
    unmount_fails: bool,
    state: Mutex<RecordingState>,
}

/// `ENXIO`: "No such device or address".
const ENXIO: i32 = 6;
/// `EBUSY`: "Device or resource busy".
const EBUSY: i32 = 16;
/// `EINVAL`: what umount2(2) says for a directory that is not a mount point.
const EINVAL: i32 = 22;

impl RecordingMounter {
    /// A mounter that knows no volumes.
    pub fn new() -> Self {
        Self::default()
    }

    /// What mounting `device` does.
    pub fn with_volume(mut self, device: impl Into<PathBuf>, volume: FakeVolume) -> Self {
        self.volumes.insert(device.into(), volume);
        self
    }

    /// Makes every unmount fail with `EBUSY` (the entries stay on the mount point).
    pub fn with_failing_unmount(mut self) -> Self {
        self.unmount_fails = true;
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<MountCall> {
        self.lock().calls.clone()
    }

    /// The mount points that are mounted now.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.lock().mounted.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Mounter for RecordingMounter {
    fn mount_read_only(
        &self,
        device: &Path,
        fs_type: &str,
        journal: Journal,
        target: &Path,
    ) -> Result<(), MountError> {
        let mut state = self.lock();
        state.calls.push(MountCall::Mount {
            device: device.to_owned(),
            fs_type: fs_type.to_owned(),
            journal,
            target: target.to_owned(),
        });
        let mount_error = |source| MountError::Mount {
            device: device.to_owned(),
            fs_type: fs_type.to_owned(),
            target: target.to_owned(),
            source,
        };
        let entries = match self.volumes.get(device) {
            Some(FakeVolume::Entries(entries)) => entries,
            Some(FakeVolume::Fails(errno)) => {
                return Err(mount_error(io::Error::from_raw_os_error(*errno)));
            }
            None => return Err(mount_error(io::Error::from_raw_os_error(ENXIO))),
        };
        if state.mounted.contains_key(target) {
            return Err(mount_error(io::Error::from_raw_os_error(EBUSY)));
        }
        for (name, entry) in entries {
            let path = target.join(name);
            let written = match entry {
                FakeEntry::File(content) => fs::write(&path, content),
                FakeEntry::Dir => fs::create_dir(&path),
                FakeEntry::Symlink(link) => std::os::unix::fs::symlink(link, &path),
            };
            written.map_err(mount_error)?;
        }
        state
            .mounted
            .insert(target.to_owned(), entries.keys().cloned().collect());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        let mut state = self.lock();
        state.calls.push(MountCall::Unmount {
            target: target.to_owned(),
        });
        let unmount_error = |source| MountError::Unmount {
            target: target.to_owned(),
            source,
        };
        if self.unmount_fails {
            return Err(unmount_error(io::Error::from_raw_os_error(EBUSY)));
        }
        let Some(names) = state.mounted.remove(target) else {
            return Err(unmount_error(io::Error::from_raw_os_error(EINVAL)));
        };
        for name in names {
            let path = target.join(name);
            let removed = match fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(error) => Err(error),
            };
            removed.map_err(unmount_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume_with_config() -> RecordingMounter {
        RecordingMounter::new().with_volume("/dev/vdb", FakeVolume::with_file("mfv.toml", "x"))
    }

    #[test]
    fn mount_guard_unmounts_and_removes_the_mount_point() {
        let run = tempfile::tempdir().unwrap();
        let run_dir = run.path().join("run/mfv");
        let mounter = volume_with_config();
        let mount = ReadOnlyMount::new(
            &mounter,
            Path::new("/dev/vdb"),
            "ext4",
            Journal::Skip,
            &run_dir,
        )
        .unwrap();
        let point = mount.path().to_owned();
        assert!(point.starts_with(&run_dir));
        assert_eq!(fs::read_to_string(point.join("mfv.toml")).unwrap(), "x");
        mount.unmount().unwrap();
        assert!(!point.exists());
        assert_eq!(
            mounter.calls(),
            [
                MountCall::Mount {
                    device: "/dev/vdb".into(),
                    fs_type: "ext4".into(),
                    journal: Journal::Skip,
                    target: point.clone(),
                },
                MountCall::Unmount { target: point },
            ]
        );
        assert!(mounter.mounted().is_empty());
    }

    #[test]
    fn dropping_the_guard_unmounts() {
        let run = tempfile::tempdir().unwrap();
        let mounter = volume_with_config();
        let point = {
            let mount = ReadOnlyMount::new(
                &mounter,
                Path::new("/dev/vdb"),
                "vfat",
                Journal::Skip,
                run.path(),
            )
            .unwrap();
            mount.path().to_owned()
        };
        assert!(!point.exists());
        assert!(mounter.mounted().is_empty());
        assert_eq!(mounter.calls().len(), 2);
    }

    #[test]
    fn failed_mount_leaves_no_mount_point() {
        let run = tempfile::tempdir().unwrap();
        let mounter = RecordingMounter::new().with_volume("/dev/vdc", FakeVolume::Fails(22));
        let error = ReadOnlyMount::new(
            &mounter,
            Path::new("/dev/vdc"),
            "ext4",
            Journal::Skip,
            run.path(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot mount /dev/vdc (ext4) read-only on "),
            "{error}"
        );
        let MountError::Mount { source, .. } = error else {
            panic!("{error:?}");
        };
        assert_eq!(source.raw_os_error(), Some(22));
        assert_eq!(fs::read_dir(run.path()).unwrap().count(), 0);
        // An unknown device fails as well.
        assert!(
            ReadOnlyMount::new(
                &mounter,
                Path::new("/dev/vdz"),
                "ext4",
                Journal::Skip,
                run.path()
            )
            .is_err()
        );
    }

    #[test]
    fn failed_unmount_keeps_the_mount_point() {
        let run = tempfile::tempdir().unwrap();
        let mounter = volume_with_config().with_failing_unmount();
        let mount = ReadOnlyMount::new(
            &mounter,
            Path::new("/dev/vdb"),
            "ext4",
            Journal::Skip,
            run.path(),
        )
        .unwrap();
        let point = mount.path().to_owned();
        let error = mount.unmount().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot unmount {}", point.display())
        );
        assert!(point.join("mfv.toml").exists());
    }

    #[test]
    fn unusable_run_dir_is_a_mount_point_error() {
        let run = tempfile::tempdir().unwrap();
        let file = run.path().join("file");
        fs::write(&file, "").unwrap();
        let mounter = volume_with_config();
        let error = ReadOnlyMount::new(
            &mounter,
            Path::new("/dev/vdb"),
            "ext4",
            Journal::Skip,
            &file,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot create a mount point in {}", file.display())
        );
        assert!(mounter.calls().is_empty());
    }

    #[test]
    fn journal_replay_is_disabled_for_ext3_and_ext4_unless_the_journal_is_wanted() {
        assert_eq!(read_only_mount_data("ext4", Journal::Skip), Some("noload"));
        assert_eq!(read_only_mount_data("ext3", Journal::Skip), Some("noload"));
        assert_eq!(read_only_mount_data("ext2", Journal::Skip), None);
        assert_eq!(read_only_mount_data("vfat", Journal::Skip), None);
        assert_eq!(read_only_mount_data("iso9660", Journal::Skip), None);
        assert_eq!(read_only_mount_data("ext4", Journal::Load), None);
        assert_eq!(read_only_mount_data("ext3", Journal::Load), None);
    }
}
