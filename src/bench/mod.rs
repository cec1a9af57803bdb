//! `dbtune bench`: PostgreSQL configs compared on this machine. Each config
//! gets its own scratch cluster; runs are interleaved (A B A B...) after a
//! warm-up, and each workload reports median, min and max and the ratio to
//! the first config. A failed run is reported, not fatal.
//!
//! The clusters share the machine, so none may work in the background while
//! another is measured: every cluster checkpoints before each measurement,
//! and the benchmark tables have autovacuum off (a first version without
//! this made whichever config ran after an aggressive autovacuum look ~10%
//! slower).

pub mod cgroup;
pub mod cluster;
pub mod pgtune;
pub mod scratch;
pub mod services;

use std::io::Write;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use cluster::Cluster;
use services::{Cache, PoolSettings, Pooler};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One large COPY into a table created in the same transaction, then CREATE INDEX.
    CopyIndex,
    /// Several COPY streams into one table at once (the bulk-ingest case).
    ConcurrentCopy,
    /// pgbench's TPC-B-like transactions.
    Tpcb,
    /// pgbench -S: select-only.
    SelectOnly,
    /// pgbench TPC-B for `--write-seconds`, long enough to checkpoint:
    /// tps, and the checkpoints it caused.
    Write,
    /// A hash aggregate over pgbench_accounts whose table (~30 MB) spills
    /// to disk under the defaults' work_mem.
    Analytic,
    /// The no-WAL floor: COPY into an UNLOGGED table without indexes, for
    /// the COPY workloads to be compared with.
    Floor,
    /// bulk-ingest's own: `--streams` COPY streams at once through the
    /// profile's PgBouncer into a logged table with a primary key, then
    /// CREATE INDEX.
    PooledCopy,
    /// bulk-ingest's uploads into a table in use: `--streams` COPY streams
    /// at once through the profile's PgBouncer into a logged table that
    /// already has an index on a random key beside its primary key, so the
    /// rows land all over that index: what shared_buffers smaller than
    /// that index, checkpoint spacing and full-page images cost a load.
    IndexedCopy,
    /// powerhouse's own: pgbench TPC-B with `--pooled-clients` (more than
    /// max_connections) through the profile's PgBouncer, simple protocol.
    PooledTpcb,
}

impl Workload {
    fn needs_pgbench_tables(self) -> bool {
        matches!(
            self,
            Workload::Tpcb
                | Workload::SelectOnly
                | Workload::Write
                | Workload::Analytic
                | Workload::PooledTpcb
        )
    }

    /// Whether the workload goes through PgBouncer.
    pub fn needs_pooler(self) -> bool {
        matches!(
            self,
            Workload::PooledCopy | Workload::IndexedCopy | Workload::PooledTpcb
        )
    }

    /// Whether pgbench's `--clients` connect straight to the server (through
    /// the profile's PgBouncer only where the server cannot take them).
    pub fn direct_pgbench(self) -> bool {
        matches!(
            self,
            Workload::Tpcb | Workload::SelectOnly | Workload::Write
        )
    }
}

/// A pgbench scale whose data exceeds PostgreSQL's default shared_buffers
/// (128 MB) eight times but stays within an eighth of the RAM: about 15 MB
/// a scale unit.
pub fn scale_for(ram: crate::units::ByteSize) -> u32 {
    let data = (ram.bytes() / 8).min(1 << 30);
    ((data / (15 << 20)) as u32).clamp(10, 1000)
}

#[derive(Clone, Debug)]
pub struct Options {
    pub rows: u64,
    pub streams: u32,
    pub scale: u32,
    pub clients: u32,
    /// Clients of the pooled TPC-B run (through PgBouncer).
    pub pooled_clients: u32,
    pub seconds: u32,
    /// Seconds of the write run (checkpoints need minutes).
    pub write_seconds: u32,
    pub runs: u32,
    /// Rounds added, at most, to the workloads where some pair of configs'
    /// ranges is apart after `runs`: a claim stands only if it survives
    /// them.
    pub confirm: u32,
    pub workloads: Vec<Workload>,
    /// The host each cluster runs as (`--ram`, `--cpus`): its own cgroup of
    /// that size; None: this machine, unlimited.
    pub host: Option<HostSize>,
    /// The PgBouncer every config's pooled workloads go through: the
    /// profile's pool, the same for every config.
    pub pooler: Option<PoolerSpec>,
    /// The profile's Redis, run beside every config's cluster (in its
    /// cgroup), filled to its maxmemory and kept busy during each run.
    pub redis: Option<RedisSpec>,
    /// Bytes of the profile's `[[reserve]]`s held resident in each
    /// config's cgroup (`--hold-reserves`): the host's other processes.
    pub held: Option<u64>,
    /// Size the write run from the first config's WAL rate (the defaults'):
    /// long enough to cross its max_wal_size [`WAL_CROSSINGS`] times, at
    /// most `write_seconds`.
    pub write_auto: bool,
    /// Why the write run lasts what it does (set by the sizing).
    pub write_why: Option<String>,
}

/// The PgBouncer program and the pool it runs.
#[derive(Clone, Debug)]
pub struct PoolerSpec {
    pub bin: std::path::PathBuf,
    pub pool: PoolSettings,
}

/// The redis-server program and the redis.conf the profile renders.
#[derive(Clone, Debug)]
pub struct RedisSpec {
    pub bin: std::path::PathBuf,
    pub conf: String,
    /// Keys its clients write a second during each run (`--redis-writes`).
    pub writes_per_sec: u32,
}

/// Times the defaults' max_wal_size a sized write run crosses.
pub const WAL_CROSSINGS: u32 = 3;

/// Seconds of a write run that writes `crossings` times `max_wal` bytes of
/// WAL at `rate` bytes/s, between `floor` and `cap`; and why, in words.
pub fn write_seconds_for(
    rate: f64,
    max_wal: f64,
    crossings: u32,
    floor: u32,
    cap: u32,
) -> (u32, String) {
    let mib = |b: f64| b / (1u64 << 20) as f64;
    // The cap wins over the floor (a short --write-seconds with a longer
    // --seconds).
    let floor = floor.min(cap);
    let needed = if rate > 0.0 {
        (crossings as f64 * max_wal / rate).ceil()
    } else {
        f64::INFINITY
    };
    let secs = needed.clamp(floor as f64, cap as f64) as u32;
    let why = format!(
        "the defaults wrote {:.1} MiB/s of WAL in the warm-up; {crossings} x their max_wal_size of {:.0} MiB takes {}{}",
        mib(rate),
        mib(max_wal),
        if needed.is_finite() { format!("{needed:.0} s") } else { "forever".into() },
        if needed > cap as f64 {
            format!(", capped at {cap} s (--write-seconds)")
        } else if needed < floor as f64 {
            format!(", at least {floor} s")
        } else {
            String::new()
        }
    );
    (secs, why)
}

/// The memory and CPUs of the host bench pretends to be.
#[derive(Clone, Copy, Debug)]
pub struct HostSize {
    pub ram: crate::units::ByteSize,
    pub cpus: Option<u32>,
    /// The host's disk (`--disk-mbps`, `--disk-iops`); None: this
    /// machine's, unthrottled.
    pub disk: Option<cgroup::DiskLimit>,
}

impl HostSize {
    /// The throttle on the disk holding the scratch clusters (the temp
    /// dir's), when the host has a disk limit.
    pub fn throttle(&self) -> Result<Option<cgroup::Throttle>> {
        let Some(limit) = self.disk else {
            return Ok(None);
        };
        let device = cgroup::disk_of(&std::env::temp_dir())
            .context("the scratch clusters' temp dir (TMPDIR)")?;
        Ok(Some(cgroup::Throttle { limit, device }))
    }
}

/// How large pgbench's database is against the host's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DataSize {
    /// 1.5x the RAM: reads go to disk whatever the config.
    Larger,
    /// Half the RAM: larger than the default shared_buffers, inside the
    /// RAM, so shared_buffers against the page cache decides.
    Within,
}

impl DataSize {
    pub fn factor(self) -> f64 {
        match self {
            DataSize::Larger => 1.5,
            DataSize::Within => 0.5,
        }
    }
}

/// A pgbench scale whose database is `factor` times `ram` (pgbench's
/// tables and indexes take about 16 MB a scale unit), at least 1.
pub fn scale_of(ram: crate::units::ByteSize, factor: f64) -> u32 {
    ((ram.bytes() as f64 * factor / (16u64 << 20) as f64) as u32).max(1)
}

/// A named postgresql.conf to measure.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub conf: String,
    /// Settings overridden for this machine (e.g. huge_pages when none are reserved).
    pub extra: Vec<(String, String)>,
}

