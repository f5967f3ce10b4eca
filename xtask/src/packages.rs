//! Which files of Debian's packages go in the image: libvirt, QEMU and the firmware its guests
//! boot ([`SELECTION`]), taken from the packages installed on the build machine, so the image
//! runs the same libvirt and QEMU the tests run here.
//!
//! Each row names a package, path patterns and why they are needed. The package's file list
//! comes from `dpkg-query -L`; a pattern is an exact path, `dir/` (every file below `dir`), or
//! a path whose last segment holds one `*` (`/usr/share/seabios/vgabios*.bin`). Every pattern
//! must match a file of its package, so an upgrade that moves or renames files fails the build
//! instead of leaving them out. Directories are not taken (they come with their files);
//! symbolic links are taken as links with their target, and the image build checks that each
//! of them resolves inside the image. Shared libraries are not listed here: every ELF file
//! taken (executables and the modules libvirt and QEMU dlopen) goes through ELF resolution with
//! our binaries, which brings in what it links.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Files of one package taken for one purpose.
#[derive(Debug, Clone, Copy)]
pub struct PackageFiles {
    /// The Debian package that ships the files.
    pub package: &'static str,
    /// Absolute path patterns (see the module docs).
    pub patterns: &'static [&'static str],
    /// Why the image needs them, and what was left out.
    pub why: &'static str,
}

