//! `mfv --remote`: the real `mfv` binary against the real API server on loopback (in-process,
//! with users and API tokens in a real SQLite auth database, VMs on a private libvirtd with
//! real QEMU), as mfv-web's own API tests run it. What the operator sees is checked: the
//! first use's notice and the known hosts file, a changed certificate refused, the host's
//! refusals printed as `mfv: HOST: message`, and the VM, host and user commands' output. The
//! host commands reach the host daemon's own handler in-process, whose PID 1 double records
//! a reboot instead of doing it.

#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "../../mfv-web/tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::host_daemon::Daemon;
use common::{Server, guest};
use mfv_auth::Role;
use serde_json::json;

/// What a run of `mfv` printed and how it ended.
#[derive(Debug)]
struct Run {
    stdout: String,
    stderr: String,
    success: bool,
}

/// One operator's laptop: a known hosts file, and the server's URL.
struct Laptop {
    known_hosts: PathBuf,
    url: String,
    dir: tempfile::TempDir,
}

impl Laptop {
    fn of(server: &Server) -> Laptop {
        let dir = tempfile::tempdir().unwrap();
        Laptop {
            known_hosts: dir.path().join("config/mfv/known_hosts"),
            url: format!("https://{}", server.client.address()),
            dir,
        }
    }

    /// `mfv --remote URL --known-hosts FILE ARGS` with `token` in MFV_TOKEN, `stdin` fed.
    fn mfv(&self, token: &str, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfv"))
            .args(["--remote", &self.url, "--known-hosts"])
            .arg(&self.known_hosts)
            .args(args)
            .env("MFV_TOKEN", token.strip_prefix("Bearer ").unwrap_or(token))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let run = Run {
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            success: output.status.success(),
        };
        // 0 success, 1 failed, 2 wrong usage (clap's): never a crash.
        assert!(
            matches!(output.status.code(), Some(0..=2)),
            "{args:?}: {run:?}"
        );
        run
    }

    /// Like [`Laptop::mfv`], and it must succeed.
    fn ok(&self, token: &str, args: &[&str]) -> Run {
        let run = self.mfv(token, args, "");
        assert!(run.success, "{args:?}: {run:?}");
        run
    }

