//! mfv-config: where a Minifed-Virt host's configuration comes from and where it is kept.
//!
//! # What this crate owns
//! - The **kernel command line** ([`cmdline`]): parsing with the kernel's own quoting rules and
//!   the typed `mfv.*` boot options (config source override, provisioning, halt action, debug).
//! - **Config discovery** ([`discovery`]): which volumes are candidates, in which order, and why each one was
//!   taken or skipped.
//! - **Mounting** a candidate volume read-only to read its configuration ([`mount`]), and
//!   **formatting** a partition as a config volume after explicit confirmation
//!   ([`format`](mod@format)).
//! - The configuration **schema**, its **validation** (every error with its position) and the
//!   **migration** of older versions.
//! - **Reading** a file from a volume nobody vouches for (mfv-linux's
//!   [`regular_file`](mfv_linux::regular_file)): regular files only, no symbolic links, no
//!   waiting, size capped; discovery and the store both read through it.
//! - The **atomic store** the configuration is saved to, which keeps the previous generation
//!   as last-known-good ([`store`]: a directory on the config volume, or SQLite).
//!
//! # What this crate never does
//! It never loads drivers, never configures the network and never talks to libvirt. It reads
//! and writes configuration; applying it is the caller's job. It has no path or behaviour that
//! only makes sense inside the appliance: every system path is a parameter.
#![warn(missing_docs)]

pub mod cmdline;
pub mod discovery;
pub mod format;
pub mod mount;
pub mod pools;
pub mod schema;
pub mod store;
