//! Which kernel modules go in the initrd: the drivers a virtualization host needs (the
//! [`SELECTION`] table), closed over modules.dep and modules.softdep, staged in a directory
//! where depmod writes indices that match exactly what was staged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::kernel::{self, Kernel};

/// The modules to put in the image, as paths relative to `lib/modules/<release>/`. A pattern
/// ending in `/` takes every module below that directory; any other pattern names one file.
/// Their dependencies are added automatically. Edit this table to change what the image holds.
pub const SELECTION: &[(&str, &str)] = &[
    // Storage controllers and disks: every driver of the kernel package. They live in the
    // payload squashfs, compressed, and cost RAM only once loaded.
    ("kernel/drivers/ata/", "SATA/PATA/AHCI controllers"),
    ("kernel/drivers/nvme/", "NVMe disks"),
    (
        "kernel/drivers/scsi/",
        "SCSI/SAS/RAID controllers, disks, CD drives",
    ),
    (
        "kernel/drivers/block/",
        "virtio disks, loop (disk image files), floppy, ...",
    ),
    ("kernel/drivers/cdrom/cdrom.ko", "CD-ROM core"),
    (
        "kernel/drivers/usb/",
        "USB host controllers, storage, and every USB driver",
    ),
    ("kernel/drivers/mmc/core/", "SD/MMC cards"),
    ("kernel/drivers/mmc/host/sdhci.ko", "SD host controllers"),
    (
        "kernel/drivers/mmc/host/sdhci-pci.ko",
        "SD host controllers on PCI",
    ),
    (
        "kernel/drivers/mmc/host/sdhci-acpi.ko",
        "SD host controllers on ACPI",
    ),
    ("kernel/drivers/md/", "software RAID and device mapper"),
    // Network.
    ("kernel/drivers/net/ethernet/", "every wired NIC driver"),
    ("kernel/drivers/net/virtio_net.ko", "virtio NICs"),
    ("kernel/drivers/net/bonding/", "NIC bonding"),
    ("kernel/drivers/net/tun.ko", "tap devices for VMs"),
    ("kernel/drivers/net/veth.ko", "veth pairs"),
    ("kernel/drivers/net/macvlan.ko", "macvlan"),
    ("kernel/drivers/net/macvtap.ko", "macvtap for VMs"),
    ("kernel/net/bridge/bridge.ko", "the VM bridge"),
    ("kernel/net/8021q/", "VLANs"),
    (
        "kernel/drivers/vhost/vhost_net.ko",
        "in-kernel virtio-net backend",
    ),
    // Buses, input, virtualization.
    ("kernel/drivers/hid/hid-generic.ko", "USB keyboards"),
    ("kernel/drivers/hid/usbhid/", "USB keyboards"),
    ("kernel/drivers/virtio/", "virtio transports and balloon"),
    (
        "kernel/drivers/char/hw_random/virtio-rng.ko",
        "entropy in guests (first-boot TLS key)",
    ),
    ("kernel/arch/x86/kvm/", "KVM (Intel and AMD)"),
    (
        "kernel/drivers/acpi/button.ko",
        "the power button: a press shuts the host down",
    ),
    (
        "kernel/drivers/input/evdev.ko",
        "input event nodes: PID 1 reads the power button",
    ),
    // File systems.
    ("kernel/fs/ext4/", "ext4"),
    ("kernel/fs/fat/", "FAT/vfat (USB sticks, floppies)"),
    ("kernel/fs/nls/nls_cp437.ko", "FAT code page"),
    ("kernel/fs/nls/nls_utf8.ko", "FAT/ISO file names"),
    ("kernel/fs/nls/nls_iso8859-1.ko", "FAT file names"),
    (
        "kernel/fs/nls/nls_ascii.ko",
        "FAT I/O charset (the kernel's default iocharset)",
    ),
    ("kernel/fs/isofs/", "ISO 9660 (install media)"),
    ("kernel/fs/squashfs/", "the payload squashfs (loaded early)"),
    ("kernel/fs/xfs/", "XFS storage pools"),
    ("kernel/fs/nfs/nfs.ko", "NFS client (nfs storage pools)"),
    (
        "kernel/fs/nfs/nfsv4.ko",
        "NFSv4, the version nfs storage pools mount",
    ),
];

