//! Free TCP ports on 127.0.0.1 for forwarding guest ports to the host and for test servers.
//!
//! The kernel picks a free port when we bind port 0; we close the socket and hand the number
//! to QEMU. Ports handed out are remembered for the life of the process so two guests of the
//! same test binary never get the same one, even when the kernel would reuse it. Another
//! process may still take the port in the short window before QEMU binds it; QEMU then fails
//! to start with "Could not set up host forwarding rule", which the boot error shows.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, bail};

/// How many kernel-chosen ports to try before giving up on finding one not yet handed out.
const ATTEMPTS: usize = 64;

/// Ports this process has already handed out.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that is free now and was not handed out before in this process.
pub fn free_local_port() -> anyhow::Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..ATTEMPTS {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding a TCP socket on 127.0.0.1 to find a free port")?;
        let port = listener
            .local_addr()
            .context("reading the bound port")?
            .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    bail!("no free TCP port on 127.0.0.1 after {ATTEMPTS} attempts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..20).map(|_| free_local_port().unwrap()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        for port in ports {
            assert_ne!(port, 0);
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        }
    }
}
