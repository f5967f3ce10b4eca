//! A certificate's SHA-256 fingerprint, written as the host's console and browsers show it
//! (`AB:CD:...`), so an operator compares the two by eye. It lives here, beside the host's
//! protocol, because both sides of the trust use it: the host shows the fingerprint of its
//! web certificate, and clients pin it.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a DER-encoded certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of the DER-encoded certificate `der`.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Why a text is not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a SHA-256 fingerprint: expected 64 hexadecimal digits, colons between \
     pairs allowed (as mfv-web prints it: AB:CD:...)"
)]
pub struct InvalidFingerprint {
    /// The text given.
    pub input: String,
}

impl FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    /// 64 hex digits in either case, with or without a colon between each pair, optionally
    /// after `SHA256:` or `sha256:`.
    fn from_str(input: &str) -> Result<Fingerprint, InvalidFingerprint> {
        let invalid = || InvalidFingerprint {
            input: input.to_owned(),
        };
        let text = input.trim();
        let text = text
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("sha256:"))
            .map_or(text, |_| &text[7..]);
        let digits: Vec<u8> = if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            if pairs.iter().any(|pair| pair.len() != 2) {
                return Err(invalid());
            }
            pairs.concat().into_bytes()
        } else {
            text.as_bytes().to_vec()
        };
        if digits.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_back_as_printed_and_in_the_other_spellings() {
        let fingerprint = Fingerprint::of_der(b"a certificate");
        let printed = fingerprint.to_string();
        assert_eq!(printed.len(), 32 * 3 - 1);
        assert_eq!(printed.parse::<Fingerprint>().unwrap(), fingerprint);
        let plain = printed.replace(':', "").to_lowercase();
        assert_eq!(plain.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(
            format!("SHA256:{plain}").parse::<Fingerprint>().unwrap(),
            fingerprint
        );
    }

    #[test]
    fn anything_else_is_refused_naming_the_input() {
        let printed = Fingerprint::of_der(b"x").to_string();
        for bad in [
            "",
            "AB:CD",
            &printed[..printed.len() - 3],
            &format!("{printed}:00"),
            &format!("G{}", &printed[1..]),
            &printed.replacen(':', "", 1),
            &"é".repeat(32),
        ] {
            let error = bad.parse::<Fingerprint>().unwrap_err();
            assert_eq!(error.input, bad);
            assert!(
                error.to_string().contains("64 hexadecimal digits"),
                "{error}"
            );
        }
    }
}