/// The package files to put in the image. Edit this table to change what the image holds.
pub const SELECTION: &[PackageFiles] = &[
    PackageFiles {
        package: "libvirt-daemon",
        patterns: &["/usr/sbin/libvirtd", "/usr/sbin/virtlogd"],
        why: "the libvirt daemon (Debian 12 ships the monolithic one) and the log daemon that \
              keeps each QEMU's log and console output",
    },
    PackageFiles {
        package: "libvirt-daemon",
        patterns: &[
            "/usr/lib/libvirt/libvirt_iohelper",
            "/usr/lib/libvirt/libvirt_parthelper",
        ],
        why: "helpers libvirtd runs: file I/O for save, restore and core dumps; reading the \
              partitions of disk pools",
    },
    PackageFiles {
        package: "libvirt-daemon",
        patterns: &[
            "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_storage.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_nodedev.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_secret.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_network.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_interface.so",
        ],
        why: "the drivers libvirtd loads beside QEMU's: storage pools, host devices, secrets, \
              virtual networks, host interfaces; nwfilter is left out: its libpcap brings \
              libsystemd, libgcrypt and libdbus (3 MB) and it needs ebtables, which the image \
              lacks",
    },
    PackageFiles {
        package: "libvirt-daemon",
        patterns: &[
            "/usr/lib/x86_64-linux-gnu/libvirt/storage-backend/libvirt_storage_backend_fs.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/storage-backend/libvirt_storage_backend_disk.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/storage-backend/libvirt_storage_backend_logical.so",
            "/usr/lib/x86_64-linux-gnu/libvirt/storage-file/libvirt_storage_file_fs.so",
        ],
        why: "storage pools in directories and file systems, on partitioned disks and in LVM \
              volume groups (30 KB, no library of its own; the LVM tools are the lvm2 row's), \
              and volume files on local file systems; iSCSI, SCSI and multipath are left out",
    },
    PackageFiles {
        package: "libvirt-daemon-driver-qemu",
        patterns: &["/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"],
        why: "libvirt's QEMU driver: qemu:///system",
    },
    PackageFiles {
        package: "libvirt0",
        patterns: &[
            "/usr/share/libvirt/cpu_map/index.xml",
            "/usr/share/libvirt/cpu_map/x86_*.xml",
            "/usr/share/libvirt/schemas/",
        ],
        why: "the x86 CPU models and features libvirt compares guest CPUs with (index.xml \
              loads only the host's architecture) and the RelaxNG schemas it validates XML \
              against; libvirt's libraries come through ELF resolution",
    },
    PackageFiles {
        package: "lvm2",
        patterns: &[
            "/sbin/lvm",
            "/sbin/pvcreate",
            "/sbin/pvremove",
            "/sbin/pvs",
            "/sbin/vgcreate",
            "/sbin/vgremove",
            "/sbin/vgchange",
            "/sbin/vgscan",
            "/sbin/vgs",
            "/sbin/lvcreate",
            "/sbin/lvremove",
            "/sbin/lvchange",
            "/sbin/lvs",
        ],
        why: "logical storage pools: LVM and the links to it that libvirt's logical backend \
              runs (exactly the /sbin paths it was built with); /etc/lvm/lvm.conf is our own \
              (xtask/rootfs: no udev, lvmpolld or dmeventd here), the other LVM commands \
              are left out (`lvm pvmove ...` still runs them)",
    },
    PackageFiles {
        package: "dmidecode",
        patterns: &["/usr/sbin/dmidecode"],
        why: "libvirtd reads the host's SMBIOS tables with it when it starts (an error on \
              every start otherwise) and for `virsh sysinfo` and guests given the host's SMBIOS",
    },
    PackageFiles {
        package: "libvirt-clients",
        patterns: &["/usr/bin/virsh"],
        why: "virsh, for operators on the host shell",
    },
    PackageFiles {
        package: "qemu-system-x86",
        patterns: &["/usr/bin/qemu-system-x86_64"],
        why: "the emulator libvirt runs for every guest",
    },
    PackageFiles {
        package: "qemu-system-common",
        patterns: &["/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so"],
        why: "TCG is a module in Debian's QEMU 7.2: without it only KVM works",
    },
    PackageFiles {
        package: "qemu-system-common",
        patterns: &[
            "/usr/lib/x86_64-linux-gnu/qemu/hw-display-virtio-gpu.so",
            "/usr/lib/x86_64-linux-gnu/qemu/hw-display-virtio-gpu-pci.so",
            "/usr/lib/x86_64-linux-gnu/qemu/hw-display-virtio-vga.so",
            "/usr/lib/x86_64-linux-gnu/qemu/hw-usb-host.so",
        ],
        why: "virtio-gpu and virtio-vga displays and USB passthrough (libusb, 0.1 MB); the -gl \
              displays (libepoxy, a GPU), spice, curses, D-Bus and audio are left out",
    },
    PackageFiles {
        package: "qemu-system-data",
        patterns: &[
            "/usr/share/qemu/bios*.bin",
            "/usr/share/qemu/qboot.rom",
            "/usr/share/qemu/kvmvapic.bin",
            "/usr/share/qemu/linuxboot*.bin",
            "/usr/share/qemu/multiboot*.bin",
            "/usr/share/qemu/pvh.bin",
            "/usr/share/qemu/sgabios.bin",
            "/usr/share/qemu/keymaps/",
        ],
        why: "x86 firmware and option ROMs QEMU loads from its data directory (microvm's \
              qboot, the TPR patcher, direct kernel boot, the serial BIOS) and the VNC key \
              maps; the firmware of other architectures is left out",
    },
    PackageFiles {
        package: "seabios",
        patterns: &[
            "/usr/share/seabios/bios*.bin",
            "/usr/share/seabios/vgabios*.bin",
        ],
        why: "the BIOS of pc and q35 guests and the VGA BIOSes of their display cards \
              (Debian's QEMU searches /usr/share/seabios after /usr/share/qemu)",
    },
    PackageFiles {
        package: "ipxe-qemu",
        patterns: &[
            "/usr/lib/ipxe/qemu/efi-*.rom",
            "/usr/lib/ipxe/qemu/pxe-*.rom",
        ],
        why: "the network boot ROM QEMU loads for each emulated NIC; a NIC without its ROM \
              does not start (Debian's QEMU searches /usr/lib/ipxe/qemu)",
    },
    PackageFiles {
        package: "ovmf",
        patterns: &[
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
            "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
            "/usr/share/qemu/firmware/*.json",
        ],
        why: "UEFI firmware for guests, with and without Secure Boot, and the descriptors \
              libvirt picks firmware from (they name exactly these files)",
    },
    PackageFiles {
        package: "qemu-utils",
        patterns: &["/usr/bin/qemu-img"],
        why: "qemu-img, which libvirt runs to create and convert volumes",
    },
    PackageFiles {
        package: "e2fsprogs",
        patterns: &["/sbin/mke2fs", "/sbin/mkfs.ext4", "/etc/mke2fs.conf"],
        why: "the host daemon formats an ext4 config volume (busybox's mke2fs makes no ext4)",
    },
    PackageFiles {
        package: "dosfstools",
        patterns: &["/sbin/mkfs.fat", "/sbin/mkfs.vfat"],
        why: "the host daemon formats a FAT config volume, readable by any other system",
    },
    PackageFiles {
        package: "nfs-common",
        patterns: &["/sbin/mount.nfs", "/sbin/mount.nfs4"],
        why: "libvirt mounts the export of an nfs storage pool with /bin/mount (busybox), which \
              hands NFS to mount.nfs; NFSv4 needs none of the package's daemons (rpcbind, \
              rpc.statd, rpc.idmapd are left out)",
    },
];

