//! Setup's "test connection" ([`mfv_host::auth::check_backend`]) against a real private
//! slapd and MariaDB: what it reports when the backend works, and the step, key and advice
//! for each way it does not.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::Path;
use std::time::Duration;

use mfv_auth::{
    Argon2Params, MySqlBackend, MySqlConfig, Password, PasswordHasher, Role, UserBackend,
    UserRecord,
};
use mfv_config::schema::{AuthBackend, AuthConfig, parse_config};
use mfv_host::auth::{AuthCheckError, BackendCheck, CHECK_DEADLINE, check_backend};
use mfv_tests::mariadb::{self, MariaDb};
use mfv_tests::slapd::{self, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd};

/// The `[auth]` section of a configuration whose auth part is `auth`.
fn section(auth: &str) -> AuthConfig {
    let text = format!("version = 1\n[host]\nhostname = \"node1\"\n{auth}");
    parse_config(&text)
        .unwrap_or_else(|errors| panic!("{errors}\n{text}"))
        .auth
}

/// A config volume in a temp dir holding `files` (name, content).
fn volume(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

async fn check(auth: &str, volume: &Path) -> Result<BackendCheck, AuthCheckError> {
    check_backend(&section(auth), Some(volume), CHECK_DEADLINE).await
}

/// The error with its causes, as the daemon sends it.
fn chain(error: &AuthCheckError) -> String {
    mfv_linux::error_chain(error)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An `[auth.ldap]` section for `url` with the service account and `extra` lines.
fn ldap(url: &str, extra: &str) -> String {
    format!(
        "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"{url}\"\nbase_dn = \"{PEOPLE_DN}\"\n\
         bind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"ldap.pw\"\n{extra}"
    )
}

fn ldap_volume(password: &str) -> tempfile::TempDir {
    let volume = volume(&[("ldap.pw", &format!("{password}\n"))]);
    std::fs::copy(
        Slapd::shared().ca_certificate(),
        volume.path().join("ldap-ca.pem"),
    )
    .unwrap();
    volume
}

#[tokio::test]
async fn ldap_over_tls_binds_and_counts_the_users_under_the_base() {
    let slapd = Slapd::shared();
    let volume = ldap_volume(SERVICE_PASSWORD);
    let users = slapd::users().len();
    let checked = check(
        &ldap(&slapd.ldaps_url(), "ca_certificate = \"ldap-ca.pem\"\n"),
        volume.path(),
    )
    .await
    .unwrap();
    assert_eq!(checked.backend, AuthBackend::Ldap);
    assert_eq!(
        checked.message,
        format!(
            "connected to {} over TLS, bound as {SERVICE_DN}, {users} users under {PEOPLE_DN}",
            slapd.ldaps_url()
        )
    );
    let checked = check(
        &ldap(
            &slapd.url(),
            "starttls = true\nca_certificate = \"ldap-ca.pem\"\n",
        ),
        volume.path(),
    )
    .await
    .unwrap();
    assert!(
        checked
            .message
            .starts_with(&format!("connected to {} with StartTLS, ", slapd.url())),
        "{}",
        checked.message
    );
}

#[tokio::test]
async fn ldap_with_a_wrong_bind_password_names_the_password_file() {
    let slapd = Slapd::shared();
    let volume = ldap_volume("not-the-password");
    let error = check(&ldap(&slapd.url(), ""), volume.path())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthCheckError::LoginRefused { .. }),
        "{error:?}"
    );
    assert_eq!(error.key().as_deref(), Some("auth.ldap.bind_password_file"));
    assert!(
        chain(&error).starts_with(&format!(
            "{} refused the login as {SERVICE_DN}: check the account and its password file: ",
            slapd.url()
        )),
        "{}",
        chain(&error)
    );
    assert!(chain(&error).contains("invalid credentials"), "{error}");
}

