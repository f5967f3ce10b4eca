//! Golden XML, round trips and import of domains written by libvirt.

use super::*;
use crate::{
    BootDevice, DiskBus, DiskSource, DiskSpec, ExtraXml, Firmware, ImageFormat, KernelBoot,
    NicModel, NicSource, NicSpec, VncSpec,
};
use uuid::Uuid;

fn typical_spec() -> VmSpec {
    VmSpec {
        name: "web-1".into(),
        uuid: Some(Uuid::from_u128(0x4b1c_2f7e_9d3a_4c55_8e21_6f0a_b3c4_d5e6)),
        vcpus: 2,
        memory_mib: 2048,
        firmware: Firmware::Bios,
        disks: vec![
            DiskSpec {
                target: "vda".into(),
                bus: DiskBus::Virtio,
                source: DiskSource::NewVolume {
                    pool: "default".into(),
                    size_gib: 20,
                    format: None,
                },
            },
            DiskSpec {
                target: "sda".into(),
                bus: DiskBus::Sata,
                source: DiskSource::Image {
                    path: "/var/lib/mfv/images/data.raw".into(),
                    format: ImageFormat::Raw,
                },
            },
        ],
        cdrom: Some("/var/lib/mfv/iso/debian-12.iso".into()),
        nics: vec![
            NicSpec {
                source: NicSource::Bridge("br0".into()),
                model: NicModel::Virtio,
                mac: Some("52:54:00:ab:cd:ef".into()),
            },
            NicSpec {
                source: NicSource::Network("default".into()),
                model: NicModel::E1000,
                mac: None,
            },
        ],
        vnc: VncSpec {
            enabled: true,
            password: Some("s3<r&t".into()),
        },
        serial_console: true,
        kernel_boot: None,
        boot_order: vec![],
        autostart: true,
        description: Some("Web server & proxy".into()),
        tags: vec!["prod".into(), "web".into()],
        extra_xml: ExtraXml::default(),
    }
}

fn minimal_spec() -> VmSpec {
    serde_json::from_value(serde_json::json!({"name": "t", "vcpus": 1, "memory_mib": 128})).unwrap()
}

fn uefi_host() -> HostCapabilities {
    HostCapabilities {
        kvm_usable: true,
        ovmf: Some(OvmfFirmware {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars_template: "/usr/share/OVMF/OVMF_VARS_4M.fd".into(),
        }),
    }
}

fn imported(xml: &str) -> ImportedDomain {
    VmSpec::from_domain_xml(xml).unwrap()
}

#[test]
fn typical_spec_gives_the_golden_xml() {
    let xml = typical_spec()
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap();
    assert_eq!(xml, include_str!("testdata/typical.xml").trim_end());
}

#[test]
fn uefi_kvm_and_kernel_boot_give_the_golden_xml() {
    let mut spec = minimal_spec();
    spec.firmware = Firmware::Uefi;
    spec.serial_console = false;
    spec.kernel_boot = Some(KernelBoot {
        kernel: "/boot/vmlinuz".into(),
        initrd: Some("/boot/initrd.img".into()),
        cmdline: Some("console=ttyS0 quiet".into()),
    });
    let xml = spec.to_domain_xml(&uefi_host()).unwrap();
    assert_eq!(xml, include_str!("testdata/uefi-kvm.xml").trim_end());
    assert_eq!(imported(&xml).spec, spec);
}

