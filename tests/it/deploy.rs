//! Hosts as they are really run: the services a host runs are a choice,
//! the budget becomes per-service limits (systemd, compose) that hold under
//! the hostile load, the PostgreSQL drop-in composes with Debian's stock
//! file, and check-budget counts the host's other processes and follows
//! the include paths of a CI checkout.

use crate::harness;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::harness::{dbtune, fixture as fx, Postgres};

const MIB: u64 = 1 << 20;

/// render into a fresh dir: (dir, stderr).
fn render(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dbtune()
        .arg("render")
        .args(args)
        .arg("--out")
        .arg(dir.path().join("conf"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    (dir, err)
}

/// The value of `key = value` in a rendered file.
fn value(file: &Path, key: &str) -> Option<String> {
    fs::read_to_string(file).unwrap().lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('\'').to_string())
    })
}

fn check_json(args: &[&str]) -> (i32, serde_json::Value) {
    harness::check_budget_json(None, args)
}

/// Worst case per service, from check-budget's JSON terms.
fn worst_by_service(v: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in v["terms"].as_array().unwrap() {
        *out.entry(t["service"].as_str().unwrap().to_string())
            .or_default() += t["worst"].as_u64().unwrap();
    }
    out
}

#[test]
fn without_pgbouncer_max_connections_is_sized_for_direct_clients() {
    // The staging profile sends its 80 app connections through PgBouncer,
    // which needs only a pool of backends; rendered without PgBouncer the
    // clients connect directly and PostgreSQL takes the profile's 100.
    let host = ["--profile", "low-memory", "--ram", "8GiB", "--cpus", "4"];
    let (full, _) = render(&host);
    let (direct, err) = render(&[&host[..], &["--only", "postgres,redis"]].concat());
    assert!(err.contains("services: postgres, redis (--only"), "{err}");
    let conns = |d: &tempfile::TempDir| {
        value(&d.path().join("conf/postgresql.conf"), "max_connections")
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(conns(&direct), 100);
    assert!(conns(&full) < 100, "{}", conns(&full));
    assert!(!direct.path().join("conf/pgbouncer.ini").exists());

    // On 3 GiB, the app's 80 do not fit beside it: without PgBouncer that
    // is refused, with the numbers and the pooler named.
    let out = dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "3GiB",
            "--cpus",
            "2",
        ])
        .args(["--only", "postgres,redis"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("for an application that connects directly: it opens 80 connections"),
        "{err}"
    );
    assert!(
        err.contains("hint: put PgBouncer in transaction mode in front"),
        "{err}"
    );
    // With no app pool stated, the connections are lowered and said.
    let (small, err) = render(&[
        "--ram",
        "1GiB",
        "--cpus",
        "2",
        "--filesystem",
        "ext4",
        "--only",
        "postgres",
    ]);
    let given = conns(&small);
    assert!(given < 100);
    assert!(
        err.contains(&format!(
            "note: max_connections: the mixed workload's 100, {given} fit"
        )),
        "{err}"
    );
}

#[test]
fn a_pool_shrunk_to_fit_is_said_on_stderr() {
    let (dir, err) = render(&["--profile", "low-memory", "--ram", "3GiB", "--cpus", "2"]);
    let pool = value(&dir.path().join("conf/pgbouncer.ini"), "default_pool_size").unwrap();
    assert!(
        err.contains(&format!(
            "note: PgBouncer pool_size: the profile asks 20, {pool} fit"
        )),
        "{err}"
    );
    // Where nothing binds, nothing is said.
    let (_, err) = render(&["--profile", "powerhouse", "--ram", "64GiB", "--cpus", "16"]);
    assert!(!err.contains("note:"), "{err}");
}

#[test]
fn services_left_out_take_no_memory() {
    let host = ["--profile", "powerhouse", "--ram", "64GiB", "--cpus", "16"];
    let (all, _) = render(&host);
    let (two, err) = render(&[&host[..], &["--services", "postgres,pgbouncer"]].concat());
    assert!(
        err.contains("services: postgres, pgbouncer (--services"),
        "{err}"
    );
    for f in ["redis.conf", "redis-server.service.conf"] {
        assert!(!two.path().join("conf").join(f).exists(), "{f}");
        assert!(all.path().join("conf").join(f).exists(), "{f}");
    }
    let compose = fs::read_to_string(two.path().join("conf/docker-compose.override.yml")).unwrap();
    assert!(!compose.contains("\n  redis:"), "{compose}");

    let budget = |d: &tempfile::TempDir| {
        let (code, v) = check_json(&[d.path().join("conf").to_str().unwrap()]);
        assert_eq!(code, 0, "{v}");
        worst_by_service(&v)
    };
    let (b_all, b_two) = (budget(&all), budget(&two));
    assert!(b_all.contains_key("redis"));
    assert!(!b_two.contains_key("redis"), "{b_two:?}");
    // The memory Redis had goes to PostgreSQL.
    assert!(b_two["postgres"] > b_all["postgres"], "{b_all:?} {b_two:?}");
}

