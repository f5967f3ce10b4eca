//! The mount table of `/proc/<pid>/mountinfo` (proc(5)): which device is mounted where, with
//! the kernel's octal escapes (`\040` for a space, `\134` for a backslash) decoded. PID 1
//! reads it to unmount everything at shutdown; formatting a config volume reads it to refuse
//! a device that is mounted.

use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields callers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The device number (`major:minor`, third field); `None` when unreadable.
    pub device_number: Option<(u64, u64)>,
    /// Where it is mounted (fifth field), decoded.
    pub mount_point: PathBuf,
    /// The file system type (first field after ` - `).
    pub fs_type: String,
    /// The mount source (second field after ` - `: a device path, `tmpfs`, ...), decoded.
    pub source: String,
}

/// The entries of a mountinfo text, in mount order. A line without the fields above (not
/// mountinfo) is skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// The entries of `<proc_root>/self/mountinfo`; nothing when it cannot be read (before
/// /proc is mounted).
pub fn read(proc_root: &Path) -> Vec<MountEntry> {
    std::fs::read_to_string(proc_root.join("self/mountinfo"))
        .map(|text| parse(&text))
        .unwrap_or_default()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|field| *field == "-")?;
    if separator < 5 {
        return None;
    }
    let device_number = fields[2]
        .split_once(':')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
    Some(MountEntry {
        device_number,
        mount_point: PathBuf::from(unescape(fields[4])),
        fs_type: (*fields.get(separator + 1)?).to_owned(),
        source: unescape(fields.get(separator + 2)?),
    })
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash). Text that is not
/// such an escape, including three octal digits above a byte (`\777`), stays as it is.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 4)
            .filter(|digits| {
                bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
            })
            .and_then(|digits| {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                u8::try_from(value).ok()
            });
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - rootfs rootfs rw
30 22 8:17 / /mnt/usb\\040stick rw,relatime shared:1 - vfat /dev/sdb1 rw
31 22 259:2 / /data rw - ext4 /dev/nvme0n1p2 rw
not a mountinfo line
";

    #[test]
    fn entries_have_their_fields_decoded() {
        let entries = parse(MOUNTINFO);
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[1],
            MountEntry {
                device_number: Some((8, 17)),
                mount_point: PathBuf::from("/mnt/usb stick"),
                fs_type: "vfat".into(),
                source: "/dev/sdb1".into(),
            }
        );
        assert_eq!(entries[2].mount_point, Path::new("/data"));
        assert_eq!(entries[0].source, "rootfs");
    }

    #[test]
    fn escapes_are_decoded_and_other_text_kept() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/tab\\011nl\\012"), "/tab\tnl\n");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
        assert_eq!(unescape("/not\\999octal"), "/not\\999octal");
        assert_eq!(unescape("/too\\777big"), "/too\\777big");
        assert_eq!(unescape("\\"), "\\");
    }

    #[test]
    fn an_unreadable_table_lists_nothing() {
        assert!(read(Path::new("/nonexistent/proc")).is_empty());
    }
}
