//! `cargo xtask boot`: the appliance in QEMU with the serial console on this terminal and the
//! web port forwarded to 127.0.0.1:8443.

use anyhow::Result;
use mfv_tests::{Accel, ApplianceImage, GuestSpec, NicModel};

use crate::{Workspace, cmd};

/// The host port the guest's HTTPS port 443 is forwarded to.
const HOST_WEB_PORT: u16 = 8443;
const GUEST_WEB_PORT: u16 = 443;

/// Boots target/appliance interactively; returns when QEMU exits.
pub fn interactive(workspace: &Workspace, kvm: bool, kernel_args: &[String]) -> Result<()> {
    let image = ApplianceImage::at(&workspace.appliance_dir())?;
    let spec = kernel_args.iter().fold(
        GuestSpec::new(&image)
            .accel(if kvm { Accel::Kvm } else { Accel::Tcg })
            .nic(NicModel::VirtioNet)
            .forward_port_to(HOST_WEB_PORT, GUEST_WEB_PORT),
        |spec, arg| spec.kernel_arg(arg.clone()),
    );
    let mut command = spec.interactive_command()?;
    println!("{}", cmd::display(&command));
    println!(
        "Serial console follows; guest port {GUEST_WEB_PORT} is https://127.0.0.1:{HOST_WEB_PORT}/. Quit QEMU with Ctrl-A X (Ctrl-A C toggles the QEMU monitor)."
    );
    cmd::run(&mut command)
}
