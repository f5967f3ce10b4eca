//! `cargo xtask web`: the front-end bundles that mfv-web embeds (`mfv-web/build.rs`).
//!
//! The npm packages are installed exactly as `mfv-web/web/package-lock.json` pins them, by
//! `npm ci --ignore-scripts`: no package runs code at install time (esbuild's binary comes
//! from its platform package, which needs no install script). The install runs only when
//! `node_modules` is missing or older than the lockfile, since `npm ci` starts from nothing
//! each time. Then `node build.mjs` writes `dist/`, which is cheap and always run, so the
//! bundles always match the sources.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::{Workspace, cmd};

/// The lockfile npm writes into `node_modules` when it installs: its time is the install's.
const INSTALLED_MARKER: &str = "node_modules/.package-lock.json";

/// Installs the npm packages if needed and builds the bundles into `mfv-web/web/dist/`.
pub fn build(workspace: &Workspace) -> Result<()> {
    let web = web_dir(workspace);
    let lockfile = modified(&web.join("package-lock.json"))?
        .with_context(|| format!("{} has no package-lock.json", web.display()))?;
    let installed = modified(&web.join(INSTALLED_MARKER))?;
    match install_needed(installed, lockfile) {
        Some(reason) => {
            let mut install = Command::new("npm");
            install.current_dir(&web).args(["ci", "--ignore-scripts"]);
            println!(
                "web: {reason}: running {} in {}",
                cmd::display(&install),
                web.display()
            );
            cmd::run(&mut install).context(
                "installing the npm packages failed (npm and nodejs come from `cargo xtask deps`)",
            )?;
        }
        None => println!("web: node_modules is as package-lock.json pins it"),
    }
    let mut bundle = Command::new("node");
    bundle.current_dir(&web).arg("build.mjs");
    println!(
        "web: running {} in {}",
        cmd::display(&bundle),
        web.display()
    );
    cmd::run(&mut bundle)
}

/// `mfv-web/web` in `workspace`.
fn web_dir(workspace: &Workspace) -> PathBuf {
    workspace.root.join("mfv-web").join("web")
}

/// Why the packages must be installed, given when they were (`installed`, none if they
/// are not) and when the lockfile changed; `None` when they are up to date.
fn install_needed(installed: Option<SystemTime>, lockfile: SystemTime) -> Option<&'static str> {
    match installed {
        None => Some("node_modules is missing"),
        Some(installed) if installed < lockfile => {
            Some("package-lock.json is newer than node_modules")
        }
        Some(_) => None,
    }
}

/// When `path` was last modified; `None` if it does not exist.
fn modified(path: &Path) -> Result<Option<SystemTime>> {
    match std::fs::metadata(path) {
        Ok(metadata) => metadata
            .modified()
            .map(Some)
            .with_context(|| format!("the modification time of {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn packages_are_installed_when_missing_or_older_than_the_lockfile() {
        let lockfile = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            install_needed(None, lockfile),
            Some("node_modules is missing")
        );
        assert_eq!(
            install_needed(Some(lockfile - Duration::from_secs(1)), lockfile),
            Some("package-lock.json is newer than node_modules")
        );
        assert_eq!(install_needed(Some(lockfile), lockfile), None);
        assert_eq!(
            install_needed(Some(lockfile + Duration::from_secs(1)), lockfile),
            None
        );
    }

    #[test]
    fn a_missing_file_has_no_time_and_an_existing_one_has_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(modified(&dir.path().join("absent")).unwrap(), None);
        std::fs::write(dir.path().join("present"), "x").unwrap();
        assert!(modified(&dir.path().join("present")).unwrap().is_some());
    }

    #[test]
    fn the_web_directory_holds_the_lockfile() {
        let workspace = Workspace::locate();
        assert!(web_dir(&workspace).join("package-lock.json").is_file());
        assert!(web_dir(&workspace).join("build.mjs").is_file());
    }
}
