//! A private libvirt daemon with real QEMU for tests and benchmarks, and a tiny guest for it
//! (the Debian kernel plus a busybox initrd that prints a line on its serial port).
//!
//! The daemon runs in its own mount and PID namespace (`unshare`): temp dirs are bind-mounted
//! over libvirt's run, state, cache, log and config dirs and /run/lock, and a copy of
//! /etc/passwd and /etc/group adds the `libvirt-qemu` user the QEMU driver insists on, so
//! nothing on the host changes. The namespace's PID 1 is a shell that waits for its stdin to
//! close: when the owning process ends for any reason (panic, abort, SIGKILL) the pipe
//! closes, and PID 1 kills libvirtd, virtlogd and every QEMU in the namespace, removes the
//! temp dir and exits. Dropping a [`PrivateLibvirtd`] does the same on purpose.
//!
//! The first daemon ever started probes QEMU (~8 s); its capabilities cache is kept in
//! `<workspace>/target/tmp/mfv-vm-qemu-capabilities` and copied into every later daemon,
//! which is then ready in ~0.2 s. libvirtd is pinned to CPU 0 because libvirt invalidates the
//! cache when the host CPU it was probed on changes.
//!
//! ```no_run
//! use mfv_tests::libvirtd::{PowerButton, PrivateLibvirtd, guest_initrd, guest_kernel};
//!
//! # fn main() -> anyhow::Result<()> {
//! let daemon = PrivateLibvirtd::start()?;
//! let kernel = guest_kernel()?;
//! let initrd = guest_initrd(daemon.dir(), PowerButton::Ignored)?;
//! // Connect any libvirt client to daemon.uri(), define a domain that boots `kernel` and
//! // `initrd` with `console=ttyS0`, start it and wait for GUEST_READY on its serial port.
//! # let _ = (kernel, initrd);
//! # Ok(())
//! # }
//! ```
//!
//! Needs root and the Debian packages libvirt-daemon, libvirt-daemon-driver-qemu,
//! libvirt-clients, qemu-system-x86, busybox-static and cpio; a missing one is an error that
//! names it, never a skipped test.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// libvirt's directories, bind-mounted from the fixture's temp dir (`run` holds the socket).
/// `lock` keeps libvirt's console lock files (`/run/lock/LCK..pts_N`) off the host.
const MOUNTS: [(&str, &str); 6] = [
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
    ("etc", "/etc/libvirt"),
    ("lock", "/run/lock"),
];

const QEMU_CONF: &str = "user = \"root\"\ngroup = \"root\"\ndynamic_ownership = 0\n\
                         security_driver = \"none\"\nstdio_handler = \"file\"\n";
const LIBVIRTD_CONF: &str = "unix_sock_group = \"root\"\nunix_sock_rw_perms = \"0700\"\n\
                             auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n";

/// The programs the daemon needs, each with the Debian package that provides it.
const TOOLS: [(&str, &str); 5] = [
    ("/usr/sbin/libvirtd", "libvirt-daemon"),
    ("/usr/sbin/virtlogd", "libvirt-daemon"),
    ("/usr/bin/virsh", "libvirt-clients"),
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/bin/unshare", "util-linux"),
];

/// The line the test guest prints on its serial console, once a second.
pub const GUEST_READY: &str = "MFV-GUEST-READY";

/// What the test guest prints on its serial console before each line typed into it: a
/// line `abc` typed comes back as `MFV-GUEST-HEARD abc`.
pub const GUEST_HEARD: &str = "MFV-GUEST-HEARD";

/// What the test guest prints on its serial console before each line typed on its screen's
/// keyboard (the first virtual terminal, which a VNC client types into): a line `abc` typed
/// there comes back on the serial console as `MFV-GUEST-TYPED abc`.
pub const GUEST_TYPED: &str = "MFV-GUEST-TYPED";

