//! Fast checks of the libvirt layer against libvirt's in-process test driver
//! (`test:///default`). The real daemon tests are in libvirtd.rs.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed fixture fails the test"
)]

use std::fs;
use std::time::Duration;

use mfv_tests::libvirtd::unique;
use mfv_vm::{
    Hypervisor, INDEX_FILE, ImageFormat, ObjectKind, ShutdownOutcome, VirtError, VmState,
    VolumePolicy,
};

const URI: &str = "test:///default";

fn connect() -> Hypervisor {
    Hypervisor::connect(URI).unwrap()
}

fn xml(name: &str, extra_os: &str, disk_format: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type>hvm</type>{extra_os}</os><devices>\
         <disk type='file' device='disk'><driver name='qemu' type='{disk_format}'/>\
         <source file='/nonexistent/{name}.img'/><target dev='vda' bus='virtio'/></disk>\
         </devices></domain>"
    )
}

#[test]
fn the_listing_gives_each_vms_state_autostart_and_persistence() {
    let hypervisor = connect();
    let [off, running, paused] = ["off", "run", "pause"].map(unique);
    for name in [&off, &running, &paused] {
        hypervisor.define(&xml(name, "", "qcow2")).unwrap();
    }
    hypervisor.set_autostart(&running, true).unwrap();
    hypervisor.start(&running).unwrap();
    hypervisor.start(&paused).unwrap();
    hypervisor.suspend(&paused).unwrap();

    let listed = hypervisor.list().unwrap();
    let names: Vec<&str> = listed.iter().map(|vm| vm.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "the listing is sorted by name");
    let of = |name: &str| {
        let vm = listed.iter().find(|vm| vm.name == name).unwrap();
        (vm.state, vm.autostart, vm.persistent)
    };
    assert_eq!(of(&off), (VmState::ShutOff, false, true));
    assert_eq!(of(&running), (VmState::Running, true, true));
    assert_eq!(of(&paused), (VmState::Paused, false, true));
    // The test driver's own domain, defined and running from the start.
    assert_eq!(of("test"), (VmState::Running, false, true));
    let uuids: std::collections::BTreeSet<&str> =
        listed.iter().map(|vm| vm.uuid.as_str()).collect();
    assert_eq!(uuids.len(), listed.len(), "every VM is listed once");
}

#[test]
fn lifecycle_on_the_test_driver() {
    let hypervisor = connect();
    let name = unique("t-life");
    assert_eq!(hypervisor.define(&xml(&name, "", "qcow2")).unwrap(), name);
    let listed = hypervisor.list().unwrap();
    let vm = listed.iter().find(|vm| vm.name == name).unwrap();
    assert_eq!(vm.state, VmState::ShutOff);
    assert!(vm.persistent && !vm.autostart);

    assert!(matches!(
        hypervisor.suspend(&name),
        Err(VirtError::WrongState {
            operation: "suspend",
            ..
        })
    ));
    assert!(matches!(
        hypervisor.reboot(&name),
        Err(VirtError::WrongState { .. })
    ));
    hypervisor.start(&name).unwrap();
    hypervisor.suspend(&name).unwrap();
    assert_eq!(
        hypervisor.info(&name).unwrap().summary.state,
        VmState::Paused
    );
    hypervisor.resume(&name).unwrap();
    let error = hypervisor.resume(&name).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot resume VM {name:?} in its current state (running)")
    );
    let info = hypervisor.info(&name).unwrap();
    assert_eq!(info.vcpus, 1);
    assert_eq!(info.max_memory_kib, 64 * 1024);
    assert!(matches!(
        hypervisor.undefine(&name, VolumePolicy::Keep),
        Err(VirtError::WrongState { .. })
    ));
    // The test driver's guests power off at once when asked.
    assert_eq!(
        hypervisor.shutdown(&name, Duration::from_secs(5)).unwrap(),
        ShutdownOutcome::Graceful
    );
    hypervisor.set_autostart(&name, true).unwrap();
    assert!(hypervisor.info(&name).unwrap().summary.autostart);
    hypervisor
        .undefine(&name, VolumePolicy::DeleteDisks)
        .unwrap();
    assert!(matches!(
        hypervisor.start(&name),
        Err(VirtError::NotFound {
            kind: ObjectKind::Vm,
            ..
        })
    ));
}

