//! Config discovery: which volumes are candidates, in which order, what each one held, and
//! which configuration the host boots with.
//!
//! # Order
//! Without `mfv.config=` the candidates are [`default_order`]: `/dev/sda1`, then every volume
//! labelled [`CONFIG_VOLUME_LABEL`] (in kernel name order), then the floppy `/dev/fd0`.
//! `mfv.config=` replaces the whole order with its one locator; `LABEL=`, `UUID=` and
//! `PARTLABEL=` are resolved by a scan of `<sysfs>/class/block` ([`scan_volumes`]); `none`
//! skips discovery. A device reached twice (e.g. `/dev/sda1` that is also labelled
//! `mfv-config`) is tried once.
//!
//! Labels compare exactly, except on FAT file systems, which compare ASCII case-insensitively
//! because FAT labels are upper case by convention: `mfv-config` finds a vfat volume labelled
//! `MFV-CONFIG` (see [`label_matches`]). UUIDs ignore case; GPT partition names
//! compare exactly.
//!
//! # Each candidate
//! A device node that is absent, or a drive without a medium, is `absent` (and waited for,
//! see below). A block device has no medium when its sysfs `size` is 0, except two kinds of
//! drive whose size says nothing. A CD/DVD drive (block major 11), to which the driver gives
//! a placeholder size when it is empty, is asked with `CDROM_DRIVE_STATUS`. A floppy drive
//! (block major 2), whose size means nothing until it is opened, is asked with the floppy
//! driver's `FDPOLLDRVSTAT` on a non-blocking open, which checks the drive's disk-change line
//! without reading, so an empty drive never gives `I/O error` messages on the console; a
//! drive with a disk is then opened once, blocking, so the driver detects the format. The
//! label scan asks both kinds of drive the same way.
//!
//! The file system type comes from libblkid. The volume is mounted read-only (plus `noexec`,
//! `nosuid`, `nodev`, and `noload` for ext3/ext4 so a journal is never replayed) on a private
//! directory in the run directory, the configuration is read, and the volume is unmounted, on
//! every path. Discovery never writes to any volume.
//!
//! # Generations: `mfv.toml` and `mfv.toml.prev`
//! A config volume written by the store ([`DirectoryStore`](crate::store::DirectoryStore))
//! holds the current generation `mfv.toml` and the last-known-good one `mfv.toml.prev`, each
//! starting with a [generation header](crate::store::header) (generation, length, SHA-256).
//! Discovery reads them as the store's own `load` does, with the store's rule
//! ([`select_generation`]) and header check ([`header::verify`]), through the reader the store
//! uses too ([`read_limited`]): each file must be a regular
//! file, no symbolic link, at most [`DiscoveryParams::max_config_bytes`].
//! - `mfv.toml` is used when its header (if any) matches its body and it is valid. A file
//!   without a header was written by hand and is checked by the validator only; a file whose
//!   header does not match (a torn write, or a body edited under a kept header) is never
//!   used.
//! - Otherwise `mfv.toml.prev` (read only then) is used when it is usable in the same sense,
//!   and the report says which file was skipped and why, and which generation is used. This
//!   holds for every reason `mfv.toml` is unusable, an invalid hand-edited file included: the
//!   host boots with its last-known-good configuration, as the store's `load` would give it,
//!   and the console lists the edited file's errors. (`mfv.toml.prev` is then the generation
//!   before the last save, not the file the edit started from.)
//! - When neither is usable, both reasons are reported; the outcome is "invalid" only when
//!   `mfv.toml` itself is invalid.
//!
//! Error positions count every line of the file, the header line included, as an editor
//! shows them.
//!
//! # Outcome
//! The first candidate with a usable configuration wins ([`Discovery::Found`]). A candidate
//! with an invalid one is reported with every error and discovery goes on; when no valid one
//! is found, the first invalid one is the outcome ([`Discovery::Invalid`]). Otherwise
//! [`Discovery::NotFound`]. The [`DiscoveryReport`] lists every candidate tried and why it was
//! taken or skipped; its `Display` is what the console shows.
//!
//! # Console rendering
//! `Display` of a [`DiscoveryReport`]: a header line, then one line per candidate, indented by
//! two spaces, `LOCATOR [DEVICE] [(FS)]: VERDICT` (the device is shown when a search found
//! it); the errors of an invalid file follow their candidate, indented by four:
//!
//! ```text
//! config: mfv.toml on /dev/vdb1 (ext4, LABEL=mfv-config) is invalid (2 errors)
//!   /dev/sda1: absent (no such device)
//!   LABEL=mfv-config /dev/vdb1 (ext4): invalid (2 errors)
//!     mfv.toml:3:12: host.hostname: not a valid host name
//!     mfv.toml:7:1: netwrk: unknown field, did you mean `network`?
//!   /dev/fd0: absent (no medium)
//! ```
//!
//! The header is `config: using mfv.toml from SOURCE`, `config: using mfv.toml.prev
//! (last-known-good, generation N) from SOURCE`, `config: mfv.toml on SOURCE is invalid (N
//! errors)`, `config: no configuration found` or `config: discovery skipped
//! (mfv.config=none)`. Other verdicts: `taken`, `taken: mfv.toml.prev (last-known-good,
//! generation N); skipped: PROBLEM`, `absent (no volume matches)`, `skipped: no file system`,
//! `skipped: cannot probe: ERROR`, `skipped: not mountable: ERROR`, `skipped: no mfv.toml`,
//! `skipped: mfv.toml is a symbolic link` (or `is not a regular file`, `cannot read
//! mfv.toml: ERROR`), `skipped: mfv.toml too large (N bytes, limit L)`, `skipped: mfv.toml
//! corrupt: ...` (header mismatch), `skipped: PROBLEM; PROBLEM OF mfv.toml.prev` (neither
//! generation usable), `skipped: already tried above`. Scan problems follow as `  scan:
//! MESSAGE`, and after waiting `  waited 3.0 s for devices (7 passes)`, followed by `: storage
//! was settling: REASON` (or `: gave up, storage still settling: REASON`) when the wait was
//! for settling storage.
//!
//! # Waiting
//! With a wait (`mfv.config_wait=`), a pass that finds nothing while some candidate was
//! absent is repeated, with a new scan, every [`DiscoveryParams::poll_interval`] until the
//! wait is over: USB sticks appear late. Without it, the same happens while the caller's
//! [`SettleCheck`] ([`DiscoveryParams::settle`]) says storage is still settling (a USB stick
//! present at power-on becomes a disk only after usb-storage's delayed scan), plus one pass
//! after it settled, at most [`DiscoveryParams::settle_limit`] ([`DEFAULT_SETTLE_LIMIT`],
//! 10 s) from the start. Without either there is one pass.

