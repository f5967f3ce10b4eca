//! The module indices depmod writes into `/lib/modules/<release>`, parsed once and queried.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::modules::glob::Pattern;
use crate::modules::{ModuleError, ModuleName};

const ALIAS_FILE: &str = "modules.alias";
const DEP_FILE: &str = "modules.dep";
const BUILTIN_FILE: &str = "modules.builtin";
const BUILTIN_MODINFO_FILE: &str = "modules.builtin.modinfo";
const SOFTDEP_FILE: &str = "modules.softdep";

/// How a module file is compressed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain `.ko`.
    None,
    /// `.ko.xz`.
    Xz,
    /// `.ko.zst`.
    Zstd,
    /// `.ko.gz`.
    Gzip,
}

impl Compression {
    /// The compression of a module file named `file_name`; `None` when it is no module file.
    pub(crate) fn of_file_name(file_name: &str) -> Option<Self> {
        MODULE_FILE_SUFFIXES
            .into_iter()
            .find(|(suffix, _)| file_name.ends_with(suffix))
            .map(|(_, compression)| compression)
    }
}

/// File name endings of kernel modules: plain, then the compressions the kernel build offers.
pub(crate) const MODULE_FILE_SUFFIXES: [(&str, Compression); 4] = [
    (".ko", Compression::None),
    (".ko.xz", Compression::Xz),
    (".ko.zst", Compression::Zstd),
    (".ko.gz", Compression::Gzip),
];

/// A line of an index file that was skipped because it does not have the expected form.
/// Serializes as `{"path": ..., "line": ..., "problem": ..., "text": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexIssue {
    /// The index file.
    pub path: PathBuf,
    /// The line number, from 1 (for modules.builtin.modinfo: the entry number).
    pub line: usize,
    /// What is wrong, e.g. `expected "alias PATTERN MODULE"`.
    pub problem: &'static str,
    /// The line as it was.
    pub text: String,
}

impl fmt::Display for IndexIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {:?}",
            self.path.display(),
            self.line,
            self.problem,
            self.text
        )
    }
}

/// A module file and what it needs, from its modules.dep line.
#[derive(Debug, Clone)]
pub(crate) struct ModuleEntry {
    /// The file, relative to the modules directory (or absolute, if modules.dep says so).
    pub(crate) path: PathBuf,
    pub(crate) compression: Compression,
    /// Every module it needs, as modules.dep lists them: direct ones first, deepest last.
    pub(crate) dependencies: Vec<ModuleName>,
}

/// Names from one module's modules.softdep lines: module names or aliases to load before
/// (`pre:`) and after (`post:`) it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SoftDependencies {
    pub(crate) pre: Vec<String>,
    pub(crate) post: Vec<String>,
}

#[derive(Debug, Clone)]
struct Alias {
    pattern: Pattern,
    module: ModuleName,
}

/// The module indices of one kernel: modules.alias, modules.dep, modules.builtin,
/// modules.softdep and, when present, modules.builtin.modinfo (aliases of built-in drivers).
///
/// Lines that do not parse are skipped and listed in [`ModuleIndex::issues`].
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    dir: PathBuf,
    aliases: Vec<Alias>,
    /// Indices into `aliases` by the bus name that starts their pattern (`pci` for
    /// `pci:v...`); patterns with a wildcard before the first `:` are in `unbucketed_aliases`.
    alias_buckets: HashMap<String, Vec<usize>>,
    unbucketed_aliases: Vec<usize>,
    builtin_aliases: Vec<Alias>,
    modules: HashMap<ModuleName, ModuleEntry>,
    builtin: HashSet<ModuleName>,
    soft_dependencies: HashMap<ModuleName, SoftDependencies>,
    issues: Vec<IndexIssue>,
}

