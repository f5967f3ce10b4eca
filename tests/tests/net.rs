//! Acceptance tests for the `network` boot phase (mfv-net inside mfv-init) on the real image
//! under QEMU TCG: `mfv.net=eth0:dhcp` gets QEMU's user-network lease and a forwarded port
//! reaches a server in the guest; `mfv.net=eth0:ADDRESS,gw=GATEWAY` sets the static address,
//! as `ip` in the console shell sees it; a configuration volume's `[network]` section is
//! applied when there is no `mfv.net=`; `mfv.net=dhcp` picks the card with carrier (these two
//! boots end with `mfv.halt=poweroff`). VLANs from the configuration and from `mfv net vlan`
//! carry their addresses with the kernel loading 8021q on demand; an active-backup bond made
//! with `mfv net bond` over two e1000 cards, each on a user network of its own with its own
//! forwarded port, stays reachable when QMP pulls the active card's cable; a bond declared in
//! the configuration gets its DHCP lease at boot.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mfv_tests::{
    ApplianceImage, DiskInterface, DiskSpec, Guest, GuestSpec, NicModel, VolumeFilesystem,
    VolumeImage,
};

/// Deadline for each awaited console line; TCG on a loaded machine is slow.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// What the server in the guest answers on the forwarded port.
const GREETING: &str = "hello-from-the-guest";
/// The port the guest greets on: not one the host serves itself (its web server has 443 and 80).
const GREETING_PORT: u16 = 8080;

/// A guest with one virtio NIC, `quiet` (no kernel messages inside the lines read back).
fn spec() -> anyhow::Result<GuestSpec> {
    Ok(GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .nic(NicModel::VirtioNet))
}

/// The row of interface `name` in the latest `mfv net show` table of the serial log.
fn show_row(guest: &Guest, name: &str) -> anyhow::Result<String> {
    let log = guest.serial_log();
    log.lines()
        .rev()
        .find(|line| line.starts_with(&format!("{name} ")))
        .map(str::to_owned)
        .with_context(|| format!("mfv net show has no {name} row"))
}

/// Connects to 127.0.0.1:`port` until the guest's server answers with the greeting.
fn read_greeting(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        // Until the server listens, QEMU accepts the connection and closes it at once.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.trim() == GREETING {
                return Ok(());
            }
            last = answer;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("127.0.0.1:{port} did not answer {GREETING:?} within {timeout:?} (last answer {last:?})")
}

