//! Module resolution, planning and loading against fixture module directories.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use tempfile::TempDir;

use super::*;

const ALIASES: &str = "\
# Aliases extracted from modules themselves.
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00008086d0000100Fsv*sd*bc*sc*i* e1000
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* uas
alias usb:v0D96p5200d00[1-9]*dc*dsc*dp*ic*isc*ip*in* usb_storage
alias acpi*:PNP0700:* floppy
alias cpu:type:x86,ven*fam*mod*:feature:*0081* kvm_intel
alias scsi:t-0x00* sd_mod
alias crypto-crc32c crc32c_intel
alias crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias pci:v0000BEEFd*sv*sd*bc*sc*i* stale_driver
alias pci:v00001234d*sv*sd*bc*sc*i* e1000 extra
alias usb:v1234p[0-9*
";

const DEPENDENCIES: &str = "\
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/common/usb-common.ko:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.zst kernel/fs/mbcache.ko.gz kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko.zst:
kernel/fs/mbcache.ko.gz:
kernel/fs/jbd2/jbd2.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/block/floppy.ko:
kernel/arch/x86/kvm/kvm-intel.ko: kernel/arch/x86/kvm/kvm.ko
kernel/arch/x86/kvm/kvm.ko:
kernel/drivers/char/ipmi/ipmi_msghandler.ko:
kernel/drivers/char/ipmi/ipmi_devintf.ko: kernel/drivers/char/ipmi/ipmi_msghandler.ko
kernel/drivers/broken/needs_ghost.ko: kernel/drivers/broken/ghost.ko
kernel/drivers/broken/pulls_stale.ko:
this line has no colon
kernel/drivers/README: kernel/drivers/virtio/virtio.ko
kernel/drivers/odd.ko: kernel/drivers/notes.txt
kernel/drivers/net/ethernet/intel/e1000/e1000.ko: kernel/drivers/virtio/virtio.ko
";

const BUILTIN: &str = "\
kernel/crypto/md5.ko
kernel/drivers/input/serio/i8042.ko
kernel/drivers/usb/host/xhci-hcd.ko
not a module path
";

const SOFT_DEPENDENCIES: &str = "\
# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c
softdep cifs gcm
softdep ipmi_msghandler post: ipmi_devintf
softdep e1000 pre: md5 no-such-alias post: stale-driver
softdep pulls_stale pre: stale_driver
softdep
softdep pre: crc32c
";

const BUILTIN_MODINFO: &[u8] =
    b"md5.alias=crypto-md5\0md5.alias=md5\0md5.license=GPL\0i8042.alias=pnp:dPNP0303*\0noequals\0";

/// `b"\x7fELF" + b"module text " * 40` compressed as the kernel build does:
/// `xz --check=crc32 --lzma2=dict=1MiB`.
const KERNEL_STYLE_XZ: &[u8] = &[
    0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x01, 0x69, 0x22, 0xde, 0x36, 0x02, 0x00, 0x21, 0x01,
    0x10, 0x00, 0x00, 0x00, 0xa8, 0x70, 0x8e, 0x86, 0xe0, 0x01, 0xe3, 0x00, 0x19, 0x5d, 0x00, 0x3f,
    0x91, 0x45, 0x84, 0x6c, 0x44, 0x23, 0x0a, 0xf1, 0x38, 0x2d, 0x8d, 0xd5, 0xf8, 0x6d, 0x1c, 0xbb,
    0x4c, 0x2c, 0x86, 0xe0, 0x9a, 0xe1, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x2e, 0xa3, 0xd6,
    0x00, 0x01, 0x31, 0xe4, 0x03, 0x00, 0x00, 0x00, 0x24, 0xce, 0x92, 0xc3, 0x3e, 0x30, 0x0d, 0x8b,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x59, 0x5a,
];

fn kernel_style_xz_contents() -> Vec<u8> {
    let mut bytes = b"\x7fELF".to_vec();
    bytes.extend_from_slice(&b"module text ".repeat(40));
    bytes
}

/// The contents the fixture gives the module file at `relative`.
fn module_bytes(relative: &str) -> Vec<u8> {
    format!("\x7fELF fixture module {relative}").into_bytes()
}

/// A modules directory with the index files above and every module file of modules.dep.
fn fixture() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("modules.alias"), ALIASES).unwrap();
    fs::write(root.join("modules.dep"), DEPENDENCIES).unwrap();
    fs::write(root.join("modules.builtin"), BUILTIN).unwrap();
    fs::write(root.join("modules.softdep"), SOFT_DEPENDENCIES).unwrap();
    fs::write(root.join("modules.builtin.modinfo"), BUILTIN_MODINFO).unwrap();
    for line in DEPENDENCIES.lines() {
        let Some((file, _)) = line.split_once(':') else {
            continue;
        };
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let plain = module_bytes(file);
        let contents = if file.ends_with(".xz") {
            KERNEL_STYLE_XZ.to_vec()
        } else if file.ends_with(".zst") {
            zstd::encode_all(&plain[..], 3).unwrap()
        } else if file.ends_with(".gz") {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&plain).unwrap();
            encoder.finish().unwrap()
        } else {
            plain
        };
        fs::write(path, contents).unwrap();
    }
    dir
}

