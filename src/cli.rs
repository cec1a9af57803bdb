//! Command-line interface. The doc comment of each field is its help text.

use crate::version::PgVersion;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::facts::StorageKind;
use crate::service::FileKind;
use crate::units::ByteSize;

#[derive(Debug, Parser)]
#[command(
    name = "dbtune",
    version,
    about = "Tune PostgreSQL, Redis, PgBouncer and ZFS for a host, and prove the set fits in its memory"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show this host's facts, where each came from, and what render tunes for it.
    Detect {
        /// Print the facts as JSON (a facts file `render --facts` accepts).
        #[arg(long)]
        json: bool,
        /// What the database is for, as render would take it [default: mixed].
        #[arg(long, value_enum)]
        workload: Option<crate::profile::Workload>,
        /// PostgreSQL data directory whose storage and filesystem matter
        /// [default: /var/lib/postgresql if it exists, else /].
        #[arg(long, value_name = "PATH")]
        data_dir: Option<PathBuf>,
        /// Read /proc and /sys under this directory instead of / (testing).
        #[arg(long, value_name = "DIR", hide = true)]
        root: Option<PathBuf>,
    },
    /// List the built-in and user profiles with the host each was written for.
    Profiles {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render every config file for a host, and check they fit its memory.
    Render(RenderArgs),
    /// Validate committed configs (following includes) and check they fit the host's memory.
    CheckBudget(CheckArgs),
    /// Show what live PostgreSQL and Redis servers run, their health and their memory budget.
    Inspect(InspectArgs),
    /// Compare live servers with a rendered or committed directory, setting by setting.
    Diff(DiffArgs),
    /// Change live servers to match a directory (dry run unless --yes), or roll a change back.
    Apply(ApplyArgs),
    /// Read live PostgreSQL, Redis and PgBouncer over a window and write what they did as JSON (read-only).
    Observe(ObserveArgs),
    /// Propose settings from an observation (a file, or URLs observed first), each with its evidence, within the budget.
    Advise(AdviseArgs),
    /// Compare two observations of the same workload (before and after a change): improved, regressed or within noise; exit 1 when something regressed.
    Compare(CompareArgs),
    /// Compare PostgreSQL configs on this machine: defaults, a PGTune-style baseline, dbtune's profiles.
    Bench(BenchArgs),
    /// bench's stand-in for a host's other processes (`bench
    /// --hold-reserves`): touch BYTES of memory and keep it until
    /// interrupted.
    #[command(hide = true)]
    BenchHoldMemory {
        /// Bytes to hold.
        bytes: u64,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    Man {
        /// Write dbtune.1 and a dbtune-COMMAND.1 for each command into this
        /// directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `--profile NAME`: any name, because user profiles are files named by
/// their users; the built-in names are its possible values only so that
/// shell completions can offer them (the arguments hide them from --help
/// and the man page, where the text names them).
#[derive(Clone, Copy, Debug)]
struct ProfileName;

impl clap::builder::TypedValueParser for ProfileName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::profile::BUILTIN
                .iter()
                .map(|(name, _)| clap::builder::PossibleValue::new(*name)),
        ))
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// dbtune profiles to render for this machine and measure [default: postgres-only].
    #[arg(long, value_name = "NAME", value_parser = ProfileName, hide_possible_values = true)]
    pub profile: Vec<String>,
    /// More configs to measure, as NAME=path/to/postgresql.conf.
    #[arg(long, value_name = "NAME=FILE")]
    pub config: Vec<String>,
    /// Rows loaded by the COPY workloads.
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// Concurrent COPY streams.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub streams: u32,
    /// pgbench scale factor (100 000 accounts, ~15 MB each) [default: data
    /// 8x PostgreSQL's default shared_buffers, within an eighth of the RAM].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub scale: Option<u32>,
    /// pgbench clients, straight to each server; through the profile's
    /// PgBouncer for a server whose max_connections cannot take them.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// pgbench clients of `pooled-tpcb`, through PgBouncer: more than
    /// max_connections [default: --clients].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub pooled_clients: Option<u32>,
    /// Seconds per pgbench run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub seconds: u32,
    /// Seconds of the write run (long enough for checkpoints).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_seconds: u32,
    /// Size the write run from the defaults' WAL rate, measured in a short
    /// TPC-B run after the warm-up: long enough for their max_wal_size to
    /// be written 3 times, so they checkpoint several times;
    /// --write-seconds is then the longest it may last.
    #[arg(long)]
    pub write_auto: bool,
    /// Run the profile's Redis beside each cluster (in its cgroup under
    /// --ram), filled to its maxmemory and kept busy during each run.
    #[arg(long)]
    pub redis: bool,
    /// With --ram: hold the profile's `[[reserve]]` memory (its app's
    /// workers, monitoring, backups) resident in each config's cgroup, so
    /// PostgreSQL and its page cache get what the host leaves them, not
    /// the memory of processes bench does not run. The OS reserve is not
    /// held.
    #[arg(long, requires = "ram")]
    pub hold_reserves: bool,
    /// PgBouncer for the pooled workloads, and for clients a server cannot
    /// take straight [default: `pgbouncer` on PATH].
    #[arg(long, value_name = "PATH")]
    pub pgbouncer: Option<std::path::PathBuf>,
    /// Keys of 1 KiB the --redis clients write a second during each run: the
    /// staging seed's 10-50 users at a few Redis writes per request, rounded
    /// up. Paced, so Redis takes the CPU its traffic would, not all it can.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub redis_writes: u32,
    /// redis-server for --redis [default: `redis-server` on PATH].
    #[arg(long, value_name = "PATH")]
    pub redis_server: Option<std::path::PathBuf>,
    /// Timed runs per config (after one warm-up).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// After --runs, up to N more rounds of each workload where two configs'
    /// ranges are apart: a difference is claimed only if it survives them
    /// (noise on a shared machine puts three runs apart now and then). An
    /// overlap gets no more: min-max ranges only widen.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub confirm: u32,
    /// Also measure each profile in its initial-load mode: `[postgres]
    /// replication = false` (wal_level = minimal, no WAL senders), so COPY
    /// into a table created in the same transaction writes no WAL.
    #[arg(long)]
    pub initial_load: bool,
    /// Also measure the no-durability ceiling: the (first) profile's
    /// config with fsync, synchronous_commit and full_page_writes off, how
    /// far settings of the write path could take this host with its memory
    /// sizes. Only ever a scratch cluster's; dbtune renders none of these.
    #[arg(long)]
    pub ceiling: bool,
    /// Run as a host with this much memory: each scratch cluster in its own
    /// memory cgroup of SIZE (page cache included), every config rendered
    /// for that host, pgbench's data sized from it (see --data).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: Option<ByteSize>,
    /// With --ram: limit each cluster to N CPUs (a CFS quota) and render
    /// the configs for N CPUs.
    #[arg(long, value_name = "N", requires = "ram", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: Option<u32>,
    /// With --ram: the host's disk reads and writes at most N MiB/s each
    /// (a throttle on the block device of the scratch clusters, in their
    /// cgroup), as a cloud volume's provisioned throughput.
    #[arg(long, value_name = "N", requires = "ram", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub disk_mbps: Option<u64>,
    /// With --ram: the host's disk does at most N reads and N writes a
    /// second, as a cloud volume's provisioned IOPS.
    #[arg(long, value_name = "N", requires = "ram", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub disk_iops: Option<u64>,
    /// With --ram and no --scale: pgbench's database 1.5x the RAM
    /// (`larger`) or half of it (`within`: above the default
    /// shared_buffers, inside the RAM).
    #[arg(long, value_enum, requires = "ram", default_value_t = crate::bench::DataSize::Larger)]
    pub data: crate::bench::DataSize,
    /// Only these workloads (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<crate::bench::Workload>,
    /// Print the measurements as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct LiveArgs {
    /// Seconds to wait for a connection and for each query.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// postgres://user@host:port/db and redis://host:port URLs [default: PG*
    /// variables and REDIS_URL].
    #[arg(value_name = "URL")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub host: ServersHostArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The total that must fit, as check-budget's --level: `busy`
    /// (default), `worst` or `typical`.
    #[arg(long, value_enum, default_value_t = Level::Busy)]
    pub level: Level,
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// postgres://..., redis://... and pgbouncer://user@host:port (PgBouncer's
    /// admin console) URLs [default: PG* variables and REDIS_URL].
    #[arg(value_name = "URL")]
    pub targets: Vec<String>,
    /// How long to watch: counters are read at the start and the end.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub seconds: u64,
    /// Seconds between the samples the peaks come from.
    #[arg(long, value_name = "SECS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// Write the observation to this new file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub host: ServersHostArgs,
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// An observation (`dbtune observe --out FILE`), or server URLs to
    /// observe first as `observe` does [default: PG* variables and
    /// REDIS_URL].
    #[arg(value_name = "FILE|URL")]
    pub inputs: Vec<String>,
    /// With URLs: how long to observe first.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub seconds: u64,
    /// text or json (a top-level `advice` array, docs/advise.md).
    #[arg(long, value_enum, default_value_t = AdviseFormat::Text)]
    pub format: AdviseFormat,
    /// Write the advised set here (postgresql.conf, redis.conf, roles.sql and
    /// a manifest), for check-budget, diff and apply as they take render's.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite files in --out changed since dbtune wrote them, keeping each as FILE.bak.
    #[arg(long, requires = "out")]
    pub force: bool,
    #[command(flatten)]
    pub host: ServersHostArgs,
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The observation before the change (`dbtune observe --out`).
    #[arg(value_name = "BEFORE")]
    pub before: PathBuf,
    /// The observation after it, of the same workload and window.
    #[arg(value_name = "AFTER")]
    pub after: PathBuf,
    /// text or json.
    #[arg(long, value_enum, default_value_t = AdviseFormat::Text)]
    pub format: AdviseFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdviseFormat {
    Text,
    Json,
}

/// What inspect and apply are told about the host the servers run on (a
/// live server's versions are its own).
#[derive(Clone, Debug, Args)]
pub struct ServersHostArgs {
    /// RAM of the servers' host, for the budget check [default: the facts,
    /// else (apply) the directory's manifest, else this machine's when the
    /// servers are on it].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: Option<ByteSize>,
    /// Facts of the servers' host (`dbtune detect --json`).
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// Filesystem of PostgreSQL's data directory on the servers' host
    /// [default: detected when the server runs here, else the facts or
    /// (apply) the manifest].
    #[arg(long, value_name = "FS", value_parser = parse_fs)]
    pub filesystem: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A directory rendered by dbtune or holding committed configs.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Server URLs [default: PG* variables and REDIS_URL].
    #[arg(value_name = "URL")]
    pub targets: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The directory whose settings to apply, then server URLs [default: PG*
    /// variables and REDIS_URL]. With --rollback, only server URLs.
    #[arg(value_name = "DIR URL", required_unless_present = "rollback")]
    pub args: Vec<String>,
    /// Make the changes; without it, only show them.
    #[arg(long)]
    pub yes: bool,
    /// Restore the values recorded in a snapshot written by `apply --yes`.
    #[arg(long, value_name = "SNAPSHOT")]
    pub rollback: Option<PathBuf>,
    /// Where to write the snapshot.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub snapshot_dir: PathBuf,
    #[command(flatten)]
    pub host: ServersHostArgs,
    /// You checked that the servers' host has the huge pages PostgreSQL
    /// needs (apply cannot look at another host).
    #[arg(long)]
    pub huge_pages_reserved: bool,
    /// With --rollback: PostgreSQL's data directory, to restore
    /// postgresql.auto.conf with the server stopped.
    #[arg(long, value_name = "PGDATA", requires = "rollback")]
    pub data_dir: Option<PathBuf>,
    /// Before changing anything, start this machine's PostgreSQL of the
    /// live server's major with the settings a restart would read after
    /// the change (a scratch directory, a socket only), and refuse if it
    /// would not start (docs/live.md).
    #[arg(long, conflicts_with = "rollback")]
    pub prove_start: bool,
    /// The total that must fit before and after the change, as
    /// check-budget's --level: `busy` (default), `worst` or `typical`.
    #[arg(long, value_enum, default_value_t = Level::Busy)]
    pub level: Level,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// check-budget's output formats, defined with the report.
pub use crate::read::report::Format;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config files (postgresql.conf, redis.conf, pgbouncer.ini, sysctl) or directories of them.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// An observation of the host (`dbtune observe --out FILE`): the report
    /// adds the observed level, the budget at the load it saw.
    #[arg(long, value_name = "FILE")]
    pub observed: Option<PathBuf>,
    /// RAM of the target host, e.g. 4GiB [default: the facts file, else the
    /// manifest in the directory, else this machine].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: Option<ByteSize>,
    /// Facts of the target host (`dbtune detect --json`).
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// PostgreSQL major version to validate against [default: facts, manifest, this machine's, else 16].
    #[arg(long, value_name = PgVersion::VALUE_NAME)]
    pub pg_version: Option<PgVersion>,
    /// Filesystem of the PostgreSQL data directory and its WAL, e.g. zfs
    /// [default: the facts file, else the manifest]. full_page_writes = off
    /// is an error unless this says zfs.
    #[arg(long, value_name = "FS", value_parser = parse_fs)]
    pub filesystem: Option<String>,
    /// Count the host's other processes as this profile does (its OS
    /// reserve and [[reserve]] entries, e.g. API and Celery workers), and
    /// use its budget assumptions [default: the manifest's, else only an OS
    /// reserve].
    #[arg(long, value_name = "NAME", value_parser = ProfileName, hide_possible_values = true)]
    pub profile: Option<String>,
    /// Memory another process on the host holds, as NAME=SIZE
    /// (repeatable): `--reserve api=1GiB --reserve celery=768MiB`.
    #[arg(long, value_name = "NAME=SIZE", value_parser = parse_reserve)]
    pub reserve: Vec<(String, ByteSize)>,
    /// The RAM is a container's memory limit (docker `mem_limit`, a
    /// Kubernetes limit): the host's OS reserve is not charged to it, the
    /// container's own overhead is [default: when the facts show a cgroup
    /// limit below physical RAM].
    #[arg(long)]
    pub container: bool,
    /// Read absolute include paths under this directory (a checkout of
    /// the host's /etc: DIR/etc/postgresql/... for /etc/postgresql/...).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Redis release the files are for: 7.0, 7.2, 7.4, 8.0 [default: facts,
    /// this machine's, else the newest].
    #[arg(long, value_name = "X.Y", value_parser = parse_release)]
    pub redis_version: Option<String>,
    /// PgBouncer release the files are for: 1.18 to 1.24 [default: facts,
    /// this machine's, else the newest].
    #[arg(long, value_name = "X.Y", value_parser = parse_release)]
    pub pgbouncer_version: Option<String>,
    /// Sort/hash nodes one query runs at once, each up to work_mem x
    /// hash_mem_multiplier [default: the profile's or manifest's, else 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sorts_per_query: Option<u32>,
    /// Share of connections running a sort or hash at a typical moment,
    /// 0-1 [default: the profile's or manifest's, else 0.25].
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub busy_share: Option<f64>,
    /// Manual VACUUM / CREATE INDEX sessions at once, each up to
    /// maintenance_work_mem [default: the profile's or manifest's, else 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub manual_maintenance: Option<u32>,
    /// Private memory of a PostgreSQL backend, when yours differ from the
    /// one measured (data/pg-memory.tsv): e.g. 8MiB for a schema of
    /// thousands of tables.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub backend_memory: Option<ByteSize>,
    /// Bytes of writes a second Redis takes at its busiest, e.g. 32MiB:
    /// with the AOF fsynced every second, up to 3 s of them wait in its
    /// buffer while an fsync lags [default: the profile's or manifest's,
    /// else 8MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub redis_write_rate: Option<ByteSize>,
    /// What the Redis holds: its fragmentation and fork copy are then the
    /// ones measured for that role (data/redis-roles.tsv), and a
    /// maxmemory-policy that can evict what it must keep is an error
    /// (a queue or mixed: noeviction; sessions: noeviction or volatile-*)
    /// [default: the
    /// profile's or manifest's, else the worst churn's factors and no
    /// policy check].
    #[arg(long, value_enum, value_name = "ROLE")]
    pub redis_role: Option<crate::profile::RedisRole>,
    /// The total that must fit: `busy` (default: the typical moment while
    /// a busy share of the connections run the worst case's heavy query),
    /// `worst` (the strict gate, what render sizes for) or `typical`; below
    /// `worst`, a worst case over RAM is a warning (docs/budget-model.md).
    #[arg(long, value_enum, default_value_t = Level::Busy)]
    pub level: Level,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also start each server whose release is on this machine with the
    /// files' settings (a scratch directory, a socket only, stopped after)
    /// and say whether it starts; each line a refusing server logs is an
    /// error. No command the files name is run, no library from outside
    /// the server's directory loaded (docs/check-budget.md).
    #[arg(long)]
    pub prove_start: bool,
}

pub use crate::read::report::Level;

/// `--level`: the read side's levels, named for the command line.
impl clap::ValueEnum for Level {
    fn value_variants<'a>() -> &'a [Self] {
        &Level::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Level::Worst => PossibleValue::new("worst")
                .help("Every connection sorting, every worker busy, every fork copying"),
            Level::Busy => PossibleValue::new("busy").help(
                "The typical moment while a busy share of the connections (or the pools in front) run the worst case's heavy query: the default gate",
            ),
            Level::Typical => PossibleValue::new("typical").help(
                "A typical moment (a share of connections busy): a worst case over RAM is then a warning, not a failure",
            ),
        })
    }
}