mod medium;
mod report;
mod scan;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cmdline::{BootOptions, ConfigLocator};
use crate::mount::{Journal, Mounter, ReadOnlyMount};
use crate::schema::{Config, ConfigErrors, parse_config_bytes};
use crate::store::header;
use crate::store::{CURRENT_FILE_NAME, PREVIOUS_FILE_NAME, Selected, select_generation};
use mfv_linux::regular_file::{FileKind, ReadError, read_limited};

pub use scan::{
    ScanIssue, Signature, SignatureError, Volume, VolumeScan, device_node, label_matches,
    probe_signature, scan_volumes, uuid_matches,
};

/// The label that marks a config volume.
pub const CONFIG_VOLUME_LABEL: &str = "mfv-config";

/// The default limit on the size of `mfv.toml`: the schema's own limit,
/// [`MAX_CONFIG_SIZE`](crate::schema::MAX_CONFIG_SIZE) (1 MiB).
pub const DEFAULT_MAX_CONFIG_BYTES: u64 = crate::schema::MAX_CONFIG_SIZE as u64;

/// The default time between passes while waiting for devices.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The default bound on waiting for storage that is still settling ([`SettleCheck`]) when
/// `mfv.config_wait=` is not given: 10 s, time enough for a USB stick present at power-on
/// (usb-storage waits 1 s before its SCSI scan, then the disk and its partitions appear).
pub const DEFAULT_SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Asks the system whether storage that may hold the configuration is still appearing: a
/// USB mass-storage device whose disk is not there yet, for instance. The caller supplies
/// it (mfv-init asks mfv-probe, which reads sysfs); `Some(reason)` while devices are still
/// settling, `None` once they are all there.
#[derive(Clone)]
pub struct SettleCheck(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl SettleCheck {
    /// A check that calls `check`.
    pub fn new(check: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        SettleCheck(Arc::new(check))
    }

    /// Why storage is still settling, or `None` when it is settled.
    pub fn unsettled(&self) -> Option<String> {
        (self.0)()
    }
}

impl std::fmt::Debug for SettleCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettleCheck(..)")
    }
}