#[test]
fn taken_name_says_so() {
    let hypervisor = connect();
    let name = unique("t-taken");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    let other = xml(&name, "", "qcow2").replace(
        "<name>",
        "<uuid>0b7c1f5e-7d3a-4f6e-9a51-1c2d3e4f5a6b</uuid><name>",
    );
    let error = hypervisor.define(&other).unwrap_err();
    assert!(
        matches!(error, VirtError::AlreadyExists { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("choose another name"), "{error}");
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
}

#[test]
fn bad_xml_is_a_libvirt_error() {
    let error = connect()
        .define("<domain type='test'><name>x</name>")
        .unwrap_err();
    assert!(
        matches!(
            error,
            VirtError::Libvirt {
                operation: "define",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn lifecycle_events_report_changes() {
    let hypervisor = connect();
    let mut events = hypervisor.lifecycle_events(Duration::from_millis(10));
    while events.next_within(Duration::ZERO).unwrap().is_some() {}
    let name = unique("t-events");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    hypervisor.start(&name).unwrap();
    let mut mine = Vec::new();
    while let Some(event) = events.next_within(Duration::from_millis(100)).unwrap() {
        if event.name == name {
            mine.push((event.from, event.to));
        }
    }
    assert_eq!(mine, [(None, Some(VmState::Running))]);
    hypervisor.force_off(&name).unwrap();
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
    let mut gone = false;
    while let Some(event) = events.next_within(Duration::from_millis(100)).unwrap() {
        gone |= event.name == name && event.to.is_none();
    }
    assert!(gone, "no event for the undefine");
}

#[test]
fn snapshots_on_the_test_driver() {
    let hypervisor = connect();
    let name = unique("t-snap");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    hypervisor.create_snapshot(&name, "one", "first").unwrap();
    hypervisor.create_snapshot(&name, "two", "").unwrap();
    let names: Vec<_> = hypervisor
        .list_snapshots(&name)
        .unwrap()
        .into_iter()
        .map(|snapshot| snapshot.name)
        .collect();
    assert_eq!(names.len(), 2);
    hypervisor.revert_snapshot(&name, "one").unwrap();
    hypervisor.delete_snapshot(&name, "two").unwrap();
    assert!(matches!(
        hypervisor.delete_snapshot(&name, "two"),
        Err(VirtError::NotFound {
            kind: ObjectKind::Snapshot,
            ..
        })
    ));
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
}

#[test]
fn snapshots_are_refused_where_libvirt_cannot() {
    let hypervisor = connect();
    let uefi = unique("t-uefi");
    hypervisor
        .define(&xml(
            &uefi,
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>",
            "qcow2",
        ))
        .unwrap();
    let error = hypervisor.create_snapshot(&uefi, "s", "").unwrap_err();
    assert!(matches!(error, VirtError::Unsupported { .. }), "{error:?}");
    assert!(error.to_string().contains("UEFI"), "{error}");
    assert!(
        error.to_string().contains("clone its disk volumes"),
        "{error}"
    );

    let raw = unique("t-raw");
    hypervisor.define(&xml(&raw, "", "raw")).unwrap();
    let error = hypervisor.create_snapshot(&raw, "s", "").unwrap_err();
    assert!(error.to_string().contains("disk vda is raw"), "{error}");
    for name in [uefi, raw] {
        hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
    }
}

#[test]
fn export_and_restore_on_the_test_driver() {
    let hypervisor = connect();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("t-persist");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    hypervisor.set_autostart(&name, true).unwrap();
    fs::write(dir.path().join("stale.xml"), "<domain/>").unwrap();
    let exported = hypervisor.export_definitions(dir.path()).unwrap();
    assert!(exported.contains(&name));
    assert!(
        !dir.path().join("stale.xml").exists(),
        "stale definition left behind"
    );
    assert!(dir.path().join(INDEX_FILE).exists());
    // What is exported is what the keeper compares in memory (other tests define VMs on the
    // same driver meanwhile, so only this one is compared).
    let definitions = hypervisor.definitions().unwrap();
    assert!(definitions.vms.contains(&name), "{:?}", definitions.vms);
    let file = format!("{name}.xml");
    assert_eq!(
        definitions.files.get(&file),
        Some(&fs::read(dir.path().join(&file)).unwrap())
    );
    assert!(definitions.files.contains_key(INDEX_FILE));

    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
    let report = hypervisor.restore_definitions(dir.path()).unwrap();
    assert!(report.defined.contains(&name), "{report:?}");
    let again = hypervisor.restore_definitions(dir.path()).unwrap();
    assert!(again.unchanged.contains(&name), "{again:?}");
    assert!(!again.defined.contains(&name) && !again.updated.contains(&name));
    assert!(hypervisor.info(&name).unwrap().summary.autostart);

    let started = hypervisor
        .start_autostart(std::slice::from_ref(&name))
        .unwrap();
    assert_eq!(started.started.first(), Some(&name));
    hypervisor.force_off(&name).unwrap();
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
}

#[test]
fn snapshot_metadata_is_exported_and_defined_again() {
    let hypervisor = connect();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("t-snapkeep");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    hypervisor.create_snapshot(&name, "base", "first").unwrap();
    hypervisor.create_snapshot(&name, "child", "").unwrap();
    hypervisor.revert_snapshot(&name, "base").unwrap();
    hypervisor.export_definitions(dir.path()).unwrap();
    for place in 0..2 {
        assert!(
            dir.path()
                .join(format!("{name}.{place}.snapshot"))
                .is_file()
        );
    }

    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
    let report = hypervisor.restore_definitions(dir.path()).unwrap();
    assert_eq!(
        report.snapshots,
        [format!("{name}/base"), format!("{name}/child")]
    );
    let snapshots = hypervisor.list_snapshots(&name).unwrap();
    let current: Vec<_> = snapshots
        .iter()
        .map(|snapshot| (snapshot.name.as_str(), snapshot.current))
        .collect();
    assert_eq!(current, [("base", true), ("child", false)]);
    assert_eq!(snapshots[0].description, "first");
    let again = hypervisor.restore_definitions(dir.path()).unwrap();
    assert!(again.snapshots.is_empty(), "{again:?}");

    // A snapshot deleted since is gone from the next export, file and all.
    hypervisor.delete_snapshot(&name, "child").unwrap();
    hypervisor.export_definitions(dir.path()).unwrap();
    assert!(!dir.path().join(format!("{name}.1.snapshot")).exists());
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
    hypervisor.export_definitions(dir.path()).unwrap();
    assert!(!dir.path().join(format!("{name}.0.snapshot")).exists());
}

#[test]
fn restore_refuses_a_snapshot_file_that_is_not_one() {
    let hypervisor = connect();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("t-badsnap");
    hypervisor.define(&xml(&name, "", "qcow2")).unwrap();
    hypervisor.export_definitions(dir.path()).unwrap();
    fs::write(dir.path().join("bad.snapshot"), "<domainsnapshot>").unwrap();
    for (file, problem) in [
        ("../x.snapshot", "is not a snapshot file name".to_owned()),
        ("x.xml", "is not a snapshot file name".to_owned()),
        ("missing.snapshot", "missing.snapshot".to_owned()),
        ("bad.snapshot", format!("{name}/s")),
    ] {
        fs::write(
            dir.path().join(INDEX_FILE),
            format!(
                r#"{{"format": "mfv-vm-definitions", "version": 1, "vms": [{{"name": "{name}",
                "uuid": "", "autostart": false, "file": "{name}.xml",
                "snapshots": [{{"name": "s", "file": "{file}", "current": false}}]}}]}}"#
            ),
        )
        .unwrap();
        let error = hypervisor.restore_definitions(dir.path()).unwrap_err();
        assert!(error.to_string().contains(&problem), "{file}: {error}");
    }
    hypervisor.undefine(&name, VolumePolicy::Keep).unwrap();
}

#[test]
fn restore_rejects_a_path_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(INDEX_FILE),
        r#"{"format": "mfv-vm-definitions", "version": 1,
            "vms": [{"name": "x", "uuid": "u", "autostart": false, "file": "../x.xml"}]}"#,
    )
    .unwrap();
    let error = connect().restore_definitions(dir.path()).unwrap_err();
    assert!(
        error.to_string().contains("not a definition file name"),
        "{error}"
    );
}

