//! The MySQL user backend against a real private mariadbd: schema migrations, user
//! administration, logins, disabled users, injection attempts, Unicode, long passwords,
//! `check` reports and a server that stops mid-run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the helpers outside #[test] fns panic on failure just as the tests do"
)]

use mfv_auth::mysql::SCHEMA_VERSION;
use std::sync::Arc;
use std::time::Duration;

use mfv_auth::{
    Actor, AdminError, Argon2Params, AuthPolicy, Authenticator, BackendError, CheckError,
    ManualClock, MySqlBackend, MySqlConfig, Password, PasswordHasher, Role, SqliteState,
    StepOutcome, Timestamp, UserBackend, UserRecord, Username,
};
use mfv_tests::mariadb::{self, MariaDb};

/// Cheap argon2 parameters: these tests check behaviour, not cost.
fn hasher() -> PasswordHasher {
    PasswordHasher::new(Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap()
}

fn tcp_config(server: &MariaDb, database: &str) -> MySqlConfig {
    MySqlConfig::tcp(
        "127.0.0.1",
        server.port(),
        database,
        mariadb::USER,
        mariadb::PASSWORD,
    )
}

/// A backend on a fresh database of the shared server.
fn backend(label: &str) -> (MySqlBackend, String) {
    let server = MariaDb::shared();
    let database = server.create_database(label).unwrap();
    let backend = MySqlBackend::new(tcp_config(server, &database), hasher()).unwrap();
    (backend, database)
}

fn name(text: &str) -> Username {
    text.parse().unwrap()
}

fn password(text: &str) -> Password {
    Password::new(text).unwrap()
}

fn user(username: &str, display_name: &str, role: Role) -> UserRecord {
    UserRecord {
        username: name(username),
        display_name: display_name.into(),
        role,
        disabled: false,
        account_id: None,
    }
}

#[tokio::test]
async fn users_are_added_changed_verified_and_deleted() {
    let (backend, _) = backend("admin");
    assert_eq!(backend.name(), "mysql");
    let admin = backend.admin().expect("MySQL users are managed here");
    let alice = user("alice", "Alice Admin", Role::Admin);
    admin
        .add_user(&alice, &password("alice-pw-1"))
        .await
        .unwrap();
    admin
        .add_user(&user("bob", "Bob", Role::Operator), &password("bob-pw-1"))
        .await
        .unwrap();
    assert!(matches!(
        admin.add_user(&alice, &password("other")).await,
        Err(AdminError::UserExists { .. })
    ));

    let verified = backend
        .verify_password(&name("alice"), &password("alice-pw-1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        verified.account_id.is_some(),
        "the server numbers every row"
    );
    assert_eq!(
        verified,
        UserRecord {
            account_id: verified.account_id.clone(),
            ..alice.clone()
        }
    );
    assert_eq!(
        backend.find_user(&name("alice")).await.unwrap().unwrap(),
        verified
    );
    for (who, attempt) in [
        ("alice", "alice-pw-2"),
        ("alice", "bob-pw-1"),
        ("carol", "alice-pw-1"),
    ] {
        assert_eq!(
            backend
                .verify_password(&name(who), &password(attempt))
                .await
                .unwrap(),
            None,
            "{who} with {attempt}"
        );
    }

    admin
        .set_password(&name("alice"), &password("alice-pw-2"))
        .await
        .unwrap();
    assert_eq!(
        backend
            .verify_password(&name("alice"), &password("alice-pw-1"))
            .await
            .unwrap(),
        None
    );
    admin.set_role(&name("alice"), Role::Viewer).await.unwrap();
    // Setting the role a user already has is not "no such user".
    admin.set_role(&name("alice"), Role::Viewer).await.unwrap();
    admin
        .set_display_name(&name("alice"), "Alice Ünïcødé 山田 🚀")
        .await
        .unwrap();
    let changed = backend
        .verify_password(&name("alice"), &password("alice-pw-2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.role, Role::Viewer);
    assert_eq!(changed.display_name, "Alice Ünïcødé 山田 🚀");

    admin.set_disabled(&name("bob"), true).await.unwrap();
    assert_eq!(
        backend
            .verify_password(&name("bob"), &password("bob-pw-1"))
            .await
            .unwrap(),
        None,
        "a disabled user cannot log in"
    );
    assert!(
        backend
            .find_user(&name("bob"))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let listed: Vec<(String, bool)> = backend
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.username.to_string(), record.disabled))
        .collect();
    assert_eq!(
        listed,
        [("alice".to_owned(), false), ("bob".to_owned(), true)]
    );
    admin.set_disabled(&name("bob"), false).await.unwrap();
    assert!(
        backend
            .verify_password(&name("bob"), &password("bob-pw-1"))
            .await
            .unwrap()
            .is_some()
    );

    admin.delete_user(&name("bob")).await.unwrap();
    assert_eq!(backend.find_user(&name("bob")).await.unwrap(), None);
    let ghost = name("ghost");
    for result in [
        admin.delete_user(&ghost).await,
        admin.set_password(&ghost, &password("x")).await,
        admin.set_role(&ghost, Role::Admin).await,
        admin.set_disabled(&ghost, true).await,
        admin.set_display_name(&ghost, "Ghost").await,
    ] {
        assert!(
            matches!(result, Err(AdminError::NoSuchUser { .. })),
            "{result:?}"
        );
    }
    assert!(matches!(
        admin.set_display_name(&name("alice"), "two\nlines").await,
        Err(AdminError::DisplayName(_))
    ));
    assert!(matches!(
        admin
            .add_user(&user("eve", "tab\there", Role::Viewer), &password("x"))
            .await,
        Err(AdminError::DisplayName(_))
    ));
    backend.close().await.unwrap();
}

#[tokio::test]
async fn unicode_and_four_kib_passwords_are_exact() {
    let (backend, _) = backend("passwords");
    let admin = backend.admin().unwrap();
    let longest = "ü".repeat(2047) + "!x";
    assert_eq!(longest.len(), 4096);
    admin
        .add_user(&user("erin", "Erin", Role::Operator), &password(&longest))
        .await
        .unwrap();
    admin
        .add_user(
            &user("joerg", "Jörg Ødegård", Role::Viewer),
            &password("Jörg-пароль-密码-🔑"),
        )
        .await
        .unwrap();
    let verify = |who: &'static str, attempt: String| {
        let backend = &backend;
        async move {
            backend
                .verify_password(&name(who), &password(&attempt))
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(verify("erin", longest.clone()).await);
    assert!(!verify("erin", longest[..4094].to_owned() + "!y").await);
    assert!(verify("joerg", "Jörg-пароль-密码-🔑".into()).await);
    // The same letters with ö decomposed (o + U+0308): a different password.
    assert!(!verify("joerg", "Jo\u{308}rg-пароль-密码-🔑".into()).await);
    backend.close().await.unwrap();
}

#[tokio::test]
async fn injection_attempts_are_inert() {
    let (backend, database) = backend("injection");
    let admin = backend.admin().unwrap();
    for hostile in [
        "' OR 1=1 --",
        "*)(uid=*",
        "admin)(|(a=*",
        "x'; DROP TABLE mfv_users; --",
    ] {
        assert!(
            Username::new(hostile).is_err(),
            "{hostile:?} passed validation"
        );
    }
    // Values are parameters, never SQL: hostile display names and passwords are stored
    // and compared literally.
    let hostile = "' OR 1=1 --";
    admin
        .add_user(&user("mallory", hostile, Role::Viewer), &password(hostile))
        .await
        .unwrap();
    admin
        .add_user(
            &user("victim", "Victim", Role::Admin),
            &password("victim-pw"),
        )
        .await
        .unwrap();
    assert_eq!(
        backend
            .verify_password(&name("victim"), &password(hostile))
            .await
            .unwrap(),
        None
    );
    let mallory = backend
        .verify_password(&name("mallory"), &password(hostile))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mallory.display_name, hostile);
    assert_eq!(mallory.role, Role::Viewer);
    assert_eq!(backend.list_users().await.unwrap().len(), 2);

    // A row written behind the backend's back with a name it does not accept is an error,
    // never a login or a silently shortened list.
    MariaDb::shared()
        .root_sql(&format!(
            "INSERT INTO `{database}`.mfv_users (username, display_name, role, disabled, \
             password_hash) VALUES ('Robert''); --', 'x', 'admin', 0, 'x')"
        ))
        .unwrap();
    let error = backend.list_users().await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidData { .. }), "{error}");
    backend.close().await.unwrap();
}

#[tokio::test]
async fn the_schema_is_created_once_and_newer_schemas_are_refused() {
    let (backend, database) = backend("schema");
    assert_eq!(backend.list_users().await.unwrap(), []);
    let server = MariaDb::shared();
    let version = server
        .root_sql(&format!(
            "SELECT version FROM `{database}`.mfv_schema_version"
        ))
        .unwrap();
    assert_eq!(version.trim(), SCHEMA_VERSION.to_string());
    backend
        .admin()
        .unwrap()
        .add_user(&user("alice", "Alice", Role::Admin), &password("pw"))
        .await
        .unwrap();
    // A second host on the same database (here over the socket) finds the schema current.
    let socket_config =
        MySqlConfig::socket(server.socket(), &database, mariadb::USER, mariadb::PASSWORD);
    let second = MySqlBackend::new(socket_config.clone(), hasher()).unwrap();
    assert_eq!(second.list_users().await.unwrap().len(), 1);
    second.close().await.unwrap();

    server
        .root_sql(&format!(
            "UPDATE `{database}`.mfv_schema_version SET version = 99"
        ))
        .unwrap();
    let newer = MySqlBackend::new(socket_config, hasher()).unwrap();
    let error = newer.list_users().await.unwrap_err();
    assert!(
        matches!(error, BackendError::Misconfigured { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("schema version 99, newer than"),
        "{error}"
    );
    backend.close().await.unwrap();
}

#[tokio::test]
async fn check_reports_each_step() {
    let (backend, database) = backend("check");
    let admin = backend.admin().unwrap();
    admin
        .add_user(&user("alice", "Alice", Role::Admin), &password("pw"))
        .await
        .unwrap();
    let report = backend.check(&name("alice")).await;
    assert!(report.passed(), "{report}");
    let steps: Vec<&str> = report.steps.iter().map(|step| step.step).collect();
    assert_eq!(steps, ["connect", "schema", "user"]);
    assert!(
        report
            .to_string()
            .contains("  user: ok: alice (\"Alice\"), role admin"),
        "{report}"
    );

    admin.set_disabled(&name("alice"), true).await.unwrap();
    let disabled = backend.check(&name("alice")).await;
    assert!(
        matches!(&disabled.steps[2].outcome, StepOutcome::Failed(why) if why.contains("disabled")),
        "{disabled}"
    );
    let unknown = backend.check(&name("nobody1")).await;
    assert!(
        matches!(&unknown.steps[2].outcome, StepOutcome::Failed(why) if why.contains("no user nobody1")),
        "{unknown}"
    );

    let server = MariaDb::shared();
    let mut wrong_password = tcp_config(server, &database);
    wrong_password.password = "not-the-password".into();
    let wrong_password = MySqlBackend::new(wrong_password, hasher()).unwrap();
    let report = wrong_password.check(&name("alice")).await;
    assert!(
        matches!(&report.steps[0].outcome, StepOutcome::Failed(why) if why.contains("refused user mfv")),
        "{report}"
    );
    assert!(
        matches!(report.steps[1].outcome, StepOutcome::Skipped(_)),
        "{report}"
    );
    let error = wrong_password
        .verify_password(&name("alice"), &password("pw"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::Misconfigured { .. }),
        "{error}"
    );

    let missing = MySqlBackend::new(tcp_config(server, "mfv_does_not_exist"), hasher()).unwrap();
    let error = missing.list_users().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("database mfv_does_not_exist does not exist"),
        "{error}"
    );
    backend.close().await.unwrap();
}

#[tokio::test]
async fn a_server_that_stops_mid_run_fails_closed() {
    let mut server = MariaDb::start().unwrap();
    let database = server.create_database("stop").unwrap();
    let backend = MySqlBackend::new(tcp_config(&server, &database), hasher()).unwrap();
    let admin = backend.admin().unwrap();
    admin
        .add_user(&user("alice", "Alice", Role::Admin), &password("pw"))
        .await
        .unwrap();
    assert!(
        backend
            .verify_password(&name("alice"), &password("pw"))
            .await
            .unwrap()
            .is_some()
    );
    server.kill().unwrap();
    let error = backend
        .verify_password(&name("alice"), &password("pw"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Unavailable { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("mysql user backend is unavailable:"),
        "{error}"
    );
    assert!(backend.find_user(&name("alice")).await.is_err());
    assert!(matches!(
        admin.set_role(&name("alice"), Role::Viewer).await,
        Err(AdminError::Backend(BackendError::Unavailable { .. }))
    ));
    let report = backend.check(&name("alice")).await;
    assert!(
        matches!(report.steps[0].outcome, StepOutcome::Failed(_)),
        "{report}"
    );
}

#[tokio::test]
async fn a_row_deleted_and_inserted_again_inherits_no_token_or_session() {
    let (backend, database) = backend("recreated");
    let backend = Arc::new(backend);
    backend
        .admin()
        .unwrap()
        .add_user(
            &user("carol", "Carol", Role::Viewer),
            &password("carol-pw-1"),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = SqliteState::open(dir.path().join("auth.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_795_668_780)));
    let auth = Authenticator::new(backend.clone(), state, clock.clone(), AuthPolicy::default());
    let source = "192.0.2.1".parse().unwrap();
    let session = auth
        .login("carol", "carol-pw-1", None, source)
        .await
        .unwrap();
    let token = auth
        .create_api_token(
            &Actor::Local,
            &name("carol"),
            "ci",
            Role::Viewer,
            Duration::from_secs(3600),
        )
        .await
        .unwrap()
        .secret;

    // Another program replaces the row; the new one is carol again, with the same password.
    MariaDb::shared()
        .root_sql(&format!(
            "USE `{database}`;
             CREATE TABLE old_carol AS SELECT * FROM mfv_users WHERE username = 'carol';
             DELETE FROM mfv_users WHERE username = 'carol';
             INSERT INTO mfv_users (username, display_name, role, disabled, password_hash)
                 SELECT username, 'Someone Else', role, disabled, password_hash FROM old_carol;
             DROP TABLE old_carol;"
        ))
        .unwrap();
    clock.advance(AuthPolicy::default().user_recheck);
    assert!(matches!(
        auth.check_session(session.token.expose()).await,
        Err(CheckError::SessionInvalid)
    ));
    assert!(matches!(
        auth.check_api_token(token.expose()).await,
        Err(CheckError::TokenInvalid)
    ));
    assert!(auth.list_api_tokens(None).await.unwrap().is_empty());
    assert!(auth.list_sessions(None).await.unwrap().is_empty());
    // The new carol logs in on her own.
    auth.login("carol", "carol-pw-1", None, source)
        .await
        .unwrap();
    drop(auth);
    Arc::into_inner(backend).unwrap().close().await.unwrap();
}
