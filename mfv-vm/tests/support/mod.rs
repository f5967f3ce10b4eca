//! Test fixtures for the libvirt tests: a private libvirt daemon per test binary and a tiny
//! guest (the Debian kernel plus a busybox initrd that prints a line on its serial port).
//!
//! The daemon runs in its own mount and PID namespace (`unshare`): temp dirs are bind-mounted
//! over libvirt's run, state, cache, log and config dirs and /run/lock, and a copy of /etc/passwd and
//! /etc/group adds the `libvirt-qemu` user the QEMU driver insists on, so nothing on the host
//! changes. The namespace's PID 1 is a shell that waits for its stdin to close: when the
//! test process ends for any reason (panic, abort, SIGKILL) the pipe closes, PID 1 exits and
//! the kernel kills libvirtd, virtlogd and every QEMU in the namespace.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fixture"
)]

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

/// The line the test guest prints on its serial console, once a second.
pub const GUEST_READY: &str = "MFV-GUEST-READY";

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Where the QEMU capabilities cache is kept between daemons and test runs, so only the
/// first daemon ever probes QEMU (~8 s).
fn capabilities_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("mfv-vm-qemu-capabilities")
}

/// A private libvirtd with real QEMU. Stops (with its guests) when dropped.
#[derive(Debug)]
pub struct PrivateLibvirtd {
    root: tempfile::TempDir,
    watchdog: Option<Child>,
    stdin: Option<ChildStdin>,
    uri: String,
}

