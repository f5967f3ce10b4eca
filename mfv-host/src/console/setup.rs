//! The console setup screen: what the console shows while the host has no usable
//! configuration, and the dialogue that gives it a network.
//!
//! The screen says why there is no configuration (the discovery report: nothing found, or the
//! invalid file with every error), lists the network cards with MAC, driver, link and
//! addresses, names the PCI and USB devices no driver took, and says where the setup stands
//! ([`SetupState`]: how long until the DHCP fallback, or the fallback's progress). Enter starts
//! the dialogue, on one console at a time ([`SetupHost::take_lock`]; another console says who
//! holds it): a card (or `d` to load a driver module from a USB stick or the config volume,
//! for hardware the image lacks), DHCP or a static IPv4 address with prefix, gateway and DNS
//! servers, an optional VLAN, then a summary to confirm. Bad input is asked again with what
//! was wrong with it. The choice becomes a `[network]` section, checked by the schema as any
//! section is, and applied through the host daemon, which hands it to PID 1 (the owner of the
//! network) and keeps it at once: the operator confirmed it here.
//!
//! The screen draws (clears the screen between showings) only on a virtual terminal with a
//! known `TERM`; elsewhere (a serial line, IPMI serial-over-LAN, `TERM=dumb`) it writes plain
//! lines and redraws only when something changed, so a serial log stays readable.
//!
//! Everything with a system behind it is the [`SetupHost`] trait, so the whole dialogue runs in
//! tests on a scripted [`Terminal`].

use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use mfv_config::schema::{
    DnsConfig, InterfaceMode, IpCidr, NetworkConfig, VlanConfig, parse_network_section,
};
use mfv_linux::terminal_text::{escape_line, escape_lines};

use super::{Terminal, Waited, WebAccess};
use crate::network::section_toml;
use crate::setup::{SetupError, SetupState, interface_entry};

/// How often the screen looks at the setup again while it waits for Enter.
pub const SETUP_REFRESH: Duration = Duration::from_secs(2);

/// The most DNS servers a resolver uses.
const MAX_DNS_SERVERS: usize = 3;

/// How the screen writes: drawn (cleared between showings) or plain lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenMode {
    /// A virtual terminal with a known `TERM`: the screen is cleared before each showing.
    Drawn,
    /// A serial line or a terminal that cannot draw: lines only, no control sequences.
    Plain,
}

impl ScreenMode {
    /// The mode for the console `tty` (`tty1`, `ttyS0`, `console`) with `TERM` set to `term`:
    /// drawn only on a virtual terminal (`ttyN`) whose `TERM` is known.
    pub fn for_console(tty: &str, term: Option<&str>) -> ScreenMode {
        let virtual_terminal = tty
            .strip_prefix("tty")
            .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()));
        let known_term = term.is_some_and(|term| {
            [
                "linux", "xterm", "vt100", "vt102", "vt220", "screen", "tmux",
            ]
            .iter()
            .any(|known| term == *known || term.starts_with(&format!("{known}-")))
        });
        if virtual_terminal && known_term {
            ScreenMode::Drawn
        } else {
            ScreenMode::Plain
        }
    }
}

/// A network card's link as the screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Up, with carrier.
    Up,
    /// Up, no carrier (no cable, switch port off).
    NoCarrier,
    /// Administratively down: its carrier is not known.
    Down,
}

impl LinkState {
    fn text(self) -> &'static str {
        match self {
            LinkState::Up => "link up",
            LinkState::NoCarrier => "no link",
            LinkState::Down => "down",
        }
    }
}

/// One network card on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupNic {
    /// The kernel's name (`eth0`).
    pub name: String,
    /// Its hardware address.
    pub mac: Option<String>,
    /// The driver bound to it (`virtio_net`).
    pub driver: Option<String>,
    /// Its link.
    pub link: LinkState,
    /// Its addresses with prefix (`10.0.2.15/24`).
    pub addresses: Vec<String>,
}

/// What the setup screen shows, read afresh at each showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupView {
    /// Why there is no configuration: the discovery report PID 1 published, if it did.
    pub reason: Option<String>,
    /// The network cards (not virtual links), in kernel order.
    pub nics: Vec<SetupNic>,
    /// PCI and USB devices without a driver, one line each (`pci 0000:00:04.0 8086:10d3`).
    pub driverless: Vec<String>,
    /// Where the setup stands, as PID 1 published it; an error when it could not be read.
    pub state: Result<Option<SetupState>, String>,
    /// The uptime when the view was read, for the fallback's countdown (not a change).
    pub uptime: Duration,
    /// How to reach config mode once a card has an address (the fallback's lease, or one
    /// the card had already): URLs, fingerprint and setup token, as the status screen shows
    /// them.
    pub web: Option<WebAccess>,
}

impl SetupView {
    /// Whether `other` shows the same thing (the countdown aside).
    fn same_as(&self, other: &SetupView) -> bool {
        self.reason == other.reason
            && self.nics == other.nics
            && self.driverless == other.driverless
            && self.state == other.state
            && self.web == other.web
    }

    fn network_chosen(&self) -> bool {
        matches!(self.state, Ok(Some(SetupState::NetworkChosen)))
    }
}

/// A driver module file found on a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFile {
    /// Where it is, as the screen names it (`modules/igb.ko on /dev/sdb1 (vfat)`).
    pub shown_as: String,
    /// The file, where the host reads it.
    pub path: PathBuf,
}

/// Why a step of the setup did not happen; the screen shows it and asks again.
#[derive(Debug, thiserror::Error)]
pub enum SetupActionError {
    /// The volumes could not be searched for driver modules.
    #[error("cannot look for driver modules: {0}")]
    DriverSearch(String),
    /// The kernel did not take the module.
    #[error("{0}")]
    DriverLoad(String),
    /// The network was not applied (the host daemon or PID 1 refused it, or could not be
    /// reached).
    #[error("the network was not changed: {0}")]
    Apply(String),
}

