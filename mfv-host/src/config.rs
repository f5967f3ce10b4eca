//! Reading and changing the stored configuration one key at a time, as `mfv config get|set`
//! do and the host daemon will: keys are dotted field paths as in the validation errors
//! (`host.hostname`, `network.dns.servers`, `network.interfaces[0].mode`, or
//! `network.interfaces.0.mode`). A value is taken as TOML when it is one (`443`, `true`,
//! `["a", "b"]`), else as a string, and for a list also as comma-separated strings
//! (`192.0.2.53,192.0.2.54`); the first reading the schema accepts for the key wins. The whole
//! configuration is validated before anything is saved. A saved configuration is written in
//! the canonical form of [`Config::to_toml`]: comments of a hand-written file are not kept.
//!
//! [`StoreVolume`] opens the store the way a running host finds it: a directory given by the
//! operator, or the config volume discovery finds, mounted read-only on a private directory
//! and made writable only while a generation is written.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfv_config::discovery::{
    ConfigSource, Discovery, DiscoveryParams, DiscoveryReport, Verdict, discover,
};
use mfv_config::mount::{Journal, MountError, ReadOnlyMount, SysMounter};
use mfv_config::schema::{Config, ConfigErrors, parse_config};
use mfv_config::store::{
    ConfigStore, DirectoryStore, PlainDirectory, RemountVolume, StoreError, StoreWarning,
    VolumeAccess,
};
use toml::{Table, Value};

/// Why a key could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigKeyError {
    /// The key is not a dotted field path.
    #[error("bad key {key:?}: {problem}")]
    BadKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The key does not fit the configuration's shape (an index out of range, a field of a
    /// list, ...).
    #[error("{key}: {problem}")]
    Shape {
        /// The key.
        key: String,
        /// What does not fit.
        problem: String,
    },
    /// The key is not a field of the schema.
    #[error("unknown key {key}: {message}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The schema's message, with its "did you mean" hint.
        message: String,
    },
    /// The key is a field of the schema that is not set.
    #[error("{key} is not set")]
    NotSet {
        /// The key.
        key: String,
    },
    /// The store holds no configuration.
    #[error("no configuration saved in {}", store.display())]
    NothingSaved {
        /// The store.
        store: PathBuf,
    },
    /// The stored configuration does not validate (written by an older or newer version, or
    /// by hand).
    #[error("the stored configuration is invalid")]
    StoredInvalid {
        /// Every problem.
        errors: ConfigErrors,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The editor of [`edit`] failed.
    #[error("the editor failed")]
    Editor(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Discovery found no config volume to open.
    #[error("no config volume found")]
    NoVolume {
        /// Discovery's report: every candidate and why it was skipped.
        report: Box<DiscoveryReport>,
    },
    /// The config volume could not be mounted or unmounted.
    #[error("cannot use the config volume {source_volume}")]
    Volume {
        /// The volume.
        source_volume: Box<ConfigSource>,
        /// The cause.
        #[source]
        source: MountError,
    },
    /// The host-wide lock of the config volume could not be opened or taken.
    #[error("cannot lock the config volume with {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process of the host kept the config volume for longer than a writer may.
    #[error(
        "the config volume is busy: another process of this host has held {} for {} s \
         (the host daemon or the VM keeper; try again)",
        path.display(),
        waited.as_secs()
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long this opener waited.
        waited: Duration,
    },
}

/// The configuration a store holds, with the store's warnings (the last-known-good generation
/// was used because the current one is unusable).
#[derive(Debug, Clone)]
pub struct StoredConfig {
    /// The configuration.
    pub config: Config,
    /// Its text as stored (with the operator's comments).
    pub text: String,
    /// Why the current generation was skipped, if it was.
    pub warnings: Vec<StoreWarning>,
}

