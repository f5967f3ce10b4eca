//! First-boot setup's save on real block devices (loop devices; needs root): a blank device
//! made a config volume holding the configuration, the first administrator and the web
//! identity; what is refused leaves the device as it was; a save sent again after a failure
//! works; the files `[auth]` names land where it says; the web server presents the pair
//! `[web] tls_cert` names, or the host's own when it cannot.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use mfv_auth::Password;
use mfv_config::format::FsKind;
use mfv_host::auth::{AuthOverrides, AuthSettings, MissingDatabase};
use mfv_host::config::{StoreVolume, load};
use mfv_host::setup_save::{SetupSave, SetupSaveError, SetupVolume, save};
use mfv_host::web_identity::{self, WebIdentity};
use mfv_tests::loop_device::LoopDevice;

const CONFIG: &str = "version = 1\n[host]\nhostname = \"setuphost\"\n";
const PASSWORD: &str = "first admin password";

/// A runtime directory with a published web identity.
fn run_dir() -> (tempfile::TempDir, WebIdentity) {
    let dir = tempfile::tempdir().unwrap();
    let identity = WebIdentity::generate("setuphost").unwrap();
    identity
        .write(&dir.path().join(web_identity::RUN_SUBDIR), None)
        .unwrap();
    (dir, identity)
}

fn request(device: &Path, volume: impl FnOnce(&Path) -> SetupVolume, config: &str) -> SetupSave {
    SetupSave {
        config_text: config.to_owned(),
        volume: volume(device),
        admin: "alice".to_owned(),
        password: Password::new(PASSWORD).unwrap(),
        files: std::collections::BTreeMap::new(),
    }
}

fn format(device: &Path) -> SetupVolume {
    SetupVolume::Format {
        device: device.to_owned(),
        fs: FsKind::Ext4,
        confirm: device.display().to_string(),
    }
}

/// Whether `device` holds a file system, by blkid.
fn has_filesystem(device: &Path) -> bool {
    std::process::Command::new("blkid")
        .arg(device)
        .output()
        .unwrap()
        .status
        .success()
}

/// Logs `user` in with `password` on the local users of the volume in `run`.
fn logs_in(device: &Path, run: &Path, user: &str, password: &str) -> bool {
    let volume = StoreVolume::on_device(device, run).unwrap();
    let config = load(volume.store(), volume.dir()).unwrap().config;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A login writes its attempt to the auth database, as the console's check does.
    let access = volume.access();
    access.make_writable().unwrap();
    let logged_in = runtime.block_on(async {
        let authenticator = AuthSettings::from_config(config.auth, volume.dir())
            .with_overrides(AuthOverrides::default())
            .open(MissingDatabase::Refuse)
            .await
            .unwrap();
        authenticator
            .login(user, password, None, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .is_ok()
    });
    access.make_read_only().unwrap();
    volume.close().unwrap();
    logged_in
}

#[test]
fn a_blank_device_becomes_the_config_volume_with_the_admin_and_the_identity() {
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, identity) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    let saved = save(
        run.path(),
        &published,
        &request(device.path(), format, CONFIG),
    )
    .unwrap();
    assert!(saved.formatted);
    assert_eq!(saved.device, device.path());

    let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
    let stored = load(volume.store(), volume.dir()).unwrap();
    assert_eq!(stored.text, CONFIG);
    assert_eq!(stored.config.host.hostname, "setuphost");
    let kept = WebIdentity::read(&volume.dir().join(web_identity::STORE_DIR)).unwrap();
    assert_eq!(kept, identity);
    volume.close().unwrap();
    assert!(logs_in(device.path(), run.path(), "alice", PASSWORD));
    assert!(!logs_in(
        device.path(),
        run.path(),
        "alice",
        "wrong password!"
    ));
}

