//! The SQLite store against real databases and file systems: saving, retention, falling back
//! to the last-known-good generation, and every failure path (symbolic links, FIFOs and device
//! nodes where the database or SQLite's files beside it belong included).

mod store_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use mfv_config::store::{
    ConfigStore, FileKind, GenerationProblem, Location, Origin, PlainDirectory, RecordingVolume,
    RemountVolume, SqliteStore, StoreError, VolumeCall,
};
use rusqlite::Connection;
use store_support::{Hostile, Mounted, answered, config, file_names, is_read_only, snapshot};

fn database(dir: &Path) -> PathBuf {
    dir.join("config.db")
}

fn row(database: &Path, generation: u64) -> Location {
    Location::Row {
        database: database.to_path_buf(),
        generation,
    }
}

/// Overwrites the text of one row, as media corruption would (checksum left as it was).
fn corrupt_row(database: &Path, generation: u64, text: &[u8]) -> Result<()> {
    let connection = Connection::open(database)?;
    let changed = connection.execute(
        "UPDATE generations SET text = ?1 WHERE id = ?2",
        rusqlite::params![text, i64::try_from(generation)?],
    )?;
    anyhow::ensure!(changed == 1, "no row {generation}");
    Ok(())
}

fn row_ids(database: &Path) -> Result<Vec<i64>> {
    let connection = Connection::open(database)?;
    let mut statement = connection.prepare("SELECT id FROM generations ORDER BY id")?;
    let ids = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

#[test]
fn saves_generations_in_wal_mode() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    assert!(store.load()?.is_none());
    assert!(store.generations()?.is_empty());
    assert!(!path.exists(), "reading must not create the database");

    let first = store.save(&config("first", 0))?;
    assert_eq!(first.generation, 1);
    assert_eq!(first.location, row(&path, 1));
    let second = store.save(&config("second", 0))?;
    assert_eq!(second.generation, 2);

    let loaded = store.load()?.expect("saved");
    assert_eq!(loaded.text, config("second", 0));
    assert_eq!(loaded.generation, Some(2));
    assert_eq!(loaded.origin, Origin::Current);
    assert_eq!(loaded.location, row(&path, 2));
    assert!(loaded.warnings.is_empty());

    let connection = Connection::open(&path)?;
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    assert_eq!(mode, "wal");
    drop(connection);

    let generations = store.generations()?;
    assert_eq!(generations.len(), 2);
    assert_eq!(generations[0].generation, Some(2));
    assert_eq!(generations[0].sha256, second.sha256);
    assert_eq!(generations[1].sha256, first.sha256);
    assert!(
        generations
            .iter()
            .all(|info| info.status.is_ok() && info.written_at.is_some())
    );
    Ok(())
}

#[test]
fn keeps_the_retained_number_of_generations() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let store = SqliteStore::new(&path, PlainDirectory).with_retained_generations(3);
    for name in ["a", "b", "c", "d", "e"] {
        store.save(&config(name, 0))?;
    }
    assert_eq!(row_ids(&path)?, [3, 4, 5]);

    let store = SqliteStore::new(&path, PlainDirectory).with_retained_generations(0);
    store.save(&config("f", 0))?;
    assert_eq!(row_ids(&path)?, [5, 6], "at least two generations are kept");
    Ok(())
}

#[test]
fn pruning_never_drops_the_last_known_good_generation() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let store = SqliteStore::new(&path, PlainDirectory).with_retained_generations(2);
    store.save(&config("good", 0))?;
    store.save(&config("bad", 0))?;
    corrupt_row(&path, 2, b"garbage")?;
    store.save(&config("newest", 0))?;
    assert_eq!(row_ids(&path)?, [1, 2, 3]);

    corrupt_row(&path, 3, b"garbage")?;
    let loaded = store.load()?.expect("last-known-good");
    assert_eq!(loaded.text, config("good", 0));
    assert_eq!(loaded.origin, Origin::LastKnownGood);
    Ok(())
}

