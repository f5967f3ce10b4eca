//! Storage pools added and removed while the host runs, as the host daemon does it: a real
//! config store on a directory and a private libvirtd. A pool added is in the configuration's
//! next generation and running in libvirt; a wrong one names its field and leaves both as they
//! were; one a VM uses stays; one removed is gone from both while its files stay.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;
use std::sync::OnceLock;

use mfv_api::{ErrorKind, PoolKind, PoolSpec, Response};
use mfv_config::schema::parse_config;
use mfv_config::store::ConfigStore;
use mfv_host::config::StoreVolume;
use mfv_host::daemon::save_config;
use mfv_host::storage_pools::{add_pool, remove_pool};
use mfv_tests::libvirtd::{PrivateLibvirtd, domain_with_disk, unique};
use mfv_vm::Hypervisor;

const CONFIG: &str = "# Set up in the browser.\nversion = 1\n[host]\nhostname = \"vmhost1\"\n";

fn daemon() -> &'static PrivateLibvirtd {
    static DAEMON: OnceLock<PrivateLibvirtd> = OnceLock::new();
    DAEMON.get_or_init(|| PrivateLibvirtd::start().unwrap())
}

/// A directory store holding [`CONFIG`] as generation 1.
fn store(dir: &Path) -> StoreVolume {
    let store = StoreVolume::directory(&dir.join("store"));
    std::fs::create_dir_all(dir.join("store")).unwrap();
    save_config(store.store(), CONFIG, None).unwrap();
    store
}

fn dir_pool(name: &str, path: &Path) -> PoolSpec {
    PoolSpec {
        name: name.to_owned(),
        kind: PoolKind::Dir,
        path: Some(path.display().to_string()),
        device: None,
        server: None,
        export: None,
    }
}

fn current(store: &StoreVolume) -> (String, Option<u64>) {
    let loaded = store.store().load().unwrap().unwrap();
    (loaded.text, loaded.generation)
}

fn libvirt_pool(name: &str) -> Option<mfv_vm::PoolInfo> {
    Hypervisor::connect(daemon().uri())
        .unwrap()
        .list_pools()
        .unwrap()
        .into_iter()
        .find(|pool| pool.name == name)
}

#[test]
fn an_added_dir_pool_is_running_and_in_the_next_generation_with_the_comments_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let name = unique("sp-add");
    let path = dir.path().join("images");
    let added = add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&name, &path),
        Some(1),
    )
    .unwrap();
    assert_eq!(added, Response::PoolAdded { generation: 2 });
    let pool = libvirt_pool(&name).unwrap();
    assert_eq!((pool.kind.as_str(), pool.state), ("dir", "running"));
    assert!(pool.autostart);
    assert!(path.is_dir());
    let (text, generation) = current(&store);
    assert_eq!(generation, Some(2));
    assert!(text.starts_with(CONFIG), "{text}");
    let config = parse_config(&text).unwrap();
    assert_eq!(config.storage.pools.len(), 1);
    assert_eq!(config.storage.pools[0].name, name);

    // The same name again is the schema's duplicate, naming the field; nothing changes.
    let again = add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&name, &dir.path().join("other")),
        None,
    )
    .unwrap_err();
    assert_eq!(
        (again.kind, again.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("name"))
    );
    assert!(
        again.message.contains("duplicate pool"),
        "{}",
        again.message
    );
    assert_eq!(current(&store).1, Some(2));
    // A change based on an older generation is refused.
    let stale = add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&unique("sp-stale"), &dir.path().join("stale")),
        Some(1),
    )
    .unwrap_err();
    assert_eq!(stale.kind, ErrorKind::StaleGeneration);
}

#[test]
fn a_wrong_pool_names_its_field_and_leaves_the_configuration_and_libvirt_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let refused = |spec: PoolSpec| {
        let error = add_pool(store.store(), daemon().uri(), &spec, None).unwrap_err();
        assert_eq!(current(&store), (CONFIG.to_owned(), Some(1)));
        assert!(libvirt_pool(&spec.name).is_none(), "{}", spec.name);
        (error.kind, error.field.unwrap_or_default(), error.message)
    };
    let (kind, field, message) = refused(PoolSpec {
        path: Some("images".to_owned()),
        ..dir_pool(&unique("sp-rel"), dir.path())
    });
    assert_eq!((kind, field.as_str()), (ErrorKind::InvalidRequest, "path"));
    assert_eq!(message, "\"images\" is not an absolute path");

    let (kind, field, _) = refused(PoolSpec {
        path: None,
        ..dir_pool(&unique("sp-nopath"), dir.path())
    });
    assert_eq!((kind, field.as_str()), (ErrorKind::InvalidRequest, "path"));

    let (kind, field, message) = refused(PoolSpec {
        kind: PoolKind::Nfs,
        path: None,
        server: Some("nfs_1".to_owned()),
        export: Some("/vms".to_owned()),
        ..dir_pool(&unique("sp-nfs"), dir.path())
    });
    assert_eq!(
        (kind, field.as_str()),
        (ErrorKind::InvalidRequest, "server")
    );
    assert!(message.contains("'_'"), "{message}");

    // libvirt cannot make a directory pool below a file: nothing is saved or left defined.
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    let (kind, field, message) = refused(dir_pool(
        &unique("sp-file"),
        &dir.path().join("a-file/images"),
    ));
    assert_eq!((kind, field.as_str()), (ErrorKind::InvalidRequest, "path"));
    assert!(message.contains("nothing was saved"), "{message}");

    // A logical pool on something that is not a block device names the device.
    let (kind, field, message) = refused(PoolSpec {
        kind: PoolKind::Logical,
        path: None,
        device: Some(dir.path().join("a-file").display().to_string()),
        ..dir_pool(&unique("sp-lvm"), dir.path())
    });
    assert_eq!(
        (kind, field.as_str()),
        (ErrorKind::InvalidRequest, "device")
    );
    assert!(message.contains("not a block device"), "{message}");

    // A name libvirt has already (defined by hand) is refused rather than taken over.
    let stray = unique("sp-stray");
    Hypervisor::connect(daemon().uri())
        .unwrap()
        .ensure_dir_pool(&stray, &dir.path().join("stray"))
        .unwrap();
    let error = add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&stray, &dir.path().join("mine")),
        None,
    )
    .unwrap_err();
    assert_eq!(
        (error.kind, error.field.as_deref()),
        (ErrorKind::Conflict, Some("name"))
    );
    assert_eq!(current(&store).1, Some(1));
}

