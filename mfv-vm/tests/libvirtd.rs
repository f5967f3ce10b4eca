//! The libvirt layer against a real private libvirtd running real QEMU (TCG) guests.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed fixture fails the test"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Result;
use mfv_tests::libvirtd::{
    GUEST_HEARD, GUEST_POWER_BUTTON, GUEST_READY, GuestFiles, PrivateLibvirtd, unique,
};
use mfv_vm::{Hypervisor, SerialConsole, ShutdownOutcome, VirtError, VmState, VolumePolicy};

struct Shared {
    daemon: PrivateLibvirtd,
    guest: GuestFiles,
}

/// One daemon and one pair of guest initrds for the whole test binary.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let daemon = PrivateLibvirtd::start().unwrap();
        let guest = GuestFiles::write_to(daemon.dir()).unwrap();
        Shared { guest, daemon }
    })
}

/// Domain XML for the test guest, generated from a [`mfv_vm::VmSpec`]: direct kernel boot,
/// a serial console, and optionally one existing qcow2 image as `vda`.
fn guest_xml(
    name: &str,
    kernel: &Path,
    initrd: &Path,
    disk: Option<&str>,
    memory_mib: u64,
) -> Result<String> {
    let disks: Vec<_> = disk
        .map(|path| serde_json::json!({"target": "vda", "source": {"image": {"path": path}}}))
        .into_iter()
        .collect();
    let spec: mfv_vm::VmSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": memory_mib,
        "serial_console": true,
        "kernel_boot": {"kernel": kernel, "initrd": initrd, "cmdline": "console=ttyS0 quiet"},
        "disks": disks,
    }))?;
    Ok(spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)
}

fn connect() -> Hypervisor {
    Hypervisor::connect(shared().daemon.uri()).unwrap()
}

/// A dir pool private to one test.
fn pool(hypervisor: &Hypervisor, name: &str) -> PathBuf {
    let path = shared().daemon.dir().join(name);
    hypervisor.ensure_dir_pool(name, &path).unwrap();
    path
}

