//! Storage pools on the storage page in a real browser (headless Chromium), served by the real
//! site over HTTPS on loopback with the host daemon's pool requests on a directory config store
//! and a private libvirtd without any pool, as on a host just set up in the browser: the page
//! says there is no storage yet and offers to add some; a directory pool added through the
//! form, first with a relative path shown beside its field, is listed; one a VM uses is kept
//! with the answer naming the VM; one removed is gone while its files stay. Each view is saved
//! as a screenshot at a laptop's and a phone's size and must leave no error in the console.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use common::host_daemon::Daemon;
use common::pages::{no_console_errors, screenshots, sign_in};
use mfv_tests::browser::Browser;
use mfv_tests::libvirtd::{PrivateLibvirtd, domain_with_disk, unique};
use mfv_vm::Hypervisor;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Adds disks to the fake sysfs and dev tree under `dir` (the daemon's inventory reads them):
/// sdb empty, sdc with an empty partition sdc1, sdd holding an ext4 file system.
fn fake_disks(dir: &Path) {
    let sys = dir.join("sys");
    for (name, sectors) in [
        ("sdb", 20_971_520_u64),
        ("sdc", 41_943_040),
        ("sdd", 16_384),
    ] {
        let parent = format!("devices/pci0000:00/0000:00:05.0/{name}");
        let block = sys.join(&parent).join("block").join(name);
        std::fs::create_dir_all(block.join("queue")).unwrap();
        for (attribute, value) in [
            ("size", sectors.to_string()),
            ("ro", "0".to_owned()),
            ("removable", "0".to_owned()),
            ("queue/rotational", "1".to_owned()),
        ] {
            std::fs::write(block.join(attribute), format!("{value}\n")).unwrap();
        }
        std::fs::write(sys.join(&parent).join("model"), "QEMU HARDDISK\n").unwrap();
        symlink("../..", block.join("device")).unwrap();
        std::fs::create_dir_all(sys.join("block")).unwrap();
        symlink(
            format!("../{parent}/block/{name}"),
            sys.join("block").join(name),
        )
        .unwrap();
        let node = dir.join("dev").join(name);
        std::fs::File::create(&node)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
    }
    let partition = sys.join("devices/pci0000:00/0000:00:05.0/sdc/block/sdc/sdc1");
    std::fs::create_dir_all(&partition).unwrap();
    for (attribute, value) in [
        ("partition", "1"),
        ("start", "2048"),
        ("size", "41940992"),
        ("ro", "0"),
    ] {
        std::fs::write(partition.join(attribute), format!("{value}\n")).unwrap();
    }
    std::fs::File::create(dir.join("dev/sdc1"))
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let made = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(dir.join("dev/sdd"))
        .status()
        .unwrap();
    assert!(made.success());
}

/// Takes the console's errors, which must be only the refusal of `status` from `path`.
fn only_the_refusal(browser: &Browser, path: &str, status: u16) {
    let errors = browser.console_errors().unwrap();
    assert!(
        errors
            .iter()
            .all(|error| error.contains(&format!("{path} - "))
                && error.contains(&format!("status of {status}"))),
        "{errors:#?}"
    );
}

/// Confirms the open confirmation dialog, after checking it says `needle`.
fn confirm(browser: &Browser, needle: &str) {
    browser
        .wait_for_text("dialog.confirm", needle, WAIT)
        .unwrap();
    browser
        .click("dialog.confirm button[value=confirm]", WAIT)
        .unwrap();
}

#[test]
fn a_directory_pool_is_added_through_the_form_listed_and_removed_keeping_its_files() {
    let libvirtd = PrivateLibvirtd::start().unwrap();
    let hardware = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(hardware.path(), true).with_libvirt(libvirtd.uri());
    fake_disks(hardware.path());
    let server = Server::site(Arc::new(daemon), Some(libvirtd.uri()));
    let base = format!("https://{}", server.client.address());
    let browser = Browser::start().unwrap();
    browser.set_window(1280, 720).unwrap();

    // A fresh host: no storage, and the way to add some.
    sign_in(&browser, &base, "ada", "/storage", WAIT);
    browser
        .wait_for_text("#no-storage", "No storage yet", WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelector('#open-upload-form').disabled")
            .unwrap(),
        json!(true),
        "nowhere to upload to"
    );
    screenshots(&browser, "pools-empty");
    no_console_errors(&browser, "the storage page without pools");

    // The form: the kinds' own fields, and the host's refusal beside the field it names.
    browser.click("#empty-add-storage", WAIT).unwrap();
    browser
        .wait_for_text("#pool-form", "Add storage", WAIT)
        .unwrap();
    browser
        .execute(
            "const kind = document.querySelector('#pool-kind'); kind.value = 'logical'; \
             kind.dispatchEvent(new Event('change'));",
        )
        .unwrap();
    browser
        .wait_for_text("#pool-form [data-field=device]", "holds nothing", WAIT)
        .unwrap();
    // The host's disks, those holding something shown but not offered.
    assert_eq!(
        browser
            .execute(
                "return [...document.querySelectorAll('#pool-device option')]\
                 .map((option) => [option.value, option.disabled, option.textContent]);"
            )
            .unwrap(),
        json!([
            ["/dev/sdb", false, "/dev/sdb · 10 GiB · QEMU HARDDISK"],
            [
                "/dev/sdc",
                true,
                "/dev/sdc · 20 GiB · QEMU HARDDISK (holds partitions)"
            ],
            ["/dev/sdc1", false, "/dev/sdc1 · 20 GiB"],
            [
                "/dev/sdd",
                true,
                "/dev/sdd · 8.0 MiB · QEMU HARDDISK (holds an ext4 file system)"
            ],
        ])
    );
    screenshots(&browser, "pools-add-lvm");
    browser
        .execute(
            "const kind = document.querySelector('#pool-kind'); kind.value = 'nfs'; \
             kind.dispatchEvent(new Event('change'));",
        )
        .unwrap();
    screenshots(&browser, "pools-add-nfs");
    browser
        .execute(
            "const kind = document.querySelector('#pool-kind'); kind.value = 'dir'; \
             kind.dispatchEvent(new Event('change'));",
        )
        .unwrap();
    let name = unique("ui-pool");
    let dir = hardware.path().join("images");
    browser.type_into("#pool-name", &name, WAIT).unwrap();
    browser.type_into("#pool-path", "images", WAIT).unwrap();
    browser.click("#pool-form-submit", WAIT).unwrap();
    browser
        .wait_for_text(
            "#pool-form [data-field=path] .field-error",
            "is not an absolute path",
            WAIT,
        )
        .unwrap();
    screenshots(&browser, "pools-add-refused");
    only_the_refusal(&browser, "/api/v1/pools", 400);
    browser
        .execute("document.querySelector('#pool-path').value = ''")
        .unwrap();
    browser
        .type_into("#pool-path", &dir.display().to_string(), WAIT)
        .unwrap();
    browser.click("#pool-form-submit", WAIT).unwrap();
    let panel = format!("[data-pool=\"{name}\"]");
    browser.wait_for_text(&panel, "No volumes", WAIT).unwrap();
    browser
        .wait_for_text(&panel, &format!("dir · running · {}", dir.display()), WAIT)
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.querySelectorAll('#no-storage, #pool-form').length")
            .unwrap(),
        json!(0)
    );
    screenshots(&browser, "pools-added");
    no_console_errors(&browser, "adding a pool");

    // A VM's disk in it: the pool stays, and the page says which VM holds it.
    let hypervisor = Hypervisor::connect(libvirtd.uri()).unwrap();
    let disk = hypervisor
        .create_volume(&name, "disk.qcow2", 1 << 20)
        .unwrap();
    let vm = unique("ui-user");
    hypervisor
        .define(&domain_with_disk(&vm, &disk.path))
        .unwrap();
    // The page, read before, still offers the removal: the host refuses it.
    browser
        .click(&format!("{panel} .pool-remove"), WAIT)
        .unwrap();
    confirm(&browser, "Its data stays");
    browser.wait_for_text("#storage-errors", &vm, WAIT).unwrap();
    screenshots(&browser, "pools-remove-refused");
    only_the_refusal(&browser, &format!("/api/v1/pools/{name}"), 409);
    // Read again, the page does not offer it, and says why.
    browser.open(&format!("{base}/storage")).unwrap();
    browser.wait_for_text(&panel, "disk.qcow2", WAIT).unwrap();
    assert_eq!(
        browser
            .execute(&format!(
                "const button = document.querySelector('{panel} .pool-remove'); \
                 return [button.disabled, button.title];"
            ))
            .unwrap(),
        json!([
            true,
            format!("Disks of {vm} are in it: remove them from the VMs first")
        ])
    );

    hypervisor
        .undefine(&vm, mfv_vm::VolumePolicy::Keep)
        .unwrap();
    browser.open(&format!("{base}/storage")).unwrap();
    browser.wait_for_text(&panel, "free", WAIT).unwrap();
    browser
        .click(&format!("{panel} .pool-remove"), WAIT)
        .unwrap();
    confirm(&browser, "Its data stays");
    browser
        .wait_for_text("#no-storage", "No storage yet", WAIT)
        .unwrap();
    assert!(dir.join("disk.qcow2").is_file(), "the data stays");
    no_console_errors(&browser, "removing a pool");
}