#[test]
fn a_corrupt_current_generation_falls_back_and_says_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    store.save(&config("old", 0))?;
    store.save(&config("middle", 0))?;
    store.save(&config("new", 0))?;
    corrupt_row(&path, 3, config("forged", 0).as_bytes())?;
    corrupt_row(&path, 2, b"\xff\xfe")?;

    let loaded = store.load()?.expect("oldest generation");
    assert_eq!(loaded.text, config("old", 0));
    assert_eq!(loaded.generation, Some(1));
    assert_eq!(loaded.origin, Origin::LastKnownGood);
    assert_eq!(loaded.warnings.len(), 2);
    assert_eq!(loaded.warnings[0].skipped, row(&path, 3));
    assert!(matches!(
        loaded.warnings[0].problem,
        GenerationProblem::ChecksumMismatch { .. }
    ));
    assert!(
        loaded.warnings[1].to_string().starts_with(&format!(
            "{} generation 2: corrupt: sha256 ",
            path.display()
        )),
        "{}",
        loaded.warnings[1]
    );
    assert!(loaded.warnings[1].to_string().ends_with(&format!(
        "; using last-known-good {} generation 1",
        path.display()
    )));

    let statuses: Vec<bool> = store
        .generations()?
        .iter()
        .map(|info| info.status.is_ok())
        .collect();
    assert_eq!(statuses, [false, false, true]);
    Ok(())
}

#[test]
fn every_generation_corrupt_is_an_error_naming_each() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;
    corrupt_row(&path, 1, b"x")?;
    corrupt_row(&path, 2, b"y")?;

    let error = store.load().unwrap_err();
    let StoreError::NoUsableGeneration {
        store: at,
        problems,
    } = &error
    else {
        panic!("unexpected error {error}");
    };
    assert_eq!(at, &path);
    let locations: Vec<_> = problems
        .iter()
        .map(|(location, _)| location.clone())
        .collect();
    assert_eq!(locations, [row(&path, 2), row(&path, 1)]);
    let message = error.to_string();
    assert!(message.starts_with(&format!(
        "no usable config in {}: {} generation 2: corrupt: sha256 ",
        path.display(),
        path.display()
    )));
    assert!(message.contains(&format!("; {} generation 1: corrupt", path.display())));
    Ok(())
}

#[test]
fn an_invalid_config_is_refused_before_anything_is_written() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let volume = Arc::new(RecordingVolume::new());
    let store = SqliteStore::new(&path, Arc::clone(&volume));

    let error = store.save("version = 1\n").unwrap_err();
    assert!(matches!(&error, StoreError::InvalidConfig { store, .. } if *store == path));
    assert!(!path.exists(), "no database was created");
    assert!(volume.calls().is_empty());

    store.save(&config("good", 0))?;
    let before = snapshot(dir.path())?;
    assert!(store.save("not toml at all [").is_err());
    assert_eq!(snapshot(dir.path())?, before);
    assert_eq!(
        volume.calls(),
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    Ok(())
}

#[test]
fn a_missing_directory_is_named_and_the_volume_untouched() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("not-mounted");
    let volume = Arc::new(RecordingVolume::new());
    let store = SqliteStore::new(database(&missing), Arc::clone(&volume));
    for error in [
        store.load().unwrap_err(),
        store.save(&config("x", 0)).unwrap_err(),
        store.generations().unwrap_err(),
    ] {
        assert!(matches!(&error, StoreError::DirectoryMissing { path } if *path == missing));
    }
    assert!(volume.calls().is_empty());
    Ok(())
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    fs::write(&path, vec![0x5a; 4096])?;
    let store = SqliteStore::new(&path, PlainDirectory);
    for error in [
        store.load().unwrap_err(),
        store.save(&config("x", 0)).unwrap_err(),
    ] {
        assert!(
            matches!(&error, StoreError::Sqlite { path: at, .. } if *at == path),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!("SQLite error on {}", path.display())
        );
    }
    assert_eq!(fs::read(&path)?, vec![0x5a; 4096]);
    Ok(())
}

#[test]
fn a_volume_that_stays_writable_after_a_save_is_reported() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = database(dir.path());
    let volume = Arc::new(RecordingVolume::failing(false, true));
    let store = SqliteStore::new(&path, Arc::clone(&volume));
    let error = store.save(&config("one", 0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "config saved to {} generation 1, but the volume stays writable",
            path.display()
        )
    );
    assert_eq!(store.load()?.expect("saved").text, config("one", 0));

    let volume = Arc::new(RecordingVolume::failing(true, false));
    let store = SqliteStore::new(&path, Arc::clone(&volume));
    assert!(matches!(
        store.save(&config("two", 0)),
        Err(StoreError::Volume { .. })
    ));
    assert_eq!(volume.calls(), [VolumeCall::MakeWritable]);
    assert_eq!(store.load()?.expect("saved").generation, Some(1));
    Ok(())
}

