//! What render does to an --out directory: it writes only inside it,
//! trusts no record another user could have forged, loses no edit made
//! while it runs, removes what it no longer renders, and says all of it.
//! Each test pins one way this once went wrong (issue #19, "Files").

use crate::harness;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::harness::dbtune;
use predicates::prelude::*;
use predicates::str::contains;

fn render(out: &Path, ram: &str) -> assert_cmd::Command {
    let mut c = dbtune();
    c.args(["render", "--profile", "low-memory", "--ram", ram, "--out"])
        .arg(out);
    c
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn sha256(data: &[u8]) -> String {
    dbtune::render::output::sha256(data)
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("dbtune-manifest.json")).unwrap()).unwrap()
}

/// Every file the manifest lists holds the hash it records.
fn assert_consistent(out: &Path) {
    for (name, hash) in manifest(out)["files"].as_object().unwrap() {
        assert_eq!(
            sha256(&fs::read(out.join(name)).unwrap()),
            hash.as_str().unwrap(),
            "{name} differs from the manifest"
        );
    }
}

/// A file as someone else would plant it: owned by the `postgres` user
/// when the tests run as root, else writable by everyone. Either way not
/// a file this user alone could have written.
fn plant(path: &Path, text: &str) {
    let _ = fs::remove_file(path);
    fs::write(path, text).unwrap();
    if harness::is_root() {
        harness::write(path, text);
    } else {
        fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The file and every backup of it, concatenated.
fn with_backups(out: &Path, file: &str) -> String {
    names_in(out)
        .into_iter()
        .filter(|n| n == file || n.starts_with(&format!("{file}.bak")))
        .map(|n| fs::read_to_string(out.join(n)).unwrap_or_default())
        .collect()
}

// -- 8: nothing written outside the directory, no record taken on trust --

#[test]
fn a_forged_journal_and_a_symlink_cannot_make_render_overwrite_a_file_outside_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let victim = dir.path().join("victim");
    fs::write(&victim, "root:x:0:0\n").unwrap();
    // Someone with write access to out/: a link to the victim, and a
    // journal that claims dbtune was writing the victim's content.
    fs::remove_file(out.join("redis.conf")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("redis.conf")).unwrap();
    plant(
        &out.join(".dbtune-pending.json"),
        &format!(
            "{{\"files\": {{\"redis.conf\": \"{}\"}}}}\n",
            sha256(b"root:x:0:0\n")
        ),
    );
    for force in [false, true] {
        let mut c = render(&out, "6GiB");
        if force {
            c.arg("--force");
        }
        c.assert()
            .code(2)
            .stderr(contains("is a symlink to").and(contains("outside")))
            .stderr(contains("nothing was written").and(contains("hint: put the file itself")));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
    }
    assert!(
        fs::read_to_string(out.join("postgresql.conf"))
            .unwrap()
            .contains("with 4 GiB of RAM"),
        "nothing was written"
    );
}

#[test]
fn a_manifest_another_user_could_have_written_proves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    // The attacker's redis.conf, and a manifest (theirs) recording its hash.
    let theirs = "bind 0.0.0.0\nprotected-mode no\n";
    fs::write(out.join("redis.conf"), theirs).unwrap();
    let mut m = manifest(&out);
    m["files"]["redis.conf"] = serde_json::json!(sha256(theirs.as_bytes()));
    plant(&out.join("dbtune-manifest.json"), &m.to_string());
    let a = render(&out, "6GiB").assert().code(2);
    let err = stderr_of(&a);
    assert!(err.contains("`redis.conf`"), "{err}");
    assert!(
        err.contains("proves nothing") && err.contains("dbtune-manifest.json"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(out.join("redis.conf")).unwrap(), theirs);
    // The same file under a trusted manifest (this user's, 0644) is dbtune's.
    fs::remove_file(out.join("dbtune-manifest.json")).unwrap();
    fs::write(out.join("dbtune-manifest.json"), m.to_string()).unwrap();
    fs::set_permissions(
        out.join("dbtune-manifest.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    render(&out, "6GiB").assert().success();
    assert_consistent(&out);
}

#[test]
fn state_files_are_never_written_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let victim = dir.path().join("victim");
    for state in ["dbtune-manifest.json", ".dbtune-pending.json"] {
        fs::write(&victim, "precious\n").unwrap();
        let _ = fs::remove_file(out.join(state));
        std::os::unix::fs::symlink(&victim, out.join(state)).unwrap();
        // The manifest is a link: no file counts as dbtune's, so --force.
        render(&out, "6GiB").arg("--force").assert().success();
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "precious\n",
            "{state}"
        );
        let m = fs::symlink_metadata(out.join("dbtune-manifest.json")).unwrap();
        assert!(m.file_type().is_file(), "{state}: the manifest is a file");
        assert!(!out.join(".dbtune-pending.json").exists(), "{state}");
        assert_consistent(&out);
        render(&out, "4GiB").assert().success();
    }
}

#[test]
fn a_link_planted_at_the_backup_name_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let mine = fs::read_to_string(out.join("redis.conf")).unwrap() + "# mine\n";
    fs::write(out.join("redis.conf"), &mine).unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("redis.conf.bak")).unwrap();
    render(&out, "6GiB")
        .arg("--force")
        .assert()
        .success()
        .stderr(contains("kept your redis.conf as").and(contains("redis.conf.bak.1")));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        fs::read_to_string(out.join("redis.conf.bak.1")).unwrap(),
        mine
    );
}

