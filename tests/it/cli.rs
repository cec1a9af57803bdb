//! The command line as a user meets it: exit codes, messages, files on disk.

use std::fs;

use crate::harness::{dbtune, fixture};
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn render_low_memory_to_stdout_prints_every_file_and_the_budget() {
    dbtune()
        .args(["render", "--profile", "low-memory"])
        .assert()
        .success()
        .stdout(contains("# ==> postgresql.conf <==").and(contains("# ==> redis.conf <==")))
        .stdout(contains("maxmemory "))
        .stderr(contains("budget for profile low-memory on 4 GiB").and(contains("headroom")));
}

#[test]
fn only_one_file_is_printed_bare() {
    dbtune()
        .args(["render", "--profile", "bulk-ingest", "--only", "redis"])
        .assert()
        .success()
        .stdout(
            contains("==>")
                .not()
                .and(contains("maxmemory-policy volatile-lru")),
        );
}

#[test]
fn only_zfs_without_zfs_is_a_clear_error() {
    dbtune()
        .args(["render", "--profile", "low-memory", "--only", "zfs"])
        .assert()
        .code(2)
        .stderr(contains("--only zfs: nothing to render").and(contains("hint:")));
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    dbtune()
        .args(["render", "--profile", "lowmem"])
        .assert()
        .code(2)
        .stderr(contains("unknown profile `lowmem`"))
        .stderr(contains("low-memory, bulk-ingest, powerhouse"));
}

#[test]
fn bad_ram_value_is_a_usage_error() {
    dbtune()
        .args(["render", "--profile", "low-memory", "--ram", "4096"])
        .assert()
        .code(2)
        .stderr(contains("has no unit").and(contains("4096GiB")));
    dbtune()
        .args(["render", "--profile", "low-memory", "--ram", "lots"])
        .assert()
        .code(2)
        .stderr(contains("is not a size"));
}

