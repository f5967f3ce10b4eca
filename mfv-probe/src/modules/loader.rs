//! Putting one module into the kernel: the narrow privileged trait, the real finit_module /
//! init_module implementation, a recording fake, and the file reading and decompression
//! they share.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module, init_module};

use crate::modules::{Compression, ModuleError, ModuleName};

/// A module ready for the kernel: the open file when it is not compressed, else its
/// decompressed contents.
pub enum ModuleImage {
    /// An uncompressed module file, for finit_module(2).
    File(File),
    /// The decompressed contents of a compressed module file, for init_module(2).
    Decompressed(Vec<u8>),
}

impl fmt::Debug for ModuleImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleImage::File(file) => f.debug_tuple("File").field(file).finish(),
            ModuleImage::Decompressed(bytes) => write!(f, "Decompressed({} bytes)", bytes.len()),
        }
    }
}

/// Loads modules into a kernel. The privileged part of module loading, kept narrow so the
/// rest runs against [`RecordingModuleLoader`] in tests.
pub trait ModuleLoader {
    /// Whether `module` is in the kernel already (loaded, being loaded, or built in with a
    /// sysfs entry).
    fn is_loaded(&self, module: &ModuleName) -> Result<bool, ModuleError>;

    /// Hands `image` to the kernel with `parameters` (e.g. `debug=2`). The kernel's error
    /// number on failure; `EEXIST` means the module is loaded already.
    fn insert(
        &mut self,
        module: &ModuleName,
        image: &ModuleImage,
        parameters: &CStr,
    ) -> Result<(), Errno>;
}

/// The real loader: finit_module(2) for plain files, init_module(2) for decompressed images,
/// and `<sysfs>/module/<name>` for the loaded check.
#[derive(Debug, Clone)]
pub struct KernelModuleLoader {
    sysfs_root: PathBuf,
}

impl KernelModuleLoader {
    /// A loader that checks loaded modules under `sysfs_root` (normally `/sys`).
    pub fn new(sysfs_root: impl Into<PathBuf>) -> Self {
        KernelModuleLoader {
            sysfs_root: sysfs_root.into(),
        }
    }
}

impl ModuleLoader for KernelModuleLoader {
    /// Loaded when `<sysfs>/module/<name>/initstate` says `live` or `coming`; a module
    /// directory without `initstate` is a built-in module, also present.
    fn is_loaded(&self, module: &ModuleName) -> Result<bool, ModuleError> {
        let directory = self.sysfs_root.join("module").join(module.as_str());
        let initstate = directory.join("initstate");
        match fs::read_to_string(&initstate) {
            Ok(state) => Ok(state.trim() != "going"),
            // No `initstate`: built in when the directory is there. Should the directory be
            // unreadable, the load goes ahead and the kernel answers `EEXIST` if needed.
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(directory.is_dir()),
            Err(source) => Err(ModuleError::LoadedState {
                module: module.clone(),
                path: initstate,
                source,
            }),
        }
    }

    fn insert(
        &mut self,
        _module: &ModuleName,
        image: &ModuleImage,
        parameters: &CStr,
    ) -> Result<(), Errno> {
        match image {
            ModuleImage::File(file) => finit_module(file, parameters, ModuleInitFlags::empty()),
            ModuleImage::Decompressed(bytes) => init_module(bytes, parameters),
        }
    }
}

/// What [`RecordingModuleLoader`] was given for one insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedInsert {
    /// The module.
    pub module: ModuleName,
    /// The bytes the kernel would have received (decompressed).
    pub image: Vec<u8>,
    /// Whether they came as an open file (finit_module) rather than a buffer (init_module).
    pub from_file: bool,
    /// The parameter string.
    pub parameters: String,
}

/// A fake loader for tests: records every insert, treats inserted modules as loaded, and
/// answers with an error number for the modules told to fail.
#[derive(Debug, Default)]
pub struct RecordingModuleLoader {
    loaded: BTreeSet<ModuleName>,
    failures: BTreeMap<ModuleName, Errno>,
    inserts: Vec<RecordedInsert>,
}

impl RecordingModuleLoader {
    /// A loader with nothing loaded.
    pub fn new() -> Self {
        RecordingModuleLoader::default()
    }

    /// Makes `module` count as loaded already, as if another process had loaded it.
    pub fn mark_loaded(&mut self, module: &str) {
        self.loaded.insert(ModuleName::new(module));
    }

    /// Makes every insert of `module` fail with `errno` (`EEXIST` imitates a load race).
    pub fn fail(&mut self, module: &str, errno: Errno) {
        self.failures.insert(ModuleName::new(module), errno);
    }

    /// Every insert so far, in order.
    pub fn inserts(&self) -> &[RecordedInsert] {
        &self.inserts
    }

    /// The modules inserted so far, in order.
    pub fn inserted_modules(&self) -> Vec<&str> {
        self.inserts
            .iter()
            .map(|insert| insert.module.as_str())
            .collect()
    }
}

impl ModuleLoader for RecordingModuleLoader {
    fn is_loaded(&self, module: &ModuleName) -> Result<bool, ModuleError> {
        Ok(self.loaded.contains(module))
    }

