//! The web server's TLS identity: a private key and a self-signed certificate, made by the
//! host at its first start and kept in the config store once there is one.
//!
//! A freshly booted host has no name a public authority would vouch for, so its certificate
//! is self-signed and the operator trusts it by its SHA-256 fingerprint, which the console
//! shows beside the URL. The identity must outlive reboots (a new certificate at every boot
//! would teach operators to click warnings away), so it lives in the config store's `tls/`
//! directory beside `mfv.toml`, and is made anew only when the store holds none.
//!
//! The host's clock may be anywhere on a first boot (no RTC battery, no NTP yet), so the
//! certificate is valid from 1975 to 4096 (rcgen's defaults): a validity window the clock
//! could miss would break the page with an error that has nothing to do with trust.
//!
//! The web server runs unprivileged and cannot open the config volume: the host publishes
//! the identity in a runtime directory (`/run/mfv/web`), the key readable by the web server's
//! group only.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use mfv_api::Fingerprint;
use mfv_config::store::{DirectoryStore, StoreError};
use mfv_linux::atomic_file::{WriteFailure, replace_file};
use mfv_linux::regular_file::{ReadError, read_limited};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// The directory beside `mfv.toml` that holds the identity.
pub const STORE_DIR: &str = "tls";
/// The certificate's file, in the store and in the runtime directory.
pub const CERTIFICATE_FILE: &str = "cert.pem";
/// The private key's file, in the store and in the runtime directory.
pub const KEY_FILE: &str = "key.pem";
/// Where the host publishes the identity for the web server, under its runtime directory.
pub const RUN_SUBDIR: &str = "web";
/// The largest certificate or key file read (a certificate chain is a few KiB).
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// Why the identity could not be made, read, checked, kept or published.
#[derive(Debug, thiserror::Error)]
pub enum WebIdentityError {
    /// rcgen could not make the key or the certificate.
    #[error("cannot make the web server's key and certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file of the identity is missing, unreadable or not a regular file.
    #[error("cannot read the web server's {what}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// A file of the identity does not hold what it should.
    #[error("the web server's {what} in {path} is not usable: {reason}")]
    Invalid {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the one the certificate was made for.
    #[error(
        "the web server's key {key} does not belong to the certificate {certificate}: \
         remove both to have a new pair made"
    )]
    Mismatch {
        /// The certificate's file.
        certificate: PathBuf,
        /// The key's file.
        key: PathBuf,
    },
    /// The identity could not be written to the config store.
    #[error("cannot keep the web server's key and certificate in the config store")]
    Store(#[source] Box<StoreError>),
    /// The identity could not be published for the web server.
    #[error("cannot publish the web server's {what} at {path}")]
    Publish {
        /// What was being written.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where the identity in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityOrigin {
    /// Read from the config store.
    Store,
    /// Made now and kept in the config store.
    MadeAndKept,
    /// The one published earlier in this boot, now kept in the config store.
    PublishedAndKept,
    /// The one published earlier in this boot; there is no config store to keep it in.
    Published,
    /// Made now; there is no config store to keep it in, so it lasts until the next boot
    /// unless a store is set up first.
    MadeForThisBoot,
    /// The operator's, named by `[web] tls_cert` (this path) and `tls_key`.
    Configured(String),
}

impl fmt::Display for IdentityOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityOrigin::Store => "from the config store",
            IdentityOrigin::MadeAndKept => "made now and kept in the config store",
            IdentityOrigin::PublishedAndKept => {
                "the one of this boot, now kept in the config store"
            }
            IdentityOrigin::Published => "the one of this boot; no config store keeps it",
            IdentityOrigin::MadeForThisBoot => {
                "made now; no config store keeps it, so it is new at every boot until the \
                 host is set up"
            }
            IdentityOrigin::Configured(certificate) => {
                return write!(f, "web.tls_cert {certificate} and its web.tls_key");
            }
        })
    }
}

/// A private key (PKCS#8 PEM) and the self-signed certificate (PEM) made for it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebIdentity {
    certificate_pem: String,
    key_pem: String,
    fingerprint: Fingerprint,
}