/// Loads and validates the configuration `store` holds.
pub fn load(store: &dyn ConfigStore, dir: &Path) -> Result<StoredConfig, ConfigKeyError> {
    let loaded = store.load()?.ok_or_else(|| ConfigKeyError::NothingSaved {
        store: dir.to_path_buf(),
    })?;
    let config =
        parse_config(&loaded.text).map_err(|errors| ConfigKeyError::StoredInvalid { errors })?;
    Ok(StoredConfig {
        config,
        text: loaded.text,
        warnings: loaded.warnings,
    })
}

/// The value at `key` in `config`.
pub fn get(config: &Config, key: &str) -> Result<Value, ConfigKeyError> {
    let path = KeyPath::parse(key)?;
    let table = config_table(config);
    match path.lookup(&table)? {
        Some(value) => Ok(value.clone()),
        None => Err(missing_key(&table, &path)),
    }
}

/// What [`set`] did.
#[derive(Debug)]
pub enum SetOutcome {
    /// The changed configuration was saved.
    Saved {
        /// The key, in the spelling of validation errors.
        key: String,
        /// The value now stored (`None`: the schema dropped it, e.g. a default).
        value: Option<Value>,
        /// The generation written.
        generation: u64,
    },
    /// No reading of the value gives a valid configuration; nothing was saved.
    Refused {
        /// The key, in the spelling of validation errors.
        key: String,
        /// The errors of the most fitting reading (positions point into generated text:
        /// show the field and the message).
        errors: ConfigErrors,
    },
}

/// What setting a key would make of a configuration (see [`plan_set`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedSet {
    /// The changed configuration, valid.
    Valid {
        /// The key, in the spelling of validation errors.
        key: String,
        /// The value it would hold (`None`: the schema drops it, e.g. a default).
        value: Option<Value>,
        /// The whole changed configuration as TOML.
        text: String,
    },
    /// No reading of the value gives a valid configuration.
    Refused {
        /// The key, in the spelling of validation errors.
        key: String,
        /// The errors of the most fitting reading.
        errors: ConfigErrors,
    },
}

/// The configuration with `key` set to `value` (each reading of the value tried: a number, a
/// boolean, a list, a string), validated; nothing is saved. For a store reached only through
/// the host daemon, which saves the text.
pub fn plan_set(config: &Config, key: &str, value: &str) -> Result<PlannedSet, ConfigKeyError> {
    let path = KeyPath::parse(key)?;
    let table = config_table(config);
    let current = path.lookup(&table)?.cloned();
    let mut first_refusal = None;
    for candidate in value_readings(value, current.as_ref()) {
        let mut changed = table.clone();
        path.store(&mut changed, candidate)?;
        match parse_config(&table_text(&changed)) {
            Ok(config) => {
                return Ok(PlannedSet::Valid {
                    key: path.to_string(),
                    value: path.lookup(&config_table(&config))?.cloned(),
                    text: config.to_toml(),
                });
            }
            Err(errors) => {
                let about_key = errors.errors().iter().any(|error| path.is_at(&error.path));
                let wrong_type = errors.errors().iter().any(|error| {
                    error.path == path.to_string() && error.message.starts_with("expected ")
                });
                if !about_key || !wrong_type {
                    // A reading of the right type: its errors are the ones to show.
                    first_refusal = Some(errors);
                    break;
                }
                first_refusal.get_or_insert(errors);
            }
        }
    }
    match first_refusal {
        Some(errors) => Ok(PlannedSet::Refused {
            key: path.to_string(),
            errors,
        }),
        // value_readings always gives at least the string reading.
        None => Err(ConfigKeyError::Shape {
            key: path.to_string(),
            problem: "no reading of the value was tried".to_owned(),
        }),
    }
}

/// Sets `key` to `value` in `config` and saves the result in `store` if it validates.
pub fn set(
    store: &dyn ConfigStore,
    config: &Config,
    key: &str,
    value: &str,
) -> Result<SetOutcome, ConfigKeyError> {
    match plan_set(config, key, value)? {
        PlannedSet::Valid { key, value, text } => {
            let saved = store.save(&text)?;
            Ok(SetOutcome::Saved {
                key,
                value,
                generation: saved.generation,
            })
        }
        PlannedSet::Refused { key, errors } => Ok(SetOutcome::Refused { key, errors }),
    }
}

