//! The private libvirtd and the tiny test guest the VM tests share: one daemon and one pair
//! of guest initrds per test binary.

use std::sync::OnceLock;

use mfv_tests::libvirtd::{GuestFiles, PrivateLibvirtd};
use serde_json::{Value, json};

/// The daemon and the guest's files.
pub struct Shared {
    /// The private libvirtd.
    pub daemon: PrivateLibvirtd,
    /// The guest's kernel and initrds.
    pub guest: GuestFiles,
}

/// The test binary's daemon and guest files, made on first use.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let daemon = PrivateLibvirtd::start().unwrap();
        let guest = GuestFiles::write_to(daemon.dir()).unwrap();
        Shared { daemon, guest }
    })
}

/// A spec of the test guest (kernel boot, serial console, no disk), with `extra` fields.
pub fn guest_spec(name: &str, extra: Value) -> Value {
    let guest = &shared().guest;
    let mut spec = json!({
        "name": name,
        "vcpus": 1,
        "memory_mib": 128,
        "serial_console": true,
        "kernel_boot": {
            "kernel": guest.kernel, "initrd": guest.initrd, "cmdline": "console=ttyS0 quiet"
        },
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}