    /// Like [`Laptop::mfv`], and it must fail; its standard error.
    fn refused(&self, token: &str, args: &[&str]) -> String {
        let run = self.mfv(token, args, "");
        assert!(!run.success, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        run.stderr
    }
}

/// The server's host as `mfv` names it (`127.0.0.1:PORT`).
fn host(server: &Server) -> String {
    server.client.address().to_string()
}

/// The SHA-256 fingerprint of the server's certificate, as its HTTPS client saw it.
fn fingerprint(server: &Server) -> String {
    server.client.get("/api/v1/openapi.json", &[]).unwrap();
    server.client.served_fingerprint().unwrap()
}

/// The message the server answers `method path` with for `token`.
fn refusal(server: &Server, token: &str, method: &str, path: &str) -> (u16, String) {
    let answer = server.call(token, method, path, None);
    let message = answer.json().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    (answer.status, message)
}

fn known_hosts_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_first_use_pins_the_certificate_and_a_changed_one_is_refused() {
    let first = Server::start();
    let laptop = Laptop::of(&first);
    let admin = first.token(Role::Admin).to_owned();
    let first_print = fingerprint(&first);

    let run = laptop.ok(&admin, &["user", "list"]);
    assert_eq!(
        run.stderr,
        format!(
            "mfv: {}: first connection: trusting its certificate, SHA-256 fingerprint \
             {first_print}, recorded in {}; check it against the fingerprint on the host's \
             console\n",
            host(&first),
            laptop.known_hosts.display()
        )
    );
    assert_eq!(
        known_hosts_text(&laptop.known_hosts),
        format!("{} {first_print}\n", host(&first))
    );

    // The second time the file's fingerprint is the one expected, and nothing is said.
    let run = laptop.ok(&admin, &["user", "list"]);
    assert_eq!(run.stderr, "");

    // Another server under the same name: the file's line now says the first one's
    // certificate is this host's.
    let second = Server::start();
    let second_print = fingerprint(&second);
    let second_admin = second.token(Role::Admin).to_owned();
    let mut moved = Laptop::of(&second);
    moved.known_hosts = laptop.known_hosts.clone();
    let text = known_hosts_text(&laptop.known_hosts);
    std::fs::write(
        &laptop.known_hosts,
        format!(
            "# pinned by hand\n{}{} {first_print}\n",
            text,
            host(&second)
        ),
    )
    .unwrap();
    let error = moved.refused(&second_admin, &["vm", "list"]);
    assert_eq!(
        error,
        format!(
            "mfv: {host}: the host presented a certificate with SHA-256 fingerprint \
             {second_print}, but {file} line 3 pins {first_print}: refusing to connect. Someone \
             may be in between; if the host's certificate was changed on purpose, check the new \
             fingerprint on its console, then delete line 3 of {file} (or pass --fingerprint \
             with the new one) and connect again\n",
            host = host(&second),
            file = laptop.known_hosts.display()
        )
    );

    // A wrong --fingerprint is refused as well, naming the flag.
    let error = moved.refused(
        &second_admin,
        &["--fingerprint", &first_print, "user", "list"],
    );
    assert!(
        error.contains(&format!("but --fingerprint pins {first_print}")),
        "{error}"
    );

    // The operator checked the new fingerprint and gives it: it replaces the line.
    let run = moved.ok(
        &second_admin,
        &["--fingerprint", &second_print, "user", "list"],
    );
    assert_eq!(
        run.stderr,
        format!(
            "mfv: {}: the certificate pinned by --fingerprint replaces {first_print} in {}\n",
            host(&second),
            laptop.known_hosts.display()
        )
    );
    assert_eq!(
        known_hosts_text(&laptop.known_hosts),
        format!(
            "# pinned by hand\n{} {first_print}\n{} {second_print}\n",
            host(&first),
            host(&second)
        )
    );
    assert_eq!(moved.ok(&second_admin, &["user", "list"]).stderr, "");

    // A fingerprint that is not one is refused by the command line, naming it.
    let run = moved.mfv(
        &second_admin,
        &["--fingerprint", "AB:CD", "user", "list"],
        "",
    );
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("\"AB:CD\" is not a SHA-256 fingerprint"),
        "{run:?}"
    );
}

#[test]
fn the_hosts_refusals_are_printed_with_its_name() {
    let server = Server::start();
    let laptop = Laptop::of(&server);
    let host = host(&server);

    // A wrong token: the host's 401 message.
    let (status, message) = refusal(&server, "Bearer mfv_wrong", "GET", "/api/v1/users");
    assert_eq!(status, 401);
    let error = laptop.refused("mfv_wrong", &["user", "list"]);
    assert_eq!(
        error.lines().last().unwrap(),
        format!("mfv: {host}: {message}")
    );

    // No token at all is refused before any request.
    let error = laptop.refused("", &["vm", "list"]);
    assert!(
        error.ends_with(&format!(
            "mfv: {host}: no API token: pass --token or set MFV_TOKEN (an administrator makes \
             one with `mfv token create USER NAME` on the host, or POST /api/v1/tokens)\n"
        )),
        "{error}"
    );

    // The dev server has no host daemon, and says so.
    let admin = server.token(Role::Admin).to_owned();
    let error = laptop.refused(&admin, &["host", "status"]);
    assert!(
        error.starts_with(&format!(
            "mfv: {host}: this server runs without a host daemon (mfv-web --dev)"
        )),
        "{error}"
    );
    // A reboot must name the host; without --confirm nothing is sent.
    let error = laptop.refused(&admin, &["host", "reboot"]);
    assert_eq!(
        error,
        "mfv: mfv host reboot with --remote needs --confirm HOSTNAME, the host's name as \
         `mfv host status` shows it\n"
    );
    let error = laptop.refused(&admin, &["host", "reboot", "--confirm", "elsewhere"]);
    assert!(
        error.starts_with(&format!("mfv: {host}: must repeat this host's name")),
        "{error}"
    );
    assert!(error.trim_end().ends_with("(field: confirm)"), "{error}");

    // A server without libvirt says what it needs.
    let error = laptop.refused(&admin, &["vm", "list"]);
    assert!(
        error.starts_with(&format!("mfv: {host}: this server manages no VMs")),
        "{error}"
    );

    // Commands about this machine are refused, naming the API's routes instead.
    let error = laptop.refused(&admin, &["net", "show"]);
    assert_eq!(
        error,
        format!(
            "mfv: mfv net cannot run with --remote; use the web API \
             (https://{host}/api/v1/network, described at /api/v1/openapi.json) or run it on \
             the host\n"
        )
    );
}

