//! PID 1's side of remote logging: once the `log` phase starts mfv-host's
//! [`HostLogForwarding`] for the configuration's `[log] remote`, the boot log hands it every
//! console line (those still waiting in memory first) and each service's output thread every
//! line it reads. Nothing here waits on the network: a line is queued under a short lock, and
//! the local logs keep every line.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::bail;
use mfv_host::remote_log::HostLogForwarding;

use crate::clock::{BootClock, Clock};

/// How long the shutdown waits for the last lines to leave, at most.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// The forwarding, once started; a boot forwards to one server.
static FORWARDING: OnceLock<HostLogForwarding> = OnceLock::new();

/// Forwards PID 1's console lines (those still in the boot log's memory first) and, from now
/// on, every service's lines through `forwarding`.
pub fn start(forwarding: HostLogForwarding) -> anyhow::Result<()> {
    if FORWARDING.set(forwarding.clone()).is_err() {
        bail!("already forwarding to another server");
    }
    crate::boot_log::forward(Box::new(move |uptime, line| {
        let ago = BootClock.uptime().saturating_sub(uptime);
        forwarding.console_line(ago, line);
    }));
    Ok(())
}

/// Forwards one output line of the service `name` (process `pid`), logged now.
pub fn service_line(name: &str, pid: u32, text: &str) {
    if let Some(forwarding) = FORWARDING.get() {
        forwarding.service_line(name, pid, text);
    }
}

/// Gives the lines still queued at most [`SHUTDOWN_FLUSH`] to leave, when forwarding.
pub fn flush_at_shutdown() {
    if let Some(forwarding) = FORWARDING.get() {
        forwarding.flush(SHUTDOWN_FLUSH);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{Ipv4Addr, TcpListener};
    use std::sync::Arc;

    use super::*;
    use crate::console::Console;

    #[test]
    fn console_lines_from_before_the_start_and_service_lines_reach_the_server_in_order() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = format!("tcp://127.0.0.1:{port}").parse().unwrap();
        let forwarding = HostLogForwarding::start(server, "vmhost", Arc::new(|_| {})).unwrap();
        Console::new(Vec::new()).line(BootClock.uptime(), "forwarding test: before");
        start(forwarding.clone()).unwrap();
        Console::new(Vec::new()).line(BootClock.uptime(), "forwarding test: after");
        service_line("libvirtd", 310, "forwarding test: service");
        let error = start(forwarding).unwrap_err().to_string();
        assert_eq!(error, "already forwarding to another server");

        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let pid = std::process::id();
        let mut wanted = vec![
            format!("vmhost mfv-init {pid} - - forwarding test: before"),
            format!("vmhost mfv-init {pid} - - forwarding test: after"),
            "vmhost libvirtd 310 - - forwarding test: service".to_owned(),
        ];
        let mut received = String::new();
        let mut buffer = [0u8; 4096];
        while !wanted.is_empty() {
            let length = stream.read(&mut buffer).unwrap();
            assert!(length > 0, "closed; received: {received}");
            received.push_str(&String::from_utf8_lossy(&buffer[..length]));
            // In order: each wanted line after the one before.
            while let Some(position) = wanted.first().and_then(|line| received.find(line.as_str()))
            {
                received.drain(..position);
                wanted.remove(0);
            }
        }
        flush_at_shutdown();
    }
}
