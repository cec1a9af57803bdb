//! Safe by construction: each test reproduces a way dbtune once could
//! lose data, stop a server, run a profile's value as code, leak a
//! password or hang, and pins the behaviour that replaced it.

use crate::harness;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{dbtune, fixture};
use predicates::prelude::*;
use predicates::str::contains;

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// `detect --json` of a fixture host, saved as a facts file.
fn facts_of(host: &str, data_dir: Option<&str>, dir: &Path) -> PathBuf {
    let mut c = dbtune();
    c.args([
        "detect",
        "--json",
        "--root",
        &fixture(&format!("hosts/{host}")),
    ]);
    if let Some(d) = data_dir {
        c.args(["--data-dir", d]);
    }
    let out = c.assert().success().get_output().stdout.clone();
    let f = dir.join(format!("{host}.json"));
    fs::write(&f, out).unwrap();
    f
}

const ZFS_ONLY: &[&str] = &["full_page_writes", "wal_init_zero", "wal_recycle"];

fn zfs_only_settings(conf: &str) -> Vec<&str> {
    ZFS_ONLY
        .iter()
        .copied()
        .filter(|n| conf.lines().any(|l| l.starts_with(&format!("{n} ="))))
        .collect()
}

#[test]
fn zfs_tools_installed_with_data_on_ext4_never_turn_off_full_page_writes() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["zfs-tools-ext4-data", "zfs-pool-ext4-data"] {
        let facts = facts_of(host, None, dir.path());
        let out = dir.path().join(host);
        let a = dbtune()
            .args(["render", "--profile", "bulk-ingest", "--facts"])
            .arg(&facts)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        let conf = fs::read_to_string(out.join("postgresql.conf")).unwrap();
        assert_eq!(zfs_only_settings(&conf), Vec::<&str>::new(), "{host}");
        assert!(
            !out.join("zfs-datasets.sh").exists(),
            "{host}: no dataset script for data that is not on ZFS"
        );
        let budget = stderr_of(&a);
        if host == "zfs-pool-ext4-data" {
            // A pool elsewhere on the host: its ARC is capped and counted.
            assert!(out.join("zfs-arc.conf").exists());
            assert!(budget.contains("ARC cap"), "{budget}");
        } else {
            assert!(!out.join("zfs-arc.conf").exists());
            assert!(!budget.contains("ARC"), "{budget}");
        }
    }
}

#[test]
fn zfs_only_settings_need_the_wal_on_zfs_too() {
    let dir = tempfile::tempdir().unwrap();
    let facts = facts_of("zfs-data-ext4-wal", Some("/srv/pg"), dir.path());
    let conf = stdout_of(
        &dbtune()
            .args([
                "render",
                "--profile",
                "powerhouse",
                "--only",
                "postgres",
                "--facts",
            ])
            .arg(&facts)
            .assert()
            .success(),
    );
    assert_eq!(zfs_only_settings(&conf), Vec::<&str>::new());

    // Data on ZFS with pg_wal inside it: the settings are safe and written.
    let facts = facts_of("no-cgroup-zfs", None, dir.path());
    let conf = stdout_of(
        &dbtune()
            .args([
                "render",
                "--profile",
                "powerhouse",
                "--only",
                "postgres",
                "--facts",
            ])
            .arg(&facts)
            .assert()
            .success(),
    );
    assert_eq!(zfs_only_settings(&conf), ZFS_ONLY.to_vec());
    assert!(conf.contains("the data directory is on ZFS"), "{conf}");
}

#[test]
fn this_host_with_zfs_tools_renders_no_zfs_only_settings_unless_its_data_is_on_zfs() {
    // The machine the tests run on: CI installs zfs-fuse, the data
    // directory is not on ZFS.
    let detected = stdout_of(&dbtune().args(["detect", "--json"]).assert().success());
    let v: serde_json::Value = serde_json::from_str(&detected).unwrap();
    let on_zfs = v["storage"]["filesystem"]["value"]
        .as_str()
        .is_some_and(|f| f.contains("zfs"));
    for args in [
        vec!["render", "--only", "postgres"],
        vec![
            "render",
            "--only",
            "postgres",
            "--profile",
            "powerhouse",
            "--facts",
        ],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("host.json");
        fs::write(&f, &detected).unwrap();
        let mut c = dbtune();
        c.args(&args);
        if args.contains(&"--facts") {
            c.arg(&f);
        }
        let conf = stdout_of(&c.assert().success());
        if !on_zfs {
            assert_eq!(zfs_only_settings(&conf), Vec::<&str>::new(), "{args:?}");
        }
    }
}

#[test]
fn filesystem_flag_is_what_turns_the_zfs_only_settings_on() {
    let conf = stdout_of(
        &dbtune()
            .args([
                "render",
                "--profile",
                "powerhouse",
                "--only",
                "postgres",
                "--filesystem",
                "zfs",
            ])
            .assert()
            .success(),
    );
    assert_eq!(zfs_only_settings(&conf), ZFS_ONLY.to_vec());
    dbtune()
        .args([
            "render",
            "--profile",
            "powerhouse",
            "--filesystem",
            "ext4\nfsync",
        ])
        .assert()
        .code(2)
        .stderr(contains("is not a filesystem type"));
}

/// check-budget of files someone else wrote: every setting that loses data
/// or stops a server is an error, and the verdict says `unsafe`.
#[test]
fn check_budget_reports_settings_that_lose_data_or_stop_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("postgresql.conf"),
        "fsync = off\nfull_page_writes = off\nhuge_pages = on\nwal_level = minimal\n",
    )
    .unwrap();
    fs::write(
        d.join("redis.conf"),
        "maxmemory 100mb\nprotected-mode no\nbind 0.0.0.0\n",
    )
    .unwrap();
    fs::write(
        d.join("pgbouncer.ini"),
        "[databases]\napp = host=127.0.0.1\n[pgbouncer]\nlisten_addr = *\nauth_type = trust\n",
    )
    .unwrap();
    let a = dbtune()
        .args(["check-budget", "--ram", "8GiB", "--format", "json"])
        .arg(d)
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(v["verdict"], "unsafe");
    let findings = v["findings"].as_array().unwrap();
    let unsafe_at = |file: &str, line: u64, text: &str| {
        findings.iter().any(|f| {
            f["safety"] == true
                && f["at"]["file"].as_str().is_some_and(|x| x.ends_with(file))
                && f["at"]["line"] == line
                && f["message"].as_str().unwrap().contains(text)
        })
    };
    for (file, line, text) in [
        ("postgresql.conf", 1, "fsync = off"),
        ("postgresql.conf", 2, "torn page"),
        ("postgresql.conf", 3, "reserves no huge pages"),
        ("postgresql.conf", 4, "max_wal_senders = 10"),
        ("redis.conf", 2, "protected-mode no"),
        ("pgbouncer.ini", 5, "auth_type = trust"),
    ] {
        assert!(
            unsafe_at(file, line, text),
            "{file}:{line} {text}: {findings:#?}"
        );
    }

    // The text report says the same, and --filesystem zfs clears only the
    // full_page_writes finding.
    let text = stdout_of(
        &dbtune()
            .args(["check-budget", "--ram", "8GiB", "--filesystem", "zfs"])
            .arg(d.join("postgresql.conf"))
            .assert()
            .code(1),
    );
    assert!(!text.contains("torn page"), "{text}");
    assert!(text.contains("error: unsafe: fsync = off"), "{text}");
    assert!(text.contains("\nunsafe: busy level"), "{text}");
    assert!(
        text.contains("3 error(s) (3 can lose data or stop a server)"),
        "{text}"
    );
}

