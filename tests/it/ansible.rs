//! The fleet example (examples/ansible) run by a real ansible-playbook
//! against this machine with a local connection, installing into a scratch
//! root laid out like a Debian host's /etc: `--check` installs nothing, a
//! run installs every rendered file where Debian's packages read it and
//! reloads each service once, a second run changes nothing and reloads
//! nothing, and check-budget passes on what landed.
//!
//! ansible-core comes from PyPI into the server cache
//! (scripts/fetch-ansible.sh, which .ci/run runs); without it the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{dbtune, fixture, server_cache, whole_output};

fn ansible_playbook() -> PathBuf {
    let cached = server_cache().join("ansible/bin/ansible-playbook");
    if cached.is_file() {
        return cached;
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("ansible-playbook"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "ansible-playbook is not in {} nor on the PATH (bash scripts/fetch-ansible.sh installs it; .ci/run does)",
                cached.display()
            )
        })
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A scratch root with what a Debian host with the three servers has
    /// before dbtune: the stock redis.conf and pgbouncer.ini and the
    /// directories systemd and sysctl read. PostgreSQL's directory is left
    /// to the playbook (the major comes from the facts).
    fn new() -> Fleet {
        let fleet = Fleet {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in [
            "root/etc/redis",
            "root/etc/pgbouncer",
            "root/etc/sysctl.d",
            "root/etc/modprobe.d",
            "root/etc/systemd/system",
            "ansible",
        ] {
            std::fs::create_dir_all(fleet.path(d)).unwrap();
        }
        std::fs::copy(
            fixture("debian/redis.conf"),
            fleet.path("root/etc/redis/redis.conf"),
        )
        .unwrap();
        std::fs::copy(
            fixture("debian/pgbouncer.ini"),
            fleet.path("root/etc/pgbouncer/pgbouncer.ini"),
        )
        .unwrap();
        std::fs::write(
            fleet.path("inventory.ini"),
            "[databases]\nlocalhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n",
        )
        .unwrap();
        std::fs::write(fleet.path("ansible.cfg"), "").unwrap();
        let bin = assert_cmd::cargo::cargo_bin("dbtune");
        let log = fleet.path("handlers.log");
        let log = log.display();
        let me = id("-un");
        let vars = serde_json::json!({
            "dbtune_bin": bin,
            "dbtune_local_bin": bin,
            "dbtune_hosts_dir": fleet.path("hosts"),
            "dbtune_render_dir": fleet.path("deploy"),
            "dbtune_root": fleet.path("root"),
            "dbtune_become": false,
            // Whatever the profile picked for this machine runs, the three.
            "dbtune_render_args": ["--services", "postgres,redis,pgbouncer"],
            "dbtune_owners": {"postgres": me, "redis": me, "pgbouncer": me, "system": me},
            // Each handler says it ran instead of touching this machine's services.
            "dbtune_handlers": {
                "systemd": format!("echo systemd >> '{log}'"),
                "sysctl": format!("echo sysctl >> '{log}'"),
                "postgres": format!("echo postgres {{{{ dbtune_pg_major }}}} >> '{log}'"),
                "redis": format!("echo redis >> '{log}'"),
                "pgbouncer": format!("echo pgbouncer >> '{log}'"),
            },
        });
        std::fs::write(fleet.path("vars.json"), vars.to_string()).unwrap();
        fleet
    }

    fn playbook(&self, extra: &[&str]) -> Output {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ansible/site.yml");
        let mut c = Command::new(ansible_playbook());
        c.arg("-i")
            .arg(self.path("inventory.ini"))
            .arg(site)
            .arg("-e")
            .arg(format!("@{}", self.path("vars.json").display()))
            .args(extra)
            .current_dir(self.dir.path())
            // Nothing from this user's Ansible set-up, nothing written to ~.
            .env("ANSIBLE_CONFIG", self.path("ansible.cfg"))
            .env("ANSIBLE_HOME", self.path("ansible"))
            .env("ANSIBLE_LOCAL_TEMP", self.path("ansible/tmp"))
            .env("ANSIBLE_REMOTE_TEMP", self.path("ansible/remote"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
            .env("DBTUNE_TEMPLATE_DIR", "/nonexistent/dbtune-templates")
            .env("NO_COLOR", "1");
        c.output().unwrap()
    }

    fn handlers(&self) -> String {
        std::fs::read_to_string(self.path("handlers.log")).unwrap_or_default()
    }
}

/// `changed=N` in the play recap.
fn changed(out: &Output) -> u32 {
    let text = String::from_utf8_lossy(&out.stdout);
    let recap = text
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap: {}", whole_output(out)));
    recap
        .split_whitespace()
        .find_map(|w| w.strip_prefix("changed="))
        .unwrap()
        .parse()
        .unwrap()
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fleet_example_installs_the_debian_layout_and_reloads_only_on_change() {
    let fleet = Fleet::new();
    let stock = files_under(&fleet.path("root"));

    // --check: detect, render and check run on the controller; nothing is
    // installed, no handler runs, and it says what would change.
    let out = fleet.playbook(&["--check"]);
    assert!(out.status.success(), "{}", whole_output(&out));
    assert!(changed(&out) > 0, "{}", whole_output(&out));
    assert_eq!(files_under(&fleet.path("root")), stock);
    assert_eq!(fleet.handlers(), "");
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet.path("hosts/localhost.json")).unwrap())
            .unwrap();
    assert!(facts["memory"]["physical"]["value"].as_u64().unwrap() > 0);

    // The run: every file in its place, each service's handler once.
    let out = fleet.playbook(&[]);
    assert!(out.status.success(), "{}", whole_output(&out));
    let deploy = fleet.path("deploy/localhost");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("dbtune-manifest.json")).unwrap(),
    )
    .unwrap();
    let major = manifest["host"]["pg_version"].as_u64().unwrap();
    let pg_conf = format!("etc/postgresql/{major}/main/conf.d/90-dbtune.conf");
    let mut installed = vec![
        ("postgresql.conf", pg_conf.as_str()),
        ("redis.conf", "etc/redis/dbtune.conf"),
        ("pgbouncer.ini", "etc/pgbouncer/dbtune.ini"),
        ("99-dbtune.conf", "etc/sysctl.d/99-dbtune.conf"),
        (
            "postgresql.service.conf",
            "etc/systemd/system/postgresql@.service.d/dbtune.conf",
        ),
        (
            "redis-server.service.conf",
            "etc/systemd/system/redis-server.service.d/dbtune.conf",
        ),
        (
            "pgbouncer.service.conf",
            "etc/systemd/system/pgbouncer.service.d/dbtune.conf",
        ),
    ];
    if deploy.join("zfs-arc.conf").is_file() {
        installed.push(("zfs-arc.conf", "etc/modprobe.d/zfs-arc.conf"));
    }
    for (rendered, at) in &installed {
        assert_eq!(
            std::fs::read(fleet.path("root").join(at)).unwrap_or_default(),
            std::fs::read(deploy.join(rendered)).unwrap(),
            "{at} is not the rendered {rendered}"
        );
    }
    let redis = std::fs::read_to_string(fleet.path("root/etc/redis/redis.conf")).unwrap();
    assert!(redis.ends_with("\ninclude /etc/redis/dbtune.conf\n"));
    let bouncer = std::fs::read_to_string(fleet.path("root/etc/pgbouncer/pgbouncer.ini")).unwrap();
    assert!(bouncer.ends_with("\n%include /etc/pgbouncer/dbtune.ini\n"));
    let ran = fleet.handlers();
    assert_eq!(
        ran,
        format!("systemd\nsysctl\npostgres {major}\nredis\npgbouncer\n"),
        "{}",
        whole_output(&out)
    );

    // Again: nothing changed, nothing reloaded.
    let out = fleet.playbook(&[]);
    assert!(out.status.success(), "{}", whole_output(&out));
    assert_eq!(changed(&out), 0, "{}", whole_output(&out));
    assert_eq!(fleet.handlers(), ran);

    // What landed, read as PostgreSQL, Redis and PgBouncer would (the stock
    // files with their includes), is valid and fits the host.
    let main = fleet.path(&format!("root/etc/postgresql/{major}/main/postgresql.conf"));
    std::fs::copy(fixture("debian/postgresql.conf"), &main).unwrap();
    dbtune()
        .arg("check-budget")
        .arg("--root")
        .arg(fleet.path("root"))
        .arg("--facts")
        .arg(fleet.path("hosts/localhost.json"))
        .arg(&main)
        .arg(fleet.path("root/etc/redis/redis.conf"))
        .arg(fleet.path("root/etc/pgbouncer/pgbouncer.ini"))
        .assert()
        .success();
}
