//! What users read, snapshot-tested whole: check-budget in its three
//! formats, detect on fixture hosts, profiles, render's budget table, and
//! the main error hints. A change to any line of it shows up as a snapshot
//! diff to review (`cargo insta review`, or INSTA_UPDATE=always).
//!
//! Every run reads fixtures and a facts file, never this machine, so the
//! snapshots are the same on any host.

use crate::harness;
use crate::harness::dbtune;

/// Exit code, stdout and stderr of one run in the fixtures directory, with
/// `replace` pairs applied (temp dirs, ports).
fn run(args: &[&str], replace: &[(&str, &str)]) -> String {
    let out = dbtune()
        .current_dir(harness::fixture(""))
        .args(args)
        .output()
        .unwrap();
    let mut text = format!(
        "$ dbtune {}\n{}",
        args.join(" "),
        harness::whole_output(&out)
    );
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    text
}

const STAGING: [&str; 4] = [
    "check-budget",
    "seeds/staging",
    "--facts",
    "facts/staging.toml",
];

#[test]
fn check_budget_text_that_does_not_fit() {
    // The strict gate: the staging seed's worst case is over its 4 GiB.
    insta::assert_snapshot!(run(&[&STAGING[..], &["--level", "worst"]].concat(), &[]));
}

#[test]
fn check_budget_text_at_the_default_gate() {
    // The same files at the default (busy) level: they fit, the worst
    // case is a warning, and the levels and the exposure are said.
    insta::assert_snapshot!(run(&STAGING, &[]));
}

#[test]
fn check_budget_json() {
    insta::assert_snapshot!(run(&[&STAGING[..], &["--format", "json"]].concat(), &[]));
}

#[test]
fn check_budget_github() {
    insta::assert_snapshot!(run(&[&STAGING[..], &["--format", "github"]].concat(), &[]));
}

#[test]
fn check_budget_typical_level_and_reserves() {
    insta::assert_snapshot!(run(
        &[
            &STAGING[..],
            &["--level", "typical", "--reserve", "api=512MiB"],
        ]
        .concat(),
        &[]
    ));
}

#[test]
fn check_budget_findings_with_did_you_mean() {
    insta::assert_snapshot!(run(
        &[
            "check-budget",
            "typos/postgresql.conf",
            "--facts",
            "facts/staging.toml",
        ],
        &[]
    ));
}

#[test]
fn check_budget_debian_layout_with_unbounded_redis() {
    insta::assert_snapshot!(run(
        &[
            "check-budget",
            "debian",
            "--facts",
            "facts/db1.toml",
            "--redis-version",
            "7.0",
            "--pgbouncer-version",
            "1.18",
        ],
        &[]
    ));
}

#[test]
fn detect_a_cgroup_v2_limited_host() {
    insta::assert_snapshot!(run(&["detect", "--root", "hosts/cgroup-v2-limited"], &[]));
}

#[test]
fn detect_a_cgroup_v1_limited_host_as_json() {
    insta::assert_snapshot!(run(
        &["detect", "--json", "--root", "hosts/cgroup-v1-limited"],
        &[]
    ));
}

#[test]
fn detect_zfs_data_with_wal_on_ext4() {
    insta::assert_snapshot!(run(&["detect", "--root", "hosts/zfs-data-ext4-wal"], &[]));
}

#[test]
fn profiles_text_and_json() {
    insta::assert_snapshot!(format!(
        "{}\n{}",
        run(&["profiles"], &[]),
        run(&["profiles", "--json"], &[])
    ));
}

#[test]
fn render_prints_its_budget_table() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("out");
    let dir = dir.to_str().unwrap();
    insta::assert_snapshot!(run(
        &[
            "render",
            "--profile",
            "low-memory",
            "--facts",
            "facts/staging.toml",
            "--out",
            dir,
        ],
        &[(dir, "OUT")]
    ));
}

#[test]
fn render_refuses_a_host_too_small_for_the_profile() {
    insta::assert_snapshot!(run(
        &[
            "render",
            "--profile",
            "powerhouse",
            "--ram",
            "2GiB",
            "--cpus",
            "4",
        ],
        &[]
    ));
}

#[test]
fn error_hints() {
    let cases: &[&[&str]] = &[
        &["render", "--profile", "no-such-profile"],
        &["render", "--profile", "low-memory", "--ram", "4 gigs"],
        &["render", "--profile-file", "profiles/does-not-exist.toml"],
        &["check-budget", "no/such/dir"],
        &["check-budget", "cycle/postgresql.conf", "--ram", "4GiB"],
        &[
            "check-budget",
            "missing-include",
            "--ram",
            "4GiB",
            "--pg-version",
            "15",
        ],
        &["check-budget", "seeds/staging", "--pg-version", "12"],
        &[
            "check-budget",
            "seeds/staging",
            "--format",
            "json",
            "--ram",
            "lots",
        ],
        &["detect", "--root", "no/such/root"],
    ];
    let all: Vec<String> = cases.iter().map(|args| run(args, &[])).collect();
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn check_budget_with_every_assumption_flag() {
    insta::assert_snapshot!(run(
        &[
            &STAGING[..],
            &[
                "--sorts-per-query",
                "3",
                "--busy-share",
                "0.5",
                "--manual-maintenance",
                "2",
                "--backend-memory",
                "8MiB",
                "--redis-write-rate",
                "2MiB",
            ],
        ]
        .concat(),
        &[]
    ));
}