/// A committed redis.conf whose policy evicts what its Redis keeps (the
/// staging seed's allkeys-lru on a Redis that is also the Celery broker):
/// with the role said, check-budget calls it unsafe at its line; a cache
/// may evict anything; without a role nothing is assumed. The role also
/// picks the fragmentation and fork copy measured under its workload.
#[test]
fn check_budget_with_a_redis_role_refuses_a_policy_that_evicts_what_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    fs::write(
        &conf,
        "maxmemory 256mb\nmaxmemory-policy allkeys-lru\nappendonly yes\n",
    )
    .unwrap();
    let check = |extra: &[&str], code: i32| {
        let a = dbtune()
            .args(["check-budget", "--ram", "4GiB", "--format", "json"])
            .args(extra)
            .arg(&conf)
            .assert()
            .code(code);
        serde_json::from_str::<serde_json::Value>(&stdout_of(&a)).unwrap()
    };
    let evicts = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["message"]
                    .as_str()
                    .unwrap()
                    .contains("can evict what a Redis of role")
            })
            .cloned()
            .collect()
    };
    for role in ["queue", "mixed", "sessions"] {
        let v = check(&["--redis-role", role], 1);
        assert_eq!(v["verdict"], "unsafe", "{role}: {v:#}");
        let f = evicts(&v);
        assert_eq!(f.len(), 1, "{role}: {v:#}");
        assert_eq!(f[0]["safety"], true);
        assert_eq!(f[0]["at"]["line"], 2, "{role}: {f:#?}");
        assert!(
            f[0]["message"].as_str().unwrap().starts_with(&format!(
                "maxmemory-policy allkeys-lru can evict what a Redis of role {role} must keep"
            )),
            "{f:#?}"
        );
        let want = if role == "sessions" {
            "volatile-lru"
        } else {
            "noeviction"
        };
        assert!(
            f[0]["hint"]
                .as_str()
                .unwrap()
                .contains(&format!("set maxmemory-policy {want}")),
            "{f:#?}"
        );
    }
    for extra in [&["--redis-role", "cache"][..], &[][..]] {
        let v = check(extra, 0);
        assert!(evicts(&v).is_empty(), "{extra:?}: {v:#}");
    }
    // A volatile policy keeps a queue's keys only if they have no TTL:
    // still refused for a queue, allowed for sessions. Unset is noeviction.
    fs::write(&conf, "maxmemory 256mb\nmaxmemory-policy volatile-lru\n").unwrap();
    assert_eq!(evicts(&check(&["--redis-role", "queue"], 1)).len(), 1);
    assert!(evicts(&check(&["--redis-role", "sessions"], 0)).is_empty());
    fs::write(&conf, "maxmemory 256mb\n").unwrap();
    assert!(evicts(&check(&["--redis-role", "queue"], 0)).is_empty());
    // The role's measured factors are the budget's: said in the source.
    let text = stdout_of(
        &dbtune()
            .args(["check-budget", "--ram", "4GiB", "--redis-role", "queue"])
            .arg(&conf)
            .assert()
            .success(),
    );
    assert!(text.contains("measured for role queue"), "{text}");
    let text = stdout_of(
        &dbtune()
            .args(["check-budget", "--ram", "4GiB"])
            .arg(&conf)
            .assert()
            .success(),
    );
    assert!(!text.contains("measured for role"), "{text}");
}

#[test]
fn render_never_writes_a_setting_check_budget_calls_unsafe() {
    // Every built-in profile, on hosts small to huge, on ext4 and on ZFS,
    // for every PostgreSQL version: the rendered directory checks clean.
    let dir = tempfile::tempdir().unwrap();
    for profile in ["low-memory", "bulk-ingest", "powerhouse"] {
        for (ram, cpus) in [("6GiB", "2"), ("64GiB", "16"), ("2TiB", "128")] {
            for fs_ in ["ext4", "zfs"] {
                for v in ["13", "16", "18"] {
                    let out = dir.path().join(format!("{profile}-{ram}-{fs_}-{v}"));
                    let ok = dbtune()
                        .args([
                            "render",
                            "--profile",
                            profile,
                            "--ram",
                            ram,
                            "--cpus",
                            cpus,
                            "--filesystem",
                            fs_,
                            "--pg-version",
                            v,
                            "--out",
                        ])
                        .arg(&out)
                        .output()
                        .unwrap();
                    if ok.status.code() == Some(1) {
                        continue; // refused with the numbers: nothing written
                    }
                    assert!(
                        ok.status.success(),
                        "{}",
                        String::from_utf8_lossy(&ok.stderr)
                    );
                    let a = dbtune()
                        .args(["check-budget", "--format", "json"])
                        .arg(&out)
                        .assert()
                        .success();
                    let v: serde_json::Value = serde_json::from_str(&stdout_of(&a)).unwrap();
                    assert_eq!(v["verdict"], "fits", "{}", out.display());
                }
            }
        }
    }
}

#[test]
fn huge_hosts_get_values_inside_postgres_ranges_with_the_clamp_said() {
    // 23 TiB: effective_cache_size's 75% of RAM (17.25 TiB) is above
    // PostgreSQL's 16 TiB maximum.
    for (ram, cpus) in [("23TiB", "64"), ("64TiB", "4096")] {
        let a = dbtune()
            .args([
                "render",
                "--profile",
                "powerhouse",
                "--only",
                "postgres",
                "--ram",
                ram,
                "--cpus",
                cpus,
            ])
            .assert()
            .success();
        let conf = stdout_of(&a);
        assert!(
            conf.contains("effective_cache_size = 17179869176kB"),
            "{ram}: {conf}"
        );
        assert!(
            conf.contains("clamped to PostgreSQL 16's maximum"),
            "{conf}"
        );
    }
    dbtune()
        .args(["render", "--profile", "powerhouse", "--ram", "65TiB"])
        .assert()
        .code(2)
        .stderr(contains("out of range"));
}

/// A profile file that tries to get something past dbtune: each is refused
/// at load, exit 2, at its line, and nothing is written.
#[test]
fn hostile_profiles_are_refused_at_load_with_their_line() {
    let base =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/powerhouse.toml"))
            .unwrap();
    // (text in the built-in, what replaces it, the line the error must
    // point at, what it must say)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "compression = \"lz4\"",
            "compression = \"lz4; touch pwned\"",
            "touch pwned",
            "not a value ZFS accepts",
        ),
        (
            "recordsize = \"16K\"",
            "recordsize = \"16K $(reboot)\"",
            "$(reboot)",
            "not a value ZFS accepts",
        ),
        (
            "pool = \"tank\"",
            "pool = \"tank'; rm -rf /; '\"",
            "rm -rf",
            "not a ZFS pool name",
        ),
        (
            "dataset = \"postgres\"",
            "dataset = \"pg/../../etc\"",
            "../..",
            "not a ZFS dataset name",
        ),
        (
            "[redis]\n",
            "[redis]\nlisten = \"127.0.0.1\\nenable-debug-command yes\"\n",
            "enable-debug-command",
            "not a Redis bind list",
        ),
        (
            "[postgres]\n",
            "[postgres]\nlisten = \"*' ; shared_preload_libraries = 'evil\"\n",
            "evil",
            "not a listen address list",
        ),
        (
            "[pgbouncer]\n",
            "[pgbouncer]\nlisten = \"127.0.0.1\\nauth_type = trust\"\n",
            "auth_type = trust",
            "not a listen address list",
        ),
        (
            "database = \"app\"",
            "database = \"app = host=evil\\n[x\"",
            "host=evil",
            "not a database name",
        ),
        (
            "pool_mode = \"transaction\"",
            "pool_mode = \"bogus\"",
            "bogus",
            "unknown variant `bogus`",
        ),
        (
            "role = \"cache\"",
            "role = \"cache\"\npolicy = \"lru\"",
            "\"lru\"",
            "unknown variant `lru`",
        ),
        (
            "swappiness = 1",
            "swappiness = 500",
            "swappiness = 500",
            "swappiness = 500 is out of range",
        ),
        (
            "maxclients = 10000",
            "maxclients = 0",
            "maxclients = 0",
            "maxclients = 0 is out of range",
        ),
        // Each client is an open file: LimitNOFILE= could not follow.
        (
            "maxclients = 10000",
            "maxclients = 100000000",
            "maxclients = 100000000",
            "fs.nr_open",
        ),
        ("[redis]\n", "[redis]\nport = 0\n", "port = 0", "not a port"),
        (
            "[redis]\n",
            "[redis]\ndisable_commands = [\"FLUSHALL\\\" \\\"\"]\n",
            "disable_commands",
            "not a Redis command name",
        ),
        (
            "max_connections = 200",
            "max_connections = 300000",
            "300000",
            "out of range",
        ),
        (
            "name = \"powerhouse\"",
            "name = \"power\\nhouse\"",
            "power\\nhouse",
            "not a profile name",
        ),
        (
            "description = ",
            "description = \"x\\ny\"\n#",
            "description",
            "control character",
        ),
        (
            "cpus = 16",
            "cpus = 0",
            "cpus = 0",
            "cpus = 0 is out of range",
        ),
        (
            "name = \"monitoring agents and exporters\"",
            "name = \"agents\\r\\nmax_connections = 1\"",
            "agents",
            "control character",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (from, to, marker, says)) in cases.iter().enumerate() {
        assert!(
            base.contains(from),
            "case {i}: the base profile has no `{from}`"
        );
        let text = base.replacen(from, to, 1);
        let line = text
            .lines()
            .position(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("case {i}: no line with `{marker}`"))
            + 1;
        let f = dir.path().join(format!("hostile-{i}.toml"));
        fs::write(&f, &text).unwrap();
        let out = dir.path().join(format!("out-{i}"));
        let a = dbtune()
            .args(["render", "--profile-file"])
            .arg(&f)
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2);
        let err = stderr_of(&a);
        assert!(err.contains(says), "case {i} ({to}): {err}");
        assert!(
            err.contains(&format!("{}:{line}:", f.display())),
            "case {i} ({to}): wanted line {line}: {err}"
        );
        assert!(!out.exists(), "case {i}: nothing may be written");
    }
}