/// What the setup screen needs from the host.
pub trait SetupHost {
    /// The screen's facts now.
    fn view(&mut self) -> SetupView;
    /// Takes the setup for this console; [`SetupError::Held`] says which console has it.
    fn take_lock(&mut self) -> Result<(), SetupError>;
    /// Gives the setup back.
    fn release_lock(&mut self);
    /// The driver modules on USB sticks and the config volume.
    fn driver_files(&mut self) -> Result<Vec<DriverFile>, SetupActionError>;
    /// Loads `file` into the kernel; a line saying what happened.
    fn load_driver(&mut self, file: &DriverFile) -> Result<String, SetupActionError>;
    /// Applies `network_toml` (a `[network]` section) and keeps it; the changes made.
    fn apply_network(&mut self, network_toml: &str) -> Result<Vec<String>, SetupActionError>;
}

/// How the setup screen ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupEnd {
    /// The host has its network (from this console, another, or through the host daemon):
    /// the status screen follows.
    NetworkChosen,
    /// The end of input.
    End,
}

/// How one run of the dialogue ended.
enum Dialogue {
    Applied,
    Back,
    End,
}

/// A static IPv4 address as the operator gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StaticAddress {
    address: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
}

/// The network the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetworkChoice {
    nic: String,
    /// `None`: DHCP.
    address: Option<StaticAddress>,
    vlan: Option<u16>,
}

impl NetworkChoice {
    /// The link that gets the address: the card, or the VLAN link on it.
    fn link(&self) -> String {
        match self.vlan {
            None => self.nic.clone(),
            Some(id) => {
                let dotted = format!("{}.{id}", self.nic);
                if dotted.len() <= 15 {
                    dotted
                } else {
                    format!("vlan{id}")
                }
            }
        }
    }

    /// The `[network]` section.
    fn section(&self) -> NetworkConfig {
        let link = self.link();
        let mut interfaces = Vec::new();
        if self.vlan.is_some() {
            interfaces.push(interface_entry(&self.nic, InterfaceMode::Manual));
        }
        let mut configured = interface_entry(&link, InterfaceMode::Dhcp);
        configured.vlan = self.vlan.map(|id| VlanConfig {
            parent: self.nic.clone(),
            id,
        });
        let mut dns = DnsConfig::default();
        if let Some(address) = &self.address {
            configured.mode = InterfaceMode::Static;
            // A prefix of at most 32 (as parsed) is always one of an IPv4 address.
            configured.addresses = IpCidr::new(address.address.into(), address.prefix)
                .into_iter()
                .collect();
            configured.gateway = address.gateway;
            dns.servers = address.dns.iter().copied().map(Into::into).collect();
        }
        interfaces.push(configured);
        NetworkConfig {
            interfaces,
            bridge: None,
            dns,
        }
    }

    /// The summary the operator confirms.
    fn summary(&self) -> String {
        let on = match self.vlan {
            None => self.nic.clone(),
            Some(id) => format!("{} (VLAN {id} on {})", self.link(), self.nic),
        };
        match &self.address {
            None => format!("  {on}: DHCP"),
            Some(address) => {
                let mut text = format!("  {on}: {}/{}", address.address, address.prefix);
                match address.gateway {
                    Some(gateway) => write!(text, ", gateway {gateway}"),
                    None => write!(text, ", no gateway"),
                }
                .ok();
                if address.dns.is_empty() {
                    text.push_str(", no DNS server");
                } else {
                    let servers: Vec<String> =
                        address.dns.iter().map(ToString::to_string).collect();
                    write!(text, ", DNS {}", servers.join(" ")).ok();
                }
                text
            }
        }
    }
}

/// The setup screen on `terminal` until the host has its network or the input ends.
pub fn serve_setup(
    terminal: &mut impl Terminal,
    host: &mut impl SetupHost,
    mode: ScreenMode,
) -> io::Result<SetupEnd> {
    loop {
        let mut shown = host.view();
        if shown.network_chosen() {
            return Ok(SetupEnd::NetworkChosen);
        }
        draw(terminal, &shown, mode)?;
        loop {
            match terminal.wait_for_line(SETUP_REFRESH)? {
                Waited::Line => break,
                Waited::End => return Ok(SetupEnd::End),
                Waited::Nothing => {
                    let now = host.view();
                    if now.network_chosen() {
                        return Ok(SetupEnd::NetworkChosen);
                    }
                    if !now.same_as(&shown) {
                        draw(terminal, &now, mode)?;
                    }
                    shown = now;
                }
            }
        }
        if let Err(error) = host.take_lock() {
            terminal.write(&format!(
                "{}: this console shows how it goes.\n",
                escape_line(&error.to_string())
            ))?;
            continue;
        }
        let dialogue = dialogue(terminal, host, &shown);
        host.release_lock();
        match dialogue? {
            Dialogue::Applied => return Ok(SetupEnd::NetworkChosen),
            Dialogue::Back => {}
            Dialogue::End => return Ok(SetupEnd::End),
        }
    }
}

/// The screen: why, the cards, the devices without a driver, the setup's state.
fn draw(terminal: &mut impl Terminal, view: &SetupView, mode: ScreenMode) -> io::Result<()> {
    let mut text = String::new();
    if mode == ScreenMode::Drawn {
        // Cursor home, clear the screen, the title in reverse video.
        text.push_str("\x1b[H\x1b[J\x1b[7m");
    } else {
        text.push('\n');
    }
    text.push_str(&format!(
        "Minifed-Virt {}: setup",
        env!("CARGO_PKG_VERSION")
    ));
    if mode == ScreenMode::Drawn {
        text.push_str("\x1b[0m");
    }
    text.push('\n');
    text.push_str(&escape_lines(&screen_text(view)));
    terminal.write(&text)
}

