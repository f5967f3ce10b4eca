//! The storage pages and the VM form in a real browser (headless Chromium), served by the
//! real site over HTTPS on loopback with a private libvirtd and a directory pool: an ISO
//! uploaded through the page reaches 100 % and its volume appears, also when the link drops
//! in the middle (the browser talks to the server through a relay in this test that cuts
//! every connection after a number of bytes and refuses new ones for a few seconds, and slows
//! the bytes so progress can be seen); an image fetched from a URL of a small HTTP server here, first with a wrong
//! checksum; a VM created through the form, first with an invalid name shown beside its
//! field, with the uploaded ISO in its CD-ROM drive; the ISO ejected and inserted again on its
//! page. Every state is saved as a screenshot at a laptop's and a phone's size.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use common::guest::shared;
use common::host_daemon::Daemon;
use common::pages::{self, no_console_errors, screenshots, wait_for_url};
use mfv_auth::Role;
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::unique;
use mfv_vm::Hypervisor;
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;

/// A relay between the browser and the server: bytes pass both ways, the browser's slowed to
/// `rate` bytes a second. Once armed, when the browser has sent [`DROP_AFTER`] bytes more,
/// the link goes down for [`DOWN`]: every connection is cut and new ones are closed at once,
/// so neither the browser's own retry of a request nor the page's first tries get through.
struct Relay {
    address: SocketAddr,
    sent: Arc<AtomicU64>,
    armed: Arc<AtomicBool>,
    drops: Arc<AtomicU64>,
}

/// The connections a relay carries, and until when the link is down.
#[derive(Default)]
struct Link {
    open: Vec<TcpStream>,
    down_until: Option<Instant>,
}

