//! CloudNativePG `Cluster` manifests and Patroni files: check-budget reads
//! them (findings at the manifest's lines, the pod's limit as the RAM, the
//! image's tag as the major) and render writes them; the real PostgreSQL
//! accepts what render writes.

use crate::harness::{dbtune, fixture, whole_output, Postgres};

/// check-budget run in the fixtures' directory, so the paths in its
/// output are the file names.
fn check(args: &[&str]) -> String {
    let out = dbtune()
        .current_dir(fixture("operators"))
        .arg("check-budget")
        .args(args)
        .output()
        .unwrap();
    whole_output(&out)
}

#[test]
fn a_cluster_that_fits_its_memory_limit_passes_with_the_major_of_its_image() {
    insta::assert_snapshot!(check(&["cnpg-fits.yaml"]));
}

#[test]
fn a_cluster_over_its_memory_limit_does_not_fit_with_the_breakdown() {
    insta::assert_snapshot!(check(&["cnpg-too-small.yaml"]));
}

#[test]
fn fixed_parameters_unquoted_numbers_typos_and_huge_pages_are_found_at_their_lines() {
    insta::assert_snapshot!(check(&["cnpg-mistakes.yaml"]));
}

#[test]
fn bad_yaml_is_an_error_at_its_line_with_a_hint() {
    insta::assert_snapshot!(check(&["cnpg-bad.yaml"]));
}

#[test]
fn patroni_names_the_parameters_it_keeps_in_the_dcs_and_its_least_values() {
    insta::assert_snapshot!(check(&[
        "--ram",
        "8GiB",
        "--pg-version",
        "15",
        "patroni.yml"
    ]));
}

#[test]
fn ram_flag_wins_over_the_pods_limit() {
    let out = check(&["--ram", "16GiB", "cnpg-too-small.yaml"]);
    assert!(out.contains("of 16 GiB"), "{out}");
}

fn render(layout: &str, profile: &str, major: &str) -> String {
    let out = dbtune()
        .args(["render", "--profile", profile, "--pg-version", major])
        .args(["--layout", layout])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", whole_output(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_rendered_cluster_passes_check_budget_against_its_own_limit() {
    for profile in ["low-memory", "bulk-ingest", "powerhouse"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.yaml");
        std::fs::write(&file, render("cnpg", profile, "17")).unwrap();
        let out = dbtune()
            .args(["check-budget", "--format", "json"])
            .arg(&file)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{profile}: {v:#}");
        assert_eq!(
            v["findings"].as_array().map(Vec::len),
            Some(0),
            "{profile}: {v:#}"
        );
        assert_eq!(
            v["pg_version"], 17,
            "{profile}: the major from the image tag"
        );
    }
}

#[test]
fn a_rendered_patroni_file_passes_check_budget_on_its_host() {
    for (profile, ram) in [("low-memory", "4GiB"), ("powerhouse", "64GiB")] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("patroni.yml");
        std::fs::write(&file, render("patroni", profile, "16")).unwrap();
        // The host's sysctl file goes with it: huge pages are reserved there.
        let os = dbtune()
            .args([
                "render",
                "--profile",
                profile,
                "--pg-version",
                "16",
                "--only",
                "os",
            ])
            .output()
            .unwrap();
        assert!(os.status.success(), "{}", whole_output(&os));
        let sysctl = dir.path().join("99-dbtune.conf");
        std::fs::write(&sysctl, &os.stdout).unwrap();
        let out = dbtune()
            .args(["check-budget", "--pg-version", "16", "--ram", ram])
            .arg(&file)
            .arg(&sysctl)
            .output()
            .unwrap();
        let text = whole_output(&out);
        assert_eq!(out.status.code(), Some(0), "{profile}: {text}");
        assert!(
            text.contains("0 error(s), 0 warning(s)"),
            "{profile}: {text}"
        );
    }
}

/// The file's parameters as the operator writes them into the server's
/// configuration: `name = 'value'`.
fn as_conf(yaml: &str) -> String {
    let (s, _) = dbtune::read::operator::read_text(yaml, "file.yaml").unwrap();
    let mut conf = String::new();
    for (name, entries) in &s.entries {
        let e = entries.last().unwrap();
        conf.push_str(&format!("{name} = '{}'\n", e.value.replace('\'', "''")));
    }
    conf
}

#[test]
fn the_real_postgresql_accepts_a_rendered_clusters_and_patroni_files_parameters() {
    for (layout, major) in [
        ("cnpg", 15u32),
        ("cnpg", 17),
        ("patroni", 16),
        ("patroni", 18),
    ] {
        let yaml = render(layout, "bulk-ingest", &major.to_string());
        let conf = as_conf(&yaml);
        // CloudNativePG loads pg_stat_statements itself for its settings
        // (a Patroni team lists it in shared_preload_libraries).
        let pg = Postgres::start_major(
            major,
            &conf,
            &[("shared_preload_libraries", "pg_stat_statements")],
        );
        // Every line taken, none refused, and each parameter in effect
        // from the file.
        let errors = pg.psql(
            "postgres",
            "postgres",
            "SELECT name || ': ' || error FROM pg_file_settings WHERE error IS NOT NULL",
        );
        assert_eq!(
            errors.trim(),
            "",
            "PostgreSQL {major} refused ({layout}):\n{conf}"
        );
        let (s, _) = dbtune::read::operator::read_text(&yaml, "file.yaml").unwrap();
        for name in s.entries.keys().filter(|n| !n.contains('.')) {
            let source = pg.psql(
                "postgres",
                "postgres",
                &format!("SELECT source FROM pg_settings WHERE name = '{name}'"),
            );
            assert_eq!(
                source.trim(),
                "configuration file",
                "PostgreSQL {major}: {name}"
            );
        }
    }
}

#[test]
fn a_patroni_file_under_another_name_is_known_by_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("member.conf");
    std::fs::copy(fixture("operators/patroni.yml"), &conf).unwrap();
    let out = dbtune()
        .current_dir(dir.path())
        .args([
            "check-budget",
            "--ram",
            "8GiB",
            "--pg-version",
            "15",
            "member.conf",
        ])
        .output()
        .unwrap();
    let by_content = whole_output(&out).replace("member.conf", "patroni.yml");
    assert_eq!(
        by_content,
        check(&["--ram", "8GiB", "--pg-version", "15", "patroni.yml"])
    );
}

/// What the wal_level finding says, asked of the server: with CloudNativePG's
/// archive_mode on, wal_level minimal stops PostgreSQL from starting.
#[test]
fn the_real_postgresql_refuses_wal_level_minimal_with_archiving_as_the_finding_says() {
    let bin = crate::harness::pg_server(17);
    let conf = "wal_level = 'minimal'\nmax_wal_senders = 0\narchive_mode = 'on'\n";
    match dbtune::bench::cluster::Cluster::start_in(&bin, conf, &[], "trust") {
        Ok(_) => panic!("PostgreSQL 17 started with wal_level minimal and archive_mode on"),
        Err(e) => assert!(format!("{e:#}").contains("wal_level"), "{e:#}"),
    }
    let out = check(&["cnpg-minimal.yaml"]);
    assert!(
        out.contains("cnpg-minimal.yaml:9: error: wal_level = minimal"),
        "{out}"
    );
}
