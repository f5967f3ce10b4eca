//! The appliance image: builds our binaries, assembles the initrd tree (merged /usr, busybox,
//! the files we write ourselves in [`ROOTFS`], libvirt and QEMU from Debian's packages (see
//! [`packages`]), shared libraries, kernel modules), writes it as a zstd-compressed cpio archive,
//! and writes target/appliance/{vmlinuz,initrd.img,manifest.txt} and the boot media made of the
//! first two ([`media`]: boot.ipxe, grub-netboot.cfg, minifed-virt.iso). The manifest lists
//! every entry and sums files and bytes per component, so the size of each part can be
//! followed, and ends with the boot media's sizes.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
// The payload: everything early boot does not need, as one squashfs stored uncompressed in the
// initrd, which the initrd's /init (mfv-early-init) mounts before it executes mfv-init from
// it. Its paths in the image are symbolic links into the mount, so libvirt and QEMU find their
// files where Debian puts them. The layout is mfv-early-init's own.
use mfv_early_init::{EARLY_MODULES, EARLY_MODULES_DIR, MFV_INIT, PAYLOAD_DIR, PAYLOAD_IMAGE};

/// The binary of the host daemon and the VM keeper (`mfv_init::services::HOSTD`).
const HOSTD: &str = "mfv-hostd";

/// Where the image has [`HOSTD`]: beside mfv-init, where mfv-init looks for it.
fn hostd_path() -> String {
    match MFV_INIT.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{HOSTD}"),
        None => HOSTD.to_owned(),
    }
}
use nix::fcntl::{Flock, FlockArg};

use crate::cpio::CpioWriter;
use crate::packages::{self, Content, PackageEntry};
use crate::{Workspace, cmd, elf, icu_data, kernel, media, modules};

/// zstd level and worker threads. Measured on the 70 MiB archive with two cores: level 9 takes
/// 2.8 s for 16.7 MiB, level 12 5.2 s for 16.6 MiB, level 19 38 s for 14.9 MiB; the kernel
/// unpacks all of them equally fast.
const ZSTD_LEVEL: i32 = 9;
const ZSTD_THREADS: u32 = 2;
/// The busybox from Debian's busybox-static.
const BUSYBOX: &str = "/bin/busybox";
/// Files we write ourselves (/etc/passwd and /etc/group, /etc/hosts, libvirt's configuration),
/// relative to the workspace root: the tree below it is copied into the image as it is, with
/// the modes git keeps (0644, or 0755 for executables) whatever the checkout's umask. The
/// directories libvirt keeps its state in (/run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
/// /var/log/libvirt, /etc/libvirt/qemu) are not there: libvirtd and virtlogd create them.
const ROOTFS: &str = "xtask/rootfs";

/// mksquashfs's zstd level: the payload is read on demand, so a higher level costs only build
/// time.
const SQUASHFS_ZSTD_LEVEL: &str = "15";

/// Which cargo profile our binaries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build --release`.
    Release,
    /// `cargo build` (faster to iterate).
    Debug,
}

impl Profile {
    /// Debug when `--debug` was given.
    pub fn from_debug_flag(debug: bool) -> Self {
        if debug { Self::Debug } else { Self::Release }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Debug => "debug",
        }
    }
}

/// What `build` wrote.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// Regular files in the initrd.
    pub files: usize,
    /// Size of the cpio archive before compression.
    pub uncompressed_bytes: u64,
    /// Size of initrd.img.
    pub compressed_bytes: u64,
    /// Size of the payload squashfs inside it.
    pub squashfs_bytes: u64,
    /// Kernel modules in the initrd.
    pub modules: usize,
}

