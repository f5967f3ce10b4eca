//! What the LDAP and MySQL backends share about the way to their servers: the CA
//! certificates a server's certificate must chain to, and the rule that passwords and hashes
//! never cross a network in cleartext unless the configuration says so in so many words.
//!
//! Cleartext (`ldap://` without StartTLS, MySQL over TCP without TLS) is accepted to a
//! loopback host only ([`mfv_linux::loopback::is_loopback_host`]: 127.0.0.0/8, `::1`,
//! `localhost`), where the exchange never leaves the machine, or with `insecure = true`.
//! Anywhere else anyone on the path could read the service account's password, the user's
//! password or the stored hashes, and forge the server's answers. The check runs when a
//! backend is made, before any connection.

use std::path::Path;

use mfv_linux::loopback::is_loopback_host;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::BackendError;

/// Refuses a cleartext connection of `backend` to `host` (reached at `server`, for the
/// message) unless `host` is loopback or `insecure` is set. `remedy` says which setting
/// turns TLS on.
pub(crate) fn refuse_cleartext(
    backend: &'static str,
    server: &str,
    host: &str,
    insecure: bool,
    remedy: &str,
) -> Result<(), BackendError> {
    if insecure || is_loopback_host(host) {
        return Ok(());
    }
    Err(BackendError::Misconfigured {
        backend,
        reason: format!(
            "{server} is not on this machine and the connection has no TLS, so passwords \
             would cross the network in cleartext: {remedy}, or set insecure = true to accept \
             cleartext on a network you trust"
        ),
    })
}

/// The certificates that may sign a server's certificate: every certificate of the PEM file
/// `ca_certificate`, or without one the system's trusted CAs. A file that cannot be read,
/// holds no certificate or holds one that cannot be a trust anchor is an error; unreadable
/// system certificates are skipped (a server they would have vouched for then fails its TLS
/// handshake with a clear error).
pub(crate) fn trusted_certificates(
    backend: &'static str,
    ca_certificate: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, BackendError> {
    let misconfigured = |reason: String| BackendError::Misconfigured { backend, reason };
    let mut anchors = RootCertStore::empty();
    let Some(path) = ca_certificate else {
        let system = rustls_native_certs::load_native_certs();
        return Ok(system
            .certs
            .into_iter()
            .filter(|certificate| anchors.add(certificate.clone()).is_ok())
            .collect());
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            misconfigured(format!(
                "cannot read the CA certificate file {}: {error}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(misconfigured(format!(
            "the CA certificate file {} holds no certificate",
            path.display()
        )));
    }
    for certificate in &certificates {
        anchors.add(certificate.clone()).map_err(|error| {
            misconfigured(format!(
                "the CA certificate file {} holds an unusable certificate: {error}",
                path.display()
            ))
        })?;
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_is_refused_off_this_machine_only() {
        let refuse = |host: &str, insecure: bool| {
            refuse_cleartext("ldap", &format!("ldap://{host}"), host, insecure, "set tls")
        };
        for host in ["127.0.0.1", "[::1]", "localhost"] {
            refuse(host, false).unwrap();
        }
        refuse("192.0.2.1", true).unwrap();
        let error = refuse("192.0.2.1", false).unwrap_err();
        assert!(matches!(error, BackendError::Misconfigured { .. }));
        let message = error.to_string();
        for expected in [
            "ldap://192.0.2.1",
            "cleartext",
            "set tls",
            "insecure = true",
        ] {
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn unusable_ca_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, expected) in [
            (dir.path().join("missing.pem"), "cannot read"),
            (empty, "holds no certificate"),
            (garbage, "unusable certificate"),
        ] {
            let error = trusted_certificates("mysql", Some(&path)).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(expected) && message.contains(&path.display().to_string()),
                "{message}"
            );
        }
    }
}
