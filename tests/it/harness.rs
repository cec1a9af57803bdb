//! Starts real servers for tests: each in its own temp dir, on a free
//! loopback port, and always stopped when its guard drops, also when the
//! test fails or panics. PostgreSQL and PgBouncer refuse to run as root, so
//! as root they run as the `postgres` user.
//!
//! A missing server or program is a failure, on every machine: `bash
//! .ci/run` installs them all. The one test that may not run everywhere
//! (zfs-fuse needs `/dev/fuse`) says so where it skips; no other test can
//! pass by not running.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The dbtune binary with nothing from the user's environment leaking in:
/// no profile or template directory, no colour, no PG* or REDIS_URL.
pub fn dbtune() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("dbtune").unwrap();
    c.env("DBTUNE_PROFILE_DIR", "/nonexistent/dbtune-profiles")
        .env("DBTUNE_TEMPLATE_DIR", "/nonexistent/dbtune-templates")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(300));
    for v in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "REDIS_URL",
    ] {
        c.env_remove(v);
    }
    c
}

/// A built-in profile by name.
pub fn builtin(name: &str) -> dbtune::profile::Profile {
    let text = dbtune::profile::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no built-in profile `{name}`"))
        .1;
    dbtune::profile::Profile::parse(text, Path::new(name)).unwrap()
}

/// The host render resolves for `p` from these flags, the profile's
/// nominal host for what they leave out (reservations follow the RAM).
pub fn host_for(
    p: &dbtune::profile::Profile,
    ram: Option<dbtune::units::ByteSize>,
    cpus: Option<u32>,
    storage: Option<dbtune::facts::StorageKind>,
    version: Option<u32>,
) -> dbtune::target::Host {
    let flags = dbtune::target::Flags {
        ram,
        cpus,
        storage,
        pg_version: version.map(dbtune::version::PgVersion::nearest),
        ..Default::default()
    };
    let purpose = dbtune::target::Purpose::Render {
        profile: p,
        facts: None,
    };
    dbtune::target::resolve(&flags, None, purpose).unwrap()
}

/// `h` with ZFS in use or not and PostgreSQL's data on it or not (the
/// dataset script with the data), whatever the profile says.
pub fn with_zfs(mut h: dbtune::target::Host, in_use: bool, data: bool) -> dbtune::target::Host {
    h.zfs = dbtune::facts::Sourced::new(in_use, "test");
    h.pg_on_zfs = dbtune::facts::Sourced::new(data, "test");
    h.zfs_datasets = data;
    h
}

/// The plan of `p` for `host`, rendered, and checked as render checks its
/// own files: a built-in profile's files always pass.
pub fn render_checked(
    p: &dbtune::profile::Profile,
    host: &dbtune::target::Host,
) -> Vec<dbtune::render::Artifact> {
    let plan = dbtune::plan::build(p, host).unwrap_or_else(|e| panic!("{e}"));
    let files = dbtune::render::render(&plan, None).unwrap();
    let report = dbtune::render::check(&plan, &files).unwrap();
    assert!(
        report.ok(),
        "{}",
        dbtune::read::report::text(&report, false)
    );
    files
}

