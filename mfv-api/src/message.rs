//! The requests a client sends after the handshake and the replies it gets, one frame each.
//!
//! Every request names what it wants in `type` and every successful response names what it
//! carries in `type`, in snake_case; the names and field names are the protocol and do not
//! change within a [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION). A reply frame is either
//! `{"ok": RESPONSE}` or `{"error": API_ERROR}` ([`Reply`]).
//!
//! The hardware inventory travels as JSON rather than as types of this crate; why is said at
//! [`Response::Inventory`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    ApiError, ConfigDocument, ConfigIssue, ErrorKind, FormattedVolume, HostStatus, LogLine,
    LogSource, MAX_CONFIRM_SECS, MAX_LOG_LINES, NetworkOutcome, PoolSpec, Secret, ServiceStatus,
    SetupInUse, SetupVolume, VolumeChoice, VolumeFs, check_format_confirmation,
};

/// A request. Serializes as an object whose `type` is the variant's snake_case name, with
/// the variant's fields beside it: `{"type": "service_restart", "name": "mfv-web"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// Uptime, boot report, services, KVM or TCG. Answered by [`Response::HostStatus`].
    HostStatus,
    /// The hardware inventory. Answered by [`Response::Inventory`].
    Inventory,
    /// Apply a network provisionally: it is rolled back unless confirmed in time with
    /// [`Request::NetworkConfirm`]. Answered by [`Response::Network`].
    NetworkApply {
        /// The desired network: the TOML text of a configuration's `[network]` section,
        /// header included.
        network_toml: String,
        /// Seconds the host waits for the confirmation, 1 to [`MAX_CONFIRM_SECS`].
        confirm_within_secs: u32,
    },
    /// Keep a provisionally applied network. Answered by [`Response::Network`]: confirmed,
    /// or rolled back if the deadline passed.
    NetworkConfirm {
        /// The id [`NetworkOutcome::Applied`] gave.
        apply_id: u64,
    },
    /// The configuration in use. Answered by [`Response::Config`].
    ConfigGet,
    /// Check a configuration text without saving it. Answered by
    /// [`Response::ConfigValidation`].
    ConfigValidate {
        /// The whole `mfv.toml` text.
        text: String,
    },
    /// Check that the user backend of a configuration text's `[auth]` section can be reached
    /// and used (connect, log in, read the users), without saving anything. Answered by
    /// [`Response::AuthTested`]; an invalid text is an [`ErrorKind::InvalidConfig`] error,
    /// a backend that cannot be used an error whose field names the setting to look at
    /// (`auth.ldap.url`).
    AuthTest {
        /// The whole `mfv.toml` text.
        config_text: String,
        /// On a host without a config volume yet (setup): the contents of the files
        /// `[auth]` names ([`SETUP_FILE_KEYS`]), by key, used for the test in their place.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        files: BTreeMap<String, Secret>,
    },
    /// Validate and save a configuration as the new current generation. Answered by
    /// [`Response::ConfigSaved`]; an invalid text is an [`ErrorKind::InvalidConfig`] error, and
    /// a save based on an older generation than the current one an
    /// [`ErrorKind::StaleGeneration`] error.
    ConfigSave {
        /// The whole `mfv.toml` text.
        text: String,
        /// The generation the text was based on ([`ConfigDocument::generation`]); `None` when
        /// there was no configuration.
        base_generation: Option<u64>,
    },
    /// Make a partition a config volume, erasing it. Answered by
    /// [`Response::VolumeFormatted`].
    FormatConfigVolume {
        /// The device node, e.g. `/dev/sdb1`.
        device: String,
        /// The file system to make.
        fs: VolumeFs,
        /// The device path again, exactly ([`check_format_confirmation`]).
        confirm: String,
    },
    /// The state of every service, or of one. Answered by [`Response::Services`].
    ServiceStatus {
        /// The service; `None` for all of them.
        name: Option<String>,
    },
    /// Restart a service. Answered by [`Response::ServiceRestarted`].
    ServiceRestart {
        /// The service.
        name: String,
    },
    /// The most recent log lines of the boot or of a service. Answered by
    /// [`Response::Logs`].
    Logs {
        /// Whose lines.
        source: LogSource,
        /// How many lines at most, 1 to [`MAX_LOG_LINES`].
        limit: u32,
    },
    /// Reboot the host. Answered by [`Response::Accepted`] before the shutdown starts.
    Reboot,
    /// Power the host off. Answered by [`Response::Accepted`] before the shutdown starts.
    PowerOff,
    /// Exchange the one-time setup token the console shows for the right to set the host up
    /// (the web server's config mode). Answered by [`Response::Accepted`] once, for the first
    /// client that presents the token; a wrong or used token is an
    /// [`ErrorKind::NotPermitted`] error, a host that is set up already an
    /// [`ErrorKind::Unavailable`] one.
    SetupClaim {
        /// The token as the person typed it (case, spaces and dashes do not matter).
        token: String,
    },
    /// The disks and partitions first-boot setup can put the configuration on. Answered by
    /// [`Response::SetupVolumes`].
    SetupVolumes,
    /// First-boot setup's save on a host without a configuration whose setup token was
    /// claimed: the configuration, the first administrator (among the local users) and the
    /// web server's key and certificate, written to the chosen volume, made first when asked.
    /// Answered by [`Response::SetupSaved`].
    SetupSave {
        /// The whole `mfv.toml`.
        config_text: String,
        /// Where it goes.
        volume: SetupVolume,
        /// The first administrator's user name.
        admin: String,
        /// Their password.
        password: Secret,
        /// The contents of the files `[auth]` names ([`SETUP_FILE_KEYS`]: a bind password,
        /// a CA certificate), by key, written to the volume where the configuration says.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        files: BTreeMap<String, Secret>,
    },
    /// Add a storage pool: append it to the configuration's `[[storage.pools]]` as a new
    /// generation and make it in libvirt now. Answered by [`Response::PoolAdded`]. A wrong
    /// field is an [`ErrorKind::InvalidRequest`] error naming it (`path`); a save based on an
    /// older generation an [`ErrorKind::StaleGeneration`] one. When libvirt cannot make the
    /// pool, nothing is saved and the error says why.
    StoragePoolAdd {
        /// The pool.
        pool: PoolSpec,
        /// The generation the change was based on; `None`: whatever is current.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_generation: Option<u64>,
    },
    /// Remove a storage pool from the configuration and from libvirt, leaving its data where
    /// it is. Answered by [`Response::PoolRemoved`]; a pool a VM has a disk in is an
    /// [`ErrorKind::Conflict`] error naming the VMs, an unknown one [`ErrorKind::NotFound`].
    StoragePoolRemove {
        /// The pool's name.
        name: String,
    },
}

