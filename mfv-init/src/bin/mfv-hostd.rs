//! mfv-hostd: the host daemon, or with `--vm-keeper` the VM keeper: the two services PID 1
//! (mfv-init) starts that use libvirt, in a binary of their own so that PID 1 links no
//! libvirt.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mfv_init::init::RUN_DIR;
use mfv_init::vm_keeper::VM_KEEPER_ARG;
use mfv_init::{host_daemon, vm_keeper};

/// Exit code when the service ends with an error.
const EXIT_FAILED: u8 = 1;
/// Exit code for a wrong invocation.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    mfv_linux::malloc::tune_for_long_running_process();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let keeper = match args.as_slice() {
        [] => false,
        [arg] if arg == VM_KEEPER_ARG => true,
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: mfv-hostd [{VM_KEEPER_ARG}] (PID 1 starts it: the host daemon, or the VM \
                 keeper)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (what, result) = if keeper {
        ("vm keeper", vm_keeper::run(Path::new(RUN_DIR)))
    } else {
        (
            "host daemon",
            host_daemon::run(Path::new(mfv_api::DEFAULT_SOCKET_PATH), Path::new(RUN_DIR)),
        )
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "mfv-hostd: {what}: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