#[test]
fn users_are_managed_by_an_admin_and_refused_to_a_viewer() {
    let server = Server::start();
    let laptop = Laptop::of(&server);
    let host = host(&server);
    let admin = server.token(Role::Admin).to_owned();
    let viewer = server.token(Role::Viewer).to_owned();
    laptop.ok(&admin, &["user", "list"]);

    let run = laptop.ok(&admin, &["user", "list"]);
    assert_eq!(
        run.stdout,
        "USER  ROLE      STATE     DISPLAY NAME\n\
         ada   admin     enabled\n\
         otto  operator  enabled\n\
         vera  viewer    enabled\n"
    );
    let run = laptop.mfv(
        &admin,
        &[
            "user",
            "add",
            "grace",
            "--role",
            "operator",
            "--display-name",
            "Grace H.",
            "--password-stdin",
        ],
        "a new password long enough\n",
    );
    assert!(run.success, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("added user grace with role operator on {host}\n")
    );
    // The new user signs in with the password given on stdin.
    server
        .sign_in("grace", "a new password long enough")
        .unwrap();

    assert_eq!(
        laptop
            .ok(&admin, &["user", "role", "grace", "viewer"])
            .stderr,
        "grace is now viewer\n"
    );
    laptop.ok(&admin, &["user", "disable", "grace"]);
    let json: serde_json::Value =
        serde_json::from_str(&laptop.ok(&admin, &["user", "list", "--json"]).stdout).unwrap();
    assert!(
        json.as_array().unwrap().contains(&json!({
            "username": "grace", "display_name": "Grace H.", "role": "viewer", "disabled": true
        })),
        "{json}"
    );

    // A taken name: the host's 409, with its field.
    let error = laptop.mfv(
        &admin,
        &["user", "add", "grace", "--password-stdin"],
        "a new password long enough\n",
    );
    assert!(!error.success);
    assert!(
        error.stderr.starts_with(&format!("mfv: {host}: ")),
        "{error:?}"
    );
    assert!(error.stderr.contains("grace"), "{error:?}");

    // A viewer is refused with the host's 403 message.
    let (status, message) = refusal(&server, &viewer, "GET", "/api/v1/users");
    assert_eq!(status, 403);
    let error = laptop.refused(&viewer, &["user", "list"]);
    assert_eq!(error, format!("mfv: {host}: {message}\n"));
    let error = laptop.mfv(
        &viewer,
        &["user", "add", "mallory", "--password-stdin"],
        "a new password long enough\n",
    );
    assert_eq!(error.stderr, format!("mfv: {host}: {message}\n"));

    assert_eq!(
        laptop.ok(&admin, &["user", "del", "grace"]).stderr,
        format!("deleted user grace on {host}\n")
    );
    let error = laptop.refused(&admin, &["user", "del", "grace"]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");
    assert!(
        !laptop
            .ok(&admin, &["user", "list"])
            .stdout
            .contains("grace")
    );
}

#[test]
fn vms_are_created_listed_started_stopped_and_deleted() {
    let daemon = &guest::shared().daemon;
    let server = Server::with_libvirt(daemon.uri());
    let laptop = Laptop::of(&server);
    let host = host(&server);
    let admin = server.token(Role::Admin).to_owned();
    let operator = server.token(Role::Operator).to_owned();
    let viewer = server.token(Role::Viewer).to_owned();
    let name = mfv_tests::libvirtd::unique("remote");

    let spec_file = laptop.dir.path().join("spec.json");
    std::fs::write(&spec_file, guest::guest_spec(&name, json!({})).to_string()).unwrap();
    let run = laptop.ok(
        &admin,
        &["vm", "create", "--spec", spec_file.to_str().unwrap()],
    );
    assert_eq!(run.stdout, format!("created VM {name}\n"));
    assert!(run.stderr.contains("(vm_create)"), "{run:?}");

    let list = laptop.ok(&viewer, &["vm", "list"]).stdout;
    assert!(list.starts_with("NAME "), "{list}");
    let line = list.lines().find(|line| line.starts_with(&name)).unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [name.as_str(), "shut_off", "no"]
    );

    // A viewer may look but not start.
    let (status, message) = refusal(
        &server,
        &viewer,
        "POST",
        &format!("/api/v1/vms/{name}/start"),
    );
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&viewer, &["vm", "start", &name]),
        format!("mfv: {host}: {message}\n")
    );

    assert_eq!(
        laptop.ok(&operator, &["vm", "start", &name]).stdout,
        format!("started VM {name}\n")
    );
    let shown: serde_json::Value =
        serde_json::from_str(&laptop.ok(&viewer, &["vm", "show", &name, "--json"]).stdout).unwrap();
    assert_eq!(shown["state"], "running");
    assert_eq!(shown["vcpus"], 1);
    let text = laptop.ok(&viewer, &["vm", "show", &name]).stdout;
    assert!(text.contains("state:      running\n"), "{text}");
    assert!(text.contains("memory:     128 MiB\n"), "{text}");

    assert_eq!(
        laptop.ok(&operator, &["vm", "kill", &name]).stdout,
        format!("VM {name} forced off\n")
    );
    laptop.ok(&operator, &["vm", "start", &name]);
    let run = laptop.ok(&operator, &["vm", "shutdown", &name, "--timeout", "3"]);
    assert!(
        run.stdout == format!("VM {name} shut down\n")
            || run.stdout == format!("VM {name} forced off: no shutdown within 3 s\n"),
        "{run:?}"
    );
    assert!(run.stderr.contains("(vm_shutdown)"), "{run:?}");
    assert!(
        laptop
            .ok(&viewer, &["vm", "list"])
            .stdout
            .lines()
            .any(|line| line.starts_with(&name) && line.contains("shut_off"))
    );

    // A shutdown deadline the host does not take: its 400 with the field.
    let error = laptop.refused(&operator, &["vm", "shutdown", &name, "--timeout", "99999"]);
    assert!(
        error.trim_end().ends_with("(field: deadline_secs)"),
        "{error}"
    );

    assert_eq!(
        laptop.ok(&admin, &["vm", "delete", &name]).stdout,
        format!("deleted VM {name} (disks kept)\n")
    );
    let error = laptop.refused(&viewer, &["vm", "show", &name]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");
    assert!(error.trim_end().ends_with("(field: name)"), "{error}");
    assert!(!laptop.ok(&viewer, &["vm", "list"]).stdout.contains(&name));

    // The library, as another program would use it: the task's progress as it goes.
    let mut client = mfv_client::Client::connect(&mfv_client::ConnectOptions {
        url: laptop.url.clone(),
        token: Some(admin.trim_start_matches("Bearer ").to_owned()),
        fingerprint: None,
        known_hosts: Some(laptop.known_hosts.clone()),
    })
    .unwrap();
    assert_eq!(client.trust(), &mfv_client::Trust::Known);
    let spec = guest::guest_spec(&name, json!({}));
    let mut seen = Vec::new();
    let created = client
        .create_vm(&spec, &mut |task| seen.push(task.state.clone()))
        .unwrap();
    assert_eq!(created.name, name);
    assert_eq!(seen.first().map(String::as_str), Some("running"));
    assert_eq!(seen.last().map(String::as_str), Some("succeeded"));
    let failed = client.create_vm(&spec, &mut |_| {}).unwrap_err();
    assert_eq!(failed.api_error().unwrap().status, 400, "{failed}");
    client.delete_vm(&name, false).unwrap();
}

