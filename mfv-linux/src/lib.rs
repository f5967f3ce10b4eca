//! Small Linux facts that more than one Minifed-Virt library needs, kept here once so the
//! libraries stay independent of each other and never drift apart:
//!
//! - [`interface_name`]: what the kernel accepts as a network interface name;
//! - [`OperState`]: an interface's operational state (RFC 2863), spelled as the kernel does in
//!   sysfs, whether it was read from sysfs or from netlink;
//! - [`mountinfo`]: the entries of `/proc/<pid>/mountinfo` with the kernel's escapes decoded;
//! - [`atomic_file`]: replacing a file so that a reader or a power cut sees the old contents
//!   or the new, never a mix;
//! - [`block`]: the device node of a block device sysfs names, and whether a CD/DVD drive
//!   holds a disc;
//! - [`loopback`]: whether a host name or address never leaves this machine;
//! - [`error_chain`]: an error with its causes on one line;
//! - [`regular_file`]: a file from a volume nobody vouches for, read only if it is a regular
//!   file, without following a link, without waiting, up to a size limit;
//! - [`terminal_text`]: text from a volume, a packet or a user with its control characters
//!   escaped, so printing it cannot drive the terminal;
//! - [`utc`]: seconds since the epoch as a UTC date and time of day;
//! - [`payload`]: a squashfs image in a file mounted read-only through a loop device;
//! - [`random`]: waiting until the kernel's random number generator is seeded, at the lowest
//!   priority;
//! - [`malloc`]: glibc's malloc settings that keep a long-running process's memory flat;
//! - `blkid` (feature `blkid`): the file system signature of a block device, through
//!   libblkid, read-only.
//!
//! Nothing here knows about the appliance: every function takes the paths it works on.

#![warn(missing_docs)]

pub mod atomic_file;
#[cfg(feature = "blkid")]
pub mod blkid;
pub mod block;
mod error_chain;
pub mod interface_name;
pub mod loopback;
pub mod malloc;
pub mod mountinfo;
mod oper_state;
pub mod payload;
pub mod random;
pub mod regular_file;
pub mod terminal_text;
pub mod utc;

pub use error_chain::error_chain;
pub use interface_name::{InterfaceNameError, MAX_INTERFACE_NAME_LEN, check_interface_name};
pub use oper_state::OperState;
