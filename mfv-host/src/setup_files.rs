//! The files `[auth]` names by path (a bind password, a CA certificate) that first-boot setup
//! writes to the config volume beside `mfv.toml`.
//!
//! A configuration keeps secrets out of its text: `bind_password_file = "secrets/ldap"`
//! names a file on the volume. On a host being set up there is no volume yet, so the
//! operator gives the file's content with the configuration, keyed by the setting that names
//! it ([`mfv_api::SETUP_FILE_KEYS`]). The path comes from the configuration, never from the
//! request, and must stay on the volume and off the files the host keeps there itself, so a
//! setup request can write nothing but what its configuration reads. The auth test uses the
//! same files in a private directory before the volume exists.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use mfv_api::Secret;
use mfv_config::schema::{AuthConfig, default_sqlite_path};

/// Names on the volume that are the host's own: no setup file may be written there.
const RESERVED: [&str; 8] = [
    mfv_config::store::directory::CURRENT_FILE_NAME,
    mfv_config::store::directory::PREVIOUS_FILE_NAME,
    crate::web_identity::STORE_DIR,
    crate::vm::DEFINITIONS_DIR,
    crate::vm_keeper::PREVIOUS_DEFINITIONS_DIR,
    crate::vm_keeper::NEW_DEFINITIONS_DIR,
    "lost+found",
    ".mfv.toml.new",
];

/// A file to write: where on the volume, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFile {
    /// The setting that names it (`auth.ldap.bind_password_file`).
    pub key: String,
    /// Its path relative to the volume, from the configuration.
    pub path: PathBuf,
    /// Its content.
    pub content: Secret,
}

