//! Adding and removing storage pools over real HTTPS: the host daemon's own pool requests on a
//! directory config store and a private libvirtd. A pool added is listed and in the
//! configuration; a wrong one is `400` naming its field; one a VM uses is `409` naming the VM;
//! one removed is gone while its files stay.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::{Arc, OnceLock};

use common::host_daemon::Daemon;
use common::{Server, kind, send};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use mfv_tests::libvirtd::{PrivateLibvirtd, domain_with_disk, unique};
use mfv_vm::Hypervisor;
use serde_json::{Value, json};

fn libvirtd() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

/// The API server with the host daemon (its configuration on a directory store) and the
/// private libvirtd.
fn server(dir: &std::path::Path) -> Server {
    let daemon = Daemon::start(dir, true).with_libvirt(libvirtd().uri());
    Server::with(Arc::new(daemon), Some(libvirtd().uri()))
}

/// `response`'s status, error kind and field.
fn refusal(response: &HttpResponse) -> (u16, String, String) {
    (
        response.status,
        kind(response),
        response.json().unwrap()["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn config_text(server: &Server) -> String {
    let config = send(server, Role::Admin, "GET", "/api/v1/config", None);
    assert_eq!(config.status, 200, "{}", config.text());
    config.json().unwrap()["text"].as_str().unwrap().to_owned()
}

fn listed(server: &Server, name: &str) -> Option<Value> {
    let pools = send(server, Role::Viewer, "GET", "/api/v1/pools", None);
    assert_eq!(pools.status, 200, "{}", pools.text());
    pools.json().unwrap()["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pool| pool["name"] == name)
        .cloned()
}

#[test]
fn a_dir_pool_is_added_listed_and_removed_leaving_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let name = unique("ap-add");
    let path = dir.path().join("images");
    let body = json!({"name": name, "kind": "dir", "path": path, "server": ""});

    // A pool is a place libvirt writes to as root: administrators only, not operators, who
    // manage the volumes in the pools there are.
    for role in [Role::Viewer, Role::Operator] {
        let refused = send(&server, role, "POST", "/api/v1/pools", Some(body.clone()));
        assert_eq!(refused.status, 403, "{role:?}: {}", refused.text());
    }
    let added = send(&server, Role::Admin, "POST", "/api/v1/pools", Some(body));
    assert_eq!(added.status, 201, "{}", added.text());
    let added = added.json().unwrap();
    assert_eq!(added["generation"], 2);
    assert_eq!(added["pool"]["name"], name.as_str());
    assert_eq!(added["pool"]["state"], "running");
    assert_eq!(listed(&server, &name).unwrap()["kind"], "dir");
    let text = config_text(&server);
    assert!(text.contains(&format!("name = \"{name}\"")), "{text}");
    assert!(
        !text.contains("server"),
        "a blank field is left out: {text}"
    );

    // A disk in it, used by a VM: the pool stays, and the answer names the VM.
    let hypervisor = Hypervisor::connect(libvirtd().uri()).unwrap();
    let disk = hypervisor
        .create_volume(&name, "disk.qcow2", 1 << 20)
        .unwrap();
    let vm = unique("ap-user");
    hypervisor
        .define(&domain_with_disk(&vm, &disk.path))
        .unwrap();
    let pool_path = format!("/api/v1/pools/{name}");
    let in_use = send(&server, Role::Admin, "DELETE", &pool_path, None);
    assert_eq!(
        refusal(&in_use),
        (409, "conflict".to_owned(), "pool".to_owned())
    );
    assert!(in_use.text().contains(&vm), "{}", in_use.text());
    assert!(listed(&server, &name).is_some());

    hypervisor
        .undefine(&vm, mfv_vm::VolumePolicy::Keep)
        .unwrap();
    // An upload writing into it: the pool stays until the upload ends.
    let started = send(
        &server,
        Role::Admin,
        "POST",
        &format!("{pool_path}/uploads"),
        Some(json!({"name": "install.iso", "size_bytes": 4096, "format": "iso"})),
    );
    assert_eq!(started.status, 201, "{}", started.text());
    let upload = started.json().unwrap()["upload"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let writing = send(&server, Role::Admin, "DELETE", &pool_path, None);
    assert_eq!(
        refusal(&writing),
        (409, "conflict".to_owned(), "pool".to_owned())
    );
    assert!(writing.text().contains(&upload), "{}", writing.text());
    let cancelled = send(
        &server,
        Role::Admin,
        "DELETE",
        &format!("/api/v1/uploads/{upload}"),
        None,
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let refused = send(&server, Role::Viewer, "DELETE", &pool_path, None);
    assert_eq!(refused.status, 403, "{}", refused.text());
    let removed = send(&server, Role::Admin, "DELETE", &pool_path, None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(
        removed.json().unwrap(),
        json!({"removed": name, "generation": 3})
    );
    assert!(listed(&server, &name).is_none());
    assert!(!config_text(&server).contains(&name));
    assert!(path.join("disk.qcow2").is_file(), "the data stays");

    let gone = send(&server, Role::Admin, "DELETE", &pool_path, None);
    assert_eq!(
        refusal(&gone),
        (404, "not_found".to_owned(), "pool".to_owned())
    );
}

#[test]
fn a_wrong_pool_is_refused_naming_its_field_and_nothing_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let before = config_text(&server);
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    let file = dir.path().join("a-file");
    for (body, field) in [
        (
            json!({"name": "p", "kind": "zfs", "path": "/srv/p"}),
            "kind",
        ),
        (json!({"name": "", "kind": "dir", "path": "/srv/p"}), "name"),
        (
            json!({"name": ".p", "kind": "dir", "path": "/srv/p"}),
            "name",
        ),
        (json!({"name": "p", "kind": "dir"}), "path"),
        (
            json!({"name": "p", "kind": "dir", "path": "images"}),
            "path",
        ),
        (
            json!({"name": "p", "kind": "dir", "path": "/srv/p", "size": 1}),
            "size",
        ),
        (
            json!({"name": "p", "kind": "logical", "device": file}),
            "device",
        ),
        (
            json!({"name": "p", "kind": "dir", "path": file.join("below")}),
            "path",
        ),
        (
            json!({"name": "p", "kind": "nfs", "server": "nfs1"}),
            "export",
        ),
        (
            json!({"name": "p", "kind": "nfs", "server": "bad_host", "export": "/e"}),
            "server",
        ),
    ] {
        let refused = send(
            &server,
            Role::Admin,
            "POST",
            "/api/v1/pools",
            Some(body.clone()),
        );
        assert_eq!(
            refusal(&refused),
            (400, "invalid_request".to_owned(), field.to_owned()),
            "{body}: {}",
            refused.text()
        );
    }
    assert!(listed(&server, "p").is_none());
    assert_eq!(config_text(&server), before);

    let stale = send(
        &server,
        Role::Admin,
        "POST",
        "/api/v1/pools",
        Some(json!({"name": "p", "kind": "dir", "path": "/srv/p", "generation": 7})),
    );
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(kind(&stale), "stale_generation");
}
