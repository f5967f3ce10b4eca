//! The Debian packages the project needs: check them with dpkg, install the missing ones with
//! apt-get when running as root, otherwise print the exact command to run.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Result, bail};

use crate::cmd;

/// Every Debian package the build, the image and the tests need, with the reason.
pub const PACKAGES: &[(&str, &str)] = &[
    (
        "qemu-system-x86",
        "boots the appliance (cargo xtask boot, tests, benchmarks)",
    ),
    (
        "busybox-static",
        "rescue shell and applets inside the initrd",
    ),
    ("cpio", "tests read the initrd back with cpio -t"),
    (
        "squashfs-tools",
        "mksquashfs writes the image's payload (modules, libvirt, QEMU)",
    ),
    ("kmod", "depmod builds modules.dep and modules.alias"),
    ("zstd", "inspecting the zstd-compressed initrd by hand"),
    ("libclang-dev", "bindgen for libblkid-rs and sys-mount"),
    (
        "gcc",
        "links the Rust binaries; compiles the image's ICU data library without entries",
    ),
    ("libvirt-dev", "the virt crate links libvirt"),
    ("libudev-dev", "the udev crate links libudev"),
    ("libblkid-dev", "libblkid-rs links libblkid"),
    ("pkg-config", "build scripts locate the C libraries"),
    (
        "xorriso",
        "writes the hybrid boot ISO (cargo xtask image); iso9660 config volumes in the mfv-config discovery tests",
    ),
    (
        "mtools",
        "vfat images without mounting them (the ISO's EFI partition, test volumes)",
    ),
    (
        "grub-common",
        "grub-mkimage makes the boot ISO's GRUB core images",
    ),
    (
        "grub-pc-bin",
        "GRUB's BIOS modules and hybrid MBR for the boot ISO (CD and USB stick on BIOS)",
    ),
    (
        "grub-efi-amd64-bin",
        "GRUB's x86_64 UEFI modules for the boot ISO (UEFI from CD or USB stick)",
    ),
    ("slapd", "the private LDAP server of the mfv-auth tests"),
    (
        "ldap-utils",
        "ldapadd and ldappasswd seed the test directory",
    ),
    (
        "mariadb-server",
        "the private MariaDB server of the mfv-auth tests",
    ),
    (
        "mariadb-client",
        "the mariadb client the MariaDB fixture uses",
    ),
    (
        "openssl",
        "the test CA and certificates for LDAPS, StartTLS and MariaDB's TLS",
    ),
    (
        "e2fsprogs",
        "mkfs.ext4 makes labelled test disks (mfv-tests Filesystem::Ext4); the image carries it to format config volumes",
    ),
    (
        "dosfstools",
        "mkfs.vfat makes labelled test disks (mfv-tests Filesystem::Vfat); the image carries it to format config volumes",
    ),
    (
        "iproute2",
        "ip netns and veth pairs for the mfv-net and mfv net root tests",
    ),
    (
        "dnsmasq-base",
        "the DHCP server of the mfv-net tests and cargo xtask bench dhcp",
    ),
    (
        "chrony",
        "chronyd -x, the NTP server of the mfv-net SNTP tests (it never sets the clock)",
    ),
    (
        "isc-dhcp-client",
        "dhclient, a reference client of cargo xtask bench dhcp",
    ),
    (
        "libvirt-daemon",
        "libvirtd and virtlogd for the private daemon of the mfv-vm tests",
    ),
    ("libvirt-daemon-driver-qemu", "libvirt's QEMU driver"),
    ("libvirt-clients", "virsh, the reference of the VM listing"),
    (
        "chromium",
        "the headless browser the tests of the web pages drive (mfv-tests Browser)",
    ),
    (
        "chromium-driver",
        "chromedriver, WebDriver for that browser",
    ),
    (
        "qemu-utils",
        "qemu-img checks backing files in the mfv-vm tests",
    ),
    (
        "dmidecode",
        "libvirtd reads the host's SMBIOS tables with it (the image carries it)",
    ),
    (
        "lvm2",
        "libvirt's logical pools in the mfv-vm tests (pvcreate, vgcreate, pvs); the image carries LVM's tools",
    ),
    (
        "ovmf",
        "UEFI firmware for VMs: the image carries its 4M code and vars files and descriptors",
    ),
    (
        "ipxe-qemu",
        "QEMU's iPXE option ROMs: the PXE boot tests (tests/tests/media.rs); the image carries them",
    ),
    (
        "nfs-common",
        "mount.nfs, which the image carries to mount the exports of nfs storage pools",
    ),
    (
        "nfs-ganesha",
        "the private NFSv4 server of the nfs storage pool appliance test (userspace, loopback)",
    ),
    (
        "nfs-ganesha-vfs",
        "the ganesha back end that exports a local directory",
    ),
    ("wrk", "the HTTP load generator of cargo xtask bench web"),
    (
        "lighttpd",
        "the reference web server of cargo xtask bench web (FastCGI to php-cgi)",
    ),
    (
        "php-cgi",
        "php-cgi, the FastCGI PHP of the reference of cargo xtask bench web",
    ),
    (
        "php-sqlite3",
        "SQLite for the reference PHP script of cargo xtask bench web",
    ),
];

