//! The calls `mfv --remote` makes and the API's answers as types: VMs and their snapshots,
//! tasks, the host, users, API tokens and the audit log. A call that starts a task (`202 Accepted`) polls it until it ends and answers its
//! result; a failed task is [`ClientError::TaskFailed`].

use std::time::Duration;

use mfv_api::{HostStatus, LogLine, Secret, ServiceStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{ApiError, Client, ClientError, path_segment};

/// How often a running task is asked about.
const TASK_POLL: Duration = Duration::from_millis(300);

/// A VM in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSummary {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
    /// Its state (`running`, `shut_off`, ...).
    pub state: String,
    /// Started when the host boots.
    pub autostart: bool,
    /// Has a persistent definition.
    pub persistent: bool,
}

/// Counters of one disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskCounters {
    /// The guest device (`vda`).
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

/// Counters of one NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// One VM as `GET /api/v1/vms/{name}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDetails {
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
    /// Disk counters (running VMs only).
    pub disks: Vec<DiskCounters>,
    /// NIC counters (running VMs only).
    pub nics: Vec<NicCounters>,
    /// The spec read back from the definition, as the API shows it.
    pub spec: Option<serde_json::Value>,
    /// Why the definition could not be read as a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_problem: Option<String>,
}

/// A task, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: String,
    /// What it does (`vm_shutdown`).
    pub kind: String,
    /// What it works on.
    pub target: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// How far it is, 0 to 100, when it can tell.
    pub progress: Option<u8>,
    /// What it is doing or did.
    pub message: String,
    /// What came out, once it succeeded.
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<ApiError>,
}

/// How a shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownResult {
    /// `graceful`, `forced_off` or `already_off`.
    pub outcome: String,
    /// How long the guest was given, seconds.
    pub deadline_secs: u64,
}

/// A deleted VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// Its name.
    pub deleted: String,
    /// `kept` or `deleted`: its disk volumes.
    pub volumes: String,
}

/// `GET /api/v1/host`: the host's name and the daemon's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAnswer {
    /// The host's name, which a reboot or power-off must repeat.
    pub hostname: String,
    /// The status.
    #[serde(flatten)]
    pub status: HostStatus,
}

/// What a reboot or power-off answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerAnswer {
    /// The host.
    pub hostname: String,
    /// `rebooting` or `powering off`.
    pub state: String,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The login name.
    pub username: String,
    /// The name shown for people.
    pub display_name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// Whether the user is disabled.
    pub disabled: bool,
}

/// Changes to a user; each `None` leaves that part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserChange {
    /// A new role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Disable or enable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// A new password (ends the user's sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The id (for revoking it).
    pub id: i64,
    /// Whose token it is.
    pub owner: String,
    /// Its name, unique per owner.
    pub name: String,
    /// The role it was given.
    pub role: String,
    /// What it may do now: the lower of its role and its owner's.
    pub effective_role: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
    /// When it was last used (Unix seconds), if ever.
    pub last_used_at: Option<i64>,
}

/// An API token to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewToken {
    /// Whose token it is.
    pub owner: String,
    /// Its name, unique per owner.
    pub name: String,
    /// What it grants, at most the owner's role.
    pub role: String,
    /// How many days it works.
    pub expires_in_days: u64,
}

/// A token just made: the only time its secret is shown (`Debug` hides it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The bearer secret (`mfv_...`).
    pub secret: Secret,
    /// The token.
    pub token: ApiToken,
}

/// One entry of the host's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// What happened (`login`, `role_changed`, ...).
    pub event: String,
    /// The user it is about.
    pub username: Option<String>,
    /// Who did it, if not the user.
    pub actor: Option<String>,
    /// The client address.
    pub source: Option<String>,
    /// `ok`, `refused` or `error`.
    pub outcome: String,
    /// Details, e.g. why a login was refused.
    pub detail: String,
}

