//! Two observations of the same workload, before and after a change:
//! per statement and per mechanism (temp bytes, requested checkpoints, WAL
//! bytes, full-page images and WAL syncs per transaction, hit ratios,
//! evictions, waits), whether it improved, regressed or stayed within
//! noise, with the numbers.
//! Pure: no I/O.
//!
//! Two windows are one sample each, so "within noise" is a fixed band: a
//! change under [`NOISE`] of the before value is not claimed. Repeat the
//! pair of windows to see the spread before trusting a small change.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::observation::{Counters, Observation, PgObservation};

/// Changes smaller than this share of the before value are noise.
pub const NOISE: f64 = 0.10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Improved,
    Regressed,
    WithinNoise,
    Same,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Improved => "improved",
            Outcome::Regressed => "regressed",
            Outcome::WithinNoise => "within noise",
            Outcome::Same => "same",
        })
    }
}

/// One measure before and after.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Change {
    pub service: &'static str,
    pub measure: String,
    pub before: f64,
    pub after: f64,
    pub better: Better,
    pub outcome: Outcome,
}

/// Below this on both sides a measure says nothing: WAL a transaction
/// writes under 100 bytes is the background's records spread over the
/// transactions (a one-row update writes more), and temp files under one
/// block per transaction are a rare spill averaged away.
fn floor(measure: &str) -> f64 {
    match measure {
        "WAL bytes per transaction" => 100.0,
        "temp bytes per transaction" => 8192.0,
        _ => 0.0,
    }
}

