//! The SNTP client task: runs an [`SntpMachine`] over an [`SntpTransport`] and a
//! [`ClockSetter`], with tokio timers, until its stop future completes or a fatal error.

use std::collections::VecDeque;
use std::future::Future;

use tokio::sync::mpsc::UnboundedSender;

use super::machine::{SntpAction, SntpMachine};
use super::packet::Sample;
use super::{ClockSetter, SntpConfig, SntpError, SntpEvent, SntpTransport};
use mfv_linux::error_chain;

/// Largest UDP payload; an NTP reply without extension fields has 48 bytes.
const RECEIVE_BUFFER_LEN: usize = 65_535;

/// How the client ended when asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SntpExit {
    /// How many rounds corrected the clock.
    pub syncs: u64,
    /// The sample of the last correction, if any.
    pub last_sync: Option<Sample>,
}

/// An SNTP client for the host, ready to run as a task. See the [module
/// documentation](super) for an example.
#[derive(Debug)]
pub struct SntpClient<T, C> {
    config: SntpConfig,
    transport: T,
    clock: C,
    events: Option<UnboundedSender<SntpEvent>>,
}

/// What woke the client up.
enum Wakeup {
    Stop,
    Packet(std::io::Result<(usize, std::net::SocketAddr)>),
    Timer,
}

impl<T: SntpTransport, C: ClockSetter> SntpClient<T, C> {
    /// A client for `config.servers` using `transport` and correcting `clock`.
    pub fn new(config: SntpConfig, transport: T, clock: C) -> SntpClient<T, C> {
        SntpClient {
            config,
            transport,
            clock,
            events: None,
        }
    }

    /// Reports events on `events`; a closed receiver is not an error.
    pub fn with_events(mut self, events: UnboundedSender<SntpEvent>) -> SntpClient<T, C> {
        self.events = Some(events);
        self
    }

    /// Runs until `stop` completes, or a fatal error: invalid settings, a socket that cannot
    /// receive, a clock that cannot be set, or every server refusing the client. A server
    /// that does not answer is never fatal: the client retries.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> Result<SntpExit, SntpError> {
        let mut machine = SntpMachine::new(&self.config, now())?;
        let mut buffer = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut stop = std::pin::pin!(stop);
        loop {
            let deadline = tokio::time::Instant::from_std(machine.next_deadline());
            let wakeup = tokio::select! {
                biased;
                () = &mut stop => Wakeup::Stop,
                received = self.transport.recv(&mut buffer) => Wakeup::Packet(received),
                () = tokio::time::sleep_until(deadline) => Wakeup::Timer,
            };
            // The clock is read first: T4 of a reply is as close to its arrival as can be.
            let clock = self.clock.now();
            let actions = match wakeup {
                Wakeup::Stop => {
                    return Ok(SntpExit {
                        syncs: machine.syncs(),
                        last_sync: machine.last_sync(),
                    });
                }
                Wakeup::Packet(Ok((length, from))) => {
                    machine.on_packet(now(), clock, from, &buffer[..length])
                }
                Wakeup::Packet(Err(source)) => {
                    return Err(SntpError::Receive {
                        local: self.transport.local_addr(),
                        source,
                    });
                }
                Wakeup::Timer => machine.on_timer(now(), clock)?,
            };
            self.execute(&mut machine, actions).await?;
        }
    }

    async fn execute(
        &mut self,
        machine: &mut SntpMachine,
        actions: Vec<SntpAction>,
    ) -> Result<(), SntpError> {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                SntpAction::Send { to, packet } => {
                    if let Err(error) = self.transport.send(to, &packet).await {
                        queue.extend(machine.on_send_failed(now(), to, error_chain(&error)));
                    }
                }
                SntpAction::Step(sample) => {
                    self.clock
                        .step(sample.offset)
                        .map_err(|source| clock_failed("step", sample, source))?;
                }
                SntpAction::Slew(sample) => {
                    self.clock
                        .slew(sample.offset)
                        .map_err(|source| clock_failed("slew", sample, source))?;
                }
                SntpAction::Event(event) => self.report(event),
            }
        }
        Ok(())
    }

    fn report(&self, event: SntpEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

fn clock_failed(change: &'static str, sample: Sample, source: std::io::Error) -> SntpError {
    SntpError::SetClock {
        change,
        offset: sample.offset,
        server: sample.server,
        source,
    }
}

/// The current time on tokio's clock (which tests may pause and advance).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