/// A setup file that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SetupFileError {
    /// The configuration does not set the key the file is given for.
    #[error("the configuration does not set {key}, so its file has nowhere to go")]
    NotNamed {
        /// The key.
        key: String,
    },
    /// The key is not one whose file setup writes.
    #[error("setup writes only the files of {}, not {key:?}", mfv_api::SETUP_FILE_KEYS.join(", "))]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// The configured path leaves the volume, or is one of the host's own files.
    #[error(
        "{key} is {path:?}: setup writes only a relative path on the config volume, outside \
         the host's own files ({})",
        RESERVED.join(", ")
    )]
    OffVolume {
        /// The key.
        key: String,
        /// The path the configuration gives.
        path: String,
    },
    /// The file could not be written.
    #[error("cannot write the file of {key} to {}", path.display())]
    Write {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SetupFileError {
    /// The request's field at fault (`files.auth.ldap.bind_password_file`), or the setting.
    pub fn field(&self) -> String {
        match self {
            SetupFileError::OffVolume { key, .. } => key.clone(),
            SetupFileError::NotNamed { key }
            | SetupFileError::UnknownKey { key }
            | SetupFileError::Write { key, .. } => format!("files.{key}"),
        }
    }
}

/// Where each of `files` goes on the volume, from `auth`'s settings; refuses a key the
/// configuration does not set, and a path that is absolute, climbs out, or is the host's own.
pub fn resolve(
    auth: &AuthConfig,
    files: &BTreeMap<String, Secret>,
) -> Result<Vec<SetupFile>, SetupFileError> {
    files
        .iter()
        .map(|(key, content)| {
            let configured = match key.as_str() {
                "auth.ldap.bind_password_file" => auth
                    .ldap
                    .as_ref()
                    .and_then(|ldap| ldap.bind_password_file.clone()),
                "auth.ldap.ca_certificate" => auth
                    .ldap
                    .as_ref()
                    .and_then(|ldap| ldap.ca_certificate.clone()),
                "auth.mysql.password_file" => auth
                    .mysql
                    .as_ref()
                    .and_then(|mysql| mysql.password_file.clone()),
                "auth.mysql.ca_certificate" => auth
                    .mysql
                    .as_ref()
                    .and_then(|mysql| mysql.ca_certificate.clone()),
                _ => return Err(SetupFileError::UnknownKey { key: key.clone() }),
            };
            let path = configured.ok_or_else(|| SetupFileError::NotNamed { key: key.clone() })?;
            let sqlite_path = auth
                .sqlite
                .as_ref()
                .map_or_else(default_sqlite_path, |sqlite| sqlite.path.clone());
            if !on_volume(Path::new(&path), &sqlite_path) {
                return Err(SetupFileError::OffVolume {
                    key: key.clone(),
                    path,
                });
            }
            Ok(SetupFile {
                key: key.clone(),
                path: PathBuf::from(path),
                content: content.clone(),
            })
        })
        .collect()
}

/// Whether `path` is relative, stays below the volume's root, and names none of the host's
/// own files there (nor the local users database at `sqlite_path`).
fn on_volume(path: &Path, sqlite_path: &str) -> bool {
    let mut components = path
        .components()
        .filter(|component| *component != Component::CurDir);
    let Some(Component::Normal(first)) = components.next() else {
        return false;
    };
    let reserved = RESERVED
        .iter()
        .chain([&sqlite_path])
        .any(|name| first == std::ffi::OsStr::new(name));
    !reserved && components.all(|component| matches!(component, Component::Normal(_)))
}

/// Writes `files` below `dir` (the mounted volume, or the auth test's directory), each
/// readable by root alone, replaced whole.
pub fn write(dir: &Path, files: &[SetupFile]) -> Result<(), SetupFileError> {
    for file in files {
        let path = dir.join(&file.path);
        let write_error = |source| SetupFileError::Write {
            key: file.key.clone(),
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        mfv_linux::atomic_file::replace_file(&path, file.content.expose().as_bytes(), 0o600)
            .map_err(std::io::Error::other)
            .map_err(write_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_config::schema::parse_config;

    const LDAP: &str = "version = 1\n[host]\nhostname = \"h\"\n[auth]\nbackend = \"ldap\"\n\
                        [auth.ldap]\nurl = \"ldaps://ldap.example.org\"\n\
                        base_dn = \"ou=people,dc=example,dc=org\"\n";
    const BIND: &str = "bind_dn = \"cn=reader,dc=example,dc=org\"\n";

    fn auth(extra: &str) -> AuthConfig {
        parse_config(&format!("{LDAP}{extra}")).unwrap().auth
    }

    fn files(key: &str, content: &str) -> BTreeMap<String, Secret> {
        [(key.to_owned(), Secret::new(content))].into()
    }

    #[test]
    fn a_file_goes_where_the_configuration_says_readable_by_root_alone() {
        use std::os::unix::fs::PermissionsExt;
        let auth = auth(&format!(
            "{BIND}bind_password_file = \"secrets/ldap-bind\"\n"
        ));
        let resolved = resolve(
            &auth,
            &files("auth.ldap.bind_password_file", "the bind password"),
        )
        .unwrap();
        assert_eq!(resolved[0].path, PathBuf::from("secrets/ldap-bind"));
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &resolved).unwrap();
        let written = dir.path().join("secrets/ldap-bind");
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            "the bind password"
        );
        let mode = std::fs::metadata(&written).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_the_configuration_does_not_place_on_the_volume_is_refused_and_named() {
        let unset = resolve(&auth(""), &files("auth.ldap.bind_password_file", "x")).unwrap_err();
        assert!(matches!(unset, SetupFileError::NotNamed { .. }), "{unset}");
        assert_eq!(unset.field(), "files.auth.ldap.bind_password_file");

        let unknown = resolve(&auth(""), &files("auth.sqlite.path", "x")).unwrap_err();
        assert!(
            matches!(unknown, SetupFileError::UnknownKey { .. }),
            "{unknown}"
        );

        for path in [
            "/etc/shadow",
            "../outside",
            "secrets/../../outside",
            "mfv.toml",
            "tls/key.pem",
            "vms/x.xml",
            "users.sqlite",
        ] {
            let auth = auth(&format!("{BIND}bind_password_file = {path:?}\n"));
            let error = resolve(&auth, &files("auth.ldap.bind_password_file", "x")).unwrap_err();
            assert!(
                matches!(error, SetupFileError::OffVolume { .. }),
                "{path}: {error}"
            );
            assert_eq!(error.field(), "auth.ldap.bind_password_file");
        }
        for path in ["", ".", "./"] {
            assert!(!on_volume(Path::new(path), "users.sqlite"), "{path:?}");
        }
        assert!(on_volume(Path::new("./secrets/db"), "users.sqlite"));
    }

    #[test]
    fn a_file_that_cannot_be_written_is_named() {
        let auth = auth(&format!(
            "{BIND}bind_password_file = \"secrets/ldap-bind\"\n"
        ));
        let resolved = resolve(&auth, &files("auth.ldap.bind_password_file", "x")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secrets"), "a file in the way").unwrap();
        let error = write(dir.path(), &resolved).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot write the file of auth.ldap.bind_password_file"),
            "{error}"
        );
    }
}