#[tokio::test]
async fn ldap_on_a_port_nobody_listens_on_is_unreachable() {
    let volume = ldap_volume(SERVICE_PASSWORD);
    let url = format!("ldap://127.0.0.1:{}", closed_port());
    let error = check(&ldap(&url, ""), volume.path()).await.unwrap_err();
    assert!(
        matches!(error, AuthCheckError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(error.key().as_deref(), Some("auth.ldap.url"));
    assert!(
        chain(&error).starts_with(&format!("cannot reach {url}: check the address")),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn ldap_tls_with_a_certificate_no_trusted_ca_signed_is_a_tls_failure() {
    let slapd = Slapd::shared();
    let volume = ldap_volume(SERVICE_PASSWORD);
    // The system's CAs never signed the test server's certificate.
    let error = check(&ldap(&slapd.ldaps_url(), ""), volume.path())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthCheckError::Tls { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.ldap.url"));
    // With a CA that did not sign it either, the key to look at is the CA.
    std::fs::copy(
        MariaDb::shared().ca_certificate(),
        volume.path().join("other-ca.pem"),
    )
    .unwrap();
    let error = check(
        &ldap(&slapd.ldaps_url(), "ca_certificate = \"other-ca.pem\"\n"),
        volume.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, AuthCheckError::Tls { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.ldap.ca_certificate"));
    assert!(
        chain(&error).starts_with(&format!("TLS with {} failed: ", slapd.ldaps_url())),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn ldap_with_a_user_base_that_does_not_exist_names_the_base() {
    let slapd = Slapd::shared();
    let volume = ldap_volume(SERVICE_PASSWORD);
    let auth = ldap(&slapd.url(), "").replace(PEOPLE_DN, "ou=nobody,dc=example,dc=test");
    let error = check(&auth, volume.path()).await.unwrap_err();
    assert!(matches!(error, AuthCheckError::Users { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.ldap.base_dn"));
    assert!(
        chain(&error).contains("the base DN ou=nobody,dc=example,dc=test does not exist"),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn ldap_without_its_password_file_names_the_key() {
    let slapd = Slapd::shared();
    let volume = volume(&[]);
    let error = check(&ldap(&slapd.url(), ""), volume.path())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthCheckError::Settings { .. }),
        "{error:?}"
    );
    assert_eq!(error.key().as_deref(), Some("auth.ldap.bind_password_file"));
    assert!(chain(&error).contains("ldap.pw"), "{}", chain(&error));
}

#[tokio::test]
async fn a_server_that_never_answers_ends_at_the_deadline() {
    // The kernel completes the connection into the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}", silent.local_addr().unwrap());
    let volume = ldap_volume(SERVICE_PASSWORD);
    let deadline = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let error = check_backend(&section(&ldap(&url, "")), Some(volume.path()), deadline)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(error, AuthCheckError::Timeout { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.ldap.url"));
    assert!(
        chain(&error).starts_with(&format!("{url} did not answer within 0 s")),
        "{}",
        chain(&error)
    );
}

/// An `[auth.mysql]` section for the shared server and `database`, with `extra` lines.
fn mysql(port: u16, database: &str, extra: &str) -> String {
    format!(
        "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"127.0.0.1\"\nport = {port}\n\
         database = \"{database}\"\nuser = \"{}\"\npassword_file = \"db.pw\"\n{extra}",
        mariadb::USER
    )
}

fn mysql_volume(password: &str) -> tempfile::TempDir {
    let volume = volume(&[("db.pw", &format!("{password}\n"))]);
    std::fs::copy(
        MariaDb::shared().ca_certificate(),
        volume.path().join("db-ca.pem"),
    )
    .unwrap();
    volume
}

#[tokio::test]
async fn mysql_over_tls_counts_the_rows_of_the_user_table() {
    let server = MariaDb::shared();
    let database = server.create_database("check").unwrap();
    // The host's backend makes the tables and one user, as the host would.
    let hasher = PasswordHasher::new(Argon2Params::default()).unwrap();
    let config = MySqlConfig::tcp(
        "127.0.0.1",
        server.port(),
        &database,
        mariadb::USER,
        mariadb::PASSWORD,
    );
    let backend = MySqlBackend::new(config, hasher).unwrap();
    let alice = UserRecord {
        username: "alice".parse().unwrap(),
        display_name: String::new(),
        role: Role::Admin,
        disabled: false,
        account_id: None,
    };
    backend
        .admin()
        .unwrap()
        .add_user(&alice, &Password::new("alice-password").unwrap())
        .await
        .unwrap();
    backend.close().await.unwrap();

    let volume = mysql_volume(mariadb::PASSWORD);
    let checked = check(
        &mysql(
            server.port(),
            &database,
            "tls = true\nca_certificate = \"db-ca.pem\"\n",
        ),
        volume.path(),
    )
    .await
    .unwrap();
    assert_eq!(checked.backend, AuthBackend::Mysql);
    assert_eq!(
        checked.message,
        format!(
            "connected to 127.0.0.1:{} over TLS as {}, database {database}: 1 user in mfv_users",
            server.port(),
            mariadb::USER
        )
    );
}

#[tokio::test]
async fn mysql_with_a_wrong_password_names_the_password_file() {
    let server = MariaDb::shared();
    let database = server.create_database("check").unwrap();
    let volume = mysql_volume("not-the-password");
    let error = check(&mysql(server.port(), &database, ""), volume.path())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthCheckError::LoginRefused { .. }),
        "{error:?}"
    );
    assert_eq!(error.key().as_deref(), Some("auth.mysql.password_file"));
    assert!(
        chain(&error).starts_with(&format!(
            "127.0.0.1:{} refused the login as {}: ",
            server.port(),
            mariadb::USER
        )),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn mysql_without_the_user_table_says_so_and_creates_nothing() {
    let server = MariaDb::shared();
    let database = server.create_database("check").unwrap();
    let volume = mysql_volume(mariadb::PASSWORD);
    let error = check(&mysql(server.port(), &database, ""), volume.path())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthCheckError::Users { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.mysql.database"));
    assert!(
        chain(&error).contains(&format!("database {database} on 127.0.0.1:")),
        "{}",
        chain(&error)
    );
    assert!(chain(&error).contains("has no table mfv_users"), "{error}");
    let tables = server
        .root_sql(&format!("SHOW TABLES FROM `{database}`"))
        .unwrap();
    assert_eq!(tables.trim(), "", "the check created tables");
}

#[tokio::test]
async fn mysql_with_a_database_that_does_not_exist_names_the_database() {
    let server = MariaDb::shared();
    let volume = mysql_volume(mariadb::PASSWORD);
    let error = check(&mysql(server.port(), "mfv_absent", ""), volume.path())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthCheckError::Users { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.mysql.database"));
    assert!(
        chain(&error).contains("database mfv_absent does not exist"),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn mysql_on_a_port_nobody_listens_on_is_unreachable() {
    let volume = mysql_volume(mariadb::PASSWORD);
    let port = closed_port();
    let error = check(&mysql(port, "mfv", ""), volume.path())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthCheckError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(error.key().as_deref(), Some("auth.mysql.host"));
    assert!(
        chain(&error).starts_with(&format!("cannot reach 127.0.0.1:{port}: ")),
        "{}",
        chain(&error)
    );
}

#[tokio::test]
async fn mysql_tls_with_a_certificate_no_trusted_ca_signed_is_a_tls_failure() {
    let server = MariaDb::shared();
    let database = server.create_database("check").unwrap();
    let volume = mysql_volume(mariadb::PASSWORD);
    let error = check(
        &mysql(server.port(), &database, "tls = true\n"),
        volume.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, AuthCheckError::Tls { .. }), "{error:?}");
    assert_eq!(error.key().as_deref(), Some("auth.mysql.tls"));
}

#[tokio::test]
async fn sqlite_says_where_the_local_users_are() {
    let volume = volume(&[]);
    let checked = check("", volume.path()).await.unwrap();
    assert_eq!(checked.backend, AuthBackend::Sqlite);
    assert_eq!(
        checked.message,
        format!(
            "users are the local ones, kept in {}, which the first user added creates",
            volume.path().join("users.sqlite").display()
        )
    );
    std::fs::write(volume.path().join("users.sqlite"), "").unwrap();
    let checked = check("", volume.path()).await.unwrap();
    assert_eq!(
        checked.message,
        format!(
            "users are the local ones, kept in {}",
            volume.path().join("users.sqlite").display()
        )
    );
}