    fn insert(
        &mut self,
        module: &ModuleName,
        image: &ModuleImage,
        parameters: &CStr,
    ) -> Result<(), Errno> {
        if let Some(&errno) = self.failures.get(module) {
            return Err(errno);
        }
        let (bytes, from_file) = match image {
            ModuleImage::File(file) => {
                let mut bytes = Vec::new();
                let mut reader: &File = file;
                reader.read_to_end(&mut bytes).map_err(|_| Errno::EIO)?;
                (bytes, true)
            }
            ModuleImage::Decompressed(bytes) => (bytes.clone(), false),
        };
        self.inserts.push(RecordedInsert {
            module: module.clone(),
            image: bytes,
            from_file,
            parameters: parameters.to_string_lossy().into_owned(),
        });
        self.loaded.insert(module.clone());
        Ok(())
    }
}

/// Whether an insert put the module in or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    Loaded,
    AlreadyLoaded,
}

/// Loads the module file at `path` (`.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`) through `loader`,
/// without parameters and without dependencies: a driver brought on a volume for hardware the
/// installed modules lack, which no modules.dep lists. Returns the module's name and whether
/// the kernel took it now (`false`: it was loaded already).
pub fn load_module_file(
    loader: &mut dyn ModuleLoader,
    path: &Path,
) -> Result<(ModuleName, bool), ModuleError> {
    let not_a_module = || ModuleError::NotAModuleFile {
        path: path.to_owned(),
    };
    let module = ModuleName::from_path(path).ok_or_else(not_a_module)?;
    let compression = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(Compression::of_file_name)
        .ok_or_else(not_a_module)?;
    let inserted = insert_module_file(loader, &module, path, compression, "")?;
    Ok((module, inserted == Inserted::Loaded))
}

/// Opens (and decompresses) the module file at `path` and hands it to `loader`.
pub(crate) fn insert_module_file(
    loader: &mut dyn ModuleLoader,
    module: &ModuleName,
    path: &Path,
    compression: Compression,
    parameters: &str,
) -> Result<Inserted, ModuleError> {
    let parameters = CString::new(parameters).map_err(|_| ModuleError::InvalidParameters {
        module: module.clone(),
        parameters: parameters.to_owned(),
    })?;
    let image = read_image(module, path, compression)?;
    match loader.insert(module, &image, &parameters) {
        Ok(()) => Ok(Inserted::Loaded),
        Err(Errno::EEXIST) => Ok(Inserted::AlreadyLoaded),
        Err(source) => Err(ModuleError::Load {
            module: module.clone(),
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_image(
    module: &ModuleName,
    path: &Path,
    compression: Compression,
) -> Result<ModuleImage, ModuleError> {
    let read_error = |source| ModuleError::ReadModule {
        module: module.clone(),
        path: path.to_owned(),
        source,
    };
    if compression == Compression::None {
        return File::open(path).map(ModuleImage::File).map_err(read_error);
    }
    let compressed = fs::read(path).map_err(read_error)?;
    decompress(&compressed, compression)
        .map(ModuleImage::Decompressed)
        .map_err(|source| ModuleError::Decompress {
            module: module.clone(),
            path: path.to_owned(),
            source,
        })
}

type DecompressError = Box<dyn std::error::Error + Send + Sync>;

fn decompress(compressed: &[u8], compression: Compression) -> Result<Vec<u8>, DecompressError> {
    let mut bytes = Vec::new();
    match compression {
        Compression::None => bytes.extend_from_slice(compressed),
        Compression::Xz => lzma_rs::xz_decompress(&mut io::Cursor::new(compressed), &mut bytes)?,
        Compression::Zstd => bytes = zstd::decode_all(compressed)?,
        Compression::Gzip => {
            flate2::read::GzDecoder::new(compressed).read_to_end(&mut bytes)?;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_reports_an_unreadable_file_as_eio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("write-only.ko");
        let file = File::create(&path).unwrap();
        let mut loader = RecordingModuleLoader::new();
        let result = loader.insert(&"x".into(), &ModuleImage::File(file), c"");
        assert_eq!(result, Err(Errno::EIO));
        assert!(loader.inserts().is_empty());
    }

    #[test]
    fn images_debug_print_without_their_bytes() {
        let image = ModuleImage::Decompressed(vec![0; 4096]);
        assert_eq!(format!("{image:?}"), "Decompressed(4096 bytes)");
    }

    #[test]
    fn a_module_file_from_a_volume_is_loaded_by_its_name_and_a_file_of_another_kind_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("igb-extra.ko");
        std::fs::write(&path, b"\x7fELF module").unwrap();
        let mut loader = RecordingModuleLoader::new();
        let (module, now) = load_module_file(&mut loader, &path).unwrap();
        assert_eq!((module.as_str(), now), ("igb_extra", true));
        assert_eq!(loader.inserted_modules(), ["igb_extra"]);
        assert_eq!(loader.inserts()[0].image, b"\x7fELF module");

        loader.fail("igb_extra", Errno::EEXIST);
        assert!(!load_module_file(&mut loader, &path).unwrap().1);
        loader.fail("igb_extra", Errno::ENOEXEC);
        let error = load_module_file(&mut loader, &path).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot load module igb_extra from "),
            "{error}"
        );

        let readme = dir.path().join("README.txt");
        std::fs::write(&readme, "").unwrap();
        let error = load_module_file(&mut loader, &readme).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is not a kernel module file (.ko, .ko.xz, .ko.zst or .ko.gz)",
                readme.display()
            )
        );
        let missing = load_module_file(&mut loader, &dir.path().join("gone.ko")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot read module gone from "),
            "{missing}"
        );
    }
}
