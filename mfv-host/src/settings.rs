//! What a configuration asks for that the host does not apply yet, so the boot says so on
//! the console instead of passing over it in silence. docs/config.md keeps the same list.
//! Each entry goes when the work that applies it lands.

use mfv_config::schema::{AuthConfig, Config};

/// One line per configured setting the boot does not apply yet, naming the key.
pub fn not_applied(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    if config
        .network
        .bridge
        .as_ref()
        .is_some_and(|bridge| bridge.stp)
    {
        lines.push(
            "network.bridge.stp = true is not applied yet: the bridge runs without spanning tree"
                .to_owned(),
        );
    }
    if config.auth != AuthConfig::default() {
        lines.push(
            "auth is used by mfv user, mfv token and mfv auth; no login service runs yet"
                .to_owned(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use mfv_config::schema::parse_config;

    use super::*;

    #[test]
    fn a_plain_configuration_has_nothing_unapplied() {
        let config = parse_config("version = 1\n[host]\nhostname = \"h\"\n").unwrap();
        assert!(not_applied(&config).is_empty());
    }

    #[test]
    fn each_unapplied_setting_is_named() {
        let config = parse_config(
            "version = 1\n[host]\nhostname = \"h\"\n\
             [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
             [network.bridge]\nports = [\"eth0\"]\nstp = true\n\
             [[storage.pools]]\nname = \"vms\"\nkind = \"dir\"\npath = \"/srv/vms\"\n\
             [[storage.pools]]\nname = \"lvm\"\nkind = \"logical\"\ndevice = \"/dev/sdb\"\n\
             [[storage.pools]]\nname = \"shared\"\nkind = \"nfs\"\nserver = \"nas\"\n\
             export = \"/vms\"\n\
             [auth]\nmin_password_length = 12\n[web]\nport = 8443\n\
             tls_cert = \"tls/mine.pem\"\ntls_key = \"tls/mine.key\"\n",
        )
        .unwrap();
        let lines = not_applied(&config);
        // Every kind of storage pool is set up by the VM keeper: none is named.
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("network.bridge.stp = true"),
            "{lines:?}"
        );
        // The web server listens on the configured port, with the configured certificate.
        assert!(lines[1].starts_with("auth is used by"), "{lines:?}");
    }
}
