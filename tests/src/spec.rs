//! What a guest looks like ([`GuestSpec`]) and the QEMU command line that gives it.
//!
//! Every guest starts from the same base: `qemu-system-x86_64 -accel <tcg|kvm> -machine <..>
//! -m <MiB> -smp <n> -nodefaults -no-user-config -no-reboot -kernel K -initrd I
//! -append "console=ttyS0 <args>"`, where QEMU loads the kernel and initrd itself. `-nodefaults` means the guest has exactly the devices the
//! spec lists and nothing QEMU would add on its own (no VGA, no default NIC, no CD-ROM);
//! `-no-reboot` turns a guest reboot into QEMU exiting with status 0, so a test sees both
//! poweroff and reboot as a clean exit.
//!
//! Defaults: TCG (KVM does not work on the CI machines; [`Accel::Kvm`] adds `-cpu host` for
//! real hardware), machine [`MachineType::Q35`] (the modern PCIe chipset the appliance meets on
//! real servers), 1024 MiB (the appliance runs from RAM and its initrd holds libvirt and QEMU)
//! and 1 CPU (tests run in parallel on small machines; TCG does not gain much from more).
//!
//! Booted as a user boots it ([`BootSource`]), the firmware loads the appliance from a
//! medium instead, with the medium's own kernel command line (so the spec's kernel arguments
//! are an error there): PXE on the first NIC (`-netdev user,...,tftp=DIR,bootfile=FILE` and
//! `bootindex=0` on its device: the NIC's iPXE ROM asks QEMU's DHCP for the file and fetches
//! it from QEMU's TFTP server), a CD (`-drive ...,media=cdrom,readonly=on -device
//! ide-cd,...,bootindex=0`) or a USB stick (writable, `-device usb-storage,...,id=`
//! [`USB_STICK_DEVICE`]`,bootindex=0` on the xHCI controller, for QMP's `device_del`). The
//! firmware ([`Firmware`]) is SeaBIOS by default or OVMF for UEFI: its code read-only and a
//! copy of its variable store, made in the guest's temp dir (or the spec's work dir), both as
//! pflash.
//!
//! Devices:
//! - NIC `k` (counting from 0): `-netdev user,id=nK,restrict=on[,hostfwd=...] -device
//!   <e1000|virtio-net-pci|rtl8139>,netdev=nK,mac=52:54:00:12:34:<56+k>`. `restrict=on` keeps
//!   the guest off every outside network; QEMU's user network still answers DHCP. Port forwards
//!   (`hostfwd=tcp:127.0.0.1:H-:G`) go on the first NIC unless [`GuestSpec::forward_port_on`]
//!   names another; asking for one on a NIC the guest does not have is an error. Connections
//!   the guest opens to an address of its user network go to a host port with
//!   [`GuestSpec::forward_guest_connections`] (`guestfwd=tcp:A:P-tcp:127.0.0.1:H`, first NIC).
//!   QMP's `set_link` takes the netdev id `nK` to pull NIC `k`'s cable.
//! - Disk `k`: `-drive file=..,if=none,id=dK,format=raw` plus, by interface: virtio
//!   `-device virtio-blk-pci,drive=dK`; SATA `-device ahci,id=ahci0` once and
//!   `-device ide-hd,drive=dK,bus=ahci0.<port>` (6 ports); USB `-device qemu-xhci,id=xhci`
//!   once (also without USB disks when [`GuestSpec::usb_controller`] asks for it, for
//!   hot-plugging) and `-device usb-storage,bus=xhci.0,drive=dK`; floppy `-device floppy,unit=<u>,
//!   drive=dK` (2 drives) on the FDC that machine `pc` always has, while on `q35`, which has
//!   none, `-device isa-fdc,id=fdc0` is added once and the drives go on `bus=fdc0.0`. Floppy
//!   images must have a standard floppy size so QEMU and the guest agree on the geometry.
//!   [`GuestSpec::empty_floppy_drive`] adds a drive without a disk (`-device floppy,unit=<u>`
//!   and no drive), after those with one; [`GuestSpec::empty_cd_drive`] a CD/DVD drive without
//!   a disc (`-device ide-cd,id=empty-cd`) on the machine's own controller, after the disks.
//! - Blank disks ([`DiskSpec::blank`]) are sparse raw files created when the guest boots, in
//!   the guest's temp dir (tests) or the spec's work dir (interactive boots); formatted disks
//!   ([`DiskSpec::formatted`]) are the same files with a labelled file system made by mkfs.
//!
//! Paths go into QEMU option strings, where a comma separates options: commas in paths are
//! doubled, as QEMU expects.

use std::fs::OpenOptions;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::filesystem::{Filesystem, create_formatted};
use crate::guest::Guest;
use crate::image::ApplianceImage;
use crate::ports::free_local_port;

/// The QEMU program for x86_64 guests.
pub(crate) const DEFAULT_QEMU: &str = "qemu-system-x86_64";
/// The Debian package that provides [`DEFAULT_QEMU`].
pub(crate) const QEMU_PACKAGE: &str = "qemu-system-x86";

/// Default guest memory in MiB.
const DEFAULT_MEMORY_MIB: u32 = 1024;
/// Ports on the AHCI controller.
const AHCI_PORTS: usize = 6;
/// Drives on a floppy controller.
const FLOPPY_UNITS: usize = 2;
/// The xHCI controller every USB disk goes on.
const XHCI_DEVICE: &str = "qemu-xhci,id=xhci";
/// The bus of that controller's root hub.
pub(crate) const XHCI_BUS: &str = "xhci.0";
/// The QEMU device id of the USB stick a guest boots from ([`BootSource::UsbStick`]).
pub const USB_STICK_DEVICE: &str = "usb-stick";
/// OVMF's code (read-only) and the variable store each UEFI guest gets a copy of.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The Debian package of OVMF.
const OVMF_PACKAGE: &str = "ovmf";
/// Image sizes QEMU maps to a standard floppy geometry: 720 KiB, 1.2 MB, 1.44 MB, 2.88 MB.
pub(crate) const FLOPPY_SIZES: [u64; 4] = [737_280, 1_228_800, 1_474_560, 2_949_120];

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// Software emulation (`-accel tcg`): works everywhere, the default.
    #[default]
    Tcg,
    /// Hardware virtualization (`-accel kvm -cpu host`): real hardware only, opt-in.
    Kvm,
}

/// The emulated chipset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineType {
    /// i440FX + PIIX (`-machine pc`): legacy PCI, built-in floppy controller.
    Pc,
    /// Q35 + ICH9 (`-machine q35`): PCIe, the default.
    #[default]
    Q35,
}