fn index(dir: &TempDir) -> ModuleIndex {
    ModuleIndex::load(dir.path()).unwrap()
}

fn no_options() -> ModuleOptions {
    ModuleOptions::default()
}

fn options(parameters: &[(&str, Option<&str>)]) -> ModuleOptions {
    ModuleOptions::from_kernel_parameters(parameters.iter().copied())
}

fn names(modules: &[ModuleName]) -> Vec<&str> {
    modules.iter().map(ModuleName::as_str).collect()
}

fn check_resolve(index: &ModuleIndex, alias: &str, expected: &[&str]) {
    assert_eq!(
        names(&index.resolve(alias)),
        expected,
        "resolving {alias:?}"
    );
}

// ---- index files ----

#[test]
fn malformed_lines_are_issues_with_file_line_and_text() {
    let dir = fixture();
    let index = index(&dir);
    let issues: Vec<(String, usize, &str)> = index
        .issues()
        .iter()
        .map(|issue| {
            let file = issue
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, issue.line, issue.text.as_str())
        })
        .collect();
    let expected = [
        (
            "modules.alias",
            18,
            "alias pci:v00001234d*sv*sd*bc*sc*i* e1000 extra",
        ),
        ("modules.alias", 19, "alias usb:v1234p[0-9*"),
        ("modules.dep", 30, "this line has no colon"),
        (
            "modules.dep",
            31,
            "kernel/drivers/README: kernel/drivers/virtio/virtio.ko",
        ),
        (
            "modules.dep",
            32,
            "kernel/drivers/odd.ko: kernel/drivers/notes.txt",
        ),
        (
            "modules.dep",
            33,
            "kernel/drivers/net/ethernet/intel/e1000/e1000.ko: kernel/drivers/virtio/virtio.ko",
        ),
        ("modules.builtin", 4, "not a module path"),
        ("modules.softdep", 8, "softdep"),
        ("modules.softdep", 9, "softdep pre: crc32c"),
        ("modules.builtin.modinfo", 5, "noequals"),
    ];
    let expected: Vec<(String, usize, &str)> = expected
        .iter()
        .map(|&(file, line, text)| (file.to_owned(), line, text))
        .collect();
    assert_eq!(issues, expected);
    assert_eq!(
        index.issues()[2].to_string(),
        format!(
            "{}:30: expected \"MODULE_PATH: DEPENDENCY_PATH...\": \"this line has no colon\"",
            dir.path().join("modules.dep").display()
        )
    );
    let json = serde_json::to_value(&index.issues()[6]).unwrap();
    assert_eq!(json["line"], 4);
    assert_eq!(json["problem"], "expected one module path");
    assert_eq!(json["text"], "not a module path");
}

