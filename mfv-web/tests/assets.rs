//! The embedded bundles over real HTTPS on loopback, as a set-up host serves them beside its
//! page and its API (users in a real SQLite auth database): the content type, the encoding
//! chosen by `Accept-Encoding`, the bytes (each encoding decompresses to the built file,
//! whose SHA-256 its name carries), `HEAD`, `404` for a name that is not a bundle, and the
//! year-long caching on bundles only.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::io::Read;
use std::path::PathBuf;

use mfv_tests::https::{HttpResponse, HttpsClient};
use mfv_web::assets::{Bundle, href};
use mfv_web::server::{Limits, Listeners, serve};
use sha2::{Digest, Sha256};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A set-up host's routes (its page, its API, the bundles) on a free port.
struct SetUpHost {
    client: HttpsClient,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl SetUpHost {
    fn start() -> SetUpHost {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().to_owned();
        let identity = mfv_host::web_identity::WebIdentity::generate("vmhost").unwrap();
        let tls = mfv_web::tls::server_config_for(&identity).unwrap();
        let https = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = https.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            common::runtime().block_on(async move {
                let api = common::api(
                    common::authenticator(&database).await,
                    std::sync::Arc::new(mfv_web::api::links::NoHostDaemon),
                    None,
                    None,
                );
                https.set_nonblocking(true).unwrap();
                let listeners = Listeners {
                    https: tokio::net::TcpListener::from_std(https).unwrap(),
                    http: None,
                    bench_http: None,
                };
                let routes = mfv_web::set_up::routes("/dev/vdb".to_owned(), Ok(api));
                serve(
                    listeners,
                    tls,
                    warp::service(routes),
                    Limits::default(),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
            });
        });
        SetUpHost {
            client: HttpsClient::new(address, "vmhost").unwrap(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for SetUpHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// The file `cargo xtask web` built for `bundle`, as `web/dist/` holds it.
fn built(bundle: Bundle) -> Vec<u8> {
    let file = href(bundle).strip_prefix("/assets/").unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("web/dist")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// `answer`'s body decoded as its `Content-Encoding` says.
fn decoded(answer: &HttpResponse) -> Vec<u8> {
    let mut plain = Vec::new();
    match answer.header("content-encoding") {
        Some("br") => {
            brotli_decompressor::Decompressor::new(answer.body.as_slice(), 4096)
                .read_to_end(&mut plain)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(answer.body.as_slice())
                .read_to_end(&mut plain)
                .unwrap();
        }
        None => plain.clone_from(&answer.body),
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    plain
}

#[test]
fn each_bundle_is_served_in_the_smallest_encoding_the_client_takes() {
    let host = SetUpHost::start();
    for (bundle, content_type) in [
        (Bundle::VncJs, "text/javascript; charset=utf-8"),
        (Bundle::SerialJs, "text/javascript; charset=utf-8"),
        (Bundle::SerialCss, "text/css; charset=utf-8"),
        (Bundle::AppCss, "text/css; charset=utf-8"),
        (Bundle::IconSvg, "image/svg+xml"),
    ] {
        let plain = built(bundle);
        let hash = format!("{:x}", Sha256::digest(&plain));
        assert!(
            href(bundle).contains(&format!(".{}.", &hash[..10])),
            "{} does not carry the hash of its content {hash}",
            href(bundle)
        );
        let mut sizes = Vec::new();
        for (accepted, encoding) in [
            ("gzip, deflate, br, zstd", Some("br")),
            ("gzip, deflate", Some("gzip")),
            ("br;q=0, gzip", Some("gzip")),
            ("identity", None),
        ] {
            let answer = host
                .client
                .get(href(bundle), &[("accept-encoding", accepted)])
                .unwrap();
            let name = format!("{} with {accepted:?}", bundle.logical());
            assert_eq!(answer.status, 200, "{name}");
            assert_eq!(answer.header("content-type"), Some(content_type), "{name}");
            assert_eq!(answer.header("content-encoding"), encoding, "{name}");
            assert_eq!(answer.header("vary"), Some("accept-encoding"), "{name}");
            assert_eq!(answer.header("cache-control"), Some(IMMUTABLE), "{name}");
            assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(
                answer.header("content-length"),
                Some(answer.body.len().to_string().as_str()),
                "{name}"
            );
            assert!(decoded(&answer) == plain, "{name}: other bytes than built");
            sizes.push(answer.body.len());
        }
        assert!(
            sizes[0] < sizes[1] && sizes[1] < sizes[3],
            "{}: brotli, gzip, plain sizes {sizes:?}",
            bundle.logical()
        );
    }
}

#[test]
fn head_answers_the_headers_of_get_without_the_body() {
    let host = SetUpHost::start();
    let get = host
        .client
        .get(href(Bundle::VncJs), &[("accept-encoding", "gzip")])
        .unwrap();
    let head = host
        .client
        .send(
            "HEAD",
            href(Bundle::VncJs),
            &[("accept-encoding", "gzip")],
            None,
        )
        .unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{} bytes", head.body.len());
    for name in [
        "content-type",
        "content-encoding",
        "content-length",
        "cache-control",
        "vary",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
}

#[test]
fn a_name_that_is_no_bundle_is_not_found_and_only_bundles_are_cached() {
    let host = SetUpHost::start();
    let built = href(Bundle::VncJs);
    let hash_at = built.len() - ".0123456789.js".len() + 1;
    let mut wrong_hash = built.to_owned();
    wrong_hash.replace_range(hash_at..hash_at + 10, "0000000000");
    for path in [
        wrong_hash.as_str(),
        "/assets/nothing.0123456789.css",
        "/assets/vnc.js",
        "/assets/vnc.0123456789.html",
    ] {
        let answer = host.client.get(path, &[]).unwrap();
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(common::kind(&answer), "not_found", "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
    }
    let wrong = host.client.get(&wrong_hash, &[]).unwrap();
    assert!(wrong.text().contains("reload the page"), "{}", wrong.text());

    let posted = host
        .client
        .send("POST", built, &[], Some(b"x".as_slice()))
        .unwrap();
    assert_ne!(posted.status, 200);
    assert_eq!(posted.header("cache-control"), Some("no-store"));

    for (path, status) in [
        ("/login", 200),
        ("/", 303),
        ("/api/v1/openapi.json", 200),
        ("/api/v1/session", 401),
    ] {
        let answer = host.client.get(path, &[]).unwrap();
        assert_eq!(answer.status, status, "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(answer.header("content-encoding"), None, "{path}");
    }
}
