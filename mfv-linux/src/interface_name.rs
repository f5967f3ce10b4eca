//! What the kernel accepts as a network interface name (`dev_valid_name` in
//! net/core/dev.c): 1 to 15 bytes (IFNAMSIZ less the terminating NUL), not `.` or `..`, and
//! no `/`, `:` or white space. Control characters are refused too: such a name would garble
//! every console line and table that shows it.
//!
//! The config schema, the kernel command line parser, the network library and the `mfv`
//! command all check names here, so a name one accepts is never refused by another.

/// The longest interface name the kernel accepts, in bytes (IFNAMSIZ less the NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// Why a text cannot be an interface name. The messages quote the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceNameError {
    /// The name is empty.
    #[error("the interface name is empty")]
    Empty,
    /// The name is longer than [`MAX_INTERFACE_NAME_LEN`] bytes.
    #[error(
        "{name:?} is {} bytes long; interface names have at most {MAX_INTERFACE_NAME_LEN}",
        name.len()
    )]
    TooLong {
        /// The name.
        name: String,
    },
    /// `.` or `..`.
    #[error("{name:?} is not a valid interface name")]
    Reserved {
        /// The name.
        name: String,
    },
    /// The name contains `/`, `:`, white space or a control character.
    #[error("{name:?} contains {character:?}, which interface names cannot")]
    BadCharacter {
        /// The name.
        name: String,
        /// The first character refused.
        character: char,
    },
}

/// Fails when the kernel would refuse `name` as an interface name.
pub fn check_interface_name(name: &str) -> Result<(), InterfaceNameError> {
    if name.is_empty() {
        return Err(InterfaceNameError::Empty);
    }
    if name.len() > MAX_INTERFACE_NAME_LEN {
        return Err(InterfaceNameError::TooLong {
            name: name.to_owned(),
        });
    }
    if name == "." || name == ".." {
        return Err(InterfaceNameError::Reserved {
            name: name.to_owned(),
        });
    }
    if let Some(character) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(InterfaceNameError::BadCharacter {
            name: name.to_owned(),
            character,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Result<(), &str>) {
        let result = check_interface_name(name).map_err(|error| error.to_string());
        assert_eq!(result, expected.map_err(str::to_owned), "{name:?}");
    }

    #[test]
    fn kernel_names_are_accepted() {
        for name in [
            "eth0",
            "enp3s0f1",
            "br0",
            "eth0.10",
            "bond-uplink",
            "a",
            "wlx0123456789ab",
        ] {
            check(name, Ok(()));
        }
        check(&"x".repeat(15), Ok(()));
    }

    #[test]
    fn what_the_kernel_refuses_is_refused_with_the_reason() {
        check("", Err("the interface name is empty"));
        check(
            "averyveryverylongname",
            Err("\"averyveryverylongname\" is 21 bytes long; interface names have at most 15"),
        );
        check(".", Err("\".\" is not a valid interface name"));
        check("..", Err("\"..\" is not a valid interface name"));
        check(
            "a/b",
            Err("\"a/b\" contains '/', which interface names cannot"),
        );
        check(
            "eth0:1",
            Err("\"eth0:1\" contains ':', which interface names cannot"),
        );
        check(
            "eth 0",
            Err("\"eth 0\" contains ' ', which interface names cannot"),
        );
        check(
            "eth\t0",
            Err("\"eth\\t0\" contains '\\t', which interface names cannot"),
        );
        check(
            "eth\u{1b}0",
            Err("\"eth\\u{1b}0\" contains '\\u{1b}', which interface names cannot"),
        );
    }

    #[test]
    fn the_limit_counts_bytes_not_characters() {
        // Eight two-byte characters are 16 bytes.
        let name = "é".repeat(8);
        assert!(matches!(
            check_interface_name(&name),
            Err(InterfaceNameError::TooLong { .. })
        ));
    }
}
