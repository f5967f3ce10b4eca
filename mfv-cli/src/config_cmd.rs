//! `mfv config`: discover, show, validate, read and change the host configuration.
//!
//! The store a command works on is a directory given with `--store DIR` (a directory store:
//! `mfv.toml` plus the last-known-good `mfv.toml.prev`) or, without it, the config volume
//! discovery finds: it is mounted read-only on a private directory in the run directory and
//! switched to read-write only while a new generation is written.
//!
//! Keys, values and what `set` saves are mfv-host's [`config`] rules: dotted field paths as in
//! the validation errors, values read as TOML, a string or a comma-separated list, the whole
//! configuration validated before anything is saved, and every error shown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mfv_config::cmdline::KernelCmdline;
use mfv_config::discovery::{Discovery, DiscoveryParams, DiscoveryReport, discover};
use mfv_config::mount::SysMounter;
use mfv_config::schema::{Config, ConfigErrors, LoadError, load_config_file};
use mfv_config::store::{ConfigStore, DirectoryStore};
use mfv_host::config::{self, ConfigKeyError, EditOutcome, Edited, SetOutcome, StoreVolume};
use mfv_host::discovery::with_usb_storage_settling;

use crate::output::Output;
use toml::Value;

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
    /// Edit the stored configuration in `$VISUAL` or `$EDITOR` (else `vi`): it is validated
    /// when the editor exits, opened again with the errors at the top while it is invalid, and
    /// saved as the new generation once valid (an emptied file abandons the edit).
    Edit {
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
    /// The discovery parameters: `mfv.config=` from the command line file, no waiting for
    /// absent devices (those of a running host are there), but, as at boot, for a USB stick
    /// that is still becoming a disk.
    fn params(&self) -> anyhow::Result<DiscoveryParams> {
        let cmdline = KernelCmdline::read_from(&self.cmdline)?;
        let options = cmdline.boot_options();
        let params = DiscoveryParams {
            sysfs_root: self.sysfs.clone(),
            dev_root: self.dev.clone(),
            run_dir: self.run_dir.clone(),
            ..DiscoveryParams::new(options.config, None::<Duration>)
        };
        Ok(with_usb_storage_settling(params, &self.sysfs))
    }

    fn discover(&self) -> anyhow::Result<DiscoveryReport> {
        Ok(discover(&self.params()?, &SysMounter))
    }
}