#[test]
fn the_first_modules_dep_line_of_a_module_counts() {
    let dir = fixture();
    let plan = index(&dir)
        .load_plan(&"e1000".into(), &no_options())
        .unwrap();
    let modules: Vec<&str> = plan.steps.iter().map(|s| s.module.as_str()).collect();
    assert_eq!(modules, ["md5", "e1000"]);
}

#[test]
fn a_missing_index_file_is_an_error_naming_it() {
    for file in [
        "modules.alias",
        "modules.dep",
        "modules.builtin",
        "modules.softdep",
    ] {
        let dir = fixture();
        fs::remove_file(dir.path().join(file)).unwrap();
        let error = ModuleIndex::load(dir.path()).unwrap_err();
        let path = dir.path().join(file);
        assert!(
            matches!(error, ModuleError::ReadIndex { path: ref p, ref source }
                if *p == path && source.kind() == std::io::ErrorKind::NotFound),
            "{file}: {error:?}"
        );
        assert_eq!(error.to_string(), format!("cannot read {}", path.display()));
    }
}

#[test]
fn builtin_modinfo_is_optional_but_must_be_readable_when_there() {
    let dir = fixture();
    let modinfo = dir.path().join("modules.builtin.modinfo");
    fs::remove_file(&modinfo).unwrap();
    let index = ModuleIndex::load(dir.path()).unwrap();
    check_resolve(&index, "crypto-md5", &[]);
    check_resolve(&index, "md5", &["md5"]);

    fs::create_dir(&modinfo).unwrap();
    let error = ModuleIndex::load(dir.path()).unwrap_err();
    assert!(matches!(error, ModuleError::ReadIndex { ref path, .. } if *path == modinfo));
}

#[test]
fn a_missing_modules_directory_names_modules_alias() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("6.1.0-56-amd64");
    let error = ModuleIndex::load(&missing).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot read {}", missing.join("modules.alias").display())
    );
}

// ---- resolution ----

#[test]
fn device_modaliases_resolve_like_modprobe() {
    let dir = fixture();
    let index = index(&dir);
    check_resolve(
        &index,
        "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
        &["e1000"],
    );
    check_resolve(
        &index,
        "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00",
        &["virtio_pci"],
    );
    check_resolve(&index, "virtio:d00000001v00001AF4", &["virtio_net"]);
    check_resolve(&index, "virtio:d00000002v00001AF4", &[]);
    check_resolve(
        &index,
        "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
        &["usb_storage", "uas"],
    );
    check_resolve(
        &index,
        "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip62in00",
        &["uas"],
    );
    check_resolve(
        &index,
        "usb:v0D96p5200d0010dc00dsc00dp00ic08isc06ip62in00",
        &["uas", "usb_storage"],
    );
    check_resolve(&index, "acpi:PNP0700:", &["floppy"]);
    check_resolve(&index, "acpi:PNP0A03:PNP0700:", &["floppy"]);
    check_resolve(
        &index,
        "cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0081,00E5,",
        &["kvm_intel"],
    );
    check_resolve(&index, "scsi:t-0x00", &["sd_mod"]);
    check_resolve(&index, "scsi:t-0x05", &[]);
    check_resolve(&index, "pci:v000010ECd00008139sv*", &[]);
    check_resolve(&index, "pci:]", &[]);
}

#[test]
fn names_resolve_to_modules_then_aliases_then_builtins() {
    let dir = fixture();
    let index = index(&dir);
    check_resolve(&index, "usb-storage", &["usb_storage"]);
    check_resolve(&index, "crypto-crc32c", &["crc32c_intel", "crc32c_generic"]);
    check_resolve(&index, "crypto-md5", &["md5"]);
    check_resolve(&index, "pnp:dPNP0303", &["i8042"]);
    check_resolve(&index, "xhci-hcd", &["xhci_hcd"]);
    check_resolve(&index, "no-such-module", &[]);
    assert!(index.is_builtin(&"xhci_hcd".into()));
    assert!(!index.is_builtin(&"e1000".into()));
    assert_eq!(
        index.module_file(&"usb_storage".into()),
        Some(dir.path().join("kernel/drivers/usb/storage/usb-storage.ko"))
    );
    assert_eq!(index.module_file(&"md5".into()), None);
    assert_eq!(index.dir(), dir.path());
}

