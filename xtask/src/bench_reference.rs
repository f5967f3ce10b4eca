//! The reference image of `cargo xtask bench boot`: the seed's classic stack, rebuilt so that
//! our image is measured against it on the same machine, in the same run, with the same QEMU
//! flags. It boots the same Debian kernel with the same driver modules as ours, so the
//! difference is the user space and the way the initrd is laid out:
//! - busybox (Debian's busybox-static) as a shell init: /init mounts proc, sys and devtmpfs,
//!   prints /proc/uptime (kernel start to /init), loads drivers with a `modprobe` loop over the
//!   devices' modaliases until a pass leaves the device count unchanged (coldplug), asks for an
//!   address with udhcpc, starts lighttpd with php-cgi over FastCGI serving a small PHP
//!   configuration page on port 80, and leaves a root shell on the console;
//! - the whole of Debian's lighttpd, php8.2-cgi, php8.2-common and busybox-static packages
//!   (fetched with `apt-get download` and unpacked with `dpkg-deb -x`, never installed: lighttpd's
//!   maintainer scripts would start a server on this machine), less their documentation, with
//!   the shared libraries they link taken from the unpacked packages first, then from this
//!   machine;
//! - every file unpacked by the kernel from one gzip-compressed cpio archive, as the seed's
//!   initrd was (23 MB gzip, 59 MB unpacked).
//!
//! It is written to target/bench-reference/{vmlinuz,initrd.img}.

use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::image::{self, Component, Modes, Node, Tree, busybox_links};
use crate::kernel::Kernel;
use crate::{Workspace, cmd, elf, modules, packages};

/// Below the workspace's target directory.
const REFERENCE_DIR: &str = "bench-reference";
/// The Debian packages the reference image is made of.
const PACKAGES: [&str; 4] = ["busybox-static", "lighttpd", "php8.2-cgi", "php8.2-common"];
/// Package paths left out of the image (image paths, no leading `/`).
const LEFT_OUT: [&str; 3] = ["usr/share/doc/", "usr/share/man/", "usr/share/lintian/"];
/// The busybox of the busybox-static package (its path in the package).
const BUSYBOX: &str = "bin/busybox";
/// The php-cgi of the php8.2-cgi package, which lighttpd starts.
const PHP_CGI: &str = "/usr/bin/php-cgi8.2";
/// gzip's level, as initramfs-tools compresses with gzip.
const GZIP_LEVEL: &str = "-9";
/// What /init prints first: `REF-INIT <seconds since kernel start>`.
pub const INIT_MARKER: &str = "REF-INIT ";
/// What /init prints right before the console shell starts.
pub const SHELL_MARKER: &str = "REF-SHELL";
/// What the PHP page says, followed by PHP's version: proof that php-cgi answered.
pub const PAGE_MARKER: &str = "served by PHP ";

/// The reference's configuration files, below /etc/reference in the image.
const LIGHTTPD_CONF: &str = "etc/reference/lighttpd.conf";
const UDHCPC_SCRIPT: &str = "etc/reference/udhcpc.script";
const INDEX_PHP: &str = "var/www/index.php";

/// What `build` wrote.
#[derive(Debug, Clone)]
pub struct ReferenceReport {
    /// The directory holding `vmlinuz` and `initrd.img`.
    pub dir: PathBuf,
    /// Regular files in the initrd.
    pub files: usize,
    /// Kernel modules in the initrd.
    pub modules: usize,
    /// Size of the cpio archive before compression.
    pub unpacked_bytes: u64,
    /// Size of initrd.img (gzip).
    pub compressed_bytes: u64,
}

/// The /init script; `coldplug` is the shell coldplug loop, which ends by printing
/// `SHELL-COLDPLUG <start> <end> <passes>`.
fn init_script(coldplug: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # The seed's classic boot: a shell init (reference of cargo xtask bench boot).\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         mount -t proc proc /proc\n\
         echo \"{INIT_MARKER}$(cut -d' ' -f1 /proc/uptime)\"\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         {coldplug}\
         udhcpc -b -i eth0 -s /{UDHCPC_SCRIPT}\n\
         lighttpd -f /{LIGHTTPD_CONF}\n\
         echo \"REF-WEB $(cut -d' ' -f1 /proc/uptime)\"\n\
         echo \"{SHELL_MARKER}\"\n\
         while :; do setsid cttyhack sh; done\n"
    )
}