#[test]
fn a_symlink_to_a_file_inside_out_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    fs::create_dir(out.join("conf.d")).unwrap();
    fs::rename(out.join("redis.conf"), out.join("conf.d/redis.conf")).unwrap();
    std::os::unix::fs::symlink("conf.d/redis.conf", out.join("redis.conf")).unwrap();
    render(&out, "6GiB")
        .assert()
        .success()
        .stderr(contains("redis.conf is a symlink: wrote through"));
    assert!(fs::symlink_metadata(out.join("redis.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(out.join("conf.d/redis.conf"))
        .unwrap()
        .contains("6 GiB"));
    assert_consistent(&out);
}

// -- 9: an edit made while render runs is never lost, never silent --

fn append(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

#[test]
fn an_edit_made_while_render_runs_is_never_lost_nor_silent() {
    let dir = tempfile::tempdir().unwrap();
    let mut raced = 0;
    for i in 0..100u64 {
        let out = dir.path().join(format!("out{i}"));
        render(&out, "4GiB").assert().success();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dbtune"))
            .args([
                "render",
                "--profile",
                "low-memory",
                "--ram",
                "6GiB",
                "--out",
            ])
            .arg(&out)
            .env("DBTUNE_PROFILE_DIR", "/nonexistent")
            .env("DBTUNE_TEMPLATE_DIR", "/nonexistent")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // 0-30 ms after the render started, spread over the runs.
        std::thread::sleep(Duration::from_micros(i * 7919 % 30_000));
        let line = format!("# edit {i}\n");
        append(&out.join("redis.conf"), &line);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let in_file = fs::read_to_string(out.join("redis.conf"))
            .unwrap()
            .contains(&line);
        assert!(
            with_backups(&out, "redis.conf").contains(&line),
            "run {i}: the edit is lost (exit {:?}):\n{err}",
            o.status.code()
        );
        match o.status.code() {
            Some(0) => assert!(in_file, "run {i}: exit 0 but the edit is not in the file"),
            // Refused before writing: the edit was there when render looked.
            Some(2) if err.contains("not overwriting `redis.conf`") => assert!(in_file),
            Some(2) => {
                assert!(
                    err.contains("changed while dbtune was replacing")
                        && err.contains("redis.conf.bak"),
                    "run {i}: {err}"
                );
                raced += 1;
            }
            c => panic!("run {i}: exit {c:?}:\n{err}"),
        }
    }
    eprintln!("{raced} of 100 edits landed while render was replacing the file");
}

#[test]
fn with_force_a_continuous_editor_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let file = out.join("redis.conf");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let editor = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                append(&file, &format!("# line {n}\n"));
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            n
        })
    };
    for i in 0..20 {
        render(&out, if i % 2 == 0 { "6GiB" } else { "4GiB" })
            .arg("--force")
            .assert()
            .success();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let lines = editor.join().unwrap();
    assert!(lines > 100, "the editor wrote {lines} lines");
    let all = with_backups(&out, "redis.conf");
    let lost: Vec<u32> = (0..lines)
        .filter(|n| !all.contains(&format!("# line {n}\n")))
        .collect();
    assert!(lost.is_empty(), "lines lost: {lost:?}");
}

// -- 10: a re-render removes what it no longer renders --

