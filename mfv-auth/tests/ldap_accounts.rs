//! Accounts that change in the directory while the host holds their sessions and API tokens,
//! against a real private slapd per test (each test changes its directory): accounts locked
//! with `pwdAccountLockedTime` or matched by a configured disabled filter, groups with a
//! mapped name under another base, and users removed and created again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the helpers outside #[test] fns panic on failure just as the tests do"
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, Mod};
use mfv_auth::ldap::{GroupRole, LdapConfig};
use mfv_auth::{
    Actor, AuthPolicy, Authenticator, CheckError, LdapBackend, LoginError, ManualClock, Role,
    SqliteState, Timestamp, UserBackend, Username,
};
use mfv_tests::slapd::{
    self, GROUPS_DN, PEOPLE_DN, ROOT_DN, ROOT_PASSWORD, SERVICE_DN, SERVICE_PASSWORD, Slapd,
};

const ONE_HOUR: Duration = Duration::from_secs(3600);

/// The configuration for the seeded directory: each mfv-* group maps to its role by name.
fn config(slapd: &Slapd) -> LdapConfig {
    let mut config = LdapConfig::new(
        slapd.url(),
        SERVICE_DN,
        SERVICE_PASSWORD,
        PEOPLE_DN,
        GROUPS_DN,
    );
    config.group_roles = [
        ("mfv-admins", Role::Admin),
        ("mfv-operators", Role::Operator),
        ("mfv-viewers", Role::Viewer),
    ]
    .map(|(group, role)| GroupRole {
        group: group.into(),
        role,
    })
    .to_vec();
    config.timeout = Duration::from_secs(2);
    config
}

/// An authenticator over `config` with its auth database in a temp dir and a manual clock.
struct Host {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    auth: Authenticator,
}

impl Host {
    async fn new(config: LdapConfig) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let state = SqliteState::open(dir.path().join("auth.db")).await.unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp(1_795_668_780)));
        let auth = Authenticator::new(
            Arc::new(LdapBackend::new(config).unwrap()),
            state,
            clock.clone(),
            AuthPolicy::default(),
        );
        Host {
            _dir: dir,
            clock,
            auth,
        }
    }

    async fn login(&self, uid: &str) -> Result<mfv_auth::Session, LoginError> {
        let source: IpAddr = "192.0.2.1".parse().unwrap();
        self.auth
            .login(uid, &seeded_password(uid), None, source)
            .await
    }

    /// A viewer API token of `uid`, valid for an hour; returns its secret.
    async fn token(&self, uid: &str, name: &str) -> String {
        self.auth
            .create_api_token(&Actor::Local, &user(uid), name, Role::Viewer, ONE_HOUR)
            .await
            .unwrap()
            .secret
            .expose()
            .to_owned()
    }

    /// Lets the re-check interval pass, so the next use of a session or token asks the
    /// directory again.
    fn after_recheck(&self) {
        self.clock.advance(AuthPolicy::default().user_recheck);
    }

    /// After the re-check interval, `session` and the API token `token` are refused.
    async fn assert_refused_at_next_recheck(&self, session: &mfv_auth::Session, token: &str) {
        self.after_recheck();
        assert!(matches!(
            self.auth.check_session(session.token.expose()).await,
            Err(CheckError::SessionInvalid)
        ));
        assert!(matches!(
            self.auth.check_api_token(token).await,
            Err(CheckError::TokenInvalid)
        ));
    }
}

fn user(uid: &str) -> Username {
    uid.parse().unwrap()
}

fn seeded_password(uid: &str) -> String {
    slapd::users()
        .into_iter()
        .find(|user| user.uid == uid)
        .unwrap()
        .password
}

