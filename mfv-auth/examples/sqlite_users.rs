//! Creates (or opens) an auth database, adds a user, logs in and prints the session:
//! `cargo run -p mfv-auth --example sqlite_users -- PATH [USER [PASSWORD]]`
//! (defaults: user `admin`, password `change me now`).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use mfv_auth::{
    Actor, AdminError, Argon2Params, AuthError, AuthPolicy, Authenticator, Password,
    PasswordHasher, Role, SqliteState, SqliteUserBackend, SystemClock, UserRecord, Username,
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

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: sqlite_users PATH [USER [PASSWORD]]")?;
    let username: Username = args.next().as_deref().unwrap_or("admin").parse()?;
    let password = Password::new(args.next().unwrap_or_else(|| "change me now".to_owned()))?;

    let state = SqliteState::open(&path).await?;
    println!(
        "database {path} (schema version {})",
        state.schema_version().await?
    );
    let hasher = PasswordHasher::new(Argon2Params::default())?;
    let users = SqliteUserBackend::new(state.clone(), hasher);
    let auth = Authenticator::new(
        Arc::new(users),
        state,
        Arc::new(SystemClock),
        AuthPolicy::default(),
    );

    let record = UserRecord {
        username: username.clone(),
        display_name: String::new(),
        role: Role::Admin,
        disabled: false,
        account_id: None,
    };
    match auth.add_user(&Actor::Local, &record, &password).await {
        Ok(()) => println!("added user {username} (role admin)"),
        Err(AuthError::Admin(AdminError::UserExists { .. })) => {
            println!("user {username} exists already")
        }
        Err(error) => return Err(error.into()),
    }

    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let session = auth
        .login(username.as_str(), password.expose(), None, source)
        .await?;
    let info = &session.info;
    println!(
        "session {} for {} (role {}) from {}",
        info.id, info.username, info.role, info.source
    );
    println!("  token:           {}", session.token.expose());
    println!("  idle expiry:     {}", info.idle_expires_at);
    println!("  absolute expiry: {}", info.expires_at);
    let checked = auth.check_session(session.token.expose()).await?;
    println!(
        "session check: ok, {} is {}",
        checked.username, checked.role
    );
    Ok(())
}
