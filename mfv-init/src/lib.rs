//! PID 1 of the Minifed-Virt appliance and the services that come with it, as a library for
//! the crate's two binaries: `mfv-init` (PID 1, the boot sequence after another init, the
//! console screen) and `mfv-hostd` (the host daemon and the VM keeper, the services that use
//! libvirt). Two binaries, so that PID 1 links no libvirt: the linker leaves out what a binary
//! does not call, and PID 1 starts without loading libvirt and the fifty libraries it needs.

pub mod boot_log;
pub mod clock;
pub mod console;
pub mod console_screen;
pub mod hardware;
pub mod host_daemon;
pub mod init;
pub mod log_forwarding;
pub mod mounts;
pub mod power_button;
pub mod services;
pub mod signals;
pub mod system;
pub mod vm_keeper;

#[cfg(test)]
mod fake;