/// Two checks are equal when they are the same closure (clones of one another).
impl PartialEq for SettleCheck {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SettleCheck {}

/// The candidates tried when `mfv.config=` is not given: `/dev/sda1`, `LABEL=mfv-config`,
/// `/dev/fd0`.
pub fn default_order() -> Vec<ConfigLocator> {
    vec![
        ConfigLocator::Device(PathBuf::from("/dev/sda1")),
        ConfigLocator::Label(CONFIG_VOLUME_LABEL.to_owned()),
        ConfigLocator::Device(PathBuf::from("/dev/fd0")),
    ]
}

/// What discovery looks for and where: the boot options plus the system paths (parameters so
/// tests can use fixture trees and loop devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryParams {
    /// `mfv.config=`: replaces the default order; `None` for [`default_order`].
    pub locator: Option<ConfigLocator>,
    /// `mfv.config_wait=`: how long to keep looking for absent devices. When it is given,
    /// it alone decides and [`DiscoveryParams::settle`] is not asked.
    pub wait: Option<Duration>,
    /// Without `mfv.config_wait=`: asked before each pass whether storage is still settling;
    /// discovery keeps looking while it is (and one pass after), at most
    /// [`DiscoveryParams::settle_limit`]. `None`: no such waiting.
    pub settle: Option<SettleCheck>,
    /// The bound on waiting for [`DiscoveryParams::settle`], from the start of discovery.
    pub settle_limit: Duration,
    /// The sysfs root (`/sys`).
    pub sysfs_root: PathBuf,
    /// The device root (`/dev`): a device locator under `/dev` is looked up here instead
    /// (`/dev/sda1` is `<dev_root>/sda1`), and scanned volumes are `<dev_root>/<name>`.
    pub dev_root: PathBuf,
    /// Where private mount points are created (created if missing).
    pub run_dir: PathBuf,
    /// The largest `mfv.toml` (or `mfv.toml.prev`) that is read.
    pub max_config_bytes: u64,
    /// The time between passes while waiting.
    pub poll_interval: Duration,
}

impl DiscoveryParams {
    /// Discovery on this system (`/sys`, `/dev`, mount points in `/run/mfv`) with the given
    /// locator and wait.
    pub fn new(locator: Option<ConfigLocator>, wait: Option<Duration>) -> Self {
        DiscoveryParams {
            locator,
            wait,
            settle: None,
            settle_limit: DEFAULT_SETTLE_LIMIT,
            sysfs_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
            run_dir: PathBuf::from("/run/mfv"),
            max_config_bytes: DEFAULT_MAX_CONFIG_BYTES,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// [`DiscoveryParams::new`] with `mfv.config=` and `mfv.config_wait=` from the kernel
    /// command line.
    pub fn from_boot_options(options: &BootOptions) -> Self {
        Self::new(options.config.clone(), options.config_wait)
    }

    /// Where a device locator's path is looked for: paths under `/dev` move to the dev root.
    pub fn device_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/dev") {
            Ok(rest) => self.dev_root.join(rest),
            Err(_) => path.to_owned(),
        }
    }
}

/// Where a configuration was read from. Serializes with these field names, the locator as its
/// `mfv.config=` spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSource {
    /// The device node.
    pub device: PathBuf,
    /// Its file system type.
    pub fs_type: String,
    /// Its file system label.
    pub label: Option<String>,
    /// Its file system UUID.
    pub uuid: Option<String>,
    /// The candidate that led to it.
    #[serde(serialize_with = "report::locator")]
    pub locator: ConfigLocator,
}

/// What discovery found. Serializes as an object whose `result` is `found`, `invalid` or
/// `not_found`; errors serialize as a list of `{line, column, path, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Discovery {
    /// A valid configuration.
    Found {
        /// The configuration.
        config: Box<Config>,
        /// Where it was read from.
        source: ConfigSource,
    },
    /// No valid configuration, and this candidate (the first such) held an invalid one.
    Invalid {
        /// Where it was read from.
        source: ConfigSource,
        /// Every problem in it.
        #[serde(serialize_with = "report::config_errors")]
        errors: ConfigErrors,
    },
    /// No configuration at all (or discovery was disabled with `mfv.config=none`).
    NotFound,
}

