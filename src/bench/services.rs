//! The services a profile's workload runs beside its cluster: PgBouncer in
//! front of it (the pooled workloads) and Redis next to it (`--redis`),
//! both inside the cluster's memory cgroup when bench runs as a host
//! (`--ram`), so their memory counts against the host as it would there;
//! and the memory of the host's other processes, held in the same cgroup
//! (`--hold-reserves`).
//!
//! Every config gets the same pooler settings and the same Redis: the
//! profile's rendering. Only PostgreSQL's settings differ between configs.
//! Both listen on loopback, a free port and a socket in a temp dir, run as
//! `postgres` when we are root, and stop (SIGINT) when dropped or when
//! bench dies.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use super::cluster::{command_as, free_port, postgres_ids, stop_with_parent, Cluster};

/// A program on PATH, or an error naming the package.
pub fn find_program(name: &str, package: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` is not on PATH (apt-get install {package})"))
}

/// A child process in its own temp dir, stopped with SIGINT on drop.
struct Server {
    child: Option<Child>,
    name: &'static str,
    dir: TempDir,
}

impl Server {
    /// Starts `command` (already in the cluster's cgroup, as its user, and
    /// pointed at its files in `dir`); its output goes to NAME.log.
    fn spawn(name: &'static str, mut command: Command, dir: TempDir) -> Result<Server> {
        let log = fs::File::create(dir.path().join(format!("{name}.log")))?;
        stop_with_parent(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Server {
            child: Some(child),
            name,
            dir,
        })
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join(format!("{}.log", self.name))).unwrap_or_default()
    }

    /// Waits until `ready`, or fails with the log when the server exits or
    /// 30 s pass.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                bail!("{} exited ({st}):\n{}", self.name, self.log());
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("{} not ready after 30 s:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: a signal to the child this Server started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A temp dir named like the cluster's (so a leftover is found the same
/// way), owned by the user the servers run as.
fn server_dir() -> Result<(TempDir, Option<(u32, u32)>)> {
    let ids = postgres_ids()?;
    let dir = super::scratch::tempdir()?;
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
    }
    Ok((dir, ids))
}

/// `bin` as a command in the cluster's cgroup (when it has one), as `ids`.
fn command_in(bin: &std::path::Path, c: &Cluster, ids: Option<(u32, u32)>) -> Command {
    command_in_cgroup(bin, c.cgroup.as_ref(), ids)
}

/// `bin` as a command in `cgroup` (when given), as `ids`.
fn command_in_cgroup(
    bin: &std::path::Path,
    cgroup: Option<&super::cgroup::Cgroup>,
    ids: Option<(u32, u32)>,
) -> Command {
    match cgroup {
        Some(cg) => {
            let mut cmd = Command::new(bin);
            cg.enter(&mut cmd, ids);
            cmd
        }
        None => command_as(bin, ids),
    }
}

/// The pool a rendered pgbouncer.ini gives its database: what bench keeps
/// of it (the pool settings), the rest being the scratch setup's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// `key = value` lines of the [pgbouncer] section that shape the pool.
    pub settings: Vec<(String, String)>,
    /// The database entry's own parameters (pool_size=.. reserve_pool=..).
    pub db_params: Vec<(String, String)>,
}

/// [pgbouncer] keys bench carries over from the rendered file: the pool's
/// shape. Addresses, auth and files are the scratch setup's own.
const POOL_KEYS: &[&str] = &[
    "pool_mode",
    "max_client_conn",
    "default_pool_size",
    "min_pool_size",
    "reserve_pool_size",
    "reserve_pool_timeout",
    "max_db_connections",
    "server_idle_timeout",
    "query_wait_timeout",
];

impl PoolSettings {
    /// Reads the pool settings of a rendered pgbouncer.ini (its first
    /// database entry and the [pgbouncer] pool keys).
    pub fn parse(ini: &str) -> Result<PoolSettings> {
        let mut section = "";
        let mut settings = Vec::new();
        let mut db_params = None;
        for line in ini.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
                continue;
            }
            if l.starts_with('[') {
                section = if l == "[databases]" {
                    "databases"
                } else if l == "[pgbouncer]" {
                    "pgbouncer"
                } else {
                    ""
                };
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            match section {
                "databases" if db_params.is_none() => {
                    db_params = Some(
                        v.split_whitespace()
                            .filter_map(|kv| kv.split_once('='))
                            .filter(|(k, _)| !matches!(*k, "host" | "port" | "dbname" | "user"))
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    );
                }
                "pgbouncer" if POOL_KEYS.contains(&k) => {
                    settings.push((k.to_string(), v.to_string()))
                }
                _ => {}
            }
        }
        Ok(PoolSettings {
            settings,
            db_params: db_params.context("the rendered pgbouncer.ini has no database entry")?,
        })
    }

    fn get(&self, key: &str) -> Option<u32> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }

    fn db(&self, key: &str) -> Option<u32> {
        self.db_params
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// Server connections the pool opens at most: the database's cap, else
    /// its pool plus reserve.
    pub fn server_connections(&self) -> u32 {
        self.db("max_db_connections")
            .or(self.get("max_db_connections").filter(|n| *n > 0))
            .unwrap_or_else(|| {
                self.db("pool_size")
                    .or(self.get("default_pool_size"))
                    .unwrap_or(20)
                    + self
                        .db("reserve_pool")
                        .or(self.get("reserve_pool_size"))
                        .unwrap_or(0)
            })
    }

    /// The pool mode (`transaction`, `session`, `statement`).
    pub fn mode(&self) -> &str {
        self.settings
            .iter()
            .find(|(k, _)| k == "pool_mode")
            .map_or("session", |(_, v)| v.as_str())
    }

    /// The pool one config's server can take: this one where its server
    /// connections fit `max_connections` less the superusers' reserved
    /// ones (bench's own psql and CHECKPOINT connect directly), else this
    /// one lowered to that room (pool, reserve and cap; the warm
    /// connections no more than the pool), as a host running that config
    /// behind this PgBouncer would have to lower it, with a sentence that
    /// says so. A pool opening more than the server takes measures
    /// refusals, not PostgreSQL. An error where the server takes no
    /// connection but the superusers'.
    pub fn fit(
        &self,
        max_connections: u32,
        reserved: u32,
    ) -> Result<(PoolSettings, Option<String>)> {
        let n = self.server_connections();
        let room = max_connections.saturating_sub(reserved);
        if room == 0 {
            bail!(
                "its max_connections {max_connections} are all reserved for superusers ({reserved}): PgBouncer could open no server connection"
            );
        }
        if n <= room {
            return Ok((self.clone(), None));
        }
        let pool = self
            .db("pool_size")
            .or(self.get("default_pool_size"))
            .unwrap_or(20)
            .min(room);
        let reserve = self
            .db("reserve_pool")
            .or(self.get("reserve_pool_size"))
            .unwrap_or(0)
            .min(room - pool);
        let mut fitted = self.clone();
        for (k, v) in [
            ("pool_size", pool),
            ("reserve_pool", reserve),
            ("max_db_connections", room),
        ] {
            set(&mut fitted.db_params, k, v);
        }
        if fitted.get("min_pool_size").is_some_and(|m| m > pool) {
            set(&mut fitted.settings, "min_pool_size", pool);
        }
        let why = format!(
            "PgBouncer's pool lowered from the profile's {n} server connections to {room} (pool {pool} + reserve {reserve}): its max_connections {max_connections} less {reserved} reserved for superusers, as a host running it behind this PgBouncer would have to"
        );
        Ok((fitted, Some(why)))
    }
}

/// Sets `key` in a list of pool settings, in place or appended.
fn set(list: &mut Vec<(String, String)>, key: &str, value: u32) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_string(),
        None => list.push((key.to_string(), value.to_string())),
    }
}

/// PgBouncer in front of one cluster, with the profile's pool.
pub struct Pooler {
    pub port: u16,
    server: Server,
}

impl Pooler {
    /// Starts `bin` in front of `c` with `pool`: database `postgres`
    /// through the cluster's socket, trust auth for `postgres` (the scratch
    /// cluster trusts local connections), admin console for `postgres`.
    pub fn start(bin: &std::path::Path, pool: &PoolSettings, c: &Cluster) -> Result<Pooler> {
        let (dir, ids) = server_dir()?;
        let port = free_port()?;
        let userlist = dir.path().join("userlist.txt");
        fs::write(&userlist, "\"postgres\" \"\"\n")?;
        let params: String = pool
            .db_params
            .iter()
            .map(|(k, v)| format!(" {k}={v}"))
            .collect();
        let mut ini = format!(
            "[databases]\npostgres = host={} port={} dbname=postgres{params}\n\n[pgbouncer]\n",
            c.dir.path().display(),
            c.port
        );
        ini.push_str(&format!(
            "listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir = {}\n\
             auth_type = trust\nauth_file = {}\nadmin_users = postgres\n\
             ignore_startup_parameters = extra_float_digits\n",
            dir.path().display(),
            userlist.display()
        ));
        for (k, v) in &pool.settings {
            ini.push_str(&format!("{k} = {v}\n"));
        }
        let ini_path = dir.path().join("pgbouncer.ini");
        fs::write(&ini_path, ini)?;
        let mut cmd = command_in(bin, c, ids);
        cmd.arg(&ini_path);
        let server = Server::spawn("pgbouncer", cmd, dir)?;
        let mut p = Pooler { port, server };
        let mut probe = p.client(c, "psql");
        probe.args(["-XAtq", "-d", "pgbouncer", "-c", "SHOW VERSION"]);
        p.server.wait_ready(|| {
            probe
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(p)
    }

    /// A client program of `c` pointed at the pooler instead of the server.
    pub fn client(&self, c: &Cluster, program: &str) -> Command {
        let mut cmd = c.client(program);
        cmd.env("PGHOST", self.server.dir.path())
            .env("PGPORT", self.port.to_string());
        cmd
    }

    /// psql running `SHOW what` on the admin console, rows split on `|`
    /// under the header's column names (read with [`parse_show`]).
    fn show_command(&self, c: &Cluster, what: &str) -> Command {
        let mut cmd = self.client(c, "psql");
        cmd.args([
            "-XA",
            "-F",
            "|",
            "-P",
            "footer=off",
            "-d",
            "pgbouncer",
            "-c",
        ])
        .arg(format!("SHOW {what}"));
        cmd
    }

    /// One admin console command's rows, split on `|`, with the header's
    /// column names.
    fn show(&self, c: &Cluster, what: &str) -> Result<Vec<Vec<(String, String)>>> {
        let out = self.show_command(c, what).output()?;
        if !out.status.success() {
            bail!(
                "SHOW {what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Closes the pool's server connections: PAUSE waits for them to be
    /// released and disconnects them, RESUME lets clients in again. A
    /// direct workload after a pooled one then gets the connection slots
    /// the pool would hold idle (server_idle_timeout, 10 minutes): 48
    /// direct clients beside powerhouse's idle pool of 30 are more than
    /// its max_connections of about 60.
    pub fn close_servers(&self, c: &Cluster) -> Result<()> {
        for command in ["PAUSE", "RESUME"] {
            let out = self
                .client(c, "psql")
                .args(["-X", "-d", "pgbouncer", "-c", command])
                .output()?;
            if !out.status.success() {
                bail!("{command}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        Ok(())
    }

    /// Clients waiting for a server connection now, over every pool.
    pub fn clients_waiting(&self, c: &Cluster) -> Result<f64> {
        Ok(waiting(&self.show(c, "POOLS")?))
    }

    /// (transactions, microseconds clients waited for a server) so far.
    pub fn totals(&self, c: &Cluster) -> Result<(f64, f64)> {
        let rows = self.show(c, "STATS")?;
        let row = rows
            .iter()
            .find(|r| field(r, "database") == Some("postgres"))
            .context("no stats row for database postgres")?;
        let num = |k: &str| -> Result<f64> {
            field(row, k)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {k} in SHOW STATS"))
        };
        Ok((num("total_xact_count")?, num("total_wait_time")?))
    }
}

/// Clients waiting for a server connection in the bench database's pools,
/// from `SHOW POOLS` rows.
fn waiting(rows: &[Vec<(String, String)>]) -> f64 {
    rows.iter()
        .filter(|r| field(r, "database") == Some("postgres"))
        .filter_map(|r| field(r, "cl_waiting")?.parse::<f64>().ok())
        .sum()
}

/// psql's unaligned output (header line, then rows) as column-named rows.
fn parse_show(text: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return vec![];
    };
    let names: Vec<&str> = header.split('|').collect();
    lines
        .map(|l| {
            names
                .iter()
                .zip(l.split('|'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn field<'a>(row: &'a [(String, String)], key: &str) -> Option<&'a str> {
    row.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The busiest the pool's queue was while a run went on: SHOW POOLS'
/// cl_waiting read every half second by a thread.
pub struct WaitSampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<f64>>,
}

impl WaitSampler {
    pub fn start(p: &Pooler, c: &Cluster) -> WaitSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut cmd = p.show_command(c, "POOLS");
        let handle = std::thread::spawn(move || {
            let mut most = 0.0f64;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(out) = cmd.output() {
                    most = most.max(waiting(&parse_show(&String::from_utf8_lossy(&out.stdout))));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            most
        });
        WaitSampler {
            stop,
            handle: Some(handle),
        }
    }

    /// The most clients seen waiting at once.
    pub fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for WaitSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The host's other processes, the profile's `[[reserve]]`s (an API's
/// workers, monitoring agents, backup jobs), as memory held resident in
/// the cluster's cgroup (`--hold-reserves`): on the host they are running
/// and their memory is neither PostgreSQL's nor its page cache's, so under
/// `--ram` alone a config gets that memory as page cache the host would
/// not give it. The holder is this program (`dbtune bench-hold-memory`),
/// run as root inside the cgroup so every page it touches is charged there,
/// and it locks them (mlock), so they stay resident whether or not the
/// machine has swap. It asks the OOM
/// killer never to pick it: when the host runs out, PostgreSQL or Redis is
/// killed, as bench reports, not the app standing in for the reserves.
pub struct Held {
    pub bytes: u64,
    _server: Server,
}

/// What `bench-hold-memory` prints once every page is touched.
const HELD: &str = "held ";

impl Held {
    pub fn start(bytes: u64, c: &Cluster) -> Result<Held> {
        if c.cgroup.is_none() {
            bail!("memory is held only inside a host's cgroup (--ram)");
        }
        let exe = std::env::current_exe().context("bench's own program")?;
        let (dir, _) = server_dir()?;
        let log = dir.path().join("hold.log");
        // As root (no ids): lowering its own oom_score_adj needs it.
        let mut cmd = command_in(&exe, c, None);
        cmd.args(["bench-hold-memory", &bytes.to_string()]);
        let mut server = Server::spawn("hold", cmd, dir)?;
        server.wait_ready(|| {
            fs::read_to_string(&log)
                .map(|t| t.contains(HELD))
                .unwrap_or(false)
        })?;
        Ok(Held {
            bytes,
            _server: server,
        })
    }
}

/// `dbtune bench-hold-memory BYTES`: touches BYTES of its own memory, says
/// so, and keeps it until a signal ends it (SIGINT from [`Held`]'s drop,
/// or its parent's death).
pub fn hold_memory(bytes: u64) -> Result<()> {
    // Best effort: without it the OOM killer may pick the holder first.
    let _ = fs::write("/proc/self/oom_score_adj", "-1000");
    let n = usize::try_from(bytes).context("more memory than this machine addresses")?;
    let mut held: Vec<u8> = Vec::new();
    held.try_reserve_exact(n)
        .with_context(|| format!("cannot allocate {bytes} bytes"))?;
    // A non-zero fill writes every page (no shared zero page).
    held.resize(n, 0x5a);
    // SAFETY: mlock of the buffer this function owns and keeps.
    if unsafe { libc::mlock(held.as_ptr().cast(), n) } != 0 {
        bail!(
            "cannot lock {bytes} bytes in memory: {}",
            std::io::Error::last_os_error()
        );
    }
    std::hint::black_box(&held);
    println!("{HELD}{bytes} bytes");
    use std::io::Write;
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
        std::hint::black_box(&held);
    }
}

/// The profile's Redis beside one cluster, filled to its maxmemory.
pub struct Cache {
    pub port: u16,
    /// Its maxmemory, bytes (what the loader fills).
    pub maxmemory: u64,
    /// Whether it may evict (a cache) or refuses writes when full (a queue).
    pub evicts: bool,
    /// Where its clients' keys stand, kept from one run to the next.
    cursor: Arc<Mutex<Cursor>>,
    server: Server,
}

/// The keys bench writes are `bench:N`: `next` is the next N to write,
/// `oldest` the oldest a queue's consumer has not yet taken. Kept across
/// runs, so each run's producer and consumer go on where the last run's
/// stopped. (Until 2026-12-02 each run started its producer at DBSIZE and
/// its consumer at 0: once a run had consumed more keys than the Redis
/// holds, the next run's consumer deleted keys that were gone, and its
/// writes were refused from then on. low-memory's 49 MiB queue at 3 GiB,
/// written 1000 keys a second for 108 s, took 334 a second.)
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    next: u64,
    oldest: u64,
}

/// maxmemory of a rendered redis.conf, bytes (Redis's units: 1mb = 2^20).
pub fn maxmemory_of(conf: &str) -> Option<u64> {
    let v = conf.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == "maxmemory").then(|| f.next().map(str::to_lowercase))?
    })?;
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let mult = match &v[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    Some(n * mult)
}

/// The rendered redis.conf without its host paths and addresses: Redis
/// reads the file in order and fails on a `dir` it cannot enter before the
/// command line's own comes into effect.
pub fn scratch_redis_conf(conf: &str) -> String {
    const HOST_ONLY: &[&str] = &[
        "dir",
        "logfile",
        "pidfile",
        "unixsocket",
        "unixsocketperm",
        "bind",
        "port",
        "daemonize",
        "supervised",
        "include",
    ];
    conf.lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_none_or(|k| !HOST_ONLY.contains(&k.to_lowercase().as_str()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

impl Cache {
    /// Starts `bin` with the rendered `conf` beside `c` (port, bind, dir and
    /// log overridden on the command line, which Redis applies last).
    pub fn start(bin: &std::path::Path, conf: &str, c: &Cluster) -> Result<Cache> {
        Cache::start_in(bin, conf, c.cgroup.as_ref())
    }

    /// [`Cache::start`] in `cgroup`, or where bench runs.
    pub fn start_in(
        bin: &std::path::Path,
        conf: &str,
        cgroup: Option<&super::cgroup::Cgroup>,
    ) -> Result<Cache> {
        let maxmemory = maxmemory_of(conf)
            .filter(|m| *m > 0)
            .context("the rendered redis.conf has no maxmemory")?;
        let evicts = !conf.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some("maxmemory-policy") && f.next() == Some("noeviction")
        });
        let (dir, ids) = server_dir()?;
        let conf_path = dir.path().join("redis.conf");
        fs::write(&conf_path, scratch_redis_conf(conf))?;
        let port = free_port()?;
        let mut cmd = command_in_cgroup(bin, cgroup, ids);
        cmd.arg(&conf_path)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(dir.path());
        let server = Server::spawn("redis", cmd, dir)?;
        let mut cache = Cache {
            port,
            maxmemory,
            evicts,
            cursor: Arc::default(),
            server,
        };
        let url = cache.url();
        cache.server.wait_ready(|| {
            redis::Client::open(url.as_str())
                .and_then(|cl| cl.get_connection())
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con))
                .is_ok()
        })?;
        Ok(cache)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (used_memory, used_memory_rss) in bytes from INFO memory.
    pub fn memory(&self) -> Result<(f64, f64)> {
        let mut con = redis::Client::open(self.url())?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("memory").query(&mut con)?;
        let num = |k: &str| -> Result<f64> {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("no {k} in INFO memory"))
        };
        Ok((num("used_memory")?, num("used_memory_rss")?))
    }

    /// Writes keys until Redis is at its maxmemory (a write refused or
    /// keys evicted), so the host's memory holds a full Redis.
    pub fn fill(&self) -> Result<()> {
        let mut l = Loader::connect(self)?;
        while !l.full {
            l.step()?;
        }
        Ok(())
    }

    /// A background loop that keeps the full Redis busy like its role's
    /// clients, at `per_sec` keys written a second: a cache keeps writing
    /// new keys (evicting old ones), a queue consumes its oldest entries
    /// and produces new ones. Paced, not as fast as it can: a loop that
    /// never waits would take a CPU from the host's PostgreSQL that no
    /// staging app's Redis traffic takes. Runs until the returned guard
    /// is finished or dropped.
    pub fn churn(&self, per_sec: u32) -> Result<Churn> {
        let mut l = Loader::connect(self)?;
        l.full = true;
        l.batch = churn_batch(per_sec);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let start = Instant::now();
        let handle = std::thread::spawn(move || {
            let mut written = 0u64;
            while !flag.load(Ordering::Relaxed) {
                match l.step() {
                    Ok(n) => written += n,
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
                let due = start + Duration::from_secs_f64(written as f64 / per_sec.max(1) as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            written
        });
        Ok(Churn {
            stop,
            start,
            handle: Some(handle),
        })
    }
}

/// Keys per pipeline of a churn at `per_sec`: about 50 pipelines a second,
/// so the writes are spread over the second rather than one burst.
fn churn_batch(per_sec: u32) -> u64 {
    (u64::from(per_sec) / 50).clamp(1, BATCH)
}

/// Values bench writes: 1 KiB, like a session or a queued job.
const VALUE: usize = 1024;
/// Keys per pipeline while filling (and the most while churning).
const BATCH: u64 = 100;

/// A connection writing `bench:N` keys in order from the cache's
/// [`Cursor`]; when the Redis refuses a write (full, noeviction), it
/// deletes the oldest batch: a queue's consumer.
struct Loader {
    con: redis::Connection,
    evicts: bool,
    maxmemory: u64,
    cursor: Arc<Mutex<Cursor>>,
    full: bool,
    batch: u64,
}

impl Loader {
    fn connect(c: &Cache) -> Result<Loader> {
        Ok(Loader {
            con: redis::Client::open(c.url())?.get_connection()?,
            evicts: c.evicts,
            maxmemory: c.maxmemory,
            cursor: c.cursor.clone(),
            full: false,
            batch: BATCH,
        })
    }

    /// One pipeline of writes; the keys written (0 when the Redis refused
    /// them and the oldest batch was consumed instead).
    fn step(&mut self) -> Result<u64> {
        let cursor = self.cursor.clone();
        let mut at = cursor.lock().unwrap_or_else(|e| e.into_inner());
        let value = vec![b'x'; VALUE];
        let mut pipe = redis::pipe();
        for i in at.next..at.next + self.batch {
            // A TTL: volatile-* policies evict only keys that expire.
            pipe.cmd("SET")
                .arg(format!("bench:{i}"))
                .arg(&value)
                .arg("EX")
                .arg(3600)
                .ignore();
        }
        match pipe.query::<()>(&mut self.con) {
            Ok(()) => {
                at.next += self.batch;
                if self.evicts && !self.full {
                    // Evictions start once maxmemory is reached.
                    let info: String = redis::cmd("INFO").arg("stats").query(&mut self.con)?;
                    let evicted = info
                        .lines()
                        .find_map(|l| l.strip_prefix("evicted_keys:"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    // A bound in case the policy cannot evict these keys.
                    self.full |= evicted > 0 || at.next * VALUE as u64 > 4 * self.maxmemory;
                }
                Ok(self.batch)
            }
            Err(e) if e.to_string().contains("OOM") => {
                self.full = true;
                if at.oldest >= at.next {
                    bail!("Redis refuses writes (OOM) with none of bench's keys left to consume");
                }
                let keys: Vec<String> = (at.oldest..at.oldest + self.batch)
                    .map(|i| format!("bench:{i}"))
                    .collect();
                redis::cmd("DEL").arg(keys).query::<()>(&mut self.con)?;
                at.oldest += self.batch;
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The background load of [`Cache::churn`]; stops when finished or
/// dropped.
pub struct Churn {
    stop: Arc<AtomicBool>,
    start: Instant,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Churn {
    /// Stops the load; the keys it wrote a second, on average.
    pub fn finish(mut self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        let written = self.handle.take()?.join().ok()?;
        Some(written as f64 / self.start.elapsed().as_secs_f64())
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_of_the_pgbouncer_section_alone_is_fitted_with_its_warm_connections() {
        let ini = "\
[databases]
app = host=127.0.0.1 port=5432 dbname=app

[pgbouncer]
pool_mode = transaction
default_pool_size = 20
min_pool_size = 20
reserve_pool_size = 5
";
        let p = PoolSettings::parse(ini).unwrap();
        assert_eq!(p.server_connections(), 25);
        let (q, why) = p.fit(13, 3).unwrap();
        assert_eq!(q.server_connections(), 10);
        assert_eq!(q.db("pool_size"), Some(10));
        assert_eq!(q.db("reserve_pool"), Some(0));
        // No more connections kept warm than the pool opens.
        assert_eq!(q.get("min_pool_size"), Some(10));
        assert!(why
            .unwrap()
            .contains("from the profile's 25 server connections to 10"));
    }

    #[test]
    fn the_pool_is_read_from_a_rendered_ini_and_checked_against_max_connections() {
        let ini = "\
;; comment
[databases]
app = host=127.0.0.1 port=5432 dbname=app pool_size=24 reserve_pool=6 max_db_connections=30

[pgbouncer]
listen_addr = 127.0.0.1
auth_type = scram-sha-256
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 24
";
        let p = PoolSettings::parse(ini).unwrap();
        assert_eq!(p.mode(), "transaction");
        assert_eq!(
            p.db_params,
            vec![
                ("pool_size".into(), "24".into()),
                ("reserve_pool".into(), "6".into()),
                ("max_db_connections".into(), "30".into())
            ]
        );
        assert!(!p.settings.iter().any(|(k, _)| k == "auth_type"));
        assert_eq!(p.server_connections(), 30);
        // Fits: the same pool, nothing said.
        assert_eq!(p.fit(100, 3).unwrap(), (p.clone(), None));
        assert_eq!(p.fit(33, 3).unwrap(), (p.clone(), None));
        // 29 slots: the pool keeps its 24, the reserve gets 5, the cap 29.
        let (q, why) = p.fit(32, 3).unwrap();
        assert_eq!(
            q.db_params,
            vec![
                ("pool_size".into(), "24".into()),
                ("reserve_pool".into(), "5".into()),
                ("max_db_connections".into(), "29".into())
            ]
        );
        assert_eq!(q.server_connections(), 29);
        assert!(why
            .unwrap()
            .contains("from the profile's 30 server connections to 29"));
        // 10 slots: the pool itself is lowered, the reserve is none.
        let (q, _) = p.fit(13, 3).unwrap();
        assert_eq!(q.server_connections(), 10);
        assert_eq!(q.db("pool_size"), Some(10));
        assert_eq!(q.db("reserve_pool"), Some(0));
        assert!(p.fit(3, 3).is_err());
    }

    #[test]
    fn a_churn_spreads_its_writes_over_about_50_pipelines_a_second() {
        assert_eq!(churn_batch(1), 1);
        assert_eq!(churn_batch(200), 4);
        assert_eq!(churn_batch(1000), 20);
        // Never more keys per pipeline than the fill's.
        assert_eq!(churn_batch(1_000_000), BATCH);
    }

    #[test]
    fn maxmemory_units_are_redis_units() {
        assert_eq!(maxmemory_of("maxmemory 111mb\n"), Some(111 << 20));
        assert_eq!(maxmemory_of("maxmemory 2gb"), Some(2 << 30));
        assert_eq!(maxmemory_of("maxmemory 1000"), Some(1000));
        assert_eq!(maxmemory_of("# maxmemory 5mb"), None);
    }

    #[test]
    fn the_scratch_redis_conf_keeps_memory_settings_and_drops_host_paths() {
        let conf = "bind 127.0.0.1 -::1\nport 6379\nmaxmemory 111mb\ndir /var/lib/redis\n# dir x\n";
        assert_eq!(scratch_redis_conf(conf), "maxmemory 111mb\n# dir x\n");
    }

    #[test]
    fn admin_console_rows_are_named_by_their_header() {
        let rows = parse_show("database|cl_waiting\npgbouncer|0\npostgres|7\n");
        assert_eq!(field(&rows[1], "cl_waiting"), Some("7"));
    }
}
