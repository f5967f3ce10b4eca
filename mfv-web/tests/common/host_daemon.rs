//! The host daemon's own handler in-process, asked as the web user, for the tests of the API's
//! host routes and of `mfv --remote host`: a fake sysfs and proc tree for the inventory and
//! the uptime, the boot report and the services published as PID 1 publishes them, and a
//! PID 1 double that restarts services, records shutdowns (nothing reboots) and serves
//! network requests with PID 1's own network owner on a recording network.
//!
//! The daemon reads and saves the configuration on the volume the boot used, which it mounts;
//! here the same reading and saving ([`mfv_host::daemon::config_document`],
//! [`mfv_host::daemon::save_config`]) run on a directory store instead, and the daemon's own
//! answer without a volume is kept as it is. Storage pools are added and removed
//! ([`mfv_host::storage_pools`]) on that store and the private libvirtd of
//! [`Daemon::with_libvirt`], where the daemon reaches `qemu:///system`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfv_api::{Request, Response, ServiceState, ServiceStatus};
use mfv_host::config::StoreVolume;
use mfv_host::daemon::{HostDaemon, HostState, InitControl, Peer};
use mfv_host::network::handover::{NetworkOwner, take_request};
use mfv_host::network::{LiveNetwork, NetworkSteps, RecordingNetwork};
use mfv_host::services;
use mfv_web::daemon::{DaemonError, DaemonLink};

/// The configuration the directory store holds at the start.
pub const VALID_CONFIG: &str = "version = 1\n[host]\nhostname = \"vmhost1\"\n";

/// A `[network]` section with a bridge over eth0 holding the host's address, a VLAN on
/// eth0 and DNS: what the network page and the API read into links.
pub const BRIDGE_AND_VLAN: &str = "[network]\n\
    [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
    [[network.interfaces]]\nname = \"eth0.20\"\nmode = \"dhcp\"\n\
    vlan = { parent = \"eth0\", id = 20 }\n\
    [[network.interfaces]]\nname = \"br0\"\nmode = \"static\"\n\
    addresses = [\"192.0.2.10/24\"]\ngateway = \"192.0.2.1\"\n\
    [network.bridge]\nports = [\"eth0\"]\n\
    [network.dns]\nservers = [\"192.0.2.53\"]\nsearch = [\"example.org\"]\n";

/// PID 1 as the daemon reaches it: restarts give services a new process, shutdowns are
/// recorded, network requests are served by PID 1's network owner on a recording network.
#[derive(Debug)]
pub struct Pid1 {
    run_dir: PathBuf,
    /// The shutdowns asked for, `reboot` or `poweroff`: none really happens.
    pub shutdowns: Vec<&'static str>,
    owner: NetworkOwner,
    /// The network PID 1's owner changes, recording what it did.
    pub network: RecordingNetwork,
}

impl InitControl for Pid1 {
    fn shut_down(&mut self, reboot: bool) -> std::io::Result<()> {
        self.shutdowns
            .push(if reboot { "reboot" } else { "poweroff" });
        Ok(())
    }

    fn restart_requested(&mut self) -> std::io::Result<()> {
        let names = mfv_host::daemon::take_restart_requests(&self.run_dir);
        let mut statuses = services::read_status(&self.run_dir).unwrap();
        for status in &mut statuses {
            if names.contains(&status.name) {
                status.restarts += 1;
                status.pid = status.pid.map(|pid| pid + 1);
            }
        }
        services::write_status(&self.run_dir, &statuses).unwrap();
        Ok(())
    }

    fn network_requested(&mut self) -> std::io::Result<()> {
        if let Some(taken) = take_request(&self.run_dir) {
            let files = self.owner.serve(
                &self.run_dir,
                taken,
                &mut self.network,
                Duration::from_secs(100),
                &mut |_| {},
            );
            for file in files {
                mfv_linux::atomic_file::replace_file(&file.path, file.contents.as_bytes(), 0o644)
                    .unwrap();
            }
        }
        Ok(())
    }

