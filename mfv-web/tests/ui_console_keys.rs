//! The graphical console's controls in a real browser (headless Chromium), on the real site
//! over HTTPS on loopback, the VM the tiny test guest under real QEMU (TCG) on a private
//! libvirtd, whose serial console this test reads on its own websocket to see what the guest
//! got: Start on the console page of a stopped VM boots it onto the canvas; keys typed on the
//! canvas reach the guest's screen, and none while View only is pressed; the Keys menu works
//! from the keyboard, its combinations reach the guest's terminal and leave no modifier held,
//! and its Ctrl-Alt-Del restarts the guest; held Ctrl and Alt stay down while keys are typed;
//! the clipboard panel sends its text. Screenshots at a laptop's and a phone's size go to
//! `target/ui-screenshots/`.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;
mod console;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use common::guest::{guest_spec, shared};
use common::host_daemon::Daemon;
use common::pages::{self, SIZES, no_console_errors, screenshots};
use console::{Tls, read_until};
use mfv_auth::Role;
use mfv_tests::browser::{Browser, screenshot_dir};
use mfv_tests::libvirtd::{GUEST_READY, GUEST_TYPED, unique};
use serde_json::json;
use tungstenite::{ClientRequestBuilder, WebSocket};

const WAIT: Duration = Duration::from_secs(20);
/// How long the guest may take to boot under TCG and show something.
const BOOT: Duration = Duration::from_secs(120);

/// WebDriver's key values of the keys the menu's keyboard use presses.
const ARROW_DOWN: &str = "\u{e015}";
const ARROW_UP: &str = "\u{e013}";
const END: &str = "\u{e010}";
const ESCAPE: &str = "\u{e00c}";

/// How many sampled pixels of the VNC canvas are not black; 0 before it has a picture.
const CANVAS_LIT: &str = "
    const canvas = document.querySelector('#console-screen canvas');
    if (!canvas || canvas.width < 100) { return 0; }
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    for (let at = 0; at < data.length; at += 4 * 3) {
        if (data[at] || data[at + 1] || data[at + 2]) { lit += 1; }
    }
    return lit;
";

/// The id of the element with the focus.
const FOCUSED: &str = "return document.activeElement?.id ?? null;";

/// The VM's serial console on a websocket of its own, as `admin`.
fn serial(server: &Server, admin: &str, name: &str) -> WebSocket<Tls> {
    let stream = server.client.connect().unwrap();
    let uri = format!("wss://vmhost/api/v1/vms/{name}/console/serial")
        .parse()
        .unwrap();
    let request = ClientRequestBuilder::new(uri).with_header("authorization", admin);
    tungstenite::client::client(request, stream).unwrap().0
}

/// Types `line` and Enter on the VNC canvas, as a person would.
fn type_on_screen(browser: &Browser, line: &str) {
    browser.click("#console-screen canvas", WAIT).unwrap();
    browser.press_keys(&format!("{line}\n")).unwrap();
}

/// Opens the Keys menu and chooses the entry `id`.
fn send_keys(browser: &Browser, id: &str) {
    browser.click("#console-keys", WAIT).unwrap();
    browser.click(&format!("#{id}"), WAIT).unwrap();
}

fn attribute(browser: &Browser, css: &str, script: &str) -> serde_json::Value {
    browser
        .execute(&format!(
            "const element = document.querySelector('{css}'); return {script};"
        ))
        .unwrap()
}

