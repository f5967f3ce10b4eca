//! `cargo xtask bench web`: wrk against the REST API's authenticated VM list, beside a
//! lighttpd + php-cgi reference doing the same job, recorded in BENCHMARKS.md.
//!
//! Our side is the real server: `mfv-web --dev` (release build) with a SQLite auth database
//! holding one viewer, and VMs on a private libvirtd (`mfv_tests::libvirtd`) with the VMs
//! defined and shut off. wrk logs in once and sends the session cookie with every
//! `GET /api/v1/vms`, so each request checks the session in SQLite and asks libvirt for the
//! list. The reference is what such a panel is often built from: lighttpd with mod_fastcgi
//! to php-cgi (4 children), a PHP script that checks the same session row in SQLite and
//! returns the same VMs, read from SQLite, as JSON. Both are compared over plain HTTP on
//! loopback (mfv-web's `--bench-http` listener exists for this alone); HTTPS is measured too.
//!
//! Every server runs under the tests' watchdog (`mfv_tests::server::ServerProcess`) in a temp
//! dir, so nothing outlives the run. The memory figure is the resident set of the server and
//! every process under it (php-cgi's children), summed from /proc.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mfv_tests::libvirtd::PrivateLibvirtd;
use mfv_tests::server::{ServerProcess, require_binary};
use serde_json::Value;

use crate::bench::{cores_and_cpu, package_versions, record, today};
use crate::bench_pages::PageFigures;
use crate::bench_vm::load_average;
use crate::{Workspace, cmd};

const WEB_HEADING: &str = "## REST API under load (`cargo xtask bench web`)";

/// wrk's threads, for every run.
const THREADS: u32 = 2;
/// Connections of the main comparison.
const CONNECTIONS: u32 = 32;
/// Connections of the soak (mfv-web serves at most 256 at once: `server::Limits`).
const SOAK_CONNECTIONS: u32 = 256;
/// php-cgi children under lighttpd.
const PHP_CHILDREN: u32 = 4;

/// The targets: requests/s at least this many times the reference's, p99 under this at
/// [`CONNECTIONS`], resident memory under this, and the soak's memory at the end within
/// this fraction of its start.
const TARGET_RATIO: f64 = 10.0;
const TARGET_P99_MS: f64 = 2.0;
const TARGET_RSS_MIB: f64 = 30.0;
const FLAT_TOLERANCE: f64 = 0.10;
/// The soak's memory is judged from this second on: before it, the connections' buffers are
/// still being filled (the first seconds' samples are shown, not judged).
const SOAK_WARM_UP_SECONDS: usize = 10;

/// The viewer wrk logs in as.
const USERNAME: &str = "bench";
const PASSWORD: &str = "a benchmark password";
/// mfv-web's session cookie (`mfv_web::api::dispatch::SESSION_COOKIE`).
const SESSION_COOKIE: &str = "__Host-mfv-session";
/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What `cargo xtask bench web` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebBenchOptions {
    /// Seconds of each run at [`CONNECTIONS`].
    pub seconds: u32,
    /// Seconds of the soak at [`SOAK_CONNECTIONS`].
    pub soak_seconds: u32,
    /// VMs defined and listed.
    pub vms: u32,
}

/// The programs the benchmark runs.
struct Programs {
    mfv: PathBuf,
    mfv_web: PathBuf,
    vm_bench: PathBuf,
    wrk: PathBuf,
    lighttpd: PathBuf,
    php_cgi: PathBuf,
}

/// Runs the benchmark and records it; fails if a run fails, not if a target is missed.
pub fn web(workspace: &Workspace, options: WebBenchOptions) -> Result<()> {
    if !crate::deps::is_root() {
        bail!(
            "cargo xtask bench web starts a private libvirtd in its own namespaces: run it as root"
        );
    }
    let programs = programs(workspace)?;
    let load_before = load_average()?;

    println!("private libvirtd: starting, defining {} VMs", options.vms);
    let libvirtd = PrivateLibvirtd::start()?;
    cmd::stdout(Command::new(&programs.vm_bench).args([
        "define",
        libvirtd.uri(),
        &options.vms.to_string(),
    ]))?;

    let ours = MfvWeb::start(&programs, libvirtd.uri())?;
    let cookie = ours.log_in()?;
    let vms = ours.vm_list(&cookie, options.vms)?;
    println!(
        "mfv-web: logged in, GET /api/v1/vms lists {} VMs",
        options.vms
    );

    let reference = Reference::start(&programs, &cookie, &vms)?;
    reference.check(&cookie, &vms)?;
    println!("lighttpd + php-cgi: answers the same {} VMs", options.vms);

    let header = format!("Cookie: {cookie}");
    let wrk = |url: &str, connections, seconds, server: &ServerProcess| {
        println!("wrk: {connections} connections, {seconds} s, {url}");
        let run = measure(&programs.wrk, url, &header, connections, seconds, server)?;
        println!("  {}", run.summary());
        anyhow::Ok(run)
    };
    let plain = wrk(
        &ours.url("http", "/api/v1/vms"),
        CONNECTIONS,
        options.seconds,
        &ours.server,
    )?;
    let https = wrk(
        &ours.url("https", "/api/v1/vms"),
        CONNECTIONS,
        options.seconds,
        &ours.server,
    )?;
    let session_only = wrk(
        &ours.url("http", "/api/v1/session"),
        CONNECTIONS,
        options.seconds,
        &ours.server,
    )?;
    let reference_run = wrk(
        &reference.url(),
        CONNECTIONS,
        options.seconds,
        &reference.server,
    )?;
    let soak = wrk(
        &ours.url("http", "/api/v1/vms"),
        SOAK_CONNECTIONS,
        options.soak_seconds,
        &ours.server,
    )?;
    // After the runs: what a browser's visits leave in the server does not count in their
    // memory figures.
    println!("headless Chromium: the pages' weight and the VM list's time to usable");
    let pages = crate::bench_pages::measure(&ours.url("https", ""), USERNAME, PASSWORD)?;
    println!("  {}", pages.summary());
    let rss_after_pages_kib = tree_rss_kib(ours.server.pid()?)?;
    println!(
        "  mfv-web's RSS after the visits: {:.1} MiB",
        mib(rss_after_pages_kib)
    );
    drop(reference);
    drop(ours);
    drop(libvirtd);
    let load_after = load_average()?;

    let figures = Figures {
        plain,
        https,
        session_only,
        reference: reference_run,
        soak,
        load: (load_before, load_after),
        response_bytes: (vms.to_string().len(), reference_bytes(&vms)?),
        pages,
        rss_after_pages_kib,
    };
    println!();
    print!("{}", figures.lines());
    let section = section(options, &machine_description(), &today(), &figures);
    println!("\n{section}");
    record(workspace, WEB_HEADING, &section)
}

