//! The DHCP client task: runs a [`DhcpMachine`] over a [`DhcpTransport`] and a
//! [`LeaseApplier`], with tokio timers, until shutdown or a fatal error.

use std::future::Future;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::machine::{DhcpAction, DhcpMachine};
use super::{
    DhcpConfig, DhcpError, DhcpEvent, DhcpTransport, Lease, LeaseApplier, load_lease, save_lease,
};

/// Largest UDP payload; a DHCP reply is usually 300 to 576 bytes.
const RECEIVE_BUFFER_LEN: usize = 65_535;

/// How the client ended when asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpExit {
    /// The lease was released and its address removed.
    Released(Lease),
    /// The lease stays configured (release on shutdown was off).
    LeftConfigured(Lease),
    /// No lease was held.
    Unbound,
}

/// A DHCP client for one interface, ready to run as a task.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use mfv_net::Netlink;
/// use mfv_net::dhcp::{DhcpClient, DhcpConfig, NetlinkLeaseApplier, UdpTransport, parse_mac};
///
/// let netlink = Netlink::connect()?;
/// let link = netlink.link_by_name("eth0").await?;
/// netlink.set_up("eth0").await?;
/// let mac = parse_mac(link.mac.as_deref().unwrap_or_default())?;
/// let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let client = DhcpClient::new(
///     DhcpConfig::new("eth0", mac),
///     UdpTransport::bind("eth0")?,
///     NetlinkLeaseApplier::new(netlink, Some("/etc/resolv.conf".into())),
/// )
/// .with_events(events);
/// let task = tokio::spawn(client.run(async move {
///     let _ = stopped.await;
/// }));
/// while let Some(event) = received.recv().await {
///     println!("{event:?}");
/// #   break;
/// }
/// let _ = stop.send(());
/// task.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DhcpClient<T, A> {
    config: DhcpConfig,
    transport: T,
    applier: A,
    events: Option<UnboundedSender<DhcpEvent>>,
}

/// What woke the client up.
enum Wakeup {
    Shutdown,
    Packet(std::io::Result<usize>),
    Timer,
}

impl<T: DhcpTransport, A: LeaseApplier> DhcpClient<T, A> {
    /// A client for `config.interface` using `transport` and `applier`.
    pub fn new(config: DhcpConfig, transport: T, applier: A) -> DhcpClient<T, A> {
        DhcpClient {
            config,
            transport,
            applier,
            events: None,
        }
    }

    /// Reports events on `events`; a closed receiver is not an error.
    pub fn with_events(mut self, events: UnboundedSender<DhcpEvent>) -> DhcpClient<T, A> {
        self.events = Some(events);
        self
    }

    /// Runs until `shutdown` completes (then releases the lease, if so configured) or a
    /// fatal error: no first lease within the acquisition timeout, a socket error, or a
    /// failure to configure the interface.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<DhcpExit, DhcpError> {
        let mut machine = DhcpMachine::new(&self.config, now())?;
        let remembered = self.remembered_lease();
        let actions = machine.start(now(), remembered.as_ref());
        self.execute(actions).await?;
        let mut buffer = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let deadline = machine.next_deadline();
            let timer = async {
                match deadline {
                    Some(deadline) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let wakeup = tokio::select! {
                biased;
                () = &mut shutdown => Wakeup::Shutdown,
                received = self.transport.recv(&mut buffer) => Wakeup::Packet(received),
                () = timer => Wakeup::Timer,
            };
            let actions = match wakeup {
                Wakeup::Shutdown => return self.stop(&mut machine).await,
                Wakeup::Packet(Ok(length)) => machine.on_packet(now(), &buffer[..length]),
                Wakeup::Packet(Err(source)) => {
                    return Err(DhcpError::Transport {
                        interface: self.config.interface.clone(),
                        action: "receive DHCP packets",
                        source,
                    });
                }
                Wakeup::Timer => machine.on_timer(now())?,
            };
            self.execute(actions).await?;
        }
    }

    /// The lease in the lease file, if there is a usable one.
    fn remembered_lease(&self) -> Option<Lease> {
        let path = self.config.lease_file.as_ref()?;
        match load_lease(path, &self.config.interface) {
            Ok(lease) => lease,
            Err(error) => {
                self.report(DhcpEvent::LeaseFileProblem {
                    problem: mfv_linux::error_chain(&error),
                });
                None
            }
        }
    }

    async fn stop(&mut self, machine: &mut DhcpMachine) -> Result<DhcpExit, DhcpError> {
        if !self.config.release_on_shutdown {
            return Ok(machine
                .lease()
                .cloned()
                .map_or(DhcpExit::Unbound, DhcpExit::LeftConfigured));
        }
        let mut released = None;
        for action in machine.release(now()) {
            match action {
                // The address goes whether or not the server hears the RELEASE: its lease
                // then simply runs out.
                DhcpAction::Send { to, packet } => {
                    let _ = self.transport.send(to, &packet).await;
                }
                DhcpAction::Event(DhcpEvent::Released(lease)) => {
                    released = Some(lease.clone());
                    self.report(DhcpEvent::Released(lease));
                }
                other => self.execute(vec![other]).await?,
            }
        }
        Ok(released.map_or(DhcpExit::Unbound, DhcpExit::Released))
    }

    async fn execute(&mut self, actions: Vec<DhcpAction>) -> Result<(), DhcpError> {
        let interface = self.config.interface.clone();
        for action in actions {
            match action {
                DhcpAction::Send { to, packet } => {
                    self.transport.send(to, &packet).await.map_err(|source| {
                        DhcpError::Transport {
                            interface: interface.clone(),
                            action: "send a DHCP packet",
                            source,
                        }
                    })?;
                }
                DhcpAction::Apply { previous, lease } => {
                    self.applier
                        .apply(&interface, previous.as_ref(), &lease)
                        .await?;
                    if let Some(path) = &self.config.lease_file
                        && let Err(error) = save_lease(path, &interface, &lease)
                    {
                        self.report(DhcpEvent::LeaseFileProblem {
                            problem: mfv_linux::error_chain(&error),
                        });
                    }
                }
                DhcpAction::Remove(lease) => self.applier.remove(&interface, &lease).await?,
                DhcpAction::Event(event) => self.report(event),
            }
        }
        Ok(())
    }

    fn report(&self, event: DhcpEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// The current time on tokio's clock (which tests may pause and advance).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