#[test]
fn the_limits_add_up_to_the_budget_of_each_service() {
    for (profile, ram, cpus) in [
        ("low-memory", "4GiB", "2"),
        ("bulk-ingest", "32GiB", "8"),
        ("powerhouse", "64GiB", "16"),
    ] {
        let (dir, _) = render(&["--profile", profile, "--ram", ram, "--cpus", cpus]);
        let conf = dir.path().join("conf");
        let (code, v) = check_json(&[conf.to_str().unwrap()]);
        assert_eq!(code, 0, "{profile}: {v}");
        let worst = worst_by_service(&v);
        let compose = fs::read_to_string(conf.join("docker-compose.override.yml")).unwrap();
        let mut sum = 0;
        for (service, unit) in [
            ("postgres", "postgresql.service.conf"),
            ("pgbouncer", "pgbouncer.service.conf"),
            ("redis", "redis-server.service.conf"),
        ] {
            let drop_in = conf.join(unit);
            let Some(w) = worst.get(service) else {
                assert!(!drop_in.exists(), "{profile}: {unit} without {service}");
                continue;
            };
            let max: u64 = value(&drop_in, "MemoryMax").unwrap().parse().unwrap();
            let high: u64 = value(&drop_in, "MemoryHigh").unwrap().parse().unwrap();
            // The worst case, rounded up to a whole MiB.
            assert_eq!(max, w.div_ceil(MIB) * MIB, "{profile} {service}");
            assert_eq!(
                high,
                max / 10 * 9 / MIB * MIB,
                "{profile} {service} MemoryHigh"
            );
            assert!(
                compose.contains(&format!("  {service}:\n"))
                    && compose.contains(&format!("memory: {max}\n")),
                "{profile} {service}: {compose}"
            );
            sum += max;
            let nofile: u64 = value(&drop_in, "LimitNOFILE").unwrap().parse().unwrap();
            if service == "pgbouncer" {
                // A client socket and a server socket each, and some spare.
                let ini = conf.join("pgbouncer.ini");
                let clients: u64 = value(&ini, "max_client_conn").unwrap().parse().unwrap();
                assert!(nofile > clients, "{profile}: {nofile} <= {clients}");
            }
            if service == "postgres" {
                let conns: u64 = value(&conf.join("postgresql.conf"), "max_connections")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(nofile >= 1000 + conns, "{profile}: {nofile}");
            }
        }
        let services: u64 = ["postgres", "pgbouncer", "redis"]
            .iter()
            .filter_map(|s| worst.get(*s))
            .sum();
        // Each limit is its service's worst case rounded up to a MiB: they
        // add up to the budget's services within a MiB per service.
        assert!(
            sum >= services && sum - services < 3 * MIB,
            "{profile}: {sum} vs {services}"
        );
    }
}

#[test]
fn check_budget_counts_the_hosts_other_processes() {
    let conf = fx("debian/postgresql.conf");
    let (_, bare) = check_json(&["--ram", "4GiB", &conf]);
    let (_, more) = check_json(&[
        "--ram",
        "4GiB",
        &conf,
        "--profile",
        "low-memory",
        "--reserve",
        "exporters=256MiB",
    ]);
    let host = |v: &serde_json::Value| -> Vec<(String, u64, String)> {
        v["terms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["service"] == "host")
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["worst"].as_u64().unwrap(),
                    t["source"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let added = host(&more);
    assert!(
        added.contains(&("exporters".into(), 256 * MIB, "--reserve".into())),
        "{added:?}"
    );
    assert!(
        added.iter().any(|(n, w, s)| n.starts_with("API")
            && *w == 1 << 30
            && s.contains("profile low-memory")),
        "{added:?}"
    );
    let extra: u64 =
        added.iter().map(|t| t.1).sum::<u64>() - host(&bare).iter().map(|t| t.1).sum::<u64>();
    assert_eq!(
        more["worst"].as_u64().unwrap() - bare["worst"].as_u64().unwrap(),
        extra
    );
}

#[test]
fn absolute_includes_are_read_under_root_and_json_reports_every_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("checkout/etc/postgresql/15/main");
    fs::create_dir_all(etc.join("conf.d")).unwrap();
    fs::write(
        etc.join("postgresql.conf"),
        "include '/etc/postgresql/15/main/tuning.conf'\ninclude_dir '/etc/postgresql/15/main/conf.d'\n",
    )
    .unwrap();
    fs::write(etc.join("tuning.conf"), "shared_buffers = 1GB\n").unwrap();
    fs::write(etc.join("conf.d/90-late.conf"), "work_mem = 8MB\n").unwrap();
    let main = etc.join("postgresql.conf");
    let main = main.to_str().unwrap();
    let root = tmp.path().join("checkout");

    // Without --root the path is this machine's, where it is not: a
    // finding at the include line (the rest is still read), exit 2.
    let (code, v) = check_json(&["--ram", "8GiB", main]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["verdict"], "invalid");
    let missing = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("does not exist"))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        missing["at"]["file"]
            .as_str()
            .unwrap()
            .ends_with("postgresql.conf")
            && missing["at"]["line"] == 1,
        "{missing}"
    );
    assert!(
        missing["hint"].as_str().unwrap().contains("--root"),
        "{missing}"
    );

    let (code, v) = check_json(&["--ram", "8GiB", "--root", root.to_str().unwrap(), main]);
    assert_eq!(code, 0, "{v}");
    let terms = v["terms"].to_string();
    assert!(terms.contains("tuning.conf:1"), "{terms}");
    assert!(terms.contains("90-late.conf:1"), "{terms}");

    // A command line that does not parse answers in JSON too.
    let (code, v) = check_json(&["--ram", "8GiB", "--reserve", "api", main]);
    assert_eq!(code, 2);
    assert_eq!(v["verdict"], "error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NAME=SIZE"),
        "{v}"
    );
}