/// Builds the binaries and writes target/appliance/{vmlinuz,initrd.img,manifest.txt}.
/// Concurrent builds (parallel test binaries each asking for the image) run one at a time.
pub fn build(workspace: &Workspace, profile: Profile) -> Result<ImageReport> {
    let _lock = lock(&workspace.target.join("appliance-build.lock"))?;
    // mfv-web embeds the bundles; unchanged ones are not rewritten, so cargo rebuilds nothing.
    crate::web::build(workspace)?;
    let kernel = kernel::fetch(workspace)?;
    let mut cargo = workspace.cargo();
    cargo.arg("build");
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    cargo.args([
        "--locked",
        "-p",
        "mfv-early-init",
        "-p",
        "mfv-init",
        "-p",
        "mfv-web",
        "-p",
        "mfv-cli",
    ]);
    println!("running {}", cmd::display(&cargo));
    cmd::run(&mut cargo)?;

    let out = workspace.appliance_dir();
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let staged = modules::stage(&kernel, &out.join("modules-staging"))?;
    let bin = workspace.target.join(profile.dir_name());
    let applets = cmd::stdout(Command::new(BUSYBOX).arg("--list-full"))?;
    let package_files = packages::collect(packages::SELECTION, packages::dpkg_listing)?;
    let tree = assemble(&Inputs {
        init: bin.join("mfv-early-init"),
        binaries: vec![
            (MFV_INIT.to_owned(), bin.join("mfv-init")),
            // Beside mfv-init, where it looks for the binary of the services that use libvirt.
            (hostd_path(), bin.join(HOSTD)),
            ("usr/bin/mfv".to_owned(), bin.join("mfv")),
            ("usr/bin/mfv-web".to_owned(), bin.join("mfv-web")),
        ],
        busybox: PathBuf::from(BUSYBOX),
        busybox_applets: &applets,
        rootfs: &workspace.root.join(ROOTFS),
        packages: &package_files,
        modules_dir: &staged.dir,
        release: &kernel.release,
        library_dirs: elf::SYSTEM_LIBRARY_DIRS,
        icu_data_dir: &out.join("icu-data"),
    })?;

    let mtime = source_date_epoch()?;
    let early_libraries: Vec<String> = elf::resolve(
        std::slice::from_ref(&bin.join("mfv-early-init")),
        elf::SYSTEM_LIBRARY_DIRS,
    )?
    .into_iter()
    .map(|library| library.image_path)
    .collect();
    let (mut early, payload) = tree.split(&early_libraries)?;
    for module in EARLY_MODULES {
        early.insert_host_file(
            Component::EarlyModules,
            &format!("{EARLY_MODULES_DIR}/{}", module.file_name),
            &staged.dir.join(module.kernel_path),
        )?;
    }
    let squashfs = out.join("payload.squashfs");
    payload.write_squashfs(&out.join("payload-staging"), &squashfs, mtime)?;
    let mut payload_part = Tree::default();
    payload_part.insert_host_file(Component::Payload, PAYLOAD_IMAGE, &squashfs)?;

    let initrd = out.join("initrd.img");
    let partial = out.join("initrd.img.partial");
    let uncompressed_bytes = write_initrd(&payload_part, &early, &partial, mtime)?;
    fs::rename(&partial, &initrd).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            initrd.display()
        )
    })?;
    let compressed_bytes = fs::metadata(&initrd)
        .with_context(|| format!("cannot stat {}", initrd.display()))?
        .len();
    // Copied then renamed, like the initrd, so a QEMU starting meanwhile reads a whole file.
    let vmlinuz = out.join("vmlinuz");
    let vmlinuz_partial = out.join("vmlinuz.partial");
    fs::copy(kernel.vmlinuz(), &vmlinuz_partial).with_context(|| {
        format!(
            "cannot copy {} to {}",
            kernel.vmlinuz().display(),
            vmlinuz_partial.display()
        )
    })?;
    fs::rename(&vmlinuz_partial, &vmlinuz).with_context(|| {
        format!(
            "cannot rename {} to {}",
            vmlinuz_partial.display(),
            vmlinuz.display()
        )
    })?;
    let squashfs_bytes = fs::metadata(&squashfs)
        .with_context(|| format!("cannot stat {}", squashfs.display()))?
        .len();
    let report = ImageReport {
        files: early.count(|node| matches!(node, Node::File { .. }))
            + payload.count(|node| matches!(node, Node::File { .. })),
        uncompressed_bytes,
        compressed_bytes,
        squashfs_bytes,
        modules: staged.count,
    };
    let mut text = early.manifest(
        &format!("initramfs part of initrd.img (unpacked by the kernel; plus /{PAYLOAD_IMAGE})"),
        &report,
    )?;
    text.push('\n');
    text.push_str(&payload.manifest(
        &format!("payload.squashfs (mounted on /{PAYLOAD_DIR}, read on demand)"),
        &report,
    )?);
    let media = media::write(&out, mtime)?;
    text.push('\n');
    text.push_str(&media.manifest());
    let manifest = out.join("manifest.txt");
    fs::write(&manifest, text).with_context(|| format!("cannot write {}", manifest.display()))?;
    println!(
        "initrd: {} files, {} modules, {} uncompressed, {} compressed, of which payload.squashfs {}\nwrote {}, {} and {}\nboot media: {}",
        report.files,
        report.modules,
        mib(report.uncompressed_bytes),
        mib(report.compressed_bytes),
        mib(report.squashfs_bytes),
        vmlinuz.display(),
        initrd.display(),
        manifest.display(),
        media
            .files
            .iter()
            .map(|(path, bytes)| format!("{} ({})", path.display(), mib(*bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(report)
}

/// Holds an exclusive lock on `path` until dropped, waiting for it if another build has it.
fn lock(path: &Path) -> Result<Flock<File>> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock {}", path.display()))
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The archive's mtime: SOURCE_DATE_EPOCH when set, else 0.
fn source_date_epoch() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")),
        Err(_) => Ok(0),
    }
}

/// Everything that goes in the initrd besides the fixed skeleton.
#[derive(Debug)]
struct Inputs<'a> {
    /// mfv-init, installed as /init.
    init: PathBuf,
    /// (image path, host file) of our other binaries.
    binaries: Vec<(String, PathBuf)>,
    busybox: PathBuf,
    /// `busybox --list-full` output.
    busybox_applets: &'a str,
    /// The files we write ourselves ([`ROOTFS`]).
    rootfs: &'a Path,
    /// The files taken from Debian's packages.
    packages: &'a [PackageEntry],
    /// Staged `lib/modules/<release>` with depmod's indices.
    modules_dir: &'a Path,
    release: &'a str,
    library_dirs: &'a [&'a str],
    /// Where ICU's data library without entries is compiled ([`crate::icu_data`]).
    icu_data_dir: &'a Path,
}