#[test]
fn volumes_on_the_test_driver() {
    let hypervisor = connect();
    let pool = unique("t-pool");
    let dir = tempfile::tempdir().unwrap();
    hypervisor.ensure_dir_pool(&pool, dir.path()).unwrap();
    hypervisor.ensure_dir_pool(&pool, dir.path()).unwrap();
    // A directory pool takes either format; an LVM pool only raw (the appliance test
    // `web` makes a VM in one).
    assert_eq!(hypervisor.pool_volume_format(&pool).unwrap(), None);
    assert!(matches!(
        hypervisor.pool_volume_format("no-such-pool"),
        Err(VirtError::NotFound {
            kind: ObjectKind::Pool,
            ..
        })
    ));
    let created = hypervisor.create_volume(&pool, "a.qcow2", 1 << 30).unwrap();
    assert_eq!(created.capacity_bytes, 1 << 30);
    assert!(matches!(
        hypervisor.create_volume(&pool, "a.qcow2", 1 << 30),
        Err(VirtError::AlreadyExists {
            kind: ObjectKind::Volume,
            ..
        })
    ));
    assert!(matches!(
        hypervisor.resize_volume(&pool, "a.qcow2", 1 << 20),
        Err(VirtError::Unsupported { .. })
    ));
    hypervisor.delete_volume(&pool, "a.qcow2").unwrap();
    assert!(matches!(
        hypervisor.delete_volume(&pool, "a.qcow2"),
        Err(VirtError::NotFound {
            kind: ObjectKind::Volume,
            ..
        })
    ));
    assert!(matches!(
        hypervisor.list_volumes("no-such-pool"),
        Err(VirtError::NotFound {
            kind: ObjectKind::Pool,
            ..
        })
    ));
}

