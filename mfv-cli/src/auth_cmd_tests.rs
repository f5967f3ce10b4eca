//! Tests of `mfv user`, `mfv token`, `mfv auth test` and `mfv audit`, run in-process against an
//! auth database in a temp dir, with passwords from a queue instead of the terminal.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use serde_json::json;

use mfv_host::auth::{BackendSettings, DEFAULT_AUTH_DB};

use super::*;
use crate::{Cli, Command};

/// Passwords handed out in order; remembers whether each was asked from stdin.
#[derive(Default)]
struct QueuedPasswords {
    queue: VecDeque<String>,
    asked_from_stdin: Vec<bool>,
}

impl PasswordReader for QueuedPasswords {
    fn new_password(&mut self, from_stdin: bool) -> anyhow::Result<String> {
        self.asked_from_stdin.push(from_stdin);
        self.queue.pop_front().context("no password queued")
    }
}

/// What one command did.
#[derive(Debug)]
struct Outcome {
    result: anyhow::Result<Status>,
    out: String,
    err: String,
}

impl Outcome {
    /// Stdout of a command that must have succeeded.
    fn ok(self) -> String {
        match self.result {
            Ok(code) => assert_eq!(code, Status::Success, "{}{}", self.out, self.err),
            Err(error) => panic!("command failed: {error:#}"),
        }
        self.out
    }

    /// The error chain of a command that must have failed.
    fn error(self) -> String {
        match self.result {
            Ok(code) => panic!("command did not fail ({code:?}): {}{}", self.out, self.err),
            Err(error) => format!("{error:#}"),
        }
    }
}

/// An auth database in a temp dir and the password queue.
struct Host {
    dir: tempfile::TempDir,
    passwords: QueuedPasswords,
}