/// The Debian packages that build mfv-web's front-end bundles (`cargo xtask web`), needed
/// only where no `npm` is on the PATH: a machine with another Node.js (NodeSource's, whose
/// `nodejs` package carries its own npm) keeps it, as Debian's `npm` would conflict with it.
pub const NODE_PACKAGES: &[(&str, &str)] = &[
    (
        "nodejs",
        "runs esbuild and mfv-web/web/build.mjs (cargo xtask web)",
    ),
    (
        "npm",
        "installs mfv-web's front-end packages from its lockfile (npm ci)",
    ),
];

/// What to do about missing packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Install them when root, otherwise fail with the command to run.
    Install,
    /// Only report them (and fail).
    CheckOnly,
}

/// The package database and installer (dpkg and apt-get on the real system).
pub trait PackageManager {
    /// Which of `packages` are installed.
    fn installed(&self, packages: &[&str]) -> Result<BTreeSet<String>>;
    /// Refreshes the package lists (`apt-get update`).
    fn update(&mut self) -> Result<()>;
    /// Installs `packages`.
    fn install(&mut self, packages: &[&str]) -> Result<()>;
}

/// dpkg-query and apt-get.
#[derive(Debug)]
pub struct Apt;

impl PackageManager for Apt {
    fn installed(&self, packages: &[&str]) -> Result<BTreeSet<String>> {
        // dpkg-query exits 1 when a package is unknown but still prints the known ones.
        let output = cmd::capture(
            Command::new("dpkg-query")
                .arg("-W")
                .arg("-f=${Package}\t${Status}\n")
                .args(packages),
        )?;
        Ok(parse_dpkg_status(&String::from_utf8_lossy(&output.stdout)))
    }

    fn update(&mut self) -> Result<()> {
        let mut command = apt_get();
        command.arg("update");
        println!("running {}", cmd::display(&command));
        cmd::run(&mut command)
    }

    fn install(&mut self, packages: &[&str]) -> Result<()> {
        let mut command = apt_get();
        command
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages);
        println!("running {}", cmd::display(&command));
        cmd::run(&mut command)
    }
}

fn apt_get() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Makes sure every package in [`PACKAGES`] is installed, and [`NODE_PACKAGES`] where no
/// `npm` is on the PATH.
pub fn ensure(mode: Mode) -> Result<()> {
    let names = required(program_on_path("npm"));
    ensure_with(&mut Apt, is_root(), mode, &names)
}

/// The names of the packages to have: [`PACKAGES`], and [`NODE_PACKAGES`] unless an `npm`
/// is there already (`has_npm`).
fn required(has_npm: bool) -> Vec<&'static str> {
    let node: &[(&str, &str)] = if has_npm { &[] } else { NODE_PACKAGES };
    PACKAGES.iter().chain(node).map(|(name, _)| *name).collect()
}

/// Whether an executable file named `program` is in a directory of the PATH.
fn program_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
    })
}

fn ensure_with(
    manager: &mut dyn PackageManager,
    root: bool,
    mode: Mode,
    packages: &[&str],
) -> Result<()> {
    let missing = missing(manager, packages)?;
    if missing.is_empty() {
        println!("Debian packages: all {} installed", packages.len());
        return Ok(());
    }
    let line = install_line(&missing);
    match (mode, root) {
        (Mode::CheckOnly, true) => {
            bail!(
                "missing Debian packages: {}; install them with:\n  {line}",
                missing.join(" ")
            )
        }
        (_, false) => bail!(
            "missing Debian packages: {}; run as root or install them with:\n  sudo {line}",
            missing.join(" ")
        ),
        (Mode::Install, true) => {
            println!("installing missing Debian packages: {}", missing.join(" "));
            manager.update()?;
            install_consistent_set(manager, packages, &missing)
        }
    }
}

