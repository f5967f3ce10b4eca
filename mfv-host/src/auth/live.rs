//! The auth database in use on a host that runs from RAM: a working copy in
//! `/run/mfv/auth`, written back to the config volume when it changed.
//!
//! Why a copy: the config volume stays mounted read-only but for the moment of a write, and
//! the web server, which checks sessions on every page, runs as its own user and may not
//! write it. So when the host starts with a configuration (and when first-boot setup saved
//! one), the host daemon copies the auth database and the files `[auth]` names (password
//! files, CA certificates) from the volume into [`RUN_SUBDIR`], readable and writable by root
//! and the web server's group, and writes [`SETTINGS_FILE`]: the `[auth]` section with those
//! files' new places; the database keeps its path relative to the directory (`users.sqlite`
//! by default). The web server, the console and `mfv` open the copy ([`settings`]); the
//! daemon writes it back ([`write_back`]) when [`Fingerprint`] says it changed, and before the
//! host stops. A power cut loses at most the changes since the last write-back; the volume
//! always holds a whole database, never half of one (a consistent copy is written beside it
//! and renamed over it).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mfv_config::schema::AuthConfig;
use mfv_linux::error_chain;
use serde::{Deserialize, Serialize};

use super::AuthSettings;

/// The working copy's directory in PID 1's runtime directory.
pub const RUN_SUBDIR: &str = "auth";
/// What the working copy was made from, and the `[auth]` section that uses it.
pub const SETTINGS_FILE: &str = "settings.json";
/// The copies of the files `[auth]` names.
const FILES_SUBDIR: &str = "files";

