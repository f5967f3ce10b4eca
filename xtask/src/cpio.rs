//! A writer for cpio "newc" archives, the format the Linux kernel unpacks as an initramfs.
//!
//! Entries are written in the order given, owned by root, with one fixed mtime, so the same
//! input gives the same bytes.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// Writes a newc archive to `out`.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    mtime: u32,
    next_inode: u32,
    written: u64,
}

/// One entry's header fields that differ between entry kinds.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: usize,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    /// A writer stamping every entry with `mtime` (seconds since the epoch).
    pub fn new(out: W, mtime: u32) -> Self {
        Self {
            out,
            mtime,
            next_inode: 1,
            written: 0,
        }
    }

    /// A directory; `name` is a path like `usr/bin` (a leading `/` is dropped).
    pub fn directory(&mut self, name: &str, permissions: u32) -> io::Result<()> {
        self.entry(
            &Header {
                name,
                mode: S_IFDIR | permissions,
                nlink: 2,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> io::Result<()> {
        self.entry(
            &Header {
                name,
                mode: S_IFREG | permissions,
                nlink: 1,
                size: data.len(),
                rdev: (0, 0),
            },
            data,
        )
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(
            &Header {
                name,
                mode: S_IFLNK | 0o777,
                nlink: 1,
                size: target.len(),
                rdev: (0, 0),
            },
            target.as_bytes(),
        )
    }

    /// A character device node.
    pub fn char_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        self.entry(
            &Header {
                name,
                mode: S_IFCHR | permissions,
                nlink: 1,
                size: 0,
                rdev: (major, minor),
            },
            &[],
        )
    }

    /// Writes the trailer; returns the output and the archive's length in bytes.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        let header = Header {
            name: TRAILER,
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        self.write_header(&header, 0)?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }

    fn entry(&mut self, header: &Header<'_>, data: &[u8]) -> io::Result<()> {
        let name = header.name.trim_start_matches('/');
        if name.is_empty() || name == TRAILER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid cpio entry name {:?}", header.name),
            ));
        }
        let inode = self.next_inode;
        self.next_inode += 1;
        self.write_header(&Header { name, ..*header }, inode)?;
        self.write_padded(data)
    }

    fn write_header(&mut self, header: &Header<'_>, inode: u32) -> io::Result<()> {
        let size = u32::try_from(header.size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is too large for a cpio archive", header.name),
            )
        })?;
        let name_size = header.name.len() + 1;
        let fields = [
            inode,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            self.mtime,
            size,
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            u32::try_from(name_size).unwrap_or(u32::MAX),
            0, // check
        ];
        let mut bytes = Vec::with_capacity(110 + name_size + 3);
        bytes.extend_from_slice(MAGIC);
        for field in fields {
            bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        bytes.extend_from_slice(header.name.as_bytes());
        bytes.push(0);
        self.write_padded(&bytes)
    }

    /// Writes `data` and pads the archive to a multiple of four bytes.
    fn write_padded(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        let padding = (4 - self.written % 4) % 4;
        self.out.write_all(&[0; 3][..padding as usize])?;
        self.written += padding;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// One entry parsed back from an archive.
    #[derive(Debug, PartialEq, Eq)]
    struct Parsed {
        name: String,
        mode: u32,
        uid: u32,
        mtime: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    fn field(header: &[u8], index: usize) -> u32 {
        let start = 6 + index * 8;
        u32::from_str_radix(std::str::from_utf8(&header[start..start + 8]).unwrap(), 16).unwrap()
    }

    fn align(offset: usize) -> usize {
        offset.div_ceil(4) * 4
    }

    /// Parses an archive the way the kernel does, up to the trailer.
    fn parse(archive: &[u8]) -> Vec<Parsed> {
        let mut entries = Vec::new();
        let mut offset = 0;
        loop {
            let header = &archive[offset..offset + 110];
            assert_eq!(&header[..6], MAGIC);
            let name_size = field(header, 11) as usize;
            let size = field(header, 6) as usize;
            let name_start = offset + 110;
            let name = std::str::from_utf8(&archive[name_start..name_start + name_size - 1])
                .unwrap()
                .to_owned();
            assert_eq!(archive[name_start + name_size - 1], 0);
            let data_start = align(name_start + name_size);
            let data = archive[data_start..data_start + size].to_vec();
            offset = align(data_start + size);
            if name == TRAILER {
                assert_eq!(offset, archive.len());
                return entries;
            }
            entries.push(Parsed {
                name,
                mode: field(header, 1),
                uid: field(header, 2),
                mtime: field(header, 5),
                rdev: (field(header, 9), field(header, 10)),
                data,
            });
        }
    }

    fn sample() -> (Vec<u8>, u64) {
        let mut writer = CpioWriter::new(Vec::new(), 1_700_000_000);
        writer.directory("/dev", 0o755).unwrap();
        writer.char_device("dev/console", 0o600, 5, 1).unwrap();
        writer.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        writer.symlink("bin", "usr/bin").unwrap();
        writer.file("empty", 0o644, b"").unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn round_trips_through_our_parser() {
        let (archive, length) = sample();
        assert_eq!(length, archive.len() as u64);
        assert_eq!(archive.len() % 4, 0);
        let entries = parse(&archive);
        let summary: Vec<(&str, u32, &[u8])> = entries
            .iter()
            .map(|entry| (entry.name.as_str(), entry.mode, entry.data.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                ("dev", 0o040_755, &b""[..]),
                ("dev/console", 0o020_600, b""),
                ("init", 0o100_755, b"#!/bin/sh\n"),
                ("bin", 0o120_777, b"usr/bin"),
                ("empty", 0o100_644, b""),
            ]
        );
        assert_eq!(entries[1].rdev, (5, 1));
        assert!(
            entries
                .iter()
                .all(|entry| entry.uid == 0 && entry.mtime == 1_700_000_000)
        );
    }

    #[test]
    fn gnu_cpio_lists_and_reads_it() {
        let (archive, _) = sample();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        // Device nodes need root to create; extract everything else.
        let mut without_devices = CpioWriter::new(Vec::new(), 0);
        without_devices.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        without_devices.symlink("bin", "usr/bin").unwrap();
        let (extractable, _) = without_devices.finish().unwrap();
        child.stdin.take().unwrap().write_all(&extractable).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read(dir.path().join("init")).unwrap(),
            b"#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("bin")).unwrap(),
            std::path::Path::new("usr/bin")
        );

        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "dev\ndev/console\ninit\nbin\nempty\n"
        );
    }

    #[test]
    fn same_input_gives_same_bytes() {
        assert_eq!(sample().0, sample().0);
    }

    #[test]
    fn rejects_empty_and_trailer_names() {
        let mut writer = CpioWriter::new(Vec::new(), 0);
        assert!(writer.directory("/", 0o755).is_err());
        assert!(writer.file("TRAILER!!!", 0o644, b"").is_err());
    }
}
