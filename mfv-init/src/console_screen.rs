//! `mfv-init --console`: the console screen PID 1 keeps on the console (see
//! [`mfv_host::console`] for what it shows and whom it lets in). Here is only what touches
//! the terminal and starts the shell.

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use mfv_config::cmdline::KernelCmdline;
use mfv_config::discovery::DiscoveryParams;
use mfv_host::console::setup::{ScreenMode, SetupEnd, serve_setup};
use mfv_host::console::setup_host::SystemSetupHost;
use mfv_host::console::{
    LocalAdminGate, ShellGrant, ShellRunner, Terminal, Waited, read_status, serve_console,
};
use mfv_host::setup::{SetupState, read_setup_state};
use mfv_net::Netlink;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};

use crate::init::RUN_DIR;
use crate::system::SHELL_ENV;

/// The signals the terminal sends from the keyboard: the screen ignores them, so ctrl-C at
/// the login prompt does not end it; the shell gets them back.
const KEYBOARD_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP];

/// Serves the console on stdin and stdout until the end of input: the setup screen while the
/// host waits for its network, then the status screen.
pub fn run() -> anyhow::Result<()> {
    for keyboard in KEYBOARD_SIGNALS {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { signal(keyboard, SigHandler::SigIgn) }.context("ignore keyboard signals")?;
    }
    let run_dir = Path::new(RUN_DIR);
    // A state that cannot be read is shown on the setup screen, which says so.
    let setup_needed = !matches!(
        read_setup_state(run_dir),
        Ok(None | Some(SetupState::NetworkChosen))
    );
    if setup_needed {
        let console = console_name();
        let mode = ScreenMode::for_console(&console, std::env::var("TERM").ok().as_deref());
        let host = SystemSetupHost::new(
            run_dir,
            Path::new("/sys"),
            Path::new(mfv_api::DEFAULT_SOCKET_PATH),
            &console,
        );
        match host {
            Ok(mut host) => {
                for problem in host.raise_cards() {
                    Console.write(&format!("setup: {problem}\n"))?;
                }
                let end = serve_setup(&mut Console, &mut host, mode).context("setup screen")?;
                if end == SetupEnd::End {
                    return Ok(());
                }
            }
            // Without netlink there is no setup to offer; the status screen still shows the
            // host and a login.
            Err(error) => Console.write(&format!(
                "setup screen: {}: the status screen follows\n",
                mfv_linux::error_chain(&error)
            ))?,
        }
    }
    let options = KernelCmdline::read_from(Path::new("/proc/cmdline"))
        .map(|cmdline| cmdline.boot_options())
        .unwrap_or_default();
    let mut gate = LocalAdminGate::discovered(DiscoveryParams::from_boot_options(&options))
        .with_working_copy("/run/mfv");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    runtime.block_on(async {
        let netlink = Netlink::connect().context("netlink")?;
        let status =
            async || read_status(Path::new("/proc"), Path::new("/run/mfv"), &netlink).await;
        let mut shell = Shell {
            terminal: std::fs::read_link("/proc/self/fd/0").ok(),
        };
        serve_console(&mut Console, status, &mut gate, &mut shell)
            .await
            .context("console")
    })
}

/// The name of the console on stdin (`ttyS0`, `tty1`), for the setup lock and the screen's
/// mode; `console` when it cannot be told.
fn console_name() -> String {
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .and_then(|path| {
            path.strip_prefix("/dev")
                .ok()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "console".to_owned())
}

/// The console on stdin and stdout.
struct Console;

impl Terminal for Console {
    fn write(&mut self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    fn wait_for_line(&mut self, timeout: std::time::Duration) -> std::io::Result<Waited> {
        let stdin = std::io::stdin();
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(Waited::Nothing),
            Ok(_) => Ok(match self.read_line(true)? {
                Some(_) => Waited::Line,
                None => Waited::End,
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn read_line(&mut self, echo: bool) -> std::io::Result<Option<String>> {
        let stdin = std::io::stdin();
        // Echo is switched off only where there is a terminal to switch it on.
        let saved = (!echo).then(|| tcgetattr(stdin.as_fd()).ok()).flatten();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet)?;
        }
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if let Some(saved) = &saved {
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, saved)?;
        }
        if read? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\n', '\r']);
        Ok(Some(line.to_owned()))
    }
}

/// `/bin/sh` on the console, in a session of its own that takes the console as its
/// controlling terminal (job control, ctrl-C).
struct Shell {
    /// The terminal the screen runs on, opened again after each shell.
    terminal: Option<std::path::PathBuf>,
}

impl ShellRunner for Shell {
    fn run(&mut self, grant: &ShellGrant) -> std::io::Result<String> {
        let mut command = Command::new("/bin/sh");
        command
            .env_clear()
            .envs(SHELL_ENV)
            .env("MFV_CONSOLE_USER", &grant.username)
            .current_dir("/");
        // SAFETY: runs in the forked child before exec and calls only signal(2), setsid(2) and
        // ioctl(2), which are async-signal-safe; it allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, take_the_console);
        }
        let status = command.status()?;
        if let Some(terminal) = &self.terminal {
            reopen_terminal(terminal)?;
        }
        Ok(status.to_string())
    }
}

/// When the shell's session ends, the kernel hangs up the terminal that was its controlling
/// one (a serial line or a virtual terminal; `/dev/console` is spared), and the screen's
/// descriptors of it read and write nothing more: they are replaced by a new open.
fn reopen_terminal(terminal: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(terminal)?;
    nix::unistd::dup2_stdin(&opened)?;
    nix::unistd::dup2_stdout(&opened)?;
    nix::unistd::dup2_stderr(&opened)?;
    Ok(())
}

/// In the shell's child: the keyboard's signals back to their defaults, a new session, and
/// the console as its controlling terminal (taken from the screen's session).
fn take_the_console() -> std::io::Result<()> {
    for keyboard in KEYBOARD_SIGNALS {
        // SAFETY: SIG_DFL installs no handler code.
        unsafe { signal(keyboard, SigHandler::SigDfl) }?;
    }
    nix::unistd::setsid()?;
    // SAFETY: fd 0 is the console; TIOCSCTTY takes an int argument (1: take it from the
    // screen's session, which root may).
    let _ = unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) };
    Ok(())
}
