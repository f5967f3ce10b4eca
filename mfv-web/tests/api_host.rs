//! The API's host, services, logs, power, configuration and network routes over real HTTPS,
//! with the host daemon's own handler in-process asked as the web user
//! ([`common::host_daemon`]: fake hardware, a PID 1 double that records shutdowns, the
//! configuration on a directory store).

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;

use common::host_daemon::{BRIDGE_AND_VLAN, Daemon, VALID_CONFIG};
use common::{Server, kind};
use mfv_auth::Role;
use mfv_tests::https::HttpResponse;
use mfv_web::daemon::DaemonSocket;
use serde_json::{Value, json};

const STATIC_ETH0: &str = "[network]\n[[network.interfaces]]\nname = \"eth0\"\n\
                           mode = \"static\"\naddresses = [\"192.0.2.10/24\"]\n";

/// The API server with the daemon, and the daemon to look into.
struct Host {
    server: Server,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Host {
    /// A host that booted with the configuration of `/dev/vdb` (kept in a directory here),
    /// or, without `with_config`, a host that found none.
    fn start(with_config: bool) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(dir.path(), with_config);
        Host {
            server: Server::with_host(Arc::new(daemon.clone())),
            daemon,
            _dir: dir,
        }
    }

    fn get(&self, path: &str, role: Role) -> HttpResponse {
        self.server
            .client
            .get(path, &[("authorization", self.server.token(role))])
            .unwrap()
    }

    fn send(&self, method: &str, path: &str, role: Role, body: Option<&Value>) -> HttpResponse {
        let body = body.map(|body| serde_json::to_vec(body).unwrap());
        self.server
            .client
            .send(
                method,
                path,
                &[
                    ("authorization", self.server.token(role)),
                    ("content-type", "application/json"),
                ],
                body.as_deref(),
            )
            .unwrap()
    }

    fn shutdowns(&self) -> Vec<&'static str> {
        self.daemon.shutdowns()
    }
}

/// `response`'s status and JSON, checked to be `status`.
fn expect(response: &HttpResponse, status: u16) -> Value {
    assert_eq!(response.status, status, "{}", response.text());
    response.json().unwrap()
}

/// `response`'s status, error kind and field.
fn refusal(response: &HttpResponse) -> (u16, String, Option<String>) {
    let body = response.json().unwrap();
    (
        response.status,
        kind(response),
        body["field"].as_str().map(str::to_owned),
    )
}

fn refused(status: u16, kind: &str, field: Option<&str>) -> (u16, String, Option<String>) {
    (status, kind.to_owned(), field.map(str::to_owned))
}

