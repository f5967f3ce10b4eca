//! The forwarder against real UDP and TCP servers on 127.0.0.1: what arrives, byte for byte;
//! a server that is down, then up, then restarted; a name that does not resolve yet; a server
//! that stops reading; the host's lines under their programs. Whatever the server does, `send`
//! returns at once.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::format::{TCP_MAX_MESSAGE, UDP_MAX_MESSAGE, rfc5424};
use super::*;
use crate::network::LineSink;

const HOSTNAME: &str = "vmhost";
/// Deadline for anything awaited; the machine may be loaded.
const WAIT: Duration = Duration::from_secs(10);
/// Longer than any `send` may take: it only takes a lock.
const NEVER_WAITS: Duration = Duration::from_millis(200);

fn record(text: &str) -> LogRecord {
    LogRecord {
        time: UNIX_EPOCH + Duration::from_micros(1_795_668_780_012_345),
        app_name: "libvirtd".to_owned(),
        proc_id: Some(310),
        text: text.to_owned(),
    }
}

/// Short retries, so the tests do not wait seconds for a reconnect.
fn fast() -> ForwarderSettings {
    ForwarderSettings {
        first_retry: Duration::from_millis(20),
        last_retry: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        quiet_start: Duration::ZERO,
        ..ForwarderSettings::default()
    }
}

/// The lines the forwarder reports, kept for the test to read.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<String>>>);

impl Reports {
    fn sink(&self) -> LineSink {
        let lines = Arc::clone(&self.0);
        Arc::new(move |line| lines.lock().unwrap().push(line))
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a line containing `needle`.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no report with {needle:?}: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn start(url: &str, settings: ForwarderSettings, reports: &Reports) -> RemoteLog {
    RemoteLog::with_settings(url.parse().unwrap(), HOSTNAME, settings, reports.sink()).unwrap()
}

/// Sends `text` and checks that the call returned at once.
fn send_at_once(log: &RemoteLog, text: &str) {
    let before = Instant::now();
    log.send(&record(text));
    let took = before.elapsed();
    assert!(took < NEVER_WAITS, "send of {text:?} took {took:?}");
}

/// Reads one octet-counted frame.
fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut length = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte)?;
        if byte[0] == b' ' {
            break;
        }
        assert!(byte[0].is_ascii_digit(), "not a frame length: {length:?}");
        length.push(byte[0]);
    }
    let length: usize = String::from_utf8(length).unwrap().parse().unwrap();
    let mut message = vec![0u8; length];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// The texts of the next `count` frames on `stream`.
fn read_texts(stream: &mut TcpStream, count: usize) -> Vec<String> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let prefix = "<30>1 2026-11-26T04:53:00.012345Z vmhost libvirtd 310 - - ";
    (0..count)
        .map(|_| {
            let message = String::from_utf8(read_frame(stream).unwrap()).unwrap();
            message.strip_prefix(prefix).unwrap_or(&message).to_owned()
        })
        .collect()
}

fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nothing connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("accept: {error}"),
        }
    }
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn udp_sends_one_datagram_per_line_and_cuts_long_ones() {
    let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    let port = server.local_addr().unwrap().port();
    let reports = Reports::default();
    let log = start(&format!("udp://127.0.0.1:{port}"), fast(), &reports);
    send_at_once(&log, "first line");
    send_at_once(&log, "second line");
    send_at_once(&log, &"x".repeat(5000));
    let mut buffer = [0u8; 65536];
    let mut datagrams = Vec::new();
    for _ in 0..3 {
        let length = server.recv(&mut buffer).unwrap();
        datagrams.push(buffer[..length].to_vec());
    }
    assert_eq!(
        datagrams[0],
        b"<30>1 2026-11-26T04:53:00.012345Z vmhost libvirtd 310 - - first line"
    );
    assert_eq!(
        datagrams[1],
        rfc5424(HOSTNAME, &record("second line"), UDP_MAX_MESSAGE)
    );
    assert_eq!(datagrams[2].len(), UDP_MAX_MESSAGE);
    assert!(log.flush(WAIT));
    assert!(reports.lines().is_empty(), "{:?}", reports.lines());
}