/// What the editor of [`edit`] gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edited {
    /// The edited text.
    Text(String),
    /// The operator gave up: nothing is saved.
    Abandoned,
}

/// What [`edit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    /// The edited configuration was saved as this generation.
    Saved {
        /// The generation written.
        generation: u64,
    },
    /// The text came back unchanged: nothing was saved.
    Unchanged,
    /// The operator gave up: nothing was saved.
    Abandoned,
}

/// A function that lets the operator edit a configuration text: it gets the text, and after a
/// refused round the errors of that text, and gives back the new text or abandons.
pub type Editor<'e> = dyn FnMut(&str, Option<&ConfigErrors>) -> Result<Edited, Box<dyn std::error::Error + Send + Sync>>
    + 'e;

/// Lets the operator edit the whole configuration `text` through `editor` until it validates
/// (each refused round goes back to the editor with its errors and the edited text), then
/// saves it in `store` as written (comments kept). An unchanged text is not saved.
pub fn edit(
    store: &dyn ConfigStore,
    text: &str,
    editor: &mut Editor<'_>,
) -> Result<EditOutcome, ConfigKeyError> {
    let mut current = text.to_owned();
    let mut errors = None;
    loop {
        let edited = match editor(&current, errors.as_ref()).map_err(ConfigKeyError::Editor)? {
            Edited::Text(edited) => edited,
            Edited::Abandoned => return Ok(EditOutcome::Abandoned),
        };
        if edited == text {
            return Ok(EditOutcome::Unchanged);
        }
        match parse_config(&edited) {
            Ok(_) => {
                let saved = store.save(&edited)?;
                return Ok(EditOutcome::Saved {
                    generation: saved.generation,
                });
            }
            Err(refused) => {
                errors = Some(refused);
                current = edited;
            }
        }
    }
}

/// Why a key has no value: it is not a field of the schema (with the schema's "did you mean"
/// hint), or it is a field that is not set.
fn missing_key(table: &Table, path: &KeyPath) -> ConfigKeyError {
    let mut probe = table.clone();
    if path.store(&mut probe, Value::String(String::new())).is_ok()
        && let Err(errors) = parse_config(&table_text(&probe))
        && let Some(unknown) = errors
            .errors()
            .iter()
            .find(|error| error.message.starts_with("unknown field") && path.is_at(&error.path))
    {
        return ConfigKeyError::UnknownKey {
            key: path.to_string(),
            message: unknown.message.clone(),
        };
    }
    ConfigKeyError::NotSet {
        key: path.to_string(),
    }
}

/// The ways `value` can be read, most specific first: as TOML (`443`, `true`, `["a"]`), as a
/// string, and as a list of comma-separated strings. A key whose current value is a string
/// takes only the string.
fn value_readings(value: &str, current: Option<&Value>) -> Vec<Value> {
    let string = Value::String(value.to_owned());
    if matches!(current, Some(Value::String(_))) {
        return vec![string];
    }
    let mut readings = Vec::new();
    if let Ok(document) = format!("value = {value}").parse::<Table>()
        && let Some(parsed) = document.get("value")
    {
        readings.push(parsed.clone());
    }
    readings.push(string);
    readings.push(Value::Array(
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect(),
    ));
    readings
}

/// A configuration as a TOML table.
fn config_table(config: &Config) -> Table {
    // The canonical text of a configuration is always a TOML document.
    config.to_toml().parse::<Table>().unwrap_or_default()
}

fn table_text(table: &Table) -> String {
    // A table of TOML values always serializes; an error would show in validation.
    toml::to_string(table).unwrap_or_default()
}

