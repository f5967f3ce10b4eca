//! Fuzz target: the kernel command line parser and the boot option reader must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfv_config::cmdline::KernelCmdline;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cmdline = KernelCmdline::parse(&text);
    let _ = cmdline.boot_options();
    for param in cmdline.params() {
        let _ = param.to_string();
    }
});
