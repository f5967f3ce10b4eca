//! How glibc's malloc is asked to behave in the host's long-running processes (PID 1, its
//! console screens and daemons, the web server), whose resident memory must stay flat over
//! weeks of uptime on a host that runs from RAM.
//!
//! One arena: by default each thread that allocates gets an arena of its own, and memory
//! freed in one is not reused by another; in the web server, with the runtime's workers and
//! the blocking pool's threads, resident memory grew with the number of threads that had ever
//! run (`cargo xtask bench web`: 4 MiB over a 60 s soak, flat with one arena, at the same
//! requests/s).
//!
//! A fixed mmap threshold of 256 KiB: glibc raises its threshold to the size of each large
//! block freed, so after the first password check argon2's 19 MiB came from the heap, and
//! every later check left another 19 MiB resident (the web server measured 22, 42, 61 ... 178
//! MiB after nine logins). With the threshold fixed, large blocks are mapped and unmapped
//! each time, and the web server stays at 23 MiB however many sign in.

/// Blocks of at least this many bytes are mapped for themselves.
pub const MMAP_THRESHOLD_BYTES: i32 = 256 * 1024;

/// Applies both settings. Call it first thing in `main`, before any thread is started.
pub fn tune_for_long_running_process() {
    // SAFETY: mallopt sets parameters of the allocator and touches no memory of ours; the
    // caller runs it before any thread exists, so no allocation runs concurrently.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}