#[test]
fn guest_boots_prints_on_serial_and_stops() -> Result<()> {
    let hypervisor = connect();
    let pool_name = unique("life-pool");
    pool(&hypervisor, &pool_name);
    let disk = hypervisor.create_volume(&pool_name, "root.qcow2", 64 << 20)?;
    let name = unique("life");
    let shared = shared();
    let xml = guest_xml(
        &name,
        &shared.guest.kernel,
        &shared.guest.initrd,
        Some(&disk.path),
        128,
    )?;
    let mut events = hypervisor.lifecycle_events(Duration::from_millis(50));
    events.next_within(Duration::ZERO)?;

    assert_eq!(hypervisor.define(&xml)?, name);
    let started = Instant::now();
    hypervisor.start(&name)?;
    let start_time = started.elapsed();
    let mut console = hypervisor.open_serial_console(&name)?;
    let output = console
        .wait_for(GUEST_READY, Duration::from_secs(60))
        .map_err(|error| anyhow::anyhow!("{error}\n{}", shared.daemon.qemu_log(&name)))?;
    eprintln!(
        "start took {:.2} s, serial line after {:.2} s",
        start_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(output.contains(GUEST_READY));

    let mut seen_running = false;
    while let Some(event) = events.next_within(Duration::from_millis(200))? {
        seen_running |= event.name == name && event.to == Some(VmState::Running);
    }
    assert!(seen_running, "no lifecycle event for the start");

    let info = hypervisor.info(&name)?;
    assert_eq!(info.summary.state, VmState::Running);
    assert_eq!(info.vcpus, 1);
    assert_eq!(info.max_memory_kib, 128 * 1024);
    assert!(info.cpu_time_ns > 0);
    assert_eq!(info.disks.len(), 1, "{info:?}");
    assert_eq!(info.disks[0].target, "vda");
    assert_eq!(hypervisor.vnc_endpoint(&name)?, None);

    hypervisor.suspend(&name)?;
    assert_eq!(hypervisor.info(&name)?.summary.state, VmState::Paused);
    assert!(matches!(
        hypervisor.suspend(&name),
        Err(VirtError::WrongState { .. })
    ));
    hypervisor.resume(&name)?;
    hypervisor.reset(&name)?;
    assert!(matches!(
        hypervisor.start(&name),
        Err(VirtError::WrongState { .. })
    ));

    // The busybox guest ignores the ACPI power button, so the deadline forces it off.
    let stopping = Instant::now();
    let outcome = hypervisor.shutdown(&name, Duration::from_secs(2))?;
    assert_eq!(outcome, ShutdownOutcome::ForcedOff);
    assert!(stopping.elapsed() < Duration::from_secs(10));
    assert_eq!(
        hypervisor.shutdown(&name, Duration::from_secs(1))?,
        ShutdownOutcome::AlreadyOff
    );

    hypervisor.start(&name)?;
    hypervisor.force_off(&name)?;
    assert_eq!(hypervisor.info(&name)?.summary.state, VmState::ShutOff);

    hypervisor.undefine(&name, VolumePolicy::DeleteDisks)?;
    assert!(matches!(
        hypervisor.info(&name),
        Err(VirtError::NotFound { .. })
    ));
    assert!(
        !PathBuf::from(&disk.path).exists(),
        "the disk volume was not deleted"
    );
    assert!(hypervisor.list_volumes(&pool_name)?.is_empty());
    Ok(())
}

/// Defines and starts a diskless guest booting `initrd` and waits for its first serial
/// line, so that a [`PowerButton::PowersOff`] guest already watches the power button.
fn start_ready_guest(hypervisor: &Hypervisor, name: &str, initrd: &Path) -> Result<SerialConsole> {
    let shared = shared();
    hypervisor.define(&guest_xml(name, &shared.guest.kernel, initrd, None, 128)?)?;
    hypervisor.start(name)?;
    let mut console = hypervisor.open_serial_console(name)?;
    console
        .wait_for(GUEST_READY, Duration::from_secs(60))
        .map_err(|error| anyhow::anyhow!("{error}\n{}", shared.daemon.qemu_log(name)))?;
    Ok(console)
}

#[test]
fn acpi_shutdown_of_a_cooperating_guest_is_graceful_before_the_deadline() -> Result<()> {
    let hypervisor = connect();
    let name = unique("acpi");
    let mut console = start_ready_guest(&hypervisor, &name, &shared().guest.acpi_initrd)?;

    let deadline = Duration::from_secs(30);
    let stopping = Instant::now();
    let outcome = hypervisor.shutdown(&name, deadline)?;
    let took = stopping.elapsed();
    eprintln!("graceful ACPI shutdown took {:.2} s", took.as_secs_f64());
    assert_eq!(outcome, ShutdownOutcome::Graceful);
    assert!(took < deadline, "{took:?}");
    assert_eq!(hypervisor.info(&name)?.summary.state, VmState::ShutOff);
    // The guest itself saw the power button and powered off.
    let output = console.wait_for(GUEST_POWER_BUTTON, Duration::from_secs(5))?;
    assert!(output.contains(GUEST_POWER_BUTTON), "{output}");
    hypervisor.undefine(&name, VolumePolicy::Keep)?;
    Ok(())
}

#[test]
fn acpi_shutdown_of_a_guest_ignoring_it_forces_it_off_at_the_deadline() -> Result<()> {
    let hypervisor = connect();
    let name = unique("deaf");
    let mut console = start_ready_guest(&hypervisor, &name, &shared().guest.initrd)?;

    let deadline = Duration::from_secs(3);
    let stopping = Instant::now();
    let outcome = hypervisor.shutdown(&name, deadline)?;
    let took = stopping.elapsed();
    assert_eq!(outcome, ShutdownOutcome::ForcedOff);
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(hypervisor.info(&name)?.summary.state, VmState::ShutOff);
    // The guest kept printing until it was forced off and never saw the power button.
    let error = console
        .wait_for(GUEST_POWER_BUTTON, Duration::from_secs(2))
        .unwrap_err();
    assert!(matches!(error, VirtError::Timeout { .. }), "{error}");
    assert!(
        String::from_utf8_lossy(console.received())
            .matches(GUEST_READY)
            .count()
            >= 2
    );
    hypervisor.undefine(&name, VolumePolicy::Keep)?;
    Ok(())
}

#[test]
fn a_console_ends_when_another_client_takes_it_over_or_the_vm_stops() -> Result<()> {
    let hypervisor = connect();
    let name = unique("takeover");
    let mut first = start_ready_guest(&hypervisor, &name, &shared().guest.initrd)?;
    assert!(!first.is_closed());
    let mut second = hypervisor.open_serial_console(&name)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first.is_closed() {
        assert!(Instant::now() < deadline, "the first console stayed open");
        first.next_output(Duration::from_millis(200));
    }
    assert_eq!(first.next_output(Duration::from_millis(10)), None);

    let mut streamed = Vec::new();
    while !String::from_utf8_lossy(&streamed).contains(GUEST_READY) {
        assert!(Instant::now() < deadline, "{streamed:?}");
        streamed.extend(
            second
                .next_output(Duration::from_secs(1))
                .unwrap_or_default(),
        );
    }
    assert!(
        second.received().is_empty(),
        "next_output kept what it handed over"
    );
    hypervisor.force_off(&name)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !second.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the console stayed open after the VM stopped"
        );
        second.next_output(Duration::from_millis(200));
    }
    hypervisor.undefine(&name, VolumePolicy::Keep)?;
    Ok(())
}

