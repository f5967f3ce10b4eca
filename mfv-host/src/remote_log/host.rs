//! The host's logs as syslog messages: PID 1's console lines under the app-name `mfv-init`,
//! each supervised service's output lines under the service's name, each with the process
//! that logged it. PID 1 hands lines over as they are logged; those that waited in memory
//! before forwarding started keep the time they were logged.

use std::time::{Duration, SystemTime};

use mfv_config::schema::RemoteLogServer;

use super::{LogRecord, RemoteLog, RemoteLogError};
use crate::network::LineSink;

/// The app-name of PID 1's own console lines.
pub const INIT_APP_NAME: &str = "mfv-init";

/// Forwarding of one host's logs to the syslog server of its configuration. Clones share the
/// forwarder; it stops once every clone is gone.
#[derive(Debug, Clone)]
pub struct HostLogForwarding {
    remote: RemoteLog,
    /// The process whose console lines [`HostLogForwarding::console_line`] sends.
    init_pid: u32,
}

impl HostLogForwarding {
    /// Starts forwarding this process's console lines and the services' output to `server`
    /// as the host `hostname`; what happens to the connection goes to `report`.
    pub fn start(
        server: RemoteLogServer,
        hostname: &str,
        report: LineSink,
    ) -> Result<HostLogForwarding, RemoteLogError> {
        Ok(HostLogForwarding::over(RemoteLog::start(
            server, hostname, report,
        )?))
    }

    /// Forwarding through an existing `remote`.
    pub fn over(remote: RemoteLog) -> HostLogForwarding {
        HostLogForwarding {
            remote,
            init_pid: std::process::id(),
        }
    }

    /// The server the lines go to.
    pub fn server(&self) -> &RemoteLogServer {
        self.remote.server()
    }

    /// Queues a console line of PID 1 that was logged `ago` before now.
    pub fn console_line(&self, ago: Duration, text: &str) {
        self.remote.send(&LogRecord {
            time: logged_at(SystemTime::now(), ago),
            app_name: INIT_APP_NAME.to_owned(),
            proc_id: Some(self.init_pid),
            text: text.to_owned(),
        });
    }

    /// Queues an output line that the service `service`, running as process `pid`, logged
    /// just now.
    pub fn service_line(&self, service: &str, pid: u32, text: &str) {
        self.remote.send(&LogRecord {
            time: SystemTime::now(),
            app_name: service.to_owned(),
            proc_id: Some(pid),
            text: text.to_owned(),
        });
    }

    /// Waits at most `timeout` for the queued lines to leave; whether they did. For the
    /// shutdown, whose last lines are worth a moment.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.remote.flush(timeout)
    }
}

/// The real-time clock's reading `ago` before `now`; a time the system cannot represent
/// becomes the epoch (and a time before the epoch is sent as RFC 5424's NILVALUE).
fn logged_at(now: SystemTime, ago: Duration) -> SystemTime {
    now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn a_line_that_waited_keeps_the_time_it_was_logged() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            logged_at(now, Duration::from_secs(40)),
            UNIX_EPOCH + Duration::from_secs(60)
        );
        assert_eq!(logged_at(now, Duration::MAX), UNIX_EPOCH);
    }
}