/// Builds mfv, mfv-web and vm_bench (release) and finds wrk, lighttpd and php-cgi.
fn programs(workspace: &Workspace) -> Result<Programs> {
    let wrk = require_binary("wrk", "wrk")?;
    let lighttpd = require_binary("lighttpd", "lighttpd")?;
    let php_cgi = require_binary("php-cgi", "php-cgi")?;
    let modules = cmd::stdout(Command::new(&php_cgi).arg("-m"))?;
    if !modules.lines().any(|line| line.trim() == "sqlite3") {
        bail!(
            "php-cgi has no sqlite3 module: install the Debian package php-sqlite3 \
             (`cargo xtask deps` installs every package the benchmarks need)"
        );
    }
    crate::web::build(workspace)?;
    println!("building mfv, mfv-web and the mfv-vm example vm_bench (release)");
    cmd::run(workspace.cargo().args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "mfv-cli",
        "--bin",
        "mfv",
        "--package",
        "mfv-web",
        "--bin",
        "mfv-web",
    ]))?;
    cmd::run(workspace.cargo().args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "mfv-vm",
        "--example",
        "vm_bench",
    ]))?;
    let release = workspace.target.join("release");
    Ok(Programs {
        mfv: release.join("mfv"),
        mfv_web: release.join("mfv-web"),
        vm_bench: release.join("examples/vm_bench"),
        wrk,
        lighttpd,
        php_cgi,
    })
}

/// `mfv-web --dev` with its HTTPS and benchmark-only plain HTTP listeners.
struct MfvWeb {
    server: ServerProcess,
    https: SocketAddr,
    plain: SocketAddr,
}

impl MfvWeb {
    fn start(programs: &Programs, libvirt: &str) -> Result<MfvWeb> {
        let https = loopback(mfv_tests::free_local_port()?);
        let plain = loopback(mfv_tests::free_local_port()?);
        let mfv_web = programs.mfv_web.clone();
        let libvirt = libvirt.to_owned();
        let mut server = ServerProcess::new("mfv-web", |dir| {
            let args = [
                "--dev".to_owned(),
                "--auth-db".to_owned(),
                dir.join("users.sqlite").display().to_string(),
                "--libvirt".to_owned(),
                libvirt,
                "--https".to_owned(),
                https.to_string(),
                "--bench-http".to_owned(),
                plain.to_string(),
            ];
            (mfv_web, args.to_vec())
        })?;
        let mut add_user = Command::new(&programs.mfv);
        add_user
            .args([
                "user",
                "add",
                USERNAME,
                "--role",
                "viewer",
                "--password-stdin",
                "--db",
            ])
            .arg(server.dir().join("users.sqlite"));
        cmd::run_with_stdin(&mut add_user, format!("{PASSWORD}\n").as_bytes())?;
        server.start()?;
        server.wait_for_port(plain.port(), START_TIMEOUT)?;
        server.wait_for_port(https.port(), START_TIMEOUT)?;
        Ok(MfvWeb {
            server,
            https,
            plain,
        })
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        let address = if scheme == "https" {
            self.https
        } else {
            self.plain
        };
        format!("{scheme}://{address}{path}")
    }

    /// Logs the viewer in over plain HTTP: the `Cookie` header value.
    fn log_in(&self) -> Result<String> {
        let body = serde_json::json!({"username": USERNAME, "password": PASSWORD}).to_string();
        let answer = http(
            self.plain,
            &format!(
                "POST /api/v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.plain,
                body.len()
            ),
        )?;
        if answer.status != 200 {
            bail!(
                "logging in to mfv-web answered {}: {}; its log:\n{}",
                answer.status,
                answer.body,
                self.server.log()
            );
        }
        session_cookie(&answer.head).context("mfv-web's login set no session cookie")
    }

    /// `GET /api/v1/vms` once: its `vms`, which must be `expected` many.
    fn vm_list(&self, cookie: &str, expected: u32) -> Result<Value> {
        let answer = http(self.plain, &get_request("/api/v1/vms", self.plain, cookie))?;
        let vms = listed_vms(&answer, expected).context("mfv-web's GET /api/v1/vms")?;
        Ok(vms)
    }
}

/// lighttpd with php-cgi over FastCGI, and its SQLite file.
struct Reference {
    server: ServerProcess,
    address: SocketAddr,
}

/// The reference's request handler: the session check and the VM list, from SQLite.
const VMS_PHP: &str = r#"<?php
header('Content-Type: application/json');
$db = new SQLite3(__DIR__ . '/reference.sqlite', SQLITE3_OPEN_READONLY);
$token = $_COOKIE['__Host-mfv-session'] ?? '';
$check = $db->prepare('SELECT username, role, expires_at FROM sessions WHERE token_hash = :hash');
$check->bindValue(':hash', hash('sha256', $token, true), SQLITE3_BLOB);
$session = $check->execute()->fetchArray(SQLITE3_ASSOC);
if ($session === false || $session['expires_at'] < time()) {
    http_response_code(401);
    echo json_encode(['kind' => 'unauthorized', 'message' => 'log in first']);
    exit;
}
$vms = [];
$rows = $db->query('SELECT name, uuid, state, autostart, persistent FROM vms ORDER BY name');
while ($row = $rows->fetchArray(SQLITE3_ASSOC)) {
    $row['autostart'] = (bool) $row['autostart'];
    $row['persistent'] = (bool) $row['persistent'];
    $vms[] = $row;
}
echo json_encode(['vms' => $vms]);
"#;

/// Makes the reference's SQLite file from `vms.json` and `token.txt` beside it (run once by
/// php-cgi from the command line).
const SETUP_PHP: &str = r#"<?php
$db = new SQLite3(__DIR__ . '/reference.sqlite');
$db->exec('CREATE TABLE sessions (token_hash BLOB PRIMARY KEY, username TEXT NOT NULL,
    role TEXT NOT NULL, expires_at INTEGER NOT NULL)');
