//! The storage routes over real HTTPS against a private libvirtd with a directory pool:
//! pools and volumes with their refusals (an LVM pool on a loop device takes raw volumes
//! only), and uploads of images in chunks that survive a dropped connection and end with the
//! very bytes sent.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Server, kind, send};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use mfv_tests::libvirtd::{PrivateLibvirtd, unique};
use mfv_vm::Hypervisor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One daemon for the whole test binary.
fn daemon() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

/// A server on the private libvirtd, with a fresh directory pool.
fn server_with_pool() -> (Server, String) {
    let server = Server::with_libvirt(daemon().uri());
    let pool = unique("st-pool");
    Hypervisor::connect(daemon().uri())
        .unwrap()
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    (server, pool)
}

fn field(response: &HttpResponse) -> String {
    response.json().unwrap()["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `PUT /api/v1/uploads/{id}` with `bytes` as the chunk at `start` of an image of `total`.
fn put_chunk(
    server: &Server,
    role: Role,
    id: &str,
    start: u64,
    total: u64,
    bytes: &[u8],
) -> HttpResponse {
    let range = format!("bytes {start}-{}/{total}", start + bytes.len() as u64 - 1);
    server
        .client
        .send(
            "PUT",
            &format!("/api/v1/uploads/{id}"),
            &[
                ("authorization", server.token(role)),
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
            ],
            Some(bytes),
        )
        .unwrap()
}

/// The upload `id` once no chunk is being written.
fn settled_upload(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = send(
            server,
            Role::Operator,
            "GET",
            &format!("/api/v1/uploads/{id}"),
            None,
        );
        assert_eq!(shown.status, 200, "{}", shown.text());
        let upload = shown.json().unwrap()["upload"].clone();
        if upload["writing"] == false {
            assert_eq!(
                shown.header("upload-offset"),
                Some(upload["offset"].to_string().as_str())
            );
            return upload;
        }
        assert!(
            Instant::now() < deadline,
            "upload {id} still writing: {upload}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn started_id(started: &HttpResponse) -> String {
    assert_eq!(started.status, 201, "{}", started.text());
    started.json().unwrap()["upload"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn pools_and_volumes_are_listed_created_grown_and_deleted_with_their_refusals() {
    let (server, pool) = server_with_pool();
    let volumes = format!("/api/v1/pools/{pool}/volumes");

    let pools = send(&server, Role::Viewer, "GET", "/api/v1/pools", None);
    assert_eq!(pools.status, 200, "{}", pools.text());
    let pools = pools.json().unwrap()["pools"].clone();
    let listed = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|listed| listed["name"] == pool.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["kind"], "dir");
    assert_eq!(listed["state"], "running");
    assert_eq!(listed["autostart"], true);
    assert!(listed["capacity_bytes"].as_u64().unwrap() > 0, "{listed}");
    assert!(listed["available_bytes"].as_u64().unwrap() > 0, "{listed}");

    // A viewer may look but not create; an operator may.
    let disk = json!({"name": "disk.qcow2", "size_gib": 1});
    let refused = send(&server, Role::Viewer, "POST", &volumes, Some(disk.clone()));
    assert_eq!(
        (refused.status, kind(&refused)),
        (403, "forbidden".to_owned())
    );
    let created = send(
        &server,
        Role::Operator,
        "POST",
        &volumes,
        Some(disk.clone()),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json().unwrap()["volume"].clone();
    assert_eq!(created["name"], "disk.qcow2");
    assert_eq!(created["format"], "qcow2");
    assert_eq!(created["capacity_bytes"], 1u64 << 30);
    let raw = send(
        &server,
        Role::Operator,
        "POST",
        &volumes,
        Some(json!({"name": "data.img", "size_bytes": 1 << 20, "format": "raw"})),
    );
    assert_eq!(raw.status, 201, "{}", raw.text());
    assert_eq!(raw.json().unwrap()["volume"]["format"], "raw");
    let again = send(&server, Role::Operator, "POST", &volumes, Some(disk));
    assert_eq!((again.status, kind(&again)), (409, "conflict".to_owned()));

    for (body, wrong) in [
        (json!({"name": "x.img"}), "size_gib"),
        (json!({"name": "x.img", "size_gib": 0}), "size_gib"),
        (json!({"name": "x.img", "size_gib": "ten"}), "size_gib"),
        (json!({"name": "x.img", "size_bytes": -5}), "size_bytes"),
        (
            json!({"name": "x.img", "size_gib": 1, "size_bytes": 1}),
            "size_bytes",
        ),
        (json!({"name": "../x.img", "size_gib": 1}), "name"),
        (json!({"name": "a/b", "size_gib": 1}), "name"),
        (
            json!({"name": "x.img", "size_gib": 1, "format": "vmdk"}),
            "format",
        ),
        (
            json!({"name": "x.img", "size_gib": 1, "owner": "me"}),
            "owner",
        ),
    ] {
        let bad = send(&server, Role::Admin, "POST", &volumes, Some(body.clone()));
        assert_eq!(bad.status, 400, "{body}: {}", bad.text());
        assert_eq!(field(&bad), wrong, "{body}");
    }
    let no_pool = send(
        &server,
        Role::Admin,
        "POST",
        "/api/v1/pools/no-such-pool/volumes",
        Some(json!({"name": "x.img", "size_gib": 1})),
    );
    assert_eq!((no_pool.status, field(&no_pool)), (404, "pool".to_owned()));
    let no_pool = send(
        &server,
        Role::Viewer,
        "GET",
        "/api/v1/pools/no-such-pool/volumes",
        None,
    );
    assert_eq!((no_pool.status, field(&no_pool)), (404, "pool".to_owned()));

    let listed = send(&server, Role::Viewer, "GET", &volumes, None);
    assert_eq!(listed.status, 200, "{}", listed.text());
    let names: Vec<Value> = listed.json().unwrap()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|volume| volume["name"].clone())
        .collect();
    assert_eq!(names, [json!("data.img"), json!("disk.qcow2")]);

    // Grown, never shrunk.
    let size = format!("{volumes}/disk.qcow2/size");
    let grown = send(
        &server,
        Role::Operator,
        "PUT",
        &size,
        Some(json!({"size_bytes": 2u64 << 30})),
    );
    assert_eq!(grown.status, 200, "{}", grown.text());
    assert_eq!(
        grown.json().unwrap()["volume"]["capacity_bytes"],
        2u64 << 30
    );
    let shrink = send(
        &server,
        Role::Operator,
        "PUT",
        &size,
        Some(json!({"size_bytes": 1 << 20})),
    );
    assert_eq!(
        (shrink.status, field(&shrink)),
        (400, "size_bytes".to_owned())
    );
    assert!(shrink.text().contains("shrinking"), "{}", shrink.text());
    let zero = send(
        &server,
        Role::Operator,
        "PUT",
        &size,
        Some(json!({"size_bytes": 0})),
    );
    assert_eq!((zero.status, field(&zero)), (400, "size_bytes".to_owned()));
    let missing = send(
        &server,
        Role::Operator,
        "PUT",
        &format!("{volumes}/none.img/size"),
        Some(json!({"size_bytes": 1 << 30})),
    );
    assert_eq!(
        (missing.status, field(&missing)),
        (404, "volume".to_owned())
    );

    // Names that are paths never reach a handler.
    for path in [
        format!("{volumes}/.."),
        format!("{volumes}/..%2Fdisk.qcow2"),
        format!("{volumes}/a%2Fb"),
        format!("/api/v1/pools/..%2F{pool}/volumes/disk.qcow2"),
    ] {
        let refused = send(&server, Role::Admin, "DELETE", &path, None);
        assert_eq!(refused.status, 404, "{path}: {}", refused.text());
    }

    // A volume a VM uses stays, naming the VM.
    let hypervisor = Hypervisor::connect(daemon().uri()).unwrap();
    let vm = unique("st-user");
    hypervisor
        .define(&format!(
            "<domain type='qemu'><name>{vm}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
             <driver name='qemu' type='qcow2'/><source file='{}'/>\
             <target dev='vda' bus='virtio'/></disk></devices></domain>",
            created["path"].as_str().unwrap()
        ))
        .unwrap();
    let in_use = send(
        &server,
        Role::Admin,
        "DELETE",
        &format!("{volumes}/disk.qcow2"),
        None,
    );
    assert_eq!((in_use.status, kind(&in_use)), (409, "conflict".to_owned()));
    assert!(in_use.text().contains(&vm), "{}", in_use.text());
    // The pool's listing says which VM uses the volume, and that the others are free.
    let listed = send(&server, Role::Viewer, "GET", &volumes, None);
    assert_eq!(listed.status, 200, "{}", listed.text());
    for volume in listed.json().unwrap()["volumes"].as_array().unwrap() {
        let expected = if volume["name"] == "disk.qcow2" {
            json!([vm])
        } else {
            json!([])
        };
        assert_eq!(volume["used_by"], expected, "{volume}");
    }
    hypervisor
        .undefine(&vm, mfv_vm::VolumePolicy::Keep)
        .unwrap();

    let viewer = send(
        &server,
        Role::Viewer,
        "DELETE",
        &format!("{volumes}/disk.qcow2"),
        None,
    );
    assert_eq!(viewer.status, 403);
    for name in ["disk.qcow2", "data.img"] {
        let deleted = send(
            &server,
            Role::Operator,
            "DELETE",
            &format!("{volumes}/{name}"),
            None,
        );
        assert_eq!(deleted.status, 200, "{}", deleted.text());
    }
    let gone = send(
        &server,
        Role::Operator,
        "DELETE",
        &format!("{volumes}/data.img"),
        None,
    );
    assert_eq!((gone.status, field(&gone)), (404, "volume".to_owned()));
    let listed = send(&server, Role::Viewer, "GET", &volumes, None);
    assert_eq!(listed.json().unwrap()["volumes"], json!([]));
}

#[test]
fn an_upload_in_chunks_survives_a_dropped_connection_and_ends_with_the_bytes_sent() {
    let (server, pool) = server_with_pool();
    let image: Vec<u8> = (0..3 * 1024 * 1024 + 17u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let total = image.len() as u64;
    let chunk = 1024 * 1024;
    let uploads = format!("/api/v1/pools/{pool}/uploads");
    let iso = json!({"name": "install.iso", "size_bytes": total, "format": "iso"});

    let refused = send(&server, Role::Viewer, "POST", &uploads, Some(iso.clone()));
    assert_eq!(refused.status, 403);
    for (body, wrong) in [
        (
            json!({"name": "a.iso", "size_bytes": 0, "format": "iso"}),
            "size_bytes",
        ),
        (
            json!({"name": "a.iso", "size_bytes": 10, "format": "vhd"}),
            "format",
        ),
        (
            json!({"name": "..", "size_bytes": 10, "format": "iso"}),
            "name",
        ),
        (json!({"name": "a.iso", "format": "iso"}), "size_bytes"),
    ] {
        let bad = send(
            &server,
            Role::Operator,
            "POST",
            &uploads,
            Some(body.clone()),
        );
        assert_eq!((bad.status, field(&bad)), (400, wrong.to_owned()), "{body}");
    }
    let started = send(&server, Role::Operator, "POST", &uploads, Some(iso.clone()));
    let id = started_id(&started);
    assert_eq!(
        started.header("location"),
        Some(format!("/api/v1/uploads/{id}").as_str())
    );
    let upload = started.json().unwrap()["upload"].clone();
    assert_eq!(upload["offset"], 0);
    assert_eq!(upload["state"], "receiving");
    assert_eq!(upload["started_by"], "otto");

    // The volume is there at once, and is not deleted while the upload writes it.
    let volume = format!("/api/v1/pools/{pool}/volumes/install.iso");
    let busy = send(&server, Role::Admin, "DELETE", &volume, None);
    assert_eq!((busy.status, kind(&busy)), (409, "conflict".to_owned()));
    assert!(
        busy.text().contains(&format!("upload {id}")),
        "{}",
        busy.text()
    );

    // The first chunk; a viewer may not send one. (Refused requests carry small bodies: the
    // server answers them without reading the body.)
    let viewer = put_chunk(&server, Role::Viewer, &id, 0, total, &image[..10]);
    assert_eq!(viewer.status, 403);
    let first = put_chunk(&server, Role::Operator, &id, 0, total, &image[..chunk]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json().unwrap()["upload"]["offset"], chunk);
    assert_eq!(first.json().unwrap()["volume"], Value::Null);

    // A chunk at the wrong offset is refused with the right one.
    let wrong = put_chunk(&server, Role::Operator, &id, 0, total, &image[..10]);
    assert_eq!(wrong.status, 409, "{}", wrong.text());
    assert_eq!(wrong.json().unwrap()["offset"], chunk);
    assert_eq!(
        wrong.header("upload-offset"),
        Some(chunk.to_string().as_str())
    );
    // A body past the image's end, one of another image's size, and one without a range
    // are refused, and the upload stays where it was.
    let over = put_chunk(&server, Role::Operator, &id, total - 5, total, &[7; 10]);
    assert_eq!(
        (over.status, kind(&over)),
        (413, "too_large".to_owned()),
        "{}",
        over.text()
    );
    let other_size = put_chunk(
        &server,
        Role::Operator,
        &id,
        chunk as u64,
        total + 1,
        &image[chunk..chunk + 10],
    );
    assert_eq!(
        (other_size.status, field(&other_size)),
        (400, "content-range".to_owned())
    );
    let no_range = server
        .client
        .send(
            "PUT",
            &format!("/api/v1/uploads/{id}"),
            &[("authorization", server.token(Role::Operator))],
            Some(b"abc"),
        )
        .unwrap();
    assert_eq!(
        (no_range.status, field(&no_range)),
        (400, "content-range".to_owned())
    );
    // A body longer than its Content-Range (chunked, so no length warns first), and one
    // declaring more than any chunk may hold.
    let token = server.token(Role::Operator);
    let longer = format!(
        "PUT /api/v1/uploads/{id} HTTP/1.1\r\nhost: vmhost\r\nconnection: close\r\n\
         authorization: {token}\r\ncontent-range: bytes {chunk}-{}/{total}\r\n\
         transfer-encoding: chunked\r\n\r\n14\r\n{}\r\n0\r\n\r\n",
        chunk + 9,
        "x".repeat(20),
    );
    let longer = server.client.send_raw(longer.as_bytes()).unwrap();
    assert_eq!(
        (longer.status, kind(&longer)),
        (413, "too_large".to_owned()),
        "{}",
        longer.text()
    );
    let huge = format!(
        "PUT /api/v1/uploads/{id} HTTP/1.1\r\nhost: vmhost\r\nconnection: close\r\n\
         authorization: {token}\r\ncontent-range: bytes {chunk}-{}/{total}\r\n\
         content-length: {}\r\n\r\n",
        chunk + 9,
        70u64 << 30,
    );
    let huge = server.client.send_raw(huge.as_bytes()).unwrap();
    assert_eq!((huge.status, kind(&huge)), (413, "too_large".to_owned()));
    assert_eq!(settled_upload(&server, &id)["offset"], chunk);

    // The connection drops halfway through the second chunk: the upload stays at the
    // chunk's start.
    let mut stream = server.client.connect().unwrap();
    let head = format!(
        "PUT /api/v1/uploads/{id} HTTP/1.1\r\nhost: vmhost\r\nauthorization: {}\r\n\
         content-type: application/octet-stream\r\ncontent-range: bytes {chunk}-{}/{total}\r\n\
         content-length: {chunk}\r\n\r\n",
        server.token(Role::Operator),
        2 * chunk - 1,
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&image[chunk..chunk + chunk / 2]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let in_flight = send(
        &server,
        Role::Operator,
        "GET",
        &format!("/api/v1/uploads/{id}"),
        None,
    );
    assert_eq!(
        in_flight.json().unwrap()["upload"]["writing"],
        true,
        "the half chunk is being written"
    );
    stream.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let upload = settled_upload(&server, &id);
    assert_eq!(upload["offset"], chunk, "{upload}");
    assert_eq!(upload["state"], "receiving");

    // A chunk that stalls with the connection open is given up once nothing arrived for
    // the idle limit (3 s in these tests): the answer says where to resume from.
    let mut stalled = server.client.connect().unwrap();
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&image[chunk..chunk + chunk / 4]).unwrap();
    stalled.flush().unwrap();
    stalled
        .sock
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stalled.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""kind":"timeout""#), "{answer}");
    assert!(
        answer.contains(&format!("stays at byte {chunk}: send again from there")),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let upload = settled_upload(&server, &id);
    assert_eq!(upload["offset"], chunk, "{upload}");

    // The client resumes from the offset it is told, chunk by chunk.
    let mut offset = usize::try_from(upload["offset"].as_u64().unwrap()).unwrap();
    let mut last = Value::Null;
    while offset < image.len() {
        let end = (offset + chunk).min(image.len());
        let sent = put_chunk(
            &server,
            Role::Operator,
            &id,
            offset as u64,
            total,
            &image[offset..end],
        );
        assert_eq!(sent.status, 200, "{}", sent.text());
        last = sent.json().unwrap();
        offset = usize::try_from(last["upload"]["offset"].as_u64().unwrap()).unwrap();
        assert_eq!(offset, end);
    }
    assert_eq!(last["upload"]["state"], "complete");
    assert_eq!(last["volume"]["capacity_bytes"], total);
    let path = last["volume"]["path"].as_str().unwrap();
    assert_eq!(
        Sha256::digest(std::fs::read(path).unwrap()),
        Sha256::digest(&image),
        "the volume holds the bytes sent"
    );
    let listed = send(
        &server,
        Role::Viewer,
        "GET",
        &format!("/api/v1/pools/{pool}/volumes"),
        None,
    );
    assert_eq!(listed.json().unwrap()["volumes"][0]["name"], "install.iso");
    let all = send(&server, Role::Operator, "GET", "/api/v1/uploads", None);
    assert!(
        all.json().unwrap()["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|upload| upload["id"] == id.as_str() && upload["state"] == "complete"),
        "{}",
        all.text()
    );
    let late = put_chunk(&server, Role::Operator, &id, 0, total, &image[..10]);
    assert_eq!((late.status, kind(&late)), (409, "conflict".to_owned()));
    let cancel = send(
        &server,
        Role::Operator,
        "DELETE",
        &format!("/api/v1/uploads/{id}"),
        None,
    );
    assert_eq!(
        (cancel.status, kind(&cancel)),
        (409, "conflict".to_owned()),
        "a complete upload is not cancelled"
    );
    let deleted = send(&server, Role::Operator, "DELETE", &volume, None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}

#[test]
fn a_qcow2_upload_is_checked_cancelled_and_read_back_as_qcow2() {
    let (server, pool) = server_with_pool();
    let uploads = format!("/api/v1/pools/{pool}/uploads");

    // Not a qcow2 image: refused at its first bytes, and the upload cancelled with its volume.
    let id = started_id(&send(
        &server,
        Role::Operator,
        "POST",
        &uploads,
        Some(json!({"name": "fake.qcow2", "size_bytes": 4096, "format": "qcow2"})),
    ));
    let zeros = put_chunk(&server, Role::Operator, &id, 0, 4096, &[0; 4096]);
    assert_eq!(
        (zeros.status, field(&zeros)),
        (400, "format".to_owned()),
        "{}",
        zeros.text()
    );
    assert_eq!(settled_upload(&server, &id)["offset"], 0);
    let viewer = send(
        &server,
        Role::Viewer,
        "DELETE",
        &format!("/api/v1/uploads/{id}"),
        None,
    );
    assert_eq!(viewer.status, 403);
    let cancelled = send(
        &server,
        Role::Operator,
        "DELETE",
        &format!("/api/v1/uploads/{id}"),
        None,
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let gone = send(
        &server,
        Role::Operator,
        "GET",
        &format!("/api/v1/uploads/{id}"),
        None,
    );
    assert_eq!((gone.status, field(&gone)), (404, "id".to_owned()));
    let listed = send(
        &server,
        Role::Viewer,
        "GET",
        &format!("/api/v1/pools/{pool}/volumes"),
        None,
    );
    assert_eq!(listed.json().unwrap()["volumes"], json!([]));

    // A real qcow2 image in one chunk: libvirt reads its format and virtual size.
    let file = server.dir.path().join("small.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&file)
        .arg("64M")
        .status()
        .unwrap();
    assert!(made.success());
    let image = std::fs::read(&file).unwrap();
    let id = started_id(&send(
        &server,
        Role::Operator,
        "POST",
        &uploads,
        Some(json!({"name": "small.qcow2", "size_bytes": image.len(), "format": "qcow2"})),
    ));
    let sent = put_chunk(&server, Role::Operator, &id, 0, image.len() as u64, &image);
    assert_eq!(sent.status, 200, "{}", sent.text());
    let volume = sent.json().unwrap()["volume"].clone();
    assert_eq!(volume["format"], "qcow2", "{volume}");
    assert_eq!(volume["capacity_bytes"], 64u64 << 20, "{volume}");
}

#[test]
fn an_lvm_pool_takes_raw_volumes_only_and_refuses_a_qcow2_naming_the_format() {
    let server = Server::with_libvirt(daemon().uri());
    let device = mfv_tests::loop_device::LoopDevice::blank(64 << 20).unwrap();
    let pool = unique("st-lvm");
    let hypervisor = Hypervisor::connect(daemon().uri()).unwrap();
    hypervisor
        .ensure_logical_pool(&pool, device.path())
        .unwrap();

    // Refused before LVM is asked: a qcow2 would need a sparse snapshot volume.
    let qcow2 = send(
        &server,
        Role::Admin,
        "POST",
        &format!("/api/v1/pools/{pool}/volumes"),
        Some(json!({"name": "disk", "size_bytes": 4 << 20, "format": "qcow2"})),
    );
    let refused = (qcow2.status, field(&qcow2));
    hypervisor.forget_pool(&pool).unwrap();
    let _ = std::process::Command::new("vgremove")
        .args(["-f", &pool])
        .status();
    assert_eq!(refused, (400, "format".to_owned()), "{}", qcow2.text());
    assert!(
        qcow2.text().contains("holds raw volumes only"),
        "{}",
        qcow2.text()
    );
}
