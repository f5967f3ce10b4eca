//! Tests of the schema: every validation error, bad input files, round trips and versions.

use super::*;

/// A valid configuration to start cases from: `HEAD` then the case's own lines.
const HEAD: &str = "version = 1\n[host]\nhostname = \"vmhost1\"\n";

/// Parses `text` and compares the errors, one `LINE:COL: FIELD: message` string each, in order.
#[track_caller]
fn check(text: &str, expected: &[&str]) {
    let actual: Vec<String> = match parse_config(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    };
    assert_eq!(actual, expected, "errors for:\n{text}");
}

/// [`check`] for `HEAD` followed by `rest` (which starts at line 4).
#[track_caller]
fn check_with_head(rest: &str, expected: &[&str]) {
    check(&format!("{HEAD}{rest}"), expected);
}

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/schema")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn minimal_config_gets_defaults() {
    let config = parse_config(&data("minimal.toml")).unwrap();
    assert_eq!(
        config,
        Config {
            version: 1,
            host: HostConfig {
                hostname: "vmhost1".to_owned(),
                time_zone: "UTC".to_owned(),
                ntp_servers: Vec::new(),
                vm_shutdown_timeout: DEFAULT_VM_SHUTDOWN_TIMEOUT,
                autostart_order: Vec::new(),
            },
            network: NetworkConfig::default(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            web: WebConfig {
                port: 443,
                tls_cert: None,
                tls_key: None,
            },
            log: LogConfig::default(),
        }
    );
    assert_eq!(config.auth.backend, AuthBackend::Sqlite);
    assert!(!config.to_toml().contains("[log]"));
}

#[test]
fn full_config_reads_every_section() {
    let config = parse_config(&data("full.toml")).unwrap();
    assert_eq!(config.host.hostname, "vmhost1.example.org");
    assert_eq!(config.network.interfaces.len(), 4);
    let vlan = &config.network.interfaces[3];
    assert_eq!(
        vlan.vlan,
        Some(VlanConfig {
            parent: "eth1".to_owned(),
            id: 20
        })
    );
    assert_eq!(vlan.addresses[0].to_string(), "198.51.100.10/24");
    assert_eq!(
        config.network.interfaces[1].gateway,
        Some("192.0.2.1".parse().unwrap())
    );
    assert_eq!(config.network.bridge.as_ref().unwrap().ports, ["eth0"]);
    assert_eq!(config.storage.pools[2].kind, PoolKind::Nfs);
    assert_eq!(config.auth.backend, AuthBackend::Ldap);
    let ldap = config.auth.ldap.as_ref().unwrap();
    assert_eq!(ldap.group_base_dn(), Some("ou=groups,dc=example,dc=org"));
    assert_eq!(ldap.ca_certificate.as_deref(), Some("tls/ldap-ca.pem"));
    let remote = config.log.remote.as_ref().unwrap();
    assert_eq!(
        (remote.transport(), remote.host(), remote.port()),
        (LogTransport::Tcp, "loghost.example.org", 601)
    );
    assert_eq!(ldap.group_roles["virt-operators"], AuthRole::Operator);
    assert_eq!(ldap.group_roles.len(), 3);
    assert_eq!(config.web.port, 8443);
}

#[test]
fn every_example_round_trips_and_matches_serde() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
    )
    .unwrap();
    // The first example is a whole file, the later ones sections of one.
    let mut doc_examples: Vec<String> = docs
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_owned())
        .collect();
    assert!(doc_examples.len() >= 2, "{doc_examples:?}");
    for section in &mut doc_examples[1..] {
        *section = format!("{HEAD}{section}");
    }
    for text in [data("minimal.toml"), data("full.toml")]
        .into_iter()
        .chain(doc_examples)
    {
        let config = parse_config(&text).unwrap();
        let written = config.to_toml();
        assert!(written.starts_with("version = 1\n"), "{written}");
        assert_eq!(parse_config(&written), Ok(config.clone()), "{written}");
        // The serde derive (used by other tools) agrees with the checked reader.
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
        assert_eq!(config.validate(), Ok(()));
    }
}

#[test]
fn validate_reports_paths_without_positions() {
    let mut config = parse_config(&data("minimal.toml")).unwrap();
    config.host.hostname = "bad_name".to_owned();
    config.web.port = 0;
    config.version = 2;
    let errors = config.validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "version: version is 2; this release writes version 1\n\
         host.hostname: \"bad_name\" contains '_'; host names use letters, digits, '-' and '.' only\n\
         web.port: 0 is out of range (1 to 65535)"
    );
}

#[test]
fn bad_files_give_one_clear_error() {
    check(
        "",
        &["1:1: the file is empty; a configuration starts with `version = 1`"],
    );
    check(
        " \n\t\n",
        &["1:1: the file is empty; a configuration starts with `version = 1`"],
    );
    check(
        "version = 1\n[host]\nhostname = \"a\0b\"\n",
        &["3:14: the file contains a NUL byte: it is binary data, not TOML text"],
    );
    let big = format!("{HEAD}# {}\n", "x".repeat(10 * 1024 * 1024));
    check(
        &big,
        &[&format!(
            "the file is {} bytes; a configuration file may be at most 1048576 bytes (1 MiB)",
            big.len()
        )],
    );
    // Truncated in the middle of a table header and in the middle of a string.
    check(
        "version = 1\n[ho",
        &["2:4: TOML syntax: unclosed table, expected `]`"],
    );
    check(
        "version = 1\n[host]\nhostname = \"vmho",
        &["3:17: TOML syntax: invalid basic string, expected `\"`"],
    );
    check(
        "version = 1\nversion = 1\n",
        &["2:1: TOML syntax: duplicate key"],
    );
}

#[test]
fn bytes_that_are_not_text_are_refused() {
    let errors = |bytes: &[u8]| parse_config_bytes(bytes).unwrap_err().to_string();
    assert_eq!(
        errors(b"version = 1\n\xff\xfe"),
        "2:1: the file is not UTF-8 text (byte 0xff at offset 12)"
    );
    assert_eq!(
        errors(b"\x7fELF\x02\x01\x01\x00\x00\xff"),
        "1:8: the file contains a NUL byte: it is binary data, not TOML text"
    );
    assert_eq!(
        errors(b"ver\x00sion"),
        "1:4: the file contains a NUL byte: it is binary data, not TOML text"
    );
    assert_eq!(
        parse_config_bytes(data("minimal.toml").as_bytes()),
        parse_config(&data("minimal.toml"))
    );
    let big = vec![b'#'; MAX_CONFIG_SIZE + 1];
    assert_eq!(
        errors(&big),
        "the file is 1048577 bytes; a configuration file may be at most 1048576 bytes (1 MiB)"
    );
}

