//! Loading drivers with the kernel command line's settings: where the modules of the running
//! kernel are, which command line words are module options (`module.param=value`), which
//! modules are blacklisted (`modprobe.blacklist=`, `mfv.blacklist=`), and whether driver
//! loading is on at all (`mfv.coldplug=off`). PID 1's coldplug and hotplug and `mfv probe
//! --load` read them the same way, here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mfv_config::cmdline::KernelCmdline;
use mfv_probe::modules::{
    KernelModuleLoader, LoadOutcome, ModuleError, ModuleIndex, ModuleName, ModuleOptions,
    load_with_dependencies,
};
use mfv_probe::{DriverLoader, ModuleDriverLoader, ModuleStep, SystemRoots};

/// Why drivers cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// The running kernel's release could not be read.
    #[error("cannot read the kernel release from {}", path.display())]
    KernelRelease {
        /// `<proc>/sys/kernel/osrelease`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The module index (modules.alias, modules.dep, ...) could not be read.
    #[error("cannot read the module index in {}", dir.display())]
    ModuleIndex {
        /// The modules directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: ModuleError,
    },
}

/// Where the hardware is described and the modules are, and the kernel command line
/// parameters that carry module options and the blacklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// The sysfs, proc and dev roots (`/sys`, `/proc`, `/dev`).
    pub roots: SystemRoots,
    /// The modules of the running kernel (`/lib/modules/<release>`).
    pub modules_dir: PathBuf,
    /// Every kernel command line parameter as `(key, value)`, in command line order.
    pub kernel_parameters: Vec<(String, Option<String>)>,
    /// Whether drivers are loaded at all (`mfv.coldplug=off` says no).
    pub enabled: bool,
}

impl ProbeSettings {
    /// Settings with the parameters and `mfv.coldplug` of `cmdline`.
    pub fn from_cmdline(
        cmdline: &KernelCmdline,
        roots: SystemRoots,
        modules_dir: &Path,
    ) -> ProbeSettings {
        ProbeSettings {
            roots,
            modules_dir: modules_dir.to_path_buf(),
            kernel_parameters: cmdline
                .params()
                .iter()
                .map(|param| (param.key().to_owned(), param.value().map(str::to_owned)))
                .collect(),
            enabled: !cmdline.boot_options().coldplug_disabled,
        }
    }

    /// The module options and blacklist in the parameters.
    pub fn module_options(&self) -> ModuleOptions {
        ModuleOptions::from_kernel_parameters(
            self.kernel_parameters
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_deref())),
        )
    }
}

/// What loading drivers on the real system needs: the module index of the running kernel
/// and the command line's module options, for mfv-probe's [`ModuleDriverLoader`].
#[derive(Debug)]
pub struct Drivers {
    index: ModuleIndex,
    options: ModuleOptions,
    sysfs_root: PathBuf,
}

impl Drivers {
    /// Reads the module index of `probe.modules_dir`.
    pub fn open(probe: &ProbeSettings) -> Result<Drivers, HardwareError> {
        let index =
            ModuleIndex::load(&probe.modules_dir).map_err(|source| HardwareError::ModuleIndex {
                dir: probe.modules_dir.clone(),
                source,
            })?;
        Ok(Drivers {
            index,
            options: probe.module_options(),
            sysfs_root: probe.roots.sysfs.clone(),
        })
    }

    /// `shared`, an index read earlier (coldplug's), or when there is none the index read now.
    pub fn shared_or_open(
        probe: &ProbeSettings,
        shared: Option<&Arc<Drivers>>,
    ) -> Result<Arc<Drivers>, HardwareError> {
        match shared {
            Some(drivers) => Ok(Arc::clone(drivers)),
            None => Drivers::open(probe).map(Arc::new),
        }
    }

    /// A driver loader that loads into the running kernel.
    pub fn loader(&self) -> ModuleDriverLoader<'_, KernelModuleLoader> {
        ModuleDriverLoader::new(
            &self.index,
            &self.options,
            KernelModuleLoader::new(&self.sysfs_root),
        )
    }

    /// [`Drivers::loader`] for coldplug at boot: it leaves out the processor's modaliases,
    /// whose modules (the KVM module, crypto acceleration, temperature sensors) bind no
    /// device the boot needs; [`crate::virtualization::prepare`] loads them once the web
    /// server answers.
    pub fn boot_loader(
        &self,
    ) -> WithoutProcessorModules<ModuleDriverLoader<'_, KernelModuleLoader>> {
        WithoutProcessorModules(self.loader())
    }

    /// Loads the module `module` (not a device's modalias) and its dependencies, as modprobe
    /// does, with the command line's options and blacklist.
    pub fn load_module(&self, module: &ModuleName) -> LoadOutcome {
        load_with_dependencies(
            &self.index,
            module,
            &self.options,
            &mut KernelModuleLoader::new(&self.sysfs_root),
        )
    }
}

