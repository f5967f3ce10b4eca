//! Discovery logic on fixture trees (sysfs + image-file device nodes) with the recording
//! mounter: order, verdicts, waiting, rendering.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::scan::tests::{EXT4_UUID, Fixture, disk_with_partitions};
use super::*;
use crate::mount::{FakeEntry, FakeVolume, MountCall, RecordingMounter};
use crate::schema::parse_config;

const VALID: &str = "version = 1\n\n[host]\nhostname = \"vmhost1\"\n";
const INVALID: &str = "version = 1\n\n[host]\nhostname = \"-bad-\"\nfrobnicate = true\n";

struct Setup {
    fixture: Fixture,
    params: DiscoveryParams,
}

impl Setup {
    fn new(locator: Option<ConfigLocator>) -> Self {
        let fixture = Fixture::new();
        let params = DiscoveryParams {
            locator,
            wait: None,
            settle: None,
            settle_limit: DEFAULT_SETTLE_LIMIT,
            sysfs_root: fixture.sysfs(),
            dev_root: fixture.dev(),
            run_dir: fixture.root().join("run/mfv"),
            max_config_bytes: DEFAULT_MAX_CONFIG_BYTES,
            poll_interval: Duration::from_millis(20),
        };
        Setup { fixture, params }
    }

    fn dev(&self, name: &str) -> PathBuf {
        self.fixture.dev().join(name)
    }

    /// `sda1` as an ext4 volume (a fixture node and a sysfs entry).
    fn sda1(&self, label: &str) {
        self.fixture
            .entry("sda1", 8192, Some("DEVTYPE=partition\nPARTN=1\n"));
        self.fixture
            .formatted_node("sda1", "mkfs.ext4", &["-q", "-F", "-L", label]);
    }

    /// The report with every fixture path shown as if the dev root were `/dev`.
    fn render(&self, report: &DiscoveryReport) -> String {
        report
            .to_string()
            .replace(&format!("{}/", self.fixture.dev().display()), "/dev/")
    }

    /// No mount point is left in the run directory.
    fn assert_clean(&self, mounter: &RecordingMounter) {
        assert!(mounter.mounted().is_empty(), "{:?}", mounter.mounted());
        if let Ok(entries) = fs::read_dir(&self.params.run_dir) {
            assert_eq!(entries.count(), 0);
        }
    }
}

fn mounts(mounter: &RecordingMounter) -> Vec<(PathBuf, String)> {
    mounter
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            MountCall::Mount {
                device, fs_type, ..
            } => Some((device, fs_type)),
            MountCall::Unmount { .. } => None,
        })
        .collect()
}

#[test]
fn nothing_present_in_the_default_order() {
    let setup = Setup::new(None);
    let mounter = RecordingMounter::new();
    let report = discover(&setup.params, &mounter);
    assert_eq!(report.outcome, Discovery::NotFound);
    assert_eq!(report.passes, 1);
    assert!(mounter.calls().is_empty());
    assert_eq!(
        setup.render(&report),
        "config: no configuration found\n  \
         /dev/sda1: absent (no such device)\n  \
         LABEL=mfv-config: absent (no volume matches)\n  \
         /dev/fd0: absent (no such device)"
    );
}

#[test]
fn default_order_skips_sda1_without_config_and_takes_the_labelled_volume() {
    let setup = Setup::new(None);
    setup.sda1("data");
    disk_with_partitions(&setup.fixture);
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sda1"), FakeVolume::empty())
        .with_volume(setup.dev("vdb1"), FakeVolume::with_file("mfv.toml", VALID));
    let report = discover(&setup.params, &mounter);
    let Discovery::Found { config, source } = &report.outcome else {
        panic!("{report}");
    };
    assert_eq!(**config, parse_config(VALID).unwrap());
    assert_eq!(
        *source,
        ConfigSource {
            device: setup.dev("vdb1"),
            fs_type: "ext4".into(),
            label: Some("mfv-config".into()),
            uuid: Some(EXT4_UUID.into()),
            locator: ConfigLocator::Label("mfv-config".into()),
        }
    );
    assert_eq!(
        setup.render(&report),
        "config: using mfv.toml from /dev/vdb1 (ext4, LABEL=mfv-config)\n  \
         /dev/sda1 (ext4): skipped: no mfv.toml\n  \
         LABEL=mfv-config /dev/vdb1 (ext4): taken"
    );
    assert_eq!(
        mounts(&mounter),
        [
            (setup.dev("sda1"), "ext4".into()),
            (setup.dev("vdb1"), "ext4".into())
        ]
    );
    setup.assert_clean(&mounter);
}