#[test]
fn hostile_facts_files_are_refused_at_load() {
    let base = fs::read_to_string(fixture("facts/db1.toml")).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "logical = 12",
            "logical = 0",
            "cpu.logical 0 is out of range",
        ),
        (
            "logical = 12",
            "logical = 100000",
            "cpu.logical 100000 is out of range",
        ),
        (
            "postgres = \"16.4\"",
            "postgres = \"9.6\"",
            "not a PostgreSQL version dbtune supports",
        ),
        (
            "postgres = \"16.4\"",
            "postgres = \"abc\"",
            "not a PostgreSQL version dbtune supports",
        ),
        (
            "physical = \"48GiB\"",
            "physical = \"0GiB\"",
            "out of range",
        ),
        (
            "hostname = \"db1\"",
            "hostname = \"db1\\nfsync = off\"",
            "control character",
        ),
        (
            "source = \"inventory: RAID 10 of spinning disks\"",
            "source = \"x\\nfull_page_writes = off\"",
            "control character",
        ),
        // What is wrong with the value, as its type says it: never "data
        // did not match any variant of untagged enum".
        (
            "physical = \"48GiB\"",
            "physical = \"48XB\"",
            "`48XB` has an unknown unit `XB`",
        ),
        ("physical = \"48GiB\"", "physical = true", "expected a size"),
        (
            "{ value = \"hdd\"",
            "{ value = \"tape\"",
            "unknown variant `tape`, expected one of `nvme`, `ssd`, `hdd`",
        ),
        (
            "{ value = \"hdd\"",
            "{ valu = \"hdd\"",
            "unknown field `valu`, expected `value` or `source`",
        ),
        (
            "logical = 12",
            "logical = \"twelve\"",
            "invalid type: string \"twelve\", expected u32",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (from, to, says)) in cases.iter().enumerate() {
        assert!(base.contains(from), "case {i}");
        let f = dir.path().join(format!("facts-{i}.toml"));
        fs::write(&f, base.replacen(from, to, 1)).unwrap();
        let line = base.lines().position(|l| l.contains(from)).unwrap() + 1;
        dbtune()
            .args(["render", "--facts"])
            .arg(&f)
            .assert()
            .code(2)
            .stderr(
                contains(*says)
                    .and(contains(format!("{}:{line}", f.display())))
                    .and(contains("untagged").not()),
            );
    }
    // The JSON `detect --json` writes, with a value gone bad.
    let json = r#"{
  "memory": { "physical": { "value": "48GiB", "source": "x" } },
  "cpu": { "logical": { "value": 4, "source": "x" } },
  "storage": { "kind": { "value": "floppy", "source": "x" } }
}"#;
    let f = dir.path().join("facts.json");
    fs::write(&f, json).unwrap();
    dbtune()
        .args(["render", "--facts"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(
            contains("unknown variant `floppy`")
                .and(contains(format!("{}:4", f.display())))
                .and(contains("untagged").not()),
        );
    // A checked value at its own line, among several `source` keys.
    fs::write(
        &f,
        json.replace(
            "\"floppy\", \"source\": \"x\"",
            "\"hdd\", \"source\": \"a\\nb\"",
        ),
    )
    .unwrap();
    dbtune()
        .args(["render", "--facts"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(
            contains("`source` contains a control character")
                .and(contains(format!("{}:4", f.display()))),
        );
}

/// A FIFO that nothing writes to: reading it would block forever.
fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    p
}

#[test]
fn devices_and_fifos_are_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let quick = |c: &mut assert_cmd::Command| {
        c.timeout(Duration::from_secs(20));
    };
    let mut c = dbtune();
    quick(&mut c);
    c.args(["check-budget", "--ram", "4GiB", "/dev/zero"])
        .assert()
        .code(2)
        .stderr(contains("a character device"));

    fs::write(
        d.join("postgresql.conf"),
        "work_mem = 4MB\ninclude '/dev/zero'\n",
    )
    .unwrap();
    let mut c = dbtune();
    quick(&mut c);
    c.args(["check-budget", "--ram", "4GiB"])
        .arg(d.join("postgresql.conf"))
        .assert()
        .code(2)
        .stderr(contains("postgresql.conf:2").and(contains("a character device")));

    let f = fifo(d, "redis.conf");
    let mut c = dbtune();
    quick(&mut c);
    c.args(["check-budget", "--ram", "4GiB"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(contains("FIFO"));

    let inc = d.join("inc");
    fs::create_dir(&inc).unwrap();
    fifo(&inc, "fifo.conf");
    fs::write(inc.join("postgresql.conf"), "include 'fifo.conf'\n").unwrap();
    let mut c = dbtune();
    quick(&mut c);
    c.args(["check-budget", "--ram", "4GiB"])
        .arg(inc.join("postgresql.conf"))
        .assert()
        .code(2)
        .stderr(contains("postgresql.conf:1").and(contains("FIFO")));

    for flag in ["--facts", "--profile-file"] {
        let f = fifo(d, &format!("x{flag}"));
        let mut c = dbtune();
        quick(&mut c);
        c.args(["render", flag])
            .arg(&f)
            .assert()
            .code(2)
            .stderr(contains("FIFO"));
    }
    let mut c = dbtune();
    quick(&mut c);
    c.args(["render", "--facts", "/dev/stdin"])
        .assert()
        .code(2)
        .stderr(contains("not a regular file"));
}

fn manifest_hashes(dir: &Path) -> serde_json::Value {
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("dbtune-manifest.json")).unwrap())
            .unwrap();
    m["files"].clone()
}

fn sha256_of(path: &Path) -> String {
    dbtune::render::output::sha256(&fs::read(path).unwrap())
}

/// The directory says what it holds: every file the manifest lists has
/// the hash it records.
fn assert_consistent(dir: &Path) {
    let files = manifest_hashes(dir);
    for (name, hash) in files.as_object().unwrap() {
        assert_eq!(
            sha256_of(&dir.join(name)),
            hash.as_str().unwrap(),
            "{name} differs from the manifest in {}",
            dir.display()
        );
    }
}

#[test]
fn a_render_killed_at_any_point_never_blames_a_hand_edit_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("db");
    let render = |ram: &str| {
        let mut c = dbtune();
        c.args(["render", "--profile", "low-memory", "--ram", ram, "--out"])
            .arg(&out);
        c
    };
    render("4GiB").assert().success();
    // 5 files + journal + manifest: kill after each write and inside each.
    for point in (1..=8).flat_map(|n| [format!("done:{n}"), format!("tmp:{n}")]) {
        let killed = render("5GiB")
            .env("DBTUNE_FAILPOINT", &point)
            .output()
            .unwrap();
        let next = render("6GiB").output().unwrap();
        assert!(
            next.status.success(),
            "after a kill at {point} ({:?}), the next render refused:\n{}",
            killed.status,
            String::from_utf8_lossy(&next.stderr)
        );
        assert_consistent(&out);
        let leftovers: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".dbtune"))
            .collect();
        assert!(leftovers.is_empty(), "after {point}: {leftovers:?}");
        render("4GiB").assert().success();
    }
}

#[test]
fn twenty_renders_into_one_directory_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("db");
    let children: Vec<_> = (0..20)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
                .args(["render", "--profile", "low-memory", "--ram"])
                .arg(format!("{}GiB", 4 + i % 5))
                .arg("--out")
                .arg(&out)
                .env("DBTUNE_PROFILE_DIR", "/nonexistent")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_consistent(&out);
    // Every file comes from the same render as the manifest.
    let m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("dbtune-manifest.json")).unwrap())
            .unwrap();
    let ram = dbtune::units::ByteSize(m["host"]["ram"].as_u64().unwrap()).to_string();
    for f in ["postgresql.conf", "redis.conf", "pgbouncer.ini"] {
        let text = fs::read_to_string(out.join(f)).unwrap();
        assert!(
            text.contains(&format!("with {ram} of RAM")),
            "{f} is not from the {ram} render"
        );
    }
}