#[test]
fn the_console_takes_typed_lines_and_the_vnc_display_opens_without_its_password() -> Result<()> {
    let hypervisor = connect();
    let shared = shared();
    let name = unique("consoles");
    let spec: mfv_vm::VmSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": 128,
        "kernel_boot": {
            "kernel": shared.guest.kernel, "initrd": shared.guest.initrd,
            "cmdline": "console=ttyS0 quiet",
        },
    }))?;
    // The display every VM gets by default listens nowhere: no port, no password.
    assert!(spec.vnc.enabled && spec.vnc.password.is_none());
    hypervisor.define(&spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)?;
    let stopped = hypervisor.open_vnc(&name).unwrap_err();
    assert!(
        matches!(stopped, VirtError::WrongState { .. }),
        "{stopped:?}"
    );
    hypervisor.start(&name)?;

    let mut console = hypervisor.open_serial_console(&name)?;
    console
        .wait_for(GUEST_READY, Duration::from_secs(60))
        .map_err(|error| anyhow::anyhow!("{error}\n{}", shared.daemon.qemu_log(&name)))?;
    // The input half works from another thread while the console is being read.
    let input = console.input();
    std::thread::spawn(move || input.send(b"typed here\r"))
        .join()
        .unwrap()?;
    console.wait_for(
        &format!("{GUEST_HEARD} typed here"),
        Duration::from_secs(20),
    )?;

    // No password, no port: the socket speaks RFB at once.
    assert_eq!(hypervisor.vnc_endpoint(&name)?, None);
    let mut vnc = hypervisor.open_vnc(&name)?;
    vnc.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut greeting = [0u8; 12];
    std::io::Read::read_exact(&mut vnc, &mut greeting)?;
    assert_eq!(&greeting, b"RFB 003.008\n");

    // A dropped console lets go of the VM: its input no longer reaches it.
    let input = console.input();
    drop(console);
    let closed = input.send(b"gone\r").unwrap_err();
    assert!(
        matches!(closed, VirtError::ConsoleClosed { .. }),
        "{closed:?}"
    );
    assert!(closed.to_string().contains("is closed"), "{closed}");
    hypervisor.force_off(&name)?;
    hypervisor.undefine(&name, VolumePolicy::Keep)?;

    let plain = unique("no-vnc");
    let mut spec = spec;
    spec.name.clone_from(&plain);
    spec.vnc = mfv_vm::VncSpec::NONE;
    hypervisor.define(&spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)?;
    hypervisor.start(&plain)?;
    let error = hypervisor.open_vnc(&plain).unwrap_err();
    assert!(matches!(error, VirtError::NoVncDisplay { .. }), "{error:?}");
    assert!(error.to_string().contains("has no VNC display"), "{error}");
    hypervisor.force_off(&plain)?;
    hypervisor.undefine(&plain, VolumePolicy::Keep)?;
    Ok(())
}

