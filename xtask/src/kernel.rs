//! The appliance kernel: Debian's linux-image package, downloaded with apt-get, unpacked into
//! `target/kernel/<package>_<version>/` with modules.dep and friends made by depmod, cached by version.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{Workspace, cmd, deps};

/// The metapackage whose dependency names the current kernel package.
const METAPACKAGE: &str = "linux-image-amd64";
/// Environment variable that names the kernel package to use instead.
const PACKAGE_OVERRIDE: &str = "MFV_KERNEL_PACKAGE";

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The directory the package was unpacked into.
    pub root: PathBuf,
    /// The kernel release (`uname -r`), the directory under lib/modules/.
    pub release: String,
}

impl Kernel {
    /// Reads an unpacked kernel package: finds the release and checks the vmlinuz is there.
    pub fn open(root: &Path) -> Result<Self> {
        let release = find_release(root)?;
        let kernel = Self {
            root: root.to_path_buf(),
            release,
        };
        let vmlinuz = kernel.vmlinuz();
        if !vmlinuz.is_file() {
            bail!(
                "the kernel package in {} has no {}",
                root.display(),
                vmlinuz.display()
            );
        }
        Ok(kernel)
    }

    /// The compressed kernel image.
    pub fn vmlinuz(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.release))
    }

    /// `lib/modules/<release>` inside the package.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.release)
    }
}

/// The kernel release: the only directory under `<root>/lib/modules/`.
fn find_release(root: &Path) -> Result<String> {
    let modules = root.join("lib/modules");
    let mut releases = Vec::new();
    for entry in
        fs::read_dir(&modules).with_context(|| format!("cannot read {}", modules.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", modules.display()))?;
        if entry.path().is_dir() {
            releases.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    match <[String; 1]>::try_from(releases) {
        Ok([release]) => Ok(release),
        Err(releases) => bail!(
            "expected exactly one kernel release in {}, found {:?}",
            modules.display(),
            releases
        ),
    }
}

/// apt-cache, apt-get, dpkg-deb and depmod, as the kernel fetch uses them.
pub trait KernelTools {
    /// `apt-cache ARGS`: its stdout, or None when apt-cache knows nothing about it.
    fn apt_cache(&self, args: &[&str]) -> Result<Option<String>>;
    /// `apt-get update`.
    fn apt_update(&mut self) -> Result<()>;
    /// `apt-get download PACKAGE=VERSION` into `dir`.
    fn download(&mut self, package: &str, version: &str, dir: &Path) -> Result<()>;
    /// `dpkg-deb -x DEB DIR`.
    fn unpack(&mut self, deb: &Path, dir: &Path) -> Result<()>;
    /// `depmod -b ROOT RELEASE`.
    fn depmod(&mut self, root: &Path, release: &str) -> Result<()>;
}

/// The real programs.
#[derive(Debug)]
pub struct DebianTools;

impl KernelTools for DebianTools {
    fn apt_cache(&self, args: &[&str]) -> Result<Option<String>> {
        let output = cmd::capture(Command::new("apt-cache").args(args))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        Ok((output.status.success() && !stdout.trim().is_empty()).then_some(stdout))
    }

    fn apt_update(&mut self) -> Result<()> {
        let mut command = Command::new("apt-get");
        command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("update");
        println!("running {}", cmd::display(&command));
        cmd::run(&mut command)
    }

    fn download(&mut self, package: &str, version: &str, dir: &Path) -> Result<()> {
        let mut command = Command::new("apt-get");
        command
            .arg("download")
            .arg(format!("{package}={version}"))
            .current_dir(dir);
        println!("running {} in {}", cmd::display(&command), dir.display());
        cmd::run(&mut command)
    }

    fn unpack(&mut self, deb: &Path, dir: &Path) -> Result<()> {
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))
    }

    fn depmod(&mut self, root: &Path, release: &str) -> Result<()> {
        depmod(root, release)
    }
}

/// Runs `depmod -b ROOT RELEASE`, which writes ROOT/lib/modules/RELEASE/modules.{dep,alias,...}.
pub fn depmod(root: &Path, release: &str) -> Result<()> {
    cmd::run(Command::new("depmod").arg("-b").arg(root).arg(release))
}

/// Downloads and unpacks the kernel unless this version is cached already.
pub fn fetch(workspace: &Workspace) -> Result<Kernel> {
    let package_override = std::env::var(PACKAGE_OVERRIDE)
        .ok()
        .filter(|name| !name.is_empty());
    fetch_with(
        &mut DebianTools,
        deps::is_root(),
        &workspace.target.join("kernel"),
        package_override.as_deref(),
    )
}

fn fetch_with(
    tools: &mut dyn KernelTools,
    root: bool,
    kernel_dir: &Path,
    package_override: Option<&str>,
) -> Result<Kernel> {
    let mut apt = AptQueries {
        tools,
        root,
        updated: false,
    };
    let package = match package_override {
        Some(package) => package.to_owned(),
        None => {
            let depends = apt.query(&["depends", METAPACKAGE], METAPACKAGE)?;
            parse_kernel_package(&depends).with_context(|| {
                format!("`apt-cache depends {METAPACKAGE}` names no kernel package")
            })?
        }
    };
    let policy = apt.query(&["policy", &package], &package)?;
    let version = parse_candidate_version(&policy)
        .with_context(|| format!("apt has no installable version of {package}"))?;
    let name = format!("{package}_{}", version.replace(':', "%3a"));
    let dest = kernel_dir.join(&name);
    if dest.is_dir() {
        let kernel = Kernel::open(&dest)?;
        println!(
            "kernel {package} {version} ({}) is cached in {}",
            kernel.release,
            dest.display()
        );
        return Ok(kernel);
    }

    fs::create_dir_all(kernel_dir)
        .with_context(|| format!("cannot create {}", kernel_dir.display()))?;
    let tools = apt.tools;
    tools.download(&package, &version, kernel_dir)?;
    let deb = kernel_dir.join(format!("{name}_amd64.deb"));
    if !deb.is_file() {
        bail!("apt-get download did not write {}", deb.display());
    }
    let partial = kernel_dir.join(format!("{name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    println!("unpacking {} into {}", deb.display(), dest.display());
    tools.unpack(&deb, &partial)?;
    let release = find_release(&partial)?;
    tools.depmod(&partial, &release)?;
    fs::rename(&partial, &dest)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), dest.display()))?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    let kernel = Kernel::open(&dest)?;
    println!(
        "kernel {package} {version} ({release}) unpacked in {}",
        dest.display()
    );
    Ok(kernel)
}

