//! Discovery and formatting on real volumes: image files with ext4, vfat and iso9660 file
//! systems attached as loop devices, mounted read-only with mount(2). Needs root, losetup,
//! mkfs.ext4, mkfs.vfat, mtools, debugfs and xorriso.
//!
//! A kernel without vfat or iso9660 support (this project's build machines run one) cannot
//! mount those volumes: there the tests check that the scan finds the volume and that the
//! mount failure is reported naming the device; the appliance tests under QEMU mount them.
//!
//! Every test uses its own label or UUID, so volumes of tests running at the same time (or
//! other loop devices on the machine) are never mistaken for its own. Each image is compared
//! byte for byte before and after discovery: discovery never writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use mfv_config::cmdline::ConfigLocator;
use mfv_config::discovery::{
    Absence, Discovery, DiscoveryParams, DiscoveryReport, Verdict, discover,
};
use mfv_config::format::{FormatError, FsKind, format_config_volume};
use mfv_config::mount::{Journal, MountError, Mounter, ReadOnlyMount, SysMounter};
use mfv_config::schema::parse_config;
use mfv_config::store::{ConfigStore, DirectoryStore, RemountVolume};
use tempfile::TempDir;

/// Held for writing while a test relies on a detached loop node staying free: `losetup --find`
/// in a test running at the same time would otherwise reuse the node.
static LOOP_NODES: RwLock<()> = RwLock::new(());

const VALID: &str = "version = 1\n\n[host]\nhostname = \"vmhost1\"\n";
const INVALID: &str = "version = 1\n\n[host]\nhostname = \"-bad-\"\nfrobnicate = true\n";

/// A label no other volume has: `prefix` plus 6 random hex digits (fits FAT's 11 characters).
fn unique_label(prefix: &str) -> String {
    format!("{prefix}{:06x}", fastrand::u32(..0x00ff_ffff))
}

fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// An image file attached as a loop device; detached on drop.
struct LoopVolume {
    node: PathBuf,
    image: PathBuf,
    attached: bool,
    /// Holds the image file.
    _dir: TempDir,
}

impl LoopVolume {
    /// Attaches `image` (in `dir`), read-only when `read_only`.
    fn attach(dir: TempDir, image: PathBuf, read_only: bool) -> Result<Self> {
        let _no_vanishing_device = LOOP_NODES.read().unwrap_or_else(PoisonError::into_inner);
        let mut losetup = Command::new("losetup");
        if read_only {
            losetup.arg("--read-only");
        }
        let node =
            run(losetup.args(["--find", "--show"]).arg(&image)).context("losetup (needs root)")?;
        Ok(LoopVolume {
            node: PathBuf::from(node),
            image,
            attached: true,
            _dir: dir,
        })
    }

    /// An empty image of `size` bytes in a new temp dir.
    fn blank_image(size: u64) -> Result<(TempDir, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let image = dir.path().join("volume.img");
        fs::File::create(&image)?.set_len(size)?;
        Ok((dir, image))
    }

    /// ext4 with `label`, holding `files`, attached.
    fn ext4(label: &str, files: &[(&str, &[u8])]) -> Result<Self> {
        let (dir, image) = Self::ext4_image(label, files)?;
        Self::attach(dir, image, false)
    }