#[test]
fn a_device_is_tried_once_and_vfat_labels_match_in_any_case() {
    let setup = Setup::new(None);
    setup.sda1("mfv-config");
    disk_with_partitions(&setup.fixture);
    setup.fixture.entry("fd0", 2880, None);
    setup
        .fixture
        .formatted_node("fd0", "mkfs.vfat", &["-n", "FLOPPY"]);
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sda1"), FakeVolume::empty())
        .with_volume(setup.dev("vdb1"), FakeVolume::Fails(22))
        .with_volume(setup.dev("vdb2"), FakeVolume::empty())
        .with_volume(setup.dev("fd0"), FakeVolume::empty());
    let report = discover(&setup.params, &mounter);
    assert_eq!(report.outcome, Discovery::NotFound);
    let run_dir = format!("{}/", setup.params.run_dir.display());
    let rendered = setup.render(&report);
    let rendered = rendered
        .lines()
        .map(|line| match line.find(&run_dir) {
            Some(at) => format!("{}RUN/...{}", &line[..at], &line[at + run_dir.len() + 20..]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        rendered,
        "config: no configuration found\n  \
         /dev/sda1 (ext4): skipped: no mfv.toml\n  \
         LABEL=mfv-config /dev/sda1 (ext4): skipped: already tried above\n  \
         LABEL=mfv-config /dev/vdb1 (ext4): skipped: not mountable: cannot mount /dev/vdb1 (ext4) \
         read-only on RUN/...: Invalid argument (os error 22)\n  \
         LABEL=mfv-config /dev/vdb2 (vfat): skipped: no mfv.toml\n  \
         /dev/fd0 (vfat): skipped: no mfv.toml"
    );
    // sda1 was mounted once.
    assert_eq!(mounts(&mounter).len(), 4);
    setup.assert_clean(&mounter);
}

#[test]
fn an_invalid_config_is_reported_and_a_later_valid_one_wins() {
    let setup = Setup::new(None);
    setup.sda1("data");
    disk_with_partitions(&setup.fixture);
    let mounter = RecordingMounter::new()
        .with_volume(
            setup.dev("sda1"),
            FakeVolume::with_file("mfv.toml", INVALID),
        )
        .with_volume(setup.dev("vdb1"), FakeVolume::with_file("mfv.toml", VALID));
    let report = discover(&setup.params, &mounter);
    assert!(
        matches!(&report.outcome, Discovery::Found { source, .. } if source.device == setup.dev("vdb1")),
        "{report}"
    );
    let errors = parse_config(INVALID).unwrap_err();
    assert_eq!(
        report.candidates[0].verdict,
        Verdict::Invalid {
            errors: errors.clone()
        }
    );
    let mut expected = format!(
        "config: using mfv.toml from /dev/vdb1 (ext4, LABEL=mfv-config)\n  \
         /dev/sda1 (ext4): invalid ({} errors)",
        errors.len()
    );
    append_errors(&mut expected, "mfv.toml", &errors);
    expected.push_str("\n  LABEL=mfv-config /dev/vdb1 (ext4): taken");
    assert_eq!(setup.render(&report), expected);
}

#[test]
fn invalid_alone_is_the_outcome_with_every_error() {
    let setup = Setup::new(Some(ConfigLocator::Uuid("1234-abcd".into())));
    disk_with_partitions(&setup.fixture);
    let mounter = RecordingMounter::new().with_volume(
        setup.dev("vdb2"),
        FakeVolume::with_file("mfv.toml", INVALID),
    );
    let report = discover(&setup.params, &mounter);
    let errors = parse_config(INVALID).unwrap_err();
    assert!(errors.len() >= 2, "{errors}");
    let Discovery::Invalid {
        source,
        errors: got,
    } = &report.outcome
    else {
        panic!("{report}");
    };
    assert_eq!(*got, errors);
    assert_eq!(source.device, setup.dev("vdb2"));
    assert_eq!(source.uuid.as_deref(), Some("1234-ABCD"));
    let header = setup.render(&report).lines().next().unwrap().to_owned();
    assert_eq!(
        header,
        format!(
            "config: mfv.toml on /dev/vdb2 (vfat, UUID=1234-abcd) is invalid ({} errors)",
            errors.len()
        )
    );
    assert_eq!(report.to_string().lines().count(), 2 + errors.len());
}

#[test]
fn locators_replace_the_default_order() {
    for (locator, device) in [
        (ConfigLocator::Label("MFV-CONFIG".into()), "vdb2"),
        (ConfigLocator::Uuid(EXT4_UUID.to_uppercase()), "vdb1"),
        (ConfigLocator::PartLabel("config".into()), "vdb1"),
        (ConfigLocator::Device("/dev/vdb2".into()), "vdb2"),
    ] {
        let setup = Setup::new(Some(locator.clone()));
        setup.sda1("mfv-config");
        disk_with_partitions(&setup.fixture);
        let mut mounter = RecordingMounter::new();
        for name in ["sda1", "vdb1", "vdb2"] {
            mounter =
                mounter.with_volume(setup.dev(name), FakeVolume::with_file("mfv.toml", VALID));
        }
        let report = discover(&setup.params, &mounter);
        let Discovery::Found { source, .. } = &report.outcome else {
            panic!("{locator}: {report}");
        };
        assert_eq!(source.device, setup.dev(device), "{locator}");
        assert_eq!(source.locator, locator);
        assert_eq!(report.candidates.len(), 1, "{report}");
        assert_eq!(report.requested, Some(locator));
        assert_eq!(mounts(&mounter).len(), 1);
    }
}

#[test]
fn a_partition_label_is_case_sensitive_and_a_non_fat_label_is_exact() {
    for locator in [
        ConfigLocator::PartLabel("Config".into()),
        ConfigLocator::Label("MFV-CONFIG-X".into()),
        ConfigLocator::Uuid("0000-0000".into()),
    ] {
        let setup = Setup::new(Some(locator.clone()));
        disk_with_partitions(&setup.fixture);
        let report = discover(&setup.params, &RecordingMounter::new());
        assert_eq!(
            setup.render(&report),
            format!("config: no configuration found\n  {locator}: absent (no volume matches)")
        );
    }
}

#[test]
fn none_skips_discovery() {
    let setup = Setup::new(Some(ConfigLocator::Disabled));
    setup.sda1("mfv-config");
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sda1"), FakeVolume::with_file("mfv.toml", VALID));
    let report = discover(&setup.params, &mounter);
    assert_eq!(report.outcome, Discovery::NotFound);
    assert!(report.candidates.is_empty());
    assert_eq!(report.passes, 0);
    assert!(mounter.calls().is_empty());
    assert_eq!(
        report.to_string(),
        "config: discovery skipped (mfv.config=none)"
    );
}

#[test]
fn every_way_a_volume_can_be_skipped() {
    let setup = Setup::new(None);
    let limit = 64;
    let mut params = setup.params.clone();
    params.max_config_bytes = limit;
    params.locator = Some(ConfigLocator::Label("cfg".into()));
    let mut mounter = RecordingMounter::new();
    let volumes: [(&str, FakeVolume); 6] = [
        ("vda", FakeVolume::empty()),
        (
            "vdb",
            FakeVolume::Entries(BTreeMap::from([("mfv.toml".into(), FakeEntry::Dir)])),
        ),
        (
            "vdc",
            FakeVolume::Entries(BTreeMap::from([(
                "mfv.toml".into(),
                FakeEntry::Symlink("/etc/passwd".into()),
            )])),
        ),
        ("vdd", FakeVolume::with_file("mfv.toml", vec![b'#'; 65])),
        (
            "vde",
            FakeVolume::with_file("mfv.toml", b"version = 1\n\xff\xfe"),
        ),
        ("vdf", FakeVolume::with_file("mfv.toml", vec![b'#'; 64])),
    ];
    for (name, volume) in volumes {
        setup.fixture.entry(name, 8192, None);
        setup
            .fixture
            .formatted_node(name, "mkfs.vfat", &["-n", "CFG"]);
        mounter = mounter.with_volume(setup.dev(name), volume);
    }
    // Labelled by name only: no file system, so never mounted.
    setup.fixture.entry("vdg", 2048, None);
    setup.fixture.blank_node("vdg");
    let report = discover(&params, &mounter);
    let verdicts: Vec<String> = report
        .candidates
        .iter()
        .map(|candidate| candidate.verdict.to_string())
        .collect();
    let binary = parse_config_bytes(b"version = 1\n\xff\xfe").unwrap_err();
    let comment_only = parse_config_bytes(&[b'#'; 64]).unwrap_err();
    assert_eq!(
        verdicts,
        [
            "skipped: no mfv.toml".to_owned(),
            "skipped: mfv.toml is not a regular file".to_owned(),
            "skipped: mfv.toml is a symbolic link".to_owned(),
            "skipped: mfv.toml too large (65 bytes, limit 64)".to_owned(),
            format!("invalid ({})", count(&binary)),
            format!("invalid ({})", count(&comment_only)),
        ]
    );
    // The first invalid candidate is the outcome.
    assert!(
        matches!(&report.outcome, Discovery::Invalid { source, errors } if source.device == setup.dev("vde") && *errors == binary)
    );
    assert_eq!(mounts(&mounter).len(), 6);
    setup.assert_clean(&mounter);
}

/// Appends the lines that list `errors` of the file `name` under a candidate.
fn append_errors(expected: &mut String, name: &str, errors: &ConfigErrors) {
    for error in errors.errors() {
        expected.push_str(&format!("\n    {name}:{error}"));
    }
}

fn count(errors: &ConfigErrors) -> String {
    match errors.len() {
        1 => "1 error".into(),
        n => format!("{n} errors"),
    }
}

#[test]
fn unprobeable_and_empty_devices() {
    let setup = Setup::new(Some(ConfigLocator::Device("/dev/vdx".into())));
    setup.fixture.blank_node("vdx");
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.candidates[0].verdict, Verdict::NoFileSystem);
    assert_eq!(
        setup.render(&report),
        "config: no configuration found\n  /dev/vdx: skipped: no file system"
    );

    let mut params = setup.params.clone();
    params.locator = Some(ConfigLocator::Device("/dev/vdy".into()));
    fs::create_dir(setup.dev("vdy")).unwrap();
    let report = discover(&params, &RecordingMounter::new());
    let Verdict::NotProbeable { error } = &report.candidates[0].verdict else {
        panic!("{report}");
    };
    assert!(
        error.starts_with(&format!(
            "libblkid cannot probe {}: ",
            setup.dev("vdy").display()
        )),
        "{error}"
    );
}

#[test]
fn a_device_outside_dev_is_used_as_given() {
    let setup = Setup::new(None);
    let image = setup
        .fixture
        .formatted_node("../image.vfat", "mkfs.vfat", &["-n", "X"]);
    let image = image.canonicalize().unwrap();
    let mut params = setup.params.clone();
    params.locator = Some(ConfigLocator::Device(image.clone()));
    assert_eq!(params.device_path(&image), image);
    assert_eq!(
        params.device_path(Path::new("/dev/disk/by-label/x")),
        setup.dev("disk/by-label/x")
    );
    let mounter =
        RecordingMounter::new().with_volume(&image, FakeVolume::with_file("mfv.toml", VALID));
    let report = discover(&params, &mounter);
    assert!(
        matches!(report.outcome, Discovery::Found { .. }),
        "{report}"
    );
    assert_eq!(
        report.to_string(),
        format!(
            "config: using mfv.toml from {0} (vfat)\n  {0} (vfat): taken",
            image.display()
        )
    );
}

#[test]
fn a_failed_unmount_is_reported_and_the_verdict_stands() {
    let setup = Setup::new(Some(ConfigLocator::Device("/dev/sda1".into())));
    setup.sda1("x");
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sda1"), FakeVolume::with_file("mfv.toml", VALID))
        .with_failing_unmount();
    let report = discover(&setup.params, &mounter);
    assert!(matches!(report.outcome, Discovery::Found { .. }));
    let line = report.to_string().lines().nth(1).unwrap().to_owned();
    assert!(
        line.starts_with(&format!(
            "  /dev/sda1 (ext4): taken; cannot unmount {}/config-volume-",
            setup.params.run_dir.display()
        )) && line.ends_with(": Device or resource busy (os error 16)"),
        "{line}"
    );
}

/// Runs discovery while `sdb1`, a vfat volume labelled `MFV-CONFIG` with a valid `mfv.toml`,
/// appears after `delay`; `appeared` runs once it is there.
fn discover_while_sdb1_appears(
    setup: &Setup,
    delay: Duration,
    appeared: impl FnOnce() + Send,
) -> DiscoveryReport {
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sdb1"), FakeVolume::with_file("mfv.toml", VALID));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(delay);
            // The node first, then the sysfs entry, as the kernel and devtmpfs do it.
            setup
                .fixture
                .formatted_node("sdb1", "mkfs.vfat", &["-n", "MFV-CONFIG"]);
            setup.fixture.entry("sdb1", 8192, Some("PARTN=1\n"));
            appeared();
        });
        discover(&setup.params, &mounter)
    })
}

