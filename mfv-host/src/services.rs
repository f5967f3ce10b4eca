//! The supervised services as PID 1 publishes them in its runtime directory (`/run/mfv`), for
//! the host daemon to answer `host_status`, `service_status` and `logs` with: one JSON file
//! with every service's status, and one log per service of its output lines.
//!
//! PID 1 writes, the daemon reads: they are different processes (a bug in the daemon must
//! never take PID 1 down), and files in the runtime directory are the narrowest thing both
//! can see. The status file is replaced atomically, so a reader sees the old or the new
//! state, never half of one. A host runs from RAM, so a log never grows without bound: when
//! it reaches [`LOG_FILE_BYTES`] it becomes `NAME.log.1` (replacing the one before) and a new
//! file starts; a reader reads both, oldest first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use mfv_api::{LogLine, LogSource, ServiceStatus};
use mfv_linux::regular_file::{ReadError, read_limited};
use mfv_linux::terminal_text::escape_line;

/// The status file, below the runtime directory.
pub const STATUS_FILE: &str = "services.json";
/// The directory of the logs, below the runtime directory.
pub const LOG_DIR: &str = "log";
/// How large one log file grows before it is rotated; a service keeps at most twice this.
pub const LOG_FILE_BYTES: u64 = 256 * 1024;
/// The largest status file read: a few services take a few kilobytes.
const MAX_STATUS_BYTES: u64 = 1024 * 1024;
/// The name of the boot log (mfv-init's own console lines) in [`LOG_DIR`].
pub const BOOT_LOG: &str = "boot";

/// Why a status or a log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The status file is not a regular file of a sane size, or cannot be read.
    #[error(transparent)]
    StatusFile(ReadError),
    /// The status file holds something else than a list of service statuses.
    #[error("{} is not a service status list: {source}", path.display())]
    Status {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The statuses could not be turned into JSON.
    #[error("cannot encode the service statuses: {0}")]
    Encode(#[source] serde_json::Error),
    /// A service name that cannot be a file name.
    #[error("{name:?} is not a service name (letters, digits, '-' and '_' only)")]
    Name {
        /// The name as given.
        name: String,
    },
}

/// The status file's content for `services`.
pub fn status_json(services: &[ServiceStatus]) -> Result<String, ServicesError> {
    let mut text = serde_json::to_string_pretty(services).map_err(ServicesError::Encode)?;
    text.push('\n');
    Ok(text)
}

/// Replaces the status file in `run_dir` with `services`.
pub fn write_status(run_dir: &Path, services: &[ServiceStatus]) -> Result<(), ServicesError> {
    publish(run_dir, STATUS_FILE, &status_json(services)?)
}

/// Replaces `file` in `run_dir` with `text` at once (readers see the old or the new file,
/// never a part), world-readable: how PID 1 publishes what the host daemon reads.
pub(crate) fn publish(run_dir: &Path, file: &str, text: &str) -> Result<(), ServicesError> {
    let path = run_dir.join(file);
    fs::create_dir_all(run_dir)
        .and_then(|()| {
            mfv_linux::atomic_file::replace_file(&path, text.as_bytes(), 0o644)
                .map_err(io::Error::other)
        })
        .map_err(|source| ServicesError::Write { path, source })
}

/// The statuses in the status file of `run_dir`; empty when PID 1 has not written one (it
/// starts no service, as with `mfv.halt`).
pub fn read_status(run_dir: &Path) -> Result<Vec<ServiceStatus>, ServicesError> {
    let path = run_dir.join(STATUS_FILE);
    let text = match read_limited(run_dir, STATUS_FILE, MAX_STATUS_BYTES) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(ServicesError::StatusFile(error)),
    };
    serde_json::from_slice(&text).map_err(|source| ServicesError::Status { path, source })
}

/// Whether `name` can be a service's name: letters, digits, `-` and `_`, at most 64 bytes, so
/// it is a file name in [`LOG_DIR`] and nothing that could leave it.
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn check_name(name: &str) -> Result<(), ServicesError> {
    if is_service_name(name) {
        Ok(())
    } else {
        Err(ServicesError::Name {
            name: name.to_owned(),
        })
    }
}

/// The log file of `name` in `run_dir`, and the one it rotates to.
fn log_paths(run_dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dir = run_dir.join(LOG_DIR);
    (
        dir.join(format!("{name}.log")),
        dir.join(format!("{name}.log.1")),
    )
}

/// The log of one service (or of the boot), open for appending lines.
#[derive(Debug)]
pub struct ServiceLog {
    path: PathBuf,
    rotated: PathBuf,
    file: File,
    bytes: u64,
    limit: u64,
}

impl ServiceLog {
    /// Opens (creating) the log of `name` in `run_dir`, rotated at [`LOG_FILE_BYTES`].
    pub fn open(run_dir: &Path, name: &str) -> Result<ServiceLog, ServicesError> {
        ServiceLog::with_limit(run_dir, name, LOG_FILE_BYTES)
    }

