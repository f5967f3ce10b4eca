//! Config discovery with the hardware's knowledge: mfv-config looks for the configuration,
//! mfv-probe knows whether USB mass storage present at power-on is still becoming disks.
//! Joined here, discovery keeps looking (bounded by `DiscoveryParams::settle_limit`) while a
//! stick is still being enumerated, at boot and for `mfv config`.

use std::path::Path;

use mfv_config::discovery::{DiscoveryParams, SettleCheck};

/// `params` with a settle check that asks mfv-probe, on `sysfs_root`, for USB mass storage
/// that is not a disk yet.
pub fn with_usb_storage_settling(params: DiscoveryParams, sysfs_root: &Path) -> DiscoveryParams {
    let sysfs = sysfs_root.to_path_buf();
    DiscoveryParams {
        settle: Some(SettleCheck::new(move || {
            mfv_probe::unsettled_usb_storage_at(&sysfs)
                .first()
                .map(ToString::to_string)
        })),
        ..params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_without_usb_storage_is_settled() {
        let sysfs = tempfile::tempdir().unwrap();
        let params = with_usb_storage_settling(DiscoveryParams::new(None, None), sysfs.path());
        let settle = params.settle.expect("a settle check");
        assert_eq!(settle.unsettled(), None);
    }
}
