//! How the host daemon hands a network change to PID 1, which owns the network
//! ([`super::live`]), and gets the answer: files in `/run/mfv/network/`, written whole by
//! rename, and SIGHUP, the signal that already tells PID 1 that the daemon left it restart
//! requests.
//!
//! The daemon serves one network request at a time: it removes a stale answer, writes
//! `request.json` (a [`NetworkRequest`] with an id of its own), signals PID 1 and waits, at
//! most [`ANSWER_WAIT`], for `answer.json` carrying that id. PID 1 takes the request away as
//! it reads it ([`take_request`]), checks it as it checks every file (regular file, size
//! cap, version, ranges) because a daemon with a bug must not be able to make PID 1 do
//! anything else, carries it out ([`NetworkOwner::serve`]) and writes the answer. It also keeps
//! `pending.json` up to date with the change waiting for its confirmation, so that the
//! daemon refuses a second change without asking, and `in-effect.toml` with the `[network]`
//! section of the network in effect, which first-boot setup writes into the configuration it
//! saves (empty when the network came from `mfv.net=`). Files rather than a socket: PID 1 serves no
//! connection and never blocks on the daemon, which may crash and be restarted at any time;
//! a request left behind by a dead daemon is answered into a file nobody reads, and replaced.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfv_api::{ApiError, ErrorKind, MAX_CONFIRM_SECS, NetworkOutcome, Reply};
use mfv_config::schema::{MAX_CONFIG_SIZE, NetworkConfig, parse_network_section};
use mfv_linux::regular_file::{ReadError, read_limited};
use serde::{Deserialize, Serialize};

use super::Network;
use super::live::{ChangeError, LiveNetwork, PendingChange};
use super::plan::NetworkSteps;
use crate::daemon::invalid_config;

/// The directory of the network hand-over, below the runtime directory.
pub const NETWORK_DIR: &str = "network";
/// How long the daemon waits for PID 1's answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// The version of the files' format; a file of another version is refused.
pub const HANDOVER_VERSION: u32 = 1;

const REQUEST_FILE: &str = "request.json";
const ANSWER_FILE: &str = "answer.json";
const PENDING_FILE: &str = "pending.json";
const IN_EFFECT_FILE: &str = "in-effect.toml";
/// The largest file read: a network section (at most a configuration's size) and its
/// envelope, escaped.
const MAX_FILE_BYTES: u64 = 3 * MAX_CONFIG_SIZE as u64;
/// The longest request id.
const MAX_REQUEST_ID: usize = 64;
/// How often the daemon looks for the answer.
const ANSWER_POLL: Duration = Duration::from_millis(20);

/// A network request from the daemon to PID 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRequest {
    /// [`HANDOVER_VERSION`].
    pub version: u32,
    /// Names the request in the answer: ASCII letters, digits and `-`, at most 64.
    pub request_id: String,
    /// What to do.
    pub action: NetworkAction,
}

/// What the daemon asks of PID 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NetworkAction {
    /// Apply a `[network]` section provisionally.
    Apply {
        /// The section's TOML text.
        network_toml: String,
        /// Seconds to wait for the confirmation, 1 to [`MAX_CONFIRM_SECS`].
        confirm_within_secs: u32,
    },
    /// Keep a provisionally applied change.
    Confirm {
        /// The change's id.
        apply_id: u64,
    },
}

impl NetworkRequest {
    /// A request for `action` with an id no other request of this boot has: this process's
    /// id, the time and `sequence`.
    pub fn new(action: NetworkAction, sequence: u64) -> NetworkRequest {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        NetworkRequest {
            version: HANDOVER_VERSION,
            request_id: format!("{}-{nanos}-{sequence}", std::process::id()),
            action,
        }
    }

