//! Appliance tests of the web server: a host without a configuration, given its network on the
//! console's setup screen, serves config mode over HTTPS on the forwarded port, with the
//! certificate whose fingerprint the console shows, and lets in only the client that presents
//! the console's setup token, once; the whole setup through the API puts the host in normal
//! mode without a reboot, and the next boot uses the volume it made. They boot the real
//! image under QEMU TCG, read the console's status screen on the serial line and talk to
//! the forwarded ports as a browser would; one test is a person in a real browser (headless
//! Chromium) going through the setup wizard from the token page to the saved configuration,
//! then adding storage on the host's data disk, creating a VM there and seeing its screen.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::browser::Browser;
use mfv_tests::https::HttpsClient;
use mfv_tests::setup_screen::choose_dhcp_on_the_first_card;
use mfv_tests::{ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, NicModel};
use serde_json::json;

/// Boot, DHCP and the services, under TCG on a loaded machine.
const LINE_TIMEOUT: Duration = Duration::from_secs(180);
/// For QEMU to exit once the host powers off.
const EXIT_TIMEOUT: Duration = Duration::from_secs(120);
/// The console's invitation to log in.
const PRESS_ENTER: &str = "Press Enter to log in for a shell (administrators only).";

/// The fingerprint the console's status screen shows last (two lines of 16 bytes under
/// its heading).
fn console_fingerprint(guest: &Guest) -> anyhow::Result<String> {
    let log = guest.serial_log();
    let heading = "certificate SHA-256 fingerprint";
    let at = log
        .rfind(heading)
        .with_context(|| format!("the console shows no fingerprint:\n{log}"))?;
    let halves: Vec<&str> = log[at..].lines().skip(1).take(2).map(str::trim).collect();
    Ok(halves.join(":"))
}

/// The session cookie (`name=value`) a claim answered with.
fn session_cookie(claimed: &mfv_tests::https::HttpResponse) -> anyhow::Result<String> {
    Ok(claimed
        .header("set-cookie")
        .and_then(|cookie| cookie.split(';').next())
        .context("no session cookie")?
        .to_owned())
}

/// The setup token the console shows last.
fn console_token(guest: &Guest) -> anyhow::Result<String> {
    let log = guest.serial_log();
    let line = log
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("setup token: "))
        .with_context(|| format!("the console shows no setup token:\n{log}"))?;
    Ok(line.trim().to_owned())
}

/// Waits until PID 1 took the saved configuration into use, and checks it set the host name
/// from the volume on `/dev/vda`.
fn wait_until_set_up(guest: &mut Guest, hostname: &str) -> anyhow::Result<()> {
    guest.wait_for_line(
        "setup: done: the host runs with its configuration",
        LINE_TIMEOUT,
    )?;
    let set = format!("hostname: {hostname} (from the configuration on /dev/vda)");
    ensure!(
        guest.serial_log().contains(&set),
        "the host name was not set:\n{}",
        guest.serial_log()
    );
    Ok(())
}