#[test]
fn the_host_its_hardware_and_services_are_read_by_every_role() {
    let host = Host::start(true);
    for role in Role::ALL {
        let status = expect(&host.get("/api/v1/host", role), 200);
        assert_eq!(status["uptime_ms"], 12340);
        assert_eq!(status["virtualization"], "kvm");
        assert_eq!(status["boot"]["config"]["result"], "found");
        assert_eq!(status["boot"]["config"]["device"], "/dev/vdb");
        assert_eq!(status["boot"]["phases"][0]["name"], "config");
        assert_eq!(status["services"][1]["name"], "mfv-web");
        assert!(!status["hostname"].as_str().unwrap().is_empty());

        let inventory = expect(&host.get("/api/v1/host/inventory", role), 200);
        let nics: Vec<&str> = inventory["nics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|nic| nic["name"].as_str().unwrap())
            .collect();
        assert_eq!(nics, ["eth0", "lo"]);

        let services = expect(&host.get("/api/v1/host/services", role), 200);
        assert_eq!(services["services"][0]["name"], "libvirtd");
        assert_eq!(services["services"][0]["state"], "running");
    }
}

#[test]
fn a_service_is_restarted_by_an_admin_and_an_unknown_one_is_named() {
    let host = Host::start(true);
    let restarted = expect(
        &host.send(
            "POST",
            "/api/v1/host/services/libvirtd/restart",
            Role::Admin,
            None,
        ),
        200,
    );
    assert_eq!(restarted["service"]["name"], "libvirtd");
    assert_eq!(restarted["service"]["restarts"], 1);
    assert_eq!(restarted["service"]["pid"], 301);

    let unknown = host.send(
        "POST",
        "/api/v1/host/services/nosuch/restart",
        Role::Admin,
        None,
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(kind(&unknown), "not_found");
    assert!(unknown.text().contains("nosuch"), "{}", unknown.text());

    for role in [Role::Operator, Role::Viewer] {
        let forbidden = host.send("POST", "/api/v1/host/services/libvirtd/restart", role, None);
        assert_eq!(forbidden.status, 403, "{role:?}");
    }

    // Every change asked for is in the audit log: who, what, from where, and how it ended.
    let audit = expect(
        &host.get("/api/v1/audit?event=host_change", Role::Admin),
        200,
    );
    let entries: Vec<(String, String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
            (
                text("actor"),
                text("source"),
                text("outcome"),
                text("detail"),
            )
        })
        .collect();
    let line = |actor: &str, outcome: &str, detail: &str| {
        (
            actor.to_owned(),
            "127.0.0.1".to_owned(),
            outcome.to_owned(),
            detail.to_owned(),
        )
    };
    for expected in [
        line(
            "ada",
            "ok",
            "restart_service /api/v1/host/services/libvirtd/restart: 200",
        ),
        line(
            "ada",
            "refused",
            "restart_service /api/v1/host/services/nosuch/restart: 404",
        ),
        line(
            "otto",
            "refused",
            "restart_service /api/v1/host/services/libvirtd/restart: 403",
        ),
    ] {
        assert!(entries.contains(&expected), "{expected:?} in {entries:?}");
    }
}

#[test]
fn logs_are_read_by_source_and_the_query_is_checked() {
    let host = Host::start(true);
    let boot = expect(&host.get("/api/v1/host/logs", Role::Admin), 200);
    let texts: Vec<&str> = boot["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["phase mounts: ok", "phase config: /dev/vdb"]);

    let service = expect(
        &host.get(
            "/api/v1/host/logs?source=service&service=libvirtd&lines=2",
            Role::Admin,
        ),
        200,
    );
    let lines = service["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["text"], "libvirtd line 4");
    assert_eq!(
        lines[1]["source"],
        json!({"kind": "service", "name": "libvirtd"})
    );

    for (query, expected) in [
        ("service=nosuch", refused(404, "not_found", Some("service"))),
        (
            "source=service",
            refused(400, "invalid_request", Some("service")),
        ),
        (
            "source=kernel",
            refused(400, "invalid_request", Some("source")),
        ),
        ("lines=0", refused(400, "invalid_request", Some("lines"))),
        ("lines=1001", refused(400, "invalid_request", Some("lines"))),
        ("lines=many", refused(400, "invalid_request", Some("lines"))),
        (
            "lines=1&lines=2",
            refused(400, "invalid_request", Some("lines")),
        ),
        ("tail=5", refused(400, "invalid_request", Some("tail"))),
    ] {
        let answer = host.get(&format!("/api/v1/host/logs?{query}"), Role::Admin);
        assert_eq!(refusal(&answer), expected, "{query}: {}", answer.text());
    }
    for role in [Role::Operator, Role::Viewer] {
        assert_eq!(host.get("/api/v1/host/logs", role).status, 403, "{role:?}");
    }
}

#[test]
fn reboot_and_power_off_need_the_hosts_name_and_an_admin() {
    let host = Host::start(true);
    let hostname = expect(&host.get("/api/v1/host", Role::Viewer), 200)["hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = json!({ "confirm": hostname });
    for role in [Role::Operator, Role::Viewer] {
        for path in ["/api/v1/host/reboot", "/api/v1/host/poweroff"] {
            let forbidden = host.send("POST", path, role, Some(&confirm));
            assert_eq!(
                (forbidden.status, kind(&forbidden)),
                (403, "forbidden".to_owned()),
                "{path} as {role:?}"
            );
        }
    }
    for (body, field) in [
        (json!({"confirm": "another-host"}), "confirm"),
        (json!({}), "confirm"),
        (json!({"confirm": hostname, "force": true}), "force"),
    ] {
        let answer = host.send("POST", "/api/v1/host/reboot", Role::Admin, Some(&body));
        assert_eq!(
            refusal(&answer),
            refused(400, "invalid_request", Some(field)),
            "{body}"
        );
    }
    assert!(host.shutdowns().is_empty());

    let reboot = host.send("POST", "/api/v1/host/reboot", Role::Admin, Some(&confirm));
    assert_eq!(expect(&reboot, 202)["state"], "rebooting");
    let power_off = host.send("POST", "/api/v1/host/poweroff", Role::Admin, Some(&confirm));
    assert_eq!(expect(&power_off, 202)["state"], "powering off");
    assert_eq!(host.shutdowns(), ["reboot", "poweroff"]);
}

#[test]
fn the_configuration_is_read_checked_and_saved_against_its_generation() {
    let host = Host::start(true);
    let document = expect(&host.get("/api/v1/config", Role::Admin), 200);
    assert_eq!(document["text"], VALID_CONFIG);
    assert_eq!(document["origin"], "current");
    let generation = document["generation"].as_u64().unwrap();

    let valid = host.send(
        "POST",
        "/api/v1/config/validate",
        Role::Admin,
        Some(&json!({ "text": VALID_CONFIG })),
    );
    assert_eq!(expect(&valid, 200), json!({"valid": true, "errors": []}));
    let two_problems = "version = 1\n[host]\nhostname = \"-x-\"\nhostnme = \"y\"\n";
    let invalid = expect(
        &host.send(
            "POST",
            "/api/v1/config/validate",
            Role::Admin,
            Some(&json!({ "text": two_problems })),
        ),
        200,
    );
    assert_eq!(invalid["valid"], false);
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{invalid}");
    assert!(fields.contains(&"host.hostname"), "{invalid}");
    assert_eq!(invalid["errors"][0]["line"], 3);

    let changed = "version = 1\n[host]\nhostname = \"vmhost2\"\n";
    let saved = host.send(
        "PUT",
        "/api/v1/config",
        Role::Admin,
        Some(&json!({ "text": changed, "generation": generation })),
    );
    assert_eq!(expect(&saved, 200)["generation"], generation + 1);
    assert_eq!(
        expect(&host.get("/api/v1/config", Role::Admin), 200)["text"],
        changed
    );

    // Someone else saved since `generation`: refused, nothing written.
    let stale = host.send(
        "PUT",
        "/api/v1/config",
        Role::Admin,
        Some(&json!({ "text": VALID_CONFIG, "generation": generation })),
    );
    assert_eq!(
        (stale.status, kind(&stale)),
        (409, "stale_generation".to_owned()),
        "{}",
        stale.text()
    );
    let rejected = host.send(
        "PUT",
        "/api/v1/config",
        Role::Admin,
        Some(&json!({ "text": two_problems, "generation": generation + 1 })),
    );
    assert_eq!(rejected.status, 400, "{}", rejected.text());
    let rejected = rejected.json().unwrap();
    assert_eq!(rejected["kind"], "invalid_config");
    assert_eq!(
        rejected["errors"].as_array().unwrap().len(),
        2,
        "{rejected}"
    );
    assert_eq!(
        expect(&host.get("/api/v1/config", Role::Admin), 200)["text"],
        changed
    );

    let unknown_field = host.send(
        "PUT",
        "/api/v1/config",
        Role::Admin,
        Some(&json!({ "text": changed, "base": 1 })),
    );
    assert_eq!(
        refusal(&unknown_field),
        refused(400, "invalid_request", Some("base"))
    );
    let no_text = host.send(
        "POST",
        "/api/v1/config/validate",
        Role::Admin,
        Some(&json!({})),
    );
    assert_eq!(
        refusal(&no_text),
        refused(400, "invalid_request", Some("text"))
    );
    for role in [Role::Operator, Role::Viewer] {
        assert_eq!(host.get("/api/v1/config", role).status, 403, "{role:?}");
    }
}

#[test]
fn without_a_config_volume_the_daemon_says_there_is_no_configuration() {
    let host = Host::start(false);
    let answer = host.get("/api/v1/config", Role::Admin);
    assert_eq!(
        (answer.status, kind(&answer)),
        (503, "unavailable".to_owned())
    );
    assert!(
        answer.text().contains("booted without a config volume"),
        "{}",
        answer.text()
    );
}

#[test]
fn a_network_change_is_applied_provisionally_and_confirmed() {
    let host = Host::start(true);
    let network = expect(&host.get("/api/v1/network", Role::Viewer), 200);
    assert_eq!(
        network["interfaces"],
        json!([{"name": "eth0", "mac": "52:54:00:12:34:56", "driver": "e1000",
                "link": "up", "speed_mbps": 1000}])
    );

    let apply = json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 });
    // Changing the network is an administrator's: the operator runs VMs, not the host.
    for role in [Role::Operator, Role::Viewer] {
        let forbidden = host.send("POST", "/api/v1/network/apply", role, Some(&apply));
        assert_eq!(forbidden.status, 403, "{role:?}");
        let forbidden = host.send(
            "POST",
            "/api/v1/network/confirm",
            role,
            Some(&json!({ "apply_id": 1 })),
        );
        assert_eq!(forbidden.status, 403, "{role:?}");
    }
    let applied = expect(
        &host.send("POST", "/api/v1/network/apply", Role::Admin, Some(&apply)),
        200,
    );
    assert_eq!(applied["confirm_within_secs"], 60);
    assert_eq!(applied["changes"], json!(["add 192.0.2.10/24 to eth0"]));
    let apply_id = applied["apply_id"].as_u64().unwrap();

    // A second change while the first waits: the daemon refuses it.
    let second = host.send("POST", "/api/v1/network/apply", Role::Admin, Some(&apply));
    assert_eq!(second.status, 409, "{}", second.text());

    let wrong = host.send(
        "POST",
        "/api/v1/network/confirm",
        Role::Admin,
        Some(&json!({ "apply_id": apply_id + 7 })),
    );
    assert_eq!(
        refusal(&wrong),
        refused(404, "not_found", Some("apply_id")),
        "{}",
        wrong.text()
    );
    let confirmed = expect(
        &host.send(
            "POST",
            "/api/v1/network/confirm",
            Role::Admin,
            Some(&json!({ "apply_id": apply_id })),
        ),
        200,
    );
    assert_eq!(confirmed["outcome"], "confirmed");
    let in_effect = expect(&host.get("/api/v1/network", Role::Viewer), 200)["in_effect"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(in_effect.contains("192.0.2.10/24"), "{in_effect}");
}

#[test]
fn the_network_in_effect_is_read_into_its_bridge_vlan_and_addresses() {
    let host = Host::start(true);
    let before = expect(&host.get("/api/v1/network", Role::Viewer), 200);
    assert_eq!(
        (&before["in_effect"], &before["layout"]),
        (&Value::Null, &Value::Null)
    );

    let apply = json!({ "network_toml": BRIDGE_AND_VLAN, "confirm_within_secs": 60 });
    let applied = expect(
        &host.send("POST", "/api/v1/network/apply", Role::Admin, Some(&apply)),
        200,
    );
    let confirm = json!({ "apply_id": applied["apply_id"] });
    expect(
        &host.send(
            "POST",
            "/api/v1/network/confirm",
            Role::Admin,
            Some(&confirm),
        ),
        200,
    );

    let network = expect(&host.get("/api/v1/network", Role::Viewer), 200);
    assert!(
        network["in_effect"]
            .as_str()
            .unwrap()
            .contains("[network.bridge]"),
        "{network}"
    );
    assert_eq!(network["interfaces"][0]["name"], "eth0");
    let layout = &network["layout"];
    assert_eq!(
        layout["links"],
        json!([
            {"name": "eth0", "kind": "interface", "mode": "manual", "addresses": [],
             "gateway": null, "gateway6": null, "mtu": null, "ports": [], "vlan_parent": null,
             "vlan_id": null, "bond_primary": null, "stp": null, "port_of": "br0"},
            {"name": "eth0.20", "kind": "vlan", "mode": "dhcp", "addresses": [],
             "gateway": null, "gateway6": null, "mtu": null, "ports": [], "vlan_parent": "eth0",
             "vlan_id": 20, "bond_primary": null, "stp": null, "port_of": null},
            {"name": "br0", "kind": "bridge", "mode": "static", "addresses": ["192.0.2.10/24"],
             "gateway": "192.0.2.1", "gateway6": null, "mtu": null, "ports": ["eth0"],
             "vlan_parent": null, "vlan_id": null, "bond_primary": null, "stp": false,
             "port_of": null},
        ]),
        "{layout}"
    );
    assert_eq!(layout["dns_servers"], json!(["192.0.2.53"]));
    assert_eq!(layout["dns_search"], json!(["example.org"]));

    // The OpenAPI document describes the layout.
    let openapi = expect(&host.get("/api/v1/openapi.json", Role::Viewer), 200);
    let schemas = &openapi["components"]["schemas"];
    assert!(
        schemas["ConfiguredLink"]["properties"]["vlan_parent"].is_object(),
        "{}",
        schemas["ConfiguredLink"]
    );
}

#[test]
fn a_network_change_that_fails_is_rolled_back_and_bad_ones_are_refused_first() {
    let host = Host::start(true);
    let apply = |body: Value| host.send("POST", "/api/v1/network/apply", Role::Admin, Some(&body));
    let out_of_range = apply(json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 0 }));
    assert_eq!(
        refusal(&out_of_range),
        refused(400, "invalid_request", Some("confirm_within_secs"))
    );
    let not_network = apply(json!({ "network_toml": "[host]\nhostname = \"x\"\n",
                                    "confirm_within_secs": 60 }));
    assert_eq!(
        (not_network.status, kind(&not_network)),
        (400, "invalid_config".to_owned()),
        "{}",
        not_network.text()
    );
    let missing = apply(json!({ "network_toml": STATIC_ETH0 }));
    assert_eq!(
        refusal(&missing),
        refused(400, "invalid_request", Some("confirm_within_secs"))
    );

    host.daemon
        .handler
        .lock()
        .unwrap()
        .init
        .network
        .provisional_fails = true;
    let failed = apply(json!({ "network_toml": STATIC_ETH0, "confirm_within_secs": 60 }));
    assert_eq!(
        (failed.status, kind(&failed)),
        (409, "rolled_back".to_owned()),
        "{}",
        failed.text()
    );
}

#[test]
fn an_unreachable_daemon_is_unavailable_and_without_one_dev_mode_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let unreachable = Server::with_host(Arc::new(DaemonSocket {
        socket: dir.path().join("host.sock"),
    }));
    let answer = unreachable
        .client
        .get(
            "/api/v1/host",
            &[("authorization", unreachable.token(Role::Admin))],
        )
        .unwrap();
    assert_eq!(
        (answer.status, kind(&answer)),
        (503, "unavailable".to_owned())
    );
    assert!(
        answer.text().contains("host's console"),
        "{}",
        answer.text()
    );

    let dev = Server::start();
    for path in ["/api/v1/host", "/api/v1/network", "/api/v1/config"] {
        let answer = dev
            .client
            .get(path, &[("authorization", dev.token(Role::Admin))])
            .unwrap();
        assert_eq!(
            (answer.status, kind(&answer)),
            (503, "unavailable".to_owned()),
            "{path}"
        );
        assert!(answer.text().contains("--dev"), "{}", answer.text());
    }
}