#[test]
fn waits_for_a_late_device() {
    let mut setup = Setup::new(Some(ConfigLocator::Label("mfv-config".into())));
    setup.params.wait = Some(Duration::from_secs(10));
    let report = discover_while_sdb1_appears(&setup, Duration::from_millis(200), || {});
    assert!(
        matches!(report.outcome, Discovery::Found { .. }),
        "{report}"
    );
    assert!(report.passes > 1, "{report}");
    assert!(report.elapsed >= Duration::from_millis(200));
    assert!(report.elapsed < Duration::from_secs(5));
    let rendered = setup.render(&report);
    let last = rendered.lines().last().unwrap();
    assert!(
        last.starts_with("  waited ") && last.ends_with(" passes)"),
        "{rendered}"
    );
}

#[test]
fn waiting_ends_at_the_deadline_and_only_for_absent_devices() {
    let mut setup = Setup::new(Some(ConfigLocator::Device("/dev/sdb1".into())));
    setup.params.wait = Some(Duration::from_millis(150));
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.outcome, Discovery::NotFound);
    assert!(report.passes >= 2, "{report}");
    assert!(report.elapsed >= Duration::from_millis(150));

    // Present but without a config: waiting longer would not change anything.
    setup.params.wait = Some(Duration::from_secs(10));
    setup.params.locator = Some(ConfigLocator::Device("/dev/sda1".into()));
    setup.sda1("x");
    let mounter = RecordingMounter::new().with_volume(setup.dev("sda1"), FakeVolume::empty());
    let report = discover(&setup.params, &mounter);
    assert_eq!(report.passes, 1);
    assert!(report.elapsed < Duration::from_secs(5));
}

