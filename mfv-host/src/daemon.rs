//! The host daemon's answers: who may ask what, and the handler that carries out requests of
//! the protocol ([`mfv_api`]) on this host.
//!
//! The daemon is its own process, started and restarted by PID 1, so a bug here never takes
//! PID 1 down. What it reports comes from what PID 1 publishes in the runtime directory (the
//! boot report, the services, their logs: [`crate::services`], [`write_host_state`]); what it
//! asks of PID 1 (a reboot, a service restart) goes through the narrow [`InitControl`]. The
//! socket, the peer's credentials and the threads are the binary's; everything a request
//! does is here, so that tests run it without a socket.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mfv_api::{
    ApiError, BootReport, ConfigIssue, ConfigOrigin, ConfigProvenance, ErrorKind, FormattedVolume,
    HostStatus, Request, Response, ServiceStatus, SetupInUse, StoreKind, Virtualization, VolumeFs,
};
use mfv_config::discovery::{Discovery, DiscoveryReport};
use mfv_config::format::{FormatError, FsKind, format_config_volume};
use mfv_config::schema::{ConfigErrors, parse_config, parse_network_section};
use mfv_config::store::ConfigStore;
use mfv_linux::regular_file::{ReadError, read_limited};
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::config::{ConfigKeyError, StoreVolume, VOLUME_LOCK_WAIT, VolumeLock};
use crate::network::handover::{
    ANSWER_WAIT, HandoverError, NetworkAction, NetworkRequest, change_refused, leave_request,
    read_in_effect, read_pending, wait_for_answer,
};
use crate::network::live::ChangeError;
use crate::services::{self, ServicesError};
use crate::setup_adoption;
use crate::setup_files;
use crate::setup_save::{self, SetupSaveError};
use crate::setup_token::{self, ClaimRefusal};
use crate::storage_pools;
use crate::web_identity;

/// The file with the boot report and how VMs run, below the runtime directory.
pub const HOST_STATE_FILE: &str = "host.json";
/// The directory of service restart requests, below the runtime directory: one empty file per
/// service to restart, named after it.
pub const RESTART_REQUESTS_DIR: &str = "restart";
/// How long a restart request waits for PID 1 to start the service again.
const RESTART_WAIT: Duration = Duration::from_secs(10);
/// How long the save waits for PID 1 to run the host with the saved configuration.
const ADOPTION_WAIT: Duration = Duration::from_secs(20);
/// How often the status is read while waiting for a restart.
const RESTART_POLL: Duration = Duration::from_millis(50);
/// The largest host state file read.
const MAX_HOST_STATE_BYTES: u64 = 4 * 1024 * 1024;

/// What PID 1 publishes about the boot once it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// The boot's phases and where the configuration came from.
    pub boot: BootReport,
    /// How VMs run.
    pub virtualization: Virtualization,
}

/// The host state file's content for `state`.
pub fn host_state_json(state: &HostState) -> Result<String, ServicesError> {
    serde_json::to_string_pretty(state).map_err(ServicesError::Encode)
}

/// Replaces the host state file in `run_dir`.
pub fn write_host_state(run_dir: &Path, state: &HostState) -> Result<(), ServicesError> {
    crate::services::publish(run_dir, HOST_STATE_FILE, &host_state_json(state)?)
}

/// The host state PID 1 published in `run_dir`; `None` before it did.
pub fn read_host_state(run_dir: &Path) -> Result<Option<HostState>, ServicesError> {
    let text = match read_limited(run_dir, HOST_STATE_FILE, MAX_HOST_STATE_BYTES) {
        Ok(text) => text,
        Err(ReadError::Missing { .. }) => return Ok(None),
        Err(error) => return Err(ServicesError::StatusFile(error)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| ServicesError::Status {
            path: run_dir.join(HOST_STATE_FILE),
            source,
        })
}

/// Where the configuration came from, in the protocol's words.
pub fn provenance(report: &DiscoveryReport) -> ConfigProvenance {
    match &report.outcome {
        Discovery::Found { source, .. } => ConfigProvenance::Found {
            device: source.device.display().to_string(),
            store: StoreKind::Directory,
            generation: None,
            origin: ConfigOrigin::Current,
        },
        Discovery::Invalid { source, errors } => ConfigProvenance::Invalid {
            device: source.device.display().to_string(),
            errors: config_issues(errors),
        },
        Discovery::NotFound => ConfigProvenance::NotFound,
    }
}

/// Configuration errors in the protocol's words.
pub fn config_issues(errors: &ConfigErrors) -> Vec<ConfigIssue> {
    errors
        .errors()
        .iter()
        .map(|error| {
            let mut issue = ConfigIssue::new(error.path.clone(), error.message.clone());
            issue.line = error
                .position
                .and_then(|position| u32::try_from(position.line).ok());
            issue.column = error
                .position
                .and_then(|position| u32::try_from(position.column).ok());
            issue
        })
        .collect()
}

/// Who is asking, from the peer's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// uid 0: the `mfv` command as root, or an administrator's shell.
    Root,
    /// The web server's user: it authenticates people and checks their roles itself, and
    /// asks the daemon for what its pages and API offer.
    Web,
}

impl Peer {
    /// The peer for `uid`, given the web server's uid; `None` for everyone else.
    pub fn for_uid(uid: u32, web_uid: Option<u32>) -> Option<Peer> {
        if uid == 0 {
            Some(Peer::Root)
        } else if web_uid == Some(uid) {
            Some(Peer::Web)
        } else {
            None
        }
    }

    /// Whether this peer may make `request`. The web server's list is explicit, so a request
    /// type added later is root's alone until someone decides otherwise.
    pub fn allows(self, request: &Request) -> bool {
        match self {
            Peer::Root => true,
            Peer::Web => matches!(
                request,
                Request::HostStatus
                    | Request::Inventory
                    | Request::NetworkApply { .. }
                    | Request::NetworkConfirm { .. }
                    | Request::ConfigGet
                    | Request::ConfigValidate { .. }
                    | Request::AuthTest { .. }
                    | Request::ConfigSave { .. }
                    | Request::FormatConfigVolume { .. }
                    | Request::ServiceStatus { .. }
                    | Request::ServiceRestart { .. }
                    | Request::Logs { .. }
                    | Request::Reboot
                    | Request::PowerOff
                    | Request::SetupClaim { .. }
                    | Request::SetupVolumes
                    | Request::SetupSave { .. }
                    | Request::StoragePoolAdd { .. }
                    | Request::StoragePoolRemove { .. }
            ),
        }
    }
}

/// What the daemon asks of PID 1.
pub trait InitControl {
    /// Asks PID 1 to shut down: reboot when `reboot`, else power off.
    fn shut_down(&mut self, reboot: bool) -> std::io::Result<()>;
    /// Tells PID 1 that restart requests wait in its runtime directory.
    fn restart_requested(&mut self) -> std::io::Result<()>;
    /// Tells PID 1 that a network request waits in its runtime directory
    /// ([`crate::network::handover`]).
    fn network_requested(&mut self) -> std::io::Result<()>;
    /// Tells PID 1 that first-boot setup saved a configuration for it to use
    /// ([`crate::setup_adoption`]).
    fn setup_saved(&mut self) -> std::io::Result<()>;
}

/// A daemon with no PID 1 behind it, as in tests and demos of the daemon's
/// clients: every request to PID 1 succeeds and reaches nobody.
#[derive(Debug, Default, Clone, Copy)]
pub struct DetachedInit;

impl InitControl for DetachedInit {
    fn shut_down(&mut self, _reboot: bool) -> std::io::Result<()> {
        Ok(())
    }