// ---- plans ----

fn plan_steps(plan: &LoadPlan) -> Vec<(&str, StepRole)> {
    plan.steps
        .iter()
        .map(|step| (step.module.as_str(), step.role))
        .collect()
}

#[test]
fn dependencies_load_deepest_first() {
    let dir = fixture();
    let index = index(&dir);
    let plan = index
        .load_plan(&"virtio_net".into(), &no_options())
        .unwrap();
    use StepRole::{Dependency, Target};
    assert_eq!(
        plan_steps(&plan),
        [
            ("virtio_ring", Dependency),
            ("virtio", Dependency),
            ("failover", Dependency),
            ("net_failover", Dependency),
            ("virtio_net", Target),
        ]
    );
    assert_eq!(
        plan.steps[4].action,
        PlannedAction::Load {
            path: dir.path().join("kernel/drivers/net/virtio_net.ko"),
            compression: Compression::None,
            parameters: String::new(),
        }
    );
    let plan = index.load_plan(&"uas".into(), &no_options()).unwrap();
    let modules: Vec<&str> = plan.steps.iter().map(|s| s.module.as_str()).collect();
    assert_eq!(
        modules,
        [
            "usb_common",
            "usbcore",
            "scsi_common",
            "scsi_mod",
            "usb_storage",
            "uas"
        ]
    );
}

#[test]
fn soft_dependencies_come_before_and_after() {
    let dir = fixture();
    let index = index(&dir);
    let plan = index.load_plan(&"ext4".into(), &no_options()).unwrap();
    use StepRole::{Dependency, SoftPost, SoftPre, Target};
    assert_eq!(
        plan_steps(&plan),
        [
            ("crc32c_intel", SoftPre),
            ("crc32c_generic", SoftPre),
            ("jbd2", Dependency),
            ("mbcache", Dependency),
            ("crc16", Dependency),
            ("ext4", Target),
        ]
    );
    assert!(plan.missing_soft_dependencies.is_empty());
    assert!(matches!(
        plan.steps[5].action,
        PlannedAction::Load {
            compression: Compression::Xz,
            ..
        }
    ));

    let plan = index
        .load_plan(&"ipmi_msghandler".into(), &no_options())
        .unwrap();
    assert_eq!(
        plan_steps(&plan),
        [("ipmi_msghandler", Target), ("ipmi_devintf", SoftPost)]
    );

    let plan = index.load_plan(&"e1000".into(), &no_options()).unwrap();
    assert_eq!(plan_steps(&plan), [("md5", SoftPre), ("e1000", Target)]);
    assert_eq!(plan.steps[0].action, PlannedAction::Builtin);
    assert_eq!(
        plan.missing_soft_dependencies,
        ["no-such-alias", "stale-driver"]
    );
}

#[test]
fn builtin_modules_need_no_load() {
    let dir = fixture();
    let plan = index(&dir)
        .load_plan(&"xhci_hcd".into(), &no_options())
        .unwrap();
    assert_eq!(plan_steps(&plan), [("xhci_hcd", StepRole::Target)]);
    assert_eq!(plan.steps[0].action, PlannedAction::Builtin);
}

#[test]
fn modules_missing_from_modules_dep_are_errors_naming_them() {
    let dir = fixture();
    let index = index(&dir);
    let dep_file = dir.path().join("modules.dep");
    let error = index
        .load_plan(&"stale_driver".into(), &no_options())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("module stale_driver is not in {}", dep_file.display())
    );
    let error = index
        .load_plan(&"needs_ghost".into(), &no_options())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "module ghost, needed by needs_ghost, is not in {}",
            dep_file.display()
        )
    );
    let plan = index
        .load_plan(&"pulls_stale".into(), &no_options())
        .unwrap();
    assert_eq!(plan.missing_soft_dependencies, ["stale_driver"]);
}