impl ModuleIndex {
    /// Reads the indices in `modules_dir` (normally `/lib/modules/<release>`, the release
    /// as uname(2) gives it).
    ///
    /// Fails when modules.alias, modules.dep, modules.builtin or modules.softdep is missing or
    /// unreadable; modules.builtin.modinfo is optional (kernels before 5.2 lack it).
    pub fn load(modules_dir: &Path) -> Result<Self, ModuleError> {
        let mut index = ModuleIndex {
            dir: modules_dir.to_owned(),
            aliases: Vec::new(),
            alias_buckets: HashMap::new(),
            unbucketed_aliases: Vec::new(),
            builtin_aliases: Vec::new(),
            modules: HashMap::new(),
            builtin: HashSet::new(),
            soft_dependencies: HashMap::new(),
            issues: Vec::new(),
        };
        let alias_path = modules_dir.join(ALIAS_FILE);
        index.parse_aliases(&alias_path, &read_index(&alias_path)?);
        let dep_path = modules_dir.join(DEP_FILE);
        index.parse_dependencies(&dep_path, &read_index(&dep_path)?);
        let builtin_path = modules_dir.join(BUILTIN_FILE);
        index.parse_builtin(&builtin_path, &read_index(&builtin_path)?);
        let softdep_path = modules_dir.join(SOFTDEP_FILE);
        index.parse_soft_dependencies(&softdep_path, &read_index(&softdep_path)?);
        let modinfo_path = modules_dir.join(BUILTIN_MODINFO_FILE);
        match fs::read(&modinfo_path) {
            Ok(bytes) => index.parse_builtin_modinfo(&modinfo_path, &bytes),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ModuleError::ReadIndex {
                    path: modinfo_path,
                    source,
                });
            }
        }
        Ok(index)
    }

    /// The modules directory the index was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lines of the index files that were skipped because they did not parse.
    pub fn issues(&self) -> &[IndexIssue] {
        &self.issues
    }

    /// The modules that provide `alias`, the way modprobe looks a name up (`-` and `_` are the
    /// same outside `[...]`). The first of these that finds anything gives the answer:
    /// a module of that name in modules.dep; every modules.alias pattern that matches, in
    /// file order without repeats (a device modalias such as
    /// `pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00` resolves here); the built-in
    /// drivers whose aliases match (modules.builtin.modinfo); a built-in module of that name.
    /// Empty when nothing provides it.
    pub fn resolve(&self, alias: &str) -> Vec<ModuleName> {
        let Some(alias) = normalize_alias(alias) else {
            return Vec::new();
        };
        let as_module = ModuleName::new(&alias);
        if self.modules.contains_key(&as_module) {
            return vec![as_module];
        }
        let bucket = alias
            .split_once(':')
            .and_then(|(bus, _)| self.alias_buckets.get(bus))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut matching: Vec<usize> = bucket
            .iter()
            .chain(&self.unbucketed_aliases)
            .copied()
            .filter(|&i| self.aliases[i].pattern.matches(&alias))
            .collect();
        matching.sort_unstable();
        let found = unique_modules(matching.into_iter().map(|i| &self.aliases[i]));
        if !found.is_empty() {
            return found;
        }
        let found = unique_modules(
            self.builtin_aliases
                .iter()
                .filter(|entry| entry.pattern.matches(&alias)),
        );
        if !found.is_empty() {
            return found;
        }
        if self.builtin.contains(&as_module) {
            return vec![as_module];
        }
        Vec::new()
    }

    /// Whether `module` is built into the kernel (modules.builtin): it needs no load.
    pub fn is_builtin(&self, module: &ModuleName) -> bool {
        self.builtin.contains(module)
    }

    /// The file of `module` (modules directory joined with its modules.dep path); `None` when
    /// modules.dep does not list it.
    pub fn module_file(&self, module: &ModuleName) -> Option<PathBuf> {
        self.modules
            .get(module)
            .map(|entry| self.dir.join(&entry.path))
    }

    pub(crate) fn entry(&self, module: &ModuleName) -> Option<&ModuleEntry> {
        self.modules.get(module)
    }

    pub(crate) fn soft_dependencies(&self, module: &ModuleName) -> Option<&SoftDependencies> {
        self.soft_dependencies.get(module)
    }

    pub(crate) fn dep_file(&self) -> PathBuf {
        self.dir.join(DEP_FILE)
    }

    fn issue(&mut self, path: &Path, line: usize, problem: &'static str, text: &str) {
        self.issues.push(IndexIssue {
            path: path.to_owned(),
            line,
            problem,
            text: text.to_owned(),
        });
    }

    /// `alias PATTERN MODULE` lines.
    fn parse_aliases(&mut self, path: &Path, text: &str) {
        for (number, line) in content_lines(text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["alias", pattern, module] = words[..] else {
                self.issue(path, number, "expected \"alias PATTERN MODULE\"", line);
                continue;
            };
            let Some(pattern) = normalize_alias(pattern) else {
                self.issue(path, number, "unbalanced [ ] in the pattern", line);
                continue;
            };
            let pattern = Pattern::new(&pattern);
            let position = self.aliases.len();
            match pattern.prefix().split_once(':') {
                Some((bus, _)) => self
                    .alias_buckets
                    .entry(bus.to_owned())
                    .or_default()
                    .push(position),
                None => self.unbucketed_aliases.push(position),
            }
            self.aliases.push(Alias {
                pattern,
                module: ModuleName::new(module),
            });
        }
    }

    /// `PATH: DEPENDENCY_PATH...` lines.
    fn parse_dependencies(&mut self, path: &Path, text: &str) {
        for (number, line) in content_lines(text) {
            let Some((file, dependencies)) = line.split_once(':') else {
                self.issue(
                    path,
                    number,
                    "expected \"MODULE_PATH: DEPENDENCY_PATH...\"",
                    line,
                );
                continue;
            };
            let Some((module, compression)) = module_file(file.trim()) else {
                self.issue(
                    path,
                    number,
                    "not a module file (.ko, .ko.xz, .ko.zst, .ko.gz)",
                    line,
                );
                continue;
            };
            let dependencies: Option<Vec<ModuleName>> = dependencies
                .split_whitespace()
                .map(|file| module_file(file).map(|(name, _)| name))
                .collect();
            let Some(dependencies) = dependencies else {
                self.issue(path, number, "a dependency is not a module file", line);
                continue;
            };
            if self.modules.contains_key(&module) {
                self.issue(
                    path,
                    number,
                    "module listed twice, the first line counts",
                    line,
                );
                continue;
            }
            let entry = ModuleEntry {
                path: PathBuf::from(file.trim()),
                compression,
                dependencies,
            };
            self.modules.insert(module, entry);
        }
    }

    /// One module path per line.
    fn parse_builtin(&mut self, path: &Path, text: &str) {
        for (number, line) in content_lines(text) {
            match module_file(line) {
                Some((module, _)) if !line.contains(char::is_whitespace) => {
                    self.builtin.insert(module);
                }
                _ => self.issue(path, number, "expected one module path", line),
            }
        }
    }

    /// `softdep MODULE [pre: NAME...] [post: NAME...]` lines. As in kmod, names before the
    /// first `pre:` or `post:` are ignored (Debian kernels ship such lines).
    fn parse_soft_dependencies(&mut self, path: &Path, text: &str) {
        for (number, line) in content_lines(text) {
            let mut words = line.split_whitespace();
            let (Some("softdep"), Some(module)) = (words.next(), words.next()) else {
                self.issue(
                    path,
                    number,
                    "expected \"softdep MODULE pre: ... post: ...\"",
                    line,
                );
                continue;
            };
            if module.ends_with(':') {
                self.issue(
                    path,
                    number,
                    "expected a module name after \"softdep\"",
                    line,
                );
                continue;
            }
            let entry = self
                .soft_dependencies
                .entry(ModuleName::new(module))
                .or_default();
            let mut list: Option<&mut Vec<String>> = None;
            for word in words {
                match word {
                    "pre:" => list = Some(&mut entry.pre),
                    "post:" => list = Some(&mut entry.post),
                    name => {
                        if let Some(list) = list.as_mut() {
                            list.push(name.to_owned());
                        }
                    }
                }
            }
        }
    }

    /// NUL-separated `MODULE.KEY=VALUE` entries; only `alias` keys matter here.
    fn parse_builtin_modinfo(&mut self, path: &Path, bytes: &[u8]) {
        let entries = bytes.split(|&byte| byte == 0).filter(|e| !e.is_empty());
        for (number, entry) in entries.enumerate() {
            let entry = String::from_utf8_lossy(entry);
            let Some((module, key, value)) = entry
                .split_once('.')
                .and_then(|(module, rest)| rest.split_once('=').map(|(k, v)| (module, k, v)))
            else {
                self.issue(path, number + 1, "expected \"MODULE.KEY=VALUE\"", &entry);
                continue;
            };
            if key != "alias" {
                continue;
            }
            let Some(pattern) = normalize_alias(value) else {
                self.issue(path, number + 1, "unbalanced [ ] in the pattern", &entry);
                continue;
            };
            self.builtin_aliases.push(Alias {
                pattern: Pattern::new(&pattern),
                module: ModuleName::new(module),
            });
        }
    }
}