#[test]
fn without_a_wait_there_is_one_pass() {
    let setup = Setup::new(Some(ConfigLocator::Label("late".into())));
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.passes, 1);
    assert!(report.scan_issues.is_empty());
}

#[test]
fn scan_issues_are_reported() {
    let setup = Setup::new(Some(ConfigLocator::Label("x".into())));
    setup.fixture.entry("sdz", 8, None);
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(
        setup.render(&report),
        "config: no configuration found\n  \
         LABEL=x: absent (no volume matches)\n  \
         scan: cannot open /dev/sdz read-only: No such file or directory (os error 2)"
    );
}

#[test]
fn the_report_serializes_to_stable_json() {
    let setup = Setup::new(None);
    setup.sda1("data");
    disk_with_partitions(&setup.fixture);
    let mounter = RecordingMounter::new()
        .with_volume(
            setup.dev("sda1"),
            FakeVolume::with_file("mfv.toml", "version = 1\n"),
        )
        .with_volume(setup.dev("vdb1"), FakeVolume::with_file("mfv.toml", VALID));
    let report = discover(&setup.params, &mounter);
    let mut json = serde_json::to_value(&report).unwrap();
    assert!(json["elapsed_ms"].is_u64());
    json["elapsed_ms"] = serde_json::json!(0);
    let errors = parse_config("version = 1\n").unwrap_err();
    let error_json: Vec<serde_json::Value> = errors
        .errors()
        .iter()
        .map(|error| {
            serde_json::json!({
                "line": error.position.map(|p| p.line),
                "column": error.position.map(|p| p.column),
                "path": error.path,
                "message": error.message,
            })
        })
        .collect();
    assert_eq!(
        json,
        serde_json::json!({
            "outcome": {
                "result": "found",
                "config": serde_json::to_value(parse_config(VALID).unwrap()).unwrap(),
                "source": {
                    "device": setup.dev("vdb1"),
                    "fs_type": "ext4",
                    "label": "mfv-config",
                    "uuid": EXT4_UUID,
                    "locator": "LABEL=mfv-config",
                },
            },
            "requested": null,
            "candidates": [
                {
                    "locator": "/dev/sda1",
                    "device": setup.dev("sda1"),
                    "fs_type": "ext4",
                    "verdict": {"verdict": "invalid", "errors": error_json},
                    "unmount_error": null,
                },
                {
                    "locator": "LABEL=mfv-config",
                    "device": setup.dev("vdb1"),
                    "fs_type": "ext4",
                    "verdict": {"verdict": "taken"},
                    "unmount_error": null,
                },
            ],
            "scan_issues": [],
            "passes": 1,
            "elapsed_ms": 0,
            "settling": null,
        })
    );
    let absent = serde_json::to_value(Verdict::Absent {
        reason: Absence::NoMedium,
    })
    .unwrap();
    assert_eq!(
        absent,
        serde_json::json!({"verdict": "absent", "reason": "no_medium"})
    );
    let disabled = DiscoveryReport {
        outcome: Discovery::NotFound,
        requested: Some(ConfigLocator::Disabled),
        candidates: Vec::new(),
        scan_issues: Vec::new(),
        passes: 0,
        elapsed: Duration::ZERO,
        settling: None,
    };
    assert_eq!(
        serde_json::to_value(&disabled).unwrap()["requested"],
        serde_json::json!("none")
    );
    assert_eq!(
        serde_json::to_value(&disabled).unwrap()["outcome"],
        serde_json::json!({"result": "not_found"})
    );
}

