//! Normal mode's web pages in a real browser (headless Chromium through chromedriver), served
//! by the real site over HTTPS on loopback: users in a real SQLite auth database, the host
//! daemon's own handler with fake hardware, VMs on a private libvirtd running the tiny test
//! guest under real QEMU. Each page is shown at a laptop's and a phone's size, saved as a
//! screenshot under `target/ui-screenshots/`, and must leave no error in the browser's
//! console.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{guest_spec, shared};
use common::host_daemon::Daemon;
use common::pages::{no_console_errors, screenshots, sign_in, wait_for_url};
use common::{PASSWORD, Server};
use mfv_auth::Role;
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::unique;
use mfv_vm::Hypervisor;
use mfv_web::assets::Bundle;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Calls the API with `role`'s token.
fn call(server: &Server, role: Role, method: &str, path: &str, body: Option<Value>) -> Value {
    let answer = server.call(server.token(role), method, path, body);
    assert!(
        answer.status < 300,
        "{method} {path}: {} {}",
        answer.status,
        answer.text()
    );
    answer.json().unwrap_or(Value::Null)
}

/// Waits until the task `started` answered has ended, as the admin sees it.
fn finish(server: &Server, started: &Value) {
    let id = started["task"]["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let task = call(
            server,
            Role::Admin,
            "GET",
            &format!("/api/v1/tasks/{id}"),
            None,
        );
        if task["task"]["state"] != "running" {
            assert_eq!(task["task"]["state"], "succeeded", "{task}");
            return;
        }
        assert!(Instant::now() < deadline, "task {id} still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sign_out(browser: &Browser) {
    browser.click("#sign-out", WAIT).unwrap();
    wait_for_url(browser, "/login", WAIT);
}

#[test]
fn the_pages_sign_in_show_the_host_and_its_vms_live_and_hide_what_a_role_may_not_do() {
    let shared = shared();
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon.clone()), Some(shared.daemon.uri()));
    let base = format!("https://{}", server.client.address());

    // A VM with a disk, running.
    let pool = unique("ui-pool");
    Hypervisor::connect(shared.daemon.uri())
        .unwrap()
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    let name = unique("ui-vm");
    let disks = json!([{"target": "vda", "source": {"new_volume": {"pool": pool, "size_gib": 1}}}]);
    let created = call(
        &server,
        Role::Admin,
        "POST",
        "/api/v1/vms",
        Some(guest_spec(&name, json!({ "disks": disks }))),
    );
    finish(&server, &created);
    call(
        &server,
        Role::Admin,
        "POST",
        &format!("/api/v1/vms/{name}/start"),
        None,
    );

    // The operator enrols a second factor.
    let otto = server.sign_in("otto", PASSWORD).unwrap();
    server.enrol_and_confirm_totp(&otto);

    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();

    // Without a session, a page leads to the login; a wrong password is named there.
    browser.open(&format!("{base}/vms")).unwrap();
    wait_for_url(&browser, "/login?next=%2Fvms", WAIT);
    screenshots(&browser, "login");
    browser.type_into("#username", "ada", WAIT).unwrap();
    browser
        .type_into("#password", "not the password", WAIT)
        .unwrap();
    browser.click("#sign-in", WAIT).unwrap();
    browser
        .wait_for_text("#login-error", "password is wrong", WAIT)
        .unwrap();
    screenshots(&browser, "login-refused");
    // The refused login's 401 is the one error the console may show.
    browser.console_errors().unwrap();
    browser.type_into("#password", PASSWORD, WAIT).unwrap();
    browser.click("#sign-in", WAIT).unwrap();
    wait_for_url(&browser, "/vms", WAIT);

    // The VM list, usable, and a change made elsewhere shown without a reload.
    browser
        .wait_for_text(&format!("tr[data-vm=\"{name}\"]"), "Running", WAIT)
        .unwrap();
    let usable = browser
        .execute("return performance.getEntriesByName('mfv-vm-list-usable').length")
        .unwrap();
    assert_eq!(usable, json!(1));
    no_console_errors(&browser, "the VM list");
    screenshots(&browser, "vms");
    call(
        &server,
        Role::Admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    browser
        .wait_for_text(&format!("tr[data-vm=\"{name}\"]"), "Stopped", WAIT)
        .unwrap();
    call(
        &server,
        Role::Admin,
        "POST",
        &format!("/api/v1/vms/{name}/start"),
        None,
    );
    browser
        .wait_for_text(&format!("tr[data-vm=\"{name}\"]"), "Running", WAIT)
        .unwrap();

    // The dashboard shows the host's facts.
    browser.open(&format!("{base}/")).unwrap();
    browser
        .wait_for_text("#view", "52:54:00:12:34:56", WAIT)
        .unwrap();
    let dashboard = browser.wait_for_text("#view", "running", WAIT).unwrap();
    for fact in [
        "Up for",
        "Virtualization",
        "Memory",
        "eth0",
        "up 1000 Mbit/s",
    ] {
        assert!(dashboard.contains(fact), "{fact} not in {dashboard}");
    }
    no_console_errors(&browser, "the dashboard");
    screenshots(&browser, "dashboard");

    // The VM's page: its disk, its graphs, the ways to its consoles.
    browser.open(&format!("{base}/vms/{name}")).unwrap();
    browser.wait_for_text("#view", "vda", WAIT).unwrap();
    browser.wait_for_text("#cpu-chart", "%", WAIT).unwrap();
    browser.wait_for_text("#memory-chart", "MiB", WAIT).unwrap();
    browser
        .wait_for_text("#view", "Graphical console", WAIT)
        .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    no_console_errors(&browser, "the VM's page");
    screenshots(&browser, "vm");

    // The other pages an admin sees.
    for (path, shows) in [
        ("/storage", pool.as_str()),
        ("/network", "eth0"),
        ("/users", "vera"),
        ("/audit", "start_vm"),
        ("/host", "phase mounts"),
    ] {
        browser.open(&format!("{base}{path}")).unwrap();
        browser.wait_for_text("#view", shows, WAIT).unwrap();
        no_console_errors(&browser, path);
        screenshots(&browser, path.trim_start_matches('/'));
    }
    sign_out(&browser);

    // The operator is asked for the code after the password.
    browser.open(&format!("{base}/")).unwrap();
    wait_for_url(&browser, "/login?next=%2F", WAIT);
    browser.type_into("#username", "otto", WAIT).unwrap();
    browser.type_into("#password", PASSWORD, WAIT).unwrap();
    browser.click("#sign-in", WAIT).unwrap();
    browser
        .wait_for_text("#login-error", "authenticator app", WAIT)
        .unwrap();
    browser.text("#totp", WAIT).unwrap();
    screenshots(&browser, "login-code");
    browser.console_errors().unwrap();

    // A viewer sees the VMs without their controls, and the API refuses them anyway.
    sign_in(&browser, &base, "vera", "/vms", WAIT);
    browser
        .wait_for_text(&format!("tr[data-vm=\"{name}\"]"), "Running", WAIT)
        .unwrap();
    let buttons = browser
        .execute("return document.querySelectorAll('#vm-list button').length")
        .unwrap();
    assert_eq!(buttons, json!(0));
    let nav = browser.text("#nav", WAIT).unwrap();
    assert!(!nav.contains("Users") && !nav.contains("Audit"), "{nav}");
    no_console_errors(&browser, "the viewer's VM list");
    screenshots(&browser, "vms-viewer");
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    let refused = server.call_as(
        &vera,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    browser.open(&format!("{base}/users")).unwrap();
    browser
        .wait_for_text("main", "does not allow this page", WAIT)
        .unwrap();

    call(
        &server,
        Role::Admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
}

#[test]
fn the_vm_list_says_the_host_restores_its_vms_and_shows_them_once_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("vms-restored");
    let server = Server::with_vms_restored_once("test:///default", marker.clone());
    let base = format!("https://{}", server.client.address());
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();
    sign_in(&browser, &base, "vera", "/vms", WAIT);
    browser
        .wait_for_text(".toolbar .status", "The host is restoring its VMs", WAIT)
        .unwrap();
    screenshots(&browser, "vms-restoring");
    std::fs::write(&marker, b"").unwrap();
    // The page asks again when the host said to (Retry-After), without a reload.
    browser
        .wait_for_text("tr[data-vm=\"test\"]", "Running", WAIT)
        .unwrap();
    browser
        .wait_for_text(".toolbar .status", "1 VM, 1 running", WAIT)
        .unwrap();
    // The browser logs each 503 it was answered as a failed load; nothing else went wrong.
    let errors = browser.console_errors().unwrap();
    assert!(
        errors
            .iter()
            .all(|error| error.contains("/api/v1/vms") && error.contains("503")),
        "{errors:#?}"
    );
}

#[test]
fn a_page_without_a_session_leads_to_the_login_and_back_to_a_local_path_only() {
    let server = Server::site(Arc::new(mfv_web::api::links::NoHostDaemon), None);
    let page = server.client.get("/vms/web%201?tab=disks", &[]).unwrap();
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        Some("/login?next=%2Fvms%2Fweb%25201%3Ftab%3Ddisks")
    );
    for (next, kept) in [
        ("%2Fvms", "data-next=\"/vms\""),
        ("%2F%2Fevil.example%2F", "data-next=\"/\""),
        ("https%3A%2F%2Fevil.example", "data-next=\"/\""),
        (
            "%2F%22%3E%3Cscript%3E",
            "data-next=\"/&quot;&gt;&lt;script&gt;\"",
        ),
    ] {
        let login = server
            .client
            .get(&format!("/login?next={next}"), &[])
            .unwrap();
        assert_eq!(login.status, 200);
        assert!(login.text().contains(kept), "{next}: {}", login.text());
    }
    let (_, cookie) = server.login("ada", PASSWORD);
    let cookie = cookie.unwrap();
    let signed_in = server
        .client
        .get("/login?next=%2Fvms", &[("cookie", &cookie)])
        .unwrap();
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), Some("/vms"));
    let (_, viewer) = server.login("vera", PASSWORD);
    let refused = server
        .client
        .get("/audit", &[("cookie", &viewer.unwrap())])
        .unwrap();
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("ViewAuditLog") || refused.text().contains("view_audit_log"));
    // Every page links the bundles by their hashed addresses, which are served.
    let page = server
        .client
        .get("/vms", &[("cookie", &cookie)])
        .unwrap()
        .text();
    for bundle in [Bundle::AppJs, Bundle::AppCss] {
        let href = mfv_web::assets::href(bundle);
        assert!(
            page.contains(&format!("\"{href}\"")),
            "{href} not in {page}"
        );
        assert_eq!(server.client.get(href, &[]).unwrap().status, 200, "{href}");
    }
}