#[test]
fn specs_round_trip_through_their_xml() {
    let mut uefi = typical_spec();
    uefi.firmware = Firmware::Uefi;
    uefi.boot_order = vec![BootDevice::Nic(1), BootDevice::Disk("sda".into())];
    uefi.vnc = VncSpec::NONE;
    uefi.serial_console = false;
    uefi.autostart = false;
    uefi.description = None;
    uefi.tags.clear();
    uefi.uuid = None;
    // A new volume in an LVM pool: raw, named so, and read back as the VM's own.
    let mut lvm = typical_spec();
    lvm.disks[0].source = DiskSource::NewVolume {
        pool: "lvm".into(),
        size_gib: 20,
        format: Some(ImageFormat::Raw),
    };
    let lvm_xml = lvm.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(
        lvm_xml.contains("<driver name=\"qemu\" type=\"raw\"/>")
            && lvm_xml.contains("volume=\"web-1-vda.img\""),
        "{lvm_xml}"
    );
    for spec in [typical_spec(), minimal_spec(), uefi, lvm] {
        for host in [HostCapabilities::tcg_only(), uefi_host()] {
            let Ok(xml) = spec.to_domain_xml(&host) else {
                assert_eq!(spec.firmware, Firmware::Uefi);
                continue;
            };
            let domain = imported(&xml);
            assert_eq!(domain.spec, spec, "{xml}");
            assert_eq!(domain.preserved, Vec::<String>::new());
            assert_eq!(domain.dropped, Vec::<String>::new());
        }
    }
}

#[test]
fn domain_type_follows_kvm() {
    let spec = minimal_spec();
    let tcg = spec.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(tcg.starts_with("<domain type=\"qemu\">"), "{tcg}");
    assert!(!tcg.contains("<cpu"), "{tcg}");
    let kvm = spec.to_domain_xml(&uefi_host()).unwrap();
    assert!(kvm.starts_with("<domain type=\"kvm\">"), "{kvm}");
    assert!(kvm.contains("<cpu mode=\"host-passthrough\"/>"), "{kvm}");
}

#[test]
fn a_domain_as_libvirt_returns_it_keeps_what_libvirt_added() {
    let xml = include_str!("testdata/typical-from-libvirt.xml");
    let domain = imported(xml);
    let mut expected = typical_spec();
    expected.nics[1].mac = Some("52:54:00:7a:68:a8".into());
    expected.extra_xml = ExtraXml {
        domain: vec![
            "<clock offset=\"utc\"/>".into(),
            "<on_poweroff>destroy</on_poweroff>".into(),
            "<on_reboot>restart</on_reboot>".into(),
            "<on_crash>destroy</on_crash>".into(),
        ],
        devices: vec![
            "<controller type=\"sata\" index=\"0\"/>".into(),
            "<video><model type=\"cirrus\" vram=\"16384\" heads=\"1\" primary=\"yes\"/></video>"
                .into(),
        ],
        metadata: vec![],
    };
    assert_eq!(domain.spec, expected);
    assert_eq!(
        domain.preserved,
        [
            "domain/clock",
            "domain/on_poweroff",
            "domain/on_reboot",
            "domain/on_crash",
            "devices/controller",
            "devices/video"
        ]
    );
    assert_eq!(domain.dropped, Vec::<String>::new());

    // Written again and read again, nothing changes.
    let again = domain
        .spec
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap();
    assert!(
        again.contains("<video>\n      <model type=\"cirrus\""),
        "{again}"
    );
    assert_eq!(imported(&again).spec, domain.spec);
}

#[test]
fn a_domain_as_the_qemu_driver_returns_it_reads_back_as_its_spec() {
    // `virsh dumpxml --inactive --security-info` of testdata/typical.xml defined in
    // libvirt 9.0's QEMU driver.
    let domain = imported(include_str!("testdata/typical-from-qemu-driver.xml"));
    let mut expected = typical_spec();
    expected.nics[1].mac = Some("52:54:00:af:e3:91".into());
    let mut spec = domain.spec.clone();
    assert_eq!(spec.extra_xml.domain.len(), 5);
    assert_eq!(spec.extra_xml.devices.len(), 15);
    spec.extra_xml = ExtraXml::default();
    assert_eq!(spec, expected);
    let mut preserved = domain.preserved.clone();
    preserved.dedup();
    assert_eq!(
        preserved,
        [
            "domain/cpu",
            "domain/clock",
            "domain/on_poweroff",
            "domain/on_reboot",
            "domain/on_crash",
            "devices/controller",
            "devices/input",
            "devices/audio",
            "devices/video",
            "devices/memballoon",
        ]
    );
    assert_eq!(domain.dropped, Vec::<String>::new());
    let again = domain
        .spec
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap();
    assert_eq!(imported(&again).spec, domain.spec);

    let domain = imported(include_str!("testdata/kernel-boot-from-qemu-driver.xml"));
    assert_eq!(domain.spec.firmware, Firmware::Uefi);
    assert_eq!(
        domain.spec.kernel_boot,
        Some(KernelBoot {
            kernel: "/boot/vmlinuz".into(),
            initrd: Some("/boot/initrd.img".into()),
            cmdline: Some("console=ttyS0 quiet".into()),
        })
    );
    assert_eq!(domain.spec.boot_order, []);
    assert_eq!(domain.dropped, Vec::<String>::new());
}