/// How many `apt-get install` rounds may run before the set is declared inconsistent: the first
/// installs what was missing, the second puts back what the first removed (a preinstalled newer
/// `qemu-utils` is removed by Debian 12's `qemu-system-x86`, whose common package it breaks).
const INSTALL_ROUNDS: usize = 2;

/// Installs `missing`, then checks every one of `packages` again, because an install may remove
/// packages that were there before; reinstalls what went missing, and fails naming whatever is
/// still absent after [`INSTALL_ROUNDS`].
fn install_consistent_set(
    manager: &mut dyn PackageManager,
    packages: &[&str],
    missing: &[&str],
) -> Result<()> {
    let mut to_install = missing.to_vec();
    for round in 1..=INSTALL_ROUNDS {
        manager.install(&to_install)?;
        let now_missing = self::missing(manager, packages)?;
        if now_missing.is_empty() {
            println!("Debian packages: all {} installed", packages.len());
            return Ok(());
        }
        let removed: Vec<&str> = now_missing
            .iter()
            .copied()
            .filter(|package| !to_install.contains(package))
            .collect();
        if !removed.is_empty() && round < INSTALL_ROUNDS {
            println!(
                "apt-get removed packages this project needs: {}; installing them again",
                removed.join(" ")
            );
        }
        to_install = now_missing;
    }
    bail!(
        "after {INSTALL_ROUNDS} rounds of apt-get install these packages are still not installed: \
         {}; a package on this machine conflicts with them (see `apt-cache policy {}`); remove \
         the conflicting package or install them by hand with:\n  {}",
        to_install.join(" "),
        to_install.join(" "),
        install_line(&to_install)
    )
}

fn missing<'a>(manager: &dyn PackageManager, packages: &[&'a str]) -> Result<Vec<&'a str>> {
    let installed = manager.installed(packages)?;
    Ok(packages
        .iter()
        .copied()
        .filter(|package| !installed.contains(*package))
        .collect())
}

