//! The directory store against real directories and file systems: saving, falling back to the
//! last-known-good generation, and every failure path (missing directory, read-only and full
//! file systems, rename failure, corrupt generations, invalid configs, and symbolic links,
//! FIFOs, device nodes and oversized files where the store expects its own files).

mod store_support;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Result;
use mfv_config::store::directory::MAX_GENERATION_FILE_BYTES;
use mfv_config::store::{
    ConfigStore, DirectoryStore, FileKind, GenerationProblem, Location, Origin, PlainDirectory,
    RecordingVolume, RemountVolume, StoreError, VolumeCall,
};
use store_support::{Hostile, Mounted, answered, config, file_names, is_read_only, snapshot};

fn plain_store(dir: &Path) -> DirectoryStore {
    DirectoryStore::new(dir, PlainDirectory)
}

fn recorded_store(dir: &Path, volume: &Arc<RecordingVolume>) -> DirectoryStore {
    DirectoryStore::new(dir, Arc::clone(volume))
}

/// Flips one byte in the body of a generation file, leaving its header intact.
fn corrupt(path: &Path) -> Result<()> {
    let mut bytes = fs::read(path)?;
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn saves_generations_and_keeps_the_previous_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    assert!(store.load()?.is_none());
    assert!(store.generations()?.is_empty());

    let first = store.save(&config("first", 0))?;
    assert_eq!(first.generation, 1);
    assert_eq!(first.location, Location::File(dir.path().join("mfv.toml")));
    let second = store.save(&config("second", 0))?;
    assert_eq!(second.generation, 2);

    let loaded = store.load()?.expect("saved");
    assert_eq!(loaded.text, config("second", 0));
    assert_eq!(loaded.generation, Some(2));
    assert_eq!(loaded.origin, Origin::Current);
    assert!(loaded.warnings.is_empty());

    let current = fs::read_to_string(dir.path().join("mfv.toml"))?;
    assert!(current.starts_with(&format!(
        "# mfv-store generation=2 length={} sha256={}\n",
        config("second", 0).len(),
        second.sha256
    )));
    mfv_config::schema::parse_config(&current)?;
    let previous = fs::read_to_string(dir.path().join("mfv.toml.prev"))?;
    assert!(previous.ends_with(&config("first", 0)));
    assert_eq!(file_names(dir.path())?, ["mfv.toml", "mfv.toml.prev"]);

    let generations = store.generations()?;
    assert_eq!(generations.len(), 2);
    assert_eq!(generations[0].generation, Some(2));
    assert_eq!(generations[0].sha256, second.sha256);
    assert_eq!(generations[0].length, config("second", 0).len() as u64);
    assert_eq!(generations[1].generation, Some(1));
    assert_eq!(generations[1].sha256, first.sha256);
    assert!(
        generations
            .iter()
            .all(|info| info.status.is_ok() && info.written_at.is_some())
    );
    Ok(())
}

#[test]
fn a_header_line_in_the_saved_text_is_replaced() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("one", 0))?;
    let file_text = fs::read_to_string(store.current_path())?;
    let saved = store.save(&file_text)?;
    assert_eq!(saved.generation, 2);
    let loaded = store.load()?.expect("saved");
    assert_eq!(loaded.text, config("one", 0));
    Ok(())
}

#[test]
fn a_hand_written_file_is_used_and_becomes_the_previous_generation() -> Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("mfv.toml"), config("by-hand", 0))?;
    let store = plain_store(dir.path());
    let loaded = store.load()?.expect("hand-written file");
    assert_eq!(loaded.generation, None);
    assert_eq!(loaded.origin, Origin::Current);

    assert_eq!(store.save(&config("saved", 0))?.generation, 1);
    assert_eq!(
        fs::read_to_string(store.previous_path())?,
        config("by-hand", 0)
    );
    Ok(())
}

#[test]
fn a_missing_directory_is_named_and_the_volume_untouched() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("not-mounted");
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(&missing, &volume);
    for error in [
        store.load().unwrap_err(),
        store.save(&config("x", 0)).unwrap_err(),
        store.generations().unwrap_err(),
    ] {
        assert!(matches!(&error, StoreError::DirectoryMissing { path } if *path == missing));
        assert_eq!(
            error.to_string(),
            format!(
                "config store directory {} does not exist",
                missing.display()
            )
        );
    }
    assert!(volume.calls().is_empty());

    fs::write(&missing, "a file")?;
    let error = store.load().unwrap_err();
    assert!(
        matches!(&error, StoreError::Read { path, .. } if *path == missing),
        "{error}"
    );
    Ok(())
}

