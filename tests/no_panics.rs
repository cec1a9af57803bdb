//! No parser, validator or budget panics, whatever the input.

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
            let _ = findings::postgres(p, v, None, Some("13.1"));
        }
    }
    for v in dbtune::read::catalog::REDIS_VERSIONS {
        if let Some(r) = &redis {
            let _ = findings::redis(r, v);
        }
    }
    for v in dbtune::read::catalog::PGBOUNCER_VERSIONS {
        if let Some(b) = &bouncer {
            let _ = findings::pgbouncer(b, v);
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
    let _ = budget::compute(&hs, ByteSize::gib(4), "test", &[], &Assumptions::default());
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
        let _ = b.table();
    }
}
