//! Shared fixtures for the store tests: valid configuration texts, real file systems (a
//! size-limited tmpfs, loop-mounted ext4 and vfat images) mounted in temporary directories,
//! and the hostile files a volume can hold where the store expects its own.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use mfv_config::store::FileKind;
use nix::mount::{MntFlags, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::sys::statvfs::{FsFlags, statvfs};
use tempfile::TempDir;

/// A valid configuration whose host name is `hostname`, padded with `padding` bytes of
/// comments (to make a file of a chosen size).
pub fn config(hostname: &str, padding: usize) -> String {
    let mut text = format!(
        "version = 1\n\n[host]\nhostname = \"{hostname}\"\nntp_servers = [\"ntp1.example.org\", \"ntp2.example.org\"]\n"
    );
    let line = "# padding padding padding padding padding padding padding padding\n";
    while text.len() < padding {
        text.push_str(line);
    }
    text
}

/// Whether the tests run as root (mounting needs it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails clearly when not root: these tests mount real file systems.
pub fn require_root() -> Result<()> {
    ensure!(
        is_root(),
        "this test mounts file systems and must run as root"
    );
    Ok(())
}

/// Whether the running kernel knows the file system type `name` (/proc/filesystems).
pub fn kernel_supports(name: &str) -> Result<bool> {
    Ok(fs::read_to_string("/proc/filesystems")?
        .lines()
        .any(|line| line.split_whitespace().last() == Some(name)))
}

/// Whether the file system holding `path` is mounted read-only.
pub fn is_read_only(path: &Path) -> Result<bool> {
    Ok(statvfs(path)
        .with_context(|| format!("statvfs {}", path.display()))?
        .flags()
        .contains(FsFlags::ST_RDONLY))
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A file system mounted on a temporary directory; unmounted (lazily, so a leftover open file
/// cannot block it) when dropped.
#[derive(Debug)]
pub struct Mounted {
    mount_point: PathBuf,
    /// Holds the image file and the mount point.
    _dir: TempDir,
}

impl Mounted {
    /// A tmpfs of `size` bytes.
    pub fn tmpfs(size: usize) -> Result<Self> {
        require_root()?;
        let dir = tempfile::tempdir()?;
        let mount_point = dir.path().join("mnt");
        fs::create_dir(&mount_point)?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("mfv-store-test")
            .arg(&mount_point))?;
        Ok(Mounted {
            mount_point,
            _dir: dir,
        })
    }

    /// An 8 MiB image formatted with `mkfs` (`ext4` or `vfat`), loop-mounted with `options`
    /// (e.g. `ro`); `prepare` runs on it mounted read-write first, to put files there.
    pub fn image(
        file_system: &str,
        options: &str,
        prepare: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Self> {
        require_root()?;
        let dir = tempfile::tempdir()?;
        let image = dir.path().join("volume.img");
        fs::File::create(&image)?.set_len(8 << 20)?;
        match file_system {
            "ext4" => run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "mfv-config"])
                .arg(&image))?,
            "vfat" => run(Command::new("mkfs.vfat")
                .args(["-n", "MFV-CONFIG"])
                .arg(&image))?,
            other => bail!("no mkfs for {other}"),
        }
        let mount_point = dir.path().join("mnt");
        fs::create_dir(&mount_point)?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount_point))?;
        let mounted = Mounted {
            mount_point,
            _dir: dir,
        };
        prepare(&mounted.mount_point)?;
        if !options.is_empty() {
            run(Command::new("mount")
                .args(["-o", &format!("remount,{options}")])
                .arg(&mounted.mount_point))?;
        }
        Ok(mounted)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(error) = umount2(&self.mount_point, MntFlags::MNT_DETACH) {
            eprintln!("cannot unmount {}: {error}", self.mount_point.display());
        }
    }
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    names.retain(|name| name != "lost+found");
    names.sort();
    Ok(names)
}

/// The content of every regular file in `dir`, by name, and what every other name is (to
/// check that nothing changed; a FIFO or a link to a device is never opened).
pub fn snapshot(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    file_names(dir)?
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let content = match FileKind::at(&path)? {
                Some(FileKind::Regular) => fs::read(&path)?,
                Some(FileKind::Symlink) => {
                    format!("a symbolic link to {}", fs::read_link(&path)?.display()).into_bytes()
                }
                kind => format!("{kind:?}").into_bytes(),
            };
            Ok((name, content))
        })
        .collect()
}

/// What a volume can hold where the store expects a file of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// A symbolic link to `/dev/zero`, which reads without end.
    LinkToDevZero,
    /// A FIFO: opening it for reading waits for a writer that never comes.
    Fifo,
    /// A character device node with `/dev/zero`'s numbers, made with mknod.
    DeviceNode,
    /// A regular file one byte over the store's limit (sparse).
    Oversized {
        /// The store's limit in bytes.
        limit: u64,
    },
}

impl Hostile {
    /// Puts it at `path`, which must not exist.
    pub fn plant(self, path: &Path) -> Result<()> {
        match self {
            Hostile::LinkToDevZero => std::os::unix::fs::symlink("/dev/zero", path)?,
            Hostile::Fifo => nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))?,
            Hostile::DeviceNode => {
                require_root()?;
                mknod(
                    path,
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o600),
                    makedev(1, 5),
                )?;
            }
            Hostile::Oversized { limit } => fs::File::create(path)?.set_len(limit + 1)?,
        }
        Ok(())
    }

    /// What it is, for a store that refuses every name but a regular file.
    pub fn kind(self) -> FileKind {
        match self {
            Hostile::LinkToDevZero => FileKind::Symlink,
            Hostile::Fifo => FileKind::Fifo,
            Hostile::DeviceNode => FileKind::CharDevice,
            Hostile::Oversized { .. } => FileKind::Regular,
        }
    }
}

/// How long [`answered`] waits before it declares the operation blocked: far longer than any
/// store operation takes, so it only ever ends a test that would otherwise hang.
const BLOCKED_AFTER: Duration = Duration::from_secs(60);

/// Runs `operation` on a thread of its own and returns its answer, or fails naming `what` when
/// none comes (a store that opened a FIFO would wait for a writer forever; the test fails
/// instead of hanging with it).
pub fn answered<T: Send + 'static>(
    what: &str,
    operation: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only when the test already failed.
        let _ = sender.send(operation());
    });
    receiver
        .recv_timeout(BLOCKED_AFTER)
        .map_err(|_| anyhow!("{what} gave no answer: the store is blocked"))
}
