//! Detection against fixture /proc and /sys trees: cgroup v1 and v2,
//! limited and unlimited, missing files, fractional CPU quotas.

use std::path::{Path, PathBuf};

use dbtune::facts::detect::Detector;
use dbtune::facts::{Facts, StorageKind};
use dbtune::units::ByteSize;

fn detect(host: &str, data_dir: Option<&str>) -> Facts {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(host);
    assert!(root.is_dir(), "missing fixture {}", root.display());
    Detector {
        root,
        probe_commands: false,
    }
    .detect(data_dir.map(Path::new))
}

#[test]
fn cgroup_v1_limit_set_on_a_parent_binds_the_child() {
    let f = detect("cgroup-v1-limited", None);
    assert_eq!(f.memory.physical.value, ByteSize::kib(24599132));
    let limit = f.memory.cgroup_limit.as_ref().expect("a limit");
    assert_eq!(limit.value, ByteSize::gib(1));
    assert_eq!(
        limit.source,
        "cgroup v1 /sys/fs/cgroup/memory/docker/memory.limit_in_bytes"
    );
    assert_eq!(f.memory.effective(), ByteSize::gib(1));
}

#[test]
fn cgroup_v1_quota_with_a_non_default_period_gives_one_and_a_half_cpus() {
    let f = detect("cgroup-v1-limited", None);
    assert_eq!(f.cpu.logical.value, 8);
    let q = f.cpu.cgroup_quota.as_ref().expect("a quota");
    assert_eq!(q.value, 1.5);
    assert!(
        q.source.ends_with("docker/abc123/cpu.cfs_quota_us"),
        "{}",
        q.source
    );
    assert_eq!(
        f.cpu.effective(),
        1,
        "1.5 CPUs cannot keep two workers busy"
    );
}

#[test]
fn cgroup_v2_memory_max_and_cpu_max() {
    let f = detect("cgroup-v2-limited", None);
    assert_eq!(
        f.memory.cgroup_limit.as_ref().unwrap().value,
        ByteSize::gib(2)
    );
    assert_eq!(f.memory.effective(), ByteSize::gib(2));
    assert_eq!(f.cpu.cgroup_quota.as_ref().unwrap().value, 1.5);
    assert_eq!(f.cpu.logical.value, 16);
}

#[test]
fn nvme_partition_is_nvme() {
    let f = detect("cgroup-v2-limited", None);
    assert_eq!(f.storage.kind.value, StorageKind::Nvme);
    assert_eq!(f.storage.device.as_deref(), Some("nvme0n1"));
    assert_eq!(f.storage.filesystem.as_ref().unwrap().value, "xfs");
    assert!(f.storage.doubt.is_none());
}

#[test]
fn unlimited_cgroup_v2_means_physical_ram() {
    let f = detect("cgroup-v2-unlimited", None);
    assert!(f.memory.cgroup_limit.is_none());
    assert!(f.cpu.cgroup_quota.is_none());
    assert_eq!(f.memory.effective(), ByteSize::kib(4026532));
    assert_eq!(f.cpu.logical.value, 2, "counted from /proc/cpuinfo");
    assert_eq!(f.cpu.logical.source, "/proc/cpuinfo");
}

#[test]
fn rotational_sda_is_hdd_and_not_doubted() {
    let f = detect("cgroup-v2-unlimited", None);
    assert_eq!(f.storage.kind.value, StorageKind::Hdd);
    assert!(f.storage.doubt.is_none());
}

#[test]
fn virtio_disk_reporting_rotational_is_doubted() {
    let f = detect("cgroup-v1-limited", None);
    assert_eq!(f.storage.kind.value, StorageKind::Ssd);
    let doubt = f.storage.doubt.as_deref().expect("doubt");
    assert!(doubt.contains("--storage hdd"), "{doubt}");
}

#[test]
fn missing_cgroup_files_mean_no_limit_and_zfs_is_seen() {
    let f = detect("no-cgroup-zfs", Some("/var/lib/postgresql/15/main"));
    assert!(f.memory.cgroup_limit.is_none());
    assert!(f.cpu.cgroup_quota.is_none());
    assert_eq!(f.memory.effective(), ByteSize::gib(32));
    assert!(f.zfs.present);
    assert_eq!(f.zfs.version.as_deref(), Some("2.1.11-1"));
    assert!(f.data_on_zfs());
    // ZFS datasets are not block devices: the kind is assumed, and says so.
    assert!(f.storage.doubt.is_some());
    assert!(f.storage.kind.source.starts_with("assumed"));
}

#[test]
fn facts_survive_a_json_round_trip() {
    let f = detect("cgroup-v1-limited", None);
    let json = serde_json::to_string(&f).unwrap();
    let back: Facts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
}

#[test]
fn an_empty_root_still_gives_facts() {
    let dir = tempfile::tempdir().unwrap();
    let f = Detector {
        root: dir.path().to_path_buf(),
        probe_commands: false,
    }
    .detect(None);
    assert_eq!(f.memory.physical.value, ByteSize::ZERO);
    assert!(f.memory.physical.source.contains("unknown"));
    assert_eq!(f.cpu.logical.value, 1);
}