#[test]
fn rerendering_with_fewer_services_removes_the_files_it_no_longer_renders() {
    // 8 GiB: low-memory's app connects directly once PgBouncer is gone,
    // and its 80 connections fit there (not on 4 GiB).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let full = [
        "redis.conf",
        "pgbouncer.ini",
        "redis-server.service.conf",
        "pgbouncer.service.conf",
    ];
    render(&out, "8GiB").assert().success();
    for f in full {
        assert!(out.join(f).exists(), "{f}");
    }
    let a = render(&out, "8GiB")
        .args(["--services", "postgres"])
        .assert()
        .success();
    let err = stderr_of(&a);
    assert!(
        err.contains("removed ") && err.contains("no longer rendered"),
        "{err}"
    );
    for f in full {
        assert!(!out.join(f).exists(), "{f} is left behind");
        assert!(
            manifest(&out)["files"].get(f).is_none(),
            "{f} in the manifest"
        );
    }
    assert_consistent(&out);
    dbtune().arg("check-budget").arg(&out).assert().success();
    render(&out, "8GiB")
        .args(["--services", "postgres", "--check"])
        .assert()
        .success();
}

#[test]
fn rerendering_on_ext4_after_zfs_removes_the_zfs_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |fs_type: &str| {
        let mut c = dbtune();
        c.args([
            "render",
            "--profile",
            "powerhouse",
            "--filesystem",
            fs_type,
            "--out",
        ])
        .arg(&out);
        c
    };
    run("zfs").assert().success();
    assert!(out.join("zfs-arc.conf").exists());
    run("ext4").assert().success();
    assert!(!out.join("zfs-arc.conf").exists());
    assert!(!out.join("zfs-datasets.sh").exists());
    assert_consistent(&out);
    dbtune().arg("check-budget").arg(&out).assert().success();
}

#[test]
fn a_no_longer_rendered_file_someone_edited_is_refused_then_kept_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let mine = fs::read_to_string(out.join("redis.conf")).unwrap() + "# mine\n";
    fs::write(out.join("redis.conf"), &mine).unwrap();
    let before = fs::read_to_string(out.join("postgresql.conf")).unwrap();
    render(&out, "6GiB")
        .args(["--services", "postgres"])
        .assert()
        .code(2)
        .stderr(contains("not removing `redis.conf`").and(contains("--force")));
    assert_eq!(fs::read_to_string(out.join("redis.conf")).unwrap(), mine);
    assert_eq!(
        fs::read_to_string(out.join("postgresql.conf")).unwrap(),
        before
    );
    render(&out, "6GiB")
        .args(["--services", "postgres", "--force"])
        .assert()
        .success()
        .stderr(contains("kept your redis.conf as"));
    assert!(!out.join("redis.conf").exists());
    assert_eq!(
        fs::read_to_string(out.join("redis.conf.bak")).unwrap(),
        mine
    );
    assert!(manifest(&out)["files"].get("redis.conf").is_none());
    assert_consistent(&out);
}

#[test]
fn only_limits_what_is_written_not_what_render_owns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    render(&out, "6GiB")
        .args(["--only", "postgres"])
        .assert()
        .success();
    for f in ["redis.conf", "pgbouncer.ini", "redis-server.service.conf"] {
        assert!(out.join(f).exists(), "{f}");
        assert!(manifest(&out)["files"].get(f).is_some(), "{f}");
    }
    assert_consistent(&out);
}

#[test]
fn render_check_reports_a_file_it_no_longer_renders_as_drift() {
    // 8 GiB: low-memory's app connects directly once PgBouncer is gone,
    // and its 80 connections fit there (not on 4 GiB).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "8GiB").assert().success();
    render(&out, "8GiB")
        .args(["--services", "postgres,redis", "--check"])
        .assert()
        .code(1)
        .stdout(contains("--- a/pgbouncer.ini").and(contains("+++ /dev/null")))
        .stderr(contains(
            "no longer rendered for these inputs: pgbouncer.ini",
        ));
}

// -- 11: after a killed render, --check reads the journal as render does --

#[test]
fn check_after_a_killed_render_blames_no_hand_edit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    // 4 GiB -> 5 GiB writes the journal, 6 files and the manifest: killed
    // in and after the journal, files, and the manifest.
    for point in [
        "tmp:1", "done:1", "done:2", "tmp:3", "done:4", "tmp:8", "done:8",
    ] {
        let killed = render(&out, "5GiB")
            .env("DBTUNE_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{point}: not killed");
        // Checked for another host, every file drifts; none is blamed,
        // since a plain render (which reads the journal) takes them all.
        let a = render(&out, "6GiB").arg("--check").assert().code(1);
        let err = stderr_of(&a);
        assert!(!err.contains("changed by hand"), "{point}: {err}");
        assert!(!err.contains("--force"), "{point}: {err}");
        render(&out, "6GiB").assert().success();
        render(&out, "6GiB").arg("--check").assert().success();
        render(&out, "4GiB").assert().success();
    }
}

