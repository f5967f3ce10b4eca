//! The machine's power button: a press shuts the host down in order, as SIGTERM does.
//!
//! The kernel's ACPI button driver turns the press into an input event (KEY_POWER) on the
//! `Power Button` input device and does nothing else; on a host without acpid or logind
//! someone must read it. A thread of PID 1 reads the device's event node and sends SIGPWR to
//! PID 1, whose main loop takes it from its signalfd like any other shutdown request. A
//! hypervisor's "power off" (QEMU's `system_powerdown`, a BMC's soft power-off) arrives the
//! same way.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mfv_host::hardware::{Drivers, ProbeSettings};
use mfv_probe::modules::ModuleName;

/// The name the ACPI button driver gives the power button's input device.
const POWER_BUTTON_NAME: &str = "Power Button";
/// `EV_KEY` in `linux/input-event-codes.h`.
const EV_KEY: u16 = 1;
/// `KEY_POWER`.
const KEY_POWER: u16 = 116;
/// The size of `struct input_event` on 64-bit Linux: a `timeval`, type, code and value.
const INPUT_EVENT_BYTES: usize = 24;

/// The event nodes (`<dev>/input/eventN`) of the power buttons in `<sysfs>/class/input`.
pub fn power_button_nodes(sysfs: &Path, dev: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(sysfs.join("class/input")) else {
        return Vec::new();
    };
    let mut nodes: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("event") {
                return None;
            }
            let device_name = std::fs::read_to_string(entry.path().join("device/name")).ok()?;
            (device_name.trim() == POWER_BUTTON_NAME).then(|| dev.join("input").join(&name))
        })
        .collect();
    nodes.sort();
    nodes
}

/// Whether the raw `event` (one `struct input_event`) is a press of the power button.
pub fn is_power_press(event: &[u8; INPUT_EVENT_BYTES]) -> bool {
    let kind = u16::from_ne_bytes([event[16], event[17]]);
    let code = u16::from_ne_bytes([event[18], event[19]]);
    let value = i32::from_ne_bytes([event[20], event[21], event[22], event[23]]);
    kind == EV_KEY && code == KEY_POWER && value == 1
}

/// Loads evdev (the event nodes) through `drivers` (coldplug's module index; read now when
/// `None`) and starts a thread per power button that calls `pressed` on each press. Returns
/// the console line saying what is watched.
pub fn watch(
    probe: &ProbeSettings,
    drivers: Option<&Arc<Drivers>>,
    pressed: impl Fn() + Send + Clone + 'static,
) -> anyhow::Result<String> {
    if probe.enabled {
        let outcome =
            Drivers::shared_or_open(probe, drivers)?.load_module(&ModuleName::new("evdev"));
        if !outcome.is_available() {
            anyhow::bail!("{outcome}");
        }
    }
    let nodes = power_button_nodes(&probe.roots.sysfs, &probe.roots.dev);
    if nodes.is_empty() {
        return Ok("power button: none found; SIGTERM or `mfv host poweroff` shut down".to_owned());
    }
    for node in &nodes {
        let mut file = File::open(node).with_context(|| format!("open {}", node.display()))?;
        let pressed = pressed.clone();
        std::thread::Builder::new()
            .name("power button".to_owned())
            .spawn(move || {
                let mut event = [0u8; INPUT_EVENT_BYTES];
                while file.read_exact(&mut event).is_ok() {
                    if is_power_press(&event) {
                        pressed();
                    }
                }
            })
            .context("start the power button thread")?;
    }
    let names: Vec<String> = nodes.iter().map(|n| n.display().to_string()).collect();
    Ok(format!(
        "power button: watching {}; a press shuts the host down",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> [u8; INPUT_EVENT_BYTES] {
        let mut bytes = [0u8; INPUT_EVENT_BYTES];
        bytes[16..18].copy_from_slice(&kind.to_ne_bytes());
        bytes[18..20].copy_from_slice(&code.to_ne_bytes());
        bytes[20..24].copy_from_slice(&value.to_ne_bytes());
        bytes
    }

    #[test]
    fn only_a_press_of_the_power_key_counts() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)));
        assert!(!is_power_press(&event(EV_KEY, 30, 1)));
        assert!(!is_power_press(&event(0, 0, 0)));
    }

    #[test]
    fn power_buttons_are_found_by_their_input_device_name() {
        let dir = tempfile::tempdir().unwrap();
        let sysfs = dir.path().join("sys");
        for (event, name) in [
            ("event0", "Power Button"),
            ("event1", "AT Translated Set 2 keyboard"),
            ("event2", "Power Button"),
        ] {
            let device = sysfs.join("class/input").join(event).join("device");
            std::fs::create_dir_all(&device).unwrap();
            std::fs::write(device.join("name"), format!("{name}\n")).unwrap();
        }
        std::fs::create_dir_all(sysfs.join("class/input/input3")).unwrap();
        let dev = Path::new("/dev");
        assert_eq!(
            power_button_nodes(&sysfs, dev),
            [
                PathBuf::from("/dev/input/event0"),
                PathBuf::from("/dev/input/event2")
            ]
        );
        assert!(power_button_nodes(&dir.path().join("nothing"), dev).is_empty());
    }
}
