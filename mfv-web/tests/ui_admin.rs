//! The administration pages in a real browser (headless Chromium through chromedriver),
//! served by the real site over HTTPS on loopback: users in a real SQLite auth database, the
//! host daemon's own handler in-process with a PID 1 double that records shutdowns (nothing
//! reboots). An administrator adds a user, makes an API token whose secret is shown once,
//! enrols a second factor, reads and filters the audit log, applies and keeps a network
//! change, and reboots only after typing the host's name; a viewer sees none of it and the
//! API refuses them. Each page is saved as a screenshot at a laptop's and a phone's size and
//! must leave no error in the console.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{guest_spec, shared};
use common::host_daemon::Daemon;
use common::pages::{no_console_errors, screenshots, sign_in, wait_for_url};
use common::{PASSWORD, Server};
use mfv_auth::{Role, Timestamp, totp_code};
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::unique;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Sets the `<select>` `css` selects to `value`, as a person choosing it would.
fn choose(browser: &Browser, css: &str, value: &str) {
    browser.text(css, WAIT).unwrap();
    let script = format!(
        "const s = document.querySelector({css:?}); s.value = {value:?}; \
         s.dispatchEvent(new Event('change', {{bubbles: true}})); return s.value;"
    );
    assert_eq!(browser.execute(&script).unwrap(), json!(value));
}

/// Clicks what `css` selects after scrolling it to the middle of the window, clear of the
/// sticky top bar.
fn click_centred(browser: &Browser, css: &str) {
    browser.text(css, WAIT).unwrap();
    browser
        .execute(&format!(
            "document.querySelector({css:?}).scrollIntoView({{block: 'center'}})"
        ))
        .unwrap();
    browser.click(css, WAIT).unwrap();
}

fn count(browser: &Browser, css: &str) -> Value {
    browser
        .execute(&format!("return document.querySelectorAll({css:?}).length"))
        .unwrap()
}

/// Calls the API as the administrator; the answer's JSON.
fn call(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let answer = server.call(server.token(Role::Admin), method, path, body);
    assert!(
        answer.status < 300,
        "{method} {path}: {} {}",
        answer.status,
        answer.text()
    );
    answer.json().unwrap_or(Value::Null)
}

