//! The network page in a real browser (headless Chromium through chromedriver), served by the
//! real site over HTTPS on loopback with the host daemon's own handler in-process: once a
//! section with a bridge over eth0 and a VLAN on it is in effect, the page's table shows each
//! link with its type, ports or parent, addresses, gateway, and the card's link state and MAC,
//! and the DNS under it. An administrator makes simple changes in dialogs (a bridge over the
//! card, a VLAN, a link's static addresses), each put in the TOML editor as a whole new
//! section and applied from there provisionally, then kept; a viewer reads the section as
//! TOML instead. Each view is saved as a screenshot at a laptop's and a phone's
//! size and must leave no error in the console.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Server;
use common::host_daemon::{BRIDGE_AND_VLAN, Daemon};
use common::pages::{no_console_errors, screenshots, sign_in, wait_for_url};
use mfv_auth::Role;
use mfv_tests::browser::Browser;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// The script answering the text of the table cell of `link` in the column labelled
/// `column`, or null.
fn cell_script(link: &str, column: &str) -> String {
    format!(
        "const row = document.querySelector('#network-links tr[data-link=\"{link}\"]'); \
         const td = row && [...row.cells].find((c) => c.dataset.label === {column:?}); \
         return td ? td.textContent : null;"
    )
}

/// The text of the table cell of `link` in the column labelled `column`.
fn cell(browser: &Browser, link: &str, column: &str) -> String {
    match browser.execute(&cell_script(link, column)).unwrap() {
        serde_json::Value::String(text) => text,
        other => panic!("no {column:?} cell for {link}: {other}"),
    }
}

/// Sets the `<select>` `css` selects to `value`, as a person choosing it would.
fn choose(browser: &Browser, css: &str, value: &str) {
    browser.text(css, WAIT).unwrap();
    let script = format!(
        "const s = document.querySelector({css:?}); s.value = {value:?}; \
         s.dispatchEvent(new Event('change', {{bubbles: true}})); return s.value;"
    );
    assert_eq!(browser.execute(&script).unwrap(), json!(value));
}

/// The text of the section in the editor.
fn editor_text(browser: &Browser) -> String {
    let text = browser
        .execute("return document.querySelector('#network-text').value")
        .unwrap();
    text.as_str().unwrap().to_owned()
}

/// Submits the open dialog.
fn submit_dialog(browser: &Browser) {
    browser.click("dialog button[type=submit]", WAIT).unwrap();
}

/// Applies the section in the editor, sees the countdown and keeps the change.
fn apply_and_keep(browser: &Browser) {
    browser.click("#network-apply", WAIT).unwrap();
    browser
        .wait_for_text("#network-countdown", " s", WAIT)
        .unwrap();
    // Until the change is kept or undone, no other one is begun.
    assert_eq!(
        browser
            .execute(
                "return [...document.querySelectorAll('#network-links button')]\
                 .every((button) => button.disabled)"
            )
            .unwrap(),
        json!(true)
    );
    browser.click("#network-confirm", WAIT).unwrap();
    browser
        .wait_for_text("main", "The network change is kept", WAIT)
        .unwrap();
}

