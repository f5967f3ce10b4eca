//! mfv-config: where a Minifed-Virt host's configuration comes from and where it is kept.
//!
//! # What this crate owns
//! - The **kernel command line** ([`cmdline`]): parsing with the kernel's own quoting rules and
//!   the typed `mfv.*` boot options (config source override, provisioning, halt action, debug).
//! - **Config discovery**: which volumes are candidates, in which order, and why each one was
//!   taken or skipped.
//! - **Mounting** a candidate volume read-only to read its configuration.
//! - The configuration **schema**, its **validation** (every error with its position) and the
//!   **migration** of older versions.
//! - The **atomic store** the configuration is saved to, which keeps the previous generation.
//!
//! # What this crate never does
//! It never loads drivers, never configures the network and never talks to libvirt. It reads
//! and writes configuration; applying it is the caller's job. It has no path or behaviour that
//! only makes sense inside the appliance: every system path is a parameter.
#![warn(missing_docs)]

pub mod cmdline;