#[test]
fn rerendering_keeps_mode_owner_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("db");
    let render = |ram: &str| {
        let mut c = dbtune();
        c.args(["render", "--profile", "low-memory", "--ram", ram, "--out"])
            .arg(&out);
        c
    };
    render("4GiB").assert().success();
    // postgresql.conf lives in a subdirectory, linked at the top (a link
    // leaving the directory is refused: tests/it/files.rs).
    let etc = out.join("etc");
    fs::create_dir(&etc).unwrap();
    let real = etc.join("postgresql.conf");
    fs::rename(out.join("postgresql.conf"), &real).unwrap();
    std::os::unix::fs::symlink(&real, out.join("postgresql.conf")).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(out.join("redis.conf"), fs::Permissions::from_mode(0o600)).unwrap();
    let owned_by_postgres = unsafe { libc::geteuid() } == 0;
    if owned_by_postgres {
        let id = |f: &str| -> u32 {
            let o = std::process::Command::new("id")
                .args([f, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        std::os::unix::fs::chown(out.join("pgbouncer.ini"), Some(id("-u")), Some(id("-g")))
            .unwrap();
    }
    let before_owner = fs::metadata(out.join("pgbouncer.ini")).unwrap();
    render("6GiB")
        .assert()
        .success()
        .stderr(contains("postgresql.conf is a symlink: wrote through"));
    assert!(fs::symlink_metadata(out.join("postgresql.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    let text = fs::read_to_string(&real).unwrap();
    assert!(
        text.contains("with 6 GiB of RAM"),
        "the link's target is updated"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o640);
    assert_eq!(
        fs::metadata(out.join("redis.conf")).unwrap().mode() & 0o777,
        0o600
    );
    let after_owner = fs::metadata(out.join("pgbouncer.ini")).unwrap();
    assert_eq!(
        (after_owner.uid(), after_owner.gid()),
        (before_owner.uid(), before_owner.gid())
    );
    assert_consistent(&out);
    render("6GiB").arg("--check").assert().success();
}

#[test]
fn a_password_never_reaches_the_screen_from_any_command() {
    const PW: &str = "Sup3rS3cretPW";
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("db");
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(&rendered)
        .assert()
        .success();
    let rd = rendered.to_str().unwrap();
    // Nothing listens on port 1: every connection fails, loudly.
    let url = format!("postgres://u:{PW}@127.0.0.1:1/db?sslmode=disable");
    let redis = format!("redis://:{PW}@127.0.0.1:1");
    let runs: Vec<Vec<String>> = vec![
        vec![
            "apply".into(),
            "--rollback".into(),
            url.clone(),
            "--yes".into(),
        ],
        vec!["check-budget".into(), url.clone()],
        vec![
            "check-budget".into(),
            "--format".into(),
            "json".into(),
            url.clone(),
        ],
        vec![
            "check-budget".into(),
            "--facts".into(),
            url.clone(),
            rd.into(),
        ],
        vec!["render".into(), "--facts".into(), url.clone()],
        vec!["render".into(), "--profile-file".into(), url.clone()],
        vec![
            "render".into(),
            "--profile".into(),
            "low-memory".into(),
            "--out".into(),
            format!("{url}/x"),
        ],
        vec!["inspect".into(), format!("u:{PW}@127.0.0.1")],
        vec!["inspect".into(), format!(":{PW}@127.0.0.1:6379")],
        vec!["inspect".into(), format!("postgres://u:{PW}")],
        vec![
            "inspect".into(),
            url.clone(),
            "--timeout".into(),
            "2".into(),
        ],
        vec![
            "inspect".into(),
            "--json".into(),
            url.clone(),
            "--timeout".into(),
            "2".into(),
        ],
        vec![
            "inspect".into(),
            redis.clone(),
            "--timeout".into(),
            "2".into(),
        ],
        vec![
            "inspect".into(),
            format!("postgres://u:{PW}@127.0.0.1:1/db?sslmode=verify_full"),
        ],
        vec![
            "inspect".into(),
            format!("postgres://u:{PW}@127.0.0.1:1/db?sslcert=x"),
        ],
        vec![
            "inspect".into(),
            format!("postgres://u:{PW}@127.0.0.1:notaport/db"),
        ],
        vec![
            "diff".into(),
            rd.into(),
            url.clone(),
            "--timeout".into(),
            "2".into(),
        ],
        vec!["diff".into(), url.clone(), url.clone()],
        vec![
            "apply".into(),
            rd.into(),
            url.clone(),
            "--yes".into(),
            "--timeout".into(),
            "2".into(),
        ],
        vec!["apply".into(), url.clone(), rd.into()],
        vec![
            "bench".into(),
            "--config".into(),
            format!("mine={url}"),
            "--runs".into(),
            "1".into(),
        ],
        vec!["render".into(), "--ram".into(), url.clone()],
        vec!["detect".into(), "--data-dir".into(), url.clone()],
    ];
    for args in runs {
        // A URL given as --out is a path: keep what it writes out of the checkout.
        let o = dbtune()
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!all.contains(PW), "{args:?} printed the password:\n{all}");
    }
    // From the environment too.
    let o = dbtune()
        .args(["inspect", "--timeout", "2"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .env("PGPASSWORD", PW)
        .env("REDIS_URL", &redis)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains(PW), "{all}");
}

#[test]
fn an_sslmode_typo_is_an_error_never_plain_text() {
    for bad in ["verify_full", "Verify-Full", "bogus"] {
        dbtune()
            .args([
                "inspect",
                &format!("postgres://u@127.0.0.1:1/db?sslmode={bad}"),
            ])
            .assert()
            .code(2)
            .stderr(contains("invalid sslmode").and(contains("verify-full")));
    }
    dbtune()
        .args(["inspect"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .env("PGSSLMODE", "verify_full")
        .assert()
        .code(2)
        .stderr(contains("invalid sslmode `verify_full` in PGSSLMODE"));
}

// --- against real servers -------------------------------------------------

use crate::harness::Postgres;

fn pg_url(pg: &Postgres) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    )
}

fn pg_settings(pg: &Postgres) -> std::collections::BTreeMap<String, String> {
    pg.psql(
        "postgres",
        "postgres",
        "SELECT name, setting FROM pg_settings",
    )
    .lines()
    .filter_map(|l| l.split_once('|'))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A directory holding just these files.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn apply_refuses_full_page_writes_off_on_a_cluster_not_on_zfs() {
    let pg = Postgres::start("", &[]);
    let dir = dir_with(&[(
        "postgresql.conf",
        "full_page_writes = off\nwork_mem = 8MB\n",
    )]);
    let before = pg_settings(&pg);
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB"])
        .assert()
        .code(1)
        .stderr(contains("torn page").and(contains("nothing was changed")))
        .stderr(contains("detected: the server's data_directory"));
    assert_eq!(pg_settings(&pg), before);
    // Neither a flag nor a facts file claiming ZFS beats what detection
    // sees of a server on this machine; the flag is said to be unused.
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--filesystem", "zfs"])
        .assert()
        .code(1)
        .stderr(contains("torn page").and(contains("nothing was changed")))
        .stderr(contains("--filesystem zfs is not used"));
    // A facts file of a host whose data is on ZFS (as the ZFS render
    // tests above use it).
    let facts_dir = tempfile::tempdir().unwrap();
    let facts = facts_of("no-cgroup-zfs", None, facts_dir.path());
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--facts"])
        .arg(&facts)
        .assert()
        .code(1)
        .stderr(contains("torn page").and(contains("nothing was changed")));
    assert_eq!(pg_settings(&pg), before);
}

fn free_huge_pages() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn apply_refuses_huge_pages_on_when_this_host_has_too_few() {
    let pg = Postgres::start("", &[]);
    // More shared memory than this machine has huge pages for, reserved
    // (on paper) in the directory's own sysctl file.
    let sb = free_huge_pages() * 2 + 512;
    let dir = dir_with(&[
        (
            "postgresql.conf",
            &format!("huge_pages = on\nshared_buffers = {sb}MB\n"),
        ),
        ("99-dbtune.conf", "vm.nr_hugepages = 1000000\n"),
    ]);
    let before = pg_settings(&pg);
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "4TiB"])
        .assert()
        .code(1)
        .stderr(contains("huge_pages = on needs about").and(contains("would not start")))
        .stderr(contains("/proc/meminfo").or(contains("/sys/kernel/mm/hugepages")));
    assert_eq!(pg_settings(&pg), before);
}

fn only_snapshot(dir: &Path) -> PathBuf {
    let mut snaps: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    snaps.pop().unwrap()
}

#[test]
fn rollback_with_the_server_down_restores_postgresql_auto_conf() {
    let mut pg = Postgres::start("", &[]);
    let before = pg_settings(&pg);
    let dir = dir_with(&[(
        "postgresql.conf",
        "shared_buffers = 256MB\nwork_mem = 8MB\nmax_connections = 50\n",
    )]);
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success()
        .stdout(contains("--data-dir PGDATA"));
    let snap = only_snapshot(snaps.path());
    let data = pg.data_dir();

    // While it runs, the offline rollback refuses.
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .code(2)
        .stderr(contains("PostgreSQL is running"));

    // The server goes down and cannot come back: say a restart-only value
    // went wrong (7 TB of shared memory on this machine).
    pg.stop();
    let auto = data.join("postgresql.auto.conf");
    let text = fs::read_to_string(&auto).unwrap();
    fs::write(&auto, text.replace("'256MB'", "'7TB'")).unwrap();
    assert!(pg.start_again().is_err(), "the server should not start");
    // Online rollback has nothing to talk to.
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &pg_url(&pg), "--timeout", "3"])
        .assert()
        .code(2)
        .stderr(contains("cannot connect"));
    // Offline: a dry run first, then for real.
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .assert()
        .success()
        .stdout(contains("dry run"));
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .success()
        .stdout(contains("restored the values"));
    pg.start_again()
        .expect("the server starts after the offline rollback");
    assert_eq!(pg_settings(&pg), before);
}

#[test]
fn offline_rollback_creates_a_missing_auto_conf_the_server_reads() {
    let mut pg = Postgres::start("", &[]);
    // postgresql.auto.conf holds a value before apply: the snapshot records it.
    pg.psql("postgres", "postgres", "ALTER SYSTEM SET work_mem = '3MB'");
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    let dir = dir_with(&[("postgresql.conf", "work_mem = 8MB\n")]);
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success();
    let snap = only_snapshot(snaps.path());
    pg.stop();
    let data = pg.data_dir();
    let auto = data.join("postgresql.auto.conf");
    fs::remove_file(&auto).unwrap();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .success()
        .stdout(contains("restored the values"));
    use std::os::unix::fs::MetadataExt;
    let (made, cluster) = (fs::metadata(&auto).unwrap(), fs::metadata(&data).unwrap());
    assert_eq!(
        (made.uid(), made.gid(), made.mode() & 0o777),
        (cluster.uid(), cluster.gid(), 0o600),
        "a new postgresql.auto.conf belongs to the cluster's owner"
    );
    pg.start_again()
        .expect("the server starts after the offline rollback");
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW work_mem").trim(),
        "3MB",
        "the server reads the restored value:\n{}",
        fs::read_to_string(&auto).unwrap()
    );
}

#[test]
fn a_killed_apply_leaves_no_temporary_snapshot_behind() {
    let pg = Postgres::start("", &[]);
    let dir = dir_with(&[("postgresql.conf", "work_mem = 8MB\n")]);
    let snaps = tempfile::tempdir().unwrap();
    let apply = || {
        let mut c = dbtune();
        c.arg("apply")
            .arg(dir.path())
            .arg(pg_url(&pg))
            .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
            .arg(snaps.path());
        c
    };
    let before = pg_settings(&pg);
    // Killed once the snapshot's temporary file is written.
    let killed = apply().env("DBTUNE_FAILPOINT", "tmp:1").output().unwrap();
    assert!(!killed.status.success());
    let names = |d: &Path| -> Vec<String> {
        fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let left = names(snaps.path());
    assert!(
        left.len() == 1 && left[0].starts_with(".dbtune-snapshot-tmp-"),
        "{left:?}"
    );
    assert_eq!(
        pg_settings(&pg),
        before,
        "nothing is applied before the snapshot"
    );
    apply().assert().success();
    let now = names(snaps.path());
    assert!(
        now.len() == 1 && now[0].starts_with("dbtune-snapshot-") && now[0].ends_with(".json"),
        "the leftover is removed: {now:?}"
    );
}

#[test]
fn a_snapshot_is_checked_against_its_server_and_what_apply_changed() {
    let pg = Postgres::start("", &[]);
    let other = Postgres::start("", &[]);
    let dir = dir_with(&[("postgresql.conf", "work_mem = 8MB\njit = off\n")]);
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success();
    let snap = only_snapshot(snaps.path());
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(&snap).unwrap()).unwrap();
    assert!(doc["postgres"]["system_identifier"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // Another cluster, online and offline: refused, nothing changed.
    let other_before = pg_settings(&other);
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &pg_url(&other)])
        .assert()
        .code(2)
        .stderr(contains("the snapshot was taken from cluster"));
    assert_eq!(pg_settings(&other), other_before);

    // Edited to set what apply never changes: refused before connecting.
    let edits: [(&str, serde_json::Value); 2] = [
        (
            "port",
            serde_json::json!({"name": "port", "previous_setting": "1", "previous_auto_conf": "1"}),
        ),
        (
            "listen_addresses",
            serde_json::json!({"name": "listen_addresses", "previous_setting": "*", "previous_auto_conf": "*"}),
        ),
    ];
    for (name, change) in edits {
        let mut d = doc.clone();
        d["postgres"]["changes"]
            .as_array_mut()
            .unwrap()
            .push(change);
        let f = snaps.path().join(format!("edited-{name}.json"));
        fs::write(&f, d.to_string()).unwrap();
        dbtune()
            .args(["apply", "--rollback"])
            .arg(&f)
            .args(["--yes", &pg_url(&pg)])
            .assert()
            .code(2)
            .stderr(contains(format!(
                "sets `{name}`, which apply never changes"
            )));
    }
    let mut d = doc.clone();
    d["redis"] = serde_json::json!({
        "target": "redis://127.0.0.1:1", "rewrite": true,
        "changes": [{"name": "dir", "previous": "/tmp/evil"}]
    });
    let f = snaps.path().join("edited-redis.json");
    fs::write(&f, d.to_string()).unwrap();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&f)
        .arg("--yes")
        .assert()
        .code(2)
        .stderr(contains("sets Redis `dir`"));

    // The real snapshot, on its own server, works.
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &pg_url(&pg)])
        .assert()
        .success();
}