#[test]
fn an_invalid_config_is_refused_before_anything_is_written() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(dir.path(), &volume);
    store.save(&config("good", 0))?;
    store.save(&config("better", 0))?;
    let before = snapshot(dir.path())?;
    let calls_before = volume.calls().len();

    let error = store
        .save("version = 1\n[host]\nhostnme = \"x\"\n")
        .unwrap_err();
    let StoreError::InvalidConfig {
        store: path,
        errors,
    } = &error
    else {
        panic!("unexpected error {error}");
    };
    assert_eq!(path, dir.path());
    assert!(
        errors.contains("3:1: host.hostnme: unknown field"),
        "{errors}"
    );
    assert!(error.to_string().starts_with(&format!(
        "config for {} refused, nothing was written: 2:1: host.hostname: missing required field; 3:1:",
        dir.path().display()
    )));
    for invalid in [
        "",
        "\0\0binary",
        "version = 2\n",
        "version = 1\n[host]\nhostname = \"a b\"\n",
    ] {
        assert!(matches!(
            store.save(invalid),
            Err(StoreError::InvalidConfig { .. })
        ));
    }
    let error = store.save(&config("huge", 2 << 20)).unwrap_err();
    assert!(
        error.to_string().contains("may be at most 1048576 bytes"),
        "{error}"
    );
    let mut just_fits_without_header = config("almost", 0);
    just_fits_without_header.push_str(&"#".repeat((1 << 20) - 1 - just_fits_without_header.len()));
    just_fits_without_header.push('\n');
    assert_eq!(just_fits_without_header.len(), 1 << 20);
    mfv_config::schema::parse_config_bytes(just_fits_without_header.as_bytes())?;
    let error = store.save(&just_fits_without_header).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("with the store's generation header it would exceed"),
        "{error}"
    );
    assert_eq!(snapshot(dir.path())?, before);
    assert_eq!(volume.calls().len(), calls_before);
    Ok(())
}

#[test]
fn concurrent_saves_are_serialized() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(plain_store(dir.path()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || -> Result<Vec<u64>> {
                (0..25)
                    .map(|_| {
                        Ok(store
                            .save(&config(&format!("writer{writer}"), 0))?
                            .generation)
                    })
                    .collect()
            })
        })
        .collect();
    let mut generations = Vec::new();
    for writer in writers {
        generations.extend(writer.join().expect("writer thread")?);
    }
    generations.sort_unstable();
    assert_eq!(generations, (1..=100).collect::<Vec<u64>>());
    let loaded = store.load()?.expect("saved");
    assert_eq!(loaded.generation, Some(100));
    assert_eq!(file_names(dir.path())?, ["mfv.toml", "mfv.toml.prev"]);
    Ok(())
}

#[test]
fn a_corrupt_current_generation_falls_back_and_says_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;
    corrupt(&store.current_path())?;

    let loaded = store.load()?.expect("previous generation");
    assert_eq!(loaded.text, config("old", 0));
    assert_eq!(loaded.generation, Some(1));
    assert_eq!(loaded.origin, Origin::LastKnownGood);
    assert_eq!(loaded.location, Location::File(store.previous_path()));
    assert_eq!(loaded.warnings.len(), 1);
    let warning = loaded.warnings[0].to_string();
    assert!(
        warning.starts_with(&format!(
            "{}: corrupt: sha256 ",
            store.current_path().display()
        )),
        "{warning}"
    );
    assert!(warning.ends_with(&format!(
        "(after editing by hand, delete the `# mfv-store` first line); using last-known-good {}",
        store.previous_path().display()
    )));

    let generations = store.generations()?;
    assert!(matches!(
        generations[0].status,
        Err(GenerationProblem::ChecksumMismatch { .. })
    ));
    assert_eq!(generations[0].generation, Some(2));
    assert!(generations[1].status.is_ok());
    Ok(())
}

