//! Keeping VMs across reboots on a host that runs from RAM, where libvirt's own files die
//! with every reboot: at boot the definitions saved on the config volume are defined again,
//! the configured storage pools are defined and the autostart VMs started; while the host
//! runs, every change to the definitions (define, undefine, autostart, snapshots) is saved; at
//! shutdown the running VMs are shut down, all at once, with a deadline.
//!
//! Changes are found by reading the definitions from libvirt into memory and comparing them
//! with what was saved last, so nothing is written while nothing changed, rather than by
//! libvirt's events: libvirt sends no
//! event when autostart changes, and a change made with virsh on the host's shell must be
//! kept as well as one made through our API.
//!
//! Each save is a generation: the new export is written beside the current one
//! ([`NEW_DEFINITIONS_DIR`]) and switched in by renames, the current one becoming
//! [`PREVIOUS_DEFINITIONS_DIR`]. A power cut leaves the old or the new set, never a mix; a
//! current set that cannot be read at boot falls back to the previous one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfv_config::schema::{PoolConfig, PoolKind};
use mfv_config::store::DirectoryStore;
use mfv_vm::{Hypervisor, ShutdownOutcome, VmState};

use crate::config::{ConfigKeyError, StoreVolume};
use crate::vm::{DEFINITIONS_DIR, VmWorkflowError};

/// The previous generation of the definitions, beside the configuration.
pub const PREVIOUS_DEFINITIONS_DIR: &str = "vms.prev";
/// Where a new generation is written before it is switched in.
pub const NEW_DEFINITIONS_DIR: &str = "vms.new";
/// The file in PID 1's runtime directory that says the VM keeper has restored the VMs and
/// defined the pools ([`vms_restored_marker`]).
pub const VMS_RESTORED_FILE: &str = "vms-restored";

/// The content of an export directory: file name to bytes.
type Export = BTreeMap<String, Vec<u8>>;

/// Saves the definitions of `hypervisor` into the config store whenever they change. It
/// keeps no store open between saves: the config volume has one opener at a time on the host
/// (see [`crate::config::VolumeLock`]), and the host daemon must be able to save the
/// configuration while the keeper runs.
#[derive(Debug)]
pub struct DefinitionKeeper<'a> {
    hypervisor: &'a Hypervisor,
    /// What the store holds, as far as this keeper knows.
    saved: Option<Export>,
}

impl<'a> DefinitionKeeper<'a> {
    /// A keeper for `hypervisor`.
    pub fn new(hypervisor: &'a Hypervisor) -> Self {
        DefinitionKeeper {
            hypervisor,
            saved: None,
        }
    }

    /// Defines the VMs saved in `store`: the current generation, or the previous one when
    /// the current one cannot be read. Returns the console lines.
    pub fn restore(&mut self, store: &DirectoryStore) -> Vec<String> {
        let dir = store.dir();
        let mut lines = Vec::new();
        for (generation, name) in [
            ("current", DEFINITIONS_DIR),
            ("previous", PREVIOUS_DEFINITIONS_DIR),
        ] {
            match crate::vm::restore_definitions_from(self.hypervisor, &dir.join(name)) {
                Ok(None) => continue,
                Ok(Some(report)) => {
                    lines.push(format!(
                        "vms: definitions restored from the config volume ({generation} set): \
                         {} defined, {} updated, {} unchanged{}",
                        report.defined.len(),
                        report.updated.len(),
                        report.unchanged.len(),
                        match report.snapshots.len() {
                            0 => String::new(),
                            1 => "; 1 snapshot redefined".to_owned(),
                            count => format!("; {count} snapshots redefined"),
                        }
                    ));
                    self.saved = read_export(&dir.join(name)).ok();
                    return lines;
                }
                Err(error) => lines.push(format!(
                    "vms: the {generation} set of definitions cannot be restored: {}",
                    mfv_linux::error_chain(&error)
                )),
            }
        }
        if lines.is_empty() {
            lines.push("vms: no VM definitions saved on the config volume yet".to_owned());
        }
        lines
    }

