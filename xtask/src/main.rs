//! `cargo xtask`: build tooling for Minifed-Virt (Debian packages, front-end bundles, kernel,
//! appliance image, QEMU boot, the whole test suite and benchmarks).

mod bench;
mod bench_auth;
mod bench_dhcp;
mod bench_media;
mod bench_pages;
mod bench_reference;
mod bench_vm;
mod bench_web;
mod boot;
mod cmd;
mod cpio;
mod deps;
mod elf;
mod fuzz;
mod icu_data;
mod image;
mod kernel;
mod media;
mod modules;
mod packages;
mod suite;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Build tooling for Minifed-Virt.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the Debian packages the project needs and install the missing ones (as root).
    Deps {
        /// Only check; fail if a package is missing instead of installing it.
        #[arg(long)]
        check: bool,
    },
    /// Build mfv-web's front-end bundles into mfv-web/web/dist/ (installing the npm packages
    /// of its lockfile with `npm ci --ignore-scripts` when node_modules is missing or older).
    Web,
    /// Download and unpack the Debian kernel package into target/kernel/ (cached by version).
    Kernel,
    /// Build the appliance: target/appliance/{vmlinuz,initrd.img,manifest.txt} and the boot
    /// media (boot.ipxe, grub-netboot.cfg, minifed-virt.iso).
    Image {
        /// Put debug builds of our binaries in the image instead of release builds.
        #[arg(long)]
        debug: bool,
    },
    /// Build the image and boot it in QEMU with the serial console on this terminal.
    Boot {
        /// Use KVM instead of TCG (real hardware only; nested KVM hangs).
        #[arg(long)]
        kvm: bool,
        /// Put debug builds of our binaries in the image.
        #[arg(long)]
        debug: bool,
        /// Start over with blank disks (target/boot/config.img and data.img).
        #[arg(long)]
        fresh: bool,
        /// Extra kernel command line arguments (after `--`).
        #[arg(last = true)]
        kernel_args: Vec<String>,
    },
    /// Run the whole suite: packages, kernel, front-end bundles, fmt, clippy, doc, image,
    /// cargo test.
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// Run a benchmark and record it in BENCHMARKS.md.
    Bench {
        #[command(subcommand)]
        benchmark: Benchmark,
    },
    /// Run each cargo-fuzz target of mfv-config for a bounded time and record executions and
    /// crashes in BENCHMARKS.md (not part of `test`).
    Fuzz {
        /// How long each target runs, in seconds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
        seconds: u32,
    },
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// Boot our image and a reference image of the seed's classic stack (busybox, modprobe loop,
    /// udhcpc, lighttpd + php-cgi) under QEMU TCG, alternately: first web answer, kernel start
    /// to /init, coldplug, RAM in use.
    Boot {
        /// How many boots of each image to time.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
    },
    /// Boot the image from each boot medium (PXE on BIOS and UEFI, the ISO as a CD and on a
    /// USB stick on BIOS and UEFI) under QEMU TCG: QEMU start to /init and to the first HTTPS
    /// answer, and the media's sizes.
    Media {
        /// How many boots of each medium to time.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
    },
    /// Boot a machine with many devices and time driver coldplug by mfv-init against busybox
    /// modprobe over every modalias (two boots per round).
    Probe {
        /// How many rounds to time.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
    },
    /// Logins and session checks per second on the SQLite, LDAP and MySQL user backends
    /// (private slapd and mariadbd on loopback).
    Auth {
        /// How long each measurement runs, in seconds.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=60))]
        seconds: u32,
    },
    /// Time from DHCP client start to address configured (mfv-net, busybox udhcpc,
    /// dhclient) in network namespaces with dnsmasq (as root).
    Dhcp {
        /// How many timed runs per client.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
    },
    /// List many defined VMs with `mfv vm list` against `virsh list --all` (libvirt's test
    /// driver and a private libvirtd), and time a real TCG guest's define, start, force off,
    /// undefine cycle (as root).
    Vm {
        /// How many timed runs of each listing.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// How many VMs to define and list.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=9999))]
        domains: u32,
        /// How many timed guest cycles.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        cycles: u32,
    },
    /// wrk against the REST API's authenticated VM list (mfv-web with a private libvirtd)
    /// and against lighttpd with php-cgi doing the same from SQLite, then a soak at 256
    /// connections (as root).
    Web {
        /// Seconds of each run at 32 connections.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
        seconds: u32,
        /// Seconds of the soak at 256 connections.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
        soak_seconds: u32,
        /// How many VMs to define and list.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=9999))]
        vms: u32,
    },
}