    fn restart_requested(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn network_requested(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn setup_saved(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The daemon: where PID 1 publishes, the hardware roots, and how to reach PID 1.
#[derive(Debug)]
pub struct HostDaemon<C: InitControl> {
    /// The runtime directory (`/run/mfv`).
    pub run_dir: PathBuf,
    /// The sysfs, proc and dev roots, for the inventory and the uptime.
    pub roots: mfv_probe::SystemRoots,
    /// PID 1.
    pub init: C,
}

impl<C: InitControl> HostDaemon<C> {
    /// Carries out `request` for `peer` (already validated by the protocol's server loop).
    pub fn handle(&mut self, peer: Peer, request: Request) -> Result<Response, ApiError> {
        if !peer.allows(&request) {
            return Err(ApiError::new(
                ErrorKind::NotPermitted,
                format!("{} is not allowed for this client", request.name()),
            ));
        }
        match request {
            Request::HostStatus => self.host_status().map(Response::HostStatus),
            Request::Inventory => Ok(Response::Inventory {
                inventory: serde_json::to_value(mfv_probe::inventory_at(&self.roots))
                    .map_err(|error| internal("cannot encode the inventory", &error))?,
            }),
            Request::ConfigValidate { text } => Ok(Response::ConfigValidation {
                errors: match parse_config(&text) {
                    Ok(_) => Vec::new(),
                    Err(errors) => config_issues(&errors),
                },
            }),
            Request::AuthTest { config_text, files } => self.test_auth(&config_text, &files),
            Request::ConfigGet => self.with_store(|store| config_document(store)),
            Request::ConfigSave {
                text,
                base_generation,
            } => self.with_store(|store| save_config(store, &text, base_generation)),
            Request::FormatConfigVolume {
                device,
                fs,
                confirm,
            } => format_volume(&self.run_dir, &device, fs, &confirm).map(Response::VolumeFormatted),
            Request::ServiceStatus { name } => {
                let mut services = self.services()?;
                if let Some(name) = name {
                    services.retain(|service| service.name == name);
                    if services.is_empty() {
                        return Err(no_service(&name));
                    }
                }
                Ok(Response::Services { services })
            }
            Request::ServiceRestart { name } => self
                .restart(&name)
                .map(|service| Response::ServiceRestarted { service }),
            Request::Logs { source, limit } => {
                let lines = services::recent_lines(&self.run_dir, &source, limit as usize)
                    .map_err(|error| internal("cannot read the log", &error))?;
                Ok(Response::Logs { lines })
            }
            Request::NetworkApply {
                network_toml,
                confirm_within_secs,
            } => {
                parse_network_section(&network_toml)
                    .map_err(|errors| invalid_config("the network section", &errors))?;
                let pending = read_pending(&self.run_dir)
                    .map_err(|error| internal("cannot read the pending network change", &error))?;
                if let Some(pending) = pending {
                    return Err(change_refused(ChangeError::Pending(pending)));
                }
                self.ask_pid1(NetworkAction::Apply {
                    network_toml,
                    confirm_within_secs,
                })
            }
            Request::NetworkConfirm { apply_id } => {
                self.ask_pid1(NetworkAction::Confirm { apply_id })
            }
            Request::Reboot | Request::PowerOff => {
                let reboot = matches!(request, Request::Reboot);
                self.init
                    .shut_down(reboot)
                    .map_err(|error| internal("cannot signal PID 1", &error))?;
                Ok(Response::Accepted)
            }
            Request::SetupClaim { token } => {
                if let Some(device) = self.configured_from()? {
                    return Err(setup_refused(ClaimRefusal::SetUp { device }));
                }
                setup_token::claim(&self.run_dir, &token).map_err(setup_refused)?;
                Ok(Response::Accepted)
            }
            Request::SetupVolumes => Ok(Response::SetupVolumes {
                volumes: setup_save::volume_choices(
                    &mfv_probe::inventory_at(&self.roots).block_devices,
                ),
            }),
            Request::SetupSave {
                config_text,
                volume,
                admin,
                password,
                files,
            } => self.save_setup(config_text, volume, admin, &password, files),
            Request::StoragePoolAdd {
                pool,
                base_generation,
            } => self.with_store(|store| {
                storage_pools::add_pool(store, storage_pools::LIBVIRT_URI, &pool, base_generation)
            }),
            Request::StoragePoolRemove { name } => self.with_store(|store| {
                storage_pools::remove_pool(store, storage_pools::LIBVIRT_URI, &name)
            }),
            other => Err(ApiError::new(
                ErrorKind::Unavailable,
                format!(
                    "{} is not served by this host daemon (it is older than its client)",
                    other.name()
                ),
            )),
        }
    }

    /// Readies what the web server needs from root before it starts: its key and
    /// certificate published in `<run_dir>/web` for `web_group` ([`web_identity::establish`],
    /// kept in the config store of the volume the boot used, if any) and, on a host that
    /// booted without a configuration, the setup token. Returns what it did, line by line;
    /// a failure is said and the rest still done.
    pub fn prepare_web(&self, web_group: Option<nix::unistd::Gid>) -> Vec<String> {
        let mut lines = Vec::new();
        let provenance = match read_host_state(&self.run_dir) {
            Ok(state) => state.map(|state| state.boot.config),
            Err(error) => {
                lines.push(format!(
                    "cannot read the boot report: {}",
                    mfv_linux::error_chain(&error)
                ));
                None
            }
        };
        let hostname = std::fs::read_to_string(self.roots.proc.join("sys/kernel/hostname"))
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let published = self.run_dir.join(web_identity::RUN_SUBDIR);
        let volume = match &provenance {
            Some(ConfigProvenance::Found { device, .. }) => {
                match StoreVolume::on_device(Path::new(device), &self.run_dir) {
                    Ok(volume) => Some(volume),
                    Err(error) => {
                        lines.push(format!(
                            "the config volume {device} cannot be opened, so the web \
                             server's key is not kept there: {}",
                            mfv_linux::error_chain(&error)
                        ));
                        None
                    }
                }
            }
            _ => None,
        };
        let mut established = web_identity::establish(
            volume.as_ref().map(StoreVolume::store),
            &published,
            web_group,
            &hostname,
        );
        if let Err(error) = auth::live::prepare(&self.run_dir, web_group) {
            lines.push(format!(
                "the web server gets no auth database: {}",
                mfv_linux::error_chain(&error)
            ));
        }
        if let Some(volume) = &volume {
            // A daemon started again (it crashed) keeps the copy in use: it may hold changes
            // not written back yet, which the next write-back saves.
            match auth::live::settings(&self.run_dir) {
                Ok(Some(_)) => lines.push("auth database in use kept from before".to_owned()),
                _ => lines.push(publish_live_auth(volume, &self.run_dir)),
            }
        }
        if let (Some(volume), Ok(_)) = (&volume, &established) {
            if let Some((identity, certificate)) = configured_identity(volume, &mut lines) {
                established = identity.write(&published, web_group).map(|()| {
                    (
                        identity,
                        web_identity::IdentityOrigin::Configured(certificate),
                    )
                });
            }
        }
        if let Some(volume) = volume {
            if let Err(error) = volume.close() {
                lines.push(format!(
                    "the config volume stays mounted: {}",
                    mfv_linux::error_chain(&error)
                ));
            }
        }
        match established {
            Ok((identity, origin)) => lines.push(format!(
                "web certificate SHA-256 {} ({origin})",
                identity.fingerprint()
            )),
            Err(error) => lines.push(format!(
                "the web server has no key and certificate: {}",
                mfv_linux::error_chain(&error)
            )),
        }
        if !matches!(provenance, Some(ConfigProvenance::Found { .. })) {
            lines.push(match setup_token::issue(&self.run_dir) {
                Ok(Some(_)) => "a setup token waits for the web's config mode; the console \
                                shows it"
                    .to_owned(),
                Ok(None) => "the setup token was used: config mode belongs to the browser \
                             that presented it"
                    .to_owned(),
                Err(error) => format!(
                    "no setup token, so config mode lets nobody in: {}",
                    mfv_linux::error_chain(&error)
                ),
            });
        }
        lines
    }

    /// Writes the working copy of the auth database back to the config volume when it
    /// changed since `written` (which it then updates); a line saying what was done, `None`
    /// when nothing was to do.
    pub fn write_back_auth(&self, written: &mut Option<auth::live::Fingerprint>) -> Option<String> {
        let now = auth::live::fingerprint(&self.run_dir);
        if written.as_ref() == Some(&now) {
            return None;
        }
        let device = match self.boot_volume() {
            Ok(Some(device)) => device,
            Ok(None) => return None,
            Err(error) => return Some(error.message),
        };
        let volume = match self.open_volume(&device) {
            Ok(volume) => volume,
            Err(error) => {
                return Some(format!("auth database not written back: {}", error.message));
            }
        };
        let access = volume.access();
        let outcome = access
            .make_writable()
            .map_err(|error| mfv_linux::error_chain(&error))
            .and_then(|()| {
                let written_back = auth::live::write_back(&self.run_dir, volume.dir())
                    .map_err(|error| mfv_linux::error_chain(&error));
                access
                    .make_read_only()
                    .map_err(|error| mfv_linux::error_chain(&error))
                    .and(written_back)
            });
        let closed = volume.close();
        let line = match outcome {
            Ok(true) => {
                *written = Some(now);
                format!("auth database written back to {device}")
            }
            Ok(false) => {
                *written = Some(now);
                return None;
            }
            Err(reason) => format!("auth database not written back to {device}: {reason}"),
        };
        Some(match closed {
            Ok(()) => line,
            Err(error) => format!(
                "{line}; the config volume stays mounted: {}",
                mfv_linux::error_chain(&error)
            ),
        })
    }

    /// The volume of the configuration the host runs with, as PID 1 published it; `None` on
    /// a host that is not set up.
    fn configured_from(&self) -> Result<Option<String>, ApiError> {
        let state = read_host_state(&self.run_dir)
            .map_err(|error| internal("cannot read the boot report", &error))?;
        Ok(match state.map(|state| state.boot.config) {
            Some(ConfigProvenance::Found { device, .. }) => Some(device),
            _ => None,
        })
    }

    /// First-boot setup's save ([`setup_save::save`]), only on a host that booted without a
    /// configuration and whose setup token was claimed.
    fn save_setup(
        &mut self,
        config_text: String,
        volume: mfv_api::SetupVolume,
        admin: String,
        password: &mfv_api::Secret,
        files: BTreeMap<String, mfv_api::Secret>,
    ) -> Result<Response, ApiError> {
        if let Some(device) = self.configured_from()? {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "this host is set up already, with the configuration on {device}; change it \
                     with config_save"
                ),
            ));
        }
        if !self.run_dir.join(setup_token::CLAIMED_FILE).exists() {
            return Err(ApiError::new(
                ErrorKind::NotPermitted,
                "setup is saved only after the setup token was claimed",
            ));
        }
        let volume = match volume {
            mfv_api::SetupVolume::Existing { device } => setup_save::SetupVolume::Existing {
                device: device.into(),
            },
            mfv_api::SetupVolume::Format {
                device,
                fs,
                confirm,
            } => setup_save::SetupVolume::Format {
                device: device.into(),
                fs: fs_kind(fs)?,
                confirm,
            },
            other => {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!("this host daemon does not know the volume choice {other:?}"),
                )
                .with_field("volume"));
            }
        };
        let password = mfv_auth::Password::new(password.expose()).map_err(|error| {
            ApiError::new(ErrorKind::InvalidRequest, error.to_string()).with_field("password")
        })?;
        let save = setup_save::SetupSave {
            config_text,
            volume,
            admin,
            password,
            files,
        };
        let published = self.run_dir.join(web_identity::RUN_SUBDIR);
        let saved = setup_save::save(&self.run_dir, &published, &save).map_err(setup_failed)?;
        // Before PID 1 restarts the web server into normal mode, which opens it.
        match StoreVolume::on_device(&saved.device, &self.run_dir) {
            Ok(volume) => {
                eprintln!("host daemon: {}", publish_live_auth(&volume, &self.run_dir));
                if let Err(error) = volume.close() {
                    eprintln!(
                        "host daemon: the config volume stays mounted: {}",
                        mfv_linux::error_chain(&error)
                    );
                }
            }
            Err(error) => eprintln!(
                "host daemon: no auth database for the web server until the next boot: {}",
                mfv_linux::error_chain(&error)
            ),
        }
        let in_use = self.put_in_use(&saved.device, ADOPTION_WAIT);
        Ok(Response::SetupSaved {
            device: saved.device.display().to_string(),
            generation: saved.generation,
            formatted: saved.formatted,
            in_use,
        })
    }

    /// Asks PID 1 to run the host with the configuration setup saved on `device`, and waits
    /// for it ([`setup_adoption`]); once it does, the setup token is retired. When it does
    /// not, the saved configuration is used from the next boot, and the answer says why.
    fn put_in_use(&mut self, device: &Path, wait: Duration) -> SetupInUse {
        let asked = setup_adoption::leave(&self.run_dir, device)
            .map_err(|error| mfv_linux::error_chain(&error))
            .and_then(|()| {
                self.init
                    .setup_saved()
                    .map_err(|error| format!("cannot signal PID 1: {error}"))
            });
        if let Err(reason) = asked {
            return SetupInUse::NextBoot { reason };
        }
        if !setup_adoption::wait_until_in_use(&self.run_dir, device, wait) {
            return SetupInUse::NextBoot {
                reason: format!(
                    "PID 1 did not take it into use within {} s; the console says why",
                    wait.as_secs()
                ),
            };
        }
        // A token file left behind only shows on the console: the claim is refused on a host
        // that is set up whatever it holds.
        let _ = setup_token::retire(&self.run_dir);
        SetupInUse::Now
    }

    /// Setup's "test connection": whether the `[auth]` backend of `config_text` can be
    /// reached and used ([`auth::check_backend`]), its relative paths on the config volume
    /// the boot used (mounted for the check), none on a host that has none yet; with
    /// `files`, in a private directory holding them instead ([`setup_files`]).
    fn test_auth(
        &self,
        config_text: &str,
        files: &BTreeMap<String, mfv_api::Secret>,
    ) -> Result<Response, ApiError> {
        let config = parse_config(config_text)
            .map_err(|errors| invalid_config("the configuration", &errors))?;
        if !files.is_empty() {
            let files = setup_files::resolve(&config.auth, files).map_err(setup_file_refused)?;
            let dir = self.run_dir.join(format!(
                "auth-test-{}-{}",
                std::process::id(),
                AUTH_TESTS.fetch_add(1, Ordering::Relaxed)
            ));
            let written = std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(&dir)
                .map_err(|error| internal("cannot make the auth test's directory", &error))
                .and_then(|()| setup_files::write(&dir, &files).map_err(setup_file_refused));
            let checked = written.and_then(|()| check_auth(&config.auth, Some(&dir)));
            let _ = std::fs::remove_dir_all(&dir);
            return checked;
        }
        match self.boot_volume()? {
            Some(device) => {
                let volume = self.open_volume(&device)?;
                let checked = check_auth(&config.auth, Some(volume.dir()));
                if let Err(error) = volume.close() {
                    return Err(internal("the config volume stays mounted", &error));
                }
                checked
            }
            None => check_auth(&config.auth, None),
        }
    }

    /// The device of the config volume the boot used (with a configuration, valid or not);
    /// `None` when it found none.
    fn boot_volume(&self) -> Result<Option<String>, ApiError> {
        let state = read_host_state(&self.run_dir)
            .map_err(|error| internal("cannot read the boot report", &error))?;
        Ok(match state.map(|state| state.boot.config) {
            Some(
                ConfigProvenance::Found { device, .. } | ConfigProvenance::Invalid { device, .. },
            ) => Some(device),
            _ => None,
        })
    }

    /// The store on `device`, mounted for this daemon alone.
    fn open_volume(&self, device: &str) -> Result<StoreVolume, ApiError> {
        StoreVolume::on_device(Path::new(device), &self.run_dir).map_err(|error| match error {
            ConfigKeyError::Busy { .. } => volume_busy(error),
            _ => ApiError::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot open the config volume {device}: {}",
                    mfv_linux::error_chain(&error)
                ),
            ),
        })
    }

    /// Runs `work` on the config store of the volume the boot used, mounted for it alone,
    /// one at a time in this daemon.
    fn with_store(
        &self,
        work: impl FnOnce(&dyn ConfigStore) -> Result<Response, ApiError>,
    ) -> Result<Response, ApiError> {
        let Some(device) = self.boot_volume()? else {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "this host booted without a config volume: there is no configuration to read \
                 or change (set one up first)",
            ));
        };
        let volume = self.open_volume(&device)?;
        let answer = work(volume.store());
        if let Err(error) = volume.close() {
            return Err(internal("the config volume stays mounted", &error));
        }
        answer
    }

    fn services(&self) -> Result<Vec<ServiceStatus>, ApiError> {
        services::read_status(&self.run_dir)
            .map_err(|error| internal("cannot read the services' status", &error))
    }

    fn host_status(&self) -> Result<HostStatus, ApiError> {
        let state = read_host_state(&self.run_dir)
            .map_err(|error| internal("cannot read the boot report", &error))?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    "the boot has not finished: PID 1 has not published its report yet",
                )
            })?;
        let uptime = std::fs::read_to_string(self.roots.proc.join("uptime"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or_default();
        let mut status =
            HostStatus::new((uptime * 1000.0) as u64, state.boot, state.virtualization);
        status.services = self.services()?;
        status.network_in_effect = read_in_effect(&self.run_dir)
            .map_err(|error| internal("cannot read the network in effect", &error))?;
        Ok(status)
    }

    /// Hands a network request to PID 1, which owns the network, and waits for its answer;
    /// one at a time in this daemon.
    fn ask_pid1(&mut self, action: NetworkAction) -> Result<Response, ApiError> {
        let _one_at_a_time = NETWORK_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let late = match action {
            NetworkAction::Apply { .. } => {
                "; a change it makes all the same rolls back at its deadline unless confirmed"
            }
            NetworkAction::Confirm { .. } => "; confirming again tells how the change ended",
        };
        let request = NetworkRequest::new(action, NETWORK_REQUESTS.fetch_add(1, Ordering::SeqCst));
        leave_request(&self.run_dir, &request)
            .map_err(|error| internal("cannot leave the network request", &error))?;
        self.init
            .network_requested()
            .map_err(|error| internal("cannot signal PID 1", &error))?;
        let reply =
            wait_for_answer(&self.run_dir, &request.request_id, ANSWER_WAIT).map_err(|error| {
                match error {
                    HandoverError::NoAnswer { .. } => ApiError::new(
                        ErrorKind::Busy,
                        format!("{}{late}", mfv_linux::error_chain(&error)),
                    ),
                    error => internal("cannot read PID 1's answer", &error),
                }
            })?;
        Result::from(reply).map(Response::Network)
    }

    /// Leaves a request for PID 1, wakes it, and waits until the service has a new process.
    fn restart(&mut self, name: &str) -> Result<ServiceStatus, ApiError> {
        let before = self
            .services()?
            .into_iter()
            .find(|service| service.name == name)
            .ok_or_else(|| no_service(name))?;
        let dir = self.run_dir.join(RESTART_REQUESTS_DIR);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(name), b""))
            .map_err(|error| internal("cannot leave the restart request", &error))?;
        self.init
            .restart_requested()
            .map_err(|error| internal("cannot signal PID 1", &error))?;
        let deadline = Instant::now() + RESTART_WAIT;
        loop {
            let now = self
                .services()?
                .into_iter()
                .find(|service| service.name == name)
                .ok_or_else(|| no_service(name))?;
            let restarted = now.restarts > before.restarts && now.pid.is_some();
            if restarted {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                return Err(ApiError::new(
                    ErrorKind::Busy,
                    format!(
                        "service {name} was asked to restart but has no new process after {} s",
                        RESTART_WAIT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(RESTART_POLL);
        }
    }
}

/// Makes `device` a config volume; the request's confirmation was checked by the protocol and
/// is checked again by the formatter, which also refuses a mounted device (the volume the
/// host uses among them).
fn format_volume(
    run_dir: &Path,
    device: &str,
    fs: VolumeFs,
    confirm: &str,
) -> Result<FormattedVolume, ApiError> {
    let kind = fs_kind(fs)?;
    let _one_at_a_time = VolumeLock::take(run_dir, VOLUME_LOCK_WAIT).map_err(volume_busy)?;
    let made = format_config_volume(Path::new(device), kind, confirm).map_err(format_refused)?;
    Ok(FormattedVolume::new(
        made.device.display().to_string(),
        made.fs_type,
        made.label,
        made.uuid,
    ))
}

/// The file system of a config volume to make.
fn fs_kind(fs: VolumeFs) -> Result<FsKind, ApiError> {
    match fs {
        VolumeFs::Ext4 => Ok(FsKind::Ext4),
        VolumeFs::Vfat => Ok(FsKind::Vfat),
        other => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("this host cannot make a {other:?} config volume"),
        )
        .with_field("fs")),
    }
}