#[test]
fn a_failure_partway_through_apply_lists_what_was_applied() {
    let pg = Postgres::start("", &[]);
    // jit sorts first and is applied; lc_messages's value passes dbtune (a
    // string: the locales a host has are the host's) but the server
    // refuses it.
    let dir = dir_with(&[(
        "postgresql.conf",
        "jit = off\nlc_messages = 'xx_XX.UTF-8'\n",
    )]);
    let snaps = tempfile::tempdir().unwrap();
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .code(2)
        .stderr(contains("applied before the failure (").and(contains("postgres jit = off")))
        .stderr(contains("not reloaded"))
        .stderr(contains("undo with: dbtune apply --rollback"));
    // Written, not reloaded: exactly what the message says.
    let pending = pg.psql(
        "postgres",
        "postgres",
        "SELECT setting FROM pg_file_settings WHERE name = 'jit' AND sourcefile LIKE '%auto.conf'",
    );
    assert_eq!(pending.trim(), "off");
    assert_eq!(pg_settings(&pg)["jit"], "on");
}

#[test]
fn apply_and_check_budget_give_the_same_verdict_for_the_same_directory() {
    let pg = Postgres::start("", &[]);
    let dir = tempfile::tempdir().unwrap();
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--pg-version",
            &harness::pg_major().to_string(),
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success();
    // 3 GiB: fits only if the profile's 1.75 GiB of applications are forgotten.
    for (ram, code) in [("3GiB", 1), ("4GiB", 0)] {
        dbtune()
            .args(["check-budget", "--ram", ram])
            .arg(dir.path())
            .assert()
            .code(code);
        let a = dbtune()
            .arg("apply")
            .arg(dir.path())
            .arg(pg_url(&pg))
            .args(["--ram", ram])
            .assert()
            .code(code);
        if code == 1 {
            let err = stderr_of(&a);
            assert!(
                err.contains("would not fit") && err.contains("nothing was changed"),
                "{err}"
            );
            assert!(
                err.contains("[[reserve]]"),
                "the reservations are counted: {err}"
            );
        }
    }
}

// --- secrets: every place a value can come from ---------------------------

/// Everything a command printed, on both streams.
fn both(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_hidden(what: &str, out: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!out.contains(s), "{what} printed `{s}`:\n{out}");
    }
}