#[test]
fn dhcp_from_the_command_line_brings_the_guest_up_and_a_forwarded_port_reaches_it()
-> anyhow::Result<()> {
    let mut guest = spec()?
        .forward_port(GREETING_PORT)
        .kernel_arg("mfv.net=eth0:dhcp")
        .boot()?;
    guest.wait_for_line("mfv-init: net: lo up", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: from mfv.net=eth0:dhcp", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: eth0: DHCP client started", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: phase network: ok", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;
    let bound = guest.wait_for_line_anywhere("mfv-init: net: eth0 bound ", LINE_TIMEOUT)?;
    // With `restrict=on` QEMU's DHCP server sends neither a router nor DNS servers.
    ensure!(
        bound.ends_with("] mfv-init: net: eth0 bound 10.0.2.15/24 (lease 86400 s)"),
        "unexpected lease line: {bound:?}"
    );

    guest.write_serial("mfv net show\n")?;
    guest.wait_for_line("ROUTES", LINE_TIMEOUT)?;
    let log = guest.serial_log();
    let row = log
        .lines()
        .find(|line| line.starts_with("eth0 ") && line.contains(" 10.0.2.15/24"))
        .context("mfv net show has no eth0 row with 10.0.2.15/24")?;
    ensure!(row.contains(" up "), "eth0 is not up: {row:?}");

    let port = guest
        .host_port(GREETING_PORT)
        .context("the harness did not forward the greeting's port")?;
    guest.write_serial(&format!(
        "busybox nc -ll -p {GREETING_PORT} -e echo {GREETING}\n"
    ))?;
    read_greeting(port, LINE_TIMEOUT)
}

#[test]
fn a_static_address_from_the_command_line_is_set() -> anyhow::Result<()> {
    let mut guest = spec()?
        .kernel_arg("mfv.net=eth0:10.0.2.20/24,gw=10.0.2.2,dns=10.0.2.3")
        .boot()?;
    guest.wait_for_line("mfv-init: net: lo up", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: from mfv.net=eth0:10.0.2.20/24,gw=10.0.2.2,dns=10.0.2.3",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: add 10.0.2.20/24 to eth0", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: add the route default via 10.0.2.2 dev eth0",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: write /etc/resolv.conf", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: phase network: ok", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;

    guest.write_serial("ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf\n")?;
    guest.wait_for_line("inet 10.0.2.20/24", LINE_TIMEOUT)?;
    guest.wait_for_line("default via 10.0.2.2 dev eth0", LINE_TIMEOUT)?;
    guest.wait_for_line("nameserver 10.0.2.3", LINE_TIMEOUT)?;
    ensure!(
        !guest.serial_log().contains("DHCP client"),
        "a DHCP client ran although the address is static"
    );
    Ok(())
}

#[test]
fn the_configurations_network_is_applied_without_a_boot_option() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("config.img");
    let config = "version = 1\n\n[host]\nhostname = \"nethost\"\n\n\
                  [[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
                  addresses = [\"10.0.2.15/24\"]\ngateway = \"10.0.2.2\"\n";
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", config)
        .build(&volume)?;
    let mut guest = spec()?
        .kernel_arg("mfv.halt=poweroff")
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line("mfv-init: hostname: nethost", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: lo up", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: from the configuration on /dev/",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: add 10.0.2.15/24 to eth0", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: add the route default via 10.0.2.2 dev eth0",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: phase network: ok", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(LINE_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

#[test]
fn dhcp_without_an_interface_picks_the_card_with_carrier() -> anyhow::Result<()> {
    let mut guest = spec()?
        .kernel_arg("mfv.net=dhcp")
        .kernel_arg("mfv.halt=poweroff")
        .boot()?;
    guest.wait_for_line("mfv-init: net: from mfv.net=dhcp", LINE_TIMEOUT)?;
    guest.wait_for_line(
        "mfv-init: net: eth0 picked: the first network card with carrier",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: eth0: DHCP client started", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: phase network: ok", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: shutdown: poweroff now", LINE_TIMEOUT)?;
    let status = guest.wait_for_exit(LINE_TIMEOUT)?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

#[test]
fn vlans_from_the_configuration_and_the_cli_carry_their_addresses() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("config.img");
    let config = "version = 1\n\n[host]\nhostname = \"vlanhost\"\n\n\
                  [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\n\
                  [[network.interfaces]]\nname = \"eth0.42\"\nmode = \"static\"\n\
                  addresses = [\"192.0.2.42/24\"]\nvlan = { parent = \"eth0\", id = 42 }\n";
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", config)
        .build(&volume)?;
    let mut guest = spec()?
        .nic(NicModel::VirtioNet)
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line(
        "mfv-init: net: from the configuration on /dev/",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("mfv-init: net: create vlan eth0.42", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: add 192.0.2.42/24 to eth0.42", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: phase network: ok", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;

    guest.write_serial("cat /proc/net/vlan/eth0.42; mfv net show\n")?;
    guest.wait_for_line("eth0.42  VID: 42", LINE_TIMEOUT)?;
    guest.wait_for_line("Device: eth0", LINE_TIMEOUT)?;
    guest.wait_for_line("ROUTES", LINE_TIMEOUT)?;
    let row = show_row(&guest, "eth0.42")?;
    ensure!(
        row.contains(" vlan ") && row.contains(" 192.0.2.42/24") && row.contains(" up "),
        "unexpected eth0.42 row: {row:?}"
    );

    // eth1 is in no configuration and down: the VLAN on it sets it up.
    guest.write_serial("mfv net vlan eth1 7 && mfv net static eth1.7 198.51.100.7/24\n")?;
    guest.wait_for_line("create vlan eth1.7", LINE_TIMEOUT)?;
    guest.wait_for_line("set eth1 up", LINE_TIMEOUT)?;
    guest.wait_for_line("set eth1.7 up", LINE_TIMEOUT)?;
    guest.wait_for_line("add 198.51.100.7/24 to eth1.7", LINE_TIMEOUT)?;
    guest.write_serial("cat /proc/net/vlan/eth1.7; mfv net show\n")?;
    guest.wait_for_line("eth1.7  VID: 7", LINE_TIMEOUT)?;
    guest.wait_for_line("Device: eth1", LINE_TIMEOUT)?;
    guest.wait_for_line("ROUTES", LINE_TIMEOUT)?;
    let row = show_row(&guest, "eth1.7")?;
    ensure!(
        row.contains(" vlan ") && row.contains(" 198.51.100.7/24"),
        "unexpected eth1.7 row: {row:?}"
    );
    Ok(())
}

/// Waits until bond0's active port is `port` (the console shell polls for up to 10 s) and
/// fails when it is another one.
fn wait_for_active_port(guest: &mut Guest, port: &str) -> anyhow::Result<()> {
    // The printed line must not be in the echo of the typed command: `$p` makes it differ.
    guest.write_serial(&format!(
        "p=port; i=0; until grep -q 'Active Slave: {port}$' /proc/net/bonding/bond0 || \
         [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; \
         sed -n \"s/^Currently Active Slave: /active $p: /p\" /proc/net/bonding/bond0\n"
    ))?;
    let line = guest.wait_for_line("active port: ", LINE_TIMEOUT)?;
    ensure!(
        line.trim_end() == format!("active port: {port}"),
        "bond0's active port is not {port}: {line:?}"
    );
    Ok(())
}

#[test]
fn an_active_backup_bond_fails_over_to_the_second_nic() -> anyhow::Result<()> {
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .nic(NicModel::E1000)
        .nic(NicModel::E1000)
        .forward_port_on(0, GREETING_PORT)
        .forward_port_on(1, GREETING_PORT)
        .boot()?;
    guest.wait_for_line("mfv-init: console shell started", LINE_TIMEOUT)?;

    guest.write_serial(
        "mfv net bond bond0 --port eth0 --port eth1 --primary eth0 && \
         mfv net dhcp bond0 --resolv-conf /tmp/resolv.conf\n",
    )?;
    for change in [
        "create bond bond0",
        "make eth0 a port of bond0",
        "make eth1 a port of bond0",
        "set bond0 up",
    ] {
        guest.wait_for_line(change, LINE_TIMEOUT)?;
    }
    guest.wait_for_line("address    10.0.2.15/24", LINE_TIMEOUT)?;
    guest.wait_for_line("(renew after ", LINE_TIMEOUT)?;
    guest.write_serial("cat /proc/net/bonding/bond0; mfv net show\n")?;
    guest.wait_for_line(
        "Bonding Mode: fault-tolerance (active-backup)",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("Primary Slave: eth0", LINE_TIMEOUT)?;
    guest.wait_for_line("MII Polling Interval (ms): 100", LINE_TIMEOUT)?;
    guest.wait_for_line("ROUTES", LINE_TIMEOUT)?;
    let row = show_row(&guest, "bond0")?;
    ensure!(
        row.contains(" bond ") && row.contains(" 10.0.2.15/24"),
        "unexpected bond0 row: {row:?}"
    );
    for port in ["eth0", "eth1"] {
        let row = show_row(&guest, port)?;
        ensure!(
            row.contains(" bond0 "),
            "{port} is not a port of bond0: {row:?}"
        );
    }

    guest.write_serial(&format!(
        "busybox nc -ll -p {GREETING_PORT} -e echo {GREETING} &\n"
    ))?;
    let through_eth0 = guest
        .host_port_on(0, GREETING_PORT)
        .context("the harness did not forward the greeting's port on the first NIC")?;
    let through_eth1 = guest
        .host_port_on(1, GREETING_PORT)
        .context("the harness did not forward the greeting's port on the second NIC")?;
    read_greeting(through_eth0, LINE_TIMEOUT)?;

    guest.set_link(0, false)?;
    wait_for_active_port(&mut guest, "eth1")?;
    read_greeting(through_eth1, LINE_TIMEOUT)?;

    // The primary port takes over again once its cable is back.
    guest.set_link(0, true)?;
    wait_for_active_port(&mut guest, "eth0")
}

#[test]
fn a_bond_declared_in_the_configuration_gets_its_lease_at_boot() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("config.img");
    let config = "version = 1\n\n[host]\nhostname = \"bondhost\"\n\n\
                  [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\n\
                  [[network.interfaces]]\nname = \"eth1\"\nmode = \"manual\"\n\n\
                  [[network.interfaces]]\nname = \"bond0\"\nmode = \"dhcp\"\n\
                  bond = { ports = [\"eth0\", \"eth1\"], primary = \"eth1\" }\n";
    VolumeImage::new(VolumeFilesystem::Ext4, "mfv-config")
        .file("mfv.toml", config)
        .build(&volume)?;
    let mut guest = GuestSpec::new(ApplianceImage::shared()?)
        .kernel_arg("quiet")
        .kernel_arg("mfv.rescue")
        .nic(NicModel::E1000)
        .nic(NicModel::E1000)
        .disk(DiskSpec::file(DiskInterface::Virtio, &volume))
        .boot()?;
    guest.wait_for_line("mfv-init: hostname: bondhost", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: create bond bond0", LINE_TIMEOUT)?;
    guest.wait_for_line("mfv-init: net: bond0: DHCP client started", LINE_TIMEOUT)?;
    // The lease and the console shell race: either may come first.
    guest.wait_for_line_anywhere("mfv-init: net: bond0 bound 10.0.2.15/24", LINE_TIMEOUT)?;
    guest.wait_for_line_anywhere("mfv-init: console shell started", LINE_TIMEOUT)?;
    guest.write_serial("cat /proc/net/bonding/bond0\n")?;
    guest.wait_for_line(
        "Bonding Mode: fault-tolerance (active-backup)",
        LINE_TIMEOUT,
    )?;
    guest.wait_for_line("Primary Slave: eth1", LINE_TIMEOUT)?;
    guest.wait_for_line("Currently Active Slave: eth1", LINE_TIMEOUT)?;
    Ok(())
}
