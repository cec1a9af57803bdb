//! What a live host did over a window: the file `dbtune observe` writes
//! and what advice and an observed budget level will read. Pure data and
//! the arithmetic of counters (deltas, rates, resets); the reading of the
//! servers is `live::observe`.
//!
//! Every counter group is two snapshots of the server's cumulative
//! counters, kept as their difference over the window and per second. A
//! counter that went down means the statistics were reset, or the server
//! restarted, inside the window: that group then has no deltas and says
//! why, rather than a negative or partial number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the file's layout; a reader refuses others.
pub const SCHEMA: u32 = 1;

/// An observation file's text, checked to be one this dbtune reads.
pub fn parse(text: &str, path: &std::path::Path) -> Result<Observation, crate::error::Error> {
    use crate::error::{Error, Place};
    let obs: Observation = serde_json::from_str(text).map_err(|e| {
        Error::input(
            Place::line(path.display(), e.line()),
            format!("not a dbtune observation: {e}"),
            "pass the file `dbtune observe --out FILE` wrote",
        )
    })?;
    if obs.schema != SCHEMA {
        return Err(Error::input(
            Place::file(path.display()),
            format!("observation schema {} is not {SCHEMA}", obs.schema),
            "observe again with this dbtune",
        ));
    }
    Ok(obs)
}

/// One observation of a host: each server read over the same window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Observation {
    pub schema: u32,
    /// The dbtune that wrote it.
    pub dbtune: String,
    /// When the window started, in seconds since the Unix epoch.
    pub started_unix: u64,
    /// How long the window lasted, measured.
    pub seconds: f64,
    /// How many times the peaks were sampled.
    pub samples: u32,
    pub host: ObservedHost,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub postgres: Option<PgObservation>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub redis: Option<RedisObservation>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pgbouncer: Option<BouncerObservation>,
}

/// The host the servers run on, each fact with where it came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObservedHost {
    pub ram_bytes: u64,
    pub ram_source: String,
    pub cpus: u32,
    pub cpus_source: String,
}

/// A setting as the server reports it, with its source (a secret masked).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObservedSetting {
    pub name: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    pub source: String,
}

/// Something the observation could not read, and why (a view the role may
/// not read, an extension that is not there, a release without it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Unavailable {
    pub what: String,
    pub why: String,
}

/// One group of cumulative counters over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// After minus before, per counter. Empty when `reset` says why.
    pub delta: BTreeMap<String, f64>,
    /// `delta` per second of the window.
    pub per_second: BTreeMap<String, f64>,
    /// Why there are no deltas: the counters were reset or the server
    /// restarted inside the window.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reset: Option<String>,
}

impl Counters {
    /// The counters between two snapshots of the same group. A counter
    /// that is not in both is left out; one that went down, or a
    /// `stats_reset` time that changed, makes the whole group a reset.
    /// Not when every counter before was zero: whether they were reset or
    /// only began (PostgreSQL 13-14 show no stats_reset for a database
    /// until the collector first hears of it, then its creation time),
    /// they count from zero. The numbers after are then the window's, or
    /// less: a real reset inside it loses what came before it (after the
    /// first read, which saw nothing).
    pub fn between(before: &Snapshot, after: &Snapshot, seconds: f64) -> Counters {
        let from_zero = before.values.values().all(|v| *v == 0.0);
        if before.reset_at != after.reset_at && !from_zero {
            return Counters::reset(format!(
                "the statistics were reset inside the window (stats_reset {} -> {})",
                before.reset_at.as_deref().unwrap_or("never"),
                after.reset_at.as_deref().unwrap_or("never")
            ));
        }
        let mut delta = BTreeMap::new();
        for (k, b) in &before.values {
            let Some(a) = after.values.get(k) else {
                continue;
            };
            if a < b {
                return Counters::reset(format!(
                    "`{k}` went down ({b} -> {a}): the statistics were reset or the server restarted \
                     inside the window"
                ));
            }
            delta.insert(k.clone(), a - b);
        }
        let per_second = delta
            .iter()
            .map(|(k, d)| (k.clone(), if seconds > 0.0 { d / seconds } else { 0.0 }))
            .collect();
        Counters {
            delta,
            per_second,
            reset: None,
        }
    }

