//! Installed and available memory from `/proc/meminfo`.

use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::{ProbeError, ProbeIssue};

/// The host's memory. Serializes with these field names (snake_case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// `MemTotal` in bytes: RAM the kernel manages.
    pub total_bytes: Option<u64>,
    /// `MemAvailable` in bytes: what can be given to new work without swapping.
    pub available_bytes: Option<u64>,
    /// What could not be read; the other field is still filled in.
    pub issues: Vec<ProbeIssue>,
}

/// Reads `<proc_root>/meminfo`. Never fails: what cannot be read is in [`Memory::issues`].
pub fn read_memory_at(proc_root: impl AsRef<Path>) -> Memory {
    let path = proc_root.as_ref().join("meminfo");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) => {
            return Memory {
                total_bytes: None,
                available_bytes: None,
                issues: vec![ProbeIssue::from_error(&ProbeError::ReadAttribute {
                    path,
                    source,
                })],
            };
        }
    };
    let mut issues = Vec::new();
    let mut field = |key: &str| {
        let line = text
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'));
        let Some(value) = line else {
            issues.push(ProbeIssue {
                path: path.clone(),
                message: format!("{}: no {key} line", path.display()),
            });
            return None;
        };
        let bytes = parse_kilobytes(value.trim());
        if bytes.is_none() {
            issues.push(ProbeIssue::from_error(&ProbeError::Malformed {
                path: path.clone(),
                value: format!("{key}: {}", value.trim()),
                expected: "a size in kB",
            }));
        }
        bytes
    };
    let total_bytes = field("MemTotal");
    let available_bytes = field("MemAvailable");
    Memory {
        total_bytes,
        available_bytes,
        issues,
    }
}

/// `24684084 kB` in bytes (the kernel's kB are KiB).
fn parse_kilobytes(text: &str) -> Option<u64> {
    let number = text.strip_suffix("kB")?.trim_end();
    number.parse::<u64>().ok()?.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(meminfo: &str) -> Memory {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("meminfo"), meminfo).unwrap();
        let mut memory = read_memory_at(dir.path());
        let root = format!("{}/", dir.path().display());
        for issue in &mut memory.issues {
            issue.message = issue.message.replace(&root, "");
            issue.path = issue.path.strip_prefix(dir.path()).unwrap().to_owned();
        }
        memory
    }

    #[test]
    fn total_and_available_in_bytes() {
        let memory = check(
            "MemTotal:       24684084 kB\nMemFree:        21528800 kB\n\
             MemAvailable:   24176532 kB\nBuffers:          123 kB\n",
        );
        assert_eq!(
            memory,
            Memory {
                total_bytes: Some(24_684_084 * 1024),
                available_bytes: Some(24_176_532 * 1024),
                issues: vec![],
            }
        );
        assert_eq!(
            serde_json::to_value(&memory).unwrap(),
            serde_json::json!({
                "total_bytes": 25_276_502_016_u64,
                "available_bytes": 24_756_768_768_u64,
                "issues": []
            })
        );
    }

    #[test]
    fn missing_and_malformed_lines_are_issues() {
        let memory = check("MemTotal:       lots kB\nMemAvailableX: 1 kB\n");
        assert_eq!((memory.total_bytes, memory.available_bytes), (None, None));
        let messages: Vec<&str> = memory
            .issues
            .iter()
            .map(|issue| issue.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "meminfo: unexpected value \"MemTotal: lots kB\", expected a size in kB",
                "meminfo: no MemAvailable line",
            ]
        );
        let memory = check("MemTotal: 1024\nMemAvailable: 18446744073709551615 kB\n");
        assert_eq!(memory.issues.len(), 2, "{:?}", memory.issues);
    }

    #[test]
    fn unreadable_meminfo_is_an_issue() {
        let dir = tempfile::tempdir().unwrap();
        let memory = read_memory_at(dir.path());
        assert_eq!(memory.total_bytes, None);
        assert_eq!(
            memory.issues[0].message,
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                dir.path().join("meminfo").display()
            )
        );
    }

    #[test]
    fn matches_this_machine() {
        let memory = read_memory_at("/proc");
        assert!(memory.issues.is_empty(), "{:?}", memory.issues);
        let text = fs::read_to_string("/proc/meminfo").unwrap();
        let total_kb: u64 = text
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(memory.total_bytes, Some(total_kb * 1024));
        assert!(memory.available_bytes.unwrap() <= memory.total_bytes.unwrap());
    }
}