/// udhcpc's script: the lease's address and default route on the interface.
const UDHCPC_SCRIPT_TEXT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
deconfig) ip link set \"$interface\" up; ip addr flush dev \"$interface\" ;;\n\
bound|renew)\n\
  ip addr flush dev \"$interface\"\n\
  ip addr add \"$ip/$mask\" dev \"$interface\"\n\
  [ -n \"$router\" ] && ip route add default via \"${router%% *}\" dev \"$interface\" ;;\n\
esac\n\
exit 0\n";

/// lighttpd with php-cgi over FastCGI, as Debian's 15-fastcgi-php.conf sets it up (one
/// php-cgi with 4 children).
fn lighttpd_conf() -> String {
    format!(
        "server.modules = (\"mod_fastcgi\")\n\
         server.document-root = \"/var/www\"\n\
         server.port = 80\n\
         server.errorlog = \"/var/log/lighttpd-error.log\"\n\
         index-file.names = (\"index.php\")\n\
         fastcgi.server = (\".php\" => ((\n\
         \x20   \"bin-path\" => \"{PHP_CGI}\",\n\
         \x20   \"socket\" => \"/run/php.socket\",\n\
         \x20   \"max-procs\" => 1,\n\
         \x20   \"bin-environment\" => (\"PHP_FCGI_CHILDREN\" => \"4\", \
         \"PHP_FCGI_MAX_REQUESTS\" => \"10000\")\n\
         )))\n"
    )
}

/// A small configuration page: host name, one line per network interface, a form.
fn index_php() -> String {
    format!(
        "<?php\n\
         $interfaces = array_values(array_diff(scandir('/sys/class/net'), ['.', '..']));\n\
         $uptime = explode(' ', file_get_contents('/proc/uptime'))[0];\n\
         ?><!DOCTYPE html>\n\
         <html><head><title>Configuration</title></head><body>\n\
         <h1>Configuration</h1>\n\
         <form method=\"post\">\n\
         <p>Host name <input name=\"hostname\" value=\"<?= htmlspecialchars(gethostname()) ?>\"></p>\n\
         <?php foreach ($interfaces as $name): ?>\n\
         <p><?= htmlspecialchars($name) ?> <select name=\"net[<?= htmlspecialchars($name) ?>]\">\
         <option>dhcp</option><option>static</option></select></p>\n\
         <?php endforeach; ?>\n\
         <p><button>Save</button></p>\n\
         </form>\n\
         <p>Up <?= $uptime ?> s, {PAGE_MARKER}<?= PHP_VERSION ?></p>\n\
         </body></html>\n"
    )
}

/// Fetches the packages (once), unpacks them, and writes target/bench-reference/{vmlinuz,
/// initrd.img} for `kernel`, with the driver modules our image has; `coldplug` is the shell
/// coldplug loop /init runs.
pub fn build(workspace: &Workspace, kernel: &Kernel, coldplug: &str) -> Result<ReferenceReport> {
    let dir = workspace.target.join(REFERENCE_DIR);
    let debs = dir.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let unpacked = dir.join("packages");
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)
            .with_context(|| format!("cannot remove {}", unpacked.display()))?;
    }
    let mut package_roots = Vec::new();
    for package in PACKAGES {
        let deb = download_once(package, &debs)?;
        let root = unpacked.join(package);
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        package_roots.push((package, root));
    }
    let staged = modules::stage(kernel, &dir.join("modules-staging"))?;
    let files = dir.join("files");
    let own_files = write_own_files(&files, coldplug)?;
    let busybox = unpacked.join("busybox-static").join(BUSYBOX);
    let applets = cmd::stdout(Command::new(&busybox).arg("--list-full"))?;
    let tree = assemble(
        &package_roots,
        &own_files,
        &applets,
        &staged.dir,
        &kernel.release,
    )?;

    let cpio = dir.join("initrd.cpio.partial");
    let file = File::create(&cpio).with_context(|| format!("cannot create {}", cpio.display()))?;
    let (_, unpacked_bytes) = tree.write_cpio(BufWriter::new(file), 0)?;
    let partial = dir.join("initrd.img.partial");
    let output =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    cmd::run(
        Command::new("gzip")
            .args([GZIP_LEVEL, "-n", "-c"])
            .arg(&cpio)
            .stdout(Stdio::from(output)),
    )?;
    fs::remove_file(&cpio).with_context(|| format!("cannot remove {}", cpio.display()))?;
    let initrd = dir.join("initrd.img");
    fs::rename(&partial, &initrd).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            initrd.display()
        )
    })?;
    let vmlinuz = dir.join("vmlinuz");
    fs::copy(kernel.vmlinuz(), &vmlinuz).with_context(|| {
        format!(
            "cannot copy {} to {}",
            kernel.vmlinuz().display(),
            vmlinuz.display()
        )
    })?;
    let report = ReferenceReport {
        dir,
        files: tree.count(|node| matches!(node, Node::File { .. })),
        modules: staged.count,
        unpacked_bytes,
        compressed_bytes: fs::metadata(&initrd)
            .with_context(|| format!("cannot stat {}", initrd.display()))?
            .len(),
    };
    println!(
        "reference initrd: {} files, {} modules, {} bytes unpacked, {} bytes gzip; wrote {}",
        report.files,
        report.modules,
        report.unpacked_bytes,
        report.compressed_bytes,
        initrd.display()
    );
    Ok(report)
}

