//! VM lifecycle through libvirt: define, start, stop, pause, undefine, list, info,
//! lifecycle events and console endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use virt::domain::{Domain, DomainState};
use virt::stream::Stream;
use virt::sys;

use crate::connection::Hypervisor;
use crate::libvirt::{DomainFacts, ObjectKind, VirtError, operation_error};

/// The state of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Running (or blocked on I/O, which libvirt reports separately).
    Running,
    /// Paused by the user (suspend).
    Paused,
    /// The guest is shutting down.
    ShuttingDown,
    /// Not running.
    ShutOff,
    /// The guest crashed.
    Crashed,
    /// Suspended by guest power management.
    PmSuspended,
    /// libvirt reports no state.
    Unknown,
}

impl VmState {
    fn of(state: virt::domain::DomainStateEnum) -> Self {
        match state {
            virt::enumutil::Enum::Known(DomainState::Running | DomainState::Blocked) => {
                VmState::Running
            }
            virt::enumutil::Enum::Known(DomainState::Paused) => VmState::Paused,
            virt::enumutil::Enum::Known(DomainState::Shutdown) => VmState::ShuttingDown,
            virt::enumutil::Enum::Known(DomainState::Shutoff) => VmState::ShutOff,
            virt::enumutil::Enum::Known(DomainState::Crashed) => VmState::Crashed,
            virt::enumutil::Enum::Known(DomainState::PMSuspended) => VmState::PmSuspended,
            _ => VmState::Unknown,
        }
    }

    /// The state as shown to users and in JSON (`running`, `shut_off`...).
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Running => "running",
            VmState::Paused => "paused",
            VmState::ShuttingDown => "shutting_down",
            VmState::ShutOff => "shut_off",
            VmState::Crashed => "crashed",
            VmState::PmSuspended => "pm_suspended",
            VmState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VmSummary {
    /// The VM's name.
    pub name: String,
    /// The VM's UUID.
    pub uuid: String,
    /// Its state.
    pub state: VmState,
    /// Started when the host boots.
    pub autostart: bool,
    /// Has a persistent definition (a transient VM disappears when it stops).
    pub persistent: bool,
}

/// Counters of one disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct DiskCounters {
    /// The guest device name (`vda`).
    pub target: String,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Read requests.
    pub read_requests: u64,
    /// Write requests.
    pub write_requests: u64,
}

/// Counters of one NIC, seen from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NicCounters {
    /// The host-side device (`vnet0`).
    pub target: String,
    /// Bytes the guest received.
    pub rx_bytes: u64,
    /// Bytes the guest sent.
    pub tx_bytes: u64,
    /// Packets the guest received.
    pub rx_packets: u64,
    /// Packets the guest sent.
    pub tx_packets: u64,
}

/// Everything `info` reports about a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VmInfo {
    /// Name, UUID, state, autostart.
    #[serde(flatten)]
    pub summary: VmSummary,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in use, KiB.
    pub memory_kib: u64,
    /// Maximum memory, KiB.
    pub max_memory_kib: u64,
    /// CPU time used, nanoseconds.
    pub cpu_time_ns: u64,
    /// Disk counters (running VMs only; empty when shut off).
    pub disks: Vec<DiskCounters>,
    /// NIC counters (running VMs only).
    pub nics: Vec<NicCounters>,
}

/// How [`Hypervisor::shutdown`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShutdownOutcome {
    /// The guest shut down by itself after the ACPI request.
    Graceful,
    /// The deadline passed and the VM was forced off.
    ForcedOff,
    /// The VM was not running.
    AlreadyOff,
}

/// What [`Hypervisor::undefine`] does with the VM's disk volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumePolicy {
    /// Keep every disk image.
    Keep,
    /// Delete the VM's disk volumes that belong to a storage pool (CD-ROM images stay).
    DeleteDisks,
}

/// Where a VM's VNC server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VncEndpoint {
    /// Listen address (localhost by default).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// A change seen by [`LifecycleEvents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct LifecycleEvent {
    /// The VM's name.
    pub name: String,
    /// Its state before, `None` when it was just defined.
    pub from: Option<VmState>,
    /// Its state now, `None` when it was undefined.
    pub to: Option<VmState>,
}

