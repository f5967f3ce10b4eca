//! Root-only tests of `mfv net`: the `mfv` binary runs under `ip netns exec` in throwaway
//! network namespaces (veth pairs, addresses from 192.0.2.0/24 and 198.51.100.0/24, a private
//! dnsmasq for DHCP), deleted again in `Drop`.
// Helpers outside the #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT_NAMESPACE: AtomicUsize = AtomicUsize::new(0);

/// Whether the tests can create namespaces; prints why a test is skipped when they cannot.
fn can_run_as_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping {test}: needs root to create network namespaces");
        false
    }
}

/// A network namespace `mfvc-<pid>-<counter>` with its loopback up, deleted on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn new() -> Namespace {
        let counter = NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed);
        let name = format!("mfvc-{}-{counter}", std::process::id());
        ip(&["netns", "add", &name]);
        let namespace = Namespace { name };
        namespace.ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// `ip -n NAME ARGS...`; panics with its stderr when it fails.
    fn ip(&self, args: &[&str]) -> String {
        ip(&[&["-n", self.name.as_str()], args].concat())
    }

    /// A namespace with the veth pair veth0/veth1, both up, and 192.0.2.10/24 plus a
    /// default route through 192.0.2.1 on veth0.
    fn configured() -> Namespace {
        let namespace = Namespace::new();
        namespace.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        namespace.ip(&["link", "set", "veth0", "up"]);
        namespace.ip(&["link", "set", "veth1", "up"]);
        namespace.ip(&["address", "add", "192.0.2.10/24", "dev", "veth0"]);
        namespace.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        namespace
    }

    /// `mfv ARGS...` in this namespace with `stdin` as its input.
    fn mfv_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, env!("CARGO_BIN_EXE_mfv")])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn mfv(&self, args: &[&str]) -> Output {
        self.mfv_with_input(args, None)
    }

    /// The IPv4 addresses of `interface`, space-separated.
    fn ipv4_of(&self, interface: &str) -> String {
        self.ip(&["-4", "-o", "address", "show", "dev", interface])
            .lines()
            .filter_map(|line| line.split_whitespace().nth(3))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn default_route(&self) -> String {
        self.ip(&["route", "show", "default"]).trim().to_owned()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mfv failed with {}: {}{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

#[test]
fn show_lists_interfaces_addresses_and_routes() {
    if !can_run_as_root("show_lists_interfaces_addresses_and_routes") {
        return;
    }
    let namespace = Namespace::configured();
    let table = succeeded(&namespace.mfv(&["net", "show"]));
    assert!(table.starts_with("INTERFACE "), "{table}");
    let veth0 = table
        .lines()
        .find(|line| line.starts_with("veth0 "))
        .unwrap_or_else(|| panic!("no veth0 line in {table}"));
    assert!(
        veth0.ends_with(" 192.0.2.10/24") || veth0.contains(" 192.0.2.10/24 "),
        "{veth0}"
    );
    assert!(veth0.contains(" veth "), "{veth0}");
    assert!(table.lines().any(|line| line.starts_with("lo ")), "{table}");
    assert!(
        table.ends_with("\nROUTES\ndefault via 192.0.2.1 dev veth0\n"),
        "{table}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&succeeded(&namespace.mfv(&["net", "show", "--json"]))).unwrap();
    let interfaces = json["interfaces"].as_array().unwrap();
    let veth0 = interfaces
        .iter()
        .find(|interface| interface["name"] == "veth0")
        .unwrap();
    assert!(
        veth0["addresses"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("192.0.2.10/24")),
        "{veth0}"
    );
    assert_eq!(veth0["kind"], "veth");
    assert_eq!(json["routes"][0]["gateway"], "192.0.2.1");
    assert_eq!(json["routes"][0]["interface"], "veth0");
}

#[test]
fn static_replaces_the_address_route_and_dns() {
    if !can_run_as_root("static_replaces_the_address_route_and_dns") {
        return;
    }
    let namespace = Namespace::configured();
    let directory = tempfile::tempdir().unwrap();
    let resolv_conf = directory.path().join("resolv.conf");
    let resolv_conf_arg = resolv_conf.display().to_string();
    let args = [
        "net",
        "static",
        "veth0",
        "198.51.100.5/24",
        "--gw",
        "198.51.100.1",
        "--dns",
        "198.51.100.53",
        "--resolv-conf",
        &resolv_conf_arg,
    ];
    let changes = succeeded(&namespace.mfv(&args));
    assert_eq!(
        changes,
        format!(
            "remove the route default via 192.0.2.1 dev veth0\n\
             remove 192.0.2.10/24 from veth0\n\
             add 198.51.100.5/24 to veth0\n\
             add the route default via 198.51.100.1 dev veth0\n\
             write {resolv_conf_arg}\n"
        )
    );
    assert_eq!(namespace.ipv4_of("veth0"), "198.51.100.5/24");
    assert_eq!(
        namespace.default_route(),
        "default via 198.51.100.1 dev veth0 proto static"
    );
    let written = std::fs::read_to_string(&resolv_conf).unwrap();
    assert!(written.ends_with("nameserver 198.51.100.53\n"), "{written}");

    let again = succeeded(&namespace.mfv(&args));
    assert_eq!(again, format!("write {resolv_conf_arg}\n"));
}

#[test]
fn a_nonexistent_interface_is_named_and_nothing_changes() {
    if !can_run_as_root("a_nonexistent_interface_is_named_and_nothing_changes") {
        return;
    }
    let namespace = Namespace::configured();
    for args in [
        &["net", "static", "nope0", "198.51.100.5/24"][..],
        &["net", "bridge", "br0", "--port", "nope0"],
        &["net", "vlan", "nope0", "7"],
        &["net", "bond", "bond0", "--port", "veth1", "--port", "nope0"],
        &["net", "dhcp", "nope0", "--timeout", "1"],
    ] {
        let output = namespace.mfv(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&output),
            "mfv: no interface named \"nope0\"\n",
            "{args:?}"
        );
    }
    assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
    assert!(!namespace.ip(&["link", "show"]).contains("br0"));
}

#[test]
fn a_malformed_cidr_is_refused_before_anything_changes() {
    if !can_run_as_root("a_malformed_cidr_is_refused_before_anything_changes") {
        return;
    }
    let namespace = Namespace::configured();
    let output = namespace.mfv(&["net", "static", "veth0", "198.51.100.5/33"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("'198.51.100.5/33'")
            && message.contains("prefix length 33 is out of range 0..=32"),
        "{message}"
    );
    let output = namespace.mfv(&[
        "net",
        "static",
        "veth0",
        "198.51.100.5/24",
        "--gw",
        "192.0.2.1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "mfv: gateway 192.0.2.1 is not in the network of 198.51.100.5/24: the route through it \
         would not reach it from veth0\n"
    );
    assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
}

#[test]
fn the_bridge_takes_over_the_address_and_a_vlan_is_created() {
    if !can_run_as_root("the_bridge_takes_over_the_address_and_a_vlan_is_created") {
        return;
    }
    let namespace = Namespace::configured();
    let changes = succeeded(&namespace.mfv(&["net", "bridge", "br0", "--port", "veth0"]));
    assert_eq!(
        changes,
        "create bridge br0\n\
         make veth0 a port of br0\n\
         remove the route default via 192.0.2.1 dev veth0\n\
         remove 192.0.2.10/24 from veth0\n\
         add 192.0.2.10/24 to br0\n\
         set br0 up\n\
         add the route default via 192.0.2.1 dev br0\n"
    );
    assert_eq!(namespace.ipv4_of("veth0"), "");
    assert_eq!(namespace.ipv4_of("br0"), "192.0.2.10/24");
    assert_eq!(
        namespace.default_route(),
        "default via 192.0.2.1 dev br0 proto static"
    );
    assert!(
        namespace
            .ip(&["link", "show", "veth0"])
            .contains("master br0")
    );

    let output = namespace.mfv(&["net", "vlan", "veth1", "7"]);
    if stderr(&output).contains("no vlan support") {
        eprintln!("this kernel has no 8021q: the VLAN part is skipped");
        return;
    }
    assert_eq!(succeeded(&output), "create vlan veth1.7\nset veth1.7 up\n");
    let shown = namespace.ip(&["-d", "link", "show", "veth1.7"]);
    assert!(shown.contains("vlan protocol 802.1Q id 7"), "{shown}");
}

#[test]
fn a_bond_refuses_bad_ports_and_takes_over_the_address_of_good_ones() {
    if !can_run_as_root("a_bond_refuses_bad_ports_and_takes_over_the_address_of_good_ones") {
        return;
    }
    let namespace = Namespace::configured();
    namespace.ip(&[
        "link", "add", "veth2", "type", "veth", "peer", "name", "veth3",
    ]);

    let missing_port = namespace.mfv(&["net", "bond", "bond0"]);
    assert_eq!(missing_port.status.code(), Some(2));
    assert!(
        stderr(&missing_port).contains("--port <PORTS>"),
        "{}",
        stderr(&missing_port)
    );

    for (args, message) in [
        (
            &["net", "bond", "bond0", "--port", "veth0", "--port", "nope0"][..],
            "mfv: no interface named \"nope0\"\n",
        ),
        (
            &[
                "net",
                "bond",
                "bond0",
                "--port",
                "veth0",
                "--port",
                "veth2",
                "--primary",
                "veth3",
            ],
            "mfv: the primary veth3 is not one of the ports (veth0, veth2)\n",
        ),
        (
            &["net", "bond", "bond0", "--port", "veth0", "--port", "veth0"],
            "mfv: port veth0 is named twice\n",
        ),
    ] {
        let output = namespace.mfv(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output), message, "{args:?}");
    }
    assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
    assert!(!namespace.ip(&["link", "show"]).contains("bond0"));

    let output = namespace.mfv(&[
        "net",
        "bond",
        "bond0",
        "--port",
        "veth0",
        "--port",
        "veth2",
        "--primary",
        "veth0",
    ]);
    if stderr(&output).contains("no bond support") {
        assert_eq!(
            stderr(&output),
            "mfv: cannot make veth0, veth2 the ports of bond0: applying the network state \
             failed; the previous state was restored: cannot create \"bond0\": this kernel has \
             no bond support\n"
        );
        assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
        assert_eq!(namespace.default_route(), "default via 192.0.2.1 dev veth0");
        assert!(!namespace.ip(&["link", "show"]).contains("bond0"));
        eprintln!(
            "this kernel has no bonding: the bond itself is covered by the appliance test \
             an_active_backup_bond_fails_over_to_the_second_nic"
        );
        return;
    }
    assert_eq!(
        succeeded(&output),
        "create bond bond0\n\
         make veth0 a port of bond0\n\
         make veth2 a port of bond0\n\
         remove the route default via 192.0.2.1 dev veth0\n\
         remove 192.0.2.10/24 from veth0\n\
         add 192.0.2.10/24 to bond0\n\
         set veth2 up\n\
         set bond0 up\n\
         add the route default via 192.0.2.1 dev bond0\n"
    );
    assert_eq!(namespace.ipv4_of("bond0"), "192.0.2.10/24");
    let shown = namespace.ip(&["-d", "link", "show", "bond0"]);
    assert!(shown.contains("mode active-backup"), "{shown}");
    assert!(shown.contains("primary veth0"), "{shown}");
}

#[test]
fn an_unconfirmed_bridge_rolls_back_and_a_confirmed_one_stays() {
    if !can_run_as_root("an_unconfirmed_bridge_rolls_back_and_a_confirmed_one_stays") {
        return;
    }
    let namespace = Namespace::configured();
    let args = [
        "net",
        "bridge",
        "br0",
        "--port",
        "veth0",
        "--confirm-within",
        "1",
    ];
    let started = Instant::now();
    let output = namespace.mfv(&args);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.ends_with("press Enter within 1 s to keep this; otherwise it is rolled back\n"),
        "{text}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "mfv: not confirmed within 1 s: the previous state was restored\n"
    );
    assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
    assert_eq!(namespace.default_route(), "default via 192.0.2.1 dev veth0");
    assert!(!namespace.ip(&["link", "show"]).contains("br0"));

    let output = namespace.mfv_with_input(&args, Some("\n"));
    let text = succeeded(&output);
    assert!(text.ends_with("confirmed: the change stays\n"), "{text}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(namespace.ipv4_of("br0"), "192.0.2.10/24");
}

/// A private dnsmasq serving DHCP on `interface` in `namespace`, killed on drop.
struct Dnsmasq {
    child: Child,
    _leases: tempfile::TempDir,
}

impl Dnsmasq {
    fn start(namespace: &Namespace, interface: &str) -> Dnsmasq {
        let leases = tempfile::tempdir().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &namespace.name, "dnsmasq"])
            .args([
                "--no-ping",
                "--conf-file=/dev/null",
                "--port=0",
                "--bind-interfaces",
                "--no-daemon",
                "--user=root",
                "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
                "--dhcp-option=option:router,192.0.2.1",
                "--dhcp-option=option:dns-server,192.0.2.53",
            ])
            .arg(format!("--interface={interface}"))
            .arg(format!(
                "--dhcp-leasefile={}",
                leases.path().join("leases").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let udp_table = format!("/proc/{}/net/udp", child.id());
        let started = Instant::now();
        // Ready once port 67 (0x0043) is open in its namespace.
        while !std::fs::read_to_string(&udp_table)
            .unwrap_or_default()
            .lines()
            .any(|line| line.contains(":0043 "))
        {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "dnsmasq did not open port 67"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Dnsmasq {
            child,
            _leases: leases,
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dhcp_configures_the_lease_and_a_silent_network_times_out() {
    if !can_run_as_root("dhcp_configures_the_lease_and_a_silent_network_times_out") {
        return;
    }
    let server = Namespace::new();
    let client = Namespace::new();
    server.ip(&[
        "link",
        "add",
        "srv0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &client.name,
    ]);
    server.ip(&["address", "add", "192.0.2.1/24", "dev", "srv0"]);
    server.ip(&["link", "set", "srv0", "up"]);
    let directory = tempfile::tempdir().unwrap();
    let resolv_conf = directory.path().join("resolv.conf").display().to_string();

    let started = Instant::now();
    let output = client.mfv(&[
        "net",
        "dhcp",
        "eth0",
        "--timeout",
        "2",
        "--resolv-conf",
        &resolv_conf,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        stderr(&output),
        "mfv: no DHCP lease on eth0: no server answered within 2.0 s (the interface was left as \
         it was)\n"
    );
    assert!(client.ip(&["link", "show", "eth0"]).contains("state DOWN"));

    let _dnsmasq = Dnsmasq::start(&server, "srv0");
    let output = client.mfv(&[
        "net",
        "dhcp",
        "eth0",
        "--timeout",
        "10",
        "--resolv-conf",
        &resolv_conf,
    ]);
    let lease = succeeded(&output);
    assert!(
        lease.starts_with("interface  eth0\naddress    192.0.2."),
        "{lease}"
    );
    assert!(lease.contains("\nrouter     192.0.2.1\n"), "{lease}");
    assert!(lease.contains("\ndns        192.0.2.53\n"), "{lease}");
    let address = client.ipv4_of("eth0");
    assert!(
        address.starts_with("192.0.2.5") || address.starts_with("192.0.2.60"),
        "{address}"
    );
    assert!(
        lease.contains(&format!("\naddress    {address}\n")),
        "{lease}"
    );
    assert!(
        client
            .default_route()
            .starts_with("default via 192.0.2.1 dev eth0"),
        "{}",
        client.default_route()
    );
    let written = std::fs::read_to_string(&resolv_conf).unwrap();
    assert!(written.contains("nameserver 192.0.2.53\n"), "{written}");
}

#[test]
fn a_failed_static_apply_is_rolled_back_and_named() {
    if !can_run_as_root("a_failed_static_apply_is_rolled_back_and_named") {
        return;
    }
    let namespace = Namespace::configured();
    let output = namespace.mfv(&[
        "net",
        "static",
        "veth0",
        "198.51.100.5/24",
        "--dns",
        "198.51.100.53",
        "--resolv-conf",
        "/nonexistent/resolv.conf",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with(
            "mfv: cannot configure veth0: writing the DNS settings failed; the previous state \
             was restored: "
        ),
        "{message}"
    );
    assert!(message.contains("/nonexistent/resolv.conf"), "{message}");
    assert_eq!(namespace.ipv4_of("veth0"), "192.0.2.10/24");
    assert_eq!(namespace.default_route(), "default via 192.0.2.1 dev veth0");
}

#[test]
fn dhcp_on_an_interface_without_a_hardware_address_is_refused() {
    if !can_run_as_root("dhcp_on_an_interface_without_a_hardware_address_is_refused") {
        return;
    }
    let namespace = Namespace::new();
    namespace.ip(&["tuntap", "add", "dev", "tun0", "mode", "tun"]);
    let output = namespace.mfv(&["net", "dhcp", "tun0", "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "mfv: tun0 has no hardware address: DHCP needs one\n"
    );
}