#[test]
fn a_read_only_volume_is_read_and_written_through_remounts() -> Result<()> {
    let volume_dir = Mounted::image("ext4", "ro", |_| Ok(()))?;
    let path = database(volume_dir.path());
    let store = SqliteStore::new(&path, RemountVolume::new(volume_dir.path()));
    store.save(&config("one", 0))?;
    store.save(&config("two", 0))?;
    assert!(is_read_only(volume_dir.path())?);
    let loaded = store.load()?.expect("saved");
    assert_eq!(loaded.text, config("two", 0));
    assert_eq!(store.generations()?.len(), 2);

    let without_remount = SqliteStore::new(&path, PlainDirectory);
    let error = without_remount.save(&config("three", 0)).unwrap_err();
    assert!(
        matches!(&error, StoreError::Sqlite { path: at, .. } if *at == path),
        "{error}"
    );
    assert_eq!(without_remount.load()?.expect("saved").generation, Some(2));
    Ok(())
}

#[test]
fn a_full_file_system_fails_the_save_and_keeps_the_stored_generations() -> Result<()> {
    let volume_dir = Mounted::tmpfs(160 * 1024)?;
    let path = database(volume_dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    store.save(&config("small", 0))?;

    let error = store.save(&config("large", 400 * 1024)).unwrap_err();
    let StoreError::Sqlite { path: at, source } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*at, path);
    assert_eq!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull),
        "{source}"
    );
    let loaded = store.load()?.expect("small");
    assert_eq!(loaded.text, config("small", 0));
    assert_eq!(loaded.origin, Origin::Current);
    store.save(&config("fits", 0))?;
    Ok(())
}

/// A failed save gives back the space its WAL took before it returns, also while another
/// process still holds the WAL open: a child forked by another thread of the host shares the
/// store's open files until it execs, so deleting the WAL when the connection closes does not
/// free its blocks in time for the next read or save.
#[test]
fn a_failed_save_gives_its_space_back_while_its_wal_is_held_open() -> Result<()> {
    let volume_dir = Mounted::tmpfs(160 * 1024)?;
    let path = database(volume_dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    store.save(&config("small", 0))?;
    assert_eq!(file_names(volume_dir.path())?, ["config.db"]);

    // Held open, as by a child forked at the wrong moment: the WAL and the WAL index the next
    // save writes to (SQLite opens the files it finds).
    let held_wal = fs::File::create(volume_dir.path().join("config.db-wal"))?;
    let _held_index = fs::File::create(volume_dir.path().join("config.db-shm"))?;
    let error = store.save(&config("large", 400 * 1024)).unwrap_err();
    let StoreError::Sqlite { path: at, source } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*at, path);
    assert_eq!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull),
        "{source}"
    );

    let loaded = store.load()?.expect("small");
    assert_eq!(loaded.text, config("small", 0));
    assert_eq!(loaded.origin, Origin::Current);
    let saved = store.save(&config("fits", 0))?;
    assert_eq!(saved.generation, 2);
    assert_eq!(store.load()?.expect("fits").text, config("fits", 0));
    assert_eq!(
        held_wal.metadata()?.len(),
        0,
        "the failed save truncated its WAL"
    );
    Ok(())
}

/// Fills the file system holding `dir` with a file of its own, which it returns.
fn fill(dir: &Path) -> Result<PathBuf> {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = fs::File::create(&filler)?;
    let block = [0u8; 4096];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return Ok(filler),
            Err(error) => return Err(error.into()),
        }
    }
}