impl Change {
    fn new(
        service: &'static str,
        measure: String,
        before: f64,
        after: f64,
        better: Better,
    ) -> Change {
        let floor = floor(&measure);
        let outcome = if before == after {
            Outcome::Same
        } else if (before.abs() < floor && after.abs() < floor)
            || (before != 0.0 && ((after - before) / before).abs() < NOISE)
        {
            Outcome::WithinNoise
        } else if (after < before) == (better == Better::Lower) {
            Outcome::Improved
        } else {
            Outcome::Regressed
        };
        Change {
            service,
            measure,
            before,
            after,
            better,
            outcome,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = if self.before != 0.0 {
            format!(
                " ({:+.0}%)",
                100.0 * (self.after - self.before) / self.before
            )
        } else {
            String::new()
        };
        write!(
            f,
            "{:<12} {:<9} {}: {} -> {}{ratio}, {} is better",
            self.outcome.to_string(),
            self.service,
            self.measure,
            num(self.before),
            num(self.after),
            match self.better {
                Better::Lower => "lower",
                Better::Higher => "higher",
            }
        )
    }
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub schema: u32,
    pub before_seconds: f64,
    pub after_seconds: f64,
    pub changes: Vec<Change>,
    pub notes: Vec<String>,
}

/// A ratio of two deltas of one group, when both are there and the
/// denominator moved.
fn per(c: Option<&Counters>, num: &str, den: &str) -> Option<f64> {
    let c = c?;
    let d = c.get(den)?;
    (d > 0.0).then(|| c.get(num).unwrap_or(0.0) / d)
}

fn wal_bytes(p: &PgObservation) -> Option<f64> {
    let w = p.counters.get("wal")?;
    w.get("wal_bytes").or(w.get("wal_position_bytes"))
}

fn checkpoints(p: &PgObservation) -> Option<(f64, f64)> {
    if let Some(c) = p.counters.get("checkpointer") {
        return Some((c.get("num_requested")?, c.get("num_timed")?));
    }
    let b = p.counters.get("bgwriter")?;
    Some((b.get("checkpoints_req")?, b.get("checkpoints_timed")?))
}

/// The measures of PostgreSQL both windows have.
fn postgres(
    (before_obs, b): (&Observation, &PgObservation),
    (after_obs, a): (&Observation, &PgObservation),
    out: &mut Vec<Change>,
    notes: &mut Vec<String>,
) {
    let (db_b, db_a) = (b.counters.get("database"), a.counters.get("database"));
    for (side, db) in [("before", db_b), ("after", db_a)] {
        if let Some(why) = db.and_then(|c| c.reset.as_deref()) {
            notes.push(format!("postgres {side}: {why}"));
        }
    }
    let mut push = |measure: &str, x: Option<f64>, y: Option<f64>, better| {
        if let (Some(x), Some(y)) = (x, y) {
            out.push(Change::new("postgres", measure.to_string(), x, y, better));
        }
    };
    let xacts = |c: Option<&Counters>| {
        c.and_then(|c| Some(c.get("xact_commit")? + c.get("xact_rollback").unwrap_or(0.0)))
    };
    push(
        "transactions per second",
        per_second(db_b, "xact_commit"),
        per_second(db_a, "xact_commit"),
        Better::Higher,
    );
    push(
        "temp bytes per transaction",
        ratio(db_b.and_then(|c| c.get("temp_bytes")), xacts(db_b)),
        ratio(db_a.and_then(|c| c.get("temp_bytes")), xacts(db_a)),
        Better::Lower,
    );
    push(
        "cache hit ratio",
        hit(db_b, "blks_hit", "blks_read"),
        hit(db_a, "blks_hit", "blks_read"),
        Better::Higher,
    );
    push(
        "WAL bytes per transaction",
        ratio(wal_bytes(b), xacts(db_b)),
        ratio(wal_bytes(a), xacts(db_a)),
        Better::Lower,
    );
    push(
        "full-page images per transaction",
        ratio(
            b.counters.get("wal").and_then(|w| w.get("wal_fpi")),
            xacts(db_b),
        ),
        ratio(
            a.counters.get("wal").and_then(|w| w.get("wal_fpi")),
            xacts(db_a),
        ),
        Better::Lower,
    );
    // The WAL flushes commits share (commit_delay's measure).
    push(
        "WAL syncs per transaction",
        ratio(b.wal_syncs().map(|(n, _)| n), xacts(db_b)),
        ratio(a.wal_syncs().map(|(n, _)| n), xacts(db_a)),
        Better::Lower,
    );
    // Checkpoints forced by WAL volume (or asked for), per minute of the
    // window: what max_wal_size is about.
    let requested = |o: &Observation, p: &PgObservation| {
        checkpoints(p).map(|(r, _)| 60.0 * r / o.seconds.max(1.0))
    };
    push(
        "checkpoints requested per minute",
        requested(before_obs, b),
        requested(after_obs, a),
        Better::Lower,
    );
    // Statements in both windows, the busiest before first.
    let key = |s: &crate::observation::StatementDelta| {
        (s.role.clone(), s.database.clone(), s.queryid.clone())
    };
    let after: BTreeMap<_, _> = a.statements.iter().map(|s| (key(s), s)).collect();
    let mut shown = 0;
    for s in &b.statements {
        let Some(t) = after.get(&key(s)) else {
            continue;
        };
        if shown == 20 {
            notes.push("statements: the 20 busiest before are compared".into());
            break;
        }
        shown += 1;
        let label = format!("statement {} ({}, {})", s.queryid, s.role, s.database);
        push(
            &format!("{label} mean ms"),
            per(Some(&s.counters), "total_exec_time", "calls"),
            per(Some(&t.counters), "total_exec_time", "calls"),
            Better::Lower,
        );
        let temp = |c: &Counters| per(Some(c), "temp_blks_written", "calls").map(|x| x * 8192.0);
        let (tb, ta) = (temp(&s.counters), temp(&t.counters));
        if tb.unwrap_or(0.0) > 0.0 || ta.unwrap_or(0.0) > 0.0 {
            push(
                &format!("{label} temp bytes per call"),
                tb,
                ta,
                Better::Lower,
            );
        }
    }
}

fn per_second(c: Option<&Counters>, k: &str) -> Option<f64> {
    c?.per_second.get(k).copied()
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    let d = den?;
    (d > 0.0).then(|| num.unwrap_or(0.0) / d)
}

fn hit(c: Option<&Counters>, hits: &str, misses: &str) -> Option<f64> {
    let c = c?;
    let (h, m) = (c.get(hits)?, c.get(misses)?);
    (h + m > 0.0).then(|| h / (h + m))
}

/// The comparison of `before` and `after`.
pub fn compare(before: &Observation, after: &Observation) -> Comparison {
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let (sb, sa) = (before.seconds, after.seconds);
    if (sa - sb).abs() > 0.2 * sb.max(sa) {
        notes.push(format!(
            "the windows differ ({sb:.0} s and {sa:.0} s): measures are per second, per transaction \
             or per call, but a window's mix can differ; observe equal windows of the same workload"
        ));
    }
    match (&before.postgres, &after.postgres) {
        (Some(b), Some(a)) => postgres((before, b), (after, a), &mut changes, &mut notes),
        (None, None) => {}
        _ => notes.push("PostgreSQL is observed in only one of the two".into()),
    }
    if let (Some(b), Some(a)) = (&before.redis, &after.redis) {
        let mut push = |m: &str, x: Option<f64>, y: Option<f64>, better| {
            if let (Some(x), Some(y)) = (x, y) {
                changes.push(Change::new("redis", m.to_string(), x, y, better));
            }
        };
        push(
            "hit rate",
            hit(Some(&b.counters), "keyspace_hits", "keyspace_misses"),
            hit(Some(&a.counters), "keyspace_hits", "keyspace_misses"),
            Better::Higher,
        );
        push(
            "evicted keys per second",
            per_second(Some(&b.counters), "evicted_keys"),
            per_second(Some(&a.counters), "evicted_keys"),
            Better::Lower,
        );
    }
    if let (Some(b), Some(a)) = (&before.pgbouncer, &after.pgbouncer) {
        for (k, m) in [
            ("clients_waiting", "most clients waiting at once"),
            ("longest_wait_seconds", "longest wait (s)"),
        ] {
            if let (Some(x), Some(y)) = (b.peaks.get(k), a.peaks.get(k)) {
                changes.push(Change::new(
                    "pgbouncer",
                    m.to_string(),
                    x.max,
                    y.max,
                    Better::Lower,
                ));
            }
        }
    }
    Comparison {
        schema: 1,
        before_seconds: sb,
        after_seconds: sa,
        changes,
        notes,
    }
}

pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    for x in &c.changes {
        s.push_str(&format!("{x}\n"));
    }
    for n in &c.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    let count = |o: Outcome| c.changes.iter().filter(|x| x.outcome == o).count();
    s.push_str(&format!(
        "{} improved, {} regressed, {} within noise ({:.0}% of the before value), {} the same\n",
        count(Outcome::Improved),
        count(Outcome::Regressed),
        count(Outcome::WithinNoise),
        100.0 * NOISE,
        count(Outcome::Same)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_better_direction_and_the_noise_band() {
        let wal = |b, a| {
            Change::new(
                "postgres",
                "WAL bytes per transaction".into(),
                b,
                a,
                Better::Lower,
            )
            .outcome
        };
        assert_eq!(wal(0.0, 0.108), Outcome::WithinNoise);
        assert_eq!(wal(0.0, 4000.0), Outcome::Regressed);
        let c = |b, a, better| Change::new("postgres", "m".into(), b, a, better).outcome;
        assert_eq!(c(100.0, 50.0, Better::Lower), Outcome::Improved);
        assert_eq!(c(100.0, 50.0, Better::Higher), Outcome::Regressed);
        assert_eq!(c(100.0, 95.0, Better::Lower), Outcome::WithinNoise);
        assert_eq!(c(0.0, 0.0, Better::Lower), Outcome::Same);
        assert_eq!(c(0.0, 5.0, Better::Lower), Outcome::Regressed);
        assert_eq!(c(5.0, 0.0, Better::Lower), Outcome::Improved);
    }
}
