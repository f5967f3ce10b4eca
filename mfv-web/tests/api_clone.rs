//! Cloning a VM over real HTTPS against a private libvirtd: the clone's disks are full,
//! separate copies holding the source's bytes, it gets its own UUID and MAC addresses and
//! keeps the CD-ROM image, and what cannot be cloned is refused before a task starts.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::guest::{guest_spec, shared};
use common::{Server, kind};
use mfv_auth::Role;
use mfv_tests::libvirtd::unique;
use mfv_vm::{Hypervisor, ImageFormat};
use serde_json::{Value, json};

/// A byte pattern no empty volume holds.
fn pattern(length: usize) -> Vec<u8> {
    (0..length)
        .map(|index| u8::try_from((index * 7 + index / 256) % 251).unwrap())
        .collect()
}

#[test]
fn a_shut_off_vm_is_cloned_with_full_copies_of_its_disks() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = server.token(Role::Admin);
    let hypervisor = Hypervisor::connect(shared.daemon.uri()).unwrap();
    let pool = unique("clone-pool");
    hypervisor
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    // A raw data disk holding a known pattern, beside a new qcow2 system disk.
    let bytes = pattern(1 << 20);
    hypervisor
        .create_volume_as(&pool, "data.img", bytes.len() as u64, ImageFormat::Raw)
        .unwrap();
    hypervisor
        .write_volume_at(
            &pool,
            "data.img",
            0,
            bytes.len() as u64,
            &mut bytes.as_slice(),
        )
        .unwrap();
    let iso = server.dir.path().join("installer.iso");
    std::fs::write(&iso, b"not really an ISO").unwrap();
    let source = unique("clone-src");
    let spec = guest_spec(
        &source,
        json!({
            "disks": [
                {"target": "vda", "source": {"new_volume": {"pool": pool, "size_gib": 1}}},
                {"target": "vdb", "source": {"volume": {"pool": pool, "volume": "data.img", "format": "raw"}}},
            ],
            "cdrom": iso,
            "nics": [{"source": {"network": "default"}, "mac": "52:54:00:10:20:30"}],
        }),
    );
    let created = server.finished_task(&server.call(admin, "POST", "/api/v1/vms", Some(spec)));
    assert_eq!(created["state"], "succeeded", "{created}");

    let copy = unique("clone-copy");
    let cloned = server.finished_task(&server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{source}/clone"),
        Some(json!({"name": copy})),
    ));
    assert_eq!(cloned["state"], "succeeded", "{cloned}");
    assert_eq!(cloned["kind"], "vm_clone");
    assert_eq!(cloned["target"], copy.as_str());
    assert_eq!(cloned["result"]["vm"]["name"], copy.as_str());
    assert_eq!(cloned["result"]["vm"]["state"], "shut_off");
    assert_eq!(cloned["result"]["source"], source.as_str());

    let show = |name: &str| {
        let shown = server.call(admin, "GET", &format!("/api/v1/vms/{name}"), None);
        assert_eq!(shown.status, 200, "{}", shown.text());
        shown.json().unwrap()["vm"].clone()
    };
    let (original, clone) = (show(&source), show(&copy));
    assert_ne!(clone["uuid"], original["uuid"]);
    let mac = |vm: &Value| vm["spec"]["nics"][0]["mac"].as_str().unwrap().to_owned();
    assert_eq!(mac(&original), "52:54:00:10:20:30");
    assert_ne!(mac(&clone), mac(&original));
    assert_eq!(clone["spec"]["cdrom"], iso.to_str().unwrap());
    assert_eq!(clone["spec"]["memory_mib"], original["spec"]["memory_mib"]);
    assert_eq!(clone["spec"]["vcpus"], original["spec"]["vcpus"]);
    assert_eq!(
        clone["spec"]["disks"][0]["source"],
        json!({"new_volume": {"pool": pool, "size_gib": 1}})
    );
    let data_copy = format!("{copy}-vdb.img");
    assert_eq!(
        clone["spec"]["disks"][1]["source"]["volume"]["volume"],
        data_copy.as_str()
    );

    // Separate volumes; the data disk's copy holds the pattern.
    let system = hypervisor
        .volume_info(&pool, &format!("{copy}-vda.qcow2"))
        .unwrap();
    let system_source = hypervisor
        .volume_info(&pool, &format!("{source}-vda.qcow2"))
        .unwrap();
    assert_ne!(system.path, system_source.path);
    assert_eq!(system.format, "qcow2");
    let data = hypervisor.volume_info(&pool, &data_copy).unwrap();
    assert_eq!(data.capacity_bytes, bytes.len() as u64);
    assert_eq!(std::fs::read(&data.path).unwrap(), bytes);
    // Writing the source afterwards leaves the copy alone.
    hypervisor
        .write_volume_at(&pool, "data.img", 0, 4, &mut &b"XXXX"[..])
        .unwrap();
    assert_eq!(std::fs::read(&data.path).unwrap(), bytes);

    // Refusals before any task: the name taken, the source's own name, a missing source.
    let clone_path = format!("/api/v1/vms/{source}/clone");
    let taken = server.call(admin, "POST", &clone_path, Some(json!({"name": copy})));
    assert_eq!((taken.status, kind(&taken)), (409, "conflict".to_owned()));
    assert!(taken.text().contains("already exists"), "{}", taken.text());
    let own = server.call(admin, "POST", &clone_path, Some(json!({"name": source})));
    assert_eq!(own.status, 400, "{}", own.text());
    assert_eq!(own.json().unwrap()["field"], "name");
    let bad = server.call(admin, "POST", &clone_path, Some(json!({"name": "a b"})));
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json().unwrap()["field"], "name");
    let missing = server.call(
        admin,
        "POST",
        "/api/v1/vms/no-such-vm/clone",
        Some(json!({"name": unique("x")})),
    );
    assert_eq!(missing.status, 404, "{}", missing.text());
    // A volume of the name a copy would take.
    let blocked = unique("clone-blocked");
    hypervisor
        .create_volume_as(&pool, &format!("{blocked}-vdb.img"), 4096, ImageFormat::Raw)
        .unwrap();
    let volume_taken = server.call(admin, "POST", &clone_path, Some(json!({"name": blocked})));
    assert_eq!(volume_taken.status, 409, "{}", volume_taken.text());
    assert!(
        volume_taken.text().contains(&format!("{blocked}-vdb.img")),
        "{}",
        volume_taken.text()
    );
    assert!(hypervisor.info(&blocked).is_err(), "nothing was defined");
    assert!(
        hypervisor
            .volume_info(&pool, &format!("{blocked}-vda.qcow2"))
            .is_err(),
        "nothing was copied"
    );

    // A running source is refused, naming its state; a clone with start runs. (A VM
    // without NIC: the private libvirtd has no network.)
    let plain = unique("clone-plain");
    let made = server.finished_task(&server.call(
        admin,
        "POST",
        "/api/v1/vms",
        Some(guest_spec(&plain, json!({}))),
    ));
    assert_eq!(made["state"], "succeeded", "{made}");
    let started = server.call(admin, "POST", &format!("/api/v1/vms/{plain}/start"), None);
    assert_eq!(started.status, 200, "{}", started.text());
    let plain_path = format!("/api/v1/vms/{plain}/clone");
    let running = server.call(
        admin,
        "POST",
        &plain_path,
        Some(json!({"name": unique("clone-of-running")})),
    );
    assert_eq!(
        (running.status, kind(&running)),
        (409, "conflict".to_owned())
    );
    assert!(running.text().contains("running"), "{}", running.text());
    hypervisor.force_off(&plain).unwrap();
    let second = unique("clone-started");
    let started_clone = server.finished_task(&server.call(
        admin,
        "POST",
        &plain_path,
        Some(json!({"name": second, "start": true})),
    ));
    assert_eq!(started_clone["state"], "succeeded", "{started_clone}");
    assert_eq!(started_clone["result"]["vm"]["state"], "running");
    hypervisor.force_off(&second).unwrap();

    // A viewer may not clone.
    let viewer = server.call(
        server.token(Role::Viewer),
        "POST",
        &clone_path,
        Some(json!({"name": unique("x")})),
    );
    assert_eq!(
        (viewer.status, kind(&viewer)),
        (403, "forbidden".to_owned())
    );

    for name in [&second, &plain, &copy, &source] {
        let deleted = server.call(
            admin,
            "DELETE",
            &format!("/api/v1/vms/{name}?volumes=delete"),
            None,
        );
        assert_eq!(deleted.status, 200, "{}", deleted.text());
    }
}