#[test]
fn udp_to_a_closed_port_is_said_and_the_lines_go_once_a_server_listens() {
    let port = free_port();
    let reports = Reports::default();
    let log = start(&format!("udp://127.0.0.1:{port}"), fast(), &reports);
    // The first datagram draws an ICMP port unreachable; a later send reports it.
    let deadline = Instant::now() + WAIT;
    let mut sent = 0;
    while reports.count("cannot reach") == 0 {
        assert!(Instant::now() < deadline, "{:?}", reports.lines());
        send_at_once(&log, &format!("probe {sent}"));
        sent += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let said = reports.wait_for("cannot reach");
    assert_eq!(
        said,
        format!(
            "log: cannot reach udp://127.0.0.1:{port}: send: Connection refused (os error 111); \
             lines wait in memory and are sent once it answers"
        )
    );
    let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    send_at_once(&log, "after the server came");
    let mut buffer = [0u8; 4096];
    loop {
        let length = server.recv(&mut buffer).unwrap();
        if buffer[..length].ends_with(b"after the server came") {
            break;
        }
    }
    reports.wait_for(&format!("log: udp://127.0.0.1:{port} answers now"));
    assert_eq!(reports.count("cannot reach"), 1, "{:?}", reports.lines());
}

#[test]
fn tcp_frames_every_line_by_octet_counting_in_order() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let reports = Reports::default();
    let log = start(&format!("tcp://127.0.0.1:{port}"), fast(), &reports);
    send_at_once(&log, "first line");
    for number in 0..200 {
        send_at_once(&log, &format!("line {number}"));
    }
    send_at_once(&log, &"y".repeat(20_000));
    let mut stream = accept(&listener);
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut first = vec![0u8; 3 + 68];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(
        first,
        b"68 <30>1 2026-11-26T04:53:00.012345Z vmhost libvirtd 310 - - first line"
    );
    let texts = read_texts(&mut stream, 200);
    let expected: Vec<String> = (0..200).map(|number| format!("line {number}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(read_frame(&mut stream).unwrap().len(), TCP_MAX_MESSAGE);
    assert!(log.flush(WAIT));
    assert!(reports.lines().is_empty(), "{:?}", reports.lines());
}

#[test]
fn a_tcp_server_down_then_up_gets_the_newest_lines_and_the_loss_is_said_once() {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let one_line = rfc5424(HOSTNAME, &record("line 10"), TCP_MAX_MESSAGE).len();
    let settings = ForwarderSettings {
        queue_bytes: 5 * one_line,
        ..fast()
    };
    let reports = Reports::default();
    let log = start(&url, settings, &reports);
    for number in 10..30 {
        send_at_once(&log, &format!("line {number}"));
    }
    let said = reports.wait_for("cannot reach");
    assert!(
        said.starts_with(&format!(
            "log: cannot reach {url}: 127.0.0.1:{port}: Connection refused"
        )),
        "{said}"
    );
    // Several retries fail meanwhile; the outage is said once.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!log.flush(Duration::from_millis(10)));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut stream = accept(&listener);
    assert_eq!(
        read_texts(&mut stream, 5),
        ["line 25", "line 26", "line 27", "line 28", "line 29"]
    );
    assert!(log.flush(WAIT));
    reports.wait_for(&format!(
        "log: 15 lines for {url} were lost while they could not be sent"
    ));
    assert_eq!(
        reports.lines(),
        [
            said,
            format!("log: {url} answers now (127.0.0.1:{port})"),
            format!("log: 15 lines for {url} were lost while they could not be sent"),
        ]
    );

    // The server restarts: its end of the connection closes; the next lines go on a new one.
    drop(stream);
    std::thread::sleep(Duration::from_millis(50));
    send_at_once(&log, "after the restart");
    let mut stream = accept(&listener);
    assert_eq!(read_texts(&mut stream, 1), ["after the restart"]);
    reports.wait_for(&format!(
        "log: cannot reach {url}: the server closed the connection"
    ));
    assert_eq!(reports.count("answers now"), 2, "{:?}", reports.lines());
    assert_eq!(reports.count("were lost"), 1, "{:?}", reports.lines());
}

#[test]
fn a_server_that_answers_within_the_quiet_start_is_no_news() {
    let port = free_port();
    let settings = ForwarderSettings {
        quiet_start: Duration::from_secs(60),
        ..fast()
    };
    let reports = Reports::default();
    let log = start(&format!("tcp://127.0.0.1:{port}"), settings, &reports);
    send_at_once(&log, "before the lease");
    // Several attempts fail while the boot's network is not up yet.
    std::thread::sleep(Duration::from_millis(300));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut stream = accept(&listener);
    assert_eq!(read_texts(&mut stream, 1), ["before the lease"]);
    assert!(log.flush(WAIT));
    assert!(reports.lines().is_empty(), "{:?}", reports.lines());
}

#[test]
fn a_server_unreachable_past_the_quiet_start_is_reported() {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let settings = ForwarderSettings {
        quiet_start: Duration::from_millis(200),
        ..fast()
    };
    let reports = Reports::default();
    let started = Instant::now();
    let log = start(&url, settings, &reports);
    send_at_once(&log, "nobody listens");
    let said = reports.wait_for("cannot reach");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        said.starts_with(&format!(
            "log: cannot reach {url}: 127.0.0.1:{port}: Connection refused"
        )),
        "{said}"
    );
}

#[test]
fn a_name_that_does_not_resolve_yet_is_retried_and_said_once() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let address = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let settings = ForwarderSettings {
        resolver: Arc::new(move |host, port| {
            assert_eq!((host, port), ("loghost.example", 6514));
            match counted.fetch_add(1, Ordering::SeqCst) {
                0..3 => Err(io::Error::other("no DNS server yet")),
                _ => Ok(vec![address]),
            }
        }),
        ..fast()
    };
    let reports = Reports::default();
    let log = start("tcp://loghost.example:6514", settings, &reports);
    send_at_once(&log, "before the network");
    let mut stream = accept(&listener);
    assert_eq!(read_texts(&mut stream, 1), ["before the network"]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        reports.lines(),
        [
            "log: cannot reach tcp://loghost.example:6514: loghost.example does not resolve \
             (no DNS server yet); lines wait in memory and are sent once it answers"
                .to_owned(),
            format!("log: tcp://loghost.example:6514 answers now ({address})"),
        ]
    );
}