    /// Groups' counters added up (every database's into the sum over
    /// them): a reset of one is a reset of the sum, and says which.
    pub fn sum(parts: &BTreeMap<String, Counters>) -> Counters {
        let mut total = Counters::default();
        for (name, c) in parts {
            if let Some(why) = &c.reset {
                return Counters::reset(format!("{name}: {why}"));
            }
            for (k, d) in &c.delta {
                *total.delta.entry(k.clone()).or_default() += d;
            }
            for (k, r) in &c.per_second {
                *total.per_second.entry(k.clone()).or_default() += r;
            }
        }
        total
    }

    pub fn reset(why: String) -> Counters {
        Counters {
            reset: Some(why),
            ..Counters::default()
        }
    }

    /// A counter's change over the window (None after a reset, or when
    /// the server does not have it).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.delta.get(name).copied()
    }

    /// Whether every counter is zero (nothing happened in this group).
    pub fn is_idle(&self) -> bool {
        self.reset.is_none() && self.delta.values().all(|d| *d == 0.0)
    }
}

/// One read of a group of cumulative counters: the numbers, and when the
/// server last reset them (a changed time is a reset even when every
/// counter went up again since).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub values: BTreeMap<String, f64>,
    pub reset_at: Option<String>,
}

impl Snapshot {
    /// The same counters at zero: the start of something that began
    /// inside the window (a statement first run, a pool first used).
    pub fn zeroed(&self) -> Snapshot {
        Snapshot {
            values: self.values.keys().map(|k| (k.clone(), 0.0)).collect(),
            reset_at: self.reset_at.clone(),
        }
    }

    /// The numeric fields of a JSON object (a row as `to_jsonb`); its
    /// `stats_reset` as the reset time. Text fields are not counters.
    pub fn from_json(row: &serde_json::Value) -> Snapshot {
        let mut s = Snapshot::default();
        if let Some(obj) = row.as_object() {
            for (k, v) in obj {
                if k == "stats_reset" {
                    s.reset_at = v.as_str().map(str::to_string);
                } else if let Some(n) = v.as_f64() {
                    s.values.insert(k.clone(), n);
                }
            }
        }
        s
    }

    /// The fields of `text` (Redis INFO's `key:value` lines, PgBouncer's
    /// columns) that are numbers, among `names`.
    pub fn from_pairs<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        names: &[&str],
    ) -> Snapshot {
        let mut s = Snapshot::default();
        for (k, v) in pairs {
            if names.contains(&k) {
                if let Ok(n) = v.trim().parse::<f64>() {
                    s.values.insert(k.to_string(), n);
                }
            }
        }
        s
    }
}

/// The highest value a sampled gauge reached, and its mean over the
/// samples.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Peak {
    pub max: f64,
    pub mean: f64,
    #[serde(skip)]
    sum: f64,
    #[serde(skip)]
    n: u32,
}

impl Peak {
    pub fn add(&mut self, v: f64) {
        self.max = if self.n == 0 { v } else { self.max.max(v) };
        self.sum += v;
        self.n += 1;
        self.mean = self.sum / f64::from(self.n);
    }
}

/// Peaks of several gauges, by name.
pub type Peaks = BTreeMap<String, Peak>;

