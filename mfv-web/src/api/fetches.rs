//! Fetches of images from a URL into new volumes: the host downloads the image itself, so
//! an ISO on a mirror never travels through the user's browser.
//!
//! `POST /api/v1/pools/{pool}/fetches` with `{"url", "volume", "sha256"}` checks what it can
//! at once (an `http` or `https` URL with a host and no credentials, a free volume name in
//! an existing pool) and then runs the download as a task. The response's bytes go from the
//! connection through a bounded channel into a libvirt stream writing the volume, as an
//! upload's chunks do ([`super::uploads`]): a few pieces are held at a time whatever the
//! image's size, and the SHA-256 is computed on the way. The volume is made raw of the size
//! the server announces (`Content-Length`, which is therefore required); libvirt reads the
//! image's format from its content once the last byte is in.
//!
//! Why hyper and not a client crate: the server already has hyper, tokio-rustls and the
//! system's roots (rustls-native-certs, which verify `https` like the rest of the host
//! does); a GET with a few redirects is all a fetch needs. Every failure (connection refused,
//! a status other than success, a cut connection, a pool too small, a wrong checksum)
//! deletes the volume made for it, and the task's error names the URL's host.

use std::future::poll_fn;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Buf, Bytes, Incoming};
use hyper_util::rt::TokioIo;
use mfv_auth::Permission;
use mfv_vm::{Hypervisor, ImageFormat, ObjectKind, VirtError, VolumeInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use url::{Host, Url};
use warp::http::header::{CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use warp::http::{Method, Request, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::storage::{check_volume_name, storage_error};
use super::table::{Access, Call, HandlerFuture, Route, SMALL_BODY};
use super::tasks::{TaskProgress, accepted};
use super::vms::{connect, libvirt, to_json, with_hypervisor};

/// How many redirects a fetch follows.
pub const MAX_REDIRECTS: usize = 5;

/// How long connecting (and a TLS handshake, and the response's head) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server may send nothing before the fetch gives up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many pieces of the body wait between the connection and libvirt at most.
const PIECES_IN_FLIGHT: usize = 8;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::POST,
        path: "/api/v1/pools/{pool}/fetches",
        access: Access::Allowed(Permission::ManageStorage),
        max_body: SMALL_BODY,
        query: &[],
        request: Some(schema::<FetchRequest>),
        answer: Answer::Task(schema::<Fetched>),
        operation: "fetch_volume",
        summary: "Download an image from an http or https URL into a new volume \
                  ({\"url\", \"volume\", \"sha256\"}) by a task, checking its SHA-256 \
                  when given",
        handler: fetch,
    }]
}

/// A fetch task's result: the new volume, and what was downloaded.
#[derive(Debug, Serialize, JsonSchema)]
struct Fetched {
    /// The volume, refreshed.
    volume: VolumeInfo,
    /// Its pool.
    pool: String,
    /// The URL fetched at last (after redirects), without credentials or query.
    url: String,
    /// The bytes downloaded.
    size_bytes: u64,
    /// Their SHA-256, hex.
    sha256: String,
    /// Whether it was checked against the one the request gave.
    sha256_checked: bool,
}

/// The fetch's body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchRequest {
    url: String,
    volume: String,
    #[serde(default)]
    sha256: Option<String>,
}

/// `text` as a URL a fetch may follow: `http` or `https`, with a host, without credentials.
fn check_url(text: &str) -> Result<Url, ApiError> {
    let url = Url::parse(text)
        .map_err(|error| ApiError::invalid("url", format!("{text:?} is not a URL: {error}")))?;
    check_parsed_url(&url).map_err(|problem| ApiError::invalid("url", problem))?;
    Ok(url)
}

/// Why `url` may not be fetched, if it may not.
fn check_parsed_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{}: only http and https URLs are fetched, not {}",
            shown(url),
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{}: a URL with credentials (user@host) is refused: they would be kept in the \
             task for everyone who sees tasks",
            shown(url)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{}: the URL names no host", shown(url)));
    }
    Ok(())
}

/// The URL as messages show it: without credentials, query or fragment (which may hold
/// tokens).
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The expected digest: 64 hex digits, lowercased.
fn check_sha256(text: &str) -> Result<String, ApiError> {
    if text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(
            "sha256",
            format!("{text:?} is not a SHA-256 digest: 64 hex digits"),
        ))
    }
}

