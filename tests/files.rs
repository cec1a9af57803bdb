//! What render does to an --out directory: it writes only inside it,
//! trusts no record another user could have forged, loses no edit made
//! while it runs, removes what it no longer renders, and says all of it.
//! Each test pins one way this once went wrong (issue #19, "Files").

mod harness;

use std::fs;
use std::path::Path;

use harness::dbtune;

fn render(out: &Path, ram: &str) -> assert_cmd::Command {
    let mut c = dbtune();
    c.args(["render", "--profile", "low-memory", "--ram", ram, "--out"])
        .arg(out);
    c
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("dbtune-manifest.json")).unwrap()).unwrap()
}

// -- 13: what a manifest holds is checked --

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