fn read_index(path: &Path) -> Result<String, ModuleError> {
    let bytes = fs::read(path).map_err(|source| ModuleError::ReadIndex {
        path: path.to_owned(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Numbered (from 1), trimmed lines that are neither empty nor `#` comments.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// The module name and compression of a module file path.
fn module_file(path: &str) -> Option<(ModuleName, Compression)> {
    let name = ModuleName::from_path(Path::new(path))?;
    let compression = Compression::of_file_name(path)?;
    Some((name, compression))
}

/// kmod's alias normalisation: `-` becomes `_` except inside `[...]`. `None` when the
/// brackets do not balance, as kmod rejects such aliases.
fn normalize_alias(alias: &str) -> Option<String> {
    let mut normalized = String::with_capacity(alias.len());
    let mut in_brackets = false;
    for c in alias.chars() {
        match c {
            '[' if !in_brackets => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            ']' => return None,
            _ => {}
        }
        normalized.push(if c == '-' && !in_brackets { '_' } else { c });
    }
    (!in_brackets).then_some(normalized)
}

/// The modules of `aliases`, first occurrence order, without repeats.
fn unique_modules<'a>(aliases: impl Iterator<Item = &'a Alias>) -> Vec<ModuleName> {
    let mut found: Vec<ModuleName> = Vec::new();
    for alias in aliases {
        if !found.contains(&alias.module) {
            found.push(alias.module.clone());
        }
    }
    found
}
