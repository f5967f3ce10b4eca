//! The server's TLS configuration from the identity the host publishes
//! ([`mfv_host::web_identity`]): TLS 1.2 and 1.3 with rustls' safe defaults (ring), HTTP/1.1
//! only, no client certificates.

use std::path::Path;
use std::sync::Arc;

use mfv_host::web_identity::{WebIdentity, WebIdentityError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the server has no TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The published identity is missing or unusable.
    #[error(transparent)]
    Identity(#[from] WebIdentityError),
    /// rustls refused the key or the certificate.
    #[error("the TLS library refused the host's key or certificate: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS configuration for the identity in `dir` (`cert.pem`, `key.pem`).
pub fn server_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let identity = WebIdentity::read(dir)?;
    server_config_for(&identity)
}

/// The TLS configuration for `identity`.
pub fn server_config_for(
    identity: &WebIdentity,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    // The identity was checked when it was read; these parse the same texts again.
    let chain = CertificateDer::pem_slice_iter(identity.certificate_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| rustls::Error::General(error.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem().as_bytes())
        .map_err(|error| rustls::Error::General(error.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
