//! A client of a Minifed-Virt host's REST API (`/api/v1`, mfv-web's normal mode), so an
//! operator manages hosts from another machine with `mfv --remote https://HOST`, as with
//! `pvesh` or `talosctl`.
//!
//! Why its own crate: the calls and their types are the API's, not the host's, so the
//! client needs none of the host's libraries (libvirt, the auth backends) and could be built
//! for any machine that runs `mfv`. It is a leaf: it depends on mfv-api for the types the
//! host daemon and the API share (the host's status, services, log lines) and on nothing of
//! mfv-web's.
//!
//! Trust: the host's certificate is self-signed, so it is pinned by its SHA-256 fingerprint
//! ([`Fingerprint`]), given explicitly or recorded in the [`KnownHosts`] file at the first
//! connection (trust on first use, as `ssh` does). A host that later presents another
//! certificate is refused with both fingerprints and how to accept the new one.
//!
//! The interface blocks: each [`Client`] drives its HTTP/1.1 connection (hyper over
//! rustls) on a current-thread runtime of its own.

mod api;
mod connection;
mod error;
pub mod known_hosts;
mod pinning;

use std::path::PathBuf;

use hyper::header::HeaderValue;
use serde::de::DeserializeOwned;

pub use api::{
    ApiToken, AuditEntry, CreatedToken, Deleted, DiskCounters, HostAnswer, NewToken, NicCounters,
    PowerAnswer, ShutdownResult, Snapshot, Task, User, UserChange, VmDetails, VmSummary,
};
pub use connection::Endpoint;
use connection::{Answer, Connection};
pub use error::{ApiError, ClientError, PinSource};
pub use known_hosts::KnownHosts;
pub use mfv_api::{Fingerprint, InvalidFingerprint};
pub use pinning::PinnedVerifier;

/// How to reach and trust a host.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `https://HOST[:PORT]` (port 443 unless given).
    pub url: String,
    /// The API token (`mfv_...`); never printed.
    pub token: Option<String>,
    /// The fingerprint the host must present; without it, the known hosts file's, or the
    /// first one seen is recorded there.
    pub fingerprint: Option<Fingerprint>,
    /// The known hosts file; `None`: [`known_hosts::default_path`].
    pub known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("fingerprint", &self.fingerprint)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

/// How the host's certificate came to be trusted on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// As recorded in the known hosts file.
    Known,
    /// This was the first connection: the fingerprint was recorded.
    FirstUse {
        /// The fingerprint recorded.
        fingerprint: Fingerprint,
        /// Where.
        known_hosts: PathBuf,
    },
    /// As `--fingerprint` said; recorded in the known hosts file, replacing `replaced` when
    /// it held another.
    Given {
        /// The fingerprint the file held before.
        replaced: Option<Fingerprint>,
        /// The file.
        known_hosts: PathBuf,
    },
}