impl Relay {
    fn start(server: SocketAddr, rate: u64) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let armed = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicU64::new(0));
        let link: Arc<Mutex<Link>> = Arc::default();
        let (relay_sent, relay_armed, relay_drops) = (sent.clone(), armed.clone(), drops.clone());
        std::thread::spawn(move || {
            for browser in listener.incoming() {
                let Ok(browser) = browser else { return };
                if link
                    .lock()
                    .unwrap()
                    .down_until
                    .is_some_and(|until| Instant::now() < until)
                {
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(server) else {
                    continue;
                };
                {
                    let mut link = link.lock().unwrap();
                    link.open.push(browser.try_clone().unwrap());
                    link.open.push(upstream.try_clone().unwrap());
                }
                let (from, to) = (browser.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (sent, armed, drops, link) = (
                    relay_sent.clone(),
                    relay_armed.clone(),
                    relay_drops.clone(),
                    link.clone(),
                );
                std::thread::spawn(move || {
                    pass(from, to, |count| {
                        std::thread::sleep(Duration::from_secs_f64(count as f64 / rate as f64));
                        let total = sent.fetch_add(count as u64, Ordering::SeqCst) + count as u64;
                        if armed.load(Ordering::SeqCst) && total > DROP_AFTER {
                            armed.store(false, Ordering::SeqCst);
                            drops.fetch_add(1, Ordering::SeqCst);
                            let mut link = link.lock().unwrap();
                            link.down_until = Some(Instant::now() + DOWN);
                            for stream in link.open.drain(..) {
                                let _ = stream.shutdown(Shutdown::Both);
                            }
                            return false;
                        }
                        true
                    });
                });
                std::thread::spawn(move || pass(upstream, browser, |_| true));
            }
        });
        Relay {
            address,
            sent,
            armed,
            drops,
        }
    }

    /// Takes the link down once the browser sent [`DROP_AFTER`] bytes from now.
    fn arm(&self) {
        self.sent.store(0, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// How many bytes the browser sends after [`Relay::arm`] before the link drops.
const DROP_AFTER: u64 = 3 * MIB as u64;

/// How long the link stays down.
const DOWN: Duration = Duration::from_secs(4);

/// Copies `from` to `to` until either ends or `each(count)`, called before `count` bytes
/// pass, says stop.
fn pass(mut from: TcpStream, mut to: TcpStream, mut each: impl FnMut(usize) -> bool) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let count = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        if !each(count) || to.write_all(&buffer[..count]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A one-file HTTP server: `GET` of any path answers `body` with its length.
fn serve_file(body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: \
                     application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    address
}

/// `size` bytes that do not repeat within a chunk.
fn image(size: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Waits until `script` (a function body) returns true in the page.
fn wait_until(browser: &Browser, script: &str, what: &str) {
    let start = Instant::now();
    while browser.execute(script).unwrap() != serde_json::Value::Bool(true) {
        assert!(
            start.elapsed() < WAIT,
            "{what}: the page shows {}",
            browser.text("body", Duration::ZERO).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets the select `css` to the option whose value contains `needle`, once there is one.
fn choose(browser: &Browser, css: &str, needle: &str) {
    let script = format!(
        "const select = document.querySelector({css:?}); \
         const option = select && [...select.options].find((o) => o.value.includes({needle:?})); \
         if (!option) return false; select.value = option.value; \
         select.dispatchEvent(new Event('change')); return true;"
    );
    wait_until(browser, &script, &format!("an option {needle} in {css}"));
}

/// Signs `username` in through the login page, going on to `path`, without a console error.
fn sign_in(browser: &Browser, base: &str, username: &str, path: &str) {
    pages::sign_in(browser, base, username, path, WAIT);
    no_console_errors(browser, "signing in");
}

#[test]
fn images_are_uploaded_through_a_dropped_link_fetched_and_used_by_a_vm_made_with_the_form() {
    let shared = shared();
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true);
    let server = Server::site(Arc::new(daemon.clone()), Some(shared.daemon.uri()));
    let pool = unique("ui-store");
    let pool_dir = server.dir.path().join("pool");
    Hypervisor::connect(shared.daemon.uri())
        .unwrap()
        .ensure_dir_pool(&pool, &pool_dir)
        .unwrap();
    let relay = Relay::start(server.client.address(), 2 * MIB as u64);
    let base = format!("https://{}", relay.address);
    let files = tempfile::tempdir().unwrap();
    let iso = image(8 * MIB, 1);
    let iso_path = files.path().join("tiny.iso");
    std::fs::write(&iso_path, &iso).unwrap();

    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();
    sign_in(&browser, &base, "ada", "/storage");
    browser
        .wait_for_text(&format!("[data-pool=\"{pool}\"]"), "No volumes", WAIT)
        .unwrap();
    no_console_errors(&browser, "the storage page");
    screenshots(&browser, "storage-pools");

    browser.click("#open-upload-form", WAIT).unwrap();
    browser
        .type_into("#upload-file", iso_path.to_str().unwrap(), WAIT)
        .unwrap();
    choose(&browser, "#upload-pool", &pool);
    assert_eq!(
        browser
            .execute("return document.querySelector('#upload-name').value")
            .unwrap(),
        "tiny.iso"
    );
    screenshots(&browser, "storage-upload-form");
    browser
        .execute(
            "window.seen = []; new MutationObserver(() => { \
             const status = document.querySelector('#upload-box .transfer-status'); \
             if (status) window.seen.push(status.textContent); }) \
             .observe(document.querySelector('#transfers'), \
             {subtree: true, childList: true, characterData: true});",
        )
        .unwrap();
    relay.arm();
    browser.click("#upload-form-submit", WAIT).unwrap();
    browser
        .wait_for_text(
            "#upload-box .transfer-status",
            "connection lost, resuming",
            WAIT,
        )
        .unwrap();
    screenshots(&browser, "storage-upload-resuming");
    browser
        .wait_for_text("#upload-box .transfer-status", "100 %", WAIT)
        .unwrap();
    browser
        .wait_for_text("tr[data-volume=\"tiny.iso\"]", "8.0 MiB", WAIT)
        .unwrap();
    assert_eq!(relay.drops.load(Ordering::SeqCst), 1);
    let seen = browser.execute("return window.seen").unwrap().to_string();
    for shown in ["MiB/s", "s left", "resuming", "100 %"] {
        assert!(seen.contains(shown), "{shown} in {seen}");
    }
    assert_eq!(std::fs::read(pool_dir.join("tiny.iso")).unwrap(), iso);
    // The requests the dropped link failed are the errors the console may show.
    browser.console_errors().unwrap();
    screenshots(&browser, "storage-upload-done");

    // A fetch with a wrong checksum fails saying what to do; with the right one it ends.
    let fetched = image(2 * MIB, 2);
    let sum = format!("{:x}", Sha256::digest(&fetched));
    let origin = serve_file(fetched.clone());
    browser.execute("window.scrollTo(0, 0)").unwrap();
    browser.click("#open-fetch-form", WAIT).unwrap();
    browser
        .type_into(
            "#fetch-url",
            &format!("http://{origin}/images/fetched.img"),
            WAIT,
        )
        .unwrap();
    choose(&browser, "#fetch-pool", &pool);
    browser
        .type_into("#fetch-volume", "fetched.img", WAIT)
        .unwrap();
    browser
        .type_into("#fetch-sha256", &"0".repeat(64), WAIT)
        .unwrap();
    screenshots(&browser, "storage-fetch-form");
    browser.click("#fetch-form-submit", WAIT).unwrap();
    browser
        .wait_for_text(".transfer.fetch .transfer-note", "fetch again", WAIT)
        .unwrap();
    screenshots(&browser, "storage-fetch-failed");
    // While the failed fetch deletes its volume, listing the pool's volumes may fail (a 500
    // the page shows and the next listing clears): not an error of the pages.
    browser.console_errors().unwrap();
    browser.execute("window.scrollTo(0, 0)").unwrap();
    browser.click("#open-fetch-form", WAIT).unwrap();
    browser
        .type_into(
            "#fetch-url",
            &format!("http://{origin}/images/fetched.img"),
            WAIT,
        )
        .unwrap();
    choose(&browser, "#fetch-pool", &pool);
    browser
        .type_into("#fetch-volume", "fetched.img", WAIT)
        .unwrap();
    browser.type_into("#fetch-sha256", &sum, WAIT).unwrap();
    browser.click("#fetch-form-submit", WAIT).unwrap();
    browser
        .wait_for_text(".transfer.fetch[data-state=succeeded]", "100 %", WAIT)
        .unwrap();
    browser
        .wait_for_text("tr[data-volume=\"fetched.img\"]", "2.0 MiB", WAIT)
        .unwrap();
    assert_eq!(
        std::fs::read(pool_dir.join("fetched.img")).unwrap(),
        fetched
    );
    no_console_errors(&browser, "the fetches");
    screenshots(&browser, "storage-fetch-done");

    // A VM made with the form: an invalid name is shown beside its field, the input kept.
    let name = unique("ui-made");
    browser.open(&format!("{base}/vms")).unwrap();
    browser.click("#new-vm", WAIT).unwrap();
    wait_for_url(&browser, "/new-vm", WAIT);
    browser.type_into("#vm-name", "no good!", WAIT).unwrap();
    browser.type_into("#vm-memory", "128", WAIT).unwrap();
    browser.type_into("#disk-0-size", "1", WAIT).unwrap();
    choose(&browser, "#vm-cdrom-pool", &pool);
    choose(&browser, "#vm-cdrom", "tiny.iso");
    screenshots(&browser, "storage-vm-new");
    browser.click("#vm-create", WAIT).unwrap();
    browser
        .wait_for_text("[data-field=name] .field-error", "letter", WAIT)
        .unwrap();
    browser
        .wait_for_text("#vm-form-errors", "name", WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelector('#vm-memory').value")
            .unwrap(),
        "128"
    );
    // The refusal's 400 is the one error the console may show.
    browser.console_errors().unwrap();
    screenshots(&browser, "storage-vm-new-refused");
    browser.type_into("#vm-name", &name, WAIT).unwrap();
    browser.click("#vm-create", WAIT).unwrap();
    wait_for_url(&browser, &format!("/vms/{name}"), WAIT);
    browser.wait_for_text("#vm-state", "Running", WAIT).unwrap();
    let vm = server.call(
        server.token(Role::Admin),
        "GET",
        &format!("/api/v1/vms/{name}"),
        None,
    );
    let vm = vm.json().unwrap();
    // A running VM's definition is read back partly as XML the spec keeps (its disks and
    // display among them), so the test looks for them in either.
    let graphics = vm["vm"]["preserved"]
        .as_array()
        .unwrap()
        .iter()
        .any(|kept| kept == "devices/graphics");
    assert!(vm["vm"]["spec"]["vnc"].is_object() || graphics, "{vm}");
    assert!(vm.to_string().contains("/tiny.iso"), "{vm}");
    browser
        .wait_for_text("#cdrom-media", "tiny.iso", WAIT)
        .unwrap();
    no_console_errors(&browser, "the new VM's page");
    screenshots(&browser, "storage-vm-cdrom");

    // The ISO ejected, then put back, on the running VM.
    browser.click("#cdrom-eject", WAIT).unwrap();
    browser
        .wait_for_text("#cdrom-media", "Empty", WAIT)
        .unwrap();
    screenshots(&browser, "storage-vm-ejected");
    choose(&browser, "#cdrom-volume", "tiny.iso");
    browser.click("#cdrom-insert", WAIT).unwrap();
    browser
        .wait_for_text("#cdrom-media", "tiny.iso", WAIT)
        .unwrap();
    no_console_errors(&browser, "the CD-ROM's changes");

    // A snapshot of the stopped VM, named and described on its page.
    let admin = server.token(Role::Admin);
    let stop = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(stop.status, 200, "{}", stop.text());
    browser.wait_for_text("#vm-state", "Stopped", WAIT).unwrap();
    browser
        .type_into("#snapshot-name", "before-install", WAIT)
        .unwrap();
    browser
        .type_into("#snapshot-description", "the empty disk", WAIT)
        .unwrap();
    browser.click("#snapshot-take", WAIT).unwrap();
    browser
        .wait_for_text("#snapshot-status", "taken", WAIT)
        .unwrap();
    browser
        .wait_for_text("#view", "the empty disk", WAIT)
        .unwrap();
    no_console_errors(&browser, "the snapshot");
    browser
        .execute("document.querySelector('#snapshot-form').scrollIntoView()")
        .unwrap();
    screenshots(&browser, "storage-vm-snapshot");

    // A viewer sees the pools and volumes but no control that changes them.
    browser.click("#sign-out", WAIT).unwrap();
    wait_for_url(&browser, "/login", WAIT);
    sign_in(&browser, &base, "vera", "/storage");
    browser
        .wait_for_text(&format!("[data-pool=\"{pool}\"]"), "tiny.iso", WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelectorAll('#storage-tools, #pools button').length")
            .unwrap(),
        0
    );
    no_console_errors(&browser, "the viewer's storage page");
    screenshots(&browser, "storage-viewer");

    let admin = server.token(Role::Admin);
    let stop = server.call(
        admin,
        "POST",
        &format!("/api/v1/vms/{name}/force-off"),
        None,
    );
    assert_eq!(stop.status, 200, "{}", stop.text());
    let deleted = server.call(
        admin,
        "DELETE",
        &format!("/api/v1/vms/{name}?volumes=delete"),
        None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
}
