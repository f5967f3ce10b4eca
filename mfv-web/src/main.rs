//! `mfv-web`: the appliance's HTTPS server (see the library's documentation).
//!
//! It takes its listening sockets from PID 1 as open file descriptors (`--https-fd`,
//! `--http-fd`), since it runs unprivileged and may not bind ports below 1024, or binds
//! addresses itself (`--https`, `--http`) where it may; reads the key and certificate the
//! host daemon published; asks the daemon whether the host is set up; and serves until
//! SIGTERM, then shuts down gracefully. With `--ready-fd FD` it writes a line to that
//! descriptor (a pipe from PID 1) once it serves, and closes it: PID 1 starts the VM services
//! only then, so that the web page comes first.
//!
//! `--dev --bench-http ADDR:PORT` also serves the API over plain HTTP on that address, for
//! `cargo xtask bench web` alone: it compares this server with a plain-HTTP reference on the
//! same protocol. It is refused without `--dev`, so an appliance never serves the API without
//! TLS.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use mfv_web::config_mode::{self, ConfigMode};
use mfv_web::daemon::DaemonSocket;
use mfv_web::server::{self, Limits, Listeners};
use warp::Filter;

/// Exit code for arguments this program does not know.
const EXIT_USAGE: u8 = 2;

const USAGE: &str = "usage: mfv-web [--https-fd FD | --https ADDR:PORT] \
                     [--http-fd FD | --http ADDR:PORT] [--identity DIR] [--socket PATH] \
                     [--run-dir DIR] [--ready-fd FD]\n       \
                     mfv-web --dev --auth-db PATH [--libvirt URI] [--https ADDR:PORT] \
                     [--bench-http ADDR:PORT]";

/// Where `--dev` listens unless `--https` says otherwise.
const DEV_ADDRESS: &str = "127.0.0.1:8443";

/// Where a listening socket comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListenOn {
    /// A socket PID 1 bound and handed over as this descriptor.
    Fd(RawFd),
    /// An address this process binds.
    Address(SocketAddr),
}

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    https: ListenOn,
    http: Option<ListenOn>,
    identity: PathBuf,
    socket: PathBuf,
    /// PID 1's runtime directory, where the host daemon publishes the auth database in use.
    run_dir: PathBuf,
    /// `--ready-fd`: where to say that it serves.
    ready_fd: Option<RawFd>,
    /// `--dev`: the API on an ordinary machine, with this SQLite auth database.
    dev: Option<PathBuf>,
    /// `--libvirt`: where `--dev` finds VMs.
    libvirt: Option<String>,
    /// `--bench-http`: `--dev` also serves the API over plain HTTP here (benchmark only).
    bench_http: Option<SocketAddr>,
}

