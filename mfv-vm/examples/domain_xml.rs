//! Prints the libvirt domain XML of a VM spec, or reads domain XML back into a spec:
//! `cargo run -p mfv-vm --example domain_xml -- mfv-vm/examples/web-1.json` writes the XML for
//! this host (`--tcg` pretends KVM is unusable); `... -- --import domain.xml` (e.g. from
//! `virsh dumpxml --security-info NAME`) prints the spec as JSON and what was kept or lost.
//! Exit status 0 on success, 1 when the spec or XML is refused, 2 on a usage or read error.

use std::process::ExitCode;

use mfv_vm::{HostCapabilities, VmSpec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (import, tcg, path) = match args.as_slice() {
        [flag, path] if flag == "--import" => (true, false, path),
        [flag, path] if flag == "--tcg" => (false, true, path),
        [path] => (false, false, path),
        _ => {
            eprintln!("usage: domain_xml [--tcg] SPEC.json | domain_xml --import DOMAIN.xml");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {path}: {error}");
            return ExitCode::from(2);
        }
    };
    if import {
        return match VmSpec::from_domain_xml(&text) {
            Ok(domain) => {
                match serde_json::to_string_pretty(&domain.spec) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::from(2);
                    }
                }
                for kept in &domain.preserved {
                    eprintln!("kept verbatim: {kept}");
                }
                for lost in &domain.dropped {
                    eprintln!("not kept: {lost}");
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {path}: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let spec: VmSpec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("error: {path}: {error}");
            return ExitCode::from(2);
        }
    };
    let mut host = HostCapabilities::probe();
    if tcg {
        host.kvm_usable = false;
    }
    match spec.to_domain_xml(&host) {
        Ok(xml) => {
            println!("{xml}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {path}: {error}");
            ExitCode::FAILURE
        }
    }
}