    /// Refuses what PID 1 must not act on: an odd id, values out of range.
    fn check(&self) -> Result<(), String> {
        let id_ok = !self.request_id.is_empty()
            && self.request_id.len() <= MAX_REQUEST_ID
            && self
                .request_id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
        if !id_ok {
            return Err(format!("the request id {:?} is not one", self.request_id));
        }
        match &self.action {
            NetworkAction::Apply {
                network_toml,
                confirm_within_secs,
            } => {
                if !(1..=MAX_CONFIRM_SECS).contains(confirm_within_secs) {
                    return Err(format!(
                        "confirm_within_secs must be from 1 to {MAX_CONFIRM_SECS}, got \
                         {confirm_within_secs}"
                    ));
                }
                if network_toml.len() > MAX_CONFIG_SIZE {
                    return Err(format!(
                        "the network section is {} bytes, more than {MAX_CONFIG_SIZE}",
                        network_toml.len()
                    ));
                }
                Ok(())
            }
            NetworkAction::Confirm { .. } => Ok(()),
        }
    }
}

/// PID 1's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAnswer {
    /// [`HANDOVER_VERSION`].
    pub version: u32,
    /// The request's id; `None` when the request could not be read (its id is unknown).
    pub request_id: Option<String>,
    /// The outcome, or why there is none.
    pub reply: Reply<NetworkOutcome>,
}

/// What PID 1 publishes about the change waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile {
    version: u32,
    pending: Option<PendingChange>,
}

/// The hand-over failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// A file could not be written or removed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read (missing, not a regular file, too large, unreadable).
    #[error(transparent)]
    Read(ReadError),
    /// A file is not what it should be.
    #[error("{} is not a valid network hand-over file: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// PID 1 did not answer in time.
    #[error("PID 1 did not answer the network request within {} s", waited.as_secs())]
    NoAnswer {
        /// How long the daemon waited.
        waited: Duration,
    },
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join(NETWORK_DIR)
}

/// Where PID 1 writes its answer.
pub fn answer_path(run_dir: &Path) -> PathBuf {
    dir(run_dir).join(ANSWER_FILE)
}

/// Where PID 1 publishes the `[network]` section in effect.
pub fn in_effect_path(run_dir: &Path) -> PathBuf {
    dir(run_dir).join(IN_EFFECT_FILE)
}

/// The `[network]` section of the network in effect, as PID 1 published it in `run_dir`;
/// `None` when the network did not come from one, or before PID 1 published it.
pub fn read_in_effect(run_dir: &Path) -> Result<Option<String>, HandoverError> {
    let dir = dir(run_dir);
    match read_limited(&dir, IN_EFFECT_FILE, MAX_FILE_BYTES) {
        Ok(bytes) if bytes.is_empty() => Ok(None),
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|error| HandoverError::Invalid {
                path: dir.join(IN_EFFECT_FILE),
                problem: error.to_string(),
            }),
        Err(ReadError::Missing { .. }) => Ok(None),
        Err(error) => Err(HandoverError::Read(error)),
    }
}

/// Where PID 1 publishes the pending change.
pub fn pending_path(run_dir: &Path) -> PathBuf {
    dir(run_dir).join(PENDING_FILE)
}

/// The answer file's content.
fn answer_json(answer: &NetworkAnswer) -> String {
    // A reply of strings and numbers always serializes.
    serde_json::to_string(answer).unwrap_or_default()
}

/// The pending file's content for `pending`.
fn pending_json(pending: Option<&PendingChange>) -> String {
    let file = PendingFile {
        version: HANDOVER_VERSION,
        pending: pending.cloned(),
    };
    // Numbers only: it always serializes.
    serde_json::to_string(&file).unwrap_or_default()
}

/// The daemon's side: removes a stale answer and leaves `request` for PID 1.
pub fn leave_request(run_dir: &Path, request: &NetworkRequest) -> Result<(), HandoverError> {
    let dir = dir(run_dir);
    let write_error = |path: PathBuf| move |source| HandoverError::Write { path, source };
    std::fs::create_dir_all(&dir).map_err(write_error(dir.clone()))?;
    remove_if_present(&dir.join(ANSWER_FILE))?;
    let path = dir.join(REQUEST_FILE);
    // Plain data: it always serializes.
    let text = serde_json::to_string(request).unwrap_or_default();
    mfv_linux::atomic_file::replace_file(&path, text.as_bytes(), 0o600)
        .map_err(std::io::Error::other)
        .map_err(write_error(path))
}

