//! The console pages in a real browser (headless Chromium through chromedriver), served by
//! the real site over HTTPS on loopback, the VMs the tiny test guest under real QEMU (TCG)
//! on a private libvirtd: the VNC page draws the guest's screen and sends Ctrl-Alt-Del and
//! typed text, the serial page carries a line typed into the guest and its answer, a
//! stopped VM's console says it is not running, a viewer is refused, and only the console
//! pages get the looser content security policy (the browser's console stays free of
//! errors, so xterm's style elements and noVNC's images are not blocked). Each page is
//! saved as a screenshot at a laptop's and a phone's size under `target/ui-screenshots/`.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::guest::{guest_spec, shared};
use common::host_daemon::Daemon;
use common::pages::{self, no_console_errors, screenshots, wait_for_url};
use common::{PASSWORD, Server};
use mfv_auth::Role;
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::{GUEST_HEARD, unique};
use mfv_web::reply::{CONSOLE_CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// How long the guest may take to boot under TCG and show something.
const BOOT: Duration = Duration::from_secs(120);

/// Creates the test guest `name` as the admin (with the VNC display every VM gets, which
/// listens on no port), printing to the screen as well as to the serial port, and starts it
/// when `start`.
fn create_vm(server: &Server, name: &str, start: bool) {
    let admin = server.token(Role::Admin);
    let mut spec = guest_spec(name, json!({}));
    spec["kernel_boot"]["cmdline"] = json!("console=tty0 console=ttyS0");
    let created = server.call(admin, "POST", "/api/v1/vms", Some(spec));
    let task = server.finished_task(&created);
    assert_eq!(task["state"], "succeeded", "{task}");
    if start {
        let started = server.call(admin, "POST", &format!("/api/v1/vms/{name}/start"), None);
        assert_eq!(started.status, 200, "{}", started.text());
    }
}

fn delete_vm(server: &Server, name: &str) {
    let admin = server.token(Role::Admin);
    let _ = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    let deleted = server.call(admin, "DELETE", &format!("/api/v1/vms/{name}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}

/// What the VNC page's canvas shows: its size, how many sampled pixels are not black, and
/// how many distinct colours they have; `null` before it has a picture.
const CANVAS_PIXELS: &str = "
    const canvas = document.querySelector('#console-screen canvas');
    if (!canvas || canvas.width < 100) { return null; }
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    const colours = new Set();
    for (let at = 0; at < data.length; at += 4 * 3) {
        const colour = (data[at] << 16) | (data[at + 1] << 8) | data[at + 2];
        if (colour !== 0) { lit += 1; }
        colours.add(colour);
    }
    return { width: canvas.width, height: canvas.height, lit, colours: colours.size };
";

/// The text the serial page's terminal shows.
const TERMINAL_TEXT: &str =
    "return document.querySelector('#serial-screen .xterm-rows')?.innerText ?? '';";

/// Signs `username` in through the login page, going on to `path`.
fn sign_in(browser: &Browser, base: &str, username: &str, path: &str) {
    pages::sign_in(browser, base, username, path, WAIT);
    // A console page the role may not open answers 403, which the browser's console shows:
    // the tests that open such a page check that answer themselves.
    browser.console_errors().unwrap();
}

#[test]
fn the_console_pages_show_the_guests_screen_and_serial_console_and_only_they_loosen_the_policy() {
    let shared = shared();
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon.clone()), Some(shared.daemon.uri()));
    let base = format!("https://{}", server.client.address());
    let name = unique("uic-run");
    let stopped = unique("uic-off");
    create_vm(&server, &name, true);
    create_vm(&server, &stopped, false);

    // The console pages alone carry the looser policy; a viewer is refused them.
    let otto = server.sign_in("otto", PASSWORD).unwrap();
    for (path, policy) in [
        (
            format!("/vms/{name}/console"),
            CONSOLE_CONTENT_SECURITY_POLICY,
        ),
        (
            format!("/vms/{name}/serial"),
            CONSOLE_CONTENT_SECURITY_POLICY,
        ),
        (format!("/vms/{name}"), CONTENT_SECURITY_POLICY_VALUE),
        ("/vms".to_owned(), CONTENT_SECURITY_POLICY_VALUE),
        ("/".to_owned(), CONTENT_SECURITY_POLICY_VALUE),
    ] {
        let page = server.call_as(&otto, "GET", &path, None);
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert_eq!(
            page.header("content-security-policy"),
            Some(policy),
            "{path}"
        );
    }
    let vera = server.sign_in("vera", PASSWORD).unwrap();
    for path in [
        format!("/vms/{name}/console"),
        format!("/vms/{name}/serial"),
    ] {
        let page = server.call_as(&vera, "GET", &path, None);
        assert_eq!(page.status, 403, "{path}: {}", page.text());
        assert!(page.text().contains("use_console"), "{}", page.text());
        assert_eq!(
            page.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY_VALUE),
            "{path}"
        );
    }

    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();

    // The VNC page draws the guest's screen.
    let console = format!("/vms/{name}/console");
    sign_in(&browser, &base, "otto", &console);
    browser
        .wait_for_text("#console-status", "Connected", WAIT)
        .unwrap();
    let deadline = Instant::now() + BOOT;
    let picture = loop {
        let pixels = browser.execute(CANVAS_PIXELS).unwrap();
        if pixels["lit"].as_u64().unwrap_or(0) > 200 && pixels["colours"].as_u64().unwrap_or(0) >= 2
        {
            break pixels;
        }
        assert!(
            Instant::now() < deadline,
            "the canvas shows no text of the guest: {pixels}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(picture["width"].as_u64().unwrap() >= 640, "{picture}");
    no_console_errors(&browser, "the VNC console");
    screenshots(&browser, "console-vnc");

    // Its buttons: actual size and back, Ctrl-Alt-Del, text typed as keystrokes.
    browser.click("#console-scale", WAIT).unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelector('#console-scale').getAttribute('aria-pressed')")
            .unwrap(),
        json!("true")
    );
    browser.click("#console-scale", WAIT).unwrap();
    browser.click("#console-keys", WAIT).unwrap();
    browser.click("#console-cad", WAIT).unwrap();
    browser.click("#console-paste", WAIT).unwrap();
    browser
        .type_into("#console-paste-text", "echo typed", WAIT)
        .unwrap();
    screenshots(&browser, "console-vnc-paste");
    browser.click("#console-type", WAIT).unwrap();
    browser
        .wait_for_text("#console-paste-progress", "Typed 10 characters.", WAIT)
        .unwrap();
    no_console_errors(&browser, "the VNC console's buttons");

    // A pop-out window has the console without the site's chrome.
    browser.open(&format!("{base}{console}?popout=1")).unwrap();
    browser
        .wait_for_text("#console-status", "Connected", WAIT)
        .unwrap();
    let chrome = browser
        .execute("return [document.querySelector('header.topbar, nav#nav') === null, document.querySelector('#console-popout') === null]")
        .unwrap();
    assert_eq!(chrome, json!([true, true]));
    std::thread::sleep(Duration::from_secs(1));
    no_console_errors(&browser, "the popped-out VNC console");
    screenshots(&browser, "console-vnc-popout");

    // The serial page carries a line typed into the guest and its answer.
    browser.open(&format!("{base}/vms/{name}/serial")).unwrap();
    browser
        .wait_for_text("#console-status", "Connected", WAIT)
        .unwrap();
    browser
        .wait_for_text("#serial-note", "takes it over", WAIT)
        .unwrap();
    let deadline = Instant::now() + BOOT;
    let mut attempt = 0;
    'typed: loop {
        attempt += 1;
        let line = format!("hello-{attempt}");
        browser.click("#serial-screen", WAIT).unwrap();
        browser.press_keys(&format!("{line}\n")).unwrap();
        let answered = Instant::now() + Duration::from_secs(5);
        while Instant::now() < answered {
            let text = browser.execute(TERMINAL_TEXT).unwrap();
            if text
                .as_str()
                .unwrap_or_default()
                .contains(&format!("{GUEST_HEARD} {line}"))
            {
                break 'typed;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            Instant::now() < deadline,
            "the guest never answered: {}",
            browser.execute(TERMINAL_TEXT).unwrap()
        );
    }
    no_console_errors(&browser, "the serial console");
    screenshots(&browser, "console-serial");

    // A stopped VM's console says so and offers to start it.
    browser
        .open(&format!("{base}/vms/{stopped}/console"))
        .unwrap();
    browser
        .wait_for_text("#console-obstacle", "is not running", WAIT)
        .unwrap();
    browser.text("#console-start", WAIT).unwrap();
    assert_eq!(
        browser.text("#console-status", WAIT).unwrap(),
        "Not connected"
    );
    no_console_errors(&browser, "a stopped VM's console");
    screenshots(&browser, "console-vnc-stopped");

    // The VM stopping closes the open console with the reason.
    browser.open(&format!("{base}{console}")).unwrap();
    browser
        .wait_for_text("#console-status", "Connected", WAIT)
        .unwrap();
    let admin = server.token(Role::Admin);
    let off = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(off.status, 200, "{}", off.text());
    browser
        .wait_for_text("#console-obstacle", "is not running", WAIT)
        .unwrap();
    assert_eq!(
        browser.text("#console-status", WAIT).unwrap(),
        "Disconnected"
    );
    // Start is the way on, not Reconnect.
    browser.text("#console-start", WAIT).unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelector('#console-reconnect').hidden")
            .unwrap(),
        json!(true)
    );
    no_console_errors(&browser, "the VNC console of a VM that stopped");
    screenshots(&browser, "console-vnc-closed");

    // A viewer sees the refusal.
    browser.click("#sign-out", WAIT).unwrap();
    wait_for_url(&browser, "/login", WAIT);
    sign_in(&browser, &base, "vera", &console);
    browser
        .wait_for_text("main .error", "use_console", WAIT)
        .unwrap();
    screenshots(&browser, "console-forbidden");

    for vm in [&name, &stopped] {
        delete_vm(&server, vm);
    }
}
