//! Driving the console setup screen on a guest's serial line, as an operator at the console
//! does, for the appliance tests that start from a host without a configuration.

use std::time::Duration;

use crate::Guest;

/// The line the setup screen ends with before it waits for Enter.
pub const SETUP_PRESS_ENTER: &str = "Press Enter to set up the network.";
/// The address QEMU's user network hands out first.
pub const USER_NETWORK_LEASE: &str = "10.0.2.15/24";

/// Types `line` and a newline on the serial console.
pub fn type_line(guest: &mut Guest, line: &str) -> anyhow::Result<()> {
    guest.write_serial(&format!("{line}\n"))
}

/// Once the setup screen and the host daemon are there: Enter, the first card, DHCP, no
/// VLAN, yes; then waits, each line at most `timeout`, until the status screen shows the
/// lease.
pub fn choose_dhcp_on_the_first_card(guest: &mut Guest, timeout: Duration) -> anyhow::Result<()> {
    guest.wait_for_line_anywhere("mfv-init: service host-daemon: ready after ", timeout)?;
    guest.wait_for_line_anywhere(SETUP_PRESS_ENTER, timeout)?;
    // Typed ahead: the terminal keeps the lines until the dialogue reads them (a prompt
    // ends no line, so there is none to wait for).
    for answer in ["", "1", "", ""] {
        type_line(guest, answer)?;
    }
    guest.wait_for_line("Network card (1 or eth0; d loads a driver): ", timeout)?;
    guest.wait_for_line("  eth0: DHCP", timeout)?;
    type_line(guest, "yes")?;
    guest.wait_for_line("The network is set up", timeout)?;
    // PID 1's line comes before or after the screen's, as the two processes go.
    guest.wait_for_line_anywhere(
        "mfv-init: setup: the network was chosen: no DHCP fallback",
        timeout,
    )?;
    // The status screen, redrawn once the lease is there.
    guest.wait_for_line("Press Enter to log in for a shell", timeout)?;
    // The status line lists the IPv6 link-local address too, in the kernel's order.
    guest.wait_for_matching_line(
        &format!("  eth0 up ... {USER_NETWORK_LEASE}"),
        timeout,
        |line| line.starts_with("  eth0 up ") && line.contains(USER_NETWORK_LEASE),
    )?;
    Ok(())
}