/// The daemon's side: waits at most `wait` for the answer to `request_id`; an answer to
/// another request (one whose daemon gave up) is removed and waited past, and the request is
/// taken back when no answer comes.
pub fn wait_for_answer(
    run_dir: &Path,
    request_id: &str,
    wait: Duration,
) -> Result<Reply<NetworkOutcome>, HandoverError> {
    let dir = dir(run_dir);
    let started = Instant::now();
    loop {
        match read_limited(&dir, ANSWER_FILE, MAX_FILE_BYTES) {
            Ok(bytes) => {
                remove_if_present(&dir.join(ANSWER_FILE))?;
                let answer: NetworkAnswer =
                    decode(&bytes, &dir.join(ANSWER_FILE), |answer: &NetworkAnswer| {
                        answer.version
                    })?;
                match answer.request_id.as_deref() {
                    Some(id) if id != request_id => {}
                    _ => return Ok(answer.reply),
                }
            }
            Err(ReadError::Missing { .. }) => {}
            Err(error) => return Err(HandoverError::Read(error)),
        }
        if started.elapsed() >= wait {
            remove_if_present(&dir.join(REQUEST_FILE))?;
            return Err(HandoverError::NoAnswer { waited: wait });
        }
        std::thread::sleep(ANSWER_POLL);
    }
}

/// The daemon's side: the change PID 1 says waits for its confirmation.
pub fn read_pending(run_dir: &Path) -> Result<Option<PendingChange>, HandoverError> {
    let dir = dir(run_dir);
    match read_limited(&dir, PENDING_FILE, MAX_FILE_BYTES) {
        Ok(bytes) => decode(&bytes, &dir.join(PENDING_FILE), |file: &PendingFile| {
            file.version
        })
        .map(|file| file.pending),
        Err(ReadError::Missing { .. }) => Ok(None),
        Err(error) => Err(HandoverError::Read(error)),
    }
}

/// PID 1's side: the request the daemon left, taken away (also when it cannot be used, so
/// that it is not read again); `None` when there is none.
pub fn take_request(run_dir: &Path) -> Option<Result<NetworkRequest, HandoverError>> {
    let dir = dir(run_dir);
    let path = dir.join(REQUEST_FILE);
    let read = read_limited(&dir, REQUEST_FILE, MAX_FILE_BYTES);
    if let Err(ReadError::Missing { .. }) = read {
        return None;
    }
    let removed = remove_if_present(&path);
    let request = read
        .map_err(HandoverError::Read)
        .and_then(|bytes| decode(&bytes, &path, |request: &NetworkRequest| request.version))
        .and_then(|request: NetworkRequest| {
            request
                .check()
                .map(|()| request)
                .map_err(|problem| HandoverError::Invalid {
                    path: path.clone(),
                    problem,
                })
        });
    Some(removed.and(request))
}

/// A file PID 1 writes for the daemon: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverFile {
    /// The file, below the runtime directory.
    pub path: PathBuf,
    /// Its whole content.
    pub contents: String,
}

/// PID 1's side of the hand-over: its [`LiveNetwork`], the requests the daemon leaves, and
/// the files PID 1 writes back. It reads no file itself: PID 1 takes the request
/// ([`take_request`]) and writes the files it returns, in their order (the pending change
/// first, then the answer the daemon waits for), through its own system access.
#[derive(Debug, Clone)]
pub struct NetworkOwner {
    live: LiveNetwork,
}

impl NetworkOwner {
    /// PID 1 owns `live`.
    pub fn new(live: LiveNetwork) -> NetworkOwner {
        NetworkOwner { live }
    }

    /// When the pending change is rolled back unless confirmed, on PID 1's clock.
    pub fn deadline(&self) -> Option<Duration> {
        self.live.deadline()
    }

    /// The change waiting for its confirmation, if any.
    pub fn pending(&self) -> Option<&PendingChange> {
        self.live.pending()
    }