/// Where the firmware finds what the guest boots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BootSource {
    /// QEMU loads the image's kernel and initrd itself (`-kernel`, `-initrd`, `-append` with
    /// the spec's kernel arguments): the default.
    #[default]
    Kernel,
    /// PXE on the first NIC: its ROM (iPXE) gets `bootfile` from QEMU's TFTP server, which
    /// serves `tftp_dir`.
    Network {
        /// The directory QEMU's TFTP server serves.
        tftp_dir: PathBuf,
        /// The file DHCP names for the NIC to boot, relative to `tftp_dir`.
        bootfile: String,
    },
    /// A CD-ROM drive holding this ISO image, read-only.
    Cdrom(PathBuf),
    /// A USB stick holding this raw image, writable, as QEMU device [`USB_STICK_DEVICE`].
    UsbStick(PathBuf),
}

/// The guest's firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// SeaBIOS, QEMU's own: the default.
    #[default]
    Bios,
    /// OVMF (UEFI) from the Debian package `ovmf`.
    Uefi,
}

/// An emulated network card model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// Intel 82540EM (`e1000`).
    E1000,
    /// Paravirtual virtio NIC (`virtio-net-pci`).
    VirtioNet,
    /// Realtek RTL8139 (`rtl8139`).
    Rtl8139,
}

impl NicModel {
    fn device(self) -> &'static str {
        match self {
            NicModel::E1000 => "e1000",
            NicModel::VirtioNet => "virtio-net-pci",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

/// How a disk is attached to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskInterface {
    /// Paravirtual block device (`virtio-blk-pci`).
    Virtio,
    /// SATA disk on an AHCI controller (`ahci` + `ide-hd`).
    Sata,
    /// USB mass storage on an xHCI controller (`qemu-xhci` + `usb-storage`).
    Usb,
    /// Floppy drive on the ISA floppy controller.
    Floppy,
}

/// Where a disk's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskSource {
    /// A new sparse raw image of this many bytes, created at boot.
    Blank { size_bytes: u64 },
    /// A new raw image of this many bytes holding a labelled file system, created at boot.
    Formatted {
        size_bytes: u64,
        filesystem: Filesystem,
        label: String,
    },
    /// An existing raw image.
    File(PathBuf),
}

/// A disk to attach to a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    interface: DiskInterface,
    source: DiskSource,
}

impl DiskSpec {
    /// A new, empty (sparse) raw image of `size_bytes`, created in the guest's temp dir when
    /// it boots.
    pub fn blank(interface: DiskInterface, size_bytes: u64) -> Self {
        DiskSpec {
            interface,
            source: DiskSource::Blank { size_bytes },
        }
    }

    /// A new raw image of `size_bytes` whose whole disk holds `filesystem` labelled `label`
    /// (no partition table), made with mkfs in the guest's temp dir when it boots (or when
    /// it is hot-plugged). The label must fit the file system: 16 bytes for ext4, 11 for vfat.
    pub fn formatted(
        interface: DiskInterface,
        size_bytes: u64,
        filesystem: Filesystem,
        label: impl Into<String>,
    ) -> Self {
        DiskSpec {
            interface,
            source: DiskSource::Formatted {
                size_bytes,
                filesystem,
                label: label.into(),
            },
        }
    }

    /// An existing raw image file.
    pub fn file(interface: DiskInterface, path: impl Into<PathBuf>) -> Self {
        DiskSpec {
            interface,
            source: DiskSource::File(path.into()),
        }
    }

    /// How the disk is attached.
    pub fn interface(&self) -> DiskInterface {
        self.interface
    }

    /// The image file of this disk: an existing file as it is, or a new image `name` created
    /// in `dir` (which must be given) for blank and formatted disks.
    pub(crate) fn materialize(&self, dir: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
        let new_image = || {
            dir.map(|dir| dir.join(name))
                .context("new disk images need a directory to live in: set GuestSpec::work_dir")
        };
        match &self.source {
            DiskSource::File(path) => Ok(path.clone()),
            DiskSource::Blank { size_bytes } => {
                let path = new_image()?;
                create_sparse(&path, *size_bytes)?;
                Ok(path)
            }
            DiskSource::Formatted {
                size_bytes,
                filesystem,
                label,
            } => {
                let path = new_image()?;
                create_formatted(&path, *size_bytes, *filesystem, label)?;
                Ok(path)
            }
        }
    }
}

/// A guest port forwarded to 127.0.0.1 on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortForward {
    /// The host port, or `None` for a free one chosen at boot.
    host: Option<u16>,
    guest: u16,
    /// The NIC (counting from 0) whose user network forwards it.
    nic: usize,
}

/// Everything about a guest, built up with chained calls and then booted.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    qemu: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    boot_source: BootSource,
    firmware: Firmware,
    accel: Accel,
    machine: MachineType,
    memory_mib: u32,
    cpus: u32,
    cpu_model: Option<String>,
    kernel_args: Vec<String>,
    nics: Vec<NicModel>,
    forwards: Vec<PortForward>,
    /// Guest addresses whose TCP connections go to a port on 127.0.0.1 (first NIC).
    guest_forwards: Vec<(SocketAddrV4, u16)>,
    disks: Vec<DiskSpec>,
    empty_floppy_drives: usize,
    empty_cd_drive: bool,
    usb_controller: bool,
    work_dir: Option<PathBuf>,
}

/// How the serial console is connected.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Console<'a> {
    /// For tests: serial on a Unix socket in `dir` that QEMU waits on before running the
    /// guest, logged to `dir/serial.log`; QMP on `dir/qmp.sock`.
    Captured { dir: &'a Path },
    /// For a person: serial console and QEMU monitor on the terminal.
    Interactive,
}

/// What is decided at boot: host ports for forwards and paths of the disks, in spec order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) forwards: Vec<(u16, u16)>,
    pub(crate) disk_paths: Vec<PathBuf>,
    /// The guest's copy of OVMF's variable store ([`Firmware::Uefi`]).
    pub(crate) uefi_vars: Option<PathBuf>,
}

impl GuestSpec {
    /// A guest booting `image` with the defaults: TCG, Q35, 1024 MiB, 1 CPU, no NICs, no disks.
    pub fn new(image: &ApplianceImage) -> Self {
        GuestSpec {
            qemu: PathBuf::from(DEFAULT_QEMU),
            kernel: image.kernel.clone(),
            initrd: image.initrd.clone(),
            boot_source: BootSource::default(),
            firmware: Firmware::default(),
            accel: Accel::default(),
            machine: MachineType::default(),
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: 1,
            cpu_model: None,
            kernel_args: Vec::new(),
            nics: Vec::new(),
            forwards: Vec::new(),
            guest_forwards: Vec::new(),
            disks: Vec::new(),
            empty_floppy_drives: 0,
            empty_cd_drive: false,
            usb_controller: false,
            work_dir: None,
        }
    }

    /// The QEMU program to run (default `qemu-system-x86_64`, found on `PATH`).
    pub fn qemu(mut self, program: impl Into<PathBuf>) -> Self {
        self.qemu = program.into();
        self
    }