/// The configuration keys whose files first-boot setup writes to the config volume (and an
/// auth test uses before there is one): the secrets and certificates `[auth]` names by path.
pub const SETUP_FILE_KEYS: [&str; 4] = [
    "auth.ldap.bind_password_file",
    "auth.ldap.ca_certificate",
    "auth.mysql.password_file",
    "auth.mysql.ca_certificate",
];

/// The largest file setup writes (a PEM bundle of several CA certificates fits).
pub const MAX_SETUP_FILE_LEN: usize = 64 * 1024;

/// Refuses files keyed by anything but [`SETUP_FILE_KEYS`], or larger than
/// [`MAX_SETUP_FILE_LEN`], as [`Request::validate`] does for [`Request::SetupSave`] and
/// [`Request::AuthTest`].
pub fn check_setup_files(files: &BTreeMap<String, Secret>) -> Result<(), ApiError> {
    for (key, content) in files {
        let field = format!("files.{key}");
        if !SETUP_FILE_KEYS.contains(&key.as_str()) {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "setup writes only the files of {}, not {key:?}",
                    SETUP_FILE_KEYS.join(", ")
                ),
            )
            .with_field(field));
        }
        if content.expose().len() > MAX_SETUP_FILE_LEN {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "is {} bytes long; a file setup writes is at most {MAX_SETUP_FILE_LEN}",
                    content.expose().len()
                ),
            )
            .with_field(field));
        }
    }
    Ok(())
}

