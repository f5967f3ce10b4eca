//! The typed `mfv.*` boot options read from the kernel command line, and their warnings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::net::{NetProvisioning, NetSpecError};
use super::{Param, keys_equal};

/// Every `mfv.*` key this crate understands.
pub const KNOWN_KEYS: [&str; 9] = [
    "mfv.config",
    "mfv.config_wait",
    "mfv.net",
    "mfv.setup_timeout",
    "mfv.halt",
    "mfv.debug",
    "mfv.coldplug",
    "mfv.blacklist",
    "mfv.rescue",
];

/// The largest edit distance at which an unknown key still gets a "did you mean" hint.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// The boot options found on the kernel command line. A key that is absent or whose value is
/// invalid leaves its option unset; the reason is in `warnings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// `mfv.config=`: where the configuration is; replaces the default discovery order.
    pub config: Option<ConfigLocator>,
    /// `mfv.config_wait=SECONDS`: how long to wait for the config device to appear.
    pub config_wait: Option<Duration>,
    /// `mfv.net=`: network set-up for a headless first boot.
    pub net: Option<NetProvisioning>,
    /// `mfv.setup_timeout=SECONDS`: how long the console setup screen waits for someone.
    pub setup_timeout: Option<Duration>,
    /// `mfv.halt=`: shut down this way once the boot sequence is complete.
    pub halt: Option<HaltAction>,
    /// `mfv.debug` or `mfv.debug=1`: verbose boot logging.
    pub debug: bool,
    /// `mfv.rescue` or `mfv.rescue=1`: a root shell on the console without a login, for an
    /// operator who can edit the boot loader's command line (and so owns the machine anyway).
    pub rescue: bool,
    /// `mfv.coldplug=off`: load no drivers, neither at boot nor on hotplug.
    pub coldplug_disabled: bool,
    /// `mfv.blacklist=a,b`: kernel modules never to load (names as written; `-` and `_` are
    /// the same to the module loader).
    pub blacklist: Vec<String>,
    /// Invalid values and unknown `mfv.*` keys, in command line order.
    pub warnings: Vec<CmdlineWarning>,
}

/// Where `mfv.config=` says the configuration is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocator {
    /// A device path such as `/dev/sdb2`.
    Device(PathBuf),
    /// `LABEL=x`: the volume whose file system label is `x`.
    Label(String),
    /// `UUID=x`: the volume whose file system UUID is `x`.
    Uuid(String),
    /// `PARTLABEL=x`: the GPT partition named `x`.
    PartLabel(String),
    /// `none`: do not look for a configuration at all.
    Disabled,
}

impl fmt::Display for ConfigLocator {
    /// The `mfv.config=` value that names this locator.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigLocator::Device(path) => write!(f, "{}", path.display()),
            ConfigLocator::Label(label) => write!(f, "LABEL={label}"),
            ConfigLocator::Uuid(uuid) => write!(f, "UUID={uuid}"),
            ConfigLocator::PartLabel(label) => write!(f, "PARTLABEL={label}"),
            ConfigLocator::Disabled => f.write_str("none"),
        }
    }
}

/// How to end the boot: `mfv.halt=poweroff|reboot|halt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltAction {
    /// Power the machine off.
    Poweroff,
    /// Restart the machine.
    Reboot,
    /// Stop the CPUs without powering off.
    Halt,
}

impl HaltAction {
    /// The word used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HaltAction::Poweroff => "poweroff",
            HaltAction::Reboot => "reboot",
            HaltAction::Halt => "halt",
        }
    }
}

