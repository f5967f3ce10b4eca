//! Measures the SQLite auth path: argon2id cost, logins per second, session checks per
//! second, and the time of "unknown user" against "wrong password" (which must match):
//! `cargo run --release -p mfv-auth --example auth_bench -- [SECONDS_PER_MEASUREMENT]`.
//! Prints one `name: value unit` line per measurement.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mfv_auth::{
    Actor, Argon2Params, AuthPolicy, Authenticator, Password, PasswordHasher, Role, SqliteState,
    SqliteUserBackend, SystemClock, ThrottleRule, UserRecord,
};

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

async fn run() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::args().nth(1) {
        Some(text) => text
            .parse()
            .context("SECONDS_PER_MEASUREMENT must be a number")?,
        None => 3,
    };
    let budget = Duration::from_secs(seconds);
    let dir = tempfile::tempdir()?;
    let state = SqliteState::open(dir.path().join("auth.db")).await?;
    let params = Argon2Params::default();
    let hasher = PasswordHasher::new(params)?;
    let users = SqliteUserBackend::new(state.clone(), hasher.clone());
    // No lockouts: the benchmark fails on purpose, many times.
    let unlimited = ThrottleRule {
        max_failures: u32::MAX,
        window: Duration::from_secs(1),
        lockout: Duration::from_secs(1),
    };
    let policy = AuthPolicy {
        user_throttle: unlimited,
        address_throttle: unlimited,
        ..AuthPolicy::default()
    };
    let auth = Authenticator::new(Arc::new(users), state, Arc::new(SystemClock), policy);
    let password = Password::new("correct horse battery staple")?;
    let record = UserRecord {
        username: "bench".parse()?,
        display_name: String::new(),
        role: Role::Operator,
        disabled: false,
    };
    auth.add_user(&Actor::Local, &record, &password).await?;
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);

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

    let (count, elapsed) = measure(budget, || async {
        auth.login("bench", password.expose(), None, source).await?;
        Ok(())
    })
    .await?;
    println!(
        "sqlite logins: {:.1} per second",
        count as f64 / elapsed.as_secs_f64()
    );

    // Alternate the two kinds of failure so that load from elsewhere hits both alike.
    let mut wrong = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let mut rounds = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget * 2 || rounds == 0 {
        for (user, total) in [("bench", &mut wrong), ("nosuchuser", &mut unknown)] {
            let attempt = Instant::now();
            let result = auth.login(user, "wrong password", None, source).await;
            *total += attempt.elapsed();
            anyhow::ensure!(result.is_err(), "login with a wrong password worked");
        }
        rounds += 1;
    }
    let wrong = wrong.as_secs_f64() * 1000.0 / f64::from(rounds);
    let unknown = unknown.as_secs_f64() * 1000.0 / f64::from(rounds);
    println!("sqlite wrong password: {wrong:.2} ms");
    println!("sqlite unknown user: {unknown:.2} ms");
    println!("sqlite unknown/wrong time ratio: {:.3}", unknown / wrong);

    let session = auth.login("bench", password.expose(), None, source).await?;
    let (count, elapsed) = measure(budget, || async {
        auth.check_session(session.token.expose()).await?;
        Ok(())
    })
    .await?;
    println!(
        "sqlite session checks: {:.0} per second",
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