#[test]
fn the_next_save_succeeds_once_there_is_room_again() -> Result<()> {
    let volume_dir = Mounted::tmpfs(160 * 1024)?;
    let path = database(volume_dir.path());
    let store = SqliteStore::new(&path, PlainDirectory);
    store.save(&config("small", 0))?;
    let stored = fs::read(&path)?;

    let filler = fill(volume_dir.path())?;
    let error = store.save(&config("blocked", 0)).unwrap_err();
    let StoreError::Sqlite { path: at, source } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*at, path);
    // With no block free SQLite cannot even grow its WAL index: SQLITE_IOERR_SHMSIZE.
    let no_room = match source {
        rusqlite::Error::SqliteFailure(failure, _) => {
            failure.code == rusqlite::ErrorCode::DiskFull
                || failure.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE
        }
        _ => false,
    };
    assert!(no_room, "{source:?}");
    assert_eq!(fs::read(&path)?, stored, "the database file is untouched");

    fs::remove_file(&filler)?;
    let loaded = store.load()?.expect("small");
    assert_eq!(loaded.text, config("small", 0));
    assert_eq!(loaded.origin, Origin::Current);
    let saved = store.save(&config("after", 0))?;
    assert_eq!(saved.generation, 2);
    assert_eq!(store.load()?.expect("after").text, config("after", 0));
    Ok(())
}

/// The message for a name where the store opens only regular files.
fn refused(path: &Path, kind: FileKind) -> String {
    format!(
        "{} is {kind}; the store opens only regular files",
        path.display()
    )
}

#[test]
fn a_database_that_is_not_a_regular_file_is_refused_before_anything_is_opened() -> Result<()> {
    for hostile in [Hostile::LinkToDevZero, Hostile::Fifo, Hostile::DeviceNode] {
        let dir = tempfile::tempdir()?;
        let path = database(dir.path());
        hostile.plant(&path)?;
        let volume = Arc::new(RecordingVolume::new());
        let store = Arc::new(SqliteStore::new(&path, Arc::clone(&volume)));
        let expected = refused(&path, hostile.kind());

        let reader = Arc::clone(&store);
        let loaded = answered("load", move || reader.load())?;
        assert_eq!(loaded.unwrap_err().to_string(), expected, "{hostile:?}");
        let reader = Arc::clone(&store);
        let listed = answered("generations", move || reader.generations())?;
        assert_eq!(listed.unwrap_err().to_string(), expected);
        let writer = Arc::clone(&store);
        let saved = answered("save", move || writer.save(&config("new", 0)))?;
        assert!(matches!(
            saved,
            Err(StoreError::FileType { path: refused_path, kind, .. })
                if refused_path == path && kind == hostile.kind()
        ));
        assert!(volume.calls().is_empty(), "{hostile:?}");
        assert_eq!(file_names(dir.path())?, ["config.db"]);
    }
    Ok(())
}

#[test]
fn a_file_beside_the_database_that_is_not_regular_is_refused_and_the_generations_stay() -> Result<()>
{
    let elsewhere = tempfile::tempdir()?;
    let target = elsewhere.path().join("target");
    fs::write(&target, "kept")?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let dir = tempfile::tempdir()?;
        let path = database(dir.path());
        let store = Arc::new(SqliteStore::new(&path, PlainDirectory));
        store.save(&config("stored", 0))?;
        let beside = PathBuf::from(format!("{}{suffix}", path.display()));
        for (hostile, plant) in [
            (
                FileKind::Symlink,
                Box::new(|beside: &Path| Ok(std::os::unix::fs::symlink(&target, beside)?))
                    as Box<dyn Fn(&Path) -> Result<()>>,
            ),
            (
                FileKind::Fifo,
                Box::new(|beside| Hostile::Fifo.plant(beside)),
            ),
        ] {
            plant(&beside)?;
            let reader = Arc::clone(&store);
            let loaded = answered("load", move || reader.load())?;
            assert_eq!(
                loaded.unwrap_err().to_string(),
                refused(&beside, hostile),
                "{suffix}"
            );
            let writer = Arc::clone(&store);
            let saved = answered("save", move || writer.save(&config("new", 0)))?;
            assert_eq!(saved.unwrap_err().to_string(), refused(&beside, hostile));
            fs::remove_file(&beside)?;
        }
        assert_eq!(fs::read_to_string(&target)?, "kept");
        let loaded = store.load()?.expect("the stored generation");
        assert_eq!(loaded.text, config("stored", 0), "{suffix}");
        assert_eq!(row_ids(&path)?, [1]);
    }
    Ok(())
}
