//! Acceptance tests of the booted host as a virtualization host: PID 1 starts the host daemon,
//! mfv-web (once the daemon answers), then virtlogd and libvirtd (once the web serves) and the VM
//! keeper (once libvirtd answers) in order and brings back what is killed; libvirt and QEMU from
//! the image run a guest, whose kernel prints its line on its serial port and shuts down on the
//! host's power button; a VM defined on the host survives a reboot from the same config volume and
//! its autostart starts it again; the host daemon refuses strangers and bad frames and goes on
//! serving; with `[log] remote` the boot's lines and the services' output reach a syslog server; a
//! network change made through the host daemon rolls back unless confirmed; a logical pool of the
//! configuration is built on a blank disk, holds a volume, and comes back with it after a reboot;
//! an nfs pool of the configuration is mounted from an NFS server on this host and holds the
//! volumes created in it, while one whose server refuses stays defined with the refusal on the
//! console. They boot the real image under QEMU TCG and type in its rescue shell (`mfv.rescue`),
//! whose echo of each command is never what a test waits for: each awaited line is one only the
//! output holds.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use mfv_tests::libvirtd::{GUEST_READY, GuestFiles};
use mfv_tests::nfs::NfsServer;
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, NicModel, VolumeFilesystem,
    VolumeImage,
};

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline for what QEMU inside the appliance does: it runs under TCG inside TCG.
const NESTED_TIMEOUT: Duration = Duration::from_secs(240);
/// For a guest of the host to boot its own kernel under nested TCG: about 80 s on an idle
/// machine of two cores, several times that while the machine does other work.
const NESTED_BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// Deadline for QEMU to exit once the host powers off.
const EXIT_TIMEOUT: Duration = Duration::from_secs(120);
/// A guest with no disk that QEMU inside the appliance runs (SeaBIOS finds nothing to boot).
const TINY_DOMAIN: &str = "<domain type='qemu'><name>tiny</name>\
    <memory unit='MiB'>64</memory><os><type>hvm</type></os>\
    <devices><serial type='pty'/></devices></domain>";
/// The configuration on the volume.
const CONFIG: &str = "version = 1\n[host]\nhostname = \"vmhost\"\n";

/// An ext4 config volume `config.img` in `dir` whose mfv.toml is `config`.
fn config_volume(dir: &Path, config: &str) -> anyhow::Result<PathBuf> {
    let volume = dir.join("config.img");
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", config)
        .build(&volume)?;
    Ok(volume)
}

/// The appliance with a root shell on its serial console and, when given, a config volume.
fn boot(volume: Option<&Path>) -> anyhow::Result<Guest> {
    boot_with(match volume {
        Some(volume) => vec![DiskSpec::file(DiskInterface::Virtio, volume)],
        None => Vec::new(),
    })
}

/// The appliance with a root shell on its serial console and `disks`.
fn boot_with(disks: Vec<DiskSpec>) -> anyhow::Result<Guest> {
    let mut spec = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue");
    for disk in disks {
        spec = spec.disk(disk);
    }
    let mut guest = spec.boot()?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    Ok(guest)
}

/// Types `line` and a newline in the shell.
fn type_line(guest: &mut Guest, line: &str) -> anyhow::Result<()> {
    guest.write_serial(&format!("{line}\n"))
}

/// Types `mfv host logs NAME` every two seconds until the log holds `needle`.
fn wait_for_log(guest: &mut Guest, service: &str, needle: &str) -> anyhow::Result<()> {
    // The echo of the command holds the needle, so the test waits for the marker, which
    // only the output holds (`found-in-2`), and the needle's line printed before it.
    type_line(
        guest,
        &format!(
            "until mfv host logs {service} -n 200 | grep -F '{needle}' > /tmp/found; \
             do sleep 2; done; cat /tmp/found; echo found-in-$((1+1))"
        ),
    )?;
    guest.wait_for_line("found-in-2", NESTED_TIMEOUT)?;
    Ok(())
}