/// The package's .deb in `debs`, downloaded with `apt-get download` unless one is there.
fn download_once(package: &str, debs: &Path) -> Result<PathBuf> {
    if let Some(deb) = find_deb(debs, package)? {
        return Ok(deb);
    }
    let mut command = Command::new("apt-get");
    command.arg("download").arg(package).current_dir(debs);
    println!("running {} in {}", cmd::display(&command), debs.display());
    cmd::run(&mut command)?;
    find_deb(debs, package)?.with_context(|| {
        format!(
            "apt-get download {package} wrote no .deb in {}",
            debs.display()
        )
    })
}

/// The `<package>_<version>_<arch>.deb` in `dir`, if any.
fn find_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        if is_deb_of(&name.to_string_lossy(), package) {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Whether `file_name` is a .deb of `package` (not of a package whose name starts alike).
fn is_deb_of(file_name: &str, package: &str) -> bool {
    file_name
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.ends_with(".deb") && rest.matches('_').count() == 1)
}

/// Writes /init, lighttpd's configuration, udhcpc's script and the PHP page below `dir`;
/// returns (image path, host file) of each.
fn write_own_files(dir: &Path, coldplug: &str) -> Result<Vec<(&'static str, PathBuf)>> {
    let files = [
        ("init", init_script(coldplug), 0o755),
        (LIGHTTPD_CONF, lighttpd_conf(), 0o644),
        (UDHCPC_SCRIPT, UDHCPC_SCRIPT_TEXT.to_owned(), 0o755),
        (INDEX_PHP, index_php(), 0o644),
    ];
    let mut written = Vec::new();
    for (image_path, text, mode) in files {
        let path = dir.join(image_path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        written.push((image_path, path));
    }
    Ok(written)
}

/// The reference initrd's tree: a merged-/usr skeleton, the unpacked packages, busybox's
/// applet links, the libraries the packages' ELF files need, the staged kernel modules, and
/// our own files.
fn assemble(
    package_roots: &[(&'static str, PathBuf)],
    own_files: &[(&str, PathBuf)],
    busybox_applets: &str,
    modules_dir: &Path,
    release: &str,
) -> Result<Tree> {
    let mut tree = image::skeleton()?;
    let mut elf_files = Vec::new();
    let mut library_dirs = Vec::new();
    for (package, root) in package_roots {
        insert_package(&mut tree, package, root, root, &mut elf_files)?;
        for dir in ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"] {
            library_dirs.push(root.join(dir).to_string_lossy().into_owned());
        }
    }
    for (path, target) in busybox_links(busybox_applets)? {
        if !tree.contains(&path) {
            tree.insert(Component::Busybox, &path, Node::Symlink { target })?;
        }
    }
    library_dirs.extend(elf::SYSTEM_LIBRARY_DIRS.iter().map(|dir| (*dir).to_owned()));
    let library_dirs: Vec<&str> = library_dirs.iter().map(String::as_str).collect();
    for library in elf::resolve(&elf_files, &library_dirs)? {
        let from_a_package = package_roots
            .iter()
            .any(|(_, root)| library.host_path.starts_with(root));
        // A package's library is in the tree already, where the loader looks for it.
        if !from_a_package {
            tree.insert_host_file(
                Component::Libraries,
                &library.image_path,
                &library.host_path,
            )?;
        }
    }
    tree.insert_host_dir(
        Component::KernelModules,
        &format!("usr/lib/modules/{release}"),
        modules_dir,
        Modes::Host,
    )?;
    for (image_path, host_path) in own_files {
        tree.insert_host_file(Component::Reference, image_path, host_path)?;
    }
    Ok(tree)
}

/// Adds the files and links below `dir` of the package unpacked in `root`, at their image
/// paths (below /usr), except [`LEFT_OUT`]; collects its ELF files in `elf_files`.
fn insert_package(
    tree: &mut Tree,
    package: &'static str,
    root: &Path,
    dir: &Path,
    elf_files: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .with_context(|| format!("{} is not below {}", path.display(), root.display()))?;
        let image_path = packages::image_path_of(&relative.to_string_lossy());
        if LEFT_OUT
            .iter()
            .any(|left_out| format!("{image_path}/").starts_with(left_out))
        {
            continue;
        }
        let file_type = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let component = Component::Package(package);
        if file_type.is_dir() {
            insert_package(tree, package, root, &path, elf_files)?;
        } else if file_type.is_symlink() {
            let target = fs::read_link(&path)
                .with_context(|| format!("cannot read the link {}", path.display()))?;
            tree.insert(
                component,
                &image_path,
                Node::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            )?;
        } else {
            tree.insert_host_file(component, &image_path, &path)?;
            if is_elf(&path)? {
                elf_files.push(path);
            }
        }
    }
    Ok(())
}

/// Whether the file starts with the ELF magic number.
fn is_elf(path: &Path) -> Result<bool> {
    let mut magic = [0; 4];
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"\x7fELF"),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debs_are_told_apart_by_package_name() {
        assert!(is_deb_of("lighttpd_1.4.69-1_amd64.deb", "lighttpd"));
        assert!(is_deb_of(
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb",
            "busybox-static"
        ));
        assert!(!is_deb_of(
            "lighttpd-mod-foo_1.4.69-1_amd64.deb",
            "lighttpd"
        ));
        assert!(!is_deb_of("php8.2-cgi_8.2.36_amd64.deb", "php8.2-common"));
        assert!(!is_deb_of(
            "lighttpd_1.4.69-1_amd64.deb.partial",
            "lighttpd"
        ));
        assert!(!is_deb_of("lighttpd", "lighttpd"));
    }

    #[test]
    fn the_init_script_runs_the_coldplug_then_the_network_and_the_web() {
        let script = init_script("COLDPLUG-LOOP\n");
        let position = |needle: &str| {
            script
                .find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in {script}"))
        };
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(position("mount -t proc") < position(INIT_MARKER));
        assert!(position(INIT_MARKER) < position("COLDPLUG-LOOP\n"));
        assert!(position("COLDPLUG-LOOP\n") < position("udhcpc -b -i eth0"));
        assert!(position("udhcpc") < position("lighttpd -f /etc/reference/lighttpd.conf"));
        assert!(position("lighttpd -f") < position(SHELL_MARKER));
        assert!(script.ends_with("while :; do setsid cttyhack sh; done\n"));
    }

    #[test]
    fn the_page_and_the_server_name_each_other() {
        assert!(lighttpd_conf().contains(&format!("\"bin-path\" => \"{PHP_CGI}\"")));
        assert!(lighttpd_conf().contains("server.port = 80\n"));
        assert!(index_php().contains(&format!("{PAGE_MARKER}<?= PHP_VERSION ?>")));
    }

    #[test]
    fn own_files_are_written_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_own_files(dir.path(), "LOOP\n").unwrap();
        let images: Vec<&str> = files.iter().map(|(image, _)| *image).collect();
        assert_eq!(images, ["init", LIGHTTPD_CONF, UDHCPC_SCRIPT, INDEX_PHP]);
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0].1), 0o755);
        assert_eq!(mode(&files[1].1), 0o644);
        assert!(fs::read_to_string(&files[0].1).unwrap().contains("LOOP\n"));
    }

    #[test]
    fn a_package_goes_in_below_usr_without_its_documentation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        for (path, content) in [
            ("bin/tool", b"#!/bin/sh\n".as_slice()),
            ("usr/share/doc/pkg/copyright", b"text"),
            ("etc/pkg.conf", b"x"),
        ] {
            let file = root.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, content).unwrap();
        }
        std::os::unix::fs::symlink("tool", root.join("bin/alias")).unwrap();
        let mut tree = Tree::default();
        let mut elf_files = Vec::new();
        insert_package(&mut tree, "pkg", &root, &root, &mut elf_files).unwrap();
        assert!(tree.contains("usr/bin/tool"));
        assert!(tree.contains("usr/bin/alias"));
        assert!(tree.contains("etc/pkg.conf"));
        assert!(!tree.contains("usr/share/doc/pkg/copyright"));
        assert!(elf_files.is_empty());
    }

    #[test]
    fn elf_files_are_recognised_by_their_magic() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        let empty = dir.path().join("empty");
        fs::write(&empty, "").unwrap();
        assert!(is_elf(Path::new("/bin/ls")).unwrap());
        assert!(!is_elf(&script).unwrap());
        assert!(!is_elf(&empty).unwrap());
        assert!(is_elf(&dir.path().join("missing")).is_err());
    }
}
