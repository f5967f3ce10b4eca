//! Starts a tiny host daemon on a socket in a temporary directory and asks it for the host's
//! status with the blocking client: `cargo run -p mfv-api --example host_status`.

use std::os::unix::net::UnixListener;
use std::thread;

use anyhow::Context;
use mfv_api::{
    ApiError, BootPhase, BootReport, Client, ConfigOrigin, ConfigProvenance, ErrorKind, HostStatus,
    Request, Response, ServiceState, ServiceStatus, StoreKind, Virtualization, serve_requests,
    server_handshake,
};

/// The pretend host: up for a minute, booted from a config volume, running the web server.
fn answer(request: Request) -> Result<Response, ApiError> {
    let mut web = ServiceStatus::new("mfv-web", ServiceState::Running);
    web.pid = Some(812);
    match request {
        Request::HostStatus => {
            let mut boot = BootReport::new(ConfigProvenance::Found {
                device: "/dev/sda1".into(),
                store: StoreKind::Directory,
                generation: Some(3),
                origin: ConfigOrigin::Current,
            });
            boot.phases.push(BootPhase::new("mounts", 1200));
            let mut status = HostStatus::new(61_250, boot, Virtualization::Tcg);
            status.services.push(web);
            Ok(Response::HostStatus(status))
        }
        Request::ServiceRestart { name } if name == web.name => {
            web.state = ServiceState::Starting;
            web.restarts += 1;
            Ok(Response::ServiceRestarted { service: web })
        }
        other => Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("this example does not answer {}", other.name()),
        )),
    }
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    let path = dir.path().join("host.sock");
    let listener =
        UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
    let server = thread::spawn(move || -> anyhow::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let hello = server_handshake(&mut stream, "example-daemon")?;
        println!("server: {} connected", hello.client);
        serve_requests(&mut stream, &mut answer)?;
        println!("server: {} hung up", hello.client);
        Ok(())
    });

    let mut client = Client::connect_as(&path, "example-client")?;
    println!("client: connected to {}", client.server().server);
    let status = client.host_status()?;
    println!("{}", serde_json::to_string_pretty(&status)?);
    let restarted = client.service_restart("mfv-web")?;
    println!(
        "client: mfv-web is {:?} after {} restarts",
        restarted.state, restarted.restarts
    );
    match client.inventory() {
        Ok(_) => println!("client: got an inventory"),
        Err(error) => println!("client: inventory refused: {error}"),
    }
    drop(client);

    server
        .join()
        .map_err(|_| anyhow::anyhow!("the server thread panicked"))?
}
