//! The forwarder: a bounded queue that callers append to without ever waiting, and one thread
//! of its own that resolves the server, connects and sends.
//!
//! PID 1 logs from its signal loop and from each service's output thread; none of them may
//! stall because a log server is slow, down, or not even resolvable yet (forwarding starts
//! before the network is up). So [`RemoteLog::send`] only formats the line and appends it under
//! a lock that the sending thread never holds across I/O. When the queue is over its size, the
//! oldest lines go and are counted; the count is reported once the server takes lines again.
//! The local logs keep every line regardless.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mfv_config::schema::{LogTransport, RemoteLogServer};

use super::format::{LogRecord, TCP_MAX_MESSAGE, UDP_MAX_MESSAGE, octet_counted, rfc5424};
use crate::network::LineSink;

/// Why forwarding could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteLogError {
    /// The sending thread could not be created.
    #[error("cannot start the thread that sends to {server}")]
    Thread {
        /// The server, as configured.
        server: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Turns a host name and port into addresses (the system's resolver, or a test's own).
pub type Resolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// How the forwarder queues, waits and retries.
#[derive(Clone)]
pub struct ForwarderSettings {
    /// The most message bytes waiting; beyond it the oldest lines are dropped.
    pub queue_bytes: usize,
    /// The wait before the first retry after a failure.
    pub first_retry: Duration,
    /// The longest wait between retries (the wait doubles up to it).
    pub last_retry: Duration,
    /// How long a TCP connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one TCP write may block before the connection counts as broken.
    pub write_timeout: Duration,
    /// How long after the start a server that cannot be reached is not reported: at boot the
    /// first lines are queued before a DHCP lease gives the host a route, and an outage the
    /// lease ends is no news. An outage that lasts longer is reported once it is over this.
    pub quiet_start: Duration,
    /// How the server's name is resolved.
    pub resolver: Resolver,
}

impl std::fmt::Debug for ForwarderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwarderSettings")
            .field("queue_bytes", &self.queue_bytes)
            .field("first_retry", &self.first_retry)
            .field("last_retry", &self.last_retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("quiet_start", &self.quiet_start)
            .finish_non_exhaustive()
    }
}

impl Default for ForwarderSettings {
    /// 1 MiB of lines; retries after 1 s, doubling up to 30 s; 5 s to connect, 10 s to write;
    /// quiet for the first 30 s; the system's resolver.
    fn default() -> ForwarderSettings {
        ForwarderSettings {
            queue_bytes: 1024 * 1024,
            first_retry: Duration::from_secs(1),
            last_retry: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            quiet_start: Duration::from_secs(30),
            resolver: Arc::new(|host, port| (host, port).to_socket_addrs().map(Iterator::collect)),
        }
    }
}

/// The most message bytes taken from the queue for one send (one write over TCP).
const BATCH_BYTES: usize = 64 * 1024;