/// A config store opened for `mfv config` or the host daemon: a directory, or the config
/// volume discovery found, mounted on a private directory until [`StoreVolume::close`].
#[derive(Debug)]
pub struct StoreVolume {
    store: DirectoryStore,
    mount: Option<(ReadOnlyMount<'static, SysMounter>, Box<ConfigSource>)>,
    _one_opener: Option<VolumeLock>,
}

/// The lock file below the runtime directory that every opener of a config volume on this host
/// holds from discovery to [`StoreVolume::close`].
pub const VOLUME_LOCK_FILE: &str = "config-volume.lock";

/// How long an opener waits for the volume before it gives up with [`ConfigKeyError::Busy`]:
/// a writer holds it for the time of one save, well under a second.
pub const VOLUME_LOCK_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting opener tries the lock again.
const VOLUME_LOCK_POLL: Duration = Duration::from_millis(50);

/// An exclusive `flock` on [`VOLUME_LOCK_FILE`], released when dropped.
///
/// The host daemon (config saves) and the VM keeper (VM definitions) are separate processes
/// that each mount the same config volume on a private directory and remount it read-write
/// while they write. Those mounts share one superblock, so one opener's read-only remount
/// would fail or cut under the other's write; discovery's probing mounts collide the same
/// way. One opener at a time keeps each save whole. The lock is per open file description, so
/// threads of one process exclude each other too.
#[derive(Debug)]
pub struct VolumeLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl VolumeLock {
    /// Takes the lock in `run_dir`, waiting up to `wait`.
    pub fn take(run_dir: &Path, wait: Duration) -> Result<VolumeLock, ConfigKeyError> {
        let path = run_dir.join(VOLUME_LOCK_FILE);
        let lock_error = |source| ConfigKeyError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(run_dir).map_err(lock_error)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(lock_error)?;
        let started = Instant::now();
        loop {
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(VolumeLock { _held: held }),
                Err((returned, nix::errno::Errno::EWOULDBLOCK)) => file = returned,
                Err((_, errno)) => return Err(lock_error(errno.into())),
            }
            if started.elapsed() >= wait {
                return Err(ConfigKeyError::Busy {
                    path,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(VOLUME_LOCK_POLL);
        }
    }
}

impl StoreVolume {
    /// The store in `dir` (no volume to mount: the directory is written as it is).
    pub fn directory(dir: &Path) -> StoreVolume {
        StoreVolume {
            store: DirectoryStore::new(dir, PlainDirectory),
            mount: None,
            _one_opener: None,
        }
    }

    /// The store on the config volume discovery finds with `params` (a volume holding an
    /// invalid configuration is opened too, so it can be repaired), mounted read-only with
    /// its journal loaded on a private directory of `params.run_dir`, and remounted
    /// read-write only while a generation is written. Every opener on the host takes turns
    /// (see [`VOLUME_LOCK_FILE`]), waiting up to [`VOLUME_LOCK_WAIT`].
    pub fn discovered(params: &DiscoveryParams) -> Result<StoreVolume, ConfigKeyError> {
        StoreVolume::open(params, false)
    }

    /// Like [`StoreVolume::discovered`], and with `without_config`, a volume that has a file
    /// system but no configuration yet is opened too (for first-boot setup's save).
    fn open(params: &DiscoveryParams, without_config: bool) -> Result<StoreVolume, ConfigKeyError> {
        let one_opener = VolumeLock::take(&params.run_dir, VOLUME_LOCK_WAIT)?;
        let report = discover(params, &SysMounter);
        let blank = without_config
            .then(|| {
                report.candidates.iter().find_map(|candidate| {
                    match (&candidate.device, &candidate.fs_type, &candidate.verdict) {
                        (Some(device), Some(fs_type), Verdict::NoConfigFile) => {
                            Some(ConfigSource {
                                device: device.clone(),
                                fs_type: fs_type.clone(),
                                label: None,
                                uuid: None,
                                locator: candidate.locator.clone(),
                            })
                        }
                        _ => None,
                    }
                })
            })
            .flatten();
        let source = match (report.outcome, blank) {
            (Discovery::Found { source, .. } | Discovery::Invalid { source, .. }, _) => source,
            (Discovery::NotFound, Some(source)) => source,
            (outcome @ Discovery::NotFound, None) => {
                return Err(ConfigKeyError::NoVolume {
                    report: Box::new(DiscoveryReport { outcome, ..report }),
                });
            }
        };
        let source = Box::new(source);
        let mount = ReadOnlyMount::new(
            &SysMounter,
            &source.device,
            &source.fs_type,
            Journal::Load,
            &params.run_dir,
        )
        .map_err(|error| ConfigKeyError::Volume {
            source_volume: source.clone(),
            source: error,
        })?;
        let store = DirectoryStore::new(mount.path(), RemountVolume::new(mount.path()));
        Ok(StoreVolume {
            store,
            mount: Some((mount, source)),
            _one_opener: Some(one_opener),
        })
    }

    /// The store on the volume at `device` (the one the boot used), mounted like
    /// [`StoreVolume::discovered`] on a private directory of `run_dir`.
    pub fn on_device(device: &Path, run_dir: &Path) -> Result<StoreVolume, ConfigKeyError> {
        StoreVolume::discovered(&device_params(device, run_dir))
    }

    /// The store on the volume at `device`, which may hold no configuration yet (a volume
    /// made for first-boot setup, or one the operator brought), mounted like
    /// [`StoreVolume::on_device`].
    pub fn for_setup(device: &Path, run_dir: &Path) -> Result<StoreVolume, ConfigKeyError> {
        StoreVolume::open(&device_params(device, run_dir), true)
    }

    /// The store.
    pub fn store(&self) -> &DirectoryStore {
        &self.store
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Switches the volume between read-only and read-write, for files beside the store
    /// that a library writes itself (the auth database): nothing to switch for a directory.
    pub fn access(&self) -> Box<dyn VolumeAccess> {
        match &self.mount {
            Some((mount, _)) => Box::new(RemountVolume::new(mount.path())),
            None => Box::new(PlainDirectory),
        }
    }

    /// Unmounts the volume, if one was mounted.
    pub fn close(self) -> Result<(), ConfigKeyError> {
        match self.mount {
            Some((mount, source)) => mount.unmount().map_err(|error| ConfigKeyError::Volume {
                source_volume: source,
                source: error,
            }),
            None => Ok(()),
        }
    }
}

/// Discovery of the volume at `device` alone, mounting below `run_dir`.
fn device_params(device: &Path, run_dir: &Path) -> DiscoveryParams {
    let mut params = DiscoveryParams::new(
        Some(mfv_config::cmdline::ConfigLocator::Device(
            device.to_owned(),
        )),
        None,
    );
    params.run_dir = run_dir.to_owned();
    params
}

/// One step of a key: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// A parsed key: `network.interfaces[0].mode` or `network.interfaces.0.mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath {
    steps: Vec<Step>,
}

impl KeyPath {
    fn parse(key: &str) -> Result<KeyPath, ConfigKeyError> {
        let bad = |problem: &'static str| ConfigKeyError::BadKey {
            key: key.to_owned(),
            problem,
        };
        let mut steps = Vec::new();
        for part in key.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(open) => (&part[..open], &part[open..]),
                None => (part, ""),
            };
            if name.is_empty() {
                return Err(bad("empty field name"));
            }
            match name.parse::<usize>() {
                Ok(index) if !steps.is_empty() => steps.push(Step::Index(index)),
                Ok(_) => return Err(bad("it starts with a list index")),
                Err(_) => {
                    if !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(bad("field names are letters, digits, `_` and `-`"));
                    }
                    steps.push(Step::Field(name.to_owned()));
                }
            }
            while !rest.is_empty() {
                let close = rest.find(']').ok_or_else(|| bad("`[` without `]`"))?;
                let index = rest[1..close]
                    .parse::<usize>()
                    .map_err(|_| bad("a list index is a number"))?;
                steps.push(Step::Index(index));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(bad("text after `]`"));
                }
            }
        }
        Ok(KeyPath { steps })
    }

    /// Whether a validation error's field path is this key or inside it.
    fn is_at(&self, error_path: &str) -> bool {
        let own = self.to_string();
        error_path == own
            || error_path
                .strip_prefix(&own)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    }

    /// The value at the key; `None` when a field on the way is not set.
    fn lookup<'t>(&self, table: &'t Table) -> Result<Option<&'t Value>, ConfigKeyError> {
        let mut steps = self.steps.iter();
        let Some(Step::Field(first)) = steps.next() else {
            return Err(self.shape("it does not start with a field name"));
        };
        let mut value = match table.get(first) {
            Some(value) => value,
            None => return Ok(None),
        };
        for step in steps {
            value = match (step, value) {
                (Step::Field(name), Value::Table(table)) => match table.get(name) {
                    Some(value) => value,
                    None => return Ok(None),
                },
                (Step::Index(index), Value::Array(items)) => match items.get(*index) {
                    Some(value) => value,
                    None => return Err(self.out_of_range(*index, items.len())),
                },
                (Step::Field(_), _) => {
                    return Err(self.shape(format!("{} is not a table", self.before(step))));
                }
                (Step::Index(_), _) => {
                    return Err(self.shape(format!("{} is not a list", self.before(step))));
                }
            };
        }
        Ok(Some(value))
    }

    /// Puts `value` at the key, creating the tables on the way.
    fn store(&self, table: &mut Table, value: Value) -> Result<(), ConfigKeyError> {
        let Some((last, parents)) = self.steps.split_last() else {
            return Err(self.shape("the key is empty"));
        };
        let mut slot = Slot::Table(table);
        for step in parents {
            slot = slot.descend(step, self)?;
        }
        slot.put(last, value, self)
    }

    /// An error about this key.
    fn shape(&self, problem: impl Into<String>) -> ConfigKeyError {
        ConfigKeyError::Shape {
            key: self.to_string(),
            problem: problem.into(),
        }
    }

    fn out_of_range(&self, index: usize, len: usize) -> ConfigKeyError {
        self.shape(format!(
            "index {index} is out of range (the list has {len} entries)"
        ))
    }

    /// The key up to (not including) `step`, for messages.
    fn before(&self, step: &Step) -> String {
        let end = self
            .steps
            .iter()
            .position(|own| std::ptr::eq(own, step))
            .unwrap_or(self.steps.len());
        KeyPath {
            steps: self.steps[..end].to_vec(),
        }
        .to_string()
    }
}