#[test]
fn the_console_starts_its_vm_and_sends_keys_held_modifiers_and_the_clipboard_unless_view_only() {
    let shared = shared();
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon.clone()), Some(shared.daemon.uri()));
    let base = format!("https://{}", server.client.address());
    let admin = server.token(Role::Admin);
    let name = unique("uick");
    let mut spec = guest_spec(&name, json!({}));
    spec["kernel_boot"]["cmdline"] = json!("console=tty0 console=ttyS0");
    let created = server.call(admin, "POST", "/api/v1/vms", Some(spec));
    let task = server.finished_task(&created);
    assert_eq!(task["state"], "succeeded", "{task}");

    // The console page of the stopped VM starts it, and the canvas shows it booting.
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();
    let console = format!("/vms/{name}/console");
    pages::sign_in(&browser, &base, "otto", &console, WAIT);
    browser
        .wait_for_text("#console-obstacle", "is not running", WAIT)
        .unwrap();
    browser.click("#console-start", WAIT).unwrap();
    browser
        .wait_for_text("#console-status", "Connected", WAIT)
        .unwrap();
    let deadline = Instant::now() + BOOT;
    while browser.execute(CANVAS_LIT).unwrap().as_u64().unwrap_or(0) < 200 {
        assert!(Instant::now() < deadline, "the canvas stays dark");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut guest = serial(&server, admin, &name);
    read_until(&mut guest, GUEST_READY, BOOT);
    no_console_errors(&browser, "starting the VM from its console");
    screenshots(&browser, "console-keys-started");

    // Typed keys reach the guest; none while View only is pressed, which also takes the
    // keys' controls away.
    type_on_screen(&browser, "typed-1");
    read_until(&mut guest, &format!("{GUEST_TYPED} typed-1"), WAIT);
    browser.click("#console-view-only", WAIT).unwrap();
    assert_eq!(
        attribute(
            &browser,
            "#console-view-only",
            "[element.getAttribute('aria-pressed'), ...['#console-keys', '#console-hold-ctrl', '#console-hold-alt'].map((css) => document.querySelector(css).disabled)]"
        ),
        json!(["true", true, true, true])
    );
    type_on_screen(&browser, "blocked");
    screenshots(&browser, "console-keys-view-only");
    browser.click("#console-view-only", WAIT).unwrap();
    type_on_screen(&browser, "open");
    let heard = read_until(&mut guest, &format!("{GUEST_TYPED} open"), WAIT);
    assert!(!heard.contains("blocked"), "{heard:?}");

    // The Keys menu from the keyboard: the down arrow opens it on its first entry, the
    // arrows and End move, Escape closes it back onto its button.
    browser
        .execute("document.querySelector('#console-keys').focus();")
        .unwrap();
    browser.press_keys(ARROW_DOWN).unwrap();
    assert_eq!(
        attribute(
            &browser,
            "#console-keys",
            "element.getAttribute('aria-expanded')"
        ),
        json!("true")
    );
    assert_eq!(browser.execute(FOCUSED).unwrap(), json!("console-cad"));
    browser.press_keys(ARROW_DOWN).unwrap();
    assert_eq!(browser.execute(FOCUSED).unwrap(), json!("console-key-cab"));
    browser.press_keys(END).unwrap();
    assert_eq!(
        browser.execute(FOCUSED).unwrap(),
        json!("console-key-ctrl-alt-f12")
    );
    browser.press_keys(ARROW_DOWN).unwrap();
    assert_eq!(browser.execute(FOCUSED).unwrap(), json!("console-cad"));
    browser.press_keys(ARROW_UP).unwrap();
    assert_eq!(
        browser.execute(FOCUSED).unwrap(),
        json!("console-key-ctrl-alt-f12")
    );
    browser.press_keys(ESCAPE).unwrap();
    assert_eq!(
        attribute(&browser, "#console-keys-menu", "element.hidden"),
        json!(true)
    );
    assert_eq!(browser.execute(FOCUSED).unwrap(), json!("console-keys"));
    for (size, width, height) in SIZES {
        browser.set_window(width, height).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        browser.click("#console-keys", WAIT).unwrap();
        let inside = attribute(
            &browser,
            "#console-keys-menu",
            "(() => { const box = element.getBoundingClientRect(); return box.left >= 0 && box.right <= document.documentElement.clientWidth; })()",
        );
        assert_eq!(inside, json!(true), "the open menu at {size}");
        let toolbar = attribute(
            &browser,
            ".console-bar",
            "element.scrollWidth <= document.documentElement.clientWidth && document.documentElement.scrollWidth <= document.documentElement.clientWidth",
        );
        assert_eq!(toolbar, json!(true), "the toolbar overflows at {size}");
        browser
            .screenshot(&screenshot_dir().join(format!("console-keys-menu-{size}.png")))
            .unwrap();
        browser.press_keys(ESCAPE).unwrap();
    }
    browser.set_window(1280, 720).unwrap();

    // Each combination but Ctrl-Alt-Del (no VT switch on this guest: only its first terminal
    // exists) leaves no modifier held: a line typed after them arrives as typed.
    let mut combinations = vec![
        "console-key-cab".to_owned(),
        "console-key-alt-tab".to_owned(),
        "console-key-alt-f4".to_owned(),
        "console-key-ctrl-esc".to_owned(),
        "console-key-super".to_owned(),
        "console-key-print".to_owned(),
    ];
    combinations.extend((1..=12).rev().map(|n| format!("console-key-ctrl-alt-f{n}")));
    for id in &combinations {
        send_keys(&browser, id);
    }
    type_on_screen(&browser, "after-keys");
    read_until(&mut guest, &format!("{GUEST_TYPED} after-keys"), WAIT);
    no_console_errors(&browser, "the Keys menu's combinations");

    // What the guest's terminal makes of some of them: Alt-Tab is Escape and Tab (Alt as the
    // Meta prefix); Print Screen is its quit character, which drops the line so far.
    browser.click("#console-screen canvas", WAIT).unwrap();
    browser.press_keys("before").unwrap();
    send_keys(&browser, "console-key-alt-tab");
    browser.press_keys("after\n").unwrap();
    read_until(
        &mut guest,
        &format!("{GUEST_TYPED} before\u{1b}\tafter"),
        WAIT,
    );
    browser.click("#console-screen canvas", WAIT).unwrap();
    browser.press_keys("dropped").unwrap();
    send_keys(&browser, "console-key-print");
    browser.press_keys("kept\n").unwrap();
    let heard = read_until(&mut guest, &format!("{GUEST_TYPED} kept"), WAIT);
    assert!(!heard.contains("dropped"), "{heard:?}");

    // Held Ctrl and Alt stay down for the keys typed meanwhile, until pressed again: Ctrl-U
    // erases the line so far, Alt-x is Escape and x.
    browser.click("#console-screen canvas", WAIT).unwrap();
    browser.press_keys("erased").unwrap();
    browser.click("#console-hold-ctrl", WAIT).unwrap();
    browser.press_keys("u").unwrap();
    browser.click("#console-hold-ctrl", WAIT).unwrap();
    browser.click("#console-hold-alt", WAIT).unwrap();
    assert_eq!(
        attribute(
            &browser,
            "#console-hold-alt",
            "element.getAttribute('aria-pressed')"
        ),
        json!("true")
    );
    browser.press_keys("x").unwrap();
    browser.click("#console-hold-alt", WAIT).unwrap();
    browser.press_keys("-held\n").unwrap();
    let heard = read_until(&mut guest, &format!("{GUEST_TYPED} \u{1b}x-held"), WAIT);
    assert!(!heard.contains("erased"), "{heard:?}");
    assert_eq!(
        attribute(
            &browser,
            "#console-hold-alt",
            "element.getAttribute('aria-pressed')"
        ),
        json!("false")
    );

    // The clipboard panel sends its text as the VM's clipboard (this guest has no agent to
    // take it) and copies it for the browser.
    browser.click("#console-clipboard", WAIT).unwrap();
    browser
        .type_into("#console-clipboard-text", "from the browser", WAIT)
        .unwrap();
    browser.click("#console-clipboard-send", WAIT).unwrap();
    browser
        .wait_for_text(
            "#console-clipboard-status",
            "Sent 16 characters to the VM's clipboard.",
            WAIT,
        )
        .unwrap();
    browser.click("#console-clipboard-copy", WAIT).unwrap();
    // The browser's clipboard answers later: the status changes once it has.
    let deadline = Instant::now() + WAIT;
    let copied = loop {
        let status = browser.text("#console-clipboard-status", WAIT).unwrap();
        if status.contains("Copied") || status.contains("press Ctrl-C") || Instant::now() > deadline
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        copied.contains("Copied") || copied.contains("press Ctrl-C"),
        "{copied}"
    );
    no_console_errors(&browser, "the clipboard panel");
    screenshots(&browser, "console-keys-clipboard");

    // Ctrl-Alt-Del restarts this guest (its kernel's default with no init to hear it).
    send_keys(&browser, "console-cad");
    read_until(&mut guest, "reboot: Restarting system", WAIT);
    no_console_errors(&browser, "Ctrl-Alt-Del");

    drop(guest);
    let _ = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    let deleted = server.call(admin, "DELETE", &format!("/api/v1/vms/{name}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}