$db->exec('CREATE TABLE vms (name TEXT PRIMARY KEY, uuid TEXT NOT NULL, state TEXT NOT NULL,
    autostart INTEGER NOT NULL, persistent INTEGER NOT NULL)');
$session = $db->prepare('INSERT INTO sessions VALUES (:hash, :user, :role, :expires)');
$session->bindValue(':hash', hash('sha256', trim(file_get_contents(__DIR__ . '/token.txt')), true), SQLITE3_BLOB);
$session->bindValue(':user', 'bench');
$session->bindValue(':role', 'viewer');
$session->bindValue(':expires', time() + 86400, SQLITE3_INTEGER);
$session->execute();
$vm = $db->prepare('INSERT INTO vms VALUES (:name, :uuid, :state, :autostart, :persistent)');
foreach (json_decode(file_get_contents(__DIR__ . '/vms.json'), true) as $row) {
    foreach (['name', 'uuid', 'state'] as $field) {
        $vm->bindValue(':' . $field, $row[$field]);
    }
    $vm->bindValue(':autostart', $row['autostart'] ? 1 : 0, SQLITE3_INTEGER);
    $vm->bindValue(':persistent', $row['persistent'] ? 1 : 0, SQLITE3_INTEGER);
    $vm->execute();
    $vm->reset();
}
echo "ok\n";
"#;

/// lighttpd's configuration for `dir`, listening on `port`.
fn lighttpd_conf(dir: &Path, port: u16, php_cgi: &Path) -> String {
    let dir = dir.display();
    let php_cgi = php_cgi.display();
    format!(
        "server.modules = (\"mod_fastcgi\")\n\
         server.document-root = \"{dir}/www\"\n\
         server.bind = \"127.0.0.1\"\n\
         server.port = {port}\n\
         server.errorlog = \"{dir}/lighttpd-error.log\"\n\
         fastcgi.server = (\".php\" => ((\n\
         \x20   \"bin-path\" => \"{php_cgi}\",\n\
         \x20   \"socket\" => \"{dir}/php.socket\",\n\
         \x20   \"max-procs\" => 1,\n\
         \x20   \"bin-environment\" => (\"PHP_FCGI_CHILDREN\" => \"{PHP_CHILDREN}\", \
         \"PHP_FCGI_MAX_REQUESTS\" => \"0\")\n\
         )))\n"
    )
}

