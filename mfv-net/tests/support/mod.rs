//! Throwaway network namespaces and veth pairs for the root-only network tests.
//!
//! A [`TestNamespace`] is created with `ip netns add` under a name unique to the test process
//! and deleted in `Drop` (also on panic), which removes every interface inside it. Code that
//! needs the namespace runs through [`TestNamespace::run`]: a dedicated thread enters it with
//! `setns(CLONE_NEWNET)` and drives a current-thread tokio runtime there.
#![allow(dead_code)] // Each test binary uses a different part of the fixture.

pub mod daemon;

use std::fmt::Debug;
use std::fs::File;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};
use tokio::sync::mpsc;

static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// Whether the tests can create namespaces; prints why a test is skipped when they cannot.
pub fn can_run_as_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping {test}: needs root to create network namespaces");
        false
    }
}

/// A network namespace that exists for the life of this value.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `mfvt-<pid>-<counter>` with its loopback up.
    pub fn new() -> Result<TestNamespace> {
        let counter = NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed);
        let name = format!("mfvt-{}-{counter}", std::process::id());
        run_ip(&["netns", "add", &name])?;
        let namespace = TestNamespace { name };
        namespace.ip(&["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...` and returns its standard output; fails with its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// Creates a veth pair with both ends in this namespace, both administratively up.
    pub fn add_veth(&self, end: &str, peer: &str) -> Result<()> {
        self.ip(&["link", "add", end, "type", "veth", "peer", "name", peer])?;
        self.ip(&["link", "set", end, "up"])?;
        self.ip(&["link", "set", peer, "up"])?;
        Ok(())
    }

    /// Creates a veth pair from `end` here to `peer` in `other`, both administratively up.
    pub fn add_veth_to(&self, end: &str, other: &TestNamespace, peer: &str) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            end,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            &other.name,
        ])?;
        self.ip(&["link", "set", end, "up"])?;
        other.ip(&["link", "set", peer, "up"])?;
        Ok(())
    }

    /// Runs `make_future()` to completion on a current-thread tokio runtime (with time) on a
    /// thread inside this namespace, and returns its output.
    pub fn run<F, Fut, T>(&self, make_future: F) -> Result<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let thread = std::thread::spawn(move || -> Result<T> {
            let file = File::open(&path).with_context(|| format!("open {path}"))?;
            setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {path}"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("build a tokio runtime")?;
            Ok(runtime.block_on(make_future()))
        });
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if let Err(error) = run_ip(&["netns", "del", &self.name]) {
            eprintln!("cannot delete network namespace {}: {error:#}", self.name);
        }
    }
}

/// A server namespace and a client namespace joined by a veth pair: srv0 (192.0.2.1/24) in
/// the server's, cl0 (no address) in the client's.
#[derive(Debug)]
pub struct ServerAndClient {
    /// The server's namespace.
    pub server: TestNamespace,
    /// The client's namespace.
    pub client: TestNamespace,
}

impl ServerAndClient {
    /// Creates both namespaces and the veth pair.
    pub fn new() -> Result<ServerAndClient> {
        let server = TestNamespace::new()?;
        let client = TestNamespace::new()?;
        server.add_veth_to("srv0", &client, "cl0")?;
        server.ip(&["addr", "add", "192.0.2.1/24", "dev", "srv0"])?;
        Ok(ServerAndClient { server, client })
    }
}

/// The events of a task under test, awaited with deadlines; every event received is kept.
#[derive(Debug)]
pub struct EventLog<E> {
    receiver: mpsc::UnboundedReceiver<E>,
    seen: Vec<E>,
}

impl<E: Clone + Debug> EventLog<E> {
    /// Reads events from `receiver`.
    pub fn new(receiver: mpsc::UnboundedReceiver<E>) -> EventLog<E> {
        EventLog {
            receiver,
            seen: Vec::new(),
        }
    }

    /// Waits for an event `wanted` accepts, up to `limit`; fails with every event seen.
    pub async fn wait_for(&mut self, limit: Duration, wanted: impl Fn(&E) -> bool) -> Result<E> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(event)) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return Ok(event);
                    }
                }
                Ok(None) => bail!("the task ended; events: {:?}", self.seen),
                Err(_) => bail!("no such event within {limit:?}; events: {:?}", self.seen),
            }
        }
    }

    /// Every event received so far.
    pub fn seen(&self) -> &[E] {
        &self.seen
    }
}

fn run_ip(args: &[&str]) -> Result<String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("run ip {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