/// A format's failure, naming the field at fault.
fn format_refused(error: FormatError) -> ApiError {
    let message = mfv_linux::error_chain(&error);
    match error {
        FormatError::NotConfirmed { .. } => {
            ApiError::new(ErrorKind::InvalidRequest, message).with_field("confirm")
        }
        FormatError::Missing { .. } | FormatError::NotABlockDevice { .. } => {
            ApiError::new(ErrorKind::NotFound, message).with_field("device")
        }
        FormatError::Mounted { .. } => {
            ApiError::new(ErrorKind::Conflict, message).with_field("device")
        }
        _ => ApiError::new(ErrorKind::Internal, message),
    }
}

/// The identity `[web] tls_cert` and `tls_key` name in the configuration on `volume`, with
/// the certificate's setting; `None` when they name none, or (said in `lines`) when it cannot
/// be used and the host's own certificate stays.
/// Makes the working copy of the auth database of the configuration on `volume` for the web
/// server and the console ([`auth::live`]); a line saying what was done.
fn publish_live_auth(volume: &StoreVolume, run_dir: &Path) -> String {
    let config = match crate::config::load(volume.store(), volume.dir()) {
        Ok(stored) => stored.config,
        Err(error) => {
            return format!(
                "the web server gets no auth database: {}",
                mfv_linux::error_chain(&error)
            );
        }
    };
    match auth::live::publish(volume.dir(), &config.auth, run_dir) {
        Ok(()) => format!(
            "auth database in use: {} (written back to the config volume when it changes)",
            auth::live::live_dir(run_dir).display()
        ),
        Err(error) => format!(
            "the web server gets no auth database: {}",
            mfv_linux::error_chain(&error)
        ),
    }
}