#[test]
fn a_pool_a_vm_uses_stays_and_a_removed_one_leaves_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let name = unique("sp-rm");
    let path = dir.path().join("images");
    add_pool(store.store(), daemon().uri(), &dir_pool(&name, &path), None).unwrap();
    let hypervisor = Hypervisor::connect(daemon().uri()).unwrap();
    let disk = hypervisor
        .create_volume(&name, "disk.qcow2", 1 << 20)
        .unwrap();
    let vm = unique("sp-user");
    hypervisor
        .define(&domain_with_disk(&vm, &disk.path))
        .unwrap();

    let in_use = remove_pool(store.store(), daemon().uri(), &name).unwrap_err();
    assert_eq!(in_use.kind, ErrorKind::Conflict);
    assert!(in_use.message.contains(&vm), "{}", in_use.message);
    assert_eq!(libvirt_pool(&name).unwrap().state, "running");
    assert_eq!(current(&store).1, Some(2));

    hypervisor
        .undefine(&vm, mfv_vm::VolumePolicy::Keep)
        .unwrap();
    let removed = remove_pool(store.store(), daemon().uri(), &name).unwrap();
    assert_eq!(
        removed,
        Response::PoolRemoved {
            generation: Some(3),
            was_defined: true
        }
    );
    assert!(libvirt_pool(&name).is_none());
    assert!(path.join("disk.qcow2").is_file(), "the data stays");
    assert_eq!(current(&store), (CONFIG.to_owned(), Some(3)));

    let gone = remove_pool(store.store(), daemon().uri(), &name).unwrap_err();
    assert_eq!(
        (gone.kind, gone.field.as_deref()),
        (ErrorKind::NotFound, Some("name"))
    );
}

#[test]
fn an_nfs_pool_whose_mount_fails_is_not_kept_in_libvirt_nor_saved() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let name = unique("sp-nfs");
    // Nothing serves NFS here: libvirt defines the pool, the mount fails, and the pool goes.
    let error = add_pool(
        store.store(),
        daemon().uri(),
        &PoolSpec {
            name: name.clone(),
            kind: PoolKind::Nfs,
            path: Some(dir.path().join("mnt").display().to_string()),
            device: None,
            server: Some("127.0.0.1".to_owned()),
            export: Some("/export/vms".to_owned()),
        },
        None,
    )
    .unwrap_err();
    assert_eq!(
        (error.kind, error.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("server"))
    );
    assert!(
        error.message.contains("127.0.0.1:/export/vms")
            && error.message.contains("nothing was saved"),
        "{}",
        error.message
    );
    assert!(libvirt_pool(&name).is_none());
    assert_eq!(current(&store), (CONFIG.to_owned(), Some(1)));
}

/// Makes the store's next save fail (a directory where it writes its temporary file), while
/// it still reads.
fn break_saves(dir: &Path) {
    std::fs::create_dir_all(dir.join("store/.mfv.toml.new/in-the-way")).unwrap();
}

#[test]
fn a_save_that_fails_leaves_libvirt_as_the_configuration_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let kept = unique("sp-kept");
    add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&kept, &dir.path().join("kept")),
        None,
    )
    .unwrap();
    break_saves(dir.path());

    // An added pool libvirt made is forgotten again.
    let name = unique("sp-unsaved");
    let error = add_pool(
        store.store(),
        daemon().uri(),
        &dir_pool(&name, &dir.path().join("unsaved")),
        None,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Internal);
    assert!(
        error.message.contains("the pool was not added"),
        "{}",
        error.message
    );
    assert!(libvirt_pool(&name).is_none());
    // A removed pool libvirt stopped is made again.
    let error = remove_pool(store.store(), daemon().uri(), &kept).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Internal);
    assert!(
        error.message.contains("the pool was kept"),
        "{}",
        error.message
    );
    assert_eq!(libvirt_pool(&kept).unwrap().state, "running");
    assert_eq!(current(&store).1, Some(2));
}

#[test]
fn without_libvirt_nothing_is_saved_and_the_answer_says_libvirt_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let away = format!(
        "qemu+unix:///system?socket={}",
        dir.path().join("no-socket").display()
    );
    let error = add_pool(
        store.store(),
        &away,
        &dir_pool("images", &dir.path().join("images")),
        None,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{}", error.message);
    assert_eq!(current(&store), (CONFIG.to_owned(), Some(1)));
    let error = remove_pool(store.store(), &away, "images").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{}", error.message);
}