#[test]
fn too_much_memory_says_not_enough_memory() -> Result<()> {
    let hypervisor = connect();
    let shared = shared();
    let name = unique("huge");
    hypervisor.define(&guest_xml(
        &name,
        &shared.guest.kernel,
        &shared.guest.initrd,
        None,
        4 << 20,
    )?)?;
    let error = hypervisor.start(&name).unwrap_err();
    assert!(
        matches!(error, VirtError::NotEnoughMemory { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("not enough memory"), "{error}");
    hypervisor.undefine(&name, VolumePolicy::Keep)?;
    Ok(())
}

#[test]
fn snapshot_revert_returns_to_the_shut_off_state() -> Result<()> {
    let hypervisor = connect();
    let pool_name = unique("snap-pool");
    pool(&hypervisor, &pool_name);
    let disk = hypervisor.create_volume(&pool_name, "root.qcow2", 32 << 20)?;
    let shared = shared();
    let name = unique("snap");
    hypervisor.define(&guest_xml(
        &name,
        &shared.guest.kernel,
        &shared.guest.initrd,
        Some(&disk.path),
        128,
    )?)?;

    let taken = Instant::now();
    let snapshot = hypervisor.create_snapshot(&name, "clean", "before first boot")?;
    eprintln!(
        "snapshot of a shut-off VM took {:.2} s",
        taken.elapsed().as_secs_f64()
    );
    assert_eq!(snapshot.name, "clean");
    assert_eq!(snapshot.vm_state, "shutoff");
    assert!(snapshot.current);
    let listed = hypervisor.list_snapshots(&name)?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].description, "before first boot");

    hypervisor.start(&name)?;
    hypervisor.revert_snapshot(&name, "clean")?;
    assert_eq!(hypervisor.info(&name)?.summary.state, VmState::ShutOff);

    hypervisor.delete_snapshot(&name, "clean")?;
    assert!(hypervisor.list_snapshots(&name)?.is_empty());
    assert!(matches!(
        hypervisor.revert_snapshot(&name, "clean"),
        Err(VirtError::NotFound { .. })
    ));
    hypervisor.undefine(&name, VolumePolicy::DeleteDisks)?;
    Ok(())
}

