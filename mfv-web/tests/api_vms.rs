//! The VM routes and tasks over real HTTPS, against a private libvirtd running the tiny test
//! guest under real QEMU (TCG): a VM's life from its creation to its deletion, the roles, the
//! locks, and the requests that must be refused before libvirt is asked.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::time::{Duration, Instant};

use common::guest::{guest_spec, shared};
use common::schema::{Objects, answer_schema, check, request_schema};
use common::{PASSWORD, Server, kind};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use mfv_tests::libvirtd::{GUEST_READY, unique};
use mfv_vm::Hypervisor;
use serde_json::{Value, json};

/// A client of `server` acting with `role`'s token.
struct As<'a> {
    server: &'a Server,
    token: &'a str,
}

impl As<'_> {
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> HttpResponse {
        let text = body.map(Value::to_string);
        self.server
            .client
            .send(
                method,
                path,
                &[
                    ("authorization", self.token),
                    ("content-type", "application/json"),
                ],
                text.as_deref().map(str::as_bytes),
            )
            .unwrap()
    }

    fn get(&self, path: &str) -> HttpResponse {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: Option<&Value>) -> HttpResponse {
        self.send("POST", path, body)
    }
}

fn client<'a>(server: &'a Server, role: Role) -> As<'a> {
    As {
        server,
        token: server.token(role),
    }
}