impl fmt::Display for HaltAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was wrong with the value of a known key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// The key was given without `=value`.
    #[error("a value is required")]
    Missing,
    /// Not a number of seconds.
    #[error("expected a whole or decimal number of seconds, such as 5 or 2.5")]
    NotSeconds,
    /// A number of seconds too large to represent.
    #[error("number of seconds too large")]
    SecondsOutOfRange,
    /// Not one of the accepted config locator forms.
    #[error("expected a device path (/dev/...), LABEL=..., UUID=..., PARTLABEL=... or none")]
    NotConfigLocator,
    /// `LABEL=`, `UUID=` or `PARTLABEL=` with nothing after it.
    #[error("{0}= needs a non-empty value")]
    EmptyLocator(&'static str),
    /// A UUID with characters other than hexadecimal digits and dashes.
    #[error("a UUID has only hexadecimal digits and dashes")]
    NotUuid,
    /// Not a halt action.
    #[error("expected poweroff, reboot or halt")]
    NotHaltAction,
    /// Not a comma-separated list of module names.
    #[error("expected module names separated by commas, such as floppy,pcspkr")]
    NotModuleList,
    /// Not a boolean.
    #[error("expected 1, 0, yes, no, true, false, on or off")]
    NotBoolean,
    /// An `mfv.net=` value that does not parse.
    #[error(transparent)]
    Net(#[from] NetSpecError),
}

/// Something on the command line that was ignored; the boot goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdlineWarning {
    /// A known key with a value that could not be used.
    InvalidValue {
        /// The key as written on the command line.
        key: String,
        /// The value as written, `None` for a bare key.
        value: Option<String>,
        /// What was wrong.
        problem: InvalidValue,
    },
    /// An `mfv.*` key this crate does not know.
    UnknownKey {
        /// The key as written on the command line.
        key: String,
        /// The closest known key, when one is close enough to be a likely typo.
        suggestion: Option<&'static str>,
    },
}

impl fmt::Display for CmdlineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineWarning::InvalidValue {
                key,
                value: Some(value),
                problem,
            } => write!(f, "ignoring {key}={value:?}: {problem}"),
            CmdlineWarning::InvalidValue {
                key,
                value: None,
                problem,
            } => write!(f, "ignoring {key}: {problem}"),
            CmdlineWarning::UnknownKey {
                key,
                suggestion: Some(suggestion),
            } => write!(f, "unknown key {key} ignored (did you mean {suggestion}?)"),
            CmdlineWarning::UnknownKey {
                key,
                suggestion: None,
            } => write!(
                f,
                "unknown key {key} ignored (known keys: {})",
                KNOWN_KEYS.join(", ")
            ),
        }
    }
}

/// Reads the boot options from the parameters; for each known key only its last occurrence
/// counts, each unknown `mfv.*` key is warned about once.
pub(super) fn boot_options(params: &[Param]) -> BootOptions {
    let mut options = BootOptions::default();
    let mut unknown_seen: Vec<&str> = Vec::new();
    for (index, param) in params.iter().enumerate() {
        if !param.key.starts_with("mfv.") {
            continue;
        }
        let Some(known) = KNOWN_KEYS.iter().find(|known| param.has_key(known)) else {
            if !unknown_seen.iter().any(|seen| keys_equal(seen, &param.key)) {
                unknown_seen.push(&param.key);
                options.warnings.push(CmdlineWarning::UnknownKey {
                    key: param.key.clone(),
                    suggestion: closest_known_key(&param.key),
                });
            }
            continue;
        };
        let overridden = params[index + 1..].iter().any(|later| later.has_key(known));
        if overridden {
            continue;
        }
        if let Err(problem) = apply(&mut options, known, param.value()) {
            options.warnings.push(CmdlineWarning::InvalidValue {
                key: param.key.clone(),
                value: param.value.clone(),
                problem,
            });
        }
    }
    options
}

/// Sets the option for `key` from its value.
fn apply(options: &mut BootOptions, key: &str, value: Option<&str>) -> Result<(), InvalidValue> {
    let flag = match key {
        "mfv.debug" => Some(&mut options.debug),
        "mfv.rescue" => Some(&mut options.rescue),
        _ => None,
    };
    if let Some(flag) = flag {
        *flag = match value {
            None => true,
            Some(value) => parse_bool(value)?,
        };
        return Ok(());
    }
    let value = value.ok_or(InvalidValue::Missing)?;
    match key {
        "mfv.config" => options.config = Some(parse_config_locator(value)?),
        "mfv.config_wait" => options.config_wait = Some(parse_seconds(value)?),
        "mfv.net" => options.net = Some(value.parse::<NetProvisioning>()?),
        "mfv.setup_timeout" => options.setup_timeout = Some(parse_seconds(value)?),
        "mfv.halt" => options.halt = Some(parse_halt(value)?),
        "mfv.coldplug" => options.coldplug_disabled = !parse_bool(value)?,
        "mfv.blacklist" => options.blacklist = parse_module_list(value)?,
        // KNOWN_KEYS and this match list the same keys; the flags are handled above.
        _ => {}
    }
    Ok(())
}