#[test]
fn versions() {
    check(
        "[host]\nhostname = \"vmhost1\"\n",
        &["1:1: version: missing `version = 1` (the first line of a configuration)"],
    );
    // A missing version does not hide the other errors.
    check(
        "[host]\nhostname = \"vmhost_1\"\n",
        &[
            "1:1: version: missing `version = 1` (the first line of a configuration)",
            "2:12: host.hostname: \"vmhost_1\" contains '_'; host names use letters, digits, '-' and '.' only",
        ],
    );
    check(
        "version = 2\n[host]\nname = 1\n",
        &[
            "1:11: version: version 2 was written by a newer release of Minifed-Virt; this release reads version 1",
        ],
    );
    check(
        "version = 0\n[host]\nhostname = \"vmhost1\"\n",
        &["1:11: version: unknown version 0; this release reads version 1"],
    );
    check(
        "version = -1\n[host]\nhostname = \"vmhost1\"\n",
        &["1:11: version: unknown version -1; this release reads version 1"],
    );
    check(
        "version = 99999999999\n[host]\nhostname = \"vmhost1\"\n",
        &["1:11: version: unknown version 99999999999; this release reads version 1"],
    );
    check(
        "version = \"1\"\n[host]\nhostname = \"vmhost1\"\n",
        &["1:11: version: expected an integer, found a string"],
    );
}

#[test]
fn migrate_accepts_the_current_version_and_refuses_unknown_ones() {
    let (config, notes) = migrate(&data("full.toml")).unwrap();
    assert_eq!(Ok(config), parse_config(&data("full.toml")));
    assert!(notes.is_empty());
    for version in ["0", "2", "1000"] {
        let text = format!("version = {version}\n[host]\nhostname = \"vmhost1\"\n");
        let errors = migrate(&text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.errors()[0].path, "version");
    }
}

#[test]
fn structure_errors() {
    check(
        "version = 1\n",
        &["1:1: host: missing required section [host]"],
    );
    check(
        "version = 1\nhost = 5\n",
        &["2:8: host: expected a table, found an integer"],
    );
    check_with_head(
        "[netwrk]\n[web]\nprot = 443\nport = \"443\"\n",
        &[
            "4:2: netwrk: unknown field \"netwrk\"; did you mean \"network\"?",
            "6:1: web.prot: unknown field \"prot\"; did you mean \"port\"?",
            "7:8: web.port: expected an integer, found a string",
        ],
    );
    check(
        "version = 1\ncolour = \"blue\"\n[host]\nhostname = \"vmhost1\"\n",
        &[
            "2:1: colour: unknown field \"colour\"; expected one of \"version\", \"host\", \"network\", \"storage\", \"auth\", \"web\" or \"log\"",
        ],
    );
    check(
        "version = 1\n[host]\nhostname = 1\nntp_servers = \"pool.ntp.org\"\n",
        &[
            "3:12: host.hostname: expected a string, found an integer",
            "4:15: host.ntp_servers: expected an array, found a string",
        ],
    );
    check_with_head(
        "[network]\ninterfaces = 5\n",
        &["5:14: network.interfaces: expected an array of tables, found an integer"],
    );
    // A bad entry keeps the indexes of the following ones.
    check_with_head(
        "[network]\ninterfaces = [5, { name = \"eth0\", mtu = 1.5 }]\n",
        &[
            "5:15: network.interfaces[0]: expected a table, found an integer",
            "5:41: network.interfaces[1].mtu: expected an integer, found a float",
        ],
    );
    check_with_head(
        "[network.bridge]\nstp = \"yes\"\n",
        &["5:7: network.bridge.stp: expected a boolean (true or false), found a string"],
    );
}

#[test]
fn host_errors() {
    let case = |hostname: &str, message: &str| {
        let expected = format!("3:12: host.hostname: {message}");
        check(
            &format!("version = 1\n[host]\nhostname = \"{hostname}\"\n"),
            &[expected.as_str()],
        );
    };
    case("", "the host name is empty");
    case(
        "a..b",
        "\"a..b\" has an empty label (two dots, or a dot at an end)",
    );
    case(
        "host.",
        "\"host.\" has an empty label (two dots, or a dot at an end)",
    );
    case(
        "-host",
        "\"-host\": the label \"-host\" starts or ends with '-'",
    );
    case(
        "host.example.123",
        "\"host.example.123\" ends in an all-numeric label, which reads as an IP address",
    );
    case(
        "höst",
        "\"höst\" contains 'ö'; host names use letters, digits, '-' and '.' only",
    );
    let long_label = "a".repeat(64);
    case(
        &long_label,
        &format!(
            "\"{long_label}\": the label \"{long_label}\" is 64 characters long; a label has at most 63"
        ),
    );
    let long_name = ["a".repeat(63).as_str(); 4].join(".") + ".ab";
    case(
        &long_name,
        &format!("\"{long_name}\" is 258 characters long; a host name has at most 253"),
    );
    for zone in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+5",
        "EST5EDT",
    ] {
        check(&format!("{HEAD}time_zone = \"{zone}\"\n"), &[]);
    }
    for zone in [
        "",
        "Europe/",
        "/Berlin",
        "Europe/Berlin Time",
        "a/b/c/d",
        "Europe/../etc",
    ] {
        let expected = format!(
            "4:13: host.time_zone: {zone:?} is not a time zone name (like \"UTC\" or \"Europe/Berlin\")"
        );
        check(
            &format!("{HEAD}time_zone = \"{zone}\"\n"),
            &[expected.as_str()],
        );
    }
    check_with_head(
        "ntp_servers = [\"192.0.2.1\", \"2001:db8::1\", \"pool.ntp.org\", \"bad server\"]\n",
        &[
            "4:60: host.ntp_servers[3]: not an IP address, and \"bad server\" contains ' '; host names use letters, digits, '-' and '.' only",
        ],
    );
}