#[test]
fn a_foreign_domain_is_read_as_far_as_the_spec_goes() {
    let domain = imported(include_str!("testdata/foreign.xml"));
    let spec = &domain.spec;
    assert_eq!(spec.name, "win-desktop");
    assert_eq!(
        spec.uuid,
        Some(Uuid::parse_str("0f5e2a3c-7b1d-4e8f-9a6b-2c3d4e5f6a7b").unwrap())
    );
    assert_eq!(spec.memory_mib, 4096);
    assert_eq!(spec.vcpus, 4);
    assert_eq!(spec.firmware, Firmware::Uefi);
    assert_eq!(
        spec.disks,
        [
            DiskSpec {
                target: "vdb".into(),
                bus: DiskBus::Virtio,
                source: DiskSource::Image {
                    path: "/var/lib/libvirt/images/data.qcow2".into(),
                    format: ImageFormat::Qcow2,
                },
            },
            DiskSpec {
                target: "vdc".into(),
                bus: DiskBus::Virtio,
                source: DiskSource::Volume {
                    pool: "images".into(),
                    volume: "scratch.img".into(),
                    format: ImageFormat::Raw,
                },
            },
        ]
    );
    assert_eq!(spec.cdrom, Some("/var/lib/libvirt/images/Win10.iso".into()));
    assert_eq!(
        spec.nics,
        [NicSpec {
            source: NicSource::Bridge("br0".into()),
            model: NicModel::Virtio,
            mac: Some("52:54:00:5c:1e:78".into()),
        }]
    );
    assert!(spec.serial_console);
    assert_eq!(spec.vnc, VncSpec::NONE);
    assert_eq!(spec.boot_order, [BootDevice::Cdrom, BootDevice::Nic(0)]);
    assert!(!spec.autostart);
    assert!(spec.tags.is_empty());
    assert_eq!(
        domain.preserved,
        [
            "domain/title",
            "metadata/libosinfo:libosinfo",
            "domain/features",
            "domain/clock",
            "domain/on_poweroff",
            "devices/disk[sda]",
            "devices/controller",
            "devices/interface",
            "devices/graphics",
            "devices/video",
            "domain/qemu:commandline",
        ]
    );
    assert_eq!(
        domain.dropped,
        [
            "os/type machine=pc-i440fx-7.2 (q35 is used)",
            "os/bootmenu",
            "domain/seclabel (security labels are the host's)",
            "domain/currentMemory (2048 MiB; the VM gets all of domain/memory)",
        ]
    );
    // The kept element carries the namespace it had from <domain>.
    assert_eq!(
        spec.extra_xml.domain.last().unwrap(),
        "<qemu:commandline xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\">\
         <qemu:arg value=\"-no-hpet\"/></qemu:commandline>"
    );
    assert_eq!(
        spec.extra_xml.metadata,
        [
            "<libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">\
          <libosinfo:os id=\"http://microsoft.com/win/10\"/></libosinfo:libosinfo>"
        ]
    );

    // Written for this host and read back, the spec is the same; the kept disk keeps
    // its boot order 2, so the spec's devices take 1 and 3, and the CD-ROM moves to a
    // SATA name the kept disk does not use.
    let xml = spec.to_domain_xml(&uefi_host()).unwrap();
    assert!(xml.contains("<target dev=\"sdb\" bus=\"sata\"/>"), "{xml}");
    assert!(xml.contains("<cpu mode=\"host-passthrough\"/>"), "{xml}");
    assert_eq!(xml.matches("<boot order=\"2\"/>").count(), 1, "{xml}");
    assert!(xml.contains("<boot order=\"3\"/>"), "{xml}");
    assert!(
        xml.contains("<features>\n    <acpi/>\n    <apic/>\n    <hyperv mode=\"custom\">"),
        "{xml}"
    );
    let mut again = imported(&xml);
    assert_eq!(&again.spec, spec);
    // Kept elements are written after the spec's, so they are listed in another order.
    let mut preserved = domain.preserved.clone();
    preserved.sort();
    again.preserved.sort();
    assert_eq!(again.preserved, preserved);
}