fn configured_identity(
    volume: &StoreVolume,
    lines: &mut Vec<String>,
) -> Option<(web_identity::WebIdentity, String)> {
    let config = crate::config::load(volume.store(), volume.dir())
        .ok()?
        .config;
    let (Some(certificate), Some(key)) = (config.web.tls_cert, config.web.tls_key) else {
        return None;
    };
    match web_identity::WebIdentity::configured(volume.dir(), &certificate, &key) {
        Ok(identity) => Some((identity, certificate)),
        Err(error) => {
            lines.push(format!(
                "web.tls_cert and web.tls_key cannot be used, so the web server presents the \
                 host's own certificate: {}",
                mfv_linux::error_chain(&error)
            ));
            None
        }
    }
}

/// [`auth::check_backend`] on its own runtime, with relative paths below `dir`, as the
/// protocol answers it.
fn check_auth(
    auth: &mfv_config::schema::AuthConfig,
    dir: Option<&Path>,
) -> Result<Response, ApiError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| internal("cannot start the runtime for the check", &error))?;
    let checked = runtime
        .block_on(auth::check_backend(auth, dir, auth::CHECK_DEADLINE))
        .map_err(|error| {
            let api_error = ApiError::new(auth_check_kind(&error), mfv_linux::error_chain(&error));
            match error.key() {
                Some(key) => api_error.with_field(key),
                None => api_error,
            }
        })?;
    Ok(Response::AuthTested {
        backend: checked.backend.as_str().to_owned(),
        message: checked.message,
    })
}

