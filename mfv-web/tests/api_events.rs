//! The event stream and the CD-ROM routes over real HTTPS, against a private libvirtd running
//! the tiny test guest under real QEMU (TCG): VM changes and tasks seen as they happen, the
//! stream's end with its caller's session, and media changed in a running guest.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::time::Duration;

use common::guest::{guest_spec, shared};
use common::{EventStream, PASSWORD, Server, StreamEvent, kind};
use mfv_auth::Role;
use mfv_tests::libvirtd::unique;
use mfv_vm::Hypervisor;
use mfv_web::api::SESSION_RECHECK;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn vm_event(stream: &mut EventStream, name: &str, state: &str) -> StreamEvent {
    stream.wait_for(WAIT, |event| {
        event.event == "vm" && event.data["name"] == name && event.data["state"] == state
    })
}

fn task_event(stream: &mut EventStream, id: &str, state: &str) -> StreamEvent {
    stream.wait_for(WAIT, |event| {
        event.event == "task" && event.data["id"] == id && event.data["state"] == state
    })
}

fn task_id(started: &mfv_tests::https::HttpResponse) -> String {
    assert_eq!(started.status, 202, "{}", started.text());
    started.json().unwrap()["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_viewer_sees_a_vm_created_started_stopped_and_deleted_and_its_tasks() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = server.token(Role::Admin).to_owned();
    let mut stream = server.events(server.token(Role::Viewer));
    assert_eq!(
        stream.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let ready = stream.next_within(WAIT).unwrap();
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.data["vm_events"], true);
    let name = unique("events");

    let created = server.call(
        &admin,
        "POST",
        "/api/v1/vms",
        Some(guest_spec(&name, json!({}))),
    );
    let create = task_id(&created);
    let running = task_event(&mut stream, &create, "running");
    assert_eq!(running.data["kind"], "vm_create");
    let done = task_event(&mut stream, &create, "succeeded");
    assert_eq!(done.data["progress"], 100);
    assert_eq!(done.data["result"]["vm"]["name"], name.as_str());
    assert!(done.id > running.id, "ids increase: {running:?} {done:?}");
    let defined = vm_event(&mut stream, &name, "shut_off");
    assert_eq!(defined.data["reason"], "defined");

    let start = format!("/api/v1/vms/{name}/start");
    assert_eq!(server.call(&admin, "POST", &start, None).status, 200);
    let started = vm_event(&mut stream, &name, "running");
    assert_eq!(started.data["reason"], "started");
    assert_eq!(started.data["previous"], "shut_off");
    let forced = server.call(
        &admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(forced.status, 200, "{}", forced.text());
    let stopped = vm_event(&mut stream, &name, "shut_off");
    assert_eq!(stopped.data["reason"], "stopped");

    // A shutdown task: it starts, says what it does, and ends with the VM forced off (the
    // guest ignores ACPI).
    assert_eq!(server.call(&admin, "POST", &start, None).status, 200);
    vm_event(&mut stream, &name, "running");
    let shutdown = server.call(
        &admin,
        "POST",
        &format!("/api/v1/vms/{name}/shutdown"),
        Some(json!({"deadline_secs": 2})),
    );
    let shutdown = task_id(&shutdown);
    task_event(&mut stream, &shutdown, "running");
    let progress = stream.wait_for(WAIT, |event| {
        event.event == "task"
            && event.data["id"] == shutdown.as_str()
            && event.data["message"]
                .as_str()
                .is_some_and(|message| message.contains("forcing it off after 2 s"))
    });
    assert_eq!(progress.data["state"], "running");
    let ended = task_event(&mut stream, &shutdown, "succeeded");
    assert_eq!(ended.data["result"]["outcome"], "forced_off");
    vm_event(&mut stream, &name, "shut_off");

    let deleted = server.call(&admin, "DELETE", &format!("/api/v1/vms/{name}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let gone = stream.wait_for(WAIT, |event| {
        event.event == "vm" && event.data["name"] == name.as_str() && event.data["state"].is_null()
    });
    assert_eq!(gone.data["reason"], "undefined");
    assert!(!stream.ended);
}

#[test]
fn a_stream_needs_credentials_and_ends_with_its_session() {
    let server = Server::with_libvirt(shared().daemon.uri());
    let anonymous = server.open_stream("/api/v1/events", &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.head);
    let wrong = server.open_stream("/api/v1/events", &[("authorization", "Bearer nonsense")]);
    assert_eq!(wrong.status, 401, "{}", wrong.head);

    let browser = server.sign_in("vera", PASSWORD).unwrap();
    let mut stream = server.open_stream("/api/v1/events", &[("cookie", &browser.cookie)]);
    assert_eq!(stream.status, 200, "{}", stream.head);
    assert_eq!(stream.next_within(WAIT).unwrap().event, "ready");
    // Still open after a re-check while the session lives.
    assert!(stream.next_within(SESSION_RECHECK * 2).is_none());
    assert!(!stream.ended);

    let logout = server.call_as(&browser, "DELETE", "/api/v1/session", None);
    assert_eq!(logout.status, 200, "{}", logout.text());
    let end = stream
        .next_within(SESSION_RECHECK * 2 + Duration::from_secs(2))
        .unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(end.data["kind"], "session_invalid", "{:?}", end.data);
    assert!(end.id.is_some());
    assert!(stream.next_within(Duration::from_secs(5)).is_none());
    assert!(stream.ended, "the stream did not end");
}

#[test]
fn a_quiet_stream_gets_keepalives() {
    let server = Server::start();
    let mut stream = server.events(server.token(Role::Operator));
    let ready = stream.next_within(WAIT).unwrap();
    assert_eq!(ready.data["vm_events"], false, "no libvirt, no VM events");
    assert!(
        stream
            .next_within(mfv_web::api::events::KEEPALIVE + Duration::from_secs(3))
            .is_none()
    );
    assert!(
        stream.comments.iter().any(|comment| comment == "keepalive"),
        "{:?}",
        stream.comments
    );
    assert!(!stream.ended);
}

/// The VM's live domain XML.
fn live_xml(name: &str) -> String {
    Hypervisor::connect(shared().daemon.uri())
        .unwrap()
        .domain_xml(name)
        .unwrap()
}

#[test]
fn media_is_changed_and_ejected_in_a_running_guest() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = server.token(Role::Admin).to_owned();
    let hypervisor = Hypervisor::connect(shared.daemon.uri()).unwrap();
    let pool = unique("iso-pool");
    hypervisor
        .ensure_dir_pool(&pool, &server.dir.path().join("isos"))
        .unwrap();
    let disc = hypervisor
        .create_volume(&pool, "disc.iso", 1 << 20)
        .unwrap();
    let first = server.dir.path().join("first.iso");
    let second = server.dir.path().join("second.iso");
    std::fs::write(&first, vec![0u8; 64 * 1024]).unwrap();
    std::fs::write(&second, vec![1u8; 64 * 1024]).unwrap();

    let name = unique("cdrom");
    let spec = guest_spec(&name, json!({"cdrom": first}));
    let created = server.call(&admin, "POST", "/api/v1/vms", Some(spec));
    task_id(&created);
    let driveless = unique("no-drive");
    let created = server.call(
        &admin,
        "POST",
        "/api/v1/vms",
        Some(guest_spec(&driveless, json!({}))),
    );
    task_id(&created);
    let deadline = std::time::Instant::now() + WAIT;
    while hypervisor.domain_xml(&name).is_err() || hypervisor.domain_xml(&driveless).is_err() {
        assert!(std::time::Instant::now() < deadline, "VMs not created");
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = server.call(&admin, "POST", &format!("/api/v1/vms/{name}/start"), None);
    assert_eq!(start.status, 200, "{}", start.text());

    let cdrom = format!("/api/v1/vms/{name}/cdrom");
    let changed = server.call(&admin, "PUT", &cdrom, Some(json!({"path": second})));
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json().unwrap()["vm"]["state"], "running");
    let xml = live_xml(&name);
    assert!(xml.contains(&second.display().to_string()), "{xml}");
    assert!(!xml.contains(&first.display().to_string()), "{xml}");

    let from_pool = server.call(
        &admin,
        "PUT",
        &cdrom,
        Some(json!({"pool": pool, "volume": "disc.iso"})),
    );
    assert_eq!(from_pool.status, 200, "{}", from_pool.text());
    assert!(live_xml(&name).contains(&disc.path));

    let ejected = server.call(&admin, "DELETE", &cdrom, None);
    assert_eq!(ejected.status, 200, "{}", ejected.text());
    let xml = live_xml(&name);
    assert!(!xml.contains(".iso"), "{xml}");
    assert!(xml.contains("device='cdrom'"), "the drive stays: {xml}");

    // Bodies that say no image, or two, or a relative one, are refused by field.
    for (body, field) in [
        (json!({}), "path"),
        (json!({"path": "isos/a.iso"}), "path"),
        (
            json!({"path": "/a.iso", "pool": pool, "volume": "disc.iso"}),
            "path",
        ),
        (json!({"pool": pool}), "volume"),
        (json!({"volume": "disc.iso"}), "pool"),
        (json!({"path": "/a.iso", "format": "raw"}), "format"),
    ] {
        let refused = server.call(&admin, "PUT", &cdrom, Some(body.clone()));
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
        assert_eq!(refused.json().unwrap()["field"], field, "{body}");
    }
    for (body, field) in [
        (json!({"pool": pool, "volume": "missing.iso"}), "volume"),
        (
            json!({"pool": "no-such-pool", "volume": "disc.iso"}),
            "pool",
        ),
    ] {
        let missing = server.call(&admin, "PUT", &cdrom, Some(body.clone()));
        assert_eq!(
            (missing.status, kind(&missing)),
            (404, "not_found".to_owned()),
            "{body}: {}",
            missing.text()
        );
        assert_eq!(missing.json().unwrap()["field"], field, "{body}");
    }
    let absent = server.call(&admin, "PUT", &cdrom, Some(json!({"path": "/no/such.iso"})));
    assert_eq!(absent.status, 400, "{}", absent.text());
    assert_eq!(absent.json().unwrap()["field"], "path");
    assert!(absent.text().contains("/no/such.iso"), "{}", absent.text());
    let no_vm = server.call(&admin, "DELETE", "/api/v1/vms/no-such-vm/cdrom", None);
    assert_eq!(no_vm.status, 404, "{}", no_vm.text());

    let no_drive = server.call(
        &admin,
        "PUT",
        &format!("/api/v1/vms/{driveless}/cdrom"),
        Some(json!({"path": first})),
    );
    assert_eq!(
        (no_drive.status, kind(&no_drive)),
        (409, "conflict".to_owned()),
        "{}",
        no_drive.text()
    );
    assert!(
        no_drive.text().contains("no CD-ROM drive"),
        "{}",
        no_drive.text()
    );
    let viewer = server.call(server.token(Role::Viewer), "DELETE", &cdrom, None);
    assert_eq!(viewer.status, 403);

    hypervisor.force_off(&name).unwrap();
}