#[test]
fn malformed_facts_file_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("db1.json");
    fs::write(
        &f,
        "{\n  \"memory\": {\n    \"physical\": \"64GiB\",\n  }\n}\n",
    )
    .unwrap();
    dbtune()
        .args(["render", "--facts"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(contains(format!("{}:4", f.display())).and(contains("hint:")));
}

#[test]
fn facts_toml_written_by_hand_is_accepted() {
    dbtune()
        .args([
            "render",
            "--facts",
            &fixture("facts/db1.toml"),
            "--only",
            "postgres",
        ])
        .assert()
        .success()
        .stderr(contains(
            "profile postgres-only: no profile named: PostgreSQL alone for a mixed workload",
        ))
        .stderr(contains("PostgreSQL 16"))
        .stdout(contains("effective_io_concurrency = 2"));
}

#[test]
fn detect_json_is_a_facts_file_render_accepts() {
    let out = dbtune()
        .args([
            "detect",
            "--json",
            "--root",
            &fixture("hosts/cgroup-v1-limited"),
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("host.json");
    fs::write(&f, &out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["memory"]["cgroup_limit"]["value"], 1u64 << 30);
    // A 1 GiB container: no profile named is PostgreSQL alone, which fits;
    // low-memory's app reservations do not, and the hint names what does.
    dbtune()
        .args(["render", "--only", "postgres", "--facts"])
        .arg(&f)
        .assert()
        .success()
        .stderr(contains("PostgreSQL alone for a mixed workload"))
        .stderr(contains("1 GiB (cgroup limit"));
    dbtune()
        .args(["render", "--profile", "low-memory", "--facts"])
        .arg(&f)
        .assert()
        .code(1)
        .stderr(contains("does not fit a host with 1 GiB"))
        .stderr(contains(
            "hint: render PostgreSQL alone (--profile postgres-only",
        ));
}

#[test]
fn detect_says_where_each_fact_came_from() {
    dbtune()
        .args(["detect", "--root", &fixture("hosts/cgroup-v2-limited")])
        .assert()
        .success()
        .stdout(contains("2 GiB cgroup limit (cgroup v2 /sys/fs/cgroup/system.slice/postgresql.service/memory.max)"))
        .stdout(contains("1.5 CPUs of cgroup quota"))
        .stdout(contains("storage    nvme"))
        .stdout(contains(
            "profile    postgres-only (no profile named: PostgreSQL alone for a mixed workload",
        ));
    // The workload is asked, and detect says it as render would take it.
    dbtune()
        .args([
            "detect",
            "--workload",
            "oltp",
            "--root",
            &fixture("hosts/cgroup-v2-limited"),
        ])
        .assert()
        .success()
        .stdout(contains("PostgreSQL alone for a web workload (--workload)"));
}

#[test]
fn powerhouse_on_two_gib_refuses_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy");
    dbtune()
        .args([
            "render",
            "--profile",
            "powerhouse",
            "--ram",
            "2GiB",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(contains("does not fit a host with 2 GiB").and(contains("hint:")));
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn unwritable_out_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(file.join("sub"))
        .assert()
        .code(2)
        .stderr(contains("cannot create --out directory"));
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(contains("is a file, not a directory"));
}

#[test]
fn out_writes_files_and_a_manifest_then_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(out)
        .assert()
        .success()
        .stderr(contains(
            "wrote postgresql.conf, redis.conf, pgbouncer.ini, 99-dbtune.conf",
        ));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("dbtune-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["profile"], "low-memory");
    assert!(manifest["files"]["postgresql.conf"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    dbtune()
        .args(["render", "--profile", "low-memory", "--check", "--out"])
        .arg(out)
        .assert()
        .success()
        .stderr(contains("up to date"));
    // Rendering again changes nothing.
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(out)
        .assert()
        .success()
        .stderr(contains("unchanged: postgresql.conf"));
}

#[test]
fn check_shows_a_diff_and_exits_1_when_a_file_drifted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(out)
        .assert()
        .success();
    let conf = out.join("postgresql.conf");
    let text = fs::read_to_string(&conf)
        .unwrap()
        .replace("jit = off", "jit = on");
    fs::write(&conf, text).unwrap();
    dbtune()
        .args(["render", "--profile", "low-memory", "--check", "--out"])
        .arg(out)
        .assert()
        .code(1)
        .stdout(
            contains("--- a/postgresql.conf")
                .and(contains("-jit = on"))
                .and(contains("+jit = off")),
        )
        .stderr(contains("differs"));
}

#[test]
fn a_hand_edited_file_is_never_silently_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(out)
        .assert()
        .success();
    let conf = out.join("redis.conf");
    let mine = fs::read_to_string(&conf).unwrap() + "\n# my note\n";
    fs::write(&conf, &mine).unwrap();
    // A different host changes every file; the edited one blocks all writes.
    let before = fs::read_to_string(out.join("postgresql.conf")).unwrap();
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "6GiB",
            "--out",
        ])
        .arg(out)
        .assert()
        .code(2)
        .stderr(contains("not overwriting `redis.conf`").and(contains("--force")));
    assert_eq!(fs::read_to_string(&conf).unwrap(), mine);
    assert_eq!(
        fs::read_to_string(out.join("postgresql.conf")).unwrap(),
        before
    );
    // --force writes and keeps the edit as .bak.
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "6GiB",
            "--force",
            "--out",
        ])
        .arg(out)
        .assert()
        .success()
        .stderr(contains("kept your redis.conf as"));
    assert_eq!(
        fs::read_to_string(out.join("redis.conf.bak")).unwrap(),
        mine
    );
    assert_ne!(fs::read_to_string(&conf).unwrap(), mine);
}

#[test]
fn a_file_dbtune_did_not_write_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("postgresql.conf"), "shared_buffers = 1GB\n").unwrap();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("not overwriting `postgresql.conf`"));
    assert!(!dir.path().join("dbtune-manifest.json").exists());
}