    /// Opens the log of `name`, rotated when a file reaches `limit` bytes.
    pub fn with_limit(run_dir: &Path, name: &str, limit: u64) -> Result<ServiceLog, ServicesError> {
        check_name(name)?;
        let (path, rotated) = log_paths(run_dir, name);
        let file = open_append(&path)?;
        let bytes = file
            .metadata()
            .map_err(|source| ServicesError::Write {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(ServiceLog {
            path,
            rotated,
            file,
            bytes,
            limit,
        })
    }

    /// Appends `text` (control characters escaped, so one line stays one line) stamped with
    /// `timestamp_us`, rotating first when the file is full.
    pub fn append(&mut self, timestamp_us: u64, text: &str) -> Result<(), ServicesError> {
        let line = format!("{timestamp_us} {}\n", escape_line(text));
        if self.bytes > 0 && self.bytes + line.len() as u64 > self.limit {
            fs::rename(&self.path, &self.rotated).map_err(|source| ServicesError::Write {
                path: self.rotated.clone(),
                source,
            })?;
            self.file = open_append(&self.path)?;
            self.bytes = 0;
        }
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| ServicesError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.bytes += line.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, ServicesError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| ServicesError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ServicesError::Write {
            path: path.to_owned(),
            source,
        })
}

/// The last `max` lines of the log of `source` in `run_dir`, oldest first; empty when there
/// is no log yet. Lines not in the `TIMESTAMP TEXT` form (none are written so) are skipped.
pub fn recent_lines(
    run_dir: &Path,
    source: &LogSource,
    max: usize,
) -> Result<Vec<LogLine>, ServicesError> {
    let name = match source {
        LogSource::Boot => BOOT_LOG,
        LogSource::Service { name } => name.as_str(),
        _ => return Ok(Vec::new()),
    };
    check_name(name)?;
    let (path, rotated) = log_paths(run_dir, name);
    let mut lines = read_lines(&rotated)?;
    lines.extend(read_lines(&path)?);
    let skip = lines.len().saturating_sub(max);
    Ok(lines
        .into_iter()
        .skip(skip)
        .filter_map(|line| {
            let (stamp, text) = line.split_once(' ')?;
            Some(LogLine::new(stamp.parse().ok()?, source.clone(), text))
        })
        .collect())
}

fn read_lines(path: &Path) -> Result<Vec<String>, ServicesError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ServicesError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| ServicesError::Read {
            path: path.to_owned(),
            source,
        })?;
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_api::{ExitStatus, ServiceState};

    fn service(name: &str) -> LogSource {
        LogSource::Service {
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_status_file_round_trips_and_is_empty_before_pid1_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_status(dir.path()).unwrap().is_empty());
        let mut libvirtd = ServiceStatus::new("libvirtd", ServiceState::Running);
        libvirtd.pid = Some(310);
        libvirtd.restarts = 2;
        libvirtd.last_exit = Some(ExitStatus::Killed { signal: 9 });
        let statuses = vec![
            ServiceStatus::new("virtlogd", ServiceState::Starting),
            libvirtd,
        ];
        write_status(dir.path(), &statuses).unwrap();
        assert_eq!(read_status(dir.path()).unwrap(), statuses);
    }

    #[test]
    fn a_damaged_status_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATUS_FILE), "{\"not\": \"a list\"}").unwrap();
        let error = read_status(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("services.json is not a service status list"),
            "{error}"
        );
    }

    #[test]
    fn lines_are_escaped_stamped_and_read_back_newest_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ServiceLog::open(dir.path(), "libvirtd").unwrap();
        log.append(1_000, "starting").unwrap();
        log.append(2_000, "evil\u{1b}[2Jline\rsecond").unwrap();
        log.append(3_000, "ready").unwrap();
        let lines = recent_lines(dir.path(), &service("libvirtd"), 2).unwrap();
        let texts: Vec<_> = lines.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(texts, ["evil\\u001b[2Jline\\u000dsecond", "ready"]);
        assert_eq!(lines[1].timestamp_us, 3_000);
        assert_eq!(lines[1].source, service("libvirtd"));
        assert!(
            recent_lines(dir.path(), &service("mfv-web"), 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_full_log_rotates_and_both_files_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ServiceLog::with_limit(dir.path(), "virtlogd", 40).unwrap();
        for number in 0..10u64 {
            log.append(number, &format!("line {number}")).unwrap();
        }
        let (current, rotated) = log_paths(dir.path(), "virtlogd");
        assert!(fs::metadata(&current).unwrap().len() <= 40);
        assert!(fs::metadata(&rotated).unwrap().len() <= 40);
        let lines = recent_lines(dir.path(), &service("virtlogd"), 100).unwrap();
        let stamps: Vec<u64> = lines.iter().map(|line| line.timestamp_us).collect();
        assert!(
            stamps.windows(2).all(|pair| pair[0] < pair[1]),
            "{stamps:?}"
        );
        assert_eq!(stamps.last(), Some(&9));
        // Reopening continues the same file and its size count.
        let mut log = ServiceLog::with_limit(dir.path(), "virtlogd", 40).unwrap();
        log.append(10, "line 10").unwrap();
        assert!(fs::metadata(&current).unwrap().len() <= 40);
    }

    #[test]
    fn names_that_could_leave_the_log_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["../passwd", "", "a/b", "x y"] {
            let error = ServiceLog::open(dir.path(), name).unwrap_err().to_string();
            assert!(error.contains("is not a service name"), "{error}");
            assert!(recent_lines(dir.path(), &service(name), 5).is_err());
        }
    }
}
