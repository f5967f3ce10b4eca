//! The configuration requests' data: the stored text with its generation, validation
//! problems with their positions, and formatting a config volume with a confirmation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ApiError, ConfigOrigin, ErrorKind};

/// The configuration the host uses, as `config_get` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ConfigDocument {
    /// The TOML text, without any store header.
    pub text: String,
    /// Its generation; `None` for a file written by hand. A save based on this text passes it
    /// as its base generation.
    pub generation: Option<u64>,
    /// Current generation or last-known-good.
    pub origin: ConfigOrigin,
    /// Where it is kept, for people: a file path, or a database and its generation.
    pub location: String,
}

impl ConfigDocument {
    /// A document read from `location`.
    pub fn new(
        text: impl Into<String>,
        generation: Option<u64>,
        origin: ConfigOrigin,
        location: impl Into<String>,
    ) -> Self {
        Self {
            text: text.into(),
            generation,
            origin,
            location: location.into(),
        }
    }
}

/// One problem in a configuration text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ConfigIssue {
    /// The line, from 1; `None` when the problem is the text as a whole.
    pub line: Option<u32>,
    /// The column in characters, from 1; `None` with `line`.
    pub column: Option<u32>,
    /// The field, e.g. `network.interfaces[1].addresses[0]`; empty for the document itself.
    pub field: String,
    /// What is wrong, as a sentence fragment without a trailing period.
    pub message: String,
}

impl ConfigIssue {
    /// A problem with `field` at no particular position.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem at `line`:`column`.
    #[must_use]
    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

/// The file system a new config volume gets. Serializes as `ext4` or `vfat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VolumeFs {
    /// ext4, labelled `mfv-config`.
    Ext4,
    /// FAT, labelled `MFV-CONFIG`, readable by any other operating system.
    Vfat,
}

/// Where first-boot setup puts the configuration. Serializes with `kind` `existing` or
/// `format` beside the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SetupVolume {
    /// A volume that has a file system already.
    Existing {
        /// Its device node, e.g. `/dev/sdb1`.
        device: String,
    },
    /// A partition or disk to erase and make a config volume.
    Format {
        /// Its device node.
        device: String,
        /// The file system to make.
        fs: VolumeFs,
        /// The device path again, exactly ([`check_format_confirmation`]).
        confirm: String,
    },
}

/// When the host runs with the configuration first-boot setup saved. Serializes with `when`
/// `now` or `next_boot` beside the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SetupInUse {
    /// Now: the host left setup and runs in normal mode with it.
    Now,
    /// From the next boot; the host stays in setup until then.
    NextBoot {
        /// Why not now.
        reason: String,
    },
}

/// A disk or partition first-boot setup can put the configuration on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VolumeChoice {
    /// The device node, e.g. `/dev/sdb1`.
    pub device: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The disk's model, where the hardware names one.
    pub model: Option<String>,
    /// Whether the disk is removable (a USB stick, a card).
    pub removable: bool,
    /// What it holds now.
    pub holds: VolumeContents,
    /// Its file system type, if it has one.
    pub fs_type: Option<String>,
    /// Its file system label, if it has one.
    pub label: Option<String>,
}

impl VolumeChoice {
    /// A choice of `device`, `size_bytes` long, holding `holds`.
    pub fn new(device: impl Into<String>, size_bytes: u64, holds: VolumeContents) -> Self {
        VolumeChoice {
            device: device.into(),
            size_bytes,
            model: None,
            removable: false,
            holds,
            fs_type: None,
            label: None,
        }
    }
}

/// What a disk or partition holds, for first-boot setup's choice. Serializes as its
/// snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VolumeContents {
    /// A config volume (labelled `mfv-config`): it can be used as it is.
    ConfigVolume,
    /// Another file system: it can be used as it is, or erased.
    FileSystem,
    /// A partition table: its partitions are choices of their own; erasing the disk erases
    /// them all.
    Partitions,
    /// Nothing libblkid recognises: it can be made a config volume.
    Nothing,
}

/// A secret in a request (a password): serialized as the plain string it is, never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// The file system a format made, as read back from the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FormattedVolume {
    /// The device node.
    pub device: String,
    /// The file system type read back (`ext4` or `vfat`).
    pub fs_type: String,
    /// Its label.
    pub label: String,
    /// The new file system's UUID.
    pub uuid: Option<String>,
}

impl FormattedVolume {
    /// A volume on `device` with a file system of `fs_type` labelled `label`.
    pub fn new(
        device: impl Into<String>,
        fs_type: impl Into<String>,
        label: impl Into<String>,
        uuid: Option<String>,
    ) -> Self {
        Self {
            device: device.into(),
            fs_type: fs_type.into(),
            label: label.into(),
            uuid,
        }
    }
}

/// Checks a format request's confirmation: it must repeat the device path exactly, so that
/// a volume is only ever erased by a caller who named it twice. The client checks this before
/// sending and the server checks it again on receipt.
pub fn check_format_confirmation(device: &str, confirm: &str) -> Result<(), ApiError> {
    if device.is_empty() {
        return Err(
            ApiError::new(ErrorKind::InvalidRequest, "no device given").with_field("device")
        );
    }
    if confirm != device {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("not formatting {device}: the confirmation must repeat the device path exactly, got {confirm:?}"),
        )
        .with_field("confirm"));
    }
    Ok(())
}