    /// An ext4 image with `label`, holding `files` (made with `mkfs.ext4 -d`, no mount
    /// needed), not attached.
    fn ext4_image(label: &str, files: &[(&str, &[u8])]) -> Result<(TempDir, PathBuf)> {
        let (dir, image) = Self::blank_image(16 << 20)?;
        let content = dir.path().join("content");
        fs::create_dir(&content)?;
        for (name, bytes) in files {
            fs::write(content.join(name), bytes)?;
        }
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label, "-d"])
            .arg(&content)
            .arg(&image))?;
        Ok((dir, image))
    }

    /// vfat with `label`, holding `files` (copied in with mtools, no mount needed).
    fn vfat(label: &str, files: &[(&str, &[u8])]) -> Result<Self> {
        let (dir, image) = Self::blank_image(16 << 20)?;
        run(Command::new("mkfs.vfat").args(["-n", label]).arg(&image))?;
        for (name, bytes) in files {
            let file = dir.path().join(name);
            fs::write(&file, bytes)?;
            run(Command::new("mcopy")
                .arg("-i")
                .arg(&image)
                .arg(&file)
                .arg(format!("::/{name}")))?;
        }
        Self::attach(dir, image, false)
    }

    /// iso9660 (Rock Ridge) with volume id `label`, attached read-only.
    fn iso9660(label: &str, files: &[(&str, &[u8])]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let content = dir.path().join("content");
        fs::create_dir(&content)?;
        for (name, bytes) in files {
            fs::write(content.join(name), bytes)?;
        }
        let image = dir.path().join("volume.iso");
        run(Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-r", "-V", label, "-o"])
            .arg(&image)
            .arg(&content))?;
        Self::attach(dir, image, true)
    }

    /// 4 MiB of random bytes.
    fn random() -> Result<Self> {
        let (dir, image) = Self::blank_image(0)?;
        let bytes: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
            .take(4 << 20)
            .collect();
        fs::write(&image, bytes)?;
        Self::attach(dir, image, false)
    }

    fn uuid(&self) -> Result<String> {
        run(Command::new("blkid")
            .args(["-p", "-s", "UUID", "-o", "value"])
            .arg(&self.node))
    }

    fn image_bytes(&self) -> Result<Vec<u8>> {
        Ok(fs::read(&self.image)?)
    }

    fn detach(&mut self) -> Result<()> {
        if self.attached {
            run(Command::new("losetup").arg("--detach").arg(&self.node))?;
            self.attached = false;
        }
        Ok(())
    }

    /// Detaches and waits until the kernel has let go of the image. While another process
    /// holds the node open (a discovery scanning every block device, in a test running at
    /// the same time), `losetup --detach` only marks the device to be cleared on last close.
    fn detach_and_wait(&mut self) -> Result<()> {
        self.detach()?;
        let name = self.node.file_name().context("loop node without a name")?;
        let backing_file = Path::new("/sys/block").join(name).join("loop/backing_file");
        for _ in 0..200 {
            if !backing_file.exists() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} still attached 10 s after detaching",
            self.node.display()
        )
    }
}

impl Drop for LoopVolume {
    fn drop(&mut self) {
        if let Err(error) = self.detach() {
            eprintln!("cannot detach {}: {error:#}", self.node.display());
        }
    }
}

/// Discovery on this machine's /sys and /dev with mount points in a temp dir.
struct Run {
    run_dir: TempDir,
}

impl Run {
    fn new() -> Result<Self> {
        Ok(Run {
            run_dir: tempfile::tempdir()?,
        })
    }

    fn params(&self, locator: ConfigLocator) -> DiscoveryParams {
        let mut params = DiscoveryParams::new(Some(locator), None);
        params.run_dir = self.run_dir.path().join("mfv");
        params
    }

    /// Runs discovery with the real mounter and checks that nothing stays mounted.
    fn discover(&self, params: &DiscoveryParams) -> Result<DiscoveryReport> {
        self.discover_with(params, &SysMounter)
    }

    fn discover_with(
        &self,
        params: &DiscoveryParams,
        mounter: &dyn Mounter,
    ) -> Result<DiscoveryReport> {
        let report = discover(params, mounter);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let run_dir = self.run_dir.path().to_string_lossy();
        ensure!(
            !mountinfo.contains(run_dir.as_ref()),
            "still mounted under {run_dir}:\n{mountinfo}"
        );
        if let Ok(entries) = fs::read_dir(&params.run_dir) {
            ensure!(entries.count() == 0, "mount points left in {run_dir}");
        }
        println!("{report}");
        Ok(report)
    }
}