#[test]
fn the_host_daemon_answers_status_services_logs_restarts_and_a_confirmed_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), true);
    let server = Server::with_host(Arc::new(daemon.clone()));
    let laptop = Laptop::of(&server);
    let host = host(&server);
    let admin = server.token(Role::Admin).to_owned();
    let operator = server.token(Role::Operator).to_owned();
    let viewer = server.token(Role::Viewer).to_owned();

    let status: serde_json::Value =
        serde_json::from_str(&laptop.ok(&viewer, &["host", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["uptime_ms"], 12340);
    assert_eq!(status["virtualization"], "kvm");
    assert_eq!(status["boot"]["config"]["device"], "/dev/vdb");
    let hostname = status["hostname"].as_str().unwrap().to_owned();
    assert_eq!(
        laptop.ok(&viewer, &["host", "status"]).stdout,
        format!(
            "hostname        {hostname}\n\
             uptime          0d 00:00:12\n\
             virtualization  KVM\n\
             configuration   from /dev/vdb\n\
             \n\
             boot phases\n  \
               config                 1.5 ms  ok\n\
             \n\
             services\n  \
               libvirtd         running (pid 300)\n  \
               mfv-web          running (pid 400)\n"
        )
    );

    assert_eq!(
        laptop.ok(&viewer, &["host", "services"]).stdout,
        "libvirtd         running (pid 300)\n\
         mfv-web          running (pid 400)\n"
    );
    let services: serde_json::Value =
        serde_json::from_str(&laptop.ok(&viewer, &["host", "services", "--json"]).stdout).unwrap();
    assert_eq!(services[1]["name"], "mfv-web");
    assert_eq!(services[1]["pid"], 400);

    // Logs: the boot's, or a service's last lines; an unknown service is named.
    assert_eq!(
        laptop.ok(&admin, &["host", "logs"]).stdout,
        "[    0.000001] phase mounts: ok\n\
         [    0.000002] phase config: /dev/vdb\n"
    );
    assert_eq!(
        laptop
            .ok(&admin, &["host", "logs", "libvirtd", "--lines", "2"])
            .stdout,
        "[    0.000013] libvirtd line 3\n\
         [    0.000014] libvirtd line 4\n"
    );
    let error = laptop.refused(&admin, &["host", "logs", "nosuch"]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");
    assert!(error.contains("nosuch"), "{error}");
    assert!(error.trim_end().ends_with("(field: service)"), "{error}");
    let (status, message) = refusal(&server, &viewer, "GET", "/api/v1/host/logs");
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&viewer, &["host", "logs"]),
        format!("mfv: {host}: {message}\n")
    );

    assert_eq!(
        laptop.ok(&admin, &["host", "restart", "libvirtd"]).stdout,
        "libvirtd restarted: running (pid 301), 1 restarts\n"
    );

    // A reboot: refused to an operator and for another host's name, done for an admin
    // naming this one (PID 1's double records it).
    let (status, message) = refusal(&server, &operator, "POST", "/api/v1/host/reboot");
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&operator, &["host", "reboot", "--confirm", &hostname]),
        format!("mfv: {host}: {message}\n")
    );
    let error = laptop.refused(&admin, &["host", "reboot", "--confirm", "elsewhere"]);
    assert!(error.trim_end().ends_with("(field: confirm)"), "{error}");
    assert!(daemon.shutdowns().is_empty());
    assert_eq!(
        laptop
            .ok(&admin, &["host", "reboot", "--confirm", &hostname])
            .stdout,
        format!("{hostname} is rebooting\n")
    );
    assert_eq!(daemon.shutdowns(), ["reboot"]);
    assert_eq!(
        laptop
            .ok(&admin, &["host", "poweroff", "--confirm", &hostname])
            .stdout,
        format!("{hostname} is powering off\n")
    );
    assert_eq!(daemon.shutdowns(), ["reboot", "poweroff"]);
}