/// The working copy could not be made, read or written back.
#[derive(Debug, thiserror::Error)]
pub enum LiveAuthError {
    /// A file or directory could not be made or copied.
    #[error("{action} {}", .path.display())]
    Io {
        /// What was being done (`copy`, `create`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not what [`publish`] writes.
    #[error("{} is not a working copy's settings: {reason}", .path.display())]
    Settings {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// SQLite could not copy the database.
    #[error("cannot copy the auth database")]
    Copy(#[source] mfv_auth::StoreError),
}

/// [`SETTINGS_FILE`]'s contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LiveSettings {
    /// The `[auth]` section, its files' paths pointing into the working copy.
    auth: AuthConfig,
    /// The database's path on the config volume, relative to the volume.
    volume_database: PathBuf,
}

/// The working copy's directory under `run_dir`.
pub fn live_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(RUN_SUBDIR)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LiveAuthError {
    let path = path.to_owned();
    move |source| LiveAuthError::Io {
        action,
        path,
        source,
    }
}

/// Makes the working copy's directory in `run_dir`, for root and `group` (the web
/// server's): every later [`publish`] shares its files with the directory's group.
pub fn prepare(run_dir: &Path, group: Option<nix::unistd::Gid>) -> Result<(), LiveAuthError> {
    let dir = live_dir(run_dir);
    let files = dir.join(FILES_SUBDIR);
    std::fs::create_dir_all(&files).map_err(io("create", &files))?;
    // Set-group-id: the journal files SQLite makes beside the database get its group.
    share(&dir, 0o2770, group)?;
    share(&files, 0o2750, group)
}

/// Makes the working copy of the auth database and files that `auth` names on the volume
/// mounted at `volume_dir`, in `run_dir` (made by [`prepare`] if it is not yet, without a
/// group), shared with its directory's group. A volume without the database yet gives a
/// working copy without one (the first user makes it).
pub fn publish(volume_dir: &Path, auth: &AuthConfig, run_dir: &Path) -> Result<(), LiveAuthError> {
    let dir = live_dir(run_dir);
    let files = dir.join(FILES_SUBDIR);
    if !files.is_dir() {
        prepare(run_dir, None)?;
    }
    let group = std::fs::metadata(&dir)
        .map(|metadata| Some(nix::unistd::Gid::from_raw(metadata.gid())))
        .map_err(io("read", &dir))?;

    let volume_database = AuthSettings::from_config(auth.clone(), volume_dir).database();
    let relative = volume_database
        .strip_prefix(volume_dir)
        .map_err(|_| LiveAuthError::Settings {
            path: volume_database.clone(),
            reason: "the auth database is not on the config volume".to_owned(),
        })?
        .to_owned();
    let copy = dir.join(&relative);
    if let Some(parent) = copy.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    for stale in [copy.clone(), wal(&copy), shm(&copy)] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io("remove", &stale)(error)),
        }
    }
    if volume_database.exists() {
        // The volume is mounted read-only and nothing writes the database there, so its files
        // are copied as they are: SQLite could not open a WAL database on a read-only mount to
        // copy it its own way (it needs to make the shared-memory file beside it).
        std::fs::copy(&volume_database, &copy).map_err(io("copy", &volume_database))?;
        share(&copy, 0o660, group)?;
        let volume_wal = wal(&volume_database);
        if volume_wal.exists() {
            std::fs::copy(&volume_wal, wal(&copy)).map_err(io("copy", &volume_wal))?;
            share(&wal(&copy), 0o660, group)?;
        }
    }

    let mut live = auth.clone();
    let copy_file = |name: &str, path: &mut Option<String>| -> Result<(), LiveAuthError> {
        let Some(given) = path.as_deref() else {
            return Ok(());
        };
        let source = volume_dir.join(given);
        let target = files.join(name);
        std::fs::copy(&source, &target).map_err(io("copy", &source))?;
        share(&target, 0o640, group)?;
        *path = Some(target.to_string_lossy().into_owned());
        Ok(())
    };
    if let Some(ldap) = live.ldap.as_mut() {
        copy_file("ldap-bind-password", &mut ldap.bind_password_file)?;
        copy_file("ldap-ca.pem", &mut ldap.ca_certificate)?;
    }
    if let Some(mysql) = live.mysql.as_mut() {
        copy_file("mysql-password", &mut mysql.password_file)?;
        copy_file("mysql-ca.pem", &mut mysql.ca_certificate)?;
    }
    let settings = LiveSettings {
        auth: live,
        volume_database: relative,
    };
    let path = dir.join(SETTINGS_FILE);
    let text = serde_json::to_vec_pretty(&settings).map_err(|error| LiveAuthError::Settings {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    mfv_linux::atomic_file::replace_file(&path, &text, 0o640)
        .map_err(|failure| io("write", &path)(std::io::Error::other(error_chain(&failure))))?;
    share(&path, 0o640, group)
}

/// The auth settings of the working copy in `run_dir`, if the host has one: the `[auth]`
/// section as the volume has it, with the copied files and the database in the working
/// copy.
pub fn settings(run_dir: &Path) -> Result<Option<AuthSettings>, LiveAuthError> {
    let Some(live) = read_settings(run_dir)? else {
        return Ok(None);
    };
    Ok(Some(AuthSettings::from_config(
        live.auth,
        live_dir(run_dir),
    )))
}

/// The working copy of the database in `run_dir`, if the host has one.
pub fn database(run_dir: &Path) -> Result<Option<PathBuf>, LiveAuthError> {
    Ok(read_settings(run_dir)?.map(|live| live_dir(run_dir).join(live.volume_database)))
}

fn read_settings(run_dir: &Path) -> Result<Option<LiveSettings>, LiveAuthError> {
    let path = live_dir(run_dir).join(SETTINGS_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io("read", &path)(error)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|error| LiveAuthError::Settings {
            path,
            reason: error.to_string(),
        })
}

/// What the working copy's files look like now: when it changes, the copy has changes the
/// volume lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<Option<(SystemTime, u64)>>);

/// The working copy's [`Fingerprint`] in `run_dir` (empty without one).
pub fn fingerprint(run_dir: &Path) -> Fingerprint {
    let Ok(Some(copy)) = database(run_dir) else {
        return Fingerprint(Vec::new());
    };
    // An empty write-ahead log holds nothing to write back: SQLite leaves one behind when a
    // connection opens the copy (the write-back's own does), and counting it as a change
    // would write the same database back once more.
    Fingerprint(
        [copy.clone(), wal(&copy)]
            .iter()
            .map(|path| {
                let metadata = std::fs::metadata(path).ok()?;
                (metadata.len() > 0 || path == &copy)
                    .then_some(())
                    .and_then(|()| Some((metadata.modified().ok()?, metadata.len())))
            })
            .collect(),
    )
}

/// Writes the working copy in `run_dir` back to the volume mounted writable at
/// `volume_dir`: a consistent copy beside the volume's database, synced, renamed over it.
/// `false` when there is nothing to write (no working copy, or no database in it yet).
pub fn write_back(run_dir: &Path, volume_dir: &Path) -> Result<bool, LiveAuthError> {
    let Some(live) = read_settings(run_dir)? else {
        return Ok(false);
    };
    let copy = live_dir(run_dir).join(&live.volume_database);
    if !copy.exists() {
        return Ok(false);
    }
    let target = volume_dir.join(&live.volume_database);
    let mut new = target.clone().into_os_string();
    new.push(".new");
    let new = PathBuf::from(new);
    match std::fs::remove_file(&new) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io("remove", &new)(error)),
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    mfv_auth::SqliteState::copy_blocking(&copy, &new).map_err(LiveAuthError::Copy)?;
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600))
        .map_err(io("chmod", &new))?;
    std::fs::File::open(&new)
        .and_then(|file| file.sync_all())
        .map_err(io("sync", &new))?;
    std::fs::rename(&new, &target).map_err(io("rename", &new))?;
    // The volume's database was closed cleanly: no journal of its own to keep.
    for stale in [wal(&target), shm(&target)] {
        let _ = std::fs::remove_file(stale);
    }
    if let Some(parent) = target.parent() {
        mfv_linux::atomic_file::sync_directory(parent)
            .map_err(|failure| io("sync", parent)(std::io::Error::other(error_chain(&failure))))?;
    }
    Ok(true)
}

fn wal(database: &Path) -> PathBuf {
    suffixed(database, "-wal")
}