/// redis-cli as a client that knows the password.
fn redis_auth(r: &harness::Redis, pw: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(harness::need("redis-cli"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &r.port.to_string(),
            "--no-auth-warning",
            "-a",
            pw,
        ])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Passwords in committed files and on live servers: diff, apply (dry run
/// and --yes), inspect and check-budget in every format show none of them,
/// JSON stays valid, apply leaves authentication alone and says so, and
/// the snapshot it writes holds no credential.
#[test]
fn credentials_in_files_and_on_servers_never_reach_output_or_snapshots() {
    const LIVE_PW: &str = "LiveRedisPw_913";
    const LIVE_MASTER: &str = "LiveMasterPw_914";
    const CONN_PW: &str = "Conn Pw_888";
    const FILE_PW: &[&str] = &[
        "FileReqPw_1",
        "FileReqPw_2",
        "FileMasterPw_3",
        "UrlPw_4",
        "KvPw_5",
    ];
    let pg = Postgres::start(
        "primary_conninfo = 'host=10.9.9.9 user=rep password = ''Conn Pw_888'''\n",
        &[],
    );
    let r = harness::Redis::start("save \"\"\n", &[]);
    assert!(r
        .cmd(&["CONFIG", "SET", "masterauth", LIVE_MASTER])
        .contains("OK"));
    assert!(r
        .cmd(&["CONFIG", "SET", "requirepass", LIVE_PW])
        .contains("OK"));
    let dir = dir_with(&[
        (
            "postgresql.conf",
            "work_mem = 8MB\n\
             primary_conninfo = 'postgresql://rep:UrlPw_4@primary:5432/db'\n\
             primary_conninfo = 'host=primary password=KvPw_5 user=rep'\n",
        ),
        (
            "redis.conf",
            "maxmemory 64mb\nmaxmemory-policy noeviction\n\
             requirepass FileReqPw_1\nrequirepass FileReqPw_2\nmasterauth FileMasterPw_3\n",
        ),
    ]);
    let redis_url = format!("redis://:{LIVE_PW}@127.0.0.1:{}", r.port);
    let mut secrets: Vec<&str> = vec![LIVE_PW, LIVE_MASTER, CONN_PW, "Pw_888"];
    secrets.extend(FILE_PW);
    let snapshots = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let sd = snapshots.path().to_str().unwrap().to_string();
    let runs: Vec<Vec<&str>> = vec![
        vec!["diff", &d],
        vec!["diff", &d, "--json"],
        vec!["inspect"],
        vec!["inspect", "--json"],
        vec!["apply", &d, "--ram", "8GiB"],
        vec!["apply", &d, "--ram", "8GiB", "--yes", "--snapshot-dir", &sd],
    ];
    let pg = pg_url(&pg);
    for args in &runs {
        let o = dbtune()
            .args(args)
            .args([pg.as_str(), redis_url.as_str()])
            .output()
            .unwrap();
        let all = both(&o);
        assert_hidden(&format!("{args:?}"), &all, &secrets);
        if args.contains(&"--json") {
            serde_json::from_slice::<serde_json::Value>(&o.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{all}"));
        }
        if args[0] == "apply" {
            assert!(
                all.contains("redis requirepass: holds a credential; apply never changes authentication settings"),
                "{args:?}:\n{all}"
            );
            assert!(
                all.contains("postgres primary_conninfo: holds a credential"),
                "{all}"
            );
        }
    }
    // apply changed maxmemory and work_mem, not the password: the old one
    // still opens the door.
    assert_eq!(
        redis_auth(&r, LIVE_PW, &["CONFIG", "GET", "maxmemory"])
            .lines()
            .nth(1),
        Some("67108864")
    );
    assert_eq!(redis_auth(&r, LIVE_PW, &["PING"]).trim(), "PONG");
    let snap = fs::read_to_string(only_snapshot(snapshots.path())).unwrap();
    assert_hidden("the snapshot", &snap, &secrets);
    assert!(
        snap.contains("maxmemory") && !snap.contains("requirepass"),
        "{snap}"
    );
    // check-budget of the same files, in every format.
    for format in ["text", "json", "github"] {
        let o = dbtune()
            .args(["check-budget", "--ram", "8GiB", "--format", format, &d])
            .output()
            .unwrap();
        let all = both(&o);
        assert_hidden(&format!("check-budget --format {format}"), &all, &secrets);
        assert!(
            all.contains("is set again"),
            "{format}: the duplicate is reported:\n{all}"
        );
        if format == "json" {
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
        }
    }
}

/// A snapshot an older dbtune wrote with a Redis password in it: rollback
/// restores the rest (maxmemory) and says it left the credential alone.
#[test]
fn an_old_snapshot_holding_a_credential_still_restores_the_rest() {
    let r = harness::Redis::start("save \"\"\nmaxmemory 32mb\n", &[]);
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("old.json");
    fs::write(
        &snap,
        format!(
            r#"{{"dbtune_version":"0.1.0","created_unix":1,"postgres":null,
               "redis":{{"target":"redis://127.0.0.1:{p}","host_port":"127.0.0.1:{p}","rewrite":false,
               "changes":[{{"name":"requirepass","previous":"OldPw_77","applied":"NewPw_78"}},
                          {{"name":"maxmemory","previous":"16777216","applied":"33554432"}}]}}}}"#,
            p = r.port
        ),
    )
    .unwrap();
    let o = dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &format!("redis://127.0.0.1:{}", r.port)])
        .output()
        .unwrap();
    let all = both(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert_hidden("rollback", &all, &["OldPw_77", "NewPw_78"]);
    assert!(
        all.contains("redis requirepass: the snapshot records a credential"),
        "{all}"
    );
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "maxmemory"]).lines().nth(1),
        Some("16777216")
    );
    assert_eq!(r.cmd(&["PING"]).trim(), "PONG", "no password was set");
}

/// A snapshot that records nothing restores nothing, and says so.
#[test]
fn an_empty_snapshot_is_refused_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("empty.json");
    fs::write(
        &snap,
        r#"{"dbtune_version":"0.1.0","created_unix":1,"postgres":null,"redis":null}"#,
    )
    .unwrap();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", "redis://127.0.0.1:1"])
        .assert()
        .code(2)
        .stderr(contains("records no change to restore").and(contains("nothing was changed")));
}

/// A rollback that fails partway says what it had already restored, and
/// how to finish; a setting apply never reached (it still runs its old
/// value) is not reported as "changed since apply".
#[test]
fn a_rollback_that_fails_partway_says_what_it_restored() {
    let pg = Postgres::start("", &[]);
    let sysid = pg.psql(
        "postgres",
        "postgres",
        "SELECT system_identifier FROM pg_control_system()",
    );
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("partial.json");
    // work_mem was set by apply; random_page_cost never was (the server
    // still runs its previous 4); the third name is unknown to the server.
    pg.psql("postgres", "postgres", "ALTER SYSTEM SET work_mem = '16MB'");
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    fs::write(
        &snap,
        format!(
            r#"{{"dbtune_version":"0.1.0","created_unix":1,"redis":null,
               "postgres":{{"target":"postgres://postgres@127.0.0.1:{p}/postgres","host_port":"127.0.0.1:{p}",
               "system_identifier":"{sysid}","data_directory":null,
               "changes":[{{"name":"work_mem","previous_setting":"4MB","previous_auto_conf":null,"applied":"16MB"}},
                          {{"name":"random_page_cost","previous_setting":"4","previous_auto_conf":null,"applied":"1.1"}},
                          {{"name":"no_such_parameter_here","previous_setting":"1","previous_auto_conf":"1","applied":"2"}}]}}}}"#,
            p = pg.port,
            sysid = sysid.trim()
        ),
    )
    .unwrap();
    let o = dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .args(["--yes", &pg_url(&pg)])
        .output()
        .unwrap();
    let all = both(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("applied before the failure"), "{all}");
    assert!(all.contains("postgres work_mem reset"), "{all}");
    assert!(all.contains("postgres random_page_cost reset"), "{all}");
    assert!(all.contains("run the same rollback again"), "{all}");
    assert!(
        !all.contains("random_page_cost was changed since apply"),
        "{all}"
    );
}

/// Masking never rewrites what it was not asked to: a password that is a
/// common word or JSON punctuation changes nothing in the output.
#[test]
fn a_password_that_is_a_common_word_does_not_corrupt_output() {
    let dir = tempfile::tempdir().unwrap();
    dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let run = |pw: Option<&str>| {
        let mut c = dbtune();
        c.args(["check-budget", "--format", "json"]).arg(dir.path());
        if let Some(pw) = pw {
            c.env("PGPASSWORD", pw);
        }
        c.output().unwrap()
    };
    let plain = run(None);
    for pw in ["on", "\",", "PostgreSQL", "1"] {
        let o = run(Some(pw));
        assert_eq!(
            o.stdout, plain.stdout,
            "PGPASSWORD={pw:?} changed the report"
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    }
}

/// A redis.conf that includes a .env file: the GitHub annotations (which
/// land in a CI log a pull request can read) never echo the token.
#[test]
fn a_dotenv_included_from_redis_conf_never_reaches_the_ci_log() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    fs::write(
        &env,
        "secret_token=ghp_abcdefSECRET123\nDB_PASSWORD=hunter2hunter2\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("redis.conf"),
        format!("maxmemory 64mb\ninclude {}\n", env.display()),
    )
    .unwrap();
    for format in ["github", "text", "json"] {
        let o = dbtune()
            .args(["check-budget", "--ram", "4GiB", "--format", format])
            .arg(dir.path().join("redis.conf"))
            .output()
            .unwrap();
        let all = both(&o);
        assert_hidden(format, &all, &["ghp_abcdefSECRET123", "hunter2hunter2"]);
        assert!(
            all.contains("secret_token=..."),
            "{format}: the line is still reported:\n{all}"
        );
    }
}