impl PrivateLibvirtd {
    /// Starts a daemon with empty state and waits until it answers.
    pub fn start() -> Result<Self> {
        for tool in [
            "/usr/sbin/libvirtd",
            "/usr/sbin/virtlogd",
            "/usr/bin/qemu-system-x86_64",
        ] {
            if !Path::new(tool).exists() {
                bail!(
                    "{tool} is missing: install the Debian packages libvirt-daemon \
                     libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils"
                );
            }
        }
        let started = Instant::now();
        let root = tempfile::Builder::new().prefix("mfv-libvirtd-").tempdir()?;
        let dir = root.path();
        for (name, _) in MOUNTS {
            fs::create_dir_all(dir.join(name))?;
        }
        fs::write(dir.join("etc/qemu.conf"), QEMU_CONF)?;
        fs::write(dir.join("etc/libvirtd.conf"), LIBVIRTD_CONF)?;
        let mut passwd = fs::read_to_string("/etc/passwd").context("/etc/passwd")?;
        let mut group = fs::read_to_string("/etc/group").context("/etc/group")?;
        if !passwd.lines().any(|line| line.starts_with("libvirt-qemu:")) {
            passwd.push_str("libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n");
        }
        for name in ["libvirt-qemu", "kvm"] {
            if !group
                .lines()
                .any(|line| line.starts_with(&format!("{name}:")))
            {
                group.push_str(&format!("{name}:x:{}:\n", 64055 + u32::from(name == "kvm")));
            }
        }
        fs::write(dir.join("passwd"), passwd)?;
        fs::write(dir.join("group"), group)?;
        let cache = capabilities_cache();
        if cache.is_dir() {
            copy_dir(&cache, &dir.join("cache/qemu/capabilities"))?;
        }

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
             cat >/dev/null\n",
            d = dir.display()
        ));
        fs::write(dir.join("start.sh"), script)?;
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
            .arg(dir.join("start.sh"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("namespace.log"))?)
            .spawn()
            .context("unshare (util-linux) for the private libvirtd")?;
        let stdin = watchdog.stdin.take();
        let uri = format!(
            "qemu+unix:///system?socket={}/run/libvirt-sock",
            dir.display()
        );
        let daemon = Self {
            root,
            watchdog: Some(watchdog),
            stdin,
            uri,
        };
        daemon.wait_ready(Duration::from_secs(60))?;
        if !cache.is_dir() {
            let _ = copy_dir(&daemon.root.path().join("cache/qemu/capabilities"), &cache);
        }
        eprintln!(
            "private libvirtd ready in {:.2} s at {}",
            started.elapsed().as_secs_f64(),
            daemon.uri
        );
        Ok(daemon)
    }

    /// The URI clients connect to.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The fixture's temp dir (pools and guest files can live here too).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The daemon's log, for failure messages.
    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir().join(name)).unwrap_or_default();
        format!("{}{}", read("namespace.log"), read("libvirtd.log"))
    }

    /// The serial log libvirt wrote for a domain's QEMU (`stdio_handler = "file"`).
    pub fn qemu_log(&self, vm: &str) -> String {
        fs::read_to_string(self.dir().join(format!("log/qemu/{vm}.log"))).unwrap_or_default()
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.dir().join("run/libvirt-sock").exists() {
                // The socket exists before the QEMU driver is ready; a real call proves it.
                if let Ok(hypervisor) = mfv_vm::Hypervisor::connect(&self.uri) {
                    if hypervisor.hypervisor_version().is_ok() {
                        return Ok(());
                    }
                }
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

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// The Debian kernel that `cargo xtask` fetches into target/kernel.
pub fn guest_kernel() -> Result<PathBuf> {
    let kernels = target_dir().join("kernel");
    for entry in fs::read_dir(&kernels).with_context(|| {
        format!(
            "{}: run `cargo xtask image` to fetch the kernel",
            kernels.display()
        )
    })? {
        let boot = entry?.path().join("boot");
        for file in fs::read_dir(&boot).into_iter().flatten().flatten() {
            if file.file_name().to_string_lossy().starts_with("vmlinuz-") {
                return Ok(file.path());
            }
        }
    }
    bail!("no boot/vmlinuz-* under {}", kernels.display())
}

/// Builds an uncompressed cpio initrd in `dir` whose /init prints [`GUEST_READY`] on the
/// serial port every second.
pub fn guest_initrd(dir: &Path) -> Result<PathBuf> {
    let tree = dir.join("initrd-tree");
    fs::create_dir_all(tree.join("bin"))?;
    fs::create_dir_all(tree.join("dev"))?;
    fs::create_dir_all(tree.join("proc"))?;
    fs::copy("/bin/busybox", tree.join("bin/busybox"))
        .context("/bin/busybox (Debian package busybox-static)")?;
    let init = tree.join("init");
    fs::write(
        &init,
        format!(
            "#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs dev /dev\n\
             while true; do /bin/busybox echo {GUEST_READY} > /dev/ttyS0; /bin/busybox sleep 1; done\n"
        ),
    )?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
    let image = dir.join("initrd.cpio");
    let mut cpio = Command::new("cpio")
        .args(["--quiet", "-o", "-H", "newc"])
        .current_dir(&tree)
        .stdin(Stdio::piped())
        .stdout(fs::File::create(&image)?)
        .spawn()
        .context("cpio (Debian package cpio)")?;
    cpio.stdin
        .take()
        .context("cpio stdin")?
        .write_all(b".\nbin\nbin/busybox\ndev\nproc\ninit\n")?;
    if !cpio.wait()?.success() {
        bail!("cpio failed");
    }
    Ok(image)
}

/// A name unique in this test process.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Domain XML for the test guest, generated from a [`mfv_vm::VmSpec`]: direct kernel boot,
/// a serial console, and optionally one existing qcow2 image as `vda`.
pub fn guest_xml(
    name: &str,
    kernel: &Path,
    initrd: &Path,
    disk: Option<&str>,
    memory_mib: u64,
) -> Result<String> {
    let disks: Vec<_> = disk
        .map(|path| serde_json::json!({"target": "vda", "source": {"image": {"path": path}}}))
        .into_iter()
        .collect();
    let spec: mfv_vm::VmSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": memory_mib,
        "serial_console": true,
        "kernel_boot": {"kernel": kernel, "initrd": initrd, "cmdline": "console=ttyS0 quiet"},
        "disks": disks,
    }))?;
    Ok(spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)
}
