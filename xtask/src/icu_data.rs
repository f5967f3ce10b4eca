//! ICU's common data library, replaced by one without entries.
//!
//! libvirt reads and writes its XML through libxml2, which Debian links with ICU (libicuuc)
//! for the character encodings it does not convert itself, and libicuuc links the 31 MB
//! library that carries ICU's data: converter tables, locales, collation, time zones. libvirt's
//! XML is UTF-8, which libxml2 converts without ICU, and nothing else in the image links ICU,
//! so nothing asks for that data. The image carries instead, under the data library's name, a
//! library whose common data (`icudtNN_dat`, the format ICU names `CmnD`) has no entries:
//! ICU answers every lookup with "not found", as it does when its data files are missing. The
//! payload is about 9 MB smaller compressed, and so is the RAM the host keeps it in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

/// The file name ICU's data library has, up to its major version: `libicudata.so.72`.
const DATA_LIBRARY_PREFIX: &str = "libicudata.so.";

/// The major version of ICU whose data library the image path `path` is, when it is one.
pub fn data_library_major(path: &str) -> Option<u32> {
    let name = path.rsplit('/').next()?;
    name.strip_prefix(DATA_LIBRARY_PREFIX)?.parse().ok()
}

/// The C source of the data library of ICU `major`: the common data header (`MappedData`,
/// then `UDataInfo`: little-endian, ASCII, 2-byte UChar, format `CmnD` 1.0), padded to 32
/// bytes, and a table of contents of no entries.
fn source(major: u32) -> String {
    format!(
        "/* ICU {major} common data without entries: see xtask/src/icu_data.rs. */\n\
         #include <stdint.h>\n\
         struct common_data {{\n\
         \x20   uint16_t header_size; uint8_t magic1; uint8_t magic2;\n\
         \x20   uint16_t info_size; uint16_t reserved_word;\n\
         \x20   uint8_t is_big_endian; uint8_t charset_family; uint8_t sizeof_uchar;\n\
         \x20   uint8_t reserved_byte;\n\
         \x20   uint8_t data_format[4]; uint8_t format_version[4]; uint8_t data_version[4];\n\
         \x20   uint8_t padding[8];\n\
         \x20   uint32_t count;\n\
         }};\n\
         __attribute__((visibility(\"default\")))\n\
         const struct common_data icudt{major}_dat = {{\n\
         \x20   32, 0xda, 0x27,\n\
         \x20   20, 0,\n\
         \x20   0, 0, 2,\n\
         \x20   0,\n\
         \x20   {{'C', 'm', 'n', 'D'}}, {{1, 0, 0, 0}}, {{0, 0, 0, 0}},\n\
         \x20   {{0}},\n\
         \x20   0\n\
         }};\n"
    )
}

/// Compiles the data library of ICU `major` into `dir` with the system's C compiler, and
/// gives its path. It links nothing, not even libc.
pub fn build(dir: &Path, major: u32) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{DATA_LIBRARY_PREFIX}{major}");
    let source_path = dir.join(format!("icudt{major}_dat.c"));
    fs::write(&source_path, source(major))
        .with_context(|| format!("cannot write {}", source_path.display()))?;
    let library = dir.join(&name);
    let mut cc = Command::new("cc");
    cc.args([
        "-shared",
        "-nostdlib",
        "-fPIC",
        "-O2",
        "-Wl,--build-id=none",
    ])
    .arg(format!("-Wl,-soname,{name}"))
    .arg("-o")
    .arg(&library)
    .arg(&source_path);
    cmd::run(&mut cc).context("compiling ICU's data library without entries (cc from gcc)")?;
    // As Debian installs libraries: not executable.
    fs::set_permissions(&library, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", library.display()))?;
    Ok(library)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_library_is_replaced() {
        assert_eq!(
            data_library_major("usr/lib/x86_64-linux-gnu/libicudata.so.72"),
            Some(72)
        );
        assert_eq!(
            data_library_major("usr/lib/x86_64-linux-gnu/libicuuc.so.72"),
            None
        );
        assert_eq!(
            data_library_major("usr/lib/x86_64-linux-gnu/libicudata.so.72.1"),
            None
        );
        assert_eq!(data_library_major("libicudata.so"), None);
    }

    #[test]
    fn the_library_exports_the_empty_common_data_under_its_soname() {
        let dir = tempfile::tempdir().unwrap();
        let library = build(dir.path(), 72).unwrap();
        assert_eq!(library.file_name().unwrap(), "libicudata.so.72");
        let mode = fs::metadata(&library).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let bytes = fs::read(&library).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert_eq!(elf.soname, Some("libicudata.so.72"));
        assert!(elf.libraries.is_empty(), "{:?}", elf.libraries);
        let symbol = elf
            .dynsyms
            .iter()
            .find(|sym| elf.dynstrtab.get_at(sym.st_name) == Some("icudt72_dat"))
            .unwrap();
        // The header: 32 bytes, magic 0xda 0x27, format CmnD 1.0, then a count of 0.
        let section = elf
            .section_headers
            .iter()
            .find(|section| {
                (section.sh_addr..section.sh_addr + section.sh_size).contains(&symbol.st_value)
            })
            .unwrap();
        let start = usize::try_from(section.sh_offset + symbol.st_value - section.sh_addr).unwrap();
        let data = &bytes[start..start + 36];
        assert_eq!(&data[..4], &[32, 0, 0xda, 0x27]);
        assert_eq!(&data[12..20], b"CmnD\x01\x00\x00\x00");
        assert_eq!(&data[32..36], &[0, 0, 0, 0]);
    }
}