fn parse_config_locator(value: &str) -> Result<ConfigLocator, InvalidValue> {
    fn non_empty(prefix: &'static str, rest: &str) -> Result<String, InvalidValue> {
        if rest.is_empty() {
            Err(InvalidValue::EmptyLocator(prefix))
        } else {
            Ok(rest.to_string())
        }
    }
    if value == "none" {
        Ok(ConfigLocator::Disabled)
    } else if let Some(label) = value.strip_prefix("LABEL=") {
        non_empty("LABEL", label).map(ConfigLocator::Label)
    } else if let Some(label) = value.strip_prefix("PARTLABEL=") {
        non_empty("PARTLABEL", label).map(ConfigLocator::PartLabel)
    } else if let Some(uuid) = value.strip_prefix("UUID=") {
        let uuid = non_empty("UUID", uuid)?;
        if uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            Ok(ConfigLocator::Uuid(uuid))
        } else {
            Err(InvalidValue::NotUuid)
        }
    } else if value.starts_with('/') {
        Ok(ConfigLocator::Device(PathBuf::from(value)))
    } else {
        Err(InvalidValue::NotConfigLocator)
    }
}

/// Seconds as `DIGITS` or `DIGITS.DIGITS`; digits past nanoseconds are dropped.
fn parse_seconds(value: &str) -> Result<Duration, InvalidValue> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || value.ends_with('.') {
        return Err(InvalidValue::NotSeconds);
    }
    let secs: u64 = whole.parse().map_err(|_| InvalidValue::SecondsOutOfRange)?;
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |nanos, digit| nanos * 10 + u32::from(digit - b'0'));
    Ok(Duration::new(secs, nanos))
}

fn parse_halt(value: &str) -> Result<HaltAction, InvalidValue> {
    match value {
        "poweroff" => Ok(HaltAction::Poweroff),
        "reboot" => Ok(HaltAction::Reboot),
        "halt" => Ok(HaltAction::Halt),
        _ => Err(InvalidValue::NotHaltAction),
    }
}

/// A comma-separated list of module names, as `modprobe.blacklist=` takes them.
fn parse_module_list(value: &str) -> Result<Vec<String>, InvalidValue> {
    let names: Vec<String> = value.split(',').map(str::to_owned).collect();
    let is_module_name = |name: &String| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if names.iter().all(is_module_name) {
        Ok(names)
    } else {
        Err(InvalidValue::NotModuleList)
    }
}

fn parse_bool(value: &str) -> Result<bool, InvalidValue> {
    match value {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(InvalidValue::NotBoolean),
    }
}

