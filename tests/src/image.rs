//! Locating the appliance image (kernel + initrd) and building it once per test run.
//!
//! [`ApplianceImage::shared`] picks the image for the whole process:
//! - `MFV_APPLIANCE_DIR`, when set, names a directory holding `vmlinuz` and `initrd.img`;
//!   nothing is built.
//! - Otherwise `<workspace>/target/appliance` is built by running `cargo xtask image` once per
//!   process. Several test binaries run in parallel, so the build runs under an exclusive
//!   `flock` on `<workspace>/target/appliance.lock`: the first process builds, the others wait
//!   and then find the build up to date (`cargo xtask image` is incremental).
//!
//! The outcome, success or failure, is remembered for the life of the process, so a broken
//! build fails every test quickly with the same message instead of rebuilding each time.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};

/// Environment variable naming a directory with a ready-made image (`vmlinuz` + `initrd.img`).
pub const APPLIANCE_DIR_ENV: &str = "MFV_APPLIANCE_DIR";

/// File name of the kernel inside an image directory.
const KERNEL_FILE: &str = "vmlinuz";
/// File name of the initrd inside an image directory.
const INITRD_FILE: &str = "initrd.img";
/// File name of the hybrid ISO (CD and USB stick, BIOS and UEFI) inside an image directory.
pub const ISO_FILE: &str = "minifed-virt.iso";
/// File name of the iPXE script inside an image directory, which loads the kernel and initrd
/// beside it.
pub const IPXE_SCRIPT: &str = "boot.ipxe";
/// File name of the GRUB network-boot configuration inside an image directory, the grub.cfg
/// of a `grub-mknetdir` directory.
pub const GRUB_NETBOOT_CONFIG: &str = "grub-netboot.cfg";

/// A bootable appliance: a kernel and the initrd holding the whole system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceImage {
    /// The kernel image (`vmlinuz`).
    pub kernel: PathBuf,
    /// The initrd (`initrd.img`), a compressed cpio archive with `mfv-init` as `/init`.
    pub initrd: PathBuf,
}

impl ApplianceImage {
    /// The image for this test run: `MFV_APPLIANCE_DIR` if set (must contain `vmlinuz` and
    /// `initrd.img`), else `<workspace root>/target/appliance`, built by running
    /// `cargo xtask image` once per process under an exclusive lock on
    /// `target/appliance.lock`, so parallel test processes build it once.
    pub fn shared() -> anyhow::Result<&'static ApplianceImage> {
        static SHARED: OnceLock<Result<ApplianceImage, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| locate_or_build().map_err(|error| format!("{error:#}")))
            .as_ref()
            .map_err(|message| anyhow::anyhow!("{message}"))
    }

    /// The image in `dir`, which must hold `vmlinuz` and `initrd.img`; the error names the
    /// missing file.
    pub fn at(dir: &Path) -> anyhow::Result<ApplianceImage> {
        let kernel = dir.join(KERNEL_FILE);
        let initrd = dir.join(INITRD_FILE);
        for file in [&kernel, &initrd] {
            if !file.is_file() {
                bail!(
                    "appliance image incomplete: {} does not exist",
                    file.display()
                );
            }
        }
        Ok(ApplianceImage { kernel, initrd })
    }

    /// The directory holding the image's files (also what a PXE server serves).
    pub fn dir(&self) -> &Path {
        self.kernel.parent().unwrap_or(Path::new("."))
    }

    /// The boot medium `name` in the image's directory ([`ISO_FILE`], [`IPXE_SCRIPT`],
    /// [`GRUB_NETBOOT_CONFIG`]), which
    /// must exist; the error says how to make it.
    pub fn medium(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir().join(name);
        if !path.is_file() {
            bail!(
                "boot medium {} does not exist: cargo xtask image writes it",
                path.display()
            );
        }
        Ok(path)
    }
}

/// The workspace root: this crate lives in `<root>/tests`.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn locate_or_build() -> anyhow::Result<ApplianceImage> {
    if let Some(dir) = std::env::var_os(APPLIANCE_DIR_ENV) {
        let dir = PathBuf::from(dir);
        return ApplianceImage::at(&dir)
            .with_context(|| format!("{APPLIANCE_DIR_ENV}={}", dir.display()));
    }
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["xtask", "image"]).current_dir(&root);
    build_locked(&root.join("target"), build)
}

