//! Tasks: what a long operation (creating a VM, shutting one down with a deadline, taking a
//! snapshot) answers at once with `202 Accepted`, and what a client then polls.
//!
//! Why in memory and bounded: a task only matters while someone waits for it, and mfv-web
//! runs from RAM. The running tasks and the last [`KEPT_FINISHED`] finished ones are kept;
//! older ones are forgotten (`404` when asked for).
//!
//! Every change to a VM, a task or a quick synchronous one, holds that VM's lock while it
//! runs ([`Tasks::lock`]): a second change is refused with `409 conflict` naming what holds
//! it, so two people cannot, say, revert a snapshot while the VM is being shut down. The lock
//! is a guard: it is released when the change ends however it ends (an error or a panic).

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Serialize;
use warp::http::header::{HeaderValue, LOCATION};
use warp::http::{Method, StatusCode};

use super::ApiError;
use super::doc::{Answer, schema};
use super::events::{EventHub, TASK_EVENT};
use super::table::{Access, Call, HandlerFuture, Route};
use crate::reply::{ErrorBody, json_response};

/// How many finished tasks are kept for clients to read.
pub const KEPT_FINISHED: usize = 200;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Still working.
    Running,
    /// Done; `result` says what came out.
    Succeeded,
    /// Failed; `error` says why, in the API's error shape.
    Failed,
}

/// A task as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Task {
    /// Its id (`GET /api/v1/tasks/{id}`).
    pub id: String,
    /// What it does (`vm_create`, `vm_shutdown`, `snapshot_create`, `vm_clone`,
    /// `volume_fetch`).
    pub kind: &'static str,
    /// What it works on (a VM's name; `POOL/VOLUME` for a fetch).
    pub target: String,
    /// Where it is.
    pub state: TaskState,
    /// How far it is, 0 to 100, when it can tell.
    pub progress: Option<u8>,
    /// What it is doing or did, for people.
    pub message: String,
    /// What came out, once it succeeded.
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<ErrorBody>,
    /// When it started, Unix seconds.
    pub started_at: u64,
    /// When it ended, Unix seconds.
    pub finished_at: Option<u64>,
}

/// A task's handle for its work: says how far it is.
#[derive(Debug, Clone)]
pub struct TaskProgress {
    tasks: Tasks,
    id: u64,
}

impl TaskProgress {
    /// The task is at `percent` (when known), doing `message`.
    pub fn report(&self, percent: Option<u8>, message: impl Into<String>) {
        let message = message.into();
        let mut book = self.tasks.book();
        if let Some(task) = book.running.get_mut(&self.id) {
            task.progress = percent.map(|percent| percent.min(100));
            task.message = message;
            // Published under the book's lock, so events leave in the order of the changes.
            self.tasks.events.publish(TASK_EVENT, task);
        }
    }
}

/// Who holds a VM's lock.
#[derive(Debug, Clone)]
struct Holder {
    /// What runs (`vm_shutdown`, `vm_start`).
    kind: &'static str,
    /// The task, when a task holds it.
    task: Option<u64>,
    /// Which lock this is, so a released guard never frees a later holder's lock.
    token: u64,
}

#[derive(Debug, Default)]
struct Book {
    next: u64,
    running: HashMap<u64, Task>,
    finished: VecDeque<Task>,
    locks: HashMap<String, Holder>,
}

/// The running and recently finished tasks, and the VMs' locks. Cheap to clone: clones share
/// them.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    book: Arc<Mutex<Book>>,
    events: EventHub,
}

/// A VM's lock, held while a change runs on it; dropping it releases the VM.
#[derive(Debug)]
pub struct VmLock {
    tasks: Tasks,
    target: String,
    token: u64,
}

impl Drop for VmLock {
    fn drop(&mut self) {
        let mut book = self.tasks.book();
        if book
            .locks
            .get(&self.target)
            .is_some_and(|holder| holder.token == self.token)
        {
            book.locks.remove(&self.target);
        }
    }
}