/// The parsed dependency indices of a kernel's modules.
#[derive(Debug, Default)]
pub struct ModuleIndex {
    /// Module path -> the paths it depends on (modules.dep).
    dependencies: BTreeMap<String, Vec<String>>,
    /// Module name -> soft dependency names (modules.softdep).
    soft_dependencies: BTreeMap<String, Vec<String>>,
    /// Exact (wildcard-free) alias -> module names (modules.alias).
    aliases: BTreeMap<String, Vec<String>>,
}

impl ModuleIndex {
    /// Reads modules.dep, modules.softdep and modules.alias from a modules directory.
    pub fn read(modules_dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = modules_dir.join(name);
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        Self::parse(
            &read("modules.dep")?,
            &read("modules.softdep")?,
            &read("modules.alias")?,
        )
    }

    fn parse(modules_dep: &str, softdep: &str, alias: &str) -> Result<Self> {
        let mut index = Self::default();
        for (number, line) in modules_dep.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((module, dependencies)) = line.split_once(':') else {
                bail!("modules.dep line {}: no `:` in {line:?}", number + 1);
            };
            index.dependencies.insert(
                module.trim().to_owned(),
                dependencies.split_whitespace().map(str::to_owned).collect(),
            );
        }
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            index.soft_dependencies.insert(
                normalize(module),
                words
                    .filter(|word| !word.ends_with(':'))
                    .map(normalize)
                    .collect(),
            );
        }
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) =
                (words.next(), words.next(), words.next())
                && !pattern.contains(['*', '?', '['])
            {
                index
                    .aliases
                    .entry(pattern.replace('-', "_"))
                    .or_default()
                    .push(normalize(module));
            }
        }
        Ok(index)
    }
}

/// A module's name from its path or its name: no directory, no `.ko*`, `_` for `-`.
fn normalize(name_or_path: &str) -> String {
    let file = name_or_path.rsplit('/').next().unwrap_or(name_or_path);
    let name = file.split_once(".ko").map_or(file, |(name, _)| name);
    name.replace('-', "_")
}

/// The chosen modules.
#[derive(Debug, PartialEq, Eq)]
pub struct Selection {
    /// Module paths relative to `lib/modules/<release>/`, sorted.
    pub modules: BTreeSet<String>,
    /// Patterns of the table that matched no module in this kernel.
    pub unmatched: Vec<&'static str>,
}