/// The text `mfv audit` prints for the API's entries (JSON), as the host's own `mfv audit`
/// writes them.
fn audit_lines(entries: &serde_json::Value) -> String {
    let mut text = String::new();
    for entry in entries.as_array().unwrap() {
        let at = mfv_auth::Timestamp(entry["at"].as_i64().unwrap());
        text.push_str(&format!(
            "{at} {} {}",
            entry["event"].as_str().unwrap(),
            entry["outcome"].as_str().unwrap()
        ));
        for key in ["username", "actor", "source"] {
            if let Some(value) = entry[key].as_str() {
                let shown = if key == "username" { "user" } else { key };
                text.push_str(&format!(" {shown}={value}"));
            }
        }
        let detail = entry["detail"].as_str().unwrap();
        if !detail.is_empty() {
            text.push_str(&format!(": {detail}"));
        }
        text.push('\n');
    }
    text
}

#[test]
fn tokens_are_made_listed_and_revoked_and_the_audit_log_is_read() {
    let server = Server::start();
    let laptop = Laptop::of(&server);
    let host = host(&server);
    let admin = server.token(Role::Admin).to_owned();
    let viewer = server.token(Role::Viewer).to_owned();
    laptop.ok(&admin, &["user", "list"]);

    // Without --role a token gets its owner's role; the secret is on stdout, once.
    let run = laptop.ok(&admin, &["token", "create", "otto", "ci"]);
    let secret = run.stdout.trim_end().to_owned();
    assert!(
        secret.starts_with("mfv_") && !secret.contains(' '),
        "{run:?}"
    );
    let (prefix, expires) = run
        .stderr
        .strip_suffix(": the secret is shown only now\n")
        .unwrap()
        .split_once(", expires ")
        .unwrap();
    assert_eq!(
        prefix, "API token 4 \"ci\" of otto with role operator",
        "{run:?}"
    );
    assert!(expires.ends_with('Z'), "{run:?}");

    let run = laptop.ok(
        &admin,
        &[
            "token", "create", "vera", "backup", "--role", "viewer", "--days", "7", "--json",
        ],
    );
    let created: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("mfv_"));
    assert_eq!(created["token"]["owner"], "vera");
    assert_eq!(created["token"]["role"], "viewer");
    assert_eq!(
        created["token"]["expires_at"].as_i64().unwrap()
            - created["token"]["created_at"].as_i64().unwrap(),
        7 * 86_400
    );

    // The host's refusals: a role above the owner's, an owner it does not know.
    let error = laptop.refused(&admin, &["token", "create", "vera", "x", "--role", "admin"]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");
    assert!(error.contains("vera"), "{error}");
    assert_eq!(
        laptop.refused(&admin, &["token", "create", "ghost", "x"]),
        format!("mfv: no user ghost on {host}\n")
    );

    let table = laptop.ok(&admin, &["token", "list"]).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "ID  OWNER  NAME  ROLE  EXPIRES  LAST USED");
    assert_eq!(lines.len(), 6, "{table}");
    assert_eq!(
        lines[4],
        format!("4  otto  \"ci\"  operator  {expires}  never")
    );
    let listed: serde_json::Value = serde_json::from_str(
        &laptop
            .ok(&admin, &["token", "list", "--user", "otto", "--json"])
            .stdout,
    )
    .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tests", "ci"]);
    assert_eq!(listed[1]["effective_role"], "operator");

    // A viewer may not manage tokens.
    let (status, message) = refusal(&server, &viewer, "GET", "/api/v1/tokens");
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&viewer, &["token", "list"]),
        format!("mfv: {host}: {message}\n")
    );

    // The token works until it is revoked.
    let bearer = format!("Bearer {secret}");
    let whoami = server.call(&bearer, "GET", "/api/v1/session", None);
    assert_eq!(whoami.status, 200, "{}", whoami.text());
    let run = laptop.ok(&admin, &["token", "revoke", "4"]);
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("", "revoked API token 4\n")
    );
    assert_eq!(
        server.call(&bearer, "GET", "/api/v1/session", None).status,
        401
    );
    let error = laptop.refused(&admin, &["token", "revoke", "4"]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");

    // The audit log, as the host's `mfv audit` prints it; filtered by user.
    let page = server.call(&admin, "GET", "/api/v1/audit?limit=3", None);
    let entries = page.json().unwrap()["entries"].clone();
    assert_eq!(entries[0]["event"], "token_revoked", "{entries}");
    assert_eq!(
        laptop.ok(&admin, &["audit", "--limit", "3"]).stdout,
        audit_lines(&entries)
    );
    let about_vera: serde_json::Value = serde_json::from_str(
        &laptop
            .ok(&admin, &["audit", "--user", "vera", "--json"])
            .stdout,
    )
    .unwrap();
    let about_vera = about_vera.as_array().unwrap();
    assert!(about_vera.len() >= 2, "{about_vera:?}");
    assert!(
        about_vera
            .iter()
            .all(|entry| entry["username"] == "vera" || entry["actor"] == "vera"),
        "{about_vera:?}"
    );
    let run = laptop.mfv(&admin, &["audit", "--user", "Not A User"], "");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("--user"), "{run:?}");
    let run = laptop.mfv(&admin, &["audit", "--limit", "0"], "");
    assert!(!run.success && run.stderr.contains("--limit"), "{run:?}");
    let (status, message) = refusal(&server, &viewer, "GET", "/api/v1/audit");
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&viewer, &["audit"]),
        format!("mfv: {host}: {message}\n")
    );
}