/// A connection to one host's API, as one token's holder.
pub struct Client {
    connection: Connection,
    host: String,
    authorization: HeaderValue,
    trust: Trust,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the host, checking its certificate against the pin (see [`Trust`]).
    pub fn connect(options: &ConnectOptions) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(&options.url)?;
        let host = endpoint.label();
        let token = options
            .token
            .as_deref()
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ClientError::NoToken { host: host.clone() })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .filter(|_| token.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| ClientError::InvalidToken { host: host.clone() })?;
        authorization.set_sensitive(true);
        let path = match &options.known_hosts {
            Some(path) => path.clone(),
            None => known_hosts::default_path().ok_or(ClientError::NoKnownHostsPath)?,
        };
        let known_hosts = KnownHosts::at(&path);
        let known = known_hosts.lookup(&host)?;
        let (connection, trust) = match (options.fingerprint, known) {
            (Some(given), known) => {
                let connection = Connection::open(endpoint, Some(given), PinSource::Given)?;
                let replaced = known
                    .map(|entry| entry.fingerprint)
                    .filter(|old| *old != given);
                if known.map(|entry| entry.fingerprint) != Some(given) {
                    known_hosts.record(&host, given)?;
                }
                (
                    connection,
                    Trust::Given {
                        replaced,
                        known_hosts: path,
                    },
                )
            }
            (None, Some(entry)) => {
                let source = PinSource::KnownHosts {
                    path,
                    line: entry.line,
                };
                (
                    Connection::open(endpoint, Some(entry.fingerprint), source)?,
                    Trust::Known,
                )
            }
            (None, None) => {
                // The line number the new entry gets is only known once written; a
                // reconnection within this command names the file by the host's line then.
                let connection = Connection::open(endpoint, None, PinSource::Given)?;
                let fingerprint = connection.fingerprint();
                known_hosts.record(&host, fingerprint)?;
                let line = known_hosts.lookup(&host)?.map_or(1, |entry| entry.line);
                let mut connection = connection;
                connection.pinned_by(PinSource::KnownHosts {
                    path: path.clone(),
                    line,
                });
                (
                    connection,
                    Trust::FirstUse {
                        fingerprint,
                        known_hosts: path,
                    },
                )
            }
        };
        Ok(Client {
            connection,
            host,
            authorization,
            trust,
        })
    }

    /// How the host's certificate was trusted.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// What to tell the operator about the trust, if anything (first use, a replaced pin).
    pub fn trust_notice(&self) -> Option<String> {
        match &self.trust {
            Trust::Known => None,
            Trust::FirstUse {
                fingerprint,
                known_hosts,
            } => Some(format!(
                "{}: first connection: trusting its certificate, SHA-256 fingerprint \
                 {fingerprint}, recorded in {}; check it against the fingerprint on the host's \
                 console",
                self.host,
                known_hosts.display()
            )),
            Trust::Given {
                replaced: Some(old),
                known_hosts,
            } => Some(format!(
                "{}: the certificate pinned by --fingerprint replaces {old} in {}",
                self.host,
                known_hosts.display()
            )),
            Trust::Given { replaced: None, .. } => None,
        }
    }

    /// The host as errors name it (`host:port`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The fingerprint of the host's certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.connection.fingerprint()
    }

    /// Sends `method path` with `body` as JSON; the answer, or the API's refusal as
    /// [`ClientError::Api`].
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        let body = body.map(|body| body.to_string().into_bytes());
        let answer = self
            .connection
            .send(&self.authorization, method, path, body)?;
        if answer.status < 400 {
            return Ok(answer);
        }
        let error = serde_json::from_slice::<ApiError>(&answer.body).map_err(|_| {
            ClientError::UnexpectedAnswer {
                host: self.host.clone(),
                request: format!("{method} {path}"),
                status: answer.status,
                reason: format!(
                    "not the API's error shape: {}",
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                ),
            }
        })?;
        Err(ClientError::Api {
            host: self.host.clone(),
            error: Box::new(ApiError {
                status: answer.status,
                ..error
            }),
        })
    }

    /// Sends `method path` and reads the answer's JSON as `T`.
    fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let answer = self.request(method, path, body)?;
        self.read(method, path, &answer)
    }

    /// The answer's JSON as `T`.
    fn read<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        answer: &Answer,
    ) -> Result<T, ClientError> {
        serde_json::from_slice(&answer.body).map_err(|error| ClientError::UnexpectedAnswer {
            host: self.host.clone(),
            request: format!("{method} {path}"),
            status: answer.status,
            reason: error.to_string(),
        })
    }
}

/// `segment` for a path: everything but unreserved characters percent-encoded.
fn path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_host_and_port_only() {
        let parse = |text: &str| Endpoint::parse(text).map(|endpoint| endpoint.label());
        assert_eq!(parse("https://vmhost1").unwrap(), "vmhost1:443");
        assert_eq!(parse("https://VMHost1:8443/").unwrap(), "vmhost1:8443");
        assert_eq!(parse("https://127.0.0.1:8443").unwrap(), "127.0.0.1:8443");
        assert_eq!(parse("https://[::1]:8443").unwrap(), "[::1]:8443");
        for (bad, reason) in [
            ("http://vmhost1", "HTTPS only"),
            ("vmhost1:8443", "HTTPS only"),
            ("https://vmhost1/api/v1", "without a path"),
            ("https://vmhost1/?a=b", "without a path"),
            ("https://root@vmhost1", "pass --token"),
            ("https://", "empty host"),
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("--remote {bad:?}: ")) && error.contains(reason),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("web-1.x_y~"), "web-1.x_y~");
        assert_eq!(path_segment("a b/../c?"), "a%20b%2F..%2Fc%3F");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn errors_read_as_host_message_field() {
        let error = ClientError::Api {
            host: "vmhost1:443".to_owned(),
            error: Box::new(ApiError {
                status: 400,
                kind: "invalid_request".to_owned(),
                message: "too long".to_owned(),
                field: Some("deadline_secs".to_owned()),
            }),
        };
        assert_eq!(
            error.to_string(),
            "vmhost1:443: too long (field: deadline_secs)"
        );
        assert_eq!(error.api_error().unwrap().status, 400);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let options = ConnectOptions {
            url: "https://vmhost1".to_owned(),
            token: Some("mfv_secret".to_owned()),
            fingerprint: None,
            known_hosts: None,
        };
        assert!(!format!("{options:?}").contains("mfv_secret"));
    }

    #[test]
    fn a_missing_or_unusable_token_is_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let options = |token: Option<&str>| ConnectOptions {
            url: "https://127.0.0.1:1".to_owned(),
            token: token.map(str::to_owned),
            fingerprint: None,
            known_hosts: Some(dir.path().join("known_hosts")),
        };
        for token in [None, Some(""), Some("  ")] {
            let error = Client::connect(&options(token)).unwrap_err();
            assert!(matches!(error, ClientError::NoToken { .. }), "{error:?}");
            assert!(error.to_string().contains("pass --token or set MFV_TOKEN"));
        }
        for token in ["mfv_a\nb", "mfv_é", "mfv_a b"] {
            let error = Client::connect(&options(Some(token))).unwrap_err();
            assert!(
                matches!(error, ClientError::InvalidToken { .. }),
                "{error:?}"
            );
            assert!(!error.to_string().contains(token));
        }
    }
}
