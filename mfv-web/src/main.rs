//! `mfv-web`: the appliance's HTTPS web UI and REST API.
//!
//! This build has no web server yet (issue 14 brings it). PID 1 already runs it as the
//! unprivileged `mfv-web` user, supervised like the other services, so the place the server
//! takes is real: started without arguments it checks that it reaches the host daemon and
//! libvirt's socket, says so, and waits until it is stopped. `--version` prints the version.

use std::process::ExitCode;

/// libvirt's read-write socket, which the `libvirt` group may use.
const LIBVIRT_SOCKET: &str = "/run/libvirt/libvirt-sock";
/// Exit code for arguments this build does not know.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--version" || flag == "-V" => {
            println!("mfv-web {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        [] => {
            for line in reachability(mfv_api::DEFAULT_SOCKET_PATH, LIBVIRT_SOCKET) {
                println!("{line}");
            }
            println!("mfv-web: this build has no web server yet (issue 14); waiting");
            loop {
                std::thread::park();
            }
        }
        _ => {
            eprintln!("mfv-web: unknown arguments; this build knows only --version");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// One line each on whether the host daemon answers at `host_socket` and libvirt's socket
/// `libvirt_socket` accepts a connection.
fn reachability(host_socket: &str, libvirt_socket: &str) -> Vec<String> {
    let daemon = match mfv_api::Client::connect_as(host_socket, "mfv-web")
        .and_then(|mut client| client.services())
    {
        Ok(services) => format!(
            "mfv-web: the host daemon answers on {host_socket} ({} services)",
            services.len()
        ),
        Err(error) => format!("mfv-web: the host daemon on {host_socket}: {error}"),
    };
    // Connecting without speaking libvirt's protocol would leave an error in its log: the
    // right to connect is the right to write the socket.
    let libvirt = match nix::unistd::access(libvirt_socket, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => format!("mfv-web: libvirt's socket {libvirt_socket} is open to this user"),
        Err(error) => format!("mfv-web: libvirt on {libvirt_socket}: {error}"),
    };
    vec![daemon, libvirt]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_sockets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host.sock");
        let libvirt = dir.path().join("libvirt-sock");
        let lines = reachability(host.to_str().unwrap(), libvirt.to_str().unwrap());
        assert!(
            lines[0].starts_with(&format!("mfv-web: the host daemon on {}: ", host.display())),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with(&format!("mfv-web: libvirt on {}: ", libvirt.display())),
            "{lines:?}"
        );
        let _listener = std::os::unix::net::UnixListener::bind(&libvirt).unwrap();
        let lines = reachability(host.to_str().unwrap(), libvirt.to_str().unwrap());
        assert_eq!(
            lines[1],
            format!(
                "mfv-web: libvirt's socket {} is open to this user",
                libvirt.display()
            )
        );
    }
}
