//! The kernel command line: parsed with the kernel's own rules, then read as typed boot options.
//!
//! Parsing follows the kernel's `next_arg()` (lib/cmdline.c) and `parse_args()`
//! (kernel/params.c):
//! - parameters are separated by whitespace (space, tab, newline, vertical tab, form feed,
//!   carriage return);
//! - double quotes protect whitespace: they may surround a value (`a="b c"`) or the whole
//!   parameter (`"a=b c"`); the surrounding quotes are removed, quotes inside a value are kept;
//! - a bare `--` ends the kernel's parameters: everything after it goes to init
//!   ([`KernelCmdline::init_args`]);
//! - a key may appear more than once: the last occurrence wins;
//! - in key names `-` and `_` are the same (the kernel's `parameq()`).
//!
//! One deliberate difference: the kernel treats byte 0xA0 (Latin-1 no-break space) as
//! whitespace; this parser works on UTF-8 text and only splits on ASCII whitespace.
//!
//! ```
//! use mfv_config::cmdline::{HaltAction, KernelCmdline};
//!
//! let cmdline = KernelCmdline::parse(r#"console=ttyS0 mfv.halt=poweroff "x=a b" -- single"#);
//! assert_eq!(cmdline.get("x"), Some("a b"));
//! assert_eq!(cmdline.init_args(), ["single"]);
//! let options = cmdline.boot_options();
//! assert_eq!(options.halt, Some(HaltAction::Poweroff));
//! assert!(options.warnings.is_empty());
//! ```

mod net;
mod options;

use std::fmt;
use std::path::{Path, PathBuf};

pub use net::{NetProvisioning, NetSpecError, StaticAddress};
pub use options::{
    BootOptions, CmdlineWarning, ConfigLocator, HaltAction, InvalidValue, KNOWN_KEYS,
};

/// Reading the kernel command line failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdlineError {
    /// The file (normally /proc/cmdline) could not be read.
    #[error("cannot read the kernel command line from {}", path.display())]
    Read {
        /// The file that was read.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

/// One parameter of the kernel command line: `key`, or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    key: String,
    value: Option<String>,
}

impl Param {
    /// The key, as written (quotes around the whole parameter removed).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value after the first `=`, with surrounding quotes removed; `None` for a bare key.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// Whether this parameter's key is `key`, comparing `-` and `_` as equal like the kernel.
    pub fn has_key(&self, key: &str) -> bool {
        keys_equal(&self.key, key)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}", self.key, value),
            None => f.write_str(&self.key),
        }
    }
}

/// A parsed kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCmdline {
    params: Vec<Param>,
    init_args: Vec<String>,
}

impl KernelCmdline {
    /// Parses command line text (e.g. the content of /proc/cmdline). Parsing never fails: like
    /// the kernel, it takes whatever is there.
    pub fn parse(text: &str) -> KernelCmdline {
        let mut params = Vec::new();
        let mut init_args = Vec::new();
        let mut rest = skip_spaces(text);
        while !rest.is_empty() {
            let (param, after) = next_arg(rest);
            rest = after;
            if param.value.is_none() && param.key == "--" {
                while !rest.is_empty() {
                    let (arg, after) = next_arg(rest);
                    rest = after;
                    init_args.push(arg.to_string());
                }
                break;
            }
            params.push(param);
        }
        KernelCmdline { params, init_args }
    }