/// The screen's text without its title, outside text not yet escaped.
fn screen_text(view: &SetupView) -> String {
    let mut text = String::from("This host has no usable configuration:\n");
    match &view.reason {
        Some(report) => {
            for line in report.lines() {
                let _ = writeln!(text, "  {line}");
            }
        }
        None => text.push_str("  (the boot published no discovery report)\n"),
    }
    text.push_str("\nNetwork cards:\n");
    if view.nics.is_empty() {
        text.push_str("  none found: load a driver for the card (d after Enter)\n");
    }
    let width = view
        .nics
        .iter()
        .map(|nic| nic.name.len())
        .max()
        .unwrap_or(0);
    let driver_width = view
        .nics
        .iter()
        .map(|nic| nic.driver.as_deref().unwrap_or("no driver").len())
        .max()
        .unwrap_or(0);
    for (number, nic) in view.nics.iter().enumerate() {
        let mut line = format!(
            "  {}) {:width$}  {:17}  {:driver_width$}  {}",
            number + 1,
            nic.name,
            nic.mac.as_deref().unwrap_or("no MAC"),
            nic.driver.as_deref().unwrap_or("no driver"),
            nic.link.text(),
        );
        for address in &nic.addresses {
            let _ = write!(line, "  {address}");
        }
        let _ = writeln!(text, "{}", line.trim_end());
    }
    if !view.driverless.is_empty() {
        text.push_str("Devices without a driver (d after Enter loads one from a USB stick or the config volume):\n");
        for device in &view.driverless {
            let _ = writeln!(text, "  {device}");
        }
    }
    text.push('\n');
    let _ = writeln!(text, "{}", state_line(view));
    if let Some(web) = view.web.as_ref().filter(|web| !web.urls.is_empty()) {
        let _ = write!(text, "{web}");
    }
    text.push_str("Press Enter to set up the network.\n");
    text
}

/// Where the setup stands, in one line.
fn state_line(view: &SetupView) -> String {
    match &view.state {
        Err(error) => format!("The setup's state cannot be read: {error}"),
        Ok(None) => "The boot published no setup state.".to_owned(),
        Ok(Some(SetupState::WaitingForOperator { fallback_at_ms, .. })) => {
            let at = Duration::from_millis(*fallback_at_ms);
            let left = at.saturating_sub(view.uptime).as_secs();
            format!("Without an answer here, DHCP starts on the first card with link in {left} s.")
        }
        Ok(Some(SetupState::FallbackRetrying {
            timeout_secs,
            reason,
        })) => format!(
            "Nobody chose a network within {timeout_secs} s, and {reason}: looking again \
             every 5 s."
        ),
        Ok(Some(SetupState::FallbackDhcp {
            timeout_secs,
            interface,
        })) => {
            let addresses = view
                .nics
                .iter()
                .find(|nic| &nic.name == interface)
                .map(|nic| nic.addresses.join(" "))
                .unwrap_or_default();
            if addresses.is_empty() {
                format!(
                    "Nobody chose a network within {timeout_secs} s: DHCP on {interface}, \
                     waiting for a lease."
                )
            } else {
                format!(
                    "Nobody chose a network within {timeout_secs} s: DHCP on {interface} \
                     has {addresses}."
                )
            }
        }
        Ok(Some(SetupState::NetworkChosen)) => "The network was chosen.".to_owned(),
    }
}

/// One run of the dialogue, with the setup held.
fn dialogue(
    terminal: &mut impl Terminal,
    host: &mut impl SetupHost,
    view: &SetupView,
) -> io::Result<Dialogue> {
    let names: Vec<String> = view.nics.iter().map(|nic| nic.name.clone()).collect();
    let prompt = match names.len() {
        0 => "No network card: d loads a driver, empty goes back: ".to_owned(),
        1 => format!("Network card (1 or {}; d loads a driver): ", names[0]),
        count => format!("Network card (1 to {count} or its name; d loads a driver): "),
    };
    let Some(pick) = ask(terminal, &prompt, |answer| pick_card(answer, &names))? else {
        return Ok(Dialogue::End);
    };
    let nic = match pick {
        Pick::Card(nic) => nic,
        Pick::Driver => return load_driver(terminal, host),
        Pick::Back => return Ok(Dialogue::Back),
    };
    let Some(dhcp) = ask(
        terminal,
        "DHCP or a static address? (dhcp or static, empty: dhcp): ",
        |answer| match answer.to_ascii_lowercase().as_str() {
            "" | "dhcp" | "d" => Ok(true),
            "static" | "s" => Ok(false),
            _ => Err(format!("{answer:?} is neither dhcp nor static")),
        },
    )?
    else {
        return Ok(Dialogue::End);
    };
    let address = if dhcp {
        None
    } else {
        match ask_static(terminal)? {
            Some(address) => Some(address),
            None => return Ok(Dialogue::End),
        }
    };
    let Some(vlan) = ask(terminal, "VLAN id (1 to 4094, empty: none): ", parse_vlan)? else {
        return Ok(Dialogue::End);
    };
    let choice = NetworkChoice { nic, address, vlan };
    let text = section_toml(&choice.section());
    if let Err(errors) = parse_network_section(&text) {
        terminal.write("This network cannot be applied:\n")?;
        for error in errors {
            terminal.write(&format!("  {}\n", escape_line(&error.to_string())))?;
        }
        return Ok(Dialogue::Back);
    }
    terminal.write(&format!(
        "The host's network will be:\n{}\n",
        escape_line(&choice.summary())
    ))?;
    let Some(apply) = ask(terminal, "Apply it? (yes or no): ", |answer| {
        match answer.to_ascii_lowercase().as_str() {
            "yes" | "y" => Ok(true),
            "no" | "n" => Ok(false),
            _ => Err(format!("{answer:?}: answer yes or no")),
        }
    })?
    else {
        return Ok(Dialogue::End);
    };
    if !apply {
        terminal.write("Nothing was changed.\n")?;
        return Ok(Dialogue::Back);
    }
    terminal.write("Applying...\n")?;
    match host.apply_network(&text) {
        Ok(changes) => {
            for change in changes {
                terminal.write(&format!("  {}\n", escape_line(&change)))?;
            }
            terminal.write(
                "The network is set up (until the host restarts; the configuration saved \
                 later keeps it).\n",
            )?;
            Ok(Dialogue::Applied)
        }
        Err(error) => {
            terminal.write(&format!("{}\n", escape_line(&error.to_string())))?;
            Ok(Dialogue::Back)
        }
    }
}