impl Tasks {
    /// No tasks yet; each change of one is published on `events` as a `task` event.
    pub fn with_events(events: EventHub) -> Tasks {
        Tasks {
            book: Arc::default(),
            events,
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks `target` for a change of `kind`, or refuses with `409 conflict` naming what
    /// holds it.
    pub fn lock(&self, target: &str, kind: &'static str) -> Result<VmLock, ApiError> {
        self.lock_for(target, kind, None)
    }

    fn lock_for(
        &self,
        target: &str,
        kind: &'static str,
        task: Option<u64>,
    ) -> Result<VmLock, ApiError> {
        let mut book = self.book();
        if let Some(held) = book.locks.get(target) {
            let message = match held.task {
                Some(id) => format!(
                    "VM {target:?} is busy with task {id} ({}): wait until it ends \
                     (GET /api/v1/tasks/{id}), then try again",
                    held.kind
                ),
                None => format!(
                    "VM {target:?} is busy with {}: try again when it is done",
                    held.kind
                ),
            };
            return Err(ApiError::conflict(message));
        }
        book.next += 1;
        let token = book.next;
        book.locks
            .insert(target.to_owned(), Holder { kind, task, token });
        Ok(VmLock {
            tasks: self.clone(),
            target: target.to_owned(),
            token,
        })
    }

    /// Starts `work` as a task of `kind` on `target`, holding `target`'s lock until it ends,
    /// and returns the task as it is at the start. `work` runs on the blocking pool (it may
    /// call libvirt); what it returns becomes the task's `result` or `error`, and a panic
    /// fails the task.
    pub fn spawn<F>(&self, kind: &'static str, target: &str, work: F) -> Result<Task, ApiError>
    where
        F: FnOnce(&TaskProgress) -> Result<serde_json::Value, ApiError> + Send + 'static,
    {
        let id = {
            let mut book = self.book();
            book.next += 1;
            book.next
        };
        let lock = self.lock_for(target, kind, Some(id))?;
        let task = Task {
            id: id.to_string(),
            kind,
            target: target.to_owned(),
            state: TaskState::Running,
            progress: None,
            message: "started".to_owned(),
            result: None,
            error: None,
            started_at: now(),
            finished_at: None,
        };
        {
            let mut book = self.book();
            book.running.insert(id, task.clone());
            self.events.publish(TASK_EVENT, &task);
        }
        let progress = TaskProgress {
            tasks: self.clone(),
            id,
        };
        tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(&progress)));
            progress.tasks.finish(id, outcome);
            drop(lock);
        });
        Ok(task)
    }

    fn finish(&self, id: u64, outcome: std::thread::Result<Result<serde_json::Value, ApiError>>) {
        let mut book = self.book();
        let Some(mut task) = book.running.remove(&id) else {
            return;
        };
        // Released in the same step as the task ends, so a client that sees it finished
        // can change the VM at once.
        if book
            .locks
            .get(&task.target)
            .is_some_and(|holder| holder.task == Some(id))
        {
            book.locks.remove(&task.target);
        }
        task.finished_at = Some(now());
        match outcome {
            Ok(Ok(result)) => {
                task.state = TaskState::Succeeded;
                task.progress = Some(100);
                task.message = "done".to_owned();
                task.result = Some(result);
            }
            Ok(Err(error)) => {
                task.state = TaskState::Failed;
                task.message = error.body.message.clone();
                task.error = Some(error.body);
            }
            Err(_) => {
                task.state = TaskState::Failed;
                task.message = format!("task {id} ({}) failed unexpectedly", task.kind);
                task.error = Some(ErrorBody::new("internal", task.message.clone()));
            }
        }
        self.events.publish(TASK_EVENT, &task);
        if book.finished.len() >= KEPT_FINISHED {
            book.finished.pop_front();
        }
        book.finished.push_back(task);
    }

    /// The task `id`, running or among the kept finished ones.
    pub fn get(&self, id: &str) -> Option<Task> {
        let id: u64 = id.parse().ok()?;
        let book = self.book();
        book.running
            .get(&id)
            .or_else(|| book.finished.iter().find(|task| task.id == id.to_string()))
            .cloned()
    }

    /// The running and kept finished tasks, newest first.
    pub fn list(&self) -> Vec<Task> {
        let book = self.book();
        let mut tasks: Vec<Task> = book
            .running
            .values()
            .chain(book.finished.iter())
            .cloned()
            .collect();
        tasks.sort_by_key(|task| std::cmp::Reverse(task.id.parse::<u64>().unwrap_or(0)));
        tasks
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The answer of a route that started `task`: `202 Accepted` with the task, and where to
/// follow it in `Location`.
pub fn accepted(task: &Task) -> warp::reply::Response {
    let mut response = json_response(StatusCode::ACCEPTED, &TaskAnswer { task: task.clone() });
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tasks/{}", task.id)) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// What `GET /api/v1/tasks` answers.
#[derive(Debug, Serialize, JsonSchema)]
struct TaskList {
    tasks: Vec<Task>,
}

/// What `GET /api/v1/tasks/{id}` answers, and a route that started a task (`202`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskAnswer {
    /// The task.
    pub task: Task,
}

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            path: "/api/v1/tasks",
            access: Access::Allowed(mfv_auth::Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<TaskList>),
            operation: "list_tasks",
            summary: "The running and recently finished tasks, newest first",
            handler: list,
        },
        Route {
            method: Method::GET,
            path: "/api/v1/tasks/{id}",
            access: Access::Allowed(mfv_auth::Permission::ViewInventory),
            max_body: 0,
            query: &[],
            request: None,
            answer: Answer::Ok(schema::<TaskAnswer>),
            operation: "show_task",
            summary: "One task: its state, progress, result or error",
            handler: show,
        },
    ]
}

