//! Kernel module names, normalised the way kmod compares them.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::modules::index::MODULE_FILE_SUFFIXES;

/// A kernel module name with every `-` turned into `_`, as kmod and the kernel compare them
/// (`usb-storage` and `usb_storage` are the same module). Serializes as the string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ModuleName(String);

impl ModuleName {
    /// The normalised form of `name`, e.g. `usb-storage` becomes `usb_storage`.
    pub fn new(name: &str) -> Self {
        ModuleName(name.replace('-', "_"))
    }

    /// The module a file holds, from its name: `kernel/fs/ext4/ext4.ko.xz` gives `ext4`.
    /// `None` when the file name does not end in `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let file_name = path.file_name()?.to_str()?;
        MODULE_FILE_SUFFIXES
            .iter()
            .find_map(|(suffix, _)| file_name.strip_suffix(suffix))
            .filter(|stem| !stem.is_empty())
            .map(ModuleName::new)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ModuleName {
    fn from(name: &str) -> Self {
        ModuleName::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_become_underscores() {
        assert_eq!(ModuleName::new("usb-storage").as_str(), "usb_storage");
        assert_eq!(
            ModuleName::new("usb-storage"),
            ModuleName::from("usb_storage")
        );
        assert_eq!(ModuleName::new("e1000").to_string(), "e1000");
    }

    #[test]
    fn names_from_module_files() {
        let name = |path: &str| ModuleName::from_path(Path::new(path)).map(|n| n.0);
        assert_eq!(name("kernel/fs/ext4/ext4.ko").as_deref(), Some("ext4"));
        assert_eq!(
            name("a/intel-uncore.ko.xz").as_deref(),
            Some("intel_uncore")
        );
        assert_eq!(name("a/b.ko.zst").as_deref(), Some("b"));
        assert_eq!(name("a/b.ko.gz").as_deref(), Some("b"));
        assert_eq!(name("a/b.ko.bz2"), None);
        assert_eq!(name("a/README"), None);
        assert_eq!(name("a/.ko"), None);
        assert_eq!(name(""), None);
    }
}
