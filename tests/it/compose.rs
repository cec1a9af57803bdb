//! `render --layout compose`, started for real. This machine has no
//! container runtime, so the compose network is made the way a container
//! runtime makes one: two network namespaces ("db", where the servers run
//! as the containers would, and "app", a client container) joined by a
//! veth pair with addresses in one subnet, and the service name `postgres`
//! resolving to the db address there. The real PostgreSQL, PgBouncer and
//! Redis run in "db" with the rendered files; clients in "app" reach them
//! by the db namespace's address, with the password and without it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::{self, Proc};

/// The db namespace's address on the "compose network", and the app's.
const DB_ADDR: &str = "10.231.7.1";
const APP_ADDR: &str = "10.231.7.2";

/// Two network namespaces and the veth pair between them, deleted when
/// dropped (deleting a namespace deletes the veth end in it, and with it
/// the pair), even when the test fails.
struct Network {
    db: String,
    app: String,
    ip: PathBuf,
}

fn ip_ok(ip: &Path, args: &[&str]) {
    let out = Command::new(ip).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Network {
    fn new() -> Network {
        static N: AtomicU32 = AtomicU32::new(0);
        // Unique per test run and per call: parallel runs do not collide.
        let id = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ip = harness::need("ip");
        let net = Network {
            db: format!("dbtune-db-{id}"),
            app: format!("dbtune-app-{id}"),
            ip,
        };
        let ip = &net.ip;
        // Made one by one, each after the guard exists: whatever was made
        // is removed by Drop if a later step fails.
        // The compose network's name service: `ip netns exec` puts
        // /etc/netns/NAME/hosts over /etc/hosts, so in the db namespace
        // `postgres` (PgBouncer's host) is the db address, as compose's
        // DNS makes a service name the container's address.
        let etc = net.etc();
        fs::create_dir_all(&etc).unwrap();
        fs::write(
            etc.join("hosts"),
            format!("127.0.0.1 localhost\n{DB_ADDR} postgres\n"),
        )
        .unwrap();
        ip_ok(ip, &["netns", "add", &net.db]);
        ip_ok(ip, &["netns", "add", &net.app]);
        // Interface names hold at most 15 bytes: made in the db namespace,
        // where no other run's interfaces are.
        ip_ok(
            ip,
            &[
                "-n", &net.db, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", &net.app,
            ],
        );
        for (ns, addr) in [(&net.db, DB_ADDR), (&net.app, APP_ADDR)] {
            ip_ok(
                ip,
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ],
            );
            ip_ok(ip, &["-n", ns, "link", "set", "eth0", "up"]);
            ip_ok(ip, &["-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// The db namespace's files over /etc.
    fn etc(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.db)
    }

    /// `program args` run inside namespace `ns`.
    fn exec(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in [&self.db, &self.app] {
            let _ = Command::new(&self.ip).args(["netns", "del", ns]).output();
        }
        let _ = fs::remove_dir_all(self.etc());
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Root (network namespaces need it) and `ip`; under CI=true their
/// absence is a failure, elsewhere the test says why it did not run.
fn can_run() -> bool {
    if harness::ci() {
        assert!(
            harness::is_root(),
            "the compose layout test makes network namespaces: CI runs it as root"
        );
        harness::need("ip");
        return true;
    }
    if !harness::is_root() {
        eprintln!("skipped: network namespaces need root (CI=true makes this a failure)");
        return false;
    }
    true
}

#[test]
fn the_compose_layout_serves_the_network_with_passwords_only() {
    if !can_run() {
        return;
    }
    let major = harness::pg_major();
    let pg_bin = harness::need("postgres").parent().unwrap().to_path_buf();
    // The passwords, as compose would take them from the environment.
    let pg_password = format!("pg-secret-{}", std::process::id());
    let redis_password = format!("redis-secret-{}", std::process::id());

    // Render the compose layout; the passwords are in render's
    // environment, and must not reach any file it writes.
    let out_dir = tempfile::tempdir().unwrap();
    let rendered = out_dir.path().join("rendered");
    harness::dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "4GiB",
            "--cpus",
            "2",
        ])
        .args([
            "--pg-version",
            &major.to_string(),
            "--layout",
            "compose",
            "--out",
        ])
        .arg(&rendered)
        .env("POSTGRES_PASSWORD", &pg_password)
        .env("REDIS_PASSWORD", &redis_password)
        .assert()
        .success();
    let mut names: Vec<String> = fs::read_dir(&rendered)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "99-dbtune.conf",
            "dbtune-manifest.json",
            "docker-compose.yml",
            "pg_hba.conf",
            "pgbouncer.ini",
            "postgresql.conf",
            "redis.conf"
        ]
    );
    for name in &names {
        let body = fs::read_to_string(rendered.join(name)).unwrap();
        for secret in [&pg_password, &redis_password] {
            assert!(!body.contains(secret.as_str()), "{name} holds a password");
        }
    }
    let read = |f: &str| fs::read_to_string(rendered.join(f)).unwrap();
    let compose = read("docker-compose.yml");
    assert!(compose.contains("${REDIS_PASSWORD:?"), "{compose}");
    assert!(compose.contains("${POSTGRES_PASSWORD:?"), "{compose}");

    // check-budget takes the layout's files as they are: no finding about
    // listening on every interface (pg_hba.conf and the password on the
    // command line are what keep others out).
    let check = harness::dbtune()
        .args([
            "check-budget",
            "--ram",
            "4GiB",
            "--pg-version",
            &major.to_string(),
        ])
        .arg(&rendered)
        .output()
        .unwrap();
    let said = harness::whole_output(&check);
    assert!(check.status.success(), "{said}");
    assert!(said.contains("0 error(s), 0 warning(s)"), "{said}");

    let net = Network::new();

    // PostgreSQL in the db namespace, as the image runs it: the rendered
    // postgresql.conf as config_file, unchanged. What the command line
    // changes, and why: the data directory is a temp dir (the image's is
    // its PGDATA volume), hba_file is the rendered pg_hba.conf where this
    // test put it (the image mounts it at /etc/postgresql/pg_hba.conf), and
    // the socket goes to the temp dir (the image's /var/run/postgresql is
    // its own). The port stays the rendered one: the namespace has its own.
    let dir = harness::server_dir();
    let data = dir.path().join("data");
    let conf = dir.path().join("postgresql.conf");
    let hba = dir.path().join("pg_hba.conf");
    harness::write(&conf, &read("postgresql.conf"));
    harness::write(&hba, &read("pg_hba.conf"));
    let mut initdb = harness::as_postgres(&pg_bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["--no-sync", "-U", "postgres"]);
    harness::run_ok(initdb);
    let (uid, gid) = harness::postgres_ids().unwrap();
    let mut c = net.exec(&net.db, &harness::need("setpriv"));
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
    ])
    .arg(pg_bin.join("postgres"))
    .arg("-D")
    .arg(&data)
    .arg("-c")
    .arg(format!("config_file={}", conf.display()))
    .arg("-c")
    .arg(format!("hba_file={}", hba.display()))
    .arg("-c")
    .arg(format!("unix_socket_directories={}", dir.path().display()));
    let mut pg = Proc::spawn("postgres", c, dir.path().join("postgres.log"), libc::SIGINT);
    let socket = dir.path().display().to_string();
    let psql = harness::need("psql");
    let local = |sql: &str| {
        let mut c = Command::new(&psql);
        c.args([
            "-h", &socket, "-p", "5432", "-U", "postgres", "-d", "postgres",
        ])
        .args(["-XAtqw", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        c.output().unwrap()
    };
    pg.wait_until(|| local("SELECT 1").status.success());
    // The entrypoint sets the superuser's password from POSTGRES_PASSWORD
    // over the socket (local trust); stored as password_encryption says.
    let set = local(&format!("ALTER USER postgres PASSWORD '{pg_password}'"));
    assert!(set.status.success(), "{}", text(&set));

    // From the app namespace, by the db namespace's address.
    let from_app = |password: Option<&str>| {
        let mut c = net.exec(&net.app, &psql);
        c.args([
            "-h", DB_ADDR, "-p", "5432", "-U", "postgres", "-d", "postgres",
        ])
        .args(["-XAtw", "-c"])
        .arg("SELECT inet_client_addr(), current_setting('listen_addresses')");
        c.env_remove("PGPASSWORD").env("PGCONNECT_TIMEOUT", "10");
        if let Some(p) = password {
            c.env("PGPASSWORD", p);
        }
        c.output().unwrap()
    };
    let ok = from_app(Some(&pg_password));
    assert!(ok.status.success(), "{}\n{}", text(&ok), pg.log_text());
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!("{APP_ADDR}|*")
    );
    let method = local("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'");
    assert_eq!(
        String::from_utf8_lossy(&method.stdout).trim(),
        "scram-sha-256"
    );
    let wrong = from_app(Some("not-the-password"));
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("password authentication failed"),
        "{}",
        text(&wrong)
    );
    let none = from_app(None);
    assert!(!none.status.success());
    assert!(
        text(&none).contains("no password supplied"),
        "{}",
        text(&none)
    );

    // Redis in the db namespace, as the compose file starts it: the
    // rendered redis.conf and `--requirepass "$REDIS_PASSWORD"` from the
    // environment; Debian's 7.0 and the built 8.0, the releases around
    // those dbtune reads. The one line rewritten, and why: `dir /data`
    // becomes a temp dir (the image's /data is its volume; Redis changes
    // into it while reading the file, so a command-line --dir comes too
    // late). The log goes to stdout, as in the image (the file sets no
    // logfile).
    let redis_conf = read("redis.conf");
    assert_eq!(
        redis_conf.matches("\ndir /data\n").count(),
        1,
        "{redis_conf}"
    );
    let built = harness::built("redis", "8.0");
    for (server, cli) in [
        (harness::need("redis-server"), harness::need("redis-cli")),
        (built.join("redis-server"), built.join("redis-cli")),
    ] {
        redis_in(&net, &server, &cli, &redis_conf, &redis_password);
    }

    // PgBouncer in the db namespace with the rendered pgbouncer.ini: its
    // database entry names the host `postgres`, resolved as compose would.
    // What is rewritten, and why: auth_file is the user list this test
    // writes (the compose file mounts yours at the rendered path) and the
    // Unix socket goes to a temp dir (the image's is its own). The user
    // list holds the SCRAM verifier PostgreSQL stored, never the password.
    let ini = read("pgbouncer.ini");
    assert!(ini.contains("host=postgres port=5432 dbname=app"), "{ini}");
    for sql in [
        format!("CREATE USER app PASSWORD '{pg_password}'"),
        "CREATE DATABASE app OWNER app".to_string(),
    ] {
        let done = local(&sql);
        assert!(done.status.success(), "{}", text(&done));
    }
    let verifier = local("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
    let verifier = String::from_utf8_lossy(&verifier.stdout).trim().to_string();
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
    let bdir = harness::server_dir();
    let userlist = bdir.path().join("userlist.txt");
    harness::write(&userlist, &format!("\"app\" \"{verifier}\"\n"));
    let mut rewritten = String::new();
    for line in ini.lines() {
        if line.starts_with("auth_file = ") {
            rewritten.push_str(&format!("auth_file = {}\n", userlist.display()));
        } else {
            rewritten.push_str(line);
            rewritten.push('\n');
        }
    }
    rewritten.push_str(&format!("unix_socket_dir = {}\n", bdir.path().display()));
    let bini = bdir.path().join("pgbouncer.ini");
    harness::write(&bini, &rewritten);
    let mut c = net.exec(&net.db, &harness::need("setpriv"));
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
    ])
    .arg(harness::need("pgbouncer"))
    .arg(&bini);
    let mut bouncer = Proc::spawn(
        "pgbouncer",
        c,
        bdir.path().join("pgbouncer.log"),
        libc::SIGINT,
    );
    let through = |password: Option<&str>| {
        let mut c = net.exec(&net.app, &psql);
        c.args(["-h", DB_ADDR, "-p", "6432", "-U", "app", "-d", "app"])
            .args(["-XAtw", "-c", "SELECT current_user, inet_server_addr()"]);
        c.env_remove("PGPASSWORD").env("PGCONNECT_TIMEOUT", "10");
        if let Some(p) = password {
            c.env("PGPASSWORD", p);
        }
        c.output().unwrap()
    };
    bouncer.wait_until(|| text(&through(None)).contains("password"));
    let ok = through(Some(&pg_password));
    assert!(
        ok.status.success(),
        "{}\n{}\n{}",
        text(&ok),
        bouncer.log_text(),
        pg.log_text()
    );
    // PgBouncer reached PostgreSQL at the address `postgres` names.
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!("app|{DB_ADDR}")
    );
    let wrong = through(Some("not-the-password"));
    assert!(!wrong.status.success(), "{}", text(&wrong));

    // Servers stop before the namespaces go (drop order: last made, first
    // dropped, and the same when an assertion above fails).
    drop(bouncer);
    drop(pg);
}

