//! Facts the pages show beside what they change, in a real browser (headless Chromium through
//! chromedriver) against the real site over HTTPS on loopback, a real SQLite auth database,
//! the host daemon's handler in-process and a private libvirtd: the users page shows each
//! user's second factor and last sign-in and holds new passwords to the host's minimum, the
//! create-VM form offers libvirt's networks beside the host bridges, and the audit log is
//! read between two times. Each page is saved as a screenshot and must leave no error in the
//! console.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::guest::shared;
use common::host_daemon::Daemon;
use common::pages::{no_console_errors, screenshots, sign_in, wait_for_url};
use common::{PASSWORD, Server};
use mfv_auth::Role;
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::unique;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// `otto` with a confirmed second factor, and `vera` signed in once, through the API.
fn give_users_facts(server: &Server) {
    server.sign_in("vera", PASSWORD).unwrap();
    let otto = server.sign_in("otto", PASSWORD).unwrap();
    server.enrol_and_confirm_totp(&otto);
    let added = server.call(
        server.token(Role::Admin),
        "POST",
        "/api/v1/users",
        Some(json!({"username": "nils", "password": PASSWORD, "role": "viewer"})),
    );
    assert_eq!(added.status, 201, "{}", added.text());
}

fn attribute(browser: &Browser, css: &str, name: &str) -> Value {
    browser.text(css, WAIT).unwrap_or_default();
    browser
        .execute(&format!(
            "return document.querySelector({css:?})?.getAttribute({name:?}) ?? null"
        ))
        .unwrap()
}

/// Sets the datetime-local input `css` to `value` (local time) as a person typing it would.
fn set_time(browser: &Browser, css: &str, value: &str) {
    browser.text("#audit-filters", WAIT).unwrap();
    let script = format!(
        "const input = document.querySelector({css:?}); input.value = {value:?}; \
         input.dispatchEvent(new Event('input', {{bubbles: true}})); return input.value;"
    );
    assert_eq!(browser.execute(&script).unwrap(), json!(value));
}