#[test]
fn config_mode_lets_in_only_the_console_token_over_the_certificate_it_shows() -> anyhow::Result<()>
{
    // The operator at the console gives the host its network on the setup screen.
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.setup_timeout=600")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .forward_port(80)
        .boot()?;
    guest.wait_for_line("config: no configuration found", LINE_TIMEOUT)?;
    choose_dhcp_on_the_first_card(&mut guest, LINE_TIMEOUT)?;
    guest.wait_for_line("  web: https://10.0.2.15/", LINE_TIMEOUT)?;
    guest.wait_for_line("  setup token: ", LINE_TIMEOUT)?;
    let fingerprint = console_fingerprint(&guest)?;
    let token = console_token(&guest)?;
    let https = guest.host_port(443).context("no forward for 443")?;
    let http = guest.host_port(80).context("no forward for 80")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, https)), "10.0.2.15")?;
    // The console shows the token once the host daemon issued it; the server starts after.
    let page = client.wait_until_serving(LINE_TIMEOUT)?;
    ensure!(
        page.status == 200 && page.text().contains("setup token"),
        "{}",
        page.text()
    );

    let refused = client.get("/api/v1/setup", &[])?;
    ensure!(refused.status == 401, "{}", refused.text());
    ensure!(
        client.served_fingerprint().as_deref() == Some(fingerprint.as_str()),
        "the console shows {fingerprint}, the server presented {:?}",
        client.served_fingerprint()
    );

    let claim =
        |token: &str| client.post_json("/api/v1/setup/claim", &[], &json!({ "token": token }));
    let wrong = claim("abcde-fghjk-mnpqr-stuvw")?;
    ensure!(wrong.status == 403, "{}", wrong.text());
    let missing = client.send(
        "POST",
        "/api/v1/setup/claim",
        &[("content-type", "application/json")],
        Some(b"{}"),
    )?;
    ensure!(missing.status == 400, "{}", missing.text());
    let oversized = client.send(
        "POST",
        "/api/v1/setup/claim",
        &[("content-type", "application/json")],
        Some(&vec![b' '; 70 * 1024]),
    )?;
    ensure!(oversized.status == 413, "{}", oversized.text());

    let claimed = claim(&token)?;
    ensure!(claimed.status == 200, "{}", claimed.text());
    let cookie = session_cookie(&claimed)?;
    let state = client.get("/api/v1/setup", &[("cookie", &cookie)])?;
    ensure!(
        state.status == 200 && state.json()?["mode"] == "config",
        "{}",
        state.text()
    );
    let reused = claim(&token)?;
    ensure!(
        reused.status == 403 && reused.text().contains("used already"),
        "{}",
        reused.text()
    );
    guest.wait_for_line("  setup token: used", LINE_TIMEOUT)?;

    // Plain HTTP is sent to HTTPS.
    let mut plain = TcpStream::connect((Ipv4Addr::LOCALHOST, http))?;
    plain.set_read_timeout(Some(Duration::from_secs(30)))?;
    plain.write_all(b"GET /x HTTP/1.1\r\nhost: 10.0.2.15\r\nconnection: close\r\n\r\n")?;
    let mut answer = String::new();
    plain.read_to_string(&mut answer)?;
    ensure!(
        answer.starts_with("HTTP/1.1 308") && answer.contains("location: https://10.0.2.15/x\r\n"),
        "{answer}"
    );
    Ok(())
}

/// Boots a host without a configuration with `disk` as its only disk (`/dev/vda`) and a
/// forwarded HTTPS port; returns it with a client of config mode holding the session.
fn claimed_host(disk: &std::path::Path) -> anyhow::Result<(Guest, HttpsClient, String)> {
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.net=eth0:dhcp")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .disk(DiskSpec::file(DiskInterface::Virtio, disk))
        .boot()?;
    guest.wait_for_line("  setup token: ", LINE_TIMEOUT)?;
    let token = console_token(&guest)?;
    let https = guest.host_port(443).context("no forward for 443")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, https)), "10.0.2.15")?;
    client.wait_until_serving(LINE_TIMEOUT)?;
    let claimed = client.post_json("/api/v1/setup/claim", &[], &json!({ "token": token }))?;
    ensure!(claimed.status == 200, "{}", claimed.text());
    Ok((guest, client, session_cookie(&claimed)?))
}