/// apt-cache queries that run `apt-get update` once (as root) when apt knows nothing yet.
struct AptQueries<'a> {
    tools: &'a mut dyn KernelTools,
    root: bool,
    updated: bool,
}

impl AptQueries<'_> {
    fn query(&mut self, args: &[&str], package: &str) -> Result<String> {
        if let Some(output) = self.tools.apt_cache(args)? {
            return Ok(output);
        }
        if !self.root {
            bail!(
                "apt-cache knows nothing about {package}: run `sudo apt-get update` (or set {PACKAGE_OVERRIDE})"
            );
        }
        if !self.updated {
            self.updated = true;
            println!("apt-cache knows nothing about {package}; updating the package lists");
            self.tools.apt_update()?;
            if let Some(output) = self.tools.apt_cache(args)? {
                return Ok(output);
            }
        }
        bail!("apt-cache knows nothing about {package}, even after apt-get update")
    }
}

/// The kernel package in `apt-cache depends linux-image-amd64` output.
fn parse_kernel_package(depends: &str) -> Option<String> {
    depends
        .lines()
        .filter_map(|line| line.trim_start_matches([' ', '|']).strip_prefix("Depends:"))
        .map(str::trim)
        .find(|name| name.starts_with("linux-image-") && *name != METAPACKAGE)
        .map(str::to_owned)
}

