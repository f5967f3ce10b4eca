//! The HTTPS connection to a host: TLS through rustls trusting the pinned certificate
//! ([`PinnedVerifier`]), HTTP/1.1 through hyper, driven by a small current-thread runtime so the
//! callers (a command line) stay blocking.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use crate::{ClientError, Fingerprint, PinSource, PinnedVerifier};

/// How long making a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one request may take, its answer's body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// What TLS and `Host` call it, and TCP connects to (a name or an address).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, as errors and the known hosts file name it (`[::1]:8443`).
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `https://HOST[:PORT]` (a trailing `/` allowed; no path, query or user).
    pub fn parse(text: &str) -> Result<Endpoint, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|error| invalid(&error.to_string()))?;
        if url.scheme() != "https" {
            return Err(invalid(
                "expected https://HOST[:PORT]: the API is served over HTTPS only",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("a user in the URL is not used: pass --token"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("expected https://HOST[:PORT] without a path"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            None => return Err(invalid("no host")),
        };
        Ok(Endpoint {
            host,
            port: url.port_or_known_default().unwrap_or(443),
        })
    }
}

/// An answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// One HTTP/1.1 connection over TLS to a host, made again when the host closed it.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    endpoint: Endpoint,
    /// The certificate every new connection must present.
    pin: Fingerprint,
    /// Where that pin came from, for the error when another is presented.
    pinned_by: PinSource,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `endpoint`, accepting only the certificate `pin` (any when `None`: the
    /// first use, and the one presented is pinned from then on, by `pinned_by`).
    pub fn open(
        endpoint: Endpoint,
        pin: Option<Fingerprint>,
        pinned_by: PinSource,
    ) -> Result<Connection, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let (sender, presented) = runtime.block_on(handshake(&endpoint, pin, &pinned_by))?;
        Ok(Connection {
            runtime,
            endpoint,
            pin: presented,
            pinned_by,
            sender: Some(sender),
        })
    }

    /// The fingerprint of the host's certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.pin
    }

    /// Says where the pin comes from now (the known hosts line just written at first use).
    pub fn pinned_by(&mut self, source: PinSource) {
        self.pinned_by = source;
    }

    /// Sends `method path` with the bearer `token` and a JSON `body`; the answer, whatever
    /// its status. A connection the host closed is made anew, with the same pin.
    pub fn send(
        &mut self,
        token: &HeaderValue,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let label = self.endpoint.label();
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, label.as_str())
            .header(AUTHORIZATION, token.clone())
            .header(ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| ClientError::UnexpectedAnswer {
                host: label.clone(),
                request: format!("{method} {path}"),
                status: 0,
                reason: format!("the request cannot be made: {error}"),
            })?;
        let endpoint = self.endpoint.clone();
        let (pin, pinned_by) = (self.pin, self.pinned_by.clone());
        let reusable = self.sender.take().filter(|sender| !sender.is_closed());
        let (sender, answer) = self.runtime.block_on(async move {
            let mut sender = match reusable {
                Some(sender) => sender,
                None => match handshake(&endpoint, Some(pin), &pinned_by).await {
                    Ok((sender, _)) => sender,
                    Err(error) => return (None, Err(error)),
                },
            };
            let exchange = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>(Answer { status, body })
            };
            let answer = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(source)) => Err(ClientError::Http {
                    host: endpoint.label(),
                    source,
                }),
                Err(_) => Err(ClientError::Timeout {
                    host: endpoint.label(),
                    what: format!("{method} {path}"),
                    seconds: REQUEST_TIMEOUT.as_secs(),
                }),
            };
            (answer.is_ok().then_some(sender), answer)
        });
        self.sender = sender;
        answer
    }
}

/// TCP, TLS with the pin, then HTTP/1.1's handshake; the connection is driven by a task on
/// the current runtime.
async fn handshake(
    endpoint: &Endpoint,
    pin: Option<Fingerprint>,
    pinned_by: &PinSource,
) -> Result<(SendRequest<Full<Bytes>>, Fingerprint), ClientError> {
    let label = endpoint.label();
    let timed_out = || ClientError::Timeout {
        host: label.clone(),
        what: "connecting".to_owned(),
        seconds: CONNECT_TIMEOUT.as_secs(),
    };
    let verifier = PinnedVerifier::new(pin);
    let mut config = verifier.client_config().map_err(|error| ClientError::Tls {
        host: label.clone(),
        source: std::io::Error::other(error),
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name =
        ServerName::try_from(endpoint.host.clone()).map_err(|error| ClientError::InvalidUrl {
            url: label.clone(),
            reason: error.to_string(),
        })?;
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|source| ClientError::Connect {
        host: label.clone(),
        source,
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp))
        .await
        .map_err(|_| timed_out())?;
    let presented = verifier.presented();
    let (tls, presented) = match (tls, pin, presented) {
        (Ok(tls), _, Some(presented)) => (tls, presented),
        (Err(_), Some(expected), Some(presented)) if expected != presented => {
            return Err(ClientError::FingerprintMismatch {
                host: label,
                expected,
                presented,
                source_of_pin: pinned_by.clone(),
            });
        }
        (Ok(_), _, None) => {
            return Err(ClientError::Tls {
                host: label,
                source: std::io::Error::other("the host presented no certificate"),
            });
        }
        (Err(source), _, _) => {
            return Err(ClientError::Tls {
                host: label,
                source,
            });
        }
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|source| ClientError::Http {
            host: label,
            source,
        })?;
    // The connection's own work; it ends when the host closes it or the sender is dropped,
    // and a failure shows in the request that meets it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, presented))
}