impl Request {
    /// The request's name on the wire, e.g. `config_save`.
    pub fn name(&self) -> &'static str {
        match self {
            Request::HostStatus => "host_status",
            Request::Inventory => "inventory",
            Request::NetworkApply { .. } => "network_apply",
            Request::NetworkConfirm { .. } => "network_confirm",
            Request::ConfigGet => "config_get",
            Request::ConfigValidate { .. } => "config_validate",
            Request::AuthTest { .. } => "auth_test",
            Request::ConfigSave { .. } => "config_save",
            Request::FormatConfigVolume { .. } => "format_config_volume",
            Request::ServiceStatus { .. } => "service_status",
            Request::ServiceRestart { .. } => "service_restart",
            Request::Logs { .. } => "logs",
            Request::Reboot => "reboot",
            Request::PowerOff => "power_off",
            Request::SetupClaim { .. } => "setup_claim",
            Request::SetupVolumes => "setup_volumes",
            Request::SetupSave { .. } => "setup_save",
            Request::StoragePoolAdd { .. } => "storage_pool_add",
            Request::StoragePoolRemove { .. } => "storage_pool_remove",
        }
    }

    /// Checks what can be checked without the host: ranges, names that must not be empty,
    /// the format confirmation. Clients call it before sending and the server on receipt, so
    /// both refuse the same requests with the same [`ErrorKind::InvalidRequest`] errors.
    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            Request::NetworkApply {
                confirm_within_secs,
                ..
            } => check_range(
                "confirm_within_secs",
                *confirm_within_secs,
                MAX_CONFIRM_SECS,
            ),
            Request::FormatConfigVolume {
                device, confirm, ..
            } => check_format_confirmation(device, confirm),
            Request::ServiceStatus { name: Some(name) } | Request::ServiceRestart { name } => {
                check_name("name", name)
            }
            Request::Logs { source, limit } => {
                if let LogSource::Service { name } = source {
                    check_name("source.name", name)?;
                }
                check_range("limit", *limit, MAX_LOG_LINES)
            }
            Request::SetupClaim { token } => check_setup_token(token),
            Request::SetupSave {
                volume,
                admin,
                password,
                files,
                ..
            } => {
                if let SetupVolume::Format {
                    device, confirm, ..
                } = volume
                {
                    check_format_confirmation(device, confirm)?;
                }
                check_name("admin", admin)?;
                check_name("password", password.expose())?;
                check_setup_files(files)
            }
            Request::AuthTest { files, .. } => check_setup_files(files),
            Request::StoragePoolAdd { pool, .. } => check_name("name", &pool.name),
            Request::StoragePoolRemove { name } => check_name("name", name),
            _ => Ok(()),
        }
    }
}

/// The longest setup token a request may carry: the token with generous room for the
/// spaces and dashes a person types.
pub const MAX_SETUP_TOKEN_LEN: usize = 128;

/// Refuses a setup token that is empty or longer than [`MAX_SETUP_TOKEN_LEN`], as
/// [`Request::validate`] does for [`Request::SetupClaim`].
pub fn check_setup_token(token: &str) -> Result<(), ApiError> {
    check_name("token", token)?;
    if token.len() > MAX_SETUP_TOKEN_LEN {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "is {} bytes long; a setup token is at most {MAX_SETUP_TOKEN_LEN}",
                token.len()
            ),
        )
        .with_field("token"));
    }
    Ok(())
}

/// Refuses `value` outside 1..=`max`.
fn check_range(field: &str, value: u32, max: u32) -> Result<(), ApiError> {
    if (1..=max).contains(&value) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::InvalidRequest,
        format!("must be from 1 to {max}, got {value}"),
    )
    .with_field(field))
}

/// Refuses an empty name.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(
            ApiError::new(ErrorKind::InvalidRequest, "must not be empty").with_field(field),
        );
    }
    Ok(())
}

