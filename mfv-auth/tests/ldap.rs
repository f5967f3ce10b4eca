//! The LDAP user backend against a real private slapd: logins, role mapping from groups,
//! injection attempts, Unicode, long and empty passwords, TLS errors, `check` reports and a
//! server that stops mid-run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the helpers outside #[test] fns panic on failure just as the tests do"
)]

use std::time::Duration;

use ldap3::{LdapConnAsync, Scope};
use mfv_auth::ldap::{GroupRole, LdapConfig, MemberValue, escape_filter_value};
use mfv_auth::{
    BackendError, LdapBackend, Password, PasswordError, Role, StepOutcome, UserBackend, Username,
};
use mfv_tests::slapd::{self, GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd};

/// The configuration for the seeded directory: each mfv-* group maps to its role by `cn`.
fn config(url: &str) -> LdapConfig {
    let mut config = LdapConfig::new(url, SERVICE_DN, SERVICE_PASSWORD, PEOPLE_DN, GROUPS_DN);
    config.group_roles = vec![
        GroupRole {
            group: "mfv-admins".into(),
            role: Role::Admin,
        },
        GroupRole {
            group: "mfv-operators".into(),
            role: Role::Operator,
        },
        GroupRole {
            group: "mfv-viewers".into(),
            role: Role::Viewer,
        },
    ];
    config.timeout = Duration::from_secs(2);
    config
}

fn backend() -> LdapBackend {
    LdapBackend::new(config(&Slapd::shared().url())).unwrap()
}

fn name(text: &str) -> Username {
    text.parse().unwrap()
}

fn password(text: &str) -> Password {
    Password::new(text).unwrap()
}

/// The seeded password of `uid`.
fn seeded_password(uid: &str) -> Password {
    let user = slapd::users()
        .into_iter()
        .find(|user| user.uid == uid)
        .unwrap();
    Password::new(user.password).unwrap()
}

