//! One log line as an RFC 5424 syslog message, and the octet-counting frame (RFC 6587) that
//! carries messages over TCP.
//!
//! The message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`. PRI is facility
//! `daemon` (3) and severity `info` (6), since the host's lines are the output of daemons and
//! standard output is not told apart from standard error. TIMESTAMP is UTC with microseconds;
//! a clock before 1970 (a machine without a battery that has not yet synchronised) or after
//! 9999 writes the NILVALUE `-`, as RFC 5424 asks of a sender without a usable clock. Header
//! fields keep printable ASCII only and are cut to their RFC lengths. The text has its
//! control characters escaped, as in the local logs, so a message stays one line in whatever
//! file a server writes; a text beyond ASCII is sent as MSG-UTF8 (with the byte order mark),
//! pure ASCII as it is.

use std::time::{SystemTime, UNIX_EPOCH};

use mfv_linux::terminal_text::escape_line;
use mfv_linux::utc::UtcTime;

/// PRI of every message: facility daemon (3) times 8, plus severity informational (6).
pub const PRIORITY: u8 = 3 * 8 + 6;
/// The largest message sent in one UDP datagram: what RFC 5426 says every receiver should
/// accept (IPv4 receivers must take 480, IPv6 ones 1180; common servers take far more).
pub const UDP_MAX_MESSAGE: usize = 2048;
/// The largest message sent over TCP: the size RFC 5425 says every receiver must take.
pub const TCP_MAX_MESSAGE: usize = 8192;
/// The UTF-8 byte order mark that starts a MSG-UTF8.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// RFC 5424's longest HOSTNAME, APP-NAME and PROCID.
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;

/// One line to send, with where and when it was logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When the line was logged, from the real-time clock.
    pub time: SystemTime,
    /// The program: `mfv-init` for PID 1's lines, the service's name for its output.
    pub app_name: String,
    /// The process that logged it, when known.
    pub proc_id: Option<u32>,
    /// The line, without its newline.
    pub text: String,
}

/// `record` as an RFC 5424 message from `hostname`, at most `max_len` octets: a longer text
/// is cut at a character boundary.
pub fn rfc5424(hostname: &str, record: &LogRecord, max_len: usize) -> Vec<u8> {
    let proc_id = record
        .proc_id
        .map_or_else(|| "-".to_owned(), |pid| pid.to_string());
    let header = format!(
        "<{PRIORITY}>1 {} {} {} {proc_id} - -",
        timestamp(record.time),
        header_field(hostname, MAX_HOSTNAME),
        header_field(&record.app_name, MAX_APP_NAME),
    );
    let mut message = header.into_bytes();
    let text = escape_line(&record.text);
    if text.is_empty() {
        return message;
    }
    message.push(b' ');
    if !text.is_ascii() {
        message.extend_from_slice(BOM);
    }
    let room = max_len.saturating_sub(message.len());
    message.extend_from_slice(cut(&text, room).as_bytes());
    message
}

/// `message` framed by octet counting (RFC 6587 3.4.1): its length in decimal, a space, the
/// message.
pub fn octet_counted(message: &[u8]) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message);
    frame
}

