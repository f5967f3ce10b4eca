//! A small HTTPS client for tests of the web server: it writes each request by hand (so a
//! test can also send a malformed or oversized one), reads the whole answer, and records the
//! SHA-256 fingerprint of the certificate the server presented, so a test compares it with
//! the one the console printed, as an operator does.
//!
//! The certificate is not checked against any authority (the host's is self-signed): the
//! recorded fingerprint is the check, made by mfv-client's [`PinnedVerifier`] without a pin.
//! The server's signatures in the handshake are verified.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use mfv_client::PinnedVerifier;
use rustls::pki_types::ServerName;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one try of [`HttpsClient::wait_until_serving`] waits for each step.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// An answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the body is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client of one HTTPS server.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    address: SocketAddr,
    host: String,
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<PinnedVerifier>,
}

impl HttpsClient {
    /// A client of the server at `address`, which it calls `host` (SNI and `Host`).
    pub fn new(address: SocketAddr, host: &str) -> anyhow::Result<HttpsClient> {
        let verifier = PinnedVerifier::new(None);
        let config = verifier.client_config().context("TLS versions")?;
        Ok(HttpsClient {
            address,
            host: host.to_owned(),
            config: Arc::new(config),
            verifier,
        })
    }

    /// The server's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The SHA-256 fingerprint of the certificate the server presented last, as browsers
    /// show it (`AB:CD:...`).
    pub fn served_fingerprint(&self) -> Option<String> {
        self.verifier
            .presented()
            .map(|fingerprint| fingerprint.to_string())
    }

    /// Asks for `/` until the server answers it, at most for `timeout`: a server that is
    /// starting refuses or resets connections (QEMU's port forward takes them and drops them)
    /// until it listens, and before the guest has its address the forward holds a connection
    /// without an answer, so each try gives up after two seconds.
    pub fn wait_until_serving(&self, timeout: Duration) -> anyhow::Result<HttpResponse> {
        let deadline = std::time::Instant::now() + timeout;
        let poll = format!(
            "GET / HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.host
        )
        .into_bytes();
        loop {
            match self.send_raw_within(&poll, POLL_TIMEOUT) {
                Ok(answer) => return Ok(answer),
                Err(error) if std::time::Instant::now() >= deadline => {
                    return Err(error.context(format!(
                        "{} did not answer within {} s",
                        self.address,
                        timeout.as_secs()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `GET path` with `headers`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<HttpResponse> {
        self.send("GET", path, headers, None)
    }

    /// `POST path` with `headers` and a JSON `body`.
    pub fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> anyhow::Result<HttpResponse> {
        let body = body.to_string();
        let mut headers = headers.to_vec();
        headers.push(("content-type", "application/json"));
        self.send("POST", path, &headers, Some(body.as_bytes()))
    }

    /// A request with `Host`, `Connection: close` and, with a body, `Content-Length` added.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<HttpResponse> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.host
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default());
        self.send_raw(&raw)
    }

    /// Sends `raw` bytes after the handshake and reads the answer to the end.
    pub fn send_raw(&self, raw: &[u8]) -> anyhow::Result<HttpResponse> {
        self.send_raw_within(raw, REQUEST_TIMEOUT)
    }

    /// [`HttpsClient::send_raw`], each step (connect, handshake, read) given at most
    /// `timeout`.
    fn send_raw_within(&self, raw: &[u8], timeout: Duration) -> anyhow::Result<HttpResponse> {
        let mut stream = self.connect_within(timeout)?;
        // A server may answer before it read the whole body (413) and close: the write then
        // fails, and the answer is still there to read.
        let sent = stream.write_all(raw).and_then(|()| stream.flush());
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let write_failed = sent.is_err();
        if answer.is_empty() {
            sent.context("send the request")?;
        }
        match read {
            Ok(_) => {}
            // A server that closes without close_notify has still answered in full.
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(_) if write_failed => {}
            Err(error) => return Err(error).context("read the answer"),
        }
        parse_response(&answer)
    }

    /// A TLS connection, handshake done.
    pub fn connect(
        &self,
    ) -> anyhow::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        self.connect_within(REQUEST_TIMEOUT)
    }

    /// [`HttpsClient::connect`], each step given at most `timeout`.
    fn connect_within(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        let tcp = TcpStream::connect_timeout(&self.address, timeout)
            .with_context(|| format!("connect to {}", self.address))?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        let name = ServerName::try_from(self.host.clone())
            .with_context(|| format!("{:?} is no server name", self.host))?;
        let connection =
            rustls::ClientConnection::new(Arc::clone(&self.config), name).context("start TLS")?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .with_context(|| format!("TLS handshake with {}", self.address))?;
        }
        Ok(stream)
    }
}

/// Parses a whole HTTP/1.1 answer (a `Content-Length` body or one read to the end).
fn parse_response(answer: &[u8]) -> anyhow::Result<HttpResponse> {
    let Some(end) = answer.windows(4).position(|window| window == b"\r\n\r\n") else {
        bail!(
            "no complete answer head: {:?}",
            String::from_utf8_lossy(answer)
        );
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: answer[end + 4..].to_vec(),
    })
}