fn list(call: Call) -> HandlerFuture {
    Box::pin(async move {
        Ok(json_response(
            StatusCode::OK,
            &TaskList {
                tasks: call.state.tasks.list(),
            },
        ))
    })
}

fn show(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let id = call.param("id");
        match call.state.tasks.get(id) {
            Some(task) => Ok(json_response(StatusCode::OK, &TaskAnswer { task })),
            None => Err(ApiError::not_found(format!(
                "there is no task {id:?} (finished tasks are kept for a while only; \
                 GET /api/v1/tasks lists them)"
            ))),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn finished(tasks: &Tasks, id: &str) -> Task {
        for _ in 0..500 {
            let task = tasks.get(id).unwrap();
            if task.state != TaskState::Running {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never finished");
    }

    #[tokio::test]
    async fn a_task_holds_its_vms_lock_until_it_ends_even_when_it_panics() {
        let tasks = Tasks::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let first = tasks
            .spawn("vm_shutdown", "web-1", move |progress| {
                progress.report(Some(50), "waiting");
                wait.recv().ok();
                Ok(serde_json::json!({"outcome": "graceful"}))
            })
            .unwrap();
        let refused = tasks
            .spawn("vm_shutdown", "web-1", |_| Ok(serde_json::Value::Null))
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert!(
            refused.body.message.contains(&format!("task {}", first.id)),
            "{}",
            refused.body.message
        );
        let sync = tasks.lock("web-1", "vm_start").unwrap_err();
        assert_eq!(sync.body.kind, "conflict");
        assert!(
            tasks.lock("web-2", "vm_start").is_ok(),
            "other VMs are free"
        );
        release.send(()).unwrap();
        let done = finished(&tasks, &first.id).await;
        assert_eq!(done.state, TaskState::Succeeded);
        assert_eq!(done.progress, Some(100));
        assert_eq!(
            done.result,
            Some(serde_json::json!({"outcome": "graceful"}))
        );

        let panicking = tasks
            .spawn("snapshot_create", "web-1", |_| panic!("boom"))
            .unwrap();
        let failed = finished(&tasks, &panicking.id).await;
        assert_eq!(failed.state, TaskState::Failed);
        assert_eq!(failed.error.unwrap().kind, "internal");
        let failing = tasks
            .spawn("snapshot_create", "web-1", |_| {
                Err(ApiError::not_found("gone"))
            })
            .unwrap();
        let failed = finished(&tasks, &failing.id).await;
        assert_eq!(failed.error.unwrap().kind, "not_found");
        drop(tasks.lock("web-1", "vm_start").unwrap());

        let listed: Vec<String> = tasks.list().into_iter().map(|task| task.id).collect();
        assert_eq!(listed, [failing.id, panicking.id, first.id]);
    }

    #[tokio::test]
    async fn every_change_of_a_task_is_published_in_order() {
        let events = EventHub::default();
        let (mut listener, _) = events.subscribe(None);
        let tasks = Tasks::with_events(events);
        let started = tasks
            .spawn("vm_shutdown", "web-1", |progress| {
                progress.report(Some(40), "waiting for the guest");
                Ok(serde_json::json!({"outcome": "graceful"}))
            })
            .unwrap();
        finished(&tasks, &started.id).await;
        let mut seen = Vec::new();
        for _ in 0..3 {
            let event = listener.recv().await.unwrap();
            assert_eq!(event.kind, TASK_EVENT);
            let task: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(task["id"], started.id.as_str());
            seen.push((task["state"].clone(), task["progress"].clone()));
        }
        assert_eq!(
            seen,
            [
                (serde_json::json!("running"), serde_json::Value::Null),
                (serde_json::json!("running"), serde_json::json!(40)),
                (serde_json::json!("succeeded"), serde_json::json!(100)),
            ]
        );
    }

    #[tokio::test]
    async fn only_the_last_finished_tasks_are_kept() {
        let tasks = Tasks::default();
        let mut last = String::new();
        for _ in 0..KEPT_FINISHED + 5 {
            last = tasks
                .spawn("vm_create", "x", |_| Ok(serde_json::Value::Null))
                .unwrap()
                .id;
            finished(&tasks, &last).await;
        }
        assert_eq!(tasks.list().len(), KEPT_FINISHED);
        assert!(tasks.get("1").is_none());
        assert!(tasks.get(&last).is_some());
        assert!(tasks.get("not-a-number").is_none());
    }
}