#[test]
fn two_renders_are_byte_identical() {
    let a = dbtune()
        .args(["render", "--profile", "powerhouse"])
        .output()
        .unwrap();
    let b = dbtune()
        .args(["render", "--profile", "powerhouse"])
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn profile_file_with_an_unknown_key_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mine.toml");
    let text = include_str!("../../profiles/low-memory.toml")
        .replace("name = \"low-memory\"", "name = \"mine\"")
        .replace("[redis]\n", "[redis]\nmax_memory = \"1GiB\"\n");
    let line = text
        .lines()
        .position(|l| l.starts_with("max_memory"))
        .unwrap()
        + 1;
    fs::write(&f, text).unwrap();
    dbtune()
        .args(["render", "--profile-file"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(contains(format!("{}:{line}", f.display())))
        .stderr(contains("unknown field `max_memory`"))
        .stderr(contains("hint:"));
}

#[test]
fn user_profiles_are_listed_and_usable_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../profiles/low-memory.toml")
        .replace("name = \"low-memory\"", "name = \"staging-8g\"")
        .replace("ram = \"4GiB\"", "ram = \"8GiB\"");
    fs::write(dir.path().join("staging-8g.toml"), text).unwrap();
    dbtune()
        .env("DBTUNE_PROFILE_DIR", dir.path())
        .args(["profiles"])
        .assert()
        .success()
        .stdout(contains("staging-8g").and(contains("8 GiB")));
    dbtune()
        .env("DBTUNE_PROFILE_DIR", dir.path())
        .args(["render", "--profile", "staging-8g", "--only", "postgres"])
        .assert()
        .success()
        .stderr(contains("on 8 GiB"));
}

#[test]
fn override_templates_win_over_built_ins() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("redis.conf.j2"),
        "# ours\n{% for section in redis %}{% for s in section.settings %}{{ s.name }} {{ s.value }}\n{% endfor %}{% endfor %}",
    )
    .unwrap();
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--only",
            "redis",
            "--services",
            "postgres,redis,pgbouncer",
            "--templates",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("# ours\nbind 127.0.0.1 -::1\n"));
}

#[test]
fn zfs_script_passes_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../profiles/powerhouse.toml")
        .replace("enabled = \"auto\"", "enabled = true");
    let f = dir.path().join("p.toml");
    fs::write(&f, text).unwrap();
    dbtune()
        .args(["render", "--only", "zfs", "--out"])
        .arg(dir.path().join("out"))
        .arg("--profile-file")
        .arg(&f)
        .assert()
        .success();
    let path = dir.path().join("out/zfs-datasets.sh");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
    match std::process::Command::new("shellcheck").arg(&path).output() {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout)),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("shellcheck is not installed; .ci/run must install it")
        }
        Err(_) => eprintln!("skipped: shellcheck is not installed (apt-get install shellcheck)"),
    }
}

/// An argument that is not UTF-8 (a file name from another locale) made
/// main panic while it looked for `--format json` in the arguments: it
/// is a usage error, exit 2, in every form, and a password in it stays
/// masked in the message.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"conf\xff.d");
    let url = OsStr::from_bytes(b"postgres://u:Sup3rSecretPW@h/db\xff");
    for args in [
        vec![OsStr::new("check-budget"), bad],
        vec![
            OsStr::new("check-budget"),
            OsStr::new("--format"),
            OsStr::new("json"),
            bad,
        ],
        vec![OsStr::new("check-budget"), OsStr::new("--format=json"), bad],
        vec![OsStr::new("inspect"), url],
        vec![bad],
    ] {
        let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
            .args(&args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {all}");
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        assert!(!all.contains("Sup3rSecretPW"), "{args:?}: {all}");
    }
}

/// `--help` into a full disk fails like any other output; into a closed
/// pipe it stays quiet.
#[test]
fn help_that_cannot_be_written_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .arg("--help")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write to stdout"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .arg("--help")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stderr.is_empty());
}
