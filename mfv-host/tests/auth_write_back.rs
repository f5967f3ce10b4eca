//! The host daemon's working copy of the auth database and its write-back to the config
//! volume, where they fail: the boot report cannot be read, the volume cannot be opened, the
//! volume cannot be made writable (a write-protected loop device; needs root), the
//! configuration on it cannot be read. Each failure is said in one line, and nothing counts
//! as written back.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use mfv_api::{BootReport, ConfigOrigin, ConfigProvenance, StoreKind, Virtualization};
use mfv_auth::Password;
use mfv_config::format::FsKind;
use mfv_host::auth;
use mfv_host::config::StoreVolume;
use mfv_host::daemon::{DetachedInit, HOST_STATE_FILE, HostDaemon, HostState, write_host_state};
use mfv_host::setup_save::{SetupSave, SetupVolume, save};
use mfv_host::web_identity::{self, WebIdentity};
use mfv_tests::loop_device::LoopDevice;

/// A daemon in a runtime directory of its own whose boot found its configuration on
/// `device`.
fn daemon(run: &Path, device: &Path) -> HostDaemon<DetachedInit> {
    let state = HostState {
        boot: BootReport::new(ConfigProvenance::Found {
            device: device.display().to_string(),
            store: StoreKind::Directory,
            generation: Some(1),
            origin: ConfigOrigin::Current,
        }),
        virtualization: Virtualization::Tcg,
    };
    write_host_state(run, &state).unwrap();
    HostDaemon {
        run_dir: run.to_owned(),
        roots: mfv_probe::SystemRoots {
            sysfs: run.join("sys"),
            proc: run.join("proc"),
            dev: run.join("dev"),
        },
        init: DetachedInit,
    }
}

/// A loop device made a config volume by first-boot setup's save (configuration, an
/// administrator in the auth database).
fn config_volume(run: &Path) -> LoopDevice {
    let device = LoopDevice::blank(32 << 20).unwrap();
    WebIdentity::generate("authhost")
        .unwrap()
        .write(&run.join(web_identity::RUN_SUBDIR), None)
        .unwrap();
    let request = SetupSave {
        config_text: "version = 1\n[host]\nhostname = \"authhost\"\n".to_owned(),
        volume: SetupVolume::Format {
            device: device.path().to_owned(),
            fs: FsKind::Ext4,
            confirm: device.path().display().to_string(),
        },
        admin: "alice".to_owned(),
        password: Password::new("first admin password").unwrap(),
        files: std::collections::BTreeMap::new(),
    };
    save(run, &run.join(web_identity::RUN_SUBDIR), &request).unwrap();
    device
}

/// A device write-protected (`blockdev --setro`) until dropped: the kernel keeps the flag
/// on the loop device after it is detached, for whoever attaches it next.
struct WriteProtected<'a>(&'a Path);

impl WriteProtected<'_> {
    fn set(device: &Path) -> WriteProtected<'_> {
        let protected = WriteProtected(device);
        protected.blockdev("--setro");
        protected
    }

    fn blockdev(&self, flag: &str) {
        let status = std::process::Command::new("blockdev")
            .arg(flag)
            .arg(self.0)
            .status()
            .unwrap();
        assert!(status.success(), "blockdev {flag} {}", self.0.display());
    }
}

impl Drop for WriteProtected<'_> {
    fn drop(&mut self) {
        self.blockdev("--setrw");
    }
}

/// Whether `device` is mounted anywhere.
fn mounted(device: &Path) -> bool {
    let device = device.display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split_whitespace().next() == Some(device.as_str()))
}

#[test]
fn an_unreadable_boot_report_or_a_volume_that_cannot_be_opened_is_said() {
    let run = tempfile::tempdir().unwrap();
    let missing = run.path().join("no-such-device");
    let daemon = daemon(run.path(), &missing);

    let mut written = None;
    let line = daemon.write_back_auth(&mut written).unwrap();
    assert!(
        line.starts_with(&format!(
            "auth database not written back: cannot open the config volume {}: ",
            missing.display()
        )),
        "{line}"
    );
    assert_eq!(written, None);

    std::fs::write(run.path().join(HOST_STATE_FILE), "{ not json").unwrap();
    let line = daemon.write_back_auth(&mut written).unwrap();
    assert!(line.starts_with("cannot read the boot report"), "{line}");
    assert_eq!(written, None);
}

#[test]
fn a_write_protected_volume_is_not_written_back_to_and_that_is_said() {
    let run = tempfile::tempdir().unwrap();
    let device = config_volume(run.path());
    let daemon = daemon(run.path(), device.path());
    let lines = daemon.prepare_web(None);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("auth database in use: ")),
        "{lines:?}"
    );
    let before = auth::live::fingerprint(run.path());

    let protected = WriteProtected::set(device.path());
    let mut written = None;
    let refused = format!(
        "auth database not written back to {}: cannot remount ",
        device.path().display()
    );
    // Nothing is left mounted, and the next attempt says the same.
    for _ in 0..2 {
        let line = daemon.write_back_auth(&mut written).unwrap();
        assert!(
            line.starts_with(&refused) && line.contains(" read-write: "),
            "{line}"
        );
        assert_eq!(written, None);
        assert!(!mounted(device.path()));
    }

    // Once the device takes writes again, the copy is written back.
    drop(protected);
    let line = daemon.write_back_auth(&mut written).unwrap();
    assert_eq!(
        line,
        format!("auth database written back to {}", device.path().display())
    );
    assert_eq!(written, Some(before));
    // Then it settles: nothing more to write while the copy stays as it is. (Reading the copy
    // for the first write-back leaves SQLite's empty WAL file beside it, which the next
    // round sees as one change more.)
    let rounds: Vec<Option<String>> = (0..3)
        .map(|_| daemon.write_back_auth(&mut written))
        .collect();
    assert_eq!(rounds.last(), Some(&None), "{rounds:?}");
    assert!(
        rounds.iter().filter(|round| round.is_some()).count() <= 1,
        "{rounds:?}"
    );
}

#[test]
fn a_volume_whose_configuration_cannot_be_read_gives_the_web_server_no_auth_database() {
    let run = tempfile::tempdir().unwrap();
    let device = config_volume(run.path());
    let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
    let access = volume.access();
    access.make_writable().unwrap();
    std::fs::write(
        volume
            .dir()
            .join(mfv_config::store::directory::CURRENT_FILE_NAME),
        "version = 1\n[host]\nhostnme = \"typo\"\n",
    )
    .unwrap();
    access.make_read_only().unwrap();
    volume.close().unwrap();

    let daemon = daemon(run.path(), device.path());
    let lines = daemon.prepare_web(None);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("the web server gets no auth database: ")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("auth database in use")),
        "{lines:?}"
    );
}
