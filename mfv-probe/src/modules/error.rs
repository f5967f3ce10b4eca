//! Errors of module resolution and loading, each naming the module or file it is about.

use std::error::Error;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::modules::ModuleName;

/// A module index that could not be read, or a module that could not be planned or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// An index file (e.g. modules.dep) is missing or unreadable.
    #[error("cannot read {path}")]
    ReadIndex {
        /// The index file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// The module asked for is neither in modules.dep nor built in.
    #[error("module {module} is not in {index}")]
    NotInModulesDep {
        /// The module.
        module: ModuleName,
        /// The modules.dep file.
        index: PathBuf,
    },
    /// A module that another one depends on has no line of its own in modules.dep.
    #[error("module {module}, needed by {needed_by}, is not in {index}")]
    DependencyNotInModulesDep {
        /// The missing dependency.
        module: ModuleName,
        /// The module whose modules.dep line names it.
        needed_by: ModuleName,
        /// The modules.dep file.
        index: PathBuf,
    },
    /// A module that another one needs is blacklisted, so the other cannot load.
    #[error("module {module}, needed by {needed_by}, is blacklisted")]
    DependencyBlacklisted {
        /// The blacklisted dependency.
        module: ModuleName,
        /// The module that needs it.
        needed_by: ModuleName,
    },
    /// The module parameters cannot be passed to the kernel.
    #[error("parameters of module {module} contain a NUL byte: {parameters:?}")]
    InvalidParameters {
        /// The module.
        module: ModuleName,
        /// The parameter string.
        parameters: String,
    },
    /// The module file could not be opened or read.
    #[error("cannot read module {module} from {path}")]
    ReadModule {
        /// The module.
        module: ModuleName,
        /// The module file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// A compressed module file is not valid for its compression.
    #[error("cannot decompress module {module} from {path}")]
    Decompress {
        /// The module.
        module: ModuleName,
        /// The module file.
        path: PathBuf,
        /// What the decompressor reported.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// The kernel refused the module.
    #[error("cannot load module {module} from {path}")]
    Load {
        /// The module.
        module: ModuleName,
        /// The module file.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: Errno,
    },
    /// Whether the module is loaded could not be read from sysfs.
    #[error("cannot tell whether module {module} is loaded from {path}")]
    LoadedState {
        /// The module.
        module: ModuleName,
        /// The sysfs file or directory.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },
    /// A file to load is not named as a module file is.
    #[error("{} is not a kernel module file (.ko, .ko.xz, .ko.zst or .ko.gz)", path.display())]
    NotAModuleFile {
        /// The file.
        path: PathBuf,
    },
}

pub use mfv_linux::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_lists_every_cause() {
        let error = ModuleError::Load {
            module: ModuleName::new("e1000"),
            path: PathBuf::from("/lib/modules/6.1/e1000.ko"),
            source: Errno::EPERM,
        };
        assert_eq!(
            error_chain(&error),
            "cannot load module e1000 from /lib/modules/6.1/e1000.ko: EPERM: Operation not permitted"
        );
    }
}