    /// Reads the definitions and, when they differ from what was saved, opens the store with
    /// `open`, saves them as a new generation and closes it. Returns the names saved, or
    /// `None` when nothing changed.
    pub fn save_if_changed(
        &mut self,
        open: impl FnOnce() -> Result<StoreVolume, ConfigKeyError>,
    ) -> Result<Option<Vec<String>>, VmWorkflowError> {
        let definitions = self.hypervisor.definitions()?;
        if self.saved.as_ref() == Some(&definitions.files) {
            return Ok(None);
        }
        // Nothing known on the volume and no VM here: an empty set would only replace a set
        // that could not be restored (it stays for the operator to look at).
        if self.saved.is_none() && definitions.vms.is_empty() {
            self.saved = Some(definitions.files);
            return Ok(None);
        }
        let volume = open().map_err(Box::new)?;
        let written = volume.store().write_beside(DEFINITIONS_DIR, |current| {
            switch_in(current, &definitions.files)
                .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
        });
        let closed = volume.close();
        written?;
        closed.map_err(Box::new)?;
        self.saved = Some(definitions.files);
        Ok(Some(definitions.vms))
    }
}

/// Writes `export` as the new current set beside `current`, keeping the old current set as
/// the previous one.
fn switch_in(current: &Path, export: &Export) -> std::io::Result<()> {
    let dir = current.parent().unwrap_or(Path::new("/"));
    let new = dir.join(NEW_DEFINITIONS_DIR);
    let previous = dir.join(PREVIOUS_DEFINITIONS_DIR);
    remove_tree(&new)?;
    fs::create_dir(&new)?;
    for (file, bytes) in export {
        mfv_linux::atomic_file::replace_file(&new.join(file), bytes, 0o600)
            .map_err(std::io::Error::other)?;
    }
    sync_dir(&new)?;
    if current.symlink_metadata().is_ok() {
        remove_tree(&previous)?;
        fs::rename(current, &previous)?;
    }
    fs::rename(&new, current)?;
    sync_dir(dir)
}

/// Removes the directory `path` and what it holds; nothing when it is missing. Anything but a
/// directory there is an error: the store never follows a link off the volume.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    match path.symlink_metadata() {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} is not a directory",
            path.display()
        ))),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Every regular file directly in `dir`, by name.
fn read_export(dir: &Path) -> std::io::Result<Export> {
    let mut export = Export::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            export.insert(name, fs::read(entry.path())?);
        }
    }
    Ok(export)
}

/// Starts the autostart VMs, those of `order` (`host.autostart_order`) first in that order,
/// the others by name; returns the console lines, which name the VMs of `order` that are
/// not autostart VMs here.
pub fn start_autostart_vms(hypervisor: &Hypervisor, order: &[String]) -> Vec<String> {
    let report = match hypervisor.start_autostart(order) {
        Ok(report) => report,
        Err(error) => {
            return vec![format!(
                "vms: cannot list the autostart VMs: {}",
                mfv_linux::error_chain(&error)
            )];
        }
    };
    let mut lines: Vec<String> = report
        .started
        .iter()
        .map(|name| format!("vms: {name} started (autostart)"))
        .collect();
    for (name, error) in &report.failed {
        lines.push(format!(
            "vms: {name} (autostart) did not start: {}",
            mfv_linux::error_chain(error)
        ));
    }
    let known = |name: &String| {
        report.started.contains(name)
            || report.already_running.contains(name)
            || report.failed.iter().any(|(failed, _)| failed == name)
    };
    for name in order.iter().filter(|name| !known(name)) {
        lines.push(format!(
            "vms: host.autostart_order names {name}, which is not an autostart VM on this host"
        ));
    }
    lines
}

/// Where an nfs pool without a `path` mounts its export: this directory, then the pool's name.
pub const NFS_MOUNT_ROOT: &str = "/var/lib/mfv/pools";

/// Defines the configured storage pools that libvirt can make here (directory pools, logical
/// pools: an LVM volume group on a block device, and NFS pools: an export mounted over
/// NFSv4); returns the console lines.
pub fn define_pools(hypervisor: &Hypervisor, pools: &[PoolConfig]) -> Vec<String> {
    pools
        .iter()
        .map(|pool| match define_pool(hypervisor, pool) {
            Ok(place) => format!("vms: storage pool {} ready {place}", pool.name),
            Err(error) => format!(
                "vms: storage pool {}: {}",
                pool.name,
                mfv_linux::error_chain(&error)
            ),
        })
        .collect()
}