/// Forwarding to one remote syslog server. Clones share the queue; the sending thread ends
/// once every clone is gone.
#[derive(Debug, Clone)]
pub struct RemoteLog {
    shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

#[derive(Debug)]
struct Shared {
    server: RemoteLogServer,
    hostname: String,
    queue_bytes: usize,
    queue: Mutex<Queue>,
    /// Lines arrived, or the last handle went.
    wake: Condvar,
    /// The queue ran empty with nothing in flight.
    drained: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Lines dropped since the last report.
    lost: u64,
    /// Lines taken by the sending thread and not yet sent.
    in_flight: usize,
    stopped: bool,
}

impl Queue {
    /// Drops the oldest lines while more than `limit` bytes wait.
    fn trim(&mut self, limit: usize) {
        while self.bytes > limit {
            let Some(oldest) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= oldest.len();
            self.lost += 1;
        }
    }
}

/// Stops the sending thread when the last [`RemoteLog`] goes.
#[derive(Debug)]
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere while holding the lock leaves a queue that is still consistent:
        // every change to it is a single push, pop or counter update.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `condvar` until `done` holds or `deadline` passes; the queue, and whether
    /// `done` held.
    fn wait_until<'q>(
        &self,
        condvar: &Condvar,
        mut queue: MutexGuard<'q, Queue>,
        deadline: Instant,
        done: impl Fn(&Queue) -> bool,
    ) -> (MutexGuard<'q, Queue>, bool) {
        loop {
            if done(&queue) {
                return (queue, true);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return (queue, false);
            };
            queue = condvar
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl RemoteLog {
    /// Starts forwarding to `server` as the host `hostname`, with the default settings; what
    /// happens to the connection (unreachable, reached again, lines lost) goes to `report`.
    pub fn start(
        server: RemoteLogServer,
        hostname: &str,
        report: LineSink,
    ) -> Result<RemoteLog, RemoteLogError> {
        RemoteLog::with_settings(server, hostname, ForwarderSettings::default(), report)
    }

    /// [`RemoteLog::start`] with other settings.
    pub fn with_settings(
        server: RemoteLogServer,
        hostname: &str,
        settings: ForwarderSettings,
        report: LineSink,
    ) -> Result<RemoteLog, RemoteLogError> {
        let shared = Arc::new(Shared {
            server: server.clone(),
            hostname: hostname.to_owned(),
            queue_bytes: settings.queue_bytes,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
        });
        let sender = Sender {
            shared: Arc::clone(&shared),
            settings,
            report,
        };
        std::thread::Builder::new()
            .name("remote log".to_owned())
            .spawn(move || sender.run())
            .map_err(|source| RemoteLogError::Thread {
                server: server.to_string(),
                source,
            })?;
        Ok(RemoteLog {
            _stop: Arc::new(StopOnDrop(Arc::clone(&shared))),
            shared,
        })
    }

    /// The server lines go to.
    pub fn server(&self) -> &RemoteLogServer {
        &self.shared.server
    }

    /// Queues `record` for the server; never waits for the network.
    pub fn send(&self, record: &LogRecord) {
        let max_len = match self.shared.server.transport() {
            LogTransport::Udp => UDP_MAX_MESSAGE,
            LogTransport::Tcp => TCP_MAX_MESSAGE,
        };
        let message = rfc5424(&self.shared.hostname, record, max_len);
        let mut queue = self.shared.lock();
        queue.bytes += message.len();
        queue.lines.push_back(message);
        queue.trim(self.shared.queue_bytes);
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Waits at most `timeout` for every queued line to be handed to the network; whether
    /// they were. For the end of a run, where the last lines are worth a short wait.
    pub fn flush(&self, timeout: Duration) -> bool {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        shared
            .wait_until(&shared.drained, shared.lock(), deadline, |queue| {
                queue.lines.is_empty() && queue.in_flight == 0
            })
            .1
    }
}

/// The sending thread's side.
struct Sender {
    shared: Arc<Shared>,
    settings: ForwarderSettings,
    report: LineSink,
}

/// A socket to the server.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Why lines could not be sent: how many of the batch went out first, and the cause.
struct SendFailure {
    sent: usize,
    reason: String,
}

impl Sender {
    fn run(self) {
        let mut link = None;
        let mut retry = self.settings.first_retry;
        // Whether the server could not be reached, and that was said.
        let mut outage = false;
        let quiet_until = Instant::now() + self.settings.quiet_start;
        loop {
            if !self.wait_for_lines() {
                return;
            }
            let current = match link.take() {
                Some(current) => current,
                None => match self.connect() {
                    Ok((current, address)) => {
                        retry = self.settings.first_retry;
                        let server = &self.shared.server;
                        if std::mem::take(&mut outage) {
                            self.say(format!("log: {server} answers now ({address})"));
                        }
                        current
                    }
                    Err(reason) => {
                        self.unreachable(&mut outage, reason, quiet_until);
                        if !self.pause(&mut retry) {
                            return;
                        }
                        continue;
                    }
                },
            };
            let batch = self.take_batch();
            match send(&current, &batch) {
                Ok(()) => {
                    self.sent(batch.len(), &[]);
                    link = Some(current);
                }
                Err(failure) => {
                    self.sent(failure.sent, &batch[failure.sent..]);
                    self.unreachable(&mut outage, failure.reason, quiet_until);
                    if !self.pause(&mut retry) {
                        return;
                    }
                }
            }
        }
    }

    /// Waits until lines are queued; false once the last handle is gone.
    fn wait_for_lines(&self) -> bool {
        let mut queue = self.shared.lock();
        loop {
            if queue.stopped {
                return false;
            }
            if !queue.lines.is_empty() {
                return true;
            }
            queue = self
                .shared
                .wake
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits `retry`, then doubles it up to the longest wait; false once the last handle is
    /// gone.
    fn pause(&self, retry: &mut Duration) -> bool {
        let deadline = Instant::now() + *retry;
        *retry = (*retry * 2).min(self.settings.last_retry);
        let shared = &self.shared;
        !shared
            .wait_until(&shared.wake, shared.lock(), deadline, |queue| queue.stopped)
            .1
    }

    /// Takes the oldest lines for one send, up to [`BATCH_BYTES`] (at least one line).
    fn take_batch(&self) -> Vec<Vec<u8>> {
        let mut queue = self.shared.lock();
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(line) = queue.lines.front() {
            if !batch.is_empty() && bytes + line.len() > BATCH_BYTES {
                break;
            }
            bytes += line.len();
            if let Some(line) = queue.lines.pop_front() {
                batch.push(line);
            }
        }
        queue.bytes -= bytes;
        queue.in_flight = batch.len();
        batch
    }

    /// Settles a batch: `unsent` lines go back to the front of the queue, and the lines lost
    /// meanwhile are reported once some have been sent.
    fn sent(&self, sent: usize, unsent: &[Vec<u8>]) {
        let mut queue = self.shared.lock();
        queue.in_flight = 0;
        for line in unsent.iter().rev() {
            queue.bytes += line.len();
            queue.lines.push_front(line.clone());
        }
        queue.trim(self.shared.queue_bytes);
        let lost = if sent > 0 {
            std::mem::take(&mut queue.lost)
        } else {
            0
        };
        if queue.lines.is_empty() {
            self.shared.drained.notify_all();
        }
        drop(queue);
        if lost > 0 {
            let server = &self.shared.server;
            let lines = if lost == 1 { "line" } else { "lines" };
            self.say(format!(
                "log: {lost} {lines} for {server} were lost while they could not be sent"
            ));
        }
    }

    /// Says once per outage why the server cannot be reached, unless it is still
    /// `quiet_until` (see [`ForwarderSettings::quiet_start`]).
    fn unreachable(&self, outage: &mut bool, reason: String, quiet_until: Instant) {
        if !*outage && Instant::now() >= quiet_until {
            let server = &self.shared.server;
            self.say(format!(
                "log: cannot reach {server}: {reason}; lines wait in memory and are sent once it answers"
            ));
            *outage = true;
        }
    }

    fn say(&self, line: String) {
        (self.report)(line);
    }

    /// Resolves the server and opens a socket to the first address that takes one.
    fn connect(&self) -> Result<(Link, SocketAddr), String> {
        let server = &self.shared.server;
        let host = server.host();
        let addresses = (self.settings.resolver)(host, server.port())
            .map_err(|error| format!("{host} does not resolve ({error})"))?;
        let mut last_error = format!("{host} resolves to no address");
        for address in addresses {
            match self.open(address) {
                Ok(link) => return Ok((link, address)),
                Err(error) => last_error = format!("{address}: {error}"),
            }
        }
        Err(last_error)
    }

    fn open(&self, address: SocketAddr) -> io::Result<Link> {
        match self.shared.server.transport() {
            LogTransport::Udp => {
                let local: SocketAddr = if address.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(address)?;
                Ok(Link::Udp(socket))
            }
            LogTransport::Tcp => {
                let stream = TcpStream::connect_timeout(&address, self.settings.connect_timeout)?;
                stream.set_write_timeout(Some(self.settings.write_timeout))?;
                Ok(Link::Tcp(stream))
            }
        }
    }
}

/// Sends `batch` over `link`: one datagram per line, or octet-counted frames in one write.
fn send(link: &Link, batch: &[Vec<u8>]) -> Result<(), SendFailure> {
    match link {
        Link::Udp(socket) => {
            for (sent, line) in batch.iter().enumerate() {
                socket.send(line).map_err(|error| SendFailure {
                    sent,
                    reason: format!("send: {error}"),
                })?;
            }
            Ok(())
        }
        Link::Tcp(stream) => {
            let failure = |reason| SendFailure { sent: 0, reason };
            if closed_by_peer(stream) {
                return Err(failure("the server closed the connection".to_owned()));
            }
            let frames: Vec<u8> = batch.iter().flat_map(|line| octet_counted(line)).collect();
            let mut writer: &TcpStream = stream;
            writer
                .write_all(&frames)
                .and_then(|()| writer.flush())
                .map_err(|error| failure(format!("send: {error}")))
        }
    }
}

/// Whether the server has closed its side (or the connection broke): a server never sends
/// anything on a syslog connection, so a readable end of stream means it is gone, and what
/// would be written next would be lost.
fn closed_by_peer(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_err() || closed
}