/// The modules matching `patterns`, with everything they depend on (hard and soft).
pub fn select(index: &ModuleIndex, patterns: &[(&'static str, &str)]) -> Selection {
    let mut unmatched = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (pattern, _) in patterns {
        let before = pending.len();
        pending.extend(
            index
                .dependencies
                .keys()
                .filter(|module| matches(pattern, module))
                .cloned(),
        );
        if pending.len() == before {
            unmatched.push(*pattern);
        }
    }
    let by_name: BTreeMap<String, &String> = index
        .dependencies
        .keys()
        .map(|module| (normalize(module), module))
        .collect();
    let mut modules = BTreeSet::new();
    while let Some(module) = pending.pop() {
        if !modules.insert(module.clone()) {
            continue;
        }
        if let Some(dependencies) = index.dependencies.get(&module) {
            pending.extend(dependencies.iter().cloned());
        }
        let soft = index.soft_dependencies.get(&normalize(&module));
        for name in soft.into_iter().flatten() {
            let names = index
                .aliases
                .get(name)
                .cloned()
                .unwrap_or_else(|| vec![name.clone()]);
            // Soft dependencies that are built in (or absent) have no path: nothing to add.
            pending.extend(
                names
                    .iter()
                    .filter_map(|name| by_name.get(name))
                    .map(|path| (*path).clone()),
            );
        }
    }
    Selection { modules, unmatched }
}

fn matches(pattern: &str, module: &str) -> bool {
    if pattern.ends_with('/') {
        module.starts_with(pattern)
    } else {
        module == pattern
    }
}

/// Modules staged for the image, with indices made by depmod.
#[derive(Debug)]
pub struct StagedModules {
    /// `lib/modules/<release>` in the staging directory: everything below goes in the image.
    pub dir: PathBuf,
    /// How many modules.
    pub count: usize,
}

/// Copies the selected modules of `kernel` (plus modules.builtin*, a filtered modules.order)
/// to `<staging>/lib/modules/<release>` and runs depmod there.
pub fn stage(kernel: &Kernel, staging: &Path) -> Result<StagedModules> {
    let source = kernel.modules_dir();
    let index = ModuleIndex::read(&source)?;
    let selection = select(&index, SELECTION);
    for pattern in &selection.unmatched {
        eprintln!(
            "warning: module selection pattern {pattern} matches nothing in kernel {}",
            kernel.release
        );
    }
    if staging.exists() {
        fs::remove_dir_all(staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    let dir = staging.join("lib/modules").join(&kernel.release);
    let mut bytes = 0;
    for module in &selection.modules {
        let from = source.join(module);
        let to = dir.join(module);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // A hard link is free; fall back to a copy across file systems.
        if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        bytes += fs::metadata(&to)
            .with_context(|| format!("cannot stat {}", to.display()))?
            .len();
    }
    for name in ["modules.builtin", "modules.builtin.modinfo"] {
        fs::copy(source.join(name), dir.join(name))
            .with_context(|| format!("cannot copy {}", source.join(name).display()))?;
    }
    let order_path = source.join("modules.order");
    let order = fs::read_to_string(&order_path)
        .with_context(|| format!("cannot read {}", order_path.display()))?;
    let filtered: String = order
        .lines()
        .filter(|line| selection.modules.contains(*line))
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(dir.join("modules.order"), filtered)
        .with_context(|| format!("cannot write {}", dir.join("modules.order").display()))?;
    kernel::depmod(staging, &kernel.release)?;
    println!(
        "kernel modules: {} selected ({:.1} MiB uncompressed)",
        selection.modules.len(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(StagedModules {
        dir,
        count: selection.modules.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES_DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/net/ethernet/realtek/8139too.ko: kernel/drivers/net/mii.ko
kernel/drivers/net/mii.ko:
kernel/drivers/net/wireless/ath/ath9k/ath9k.ko: kernel/net/mac80211/mac80211.ko
kernel/net/mac80211/mac80211.ko:
kernel/drivers/block/virtio_blk.ko:
";
    const SOFTDEP: &str = "\
# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c
softdep virtio_blk pre: builtin_thing post: absent-module
";
    const ALIAS: &str = "\
alias crypto-crc32c crc32c_generic
alias crypto-crc32c crc32c_intel
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
";

    fn index() -> ModuleIndex {
        ModuleIndex::parse(MODULES_DEP, SOFTDEP, ALIAS).unwrap()
    }

    fn check(patterns: &[(&'static str, &str)], expected: &[&str], unmatched: &[&str]) {
        let selection = select(&index(), patterns);
        assert_eq!(
            selection
                .modules
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(selection.unmatched, unmatched);
    }

    #[test]
    fn a_directory_pattern_takes_the_tree_and_dependencies() {
        check(
            &[("kernel/drivers/net/ethernet/", "")],
            &[
                "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
                "kernel/drivers/net/ethernet/realtek/8139too.ko",
                "kernel/drivers/net/mii.ko",
            ],
            &[],
        );
    }

    #[test]
    fn soft_dependencies_resolve_through_exact_aliases() {
        check(
            &[("kernel/fs/ext4/ext4.ko", "")],
            &[
                "kernel/arch/x86/crypto/crc32c-intel.ko",
                "kernel/crypto/crc32c_generic.ko",
                "kernel/fs/ext4/ext4.ko",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko",
            ],
            &[],
        );
    }

    #[test]
    fn built_in_or_absent_soft_dependencies_are_skipped() {
        check(
            &[("kernel/drivers/block/virtio_blk.ko", "")],
            &["kernel/drivers/block/virtio_blk.ko"],
            &[],
        );
    }

    #[test]
    fn a_file_pattern_is_exact_and_unmatched_patterns_are_reported() {
        check(
            &[
                ("kernel/drivers/net/mii.ko", ""),
                ("kernel/drivers/net/mii", ""),
                ("kernel/nothing/", ""),
            ],
            &["kernel/drivers/net/mii.ko"],
            &["kernel/drivers/net/mii", "kernel/nothing/"],
        );
    }

    #[test]
    fn a_malformed_modules_dep_is_an_error() {
        let error = ModuleIndex::parse("kernel/a.ko\n", "", "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(
            normalize("kernel/arch/x86/crypto/crc32c-intel.ko"),
            "crc32c_intel"
        );
        assert_eq!(normalize("usb-storage.ko.zst"), "usb_storage");
        assert_eq!(normalize("crypto-crc32c"), "crypto_crc32c");
    }

    #[test]
    fn the_table_has_no_duplicates() {
        let patterns: BTreeSet<&str> = SELECTION.iter().map(|(pattern, _)| *pattern).collect();
        assert_eq!(patterns.len(), SELECTION.len());
    }
}