/// Why a configured pool is not ready.
#[derive(Debug, thiserror::Error)]
pub enum DefinePoolError {
    /// The pool lacks a setting its kind needs (the schema requires it: a configuration
    /// without it is never loaded).
    #[error("kind = {kind:?} needs {field}")]
    Missing {
        /// The pool's kind.
        kind: &'static str,
        /// The setting.
        field: &'static str,
    },
    /// libvirt could not make it.
    #[error(transparent)]
    Virt(#[from] mfv_vm::VirtError),
}

/// Makes one configured pool defined, active and autostarted in libvirt (the vm-keeper at
/// boot, and the host daemon when a pool is added while the host runs); returns where it
/// keeps its volumes, for people: `at /srv/images`.
pub fn define_pool(hypervisor: &Hypervisor, pool: &PoolConfig) -> Result<String, DefinePoolError> {
    let kind = pool.kind.as_str();
    let missing = |field| DefinePoolError::Missing { kind, field };
    match pool.kind {
        PoolKind::Dir => {
            let path = pool.path.as_deref().ok_or_else(|| missing("path"))?;
            hypervisor.ensure_dir_pool(&pool.name, Path::new(path))?;
            Ok(format!("at {path}"))
        }
        PoolKind::Logical => {
            let device = pool.device.as_deref().ok_or_else(|| missing("device"))?;
            hypervisor.ensure_logical_pool(&pool.name, Path::new(device))?;
            Ok(format!(
                "on {device} (LVM volume group {name})",
                name = pool.name
            ))
        }
        PoolKind::Nfs => {
            let server = pool.server.as_deref().ok_or_else(|| missing("server"))?;
            let export = pool.export.as_deref().ok_or_else(|| missing("export"))?;
            let mount_point = nfs_mount_point(pool);
            hypervisor.ensure_nfs_pool(&pool.name, server, export, &mount_point)?;
            Ok(format!(
                "at {} (nfs {server}:{export})",
                mount_point.display()
            ))
        }
    }
}

/// Where an nfs pool mounts its export: its `path`, or [`NFS_MOUNT_ROOT`]/NAME.
pub fn nfs_mount_point(pool: &PoolConfig) -> PathBuf {
    pool.path
        .as_deref()
        .map_or_else(|| Path::new(NFS_MOUNT_ROOT).join(&pool.name), PathBuf::from)
}

/// Asks every running VM to shut down (ACPI) at once, waits up to `deadline` for them all,
/// and forces off those still running. Each VM gets its own connection to `uri`, so one
/// slow guest does not hold up the others. Returns the console lines.
pub fn shut_down_running(uri: &str, deadline: Duration) -> Vec<String> {
    let running = match Hypervisor::connect(uri).and_then(|hypervisor| hypervisor.list()) {
        Ok(vms) => vms
            .into_iter()
            .filter(|vm| !matches!(vm.state, VmState::ShutOff))
            .map(|vm| vm.name)
            .collect::<Vec<_>>(),
        Err(error) => {
            return vec![format!(
                "vms: cannot list the VMs to shut them down: {}",
                mfv_linux::error_chain(&error)
            )];
        }
    };
    if running.is_empty() {
        return vec!["vms: no VM running".to_owned()];
    }
    let mut lines = vec![format!(
        "vms: shutting down {} (ACPI, forced off after {} s)",
        running.join(", "),
        deadline.as_secs()
    )];
    let threads: Vec<_> = running
        .into_iter()
        .map(|name| {
            let uri = uri.to_owned();
            std::thread::spawn(move || {
                let outcome = Hypervisor::connect(&uri)
                    .and_then(|hypervisor| hypervisor.shutdown(&name, deadline));
                match outcome {
                    Ok(ShutdownOutcome::Graceful) => format!("vms: {name} shut down"),
                    Ok(ShutdownOutcome::ForcedOff) => {
                        format!("vms: {name} forced off after {} s", deadline.as_secs())
                    }
                    Ok(ShutdownOutcome::AlreadyOff) => format!("vms: {name} was already off"),
                    Err(error) => format!("vms: {name}: {}", mfv_linux::error_chain(&error)),
                }
            })
        })
        .collect();
    for thread in threads {
        lines.push(
            thread
                .join()
                .unwrap_or_else(|_| "vms: a shutdown thread panicked".to_owned()),
        );
    }
    lines
}

/// What [`keep`] needs.
#[derive(Debug, Clone)]
pub struct KeeperSettings {
    /// libvirt's URI (`qemu:///system`).
    pub uri: String,
    /// PID 1's runtime directory, with the boot report naming the config volume.
    pub run_dir: PathBuf,
    /// How often the definitions are compared with what was saved.
    pub save_interval: Duration,
    /// How long running VMs get to shut down at the host's shutdown, unless the
    /// configuration says (`host.vm_shutdown_timeout`).
    pub shutdown_deadline: Duration,
    /// How long libvirtd gets to answer at start.
    pub connect_timeout: Duration,
}

/// The VM keeper, from the host's start to its shutdown: restores the definitions saved on
/// the config volume the boot used, defines the configured pools, starts the autostart VMs,
/// then saves every change until `stop_requested` (waiting up to the given time) says the
/// host shuts down, and then shuts the running VMs down. Every step is told to `say`.
pub fn keep(
    settings: &KeeperSettings,
    mut stop_requested: impl FnMut(Duration) -> bool,
    mut say: impl FnMut(&str),
) {
    // A keeper restarted (after setup, or a crash) restores again before it says so.
    unmark_restored(&settings.run_dir, &mut say);
    let device = match crate::daemon::read_host_state(&settings.run_dir) {
        Ok(Some(state)) => match state.boot.config {
            mfv_api::ConfigProvenance::Found { device, .. } => Some(device),
            _ => None,
        },
        Ok(None) => None,
        Err(error) => {
            say(&format!(
                "vms: cannot read the boot report: {}",
                mfv_linux::error_chain(&error)
            ));
            None
        }
    };
    let open_volume = |device: &str| StoreVolume::on_device(Path::new(device), &settings.run_dir);
    // The volume is opened to read the configuration and the saved definitions, closed in
    // between, and opened again for each save.
    let volume = device.and_then(|device| match open_volume(&device) {
        Ok(volume) => Some((device, volume)),
        Err(error) => {
            say(&format!(
                "vms: cannot open the config volume {device}: {}",
                mfv_linux::error_chain(&error)
            ));
            None
        }
    });
    if volume.is_none() {
        say("vms: no config volume: VM definitions live in RAM only and are lost at reboot");
    }
    let config = volume
        .as_ref()
        .and_then(|(_, volume)| crate::config::load(volume.store(), volume.dir()).ok())
        .map(|stored| stored.config);
    let pools = config
        .as_ref()
        .map(|config| config.storage.pools.clone())
        .unwrap_or_default();
    let order = config
        .as_ref()
        .map(|config| config.host.autostart_order.clone())
        .unwrap_or_default();
    let shutdown_deadline = config
        .as_ref()
        .map_or(settings.shutdown_deadline, |config| {
            Duration::from_secs(u64::from(config.host.vm_shutdown_timeout))
        });
    let Some(hypervisor) = connect(settings, &mut say) else {
        if let Some((_, volume)) = volume {
            close_volume(volume, &mut say);
        }
        return;
    };
    let mut keeper = DefinitionKeeper::new(&hypervisor);
    let device = volume.map(|(device, volume)| {
        keeper
            .restore(volume.store())
            .iter()
            .for_each(|line| say(line));
        close_volume(volume, &mut say);
        device
    });
    define_pools(&hypervisor, &pools)
        .iter()
        .for_each(|line| say(line));
    mark_restored(&settings.run_dir, &mut say);
    start_autostart_vms(&hypervisor, &order)
        .iter()
        .for_each(|line| say(line));
    if let Some(device) = device {
        let mut save = || save_changes(&mut keeper, || open_volume(&device), &mut say);
        while !stop_requested(settings.save_interval) {
            save();
        }
        save();
    } else {
        while !stop_requested(settings.save_interval) {}
    }
    shut_down_running(&settings.uri, shutdown_deadline)
        .iter()
        .for_each(|line| say(line));
}

/// The file that exists once the VM keeper has restored the host's VMs from the config volume
/// and defined its pools. libvirtd starts after the web server, and until the keeper has
/// restored them libvirt lists none or some of the VMs: the web server answers its VM routes
/// with 503 until this file exists, rather than a list without them or a create that collides
/// with a VM about to be restored.
pub fn vms_restored_marker(run_dir: &Path) -> PathBuf {
    run_dir.join(VMS_RESTORED_FILE)
}

/// Writes [`vms_restored_marker`], or says why the web server will not learn it.
fn mark_restored(run_dir: &Path, say: &mut impl FnMut(&str)) {
    let marker = vms_restored_marker(run_dir);
    if let Err(error) = mfv_linux::atomic_file::replace_file(&marker, b"", 0o644) {
        say(&format!(
            "vms: cannot write {}: {}; the web server's VM pages say the VMs are being \
             restored until the VM keeper restarts",
            marker.display(),
            mfv_linux::error_chain(&error)
        ));
    }
}

/// Removes [`vms_restored_marker`], or says why it stays.
fn unmark_restored(run_dir: &Path, say: &mut impl FnMut(&str)) {
    let marker = vms_restored_marker(run_dir);
    match fs::remove_file(&marker) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => say(&format!(
            "vms: cannot remove {}: {error}; the web server may list the VMs before they are \
             restored",
            marker.display()
        )),
        _ => {}
    }
}