// -- 13: what a manifest holds is checked; a backup keeps its owner --

/// An edit of a manifest's JSON.
type Edit = fn(&mut serde_json::Value);

/// The manifest of a fresh render, edited by `edit`, then check-budget.
fn check_with_manifest(edit: Edit) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let mut m = manifest(&out);
    edit(&mut m);
    fs::write(
        out.join("dbtune-manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let o = dbtune().arg("check-budget").arg(&out).output().unwrap();
    format!(
        "exit: {}\n{}",
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).replace(&out.display().to_string(), "OUT")
    )
}

#[test]
fn manifest_values_out_of_bounds_are_refused_at_their_line() {
    use serde_json::json;
    let cases: Vec<(&str, Edit)> = vec![
        ("RAM of 65 TiB", |m| m["host"]["ram"] = json!(65u64 << 40)),
        ("RAM of u64::MAX", |m| m["host"]["ram"] = json!(u64::MAX)),
        ("no CPU", |m| m["host"]["cpus"] = json!(0)),
        ("0 sorts per query", |m| {
            m["assumptions"]["sorts_per_query"] = json!(0)
        }),
        ("a busy share of -1", |m| {
            m["assumptions"]["busy_fraction_typical"] = json!(-1.0)
        }),
        ("Redis fragmentation of -5", |m| {
            m["assumptions"]["redis_frag_typical"] = json!(-5.0)
        }),
        ("a reserve name with a newline", |m| {
            m["reserves"][1]["name"] = json!("api\nhost      fake line  0 B")
        }),
        ("a reserve of 0 bytes", |m| {
            m["reserves"][0]["memory"] = json!(0)
        }),
        ("a file outside the directory", |m| {
            m["files"]["../../etc/passwd"] = json!("sha256:00")
        }),
        ("a hash that is not one", |m| {
            m["files"]["redis.conf"] = json!("md5:abc")
        }),
    ];
    let mut all = String::new();
    for (what, edit) in cases {
        let text = check_with_manifest(edit);
        assert!(text.starts_with("exit: 2\n"), "{what}: {text}");
        assert!(text.contains("dbtune-manifest.json:"), "{what}: {text}");
        assert!(text.contains("hint:"), "{what}: {text}");
        assert!(!text.contains("fake line  0 B\n"), "{what}: {text}");
        all.push_str(&format!("--- {what}\n{text}"));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn a_backup_keeps_the_owner_and_mode_of_the_file_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let conf = out.join("pgbouncer.ini");
    let mine = fs::read_to_string(&conf).unwrap() + "; mine\n";
    fs::write(&conf, &mine).unwrap();
    if harness::is_root() {
        harness::write(&conf, &mine); // owned by postgres
    }
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::metadata(&conf).unwrap();
    render(&out, "6GiB").arg("--force").assert().success();
    let bak = fs::metadata(out.join("pgbouncer.ini.bak")).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("pgbouncer.ini.bak")).unwrap(),
        mine
    );
    assert_eq!(
        (bak.uid(), bak.gid(), bak.mode() & 0o7777),
        (before.uid(), before.gid(), 0o640)
    );
    // The new file keeps them too.
    let now = fs::metadata(&conf).unwrap();
    assert_eq!(
        (now.uid(), now.gid(), now.mode() & 0o7777),
        (before.uid(), before.gid(), 0o640)
    );
}

/// Leftovers of killed runs: what dbtune wrote goes, anything else it had
/// moved aside is kept and said.
#[test]
fn a_killed_runs_leftover_is_removed_only_when_dbtune_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    render(&out, "4GiB").assert().success();
    let ours = fs::read(out.join("redis.conf")).unwrap();
    fs::write(out.join(".dbtune-tmp-redis.conf.1a2b"), &ours).unwrap();
    fs::write(
        out.join(".dbtune-tmp-redis.conf.3c4d"),
        "# an edit in flight\n",
    )
    .unwrap();
    render(&out, "6GiB")
        .assert()
        .success()
        .stderr(contains("removed temporary files an interrupted run left"))
        .stderr(contains("kept as").and(contains("redis.conf.bak")));
    assert_eq!(
        fs::read_to_string(out.join("redis.conf.bak")).unwrap(),
        "# an edit in flight\n"
    );
    assert!(names_in(&out).iter().all(|n| !n.starts_with(".dbtune")));
}
