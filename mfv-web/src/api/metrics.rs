//! `GET /metrics` in Prometheus' text format: the host's CPU and memory (from `/proc`), each
//! VM's CPU, memory, disk and network counters (from libvirt), and this server's requests by
//! operation and status with their latencies (recorded by the dispatcher).
//!
//! It is a route of the table like any other, so it needs a caller whose role may view the
//! inventory: Prometheus scrapes it with an API token as bearer. The counters are read when
//! scraped, never sampled in the background, so an unscraped host does no work for them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use mfv_auth::Permission;
use mfv_vm::{Hypervisor, VmInfo};
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::doc::Answer;
use super::table::{Access, Call, HandlerFuture, Route};

/// The upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::GET,
        path: "/metrics",
        access: Access::Allowed(Permission::ViewInventory),
        max_body: 0,
        query: &[],
        request: None,
        answer: Answer::Metrics,
        operation: "metrics",
        summary: "Host, VM and HTTP metrics in Prometheus' text format",
        handler: serve,
    }]
}

/// The requests answered so far, by operation and status, with their latencies.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    by_route: Mutex<BTreeMap<(&'static str, u16), Latencies>>,
}

/// One operation's and status's count and latencies.
#[derive(Debug, Default, Clone)]
struct Latencies {
    /// Requests per bucket of [`LATENCY_BUCKETS`] (not cumulative), and one past the last.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    count: u64,
    sum_seconds: f64,
}

impl HttpMetrics {
    /// Counts one request of `operation` answered with `status` after `took`.
    pub fn record(&self, operation: &'static str, status: StatusCode, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        let mut by_route = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let latencies = by_route.entry((operation, status.as_u16())).or_default();
        latencies.buckets[bucket] += 1;
        latencies.count += 1;
        latencies.sum_seconds += seconds;
    }

    fn write(&self, text: &mut String) {
        let by_route = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        text.push_str(
            "# HELP mfv_http_requests_total Requests answered, by operation and status.\n\
             # TYPE mfv_http_requests_total counter\n",
        );
        for ((operation, status), latencies) in &by_route {
            let _ = writeln!(
                text,
                "mfv_http_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {}",
                latencies.count
            );
        }
        text.push_str(
            "# HELP mfv_http_request_duration_seconds Time from the request's head to its \
             answer, by operation.\n# TYPE mfv_http_request_duration_seconds histogram\n",
        );
        let mut by_operation: BTreeMap<&str, Latencies> = BTreeMap::new();
        for ((operation, _), latencies) in &by_route {
            let total = by_operation.entry(operation).or_default();
            for (sum, add) in total.buckets.iter_mut().zip(latencies.buckets) {
                *sum += add;
            }
            total.count += latencies.count;
            total.sum_seconds += latencies.sum_seconds;
        }
        for (operation, latencies) in &by_operation {
            let mut cumulative = 0;
            for (bound, in_bucket) in LATENCY_BUCKETS.iter().zip(latencies.buckets) {
                cumulative += in_bucket;
                let _ = writeln!(
                    text,
                    "mfv_http_request_duration_seconds_bucket{{operation=\"{operation}\",\
                     le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                text,
                "mfv_http_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} \
                 {count}\nmfv_http_request_duration_seconds_sum{{operation=\"{operation}\"}} \
                 {sum}\nmfv_http_request_duration_seconds_count{{operation=\"{operation}\"}} \
                 {count}",
                count = latencies.count,
                sum = latencies.sum_seconds
            );
        }
    }
}

fn serve(call: Call) -> HandlerFuture {
    Box::pin(async move {
        let proc_root = call.state.proc_root.clone();
        let libvirt = call.state.libvirt.clone();
        let (host, vms) = tokio::task::spawn_blocking(move || {
            (
                host_metrics(&proc_root),
                libvirt.map(|uri| vm_metrics(&uri.0)),
            )
        })
        .await
        .unwrap_or_else(|error| (format!("# host metrics failed: {error}\n"), None));
        let mut text = host;
        match vms {
            Some(Ok(vms)) => {
                text.push_str("mfv_libvirt_up 1\n");
                text.push_str(&vms);
            }
            Some(Err(error)) => {
                let _ = writeln!(text, "# libvirt: {}", one_line(&error));
                text.push_str("mfv_libvirt_up 0\n");
            }
            None => text.push_str("mfv_libvirt_up 0\n"),
        }
        call.state.http_metrics.write(&mut text);
        let mut response = Response::new(text.into());
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        Ok(response)
    })
}

/// The host's CPU time by mode and its memory, from `proc_root` (`/proc`); a file that
/// cannot be read is said in a comment and its metrics are left out.
pub fn host_metrics(proc_root: &Path) -> String {
    let mut text = String::new();
    match std::fs::read_to_string(proc_root.join("stat")) {
        Ok(stat) => {
            text.push_str(
                "# HELP mfv_host_cpu_seconds_total CPU time of all CPUs, by mode.\n\
                 # TYPE mfv_host_cpu_seconds_total counter\n",
            );
            for (mode, seconds) in cpu_seconds(&stat) {
                let _ = writeln!(
                    text,
                    "mfv_host_cpu_seconds_total{{mode=\"{mode}\"}} {seconds}"
                );
            }
        }
        Err(error) => {
            let _ = writeln!(text, "# {}/stat: {error}", proc_root.display());
        }
    }
    match std::fs::read_to_string(proc_root.join("meminfo")) {
        Ok(meminfo) => {
            text.push_str(
                "# HELP mfv_host_memory_bytes The host's memory: total, and available for new \
                 work.\n# TYPE mfv_host_memory_bytes gauge\n",
            );
            for (key, kind) in [("MemTotal", "total"), ("MemAvailable", "available")] {
                if let Some(bytes) = meminfo_bytes(&meminfo, key) {
                    let _ = writeln!(text, "mfv_host_memory_bytes{{kind=\"{kind}\"}} {bytes}");
                }
            }
        }
        Err(error) => {
            let _ = writeln!(text, "# {}/meminfo: {error}", proc_root.display());
        }
    }
    text
}

/// The first line of `/proc/stat` (all CPUs) as seconds per mode; the kernel counts in
/// USER_HZ, 100 per second on every architecture Linux exports it on.
fn cpu_seconds(stat: &str) -> Vec<(&'static str, f64)> {
    const MODES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return Vec::new();
    };
    MODES
        .iter()
        .zip(line.split_whitespace().skip(1))
        .filter_map(|(mode, ticks)| Some((*mode, ticks.parse::<u64>().ok()? as f64 / 100.0)))
        .collect()
}

