//! The processor as `/proc/cpuinfo` describes it, and whether `/dev/kvm` can be used.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use serde::Serialize;

use crate::{ProbeError, ProbeIssue};

/// The host's processors. Serializes with these field names (snake_case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// `model name` of the first processor, e.g. `AMD EPYC`.
    pub model_name: Option<String>,
    /// `vendor_id`, e.g. `GenuineIntel` or `AuthenticAMD`.
    pub vendor: Option<String>,
    /// Logical CPUs: the number of `processor` entries.
    pub logical_cpus: u32,
    /// Physical cores: distinct (`physical id`, `core id`) pairs; `None` when cpuinfo does
    /// not show them (e.g. on ARM).
    pub cores: Option<u32>,
    /// Sockets: distinct `physical id` values; `None` when cpuinfo does not show them.
    pub sockets: Option<u32>,
    /// Hardware virtualization from the `flags` line; `None` when the CPU shows neither
    /// `vmx` nor `svm` (the firmware may have turned it off, or this is a guest without
    /// nested virtualization).
    pub virtualization: Option<Virtualization>,
    /// Whether `/dev/kvm` can be used, and why not.
    pub kvm: KvmStatus,
    /// What could not be read; the other fields are still filled in.
    pub issues: Vec<ProbeIssue>,
}

/// Hardware virtualization extension. Serializes as `vmx` or `svm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Virtualization {
    /// Intel VT-x.
    Vmx,
    /// AMD-V.
    Svm,
}

impl Virtualization {
    /// The cpuinfo flag: `vmx` or `svm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Virtualization::Vmx => "vmx",
            Virtualization::Svm => "svm",
        }
    }
}

/// Whether KVM can be used: `/dev/kvm` exists, is a character device and opens read-write.
/// Serializes as `{"usable": bool, "reason": string or null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmStatus {
    /// True when `/dev/kvm` opened read-write.
    pub usable: bool,
    /// Why it is not usable, e.g. `/dev/kvm does not exist`; `None` when usable.
    pub reason: Option<String>,
}

/// Reads `<proc_root>/cpuinfo` and checks `<dev_root>/kvm`. Never fails: what cannot be read
/// is in [`Cpu::issues`].
pub fn read_cpu_at(proc_root: impl AsRef<Path>, dev_root: impl AsRef<Path>) -> Cpu {
    let path = proc_root.as_ref().join("cpuinfo");
    let kvm = kvm_status(&dev_root.as_ref().join("kvm"));
    match fs::read_to_string(&path) {
        Ok(text) => parse_cpuinfo(&path, &text, kvm),
        Err(source) => Cpu {
            model_name: None,
            vendor: None,
            logical_cpus: 0,
            cores: None,
            sockets: None,
            virtualization: None,
            kvm,
            issues: vec![ProbeIssue::from_error(&ProbeError::ReadAttribute {
                path,
                source,
            })],
        },
    }
}

/// Parses cpuinfo text (`key : value` lines, one block per processor).
fn parse_cpuinfo(path: &Path, text: &str, kvm: KvmStatus) -> Cpu {
    let mut model_name = None;
    let mut vendor = None;
    let mut logical_cpus = 0u32;
    let mut physical_ids = BTreeSet::new();
    let mut core_ids = BTreeSet::new();
    let mut physical_id = None;
    let mut virtualization = None;
    let mut flags_seen = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => {
                logical_cpus = logical_cpus.saturating_add(1);
                physical_id = None;
            }
            "model name" if model_name.is_none() => model_name = Some(value.to_owned()),
            "vendor_id" if vendor.is_none() => vendor = Some(value.to_owned()),
            "physical id" => {
                physical_ids.insert(value.to_owned());
                physical_id = Some(value.to_owned());
            }
            "core id" => {
                core_ids.insert((physical_id.clone(), value.to_owned()));
            }
            "flags" if !flags_seen => {
                flags_seen = true;
                let flags: Vec<&str> = value.split_whitespace().collect();
                virtualization = if flags.contains(&"vmx") {
                    Some(Virtualization::Vmx)
                } else if flags.contains(&"svm") {
                    Some(Virtualization::Svm)
                } else {
                    None
                };
            }
            _ => {}
        }
    }
    let count = |set_len: usize| (set_len > 0).then(|| u32::try_from(set_len).unwrap_or(u32::MAX));
    let mut issues = Vec::new();
    if logical_cpus == 0 {
        issues.push(ProbeIssue {
            path: path.to_owned(),
            message: format!("{}: no processor entries", path.display()),
        });
    }
    Cpu {
        model_name,
        vendor,
        logical_cpus,
        cores: count(core_ids.len()),
        sockets: count(physical_ids.len()),
        virtualization,
        kvm,
        issues,
    }
}