#[test]
fn volumes_upload_clone_resize() -> Result<()> {
    let hypervisor = connect();
    let pool_name = unique("vol-pool");
    let pool_path = pool(&hypervisor, &pool_name);
    hypervisor.ensure_dir_pool(&pool_name, &pool_path)?;

    let iso = shared().daemon.dir().join(format!("{pool_name}.iso"));
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    fs::write(&iso, &content)?;
    let mut reports = Vec::new();
    let uploaded = hypervisor.upload_volume(&pool_name, "install.iso", &iso, &mut |progress| {
        reports.push(progress)
    })?;
    assert_eq!(fs::read(&uploaded.path)?, content);
    assert_eq!(uploaded.capacity_bytes, content.len() as u64);
    assert!(reports.len() > 2, "{reports:?}");
    assert!(reports.windows(2).all(|pair| pair[0].sent <= pair[1].sent));
    let last = reports.last().unwrap();
    assert_eq!(
        (last.sent, last.total),
        (content.len() as u64, content.len() as u64)
    );

    let base = hypervisor.create_volume(&pool_name, "base.qcow2", 16 << 20)?;
    let clone = hypervisor.clone_volume(&pool_name, "base.qcow2", "clone.qcow2")?;
    assert_eq!(clone.capacity_bytes, base.capacity_bytes);
    let info = std::process::Command::new("qemu-img")
        .args(["info", "-U", &clone.path])
        .output()?;
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains(&format!("backing file: {}", base.path)),
        "{info}"
    );

    let grown = hypervisor.resize_volume(&pool_name, "base.qcow2", 32 << 20)?;
    assert_eq!(grown.capacity_bytes, 32 << 20);
    assert!(matches!(
        hypervisor.resize_volume(&pool_name, "base.qcow2", 1 << 20),
        Err(VirtError::Unsupported { .. })
    ));
    let names: Vec<_> = hypervisor
        .list_volumes(&pool_name)?
        .into_iter()
        .map(|volume| volume.name)
        .collect();
    assert_eq!(names, ["base.qcow2", "clone.qcow2", "install.iso"]);

    let missing = hypervisor
        .upload_volume(
            &pool_name,
            "x.iso",
            &pool_path.join("missing.iso"),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(missing.to_string().contains("missing.iso"), "{missing}");
    for name in names {
        hypervisor.delete_volume(&pool_name, &name)?;
    }
    Ok(())
}