/// `key`'s value in `/proc/meminfo`, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|line| line.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Each VM's counters from libvirt at `uri`.
fn vm_metrics(uri: &str) -> Result<String, String> {
    let hypervisor = Hypervisor::connect(uri).map_err(|error| error.to_string())?;
    let mut infos = Vec::new();
    for summary in hypervisor.list().map_err(|error| error.to_string())? {
        // A VM undefined between the listing and this read is simply left out.
        if let Ok(info) = hypervisor.info(&summary.name) {
            infos.push(info);
        }
    }
    Ok(format_vm_metrics(&infos))
}

/// The counters of `vms` in the text format.
fn format_vm_metrics(vms: &[VmInfo]) -> String {
    let mut text = String::from(
        "# HELP mfv_vm_up Whether the VM runs (1) or not (0).\n# TYPE mfv_vm_up gauge\n\
         # HELP mfv_vm_cpu_seconds_total CPU time the VM used.\n\
         # TYPE mfv_vm_cpu_seconds_total counter\n\
         # HELP mfv_vm_memory_bytes Memory the VM has.\n# TYPE mfv_vm_memory_bytes gauge\n\
         # HELP mfv_vm_disk_read_bytes_total Bytes read from the VM's disk.\n\
         # TYPE mfv_vm_disk_read_bytes_total counter\n\
         # HELP mfv_vm_disk_written_bytes_total Bytes written to the VM's disk.\n\
         # TYPE mfv_vm_disk_written_bytes_total counter\n\
         # HELP mfv_vm_network_receive_bytes_total Bytes the VM's NIC received.\n\
         # TYPE mfv_vm_network_receive_bytes_total counter\n\
         # HELP mfv_vm_network_transmit_bytes_total Bytes the VM's NIC sent.\n\
         # TYPE mfv_vm_network_transmit_bytes_total counter\n",
    );
    for info in vms {
        let vm = label(&info.summary.name);
        let up = u8::from(info.summary.state == mfv_vm::VmState::Running);
        let _ = writeln!(
            text,
            "mfv_vm_up{{vm=\"{vm}\"}} {up}\n\
             mfv_vm_cpu_seconds_total{{vm=\"{vm}\"}} {}\n\
             mfv_vm_memory_bytes{{vm=\"{vm}\"}} {}",
            info.cpu_time_ns as f64 / 1e9,
            info.memory_kib * 1024
        );
        for disk in &info.disks {
            let target = label(&disk.target);
            let _ = writeln!(
                text,
                "mfv_vm_disk_read_bytes_total{{vm=\"{vm}\",disk=\"{target}\"}} {}\n\
                 mfv_vm_disk_written_bytes_total{{vm=\"{vm}\",disk=\"{target}\"}} {}",
                disk.read_bytes, disk.write_bytes
            );
        }
        for nic in &info.nics {
            let target = label(&nic.target);
            let _ = writeln!(
                text,
                "mfv_vm_network_receive_bytes_total{{vm=\"{vm}\",nic=\"{target}\"}} {}\n\
                 mfv_vm_network_transmit_bytes_total{{vm=\"{vm}\",nic=\"{target}\"}} {}",
                nic.rx_bytes, nic.tx_bytes
            );
        }
    }
    text
}