#[test]
fn plans_carry_parameters_and_blacklist() {
    let dir = fixture();
    let index = index(&dir);
    let options = options(&[
        ("virtio_net.napi_tx", Some("1")),
        ("virtio-net.csum", Some("0")),
        ("failover.x", None),
        ("mfv.blacklist", Some("crc32c-intel")),
    ]);
    let plan = index.load_plan(&"virtio_net".into(), &options).unwrap();
    let parameters: Vec<&str> = plan
        .steps
        .iter()
        .map(|step| match &step.action {
            PlannedAction::Load { parameters, .. } => parameters.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(parameters, ["", "", "x", "", "napi_tx=1 csum=0"]);

    let plan = index.load_plan(&"ext4".into(), &options).unwrap();
    assert_eq!(plan.steps[0].module.as_str(), "crc32c_intel");
    assert_eq!(plan.steps[0].action, PlannedAction::Blacklisted);
}

// ---- loading ----

fn statuses(outcome: &LoadOutcome) -> Vec<(&str, StepStatus)> {
    outcome
        .steps
        .iter()
        .map(|step| (step.module.as_str(), step.status))
        .collect()
}

#[test]
fn loads_dependencies_in_order_with_parameters_skipping_loaded_ones() {
    let dir = fixture();
    let index = index(&dir);
    let mut loader = RecordingModuleLoader::new();
    loader.mark_loaded("virtio");
    let options = options(&[("virtio_net.napi_tx", Some("1"))]);
    let outcome = load_with_dependencies(&index, &"virtio_net".into(), &options, &mut loader);
    use StepStatus::{AlreadyLoaded, Loaded};
    assert_eq!(
        statuses(&outcome),
        [
            ("virtio_ring", Loaded),
            ("virtio", AlreadyLoaded),
            ("failover", Loaded),
            ("net_failover", Loaded),
            ("virtio_net", Loaded),
        ]
    );
    assert!(outcome.error.is_none());
    assert_eq!(outcome.status(), Some(Loaded));
    assert!(outcome.is_available());
    assert_eq!(
        loader.inserted_modules(),
        ["virtio_ring", "failover", "net_failover", "virtio_net"]
    );
    let last = &loader.inserts()[3];
    assert_eq!(last.parameters, "napi_tx=1");
    assert!(last.from_file);
    assert_eq!(last.image, module_bytes("kernel/drivers/net/virtio_net.ko"));
    assert_eq!(
        outcome.to_string(),
        "virtio_net loaded (virtio_ring loaded, virtio already loaded, failover loaded, \
         net_failover loaded)"
    );

    let again = load_with_dependencies(&index, &"virtio_net".into(), &options, &mut loader);
    assert_eq!(again.status(), Some(AlreadyLoaded));
    assert_eq!(loader.inserts().len(), 4);
}

#[test]
fn compressed_modules_reach_the_kernel_decompressed() {
    let dir = fixture();
    let index = index(&dir);
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"ext4".into(), &no_options(), &mut loader);
    assert!(outcome.error.is_none(), "{outcome}");
    let inserts = loader.inserts();
    let image = |module: &str| {
        let insert = inserts
            .iter()
            .find(|i| i.module.as_str() == module)
            .unwrap();
        (insert.image.clone(), insert.from_file)
    };
    assert_eq!(image("ext4"), (kernel_style_xz_contents(), false));
    assert_eq!(
        image("crc16"),
        (module_bytes("kernel/lib/crc16.ko.zst"), false)
    );
    assert_eq!(
        image("mbcache"),
        (module_bytes("kernel/fs/mbcache.ko.gz"), false)
    );
    assert_eq!(
        image("jbd2"),
        (module_bytes("kernel/fs/jbd2/jbd2.ko"), true)
    );
}

#[test]
fn eexist_means_already_loaded() {
    let dir = fixture();
    let mut loader = RecordingModuleLoader::new();
    loader.fail("e1000", Errno::EEXIST);
    let outcome = load_with_dependencies(&index(&dir), &"e1000".into(), &no_options(), &mut loader);
    assert_eq!(
        statuses(&outcome),
        [
            ("md5", StepStatus::Builtin),
            ("e1000", StepStatus::AlreadyLoaded)
        ]
    );
    assert!(outcome.error.is_none());
    assert!(outcome.is_available());
}

#[test]
fn a_failing_soft_dependency_is_recorded_and_loading_goes_on() {
    let dir = fixture();
    let mut loader = RecordingModuleLoader::new();
    loader.fail("crc32c_intel", Errno::ENODEV);
    let outcome = load_with_dependencies(&index(&dir), &"ext4".into(), &no_options(), &mut loader);
    use StepStatus::{Failed, Loaded};
    assert_eq!(
        statuses(&outcome),
        [
            ("crc32c_intel", Failed),
            ("crc32c_generic", Loaded),
            ("jbd2", Loaded),
            ("mbcache", Loaded),
            ("crc16", Loaded),
            ("ext4", Loaded),
        ]
    );
    assert!(outcome.error.is_none());
    assert!(outcome.is_available());
    assert!(matches!(
        outcome.soft_dependency_errors.as_slice(),
        [ModuleError::Load { module, source: Errno::ENODEV, .. }] if module.as_str() == "crc32c_intel"
    ));
    let json = serde_json::to_value(&outcome).unwrap();
    let soft_errors = json["soft_dependency_errors"].as_array().unwrap();
    assert_eq!(soft_errors.len(), 1);
    assert!(soft_errors[0].as_str().unwrap().contains("crc32c_intel"));
}

#[test]
fn a_failing_dependency_stops_the_load_and_is_named_with_its_file() {
    let dir = fixture();
    let mut loader = RecordingModuleLoader::new();
    loader.fail("scsi_mod", Errno::ENOEXEC);
    let outcome = load_with_dependencies(&index(&dir), &"uas".into(), &no_options(), &mut loader);
    use StepStatus::{Failed, Loaded};
    assert_eq!(
        statuses(&outcome),
        [
            ("usb_common", Loaded),
            ("usbcore", Loaded),
            ("scsi_common", Loaded),
            ("scsi_mod", Failed),
        ]
    );
    assert_eq!(outcome.status(), None);
    assert!(!outcome.is_available());
    let path = dir.path().join("kernel/drivers/scsi/scsi_mod.ko");
    let error = outcome.error.as_ref().unwrap();
    assert!(
        matches!(error, ModuleError::Load { module, path: p, source: Errno::ENOEXEC }
            if module.as_str() == "scsi_mod" && *p == path)
    );
    let line = format!(
        "uas not loaded (usb_common loaded, usbcore loaded, scsi_common loaded, scsi_mod failed): \
         cannot load module scsi_mod from {}: ENOEXEC: Exec format error",
        path.display()
    );
    assert_eq!(outcome.to_string(), line);
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["module"], "uas");
    assert_eq!(json["steps"][3]["status"], "failed");
    assert_eq!(json["steps"][3]["role"], "dependency");
    assert_eq!(
        json["error"],
        format!(
            "cannot load module scsi_mod from {}: ENOEXEC: Exec format error",
            path.display()
        )
    );
}