#[tokio::test]
async fn login_maps_groups_to_the_highest_role() {
    let backend = backend();
    assert_eq!(backend.name(), "ldap");
    for (uid, role, display_name) in [
        ("alice", Role::Admin, "Alice Admin"),
        ("bob", Role::Operator, "Bob Operator"),
        ("carol", Role::Viewer, "Carol Viewer"),
        ("erin", Role::Operator, "Erin Longpass"),
        ("joerg", Role::Viewer, "Jörg Ødegård 山田 🚀"),
    ] {
        let record = backend
            .verify_password(&name(uid), &seeded_password(uid))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{uid} was refused"));
        assert_eq!(record.username.as_str(), uid);
        assert_eq!(record.role, role, "{uid}");
        assert_eq!(record.display_name, display_name);
        assert!(!record.disabled);
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unmapped_user_get_no_login() {
    let backend = backend();
    let refused = [
        ("alice", password("alice-password-2")),
        ("alice", seeded_password("bob")),
        ("nosuchuser", password("alice-password-1")),
        // dave's password is right but he is in no mapped group.
        ("dave", seeded_password("dave")),
        // The same letters with ö decomposed (o + U+0308): a different password.
        ("joerg", password("Jo\u{308}rg-пароль-密码-🔑")),
    ];
    for (uid, password) in refused {
        assert_eq!(
            backend
                .verify_password(&name(uid), &password)
                .await
                .unwrap(),
            None,
            "{uid}"
        );
    }
}

#[tokio::test]
async fn four_kib_passwords_work_and_longer_or_empty_ones_are_refused() {
    let longest = slapd::longest_password();
    assert_eq!(longest.len(), 4096);
    let record = backend()
        .verify_password(&name("erin"), &password(&longest))
        .await
        .unwrap();
    assert_eq!(record.map(|record| record.role), Some(Role::Operator));
    let mut wrong = longest.clone();
    wrong.pop();
    wrong.push('y');
    assert_eq!(
        backend()
            .verify_password(&name("erin"), &password(&wrong))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        Password::new(longest + "x").unwrap_err(),
        PasswordError::TooLong { len: 4097 }
    );
    assert_eq!(Password::new("").unwrap_err(), PasswordError::Empty);
}

/// Why empty passwords must never reach the server: a simple bind with a DN and an empty
/// password is an "unauthenticated bind", which slapd answers with success.
#[tokio::test]
async fn the_directory_accepts_an_empty_password_bind_which_password_prevents() {
    let (connection, mut ldap) = LdapConnAsync::new(&Slapd::shared().url()).await.unwrap();
    tokio::spawn(connection.drive());
    let result = ldap
        .simple_bind(&format!("uid=alice,{PEOPLE_DN}"), "")
        .await
        .unwrap();
    assert_eq!(
        result.rc, 0,
        "slapd refused an unauthenticated bind: {result:?}"
    );
    assert!(Password::new("").is_err());
}

#[tokio::test]
async fn groups_map_by_dn_without_regard_to_case_and_spaces() {
    let mut config = config(&Slapd::shared().url());
    config.group_roles = vec![GroupRole {
        group: format!("CN=MFV-Operators, {}", GROUPS_DN.to_uppercase()),
        role: Role::Operator,
    }];
    let backend = LdapBackend::new(config).unwrap();
    let bob = backend
        .verify_password(&name("bob"), &seeded_password("bob"))
        .await
        .unwrap();
    assert_eq!(bob.map(|record| record.role), Some(Role::Operator));
    // alice is only in groups this configuration does not map.
    assert_eq!(
        backend
            .verify_password(&name("alice"), &seeded_password("alice"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn posix_groups_listing_user_names_map_with_member_value_username() {
    let mut config = config(&Slapd::shared().url());
    config.group_filter = "(objectClass=posixGroup)".into();
    config.member_attribute = "memberUid".into();
    config.member_value = MemberValue::Username;
    config.group_roles = vec![GroupRole {
        group: slapd::POSIX_GROUP.into(),
        role: Role::Operator,
    }];
    let backend = LdapBackend::new(config).unwrap();
    let joerg = backend
        .verify_password(&name("joerg"), &seeded_password("joerg"))
        .await
        .unwrap();
    assert_eq!(joerg.map(|record| record.role), Some(Role::Operator));
    assert_eq!(
        backend
            .verify_password(&name("alice"), &seeded_password("alice"))
            .await
            .unwrap(),
        None,
        "alice is in no posixGroup"
    );
    let listed: Vec<String> = backend
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.username.to_string())
        .collect();
    assert_eq!(listed, ["bob", "joerg"]);
}

#[tokio::test]
async fn find_and_list_users() {
    let backend = backend();
    let carol = backend.find_user(&name("carol")).await.unwrap().unwrap();
    assert_eq!(carol.role, Role::Viewer);
    assert_eq!(carol.display_name, "Carol Viewer");
    assert_eq!(backend.find_user(&name("nosuchuser")).await.unwrap(), None);
    assert_eq!(backend.find_user(&name("dave")).await.unwrap(), None);
    let listed: Vec<(String, Role)> = backend
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.username.to_string(), record.role))
        .collect();
    let expected = [
        ("alice", Role::Admin),
        ("bob", Role::Operator),
        ("carol", Role::Viewer),
        ("erin", Role::Operator),
        ("joerg", Role::Viewer),
    ]
    .map(|(uid, role)| (uid.to_owned(), role));
    assert_eq!(listed, expected);
    assert!(
        backend.admin().is_none(),
        "LDAP users are managed in the directory"
    );
}

#[tokio::test]
async fn hostile_names_are_refused_and_escaped_filters_match_nothing() {
    let hostile = [
        "*)(uid=*",
        "admin)(|(a=*",
        "' OR 1=1 --",
        "*",
        "alice)(uid=*",
    ];
    for text in hostile {
        assert!(Username::new(text).is_err(), "{text:?} passed validation");
    }
    // Below the name validation, the escaping alone must hold: search with each hostile
    // value as the backend would, and with it pasted in raw to show what escaping prevents.
    let config = config(&Slapd::shared().url());
    let (connection, mut ldap) = LdapConnAsync::new(&Slapd::shared().url()).await.unwrap();
    tokio::spawn(connection.drive());
    ldap.simple_bind(SERVICE_DN, SERVICE_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    for text in hostile {
        let escaped = config.user_filter_for(text);
        let (entries, _) = ldap
            .search(PEOPLE_DN, Scope::Subtree, &escaped, vec!["uid"])
            .await
            .unwrap()
            .success()
            .unwrap();
        assert!(
            entries.is_empty(),
            "{escaped} found {} entries",
            entries.len()
        );
        assert!(!escaped.contains(&format!("({text}")), "{escaped}");
    }
    let raw = config.user_filter.replace("{username}", "*)(uid=*");
    let (entries, _) = ldap
        .search(PEOPLE_DN, Scope::Subtree, &raw, vec!["uid"])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(
        entries.len(),
        slapd::users().len(),
        "unescaped {raw} matches everyone"
    );
    assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
}

#[tokio::test]
async fn check_reports_each_step() {
    let backend = backend();
    let report = backend.check(&name("alice")).await;
    assert!(report.passed(), "{report}");
    let steps: Vec<&str> = report.steps.iter().map(|step| step.step).collect();
    assert_eq!(steps, ["connect", "bind", "search", "group"]);
    let text = report.to_string();
    assert!(
        text.contains("  search: ok: found uid=alice,ou=people,dc=example,dc=test"),
        "{text}"
    );
    assert!(
        text.contains("  group: ok: role admin from groups:"),
        "{text}"
    );

    let dave = backend.check(&name("dave")).await;
    assert!(!dave.passed());
    assert!(
        matches!(&dave.steps[3].outcome, StepOutcome::Failed(why) if why.contains("is in no group")),
        "{dave}"
    );

    let unknown = backend.check(&name("nosuchuser")).await;
    assert!(
        matches!(&unknown.steps[2].outcome, StepOutcome::Failed(why) if why.contains("no entry matches")),
        "{unknown}"
    );
    assert!(matches!(unknown.steps[3].outcome, StepOutcome::Skipped(_)));

    let mut wrong_service = config(&Slapd::shared().url());
    wrong_service.bind_password = "not-the-password".into();
    let report = LdapBackend::new(wrong_service)
        .unwrap()
        .check(&name("alice"))
        .await;
    assert!(
        matches!(&report.steps[1].outcome, StepOutcome::Failed(why) if why.contains("refused the service account")),
        "{report}"
    );
    assert_eq!(report.steps.len(), 4);
}

#[tokio::test]
async fn a_wrong_service_password_or_base_is_an_error_not_a_refusal() {
    let mut wrong_service = config(&Slapd::shared().url());
    wrong_service.bind_password = "not-the-password".into();
    let error = LdapBackend::new(wrong_service)
        .unwrap()
        .verify_password(&name("alice"), &seeded_password("alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackendError::Misconfigured { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("invalid credentials"), "{error}");

    let mut wrong_base = config(&Slapd::shared().url());
    wrong_base.user_base_dn = "ou=nowhere,dc=example,dc=test".into();
    let error = LdapBackend::new(wrong_base)
        .unwrap()
        .verify_password(&name("alice"), &seeded_password("alice"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("ou=nowhere,dc=example,dc=test does not exist"),
        "{error}"
    );

    let mut ambiguous = config(&Slapd::shared().url());
    ambiguous.user_filter = "(|(uid={username})(uid=bob))".into();
    let error = LdapBackend::new(ambiguous)
        .unwrap()
        .verify_password(&name("alice"), &seeded_password("alice"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("matches 2 entries"), "{error}");
}

#[tokio::test]
async fn ldaps_and_starttls_work_with_the_configured_ca() {
    let slapd = Slapd::shared();
    let mut ldaps = config(&slapd.ldaps_url());
    ldaps.ca_certificate = Some(slapd.ca_certificate());
    let mut starttls = config(&slapd.url());
    starttls.starttls = true;
    starttls.ca_certificate = Some(slapd.ca_certificate());
    for config in [ldaps, starttls] {
        let backend = LdapBackend::new(config).unwrap();
        let bob = backend
            .verify_password(&name("bob"), &seeded_password("bob"))
            .await
            .unwrap();
        assert_eq!(bob.map(|record| record.role), Some(Role::Operator));
        let report = backend.check(&name("bob")).await;
        assert!(report.passed(), "{report}");
        assert!(report.to_string().contains(" with "), "{report}");
    }
}

#[tokio::test]
async fn tls_fails_closed_on_an_unknown_ca_or_a_plain_port() {
    let slapd = Slapd::shared();
    // The test CA is not among the system's CAs.
    let mut starttls = config(&slapd.url());
    starttls.starttls = true;
    for config in [config(&slapd.ldaps_url()), starttls] {
        let error = LdapBackend::new(config)
            .unwrap()
            .verify_password(&name("alice"), &seeded_password("alice"))
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::Unavailable { .. }), "{error}");
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    }

    let mut plain_port = config(&format!("ldaps://127.0.0.1:{}", slapd.port()));
    plain_port.ca_certificate = Some(slapd.ca_certificate());
    let error = LdapBackend::new(plain_port)
        .unwrap()
        .verify_password(&name("alice"), &seeded_password("alice"))
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Unavailable { .. }), "{error}");
    assert!(
        error.to_string().contains("is the port an LDAPS port"),
        "{error}"
    );

    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "not a certificate\n").unwrap();
    let mut not_a_certificate = config(&slapd.ldaps_url());
    not_a_certificate.ca_certificate = Some(garbage.path().to_owned());
    let error = LdapBackend::new(not_a_certificate).unwrap_err();
    assert!(
        error.to_string().contains("holds no certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_stops_mid_run_fails_closed() {
    let mut slapd = Slapd::start().unwrap();
    let backend = LdapBackend::new(config(&slapd.url())).unwrap();
    let alice = name("alice");
    let alice_password = seeded_password("alice");
    assert!(
        backend
            .verify_password(&alice, &alice_password)
            .await
            .unwrap()
            .is_some()
    );
    slapd.kill().unwrap();
    let error = backend
        .verify_password(&alice, &alice_password)
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Unavailable { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "ldap user backend is unavailable: cannot connect to {}",
            slapd.url()
        )),
        "{error}"
    );
    assert!(backend.find_user(&alice).await.is_err());
    assert!(backend.list_users().await.is_err());
    let report = backend.check(&alice).await;
    assert!(
        matches!(report.steps[0].outcome, StepOutcome::Failed(_)),
        "{report}"
    );
}