impl fmt::Debug for WebIdentity {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebIdentity")
            .field("fingerprint", &self.fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

impl WebIdentity {
    /// Makes an ECDSA P-256 key and a self-signed certificate for `hostname` (and
    /// `localhost`, so a tunnel to the host also matches).
    pub fn generate(hostname: &str) -> Result<WebIdentity, WebIdentityError> {
        let mut names = vec![hostname.to_owned()];
        if hostname != "localhost" {
            names.push("localhost".to_owned());
        }
        let mut params = rcgen::CertificateParams::new(names)?;
        let mut subject = rcgen::DistinguishedName::new();
        subject.push(rcgen::DnType::CommonName, hostname);
        subject.push(rcgen::DnType::OrganizationName, "Minifed-Virt host");
        params.distinguished_name = subject;
        let key = rcgen::KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(WebIdentity {
            fingerprint: Fingerprint::of_der(certificate.der()),
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// An identity from its PEM texts (`certificate_path` and `key_path` name them in
    /// errors): one certificate or more (the first is the server's), one private key, and
    /// the key must be the certificate's.
    pub fn from_pem(
        certificate_pem: String,
        key_pem: String,
        certificate_path: &Path,
        key_path: &Path,
    ) -> Result<WebIdentity, WebIdentityError> {
        let invalid = |what, path: &Path, reason: String| WebIdentityError::Invalid {
            what,
            path: path.to_owned(),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                invalid(
                    "certificate",
                    certificate_path,
                    "damaged PEM text (a BEGIN line without its END line, or bad base64)"
                        .to_owned(),
                )
            })?;
        let Some(first) = chain.first() else {
            return Err(invalid(
                "certificate",
                certificate_path,
                "no PEM block labelled CERTIFICATE".to_owned(),
            ));
        };
        let fingerprint = Fingerprint::of_der(first);
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
            invalid(
                "key",
                key_path,
                "no intact PEM block labelled PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY"
                    .to_owned(),
            )
        })?;
        let signing_key = default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|error| invalid("key", key_path, error.to_string()))?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(WebIdentityError::Mismatch {
                    certificate: certificate_path.to_owned(),
                    key: key_path.to_owned(),
                });
            }
            Err(error) => {
                return Err(invalid("certificate", certificate_path, error.to_string()));
            }
        }
        Ok(WebIdentity {
            certificate_pem,
            key_pem,
            fingerprint,
        })
    }

    /// Reads and checks the identity in `dir` (`cert.pem`, `key.pem`): regular files only,
    /// never through a link, at most 64 KiB each.
    pub fn read(dir: &Path) -> Result<WebIdentity, WebIdentityError> {
        WebIdentity::read_pair(&dir.join(CERTIFICATE_FILE), &dir.join(KEY_FILE))
    }

    /// The identity an operator gave in `[web] tls_cert` and `tls_key` (`certificate` and
    /// `key`, relative paths on the config volume at `volume_dir`), read and checked as
    /// [`WebIdentity::read`] does.
    pub fn configured(
        volume_dir: &Path,
        certificate: &str,
        key: &str,
    ) -> Result<WebIdentity, WebIdentityError> {
        let certificate = volume_dir.join(certificate);
        let key = volume_dir.join(key);
        WebIdentity::read_pair(&certificate, &key).map_err(|error| match error {
            // The operator's pair is not made again: say which files disagree.
            WebIdentityError::Mismatch { certificate, key } => WebIdentityError::Invalid {
                what: "key",
                path: key,
                reason: format!(
                    "it is not the key of the certificate {}",
                    certificate.display()
                ),
            },
            other => other,
        })
    }

    /// Reads and checks the certificate at `certificate_path` and the key at `key_path`.
    fn read_pair(
        certificate_path: &Path,
        key_path: &Path,
    ) -> Result<WebIdentity, WebIdentityError> {
        let text = |path: &Path, what| {
            let (dir, name) = match (path.parent(), path.file_name()) {
                (Some(dir), Some(name)) => (dir, name.to_string_lossy()),
                _ => (Path::new("/"), path.to_string_lossy()),
            };
            let bytes = read_limited(dir, &name, MAX_PEM_BYTES)
                .map_err(|source| WebIdentityError::Read { what, source })?;
            String::from_utf8(bytes).map_err(|_| WebIdentityError::Invalid {
                what,
                path: path.to_owned(),
                reason: "not text".to_owned(),
            })
        };
        let certificate = text(certificate_path, "certificate")?;
        let key = text(key_path, "key")?;
        WebIdentity::from_pem(certificate, key, certificate_path, key_path)
    }

    /// Writes the identity into `dir` (made if missing, mode 0750): the certificate 0644,
    /// the key 0640, each replaced atomically. With `group`, the directory and the key
    /// belong to that group, so the web server reads them and nobody else does.
    pub fn write(
        &self,
        dir: &Path,
        group: Option<nix::unistd::Gid>,
    ) -> Result<(), WebIdentityError> {
        let failed = |what, path: &Path| {
            let path = path.to_owned();
            move |source| WebIdentityError::Publish { what, path, source }
        };
        fs::create_dir_all(dir).map_err(failed("directory", dir))?;
        let key = dir.join(KEY_FILE);
        let certificate = dir.join(CERTIFICATE_FILE);
        if let Some(group) = group {
            nix::unistd::chown(dir, None, Some(group))
                .map_err(|errno| failed("directory", dir)(errno.into()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o750))
            .map_err(failed("directory", dir))?;
        let written = |failure: WriteFailure| std::io::Error::other(failure.to_string());
        replace_file(&certificate, self.certificate_pem.as_bytes(), 0o644)
            .map_err(|failure| failed("certificate", &certificate)(written(failure)))?;
        // The key is written for root alone and handed to the group once complete.
        replace_file(&key, self.key_pem.as_bytes(), 0o600)
            .map_err(|failure| failed("key", &key)(written(failure)))?;
        if let Some(group) = group {
            nix::unistd::chown(&key, None, Some(group))
                .map_err(|errno| failed("key", &key)(errno.into()))?;
        }
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).map_err(failed("key", &key))
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// The identity kept in `store` (its `tls/` directory), or, when it holds none, a new one
/// for `hostname` that is kept there. Without a store the new identity is for this boot
/// only. An identity in the store that cannot be used is an error, never replaced: the
/// operator's browsers trust it, and a silent new one would look like an attack.
pub fn load_or_make(
    store: Option<&DirectoryStore>,
    hostname: &str,
) -> Result<(WebIdentity, IdentityOrigin), WebIdentityError> {
    let Some(store) = store else {
        return Ok((
            WebIdentity::generate(hostname)?,
            IdentityOrigin::MadeForThisBoot,
        ));
    };
    let dir = store.dir().join(STORE_DIR);
    match WebIdentity::read(&dir) {
        Ok(identity) => return Ok((identity, IdentityOrigin::Store)),
        Err(WebIdentityError::Read {
            source: ReadError::Missing { .. },
            ..
        }) if !dir.join(CERTIFICATE_FILE).exists() && !dir.join(KEY_FILE).exists() => {}
        Err(error) => return Err(error),
    }
    let identity = WebIdentity::generate(hostname)?;
    keep(store, &identity)?;
    Ok((identity, IdentityOrigin::MadeAndKept))
}

/// The identity the web server uses from now on, published in `published` (the runtime
/// directory it reads, the key for `group`): the store's, or the one already published in
/// this boot (kept in the store when there is one now, so the fingerprint an operator
/// trusted during setup stays), or a new one. A published identity that cannot be read is
/// replaced; one in the store is never (see [`load_or_make`]).
pub fn establish(
    store: Option<&DirectoryStore>,
    published: &Path,
    group: Option<nix::unistd::Gid>,
    hostname: &str,
) -> Result<(WebIdentity, IdentityOrigin), WebIdentityError> {
    let earlier = WebIdentity::read(published).ok();
    let (identity, origin) = match (store, earlier) {
        (Some(store), Some(earlier)) if !store.dir().join(STORE_DIR).exists() => {
            keep(store, &earlier)?;
            (earlier, IdentityOrigin::PublishedAndKept)
        }
        (Some(store), _) => load_or_make(Some(store), hostname)?,
        (None, Some(earlier)) => (earlier, IdentityOrigin::Published),
        (None, None) => load_or_make(None, hostname)?,
    };
    identity.write(published, group)?;
    Ok((identity, origin))
}

/// Writes `identity` into `store`'s `tls/` directory (the volume writable only meanwhile).
pub fn keep(store: &DirectoryStore, identity: &WebIdentity) -> Result<(), WebIdentityError> {
    store
        .write_beside(STORE_DIR, |dir| {
            identity
                .write(dir, None)
                .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|error| WebIdentityError::Store(Box::new(error)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use sha2::{Digest, Sha256};

    use mfv_config::store::PlainDirectory;

    use super::*;

    fn store(dir: &Path) -> DirectoryStore {
        DirectoryStore::new(dir, PlainDirectory)
    }

    #[test]
    fn a_new_identity_is_kept_in_the_store_and_read_back_at_the_next_boot() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (made, origin) = load_or_make(Some(&store), "vmhost").unwrap();
        assert_eq!(origin, IdentityOrigin::MadeAndKept);
        let tls = dir.path().join(STORE_DIR);
        let mode = |name| fs::metadata(tls.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(CERTIFICATE_FILE), mode(KEY_FILE)), (0o644, 0o640));
        let (again, origin) = load_or_make(Some(&store), "vmhost").unwrap();
        assert_eq!(origin, IdentityOrigin::Store);
        assert_eq!(again, made);
        assert!(made.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            made.certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn without_a_store_the_identity_is_for_this_boot() {
        let (identity, origin) = load_or_make(None, "vmhost").unwrap();
        assert_eq!(origin, IdentityOrigin::MadeForThisBoot);
        let fingerprint = identity.fingerprint().to_string();
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
        assert!(
            fingerprint.split(':').all(|byte| byte.len() == 2
                && byte
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())),
            "{fingerprint}"
        );
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_certificates_der() {
        let identity = WebIdentity::generate("vmhost").unwrap();
        let der = CertificateDer::from_pem_slice(identity.certificate_pem().as_bytes()).unwrap();
        let digest: [u8; 32] = Sha256::digest(&der).into();
        let hex: Vec<String> = digest.iter().map(|byte| format!("{byte:02X}")).collect();
        assert_eq!(identity.fingerprint().to_string(), hex.join(":"));
    }

    #[test]
    fn the_operators_pair_is_read_from_the_volume_and_a_wrong_one_is_named() {
        let volume = tempfile::tempdir().unwrap();
        let mine = WebIdentity::generate("vmhost.example.org").unwrap();
        let other = WebIdentity::generate("other").unwrap();
        fs::create_dir(volume.path().join("certs")).unwrap();
        fs::write(volume.path().join("certs/host.pem"), mine.certificate_pem()).unwrap();
        fs::write(volume.path().join("certs/host.key"), mine.key_pem()).unwrap();
        fs::write(volume.path().join("certs/other.key"), other.key_pem()).unwrap();
        let read =
            WebIdentity::configured(volume.path(), "certs/host.pem", "certs/host.key").unwrap();
        assert_eq!(read, mine);

        let error = WebIdentity::configured(volume.path(), "certs/host.pem", "certs/other.key")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("certs/other.key is not usable: it is not the key of the certificate")
                && !error.contains("remove both"),
            "{error}"
        );
        let error = WebIdentity::configured(volume.path(), "certs/missing.pem", "certs/host.key")
            .unwrap_err();
        assert!(
            matches!(
                error,
                WebIdentityError::Read {
                    what: "certificate",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(STORE_DIR);
        let first = WebIdentity::generate("a").unwrap();
        let second = WebIdentity::generate("b").unwrap();
        fs::create_dir(&tls).unwrap();
        fs::write(tls.join(CERTIFICATE_FILE), first.certificate_pem()).unwrap();
        fs::write(tls.join(KEY_FILE), second.key_pem()).unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert!(
            matches!(error, WebIdentityError::Mismatch { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("remove both"), "{error}");
        assert_eq!(
            fs::read_to_string(tls.join(KEY_FILE)).unwrap(),
            second.key_pem()
        );
    }

    #[test]
    fn a_missing_half_or_garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(STORE_DIR);
        fs::create_dir(&tls).unwrap();
        let identity = WebIdentity::generate("a").unwrap();
        fs::write(tls.join(CERTIFICATE_FILE), identity.certificate_pem()).unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert!(
            matches!(error, WebIdentityError::Read { what: "key", .. }),
            "{error:?}"
        );

        fs::write(tls.join(KEY_FILE), "not a key").unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert!(
            matches!(error, WebIdentityError::Invalid { what: "key", .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("key.pem"), "{error}");

        fs::write(
            tls.join(CERTIFICATE_FILE),
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
        )
        .unwrap();
        fs::write(tls.join(KEY_FILE), identity.key_pem()).unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("damaged PEM text (a BEGIN line without its END line, or bad base64)"),
            "{error}"
        );

        fs::write(tls.join(CERTIFICATE_FILE), "hello\n").unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the web server's certificate in {} is not usable: no PEM block labelled \
                 CERTIFICATE",
                tls.join(CERTIFICATE_FILE).display()
            )
        );
    }

    #[test]
    fn a_link_in_place_of_the_key_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(STORE_DIR);
        fs::create_dir(&tls).unwrap();
        let identity = WebIdentity::generate("a").unwrap();
        fs::write(tls.join(CERTIFICATE_FILE), identity.certificate_pem()).unwrap();
        symlink("/dev/zero", tls.join(KEY_FILE)).unwrap();
        let error = load_or_make(Some(&store(dir.path())), "a").unwrap_err();
        assert!(
            matches!(
                error,
                WebIdentityError::Read {
                    what: "key",
                    source: ReadError::NotRegular { .. }
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_identity_of_this_boot_is_kept_when_a_store_appears_and_the_stores_wins_after() {
        let dir = tempfile::tempdir().unwrap();
        let published = dir.path().join("run/web");
        let group = Some(nix::unistd::getgid());
        let (first, origin) = establish(None, &published, group, "a").unwrap();
        assert_eq!(origin, IdentityOrigin::MadeForThisBoot);
        // A restart of the daemon in the same boot keeps it.
        let (again, origin) = establish(None, &published, group, "a").unwrap();
        assert_eq!(
            (again.clone(), origin),
            (first.clone(), IdentityOrigin::Published)
        );
        // Set up: the store keeps the identity the operator already trusts.
        let volume = dir.path().join("volume");
        fs::create_dir(&volume).unwrap();
        let store = store(&volume);
        let (kept, origin) = establish(Some(&store), &published, group, "a").unwrap();
        assert_eq!(
            (kept, origin),
            (first.clone(), IdentityOrigin::PublishedAndKept)
        );
        // The next boot reads it from the store.
        fs::remove_dir_all(&published).unwrap();
        let (next_boot, origin) = establish(Some(&store), &published, group, "a").unwrap();
        assert_eq!((next_boot, origin), (first, IdentityOrigin::Store));
        assert!(WebIdentity::read(&published).is_ok());
    }

    #[test]
    fn an_unreadable_published_identity_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let published = dir.path().join("web");
        fs::create_dir(&published).unwrap();
        fs::write(published.join(CERTIFICATE_FILE), "junk").unwrap();
        let (identity, origin) = establish(None, &published, None, "a").unwrap();
        assert_eq!(origin, IdentityOrigin::MadeForThisBoot);
        assert_eq!(WebIdentity::read(&published).unwrap(), identity);
    }

    #[test]
    fn the_published_key_is_for_its_group_and_the_debug_output_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join(RUN_SUBDIR);
        let identity = WebIdentity::generate("a").unwrap();
        let group = nix::unistd::getgid();
        identity.write(&web, Some(group)).unwrap();
        let key = fs::metadata(web.join(KEY_FILE)).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o640);
        assert_eq!(
            fs::metadata(&web).unwrap().permissions().mode() & 0o777,
            0o750
        );
        assert_eq!(WebIdentity::read(&web).unwrap(), identity);
        let debug = format!("{identity:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
        // Writing again replaces the files in place.
        let other = WebIdentity::generate("b").unwrap();
        other.write(&web, Some(group)).unwrap();
        assert_eq!(WebIdentity::read(&web).unwrap(), other);
    }
}