/// A pgbouncer.ini whose `%include`d file opens [pgbouncer]: PgBouncer
/// keeps that section open after the include, and so does dbtune.
#[test]
fn pgbouncer_include_sections_follow_pgbouncer() {
    let bin = harness::need("pgbouncer");
    let psql = harness::need("psql");
    let dir = harness::server_dir();
    let port = harness::free_port();
    let d = dir.path().display();
    harness::write(&dir.path().join("users.txt"), "\"admin\" \"x\"\n");
    harness::write(
        &dir.path().join("settings.ini"),
        "app = host=127.0.0.1 port=1\n[pgbouncer]\nmax_client_conn = 77\n",
    );
    harness::write(
        &dir.path().join("pgbouncer.ini"),
        &format!(
            "[databases]\n%include {d}/settings.ini\ndefault_pool_size = 9\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir = {d}\nauth_type = trust\nauth_file = {d}/users.txt\n\
             admin_users = admin\nlogfile = {d}/log\n"
        ),
    );
    let mut c = harness::as_postgres(&bin);
    c.arg(dir.path().join("pgbouncer.ini"));
    let mut proc = harness::Proc::spawn("pgbouncer", c, dir.path().join("out"), libc::SIGINT);
    proc.wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let mut q = std::process::Command::new(psql);
    q.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "admin",
        "-XAt",
        "-F",
        "|",
    ])
    .args(["-d", "pgbouncer", "-c", "SHOW CONFIG"]);
    let shown = harness::run_ok(q);
    let theirs = |key: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}|")))
            .map(|rest| rest.split('|').next().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(theirs("max_client_conn"), "77");
    assert_eq!(theirs("default_pool_size"), "9");

    let ours = dbtune::read::include::pgbouncer(&dir.path().join("pgbouncer.ini"), None).unwrap();
    let get = |k: &str| ours.get(k).map(|e| e.value.clone());
    assert_eq!(get("pgbouncer.max_client_conn").as_deref(), Some("77"));
    assert_eq!(get("pgbouncer.default_pool_size").as_deref(), Some("9"));
    assert_eq!(
        get("databases.app").as_deref(),
        Some("host=127.0.0.1 port=1")
    );
    drop(proc);
}