/// Why a candidate was absent. Serializes in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Absence {
    /// The device node does not exist.
    NoDeviceNode,
    /// The device exists but has no medium: size 0 (an empty card reader, an unattached
    /// loop device), or a CD/DVD or floppy drive without a disc.
    NoMedium,
    /// No scanned volume has the label, UUID or partition name.
    NoMatchingVolume,
}

/// What became of one candidate. Serializes as an object whose `verdict` is the variant name in
/// snake_case, with the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Its valid `mfv.toml` is the configuration.
    Taken,
    /// It is not there.
    Absent {
        /// In what way.
        reason: Absence,
    },
    /// libblkid found no file system on it.
    NoFileSystem,
    /// libblkid could not read it, or its file systems are ambiguous.
    NotProbeable {
        /// The error with its causes.
        error: String,
    },
    /// Mounting it read-only failed.
    NotMountable {
        /// The error with its causes.
        error: String,
    },
    /// It has no `mfv.toml`.
    NoConfigFile,
    /// `mfv.toml` is there but could not be read (not a regular file, a symbolic link, an I/O
    /// error).
    Unreadable {
        /// The error with its causes.
        error: String,
    },
    /// `mfv.toml` is larger than the limit.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// `mfv.toml` is not a valid configuration.
    Invalid {
        /// Every problem in it.
        #[serde(serialize_with = "report::config_errors")]
        errors: ConfigErrors,
    },
    /// `mfv.toml` does not match its generation header (a torn write, or the body was edited
    /// but the header kept), and there is no `mfv.toml.prev`.
    Corrupt {
        /// What the header check found, e.g. `corrupt: 30 bytes where the generation header
        /// says 42 (torn write)`.
        error: String,
    },
    /// `mfv.toml` is unusable and its last-known-good generation, `mfv.toml.prev`, is the
    /// configuration.
    TakenLastKnownGood {
        /// The generation number of `mfv.toml.prev`; `None` when it has no header.
        generation: Option<u64>,
        /// Why `mfv.toml` was skipped.
        skipped: FileProblem,
    },
    /// `mfv.toml.prev` exists, and neither it nor `mfv.toml` is usable.
    Unusable {
        /// Why `mfv.toml` is unusable.
        current: FileProblem,
        /// Why `mfv.toml.prev` is unusable.
        previous: FileProblem,
    },
    /// The same device was tried earlier in this pass.
    AlreadyTried,
}

/// Why one of the two configuration files of a volume, `mfv.toml` or its last-known-good
/// generation `mfv.toml.prev`, cannot be used. Serializes as an object whose `problem` is the
/// variant name in snake_case, with the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum FileProblem {
    /// There is no such file.
    Missing,
    /// It is not a regular file, a symbolic link, or reading it failed.
    Unreadable {
        /// The reason, naming the file.
        error: String,
    },
    /// It is larger than the limit.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// It does not match its generation header (see [`header`]).
    Corrupt {
        /// What the header check found, starting with `corrupt: `.
        error: String,
    },
    /// It is not a valid configuration.
    Invalid {
        /// Every problem in it.
        #[serde(serialize_with = "report::config_errors")]
        errors: ConfigErrors,
    },
}

/// One line of the provenance report: a candidate and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateReport {
    /// How the candidate was chosen (a device path, `LABEL=...`, ...).
    #[serde(serialize_with = "report::locator")]
    pub locator: ConfigLocator,
    /// The device node tried; `None` when a search found no volume.
    pub device: Option<PathBuf>,
    /// The file system type libblkid found.
    pub fs_type: Option<String>,
    /// What became of it.
    pub verdict: Verdict,
    /// Set when the volume could not be unmounted afterwards (the verdict stands).
    pub unmount_error: Option<String>,
}