/// A VM's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its name.
    pub name: String,
    /// The description given, empty when none was.
    pub description: String,
    /// When it was taken (Unix seconds).
    pub created_unix: u64,
    /// The VM's state when it was taken, as libvirt names it (`running`, `shutoff`).
    pub vm_state: String,
    /// The VM currently runs from it.
    pub current: bool,
}

/// The most audit entries one answer of the API holds.
const AUDIT_PAGE: u32 = 1000;

#[derive(Deserialize)]
struct Tokens {
    tokens: Vec<ApiToken>,
}

#[derive(Deserialize)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    next_before: Option<i64>,
}

#[derive(Deserialize)]
struct Snapshots {
    snapshots: Vec<Snapshot>,
}

#[derive(Deserialize)]
struct OneSnapshot {
    snapshot: Snapshot,
}

#[derive(Deserialize)]
struct Vms {
    vms: Vec<VmSummary>,
}

#[derive(Deserialize)]
struct OneVm<T> {
    vm: T,
}

/// A task, as a `202 Accepted` and `GET /api/v1/tasks/{id}` answer it.
#[derive(Deserialize)]
struct Accepted {
    task: Task,
}

#[derive(Deserialize)]
struct Services {
    services: Vec<ServiceStatus>,
}

#[derive(Deserialize)]
struct OneService {
    service: ServiceStatus,
}

#[derive(Deserialize)]
struct Lines {
    lines: Vec<LogLine>,
}

#[derive(Deserialize)]
struct Users {
    users: Vec<User>,
}

impl Client {
    /// Every VM.
    pub fn vms(&mut self) -> Result<Vec<VmSummary>, ClientError> {
        Ok(self.call::<Vms>("GET", "/api/v1/vms", None)?.vms)
    }

    /// One VM.
    pub fn vm(&mut self, name: &str) -> Result<VmDetails, ClientError> {
        let path = format!("/api/v1/vms/{}", path_segment(name));
        Ok(self.call::<OneVm<VmDetails>>("GET", &path, None)?.vm)
    }

    /// Starts a VM; its state after.
    pub fn start_vm(&mut self, name: &str) -> Result<VmSummary, ClientError> {
        self.vm_action(name, "start")
    }

    /// Forces a VM off; its state after.
    pub fn force_off_vm(&mut self, name: &str) -> Result<VmSummary, ClientError> {
        self.vm_action(name, "force-off")
    }

    /// Asks the guest to reboot; the VM's state after.
    pub fn reboot_vm(&mut self, name: &str) -> Result<VmSummary, ClientError> {
        self.vm_action(name, "reboot")
    }

    fn vm_action(&mut self, name: &str, action: &str) -> Result<VmSummary, ClientError> {
        let path = format!("/api/v1/vms/{}/{action}", path_segment(name));
        Ok(self.call::<OneVm<VmSummary>>("POST", &path, None)?.vm)
    }

    /// Asks the guest to power off, forcing it off after `deadline`; waits for the task,
    /// telling `progress` each change of it.
    pub fn shutdown_vm(
        &mut self,
        name: &str,
        deadline: Duration,
        progress: &mut dyn FnMut(&Task),
    ) -> Result<ShutdownResult, ClientError> {
        let path = format!("/api/v1/vms/{}/shutdown", path_segment(name));
        let body = json!({ "deadline_secs": deadline.as_secs() });
        self.run_task("POST", &path, Some(&body), progress)
    }

    /// Creates a VM from `spec` (the spec's JSON); waits for the task.
    pub fn create_vm(
        &mut self,
        spec: &serde_json::Value,
        progress: &mut dyn FnMut(&Task),
    ) -> Result<VmSummary, ClientError> {
        let created: OneVm<VmSummary> =
            self.run_task("POST", "/api/v1/vms", Some(spec), progress)?;
        Ok(created.vm)
    }