/// A run of the binary as people read it: the exit code, stdout, stderr.
pub fn whole_output(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A path under tests/fixtures.
pub fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A program the test needs (on the PATH, in /usr/sbin, or PostgreSQL's
/// own directory); a failure when it is not installed.
pub fn need(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .chain(pg_bin_dir())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed (bash .ci/run installs it)"))
}

/// Where PostgreSQL's programs are: dbtune's own lookup.
pub fn pg_bin_dir() -> Option<PathBuf> {
    dbtune::facts::detect::postgres_bin_dir()
}

/// The bin directory of a server scripts/fetch-redis-pgbouncer.sh built
/// (`redis` or `pgbouncer`, `major.minor`); a failure when it is not.
pub fn built(what: &str, version: &str) -> PathBuf {
    let bin = server_cache().join(format!("{what}/{version}/bin"));
    assert!(
        bin.is_dir(),
        "{what} {version} is not built in {} (bash scripts/fetch-redis-pgbouncer.sh builds it; .ci/run does)",
        server_cache().display()
    );
    bin
}

/// Where scripts/fetch-postgres.sh caches servers: $DBTUNE_CACHE, else
/// /var/cache/dbtune as root, else ~/.cache/dbtune.
pub fn server_cache() -> PathBuf {
    dbtune::prove::server_cache()
}

/// The bin directory of a PostgreSQL major fetched by
/// scripts/fetch-postgres.sh; a failure when it is not there.
pub fn pg_server(major: u32) -> PathBuf {
    let bin = server_cache().join(format!("postgres/{major}/bin"));
    assert!(
        bin.join("postgres").is_file(),
        "PostgreSQL {major} is not in {} (bash scripts/fetch-postgres.sh fetches it; .ci/run does)",
        server_cache().display()
    );
    bin
}

pub fn pg_major() -> u32 {
    let bin = need("postgres");
    let out = Command::new(bin).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// (uid, gid) of the `postgres` user when running as root.
pub fn postgres_ids() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "running as root needs a `postgres` user (the postgresql package makes it)"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// A temp dir the postgres user can write to.
pub fn server_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("dbtune-test-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    if let Some((uid, gid)) = postgres_ids() {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    dir
}

/// A directory the postgres user owns when we are root.
pub fn chown_postgres(path: &Path) {
    if let Some((uid, gid)) = postgres_ids() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

pub fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    if let Some((uid, gid)) = postgres_ids() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// A command that runs as the postgres user when we are root.
pub fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = postgres_ids() {
        c.uid(uid).gid(gid);
        c.env("HOME", "/var/lib/postgresql");
    }
    c
}

pub fn run(mut c: Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    out
}

/// A new data directory (`DIR/data`) initdb'd by PostgreSQL `major`,
/// with that major's binaries.
pub fn initdb(major: u32) -> (PathBuf, TempDir) {
    let bin = pg_server(major);
    let dir = server_dir();
    let mut c = as_postgres(&bin.join("initdb"));
    c.arg("-D")
        .arg(dir.path().join("data"))
        .args(["--no-sync", "-U", "postgres"]);
    run_ok(c);
    (bin, dir)
}

/// Waits for a child started with `spawn` and asserts it succeeded.
pub fn run_ok_child(c: Child) -> String {
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run_ok(c: Command) -> String {
    let desc = format!("{c:?}");
    let out = run(c);
    assert!(
        out.status.success(),
        "{desc} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server process that is stopped when dropped: `signal` first, then
/// SIGKILL if it has not exited within 15 seconds; and killed by the
/// kernel when the test that started it dies without dropping it.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
    signal: i32,
}

impl Proc {
    pub fn spawn(name: &'static str, mut c: Command, log: PathBuf, signal: i32) -> Proc {
        // A test process killed outright (SIGKILL, a CI timeout) runs no
        // Drop: the kernel stops the server when the thread that started
        // it is gone.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let f = fs::File::create(&log).unwrap();
        c.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name,
            log,
            signal,
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds; panics with the server's log if it exits
    /// or takes longer than 60 s.
    pub fn wait_until(&mut self, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!("{} not ready after 60 s:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: sending a signal to our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, self.signal);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A PostgreSQL cluster made by initdb in a temp dir, listening on
/// 127.0.0.1 and a socket in that dir only: dbtune's own scratch cluster
/// (the one `dbtune bench` uses), stopped and removed when dropped.
pub struct Postgres(dbtune::bench::cluster::Cluster);

impl std::ops::Deref for Postgres {
    type Target = dbtune::bench::cluster::Cluster;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Postgres {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Postgres {
    /// Starts a new cluster with `conf` as its postgresql.conf and the
    /// given overrides appended (port, address and socket always are).
    pub fn start(conf: &str, overrides: &[(&str, &str)]) -> Postgres {
        Postgres::start_auth(conf, overrides, "trust")
    }

    /// As `start`, with `host_auth` for TCP connections (local socket
    /// connections stay trusted, for the test's own psql).
    pub fn start_auth(conf: &str, overrides: &[(&str, &str)], host_auth: &str) -> Postgres {
        need("postgres");
        match dbtune::bench::cluster::Cluster::start_with(conf, overrides, host_auth) {
            Ok(c) => Postgres(c),
            Err(e) => panic!("cannot start PostgreSQL: {e:#}"),
        }
    }

    /// A cluster of PostgreSQL `major` from the fetched servers.
    pub fn start_major(major: u32, conf: &str, overrides: &[(&str, &str)]) -> Postgres {
        let bin = pg_server(major);
        need("psql");
        match dbtune::bench::cluster::Cluster::start_in(&bin, conf, overrides, "trust") {
            Ok(c) => Postgres(c),
            Err(e) => panic!("cannot start PostgreSQL {major}: {e:#}"),
        }
    }

    /// As `start_major` (None: Debian's server), inside a cgroup of its own
    /// whose disk takes `iops` reads and `iops` writes a second, as bench's
    /// `--disk-iops` throttles a cloud volume: a WAL flush (a write and a
    /// cache flush) then takes about 2 / `iops` seconds. Needs root and
    /// cgroup v1's blkio controller or v2's io one, as bench does.
    pub fn start_throttled(major: Option<u32>, conf: &str, iops: u64) -> Postgres {
        use dbtune::bench::cgroup::{disk_of, Cgroup, DiskLimit, Throttle};
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let bin = match major {
            Some(m) => pg_server(m),
            None => {
                need("postgres");
                dbtune::bench::cluster::pg_bin_dir().unwrap()
            }
        };
        need("psql");
        let device = disk_of(&std::env::temp_dir()).expect("the temp dir is on a block device");
        let limit = DiskLimit {
            bytes_per_sec: None,
            iops: Some(iops),
        };
        // bench's own prefix: a test killed outright leaves a cgroup the
        // next bench or test removes (its PID gone).
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("dbtune-bench-{}-test{n}", std::process::id());
        let cg = Cgroup::create(
            &name,
            dbtune::units::ByteSize::gib(2),
            None,
            Some(Throttle { limit, device }),
        )
        .unwrap_or_else(|e| panic!("a disk-throttled cgroup (root, blkio or io): {e:#}"));
        match dbtune::bench::cluster::Cluster::start_limited(&bin, conf, &[], "trust", Some(cg)) {
            Ok(c) => Postgres(c),
            Err(e) => panic!("cannot start PostgreSQL in a throttled cgroup: {e:#}"),
        }
    }

    pub fn tool(&self, name: &str) -> Command {
        let mut c = self.0.client(name);
        c.env("PGCONNECT_TIMEOUT", "10");
        c
    }

    /// psql over the Unix socket as `user`, unaligned, `|`-separated.
    pub fn psql(&self, db: &str, user: &str, sql: &str) -> String {
        let mut c = self.tool("psql");
        c.args([
            "-U",
            user,
            "-d",
            db,
            "-XAtq",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        run_ok(c)
    }

    /// The postgresql.conf the server was started with (port included).
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("postgresql.conf")
    }
}

/// A redis-server on a free loopback port with its files in a temp dir.
/// Fields drop in order: the server stops before its directory goes (a
/// Redis saving on shutdown would otherwise keep the directory alive).
pub struct Redis {
    pub port: u16,
    proc: Proc,
    pub dir: TempDir,
    cli: PathBuf,
}

impl Redis {
    /// `conf` is the redis.conf; port, bind, dir, logfile and daemonize are
    /// overridden on the command line (which Redis applies after the file).
    pub fn start(conf: &str, extra: &[&str]) -> Redis {
        Redis::start_with(&need("redis-server"), &need("redis-cli"), conf, extra)
    }

    /// Redis `major.minor` built by scripts/fetch-redis-pgbouncer.sh.
    pub fn start_version(version: &str, conf: &str, extra: &[&str]) -> Redis {
        let bin = built("redis", version);
        Redis::start_with(
            &bin.join("redis-server"),
            &bin.join("redis-cli"),
            conf,
            extra,
        )
    }

    pub fn start_with(server: &Path, cli: &Path, conf: &str, extra: &[&str]) -> Redis {
        let (server, cli) = (server.to_path_buf(), cli.to_path_buf());
        let dir = tempfile::Builder::new()
            .prefix("dbtune-redis-")
            .tempdir()
            .unwrap();
        let conf_path = dir.path().join("redis.conf");
        fs::write(&conf_path, conf).unwrap();
        let port = free_port();
        let mut c = Command::new(server);
        c.arg(&conf_path)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(["--logfile", ""])
            .args(extra);
        let mut proc = Proc::spawn(
            "redis-server",
            c,
            dir.path().join("redis.log"),
            libc::SIGTERM,
        );
        proc.wait_until(|| port_open(port));
        let r = Redis {
            port,
            dir,
            proc,
            cli,
        };
        let mut pinged = false;
        for _ in 0..100 {
            if r.cmd(&["PING"]).trim() == "PONG" {
                pinged = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(pinged, "redis did not answer PING:\n{}", r.proc.log_text());
        r
    }

    /// One command through redis-cli; its output (errors included).
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new(&self.cli)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// The redis-cli this Redis is driven with.
    pub fn cli(&self) -> &Path {
        &self.cli
    }

    /// `INFO` field as a number.
    pub fn info(&self, field: &str) -> u64 {
        let info = self.cmd(&["INFO"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in INFO"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Pipes raw RESP into redis-cli --pipe.
    pub fn pipe(&self, data: &[u8]) -> String {
        let mut child = Command::new(&self.cli)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Written from a thread: redis-cli prints a line per error reply,
        // and a full stdout pipe would stop it reading stdin.
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

/// PgBouncer on a free loopback port in front of a `Postgres`.
pub struct PgBouncer {
    pub port: u16,
    proc: Proc,
    pub dir: TempDir,
}

impl PgBouncer {
    /// `ini` is the rendered pgbouncer.ini; its listen port, auth file and
    /// the database's port are pointed at the test's own.
    pub fn start(ini: &str, pg_port: u16, users: &[(&str, &str)]) -> PgBouncer {
        let bin = need("pgbouncer");
        PgBouncer::start_with(&bin, ini, pg_port, users)
    }

    /// PgBouncer `major.minor` built by scripts/fetch-redis-pgbouncer.sh.
    pub fn start_version(
        version: &str,
        ini: &str,
        pg_port: u16,
        users: &[(&str, &str)],
    ) -> PgBouncer {
        let bin = built("pgbouncer", version).join("pgbouncer");
        PgBouncer::start_with(&bin, ini, pg_port, users)
    }

    pub fn start_with(bin: &Path, ini: &str, pg_port: u16, users: &[(&str, &str)]) -> PgBouncer {
        let dir = server_dir();
        let port = free_port();
        let userlist = dir.path().join("userlist.txt");
        let list: String = users
            .iter()
            .map(|(u, p)| format!("\"{u}\" \"{p}\"\n"))
            .collect();
        write(&userlist, &list);
        let mut text = String::new();
        for line in ini.lines() {
            let l = line.trim_start();
            if l.starts_with("listen_port") {
                text.push_str(&format!("listen_port = {port}\n"));
            } else if l.starts_with("auth_file") {
                text.push_str(&format!("auth_file = {}\n", userlist.display()));
            } else if l.contains("port=5432") {
                text.push_str(&line.replace("port=5432", &format!("port={pg_port}")));
                text.push('\n');
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&format!("unix_socket_dir = {}\n", dir.path().display()));
        let ini_path = dir.path().join("pgbouncer.ini");
        write(&ini_path, &text);
        let mut c = as_postgres(bin);
        c.arg(&ini_path);
        let mut proc = Proc::spawn(
            "pgbouncer",
            c,
            dir.path().join("pgbouncer.log"),
            libc::SIGINT,
        );
        proc.wait_until(|| port_open(port));
        PgBouncer { port, dir, proc }
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

/// A zfs-fuse daemon (unless one already runs) and a file-backed pool,
/// destroyed when dropped. None, with the reason printed, when /dev/fuse is
/// missing: the only server test allowed to skip in CI.
pub struct ZfsPool {
    pub name: String,
    daemon: Option<Proc>,
    pub dir: TempDir,
}

impl ZfsPool {
    /// The one test set-up that may skip, and says so: zfs-fuse needs
    /// `/dev/fuse`, which some machines (containers) do not have. With it,
    /// a missing zfs-fuse is a failure like any missing program.
    pub fn create() -> Option<ZfsPool> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: /dev/fuse is missing, so zfs-fuse cannot run here");
            return None;
        }
        let daemon_bin = need("zfs-fuse");
        need("zpool");
        need("zfs");
        let dir = tempfile::Builder::new()
            .prefix("dbtune-zfs-")
            .tempdir()
            .unwrap();
        let running = Command::new("pgrep")
            .arg("-x")
            .arg("zfs-fuse")
            .status()
            .is_ok_and(|s| s.success());
        let daemon = if running {
            None
        } else {
            let mut c = Command::new(daemon_bin);
            c.arg("--no-daemon")
                .arg("--pidfile")
                .arg(dir.path().join("zfs-fuse.pid"));
            let mut p = Proc::spawn(
                "zfs-fuse",
                c,
                dir.path().join("zfs-fuse.log"),
                libc::SIGTERM,
            );
            p.wait_until(|| {
                Command::new("zpool")
                    .arg("list")
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            Some(p)
        };
        let disk = dir.path().join("disk.img");
        fs::File::create(&disk).unwrap().set_len(128 << 20).unwrap();
        let name = format!("dbtune{}", free_port());
        let mut c = Command::new("zpool");
        c.args(["create", "-m", "none", &name]).arg(&disk);
        run_ok(c);
        Some(ZfsPool { name, dir, daemon })
    }

    pub fn get(&self, dataset: &str, prop: &str) -> String {
        let mut c = Command::new("zfs");
        c.args([
            "get",
            "-H",
            "-o",
            "value",
            prop,
            &format!("{}/{dataset}", self.name),
        ]);
        run_ok(c).trim().to_string()
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        let _ = Command::new("zpool")
            .args(["destroy", "-f", &self.name])
            .output();
        drop(self.daemon.take());
    }
}

/// The server's own reading of a rendered postgresql.conf: no line in
/// pg_file_settings has an error, and every setting (but `skip`) runs
/// with the value the file says, compared by dbtune's one value reader
/// against the server's row. Returns how many were compared.
pub fn assert_reads_back(pg: &Postgres, conf: &str, skip: &[&str], label: &str) -> usize {
    let errors = pg.psql(
        "postgres",
        "postgres",
        "SELECT sourceline, name, error FROM pg_file_settings WHERE error IS NOT NULL",
    );
    assert_eq!(errors, "", "{label}: pg_file_settings reports errors");
    let major: u32 = pg
        .psql("postgres", "postgres", "SHOW server_version_num")
        .trim()
        .parse::<u32>()
        .unwrap()
        / 10000;
    let rendered = dbtune::read::grammar::postgresql_conf(conf, "postgresql.conf").unwrap();
    assert!(
        rendered.syntax_errors.is_empty(),
        "{label}: {:?}",
        rendered.syntax_errors
    );
    let live = pg.psql(
        "postgres",
        "postgres",
        "SELECT name, setting, coalesce(unit, ''), vartype, context, \
         array_to_string(coalesce(enumvals, '{}'), ',') FROM pg_settings",
    );
    let mut compared = 0;
    for (name, entries) in &rendered.entries {
        let want = &entries.last().unwrap().value;
        if skip.contains(&name.as_str()) || name == "port" {
            continue;
        }
        let row = live
            .lines()
            .find(|l| {
                l.split('|')
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .unwrap_or_else(|| panic!("{label}: {name} is not in pg_settings"));
        let f: Vec<&str> = row.split('|').collect();
        let setting = dbtune::live::PgSetting {
            name: f[0].to_string(),
            setting: f[1].to_string(),
            unit: Some(f[2].to_string()).filter(|u| !u.is_empty()),
            vartype: f[3].to_string(),
            source: "test".into(),
            sourcefile: None,
            sourceline: None,
            pending_restart: false,
            context: f[4].to_string(),
            enumvals: f[5]
                .split(',')
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect(),
        };
        assert!(
            dbtune::live::pg_same(want, &setting, major),
            "{label}: {name} = {want} in the file, {} {} live",
            f[1],
            f[2]
        );
        compared += 1;
    }
    compared
}

/// `dbtune check-budget ARGS --format json`, run in `cwd` when given (the
/// servers open relative includes from their working directory): its exit
/// code and the JSON it printed (every exit prints one).
pub fn check_budget_json(cwd: Option<&str>, args: &[&str]) -> (i32, serde_json::Value) {
    let mut c = dbtune();
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    let out = c
        .arg("check-budget")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// The shared memory the postmaster maps: its main segment, the SysV stub
/// and the DSM control segment.
pub fn shared_mapped(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let shared = f[1].as_bytes()[3] == b's';
            let anon = f.len() < 6
                || ["/dev/zero", "/SYSV", "/dev/shm"]
                    .iter()
                    .any(|p| f[5].starts_with(p));
            let (lo, hi) = f[0].split_once('-')?;
            (shared && anon).then(|| {
                u64::from_str_radix(hi, 16).unwrap() - u64::from_str_radix(lo, 16).unwrap()
            })
        })
        .sum()
}