/// What a processor's modalias starts with: `cpu:type:x86,ven...:feature:,...`.
pub const PROCESSOR_MODALIAS_PREFIX: &str = "cpu:";

/// A [`DriverLoader`] that loads nothing for a processor's modalias
/// ([`PROCESSOR_MODALIAS_PREFIX`]) and hands every other one to the loader it wraps.
#[derive(Debug)]
pub struct WithoutProcessorModules<L>(pub L);

impl<L: DriverLoader> DriverLoader for WithoutProcessorModules<L> {
    fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
        if modalias.starts_with(PROCESSOR_MODALIAS_PREFIX) {
            Vec::new()
        } else {
            self.0.load_for_modalias(modalias)
        }
    }
}

/// The modules directory of the running kernel below `modules_root` (`/lib/modules`), from
/// the release in `<proc>/sys/kernel/osrelease`.
pub fn modules_dir(proc_dir: &Path, modules_root: &Path) -> Result<PathBuf, HardwareError> {
    let path = proc_dir.join("sys/kernel/osrelease");
    let release = std::fs::read_to_string(&path)
        .map_err(|source| HardwareError::KernelRelease { path, source })?;
    Ok(modules_root.join(release.trim()))
}

/// Writes a module index that names no module into `dir`, which must exist.
#[cfg(test)]
pub(crate) fn write_empty_module_index(dir: &Path) {
    for file in [
        "modules.alias",
        "modules.dep",
        "modules.builtin",
        "modules.softdep",
    ] {
        std::fs::write(dir.join(file), "").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cmdline: &str) -> ProbeSettings {
        ProbeSettings::from_cmdline(
            &KernelCmdline::parse(cmdline),
            SystemRoots::default(),
            Path::new("/lib/modules/6.1.0"),
        )
    }

    #[test]
    fn parameters_come_from_the_command_line() {
        let settings = settings("console=ttyS0 usb-storage.delay_use=0 e1000.debug \"a=b c\"");
        assert_eq!(
            settings.kernel_parameters,
            [
                ("console".to_owned(), Some("ttyS0".to_owned())),
                ("usb-storage.delay_use".to_owned(), Some("0".to_owned())),
                ("e1000.debug".to_owned(), None),
                ("a".to_owned(), Some("b c".to_owned())),
            ]
        );
        assert!(settings.enabled);
        assert_eq!(settings.roots, SystemRoots::default());
        assert_eq!(settings.modules_dir, Path::new("/lib/modules/6.1.0"));
    }

    #[test]
    fn coldplug_off_disables_driver_loading() {
        assert!(!settings("mfv.coldplug=off").enabled);
        assert!(settings("mfv.coldplug=on").enabled);
        assert!(settings("mfv.coldplug=off mfv.coldplug=on").enabled);
        assert!(settings("").enabled);
    }

    #[test]
    fn a_missing_module_index_names_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let probe = ProbeSettings::from_cmdline(
            &KernelCmdline::parse(""),
            SystemRoots::default(),
            dir.path(),
        );
        let error = Drivers::open(&probe).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot read the module index in {}", dir.path().display())
        );
        let error = Drivers::shared_or_open(&probe, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot read the module index in {}", dir.path().display())
        );
    }

    #[test]
    fn a_shared_module_index_is_used_rather_than_read_again() {
        let dir = tempfile::tempdir().unwrap();
        write_empty_module_index(dir.path());
        let probe = ProbeSettings::from_cmdline(
            &KernelCmdline::parse(""),
            SystemRoots::default(),
            dir.path(),
        );
        let shared = Arc::new(Drivers::open(&probe).unwrap());
        // Gone from disk: only the shared one can be had.
        std::fs::remove_file(dir.path().join("modules.alias")).unwrap();
        let got = Drivers::shared_or_open(&probe, Some(&shared)).unwrap();
        assert!(Arc::ptr_eq(&got, &shared));
    }

    #[test]
    fn the_modules_dir_follows_the_kernel_release() {
        let dir = tempfile::tempdir().unwrap();
        let proc_dir = dir.path().join("proc");
        let error = modules_dir(&proc_dir, Path::new("/lib/modules")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot read the kernel release from {}",
                proc_dir.join("sys/kernel/osrelease").display()
            )
        );
        std::fs::create_dir_all(proc_dir.join("sys/kernel")).unwrap();
        std::fs::write(proc_dir.join("sys/kernel/osrelease"), "6.1.0-56-amd64\n").unwrap();
        assert_eq!(
            modules_dir(&proc_dir, Path::new("/lib/modules")).unwrap(),
            Path::new("/lib/modules/6.1.0-56-amd64")
        );
    }
}
