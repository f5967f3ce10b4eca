//! Kernel modules the way kmod's modprobe finds and loads them: modalias to module through
//! modules.alias, dependencies through modules.dep and modules.softdep, built-in drivers
//! through modules.builtin, options and blacklist from the kernel command line.
//!
//! ```no_run
//! use std::path::Path;
//! use mfv_probe::modules::{
//!     KernelModuleLoader, ModuleIndex, ModuleOptions, load_with_dependencies,
//! };
//!
//! let index = ModuleIndex::load(Path::new("/lib/modules/6.1.0-56-amd64"))?;
//! let options = ModuleOptions::from_kernel_parameters([("e1000.debug", Some("2"))]);
//! let mut loader = KernelModuleLoader::new("/sys");
//! for module in index.resolve("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00") {
//!     println!("{}", load_with_dependencies(&index, &module, &options, &mut loader));
//! }
//! # Ok::<(), mfv_probe::modules::ModuleError>(())
//! ```

mod error;
mod glob;
mod index;
mod load;
mod loader;
mod name;
mod options;
mod plan;

pub use error::{ModuleError, error_chain};
pub use index::{Compression, IndexIssue, ModuleIndex};
pub use load::{LoadOutcome, LoadStep, StepStatus, load_with_dependencies};
pub use loader::{
    KernelModuleLoader, ModuleImage, ModuleLoader, RecordedInsert, RecordingModuleLoader,
    load_module_file,
};
pub use name::ModuleName;
pub use options::ModuleOptions;
pub use plan::{LoadPlan, PlannedAction, PlannedStep, StepRole};

#[cfg(test)]
mod tests;