/// A setup file that cannot be written, naming the field at fault.
fn setup_file_refused(error: setup_files::SetupFileError) -> ApiError {
    let kind = match error {
        setup_files::SetupFileError::Write { .. } => ErrorKind::Internal,
        _ => ErrorKind::InvalidRequest,
    };
    ApiError::new(kind, mfv_linux::error_chain(&error)).with_field(error.field())
}

/// First-boot setup's failure, naming the field at fault.
fn setup_failed(error: SetupSaveError) -> ApiError {
    match error {
        SetupSaveError::InvalidConfig(errors) => invalid_config("the configuration", &errors),
        SetupSaveError::AdminName { .. } => {
            ApiError::new(ErrorKind::InvalidRequest, error.to_string()).with_field("admin")
        }
        SetupSaveError::PasswordTooShort { .. } => {
            ApiError::new(ErrorKind::InvalidRequest, error.to_string()).with_field("password")
        }
        SetupSaveError::Format(error) => format_refused(error),
        SetupSaveError::File(error) => setup_file_refused(error),
        SetupSaveError::Volume { .. } => {
            ApiError::new(ErrorKind::Unavailable, mfv_linux::error_chain(&error))
                .with_field("device")
        }
        error => internal("the setup was not saved", &error),
    }
}

/// The error kind of an auth backend check's failure: the settings are the operator's to
/// fix, a server that cannot be reached or does not answer is unavailable.
fn auth_check_kind(error: &auth::AuthCheckError) -> ErrorKind {
    match error {
        auth::AuthCheckError::Unreachable { .. } | auth::AuthCheckError::Timeout { .. } => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::InvalidRequest,
    }
}

/// The host-wide config volume lock could not be taken: busy, or a broken runtime directory.
fn volume_busy(error: ConfigKeyError) -> ApiError {
    let kind = match error {
        ConfigKeyError::Busy { .. } => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    };
    ApiError::new(kind, mfv_linux::error_chain(&error))
}

/// Network requests to PID 1, one at a time.
static NETWORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Network requests made by this daemon, for their ids.
static NETWORK_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Auth tests with files in this process, for their directories' names.
static AUTH_TESTS: AtomicU64 = AtomicU64::new(0);

/// An [`ErrorKind::InvalidConfig`] error for `what` (`the configuration`), with every problem
/// and the first one's field.
pub(crate) fn invalid_config(what: &str, errors: &ConfigErrors) -> ApiError {
    let issues = config_issues(errors);
    let first = errors.errors().first();
    let message = format!(
        "{what} has {} problem(s); the first: {}",
        issues.len(),
        first.map(ToString::to_string).unwrap_or_default()
    );
    let field = first.map(|error| error.path.clone());
    let error = ApiError::invalid_config(message, issues);
    match field {
        Some(field) if !field.is_empty() => error.with_field(field),
        _ => error,
    }
}

/// The configuration `store` holds, as the protocol gives it: what `config_get` answers with
/// the store of the volume the boot used (public so the web server's tests run it on a
/// directory store, where the daemon mounts a volume).
pub fn config_document(store: &dyn ConfigStore) -> Result<Response, ApiError> {
    let loaded = store
        .load()
        .map_err(|error| internal("cannot read the configuration", &error))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                "no configuration was ever saved on this volume",
            )
        })?;
    let origin = match loaded.origin {
        mfv_config::store::Origin::Current => ConfigOrigin::Current,
        mfv_config::store::Origin::LastKnownGood => ConfigOrigin::LastKnownGood,
    };
    Ok(Response::Config(mfv_api::ConfigDocument::new(
        loaded.text,
        loaded.generation,
        origin,
        loaded.location.to_string(),
    )))
}

/// Validates `text` and saves it as the new generation, unless the store moved past
/// `base_generation` meanwhile (someone else saved: the caller must look again): what
/// `config_save` does with the store of the volume the boot used.
pub fn save_config(
    store: &dyn ConfigStore,
    text: &str,
    base_generation: Option<u64>,
) -> Result<Response, ApiError> {
    if let Err(errors) = parse_config(text) {
        return Err(invalid_config("the configuration", &errors));
    }
    let current = store
        .load()
        .map_err(|error| internal("cannot read the configuration", &error))?
        .and_then(|loaded| loaded.generation);
    if current != base_generation {
        return Err(ApiError::new(
            ErrorKind::StaleGeneration,
            format!(
                "the configuration changed meanwhile: the save is based on generation {} but \
                 the current one is {}; read it again and redo the change",
                base_generation.map_or("none".to_owned(), |g| g.to_string()),
                current.map_or("none".to_owned(), |g| g.to_string())
            ),
        ));
    }
    let saved = store
        .save(text)
        .map_err(|error| internal("cannot save the configuration", &error))?;
    Ok(Response::ConfigSaved {
        generation: saved.generation,
    })
}

fn no_service(name: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("no service named {name:?}"))
}

/// A setup claim's refusal, as the web server passes it on.
fn setup_refused(refusal: ClaimRefusal) -> ApiError {
    let kind = match refusal {
        ClaimRefusal::Wrong | ClaimRefusal::Spent => ErrorKind::NotPermitted,
        ClaimRefusal::NoneIssued | ClaimRefusal::SetUp { .. } => ErrorKind::Unavailable,
        ClaimRefusal::Failed(error) => return internal("cannot check the setup token", &error),
    };
    ApiError::new(kind, refusal.to_string()).with_field("token")
}

fn internal(what: &str, error: &dyn std::error::Error) -> ApiError {
    ApiError::new(
        ErrorKind::Internal,
        format!("{what}: {}", mfv_linux::error_chain(error)),
    )
}