impl Host {
    fn new() -> Host {
        Host {
            dir: tempfile::tempdir().unwrap(),
            passwords: QueuedPasswords::default(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("auth.sqlite")
    }

    /// Runs `mfv ARGS --db DB`.
    async fn run(&mut self, args: &[&str]) -> Outcome {
        let db = self.db().display().to_string();
        let argv = [&["mfv"], args, &["--db", &db]].concat();
        let command = Cli::try_parse_from(argv).unwrap().command;
        self.dispatch(command).await
    }

    async fn dispatch(&mut self, command: Command) -> Outcome {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            passwords: &mut self.passwords,
        };
        let result = match command {
            Command::User(args) => user(args, &mut io).await,
            Command::Token(args) => token(args, &mut io).await,
            Command::Auth(args) => auth(args, &mut io).await,
            Command::Audit(args) => audit(args, &mut io).await,
            other => panic!("not an auth command: {other:?}"),
        };
        Outcome {
            result,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    /// `mfv user add USER --role ROLE` with `password`.
    async fn add(&mut self, user: &str, role: &str, password: &str) {
        self.passwords.queue.push_back(password.to_owned());
        self.run(&["user", "add", user, "--role", role]).await.ok();
    }

    /// The authenticator the commands use, for checking their effect.
    async fn authenticator(&self) -> Authenticator {
        let options = AuthOptions {
            db: Some(self.db()),
            ..AuthOptions::default()
        };
        options.open(MissingDatabase::Refuse).await.unwrap()
    }

    async fn can_log_in(&self, user: &str, password: &str) -> bool {
        let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
        self.authenticator()
            .await
            .login(user, password, None, source)
            .await
            .is_ok()
    }

    async fn users_json(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.run(&["user", "list", "--json"]).await.ok()).unwrap()
    }
}

#[tokio::test]
async fn users_are_added_and_listed_as_json_and_text() {
    let mut host = Host::new();
    host.passwords.queue.push_back("alice-pw-1".into());
    let added = host
        .run(&[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--display-name",
            "Alice Ådmin",
            "--password-stdin",
        ])
        .await;
    assert_eq!(
        added.err,
        "added user alice with role admin to the sqlite backend\n"
    );
    assert_eq!(added.ok(), "");
    assert_eq!(host.passwords.asked_from_stdin, [true]);
    host.add("bob", "viewer", "bob-pw-2").await;
    assert_eq!(host.passwords.asked_from_stdin, [true, false]);

    assert_eq!(
        host.users_json().await,
        json!([
            {"username": "alice", "display_name": "Alice Ådmin", "role": "admin", "disabled": false},
            {"username": "bob", "display_name": "", "role": "viewer", "disabled": false},
        ])
    );
    assert_eq!(
        host.run(&["user", "list"]).await.ok(),
        "USER   ROLE      STATE     DISPLAY NAME\n\
         alice  admin     enabled   Alice Ådmin\n\
         bob    viewer    enabled\n"
    );
    assert!(host.can_log_in("alice", "alice-pw-1").await);
}

#[tokio::test]
async fn passwd_changes_the_password() {
    let mut host = Host::new();
    host.add("alice", "operator", "old-password").await;
    host.passwords.queue.push_back("new-password".into());
    let changed = host
        .run(&["user", "passwd", "alice", "--password-stdin"])
        .await;
    assert_eq!(
        changed.err,
        "password of alice changed; their sessions have ended\n"
    );
    changed.ok();
    assert!(host.can_log_in("alice", "new-password").await);
    assert!(!host.can_log_in("alice", "old-password").await);
}

#[tokio::test]
async fn role_disable_and_enable_change_the_user() {
    let mut host = Host::new();
    host.add("carol", "viewer", "carol-pw").await;
    let changed = host.run(&["user", "role", "carol", "operator"]).await;
    assert_eq!(changed.err, "carol is now operator\n");
    changed.ok();
    assert_eq!(host.users_json().await[0]["role"], "operator");

    host.run(&["user", "disable", "carol"]).await.ok();
    assert_eq!(host.users_json().await[0]["disabled"], true);
    assert!(!host.can_log_in("carol", "carol-pw").await);
    assert_eq!(
        host.run(&["user", "list"]).await.ok(),
        "USER   ROLE      STATE     DISPLAY NAME\ncarol  operator  disabled\n"
    );

    host.run(&["user", "enable", "carol"]).await.ok();
    assert_eq!(host.users_json().await[0]["disabled"], false);
    assert!(host.can_log_in("carol", "carol-pw").await);

    host.run(&["user", "del", "carol"]).await.ok();
    assert_eq!(host.users_json().await, json!([]));
}

#[tokio::test]
async fn a_token_secret_is_shown_once_and_the_token_revoked() {
    let mut host = Host::new();
    host.add("alice", "admin", "alice-pw").await;
    let created = host.run(&["token", "create", "alice", "ci"]).await;
    assert!(
        created
            .err
            .starts_with("API token 1 \"ci\" of alice with role admin, expires "),
        "{}",
        created.err
    );
    assert!(created.err.ends_with(": the secret is shown only now\n"));
    let secret = created.ok().trim_end().to_owned();
    assert!(secret.starts_with("mfv_") && secret.len() == 68, "{secret}");
    let info = host
        .authenticator()
        .await
        .check_api_token(&secret)
        .await
        .unwrap();
    assert_eq!(info.role, Role::Admin);

    let created = host
        .run(&[
            "token", "create", "alice", "backup", "--role", "viewer", "--days", "7", "--json",
        ])
        .await
        .ok();
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let second_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(second_secret.starts_with("mfv_"));
    assert_eq!(created["token"]["role"], "viewer");
    assert_eq!(created["token"]["name"], "backup");
    let lifetime = created["token"]["expires_at"].as_i64().unwrap()
        - created["token"]["created_at"].as_i64().unwrap();
    assert_eq!(lifetime, 7 * 24 * 60 * 60);

    let listed = host.run(&["token", "list", "--json"]).await.ok();
    assert!(!listed.contains(&secret) && !listed.contains(&second_secret));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "backup"]);
    let table = host.run(&["token", "list"]).await.ok();
    assert!(!table.contains("mfv_"), "{table}");
    assert!(
        table.starts_with("ID  OWNER  NAME  ROLE  EXPIRES  LAST USED\n1  alice  \"ci\"  admin  ")
    );