/// The initrd's file tree.
/// The merged-/usr skeleton every initrd starts from (ours and `bench boot`'s reference):
/// the top directories, the /bin, /sbin, /lib and /lib64 links into /usr, and the two device
/// nodes the kernel needs before devtmpfs is mounted.
pub(crate) fn skeleton() -> Result<Tree> {
    let mut tree = Tree::default();
    let skeleton = Component::Skeleton;
    for (path, permissions) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("etc", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("usr/lib", 0o755),
        ("usr/lib64", 0o755),
        ("var/lib", 0o755),
        ("var/log", 0o755),
        ("var/cache", 0o755),
        ("var/tmp", 0o1777),
    ] {
        tree.insert(skeleton, path, Node::Directory { permissions })?;
    }
    for (path, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("var/run", "../run"),
        // The mount table where libc's setmntent(_PATH_MOUNTED) looks: libvirt reads it to
        // know whether an nfs pool's export is mounted.
        ("etc/mtab", "../proc/self/mounts"),
    ] {
        tree.insert(
            skeleton,
            path,
            Node::Symlink {
                target: target.to_owned(),
            },
        )?;
    }
    // The kernel opens /dev/console for /init before devtmpfs is mounted.
    tree.insert(
        skeleton,
        "dev/console",
        Node::CharDevice {
            permissions: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    tree.insert(
        skeleton,
        "dev/null",
        Node::CharDevice {
            permissions: 0o666,
            major: 1,
            minor: 3,
        },
    )?;
    Ok(tree)
}

fn assemble(inputs: &Inputs<'_>) -> Result<Tree> {
    let mut tree = skeleton()?;
    tree.insert_host_file(Component::Ours, "init", &inputs.init)?;
    for (path, source) in &inputs.binaries {
        tree.insert_host_file(Component::Ours, path, source)?;
    }
    tree.insert_host_file(Component::Busybox, "usr/bin/busybox", &inputs.busybox)?;
    tree.insert_host_dir(Component::Rootfs, "", inputs.rootfs, Modes::Git)?;

    let mut executables = vec![inputs.init.clone(), inputs.busybox.clone()];
    executables.extend(inputs.binaries.iter().map(|(_, source)| source.clone()));
    // A file needed under two names (ld.so as PT_INTERP in /usr/lib64 and as libc's DT_NEEDED
    // in /usr/lib/x86_64-linux-gnu) is stored once; the other name is a symlink, as on Debian.
    let mut image_path_of_file: BTreeMap<PathBuf, String> = BTreeMap::new();
    for entry in inputs.packages {
        let component = Component::Package(entry.package);
        match &entry.content {
            Content::File { elf } => {
                tree.insert_host_file(component, &entry.image_path, &entry.host_path)?;
                image_path_of_file.insert(canonical(&entry.host_path)?, entry.image_path.clone());
                // Executables and the modules libvirt and QEMU dlopen bring their libraries.
                if *elf {
                    executables.push(entry.host_path.clone());
                }
            }
            Content::Symlink { target } => tree.insert(
                component,
                &entry.image_path,
                Node::Symlink {
                    target: target.clone(),
                },
            )?,
        }
    }
    // After the packages: an applet gives way to a program of the same name.
    for (path, target) in busybox_links(inputs.busybox_applets)? {
        if !tree.contains(&path) {
            tree.insert(Component::Busybox, &path, Node::Symlink { target })?;
        }
    }

    for library in elf::resolve(&executables, inputs.library_dirs)? {
        // A library a package pattern took too stays as the package has it.
        if matches!(
            tree.component(&library.image_path),
            Some(Component::Package(_))
        ) {
            continue;
        }
        if let Some(major) = icu_data::data_library_major(&library.image_path) {
            let empty = icu_data::build(inputs.icu_data_dir, major)?;
            tree.insert_host_file(Component::IcuData, &library.image_path, &empty)?;
            continue;
        }
        let file = canonical(&library.host_path)?;
        match image_path_of_file.get(&file) {
            Some(first) => tree.insert(
                Component::Libraries,
                &library.image_path,
                Node::Symlink {
                    target: relative_link(&library.image_path, first),
                },
            )?,
            None => {
                tree.insert_host_file(
                    Component::Libraries,
                    &library.image_path,
                    &library.host_path,
                )?;
                image_path_of_file.insert(file, library.image_path);
            }
        }
    }

    let modules_root = format!("usr/lib/modules/{}", inputs.release);
    tree.insert_host_dir(
        Component::KernelModules,
        &modules_root,
        inputs.modules_dir,
        Modes::Host,
    )?;
    check_package_links(&tree, inputs.packages)?;
    Ok(tree)
}

/// The host file `path` names, with every symlink resolved.
fn canonical(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Fails naming the first symbolic link taken from a package whose target is not in the image
/// (a file the selection leaves out, or one a package upgrade moved).
fn check_package_links(tree: &Tree, packages: &[PackageEntry]) -> Result<()> {
    for entry in packages {
        if let Content::Symlink { target } = &entry.content
            && !tree.resolves(&entry.image_path)
        {
            bail!(
                "/{} from package {} points to {target}, which is not in the image; add the \
                 target to the package selection (xtask/src/packages.rs)",
                entry.image_path,
                entry.package
            );
        }
    }
    Ok(())
}

/// The relative symlink target at image path `link` that points to image path `target`.
fn relative_link(link: &str, target: &str) -> String {
    let mut link_dir: Vec<&str> = link.split('/').collect();
    link_dir.pop();
    let target_parts: Vec<&str> = target.split('/').collect();
    let common = link_dir
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count()
        .min(target_parts.len().saturating_sub(1));
    format!(
        "{}{}",
        "../".repeat(link_dir.len() - common),
        target_parts[common..].join("/")
    )
}

/// (image path, symlink target) for each applet in `busybox --list-full` output, below /usr.
/// Applets at the top level (`linuxrc`, for old-style initrds) are left out.
pub(crate) fn busybox_links(list: &str) -> Result<Vec<(String, String)>> {
    let mut links = Vec::new();
    let lines = list.lines().map(str::trim);
    for line in lines.filter(|line| line.contains('/')) {
        let path = if line.starts_with("usr/") {
            line.to_owned()
        } else {
            format!("usr/{line}")
        };
        let target = match path.rsplit_once('/') {
            Some(("usr/bin", _)) => "busybox",
            Some(("usr/sbin", _)) => "../bin/busybox",
            _ => bail!("busybox applet {line:?} is in neither bin nor sbin"),
        };
        links.push((path, target.to_owned()));
    }
    Ok(links)
}

/// One entry of the initrd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Directory {
        permissions: u32,
    },
    File {
        source: PathBuf,
        permissions: u32,
        size: u64,
    },
    Symlink {
        target: String,
    },
    CharDevice {
        permissions: u32,
        major: u32,
        minor: u32,
    },
}

/// Where an entry of the image comes from, for the manifest's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Component {
    /// The directories, links and device nodes every image has.
    Skeleton,
    /// Our binaries.
    Ours,
    /// busybox and its applet links.
    Busybox,
    /// The files of [`ROOTFS`].
    Rootfs,
    /// The files taken from this Debian package.
    Package(&'static str),
    /// Shared libraries found by ELF resolution.
    Libraries,
    /// ICU's data library without entries, in place of Debian's ([`crate::icu_data`]).
    IcuData,
    /// Kernel modules and their indices.
    KernelModules,
    /// The modules loaded before the payload is mounted.
    EarlyModules,
    /// Symbolic links into the payload's mount.
    PayloadLinks,
    /// The payload squashfs file.
    Payload,
    /// The /init script and configuration files of `cargo xtask bench boot`'s reference image.
    Reference,
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skeleton => f.write_str("skeleton"),
            Self::Ours => f.write_str("ours"),
            Self::Busybox => f.write_str("busybox"),
            Self::Rootfs => write!(f, "rootfs ({ROOTFS})"),
            Self::Package(name) => write!(f, "package {name}"),
            Self::Libraries => f.write_str("libraries"),
            Self::IcuData => f.write_str("ICU data without entries (libicudata)"),
            Self::KernelModules => f.write_str("kernel modules"),
            Self::EarlyModules => f.write_str("early modules (loop, squashfs)"),
            Self::PayloadLinks => f.write_str("links into the payload"),
            Self::Payload => f.write_str("payload.squashfs"),
            Self::Reference => f.write_str("reference stack files"),
        }
    }
}