fn main() -> ExitCode {
    mfv_linux::malloc::tune_for_long_running_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.as_slice(), [flag] if flag == "--version" || flag == "-V") {
        println!("mfv-web {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("mfv-web: {error:#}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mfv-web: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut https = None;
    let mut http = None;
    let mut identity = PathBuf::from("/run/mfv/web");
    let mut socket = PathBuf::from(mfv_api::DEFAULT_SOCKET_PATH);
    let mut run_dir = PathBuf::from("/run/mfv");
    let mut ready_fd = None;
    let mut dev = false;
    let mut auth_db = None;
    let mut libvirt = None;
    let mut bench_http = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--https-fd" => https = Some(ListenOn::Fd(parse_fd(flag, value()?)?)),
            "--https" => https = Some(ListenOn::Address(parse_address(flag, value()?)?)),
            "--http-fd" => http = Some(ListenOn::Fd(parse_fd(flag, value()?)?)),
            "--http" => http = Some(ListenOn::Address(parse_address(flag, value()?)?)),
            "--identity" => identity = PathBuf::from(value()?),
            "--socket" => socket = PathBuf::from(value()?),
            "--run-dir" => run_dir = PathBuf::from(value()?),
            "--ready-fd" => ready_fd = Some(parse_fd(flag, value()?)?),
            "--dev" => dev = true,
            "--auth-db" => auth_db = Some(PathBuf::from(value()?)),
            "--libvirt" => libvirt = Some(value()?.clone()),
            "--bench-http" => bench_http = Some(parse_address(flag, value()?)?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let dev = match (dev, auth_db) {
        (true, Some(path)) => Some(path),
        (true, None) => bail!(
            "--dev needs --auth-db PATH, a SQLite auth database \
             (mfv user add NAME --role admin --db PATH makes one)"
        ),
        (false, Some(_)) => bail!("--auth-db is for --dev only"),
        (false, None) => None,
    };
    if libvirt.is_some() && dev.is_none() {
        bail!("--libvirt is for --dev only (the appliance uses qemu:///system)");
    }
    if bench_http.is_some() && dev.is_none() {
        bail!("--bench-http is for --dev only (the appliance serves the API over HTTPS alone)");
    }
    if dev.is_some() && https.is_none() {
        https = Some(ListenOn::Address(parse_address("--https", DEV_ADDRESS)?));
    }
    Ok(Args {
        https: https.context("--https-fd or --https is required")?,
        http,
        identity,
        socket,
        run_dir,
        ready_fd,
        dev,
        libvirt,
        bench_http,
    })
}

fn parse_fd(flag: &str, value: &str) -> anyhow::Result<RawFd> {
    value
        .parse::<RawFd>()
        .ok()
        .filter(|fd| *fd > 2)
        .with_context(|| format!("{flag} {value:?}: not a descriptor number above 2"))
}

/// Writes a line to `fd`, PID 1's readiness pipe, and closes it.
fn say_ready(fd: RawFd) -> anyhow::Result<()> {
    // SAFETY: PID 1 hands this descriptor over for this process alone, and nothing else here
    // owns it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    pipe.write_all(b"ready\n")
        .with_context(|| format!("--ready-fd {fd}: cannot say the server is ready"))
}

fn parse_address(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{flag} {value:?}: not ADDRESS:PORT (e.g. 127.0.0.1:8443)"))
}

/// A listener from PID 1's descriptor or bound here.
fn listener(on: &ListenOn) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = match on {
        ListenOn::Fd(fd) => {
            // SAFETY: PID 1 hands this descriptor over for this process alone, and nothing
            // else here owns it.
            let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
            std::net::TcpListener::from(owned)
        }
        ListenOn::Address(address) => {
            std::net::TcpListener::bind(address).with_context(|| format!("bind {address}"))?
        }
    };
    listener
        .set_nonblocking(true)
        .context("make the listener non-blocking")?;
    tokio::net::TcpListener::from_std(listener).context("take the listener")
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Blocking work (SQLite, libvirt, uploads' writes) gets at most this many threads; more
    // waits its turn rather than each request making a thread and its stack.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("start the runtime")?;
    runtime.block_on(async {
        let listeners = Listeners {
            https: listener(&args.https)?,
            http: args.http.as_ref().map(listener).transpose()?,
            bench_http: args
                .bench_http
                .map(|address| listener(&ListenOn::Address(address)))
                .transpose()?,
        };
        let address = listeners.https.local_addr().context("the HTTPS address")?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("catch SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            println!("mfv-web: stopping");
        };
        let (tls, routes) = match &args.dev {
            Some(auth_db) => {
                let dev = mfv_web::dev::DevServer::open(auth_db, args.libvirt.clone()).await?;
                println!("{}", dev.banner(address));
                if let Some(plain) = &listeners.bench_http {
                    let plain = plain.local_addr().context("the --bench-http address")?;
                    println!("  benchmark only: the API over plain HTTP on http://{plain}/api/v1/");
                }
                (dev.tls, dev.routes)
            }
            None => {
                let tls = mfv_web::tls::server_config(&args.identity)?;
                let routes = if let Some(device) = configuration_device(&args.socket).await? {
                    let api = mfv_web::set_up::open_api(&args.run_dir, &args.socket)
                        .await
                        .map_err(|error| {
                            format!(
                                "{}; once the host has an administrator (mfv user add NAME \
                                 --role admin at the console), run mfv host restart mfv-web",
                                mfv_linux::error_chain(&error)
                            )
                        });
                    match &api {
                        Ok(_) => println!(
                            "mfv-web: serving HTTPS on {address} (this host is set up: the \
                             API under /api/v1)"
                        ),
                        Err(reason) => println!(
                            "mfv-web: serving HTTPS on {address} (this host is set up; the API \
                             cannot check callers: {reason})"
                        ),
                    }
                    mfv_web::set_up::routes(device, api)
                } else {
                    println!("mfv-web: serving HTTPS on {address} in config mode");
                    config_mode::routes(ConfigMode::new(DaemonSocket {
                        socket: args.socket.clone(),
                    }))
                    .boxed()
                };
                (tls, routes)
            }
        };
        // The listeners are open, so connections from now on wait for the server.
        if let Some(fd) = args.ready_fd {
            say_ready(fd)?;
        }
        server::serve(
            listeners,
            tls,
            warp::service(routes),
            Limits::default(),
            shutdown,
        )
        .await;
        anyhow::Ok(())
    })
}

/// Whether the host daemon says the host booted with a configuration.
async fn configuration_device(socket: &std::path::Path) -> anyhow::Result<Option<String>> {
    let mut client = mfv_api::AsyncClient::connect_as(socket, "mfv-web")
        .await
        .context("ask the host daemon whether this host is set up")?;
    let status = client
        .host_status()
        .await
        .context("ask the host daemon whether this host is set up")?;
    Ok(match status.boot.config {
        mfv_api::ConfigProvenance::Found { device, .. } => Some(device),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> anyhow::Result<Args> {
        parse_args(
            &text
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn sockets_come_from_descriptors_or_addresses() {
        let parsed = args("--https-fd 3 --http-fd 4").unwrap();
        assert_eq!(parsed.https, ListenOn::Fd(3));
        assert_eq!(parsed.http, Some(ListenOn::Fd(4)));
        assert_eq!(parsed.identity, PathBuf::from("/run/mfv/web"));
        assert_eq!(parsed.ready_fd, None);
        let parsed = args("--https-fd 3 --http-fd 4 --ready-fd 5").unwrap();
        assert_eq!(parsed.ready_fd, Some(5));
        let parsed = args("--https 127.0.0.1:8443 --identity /tmp/id --socket /tmp/s").unwrap();
        assert_eq!(
            parsed.https,
            ListenOn::Address("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(parsed.http, None);
        assert_eq!(parsed.socket, PathBuf::from("/tmp/s"));
        assert_eq!(parsed.dev, None);
        let parsed = args("--dev --auth-db /tmp/users.sqlite").unwrap();
        assert_eq!(parsed.dev, Some(PathBuf::from("/tmp/users.sqlite")));
        assert_eq!(
            parsed.https,
            ListenOn::Address(DEV_ADDRESS.parse().unwrap())
        );
        assert_eq!(parsed.bench_http, None);
        let parsed = args("--dev --auth-db /tmp/u.sqlite --bench-http 127.0.0.1:8080").unwrap();
        assert_eq!(parsed.bench_http, Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn readiness_is_a_line_on_the_descriptor_then_its_end() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(writer);
        say_ready(fd).unwrap();
        let mut said = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(reader), &mut said).unwrap();
        assert_eq!(said, "ready\n");
    }

    #[test]
    fn a_readiness_pipe_nobody_reads_is_an_error_naming_it() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let fd = std::os::fd::IntoRawFd::into_raw_fd(writer);
        let error = say_ready(fd).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!("--ready-fd {fd}: cannot say the server is ready: Broken pipe (os error 32)")
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        for (text, expected) in [
            ("", "--https-fd or --https is required"),
            (
                "--https-fd 1",
                "--https-fd \"1\": not a descriptor number above 2",
            ),
            ("--https 8443", "--https \"8443\": not ADDRESS:PORT"),
            ("--https-fd", "--https-fd needs a value"),
            (
                "--https-fd 3 --ready-fd 2",
                "--ready-fd \"2\": not a descriptor number above 2",
            ),
            ("--https-fd 3 --colour", "unknown argument \"--colour\""),
            ("--dev", "--dev needs --auth-db PATH"),
            (
                "--https-fd 3 --auth-db /tmp/a",
                "--auth-db is for --dev only",
            ),
            (
                "--https-fd 3 --bench-http 127.0.0.1:8080",
                "--bench-http is for --dev only",
            ),
            (
                "--dev --auth-db /tmp/a --bench-http 8080",
                "--bench-http \"8080\": not ADDRESS:PORT",
            ),
        ] {
            let error = format!("{:#}", args(text).unwrap_err());
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }
}