/// Restore reads only regular files of a sane size: a link to /dev/zero, a FIFO or a huge
/// file in an export is named and refused, promptly.
#[test]
fn restore_refuses_export_files_that_are_not_regular_files() {
    let index = |file: &str| {
        format!(
            r#"{{"format": "mfv-vm-definitions", "version": 1,
                "vms": [{{"name": "x", "uuid": "u", "autostart": false, "file": "{file}"}}]}}"#
        )
    };
    let link = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", link.path().join(INDEX_FILE)).unwrap();
    let fifo = tempfile::tempdir().unwrap();
    fs::write(fifo.path().join(INDEX_FILE), index("x.xml")).unwrap();
    nix::unistd::mkfifo(
        &fifo.path().join("x.xml"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let huge = tempfile::tempdir().unwrap();
    fs::write(huge.path().join(INDEX_FILE), index("x.xml")).unwrap();
    fs::File::create(huge.path().join("x.xml"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    for (dir, expected) in [
        (&link, "index.json is a symbolic link, not a regular file"),
        (&fifo, "x.xml is a FIFO, not a regular file"),
        (&huge, "x.xml is too large (67108864 bytes, limit 1048576)"),
    ] {
        let error = connect().restore_definitions(dir.path()).unwrap_err();
        assert!(matches!(error, VirtError::ExportFile(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn pools_are_listed_with_their_sizes_and_volumes_with_the_vms_using_them() {
    let hypervisor = connect();
    let pool = unique("l-pool");
    let dir = tempfile::tempdir().unwrap();
    hypervisor.ensure_dir_pool(&pool, dir.path()).unwrap();
    let pools = hypervisor.list_pools().unwrap();
    assert!(
        pools.windows(2).all(|pair| pair[0].name < pair[1].name),
        "{pools:?}"
    );
    let listed = pools.iter().find(|listed| listed.name == pool).unwrap();
    assert_eq!(
        (listed.kind.as_str(), listed.state, listed.autostart),
        ("dir", "running", true)
    );
    assert_eq!(
        listed.path.as_deref(),
        Some(dir.path().to_str().unwrap().trim_end_matches('/'))
    );
    assert!(listed.capacity_bytes > 0, "{listed:?}");

    let raw = hypervisor
        .create_volume_as(&pool, "r.img", 1 << 20, ImageFormat::Raw)
        .unwrap();
    assert_eq!(raw.format, "raw");
    let qcow2 = hypervisor.create_volume(&pool, "q.qcow2", 1 << 20).unwrap();
    assert_eq!(qcow2.format, "qcow2");
    assert_eq!(hypervisor.volume_info(&pool, "r.img").unwrap(), raw);

    let vm = unique("user");
    let domain = format!(
        "<domain type='test'><name>{vm}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type>hvm</type></os><devices>\
         <disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
        raw.path
    );
    hypervisor.define(&domain).unwrap();
    assert_eq!(
        hypervisor.vms_using_volume(&pool, "r.img").unwrap(),
        std::slice::from_ref(&vm)
    );
    assert!(
        hypervisor
            .vms_using_volume(&pool, "q.qcow2")
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        hypervisor.vms_using_volume(&pool, "none.img"),
        Err(VirtError::NotFound {
            kind: ObjectKind::Volume,
            ..
        })
    ));
    hypervisor.undefine(&vm, VolumePolicy::Keep).unwrap();
}