    /// What the firmware boots ([`BootSource::Kernel`] unless set).
    pub fn boot_source(mut self, source: BootSource) -> Self {
        self.boot_source = source;
        self
    }

    /// The firmware ([`Firmware::Bios`] unless set).
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// The accelerator.
    pub fn accel(mut self, accel: Accel) -> Self {
        self.accel = accel;
        self
    }

    /// The machine type.
    pub fn machine(mut self, machine: MachineType) -> Self {
        self.machine = machine;
        self
    }

    /// Guest memory in MiB.
    pub fn memory_mib(mut self, memory_mib: u32) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    /// The CPU model (`-cpu <model>`, e.g. `max` for every feature TCG emulates); without
    /// it TCG gives QEMU's default model and KVM `host`.
    pub fn cpu_model(mut self, model: impl Into<String>) -> Self {
        self.cpu_model = Some(model.into());
        self
    }

    /// Number of virtual CPUs.
    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// A kernel command line argument, appended after `console=ttyS0` and earlier arguments.
    pub fn kernel_arg(mut self, arg: impl Into<String>) -> Self {
        self.kernel_args.push(arg.into());
        self
    }

    /// A NIC on its own restricted user-mode network (`-netdev user,restrict=on`).
    pub fn nic(mut self, model: NicModel) -> Self {
        self.nics.push(model);
        self
    }

    /// Forwards `guest_port` (TCP, on the first NIC) to a free port on 127.0.0.1 chosen at
    /// boot; [`Guest::host_port`] tells which.
    pub fn forward_port(mut self, guest_port: u16) -> Self {
        self.forwards.push(PortForward {
            host: None,
            guest: guest_port,
            nic: 0,
        });
        self
    }

    /// Forwards `guest_port` (TCP) through the user network of NIC `nic` (counting from 0) to
    /// a free port on 127.0.0.1 chosen at boot; [`Guest::host_port_on`] tells which. Each NIC
    /// has a network of its own, so the same guest port can be forwarded on several NICs.
    pub fn forward_port_on(mut self, nic: usize, guest_port: u16) -> Self {
        self.forwards.push(PortForward {
            host: None,
            guest: guest_port,
            nic,
        });
        self
    }

    /// Forwards `guest_port` (TCP, on the first NIC) to the fixed `host_port` on 127.0.0.1.
    pub fn forward_port_to(mut self, host_port: u16, guest_port: u16) -> Self {
        self.forwards.push(PortForward {
            host: Some(host_port),
            guest: guest_port,
            nic: 0,
        });
        self
    }

    /// TCP connections the guest opens to `guest_address` (an address of the first NIC's
    /// user network, 10.0.2.0/24) reach `host_port` on 127.0.0.1. QEMU connects there once,
    /// when it starts, and carries what the guest sends over that one connection: something
    /// must listen on the port before the guest boots.
    pub fn forward_guest_connections(
        mut self,
        guest_address: SocketAddrV4,
        host_port: u16,
    ) -> Self {
        self.guest_forwards.push((guest_address, host_port));
        self
    }

    /// A disk.
    pub fn disk(mut self, disk: DiskSpec) -> Self {
        self.disks.push(disk);
        self
    }

    /// A floppy drive with no disk in it, after the floppy drives of the disks
    /// ([`DiskInterface::Floppy`]); at most 2 floppy drives in all.
    pub fn empty_floppy_drive(mut self) -> Self {
        self.empty_floppy_drives += 1;
        self
    }

    /// A CD/DVD drive with no disc in it (`-device ide-cd,id=empty-cd`), on the machine's own
    /// IDE or AHCI controller, after the disks.
    pub fn empty_cd_drive(mut self) -> Self {
        self.empty_cd_drive = true;
        self
    }

    /// An xHCI USB controller (`-device qemu-xhci,id=xhci`) even when no USB disk is attached
    /// at boot, so that USB disks can be hot-plugged later ([`Guest::hotplug_usb_disk`]).
    pub fn usb_controller(mut self) -> Self {
        self.usb_controller = true;
        self
    }

    /// Where an interactive boot creates blank disks ([`DiskSpec::blank`]); a test boot uses
    /// the guest's own temp dir instead.
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// The command for an interactive boot: serial console and QEMU monitor on the terminal
    /// (`-nographic -serial mon:stdio`; Ctrl-A X quits, Ctrl-A C switches to the monitor),
    /// `-no-reboot`, everything else as the spec says. Used by `cargo xtask boot`.
    ///
    /// Blank disks are created in the [`work_dir`](Self::work_dir), which must be set if there
    /// are any; free host ports are chosen now.
    pub fn interactive_command(&self) -> anyhow::Result<Command> {
        let resolved = self.resolve(self.work_dir.as_deref())?;
        let mut command = self.command()?;
        command.args(self.qemu_args(Console::Interactive, &resolved)?);
        Ok(command)
    }

    /// Starts QEMU for a test: own temp dir, own process group, serial console captured.
    pub fn boot(self) -> anyhow::Result<Guest> {
        Guest::boot(self)
    }

    /// The NIC of each port forward, in the order of [`Resolved::forwards`].
    pub(crate) fn forward_nics(&self) -> Vec<usize> {
        self.forwards.iter().map(|forward| forward.nic).collect()
    }

    /// A `Command` for the QEMU program, which must exist.
    pub(crate) fn command(&self) -> anyhow::Result<Command> {
        let program = find_program(&self.qemu).with_context(|| {
            format!(
                "{} not found: install the Debian package {QEMU_PACKAGE} (apt-get install {QEMU_PACKAGE})",
                self.qemu.display()
            )
        })?;
        Ok(Command::new(program))
    }