#[test]
fn snapshots_are_taken_listed_reverted_and_deleted() {
    let shared = guest::shared();
    let server = Server::with_libvirt(shared.daemon.uri());
    let laptop = Laptop::of(&server);
    let host = host(&server);
    let admin = server.token(Role::Admin).to_owned();
    let operator = server.token(Role::Operator).to_owned();
    let viewer = server.token(Role::Viewer).to_owned();
    let pool = mfv_tests::libvirtd::unique("remote-pool");
    mfv_vm::Hypervisor::connect(shared.daemon.uri())
        .unwrap()
        .ensure_dir_pool(&pool, &server.dir.path().join("pool"))
        .unwrap();
    let name = mfv_tests::libvirtd::unique("remote-snap");
    let disks = json!([{"target": "vda", "source": {"new_volume": {"pool": pool, "size_gib": 1}}}]);
    let spec_file = laptop.dir.path().join("spec.json");
    std::fs::write(
        &spec_file,
        guest::guest_spec(&name, json!({ "disks": disks })).to_string(),
    )
    .unwrap();
    laptop.ok(
        &admin,
        &["vm", "create", "--spec", spec_file.to_str().unwrap()],
    );

    let run = laptop.ok(
        &operator,
        &[
            "vm",
            "snapshot",
            "create",
            &name,
            "before",
            "--description",
            "clean",
        ],
    );
    assert_eq!(
        run.stdout,
        format!("created snapshot before of VM {name}\n")
    );
    assert!(run.stderr.contains("(snapshot_create)"), "{run:?}");

    let table = laptop
        .ok(&viewer, &["vm", "snapshot", "list", &name])
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VM", "STATE", "CURRENT", "DESCRIPTION"]
    );
    assert_eq!(
        lines[1..]
            .iter()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [["before", "shutoff", "*", "clean"]],
        "{table}"
    );
    let listed: serde_json::Value = serde_json::from_str(
        &laptop
            .ok(&viewer, &["vm", "snapshot", "list", &name, "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(listed[0]["name"], "before");
    assert_eq!(listed[0]["description"], "clean");

    // Refusals: a name the host does not take, a viewer, a snapshot that is not there.
    let error = laptop.refused(&operator, &["vm", "snapshot", "create", &name, "../x"]);
    assert!(error.starts_with(&format!("mfv: {host}: ")), "{error}");
    assert!(error.trim_end().ends_with("(field: name)"), "{error}");
    let path = format!("/api/v1/vms/{name}/snapshots");
    let (status, message) = refusal(&server, &viewer, "POST", &path);
    assert_eq!(status, 403);
    assert_eq!(
        laptop.refused(&viewer, &["vm", "snapshot", "create", &name, "after"]),
        format!("mfv: {host}: {message}\n")
    );

    assert_eq!(
        laptop
            .ok(&operator, &["vm", "snapshot", "revert", &name, "before"])
            .stdout,
        format!("VM {name} reverted to snapshot before\n")
    );
    assert_eq!(
        laptop
            .ok(&operator, &["vm", "snapshot", "delete", &name, "before"])
            .stdout,
        format!("deleted snapshot before of VM {name}\n")
    );
    let error = laptop.refused(&operator, &["vm", "snapshot", "delete", &name, "before"]);
    assert!(error.trim_end().ends_with("(field: snapshot)"), "{error}");
    let table = laptop
        .ok(&viewer, &["vm", "snapshot", "list", &name])
        .stdout;
    assert_eq!(table.lines().count(), 1, "{table}");

    laptop.ok(&admin, &["vm", "delete", &name, "--with-disks"]);
}
