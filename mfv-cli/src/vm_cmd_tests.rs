//! Tests of `mfv vm`, run in-process against libvirt's test driver (`test:///default`).
//! Each connection to it starts from the driver's fresh state, so a test keeps one
//! connection for all its commands.

use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use serde_json::Value;

use super::*;
use crate::{Cli, Command};

const URI: &str = "test:///default";

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Parses `mfv vm ARGS --uri test:///default` and runs it.
fn mfv_vm(hypervisor: &Hypervisor, args: &[&str]) -> Result<String> {
    let mut argv = vec!["mfv", "vm", "--uri", URI];
    argv.extend_from_slice(args);
    let Command::Vm(vm_args) = Cli::try_parse_from(argv)?.command else {
        panic!("not a vm command");
    };
    assert_eq!(vm_args.uri, hypervisor.uri());
    Ok(execute(hypervisor, vm_args.command, vm_args.json)?.stdout)
}

fn create_small(hv: &Hypervisor, name: &str) {
    let out = mfv_vm(
        hv,
        &[
            "create",
            "--name",
            name,
            "--vcpus",
            "1",
            "--memory-mib",
            "128",
            "--accel",
            "tcg",
        ],
    )
    .unwrap();
    assert_eq!(out, format!("created VM {name} (tcg)\n"));
}

fn listed(hv: &Hypervisor, name: &str) -> Option<Value> {
    let out = mfv_vm(hv, &["list", "--json"]).unwrap();
    let vms: Value = serde_json::from_str(&out).unwrap();
    vms.as_array()
        .unwrap()
        .iter()
        .find(|vm| vm["name"] == name)
        .cloned()
}

#[test]
fn vm_cmd_list_json_shape() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-list");
    create_small(hv, &name);
    let vm = listed(hv, &name).unwrap();
    let keys: Vec<_> = vm.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["autostart", "name", "persistent", "state", "uuid"].map(String::from)
    );
    assert_eq!(vm["state"], "shut_off");
    assert_eq!(vm["persistent"], true);
    let text = mfv_vm(hv, &["list"]).unwrap();
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.lines().any(|line| line.starts_with(&name)), "{text}");
}

#[test]
fn vm_cmd_create_from_flags_start_kill_delete() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-flags");
    let out = mfv_vm(
        hv,
        &[
            "create",
            "--name",
            &name,
            "--vcpus",
            "2",
            "--memory-mib",
            "256",
            "--image",
            "/var/lib/images/base.qcow2",
            "--network",
            "default",
            "--autostart",
            "--accel",
            "tcg",
            "--json",
        ],
    )
    .unwrap();
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["name"], name.as_str());
    assert_eq!(summary["autostart"], true);
    let shown: Value =
        serde_json::from_str(&mfv_vm(hv, &["show", &name, "--json"]).unwrap()).unwrap();
    assert_eq!(shown["vcpus"], 2);
    assert_eq!(shown["max_memory_kib"], 256 * 1024);
    assert!(
        mfv_vm(hv, &["show", &name])
            .unwrap()
            .contains("memory:     256 MiB")
    );

    assert_eq!(
        mfv_vm(hv, &["start", &name]).unwrap(),
        format!("started VM {name}\n")
    );
    assert_eq!(listed(hv, &name).unwrap()["state"], "running");
    let error = mfv_vm(hv, &["delete", &name]).unwrap_err();
    assert!(format!("{error:#}").contains(&name), "{error:#}");
    assert_eq!(
        mfv_vm(hv, &["kill", &name]).unwrap(),
        format!("VM {name} forced off\n")
    );
    assert_eq!(
        mfv_vm(hv, &["shutdown", &name, "--timeout", "1"]).unwrap(),
        format!("VM {name} was not running\n")
    );
    assert_eq!(
        mfv_vm(hv, &["delete", &name]).unwrap(),
        format!("deleted VM {name} (disks kept)\n")
    );
    assert!(listed(hv, &name).is_none());
}

#[test]
fn vm_cmd_create_from_a_spec_file() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-spec");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.json");
    std::fs::write(
        &path,
        serde_json::json!({
            "name": name, "vcpus": 1, "memory_mib": 512,
            "nics": [{"source": {"bridge": "br0"}, "mac": "52:54:00:12:34:56"}],
            "description": "from a file"
        })
        .to_string(),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    create_from_spec(hv, path, &name);
    assert_eq!(listed(hv, &name).unwrap()["state"], "shut_off");

    let error = mfv_vm(hv, &["create", "--spec", path, "--accel", "tcg"]).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("name"), "{message}");
    assert!(message.contains("52:54:00:12:34:56"), "{message}");
    mfv_vm(hv, &["delete", &name]).unwrap();
}

fn create_from_spec(hv: &Hypervisor, path: &str, name: &str) {
    assert_eq!(
        mfv_vm(hv, &["create", "--spec", path, "--accel", "tcg"]).unwrap(),
        format!("created VM {name} (tcg)\n")
    );
}