/// What the operator picked at the card prompt.
enum Pick {
    Card(String),
    Driver,
    Back,
}

fn pick_card(answer: &str, names: &[String]) -> Result<Pick, String> {
    if answer.eq_ignore_ascii_case("d") {
        return Ok(Pick::Driver);
    }
    if names.is_empty() && answer.is_empty() {
        return Ok(Pick::Back);
    }
    if answer.is_empty() && names.len() == 1 {
        return Ok(Pick::Card(names[0].clone()));
    }
    if let Some(name) = names.iter().find(|name| *name == answer) {
        return Ok(Pick::Card(name.clone()));
    }
    match answer.parse::<usize>() {
        Ok(number) if (1..=names.len()).contains(&number) => {
            Ok(Pick::Card(names[number - 1].clone()))
        }
        _ if names.is_empty() => Err(format!(
            "{answer:?}: there is no network card; d loads a driver"
        )),
        _ => Err(format!(
            "{answer:?} is not one of the network cards: type a number from 1 to {}, a card's \
             name, or d",
            names.len()
        )),
    }
}

/// The static address, its gateway and the DNS servers.
fn ask_static(terminal: &mut impl Terminal) -> io::Result<Option<StaticAddress>> {
    let Some((address, prefix)) = ask(
        terminal,
        "Address with prefix length (like 192.0.2.10/24): ",
        parse_address,
    )?
    else {
        return Ok(None);
    };
    let Some(gateway) = ask(terminal, "Gateway (empty: none): ", |answer| {
        parse_gateway(answer, address, prefix)
    })?
    else {
        return Ok(None);
    };
    let Some(dns) = ask(
        terminal,
        "DNS servers, separated by spaces (empty: none): ",
        parse_dns,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(StaticAddress {
        address,
        prefix,
        gateway,
        dns,
    }))
}

fn parse_address(answer: &str) -> Result<(Ipv4Addr, u8), String> {
    let Some((address, prefix)) = answer.split_once('/') else {
        return Err(format!(
            "{answer:?}: the prefix length is missing (like 192.0.2.10/24)"
        ));
    };
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{answer:?}: {address:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|prefix| (1..=32).contains(prefix))
        .ok_or_else(|| format!("{answer:?}: the prefix length must be from 1 to 32"))?;
    Ok((address, prefix))
}

fn parse_gateway(answer: &str, address: Ipv4Addr, prefix: u8) -> Result<Option<Ipv4Addr>, String> {
    if answer.is_empty() {
        return Ok(None);
    }
    let gateway: Ipv4Addr = answer
        .parse()
        .map_err(|_| format!("{answer:?} is not an IPv4 address"))?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    if u32::from(gateway) & mask != u32::from(address) & mask {
        let network = Ipv4Addr::from(u32::from(address) & mask);
        return Err(format!(
            "{answer:?} is not in {network}/{prefix}, the address's network: the host could not \
             reach it"
        ));
    }
    if gateway == address {
        return Err(format!("{answer:?} is the host's own address"));
    }
    Ok(Some(gateway))
}

fn parse_dns(answer: &str) -> Result<Vec<Ipv4Addr>, String> {
    let servers = answer
        .split([' ', ','])
        .filter(|server| !server.is_empty())
        .map(|server| {
            server
                .parse()
                .map_err(|_| format!("{server:?} is not an IPv4 address"))
        })
        .collect::<Result<Vec<Ipv4Addr>, String>>()?;
    if servers.len() > MAX_DNS_SERVERS {
        return Err(format!(
            "{} DNS servers: at most {MAX_DNS_SERVERS} are used",
            servers.len()
        ));
    }
    Ok(servers)
}

fn parse_vlan(answer: &str) -> Result<Option<u16>, String> {
    if answer.is_empty() {
        return Ok(None);
    }
    answer
        .parse::<u16>()
        .ok()
        .filter(|id| (1..=4094).contains(id))
        .map(Some)
        .ok_or_else(|| format!("{answer:?}: a VLAN id is a number from 1 to 4094"))
}