#[test]
fn a_torn_current_generation_falls_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;
    let bytes = fs::read(store.current_path())?;
    fs::write(store.current_path(), &bytes[..bytes.len() / 2 + 60])?;

    let loaded = store.load()?.expect("previous generation");
    assert_eq!(loaded.text, config("old", 0));
    assert!(matches!(
        loaded.warnings[0].problem,
        GenerationProblem::LengthMismatch { .. }
    ));
    assert!(loaded.warnings[0].to_string().contains("(torn write)"));
    Ok(())
}

#[test]
fn a_current_generation_the_schema_refuses_falls_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;
    fs::write(store.current_path(), "version = 1\n")?;
    let loaded = store.load()?.expect("previous generation");
    assert_eq!(loaded.origin, Origin::LastKnownGood);
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("invalid config: 1:1: host: missing required section [host]"),
        "{}",
        loaded.warnings[0]
    );
    Ok(())
}

#[test]
fn a_missing_or_unreadable_current_file_falls_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;

    fs::remove_file(store.current_path())?;
    let loaded = store.load()?.expect("previous generation");
    assert_eq!(loaded.text, config("old", 0));
    assert_eq!(loaded.warnings[0].problem, GenerationProblem::Missing);

    fs::create_dir(store.current_path())?;
    let loaded = store.load()?.expect("previous generation");
    assert_eq!(
        loaded.warnings[0].problem,
        GenerationProblem::NotRegularFile {
            kind: FileKind::Directory
        }
    );
    Ok(())
}

#[test]
fn both_generations_corrupt_is_an_error_naming_both_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("old", 0))?;
    store.save(&config("new", 0))?;
    corrupt(&store.current_path())?;
    fs::write(
        store.previous_path(),
        b"# mfv-store generation=1 length=3\nabc",
    )?;

    let error = store.load().unwrap_err();
    let StoreError::NoUsableGeneration {
        store: path,
        problems,
    } = &error
    else {
        panic!("unexpected error {error}");
    };
    assert_eq!(path, dir.path());
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[1].1, GenerationProblem::MalformedHeader);
    let message = error.to_string();
    assert!(message.starts_with(&format!(
        "no usable config in {}: {}: corrupt: sha256 ",
        dir.path().display(),
        store.current_path().display()
    )));
    assert!(message.ends_with(&format!(
        "; {}: corrupt: malformed generation header",
        store.previous_path().display()
    )));

    fs::remove_file(store.current_path())?;
    let message = store.load().unwrap_err().to_string();
    assert!(message.contains(&format!("{}: missing; ", store.current_path().display())));
    Ok(())
}

#[test]
fn saving_over_a_corrupt_current_keeps_the_last_known_good() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("good", 0))?;
    store.save(&config("lost", 0))?;
    corrupt(&store.current_path())?;
    let previous = fs::read(store.previous_path())?;

    let saved = store.save(&config("newest", 0))?;
    assert_eq!(saved.generation, 3);
    assert_eq!(fs::read(store.previous_path())?, previous);
    assert_eq!(store.load()?.expect("saved").text, config("newest", 0));
    Ok(())
}

#[test]
fn leftover_temporary_files_are_ignored_and_removed_by_the_next_save() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    store.save(&config("one", 0))?;
    fs::write(dir.path().join(".mfv.toml.new"), "torn")?;
    fs::write(dir.path().join(".mfv.toml.prev.new"), "torn")?;
    assert_eq!(store.load()?.expect("saved").text, config("one", 0));

    store.save(&config("two", 0))?;
    assert_eq!(file_names(dir.path())?, ["mfv.toml", "mfv.toml.prev"]);
    Ok(())
}

#[test]
fn the_volume_is_writable_only_during_a_write() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(dir.path(), &volume);
    store.load()?;
    assert!(volume.calls().is_empty());
    store.save(&config("one", 0))?;
    store.load()?;
    store.generations()?;
    assert_eq!(
        volume.calls(),
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    Ok(())
}

#[test]
fn a_volume_that_cannot_be_made_writable_stops_the_save() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::failing(true, false));
    let store = recorded_store(dir.path(), &volume);
    let error = store.save(&config("one", 0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot write to {}", dir.path().display())
    );
    let source = std::error::Error::source(&error).expect("cause");
    assert_eq!(
        source.to_string(),
        "cannot remount /recording-volume read-write"
    );
    assert!(file_names(dir.path())?.is_empty());
    assert_eq!(volume.calls(), [VolumeCall::MakeWritable]);
    Ok(())
}

