//! Switching the config volume between read-only and read-write around a write.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};

/// Makes the volume holding a store writable for the duration of a write.
///
/// A store calls [`make_writable`](Self::make_writable) before it touches the volume and
/// [`make_read_only`](Self::make_read_only) after, also when the write failed. No file on the
/// volume is open for writing when `make_read_only` is called.
pub trait VolumeAccess: fmt::Debug + Send + Sync {
    /// Makes the volume writable.
    fn make_writable(&self) -> Result<(), VolumeError>;
    /// Makes the volume read-only again.
    fn make_read_only(&self) -> Result<(), VolumeError>;
}

/// Switching a volume between read-only and read-write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// Reading the mount's flags failed.
    #[error("cannot read the mount flags of {}", mount_point.display())]
    Flags {
        /// The mount point.
        mount_point: PathBuf,
        /// The cause.
        #[source]
        source: Errno,
    },
    /// The remount failed.
    #[error("cannot remount {} {}", mount_point.display(), if *read_only { "read-only" } else { "read-write" })]
    Remount {
        /// The mount point.
        mount_point: PathBuf,
        /// Whether the remount was to read-only.
        read_only: bool,
        /// The cause.
        #[source]
        source: Errno,
    },
}

/// For a store in an ordinary directory: nothing to switch.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainDirectory;

impl VolumeAccess for PlainDirectory {
    fn make_writable(&self) -> Result<(), VolumeError> {
        Ok(())
    }

    fn make_read_only(&self) -> Result<(), VolumeError> {
        Ok(())
    }
}

/// Remounts a mounted file system (`mount(2)` with `MS_REMOUNT`): read-write for a write,
/// read-only after. The mount's other flags (nosuid, nodev, noexec, atime handling) are kept.
#[derive(Debug, Clone)]
pub struct RemountVolume {
    mount_point: PathBuf,
}

impl RemountVolume {
    /// For the file system mounted at `mount_point`.
    pub fn new(mount_point: impl Into<PathBuf>) -> Self {
        RemountVolume {
            mount_point: mount_point.into(),
        }
    }

    /// The mount point.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    fn remount(&self, read_only: bool) -> Result<(), VolumeError> {
        let current = statvfs(&self.mount_point).map_err(|source| VolumeError::Flags {
            mount_point: self.mount_point.clone(),
            source,
        })?;
        let mut flags = MsFlags::MS_REMOUNT | kept_mount_flags(current.flags());
        flags.set(MsFlags::MS_RDONLY, read_only);
        mount::<Path, Path, str, str>(None, &self.mount_point, None, flags, None).map_err(
            |source| VolumeError::Remount {
                mount_point: self.mount_point.clone(),
                read_only,
                source,
            },
        )
    }
}

/// The per-mount flags a remount would otherwise reset.
fn kept_mount_flags(current: FsFlags) -> MsFlags {
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(statvfs_flag, _)| current.contains(*statvfs_flag))
    .fold(MsFlags::empty(), |flags, (_, mount_flag)| {
        flags | mount_flag
    })
}

impl VolumeAccess for RemountVolume {
    fn make_writable(&self) -> Result<(), VolumeError> {
        self.remount(false)
    }

    fn make_read_only(&self) -> Result<(), VolumeError> {
        // A file closed just before (a database a thread pool closes, a file written by
        // another thread) may still be being released when the remount comes: the kernel
        // says EBUSY until then, so the remount is tried again for a moment.
        let mut tries = 0;
        loop {
            match self.remount(true) {
                Err(VolumeError::Remount {
                    source: Errno::EBUSY,
                    ..
                }) if tries < READ_ONLY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(READ_ONLY_RETRY_PAUSE);
                }
                other => return other,
            }
        }
    }
}

/// How often a read-only remount refused with EBUSY is tried again.
const READ_ONLY_RETRIES: u32 = 20;
/// The pause between those tries (a second in all).
const READ_ONLY_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// One call a [`RecordingVolume`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeCall {
    /// [`VolumeAccess::make_writable`].
    MakeWritable,
    /// [`VolumeAccess::make_read_only`].
    MakeReadOnly,
}

/// A test double that records calls and fails the ones it is told to fail (with `EROFS` for
/// [`make_writable`](VolumeAccess::make_writable), `EBUSY` for
/// [`make_read_only`](VolumeAccess::make_read_only), as the kernel would).
#[derive(Debug, Default)]
pub struct RecordingVolume {
    calls: Mutex<Vec<VolumeCall>>,
    fail_writable: bool,
    fail_read_only: bool,
}

impl RecordingVolume {
    /// Records calls; every call succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records calls; `make_writable` fails when `writable` is set, `make_read_only` when
    /// `read_only` is set.
    pub fn failing(writable: bool, read_only: bool) -> Self {
        RecordingVolume {
            calls: Mutex::new(Vec::new()),
            fail_writable: writable,
            fail_read_only: read_only,
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<VolumeCall> {
        self.calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn record(&self, call: VolumeCall, fail: bool) -> Result<(), VolumeError> {
        match self.calls.lock() {
            Ok(mut calls) => calls.push(call),
            Err(poisoned) => poisoned.into_inner().push(call),
        }
        if !fail {
            return Ok(());
        }
        let read_only = call == VolumeCall::MakeReadOnly;
        Err(VolumeError::Remount {
            mount_point: PathBuf::from("/recording-volume"),
            read_only,
            source: if read_only {
                Errno::EBUSY
            } else {
                Errno::EROFS
            },
        })
    }
}

impl VolumeAccess for RecordingVolume {
    fn make_writable(&self) -> Result<(), VolumeError> {
        self.record(VolumeCall::MakeWritable, self.fail_writable)
    }

    fn make_read_only(&self) -> Result<(), VolumeError> {
        self.record(VolumeCall::MakeReadOnly, self.fail_read_only)
    }
}

/// Sharing one recorder between a store and the test that inspects it.
impl<T: VolumeAccess + ?Sized> VolumeAccess for std::sync::Arc<T> {
    fn make_writable(&self) -> Result<(), VolumeError> {
        (**self).make_writable()
    }

    fn make_read_only(&self) -> Result<(), VolumeError> {
        (**self).make_read_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_flags_map_one_to_one() {
        assert_eq!(kept_mount_flags(FsFlags::empty()), MsFlags::empty());
        assert_eq!(
            kept_mount_flags(
                FsFlags::ST_RDONLY | FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_RELATIME
            ),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
        assert_eq!(
            kept_mount_flags(FsFlags::ST_NOEXEC | FsFlags::ST_NOATIME),
            MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME
        );
    }

    #[test]
    fn recording_volume_records_and_fails_on_request() {
        let volume = RecordingVolume::failing(false, true);
        assert_eq!(volume.make_writable(), Ok(()));
        assert!(matches!(
            volume.make_read_only(),
            Err(VolumeError::Remount {
                read_only: true,
                source: Errno::EBUSY,
                ..
            })
        ));
        assert_eq!(
            volume.calls(),
            [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
        );
    }

    #[test]
    fn remounting_a_missing_mount_point_names_it() {
        let volume = RemountVolume::new("/nonexistent/mfv-config-volume");
        let error = volume.make_writable().unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read the mount flags of /nonexistent/mfv-config-volume"
        );
    }
}