/// Whether the running kernel can mount `fs_type` (it is in /proc/filesystems).
fn kernel_mounts(fs_type: &str) -> Result<bool> {
    let table = fs::read_to_string("/proc/filesystems")?;
    Ok(table
        .lines()
        .any(|line| line.split_whitespace().last() == Some(fs_type)))
}

/// Discovery of `locator` finds `volume` with a valid config, and leaves the image as it was.
/// When the kernel cannot mount `fs_type`, the volume is still found by the scan and the mount
/// failure names it.
fn check_found(volume: &mut LoopVolume, locator: ConfigLocator, fs_type: &str) -> Result<()> {
    let before = volume.image_bytes()?;
    let run = Run::new()?;
    let report = run.discover(&run.params(locator.clone()))?;
    if !kernel_mounts(fs_type)? {
        println!("this kernel cannot mount {fs_type}: checking the reported mount failure");
        let Verdict::NotMountable { error } = &report.candidates[0].verdict else {
            bail!("{locator}: expected not mountable:\n{report}");
        };
        let expected = format!(
            "cannot mount {} ({fs_type}) read-only on ",
            volume.node.display()
        );
        ensure!(
            error.starts_with(&expected) && error.ends_with("No such device (os error 19)"),
            "{error}"
        );
        volume.detach()?;
        ensure!(volume.image_bytes()? == before);
        return Ok(());
    }
    let Discovery::Found { config, source } = &report.outcome else {
        bail!("{locator}: expected found:\n{report}");
    };
    ensure!(**config == parse_config(VALID)?, "{locator}: wrong config");
    ensure!(source.device == volume.node, "{locator}: found {source}");
    ensure!(source.fs_type == fs_type, "{locator}: found {source}");
    ensure!(source.locator == locator);
    ensure!(report.candidates.len() == 1, "{report}");
    volume.detach()?;
    ensure!(
        volume.image_bytes()? == before,
        "{locator}: discovery changed the image"
    );
    Ok(())
}

#[test]
fn ext4_found_by_label_uuid_and_path() -> Result<()> {
    let label = unique_label("e");
    for by in ["label", "uuid", "path"] {
        let mut volume = LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])?;
        let locator = match by {
            "label" => ConfigLocator::Label(label.clone()),
            "uuid" => ConfigLocator::Uuid(volume.uuid()?),
            _ => ConfigLocator::Device(volume.node.clone()),
        };
        check_found(&mut volume, locator, "ext4")?;
    }
    Ok(())
}