/// The names of the services with a restart request waiting in `run_dir`, each request taken
/// away as it is read; names that are not service names are removed and left out.
pub fn take_restart_requests(run_dir: &Path) -> Vec<String> {
    let dir = run_dir.join(RESTART_REQUESTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if std::fs::remove_file(entry.path()).is_ok() && services::is_service_name(&name) {
            names.push(name);
        }
    }
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::handover::{HandoverFile, NetworkOwner, take_request};
    use crate::network::plan::config_steps;
    use crate::network::{LiveNetwork, RecordingNetwork};
    use mfv_api::{LogSource, NetworkOutcome, ServiceState};

    const STATIC_ETH0: &str = "[network]\n[[network.interfaces]]\nname = \"eth0\"\n\
                               mode = \"static\"\naddresses = [\"192.0.2.10/24\"]\n";

    /// A daemon whose PID 1 serves network requests.
    fn network_daemon(dir: &Path) -> HostDaemon<RecordingInit> {
        let mut daemon = daemon(dir);
        daemon.init.network = Some(Pid1Network::new(&daemon.run_dir));
        daemon
    }

    fn apply(network_toml: &str, confirm_within_secs: u32) -> Request {
        Request::NetworkApply {
            network_toml: network_toml.to_owned(),
            confirm_within_secs,
        }
    }

    #[derive(Debug, Default)]
    struct RecordingInit {
        calls: Vec<String>,
        /// When set, a restart request makes the service's status show a new process.
        restart_dir: Option<PathBuf>,
        /// When set, PID 1 takes a saved setup into use in this directory.
        adopt_dir: Option<PathBuf>,
        /// When set, PID 1 serves network requests in this directory.
        network: Option<Pid1Network>,
    }

    /// PID 1's network: eth0 by DHCP at the boot, on a recording network, at `now`.
    #[derive(Debug)]
    struct Pid1Network {
        run_dir: PathBuf,
        owner: NetworkOwner,
        network: RecordingNetwork,
        now: Duration,
    }

    impl Pid1Network {
        fn new(run_dir: &Path) -> Pid1Network {
            let mut boot = mfv_config::schema::NetworkConfig::default();
            boot.interfaces.push(crate::network::plan::tests::entry(
                "eth0",
                mfv_config::schema::InterfaceMode::Dhcp,
            ));
            Pid1Network {
                run_dir: run_dir.to_owned(),
                owner: NetworkOwner::new(LiveNetwork::new(config_steps(&boot), "vmhost1")),
                network: RecordingNetwork {
                    dhcp_running: vec!["eth0".into()],
                    apply_changes: vec!["add 192.0.2.10/24 to eth0".into()],
                    ..RecordingNetwork::default()
                },
                now: Duration::from_secs(100),
            }
        }

        /// What PID 1's main loop does with the deadline.
        fn expire(&mut self) {
            let file = self
                .owner
                .expire(&self.run_dir, &mut self.network, self.now, &mut |_| {});
            file.iter().for_each(write_file);
        }
    }

    fn write_file(file: &HandoverFile) {
        mfv_linux::atomic_file::replace_file(&file.path, file.contents.as_bytes(), 0o644).unwrap();
    }

    impl InitControl for RecordingInit {
        fn shut_down(&mut self, reboot: bool) -> std::io::Result<()> {
            self.calls
                .push(if reboot { "reboot" } else { "poweroff" }.to_owned());
            Ok(())
        }

        fn restart_requested(&mut self) -> std::io::Result<()> {
            self.calls.push("restart".to_owned());
            if let Some(dir) = &self.restart_dir {
                let names = take_restart_requests(dir);
                let mut statuses = services::read_status(dir).unwrap();
                for status in &mut statuses {
                    if names.contains(&status.name) {
                        status.restarts += 1;
                        status.pid = Some(999);
                    }
                }
                services::write_status(dir, &statuses).unwrap();
            }
            Ok(())
        }

        fn setup_saved(&mut self) -> std::io::Result<()> {
            self.calls.push("setup_saved".to_owned());
            if let Some(dir) = &self.adopt_dir {
                let device = setup_adoption::take(dir).unwrap().unwrap();
                let mut state = read_host_state(dir).unwrap().unwrap();
                state.boot.config = ConfigProvenance::Found {
                    device: device.display().to_string(),
                    store: StoreKind::Directory,
                    generation: None,
                    origin: ConfigOrigin::Current,
                };
                write_host_state(dir, &state).unwrap();
            }
            Ok(())
        }

        fn network_requested(&mut self) -> std::io::Result<()> {
            self.calls.push("network".to_owned());
            if let Some(pid1) = &mut self.network {
                if let Some(taken) = take_request(&pid1.run_dir) {
                    let files = pid1.owner.serve(
                        &pid1.run_dir,
                        taken,
                        &mut pid1.network,
                        pid1.now,
                        &mut |_| {},
                    );
                    files.iter().for_each(write_file);
                }
            }
            Ok(())
        }
    }

    /// Publishes what PID 1 does for a host that booted without a configuration.
    fn publish_host_without_config(run_dir: &Path) {
        let state = HostState {
            boot: BootReport::new(ConfigProvenance::NotFound),
            virtualization: Virtualization::Tcg,
        };
        write_host_state(run_dir, &state).unwrap();
    }

    fn daemon(dir: &Path) -> HostDaemon<RecordingInit> {
        let roots = mfv_probe::SystemRoots {
            sysfs: dir.join("sys"),
            proc: dir.join("proc"),
            dev: dir.join("dev"),
        };
        std::fs::create_dir_all(&roots.proc).unwrap();
        std::fs::write(roots.proc.join("uptime"), "12.34 20.00\n").unwrap();
        HostDaemon {
            run_dir: dir.join("run"),
            roots,
            init: RecordingInit::default(),
        }
    }

    fn running(name: &str, pid: u32) -> ServiceStatus {
        let mut status = ServiceStatus::new(name, ServiceState::Running);
        status.pid = Some(pid);
        status
    }

    #[test]
    fn only_root_and_the_web_user_are_peers_and_the_web_gets_its_list() {
        assert_eq!(Peer::for_uid(0, Some(900)), Some(Peer::Root));
        assert_eq!(Peer::for_uid(900, Some(900)), Some(Peer::Web));
        assert_eq!(Peer::for_uid(1000, Some(900)), None);
        assert_eq!(Peer::for_uid(900, None), None);
        assert!(Peer::Web.allows(&Request::HostStatus));
        assert!(Peer::Web.allows(&Request::PowerOff));
        // The web's config mode changes the network through the daemon.
        assert!(Peer::Web.allows(&apply(STATIC_ETH0, 60)));
        assert!(Peer::Web.allows(&Request::NetworkConfirm { apply_id: 1 }));
    }

    #[test]
    fn without_a_configuration_the_web_gets_a_certificate_of_this_boot_and_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = daemon(dir.path());
        std::fs::create_dir_all(daemon.roots.proc.join("sys/kernel")).unwrap();
        std::fs::write(daemon.roots.proc.join("sys/kernel/hostname"), "fresh\n").unwrap();
        let lines = daemon.prepare_web(None);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("web certificate SHA-256 ") && lines[0].ends_with("(made now; no config store keeps it, so it is new at every boot until the host is set up)"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("a setup token waits"), "{lines:?}");
        let web = daemon.run_dir.join(web_identity::RUN_SUBDIR);
        let identity = web_identity::WebIdentity::read(&web).unwrap();
        assert!(lines[0].contains(&identity.fingerprint().to_string()));
        assert!(setup_token::current(&daemon.run_dir).unwrap().is_some());
        // A restart of the daemon keeps both.
        let token = setup_token::current(&daemon.run_dir).unwrap();
        let again = daemon.prepare_web(None);
        assert!(
            again[0].ends_with("(the one of this boot; no config store keeps it)"),
            "{again:?}"
        );
        assert_eq!(setup_token::current(&daemon.run_dir).unwrap(), token);
    }

    #[test]
    fn the_setup_token_is_claimed_once_and_a_wrong_one_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let claim = |token: &str| Request::SetupClaim {
            token: token.to_owned(),
        };
        let error = daemon.handle(Peer::Web, claim("abcde")).unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::Unavailable, Some("token"))
        );
        std::fs::create_dir_all(&daemon.run_dir).unwrap();
        let token = setup_token::issue(&daemon.run_dir).unwrap().unwrap();
        let error = daemon.handle(Peer::Web, claim("abcde")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotPermitted);
        assert!(error.message.contains("wrong"), "{error}");
        assert_eq!(
            daemon.handle(Peer::Web, claim(token.as_str())).unwrap(),
            Response::Accepted
        );
        let error = daemon.handle(Peer::Web, claim(token.as_str())).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotPermitted);
        assert!(error.message.contains("used already"), "{error}");
    }

    #[test]
    fn a_network_change_goes_to_pid1_and_is_kept_when_confirmed_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = network_daemon(dir.path());
        publish_host_without_config(&daemon.run_dir);
        let in_effect = |daemon: &mut HostDaemon<RecordingInit>| {
            let Response::HostStatus(status) =
                daemon.handle(Peer::Web, Request::HostStatus).unwrap()
            else {
                panic!("not a host status");
            };
            status.network_in_effect
        };
        assert_eq!(in_effect(&mut daemon), None);
        let applied = daemon.handle(Peer::Web, apply(STATIC_ETH0, 60)).unwrap();
        assert_eq!(
            applied,
            Response::Network(NetworkOutcome::Applied {
                apply_id: 1,
                confirm_within_secs: 60,
                changes: vec![
                    "eth0: DHCP client stopped".into(),
                    "add 192.0.2.10/24 to eth0".into()
                ],
            })
        );
        // A second change is refused while the first waits, without asking PID 1.
        let error = daemon
            .handle(Peer::Root, apply(STATIC_ETH0, 60))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Conflict);
        assert!(
            error.message.starts_with("network change 1 is waiting"),
            "{}",
            error.message
        );
        assert_eq!(daemon.init.calls, ["network"]);
        let confirmed = daemon
            .handle(Peer::Web, Request::NetworkConfirm { apply_id: 1 })
            .unwrap();
        assert_eq!(confirmed, Response::Network(NetworkOutcome::Confirmed));
        // The section confirmed is the network in effect, as the configuration would say it.
        let section = in_effect(&mut daemon).unwrap();
        assert_eq!(
            parse_network_section(&section).unwrap(),
            parse_network_section(STATIC_ETH0).unwrap()
        );
        let pid1 = daemon.init.network.as_mut().unwrap();
        assert!(pid1.network.calls.contains(&"keep provisional".to_owned()));
        // The deadline passes: nothing is rolled back.
        pid1.now += Duration::from_secs(3600);
        pid1.expire();
        assert!(
            !pid1
                .network
                .calls
                .contains(&"roll back provisional".to_owned())
        );
        // And the next change may come.
        let next = daemon.handle(Peer::Root, apply(STATIC_ETH0, 60)).unwrap();
        assert!(matches!(
            next,
            Response::Network(NetworkOutcome::Applied { apply_id: 2, .. })
        ));
    }

    #[test]
    fn a_network_change_not_confirmed_is_rolled_back_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = network_daemon(dir.path());
        daemon.handle(Peer::Root, apply(STATIC_ETH0, 5)).unwrap();
        let pid1 = daemon.init.network.as_mut().unwrap();
        pid1.now += Duration::from_secs(5);
        pid1.expire();
        assert!(
            pid1.network
                .calls
                .contains(&"roll back provisional".to_owned())
        );
        let late = daemon
            .handle(Peer::Root, Request::NetworkConfirm { apply_id: 1 })
            .unwrap();
        assert_eq!(
            late,
            Response::Network(NetworkOutcome::RolledBack {
                reason: "change 1 was rolled back: not confirmed within 5 s".into()
            })
        );
        // The rollback freed the way for the next change.
        let next = daemon.handle(Peer::Root, apply(STATIC_ETH0, 5)).unwrap();
        assert!(matches!(
            next,
            Response::Network(NetworkOutcome::Applied { apply_id: 2, .. })
        ));
        let unknown = daemon
            .handle(Peer::Root, Request::NetworkConfirm { apply_id: 9 })
            .unwrap_err();
        assert_eq!(
            (unknown.kind, unknown.field.as_deref()),
            (ErrorKind::NotFound, Some("apply_id"))
        );
    }

    #[test]
    fn a_bad_network_section_is_refused_naming_the_field_before_pid1_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = network_daemon(dir.path());
        let error = daemon
            .handle(
                Peer::Root,
                apply(
                    "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n",
                    60,
                ),
            )
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidConfig);
        assert_eq!(
            error.field.as_deref(),
            Some("network.interfaces[0].addresses")
        );
        assert_eq!(
            error.message,
            "the network section has 1 problem(s); the first: 1:1: \
             network.interfaces[0].addresses: mode = \"static\" needs at least one address"
        );
        assert_eq!(error.config_errors[0].line, Some(1));
        let error = daemon
            .handle(Peer::Root, apply("[host]\nhostname = \"x\"\n", 60))
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("network"));
        assert!(daemon.init.calls.is_empty(), "{:?}", daemon.init.calls);
    }

    #[test]
    fn host_status_joins_the_boot_report_the_services_and_the_uptime() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let error = daemon.handle(Peer::Root, Request::HostStatus).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        publish_host_without_config(&daemon.run_dir);
        services::write_status(&daemon.run_dir, &[running("libvirtd", 300)]).unwrap();
        let Response::HostStatus(status) = daemon.handle(Peer::Web, Request::HostStatus).unwrap()
        else {
            panic!("not a host status");
        };
        assert_eq!(status.uptime_ms, 12_340);
        assert_eq!(status.virtualization, Virtualization::Tcg);
        assert_eq!(status.boot.config, ConfigProvenance::NotFound);
        assert_eq!(status.services, [running("libvirtd", 300)]);
    }

    #[test]
    fn service_status_names_an_unknown_service() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        services::write_status(&daemon.run_dir, &[running("virtlogd", 10)]).unwrap();
        let error = daemon
            .handle(
                Peer::Root,
                Request::ServiceStatus {
                    name: Some("nope".to_owned()),
                },
            )
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(error.message, "no service named \"nope\"");
    }

    #[test]
    fn a_restart_is_left_for_pid1_and_answered_with_the_new_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        daemon.init.restart_dir = Some(daemon.run_dir.clone());
        services::write_status(&daemon.run_dir, &[running("libvirtd", 300)]).unwrap();
        let response = daemon
            .handle(
                Peer::Root,
                Request::ServiceRestart {
                    name: "libvirtd".to_owned(),
                },
            )
            .unwrap();
        let Response::ServiceRestarted { service } = response else {
            panic!("not a restart");
        };
        assert_eq!((service.pid, service.restarts), (Some(999), 1));
        assert_eq!(daemon.init.calls, ["restart"]);
        // The request was taken.
        assert!(take_restart_requests(&daemon.run_dir).is_empty());
    }

    #[test]
    fn reboot_and_power_off_go_to_pid1_and_logs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        assert_eq!(
            daemon.handle(Peer::Root, Request::Reboot).unwrap(),
            Response::Accepted
        );
        assert_eq!(
            daemon.handle(Peer::Web, Request::PowerOff).unwrap(),
            Response::Accepted
        );
        assert_eq!(daemon.init.calls, ["reboot", "poweroff"]);
        let mut log = services::ServiceLog::open(&daemon.run_dir, "libvirtd").unwrap();
        log.append(5, "hello").unwrap();
        let Response::Logs { lines } = daemon
            .handle(
                Peer::Root,
                Request::Logs {
                    source: LogSource::Service {
                        name: "libvirtd".to_owned(),
                    },
                    limit: 10,
                },
            )
            .unwrap()
        else {
            panic!("not logs");
        };
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "hello");
    }

    #[test]
    fn a_config_text_is_validated_with_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let Response::ConfigValidation { errors } = daemon
            .handle(
                Peer::Root,
                Request::ConfigValidate {
                    text: "version = 1\n[host]\nhostname = \"-bad-\"\nfrobnicate = 1\n".to_owned(),
                },
            )
            .unwrap()
        else {
            panic!("not a validation");
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].line, Some(3));
        assert_eq!(errors[0].field, "host.hostname");
    }

    /// A configuration whose `[auth]` section is `auth`.
    fn auth_test(auth: &str) -> Request {
        Request::AuthTest {
            config_text: format!("version = 1\n[host]\nhostname = \"h\"\n{auth}"),
            files: BTreeMap::new(),
        }
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn an_auth_test_of_an_invalid_text_names_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let error = daemon
            .handle(
                Peer::Web,
                auth_test("[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"http://x\"\n"),
            )
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidConfig, "{error}");
        assert!(error.config_errors.len() >= 2, "{:?}", error.config_errors);
        assert!(
            error.field.as_deref().unwrap().starts_with("auth.ldap"),
            "{error}"
        );
    }

    #[test]
    fn an_auth_test_of_local_users_says_where_setup_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let answer = daemon.handle(Peer::Web, auth_test("")).unwrap();
        assert_eq!(
            answer,
            Response::AuthTested {
                backend: "sqlite".to_owned(),
                message: "users are the local ones, kept in users.sqlite on the config volume, \
                          which setup's save creates with the first administrator"
                    .to_owned(),
            }
        );
    }

    #[test]
    fn an_auth_test_of_an_unreachable_directory_names_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let url = format!("ldap://127.0.0.1:{}", closed_port());
        let error = daemon
            .handle(
                Peer::Web,
                auth_test(&format!(
                    "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"{url}\"\n\
                     base_dn = \"ou=people,dc=example,dc=org\"\n"
                )),
            )
            .unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::Unavailable, Some("auth.ldap.url")),
            "{error}"
        );
        assert!(
            error.message.starts_with(&format!("cannot reach {url}: ")),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_auth_test_before_setup_cannot_read_files_on_the_volume_to_come() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let error = daemon
            .handle(
                Peer::Root,
                auth_test(
                    "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"127.0.0.1\"\n\
                     database = \"mfv\"\nuser = \"mfv\"\npassword_file = \"secrets/db\"\n",
                ),
            )
            .unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("auth.mysql.password_file")),
            "{error}"
        );
        assert!(
            error.message.starts_with(
                "auth.mysql.password_file = \"secrets/db\" is a file on the config volume"
            ),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_auth_test_before_setup_uses_the_files_given_and_leaves_none_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        std::fs::create_dir_all(&daemon.run_dir).unwrap();
        let mysql = format!(
            "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"127.0.0.1\"\nport = {}\n\
             database = \"mfv\"\nuser = \"mfv\"\npassword_file = \"secrets/db\"\n",
            closed_port()
        );
        let mut request = auth_test(&mysql);
        let Request::AuthTest { files, .. } = &mut request else {
            unreachable!()
        };
        files.insert(
            "auth.mysql.password_file".to_owned(),
            mfv_api::Secret::new("the database password"),
        );
        // The password file is there: the test goes on to the server, which is not.
        let error = daemon.handle(Peer::Web, request).unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::Unavailable, Some("auth.mysql.host")),
            "{error}"
        );
        let left: Vec<_> = std::fs::read_dir(&daemon.run_dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // A file the configuration puts off the volume is refused before anything is written.
        let mut request = auth_test(&mysql.replace("secrets/db", "/etc/db-password"));
        let Request::AuthTest { files, .. } = &mut request else {
            unreachable!()
        };
        files.insert(
            "auth.mysql.password_file".to_owned(),
            mfv_api::Secret::new("x"),
        );
        let error = daemon.handle(Peer::Web, request).unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("auth.mysql.password_file")),
            "{error}"
        );
    }

    #[test]
    fn a_save_needs_a_valid_text_and_the_current_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            mfv_config::store::DirectoryStore::new(dir.path(), mfv_config::store::PlainDirectory);
        let error = config_document(&store).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        let text = "version = 1\n[host]\nhostname = \"first\"\n";
        let Response::ConfigSaved { generation } = save_config(&store, text, None).unwrap() else {
            panic!("not saved");
        };
        let Response::Config(document) = config_document(&store).unwrap() else {
            panic!("not a document");
        };
        assert_eq!(
            (document.text.as_str(), document.generation),
            (text, Some(generation))
        );
        // Based on no generation while one exists: stale.
        let error = save_config(&store, text, None).unwrap_err();
        assert_eq!(error.kind, ErrorKind::StaleGeneration);
        // Invalid text: refused with the field, nothing stored.
        let error = save_config(
            &store,
            "version = 1\n[host]\nhostname = \"-x-\"\n",
            Some(generation),
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidConfig);
        assert_eq!(error.field.as_deref(), Some("host.hostname"));
        let Response::ConfigSaved { generation: next } = save_config(
            &store,
            "version = 1\n[host]\nhostname = \"second\"\n",
            Some(generation),
        )
        .unwrap() else {
            panic!("not saved");
        };
        assert_eq!(next, generation + 1);
    }

    #[test]
    fn without_a_config_volume_config_requests_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        publish_host_without_config(&daemon.run_dir);
        let error = daemon.handle(Peer::Root, Request::ConfigGet).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(
            error
                .message
                .starts_with("this host booted without a config volume"),
            "{}",
            error.message
        );
    }

    #[test]
    fn setup_is_saved_only_on_a_host_in_setup_after_the_claim_and_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        let save = |config: &str, admin: &str| Request::SetupSave {
            config_text: config.to_owned(),
            volume: mfv_api::SetupVolume::Existing {
                device: "/dev/mfv-no-such-disk".to_owned(),
            },
            admin: admin.to_owned(),
            password: mfv_api::Secret::new("a long enough password"),
            files: BTreeMap::new(),
        };
        let valid = "version = 1\n[host]\nhostname = \"h\"\n";
        let mut state = HostState {
            boot: BootReport::new(ConfigProvenance::Found {
                device: "/dev/vdb".to_owned(),
                store: StoreKind::Directory,
                generation: None,
                origin: ConfigOrigin::Current,
            }),
            virtualization: Virtualization::Tcg,
        };
        write_host_state(&daemon.run_dir, &state).unwrap();
        let error = daemon.handle(Peer::Web, save(valid, "alice")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Conflict, "{error}");

        state.boot = BootReport::new(ConfigProvenance::NotFound);
        write_host_state(&daemon.run_dir, &state).unwrap();
        let error = daemon.handle(Peer::Web, save(valid, "alice")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotPermitted, "{error}");

        let token = setup_token::issue(&daemon.run_dir).unwrap().unwrap();
        setup_token::claim(&daemon.run_dir, token.as_str()).unwrap();
        let error = daemon
            .handle(
                Peer::Web,
                save("version = 1\n[host]\nhostnme = \"h\"\n", "alice"),
            )
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidConfig, "{error}");
        let error = daemon
            .handle(Peer::Web, save(valid, "Alice Smith"))
            .unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("admin")),
            "{error}"
        );
        // Everything checked, then the volume: it does not exist.
        let error = daemon.handle(Peer::Web, save(valid, "alice")).unwrap_err();
        assert_eq!(
            (error.kind, error.field.as_deref()),
            (ErrorKind::Unavailable, Some("device")),
            "{error}"
        );
        assert!(error.message.contains("/dev/mfv-no-such-disk"), "{error}");
    }

    #[test]
    fn a_saved_setup_is_in_use_once_pid1_publishes_it_and_then_nothing_is_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        publish_host_without_config(&daemon.run_dir);
        let token = setup_token::issue(&daemon.run_dir).unwrap().unwrap();
        setup_token::claim(&daemon.run_dir, token.as_str()).unwrap();

        // PID 1 does not answer: the configuration waits for the next boot, and the request
        // is taken back.
        let in_use = daemon.put_in_use(Path::new("/dev/vdb"), Duration::from_millis(100));
        let SetupInUse::NextBoot { reason } = in_use else {
            panic!("in use without PID 1: {in_use:?}");
        };
        assert!(
            reason.contains("PID 1 did not take it into use"),
            "{reason}"
        );
        assert!(setup_adoption::take(&daemon.run_dir).is_none());
        assert!(daemon.run_dir.join(setup_token::CLAIMED_FILE).exists());

        daemon.init.adopt_dir = Some(daemon.run_dir.clone());
        let in_use = daemon.put_in_use(Path::new("/dev/vdb"), Duration::from_secs(5));
        assert_eq!(in_use, SetupInUse::Now);
        assert_eq!(daemon.init.calls, ["setup_saved", "setup_saved"]);
        assert!(!daemon.run_dir.join(setup_token::CLAIMED_FILE).exists());
        let error = daemon
            .handle(
                Peer::Web,
                Request::SetupClaim {
                    token: token.as_str().to_owned(),
                },
            )
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
        assert!(error.message.contains("is set up"), "{error}");
    }

    #[test]
    fn a_saved_setup_pid1_cannot_be_told_of_waits_for_the_next_boot() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = daemon(dir.path());
        // The runtime directory is a file: the request cannot be left.
        std::fs::write(&daemon.run_dir, "").unwrap();
        let in_use = daemon.put_in_use(Path::new("/dev/vdb"), Duration::from_secs(5));
        let SetupInUse::NextBoot { reason } = in_use else {
            panic!("in use: {in_use:?}");
        };
        assert!(reason.contains("setup-saved.json"), "{reason}");
        assert!(daemon.init.calls.is_empty());
    }

    #[test]
    fn a_format_names_what_is_wrong_with_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-disk");
        std::fs::write(&file, "").unwrap();
        let path = file.display().to_string();
        let error = format_volume(dir.path(), &path, VolumeFs::Ext4, &path).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(error.field.as_deref(), Some("device"));
        assert!(
            error.message.ends_with("is not a block device"),
            "{}",
            error.message
        );
        let error = format_volume(dir.path(), &path, VolumeFs::Vfat, "/dev/other").unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidRequest);
        assert_eq!(error.field.as_deref(), Some("confirm"));
    }

    #[test]
    fn restart_requests_with_odd_names_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let requests = dir.path().join(RESTART_REQUESTS_DIR);
        std::fs::create_dir_all(&requests).unwrap();
        std::fs::write(requests.join("mfv-web"), "").unwrap();
        std::fs::write(requests.join("bad name"), "").unwrap();
        assert_eq!(take_restart_requests(dir.path()), ["mfv-web"]);
        assert_eq!(std::fs::read_dir(&requests).unwrap().count(), 0);
    }
}