/// Checks that `path` is a character device that opens read-write.
fn kvm_status(path: &Path) -> KvmStatus {
    let unusable = |reason: String| KvmStatus {
        usable: false,
        reason: Some(reason),
    };
    match fs::metadata(path) {
        Ok(metadata) if !metadata.file_type().is_char_device() => {
            return unusable(format!("{} is not a character device", path.display()));
        }
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return unusable(format!("{} does not exist", path.display()));
        }
        Err(error) => return unusable(format!("cannot stat {}: {error}", path.display())),
    }
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => KvmStatus {
            usable: true,
            reason: None,
        },
        Err(error) => unusable(format!(
            "cannot open {} read-write: {error}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::process::Command;

    use super::*;

    /// cpuinfo of two sockets with two cores each, one thread per core, `flags` as given.
    fn two_socket_cpuinfo(vendor: &str, model: &str, flags: &str) -> String {
        let mut text = String::new();
        for (processor, (socket, core)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate()
        {
            text.push_str(&format!(
                "processor\t: {processor}\nvendor_id\t: {vendor}\nmodel name\t: {model}\n\
                 physical id\t: {socket}\nsiblings\t: 2\ncore id\t\t: {core}\ncpu cores\t: 2\n\
                 flags\t\t: {flags}\npower management:\n\n"
            ));
        }
        text
    }

    fn check(cpuinfo: &str) -> Cpu {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpuinfo"), cpuinfo).unwrap();
        read_cpu_at(dir.path(), dir.path())
    }

    #[test]
    fn intel_with_vmx() {
        let cpu = check(&two_socket_cpuinfo(
            "GenuineIntel",
            "Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz",
            "fpu vme de pse tsc msr vmx smx est",
        ));
        assert_eq!(
            cpu.model_name.as_deref(),
            Some("Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz")
        );
        assert_eq!(cpu.vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(cpu.logical_cpus, 4);
        assert_eq!(cpu.cores, Some(4));
        assert_eq!(cpu.sockets, Some(2));
        assert_eq!(cpu.virtualization, Some(Virtualization::Vmx));
        assert!(cpu.issues.is_empty());
    }

    #[test]
    fn amd_with_svm_and_hyperthreads() {
        // Two logical CPUs on one core: siblings share the core id.
        let cpuinfo = "processor : 0\nvendor_id : AuthenticAMD\nmodel name : AMD EPYC 7302\n\
                       physical id : 0\ncore id : 0\nflags : fpu svm sse\n\n\
                       processor : 1\nvendor_id : AuthenticAMD\nmodel name : AMD EPYC 7302\n\
                       physical id : 0\ncore id : 0\nflags : fpu svm sse\n";
        let cpu = check(cpuinfo);
        assert_eq!(cpu.logical_cpus, 2);
        assert_eq!(cpu.cores, Some(1));
        assert_eq!(cpu.sockets, Some(1));
        assert_eq!(cpu.virtualization, Some(Virtualization::Svm));
        assert_eq!(serde_json::to_value(cpu.virtualization).unwrap(), "svm");
    }

    #[test]
    fn no_virtualization_and_no_topology() {
        // An ARM-style cpuinfo: no model name, physical id or core id, `Features` not `flags`.
        let cpuinfo = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\n\
                       processor\t: 1\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\n\
                       Hardware\t: some board\nnot a key value line\n";
        let cpu = check(cpuinfo);
        assert_eq!(cpu.logical_cpus, 2);
        assert_eq!((cpu.model_name, cpu.cores, cpu.sockets), (None, None, None));
        assert_eq!(cpu.virtualization, None);
        assert!(cpu.issues.is_empty());

        let cpu = check(&two_socket_cpuinfo(
            "GenuineIntel",
            "QEMU Virtual CPU",
            "fpu sse2 hypervisor",
        ));
        assert_eq!(cpu.virtualization, None);
    }

    #[test]
    fn no_processor_entries_is_an_issue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpuinfo");
        fs::write(&path, "garbage\n").unwrap();
        let cpu = read_cpu_at(dir.path(), dir.path());
        assert_eq!(cpu.logical_cpus, 0);
        assert_eq!(
            cpu.issues,
            [ProbeIssue {
                path: path.clone(),
                message: format!("{}: no processor entries", path.display()),
            }]
        );
    }

    #[test]
    fn unreadable_cpuinfo_is_an_issue() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = read_cpu_at(dir.path(), dir.path());
        assert_eq!(cpu.logical_cpus, 0);
        assert_eq!(cpu.issues.len(), 1);
        assert_eq!(
            cpu.issues[0].message,
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                dir.path().join("cpuinfo").display()
            )
        );
        assert!(!cpu.kvm.usable);
    }

    #[test]
    fn kvm_missing_not_a_device_or_not_openable() {
        let dir = tempfile::tempdir().unwrap();
        let kvm = dir.path().join("kvm");
        assert_eq!(
            kvm_status(&kvm),
            KvmStatus {
                usable: false,
                reason: Some(format!("{} does not exist", kvm.display())),
            }
        );
        fs::write(&kvm, "").unwrap();
        assert_eq!(
            kvm_status(&kvm).reason,
            Some(format!("{} is not a character device", kvm.display()))
        );
        fs::remove_file(&kvm).unwrap();
        fs::create_dir(dir.path().join("loop")).unwrap();
        symlink("loop/../kvm", &kvm).unwrap();
        assert!(kvm_status(&kvm).reason.unwrap().starts_with("cannot stat "));
        fs::remove_file(&kvm).unwrap();
        // Major 511 has no driver: the node exists but opening it fails (ENXIO). Needs root.
        let status = Command::new("mknod")
            .arg(&kvm)
            .args(["c", "511", "0"])
            .status()
            .unwrap();
        assert!(status.success(), "mknod needs root");
        assert_eq!(
            kvm_status(&kvm).reason,
            Some(format!(
                "cannot open {} read-write: No such device or address (os error 6)",
                kvm.display()
            ))
        );
    }

    #[test]
    fn kvm_usable_when_a_character_device_opens_read_write() {
        let dir = tempfile::tempdir().unwrap();
        let kvm = dir.path().join("kvm");
        symlink("/dev/null", &kvm).unwrap();
        assert_eq!(
            kvm_status(&kvm),
            KvmStatus {
                usable: true,
                reason: None
            }
        );
    }

    #[test]
    fn cpu_serializes_as_stable_json() {
        let cpu = check(&two_socket_cpuinfo("GenuineIntel", "Xeon", "vmx"));
        let mut json = serde_json::to_value(&cpu).unwrap();
        json["kvm"]["reason"] = serde_json::json!("...");
        assert_eq!(
            json,
            serde_json::json!({
                "model_name": "Xeon",
                "vendor": "GenuineIntel",
                "logical_cpus": 4,
                "cores": 4,
                "sockets": 2,
                "virtualization": "vmx",
                "kvm": {"usable": false, "reason": "..."},
                "issues": []
            })
        );
    }

    /// This machine: the count matches the `processor` lines and KVM usability matches
    /// opening /dev/kvm directly.
    #[test]
    fn matches_this_machine() {
        let cpu = read_cpu_at("/proc", "/dev");
        let text = fs::read_to_string("/proc/cpuinfo").unwrap();
        let processors = text
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        assert_eq!(cpu.logical_cpus as usize, processors);
        assert!(cpu.issues.is_empty(), "{:?}", cpu.issues);
        let opens = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        assert_eq!(cpu.kvm.usable, opens, "{:?}", cpu.kvm);
        let flags = text
            .lines()
            .find(|line| line.starts_with("flags"))
            .unwrap_or("");
        assert_eq!(
            cpu.virtualization.is_some(),
            flags
                .split_whitespace()
                .any(|flag| flag == "vmx" || flag == "svm")
        );
    }
}