/// The known key nearest to `key` by edit distance, if it is a plausible typo.
fn closest_known_key(key: &str) -> Option<&'static str> {
    let key = key.replace('-', "_");
    KNOWN_KEYS
        .iter()
        .map(|known| (edit_distance(&key, known), *known))
        .filter(|(distance, _)| *distance <= MAX_SUGGESTION_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::cmdline::{KernelCmdline, StaticAddress};

    /// Parses `input` and compares the options (without warnings) and the warning texts.
    fn check(input: &str, expected: BootOptions, expected_warnings: &[&str]) {
        let mut options = KernelCmdline::parse(input).boot_options();
        let warnings: Vec<String> = options.warnings.drain(..).map(|w| w.to_string()).collect();
        assert_eq!(options, expected, "input: {input:?}");
        assert_eq!(warnings, expected_warnings, "input: {input:?}");
        if let Some(locator) = &options.config {
            let written = format!("mfv.config=\"{locator}\"");
            let reparsed = KernelCmdline::parse(&written).boot_options().config;
            assert_eq!(
                reparsed.as_ref(),
                Some(locator),
                "written back as {written:?}"
            );
        }
    }

    fn ok(input: &str, expected: BootOptions) {
        check(input, expected, &[]);
    }

    fn warns(input: &str, expected_warning: &str) {
        check(input, BootOptions::default(), &[expected_warning]);
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn no_mfv_keys_means_defaults() {
        ok("", BootOptions::default());
        ok(
            "console=ttyS0 quiet mfv mfvx.config=1",
            BootOptions::default(),
        );
        ok("-- mfv.halt=poweroff mfv.bogus", BootOptions::default());
    }

    #[test]
    fn config_locators() {
        let config = |locator| BootOptions {
            config: Some(locator),
            ..BootOptions::default()
        };
        ok(
            "mfv.config=/dev/sdb2",
            config(ConfigLocator::Device("/dev/sdb2".into())),
        );
        ok(
            "mfv.config=LABEL=mfv-config",
            config(ConfigLocator::Label("mfv-config".into())),
        );
        ok(
            r#"mfv.config="LABEL=my config""#,
            config(ConfigLocator::Label("my config".into())),
        );
        ok(
            "mfv.config=UUID=1234-ABCD",
            config(ConfigLocator::Uuid("1234-ABCD".into())),
        );
        ok(
            "mfv.config=PARTLABEL=cfg",
            config(ConfigLocator::PartLabel("cfg".into())),
        );
        ok("mfv.config=none", config(ConfigLocator::Disabled));
    }

    #[test]
    fn durations() {
        ok(
            "mfv.config_wait=5 mfv.setup_timeout=2.5",
            BootOptions {
                config_wait: Some(Duration::from_secs(5)),
                setup_timeout: Some(Duration::from_millis(2500)),
                ..BootOptions::default()
            },
        );
        ok(
            "mfv.config_wait=0 mfv.setup_timeout=0.0000000019",
            BootOptions {
                config_wait: Some(Duration::ZERO),
                setup_timeout: Some(Duration::from_nanos(1)),
                ..BootOptions::default()
            },
        );
    }

    #[test]
    fn halt_actions() {
        for (word, action) in [
            ("poweroff", HaltAction::Poweroff),
            ("reboot", HaltAction::Reboot),
            ("halt", HaltAction::Halt),
        ] {
            ok(
                &format!("mfv.halt={word}"),
                BootOptions {
                    halt: Some(action),
                    ..BootOptions::default()
                },
            );
            assert_eq!(action.to_string(), word);
        }
    }

    #[test]
    fn debug_flag() {
        let debug = BootOptions {
            debug: true,
            ..BootOptions::default()
        };
        ok("mfv.debug", debug.clone());
        for word in ["1", "yes", "true", "on"] {
            ok(&format!("mfv.debug={word}"), debug.clone());
        }
        for word in ["0", "no", "false", "off"] {
            ok(&format!("mfv.debug={word}"), BootOptions::default());
        }
    }

    #[test]
    fn rescue_flag() {
        let rescue = BootOptions {
            rescue: true,
            ..BootOptions::default()
        };
        ok("mfv.rescue", rescue.clone());
        ok("mfv.rescue=on", rescue);
        ok("mfv.rescue=0", BootOptions::default());
        warns(
            "mfv.rescue=maybe",
            r#"ignoring mfv.rescue="maybe": expected 1, 0, yes, no, true, false, on or off"#,
        );
    }

    #[test]
    fn coldplug_and_blacklist() {
        let off = BootOptions {
            coldplug_disabled: true,
            ..BootOptions::default()
        };
        ok("mfv.coldplug=off", off.clone());
        ok("mfv.coldplug=on", BootOptions::default());
        ok("mfv.coldplug=off mfv.coldplug=1", BootOptions::default());
        check(
            "mfv.coldplug=maybe",
            BootOptions::default(),
            &[r#"ignoring mfv.coldplug="maybe": expected 1, 0, yes, no, true, false, on or off"#],
        );
        ok(
            "mfv.blacklist=floppy,pcspkr modprobe.blacklist=e1000",
            BootOptions {
                blacklist: vec!["floppy".into(), "pcspkr".into()],
                ..BootOptions::default()
            },
        );
        for bad in ["mfv.blacklist=a,,b", "mfv.blacklist=a/b"] {
            let warnings = KernelCmdline::parse(bad).boot_options().warnings;
            assert_eq!(warnings.len(), 1, "{bad}");
            assert!(
                warnings[0]
                    .to_string()
                    .contains("expected module names separated by commas"),
                "{bad}: {}",
                warnings[0]
            );
        }
    }

    #[test]
    fn net_provisioning() {
        let net = |net| BootOptions {
            net: Some(net),
            ..BootOptions::default()
        };
        ok(
            "mfv.net=dhcp",
            net(NetProvisioning::Dhcp { interface: None }),
        );
        ok(
            "mfv.net=eth0:dhcp",
            net(NetProvisioning::Dhcp {
                interface: Some("eth0".into()),
            }),
        );
        ok(
            "mfv.net=eth0:192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53,dns=2001:db8::53",
            net(NetProvisioning::Static(StaticAddress {
                interface: Some("eth0".into()),
                address: ip("192.0.2.10"),
                prefix_len: 24,
                gateway: Some(ip("192.0.2.1")),
                dns: vec![ip("192.0.2.53"), ip("2001:db8::53")],
            })),
        );
    }

    #[test]
    fn last_occurrence_wins_even_if_invalid() {
        ok(
            "mfv.halt=reboot mfv.halt=poweroff",
            BootOptions {
                halt: Some(HaltAction::Poweroff),
                ..BootOptions::default()
            },
        );
        ok("mfv.debug mfv.debug=0", BootOptions::default());
        ok(
            "mfv.halt=bogus mfv.halt=halt",
            BootOptions {
                halt: Some(HaltAction::Halt),
                ..BootOptions::default()
            },
        );
        warns(
            "mfv.halt=reboot mfv.halt=bogus",
            r#"ignoring mfv.halt="bogus": expected poweroff, reboot or halt"#,
        );
    }

    #[test]
    fn dashes_in_keys_match_underscores() {
        ok(
            "mfv.config-wait=3",
            BootOptions {
                config_wait: Some(Duration::from_secs(3)),
                ..BootOptions::default()
            },
        );
    }

    #[test]
    fn every_key_together() {
        ok(
            "mfv.config=LABEL=c mfv.config_wait=1 mfv.net=dhcp mfv.setup_timeout=30 \
             mfv.halt=poweroff mfv.debug=1 mfv.coldplug=off mfv.blacklist=floppy mfv.rescue",
            BootOptions {
                config: Some(ConfigLocator::Label("c".into())),
                config_wait: Some(Duration::from_secs(1)),
                net: Some(NetProvisioning::Dhcp { interface: None }),
                setup_timeout: Some(Duration::from_secs(30)),
                halt: Some(HaltAction::Poweroff),
                debug: true,
                rescue: true,
                coldplug_disabled: true,
                blacklist: vec!["floppy".into()],
                warnings: Vec::new(),
            },
        );
    }

    #[test]
    fn invalid_values_are_warnings_naming_key_and_value() {
        let locator =
            "expected a device path (/dev/...), LABEL=..., UUID=..., PARTLABEL=... or none";
        let seconds = "expected a whole or decimal number of seconds, such as 5 or 2.5";
        let cases: &[(&str, &str)] = &[
            ("mfv.config", "ignoring mfv.config: a value is required"),
            (
                "mfv.config=",
                &format!(r#"ignoring mfv.config="": {locator}"#),
            ),
            (
                "mfv.config=sdb2",
                &format!(r#"ignoring mfv.config="sdb2": {locator}"#),
            ),
            (
                "mfv.config=NONE",
                &format!(r#"ignoring mfv.config="NONE": {locator}"#),
            ),
            (
                "mfv.config=LABEL=",
                r#"ignoring mfv.config="LABEL=": LABEL= needs a non-empty value"#,
            ),
            (
                "mfv.config=UUID=",
                r#"ignoring mfv.config="UUID=": UUID= needs a non-empty value"#,
            ),
            (
                "mfv.config=PARTLABEL=",
                r#"ignoring mfv.config="PARTLABEL=": PARTLABEL= needs a non-empty value"#,
            ),
            (
                "mfv.config=UUID=xyz",
                r#"ignoring mfv.config="UUID=xyz": a UUID has only hexadecimal digits and dashes"#,
            ),
            (
                "mfv.config_wait",
                "ignoring mfv.config_wait: a value is required",
            ),
            (
                "mfv.config_wait=abc",
                &format!(r#"ignoring mfv.config_wait="abc": {seconds}"#),
            ),
            (
                "mfv.config_wait=-1",
                &format!(r#"ignoring mfv.config_wait="-1": {seconds}"#),
            ),
            (
                "mfv.config_wait=",
                &format!(r#"ignoring mfv.config_wait="": {seconds}"#),
            ),
            (
                "mfv.config_wait=1.",
                &format!(r#"ignoring mfv.config_wait="1.": {seconds}"#),
            ),
            (
                "mfv.config_wait=.5",
                &format!(r#"ignoring mfv.config_wait=".5": {seconds}"#),
            ),
            (
                "mfv.config_wait=1.2.3",
                &format!(r#"ignoring mfv.config_wait="1.2.3": {seconds}"#),
            ),
            (
                "mfv.config_wait=1e3",
                &format!(r#"ignoring mfv.config_wait="1e3": {seconds}"#),
            ),
            (
                "mfv.config_wait=inf",
                &format!(r#"ignoring mfv.config_wait="inf": {seconds}"#),
            ),
            (
                "mfv.config_wait=99999999999999999999",
                r#"ignoring mfv.config_wait="99999999999999999999": number of seconds too large"#,
            ),
            (
                "mfv.setup_timeout=5s",
                &format!(r#"ignoring mfv.setup_timeout="5s": {seconds}"#),
            ),
            (
                "mfv.setup_timeout",
                "ignoring mfv.setup_timeout: a value is required",
            ),
            ("mfv.halt", "ignoring mfv.halt: a value is required"),
            (
                "mfv.halt=off",
                r#"ignoring mfv.halt="off": expected poweroff, reboot or halt"#,
            ),
            (
                "mfv.halt=Poweroff",
                r#"ignoring mfv.halt="Poweroff": expected poweroff, reboot or halt"#,
            ),
            (
                "mfv.debug=2",
                r#"ignoring mfv.debug="2": expected 1, 0, yes, no, true, false, on or off"#,
            ),
            ("mfv.net", "ignoring mfv.net: a value is required"),
            (
                "mfv.net=eth0",
                r#"ignoring mfv.net="eth0": expected dhcp, IFACE:dhcp or [IFACE:]ADDRESS/PREFIX[,gw=GATEWAY][,dns=SERVER]..."#,
            ),
            (
                "mfv.net=eth0:192.0.2.10/24,gw=2001:db8::1",
                r#"ignoring mfv.net="eth0:192.0.2.10/24,gw=2001:db8::1": gateway 2001:db8::1 is not in the address family of 192.0.2.10"#,
            ),
        ];
        for (input, expected) in cases {
            warns(input, expected);
        }
    }

    #[test]
    fn warning_value_is_escaped() {
        warns(
            "mfv.halt=\"a\x1bb\"",
            r#"ignoring mfv.halt="a\u{1b}b": expected poweroff, reboot or halt"#,
        );
    }

    #[test]
    fn unknown_keys_get_the_closest_known_key() {
        warns(
            "mfv.confg=/dev/sda1",
            "unknown key mfv.confg ignored (did you mean mfv.config?)",
        );
        warns(
            "mfv.cofnig=x",
            "unknown key mfv.cofnig ignored (did you mean mfv.config?)",
        );
        warns(
            "mfv.config_wiat=3",
            "unknown key mfv.config_wiat ignored (did you mean mfv.config_wait?)",
        );
        warns(
            "mfv.halts=poweroff",
            "unknown key mfv.halts ignored (did you mean mfv.halt?)",
        );
        warns(
            "mfv.nett=dhcp",
            "unknown key mfv.nett ignored (did you mean mfv.net?)",
        );
        warns(
            "mfv.Debug",
            "unknown key mfv.Debug ignored (did you mean mfv.debug?)",
        );
        warns(
            "mfv.setup-timeot=1",
            "unknown key mfv.setup-timeot ignored (did you mean mfv.setup_timeout?)",
        );
        warns(
            "mfv.frobnicate=1",
            "unknown key mfv.frobnicate ignored (known keys: mfv.config, mfv.config_wait, mfv.net, \
             mfv.setup_timeout, mfv.halt, mfv.debug, mfv.coldplug, mfv.blacklist, mfv.rescue)",
        );
    }

    #[test]
    fn unknown_key_is_warned_once_and_others_still_apply() {
        check(
            "mfv.hlat=reboot mfv.hlat=halt mfv.halt=poweroff mfv.config_wait=x",
            BootOptions {
                halt: Some(HaltAction::Poweroff),
                ..BootOptions::default()
            },
            &[
                "unknown key mfv.hlat ignored (did you mean mfv.halt?)",
                r#"ignoring mfv.config_wait="x": expected a whole or decimal number of seconds, such as 5 or 2.5"#,
            ],
        );
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        for (a, b, distance) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("mfv.confg", "mfv.config", 1),
            ("ü", "u", 1),
        ] {
            assert_eq!(edit_distance(a, b), distance, "{a} vs {b}");
        }
    }
}
