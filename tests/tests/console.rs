//! Acceptance tests of the console: the status screen PID 1 keeps on it, a shell only for an
//! administrator's password from the local users on the config volume, and every shell opened,
//! refused and closed in the audit log on that volume. They boot the real image under QEMU TCG
//! and type on its serial console.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use mfv_auth::{Actor, Password, Role, UserRecord, Username};
use mfv_host::auth::{AuthSettings, MissingDatabase};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, NicModel, VolumeFilesystem,
    VolumeImage,
};

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// The configuration on the volume.
const CONFIG: &str = "version = 1\n[host]\nhostname = \"consolehost\"\n";
/// Every user's password.
const PASSWORD: &str = "console password 1";
/// The line the screen ends with before it waits for Enter.
const PRESS_ENTER: &str = "Press Enter to log in for a shell (administrators only).";

/// The auth database of `users` (name, role), made the way the host makes it, as bytes.
fn users_database(dir: &Path, users: &[(&str, Role)]) -> anyhow::Result<Vec<u8>> {
    let config = mfv_config::schema::parse_config(CONFIG).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let authenticator = AuthSettings::from_config(config.auth, dir)
            .open(MissingDatabase::Create)
            .await?;
        for (name, role) in users {
            let record = UserRecord {
                username: Username::new(*name)?,
                display_name: String::new(),
                role: *role,
                disabled: false,
                account_id: None,
            };
            authenticator
                .add_user(&Actor::Local, &record, &Password::new(PASSWORD)?)
                .await?;
        }
        anyhow::Ok(())
    })?;
    Ok(std::fs::read(dir.join("users.sqlite"))?)
}

/// Types `line` and a newline on the serial console.
fn type_line(guest: &mut Guest, line: &str) -> anyhow::Result<()> {
    guest.write_serial(&format!("{line}\n"))
}

/// Presses Enter at the screen and logs in as `user`; returns the answer line.
fn log_in(guest: &mut Guest, user: &str, password: &str, answer: &str) -> anyhow::Result<()> {
    guest.wait_for_line(PRESS_ENTER, LINE_TIMEOUT)?;
    type_line(guest, "")?;
    type_line(guest, user)?;
    type_line(guest, password)?;
    guest.wait_for_line(answer, LINE_TIMEOUT)?;
    Ok(())
}

/// The console_shell entries of the audit log in the auth database `file`, oldest first.
fn console_audit(file: &Path) -> anyhow::Result<Vec<String>> {
    let connection = rusqlite::Connection::open(file)?;
    let mut statement = connection.prepare(
        "SELECT username, outcome, detail FROM audit WHERE event = 'console_shell' ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(format!(
            "{} {} {}",
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[test]
fn the_console_shows_the_status_and_opens_a_shell_only_for_an_administrator() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let database = users_database(dir.path(), &[("alice", Role::Admin), ("bob", Role::Viewer)])?;
    let volume = dir.path().join("config.img");
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", CONFIG)
        .file("users.sqlite", database)
        .build(&volume)?;
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line("mfv-init: console screen started", LINE_TIMEOUT)?;
    guest.wait_for_line("Minifed-Virt 0.1.0 on consolehost", LINE_TIMEOUT)?;
    guest.wait_for_line("config: using mfv.toml from /dev/vda", LINE_TIMEOUT)?;
    // Redrawn as the services come up: the screen shows them and how VMs run.
    guest.wait_for_line("  virtualization: ", LINE_TIMEOUT)?;
    guest.wait_for_line("  services: all 5 running", LINE_TIMEOUT)?;

    log_in(&mut guest, "alice", "wrong password", "login incorrect")?;
    log_in(
        &mut guest,
        "bob",
        PASSWORD,
        "bob is not an administrator: a shell on the console needs the admin role",
    )?;
    log_in(
        &mut guest,
        "alice",
        PASSWORD,
        "shell for alice: exit it to return to this screen",
    )?;
    type_line(
        &mut guest,
        "echo in-the-shell-$((6 * 7)) as $MFV_CONSOLE_USER",
    )?;
    guest.wait_for_line("in-the-shell-42 as alice", LINE_TIMEOUT)?;
    type_line(&mut guest, "exit 3")?;
    guest.wait_for_line("shell ended (exit status: 3)", LINE_TIMEOUT)?;

    // The shell's end is audited before the screen shows again; then power off from a shell.
    log_in(
        &mut guest,
        "alice",
        PASSWORD,
        "shell for alice: exit it to return to this screen",
    )?;
    type_line(&mut guest, "kill -TERM 1")?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(LINE_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");

    let copy = dir.path().join("audit.sqlite");
    let dumped = Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump /users.sqlite {}", copy.display()))
        .arg(&volume)
        .output()
        .context("run debugfs")?;
    ensure!(
        copy.exists(),
        "debugfs could not copy the database: {dumped:?}"
    );
    assert_eq!(
        console_audit(&copy)?,
        [
            "bob refused not an administrator",
            "alice ok opened",
            "alice ok closed (exit status: 3)",
            "alice ok opened",
        ]
    );
    Ok(())
}

#[test]
fn without_an_administrator_the_console_says_how_to_go_on() -> anyhow::Result<()> {
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.net=eth0:dhcp")
        .nic(NicModel::VirtioNet)
        .boot()?;
    guest.wait_for_line("config: no configuration found", LINE_TIMEOUT)?;
    // Drawn with the address, at once or once the lease came.
    guest.wait_for_line("  eth0 up 10.0.2.15/24", LINE_TIMEOUT)?;
    log_in(
        &mut guest,
        "root",
        "anything at all",
        "no administrator account exists yet",
    )?;
    ensure!(
        !guest.serial_log().contains("shell for"),
        "a shell was opened:\n{}",
        guest.serial_log()
    );
    Ok(())
}