/// `value` as a label value: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_and_memory_come_from_proc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "cpu  250 0 100 1000 5 0 3 0 0 0\ncpu0 250 0 100 1000 5 0 3 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:        2048 kB\nMemFree:          100 kB\nMemAvailable:    1024 kB\n",
        )
        .unwrap();
        let text = host_metrics(dir.path());
        assert!(
            text.contains("mfv_host_cpu_seconds_total{mode=\"user\"} 2.5\n"),
            "{text}"
        );
        assert!(
            text.contains("mfv_host_cpu_seconds_total{mode=\"idle\"} 10\n"),
            "{text}"
        );
        assert!(
            text.contains("mfv_host_memory_bytes{kind=\"total\"} 2097152\n"),
            "{text}"
        );
        assert!(text.contains("mfv_host_memory_bytes{kind=\"available\"} 1048576\n"));
    }

    #[test]
    fn unreadable_files_are_said_and_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let text = host_metrics(dir.path());
        assert!(text.starts_with('#'), "{text}");
        assert!(!text.contains("mfv_host_cpu_seconds_total{"), "{text}");
    }

    #[test]
    fn latencies_are_cumulative_buckets_per_operation() {
        let metrics = HttpMetrics::default();
        metrics.record("login", StatusCode::OK, Duration::from_micros(300));
        metrics.record("login", StatusCode::UNAUTHORIZED, Duration::from_millis(30));
        let mut text = String::new();
        metrics.write(&mut text);
        assert!(text.contains("mfv_http_requests_total{operation=\"login\",status=\"200\"} 1\n"));
        assert!(text.contains("mfv_http_requests_total{operation=\"login\",status=\"401\"} 1\n"));
        assert!(text.contains(
            "mfv_http_request_duration_seconds_bucket{operation=\"login\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "mfv_http_request_duration_seconds_bucket{operation=\"login\",le=\"0.05\"} 2\n"
        ));
        assert!(text.contains("mfv_http_request_duration_seconds_count{operation=\"login\"} 2\n"));
    }

    #[test]
    fn each_vm_has_its_counters_by_disk_and_nic() {
        let info = VmInfo {
            summary: mfv_vm::VmSummary {
                name: "web-1".into(),
                uuid: "00000000-0000-0000-0000-000000000001".into(),
                state: mfv_vm::VmState::Running,
                autostart: false,
                persistent: true,
            },
            vcpus: 2,
            memory_kib: 1024,
            max_memory_kib: 1024,
            cpu_time_ns: 1_500_000_000,
            disks: vec![mfv_vm::DiskCounters {
                target: "vda".into(),
                read_bytes: 10,
                write_bytes: 20,
                read_requests: 1,
                write_requests: 2,
            }],
            nics: vec![mfv_vm::NicCounters {
                target: "vnet0".into(),
                rx_bytes: 30,
                tx_bytes: 40,
                rx_packets: 3,
                tx_packets: 4,
            }],
        };
        let text = format_vm_metrics(&[info]);
        for line in [
            "mfv_vm_up{vm=\"web-1\"} 1\n",
            "mfv_vm_cpu_seconds_total{vm=\"web-1\"} 1.5\n",
            "mfv_vm_memory_bytes{vm=\"web-1\"} 1048576\n",
            "mfv_vm_disk_read_bytes_total{vm=\"web-1\",disk=\"vda\"} 10\n",
            "mfv_vm_disk_written_bytes_total{vm=\"web-1\",disk=\"vda\"} 20\n",
            "mfv_vm_network_receive_bytes_total{vm=\"web-1\",nic=\"vnet0\"} 30\n",
            "mfv_vm_network_transmit_bytes_total{vm=\"web-1\",nic=\"vnet0\"} 40\n",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