/// The line a [`PowerButton::PowersOff`] guest prints on its serial console when the ACPI
/// power button is pressed, right before it powers off.
pub const GUEST_POWER_BUTTON: &str = "MFV-GUEST-POWER-BUTTON";

/// How long [`PrivateLibvirtd::start`] waits for the daemon to answer (the first start
/// probes QEMU, ~8 s on an idle machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace's target dir: this crate lives in `<root>/tests`.
fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).join("target")
}

/// Where the QEMU capabilities cache is kept between daemons and test runs, so only the
/// first daemon ever probes QEMU.
fn capabilities_cache() -> PathBuf {
    target_dir().join("tmp/mfv-vm-qemu-capabilities")
}

/// A private libvirtd with real QEMU (domains must be `type='qemu'`, TCG). Stops, with its
/// guests, when dropped.
#[derive(Debug)]
pub struct PrivateLibvirtd {
    root: tempfile::TempDir,
    watchdog: Option<Child>,
    stdin: Option<ChildStdin>,
    uri: String,
}

impl PrivateLibvirtd {
    /// Starts a daemon with empty state and waits until its QEMU driver answers.
    pub fn start() -> Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            bail!("a private libvirtd needs root (mount and PID namespaces)");
        }
        for (tool, package) in TOOLS {
            if !Path::new(tool).exists() {
                bail!("{tool} is missing: install the Debian package {package}");
            }
        }
        let started = Instant::now();
        let root = tempfile::Builder::new()
            .prefix("mfv-libvirtd-")
            .tempdir()
            .context("creating the private libvirtd's temp dir")?;
        let dir = root.path();
        write_state_dirs(dir)?;
        let cache = capabilities_cache();
        if cache.is_dir() {
            copy_dir(&cache, &dir.join("cache/qemu/capabilities"))?;
        }
        let script = dir.join("start.sh");
        fs::write(&script, start_script(dir))
            .with_context(|| format!("writing {}", script.display()))?;
        let namespace_log = dir.join("namespace.log");
        let mut watchdog = Command::new("unshare")
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
            ])
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(
                fs::File::create(&namespace_log)
                    .with_context(|| format!("creating {}", namespace_log.display()))?,
            )
            .spawn()
            .context("unshare (util-linux) for the private libvirtd")?;
        let stdin = watchdog.stdin.take();
        let uri = format!(
            "qemu+unix:///system?socket={}/run/libvirt-sock",
            dir.display()
        );
        let mut daemon = Self {
            root,
            watchdog: Some(watchdog),
            stdin,
            uri,
        };
        daemon.wait_ready(READY_TIMEOUT)?;
        if !cache.is_dir() {
            // A failed copy only costs the next daemon the QEMU probe again.
            let _ = copy_dir(&daemon.dir().join("cache/qemu/capabilities"), &cache);
        }
        eprintln!(
            "private libvirtd ready in {:.2} s at {}",
            started.elapsed().as_secs_f64(),
            daemon.uri
        );
        Ok(daemon)
    }

    /// The URI clients connect to: `qemu+unix:///system?socket=<dir>/run/libvirt-sock`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The daemon's temp dir (removed on drop); pools and guest files can live here too.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The daemon's and the namespace's logs, for failure messages.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir().join(name)).unwrap_or_default();
        format!("{}{}", read("namespace.log"), read("libvirtd.log"))
    }

    /// Defines (does not start) an isolated libvirt network `name` on the bridge `bridge`, as
    /// an administrator would with `virsh net-define`: starting it would make the bridge in
    /// the host's network namespace, which the daemon shares.
    pub fn define_network(&self, name: &str, bridge: &str) -> Result<()> {
        let file = self.dir().join(format!("network-{name}.xml"));
        fs::write(
            &file,
            format!("<network><name>{name}</name><bridge name='{bridge}'/></network>\n"),
        )
        .with_context(|| format!("writing {}", file.display()))?;
        let output = Command::new("virsh")
            .args(["-c", &self.uri, "net-define"])
            .arg(&file)
            .output()
            .context("virsh (libvirt-clients) for net-define")?;
        if !output.status.success() {
            bail!(
                "virsh net-define {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The log libvirt keeps for a domain's QEMU (command line, QEMU's own messages).
    pub fn qemu_log(&self, vm: &str) -> String {
        fs::read_to_string(self.dir().join(format!("log/qemu/{vm}.log"))).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let socket = self.dir().join("run/libvirt-sock");
        loop {
            // The socket exists before the QEMU driver is ready; `virsh version` asks it.
            if socket.exists()
                && Command::new("virsh")
                    .args(["-q", "-c", &self.uri, "version"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .context("virsh (Debian package libvirt-clients)")?
                    .success()
            {
                return Ok(());
            }
            if let Some(watchdog) = self.watchdog.as_mut()
                && let Some(status) = watchdog.try_wait().context("waiting for unshare")?
            {
                bail!(
                    "the private libvirtd's namespace exited ({status}):\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "private libvirtd did not answer within {timeout:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateLibvirtd {
    fn drop(&mut self) {
        // Closing stdin ends the namespace's PID 1, which kills everything inside.
        drop(self.stdin.take());
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.wait();
        }
    }
}

/// Writes the dirs bind-mounted over libvirt's, its config files, and the passwd and group
/// files that name the users libvirt's QEMU driver looks up.
fn write_state_dirs(dir: &Path) -> Result<()> {
    for (name, _) in MOUNTS {
        let path = dir.join(name);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    write(&dir.join("etc/qemu.conf"), QEMU_CONF)?;
    write(&dir.join("etc/libvirtd.conf"), LIBVIRTD_CONF)?;
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let group = fs::read_to_string("/etc/group").context("reading /etc/group")?;
    let (passwd, group) = with_libvirt_users(passwd, group);
    write(&dir.join("passwd"), &passwd)?;
    write(&dir.join("group"), &group)
}

/// Adds the `libvirt-qemu` user and the `libvirt-qemu` and `kvm` groups where missing.
fn with_libvirt_users(mut passwd: String, mut group: String) -> (String, String) {
    if !passwd.lines().any(|line| line.starts_with("libvirt-qemu:")) {
        passwd.push_str("libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n");
    }
    for (name, gid) in [("libvirt-qemu", 64055), ("kvm", 64056)] {
        if !group
            .lines()
            .any(|line| line.starts_with(&format!("{name}:")))
        {
            group.push_str(&format!("{name}:x:{gid}:\n"));
        }
    }
    (passwd, group)
}

/// The namespace's PID 1: mounts the private dirs, starts virtlogd and libvirtd, waits for
/// its stdin to close, then kills everything in the namespace and removes `dir` (a fixture
/// kept in a `static` is never dropped).
fn start_script(dir: &Path) -> String {
    let mut script = String::from("set -e\n");
    for (name, mount_point) in MOUNTS {
        script.push_str(&format!(
            "mkdir -p {mount_point}\nmount --bind {}/{name} {mount_point}\n",
            dir.display()
        ));
    }
    script.push_str(&format!(
        "mount --bind {d}/passwd /etc/passwd\nmount --bind {d}/group /etc/group\n\
         virtlogd -d -p {d}/virtlogd.pid\n\
         taskset -c 0 libvirtd -f /etc/libvirt/libvirtd.conf -p {d}/libvirtd.pid \
         >{d}/libvirtd.log 2>&1 &\n\
         cat >/dev/null\n\
         kill -KILL -1 || true\n\
         sleep 0.2\n\
         rm -rf {d}\n",
        d = dir.display()
    ));
    script
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        fs::copy(entry.path(), to.join(entry.file_name()))
            .with_context(|| format!("copying {}", entry.path().display()))?;
    }
    Ok(())
}

/// The Debian kernel (`vmlinuz-*`) that `cargo xtask kernel` unpacks into
/// `<workspace>/target/kernel/<package>/boot`.
pub fn guest_kernel() -> Result<PathBuf> {
    kernel_in(&target_dir().join("kernel"))
}

fn kernel_in(kernels: &Path) -> Result<PathBuf> {
    let packages = fs::read_dir(kernels).with_context(|| {
        format!(
            "{}: run `cargo xtask kernel` to fetch the kernel",
            kernels.display()
        )
    })?;
    for package in packages {
        let boot = package
            .with_context(|| format!("reading {}", kernels.display()))?
            .path()
            .join("boot");
        for file in fs::read_dir(&boot).into_iter().flatten().flatten() {
            if file.file_name().to_string_lossy().starts_with("vmlinuz-") {
                return Ok(file.path());
            }
        }
    }
    bail!(
        "no boot/vmlinuz-* under {}: run `cargo xtask kernel`",
        kernels.display()
    )
}

/// What the tiny guest does when the ACPI power button is pressed (`virsh shutdown`,
/// a graceful shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerButton {
    /// Nothing: only a forced power-off stops the guest.
    Ignored,
    /// The guest prints [`GUEST_POWER_BUTTON`] and powers off.
    PowersOff,
}

/// Everything a test guest boots from: [`guest_kernel`] and both [`guest_initrd`]s.
#[derive(Debug, Clone)]
pub struct GuestFiles {
    /// The Debian kernel.
    pub kernel: PathBuf,
    /// An initrd whose guest ignores the ACPI power button.
    pub initrd: PathBuf,
    /// An initrd whose guest powers off on the ACPI power button.
    pub acpi_initrd: PathBuf,
}

impl GuestFiles {
    /// Finds the kernel and writes both initrds into `dir`.
    pub fn write_to(dir: &Path) -> Result<Self> {
        Ok(GuestFiles {
            kernel: guest_kernel()?,
            initrd: guest_initrd(dir, PowerButton::Ignored)?,
            acpi_initrd: guest_initrd(dir, PowerButton::PowersOff)?,
        })
    }
}

/// Builds an uncompressed cpio initrd in `dir` for [`guest_kernel`] whose /init prints
/// [`GUEST_READY`] on the serial port (`ttyS0`) every second and answers each line typed
/// into it with [`GUEST_HEARD`] and the line, and each line typed on its screen's keyboard
/// with [`GUEST_TYPED`] and the line, and returns its path. Boot it with
/// `console=ttyS0`.
///
/// With [`PowerButton::PowersOff`] the initrd also carries the kernel's `button` and `evdev`
/// modules, and the guest watches the ACPI power button from before its first
/// [`GUEST_READY`] line on.
pub fn guest_initrd(dir: &Path, power_button: PowerButton) -> Result<PathBuf> {
    let tree = dir.join(match power_button {
        PowerButton::Ignored => "initrd-tree",
        PowerButton::PowersOff => "initrd-tree-acpi",
    });
    for sub in ["bin", "dev", "proc", "sys", "modules"] {
        let path = tree.join(sub);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    fs::copy("/bin/busybox", tree.join("bin/busybox"))
        .context("/bin/busybox (Debian package busybox-static)")?;
    let mut files = vec!["bin/busybox".to_owned()];
    if power_button == PowerButton::PowersOff {
        let modules = kernel_modules_dir(&guest_kernel()?)?;
        for (module, path) in ACPI_MODULES {
            let from = modules.join(path);
            fs::copy(&from, tree.join("modules").join(module))
                .with_context(|| format!("copying {}", from.display()))?;
            files.push(format!("modules/{module}"));
        }
    }
    let init = tree.join("init");
    write(&init, &init_script(power_button))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", init.display()))?;
    files.push("init".to_owned());

    let image = dir.join(match power_button {
        PowerButton::Ignored => "initrd.cpio",
        PowerButton::PowersOff => "initrd-acpi.cpio",
    });
    let mut cpio = Command::new("cpio")
        .args(["--quiet", "-o", "-H", "newc"])
        .current_dir(&tree)
        .stdin(Stdio::piped())
        .stdout(fs::File::create(&image).with_context(|| format!("creating {}", image.display()))?)
        .spawn()
        .context("cpio (Debian package cpio)")?;
    let list = format!(".\nbin\ndev\nproc\nsys\nmodules\n{}\n", files.join("\n"));
    cpio.stdin
        .take()
        .context("cpio's stdin")?
        .write_all(list.as_bytes())
        .context("writing the file list to cpio")?;
    if !cpio.wait().context("waiting for cpio")?.success() {
        bail!("cpio failed to write {}", image.display());
    }
    Ok(image)
}

/// The modules a guest needs to see the ACPI power button as an input device, in load
/// order, with their paths under `lib/modules/<version>`.
const ACPI_MODULES: [(&str, &str); 2] = [
    ("button.ko", "kernel/drivers/acpi/button.ko"),
    ("evdev.ko", "kernel/drivers/input/evdev.ko"),
];

/// `<package>/lib/modules/<version>` for `<package>/boot/vmlinuz-<version>`.
fn kernel_modules_dir(kernel: &Path) -> Result<PathBuf> {
    let version = kernel
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("vmlinuz-"))
        .with_context(|| format!("{} is not named vmlinuz-<version>", kernel.display()))?;
    let package = kernel
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in <package>/boot", kernel.display()))?;
    Ok(package.join("lib/modules").join(version))
}

/// The guest's /init. A [`PowerButton::PowersOff`] guest loads the modules, then for each
/// input device named "Power Button" starts a reader that blocks until the device reports
/// an event (a press is a 24-byte `struct input_event`), and powers off.
fn init_script(power_button: PowerButton) -> String {
    let mut script = String::from(
        "#!/bin/busybox sh\nB=/bin/busybox\n$B mount -t devtmpfs dev /dev\n\
         $B mount -t proc proc /proc\n$B mount -t sysfs sys /sys\n",
    );
    if power_button == PowerButton::PowersOff {
        for (module, _) in ACPI_MODULES {
            script.push_str(&format!("$B insmod /modules/{module}\n"));
        }
        // Each reader opens its device before the guest prints its first ready line (evdev
        // only queues events for open clients), then blocks until the button is pressed.
        script.push_str(&format!(
            "for input in /sys/class/input/input*; do\n\
             \x20 [ \"$($B cat $input/name)\" = \"Power Button\" ] || continue\n\
             \x20 for event in $input/event*; do\n\
             \x20   [ -e $event ] || continue\n\
             \x20   device=$($B basename $event)\n\
             \x20   ( exec 3</dev/input/$device; $B touch /watching-$device\n\
             \x20     $B dd bs=24 count=1 <&3 >/dev/null 2>&1 \
             && $B echo {GUEST_POWER_BUTTON} > /dev/ttyS0 && $B poweroff -f ) &\n\
             \x20   tries=0\n\
             \x20   while [ ! -e /watching-$device ] && [ $tries -lt 100 ]; do\n\
             \x20     $B sleep 0.1; tries=$((tries + 1))\n\
             \x20   done\n\
             \x20 done\n\
             done\n"
        ));
    }
    script.push_str(&format!(
        "while read -r line; do $B echo \"{GUEST_HEARD} $line\"; done </dev/ttyS0 >/dev/ttyS0 &\n\
         while read -r line; do $B echo \"{GUEST_TYPED} $line\"; done </dev/tty1 >/dev/ttyS0 &\n\
         while true; do $B echo {GUEST_READY} > /dev/ttyS0; $B sleep 1; done\n"
    ));
    script
}

/// A name unique in this process (`<prefix>-<pid>-<counter>`), for domains, pools and
/// volumes that tests sharing one daemon create.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The definition of a VM `name` with one qcow2 disk, the image at `disk`: a VM that makes a
/// volume "used" for the tests of what may not be removed while a VM holds it.
pub fn domain_with_disk(name: &str, disk: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
         <driver name='qemu' type='qcow2'/><source file='{disk}'/>\
         <target dev='vda' bus='virtio'/></disk></devices></domain>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirt_users_are_added_once() {
        let (passwd, group) = with_libvirt_users(
            "root:x:0:0::/root:/bin/sh\n".into(),
            "root:x:0:\nkvm:x:993:\n".into(),
        );
        assert!(
            passwd.ends_with("libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n")
        );
        assert_eq!(group, "root:x:0:\nkvm:x:993:\nlibvirt-qemu:x:64055:\n");
        let (again_passwd, again_group) = with_libvirt_users(passwd.clone(), group.clone());
        assert_eq!((again_passwd, again_group), (passwd, group));
    }

    #[test]
    fn start_script_mounts_every_dir_and_cleans_up_when_stdin_closes() {
        let script = start_script(Path::new("/tmp/x"));
        for (name, mount_point) in MOUNTS {
            assert!(
                script.contains(&format!("mount --bind /tmp/x/{name} {mount_point}\n")),
                "{script}"
            );
        }
        assert!(script.contains("taskset -c 0 libvirtd -f /etc/libvirt/libvirtd.conf"));
        assert!(
            script.contains("\ncat >/dev/null\nkill -KILL -1"),
            "{script}"
        );
        assert!(script.ends_with("rm -rf /tmp/x\n"), "{script}");
    }

    #[test]
    fn kernel_is_found_in_the_unpacked_package() {
        let kernels = tempfile::tempdir().unwrap();
        let boot = kernels
            .path()
            .join("linux-image-6.1.0-9-amd64_6.1.1-1/boot");
        fs::create_dir_all(&boot).unwrap();
        fs::write(boot.join("config-6.1.0-9-amd64"), "").unwrap();
        fs::write(boot.join("vmlinuz-6.1.0-9-amd64"), "").unwrap();
        let kernel = kernel_in(kernels.path()).unwrap();
        assert_eq!(kernel, boot.join("vmlinuz-6.1.0-9-amd64"));
        assert_eq!(
            kernel_modules_dir(&kernel).unwrap(),
            kernels
                .path()
                .join("linux-image-6.1.0-9-amd64_6.1.1-1/lib/modules/6.1.0-9-amd64")
        );
    }

    #[test]
    fn missing_kernel_says_how_to_fetch_it() {
        let kernels = tempfile::tempdir().unwrap();
        let error = kernel_in(kernels.path()).unwrap_err().to_string();
        assert!(error.contains("cargo xtask kernel"), "{error}");
        let error = kernel_in(&kernels.path().join("absent")).unwrap_err();
        assert!(format!("{error:#}").contains("absent"), "{error:#}");
        assert!(kernel_modules_dir(Path::new("/boot/bzImage")).is_err());
    }

    #[test]
    fn only_the_acpi_guest_watches_the_power_button() {
        assert!(!init_script(PowerButton::Ignored).contains("insmod"));
        let script = init_script(PowerButton::PowersOff);
        assert!(script.contains("insmod /modules/button.ko\n"), "{script}");
        assert!(script.contains("poweroff -f"), "{script}");
        assert!(script.find("Power Button") < script.find(GUEST_READY));
    }

    #[test]
    fn every_guest_answers_lines_typed_on_its_serial_port_and_on_its_screen() {
        for power_button in [PowerButton::Ignored, PowerButton::PowersOff] {
            let script = init_script(power_button);
            assert!(
                script.contains(&format!("\"{GUEST_HEARD} $line\"; done </dev/ttyS0")),
                "{script}"
            );
            assert!(
                script.contains(&format!("\"{GUEST_TYPED} $line\"; done </dev/tty1")),
                "{script}"
            );
        }
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(unique("vm"), unique("vm"));
        assert!(unique("vm").starts_with(&format!("vm-{}-", std::process::id())));
    }
}