/// Which permissions files copied from the host get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modes {
    /// Those the host file has, less set-user-ID and set-group-ID: nothing in the image runs
    /// with more rights than its caller (Debian's mount.nfs is set-user-ID root; here only
    /// root mounts).
    Host,
    /// What git records: 0755 when the host file is executable, else 0644.
    Git,
}

impl Modes {
    fn of(self, host_mode: u32) -> u32 {
        match self {
            Self::Host => host_mode & 0o1777,
            Self::Git if host_mode & 0o111 != 0 => 0o755,
            Self::Git => 0o644,
        }
    }
}

/// How many symbolic links a path may go through, as in the kernel.
const MAX_LINKS: usize = 40;

/// The initrd's entries by path (no leading `/`), sorted, so parents come before children, each
/// with the component it came from.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, (Node, Component)>,
}

impl Tree {
    /// Adds `node` at `path`, creating missing parent directories. An entry added twice alike
    /// keeps its first component.
    pub(crate) fn insert(&mut self, component: Component, path: &str, node: Node) -> Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            bail!("an image entry needs a path");
        }
        let parts: Vec<&str> = path.split('/').collect();
        for end in 1..parts.len() {
            let parent = parts[..end].join("/");
            match self.nodes.get(&parent) {
                None => {
                    self.nodes
                        .insert(parent, (Node::Directory { permissions: 0o755 }, component));
                }
                Some((Node::Directory { .. }, _)) => {}
                Some(_) => bail!("cannot put /{path} in the image: /{parent} is not a directory"),
            }
        }
        match self.nodes.get(path) {
            None => {
                self.nodes.insert(path.to_owned(), (node, component));
                Ok(())
            }
            Some((existing, _)) if *existing == node => Ok(()),
            Some((existing, _)) => {
                bail!("/{path} is in the image twice: {existing:?} and {node:?}")
            }
        }
    }

    /// Adds a copy of the host file `source` (following symlinks) at `path`, with its
    /// permissions.
    pub(crate) fn insert_host_file(
        &mut self,
        component: Component,
        path: &str,
        source: &Path,
    ) -> Result<()> {
        self.insert_copy(component, path, source, Modes::Host)
    }

    fn insert_copy(
        &mut self,
        component: Component,
        path: &str,
        source: &Path,
        modes: Modes,
    ) -> Result<()> {
        let metadata =
            fs::metadata(source).with_context(|| format!("cannot stat {}", source.display()))?;
        if !metadata.is_file() {
            bail!("{} is not a regular file", source.display());
        }
        self.insert(
            component,
            path,
            Node::File {
                source: source.to_path_buf(),
                permissions: modes.of(metadata.permissions().mode()),
                size: metadata.len(),
            },
        )
    }

    /// Adds every file below the host directory `source` at `path` (`""`: the image's root).
    pub(crate) fn insert_host_dir(
        &mut self,
        component: Component,
        path: &str,
        source: &Path,
        modes: Modes,
    ) -> Result<()> {
        if !path.is_empty() {
            self.insert(component, path, Node::Directory { permissions: 0o755 })?;
        }
        let entries =
            fs::read_dir(source).with_context(|| format!("cannot read {}", source.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", source.display()))?;
            let name = entry.file_name();
            let child = format!("{path}/{}", name.to_string_lossy());
            let file_type = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if file_type.is_dir() {
                self.insert_host_dir(component, &child, &entry.path(), modes)?;
            } else {
                self.insert_copy(component, &child, &entry.path(), modes)?;
            }
        }
        Ok(())
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path.trim_matches('/'))
    }

    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|(node, _)| node)
    }

    fn component(&self, path: &str) -> Option<Component> {
        self.nodes.get(path).map(|(_, component)| *component)
    }

    pub(crate) fn count(&self, predicate: impl Fn(&Node) -> bool) -> usize {
        self.nodes
            .values()
            .filter(|(node, _)| predicate(node))
            .count()
    }

    /// Whether `path` leads to an entry that is not a symbolic link, following the image's own
    /// links (relative or absolute, at most [`MAX_LINKS`]).
    fn resolves(&self, path: &str) -> bool {
        self.resolved(path).is_some()
    }

    /// The path of the entry `path` leads to (not a symbolic link), following the image's own
    /// links; `None` when it leads nowhere.
    fn resolved(&self, path: &str) -> Option<String> {
        let mut pending: VecDeque<String> = path.split('/').map(str::to_owned).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => resolved.push(part),
            }
            match self.node(&resolved.join("/")) {
                None => return None,
                Some(Node::Symlink { target }) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    resolved.pop();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for part in target.split('/').rev() {
                        pending.push_front(part.to_owned());
                    }
                }
                Some(_) => {}
            }
        }
        Some(resolved.join("/"))
    }

    /// Writes the tree as a cpio archive; returns the archive's length.
    pub(crate) fn write_cpio<W: Write>(&self, out: W, mtime: u32) -> Result<(W, u64)> {
        let mut writer = CpioWriter::new(out, mtime);
        for (path, (node, _)) in &self.nodes {
            let written = match node {
                Node::Directory { permissions } => writer.directory(path, *permissions),
                Node::File {
                    source,
                    permissions,
                    size,
                } => {
                    let data = fs::read(source)
                        .with_context(|| format!("cannot read {}", source.display()))?;
                    if data.len() as u64 != *size {
                        bail!(
                            "{} changed size while the image was built",
                            source.display()
                        );
                    }
                    writer.file(path, *permissions, &data)
                }
                Node::Symlink { target } => writer.symlink(path, target),
                Node::CharDevice {
                    permissions,
                    major,
                    minor,
                } => writer.char_device(path, *permissions, *major, *minor),
            };
            written.with_context(|| format!("cannot write /{path} to the archive"))?;
        }
        writer.finish().context("cannot finish the archive")
    }

    /// One line per entry, then per component its files, bytes and zstd-compressed bytes, then
    /// the totals.
    fn manifest(&self, title: &str, report: &ImageReport) -> Result<String> {
        let mut text = format!(
            "# {title}: every entry: type (d directory, f file, l symlink, c device), mode, size in bytes, path.\n",
        );
        let mut file_bytes = 0;
        for (path, (node, _)) in &self.nodes {
            // Writing to a String cannot fail.
            let _ = match node {
                Node::Directory { permissions } => {
                    writeln!(text, "d {permissions:04o} {:>10} /{path}", 0)
                }
                Node::File {
                    permissions, size, ..
                } => {
                    file_bytes += size;
                    writeln!(text, "f {permissions:04o} {size:>10} /{path}")
                }
                Node::Symlink { target } => {
                    writeln!(text, "l 0777 {:>10} /{path} -> {target}", target.len())
                }
                Node::CharDevice {
                    permissions,
                    major,
                    minor,
                } => {
                    writeln!(
                        text,
                        "c {permissions:04o} {:>10} /{path} ({major}:{minor})",
                        0
                    )
                }
            };
        }
        text.push('\n');
        text.push_str(&self.component_summary()?);
        let _ = write!(
            text,
            "\n# Totals of {title}\nentries: {}\nfile bytes: {file_bytes}\n\
             # initrd.img\nfiles: {}\nuncompressed bytes: {}\ncompressed bytes: {}\n\
             payload.squashfs bytes: {}\nmodules: {}\n",
            self.nodes.len(),
            report.files,
            report.uncompressed_bytes,
            report.compressed_bytes,
            report.squashfs_bytes,
            report.modules,
        );
        Ok(text)
    }

    /// Per component: regular files, their bytes (and in MiB), the bytes zstd makes of them
    /// alone at the initrd's level (in MiB), symbolic links; one line each.
    fn component_summary(&self) -> Result<String> {
        #[derive(Default)]
        struct Sum {
            files: usize,
            bytes: u64,
            compressed: u64,
            links: usize,
        }
        let mut sums: BTreeMap<Component, Sum> = BTreeMap::new();
        let mut encoders: BTreeMap<Component, zstd::stream::write::Encoder<'static, Counter>> =
            BTreeMap::new();
        for (node, component) in self.nodes.values() {
            let sum = sums.entry(*component).or_default();
            match node {
                Node::File { size, source, .. } => {
                    sum.files += 1;
                    sum.bytes += size;
                    let encoder = match encoders.entry(*component) {
                        std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                        std::collections::btree_map::Entry::Vacant(entry) => entry.insert(
                            zstd::stream::write::Encoder::new(Counter::default(), ZSTD_LEVEL)
                                .context("cannot start zstd")?,
                        ),
                    };
                    let mut file = File::open(source)
                        .with_context(|| format!("cannot read {}", source.display()))?;
                    std::io::copy(&mut file, encoder)
                        .with_context(|| format!("cannot compress {}", source.display()))?;
                }
                Node::Symlink { .. } => sum.links += 1,
                Node::Directory { .. } | Node::CharDevice { .. } => {}
            }
        }
        for (component, encoder) in encoders {
            let counter = encoder.finish().context("cannot finish zstd")?;
            sums.entry(component).or_default().compressed = counter.0;
        }
        let mut text = format!(
            "# Components: {:<36} {:>6} {:>11} {:>10} {:>9} {:>6}\n",
            "name", "files", "bytes", "MiB", "zstd MiB", "links"
        );
        for (component, sum) in sums {
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "{:<50} {:>6} {:>11} {:>10.1} {:>9.1} {:>6}",
                component.to_string(),
                sum.files,
                sum.bytes,
                sum.bytes as f64 / (1024.0 * 1024.0),
                sum.compressed as f64 / (1024.0 * 1024.0),
                sum.links
            );
        }
        Ok(text)
    }

    /// Splits the image in the part the kernel unpacks (what early boot needs: /init and the
    /// libraries it links, the configuration files, the skeleton) and the payload (everything
    /// else). The early part gets, for each payload entry whose directory it has, a symbolic
    /// link to the same path below the payload's mount (a payload symbolic link is kept as it
    /// is), so every path stays where it was.
    fn split(self, early_libraries: &[String]) -> Result<(Tree, Tree)> {
        let mut early_files: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        early_files.insert("init".to_owned());
        for library in early_libraries {
            early_files.insert(library.clone());
            if let Some(target) = self.resolved(library) {
                early_files.insert(target);
            }
        }
        let is_payload = |path: &str, component: Component| {
            matches!(
                component,
                Component::Ours
                    | Component::Busybox
                    | Component::Package(_)
                    | Component::Libraries
                    | Component::IcuData
                    | Component::KernelModules
            ) && !early_files.contains(path)
                // Configuration and state stay writable, as on any Debian system.
                && !path.starts_with("etc/")
                && !path.starts_with("var/")
        };
        // The directories the early part needs: those of every entry it keeps.
        let mut early_dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (path, (node, component)) in &self.nodes {
            if is_payload(path, *component) {
                continue;
            }
            if matches!(node, Node::Directory { .. }) {
                early_dirs.insert(path.clone());
            }
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                early_dirs.insert(up.to_owned());
                parent = up;
            }
        }
        let mut early = Tree::default();
        let mut payload = Tree::default();
        for (path, (node, component)) in self.nodes {
            if !is_payload(&path, component) {
                early.nodes.insert(path, (node, component));
                continue;
            }
            let parent_is_early = path
                .rsplit_once('/')
                .is_none_or(|(parent, _)| early_dirs.contains(parent));
            match &node {
                Node::Directory { .. } if early_dirs.contains(&path) => {
                    early.nodes.insert(path.clone(), (node.clone(), component));
                }
                Node::Symlink { .. } if parent_is_early => {
                    early.nodes.insert(path.clone(), (node.clone(), component));
                }
                _ if parent_is_early => {
                    early.nodes.insert(
                        path.clone(),
                        (
                            Node::Symlink {
                                target: format!("/{PAYLOAD_DIR}/{path}"),
                            },
                            Component::PayloadLinks,
                        ),
                    );
                }
                _ => {}
            }
            payload.nodes.insert(path, (node, component));
        }
        Ok((early, payload))
    }

    /// Writes the tree as a squashfs (zstd) at `image`, through a staging directory of hard
    /// links (copies where a link cannot be made or the mode differs).
    fn write_squashfs(&self, staging: &Path, image: &Path, mtime: u32) -> Result<()> {
        if staging.exists() {
            fs::remove_dir_all(staging)
                .with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        fs::create_dir_all(staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        for (path, (node, _)) in &self.nodes {
            let to = staging.join(path);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            match node {
                Node::Directory { permissions } => {
                    fs::create_dir_all(&to)
                        .with_context(|| format!("cannot create {}", to.display()))?;
                    fs::set_permissions(&to, fs::Permissions::from_mode(*permissions))
                        .with_context(|| format!("cannot chmod {}", to.display()))?;
                }
                Node::File {
                    source,
                    permissions,
                    ..
                } => {
                    let host_mode = fs::metadata(source)
                        .with_context(|| format!("cannot stat {}", source.display()))?
                        .permissions()
                        .mode()
                        & 0o7777;
                    // link(2) does not follow a symbolic link: link to what it names.
                    let source = canonical(source)?;
                    if host_mode != *permissions || fs::hard_link(&source, &to).is_err() {
                        fs::copy(&source, &to).with_context(|| {
                            format!("cannot copy {} to {}", source.display(), to.display())
                        })?;
                        fs::set_permissions(&to, fs::Permissions::from_mode(*permissions))
                            .with_context(|| format!("cannot chmod {}", to.display()))?;
                    }
                }
                Node::Symlink { target } => std::os::unix::fs::symlink(target, &to)
                    .with_context(|| format!("cannot create {}", to.display()))?,
                Node::CharDevice { .. } => bail!("/{path}: the payload holds no device nodes"),
            }
        }
        let partial = image.with_extension("squashfs.partial");
        let _ = fs::remove_file(&partial);
        let mtime = mtime.to_string();
        let mut mksquashfs = Command::new("mksquashfs");
        mksquashfs
            .arg(staging)
            .arg(&partial)
            .args([
                "-noappend",
                "-no-progress",
                "-quiet",
                "-all-root",
                "-no-xattrs",
            ])
            .args(["-comp", "zstd", "-Xcompression-level", SQUASHFS_ZSTD_LEVEL])
            .args(["-mkfs-time", &mtime, "-all-time", &mtime]);
        println!("running {}", cmd::display(&mksquashfs));
        cmd::run(&mut mksquashfs)?;
        fs::rename(&partial, image).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), image.display())
        })?;
        fs::remove_dir_all(staging).with_context(|| format!("cannot remove {}", staging.display()))
    }
}