    /// Chooses host ports, creates blank and formatted disks and copies OVMF's variable
    /// store for a UEFI guest (in `dir`).
    pub(crate) fn resolve(&self, dir: Option<&Path>) -> anyhow::Result<Resolved> {
        let forwards = self
            .forwards
            .iter()
            .map(|forward| {
                Ok((
                    forward.host.map_or_else(free_local_port, Ok)?,
                    forward.guest,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let disk_paths = self
            .disks
            .iter()
            .enumerate()
            .map(|(index, disk)| disk.materialize(dir, &format!("disk{index}.img")))
            .collect::<anyhow::Result<_>>()?;
        let uefi_vars = match self.firmware {
            Firmware::Bios => None,
            Firmware::Uefi => Some(copy_uefi_vars(dir)?),
        };
        Ok(Resolved {
            forwards,
            disk_paths,
            uefi_vars,
        })
    }

    /// The QEMU arguments for this spec.
    pub(crate) fn qemu_args(
        &self,
        console: Console<'_>,
        resolved: &Resolved,
    ) -> anyhow::Result<Vec<String>> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|item| (*item).to_string()));

        let cpu_model = match self.accel {
            Accel::Tcg => {
                push(&["-accel", "tcg"]);
                self.cpu_model.as_deref()
            }
            Accel::Kvm => {
                push(&["-accel", "kvm"]);
                Some(self.cpu_model.as_deref().unwrap_or("host"))
            }
        };
        if let Some(model) = cpu_model {
            push(&["-cpu", model]);
        }
        let machine = match self.machine {
            MachineType::Pc => "pc",
            MachineType::Q35 => "q35",
        };
        push(&["-machine", machine]);
        push(&[
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ]);
        push(&["-nodefaults", "-no-user-config", "-no-reboot"]);
        match console {
            Console::Captured { dir } => {
                let serial_socket = qemu_path(&dir.join("serial.sock"))?;
                let serial_log = qemu_path(&dir.join("serial.log"))?;
                let qmp_socket = qemu_path(&dir.join("qmp.sock"))?;
                push(&["-display", "none"]);
                push(&[
                    "-chardev",
                    &format!(
                        "socket,id=serial0,path={serial_socket},server=on,wait=on,logfile={serial_log}"
                    ),
                    "-serial",
                    "chardev:serial0",
                ]);
                push(&["-qmp", &format!("unix:{qmp_socket},server=on,wait=off")]);
            }
            Console::Interactive => push(&["-nographic", "-serial", "mon:stdio"]),
        }
        if let Some(vars) = &resolved.uefi_vars {
            ensure!(
                Path::new(OVMF_CODE).is_file(),
                "{OVMF_CODE} not found: install the Debian package {OVMF_PACKAGE} (apt-get install {OVMF_PACKAGE})"
            );
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={}", qemu_path(vars)?),
            ]);
        }
        ensure!(
            self.boot_source == BootSource::Kernel || self.kernel_args.is_empty(),
            "kernel arguments need BootSource::Kernel: a boot medium carries its own kernel \
             command line"
        );
        let mut have_xhci = self.usb_controller;
        match &self.boot_source {
            BootSource::Kernel => {
                push(&[
                    "-kernel",
                    &path_str(&self.kernel)?,
                    "-initrd",
                    &path_str(&self.initrd)?,
                ]);
                let mut append = String::from("console=ttyS0");
                for arg in &self.kernel_args {
                    append.push(' ');
                    append.push_str(arg);
                }
                push(&["-append", &append]);
            }
            BootSource::Network { .. } => ensure!(
                !self.nics.is_empty(),
                "a network boot needs a NIC: add one with GuestSpec::nic"
            ),
            BootSource::Cdrom(iso) => push(&[
                "-drive",
                &format!(
                    "file={},if=none,id=cd0,media=cdrom,readonly=on,format=raw",
                    qemu_path(iso)?
                ),
                "-device",
                "ide-cd,drive=cd0,bootindex=0",
            ]),
            BootSource::UsbStick(image) => {
                push(&["-device", XHCI_DEVICE]);
                have_xhci = true;
                push(&[
                    "-drive",
                    &format!(
                        "file={},if=none,id={USB_STICK_DEVICE},format=raw",
                        qemu_path(image)?
                    ),
                    "-device",
                    &format!(
                        "usb-storage,bus={XHCI_BUS},drive={USB_STICK_DEVICE},id={USB_STICK_DEVICE},bootindex=0"
                    ),
                ]);
            }
        }

        ensure!(
            (resolved.forwards.is_empty() && self.guest_forwards.is_empty())
                || !self.nics.is_empty(),
            "port forwards need a NIC: add one with GuestSpec::nic"
        );
        for forward in &self.forwards {
            ensure!(
                forward.nic < self.nics.len(),
                "guest port {} is forwarded on NIC {}, but the guest has {} NICs",
                forward.guest,
                forward.nic,
                self.nics.len()
            );
        }
        for (index, model) in self.nics.iter().enumerate() {
            let mut netdev = format!("user,id=n{index},restrict=on");
            for (forward, (host, guest)) in self.forwards.iter().zip(&resolved.forwards) {
                if forward.nic == index {
                    netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
                }
            }
            let mut device = format!(
                "{},netdev=n{index},mac=52:54:00:12:34:{:02x}",
                model.device(),
                0x56 + index
            );
            if index == 0 {
                for (guest, host) in &self.guest_forwards {
                    netdev.push_str(&format!(",guestfwd=tcp:{guest}-tcp:127.0.0.1:{host}"));
                }
                if let BootSource::Network { tftp_dir, bootfile } = &self.boot_source {
                    netdev.push_str(&format!(
                        ",tftp={},bootfile={}",
                        qemu_path(tftp_dir)?,
                        bootfile.replace(',', ",,")
                    ));
                    device.push_str(",bootindex=0");
                }
            }
            push(&["-netdev", &netdev, "-device", &device]);
        }

        let (mut sata_ports, mut floppy_units) = (0, 0);
        if self.usb_controller && !matches!(self.boot_source, BootSource::UsbStick(_)) {
            push(&["-device", XHCI_DEVICE]);
        }
        for (index, (disk, path)) in self.disks.iter().zip(&resolved.disk_paths).enumerate() {
            let drive = format!("d{index}");
            push(&[
                "-drive",
                &format!("file={},if=none,id={drive},format=raw", qemu_path(path)?),
            ]);
            match disk.interface {
                DiskInterface::Virtio => {
                    push(&["-device", &format!("virtio-blk-pci,drive={drive}")])
                }
                DiskInterface::Sata => {
                    ensure!(
                        sata_ports < AHCI_PORTS,
                        "at most {AHCI_PORTS} SATA disks fit on the AHCI controller"
                    );
                    if sata_ports == 0 {
                        push(&["-device", "ahci,id=ahci0"]);
                    }
                    push(&[
                        "-device",
                        &format!("ide-hd,drive={drive},bus=ahci0.{sata_ports}"),
                    ]);
                    sata_ports += 1;
                }
                DiskInterface::Usb => {
                    if !have_xhci {
                        push(&["-device", XHCI_DEVICE]);
                        have_xhci = true;
                    }
                    push(&[
                        "-device",
                        &format!("usb-storage,bus={XHCI_BUS},drive={drive}"),
                    ]);
                }
                DiskInterface::Floppy => {
                    check_floppy_size(path)?;
                    for arg in self.floppy_args(floppy_units, Some(&drive))? {
                        push(&[&arg]);
                    }
                    floppy_units += 1;
                }
            }
        }
        for _ in 0..self.empty_floppy_drives {
            for arg in self.floppy_args(floppy_units, None)? {
                push(&[&arg]);
            }
            floppy_units += 1;
        }
        if self.empty_cd_drive {
            push(&["-device", "ide-cd,id=empty-cd"]);
        }
        Ok(args)
    }

    /// The arguments of floppy drive `unit` holding `drive` (empty without one), with the
    /// controller before the first drive on q35.
    fn floppy_args(&self, unit: usize, drive: Option<&str>) -> anyhow::Result<Vec<String>> {
        ensure!(
            unit < FLOPPY_UNITS,
            "at most {FLOPPY_UNITS} floppy drives fit on the controller"
        );
        let mut args = Vec::new();
        let mut device = format!("floppy,unit={unit}");
        if let Some(drive) = drive {
            device.push_str(&format!(",drive={drive}"));
        }
        if self.machine == MachineType::Q35 {
            if unit == 0 {
                args.extend(["-device".to_owned(), "isa-fdc,id=fdc0".to_owned()]);
            }
            device.push_str(",bus=fdc0.0");
        }
        args.extend(["-device".to_owned(), device]);
        Ok(args)
    }
}

