//! The JSON of each message is the protocol: golden strings for representative messages,
//! round trips for all, validation, and reading what a newer server may send.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::samples::{host_status, requests, responses};
use crate::*;

/// `value` serializes to exactly `expected` and `expected` reads back as `value`.
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, expected: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), expected);
    assert_eq!(&serde_json::from_str::<T>(expected).unwrap(), value);
}

/// `value` survives a trip through JSON and is tagged `name`.
fn check_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, name: &str) {
    let json = serde_json::to_value(value).unwrap();
    assert_eq!(json["type"], name, "{json}");
    assert_eq!(&serde_json::from_value::<T>(json).unwrap(), value);
}

#[test]
fn requests_have_a_stable_shape() {
    check(&Request::HostStatus, r#"{"type":"host_status"}"#);
    check(
        &Request::ConfigSave {
            text: "version = 1\n".into(),
            base_generation: Some(3),
        },
        r#"{"type":"config_save","text":"version = 1\n","base_generation":3}"#,
    );
    check(
        &Request::FormatConfigVolume {
            device: "/dev/sdb1".into(),
            fs: VolumeFs::Ext4,
            confirm: "/dev/sdb1".into(),
        },
        r#"{"type":"format_config_volume","device":"/dev/sdb1","fs":"ext4","confirm":"/dev/sdb1"}"#,
    );
    check(
        &Request::Logs {
            source: LogSource::Service {
                name: "mfv-web".into(),
            },
            limit: 50,
        },
        r#"{"type":"logs","source":{"kind":"service","name":"mfv-web"},"limit":50}"#,
    );
    check(
        &Request::NetworkApply {
            network_toml: "[network]\n".into(),
            confirm_within_secs: 120,
        },
        r#"{"type":"network_apply","network_toml":"[network]\n","confirm_within_secs":120}"#,
    );
    check(
        &Request::ServiceStatus { name: None },
        r#"{"type":"service_status","name":null}"#,
    );
    check(
        &Request::AuthTest {
            config_text: "version = 1\n".into(),
            files: std::collections::BTreeMap::new(),
        },
        r#"{"type":"auth_test","config_text":"version = 1\n"}"#,
    );
    check(
        &Request::AuthTest {
            config_text: "version = 1\n".into(),
            files: [("auth.mysql.password_file".to_owned(), Secret::new("s3cret"))].into(),
        },
        r#"{"type":"auth_test","config_text":"version = 1\n","files":{"auth.mysql.password_file":"s3cret"}}"#,
    );
}

#[test]
fn replies_have_a_stable_shape() {
    check(
        &Reply::Ok(Response::ConfigSaved { generation: 4 }),
        r#"{"ok":{"type":"config_saved","generation":4}}"#,
    );
    check(
        &Reply::Ok(Response::Network(NetworkOutcome::Applied {
            apply_id: 7,
            confirm_within_secs: 60,
            changes: Vec::new(),
        })),
        r#"{"ok":{"type":"network","outcome":"applied","apply_id":7,"confirm_within_secs":60}}"#,
    );
    check(
        &Reply::Ok(Response::Network(NetworkOutcome::Applied {
            apply_id: 8,
            confirm_within_secs: 5,
            changes: vec!["add 192.0.2.10/24 to eth0".into()],
        })),
        concat!(
            r#"{"ok":{"type":"network","outcome":"applied","apply_id":8,"confirm_within_secs":5,"#,
            r#""changes":["add 192.0.2.10/24 to eth0"]}}"#
        ),
    );
    check(
        &Reply::Ok(Response::Network(NetworkOutcome::RolledBack {
            reason: "deadline passed".into(),
        })),
        r#"{"ok":{"type":"network","outcome":"rolled_back","reason":"deadline passed"}}"#,
    );
    check(
        &Reply::Ok(Response::Accepted),
        r#"{"ok":{"type":"accepted"}}"#,
    );
    check(
        &Reply::Ok(Response::HostStatus(host_status())),
        concat!(
            r#"{"ok":{"type":"host_status","uptime_ms":61250,"boot":{"phases":[{"name":"mounts","#,
            r#""duration_us":1200,"error":null}],"config":{"result":"found","device":"/dev/sda1","#,
            r#""store":"directory","generation":3,"origin":"current"}},"services":[{"name":"mfv-web","#,
            r#""state":"running","pid":812,"restarts":1,"last_exit":{"how":"killed","signal":9}}],"#,
            r#""virtualization":"kvm","network_in_effect":"[[network.interfaces]]\nname = "#,
            r#"\"eth0\"\nmode = \"dhcp\"\n"}}"#
        ),
    );
    check(
        &Reply::Ok(Response::ConfigValidation {
            errors: vec![ConfigIssue::new("network.mtu", "must be at least 68").at(4, 7)],
        }),
        r#"{"ok":{"type":"config_validation","errors":[{"line":4,"column":7,"field":"network.mtu","message":"must be at least 68"}]}}"#,
    );
    check(
        &Reply::Ok(Response::AuthTested {
            backend: "sqlite".into(),
            message: "local users".into(),
        }),
        r#"{"ok":{"type":"auth_tested","backend":"sqlite","message":"local users"}}"#,
    );
    check(
        &Reply::<Response>::Error(
            ApiError::new(ErrorKind::StaleGeneration, "generation 5 is current, not 3")
                .with_field("base_generation"),
        ),
        r#"{"error":{"kind":"stale_generation","message":"generation 5 is current, not 3","field":"base_generation"}}"#,
    );
    check(
        &Reply::<Response>::Error(ApiError::invalid_config(
            "1 error",
            vec![ConfigIssue::new("", "missing `version = 1`")],
        )),
        r#"{"error":{"kind":"invalid_config","message":"1 error","field":null,"config_errors":[{"line":null,"column":null,"field":"","message":"missing `version = 1`"}]}}"#,
    );
    check(
        &ConfigProvenance::Invalid {
            device: "/dev/sda1".into(),
            errors: Vec::new(),
        },
        r#"{"result":"invalid","device":"/dev/sda1","errors":[]}"#,
    );
    check(&ConfigProvenance::NotFound, r#"{"result":"not_found"}"#);
}

#[test]
fn the_handshake_has_a_stable_shape() {
    check(
        &Hello::new("mfv 0.1.0"),
        r#"{"protocol":1,"client":"mfv 0.1.0"}"#,
    );
    check(
        &Reply::Ok(accept_hello(&Hello::new("mfv"), "mfv-init 0.1.0").unwrap()),
        r#"{"ok":{"protocol":1,"server":"mfv-init 0.1.0"}}"#,
    );
}

#[test]
fn every_message_round_trips_under_its_name() {
    for request in requests() {
        check_round_trip(&request, request.name());
    }
    for response in responses() {
        check_round_trip(&response, response.name());
    }
}

#[test]
fn every_sample_request_is_valid() {
    for request in requests() {
        assert_eq!(request.validate(), Ok(()), "{request:?}");
    }
}

#[test]
fn a_setup_save_shows_no_password_in_debug_and_sends_it_plain() {
    let request = Request::SetupSave {
        config_text: String::new(),
        volume: SetupVolume::Existing {
            device: "/dev/sdb1".into(),
        },
        admin: "alice".into(),
        password: Secret::new("hunter2 hunter2"),
        files: [(
            "auth.ldap.bind_password_file".to_owned(),
            Secret::new("bind hunter2"),
        )]
        .into(),
    };
    assert!(!format!("{request:?}").contains("hunter2"));
    check(
        &request,
        r#"{"type":"setup_save","config_text":"","volume":{"kind":"existing","device":"/dev/sdb1"},"admin":"alice","password":"hunter2 hunter2","files":{"auth.ldap.bind_password_file":"bind hunter2"}}"#,
    );
}

#[test]
fn validation_names_the_field() {
    let cases = [
        (
            Request::NetworkApply {
                network_toml: String::new(),
                confirm_within_secs: 0,
            },
            "confirm_within_secs",
        ),
        (
            Request::NetworkApply {
                network_toml: String::new(),
                confirm_within_secs: MAX_CONFIRM_SECS + 1,
            },
            "confirm_within_secs",
        ),
        (
            Request::FormatConfigVolume {
                device: "/dev/sdb1".into(),
                fs: VolumeFs::Ext4,
                confirm: "sdb1".into(),
            },
            "confirm",
        ),
        (
            Request::FormatConfigVolume {
                device: String::new(),
                fs: VolumeFs::Ext4,
                confirm: String::new(),
            },
            "device",
        ),
        (
            Request::ServiceStatus {
                name: Some(String::new()),
            },
            "name",
        ),
        (
            Request::ServiceRestart {
                name: String::new(),
            },
            "name",
        ),
        (
            Request::SetupClaim {
                token: String::new(),
            },
            "token",
        ),
        (
            Request::SetupSave {
                config_text: String::new(),
                volume: SetupVolume::Format {
                    device: "/dev/sdb1".into(),
                    fs: VolumeFs::Ext4,
                    confirm: "sdb1".into(),
                },
                admin: "alice".into(),
                password: Secret::new("x"),
                files: std::collections::BTreeMap::new(),
            },
            "confirm",
        ),
        (
            Request::SetupSave {
                config_text: String::new(),
                volume: SetupVolume::Existing {
                    device: "/dev/sdb1".into(),
                },
                admin: String::new(),
                password: Secret::new("x"),
                files: std::collections::BTreeMap::new(),
            },
            "admin",
        ),
        (
            Request::SetupSave {
                config_text: String::new(),
                volume: SetupVolume::Existing {
                    device: "/dev/sdb1".into(),
                },
                admin: "alice".into(),
                password: Secret::new("x"),
                files: [("auth.sqlite.path".to_owned(), Secret::new("x"))].into(),
            },
            "files.auth.sqlite.path",
        ),
        (
            Request::AuthTest {
                config_text: String::new(),
                files: [(
                    "auth.ldap.ca_certificate".to_owned(),
                    Secret::new("x".repeat(crate::MAX_SETUP_FILE_LEN + 1)),
                )]
                .into(),
            },
            "files.auth.ldap.ca_certificate",
        ),
        (
            Request::SetupClaim {
                token: "a".repeat(crate::MAX_SETUP_TOKEN_LEN + 1),
            },
            "token",
        ),
        (
            Request::Logs {
                source: LogSource::Boot,
                limit: MAX_LOG_LINES + 1,
            },
            "limit",
        ),
        (
            Request::Logs {
                source: LogSource::Boot,
                limit: 0,
            },
            "limit",
        ),
        (
            Request::Logs {
                source: LogSource::Service {
                    name: String::new(),
                },
                limit: 1,
            },
            "source.name",
        ),
    ];
    for (request, field) in cases {
        let error = request.validate().unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidRequest, "{request:?}");
        assert_eq!(error.field.as_deref(), Some(field), "{request:?}");
    }
}

#[test]
fn the_format_confirmation_must_repeat_the_device_exactly() {
    assert_eq!(check_format_confirmation("/dev/sdb1", "/dev/sdb1"), Ok(()));
    for confirm in ["", "yes", "sdb1", "/dev/sdb1/", "/dev/sdb"] {
        let error = check_format_confirmation("/dev/sdb1", confirm).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "invalid_request: confirm: not formatting /dev/sdb1: the confirmation must \
                 repeat the device path exactly, got {confirm:?}"
            )
        );
    }
}