/// The outcome of discovery with its provenance: every candidate tried, in order. `Display`
/// renders it for the console (see [the module documentation](self#console-rendering)); it serializes to JSON
/// with these field names (`elapsed` as `elapsed_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryReport {
    /// What was found.
    pub outcome: Discovery,
    /// The `mfv.config=` locator; `None` for the default order.
    #[serde(serialize_with = "report::optional_locator")]
    pub requested: Option<ConfigLocator>,
    /// Every candidate of the last pass, in the order tried.
    pub candidates: Vec<CandidateReport>,
    /// Devices the last scan could not read (only when a label, UUID or partition name was
    /// searched for).
    pub scan_issues: Vec<ScanIssue>,
    /// How many passes were made: 0 with `mfv.config=none`, more than 1 only while waiting.
    pub passes: u32,
    /// How long discovery took.
    #[serde(rename = "elapsed_ms", serialize_with = "report::millis")]
    pub elapsed: Duration,
    /// Set when discovery waited (more than one pass) because storage was still settling
    /// ([`DiscoveryParams::settle`]), without `mfv.config_wait=`.
    pub settling: Option<SettleWait>,
}

/// Why discovery waited without `mfv.config_wait=`: storage was still settling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettleWait {
    /// The last reason the [`SettleCheck`] gave.
    pub reason: String,
    /// Whether storage was still settling when [`DiscoveryParams::settle_limit`] ended the
    /// wait.
    pub timed_out: bool,
}

/// Runs discovery: see the [module documentation](self). Never fails as a whole: every
/// problem is a verdict in the report.
pub fn discover<M: Mounter + ?Sized>(params: &DiscoveryParams, mounter: &M) -> DiscoveryReport {
    let started = Instant::now();
    let order = match &params.locator {
        Some(ConfigLocator::Disabled) => {
            return DiscoveryReport {
                outcome: Discovery::NotFound,
                requested: params.locator.clone(),
                candidates: Vec::new(),
                scan_issues: Vec::new(),
                passes: 0,
                elapsed: started.elapsed(),
                settling: None,
            };
        }
        Some(locator) => vec![locator.clone()],
        None => default_order(),
    };
    let deadline = params.wait.and_then(|wait| started.checked_add(wait));
    // `mfv.config_wait=` alone decides when it is given.
    let settle = params.settle.as_ref().filter(|_| params.wait.is_none());
    let settle_deadline = started.checked_add(params.settle_limit);
    let mut settle_reason: Option<String> = None;
    let mut was_unsettled = false;
    let mut passes = 0;
    loop {
        passes += 1;
        // Asked before the pass: storage that is settled now is there for the pass to see.
        let unsettled = settle.and_then(SettleCheck::unsettled);
        let pass = run_pass(params, mounter, &order);
        let retry = matches!(pass.outcome, Discovery::NotFound)
            && pass
                .candidates
                .iter()
                .any(|candidate| matches!(candidate.verdict, Verdict::Absent { .. }));
        // One more pass after storage settled: a disk's partitions follow the disk.
        let wait_until = match deadline {
            Some(deadline) => Some(deadline),
            None if unsettled.is_some() || was_unsettled => settle_deadline,
            None => None,
        };
        was_unsettled = unsettled.is_some();
        let timed_out = retry && unsettled.is_some();
        if unsettled.is_some() {
            settle_reason = unsettled;
        }
        let now = Instant::now();
        match wait_until {
            Some(until) if retry && now < until => {
                std::thread::sleep(params.poll_interval.min(until - now));
            }
            _ => {
                return DiscoveryReport {
                    outcome: pass.outcome,
                    requested: params.locator.clone(),
                    candidates: pass.candidates,
                    scan_issues: pass.scan_issues,
                    passes,
                    elapsed: started.elapsed(),
                    settling: settle_reason
                        .filter(|_| passes > 1)
                        .map(|reason| SettleWait { reason, timed_out }),
                };
            }
        }
    }
}

/// One pass over the candidates.
struct Pass {
    outcome: Discovery,
    candidates: Vec<CandidateReport>,
    scan_issues: Vec<ScanIssue>,
}

