//! Discovery logic on fixture trees (sysfs + image-file device nodes) with the recording
//! mounter: order, verdicts, waiting, rendering.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
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
    for error in errors.errors() {
        expected.push_str(&format!("\n    mfv.toml:{error}"));
    }
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

#[test]
fn waits_for_a_late_device() {
    let mut setup = Setup::new(Some(ConfigLocator::Label("mfv-config".into())));
    setup.params.wait = Some(Duration::from_secs(10));
    let mounter = RecordingMounter::new()
        .with_volume(setup.dev("sdb1"), FakeVolume::with_file("mfv.toml", VALID));
    let report = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            // The node first, then the sysfs entry, as the kernel and devtmpfs do it.
            setup
                .fixture
                .formatted_node("sdb1", "mkfs.vfat", &["-n", "MFV-CONFIG"]);
            setup.fixture.entry("sdb1", 8192, Some("PARTN=1\n"));
        });
        discover(&setup.params, &mounter)
    });
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
            fs::metadata(path).is_ok_and(|metadata| metadata.file_type().is_block_device())
        })
    else {
        panic!("no block device node in /dev");
    };
    let metadata = fs::metadata(&node).unwrap();
    let fixture = Fixture::new();
    let rdev = std::os::unix::fs::MetadataExt::rdev(&metadata);
    let entry = fixture.sysfs().join(format!(
        "dev/block/{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ));
    assert!(
        !has_no_medium(&fixture.sysfs(), &metadata),
        "no sysfs entry"
    );
    fs::create_dir_all(&entry).unwrap();
    fs::write(entry.join("size"), "0\n").unwrap();
    assert!(has_no_medium(&fixture.sysfs(), &metadata));
    fs::write(entry.join("size"), "2880\n").unwrap();
    assert!(!has_no_medium(&fixture.sysfs(), &metadata));
    // A regular file is never "no medium".
    let file = fixture.blank_node("file");
    assert!(!has_no_medium(
        &fixture.sysfs(),
        &fs::metadata(file).unwrap()
    ));

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