/// A stream of VM lifecycle changes (defined, started, paused, stopped, undefined).
///
/// The binding has no domain event callbacks, so changes are found by comparing listings
/// every `interval`; a change that reverts within one interval is not seen.
#[derive(Debug)]
pub struct LifecycleEvents<'a> {
    hypervisor: &'a Hypervisor,
    interval: Duration,
    known: BTreeMap<String, VmState>,
    pending: Vec<LifecycleEvent>,
}

impl LifecycleEvents<'_> {
    /// Waits up to `timeout` for the next change.
    pub fn next_within(&mut self, timeout: Duration) -> Result<Option<LifecycleEvent>, VirtError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.pending.pop() {
                return Ok(Some(event));
            }
            let now: BTreeMap<String, VmState> = self
                .hypervisor
                .list()?
                .into_iter()
                .map(|vm| (vm.name, vm.state))
                .collect();
            for (name, state) in &now {
                let before = self.known.get(name).copied();
                if before != Some(*state) {
                    self.pending.push(LifecycleEvent {
                        name: name.clone(),
                        from: before,
                        to: Some(*state),
                    });
                }
            }
            for (name, state) in &self.known {
                if !now.contains_key(name) {
                    self.pending.push(LifecycleEvent {
                        name: name.clone(),
                        from: Some(*state),
                        to: None,
                    });
                }
            }
            self.pending.reverse();
            self.known = now;
            if !self.pending.is_empty() {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(self.interval.min(deadline - Instant::now()));
        }
    }
}

/// A VM's serial console as a byte stream.
///
/// A reader thread receives from libvirt; it ends when the console closes: the VM stopped,
/// or another client took the console over. Tests wait for output with
/// [`wait_for`](Self::wait_for), which keeps everything; a long-running viewer takes it
/// piece by piece with [`next_output`](Self::next_output), which keeps nothing. What is
/// typed goes in through [`input`](Self::input). Dropping the console detaches it from the
/// VM at once, so the next client does not have to take it over.
#[derive(Debug)]
pub struct SerialConsole {
    name: String,
    chunks: Receiver<Vec<u8>>,
    received: Vec<u8>,
    closed: bool,
    input: ConsoleInput,
}

/// The writing half of a [`SerialConsole`]: bytes typed into the VM's serial port. It may
/// be moved to a thread of its own while another reads the console; a send blocks until
/// libvirt took the bytes, which is the backpressure a fast typist meets.
#[derive(Clone)]
pub struct ConsoleInput {
    name: String,
    stream: Stream,
}

impl std::fmt::Debug for ConsoleInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleInput")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ConsoleInput {
    /// Sends `bytes` to the VM's serial port, all of them, blocking until libvirt took
    /// them. Fails with [`VirtError::ConsoleClosed`] once the console closed.
    pub fn send(&self, bytes: &[u8]) -> Result<(), VirtError> {
        let closed = || VirtError::ConsoleClosed {
            name: self.name.clone(),
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let sent = self.stream.send(rest).map_err(|_| closed())?;
            let sent = usize::try_from(sent).unwrap_or(0).min(rest.len());
            if sent == 0 {
                return Err(closed());
            }
            rest = &rest[sent..];
        }
        Ok(())
    }
}

impl Drop for SerialConsole {
    fn drop(&mut self) {
        // Ends the reader thread's receive and frees the console in libvirt; a console that
        // already closed has nothing left to abort.
        let _ = self.input.stream.clone().abort();
    }
}

impl SerialConsole {
    /// The writing half, for typing into the console.
    pub fn input(&self) -> ConsoleInput {
        self.input.clone()
    }