/// The candidate version in `apt-cache policy PACKAGE` output.
fn parse_candidate_version(policy: &str) -> Option<String> {
    policy
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|version| !version.is_empty() && *version != "(none)")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPENDS: &str = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
    const POLICY: &str = "linux-image-6.1.0-56-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-2\n  Version table:\n     6.1.192-2 500\n";

    /// Answers apt-cache from fixed text and "downloads" a fake package; records every call.
    #[derive(Debug, Default)]
    struct FakeTools {
        knows_packages: bool,
        update_teaches_packages: bool,
        calls: Vec<String>,
    }

    impl KernelTools for FakeTools {
        fn apt_cache(&self, args: &[&str]) -> Result<Option<String>> {
            if !self.knows_packages {
                return Ok(None);
            }
            Ok(Some(match args[0] {
                "depends" => DEPENDS.to_owned(),
                _ => POLICY.to_owned(),
            }))
        }
        fn apt_update(&mut self) -> Result<()> {
            self.calls.push("update".to_owned());
            self.knows_packages = self.update_teaches_packages;
            Ok(())
        }
        fn download(&mut self, package: &str, version: &str, dir: &Path) -> Result<()> {
            self.calls.push(format!("download {package}={version}"));
            fs::write(dir.join(format!("{package}_{version}_amd64.deb")), b"deb")?;
            Ok(())
        }
        fn unpack(&mut self, _deb: &Path, dir: &Path) -> Result<()> {
            self.calls.push("unpack".to_owned());
            fs::create_dir_all(dir.join("lib/modules/6.1.0-56-amd64/kernel"))?;
            fs::create_dir_all(dir.join("boot"))?;
            fs::write(dir.join("boot/vmlinuz-6.1.0-56-amd64"), b"kernel")?;
            Ok(())
        }
        fn depmod(&mut self, _root: &Path, release: &str) -> Result<()> {
            self.calls.push(format!("depmod {release}"));
            Ok(())
        }
    }

    #[test]
    fn parses_the_kernel_package_from_apt_cache_depends() {
        assert_eq!(
            parse_kernel_package(DEPENDS).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let alternatives = "linux-image-amd64\n |Depends: linux-image-6.1.0-57-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            parse_kernel_package(alternatives).as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(
            parse_kernel_package("linux-image-amd64\n  Depends: firmware-linux\n"),
            None
        );
    }

    #[test]
    fn parses_the_candidate_version_from_apt_cache_policy() {
        assert_eq!(
            parse_candidate_version(POLICY).as_deref(),
            Some("6.1.192-2")
        );
        assert_eq!(
            parse_candidate_version("x:\n  Installed: (none)\n  Candidate: (none)\n"),
            None
        );
    }

    #[test]
    fn first_fetch_downloads_unpacks_and_runs_depmod_then_the_second_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let mut tools = FakeTools {
            knows_packages: true,
            ..FakeTools::default()
        };
        let kernel = fetch_with(&mut tools, false, dir.path(), None).unwrap();
        assert_eq!(kernel.release, "6.1.0-56-amd64");
        assert_eq!(
            kernel.root,
            dir.path().join("linux-image-6.1.0-56-amd64_6.1.192-2")
        );
        assert_eq!(
            kernel.vmlinuz(),
            kernel.root.join("boot/vmlinuz-6.1.0-56-amd64")
        );
        assert_eq!(
            tools.calls,
            [
                "download linux-image-6.1.0-56-amd64=6.1.192-2",
                "unpack",
                "depmod 6.1.0-56-amd64"
            ]
        );
        assert!(
            !dir.path()
                .join("linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb")
                .exists()
        );

        tools.calls.clear();
        let cached = fetch_with(&mut tools, false, dir.path(), None).unwrap();
        assert_eq!(cached.root, kernel.root);
        assert!(tools.calls.is_empty(), "{:?}", tools.calls);
    }

    #[test]
    fn root_updates_once_when_apt_knows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut tools = FakeTools {
            update_teaches_packages: true,
            ..FakeTools::default()
        };
        fetch_with(&mut tools, true, dir.path(), None).unwrap();
        assert_eq!(tools.calls[0], "update");
        assert_eq!(
            tools.calls.iter().filter(|call| *call == "update").count(),
            1
        );
    }

    #[test]
    fn root_fails_when_update_does_not_help() {
        let dir = tempfile::tempdir().unwrap();
        let mut tools = FakeTools::default();
        let error = fetch_with(&mut tools, true, dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("even after apt-get update"), "{error}");
        assert_eq!(tools.calls, ["update"]);
    }

    #[test]
    fn non_root_is_told_to_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut tools = FakeTools::default();
        let error = fetch_with(&mut tools, false, dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sudo apt-get update"), "{error}");
        assert!(tools.calls.is_empty());
    }

    #[test]
    fn the_override_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let mut tools = FakeTools {
            knows_packages: true,
            ..FakeTools::default()
        };
        fetch_with(
            &mut tools,
            false,
            dir.path(),
            Some("linux-image-6.1.0-99-amd64"),
        )
        .unwrap();
        assert_eq!(
            tools.calls[0],
            "download linux-image-6.1.0-99-amd64=6.1.192-2"
        );
    }

    #[test]
    fn open_rejects_a_package_without_vmlinuz_or_with_two_releases() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("lib/modules/6.1.0-56-amd64")).unwrap();
        let error = Kernel::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("vmlinuz-6.1.0-56-amd64"), "{error}");
        fs::create_dir_all(dir.path().join("lib/modules/6.1.0-57-amd64")).unwrap();
        let error = Kernel::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("exactly one kernel release"), "{error}");
    }
}