fn run_pass<M: Mounter + ?Sized>(
    params: &DiscoveryParams,
    mounter: &M,
    order: &[ConfigLocator],
) -> Pass {
    let mut candidates = Vec::new();
    let mut scan: Option<VolumeScan> = None;
    let mut tried: Vec<PathBuf> = Vec::new();
    let mut first_invalid = None;
    for locator in order {
        let targets: Vec<(PathBuf, Option<Signature>)> = match locator {
            ConfigLocator::Device(path) => vec![(params.device_path(path), None)],
            ConfigLocator::Label(_) | ConfigLocator::Uuid(_) | ConfigLocator::PartLabel(_) => {
                let scan =
                    scan.get_or_insert_with(|| scan_volumes(&params.sysfs_root, &params.dev_root));
                scan.volumes
                    .iter()
                    .filter(|volume| volume_matches(locator, volume))
                    .map(|volume| (volume.device.clone(), Some(volume.signature.clone())))
                    .collect()
            }
            ConfigLocator::Disabled => continue,
        };
        if targets.is_empty() {
            candidates.push(CandidateReport {
                locator: locator.clone(),
                device: None,
                fs_type: None,
                verdict: Verdict::Absent {
                    reason: Absence::NoMatchingVolume,
                },
                unmount_error: None,
            });
        }
        for (device, signature) in targets {
            let key = fs::canonicalize(&device).unwrap_or_else(|_| device.clone());
            if tried.contains(&key) {
                candidates.push(CandidateReport {
                    locator: locator.clone(),
                    device: Some(device),
                    fs_type: signature.and_then(|signature| signature.fs_type),
                    verdict: Verdict::AlreadyTried,
                    unmount_error: None,
                });
                continue;
            }
            let (report, found) = examine(params, mounter, locator, &device, signature);
            if !matches!(report.verdict, Verdict::Absent { .. }) {
                tried.push(key);
            }
            candidates.push(report);
            match found {
                Some((source, Ok(config))) => {
                    return Pass {
                        outcome: Discovery::Found { config, source },
                        candidates,
                        scan_issues: scan.map(|scan| scan.issues).unwrap_or_default(),
                    };
                }
                Some((source, Err(errors))) => {
                    first_invalid.get_or_insert(Discovery::Invalid { source, errors });
                }
                None => {}
            }
        }
    }
    Pass {
        outcome: first_invalid.unwrap_or(Discovery::NotFound),
        candidates,
        scan_issues: scan.map(|scan| scan.issues).unwrap_or_default(),
    }
}

/// Whether a scanned volume is what a search locator asks for.
fn volume_matches(locator: &ConfigLocator, volume: &Volume) -> bool {
    match locator {
        ConfigLocator::Label(label) => label_matches(&volume.signature, label),
        ConfigLocator::Uuid(uuid) => uuid_matches(&volume.signature, uuid),
        ConfigLocator::PartLabel(name) => volume.part_label.as_deref() == Some(name.as_str()),
        ConfigLocator::Device(_) | ConfigLocator::Disabled => false,
    }
}

/// A configuration read from a candidate, valid or not.
type Finding = (ConfigSource, Result<Box<Config>, ConfigErrors>);