#[test]
fn the_server_refuses_another_protocol_naming_both_versions() {
    let hello = Hello {
        protocol: 2,
        client: "mfv 9.0".into(),
    };
    let error = accept_hello(&hello, "mfv-init").unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnsupportedProtocol);
    assert_eq!(
        error.message,
        "the client speaks protocol 2, this server speaks protocol 1"
    );
}

#[test]
fn an_unknown_error_kind_from_a_newer_server_is_read_as_unknown() {
    let reply: Reply<Response> = serde_json::from_str(
        r#"{"error":{"kind":"quota_exceeded","message":"too many VMs","retry_after":5}}"#,
    )
    .unwrap();
    let Reply::Error(error) = reply else {
        panic!("not an error: {reply:?}");
    };
    assert_eq!(error.kind, ErrorKind::Unknown);
    assert_eq!(error.message, "too many VMs");
    assert_eq!(error.field, None);
}

#[test]
fn every_error_kind_is_named_as_it_serializes() {
    let kinds = [
        ErrorKind::InvalidRequest,
        ErrorKind::NotPermitted,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::StaleGeneration,
        ErrorKind::InvalidConfig,
        ErrorKind::Busy,
        ErrorKind::UnsupportedProtocol,
        ErrorKind::Internal,
        ErrorKind::Unavailable,
        ErrorKind::Unknown,
    ];
    for kind in kinds {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{kind}\""));
        assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
    }
}