/// Creates a sparse file of `size_bytes`.
pub(crate) fn create_sparse(path: &Path, size_bytes: u64) -> anyhow::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating disk image {}", path.display()))?;
    file.set_len(size_bytes)
        .with_context(|| format!("sizing disk image {} to {size_bytes} bytes", path.display()))
}

/// Copies OVMF's variable store into `dir` for a UEFI guest (its firmware writes boot entries
/// there) and returns the copy.
fn copy_uefi_vars(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir =
        dir.context("a UEFI guest's variable store needs a directory: set GuestSpec::work_dir")?;
    let copy = dir.join("OVMF_VARS.fd");
    std::fs::copy(OVMF_VARS, &copy).with_context(|| {
        format!(
            "copying {OVMF_VARS} to {} (install the Debian package {OVMF_PACKAGE}: apt-get install {OVMF_PACKAGE})",
            copy.display()
        )
    })?;
    Ok(copy)
}

/// Fails unless the image at `path` has a standard floppy size.
fn check_floppy_size(path: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading the size of floppy image {}", path.display()))?
        .len();
    ensure!(
        FLOPPY_SIZES.contains(&size),
        "floppy image {} has {size} bytes; a floppy image must have one of {FLOPPY_SIZES:?} bytes",
        path.display()
    );
    Ok(())
}

/// `path` as UTF-8, which QEMU option strings need.
fn path_str(path: &Path) -> anyhow::Result<String> {
    match path.to_str() {
        Some(text) => Ok(text.to_string()),
        None => bail!(
            "path {} is not UTF-8, which QEMU options cannot carry",
            path.display()
        ),
    }
}

/// `path` for use inside a QEMU option string: UTF-8, commas doubled.
fn qemu_path(path: &Path) -> anyhow::Result<String> {
    Ok(path_str(path)?.replace(',', ",,"))
}