/// What is taken of a path: a file or a link, never a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file; `elf` when it starts with the ELF magic.
    File { elf: bool },
    /// A symbolic link to `target`, as written in the link.
    Symlink { target: String },
}

/// One path of a package's file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The absolute path.
    pub path: String,
    /// What it is on this machine; `None` for a directory.
    pub content: Option<Content>,
}

/// A file (or link) taken from a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    pub package: &'static str,
    /// The file on this machine.
    pub host_path: PathBuf,
    /// Its path in the image: the package's path without the leading `/`, with /bin, /sbin,
    /// /lib and /lib64 moved below /usr (the image's /usr is merged: those are links).
    pub image_path: String,
    pub content: Content,
}

/// The files of every row of `selection`, each package listed once by `list` (its paths and
/// what they are); sorted by image path, each path once.
pub fn collect(
    selection: &[PackageFiles],
    mut list: impl FnMut(&str) -> Result<Vec<Listed>>,
) -> Result<Vec<PackageEntry>> {
    let mut listings: BTreeMap<&str, Vec<Listed>> = BTreeMap::new();
    let mut entries: BTreeMap<String, PackageEntry> = BTreeMap::new();
    for row in selection {
        if !listings.contains_key(row.package) {
            listings.insert(row.package, list(row.package)?);
        }
        let listed = &listings[row.package];
        for pattern in row.patterns {
            let pattern = Pattern::parse(pattern)
                .with_context(|| format!("package {}: bad pattern {pattern:?}", row.package))?;
            let matched: Vec<(&str, &Content)> = listed
                .iter()
                .filter(|item| pattern.matches(&item.path))
                .filter_map(|item| Some((item.path.as_str(), item.content.as_ref()?)))
                .collect();
            if matched.is_empty() {
                bail!(
                    "package {}: pattern {} matches none of its files (`dpkg-query -L {}`); \
                     the image takes them for: {}",
                    row.package,
                    pattern.text,
                    row.package,
                    row.why
                );
            }
            for (path, content) in matched {
                let image_path = image_path_of(path);
                entries.entry(image_path.clone()).or_insert(PackageEntry {
                    package: row.package,
                    host_path: PathBuf::from(path),
                    image_path,
                    content: content.clone(),
                });
            }
        }
    }
    Ok(entries.into_values().collect())
}

