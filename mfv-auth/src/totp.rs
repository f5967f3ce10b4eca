//! TOTP second factor (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 30-second steps, 6 digits,
//! a window of one step either side for clock drift; secrets in base32 (RFC 4648) for
//! authenticator apps; recovery codes.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::clock::Timestamp;
use crate::secret::{RandomError, random_bytes};

/// Seconds per TOTP step.
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Digits of a TOTP code.
pub const TOTP_DIGITS: u32 = 6;
/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation for HMAC-SHA-1).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648) without padding, uppercase.
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// Base32 (RFC 4648, uppercase or lowercase, padding and spaces ignored) back to bytes;
/// `None` when a character is not base32.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes().filter(|byte| !matches!(byte, b'=' | b' ')) {
        let value = BASE32_ALPHABET
            .iter()
            .position(|&letter| letter == byte.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The TOTP code an authenticator app shows at `at` for the secret `secret_base32` (as
/// [`crate::TotpEnrolment::secret_base32`] gives it); `None` when the secret is not base32.
/// What a client or a test computes to answer a code prompt.
pub fn totp_code(secret_base32: &str, at: Timestamp) -> Option<String> {
    let secret = base32_decode(secret_base32)?;
    let step = u64::try_from(time_step(at)).ok()?;
    Some(hotp(&secret, step, TOTP_DIGITS))
}

/// The HOTP value (RFC 4226 section 5.3) for `counter`, as `digits` decimal digits.
pub(crate) fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; fall back to an
    // empty code (which never matches a six-digit input) rather than panic.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let code = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    let modulus = 10u32.pow(digits);
    format!("{:0width$}", code % modulus, width = digits as usize)
}

/// The TOTP step a time falls in.
pub(crate) fn time_step(now: Timestamp) -> i64 {
    now.0.div_euclid(TOTP_STEP_SECONDS)
}

/// The step within `now`'s step ± `window` whose code is `code`, if any. Constant-time
/// comparison of each candidate.
pub(crate) fn matching_step(secret: &[u8], code: &str, now: Timestamp, window: u8) -> Option<i64> {
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let current = time_step(now);
    let window = i64::from(window);
    let mut found = None;
    for step in current - window..=current + window {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = hotp(secret, counter, TOTP_DIGITS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only: for
/// comparing a presented secret (a code, a token, a session id) with the real one.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh TOTP secret.
pub(crate) fn new_secret() -> Result<Vec<u8>, RandomError> {
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    random_bytes(&mut secret)?;
    Ok(secret)
}

/// The `otpauth://` URI authenticator apps read (usually from a QR code).
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
        percent_encode(account),
        base32_encode(secret)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// A fresh recovery code: 80 random bits as 16 lowercase base32 characters in groups of
/// four, `abcd-efgh-ijkl-mnop`.
pub(crate) fn new_recovery_code() -> Result<String, RandomError> {
    let mut bytes = [0u8; 10];
    random_bytes(&mut bytes)?;
    let plain = base32_encode(&bytes).to_ascii_lowercase();
    let groups: Vec<&str> = (0..4)
        .map(|group| &plain[group * 4..group * 4 + 4])
        .collect();
    Ok(groups.join("-"))
}

/// A recovery code as typed, reduced to its canonical form (lowercase, no dashes or spaces),
/// which is what is hashed.
pub(crate) fn normalize_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = time_step(Timestamp(time)) as u64;
            assert_eq!(hotp(RFC_SECRET, step, 8), expected, "time {time}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *code);
        }
    }

    #[test]
    fn window_is_one_step_either_side() {
        let now = Timestamp(1_111_111_111);
        let step = time_step(now);
        let code_at = |step: i64| hotp(RFC_SECRET, step as u64, 6);
        assert_eq!(
            matching_step(RFC_SECRET, &code_at(step), now, 1),
            Some(step)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code_at(step - 1), now, 1),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code_at(step + 1), now, 1),
            Some(step + 1)
        );
        assert_eq!(matching_step(RFC_SECRET, &code_at(step - 2), now, 1), None);
        assert_eq!(matching_step(RFC_SECRET, &code_at(step + 2), now, 1), None);
        assert_eq!(matching_step(RFC_SECRET, &code_at(step - 1), now, 0), None);
        for malformed in ["", "12345", "1234567", "12345a", " 12345"] {
            assert_eq!(matching_step(RFC_SECRET, malformed, now, 1), None);
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(input.as_bytes()), expected);
        }
        assert_eq!(
            base32_encode(RFC_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn base32_round_trip_and_codes_from_the_text_secret() {
        for input in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = base32_encode(input.as_bytes());
            assert_eq!(base32_decode(&encoded).unwrap(), input.as_bytes());
            assert_eq!(
                base32_decode(&encoded.to_ascii_lowercase()).unwrap(),
                input.as_bytes()
            );
        }
        assert_eq!(base32_decode("MZXW6==="), Some(b"foo".to_vec()));
        assert_eq!(base32_decode("MZ1W6"), None, "1 is not base32");
        let at = Timestamp(1_111_111_111);
        assert_eq!(
            totp_code(&base32_encode(RFC_SECRET), at).unwrap(),
            hotp(RFC_SECRET, time_step(at) as u64, TOTP_DIGITS)
        );
        assert_eq!(totp_code("not base32!", at), None);
    }

    #[test]
    fn otpauth_uri_format() {
        assert_eq!(
            otpauth_uri("Minifed Virt", "alice", RFC_SECRET),
            "otpauth://totp/Minifed%20Virt:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Minifed%20Virt&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes() {
        let code = new_recovery_code().unwrap();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert_ne!(code, new_recovery_code().unwrap());
        assert_eq!(
            normalize_recovery_code("ABCD-efgh ijkl-MNOP"),
            "abcdefghijklmnop"
        );
        assert_eq!(new_secret().unwrap().len(), TOTP_SECRET_BYTES);
    }
}
