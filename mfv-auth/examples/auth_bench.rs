//! Measures the auth path on each user backend: argon2id cost, logins per second, session
//! checks per second, and the time of "unknown user" against "wrong password" (which must
//! match). SQLite runs in a temp dir; LDAP and MySQL run against a private slapd and mariadbd
//! on loopback, started here with the fixtures the integration tests use (`mfv_tests::slapd`,
//! `mfv_tests::mariadb`):
//! `cargo run --release -p mfv-auth --example auth_bench -- [SECONDS_PER_MEASUREMENT]
//! [BACKEND,...]` (defaults: 3 seconds; `sqlite,ldap,mysql`).
//! Prints one `name: value unit` line per measurement; `cargo xtask bench auth` reads them.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mfv_auth::ldap::GroupRole;
use mfv_auth::{
    Actor, Argon2Params, AuthPolicy, Authenticator, LdapBackend, LdapConfig, MySqlBackend,
    MySqlConfig, Password, PasswordHasher, Role, SqliteState, SqliteUserBackend, SystemClock,
    ThrottleRule, UserBackend, UserRecord,
};
use mfv_tests::{mariadb, slapd};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `step` repeatedly for `budget`; returns (iterations, elapsed).
async fn measure<F, Fut>(budget: Duration, mut step: F) -> anyhow::Result<(u64, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < budget || count == 0 {
        step().await?;
        count += 1;
    }
    Ok((count, start.elapsed()))
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// No lockouts: the benchmark fails on purpose, many times.
fn policy(user_recheck: Duration) -> AuthPolicy {
    let unlimited = ThrottleRule {
        max_failures: u32::MAX,
        window: Duration::from_secs(1),
        lockout: Duration::from_secs(1),
    };
    AuthPolicy {
        user_throttle: unlimited,
        address_throttle: unlimited,
        user_recheck,
        ..AuthPolicy::default()
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = match args.next() {
        Some(text) => text
            .parse()
            .context("SECONDS_PER_MEASUREMENT must be a number")?,
        None => 3,
    };
    let backends = args
        .next()
        .unwrap_or_else(|| "sqlite,ldap,mysql".to_owned());
    let budget = Duration::from_secs(seconds);
    let params = Argon2Params::default();
    let hasher = PasswordHasher::new(params)?;
    let password = Password::new("correct horse battery staple")?;

    println!(
        "argon2id parameters: m={} KiB, t={}, p={}",
        params.memory_kib, params.iterations, params.parallelism
    );
    let (count, elapsed) = measure(budget, || async {
        hasher.hash(&password)?;
        Ok(())
    })
    .await?;
    println!(
        "argon2id hash: {:.1} ms",
        elapsed.as_secs_f64() * 1000.0 / count as f64
    );

    for backend in backends.split(',') {
        let dir = tempfile::tempdir()?;
        let state = SqliteState::open(dir.path().join("auth.db")).await?;
        match backend {
            "sqlite" => {
                let users = SqliteUserBackend::new(state.clone(), hasher.clone());
                let bench = BackendBench::new(Arc::new(users), state, budget);
                bench.add_user("bench", &password).await?;
                bench.run("bench", &password).await?;
            }
            "ldap" => {
                let server = slapd::Slapd::start()?;
                let bench = BackendBench::new(Arc::new(ldap_backend(&server)?), state, budget);
                let alice = slapd::users()
                    .into_iter()
                    .find(|user| user.uid == "alice")
                    .context("the seeded directory has no alice")?;
                bench.run("alice", &Password::new(alice.password)?).await?;
            }
            "mysql" => {
                let server = mariadb::MariaDb::start()?;
                let database = server.create_database("bench")?;
                let config = MySqlConfig::tcp(
                    "127.0.0.1",
                    server.port(),
                    database,
                    mariadb::USER,
                    mariadb::PASSWORD,
                );
                let users = MySqlBackend::new(config, hasher.clone())?;
                let bench = BackendBench::new(Arc::new(users), state, budget);
                bench.add_user("bench", &password).await?;
                bench.run("bench", &password).await?;
            }
            other => bail!("unknown backend {other:?}: expected sqlite, ldap or mysql"),
        }
    }
    Ok(())
}

/// The seeded directory with its mfv-* groups mapped to roles.
fn ldap_backend(server: &slapd::Slapd) -> anyhow::Result<LdapBackend> {
    let mut config = LdapConfig::new(
        server.url(),
        slapd::SERVICE_DN,
        slapd::SERVICE_PASSWORD,
        slapd::PEOPLE_DN,
        slapd::GROUPS_DN,
    );
    config.group_roles = [
        ("mfv-admins", Role::Admin),
        ("mfv-operators", Role::Operator),
        ("mfv-viewers", Role::Viewer),
    ]
    .into_iter()
    .map(|(group, role)| GroupRole {
        group: group.to_owned(),
        role,
    })
    .collect();
    Ok(LdapBackend::new(config)?)
}

/// Two authenticators over one backend and state store: one with the default user
/// re-check interval (what a running host does), one that looks the user up in the backend
/// at every session check (the backend's cost per check).
struct BackendBench {
    name: &'static str,
    auth: Authenticator,
    auth_recheck_always: Authenticator,
    budget: Duration,
}

impl BackendBench {
    fn new(backend: Arc<dyn UserBackend>, state: SqliteState, budget: Duration) -> Self {
        let clock = Arc::new(SystemClock);
        let default_recheck = AuthPolicy::default().user_recheck;
        BackendBench {
            name: backend.name(),
            auth: Authenticator::new(
                backend.clone(),
                state.clone(),
                clock.clone(),
                policy(default_recheck),
            ),
            auth_recheck_always: Authenticator::new(backend, state, clock, policy(Duration::ZERO)),
            budget,
        }
    }

    async fn add_user(&self, name: &str, password: &Password) -> anyhow::Result<()> {
        let record = UserRecord {
            username: name.parse()?,
            display_name: String::new(),
            role: Role::Operator,
            disabled: false,
            account_id: None,
        };
        self.auth.add_user(&Actor::Local, &record, password).await?;
        Ok(())
    }

    async fn run(&self, user: &str, password: &Password) -> anyhow::Result<()> {
        let (name, auth, budget) = (self.name, &self.auth, self.budget);
        let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (count, elapsed) = measure(budget, || async {
            auth.login(user, password.expose(), None, source).await?;
            Ok(())
        })
        .await?;
        println!(
            "{name} logins: {:.1} per second",
            per_second(count, elapsed)
        );

        // Alternate the two kinds of failure so that load from elsewhere hits both alike.
        let mut wrong = Duration::ZERO;
        let mut unknown = Duration::ZERO;
        let mut rounds = 0u32;
        let start = Instant::now();
        while start.elapsed() < budget * 2 || rounds == 0 {
            for (user, total) in [(user, &mut wrong), ("nosuchuser", &mut unknown)] {
                let attempt = Instant::now();
                let result = auth.login(user, "wrong password", None, source).await;
                *total += attempt.elapsed();
                anyhow::ensure!(result.is_err(), "login with a wrong password worked");
            }
            rounds += 1;
        }
        let wrong = wrong.as_secs_f64() * 1000.0 / f64::from(rounds);
        let unknown = unknown.as_secs_f64() * 1000.0 / f64::from(rounds);
        println!("{name} wrong password: {wrong:.2} ms");
        println!("{name} unknown user: {unknown:.2} ms");
        println!("{name} unknown/wrong time ratio: {:.3}", unknown / wrong);

        let session = auth.login(user, password.expose(), None, source).await?;
        let (count, elapsed) = measure(budget, || async {
            auth.check_session(session.token.expose()).await?;
            Ok(())
        })
        .await?;
        println!(
            "{name} session checks: {:.0} per second",
            per_second(count, elapsed)
        );
        let always = &self.auth_recheck_always;
        let (count, elapsed) = measure(budget, || async {
            always.check_session(session.token.expose()).await?;
            Ok(())
        })
        .await?;
        println!(
            "{name} session checks with user lookup: {:.0} per second",
            per_second(count, elapsed)
        );
        Ok(())
    }
}