/// The command that installs `packages` (without `sudo`).
pub fn install_line(packages: &[&str]) -> String {
    format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// The installed package names in `dpkg-query -W -f='${Package}\t${Status}\n'` output.
fn parse_dpkg_status(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| status.split_whitespace().nth(2) == Some("installed"))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct FakeManager {
        installed: BTreeSet<String>,
        calls: Vec<String>,
        install_works: bool,
        /// Packages each install removes, as apt-get does to resolve a conflict.
        removes_on_install: Vec<String>,
    }

    impl FakeManager {
        fn with(installed: &[&str]) -> Self {
            Self {
                installed: installed.iter().map(|name| (*name).to_owned()).collect(),
                calls: Vec::new(),
                install_works: true,
                removes_on_install: Vec::new(),
            }
        }
    }

    impl PackageManager for FakeManager {
        fn installed(&self, _packages: &[&str]) -> Result<BTreeSet<String>> {
            Ok(self.installed.clone())
        }
        fn update(&mut self) -> Result<()> {
            self.calls.push("update".to_owned());
            Ok(())
        }
        fn install(&mut self, packages: &[&str]) -> Result<()> {
            self.calls.push(format!("install {}", packages.join(" ")));
            for removed in &self.removes_on_install {
                if !packages.contains(&removed.as_str()) {
                    self.installed.remove(removed);
                }
            }
            if self.install_works {
                self.installed
                    .extend(packages.iter().map(|name| (*name).to_owned()));
            }
            Ok(())
        }
    }

    #[test]
    fn nothing_happens_when_everything_is_installed() {
        let mut manager = FakeManager::with(&["cpio", "kmod"]);
        ensure_with(&mut manager, true, Mode::Install, &["cpio", "kmod"]).unwrap();
        assert!(manager.calls.is_empty());
    }

    #[test]
    fn root_updates_then_installs_only_the_missing_ones() {
        let mut manager = FakeManager::with(&["cpio"]);
        ensure_with(&mut manager, true, Mode::Install, &["cpio", "kmod", "zstd"]).unwrap();
        assert_eq!(manager.calls, ["update", "install kmod zstd"]);
    }

    #[test]
    fn non_root_fails_with_the_exact_sudo_line() {
        let mut manager = FakeManager::with(&["cpio"]);
        let error = ensure_with(
            &mut manager,
            false,
            Mode::Install,
            &["cpio", "kmod", "zstd"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.ends_with("\n  sudo apt-get install -y --no-install-recommends kmod zstd"),
            "{error}"
        );
        assert!(manager.calls.is_empty());
    }

    #[test]
    fn check_only_never_installs() {
        let mut manager = FakeManager::with(&[]);
        let error = ensure_with(&mut manager, true, Mode::CheckOnly, &["kmod"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing Debian packages: kmod"), "{error}");
        assert!(manager.calls.is_empty());
    }

    #[test]
    fn a_package_still_missing_after_install_is_an_error() {
        let mut manager = FakeManager {
            install_works: false,
            ..FakeManager::with(&[])
        };
        let error = ensure_with(&mut manager, true, Mode::Install, &["kmod"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("still not installed: kmod"), "{error}");
        assert!(
            error.contains("apt-get install -y --no-install-recommends kmod"),
            "{error}"
        );
        assert_eq!(manager.calls, ["update", "install kmod", "install kmod"]);
    }

    #[test]
    fn a_package_the_install_removed_is_installed_again() {
        let mut manager = FakeManager {
            removes_on_install: vec!["qemu-utils".to_owned()],
            ..FakeManager::with(&["cpio", "qemu-utils"])
        };
        ensure_with(
            &mut manager,
            true,
            Mode::Install,
            &["cpio", "qemu-system-x86", "qemu-utils"],
        )
        .unwrap();
        assert_eq!(
            manager.calls,
            ["update", "install qemu-system-x86", "install qemu-utils"]
        );
        assert!(manager.installed.contains("qemu-utils"));
    }

    #[test]
    fn a_package_every_install_removes_is_named_in_the_error() {
        let mut manager = FakeManager {
            removes_on_install: vec!["qemu-utils".to_owned(), "qemu-system-x86".to_owned()],
            ..FakeManager::with(&["qemu-utils"])
        };
        let error = ensure_with(
            &mut manager,
            true,
            Mode::Install,
            &["qemu-system-x86", "qemu-utils"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("still not installed: qemu-system-x86"),
            "{error}"
        );
        assert_eq!(
            manager.calls,
            ["update", "install qemu-system-x86", "install qemu-utils"]
        );
    }

    #[test]
    fn dpkg_status_counts_only_installed_packages() {
        let output = "cpio\tinstall ok installed\n\
                      kmod\tdeinstall ok config-files\n\
                      zstd\thold ok installed\n\
                      libvirt-dev\tunknown ok not-installed\n";
        let installed = parse_dpkg_status(output);
        assert_eq!(installed.into_iter().collect::<Vec<_>>(), ["cpio", "zstd"]);
    }

    #[test]
    fn node_and_npm_come_from_debian_only_where_npm_is_absent() {
        let without_npm = required(false);
        assert!(without_npm.contains(&"nodejs") && without_npm.contains(&"npm"));
        let with_npm = required(true);
        assert!(!with_npm.contains(&"nodejs") && !with_npm.contains(&"npm"));
        assert_eq!(without_npm.len(), with_npm.len() + NODE_PACKAGES.len());
    }

    #[test]
    fn a_program_is_found_on_the_path_only_when_it_is_there() {
        assert!(program_on_path("sh"));
        assert!(!program_on_path("no-such-program-mfv"));
    }

    #[test]
    fn package_list_has_the_required_packages() {
        let names: Vec<&str> = PACKAGES.iter().map(|(name, _)| *name).collect();
        for required in [
            "qemu-system-x86",
            "busybox-static",
            "cpio",
            "kmod",
            "zstd",
            "libclang-dev",
            "libvirt-dev",
            "libudev-dev",
            "libblkid-dev",
            "pkg-config",
            "e2fsprogs",
            "dosfstools",
            "xorriso",
            "mtools",
            "grub-common",
            "grub-pc-bin",
            "grub-efi-amd64-bin",
            "ovmf",
            "ipxe-qemu",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }
}