/// The driver dialogue: the modules found, one to load.
fn load_driver(terminal: &mut impl Terminal, host: &mut impl SetupHost) -> io::Result<Dialogue> {
    terminal.write("Looking for driver modules on USB sticks and the config volume...\n")?;
    let files = match host.driver_files() {
        Ok(files) => files,
        Err(error) => {
            terminal.write(&format!("{}\n", escape_line(&error.to_string())))?;
            return Ok(Dialogue::Back);
        }
    };
    if files.is_empty() {
        terminal.write(
            "No driver module found: put the .ko file (or .ko.xz, .ko.zst, .ko.gz) at the top \
             or in modules/ of a USB stick or the config volume.\n",
        )?;
        return Ok(Dialogue::Back);
    }
    for (number, file) in files.iter().enumerate() {
        terminal.write(&format!(
            "  {}) {}\n",
            number + 1,
            escape_line(&file.shown_as)
        ))?;
    }
    let count = files.len();
    let prompt = format!("Driver to load (1 to {count}, empty: none): ");
    let Some(choice) = ask(terminal, &prompt, |answer| {
        if answer.is_empty() {
            return Ok(None);
        }
        match answer.parse::<usize>() {
            Ok(number) if (1..=count).contains(&number) => Ok(Some(number - 1)),
            _ => Err(format!("{answer:?}: type a number from 1 to {count}")),
        }
    })?
    else {
        return Ok(Dialogue::End);
    };
    if let Some(index) = choice {
        let line = match host.load_driver(&files[index]) {
            Ok(line) => line,
            Err(error) => error.to_string(),
        };
        terminal.write(&format!("{}\n", escape_line(&line)))?;
    }
    Ok(Dialogue::Back)
}

