//! `dbtune bench` end to end, tiny: scratch clusters start, every config is
//! measured, the report has a ratio per config, and nothing is left behind.

mod harness;

use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn a_tiny_bench_measures_every_config_and_cleans_up() {
    if harness::need("postgres").is_none() || harness::need("pgbench").is_none() {
        return;
    }
    let before = leftovers();
    harness::dbtune()
        .args([
            "bench",
            "--profile",
            "low-memory",
            "--rows",
            "20000",
            "--streams",
            "2",
        ])
        .args([
            "--scale",
            "1",
            "--clients",
            "2",
            "--seconds",
            "1",
            "--runs",
            "2",
            "--write-seconds",
            "2",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .success()
        .stdout(contains("COPY (seconds, lower is better)").and(contains("CREATE INDEX")))
        .stdout(
            contains("2 concurrent COPY streams")
                .and(contains("pgbench TPC-B"))
                .and(contains("select-only")),
        )
        .stdout(
            contains("COPY floor: UNLOGGED, no index")
                .and(contains("pgbench TPC-B for 2 s"))
                .and(contains(
                    "checkpoints during the write run (count, fewer is better)",
                ))
                .and(contains("hash aggregate of 500 000 groups")),
        )
        .stdout(
            contains("defaults")
                .and(contains("1.00x"))
                .and(contains("pgtune-dw"))
                .and(contains("dbtune low-memory")),
        )
        .stderr(contains("[1/6] run 1: defaults"));
    assert_eq!(leftovers(), before, "scratch clusters left behind");
}

fn leftovers() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dbtune-bench-"))
        .count()
}
