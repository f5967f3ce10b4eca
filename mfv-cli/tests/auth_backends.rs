//! The `mfv` binary against real user backends: `mfv auth test` and `mfv user list` on a
//! private slapd (read-only, roles from groups; set up by flags, and by a config file over
//! StartTLS), and `mfv user add`/`list`/`auth test` on a private mariadbd configured through
//! `--backend-config`. The servers are mfv-tests' fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use mfv_tests::{mariadb, slapd};
use serde_json::json;

/// Runs `mfv ARGS` with `stdin` as its input.
fn mfv<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(args)
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
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn ldap_users_are_checked_and_listed_with_roles_from_their_groups() {
    let server = slapd::Slapd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("service.pw");
    std::fs::write(&password_file, format!("{}\n", slapd::SERVICE_PASSWORD)).unwrap();
    let db = arg(&dir.path().join("auth.sqlite"));
    let password_file = arg(&password_file);
    let url = server.url();
    let ldap = [
        "--db",
        &db,
        "--backend",
        "ldap",
        "--ldap-url",
        &url,
        "--ldap-bind-dn",
        slapd::SERVICE_DN,
        "--ldap-bind-password-file",
        &password_file,
        "--ldap-user-base",
        slapd::PEOPLE_DN,
        // The default role groups are named cn=mfv-*,GROUP_BASE.
        "--ldap-group-base",
        slapd::GROUPS_DN,
    ];

    let passed = mfv(&[&["auth", "test", "alice"], &ldap[..]].concat(), "");
    let report = text(&passed.stdout);
    assert!(passed.status.success(), "{report}{}", text(&passed.stderr));
    assert!(
        report.starts_with("ldap user backend, user alice:\n  connect: ok: "),
        "{report}"
    );
    assert!(
        report.contains("  group: ok: role admin from groups:"),
        "{report}"
    );

    let failed = mfv(
        &[&["auth", "test", "dave", "--json"], &ldap[..]].concat(),
        "",
    );
    assert_eq!(failed.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["steps"][3]["step"], "group");
    assert_eq!(report["steps"][3]["outcome"], "failed");

    let listed = mfv(&[&["user", "list", "--json"], &ldap[..]].concat(), "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let users: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == "alice")
        .unwrap();
    assert_eq!(
        alice,
        &json!({"username": "alice", "display_name": "Alice Admin", "role": "admin", "disabled": false})
    );

    let refused = mfv(
        &[&["user", "add", "zoe", "--password-stdin"], &ldap[..]].concat(),
        "zoe-pw\n",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        text(&refused.stderr),
        "mfv: the ldap user backend is read-only here: manage its users in the ldap server\n"
    );
}

#[test]
fn ldap_users_are_checked_over_starttls_through_the_config_file() {
    let server = slapd::Slapd::start().unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(
        volume.path().join("ldap.pw"),
        format!("{}\n", slapd::SERVICE_PASSWORD),
    )
    .unwrap();
    std::fs::copy(server.ca_certificate(), volume.path().join("ldap-ca.pem")).unwrap();
    let config = volume.path().join("mfv.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n\n[host]\nhostname = \"node1\"\n\n[auth]\nbackend = \"ldap\"\n\n\
             [auth.ldap]\nurl = \"{}\"\nstarttls = true\nca_certificate = \"ldap-ca.pem\"\n\
             base_dn = \"{}\"\ngroup_base = \"{}\"\nbind_dn = \"{}\"\n\
             bind_password_file = \"ldap.pw\"\n\n[auth.ldap.group_roles]\n\
             mfv-operators = \"admin\"\n",
            server.url(),
            slapd::PEOPLE_DN,
            slapd::GROUPS_DN,
            slapd::SERVICE_DN,
        ),
    )
    .unwrap();
    let config = arg(&config);

    let checked = mfv(&["auth", "test", "bob", "--backend-config", &config], "");
    let report = text(&checked.stdout);
    assert!(
        checked.status.success(),
        "{report}{}",
        text(&checked.stderr)
    );
    assert!(
        report.contains("  group: ok: role admin from groups:"),
        "{report}"
    );
    // mfv-admins grants nothing in this configuration.
    let refused = mfv(&["auth", "test", "alice", "--backend-config", &config], "");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    // The auth state is on the config volume.
    assert!(volume.path().join("users.sqlite").exists());
}

#[test]
fn mysql_users_are_managed_through_the_config_file() {
    let server = mariadb::MariaDb::start().unwrap();
    let database = server.create_database("cli").unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(
        volume.path().join("mysql.pw"),
        format!("{}\n", mariadb::PASSWORD),
    )
    .unwrap();
    let config = volume.path().join("mfv.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n\n[host]\nhostname = \"node1\"\n\n[auth]\nbackend = \"mysql\"\n\n\
             [auth.mysql]\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"{database}\"\n\
             user = \"{}\"\npassword_file = \"mysql.pw\"\n",
            server.port(),
            mariadb::USER
        ),
    )
    .unwrap();
    let config = arg(&config);
    let with_config = |args: &[&str]| -> Vec<String> {
        let mut argv: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        argv.extend(["--backend-config".to_owned(), config.clone()]);
        argv
    };

    let added = mfv(
        &with_config(&[
            "user",
            "add",
            "bob",
            "--role",
            "operator",
            "--password-stdin",
        ]),
        "bob-password\n",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert_eq!(
        text(&added.stderr),
        "added user bob with role operator to the mysql backend\n"
    );
    // The auth state is on the config volume, next to the config file.
    assert!(volume.path().join("users.sqlite").exists());

    let listed = mfv(&with_config(&["user", "list", "--json"]), "");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&listed.stdout).unwrap(),
        json!([{"username": "bob", "display_name": "", "role": "operator", "disabled": false}])
    );
    let checked = mfv(&with_config(&["auth", "test", "bob"]), "");
    assert!(checked.status.success(), "{}", text(&checked.stdout));
    assert!(text(&checked.stdout).starts_with("mysql user backend, user bob:\n"));

    let duplicate = mfv(
        &with_config(&["user", "add", "bob", "--password-stdin"]),
        "other-password\n",
    );
    assert_eq!(duplicate.status.code(), Some(1));
    assert_eq!(text(&duplicate.stderr), "mfv: user bob already exists\n");
}