#[test]
fn blacklisted_modules_are_never_loaded() {
    let dir = fixture();
    let index = index(&dir);
    let blacklist = options(&[("modprobe.blacklist", Some("e1000,net_failover"))]);

    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"e1000".into(), &blacklist, &mut loader);
    assert_eq!(outcome.status(), Some(StepStatus::Blacklisted));
    assert!(outcome.error.is_none());
    assert!(!outcome.is_available());
    assert!(loader.inserts().is_empty());
    assert_eq!(outcome.to_string(), "e1000 blacklisted");

    let outcome = load_with_dependencies(&index, &"virtio_net".into(), &blacklist, &mut loader);
    assert_eq!(
        statuses(&outcome),
        [
            ("virtio_ring", StepStatus::Loaded),
            ("virtio", StepStatus::Loaded),
            ("failover", StepStatus::Loaded),
            ("net_failover", StepStatus::Blacklisted),
        ]
    );
    assert_eq!(
        outcome.error.as_ref().unwrap().to_string(),
        "module net_failover, needed by virtio_net, is blacklisted"
    );
    assert_eq!(
        loader.inserted_modules(),
        ["virtio_ring", "virtio", "failover"]
    );

    let soft = options(&[("mfv.blacklist", Some("crc32c_generic"))]);
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"ext4".into(), &soft, &mut loader);
    assert!(outcome.error.is_none());
    assert_eq!(outcome.steps[1].status, StepStatus::Blacklisted);
    assert_eq!(outcome.status(), Some(StepStatus::Loaded));
}