impl std::fmt::Display for KeyPath {
    /// The spelling of validation errors: `network.interfaces[0].mode`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (position, step) in self.steps.iter().enumerate() {
            match step {
                Step::Field(name) if position == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where the next step of [`KeyPath::store`] goes.
enum Slot<'t> {
    Table(&'t mut Table),
    Array(&'t mut Vec<Value>),
}

impl<'t> Slot<'t> {
    fn descend(self, step: &Step, key: &KeyPath) -> Result<Slot<'t>, ConfigKeyError> {
        let value = match (self, step) {
            (Slot::Table(table), Step::Field(name)) => table
                .entry(name.clone())
                .or_insert_with(|| Value::Table(Table::new())),
            (Slot::Array(items), Step::Index(index)) => {
                let len = items.len();
                items
                    .get_mut(*index)
                    .ok_or_else(|| key.out_of_range(*index, len))?
            }
            (Slot::Table(_), Step::Index(_)) => return Err(key.shape("a list index on a table")),
            (Slot::Array(_), Step::Field(_)) => return Err(key.shape("a field name on a list")),
        };
        match value {
            Value::Table(table) => Ok(Slot::Table(table)),
            Value::Array(items) => Ok(Slot::Array(items)),
            _ => Err(key.shape("a value on the way is neither a table nor a list")),
        }
    }

    fn put(self, step: &Step, value: Value, key: &KeyPath) -> Result<(), ConfigKeyError> {
        match (self, step) {
            (Slot::Table(table), Step::Field(name)) => {
                table.insert(name.clone(), value);
                Ok(())
            }
            (Slot::Array(items), Step::Index(index)) => {
                let len = items.len();
                let item = items
                    .get_mut(*index)
                    .ok_or_else(|| key.out_of_range(*index, len))?;
                *item = value;
                Ok(())
            }
            (Slot::Table(_), Step::Index(_)) => Err(key.shape("a list index on a table")),
            (Slot::Array(_), Step::Field(_)) => Err(key.shape("a field name on a list")),
        }
    }
}

#[cfg(test)]
mod tests {
    use mfv_config::store::ConfigStore;

    use super::*;

    const VALID: &str = "version = 1\n\n[host]\nhostname = \"vmhost1\"\n";

    #[test]
    fn malformed_keys_are_refused() {
        for (key, why) in [
            ("host..hostname", "empty field name"),
            ("0.host", "it starts with a list index"),
            (
                "host.host name",
                "field names are letters, digits, `_` and `-`",
            ),
            ("a[0", "`[` without `]`"),
            ("a[x]", "a list index is a number"),
            ("a[0]b", "text after `]`"),
        ] {
            assert_eq!(
                KeyPath::parse(key).unwrap_err().to_string(),
                format!("bad key {key:?}: {why}")
            );
        }
        let path = KeyPath::parse("network.interfaces.0.addresses[1]").unwrap();
        assert_eq!(path.to_string(), "network.interfaces[0].addresses[1]");
        assert!(path.is_at("network.interfaces[0].addresses[1]"));
        assert!(!path.is_at("network.interfaces[0].addresses[10]"));
    }

    #[test]
    fn values_are_read_as_toml_then_as_a_string_then_as_a_list() {
        assert_eq!(
            value_readings("443", None),
            [
                Value::Integer(443),
                Value::String("443".into()),
                Value::Array(vec![Value::String("443".into())])
            ]
        );
        assert_eq!(
            value_readings("a, b", Some(&Value::Array(vec![]))),
            [
                Value::String("a, b".into()),
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
            ]
        );
        assert_eq!(
            value_readings("true", Some(&Value::String("x".into()))),
            [Value::String("true".into())]
        );
    }

    fn saved_store() -> (tempfile::TempDir, StoreVolume) {
        let dir = tempfile::tempdir().unwrap();
        let volume = StoreVolume::directory(dir.path());
        volume.store().save(VALID).unwrap();
        (dir, volume)
    }

    #[test]
    fn set_saves_a_valid_change_and_get_reads_it_back() {
        let (_dir, volume) = saved_store();
        let config = load(volume.store(), volume.dir()).unwrap().config;
        let outcome = set(
            volume.store(),
            &config,
            "network.dns.servers",
            "192.0.2.53,192.0.2.54",
        )
        .unwrap();
        let SetOutcome::Saved {
            key, generation, ..
        } = outcome
        else {
            panic!("refused: {outcome:?}");
        };
        assert_eq!((key.as_str(), generation), ("network.dns.servers", 2));
        let config = load(volume.store(), volume.dir()).unwrap().config;
        assert_eq!(
            get(&config, "network.dns.servers").unwrap().to_string(),
            "[\"192.0.2.53\", \"192.0.2.54\"]"
        );
        volume.close().unwrap();
    }

    #[test]
    fn an_invalid_value_is_refused_and_nothing_is_saved() {
        let (_dir, volume) = saved_store();
        let config = load(volume.store(), volume.dir()).unwrap().config;
        let outcome = set(volume.store(), &config, "host.hostname", "-bad-").unwrap();
        let SetOutcome::Refused { key, errors } = outcome else {
            panic!("saved: {outcome:?}");
        };
        assert_eq!(key, "host.hostname");
        assert!(
            errors
                .errors()
                .iter()
                .all(|error| error.path == "host.hostname")
        );
        assert_eq!(volume.store().generations().unwrap().len(), 1);
    }

    #[test]
    fn missing_keys_say_whether_they_are_unknown_or_unset() {
        let config = parse_config(VALID).unwrap();
        let error = get(&config, "host.hostnme").unwrap_err();
        assert!(
            matches!(&error, ConfigKeyError::UnknownKey { key, message }
                if key == "host.hostnme" && message.contains("hostname")),
            "{error:?}"
        );
        assert_eq!(
            get(&config, "network.interfaces[0]")
                .unwrap_err()
                .to_string(),
            "network.interfaces[0] is not set"
        );
    }

    #[test]
    fn an_edit_is_saved_once_it_validates_and_a_refused_one_goes_back_with_its_errors() {
        let (_dir, volume) = saved_store();
        let mut rounds = Vec::new();
        let mut editor = |text: &str, errors: Option<&ConfigErrors>| {
            rounds.push((text.to_owned(), errors.map(|errors| errors.len())));
            let next = match rounds.len() {
                1 => text.replace("vmhost1", "-bad-"),
                _ => text.replace("-bad-", "vmhost2"),
            };
            Ok(Edited::Text(next))
        };
        let outcome = edit(volume.store(), VALID, &mut editor).unwrap();
        assert_eq!(outcome, EditOutcome::Saved { generation: 2 });
        assert_eq!(rounds.len(), 2);
        assert_eq!(rounds[0], (VALID.to_owned(), None));
        assert!(rounds[1].0.contains("-bad-"), "{rounds:?}");
        assert!(rounds[1].1.is_some_and(|count| count > 0), "{rounds:?}");
        let config = load(volume.store(), volume.dir()).unwrap().config;
        assert_eq!(config.host.hostname, "vmhost2");
    }

    #[test]
    fn an_unchanged_or_abandoned_edit_saves_nothing() {
        let (_dir, volume) = saved_store();
        let mut unchanged = |text: &str, _: Option<&ConfigErrors>| Ok(Edited::Text(text.into()));
        assert_eq!(
            edit(volume.store(), VALID, &mut unchanged).unwrap(),
            EditOutcome::Unchanged
        );
        let mut abandoned = |_: &str, _: Option<&ConfigErrors>| Ok(Edited::Abandoned);
        assert_eq!(
            edit(volume.store(), VALID, &mut abandoned).unwrap(),
            EditOutcome::Abandoned
        );
        let mut failing = |_: &str, _: Option<&ConfigErrors>| Err("no editor".into());
        assert_eq!(
            edit(volume.store(), VALID, &mut failing)
                .unwrap_err()
                .to_string(),
            "the editor failed"
        );
        assert_eq!(volume.store().generations().unwrap().len(), 1);
    }

    #[test]
    fn an_empty_store_has_nothing_saved() {
        let dir = tempfile::tempdir().unwrap();
        let volume = StoreVolume::directory(dir.path());
        assert_eq!(
            load(volume.store(), volume.dir()).unwrap_err().to_string(),
            format!("no configuration saved in {}", dir.path().display())
        );
    }

    #[test]
    fn openers_of_the_volume_take_turns() {
        let run_dir = tempfile::tempdir().unwrap();
        let first = VolumeLock::take(run_dir.path(), Duration::ZERO).unwrap();
        let error = VolumeLock::take(run_dir.path(), Duration::from_millis(120)).unwrap_err();
        let lock_path = run_dir.path().join(VOLUME_LOCK_FILE);
        assert!(
            matches!(&error, ConfigKeyError::Busy { path, waited }
                if *path == lock_path && *waited >= Duration::from_millis(120)),
            "{error:?}"
        );
        assert!(error.to_string().starts_with(&format!(
            "the config volume is busy: another process of this host has held {}",
            lock_path.display()
        )));
        let waiting = std::thread::spawn({
            let run_dir = run_dir.path().to_owned();
            move || VolumeLock::take(&run_dir, Duration::from_secs(30)).map(drop)
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        waiting.join().unwrap().unwrap();
    }

    #[test]
    fn a_lock_file_that_cannot_be_made_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, "").unwrap();
        let error = VolumeLock::take(&not_a_dir, Duration::ZERO).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot lock the config volume with {}",
                not_a_dir.join(VOLUME_LOCK_FILE).display()
            )
        );
        let symlinked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", symlinked.path().join(VOLUME_LOCK_FILE)).unwrap();
        assert!(matches!(
            VolumeLock::take(symlinked.path(), Duration::ZERO),
            Err(ConfigKeyError::Lock { .. })
        ));
    }
}