    /// The network in effect: the boot's, or the last change confirmed.
    pub fn in_effect(&self) -> &NetworkSteps {
        self.live.in_effect()
    }

    /// The files that say where the network stands, for PID 1 to write after the boot set
    /// it up: the pending change (none) and the network in effect.
    pub fn state_files(&self, run_dir: &Path) -> Vec<HandoverFile> {
        vec![self.pending_file(run_dir), self.in_effect_file(run_dir)]
    }

    /// Carries out the request taken from `run_dir` at `now` (or answers why it could not
    /// be read) and returns the files to write: the pending change, then the answer.
    pub fn serve(
        &mut self,
        run_dir: &Path,
        taken: Result<NetworkRequest, HandoverError>,
        network: &mut dyn Network,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) -> Vec<HandoverFile> {
        let answer = match taken {
            Ok(request) => answer_request(&mut self.live, network, request, now, log),
            Err(error) => {
                log(format!(
                    "net: a network request was refused: {}",
                    mfv_linux::error_chain(&error)
                ));
                unreadable_request(&error)
            }
        };
        vec![
            self.pending_file(run_dir),
            self.in_effect_file(run_dir),
            HandoverFile {
                path: answer_path(run_dir),
                contents: answer_json(&answer),
            },
        ]
    }

    /// How many changes were kept (confirmed) since the boot: PID 1 learns from it that a
    /// request it served gave the host its network.
    pub fn kept_changes(&self) -> u64 {
        self.live.kept_changes()
    }

    /// Applies `section` at `now` and keeps it at once, for a change PID 1 decides itself
    /// (the setup's DHCP fallback): nobody else is there to confirm it. Returns the pending
    /// file to write, and `Err` with the reason when the change was refused or rolled back.
    pub fn keep(
        &mut self,
        run_dir: &Path,
        section: &NetworkConfig,
        network: &mut dyn Network,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) -> (Vec<HandoverFile>, Result<(), String>) {
        let outcome = self
            .live
            .apply(network, section, MAX_CONFIRM_SECS, now, log)
            .and_then(|outcome| match outcome {
                NetworkOutcome::Applied { apply_id, .. } => {
                    self.live.confirm(network, apply_id, now, log)
                }
                other => Ok(other),
            });
        let kept = match outcome {
            Ok(NetworkOutcome::Confirmed) => Ok(()),
            Ok(NetworkOutcome::RolledBack { reason }) => Err(reason),
            Ok(other) => Err(format!("the change was not kept: {other:?}")),
            Err(error) => Err(error.to_string()),
        };
        (self.state_files(run_dir), kept)
    }

    /// Rolls the pending change back when its deadline has passed at `now`; returns the
    /// pending file to write when it did.
    pub fn expire(
        &mut self,
        run_dir: &Path,
        network: &mut dyn Network,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) -> Option<HandoverFile> {
        let before = self.live.pending().is_some();
        self.live.expire(network, now, log);
        (before && self.live.pending().is_none()).then(|| self.pending_file(run_dir))
    }

    fn pending_file(&self, run_dir: &Path) -> HandoverFile {
        HandoverFile {
            path: pending_path(run_dir),
            contents: pending_json(self.live.pending()),
        }
    }

    /// The `[network]` section in effect, or an empty file when the network did not come
    /// from one (`mfv.net=`, or no network).
    fn in_effect_file(&self, run_dir: &Path) -> HandoverFile {
        HandoverFile {
            path: in_effect_path(run_dir),
            contents: self
                .live
                .in_effect_section()
                .map(super::section_toml)
                .unwrap_or_default(),
        }
    }
}

/// Carries `request` out on `live` at `now` and says how it went.
fn answer_request(
    live: &mut LiveNetwork,
    network: &mut dyn Network,
    request: NetworkRequest,
    now: Duration,
    log: &mut dyn FnMut(String),
) -> NetworkAnswer {
    let outcome = match request.action {
        NetworkAction::Apply {
            network_toml,
            confirm_within_secs,
        } => match parse_network_section(&network_toml) {
            Ok(section) => live
                .apply(network, &section, confirm_within_secs, now, log)
                .map_err(change_refused),
            Err(errors) => Err(invalid_config("the network section", &errors)),
        },
        NetworkAction::Confirm { apply_id } => live
            .confirm(network, apply_id, now, log)
            .map_err(change_refused),
    };
    NetworkAnswer {
        version: HANDOVER_VERSION,
        request_id: Some(request.request_id),
        reply: outcome.into(),
    }
}