#[test]
fn a_volume_that_stays_writable_after_a_save_is_reported() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::failing(false, true));
    let store = recorded_store(dir.path(), &volume);
    let error = store.save(&config("one", 0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "config saved to {}, but the volume stays writable",
            store.current_path().display()
        )
    );
    assert_eq!(store.load()?.expect("saved").text, config("one", 0));
    assert_eq!(
        volume.calls(),
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    Ok(())
}

/// Sets the immutable attribute on a file and clears it when dropped (so the temporary
/// directory can be removed).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: PathBuf) -> Result<Self> {
        let status = Command::new("chattr").arg("+i").arg(&path).status()?;
        anyhow::ensure!(status.success(), "chattr +i {} failed", path.display());
        Ok(Immutable(path))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_rename_failure_leaves_the_current_generation_and_no_temporary_file() -> Result<()> {
    store_support::require_root()?;
    let volume_dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(volume_dir.path(), &volume);
    store.save(&config("old", 0))?;
    store.save(&config("current", 0))?;
    let current = fs::read(store.current_path())?;

    let error = {
        let _immutable = Immutable::set(store.current_path())?;
        store.save(&config("new", 0)).unwrap_err()
    };
    let StoreError::Rename { from, to, source } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*from, volume_dir.path().join(".mfv.toml.new"));
    assert_eq!(*to, store.current_path());
    assert_eq!(source.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        error.to_string(),
        format!(
            "cannot rename {} to {}",
            from.display(),
            store.current_path().display()
        )
    );
    assert_eq!(fs::read(store.current_path())?, current);
    // The immutable file cannot be hard-linked either, so the previous generation was put in
    // place by copying (the path vfat takes).
    assert_eq!(fs::read(store.previous_path())?, current);
    let loaded = store.load()?.expect("current");
    assert_eq!(loaded.text, config("current", 0));
    assert_eq!(loaded.origin, Origin::Current);
    assert_eq!(
        file_names(volume_dir.path())?,
        ["mfv.toml", "mfv.toml.prev"]
    );
    assert_eq!(
        volume.calls()[4..],
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    Ok(())
}

#[test]
fn a_read_only_file_system_refuses_the_write_and_changes_nothing() -> Result<()> {
    let volume_dir = Mounted::image("ext4", "ro", |dir| {
        plain_store(dir).save(&config("stored", 0))?;
        Ok(())
    })?;
    assert!(is_read_only(volume_dir.path())?);
    let store = plain_store(volume_dir.path());
    let before = snapshot(volume_dir.path())?;

    let error = store.save(&config("new", 0)).unwrap_err();
    let StoreError::Write { path, source } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(*path, volume_dir.path().join(".mfv.toml.new"));
    assert_eq!(source.raw_os_error(), Some(nix::libc::EROFS));
    assert_eq!(snapshot(volume_dir.path())?, before);
    assert_eq!(store.load()?.expect("stored").text, config("stored", 0));
    Ok(())
}

#[test]
fn remount_volume_makes_a_read_only_ext4_volume_writable_for_the_write_only() -> Result<()> {
    let volume_dir = Mounted::image("ext4", "ro,nosuid,nodev,noexec", |_| Ok(()))?;
    let store = DirectoryStore::new(volume_dir.path(), RemountVolume::new(volume_dir.path()));
    store.save(&config("one", 0))?;
    store.save(&config("two", 0))?;
    assert!(is_read_only(volume_dir.path())?);
    let flags = nix::sys::statvfs::statvfs(volume_dir.path())?.flags();
    use nix::sys::statvfs::FsFlags;
    assert!(flags.contains(FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC));
    assert_eq!(store.load()?.expect("saved").text, config("two", 0));
    assert_eq!(
        file_names(volume_dir.path())?,
        ["mfv.toml", "mfv.toml.prev"]
    );
    Ok(())
}

