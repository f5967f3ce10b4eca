//! Tests of the auth settings: every resolution rule and error, on configurations written as
//! text and password files in a temp dir standing for the config volume.

use std::net::{IpAddr, Ipv4Addr};

use mfv_auth::mysql::MySqlAddress;
use mfv_config::schema::parse_config;

use super::*;

/// A config volume in a temp dir.
struct Volume {
    dir: tempfile::TempDir,
}

impl Volume {
    fn new() -> Volume {
        Volume {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` on the volume and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The settings of a configuration whose `[auth]` part is `auth`, on this volume.
    fn settings(&self, auth: &str) -> AuthSettings {
        let text = format!("version = 1\n[host]\nhostname = \"node1\"\n{auth}");
        let config = parse_config(&text).unwrap_or_else(|errors| panic!("{errors}\n{text}"));
        AuthSettings::from_config(config.auth, self.path())
    }
}

fn ldap(settings: &AuthSettings) -> LdapConfig {
    match settings.resolve().unwrap().backend {
        BackendSettings::Ldap(config) => *config,
        other => panic!("not ldap: {other:?}"),
    }
}

fn mysql(settings: &AuthSettings) -> MySqlConfig {
    match settings.resolve().unwrap().backend {
        BackendSettings::Mysql(config) => config,
        other => panic!("not mysql: {other:?}"),
    }
}

fn error(settings: &AuthSettings) -> String {
    let error = settings.resolve().unwrap_err();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn roles(config: &LdapConfig) -> Vec<(&str, Role)> {
    config
        .group_roles
        .iter()
        .map(|mapping| (mapping.group.as_str(), mapping.role))
        .collect()
}

/// The ldap backend with `given` and no configuration.
fn ldap_alone(given: LdapOverrides) -> AuthSettings {
    AuthSettings::new().with_overrides(AuthOverrides {
        backend: Some(AuthBackend::Ldap),
        ldap: given,
        ..AuthOverrides::default()
    })
}

/// The mysql backend with `given` and no configuration.
fn mysql_alone(given: MysqlOverrides) -> AuthSettings {
    AuthSettings::new().with_overrides(AuthOverrides {
        backend: Some(AuthBackend::Mysql),
        mysql: given,
        ..AuthOverrides::default()
    })
}

fn overrides(ldap: LdapOverrides, mysql: MysqlOverrides) -> AuthOverrides {
    AuthOverrides {
        ldap,
        mysql,
        ..AuthOverrides::default()
    }
}

#[test]
fn every_config_role_is_the_access_role_of_the_same_name() {
    for config_role in AuthRole::ALL {
        assert_eq!(role(config_role).as_str(), config_role.as_str());
    }
    // Every access role has a spelling in the file: a new role does not compile here until
    // the configuration can name it.
    let spelling = |access: Role| match access {
        Role::Viewer => AuthRole::Viewer,
        Role::Operator => AuthRole::Operator,
        Role::Admin => AuthRole::Admin,
    };
    for access in Role::ALL {
        assert_eq!(role(spelling(access)), access);
        assert_eq!(spelling(access).as_str(), access.as_str());
    }
    assert_eq!(Role::ALL.len(), AuthRole::ALL.len());
}

#[test]
fn without_a_configuration_users_are_in_the_default_database() {
    let resolved = AuthSettings::new().resolve().unwrap();
    assert_eq!(resolved.database, PathBuf::from(DEFAULT_AUTH_DB));
    assert!(matches!(resolved.backend, BackendSettings::Sqlite));

    let settings = AuthSettings::new().with_overrides(AuthOverrides {
        database: Some("/tmp/x.sqlite".into()),
        ..AuthOverrides::default()
    });
    assert_eq!(
        settings.resolve().unwrap().database,
        PathBuf::from("/tmp/x.sqlite")
    );
}

#[test]
fn the_database_is_on_the_config_volume() {
    let volume = Volume::new();
    let database = |settings: AuthSettings| settings.resolve().unwrap().database;
    assert_eq!(
        database(volume.settings("")),
        volume.path().join("users.sqlite")
    );
    assert_eq!(
        database(volume.settings("[auth.sqlite]\npath = \"auth/users.db\"\n")),
        volume.path().join("auth/users.db")
    );
    assert_eq!(
        database(volume.settings("[auth.sqlite]\npath = \"/srv/users.db\"\n")),
        PathBuf::from("/srv/users.db")
    );
    let overridden = volume.settings("").with_overrides(AuthOverrides {
        database: Some("elsewhere.sqlite".into()),
        ..AuthOverrides::default()
    });
    assert_eq!(database(overridden), PathBuf::from("elsewhere.sqlite"));
}

#[test]
fn the_backend_is_the_override_else_the_configuration_else_sqlite() {
    let volume = Volume::new();
    let mysql_section = "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db\"\ndatabase = \"mfv\"\nuser = \"mfv\"\ntls = true\n";
    assert!(matches!(
        volume.settings(mysql_section).resolve().unwrap().backend,
        BackendSettings::Mysql(_)
    ));
    let settings = volume
        .settings(mysql_section)
        .with_overrides(AuthOverrides {
            backend: Some(AuthBackend::Sqlite),
            ..AuthOverrides::default()
        });
    assert!(matches!(
        settings.resolve().unwrap().backend,
        BackendSettings::Sqlite
    ));
}

#[test]
fn ldap_settings_from_overrides_alone_get_the_defaults() {
    let volume = Volume::new();
    let password_file = volume.write("bind.pw", "service-secret\nsecond line\n");
    let settings = ldap_alone(LdapOverrides {
        url: Some("ldaps://ldap.example.org".into()),
        base_dn: Some("ou=people,dc=example,dc=org".into()),
        bind_dn: Some("cn=svc,dc=example,dc=org".into()),
        bind_password_file: Some(password_file),
        ca_certificate: Some("/etc/ssl/ca.pem".into()),
        ..LdapOverrides::default()
    });
    let config = ldap(&settings);
    assert_eq!(config.url, "ldaps://ldap.example.org");
    assert_eq!(config.bind_dn, "cn=svc,dc=example,dc=org");
    assert_eq!(config.bind_password, "service-secret");
    assert_eq!(config.user_base_dn, "ou=people,dc=example,dc=org");
    assert_eq!(config.group_base_dn, "dc=example,dc=org");
    assert_eq!(config.user_filter, mfv_auth::ldap::DEFAULT_USER_FILTER);
    assert!(!config.starttls);
    assert_eq!(
        config.ca_certificate,
        Some(PathBuf::from("/etc/ssl/ca.pem"))
    );
    let defaults: Vec<(&str, Role)> = DEFAULT_LDAP_GROUP_ROLES
        .iter()
        .map(|&(group, config_role)| (group, role(config_role)))
        .collect();
    let mut mapped = roles(&config);
    mapped.sort_by_key(|(_, role)| std::cmp::Reverse(*role));
    assert_eq!(mapped, defaults);
    assert_eq!(
        mapped,
        [
            ("mfv-admins", Role::Admin),
            ("mfv-operators", Role::Operator),
            ("mfv-viewers", Role::Viewer)
        ]
    );
}

#[test]
fn ldap_settings_from_the_configuration_have_their_files_on_the_volume() {
    let volume = Volume::new();
    volume.write("ldap.pw", "service-secret\n");
    let section = "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldap://ldap.example.org\"\n\
                   base_dn = \"ou=people,dc=example,dc=org\"\nbind_dn = \"cn=svc,dc=example,dc=org\"\n\
                   bind_password_file = \"ldap.pw\"\nstarttls = true\nca_certificate = \"tls/ca.pem\"\n\
                   group_base = \"ou=groups,dc=example,dc=org\"\n\
                   [auth.ldap.group_roles]\n\"cn=ops,ou=groups,dc=example,dc=org\" = \"operator\"\nstaff = \"viewer\"\n";
    let config = ldap(&volume.settings(section));
    assert_eq!(config.url, "ldap://ldap.example.org");
    assert_eq!(config.bind_password, "service-secret");
    assert!(config.starttls);
    assert_eq!(
        config.ca_certificate,
        Some(volume.path().join("tls/ca.pem"))
    );
    assert_eq!(config.group_base_dn, "ou=groups,dc=example,dc=org");
    // The section's filter, with its own default.
    assert_eq!(config.user_filter, "(uid={username})");
    assert_eq!(
        roles(&config),
        [
            ("cn=ops,ou=groups,dc=example,dc=org", Role::Operator),
            ("staff", Role::Viewer)
        ]
    );

    // An anonymous search without group settings: the defaults of the section.
    let config = ldap(&volume.settings(
        "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldaps://h\"\nbase_dn = \"ou=p,dc=org\"\n",
    ));
    assert_eq!(config.bind_dn, "");
    assert_eq!(config.bind_password, "");
    assert_eq!(config.group_base_dn, "dc=org");
    assert_eq!(roles(&config).len(), DEFAULT_LDAP_GROUP_ROLES.len());
    assert_eq!(config.ca_certificate, None);
}

#[test]
fn ldap_overrides_win_over_the_configuration() {
    let volume = Volume::new();
    let section = "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldap://ldap.example.org\"\n\
                   base_dn = \"ou=people,dc=example,dc=org\"\nca_certificate = \"ca.pem\"\nstarttls = true\n\
                   [auth.ldap.group_roles]\nstaff = \"viewer\"\n";
    let given = LdapOverrides {
        url: Some("ldap://other".into()),
        base_dn: Some("ou=staff,o=other".into()),
        user_filter: Some("(cn={username})".into()),
        ca_certificate: Some("/etc/other-ca.pem".into()),
        starttls: Some(false),
        group_roles: Some(vec![GroupRole {
            group: "root-group".into(),
            role: Role::Admin,
        }]),
        ..LdapOverrides::default()
    };
    let settings = volume
        .settings(section)
        .with_overrides(overrides(given, MysqlOverrides::default()));
    let config = ldap(&settings);
    assert_eq!(config.url, "ldap://other");
    assert_eq!(config.user_base_dn, "ou=staff,o=other");
    // Without group_base anywhere, the groups are under the parent of the base in effect.
    assert_eq!(config.group_base_dn, "o=other");
    assert_eq!(config.user_filter, "(cn={username})");
    assert_eq!(
        config.ca_certificate,
        Some(PathBuf::from("/etc/other-ca.pem"))
    );
    assert!(!config.starttls);
    assert_eq!(roles(&config), [("root-group", Role::Admin)]);

    // The section's group_base stays when only the user base is overridden.
    let settings = volume
        .settings(&section.replace(
            "starttls = true\n",
            "starttls = true\ngroup_base = \"ou=groups,dc=example,dc=org\"\n",
        ))
        .with_overrides(overrides(
            LdapOverrides {
                base_dn: Some("ou=staff,o=other".into()),
                group_base: None,
                ..LdapOverrides::default()
            },
            MysqlOverrides::default(),
        ));
    assert_eq!(ldap(&settings).group_base_dn, "ou=groups,dc=example,dc=org");
    let settings = settings.with_overrides(overrides(
        LdapOverrides {
            group_base: Some("ou=teams,o=other".into()),
            ..LdapOverrides::default()
        },
        MysqlOverrides::default(),
    ));
    assert_eq!(ldap(&settings).group_base_dn, "ou=teams,o=other");
}

#[test]
fn incomplete_ldap_settings_name_what_is_missing() {
    // Each step gives what the one before missed.
    let mut given = LdapOverrides::default();
    let check = |given: &LdapOverrides, expected: &str| {
        assert_eq!(error(&ldap_alone(given.clone())), expected);
    };
    check(&given, "the ldap backend needs url in [auth.ldap]");
    given.url = Some("ldap://h".into());
    check(&given, "the ldap backend needs base_dn in [auth.ldap]");
    given.base_dn = Some("dc=org".into());
    check(
        &given,
        "the user base \"dc=org\" has no parent to search groups under: set group_base in [auth.ldap]",
    );
    // A base without a parent is fine with a group base.
    given.group_base = Some("ou=groups,dc=org".into());
    assert_eq!(
        ldap(&ldap_alone(given.clone())).group_base_dn,
        "ou=groups,dc=org"
    );
    given.bind_dn = Some("cn=svc,dc=org".into());
    check(
        &given,
        "the LDAP service account cn=svc,dc=org needs bind_password_file in [auth.ldap]",
    );
    given.bind_password_file = Some("/nonexistent/pw".into());
    check(
        &given,
        "cannot read the password file /nonexistent/pw: No such file or directory (os error 2)",
    );
}

#[test]
fn a_password_file_on_the_volume_that_is_missing_is_named() {
    let volume = Volume::new();
    let settings = volume.settings(
        "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db\"\ndatabase = \"mfv\"\n\
         user = \"mfv\"\npassword_file = \"secrets/db.pw\"\ntls = true\n",
    );
    assert_eq!(
        error(&settings),
        format!(
            "cannot read the password file {}: No such file or directory (os error 2)",
            volume.path().join("secrets/db.pw").display()
        )
    );
}

#[test]
fn mysql_settings_from_the_configuration_and_overrides() {
    let volume = Volume::new();
    volume.write("db.pw", "db-secret\n");
    let section = "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db.example.org\"\n\
                   database = \"mfv\"\nuser = \"mfv\"\npassword_file = \"db.pw\"\ntls = true\n";
    let config = mysql(&volume.settings(section));
    assert_eq!(config.password, "db-secret");
    assert_eq!(config.database, "mfv");
    assert_eq!(config.user, "mfv");
    assert_eq!(
        config.address,
        MySqlAddress::Tcp {
            host: "db.example.org".into(),
            port: 3306
        }
    );

    let other_password = volume.write("other.pw", "other-secret");
    let given = MysqlOverrides {
        host: Some("127.0.0.1".into()),
        port: Some(3307),
        database: Some("mfv_test".into()),
        user: Some("tester".into()),
        password_file: Some(other_password),
        socket: None,
        tls: Some(true),
        ca_certificate: Some("/etc/ssl/db-ca.pem".into()),
    };
    let config = mysql(
        &volume
            .settings(section)
            .with_overrides(overrides(LdapOverrides::default(), given.clone())),
    );
    assert_eq!(config.password, "other-secret");
    assert_eq!(config.database, "mfv_test");
    assert_eq!(config.user, "tester");
    assert!(config.tls);
    assert_eq!(
        config.ca_certificate.as_deref(),
        Some(std::path::Path::new("/etc/ssl/db-ca.pem"))
    );
    assert_eq!(
        config.address,
        MySqlAddress::Tcp {
            host: "127.0.0.1".into(),
            port: 3307
        }
    );

    // A socket needs no host, and replaces the section's.
    let socket = MysqlOverrides {
        socket: Some("/run/mysqld/mysqld.sock".into()),
        ..given
    };
    let config = mysql(
        &volume
            .settings(section)
            .with_overrides(overrides(LdapOverrides::default(), socket)),
    );
    assert_eq!(
        config.address,
        MySqlAddress::Socket("/run/mysqld/mysqld.sock".into())
    );
}

#[test]
fn incomplete_mysql_settings_name_what_is_missing() {
    let mut given = MysqlOverrides::default();
    let check = |given: &MysqlOverrides, expected: &str| {
        assert_eq!(error(&mysql_alone(given.clone())), expected);
    };
    check(&given, "the mysql backend needs database in [auth.mysql]");
    given.database = Some("mfv".into());
    check(&given, "the mysql backend needs user in [auth.mysql]");
    given.user = Some("mfv".into());
    check(&given, "the mysql backend needs host in [auth.mysql]");
    given.socket = Some("/run/mysqld/mysqld.sock".into());
    assert_eq!(mysql(&mysql_alone(given)).password, "");
}

#[test]
fn settings_are_loaded_from_a_config_file_on_its_volume() {
    let volume = Volume::new();
    let file = volume.write(
        "mfv.toml",
        "version = 1\n[host]\nhostname = \"node1\"\n[auth.sqlite]\npath = \"auth.db\"\n",
    );
    let settings = AuthSettings::load(&file).unwrap();
    assert_eq!(
        settings.resolve().unwrap().database,
        volume.path().join("auth.db")
    );
    let missing = volume.path().join("missing.toml");
    let error = AuthSettings::load(&missing).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot read {}", missing.display())
    );
    let invalid = volume.write("bad.toml", "version = 1\n");
    assert!(matches!(
        AuthSettings::load(&invalid),
        Err(LoadError::Invalid { .. })
    ));
}

#[tokio::test]
async fn a_missing_database_is_created_only_when_asked() {
    let volume = Volume::new();
    let database = volume.path().join("var/lib/mfv/auth.sqlite");
    let settings = AuthSettings::new().with_overrides(AuthOverrides {
        database: Some(database.clone()),
        ..AuthOverrides::default()
    });
    let error = settings.open(MissingDatabase::Refuse).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no auth database at {}", database.display())
    );
    assert!(!database.exists());

    let authenticator = settings.open(MissingDatabase::Create).await.unwrap();
    assert_eq!(authenticator.backend().name(), "sqlite");
    assert!(database.exists());
    let record = mfv_auth::UserRecord {
        username: "alice".parse().unwrap(),
        display_name: String::new(),
        role: Role::Admin,
        disabled: false,
        account_id: None,
    };
    let password = mfv_auth::Password::new("alice-password").unwrap();
    authenticator
        .add_user(&mfv_auth::Actor::Local, &record, &password)
        .await
        .unwrap();
    let reopened = settings.open(MissingDatabase::Refuse).await.unwrap();
    let session = reopened
        .login(
            "alice",
            "alice-password",
            None,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await
        .unwrap();
    assert_eq!(session.info.role, Role::Admin);
}

#[tokio::test]
async fn a_database_where_a_directory_cannot_be_made_is_named() {
    let volume = Volume::new();
    let file = volume.write("file", "");
    let database = file.join("auth.sqlite");
    let settings = AuthSettings::new().with_overrides(AuthOverrides {
        database: Some(database),
        ..AuthOverrides::default()
    });
    let error = settings.open(MissingDatabase::Create).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot create the directory {}", file.display())
    );
}

#[tokio::test]
async fn backend_settings_are_checked_before_a_database_is_created() {
    let volume = Volume::new();
    let database = volume.path().join("auth.sqlite");
    let empty_password = volume.write("empty.pw", "\n");
    let settings = AuthSettings::new().with_overrides(AuthOverrides {
        database: Some(database.clone()),
        backend: Some(AuthBackend::Ldap),
        ldap: LdapOverrides {
            url: Some("ldaps://ldap.example.org".into()),
            base_dn: Some("ou=people,dc=example,dc=org".into()),
            bind_dn: Some("cn=svc,dc=example,dc=org".into()),
            bind_password_file: Some(empty_password),
            ..LdapOverrides::default()
        },
        ..AuthOverrides::default()
    });
    let error = settings.open(MissingDatabase::Create).await.unwrap_err();
    assert!(
        matches!(error, AuthSetupError::Backend(_)),
        "{error}: the empty bind password is refused"
    );
    assert!(!database.exists());

    // A CA file that does not exist is named by the backend.
    let settings = settings.with_overrides(AuthOverrides {
        database: Some(database.clone()),
        backend: Some(AuthBackend::Ldap),
        ldap: LdapOverrides {
            url: Some("ldaps://ldap.example.org".into()),
            base_dn: Some("ou=people,dc=example,dc=org".into()),
            ca_certificate: Some(volume.path().join("missing-ca.pem")),
            ..LdapOverrides::default()
        },
        ..AuthOverrides::default()
    });
    let error = settings.open(MissingDatabase::Create).await.unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "cannot read the CA certificate file {}",
            volume.path().join("missing-ca.pem").display()
        )),
        "{error}"
    );
    assert!(!database.exists());
}

#[test]
fn tls_settings_come_from_the_sections() {
    let volume = Volume::new();
    let mysql_section = "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db.example.org\"\n\
                         database = \"mfv\"\nuser = \"mfv\"\ntls = true\nca_certificate = \"tls/db-ca.pem\"\n";
    let config = mysql(&volume.settings(mysql_section));
    assert!(config.tls && !config.insecure);
    assert_eq!(
        config.ca_certificate,
        Some(volume.path().join("tls/db-ca.pem"))
    );
    let insecure = mysql(&volume.settings(
        "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db.example.org\"\n\
         database = \"mfv\"\nuser = \"mfv\"\ninsecure = true\n",
    ));
    assert!(insecure.insecure && !insecure.tls && insecure.ca_certificate.is_none());
    // A socket never leaves the machine: the section's TLS settings are not used over it.
    let socket = mysql(&volume.settings(mysql_section).with_overrides(overrides(
        LdapOverrides::default(),
        MysqlOverrides {
            socket: Some("/run/mysqld/mysqld.sock".into()),
            ..MysqlOverrides::default()
        },
    )));
    assert!(!socket.tls && socket.ca_certificate.is_none());

    let ldap_section = "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldap://ldap.example.org\"\n\
                        base_dn = \"ou=people,dc=example,dc=org\"\ninsecure = true\n";
    assert!(ldap(&volume.settings(ldap_section)).insecure);
    assert!(
        !ldap(&ldap_alone(LdapOverrides {
            url: Some("ldap://127.0.0.1".into()),
            base_dn: Some("ou=people,dc=example,dc=org".into()),
            ..LdapOverrides::default()
        }))
        .insecure
    );
}

#[tokio::test]
async fn cleartext_given_as_overrides_is_refused_before_a_database_is_created() {
    let volume = Volume::new();
    let database = volume.path().join("auth.sqlite");
    let ldap = AuthOverrides {
        database: Some(database.clone()),
        backend: Some(AuthBackend::Ldap),
        ldap: LdapOverrides {
            url: Some("ldap://192.0.2.1".into()),
            base_dn: Some("ou=people,dc=example,dc=org".into()),
            ..LdapOverrides::default()
        },
        ..AuthOverrides::default()
    };
    let mysql = AuthOverrides {
        database: Some(database.clone()),
        backend: Some(AuthBackend::Mysql),
        mysql: MysqlOverrides {
            host: Some("192.0.2.1".into()),
            database: Some("mfv".into()),
            user: Some("mfv".into()),
            ..MysqlOverrides::default()
        },
        ..AuthOverrides::default()
    };
    for (given, remedy) in [
        (ldap, "set starttls = true or use an ldaps:// url"),
        (mysql, "set tls = true"),
    ] {
        let error = AuthSettings::new()
            .with_overrides(given)
            .open(MissingDatabase::Create)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                AuthSetupError::Backend(BackendError::Misconfigured { .. })
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("192.0.2.1") && message.contains(remedy),
            "{message}"
        );
        assert!(!database.exists());
    }
}

#[tokio::test]
async fn the_minimum_password_length_reaches_the_authenticator() {
    let volume = Volume::new();
    assert_eq!(
        AuthSettings::new().resolve().unwrap().min_password_chars,
        mfv_auth::DEFAULT_MIN_PASSWORD_CHARS
    );
    let settings = volume.settings("[auth]\nmin_password_length = 12\n");
    let resolved = settings.resolve().unwrap();
    assert_eq!(resolved.min_password_chars, 12);
    let authenticator = resolved.open(MissingDatabase::Create).await.unwrap();
    assert_eq!(authenticator.policy().min_password_chars, 12);
    let record = mfv_auth::UserRecord {
        username: "alice".parse().unwrap(),
        display_name: String::new(),
        role: Role::Admin,
        disabled: false,
        account_id: None,
    };
    let error = authenticator
        .add_user(
            &mfv_auth::Actor::Local,
            &record,
            &mfv_auth::Password::new("eleven-char").unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "password has 11 characters, at least 12 required"
    );
}

#[test]
fn the_ldap_disabled_filter_is_the_sections_or_the_backends_default() {
    let volume = Volume::new();
    let section = |rest: &str| {
        format!(
            "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"ldaps://h\"\nbase_dn = \"ou=p,dc=org\"\n{rest}"
        )
    };
    let config = ldap(&volume.settings(&section("")));
    assert_eq!(
        config.disabled_filter,
        mfv_auth::ldap::DEFAULT_DISABLED_FILTER
    );
    let config = ldap(&volume.settings(&section("disabled_filter = \"(nsAccountLock=TRUE)\"\n")));
    assert_eq!(config.disabled_filter, "(nsAccountLock=TRUE)");
}
