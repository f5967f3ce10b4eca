//! Appliance tests of the web server: a host without a configuration serves config mode over
//! HTTPS on the forwarded port, with the certificate whose fingerprint the console shows, and
//! lets in only the client that presents the console's setup token, once. They boot the real
//! image under QEMU TCG, read the console's status screen on the serial line and talk to
//! the forwarded ports as a browser would.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_tests::https::HttpsClient;
use mfv_tests::{ApplianceImage, Guest, GuestSpec, NicModel};
use serde_json::json;

/// Boot, DHCP and the services, under TCG on a loaded machine.
const LINE_TIMEOUT: Duration = Duration::from_secs(180);

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

#[test]
fn config_mode_lets_in_only_the_console_token_over_the_certificate_it_shows() -> anyhow::Result<()>
{
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.net=eth0:dhcp")
        .nic(NicModel::VirtioNet)
        .forward_port(443)
        .forward_port(80)
        .boot()?;
    guest.wait_for_line("config: no configuration found", LINE_TIMEOUT)?;
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
    let cookie = claimed
        .header("set-cookie")
        .and_then(|cookie| cookie.split(';').next())
        .context("no session cookie")?
        .to_owned();
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
