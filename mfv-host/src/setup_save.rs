//! First-boot setup's save: what config mode asks the host daemon to do as root once the
//! operator reviewed the configuration. It writes the configuration, the first administrator
//! and the web server's key and certificate (and the files `[auth]` names,
//! [`crate::setup_files`]) to the config volume the operator chose (made
//! there first when the operator asked for a new one).
//!
//! Nothing is written before everything that can be checked without the volume was checked
//! (the configuration, the administrator's name and password, the format's confirmation).
//! On the volume, `mfv.toml` is written last: discovery takes a volume as a configuration
//! only when it holds one, so a save that fails halfway leaves a volume that the next boot
//! still sets up, and the same save can be sent again (an administrator already in the
//! database gets the new password and the admin role instead of a second account).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mfv_auth::{Actor, AuthError, Password, Role, UserRecord, Username};
use mfv_config::format::{FormatError, FsKind, format_config_volume};
use mfv_config::schema::{AuthBackend, ConfigErrors, parse_config};
use mfv_config::store::{ConfigStore, StoreError};

use mfv_api::{VolumeChoice, VolumeContents};
use mfv_config::discovery::CONFIG_VOLUME_LABEL;
use mfv_probe::{BlockDevice, BlockKind};

use crate::auth::{AuthOverrides, AuthSettings, AuthSetupError, MissingDatabase};
use crate::config::{ConfigKeyError, StoreVolume, VOLUME_LOCK_WAIT, VolumeLock};
use crate::setup_files::{self, SetupFile, SetupFileError};
use crate::web_identity::{self, WebIdentityError};

/// Where the configuration goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupVolume {
    /// A volume that has a file system already (an `mfv-config` volume, or one the operator
    /// made).
    Existing {
        /// Its device node.
        device: PathBuf,
    },
    /// A partition or disk to erase and make a config volume.
    Format {
        /// Its device node.
        device: PathBuf,
        /// The file system to make.
        fs: FsKind,
        /// The device node again, as the operator typed it to confirm the erasure.
        confirm: String,
    },
}

/// What the save needs.
#[derive(Debug, Clone)]
pub struct SetupSave {
    /// The whole `mfv.toml`.
    pub config_text: String,
    /// Where it goes.
    pub volume: SetupVolume,
    /// The first administrator's name.
    pub admin: String,
    /// Their password.
    pub password: Password,
    /// The contents of the files `[auth]` names, by key ([`crate::setup_files`]).
    pub files: BTreeMap<String, mfv_api::Secret>,
}

/// What the save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSaved {
    /// The config volume's device node.
    pub device: PathBuf,
    /// The configuration's generation on it.
    pub generation: u64,
    /// Whether the volume was made now.
    pub formatted: bool,
}

