//! The composition layer of Minifed-Virt: every workflow that joins two of the leaf libraries
//! (mfv-probe, mfv-config, mfv-net, mfv-vm, mfv-auth) lives here once, so PID 1 (`mfv-init`),
//! the `mfv` command and the host daemon run the same code instead of each keeping a copy.
//!
//! - [`network`]: the configuration's `[network]` or `mfv.net=` turned into a network state
//!   and DHCP clients; the boot's network phase; the changes `mfv net` makes.
//! - [`auth`]: the `[auth]` section, with the `mfv` command's flags as overrides, turned into
//!   a user backend and an authenticator over it.
//! - [`clock`]: the clock kept with SNTP from `[host] ntp_servers`.
//! - [`console`]: the console screen PID 1 keeps on the console: the host's status, and a
//!   shell only for an administrator, audited.
//! - [`config`]: reading and changing the stored configuration one key at a time, on a store
//!   directory or the config volume discovery finds.
//! - [`daemon`]: the host daemon's answers to the protocol's requests, and who may ask
//!   what.
//! - [`discovery`]: config discovery that waits while USB storage is still becoming disks.
//! - [`hardware`]: where the modules are and which kernel parameters are module options, and
//!   driver loading with them.
//! - [`remote_log`]: a copy of every log line for the syslog server of `[log] remote`
//!   (RFC 5424 over UDP or TCP), never making the logger wait.
//! - [`services`]: the supervised services' status and output logs, as PID 1 publishes
//!   them for the host daemon.
//! - [`settings`]: what a configuration asks for that the host does not apply yet.
//! - [`setup`]: PID 1's side of first-boot setup: the setup state it publishes for the
//!   console, the lock that lets one console configure at a time, and the headless fallback.
//! - [`setup_adoption`]: the saved setup goes into use without a reboot: the host daemon
//!   hands the volume to PID 1, which applies it and says so in the host state.
//! - [`setup_files`]: the files `[auth]` names (a bind password, a CA certificate), which
//!   setup writes to the volume where the configuration says.
//! - [`setup_save`]: first-boot setup's save: the configuration, the first administrator and
//!   the web identity written to the config volume the operator chose, made first if asked.
//! - [`setup_token`]: the one-time token the console shows, which a browser exchanges once
//!   for the right to set up a host that has no configuration.
//! - [`virtualization`]: the KVM and VM network modules loaded before libvirtd starts,
//!   /dev/kvm opened to QEMU's group, and whether VMs get KVM or TCG.
//! - [`vm`]: creating a VM with its volumes rolled back on failure, and VM definitions
//!   exported to and restored from the config store.
//! - [`vm_keeper`]: VMs kept across reboots: definitions restored at boot and saved as
//!   generations on every change, pools defined, autostart, and the VMs shut down at
//!   shutdown.
//! - [`web_identity`]: the web server's key and self-signed certificate, made once and kept
//!   in the config store, with the fingerprint the console shows.
//!
//! The leaf libraries never depend on each other; converting between their types is this
//! crate's job. Binaries parse input, call into here and print.

#![warn(missing_docs)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod daemon;
pub mod discovery;
pub mod hardware;
pub mod network;
pub mod remote_log;
pub mod services;
pub mod settings;
pub mod setup;
pub mod setup_adoption;
pub mod setup_files;
pub mod setup_save;
pub mod setup_token;
pub mod storage_pools;
mod task;
pub mod virtualization;
pub mod vm;
pub mod vm_keeper;
pub mod web_identity;