#[test]
fn os_boot_devices_become_the_boot_order() {
    let xml = "<domain type='qemu'><name>b</name><memory>131072</memory>\
        <os><type>hvm</type><boot dev='network'/><boot dev='cdrom'/><boot dev='hd'/><boot dev='fd'/></os>\
        <devices>\
          <disk type='file' device='disk'><source file='/a'/><target dev='vda' bus='virtio'/></disk>\
          <disk type='file' device='cdrom'><source file='/c.iso'/><target dev='sda' bus='sata'/><readonly/></disk>\
          <interface type='bridge'><source bridge='br0'/><model type='rtl8139'/></interface>\
        </devices></domain>";
    let domain = imported(xml);
    assert_eq!(
        domain.spec.boot_order,
        [
            BootDevice::Nic(0),
            BootDevice::Cdrom,
            BootDevice::Disk("vda".into())
        ]
    );
    assert_eq!(
        domain.spec.disks[0].source,
        DiskSource::Image {
            path: "/a".into(),
            format: ImageFormat::Raw
        }
    );
    assert_eq!(domain.spec.nics[0].model, NicModel::Rtl8139);
    assert_eq!(domain.spec.memory_mib, 128);
    assert_eq!(domain.dropped, ["os/boot dev=fd"]);

    // The default order (CD-ROM, then disks) reads back as "no explicit order".
    let xml = xml.replace(
        "<boot dev='network'/><boot dev='cdrom'/><boot dev='hd'/><boot dev='fd'/>",
        "<boot dev='cdrom'/><boot dev='hd'/>",
    );
    assert_eq!(imported(&xml).spec.boot_order, []);
}

#[test]
fn new_volume_records_need_the_volume_the_spec_would_name() {
    let spec = typical_spec();
    let xml = spec
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap()
        .replace("volume=\"web-1-vda.qcow2\"", "volume=\"other.qcow2\"");
    assert_eq!(
        imported(&xml).spec.disks[0].source,
        DiskSource::Volume {
            pool: "default".into(),
            volume: "other.qcow2".into(),
            format: ImageFormat::Qcow2,
        }
    );
}