/// Waits until the serial log holds every one of `needles`, in any order.
fn wait_for_all(guest: &Guest, needles: &[&str]) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + NESTED_TIMEOUT;
    loop {
        let log = guest.serial_log();
        let missing: Vec<&&str> = needles.iter().filter(|n| !log.contains(**n)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no serial line with {missing:?} within {NESTED_TIMEOUT:?}; the log ends:\n{}",
            log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn services_start_in_order_and_come_back_when_killed() -> anyhow::Result<()> {
    // A blank disk for the daemon to format.
    let mut guest = boot_with(vec![DiskSpec::blank(DiskInterface::Virtio, 32 << 20)])?;
    let started = [
        "mfv-init: service host-daemon: ready after ",
        "mfv-init: service mfv-web: started",
        "mfv-init: service mfv-web: ready after ",
        "mfv-init: service virtlogd: started",
        "mfv-init: service virtlogd: ready after ",
        "mfv-init: service libvirtd: started",
        "mfv-init: service libvirtd: ready after ",
        "mfv-init: service vm-keeper: started",
    ];
    wait_for_all(&guest, &started)?;
    let log = guest.serial_log();
    let at = |line: &str| log.find(line).unwrap_or(usize::MAX);
    // mfv-web needs only the daemon; the VM services start once it serves, libvirtd once PID 1
    // has said how VMs run; the VM keeper needs libvirtd, which needs virtlogd.
    let verdict = "mfv-init: virtualization: ";
    for (before, after) in [
        (started[0], started[1]),
        (started[2], started[3]),
        (started[2], verdict),
        (verdict, started[5]),
        (started[4], started[5]),
        (started[6], started[7]),
    ] {
        ensure!(
            at(before) < at(after),
            "{after:?} came before {before:?}:\n{log}"
        );
    }
    // mfv-web runs as its own user, with the listeners PID 1 handed over, and asked the
    // daemon whether the host is set up.
    wait_for_log(
        &mut guest,
        "mfv-web",
        "mfv-web: serving HTTPS on [::]:443 in config mode",
    )?;
    type_line(&mut guest, "ps -o user,comm | grep -F mfv-web")?;
    guest.wait_for_line("mfv-web  mfv-web", LINE_TIMEOUT)?;
    // Without a config volume the keeper says where definitions live.
    wait_for_log(
        &mut guest,
        "vm-keeper",
        "vms: no config volume: VM definitions live in RAM only",
    )?;

    type_line(&mut guest, "kill -9 $(pidof libvirtd) $(pidof mfv-web)")?;
    // The two come back in whichever order their exits were reaped.
    wait_for_all(
        &guest,
        &[
            "mfv-init: service libvirtd: exited (killed by SIGKILL)",
            "mfv-init: service libvirtd: restarted",
            "mfv-init: service mfv-web: exited (killed by SIGKILL)",
            "mfv-init: service mfv-web: restarted",
        ],
    )?;
    guest.wait_for_line("mfv-init: service libvirtd: ready after", LINE_TIMEOUT)?;
    type_line(&mut guest, "mfv host status")?;
    guest.wait_for_line("configuration   none found", LINE_TIMEOUT)?;
    // In the order they start.
    let web = guest.wait_for_line("  mfv-web          running (pid", LINE_TIMEOUT)?;
    let libvirtd = guest.wait_for_line("  libvirtd         running (pid", LINE_TIMEOUT)?;
    for line in [&libvirtd, &web] {
        ensure!(
            line.contains("1 restarts, last exit: killed by signal 9"),
            "the status does not show the restart: {line}"
        );
    }
    // A restart asked through the daemon, the daemon's own included.
    type_line(&mut guest, "mfv host restart mfv-web")?;
    guest.wait_for_line("mfv-web restarted: ", LINE_TIMEOUT)?;
    type_line(&mut guest, "mfv host restart host-daemon")?;
    let daemon = guest.wait_for_line("host-daemon restarted: ", LINE_TIMEOUT)?;
    ensure!(
        daemon.contains("(pid") && daemon.contains("1 restarts"),
        "the daemon's restart is not reported: {daemon}"
    );
    // The daemon formats a config volume only when the device is named twice.
    type_line(&mut guest, "mfv host format /dev/vda --confirm /dev/vdb")?;
    guest.wait_for_line(
        "the confirmation must repeat the device path exactly",
        LINE_TIMEOUT,
    )?;
    type_line(&mut guest, "mfv host format /dev/vda --confirm /dev/vda")?;
    guest.wait_for_line("formatted /dev/vda: ext4 labelled mfv-config", LINE_TIMEOUT)?;
    // libvirtd is back for real: it answers.
    type_line(
        &mut guest,
        "echo \"libvirt: $(virsh -c qemu:///system version | grep -c QEMU)\"",
    )?;
    guest.wait_for_line("libvirt: 2", NESTED_TIMEOUT)?;
    Ok(())
}

/// The probe's line for `case` run as `who` (`/mnt/probe/probe as UID GID`, empty for root).
fn probe_line(guest: &mut Guest, who: &str, case: &str) -> anyhow::Result<String> {
    type_line(guest, &format!("{who} /mnt/probe/probe /run/mfv/host.sock"))?;
    guest.wait_for_line(&format!("probe {case}: "), LINE_TIMEOUT)
}

#[test]
fn the_daemon_refuses_strangers_and_bad_frames_and_keeps_serving() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let probe_disk = dir.path().join("probe.img");
    VolumeImage::new(VolumeFilesystem::Vfat, "PROBE")
        .file(
            "probe",
            std::fs::read(env!("CARGO_BIN_EXE_host-socket-probe"))?,
        )
        .build(&probe_disk)?;
    let mut guest = boot_with(vec![DiskSpec::file(DiskInterface::Virtio, &probe_disk)])?;
    guest.wait_for_line("mfv-init: service host-daemon: ready after ", LINE_TIMEOUT)?;
    type_line(
        &mut guest,
        "mkdir -p /mnt/probe && modprobe vfat && mount -t vfat -o ro /dev/vda /mnt/probe \
         && echo probe-mounted",
    )?;
    guest.wait_for_line("probe-mounted", LINE_TIMEOUT)?;

    // Root, with every frame a client should not send: each is answered or ends only its own
    // connection, and the last, valid one is served.
    type_line(&mut guest, "/mnt/probe/probe /run/mfv/host.sock")?;
    let expected = [
        (
            "wrong-protocol",
            vec!["unsupported_protocol", "protocol 999"],
        ),
        (
            "malformed-hello",
            vec!["invalid_request", "not a valid hello"],
        ),
        (
            "malformed-request",
            vec!["\"server\"", "not a valid request"],
        ),
        (
            "unknown-request",
            vec!["not a valid request", "format_everything"],
        ),
        ("valid", vec!["\"services\"", "host-daemon"]),
    ];
    let mut answers = Vec::new();
    for case in [
        "wrong-protocol",
        "malformed-hello",
        "malformed-request",
        "unknown-request",
        "truncated",
        "oversized",
        "valid",
    ] {
        answers.push((
            case,
            guest.wait_for_line(&format!("probe {case}: "), LINE_TIMEOUT)?,
        ));
    }
    for (case, needles) in &expected {
        let (_, line) = answers
            .iter()
            .find(|(name, _)| name == case)
            .unwrap_or_else(|| unreachable!());
        for needle in needles {
            ensure!(line.contains(needle), "{case}: no {needle:?} in {line}");
        }
    }
    // A truncated or oversized frame gets the welcome, then the connection ends unanswered.
    for (case, line) in answers
        .iter()
        .filter(|(name, _)| ["truncated", "oversized"].contains(name))
    {
        ensure!(
            line.contains("\"server\"") && !line.contains(" | "),
            "{case}: more than the welcome: {line}"
        );
    }

    // A uid outside the socket's group cannot connect; one in the group but not on the
    // allow-list is refused by its credentials, before anything it sent is read.
    let outsider = probe_line(&mut guest, "/mnt/probe/probe as 1000 1000", "valid")?;
    ensure!(outsider.contains("Permission denied"), "{outsider}");
    let stranger = probe_line(&mut guest, "/mnt/probe/probe as 1000 900", "valid")?;
    ensure!(
        stranger.contains("not_permitted")
            && stranger.contains("uid 1000 may not use the host daemon (root and mfv-web only)"),
        "{stranger}"
    );
    type_line(&mut guest, "/mnt/probe/probe as 1000 900 mfv host status")?;
    guest.wait_for_line("uid 1000 may not use the host daemon", LINE_TIMEOUT)?;
    // The web server's user is served.
    let web = probe_line(&mut guest, "/mnt/probe/probe as 900 900", "valid")?;
    ensure!(web.contains("\"services\""), "{web}");

    // The daemon still serves, and said why it refused.
    type_line(&mut guest, "mfv host status")?;
    guest.wait_for_line("  host-daemon      running (pid", LINE_TIMEOUT)?;
    wait_for_log(&mut guest, "host-daemon", "refused pid")?;
    Ok(())
}

#[test]
fn a_vm_defined_on_the_host_survives_a_reboot_and_autostarts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = config_volume(dir.path(), CONFIG)?;

    let mut guest = boot(Some(&volume))?;
    guest.wait_for_line("mfv-init: service vm-keeper: started", LINE_TIMEOUT)?;
    wait_for_log(
        &mut guest,
        "vm-keeper",
        "vms: no VM definitions saved on the config volume yet",
    )?;
    type_line(
        &mut guest,
        &format!(
            "echo \"{TINY_DOMAIN}\" > /tmp/tiny.xml && virsh define /tmp/tiny.xml && \
             virsh autostart tiny && virsh start tiny && echo \"tiny: $(virsh domstate tiny)\""
        ),
    )?;
    guest.wait_for_line("tiny: running", NESTED_TIMEOUT)?;
    wait_for_log(
        &mut guest,
        "vm-keeper",
        "vms: definitions saved on the config volume (tiny)",
    )?;
    // Off before the host goes down: this guest has no OS to answer the ACPI request.
    type_line(&mut guest, "virsh destroy tiny && mfv host poweroff")?;
    guest.wait_for_line(
        "mfv-init: shutdown: poweroff requested by SIGTERM",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: service libvirtd: stopped", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    drop(guest);
    fsck_clean(&volume)?;

    let mut guest = boot(Some(&volume))?;
    wait_for_log(
        &mut guest,
        "vm-keeper",
        "vms: definitions restored from the config volume (current set): 1 defined",
    )?;
    wait_for_log(&mut guest, "vm-keeper", "vms: tiny started (autostart)")?;
    type_line(&mut guest, "echo \"tiny: $(virsh domstate tiny)\"")?;
    guest.wait_for_line("tiny: running", NESTED_TIMEOUT)?;
    // On a running host `mfv config set` saves through the host daemon.
    type_line(&mut guest, "mfv config set host.vm_shutdown_timeout 30")?;
    guest.wait_for_line("(through the host daemon)", LINE_TIMEOUT)?;
    type_line(&mut guest, "mfv config set host.vm_shutdown_timeout 0")?;
    guest.wait_for_line(
        "host.vm_shutdown_timeout: 0 is out of range (1 to 3600)",
        LINE_TIMEOUT,
    )?;
    Ok(())
}

#[test]
fn a_logical_pool_on_a_blank_disk_holds_volumes_across_a_reboot() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = config_volume(
        dir.path(),
        &format!(
            "{CONFIG}[[storage.pools]]\nname = \"lvm\"\nkind = \"logical\"\n\
             device = \"/dev/vdb\"\n"
        ),
    )?;
    // The blank second disk, kept across both boots: /dev/vdb.
    let blank = dir.path().join("pv.img");
    std::fs::File::create(&blank)?.set_len(128 << 20)?;
    let disks = vec![
        DiskSpec::file(DiskInterface::Virtio, &volume),
        DiskSpec::file(DiskInterface::Virtio, &blank),
    ];
    const READY: &str = "vms: storage pool lvm ready on /dev/vdb (LVM volume group lvm)";
    const LIST: &str = "echo \"volumes: $(virsh -q vol-list lvm | awk '{print $1 \"=\" $2}')\"; \
                        echo \"block device v1=$(test -b /dev/lvm/v1 && echo yes)\"";

    let mut guest = boot_with(disks.clone())?;
    wait_for_log(&mut guest, "vm-keeper", READY)?;
    type_line(
        &mut guest,
        &format!("virsh vol-create-as lvm v1 16M && {LIST}"),
    )?;
    guest.wait_for_line("volumes: v1=/dev/lvm/v1", NESTED_TIMEOUT)?;
    guest.wait_for_line("block device v1=yes", LINE_TIMEOUT)?;
    type_line(&mut guest, "mfv host poweroff")?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    drop(guest);

    // libvirt's definitions were in RAM: the keeper defines the pool again from the
    // configuration and finds the volume group, with its volume, on the disk.
    let mut guest = boot_with(disks)?;
    wait_for_log(&mut guest, "vm-keeper", READY)?;
    type_line(&mut guest, LIST)?;
    guest.wait_for_line("volumes: v1=/dev/lvm/v1", NESTED_TIMEOUT)?;
    guest.wait_for_line("block device v1=yes", LINE_TIMEOUT)?;
    Ok(())
}