/// Runs `build` while holding the exclusive lock `<target>/appliance.lock`, then returns the
/// image in `<target>/appliance`.
fn build_locked(target: &Path, mut build: Command) -> anyhow::Result<ApplianceImage> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let lock_path = target.join("appliance.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let _lock: Flock<File> = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let output = build
        .output()
        .with_context(|| format!("running {build:?}"))?;
    if !output.status.success() {
        bail!(
            "{build:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    ApplianceImage::at(&target.join("appliance"))
        .with_context(|| format!("{build:?} succeeded but left no image"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn at_finds_kernel_and_initrd() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("vmlinuz"));
        touch(&dir.path().join("initrd.img"));
        let image = ApplianceImage::at(dir.path()).unwrap();
        assert_eq!(image.kernel, dir.path().join("vmlinuz"));
        assert_eq!(image.initrd, dir.path().join("initrd.img"));
    }

    #[test]
    fn media_are_found_beside_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("vmlinuz"));
        touch(&dir.path().join("initrd.img"));
        touch(&dir.path().join(ISO_FILE));
        let image = ApplianceImage::at(dir.path()).unwrap();
        assert_eq!(image.dir(), dir.path());
        assert_eq!(image.medium(ISO_FILE).unwrap(), dir.path().join(ISO_FILE));
        let error = image.medium(IPXE_SCRIPT).unwrap_err().to_string();
        assert!(
            error.contains(&dir.path().join(IPXE_SCRIPT).display().to_string())
                && error.contains("cargo xtask image"),
            "{error}"
        );
    }

    #[test]
    fn at_names_missing_kernel() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("initrd.img"));
        let error = ApplianceImage::at(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&dir.path().join("vmlinuz").display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn at_names_missing_initrd() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("vmlinuz"));
        let error = ApplianceImage::at(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&dir.path().join("initrd.img").display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn at_rejects_directory_named_like_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vmlinuz")).unwrap();
        touch(&dir.path().join("initrd.img"));
        assert!(ApplianceImage::at(dir.path()).is_err());
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    /// A build command that writes the image, standing in for `cargo xtask image`.
    fn fake_build(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn build_locked_returns_the_built_image() {
        let target = tempfile::tempdir().unwrap();
        let script = format!(
            "mkdir -p {0}/appliance && touch {0}/appliance/vmlinuz {0}/appliance/initrd.img",
            target.path().display()
        );
        let image = build_locked(target.path(), fake_build(&script)).unwrap();
        assert_eq!(image.kernel, target.path().join("appliance/vmlinuz"));
        assert!(target.path().join("appliance.lock").exists());
    }

    #[test]
    fn build_locked_reports_build_failure_with_its_output() {
        let target = tempfile::tempdir().unwrap();
        let error = build_locked(target.path(), fake_build("echo broken linker >&2; exit 3"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("broken linker"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
    }

    #[test]
    fn build_locked_reports_a_build_that_leaves_no_image() {
        let target = tempfile::tempdir().unwrap();
        let error = format!(
            "{:#}",
            build_locked(target.path(), fake_build("true")).unwrap_err()
        );
        assert!(error.contains("left no image"), "{error}");
        assert!(error.contains("vmlinuz"), "{error}");
    }

    #[test]
    fn build_locked_serializes_concurrent_builds() {
        let target = tempfile::tempdir().unwrap();
        let counter = target.path().join("running");
        // Each build fails if another one is running at the same time.
        let script = format!(
            "set -e; if [ -e {c} ]; then exit 9; fi; touch {c}; sleep 0.2; rm {c}; \
             mkdir -p {t}/appliance; touch {t}/appliance/vmlinuz {t}/appliance/initrd.img",
            c = counter.display(),
            t = target.path().display()
        );
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let target = target.path().to_path_buf();
                let script = script.clone();
                std::thread::spawn(move || build_locked(&target, fake_build(&script)))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
    }
}