/// PID 1's answer to a request it could not read.
fn unreadable_request(error: &HandoverError) -> NetworkAnswer {
    NetworkAnswer {
        version: HANDOVER_VERSION,
        request_id: None,
        reply: Reply::Error(ApiError::new(
            ErrorKind::Internal,
            format!(
                "PID 1 could not read the network request: {}",
                mfv_linux::error_chain(error)
            ),
        )),
    }
}

/// A refused change in the protocol's words.
pub fn change_refused(error: ChangeError) -> ApiError {
    match error {
        ChangeError::Pending(_) => ApiError::new(ErrorKind::Conflict, error.to_string()),
        ChangeError::Unknown { .. } => {
            ApiError::new(ErrorKind::NotFound, error.to_string()).with_field("apply_id")
        }
    }
}

/// Decodes a hand-over file at `path` of the current version.
fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    version: impl Fn(&T) -> u32,
) -> Result<T, HandoverError> {
    let invalid = |problem: String| HandoverError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let value: T = serde_json::from_slice(bytes).map_err(|error| invalid(error.to_string()))?;
    match version(&value) {
        HANDOVER_VERSION => Ok(value),
        other => Err(invalid(format!(
            "version {other} (this release reads version {HANDOVER_VERSION})"
        ))),
    }
}