/// `server` started in the db namespace with the compose layout's
/// redis.conf and the password from the environment; a client in the app
/// namespace gets in with it and is refused without it.
fn redis_in(net: &Network, server: &Path, cli: &Path, redis_conf: &str, password: &str) {
    let rdir = tempfile::Builder::new()
        .prefix("dbtune-redis-")
        .tempdir()
        .unwrap();
    let rconf = rdir.path().join("redis.conf");
    fs::write(
        &rconf,
        redis_conf.replace(
            "\ndir /data\n",
            &format!("\ndir {}\n", rdir.path().display()),
        ),
    )
    .unwrap();
    let mut c = net.exec(&net.db, Path::new("/bin/sh"));
    c.arg("-c")
        .arg(r#"exec "$0" "$1" --requirepass "$REDIS_PASSWORD""#)
        .arg(server)
        .arg(&rconf)
        .env("REDIS_PASSWORD", password);
    let mut redis = Proc::spawn(
        "redis-server",
        c,
        rdir.path().join("redis.log"),
        libc::SIGTERM,
    );
    let redis_cli = |args: &[&str]| {
        let mut c = net.exec(&net.app, cli);
        c.args(["-h", DB_ADDR, "-p", "6379", "--no-auth-warning"])
            .args(args);
        text(&c.output().unwrap())
    };
    redis.wait_until(|| redis_cli(&["PING"]).contains("NOAUTH"));
    let auth = ["-a", password];
    assert_eq!(
        redis_cli(&[&auth[..], &["SET", "compose", "reached"]].concat()).trim(),
        "OK",
        "{}",
        redis.log_text()
    );
    assert_eq!(
        redis_cli(&[&auth[..], &["GET", "compose"]].concat()).trim(),
        "reached"
    );
    assert_eq!(
        redis_cli(&[&auth[..], &["CONFIG", "GET", "bind"]].concat())
            .lines()
            .nth(1),
        Some("* -::*")
    );
    assert!(redis_cli(&["GET", "compose"]).contains("NOAUTH"));
    assert!(redis_cli(&["-a", "not-the-password", "GET", "compose"]).contains("WRONGPASS"));
    // The server stops before its directory goes.
    drop(redis);
}

fn render_stdout(extra: &[&str]) -> String {
    let out = harness::dbtune()
        .args([
            "render",
            "--profile",
            "low-memory",
            "--ram",
            "4GiB",
            "--cpus",
            "2",
        ])
        .args(["--pg-version", "16"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", harness::whole_output(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_compose_layout_files_whole() {
    insta::assert_snapshot!(
        "compose-low-memory",
        render_stdout(&["--layout", "compose"])
    );
}

#[test]
fn the_systemd_layout_is_the_default() {
    assert_eq!(render_stdout(&["--layout", "systemd"]), render_stdout(&[]));
}

#[test]
fn only_is_refused_with_the_compose_layout() {
    let out = harness::dbtune()
        .args(["render", "--profile", "low-memory", "--ram", "4GiB"])
        .args(["--layout", "compose", "--only", "redis"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        harness::whole_output(&out)
    );
    assert!(harness::whole_output(&out).contains("its files go together"));
}

/// low-memory as a team that deploys with compose writes it: the seed's
/// profile with `layout = "compose"`, in a file.
fn compose_profile(dir: &Path) -> PathBuf {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/low-memory.toml"))
            .unwrap()
            .replacen(
                "workload = \"web\"\n",
                "workload = \"web\"\nlayout = \"compose\"\n",
                1,
            );
    assert!(text.contains("layout = \"compose\""));
    let path = dir.join("low-memory.toml");
    harness::write(&path, &text);
    path
}

/// The files of `dir` by name, the manifest left out (it names where the
/// profile was read from).
fn files_of(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "dbtune-manifest.json")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A profile's `layout` renders what `--layout` renders: the same files,
/// the layout recorded in the manifest, and check-budget judges both
/// directories alike.
#[test]
fn a_profile_layout_renders_the_files_the_flag_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = compose_profile(tmp.path());
    let by_flag = tmp.path().join("by-flag");
    let by_profile = tmp.path().join("by-profile");
    let host = ["--ram", "4GiB", "--cpus", "2", "--pg-version", "16"];
    harness::dbtune()
        .args(["render", "--profile", "low-memory", "--layout", "compose"])
        .args(host)
        .arg("--out")
        .arg(&by_flag)
        .assert()
        .success();
    harness::dbtune()
        .args(["render", "--profile-file"])
        .arg(&profile)
        .args(host)
        .arg("--out")
        .arg(&by_profile)
        .assert()
        .success();
    let flag_files = files_of(&by_flag);
    assert!(
        flag_files.iter().any(|(n, _)| n == "docker-compose.yml"),
        "{flag_files:?}"
    );
    assert_eq!(files_of(&by_profile), flag_files);
    for dir in [&by_flag, &by_profile] {
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("dbtune-manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["layout"], "compose", "{}", dir.display());
    }
    let check = |dir: &Path| {
        let out = harness::dbtune()
            .args(["check-budget", "--ram", "4GiB", "--pg-version", "16"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", harness::whole_output(&out));
        harness::whole_output(&out).replace(&dir.display().to_string(), "DIR")
    };
    assert_eq!(check(&by_profile), check(&by_flag));
}

/// `--layout` overrides the profile's: the compose profile rendered with
/// `--layout systemd` is the seed's systemd rendering.
#[test]
fn the_layout_flag_overrides_the_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = compose_profile(tmp.path());
    let out = harness::dbtune()
        .args(["render", "--profile-file"])
        .arg(&profile)
        .args(["--ram", "4GiB", "--cpus", "2", "--pg-version", "16"])
        .args(["--layout", "systemd"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", harness::whole_output(&out));
    let systemd = String::from_utf8(out.stdout).unwrap();
    assert!(systemd.contains("postgresql.service.conf"), "{systemd}");
    assert_eq!(systemd, render_stdout(&[]));
    // The profile's compose with --only: refused, with the way out.
    let out = harness::dbtune()
        .args(["render", "--profile-file"])
        .arg(&profile)
        .args(["--ram", "4GiB", "--only", "redis"])
        .output()
        .unwrap();
    let said = harness::whole_output(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("the profile's layout compose"), "{said}");
    assert!(said.contains("--layout systemd"), "{said}");
}

/// A layout dbtune does not know is an error at its line, with the
/// layouts it knows.
#[test]
fn an_unknown_profile_layout_is_an_error_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = compose_profile(tmp.path());
    let text = fs::read_to_string(&profile)
        .unwrap()
        .replace("layout = \"compose\"", "layout = \"kubernetes\"");
    harness::write(&profile, &text);
    let out = harness::dbtune()
        .current_dir(tmp.path())
        .args(["render", "--profile-file", "low-memory.toml"])
        .output()
        .unwrap();
    insta::assert_snapshot!(harness::whole_output(&out));
}

/// redis.conf's header says where the password comes from in each layout,
/// and the sysctl file says whose kernel it is for.
#[test]
fn headers_say_what_is_true_in_each_layout() {
    let compose = render_stdout(&["--layout", "compose"]);
    let systemd = render_stdout(&[]);
    let redis = |all: &str| {
        all.split("# ==> ")
            .find(|f| f.starts_with("redis.conf <=="))
            .unwrap()
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        redis(&compose).contains("--requirepass from $REDIS_PASSWORD"),
        "{compose}"
    );
    assert!(
        !redis(&compose).contains("include /path/to/it"),
        "{compose}"
    );
    assert!(redis(&systemd).contains("include /path/to/it"), "{systemd}");
    assert!(compose.contains("For the host that runs the containers"));
    assert!(!systemd.contains("For the host that runs the containers"));
}