#[test]
fn boot_options_give_system_paths() {
    let options = crate::cmdline::KernelCmdline::parse("mfv.config=LABEL=cfg mfv.config_wait=3")
        .boot_options();
    let params = DiscoveryParams::from_boot_options(&options);
    assert_eq!(params.locator, Some(ConfigLocator::Label("cfg".into())));
    assert_eq!(params.wait, Some(Duration::from_secs(3)));
    assert_eq!(params.sysfs_root, Path::new("/sys"));
    assert_eq!(params.dev_root, Path::new("/dev"));
    assert_eq!(params.run_dir, Path::new("/run/mfv"));
    assert_eq!(
        params.device_path(Path::new("/dev/sda1")),
        Path::new("/dev/sda1")
    );
}

#[test]
fn outcome_one_liners() {
    let source = ConfigSource {
        device: "/dev/sdb1".into(),
        fs_type: "vfat".into(),
        label: None,
        uuid: None,
        locator: ConfigLocator::Device("/dev/sdb1".into()),
    };
    let errors = parse_config("").unwrap_err();
    assert_eq!(
        Discovery::Found {
            config: Box::new(parse_config(VALID).unwrap()),
            source: source.clone()
        }
        .to_string(),
        "found on /dev/sdb1 (vfat)"
    );
    assert_eq!(
        Discovery::Invalid {
            source,
            errors: errors.clone()
        }
        .to_string(),
        format!("invalid on /dev/sdb1 (vfat) ({})", count(&errors))
    );
    assert_eq!(Discovery::NotFound.to_string(), "not found");
}