fn fetch(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let uri = libvirt(&call)?;
        let request: FetchRequest = call.json()?;
        let url = check_url(&request.url)?;
        check_volume_name(&request.volume).map_err(|refusal| refusal.with_field("volume"))?;
        let expected = request.sha256.as_deref().map(check_sha256).transpose()?;
        let pool = call.param("pool").to_owned();
        let volume = request.volume;
        let (checked_pool, checked_volume) = (pool.clone(), volume.clone());
        with_hypervisor(uri.clone(), move |hypervisor| {
            match hypervisor.volume_info(&checked_pool, &checked_volume) {
                Ok(_) => Err(ApiError::conflict(format!(
                    "volume {checked_volume:?} already exists in storage pool {checked_pool:?}: \
                     choose another name or delete it first"
                ))
                .with_field("volume")),
                Err(VirtError::NotFound {
                    kind: ObjectKind::Volume,
                    ..
                }) => Ok(()),
                Err(error) => Err(storage_error(error)),
            }
        })
        .await?;
        // Locked by pool and volume: a VM name never holds a '/'.
        let target = format!("{pool}/{volume}");
        let runtime = tokio::runtime::Handle::current();
        let task = call
            .state
            .tasks
            .spawn("volume_fetch", &target, move |progress| {
                let hypervisor = connect(&uri)?;
                let fetch = Fetch {
                    hypervisor: &hypervisor,
                    runtime: &runtime,
                    pool: &pool,
                    volume: &volume,
                };
                fetch.run(&url, expected.as_deref(), progress)
            })?;
        Ok(accepted(&task))
    })
}

/// One fetch as it runs on the blocking pool.
struct Fetch<'a> {
    hypervisor: &'a Hypervisor,
    runtime: &'a tokio::runtime::Handle,
    pool: &'a str,
    volume: &'a str,
}

/// A fetch's failure, before it is worded with the URL's host.
#[derive(Debug)]
enum Failure {
    /// Connecting, TLS, HTTP or the server's answer.
    Remote(String),
    /// The image is larger than the pool has room for.
    TooLarge(String),
    /// libvirt refused.
    Storage(ApiError),
    /// The digest differs.
    Mismatch { expected: String, actual: String },
}

impl Fetch<'_> {
    /// Downloads `url` into the new volume and answers the volume, or removes the volume
    /// and fails naming the host.
    fn run(
        &self,
        url: &Url,
        expected: Option<&str>,
        progress: &TaskProgress,
    ) -> Result<serde_json::Value, ApiError> {
        let host = url.host_str().unwrap_or_default().to_owned();
        progress.report(None, format!("connecting to {host}"));
        let (final_url, response) = self
            .runtime
            .block_on(open(url))
            .map_err(|failure| worded(url, &host, failure))?;
        let total = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| {
                worded(
                    url,
                    &host,
                    Failure::Remote(
                        "the server did not say the image's size (Content-Length); a fetch \
                         needs it to make the volume"
                            .to_owned(),
                    ),
                )
            })?;
        self.check_room(total)
            .map_err(|failure| worded(url, &host, failure))?;
        self.hypervisor
            .create_volume_as(self.pool, self.volume, total, ImageFormat::Raw)
            .map_err(storage_error)?;
        match self.fill(response.into_body(), total, &host, progress) {
            Ok(actual) => {
                if let Some(expected) = expected.filter(|expected| **expected != actual) {
                    self.remove();
                    return Err(worded(
                        url,
                        &host,
                        Failure::Mismatch {
                            expected: expected.to_owned(),
                            actual,
                        },
                    ));
                }
                let volume = self
                    .hypervisor
                    .refreshed_volume(self.pool, self.volume)
                    .map_err(storage_error)?;
                Ok(to_json(&Fetched {
                    volume,
                    pool: self.pool.to_owned(),
                    url: shown(&final_url),
                    size_bytes: total,
                    sha256: actual,
                    sha256_checked: expected.is_some(),
                }))
            }
            Err(failure) => {
                self.remove();
                Err(worded(url, &host, failure))
            }
        }
    }

    /// Fails when the pool has less room than `total` bytes.
    fn check_room(&self, total: u64) -> Result<(), Failure> {
        let pools = self
            .hypervisor
            .list_pools()
            .map_err(|error| Failure::Storage(storage_error(error)))?;
        let pool = pools
            .iter()
            .find(|pool| pool.name == self.pool)
            .ok_or_else(|| {
                Failure::Storage(ApiError::not_found(format!(
                    "there is no storage pool named {:?}",
                    self.pool
                )))
            })?;
        if total > pool.available_bytes {
            return Err(Failure::TooLarge(format!(
                "the image has {total} bytes and storage pool {:?} has {} bytes free",
                self.pool, pool.available_bytes
            )));
        }
        Ok(())
    }

    /// Streams `body` into the volume; returns its SHA-256 in hex.
    fn fill(
        &self,
        body: Incoming,
        total: u64,
        host: &str,
        progress: &TaskProgress,
    ) -> Result<String, Failure> {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(PIECES_IN_FLIGHT);
        let pump = self.runtime.spawn(pump(body, sender));
        let mut reader = HashingPieces {
            receiver,
            current: Bytes::new(),
            hasher: Sha256::new(),
            done: 0,
            total,
            percent: None,
            progress,
            host,
        };
        let written =
            self.hypervisor
                .write_volume_at(self.pool, self.volume, 0, total, &mut reader);
        // The reader is dropped first, so a pump still sending stops.
        let hasher = reader.hasher;
        drop(reader.receiver);
        let pumped = self
            .runtime
            .block_on(pump)
            .unwrap_or_else(|_| Err("receiving the image failed unexpectedly".to_owned()));
        match written {
            Ok(()) => Ok(hex(&hasher.finalize())),
            // The body ended early or broke: the pump says why.
            Err(VirtError::UploadSource { source, .. }) => {
                Err(Failure::Remote(pumped.err().unwrap_or_else(|| {
                    format!("the download broke off: {source}")
                })))
            }
            Err(error) => Err(Failure::Storage(storage_error(error))),
        }
    }

    /// Deletes the volume made for a failed fetch; the failure is what is reported.
    fn remove(&self) {
        let _ = self.hypervisor.delete_volume(self.pool, self.volume);
    }
}