#[test]
fn the_whole_setup_through_the_api_puts_the_host_in_normal_mode_and_the_next_boot_uses_it()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)?.set_len(64 << 20)?;
    let (mut guest, client, cookie) = claimed_host(&disk)?;
    let cookie = [("cookie", cookie.as_str())];
    let fingerprint = console_fingerprint(&guest)?;

    let volumes = client.get("/api/v1/setup/volumes", &cookie)?;
    ensure!(volumes.status == 200, "{}", volumes.text());
    let volumes = volumes.json()?;
    ensure!(
        volumes["volumes"][0]["device"] == "/dev/vda"
            && volumes["volumes"][0]["holds"] == "nothing",
        "{volumes}"
    );
    let config = "version = 1\n[host]\nhostname = \"wizardhost\"\n\
                  [[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n";
    let validated = client.post_json(
        "/api/v1/setup/validate",
        &cookie,
        &json!({ "config_text": config }),
    )?;
    ensure!(
        validated.status == 200 && validated.json()?["errors"] == json!([]),
        "{}",
        validated.text()
    );
    let saved = client.post_json(
        "/api/v1/setup/save",
        &cookie,
        &json!({
            "config_text": config,
            "volume": {"kind": "format", "device": "/dev/vda", "fs": "ext4", "confirm": "/dev/vda"},
            "admin": "alice",
            "password": "the first admin's password",
        }),
    )?;
    ensure!(saved.status == 200, "{}", saved.text());
    let saved = saved.json()?;
    ensure!(
        saved["device"] == "/dev/vda"
            && saved["formatted"] == true
            && saved["generation"] == 1
            && saved["mode"] == "normal",
        "{saved}"
    );

    // Without a reboot: the host runs with the saved configuration, the token works no
    // more, the web server restarted out of config mode, and the admin gets in.
    wait_until_set_up(&mut guest, "wizardhost")?;
    client.wait_until_serving(LINE_TIMEOUT)?;
    let reclaimed = client.post_json("/api/v1/setup/claim", &[], &json!({ "token": "x" }))?;
    ensure!(
        reclaimed.status == 404,
        "{} {}",
        reclaimed.status,
        reclaimed.text()
    );
    // Normal mode's pages: without a session, the dashboard leads to the login.
    let page = client.get("/", &[])?;
    ensure!(
        page.status == 303 && page.header("location") == Some("/login?next=%2F"),
        "{} {:?} {}",
        page.status,
        page.header("location"),
        page.text()
    );
    let login = client.get("/login?next=%2F", &[])?;
    ensure!(
        login.status == 200
            && login.text().contains("Sign in")
            && login.text().contains("wizardhost"),
        "{} {}",
        login.status,
        login.text()
    );
    // Normal mode's API knows the administrator the save made.
    let (cookie, csrf) = api_login(&client, "alice", "the first admin's password")?;
    let host = client.get("/api/v1/host", &[("cookie", &cookie)])?;
    ensure!(
        host.status == 200 && host.json()?["hostname"] == "wizardhost",
        "{} {}",
        host.status,
        host.text()
    );
    // From another machine, as `mfv --remote` does: an API token, the console's fingerprint
    // pinned, and a VM defined on the host's libvirt, which the next boot must bring back.
    let token = client.post_json(
        "/api/v1/tokens",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        &json!({ "name": "laptop", "role": "admin", "expires_in_days": 7 }),
    )?;
    ensure!(token.status == 201, "{} {}", token.status, token.text());
    let token = token.json()?["secret"]
        .as_str()
        .context("the token's answer has no secret")?
        .to_owned();
    let laptop = Laptop {
        token,
        fingerprint: fingerprint.parse()?,
        known_hosts: dir.path().join("known_hosts"),
    };
    let mut remote = laptop.connect(guest.host_port(443).context("no forward for 443")?)?;
    // The VM keeper restarted with the configuration: its VMs are restored (none yet).
    vms_once_restored(&mut remote)?;
    let created = remote.create_vm(
        &json!({ "name": "first-vm", "vcpus": 1, "memory_mib": 64 }),
        &mut |_| {},
    )?;
    ensure!(created.name == "first-vm", "{created:?}");
    let listed = remote.vms()?;
    ensure!(
        listed
            .iter()
            .any(|vm| vm.name == "first-vm" && vm.state == "shut_off"),
        "{listed:?}"
    );
    drop(remote);
    // A refused login is audited; the next boot finds it on the volume.
    let refused = client.post_json(
        "/api/v1/session",
        &[],
        &json!({ "username": "first-boot-stranger", "password": "not a password at all" }),
    )?;
    ensure!(
        refused.status == 401,
        "{} {}",
        refused.status,
        refused.text()
    );
    guest.wait_for_line(PRESS_ENTER, LINE_TIMEOUT)?;
    guest.write_serial("\n")?;
    guest.write_serial("alice\n")?;
    guest.write_serial("the first admin's password\n")?;
    guest.wait_for_line("shell for alice", LINE_TIMEOUT)?;
    guest.write_serial("exit\n")?;

    guest.qmp("system_powerdown", serde_json::Value::Null)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    drop(guest);

    // The next boot finds the volume, uses its configuration, and lets the admin in.
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .disk(DiskSpec::file(DiskInterface::Virtio, &disk))
        .boot()?;
    guest.wait_for_line("config: using mfv.toml from /dev/vda", LINE_TIMEOUT)?;
    guest.wait_for_line("hostname: wizardhost", LINE_TIMEOUT)?;
    // The certificate made for the setup is the one the host keeps.
    guest.wait_for_line("certificate SHA-256 fingerprint", LINE_TIMEOUT)?;
    guest.wait_for_line(PRESS_ENTER, LINE_TIMEOUT)?;
    ensure!(
        console_fingerprint(&guest)? == fingerprint,
        "the fingerprint changed across the reboot"
    );
    guest.write_serial("\n")?;
    guest.write_serial("alice\n")?;
    guest.write_serial("the first admin's password\n")?;
    guest.wait_for_line("shell for alice", LINE_TIMEOUT)?;
    // The auth database the first boot used was written back: its audit log came along.
    guest.write_serial("mfv audit --limit 200\n")?;
    guest.wait_for_line("user=first-boot-stranger", LINE_TIMEOUT)?;
    let https = guest.host_port(443).context("no forward for 443")?;
    let client = HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, https)), "10.0.2.15")?;
    client.wait_until_serving(LINE_TIMEOUT)?;
    api_login(&client, "alice", "the first admin's password")?;
    // The VM defined through the API came back from the volume, and the token still works.
    // libvirtd starts after the web server: until the VM keeper has restored the VMs, the
    // API says so rather than list none.
    let listed = vms_once_restored(&mut laptop.connect(https)?)?;
    ensure!(listed.iter().any(|vm| vm.name == "first-vm"), "{listed:?}");
    Ok(())
}