/// Adds one sample of each named gauge.
pub fn sample(peaks: &mut Peaks, values: &[(&str, f64)]) {
    for (k, v) in values {
        peaks.entry((*k).to_string()).or_default().add(*v);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgObservation {
    pub target: String,
    pub version: String,
    pub major: u32,
    /// What the build supports (`lz4`...), as the live server shows it.
    #[serde(default)]
    pub build: Vec<String>,
    /// Whether the server restarted inside the window (its postmaster
    /// start time changed): no counter of it is then compared.
    pub restarted: bool,
    pub settings: Vec<ObservedSetting>,
    /// Cluster-wide groups: `database` (every database summed),
    /// `bgwriter`, `checkpointer` (17+), `wal` (14+; 13: the WAL position
    /// only), `io` rows (16+) that moved.
    pub counters: BTreeMap<String, Counters>,
    /// pg_stat_database per database.
    pub databases: BTreeMap<String, Counters>,
    /// pg_stat_statements per statement (queryid, role, database; never
    /// the query text), the ones that ran in the window, busiest first.
    pub statements: Vec<StatementDelta>,
    /// Sampled: client backends, active, idle in transaction, waiting on
    /// a lock, the longest idle-in-transaction age in seconds.
    pub peaks: Peaks,
    /// Read once at the end: database sizes, dead tuples, the oldest
    /// transaction ID age.
    pub gauges: BTreeMap<String, f64>,
    pub unavailable: Vec<Unavailable>,
}

impl PgObservation {
    /// The WAL syncs of the window and the milliseconds they took (0
    /// when track_wal_io_timing was off): pg_stat_wal's wal_sync and
    /// wal_sync_time on 14-17, pg_stat_io's WAL rows (fsyncs, fsync_time)
    /// on 18, which moved them there. None on 13, or when the group was
    /// reset in the window.
    pub fn wal_syncs(&self) -> Option<(f64, f64)> {
        if let Some(w) = self.counters.get("wal").filter(|w| w.reset.is_none()) {
            if let Some(n) = w.get("wal_sync") {
                return Some((n, w.get("wal_sync_time").unwrap_or(0.0)));
            }
        }
        let rows: Vec<&Counters> = self
            .counters
            .iter()
            .filter(|(k, c)| {
                k.strip_prefix("io ")
                    .is_some_and(|k| k.split('/').nth(1) == Some("wal"))
                    && c.reset.is_none()
            })
            .map(|(_, c)| c)
            .collect();
        if rows.is_empty() {
            return None;
        }
        let sum = |name: &str| rows.iter().filter_map(|c| c.get(name)).sum::<f64>();
        Some((sum("fsyncs"), sum("fsync_time")))
    }
}

/// One statement's counters over the window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatementDelta {
    pub queryid: String,
    pub role: String,
    pub database: String,
    pub counters: Counters,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedisObservation {
    pub target: String,
    pub version: String,
    pub restarted: bool,
    pub settings: Vec<ObservedSetting>,
    /// INFO's cumulative counters (hits, misses, evictions, commands,
    /// forks...).
    pub counters: Counters,
    /// Sampled: used memory, RSS, clients, blocked clients.
    pub peaks: Peaks,
    /// Read once at the end: maxmemory, fragmentation, the last fork's
    /// time and copy-on-write size, keys.
    pub gauges: BTreeMap<String, f64>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BouncerObservation {
    pub target: String,
    pub version: String,
    pub settings: Vec<ObservedSetting>,
    /// SHOW STATS per database.
    pub databases: BTreeMap<String, Counters>,
    /// Sampled over every pool: clients active and waiting, server
    /// connections active, the longest wait in seconds.
    pub peaks: Peaks,
    pub unavailable: Vec<Unavailable>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pairs: &[(&str, f64)], reset: Option<&str>) -> Snapshot {
        Snapshot {
            values: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            reset_at: reset.map(str::to_string),
        }
    }

    #[test]
    fn counters_are_deltas_and_rates_or_a_reset_said_plainly() {
        let c = Counters::between(
            &snap(&[("temp_bytes", 100.0), ("xact_commit", 10.0)], Some("t0")),
            &snap(&[("temp_bytes", 300.0), ("xact_commit", 30.0)], Some("t0")),
            10.0,
        );
        assert_eq!(c.get("temp_bytes"), Some(200.0));
        assert_eq!(c.per_second["xact_commit"], 2.0);
        assert!(c.reset.is_none() && !c.is_idle());
        // A counter that went down: no numbers, and why.
        let c = Counters::between(
            &snap(&[("temp_bytes", 100.0)], None),
            &snap(&[("temp_bytes", 5.0)], None),
            10.0,
        );
        assert!(c.delta.is_empty() && c.get("temp_bytes").is_none());
        assert!(c.reset.unwrap().contains("went down"));
        // A reset time that changed, even with every counter higher.
        let c = Counters::between(
            &snap(&[("x", 1.0)], Some("t0")),
            &snap(&[("x", 9.0)], Some("t1")),
            1.0,
        );
        assert!(c.reset.unwrap().contains("t0 -> t1"));
        // PostgreSQL 13-14: a database the collector had not heard of has
        // no stats_reset and zero counters, then its entry's creation
        // time: its counters began in the window, not a reset.
        let c = Counters::between(
            &snap(&[("xact_commit", 0.0), ("temp_bytes", 0.0)], None),
            &snap(&[("xact_commit", 40.0), ("temp_bytes", 0.0)], Some("t1")),
            10.0,
        );
        assert!(c.reset.is_none(), "{:?}", c.reset);
        assert_eq!(c.get("xact_commit"), Some(40.0));
        // The same change of time after counting had begun is a reset
        // (PostgreSQL 15+ shows stats_reset first when they are reset).
        let c = Counters::between(
            &snap(&[("xact_commit", 3.0), ("temp_bytes", 0.0)], None),
            &snap(&[("xact_commit", 40.0), ("temp_bytes", 0.0)], Some("t1")),
            10.0,
        );
        assert!(c.reset.unwrap().contains("never -> t1"));
    }

    #[test]
    fn the_sum_over_databases_adds_each_and_names_a_reset() {
        let a = Counters::between(
            &snap(&[("xact_commit", 0.0)], None),
            &snap(&[("xact_commit", 40.0)], Some("t1")),
            10.0,
        );
        let b = Counters::between(
            &snap(&[("xact_commit", 5.0)], Some("t0")),
            &snap(&[("xact_commit", 7.0)], Some("t0")),
            10.0,
        );
        let parts: BTreeMap<String, Counters> =
            [("app".to_string(), a), ("postgres".to_string(), b)].into();
        let s = Counters::sum(&parts);
        assert_eq!(s.get("xact_commit"), Some(42.0));
        assert!((s.per_second["xact_commit"] - 4.2).abs() < 1e-9);
        let mut parts = parts;
        parts.insert(
            "other".into(),
            Counters::between(
                &snap(&[("xact_commit", 9.0)], Some("t0")),
                &snap(&[("xact_commit", 10.0)], Some("t2")),
                10.0,
            ),
        );
        let s = Counters::sum(&parts);
        assert!(s.delta.is_empty());
        assert!(s.reset.unwrap().starts_with("other: "));
    }

    #[test]
    fn json_rows_and_info_pairs_become_snapshots() {
        let row =
            serde_json::json!({"temp_files": 3, "datname": "app", "stats_reset": "2026-11-30"});
        let s = Snapshot::from_json(&row);
        assert_eq!(s.values.get("temp_files"), Some(&3.0));
        assert!(!s.values.contains_key("datname"));
        assert_eq!(s.reset_at.as_deref(), Some("2026-11-30"));
        let info = "keyspace_hits:12\r\nredis_version:7.0.15\r\nevicted_keys:0";
        let s = Snapshot::from_pairs(
            info.lines().filter_map(|l| l.split_once(':')),
            &["keyspace_hits", "evicted_keys", "redis_version"],
        );
        assert_eq!(s.values.len(), 2);
    }

    #[test]
    fn peaks_keep_the_highest_and_the_mean() {
        let mut p = Peaks::new();
        for v in [2.0, 7.0, 3.0] {
            sample(&mut p, &[("active", v)]);
        }
        assert_eq!(p["active"].max, 7.0);
        assert_eq!(p["active"].mean, 4.0);
    }
}
