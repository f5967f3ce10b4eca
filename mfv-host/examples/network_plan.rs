//! Prints the network state and DHCP clients a configuration file (or an `mfv.net=` value)
//! would give the host at boot, without changing anything:
//! `cargo run -p mfv-host --example network_plan -- mfv.toml` or
//! `cargo run -p mfv-host --example network_plan -- --net eth0:192.0.2.10/24,gw=192.0.2.1`.

use std::path::Path;
use std::process::ExitCode;

use mfv_config::cmdline::KernelCmdline;
use mfv_config::schema::load_config_file;
use mfv_host::network::NetworkSteps;
use mfv_host::network::plan::{boot_option_steps, config_steps, named_interface};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps = match args.as_slice() {
        [flag, spec] if flag == "--net" => {
            let options = KernelCmdline::parse(&format!("mfv.net={spec}")).boot_options();
            let Some(provisioning) = options.net else {
                for warning in &options.warnings {
                    eprintln!("network_plan: {warning}");
                }
                return ExitCode::FAILURE;
            };
            let interface = named_interface(&provisioning).unwrap_or("<first NIC with carrier>");
            boot_option_steps(&provisioning, interface)
        }
        [file] => match load_config_file(Path::new(file)) {
            Ok((config, _)) => config_steps(&config.network),
            Err(error) => {
                eprintln!("network_plan: {}", mfv_linux::error_chain(&error));
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("usage: network_plan MFV.TOML | network_plan --net SPEC");
            return ExitCode::from(2);
        }
    };
    print(&steps);
    ExitCode::SUCCESS
}

fn print(steps: &NetworkSteps) {
    for interface in &steps.state.interfaces {
        let addresses: Vec<String> = interface
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "interface {} ({:?}) up={} mtu={} addresses=[{}]",
            interface.name,
            interface.kind,
            interface.up,
            interface
                .mtu
                .map_or_else(|| "-".to_owned(), |mtu| mtu.to_string()),
            addresses.join(", ")
        );
    }
    for route in &steps.state.routes {
        println!("route {route}");
    }
    if let Some(dns) = &steps.state.dns {
        let servers: Vec<String> = dns.nameservers.iter().map(ToString::to_string).collect();
        println!("dns {}", servers.join(", "));
    }
    for interface in &steps.dhcp {
        println!("dhcp {interface}");
    }
}
