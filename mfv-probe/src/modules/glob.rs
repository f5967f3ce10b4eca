//! The fnmatch(3) subset kmod uses for modules.alias patterns, matched without backtracking blowups.
//!
//! A pattern is `*` (any run of bytes, `/` included), `?` (one byte), `[...]` (one byte from a
//! set: single bytes and `a-z` ranges, `[!...]` or `[^...]` for the complement, a `]` right
//! after the opening bracket is literal) and `\x` (a literal `x`). A `[` without its closing
//! `]` is an ordinary byte, as in fnmatch. Bytes, not characters, as fnmatch in the C locale
//! (modaliases are ASCII). Patterns are matched where they stand, without compiling them, and
//! only the last `*` is kept as a resume point, so a match costs at most pattern length ×
//! text length steps.

/// One element of a pattern, read where it stands. Every element but [`Token::Star`] matches
/// exactly one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// This byte.
    Literal(u8),
    /// Any one byte.
    AnyByte,
    /// A bracket expression: its body between `[` (and `!`/`^`) and `]`.
    Class { body: &'a [u8], negated: bool },
    /// Any run of bytes, empty included.
    Star,
}

impl Token<'_> {
    fn matches(self, byte: u8) -> bool {
        match self {
            Token::Literal(expected) => expected == byte,
            Token::AnyByte | Token::Star => true,
            Token::Class { body, negated } => class_contains(body, byte) != negated,
        }
    }
}

/// Whether the bracket expression body `body` holds `byte`.
fn class_contains(body: &[u8], byte: u8) -> bool {
    let mut i = 0;
    while i < body.len() {
        let (low, used) = escaped(body, i);
        i += used;
        if body.get(i) == Some(&b'-') && i + 1 < body.len() {
            let (high, used) = escaped(body, i + 1);
            i += 1 + used;
            if low <= byte && byte <= high {
                return true;
            }
        } else if low == byte {
            return true;
        }
    }
    false
}

/// The byte at `i`, or the one after it when it is a `\`, with how many bytes that took.
fn escaped(body: &[u8], i: usize) -> (u8, usize) {
    match (body[i], body.get(i + 1)) {
        (b'\\', Some(&next)) => (next, 2),
        (byte, _) => (byte, 1),
    }
}

/// The token at `p` in `pattern` and its length in bytes; `None` at the end.
fn token_at(pattern: &[u8], p: usize) -> Option<(Token<'_>, usize)> {
    let token = match *pattern.get(p)? {
        b'*' => (Token::Star, 1),
        b'?' => (Token::AnyByte, 1),
        b'[' => match class_at(&pattern[p + 1..]) {
            Some((body, negated, used)) => (Token::Class { body, negated }, 1 + used),
            None => (Token::Literal(b'['), 1),
        },
        b'\\' if p + 1 < pattern.len() => (Token::Literal(pattern[p + 1]), 2),
        byte => (Token::Literal(byte), 1),
    };
    Some(token)
}

