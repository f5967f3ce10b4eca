//! Module parameters and blacklist, as the kernel command line gives them to modprobe.

use std::collections::{BTreeMap, BTreeSet};

use crate::modules::ModuleName;

/// Parameters per module and the blacklisted modules.
///
/// Built from kernel command line parameters: `MODULE.PARAM=VALUE` (or `MODULE.PARAM` alone)
/// gives `MODULE` a parameter; `modprobe.blacklist=a,b` and `mfv.blacklist=a,b` blacklist
/// modules. Other `mfv.*` keys and keys without a `.` are not module parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleOptions {
    parameters: BTreeMap<ModuleName, Vec<String>>,
    blacklist: BTreeSet<ModuleName>,
}

impl ModuleOptions {
    /// Options from kernel command line parameters as `(key, value)` pairs, in command line
    /// order (`("e1000.debug", Some("2"))`, `("quiet", None)`).
    pub fn from_kernel_parameters<I, K, V>(parameters: I) -> Self
    where
        I: IntoIterator<Item = (K, Option<V>)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut options = ModuleOptions::default();
        for (key, value) in parameters {
            let key = key.as_ref();
            let value = value.as_ref().map(AsRef::as_ref);
            match key {
                "modprobe.blacklist" | "mfv.blacklist" => {
                    let names = value.unwrap_or_default().split(',');
                    let names = names.map(str::trim).filter(|name| !name.is_empty());
                    options.blacklist.extend(names.map(ModuleName::new));
                }
                _ => {
                    let Some((module, parameter)) = key.split_once('.') else {
                        continue;
                    };
                    if module.is_empty() || parameter.is_empty() || module == "mfv" {
                        continue;
                    }
                    options
                        .parameters
                        .entry(ModuleName::new(module))
                        .or_default()
                        .push(parameter_text(parameter, value));
                }
            }
        }
        options
    }

    /// The parameter string for `module` as init_module(2) takes it, e.g. `debug=2 mode="a b"`;
    /// empty when it has none.
    pub fn parameters(&self, module: &ModuleName) -> String {
        self.parameters
            .get(module)
            .map(|parameters| parameters.join(" "))
            .unwrap_or_default()
    }

    /// Whether `module` is blacklisted: it is never loaded.
    pub fn is_blacklisted(&self, module: &ModuleName) -> bool {
        self.blacklist.contains(module)
    }

    /// The blacklisted modules, sorted.
    pub fn blacklisted(&self) -> impl Iterator<Item = &ModuleName> {
        self.blacklist.iter()
    }
}

/// `param`, `param=value`, or `param="value"` when the value holds white space.
fn parameter_text(parameter: &str, value: Option<&str>) -> String {
    match value {
        None => parameter.to_owned(),
        Some(value) if value.contains(char::is_whitespace) => format!("{parameter}=\"{value}\""),
        Some(value) => format!("{parameter}={value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(parameters: &[(&str, Option<&str>)]) -> ModuleOptions {
        ModuleOptions::from_kernel_parameters(parameters.iter().copied())
    }

    #[test]
    fn module_parameters_collect_per_normalised_module() {
        let options = options(&[
            ("console", Some("ttyS0")),
            ("quiet", None),
            ("e1000.debug", Some("2")),
            ("usb-storage.quirks", Some("0781:5567:u")),
            ("usb_storage.delay_use", Some("0")),
            ("e1000.copybreak", None),
            ("snd.name", Some("two words")),
        ]);
        assert_eq!(options.parameters(&"e1000".into()), "debug=2 copybreak");
        assert_eq!(
            options.parameters(&"usb_storage".into()),
            "quirks=0781:5567:u delay_use=0"
        );
        assert_eq!(options.parameters(&"snd".into()), "name=\"two words\"");
        assert_eq!(options.parameters(&"console".into()), "");
        assert_eq!(options.parameters(&"virtio_net".into()), "");
    }

    #[test]
    fn mfv_keys_and_odd_keys_are_not_module_parameters() {
        let options = options(&[
            ("mfv.config", Some("/dev/sdb2")),
            ("mfv.debug", None),
            (".param", Some("1")),
            ("module.", Some("1")),
        ]);
        assert_eq!(options, ModuleOptions::default());
    }

    #[test]
    fn both_blacklists_add_up() {
        let options = options(&[
            ("modprobe.blacklist", Some("floppy,pcspkr")),
            ("mfv.blacklist", Some("usb-storage,,")),
            ("mfv.blacklist", None),
        ]);
        let names: Vec<&str> = options.blacklisted().map(ModuleName::as_str).collect();
        assert_eq!(names, ["floppy", "pcspkr", "usb_storage"]);
        assert!(options.is_blacklisted(&"usb_storage".into()));
        assert!(!options.is_blacklisted(&"e1000".into()));
        assert_eq!(options.parameters(&"modprobe".into()), "");
        assert_eq!(options.parameters(&"mfv".into()), "");
    }
}