#[test]
fn a_vfat_volume_without_hard_links_keeps_the_previous_generation_by_copy() -> Result<()> {
    if !store_support::kernel_supports("vfat")? {
        eprintln!("skipped: the running kernel has no vfat file system");
        return Ok(());
    }
    let volume_dir = Mounted::image("vfat", "ro", |_| Ok(()))?;
    let store = DirectoryStore::new(volume_dir.path(), RemountVolume::new(volume_dir.path()));
    store.save(&config("one", 0))?;
    store.save(&config("two", 0))?;
    assert!(is_read_only(volume_dir.path())?);
    let generations = store.generations()?;
    assert_eq!(generations.len(), 2);
    assert_eq!(generations[1].generation, Some(1));
    assert!(fs::read_to_string(store.previous_path())?.ends_with(&config("one", 0)));
    Ok(())
}

#[test]
fn remounting_a_directory_that_is_not_a_mount_point_fails_cleanly() -> Result<()> {
    store_support::require_root()?;
    let dir = tempfile::tempdir()?;
    let store = DirectoryStore::new(dir.path(), RemountVolume::new(dir.path()));
    let error = store.save(&config("one", 0)).unwrap_err();
    assert!(matches!(error, StoreError::Volume { .. }), "{error}");
    let cause = std::error::Error::source(&error)
        .expect("cause")
        .to_string();
    assert_eq!(
        cause,
        format!("cannot remount {} read-write", dir.path().display())
    );
    assert!(file_names(dir.path())?.is_empty());
    Ok(())
}

#[test]
fn a_full_file_system_fails_the_write_and_keeps_the_current_generation() -> Result<()> {
    let volume_dir = Mounted::tmpfs(64 * 1024)?;
    let store = plain_store(volume_dir.path());
    store.save(&config("small", 0))?;
    let before = snapshot(volume_dir.path())?;

    let error = store.save(&config("large", 100 * 1024)).unwrap_err();
    let (path, source) = match &error {
        StoreError::Write { path, source } | StoreError::Sync { path, source } => (path, source),
        other => panic!("unexpected error {other}"),
    };
    assert_eq!(*path, volume_dir.path().join(".mfv.toml.new"));
    assert_eq!(source.raw_os_error(), Some(nix::libc::ENOSPC));
    assert_eq!(snapshot(volume_dir.path())?, before);
    assert_eq!(store.load()?.expect("small").text, config("small", 0));
    store.save(&config("fits", 0))?;
    Ok(())
}

#[test]
fn a_file_beside_the_configuration_is_written_with_the_volume_writable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(dir.path(), &volume);
    let written = store.write_beside("vms", |path| {
        fs::create_dir(path)?;
        fs::write(path.join("index.json"), "{}")?;
        Ok(path.to_path_buf())
    })?;
    assert_eq!(written, dir.path().join("vms"));
    assert_eq!(fs::read_to_string(dir.path().join("vms/index.json"))?, "{}");
    assert_eq!(
        volume.calls(),
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    Ok(())
}

#[test]
fn a_failed_write_beside_the_configuration_names_the_path_and_restores_read_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(dir.path(), &volume);
    let error = store
        .write_beside("vms", |path| {
            fs::write(path.join("index.json"), "{}")?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot write {} beside the configuration",
            dir.path().join("vms").display()
        )
    );
    assert_eq!(
        volume.calls(),
        [VolumeCall::MakeWritable, VolumeCall::MakeReadOnly]
    );
    let refused = Arc::new(RecordingVolume::failing(true, false));
    let store = recorded_store(dir.path(), &refused);
    let error = store.write_beside("vms", |_| Ok(())).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot write to {}", dir.path().display())
    );
    Ok(())
}

/// Every hostile file the store must refuse where it expects a generation file.
const HOSTILE: [Hostile; 4] = [
    Hostile::LinkToDevZero,
    Hostile::Fifo,
    Hostile::DeviceNode,
    Hostile::Oversized {
        limit: MAX_GENERATION_FILE_BYTES,
    },
];

/// What the store says of a hostile generation file.
fn problem_of(hostile: Hostile) -> GenerationProblem {
    match hostile {
        Hostile::Oversized { limit } => GenerationProblem::TooLarge {
            size: limit + 1,
            limit,
        },
        other => GenerationProblem::NotRegularFile { kind: other.kind() },
    }
}