#[test]
fn vm_cmd_bad_spec_prints_every_error() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let error = mfv_vm(
        hv,
        &[
            "create",
            "--name=-bad name",
            "--vcpus",
            "0",
            "--memory-mib",
            "1",
            "--image",
            "relative.qcow2",
        ],
    )
    .unwrap_err();
    let message = format!("{error:#}");
    let problems: Vec<_> = message.lines().skip(1).collect();
    assert!(message.starts_with("invalid VM spec ("), "{message}");
    for field in ["name", "vcpus", "memory_mib", "disks[0]"] {
        assert!(
            problems
                .iter()
                .any(|line| line.trim_start().starts_with(field)),
            "{field} missing in {message}"
        );
    }
}

#[test]
fn vm_cmd_bad_flags_and_files() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let error = mfv_vm(
        hv,
        &[
            "create",
            "--name",
            "x",
            "--vcpus",
            "1",
            "--memory-mib",
            "64",
            "--disk",
            "default",
        ],
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("expected POOL:SIZE_GIB"));
    let error = mfv_vm(
        hv,
        &[
            "create",
            "--name",
            "x",
            "--vcpus",
            "1",
            "--memory-mib",
            "64",
            "--disk",
            "default:big",
        ],
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("not a whole number"));
    let error = mfv_vm(hv, &["create", "--spec", "/nonexistent/vm.json"]).unwrap_err();
    assert!(format!("{error:#}").contains("cannot read the VM spec /nonexistent/vm.json"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.json");
    std::fs::write(
        &path,
        r#"{"name": "x", "vcpus": 1, "memory_mib": 64, "colour": 1}"#,
    )
    .unwrap();
    let error = mfv_vm(hv, &["create", "--spec", path.to_str().unwrap()]).unwrap_err();
    assert!(format!("{error:#}").contains("colour"), "{error:#}");
    let error = mfv_vm(hv, &["create", "--name", "x"]).unwrap_err();
    assert_eq!(error.downcast_ref::<clap::Error>().unwrap().exit_code(), 2);
}

#[test]
fn vm_cmd_new_volume_in_a_missing_pool_fails_before_define() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-pool");
    let error = mfv_vm(
        hv,
        &[
            "create",
            "--name",
            &name,
            "--vcpus",
            "1",
            "--memory-mib",
            "64",
            "--disk",
            "no-such-pool:1",
            "--accel",
            "tcg",
        ],
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("no-such-pool"), "{error:#}");
    assert!(listed(hv, &name).is_none());
}

#[test]
fn vm_cmd_not_found() {
    let hv = &Hypervisor::connect(URI).unwrap();
    for command in ["show", "start", "kill", "reboot", "delete"] {
        let error = mfv_vm(hv, &[command, "c-no-such-vm"]).unwrap_err();
        assert!(
            format!("{error:#}").contains("c-no-such-vm"),
            "{command}: {error:#}"
        );
    }
    let error = mfv_vm(hv, &["snapshot", "list", "c-no-such-vm"]).unwrap_err();
    assert!(format!("{error:#}").contains("c-no-such-vm"), "{error:#}");
}

#[test]
fn vm_cmd_console_vnc_without_a_port() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-vnc");
    create_small(hv, &name);
    let error = mfv_vm(hv, &["console", &name, "--vnc"]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "VM {name} has no VNC port: it is not running, or its display listens on none (only a \
             display with a password in its spec gets a loopback port; the web console needs none)"
        )
    );
    assert_eq!(
        mfv_vm(hv, &["console", &name, "--vnc", "--json"]).unwrap(),
        "null\n"
    );
    mfv_vm(hv, &["delete", &name]).unwrap();
}

#[test]
fn vm_cmd_snapshots_on_the_test_driver() {
    let hv = &Hypervisor::connect(URI).unwrap();
    let name = unique("c-snap");
    create_small(hv, &name);
    assert_eq!(
        mfv_vm(
            hv,
            &[
                "snapshot",
                "create",
                &name,
                "before",
                "--description",
                "clean"
            ]
        )
        .unwrap(),
        format!("created snapshot before of VM {name}\n")
    );
    let out = mfv_vm(hv, &["snapshot", "list", &name, "--json"]).unwrap();
    let snapshots: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(snapshots[0]["name"], "before");
    assert_eq!(snapshots[0]["description"], "clean");
    let text = mfv_vm(hv, &["snapshot", "list", &name]).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("before"), "{text}");
    assert_eq!(
        mfv_vm(hv, &["snapshot", "revert", &name, "before"]).unwrap(),
        format!("VM {name} reverted to snapshot before\n")
    );
    assert_eq!(
        mfv_vm(hv, &["snapshot", "delete", &name, "before"]).unwrap(),
        format!("deleted snapshot before of VM {name}\n")
    );
    assert!(mfv_vm(hv, &["snapshot", "delete", &name, "before"]).is_err());
    mfv_vm(hv, &["delete", &name]).unwrap();
}

#[test]
fn vm_cmd_helpers() {
    assert_eq!(virtio_target(0), "vda");
    assert_eq!(virtio_target(25), "vdz");
    assert_eq!(virtio_target(26), "vdaa");
    assert!(!host_capabilities(Accel::Tcg).kvm_usable);
    assert!(host_capabilities(Accel::Kvm).kvm_usable);
}