/// The host's VMs, once the API no longer answers that it is restoring them.
fn vms_once_restored(
    client: &mut mfv_client::Client,
) -> anyhow::Result<Vec<mfv_client::VmSummary>> {
    let deadline = std::time::Instant::now() + LINE_TIMEOUT;
    loop {
        match client.vms() {
            Ok(vms) => return Ok(vms),
            Err(error)
                if error
                    .to_string()
                    .contains("the host is still restoring its VMs")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Another machine's view of the host: its API through mfv-client.
struct Laptop {
    token: String,
    fingerprint: mfv_client::Fingerprint,
    known_hosts: std::path::PathBuf,
}

impl Laptop {
    /// Connects to the host's HTTPS port forwarded to `port` on this machine.
    fn connect(&self, port: u16) -> anyhow::Result<mfv_client::Client> {
        Ok(mfv_client::Client::connect(&mfv_client::ConnectOptions {
            url: format!("https://127.0.0.1:{port}"),
            token: Some(self.token.clone()),
            fingerprint: Some(self.fingerprint),
            known_hosts: Some(self.known_hosts.clone()),
        })?)
    }
}

/// Logs `username` in through the API: the session cookie (`name=value`) and the session's
/// CSRF token.
fn api_login(
    client: &HttpsClient,
    username: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    let login = client.post_json(
        "/api/v1/session",
        &[],
        &json!({ "username": username, "password": password }),
    )?;
    ensure!(
        login.status == 200 && login.json()?["role"] == "admin",
        "{} {}",
        login.status,
        login.text()
    );
    let csrf = login.json()?["csrf_token"]
        .as_str()
        .context("the login's answer has no csrf_token")?
        .to_owned();
    Ok((session_cookie(&login)?, csrf))
}

/// How long a page may take to answer a step under TCG.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_person_sets_the_host_up_in_a_browser_adds_storage_and_sees_a_new_vms_screen()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)?.set_len(64 << 20)?;
    let data = dir.path().join("data.img");
    std::fs::File::create(&data)?.set_len(2 << 30)?;
    // The operator gives the host its network on the console, then goes to the browser.
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.setup_timeout=600")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .disk(DiskSpec::file(DiskInterface::Virtio, &disk))
        .disk(DiskSpec::file(DiskInterface::Virtio, &data))
        .boot()?;
    guest.wait_for_line("config: no configuration found", LINE_TIMEOUT)?;
    choose_dhcp_on_the_first_card(&mut guest, LINE_TIMEOUT)?;
    guest.wait_for_line("  setup token: ", LINE_TIMEOUT)?;
    let token = console_token(&guest)?;
    let https = guest.host_port(443).context("no forward for 443")?;
    HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, https)), "10.0.2.15")?
        .wait_until_serving(LINE_TIMEOUT)?;
    let browser = Browser::start()?;
    let screens = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wizard");
    let site = format!("https://127.0.0.1:{https}");

    let through_the_wizard = || -> anyhow::Result<String> {
        browser.open(&format!("{site}/"))?;
        browser.wait_for_text("h2", "Set up this host", PAGE_TIMEOUT)?;
        browser.type_into("#token", &token, PAGE_TIMEOUT)?;
        browser.click("form button", PAGE_TIMEOUT)?;

        browser.type_into("#admin", "alice", PAGE_TIMEOUT)?;
        browser.type_into("#password", "the first admin's password", PAGE_TIMEOUT)?;
        browser.type_into("#password2", "the first admin's password", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;

        // The blank disks are offered, the first one erased once its name is typed.
        browser.click("#volumes-body tr:first-child td:nth-child(2)", PAGE_TIMEOUT)?;
        browser.wait_for_text("#volume-chosen", "/dev/vda", PAGE_TIMEOUT)?;
        browser.type_into("#confirm", "/dev/vdb", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;
        browser.wait_for_text("#confirm-error", "/dev/vda", PAGE_TIMEOUT)?;
        browser.type_into("#confirm", "/dev/vda", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;

        browser.type_into("#hostname", "browserhost", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;

        browser.click("#network-keep", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;

        browser.click("#backend-sqlite", PAGE_TIMEOUT)?;
        browser.click("#next", PAGE_TIMEOUT)?;

        browser.wait_for_text("#review-valid", "valid", PAGE_TIMEOUT)?;
        let config = browser.text("#review-config", PAGE_TIMEOUT)?;
        // Keeping the console's network writes it into the configuration.
        ensure!(
            config.contains("hostname = \"browserhost\"")
                && config.contains("[[network.interfaces]]")
                && config.contains("name = \"eth0\""),
            "the review shows:\n{config}"
        );
        browser.screenshot(&screens.join("review.png"))?;
        browser.click("#save", PAGE_TIMEOUT)?;
        browser.wait_for_text("#save-result", "Saved", LINE_TIMEOUT)?;
        let next = browser.text("#save-next", PAGE_TIMEOUT)?;
        browser.screenshot(&screens.join("saved.png"))?;
        Ok(next)
    };
    let next = through_the_wizard()
        .map_err(|failure| browser.failed_at(failure, screens.join("failure.png")))?;
    ensure!(
        next.contains("runs with this configuration") && next.contains("alice"),
        "after the save the page says: {next}"
    );

    wait_until_set_up(&mut guest, "browserhost")?;
    // The same tab, reloaded once the server restarted: the host says where it is managed.
    HttpsClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, https)), "10.0.2.15")?
        .wait_until_serving(LINE_TIMEOUT)?;
    // The same tab, reloaded once the server restarted: the host's login, and with the
    // admin the wizard made, its dashboard.
    let dashboard = || -> anyhow::Result<String> {
        browser.open(&format!("{site}/"))?;
        browser.wait_for_text("h1", "Sign in", PAGE_TIMEOUT)?;
        browser.type_into("#username", "alice", PAGE_TIMEOUT)?;
        browser.type_into("#password", "the first admin's password", PAGE_TIMEOUT)?;
        browser.click("#sign-in", PAGE_TIMEOUT)?;
        browser.wait_for_text("#view", "running", PAGE_TIMEOUT)
    };
    let shown =
        dashboard().map_err(|failure| browser.failed_at(failure, screens.join("failure.png")))?;
    ensure!(
        shown.contains("browserhost"),
        "the dashboard does not name the host: {shown}"
    );
    browser.screenshot(&screens.join("set-up.png"))?;

    // The new host has no storage: an LVM pool on the data disk, a VM with its disk there,
    // started by the form, and the VM's screen in the browser (SeaBIOS draws it).
    let first_vm = || -> anyhow::Result<()> {
        browser.open(&format!("{site}/storage"))?;
        browser.wait_for_text("#no-storage", "No storage yet", PAGE_TIMEOUT)?;
        browser.click("#empty-add-storage", PAGE_TIMEOUT)?;
        choose(&browser, "#pool-kind", "logical")?;
        choose(&browser, "#pool-device", "/dev/vdb")?;
        browser.type_into("#pool-name", "vmdata", PAGE_TIMEOUT)?;
        browser.screenshot(&screens.join("add-storage.png"))?;
        browser.click("#pool-form-submit", PAGE_TIMEOUT)?;
        browser.wait_for_text("[data-pool=vmdata]", "running", LINE_TIMEOUT)?;
        browser.screenshot(&screens.join("storage.png"))?;

        browser.open(&format!("{site}/new-vm"))?;
        browser.type_into("#vm-name", "first", PAGE_TIMEOUT)?;
        browser.type_into("#vm-memory", "64", PAGE_TIMEOUT)?;
        browser.type_into("#disk-0-size", "1", PAGE_TIMEOUT)?;
        browser.click("#vm-create", PAGE_TIMEOUT)?;
        browser.wait_for_text("#vm-state", "Running", LINE_TIMEOUT)?;
        browser.screenshot(&screens.join("vm.png"))?;

        browser.open(&format!("{site}/vms/first/console"))?;
        wait_until(&browser, SCREEN_DRAWN, "the VM's screen on the canvas")?;
        browser.screenshot(&screens.join("console.png"))?;
        let errors = browser.console_errors()?;
        ensure!(errors.is_empty(), "the browser's console: {errors:?}");
        Ok(())
    };
    first_vm().map_err(|failure| browser.failed_at(failure, screens.join("failure.png")))?;
    Ok(())
}

/// True once the console page's canvas shows more than a black screen: over 200 of every
/// third pixel not black (SeaBIOS's few lines of text light about 4000).
const SCREEN_DRAWN: &str = "const canvas = document.querySelector('#console-screen canvas'); \
    if (!canvas || canvas.width < 100) { return false; } \
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data; \
    let lit = 0; \
    for (let at = 0; at < data.length; at += 4 * 3) { \
      if (data[at] || data[at + 1] || data[at + 2]) { lit += 1; } \
    } \
    return lit > 200;";

/// Picks the option of the `<select>` at `css` whose value contains `needle`, once it is
/// there, and tells the page.
fn choose(browser: &Browser, css: &str, needle: &str) -> anyhow::Result<()> {
    let script = format!(
        "const select = document.querySelector({css:?}); \
         const option = select && [...select.options].find((o) => !o.disabled && o.value.includes({needle:?})); \
         if (!option) return false; select.value = option.value; \
         select.dispatchEvent(new Event('change')); return true;"
    );
    wait_until(browser, &script, &format!("an option {needle} in {css}"))
}

/// Waits until `script` answers true in the page.
fn wait_until(browser: &Browser, script: &str, what: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + LINE_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if browser.execute(script)? == json!(true) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("no {what} within {} s", LINE_TIMEOUT.as_secs())
}