/// A kernel-booted guest for QEMU inside the appliance: the tiny test guest, with its serial
/// port written to `serial` and the kernel and initrd read from `files` (a mounted disk).
fn kernel_domain(name: &str, files: &str, serial: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory>\
         <os><type>hvm</type><kernel>{files}/vmlinuz</kernel><initrd>{files}/initrd</initrd>\
         <cmdline>console=ttyS0 quiet</cmdline></os><features><acpi/></features>\
         <devices><serial type='file'><source path='{serial}'/></serial></devices></domain>"
    )
}

/// Types a loop that waits until the file `serial` holds `needle`, then waits for the line
/// it prints (`{done}-2`, which the echo of the command does not hold).
fn wait_for_serial_file(
    guest: &mut Guest,
    serial: &str,
    needle: &str,
    done: &str,
) -> anyhow::Result<String> {
    type_line(
        guest,
        &format!(
            "until grep -q {needle} {serial} 2>/dev/null; do sleep 2; done; echo {done}-$((1+1))"
        ),
    )?;
    guest.wait_for_line(&format!("{done}-2"), NESTED_BOOT_TIMEOUT)
}

#[test]
fn the_power_button_shuts_the_vms_down_then_the_host_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = config_volume(dir.path(), &format!("{CONFIG}vm_shutdown_timeout = 120\n"))?;
    let guest_files = GuestFiles::write_to(dir.path())?;
    let guest_disk = dir.path().join("guest.img");
    VolumeImage::new(VolumeFilesystem::Ext4, "GUEST")
        .file("vmlinuz", std::fs::read(&guest_files.kernel)?)
        .file("initrd", std::fs::read(&guest_files.acpi_initrd)?)
        .build(&guest_disk)?;
    let mut guest = boot_with(vec![
        DiskSpec::file(DiskInterface::Virtio, &volume),
        DiskSpec::file(DiskInterface::Virtio, &guest_disk),
    ])?;
    ensure!(
        guest
            .serial_log()
            .contains("mfv-init: power button: watching /dev/input/event"),
        "the power button is not watched"
    );
    guest.wait_for_line(
        "vms: no VM definitions saved on the config volume yet",
        NESTED_TIMEOUT,
    )?;
    let serial = "/tmp/tiny-serial.log";
    let domain = kernel_domain("tiny", "/mnt/guest", serial);
    type_line(
        &mut guest,
        &format!(
            "mkdir -p /mnt/guest && mount -o ro /dev/vdb /mnt/guest && \
             echo \"{domain}\" > /tmp/tiny.xml && virsh define /tmp/tiny.xml && \
             virsh start tiny && echo \"tiny: $(virsh domstate tiny)\""
        ),
    )?;
    // The keeper may save before or after the shell prints the state.
    wait_for_all(
        &guest,
        &[
            "tiny: running",
            "vms: definitions saved on the config volume (tiny)",
        ],
    )?;
    // The guest's kernel boots under TCG inside TCG and its init says so on its serial port.
    let started = std::time::Instant::now();
    wait_for_serial_file(&mut guest, serial, GUEST_READY, "tiny-said-ready")?;
    eprintln!(
        "the nested guest's serial line came {:.1} s after it started",
        started.elapsed().as_secs_f64()
    );
    guest.qmp("system_powerdown", serde_json::Value::Null)?;
    for line in [
        "mfv-init: shutdown: poweroff requested by the power button (SIGPWR)",
        "vms: shutting down tiny (ACPI, forced off after 120 s)",
        "vms: tiny shut down",
        "mfv-init: service vm-keeper: stopped (exit status 0)",
        "mfv-init: service libvirtd: stopped",
        "mfv-init: shutdown: poweroff now",
    ] {
        guest.wait_for_line(line, NESTED_TIMEOUT)?;
    }
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    drop(guest);
    fsck_clean(&volume)
}