    /// Deletes a shut-off VM, and its disk volumes with `delete_volumes`.
    pub fn delete_vm(&mut self, name: &str, delete_volumes: bool) -> Result<Deleted, ClientError> {
        let volumes = if delete_volumes { "delete" } else { "keep" };
        let path = format!("/api/v1/vms/{}?volumes={volumes}", path_segment(name));
        self.call("DELETE", &path, None)
    }

    /// Sends a request that answers `202` with a task, then polls the task until it ends;
    /// its result as `T`.
    fn run_task<T: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        progress: &mut dyn FnMut(&Task),
    ) -> Result<T, ClientError> {
        let mut task = self.call::<Accepted>(method, path, body)?.task;
        progress(&task);
        let task_path = format!("/api/v1/tasks/{}", path_segment(&task.id));
        while task.state == "running" {
            std::thread::sleep(TASK_POLL);
            let now = self.call::<Accepted>("GET", &task_path, None)?.task;
            if (&now.message, now.progress, &now.state)
                != (&task.message, task.progress, &task.state)
            {
                progress(&now);
            }
            task = now;
        }
        match (task.state.as_str(), task.result) {
            ("succeeded", Some(result)) => {
                serde_json::from_value(result).map_err(|error| ClientError::UnexpectedAnswer {
                    host: self.host.clone(),
                    request: format!("GET {task_path}"),
                    status: 200,
                    reason: format!("the task's result: {error}"),
                })
            }
            _ => Err(ClientError::TaskFailed {
                host: self.host.clone(),
                task: task.id,
                kind: task.kind,
                error: Box::new(task.error.unwrap_or(ApiError {
                    status: 0,
                    kind: "internal".to_owned(),
                    message: task.message,
                    field: None,
                })),
            }),
        }
    }

    /// The host's name and status.
    pub fn host_status(&mut self) -> Result<HostAnswer, ClientError> {
        self.call("GET", "/api/v1/host", None)
    }

    /// The supervised services.
    pub fn services(&mut self) -> Result<Vec<ServiceStatus>, ClientError> {
        Ok(self
            .call::<Services>("GET", "/api/v1/host/services", None)?
            .services)
    }

    /// Restarts a service; its state with the new process.
    pub fn restart_service(&mut self, name: &str) -> Result<ServiceStatus, ClientError> {
        let path = format!("/api/v1/host/services/{}/restart", path_segment(name));
        Ok(self.call::<OneService>("POST", &path, None)?.service)
    }

    /// The last `lines` log lines of `service`, or of the boot.
    pub fn logs(&mut self, service: Option<&str>, lines: u32) -> Result<Vec<LogLine>, ClientError> {
        let path = match service {
            Some(name) => format!(
                "/api/v1/host/logs?source=service&service={}&lines={lines}",
                path_segment(name)
            ),
            None => format!("/api/v1/host/logs?source=boot&lines={lines}"),
        };
        Ok(self.call::<Lines>("GET", &path, None)?.lines)
    }

    /// Reboots the host, whose name `confirm` repeats.
    pub fn reboot_host(&mut self, confirm: &str) -> Result<PowerAnswer, ClientError> {
        self.call(
            "POST",
            "/api/v1/host/reboot",
            Some(&json!({ "confirm": confirm })),
        )
    }

    /// Powers the host off, whose name `confirm` repeats.
    pub fn power_off_host(&mut self, confirm: &str) -> Result<PowerAnswer, ClientError> {
        self.call(
            "POST",
            "/api/v1/host/poweroff",
            Some(&json!({ "confirm": confirm })),
        )
    }

    /// Every user.
    pub fn users(&mut self) -> Result<Vec<User>, ClientError> {
        Ok(self.call::<Users>("GET", "/api/v1/users", None)?.users)
    }

    /// Adds a user.
    pub fn add_user(
        &mut self,
        username: &str,
        password: &str,
        role: &str,
        display_name: &str,
    ) -> Result<User, ClientError> {
        let body = json!({
            "username": username, "password": password, "role": role,
            "display_name": display_name,
        });
        self.call("POST", "/api/v1/users", Some(&body))
    }

    /// Changes a user.
    pub fn change_user(
        &mut self,
        username: &str,
        change: &UserChange,
    ) -> Result<User, ClientError> {
        let path = format!("/api/v1/users/{}", path_segment(username));
        let body = serde_json::to_value(change).unwrap_or_default();
        self.call("PATCH", &path, Some(&body))
    }

    /// Deletes a user with their sessions, API tokens and TOTP.
    pub fn delete_user(&mut self, username: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/users/{}", path_segment(username));
        self.call::<serde_json::Value>("DELETE", &path, None)
            .map(drop)
    }

    /// Every API token (never their secrets).
    pub fn tokens(&mut self) -> Result<Vec<ApiToken>, ClientError> {
        Ok(self.call::<Tokens>("GET", "/api/v1/tokens", None)?.tokens)
    }

    /// Makes an API token; the answer holds its secret, which the host shows only now.
    pub fn create_token(&mut self, token: &NewToken) -> Result<CreatedToken, ClientError> {
        let body = serde_json::to_value(token).unwrap_or_default();
        self.call("POST", "/api/v1/tokens", Some(&body))
    }

    /// Revokes the API token `id`.
    pub fn revoke_token(&mut self, id: i64) -> Result<(), ClientError> {
        self.call::<serde_json::Value>("DELETE", &format!("/api/v1/tokens/{id}"), None)
            .map(drop)
    }

    /// The newest `limit` audit entries, newest first, only those about or by `user` if
    /// given; read a page of at most 1000 at a time.
    pub fn audit(
        &mut self,
        limit: u32,
        user: Option<&str>,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut before = None;
        while let Some(left) = limit
            .checked_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX))
            .filter(|left| *left > 0)
        {
            let mut path = format!("/api/v1/audit?limit={}", left.min(AUDIT_PAGE));
            if let Some(user) = user {
                path.push_str(&format!("&user={}", path_segment(user)));
            }
            if let Some(before) = before {
                path.push_str(&format!("&before={before}"));
            }
            let page = self.call::<AuditPage>("GET", &path, None)?;
            entries.extend(page.entries);
            match page.next_before {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        Ok(entries)
    }

    /// A VM's snapshots, oldest first.
    pub fn snapshots(&mut self, vm: &str) -> Result<Vec<Snapshot>, ClientError> {
        let path = format!("/api/v1/vms/{}/snapshots", path_segment(vm));
        Ok(self.call::<Snapshots>("GET", &path, None)?.snapshots)
    }

    /// Takes a snapshot of a VM (its disks, and its memory when it runs); waits for the
    /// task, telling `progress` each change of it.
    pub fn create_snapshot(
        &mut self,
        vm: &str,
        name: &str,
        description: &str,
        progress: &mut dyn FnMut(&Task),
    ) -> Result<Snapshot, ClientError> {
        let path = format!("/api/v1/vms/{}/snapshots", path_segment(vm));
        let body = json!({ "name": name, "description": description });
        let taken: OneSnapshot = self.run_task("POST", &path, Some(&body), progress)?;
        Ok(taken.snapshot)
    }

    /// Returns a VM to a snapshot; the VM's state after.
    pub fn revert_snapshot(&mut self, vm: &str, snapshot: &str) -> Result<VmSummary, ClientError> {
        let path = format!(
            "/api/v1/vms/{}/snapshots/{}/revert",
            path_segment(vm),
            path_segment(snapshot)
        );
        Ok(self.call::<OneVm<VmSummary>>("POST", &path, None)?.vm)
    }

    /// Deletes a snapshot; the VM's state, which stays as it is.
    pub fn delete_snapshot(&mut self, vm: &str, snapshot: &str) -> Result<VmSummary, ClientError> {
        let path = format!(
            "/api/v1/vms/{}/snapshots/{}",
            path_segment(vm),
            path_segment(snapshot)
        );
        Ok(self.call::<OneVm<VmSummary>>("DELETE", &path, None)?.vm)
    }
}
