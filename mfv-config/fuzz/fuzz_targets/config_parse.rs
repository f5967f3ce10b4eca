//! Fuzz target: the configuration parser must never panic, and a configuration it accepts
//! must survive a round trip through `to_toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfv_config::schema::{parse_config, parse_config_bytes};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_config_bytes(data);
    if let Ok(config) = parsed {
        let written = config.to_toml();
        assert_eq!(parse_config(&written), Ok(config), "round trip of:\n{written}");
    }
});