#[test]
fn an_nfs_pool_whose_mount_fails_stays_defined_and_a_different_one_is_refused() -> Result<()> {
    let hypervisor = connect();
    let name = unique("nfs-pool");
    let mount_point = shared().daemon.dir().join(&name);
    // Nothing serves NFS on this host (and its kernel may have no NFS client): the mount
    // fails, and the error names the server and the export.
    let failed = |result: Result<(), VirtError>| match result {
        Err(VirtError::NfsMount {
            name: pool, share, ..
        }) => {
            assert_eq!(
                (pool.as_str(), share.as_str()),
                (name.as_str(), "127.0.0.1:/export/vms")
            );
        }
        other => panic!("expected a mount failure, got {other:?}"),
    };
    failed(hypervisor.ensure_nfs_pool(&name, "127.0.0.1", "/export/vms", &mount_point));
    assert!(mount_point.is_dir(), "the mount point was not made");
    // Defined, so the same call finds it and only tries the mount again.
    failed(hypervisor.ensure_nfs_pool(&name, "127.0.0.1", "/export/vms", &mount_point));
    let error = hypervisor
        .ensure_nfs_pool(&name, "127.0.0.1", "/export/other", &mount_point)
        .unwrap_err();
    assert!(matches!(error, VirtError::PoolConflict { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "storage pool {name:?} is already defined as nfs 127.0.0.1:/export/vms (version 4) \
             at {0}, not as nfs 127.0.0.1:/export/other (version 4) at {0}: undefine it or \
             choose another name",
            mount_point.display()
        )
    );
    // A dir pool of the same name is another definition too.
    let error = hypervisor
        .ensure_nfs_pool(
            &unique_dir_pool(&hypervisor),
            "127.0.0.1",
            "/export/vms",
            &mount_point,
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is already defined as a dir pool at "),
        "{error}"
    );
    Ok(())
}

/// The name of a new dir pool.
fn unique_dir_pool(hypervisor: &Hypervisor) -> String {
    let name = unique("dir-pool");
    pool(hypervisor, &name);
    name
}

#[test]
fn export_then_restore_into_an_empty_daemon() -> Result<()> {
    let shared = shared();
    let export = tempfile::tempdir()?;
    let names = [unique("keep-a"), unique("keep-b")];
    // keep-a has a qcow2 disk with a snapshot: the data is in the image, the metadata in the
    // export.
    let disk = export.path().join("keep-a.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("32M")
        .status()?;
    assert!(made.success(), "qemu-img create failed");
    {
        let first = PrivateLibvirtd::start()?;
        let hypervisor = Hypervisor::connect(first.uri())?;
        for (name, disk) in names.iter().zip([disk.to_str(), None]) {
            hypervisor.define(&guest_xml(
                name,
                &shared.guest.kernel,
                &shared.guest.initrd,
                disk,
                96,
            )?)?;
        }
        hypervisor.set_autostart(&names[1], true)?;
        hypervisor.create_snapshot(&names[0], "clean", "before first boot")?;
        assert_eq!(hypervisor.export_definitions(export.path())?, names);
    }
    // A new daemon has empty state, as after the appliance reboots.
    let second = PrivateLibvirtd::start()?;
    let hypervisor = Hypervisor::connect(second.uri())?;
    assert!(hypervisor.list()?.is_empty());
    let report = hypervisor.restore_definitions(export.path())?;
    assert_eq!(report.defined, names);
    assert!(report.updated.is_empty() && report.unchanged.is_empty());
    assert_eq!(report.snapshots, [format!("{}/clean", names[0])]);
    let snapshots = hypervisor.list_snapshots(&names[0])?;
    assert_eq!(snapshots.len(), 1);
    assert!(snapshots[0].current);
    assert_eq!(snapshots[0].description, "before first boot");
    hypervisor.revert_snapshot(&names[0], "clean")?;
    let again = hypervisor.restore_definitions(export.path())?;
    assert_eq!(again.unchanged, names, "restoring twice changed something");
    assert!(again.snapshots.is_empty(), "{again:?}");
    let listed = hypervisor.list()?;
    assert_eq!(listed.len(), 2);
    assert!(!listed[0].autostart && listed[1].autostart);

    let started = hypervisor.start_autostart(&[])?;
    assert_eq!(started.started, [names[1].clone()]);
    assert!(started.failed.is_empty(), "{:?}", started.failed);
    assert_eq!(
        hypervisor.start_autostart(&[])?.already_running,
        [names[1].clone()]
    );
    hypervisor.force_off(&names[1])?;
    Ok(())
}

#[test]
fn media_is_changed_and_ejected_on_a_running_vm_and_kept_by_its_definition() -> Result<()> {
    let hypervisor = connect();
    let shared = shared();
    let first = shared.daemon.dir().join(format!("{}.iso", unique("first")));
    let second = shared
        .daemon
        .dir()
        .join(format!("{}.iso", unique("second")));
    fs::write(&first, vec![0u8; 64 * 1024])?;
    fs::write(&second, vec![1u8; 64 * 1024])?;
    let name = unique("media");
    let spec: mfv_vm::VmSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": 128,
        "serial_console": true,
        "kernel_boot": {
            "kernel": shared.guest.kernel, "initrd": shared.guest.initrd,
            "cmdline": "console=ttyS0 quiet"
        },
        "cdrom": first,
    }))?;
    hypervisor.define(&spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)?;
    hypervisor.start(&name)?;

    hypervisor.change_media(&name, Some(&second))?;
    let live = hypervisor.domain_xml(&name)?;
    assert!(live.contains(&second.display().to_string()), "{live}");
    assert!(!live.contains(&first.display().to_string()), "{live}");
    // The running VM's definition reads back as a spec with its drive, not as kept XML.
    let read = mfv_vm::VmSpec::from_domain_xml(&live)?;
    assert_eq!(read.spec.cdrom.as_deref(), Some(second.as_path()), "{live}");
    assert!(
        !read.preserved.iter().any(|kept| kept.contains("disk")),
        "{:?} in {live}",
        read.preserved
    );
    hypervisor.change_media(&name, None)?;
    let live = hypervisor.domain_xml(&name)?;
    assert!(!live.contains(&second.display().to_string()), "{live}");
    assert!(live.contains("device='cdrom'"), "{live}");

    // A running VM's drive takes only an image that is there (a stopped one's definition
    // is not checked until it starts).
    let missing = shared.daemon.dir().join("missing.iso");
    let error = hypervisor.change_media(&name, Some(&missing)).unwrap_err();
    assert!(
        matches!(&error, VirtError::MediaUnreadable { path, .. } if *path == missing),
        "{error:?}"
    );

    // The definition kept the eject: the stopped VM's drive is empty, and takes media.
    hypervisor.force_off(&name)?;
    let stopped = hypervisor.domain_xml(&name)?;
    assert!(!stopped.contains(".iso"), "{stopped}");
    hypervisor.change_media(&name, Some(&first))?;
    assert!(
        hypervisor
            .domain_xml(&name)?
            .contains(&first.display().to_string())
    );
    hypervisor.undefine(&name, VolumePolicy::Keep)?;

    let driveless = unique("no-drive");
    hypervisor.define(&guest_xml(
        &driveless,
        &shared.guest.kernel,
        &shared.guest.initrd,
        None,
        128,
    )?)?;
    let error = hypervisor
        .change_media(&driveless, Some(&first))
        .unwrap_err();
    assert!(matches!(error, VirtError::NoCdromDrive { .. }), "{error:?}");
    assert!(error.to_string().contains("no CD-ROM drive"), "{error}");
    hypervisor.undefine(&driveless, VolumePolicy::Keep)?;
    assert!(matches!(
        hypervisor.change_media(&driveless, None),
        Err(VirtError::NotFound { .. })
    ));
    Ok(())
}