/// Where the package path `path` goes in the image (see [`PackageEntry::image_path`]).
pub(crate) fn image_path_of(path: &str) -> String {
    let relative = path.trim_start_matches('/');
    for top in ["bin/", "sbin/", "lib/", "lib64/"] {
        if relative.starts_with(top) {
            return format!("usr/{relative}");
        }
    }
    relative.to_owned()
}

/// The files of `package` on this machine, from `dpkg-query -L`, each looked at with lstat.
pub fn dpkg_listing(package: &str) -> Result<Vec<Listed>> {
    let output = cmd::stdout(Command::new("dpkg-query").arg("-L").arg(package))
        .with_context(|| format!("cannot list the files of package {package}"))?;
    // Lines other than absolute paths (`diverted by ...`) and `/.` name nothing to take.
    output
        .lines()
        .filter(|line| line.starts_with('/') && *line != "/.")
        .map(|path| look_at(path).with_context(|| format!("package {package} lists {path}")))
        .collect()
}

fn look_at(path: &str) -> Result<Listed> {
    let metadata = fs::symlink_metadata(path).with_context(|| format!("cannot stat {path}"))?;
    let content = if metadata.is_dir() {
        None
    } else if metadata.file_type().is_symlink() {
        let target = fs::read_link(path).with_context(|| format!("cannot read link {path}"))?;
        Some(Content::Symlink {
            target: target.to_string_lossy().into_owned(),
        })
    } else if metadata.is_file() {
        let mut magic = [0; 4];
        let read = File::open(path)
            .and_then(|mut file| file.read(&mut magic))
            .with_context(|| format!("cannot read {path}"))?;
        Some(Content::File {
            elf: read == 4 && magic == *b"\x7fELF",
        })
    } else {
        bail!("{path} is neither a file, a directory nor a symbolic link");
    };
    Ok(Listed {
        path: path.to_owned(),
        content,
    })
}

/// A parsed path pattern.
#[derive(Debug)]
struct Pattern<'a> {
    text: &'a str,
    rule: Rule<'a>,
}

#[derive(Debug)]
enum Rule<'a> {
    /// This path only.
    Exact,
    /// Every path below this directory (with its trailing `/`).
    Below,
    /// A path in `dir` whose name starts with `prefix` and ends with `suffix`.
    Wildcard {
        dir: &'a str,
        prefix: &'a str,
        suffix: &'a str,
    },
}

impl<'a> Pattern<'a> {
    fn parse(text: &'a str) -> Result<Self> {
        if !text.starts_with('/') {
            bail!("a pattern is an absolute path");
        }
        let (dir, name) = text.rsplit_once('/').unwrap_or(("", text));
        if dir.contains('*') {
            bail!("`*` is allowed only in the last path segment");
        }
        let rule = match name.split_once('*') {
            None if name.is_empty() => Rule::Below,
            None => Rule::Exact,
            Some((_, rest)) if rest.contains('*') => bail!("a pattern holds at most one `*`"),
            Some((prefix, suffix)) => Rule::Wildcard {
                dir,
                prefix,
                suffix,
            },
        };
        Ok(Self { text, rule })
    }

