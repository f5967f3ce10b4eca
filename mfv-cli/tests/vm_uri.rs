//! `mfv vm` finds libvirt as virsh does: `--uri`, else `LIBVIRT_DEFAULT_URI`, else
//! `qemu:///system`. Run against libvirt's in-process test driver, which needs no daemon.

use std::process::{Command, Output};

fn mfv(args: &[&str], default_uri: Option<&str>) -> std::io::Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mfv"));
    command.args(args).env_remove("LIBVIRT_DEFAULT_URI");
    if let Some(uri) = default_uri {
        command.env("LIBVIRT_DEFAULT_URI", uri);
    }
    command.output()
}

#[test]
fn the_default_uri_comes_from_libvirt_default_uri() {
    let output = mfv(&["vm", "list", "--json"], Some("test:///default")).unwrap();
    assert!(output.status.success(), "{output:?}");
    let vms: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(vms[0]["name"], "test", "{vms}");
}

#[test]
fn the_uri_flag_wins_over_libvirt_default_uri() {
    let output = mfv(
        &["vm", "list", "--uri", "test:///default"],
        Some("test:///nonexistent/mfv/node.xml"),
    )
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("test "));
    let output = mfv(&["vm", "list"], Some("test:///nonexistent/mfv/node.xml")).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mfv: cannot connect to libvirt at test:///nonexistent/mfv/node.xml"),
        "{stderr}"
    );
}
