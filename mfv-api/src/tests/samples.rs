//! Messages the other tests share: one of each request and of each response.

use std::collections::BTreeMap;

use serde_json::json;

use crate::*;

/// One of each request, valid.
pub(super) fn requests() -> Vec<Request> {
    vec![
        Request::HostStatus,
        Request::Inventory,
        Request::NetworkApply {
            network_toml: "[network]\nhostname = \"h\"\n".into(),
            confirm_within_secs: 60,
        },
        Request::NetworkConfirm { apply_id: 7 },
        Request::ConfigGet,
        Request::ConfigValidate {
            text: "version = 1\n".into(),
        },
        Request::AuthTest {
            config_text: "version = 1\n".into(),
            files: BTreeMap::new(),
        },
        Request::ConfigSave {
            text: "version = 1\n".into(),
            base_generation: Some(3),
        },
        Request::FormatConfigVolume {
            device: "/dev/sdb1".into(),
            fs: VolumeFs::Vfat,
            confirm: "/dev/sdb1".into(),
        },
        Request::ServiceStatus { name: None },
        Request::ServiceRestart {
            name: "mfv-web".into(),
        },
        Request::Logs {
            source: LogSource::Boot,
            limit: MAX_LOG_LINES,
        },
        Request::Reboot,
        Request::PowerOff,
        Request::SetupClaim {
            token: "abcde-fghjk-mnpqr-stuvw".into(),
        },
        Request::SetupVolumes,
        Request::SetupSave {
            config_text: "version = 1\n".into(),
            volume: SetupVolume::Format {
                device: "/dev/sdb1".into(),
                fs: VolumeFs::Ext4,
                confirm: "/dev/sdb1".into(),
            },
            admin: "alice".into(),
            password: Secret::new("a password"),
            files: BTreeMap::new(),
        },
        Request::SetupSave {
            config_text: "version = 1\n".into(),
            volume: SetupVolume::Existing {
                device: "/dev/sdb1".into(),
            },
            admin: "alice".into(),
            password: Secret::new("a password"),
            files: [(
                "auth.ldap.bind_password_file".to_owned(),
                Secret::new("bind secret"),
            )]
            .into(),
        },
    ]
}

/// A host that booted from a directory store and runs the web server.
pub(super) fn host_status() -> HostStatus {
    HostStatus {
        uptime_ms: 61_250,
        boot: BootReport {
            phases: vec![BootPhase::new("mounts", 1200)],
            config: ConfigProvenance::Found {
                device: "/dev/sda1".into(),
                store: StoreKind::Directory,
                generation: Some(3),
                origin: ConfigOrigin::Current,
            },
        },
        services: vec![web_service()],
        virtualization: Virtualization::Kvm,
        network_in_effect: Some(
            "[[network.interfaces]]\nname = \"eth0\"\nmode = \"dhcp\"\n".into(),
        ),
    }
}

/// mfv-web, running after one crash.
pub(super) fn web_service() -> ServiceStatus {
    ServiceStatus {
        pid: Some(812),
        restarts: 1,
        last_exit: Some(ExitStatus::Killed { signal: 9 }),
        ..ServiceStatus::new("mfv-web", ServiceState::Running)
    }
}

/// One of each response.
pub(super) fn responses() -> Vec<Response> {
    vec![
        Response::HostStatus(host_status()),
        Response::Inventory {
            inventory: json!({"nics": [], "cpu": {"kvm": true}}),
        },
        Response::Network(NetworkOutcome::Confirmed),
        Response::Config(ConfigDocument::new(
            "version = 1\n",
            Some(3),
            ConfigOrigin::LastKnownGood,
            "/run/mfv/config/mfv.toml.prev",
        )),
        Response::ConfigValidation {
            errors: vec![ConfigIssue::new("network.mtu", "must be at least 68").at(4, 7)],
        },
        Response::AuthTested {
            backend: "ldap".into(),
            message: "connected to ldaps://127.0.0.1:6360 over TLS".into(),
        },
        Response::ConfigSaved { generation: 4 },
        Response::VolumeFormatted(FormattedVolume::new(
            "/dev/sdb1",
            "vfat",
            "MFV-CONFIG",
            Some("1A2B-3C4D".into()),
        )),
        Response::Services {
            services: vec![web_service()],
        },
        Response::ServiceRestarted {
            service: ServiceStatus::new("mfv-web", ServiceState::Starting),
        },
        Response::Logs {
            lines: vec![LogLine::new(1_634_210, LogSource::Boot, "phase mounts: ok")],
        },
        Response::Accepted,
        Response::SetupVolumes {
            volumes: vec![VolumeChoice::new(
                "/dev/vdb",
                32 << 20,
                VolumeContents::Nothing,
            )],
        },
        Response::SetupSaved {
            device: "/dev/sdb1".into(),
            generation: 1,
            formatted: true,
            in_use: SetupInUse::Now,
        },
    ]
}