impl Reference {
    /// Writes the scripts and the SQLite file (the session of `cookie`, the VMs `vms`) and
    /// starts lighttpd.
    fn start(programs: &Programs, cookie: &str, vms: &Value) -> Result<Reference> {
        let address = loopback(mfv_tests::free_local_port()?);
        let lighttpd = programs.lighttpd.clone();
        let mut server = ServerProcess::new("lighttpd", |dir| {
            let conf = dir.join("lighttpd.conf").display().to_string();
            (lighttpd, vec!["-D".to_owned(), "-f".to_owned(), conf])
        })?;
        let dir = server.dir().to_owned();
        let www = dir.join("www");
        fs::create_dir(&www).with_context(|| format!("cannot create {}", www.display()))?;
        let token = cookie
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .context("the cookie is not mfv-web's session cookie")?;
        for (path, text) in [
            (www.join("vms.php"), VMS_PHP.to_owned()),
            (www.join("setup.php"), SETUP_PHP.to_owned()),
            (www.join("token.txt"), token.to_owned()),
            (www.join("vms.json"), vms.to_string()),
            (
                dir.join("lighttpd.conf"),
                lighttpd_conf(&dir, address.port(), &programs.php_cgi),
            ),
        ] {
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        let output = cmd::stdout(
            Command::new(&programs.php_cgi)
                .args(["-q", "-f"])
                .arg(www.join("setup.php")),
        )?;
        if output.trim() != "ok" {
            bail!("the reference's setup.php failed: {output}");
        }
        for file in ["setup.php", "token.txt", "vms.json"] {
            fs::remove_file(www.join(file)).context("cannot remove the reference's setup files")?;
        }
        server.start()?;
        server.wait_for_port(address.port(), START_TIMEOUT)?;
        Ok(Reference { server, address })
    }

    fn url(&self) -> String {
        format!("http://{}/vms.php", self.address)
    }

    /// One request: the same VMs as mfv-web's, and 401 without the cookie.
    fn check(&self, cookie: &str, vms: &Value) -> Result<()> {
        let answer = http(self.address, &get_request("/vms.php", self.address, cookie))?;
        let listed = listed_vms(&answer, vms.as_array().map_or(0, |vms| vms.len() as u32))
            .with_context(|| format!("the reference's vms.php; lighttpd's log:\n{}", self.log()))?;
        if &listed != vms {
            bail!("the reference lists other VMs than mfv-web: {listed} against {vms}");
        }
        let refused = http(self.address, &get_request("/vms.php", self.address, "x=y"))?;
        if refused.status != 401 {
            bail!(
                "the reference answered {} without a session",
                refused.status
            );
        }
        Ok(())
    }

    fn log(&self) -> String {
        let path = self.server.dir().join("lighttpd-error.log");
        format!(
            "{}{}",
            self.server.log(),
            fs::read_to_string(path).unwrap_or_default()
        )
    }
}

/// The size of the reference's answer for `vms` (PHP's `json_encode` writes `/` as `\/`).
fn reference_bytes(vms: &Value) -> Result<usize> {
    Ok(serde_json::to_string(&serde_json::json!({ "vms": vms }))?.len())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `GET` of `path` with the `Cookie` header `cookie`, closing the connection after.
fn get_request(path: &str, host: SocketAddr, cookie: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
}

/// An HTTP answer: status, head (status line and headers) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` to `address` over plain HTTP and reads the answer to the end.
fn http(address: SocketAddr, request: &str) -> Result<Answer> {
    let mut stream = TcpStream::connect(address).with_context(|| format!("connect {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("send to {address}"))?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .with_context(|| format!("read from {address}"))?;
    parse_answer(&String::from_utf8_lossy(&bytes))
}

/// Splits an HTTP/1.1 answer whose body is sized by `Content-Length` or the connection's end.
fn parse_answer(text: &str) -> Result<Answer> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("not an HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    if header(head, "transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        bail!("a chunked answer, which this client does not read: {head:?}");
    }
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// The value of the first header `name` (case-insensitive) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// `name=value` of mfv-web's session cookie in a `Set-Cookie` header of `head`.
fn session_cookie(head: &str) -> Option<String> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next())
        .find(|pair| pair.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned)
}

/// The `vms` array of a `200` answer, which must hold `expected` VMs.
fn listed_vms(answer: &Answer, expected: u32) -> Result<Value> {
    if answer.status != 200 {
        bail!("answered {}: {}", answer.status, answer.body);
    }
    let body: Value = serde_json::from_str(&answer.body)
        .with_context(|| format!("not JSON: {:?}", answer.body))?;
    let vms = body.get("vms").cloned().context("no `vms` in the answer")?;
    let count = vms.as_array().map_or(0, Vec::len);
    if count != expected as usize {
        bail!("{count} VMs listed, {expected} expected");
    }
    Ok(vms)
}

/// One wrk run's figures.
#[derive(Debug, Clone, PartialEq)]
struct WrkFigures {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    /// Connect, read, write and timeout errors together.
    socket_errors: u64,
    /// Answers other than 2xx or 3xx.
    non_2xx: u64,
}

impl WrkFigures {
    fn errors(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

/// Reads the figures of `wrk --latency` output.
fn parse_wrk(output: &str) -> Result<WrkFigures> {
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut rate = None;
    let mut socket_errors = 0;
    let mut non_2xx = 0;
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", latency] => p50 = Some(milliseconds(latency)?),
            ["99%", latency] => p99 = Some(milliseconds(latency)?),
            [count, "requests", "in", ..] => requests = count.parse().ok(),
            ["Requests/sec:", value] => rate = value.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", count] => non_2xx = count.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                socket_errors = rest
                    .iter()
                    .filter_map(|word| word.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    let missing = |what: &str| format!("wrk printed no {what}:\n{output}");
    Ok(WrkFigures {
        requests_per_second: rate.with_context(|| missing("Requests/sec"))?,
        p50_ms: p50.with_context(|| missing("50% latency"))?,
        p99_ms: p99.with_context(|| missing("99% latency"))?,
        requests: requests.with_context(|| missing("request count"))?,
        socket_errors,
        non_2xx,
    })
}

/// wrk's `812.00us`, `1.23ms`, `2.00s` in milliseconds.
fn milliseconds(latency: &str) -> Result<f64> {
    let (number, scale) = if let Some(number) = latency.strip_suffix("us") {
        (number, 0.001)
    } else if let Some(number) = latency.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = latency.strip_suffix('m') {
        (number, 60_000.0)
    } else if let Some(number) = latency.strip_suffix('s') {
        (number, 1000.0)
    } else {
        bail!("not a wrk latency: {latency:?}")
    };
    let number: f64 = number
        .parse()
        .with_context(|| format!("not a wrk latency: {latency:?}"))?;
    Ok(number * scale)
}

/// One wrk run with the servers' memory around it.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    connections: u32,
    seconds: u32,
    wrk: WrkFigures,
    /// Resident memory of the server and its children before the run, KiB.
    rss_before_kib: u64,
    /// Sampled every second during the run, KiB.
    rss_during_kib: Vec<u64>,
    /// Right after the run, KiB.
    rss_after_kib: u64,
}

impl Run {
    fn summary(&self) -> String {
        format!(
            "{:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, RSS {:.1} -> {:.1} MiB \
             (peak {:.1})",
            self.wrk.requests_per_second,
            self.wrk.p50_ms,
            self.wrk.p99_ms,
            self.wrk.errors(),
            mib(self.rss_before_kib),
            mib(self.rss_after_kib),
            mib(self.peak_kib())
        )
    }

    fn peak_kib(&self) -> u64 {
        self.rss_during_kib
            .iter()
            .copied()
            .chain([self.rss_before_kib, self.rss_after_kib])
            .max()
            .unwrap_or(0)
    }

    /// The sample after [`SOAK_WARM_UP_SECONDS`] (the first, in a shorter run) and the last
    /// sample during the run: the soak's start and end.
    fn rss_start_end_kib(&self) -> (u64, u64) {
        let first = self
            .rss_during_kib
            .get(SOAK_WARM_UP_SECONDS - 1)
            .or(self.rss_during_kib.first())
            .copied();
        let last = self.rss_during_kib.last().copied();
        (
            first.unwrap_or(self.rss_before_kib),
            last.unwrap_or(self.rss_after_kib),
        )
    }

    /// The second of the run [`Run::rss_start_end_kib`]'s start was sampled at.
    fn rss_start_second(&self) -> usize {
        if self.rss_during_kib.len() >= SOAK_WARM_UP_SECONDS {
            SOAK_WARM_UP_SECONDS
        } else {
            1
        }
    }

    /// One sample every `every` seconds, MiB, as `a, b, c`.
    fn rss_series(&self, every: usize) -> String {
        self.rss_during_kib
            .iter()
            .skip(every - 1)
            .step_by(every)
            .map(|kib| format!("{:.1}", mib(*kib)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the end's memory is within [`FLAT_TOLERANCE`] of the start's.
    fn rss_flat(&self) -> bool {
        let (start, end) = self.rss_start_end_kib();
        (end as f64) <= (start as f64) * (1.0 + FLAT_TOLERANCE)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs wrk against `url` and samples the memory of `server` meanwhile.
fn measure(
    wrk: &Path,
    url: &str,
    header: &str,
    connections: u32,
    seconds: u32,
    server: &ServerProcess,
) -> Result<Run> {
    let pid = server.pid()?;
    let rss_before_kib = tree_rss_kib(pid)?;
    let mut child = Command::new(wrk)
        .args([
            "--latency",
            "-t",
            &THREADS.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "-H",
            header,
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start wrk")?;
    let mut rss_during_kib = Vec::new();
    let started = Instant::now();
    let mut next_sample = Duration::from_secs(1);
    while child.try_wait().context("waiting for wrk")?.is_none() {
        if started.elapsed() >= next_sample {
            rss_during_kib.push(tree_rss_kib(pid)?);
            next_sample += Duration::from_secs(1);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().context("reading wrk's output")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            server.log()
        );
    }
    let rss_after_kib = tree_rss_kib(pid)?;
    Ok(Run {
        connections,
        seconds,
        wrk: parse_wrk(&stdout)?,
        rss_before_kib,
        rss_during_kib,
        rss_after_kib,
    })
}

/// The resident memory of `root` and every process under it, KiB.
fn tree_rss_kib(root: u32) -> Result<u64> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").context("cannot read /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some(parent) = parent_pid(&stat) {
            parents.push((pid, parent));
        }
    }
    let mut total = 0;
    for pid in descendants(root, &parents) {
        // A process that ended meanwhile has no memory left to count.
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
            total += vm_rss_kib(&status).unwrap_or(0);
        }
    }
    Ok(total)
}

/// `root` and every process under it, given `(pid, parent)` pairs.
fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, of)| *of == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found
}

/// The parent's pid in /proc/PID/stat text (the field after the state, after the command's
/// parenthesized name, which may hold spaces).
fn parent_pid(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` in /proc/PID/status text, KiB; none for a kernel thread or a zombie.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// Everything the section reports.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    plain: Run,
    https: Run,
    session_only: Run,
    reference: Run,
    soak: Run,
    /// The 1-minute load average before and after.
    load: (f64, f64),
    /// The bytes of one VM list answer's body: mfv-web's, the reference's.
    response_bytes: (usize, usize),
    /// The web pages in headless Chromium.
    pages: PageFigures,
    /// mfv-web's resident memory after the browser's visits (which came after the runs).
    rss_after_pages_kib: u64,
}

impl Figures {
    /// Each 32-connection run with how the table names it, ours over plain HTTP first.
    fn rows(&self) -> [(&'static str, &Run); 4] {
        [
            ("mfv-web, plain HTTP, `GET /api/v1/vms`", &self.plain),
            ("mfv-web, HTTPS, `GET /api/v1/vms`", &self.https),
            (
                "mfv-web, plain HTTP, `GET /api/v1/session` (session check only, no libvirt)",
                &self.session_only,
            ),
            (
                "lighttpd + php-cgi (4 children), plain HTTP, `GET /vms.php`",
                &self.reference,
            ),
        ]
    }

    fn ratio(&self) -> f64 {
        self.plain.wrk.requests_per_second / self.reference.wrk.requests_per_second
    }

    /// The largest resident memory of mfv-web seen in the runs at [`CONNECTIONS`], KiB (the
    /// soak is judged by how flat its memory stays).
    fn our_peak_kib(&self) -> u64 {
        [&self.plain, &self.https, &self.session_only]
            .iter()
            .map(|run| run.peak_kib())
            .max()
            .unwrap_or(0)
    }

    /// One `name: value unit` line per figure.
    fn lines(&self) -> String {
        let mut text = String::new();
        let keys = [
            ("mfv-web http vms", &self.plain),
            ("mfv-web https vms", &self.https),
            ("mfv-web http session", &self.session_only),
            ("reference http vms", &self.reference),
            ("mfv-web soak http vms", &self.soak),
        ];
        for (key, run) in keys {
            let c = run.connections;
            let _ = writeln!(
                text,
                "{key} {c}c requests: {:.1} per second\n\
                 {key} {c}c p50: {:.3} ms\n\
                 {key} {c}c p99: {:.3} ms\n\
                 {key} {c}c errors: {} of {} requests\n\
                 {key} {c}c rss before: {:.1} MiB\n\
                 {key} {c}c rss after: {:.1} MiB\n\
                 {key} {c}c rss peak: {:.1} MiB",
                run.wrk.requests_per_second,
                run.wrk.p50_ms,
                run.wrk.p99_ms,
                run.wrk.errors(),
                run.wrk.requests,
                mib(run.rss_before_kib),
                mib(run.rss_after_kib),
                mib(run.peak_kib()),
            );
        }
        let (start, end) = self.soak.rss_start_end_kib();
        let _ = writeln!(
            text,
            "mfv-web soak rss start: {:.1} MiB\nmfv-web soak rss end: {:.1} MiB\n\
             mfv-web / reference requests: {:.2} x\n\
             response body: {} bytes (mfv-web), {} bytes (reference)",
            mib(start),
            mib(end),
            self.ratio(),
            self.response_bytes.0,
            self.response_bytes.1
        );
        text
    }

    /// What the figures say beyond the targets.
    fn findings(&self) -> Vec<String> {
        let mut findings = Vec::new();
        let bound = self.session_only.wrk.requests_per_second / self.plain.wrk.requests_per_second;
        if bound >= 2.0 {
            findings.push(format!(
                "the VM list is libvirt-bound: the same server answers the session check alone \
                 {bound:.0}x as fast ({:.0} requests/s, p99 {:.2} ms), so the time goes into \
                 the libvirt connection opened per request and `Hypervisor::list()`; the fix is \
                 a short-lived cache of the list fed by libvirt's domain events (not built: \
                 TODO(#15))",
                self.session_only.wrk.requests_per_second, self.session_only.wrk.p99_ms
            ));
        }
        if !self.soak.rss_flat() {
            let (start, end) = self.soak.rss_start_end_kib();
            findings.push(format!(
                "RSS grows during the soak, from {:.1} to {:.1} MiB, with the connections held \
                 the same: memory is kept after the requests that took it",
                mib(start),
                mib(end)
            ));
        }
        findings
    }

    /// One line per target: met or not, with the figure.
    fn verdicts(&self) -> Vec<String> {
        let judge = |met: bool| if met { "**met**" } else { "**not met**" };
        let ratio = self.ratio();
        let p99 = self.plain.wrk.p99_ms;
        let peak = mib(self.our_peak_kib());
        let (start, end) = self.soak.rss_start_end_kib();
        let soak_errors = self.soak.wrk.errors();
        vec![
            format!(
                "requests/s at least {TARGET_RATIO}x the reference's (plain HTTP, \
                 {CONNECTIONS} connections): {} ({ratio:.2}x)",
                judge(ratio >= TARGET_RATIO)
            ),
            format!(
                "p99 under {TARGET_P99_MS} ms at {CONNECTIONS} connections (plain HTTP): {} \
                 ({p99:.2} ms; HTTPS {:.2} ms)",
                judge(p99 < TARGET_P99_MS),
                self.https.wrk.p99_ms
            ),
            format!(
                "RSS under {TARGET_RSS_MIB} MiB at {CONNECTIONS} connections: {} (peak \
                 {peak:.1} MiB over the three runs; {:.1} MiB at {SOAK_CONNECTIONS} connections \
                 in the soak)",
                judge(peak < TARGET_RSS_MIB),
                mib(self.soak.peak_kib())
            ),
            format!(
                "soak at {SOAK_CONNECTIONS} connections for {} s with zero errors: {} \
                 ({soak_errors} of {} requests)",
                self.soak.seconds,
                judge(soak_errors == 0),
                self.soak.wrk.requests
            ),
            format!(
                "soak RSS flat (end within {:.0} % of start): {} ({:.1} MiB at {} s, {:.1} MiB \
                 at the end)",
                FLAT_TOLERANCE * 100.0,
                judge(self.soak.rss_flat()),
                mib(start),
                self.soak.rss_start_second(),
                mib(end)
            ),
        ]
        .into_iter()
        .chain(self.pages.verdicts())
        .collect()
    }
}

/// This machine and the packages' versions.
fn machine_description() -> String {
    format!(
        "{}; {}",
        cores_and_cpu(),
        package_versions(&[
            "wrk",
            "lighttpd",
            "php8.2-cgi",
            "libvirt-daemon",
            "libsqlite3-0"
        ])
    )
}

/// The BENCHMARKS.md section.
fn section(options: WebBenchOptions, machine: &str, date: &str, figures: &Figures) -> String {
    let WebBenchOptions {
        seconds,
        soak_seconds,
        vms,
    } = options;
    let mut text = format!(
        "{WEB_HEADING}\n\n\
         wrk ({THREADS} threads, `--latency`) against the REST API's VM list with a session \
         cookie: every request's session is checked and the {vms} VMs are listed as JSON. \
         **mfv-web** (release, `mfv-web --dev`): users in a SQLite auth database (one viewer, \
         logged in once), VMs on a private libvirtd (`mfv_tests::libvirtd`, QEMU driver, \
         pinned to CPU 0) where they are defined and shut off; a session's check in SQLite is \
         kept for 5 s (the requests in flight when it runs out share one new check), and the \
         list is read from libvirt at most once a second (and after any change), so most \
         answers are the last reading: the row `GET /api/v1/session` (the same session check, \
         no list) shows the server without the list. Plain HTTP is the benchmark-only \
         `--bench-http` listener (same routes, no TLS), for comparing on the reference's \
         protocol; HTTPS is the real listener (TLS 1.3, keep-alive, so the handshake is paid \
         once per connection). **Reference**: lighttpd with mod_fastcgi to php-cgi \
         ({PHP_CHILDREN} children, `PHP_FCGI_CHILDREN`), a PHP script that opens SQLite, checks \
         the same session (SHA-256 of the cookie, expiry) and returns the same {vms} VMs read \
         from a SQLite table with `json_encode`; plain HTTP. All on loopback; RSS is the \
         server's resident memory plus every process under it (php-cgi's), from \
         /proc/PID/status. Errors are wrk's socket errors plus answers other than 2xx/3xx.\n\n\
         - Command: `cargo xtask bench web --seconds {seconds} --soak-seconds {soak_seconds} \
         --vms {vms}`\n\
         - Machine: {machine}\n\
         - Date: {date}\n\
         - Load average (1 min) at start / end: {:.2} / {:.2} (the machine's 2 cores are \
         shared with other builds and tests: wrk, the server and libvirtd compete with them \
         and with each other)\n\
         - Answer body: {} bytes (mfv-web), {} bytes (reference)\n",
        figures.load.0, figures.load.1, figures.response_bytes.0, figures.response_bytes.1,
    );
    for verdict in figures.verdicts() {
        let _ = writeln!(text, "- Target: {verdict}");
    }
    for finding in figures.findings() {
        let _ = writeln!(text, "- Finding: {finding}");
    }
    let _ = writeln!(
        text,
        "\n| {CONNECTIONS} connections, {seconds} s | Requests/s | p50 | p99 | Errors / requests | RSS before → after (peak) |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for (label, run) in figures.rows() {
        let _ = writeln!(text, "| {label} | {} |", cells(run));
    }
    let (start, end) = figures.soak.rss_start_end_kib();
    let _ = writeln!(
        text,
        "\n| Soak: {SOAK_CONNECTIONS} connections, {soak_seconds} s | Requests/s | p50 | p99 | Errors / requests | RSS before → after (peak) |\n\
         |---|---:|---:|---:|---:|---:|\n\
         | mfv-web, plain HTTP, `GET /api/v1/vms` | {} |\n\n\
         Soak RSS: {:.1} MiB at {} s, {:.1} MiB at the end; every {SOAK_WARM_UP_SECONDS} s: \
         {} MiB (the first {SOAK_WARM_UP_SECONDS} s fill the connections' buffers and are not \
         judged).",
        cells(&figures.soak),
        mib(start),
        figures.soak.rss_start_second(),
        mib(end),
        figures.soak.rss_series(SOAK_WARM_UP_SECONDS)
    );
    let _ = write!(
        text,
        "\nThe pages, in headless Chromium (Debian's chromium through chromedriver, a fresh \
         profile) over HTTPS, signed in as the same viewer: bytes over the wire (Resource \
         Timing's `transferSize`: headers and compressed bodies, 0 for what the cache \
         answered) of the page and everything it loaded, its API calls included; the first \
         visit after emptying the cache, the repeat visit right after it. The visits come \
         after the runs above; mfv-web's RSS after them: {:.1} MiB.\n\n{}",
        mib(figures.rss_after_pages_kib),
        figures.pages.table()
    );
    text
}

/// The table cells of a run, after its label.
fn cells(run: &Run) -> String {
    format!(
        "{:.0} | {:.2} ms | {:.2} ms | {} / {} | {:.1} → {:.1} MiB ({:.1})",
        run.wrk.requests_per_second,
        run.wrk.p50_ms,
        run.wrk.p99_ms,
        run.wrk.errors(),
        run.wrk.requests,
        mib(run.rss_before_kib),
        mib(run.rss_after_kib),
        mib(run.peak_kib())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_pages::Visit;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/api/v1/vms
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.55ms    1.02ms  20.94ms   83.17%
    Req/Sec     4.53k   345.83     5.21k    71.00%
  Latency Distribution
     50%  812.00us
     75%    3.89ms
     90%    4.64ms
     99%    1.20s
  90174 requests in 10.01s, 69.49MB read
  Socket errors: connect 0, read 12, write 0, timeout 5
  Non-2xx or 3xx responses: 3
Requests/sec:   9011.23
Transfer/sec:      6.94MB
";

    #[test]
    fn wrk_output_gives_rate_latencies_and_errors() {
        let figures = parse_wrk(WRK).unwrap();
        assert_eq!(
            figures,
            WrkFigures {
                requests_per_second: 9011.23,
                p50_ms: 0.812,
                p99_ms: 1200.0,
                requests: 90174,
                socket_errors: 17,
                non_2xx: 3,
            }
        );
        assert_eq!(figures.errors(), 20);
        let clean = WRK
            .replace(
                "  Socket errors: connect 0, read 12, write 0, timeout 5\n",
                "",
            )
            .replace("  Non-2xx or 3xx responses: 3\n", "");
        assert_eq!(parse_wrk(&clean).unwrap().errors(), 0);
        let error = parse_wrk(&WRK.replace("     99%    1.20s\n", "")).unwrap_err();
        assert!(
            error.to_string().starts_with("wrk printed no 99% latency"),
            "{error}"
        );
        assert!(parse_wrk(&WRK.replace("1.20s", "soon")).is_err());
    }

    #[test]
    fn latencies_are_read_in_every_unit() {
        assert_eq!(milliseconds("250.00us").unwrap(), 0.25);
        assert_eq!(milliseconds("1.50ms").unwrap(), 1.5);
        assert_eq!(milliseconds("2.00s").unwrap(), 2000.0);
        assert_eq!(milliseconds("1.00m").unwrap(), 60_000.0);
        let error = milliseconds("fast").unwrap_err();
        assert_eq!(error.to_string(), "not a wrk latency: \"fast\"");
        assert!(milliseconds("xms").is_err());
    }

    #[test]
    fn answers_give_status_cookie_and_vms() {
        let text = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                    set-cookie: other=1; Path=/\r\n\
                    Set-Cookie: __Host-mfv-session=abc123; Path=/; Secure; HttpOnly\r\n\r\n\
                    {\"vms\": [{\"name\": \"bench-0001\"}]}";
        let answer = parse_answer(text).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(
            header(&answer.head, "Content-Type"),
            Some("application/json")
        );
        assert_eq!(
            session_cookie(&answer.head).as_deref(),
            Some("__Host-mfv-session=abc123")
        );
        assert_eq!(
            listed_vms(&answer, 1).unwrap(),
            serde_json::json!([{"name": "bench-0001"}])
        );
        let error = listed_vms(&answer, 50).unwrap_err();
        assert_eq!(error.to_string(), "1 VMs listed, 50 expected");
        let refused = parse_answer("HTTP/1.1 401 Unauthorized\r\n\r\n{\"kind\":\"x\"}").unwrap();
        assert_eq!(session_cookie(&refused.head), None);
        let error = listed_vms(&refused, 1).unwrap_err();
        assert_eq!(error.to_string(), "answered 401: {\"kind\":\"x\"}");
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(
            parse_answer(chunked)
                .unwrap_err()
                .to_string()
                .contains("chunked")
        );
        assert!(parse_answer("garbage").is_err());
        assert!(parse_answer("HTTP/1.1 OK\r\n\r\n").is_err());
        let no_vms = parse_answer("HTTP/1.1 200 OK\r\n\r\n{}").unwrap();
        assert_eq!(
            listed_vms(&no_vms, 1).unwrap_err().to_string(),
            "no `vms` in the answer"
        );
    }

    #[test]
    fn memory_is_summed_over_the_process_tree() {
        let parents = [(10, 1), (11, 10), (12, 11), (13, 11), (20, 1), (21, 20)];
        assert_eq!(descendants(10, &parents), [10, 11, 12, 13]);
        assert_eq!(descendants(99, &parents), [99]);
        assert_eq!(
            parent_pid("4242 (php-cgi (x) y) S 4240 4242 4242 0 -1 4194560"),
            Some(4240)
        );
        assert_eq!(parent_pid("garbage"), None);
        assert_eq!(
            vm_rss_kib("Name:\tx\nVmRSS:\t   12345 kB\nThreads: 2\n"),
            Some(12345)
        );
        assert_eq!(vm_rss_kib("Name:\tkthreadd\n"), None);
        let own = tree_rss_kib(std::process::id()).unwrap();
        assert!(own > 0);
    }

    fn run(rate: f64, p99_ms: f64, errors: u64, rss_kib: [u64; 3]) -> Run {
        Run {
            connections: 32,
            seconds: 10,
            wrk: WrkFigures {
                requests_per_second: rate,
                p50_ms: p99_ms / 2.0,
                p99_ms,
                requests: 1000,
                socket_errors: errors,
                non_2xx: 0,
            },
            rss_before_kib: rss_kib[0],
            rss_during_kib: vec![rss_kib[1], rss_kib[1] + 100, rss_kib[2]],
            rss_after_kib: rss_kib[2],
        }
    }

    fn figures() -> Figures {
        Figures {
            plain: run(1700.0, 30.0, 0, [10240, 15360, 15360]),
            https: run(1500.0, 35.0, 0, [15360, 16384, 16384]),
            session_only: run(20_000.0, 3.0, 0, [16384, 16384, 16384]),
            reference: run(4000.0, 12.0, 0, [40960, 61440, 61440]),
            soak: Run {
                connections: 256,
                seconds: 60,
                ..run(1600.0, 300.0, 2, [16384, 20480, 24576])
            },
            load: (0.5, 2.25),
            response_bytes: (4321, 4400),
            pages: PageFigures {
                dashboard: (
                    Visit {
                        transferred: 40_000,
                        requests: 9,
                    },
                    Visit {
                        transferred: 3_000,
                        requests: 7,
                    },
                ),
                vm_list: (
                    Visit {
                        transferred: 45_000,
                        requests: 8,
                    },
                    Visit {
                        transferred: 5_000,
                        requests: 6,
                    },
                ),
                usable_ms: vec![120.0],
            },
            rss_after_pages_kib: 30_720,
        }
    }

    #[test]
    fn the_verdicts_state_each_gap() {
        let verdicts = figures().verdicts();
        assert_eq!(
            verdicts,
            [
                "requests/s at least 10x the reference's (plain HTTP, 32 connections): \
                 **not met** (0.42x)",
                "p99 under 2 ms at 32 connections (plain HTTP): **not met** (30.00 ms; HTTPS \
                 35.00 ms)",
                "RSS under 30 MiB at 32 connections: **met** (peak 16.1 MiB over the three \
                 runs; 24.0 MiB at 256 connections in the soak)",
                "soak at 256 connections for 60 s with zero errors: **not met** (2 of 1000 \
                 requests)",
                "soak RSS flat (end within 10 % of start): **not met** (20.0 MiB at 1 s, 24.0 \
                 MiB at the end)",
                "first visit under 300 kB: **met** (dashboard 40.0 kB, VM list 45.0 kB)",
                "repeat visit under 50 kB: **met** (dashboard 3.0 kB, VM list 5.0 kB)",
                "VM list usable in under 300 ms: **met** (median 120 ms of 1 loads)",
            ]
        );
        let mut better = figures();
        better.plain.wrk.requests_per_second = 40_000.0;
        better.soak.rss_during_kib = vec![20480, 20480, 22000];
        let verdicts = better.verdicts();
        assert!(verdicts[0].contains("**met** (10.00x)"), "{}", verdicts[0]);
        assert!(verdicts[4].contains("**met**"), "{}", verdicts[4]);
        // A minute's samples: the warm-up's growth is shown but not judged.
        better.soak.rss_during_kib = (0..60).map(|second| 28_000 + second.min(9) * 400).collect();
        better.soak.rss_during_kib[59] = 32_000;
        assert_eq!(better.soak.rss_start_end_kib(), (31_600, 32_000));
        assert_eq!(
            better.soak.rss_series(10),
            "30.9, 30.9, 30.9, 30.9, 30.9, 31.2"
        );
        let verdicts = better.verdicts();
        assert!(
            verdicts[4].contains("**met** (30.9 MiB at 10 s, 31.2 MiB at the end)"),
            "{}",
            verdicts[4]
        );
    }

    #[test]
    fn the_section_has_a_row_per_run_and_the_soak() {
        let options = WebBenchOptions {
            seconds: 10,
            soak_seconds: 60,
            vms: 50,
        };
        let text = section(options, "2 cores (CPU)", "2026-11-27", &figures());
        assert!(text.starts_with("## REST API under load (`cargo xtask bench web`)\n\n"));
        assert!(text.contains(
            "- Command: `cargo xtask bench web --seconds 10 --soak-seconds 60 --vms 50`\n"
        ));
        assert!(text.contains("- Load average (1 min) at start / end: 0.50 / 2.25 "));
        assert!(text.contains("- Answer body: 4321 bytes (mfv-web), 4400 bytes (reference)\n"));
        assert!(
            text.contains("\n- Target: RSS under 30 MiB at 32 connections: **met**"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n| mfv-web, plain HTTP, `GET /api/v1/vms` | 1700 | 15.00 ms | 30.00 ms | 0 / \
                 1000 | 10.0 → 15.0 MiB (15.1) |\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "\n| lighttpd + php-cgi (4 children), plain HTTP, `GET /vms.php` | 4000 | 6.00 ms \
             | 12.00 ms | 0 / 1000 | 40.0 → 60.0 MiB (60.1) |\n"
        ));
        assert!(
            text.contains(
                "\n- Finding: the VM list is libvirt-bound: the same server answers the session \
                 check alone 12x as fast (20000 requests/s, p99 3.00 ms)"
            ),
            "{text}"
        );
        assert!(text.contains("\n- Finding: RSS grows during the soak, from 20.0 to 24.0 MiB"));
        let mut quiet = figures();
        quiet.session_only.wrk.requests_per_second = 2000.0;
        quiet.soak.rss_during_kib = vec![20480, 20480];
        assert!(quiet.findings().is_empty());
        assert!(text.contains("| Soak: 256 connections, 60 s |"), "{text}");
        assert!(
            text.contains(
                "Soak RSS: 20.0 MiB at 1 s, 24.0 MiB at the end; every 10 s:  MiB (the first \
                 10 s fill the connections' buffers and are not judged).\n\nThe pages, in \
                 headless Chromium"
            ),
            "{text}"
        );
        assert!(text.ends_with("cache): 120 ms; median 120 ms.\n"), "{text}");
        assert!(text.contains("\n- Target: first visit under 300 kB: **met**"));
        let lines = figures().lines();
        assert!(lines.contains("mfv-web http vms 32c requests: 1700.0 per second\n"));
        assert!(lines.contains("mfv-web soak http vms 256c errors: 2 of 1000 requests\n"));
        assert!(
            lines.contains("mfv-web / reference requests: 0.42 x\n"),
            "{lines}"
        );
    }

    #[test]
    fn lighttpd_runs_four_php_children_on_loopback() {
        let conf = lighttpd_conf(Path::new("/tmp/d"), 8081, Path::new("/usr/bin/php-cgi"));
        assert!(conf.contains("server.bind = \"127.0.0.1\"\nserver.port = 8081\n"));
        assert!(conf.contains("\"PHP_FCGI_CHILDREN\" => \"4\""));
        assert!(conf.contains("\"bin-path\" => \"/usr/bin/php-cgi\""));
        assert!(conf.contains("server.document-root = \"/tmp/d/www\""));
        assert!(VMS_PHP.contains(SESSION_COOKIE));
        assert_eq!(
            get_request("/vms.php", loopback(8081), "a=b"),
            "GET /vms.php HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nCookie: a=b\r\nConnection: \
             close\r\n\r\n"
        );
    }

    #[test]
    fn options_have_the_issue_defaults_and_reject_zero() {
        use clap::Parser as _;

        use crate::{Benchmark, Cli, Command};
        let cli = Cli::try_parse_from(["xtask", "bench", "web"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Web {
                    seconds: 10,
                    soak_seconds: 60,
                    vms: 50
                }
            }
        ));
        for flag in ["--seconds", "--soak-seconds", "--vms"] {
            let argv = ["xtask", "bench", "web", flag, "0"];
            assert!(Cli::try_parse_from(argv).is_err(), "{flag}");
        }
    }
}