/// RFC 3339 in UTC with microseconds, or `-` for a clock RFC 5424 cannot express.
fn timestamp(time: SystemTime) -> String {
    let Ok(since) = time.duration_since(UNIX_EPOCH) else {
        return "-".to_owned();
    };
    let Ok(seconds) = i64::try_from(since.as_secs()) else {
        return "-".to_owned();
    };
    let utc = UtcTime::from_unix_seconds(seconds);
    if utc.year > 9999 {
        return "-".to_owned();
    }
    format!("{}.{:06}Z", utc.rfc3339_seconds(), since.subsec_micros())
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when
/// nothing is left.
fn header_field(value: &str, max: usize) -> String {
    let field: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// The longest start of `text` of at most `room` bytes that ends at a character boundary.
fn cut(text: &str, room: usize) -> &str {
    if text.len() <= room {
        return text;
    }
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-11-26T04:53:00.012345Z.
    fn at_noon_ish() -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_795_668_780_012_345)
    }

    fn record(app_name: &str, proc_id: Option<u32>, text: &str) -> LogRecord {
        LogRecord {
            time: at_noon_ish(),
            app_name: app_name.to_owned(),
            proc_id,
            text: text.to_owned(),
        }
    }

    #[track_caller]
    fn check(hostname: &str, record: &LogRecord, max_len: usize, expected: &[u8]) {
        let message = rfc5424(hostname, record, max_len);
        assert_eq!(
            message,
            expected,
            "{}",
            String::from_utf8_lossy(&message).escape_debug()
        );
    }

    #[test]
    fn a_line_becomes_an_rfc5424_message_byte_for_byte() {
        check(
            "vmhost1.example.org",
            &record("mfv-init", Some(1), "phase mounts: ok (1.2 ms)"),
            UDP_MAX_MESSAGE,
            b"<30>1 2026-11-26T04:53:00.012345Z vmhost1.example.org mfv-init 1 - - \
              phase mounts: ok (1.2 ms)",
        );
        check(
            "vmhost1",
            &record("libvirtd", None, ""),
            UDP_MAX_MESSAGE,
            b"<30>1 2026-11-26T04:53:00.012345Z vmhost1 libvirtd - - -",
        );
    }

    #[test]
    fn text_beyond_ascii_starts_with_the_byte_order_mark_and_controls_are_escaped() {
        check(
            "h",
            &record("vm-keeper", Some(412), "VM \u{201c}gr\u{fc}n\u{201d} started"),
            UDP_MAX_MESSAGE,
            "<30>1 2026-11-26T04:53:00.012345Z h vm-keeper 412 - - \u{feff}VM \u{201c}gr\u{fc}n\u{201d} started"
                .as_bytes(),
        );
        check(
            "h",
            &record("mfv-web", Some(7), "evil\n<30>1 forged\x1b[2J"),
            UDP_MAX_MESSAGE,
            b"<30>1 2026-11-26T04:53:00.012345Z h mfv-web 7 - - evil\\u000a<30>1 forged\\u001b[2J",
        );
    }

    #[test]
    fn header_fields_keep_printable_ascii_within_their_lengths() {
        let long_app = "a".repeat(60);
        let message = rfc5424("bad host\u{e9}", &record(&long_app, None, "x"), 4096);
        let text = String::from_utf8(message).unwrap();
        assert_eq!(
            text,
            format!(
                "<30>1 2026-11-26T04:53:00.012345Z badhost {} - - - x",
                "a".repeat(48)
            )
        );
        check(
            "",
            &record(" ", None, "x"),
            4096,
            b"<30>1 2026-11-26T04:53:00.012345Z - - - - - x",
        );
    }

    #[test]
    fn a_clock_rfc5424_cannot_express_is_the_nil_value() {
        for time in [
            UNIX_EPOCH - Duration::from_secs(1),
            UNIX_EPOCH + Duration::from_secs(253_402_300_800),
        ] {
            let mut line = record("mfv-init", Some(1), "x");
            line.time = time;
            check("h", &line, 4096, b"<30>1 - h mfv-init 1 - - x");
        }
        let mut line = record("mfv-init", Some(1), "x");
        line.time = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        check(
            "h",
            &line,
            4096,
            b"<30>1 9999-12-31T23:59:59.000000Z h mfv-init 1 - - x",
        );
    }

    #[test]
    fn a_long_line_is_cut_at_a_character_boundary_to_the_limit() {
        let header = b"<30>1 2026-11-26T04:53:00.012345Z h s - - - ".len();
        let ascii = rfc5424("h", &record("s", None, &"x".repeat(5000)), UDP_MAX_MESSAGE);
        assert_eq!(ascii.len(), UDP_MAX_MESSAGE);
        assert_eq!(
            ascii[header..],
            *"x".repeat(UDP_MAX_MESSAGE - header).as_bytes()
        );
        // Two-byte characters after the mark: the cut never splits one.
        let wide = rfc5424("h", &record("s", None, &"\u{e9}".repeat(5000)), 100);
        let text = String::from_utf8(wide.clone()).unwrap();
        assert!(wide.len() == 100 || wide.len() == 99, "{}", wide.len());
        assert!(text.ends_with('\u{e9}'));
        assert_eq!(wide[header..header + 3], *BOM);
    }

    #[test]
    fn octet_counting_prefixes_the_length_and_a_space() {
        assert_eq!(
            octet_counted(b"<30>1 - h a - - - x"),
            b"19 <30>1 - h a - - - x"
        );
        assert_eq!(octet_counted(b""), b"0 ");
        let long = vec![b'x'; TCP_MAX_MESSAGE];
        let frame = octet_counted(&long);
        assert_eq!(frame[..5], *b"8192 ");
        assert_eq!(frame.len(), 5 + TCP_MAX_MESSAGE);
    }
}