    fn matches(&self, path: &str) -> bool {
        match self.rule {
            Rule::Exact => path == self.text,
            Rule::Below => path.len() > self.text.len() && path.starts_with(self.text),
            Rule::Wildcard {
                dir,
                prefix,
                suffix,
            } => path.rsplit_once('/').is_some_and(|(path_dir, name)| {
                path_dir == dir
                    && name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Listed {
        Listed {
            path: path.to_owned(),
            content: Some(Content::File { elf: false }),
        }
    }

    fn dir(path: &str) -> Listed {
        Listed {
            path: path.to_owned(),
            content: None,
        }
    }

    fn link(path: &str, target: &str) -> Listed {
        Listed {
            path: path.to_owned(),
            content: Some(Content::Symlink {
                target: target.to_owned(),
            }),
        }
    }

    fn matching(pattern: &str, paths: &[&str]) -> Vec<String> {
        let pattern = Pattern::parse(pattern).unwrap();
        paths
            .iter()
            .filter(|path| pattern.matches(path))
            .map(|path| (*path).to_owned())
            .collect()
    }

    const SEABIOS: &[&str] = &[
        "/usr/share/seabios",
        "/usr/share/seabios/bios.bin",
        "/usr/share/seabios/bios-256k.bin",
        "/usr/share/seabios/vgabios-stdvga.bin",
        "/usr/share/seabios/vgabios.bin",
        "/usr/share/seabios/acpi-dsdt.aml",
        "/usr/share/seabios/old/bios.bin",
        "/usr/share/seabios-extra/bios.bin",
    ];

    #[test]
    fn unmerged_paths_go_below_usr() {
        assert_eq!(image_path_of("/sbin/mke2fs"), "usr/sbin/mke2fs");
        assert_eq!(image_path_of("/bin/true"), "usr/bin/true");
        assert_eq!(
            image_path_of("/lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(image_path_of("/usr/sbin/libvirtd"), "usr/sbin/libvirtd");
        assert_eq!(image_path_of("/etc/mke2fs.conf"), "etc/mke2fs.conf");
        assert_eq!(image_path_of("/libexec/x"), "libexec/x");
    }

    #[test]
    fn an_exact_pattern_matches_that_path_only() {
        assert_eq!(
            matching("/usr/share/seabios/bios.bin", SEABIOS),
            ["/usr/share/seabios/bios.bin"]
        );
    }

    #[test]
    fn a_directory_pattern_matches_everything_below_it() {
        assert_eq!(
            matching("/usr/share/seabios/", SEABIOS),
            [
                "/usr/share/seabios/bios.bin",
                "/usr/share/seabios/bios-256k.bin",
                "/usr/share/seabios/vgabios-stdvga.bin",
                "/usr/share/seabios/vgabios.bin",
                "/usr/share/seabios/acpi-dsdt.aml",
                "/usr/share/seabios/old/bios.bin",
            ]
        );
    }

    #[test]
    fn a_wildcard_stays_in_its_directory() {
        assert_eq!(
            matching("/usr/share/seabios/bios*.bin", SEABIOS),
            [
                "/usr/share/seabios/bios.bin",
                "/usr/share/seabios/bios-256k.bin"
            ]
        );
        assert_eq!(
            matching("/usr/share/seabios/vgabios-*.bin", SEABIOS),
            ["/usr/share/seabios/vgabios-stdvga.bin"]
        );
        assert_eq!(
            matching("/usr/share/seabios/*", SEABIOS),
            [
                "/usr/share/seabios/bios.bin",
                "/usr/share/seabios/bios-256k.bin",
                "/usr/share/seabios/vgabios-stdvga.bin",
                "/usr/share/seabios/vgabios.bin",
                "/usr/share/seabios/acpi-dsdt.aml",
            ]
        );
        // Prefix and suffix may not share characters: `ab*ba` does not match `aba`.
        assert_eq!(matching("/d/ab*ba", &["/d/aba", "/d/abba"]), ["/d/abba"]);
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for pattern in ["usr/bin/virsh", "/usr/*/virsh", "/usr/share/qemu/*-*.bin"] {
            assert!(Pattern::parse(pattern).is_err(), "{pattern}");
        }
    }

    fn fake_listing(package: &str) -> Result<Vec<Listed>> {
        match package {
            "seabios" => Ok(vec![
                dir("/usr/share/seabios"),
                file("/usr/share/seabios/bios.bin"),
                file("/usr/share/seabios/vgabios-isavga.bin"),
                link("/usr/share/seabios/vgabios.bin", "vgabios-isavga.bin"),
                dir("/usr/share/seabios/empty"),
            ]),
            "qemu-utils" => Ok(vec![
                dir("/usr/bin"),
                Listed {
                    path: "/usr/bin/qemu-img".to_owned(),
                    content: Some(Content::File { elf: true }),
                },
            ]),
            _ => bail!("no package {package}"),
        }
    }

    #[test]
    fn collect_takes_files_and_links_and_lists_each_package_once() {
        let mut listed = Vec::new();
        let entries = collect(
            &[
                PackageFiles {
                    package: "seabios",
                    patterns: &["/usr/share/seabios/vgabios*.bin"],
                    why: "",
                },
                PackageFiles {
                    package: "qemu-utils",
                    patterns: &["/usr/bin/qemu-img"],
                    why: "",
                },
                PackageFiles {
                    package: "seabios",
                    patterns: &["/usr/share/seabios/", "/usr/share/seabios/bios.bin"],
                    why: "",
                },
            ],
            |package| {
                listed.push(package.to_owned());
                fake_listing(package)
            },
        )
        .unwrap();
        assert_eq!(listed, ["seabios", "qemu-utils"]);
        let taken: Vec<(&str, &str, &Content)> = entries
            .iter()
            .map(|entry| (entry.package, entry.image_path.as_str(), &entry.content))
            .collect();
        assert_eq!(
            taken,
            [
                (
                    "qemu-utils",
                    "usr/bin/qemu-img",
                    &Content::File { elf: true }
                ),
                (
                    "seabios",
                    "usr/share/seabios/bios.bin",
                    &Content::File { elf: false }
                ),
                (
                    "seabios",
                    "usr/share/seabios/vgabios-isavga.bin",
                    &Content::File { elf: false }
                ),
                (
                    "seabios",
                    "usr/share/seabios/vgabios.bin",
                    &Content::Symlink {
                        target: "vgabios-isavga.bin".to_owned()
                    }
                ),
            ]
        );
        assert_eq!(entries[0].host_path, PathBuf::from("/usr/bin/qemu-img"));
    }

    #[test]
    fn a_pattern_matching_nothing_names_package_and_pattern() {
        let row = |patterns| PackageFiles {
            package: "seabios",
            patterns,
            why: "the BIOS",
        };
        for patterns in [
            &["/usr/share/seabios/bios-256k.bin"][..],
            // A directory alone is no match: only files and links are taken.
            &["/usr/share/seabios/empty"][..],
            &["/usr/share/seabios/empty/"][..],
        ] {
            let error = collect(&[row(patterns)], fake_listing)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("package seabios")
                    && error.contains(&format!("pattern {} matches none", patterns[0]))
                    && error.ends_with("the image takes them for: the BIOS"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_failing_listing_is_an_error() {
        let error = collect(
            &[PackageFiles {
                package: "ovmf",
                patterns: &["/usr/share/OVMF/OVMF_CODE_4M.fd"],
                why: "",
            }],
            fake_listing,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("no package ovmf"), "{error}");
    }

    #[test]
    fn every_pattern_of_the_table_parses() {
        for row in SELECTION {
            assert!(!row.patterns.is_empty() && !row.why.is_empty(), "{row:?}");
            for pattern in row.patterns {
                Pattern::parse(pattern).unwrap();
            }
        }
    }

    #[test]
    fn the_real_listing_sees_links_files_and_elf() {
        let dir = tempfile::tempdir().unwrap();
        let elf = dir.path().join("tool");
        fs::copy("/bin/busybox", &elf).unwrap();
        let text = dir.path().join("notes");
        fs::write(&text, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("notes", &link).unwrap();
        let content = |path: &std::path::Path| look_at(path.to_str().unwrap()).unwrap().content;
        assert_eq!(content(&elf), Some(Content::File { elf: true }));
        assert_eq!(content(&text), Some(Content::File { elf: false }));
        assert_eq!(
            content(&link),
            Some(Content::Symlink {
                target: "notes".to_owned()
            })
        );
        assert_eq!(content(dir.path()), None);
        assert!(look_at("/nonexistent/file").is_err());
    }
}