#[test]
fn vfat_found_by_lower_case_label_and_uuid() -> Result<()> {
    let label = unique_label("F");
    let mut volume = LoopVolume::vfat(&label, &[("mfv.toml", VALID.as_bytes())])?;
    check_found(
        &mut volume,
        ConfigLocator::Label(label.to_lowercase()),
        "vfat",
    )?;
    let mut volume = LoopVolume::vfat(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let uuid = volume.uuid()?.to_lowercase();
    check_found(&mut volume, ConfigLocator::Uuid(uuid), "vfat")
}

#[test]
fn iso9660_is_a_read_only_source() -> Result<()> {
    let label = unique_label("iso");
    let mut volume = LoopVolume::iso9660(&label, &[("mfv.toml", VALID.as_bytes())])?;
    check_found(&mut volume, ConfigLocator::Label(label.clone()), "iso9660")?;
    let mut volume = LoopVolume::iso9660(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let path = ConfigLocator::Device(volume.node.clone());
    check_found(&mut volume, path, "iso9660")
}

#[test]
fn invalid_config_gives_every_error() -> Result<()> {
    let label = unique_label("i");
    let volume = LoopVolume::ext4(&label, &[("mfv.toml", INVALID.as_bytes())])?;
    let run = Run::new()?;
    let report = run.discover(&run.params(ConfigLocator::Label(label.clone())))?;
    let expected = parse_config(INVALID).unwrap_err();
    ensure!(expected.len() >= 2, "{expected}");
    let Discovery::Invalid { source, errors } = &report.outcome else {
        bail!("expected invalid:\n{report}");
    };
    ensure!(*errors == expected, "{errors}");
    ensure!(source.device == volume.node);
    let rendered = report.to_string();
    for error in expected.errors() {
        ensure!(
            rendered.contains(&format!("\n    mfv.toml:{error}")),
            "{error} missing from\n{rendered}"
        );
    }
    Ok(())
}

#[test]
fn random_bytes_are_skipped_and_an_unmountable_volume_is_reported() -> Result<()> {
    let run = Run::new()?;
    let random = LoopVolume::random()?;
    let report = run.discover(&run.params(ConfigLocator::Device(random.node.clone())))?;
    ensure!(report.outcome == Discovery::NotFound);
    ensure!(
        report.candidates[0].verdict == Verdict::NoFileSystem,
        "{report}"
    );

    // libblkid sees ext4, the kernel refuses the block size.
    let label = unique_label("u");
    let (dir, image) = LoopVolume::ext4_image(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let mut bytes = fs::read(&image)?;
    bytes[1024 + 24..1024 + 28].copy_from_slice(&20u32.to_le_bytes());
    fs::write(&image, &bytes)?;
    let broken = LoopVolume::attach(dir, image, false)?;
    let report = run.discover(&run.params(ConfigLocator::Label(label)))?;
    let Verdict::NotMountable { error } = &report.candidates[0].verdict else {
        bail!("expected not mountable:\n{report}");
    };
    ensure!(
        error.starts_with(&format!(
            "cannot mount {} (ext4) read-only on ",
            broken.node.display()
        )),
        "{error}"
    );
    ensure!(report.outcome == Discovery::NotFound);
    ensure!(broken.image_bytes()? == bytes);
    Ok(())
}

/// Detaches a loop device right before mounting it: the device vanishes between the scan
/// and the mount.
struct DetachingMounter<'a> {
    volume: std::cell::RefCell<&'a mut LoopVolume>,
}

impl Mounter for DetachingMounter<'_> {
    fn mount_read_only(
        &self,
        device: &Path,
        fs_type: &str,
        journal: Journal,
        target: &Path,
    ) -> Result<(), MountError> {
        if let Err(error) = self.volume.borrow_mut().detach_and_wait() {
            panic!("detach: {error:#}");
        }
        SysMounter.mount_read_only(device, fs_type, journal, target)
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        SysMounter.unmount(target)
    }
}

#[test]
fn a_device_that_vanishes_before_the_mount_is_named() -> Result<()> {
    let label = unique_label("v");
    let mut volume = LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let _node_stays_free = LOOP_NODES.write().unwrap_or_else(PoisonError::into_inner);
    let node = volume.node.clone();
    let run = Run::new()?;
    let mounter = DetachingMounter {
        volume: std::cell::RefCell::new(&mut volume),
    };
    let report = run.discover_with(&run.params(ConfigLocator::Label(label.clone())), &mounter)?;
    let Verdict::NotMountable { error } = &report.candidates[0].verdict else {
        bail!("expected not mountable:\n{report}");
    };
    ensure!(
        error.starts_with(&format!(
            "cannot mount {} (ext4) read-only on ",
            node.display()
        )),
        "{error}"
    );
    let line = report
        .to_string()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    ensure!(
        line.starts_with(&format!(
            "  LABEL={label} {} (ext4): skipped: not mountable: cannot mount {}",
            node.display(),
            node.display()
        )),
        "{line}"
    );
    // Once detached, a new discovery finds no volume with the label.
    let report = run.discover(&run.params(ConfigLocator::Label(label)))?;
    ensure!(
        report.candidates[0].verdict
            == Verdict::Absent {
                reason: Absence::NoMatchingVolume
            },
        "{report}"
    );
    Ok(())
}

#[test]
fn none_mounts_nothing() -> Result<()> {
    let label = unique_label("n");
    let _volume = LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let run = Run::new()?;
    let report = run.discover(&run.params(ConfigLocator::Disabled))?;
    ensure!(report.outcome == Discovery::NotFound && report.candidates.is_empty());
    ensure!(!run.params(ConfigLocator::Disabled).run_dir.exists());
    Ok(())
}

#[test]
fn default_order_reads_sda1() -> Result<()> {
    let volume = LoopVolume::ext4("sda1", &[("mfv.toml", VALID.as_bytes())])?;
    let run = Run::new()?;
    let fixture = tempfile::tempdir()?;
    let dev = fixture.path().join("dev");
    fs::create_dir_all(&dev)?;
    fs::create_dir_all(fixture.path().join("sys/class/block"))?;
    std::os::unix::fs::symlink(&volume.node, dev.join("sda1"))?;
    let mut params = DiscoveryParams::new(None, None);
    params.sysfs_root = fixture.path().join("sys");
    params.dev_root = dev.clone();
    params.run_dir = run.run_dir.path().join("mfv");
    let report = run.discover(&params)?;
    let Discovery::Found { source, .. } = &report.outcome else {
        bail!("expected found:\n{report}");
    };
    ensure!(source.device == dev.join("sda1"));
    ensure!(
        report.to_string().starts_with(&format!(
            "config: using mfv.toml from {} (ext4)\n  /dev/sda1 (ext4): taken",
            dev.join("sda1").display()
        )),
        "{report}"
    );
    Ok(())
}

#[test]
fn waits_for_a_late_volume() -> Result<()> {
    let label = unique_label("w");
    let run = Run::new()?;
    let mut params = run.params(ConfigLocator::Label(label.clone()));
    params.wait = Some(Duration::from_secs(20));
    let report = std::thread::scope(|scope| -> Result<DiscoveryReport> {
        let late = scope.spawn(|| -> Result<LoopVolume> {
            std::thread::sleep(Duration::from_millis(1500));
            LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])
        });
        let report = run.discover(&params)?;
        let _volume = late.join().map_err(|_| anyhow::anyhow!("panicked"))??;
        Ok(report)
    })?;
    ensure!(
        matches!(report.outcome, Discovery::Found { .. }),
        "{report}"
    );
    ensure!(report.passes > 1, "{report}");
    ensure!(report.elapsed >= Duration::from_millis(1500));
    Ok(())
}