#[test]
fn a_hostile_previous_file_is_never_read_and_the_next_save_replaces_it() -> Result<()> {
    for hostile in HOSTILE {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(plain_store(dir.path()));
        store.save(&config("current", 0))?;
        hostile.plant(&store.previous_path())?;
        let current = fs::read(store.current_path())?;

        let reader = Arc::clone(&store);
        let loaded = answered("load", move || reader.load())??.expect("saved");
        assert_eq!(loaded.text, config("current", 0), "{hostile:?}");
        assert_eq!(loaded.origin, Origin::Current);
        assert!(loaded.warnings.is_empty());

        let reader = Arc::clone(&store);
        let generations = answered("generations", move || reader.generations())??;
        assert_eq!(generations.len(), 2, "{hostile:?}");
        assert!(generations[0].status.is_ok());
        assert_eq!(
            generations[1].location,
            Location::File(store.previous_path())
        );
        assert_eq!(generations[1].status, Err(problem_of(hostile)));
        assert_eq!(fs::read(store.current_path())?, current);

        let writer = Arc::clone(&store);
        let saved = answered("save", move || writer.save(&config("next", 0)))??;
        assert_eq!(saved.generation, 2, "{hostile:?}");
        assert_eq!(fs::read(store.previous_path())?, current);
        assert_eq!(store.load()?.expect("saved").text, config("next", 0));
        assert_eq!(file_names(dir.path())?, ["mfv.toml", "mfv.toml.prev"]);
    }
    Ok(())
}

#[test]
fn a_hostile_current_file_falls_back_to_the_previous_generation_naming_what_it_is() -> Result<()> {
    for hostile in HOSTILE {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(plain_store(dir.path()));
        store.save(&config("old", 0))?;
        store.save(&config("new", 0))?;
        fs::remove_file(store.current_path())?;
        hostile.plant(&store.current_path())?;
        let previous = fs::read(store.previous_path())?;

        let reader = Arc::clone(&store);
        let loaded = answered("load", move || reader.load())??.expect("previous generation");
        assert_eq!(loaded.text, config("old", 0), "{hostile:?}");
        assert_eq!(loaded.origin, Origin::LastKnownGood);
        assert_eq!(loaded.warnings[0].problem, problem_of(hostile));
        assert_eq!(
            loaded.warnings[0].to_string(),
            format!(
                "{}: {}; using last-known-good {}",
                store.current_path().display(),
                problem_of(hostile),
                store.previous_path().display()
            )
        );

        let writer = Arc::clone(&store);
        answered("save", move || writer.save(&config("newest", 0)))??;
        assert_eq!(fs::read(store.previous_path())?, previous, "{hostile:?}");
        assert_eq!(store.load()?.expect("saved").text, config("newest", 0));
    }
    Ok(())
}

#[test]
fn a_hostile_current_file_without_a_previous_one_is_an_error_naming_it() -> Result<()> {
    for hostile in HOSTILE {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(plain_store(dir.path()));
        hostile.plant(&store.current_path())?;

        let reader = Arc::clone(&store);
        let error = answered("load", move || reader.load())?.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "no usable config in {}: {}: {}; {}: missing",
                dir.path().display(),
                store.current_path().display(),
                problem_of(hostile),
                store.previous_path().display()
            ),
            "{hostile:?}"
        );
    }
    Ok(())
}

#[test]
fn refusals_say_what_the_file_is_and_that_only_regular_files_are_read() {
    let messages = HOSTILE.map(|hostile| problem_of(hostile).to_string());
    assert_eq!(
        messages,
        [
            "a symbolic link; the store reads only regular files",
            "a FIFO; the store reads only regular files",
            "a character device; the store reads only regular files",
            "too large: 1048577 bytes, the store reads at most 1048576",
        ]
    );
}

#[test]
fn a_generation_linked_from_elsewhere_is_not_used_and_never_written_through() -> Result<()> {
    let elsewhere = tempfile::tempdir()?;
    let other = plain_store(elsewhere.path());
    other.save(&config("elsewhere", 0))?;
    let before = snapshot(elsewhere.path())?;

    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    std::os::unix::fs::symlink(other.current_path(), store.current_path())?;
    assert!(matches!(
        store.load(),
        Err(StoreError::NoUsableGeneration { .. })
    ));
    store.save(&config("here", 0))?;
    assert_eq!(store.load()?.expect("saved").text, config("here", 0));
    assert_eq!(file_names(dir.path())?, ["mfv.toml"]);
    assert_eq!(snapshot(elsewhere.path())?, before);
    Ok(())
}

