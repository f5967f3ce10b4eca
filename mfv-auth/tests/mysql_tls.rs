//! The MySQL user backend over TLS against a real private mariadbd: a login over TLS with the
//! server's certificate verified against the test CA, certificates from another CA (or only
//! the system's CAs) refused, and a server that offers no TLS refused when TLS is asked for.

use std::path::Path;

use anyhow::{Context, Result, bail};
use mfv_auth::{
    Argon2Params, BackendError, MySqlBackend, MySqlConfig, Password, PasswordHasher, Role,
    StepOutcome, UserBackend, UserRecord, Username,
};
use mfv_tests::certificates::make_certificates;
use mfv_tests::mariadb::{self, MariaDb};

/// An account of the shared server that only logs in over TLS (`REQUIRE SSL`), so a login
/// that works proves the connection was TLS.
const TLS_ONLY_USER: &str = "mfv_tls_only";

/// Cheap argon2 parameters: these tests check the transport, not the cost.
fn hasher() -> Result<PasswordHasher> {
    Ok(PasswordHasher::new(Argon2Params {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    })?)
}

/// TCP to `server` on 127.0.0.1 as `user`, with TLS verified against `ca_certificate`.
fn tls_config(
    server: &MariaDb,
    database: &str,
    user: &str,
    ca_certificate: Option<&Path>,
) -> MySqlConfig {
    let mut config = MySqlConfig::tcp(
        "127.0.0.1",
        server.port(),
        database,
        user,
        mariadb::PASSWORD,
    );
    config.tls = true;
    config.ca_certificate = ca_certificate.map(Path::to_owned);
    config
}

/// A fresh database of the shared server and the TLS-only account allowed on it.
fn tls_only_database(label: &str) -> Result<String> {
    let server = MariaDb::shared();
    let database = server.create_database(label)?;
    server.root_sql(&format!(
        "CREATE USER IF NOT EXISTS '{TLS_ONLY_USER}'@'127.0.0.1' \
         IDENTIFIED BY '{}' REQUIRE SSL; \
         GRANT ALL ON `{database}`.* TO '{TLS_ONLY_USER}'@'127.0.0.1';",
        mariadb::PASSWORD
    ))?;
    Ok(database)
}

/// The error of listing the users, which connects first.
async fn connection_error(backend: &MySqlBackend) -> Result<BackendError> {
    match backend.list_users().await {
        Ok(users) => bail!("the connection was accepted and listed {users:?}"),
        Err(error) => Ok(error),
    }
}

#[tokio::test]
async fn logins_over_tls_verify_the_server_against_the_ca() -> Result<()> {
    let server = MariaDb::shared();
    let database = tls_only_database("tls_login")?;
    let ca = server.ca_certificate();
    let backend = MySqlBackend::new(
        tls_config(server, &database, TLS_ONLY_USER, Some(&ca)),
        hasher()?,
    )?;
    let alice: Username = "alice".parse()?;
    let password = Password::new("alice-over-tls")?;
    backend
        .admin()
        .context("MySQL users are managed here")?
        .add_user(
            &UserRecord {
                username: alice.clone(),
                display_name: "Alice".into(),
                role: Role::Admin,
                disabled: false,
                account_id: None,
            },
            &password,
        )
        .await?;
    let verified = backend.verify_password(&alice, &password).await?;
    assert_eq!(verified.map(|user| user.role), Some(Role::Admin));
    let report = backend.check(&alice).await;
    assert!(report.passed(), "{report}");
    let connected = format!("connected to 127.0.0.1:{} over TLS as", server.port());
    assert!(
        matches!(&report.steps[0].outcome, StepOutcome::Passed(text) if text.contains(&connected)),
        "{report}"
    );
    backend.close().await?;

    // The same account without TLS is turned away by the server: the login above was TLS.
    let mut cleartext = tls_config(server, &database, TLS_ONLY_USER, None);
    cleartext.tls = false;
    let cleartext = MySqlBackend::new(cleartext, hasher()?)?;
    let error = connection_error(&cleartext).await?;
    assert!(
        error.to_string().contains("refused user mfv_tls_only"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() -> Result<()> {
    let server = MariaDb::shared();
    let database = server.create_database("tls_other_ca")?;
    let other = tempfile::tempdir()?;
    make_certificates(other.path())?;
    let other_ca = other.path().join("ca.pem");
    for ca in [Some(other_ca.as_path()), None] {
        let backend =
            MySqlBackend::new(tls_config(server, &database, mariadb::USER, ca), hasher()?)?;
        let error = connection_error(&backend).await?;
        assert!(
            matches!(error, BackendError::Misconfigured { .. }),
            "{ca:?}: {error:?}"
        );
        let message = error.to_string();
        for expected in [
            &format!("connecting: TLS with 127.0.0.1:{} failed", server.port()),
            "invalid peer certificate",
            "signed by the CA in ca_certificate",
        ] {
            assert!(message.contains(expected), "{ca:?}: {message}");
        }
        let report = backend.check(&"alice".parse()?).await;
        assert!(
            matches!(&report.steps[0].outcome, StepOutcome::Failed(why) if why.contains("invalid peer certificate")),
            "{report}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_server_without_tls_is_refused_when_tls_is_asked_for() -> Result<()> {
    let server = MariaDb::start_without_tls()?;
    let database = server.create_database("no_tls")?;
    let ca = MariaDb::shared().ca_certificate();
    let backend = MySqlBackend::new(
        tls_config(&server, &database, mariadb::USER, Some(&ca)),
        hasher()?,
    )?;
    let error = connection_error(&backend).await?;
    assert!(
        matches!(error, BackendError::Misconfigured { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!(
            "the server at 127.0.0.1:{} offers no TLS, and tls = true asks for it",
            server.port()
        )),
        "{error}"
    );
    Ok(())
}