#[test]
fn builtin_targets_and_unknown_modules() {
    let dir = fixture();
    let index = index(&dir);
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"i8042".into(), &no_options(), &mut loader);
    assert_eq!(outcome.status(), Some(StepStatus::Builtin));
    assert!(outcome.is_available());
    assert_eq!(outcome.to_string(), "i8042 built in");

    let outcome = load_with_dependencies(&index, &"ghost".into(), &no_options(), &mut loader);
    assert!(outcome.steps.is_empty());
    assert!(matches!(
        outcome.error,
        Some(ModuleError::NotInModulesDep { ref module, .. }) if module.as_str() == "ghost"
    ));
    assert!(loader.inserts().is_empty());
}

#[test]
fn missing_and_corrupt_module_files_are_errors_naming_them() {
    let dir = fixture();
    let index = index(&dir);
    let floppy = dir.path().join("kernel/drivers/block/floppy.ko");
    fs::remove_file(&floppy).unwrap();
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"floppy".into(), &no_options(), &mut loader);
    assert_eq!(outcome.status(), Some(StepStatus::Failed));
    assert!(matches!(
        outcome.error,
        Some(ModuleError::ReadModule { ref path, .. }) if *path == floppy
    ));

    let checks: [(&str, &str); 3] = [
        ("kernel/fs/ext4/ext4.ko.xz", "ext4"),
        ("kernel/lib/crc16.ko.zst", "crc16"),
        ("kernel/fs/mbcache.ko.gz", "mbcache"),
    ];
    for (file, module) in checks {
        let mut loader = RecordingModuleLoader::new();
        let path = dir.path().join(file);
        fs::write(&path, b"not compressed at all").unwrap();
        let outcome = load_with_dependencies(&index, &module.into(), &no_options(), &mut loader);
        let Some(ModuleError::Decompress {
            module: ref name,
            path: ref p,
            ..
        }) = outcome.error
        else {
            panic!("{file}: {outcome}");
        };
        assert_eq!((name.as_str(), p), (module, &path));
        assert!(
            outcome.to_string().contains(&format!(
                "cannot decompress module {module} from {}: ",
                path.display()
            )),
            "{outcome}"
        );
    }
}

#[test]
fn parameters_with_nul_cannot_be_passed() {
    let dir = fixture();
    let options = options(&[("floppy.bad", Some("a\0b"))]);
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index(&dir), &"floppy".into(), &options, &mut loader);
    assert_eq!(
        outcome.error.as_ref().unwrap().to_string(),
        "parameters of module floppy contain a NUL byte: \"bad=a\\0b\""
    );
}

#[test]
fn loaded_state_errors_stop_the_load() {
    let dir = fixture();
    let sysfs = tempfile::tempdir().unwrap();
    let initstate = sysfs.path().join("module/floppy/initstate");
    fs::create_dir_all(&initstate).unwrap();
    let mut loader = KernelModuleLoader::new(sysfs.path());
    let outcome =
        load_with_dependencies(&index(&dir), &"floppy".into(), &no_options(), &mut loader);
    assert_eq!(outcome.status(), Some(StepStatus::Failed));
    assert_eq!(
        outcome.error.as_ref().unwrap().to_string(),
        format!(
            "cannot tell whether module floppy is loaded from {}",
            initstate.display()
        )
    );
}