fn shm(database: &Path) -> PathBuf {
    suffixed(database, "-shm")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Gives `path` `mode`, owned by root (when this process is) and `group`.
fn share(path: &Path, mode: u32, group: Option<nix::unistd::Gid>) -> Result<(), LiveAuthError> {
    if let Some(group) = group {
        nix::unistd::chown(path, None, Some(group))
            .map_err(|errno| io("chown", path)(std::io::Error::from(errno)))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use mfv_auth::{Actor, Password, Role, UserRecord, Username};
    use mfv_config::schema::parse_config;

    use super::*;
    use crate::auth::MissingDatabase;

    const PASSWORD: &str = "a password long enough";

    fn auth_section(text: &str) -> AuthConfig {
        let text = format!("version = 1\n[host]\nhostname = \"node1\"\n{text}");
        parse_config(&text)
            .unwrap_or_else(|errors| panic!("{errors}"))
            .auth
    }

    async fn add_user(settings: &AuthSettings, name: &str) {
        let authenticator = settings.open(MissingDatabase::Create).await.unwrap();
        let record = UserRecord {
            username: Username::new(name).unwrap(),
            display_name: String::new(),
            role: Role::Admin,
            disabled: false,
            account_id: None,
        };
        authenticator
            .add_user(&Actor::Local, &record, &Password::new(PASSWORD).unwrap())
            .await
            .unwrap();
    }

    async fn logs_in(settings: &AuthSettings, name: &str) -> bool {
        let authenticator = settings.open(MissingDatabase::Refuse).await.unwrap();
        authenticator
            .login(name, PASSWORD, None, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_working_copy_is_used_and_its_changes_reach_the_volume_whole() {
        let volume = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        let auth = auth_section("[auth.sqlite]\npath = \"state/users.sqlite\"\n");
        std::fs::create_dir(volume.path().join("state")).unwrap();
        let on_volume = AuthSettings::from_config(auth.clone(), volume.path());
        add_user(&on_volume, "ada").await;

        publish(volume.path(), &auth, run.path()).unwrap();
        let live = settings(run.path()).unwrap().unwrap();
        assert!(logs_in(&live, "ada").await);
        let before = fingerprint(run.path());
        add_user(&live, "bob").await;
        assert_ne!(
            fingerprint(run.path()),
            before,
            "a change changes the fingerprint"
        );
        // Not on the volume until written back.
        assert!(!logs_in(&on_volume, "bob").await);

        let changed = fingerprint(run.path());
        assert!(write_back(run.path(), volume.path()).unwrap());
        assert_eq!(
            fingerprint(run.path()),
            changed,
            "writing back is no change of the working copy"
        );
        assert!(logs_in(&on_volume, "bob").await);
        assert!(!volume.path().join("state/users.sqlite.new").exists());
        let mode = std::fs::metadata(volume.path().join("state/users.sqlite"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let copy_mode = std::fs::metadata(live_dir(run.path()).join("state/users.sqlite"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(copy_mode & 0o777, 0o660);
    }

    #[test]
    fn the_files_auth_names_are_copied_and_the_section_points_at_the_copies() {
        let volume = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir(volume.path().join("secrets")).unwrap();
        std::fs::write(volume.path().join("secrets/bind"), "s3cret\n").unwrap();
        let auth = auth_section(
            "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldaps://ldap.example.org\"\n\
             base_dn = \"ou=people,dc=example,dc=org\"\nbind_dn = \"cn=svc,dc=example,dc=org\"\n\
             bind_password_file = \"secrets/bind\"\n",
        );
        publish(volume.path(), &auth, run.path()).unwrap();
        let resolved = settings(run.path()).unwrap().unwrap().resolve().unwrap();
        let crate::auth::BackendSettings::Ldap(ldap) = resolved.backend else {
            panic!("not LDAP");
        };
        assert_eq!(ldap.bind_password, "s3cret");
        assert_eq!(resolved.database, live_dir(run.path()).join("users.sqlite"));
        // Nothing to write back before the first user.
        assert!(!write_back(run.path(), volume.path()).unwrap());
    }

    #[test]
    fn a_missing_file_names_it_and_no_working_copy_means_none() {
        let volume = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        assert!(settings(run.path()).unwrap().is_none());
        assert!(!write_back(run.path(), volume.path()).unwrap());
        let auth = auth_section(
            "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db.example.org\"\n\
             database = \"mfv\"\nuser = \"mfv\"\npassword_file = \"secrets/db\"\ntls = true\n",
        );
        let error = publish(volume.path(), &auth, run.path()).unwrap_err();
        assert!(
            error_chain(&error).contains("secrets/db"),
            "{}",
            error_chain(&error)
        );

        std::fs::create_dir_all(live_dir(run.path())).unwrap();
        std::fs::write(live_dir(run.path()).join(SETTINGS_FILE), "{").unwrap();
        let error = settings(run.path()).unwrap_err();
        assert!(error.to_string().contains(SETTINGS_FILE), "{error}");
    }
}