#[test]
fn boot_and_service_lines_reach_the_syslog_server_of_the_configuration() -> anyhow::Result<()> {
    // The guest's connections to 10.0.2.100:601 (the default TCP syslog port) come here.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let volume = config_volume(
        dir.path(),
        &format!(
            "{CONFIG}[[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n\
             [log]\nremote = \"tcp://10.0.2.100\"\n"
        ),
    )?;
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .nic(NicModel::E1000)
        .forward_guest_connections(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 100), 601), port)
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    let messages = SyslogMessages::read(accept(&listener)?);
    guest.wait_for_line(
        "mfv-init: log: forwarding to tcp://10.0.2.100",
        LINE_TIMEOUT,
    )?;

    // The first line of the boot, logged before the network was up, as PID 1's.
    let first = messages.wait_for(&[" vmhost mfv-init 1 - - phase mounts: ok"], &guest)?;
    ensure!(
        first.starts_with("<30>1 20") && first.split(' ').nth(1).is_some_and(|t| t.ends_with('Z')),
        "not an RFC 5424 message with a UTC time: {first}"
    );
    messages.wait_for(&[" vmhost mfv-init 1 - - phase log: ok"], &guest)?;
    // A service's output line, as the service's own.
    messages.wait_for(
        &[
            " vmhost mfv-web ",
            " - - mfv-web: serving HTTPS on [::]:443 (this host is set up",
        ],
        &guest,
    )?;
    // The shutdown's last line leaves before the power goes.
    guest.qmp("system_powerdown", serde_json::Value::Null)?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    messages.wait_for(&[" vmhost mfv-init 1 - - shutdown: poweroff now"], &guest)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