    /// Reads and parses the command line from `path`; the usual path is `/proc/cmdline`.
    pub fn read_from(path: &Path) -> Result<KernelCmdline, CmdlineError> {
        let bytes = std::fs::read(path).map_err(|source| CmdlineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(KernelCmdline::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Every parameter before `--`, in command line order (repeated keys included).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The arguments after `--`, which the kernel hands to init as its argv.
    pub fn init_args(&self) -> &[String] {
        &self.init_args
    }

    /// The last occurrence of `key` (the one that wins).
    pub fn last(&self, key: &str) -> Option<&Param> {
        self.params.iter().rev().find(|param| param.has_key(key))
    }

    /// The value of the last occurrence of `key`; `None` when the key is absent or its last
    /// occurrence is bare (`key` without `=`: use [`KernelCmdline::has`] for flags).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.last(key).and_then(Param::value)
    }

    /// Whether `key` appears at all, with or without a value.
    pub fn has(&self, key: &str) -> bool {
        self.last(key).is_some()
    }

    /// Reads the `mfv.*` boot options; invalid values and unknown keys become warnings.
    pub fn boot_options(&self) -> BootOptions {
        options::boot_options(&self.params)
    }
}

/// The kernel's `parameq()`: `-` and `_` compare equal.
fn keys_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let dash = |c: u8| if c == b'-' { b'_' } else { c };
            dash(x) == dash(y)
        })
}

/// The kernel's `isspace()` restricted to ASCII (see the module docs).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_spaces(text: &str) -> &str {
    text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// One step of the kernel's `next_arg()`: the next parameter and the text after it.
