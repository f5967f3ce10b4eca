//! Fetches of images from a URL over real HTTPS against a private libvirtd with a directory
//! pool, from a small HTTP server on loopback started by the test: the volume ends with the
//! very bytes served and their checksum checked, and every failure leaves no volume and
//! names the host.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::OnceLock;

use common::{Server, kind};
use mfv_auth::Role;
use mfv_tests::libvirtd::{PrivateLibvirtd, unique};
use mfv_vm::{Hypervisor, VirtError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One daemon for the whole test binary.
fn daemon() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

/// The image the HTTP server serves: 3 MiB of a pattern.
fn image() -> Vec<u8> {
    (0..3u32 << 20)
        .map(|index| u8::try_from((index * 13 + index / 4096) % 241).unwrap())
        .collect()
}

/// An HTTP/1.1 server on loopback answering each connection once: `/image.iso` the image,
/// `/moved` a redirect to it, `/short` half of it then a cut, `/chunked` without a length,
/// `/huge` the head of a 1 PiB image, `/loop` a redirect to itself, `/to-file` a redirect to
/// a file URL, anything else 404. Returns its address.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let image = image();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or_default();
            let head = |status: &str, extra: &str| {
                format!("HTTP/1.1 {status}\r\nconnection: close\r\n{extra}\r\n")
            };
            let _ = match path {
                "/image.iso" => stream
                    .write_all(
                        head("200 OK", &format!("content-length: {}\r\n", image.len())).as_bytes(),
                    )
                    .and_then(|()| stream.write_all(&image)),
                "/moved" => stream.write_all(
                    head("302 Found", "location: /image.iso\r\ncontent-length: 0\r\n").as_bytes(),
                ),
                "/short" => stream
                    .write_all(
                        head("200 OK", &format!("content-length: {}\r\n", image.len())).as_bytes(),
                    )
                    .and_then(|()| stream.write_all(&image[..image.len() / 2])),
                "/chunked" => stream
                    .write_all(head("200 OK", "transfer-encoding: chunked\r\n").as_bytes())
                    .and_then(|()| stream.write_all(b"5\r\nhello\r\n0\r\n\r\n")),
                "/huge" => stream
                    .write_all(head("200 OK", "content-length: 1125899906842624\r\n").as_bytes()),
                "/loop" => stream.write_all(
                    head("302 Found", "location: /loop\r\ncontent-length: 0\r\n").as_bytes(),
                ),
                "/to-file" => stream.write_all(
                    head(
                        "302 Found",
                        "location: file:///etc/passwd\r\ncontent-length: 0\r\n",
                    )
                    .as_bytes(),
                ),
                _ => stream
                    .write_all(head("404 Not Found", "content-length: 9\r\n").as_bytes())
                    .and_then(|()| stream.write_all(b"not found")),
            };
        }
    });
    address
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn images_are_fetched_into_volumes_and_failures_leave_none() {
    let server = Server::with_libvirt(daemon().uri());
    let admin = server.token(Role::Admin);
    let hypervisor = Hypervisor::connect(daemon().uri()).unwrap();
    let pool = unique("fetch-pool");
    hypervisor
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    let http = http_server();
    let fetches = format!("/api/v1/pools/{pool}/fetches");
    let fetch = |body: Value| server.call(admin, "POST", &fetches, Some(body));
    let gone = |volume: &str| {
        matches!(
            hypervisor.volume_info(&pool, volume),
            Err(VirtError::NotFound { .. })
        )
    };
    let image = image();
    let digest = hex(&Sha256::digest(&image));

    // Through a redirect, the checksum checked: the volume holds the very bytes.
    let done = server.finished_task(&fetch(json!({
            "url": format!("http://{http}/moved"), "volume": "fetched.iso", "sha256": digest.to_uppercase()
        })),
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["kind"], "volume_fetch");
    assert_eq!(done["target"], format!("{pool}/fetched.iso"));
    assert_eq!(done["result"]["sha256"], digest.as_str());
    assert_eq!(done["result"]["sha256_checked"], true);
    assert_eq!(done["result"]["url"], format!("http://{http}/image.iso"));
    assert_eq!(done["result"]["size_bytes"], image.len());
    let volume = hypervisor.volume_info(&pool, "fetched.iso").unwrap();
    assert_eq!(std::fs::read(&volume.path).unwrap(), image);

    // The volume exists now: refused before a task.
    let taken = fetch(json!({"url": format!("http://{http}/image.iso"), "volume": "fetched.iso"}));
    assert_eq!((taken.status, kind(&taken)), (409, "conflict".to_owned()));
    assert_eq!(taken.json().unwrap()["field"], "volume");

    // A wrong checksum: the task fails with both digests, the volume is gone.
    let wrong = "0".repeat(64);
    let failed = server.finished_task(&fetch(
        json!({"url": format!("http://{http}/image.iso"), "volume": "bad.iso", "sha256": wrong}),
    ));
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "checksum_mismatch");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&digest) && message.contains(&wrong),
        "{message}"
    );
    assert!(gone("bad.iso"));

    // 404, a cut body, no length, redirects too many or to a file, an image larger than
    // the pool, connection refused: failed naming the host, no volume.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = closed.local_addr().unwrap().port();
    drop(closed);
    for (url, volume, says) in [
        (format!("http://{http}/missing"), "missing.iso", "404"),
        (format!("http://{http}/short"), "short.iso", "broke off"),
        (
            format!("http://{http}/chunked"),
            "chunked.iso",
            "Content-Length",
        ),
        (
            format!("http://{http}/loop"),
            "loop.iso",
            "more than 5 redirects",
        ),
        (
            format!("http://{http}/to-file"),
            "to-file.iso",
            "only http and https",
        ),
        (format!("http://{http}/huge"), "huge.iso", "bytes free"),
        (
            format!("http://127.0.0.1:{refused_port}/x.iso"),
            "refused.iso",
            "refused the connection",
        ),
    ] {
        let failed = server.finished_task(&fetch(json!({"url": url, "volume": volume})));
        assert_eq!(failed["state"], "failed", "{failed}");
        let expected_kind = if volume == "huge.iso" {
            "too_large"
        } else {
            "fetch_failed"
        };
        assert_eq!(failed["error"]["kind"], expected_kind, "{failed}");
        let message = failed["error"]["message"].as_str().unwrap();
        assert!(message.contains("host 127.0.0.1"), "{message}");
        assert!(message.contains(says), "{says}: {message}");
        assert!(gone(volume), "{volume}");
    }

    // Refused at once: other schemes, credentials, no host, a bad digest, a missing pool.
    for (body, field) in [
        (
            json!({"url": "file:///etc/passwd", "volume": "p.iso"}),
            "url",
        ),
        (
            json!({"url": "ftp://127.0.0.1/x.iso", "volume": "p.iso"}),
            "url",
        ),
        (
            json!({"url": format!("http://u:p@{http}/image.iso"), "volume": "p.iso"}),
            "url",
        ),
        (json!({"url": "http://", "volume": "p.iso"}), "url"),
        (
            json!({"url": format!("http://{http}/image.iso"), "volume": "p.iso", "sha256": "abc"}),
            "sha256",
        ),
        (
            json!({"url": format!("http://{http}/image.iso"), "volume": "../p.iso"}),
            "volume",
        ),
    ] {
        let refused = fetch(body.clone());
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
        assert_eq!(refused.json().unwrap()["field"], field, "{body}");
    }
    assert!(gone("p.iso"));
    let no_pool = server.call(
        admin,
        "POST",
        "/api/v1/pools/no-such-pool/fetches",
        Some(json!({"url": format!("http://{http}/image.iso"), "volume": "p.iso"})),
    );
    assert_eq!(no_pool.status, 404, "{}", no_pool.text());

    // A viewer may not fetch.
    let viewer = server.call(
        server.token(Role::Viewer),
        "POST",
        &fetches,
        Some(json!({"url": format!("http://{http}/image.iso"), "volume": "v.iso"})),
    );
    assert_eq!(
        (viewer.status, kind(&viewer)),
        (403, "forbidden".to_owned())
    );
}