/// Counts the bytes written to it.
#[derive(Debug, Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the initrd: `stored` as an uncompressed cpio archive (the payload squashfs, already
/// compressed: the kernel copies it into the root file system as it is), then `early` as a
/// zstd-compressed one; the kernel unpacks the concatenation. Returns the archives' length
/// before compression.
fn write_initrd(stored: &Tree, early: &Tree, path: &Path, mtime: u32) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let (mut out, stored_length) = stored.write_cpio(BufWriter::new(file), mtime)?;
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
        .with_context(|| format!("cannot start zstd for {}", path.display()))?;
    encoder
        .multithread(ZSTD_THREADS)
        .context("cannot enable multithreaded zstd")?;
    let (encoder, early_length) = early.write_cpio(encoder, mtime)?;
    let out = encoder
        .finish()
        .with_context(|| format!("cannot finish {}", path.display()))?;
    let file = out
        .into_inner()
        .map_err(|error| error.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(stored_length + early_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_binary_is_beside_mfv_init() {
        assert_eq!(hostd_path(), "usr/sbin/mfv-hostd");
    }

    fn host_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A tree with real busybox standing in for mfv-init, `binaries` for our other binaries,
    /// fixture modules, a fixture rootfs and `packages`.
    fn assemble_fixture(
        dir: &Path,
        binaries: Vec<(String, PathBuf)>,
        packages: &[PackageEntry],
    ) -> Result<Tree> {
        let modules = dir.join("modules");
        fs::create_dir_all(modules.join("kernel/fs")).unwrap();
        host_file(&modules, "modules.dep", b"kernel/fs/isofs.ko:\n", 0o644);
        host_file(&modules.join("kernel/fs"), "isofs.ko", b"\x7fELF", 0o644);
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(rootfs.join("etc/libvirt")).unwrap();
        host_file(
            &rootfs.join("etc"),
            "passwd",
            b"root:x:0:0::/root:/bin/sh\n",
            0o600,
        );
        host_file(&rootfs.join("etc/libvirt"), "hook", b"#!/bin/sh\n", 0o700);
        assemble(&Inputs {
            init: PathBuf::from(BUSYBOX),
            binaries,
            busybox: PathBuf::from(BUSYBOX),
            busybox_applets: "bin/sh\nsbin/modprobe\nusr/bin/mfv\nusr/bin/env\n",
            rootfs: &rootfs,
            packages,
            modules_dir: &modules,
            release: "6.1.0-56-amd64",
            library_dirs: elf::SYSTEM_LIBRARY_DIRS,
            icu_data_dir: &dir.join("icu-data"),
        })
    }

    /// The fixture with ls standing in for mfv and no package.
    fn fixture_tree(dir: &Path) -> Tree {
        let binaries = vec![("usr/bin/mfv".to_owned(), PathBuf::from("/bin/ls"))];
        assemble_fixture(dir, binaries, &[]).unwrap()
    }

    fn package_file(package: &'static str, host_path: &str, image_path: &str) -> PackageEntry {
        PackageEntry {
            package,
            host_path: PathBuf::from(host_path),
            image_path: image_path.to_owned(),
            content: Content::File {
                elf: fs::read(host_path).unwrap().starts_with(b"\x7fELF"),
            },
        }
    }

    fn package_link(package: &'static str, image_path: &str, target: &str) -> PackageEntry {
        PackageEntry {
            package,
            host_path: PathBuf::from("/").join(image_path),
            image_path: image_path.to_owned(),
            content: Content::Symlink {
                target: target.to_owned(),
            },
        }
    }

    fn symlink(target: &str) -> Node {
        Node::Symlink {
            target: target.to_owned(),
        }
    }

    #[test]
    fn files_from_the_host_keep_their_modes_but_not_set_id() {
        assert_eq!(Modes::Host.of(0o104755), 0o755);
        assert_eq!(Modes::Host.of(0o102755), 0o755);
        assert_eq!(Modes::Host.of(0o101777), 0o1777);
        assert_eq!(Modes::Host.of(0o100640), 0o640);
        assert_eq!(Modes::Git.of(0o104755), 0o755);
    }

    #[test]
    fn the_tree_has_the_merged_usr_skeleton_devices_and_applets() {
        let dir = tempfile::tempdir().unwrap();
        let tree = fixture_tree(dir.path());
        let node = |path: &str| tree.node(path).cloned();
        let link = |target: &str| {
            Some(Node::Symlink {
                target: target.to_owned(),
            })
        };
        assert_eq!(node("bin"), link("usr/bin"));
        assert_eq!(node("lib64"), link("usr/lib64"));
        assert_eq!(node("etc/mtab"), link("../proc/self/mounts"));
        assert_eq!(node("usr/bin/sh"), link("busybox"));
        assert_eq!(node("usr/sbin/modprobe"), link("../bin/busybox"));
        // Our own mfv wins over the applet of the same name.
        assert!(matches!(node("usr/bin/mfv"), Some(Node::File { .. })));
        assert_eq!(
            node("dev/console"),
            Some(Node::CharDevice {
                permissions: 0o600,
                major: 5,
                minor: 1
            })
        );
        assert_eq!(
            node("tmp"),
            Some(Node::Directory {
                permissions: 0o1777
            })
        );
        assert!(matches!(
            node("init"),
            Some(Node::File {
                permissions: 0o755,
                ..
            })
        ));
        assert!(matches!(
            node("usr/lib/modules/6.1.0-56-amd64/kernel/fs/isofs.ko"),
            Some(Node::File { size: 4, .. })
        ));
        assert_eq!(
            node("usr/lib/modules/6.1.0-56-amd64/kernel"),
            Some(Node::Directory { permissions: 0o755 })
        );
    }

    #[test]
    fn the_archive_lists_parents_before_children_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let tree = fixture_tree(dir.path());
        let (first, length) = tree.write_cpio(Vec::new(), 0).unwrap();
        let (second, _) = tree.write_cpio(Vec::new(), 0).unwrap();
        assert_eq!(first, second);
        assert_eq!(length, first.len() as u64);

        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&first).unwrap();
        let output = child.wait_with_output().unwrap();
        let listed = String::from_utf8(output.stdout).unwrap();
        let names: Vec<&str> = listed.lines().collect();
        assert_eq!(names.len(), tree.nodes.len());
        for (index, name) in names.iter().enumerate() {
            if let Some((parent, _)) = name.rsplit_once('/') {
                let parent_index = names.iter().position(|other| *other == parent).unwrap();
                assert!(parent_index < index, "{parent} after {name}");
            }
        }
    }

    #[test]
    fn the_zstd_file_decompresses_to_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let tree = fixture_tree(dir.path());
        let path = dir.path().join("initrd.img");
        let length = write_initrd(&Tree::default(), &tree, &path, 0).unwrap();
        let bytes = fs::read(&path).unwrap();
        let (stored, stored_length) = Tree::default().write_cpio(Vec::new(), 0).unwrap();
        assert!(bytes.starts_with(&stored));
        let decompressed = zstd::decode_all(&bytes[stored.len()..]).unwrap();
        assert_eq!(decompressed, tree.write_cpio(Vec::new(), 0).unwrap().0);
        assert_eq!(decompressed.len() as u64 + stored_length, length);
    }

    #[test]
    fn the_manifest_lists_every_entry_then_components_and_totals() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = Tree::default();
        let init = host_file(dir.path(), "init", b"12345", 0o755);
        tree.insert_host_file(Component::Ours, "init", &init)
            .unwrap();
        tree.insert(Component::Skeleton, "bin", symlink("usr/bin"))
            .unwrap();
        tree.insert(
            Component::Skeleton,
            "dev/null",
            Node::CharDevice {
                permissions: 0o666,
                major: 1,
                minor: 3,
            },
        )
        .unwrap();
        let report = ImageReport {
            files: 1,
            uncompressed_bytes: 1024,
            compressed_bytes: 100,
            squashfs_bytes: 60,
            modules: 0,
        };
        assert_eq!(
            tree.manifest("initramfs", &report).unwrap(),
            "# initramfs: every entry: type (d directory, f file, l symlink, c device), mode, size in bytes, path.\n\
             l 0777          7 /bin -> usr/bin\n\
             d 0755          0 /dev\n\
             c 0666          0 /dev/null (1:3)\n\
             f 0755          5 /init\n\
             \n\
             # Components: name                                  files       bytes        MiB  zstd MiB  links\n\
             skeleton                                                0           0        0.0       0.0      1\n\
             ours                                                    1           5        0.0       0.0      0\n\
             \n\
             # Totals of initramfs\n\
             entries: 4\n\
             file bytes: 5\n\
             # initrd.img\n\
             files: 1\n\
             uncompressed bytes: 1024\n\
             compressed bytes: 100\n\
             payload.squashfs bytes: 60\n\
             modules: 0\n"
        );
    }

    #[test]
    fn conflicting_entries_are_errors() {
        let mut tree = Tree::default();
        let skeleton = Component::Skeleton;
        tree.insert(skeleton, "bin", symlink("usr/bin")).unwrap();
        let error = tree
            .insert(Component::Busybox, "bin/sh", symlink("busybox"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/bin is not a directory"), "{error}");
        let error = tree
            .insert(skeleton, "bin", symlink("elsewhere"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/bin is in the image twice"), "{error}");
        // The same entry again is no conflict, and keeps its first component.
        tree.insert(Component::Libraries, "bin", symlink("usr/bin"))
            .unwrap();
        assert_eq!(tree.component("bin"), Some(skeleton));
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_it() {
        let mut tree = Tree::default();
        let error = tree
            .insert_host_file(Component::Ours, "init", Path::new("/nonexistent/mfv-init"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/mfv-init"), "{error}");
    }

    #[test]
    fn the_build_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/build.lock");
        let held = lock(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let other = File::open(&path).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_ok());
        assert!(lock(Path::new("/proc/no-such-dir/build.lock")).is_err());
    }

    #[test]
    fn relative_links() {
        assert_eq!(
            relative_link(
                "usr/lib64/ld-linux-x86-64.so.2",
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
            ),
            "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        assert_eq!(relative_link("usr/bin/sh", "usr/bin/busybox"), "busybox");
        assert_eq!(relative_link("bin", "usr/bin"), "usr/bin");
        assert_eq!(relative_link("a/b/c", "d"), "../../d");
    }

    #[test]
    fn the_loader_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let tree = fixture_tree(dir.path());
        assert!(matches!(
            tree.node("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            Some(Node::File { .. })
        ));
        assert_eq!(
            tree.node("usr/lib64/ld-linux-x86-64.so.2"),
            Some(&Node::Symlink {
                target: "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".to_owned()
            })
        );
    }

    #[test]
    fn rootfs_files_go_in_with_the_modes_git_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let tree = fixture_tree(dir.path());
        assert!(matches!(
            tree.node("etc/passwd"),
            Some(Node::File {
                permissions: 0o644,
                size: 26,
                ..
            })
        ));
        assert!(matches!(
            tree.node("etc/libvirt/hook"),
            Some(Node::File {
                permissions: 0o755,
                ..
            })
        ));
        assert_eq!(tree.component("etc/passwd"), Some(Component::Rootfs));
        // The skeleton's /etc is the same directory, not a conflict.
        assert_eq!(tree.component("etc"), Some(Component::Skeleton));
    }

    #[test]
    fn package_files_bring_their_libraries_and_may_be_libraries_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let libc = "/lib/x86_64-linux-gnu/libc.so.6";
        let packages = [
            package_file("coreutils", "/bin/ls", "usr/bin/ls"),
            package_file("coreutils", "/usr/bin/env", "usr/bin/env"),
            package_link("coreutils", "usr/bin/list", "ls"),
            // ELF resolution reaches this one too, at the same path.
            package_file("libc6", libc, "usr/lib/x86_64-linux-gnu/libc.so.6"),
        ];
        let tree = assemble_fixture(dir.path(), Vec::new(), &packages).unwrap();
        // ls is not one of our binaries here: its libraries come because a package brought it.
        assert!(matches!(
            tree.node("usr/lib/x86_64-linux-gnu/libselinux.so.1"),
            Some(Node::File { .. })
        ));
        assert_eq!(
            tree.component("usr/lib/x86_64-linux-gnu/libselinux.so.1"),
            Some(Component::Libraries)
        );
        assert_eq!(
            tree.component("usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some(Component::Package("libc6"))
        );
        assert_eq!(tree.node("usr/bin/list"), Some(&symlink("ls")));
        // The package's env wins over busybox's applet.
        assert!(matches!(tree.node("usr/bin/env"), Some(Node::File { .. })));
        assert_eq!(
            tree.component("usr/bin/env"),
            Some(Component::Package("coreutils"))
        );
    }

    #[test]
    fn a_package_file_reached_under_another_name_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let loader = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
        let packages = [package_file("libc6", loader, "usr/lib/ld.so")];
        let binaries = vec![("usr/bin/mfv".to_owned(), PathBuf::from("/bin/ls"))];
        let tree = assemble_fixture(dir.path(), binaries, &packages).unwrap();
        assert!(matches!(
            tree.node("usr/lib/ld.so"),
            Some(Node::File { .. })
        ));
        assert_eq!(
            tree.node("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            Some(&symlink("../ld.so"))
        );
        assert_eq!(
            tree.node("usr/lib64/ld-linux-x86-64.so.2"),
            Some(&symlink("../lib/ld.so"))
        );
    }

    #[test]
    fn a_dangling_package_link_names_the_link_and_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let packages = [package_link(
            "qemu-system-data",
            "usr/share/qemu/bios-microvm.bin",
            "qboot.rom",
        )];
        let error = assemble_fixture(dir.path(), Vec::new(), &packages)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "/usr/share/qemu/bios-microvm.bin from package qemu-system-data points to \
                 qboot.rom, which is not in the image"
            ),
            "{error}"
        );
    }

    #[test]
    fn links_resolve_through_the_images_own_links() {
        let mut tree = Tree::default();
        let skeleton = Component::Skeleton;
        let file = Node::File {
            source: PathBuf::from("/dev/null"),
            permissions: 0o644,
            size: 0,
        };
        tree.insert(skeleton, "usr/lib/x86_64-linux-gnu/libx.so.1", file)
            .unwrap();
        for (path, target) in [
            ("lib", "usr/lib"),
            ("usr/share/relative", "../../lib/x86_64-linux-gnu/libx.so.1"),
            ("usr/share/absolute", "/lib/x86_64-linux-gnu/libx.so.1"),
            ("usr/share/chained", "relative"),
            ("usr/share/directory", "../lib/./x86_64-linux-gnu"),
            ("usr/share/missing", "libx.so.1"),
            ("usr/share/through-a-file", "absolute/libx.so.1"),
            ("usr/share/loop-a", "loop-b"),
            ("usr/share/loop-b", "loop-a"),
        ] {
            tree.insert(skeleton, path, symlink(target)).unwrap();
        }
        for path in [
            "usr/share/relative",
            "usr/share/absolute",
            "usr/share/chained",
            "usr/share/directory",
            "lib/x86_64-linux-gnu/libx.so.1",
        ] {
            assert!(tree.resolves(path), "{path}");
        }
        for path in [
            "usr/share/missing",
            "usr/share/through-a-file",
            "usr/share/loop-a",
            "usr/share/nothing",
        ] {
            assert!(!tree.resolves(path), "{path}");
        }
    }

    #[test]
    fn busybox_applets_map_below_usr() {
        assert_eq!(
            busybox_links("bin/sh\nsbin/ip\nusr/bin/env\nusr/sbin/chroot\n").unwrap(),
            [
                ("usr/bin/sh".to_owned(), "busybox".to_owned()),
                ("usr/sbin/ip".to_owned(), "../bin/busybox".to_owned()),
                ("usr/bin/env".to_owned(), "busybox".to_owned()),
                ("usr/sbin/chroot".to_owned(), "../bin/busybox".to_owned()),
            ]
        );
        assert_eq!(busybox_links("linuxrc\n").unwrap(), []);
        assert!(busybox_links("opt/tool\n").is_err());
    }
}
