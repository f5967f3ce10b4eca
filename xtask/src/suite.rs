//! `cargo xtask test`: the whole suite from a fresh Debian 12 machine, one step after another
//! (packages, kernel, front-end bundles, fmt, clippy, doc, image, cargo test), stopping at the
//! first failure.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::image::{self, Profile};
use crate::{Workspace, cmd, deps, kernel, web};

/// Environment variable telling the test harness where the ready-made image is.
const APPLIANCE_DIR_ENV: &str = "MFV_APPLIANCE_DIR";

/// Runs every step; `cargo_test_args` go to `cargo test`.
pub fn run(workspace: &Workspace, cargo_test_args: &[String]) -> Result<()> {
    step("Debian packages", || deps::ensure(deps::Mode::Install))?;
    step("kernel", || kernel::fetch(workspace).map(drop))?;
    // mfv-web embeds the bundles: clippy, doc and every build of it need them.
    step("front-end bundles (cargo xtask web)", || {
        web::build(workspace)
    })?;
    step("toolchain components (rustfmt, clippy)", || {
        ensure_component(workspace, "fmt", "rustfmt")?;
        ensure_component(workspace, "clippy", "clippy")
    })?;

    cargo_step(workspace, None, &["fmt", "--all", "--check"])?;
    cargo_step(
        workspace,
        None,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    cargo_step(
        workspace,
        Some(("RUSTDOCFLAGS", "-Dwarnings")),
        &["doc", "--workspace", "--no-deps", "--locked"],
    )?;
    step("image", || {
        image::build(workspace, Profile::Release).map(drop)
    })?;
    let appliance_dir = workspace.appliance_dir();
    let appliance_dir = appliance_dir.to_string_lossy();
    let mut test_args = vec!["test", "--workspace", "--locked"];
    test_args.extend(cargo_test_args.iter().map(String::as_str));
    cargo_step(
        workspace,
        Some((APPLIANCE_DIR_ENV, &appliance_dir)),
        &test_args,
    )?;
    println!("==> all steps passed");
    Ok(())
}

/// Prints `==> name`, runs `action`, and names the step if it fails.
fn step(name: &str, action: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("==> {name}");
    action().with_context(|| format!("step `{name}` failed"))
}

/// A step that is one cargo command, named by its command line (`cargo ...`).
fn cargo_step(workspace: &Workspace, env: Option<(&str, &str)>, args: &[&str]) -> Result<()> {
    let mut command = workspace.cargo();
    command.envs(env).args(args);
    let env_prefix = env
        .map(|(key, value)| format!("{key}={value} "))
        .unwrap_or_default();
    step(&format!("{env_prefix}cargo {}", args.join(" ")), || {
        cmd::run(&mut command)
    })
}

/// Makes sure `cargo <subcommand>` exists, adding the rustup `component` if it does not.
fn ensure_component(workspace: &Workspace, subcommand: &str, component: &str) -> Result<()> {
    let mut probe = workspace.cargo();
    probe.args([subcommand, "--version"]);
    if cmd::capture(&mut probe).is_ok_and(|output| output.status.success()) {
        return Ok(());
    }
    let rustup_exists = cmd::capture(Command::new("rustup").arg("--version"))
        .is_ok_and(|output| output.status.success());
    if !rustup_exists {
        bail!(
            "`cargo {subcommand}` is missing and rustup is not installed: install the {component} component"
        );
    }
    let mut add = Command::new("rustup");
    add.args(["component", "add", component]);
    println!("running {}", cmd::display(&add));
    cmd::run(&mut add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_step_is_named() {
        let error = step("cargo clippy", || bail!("3 warnings")).unwrap_err();
        assert_eq!(error.to_string(), "step `cargo clippy` failed");
        assert_eq!(error.root_cause().to_string(), "3 warnings");
    }

    #[test]
    fn a_failing_cargo_step_is_named_by_its_command_line() {
        let workspace = Workspace {
            root: std::env::temp_dir(),
            target: std::env::temp_dir(),
            cargo: "false".into(),
        };
        let error = cargo_step(&workspace, Some(("A", "b")), &["fmt", "--check"]).unwrap_err();
        assert_eq!(error.to_string(), "step `A=b cargo fmt --check` failed");
    }
}
