//! The generation header that starts every file a [`DirectoryStore`](super::DirectoryStore)
//! writes, so a torn or corrupt file is detected.
//!
//! The header is one TOML comment line, so the whole file stays a valid configuration that
//! discovery (or a person) can read directly:
//!
//! ```text
//! # mfv-store generation=7 length=412 sha256=<64 lower-case hex digits>
//! version = 1
//! ...
//! ```
//!
//! `length` and `sha256` cover the bytes after the header line's `\n` (the body). A file whose
//! first line does not start with `# mfv-store ` has no header: it was written by hand, has no
//! generation number and is checked by the validator only. A file whose first line starts with
//! `# mfv-store ` but is not exactly this format, or whose body does not match, is corrupt.
//!
//! ```
//! use mfv_config::store::header::{Header, verify};
//!
//! let body = "version = 1\n";
//! let file = format!("{}{body}", Header::for_body(3, body.as_bytes()).to_line());
//! assert_eq!(verify(file.as_bytes()), Ok((Some(3), body.as_bytes())));
//! assert!(verify(&file.as_bytes()[..file.len() - 1]).is_err());
//! assert_eq!(verify(body.as_bytes()), Ok((None, body.as_bytes())));
//! ```

use super::{GenerationProblem, sha256_hex};

/// How a header line starts.
pub const HEADER_PREFIX: &str = "# mfv-store ";

/// The longest header line, `\n` included (generation and length of 20 digits each).
pub const MAX_HEADER_LENGTH: usize = 144;

/// A parsed generation header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The generation number, counting from 1.
    pub generation: u64,
    /// Length of the body in bytes.
    pub length: u64,
    /// SHA-256 of the body, lower-case hex.
    pub sha256: String,
}

impl Header {
    /// The header for `body` as generation `generation`.
    pub fn for_body(generation: u64, body: &[u8]) -> Self {
        Header {
            generation,
            length: body.len() as u64,
            sha256: sha256_hex(body),
        }
    }

    /// The header line, ending with `\n`.
    pub fn to_line(&self) -> String {
        format!(
            "{HEADER_PREFIX}generation={} length={} sha256={}\n",
            self.generation, self.length, self.sha256
        )
    }