/// What the no-durability ceiling turns off: the fsync of WAL and data
/// files, the wait for a commit's WAL to reach the disk, and the full page
/// image a page's first change after a checkpoint writes. Each can lose
/// committed data or corrupt the cluster on a crash; a scratch cluster
/// that is thrown away after its runs is the only place they are set.
pub const NO_DURABILITY: [(&str, &str); 3] = [
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

/// The name the ceiling is reported under.
pub const CEILING: &str = "no-durability ceiling";

/// `base` with no durability work at all ([`NO_DURABILITY`]): the same
/// memory, checkpoint and WAL sizes, so what it gains over `base` is what
/// durability costs on this host, and what it gains over the defaults
/// bounds what any setting of the write path could gain with these memory
/// sizes. The analogue, for a write run, of the unlogged load's floor.
pub fn ceiling(base: &Config) -> Config {
    let mut extra = base.extra.clone();
    for (k, v) in NO_DURABILITY {
        extra.retain(|(name, _)| name != k);
        extra.push((k.into(), v.into()));
    }
    Config {
        name: CEILING.into(),
        conf: base.conf.clone(),
        extra,
    }
}

/// One measured quantity of one workload under one config.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub config: String,
    pub metric: String,
    /// A mechanism counter measured alongside `metric` (WAL, checkpoints,
    /// reads, peak memory...): None for the timed quantity itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<&'static str>,
    /// "s" (lower is better) or "tps" (higher is better).
    pub unit: &'static str,
    pub values: Vec<f64>,
    pub failures: Vec<String>,
    /// How this config's clients reached the server, where not as the
    /// workload says (through PgBouncer, its pool lowered to fit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Series {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    pub fn median(&self) -> Option<f64> {
        let v = self.sorted();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }
    pub fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }
    pub fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }
}

/// Tab-separated rows for COPY: id, a 32-character payload, a small int.
fn rows(from: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((n * 48) as usize);
    for i in from..from + n {
        // A cheap deterministic hash so values are not sorted like the ids.
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let _ = writeln!(out, "{i}\t{h:016x}{:016x}\t{}", h.rotate_left(17), h % 1000);
    }
    out
}

/// Runs psql with SQL and optional stdin data; returns the wall time.
fn timed_psql(c: &Cluster, args: &[&str], stdin: Option<&[u8]>) -> Result<f64> {
    let mut cmd = c.client("psql");
    cmd.args(["-XAtq", "-v", "ON_ERROR_STOP=1"]);
    timed_command(cmd, args, stdin)
}

