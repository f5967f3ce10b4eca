//! Shared libraries a set of ELF binaries needs, found the way the dynamic loader finds them:
//! the program interpreter (PT_INTERP) and every DT_NEEDED entry, recursively, searched in the
//! object's RUNPATH (or RPATH) and then the system library directories.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use goblin::elf::Elf;

/// Where Debian's loader looks after RUNPATH, in order.
pub const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib",
];

/// A library to put in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// The file on this machine (may be a symlink; its content is what goes in the image).
    pub host_path: PathBuf,
    /// Where it goes in the image, below /usr, without a leading slash
    /// (e.g. `usr/lib/x86_64-linux-gnu/libc.so.6`).
    pub image_path: String,
}

/// The ELF class and machine an object was built for; a library must match its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    is_64: bool,
    machine: u16,
}

struct Object {
    target: Target,
    interpreter: Option<String>,
    needed: Vec<String>,
    search_dirs: Vec<PathBuf>,
}

fn read_object(path: &Path) -> Result<Object> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let elf =
        Elf::parse(&bytes).with_context(|| format!("{} is not an ELF file", path.display()))?;
    let origin = path.parent().unwrap_or(Path::new("/"));
    // RUNPATH wins over RPATH when both are present, as in ld.so.
    let paths = if elf.runpaths.is_empty() {
        &elf.rpaths
    } else {
        &elf.runpaths
    };
    let search_dirs = paths
        .iter()
        .flat_map(|list| list.split(':'))
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir.replace("$ORIGIN", &origin.to_string_lossy())))
        .collect();
    Ok(Object {
        target: Target {
            is_64: elf.is_64,
            machine: elf.header.e_machine,
        },
        interpreter: elf.interpreter.map(str::to_owned),
        needed: elf
            .libraries
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        search_dirs,
    })
}

/// Resolves every library `binaries` need, searching `system_dirs` after each object's RUNPATH.
/// The result is sorted by image path and holds each library once.
pub fn resolve(binaries: &[PathBuf], system_dirs: &[&str]) -> Result<Vec<Library>> {
    let mut found: BTreeMap<String, Library> = BTreeMap::new();
    // (object to scan, the binary it is scanned for)
    let mut queue: VecDeque<(PathBuf, &Path)> = binaries
        .iter()
        .map(|binary| (binary.clone(), binary.as_path()))
        .collect();
    while let Some((path, binary)) = queue.pop_front() {
        let object = read_object(&path)?;
        let mut wanted = Vec::new();
        if let Some(interpreter) = &object.interpreter {
            let interpreter = PathBuf::from(interpreter);
            if !interpreter.is_file() {
                bail!(
                    "{} (for {}) needs the program interpreter {}, which does not exist",
                    path.display(),
                    binary.display(),
                    interpreter.display()
                );
            }
            wanted.push(interpreter);
        }
        for name in &object.needed {
            let host_path = if name.contains('/') {
                Some(PathBuf::from(name)).filter(|path| path.is_file())
            } else {
                find_library(name, object.target, &object.search_dirs, system_dirs)
            };
            match host_path {
                Some(host_path) => wanted.push(host_path),
                None => bail!(
                    "{} (for {}) needs {name}, which is in none of {:?} or {system_dirs:?}",
                    path.display(),
                    binary.display(),
                    object.search_dirs
                ),
            }
        }
        for host_path in wanted {
            let image_path = image_path(&host_path)?;
            if !found.contains_key(&image_path) {
                queue.push_back((host_path.clone(), binary));
                found.insert(
                    image_path.clone(),
                    Library {
                        host_path,
                        image_path,
                    },
                );
            }
        }
    }
    Ok(found.into_values().collect())
}

fn find_library(
    name: &str,
    target: Target,
    object_dirs: &[PathBuf],
    system_dirs: &[&str],
) -> Option<PathBuf> {
    let dirs = object_dirs
        .iter()
        .cloned()
        .chain(system_dirs.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        // Like ld.so, skip what is not a loadable ELF object for this target (a linker
        // script, a 32-bit library) and keep searching.
        let usable = candidate.is_file()
            && read_object(&candidate).is_ok_and(|object| object.target == target);
        if usable {
            return Some(candidate);
        }
    }
    None
}

/// The library's path in a merged-/usr image: its directory with symlinks resolved, `/lib*`
/// moved below `/usr`, and the name it was asked for (the soname, not the versioned file).
fn image_path(host_path: &Path) -> Result<String> {
    let name = host_path
        .file_name()
        .with_context(|| format!("{} has no file name", host_path.display()))?;
    let parent = host_path.parent().unwrap_or(Path::new("/"));
    let dir =
        fs::canonicalize(parent).with_context(|| format!("cannot resolve {}", parent.display()))?;
    let mut parts: Vec<String> = dir
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.first().is_some_and(|first| first.starts_with("lib")) {
        parts.insert(0, "usr".to_owned());
    }
    parts.push(name.to_string_lossy().into_owned());
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(libraries: &[Library]) -> Vec<&str> {
        libraries
            .iter()
            .map(|library| library.image_path.as_str())
            .collect()
    }

    #[test]
    fn resolves_the_libraries_of_ls_to_their_usr_paths() {
        let libraries = resolve(&[PathBuf::from("/bin/ls")], SYSTEM_LIBRARY_DIRS).unwrap();
        let paths = images(&libraries);
        for expected in [
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/x86_64-linux-gnu/libselinux.so.1",
            // Needed by libselinux, not by ls itself: the search is recursive.
            "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
            "usr/lib64/ld-linux-x86-64.so.2",
        ] {
            assert!(paths.contains(&expected), "{expected} not in {paths:?}");
        }
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(paths, sorted);
        assert!(libraries.iter().all(|library| library.host_path.is_file()));
    }

    #[test]
    fn a_static_binary_needs_nothing() {
        assert_eq!(
            resolve(&[PathBuf::from("/bin/busybox")], SYSTEM_LIBRARY_DIRS).unwrap(),
            []
        );
    }

    #[test]
    fn a_missing_library_names_the_binary_and_the_library() {
        let error = resolve(&[PathBuf::from("/bin/ls")], &["/nonexistent"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/bin/ls") && error.contains("needs libselinux.so.1"),
            "{error}"
        );
    }

    #[test]
    fn a_candidate_that_is_not_a_library_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("libc.so.6"), "/* GNU ld script */\n").unwrap();
        let first = dir.path().to_string_lossy().into_owned();
        let mut dirs = vec![first.as_str()];
        dirs.extend_from_slice(SYSTEM_LIBRARY_DIRS);
        let libraries = resolve(&[PathBuf::from("/bin/ls")], &dirs).unwrap();
        let libc = libraries
            .iter()
            .find(|library| library.image_path.ends_with("/libc.so.6"))
            .unwrap();
        assert!(!libc.host_path.starts_with(dir.path()), "{libc:?}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        let error = resolve(&[script], SYSTEM_LIBRARY_DIRS)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not an ELF file"), "{error}");
    }

    #[test]
    fn image_paths_move_lib_below_usr() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        fs::create_dir(&lib).unwrap();
        let canonical = fs::canonicalize(&lib).unwrap();
        let expected = format!(
            "{}/libx.so.1",
            canonical.to_string_lossy().trim_start_matches('/')
        );
        assert_eq!(image_path(&lib.join("libx.so.1")).unwrap(), expected);
        assert_eq!(
            image_path(Path::new("/lib64/ld-linux-x86-64.so.2")).unwrap(),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
    }
}
