//! Trust by pinning: a rustls verifier that accepts exactly the certificate whose SHA-256
//! fingerprint it was given, and remembers the one presented. A Minifed-Virt host makes its own
//! certificate, so no authority could vouch for it; its fingerprint, shown on the host's
//! console, is what an operator can check. The handshake's signatures are still verified, so
//! only the holder of the pinned certificate's key gets through.
//!
//! Public because other clients of a host (test harnesses, programs embedding this crate)
//! trust it the same way.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::Fingerprint;

/// Accepts the certificate whose fingerprint is pinned (any, when none is: first use), and
/// remembers the one presented.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: Option<Fingerprint>,
    presented: Mutex<Option<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_der(end_entity);
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(presented);
        match self.pin {
            Some(pin) if pin != presented => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl PinnedVerifier {
    /// A verifier that accepts the certificate fingerprinted `pin`, or any certificate when
    /// `pin` is `None` (first use: the caller records [`presented`](Self::presented)).
    pub fn new(pin: Option<Fingerprint>) -> Arc<PinnedVerifier> {
        Arc::new(PinnedVerifier {
            pin,
            presented: Mutex::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The fingerprint of the certificate presented last.
    pub fn presented(&self) -> Option<Fingerprint> {
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A client configuration (safe default protocol versions, no client certificate) that
    /// trusts through this verifier.
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(
            rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::clone(self) as Arc<dyn ServerCertVerifier>)
                .with_no_client_auth(),
        )
    }
}