fn remove_if_present(path: &Path) -> Result<(), HandoverError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(HandoverError::Write {
            path: path.to_owned(),
            source: error,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use mfv_config::schema::{InterfaceMode, NetworkConfig};

    use super::*;
    use crate::network::RecordingNetwork;
    use crate::network::plan::config_steps;
    use crate::network::plan::tests::entry;

    const SECOND: Duration = Duration::from_secs(1);
    const STATIC_ETH0: &str = "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
                               addresses = [\"192.0.2.10/24\"]\n";

    /// PID 1 with eth0 by DHCP, and its network.
    fn owner() -> (NetworkOwner, RecordingNetwork) {
        let mut boot = NetworkConfig::default();
        boot.interfaces.push(entry("eth0", InterfaceMode::Dhcp));
        let live = LiveNetwork::new(config_steps(&boot), "vmhost1");
        let network = RecordingNetwork {
            dhcp_running: vec!["eth0".into()],
            apply_changes: vec!["add 192.0.2.10/24 to eth0".into()],
            ..RecordingNetwork::default()
        };
        (NetworkOwner::new(live), network)
    }

    fn apply(secs: u32) -> NetworkRequest {
        NetworkRequest::new(
            NetworkAction::Apply {
                network_toml: STATIC_ETH0.to_owned(),
                confirm_within_secs: secs,
            },
            1,
        )
    }

    /// What PID 1 does on the signal: takes the request and writes the files it is given.
    fn pid1_serves(
        run_dir: &Path,
        owner: &mut NetworkOwner,
        network: &mut RecordingNetwork,
        now: Duration,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let taken = take_request(run_dir).expect("a request is waiting");
        for file in owner.serve(run_dir, taken, network, now, &mut |line| lines.push(line)) {
            write(&file);
        }
        lines
    }

    fn write(file: &HandoverFile) {
        std::fs::create_dir_all(file.path.parent().unwrap()).unwrap();
        std::fs::write(&file.path, &file.contents).unwrap();
    }

    fn request_path(run_dir: &Path) -> PathBuf {
        dir(run_dir).join(REQUEST_FILE)
    }

    #[test]
    fn a_request_is_left_taken_answered_and_the_answer_read_once() {
        let run = tempfile::tempdir().unwrap();
        let (mut owner, mut network) = owner();
        let request = apply(30);
        leave_request(run.path(), &request).unwrap();
        let lines = pid1_serves(run.path(), &mut owner, &mut network, 10 * SECOND);
        assert!(
            !request_path(run.path()).exists(),
            "the request is taken away"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("net: change 1 applied: confirm within 30 s")
        );
        // The pending change is published for the daemon.
        assert_eq!(
            read_pending(run.path()).unwrap(),
            Some(PendingChange {
                apply_id: 1,
                confirm_within_secs: 30
            })
        );
        let reply = wait_for_answer(run.path(), &request.request_id, SECOND).unwrap();
        assert_eq!(
            Result::from(reply),
            Ok(NetworkOutcome::Applied {
                apply_id: 1,
                confirm_within_secs: 30,
                changes: vec![
                    "eth0: DHCP client stopped".into(),
                    "add 192.0.2.10/24 to eth0".into(),
                ],
            })
        );
        assert!(!answer_path(run.path()).exists(), "the answer is read once");
        // Nothing else is waiting.
        assert!(take_request(run.path()).is_none());
    }

    #[test]
    fn without_an_answer_the_daemon_gives_up_and_takes_its_request_back() {
        let run = tempfile::tempdir().unwrap();
        let request = apply(30);
        leave_request(run.path(), &request).unwrap();
        // An answer to an earlier request whose daemon gave up: skipped and removed.
        let stale = NetworkAnswer {
            version: HANDOVER_VERSION,
            request_id: Some("1-2-3".into()),
            reply: Reply::Ok(NetworkOutcome::Confirmed),
        };
        write(&HandoverFile {
            path: answer_path(run.path()),
            contents: answer_json(&stale),
        });
        let started = Instant::now();
        let error = wait_for_answer(run.path(), &request.request_id, Duration::from_millis(200))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(matches!(error, HandoverError::NoAnswer { .. }), "{error:?}");
        assert!(!request_path(run.path()).exists());
        assert!(!answer_path(run.path()).exists());
    }

    #[test]
    fn pid1_refuses_a_request_it_cannot_trust_and_says_so() {
        let run = tempfile::tempdir().unwrap();
        let (mut owner, mut network) = owner();
        let cases: [(&str, &str); 5] = [
            ("{not json", "is not a valid network hand-over file"),
            (
                r#"{"version":2,"request_id":"a","action":{"type":"confirm","apply_id":1}}"#,
                "version 2 (this release reads version 1)",
            ),
            (
                r#"{"version":1,"request_id":"../x","action":{"type":"confirm","apply_id":1}}"#,
                "the request id \"../x\" is not one",
            ),
            (
                r#"{"version":1,"request_id":"a","action":{"type":"apply","network_toml":"","confirm_within_secs":0}}"#,
                "confirm_within_secs must be from 1 to 600, got 0",
            ),
            (
                r#"{"version":1,"request_id":"a","action":{"type":"format"}}"#,
                "unknown variant `format`",
            ),
        ];
        for (text, expected) in cases {
            std::fs::create_dir_all(dir(run.path())).unwrap();
            std::fs::write(request_path(run.path()), text).unwrap();
            let lines = pid1_serves(run.path(), &mut owner, &mut network, SECOND);
            assert!(
                lines[0].starts_with("net: a network request was refused: "),
                "{lines:?}"
            );
            // The daemon takes an answer without an id as its own.
            let reply = wait_for_answer(run.path(), "any", SECOND).unwrap();
            let error = Result::from(reply).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(
                error.message.contains(expected),
                "{text}: {}",
                error.message
            );
        }
        assert!(network.calls.is_empty(), "{:?}", network.calls);
        assert_eq!(read_pending(run.path()).unwrap(), None);
    }

    #[test]
    fn a_request_through_a_symbolic_link_is_refused_and_removed() {
        let run = tempfile::tempdir().unwrap();
        let elsewhere = run.path().join("elsewhere.json");
        let text = serde_json::to_string(&apply(30)).unwrap();
        std::fs::write(&elsewhere, text).unwrap();
        std::fs::create_dir_all(dir(run.path())).unwrap();
        std::os::unix::fs::symlink(&elsewhere, request_path(run.path())).unwrap();
        let taken = take_request(run.path()).unwrap();
        assert!(matches!(taken, Err(HandoverError::Read(_))), "{taken:?}");
        // The link is gone, what it pointed to is untouched.
        assert!(take_request(run.path()).is_none());
        assert!(elsewhere.exists());
    }

    #[test]
    fn a_change_not_confirmed_is_rolled_back_at_its_deadline_and_published() {
        let run = tempfile::tempdir().unwrap();
        let (mut owner, mut network) = owner();
        leave_request(run.path(), &apply(5)).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 10 * SECOND);
        assert_eq!(owner.deadline(), Some(15 * SECOND));
        let mut lines = Vec::new();
        let early = owner.expire(run.path(), &mut network, 14 * SECOND, &mut |l| {
            lines.push(l)
        });
        assert_eq!((early, lines.len()), (None, 0));
        let file = owner
            .expire(run.path(), &mut network, 15 * SECOND, &mut |l| {
                lines.push(l)
            })
            .unwrap();
        write(&file);
        assert_eq!(read_pending(run.path()).unwrap(), None);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("net: change 1 rolled back: not confirmed within 5 s")
        );
        assert!(network.calls.contains(&"roll back provisional".to_owned()));
        // A late confirmation is told how the change ended.
        let confirm = NetworkRequest::new(NetworkAction::Confirm { apply_id: 1 }, 2);
        leave_request(run.path(), &confirm).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 16 * SECOND);
        let reply = wait_for_answer(run.path(), &confirm.request_id, SECOND).unwrap();
        assert_eq!(
            Result::from(reply),
            Ok(NetworkOutcome::RolledBack {
                reason: "change 1 was rolled back: not confirmed within 5 s".into()
            })
        );
    }

    #[test]
    fn a_change_confirmed_in_time_is_kept() {
        let run = tempfile::tempdir().unwrap();
        let (mut owner, mut network) = owner();
        leave_request(run.path(), &apply(5)).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 10 * SECOND);
        let confirm = NetworkRequest::new(NetworkAction::Confirm { apply_id: 1 }, 2);
        leave_request(run.path(), &confirm).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 14 * SECOND);
        let reply = wait_for_answer(run.path(), &confirm.request_id, SECOND).unwrap();
        assert_eq!(Result::from(reply), Ok(NetworkOutcome::Confirmed));
        assert_eq!(read_pending(run.path()).unwrap(), None);
        assert_eq!(owner.deadline(), None);
        assert!(
            owner
                .expire(run.path(), &mut network, 60 * SECOND, &mut |_| {})
                .is_none()
        );
        assert!(network.calls.contains(&"keep provisional".to_owned()));
        assert!(!network.calls.contains(&"roll back provisional".to_owned()));
    }

    #[test]
    fn the_section_in_effect_is_published_once_confirmed_and_a_bad_file_is_named() {
        let run = tempfile::tempdir().unwrap();
        let (mut owner, mut network) = owner();
        for file in owner.state_files(run.path()) {
            write(&file);
        }
        assert_eq!(read_in_effect(run.path()).unwrap(), None);
        leave_request(run.path(), &apply(5)).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 10 * SECOND);
        assert_eq!(
            read_in_effect(run.path()).unwrap(),
            None,
            "not before the confirmation"
        );
        let confirm = NetworkRequest::new(NetworkAction::Confirm { apply_id: 1 }, 2);
        leave_request(run.path(), &confirm).unwrap();
        pid1_serves(run.path(), &mut owner, &mut network, 11 * SECOND);
        let section = read_in_effect(run.path()).unwrap().unwrap();
        assert_eq!(
            parse_network_section(&section).unwrap(),
            parse_network_section(STATIC_ETH0).unwrap()
        );

        std::fs::write(in_effect_path(run.path()), [0xff, 0xfe]).unwrap();
        let error = read_in_effect(run.path()).unwrap_err().to_string();
        assert!(
            error.contains("in-effect.toml is not a valid network hand-over file"),
            "{error}"
        );
    }
}
