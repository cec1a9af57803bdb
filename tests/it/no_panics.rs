//! No parser, validator or budget panics, whatever the input; what they
//! return keeps its promises (every finding at a line of the text, a
//! budget whose total is the sum of its terms); and the binary answers
//! such input with one of its exit codes, never a panic's 101.

use crate::harness;
use dbtune::model::Assumptions;
use dbtune::read::budget;
use dbtune::read::findings;
use dbtune::read::grammar;
use dbtune::read::settings::{HostSettings, ServiceSettings};
use dbtune::units::ByteSize;
use dbtune::version::PgVersion;
use proptest::prelude::*;

/// Text that looks enough like config to reach deep into the parsers.
fn configish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("shared_buffers".to_string()),
        Just("work_mem".to_string()),
        Just("maxmemory".to_string()),
        Just("include".to_string()),
        Just("[pgbouncer]".to_string()),
        Just("[databases]".to_string()),
        Just("%include".to_string()),
        Just("=".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("0x".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("1.5e309".to_string()),
        Just("kB".to_string()),
        Just("mb".to_string()),
        Just("pool_size=".to_string()),
        "[a-z_]{1,12}",
        "[0-9]{1,8}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

/// Every finding points at a line the text has (or at none).
fn assert_placed(found: &[findings::Finding], text: &str) {
    let lines = text.lines().count().max(1);
    for f in found {
        if let Some(at) = &f.at {
            assert!(
                (1..=lines + 1).contains(&at.line),
                "{at} in a text of {lines} lines: {f}"
            );
        }
    }
}

/// The budget adds up: the total is the sum of the terms, and no term's
/// typical case is above its worst.
fn assert_adds_up(b: &budget::Budget) {
    let worst: ByteSize = b.terms.iter().map(|t| t.worst).sum();
    let typical: ByteSize = b.terms.iter().map(|t| t.typical).sum();
    assert_eq!(b.worst, worst);
    assert_eq!(b.typical, typical);
    for t in &b.terms {
        assert!(
            t.typical <= t.worst,
            "{}: typical {} over worst {}",
            t.name,
            t.typical,
            t.worst
        );
    }
}

fn all_of(text: &str) {
    let _ = grammar::pg_items(text, "f");
    let _ = grammar::redis_items(text, "f");
    let _ = grammar::pgbouncer_items(text, "f");
    let mut os = ServiceSettings::default();
    let _ = grammar::os_conf(text, "f", &mut os);
    let pg = grammar::postgresql_conf(text, "f").ok();
    let redis = grammar::redis_conf(text, "f").ok();
    let bouncer = grammar::pgbouncer_ini(text, "f").ok();
    for v in PgVersion::all() {
        if let Some(p) = &pg {
            assert_placed(&findings::postgres(p, v, None, Some("13.1")), text);
        }
    }
    for v in dbtune::read::catalog::REDIS_VERSIONS {
        if let Some(r) = &redis {
            assert_placed(&findings::redis(r, v), text);
        }
    }
    for v in dbtune::read::catalog::PGBOUNCER_VERSIONS {
        if let Some(b) = &bouncer {
            assert_placed(&findings::pgbouncer(b, v), text);
        }
    }
    let hs = HostSettings {
        postgres: pg,
        pg_version: PgVersion::of(15),
        redis,
        pgbouncer: bouncer,
        os: Some(os),
        ..Default::default()
    };
    assert_adds_up(&budget::compute(
        &hs,
        ByteSize::gib(4),
        "test",
        &[],
        &Assumptions::default(),
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_of(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parsers_never_panic_on_config_like_text(text in configish()) {
        all_of(&text);
    }
}

fn extreme_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(i64::MAX.to_string()),
        Just(u64::MAX.to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("9223372036854775807TB".to_string()),
        Just("1e308".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

proptest! {
    /// Absurd numbers in every setting the budget multiplies.
    #[test]
    fn budget_survives_absurd_numbers(values in prop::collection::vec(extreme_number(), 12)) {
        let pg_names = [
            "max_connections", "max_worker_processes", "max_wal_senders", "autovacuum_max_workers",
            "max_parallel_workers", "work_mem", "shared_buffers", "maintenance_work_mem",
        ];
        let pg: String = pg_names.iter().zip(&values).map(|(n, v)| format!("{n} = {v}\n")).collect();
        let redis = format!("maxmemory {}\nmaxclients {}\n", values[8], values[9]);
        let bouncer = format!(
            "[databases]\napp = pool_size={} reserve_pool={}\n[pgbouncer]\nmax_client_conn = {}\n",
            values[10], values[11], values[9]
        );
        let os = format!("vm.nr_hugepages = {}\n", values[0]);
        all_of(&pg);
        let mut oss = ServiceSettings::default();
        grammar::os_conf(&os, "os", &mut oss).unwrap();
        let hs = HostSettings {
            postgres: grammar::postgresql_conf(&pg, "pg").ok(),
            pg_version: PgVersion::of(16),
            pg_build: None,
            redis: grammar::redis_conf(&redis, "r").ok(),
            pgbouncer: grammar::pgbouncer_ini(&bouncer, "b").ok(),
            os: Some(oss),
            ..Default::default()
        };
        let b = budget::compute(&hs, ByteSize::gib(4), "test", &[], &Assumptions::default());
        assert_adds_up(&b);
        assert!(b.table().contains("total"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The binary on the same kind of input, as each format: exit 0, 1 or
    /// 2, never a panic.
    #[test]
    fn check_budget_answers_every_input_with_its_exit_codes(text in configish(), which in 0usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let name = ["postgresql.conf", "redis.conf", "pgbouncer.ini"][which];
        std::fs::write(dir.path().join(name), &text).unwrap();
        let out = harness::dbtune()
            .args(["check-budget", "--ram", "4GiB", "--pg-version", "16", "--format", "json"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        let code = out.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "exit {:?}: {}", code, String::from_utf8_lossy(&out.stderr));
        // JSON on every exit, whatever the input.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
