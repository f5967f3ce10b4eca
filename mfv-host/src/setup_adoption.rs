//! The configuration first-boot setup saved goes into use without a reboot.
//!
//! The operator who finished setup in the browser expects the host to be set up then, not
//! after a reboot that a remote operator may not even be able to watch. The host daemon saves
//! ([`crate::setup_save`]) and PID 1 owns what a configuration changes (the host name, the
//! network, the services), so the two meet in PID 1's runtime directory, as for a network
//! change: the daemon leaves the saved volume's device in [`ADOPTION_FILE`] and signals PID 1;
//! PID 1 takes the file, reads the configuration from that volume as the boot would, applies
//! it, and publishes the host state with the configuration found. The daemon answers the save
//! once that state names the volume ([`wait_until_in_use`]), so the answer says whether the
//! host runs with it already or uses it from the next boot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfv_api::ConfigProvenance;
use mfv_linux::regular_file::{ReadError, read_limited};
use serde::{Deserialize, Serialize};

/// The file in PID 1's runtime directory naming the volume setup saved to.
pub const ADOPTION_FILE: &str = "setup-saved.json";
/// The file's format version.
const ADOPTION_VERSION: u32 = 1;
/// The largest adoption file read.
const MAX_FILE_BYTES: u64 = 4096;
/// How often the host state is read while waiting for PID 1.
const POLL: Duration = Duration::from_millis(50);

/// What the daemon leaves for PID 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdoptionFile {
    version: u32,
    device: PathBuf,
}

/// The adoption file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AdoptionError {
    /// The file could not be written or removed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read (not a regular file, too large, unreadable).
    #[error(transparent)]
    Read(ReadError),
    /// The file is not an adoption request of this version.
    #[error("{} is not a saved setup to use: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The daemon's side: leaves `device`, where setup saved the configuration, for PID 1.
pub fn leave(run_dir: &Path, device: &Path) -> Result<(), AdoptionError> {
    let path = run_dir.join(ADOPTION_FILE);
    let file = AdoptionFile {
        version: ADOPTION_VERSION,
        device: device.to_owned(),
    };
    // A number and a path: it always serializes.
    let text = serde_json::to_string(&file).unwrap_or_default();
    mfv_linux::atomic_file::replace_file(&path, text.as_bytes(), 0o600)
        .map_err(std::io::Error::other)
        .map_err(|source| AdoptionError::Write { path, source })
}

/// PID 1's side: the device the daemon left in `run_dir`, the file taken away; `None` when
/// there is none.
pub fn take(run_dir: &Path) -> Option<Result<PathBuf, AdoptionError>> {
    let path = run_dir.join(ADOPTION_FILE);
    let bytes = match read_limited(run_dir, ADOPTION_FILE, MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing { .. }) => return None,
        Err(error) => {
            // A file that cannot be read is not read again at the next signal.
            let _ = std::fs::remove_file(&path);
            return Some(Err(AdoptionError::Read(error)));
        }
    };
    if let Err(source) = std::fs::remove_file(&path) {
        return Some(Err(AdoptionError::Write { path, source }));
    }
    let file: AdoptionFile = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(error) => {
            return Some(Err(AdoptionError::Invalid {
                path,
                problem: error.to_string(),
            }));
        }
    };
    if file.version != ADOPTION_VERSION {
        return Some(Err(AdoptionError::Invalid {
            path,
            problem: format!(
                "version {} (this host reads version {ADOPTION_VERSION})",
                file.version
            ),
        }));
    }
    Some(Ok(file.device))
}

/// The daemon's side: waits at most `wait` for PID 1 to publish a host state whose
/// configuration came from `device`; whether it did. The request is taken back when it did
/// not, so a PID 1 that answers late does not switch the host under a client told otherwise.
pub fn wait_until_in_use(run_dir: &Path, device: &Path, wait: Duration) -> bool {
    let started = Instant::now();
    loop {
        let in_use = crate::daemon::read_host_state(run_dir)
            .ok()
            .flatten()
            .is_some_and(|state| match state.boot.config {
                ConfigProvenance::Found { device: found, .. } => Path::new(&found) == device,
                _ => false,
            });
        if in_use {
            return true;
        }
        if started.elapsed() >= wait {
            let _ = std::fs::remove_file(run_dir.join(ADOPTION_FILE));
            return false;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::{HostState, write_host_state};
    use mfv_api::{BootReport, StoreKind, Virtualization};

    #[test]
    fn the_device_left_is_taken_once() {
        let run = tempfile::tempdir().unwrap();
        assert!(take(run.path()).is_none());
        leave(run.path(), Path::new("/dev/vdb1")).unwrap();
        assert_eq!(
            take(run.path()).unwrap().unwrap(),
            PathBuf::from("/dev/vdb1")
        );
        assert!(take(run.path()).is_none());
    }

    #[test]
    fn a_file_that_is_not_an_adoption_is_named_and_taken_away() {
        let run = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("{\"device\": 3}", "is not a saved setup to use"),
            (
                "{\"version\": 9, \"device\": \"/dev/vdb\"}",
                "version 9 (this host reads version 1)",
            ),
        ] {
            std::fs::write(run.path().join(ADOPTION_FILE), text).unwrap();
            let error = take(run.path()).unwrap().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(take(run.path()).is_none());
        }
        std::fs::create_dir(run.path().join(ADOPTION_FILE)).unwrap();
        assert!(matches!(
            take(run.path()),
            Some(Err(AdoptionError::Read(_)))
        ));
    }

    #[test]
    fn the_wait_ends_when_the_host_state_names_the_volume_or_takes_the_request_back() {
        let run = tempfile::tempdir().unwrap();
        leave(run.path(), Path::new("/dev/vdb")).unwrap();
        assert!(!wait_until_in_use(
            run.path(),
            Path::new("/dev/vdb"),
            Duration::from_millis(120)
        ));
        assert!(take(run.path()).is_none(), "taken back");

        let state = |device: &str| HostState {
            boot: BootReport::new(ConfigProvenance::Found {
                device: device.to_owned(),
                store: StoreKind::Directory,
                generation: None,
                origin: mfv_api::ConfigOrigin::Current,
            }),
            virtualization: Virtualization::Tcg,
        };
        write_host_state(run.path(), &state("/dev/vdc")).unwrap();
        assert!(!wait_until_in_use(
            run.path(),
            Path::new("/dev/vdb"),
            Duration::from_millis(60)
        ));
        write_host_state(run.path(), &state("/dev/vdb")).unwrap();
        assert!(wait_until_in_use(
            run.path(),
            Path::new("/dev/vdb"),
            Duration::from_secs(5)
        ));
    }
}
