//! `mfv config`: discover, show, validate, read and change the host configuration.
//!
//! The store a command works on is a directory given with `--store DIR` (a directory store:
//! `mfv.toml` plus the last-known-good `mfv.toml.prev`) or, without it, the config volume
//! discovery finds: it is mounted read-only on a private directory in the run directory and
//! switched to read-write only while a new generation is written.
//!
//! Keys are dotted field paths as in the validation errors: `host.hostname`,
//! `network.dns.servers`, `network.interfaces[0].mode` (`network.interfaces.0.mode` works
//! too). `set` takes the value as TOML when it is one (`443`, `true`, `["a", "b"]`), else as a
//! string, and for a list also as comma-separated strings (`192.0.2.53,192.0.2.54`); the
//! first reading the schema accepts for the key wins. The whole configuration is validated
//! before anything is saved, and every error is shown. A saved configuration is written in the
//! canonical form of [`Config::to_toml`]: comments of a hand-written file are not kept.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use mfv_config::cmdline::KernelCmdline;
use mfv_config::discovery::{ConfigSource, Discovery, DiscoveryParams, DiscoveryReport, discover};
use mfv_config::mount::{Journal, ReadOnlyMount, SysMounter};
use mfv_config::schema::{Config, ConfigErrors, LoadError, load_config_file, parse_config};
use mfv_config::store::{ConfigStore, DirectoryStore, PlainDirectory, RemountVolume};
use toml::{Table, Value};

