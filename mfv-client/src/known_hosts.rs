//! The hosts this user has connected to and the certificate fingerprint each presented, as
//! `ssh` keeps `known_hosts`: a Minifed-Virt host's certificate is self-signed, so no
//! authority vouches for it, and the first connection's fingerprint is what later ones must
//! present again.
//!
//! One `host:port FINGERPRINT` line per host; blank lines and lines starting with `#` are
//! kept as they are. The file is replaced atomically (a new file renamed over it), so an
//! interrupted write never leaves half a line.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::Fingerprint;

/// Where the known hosts are kept unless the caller says: `$XDG_CONFIG_HOME/mfv/known_hosts`,
/// else `$HOME/.config/mfv/known_hosts`; `None` when neither variable is set.
pub fn default_path() -> Option<PathBuf> {
    let from = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    from("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| from("HOME").map(|home| PathBuf::from(home).join(".config")))
        .map(|config| config.join("mfv").join("known_hosts"))
}

/// Why the known hosts cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    /// The file exists and cannot be read.
    #[error("cannot read the known hosts {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `host:port FINGERPRINT`.
    #[error(
        "{} line {line}: expected `host:port FINGERPRINT`; fix or delete the line",
        path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// The new file cannot be written.
    #[error("cannot write the known hosts {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A host's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownHost {
    /// The fingerprint recorded.
    pub fingerprint: Fingerprint,
    /// Its line in the file, from 1.
    pub line: usize,
}

/// The known hosts file at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The file at `path` (it need not exist yet).
    pub fn at(path: impl Into<PathBuf>) -> KnownHosts {
        KnownHosts { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lines of the file; none when it does not exist.
    fn lines(&self) -> Result<Vec<String>, KnownHostsError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(KnownHostsError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The entry of line `number` (from 1): `None` for a blank line or a comment.
    fn entry(
        &self,
        number: usize,
        line: &str,
    ) -> Result<Option<(String, Fingerprint)>, KnownHostsError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let malformed = || KnownHostsError::Malformed {
            path: self.path.clone(),
            line: number,
        };
        let mut words = line.split_whitespace();
        let (Some(host), Some(fingerprint), None) = (words.next(), words.next(), words.next())
        else {
            return Err(malformed());
        };
        let fingerprint = fingerprint.parse().map_err(|_| malformed())?;
        Ok(Some((host.to_owned(), fingerprint)))
    }

    /// What is recorded for `host` (`host:port`), if anything. Every line is checked, so a
    /// damaged file is reported rather than half read.
    pub fn lookup(&self, host: &str) -> Result<Option<KnownHost>, KnownHostsError> {
        let mut found = None;
        for (index, line) in self.lines()?.iter().enumerate() {
            let entry = self.entry(index + 1, line)?;
            if found.is_some() {
                continue;
            }
            if let Some((_, fingerprint)) =
                entry.filter(|(name, _)| name.eq_ignore_ascii_case(host))
            {
                found = Some(KnownHost {
                    fingerprint,
                    line: index + 1,
                });
            }
        }
        Ok(found)
    }

    /// Records `fingerprint` for `host`, replacing the host's line if it has one; makes the
    /// file (and its directory, readable by this user alone) if need be.
    pub fn record(&self, host: &str, fingerprint: Fingerprint) -> Result<(), KnownHostsError> {
        let new_line = format!("{host} {fingerprint}");
        let mut lines = Vec::new();
        let mut replaced = false;
        for (index, line) in self.lines()?.into_iter().enumerate() {
            match self.entry(index + 1, &line)? {
                Some((name, _)) if name.eq_ignore_ascii_case(host) => {
                    if !replaced {
                        lines.push(new_line.clone());
                        replaced = true;
                    }
                }
                _ => lines.push(line),
            }
        }
        if !replaced {
            lines.push(new_line);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        self.replace_with(&text)
    }

    /// Writes `text` to a new file beside the old one and renames it over.
    fn replace_with(&self, text: &str) -> Result<(), KnownHostsError> {
        let failed = |source| KnownHostsError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(failed)?;
        }
        let mut file = tempfile::Builder::new()
            .prefix(".known_hosts.")
            .tempfile_in(&dir)
            .map_err(failed)?;
        file.write_all(text.as_bytes()).map_err(failed)?;
        file.as_file().sync_all().map_err(failed)?;
        file.persist(&self.path)
            .map_err(|error| failed(error.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(seed: &[u8]) -> Fingerprint {
        Fingerprint::of_der(seed)
    }

    #[test]
    fn a_missing_file_knows_nothing_and_recording_makes_it() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts::at(dir.path().join("mfv/known_hosts"));
        assert_eq!(hosts.lookup("vmhost1:443").unwrap(), None);
        hosts.record("vmhost1:443", fingerprint(b"1")).unwrap();
        hosts.record("[::1]:8443", fingerprint(b"2")).unwrap();
        assert_eq!(
            hosts.lookup("VMHOST1:443").unwrap(),
            Some(KnownHost {
                fingerprint: fingerprint(b"1"),
                line: 1
            })
        );
        assert_eq!(
            hosts.lookup("[::1]:8443").unwrap().unwrap().fingerprint,
            fingerprint(b"2")
        );
        assert_eq!(hosts.lookup("vmhost1:8443").unwrap(), None);
        let text = std::fs::read_to_string(hosts.path()).unwrap();
        assert_eq!(
            text,
            format!(
                "vmhost1:443 {}\n[::1]:8443 {}\n",
                fingerprint(b"1"),
                fingerprint(b"2")
            )
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("mfv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn recording_again_replaces_the_line_and_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            format!(
                "# mine\n\nold:443 {}\nother:443 {}\n",
                fingerprint(b"1"),
                fingerprint(b"2")
            ),
        )
        .unwrap();
        let hosts = KnownHosts::at(&path);
        assert_eq!(hosts.lookup("old:443").unwrap().unwrap().line, 3);
        hosts.record("old:443", fingerprint(b"3")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!(
                "# mine\n\nold:443 {}\nother:443 {}\n",
                fingerprint(b"3"),
                fingerprint(b"2")
            )
        );
    }

    #[test]
    fn a_damaged_line_is_named_by_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        for text in ["a:1 xyz\n", "\n\na:1\n", "a:1 b c\n"] {
            std::fs::write(&path, text).unwrap();
            let hosts = KnownHosts::at(&path);
            let error = hosts.lookup("z:1").unwrap_err();
            let expected_line = text.lines().count();
            assert_eq!(
                error.to_string(),
                format!(
                    "{} line {expected_line}: expected `host:port FINGERPRINT`; fix or delete \
                     the line",
                    path.display()
                )
            );
            assert!(hosts.record("z:1", fingerprint(b"1")).is_err());
        }
    }

    #[test]
    fn an_unwritable_place_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let hosts = KnownHosts::at(dir.path().join("file/known_hosts"));
        let error = hosts.record("a:1", fingerprint(b"1")).unwrap_err();
        assert!(error.to_string().contains("file/known_hosts"), "{error}");
    }

    #[test]
    fn the_default_place_follows_xdg_then_home() {
        // Only read here: the variables are this process's, as a user's shell sets them.
        let expected = match (
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        ) {
            (Some(xdg), _) if !xdg.is_empty() => Some(PathBuf::from(xdg).join("mfv/known_hosts")),
            (_, Some(home)) if !home.is_empty() => {
                Some(PathBuf::from(home).join(".config/mfv/known_hosts"))
            }
            _ => None,
        };
        assert_eq!(default_path(), expected);
    }
}