/// The connection QEMU opens to `listener` when it starts, for the guest's connections.
fn accept(listener: &TcpListener) -> anyhow::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                ensure!(
                    Instant::now() < deadline,
                    "QEMU did not connect to the syslog port"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => return Err(error).context("accept QEMU's connection"),
        }
    }
}

/// The messages a syslog server receives over TCP with octet counting (RFC 6587), read by a
/// thread of their own.
#[derive(Clone)]
struct SyslogMessages(Arc<Mutex<Vec<String>>>);

impl SyslogMessages {
    /// Reads `LENGTH SP MESSAGE` frames from `stream` until it closes.
    fn read(mut stream: TcpStream) -> SyslogMessages {
        let messages = SyslogMessages(Arc::default());
        let received = Arc::clone(&messages.0);
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(length @ 1..) = stream.read(&mut buffer) {
                pending.extend_from_slice(&buffer[..length]);
                while let Some(space) = pending.iter().position(|byte| *byte == b' ') {
                    let Some(size) = std::str::from_utf8(&pending[..space])
                        .ok()
                        .and_then(|digits| digits.parse::<usize>().ok())
                    else {
                        // Not octet counting: keep what came as one message and stop.
                        let text = String::from_utf8_lossy(&pending);
                        push(&received, format!("NOT A FRAME: {text}"));
                        return;
                    };
                    if pending.len() < space + 1 + size {
                        break;
                    }
                    let message = pending[space + 1..space + 1 + size].to_vec();
                    pending.drain(..space + 1 + size);
                    push(&received, String::from_utf8_lossy(&message).into_owned());
                }
            }
        });
        messages
    }

    /// Waits for a message containing every one of `needles`, and returns it.
    fn wait_for(&self, needles: &[&str], guest: &Guest) -> anyhow::Result<String> {
        let deadline = Instant::now() + NESTED_TIMEOUT;
        loop {
            let messages = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let wanted = |message: &&String| needles.iter().all(|needle| message.contains(needle));
            if let Some(found) = messages.iter().find(wanted) {
                return Ok(found.clone());
            }
            ensure!(
                Instant::now() < deadline,
                "no syslog message with {needles:?} within {NESTED_TIMEOUT:?}; {} received, \
                 the last:\n{}\nthe serial log ends:\n{}",
                messages.len(),
                messages
                    .iter()
                    .rev()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n"),
                guest
                    .serial_log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Adds `message` to what was received.
fn push(received: &Mutex<Vec<String>>, message: String) {
    received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(message);
}

/// `e2fsck -fn` finds nothing to fix on the volume: it was unmounted cleanly.
fn fsck_clean(volume: &Path) -> anyhow::Result<()> {
    let output = Command::new("e2fsck")
        .arg("-fn")
        .arg(volume)
        .output()
        .context("run e2fsck")?;
    ensure!(
        output.status.success(),
        "e2fsck -fn {} found problems: {}{}",
        volume.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A static address for eth0, as `mfv net apply` takes it, for `printf '...'`.
const STATIC_SECTION: &str =
    r#"[[network.interfaces]]\nname = "eth0"\nmode = "static"\naddresses = ["10.0.2.20/24"]\n"#;

/// A command printing `LABEL=N`, N being how many times eth0 has the static address.
fn count_static(label: &str) -> String {
    format!("echo \"{label}=$(ip -4 addr show dev eth0 | grep -c 10.0.2.20/24)\"")
}

#[test]
fn a_network_change_through_the_daemon_rolls_back_unless_confirmed() -> anyhow::Result<()> {
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .kernel_arg("mfv.net=eth0:dhcp")
        .nic(NicModel::VirtioNet)
        .boot()?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: service host-daemon: ready after ", LINE_TIMEOUT)?;
    type_line(
        &mut guest,
        &format!("printf '{STATIC_SECTION}' > /tmp/net.toml"),
    )?;

    // Applied, and waiting: no answer comes from standard input.
    type_line(
        &mut guest,
        "mfv net apply /tmp/net.toml --confirm-within 20 < /dev/null",
    )?;
    guest.wait_for_line(
        "mfv-init: net: change 1: eth0: DHCP client stopped",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line(
        "mfv-init: net: change 1 applied: confirm within 20 s",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line(
        "change 1 applied provisionally: the host rolls it back at ",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("change 1 waits for `mfv net confirm 1`", LINE_TIMEOUT)?;
    type_line(&mut guest, &count_static("addr20"))?;
    guest.wait_for_line("addr20=1", LINE_TIMEOUT)?;

    // Not confirmed: PID 1 rolls it back at the deadline and DHCP runs again.
    guest.wait_for_line("mfv-init: net: eth0: DHCP client started", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: change 1 rolled back: not confirmed within 20 s",
        LINE_TIMEOUT,
    )?;
    type_line(&mut guest, &count_static("addr20"))?;
    guest.wait_for_line("addr20=0", LINE_TIMEOUT)?;
    type_line(&mut guest, "mfv net confirm 1")?;
    guest.wait_for_line(
        "mfv: the previous network is back: change 1 was rolled back: not confirmed within 20 s",
        LINE_TIMEOUT,
    )?;

    // Applied again and confirmed at once: it outlives its deadline.
    type_line(
        &mut guest,
        "mfv net apply /tmp/net.toml --confirm-within 20 --yes",
    )?;
    guest.wait_for_line(
        "mfv-init: net: change 2 applied: confirm within 20 s",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: change 2 confirmed", LINE_TIMEOUT)?;
    guest.wait_for_line("confirmed: the host keeps the change", LINE_TIMEOUT)?;
    type_line(&mut guest, &format!("sleep 25; {}", count_static("kept20")))?;
    guest.wait_for_line("kept20=1", LINE_TIMEOUT)?;
    ensure!(
        !guest.serial_log().contains("net: change 2 rolled back"),
        "the confirmed change was rolled back"
    );
    Ok(())
}

#[test]
fn nfs_pools_of_the_configuration_are_mounted_or_stay_defined_when_the_server_refuses()
-> anyhow::Result<()> {
    let nfs = NfsServer::start()?;
    // A file already on the export is a volume of the pool once it is mounted.
    std::fs::write(nfs.export_dir().join("from-host.img"), vec![0u8; 1 << 20])?;
    let dir = tempfile::tempdir()?;
    // `shared` on the server; `away` on QEMU's address for the host, where the user network
    // (restrict=on) refuses every connection, as a host with no NFS server does.
    let volume = config_volume(
        dir.path(),
        &format!(
            "{CONFIG}[[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n\
             [[storage.pools]]\nname = \"shared\"\nkind = \"nfs\"\nserver = \"10.0.2.100\"\n\
             export = \"{export}\"\n\
             [[storage.pools]]\nname = \"away\"\nkind = \"nfs\"\nserver = \"10.0.2.2\"\n\
             export = \"{export}\"\npath = \"/var/lib/away\"\n",
            export = mfv_tests::nfs::EXPORT
        ),
    )?;
    // The guest's NFS connection to 10.0.2.100:2049 reaches ganesha on the host's loopback.
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .nic(NicModel::E1000)
        .forward_guest_connections(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 100), 2049),
            nfs.port(),
        )
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    let line = keeper_pool_line(&mut guest, "shared")?;
    ensure!(
        line.ends_with(
            "vms: storage pool shared ready at /var/lib/mfv/pools/shared (nfs 10.0.2.100:/export)"
        ),
        "the pool is not ready: {line}\nganesha's log:\n{}",
        nfs.log()
    );
    type_line(
        &mut guest,
        "virsh vol-create-as shared v1 16M --format qcow2 && \
         echo \"v1 at $(virsh vol-path --pool shared v1)\" && \
         echo \"listed: $(virsh vol-list shared | grep -o from-host.img)\"",
    )?;
    guest.wait_for_line("v1 at /var/lib/mfv/pools/shared/v1", NESTED_TIMEOUT)?;
    guest.wait_for_line("listed: from-host.img", LINE_TIMEOUT)?;
    // The volume is a qcow2 file in the exported directory on this host.
    let created = nfs.export_dir().join("v1");
    let mut magic = [0u8; 4];
    std::fs::File::open(&created)
        .with_context(|| format!("{} is not on the server", created.display()))?
        .read_exact(&mut magic)?;
    ensure!(
        &magic == b"QFI\xfb",
        "{} is not qcow2: {magic:?}",
        created.display()
    );

    // The refused mount names the server and the export; the pool stays defined, autostarted.
    let line = keeper_pool_line(&mut guest, "away")?;
    ensure!(
        line.contains(
            "vms: storage pool away: storage pool \"away\" could not mount 10.0.2.2:/export; \
             the pool stays defined and is mounted when started again (virsh pool-start away)"
        ) && line.contains("Connection refused"),
        "{line}"
    );
    type_line(
        &mut guest,
        "virsh pool-info away | grep -E '^(State|Autostart)' | tr -s ' ' | tr '\\n' ' '; echo",
    )?;
    guest.wait_for_line("State: inactive Autostart: yes", LINE_TIMEOUT)?;

    type_line(&mut guest, "mfv host poweroff")?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

/// The VM keeper's console line for storage pool `name` (ready or failed), once it is logged.
fn keeper_pool_line(guest: &mut Guest, name: &str) -> anyhow::Result<String> {
    // `[x]` in the pattern keeps the typed command's echo from holding the awaited text.
    let (first, rest) = name.split_at(1);
    type_line(
        guest,
        &format!(
            "until mfv host logs vm-keeper -n 200 | grep 'vms: storage pool [{first}]{rest}'; \
             do sleep 2; done; echo pool-line-\"found\""
        ),
    )?;
    let line = guest.wait_for_line(&format!("vms: storage pool {name}"), NESTED_TIMEOUT)?;
    guest.wait_for_line("pool-line-found", LINE_TIMEOUT)?;
    Ok(line)
}
