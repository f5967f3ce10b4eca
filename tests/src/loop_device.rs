//! Loop devices over sparse files, for tests of what the host does to real block devices
//! (config volumes, LVM): detached, and the file removed, when dropped. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A loop device over a sparse file of its own.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    /// A device of `size` bytes holding what `prepare` writes into its file first.
    pub fn new(
        size: u64,
        prepare: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<LoopDevice> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("disk.img");
        std::fs::File::create(&file)?.set_len(size)?;
        prepare(&file)?;
        let output = Command::new("losetup")
            .arg("--find")
            .arg("--show")
            .arg(&file)
            .output()
            .context("run losetup (Debian package mount)")?;
        if !output.status.success() {
            bail!(
                "losetup --find --show {} failed ({}): {}",
                file.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(LoopDevice {
            path: PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()),
            _dir: dir,
        })
    }

    /// A blank device of `size` bytes.
    pub fn blank(size: u64) -> anyhow::Result<LoopDevice> {
        LoopDevice::new(size, |_| Ok(()))
    }

    /// Its node, e.g. `/dev/loop3`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}
