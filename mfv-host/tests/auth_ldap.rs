//! A configuration file's `[auth.ldap]` against a real private slapd: StartTLS with the CA on
//! the config volume, groups under their own base, and roles from `[auth.ldap.group_roles]`,
//! through [`mfv_host::auth`] the way PID 1 and the `mfv` command open it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use mfv_auth::{Authenticator, LoginError, Role};
use mfv_host::auth::{AuthSettings, BackendSettings, MissingDatabase};
use mfv_tests::slapd::{self, GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd};

/// Writes `mfv.toml` with an `[auth.ldap]` section for `slapd` and its files on `volume`.
/// alice is in mfv-admins and mfv-viewers, bob in mfv-operators, carol in mfv-viewers.
fn write_config(volume: &Path, slapd: &Slapd, tls: &str) -> std::path::PathBuf {
    std::fs::write(volume.join("ldap-bind.pw"), format!("{SERVICE_PASSWORD}\n")).unwrap();
    std::fs::create_dir(volume.join("tls")).unwrap();
    std::fs::copy(slapd.ca_certificate(), volume.join("tls/ldap-ca.pem")).unwrap();
    let config = volume.join("mfv.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n\n[host]\nhostname = \"node1\"\n\n[auth]\nbackend = \"ldap\"\n\n\
             [auth.ldap]\nurl = \"{url}\"\n{tls}\
             base_dn = \"{PEOPLE_DN}\"\ngroup_base = \"{GROUPS_DN}\"\n\
             bind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"ldap-bind.pw\"\n\
             user_filter = \"(&(objectClass=inetOrgPerson)(uid={{username}}))\"\n\n\
             [auth.ldap.group_roles]\n\
             \"cn=mfv-operators,{GROUPS_DN}\" = \"admin\"\n\
             mfv-viewers = \"viewer\"\n",
            url = slapd.url(),
        ),
    )
    .unwrap();
    config
}

fn password(uid: &str) -> String {
    slapd::users()
        .into_iter()
        .find(|user| user.uid == uid)
        .unwrap()
        .password
}

async fn login(authenticator: &Authenticator, uid: &str) -> Result<Role, LoginError> {
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    authenticator
        .login(uid, &password(uid), None, source)
        .await
        .map(|session| session.info.role)
}

#[tokio::test]
async fn users_log_in_over_starttls_with_roles_from_the_configured_groups() {
    let slapd = Slapd::shared();
    let volume = tempfile::tempdir().unwrap();
    let config = write_config(
        volume.path(),
        slapd,
        "starttls = true\nca_certificate = \"tls/ldap-ca.pem\"\n",
    );
    let settings = AuthSettings::load(&config).unwrap();
    let resolved = settings.resolve().unwrap();
    assert_eq!(resolved.database, volume.path().join("users.sqlite"));
    let BackendSettings::Ldap(ldap) = &resolved.backend else {
        panic!("not ldap: {:?}", resolved.backend);
    };
    assert!(ldap.starttls);
    assert_eq!(
        ldap.ca_certificate.as_deref(),
        Some(volume.path().join("tls/ldap-ca.pem").as_path())
    );
    assert_eq!(ldap.group_base_dn, GROUPS_DN);

    let authenticator = resolved.open(MissingDatabase::Create).await.unwrap();
    assert_eq!(authenticator.backend().name(), "ldap");
    // The configured mapping, not the default one: mfv-operators grants admin here, and
    // mfv-admins nothing, so alice is only a viewer.
    assert_eq!(login(&authenticator, "bob").await.unwrap(), Role::Admin);
    assert_eq!(login(&authenticator, "alice").await.unwrap(), Role::Viewer);
    assert_eq!(login(&authenticator, "carol").await.unwrap(), Role::Viewer);
    assert!(matches!(
        login(&authenticator, "dave").await,
        Err(LoginError::InvalidCredentials)
    ));
    let report = authenticator.check_backend(&"bob".parse().unwrap()).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn starttls_without_the_configured_ca_fails_closed() {
    let slapd = Slapd::shared();
    let volume = tempfile::tempdir().unwrap();
    // StartTLS against the system's CAs, which never signed the test server's certificate.
    let config = write_config(volume.path(), slapd, "starttls = true\n");
    let authenticator = AuthSettings::load(&config)
        .unwrap()
        .open(MissingDatabase::Create)
        .await
        .unwrap();
    let error = login(&authenticator, "bob").await.unwrap_err();
    let LoginError::BackendUnavailable(cause) = &error else {
        panic!("expected the backend to be unavailable: {error}");
    };
    assert!(
        cause
            .to_string()
            .contains("is the server's certificate signed by the configured CA?"),
        "{cause}"
    );
}