    let revoked = host.run(&["token", "revoke", "1"]).await;
    assert_eq!(revoked.err, "revoked API token 1\n");
    revoked.ok();
    assert!(
        host.authenticator()
            .await
            .check_api_token(&secret)
            .await
            .is_err()
    );
    let listed = host
        .run(&["token", "list", "--user", "alice", "--json"])
        .await
        .ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed).unwrap()[0]["name"],
        "backup"
    );
    assert_eq!(
        host.run(&["token", "revoke", "1"]).await.error(),
        "no API token 1"
    );
}

#[tokio::test]
async fn auth_test_passes_for_a_user_and_fails_with_exit_1_otherwise() {
    let mut host = Host::new();
    host.add("alice", "admin", "alice-pw").await;
    let passed = host.run(&["auth", "test", "alice"]).await.ok();
    assert_eq!(
        passed,
        format!(
            "sqlite user backend, user alice:\n  open: ok: {} (schema version {})\n  user: ok: alice exists with role admin\n",
            host.db().display(),
            mfv_auth::SCHEMA_VERSION
        )
    );

    let failed = host.run(&["auth", "test", "ghost", "--json"]).await;
    assert_eq!(failed.result.unwrap(), Status::Failure);
    let report: serde_json::Value = serde_json::from_str(&failed.out).unwrap();
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["user"], "ghost");
    assert_eq!(report["passed"], false);
    assert_eq!(
        report["steps"][1],
        json!({"step": "user", "outcome": "failed", "detail": "no user ghost (mfv user add ghost)"})
    );

    host.run(&["user", "disable", "alice"]).await.ok();
    let disabled = host.run(&["auth", "test", "alice"]).await;
    assert!(
        disabled.out.contains(
            "user: FAILED: alice exists with role admin but is disabled (mfv user enable alice)"
        ),
        "{}",
        disabled.out
    );
    assert_eq!(disabled.result.unwrap(), Status::Failure);
}

#[tokio::test]
async fn audit_shows_the_changes_made_here() {
    let mut host = Host::new();
    host.add("alice", "admin", "alice-pw").await;
    host.run(&["user", "role", "alice", "viewer"]).await.ok();
    let entries = host.run(&["audit", "--limit", "1", "--json"]).await.ok();
    let entries: serde_json::Value = serde_json::from_str(&entries).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["event"], "role_changed");
    assert_eq!(entries[0]["actor"], "(local)");
    assert_eq!(entries[0]["username"], "alice");
    let text = host.run(&["audit"]).await.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains(" user_added ok user=alice actor=(local): role admin"),
        "{text}"
    );
    // Only the entries about (or by) a user.
    host.add("bob", "viewer", "bob-password").await;
    let about_bob = host.run(&["audit", "--user", "bob"]).await.ok();
    let lines: Vec<&str> = about_bob.lines().collect();
    assert_eq!(lines.len(), 1, "{about_bob}");
    assert!(lines[0].contains(" user_added ok user=bob "), "{about_bob}");
}

#[tokio::test]
async fn unknown_users_are_reported() {
    let mut host = Host::new();
    host.add("alice", "admin", "alice-pw").await;
    for args in [
        &["user", "del", "ghost"][..],
        &["user", "role", "ghost", "admin"],
        &["user", "disable", "ghost"],
        &["user", "enable", "ghost"],
        &["user", "passwd", "ghost"],
        &["token", "create", "ghost", "ci"],
    ] {
        assert_eq!(host.run(args).await.error(), "no user ghost", "{args:?}");
    }
    assert_eq!(
        host.run(&["token", "create", "ghost", "ci", "--role", "viewer"])
            .await
            .error(),
        "no active user ghost"
    );
    assert!(
        host.passwords.asked_from_stdin.len() == 1,
        "passwd asked for a password"
    );
}

#[tokio::test]
async fn an_existing_user_is_refused_before_a_password_is_asked() {
    let mut host = Host::new();
    host.add("alice", "admin", "alice-pw").await;
    assert_eq!(
        host.run(&["user", "add", "alice"]).await.error(),
        "user alice already exists"
    );
    assert_eq!(host.passwords.asked_from_stdin.len(), 1);
}

