//! PID 1 takes the configuration first-boot setup saved into use, without a reboot
//! ([`mfv_host::setup_adoption`]): the host leaves setup and runs as if it had booted with it.
//!
//! The configuration is read from the saved volume as the boot reads one, so what runs is
//! what the next boot finds. Then what the boot's phases do with a configuration is done
//! again (host name, log server, clock, the settings not applied), the setup ends, the
//! services that read the configuration when they start (the web server, the VM keeper) get
//! its settings and are restarted, and the host state names the volume last: that is what
//! the host daemon waits for before it tells the browser that the host is set up.
//!
//! The network stays as it is: setup's network step applied and confirmed it already, from
//! the address the browser uses. When the saved `[network]` differs, changing it here could
//! cut the operator off without the confirmation that guards every other change, so the
//! console says so and the next boot applies it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use mfv_config::cmdline::{BootOptions, ConfigLocator};
use mfv_config::discovery::{Discovery, DiscoveryParams};
use mfv_host::network::plan::config_steps;

use super::{Init, configure_service};
use crate::clock::Clock;
use crate::services::{VM_KEEPER_SERVICE, WEB_SERVICE};
use crate::system::System;

/// A step the boot runs with a configuration, run again for the saved one.
type ConfigStep<S, C, W> = fn(&mut Init<S, C, W>, &mut BootOptions) -> anyhow::Result<()>;

impl<S: System, C: Clock, W: Write> Init<S, C, W> {
    /// On SIGHUP: takes the configuration first-boot setup saved into use, when the host
    /// daemon left one.
    pub(super) fn adopt_saved_setup(&mut self) {
        let run_dir = self.settings.run_dir.clone();
        let device = match self.system.take_setup_saved(&run_dir) {
            None => return,
            Some(Ok(device)) => device,
            Some(Err(error)) => {
                self.log(format_args!(
                    "setup: the saved setup cannot be taken into use: {error:#}"
                ));
                return;
            }
        };
        if let Some(Discovery::Found { source, .. }) =
            self.config.as_ref().map(|report| &report.outcome)
        {
            let message = format!(
                "setup: the setup saved on {} is not taken into use: the host runs with the \
                 configuration on {}",
                device.display(),
                source.device.display()
            );
            self.log(message);
            return;
        }
        self.log(format_args!(
            "setup: taking the configuration saved on {} into use",
            device.display()
        ));
        if !self.read_saved_config(device) {
            return;
        }
        let steps: [(&str, ConfigStep<S, C, W>); 4] = [
            ("hostname", Self::set_hostname),
            ("log", Self::forward_logs),
            ("clock", Self::keep_time),
            ("settings", Self::report_unapplied_settings),
        ];
        for (name, step) in steps {
            if let Err(error) = step(self, &mut BootOptions::default()) {
                self.log(format_args!("{name}: FAILED: {error:#}"));
            }
        }
        self.keep_network_for_saved_config();
        self.end_setup();
        if let Some(config) = self.found_config().cloned() {
            self.supervisor
                .change_specs(|service| configure_service(service, &config));
            let mut services = self.settings.services.clone();
            services
                .iter_mut()
                .for_each(|service| configure_service(service, &config));
            self.publish_web_port(&services);
        }
        self.write_host_state();
        for name in [VM_KEEPER_SERVICE, WEB_SERVICE] {
            let now = self.clock.uptime();
            let lines = self.supervisor.restart(name, now, &mut self.system);
            self.log_services(lines);
        }
        self.log("setup: done: the host runs with its configuration");
    }

    /// Reads the configuration on `device` as the boot would, shows the report and keeps
    /// it; whether it is usable (when not, the host stays in setup).
    fn read_saved_config(&mut self, device: PathBuf) -> bool {
        let params = DiscoveryParams {
            sysfs_root: self.settings.sysfs_root.clone(),
            dev_root: self.settings.dev_dir.clone(),
            run_dir: self.settings.run_dir.clone(),
            // The daemon has just written it: the volume is there, so one look.
            ..DiscoveryParams::new(
                Some(ConfigLocator::Device(device.clone())),
                Some(Duration::ZERO),
            )
        };
        let report = self.system.discover_config(&params);
        self.show_config_report(&report);
        if !matches!(report.outcome, Discovery::Found { .. }) {
            self.log(format_args!(
                "setup: the configuration saved on {} cannot be used (above): the host stays \
                 in setup",
                device.display()
            ));
            return false;
        }
        self.config = Some(report);
        true
    }

    /// Says whether the saved `[network]` is the network in effect; the network itself is
    /// left as it is (see the module).
    fn keep_network_for_saved_config(&mut self) {
        let Some(saved) = self
            .found_config()
            .map(|config| config_steps(&config.network))
        else {
            return;
        };
        let line = if self.cmdline.boot_options().net.is_some() {
            "net: mfv.net= on the kernel command line keeps the network in effect"
        } else if self
            .network
            .as_ref()
            .is_some_and(|owner| *owner.in_effect() == saved)
        {
            "net: the saved network is the one in effect"
        } else {
            "net: the saved network differs from the one in effect, which stays until the next \
             boot (mfv net apply changes it now)"
        };
        self.log(line);
    }

    /// Ends the wait for an operator and the DHCP fallback: the console leaves the setup
    /// screen for the status screen.
    fn end_setup(&mut self) {
        // The setup's own line about a chosen network would mislead: the log says the setup
        // is done.
        let ended = self
            .setup
            .as_mut()
            .is_some_and(|fallback| fallback.network_chosen(&mut |_| {}));
        if ended {
            self.publish_setup_state();
        }
    }
}
