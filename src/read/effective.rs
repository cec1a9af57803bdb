//! PostgreSQL settings as the server reads them: the value in effect for
//! each parameter (the file's when PostgreSQL accepts it, else the
//! version's default, with a source saying which), and the shared memory
//! they make it ask for at start.

use crate::model::*;
use crate::read::catalog::{Lookup, PgCatalog, PgParam};
use crate::read::pgvalue::{self, PgValue};
use crate::read::settings::ServiceSettings;
use crate::units::{ByteSize, MIB};
use crate::version::PgVersion;

/// PostgreSQL settings as the server reads them (`pgvalue`, against the
/// version's catalog): the file's value when PostgreSQL would accept it,
/// else the version's default, with a source saying which.
pub struct Pg<'a> {
    s: &'a ServiceSettings,
    version: PgVersion,
    cat: &'static PgCatalog,
}

impl<'a> Pg<'a> {
    pub fn new(s: &'a ServiceSettings, version: PgVersion) -> Self {
        Pg {
            s,
            version,
            cat: PgCatalog::get(version),
        }
    }

    /// The value in effect, when the file sets one PostgreSQL accepts.
    pub fn read(&self, name: &str) -> Option<PgValue> {
        let e = self.s.get(name)?;
        match self.cat.lookup(name) {
            Lookup::Known(p) => pgvalue::read(p, &e.value).ok(),
            _ => None,
        }
    }

    fn param(&self, name: &str) -> Option<&'static PgParam> {
        match self.cat.lookup(name) {
            Lookup::Known(p) => Some(p),
            _ => None,
        }
    }

    /// Where a value came from; a value PostgreSQL would refuse is
    /// replaced by the default, and the source says so.
    pub fn src(&self, name: &str) -> String {
        match self.s.get(name) {
            Some(e) if self.read(name).is_some() => e.at.to_string(),
            Some(e) => format!(
                "default of PostgreSQL {}: the value at {} is invalid",
                self.version, e.at
            ),
            None => format!("default of PostgreSQL {}", self.version),
        }
    }

    /// Counts: clamped so absurd values cannot overflow the sums (PostgreSQL
    /// itself refuses anything above 262143 connections).
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.read(name)
            .and_then(|v| v.as_f64())
            .map_or(default, |x| x as i64)
            .clamp(-1, 1 << 24)
    }

    /// An integer in its own unit, as PostgreSQL runs with it: the file's
    /// value when PostgreSQL accepts it, else the version's built-in
    /// default (0 for a parameter the version lacks).
    pub fn int_or_boot(&self, name: &str) -> i64 {
        let boot = self
            .param(name)
            .and_then(|p| p.boot_val.as_deref())
            .and_then(|b| b.parse::<f64>().ok())
            .map_or(0, |x| x as i64);
        self.int(name, boot)
    }

    pub fn real(&self, name: &str, default: f64) -> f64 {
        self.read(name).and_then(|v| v.as_f64()).unwrap_or(default)
    }

    /// A memory setting in bytes; -1 (or any negative) stays -1: "use
    /// another setting".
    pub fn mem(&self, name: &str, default: i64) -> i64 {
        match (self.read(name), self.param(name)) {
            (Some(v), Some(p)) => match pgvalue::bytes(p, &v) {
                Some(b) => b.min(i64::MAX as u64) as i64,
                None => -1,
            },
            _ => default,
        }
    }

    /// An enum, string or boolean as lowercase text (`on`/`off`).
    pub fn text(&self, name: &str, default: &str) -> String {
        match self.read(name) {
            Some(PgValue::Enum(e)) => e,
            Some(PgValue::String(s)) => s.trim().to_ascii_lowercase(),
            Some(PgValue::Bool(b)) => if b { "on" } else { "off" }.to_string(),
            _ => default.to_string(),
        }
    }

    pub fn version(&self) -> PgVersion {
        self.version
    }

    /// An extension's integer (a placeholder, not in the catalog).
    pub fn raw_int(&self, name: &str) -> Option<i64> {
        let v = self.s.get(name)?.value.trim().to_string();
        let (n, end) = pgvalue::c_strtol(v.as_bytes());
        n.filter(|_| end == v.len())
    }

    pub fn bool(&self, name: &str, default: bool) -> bool {
        match self.read(name) {
            Some(PgValue::Bool(b)) => b,
            _ => default,
        }
    }
}