/// `mfv config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Look for the configuration like mfv-init does at boot and show every candidate tried
    /// and why it was taken or skipped.
    Discover {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Print a configuration as TOML: the one discovery finds, or the one in a file or store.
    Show {
        /// Read this file instead of discovering the configuration.
        #[arg(long, conflicts_with = "store")]
        file: Option<PathBuf>,
        /// Read this store directory instead of discovering the configuration.
        #[arg(long)]
        store: Option<PathBuf>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Check a configuration file; print every error as `FILE:LINE:COL: FIELD: message` and
    /// exit with status 1 if there is any.
    Validate {
        /// The file to check.
        file: PathBuf,
    },
    /// Print one value of the stored configuration.
    Get {
        /// Dotted field path, e.g. `host.hostname` or `network.dns.servers`.
        key: String,
        /// The store directory [default: the discovered config volume].
        #[arg(long)]
        store: Option<PathBuf>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Change one value of the stored configuration; the whole configuration is validated
    /// first and nothing is saved when it is invalid.
    Set {
        /// Dotted field path, e.g. `host.hostname` or `network.dns.servers`.
        key: String,
        /// The new value (may start with `-`).
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// The store directory [default: the discovered config volume].
        #[arg(long)]
        store: Option<PathBuf>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Validate a configuration file and save it atomically as the new current generation.
    Save {
        /// The store directory [default: the discovered config volume].
        #[arg(long)]
        store: Option<PathBuf>,
        /// The configuration file to save.
        file: PathBuf,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
}

/// Where discovery looks (system paths, parameters for tests).
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// The kernel command line whose `mfv.config=` chooses the candidates.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// The sysfs root.
    #[arg(long, default_value = "/sys")]
    sysfs: PathBuf,
    /// The device node directory.
    #[arg(long, default_value = "/dev")]
    dev: PathBuf,
    /// Where candidate volumes are mounted, each on a private directory.
    #[arg(long, default_value = "/run/mfv")]
    run_dir: PathBuf,
}

impl DiscoveryArgs {
    /// The discovery parameters: `mfv.config=` from the command line file, no waiting (the
    /// devices of a running host are there).
    fn params(&self) -> anyhow::Result<DiscoveryParams> {
        let cmdline = KernelCmdline::read_from(&self.cmdline)?;
        let options = cmdline.boot_options();
        Ok(DiscoveryParams {
            sysfs_root: self.sysfs.clone(),
            dev_root: self.dev.clone(),
            run_dir: self.run_dir.clone(),
            ..DiscoveryParams::new(options.config, None::<Duration>)
        })
    }

    fn discover(&self) -> anyhow::Result<DiscoveryReport> {
        Ok(discover(&self.params()?, &SysMounter))
    }
}

/// What a command printed and whether it succeeded (exit status 0 or 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// False: exit status 1.
    pub success: bool,
}

impl Output {
    fn ok(stdout: String) -> Output {
        Output {
            stdout,
            stderr: String::new(),
            success: true,
        }
    }

    fn failed(stderr: String) -> Output {
        Output {
            stdout: String::new(),
            stderr,
            success: false,
        }
    }
}

/// Runs one `mfv config` command. `Err` is a failure to report as `mfv: ERROR` (exit 1).
pub fn run(command: ConfigCommand) -> anyhow::Result<Output> {
    match command {
        ConfigCommand::Discover { json, discovery } => {
            let report = discovery.discover()?;
            if json {
                let mut text =
                    serde_json::to_string_pretty(&report).context("the report as JSON")?;
                text.push('\n');
                Ok(Output::ok(text))
            } else {
                Ok(Output::ok(format!("{report}\n")))
            }
        }
        ConfigCommand::Show {
            file,
            store,
            discovery,
        } => show(file.as_deref(), store.as_deref(), &discovery),
        ConfigCommand::Validate { file } => Ok(validate(&file)),
        ConfigCommand::Get {
            key,
            store,
            discovery,
        } => with_store(store.as_deref(), &discovery, |store| get(store, &key)),
        ConfigCommand::Set {
            key,
            value,
            store,
            discovery,
        } => with_store(store.as_deref(), &discovery, |store| {
            set(store, &key, &value)
        }),
        ConfigCommand::Save {
            store,
            file,
            discovery,
        } => with_store(store.as_deref(), &discovery, |store| save(store, &file)),
    }
}

fn show(
    file: Option<&Path>,
    store: Option<&Path>,
    discovery: &DiscoveryArgs,
) -> anyhow::Result<Output> {
    if let Some(file) = file {
        return Ok(match load_config_file(file) {
            Ok((config, _)) => Output::ok(config.to_toml()),
            Err(error) => Output::failed(load_error_lines(file, &error)),
        });
    }
    if store.is_some() {
        return with_store(store, discovery, |store| {
            let (config, warnings) = load_store(store)?;
            Ok(Output {
                stdout: config.to_toml(),
                stderr: warnings,
                success: true,
            })
        });
    }
    let report = discovery.discover()?;
    match report.outcome {
        Discovery::Found { config, .. } => Ok(Output::ok(config.to_toml())),
        Discovery::Invalid { source, errors } => Ok(Output::failed(format!(
            "mfv: the configuration on {source} is invalid:\n{}",
            indented(&errors)
        ))),
        Discovery::NotFound => Ok(Output::failed(format!(
            "mfv: no configuration found:\n{report}\n"
        ))),
    }
}

/// `FILE:LINE:COL: FIELD: message` lines, or the read error.
fn validate(file: &Path) -> Output {
    match load_config_file(file) {
        Ok(_) => Output::ok(format!("{}: valid\n", file.display())),
        Err(error) => Output::failed(load_error_lines(file, &error)),
    }
}

/// The errors of a file each prefixed by its name, or the read error, one per line.
fn load_error_lines(file: &Path, error: &LoadError) -> String {
    match error {
        LoadError::Invalid { errors, .. } => errors
            .errors()
            .iter()
            .map(|error| format!("{}:{error}\n", file.display()))
            .collect(),
        LoadError::Read { .. } => format!("mfv: {}\n", mfv_linux::error_chain(error)),
    }
}

/// Each error on its own line, indented by two spaces.
fn indented(errors: &ConfigErrors) -> String {
    errors
        .errors()
        .iter()
        .map(|error| format!("  {error}\n"))
        .collect()
}

/// Runs `action` on the store directory `dir`, or on the config volume discovery finds
/// (mounted read-only for the duration, read-write only while saving; its journal loaded so
/// the save is journaled).
fn with_store(
    dir: Option<&Path>,
    discovery: &DiscoveryArgs,
    action: impl FnOnce(&DirectoryStore) -> anyhow::Result<Output>,
) -> anyhow::Result<Output> {
    if let Some(dir) = dir {
        return action(&DirectoryStore::new(dir, PlainDirectory));
    }
    let report = discovery.discover()?;
    let source: &ConfigSource = match &report.outcome {
        Discovery::Found { source, .. } | Discovery::Invalid { source, .. } => source,
        Discovery::NotFound => {
            bail!("no config volume found (give --store DIR, or see why below):\n{report}")
        }
    };
    let mount = ReadOnlyMount::new(
        &SysMounter,
        &source.device,
        &source.fs_type,
        Journal::Load,
        &discovery.run_dir,
    )
    .with_context(|| format!("cannot open the config volume {source}"))?;
    let store = DirectoryStore::new(mount.path(), RemountVolume::new(mount.path()));
    let result = action(&store);
    let unmounted = mount.unmount();
    let output = result?;
    unmounted.with_context(|| format!("config volume {source}"))?;
    Ok(output)
}

/// The store's configuration, with the store's warnings (last-known-good used) as text.
fn load_store(store: &DirectoryStore) -> anyhow::Result<(Config, String)> {
    let loaded = store
        .load()?
        .with_context(|| format!("no configuration saved in {}", store.dir().display()))?;
    let config = parse_config(&loaded.text)
        .map_err(|errors| anyhow!("stored configuration is invalid:\n{}", indented(&errors)))?;
    let warnings = loaded
        .warnings
        .iter()
        .map(|warning| format!("mfv: warning: {warning}\n"))
        .collect();
    Ok((config, warnings))
}

fn get(store: &DirectoryStore, key: &str) -> anyhow::Result<Output> {
    let path = KeyPath::parse(key)?;
    let (config, warnings) = load_store(store)?;
    let table = config_table(&config)?;
    let value = match path.lookup(&table)? {
        Some(value) => value,
        None => bail!("{}", missing_key_message(&table, &path)),
    };
    let stdout = match value {
        Value::String(text) => format!("{text}\n"),
        Value::Table(table) => toml::to_string(table).context("the value as TOML")?,
        other => format!("{other}\n"),
    };
    Ok(Output {
        stdout,
        stderr: warnings,
        success: true,
    })
}

/// Why a key has no value: it is not a field of the schema (with the schema's "did you mean"
/// hint), or it is a field that is not set.
fn missing_key_message(table: &Table, path: &KeyPath) -> String {
    let mut probe = table.clone();
    if path.store(&mut probe, Value::String(String::new())).is_ok()
        && let Err(errors) = parse_config(&table_text(&probe))
        && let Some(unknown) = errors
            .errors()
            .iter()
            .find(|error| error.message.starts_with("unknown field") && path.is_at(&error.path))
    {
        return format!("unknown key {}: {}", path, unknown.message);
    }
    format!("{path} is not set")
}

fn set(store: &DirectoryStore, key: &str, value: &str) -> anyhow::Result<Output> {
    let path = KeyPath::parse(key)?;
    let (config, warnings) = load_store(store)?;
    let table = config_table(&config)?;
    let current = path.lookup(&table)?.cloned();
    let mut first_refusal = None;
    for candidate in value_readings(value, current.as_ref()) {
        let mut changed = table.clone();
        path.store(&mut changed, candidate)?;
        let text = table_text(&changed);
        match parse_config(&text) {
            Ok(config) => {
                let text = config.to_toml();
                let saved = store.save(&text)?;
                return Ok(Output {
                    stdout: format!(
                        "{path} = {}\nsaved as generation {}\n",
                        path.lookup(&config_table(&config)?)?
                            .map_or_else(|| "(unset)".to_owned(), ToString::to_string),
                        saved.generation
                    ),
                    stderr: warnings,
                    success: true,
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
    let errors = first_refusal.context("no reading of the value was tried")?;
    let mut stderr = warnings;
    let _ = writeln!(
        stderr,
        "mfv: config set {path}: refused, nothing was saved ({} error(s)):",
        errors.len()
    );
    for error in errors.errors() {
        // Positions would point into generated text: only the field and the message.
        let _ = writeln!(stderr, "  {}: {}", error.path, error.message);
    }
    Ok(Output {
        stdout: String::new(),
        stderr,
        success: false,
    })
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

fn save(store: &DirectoryStore, file: &Path) -> anyhow::Result<Output> {
    let text = match load_config_file(file) {
        Ok(_) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?,
        Err(error) => return Ok(Output::failed(load_error_lines(file, &error))),
    };
    let saved = store.save(&text)?;
    Ok(Output::ok(format!(
        "{}: saved as generation {} in {}\n",
        file.display(),
        saved.generation,
        saved.location
    )))
}

/// A configuration as a TOML table.
fn config_table(config: &Config) -> anyhow::Result<Table> {
    config
        .to_toml()
        .parse::<Table>()
        .context("the configuration as a TOML table")
}

fn table_text(table: &Table) -> String {
    // A table of TOML values always serializes; an error would show in validation.
    toml::to_string(table).unwrap_or_default()
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
    fn parse(key: &str) -> anyhow::Result<KeyPath> {
        let bad = |why: &str| anyhow!("bad key {key:?}: {why}");
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
    fn lookup<'t>(&self, table: &'t Table) -> anyhow::Result<Option<&'t Value>> {
        let mut steps = self.steps.iter();
        let Some(Step::Field(first)) = steps.next() else {
            bail!("bad key {self}");
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
                    None => bail!(
                        "{self}: index {index} is out of range (the list has {} entries)",
                        items.len()
                    ),
                },
                (Step::Field(_), _) => bail!("{self}: {} is not a table", self.before(step)),
                (Step::Index(_), _) => bail!("{self}: {} is not a list", self.before(step)),
            };
        }
        Ok(Some(value))
    }

    /// Puts `value` at the key, creating the tables on the way.
    fn store(&self, table: &mut Table, value: Value) -> anyhow::Result<()> {
        let Some((last, parents)) = self.steps.split_last() else {
            bail!("empty key");
        };
        let mut slot = Slot::Table(table);
        for step in parents {
            slot = slot.descend(step, self)?;
        }
        slot.put(last, value, self)
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
    fn descend(self, step: &Step, key: &KeyPath) -> anyhow::Result<Slot<'t>> {
        let value = match (self, step) {
            (Slot::Table(table), Step::Field(name)) => table
                .entry(name.clone())
                .or_insert_with(|| Value::Table(Table::new())),
            (Slot::Array(items), Step::Index(index)) => {
                let len = items.len();
                items.get_mut(*index).with_context(|| {
                    format!("{key}: index {index} is out of range (the list has {len} entries)")
                })?
            }
            (Slot::Table(_), Step::Index(_)) => bail!("{key}: a list index on a table"),
            (Slot::Array(_), Step::Field(_)) => bail!("{key}: a field name on a list"),
        };
        match value {
            Value::Table(table) => Ok(Slot::Table(table)),
            Value::Array(items) => Ok(Slot::Array(items)),
            _ => bail!("{key}: a value on the way is neither a table nor a list"),
        }
    }

    fn put(self, step: &Step, value: Value, key: &KeyPath) -> anyhow::Result<()> {
        match (self, step) {
            (Slot::Table(table), Step::Field(name)) => {
                table.insert(name.clone(), value);
                Ok(())
            }
            (Slot::Array(items), Step::Index(index)) => {
                let len = items.len();
                let item = items.get_mut(*index).with_context(|| {
                    format!("{key}: index {index} is out of range (the list has {len} entries)")
                })?;
                *item = value;
                Ok(())
            }
            (Slot::Table(_), Step::Index(_)) => bail!("{key}: a list index on a table"),
            (Slot::Array(_), Step::Field(_)) => bail!("{key}: a field name on a list"),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tempfile::TempDir;

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: ConfigCommand,
    }

    const VALID: &str = "version = 1\n\n[host]\nhostname = \"vmhost1\"\n";

    /// A temp dir with `valid.toml`, `invalid.toml` (two errors), an empty store directory
    /// `store` and a fixture system (`cmdline`, empty `sys` and `dev`, `run`).
    struct Fixture {
        dir: TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("valid.toml"), VALID).unwrap();
            std::fs::write(
                dir.path().join("invalid.toml"),
                "version = 1\n[host]\nhostname = \"-bad-\"\n[netwrk]\n",
            )
            .unwrap();
            for sub in ["store", "sys/class/block", "dev"] {
                std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            }
            std::fs::write(dir.path().join("cmdline"), "console=ttyS0\n").unwrap();
            Fixture { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        /// Runs `mfv config ARGS`, with the fixture's system paths after the arguments of
        /// commands that discover.
        fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
            let mut argv = vec!["mfv".to_string()];
            argv.extend(args.iter().map(|arg| arg.to_string()));
            if !matches!(args[0], "validate") {
                for (flag, name) in [
                    ("--cmdline", "cmdline"),
                    ("--sysfs", "sys"),
                    ("--dev", "dev"),
                    ("--run-dir", "run"),
                ] {
                    argv.push(flag.to_string());
                    argv.push(self.path(name));
                }
            }
            run(TestCli::try_parse_from(argv).unwrap().command)
        }

        fn ok(&self, args: &[&str]) -> String {
            let output = self.run(args).unwrap();
            assert!(output.success, "{output:?}");
            output.stdout
        }

        fn error(&self, args: &[&str]) -> String {
            format!("{:#}", self.run(args).unwrap_err())
        }

        /// A store holding the valid configuration.
        fn saved(self) -> Fixture {
            let store = self.path("store");
            let file = self.path("valid.toml");
            self.ok(&["save", "--store", &store, &file]);
            self
        }
    }

    #[test]
    fn validate_accepts_a_valid_file() {
        let fixture = Fixture::new();
        let file = fixture.path("valid.toml");
        assert_eq!(fixture.ok(&["validate", &file]), format!("{file}: valid\n"));
    }

    #[test]
    fn validate_prints_every_error_with_file_line_and_column() {
        let fixture = Fixture::new();
        let file = fixture.path("invalid.toml");
        let output = fixture.run(&["validate", &file]).unwrap();
        assert!(!output.success);
        assert!(output.stdout.is_empty());
        let lines: Vec<&str> = output.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!("{file}:3:12: host.hostname: ")),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with(&format!("{file}:4:2: netwrk: unknown field")),
            "{lines:?}"
        );
    }

    #[test]
    fn validate_names_a_missing_file() {
        let fixture = Fixture::new();
        let file = fixture.path("absent.toml");
        let output = fixture.run(&["validate", &file]).unwrap();
        assert!(!output.success);
        assert_eq!(
            output.stderr,
            format!("mfv: cannot read {file}: No such file or directory (os error 2)\n")
        );
    }

    #[test]
    fn save_then_get_and_show() {
        let fixture = Fixture::new();
        let (store, file) = (fixture.path("store"), fixture.path("valid.toml"));
        assert_eq!(
            fixture.ok(&["save", "--store", &store, &file]),
            format!("{file}: saved as generation 1 in {store}/mfv.toml\n")
        );
        assert_eq!(
            fixture.ok(&["get", "--store", &store, "host.hostname"]),
            "vmhost1\n"
        );
        assert_eq!(fixture.ok(&["get", "--store", &store, "web.port"]), "443\n");
        assert_eq!(
            fixture.ok(&["get", "--store", &store, "host"]),
            "hostname = \"vmhost1\"\ntime_zone = \"UTC\"\n"
        );
        let config = parse_config(VALID).unwrap();
        assert_eq!(fixture.ok(&["show", "--store", &store]), config.to_toml());
        assert_eq!(fixture.ok(&["show", "--file", &file]), config.to_toml());
    }

    #[test]
    fn save_refuses_an_invalid_file_and_writes_nothing() {
        let fixture = Fixture::new();
        let (store, file) = (fixture.path("store"), fixture.path("invalid.toml"));
        let output = fixture.run(&["save", "--store", &store, &file]).unwrap();
        assert!(!output.success);
        assert_eq!(output.stderr.lines().count(), 2, "{}", output.stderr);
        assert!(output.stderr.starts_with(&format!("{file}:3:12: ")));
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
        let output = fixture.run(&["show", "--file", &file]).unwrap();
        assert!(!output.success);
        assert_eq!(output.stderr.lines().count(), 2, "{}", output.stderr);
    }

    #[test]
    fn a_missing_store_is_an_error_naming_it() {
        let fixture = Fixture::new();
        let (store, file) = (fixture.path("nowhere"), fixture.path("valid.toml"));
        let expected = format!("config store directory {store} does not exist");
        assert_eq!(fixture.error(&["save", "--store", &store, &file]), expected);
        assert_eq!(
            fixture.error(&["get", "--store", &store, "host.hostname"]),
            expected
        );
        assert_eq!(
            fixture.error(&["set", "--store", &store, "host.hostname", "a"]),
            expected
        );
    }

    #[test]
    fn an_empty_store_has_nothing_to_get_or_set() {
        let fixture = Fixture::new();
        let store = fixture.path("store");
        let expected = format!("no configuration saved in {store}");
        assert_eq!(
            fixture.error(&["get", "--store", &store, "host.hostname"]),
            expected
        );
        assert_eq!(
            fixture.error(&["set", "--store", &store, "host.hostname", "a"]),
            expected
        );
    }

    #[test]
    fn set_validates_and_saves_a_new_generation() {
        let fixture = Fixture::new().saved();
        let store = fixture.path("store");
        assert_eq!(
            fixture.ok(&["set", "--store", &store, "host.hostname", "vmhost2"]),
            "host.hostname = \"vmhost2\"\nsaved as generation 2\n"
        );
        assert_eq!(
            fixture.ok(&["get", "--store", &store, "host.hostname"]),
            "vmhost2\n"
        );
        assert_eq!(
            fixture.ok(&["set", "--store", &store, "web.port", "8443"]),
            "web.port = 8443\nsaved as generation 3\n"
        );
        assert_eq!(
            fixture.ok(&[
                "set",
                "--store",
                &store,
                "network.dns.servers",
                "192.0.2.53, 192.0.2.54"
            ]),
            "network.dns.servers = [\"192.0.2.53\", \"192.0.2.54\"]\nsaved as generation 4\n"
        );
        assert_eq!(
            fixture.ok(&[
                "set",
                "--store",
                &store,
                "network.dns.search",
                "[\"example.org\"]"
            ]),
            "network.dns.search = [\"example.org\"]\nsaved as generation 5\n"
        );
        assert_eq!(
            fixture.ok(&["get", "--store", &store, "network.dns.servers[1]"]),
            "192.0.2.54\n"
        );
        // The previous generation is kept as last-known-good.
        let previous = std::fs::read_to_string(Path::new(&store).join("mfv.toml.prev")).unwrap();
        assert!(previous.contains("search") || previous.contains("192.0.2.54"));
    }

    #[test]
    fn set_refuses_an_invalid_value_with_every_error_and_saves_nothing() {
        let fixture = Fixture::new().saved();
        let store = fixture.path("store");
        let current = std::fs::read_to_string(Path::new(&store).join("mfv.toml")).unwrap();
        let output = fixture
            .run(&["set", "--store", &store, "host.hostname", "-bad-"])
            .unwrap();
        assert!(!output.success);
        let lines: Vec<&str> = output.stderr.lines().collect();
        assert_eq!(
            lines[0],
            "mfv: config set host.hostname: refused, nothing was saved (1 error(s)):"
        );
        assert!(lines[1].starts_with("  host.hostname: "), "{lines:?}");
        let output = fixture
            .run(&[
                "set",
                "--store",
                &store,
                "network.dns.servers",
                "one,two,192.0.2.1,192.0.2.2",
            ])
            .unwrap();
        assert!(!output.success);
        let lines: Vec<&str> = output.stderr.lines().collect();
        assert!(lines.len() >= 3, "{lines:?}");
        assert!(
            lines[1..]
                .iter()
                .all(|line| line.starts_with("  network.dns.servers")),
            "{lines:?}"
        );
        assert_eq!(
            std::fs::read_to_string(Path::new(&store).join("mfv.toml")).unwrap(),
            current
        );
        assert!(!Path::new(&store).join("mfv.toml.prev").exists());
    }

    #[test]
    fn unknown_and_unset_keys() {
        let fixture = Fixture::new().saved();
        let store = fixture.path("store");
        let output = fixture
            .run(&["set", "--store", &store, "host.hostnme", "x"])
            .unwrap();
        assert!(!output.success);
        assert!(
            output
                .stderr
                .contains("  host.hostnme: unknown field \"hostnme\"; did you mean \"hostname\"?"),
            "{}",
            output.stderr
        );
        assert_eq!(
            fixture.error(&["get", "--store", &store, "host.hostnme"]),
            "unknown key host.hostnme: unknown field \"hostnme\"; did you mean \"hostname\"?"
        );
        assert_eq!(
            fixture.error(&["get", "--store", &store, "host.ntp_servers"]),
            "host.ntp_servers is not set"
        );
        assert_eq!(
            fixture.error(&["get", "--store", &store, "host.hostname.x"]),
            "host.hostname.x: host.hostname is not a table"
        );
        assert_eq!(
            fixture.error(&["get", "--store", &store, "network.interfaces[0]"]),
            "network.interfaces[0] is not set"
        );
    }

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
    fn index_out_of_range_on_set() {
        let fixture = Fixture::new().saved();
        let store = fixture.path("store");
        fixture.ok(&[
            "set",
            "--store",
            &store,
            "network.dns.servers",
            "192.0.2.53",
        ]);
        assert_eq!(
            fixture.error(&[
                "set",
                "--store",
                &store,
                "network.dns.servers[3]",
                "192.0.2.1"
            ]),
            "network.dns.servers[3]: index 3 is out of range (the list has 1 entries)"
        );
        assert_eq!(
            fixture.ok(&[
                "set",
                "--store",
                &store,
                "network.dns.servers[0]",
                "192.0.2.1"
            ]),
            "network.dns.servers[0] = \"192.0.2.1\"\nsaved as generation 3\n"
        );
    }

    #[test]
    fn discover_reports_each_candidate_in_text_and_json() {
        let fixture = Fixture::new();
        let text = fixture.ok(&["discover"]);
        assert_eq!(
            text,
            "config: no configuration found\n  /dev/sda1: absent (no such device)\n  \
             LABEL=mfv-config: absent (no volume matches)\n  /dev/fd0: absent (no such device)\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&fixture.ok(&["discover", "--json"])).unwrap();
        assert_eq!(json["outcome"]["result"], "not_found");
        assert_eq!(json["candidates"].as_array().unwrap().len(), 3);
        std::fs::write(fixture.path("cmdline"), "mfv.config=none\n").unwrap();
        assert_eq!(
            fixture.ok(&["discover"]),
            "config: discovery skipped (mfv.config=none)\n"
        );
    }

    #[test]
    fn without_a_store_the_discovered_volume_is_needed() {
        let fixture = Fixture::new();
        let error = fixture.error(&["get", "host.hostname"]);
        assert!(
            error.starts_with("no config volume found (give --store DIR, or see why below):\n"),
            "{error}"
        );
        let output = fixture.run(&["show"]).unwrap();
        assert!(!output.success);
        assert!(output.stderr.starts_with("mfv: no configuration found:\n"));
        std::fs::remove_file(fixture.path("cmdline")).unwrap();
        let error = fixture.error(&["discover"]);
        assert!(error.contains(&fixture.path("cmdline")), "{error}");
    }
}