#[test]
fn a_journal_that_needs_recovery_is_not_replayed() -> Result<()> {
    let label = unique_label("j");
    let (dir, image) = LoopVolume::ext4_image(&label, &[("mfv.toml", VALID.as_bytes())])?;
    run(Command::new("debugfs")
        .args(["-w", "-R", "feature needs_recovery"])
        .arg(&image))?;
    let mut dirty = LoopVolume::attach(dir, image, false)?;
    check_found(&mut dirty, ConfigLocator::Label(label), "ext4")
}

/// The mount options mountinfo shows for the mount on `point`.
fn mount_options(point: &Path) -> Result<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let point = point.to_string_lossy();
    mountinfo
        .lines()
        .find(|line| line.split(' ').nth(4) == Some(point.as_ref()))
        .map(str::to_owned)
        .with_context(|| format!("{point} is not in mountinfo"))
}

/// The ext4 journal's sequence number, as dumpe2fs reports it.
fn journal_sequence(node: &Path) -> Result<String> {
    let header = run(Command::new("dumpe2fs").arg("-h").arg(node))?;
    header
        .lines()
        .find_map(|line| line.strip_prefix("Journal sequence:"))
        .map(|sequence| sequence.trim().to_owned())
        .context("dumpe2fs shows no journal sequence")
}