/// Runs a psql `cmd` with `args` and optional stdin data; the wall time.
fn timed_command(
    mut cmd: std::process::Command,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<f64> {
    let start = Instant::now();
    cmd.args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run psql")?;
    if let Some(data) = stdin {
        child.stdin.take().expect("piped").write_all(data)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(start.elapsed().as_secs_f64())
}

/// (copy seconds, index seconds); `between` runs after the COPY.
fn copy_index(c: &Cluster, data: &[u8], between: &mut dyn FnMut()) -> Result<(f64, f64)> {
    // Created in the same transaction as the COPY: with wal_level =
    // minimal this is the case that skips WAL.
    let copy = timed_load(c, "bench_copy", "TABLE", data)?;
    between();
    let index = timed_psql(c, &["-c", "CREATE INDEX ON bench_copy (payload)"], None)?;
    c.psql("DROP TABLE bench_copy")?;
    Ok((copy, index))
}

/// The floor a load can reach: COPY into an UNLOGGED table created in the
/// same transaction, no index, no WAL.
fn copy_floor(c: &Cluster, data: &[u8]) -> Result<f64> {
    let t = timed_load(c, "bench_floor", "UNLOGGED TABLE", data)?;
    c.psql("DROP TABLE bench_floor")?;
    Ok(t)
}

/// Seconds to create `table` (a `kind` such as `UNLOGGED TABLE`) and COPY
/// `data` into it in one transaction, after a checkpoint.
fn timed_load(c: &Cluster, table: &str, kind: &str, data: &[u8]) -> Result<f64> {
    c.psql(&format!("DROP TABLE IF EXISTS {table}"))?;
    c.psql("CHECKPOINT")?;
    timed_psql(
        c,
        &[
            "-1",
            "-c",
            &format!(
                "CREATE {kind} {table} (id bigint, payload text, n int) WITH (autovacuum_enabled = false)"
            ),
            "-c",
            &format!("COPY {table} FROM STDIN"),
        ],
        Some(data),
    )
}

/// An analytic query: 500 000 groups of pgbench_accounts aggregated by
/// hash (about 30 MB of hash table: it spills to disk under 4 MB of
/// work_mem and fits under tuned settings). Serial, so configs compare
/// memory, not parallel workers.
fn analytic(c: &Cluster) -> Result<f64> {
    timed_psql(
        c,
        &[
            "-c",
            "SET max_parallel_workers_per_gather = 0",
            "-c",
            "SELECT count(*) FROM (SELECT aid % 500000 AS g, sum(abalance), count(*) \
             FROM pgbench_accounts GROUP BY 1) s",
        ],
        None,
    )
}

/// (tps, checkpoints) of a TPC-B run of `write_seconds`, its clients
/// through `via` when given.
fn write_run(c: &Cluster, via: Option<&Pooler>, o: &Options) -> Result<(f64, f64)> {
    let checkpoints = |c: &Cluster| -> Result<f64> {
        // 17 moved the counters to pg_stat_checkpointer.
        let v = c
            .psql("SELECT num_timed + num_requested FROM pg_stat_checkpointer")
            .or_else(|_| {
                c.psql("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
            })?;
        v.trim().parse::<f64>().context("checkpoint count")
    };
    let before = checkpoints(c)?;
    let long = Options {
        seconds: o.write_seconds,
        ..o.clone()
    };
    let tps = pgbench(c, via, &long, false)?;
    Ok((tps, checkpoints(c)? - before))
}

/// Seconds to COPY `chunks` at once through the pooler into `table`, a
/// logged table keyed by id created afresh with `then` run on it (an
/// index made before the load), after a checkpoint: each stream its own
/// client and transaction, as an uploader's.
fn pooled_streams(
    c: &Cluster,
    p: &Pooler,
    table: &str,
    then: Option<&str>,
    chunks: &[Vec<u8>],
) -> Result<f64> {
    c.psql(&format!("DROP TABLE IF EXISTS {table}"))?;
    c.psql(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, payload text, n int) \
         WITH (autovacuum_enabled = false)"
    ))?;
    if let Some(sql) = then {
        c.psql(sql)?;
    }
    c.psql("CHECKPOINT")?;
    let copy = format!("COPY {table} FROM STDIN");
    streams(chunks, |chunk| {
        let mut cmd = p.client(c, "psql");
        cmd.args(["-XAtq", "-v", "ON_ERROR_STOP=1"]);
        timed_command(cmd, &["-c", &copy], Some(chunk))
    })
}

/// (copy seconds, index seconds): `chunks` COPY'd at once through the
/// pooler into a logged table with a primary key ([`pooled_streams`]);
/// then CREATE INDEX on it, at once, as an ingest job's next step would
/// (no checkpoint between). `between` runs after the streams.
fn pooled_copy(
    c: &Cluster,
    p: &Pooler,
    chunks: &[Vec<u8>],
    between: &mut dyn FnMut(),
) -> Result<(f64, f64)> {
    let copy = pooled_streams(c, p, "bench_pooled", None, chunks)?;
    between();
    let index = timed_psql(c, &["-c", "CREATE INDEX ON bench_pooled (payload)"], None)?;
    c.psql("DROP TABLE bench_pooled")?;
    Ok((copy, index))
}

/// Seconds for `chunks` COPY'd at once through the pooler, as
/// [`pooled_copy`], into a table that has its second index already: the
/// payload's values are a hash of the id, so each row goes to a random
/// page of that index.
fn indexed_copy(c: &Cluster, p: &Pooler, chunks: &[Vec<u8>]) -> Result<f64> {
    let index = "CREATE INDEX ON bench_live (payload)";
    let copy = pooled_streams(c, p, "bench_live", Some(index), chunks)?;
    c.psql("DROP TABLE bench_live")?;
    Ok(copy)
}

fn concurrent_copy(c: &Cluster, chunks: &[Vec<u8>]) -> Result<f64> {
    c.psql("DROP TABLE IF EXISTS bench_streams")?;
    c.psql("CREATE TABLE bench_streams (id bigint, payload text, n int) WITH (autovacuum_enabled = false)")?;
    c.psql("CHECKPOINT")?;
    let elapsed = streams(chunks, |chunk| {
        timed_psql(c, &["-c", "COPY bench_streams FROM STDIN"], Some(chunk))
    })?;
    c.psql("DROP TABLE bench_streams")?;
    Ok(elapsed)
}

/// Seconds until every chunk has gone through `copy`, all at once (one
/// thread, one client each); the first stream's error if one failed.
fn streams<F>(chunks: &[Vec<u8>], copy: F) -> Result<f64>
where
    F: Fn(&[u8]) -> Result<f64> + Sync,
{
    let start = Instant::now();
    let results: Vec<Result<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks.iter().map(|chunk| s.spawn(|| copy(chunk))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("copy thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(elapsed)
}

/// tps of one pgbench run of `o.clients`, straight to the server or
/// through `via`. Through the pooler, the simple query protocol: with
/// transaction pooling a prepared statement (`-M prepared`) would land on
/// whichever server connection the next transaction gets, and PgBouncer
/// 1.18 does not track them (1.21+ can, with max_prepared_statements).
fn pgbench(c: &Cluster, via: Option<&Pooler>, o: &Options, select_only: bool) -> Result<f64> {
    let cmd = match via {
        Some(p) => {
            let mut cmd = p.client(c, "pgbench");
            cmd.args(["-M", "simple"]);
            cmd
        }
        None => c.client("pgbench"),
    };
    Ok(pgbench_via(cmd, o, select_only)?.0)
}

/// TPC-B with `--pooled-clients` through the pooler.
fn pooled_pgbench(c: &Cluster, p: &Pooler, o: &Options) -> Result<f64> {
    let o = Options {
        clients: o.pooled_clients,
        ..o.clone()
    };
    pgbench(c, Some(p), &o, false)
}

fn pgbench_via(
    mut cmd: std::process::Command,
    o: &Options,
    select_only: bool,
) -> Result<(f64, f64)> {
    cmd.args([
        "-n",
        "-c",
        &o.clients.to_string(),
        "-j",
        "2",
        "-T",
        &o.seconds.to_string(),
    ]);
    if select_only {
        cmd.arg("-S");
    }
    let out = cmd.output().context("cannot run pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps in pgbench output:\n{text}"))?;
    let tx = text
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|l| l.split(['/', ' ']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok((tps, tx))
}

/// Measures every config; `progress` hears what runs.
pub fn run(configs: &[Config], o: &Options, mut progress: impl FnMut(&str)) -> Result<Vec<Series>> {
    let data = Data {
        copy: rows(0, o.rows),
        chunks: {
            let per_stream = o.rows / o.streams.max(1) as u64;
            (0..o.streams as u64)
                .map(|i| rows(i * per_stream, per_stream))
                .collect()
        },
    };
    let clusters = configs
        .iter()
        .map(|cfg| start_cluster(cfg, o, &mut progress))
        .collect::<Result<Vec<_>>>()?;
    // Declared after the clusters: dropped (stopped) before them, so their
    // cgroups are empty when the clusters remove them.
    let sides = configs
        .iter()
        .zip(&clusters)
        .map(|(cfg, c)| start_sidecars(cfg, c, o, &mut progress))
        .collect::<Result<Vec<_>>>()?;
    // Warm-up: caches, the first checkpoints, the pgbench tables read once.
    for ((cfg, c), side) in configs.iter().zip(&clusters).zip(&sides) {
        progress(&format!("{}: warm-up", cfg.name));
        let warm = rows(0, (o.rows / 10).max(1000));
        let _ = copy_index(c, &warm, &mut || {});
        if o.workloads.iter().any(|w| w.needs_pgbench_tables()) {
            let short = Options {
                seconds: 5.min(o.seconds),
                ..o.clone()
            };
            let _ = pgbench(c, side.pooler_for(Workload::SelectOnly), &short, true);
        }
    }
    let sized;
    let o = if o.write_auto && o.workloads.contains(&Workload::Write) {
        let (secs, why) = size_write_run(&clusters[0], &sides[0], o)?;
        progress(&format!("write run: {secs} s: {why}"));
        sized = Options {
            write_seconds: secs,
            write_why: Some(why),
            ..o.clone()
        };
        &sized
    } else {
        o
    };
    let mut series = Recorder::default();
    // The timed metrics each workload records (a COPY and its index build
    // are two), for the confirming rounds.
    let mut metrics_of: Vec<(Workload, Vec<String>)> =
        o.workloads.iter().map(|w| (*w, Vec::new())).collect();
    let total = o.runs as usize * configs.len();
    let mut step = 0;
    for run in 1..=o.runs {
        for ((cfg, c), side) in configs.iter().zip(&clusters).zip(&sides) {
            step += 1;
            for (w, metrics) in &mut metrics_of {
                progress(&format!("[{step}/{total}] run {run}: {} {w:?}", cfg.name));
                let known = series.0.len();
                measure_one(*w, (cfg, c, side), &clusters, o, &data, &mut series)?;
                for s in &series.0[known..] {
                    if s.counter.is_none() && !metrics.contains(&s.metric) {
                        metrics.push(s.metric.clone());
                    }
                }
            }
        }
    }
    // A difference claimed on the asked runs is tested by more: rounds of
    // the workloads where some pair of configs' ranges is apart, until none
    // is or `confirm` rounds have run.
    for extra in 1..=o.confirm {
        let pending: Vec<Workload> = metrics_of
            .iter()
            .filter(|(_, ms)| ms.iter().any(|m| claim_pending(&series.0, m)))
            .map(|(w, _)| *w)
            .collect();
        if pending.is_empty() {
            break;
        }
        for ((cfg, c), side) in configs.iter().zip(&clusters).zip(&sides) {
            for w in &pending {
                progress(&format!(
                    "[confirming {extra}/{}] {} {w:?}: ranges apart after {} runs",
                    o.confirm,
                    cfg.name,
                    o.runs + extra - 1
                ));
                measure_one(*w, (cfg, c, side), &clusters, o, &data, &mut series)?;
            }
        }
    }
    drop(sides);
    drop(clusters);
    Ok(series.0)
}

/// One run of workload `w` on one config, after every cluster has flushed
/// its dirty pages (so none writes them during another's measurement);
/// none once an interrupt is stopping the servers.
fn measure_one(
    w: Workload,
    (cfg, c, side): (&Config, &Cluster, &Sidecars),
    clusters: &[Cluster],
    o: &Options,
    data: &Data,
    series: &mut Recorder,
) -> Result<()> {
    if scratch::stopping() {
        bail!("interrupted");
    }
    for other in clusters {
        let _ = other.psql("CHECKPOINT");
    }
    measure_counted(w, c, side, &cfg.name, o, data, series);
    Ok(())
}

/// The services beside one config's cluster.
struct Sidecars {
    pooler: Option<Pooler>,
    /// Why the pooler's pool is not the profile's (lowered to what this
    /// config's server takes).
    pool_note: Option<String>,
    /// Why the direct workloads' clients go through the pooler: this
    /// config's server cannot take `--clients` straight.
    routed: Option<String>,
    cache: Option<Cache>,
    /// Dropped last: the host's other processes outlive its services.
    _held: Option<services::Held>,
}

impl Sidecars {
    /// The pooler `w`'s clients go through: the pooled workloads', and
    /// the direct ones' where the server cannot take them straight.
    fn pooler_for(&self, w: Workload) -> Option<&Pooler> {
        let through = w.needs_pooler() || (w.direct_pgbench() && self.routed.is_some());
        self.pooler.as_ref().filter(|_| through)
    }

    /// What the report says beside `w`'s numbers for this config: how its
    /// clients reached the server, where that is not as asked.
    fn note_for(&self, w: Workload) -> Option<String> {
        self.pooler_for(w)?;
        let notes: Vec<&str> = [
            self.routed.as_deref().filter(|_| w.direct_pgbench()),
            self.pool_note.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// Holds the profile's reserves (when asked) and starts its PgBouncer
/// (when a workload needs it) and Redis (when asked) beside `c`, in its
/// cgroup; Redis filled to its maxmemory in what the reserves leave.
fn start_sidecars(
    cfg: &Config,
    c: &Cluster,
    o: &Options,
    progress: &mut impl FnMut(&str),
) -> Result<Sidecars> {
    let held = match o.held {
        Some(bytes) => {
            let h = services::Held::start(bytes, c)
                .with_context(|| format!("the reserves' memory for {}", cfg.name))?;
            let usage = c
                .cgroup
                .as_ref()
                .and_then(|cg| cg.usage().ok())
                .map(|u| format!(", the cgroup now at {} MiB", u.bytes() >> 20))
                .unwrap_or_default();
            progress(&format!(
                "{}: {} MiB of the profile's reserves held{usage}",
                cfg.name,
                h.bytes >> 20
            ));
            Some(h)
        }
        None => None,
    };
    let pooled = o.workloads.iter().any(|w| w.needs_pooler());
    let direct = o.workloads.iter().any(|w| w.direct_pgbench());
    let (mut pooler, mut pool_note, mut routed) = (None, None, None);
    if let Some(spec) = o.pooler.as_ref().filter(|_| pooled || direct) {
        // The server's own numbers: what it will refuse.
        let num = |name: &str| -> Result<u32> {
            c.psql(&format!("SHOW {name}"))?
                .trim()
                .parse()
                .with_context(|| format!("{name} of {}", cfg.name))
        };
        let (max, reserved) = (
            num("max_connections")?,
            num("superuser_reserved_connections")?,
        );
        let room = max.saturating_sub(reserved);
        // As the host would run it: clients the server cannot take go
        // through the PgBouncer the profile puts in front of it.
        if direct && o.clients > room {
            routed = Some(format!(
                "its {} clients through PgBouncer: its max_connections {max} less {reserved} reserved for superusers take {room} straight",
                o.clients
            ));
        }
        if pooled || routed.is_some() {
            let (pool, note) = spec
                .pool
                .fit(max, reserved)
                .with_context(|| format!("config {}", cfg.name))?;
            progress(&format!(
                "{}: PgBouncer ({} pooling, up to {} server connections){}{}",
                cfg.name,
                pool.mode(),
                pool.server_connections(),
                note.as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default(),
                routed
                    .as_deref()
                    .map(|r| format!("; {r}"))
                    .unwrap_or_default(),
            ));
            pooler = Some(
                Pooler::start(&spec.bin, &pool, c)
                    .with_context(|| format!("PgBouncer for {}", cfg.name))?,
            );
            pool_note = note;
        }
    }
    let cache = match &o.redis {
        Some(spec) => {
            let cache = Cache::start(&spec.bin, &spec.conf, c)
                .with_context(|| format!("Redis for {}", cfg.name))?;
            progress(&format!(
                "{}: Redis filled to its maxmemory of {} MiB",
                cfg.name,
                cache.maxmemory >> 20
            ));
            cache.fill()?;
            Some(cache)
        }
        None => None,
    };
    Ok(Sidecars {
        pooler,
        pool_note,
        routed,
        cache,
        _held: held,
    })
}

/// The write run's length from `c`'s WAL rate in a short TPC-B run
/// (`--seconds`, at most 10 s): long enough to write its max_wal_size
/// [`WAL_CROSSINGS`] times.
fn size_write_run(c: &Cluster, side: &Sidecars, o: &Options) -> Result<(u32, String)> {
    let lsn = || -> Result<f64> {
        c.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")?
            .trim()
            .parse()
            .context("WAL position")
    };
    let max_wal: f64 = c
        .psql("SELECT setting::float8 * 1048576 FROM pg_settings WHERE name = 'max_wal_size'")?
        .trim()
        .parse()
        .context("max_wal_size")?;
    let short = Options {
        seconds: o.seconds.min(10),
        ..o.clone()
    };
    let before = lsn()?;
    let start = Instant::now();
    pgbench(c, side.pooler_for(Workload::Write), &short, false)?;
    let rate = (lsn()? - before) / start.elapsed().as_secs_f64();
    Ok(write_seconds_for(
        rate,
        max_wal,
        WAL_CROSSINGS,
        o.seconds,
        o.write_seconds,
    ))
}

/// The rows every config loads, generated once.
struct Data {
    copy: Vec<u8>,
    /// One share of the rows per concurrent COPY stream.
    chunks: Vec<Vec<u8>>,
}

/// A scratch cluster running `cfg`, with pgbench's tables when a workload
/// needs them (autovacuum off on them: configs share the machine).
fn start_cluster(cfg: &Config, o: &Options, progress: &mut impl FnMut(&str)) -> Result<Cluster> {
    progress(&format!("starting a scratch cluster for {}", cfg.name));
    let extra: Vec<(&str, &str)> = cfg
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let cgroup = match o.host {
        Some(h) => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("dbtune-bench-{}-{n}", std::process::id());
            Some(cgroup::Cgroup::create(&name, h.ram, h.cpus, h.throttle()?)?)
        }
        None => None,
    };
    let c = Cluster::start_limited(&cluster::pg_bin_dir()?, &cfg.conf, &extra, "trust", cgroup)
        .with_context(|| format!("config {}", cfg.name))?;
    if o.workloads.iter().any(|w| w.needs_pgbench_tables()) {
        progress(&format!("{}: pgbench -i -s {}", cfg.name, o.scale));
        let out = c
            .client("pgbench")
            .args(["-i", "-q", "-s", &o.scale.to_string()])
            .output()?;
        if !out.status.success() {
            bail!(
                "pgbench -i failed for {}: {}",
                cfg.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Autovacuum would otherwise run on these tables while another
        // config is being measured.
        for t in [
            "pgbench_accounts",
            "pgbench_branches",
            "pgbench_tellers",
            "pgbench_history",
        ] {
            c.psql(&format!("ALTER TABLE {t} SET (autovacuum_enabled = false)"))?;
        }
    }
    Ok(c)
}

/// Every measurement, grouped by config and metric in the order first seen.
#[derive(Default)]
struct Recorder(Vec<Series>);

impl Recorder {
    fn record(&mut self, config: &str, metric: &str, unit: &'static str, r: Result<f64>) {
        self.record_counter(config, metric, None, unit, r)
    }

    fn record_counter(
        &mut self,
        config: &str,
        metric: &str,
        counter: Option<&'static str>,
        unit: &'static str,
        r: Result<f64>,
    ) {
        let series = &mut self.0;
        let i = match series
            .iter()
            .position(|s| s.config == config && s.metric == metric && s.counter == counter)
        {
            Some(i) => i,
            None => {
                series.push(Series {
                    config: config.to_string(),
                    metric: metric.to_string(),
                    counter,
                    unit,
                    values: Vec::new(),
                    failures: Vec::new(),
                    note: None,
                });
                series.len() - 1
            }
        };
        match r {
            Ok(v) => series[i].values.push(v),
            Err(e) => series[i].failures.push(format!("{e:#}")),
        }
    }

    /// Says how a config's runs of a timed metric reached the server (the
    /// same every run).
    fn note(&mut self, config: &str, metric: &str, note: String) {
        if let Some(s) = self
            .0
            .iter_mut()
            .find(|s| s.config == config && s.metric == metric && s.counter.is_none())
        {
            s.note = Some(note);
        }
    }

    /// Values recorded so far for a config's timed metric.
    fn count(&self, config: &str, metric: &str) -> usize {
        self.0
            .iter()
            .find(|s| s.config == config && s.metric == metric && s.counter.is_none())
            .map_or(0, |s| s.values.len())
    }

    /// Turns the last value of a config's timed metric into a failure.
    fn fail_last(&mut self, config: &str, metric: &str, why: String) {
        if let Some(s) = self
            .0
            .iter_mut()
            .find(|s| s.config == config && s.metric == metric && s.counter.is_none())
        {
            s.values.pop();
            s.failures.push(why);
        }
    }
}

/// The timed metric a workload's counters are reported under (for
/// copy-index and pooled-copy: the load's; the CREATE INDEX after it has
/// its own, [`index_metric`]).
fn main_metric(w: Workload, o: &Options) -> String {
    match w {
        Workload::CopyIndex => "COPY".into(),
        Workload::ConcurrentCopy => format!("{} concurrent COPY streams", o.streams),
        Workload::Tpcb => "pgbench TPC-B".into(),
        Workload::SelectOnly => "pgbench select-only".into(),
        Workload::Write => write_metric(o),
        Workload::Analytic => "hash aggregate of 500 000 groups (analytic)".into(),
        Workload::Floor => "COPY floor: UNLOGGED, no index".into(),
        Workload::PooledCopy => pooled_copy_metric(o),
        Workload::IndexedCopy => indexed_copy_metric(o),
        Workload::PooledTpcb => pooled_tpcb_metric(o),
    }
}

fn write_metric(o: &Options) -> String {
    match &o.write_why {
        Some(why) => format!(
            "pgbench TPC-B for {} s (writes, checkpoints; {why})",
            o.write_seconds
        ),
        None => format!(
            "pgbench TPC-B for {} s (writes, checkpoints)",
            o.write_seconds
        ),
    }
}

fn pooled_copy_metric(o: &Options) -> String {
    format!(
        "{} COPY streams through PgBouncer into an indexed table",
        o.streams
    )
}

fn indexed_copy_metric(o: &Options) -> String {
    format!(
        "{} COPY streams through PgBouncer into a table with a random-key index",
        o.streams
    )
}

fn pooled_tpcb_metric(o: &Options) -> String {
    format!(
        "pgbench TPC-B, {} clients through PgBouncer (simple protocol)",
        o.pooled_clients
    )
}

/// Cumulative server counters read before and after a run (None: this
/// server version has no such counter).
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    wal_bytes: Option<f64>,
    wal_fpi: Option<f64>,
    wal_syncs: Option<f64>,
    checkpoints_timed: Option<f64>,
    checkpoints_requested: Option<f64>,
    backend_writes: Option<f64>,
    temp_bytes: Option<f64>,
    blks_read: Option<f64>,
    blks_hit: Option<f64>,
    commits: Option<f64>,
}

/// The query reading [`Counters`] on PostgreSQL `major`: pg_stat_wal's
/// full-page images from 14, and its WAL syncs (the flushes a commit
/// waits for; none with fsync off) from 14 to 17, pg_stat_io's from 18,
/// which dropped them from pg_stat_wal; the checkpointer's own view from
/// 17, writes by client backends from pg_stat_io from 16
/// (pg_stat_bgwriter's buffers_backend before; 17 dropped it). One row,
/// ten columns; NULL where the major has no such counter.
pub fn counters_sql(major: u32) -> String {
    let fpi = if major >= 14 {
        "(SELECT wal_fpi FROM pg_stat_wal)"
    } else {
        "NULL"
    };
    let syncs = match major {
        ..=13 => "NULL",
        14..=17 => "(SELECT wal_sync FROM pg_stat_wal)",
        _ => "(SELECT sum(fsyncs) FROM pg_stat_io WHERE object = 'wal')",
    };
    let checkpoints = if major >= 17 {
        "(SELECT num_timed FROM pg_stat_checkpointer), (SELECT num_requested FROM pg_stat_checkpointer)"
    } else {
        "(SELECT checkpoints_timed FROM pg_stat_bgwriter), (SELECT checkpoints_req FROM pg_stat_bgwriter)"
    };
    let backend = if major >= 16 {
        "(SELECT sum(writes) FROM pg_stat_io WHERE backend_type = 'client backend')"
    } else {
        "(SELECT buffers_backend FROM pg_stat_bgwriter)"
    };
    format!(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), {fpi}, {syncs}, {checkpoints}, {backend}, \
         temp_bytes, blks_read, blks_hit, xact_commit \
         FROM pg_stat_database WHERE datname = current_database()"
    )
}

fn server_major(c: &Cluster) -> Result<u32> {
    let num: u32 = c.psql("SHOW server_version_num")?.trim().parse()?;
    Ok(num / 10000)
}

/// Before 16, a backend's writes reach pg_stat_bgwriter.buffers_backend
/// only when the checkpointer absorbs the backends' sync requests and then
/// reports its statistics: it wakes for that when its request queue (one
/// slot per shared buffer) is half full, or for a checkpoint. With large
/// shared_buffers and no checkpoint in a run, the writes of that run were
/// never shown (PGTune's configs read 0), and the next phase's own
/// CHECKPOINT credited them to that phase. So the counter is read after a
/// CHECKPOINT, once the checkpointer's report (sent after the checkpoint
/// completes) has arrived. From 16 pg_stat_io is the backends' own.
fn settle_backend_writes(c: &Cluster, major: u32) -> Result<Option<f64>> {
    if major >= 16 {
        return Ok(None);
    }
    let read = || -> Result<Option<f64>> {
        Ok(c.psql("SELECT buffers_backend FROM pg_stat_bgwriter")?
            .trim()
            .parse()
            .ok())
    };
    c.psql("CHECKPOINT")?;
    let mut last = read()?;
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = read()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

fn read_counters(c: &Cluster) -> Result<Counters> {
    let line = c.psql(&counters_sql(server_major(c)?))?;
    let f: Vec<Option<f64>> = line.trim().split('|').map(|v| v.parse().ok()).collect();
    if f.len() != 10 {
        bail!("unexpected counters: {line}");
    }
    Ok(Counters {
        wal_bytes: f[0],
        wal_fpi: f[1],
        wal_syncs: f[2],
        checkpoints_timed: f[3],
        checkpoints_requested: f[4],
        backend_writes: f[5],
        temp_bytes: f[6],
        blks_read: f[7],
        blks_hit: f[8],
        commits: f[9],
    })
}

/// This machine's CPU time so far, from /proc/stat's `cpu` line, in
/// clock ticks: (busy, iowait, steal, total). Busy is user, nice, system,
/// irq and softirq; steal is time the hypervisor gave another guest.
/// Machine-wide, not the cgroup's: pgbench and psql run outside it on the
/// same CPUs, and what bounds a run is whether the machine had any left.
fn cpu_ticks(stat: &str) -> Option<(f64, f64, f64, f64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = f[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq;
    Some((busy, iowait, steal, busy + idle + iowait + steal))
}

/// (busy %, iowait %, steal %) of this machine's CPUs between two
/// readings of /proc/stat.
fn cpu_shares(before: &str, after: &str) -> Option<(f64, f64, f64)> {
    let (b0, w0, s0, t0) = cpu_ticks(before)?;
    let (b1, w1, s1, t1) = cpu_ticks(after)?;
    let t = t1 - t0;
    (t > 0.0).then(|| {
        let pct = |x: f64| 100.0 * x / t;
        (pct(b1 - b0), pct(w1 - w0), pct(s1 - s0))
    })
}

/// Rows a COPY workload loads in one run (what WAL per row divides by).
fn rows_of(w: Workload, o: &Options) -> Option<f64> {
    match w {
        Workload::CopyIndex | Workload::Floor => Some(o.rows as f64),
        Workload::ConcurrentCopy | Workload::PooledCopy | Workload::IndexedCopy => {
            Some((o.rows / o.streams.max(1) as u64 * o.streams as u64) as f64)
        }
        _ => None,
    }
}

/// What is read at the edges of a measured phase: the server's counters,
/// this machine's CPU time, and the cgroup's disk bytes and dirty page
/// cache.
struct Snapshot {
    server: Option<Counters>,
    cpu: String,
    disk: Option<(u64, u64)>,
    dirty: Option<u64>,
}

impl Snapshot {
    fn take(c: &Cluster) -> Snapshot {
        Snapshot {
            server: read_counters(c).ok(),
            cpu: std::fs::read_to_string("/proc/stat").unwrap_or_default(),
            disk: c.cgroup.as_ref().and_then(|cg| cg.disk_bytes()),
            dirty: c.cgroup.as_ref().and_then(|cg| cg.dirty()),
        }
    }
}

/// The metric of a workload's second phase, timed on its own: the CREATE
/// INDEX after a load. Its counters are its own, read between the phases.
fn index_metric(w: Workload) -> Option<&'static str> {
    match w {
        Workload::CopyIndex => Some(CREATE_INDEX),
        Workload::PooledCopy => Some(CREATE_INDEX_AFTER_POOLED),
        _ => None,
    }
}

const CREATE_INDEX: &str = "CREATE INDEX";
const CREATE_INDEX_AFTER_POOLED: &str = "CREATE INDEX after the pooled COPY";

/// One run of one workload with the mechanism counters around it: what
/// changed in the server's counters, the cgroup's peak memory and the OOM
/// kills in it. A run during which the OOM killer struck is a lost run
/// (recorded as a failure), whatever the timing says. A load followed by
/// CREATE INDEX gets counters for each phase.
fn measure_counted(
    w: Workload,
    c: &Cluster,
    side: &Sidecars,
    name: &str,
    o: &Options,
    data: &Data,
    rec: &mut Recorder,
) {
    let metric = main_metric(w, o);
    let major = server_major(c).ok();
    // Writes of earlier phases are shown before this one starts.
    if let Some(m) = major {
        let _ = settle_backend_writes(c, m);
    }
    let kills_before = c.cgroup.as_ref().and_then(|cg| cg.oom_kills().ok());
    if let Some(cg) = &c.cgroup {
        cg.reset_peak();
    }
    let recorded = rec.count(name, &metric);
    let pool_before = side.pooler.as_ref().and_then(|p| p.totals(c).ok());
    let sampler = side
        .pooler_for(w)
        .map(|p| services::WaitSampler::start(p, c));
    // Redis's clients keep working while PostgreSQL is measured.
    let churn = match (&side.cache, &o.redis) {
        (Some(r), Some(spec)) => r.churn(spec.writes_per_sec).ok(),
        _ => None,
    };
    let before = Snapshot::take(c);
    let mut between = None;
    measure(w, c, side, name, o, data, rec, &mut || {
        let mut s = Snapshot::take(c);
        // Before 16 a backend's writes are shown only after a CHECKPOINT,
        // which here would write back what the next phase is to meet.
        if major.is_some_and(|m| m < 16) {
            if let Some(server) = &mut s.server {
                server.backend_writes = None;
            }
        }
        between = Some(s);
    });
    let mut after = Snapshot::take(c);
    if let Some(note) = side.note_for(w) {
        rec.note(name, &metric, note);
    }
    if let Some(p) = side.pooler_for(w) {
        if let Err(e) = p.close_servers(c) {
            crate::note!("{name}: PgBouncer's server connections stay open ({e:#}): a direct workload next may find the server full");
        }
    }
    if let Some(rate) = churn.and_then(|ch| ch.finish()) {
        rec.record_counter(name, &metric, Some("redis writes/s"), "count", Ok(rate));
    }
    if let (Some(s), Some(p)) = (sampler, side.pooler_for(w)) {
        rec.record_counter(name, &metric, Some("max waiting"), "count", Ok(s.finish()));
        if let (Some((x0, w0)), Ok((x1, w1))) = (pool_before, p.totals(c)) {
            if x1 > x0 {
                let wait_ms = (w1 - w0) / (x1 - x0) / 1000.0;
                rec.record_counter(name, &metric, Some("wait ms/xact"), "count", Ok(wait_ms));
            }
        }
    }
    if let Some(r) = &side.cache {
        if let Ok((used, rss)) = r.memory() {
            let mib = |b: f64| b / (1u64 << 20) as f64;
            rec.record_counter(name, &metric, Some("redis MiB"), "count", Ok(mib(used)));
            rec.record_counter(name, &metric, Some("redis RSS MiB"), "count", Ok(mib(rss)));
        }
    }
    let kills = c.cgroup.as_ref().and_then(|cg| {
        let after = cg.oom_kills().ok()?;
        Some(after - kills_before.unwrap_or(after))
    });
    if let Some(cg) = &c.cgroup {
        if let Ok(peak) = cg.peak() {
            let mib = peak.bytes() as f64 / (1u64 << 20) as f64;
            rec.record_counter(name, &metric, Some("peak MiB"), "count", Ok(mib));
        }
        rec.record_counter(
            name,
            &metric,
            Some("OOM kills"),
            "count",
            kills
                .map(|k| k as f64)
                .context("no OOM kill counter in this kernel's cgroup"),
        );
        if kills.unwrap_or(0) > 0 && rec.count(name, &metric) > recorded {
            rec.fail_last(
                name,
                &metric,
                format!(
                    "lost: the OOM killer killed {} process(es) in the host's {}",
                    kills.unwrap_or(0),
                    cg.limit
                ),
            );
        }
    }
    // After every other counter is read: the CHECKPOINT that shows this
    // run's backend writes must not count as one of its checkpoints.
    if let Some(m) = major {
        if let (Ok(Some(v)), Some(server)) = (settle_backend_writes(c, m), &mut after.server) {
            server.backend_writes = Some(v);
        }
    }
    let rows = rows_of(w, o);
    let per_commit = matches!(
        w,
        Workload::Tpcb | Workload::SelectOnly | Workload::Write | Workload::PooledTpcb
    );
    match (&between, index_metric(w)) {
        (Some(mid), Some(index)) => {
            record_phase(rec, name, &metric, &before, mid, rows, per_commit);
            record_phase(rec, name, index, mid, &after, rows, false);
            // Not split before 16 (above): the two phases' together.
            if let (true, Some(b), Some(a)) =
                (major.is_some_and(|m| m < 16), before.server, after.server)
            {
                if let Some(v) = delta(b.backend_writes, a.backend_writes) {
                    rec.record_counter(name, &metric, Some(BACKEND_WRITES_BOTH), "count", Ok(v));
                }
            }
        }
        _ => record_phase(rec, name, &metric, &before, &after, rows, per_commit),
    }
}

/// The backends' writes of a load and the CREATE INDEX after it, where the
/// server (before 16) cannot show them apart.
const BACKEND_WRITES_BOTH: &str = "backend writes, load and index";

/// `y - x` where both are known and it did not go backwards (a server
/// restarted after a kill starts its counters again).
fn delta(x: Option<f64>, y: Option<f64>) -> Option<f64> {
    Some(y? - x?).filter(|v| *v >= 0.0)
}

/// The counters of one phase, from `b` to `a`, under `metric`: per row of
/// `rows` where given, else per transaction committed when `per_commit`.
fn record_phase(
    rec: &mut Recorder,
    name: &str,
    metric: &str,
    b: &Snapshot,
    a: &Snapshot,
    rows: Option<f64>,
    per_commit: bool,
) {
    let mut put = |counter: &'static str, v: Option<f64>| {
        if let Some(v) = v {
            rec.record_counter(name, metric, Some(counter), "count", Ok(v));
        }
    };
    let mib = |b: f64| b / (1u64 << 20) as f64;
    if let (Some((r0, w0)), Some((r1, w1))) = (b.disk, a.disk) {
        put("disk read MiB", Some(mib(r1.saturating_sub(r0) as f64)));
        put("disk write MiB", Some(mib(w1.saturating_sub(w0) as f64)));
    }
    // What bounded the phase: the CPUs (busy near 100%), the disk
    // (iowait), or this VM's neighbours (steal).
    if let Some((busy, iowait, steal)) = cpu_shares(&b.cpu, &a.cpu) {
        put("CPU busy %", Some(busy));
        put("iowait %", Some(iowait));
        put("steal %", Some(steal));
    }
    // What the phase found left to write back by the one before it.
    put("dirty MiB", b.dirty.map(|d| mib(d as f64)));
    let (Some(b), Some(a)) = (b.server, a.server) else {
        return;
    };
    let units = rows.or_else(|| per_commit.then(|| delta(b.commits, a.commits)).flatten());
    let per = |v: Option<f64>| match units {
        Some(u) if u > 0.0 => v.map(|v| v / u),
        _ => None,
    };
    let wal = delta(b.wal_bytes, a.wal_bytes);
    put("WAL MiB", wal.map(mib));
    put("WAL B/unit", per(wal));
    put("FPI/unit", per(delta(b.wal_fpi, a.wal_fpi)));
    // WAL flushes per unit: below 1 a transaction, commits share them.
    put("WAL syncs/unit", per(delta(b.wal_syncs, a.wal_syncs)));
    put(
        "ckpt timed",
        delta(b.checkpoints_timed, a.checkpoints_timed),
    );
    put(
        "ckpt req",
        delta(b.checkpoints_requested, a.checkpoints_requested),
    );
    put("backend writes", delta(b.backend_writes, a.backend_writes));
    put("temp MiB", delta(b.temp_bytes, a.temp_bytes).map(mib));
    let (read, hit) = (
        delta(b.blks_read, a.blks_read),
        delta(b.blks_hit, a.blks_hit),
    );
    put("blks read", read);
    if let (Some(r), Some(h)) = (read, hit) {
        if r + h > 0.0 {
            put("hit %", Some(100.0 * h / (r + h)));
        }
    }
}

/// One run of one workload on one cluster, recorded under its metrics;
/// `between` runs between the phases of a workload that has two.
#[allow(clippy::too_many_arguments)]
fn measure(
    w: Workload,
    c: &Cluster,
    side: &Sidecars,
    name: &str,
    o: &Options,
    data: &Data,
    rec: &mut Recorder,
    between: &mut dyn FnMut(),
) {
    let no_pooler = || anyhow::anyhow!("no PgBouncer: the profile renders none");
    match w {
        Workload::CopyIndex => match copy_index(c, &data.copy, between) {
            Ok((copy, index)) => {
                rec.record(name, "COPY", "s", Ok(copy));
                rec.record(name, CREATE_INDEX, "s", Ok(index));
            }
            Err(e) => {
                let msg = format!("{e:#}");
                rec.record(name, "COPY", "s", Err(anyhow::anyhow!(msg.clone())));
                rec.record(name, CREATE_INDEX, "s", Err(anyhow::anyhow!(msg)));
            }
        },
        Workload::ConcurrentCopy => {
            let metric = format!("{} concurrent COPY streams", o.streams);
            rec.record(name, &metric, "s", concurrent_copy(c, &data.chunks))
        }
        Workload::Tpcb => rec.record(
            name,
            "pgbench TPC-B",
            "tps",
            pgbench(c, side.pooler_for(w), o, false),
        ),
        Workload::SelectOnly => rec.record(
            name,
            "pgbench select-only",
            "tps",
            pgbench(c, side.pooler_for(w), o, true),
        ),
        Workload::Write => {
            let metric = write_metric(o);
            match write_run(c, side.pooler_for(w), o) {
                Ok((tps, cps)) => {
                    rec.record(name, &metric, "tps", Ok(tps));
                    rec.record(name, "checkpoints during the write run", "count", Ok(cps));
                }
                Err(e) => rec.record(name, &metric, "tps", Err(e)),
            }
        }
        Workload::Analytic => rec.record(
            name,
            "hash aggregate of 500 000 groups (analytic)",
            "s",
            analytic(c),
        ),
        Workload::Floor => rec.record(
            name,
            "COPY floor: UNLOGGED, no index",
            "s",
            copy_floor(c, &data.copy),
        ),
        Workload::PooledCopy => {
            let metric = pooled_copy_metric(o);
            let r = side
                .pooler
                .as_ref()
                .ok_or_else(no_pooler)
                .and_then(|p| pooled_copy(c, p, &data.chunks, between));
            match r {
                Ok((copy, index)) => {
                    rec.record(name, &metric, "s", Ok(copy));
                    rec.record(name, CREATE_INDEX_AFTER_POOLED, "s", Ok(index));
                }
                Err(e) => rec.record(name, &metric, "s", Err(e)),
            }
        }
        Workload::IndexedCopy => {
            let r = side
                .pooler
                .as_ref()
                .ok_or_else(no_pooler)
                .and_then(|p| indexed_copy(c, p, &data.chunks));
            rec.record(name, &indexed_copy_metric(o), "s", r)
        }
        Workload::PooledTpcb => {
            let r = side
                .pooler
                .as_ref()
                .ok_or_else(no_pooler)
                .and_then(|p| pooled_pgbench(c, p, o));
            rec.record(name, &pooled_tpcb_metric(o), "tps", r)
        }
    }
}

/// The report: per metric, each config's median, min, max and its speed
/// relative to the first config (above 1 is faster), what the ranges allow
/// to claim, and where confirming rounds ran after the `asked_runs`, which
/// claims of those runs they held.
pub fn report(series: &[Series], configs: &[Config], asked_runs: u32) -> String {
    let mut out = String::new();
    let mut metrics: Vec<&str> = Vec::new();
    for s in series {
        if s.counter.is_none() && !metrics.contains(&s.metric.as_str()) {
            metrics.push(&s.metric);
        }
    }
    let w = configs
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    for m in metrics {
        let rows: Vec<&Series> = configs
            .iter()
            .filter_map(|c| {
                series
                    .iter()
                    .find(|s| s.metric == m && s.config == c.name && s.counter.is_none())
            })
            .collect();
        let Some(base) = rows.first().and_then(|s| s.median()) else {
            continue;
        };
        let unit = rows[0].unit;
        out.push_str(&format!(
            "\n{m} ({}):\n  {:<w$} {:>10} {:>10} {:>10} {:>7}  runs\n",
            match unit {
                "s" => "seconds, lower is better",
                "count" => "count, fewer is better",
                _ => "transactions/s, higher is better",
            },
            "config",
            "median",
            "min",
            "max",
            "speed"
        ));
        for s in &rows {
            let (Some(med), Some(min), Some(max)) = (s.median(), s.min(), s.max()) else {
                out.push_str(&format!(
                    "  {:<w$} all runs failed: {}\n",
                    s.config,
                    s.failures.join("; ")
                ));
                continue;
            };
            let speed = relative(unit, base, med);
            out.push_str(&format!(
                "  {:<w$} {med:>10.2} {min:>10.2} {max:>10.2} {speed:>7}  {}{}\n",
                s.config,
                s.values.len(),
                if s.failures.is_empty() {
                    String::new()
                } else {
                    format!(" ({} failed: {})", s.failures.len(), s.failures[0])
                }
            ));
        }
        for s in &rows {
            if let Some(n) = &s.note {
                out.push_str(&format!("  {}: {n}\n", s.config));
            }
        }
        out.push_str(&counters_table(series, configs, m, w));
        out.push_str(&verdict(&rows));
        out.push_str(&confirmed(&rows, asked_runs as usize));
    }
    out
}

/// The mechanism counters of metric `m`, a median per config: one column
/// per counter any config has.
fn counters_table(series: &[Series], configs: &[Config], m: &str, w: usize) -> String {
    let mut names: Vec<&'static str> = Vec::new();
    for s in series.iter().filter(|s| s.metric == m) {
        if let Some(c) = s.counter {
            if !names.contains(&c) {
                names.push(c);
            }
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "  counters (median per run; unit = transaction or row; a COPY's requested checkpoints include bench's own before it):\n  {:<w$}",
        "config"
    );
    // A column as wide as its name, at least 14.
    let width = |n: &str| n.len().max(14);
    for n in &names {
        out.push_str(&format!(" {n:>0$}", width(n)));
    }
    out.push('\n');
    for c in configs {
        out.push_str(&format!("  {:<w$}", c.name));
        for n in &names {
            let v = series
                .iter()
                .find(|s| s.metric == m && s.config == c.name && s.counter == Some(n))
                .and_then(|s| s.median());
            let cw = width(n);
            out.push_str(&match v {
                Some(v) if v.abs() >= 100.0 || v == v.trunc() => format!(" {v:>cw$.0}"),
                Some(v) => format!(" {v:>cw$.2}"),
                None => format!(" {:>cw$}", "-"),
            });
        }
        out.push('\n');
    }
    out
}

/// Runs each side needs before a difference is claimed: with one or two,
/// ranges apart say little.
const RUNS_TO_CLAIM: usize = 3;

/// What two configs' runs allow to claim: `Some(true)` where `s` is better
/// than `base` with the ranges apart, `Some(false)` worse, None where the
/// ranges overlap; Err with the count where either side has fewer than
/// [`RUNS_TO_CLAIM`] runs.
fn compare(base: &Series, s: &Series) -> std::result::Result<Option<bool>, usize> {
    let fewest = s.values.len().min(base.values.len());
    if fewest < RUNS_TO_CLAIM {
        return Err(fewest);
    }
    let (Some(bmin), Some(bmax), Some(min), Some(max)) = (base.min(), base.max(), s.min(), s.max())
    else {
        return Err(0);
    };
    if min > bmax || max < bmin {
        let higher = min > bmax;
        Ok(Some(if base.unit == "tps" { higher } else { !higher }))
    } else {
        Ok(None)
    }
}

/// What the runs allow to claim between every pair of configs, each later
/// config against each earlier one (the first is the baseline; the last
/// against the others says whether a rendering is ahead of PGTune's): a
/// config is faster or slower only where the two min-max ranges do not
/// overlap, with enough runs on both sides; otherwise no claim, whatever
/// the medians say.
fn verdict(rows: &[&Series]) -> String {
    let mut out = String::new();
    for (j, s) in rows.iter().enumerate().skip(1) {
        for base in &rows[..j] {
            if base.values.is_empty() || s.values.is_empty() {
                continue;
            }
            let claim = match compare(base, s) {
                Err(fewest) => format!(
                    "no claim against {}: too few runs ({fewest}; {RUNS_TO_CLAIM} needed)",
                    base.config
                ),
                Ok(Some(better)) => format!(
                    "{} than {} (ranges apart, {} and {} runs)",
                    if better { "better" } else { "worse" },
                    base.config,
                    s.values.len(),
                    base.values.len()
                ),
                Ok(None) => format!("overlaps {}: no claim", base.config),
            };
            out.push_str(&format!("  {}: {claim}\n", s.config));
        }
    }
    out
}

/// What the confirming rounds did to the claims of the asked runs: the
/// pairs apart after them, and whether the runs added kept them apart.
/// Nothing where no round was added. The runs are in the order they ran.
fn confirmed(rows: &[&Series], asked: usize) -> String {
    let most = rows.iter().map(|s| s.values.len()).max().unwrap_or(0);
    if most <= asked {
        return String::new();
    }
    let first = |s: &Series| Series {
        values: s.values.iter().take(asked).copied().collect(),
        ..s.clone()
    };
    let mut out = String::new();
    for (j, s) in rows.iter().enumerate().skip(1) {
        for base in &rows[..j] {
            let Ok(Some(better)) = compare(&first(base), &first(s)) else {
                continue;
            };
            let now = match compare(base, s) {
                Ok(Some(b)) if b == better => "still apart",
                Ok(Some(_)) => "apart the other way",
                _ => "not held: the ranges now overlap",
            };
            out.push_str(&format!(
                "  {}: {} than {} after the first {asked} runs; after {} and {}: {now}\n",
                s.config,
                if better { "better" } else { "worse" },
                base.config,
                s.values.len(),
                base.values.len()
            ));
        }
    }
    out
}

/// Whether some pair of configs' runs of the timed `metric` has its ranges
/// apart: a claim the confirming rounds are to test. An overlap needs no
/// more runs: min-max ranges only widen, so more runs cannot make one a
/// claim. Counts (the write run's checkpoints) are not timings: the
/// machine's noise does not move them, and rounds for them would only
/// repeat the longest run.
fn claim_pending(series: &[Series], metric: &str) -> bool {
    let rows: Vec<&Series> = series
        .iter()
        .filter(|s| s.metric == metric && s.counter.is_none() && s.unit != "count")
        .collect();
    rows.iter().enumerate().any(|(j, s)| {
        rows[..j]
            .iter()
            .any(|base| matches!(compare(base, s), Ok(Some(_))))
    })
}

/// A config's median against the first config's, as "1.25x" (above 1 is
/// better), or "-" where no ratio means anything: a zero on either side
/// (no checkpoints in a write run, say) unless both are zero (the same).
fn relative(unit: &str, base: f64, med: f64) -> String {
    if med == base {
        return "1.00x".into();
    }
    if med == 0.0 || base == 0.0 {
        return "-".into();
    }
    let r = if unit == "tps" {
        med / base
    } else {
        base / med
    };
    format!("{r:.2}x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_its_base_with_every_durability_setting_off() {
        let base = Config {
            name: "dbtune low-memory".into(),
            conf: "shared_buffers = 335MB\nfsync = on\n".into(),
            extra: vec![
                ("huge_pages".into(), "off".into()),
                ("full_page_writes".into(), "on".into()),
            ],
        };
        let c = ceiling(&base);
        assert_eq!(c.name, CEILING);
        // The same file: its memory and WAL sizes are what it is the
        // ceiling of; the extras come after the file, so they win.
        assert_eq!(c.conf, base.conf);
        let set = |k: &str| -> Vec<&str> {
            c.extra
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(set("huge_pages"), ["off"]);
        for k in ["fsync", "synchronous_commit", "full_page_writes"] {
            assert_eq!(set(k), ["off"], "{k}");
        }
        assert_eq!(c.extra.len(), 4, "{:?}", c.extra);
    }

    #[test]
    fn ratios_say_better_above_one_and_nothing_where_a_side_is_zero() {
        assert_eq!(relative("s", 2.0, 1.0), "2.00x");
        assert_eq!(relative("tps", 100.0, 50.0), "0.50x");
        assert_eq!(relative("count", 0.0, 0.0), "1.00x");
        assert_eq!(relative("count", 2.0, 0.0), "-");
        assert_eq!(relative("count", 0.0, 3.0), "-");
    }

    #[test]
    fn a_difference_is_claimed_only_with_ranges_apart_and_three_runs() {
        let s = |config: &str, unit: &'static str, v: &[f64]| Series {
            config: config.into(),
            metric: "m".into(),
            counter: None,
            unit,
            values: v.to_vec(),
            failures: vec![],
            note: None,
        };
        let base = s("defaults", "tps", &[100.0, 110.0, 105.0]);
        let apart = s("tuned", "tps", &[120.0, 130.0, 125.0, 122.0]);
        let overlap = s("pgtune", "tps", &[108.0, 131.0, 125.0]);
        let few = s("one", "tps", &[300.0]);
        // Each config against each earlier one: the last line of a pair
        // says whether a rendering is ahead of PGTune's.
        assert_eq!(
            verdict(&[&base, &apart, &overlap, &few]),
            "  tuned: better than defaults (ranges apart, 4 and 3 runs)\n\
             \x20 pgtune: overlaps defaults: no claim\n\
             \x20 pgtune: overlaps tuned: no claim\n\
             \x20 one: no claim against defaults: too few runs (1; 3 needed)\n\
             \x20 one: no claim against tuned: too few runs (1; 3 needed)\n\
             \x20 one: no claim against pgtune: too few runs (1; 3 needed)\n"
        );
        // Seconds: lower is better.
        let base = s("defaults", "s", &[1.0, 1.1, 1.2]);
        let slower = s("x", "s", &[2.0, 2.1, 2.2]);
        assert_eq!(
            verdict(&[&base, &slower]),
            "  x: worse than defaults (ranges apart, 3 and 3 runs)\n"
        );
        // A config whose every run failed has no line.
        let failed = Series {
            failures: vec!["killed".into()],
            ..s("y", "s", &[])
        };
        assert_eq!(verdict(&[&base, &failed]), "");
    }

    #[test]
    fn the_report_says_which_claims_the_added_rounds_held() {
        let s = |config: &str, v: &[f64]| Series {
            config: config.into(),
            metric: "m".into(),
            counter: None,
            unit: "tps",
            values: v.to_vec(),
            failures: vec![],
            note: None,
        };
        // Apart after three runs; the fourth and fifth of pgtune reach
        // into the defaults' range; dbtune stays above both.
        let base = s("defaults", &[100.0, 110.0, 105.0, 104.0, 108.0]);
        let pgtune = s("pgtune", &[120.0, 130.0, 125.0, 109.0, 126.0]);
        let dbtune = s("dbtune", &[140.0, 150.0, 145.0, 141.0, 139.0]);
        assert_eq!(
            confirmed(&[&base, &pgtune, &dbtune], 3),
            "  pgtune: better than defaults after the first 3 runs; after 5 and 5: not held: the ranges now overlap\n\
             \x20 dbtune: better than defaults after the first 3 runs; after 5 and 5: still apart\n\
             \x20 dbtune: better than pgtune after the first 3 runs; after 5 and 5: still apart\n"
        );
        // No round added: nothing to say.
        let three = |v: &Series| Series {
            values: v.values[..3].to_vec(),
            ..v.clone()
        };
        assert_eq!(confirmed(&[&three(&base), &three(&dbtune)], 3), "");
    }

    #[test]
    fn confirming_rounds_are_asked_where_a_pair_is_apart_and_only_there() {
        let s = |config: &str, metric: &str, counter: Option<&'static str>, v: &[f64]| Series {
            config: config.into(),
            metric: metric.into(),
            counter,
            unit: "s",
            values: v.to_vec(),
            failures: vec![],
            note: None,
        };
        let series = [
            // Apart between the two later configs only.
            s("defaults", "copy", None, &[10.0, 12.0, 11.0]),
            s("pgtune", "copy", None, &[9.0, 10.5, 10.0]),
            s("dbtune", "copy", None, &[11.0, 11.5, 12.5]),
            // Overlapping everywhere; a counter apart does not count.
            s("defaults", "tpcb", None, &[1.0, 2.0, 3.0]),
            s("dbtune", "tpcb", None, &[2.5, 3.5, 3.0]),
            s("defaults", "tpcb", Some("WAL"), &[100.0, 100.0, 100.0]),
            s("dbtune", "tpcb", Some("WAL"), &[1.0, 1.0, 1.0]),
            // A count apart: not a timing, nothing to confirm.
            Series {
                unit: "count",
                ..s("defaults", "checkpoints", None, &[3.0, 3.0, 4.0])
            },
            Series {
                unit: "count",
                ..s("dbtune", "checkpoints", None, &[0.0, 0.0, 0.0])
            },
            // Apart, but on two runs: nothing to confirm yet.
            s("defaults", "index", None, &[1.0, 1.1]),
            s("dbtune", "index", None, &[2.0, 2.1]),
        ];
        assert!(claim_pending(&series, "copy"));
        assert!(!claim_pending(&series, "tpcb"));
        assert!(!claim_pending(&series, "index"));
        assert!(!claim_pending(&series, "checkpoints"));
        assert!(!claim_pending(&series, "absent"));
    }

    #[test]
    fn the_write_run_crosses_max_wal_size_three_times_within_its_bounds() {
        let gib = (1u64 << 30) as f64;
        let mib = (1u64 << 20) as f64;
        // 10 MiB/s: 3 GiB take 308 s (rounded up).
        let (secs, why) = write_seconds_for(10.0 * mib, gib, 3, 20, 600);
        assert_eq!(secs, 308);
        assert_eq!(
            why,
            "the defaults wrote 10.0 MiB/s of WAL in the warm-up; 3 x their max_wal_size of 1024 MiB takes 308 s"
        );
        // Slow WAL: the cap, and the report says so.
        let (secs, why) = write_seconds_for(2.0 * mib, gib, 3, 20, 600);
        assert_eq!(secs, 600);
        assert!(
            why.ends_with("takes 1536 s, capped at 600 s (--write-seconds)"),
            "{why}"
        );
        // Fast WAL: never shorter than a pgbench run.
        assert_eq!(write_seconds_for(1000.0 * mib, gib, 3, 20, 600).0, 20);
        // No WAL measured: as long as allowed.
        assert_eq!(write_seconds_for(0.0, gib, 3, 20, 600).0, 600);
        // A cap below the floor: the cap.
        assert_eq!(write_seconds_for(1000.0 * mib, gib, 3, 20, 3).0, 3);
    }

    #[test]
    fn cpu_shares_split_busy_iowait_and_steal() {
        let before = "cpu  100 0 50 800 40 0 10 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        // 100 ticks: 60 busy (user 40, system 15, softirq 5), 25 idle,
        // 10 iowait, 5 steal.
        let after = "cpu  140 0 65 825 50 0 15 5 0 0\n";
        let (busy, iowait, steal) = cpu_shares(before, after).unwrap();
        assert_eq!((busy, iowait, steal), (60.0, 10.0, 5.0));
        // No time passed, or no cpu line: no reading, not a division by zero.
        assert_eq!(cpu_shares(after, after), None);
        assert_eq!(cpu_shares("intr 1 2", after), None);
    }

    #[test]
    fn medians_of_odd_and_even_runs() {
        let s = |v: &[f64]| Series {
            config: "a".into(),
            metric: "m".into(),
            unit: "s",
            counter: None,
            values: v.to_vec(),
            failures: vec![],
            note: None,
        };
        assert_eq!(s(&[3.0, 1.0, 2.0]).median(), Some(2.0));
        assert_eq!(s(&[4.0, 1.0, 2.0, 3.0]).median(), Some(2.5));
        assert_eq!(s(&[]).median(), None);
    }

    #[test]
    fn copy_rows_are_tab_separated_and_counted() {
        let r = rows(10, 3);
        let text = String::from_utf8(r).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().all(|l| l.split('\t').count() == 3));
        assert!(text.starts_with("10\t"));
    }
}