#[test]
fn interface_errors() {
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n",
        &["4:1: network.interfaces[0].addresses: mode = \"static\" needs at least one address"],
    );
    check_with_head(
        "[[network.interfaces]]\nmode = \"dhcp\"\n",
        &["4:1: network.interfaces[0].name: missing required field"],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.10/24\"]\ngateway = \"192.0.2.1\"\ngateway6 = \"2001:db8::1\"\n",
        &[
            "6:13: network.interfaces[0].addresses: addresses are only used with mode = \"static\" (this interface is \"dhcp\")",
            "7:11: network.interfaces[0].gateway: gateway is only used with mode = \"static\" (this interface is \"dhcp\")",
            "8:12: network.interfaces[0].gateway6: gateway6 is only used with mode = \"static\" (this interface is \"dhcp\")",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"Static\"\naddresses = [\"192.0.2.10/24\"]\n",
        &[
            "6:8: network.interfaces[0].mode: unknown mode \"Static\"; expected \"dhcp\", \"static\" or \"manual\" (did you mean \"static\"?)",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\naddresses = [\"192.0.2.10\", \"192.0.2.300/24\", \"192.0.2.1/x\", \"2001:db8::1/129\", \"10.0.0.1/256\"]\n",
        &[
            "7:14: network.interfaces[0].addresses[0]: missing the prefix length (write it as ADDRESS/PREFIX, e.g. 192.0.2.10/24)",
            "7:28: network.interfaces[0].addresses[1]: \"192.0.2.300\" is not an IP address",
            "7:46: network.interfaces[0].addresses[2]: prefix length \"x\" is not a number",
            "7:61: network.interfaces[0].addresses[3]: prefix length 129 is longer than 128",
            "7:80: network.interfaces[0].addresses[4]: prefix length 256 is longer than 32",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\naddresses = [\"192.0.2.0/24\", \"192.0.2.255/24\", \"0.0.0.0/8\", \"224.0.0.1/4\", \"127.0.0.2/8\", \"192.0.2.9/0\", \"255.255.255.255/32\", \"192.0.2.10/24\", \"192.0.2.10/25\", \"::/64\"]\n",
        &[
            "7:14: network.interfaces[0].addresses[0]: 192.0.2.0/24 is the network address of its subnet; use a host address",
            "7:30: network.interfaces[0].addresses[1]: 192.0.2.255/24 is the broadcast address of its subnet; use a host address",
            "7:48: network.interfaces[0].addresses[2]: 0.0.0.0/8: the unspecified address is not an interface address",
            "7:61: network.interfaces[0].addresses[3]: 224.0.0.1/4: a multicast address is not an interface address",
            "7:76: network.interfaces[0].addresses[4]: 127.0.0.2/8: a loopback address is not an interface address",
            "7:91: network.interfaces[0].addresses[5]: 192.0.2.9/0: a prefix length of 0 is not an interface address",
            "7:106: network.interfaces[0].addresses[6]: 255.255.255.255/32: the broadcast address is not an interface address",
            "7:145: network.interfaces[0].addresses[8]: 192.0.2.10 is listed twice",
            "7:162: network.interfaces[0].addresses[9]: ::/64: the unspecified address is not an interface address",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\naddresses = [\"2001:db8::10/64\"]\ngateway = \"192.0.2.1\"\n\
         [[network.interfaces]]\nname = \"eth1\"\nmode = \"static\"\naddresses = [\"192.0.2.10/24\"]\ngateway6 = \"2001:db8::1\"\n",
        &[
            "8:11: network.interfaces[0].gateway: gateway 192.0.2.1 is IPv4 but the interface has no IPv4 address",
            "13:12: network.interfaces[1].gateway6: gateway6 2001:db8::1 is IPv6 but the interface has no IPv6 address",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\ngateway = \"192.0.2.10\"\ngateway6 = \"2001:db8::10\"\n\
         [[network.interfaces]]\nname = \"eth1\"\nmode = \"static\"\naddresses = [\"198.51.100.10/24\", \"2001:db8:1::10/64\"]\ngateway = \"198.51.100.1\"\ngateway6 = \"2001:db8:1::1\"\n",
        &[
            "8:11: network.interfaces[0].gateway: gateway 192.0.2.10 is this interface's own address",
            "9:12: network.interfaces[0].gateway6: gateway6 2001:db8::10 is this interface's own address",
            "14:11: network.interfaces[1].gateway: a second IPv4 default gateway (network.interfaces[0] has one)",
            "15:12: network.interfaces[1].gateway6: a second IPv6 default gateway (network.interfaces[0] has one)",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\naddresses = [\"192.0.2.10/24\"]\ngateway = \"2001:db8::1\"\ngateway6 = \"192.0.2.1\"\n\
         [[network.interfaces]]\nname = \"eth1\"\nmode = \"static\"\naddresses = [\"192.0.2.11/24\"]\ngateway = \"router\"\ngateway6 = \"router\"\n",
        &[
            "8:11: network.interfaces[0].gateway: \"2001:db8::1\" is an IPv6 address; put the IPv6 gateway in gateway6",
            "9:12: network.interfaces[0].gateway6: \"192.0.2.1\" is an IPv4 address; put the IPv4 gateway in gateway",
            "14:11: network.interfaces[1].gateway: \"router\" is not an IPv4 address",
            "15:12: network.interfaces[1].gateway6: \"router\" is not an IPv6 address",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\n[[network.interfaces]]\nname = \"eth0\"\n[[network.interfaces]]\nname = \"a-very-long-name0\"\n[[network.interfaces]]\nname = \"eth:0\"\n[[network.interfaces]]\nname = \"\"\n[[network.interfaces]]\nname = \"..\"\n",
        &[
            "7:8: network.interfaces[1].name: duplicate interface \"eth0\" (already declared in network.interfaces[0])",
            "9:8: network.interfaces[2].name: \"a-very-long-name0\" is 17 bytes long; interface names have at most 15",
            "11:8: network.interfaces[3].name: \"eth:0\" contains ':', which interface names cannot",
            "13:8: network.interfaces[4].name: the interface name is empty",
            "15:8: network.interfaces[5].name: \"..\" is not a valid interface name",
        ],
    );
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmtu = 67\n[[network.interfaces]]\nname = \"eth1\"\nmtu = 65536\n\
         [[network.interfaces]]\nname = \"eth2\"\nmode = \"static\"\naddresses = [\"2001:db8::10/64\"]\nmtu = 1279\n",
        &[
            "6:7: network.interfaces[0].mtu: 67 is out of range (68 to 65535)",
            "9:7: network.interfaces[1].mtu: 65536 is out of range (68 to 65535)",
            "14:7: network.interfaces[2].mtu: 1279 is below 1280, the smallest MTU IPv6 works with",
        ],
    );
}

#[test]
fn vlan_errors() {
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
         [[network.interfaces]]\nname = \"eth0.0\"\nvlan = { parent = \"eth0\", id = 0 }\n\
         [[network.interfaces]]\nname = \"eth0.4095\"\nvlan = { parent = \"eth0\", id = 4095 }\n\
         [[network.interfaces]]\nname = \"eth0.10\"\nvlan = { parent = \"eth0\", id = 10 }\n\
         [[network.interfaces]]\nname = \"vlan10\"\nvlan = { parent = \"eth0\", id = 10 }\n\
         [[network.interfaces]]\nname = \"eth9.5\"\nvlan = { parent = \"eth9\", id = 5 }\n\
         [[network.interfaces]]\nname = \"loop\"\nvlan = { parent = \"loop\", id = 6 }\n\
         [[network.interfaces]]\nname = \"v7\"\nvlan = { parent = \"eth0\" }\n\
         [[network.interfaces]]\nname = \"v8\"\nvlan = { parent = \"eth0\", id = 8, tag = 8 }\n",
        &[
            "9:32: network.interfaces[1].vlan.id: 0 is out of range (1 to 4094)",
            "12:32: network.interfaces[2].vlan.id: 4095 is out of range (1 to 4094)",
            "18:32: network.interfaces[4].vlan.id: VLAN 10 on \"eth0\" is already network.interfaces[3]",
            "21:19: network.interfaces[5].vlan.parent: \"eth9\" is not a declared interface (add a [[network.interfaces]] entry for it, e.g. with mode = \"manual\")",
            "24:19: network.interfaces[6].vlan.parent: a VLAN interface cannot be its own parent",
            "27:8: network.interfaces[7].vlan.id: missing required field",
            "30:35: network.interfaces[8].vlan.tag: unknown field \"tag\"; expected one of \"parent\" or \"id\"",
        ],
    );
}

#[test]
fn a_bond_is_read_with_its_ports_and_primary() {
    let config = parse_config(&format!(
        "{HEAD}[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
         [[network.interfaces]]\nname = \"eth1\"\nmode = \"manual\"\n\
         [[network.interfaces]]\nname = \"bond0\"\n\
         bond = {{ ports = [\"eth0\", \"eth1\"], primary = \"eth1\" }}\n"
    ))
    .unwrap();
    assert_eq!(
        config.network.interfaces[2].bond,
        Some(BondConfig {
            ports: vec!["eth0".into(), "eth1".into()],
            primary: Some("eth1".into()),
        })
    );
    assert_eq!(parse_config(&config.to_toml()), Ok(config));
}

#[test]
fn bond_errors() {
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
         [[network.interfaces]]\nname = \"eth1\"\n\
         [[network.interfaces]]\nname = \"bond0\"\n\
         bond = { ports = [\"eth0\", \"eth1\", \"eth9\", \"bond0\"], primary = \"eth2\" }\n\
         [[network.interfaces]]\nname = \"bond1\"\nbond = { ports = [\"eth0\"], mode = 1 }\n\
         [[network.interfaces]]\nname = \"bond2\"\nbond = { ports = [] }\n\
         vlan = { parent = \"eth0\", id = 5 }\n\
         [[network.interfaces]]\nname = \"bond3\"\nbond = { primary = \"eth0\" }\n",
        &[
            "11:27: network.interfaces[2].bond.ports[1]: \"eth1\" has mode = \"dhcp\"; a bond port carries no addresses of its own: use mode = \"manual\" and give the addresses to an interface named \"bond0\"",
            "11:35: network.interfaces[2].bond.ports[2]: \"eth9\" is not a declared interface (add a [[network.interfaces]] entry with name = \"eth9\" and mode = \"manual\")",
            "11:43: network.interfaces[2].bond.ports[3]: the bond \"bond0\" cannot be its own port",
            "11:63: network.interfaces[2].bond.primary: \"eth2\" is not one of the ports (eth0, eth1, eth9, bond0)",
            "14:19: network.interfaces[3].bond.ports[0]: \"eth0\" is already a port of the bond \"bond0\"",
            "14:28: network.interfaces[3].bond.mode: unknown field \"mode\"; expected one of \"ports\" or \"primary\"",
            "17:8: network.interfaces[4].bond: an interface cannot be both a VLAN and a bond",
            "17:18: network.interfaces[4].bond.ports: a bond needs at least one port",
            "21:8: network.interfaces[5].bond.ports: missing required field",
        ],
    );
}

#[test]
fn bridge_errors() {
    check_with_head(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
         [[network.interfaces]]\nname = \"eth1\"\n\
         [[network.interfaces]]\nname = \"br0\"\nvlan = { parent = \"eth0\", id = 3 }\n\
         [network.bridge]\nports = [\"eth0\", \"eth1\", \"eth2\", \"br0\", \"eth0\"]\n",
        &[
            "11:8: network.interfaces[2].vlan: \"br0\" is the bridge; it cannot also be a VLAN",
            "13:18: network.bridge.ports[1]: \"eth1\" has mode = \"dhcp\"; a bridge port carries no addresses of its own: use mode = \"manual\" and give the addresses to an interface named \"br0\"",
            "13:26: network.bridge.ports[2]: \"eth2\" is not a declared interface (add a [[network.interfaces]] entry with name = \"eth2\" and mode = \"manual\")",
            "13:34: network.bridge.ports[3]: the bridge \"br0\" cannot be its own port",
            "13:41: network.bridge.ports[4]: \"eth0\" is listed twice",
        ],
    );
    check_with_head(
        "[network.bridge]\nname = \"bridge/0\"\n",
        &["5:8: network.bridge.name: \"bridge/0\" contains '/', which interface names cannot"],
    );
}

#[test]
fn dns_errors() {
    check_with_head(
        "[network.dns]\nservers = [\"192.0.2.53\", \"0.0.0.0\", \"ns1\", \"2001:db8::53\", \"198.51.100.53\"]\nsearch = [\"example.org\", \"bad_domain\"]\n",
        &[
            "5:37: network.dns.servers[2]: \"ns1\" is not an IP address",
            "6:26: network.dns.search[1]: \"bad_domain\" contains '_'; host names use letters, digits, '-' and '.' only",
        ],
    );
    check_with_head(
        "[network.dns]\nservers = [\"192.0.2.53\", \"0.0.0.0\", \"2001:db8::53\", \"198.51.100.53\"]\n",
        &[
            "5:26: network.dns.servers[1]: 0.0.0.0 cannot be a name server",
            "5:53: network.dns.servers[3]: 4 name servers given; the resolver uses at most 3",
        ],
    );
}

#[test]
fn storage_errors() {
    check_with_head(
        "[[storage.pools]]\nname = \"images\"\nkind = \"dir\"\npath = \"images\"\nserver = \"nfs1\"\n\
         [[storage.pools]]\nname = \"images\"\nkind = \"logical\"\n\
         [[storage.pools]]\nname = \".hidden\"\nkind = \"nfs\"\ndevice = \"/dev/sdb\"\n\
         [[storage.pools]]\nname = \"n\"\nkind = \"nfs\"\nserver = \"nfs_1\"\nexport = \"/vms\"\npath = \"/mnt/n\"\n\
         [[storage.pools]]\nname = \"z\"\nkind = \"zfs\"\npath = \"x\"\n\
         [[storage.pools]]\nname = \"k\"\n",
        &[
            "7:8: storage.pools[0].path: \"images\" is not an absolute path",
            "8:10: storage.pools[0].server: server is not used with kind = \"dir\"",
            "9:1: storage.pools[1].device: kind = \"logical\" needs device",
            "10:8: storage.pools[1].name: duplicate pool \"images\" (already declared in storage.pools[0])",
            "12:1: storage.pools[2].server: kind = \"nfs\" needs server",
            "12:1: storage.pools[2].export: kind = \"nfs\" needs export",
            "13:8: storage.pools[2].name: \".hidden\" is not a pool name (letters, digits, '.', '_' and '-', not starting with '.')",
            "15:10: storage.pools[2].device: device is not used with kind = \"nfs\"",
            "19:10: storage.pools[3].server: not an IP address, and \"nfs_1\" contains '_'; host names use letters, digits, '-' and '.' only",
            "24:8: storage.pools[4].kind: unknown kind \"zfs\"; expected \"dir\", \"logical\" or \"nfs\" (did you mean \"nfs\"?)",
            "26:1: storage.pools[5].kind: missing required field",
        ],
    );
}

#[test]
fn auth_errors() {
    check_with_head(
        "[auth]\nbackend = \"ldap\"\n",
        &["5:11: auth.ldap: backend = \"ldap\" needs an [auth.ldap] section"],
    );
    check_with_head(
        "[auth]\nbackend = \"mysql\"\n",
        &["5:11: auth.mysql: backend = \"mysql\" needs an [auth.mysql] section"],
    );
    check_with_head(
        "[auth]\nbackend = \"ldpa\"\n",
        &[
            "5:11: auth.backend: unknown backend \"ldpa\"; expected \"sqlite\", \"ldap\" or \"mysql\" (did you mean \"ldap\"?)",
        ],
    );
    check_with_head("[auth]\nbackend = \"sqlite\"\n", &[]);
    check_with_head(
        "[auth.sqlite]\npath = \"\"\n",
        &["5:8: auth.sqlite.path: the path is empty"],
    );
    check_with_head(
        "[auth]\nbackend = \"ldap\"\n[auth.ldap]\nurl = \"http://ldap\"\nbase_dn = \"people\"\nbind_dn = \"cn=x,,dc=y\"\nuser_filter = \"uid={username}\"\npassword = \"secret\"\n",
        &[
            "7:7: auth.ldap.url: \"http://ldap\" does not start with ldap:// or ldaps://",
            "8:11: auth.ldap.base_dn: \"people\" is not a DN: \"people\" is not attribute=value",
            "9:11: auth.ldap.bind_dn: \"cn=x,,dc=y\" is not a DN: \"\" is not attribute=value",
            "9:11: auth.ldap.bind_password_file: bind_dn needs bind_password_file",
            "10:15: auth.ldap.user_filter: \"uid={username}\" is not an LDAP filter in parentheses",
            "11:1: auth.ldap.password: unknown field \"password\"; expected one of \"url\", \"base_dn\", \"bind_dn\", \"bind_password_file\", \"user_filter\", \"group_base\", \"starttls\", \"ca_certificate\", \"insecure\", \"group_roles\" or \"disabled_filter\"",
        ],
    );
    let ldap = |url: &str, filter: &str| {
        format!(
            "{HEAD}[auth.ldap]\nurl = \"{url}\"\nbase_dn = \"dc=example,dc=org\"\nbind_password_file = \"p\"\nuser_filter = \"{filter}\"\n"
        )
    };
    check(
        &ldap("ldaps://[2001:db8::1]:389/", "(uid={username})"),
        &["7:22: auth.ldap.bind_password_file: bind_password_file is only used with bind_dn"],
    );
    for (url, message) in [
        ("ldap://", "\"ldap://\": no host"),
        (
            "ldaps://ldap:0",
            "\"ldaps://ldap:0\": \"0\" is not a port (1 to 65535)",
        ),
        (
            "ldaps://ldap:x",
            "\"ldaps://ldap:x\": \"x\" is not a port (1 to 65535)",
        ),
        (
            "ldap://[2001:db8::1",
            "\"ldap://[2001:db8::1\": an unclosed '[' around an IPv6 address",
        ),
        (
            "ldap://[ldap]",
            "\"ldap://[ldap]\": \"ldap\" is not an IPv6 address",
        ),
        (
            "ldap://[::1]x",
            "\"ldap://[::1]x\": unexpected \"x\" after the address",
        ),
        (
            "ldap://a b",
            "\"ldap://a b\": the host is not an IP address, and \"a b\" contains ' '; host names use letters, digits, '-' and '.' only",
        ),
    ] {
        let expected = [
            format!("5:7: auth.ldap.url: {message}"),
            "7:22: auth.ldap.bind_password_file: bind_password_file is only used with bind_dn"
                .to_owned(),
        ];
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        check(&ldap(url, "(uid={username})"), &expected);
    }
    for (filter, message) in [
        (
            "(uid=x)",
            "\"(uid=x)\" does not use {username}, so it cannot find the user logging in",
        ),
        (
            "(&(uid={username})",
            "\"(&(uid={username})\" has unbalanced parentheses",
        ),
        (
            "(uid={username}))(",
            "\"(uid={username}))(\" is not an LDAP filter in parentheses",
        ),
        (
            "(a))((uid={username})",
            "\"(a))((uid={username})\" has unbalanced parentheses",
        ),
    ] {
        let expected = [
            "7:22: auth.ldap.bind_password_file: bind_password_file is only used with bind_dn"
                .to_owned(),
            format!("8:15: auth.ldap.user_filter: {message}"),
        ];
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        check(&ldap("ldaps://ldap", filter), &expected);
    }
    check_with_head(
        "[auth]\nbackend = \"mysql\"\n[auth.mysql]\nhost = \"db_1\"\nport = 70000\ndatabase = \"\"\nuser = \"\"\npassword_file = \"\"\n",
        &[
            "7:8: auth.mysql.host: not an IP address, and \"db_1\" contains '_'; host names use letters, digits, '-' and '.' only",
            "8:8: auth.mysql.port: 70000 is out of range (1 to 65535)",
            "9:12: auth.mysql.database: a database name has 1 to 64 characters",
            "10:8: auth.mysql.user: the user name is empty",
            "11:17: auth.mysql.password_file: the path is empty",
        ],
    );
    check_with_head(
        "[auth.mysql]\nhost = \"db\"\ntls = true\n",
        &[
            "4:1: auth.mysql.database: missing required field",
            "4:1: auth.mysql.user: missing required field",
        ],
    );
}

#[test]
fn ldap_group_and_tls_settings() {
    let ldap = |rest: &str| {
        format!(
            "{HEAD}[auth.ldap]\nurl = \"ldap://127.0.0.1\"\nbase_dn = \"ou=people,dc=example,dc=org\"\n{rest}"
        )
    };
    // Defaults: groups under the parent of base_dn, the three mfv-* groups, no TLS.
    let config = parse_config(&ldap("")).unwrap();
    let section = config.auth.ldap.unwrap();
    assert_eq!(section.group_base, None);
    assert_eq!(section.group_base_dn(), Some("dc=example,dc=org"));
    assert!(!section.starttls);
    assert_eq!(section.ca_certificate, None);
    assert_eq!(section.group_roles, default_ldap_group_roles());
    let defaults: Vec<(&str, &str)> = section
        .group_roles
        .iter()
        .map(|(group, role)| (group.as_str(), role.as_str()))
        .collect();
    assert_eq!(
        defaults,
        [
            ("mfv-admins", "admin"),
            ("mfv-operators", "operator"),
            ("mfv-viewers", "viewer")
        ]
    );

    let config = parse_config(&ldap(
        "group_base = \"ou=groups,dc=example,dc=org\"\nstarttls = true\nca_certificate = \"ldap-ca.pem\"\n\
         [auth.ldap.group_roles]\n\"cn=ops,ou=groups,dc=example,dc=org\" = \"operator\"\nvirt-admins = \"admin\"\n",
    ))
    .unwrap();
    let section = config.auth.ldap.unwrap();
    assert_eq!(section.group_base_dn(), Some("ou=groups,dc=example,dc=org"));
    assert!(section.starttls);
    assert_eq!(section.ca_certificate.as_deref(), Some("ldap-ca.pem"));
    assert_eq!(
        section.group_roles.into_iter().collect::<Vec<_>>(),
        [
            (
                "cn=ops,ou=groups,dc=example,dc=org".to_owned(),
                AuthRole::Operator
            ),
            ("virt-admins".to_owned(), AuthRole::Admin),
        ]
    );
    // An inline table reads the same.
    check(&ldap("group_roles = { mfv-admins = \"admin\" }\n"), &[]);

    check_with_head(
        "[auth.ldap]\nurl = \"ldaps://ldap\"\nbase_dn = \"dc=org\"\n",
        &[
            "6:11: auth.ldap.group_base: base_dn \"dc=org\" has no parent to search groups under: set group_base",
        ],
    );
    check_with_head(
        "[auth.ldap]\nurl = \"ldaps://ldap\"\nbase_dn = \"dc=org\"\ngroup_base = \"ou=groups,dc=org\"\n",
        &[],
    );
    check(
        &ldap("group_base = \"groups\"\nstarttls = \"yes\"\n"),
        &[
            "7:14: auth.ldap.group_base: \"groups\" is not a DN: \"groups\" is not attribute=value",
            "8:12: auth.ldap.starttls: expected a boolean (true or false), found a string",
        ],
    );
    check_with_head(
        "[auth.ldap]\nurl = \"ldaps://ldap\"\nbase_dn = \"ou=p,dc=org\"\nstarttls = true\nca_certificate = \"\"\n",
        &[
            "7:12: auth.ldap.starttls: starttls = true upgrades an ldap:// connection, and the url is ldaps:// (TLS from the start): use one or the other",
            "8:18: auth.ldap.ca_certificate: the path is empty",
        ],
    );
    check(
        &ldap("ca_certificate = \"ca.pem\"\n"),
        &[
            "7:18: auth.ldap.ca_certificate: ca_certificate is only used with an ldaps:// url or starttls = true",
        ],
    );
    check(&ldap("starttls = true\nca_certificate = \"ca.pem\"\n"), &[]);
    check(
        &ldap("[auth.ldap.group_roles]\nmfv-admins = \"root\"\nops = \"operater\"\nviewers = 3\n"),
        &[
            "8:14: auth.ldap.group_roles.mfv-admins: unknown role \"root\"; expected \"viewer\", \"operator\" or \"admin\"",
            "9:7: auth.ldap.group_roles.ops: unknown role \"operater\"; expected \"viewer\", \"operator\" or \"admin\" (did you mean \"operator\"?)",
            "10:11: auth.ldap.group_roles.viewers: expected a string, found an integer",
        ],
    );
    check(
        &ldap("[auth.ldap.group_roles]\n\"\" = \"admin\"\n\"cn=x,,dc=y\" = \"viewer\"\n"),
        &[
            "8:6: auth.ldap.group_roles.\"\": the group name is empty",
            "9:16: auth.ldap.group_roles.\"cn=x,,dc=y\": \"cn=x,,dc=y\" is not a DN: \"\" is not attribute=value (name a group by its cn or its DN)",
        ],
    );
    check(
        &ldap("[auth.ldap.group_roles]\n"),
        &["7:1: auth.ldap.group_roles: no group is mapped to a role, so nobody could log in"],
    );
    check(
        &ldap("group_roles = [\"mfv-admins\"]\n"),
        &["7:15: auth.ldap.group_roles: expected a table, found an array"],
    );
}

#[test]
fn cleartext_to_another_host_needs_insecure() {
    let refused = |server: &str, remedy: &str| {
        format!(
            "{server} is not on this machine and the connection has no TLS, so passwords would \
             cross the network in cleartext: {remedy}, or set insecure = true to accept \
             cleartext on a network you trust"
        )
    };
    let ldap = |url: &str, rest: &str| {
        format!(
            "{HEAD}[auth.ldap]\nurl = \"{url}\"\nbase_dn = \"ou=people,dc=example,dc=org\"\n{rest}"
        )
    };
    let ldap_remedy = "set starttls = true or use an ldaps:// url";
    for url in [
        "ldap://ldap.example.org",
        "ldap://192.0.2.1:389/",
        "ldap://[2001:db8::1]",
    ] {
        check(
            &ldap(url, ""),
            &[format!("5:7: auth.ldap.starttls: {}", refused(url, ldap_remedy)).as_str()],
        );
        let config = parse_config(&ldap(url, "insecure = true\n")).unwrap();
        assert!(config.auth.ldap.unwrap().insecure, "{url}");
        check(&ldap(url, "starttls = true\n"), &[]);
    }
    for url in [
        "ldap://127.0.0.1",
        "ldap://127.9.9.9:1389",
        "ldap://[::1]:389/",
        "ldap://localhost",
        "ldaps://ldap.example.org",
    ] {
        let config = parse_config(&ldap(url, "")).unwrap();
        assert!(!config.auth.ldap.unwrap().insecure, "{url}");
    }
    let drop_insecure = "7:12: auth.ldap.insecure: insecure = true accepts cleartext, and the connection uses TLS (ldaps:// or starttls = true): drop insecure";
    check(
        &ldap("ldaps://ldap.example.org", "insecure = true\n"),
        &[drop_insecure],
    );
    check(
        &ldap(
            "ldap://ldap.example.org",
            "starttls = true\ninsecure = true\n",
        ),
        &[
            "8:12: auth.ldap.insecure: insecure = true accepts cleartext, and the connection uses TLS (ldaps:// or starttls = true): drop insecure",
        ],
    );
    check(
        &ldap("ldaps://ldap.example.org", "insecure = \"yes\"\n"),
        &["7:12: auth.ldap.insecure: expected a boolean (true or false), found a string"],
    );

    let mysql = |host: &str, rest: &str| {
        format!("{HEAD}[auth.mysql]\nhost = \"{host}\"\ndatabase = \"mfv\"\nuser = \"mfv\"\n{rest}")
    };
    for host in ["db.example.org", "192.0.2.1", "2001:db8::1"] {
        check(
            &mysql(host, ""),
            &[format!("5:8: auth.mysql.tls: {}", refused(host, "set tls = true")).as_str()],
        );
        let config = parse_config(&mysql(host, "insecure = true\n")).unwrap();
        let section = config.auth.mysql.unwrap();
        assert!(section.insecure && !section.tls, "{host}");
    }
    for host in ["127.0.0.1", "::1", "localhost"] {
        let section = parse_config(&mysql(host, "")).unwrap().auth.mysql.unwrap();
        assert!(!section.tls && !section.insecure && section.ca_certificate.is_none());
    }
    let section = parse_config(&mysql(
        "db.example.org",
        "tls = true\nca_certificate = \"tls/db-ca.pem\"\n",
    ))
    .unwrap()
    .auth
    .mysql
    .unwrap();
    assert!(section.tls && !section.insecure);
    assert_eq!(section.ca_certificate.as_deref(), Some("tls/db-ca.pem"));
    check(&mysql("db.example.org", "tls = true\n"), &[]);
    check(
        &mysql("127.0.0.1", "ca_certificate = \"db-ca.pem\"\n"),
        &["8:18: auth.mysql.ca_certificate: ca_certificate is only used with tls = true"],
    );
    check(
        &mysql(
            "db.example.org",
            "tls = true\nca_certificate = \"\"\ninsecure = true\n",
        ),
        &[
            "9:18: auth.mysql.ca_certificate: the path is empty",
            "10:12: auth.mysql.insecure: insecure = true accepts cleartext, and tls = true asks for TLS: drop insecure",
        ],
    );
    check(
        &mysql("db.example.org", "tls = \"on\"\nssl = true\n"),
        &[
            "8:7: auth.mysql.tls: expected a boolean (true or false), found a string",
            "9:1: auth.mysql.ssl: unknown field \"ssl\"; expected one of \"host\", \"port\", \"database\", \"user\", \"password_file\", \"tls\", \"ca_certificate\" or \"insecure\"",
        ],
    );
}

#[test]
fn dns_split_at_unescaped_commas() {
    assert_eq!(
        parent_dn("ou=people,dc=example,dc=org"),
        Some("dc=example,dc=org")
    );
    assert_eq!(parent_dn("cn=Smith\\, J, ou=x"), Some("ou=x"));
    assert_eq!(parent_dn("dc=org"), None);
    assert_eq!(parent_dn("dc=org,"), None);
    assert_eq!(parent_dn("dc=org, "), None);
    assert_eq!(parent_dn(""), None);
    assert_eq!(
        dn_components("cn=a\\,b,dc=org").collect::<Vec<_>>(),
        ["cn=a\\,b", "dc=org"]
    );
    assert_eq!(dn_components("dc=org,").collect::<Vec<_>>(), ["dc=org", ""]);
}

#[test]
fn web_errors() {
    check_with_head(
        "[web]\nport = 0\n",
        &["5:8: web.port: 0 is out of range (1 to 65535)"],
    );
    check_with_head(
        "[web]\nport = 65536\n",
        &["5:8: web.port: 65536 is out of range (1 to 65535)"],
    );
    check_with_head(
        "[web]\nport = -1\n",
        &["5:8: web.port: -1 is out of range (1 to 65535)"],
    );
    check_with_head("[web]\nport = 0x1bb\n", &[]);
    check_with_head(
        "[web]\ntls_cert = \"cert.pem\"\n",
        &["5:12: web.tls_key: tls_cert needs tls_key"],
    );
    check_with_head(
        "[web]\ntls_key = \"key.pem\"\n",
        &["5:11: web.tls_cert: tls_key needs tls_cert"],
    );
    check_with_head(
        "[web]\ntls_key = \"\"\ntls_cert = \"\"\n",
        &[
            "5:11: web.tls_key: the path is empty",
            "6:12: web.tls_cert: the path is empty",
        ],
    );
}

#[test]
fn positions_count_characters() {
    assert_eq!(
        Position::at_offset("ab\ncd", 4),
        Position { line: 2, column: 2 }
    );
    assert_eq!(
        Position::at_offset("äö\nx", 4),
        Position { line: 1, column: 3 }
    );
    assert_eq!(Position::at_offset("ä", 1), Position { line: 1, column: 1 });
    assert_eq!(
        Position::at_offset("ab", 99),
        Position { line: 1, column: 3 }
    );
}

#[test]
fn closest_suggests_only_likely_typos() {
    assert_eq!(closest("adress", &["addresses", "name"]), Some("addresses"));
    assert_eq!(closest("Hostname", &["hostname"]), Some("hostname"));
    assert_eq!(closest("colour", &["hostname", "web"]), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn load_config_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let error = load_config_file(&missing).unwrap_err();
    assert!(matches!(&error, LoadError::Read { path, .. } if *path == missing));
    assert_eq!(
        error.to_string(),
        format!("cannot read {}", missing.display())
    );

    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 10 * 1024 * 1024]).unwrap();
    let error = load_config_file(&big).unwrap_err();
    let LoadError::Invalid { path, errors } = &error else {
        panic!("{error}");
    };
    assert_eq!(*path, big);
    assert_eq!(
        errors.to_string(),
        "the file is 10485760 bytes; a configuration file may be at most 1048576 bytes (1 MiB)"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a valid configuration (1 error(s))",
            big.display()
        )
    );

    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"version = 1\n\xff").unwrap();
    let LoadError::Invalid { errors, .. } = load_config_file(&binary).unwrap_err() else {
        panic!("not Invalid");
    };
    assert_eq!(
        errors.to_string(),
        "2:1: the file is not UTF-8 text (byte 0xff at offset 12)"
    );

    let good = dir.path().join(CONFIG_FILE_NAME);
    std::fs::write(&good, data("full.toml")).unwrap();
    let (config, notes) = load_config_file(&good).unwrap();
    assert_eq!(config.host.hostname, "vmhost1.example.org");
    assert!(notes.is_empty());
}

#[test]
fn cidr_parses_and_prints() {
    let cidr: IpCidr = "2001:db8::1/64".parse().unwrap();
    assert_eq!(cidr.prefix(), 64);
    assert_eq!(cidr.to_string(), "2001:db8::1/64");
    assert_eq!(
        IpCidr::new("192.0.2.1".parse().unwrap(), 33),
        Err(CidrError::PrefixTooLong {
            prefix: 33,
            max: 32
        })
    );
    assert_eq!(
        "1.2.3.4/+5".parse::<IpCidr>(),
        Err(CidrError::BadPrefix("+5".to_owned()))
    );
    assert_eq!(
        "1.2.3.4/".parse::<IpCidr>(),
        Err(CidrError::BadPrefix(String::new()))
    );
}

#[test]
fn keys_and_values_from_the_file_are_shown_escaped_on_one_line() {
    check(
        "\"x\\u001b]0;owned\\u0007\\nforged\" = 1\nversion = 1\n[host]\nhostname = \"a\\u009b2J\"\n",
        &[
            "1:1: x\\u001b]0;owned\\u0007\\u000aforged: unknown field \
             \"x\\u{1b}]0;owned\\u{7}\\nforged\"; expected one of \"version\", \"host\", \
             \"network\", \"storage\", \"auth\", \"web\" or \"log\"",
            "4:12: host.hostname: \"a\\u{9b}2J\" contains '\\u{9b}'; host names use letters, \
             digits, '-' and '.' only",
        ],
    );
}

#[test]
fn host_vm_shutdown_timeout_defaults_to_a_minute_and_is_range_checked() {
    let config = parse_config(HEAD).unwrap();
    assert_eq!(config.host.vm_shutdown_timeout, 60);
    let config = parse_config(&format!("{HEAD}vm_shutdown_timeout = 5\n")).unwrap();
    assert_eq!(config.host.vm_shutdown_timeout, 5);
    check_with_head(
        "vm_shutdown_timeout = 0\n",
        &["4:23: host.vm_shutdown_timeout: 0 is out of range (1 to 3600)"],
    );
    let mut built = parse_config(HEAD).unwrap();
    built.host.vm_shutdown_timeout = 7200;
    let errors = built.validate().unwrap_err();
    let errors: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        ["host.vm_shutdown_timeout: 7200 is out of range (1 to 3600)"]
    );
}

#[test]
fn host_autostart_order_names_vms_once_each() {
    assert!(parse_config(HEAD).unwrap().host.autostart_order.is_empty());
    let config = parse_config(&format!("{HEAD}autostart_order = [\"db\", \"web-1\"]\n")).unwrap();
    assert_eq!(config.host.autostart_order, ["db", "web-1"]);
    check_with_head(
        "autostart_order = [\"db\", \"\", \"-x\", \"db\"]\n",
        &[
            "4:26: host.autostart_order[1]: the VM name is empty",
            "4:30: host.autostart_order[2]: \"-x\" is not a VM name (letters, digits, '.', '_' \
             and '-', starting with a letter or digit, at most 64 bytes)",
            "4:36: host.autostart_order[3]: \"db\" is named twice (already \
             host.autostart_order[0])",
        ],
    );
    check_with_head(
        "autostart_order = \"db\"\n",
        &["4:19: host.autostart_order: expected an array, found a string"],
    );
}

#[test]
fn auth_min_password_length_defaults_to_eight_and_is_range_checked() {
    let config = parse_config(&format!("{HEAD}[auth]\n")).unwrap();
    assert_eq!(config.auth.min_password_length, 8);
    assert_eq!(AuthConfig::default().min_password_length, 8);
    let config = parse_config(&format!("{HEAD}[auth]\nmin_password_length = 12\n")).unwrap();
    assert_eq!(config.auth.min_password_length, 12);
    check_with_head(
        "[auth]\nmin_password_length = 4\n",
        &["5:23: auth.min_password_length: 4 is out of range (8 to 4096)"],
    );
    check_with_head(
        "[auth]\nmin_password_length = \"8\"\n",
        &["5:23: auth.min_password_length: expected an integer, found a string"],
    );
    // A configuration built in code is held to the same range.
    let mut built = parse_config(HEAD).unwrap();
    built.auth.min_password_length = 7;
    let errors = built.validate().unwrap_err();
    let errors: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        ["auth.min_password_length: 7 is out of range (8 to 4096)"]
    );
}

#[test]
fn auth_ldap_disabled_filter_is_optional_and_checked() {
    let ldap = |rest: &str| {
        format!(
            "{HEAD}[auth.ldap]\nurl = \"ldaps://ldap.example.org\"\nbase_dn = \"ou=people,dc=example,dc=org\"\n{rest}"
        )
    };
    let config = parse_config(&ldap("")).unwrap();
    assert_eq!(config.auth.ldap.unwrap().disabled_filter, None);
    let config = parse_config(&ldap("disabled_filter = \"(nsAccountLock=TRUE)\"\n")).unwrap();
    assert_eq!(
        config.auth.ldap.unwrap().disabled_filter.as_deref(),
        Some("(nsAccountLock=TRUE)")
    );
    check(
        &ldap("disabled_filter = \"nsAccountLock=TRUE\"\n"),
        &[
            "7:19: auth.ldap.disabled_filter: \"nsAccountLock=TRUE\" is not an LDAP filter in parentheses",
        ],
    );
    check(
        &ldap("disabled_filter = \"(|(a=1)\"\n"),
        &["7:19: auth.ldap.disabled_filter: \"(|(a=1)\" has unbalanced parentheses"],
    );
}

#[test]
fn log_remote_takes_udp_or_tcp_with_a_default_port_per_transport() {
    for (url, transport, host, port) in [
        ("udp://192.0.2.10", LogTransport::Udp, "192.0.2.10", 514),
        ("udp://loghost:5514", LogTransport::Udp, "loghost", 5514),
        (
            "tcp://loghost.example.org",
            LogTransport::Tcp,
            "loghost.example.org",
            601,
        ),
        (
            "tcp://[2001:db8::1]:6514",
            LogTransport::Tcp,
            "2001:db8::1",
            6514,
        ),
        ("tcp://[2001:db8::1]", LogTransport::Tcp, "2001:db8::1", 601),
    ] {
        let config = parse_config(&format!("{HEAD}[log]\nremote = \"{url}\"\n")).unwrap();
        let remote = config.log.remote.clone().unwrap();
        assert_eq!(
            (remote.transport(), remote.host(), remote.port()),
            (transport, host, port),
            "{url}"
        );
        // Written back as it was given: no port is added.
        assert_eq!(remote.to_string(), url);
        assert!(
            config
                .to_toml()
                .contains(&format!("[log]\nremote = \"{url}\"\n"))
        );
    }
    // An empty section is the default and is not written.
    let config = parse_config(&format!("{HEAD}[log]\n")).unwrap();
    assert_eq!(config.log, LogConfig::default());
    assert!(!config.to_toml().contains("[log]"));
}

#[test]
fn log_remote_errors_name_the_field_and_the_url() {
    for (url, message) in [
        (
            "192.0.2.10:514",
            "\"192.0.2.10:514\" does not start with udp:// or tcp:// (for example udp://192.0.2.10 or tcp://loghost.example:601)",
        ),
        (
            "tls://loghost:6514",
            "\"tls://loghost:6514\" does not start with udp:// or tcp:// (syslog over TLS is not supported)",
        ),
        (
            "http://loghost",
            "\"http://loghost\" does not start with udp:// or tcp://",
        ),
        ("udp://", "\"udp://\": no host"),
        ("udp://:514", "\"udp://:514\": no host"),
        (
            "tcp://loghost:0",
            "\"tcp://loghost:0\": \"0\" is not a port (1 to 65535)",
        ),
        (
            "tcp://loghost:70000",
            "\"tcp://loghost:70000\": \"70000\" is not a port (1 to 65535)",
        ),
        (
            "tcp://loghost:601/path",
            "\"tcp://loghost:601/path\": \"601/path\" is not a port (1 to 65535)",
        ),
        (
            "udp://log_host",
            "\"udp://log_host\": the host is not an IP address, and \"log_host\" contains '_'; host names use letters, digits, '-' and '.' only",
        ),
        (
            "udp://[loghost]",
            "\"udp://[loghost]\": \"loghost\" is not an IPv6 address",
        ),
    ] {
        check_with_head(
            &format!("[log]\nremote = \"{url}\"\n"),
            &[&format!("5:10: log.remote: {message}")],
        );
        // serde's reading refuses it with the same words.
        let error = toml::from_str::<Config>(&format!("{HEAD}[log]\nremote = \"{url}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(message), "{error}");
    }
    check_with_head(
        "[log]\nremote = 514\n",
        &["5:10: log.remote: expected a string, found an integer"],
    );
    check_with_head(
        "[log]\nserver = \"udp://loghost\"\n",
        &["5:1: log.server: unknown field \"server\"; expected one of \"remote\""],
    );
    check(
        "version = 1\nlog = \"udp://loghost\"\n[host]\nhostname = \"vmhost1\"\n",
        &["2:7: log: expected a table, found a string"],
    );
}

/// Parses `text` as a network section alone and compares the errors, as [`check`] does.
#[track_caller]
fn check_section(text: &str, expected: &[&str]) {
    let actual: Vec<String> = match parse_network_section(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    };
    assert_eq!(actual, expected, "errors for:\n{text}");
}

#[test]
fn a_network_section_is_read_alone_with_the_same_checks() {
    let network = parse_network_section(
        "[network]\n[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
         addresses = [\"192.0.2.10/24\"]\ngateway = \"192.0.2.1\"\n",
    )
    .unwrap();
    assert_eq!(network.interfaces[0].name, "eth0");
    assert_eq!(network.interfaces[0].mode, InterfaceMode::Static);
    // Only the table header of an interface list is enough.
    let network = parse_network_section("[[network.interfaces]]\nname = \"eth0\"\n").unwrap();
    assert_eq!(network.interfaces[0].mode, InterfaceMode::Dhcp);
    check_section(
        "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\ngateway = \"192.0.2.1\"\n",
        &[
            "1:1: network.interfaces[0].addresses: mode = \"static\" needs at least one address",
            "4:11: network.interfaces[0].gateway: gateway 192.0.2.1 is IPv4 but the interface \
             has no IPv4 address",
        ],
    );
}

#[test]
fn a_network_section_holds_nothing_else() {
    check_section(
        "version = 1\n[network]\n[host]\nhostname = \"x\"\n",
        &[
            "1:1: version: unknown field \"version\"; expected one of \"network\"",
            "3:2: host: unknown field \"host\"; expected one of \"network\"",
        ],
    );
    check_section(
        "[netwrk]\n",
        &[
            "1:1: network: missing required section [network]",
            "1:2: netwrk: unknown field \"netwrk\"; did you mean \"network\"?",
        ],
    );
    check_section(
        " \n",
        &["1:1: the text is empty; a network section starts with `[network]`"],
    );
    check_section(
        "[network\n",
        &["1:9: TOML syntax: unclosed table, expected `]`"],
    );
}