/// The fetch's failure as the API's error, naming the URL and its host.
fn worded(url: &Url, host: &str, failure: Failure) -> ApiError {
    let url = shown(url);
    match failure {
        Failure::Remote(what) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "fetch_failed",
            format!("fetching {url} from host {host} failed: {what}"),
        )
        .with_field("url"),
        Failure::TooLarge(what) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("fetching {url} from host {host}: {what}"),
        )
        .with_field("url"),
        Failure::Storage(error) => error,
        Failure::Mismatch { expected, actual } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "checksum_mismatch",
            format!(
                "the image fetched from host {host} ({url}) has SHA-256 {actual}, not the \
                 expected {expected}; its volume is deleted"
            ),
        )
        .with_field("sha256"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The body's pieces as the blocking writer reads them, hashed and counted on the way.
struct HashingPieces<'a> {
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    hasher: Sha256,
    done: u64,
    total: u64,
    percent: Option<u8>,
    progress: &'a TaskProgress,
    host: &'a str,
}

impl Read for HashingPieces<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(piece) => self.current = piece,
                None => return Ok(0),
            }
        }
        let taken = buffer.len().min(self.current.len());
        buffer[..taken].copy_from_slice(&self.current[..taken]);
        self.hasher.update(&buffer[..taken]);
        self.current.advance(taken);
        self.done += taken as u64;
        let percent = (self.done * 100)
            .checked_div(self.total)
            .and_then(|percent| u8::try_from(percent).ok());
        if percent != self.percent {
            self.percent = percent;
            self.progress.report(
                percent,
                format!("{} of {} bytes from {}", self.done, self.total, self.host),
            );
        }
        Ok(taken)
    }
}

/// Moves the body's pieces to the writer until it ends, breaks, or stays silent for
/// [`IDLE_TIMEOUT`]; an error says why it stopped early.
async fn pump(mut body: Incoming, sender: tokio::sync::mpsc::Sender<Bytes>) -> Result<(), String> {
    loop {
        let frame = tokio::time::timeout(
            IDLE_TIMEOUT,
            poll_fn(|context| Pin::new(&mut body).poll_frame(context)),
        )
        .await
        .map_err(|_| format!("the server sent nothing for {} s", IDLE_TIMEOUT.as_secs()))?;
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(|error| format!("the download broke off: {error}"))?;
        if let Ok(data) = frame.into_data() {
            if sender.send(data).await.is_err() {
                // The writer stopped; its error is the answer.
                return Ok(());
            }
        }
    }
}

