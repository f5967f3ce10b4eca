//! Crash safety: a child process saves configurations in a loop and is SIGKILLed at random
//! moments; after every kill the store must read back as the generation last saved or the
//! one being saved, intact, never neither.
//!
//! The child is this test binary run again with `MFV_STORE_CRASH_CHILD=<kind>:<path>`; the
//! test `crash_child` is then the writer loop. It prints `ready <generation>` once it has read
//! the store and `saved <generation>` after each save returned. `MFV_STORE_CRASH_SEED` replays
//! a run's random delays.

mod store_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mfv_config::store::{ConfigStore, DirectoryStore, Origin, PlainDirectory, SqliteStore};
use store_support::{config, file_names};

const CHILD_VARIABLE: &str = "MFV_STORE_CRASH_CHILD";
const SEED_VARIABLE: &str = "MFV_STORE_CRASH_SEED";
const KILLS: usize = 200;
const MAX_DELAY_MICROS: u64 = 20_000;
const HOSTNAMES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// The configuration saved as `generation`: the child cycles through four, of different sizes.
fn config_for(generation: u64) -> String {
    let index = (generation % HOSTNAMES.len() as u64) as usize;
    config(HOSTNAMES[index], index * 3000)
}

fn open_store(kind: &str, path: &Path) -> Result<Box<dyn ConfigStore>> {
    Ok(match kind {
        "directory" => Box::new(DirectoryStore::new(path, PlainDirectory)),
        "sqlite" => Box::new(SqliteStore::new(path, PlainDirectory).with_retained_generations(3)),
        other => bail!("unknown store kind {other}"),
    })
}

/// The writer loop, when this binary runs as the child; otherwise nothing.
#[test]
fn crash_child() -> Result<()> {
    let Ok(spec) = std::env::var(CHILD_VARIABLE) else {
        return Ok(());
    };
    let (kind, path) = spec
        .split_once(':')
        .context("MFV_STORE_CRASH_CHILD is KIND:PATH")?;
    let store = open_store(kind, Path::new(path))?;
    let mut generation = store
        .load()?
        .and_then(|loaded| loaded.generation)
        .unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    // On a line of its own: libtest has printed `test crash_child ... ` without a newline.
    writeln!(stdout, "\nready {generation}")?;
    stdout.flush()?;
    // Bounded, so a parent that fails to kill it cannot leave it running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        generation += 1;
        let saved = store.save(&config_for(generation))?;
        ensure!(
            saved.generation == generation,
            "saved {saved:?}, expected {generation}"
        );
        writeln!(stdout, "saved {generation}")?;
        stdout.flush()?;
    }
    bail!("the crash-safety child was not killed within 30 s")
}

/// Reads the child's output up to its `ready` line (libtest prints a header first) and
/// returns the generation it found in the store.
fn wait_until_ready(child: &mut Child, lines: &mut impl BufRead) -> Result<u64> {
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            let status = child.wait()?;
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.as_mut() {
                pipe.read_to_string(&mut stderr)?;
            }
            bail!("the child stopped before it was ready ({status}): {stderr}");
        }
        if let Some(generation) = line.trim_end().strip_prefix("ready ") {
            return Ok(generation.parse()?);
        }
    }
}

/// The last generation the child reported saved, from the rest of its output.
fn last_saved(rest: &str) -> Result<Option<u64>> {
    let mut last = None;
    for line in rest.lines() {
        if let Some(generation) = line.strip_prefix("saved ") {
            last = Some(generation.parse()?);
        }
    }
    Ok(last)
}

fn spawn_child(kind: &str, path: &Path) -> Result<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_VARIABLE, format!("{kind}:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Kills a saving child `KILLS` times and checks the store after each kill.
fn kill_repeatedly(
    kind: &str,
    path: &Path,
    leftover_check: impl Fn() -> Result<bool>,
) -> Result<()> {
    let seed = match std::env::var(SEED_VARIABLE) {
        Ok(seed) => seed.parse()?,
        Err(_) => fastrand::u64(..),
    };
    eprintln!("{kind}: seed {seed} (set {SEED_VARIABLE} to replay)");
    let mut random = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut saves = 0;
    for kill in 0..KILLS {
        let mut child = spawn_child(kind, path)?;
        let mut lines = BufReader::new(child.stdout.take().context("child stdout")?);
        let ready = wait_until_ready(&mut child, &mut lines)?;
        std::thread::sleep(Duration::from_micros(random.u64(0..=MAX_DELAY_MICROS)));
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.as_mut() {
                pipe.read_to_string(&mut stderr)?;
            }
            bail!("kill {kill}: the child exited by itself ({status}): {stderr}");
        }
        child.kill()?;
        child.wait()?;
        let mut rest = String::new();
        lines.read_to_string(&mut rest)?;

        let last = last_saved(&rest)?.unwrap_or(ready);
        saves += last - ready;
        let loaded = open_store(kind, path)?
            .load()
            .with_context(|| format!("kill {kill} (seed {seed}): loading after the kill"))?
            .with_context(|| format!("kill {kill} (seed {seed}): the store is empty"))?;
        let generation = loaded.generation.context("no generation number")?;
        ensure!(
            generation == last || generation == last + 1,
            "kill {kill} (seed {seed}): read generation {generation}, last saved {last}"
        );
        ensure!(
            loaded.text == config_for(generation),
            "kill {kill} (seed {seed}): generation {generation} has the wrong text"
        );
        ensure!(
            loaded.origin == Origin::Current && loaded.warnings.is_empty(),
            "kill {kill} (seed {seed}): fell back: {:?}",
            loaded.warnings
        );
        let outcome = match (generation == last + 1, leftover_check()?) {
            (true, _) => "killed after the new generation was in place",
            (false, true) => "killed during a write (temporary files or WAL left)",
            (false, false) => "killed between writes",
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!(
        "{kind}: {KILLS} kills, {saves} completed saves, {:.1} s: {outcomes:?}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[test]
fn directory_store_survives_being_killed_at_random_moments() -> Result<()> {
    if std::env::var(CHILD_VARIABLE).is_ok() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // Generation 1, so that every generation N holds config_for(N).
    DirectoryStore::new(dir.path(), PlainDirectory).save(&config_for(1))?;
    let leftovers = || {
        Ok(file_names(dir.path())?
            .iter()
            .any(|name| name.starts_with(".mfv.toml")))
    };
    kill_repeatedly("directory", dir.path(), leftovers)
}

#[test]
fn sqlite_store_survives_being_killed_at_random_moments() -> Result<()> {
    if std::env::var(CHILD_VARIABLE).is_ok() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.db");
    // Generation 1, so that every generation N holds config_for(N).
    SqliteStore::new(&path, PlainDirectory).save(&config_for(1))?;
    let leftovers = || {
        Ok(file_names(dir.path())?
            .iter()
            .any(|name| name.ends_with("-wal") || name.ends_with("-journal")))
    };
    kill_repeatedly("sqlite", &path, leftovers)
}