/// `text` starts with a non-space character. Every index where the text is cut is an ASCII
/// byte, so slicing stays on character boundaries.
fn next_arg(text: &str) -> (Param, &str) {
    let quoted = text.starts_with('"');
    let body = if quoted { &text[1..] } else { text };
    let bytes = body.as_bytes();
    let mut in_quote = quoted;
    let mut equals = None;
    let mut end = 0;
    while end < bytes.len() {
        let byte = bytes[end];
        if is_space(byte) && !in_quote {
            break;
        }
        // Like the kernel, an `=` in the first position does not count as the separator.
        if equals.is_none() && byte == b'=' && end > 0 {
            equals = Some(end);
        }
        if byte == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let rest = if end < bytes.len() {
        skip_spaces(&body[end + 1..])
    } else {
        ""
    };
    let ends_with_quote = end > 0 && bytes[end - 1] == b'"';
    let param = match equals {
        None => {
            let stop = if quoted && ends_with_quote {
                end - 1
            } else {
                end
            };
            Param {
                key: body[..stop].to_string(),
                value: None,
            }
        }
        Some(equals) => {
            let mut value_start = equals + 1;
            let mut value_end = end;
            if bytes.get(value_start) == Some(&b'"') {
                value_start += 1;
                if ends_with_quote {
                    value_end = end - 1;
                }
            }
            if quoted && ends_with_quote {
                value_end = end - 1;
            }
            let value = body.get(value_start..value_end).unwrap_or_default();
            Param {
                key: body[..equals].to_string(),
                value: Some(value.to_string()),
            }
        }
    };
    (param, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a parsed command line compactly: `key` or `key=[value]`, then `-- [arg]...`.
    fn render(cmdline: &KernelCmdline) -> String {
        let mut parts: Vec<String> = cmdline
            .params()
            .iter()
            .map(|param| match param.value() {
                Some(value) => format!("{}=[{}]", show_key(param.key()), value),
                None => show_key(param.key()),
            })
            .collect();
        if !cmdline.init_args().is_empty() {
            parts.push("--".to_string());
            parts.extend(cmdline.init_args().iter().map(|arg| format!("[{arg}]")));
        }
        parts.join(" ")
    }

    /// Keys that are empty or hold whitespace are bracketed so they stay readable.
    fn show_key(key: &str) -> String {
        if key.is_empty() || key.contains(char::is_whitespace) {
            format!("[{key}]")
        } else {
            key.to_string()
        }
    }

    fn check(input: &str, expected: &str) {
        let parsed = KernelCmdline::parse(input);
        assert_eq!(render(&parsed), expected, "input: {input:?}");
    }

    #[test]
    fn whitespace_separates_params() {
        check("", "");
        check("   \t\n ", "");
        check("a", "a");
        check("a=1 b=2", "a=[1] b=[2]");
        check("  a=1\t\tb=2\n", "a=[1] b=[2]");
        check("a\x0bb\x0cc\rd", "a b c d");
        check("console=ttyS0 quiet", "console=[ttyS0] quiet");
        check("a= b", "a=[] b");
        check("a==b", "a=[=b]");
        check("=a=b", "=a=[b]");
        check("=", "=");
        check(r#"="a b""#, r#"[="a b"]"#);
        check("é=ü ö", "é=[ü] ö");
    }

    #[test]
    fn double_quotes_follow_the_kernel() {
        check(r#"a="b c""#, "a=[b c]");
        check(r#""a=b c""#, "a=[b c]");
        check(r#""a b""#, "[a b]");
        check(r#"x "a b" y"#, "x [a b] y");
        check(r#"a="b c" d="e""#, "a=[b c] d=[e]");
        check(r#"a=b"c d"e f"#, r#"a=[b"c d"e] f"#);
        check(r#"a="b c"#, "a=[b c]");
        check(r#"a=""#, "a=[]");
        check(r#"a="""#, "a=[]");
        check(r#""""#, "[]");
        check(r#"""#, "[]");
        check(r#"a="b" c"#, "a=[b] c");
        check(
            r#"dyndbg="file x.c +p" quiet"#,
            "dyndbg=[file x.c +p] quiet",
        );
    }

    #[test]
    fn double_dash_hands_the_rest_to_init() {
        check("a -- b c=d", "a -- [b] [c=d]");
        check(r#"a -- "x=y z" w="1 2""#, "a -- [x=y z] [w=1 2]");
        check("a --", "a");
        check("-- --", "-- [--]");
        check("a --=x b", "a --=[x] b");
        check(r#""--" b"#, "-- [b]");
        check("a -- ", "a");
    }

    #[test]
    fn last_value_wins() {
        let cmdline = KernelCmdline::parse("a=1 b a=2 c=x c");
        assert_eq!(cmdline.get("a"), Some("2"));
        assert_eq!(cmdline.get("b"), None);
        assert!(cmdline.has("b"));
        assert_eq!(cmdline.get("c"), None, "the bare last occurrence wins");
        assert!(cmdline.has("c"));
        assert!(!cmdline.has("d"));
        assert_eq!(cmdline.get("d"), None);
        assert_eq!(cmdline.params().len(), 5);
    }

    #[test]
    fn dashes_and_underscores_are_the_same_in_keys() {
        let cmdline = KernelCmdline::parse("mfv.config-wait=3 foo_bar=1");
        assert_eq!(cmdline.get("mfv.config_wait"), Some("3"));
        assert_eq!(cmdline.get("foo-bar"), Some("1"));
        assert!(!cmdline.has("foo.bar"));
    }

    #[test]
    fn params_display_as_written_without_quotes() {
        let cmdline = KernelCmdline::parse(r#"a="b c" d"#);
        let shown: Vec<String> = cmdline.params().iter().map(Param::to_string).collect();
        assert_eq!(shown, ["a=b c", "d"]);
    }

    #[test]
    fn read_from_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmdline");
        std::fs::write(&path, "console=ttyS0 mfv.halt=reboot\n").unwrap();
        let cmdline = KernelCmdline::read_from(&path).unwrap();
        assert_eq!(render(&cmdline), "console=[ttyS0] mfv.halt=[reboot]");
    }

    #[test]
    fn read_from_takes_invalid_utf8_lossily() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmdline");
        std::fs::write(&path, b"a=\xff b=2").unwrap();
        let cmdline = KernelCmdline::read_from(&path).unwrap();
        assert_eq!(render(&cmdline), "a=[\u{fffd}] b=[2]");
    }

    #[test]
    fn unreadable_path_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("cmdline");
        let error = KernelCmdline::read_from(&path).unwrap_err();
        let CmdlineError::Read {
            path: reported,
            source,
        } = &error;
        assert_eq!(reported, &path);
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            format!(
                "cannot read the kernel command line from {}",
                path.display()
            )
        );
    }
}