/// `program` itself if it names a path, else the first executable match on `PATH`.
pub(crate) fn find_program(program: &Path) -> Option<PathBuf> {
    let is_executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ApplianceImage {
        ApplianceImage {
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initrd.img".into(),
        }
    }

    /// What `resolve` decides, with the fixed host ports of the spec (0 for automatic ones)
    /// and the given disk paths, without creating anything.
    fn fixed_resolution(spec: &GuestSpec, disk_paths: Vec<PathBuf>) -> Resolved {
        Resolved {
            forwards: spec
                .forwards
                .iter()
                .map(|forward| (forward.host.unwrap_or(0), forward.guest))
                .collect(),
            disk_paths,
            uefi_vars: None,
        }
    }

    /// The arguments QEMU gets for `spec` in a test (serial under `/t`) with disks at `paths`.
    fn args(spec: &GuestSpec, paths: &[&str]) -> Vec<String> {
        let resolved = fixed_resolution(spec, paths.iter().map(PathBuf::from).collect());
        spec.qemu_args(
            Console::Captured {
                dir: Path::new("/t"),
            },
            &resolved,
        )
        .unwrap()
    }

    fn args_error(spec: &GuestSpec, paths: &[&str]) -> String {
        let resolved = fixed_resolution(spec, paths.iter().map(PathBuf::from).collect());
        spec.qemu_args(
            Console::Captured {
                dir: Path::new("/t"),
            },
            &resolved,
        )
        .unwrap_err()
        .to_string()
    }

    /// The arguments after the common prefix (accel .. -append).
    fn devices(all: &[String]) -> Vec<String> {
        let append = all.iter().position(|arg| arg == "-append").unwrap();
        all[append + 2..].to_vec()
    }

    fn check_devices(spec: GuestSpec, paths: &[&str], expected: &str) {
        assert_eq!(devices(&args(&spec, paths)).join(" "), expected);
    }

    #[test]
    fn default_test_command_line() {
        let spec = GuestSpec::new(&image());
        assert_eq!(
            args(&spec, &[]).join(" "),
            "-accel tcg -machine q35 -m 1024 -smp 1 -nodefaults -no-user-config -no-reboot \
             -display none \
             -chardev socket,id=serial0,path=/t/serial.sock,server=on,wait=on,logfile=/t/serial.log \
             -serial chardev:serial0 -qmp unix:/t/qmp.sock,server=on,wait=off \
             -kernel /img/vmlinuz -initrd /img/initrd.img -append console=ttyS0"
        );
    }

    #[test]
    fn kernel_args_follow_the_console() {
        let spec = GuestSpec::new(&image())
            .kernel_arg("mfv.halt=poweroff")
            .kernel_arg("quiet");
        let all = args(&spec, &[]);
        assert_eq!(all.last().unwrap(), "console=ttyS0 mfv.halt=poweroff quiet");
    }

    #[test]
    fn kvm_pc_memory_and_cpus() {
        let spec = GuestSpec::new(&image())
            .accel(Accel::Kvm)
            .machine(MachineType::Pc)
            .memory_mib(2048)
            .cpus(2);
        let all = args(&spec, &[]).join(" ");
        assert!(
            all.starts_with("-accel kvm -cpu host -machine pc -m 2048 -smp 2 "),
            "{all}"
        );
    }

    #[test]
    fn cpu_model_follows_the_accelerator() {
        let spec = GuestSpec::new(&image()).cpu_model("max");
        assert!(
            args(&spec, &[])
                .join(" ")
                .starts_with("-accel tcg -cpu max -machine q35 "),
            "{:?}",
            args(&spec, &[])
        );
        let spec = GuestSpec::new(&image())
            .accel(Accel::Kvm)
            .cpu_model("host,-vmx");
        assert!(
            args(&spec, &[])
                .join(" ")
                .starts_with("-accel kvm -cpu host,-vmx -machine q35 ")
        );
    }

    #[test]
    fn interactive_console_is_on_the_terminal() {
        let spec = GuestSpec::new(&image());
        let all = spec
            .qemu_args(Console::Interactive, &fixed_resolution(&spec, Vec::new()))
            .unwrap()
            .join(" ");
        assert!(
            all.contains("-no-reboot -nographic -serial mon:stdio -kernel"),
            "{all}"
        );
        assert!(!all.contains("-display none"), "{all}");
        assert!(!all.contains("-qmp"), "{all}");
    }

    #[test]
    fn each_nic_model_gets_its_own_restricted_network() {
        let spec = GuestSpec::new(&image())
            .nic(NicModel::E1000)
            .nic(NicModel::VirtioNet)
            .nic(NicModel::Rtl8139);
        check_devices(
            spec,
            &[],
            "-netdev user,id=n0,restrict=on -device e1000,netdev=n0,mac=52:54:00:12:34:56 \
             -netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57 \
             -netdev user,id=n2,restrict=on -device rtl8139,netdev=n2,mac=52:54:00:12:34:58",
        );
    }

    #[test]
    fn port_forwards_and_guest_connections_go_on_the_first_nic() {
        let spec = GuestSpec::new(&image())
            .nic(NicModel::VirtioNet)
            .nic(NicModel::E1000)
            .forward_port_to(8443, 443)
            .forward_port_to(2222, 22)
            .forward_guest_connections("10.0.2.100:601".parse().unwrap(), 6601);
        check_devices(
            spec,
            &[],
            "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8443-:443,hostfwd=tcp:127.0.0.1:2222-:22,\
             guestfwd=tcp:10.0.2.100:601-tcp:127.0.0.1:6601 \
             -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
             -netdev user,id=n1,restrict=on -device e1000,netdev=n1,mac=52:54:00:12:34:57",
        );
    }

    #[test]
    fn a_port_forward_can_go_on_another_nic() {
        let spec = GuestSpec::new(&image())
            .nic(NicModel::E1000)
            .nic(NicModel::E1000)
            .forward_port_to(8443, 443)
            .forward_port_on(1, 443);
        let mut resolved = fixed_resolution(&spec, vec![]);
        resolved.forwards[1].0 = 9443;
        let all = spec
            .qemu_args(Console::Interactive, &resolved)
            .unwrap()
            .join(" ");
        assert!(
            all.contains(
                "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8443-:443 \
                 -device e1000,netdev=n0,mac=52:54:00:12:34:56 \
                 -netdev user,id=n1,restrict=on,hostfwd=tcp:127.0.0.1:9443-:443 \
                 -device e1000,netdev=n1,mac=52:54:00:12:34:57"
            ),
            "{all}"
        );
        assert_eq!(spec.forward_nics(), [0, 1]);
    }

    #[test]
    fn a_port_forward_on_a_missing_nic_is_an_error() {
        let spec = GuestSpec::new(&image())
            .nic(NicModel::E1000)
            .forward_port_on(1, 443);
        assert!(
            args_error(&spec, &[])
                .contains("guest port 443 is forwarded on NIC 1, but the guest has 1 NICs")
        );
    }

    #[test]
    fn port_forward_without_nic_is_an_error() {
        let spec = GuestSpec::new(&image()).forward_port_to(8443, 443);
        assert!(args_error(&spec, &[]).contains("port forwards need a NIC"));
        let guest_address = "10.0.2.100:601".parse().unwrap();
        let spec = GuestSpec::new(&image()).forward_guest_connections(guest_address, 6601);
        assert!(args_error(&spec, &[]).contains("port forwards need a NIC"));
    }

    #[test]
    fn automatic_forward_gets_a_free_port_at_resolve() {
        let spec = GuestSpec::new(&image())
            .nic(NicModel::E1000)
            .forward_port(443)
            .forward_port_to(8080, 80);
        let resolved = spec.resolve(None).unwrap();
        assert_eq!(resolved.forwards.len(), 2);
        let (host, guest) = resolved.forwards[0];
        assert_ne!(host, 0);
        assert_eq!(guest, 443);
        assert_eq!(resolved.forwards[1], (8080, 80));
        let all = spec
            .qemu_args(Console::Interactive, &resolved)
            .unwrap()
            .join(" ");
        assert!(
            all.contains(&format!(
                "hostfwd=tcp:127.0.0.1:{host}-:443,hostfwd=tcp:127.0.0.1:8080-:80"
            )),
            "{all}"
        );
    }

    #[test]
    fn virtio_disks() {
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Virtio, "/a.img"))
            .disk(DiskSpec::file(DiskInterface::Virtio, "/b.img"));
        check_devices(
            spec,
            &["/a.img", "/b.img"],
            "-drive file=/a.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0 \
             -drive file=/b.img,if=none,id=d1,format=raw -device virtio-blk-pci,drive=d1",
        );
    }

    #[test]
    fn sata_disks_share_one_ahci_controller() {
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Sata, "/a.img"))
            .disk(DiskSpec::file(DiskInterface::Virtio, "/b.img"))
            .disk(DiskSpec::file(DiskInterface::Sata, "/c.img"));
        check_devices(
            spec,
            &["/a.img", "/b.img", "/c.img"],
            "-drive file=/a.img,if=none,id=d0,format=raw -device ahci,id=ahci0 -device ide-hd,drive=d0,bus=ahci0.0 \
             -drive file=/b.img,if=none,id=d1,format=raw -device virtio-blk-pci,drive=d1 \
             -drive file=/c.img,if=none,id=d2,format=raw -device ide-hd,drive=d2,bus=ahci0.1",
        );
    }

    #[test]
    fn too_many_sata_disks_is_an_error() {
        let mut spec = GuestSpec::new(&image());
        let paths = ["/d.img"; 7];
        for path in paths {
            spec = spec.disk(DiskSpec::file(DiskInterface::Sata, path));
        }
        assert!(args_error(&spec, &paths).contains("at most 6 SATA disks"));
    }

    #[test]
    fn usb_disks_share_one_xhci_controller() {
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Usb, "/a.img"))
            .disk(DiskSpec::file(DiskInterface::Usb, "/b.img"));
        check_devices(
            spec,
            &["/a.img", "/b.img"],
            "-drive file=/a.img,if=none,id=d0,format=raw -device qemu-xhci,id=xhci -device usb-storage,bus=xhci.0,drive=d0 \
             -drive file=/b.img,if=none,id=d1,format=raw -device usb-storage,bus=xhci.0,drive=d1",
        );
    }

    fn floppy_image(dir: &Path, name: &str, size: u64) -> String {
        let path = dir.join(name);
        create_sparse(&path, size).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn floppy_on_pc_uses_the_built_in_controller() {
        let dir = tempfile::tempdir().unwrap();
        let a = floppy_image(dir.path(), "a.img", 1_474_560);
        let b = floppy_image(dir.path(), "b.img", 2_949_120);
        let spec = GuestSpec::new(&image())
            .machine(MachineType::Pc)
            .disk(DiskSpec::file(DiskInterface::Floppy, &a))
            .disk(DiskSpec::file(DiskInterface::Floppy, &b));
        check_devices(
            spec,
            &[&a, &b],
            &format!(
                "-drive file={a},if=none,id=d0,format=raw -device floppy,unit=0,drive=d0 \
                 -drive file={b},if=none,id=d1,format=raw -device floppy,unit=1,drive=d1"
            ),
        );
    }

    #[test]
    fn floppy_on_q35_adds_an_isa_controller() {
        let dir = tempfile::tempdir().unwrap();
        let a = floppy_image(dir.path(), "a.img", 1_474_560);
        let spec = GuestSpec::new(&image()).disk(DiskSpec::file(DiskInterface::Floppy, &a));
        check_devices(
            spec,
            &[&a],
            &format!(
                "-drive file={a},if=none,id=d0,format=raw -device isa-fdc,id=fdc0 \
                 -device floppy,unit=0,drive=d0,bus=fdc0.0"
            ),
        );
    }

    #[test]
    fn floppy_with_odd_size_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = floppy_image(dir.path(), "a.img", 1_000_000);
        let spec = GuestSpec::new(&image()).disk(DiskSpec::file(DiskInterface::Floppy, &a));
        let error = args_error(&spec, &[&a]);
        assert!(
            error.contains("1000000 bytes") && error.contains(&a),
            "{error}"
        );
    }

    #[test]
    fn missing_floppy_image_is_an_error_naming_it() {
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Floppy, "/nonexistent/f.img"));
        let resolved = fixed_resolution(&spec, vec!["/nonexistent/f.img".into()]);
        let error = format!(
            "{:#}",
            spec.qemu_args(Console::Interactive, &resolved).unwrap_err()
        );
        assert!(error.contains("/nonexistent/f.img"), "{error}");
    }

    #[test]
    fn an_empty_cd_drive_follows_the_disks() {
        let spec = GuestSpec::new(&image())
            .empty_cd_drive()
            .disk(DiskSpec::file(DiskInterface::Virtio, "/a.img"));
        check_devices(
            spec,
            &["/a.img"],
            "-drive file=/a.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0 \
             -device ide-cd,id=empty-cd",
        );
    }

    #[test]
    fn empty_floppy_drives_follow_those_with_a_disk() {
        let dir = tempfile::tempdir().unwrap();
        let a = floppy_image(dir.path(), "a.img", 1_474_560);
        let spec = GuestSpec::new(&image())
            .empty_floppy_drive()
            .disk(DiskSpec::file(DiskInterface::Floppy, &a));
        check_devices(
            spec,
            &[&a],
            &format!(
                "-drive file={a},if=none,id=d0,format=raw -device isa-fdc,id=fdc0 \
                 -device floppy,unit=0,drive=d0,bus=fdc0.0 -device floppy,unit=1,bus=fdc0.0"
            ),
        );
        let spec = GuestSpec::new(&image())
            .machine(MachineType::Pc)
            .empty_floppy_drive();
        check_devices(spec, &[], "-device floppy,unit=0");
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Floppy, &a))
            .empty_floppy_drive()
            .empty_floppy_drive();
        assert!(args_error(&spec, &[&a]).contains("at most 2 floppy drives"));
    }

    #[test]
    fn three_floppies_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = floppy_image(dir.path(), "a.img", 1_474_560);
        let mut spec = GuestSpec::new(&image());
        for _ in 0..3 {
            spec = spec.disk(DiskSpec::file(DiskInterface::Floppy, &a));
        }
        assert!(args_error(&spec, &[&a, &a, &a]).contains("at most 2 floppy drives"));
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        let spec = GuestSpec::new(&image()).disk(DiskSpec::file(DiskInterface::Virtio, "/x,y.img"));
        let all = args(&spec, &["/x,y.img"]);
        assert!(
            all.contains(&"file=/x,,y.img,if=none,id=d0,format=raw".to_string()),
            "{all:?}"
        );
        let resolved = fixed_resolution(&spec, vec!["/x,y.img".into()]);
        let serial = spec
            .qemu_args(
                Console::Captured {
                    dir: Path::new("/t,u"),
                },
                &resolved,
            )
            .unwrap();
        assert!(
            serial
                .iter()
                .any(|arg| arg.contains("path=/t,,u/serial.sock")),
            "{serial:?}"
        );
    }

    #[test]
    fn non_utf8_path_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/bad\xff.img"));
        let spec = GuestSpec::new(&image()).disk(DiskSpec::file(DiskInterface::Virtio, &path));
        let resolved = fixed_resolution(&spec, vec![path]);
        let error = spec
            .qemu_args(Console::Interactive, &resolved)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not UTF-8"), "{error}");
    }

    #[test]
    fn blank_disks_are_sparse_files_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::file(DiskInterface::Virtio, "/existing.img"))
            .disk(DiskSpec::blank(DiskInterface::Sata, 1 << 30));
        let resolved = spec.resolve(Some(dir.path())).unwrap();
        assert_eq!(
            resolved.disk_paths,
            [PathBuf::from("/existing.img"), dir.path().join("disk1.img")]
        );
        let meta = std::fs::metadata(dir.path().join("disk1.img")).unwrap();
        assert_eq!(meta.len(), 1 << 30);
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "not sparse: {} blocks",
            meta.blocks()
        );
    }

    #[test]
    fn blank_disk_without_directory_is_an_error() {
        let spec = GuestSpec::new(&image()).disk(DiskSpec::blank(DiskInterface::Virtio, 1 << 20));
        let error = spec.interactive_command().unwrap_err().to_string();
        assert!(error.contains("GuestSpec::work_dir"), "{error}");
    }

    #[test]
    fn blank_disk_that_exists_already_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk0.img"), b"keep me").unwrap();
        let spec = GuestSpec::new(&image()).disk(DiskSpec::blank(DiskInterface::Virtio, 1 << 20));
        let error = format!("{:#}", spec.resolve(Some(dir.path())).unwrap_err());
        assert!(error.contains("disk0.img"), "{error}");
        assert_eq!(
            std::fs::read(dir.path().join("disk0.img")).unwrap(),
            b"keep me"
        );
    }

    #[test]
    fn missing_qemu_names_the_package() {
        let spec = GuestSpec::new(&image()).qemu("qemu-system-nonexistent-arch");
        let error = spec.interactive_command().unwrap_err().to_string();
        assert!(
            error.contains("qemu-system-nonexistent-arch not found"),
            "{error}"
        );
        assert!(error.contains("apt-get install qemu-system-x86"), "{error}");
        let error = spec
            .qemu("/nonexistent/qemu")
            .boot()
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/qemu not found"), "{error}");
    }

    #[test]
    fn interactive_command_runs_the_qemu_program() {
        let spec = GuestSpec::new(&image())
            .qemu("/bin/true")
            .kernel_arg("mfv.halt=poweroff");
        let command = spec.interactive_command().unwrap();
        assert_eq!(command.get_program(), "/bin/true");
        let args: Vec<_> = command
            .get_args()
            .map(|arg| arg.to_str().unwrap())
            .collect();
        assert!(
            args.contains(&"console=ttyS0 mfv.halt=poweroff"),
            "{args:?}"
        );
    }

    #[test]
    fn interactive_command_creates_blank_disks_in_the_work_dir() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GuestSpec::new(&image())
            .qemu("/bin/true")
            .work_dir(dir.path())
            .disk(DiskSpec::blank(DiskInterface::Usb, 4096));
        spec.interactive_command().unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("disk0.img"))
                .unwrap()
                .len(),
            4096
        );
    }

    #[test]
    fn usb_controller_without_usb_disks() {
        let spec = GuestSpec::new(&image())
            .usb_controller()
            .disk(DiskSpec::file(DiskInterface::Virtio, "/a.img"));
        check_devices(
            spec,
            &["/a.img"],
            "-device qemu-xhci,id=xhci \
             -drive file=/a.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0",
        );
        let spec = GuestSpec::new(&image())
            .usb_controller()
            .disk(DiskSpec::file(DiskInterface::Usb, "/a.img"));
        check_devices(
            spec,
            &["/a.img"],
            "-device qemu-xhci,id=xhci \
             -drive file=/a.img,if=none,id=d0,format=raw -device usb-storage,bus=xhci.0,drive=d0",
        );
    }

    #[test]
    fn formatted_disks_are_made_at_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GuestSpec::new(&image())
            .disk(DiskSpec::blank(DiskInterface::Virtio, 1 << 20))
            .disk(DiskSpec::formatted(
                DiskInterface::Usb,
                8 << 20,
                Filesystem::Vfat,
                "MFVSTICK",
            ));
        let resolved = spec.resolve(Some(dir.path())).unwrap();
        let formatted = dir.path().join("disk1.img");
        assert_eq!(resolved.disk_paths[1], formatted);
        let boot_sector = std::fs::read(&formatted).unwrap();
        assert_eq!(boot_sector.len(), 8 << 20);
        assert_eq!(&boot_sector[510..512], [0x55, 0xaa]);
        assert!(
            boot_sector[..512].windows(8).any(|w| w == b"MFVSTICK"),
            "label missing from the boot sector"
        );
    }

    #[test]
    fn formatted_disk_without_directory_is_an_error() {
        let disk = DiskSpec::formatted(DiskInterface::Sata, 8 << 20, Filesystem::Ext4, "x");
        let error = disk.materialize(None, "x.img").unwrap_err().to_string();
        assert!(error.contains("GuestSpec::work_dir"), "{error}");
    }

    #[test]
    fn disk_spec_remembers_its_interface() {
        assert_eq!(
            DiskSpec::blank(DiskInterface::Floppy, 1_474_560).interface(),
            DiskInterface::Floppy
        );
    }

    /// Every argument after the console's, for specs that boot without `-append`.
    fn after_console(all: &[String]) -> String {
        let qmp = all.iter().position(|arg| arg == "-qmp").unwrap();
        all[qmp + 2..].join(" ")
    }

    #[test]
    fn a_network_boot_asks_the_first_nics_tftp_server_for_the_bootfile() {
        let spec = GuestSpec::new(&image())
            .boot_source(BootSource::Network {
                tftp_dir: "/img,x".into(),
                bootfile: "boot.ipxe".into(),
            })
            .nic(NicModel::E1000)
            .nic(NicModel::VirtioNet)
            .forward_port_to(8443, 443);
        let all = args(&spec, &[]);
        assert!(!all.contains(&"-kernel".to_owned()), "{all:?}");
        assert_eq!(
            after_console(&all),
            "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8443-:443,tftp=/img,,x,bootfile=boot.ipxe \
             -device e1000,netdev=n0,mac=52:54:00:12:34:56,bootindex=0 \
             -netdev user,id=n1,restrict=on -device virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57"
        );
        let spec = GuestSpec::new(&image()).boot_source(BootSource::Network {
            tftp_dir: "/img".into(),
            bootfile: "boot.ipxe".into(),
        });
        assert!(args_error(&spec, &[]).contains("a network boot needs a NIC"));
    }

    #[test]
    fn a_cd_is_read_only_and_boots_first() {
        let spec = GuestSpec::new(&image())
            .boot_source(BootSource::Cdrom("/img/m.iso".into()))
            .disk(DiskSpec::file(DiskInterface::Sata, "/a.img"));
        assert_eq!(
            after_console(&args(&spec, &["/a.img"])),
            "-drive file=/img/m.iso,if=none,id=cd0,media=cdrom,readonly=on,format=raw \
             -device ide-cd,drive=cd0,bootindex=0 \
             -drive file=/a.img,if=none,id=d0,format=raw -device ahci,id=ahci0 \
             -device ide-hd,drive=d0,bus=ahci0.0"
        );
    }

    #[test]
    fn a_usb_stick_is_writable_shares_the_xhci_controller_and_can_be_pulled_by_its_id() {
        let spec = GuestSpec::new(&image())
            .boot_source(BootSource::UsbStick("/img/m.iso".into()))
            .usb_controller()
            .disk(DiskSpec::file(DiskInterface::Usb, "/a.img"));
        assert_eq!(
            after_console(&args(&spec, &["/a.img"])),
            format!(
                "-device qemu-xhci,id=xhci -drive file=/img/m.iso,if=none,id={USB_STICK_DEVICE},format=raw \
                 -device usb-storage,bus=xhci.0,drive={USB_STICK_DEVICE},id={USB_STICK_DEVICE},bootindex=0 \
                 -drive file=/a.img,if=none,id=d0,format=raw -device usb-storage,bus=xhci.0,drive=d0"
            )
        );
    }

    #[test]
    fn a_medium_brings_its_own_command_line() {
        let spec = GuestSpec::new(&image())
            .boot_source(BootSource::Cdrom("/img/m.iso".into()))
            .kernel_arg("mfv.halt=poweroff");
        assert!(
            args_error(&spec, &[]).contains("kernel arguments need BootSource::Kernel"),
            "{}",
            args_error(&spec, &[])
        );
    }

    #[test]
    fn uefi_gets_ovmf_code_read_only_and_its_own_copy_of_the_variable_store() {
        let dir = tempfile::tempdir().unwrap();
        let spec = GuestSpec::new(&image())
            .firmware(Firmware::Uefi)
            .boot_source(BootSource::UsbStick("/img/m.iso".into()));
        let resolved = spec.resolve(Some(dir.path())).unwrap();
        let vars = dir.path().join("OVMF_VARS.fd");
        assert_eq!(resolved.uefi_vars.as_deref(), Some(vars.as_path()));
        assert_eq!(
            std::fs::read(&vars).unwrap(),
            std::fs::read(OVMF_VARS).unwrap()
        );
        let all = spec
            .qemu_args(Console::Interactive, &resolved)
            .unwrap()
            .join(" ");
        assert!(
            all.contains(&format!(
                "-drive if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE} \
                 -drive if=pflash,format=raw,unit=1,file={}",
                vars.display()
            )),
            "{all}"
        );
        let error = spec.interactive_command().unwrap_err().to_string();
        assert!(error.contains("GuestSpec::work_dir"), "{error}");
        let bios = GuestSpec::new(&image()).resolve(Some(dir.path())).unwrap();
        assert_eq!(bios.uefi_vars, None);
    }
}
