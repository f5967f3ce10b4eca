//! Text from outside (a config volume, a network packet, a user) made safe to print on a
//! terminal.
//!
//! A terminal obeys what it is sent: an escape sequence in a config key can clear the screen,
//! retitle the window, rewrite earlier lines or, on some terminals, answer back as typed input;
//! a newline in a DHCP server's message forges a whole console line; a right-to-left override
//! makes `evil.toml` read as something else. Every line that carries such text is passed
//! through here before it is written, so what the operator reads is what was received.
//!
//! Control characters are written as `\u001b`-style escapes: the same spelling JSON and TOML
//! basic strings use, so escaped output stays valid JSON and, inside TOML strings, valid TOML.
//! Tabs are kept: they move the cursor right and do nothing else.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character escaped, newlines included: for text that must stay
/// on one line (a console log line, a single value).
///
/// ```
/// use mfv_linux::terminal_text::escape_line;
/// assert_eq!(escape_line("web1"), "web1");
/// assert_eq!(escape_line("a\x1b[2Jb\nc"), "a\\u001b[2Jb\\u000ac");
/// ```
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\t' && is_unsafe(c))
}

/// `text` with every control character escaped except newlines: for output of several lines
/// (a report, a whole config file), where each line break is the writer's own.
///
/// ```
/// use mfv_linux::terminal_text::escape_lines;
/// assert_eq!(escape_lines("a\nb\r\x07\n"), "a\nb\\u000d\\u0007\n");
/// ```
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\t' && c != '\n' && is_unsafe(c))
}

fn escape(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls, DEL, and the invisible marks that reorder or hide text (bidirectional
/// embeddings, overrides and isolates, the Arabic letter mark).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for text in ["", "web1", "tab\there", "ünïcødé ✓", "C:\\path"] {
            assert!(matches!(escape_line(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(escape_lines(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn every_control_character_is_escaped() {
        let cases = [
            ("\x1b]0;owned\x07", "\\u001b]0;owned\\u0007"),
            ("a\rb", "a\\u000db"),
            ("nul\0", "nul\\u0000"),
            ("del\x7f", "del\\u007f"),
            ("csi\u{9b}31m", "csi\\u009b31m"),
            ("file\u{202e}lmth.exe", "file\\u202elmth.exe"),
            ("isolate\u{2066}x\u{2069}", "isolate\\u2066x\\u2069"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape_line(raw), shown, "{raw:?}");
            assert_eq!(escape_lines(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn only_lines_keep_newlines() {
        assert_eq!(escape_line("one\ntwo"), "one\\u000atwo");
        assert_eq!(escape_lines("one\ntwo\n"), "one\ntwo\n");
    }

    #[test]
    fn escaped_strings_decode_to_the_original_in_json_and_toml() {
        let value = "ab\u{1b}[1m\u{9b}\u{7f}\u{202e}\n";
        let escaped = escape_line(value);
        let json: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap();
        assert_eq!(json, value);
        let table: toml::Table = toml::from_str(&format!("key = \"{escaped}\"")).unwrap();
        assert_eq!(table["key"].as_str(), Some(value));
    }
}