/// Runs one `mfv config` command. `Err` is a failure to report as `mfv: ERROR` (exit 1).
pub fn run(command: ConfigCommand) -> anyhow::Result<Output> {
    match command {
        ConfigCommand::Discover { json, discovery } => {
            let report = discovery.discover()?;
            Output::data(&report, json, |report| format!("{report}\n"))
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
        } => {
            // On a running host the daemon saves: it holds the volume the boot used.
            if store.is_none() {
                if let Ok(client) = mfv_api::Client::connect(mfv_api::DEFAULT_SOCKET_PATH) {
                    return set_through_daemon(client, &key, &value);
                }
            }
            with_store(store.as_deref(), &discovery, |store| {
                set(store, &key, &value)
            })
        }
        ConfigCommand::Edit { store, discovery } => with_store(store.as_deref(), &discovery, edit),
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
            Ok(Output::ok(config.to_toml()).with_warnings(warnings))
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
    let volume = match dir {
        Some(dir) => StoreVolume::directory(dir),
        None => match StoreVolume::discovered(&discovery.params()?) {
            Err(ConfigKeyError::NoVolume { report }) => {
                bail!("no config volume found (give --store DIR, or see why below):\n{report}")
            }
            opened => opened?,
        },
    };
    let result = action(volume.store());
    let closed = volume.close();
    let output = result?;
    closed?;
    Ok(output)
}

/// The store's configuration, with the store's warnings (last-known-good used) as text.
fn load_store(store: &DirectoryStore) -> anyhow::Result<(Config, String)> {
    let stored = match config::load(store, store.dir()) {
        Err(ConfigKeyError::StoredInvalid { errors }) => {
            bail!("stored configuration is invalid:\n{}", indented(&errors))
        }
        loaded => loaded?,
    };
    let warnings = stored
        .warnings
        .iter()
        .map(|warning| format!("mfv: warning: {warning}\n"))
        .collect();
    Ok((stored.config, warnings))
}

fn get(store: &DirectoryStore, key: &str) -> anyhow::Result<Output> {
    let (config, warnings) = load_store(store)?;
    let stdout = match config::get(&config, key)? {
        Value::String(text) => format!("{text}\n"),
        Value::Table(table) => toml::to_string(&table).context("the value as TOML")?,
        other => format!("{other}\n"),
    };
    Ok(Output::ok(stdout).with_warnings(warnings))
}

fn set(store: &DirectoryStore, key: &str, value: &str) -> anyhow::Result<Output> {
    let (config, warnings) = load_store(store)?;
    match config::set(store, &config, key, value)? {
        SetOutcome::Saved {
            key,
            value,
            generation,
        } => Ok(Output::ok(format!(
            "{key} = {}\nsaved as generation {generation}\n",
            value.map_or_else(|| "(unset)".to_owned(), |value| value.to_string())
        ))
        .with_warnings(warnings)),
        SetOutcome::Refused { key, errors } => Ok(refused(&key, &errors, warnings)),
    }
}

/// `mfv config set` through the host daemon: read, change and validate here, save there,
/// refused if someone saved in between.
fn set_through_daemon(
    mut client: mfv_api::Client,
    key: &str,
    value: &str,
) -> anyhow::Result<Output> {
    let document = client.config_get()?;
    let config = mfv_config::schema::parse_config(&document.text).map_err(|errors| {
        anyhow::anyhow!(
            "the stored configuration is invalid:\n{}",
            indented(&errors)
        )
    })?;
    match config::plan_set(&config, key, value)? {
        config::PlannedSet::Valid { key, value, text } => {
            let generation = client.config_save(&text, document.generation)?;
            Ok(Output::ok(format!(
                "{key} = {}\nsaved as generation {generation} (through the host daemon)\n",
                value.map_or_else(|| "(unset)".to_owned(), |value| value.to_string())
            )))
        }
        config::PlannedSet::Refused { key, errors } => Ok(refused(&key, &errors, String::new())),
    }
}

/// The output of a refused `mfv config set`: every error, by field and message.
fn refused(key: &str, errors: &ConfigErrors, warnings: String) -> Output {
    let mut stderr = warnings;
    let _ = writeln!(
        stderr,
        "mfv: config set {key}: refused, nothing was saved ({} error(s)):",
        errors.len()
    );
    for error in errors.errors() {
        // Positions would point into generated text: only the field and the message.
        let _ = writeln!(stderr, "  {}: {}", error.path, error.message);
    }
    Output::failed(stderr)
}

/// The first line of each note `mfv config edit` puts above the text; removed again before
/// the text is validated.
const EDIT_NOTE: &str = "# mfv: ";

fn edit(store: &DirectoryStore) -> anyhow::Result<Output> {
    let stored = match config::load(store, store.dir()) {
        Err(ConfigKeyError::StoredInvalid { .. }) => {
            let loaded = store.load()?;
            loaded.map(|loaded| loaded.text).unwrap_or_default()
        }
        loaded => loaded?.text,
    };
    let outcome = config::edit(store, &stored, &mut |text, errors| {
        run_editor(text, errors).map_err(Into::into)
    })?;
    Ok(match outcome {
        EditOutcome::Saved { generation } => {
            Output::ok(format!("saved as generation {generation}\n"))
        }
        EditOutcome::Unchanged => Output::ok("no change: nothing was saved\n"),
        EditOutcome::Abandoned => Output::failed("mfv: config edit abandoned: nothing was saved\n"),
    })
}

/// Opens `text` in the operator's editor, with the errors of the last round as notes above
/// it, and reads it back without the notes; an emptied file abandons.
fn run_editor(text: &str, errors: Option<&ConfigErrors>) -> anyhow::Result<Edited> {
    let dir = tempfile::tempdir().context("cannot create a directory for the edited file")?;
    let file = dir.path().join("mfv.toml");
    let mut content = String::new();
    if let Some(errors) = errors {
        let _ = writeln!(
            content,
            "{EDIT_NOTE}the configuration is invalid ({} error(s)); fix it and save, or empty \
             the file to abandon:",
            errors.len()
        );
        for error in errors.errors() {
            let _ = writeln!(content, "{EDIT_NOTE}  {error}");
        }
    }
    content.push_str(text);
    std::fs::write(&file, content).with_context(|| format!("cannot write {}", file.display()))?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("${VISUAL:-${EDITOR:-vi}} \"$1\"")
        .arg("mfv-config-edit")
        .arg(&file)
        .status()
        .context("cannot start the editor")?;
    if !status.success() {
        bail!("the editor exited with {status}: nothing was saved");
    }
    let edited = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let edited: String = edited
        .split_inclusive('\n')
        .skip_while(|line| line.starts_with(EDIT_NOTE))
        .collect();
    Ok(if edited.trim().is_empty() {
        Edited::Abandoned
    } else {
        Edited::Text(edited)
    })
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::output::Status;
    use mfv_config::schema::parse_config;
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
            assert_eq!(output.status, Status::Success, "{output:?}");
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
        assert_eq!(output.status, Status::Failure);
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
        assert_eq!(output.status, Status::Failure);
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
        assert_eq!(output.status, Status::Failure);
        assert_eq!(output.stderr.lines().count(), 2, "{}", output.stderr);
        assert!(output.stderr.starts_with(&format!("{file}:3:12: ")));
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
        let output = fixture.run(&["show", "--file", &file]).unwrap();
        assert_eq!(output.status, Status::Failure);
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
    fn a_fifo_or_link_to_dev_zero_beside_the_config_stops_neither_get_nor_set() {
        let fifo = |path: &Path| nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRUSR).unwrap();
        let link = |path: &Path| std::os::unix::fs::symlink("/dev/zero", path).unwrap();
        for (plant, kind) in [
            (&fifo as &dyn Fn(&Path), "a FIFO"),
            (&link, "a symbolic link"),
        ] {
            let fixture = Fixture::new().saved();
            let store = fixture.path("store");
            plant(&Path::new(&store).join("mfv.toml.prev"));
            assert_eq!(
                fixture.ok(&["get", "--store", &store, "host.hostname"]),
                "vmhost1\n"
            );
            assert_eq!(
                fixture.ok(&["set", "--store", &store, "host.hostname", "vmhost2"]),
                "host.hostname = \"vmhost2\"\nsaved as generation 2\n"
            );
            // A hostile current file: the last-known-good one is used, with a warning naming
            // the file and what it is.
            let current = Path::new(&store).join("mfv.toml");
            std::fs::remove_file(&current).unwrap();
            plant(&current);
            let output = fixture
                .run(&["get", "--store", &store, "host.hostname"])
                .unwrap();
            assert_eq!(output.stdout, "vmhost1\n");
            assert_eq!(
                output.stderr,
                format!(
                    "mfv: warning: {store}/mfv.toml: {kind}; the store reads only regular \
                     files; using last-known-good {store}/mfv.toml.prev\n"
                )
            );
        }
    }

    #[test]
    fn set_refuses_an_invalid_value_with_every_error_and_saves_nothing() {
        let fixture = Fixture::new().saved();
        let store = fixture.path("store");
        let current = std::fs::read_to_string(Path::new(&store).join("mfv.toml")).unwrap();
        let output = fixture
            .run(&["set", "--store", &store, "host.hostname", "-bad-"])
            .unwrap();
        assert_eq!(output.status, Status::Failure);
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
        assert_eq!(output.status, Status::Failure);
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
        assert_eq!(output.status, Status::Failure);
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
        assert_eq!(output.status, Status::Failure);
        assert!(output.stderr.starts_with("mfv: no configuration found:\n"));
        std::fs::remove_file(fixture.path("cmdline")).unwrap();
        let error = fixture.error(&["discover"]);
        assert!(error.contains(&fixture.path("cmdline")), "{error}");
    }
}
