//! Config mode on loopback with a host that is not there, to look at the setup wizard in a
//! browser: `cargo run -p mfv-web --example config_mode_demo -- 127.0.0.1:8443`, then open
//! the address it prints and type the token it prints.
//!
//! The host daemon's own handler checks the token and validates configurations (in a
//! temporary runtime directory); the disks, the network cards, the network change and the
//! save are played by this example (nothing is formatted or changed), so every step of the
//! wizard shows something. The save takes three seconds, as a format would.

#![allow(clippy::print_stdout, reason = "an example prints what to open")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use mfv_api::{NetworkOutcome, Request, Response, SetupVolume, VolumeChoice, VolumeContents};
use mfv_host::daemon::{DetachedInit, HostDaemon, Peer};
use mfv_web::config_mode::ConfigMode;
use mfv_web::daemon::{DaemonError, DaemonLink};
use mfv_web::server::{Limits, Listeners, serve};

/// The daemon's handler for tokens and validation, and a played host for the rest.
#[derive(Debug, Clone)]
struct DemoHost {
    daemon: Arc<Mutex<HostDaemon<DetachedInit>>>,
    applies: Arc<AtomicU64>,
}

impl DaemonLink for DemoHost {
    async fn ask(&self, request: Request, _: Duration) -> Result<Response, DaemonError> {
        request.validate().map_err(DaemonError::Refused)?;
        match request {
            Request::SetupVolumes => Ok(Response::SetupVolumes { volumes: volumes() }),
            Request::Inventory => Ok(Response::Inventory {
                inventory: serde_json::json!({
                    "nics": [
                        {"name": "eno1", "mac": "3c:ec:ef:12:34:56", "driver": "igb",
                         "carrier": true, "speed_mbps": 1000, "is_virtual": false},
                        {"name": "eno2", "mac": "3c:ec:ef:12:34:57", "driver": "igb",
                         "carrier": false, "speed_mbps": null, "is_virtual": false},
                        {"name": "enp3s0f0", "mac": "b4:96:91:aa:bb:cc", "driver": "ixgbe",
                         "carrier": true, "speed_mbps": 10000, "is_virtual": false},
                        {"name": "lo", "mac": "00:00:00:00:00:00", "driver": null,
                         "carrier": true, "speed_mbps": null, "is_virtual": true},
                    ],
                }),
            }),
            Request::NetworkApply {
                confirm_within_secs,
                ..
            } => Ok(Response::Network(NetworkOutcome::Applied {
                apply_id: self.applies.fetch_add(1, Ordering::SeqCst) + 1,
                confirm_within_secs,
                changes: vec!["eno1: addresses set".to_owned()],
            })),
            Request::NetworkConfirm { .. } => Ok(Response::Network(NetworkOutcome::Confirmed)),
            Request::HostStatus => {
                let mut status = mfv_api::HostStatus::new(
                    61_000,
                    mfv_api::BootReport::new(mfv_api::ConfigProvenance::NotFound),
                    mfv_api::Virtualization::Kvm,
                );
                status.network_in_effect =
                    Some("[[network.interfaces]]\nname = \"eno1\"\nmode = \"dhcp\"\n".to_owned());
                Ok(Response::HostStatus(status))
            }
            Request::SetupSave { volume, .. } => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (device, formatted) = match volume {
                    SetupVolume::Existing { device } => (device, false),
                    SetupVolume::Format { device, .. } => (device, true),
                    other => (format!("{other:?}"), false),
                };
                Ok(Response::SetupSaved {
                    device,
                    generation: 1,
                    formatted,
                    in_use: mfv_api::SetupInUse::Now,
                })
            }
            // The handler blocks (and runs a runtime of its own for the connection test), as
            // on the daemon's threads: this worker leaves the server's runtime meanwhile.
            request => tokio::task::block_in_place(|| {
                let mut daemon = self
                    .daemon
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                daemon
                    .handle(Peer::Web, request)
                    .map_err(DaemonError::Refused)
            }),
        }
    }
}

/// The disks and partitions of a small server with a USB stick.
fn volumes() -> Vec<VolumeChoice> {
    let mut disk = VolumeChoice::new("/dev/sda", 480_103_981_056, VolumeContents::Partitions);
    disk.model = Some("SAMSUNG MZ7LH480".to_owned());
    let mut data = VolumeChoice::new("/dev/sda1", 479_000_000_000, VolumeContents::FileSystem);
    data.fs_type = Some("xfs".to_owned());
    data.model = disk.model.clone();
    let mut stick = VolumeChoice::new("/dev/sdb1", 1_073_741_824, VolumeContents::ConfigVolume);
    stick.fs_type = Some("vfat".to_owned());
    stick.label = Some("MFV-CONFIG".to_owned());
    stick.model = Some("SanDisk Cruzer".to_owned());
    stick.removable = true;
    let blank = VolumeChoice::new("/dev/vdb", 2_147_483_648, VolumeContents::Nothing);
    vec![disk, data, stick, blank]
}

fn main() -> anyhow::Result<()> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8443".to_owned())
        .parse()
        .context("the argument must be ADDRESS:PORT")?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).context("runtime directory")?;
    let token = mfv_host::setup_token::issue(&run_dir)
        .context("setup token")?
        .context("the setup token was claimed already")?;
    let identity = mfv_host::web_identity::WebIdentity::generate("vmhost").context("identity")?;
    let tls = mfv_web::tls::server_config_for(&identity).context("TLS")?;
    let host = DemoHost {
        daemon: Arc::new(Mutex::new(HostDaemon {
            run_dir,
            roots: mfv_probe::SystemRoots {
                sysfs: dir.path().join("sys"),
                proc: dir.path().join("proc"),
                dev: dir.path().join("dev"),
            },
            init: DetachedInit,
        })),
        applies: Arc::new(AtomicU64::new(0)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("runtime")?;
    runtime.block_on(async move {
        let https = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("bind {address}"))?;
        println!(
            "open https://{address}/ and type the setup token {}",
            token.as_str()
        );
        let listeners = Listeners {
            https,
            http: None,
            bench_http: None,
        };
        let routes = mfv_web::config_mode::routes(ConfigMode::new(host));
        serve(
            listeners,
            tls,
            warp::service(routes),
            Limits::default(),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await;
        Ok(())
    })
}