/// A connection bound as the directory administrator.
async fn as_root(slapd: &Slapd) -> Ldap {
    let (connection, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    tokio::spawn(connection.drive());
    ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap
}

/// Sets `attribute` of `uid`'s entry to `value`.
async fn set_attribute(slapd: &Slapd, uid: &str, attribute: &str, value: &str) {
    let dn = format!("uid={uid},{PEOPLE_DN}");
    as_root(slapd)
        .await
        .modify(
            &dn,
            vec![Mod::Replace(attribute, [value].into_iter().collect())],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
}

/// Adds a new person with the uid carol (and no password), as a directory administrator
/// gives a name that was freed to someone else.
async fn add_new_carol(root: &mut Ldap) {
    root.add(
        &format!("uid=carol,{PEOPLE_DN}"),
        vec![
            ("objectClass", ["inetOrgPerson"].into_iter().collect()),
            ("uid", ["carol"].into_iter().collect()),
            ("cn", ["Carol Newcomer"].into_iter().collect()),
            ("sn", ["carol"].into_iter().collect()),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
}

#[tokio::test]
async fn an_account_locked_in_the_directory_gets_no_login_and_loses_its_session_and_token() {
    let slapd = Slapd::start().unwrap();
    let host = Host::new(config(&slapd)).await;
    let session = host.login("bob").await.unwrap();
    let token = host.token("bob", "ci").await;

    // OpenLDAP's password policy marks the account locked; slapd still accepts its bind.
    set_attribute(&slapd, "bob", "pwdAccountLockedTime", "000001010000Z").await;

    let error = host.login("bob").await.unwrap_err();
    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    let bob = host.auth.find_user(&user("bob")).await.unwrap().unwrap();
    assert!(bob.disabled);
    let listed: Vec<(String, bool)> = host
        .auth
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.username.to_string(), record.disabled))
        .collect();
    assert!(listed.contains(&("bob".to_owned(), true)), "{listed:?}");
    assert!(listed.contains(&("alice".to_owned(), false)), "{listed:?}");

    host.assert_refused_at_next_recheck(&session, &token).await;
    // Others are untouched.
    host.login("alice").await.unwrap();
}

#[tokio::test]
async fn a_configured_disabled_filter_is_honoured() {
    let slapd = Slapd::start().unwrap();
    let mut config = config(&slapd);
    config.disabled_filter = "(employeeType=disabled)".into();
    let host = Host::new(config).await;
    let session = host.login("carol").await.unwrap();
    let token = host.token("carol", "ci").await;

    set_attribute(&slapd, "carol", "employeeType", "disabled").await;

    assert!(matches!(
        host.login("carol").await,
        Err(LoginError::InvalidCredentials)
    ));
    host.assert_refused_at_next_recheck(&session, &token).await;
    set_attribute(&slapd, "carol", "employeeType", "staff").await;
    host.login("carol").await.unwrap();
}

#[tokio::test]
async fn a_group_with_a_mapped_name_under_another_base_grants_nothing() {
    let slapd = Slapd::start().unwrap();
    // dave is in no group; someone creates an "mfv-admins" of their own below ou=groups.
    let mut root = as_root(&slapd).await;
    let other = format!("ou=projects,{GROUPS_DN}");
    root.add(
        &other,
        vec![
            ("objectClass", ["organizationalUnit"].into_iter().collect()),
            ("ou", ["projects"].into_iter().collect()),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let dave = format!("uid=dave,{PEOPLE_DN}");
    root.add(
        &format!("cn=mfv-admins,{other}"),
        vec![
            ("objectClass", ["groupOfNames"].into_iter().collect()),
            ("cn", ["mfv-admins"].into_iter().collect()),
            ("member", [dave.as_str()].into_iter().collect()),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();

    let backend = LdapBackend::new(config(&slapd)).unwrap();
    let password = mfv_auth::Password::new(seeded_password("dave")).unwrap();
    assert_eq!(
        backend
            .verify_password(&user("dave"), &password)
            .await
            .unwrap(),
        None
    );
    assert_eq!(backend.find_user(&user("dave")).await.unwrap(), None);
    let listed: Vec<String> = backend
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.username.to_string())
        .collect();
    assert!(!listed.contains(&"dave".to_owned()), "{listed:?}");
    // The group named in the mapping, directly under group_base, still grants its role.
    let alice = mfv_auth::Password::new(seeded_password("alice")).unwrap();
    let record = backend
        .verify_password(&user("alice"), &alice)
        .await
        .unwrap();
    assert_eq!(record.map(|record| record.role), Some(Role::Admin));
}

#[tokio::test]
async fn tokens_of_a_user_removed_from_the_directory_are_deleted_and_not_inherited() {
    let slapd = Slapd::start().unwrap();
    let host = Host::new(config(&slapd)).await;
    let carol_token = host.token("carol", "ci").await;
    let joerg_token = host.token("joerg", "ci").await;
    host.token("alice", "ci").await;

    let mut root = as_root(&slapd).await;
    for uid in ["carol", "joerg"] {
        let dn = format!("uid={uid},{PEOPLE_DN}");
        root.modify(
            &format!("cn=mfv-viewers,{GROUPS_DN}"),
            vec![Mod::Delete("member", [dn.as_str()].into_iter().collect())],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        root.delete(&dn).await.unwrap().success().unwrap();
    }
    host.after_recheck();

    // carol's token is used: it is refused and deleted.
    assert!(matches!(
        host.auth.check_api_token(&carol_token).await,
        Err(CheckError::TokenInvalid)
    ));
    // joerg's is not used: the sweep deletes it.
    assert_eq!(host.auth.remove_orphaned_tokens().await.unwrap(), 1);
    let owners: Vec<String> = host
        .auth
        .list_api_tokens(None)
        .await
        .unwrap()
        .into_iter()
        .map(|token| token.owner.to_string())
        .collect();
    assert_eq!(owners, ["alice"]);

    // Someone else gets the name carol: the old token does not work for them.
    add_new_carol(&mut root).await;
    root.modify(
        &format!("cn=mfv-viewers,{GROUPS_DN}"),
        vec![Mod::Add(
            "member",
            [format!("uid=carol,{PEOPLE_DN}").as_str()]
                .into_iter()
                .collect(),
        )],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    assert!(host.auth.find_user(&user("carol")).await.unwrap().is_some());
    for token in [&carol_token, &joerg_token] {
        assert!(matches!(
            host.auth.check_api_token(token).await,
            Err(CheckError::TokenInvalid)
        ));
    }
}

#[tokio::test]
async fn an_entry_deleted_and_added_again_with_the_same_uid_inherits_no_token_or_session() {
    let slapd = Slapd::start().unwrap();
    let host = Host::new(config(&slapd)).await;
    let session = host.login("carol").await.unwrap();
    let token = host.token("carol", "ci").await;

    // Replaced before any re-check: the group still lists the DN, so the new entry is
    // carol, a viewer, with a new entryUUID.
    let mut root = as_root(&slapd).await;
    root.delete(&format!("uid=carol,{PEOPLE_DN}"))
        .await
        .unwrap()
        .success()
        .unwrap();
    add_new_carol(&mut root).await;
    let carol = host.auth.find_user(&user("carol")).await.unwrap().unwrap();
    assert_eq!((carol.role, carol.disabled), (Role::Viewer, false));

    host.assert_refused_at_next_recheck(&session, &token).await;
    assert!(
        host.auth
            .list_api_tokens(Some(&user("carol")))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        host.auth
            .list_sessions(Some(&user("carol")))
            .await
            .unwrap()
            .is_empty()
    );
}