/// `--format`: the report's formats, named for the command line.
impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Text, Format::Json, Format::Github]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Format::Text => PossibleValue::new("text")
                .help("A readable report (colour only on a terminal, never with NO_COLOR)"),
            Format::Json => {
                PossibleValue::new("json").help("A stable JSON document (docs/check-budget.md)")
            }
            Format::Github => PossibleValue::new("github")
                .help("GitHub Actions annotations at file:line, then the text report"),
        })
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a share between 0 and 1 (e.g. 0.25)")),
    }
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    let size = ByteSize::parse_human(s)?;
    if size == ByteSize::ZERO || size > crate::facts::MAX_RAM {
        return Err(format!(
            "`{s}` is out of range: dbtune works with hosts of up to {}",
            crate::facts::MAX_RAM
        ));
    }
    Ok(size)
}

/// `NAME=SIZE` for --reserve.
fn parse_reserve(s: &str) -> Result<(String, ByteSize), String> {
    let (name, size) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=SIZE: write it like api=1GiB"))?;
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control()) {
        return Err(format!(
            "`{}` is not a name for a reservation",
            name.escape_debug()
        ));
    }
    Ok((name.to_string(), parse_size(size)?))
}

/// A release as numbers and dots: `7.2`, `1.24.1`.
fn parse_release(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 16
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{}` is not a release: write it like 7.2 or 1.24",
            s.escape_debug()
        ))
    }
}

/// A filesystem type as mountinfo names it.
pub fn parse_fs(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{}` is not a filesystem type: write it as mountinfo does (zfs, ext4, xfs...)",
            s.escape_debug()
        ))
    }
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Profile to use: low-memory, bulk-ingest, powerhouse, postgres-only or
    /// a user profile [default: postgres-only, PostgreSQL alone, for this
    /// host's facts].
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "profile_file",
        value_parser = ProfileName,
        hide_possible_values = true
    )]
    pub profile: Option<String>,
    /// Profile read from a TOML file.
    #[arg(long, value_name = "FILE")]
    pub profile_file: Option<PathBuf>,
    /// What the database is for (oltp is web) [default: the profile's; with
    /// no profile named, mixed].
    #[arg(long, value_enum)]
    pub workload: Option<crate::profile::Workload>,
    /// Facts of the target host, as printed by `dbtune detect --json` (or TOML).
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// RAM of the target host, e.g. 8GiB (overrides facts and profile).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: Option<ByteSize>,
    /// CPUs of the target host (overrides facts and profile).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub cpus: Option<u32>,
    /// Storage behind the data directory (overrides facts and profile).
    #[arg(long, value_enum)]
    pub storage: Option<StorageKind>,
    /// Filesystem of the PostgreSQL data directory and its WAL, e.g. zfs or
    /// ext4 (overrides facts and profile). Only zfs allows the ZFS-only
    /// settings (full_page_writes = off...).
    #[arg(long, value_name = "FS", value_parser = parse_fs)]
    pub filesystem: Option<String>,
    /// PostgreSQL major version to render for.
    #[arg(long, value_name = PgVersion::VALUE_NAME)]
    pub pg_version: Option<PgVersion>,
    /// Directory to write the files into [default: print to stdout].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The services this host runs (comma-separated; postgres always):
    /// the budget, max_connections and every reason follow them
    /// [default: the profile's; with --only, the services it names].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub services: Vec<crate::service::Service>,
    /// Only these files (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub only: Vec<FileKind>,
    /// Compare with the files in --out instead of writing: exit 1 with a diff if they differ.
    #[arg(long, requires = "out")]
    pub check: bool,
    /// Overwrite files changed since dbtune wrote them, keeping each as FILE.bak.
    #[arg(long)]
    pub force: bool,
    /// Directory of templates that override the built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Data directory to inspect when detecting this host.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Where the files run: systemd (the host's services, with systemd
    /// drop-ins and a compose override for the limits; the default),
    /// compose (every service in its official image on a compose network:
    /// docker-compose.yml and pg_hba.conf, listening on the network, Redis's
    /// password from the environment), or PostgreSQL's settings as an
    /// operator's file: a CloudNativePG `Cluster` (cluster.yaml, with the
    /// pod's resources from the budget) or a Patroni fragment (patroni.yml)
    /// [default: the profile's `layout`, else systemd].
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
}

/// `render --layout` (and a profile's `layout`).
pub use crate::plan::layout::Layout;