/// Unmounts the config volume, or says why it stays mounted.
fn close_volume(volume: StoreVolume, say: &mut impl FnMut(&str)) {
    if let Err(error) = volume.close() {
        say(&format!(
            "vms: the config volume stays mounted: {}",
            mfv_linux::error_chain(&error)
        ));
    }
}

/// Saves the definitions when they changed, on the store `open` opens, and says so.
fn save_changes(
    keeper: &mut DefinitionKeeper<'_>,
    open: impl FnOnce() -> Result<StoreVolume, ConfigKeyError>,
    say: &mut impl FnMut(&str),
) {
    match keeper.save_if_changed(open) {
        Ok(Some(names)) => say(&format!(
            "vms: definitions saved on the config volume ({})",
            if names.is_empty() {
                "none left".to_owned()
            } else {
                names.join(", ")
            }
        )),
        Ok(None) => {}
        Err(error) => say(&format!(
            "vms: definitions not saved: {}",
            mfv_linux::error_chain(&error)
        )),
    }
}

/// libvirt, once it answers; `None` (said why) when it does not within the timeout.
fn connect(settings: &KeeperSettings, say: &mut impl FnMut(&str)) -> Option<Hypervisor> {
    let deadline = std::time::Instant::now() + settings.connect_timeout;
    loop {
        match Hypervisor::connect(&settings.uri) {
            Ok(hypervisor) => return Some(hypervisor),
            Err(error) if std::time::Instant::now() >= deadline => {
                say(&format!(
                    "vms: libvirt does not answer on {}: {}",
                    settings.uri,
                    mfv_linux::error_chain(&error)
                ));
                return None;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_generation_replaces_the_current_and_keeps_it_as_previous() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join(DEFINITIONS_DIR);
        let mut export = Export::from([("index.json".to_owned(), b"one".to_vec())]);
        switch_in(&current, &export).unwrap();
        assert_eq!(
            fs::read_to_string(current.join("index.json")).unwrap(),
            "one"
        );
        export.insert("index.json".to_owned(), b"two".to_vec());
        export.insert("web.xml".to_owned(), b"<domain/>".to_vec());
        switch_in(&current, &export).unwrap();
        assert_eq!(
            fs::read_to_string(current.join("index.json")).unwrap(),
            "two"
        );
        let previous = dir.path().join(PREVIOUS_DEFINITIONS_DIR);
        assert_eq!(
            fs::read_to_string(previous.join("index.json")).unwrap(),
            "one"
        );
        assert!(!dir.path().join(NEW_DEFINITIONS_DIR).exists());
        assert_eq!(read_export(&current).unwrap().len(), 2);
    }

    /// A node of libvirt's in-process test driver in `dir`, with `vms` defined (or none).
    fn node(dir: &Path, vms: &[&str]) -> Hypervisor {
        Hypervisor::connect(&node_uri(dir, vms)).unwrap()
    }

    /// The URI of a test driver node in `dir` with `vms` defined.
    fn node_uri(dir: &Path, vms: &[&str]) -> String {
        let mut node = String::from("<node>\n");
        for (index, name) in vms.iter().enumerate() {
            node.push_str(&format!(
                "<domain type='test'><name>{name}</name>\
                 <uuid>6695eb01-f6a4-8304-79aa-97f2502e19{index:02}</uuid><memory>65536</memory>\
                 <os><type>hvm</type></os></domain>\n"
            ));
        }
        node.push_str("</node>\n");
        let file = dir.join(format!("node-{}.xml", vms.len()));
        fs::write(&file, node).unwrap();
        format!("test://{}", file.display())
    }

    fn settings(uri: String, run_dir: &Path) -> KeeperSettings {
        KeeperSettings {
            uri,
            run_dir: run_dir.to_owned(),
            save_interval: Duration::ZERO,
            shutdown_deadline: Duration::from_secs(5),
            connect_timeout: Duration::ZERO,
        }
    }

    /// Runs [`keep`] until it first waits; returns its lines and whether the VMs were marked
    /// restored by then.
    fn keep_until_it_waits(settings: &KeeperSettings) -> (Vec<String>, bool) {
        let marker = vms_restored_marker(&settings.run_dir);
        let mut marked_when_waiting = false;
        let mut lines = Vec::new();
        keep(
            settings,
            |_| {
                marked_when_waiting = marker.is_file();
                true
            },
            |line| lines.push(line.to_owned()),
        );
        (lines, marked_when_waiting)
    }

    #[test]
    fn the_vms_are_marked_restored_before_the_keeper_waits_for_changes() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        fs::create_dir(&run_dir).unwrap();
        let settings = settings(node_uri(dir.path(), &["web"]), &run_dir);
        let (lines, marked) = keep_until_it_waits(&settings);
        assert!(marked, "{lines:?}");
        // The test driver's VMs run: the stop shuts them down.
        assert_eq!(
            lines,
            [
                "vms: no config volume: VM definitions live in RAM only and are lost at reboot",
                "vms: shutting down web (ACPI, forced off after 5 s)",
                "vms: web shut down",
            ]
        );
    }

    #[test]
    fn without_libvirt_nothing_is_marked_restored_and_the_keeper_says_why() {
        let dir = tempfile::tempdir().unwrap();
        // A marker left by the keeper that ran before goes.
        fs::write(vms_restored_marker(dir.path()), b"").unwrap();
        let uri = format!("test://{}", dir.path().join("no-node.xml").display());
        let (lines, marked) = keep_until_it_waits(&settings(uri, dir.path()));
        assert!(!marked);
        assert!(!vms_restored_marker(dir.path()).exists());
        assert!(
            lines
                .last()
                .is_some_and(|line| line.starts_with("vms: libvirt does not answer on test://")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_marker_that_cannot_be_removed_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let marker = vms_restored_marker(dir.path());
        fs::create_dir(&marker).unwrap();
        fs::write(marker.join("inside"), b"").unwrap();
        let uri = format!("test://{}", dir.path().join("no-node.xml").display());
        let (lines, _) = keep_until_it_waits(&settings(uri, dir.path()));
        assert!(
            lines[0].starts_with(&format!("vms: cannot remove {}: ", marker.display()))
                && lines[0].ends_with("the web server may list the VMs before they are restored"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_marker_that_cannot_be_written_is_said_and_the_vms_are_kept_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("gone");
        let settings = settings(node_uri(dir.path(), &["web"]), &run_dir);
        let mut waits = 0;
        let mut lines = Vec::new();
        keep(
            &settings,
            |_| {
                waits += 1;
                waits > 1
            },
            |line| lines.push(line.to_owned()),
        );
        assert_eq!(waits, 2, "{lines:?}");
        assert!(
            lines.iter().any(|line| line.starts_with(&format!(
                "vms: cannot write {}/vms-restored: ",
                run_dir.display()
            )) && line.ends_with("until the VM keeper restarts")),
            "{lines:?}"
        );
    }

    #[test]
    fn changes_are_saved_once_and_restored_on_an_empty_host() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volume");
        fs::create_dir_all(&volume).unwrap();
        let store = DirectoryStore::new(&volume, mfv_config::store::PlainDirectory);
        let hypervisor = node(dir.path(), &["web", "db"]);
        let open = || Ok(StoreVolume::directory(&volume));
        let mut keeper = DefinitionKeeper::new(&hypervisor);
        assert_eq!(
            keeper.restore(&store),
            ["vms: no VM definitions saved on the config volume yet"]
        );
        assert_eq!(
            keeper.save_if_changed(open).unwrap(),
            Some(vec!["db".to_owned(), "web".to_owned()])
        );
        assert_eq!(keeper.save_if_changed(open).unwrap(), None);
        hypervisor.set_autostart("web", true).unwrap();
        assert!(keeper.save_if_changed(open).unwrap().is_some());
        hypervisor.create_snapshot("web", "before", "").unwrap();
        assert!(keeper.save_if_changed(open).unwrap().is_some());
        assert!(
            volume
                .join(PREVIOUS_DEFINITIONS_DIR)
                .join("index.json")
                .exists()
        );

        // A rebooted host: libvirt knows no VM; the keeper defines them again.
        let empty = node(dir.path(), &[]);
        let mut keeper = DefinitionKeeper::new(&empty);
        assert_eq!(
            keeper.restore(&store),
            [
                "vms: definitions restored from the config volume (current set): 2 defined, 0 updated, 0 unchanged; 1 snapshot redefined"
            ]
        );
        assert_eq!(empty.list_snapshots("web").unwrap()[0].name, "before");
        let web = empty
            .list()
            .unwrap()
            .into_iter()
            .find(|vm| vm.name == "web")
            .unwrap();
        assert!(web.autostart);
        // What was restored is what is saved: nothing to write.
        assert_eq!(keeper.save_if_changed(open).unwrap(), None);
    }

    #[test]
    fn an_unreadable_current_set_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volume");
        fs::create_dir_all(&volume).unwrap();
        let store = DirectoryStore::new(&volume, mfv_config::store::PlainDirectory);
        let hypervisor = node(dir.path(), &["web"]);
        let open = || Ok(StoreVolume::directory(&volume));
        let mut keeper = DefinitionKeeper::new(&hypervisor);
        keeper.save_if_changed(open).unwrap();
        hypervisor.set_autostart("web", true).unwrap();
        keeper.save_if_changed(open).unwrap();
        fs::write(volume.join(DEFINITIONS_DIR).join("index.json"), "{broken").unwrap();
        let empty = node(dir.path(), &[]);
        let lines = DefinitionKeeper::new(&empty).restore(&store);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("vms: the current set of definitions cannot be restored: "),
            "{lines:?}"
        );
        assert_eq!(
            lines[1],
            "vms: definitions restored from the config volume (previous set): 1 defined, 0 updated, 0 unchanged"
        );
    }

    #[test]
    fn a_volume_that_cannot_be_opened_is_an_error_and_the_save_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volume");
        fs::create_dir_all(&volume).unwrap();
        let hypervisor = node(dir.path(), &["web"]);
        let mut keeper = DefinitionKeeper::new(&hypervisor);
        let busy = || {
            Err(ConfigKeyError::Busy {
                path: PathBuf::from("/run/mfv/config-volume.lock"),
                waited: Duration::from_secs(30),
            })
        };
        let error = keeper.save_if_changed(busy).unwrap_err();
        assert!(
            matches!(&error, VmWorkflowError::Volume(inner) if matches!(**inner, ConfigKeyError::Busy { .. })),
            "{error:?}"
        );
        assert!(!volume.join(DEFINITIONS_DIR).exists());
        let open = || Ok(StoreVolume::directory(&volume));
        assert_eq!(
            keeper.save_if_changed(open).unwrap(),
            Some(vec!["web".to_owned()])
        );
        assert!(volume.join(DEFINITIONS_DIR).join("index.json").exists());
    }

    #[test]
    fn autostart_vms_start_in_the_configured_order_and_strangers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let hypervisor = node(dir.path(), &["alpha", "db", "web", "manual"]);
        for name in ["alpha", "db", "web", "manual"] {
            hypervisor.force_off(name).unwrap();
        }
        for name in ["alpha", "db", "web"] {
            hypervisor.set_autostart(name, true).unwrap();
        }
        let order = ["web", "ghost", "manual", "db"].map(String::from);
        assert_eq!(
            start_autostart_vms(&hypervisor, &order),
            [
                "vms: web started (autostart)",
                "vms: db started (autostart)",
                "vms: alpha started (autostart)",
                "vms: host.autostart_order names ghost, which is not an autostart VM on this host",
                "vms: host.autostart_order names manual, which is not an autostart VM on this host",
            ]
        );
        assert_eq!(
            hypervisor.info("manual").unwrap().summary.state,
            VmState::ShutOff
        );
    }

    #[test]
    fn a_link_where_a_generation_goes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(NEW_DEFINITIONS_DIR)).unwrap();
        let error = switch_in(&dir.path().join(DEFINITIONS_DIR), &Export::new()).unwrap_err();
        assert!(
            error.to_string().ends_with("vms.new is not a directory"),
            "{error}"
        );
    }
}