    /// Parses a header line (without its `\n`); `None` when it is not exactly the format.
    pub fn parse_line(line: &[u8]) -> Option<Self> {
        let line = std::str::from_utf8(line).ok()?;
        let fields = line.strip_prefix(HEADER_PREFIX)?;
        let mut words = fields.split(' ');
        let generation = words.next()?.strip_prefix("generation=")?;
        let length = words.next()?.strip_prefix("length=")?;
        let sha256 = words.next()?.strip_prefix("sha256=")?;
        if words.next().is_some()
            || sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            || !is_decimal(generation)
            || !is_decimal(length)
        {
            return None;
        }
        Some(Header {
            generation: generation.parse().ok()?,
            length: length.parse().ok()?,
            sha256: sha256.to_owned(),
        })
    }
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Splits a file into its header (if it has one) and its body, without checking the body.
pub fn split(file: &[u8]) -> Result<(Option<Header>, &[u8]), GenerationProblem> {
    if !file.starts_with(HEADER_PREFIX.as_bytes()) {
        return Ok((None, file));
    }
    let newline = file
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(GenerationProblem::MalformedHeader)?;
    let header = Header::parse_line(&file[..newline]).ok_or(GenerationProblem::MalformedHeader)?;
    Ok((Some(header), &file[newline + 1..]))
}

/// Checks a file against its header: returns the generation number (`None` without a header)
/// and the body.
pub fn verify(file: &[u8]) -> Result<(Option<u64>, &[u8]), GenerationProblem> {
    let (header, body) = split(file)?;
    let Some(header) = header else {
        return Ok((None, body));
    };
    let actual_length = body.len() as u64;
    if actual_length != header.length {
        return Err(GenerationProblem::LengthMismatch {
            expected: header.length,
            actual: actual_length,
        });
    }
    let actual = sha256_hex(body);
    if actual != header.sha256 {
        return Err(GenerationProblem::ChecksumMismatch {
            expected: header.sha256,
            actual,
        });
    }
    Ok((Some(header.generation), body))
}

/// `text` without a leading header line.
pub fn strip(text: &str) -> &str {
    if !text.starts_with(HEADER_PREFIX) {
        return text;
    }
    match text.find('\n') {
        Some(newline) => &text[newline + 1..],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(generation: u64, body: &str) -> Vec<u8> {
        let mut file = Header::for_body(generation, body.as_bytes())
            .to_line()
            .into_bytes();
        file.extend_from_slice(body.as_bytes());
        file
    }

    #[test]
    fn round_trip() {
        let bytes = file(42, "version = 1\n[host]\n");
        assert_eq!(
            verify(&bytes),
            Ok((Some(42), &b"version = 1\n[host]\n"[..]))
        );
        assert!(bytes.starts_with(b"# mfv-store generation=42 length=19 sha256="));
    }

    #[test]
    fn the_longest_header_is_max_header_length() {
        let header = Header {
            generation: u64::MAX,
            length: u64::MAX,
            sha256: "f".repeat(64),
        };
        assert_eq!(header.to_line().len(), MAX_HEADER_LENGTH);
    }

    #[test]
    fn empty_body_is_valid() {
        assert_eq!(verify(&file(1, "")), Ok((Some(1), &b""[..])));
    }

    #[test]
    fn file_without_header_is_hand_written() {
        assert_eq!(verify(b"version = 1\n"), Ok((None, &b"version = 1\n"[..])));
        assert_eq!(verify(b""), Ok((None, &b""[..])));
        assert_eq!(verify(b"# a comment\n"), Ok((None, &b"# a comment\n"[..])));
    }

    #[test]
    fn truncated_body_is_torn() {
        let bytes = file(2, "version = 1\n");
        assert_eq!(
            verify(&bytes[..bytes.len() - 3]),
            Err(GenerationProblem::LengthMismatch {
                expected: 12,
                actual: 9
            })
        );
    }

    #[test]
    fn flipped_byte_is_a_checksum_mismatch() {
        let mut bytes = file(2, "version = 1\n");
        let last = bytes.len() - 2;
        bytes[last] = b'2';
        assert!(matches!(
            verify(&bytes),
            Err(GenerationProblem::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn malformed_headers() {
        let good = Header::for_body(1, b"").to_line();
        let cases = [
            "# mfv-store \n".to_owned(),
            "# mfv-store generation=1".to_owned(),
            good.replace("generation=1", "generation=x"),
            good.replace("generation=1", "generation=-1"),
            good.replace("generation=1", "generation="),
            good.replace(" length=0", ""),
            good.replace("sha256=e3", "sha256=E3"),
            good.replace("sha256=e3", "sha256=e"),
            good.replace('\n', " extra\n"),
            good.replace("length=0 sha256", "sha256"),
            "# mfv-store generation=99999999999999999999999 length=0 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n".to_owned(),
        ];
        for case in cases {
            assert_eq!(
                verify(case.as_bytes()),
                Err(GenerationProblem::MalformedHeader),
                "{case:?}"
            );
        }
        assert_eq!(verify(good.as_bytes()), Ok((Some(1), &b""[..])));
        let mut binary = good.into_bytes();
        binary[14] = 0xff;
        assert_eq!(verify(&binary), Err(GenerationProblem::MalformedHeader));
    }

    #[test]
    fn strip_drops_only_a_header_line() {
        let with = format!(
            "{}version = 1\n",
            Header::for_body(1, b"version = 1\n").to_line()
        );
        assert_eq!(strip(&with), "version = 1\n");
        assert_eq!(strip("version = 1\n"), "version = 1\n");
        assert_eq!(strip("# mfv-store generation=1"), "");
    }
}