/// ANSI escapes and window-title sequences in a config value or a name
/// reach the terminal as visible escapes, never as control characters.
#[test]
fn control_characters_from_files_are_printed_as_escapes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("redis.conf"),
        "maxmemory 64mb\nmaxmemory-policy \"\\x1b]0;pwned\\x07\"\n\"evil\\x1b[2J\" yes\n",
    )
    .unwrap();
    for format in ["text", "github"] {
        let o = dbtune()
            .args(["check-budget", "--ram", "4GiB", "--format", format])
            .arg(dir.path().join("redis.conf"))
            .output()
            .unwrap();
        let all = both(&o);
        assert!(
            !all.contains('\x1b') && !all.contains('\x07'),
            "{format}:\n{all:?}"
        );
        assert!(
            all.contains("\\u{1b}"),
            "{format}: the escape is shown:\n{all}"
        );
    }
}

/// A stderr that cannot be written (full disk, closed) is not a crash:
/// the exit code is the command's own, not a panic's 101. A stdout
/// closed by its reader ends dbtune quietly.
#[test]
fn unwritable_output_streams_never_panic() {
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args(["check-budget", "/nonexistent/postgresql.conf"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args(["render", "--profile", "low-memory"])
        .stderr(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    // stdout closed before dbtune writes: a reader that went away.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
        .args(["render", "--profile", "low-memory"])
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
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

/// What PostgreSQL refuses only at the next reload or restart is asked of
/// the server before apply changes anything: SSL on without its
/// certificate, a preloaded library that is not installed, a socket group
/// that does not exist.
#[test]
fn apply_refuses_settings_the_server_would_fail_on_at_reload_or_restart() {
    let pg = Postgres::start("", &[]);
    let before = pg_settings(&pg);
    for (conf, says) in [
        ("ssl = on\n", "ssl = on needs ssl_cert_file `server.crt`"),
        (
            "shared_preload_libraries = 'no_such_library_here'\n",
            "`no_such_library_here`, which is not installed",
        ),
        (
            "unix_socket_group = 'no_such_group_here'\n",
            "unix_socket_group `no_such_group_here` is not a group on this machine",
        ),
    ] {
        let dir = dir_with(&[("postgresql.conf", conf)]);
        dbtune()
            .arg("apply")
            .arg(dir.path())
            .arg(pg_url(&pg))
            .args(["--yes", "--ram", "8GiB"])
            .assert()
            .code(1)
            .stderr(contains(says).and(contains("nothing was changed")));
        assert_eq!(pg_settings(&pg), before, "{conf}");
    }
    // An installed library and an existing group pass the same check.
    let dir = dir_with(&[(
        "postgresql.conf",
        "shared_preload_libraries = 'pg_stat_statements'\nunix_socket_group = 'root'\n",
    )]);
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .arg(pg_url(&pg))
        .args(["--ram", "8GiB"])
        .assert()
        .success()
        .stdout(contains("dry run"));
}

/// A URL without a password takes it as libpq would: PGPASSWORD, else the
/// password file (PGPASSFILE or ~/.pgpass), which is skipped with a
/// warning when others may read it.
#[test]
fn a_password_comes_from_pgpassword_or_the_password_file() {
    const PW: &str = "FilePw_4242";
    let pg = Postgres::start_auth("", &[], "scram-sha-256");
    pg.psql(
        "postgres",
        "postgres",
        &format!("ALTER ROLE postgres PASSWORD '{PW}'"),
    );
    let url = pg_url(&pg);
    let inspect = || {
        let mut c = dbtune();
        c.args(["inspect", &url, "--timeout", "10"]);
        c
    };
    inspect()
        .assert()
        .code(2)
        .stderr(contains("password authentication failed").or(contains("password")));
    inspect()
        .env("PGPASSWORD", PW)
        .assert()
        .success()
        .stdout(contains("PostgreSQL"));
    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    fs::write(
        &passfile,
        format!(
            "# host:port:db:user:password\nother:1:*:*:wrong\n127.0.0.1:{}:*:postgres:{PW}\n",
            pg.port
        ),
    )
    .unwrap();
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o600)).unwrap();
    let o = inspect().env("PGPASSFILE", &passfile).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    assert_hidden("inspect", &both(&o), &[PW]);
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o644)).unwrap();
    inspect()
        .env("PGPASSFILE", &passfile)
        .assert()
        .code(2)
        .stderr(contains("has group or world access and is ignored"));
}