/// Tries one device: present, file system, mount, read, unmount, validate.
fn examine<M: Mounter + ?Sized>(
    params: &DiscoveryParams,
    mounter: &M,
    locator: &ConfigLocator,
    device: &Path,
    known: Option<Signature>,
) -> (CandidateReport, Option<Finding>) {
    let mut report = CandidateReport {
        locator: locator.clone(),
        device: Some(device.to_owned()),
        fs_type: None,
        verdict: Verdict::Taken,
        unmount_error: None,
    };
    let skipped = |mut report: CandidateReport, verdict| {
        report.verdict = verdict;
        (report, None)
    };
    match fs::metadata(device) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return skipped(
                report,
                Verdict::Absent {
                    reason: Absence::NoDeviceNode,
                },
            );
        }
        Err(error) => {
            let error = format!("cannot read {}: {error}", device.display());
            return skipped(report, Verdict::NotProbeable { error });
        }
        Ok(metadata)
            if metadata.file_type().is_block_device()
                && medium::has_no_medium(&params.sysfs_root, device, metadata.rdev()) =>
        {
            return skipped(
                report,
                Verdict::Absent {
                    reason: Absence::NoMedium,
                },
            );
        }
        Ok(_) => {}
    }
    let signature = match known {
        Some(signature) => signature,
        None => match probe_signature(device) {
            Ok(signature) => signature,
            Err(error) => {
                let error = mfv_linux::error_chain(&error);
                return skipped(report, Verdict::NotProbeable { error });
            }
        },
    };
    report.fs_type = signature.fs_type.clone();
    let Some(fs_type) = signature.fs_type.clone() else {
        return skipped(report, Verdict::NoFileSystem);
    };
    let mount = match ReadOnlyMount::new(mounter, device, &fs_type, Journal::Skip, &params.run_dir)
    {
        Ok(mount) => mount,
        Err(error) => {
            let error = mfv_linux::error_chain(&error);
            return skipped(report, Verdict::NotMountable { error });
        }
    };
    // The store's rule: the current generation, or the last-known-good one when the current
    // one is unusable; `mfv.toml.prev` is read only then.
    let limit = params.max_config_bytes;
    let selected = select_generation(
        read_generation(mount.path(), CURRENT_FILE_NAME, limit),
        || read_generation(mount.path(), PREVIOUS_FILE_NAME, limit),
        |problem| *problem == FileProblem::Missing,
    );
    if let Err(error) = mount.unmount() {
        report.unmount_error = Some(mfv_linux::error_chain(&error));
    }
    let (verdict, parsed) = match selected {
        Selected::Current(generation) => (Verdict::Taken, Ok(generation.config)),
        Selected::LastKnownGood { used, skipped } => (
            Verdict::TakenLastKnownGood {
                generation: used.generation,
                skipped,
            },
            Ok(used.config),
        ),
        Selected::NeverSaved => return skipped(report, Verdict::NoConfigFile),
        Selected::NoUsable {
            current,
            previous: FileProblem::Missing,
        } => match current {
            FileProblem::Invalid { errors } => (
                Verdict::Invalid {
                    errors: errors.clone(),
                },
                Err(errors),
            ),
            FileProblem::Missing => return skipped(report, Verdict::NoConfigFile),
            FileProblem::Unreadable { error } => {
                return skipped(report, Verdict::Unreadable { error });
            }
            FileProblem::TooLarge { size, limit } => {
                return skipped(report, Verdict::TooLarge { size, limit });
            }
            FileProblem::Corrupt { error } => return skipped(report, Verdict::Corrupt { error }),
        },
        Selected::NoUsable { current, previous } => {
            let errors = match &current {
                FileProblem::Invalid { errors } => Some(errors.clone()),
                _ => None,
            };
            let verdict = Verdict::Unusable { current, previous };
            match errors {
                // The outcome is "invalid" only for errors of `mfv.toml` itself.
                Some(errors) => (verdict, Err(errors)),
                None => return skipped(report, verdict),
            }
        }
    };
    report.verdict = verdict;
    let source = ConfigSource {
        device: device.to_owned(),
        fs_type,
        label: signature.label,
        uuid: signature.uuid,
        locator: locator.clone(),
    };
    (report, Some((source, parsed)))
}

/// A usable configuration file.
struct Generation {
    config: Box<Config>,
    /// From its header; `None` for a file without one (written by hand).
    generation: Option<u64>,
}

/// Reads `dir/name` (a regular file, at most `limit` bytes), checks it against its generation
/// header with the store's own check, and validates it. The whole file is parsed, header line
/// (a TOML comment) included, so error positions are those an editor shows.
fn read_generation(dir: &Path, name: &str, limit: u64) -> Result<Generation, FileProblem> {
    let bytes = read_limited(dir, name, limit).map_err(|error| match error {
        ReadError::Missing { .. } => FileProblem::Missing,
        ReadError::TooLarge { size, limit, .. } => FileProblem::TooLarge { size, limit },
        error => FileProblem::Unreadable {
            error: unreadable_message(name, &error),
        },
    })?;
    let (generation, _body) = header::verify(&bytes).map_err(|problem| FileProblem::Corrupt {
        error: problem.to_string(),
    })?;
    let config = parse_config_bytes(&bytes).map_err(|errors| FileProblem::Invalid { errors })?;
    Ok(Generation {
        config: Box::new(config),
        generation,
    })
}

/// The reason the file `name` could not be read, naming it by its name on the volume (the
/// report line names the device) rather than by the private mount point.
fn unreadable_message(name: &str, error: &ReadError) -> String {
    match error {
        ReadError::NotRegular {
            kind: FileKind::Symlink,
            ..
        } => format!("{name} is a symbolic link"),
        ReadError::NotRegular { .. } => format!("{name} is not a regular file"),
        ReadError::Io { source, .. } => format!("cannot read {name}: {source}"),
        ReadError::Missing { .. } | ReadError::TooLarge { .. } => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
