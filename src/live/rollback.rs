//! `apply --rollback`: the values of a snapshot restored through the
//! servers (with PostgreSQL stopped: `offline`).

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::*;
use super::{apply::*, change::*, servers::*, snapshot::*, state::*};
use crate::cli::ApplyArgs;
use crate::console;
use crate::error::Error;
use crate::note;
use crate::secret::Value;
use crate::service::Scope;

pub(super) fn rollback(args: &ApplyArgs, path: &Path) -> Result<ExitCode> {
    let (snap, notes) = read_snapshot(path)?;
    for n in &notes {
        note!("{n}");
    }
    if let Some(data_dir) = &args.data_dir {
        return super::offline::rollback(&snap, path, data_dir, args.yes);
    }
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = rollback_targets(args, &snap)?;
    let mut out = RollbackPlan(&snap).to_string();
    if !args.yes {
        out.push_str("dry run: run again with --yes to restore these values\n");
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    console::print(&out)?;
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    if let (Some(p), Some((_, s))) = (&snap.postgres, &live.pg) {
        same_cluster(p, s)?;
    }
    let mut progress = Progress {
        applied: Vec::new(),
        reloaded: false,
        postgres_changes: snap.postgres.is_some(),
        undo: format!(
            "run the same rollback again once the server answers: it restores every value in {} again",
            path.display()
        ),
    };
    if let (Some(p), Some((c, s))) = (&snap.postgres, &live.pg) {
        for ch in &p.changes {
            if let Some(now) = s.get(&ch.name) {
                changed_since_apply(ch, now, s.major);
            }
            rt.block_on(pg_alter(c, &ch.name, ch.previous_auto_conf.as_deref(), t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
            progress.done(match &ch.previous_auto_conf {
                Some(v) => format!(
                    "postgres {} back to {}",
                    ch.name,
                    Value::new(Scope::Postgres, &ch.name, v.clone())
                ),
                None => format!("postgres {} reset", ch.name),
            });
        }
        rt.block_on(pg_reload(c, t))
            .map_err(|e| progress.fail(format!("{e:#}")))?;
        progress.reloaded = true;
    }
    if let (Some(r), Some((c, _))) = (&snap.redis, live.redis.as_mut()) {
        for ch in &r.changes {
            let previous = Value::new(Scope::Redis, &ch.name, ch.previous.clone());
            match rt.block_on(redis_config_set(c, &ch.name, &ch.previous, t)) {
                Ok(()) => progress.done(format!("redis {} back to {previous}", ch.name)),
                Err(e) if e.contains("immutable") => note!(
                    "note: redis {}: immutable while Redis runs; it goes back with the file at the next restart",
                    ch.name
                ),
                Err(e) => {
                    return Err(progress.fail(format!(
                        "CONFIG SET {} {previous} failed: {e}",
                        ch.name
                    )))
                }
            }
        }
        if r.rewrite {
            rt.block_on(redis_rewrite(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
        }
    }
    let mut out = format!("restored the values recorded in {}\n", path.display());
    if let Some((c, s)) = live.pg.as_ref() {
        let now = rt.block_on(pg_state(c, &s.target, t))?;
        out.push_str(&pending_after_rollback(&snap, &now));
    }
    console::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Says when a setting was changed by someone else after apply set it:
/// the server runs neither what apply set nor what was there before (a
/// change apply never reached runs the previous value, and is silent).
pub(super) fn changed_since_apply(ch: &PgPrevious, now: &super::PgSetting, major: u32) {
    let Some(applied) = &ch.applied else {
        return;
    };
    if now.pending_restart
        || pg_same(applied, now, major)
        || pg_same(&ch.previous_setting, now, major)
        || ch
            .previous_auto_conf
            .as_deref()
            .is_some_and(|v| pg_same(v, now, major))
    {
        return;
    }
    note!(
        "note: postgres {} was changed since apply set it to {} (now {}); restoring it anyway",
        ch.name,
        Value::new(Scope::Postgres, &ch.name, applied.clone()),
        now.display()
    );
}

/// The servers to roll back: those on the command line (with passwords),
/// else the snapshot's own URLs when they need none; a Redis at another
/// address than the snapshot's is refused.
pub(super) fn rollback_targets(
    args: &ApplyArgs,
    snap: &Snapshot,
) -> Result<(Option<Target>, Option<Target>)> {
    let given = if args.args.is_empty() {
        conn::env_targets()?
    } else {
        args.args
            .iter()
            .map(|a| conn::parse_target(a))
            .collect::<Result<Vec<_>>>()?
    };
    let pick = |want_pg: bool, recorded: Option<&str>| -> Result<Option<Target>> {
        let Some(u) = recorded else {
            return Ok(None);
        };
        if let Some(t) = given
            .iter()
            .find(|t| matches!(t, Target::Postgres { .. }) == want_pg)
        {
            return Ok(Some(t.clone()));
        }
        if !u.contains("***") && !u.contains("(from") {
            return conn::parse_target(u).map(Some);
        }
        Err(Error::plain(
            format!("the snapshot was taken from {u}; give that server's URL with its password"),
            "dbtune apply --rollback SNAPSHOT --yes postgres://user:password@host/db",
        )
        .into())
    };
    let pg_t = pick(true, snap.postgres.as_ref().map(|p| p.target.as_str()))?;
    let redis_t = pick(false, snap.redis.as_ref().map(|r| r.target.as_str()))?;
    if let (Some(r), Some(rt)) = (&snap.redis, &redis_t) {
        let hp = host_port(rt);
        if !r.host_port.is_empty() && r.host_port != hp {
            return Err(Error::plain(
                format!(
                    "the snapshot's Redis changes were made on {}, not {hp}; nothing was changed",
                    r.host_port
                ),
                "give the URL of the server the snapshot was taken from",
            )
            .into());
        }
    }
    Ok((pg_t, redis_t))
}

/// What a rollback restores, one line per setting.
pub(super) struct RollbackPlan<'a>(&'a Snapshot);

impl fmt::Display for RollbackPlan<'_> {
    /// Values as [`Value`] shows them: masked when secret, control
    /// characters escaped (a snapshot records what the server ran,
    /// whatever it holds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pg = |name: &str, v: &str| Value::new(Scope::Postgres, name, v);
        for c in self.0.postgres.iter().flat_map(|p| &p.changes) {
            match &c.previous_auto_conf {
                Some(v) => writeln!(
                    f,
                    "postgres  {}: ALTER SYSTEM SET back to {}",
                    c.name,
                    pg(&c.name, v)
                )?,
                None => writeln!(
                    f,
                    "postgres  {}: ALTER SYSTEM RESET (was {} from outside postgresql.auto.conf)",
                    c.name,
                    pg(&c.name, &c.previous_setting)
                )?,
            }
        }
        for c in self.0.redis.iter().flat_map(|r| &r.changes) {
            writeln!(
                f,
                "redis     {}: CONFIG SET back to {}",
                c.name,
                Value::new(Scope::Redis, &c.name, c.previous.clone())
            )?;
        }
        Ok(())
    }
}

/// The server is the cluster the snapshot was taken from (whatever address
/// it was reached at), and the role may change it.
pub(super) fn same_cluster(p: &PgSnapshot, s: &PgState) -> Result<()> {
    match (&p.system_identifier, &s.system_identifier) {
        (Some(want), Some(have)) if want == have => {}
        (Some(want), Some(have)) => {
            return Err(Error::plain(
                format!(
                    "{} is cluster {have}, but the snapshot was taken from cluster {want} ({}); nothing was changed",
                    s.target, p.host_port
                ),
                "give the URL of the server the snapshot was taken from",
            )
            .into())
        }
        (None, _) => {
            return Err(Error::plain(
                "the snapshot does not record which cluster it was taken from; nothing was changed",
                "it was written by an older dbtune: restore its values by hand with ALTER SYSTEM",
            )
            .into())
        }
        (Some(_), None) => {
            return Err(Error::plain(
                format!("cannot read the system identifier of {}; nothing was changed", s.target),
                "roll back as a superuser",
            )
            .into())
        }
    }
    if !s.superuser {
        return Err(Error::plain(
            format!("PostgreSQL user `{}` is not a superuser", s.user),
            "roll back as a superuser",
        )
        .into());
    }
    Ok(())
}

/// Which rolled-back parameters PostgreSQL marks as waiting for a
/// restart, and why that is not a failure (empty when none).
pub(super) fn pending_after_rollback(snap: &Snapshot, now: &PgState) -> String {
    let pending: Vec<&str> = now
        .settings
        .iter()
        .filter(|x| {
            x.pending_restart
                && snap
                    .postgres
                    .iter()
                    .flat_map(|p| &p.changes)
                    .any(|c| c.name == x.name)
        })
        .map(|x| x.name.as_str())
        .collect();
    if pending.is_empty() {
        return String::new();
    }
    format!(
        "note: PostgreSQL marks {} as waiting for a restart: it does so for any restart-only parameter \
         removed from its files, even when the value does not change\n",
        pending.join(", ")
    )
}