/// Under --root, an include that climbs out with `..` (or a link) is
/// refused at its line, and nothing outside the root is read or echoed.
#[test]
fn includes_never_leave_root() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.conf"), "work_mem = '1234kB'\n").unwrap();
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/postgresql/15/main");
    fs::create_dir_all(&etc).unwrap();
    let climb = format!(
        "{}/{}",
        "../".repeat(12),
        outside.path().join("secret.conf").display()
    );
    fs::write(
        etc.join("postgresql.conf"),
        format!("shared_buffers = 128MB\ninclude '{climb}'\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), etc.join("conf.d")).unwrap();
    let o = dbtune()
        .args(["check-budget", "--ram", "4GiB", "--root"])
        .arg(root.path())
        .arg(etc.join("postgresql.conf"))
        .output()
        .unwrap();
    let all = both(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("postgresql.conf:2") && all.contains("leads outside --root"),
        "{all}"
    );
    // A link out of the root, followed by include_dir.
    fs::write(
        etc.join("postgresql.conf"),
        "shared_buffers = 128MB\ninclude_dir 'conf.d'\n",
    )
    .unwrap();
    let o = dbtune()
        .args(["check-budget", "--ram", "4GiB", "--root"])
        .arg(root.path())
        .arg(etc.join("postgresql.conf"))
        .output()
        .unwrap();
    let all = both(&o);
    assert!(all.contains("leads outside --root"), "{all}");
    assert!(!all.contains("1234kB"), "{all}");
    // Without --root the same files are read as the host would read them.
    dbtune()
        .args(["check-budget", "--ram", "4GiB"])
        .arg(etc.join("postgresql.conf"))
        .assert()
        .success();
}

/// A snapshot names what a rollback writes into postgresql.auto.conf. A
/// forged one that names `include` (or any name that is not a plain
/// parameter) would make the server read, and run, another file; one
/// that another user could have written is no proof of what apply did.
/// Both are refused, online and offline, and the file is left as it was.
#[test]
fn a_forged_or_untrusted_snapshot_is_never_restored() {
    let mut pg = Postgres::start("", &[]);
    let sysid = pg
        .psql(
            "postgres",
            "postgres",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .trim()
        .to_string();
    pg.stop();
    let data = pg.data_dir();
    let auto = data.join("postgresql.auto.conf");
    let before = fs::read_to_string(&auto).unwrap_or_default();
    let snaps = tempfile::tempdir().unwrap();
    let evil = snaps.path().join("evil.conf");
    fs::write(&evil, "archive_command = 'touch /tmp/pwned'\n").unwrap();
    let snapshot = |name: &str, value: &str| {
        serde_json::json!({
            "dbtune_version": "0.1.0",
            "created_unix": 1,
            "postgres": {
                "target": "postgres://postgres@127.0.0.1:5432/postgres",
                "host_port": "127.0.0.1:5432",
                "system_identifier": sysid,
                "data_directory": data.display().to_string(),
                "changes": [{
                    "name": name,
                    "previous_setting": "",
                    "previous_auto_conf": value,
                    "applied": "x"
                }]
            },
            "redis": null
        })
        .to_string()
    };
    let evil_path = evil.display().to_string();
    for (i, name) in [
        "include",
        "include_if_exists",
        "include_dir",
        "work_mem.",
        "a.b.c",
    ]
    .into_iter()
    .enumerate()
    {
        let snap = snaps.path().join(format!("forged-{i}.json"));
        fs::write(&snap, snapshot(name, &evil_path)).unwrap();
        fs::set_permissions(&snap, fs::Permissions::from_mode(0o600)).unwrap();
        for online in [false, true] {
            let mut c = dbtune();
            c.args(["apply", "--rollback"]).arg(&snap).arg("--yes");
            if online {
                c.arg("postgres://postgres@127.0.0.1:1/postgres");
            } else {
                c.arg("--data-dir").arg(&data);
            }
            c.assert()
                .code(2)
                .stderr(contains("which is not a parameter").and(contains(name)));
        }
    }
    assert_eq!(fs::read_to_string(&auto).unwrap_or_default(), before);

    // A genuine-looking snapshot others can write, or a link to one.
    let snap = snaps.path().join("open.json");
    fs::write(&snap, snapshot("work_mem", "8MB")).unwrap();
    fs::set_permissions(&snap, fs::Permissions::from_mode(0o666)).unwrap();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .code(2)
        .stderr(contains("is not trusted").and(contains("others can write it")));
    fs::set_permissions(&snap, fs::Permissions::from_mode(0o600)).unwrap();
    let link = snaps.path().join("link.json");
    std::os::unix::fs::symlink(&snap, &link).unwrap();
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&link)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .code(2)
        .stderr(contains("is not trusted").and(contains("symbolic link")));
    if harness::is_root() {
        std::os::unix::fs::chown(&snap, Some(65534), None).unwrap();
        dbtune()
            .args(["apply", "--rollback"])
            .arg(&snap)
            .arg("--data-dir")
            .arg(&data)
            .arg("--yes")
            .assert()
            .code(2)
            .stderr(contains("is not trusted").and(contains("owned by uid 65534")));
        std::os::unix::fs::chown(&snap, Some(0), None).unwrap();
    }
    assert_eq!(fs::read_to_string(&auto).unwrap_or_default(), before);
    // The same snapshot, trusted, restores.
    dbtune()
        .args(["apply", "--rollback"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&data)
        .arg("--yes")
        .assert()
        .success();
    assert!(fs::read_to_string(&auto)
        .unwrap()
        .contains("work_mem = '8MB'"));
}

/// A value with a control character (an ESC in log_line_prefix, in a
/// Redis string) is what the server ran: apply recorded it in its
/// snapshot, and its own rollback then refused the snapshot. The rollback
/// now restores it exactly, showing it escaped, never raw.
#[test]
fn a_value_with_a_control_character_rolls_back_and_shows_escaped() {
    let pg = Postgres::start("", &[]);
    let r = harness::Redis::start("save \"\"\n", &[]);
    pg.psql(
        "postgres",
        "postgres",
        "ALTER SYSTEM SET log_line_prefix = E'%m \\033[31m '",
    );
    pg.psql("postgres", "postgres", "SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(300));
    r.cmd(&["CONFIG", "SET", "masteruser", "a\x1b]0;x\x07b"]);
    let pg_before = pg.psql("postgres", "postgres", "SHOW log_line_prefix");
    assert!(pg_before.contains('\x1b'), "{pg_before:?}");
    let redis_before = r.cmd(&["CONFIG", "GET", "masteruser"]);
    assert!(redis_before.contains('\x1b'), "{redis_before:?}");
    let dir = dir_with(&[
        ("postgresql.conf", "log_line_prefix = '%m '\n"),
        ("redis.conf", "maxmemory 64mb\nmasteruser bob\n"),
    ]);
    let snaps = tempfile::tempdir().unwrap();
    let urls = [pg_url(&pg), format!("redis://127.0.0.1:{}", r.port)];
    dbtune()
        .arg("apply")
        .arg(dir.path())
        .args(&urls)
        .args(["--yes", "--ram", "8GiB", "--snapshot-dir"])
        .arg(snaps.path())
        .assert()
        .success();
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW log_line_prefix")
            .trim(),
        "%m"
    );
    let snap = only_snapshot(snaps.path());
    for yes in [false, true] {
        let mut c = dbtune();
        c.args(["apply", "--rollback"]).arg(&snap).args(&urls);
        if yes {
            c.arg("--yes");
        }
        let a = c.assert().success();
        let out = format!("{}{}", stdout_of(&a), stderr_of(&a));
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
        assert!(out.contains("\\u{1b}"), "{out}");
    }
    assert_eq!(
        pg.psql("postgres", "postgres", "SHOW log_line_prefix"),
        pg_before
    );
    assert_eq!(r.cmd(&["CONFIG", "GET", "masteruser"]), redis_before);
}

/// Nested include_dir multiplies: five levels of ten files, each
/// including the next level's directory, is 111,110 reads that no depth
/// limit stops. One set reads at most 10,000 files, and says where the
/// next include would have gone past it.
#[test]
fn include_fan_out_is_capped_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    for level in 1..=5 {
        let d = dir.path().join(format!("l{level}"));
        fs::create_dir(&d).unwrap();
        for i in 0..10 {
            let text = if level < 5 {
                format!("include_dir '../l{}'\n", level + 1)
            } else {
                "work_mem = '4MB'\n".to_string()
            };
            fs::write(d.join(format!("f{i}.conf")), text).unwrap();
        }
    }
    fs::write(
        dir.path().join("postgresql.conf"),
        "shared_buffers = 128MB\ninclude_dir 'l1'\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let a = dbtune()
        .current_dir(dir.path())
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            "--pg-version",
            "15",
            "postgresql.conf",
        ])
        .assert()
        .code(2)
        .stderr(contains("includes read more than 10000 files"))
        .stderr(contains("l4/f").and(contains(":1")));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{}",
        stderr_of(&a)
    );
}

/// A full pg_wal stops PostgreSQL, and max_wal_size is a soft limit: where
/// a facts file says how large pg_wal's filesystem is, render keeps
/// max_wal_size within a tenth of it, the manifest carries the size, and
/// check-budget flags a file that asks for more.
#[test]
fn max_wal_size_stays_within_the_filesystem_pg_wal_is_on() {
    let dir = tempfile::tempdir().unwrap();
    // detect measures this machine's (a fixture root's would be this
    // machine's disk too, so there it says nothing).
    let here: serde_json::Value = serde_json::from_slice(
        &dbtune()
            .args(["detect", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    let measured = &here["storage"]["wal_space"];
    assert!(measured["value"].as_u64().unwrap() > 0, "{measured}");
    assert!(
        measured["source"]
            .as_str()
            .unwrap()
            .starts_with("statvfs of /"),
        "{measured}"
    );
    let detected = facts_of("cgroup-v2-limited", None, dir.path());
    let mut facts: serde_json::Value =
        serde_json::from_slice(&fs::read(&detected).unwrap()).unwrap();
    assert!(facts["storage"].get("wal_space").is_none(), "{facts}");
    facts["storage"]["wal_space"] = serde_json::json!({
        "value": "20GiB",
        "source": "df of /var/lib/postgresql on the host"
    });
    let small = dir.path().join("small-disk.json");
    fs::write(&small, facts.to_string()).unwrap();

    let out = dir.path().join("out");
    dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "4GiB",
            "--facts",
        ])
        .arg(&small)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let conf = fs::read_to_string(out.join("postgresql.conf")).unwrap();
    assert!(conf.contains("\nmax_wal_size = 2GB\n"), "{conf}");
    assert!(conf.contains("\nmin_wal_size = 512MB\n"), "{conf}");
    assert!(
        conf.contains("a tenth of pg_wal's filesystem, 20 GiB (storage.wal_space (df of"),
        "{conf}"
    );
    // The directory judges itself by the size its manifest recorded.
    let manifest = fs::read_to_string(out.join("dbtune-manifest.json")).unwrap();
    assert!(manifest.contains("21474836480"), "{manifest}");
    dbtune()
        .args(["check-budget"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("max_wal_size").not());

    // Someone else's file: more than a tenth is a warning, the whole
    // filesystem an error.
    for (max, code, said) in [
        (
            "4GB",
            0,
            "more than a tenth of the filesystem pg_wal is on (20 GiB",
        ),
        ("24GB", 1, "as large as the filesystem pg_wal is on (20 GiB"),
    ] {
        let conf = dir.path().join(format!("postgresql-{max}.conf"));
        fs::write(&conf, format!("max_wal_size = {max}\n")).unwrap();
        let a = dbtune()
            .arg("check-budget")
            .arg(&conf)
            .arg("--facts")
            .arg(&small)
            .assert()
            .code(code);
        let text = format!("{}{}", stdout_of(&a), stderr_of(&a));
        assert!(text.contains(said), "{max}: {text}");
        assert!(
            text.contains("set max_wal_size to at most 2GB"),
            "{max}: {text}"
        );
    }
}