    /// Everything received so far by [`wait_for`](Self::wait_for).
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// Waits up to `timeout` for the next output and hands it over without keeping it in
    /// [`received`](Self::received). `None` when nothing arrived in time or the console is
    /// closed ([`is_closed`](Self::is_closed) tells which).
    pub fn next_output(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if self.closed {
            return None;
        }
        match self.chunks.recv_timeout(timeout) {
            Ok(chunk) => Some(chunk),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                None
            }
        }
    }

    /// Whether the console has closed (the VM stopped or another client took the console
    /// over) and everything it sent has been taken.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Waits until the received output contains `token`, at most `timeout`. Returns the
    /// whole output received so far.
    pub fn wait_for(&mut self, token: &str, timeout: Duration) -> Result<String, VirtError> {
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.received).contains(token) {
                return Ok(String::from_utf8_lossy(&self.received).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed {
                return Err(VirtError::Timeout {
                    operation: "print the expected console output",
                    name: self.name.clone(),
                    seconds: timeout.as_secs(),
                });
            }
            if let Some(chunk) = self.next_output(left) {
                self.received.extend_from_slice(&chunk);
            }
        }
    }
}

const POLL: Duration = Duration::from_millis(100);

impl Hypervisor {
    /// Defines (or redefines, same name and UUID) a persistent VM from domain XML and
    /// returns its name.
    pub fn define(&self, xml: &str) -> Result<String, VirtError> {
        let name = crate::libvirt::xml_name(xml).unwrap_or_default();
        let domain = self
            .connection
            .define_domain_xml(xml)
            .map_err(|error| operation_error("define", ObjectKind::Vm, &name, error))?;
        domain
            .name()
            .map_err(|error| operation_error("define", ObjectKind::Vm, &name, error))
    }

    /// Starts a defined VM.
    pub fn start(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        if domain.is_active().unwrap_or(false) {
            return Err(self.wrong_state("start", name));
        }
        domain
            .create()
            .map(drop)
            .map_err(|error| operation_error("start", ObjectKind::Vm, name, error))
    }

    /// Asks the guest to power off (ACPI) and waits up to `deadline`; forces it off when
    /// the deadline passes.
    pub fn shutdown(&self, name: &str, deadline: Duration) -> Result<ShutdownOutcome, VirtError> {
        let domain = self.domain(name)?;
        if !domain.is_active().unwrap_or(false) {
            return Ok(ShutdownOutcome::AlreadyOff);
        }
        domain
            .shutdown()
            .map_err(|error| operation_error("shut down", ObjectKind::Vm, name, error))?;
        if wait_inactive(&domain, deadline) {
            return Ok(ShutdownOutcome::Graceful);
        }
        self.force_off(name)?;
        Ok(ShutdownOutcome::ForcedOff)
    }

    /// Stops the VM at once, like pulling the power cord.
    pub fn force_off(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        match domain.destroy() {
            Ok(()) => Ok(()),
            Err(_) if !domain.is_active().unwrap_or(true) => Ok(()),
            Err(error) => Err(operation_error("force off", ObjectKind::Vm, name, error)),
        }
    }

    /// Asks the guest to reboot.
    pub fn reboot(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.running(name, "reboot")?;
        domain
            .reboot(0)
            .map_err(|error| operation_error("reboot", ObjectKind::Vm, name, error))
    }

    /// Resets the VM at once, like pressing the reset button.
    pub fn reset(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.running(name, "reset")?;
        domain
            .reset()
            .map_err(|error| operation_error("reset", ObjectKind::Vm, name, error))
    }

    /// Pauses a running VM (its memory stays allocated).
    pub fn suspend(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        if self.state_of(&domain) != VmState::Running {
            return Err(self.wrong_state("suspend", name));
        }
        domain
            .suspend()
            .map_err(|error| operation_error("suspend", ObjectKind::Vm, name, error))
    }