/// Where the workspace lives and where builds go.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root (holds the root Cargo.toml).
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target: PathBuf,
    /// The cargo program that runs us.
    pub cargo: PathBuf,
}

impl Workspace {
    fn locate() -> Self {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf);
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
        Self {
            root,
            target,
            cargo,
        }
    }

    /// A `cargo` command running in the workspace root.
    pub fn cargo(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.cargo);
        command.current_dir(&self.root);
        command
    }

    /// Where `cargo xtask image` writes the appliance.
    pub fn appliance_dir(&self) -> PathBuf {
        self.target.join("appliance")
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let workspace = Workspace::locate();
    match cli.command {
        Command::Deps { check } => {
            let mode = if check {
                deps::Mode::CheckOnly
            } else {
                deps::Mode::Install
            };
            deps::ensure(mode)
        }
        Command::Web => web::build(&workspace),
        Command::Kernel => {
            deps::ensure(deps::Mode::Install)?;
            kernel::fetch(&workspace).map(drop)
        }
        Command::Image { debug } => {
            deps::ensure(deps::Mode::Install)?;
            image::build(&workspace, image::Profile::from_debug_flag(debug)).map(drop)
        }
        Command::Boot {
            kvm,
            debug,
            fresh,
            kernel_args,
        } => {
            deps::ensure(deps::Mode::Install)?;
            image::build(&workspace, image::Profile::from_debug_flag(debug))?;
            boot::interactive(&workspace, kvm, fresh, &kernel_args)
        }
        Command::Test { cargo_test_args } => suite::run(&workspace, &cargo_test_args),
        Command::Bench {
            benchmark: Benchmark::Boot { runs },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench::boot(&workspace, runs)
        }
        Command::Bench {
            benchmark: Benchmark::Media { runs },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench_media::media_bench(&workspace, runs)
        }
        Command::Bench {
            benchmark: Benchmark::Probe { runs },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench::probe(&workspace, runs)
        }
        Command::Bench {
            benchmark: Benchmark::Auth { seconds },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench_auth::auth(&workspace, seconds)
        }
        Command::Bench {
            benchmark: Benchmark::Dhcp { runs },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench_dhcp::dhcp(&workspace, runs)
        }
        Command::Bench {
            benchmark:
                Benchmark::Vm {
                    runs,
                    domains,
                    cycles,
                },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench_vm::vm(
                &workspace,
                bench_vm::VmBenchOptions {
                    runs,
                    domains,
                    cycles,
                },
            )
        }
        Command::Bench {
            benchmark:
                Benchmark::Web {
                    seconds,
                    soak_seconds,
                    vms,
                },
        } => {
            deps::ensure(deps::Mode::Install)?;
            bench_web::web(
                &workspace,
                bench_web::WebBenchOptions {
                    seconds,
                    soak_seconds,
                    vms,
                },
            )
        }
        Command::Fuzz { seconds } => fuzz::run(&workspace, seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn boot_passes_kernel_arguments_after_double_dash() {
        let cli =
            Cli::try_parse_from(["xtask", "boot", "--", "mfv.halt=poweroff", "quiet"]).unwrap();
        match cli.command {
            Command::Boot {
                kvm, kernel_args, ..
            } => {
                assert!(!kvm);
                assert_eq!(kernel_args, ["mfv.halt=poweroff", "quiet"]);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_boot_runs_default_to_five_and_reject_zero() {
        let cli = Cli::try_parse_from(["xtask", "bench", "boot"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Boot { runs: 5 }
            }
        ));
        assert!(Cli::try_parse_from(["xtask", "bench", "boot", "--runs", "0"]).is_err());
    }

    #[test]
    fn bench_probe_runs_default_to_three_and_reject_zero() {
        let cli = Cli::try_parse_from(["xtask", "bench", "probe"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench {
                benchmark: Benchmark::Probe { runs: 3 }
            }
        ));
        assert!(Cli::try_parse_from(["xtask", "bench", "probe", "--runs", "0"]).is_err());
    }
}