#[test]
fn what_is_refused_before_the_volume_leaves_the_device_blank() {
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, _) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);

    let invalid = save(
        run.path(),
        &published,
        &request(
            device.path(),
            format,
            "version = 1\n[host]\nhostnme = \"x\"\n",
        ),
    )
    .unwrap_err();
    assert!(
        matches!(invalid, SetupSaveError::InvalidConfig(_)),
        "{invalid:?}"
    );

    let mut short = request(device.path(), format, CONFIG);
    short.password = Password::new("short").unwrap();
    let error = save(run.path(), &published, &short).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the administrator's password has 5 characters; this configuration asks for at least \
         8 ([auth] min_password_length); nothing was written"
    );

    let mut bad_name = request(device.path(), format, CONFIG);
    bad_name.admin = "Alice Smith".to_owned();
    let error = save(run.path(), &published, &bad_name).unwrap_err();
    assert!(
        matches!(error, SetupSaveError::AdminName { .. }),
        "{error:?}"
    );

    let ldap = "version = 1\n[host]\nhostname = \"setuphost\"\n[auth]\nbackend = \"ldap\"\n\
                [auth.ldap]\nurl = \"ldaps://ldap.example.org\"\n\
                base_dn = \"ou=people,dc=example,dc=org\"\n\
                bind_dn = \"cn=reader,dc=example,dc=org\"\nbind_password_file = \"/etc/bind\"\n";
    let mut off_volume = request(device.path(), format, ldap);
    off_volume.files = [(
        "auth.ldap.bind_password_file".to_owned(),
        mfv_api::Secret::new("bind password"),
    )]
    .into();
    let error = save(run.path(), &published, &off_volume).unwrap_err();
    assert!(matches!(error, SetupSaveError::File(_)), "{error:?}");

    let unconfirmed = request(
        device.path(),
        |device| SetupVolume::Format {
            device: device.to_owned(),
            fs: FsKind::Ext4,
            confirm: "loop0".to_owned(),
        },
        CONFIG,
    );
    let error = save(run.path(), &published, &unconfirmed).unwrap_err();
    assert!(matches!(error, SetupSaveError::Format(_)), "{error:?}");

    assert!(!has_filesystem(device.path()), "the device was written");
}

#[test]
fn the_files_auth_names_are_written_where_the_configuration_says() {
    use std::os::unix::fs::PermissionsExt;
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, _) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    let ldap = "version = 1\n[host]\nhostname = \"setuphost\"\n[auth]\nbackend = \"ldap\"\n\
                [auth.ldap]\nurl = \"ldaps://ldap.example.org\"\n\
                base_dn = \"ou=people,dc=example,dc=org\"\n\
                bind_dn = \"cn=reader,dc=example,dc=org\"\n\
                bind_password_file = \"secrets/ldap-bind\"\nca_certificate = \"ldap-ca.pem\"\n";
    let mut with_files = request(device.path(), format, ldap);
    with_files.files = [
        (
            "auth.ldap.bind_password_file".to_owned(),
            mfv_api::Secret::new("bind password"),
        ),
        (
            "auth.ldap.ca_certificate".to_owned(),
            mfv_api::Secret::new("-----BEGIN CERTIFICATE-----\n"),
        ),
    ]
    .into();
    save(run.path(), &published, &with_files).unwrap();
    let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
    let bind = volume.dir().join("secrets/ldap-bind");
    assert_eq!(std::fs::read_to_string(&bind).unwrap(), "bind password");
    assert_eq!(
        std::fs::metadata(&bind).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(volume.dir().join("ldap-ca.pem")).unwrap(),
        "-----BEGIN CERTIFICATE-----\n"
    );
    volume.close().unwrap();
}

#[test]
fn a_save_sent_again_on_the_volume_it_made_keeps_one_admin_with_the_new_password() {
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, _) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    save(
        run.path(),
        &published,
        &request(device.path(), format, CONFIG),
    )
    .unwrap();
    let existing = |device: &Path| SetupVolume::Existing {
        device: device.to_owned(),
    };
    let mut again = request(device.path(), existing, CONFIG);
    again.password = Password::new("the second password").unwrap();
    let saved = save(run.path(), &published, &again).unwrap();
    assert!(!saved.formatted);
    assert_eq!(saved.generation, 2);
    assert!(logs_in(
        device.path(),
        run.path(),
        "alice",
        "the second password"
    ));
    assert!(!logs_in(device.path(), run.path(), "alice", PASSWORD));
}

#[test]
fn a_device_that_is_not_a_volume_is_named() {
    let (run, _) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    let missing = Path::new("/dev/mfv-no-such-disk");
    let error = save(
        run.path(),
        &published,
        &request(
            missing,
            |device| SetupVolume::Existing {
                device: device.to_owned(),
            },
            CONFIG,
        ),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("/dev/mfv-no-such-disk"),
        "{error}"
    );
}