#[test]
fn a_name_without_addresses_is_said() {
    let settings = ForwarderSettings {
        resolver: Arc::new(|_, _| Ok(Vec::<SocketAddr>::new())),
        ..fast()
    };
    let reports = Reports::default();
    let log = start("udp://loghost.example", settings, &reports);
    send_at_once(&log, "nowhere to go");
    assert_eq!(
        reports.wait_for("cannot reach"),
        "log: cannot reach udp://loghost.example: loghost.example resolves to no address; \
         lines wait in memory and are sent once it answers"
    );
    assert!(!log.flush(Duration::from_millis(50)));
}

#[test]
fn a_server_that_stops_reading_never_holds_up_the_sender() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = ForwarderSettings {
        queue_bytes: 256 * 1024,
        write_timeout: Duration::from_millis(200),
        ..fast()
    };
    let reports = Reports::default();
    let log = start(&format!("tcp://127.0.0.1:{port}"), settings, &reports);
    let line = "z".repeat(4000);
    // Far more than the socket buffers and the queue hold: the queue drops, send never waits.
    let started = Instant::now();
    for _ in 0..5000 {
        send_at_once(&log, &line);
    }
    let _stream = accept(&listener);
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    // The write that found the buffers full timed out, and the connection counts as broken.
    reports.wait_for(&format!(
        "log: cannot reach tcp://127.0.0.1:{port}: send: Resource temporarily unavailable"
    ));
}

#[test]
fn the_hosts_console_lines_are_mfv_init_at_their_time_and_service_lines_the_service() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let reports = Reports::default();
    let remote = start(&format!("tcp://127.0.0.1:{port}"), fast(), &reports);
    let forwarding = HostLogForwarding::over(remote);
    // A line that waited 3 years: its stamp is at least two years ago.
    forwarding.console_line(Duration::from_secs(3 * 366 * 86_400), "phase mounts: ok");
    forwarding.service_line("libvirtd", 310, "libvirt version: 9.0.0");
    let mut stream = accept(&listener);
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let console = String::from_utf8(read_frame(&mut stream).unwrap()).unwrap();
    let service = String::from_utf8(read_frame(&mut stream).unwrap()).unwrap();
    let pid = std::process::id();
    assert!(
        console.ends_with(&format!(" vmhost mfv-init {pid} - - phase mounts: ok")),
        "{console}"
    );
    let year = |message: &str| -> u64 { message["<30>1 ".len()..][..4].parse().unwrap() };
    assert!(
        year(&console) + 2 <= year(&service),
        "{console} / {service}"
    );
    assert!(
        service.ends_with(" vmhost libvirtd 310 - - libvirt version: 9.0.0"),
        "{service}"
    );
    assert!(forwarding.flush(WAIT));
}