/// A connection a request can go over: plain TCP or TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// GETs `url`, following up to [`MAX_REDIRECTS`] redirects (each to an http or https URL
/// without credentials); returns the URL answered and its successful response.
async fn open(url: &Url) -> Result<(Url, hyper::Response<Incoming>), Failure> {
    let mut url = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = tokio::time::timeout(CONNECT_TIMEOUT, get(&url))
            .await
            .map_err(|_| {
                Failure::Remote(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
            })??;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| {
                    Failure::Remote(format!("the server answered {status} without a Location"))
                })?;
            let next = url.join(location).map_err(|error| {
                Failure::Remote(format!(
                    "the server redirected to {location:?}, which is not a URL: {error}"
                ))
            })?;
            check_parsed_url(&next).map_err(|problem| {
                Failure::Remote(format!("the server redirected to {problem}"))
            })?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(Failure::Remote(format!("the server answered {status}")));
        }
        return Ok((url, response));
    }
    Err(Failure::Remote(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// One GET of `url` on a new connection.
async fn get(url: &Url) -> Result<hyper::Response<Incoming>, Failure> {
    let https = url.scheme() == "https";
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let host = url
        .host()
        .ok_or_else(|| Failure::Remote("the URL names no host".to_owned()))?;
    let tcp = match &host {
        Host::Domain(domain) => tokio::net::TcpStream::connect((*domain, port)).await,
        Host::Ipv4(address) => {
            tokio::net::TcpStream::connect(SocketAddr::new(IpAddr::V4(*address), port)).await
        }
        Host::Ipv6(address) => {
            tokio::net::TcpStream::connect(SocketAddr::new(IpAddr::V6(*address), port)).await
        }
    }
    .map_err(|error| Failure::Remote(connect_problem(&host.to_string(), port, &error)))?;
    let stream: Box<dyn Connection> = if https {
        let name = match &host {
            Host::Domain(domain) => {
                rustls::pki_types::ServerName::try_from((*domain).to_owned())
                    .map_err(|error| Failure::Remote(format!("{domain} is no TLS name: {error}")))?
            }
            Host::Ipv4(address) => IpAddr::V4(*address).into(),
            Host::Ipv6(address) => IpAddr::V6(*address).into(),
        };
        let tls = tokio_rustls::TlsConnector::from(client_config()?)
            .connect(name, tcp)
            .await
            .map_err(|error| Failure::Remote(format!("the TLS handshake failed: {error}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| Failure::Remote(format!("HTTP failed: {error}")))?;
    tokio::spawn(async move {
        // Its failure shows in the response or the body.
        let _ = connection.await;
    });
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let request = Request::get(path)
        .header(HOST, authority)
        .header(USER_AGENT, concat!("mfv-web/", env!("CARGO_PKG_VERSION")))
        .body(String::new())
        .map_err(|error| Failure::Remote(format!("the request cannot be made: {error}")))?;
    sender
        .send_request(request)
        .await
        .map_err(|error| Failure::Remote(format!("HTTP failed: {error}")))
}

/// Why connecting failed, in words.
fn connect_problem(host: &str, port: u16, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("{host}:{port} refused the connection")
        }
        _ => format!("cannot connect to {host}:{port}: {error}"),
    }
}

/// TLS for fetches: the system's root certificates, ring as everywhere in the server.
fn client_config() -> Result<Arc<rustls::ClientConfig>, Failure> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| Failure::Remote(format!("TLS cannot be set up: {error}")))?
    .with_root_certificates(roots(rustls_native_certs::load_native_certs().certs))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The roots `https` is verified with: the system's (`system`), or, where none of them can
/// be read, the roots built into the server (Mozilla's, as webpki-roots ships them). Why: the appliance
/// carries no certificate store of its own, and fetching an image from an `https` mirror is
/// what its operators do most.
fn roots(system: Vec<rustls::pki_types::CertificateDer<'static>>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(system);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_verified_with_the_systems_roots_or_the_built_in_ones_without_any() {
        let built_in = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(roots(Vec::new()).len(), built_in);
        let unreadable = rustls::pki_types::CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]);
        assert_eq!(roots(vec![unreadable]).len(), built_in);
        let system = rustls_native_certs::load_native_certs().certs;
        let mut readable = rustls::RootCertStore::empty();
        let (added, _) = readable.add_parsable_certificates(system.clone());
        if added > 0 {
            assert_eq!(roots(system).len(), added, "the system's roots alone");
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials() {
        for good in [
            "http://127.0.0.1:8080/a.iso",
            "https://mirror.example.org/debian/x.iso?sig=1",
            "http://[::1]/x",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "file:///etc/passwd",
            "ftp://example.org/x.iso",
            "http://user:secret@example.org/x.iso",
            "https://user@example.org/x.iso",
            "http://",
            "http://:80/x.iso",
            "data:text/plain,hi",
            "not a url",
            "",
        ] {
            let refusal = check_url(bad).unwrap_err();
            assert_eq!(refusal.body.field.as_deref(), Some("url"), "{bad}");
            assert!(!refusal.body.message.contains("secret"), "{bad}");
        }
    }

    #[test]
    fn digests_are_64_hex_digits() {
        let digest = "AB".repeat(32);
        assert_eq!(check_sha256(&digest).unwrap(), "ab".repeat(32));
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(
                check_sha256(bad).unwrap_err().body.field.as_deref(),
                Some("sha256")
            );
        }
    }

    #[test]
    fn shown_urls_hold_no_query() {
        let url = Url::parse("https://example.org/a.iso?token=s3cret#x").unwrap();
        assert_eq!(shown(&url), "https://example.org/a.iso");
    }
}