#[test]
fn the_web_server_presents_the_pair_web_tls_cert_names_or_says_why_not() {
    use mfv_api::{BootReport, ConfigOrigin, ConfigProvenance, StoreKind, Virtualization};
    use mfv_host::daemon::{DetachedInit, HostDaemon, HostState, write_host_state};
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, own) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    let config = "version = 1\n[host]\nhostname = \"setuphost\"\n\
                  [web]\ntls_cert = \"certs/host.pem\"\ntls_key = \"certs/host.key\"\n";
    save(
        run.path(),
        &published,
        &request(device.path(), format, config),
    )
    .unwrap();
    let mine = WebIdentity::generate("setuphost.example.org").unwrap();
    let other = WebIdentity::generate("other").unwrap();
    let put = |key: &WebIdentity| {
        let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
        volume.access().make_writable().unwrap();
        std::fs::create_dir_all(volume.dir().join("certs")).unwrap();
        std::fs::write(volume.dir().join("certs/host.pem"), mine.certificate_pem()).unwrap();
        std::fs::write(volume.dir().join("certs/host.key"), key.key_pem()).unwrap();
        volume.access().make_read_only().unwrap();
        volume.close().unwrap();
    };
    write_host_state(
        run.path(),
        &HostState {
            boot: BootReport::new(ConfigProvenance::Found {
                device: device.path().display().to_string(),
                store: StoreKind::Directory,
                generation: None,
                origin: ConfigOrigin::Current,
            }),
            virtualization: Virtualization::Tcg,
        },
    )
    .unwrap();
    let proc = run.path().join("proc");
    std::fs::create_dir_all(proc.join("sys/kernel")).unwrap();
    std::fs::write(proc.join("sys/kernel/hostname"), "setuphost\n").unwrap();
    let daemon = HostDaemon {
        run_dir: run.path().to_owned(),
        roots: mfv_probe::SystemRoots {
            sysfs: run.path().join("sys"),
            proc,
            dev: run.path().join("dev"),
        },
        init: DetachedInit,
    };

    // The key is another certificate's: the host's own stays, and the console says why.
    put(&other);
    let lines = daemon.prepare_web(None);
    assert!(
        lines.iter().any(|line| line.starts_with(
            "web.tls_cert and web.tls_key cannot be used, so the web server presents the \
             host's own certificate: "
        ) && line.contains("it is not the key of the certificate")),
        "{lines:?}"
    );
    assert_eq!(WebIdentity::read(&published).unwrap(), own);

    put(&mine);
    let lines = daemon.prepare_web(None);
    assert!(
        lines.iter().any(|line| line.ends_with(&format!(
            "SHA-256 {} (web.tls_cert certs/host.pem and its web.tls_key)",
            mine.fingerprint()
        ))),
        "{lines:?}"
    );
    assert_eq!(WebIdentity::read(&published).unwrap(), mine);
}

#[test]
fn the_auth_database_in_use_comes_from_the_read_only_volume_and_goes_back_to_it() {
    use mfv_host::auth::live;
    let device = LoopDevice::blank(32 << 20).unwrap();
    let (run, _) = run_dir();
    let published = run.path().join(web_identity::RUN_SUBDIR);
    save(
        run.path(),
        &published,
        &request(device.path(), format, CONFIG),
    )
    .unwrap();

    // The volume is mounted read-only, as the host daemon finds it at start.
    let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
    let config = load(volume.store(), volume.dir()).unwrap().config;
    live::publish(volume.dir(), &config.auth, run.path()).unwrap();
    volume.close().unwrap();
    let settings = live::settings(run.path()).unwrap().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = live::fingerprint(run.path());
    runtime.block_on(async {
        let authenticator = settings.open(MissingDatabase::Refuse).await.unwrap();
        let ok = authenticator
            .login("alice", PASSWORD, None, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await;
        assert!(ok.is_ok());
        let record = mfv_auth::UserRecord {
            username: mfv_auth::Username::new("bob").unwrap(),
            display_name: String::new(),
            role: mfv_auth::Role::Viewer,
            disabled: false,
            account_id: None,
        };
        authenticator
            .add_user(
                &mfv_auth::Actor::Local,
                &record,
                &Password::new("bob's long password").unwrap(),
            )
            .await
            .unwrap();
    });
    assert_ne!(live::fingerprint(run.path()), before);

    let volume = StoreVolume::on_device(device.path(), run.path()).unwrap();
    let access = volume.access();
    access.make_writable().unwrap();
    assert!(live::write_back(run.path(), volume.dir()).unwrap());
    access.make_read_only().unwrap();
    volume.close().unwrap();
    assert!(logs_in(
        device.path(),
        run.path(),
        "bob",
        "bob's long password"
    ));
}