/// A successful answer. Serializes as an object whose `type` is the variant's snake_case
/// name; a newtype variant's fields stand beside it, e.g.
/// `{"type": "config_saved", "generation": 4}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// The host's status.
    HostStatus(HostStatus),
    /// The hardware inventory.
    ///
    /// It is carried as a [`serde_json::Value`]: mfv-probe's `Inventory` serialized as it is
    /// (NICs, block devices, USB devices, CPU, memory, issues), whose JSON mfv-probe already
    /// keeps stable. Copying its types here would make two definitions to keep in step and
    /// would not help the web server, which only passes the document on; and this crate must
    /// not depend on mfv-probe, which pulls in libblkid and nix. A program that links
    /// mfv-probe can deserialize the value into its `Inventory`.
    Inventory {
        /// mfv-probe's `Inventory`, serialized.
        inventory: serde_json::Value,
    },
    /// What became of a network change (apply or confirm).
    Network(NetworkOutcome),
    /// The configuration in use.
    Config(ConfigDocument),
    /// A validation's result.
    ConfigValidation {
        /// Every problem, in file order; empty when the text is valid.
        errors: Vec<ConfigIssue>,
    },
    /// The user backend of a configuration can be reached and used.
    AuthTested {
        /// `sqlite`, `ldap` or `mysql`.
        backend: String,
        /// What was checked, in one sentence: the server, the transport, the account and how
        /// many users it found, or where the local users are kept.
        message: String,
    },
    /// The configuration was saved.
    ConfigSaved {
        /// The new current generation.
        generation: u64,
    },
    /// A config volume was made.
    VolumeFormatted(FormattedVolume),
    /// Service states, by name (one when a name was asked for).
    Services {
        /// The services.
        services: Vec<ServiceStatus>,
    },
    /// A service was restarted.
    ServiceRestarted {
        /// Its state right after the restart.
        service: ServiceStatus,
    },
    /// Log lines, oldest first.
    Logs {
        /// The lines.
        lines: Vec<LogLine>,
    },
    /// The request was accepted and is being carried out (reboot, power off).
    Accepted,
    /// The disks and partitions setup can use, in the kernel's order, each disk before its
    /// partitions.
    SetupVolumes {
        /// The choices.
        volumes: Vec<VolumeChoice>,
    },
    /// First-boot setup's save is on the volume.
    SetupSaved {
        /// The config volume's device node.
        device: String,
        /// The configuration's generation on it.
        generation: u64,
        /// Whether the volume was made now.
        formatted: bool,
        /// When the host runs with it.
        in_use: SetupInUse,
    },
    /// A storage pool was added to the configuration and is ready in libvirt.
    PoolAdded {
        /// The configuration's new generation.
        generation: u64,
    },
    /// A storage pool was removed from the configuration and from libvirt; its data stays.
    PoolRemoved {
        /// The configuration's new generation; `None` when only libvirt had the pool.
        generation: Option<u64>,
        /// Whether libvirt had the pool (it was stopped and forgotten).
        was_defined: bool,
    },
}

impl Response {
    /// The response's name on the wire, e.g. `config_saved`.
    pub fn name(&self) -> &'static str {
        match self {
            Response::HostStatus(_) => "host_status",
            Response::Inventory { .. } => "inventory",
            Response::Network(_) => "network",
            Response::Config(_) => "config",
            Response::ConfigValidation { .. } => "config_validation",
            Response::AuthTested { .. } => "auth_tested",
            Response::ConfigSaved { .. } => "config_saved",
            Response::VolumeFormatted(_) => "volume_formatted",
            Response::Services { .. } => "services",
            Response::ServiceRestarted { .. } => "service_restarted",
            Response::Logs { .. } => "logs",
            Response::Accepted => "accepted",
            Response::SetupVolumes { .. } => "setup_volumes",
            Response::SetupSaved { .. } => "setup_saved",
            Response::PoolAdded { .. } => "pool_added",
            Response::PoolRemoved { .. } => "pool_removed",
        }
    }
}

/// A reply frame: `{"ok": ...}` with the payload or `{"error": ...}` with an [`ApiError`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    /// The request succeeded.
    Ok(T),
    /// The request failed.
    Error(ApiError),
}

impl<T> From<Result<T, ApiError>> for Reply<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(value) => Reply::Ok(value),
            Err(error) => Reply::Error(error),
        }
    }
}

impl<T> From<Reply<T>> for Result<T, ApiError> {
    fn from(reply: Reply<T>) -> Self {
        match reply {
            Reply::Ok(value) => Ok(value),
            Reply::Error(error) => Err(error),
        }
    }
}