/// PostgreSQL's shared memory for a set of settings, and its parts.
pub struct SharedMemory {
    pub shared_buffers: ByteSize,
    pub wal_buffers: ByteSize,
    /// Backend slots the lock table and per-slot arrays are sized for.
    pub slots: u64,
    pub total: ByteSize,
    pub extensions: ExtensionMemory,
}

impl SharedMemory {
    pub fn of(pg: &Pg) -> SharedMemory {
        let count = |name: &str, default: i64| pg.int(name, default).max(0) as u64;
        let sb = ByteSize(pg.mem("shared_buffers", 128 * MIB as i64).max(0) as u64);
        let version = pg.version();
        let mut s = PgShmSettings::defaults(version, sb);
        s.wal_buffers = effective_wal_buffers(pg.mem("wal_buffers", -1), sb);
        s.min_dynamic_shared_memory =
            ByteSize(pg.mem("min_dynamic_shared_memory", 0).max(0) as u64);
        s.max_connections = count("max_connections", 100);
        s.autovacuum_slots = if version >= 18 {
            count("autovacuum_worker_slots", 16)
        } else {
            count("autovacuum_max_workers", 3)
        };
        s.max_worker_processes = count("max_worker_processes", 8);
        s.max_wal_senders = count("max_wal_senders", 10);
        s.max_prepared_transactions = count("max_prepared_transactions", 0);
        s.max_locks_per_transaction = pg.int("max_locks_per_transaction", 64).max(10) as u64;
        s.max_pred_locks_per_transaction =
            pg.int("max_pred_locks_per_transaction", 64).max(10) as u64;
        s.track_activity_query_size = pg.int("track_activity_query_size", 1024).max(100) as u64;
        s.max_replication_slots = count("max_replication_slots", 10);
        if version >= 18 {
            s.io_max_concurrency = pg.int("io_max_concurrency", -1);
        }
        let ext = extension_shared_memory(pg);
        SharedMemory {
            shared_buffers: sb,
            wal_buffers: s.wal_buffers,
            slots: s.lock_slots(),
            total: pg_shared_memory(version, &s) + ext.known,
            extensions: ext,
        }
    }
}

/// Shared memory of the libraries in shared_preload_libraries: what
/// dbtune measured (data/pg-preload-libraries.tsv, none for most), and the
/// names of those no build measured.
#[derive(Clone, Debug, Default)]
pub struct ExtensionMemory {
    pub known: ByteSize,
    pub detail: Vec<String>,
    pub unknown: Vec<String>,
}

/// The library a shared_preload_libraries entry loads: `$libdir/x.so`
/// and `x` are the same file.
fn library_name(entry: &str) -> &str {
    let name = entry.strip_prefix("$libdir/").unwrap_or(entry);
    name.strip_suffix(".so").unwrap_or(name)
}

pub fn extension_shared_memory(pg: &Pg) -> ExtensionMemory {
    let libs = pg.text("shared_preload_libraries", "");
    let mut out = ExtensionMemory::default();
    let mut none = Vec::new();
    for entry in libs
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .filter(|l| !l.is_empty())
    {
        let lib = library_name(entry);
        let Some(m) = crate::calibration::pg_library(pg.version(), lib) else {
            out.unknown.push(entry.to_string());
            continue;
        };
        if lib == "pg_stat_statements" {
            let max = pg
                .raw_int("pg_stat_statements.max")
                .unwrap_or(5000)
                .clamp(0, 1 << 30) as u64;
            let bytes = ByteSize(m.fixed + (m.per_unit * max as f64).ceil() as u64);
            out.known += bytes;
            out.detail.push(format!(
                "pg_stat_statements {bytes} ({max} entries x {:.0} B, measured on {})",
                m.per_unit, m.major
            ));
        } else if m.fixed == 0 {
            none.push(lib.to_string());
        } else {
            out.known += ByteSize(m.fixed);
            out.detail.push(format!(
                "{lib} {} (measured on {})",
                ByteSize(m.fixed),
                m.major
            ));
        }
    }
    if !none.is_empty() {
        out.detail
            .push(format!("{} no shared memory (measured)", none.join(", ")));
    }
    out
}

/// The shared memory PostgreSQL asks for at start, estimated.
pub fn pg_shared_estimate(pg: &Pg) -> ByteSize {
    SharedMemory::of(pg).total
}