#[test]
fn a_volume_is_found_by_pool_and_name() -> Result<()> {
    let hypervisor = connect();
    let pool_name = unique("iso-pool");
    let dir = pool(&hypervisor, &pool_name);
    let created = hypervisor.create_volume(&pool_name, "disc.qcow2", 1 << 20)?;
    assert_eq!(
        hypervisor.volume_path(&pool_name, "disc.qcow2")?,
        created.path
    );
    assert!(created.path.starts_with(&dir.display().to_string()));
    assert!(matches!(
        hypervisor.volume_path(&pool_name, "missing.iso"),
        Err(VirtError::NotFound { .. })
    ));
    assert!(matches!(
        hypervisor.volume_path("no-such-pool", "disc.qcow2"),
        Err(VirtError::NotFound { .. })
    ));
    Ok(())
}

#[test]
fn a_clone_whose_copy_fails_leaves_nothing_and_image_disks_are_copied_in_their_pool() -> Result<()>
{
    let hypervisor = connect();
    let pool_name = unique("clone-pool");
    pool(&hypervisor, &pool_name);
    let pattern: Vec<u8> = (0..65536u32).map(|index| (index % 253) as u8).collect();
    let mut paths = Vec::new();
    for volume in ["a.img", "b.img"] {
        let info = hypervisor.create_volume_as(
            &pool_name,
            volume,
            pattern.len() as u64,
            mfv_vm::ImageFormat::Raw,
        )?;
        hypervisor.write_volume_at(
            &pool_name,
            volume,
            0,
            pattern.len() as u64,
            &mut pattern.as_slice(),
        )?;
        paths.push(info.path);
    }
    let shared = shared();
    let spec = |name: &str, disks: serde_json::Value| -> Result<String> {
        let spec: mfv_vm::VmSpec = serde_json::from_value(serde_json::json!({
            "name": name, "vcpus": 1, "memory_mib": 128,
            "kernel_boot": {"kernel": shared.guest.kernel, "initrd": shared.guest.initrd},
            "disks": disks,
        }))?;
        Ok(spec.to_domain_xml(&mfv_vm::HostCapabilities::tcg_only())?)
    };
    let source = unique("clone-src");
    hypervisor.define(&spec(
        &source,
        serde_json::json!([
            {"target": "vda", "source": {"image": {"path": paths[0], "format": "raw"}}},
            {"target": "vdb", "source": {"image": {"path": paths[1], "format": "raw"}}},
        ]),
    )?)?;

    // The second copy's name is taken after the plan: the first copy is removed again.
    let clone = unique("clone");
    let plan = hypervisor.plan_clone(&source, &clone)?;
    assert_eq!(plan.copies.len(), 2);
    let blocker = format!("{clone}-vdb.img");
    hypervisor.create_volume_as(&pool_name, &blocker, 4096, mfv_vm::ImageFormat::Raw)?;
    let mut steps = Vec::new();
    let failed = hypervisor
        .clone_vm(&plan, &mfv_vm::HostCapabilities::tcg_only(), &mut |step| {
            steps.push((step.copied, step.copying.map(|copy| copy.target.clone())));
        })
        .unwrap_err();
    assert!(
        matches!(&failed, mfv_vm::CloneError::Copy { copy, .. } if copy.target == "vdb"),
        "{failed}"
    );
    assert!(failed.to_string().contains(&blocker), "{failed}");
    assert_eq!(
        steps,
        [(0, Some("vda".to_owned())), (1, Some("vdb".to_owned()))]
    );
    assert!(matches!(
        hypervisor.volume_info(&pool_name, &format!("{clone}-vda.img")),
        Err(VirtError::NotFound { .. })
    ));
    assert!(matches!(
        hypervisor.info(&clone),
        Err(VirtError::NotFound { .. })
    ));

    // Without the blocker the same plan succeeds; the disks stay image files, on the copies.
    hypervisor.delete_volume(&pool_name, &blocker)?;
    let name = hypervisor.clone_vm(&plan, &mfv_vm::HostCapabilities::tcg_only(), &mut |_| {})?;
    assert_eq!(name, clone);
    let imported = mfv_vm::VmSpec::from_domain_xml(&hypervisor.domain_xml(&clone)?)?;
    for (disk, target) in imported.spec.disks.iter().zip(["vda", "vdb"]) {
        let copy = hypervisor.volume_info(&pool_name, &format!("{clone}-{target}.img"))?;
        assert_eq!(
            disk.source,
            mfv_vm::DiskSource::Image {
                path: copy.path.clone().into(),
                format: mfv_vm::ImageFormat::Raw
            }
        );
        assert_eq!(fs::read(&copy.path)?, pattern);
    }

    // A disk outside every pool cannot be copied: refused before anything is made.
    let loose = shared.daemon.dir().join(format!("{}.img", unique("loose")));
    fs::write(&loose, &pattern)?;
    let outside = unique("clone-outside");
    hypervisor.define(&spec(
        &outside,
        serde_json::json!([{"target": "vda", "source": {"image": {"path": loose, "format": "raw"}}}]),
    )?)?;
    let refused = hypervisor.plan_clone(&outside, &unique("x")).unwrap_err();
    assert!(
        matches!(refused, mfv_vm::CloneError::NotCopyable { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("in no storage pool"),
        "{refused}"
    );

    for vm in [&clone, &source, &outside] {
        hypervisor.undefine(vm, VolumePolicy::Keep)?;
    }
    Ok(())
}

#[test]
fn a_defined_network_is_listed_inactive_with_its_bridge() -> Result<()> {
    let name = unique("lab-net");
    // Defined, never started: no bridge is made on the host.
    shared().daemon.define_network(&name, "mfvlab0")?;
    let networks = connect().list_networks()?;
    let lab = networks
        .iter()
        .find(|network| network.name == name)
        .ok_or_else(|| anyhow::anyhow!("{name} is not in {networks:?}"))?;
    assert_eq!(
        *lab,
        mfv_vm::NetworkInfo {
            name: name.clone(),
            active: false,
            autostart: false,
            bridge: Some("mfvlab0".to_owned()),
            forward_mode: "isolated".to_owned(),
        }
    );
    let mut names: Vec<&str> = networks
        .iter()
        .map(|network| network.name.as_str())
        .collect();
    let listed = names.clone();
    names.sort_unstable();
    assert_eq!(listed, names, "sorted by name");
    Ok(())
}
