//! Root-only test of a network change handed from the host daemon to PID 1, on real netlink:
//! cl0 gets its address from a real dnsmasq across a veth pair between two throwaway network
//! namespaces (server: srv0 192.0.2.1/24), then a `[network]` section making it static goes
//! through the hand-over files to PID 1's side ([`NetworkOwner`]) with [`NetlinkNetwork`]. Not
//! confirmed, it is rolled back at its deadline and the DHCP client runs again; confirmed, it
//! stays. PID 1's clock is simulated: no test waits for a deadline.

#[path = "../../mfv-net/tests/support/dnsmasq.rs"]
mod dnsmasq;
#[path = "../../mfv-net/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use dnsmasq::Dnsmasq;
use mfv_api::NetworkOutcome;
use mfv_host::network::handover::{
    NetworkAction, NetworkOwner, NetworkRequest, leave_request, take_request, wait_for_answer,
};
use mfv_host::network::{LineSink, LiveNetwork, NetlinkNetwork, NetworkPlan, configure};
use support::{ServerAndClient, TestNamespace, can_run_as_root};

const RANGE: &str = "192.0.2.50,192.0.2.60,255.255.255.0,2m";

/// cl0 static, as a client sends it.
const STATIC_CL0: &str = "[[network.interfaces]]\nname = \"cl0\"\nmode = \"static\"\n\
                          addresses = [\"192.0.2.99/24\"]\n";

/// PID 1 in the client's namespace: its network, its lines, the hand-over directory.
struct Pid1 {
    network: NetlinkNetwork,
    owner: NetworkOwner,
    lines: mpsc::Receiver<String>,
    run_dir: PathBuf,
}

impl Pid1 {
    /// Brings cl0 up by DHCP as the boot does and waits for its lease; returns the leased
    /// address too.
    fn boot(run_dir: &Path) -> Result<(Pid1, String)> {
        let (sender, lines) = mpsc::channel();
        let sink: LineSink = Arc::new(move |line| {
            let _ = sender.send(line);
        });
        let mut network = NetlinkNetwork::new(run_dir.join("resolv.conf"), sink);
        let section = mfv_config::schema::parse_network_section(
            "[[network.interfaces]]\nname = \"cl0\"\nmode = \"dhcp\"\n",
        )
        .map_err(|errors| anyhow::anyhow!("the boot's section is invalid: {errors:?}"))?;
        let plan = NetworkPlan::Config {
            device: PathBuf::from("/dev/test"),
            network: section,
        };
        let steps = configure(&mut network, &plan, "vmhost1", &mut |_| {})?;
        let mut pid1 = Pid1 {
            network,
            owner: NetworkOwner::new(LiveNetwork::new(steps, "vmhost1")),
            lines,
            run_dir: run_dir.to_owned(),
        };
        let leased = pid1.wait_for_lease()?;
        Ok((pid1, leased))
    }

    /// The address of cl0's next lease (`192.0.2.57/24`).
    fn wait_for_lease(&mut self) -> Result<String> {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.starts_with("net: cl0 bound ") => {
                    let address = line.split(' ').nth(3).unwrap_or_default();
                    return Ok(address.to_owned());
                }
                Ok(_) => {}
                Err(_) => bail!("no lease on cl0 within 10 s"),
            }
        }
    }

    /// The daemon leaves `action`, PID 1 serves it at `now`, the daemon reads the answer.
    fn ask(&mut self, action: NetworkAction, now: Duration) -> Result<NetworkOutcome> {
        let request = NetworkRequest::new(action, 1);
        leave_request(&self.run_dir, &request)?;
        let taken = take_request(&self.run_dir).context("no request left")?;
        for file in self
            .owner
            .serve(&self.run_dir, taken, &mut self.network, now, &mut |_| {})
        {
            std::fs::write(&file.path, &file.contents)
                .with_context(|| format!("write {}", file.path.display()))?;
        }
        let reply = wait_for_answer(&self.run_dir, &request.request_id, Duration::from_secs(1))?;
        Result::from(reply).map_err(|error| anyhow::anyhow!("{error}"))
    }
}

fn apply(secs: u32) -> NetworkAction {
    NetworkAction::Apply {
        network_toml: STATIC_CL0.to_owned(),
        confirm_within_secs: secs,
    }
}

/// cl0's IPv4 addresses.
fn addresses(client: &TestNamespace) -> Result<String> {
    client.ip(&["-4", "-brief", "addr", "show", "dev", "cl0"])
}

#[test]
fn a_change_rolls_back_at_its_deadline_and_stays_when_confirmed() -> Result<()> {
    if !can_run_as_root("a_change_rolls_back_at_its_deadline_and_stays_when_confirmed") {
        return Ok(());
    }
    let ServerAndClient { server, client } = ServerAndClient::new()?;
    let dnsmasq = Dnsmasq::start(server.name(), "srv0", RANGE, &[])?;
    let run = tempfile::tempdir()?;
    let path = format!("/run/netns/{}", client.name());
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("setns {path}"))?;
                let (mut pid1, leased) = Pid1::boot(run.path())
                    .with_context(|| format!("the boot's lease; dnsmasq: {}", dnsmasq.log()))?;
                let before = addresses(&client)?;
                ensure!(
                    leased.starts_with("192.0.2.") && before.contains(&leased),
                    "{leased}: {before}"
                );

                let second = Duration::from_secs(1);
                let outcome = pid1.ask(apply(5), 10 * second)?;
                let NetworkOutcome::Applied {
                    apply_id, changes, ..
                } = outcome
                else {
                    bail!("not applied: {outcome:?}");
                };
                ensure!(
                    changes.contains(&"add 192.0.2.99/24 to cl0".to_owned()),
                    "{changes:?}"
                );
                let applied = addresses(&client)?;
                ensure!(
                    applied.contains("192.0.2.99/24") && !applied.contains(&leased),
                    "{applied}"
                );

                // Nobody confirms: at the deadline the lease's address is back, and the DHCP
                // client with it.
                let mut lines = Vec::new();
                let file =
                    pid1.owner
                        .expire(run.path(), &mut pid1.network, 15 * second, &mut |line| {
                            lines.push(line)
                        });
                ensure!(file.is_some(), "nothing rolled back: {lines:?}");
                ensure!(
                    lines.last().map(String::as_str)
                        == Some("net: change 1 rolled back: not confirmed within 5 s"),
                    "{lines:?}"
                );
                let restored = addresses(&client)?;
                ensure!(
                    !restored.contains("192.0.2.99") && restored.contains(&leased),
                    "{restored}"
                );
                pid1.wait_for_lease()?;
                let late = pid1.ask(NetworkAction::Confirm { apply_id }, 16 * second)?;
                ensure!(
                    matches!(late, NetworkOutcome::RolledBack { .. }),
                    "{late:?}"
                );

                // Confirmed in time: it stays past its deadline.
                let outcome = pid1.ask(apply(5), 20 * second)?;
                let NetworkOutcome::Applied { apply_id, .. } = outcome else {
                    bail!("not applied: {outcome:?}");
                };
                let kept = pid1.ask(NetworkAction::Confirm { apply_id }, 24 * second)?;
                ensure!(kept == NetworkOutcome::Confirmed, "{kept:?}");
                let none =
                    pid1.owner
                        .expire(run.path(), &mut pid1.network, 60 * second, &mut |_| {});
                ensure!(none.is_none(), "a confirmed change expired");
                let kept = addresses(&client)?;
                ensure!(kept.contains("192.0.2.99/24"), "{kept}");
                Ok(())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