/// A VM of the test guest, created and running.
fn running_vm(server: &Server) -> String {
    let name = unique("admin-vm");
    let created = call(
        server,
        "POST",
        "/api/v1/vms",
        Some(guest_spec(&name, json!({}))),
    );
    let id = created["task"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let task = call(server, "GET", &format!("/api/v1/tasks/{id}"), None);
        if task["task"]["state"] != "running" {
            assert_eq!(task["task"]["state"], "succeeded", "{task}");
            break;
        }
        assert!(Instant::now() < deadline, "task {id} still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    call(server, "POST", &format!("/api/v1/vms/{name}/start"), None);
    name
}

/// The current TOTP code of `secret`.
fn code_now(secret: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_code(secret, Timestamp(i64::try_from(now).unwrap())).unwrap()
}

#[test]
fn an_admin_manages_users_tokens_the_network_and_the_host_and_a_viewer_cannot() {
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon.clone()), Some(shared().daemon.uri()));
    let vm = running_vm(&server);
    let base = format!("https://{}", server.client.address());
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();
    sign_in(&browser, &base, "ada", "/users", WAIT);
    let errors = browser.console_errors().unwrap();
    assert!(errors.is_empty(), "signing in: {errors:#?}");

    // Adding a user: passwords that differ are caught in the dialog, then the user is added.
    browser.wait_for_text("#user-list", "vera", WAIT).unwrap();
    browser.click("#add-user", WAIT).unwrap();
    browser
        .type_into("dialog [name=username]", "nina", WAIT)
        .unwrap();
    browser
        .type_into("dialog [name=display_name]", "Nina Network", WAIT)
        .unwrap();
    choose(&browser, "dialog [name=role]", "operator");
    browser
        .type_into("dialog [name=password]", PASSWORD, WAIT)
        .unwrap();
    browser
        .type_into("dialog [name=again]", "something else entirely", WAIT)
        .unwrap();
    browser.click("dialog button[type=submit]", WAIT).unwrap();
    browser
        .wait_for_text("dialog", "The two passwords differ", WAIT)
        .unwrap();
    screenshots(&browser, "admin-users-add");
    browser
        .type_into("dialog [name=again]", PASSWORD, WAIT)
        .unwrap();
    browser.click("dialog button[type=submit]", WAIT).unwrap();
    let row = browser
        .wait_for_text("tr[data-user=nina]", "Nina Network", WAIT)
        .unwrap();
    assert!(row.contains("Active"), "{row}");
    assert_eq!(
        server
            .call(server.token(Role::Admin), "GET", "/api/v1/users/nina", None)
            .json()
            .unwrap()["role"],
        "operator"
    );
    // A change of role from the list.
    choose(&browser, "tr[data-user=nina] select", "viewer");
    browser
        .wait_for_text("main", "nina is now Viewer", WAIT)
        .unwrap();
    // Deleting asks once, naming the user; cancelling keeps them.
    click_centred(&browser, "tr[data-user=nina] button.danger");
    browser
        .wait_for_text("dialog", "Delete user nina?", WAIT)
        .unwrap();
    browser.click("dialog button.secondary", WAIT).unwrap();
    assert_eq!(count(&browser, "tr[data-user=nina]"), json!(1));
    no_console_errors(&browser, "the users page");

    // A token: its secret is shown once, works against the API, and is gone after a reload.
    browser.click("#new-token", WAIT).unwrap();
    browser.type_into("dialog [name=name]", "ci", WAIT).unwrap();
    choose(&browser, "dialog [name=role]", "operator");
    browser
        .type_into("dialog [name=expires_in_days]", "30", WAIT)
        .unwrap();
    browser.click("dialog button[type=submit]", WAIT).unwrap();
    browser
        .wait_for_text("dialog.secret-dialog", "it will not be shown again", WAIT)
        .unwrap();
    let secret = browser
        .execute("return document.querySelector('dialog input.secret').value")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("mfv_"), "{secret}");
    screenshots(&browser, "admin-token-secret");
    browser
        .click("dialog.secret-dialog button.cancel", WAIT)
        .unwrap();
    browser
        .wait_for_text("tr[data-token=ci]", "never", WAIT)
        .unwrap();
    screenshots(&browser, "admin-users");
    browser.open(&format!("{base}/users")).unwrap();
    let page = browser.wait_for_text("#token-list", "ci", WAIT).unwrap();
    assert!(!page.contains(&secret));
    let html = browser
        .execute("return document.documentElement.outerHTML")
        .unwrap();
    assert!(!html.as_str().unwrap().contains(&secret));
    let bearer = format!("Bearer {secret}");
    let whoami = server.call(&bearer, "GET", "/api/v1/session", None);
    assert_eq!(whoami.status, 200, "{}", whoami.text());
    assert_eq!(whoami.json().unwrap()["role"], "operator");
    no_console_errors(&browser, "the users page after a reload");

    // Revoking the token, ending another user's session and deleting a user each ask once,
    // naming what goes, and take effect at once.
    let otto = server.sign_in("otto", PASSWORD).unwrap();
    browser.open(&format!("{base}/users")).unwrap();
    click_centred(&browser, "tr[data-token=ci] button.danger");
    browser
        .wait_for_text("dialog", "Revoke token ci?", WAIT)
        .unwrap();
    screenshots(&browser, "admin-token-revoke");
    browser.click("dialog button.danger", WAIT).unwrap();
    browser
        .wait_for_text("main", "Token ci revoked", WAIT)
        .unwrap();
    assert_eq!(
        server.call(&bearer, "GET", "/api/v1/session", None).status,
        401
    );
    click_centred(&browser, "tr[data-session=otto] button.danger");
    browser
        .wait_for_text("dialog", "End otto's session?", WAIT)
        .unwrap();
    browser.click("dialog button.danger", WAIT).unwrap();
    browser
        .wait_for_text("main", "otto's session from", WAIT)
        .unwrap();
    let ended = server.call_as(&otto, "GET", "/api/v1/session", None);
    assert_eq!(ended.status, 401, "{}", ended.text());
    click_centred(&browser, "tr[data-user=nina] button.danger");
    browser
        .wait_for_text("dialog", "Delete user nina?", WAIT)
        .unwrap();
    browser.click("dialog button.danger", WAIT).unwrap();
    browser
        .wait_for_text("main", "User nina deleted", WAIT)
        .unwrap();
    assert_eq!(count(&browser, "tr[data-user=nina]"), json!(0));
    no_console_errors(&browser, "the users page's revocations");

    // The own account: a second factor enrolled with its QR code, confirmed with a code.
    browser.click("header a.who", WAIT).unwrap();
    wait_for_url(&browser, "/account", WAIT);
    browser.wait_for_text("#own-totp", "Off", WAIT).unwrap();
    browser
        .type_into("#totp-enrol [name=password]", PASSWORD, WAIT)
        .unwrap();
    browser
        .click("#totp-enrol button[type=submit]", WAIT)
        .unwrap();
    let totp_secret = browser.text("#totp-secret", WAIT).unwrap();
    assert_eq!(count(&browser, "svg.qr"), json!(1));
    assert_eq!(
        count(&browser, "#recovery-codes li"),
        json!(mfv_auth::RECOVERY_CODE_COUNT)
    );
    screenshots(&browser, "admin-account-enrol");
    browser
        .type_into("#totp-confirm [name=code]", &code_now(&totp_secret), WAIT)
        .unwrap();
    browser
        .click("#totp-confirm button[type=submit]", WAIT)
        .unwrap();
    browser
        .wait_for_text("#own-totp", "Two-factor sign-in is on", WAIT)
        .unwrap();
    browser
        .wait_for_text("#own-totp", "Recovery codes left", WAIT)
        .unwrap();
    // A wrong current password is named at its field.
    browser
        .type_into("#password-form [name=current]", "not my password", WAIT)
        .unwrap();
    browser
        .type_into(
            "#password-form [name=password]",
            "a new password of mine",
            WAIT,
        )
        .unwrap();
    browser
        .type_into(
            "#password-form [name=again]",
            "a new password of mine",
            WAIT,
        )
        .unwrap();
    browser
        .click("#password-form button[type=submit]", WAIT)
        .unwrap();
    browser
        .wait_for_text("#password-form .field-error", "wrong", WAIT)
        .unwrap();
    screenshots(&browser, "admin-account");
    // The refused password's 403 is the one error the console may show.
    browser.console_errors().unwrap();

    // The audit log shows those changes, and filters them.
    browser.open(&format!("{base}/audit")).unwrap();
    browser
        .wait_for_text("#audit-results", "token created", WAIT)
        .unwrap();
    browser
        .wait_for_text("#audit-results", "user added", WAIT)
        .unwrap();
    browser
        .wait_for_text("#audit-results", "totp confirmed", WAIT)
        .unwrap();
    screenshots(&browser, "admin-audit");
    choose(&browser, "#audit-event", "user_added");
    let filtered = browser
        .wait_for_text("#audit-results", "nina", WAIT)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let filtered = browser.text("#audit-results", WAIT).unwrap_or(filtered);
    assert!(!filtered.contains("token created"), "{filtered}");
    wait_for_url(&browser, "/audit?event=user_added", WAIT);
    browser.open(&format!("{base}/audit?user=nina")).unwrap();
    let about_nina = browser
        .wait_for_text("#audit-results", "role changed", WAIT)
        .unwrap();
    assert!(!about_nina.contains("token created"), "{about_nina}");
    no_console_errors(&browser, "the audit log");

    // The network: a change applied provisionally, the countdown shown, then kept.
    browser.open(&format!("{base}/network")).unwrap();
    browser
        .wait_for_text("#network-links", "eth0", WAIT)
        .unwrap();
    browser.text("#network-text", WAIT).unwrap();
    screenshots(&browser, "admin-network");
    browser.click("#network-apply", WAIT).unwrap();
    browser
        .wait_for_text("#network-edit", "add 192.0.2.10/24 to eth0", WAIT)
        .unwrap();
    browser
        .wait_for_text("#network-countdown", " s", WAIT)
        .unwrap();
    screenshots(&browser, "admin-network-pending");
    browser.click("#network-confirm", WAIT).unwrap();
    browser
        .wait_for_text("main", "The network change is kept", WAIT)
        .unwrap();
    no_console_errors(&browser, "the network page");

    // The host: rebooting names the host and asks for its name; the call is made only then.
    let hostname = server
        .call(server.token(Role::Admin), "GET", "/api/v1/host", None)
        .json()
        .unwrap()["hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.open(&format!("{base}/host")).unwrap();
    browser
        .wait_for_text("#services", "libvirtd", WAIT)
        .unwrap();
    browser
        .wait_for_text("#host-log", "phase mounts", WAIT)
        .unwrap();
    browser
        .wait_for_text("#host-config", "Generation", WAIT)
        .unwrap();
    choose(&browser, "#log-source", "libvirtd");
    browser
        .wait_for_text("#host-log", "libvirtd line 4", WAIT)
        .unwrap();
    screenshots(&browser, "admin-host");
    browser.click("#reboot", WAIT).unwrap();
    let dialog = browser.wait_for_text("dialog", &hostname, WAIT).unwrap();
    assert!(dialog.contains("stops every VM"), "{dialog}");
    assert!(dialog.contains(&vm), "{vm} not in {dialog}");
    let disabled = "return document.querySelector('dialog button.danger').disabled";
    assert_eq!(browser.execute(disabled).unwrap(), json!(true));
    browser
        .type_into("dialog [name=confirm]", "another-host", WAIT)
        .unwrap();
    assert_eq!(browser.execute(disabled).unwrap(), json!(true));
    screenshots(&browser, "admin-host-reboot");
    assert!(daemon.shutdowns().is_empty());
    browser
        .type_into("dialog [name=confirm]", &hostname, WAIT)
        .unwrap();
    assert_eq!(browser.execute(disabled).unwrap(), json!(false));
    browser.click("dialog button.danger", WAIT).unwrap();
    browser
        .wait_for_text("#power-state", "rebooting", WAIT)
        .unwrap();
    assert_eq!(daemon.shutdowns(), ["reboot"]);
    no_console_errors(&browser, "the host page");
    browser.click("#sign-out", WAIT).unwrap();
    wait_for_url(&browser, "/login", WAIT);

    // A viewer: no administration in the navigation, no network editor, their own account
    // only; and the API refuses each change.
    sign_in(&browser, &base, "vera", "/network", WAIT);
    browser
        .wait_for_text("#network-links", "eth0", WAIT)
        .unwrap();
    assert_eq!(count(&browser, "#network-text, #network-apply"), json!(0));
    let nav = browser.text("#nav", WAIT).unwrap();
    for hidden in ["Users", "Audit", "Host"] {
        assert!(!nav.contains(hidden), "{nav}");
    }
    no_console_errors(&browser, "the viewer's network page");
    screenshots(&browser, "admin-network-viewer");
    browser.click("header a.who", WAIT).unwrap();
    browser.wait_for_text("#own-totp", "Off", WAIT).unwrap();
    no_console_errors(&browser, "the viewer's account");
    screenshots(&browser, "admin-account-viewer");
    for path in ["/users", "/audit", "/host"] {
        browser.open(&format!("{base}{path}")).unwrap();
        browser
            .wait_for_text("main", "does not allow this page", WAIT)
            .unwrap();
    }
    let viewer = server.token(Role::Viewer);
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/users",
            json!({"username": "eve", "password": PASSWORD, "role": "admin"}),
        ),
        (
            "POST",
            "/api/v1/tokens",
            json!({"name": "x", "role": "viewer", "expires_in_days": 1}),
        ),
        ("GET", "/api/v1/audit", Value::Null),
        ("POST", "/api/v1/host/reboot", json!({"confirm": hostname})),
        (
            "POST",
            "/api/v1/network/apply",
            json!({"network_toml": "[network]\n", "confirm_within_secs": 30}),
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let refused = server.call(viewer, method, path, body);
        assert_eq!(refused.status, 403, "{method} {path}: {}", refused.text());
    }
    assert_eq!(daemon.shutdowns(), ["reboot"]);
    call(
        &server,
        "POST",
        &format!("/api/v1/vms/{vm}/force-off"),
        None,
    );
}