#[test]
fn a_block_device_of_size_zero_has_no_medium() {
    // Any block device node of this machine gives a real device number; the fixture sysfs
    // says what its size is.
    let Some(node) = fs::read_dir("/dev")
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            use std::os::unix::fs::FileTypeExt;
            // Not a floppy drive, whose medium is asked of the drive itself.
            fs::metadata(path).is_ok_and(|metadata| {
                metadata.file_type().is_block_device()
                    && nix::sys::stat::major(metadata.rdev()) != medium::FLOPPY_MAJOR
            })
        })
    else {
        panic!("no block device node in /dev");
    };
    let rdev = fs::metadata(&node).unwrap().rdev();
    let fixture = Fixture::new();
    let entry = fixture.sysfs().join(format!(
        "dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ));
    let has_no_medium = || medium::has_no_medium(&fixture.sysfs(), &node, rdev);
    assert!(!has_no_medium(), "no sysfs entry");
    fs::create_dir_all(&entry).unwrap();
    fs::write(entry.join("size"), "0\n").unwrap();
    assert!(has_no_medium());
    fs::write(entry.join("size"), "2880\n").unwrap();
    assert!(!has_no_medium());

    // Through discovery: the device is absent and waiting goes on.
    let mut params = Setup::new(Some(ConfigLocator::Device(node.clone()))).params;
    params.sysfs_root = fixture.sysfs();
    params.dev_root = PathBuf::from("/dev");
    fs::write(entry.join("size"), "0\n").unwrap();
    let report = discover(&params, &RecordingMounter::new());
    assert_eq!(
        report.candidates[0].verdict,
        Verdict::Absent {
            reason: Absence::NoMedium
        }
    );
    assert_eq!(
        report.to_string(),
        format!(
            "config: no configuration found\n  {}: absent (no medium)",
            node.display()
        )
    );
}

/// `body` as a store writes it: generation header, then the body.
fn stored(generation: u64, body: &str) -> Vec<u8> {
    let mut file = header::Header::for_body(generation, body.as_bytes())
        .to_line()
        .into_bytes();
    file.extend_from_slice(body.as_bytes());
    file
}

/// `stored` with its last `cut` bytes missing: a torn write.
fn torn(generation: u64, body: &str, cut: usize) -> Vec<u8> {
    let mut file = stored(generation, body);
    file.truncate(file.len() - cut);
    file
}

/// A volume with these files.
fn files(entries: &[(&str, FakeEntry)]) -> FakeVolume {
    FakeVolume::Entries(
        entries
            .iter()
            .map(|(name, entry)| ((*name).to_owned(), entry.clone()))
            .collect(),
    )
}

fn file(bytes: impl Into<Vec<u8>>) -> FakeEntry {
    FakeEntry::File(bytes.into())
}

/// Discovery of `sda1` (ext4) holding `volume`, with `limit` as the size limit.
fn discover_sda1(volume: FakeVolume, limit: u64) -> (Setup, DiscoveryReport) {
    let mut setup = Setup::new(Some(ConfigLocator::Device("/dev/sda1".into())));
    setup.params.max_config_bytes = limit;
    setup.sda1("cfg");
    let mounter = RecordingMounter::new().with_volume(setup.dev("sda1"), volume);
    let report = discover(&setup.params, &mounter);
    setup.assert_clean(&mounter);
    (setup, report)
}

const PREVIOUS: &str = "version = 1\n\n[host]\nhostname = \"last-good\"\n";

fn hostname(report: &DiscoveryReport) -> Option<&str> {
    match &report.outcome {
        Discovery::Found { config, .. } => Some(config.host.hostname.as_str()),
        _ => None,
    }
}

#[test]
fn a_verified_current_generation_is_taken() {
    let (setup, report) = discover_sda1(
        files(&[
            ("mfv.toml", file(stored(7, VALID))),
            ("mfv.toml.prev", file(torn(6, PREVIOUS, 1))),
        ]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(hostname(&report), Some("vmhost1"));
    assert_eq!(
        setup.render(&report),
        "config: using mfv.toml from /dev/sda1 (ext4)\n  /dev/sda1 (ext4): taken"
    );
}

#[test]
fn a_torn_current_generation_falls_back_to_the_last_known_good_one() {
    let (setup, report) = discover_sda1(
        files(&[
            ("mfv.toml", file(torn(8, VALID, 5))),
            ("mfv.toml.prev", file(stored(7, PREVIOUS))),
        ]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(hostname(&report), Some("last-good"));
    let length = VALID.len();
    assert_eq!(
        report.candidates[0].verdict,
        Verdict::TakenLastKnownGood {
            generation: Some(7),
            skipped: FileProblem::Corrupt {
                error: format!(
                    "corrupt: {} bytes where the generation header says {length} (torn write)",
                    length - 5
                ),
            },
        }
    );
    assert_eq!(
        setup.render(&report),
        format!(
            "config: using mfv.toml.prev (last-known-good, generation 7) from /dev/sda1 (ext4)\n  \
             /dev/sda1 (ext4): taken: mfv.toml.prev (last-known-good, generation 7); skipped: \
             mfv.toml corrupt: {} bytes where the generation header says {length} (torn write)",
            length - 5
        )
    );
}

#[test]
fn a_checksum_mismatch_without_a_previous_generation_is_never_used() {
    // The body was edited but the header kept: valid TOML, yet not what was saved.
    let mut edited = stored(3, VALID);
    let at = edited.len() - 3;
    edited[at] = b'2';
    let (setup, report) = discover_sda1(
        files(&[("mfv.toml", file(edited))]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(report.outcome, Discovery::NotFound);
    let rendered = setup.render(&report);
    assert!(
        rendered.starts_with(
            "config: no configuration found\n  /dev/sda1 (ext4): skipped: mfv.toml corrupt: \
             sha256 "
        ) && rendered.ends_with("(after editing by hand, delete the `# mfv-store` first line)"),
        "{rendered}"
    );
    assert!(matches!(
        report.candidates[0].verdict,
        Verdict::Corrupt { .. }
    ));
}

#[test]
fn an_invalid_hand_written_current_file_falls_back_and_its_errors_are_shown() {
    let (setup, report) = discover_sda1(
        files(&[
            ("mfv.toml", file(INVALID)),
            ("mfv.toml.prev", file(stored(4, PREVIOUS))),
        ]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(hostname(&report), Some("last-good"));
    let errors = parse_config(INVALID).unwrap_err();
    let mut expected = format!(
        "config: using mfv.toml.prev (last-known-good, generation 4) from /dev/sda1 (ext4)\n  \
         /dev/sda1 (ext4): taken: mfv.toml.prev (last-known-good, generation 4); skipped: \
         mfv.toml invalid ({})",
        count(&errors)
    );
    append_errors(&mut expected, "mfv.toml", &errors);
    assert_eq!(setup.render(&report), expected);
}

#[test]
fn error_positions_count_the_header_line() {
    let (_, report) = discover_sda1(
        files(&[("mfv.toml", file(stored(2, INVALID)))]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    let Discovery::Invalid { errors, .. } = &report.outcome else {
        panic!("{report}");
    };
    let in_body = parse_config(INVALID).unwrap_err();
    let lines = |errors: &ConfigErrors| -> Vec<Option<usize>> {
        errors
            .errors()
            .iter()
            .map(|error| error.position.map(|position| position.line))
            .collect()
    };
    let shifted: Vec<Option<usize>> = lines(&in_body)
        .into_iter()
        .map(|line| line.map(|line| line + 1))
        .collect();
    assert_eq!(lines(errors), shifted);
}

#[test]
fn a_missing_current_file_falls_back_like_the_store() {
    let (setup, report) = discover_sda1(
        files(&[("mfv.toml.prev", file(PREVIOUS))]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(hostname(&report), Some("last-good"));
    assert_eq!(
        setup.render(&report),
        "config: using mfv.toml.prev (last-known-good) from /dev/sda1 (ext4)\n  \
         /dev/sda1 (ext4): taken: mfv.toml.prev (last-known-good); skipped: no mfv.toml"
    );
}

#[test]
fn when_neither_generation_is_usable_both_are_reported() {
    // Invalid current, torn previous: the outcome is the current file's errors.
    let (setup, report) = discover_sda1(
        files(&[
            ("mfv.toml", file(INVALID)),
            ("mfv.toml.prev", file(torn(5, PREVIOUS, 2))),
        ]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    let errors = parse_config(INVALID).unwrap_err();
    assert!(
        matches!(&report.outcome, Discovery::Invalid { errors: got, .. } if *got == errors),
        "{report}"
    );
    let rendered = setup.render(&report);
    let mut lines = rendered.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "config: mfv.toml on /dev/sda1 (ext4) is invalid ({})",
                count(&errors)
            )
            .as_str()
        )
    );
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "  /dev/sda1 (ext4): skipped: mfv.toml invalid ({}); mfv.toml.prev corrupt: \
                 {} bytes where the generation header says {} (torn write)",
                count(&errors),
                PREVIOUS.len() - 2,
                PREVIOUS.len()
            )
            .as_str()
        )
    );
    assert_eq!(lines.count(), errors.len());

    // Torn current, invalid previous (its errors follow, named by file), nothing found.
    let (setup, report) = discover_sda1(
        files(&[
            ("mfv.toml", file(torn(6, VALID, 1))),
            ("mfv.toml.prev", file(stored(5, "version = 1\n"))),
        ]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(report.outcome, Discovery::NotFound);
    let previous_errors = parse_config("version = 1\n").unwrap_err();
    let mut expected = format!(
        "config: no configuration found\n  /dev/sda1 (ext4): skipped: mfv.toml corrupt: {} \
         bytes where the generation header says {} (torn write); mfv.toml.prev invalid ({})",
        VALID.len() - 1,
        VALID.len(),
        count(&previous_errors)
    );
    append_errors(&mut expected, "mfv.toml.prev", &previous_errors);
    assert_eq!(setup.render(&report), expected);
}

#[test]
fn the_previous_file_is_read_with_the_same_protections() {
    let verdict_with_previous = |previous: FakeEntry, limit: u64| {
        let (_, report) = discover_sda1(
            files(&[
                ("mfv.toml", file(torn(2, VALID, 1))),
                ("mfv.toml.prev", previous),
            ]),
            limit,
        );
        assert_eq!(report.outcome, Discovery::NotFound, "{report}");
        report.candidates[0].verdict.to_string()
    };
    let corrupt = format!(
        "skipped: mfv.toml corrupt: {} bytes where the generation header says {} (torn write)",
        VALID.len() - 1,
        VALID.len()
    );
    assert_eq!(
        verdict_with_previous(FakeEntry::Symlink("/etc/passwd".into()), 4096),
        format!("{corrupt}; mfv.toml.prev is a symbolic link")
    );
    assert_eq!(
        verdict_with_previous(FakeEntry::Dir, 4096),
        format!("{corrupt}; mfv.toml.prev is not a regular file")
    );
    // The limit is larger than the torn current file but smaller than the previous one.
    let previous = stored(1, &format!("{PREVIOUS}# {}\n", "x".repeat(200)));
    let size = previous.len();
    assert_eq!(
        verdict_with_previous(file(previous), 150),
        format!("{corrupt}; mfv.toml.prev too large ({size} bytes, limit 150)")
    );
}

#[test]
fn the_previous_file_is_read_only_when_the_current_one_is_unusable() {
    // A usable current file: the previous one, a directory, is never looked at.
    let (_, report) = discover_sda1(
        files(&[("mfv.toml", file(VALID)), ("mfv.toml.prev", FakeEntry::Dir)]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(report.candidates[0].verdict, Verdict::Taken);
    // Unusable current, missing previous: the verdicts of old.
    let (_, report) = discover_sda1(
        files(&[("mfv.toml", FakeEntry::Dir)]),
        DEFAULT_MAX_CONFIG_BYTES,
    );
    assert_eq!(
        report.candidates[0].verdict.to_string(),
        "skipped: mfv.toml is not a regular file"
    );
}

#[test]
fn new_verdicts_serialize_to_stable_json() {
    let errors = parse_config("version = 1\n").unwrap_err();
    assert_eq!(
        serde_json::to_value(Verdict::TakenLastKnownGood {
            generation: Some(3),
            skipped: FileProblem::Corrupt {
                error: "corrupt: malformed generation header".into()
            },
        })
        .unwrap(),
        serde_json::json!({
            "verdict": "taken_last_known_good",
            "generation": 3,
            "skipped": {"problem": "corrupt", "error": "corrupt: malformed generation header"},
        })
    );
    let json = serde_json::to_value(Verdict::Unusable {
        current: FileProblem::Missing,
        previous: FileProblem::Invalid { errors },
    })
    .unwrap();
    assert_eq!(json["verdict"], "unusable");
    assert_eq!(json["current"], serde_json::json!({"problem": "missing"}));
    assert_eq!(json["previous"]["problem"], "invalid");
    assert_eq!(json["previous"]["errors"][0]["path"], "host");
    assert_eq!(
        serde_json::to_value(FileProblem::TooLarge { size: 9, limit: 8 }).unwrap(),
        serde_json::json!({"problem": "too_large", "size": 9, "limit": 8})
    );
    assert_eq!(
        serde_json::to_value(SettleWait {
            reason: "x".into(),
            timed_out: true
        })
        .unwrap(),
        serde_json::json!({"reason": "x", "timed_out": true})
    );
}

/// A settle check that answers from `answers` in turn (the last one again when they run
/// out) and counts how often it was asked.
fn settle_check(answers: &[Option<&str>]) -> (SettleCheck, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let answers: Vec<Option<String>> = answers.iter().map(|a| a.map(str::to_owned)).collect();
    let counter = Arc::clone(&asked);
    let check = SettleCheck::new(move || {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        answers[call.min(answers.len() - 1)].clone()
    });
    (check, asked)
}

fn asked(counter: &Arc<std::sync::atomic::AtomicUsize>) -> usize {
    counter.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn settled_storage_means_one_pass() {
    let mut setup = Setup::new(None);
    let (check, counter) = settle_check(&[None]);
    setup.params.settle = Some(check);
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.passes, 1);
    assert_eq!(asked(&counter), 1);
    assert_eq!(report.settling, None);
}

#[test]
fn discovery_waits_while_storage_settles_and_one_pass_after() {
    let mut setup = Setup::new(None);
    let reason = "USB interface 1-1:1.0 (usb-storage): SCSI host host0 not scanned yet";
    let (check, counter) = settle_check(&[Some(reason), Some(reason), None]);
    setup.params.settle = Some(check);
    let report = discover(&setup.params, &RecordingMounter::new());
    // Unsettled, unsettled, settled (one more pass), settled: done.
    assert_eq!(report.passes, 4, "{report}");
    assert_eq!(asked(&counter), 4);
    assert_eq!(
        report.settling,
        Some(SettleWait {
            reason: reason.into(),
            timed_out: false
        })
    );
    let rendered = setup.render(&report);
    let last = rendered.lines().last().unwrap();
    assert!(
        last.starts_with("  waited ")
            && last.ends_with(&format!(
                " s for devices (4 passes): storage was settling: {reason}"
            )),
        "{rendered}"
    );
}

#[test]
fn a_stick_that_appears_while_storage_settles_is_found() {
    let mut setup = Setup::new(None);
    let appeared = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&appeared);
    setup.params.settle = Some(SettleCheck::new(move || {
        (!seen.load(std::sync::atomic::Ordering::SeqCst)).then(|| "scan pending".to_owned())
    }));
    let report = discover_while_sdb1_appears(&setup, Duration::from_millis(150), || {
        appeared.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert_eq!(hostname(&report), Some("vmhost1"), "{report}");
    assert!(report.passes > 1);
    assert_eq!(
        report.settling,
        Some(SettleWait {
            reason: "scan pending".into(),
            timed_out: false
        })
    );
}

#[test]
fn waiting_for_storage_is_bounded() {
    let mut setup = Setup::new(None);
    let (check, _) = settle_check(&[Some("SCSI device 2:0:0:0 has no block device yet")]);
    setup.params.settle = Some(check);
    setup.params.settle_limit = Duration::from_millis(120);
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.outcome, Discovery::NotFound);
    assert!(report.passes >= 2, "{report}");
    assert!(report.elapsed >= Duration::from_millis(120));
    assert!(report.elapsed < Duration::from_secs(5));
    let rendered = setup.render(&report);
    assert!(
        rendered.lines().last().unwrap().ends_with(
            " passes): gave up, storage still settling: SCSI device 2:0:0:0 has no block \
             device yet"
        ),
        "{rendered}"
    );
    assert_eq!(DEFAULT_SETTLE_LIMIT, Duration::from_secs(10));
    assert_eq!(
        DiscoveryParams::new(None, None).settle_limit,
        DEFAULT_SETTLE_LIMIT
    );
}

#[test]
fn config_wait_overrides_the_settle_check() {
    let mut setup = Setup::new(None);
    let (check, counter) = settle_check(&[Some("still settling")]);
    setup.params.settle = Some(check);
    setup.params.wait = Some(Duration::ZERO);
    let report = discover(&setup.params, &RecordingMounter::new());
    assert_eq!(report.passes, 1);
    assert_eq!(asked(&counter), 0);
    setup.params.wait = Some(Duration::from_millis(100));
    let report = discover(&setup.params, &RecordingMounter::new());
    assert!(report.passes >= 2);
    assert_eq!(asked(&counter), 0);
    assert_eq!(report.settling, None);
    assert!(
        setup
            .render(&report)
            .lines()
            .last()
            .unwrap()
            .ends_with(" passes)")
    );
}

#[test]
fn settle_checks_compare_by_identity() {
    let (check, _) = settle_check(&[None]);
    let (other, _) = settle_check(&[None]);
    assert_eq!(check, check.clone());
    assert_ne!(check, other);
    assert_eq!(format!("{check:?}"), "SettleCheck(..)");
}
