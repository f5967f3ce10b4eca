//! `mfv --remote`: the real `mfv` binary against the real API server on loopback (in-process,
//! with users and API tokens in a real SQLite auth database, VMs on a private libvirtd with
//! real QEMU), as mfv-web's own API tests run it. What the operator sees is checked: the
//! first use's notice and the known hosts file, a changed certificate refused, the host's
//! refusals printed as `mfv: HOST: message`, and the VM, host and user commands' output.

#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "../../mfv-web/tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