fn state_in_list(admin: &As<'_>, name: &str) -> Value {
    let list = admin.get("/api/v1/vms");
    assert_eq!(list.status, 200, "{}", list.text());
    list.json().unwrap()["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vm| vm["name"] == name)
        .map(|vm| vm["state"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn until_the_vms_are_restored_the_vm_routes_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("vms-restored");
    let server = Server::with_vms_restored_once("test:///default", marker.clone());
    let admin = client(&server, Role::Admin);
    let listed = admin.get("/api/v1/vms");
    assert_eq!(listed.status, 503, "{}", listed.text());
    assert_eq!(kind(&listed), "unavailable");
    assert_eq!(listed.header("retry-after"), Some("2"));
    assert!(
        listed
            .text()
            .contains("the host is still restoring its VMs")
            && listed.text().contains("mfv host logs vm-keeper"),
        "{}",
        listed.text()
    );
    let spec = json!({ "name": "early", "vcpus": 1, "memory_mib": 64 });
    let created = admin.post("/api/v1/vms", Some(&spec));
    assert_eq!(created.status, 503, "{}", created.text());

    std::fs::write(&marker, b"").unwrap();
    let listed = admin.get("/api/v1/vms");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json().unwrap();
    let names: Vec<&str> = listed["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|vm| vm["name"].as_str())
        .collect();
    assert_eq!(names, ["test"], "the test driver's own VM alone");
}

#[test]
fn a_vm_is_created_started_shut_down_snapshotted_and_deleted() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = client(&server, Role::Admin);
    let viewer = client(&server, Role::Viewer);
    let pool = unique("api-pool");
    let hypervisor = Hypervisor::connect(shared.daemon.uri()).unwrap();
    hypervisor
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    let name = unique("api-life");
    let disks = json!([{"target": "vda", "source": {"new_volume": {"pool": pool, "size_gib": 1}}}]);

    let created = admin.server.finished_task(&admin.post(
        "/api/v1/vms",
        Some(&guest_spec(&name, json!({ "disks": disks }))),
    ));
    assert_eq!(created["state"], "succeeded", "{created}");
    assert_eq!(created["kind"], "vm_create");
    assert_eq!(created["result"]["vm"]["name"], name.as_str());
    assert_eq!(created["progress"], 100);
    let shown = admin.get(&format!("/api/v1/vms/{name}"));
    assert_eq!(shown.status, 200, "{}", shown.text());
    let shown = shown.json().unwrap()["vm"].clone();
    assert_eq!(shown["state"], "shut_off");
    assert_eq!(shown["spec"]["memory_mib"], 128);
    assert_eq!(shown["spec"]["disks"][0]["target"], "vda");
    assert_eq!(hypervisor.list_volumes(&pool).unwrap().len(), 1);

    // Snapshots of the stopped VM's qcow2 disk.
    let snapshots = format!("/api/v1/vms/{name}/snapshots");
    let taken = admin.server.finished_task(&admin.post(
        &snapshots,
        Some(&json!({"name": "before", "description": "clean"})),
    ));
    assert_eq!(taken["state"], "succeeded", "{taken}");
    assert_eq!(taken["result"]["snapshot"]["name"], "before");
    let listed = viewer.get(&snapshots).json().unwrap();
    assert_eq!(listed["snapshots"][0]["name"], "before");
    assert_eq!(listed["snapshots"][0]["description"], "clean");
    let bad_name = admin.post(&snapshots, Some(&json!({"name": "../x"})));
    assert_eq!(bad_name.status, 400);
    assert_eq!(bad_name.json().unwrap()["field"], "name");
    let reverted = admin.post(&format!("{snapshots}/before/revert"), None);
    assert_eq!(reverted.status, 200, "{}", reverted.text());
    let removed = admin.send("DELETE", &format!("{snapshots}/before"), None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    let gone = admin.send("DELETE", &format!("{snapshots}/before"), None);
    assert_eq!((gone.status, kind(&gone)), (404, "not_found".to_owned()));
    assert_eq!(
        viewer.get(&snapshots).json().unwrap()["snapshots"],
        json!([])
    );

    // Autostart on and off.
    let autostart = format!("/api/v1/vms/{name}/autostart");
    let on = admin.send("PUT", &autostart, Some(&json!({"enabled": true})));
    assert_eq!(on.status, 200, "{}", on.text());
    assert_eq!(on.json().unwrap()["vm"]["autostart"], true);
    let off = admin.send("PUT", &autostart, Some(&json!({"enabled": false})));
    assert_eq!(off.json().unwrap()["vm"]["autostart"], false);
    let wrong = admin.send("PUT", &autostart, Some(&json!({"enabled": "yes"})));
    assert_eq!(wrong.status, 400);

    // A viewer sees the VM but may not start it; an operator signed in with the cookie may.
    assert_eq!(state_in_list(&viewer, &name), "shut_off");
    let start = format!("/api/v1/vms/{name}/start");
    let refused = viewer.post(&start, None);
    assert_eq!(
        (refused.status, kind(&refused)),
        (403, "forbidden".to_owned())
    );
    let (login, cookie) = server.login("otto", PASSWORD);
    let csrf = login.json().unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = server
        .client
        .send(
            "POST",
            &start,
            &[("cookie", &cookie.unwrap()), ("x-csrf-token", &csrf)],
            None,
        )
        .unwrap();
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.json().unwrap()["vm"]["state"], "running");
    assert_eq!(state_in_list(&viewer, &name), "running");
    let again = admin.post(&start, None);
    assert_eq!((again.status, kind(&again)), (409, "conflict".to_owned()));
    let mut console = hypervisor.open_serial_console(&name).unwrap();
    console
        .wait_for(GUEST_READY, Duration::from_secs(60))
        .unwrap();

    // The guest ignores ACPI: the shutdown forces it off at the deadline. Meanwhile every
    // other change of the VM is refused, naming the task.
    let shutdown = admin.post(
        &format!("/api/v1/vms/{name}/shutdown"),
        Some(&json!({"deadline_secs": 3})),
    );
    assert_eq!(shutdown.status, 202, "{}", shutdown.text());
    let task_id = shutdown.json().unwrap()["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        ("POST", format!("/api/v1/vms/{name}/force-off")),
        ("POST", format!("/api/v1/vms/{name}/shutdown")),
        ("DELETE", format!("/api/v1/vms/{name}")),
    ] {
        let busy = admin.send(method, &path, None);
        assert_eq!(
            (busy.status, kind(&busy)),
            (409, "conflict".to_owned()),
            "{method} {path}"
        );
        assert!(
            busy.text().contains(&format!("task {task_id}")),
            "{}",
            busy.text()
        );
    }
    let stopped = admin.server.finished_task(&shutdown);
    assert_eq!(stopped["state"], "succeeded", "{stopped}");
    assert_eq!(stopped["result"]["outcome"], "forced_off");
    assert_eq!(stopped["result"]["deadline_secs"], 3);
    assert_eq!(state_in_list(&admin, &name), "shut_off");
    let tasks = viewer.get("/api/v1/tasks").json().unwrap();
    assert_eq!(tasks["tasks"][0]["id"], task_id.as_str(), "newest first");

    // Started again and forced off at once; a reboot of a stopped VM is a conflict.
    assert_eq!(admin.post(&start, None).status, 200);
    let forced = admin.post(&format!("/api/v1/vms/{name}/force-off"), None);
    assert_eq!(forced.status, 200, "{}", forced.text());
    assert_eq!(forced.json().unwrap()["vm"]["state"], "shut_off");
    let reboot = admin.post(&format!("/api/v1/vms/{name}/reboot"), None);
    assert_eq!((reboot.status, kind(&reboot)), (409, "conflict".to_owned()));

    // Deleted with its volume; the query is checked first.
    let vm = format!("/api/v1/vms/{name}");
    let bogus = admin.send("DELETE", &format!("{vm}?volumes=shred"), None);
    assert_eq!(bogus.status, 400);
    assert_eq!(bogus.json().unwrap()["field"], "volumes");
    let unknown = admin.send("DELETE", &format!("{vm}?force=1"), None);
    assert_eq!(unknown.json().unwrap()["field"], "force");
    let deleted = admin.send("DELETE", &format!("{vm}?volumes=delete"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json().unwrap()["volumes"], "deleted");
    let missing = admin.get(&vm);
    assert_eq!(
        (missing.status, kind(&missing)),
        (404, "not_found".to_owned())
    );
    assert!(hypervisor.list_volumes(&pool).unwrap().is_empty());
}

/// Asserts `body` fits `schema` of `document`, naming no field the document does not.
fn assert_fits(document: &Value, schema: &Value, body: &Value, what: &str) {
    assert!(!schema.is_null(), "{what} is not documented");
    if let Err(error) = check(document, schema, body, Objects::Closed) {
        panic!("{what}: {body} against {schema}: {error}");
    }
}

#[test]
fn vm_and_storage_answers_fit_the_documented_schemas() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = client(&server, Role::Admin);
    let document = admin.get("/api/v1/openapi.json").json().unwrap();
    let pool = unique("doc-pool");
    let hypervisor = Hypervisor::connect(shared.daemon.uri()).unwrap();
    hypervisor
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    let answer = |method: &str, path: &str, template: &str, body: Option<Value>, status: u16| {
        if let Some(body) = &body {
            let schema = request_schema(&document, &method.to_lowercase(), template);
            if let Err(error) = check(&document, schema, body, Objects::AsWritten) {
                panic!("{method} {template} takes {body}? {error}");
            }
        }
        let answer = admin.send(method, path, body.as_ref());
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
        let body = answer.json().unwrap();
        let schema = if status >= 400 {
            &document["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
        } else {
            answer_schema(&document, &method.to_lowercase(), template, status)
        };
        assert_fits(&document, schema, &body, &format!("{method} {path}"));
        body
    };
    let task_result = |method: &str, template: &str, task: &Value| {
        assert_eq!(task["state"], "succeeded", "{task}");
        let schema = &document["paths"][template][method]["responses"]["202"]["x-mfv-task-result"];
        assert_fits(
            &document,
            schema,
            &task["result"],
            &format!("{template}'s task"),
        );
    };

    let name = unique("doc-vm");
    let disks = json!([{"target": "vda", "source": {"new_volume": {"pool": pool, "size_gib": 1}}}]);
    let spec = guest_spec(&name, json!({ "disks": disks, "autostart": false }));
    let schema = request_schema(&document, "post", "/api/v1/vms");
    check(&document, schema, &spec, Objects::AsWritten).unwrap();
    let mut misspelt = spec.clone();
    misspelt["memory_mb"] = json!(128);
    assert!(check(&document, schema, &misspelt, Objects::AsWritten).is_err());
    let started = admin.post("/api/v1/vms", Some(&spec));
    assert_fits(
        &document,
        answer_schema(&document, "post", "/api/v1/vms", 202),
        &started.json().unwrap(),
        "POST /api/v1/vms",
    );
    let created = admin.server.finished_task(&started);
    task_result("post", "/api/v1/vms", &created);
    answer("GET", "/api/v1/tasks", "/api/v1/tasks", None, 200);
    answer("GET", "/api/v1/vms", "/api/v1/vms", None, 200);
    let vm = format!("/api/v1/vms/{name}");
    let shown = answer("GET", &vm, "/api/v1/vms/{name}", None, 200);
    assert_eq!(shown["vm"]["spec"]["memory_mib"], 128, "{shown}");
    let autostart = Some(json!({"enabled": true}));
    answer(
        "PUT",
        &format!("{vm}/autostart"),
        "/api/v1/vms/{name}/autostart",
        autostart,
        200,
    );
    answer(
        "POST",
        &format!("{vm}/start"),
        "/api/v1/vms/{name}/start",
        None,
        200,
    );
    let shutdown = admin.post(
        &format!("{vm}/shutdown"),
        Some(&json!({"deadline_secs": 1})),
    );
    let stopped = admin.server.finished_task(&shutdown);
    task_result("post", "/api/v1/vms/{name}/shutdown", &stopped);
    let snapshot = admin.post(&format!("{vm}/snapshots"), Some(&json!({"name": "s1"})));
    task_result(
        "post",
        "/api/v1/vms/{name}/snapshots",
        &admin.server.finished_task(&snapshot),
    );
    answer(
        "GET",
        &format!("{vm}/snapshots"),
        "/api/v1/vms/{name}/snapshots",
        None,
        200,
    );
    let snapshot = format!("{vm}/snapshots/s1");
    answer(
        "DELETE",
        &snapshot,
        "/api/v1/vms/{name}/snapshots/{snapshot}",
        None,
        200,
    );
    answer("GET", "/api/v1/vms/nope", "/api/v1/vms/{name}", None, 404);

    answer("GET", "/api/v1/pools", "/api/v1/pools", None, 200);
    let volumes = format!("/api/v1/pools/{pool}/volumes");
    let template = "/api/v1/pools/{pool}/volumes";
    let new = Some(json!({"name": "doc-data", "size_bytes": 1_048_576, "format": "raw"}));
    answer("POST", &volumes, template, new, 201);
    answer("GET", &volumes, template, None, 200);
    let size = Some(json!({"size_bytes": 2_097_152}));
    let volume = format!("{volumes}/doc-data");
    answer(
        "PUT",
        &format!("{volume}/size"),
        "/api/v1/pools/{pool}/volumes/{volume}/size",
        size,
        200,
    );
    answer(
        "DELETE",
        &volume,
        "/api/v1/pools/{pool}/volumes/{volume}",
        None,
        200,
    );
    answer(
        "DELETE",
        &format!("{vm}?volumes=delete"),
        "/api/v1/vms/{name}",
        None,
        200,
    );
}

#[test]
fn specs_names_and_ids_that_do_not_fit_are_refused_with_their_reason() {
    let server = Server::with_libvirt(shared().daemon.uri());
    let admin = client(&server, Role::Admin);

    let mut spec = guest_spec(
        "<script>alert(1)</script>",
        json!({"disks": [{"target": "sda", "source": {"image": {"path": "relative.img"}}}]}),
    );
    spec["vcpus"] = json!(0);
    let invalid = admin.post("/api/v1/vms", Some(&spec));
    assert_eq!(invalid.status, 400, "{}", invalid.text());
    assert!(
        invalid
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(!invalid.text().contains("<script>"), "{}", invalid.text());
    let body = invalid.json().unwrap();
    assert_eq!(body["kind"], "invalid_spec");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["field"].as_str().unwrap())
        .collect();
    for field in ["name", "vcpus", "disks[0].target"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("<script>")
    );

    let unknown_field = admin.post(
        "/api/v1/vms",
        Some(&json!({"name": "x", "vcpus": 1, "memory_mib": 64, "cpus": 2})),
    );
    assert_eq!(
        (unknown_field.status, kind(&unknown_field)),
        (400, "invalid_request".to_owned())
    );
    assert_eq!(unknown_field.json().unwrap()["field"], "cpus");

    // A name taken by a VM that exists is refused at once, as a field of the spec.
    let name = unique("api-taken");
    let made = admin
        .server
        .finished_task(&admin.post("/api/v1/vms", Some(&guest_spec(&name, json!({})))));
    assert_eq!(made["state"], "succeeded", "{made}");
    let taken = admin.post("/api/v1/vms", Some(&guest_spec(&name, json!({}))));
    assert_eq!(
        (taken.status, kind(&taken)),
        (400, "invalid_spec".to_owned())
    );
    assert_eq!(taken.json().unwrap()["errors"][0]["field"], "name");

    for path in [
        "/api/v1/vms/..",
        "/api/v1/vms/%2E%2E/start",
        "/api/v1/vms/%2F",
        "/api/v1/vms/a%2Fb/start",
    ] {
        let refused = admin.post(path, None);
        assert_eq!(refused.status, 404, "{path}: {}", refused.text());
        assert!(refused.text().contains("nothing is served"), "{path}");
    }
    for (method, path) in [
        ("GET", "/api/v1/vms/no-such-vm"),
        ("POST", "/api/v1/vms/no-such-vm/start"),
        ("POST", "/api/v1/vms/no-such-vm/shutdown"),
        ("GET", "/api/v1/vms/no-such-vm/snapshots"),
    ] {
        let absent = admin.send(method, path, None);
        assert_eq!(
            (absent.status, kind(&absent)),
            (404, "not_found".to_owned()),
            "{method} {path}"
        );
        assert!(absent.text().contains("no-such-vm"), "{}", absent.text());
    }
    let long = admin.post(
        &format!("/api/v1/vms/{name}/shutdown"),
        Some(&json!({"deadline_secs": 100_000})),
    );
    assert_eq!(long.json().unwrap()["field"], "deadline_secs");

    let no_task = admin.get("/api/v1/tasks/999999");
    assert_eq!(
        (no_task.status, kind(&no_task)),
        (404, "not_found".to_owned())
    );
    let deleted = admin.send("DELETE", &format!("/api/v1/vms/{name}"), None);
    assert_eq!(deleted.json().unwrap()["volumes"], "kept");
}

#[test]
fn without_libvirt_the_vm_routes_say_what_is_missing() {
    let server = Server::start();
    let admin = client(&server, Role::Admin);
    let answer = admin.get("/api/v1/vms");
    assert_eq!(
        (answer.status, kind(&answer)),
        (503, "unavailable".to_owned())
    );
    assert!(answer.text().contains("--libvirt"), "{}", answer.text());
}

/// Polls the VM list as `admin` until `shown(name is listed)` holds; how long it took, or
/// `None` after `within`.
fn listed_within(admin: &As<'_>, name: &str, shown: bool, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() <= within {
        if state_in_list(admin, name).is_null() != shown {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_vm_defined_or_removed_behind_the_apis_back_shows_in_the_list_within_a_second() {
    let shared = shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let admin = client(&server, Role::Admin);
    let hypervisor = Hypervisor::connect(shared.daemon.uri()).unwrap();
    let name = unique("api-behind");
    let spec: mfv_vm::VmSpec = serde_json::from_value(guest_spec(&name, json!({}))).unwrap();

    // The list was just read (and is kept up to a second): then virsh's work, as it were.
    assert!(state_in_list(&admin, &name).is_null());
    mfv_host::vm::create(&hypervisor, &spec, &mfv_vm::HostCapabilities::tcg_only()).unwrap();
    let appeared = listed_within(&admin, &name, true, Duration::from_millis(1500));
    assert!(appeared.is_some(), "{name} not listed within 1.5 s");
    assert_eq!(state_in_list(&admin, &name), "shut_off");

    hypervisor
        .undefine(&name, mfv_vm::VolumePolicy::Keep)
        .unwrap();
    let gone = listed_within(&admin, &name, false, Duration::from_millis(1500));
    assert!(
        gone.is_some(),
        "{name} still listed 1.5 s after it was removed"
    );
}