/// Why the save did not happen, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SetupSaveError {
    /// The configuration is invalid; nothing was written.
    #[error("the configuration is invalid; nothing was written")]
    InvalidConfig(#[source] ConfigErrors),
    /// The administrator's name is not a user name; nothing was written.
    #[error("the administrator's name {name:?} cannot be used: {reason}; nothing was written")]
    AdminName {
        /// The name given.
        name: String,
        /// Why.
        reason: String,
    },
    /// The password is shorter than the configuration's `[auth] min_password_length`;
    /// nothing was written.
    #[error(
        "the administrator's password has {chars} characters; this configuration asks for at \
         least {min} ([auth] min_password_length); nothing was written"
    )]
    PasswordTooShort {
        /// Its length in characters.
        chars: usize,
        /// The minimum.
        min: u32,
    },
    /// A file `[auth]` names cannot go where the configuration says (nothing was written),
    /// or could not be written.
    #[error(transparent)]
    File(SetupFileError),
    /// The volume could not be made.
    #[error("cannot make the config volume")]
    Format(#[source] FormatError),
    /// The volume could not be opened (mounted, locked).
    #[error("cannot open the config volume {}", device.display())]
    Volume {
        /// The device.
        device: PathBuf,
        /// Why.
        #[source]
        source: Box<ConfigKeyError>,
    },
    /// The auth database could not be opened or the administrator not written.
    #[error("cannot write the administrator {admin} to the auth database")]
    Admin {
        /// The administrator.
        admin: String,
        /// Why.
        #[source]
        source: Box<AdminWriteError>,
    },
    /// The web server's key and certificate could not be kept.
    #[error("cannot keep the web server's key and certificate on the config volume")]
    Identity(#[source] WebIdentityError),
    /// The configuration could not be saved.
    #[error("cannot save the configuration")]
    Store(#[source] StoreError),
}

/// Why the administrator could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AdminWriteError {
    /// The volume could not be switched to read-write or back.
    #[error(transparent)]
    Volume(#[from] mfv_config::store::VolumeError),
    /// The runtime the auth library runs on could not start.
    #[error("cannot start the runtime for the auth database: {0}")]
    Runtime(#[source] std::io::Error),
    /// The auth database could not be opened.
    #[error(transparent)]
    Open(#[from] AuthSetupError),
    /// The database refused the change.
    #[error(transparent)]
    Change(#[from] AuthError),
    /// The database could not be read.
    #[error(transparent)]
    Read(#[from] mfv_auth::BackendError),
}

/// The disks and partitions among `devices` (the inventory's) setup can put the
/// configuration on: every disk that is not read-only and holds a medium (no CD, floppy,
/// loop or RAM disk, no card reader without a card), each followed by its partitions.
pub fn volume_choices(devices: &[BlockDevice]) -> Vec<VolumeChoice> {
    let mut choices = Vec::new();
    for disk in devices.iter().filter(|device| {
        device.kind == BlockKind::Disk && !device.read_only && !device.has_no_medium()
    }) {
        let holds = if !disk.partitions.is_empty() || disk.partition_table.is_some() {
            VolumeContents::Partitions
        } else {
            contents(disk.fs_type.as_deref(), disk.label.as_deref())
        };
        let mut choice = VolumeChoice::new(format!("/dev/{}", disk.name), disk.size_bytes, holds);
        choice.model = disk.model.clone();
        choice.removable = disk.removable;
        choice.fs_type = disk.fs_type.clone();
        choice.label = disk.label.clone();
        choices.push(choice);
        for partition in disk
            .partitions
            .iter()
            .filter(|partition| !partition.read_only)
        {
            let mut choice = VolumeChoice::new(
                format!("/dev/{}", partition.name),
                partition.size_bytes,
                contents(partition.fs_type.as_deref(), partition.label.as_deref()),
            );
            choice.model = disk.model.clone();
            choice.removable = disk.removable;
            choice.fs_type = partition.fs_type.clone();
            choice.label = partition.label.clone();
            choices.push(choice);
        }
    }
    choices
}

/// What a file system of `fs_type` labelled `label` is to setup.
fn contents(fs_type: Option<&str>, label: Option<&str>) -> VolumeContents {
    match (fs_type, label) {
        (None, _) => VolumeContents::Nothing,
        (Some(_), Some(label)) if label.eq_ignore_ascii_case(CONFIG_VOLUME_LABEL) => {
            VolumeContents::ConfigVolume
        }
        (Some(_), _) => VolumeContents::FileSystem,
    }
}

/// Checks `save`, makes its volume when asked, and writes the administrator, the web
/// identity published in `published_web_dir` and the configuration (last) to it. `run_dir`
/// is where volumes are mounted and the volume lock is.
pub fn save(
    run_dir: &Path,
    published_web_dir: &Path,
    save: &SetupSave,
) -> Result<SetupSaved, SetupSaveError> {
    let config = parse_config(&save.config_text).map_err(SetupSaveError::InvalidConfig)?;
    let admin = Username::new(save.admin.clone()).map_err(|error| SetupSaveError::AdminName {
        name: save.admin.clone(),
        reason: error.to_string(),
    })?;
    let chars = save.password.expose().chars().count();
    let min = config.auth.min_password_length;
    if chars < usize::try_from(min).unwrap_or(usize::MAX) {
        return Err(SetupSaveError::PasswordTooShort { chars, min });
    }
    let files = setup_files::resolve(&config.auth, &save.files).map_err(SetupSaveError::File)?;
    let (device, formatted) = match &save.volume {
        SetupVolume::Existing { device } => (device.clone(), false),
        SetupVolume::Format {
            device,
            fs,
            confirm,
        } => {
            let volume_lock = VolumeLock::take(run_dir, VOLUME_LOCK_WAIT).map_err(|error| {
                SetupSaveError::Volume {
                    device: device.clone(),
                    source: Box::new(error),
                }
            })?;
            format_config_volume(device, *fs, confirm).map_err(SetupSaveError::Format)?;
            drop(volume_lock);
            (device.clone(), true)
        }
    };
    let volume =
        StoreVolume::for_setup(&device, run_dir).map_err(|error| SetupSaveError::Volume {
            device: device.clone(),
            source: Box::new(error),
        })?;
    let written = write_to_volume(
        &volume,
        &config.auth,
        &admin,
        &files,
        save,
        published_web_dir,
    );
    let closed = volume.close();
    let generation = written?;
    if let Err(error) = closed {
        return Err(SetupSaveError::Volume {
            device,
            source: Box::new(error),
        });
    }
    Ok(SetupSaved {
        device,
        generation,
        formatted,
    })
}

/// The files `[auth]` names and the administrator, the identity, then the configuration;
/// its generation.
fn write_to_volume(
    volume: &StoreVolume,
    auth: &mfv_config::schema::AuthConfig,
    admin: &Username,
    files: &[SetupFile],
    save: &SetupSave,
    published_web_dir: &Path,
) -> Result<u64, SetupSaveError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| SetupSaveError::Admin {
            admin: admin.as_str().to_owned(),
            source: Box::new(AdminWriteError::Runtime(error)),
        })?;
    let access = volume.access();
    let admin_error = |error| SetupSaveError::Admin {
        admin: admin.as_str().to_owned(),
        source: Box::new(error),
    };
    access
        .make_writable()
        .map_err(|error| admin_error(AdminWriteError::Volume(error)))?;
    if let Err(error) = setup_files::write(volume.dir(), files) {
        // Back to read-only whatever happens; the file's failure is the one to tell.
        let _ = access.make_read_only();
        return Err(SetupSaveError::File(error));
    }
    // The authenticator, and its database file, is closed before the volume goes back to
    // read-only.
    let written = runtime.block_on(write_admin(volume.dir(), auth, admin, &save.password));
    let read_only = access.make_read_only();
    written.map_err(admin_error)?;
    read_only.map_err(|error| admin_error(AdminWriteError::Volume(error)))?;
    let identity =
        web_identity::WebIdentity::read(published_web_dir).map_err(SetupSaveError::Identity)?;
    web_identity::keep(volume.store(), &identity).map_err(SetupSaveError::Identity)?;
    let saved = volume
        .store()
        .save(&save.config_text)
        .map_err(SetupSaveError::Store)?;
    Ok(saved.generation)
}

/// `admin` as an administrator with `password` among the local users (the SQLite auth
/// database the configuration names, whatever backend it uses for the others).
async fn write_admin(
    volume_dir: &Path,
    auth: &mfv_config::schema::AuthConfig,
    admin: &Username,
    password: &Password,
) -> Result<(), AdminWriteError> {
    let local = AuthOverrides {
        backend: Some(AuthBackend::Sqlite),
        ..AuthOverrides::default()
    };
    let authenticator = AuthSettings::from_config(auth.clone(), volume_dir)
        .with_overrides(local)
        .open(MissingDatabase::Create)
        .await?;
    match authenticator.find_user(admin).await? {
        None => {
            let record = UserRecord {
                username: admin.clone(),
                display_name: String::new(),
                role: Role::Admin,
                disabled: false,
                account_id: None,
            };
            authenticator
                .add_user(&Actor::Local, &record, password)
                .await?;
        }
        Some(existing) => {
            authenticator
                .set_password(&Actor::Local, admin, password)
                .await?;
            if existing.role != Role::Admin {
                authenticator
                    .set_role(&Actor::Local, admin, Role::Admin)
                    .await?;
            }
            if existing.disabled {
                authenticator
                    .set_disabled(&Actor::Local, admin, false)
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mfv_probe::Partition;

    use super::*;

    fn disk(name: &str, kind: BlockKind) -> BlockDevice {
        BlockDevice {
            name: name.to_owned(),
            kind,
            size_bytes: 1 << 30,
            vendor: None,
            model: Some("QEMU HARDDISK".to_owned()),
            serial: None,
            removable: false,
            rotational: false,
            read_only: false,
            is_virtual: false,
            backing_file: None,
            partition_table: None,
            fs_type: None,
            label: None,
            uuid: None,
            partitions: Vec::new(),
            issues: Vec::new(),
        }
    }

    fn partition(name: &str, fs_type: Option<&str>, label: Option<&str>) -> Partition {
        Partition {
            name: name.to_owned(),
            number: None,
            start_bytes: None,
            size_bytes: 1 << 20,
            read_only: false,
            fs_type: fs_type.map(str::to_owned),
            label: label.map(str::to_owned),
            uuid: None,
        }
    }

    #[test]
    fn disks_and_their_partitions_are_choices_and_say_what_they_hold() {
        let blank = disk("vdb", BlockKind::Disk);
        let mut stick = disk("sdb", BlockKind::Disk);
        stick.removable = true;
        stick.partition_table = Some("dos".to_owned());
        stick.partitions = vec![
            partition("sdb1", Some("vfat"), Some("MFV-CONFIG")),
            partition("sdb2", Some("ext4"), Some("data")),
            partition("sdb3", None, None),
        ];
        let mut read_only = disk("vdc", BlockKind::Disk);
        read_only.read_only = true;
        let mut card_reader = disk("sdc", BlockKind::Disk);
        card_reader.removable = true;
        card_reader.size_bytes = 0;
        let devices = [
            blank,
            stick,
            read_only,
            card_reader,
            disk("sr0", BlockKind::Optical),
            disk("loop0", BlockKind::Loop),
        ];
        let choices = volume_choices(&devices);
        let summary: Vec<(&str, VolumeContents, bool)> = choices
            .iter()
            .map(|choice| (choice.device.as_str(), choice.holds, choice.removable))
            .collect();
        assert_eq!(
            summary,
            [
                ("/dev/vdb", VolumeContents::Nothing, false),
                ("/dev/sdb", VolumeContents::Partitions, true),
                ("/dev/sdb1", VolumeContents::ConfigVolume, true),
                ("/dev/sdb2", VolumeContents::FileSystem, true),
                ("/dev/sdb3", VolumeContents::Nothing, true),
            ]
        );
        assert_eq!(choices[2].label.as_deref(), Some("MFV-CONFIG"));
        assert_eq!(choices[0].model.as_deref(), Some("QEMU HARDDISK"));
    }
}