#[test]
fn a_store_write_on_an_ext4_volume_goes_through_its_journal() -> Result<()> {
    let label = unique_label("w");
    let volume = LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let run_dir = tempfile::tempdir()?;

    let looking = ReadOnlyMount::new(
        &SysMounter,
        &volume.node,
        "ext4",
        Journal::Skip,
        run_dir.path(),
    )?;
    let options = mount_options(looking.path())?;
    ensure!(options.contains("norecovery"), "{options}");
    looking.unmount()?;

    let before = journal_sequence(&volume.node)?;
    let mount = ReadOnlyMount::new(
        &SysMounter,
        &volume.node,
        "ext4",
        Journal::Load,
        run_dir.path(),
    )?;
    let options = mount_options(mount.path())?;
    ensure!(!options.contains("norecovery"), "{options}");
    let store = DirectoryStore::new(mount.path(), RemountVolume::new(mount.path()));
    store.save(VALID)?;
    ensure!(mount_options(mount.path())?.contains(" ro,"));
    mount.unmount()?;
    let after = journal_sequence(&volume.node)?;
    ensure!(
        before != after,
        "the journal was not written: sequence {before}"
    );
    Ok(())
}

#[test]
fn formats_ext4_and_vfat_config_volumes() -> Result<()> {
    for kind in [FsKind::Ext4, FsKind::Vfat] {
        let volume = LoopVolume::random()?;
        let confirm = volume.node.to_string_lossy().into_owned();
        let formatted = format_config_volume(&volume.node, kind, &confirm)?;
        ensure!(formatted.fs_type == kind.as_str());
        ensure!(formatted.label == kind.label());
        let uuid = volume.uuid()?;
        ensure!(formatted.uuid.as_deref() == Some(uuid.as_str()));
        // An empty config volume: found by discovery, without a config yet.
        let run = Run::new()?;
        let report = run.discover(&run.params(ConfigLocator::Uuid(uuid)))?;
        let verdict = &report.candidates[0].verdict;
        if kernel_mounts(kind.as_str())? {
            ensure!(*verdict == Verdict::NoConfigFile, "{report}");
        } else {
            ensure!(matches!(verdict, Verdict::NotMountable { .. }), "{report}");
        }
        ensure!(
            run.params(ConfigLocator::Label("mfv-config".into()))
                .device_path(&volume.node)
                == volume.node
        );
    }
    Ok(())
}

#[test]
fn formatting_refuses_without_confirmation_and_when_mounted() -> Result<()> {
    let label = unique_label("m");
    let volume = LoopVolume::ext4(&label, &[("mfv.toml", VALID.as_bytes())])?;
    let before = volume.image_bytes()?;
    let error = format_config_volume(&volume.node, FsKind::Vfat, "/dev/sdb").unwrap_err();
    ensure!(matches!(error, FormatError::NotConfirmed { .. }), "{error}");

    let run_dir = tempfile::tempdir()?;
    let mount = ReadOnlyMount::new(
        &SysMounter,
        &volume.node,
        "ext4",
        Journal::Skip,
        run_dir.path(),
    )?;
    let confirm = volume.node.to_string_lossy().into_owned();
    let error = format_config_volume(&volume.node, FsKind::Vfat, &confirm).unwrap_err();
    ensure!(
        error.to_string()
            == format!(
                "{} is mounted on {}",
                volume.node.display(),
                mount.path().display()
            ),
        "{error}"
    );
    mount.unmount()?;
    ensure!(volume.image_bytes()? == before);
    Ok(())
}

#[test]
fn mkfs_failure_carries_its_stderr() -> Result<()> {
    let (dir, image) = LoopVolume::blank_image(8 << 20)?;
    let volume = LoopVolume::attach(dir, image, true)?;
    let confirm = volume.node.to_string_lossy().into_owned();
    let error = format_config_volume(&volume.node, FsKind::Ext4, &confirm).unwrap_err();
    let FormatError::Mkfs {
        program, stderr, ..
    } = &error
    else {
        bail!("expected a mkfs failure: {error}");
    };
    ensure!(program == "mkfs.ext4");
    ensure!(!stderr.is_empty());
    ensure!(
        error.to_string().starts_with(&format!(
            "mkfs.ext4 failed on {} (exit status: ",
            volume.node.display()
        )),
        "{error}"
    );
    ensure!(volume.image_bytes()? == vec![0u8; 8 << 20]);
    Ok(())
}