/// Debian's layout: the stock postgresql.conf (data_directory, hba_file,
/// locale, `include_dir = 'conf.d'`) plus the rendered file as a drop-in.
/// The server starts, the stock lines stay in effect and every dbtune
/// setting is the drop-in's; check-budget follows the include_dir.
#[test]
fn the_rendered_file_is_a_drop_in_for_debians_layout() {
    let mut pg = Postgres::start("", &[]);
    let major = harness::pg_major();
    pg.stop();
    let dir = pg.dir.path().to_path_buf();
    let data = pg.data_dir();
    let d = |p: &Path| p.display().to_string();
    let mut stock = String::new();
    for line in fs::read_to_string(fx("debian/postgresql.conf"))
        .unwrap()
        .lines()
    {
        let key = line.split('=').next().unwrap_or("").trim();
        let replaced = match key {
            "data_directory" => format!("data_directory = '{}'", d(&data)),
            "hba_file" => format!("hba_file = '{}'", d(&data.join("pg_hba.conf"))),
            "ident_file" => format!("ident_file = '{}'", d(&data.join("pg_ident.conf"))),
            "external_pid_file" => format!("external_pid_file = '{}'", d(&dir.join("15-main.pid"))),
            "unix_socket_directories" => format!("unix_socket_directories = '{}'", d(&dir)),
            // The snakeoil certificate is the package's, not the test's.
            "ssl" => "ssl = off".to_string(),
            _ => line.to_string(),
        };
        stock.push_str(&replaced);
        stock.push('\n');
    }
    assert!(
        stock.contains("\ninclude_dir = 'conf.d'"),
        "the stock file includes conf.d"
    );
    harness::write(&dir.join("postgresql.conf"), &stock);

    // A profile of the host: staging's, on this cluster's port.
    let profiles = tempfile::tempdir().unwrap();
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/low-memory.toml"))
            .unwrap()
            .replace("name = \"low-memory\"", "name = \"staging-here\"")
            .replace("[postgres]\n", &format!("[postgres]\nport = {}\n", pg.port));
    fs::write(profiles.path().join("staging-here.toml"), text).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = dbtune()
        .env("DBTUNE_PROFILE_DIR", profiles.path())
        .args([
            "render",
            "--profile",
            "staging-here",
            "--ram",
            "4GiB",
            "--cpus",
            "2",
        ])
        .args([
            "--pg-version",
            &major.to_string(),
            // The host runs staging's PgBouncer (the app's 80 connections go
            // through it); only PostgreSQL's file is wanted here.
            "--services",
            "postgres,pgbouncer,redis",
            "--only",
            "postgres",
            "--out",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::create_dir(dir.join("conf.d")).unwrap();
    let drop_in = dir.join("conf.d/90-dbtune.conf");
    let rendered = fs::read_to_string(out_dir.path().join("postgresql.conf")).unwrap();
    harness::write(&drop_in, &rendered);

    pg.start_again().unwrap();
    let rows = pg.psql(
        "postgres",
        "postgres",
        "SELECT lower(name), setting, coalesce(sourcefile, '') FROM pg_settings",
    );
    let shown: BTreeMap<String, (String, String)> = rows
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect();
    // The stock file's host lines are in effect.
    assert_eq!(shown["data_directory"].0, d(&data));
    assert_eq!(shown["hba_file"].0, d(&data.join("pg_hba.conf")));
    assert_eq!(shown["cluster_name"].0, "15/main");
    assert_eq!(shown["lc_messages"].0, "C.UTF-8");
    assert_eq!(shown["timezone"].0, "Etc/UTC");
    assert!(dir.join("15-main.pid").exists());
    // Every setting of the drop-in is the drop-in's.
    let mut checked = 0;
    for line in rendered.lines() {
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().to_lowercase();
        if k.starts_with('#') || k.is_empty() {
            continue;
        }
        let (_, file) = &shown[&k];
        assert_eq!(file, &d(&drop_in), "{k} is not the drop-in's");
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    assert_eq!(shown["port"].0, pg.port.to_string());

    // check-budget of the stock file checks the two together.
    let (code, v) = check_json(&["--ram", "4GiB", &d(&dir.join("postgresql.conf"))]);
    assert!(code == 0 || code == 1, "{v}");
    let files = v["terms"].to_string();
    assert!(files.contains("90-dbtune.conf:"), "{files}");
}

/// Each service in its own memory cgroup at the MemoryMax render wrote,
/// under bench/memory-honesty.sh's hostile load: no OOM kill. Needs root
/// (cgroups); a failure in CI without it.
#[test]
fn each_service_holds_within_its_rendered_limit() {
    if !harness::is_root() {
        assert!(!harness::ci(), "the cgroup test needs root in CI");
        eprintln!("skipped: the cgroup test needs root");
        return;
    }
    for p in [
        "postgres",
        "redis-server",
        "pgbouncer",
        "pgbench",
        "psql",
        "python3",
        "setpriv",
    ] {
        harness::need(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/memory-honesty.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["--profile", "low-memory", "--ram", "4GiB", "--cpus", "2"])
        .args(["--seconds", "10", "--per-service", "--json"])
        .env("DBTUNE", env!("CARGO_BIN_EXE_dbtune"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let groups = v["cgroups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["cgroup"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres", "redis", "pgbouncer"], "{v}");
    for g in groups {
        assert_eq!(g["oom_kills"], 0, "{v}");
        assert!(
            g["peak"].as_u64().unwrap() <= g["limit"].as_u64().unwrap(),
            "{v}"
        );
    }
    // The load was real: PostgreSQL's hash tables filled a good part of
    // its limit, and no query failed.
    let pg = &groups[0];
    assert!(
        pg["peak"].as_u64().unwrap() * 5 > pg["limit"].as_u64().unwrap(),
        "{v}"
    );
    let bench = v["pgbench"].as_str().unwrap();
    assert!(bench.contains("tps"), "{v}");
    assert!(
        !bench.contains("failed transactions: ") || bench.contains("failed transactions: 0 "),
        "{v}"
    );
}