    /// Resumes a paused VM.
    pub fn resume(&self, name: &str) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        if self.state_of(&domain) != VmState::Paused {
            return Err(self.wrong_state("resume", name));
        }
        domain
            .resume()
            .map_err(|error| operation_error("resume", ObjectKind::Vm, name, error))
    }

    /// Removes a shut-off VM's definition, its snapshots' metadata and UEFI variables, and
    /// with [`VolumePolicy::DeleteDisks`] its disk volumes.
    pub fn undefine(&self, name: &str, volumes: VolumePolicy) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        if domain.is_active().unwrap_or(false) {
            return Err(self.wrong_state("delete", name));
        }
        let facts = DomainFacts::parse(name, &self.inactive_xml(&domain, name)?)?;
        let mut flags =
            sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        if facts.pflash_firmware {
            flags |= sys::VIR_DOMAIN_UNDEFINE_NVRAM;
        }
        let undefined = domain.undefine_flags(flags).or_else(|error| {
            // Drivers without UEFI variable stores (the test driver) reject the NVRAM flag.
            if flags & sys::VIR_DOMAIN_UNDEFINE_NVRAM != 0
                && crate::libvirt::code(&error) == Some(virt::error::ErrorNumber::InvalidArg)
            {
                domain.undefine_flags(flags & !sys::VIR_DOMAIN_UNDEFINE_NVRAM)
            } else {
                Err(error)
            }
        });
        undefined.map_err(|error| operation_error("delete", ObjectKind::Vm, name, error))?;
        if volumes == VolumePolicy::DeleteDisks {
            for disk in facts.disks.iter().filter(|disk| disk.device == "disk") {
                self.delete_disk_volume(disk)?;
            }
        }
        Ok(())
    }

    /// Sets whether the VM starts when the host boots.
    pub fn set_autostart(&self, name: &str, autostart: bool) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        domain
            .set_autostart(autostart)
            .map(drop)
            .map_err(|error| operation_error("set autostart of", ObjectKind::Vm, name, error))
    }

    /// Every VM, running or not, sorted by name.
    pub fn list(&self) -> Result<Vec<VmSummary>, VirtError> {
        // One listing per property instead of three calls per VM: a host with 1000 VMs is
        // listed in a few round trips. Only running VMs are asked for their state (an
        // inactive VM is shut off by definition). Every VM comes from the one full listing, so
        // a VM that starts or stops meanwhile is listed once, with either state.
        let active = self.domain_uuids(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)?;
        let autostart = self.domain_uuids(sys::VIR_CONNECT_LIST_DOMAINS_AUTOSTART)?;
        let persistent = self.domain_uuids(sys::VIR_CONNECT_LIST_DOMAINS_PERSISTENT)?;
        let mut summaries = Vec::new();
        for domain in self.list_domains(0)? {
            let name = domain
                .name()
                .map_err(|error| operation_error("read", ObjectKind::Vm, "?", error))?;
            let read = |error| operation_error("read", ObjectKind::Vm, &name, error);
            let uuid = domain.uuid_string().map_err(read)?;
            let state = if active.contains(&uuid) {
                match domain.state().map_err(read) {
                    Ok((state, _)) => VmState::of(state),
                    // A VM undefined between listing and asking is not an error of the
                    // listing.
                    Err(VirtError::NotFound { .. }) => continue,
                    Err(error) => return Err(error),
                }
            } else {
                VmState::ShutOff
            };
            summaries.push(VmSummary {
                state,
                autostart: autostart.contains(&uuid),
                persistent: persistent.contains(&uuid),
                uuid,
                name,
            });
        }
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    fn list_domains(
        &self,
        filter: sys::virConnectListAllDomainsFlags,
    ) -> Result<Vec<Domain>, VirtError> {
        self.connection
            .list_all_domains(filter)
            .map_err(|error| operation_error("list", ObjectKind::Vm, "*", error))
    }

    /// The UUIDs of the VMs that pass `filter`.
    fn domain_uuids(
        &self,
        filter: sys::virConnectListAllDomainsFlags,
    ) -> Result<BTreeSet<String>, VirtError> {
        self.list_domains(filter)?
            .iter()
            .map(|domain| {
                domain
                    .uuid_string()
                    .map_err(|error| operation_error("read", ObjectKind::Vm, "?", error))
            })
            .collect()
    }

    /// State, CPU and memory figures, and disk and NIC counters of one VM.
    pub fn info(&self, name: &str) -> Result<VmInfo, VirtError> {
        let domain = self.domain(name)?;
        let summary = self.summary(&domain)?;
        let info = domain
            .info()
            .map_err(|error| operation_error("read info of", ObjectKind::Vm, name, error))?;
        let mut disks = Vec::new();
        let mut nics = Vec::new();
        if summary.state == VmState::Running || summary.state == VmState::Paused {
            let xml = domain
                .xml_desc(0)
                .map_err(|error| operation_error("read", ObjectKind::Vm, name, error))?;
            let facts = DomainFacts::parse(name, &xml)?;
            for disk in facts.disks.iter().filter(|disk| !disk.target.is_empty()) {
                // A CD-ROM without media has no statistics; skip what libvirt cannot count.
                if let Ok(stats) = domain.block_stats(&disk.target) {
                    disks.push(DiskCounters {
                        target: disk.target.clone(),
                        read_bytes: counter(stats.rd_bytes),
                        write_bytes: counter(stats.wr_bytes),
                        read_requests: counter(stats.rd_req),
                        write_requests: counter(stats.wr_req),
                    });
                }
            }
            for target in &facts.nic_targets {
                if let Ok(stats) = domain.interface_stats(target) {
                    nics.push(NicCounters {
                        target: target.clone(),
                        rx_bytes: counter(stats.rx_bytes),
                        tx_bytes: counter(stats.tx_bytes),
                        rx_packets: counter(stats.rx_packets),
                        tx_packets: counter(stats.tx_packets),
                    });
                }
            }
        }
        Ok(VmInfo {
            summary,
            vcpus: info.nr_virt_cpu,
            memory_kib: info.memory,
            max_memory_kib: info.max_mem,
            cpu_time_ns: info.cpu_time,
            disks,
            nics,
        })
    }

    /// The live domain XML of a VM (passwords left out).
    pub fn domain_xml(&self, name: &str) -> Result<String, VirtError> {
        self.domain(name)?
            .xml_desc(0)
            .map_err(|error| operation_error("read", ObjectKind::Vm, name, error))
    }

    /// Where the running VM's VNC server listens; `None` when it has no VNC graphics or is
    /// not running.
    pub fn vnc_endpoint(&self, name: &str) -> Result<Option<VncEndpoint>, VirtError> {
        let facts = DomainFacts::parse(name, &self.domain_xml(name)?)?;
        Ok(facts.vnc.and_then(|(host, port)| {
            port.filter(|port| *port > 0)
                .map(|port| VncEndpoint { host, port })
        }))
    }

    /// Attaches to the running VM's serial console, taking it over from any other client
    /// (whose console then closes: the newest client wins).
    pub fn open_serial_console(&self, name: &str) -> Result<SerialConsole, VirtError> {
        self.running(name, "open the console of")?;
        // A blocking stream stalls every other call on its connection in libvirt's client,
        // so the console gets a connection of its own.
        let console_connection = Hypervisor::connect(self.uri())?;
        let domain = console_connection.domain(name)?;
        let stream = Stream::new(&console_connection.connection, 0)
            .map_err(|error| operation_error("open the console of", ObjectKind::Vm, name, error))?;
        domain
            .open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_FORCE)
            .map_err(|error| operation_error("open the console of", ObjectKind::Vm, name, error))?;
        let input = ConsoleInput {
            name: name.to_owned(),
            stream: stream.clone(),
        };
        let (sender, chunks) = mpsc::channel();
        thread::Builder::new()
            .name(format!("console-{name}"))
            .spawn(move || {
                let _connection = console_connection;
                let mut buffer = vec![0u8; 4096];
                while let Ok(read @ 1..) = stream.recv(&mut buffer) {
                    let read = usize::try_from(read).unwrap_or(0).min(buffer.len());
                    if sender.send(buffer[..read].to_vec()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| VirtError::Io {
                operation: "start the console reader",
                path: name.into(),
                source,
            })?;
        Ok(SerialConsole {
            name: name.to_owned(),
            chunks,
            received: Vec::new(),
            closed: false,
            input,
        })
    }

    /// Opens a connection to the running VM's VNC display, without its password or a TCP
    /// port: libvirt asks QEMU for a new client socket and passes it over (the graphics
    /// device's own authentication is skipped, so callers check who may use it). The
    /// socket speaks RFB from its first byte.
    pub fn open_vnc(&self, name: &str) -> Result<UnixStream, VirtError> {
        let domain = self.running(name, "open the VNC console of")?;
        let facts = DomainFacts::parse(name, &self.domain_xml(name)?)?;
        let Some(index) = facts.vnc_index else {
            return Err(VirtError::NoVncDisplay {
                name: name.to_owned(),
            });
        };
        let fd = domain
            .open_graphics_fd(index, sys::VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
            .map_err(|error| {
                operation_error("open the VNC console of", ObjectKind::Vm, name, error)
            })?;
        let fd = RawFd::try_from(fd).map_err(|_| VirtError::Unsupported {
            operation: "open the VNC console",
            name: name.to_owned(),
            reason: format!("libvirt returned no usable descriptor ({fd})"),
            what_works: "try again",
        })?;
        // SAFETY: virDomainOpenGraphicsFD returned a new descriptor that the caller owns
        // and nothing else refers to.
        Ok(UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A stream of lifecycle changes, comparing listings every `interval`. The first
    /// call reports every existing VM as a change from `None`.
    pub fn lifecycle_events(&self, interval: Duration) -> LifecycleEvents<'_> {
        LifecycleEvents {
            hypervisor: self,
            interval,
            known: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    pub(crate) fn inactive_xml(&self, domain: &Domain, name: &str) -> Result<String, VirtError> {
        domain
            .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
            .map_err(|error| operation_error("read", ObjectKind::Vm, name, error))
    }

    fn summary(&self, domain: &Domain) -> Result<VmSummary, VirtError> {
        let name = domain
            .name()
            .map_err(|error| operation_error("read", ObjectKind::Vm, "?", error))?;
        let read = |error| operation_error("read", ObjectKind::Vm, &name, error);
        Ok(VmSummary {
            uuid: domain.uuid_string().map_err(read)?,
            state: VmState::of(domain.state().map_err(read)?.0),
            autostart: domain.autostart().map_err(read)?,
            persistent: domain.is_persistent().map_err(read)?,
            name,
        })
    }

    fn state_of(&self, domain: &Domain) -> VmState {
        domain
            .state()
            .map(|(state, _)| VmState::of(state))
            .unwrap_or(VmState::Unknown)
    }

    fn running(&self, name: &str, operation: &'static str) -> Result<Domain, VirtError> {
        let domain = self.domain(name)?;
        if domain.is_active().unwrap_or(false) {
            Ok(domain)
        } else {
            Err(self.wrong_state(operation, name))
        }
    }

    fn wrong_state(&self, operation: &'static str, name: &str) -> VirtError {
        let state = self
            .domain(name)
            .map(|domain| self.state_of(&domain))
            .unwrap_or(VmState::Unknown);
        VirtError::WrongState {
            operation,
            name: name.to_owned(),
            state: state.to_string(),
        }
    }

    fn delete_disk_volume(&self, disk: &crate::libvirt::DomainDisk) -> Result<(), VirtError> {
        let volume = if let Some((pool, volume)) = &disk.pool_volume {
            let pool = self.pool(pool)?;
            pool.lookup_storage_vol_by_name(volume)
        } else if let Some(path) = &disk.path {
            self.connection.lookup_storage_vol_by_path(path)
        } else {
            return Ok(());
        };
        // An image outside every pool is not a volume libvirt manages: it is left alone.
        let Ok(volume) = volume else { return Ok(()) };
        let name = volume.name().unwrap_or_default();
        volume
            .delete(0)
            .map_err(|error| operation_error("delete", ObjectKind::Volume, &name, error))
    }
}

fn wait_inactive(domain: &Domain, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if !domain.is_active().unwrap_or(false) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(POLL);
    }
}

fn counter(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