#[test]
fn devices_the_spec_cannot_say_are_kept() {
    let xml = "<domain><name>k</name><memory unit='MiB'>64</memory><devices>\
        <disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vdz' bus='virtio'/></disk>\
        <disk type='file' device='disk'><source file='/a'/><target dev='hda' bus='ide'/></disk>\
        <disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/b'/><target dev='vdb' bus='virtio'/></disk>\
        <disk type='file' device='disk'><source file='/c'/><target dev='vdc' bus='virtio' removable='on'/></disk>\
        <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='/d'/><target dev='vdd' bus='virtio'/></disk>\
        <disk type='file' device='disk'><source file='/d'/><target dev='vde' bus='virtio'/><readonly/></disk>\
        <disk type='file' device='disk'><source file='/d'/><target dev='vdf' bus='virtio'/><iotune/></disk>\
        <disk type='file' device='disk'><target dev='vdg' bus='virtio'/></disk>\
        <disk type='file' device='disk'><source/></disk>\
        <disk type='file' device='cdrom'><target dev='sdc' bus='sata'/><source/><readonly/></disk>\
        <disk type='file' device='cdrom'><source file='/1.iso'/><target dev='sdd' bus='sata'/><readonly/></disk>\
        <disk type='file' device='cdrom'><source file='/2.iso'/><target dev='sde' bus='sata'/><readonly/></disk>\
        <disk type='file' device='floppy'><source file='/f.img'/><target dev='fda' bus='fdc'/></disk>\
        <interface type='user'><model type='virtio'/></interface>\
        <interface type='bridge'><source bridge='br0'/></interface>\
        <interface type='bridge'><source bridge='br0'/><model type='virtio'/><bandwidth/></interface>\
        <interface type='network'><source network='n' portgroup='p'/><model type='virtio'/></interface>\
        <serial type='file'><source path='/tmp/s.log'/><target port='0'/></serial>\
        <console type='pty'><target type='virtio' port='0'/></console>\
        <graphics type='vnc' port='5900' autoport='no' listen='127.0.0.1' passwd='x'/>\
        <graphics type='vnc' autoport='yes' listen='0.0.0.0' passwd='x'/>\
        <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\
        <graphics type='vnc' autoport='yes' passwd='x'/>\
        <graphics type='vnc' autoport='yes' passwd='x' keymap='de'><listen type='address' address='127.0.0.1'/></graphics>\
        <graphics type='vnc' autoport='yes' passwd='x' listen='127.0.0.1'><listen type='network' network='n'/></graphics>\
        </devices></domain>";
    let domain = imported(xml);
    assert_eq!(domain.spec.disks, []);
    assert_eq!(domain.spec.cdrom, Some("/1.iso".into()));
    assert_eq!(domain.spec.nics, []);
    assert!(!domain.spec.serial_console);
    assert_eq!(domain.spec.vnc, VncSpec::NONE);
    assert_eq!(
        domain.preserved,
        [
            "devices/disk[vdz]",
            "devices/disk[hda]",
            "devices/disk[vdb]",
            "devices/disk[vdc]",
            "devices/disk[vdd]",
            "devices/disk[vde]",
            "devices/disk[vdf]",
            "devices/disk[vdg]",
            "devices/disk",
            "devices/disk[sdc]",
            "devices/disk[sde]",
            "devices/disk[fda]",
            "devices/interface",
            "devices/interface",
            "devices/interface",
            "devices/interface",
            "devices/serial",
            "devices/console",
            "devices/graphics",
            "devices/graphics",
            "devices/graphics",
            "devices/graphics",
            "devices/graphics",
            "devices/graphics",
        ]
    );
    assert_eq!(domain.spec.extra_xml.devices.len(), domain.preserved.len());
}

#[test]
fn a_vnc_display_listening_by_child_element_only_is_modelled() {
    let xml = "<domain><name>v</name><memory>65536</memory><devices>\
        <graphics type='vnc' port='-1' passwd='pw'><listen type='address' address='localhost'/></graphics>\
        </devices></domain>";
    assert_eq!(
        imported(xml).spec.vnc,
        VncSpec {
            enabled: true,
            password: Some("pw".into())
        }
    );
}

#[test]
fn a_vnc_display_without_a_password_listens_nowhere_and_round_trips() {
    let mut spec = typical_spec();
    spec.vnc = VncSpec::default();
    let xml = spec.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(
        xml.contains("<graphics type=\"vnc\">\n      <listen type=\"none\"/>\n    </graphics>"),
        "{xml}"
    );
    assert!(
        !xml.contains("passwd") && !xml.contains("autoport"),
        "{xml}"
    );
    let back = imported(&xml);
    assert_eq!(back.spec.vnc, VncSpec::default());
    assert!(back.preserved.is_empty(), "{:?}", back.preserved);

    spec.vnc = VncSpec::NONE;
    let xml = spec.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(!xml.contains("<graphics"), "{xml}");
    assert_eq!(imported(&xml).spec.vnc, VncSpec::NONE);

    // A listen element of another kind beside `none`, or a port, is not this display.
    for other in [
        "<graphics type='vnc'><listen type='none'/><listen type='none'/></graphics>",
        "<graphics type='vnc' listen='127.0.0.1'><listen type='none'/></graphics>",
        "<graphics type='vnc'><listen type='none' address='x'/></graphics>",
        "<graphics type='vnc' passwd='pw'><listen type='none'/></graphics>",
    ] {
        let xml = format!(
            "<domain><name>v</name><memory>65536</memory><devices>{other}</devices></domain>"
        );
        assert_eq!(imported(&xml).spec.vnc, VncSpec::NONE, "{other}");
    }
}

