//! Waiting until the kernel's random number generator is seeded.
//!
//! Keys made at boot (the web server's TLS key, the setup token) must come from a seeded
//! generator, so getrandom(2) blocks until the kernel has gathered enough entropy. A processor
//! with RDRAND or a boot loader's seed gives it at once; without them (a VM whose CPU model has
//! no RDRAND, as QEMU's default one) the kernel gathers timing jitter only while somebody
//! waits, a tick at a time, about a second's worth. Whoever waits first pays for it. PID 1
//! waits in a thread of its own at the lowest priority as soon as it starts, so the second
//! passes while it loads drivers, instead of after the boot while the host daemon makes the
//! web server's key.

use std::io;

use nix::libc;

/// The nice value [`wait_until_seeded_at_lowest_priority`] gives its thread.
pub const LOWEST_PRIORITY_NICE: i32 = 19;

/// Blocks until the kernel's generator is seeded; returns at once when it already is. While
/// it waits on a machine without a hardware source, the kernel gathers jitter entropy in this
/// thread.
pub fn wait_until_seeded() -> io::Result<()> {
    getrandom_one_byte(0)
}

/// Lowers the calling thread to nice [`LOWEST_PRIORITY_NICE`], so that the kernel's jitter
/// gathering takes only time nothing else wants, then [`wait_until_seeded`].
pub fn wait_until_seeded_at_lowest_priority() -> io::Result<()> {
    let thread = this_thread();
    // SAFETY: setpriority changes the scheduling of the thread `thread` (this one) and touches
    // no memory.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, thread, LOWEST_PRIORITY_NICE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    wait_until_seeded()
}

/// The calling thread's ID, as setpriority(2) takes it.
fn this_thread() -> libc::id_t {
    // A thread ID is positive.
    nix::unistd::gettid().as_raw().unsigned_abs()
}

/// Reads one random byte with `flags`, again when a signal interrupted the wait.
fn getrandom_one_byte(flags: libc::c_uint) -> io::Result<()> {
    let mut byte = 0u8;
    loop {
        // SAFETY: the buffer is one byte long and lives across the call.
        let read = unsafe { libc::getrandom((&raw mut byte).cast(), 1, flags) };
        if read == 1 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: getpriority reads the scheduling of the calling thread and touches no memory.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, this_thread()) }
    }

    // The machines that build and test this are long past boot: their generator is seeded, so
    // neither call waits.
    #[test]
    fn only_the_waiting_thread_is_lowered_to_the_lowest_priority() {
        let before = nice_of_this_thread();
        wait_until_seeded().unwrap();
        std::thread::spawn(|| {
            wait_until_seeded_at_lowest_priority().unwrap();
            assert_eq!(nice_of_this_thread(), LOWEST_PRIORITY_NICE);
        })
        .join()
        .unwrap();
        assert_eq!(nice_of_this_thread(), before);
    }
}