#[test]
fn a_store_directory_that_is_a_symbolic_link_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let real = dir.path().join("real");
    fs::create_dir(&real)?;
    plain_store(&real).save(&config("stored", 0))?;
    let before = snapshot(&real)?;
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link)?;

    let volume = Arc::new(RecordingVolume::new());
    let store = recorded_store(&link, &volume);
    let expected = format!(
        "{} is a symbolic link; the store's directory must be a directory itself, not a link \
         to one",
        link.display()
    );
    assert_eq!(store.load().unwrap_err().to_string(), expected);
    assert_eq!(store.generations().unwrap_err().to_string(), expected);
    assert_eq!(
        store
            .save(&config("redirected", 0))
            .unwrap_err()
            .to_string(),
        expected
    );
    let written = store.write_beside("vms", |path| {
        fs::create_dir(path)?;
        Ok(())
    });
    assert_eq!(written.unwrap_err().to_string(), expected);
    assert!(matches!(
        store.load(),
        Err(StoreError::FileType {
            kind: FileKind::Symlink,
            ..
        })
    ));
    assert_eq!(snapshot(&real)?, before);
    assert!(volume.calls().is_empty());
    Ok(())
}

#[test]
fn nothing_is_written_beside_the_configuration_through_a_link_or_into_a_fifo() -> Result<()> {
    let elsewhere = tempfile::tempdir()?;
    for hostile in [Hostile::LinkToDevZero, Hostile::Fifo] {
        let dir = tempfile::tempdir()?;
        let volume = Arc::new(RecordingVolume::new());
        let store = recorded_store(dir.path(), &volume);
        let vms = dir.path().join("vms");
        hostile.plant(&vms)?;
        let written = store.write_beside("vms", |path| {
            fs::write(path.join("index.json"), "{}")?;
            Ok(())
        });
        assert_eq!(
            written.unwrap_err().to_string(),
            format!(
                "{} is {}; the store writes beside the configuration only into directories \
                 and regular files",
                vms.display(),
                hostile.kind()
            )
        );
        assert!(volume.calls().is_empty(), "{hostile:?}");
    }

    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path());
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("vms"))?;
    let written = store.write_beside("vms", |path| {
        fs::write(path.join("index.json"), "{}")?;
        Ok(())
    });
    assert!(matches!(
        written,
        Err(StoreError::FileType {
            kind: FileKind::Symlink,
            ..
        })
    ));
    assert!(file_names(elsewhere.path())?.is_empty());
    Ok(())
}

#[test]
fn a_text_too_large_for_a_generation_file_is_refused_whatever_the_validator() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = plain_store(dir.path()).with_validator(|_| Ok(()));
    store.save("small\n")?;
    let before = snapshot(dir.path())?;
    let too_large = "#".repeat(usize::try_from(MAX_GENERATION_FILE_BYTES)?);
    let error = store.save(&too_large).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "config for {} refused, nothing was written: the configuration is 1048576 bytes; \
             with the store's generation header it would exceed the limit of 1048576 bytes",
            dir.path().display()
        )
    );
    assert_eq!(snapshot(dir.path())?, before);
    Ok(())
}

#[test]
fn a_read_only_remount_waits_for_a_file_being_closed_and_names_one_kept_open() -> Result<()> {
    use mfv_config::store::VolumeAccess;
    let volume_dir = Mounted::image("ext4", "ro", |_| Ok(()))?;
    let volume = RemountVolume::new(volume_dir.path());
    volume.make_writable()?;
    // Closed by another thread a moment after the remount starts: the remount waits.
    let file = fs::File::create(volume_dir.path().join("open-for-writing"))?;
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(file);
    });
    volume.make_read_only()?;
    closer.join().expect("the closing thread");
    assert!(is_read_only(volume_dir.path())?);

    // Kept open: the remount gives up after its tries and says why.
    volume.make_writable()?;
    let kept = fs::File::create(volume_dir.path().join("kept-open"))?;
    let error = volume.make_read_only().unwrap_err();
    assert!(
        matches!(
            error,
            mfv_config::store::VolumeError::Remount {
                read_only: true,
                source: nix::errno::Errno::EBUSY,
                ..
            }
        ),
        "{error}"
    );
    drop(kept);
    volume.make_read_only()?;
    Ok(())
}