#[test]
fn memory_units() {
    let mib = |memory: &str| {
        let xml = format!("<domain><name>m</name>{memory}</domain>");
        imported(&xml).spec.memory_mib
    };
    assert_eq!(mib("<memory>1048576</memory>"), 1024);
    assert_eq!(mib("<memory unit='KiB'>2048</memory>"), 2);
    assert_eq!(mib("<memory unit='k'>2048</memory>"), 2);
    assert_eq!(mib("<memory unit='b'>1048576</memory>"), 1);
    assert_eq!(mib("<memory unit='bytes'>2097152</memory>"), 2);
    assert_eq!(mib("<memory unit='M'>3</memory>"), 3);
    assert_eq!(mib("<memory unit='MiB'>3</memory>"), 3);
    assert_eq!(mib("<memory unit='G'>2</memory>"), 2048);
    assert_eq!(mib("<memory unit='GiB'>2</memory>"), 2048);
    assert_eq!(mib("<memory unit='T'>1</memory>"), 1024 * 1024);
    assert_eq!(mib("<memory unit='TiB'>1</memory>"), 1024 * 1024);
    assert_eq!(mib("<memory unit='MB'>1000</memory>"), 953);
    assert_eq!(mib("<memory unit='GB'>1</memory>"), 953);
    assert_eq!(mib("<memory unit='TB'>1</memory>"), 953_674);
    assert_eq!(mib("<memory unit='KB'>1048576</memory>"), 1000);
    let rounded = imported("<domain><name>m</name><memory unit='KiB'>1536</memory></domain>");
    assert_eq!(rounded.spec.memory_mib, 1);
    assert_eq!(
        rounded.dropped,
        ["domain/memory: 1536 KiB rounded down to 1 MiB"]
    );
}

#[test]
fn vcpus_partly_online_are_noted() {
    let domain =
        imported("<domain><name>c</name><memory>65536</memory><vcpu current='1'>4</vcpu></domain>");
    assert_eq!(domain.spec.vcpus, 4);
    assert_eq!(
        domain.dropped,
        ["domain/vcpu current=1 (all 4 vCPUs are online)"]
    );
}

#[test]
fn os_details_the_spec_cannot_say_are_noted() {
    let domain = imported(
        "<domain><name>o</name><memory>65536</memory>\
         <os><type arch='aarch64' machine='virt'>hvm</type><initrd>/i</initrd><smbios mode='host'/></os>\
         </domain>",
    );
    assert_eq!(domain.spec.kernel_boot, None);
    assert_eq!(
        domain.dropped,
        [
            "os/type machine=virt (q35 is used)",
            "os/type arch=aarch64 (x86_64 is used)",
            "os/smbios",
            "os/initrd and os/cmdline (no os/kernel)",
        ]
    );
}

#[test]
fn own_metadata_unknown_parts_are_noted_and_other_prefixes_work() {
    let domain = imported(
        "<domain xmlns:m='urn:minifed-virt:vm:1'><name>x</name><memory>65536</memory>\
         <metadata><m:vm><m:autostart>false</m:autostart><m:tag>a</m:tag><m:colour>red</m:colour></m:vm>\
         <other:thing xmlns:other='urn:other'/><m:vm-not/></metadata></domain>",
    );
    assert_eq!(domain.spec.tags, ["a"]);
    assert!(!domain.spec.autostart);
    assert_eq!(domain.dropped, ["metadata/vm/colour"]);
    assert_eq!(
        domain.spec.extra_xml.metadata,
        [
            "<other:thing xmlns:other=\"urn:other\"/>",
            "<m:vm-not xmlns:m=\"urn:minifed-virt:vm:1\"/>"
        ]
    );
}