/// A bracket expression after its `[`: the body, whether it is negated, and the bytes used
/// including the closing `]`; `None` when it does not close.
fn class_at(rest: &[u8]) -> Option<(&[u8], bool, usize)> {
    let negated = matches!(rest.first(), Some(b'!' | b'^'));
    let start = usize::from(negated);
    let mut i = start;
    loop {
        match *rest.get(i)? {
            // A `]` first in the body is literal.
            b']' if i > start => return Some((&rest[start..i], negated, i + 1)),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// A modules.alias pattern (already normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    text: Box<str>,
    /// Length of the literal text every match starts with, for a quick rejection.
    prefix_len: usize,
}

impl Pattern {
    /// The pattern `pattern`. Every text is a valid pattern, as for fnmatch.
    pub(crate) fn new(pattern: &str) -> Self {
        let prefix_len = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
        Pattern {
            text: pattern.into(),
            prefix_len,
        }
    }

    /// The literal text every match starts with (up to the first special character).
    pub(crate) fn prefix(&self) -> &str {
        self.text.get(..self.prefix_len).unwrap_or_default()
    }

    /// Whether `text` matches the whole pattern, byte by byte as fnmatch in the C locale.
    pub(crate) fn matches(&self, text: &str) -> bool {
        if !text.starts_with(self.prefix()) {
            return false;
        }
        let pattern = self.text.as_bytes();
        let text = text.as_bytes();
        let (mut p, mut t) = (self.prefix_len, self.prefix_len);
        // After a mismatch, retry with the last `*` swallowing one more byte.
        let mut resume: Option<(usize, usize)> = None;
        while t < text.len() {
            match token_at(pattern, p) {
                Some((Token::Star, used)) => {
                    resume = Some((p + used, t));
                    p += used;
                }
                Some((token, used)) if token.matches(text[t]) => {
                    p += used;
                    t += 1;
                }
                _ => match resume {
                    Some((after_star, star_text)) => {
                        p = after_star;
                        t = star_text + 1;
                        resume = Some((after_star, t));
                    }
                    None => return false,
                },
            }
        }
        while let Some((Token::Star, used)) = token_at(pattern, p) {
            p += used;
        }
        p == pattern.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, text: &str, expected: bool) {
        assert_eq!(
            Pattern::new(pattern).matches(text),
            expected,
            "pattern {pattern:?} against {text:?}"
        );
    }

    #[test]
    fn patterns_real_kernels_ship() {
        let e1000 = "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00";
        check("pci:v00008086d0000100Esv*sd*bc*sc*i*", e1000, true);
        check("pci:v00008086d0000100Fsv*sd*bc*sc*i*", e1000, false);
        check("pci:v*d*sv*sd*bc02sc00i*", e1000, true);
        check("virtio:d00000001v*", "virtio:d00000001v00001AF4", true);
        check("virtio:d00000001v*", "virtio:d00000002v00001AF4", false);
        let stick = "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00";
        check("usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*", stick, true);
        check("usb:v*p*d*dc*dsc*dp*ic08isc06ip62in*", stick, false);
        check("acpi*:PNP0700:*", "acpi:PNP0700:", true);
        check("acpi*:PNP0700:*", "acpi:PNP0A03:PNP0700:", true);
        check("acpi*:PNP0700:*", "acpi:PNP0701:", false);
        let cpu = "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0081,00E5,";
        check("cpu:type:x86,ven*fam*mod*:feature:*0081*", cpu, true);
        check("cpu:type:x86,ven*fam*mod*:feature:*0082*", cpu, false);
        check("scsi:t-0x00*", "scsi:t-0x00", true);
        check("scsi:t-0x05*", "scsi:t-0x00", false);
    }

    #[test]
    fn brackets_with_ranges_and_complements() {
        let pattern = "usb:v0D96p5200d00[1-9]*dc*dsc*dp*ic*isc*ip*in*";
        check(
            pattern,
            "usb:v0D96p5200d0010dc00dsc00dp00ic08isc06ip50in00",
            true,
        );
        check(
            pattern,
            "usb:v0D96p5200d0001dc00dsc00dp00ic08isc06ip50in00",
            false,
        );
        check("usb:v13FDp3940d0[0-2]*", "usb:v13FDp3940d0200", true);
        check("usb:v13FDp3940d0[0-2]*", "usb:v13FDp3940d0300", false);
        check("x[!0-9]", "xa", true);
        check("x[!0-9]", "x5", false);
        check("x[^ab]", "xc", true);
        check("x[abc-e]", "xd", true);
        check("x[abc-e]", "xf", false);
        check("x[]a]", "x]", true);
        check("x[!]]", "x]", false);
        check("x[a-]", "x-", true);
        check(r"x[\]]", "x]", true);
        check(r"x[\]]", "x\\", false);
        check("x[!]", "x[!]", true);
        check("x[]", "x[]", true);
    }

    #[test]
    fn question_mark_escape_and_unclosed_bracket() {
        check("pci:v?", "pci:vA", true);
        check("pci:v?", "pci:v", false);
        check("pci:v?", "pci:vAB", false);
        check(r"a\*b", "a*b", true);
        check(r"a\*b", "axb", false);
        check("a[b", "a[b", true);
        check("a[!", "a[!", true);
        check("trailing\\", "trailing\\", true);
    }

    #[test]
    fn stars_anywhere() {
        check("*", "", true);
        check("**a**", "bab", true);
        check("a*", "", false);
        check("*a*b*c*", "xxaxxbxxcxx", true);
        check("*a*b*c*", "xxaxxcxxbxx", false);
        check("a*b", "ab", true);
        check("a*b", "aXbXb", true);
        check("a*b", "aXbX", false);
    }

    #[test]
    fn no_blowup_on_pathological_patterns() {
        let pattern = format!("{}b", "a*".repeat(60));
        let text = "a".repeat(5000);
        let start = std::time::Instant::now();
        check(&pattern, &text, false);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn prefix_of_patterns_and_plain_names() {
        let pattern = Pattern::new("pci:v00008086d*");
        assert_eq!(pattern.prefix(), "pci:v00008086d");
        let name = Pattern::new("crypto-crc32c");
        assert_eq!(name.prefix(), "crypto-crc32c");
        assert!(name.matches("crypto-crc32c"));
        assert!(!name.matches("crypto-crc32c-more"));
    }
}