    fn setup_saved(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The daemon's handler asked as the web user; the configuration on a directory store.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// The handler, and PID 1's double inside it.
    pub handler: Arc<Mutex<HostDaemon<Pid1>>>,
    /// The config store's directory; `None`: the daemon's own answer (no volume here).
    pub store: Option<PathBuf>,
    /// The libvirt URI storage pools are made on; `None`: the daemon's own answer.
    pub libvirt: Option<String>,
}

impl DaemonLink for Daemon {
    async fn ask(&self, request: Request, _: Duration) -> Result<Response, DaemonError> {
        // The protocol's server loop validates before the handler, as here.
        request.validate().map_err(DaemonError::Refused)?;
        // The handler blocks, as on the daemon's own threads: this worker leaves the
        // server's runtime while it runs.
        tokio::task::block_in_place(|| {
            let answer = match (&self.store, request) {
                (Some(dir), Request::ConfigGet) => {
                    mfv_host::daemon::config_document(StoreVolume::directory(dir).store())
                }
                (
                    Some(dir),
                    Request::ConfigSave {
                        text,
                        base_generation,
                    },
                ) => mfv_host::daemon::save_config(
                    StoreVolume::directory(dir).store(),
                    &text,
                    base_generation,
                ),
                (
                    Some(dir),
                    Request::StoragePoolAdd {
                        pool,
                        base_generation,
                    },
                ) if self.libvirt.is_some() => mfv_host::storage_pools::add_pool(
                    StoreVolume::directory(dir).store(),
                    self.libvirt.as_deref().unwrap_or_default(),
                    &pool,
                    base_generation,
                ),
                (Some(dir), Request::StoragePoolRemove { name }) if self.libvirt.is_some() => {
                    mfv_host::storage_pools::remove_pool(
                        StoreVolume::directory(dir).store(),
                        self.libvirt.as_deref().unwrap_or_default(),
                        &name,
                    )
                }
                (_, request) => self.handler.lock().unwrap().handle(Peer::Web, request),
            };
            answer.map_err(DaemonError::Refused)
        })
    }
}

pub fn running(name: &str, pid: u32) -> ServiceStatus {
    let mut status = ServiceStatus::new(name, ServiceState::Running);
    status.pid = Some(pid);
    status
}

/// A fake sysfs with an e1000 card (eth0) and loopback, and /proc/uptime.
pub fn fake_hardware(dir: &Path) -> mfv_probe::SystemRoots {
    let roots = mfv_probe::SystemRoots {
        sysfs: dir.join("sys"),
        proc: dir.join("proc"),
        dev: dir.join("dev"),
    };
    std::fs::create_dir_all(&roots.proc).unwrap();
    std::fs::create_dir_all(&roots.dev).unwrap();
    std::fs::write(roots.proc.join("uptime"), "12.34 20.00\n").unwrap();
    let sys = &roots.sysfs;
    std::fs::create_dir_all(sys.join("class/net")).unwrap();
    std::fs::create_dir_all(sys.join("bus/pci/drivers/e1000")).unwrap();
    for (name, device, address, carrier, speed) in [
        (
            "eth0",
            "pci0000:00/0000:00:03.0",
            "52:54:00:12:34:56",
            "1",
            "1000",
        ),
        ("lo", "virtual", "00:00:00:00:00:00", "1", "-1"),
    ] {
        let relative = format!("devices/{device}/net/{name}");
        let interface = sys.join(&relative);
        std::fs::create_dir_all(&interface).unwrap();
        symlink(
            format!("../../{relative}"),
            sys.join("class/net").join(name),
        )
        .unwrap();
        for (attribute, value) in [
            ("address", address),
            ("operstate", "up"),
            ("carrier", carrier),
            ("speed", speed),
        ] {
            std::fs::write(interface.join(attribute), format!("{value}\n")).unwrap();
        }
        if device != "virtual" {
            let up = "../".repeat(device.split('/').count() + 1);
            symlink("../..", interface.join("device")).unwrap();
            let device_dir = sys.join("devices").join(device);
            symlink(format!("{up}bus/pci"), device_dir.join("subsystem")).unwrap();
            symlink(
                format!("{up}bus/pci/drivers/e1000"),
                device_dir.join("driver"),
            )
            .unwrap();
        }
    }
    roots
}

impl Daemon {
    /// The daemon of a host that booted with the configuration of `/dev/vdb` (kept in a
    /// directory under `dir` here), or, without `with_config`, of a host that found none. Its
    /// run directory, fake hardware and store are made under `dir`.
    pub fn start(dir: &Path, with_config: bool) -> Daemon {
        let run_dir = dir.join("run");
        std::fs::create_dir(&run_dir).unwrap();
        let config = if with_config {
            mfv_api::ConfigProvenance::Found {
                device: "/dev/vdb".to_owned(),
                store: mfv_api::StoreKind::Directory,
                generation: Some(1),
                origin: mfv_api::ConfigOrigin::Current,
            }
        } else {
            mfv_api::ConfigProvenance::NotFound
        };
        let mut boot = mfv_api::BootReport::new(config);
        boot.phases.push(mfv_api::BootPhase::new("config", 1500));
        mfv_host::daemon::write_host_state(
            &run_dir,
            &HostState {
                boot,
                virtualization: mfv_api::Virtualization::Kvm,
            },
        )
        .unwrap();
        services::write_status(
            &run_dir,
            &[running("libvirtd", 300), running("mfv-web", 400)],
        )
        .unwrap();
        let mut boot_log = services::ServiceLog::open(&run_dir, services::BOOT_LOG).unwrap();
        boot_log.append(1, "phase mounts: ok").unwrap();
        boot_log.append(2, "phase config: /dev/vdb").unwrap();
        let mut log = services::ServiceLog::open(&run_dir, "libvirtd").unwrap();
        for line in 0..5 {
            log.append(10 + line, &format!("libvirtd line {line}"))
                .unwrap();
        }
        let owner = NetworkOwner::new(LiveNetwork::new(NetworkSteps::default(), "vmhost1"));
        for file in owner.state_files(&run_dir) {
            std::fs::create_dir_all(file.path.parent().unwrap()).unwrap();
            std::fs::write(&file.path, file.contents).unwrap();
        }
        let store = dir.join("store");
        std::fs::create_dir(&store).unwrap();
        mfv_host::daemon::save_config(StoreVolume::directory(&store).store(), VALID_CONFIG, None)
            .unwrap();
        Daemon {
            handler: Arc::new(Mutex::new(HostDaemon {
                roots: fake_hardware(dir),
                init: Pid1 {
                    run_dir: run_dir.clone(),
                    shutdowns: Vec::new(),
                    owner,
                    network: RecordingNetwork {
                        apply_changes: vec!["add 192.0.2.10/24 to eth0".to_owned()],
                        ..RecordingNetwork::default()
                    },
                },
                run_dir,
            })),
            store: with_config.then_some(store),
            libvirt: None,
        }
    }

    /// The same daemon making storage pools on the libvirt at `uri`.
    pub fn with_libvirt(mut self, uri: &str) -> Daemon {
        self.libvirt = Some(uri.to_owned());
        self
    }

    /// The shutdowns PID 1 was asked for, in order.
    pub fn shutdowns(&self) -> Vec<&'static str> {
        self.handler.lock().unwrap().init.shutdowns.clone()
    }
}