#[test]
fn an_element_with_an_undeclared_prefix_cannot_be_kept() {
    let domain = imported("<domain><name>x</name><memory>65536</memory><q:thing/></domain>");
    assert_eq!(
        domain.dropped,
        ["domain/q:thing (namespace prefix \"q\" is not declared)"]
    );
    assert!(domain.spec.extra_xml.is_empty());
}

#[test]
fn unreadable_domains_are_refused() {
    let error = |xml: &str| VmSpec::from_domain_xml(xml).unwrap_err().to_string();
    assert!(
        error("<domain><name>x</domain>")
            .starts_with("domain XML is malformed: not well-formed at byte"),
        "{}",
        error("<domain><name>x</domain>")
    );
    assert_eq!(error(""), "domain XML is malformed: no element");
    assert_eq!(
        error("<network><name>x</name></network>"),
        "the XML describes a <network>, not a <domain>"
    );
    assert_eq!(
        error("<domain><memory>1</memory></domain>"),
        "domain XML has no domain/name"
    );
    assert_eq!(
        error("<domain><name>x</name></domain>"),
        "domain XML has no domain/memory"
    );
    let with = |body: &str| format!("<domain><name>x</name><memory>65536</memory>{body}</domain>");
    let cases = [
        ("<uuid>nope</uuid>", "domain/uuid: \"nope\" is not a UUID"),
        (
            "<memory>lots</memory>",
            "domain/memory: \"lots\" is not a number",
        ),
        (
            "<memory unit='parsecs'>1</memory>",
            "domain/memory: \"parsecs\" is not a memory unit",
        ),
        (
            "<memory unit='TiB'>99999999999999</memory>",
            "domain/memory: \"99999999999999\" is too large",
        ),
        (
            "<currentMemory>x</currentMemory>",
            "domain/currentMemory: \"x\" is not a number",
        ),
        ("<vcpu>-1</vcpu>", "domain/vcpu: \"-1\" is not a number"),
        (
            "<metadata><mfv:vm xmlns:mfv='urn:minifed-virt:vm:1'><mfv:autostart>yes</mfv:autostart></mfv:vm></metadata>",
            "metadata/vm/autostart: \"yes\" is neither true nor false",
        ),
        (
            "<metadata><mfv:vm xmlns:mfv='urn:minifed-virt:vm:1'><mfv:new-volume target='vda' pool='p' size-gib='big'/></mfv:vm></metadata>",
            "metadata/vm/new-volume/@size-gib: \"big\" is not a number",
        ),
        (
            "<devices><disk type='file' device='disk'><source file='/a'/><target dev='vda' bus='virtio'/><boot order='first'/></disk></devices>",
            "devices/disk/boot/@order: \"first\" is not a number",
        ),
        (
            "<devices><interface type='bridge'><source bridge='b'/><model type='virtio'/><boot order='x'/></interface></devices>",
            "devices/interface/boot/@order: \"x\" is not a number",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(error(&with(body)), message, "{body}");
    }
}

#[test]
fn uefi_needs_ovmf_on_the_host() {
    let mut spec = minimal_spec();
    spec.firmware = Firmware::Uefi;
    let error = spec
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap_err();
    assert!(matches!(error, XmlError::UefiFirmwareMissing));
    assert_eq!(
        error.to_string(),
        "UEFI firmware (OVMF) is not installed on this host: install the ovmf package or use BIOS firmware"
    );
}

#[test]
fn invalid_specs_get_no_xml() {
    let mut spec = minimal_spec();
    spec.vcpus = 0;
    let error = spec
        .to_domain_xml(&HostCapabilities::tcg_only())
        .unwrap_err();
    assert!(matches!(error, XmlError::InvalidSpec(_)));
    assert_eq!(
        error.to_string(),
        "invalid VM spec: vcpus: 0 is outside 1..=255"
    );
}

#[test]
fn unusable_extra_xml_is_refused() {
    let error = |change: fn(&mut ExtraXml)| {
        let mut spec = typical_spec();
        change(&mut spec.extra_xml);
        spec.to_domain_xml(&HostCapabilities::tcg_only())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(|extra| extra.devices = vec!["<video>".into()]),
        "extra_xml.devices[0]: <video> is not closed"
    );
    assert_eq!(
        error(|extra| extra.domain = vec!["<clock/>".into(), "<a/><b/>".into()]),
        "extra_xml.domain[1]: more than one top-level element"
    );
    assert_eq!(
        error(|extra| extra.domain = vec!["<vcpu>8</vcpu>".into()]),
        "extra_xml.domain[0]: <vcpu> is written from the spec"
    );
    assert_eq!(
        error(|extra| extra.metadata = vec!["<q:x/>".into()]),
        "extra_xml.metadata[0]: uses the namespace prefix \"q\" without declaring it"
    );
    assert_eq!(
        error(|extra| extra.metadata = vec!["<m:vm xmlns:m='urn:minifed-virt:vm:1'/>".into()]),
        "extra_xml.metadata[0]: the namespace urn:minifed-virt:vm:1 is written from the spec"
    );
    assert_eq!(
        error(|extra| extra.devices = vec![
            "<disk type='file'><source file='/x'/><target dev='vda' bus='virtio'/></disk>".into()
        ]),
        "extra_xml.devices[0]: disk target vda is also disks[0].target"
    );
}

#[test]
fn mac_addresses_are_written_in_lowercase() {
    let mut spec = minimal_spec();
    spec.nics = vec![NicSpec {
        source: NicSource::Bridge("br0".into()),
        model: NicModel::Virtio,
        mac: Some("52:54:00:AB:CD:EF".into()),
    }];
    let xml = spec.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(
        xml.contains("<mac address=\"52:54:00:ab:cd:ef\"/>"),
        "{xml}"
    );
}

#[test]
fn text_is_escaped_not_spliced() {
    let mut spec = minimal_spec();
    spec.description = Some("</description><evil/>".into());
    spec.kernel_boot = Some(KernelBoot {
        kernel: "/k'\"<>&".into(),
        initrd: None,
        cmdline: Some("a=<b> & c".into()),
    });
    let xml = spec.to_domain_xml(&HostCapabilities::tcg_only()).unwrap();
    assert!(!xml.contains("<evil/>"), "{xml}");
    assert_eq!(imported(&xml).spec, spec);
}

#[test]
fn a_running_vms_drives_read_back_as_the_spec_says_them() {
    let live = include_str!("testdata/typical.xml")
        .replace(
            r#"<source pool="default" volume="web-1-vda.qcow2"/>"#,
            r#"<source pool="default" volume="web-1-vda.qcow2" index="3"/>
      <backingStore/>
      <alias name="virtio-disk0"/>
      <address type="pci" domain="0x0000" bus="0x04" slot="0x00" function="0x0"/>"#,
        )
        .replace(
            r#"<source file="/var/lib/mfv/iso/debian-12.iso"/>"#,
            r#"<source file="/var/lib/mfv/iso/debian-12.iso" index="1"/>
      <backingStore/>"#,
        );
    let domain = imported(&live);
    assert_eq!(domain.spec.disks, typical_spec().disks);
    assert_eq!(domain.spec.cdrom, typical_spec().cdrom);
    assert!(
        !domain.preserved.iter().any(|kept| kept.contains("disk")),
        "{:?}",
        domain.preserved
    );

    // A backing chain is more than the spec can say: the drive is kept as it is.
    let overlay = include_str!("testdata/typical.xml").replace(
        r#"<source file="/var/lib/mfv/images/data.raw"/>"#,
        r#"<source file="/var/lib/mfv/images/data.raw"/>
      <backingStore type="file"><format type="raw"/><source file="/base.raw"/></backingStore>"#,
    );
    let domain = imported(&overlay);
    assert!(
        domain.preserved.contains(&"devices/disk[sda]".to_owned()),
        "{:?}",
        domain.preserved
    );
}