/// `seconds` since the epoch as a datetime-local value in the browser's time zone.
fn local_minute(browser: &Browser, seconds: i64) -> String {
    let script = format!(
        "const d = new Date({seconds} * 1000); \
         return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);"
    );
    browser
        .execute(&script)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_pages_show_totp_last_sign_in_the_password_minimum_libvirt_networks_and_a_time_range() {
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let libvirtd = &shared().daemon;
    let network = unique("ui-net");
    libvirtd.define_network(&network, "mfvui0").unwrap();
    let server = Server::site(Arc::new(daemon.clone()), Some(libvirtd.uri()));
    give_users_facts(&server);
    let base = format!("https://{}", server.client.address());
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();
    let started = now();
    sign_in(&browser, &base, "ada", "/users", WAIT);

    // Users: the second factor and the last sign-in of each.
    let otto = browser
        .wait_for_text("tr[data-user=otto]", "On", WAIT)
        .unwrap();
    assert!(!otto.contains("never"), "{otto}");
    let nils = browser.text("tr[data-user=nils]", WAIT).unwrap();
    assert!(nils.contains("Off") && nils.contains("never"), "{nils}");
    let vera = browser.text("tr[data-user=vera]", WAIT).unwrap();
    assert!(vera.contains("Off") && !vera.contains("never"), "{vera}");
    let heads = browser.text("#user-list thead", WAIT).unwrap();
    assert!(
        heads.contains("2FA") && heads.contains("Last sign-in"),
        "{heads}"
    );
    let stamp = attribute(&browser, "tr[data-user=vera] time", "datetime");
    let stamp = stamp.as_str().unwrap();
    let at = mfv_linux::utc::UtcTime::parse_rfc3339(stamp).unwrap();
    assert!((started - 60..=now()).contains(&at), "{stamp}");
    screenshots(&browser, "facts-users");

    // A new user's password: the host's minimum is said and held to before sending.
    browser.click("#add-user", WAIT).unwrap();
    browser
        .wait_for_text("dialog", "At least 8 characters.", WAIT)
        .unwrap();
    assert_eq!(
        attribute(&browser, "dialog [name=password]", "minlength"),
        json!("8")
    );
    browser
        .type_into("dialog [name=username]", "tess", WAIT)
        .unwrap();
    browser
        .type_into("dialog [name=password]", "short", WAIT)
        .unwrap();
    browser
        .type_into("dialog [name=again]", "short", WAIT)
        .unwrap();
    browser.click("dialog button[type=submit]", WAIT).unwrap();
    browser
        .wait_for_text("dialog", "needs at least 8 characters", WAIT)
        .unwrap();
    screenshots(&browser, "facts-users-add");
    browser.click("dialog button.secondary", WAIT).unwrap();
    no_console_errors(&browser, "the users page");

    // One's own password: the same minimum.
    browser.open(&format!("{base}/account")).unwrap();
    browser
        .wait_for_text("#password-form", "At least 8 characters.", WAIT)
        .unwrap();
    assert_eq!(
        attribute(&browser, "#password-form [name=password]", "minlength"),
        json!("8")
    );
    no_console_errors(&browser, "the account page");

    // The create-VM form: libvirt's networks, and a bridge typed by name.
    browser.open(&format!("{base}/new-vm")).unwrap();
    browser.text("#vm-form", WAIT).unwrap();
    browser.click("#add-nic", WAIT).unwrap();
    let choices = browser.text("#nic-0-source", WAIT).unwrap();
    assert!(
        choices.contains(&format!("{network} (isolated, mfvui0, inactive)")),
        "{choices}"
    );
    assert!(choices.contains("Another bridge"), "{choices}");
    let groups = browser
        .execute(
            "return [...document.querySelectorAll('#nic-0-source optgroup')].map((g) => g.label)",
        )
        .unwrap();
    assert_eq!(
        groups,
        json!(["libvirt networks"]),
        "the host has no bridge"
    );
    // No bridge and no running network: a bridge name is asked for, as before.
    assert_eq!(
        browser
            .execute("return document.querySelector('#nic-0-source').value")
            .unwrap(),
        json!("other")
    );
    let choose_network = format!(
        "const s = document.querySelector('#nic-0-source'); s.value = 'network:{network}'; \
         s.dispatchEvent(new Event('change', {{bubbles: true}})); \
         return [document.querySelector('.other-field').hidden, \
                 document.querySelector('.inactive-network').hidden];"
    );
    assert_eq!(
        browser.execute(&choose_network).unwrap(),
        json!([true, false]),
        "an inactive network is said to be one"
    );
    browser
        .execute("document.querySelector('#vm-nics').scrollIntoView({block: 'center'})")
        .unwrap();
    screenshots(&browser, "facts-vm-new");
    no_console_errors(&browser, "the create-VM form");

    // The audit log between two times: a range ahead of now holds nothing; one around now
    // holds the sign-ins; both are kept in the page's address.
    browser.open(&format!("{base}/audit?event=login")).unwrap();
    browser
        .wait_for_text("#audit-results", "vera", WAIT)
        .unwrap();
    let tomorrow = local_minute(&browser, now() + 86_400);
    set_time(&browser, "#audit-since", &tomorrow);
    browser
        .click("#audit-filters button[type=submit]", WAIT)
        .unwrap();
    browser
        .wait_for_text("#audit-results", "No entries match.", WAIT)
        .unwrap();
    let url = wait_for_url(&browser, "", WAIT);
    assert!(url.contains("since="), "{url}");
    let from = local_minute(&browser, started - 120);
    let to = local_minute(&browser, now() + 120);
    set_time(&browser, "#audit-since", &from);
    set_time(&browser, "#audit-until", &to);
    browser
        .click("#audit-filters button[type=submit]", WAIT)
        .unwrap();
    let within = browser
        .wait_for_text("#audit-results", "ada", WAIT)
        .unwrap();
    assert!(within.contains("vera"), "{within}");
    let url = browser.url().unwrap();
    assert!(url.contains("since=") && url.contains("until="), "{url}");
    // Reloading the address keeps the range in the inputs.
    browser.open(&url).unwrap();
    browser
        .wait_for_text("#audit-results", "vera", WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelector('#audit-until').value")
            .unwrap(),
        json!(to)
    );
    screenshots(&browser, "facts-audit");
    // A range that ends before it starts: the API's refusal is shown.
    set_time(&browser, "#audit-since", &to);
    set_time(&browser, "#audit-until", &from);
    browser
        .click("#audit-filters button[type=submit]", WAIT)
        .unwrap();
    browser
        .wait_for_text("main", "until must not be before since", WAIT)
        .unwrap();
    // The refused range's 400 is the one error the console may show.
    browser.console_errors().unwrap();
}