/// Asks with `prompt` until `parse` takes the answer (trimmed); each refusal is shown. `None`
/// at the end of input.
fn ask<T>(
    terminal: &mut impl Terminal,
    prompt: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> io::Result<Option<T>> {
    loop {
        terminal.write(prompt)?;
        let Some(answer) = terminal.read_line(true)? else {
            return Ok(None);
        };
        match parse(answer.trim()) {
            Ok(value) => return Ok(Some(value)),
            Err(problem) => terminal.write(&format!("  {}\n", escape_line(&problem)))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::super::tests::{NOTHING, ScriptedTerminal};
    use super::*;
    use crate::console::SetupTokenState;

    /// A host whose views come from a list (the last one stays), with a lock another
    /// console may hold, driver files, and the sections it was asked to apply.
    struct RecordingHost {
        views: VecDeque<SetupView>,
        held_by: Option<&'static str>,
        locked: bool,
        drivers: Vec<DriverFile>,
        loaded: Vec<PathBuf>,
        applied: Vec<String>,
        apply_fails: bool,
        calls: Vec<&'static str>,
    }

    impl RecordingHost {
        fn new(views: Vec<SetupView>) -> RecordingHost {
            RecordingHost {
                views: views.into(),
                held_by: None,
                locked: false,
                drivers: Vec::new(),
                loaded: Vec::new(),
                applied: Vec::new(),
                apply_fails: false,
                calls: Vec::new(),
            }
        }
    }

    impl SetupHost for RecordingHost {
        fn view(&mut self) -> SetupView {
            if self.views.len() > 1 {
                self.views.pop_front().unwrap()
            } else {
                self.views[0].clone()
            }
        }

        fn take_lock(&mut self) -> Result<(), SetupError> {
            self.calls.push("take lock");
            match self.held_by {
                Some(holder) => Err(SetupError::Held {
                    holder: holder.to_owned(),
                }),
                None => {
                    self.locked = true;
                    Ok(())
                }
            }
        }

        fn release_lock(&mut self) {
            self.calls.push("release lock");
            self.locked = false;
        }

        fn driver_files(&mut self) -> Result<Vec<DriverFile>, SetupActionError> {
            assert!(self.locked, "drivers are looked for with the setup held");
            Ok(self.drivers.clone())
        }

        fn load_driver(&mut self, file: &DriverFile) -> Result<String, SetupActionError> {
            self.loaded.push(file.path.clone());
            if file.path.ends_with("broken.ko") {
                return Err(SetupActionError::DriverLoad(
                    "cannot load module broken: ENOEXEC: Exec format error".into(),
                ));
            }
            Ok("igb loaded".into())
        }

        fn apply_network(&mut self, network_toml: &str) -> Result<Vec<String>, SetupActionError> {
            assert!(self.locked, "the network is applied with the setup held");
            self.applied.push(network_toml.to_owned());
            if self.apply_fails {
                return Err(SetupActionError::Apply(
                    "cannot connect to /run/mfv/host.sock".into(),
                ));
            }
            Ok(vec!["eth0: DHCP client started".into()])
        }
    }

    fn nic(name: &str, mac: &str, driver: &str, link: LinkState) -> SetupNic {
        SetupNic {
            name: name.into(),
            mac: Some(mac.into()),
            driver: Some(driver.into()),
            link,
            addresses: Vec::new(),
        }
    }

    fn view() -> SetupView {
        SetupView {
            reason: Some(
                "config: no configuration found (3 candidates looked at)\n  \
                 /dev/sda1: absent"
                    .into(),
            ),
            nics: vec![
                nic("eth0", "52:54:00:12:34:56", "virtio_net", LinkState::Up),
                nic("eth1", "52:54:00:12:34:57", "e1000", LinkState::NoCarrier),
            ],
            driverless: vec!["pci 0000:00:05.0 8086:10d3 (network controller)".into()],
            state: Ok(Some(SetupState::WaitingForOperator {
                timeout_secs: 60,
                fallback_at_ms: 60_000,
            })),
            uptime: Duration::from_secs(18),
            web: None,
        }
    }

    /// Serves the setup screen in plain mode with `host`, answering with `input`.
    fn serve(host: &mut RecordingHost, input: &[&'static str]) -> (String, SetupEnd) {
        serve_in(host, input, ScreenMode::Plain)
    }

    fn serve_in(
        host: &mut RecordingHost,
        input: &[&'static str],
        mode: ScreenMode,
    ) -> (String, SetupEnd) {
        let mut terminal = ScriptedTerminal {
            input: input.iter().copied().collect(),
            ..ScriptedTerminal::default()
        };
        let end = serve_setup(&mut terminal, host, mode).unwrap();
        (terminal.output, end)
    }

    const DHCP_ETH0: &str = "[[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n";

    #[test]
    fn the_screen_says_why_lists_the_cards_and_counts_down_to_the_fallback() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, end) = serve(&mut host, &[]);
        assert_eq!(end, SetupEnd::End);
        assert_eq!(
            output,
            format!(
                "\nMinifed-Virt {}: setup\n\
                 This host has no usable configuration:\n  \
                 config: no configuration found (3 candidates looked at)\n    \
                 /dev/sda1: absent\n\
                 \n\
                 Network cards:\n  \
                 1) eth0  52:54:00:12:34:56  virtio_net  link up\n  \
                 2) eth1  52:54:00:12:34:57  e1000       no link\n\
                 Devices without a driver (d after Enter loads one from a USB stick or the \
                 config volume):\n  \
                 pci 0000:00:05.0 8086:10d3 (network controller)\n\
                 \n\
                 Without an answer here, DHCP starts on the first card with link in 42 s.\n\
                 Press Enter to set up the network.\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(host.calls.is_empty());
    }

    #[test]
    fn picking_a_card_and_dhcp_applies_it_and_ends_the_setup() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, end) = serve(&mut host, &["", "1", "", "", "yes"]);
        assert_eq!(end, SetupEnd::NetworkChosen);
        assert_eq!(host.applied, [format!("{DHCP_ETH0}\n[network.dns]\n")]);
        assert_eq!(host.calls, ["take lock", "release lock"]);
        assert!(
            output.ends_with(
                "Network card (1 to 2 or its name; d loads a driver): 1\n\
                 DHCP or a static address? (dhcp or static, empty: dhcp): \n\
                 VLAN id (1 to 4094, empty: none): \n\
                 The host's network will be:\n  eth0: DHCP\n\
                 Apply it? (yes or no): yes\n\
                 Applying...\n  eth0: DHCP client started\n\
                 The network is set up (until the host restarts; the configuration saved later \
                 keeps it).\n"
            ),
            "{output}"
        );
    }

    #[test]
    fn a_card_is_picked_by_name_and_a_wrong_one_is_asked_again() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, _) = serve(&mut host, &["", "eth7", "3", "eth1", "dhcp", "", "y"]);
        assert!(output.contains(
            "  \"eth7\" is not one of the network cards: type a number from 1 to 2, a card's \
             name, or d\n"
        ));
        assert!(output.contains("  \"3\" is not one of the network cards"));
        assert!(
            host.applied[0].contains("name = \"eth1\""),
            "{:?}",
            host.applied
        );
    }

    #[test]
    fn a_static_address_is_asked_again_until_every_part_is_right() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, end) = serve(
            &mut host,
            &[
                "",
                "1",
                "fixed",
                "static",
                "10.0.2.99",
                "10.0.2.x/24",
                "10.0.2.99/33",
                "10.0.2.99/24",
                "10.0.3.1",
                "10.0.2.2",
                "10.0.2.3 dns.example",
                "10.0.2.3, 10.0.2.4",
                "",
                "yes",
            ],
        );
        assert_eq!(end, SetupEnd::NetworkChosen);
        for problem in [
            "  \"fixed\" is neither dhcp nor static\n",
            "  \"10.0.2.99\": the prefix length is missing (like 192.0.2.10/24)\n",
            "  \"10.0.2.x/24\": \"10.0.2.x\" is not an IPv4 address\n",
            "  \"10.0.2.99/33\": the prefix length must be from 1 to 32\n",
            "  \"10.0.3.1\" is not in 10.0.2.0/24, the address's network: the host could not \
             reach it\n",
            "  \"dns.example\" is not an IPv4 address\n",
        ] {
            assert!(output.contains(problem), "{problem:?} not in\n{output}");
        }
        assert!(output.contains("  eth0: 10.0.2.99/24, gateway 10.0.2.2, DNS 10.0.2.3 10.0.2.4\n"));
        assert_eq!(
            host.applied,
            [
                "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
              addresses = [\"10.0.2.99/24\"]\ngateway = \"10.0.2.2\"\n\n\
              [network.dns]\nservers = [\"10.0.2.3\", \"10.0.2.4\"]\n"
            ]
        );
    }

    #[test]
    fn a_vlan_puts_the_address_on_a_vlan_link_of_the_card() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, _) = serve(&mut host, &["", "2", "", "5000", "0", "20", "yes"]);
        assert!(output.contains("  \"5000\": a VLAN id is a number from 1 to 4094\n"));
        assert!(output.contains("  \"0\": a VLAN id is a number from 1 to 4094\n"));
        assert!(
            output.contains("  eth1.20 (VLAN 20 on eth1): DHCP\n"),
            "{output}"
        );
        let section = parse_network_section(&host.applied[0]).unwrap();
        assert_eq!(section.interfaces.len(), 2);
        assert_eq!(section.interfaces[0].name, "eth1");
        assert_eq!(section.interfaces[0].mode, InterfaceMode::Manual);
        assert_eq!(section.interfaces[1].name, "eth1.20");
        assert_eq!(section.interfaces[1].mode, InterfaceMode::Dhcp);
        assert_eq!(
            section.interfaces[1].vlan,
            Some(VlanConfig {
                parent: "eth1".into(),
                id: 20
            })
        );
    }

    #[test]
    fn a_vlan_link_whose_dotted_name_is_too_long_is_named_by_its_id() {
        let choice = NetworkChoice {
            nic: "enp0s20f0u1u2".into(),
            address: None,
            vlan: Some(300),
        };
        assert_eq!(choice.link(), "vlan300");
        parse_network_section(&section_toml(&choice.section())).unwrap();
    }

    #[test]
    fn what_the_schema_refuses_is_shown_and_nothing_is_applied() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, end) = serve(&mut host, &["", "1", "static", "10.0.2.0/24", "", "", ""]);
        assert_eq!(end, SetupEnd::End);
        assert!(
            output.contains("This network cannot be applied:\n  "),
            "{output}"
        );
        assert!(
            output.contains("network.interfaces[0].addresses[0]"),
            "{output}"
        );
        assert!(host.applied.is_empty());
        assert_eq!(output.matches("Press Enter").count(), 2);
    }

    #[test]
    fn no_applies_nothing_and_shows_the_screen_again() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, end) = serve(&mut host, &["", "1", "", "", "maybe", "no"]);
        assert_eq!(end, SetupEnd::End);
        assert!(output.contains("  \"maybe\": answer yes or no\n"));
        assert!(output.contains("Nothing was changed.\n"));
        assert!(host.applied.is_empty());
        assert_eq!(host.calls, ["take lock", "release lock"]);
        assert_eq!(output.matches("Press Enter").count(), 2);
    }

    #[test]
    fn a_network_the_host_does_not_apply_is_said_and_the_setup_goes_on() {
        let mut host = RecordingHost::new(vec![view()]);
        host.apply_fails = true;
        let (output, end) = serve(&mut host, &["", "1", "", "", "yes"]);
        assert_eq!(end, SetupEnd::End);
        assert!(
            output.contains("the network was not changed: cannot connect to /run/mfv/host.sock\n")
        );
        assert_eq!(output.matches("Press Enter").count(), 2);
    }

    #[test]
    fn a_setup_held_on_another_console_is_named_and_this_one_only_watches() {
        let mut host = RecordingHost::new(vec![view()]);
        host.held_by = Some("tty1");
        let (output, end) = serve(&mut host, &["", "1"]);
        assert_eq!(end, SetupEnd::End);
        assert!(output.contains("the setup is in use on tty1: this console shows how it goes.\n"));
        assert!(host.applied.is_empty());
        assert_eq!(host.calls, ["take lock", "take lock"]);
    }

    #[test]
    fn a_network_chosen_elsewhere_ends_the_setup_screen() {
        let mut chosen = view();
        chosen.state = Ok(Some(SetupState::NetworkChosen));
        let mut host = RecordingHost::new(vec![view(), chosen]);
        let (output, end) = serve(&mut host, &[NOTHING]);
        assert_eq!(end, SetupEnd::NetworkChosen);
        assert_eq!(output.matches("Press Enter").count(), 1);
    }

    #[test]
    fn the_screen_is_written_again_only_when_something_but_the_countdown_changed() {
        let mut later = view();
        later.uptime = Duration::from_secs(20);
        let mut lease = view();
        lease.uptime = Duration::from_secs(65);
        lease.state = Ok(Some(SetupState::FallbackDhcp {
            timeout_secs: 60,
            interface: "eth0".into(),
        }));
        let mut bound = lease.clone();
        bound.nics[0].addresses = vec!["10.0.2.15/24".into()];
        let mut host = RecordingHost::new(vec![view(), later, lease, bound]);
        let (output, _) = serve(&mut host, &[NOTHING, NOTHING, NOTHING]);
        assert_eq!(output.matches("Press Enter").count(), 3, "{output}");
        assert!(
            output.contains(
                "Nobody chose a network within 60 s: DHCP on eth0, waiting for a lease.\n"
            )
        );
        assert!(
            output.contains("  1) eth0  52:54:00:12:34:56  virtio_net  link up  10.0.2.15/24\n")
        );
        assert!(
            output.contains("Nobody chose a network within 60 s: DHCP on eth0 has 10.0.2.15/24.\n")
        );
    }

    #[test]
    fn once_a_card_has_an_address_the_screen_shows_how_to_reach_config_mode() {
        let mut lease = view();
        lease.state = Ok(Some(SetupState::FallbackDhcp {
            timeout_secs: 60,
            interface: "eth0".into(),
        }));
        lease.nics[0].addresses = vec!["10.0.2.15/24".into()];
        let web = WebAccess {
            urls: vec!["https://10.0.2.15/".into()],
            fingerprint: ["AB"; 32].join(":"),
            setup_token: Some(SetupTokenState::Waiting("abcde-fghjk-mnpqr-stuvw".into())),
        };
        lease.web = Some(web.clone());
        let mut used = lease.clone();
        used.web = Some(WebAccess {
            setup_token: Some(SetupTokenState::Used),
            ..web
        });
        let mut host = RecordingHost::new(vec![lease, used]);
        let (output, _) = serve(&mut host, &[NOTHING, NOTHING]);
        let waiting = output
            .find("DHCP on eth0 has 10.0.2.15/24.\n  web: https://10.0.2.15/\n")
            .unwrap_or_else(|| panic!("{output}"));
        assert!(
            output[waiting..].contains("  setup token: abcde-fghjk-mnpqr-stuvw\n"),
            "{output}"
        );
        // A browser took the token: the screen is written again and says so.
        assert!(output.contains("  setup token: used"), "{output}");
        assert_eq!(output.matches("Press Enter").count(), 2, "{output}");
    }

    #[test]
    fn the_address_lines_wait_for_an_address() {
        let mut waiting = view();
        waiting.web = Some(WebAccess {
            urls: Vec::new(),
            fingerprint: ["AB"; 32].join(":"),
            setup_token: Some(SetupTokenState::Waiting("abcde-fghjk-mnpqr-stuvw".into())),
        });
        let (output, _) = serve(&mut RecordingHost::new(vec![waiting]), &[]);
        assert!(!output.contains("setup token"), "{output}");
    }

    #[test]
    fn a_fallback_without_a_card_with_link_says_why() {
        let mut retrying = view();
        retrying.state = Ok(Some(SetupState::FallbackRetrying {
            timeout_secs: 5,
            reason: "no network card has carrier after 2 s (looked at eth0)".into(),
        }));
        let (output, _) = serve(&mut RecordingHost::new(vec![retrying]), &[]);
        assert!(output.contains(
            "Nobody chose a network within 5 s, and no network card has carrier after 2 s \
             (looked at eth0): looking again every 5 s.\n"
        ));
    }

    #[test]
    fn a_driver_module_is_loaded_and_the_cards_are_shown_again() {
        let mut host = RecordingHost::new(vec![view()]);
        host.drivers = vec![
            DriverFile {
                shown_as: "igb.ko on /dev/sdb1 (vfat)".into(),
                path: "/run/mfv/drivers/sdb1/igb.ko".into(),
            },
            DriverFile {
                shown_as: "modules/broken.ko on /dev/sdb1 (vfat)".into(),
                path: "/run/mfv/drivers/sdb1/modules/broken.ko".into(),
            },
        ];
        let (output, _) = serve(&mut host, &["", "d", "9", "1", "", "D", "2"]);
        assert!(
            output.contains(
                "Looking for driver modules on USB sticks and the config volume...\n  \
             1) igb.ko on /dev/sdb1 (vfat)\n  2) modules/broken.ko on /dev/sdb1 (vfat)\n\
             Driver to load (1 to 2, empty: none): 9\n  \"9\": type a number from 1 to 2\n\
             Driver to load (1 to 2, empty: none): 1\nigb loaded\n"
            ),
            "{output}"
        );
        assert!(output.contains("cannot load module broken: ENOEXEC: Exec format error\n"));
        assert_eq!(host.loaded.len(), 2);
        assert_eq!(output.matches("Press Enter").count(), 3);
    }

    #[test]
    fn without_driver_modules_the_screen_says_where_to_put_one() {
        let mut host = RecordingHost::new(vec![view()]);
        let (output, _) = serve(&mut host, &["", "d"]);
        assert!(output.contains("No driver module found: put the .ko file"));
    }

    #[test]
    fn without_a_card_the_operator_is_offered_a_driver() {
        let mut empty = view();
        empty.nics.clear();
        let mut host = RecordingHost::new(vec![empty]);
        let (output, _) = serve(&mut host, &["", "1", ""]);
        assert!(output.contains("  none found: load a driver for the card (d after Enter)\n"));
        assert!(output.contains("  \"1\": there is no network card; d loads a driver\n"));
        assert_eq!(output.matches("Press Enter").count(), 2);
    }

    #[test]
    fn the_drawn_screen_clears_and_the_plain_one_writes_no_control_sequence() {
        let mut host = RecordingHost::new(vec![view()]);
        let (drawn, _) = serve_in(&mut host, &[], ScreenMode::Drawn);
        assert!(
            drawn.starts_with("\x1b[H\x1b[J\x1b[7mMinifed-Virt"),
            "{drawn:?}"
        );
        let (plain, _) = serve(
            &mut RecordingHost::new(vec![view()]),
            &["", "1", "", "", "yes"],
        );
        assert!(!plain.contains('\x1b'), "{plain:?}");
    }

    #[test]
    fn only_a_virtual_terminal_with_a_known_term_draws() {
        for (tty, term, mode) in [
            ("tty1", Some("linux"), ScreenMode::Drawn),
            ("tty12", Some("xterm-256color"), ScreenMode::Drawn),
            ("ttyS0", Some("linux"), ScreenMode::Plain),
            ("ttyAMA0", Some("vt102"), ScreenMode::Plain),
            ("console", Some("linux"), ScreenMode::Plain),
            ("tty1", Some("dumb"), ScreenMode::Plain),
            ("tty1", Some("wyse50"), ScreenMode::Plain),
            ("tty1", None, ScreenMode::Plain),
            ("tty", Some("linux"), ScreenMode::Plain),
        ] {
            assert_eq!(ScreenMode::for_console(tty, term), mode, "{tty} {term:?}");
        }
    }

    #[test]
    fn what_the_screen_quotes_is_escaped() {
        let mut hostile = view();
        hostile.reason = Some("config: mfv.toml on /dev/sdb1 (LABEL=\x1b[2Jx) is invalid".into());
        hostile.nics[0].name = "eth\x1b[2J".into();
        let (output, _) = serve(&mut RecordingHost::new(vec![hostile]), &["", "eth\x1b"]);
        // The scripted terminal echoes the input as it came; what the screen writes is escaped.
        let (screen, answer) = output.split_once("Network card (").unwrap();
        assert!(!screen.contains('\x1b'), "{screen:?}");
        assert!(screen.contains("LABEL=\\u001b[2Jx"));
        assert!(screen.contains("1) eth\\u001b[2J  52:54"));
        assert!(answer.contains("  \"eth\\u{1b}\" is not one"), "{answer}");
    }

    #[test]
    fn every_section_the_dialogue_writes_reads_back_as_the_choice() {
        let address = StaticAddress {
            address: Ipv4Addr::new(192, 0, 2, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
        };
        for (address, vlan) in [
            (None, None),
            (Some(address.clone()), None),
            (Some(address), Some(7)),
        ] {
            let choice = NetworkChoice {
                nic: "eth0".into(),
                address,
                vlan,
            };
            let section = choice.section();
            assert_eq!(
                parse_network_section(&section_toml(&section)).unwrap(),
                section
            );
        }
    }
}