#[tokio::test]
async fn empty_and_too_long_passwords_are_refused() {
    let mut host = Host::new();
    host.passwords.queue.push_back(String::new());
    assert_eq!(
        host.run(&["user", "add", "alice"]).await.error(),
        "password must not be empty"
    );
    host.passwords
        .queue
        .push_back("x".repeat(MAX_PASSWORD_BYTES + 1));
    assert_eq!(
        host.run(&["user", "add", "alice"]).await.error(),
        "password has 4097 bytes, at most 4096 allowed"
    );
    host.add("alice", "admin", "alice-pw").await;
    host.passwords.queue.push_back(String::new());
    assert_eq!(
        host.run(&["user", "passwd", "alice"]).await.error(),
        "password must not be empty"
    );
    assert!(host.can_log_in("alice", "alice-pw").await);
}

#[tokio::test]
async fn a_token_cannot_outrank_its_owner() {
    let mut host = Host::new();
    host.add("bob", "viewer", "bob-password").await;
    assert_eq!(
        host.run(&["token", "create", "bob", "ci", "--role", "admin"])
            .await
            .error(),
        "an API token of bob cannot have role admin: bob is only viewer"
    );
    assert_eq!(
        host.run(&["token", "create", "bob", "ci", "--days", "366"])
            .await
            .error(),
        "API token lifetime must be between 1 second and 365 days"
    );
    assert_eq!(
        host.run(&["token", "list"]).await.ok(),
        "ID  OWNER  NAME  ROLE  EXPIRES  LAST USED\n"
    );
}