// ---- the real loader's sysfs check ----

#[test]
fn the_kernel_loader_reads_loaded_state_from_sysfs() {
    let sysfs = tempfile::tempdir().unwrap();
    let module = |name: &str| sysfs.path().join("module").join(name);
    for (name, state) in [
        ("e1000", "live\n"),
        ("virtio_net", "coming\n"),
        ("floppy", "going\n"),
    ] {
        fs::create_dir_all(module(name)).unwrap();
        fs::write(module(name).join("initstate"), state).unwrap();
    }
    fs::create_dir_all(module("i8042")).unwrap();
    let loader = KernelModuleLoader::new(sysfs.path());
    let loaded = |name: &str| loader.is_loaded(&name.into()).unwrap();
    assert!(loaded("e1000"));
    assert!(loaded("virtio_net"));
    assert!(!loaded("floppy"));
    assert!(loaded("i8042"));
    assert!(!loaded("ext4"));

    let file = sysfs.path().join("not-a-dir");
    fs::write(&file, "").unwrap();
    let loader = KernelModuleLoader::new(&file);
    let error = loader.is_loaded(&"e1000".into()).unwrap_err();
    assert!(matches!(error, ModuleError::LoadedState { ref path, .. }
        if *path == file.join("module/e1000/initstate")));
}

// ---- the Debian kernel the image uses ----

/// `target/kernel/*/lib/modules/*/` as `cargo xtask` fetches it.
fn fetched_kernel_modules_dir() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let kernels = fs::read_dir(workspace.join("target/kernel")).ok()?;
    kernels
        .flatten()
        .filter_map(|kernel| fs::read_dir(kernel.path().join("lib/modules")).ok())
        .flat_map(|releases| releases.flatten())
        .map(|release| release.path())
        .find(|dir| dir.join("modules.dep").is_file())
}

#[test]
fn the_fetched_debian_kernel_index_resolves_real_devices() {
    let Some(dir) = fetched_kernel_modules_dir() else {
        println!("SKIPPED: no target/kernel/*/lib/modules/*/ (run `cargo xtask image` first)");
        return;
    };
    let start = std::time::Instant::now();
    let index = ModuleIndex::load(&dir).unwrap();
    println!("loaded {} in {:?}", dir.display(), start.elapsed());
    assert!(index.issues().is_empty(), "{:#?}", index.issues());
    check_resolve(
        &index,
        "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
        &["e1000"],
    );
    check_resolve(&index, "virtio:d00000001v00001AF4", &["virtio_net"]);
    check_resolve(
        &index,
        "pci:v000010ECd00008139sv00001AF4sd00001100bc02sc00i00",
        &["8139cp", "8139too"],
    );
    let plan = index
        .load_plan(&"virtio_net".into(), &no_options())
        .unwrap();
    let modules: Vec<&str> = plan.steps.iter().map(|s| s.module.as_str()).collect();
    assert_eq!(modules.last(), Some(&"virtio_net"));
    let position = |name: &str| modules.iter().position(|m| *m == name).unwrap();
    assert!(position("failover") < position("net_failover"));
    assert!(position("virtio_ring") < position("virtio_net"));
    let plan = index.load_plan(&"ext4".into(), &no_options()).unwrap();
    assert_eq!(plan.steps[0].role, StepRole::SoftPre);
    let mut loader = RecordingModuleLoader::new();
    let outcome = load_with_dependencies(&index, &"e1000".into(), &no_options(), &mut loader);
    assert_eq!(outcome.status(), Some(StepStatus::Loaded), "{outcome}");
    assert!(loader.inserts()[0].image.starts_with(b"\x7fELF"));
}