/// Waits until the table's cell of `link` in `column` reads `text`.
fn wait_for_cell(browser: &Browser, link: &str, column: &str, text: &str) {
    let start = std::time::Instant::now();
    loop {
        let now = browser.execute(&cell_script(link, column)).unwrap();
        if now == json!(text) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{link}'s {column} reads {now}, not {text:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_network_page_shows_the_bridge_the_vlan_and_the_addresses_in_effect() {
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon), None);
    let base = format!("https://{}", server.client.address());
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();

    // Without a section: the card alone, and the page says where the network came from.
    sign_in(&browser, &base, "ada", "/network", WAIT);
    browser
        .wait_for_text("#network-links", "No [network] section", WAIT)
        .unwrap();
    assert_eq!(cell(&browser, "eth0", "Addresses"), "Not configured");
    assert_eq!(cell(&browser, "eth0", "Link"), "Up1000 Mbit/s");
    no_console_errors(&browser, "the network page without a section");

    // A bridge over the card: the card becomes its port, the bridge gets its addresses.
    browser.click("#network-add-bridge", WAIT).unwrap();
    browser
        .type_into("dialog [name=name]", "br 0", WAIT)
        .unwrap();
    submit_dialog(&browser);
    browser
        .wait_for_text("dialog", "A link name is 1 to 15 letters", WAIT)
        .unwrap();
    browser
        .type_into("dialog [name=name]", "br0", WAIT)
        .unwrap();
    choose(&browser, "dialog [name=port]", "eth0");
    submit_dialog(&browser);
    browser
        .wait_for_text("main", "The changed section is in the editor", WAIT)
        .unwrap();
    assert_eq!(
        editor_text(&browser),
        "[network]\n\n[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\n\
         [[network.interfaces]]\nname = \"br0\"\nmode = \"dhcp\"\n\n\
         [network.bridge]\nname = \"br0\"\nports = [\"eth0\"]\nstp = false\n"
    );
    screenshots(&browser, "network-add-bridge");
    apply_and_keep(&browser);
    wait_for_cell(&browser, "br0", "Ports / parent", "eth0");
    wait_for_cell(&browser, "br0", "Addresses", "DHCP");
    wait_for_cell(&browser, "eth0", "Ports / parent", "port of br0");
    assert_eq!(
        browser
            .execute("return document.querySelectorAll('#network-add-bridge').length")
            .unwrap(),
        json!(0),
        "one bridge only"
    );
    no_console_errors(&browser, "adding a bridge");

    let admin = server.token(Role::Admin).to_owned();
    let applied = server.call(
        &admin,
        "POST",
        "/api/v1/network/apply",
        Some(json!({ "network_toml": BRIDGE_AND_VLAN, "confirm_within_secs": 60 })),
    );
    assert_eq!(applied.status, 200, "{}", applied.text());
    let apply_id = applied.json().unwrap()["apply_id"].clone();
    let confirmed = server.call(
        &admin,
        "POST",
        "/api/v1/network/confirm",
        Some(json!({ "apply_id": apply_id })),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());

    browser.open(&format!("{base}/network")).unwrap();
    browser
        .wait_for_text("#network-links", "br0", WAIT)
        .unwrap();
    let rows = browser
        .execute(
            "return [...document.querySelectorAll('#network-links tbody tr')]\
             .map((row) => [row.dataset.link, row.dataset.kind]);",
        )
        .unwrap();
    assert_eq!(
        rows,
        json!([
            ["eth0", "interface"],
            ["eth0.20", "vlan"],
            ["br0", "bridge"]
        ])
    );
    // The card: a port of the bridge, with its link state and MAC.
    assert_eq!(cell(&browser, "eth0", "Type"), "Network carde1000");
    assert_eq!(cell(&browser, "eth0", "Ports / parent"), "port of br0");
    assert_eq!(cell(&browser, "eth0", "Addresses"), "None");
    assert_eq!(cell(&browser, "eth0", "Link"), "Up1000 Mbit/s");
    assert_eq!(cell(&browser, "eth0", "MAC"), "52:54:00:12:34:56");
    // The VLAN: its id and parent, addresses by DHCP.
    assert_eq!(cell(&browser, "eth0.20", "Type"), "VLAN 20");
    assert_eq!(cell(&browser, "eth0.20", "Ports / parent"), "on eth0");
    assert_eq!(cell(&browser, "eth0.20", "Addresses"), "DHCP");
    // The bridge: its port, the host's address and the gateway.
    assert_eq!(cell(&browser, "br0", "Type"), "Bridge");
    assert_eq!(cell(&browser, "br0", "Ports / parent"), "eth0");
    assert_eq!(cell(&browser, "br0", "Addresses"), "192.0.2.10/24");
    assert_eq!(cell(&browser, "br0", "Gateway"), "192.0.2.1");
    assert_eq!(cell(&browser, "br0", "Link"), "–");
    let dns = browser.text("#network-dns", WAIT).unwrap();
    assert!(
        dns.contains("192.0.2.53") && dns.contains("example.org"),
        "{dns}"
    );
    // The administrator's advanced path: the section as TOML in the editor.
    let toml = browser
        .execute("return document.querySelector('#network-text').value")
        .unwrap();
    assert!(
        toml.as_str().unwrap().contains("[network.bridge]"),
        "{toml}"
    );
    no_console_errors(&browser, "the network page");
    screenshots(&browser, "network-links");

    // A VLAN on the bridge with a static address; what is plainly incomplete is refused in
    // the dialog, at its field.
    browser.click("#network-add-vlan", WAIT).unwrap();
    choose(&browser, "dialog [name=parent]", "br0");
    browser.type_into("dialog [name=id]", "4095", WAIT).unwrap();
    choose(&browser, "dialog [name=mode]", "static");
    submit_dialog(&browser);
    browser
        .wait_for_text("dialog", "A VLAN id is a whole number from 1 to 4094", WAIT)
        .unwrap();
    browser.type_into("dialog [name=id]", "30", WAIT).unwrap();
    submit_dialog(&browser);
    browser
        .wait_for_text("dialog", "Static addresses need at least one address", WAIT)
        .unwrap();
    screenshots(&browser, "network-add-vlan");
    browser
        .type_into("dialog [name=addresses]", "198.51.100.5/24", WAIT)
        .unwrap();
    submit_dialog(&browser);
    browser
        .wait_for_text("main", "The changed section is in the editor", WAIT)
        .unwrap();
    let section = editor_text(&browser);
    assert!(
        section.contains(
            "name = \"br0.30\"\nmode = \"static\"\naddresses = [\"198.51.100.5/24\"]\n\
             vlan = { parent = \"br0\", id = 30 }\n"
        ),
        "{section}"
    );
    apply_and_keep(&browser);
    wait_for_cell(&browser, "br0.30", "Type", "VLAN 30");
    wait_for_cell(&browser, "br0.30", "Ports / parent", "on br0");
    wait_for_cell(&browser, "br0.30", "Addresses", "198.51.100.5/24");

    // Static addresses for the VLAN on the card, which had DHCP.
    browser
        .click("button[data-addresses='eth0.20']", WAIT)
        .unwrap();
    choose(&browser, "dialog [name=mode]", "static");
    browser
        .type_into(
            "dialog [name=addresses]",
            "203.0.113.7/24\n2001:db8::7/64",
            WAIT,
        )
        .unwrap();
    submit_dialog(&browser);
    browser
        .wait_for_text("main", "The changed section is in the editor", WAIT)
        .unwrap();
    apply_and_keep(&browser);
    wait_for_cell(
        &browser,
        "eth0.20",
        "Addresses",
        "203.0.113.7/242001:db8::7/64",
    );
    // The rest of the section stays as it was.
    wait_for_cell(&browser, "br0", "Gateway", "192.0.2.1");
    let dns = browser.text("#network-dns", WAIT).unwrap();
    assert!(
        dns.contains("192.0.2.53") && dns.contains("example.org"),
        "{dns}"
    );
    no_console_errors(&browser, "the simple changes");
    browser.click("#sign-out", WAIT).unwrap();
    wait_for_url(&browser, "/login", WAIT);

    // A viewer reads the same table, and the section as TOML without an editor.
    sign_in(&browser, &base, "vera", "/network", WAIT);
    browser
        .wait_for_text("#network-links", "192.0.2.10/24", WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelectorAll('#network-text, #network-apply').length")
            .unwrap(),
        json!(0)
    );
    browser.click("#network-in-effect summary", WAIT).unwrap();
    browser
        .wait_for_text(
            "#network-toml",
            "[network.interfaces.vlan]\nparent = \"eth0\"",
            WAIT,
        )
        .unwrap();
    no_console_errors(&browser, "the viewer's network page");
    screenshots(&browser, "network-links-viewer");
}