#[test]
fn bad_roles_names_and_lifetimes_are_usage_errors() {
    for argv in [
        &["mfv", "user", "add", "alice", "--role", "superuser"][..],
        &["mfv", "user", "role", "alice", "root"],
        &["mfv", "user", "add", "Not A Name"],
        &["mfv", "token", "create", "alice", "ci", "--role", "god"],
        &["mfv", "token", "create", "alice", "ci", "--days", "0"],
        &["mfv", "token", "revoke", "first"],
        &["mfv", "user", "list", "--backend", "oracle"],
        &["mfv", "user", "list", "--ldap-group-role", "mfv-admins"],
        &["mfv", "user", "list", "--ldap-group-role", "=admin"],
        &["mfv", "user", "list", "--ldap-group-role", "cn=x,dc=y=boss"],
    ] {
        let error = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{argv:?}");
    }
    let error = Cli::try_parse_from(["mfv", "user", "add", "alice", "--role", "superuser"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"superuser\" is not a role; expected one of: viewer, operator, admin"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_database_is_created_only_by_commands_that_add() {
    let mut host = Host::new();
    let error = host.run(&["user", "list"]).await.error();
    assert_eq!(
        error,
        format!(
            "no auth database at {}: add the first user with `mfv user add`, or pass --db or --backend-config",
            host.db().display()
        )
    );
    assert!(!host.db().exists());
    let nested = host.dir.path().join("var/lib/mfv/auth.sqlite");
    host.passwords.queue.push_back("alice-password".into());
    let db = nested.display().to_string();
    let command = Cli::try_parse_from(["mfv", "user", "add", "alice", "--db", &db])
        .unwrap()
        .command;
    host.dispatch(command).await.ok();
    assert!(nested.exists());
}

#[tokio::test]
async fn an_unreadable_database_names_its_path() {
    let mut host = Host::new();
    std::fs::create_dir(host.db()).unwrap();
    let error = host.run(&["user", "list"]).await.error();
    assert!(
        error.starts_with(&format!(
            "cannot create auth database {}",
            host.db().display()
        )),
        "{error}"
    );
}

#[tokio::test]
async fn the_ldap_backend_is_read_only_and_an_unreachable_server_fails_the_test() {
    let mut host = Host::new();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ldap://127.0.0.1:{port}");
    let ldap = [
        "--backend",
        "ldap",
        "--ldap-url",
        &url,
        "--ldap-user-base",
        "ou=people,dc=example,dc=test",
    ];
    host.passwords.queue.push_back("pw".into());
    let error = host
        .run(&[&["user", "add", "alice"], &ldap[..]].concat())
        .await
        .error();
    assert_eq!(
        error,
        "the ldap user backend is read-only here: manage its users in the ldap server"
    );
    let failed = host
        .run(&[&["auth", "test", "alice"], &ldap[..]].concat())
        .await;
    assert!(
        failed
            .out
            .starts_with("ldap user backend, user alice:\n  connect: FAILED: "),
        "{}",
        failed.out
    );
    assert_eq!(failed.result.unwrap(), Status::Failure);
    let error = host
        .run(&[&["user", "list"], &ldap[..]].concat())
        .await
        .error();
    assert!(
        error.starts_with("ldap user backend is unavailable: "),
        "{error}"
    );
}

fn options(args: &[&str]) -> AuthOptions {
    let argv = [&["mfv", "user"], args, &["list"]].concat();
    match Cli::try_parse_from(argv).unwrap().command {
        Command::User(args) => args.options,
        other => panic!("not mfv user: {other:?}"),
    }
}

#[test]
fn every_flag_becomes_its_override() {
    assert_eq!(options(&[]).overrides(), AuthOverrides::default());
    let options = options(&[
        "--db",
        "/srv/auth.sqlite",
        "--backend",
        "ldap",
        "--ldap-url",
        "ldap://ldap.example.org",
        "--ldap-starttls",
        "--ldap-ca-cert",
        "/etc/ssl/ca.pem",
        "--ldap-bind-dn",
        "cn=svc,dc=example,dc=org",
        "--ldap-bind-password-file",
        "/etc/mfv/bind.pw",
        "--ldap-user-base",
        "ou=people,dc=example,dc=org",
        "--ldap-user-filter",
        "(cn={username})",
        "--ldap-group-base",
        "ou=groups,dc=example,dc=org",
        "--ldap-group-role",
        "cn=ops,ou=groups,dc=example,dc=org=operator",
        "--ldap-group-role",
        "staff=viewer",
        "--mysql-host",
        "db.example.org",
        "--mysql-port",
        "3307",
        "--mysql-socket",
        "/run/mysqld/mysqld.sock",
        "--mysql-database",
        "mfv",
        "--mysql-user",
        "mfv-user",
        "--mysql-password-file",
        "/etc/mfv/db.pw",
        "--mysql-tls",
        "--mysql-ca-cert",
        "/etc/ssl/db-ca.pem",
    ]);
    let group_role = |group: &str, role| GroupRole {
        group: group.to_owned(),
        role,
    };
    assert_eq!(
        options.overrides(),
        AuthOverrides {
            database: Some("/srv/auth.sqlite".into()),
            backend: Some(AuthBackend::Ldap),
            ldap: LdapOverrides {
                url: Some("ldap://ldap.example.org".into()),
                base_dn: Some("ou=people,dc=example,dc=org".into()),
                bind_dn: Some("cn=svc,dc=example,dc=org".into()),
                bind_password_file: Some("/etc/mfv/bind.pw".into()),
                user_filter: Some("(cn={username})".into()),
                group_base: Some("ou=groups,dc=example,dc=org".into()),
                starttls: Some(true),
                ca_certificate: Some("/etc/ssl/ca.pem".into()),
                group_roles: Some(vec![
                    group_role("cn=ops,ou=groups,dc=example,dc=org", Role::Operator),
                    group_role("staff", Role::Viewer),
                ]),
            },
            mysql: MysqlOverrides {
                host: Some("db.example.org".into()),
                port: Some(3307),
                socket: Some("/run/mysqld/mysqld.sock".into()),
                database: Some("mfv".into()),
                user: Some("mfv-user".into()),
                password_file: Some("/etc/mfv/db.pw".into()),
                tls: Some(true),
                ca_certificate: Some("/etc/ssl/db-ca.pem".into()),
            },
        }
    );
}

#[test]
fn incomplete_backend_settings_say_what_is_missing() {
    let check = |args: &[&str], kind: &str, expected: &str| {
        let args = [&["--backend", kind], args].concat();
        let error = options(&args).resolve().map(drop).unwrap_err();
        assert_eq!(format!("{error:#}"), expected, "{args:?}");
    };
    check(
        &[],
        "ldap",
        "the ldap backend needs --ldap-url (or [auth.ldap] in --backend-config)",
    );
    check(
        &["--ldap-url", "ldap://h"],
        "ldap",
        "the ldap backend needs --ldap-user-base (or [auth.ldap] in --backend-config)",
    );
    check(
        &["--ldap-url", "ldap://h", "--ldap-user-base", "dc=org"],
        "ldap",
        "the user base \"dc=org\" has no parent: pass --ldap-group-base (or group_base in [auth.ldap])",
    );
    check(
        &[
            "--ldap-url",
            "ldap://h",
            "--ldap-user-base",
            "ou=p,dc=org",
            "--ldap-bind-dn",
            "cn=svc,dc=org",
        ],
        "ldap",
        "the LDAP service account cn=svc,dc=org needs --ldap-bind-password-file (or bind_password_file in [auth.ldap])",
    );
    check(
        &[
            "--ldap-url",
            "ldap://h",
            "--ldap-user-base",
            "ou=p,dc=org",
            "--ldap-bind-dn",
            "cn=svc,dc=org",
            "--ldap-bind-password-file",
            "/nonexistent/pw",
        ],
        "ldap",
        "cannot read the password file /nonexistent/pw: No such file or directory (os error 2)",
    );
    check(
        &[],
        "mysql",
        "the mysql backend needs --mysql-database (or [auth.mysql] in --backend-config)",
    );
    check(
        &["--mysql-database", "mfv"],
        "mysql",
        "the mysql backend needs --mysql-user (or [auth.mysql] in --backend-config)",
    );
    check(
        &["--mysql-database", "mfv", "--mysql-user", "mfv"],
        "mysql",
        "the mysql backend needs --mysql-host or --mysql-socket (or [auth.mysql] in --backend-config)",
    );
}

#[test]
fn the_config_file_gives_the_backend_and_the_database_on_its_volume() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mfv.toml");
    std::fs::write(
        &config,
        "version = 1\n\n[host]\nhostname = \"node1\"\n\n[auth]\nbackend = \"mysql\"\n\n\
         [auth.mysql]\nhost = \"db.example.org\"\ndatabase = \"mfv\"\nuser = \"mfv\"\ntls = true\n",
    )
    .unwrap();
    let path = config.display().to_string();
    let resolved = options(&["--backend-config", &path]).resolve().unwrap();
    assert_eq!(resolved.database, dir.path().join("users.sqlite"));
    assert!(matches!(resolved.backend, BackendSettings::Mysql(_)));
    let resolved = options(&[
        "--backend-config",
        &path,
        "--backend",
        "sqlite",
        "--db",
        "/tmp/x.sqlite",
    ])
    .resolve()
    .unwrap();
    assert!(matches!(resolved.backend, BackendSettings::Sqlite));
    assert_eq!(resolved.database, PathBuf::from("/tmp/x.sqlite"));
    let resolved = options(&[]).resolve().unwrap();
    assert_eq!(resolved.database, PathBuf::from(DEFAULT_AUTH_DB));

    let missing = dir.path().join("missing.toml").display().to_string();
    let error = options(&["--backend-config", &missing])
        .resolve()
        .map(drop)
        .unwrap_err();
    assert!(
        format!("{error:#}").starts_with(&format!("cannot use --backend-config {missing}: ")),
        "{error:#}"
    );
}

#[test]
fn password_lines_lose_their_line_ending_only() {
    let read = |input: &[u8]| read_password_line(&mut &input[..]);
    assert_eq!(read(b"secret\n").unwrap(), "secret");
    assert_eq!(read(b"secret\r\nnext line\n").unwrap(), "secret");
    assert_eq!(read(b" spaced \t").unwrap(), " spaced \t");
    assert_eq!(read(b"").unwrap(), "");
    let long = vec![b'x'; MAX_PASSWORD_BYTES + 100];
    let read_long = read(&long).unwrap();
    assert!(
        Password::new(read_long).is_err(),
        "a too-long line stays too long"
    );
    assert_eq!(
        format!("{:#}", read(b"\xff\xfe\n").unwrap_err()),
        "the password is not UTF-8: invalid utf-8 sequence of 1 bytes from index 0"
    );
}
