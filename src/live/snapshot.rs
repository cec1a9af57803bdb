//! The snapshot apply writes before it changes anything, and how a
//! rollback reads one back (only what apply could have written).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::*;
use super::{apply::*, change::*, servers::*};
use crate::error::{Error, Place};
use crate::service::Scope;

/// Prefix of a snapshot being written: a killed apply leaves one, and the
/// next apply into that directory (under its lock) removes it.
pub(super) const SNAPSHOT_TEMP_PREFIX: &str = ".dbtune-snapshot-tmp-";

pub(super) fn write_snapshot(dir: &Path, snap: &Snapshot) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create snapshot directory `{}`", dir.display()))?;
    let t = snap.created_unix;
    let names = (0..1000).map(|n| match n {
        0 => format!("dbtune-snapshot-{t}.json"),
        n => format!("dbtune-snapshot-{t}-{n}.json"),
    });
    crate::atomic::create_new(
        dir,
        SNAPSHOT_TEMP_PREFIX,
        names,
        (serde_json::to_string_pretty(snap)? + "\n").as_bytes(),
        0o600,
    )
}

/// Privileges, then the previous values and the servers' identity, on
/// disk before anything changes.
pub(super) fn take_snapshot(
    rt: &tokio::runtime::Runtime,
    live: &Live,
    pg_t: &Option<Target>,
    redis_t: &Option<Target>,
    set: &ChangeSet,
    snapshot_dir: &Path,
    t: Duration,
) -> Result<std::path::PathBuf> {
    if let Some((_, s)) = &live.pg {
        if !set.pg.is_empty() && !s.superuser {
            return Err(Error::plain(
                format!("PostgreSQL user `{}` is not a superuser: nothing was changed", s.user),
                "apply needs a superuser: ALTER SYSTEM, and reading postgresql.auto.conf for the rollback snapshot",
            )
            .into());
        }
    }
    let names: Vec<String> = set.pg.iter().map(|c| c.name.clone()).collect();
    let auto = match &live.pg {
        Some((c, _)) if !names.is_empty() => rt.block_on(pg_auto_conf(c, &names, t))?,
        _ => Default::default(),
    };
    let snapshot = Snapshot {
        dbtune_version: env!("CARGO_PKG_VERSION").into(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        postgres: live
            .pg
            .as_ref()
            .filter(|_| !set.pg.is_empty())
            .map(|(_, s)| PgSnapshot {
                target: s.target.clone(),
                host_port: pg_t.as_ref().map(host_port).unwrap_or_default(),
                system_identifier: s.system_identifier.clone(),
                data_directory: s.get("data_directory").map(|d| d.setting.clone()),
                changes: set
                    .pg
                    .iter()
                    .map(|c| PgPrevious {
                        name: c.name.clone(),
                        previous_setting: c.from.clone(),
                        previous_auto_conf: auto.get(&c.name).cloned(),
                        applied: Some(c.to.expose().to_string()),
                    })
                    .collect(),
            }),
        redis: live
            .redis
            .as_ref()
            .filter(|_| !set.redis.is_empty())
            .map(|(_, r)| RedisSnapshot {
                target: r.target.clone(),
                host_port: redis_t.as_ref().map(host_port).unwrap_or_default(),
                rewrite: r.info.get("config_file").is_some_and(|f| !f.is_empty()),
                changes: set
                    .redis
                    .iter()
                    .map(|c| RedisPrevious {
                        name: c.name.clone(),
                        previous: c.from.expose().to_string(),
                        applied: Some(c.to.expose().to_string()),
                    })
                    .collect(),
            }),
    };
    write_snapshot(snapshot_dir, &snapshot)
}

/// Reads a snapshot and checks that it says only what apply could have
/// written: known keys, none that move a server or change who may do
/// what, plain values. A credential (which apply no longer changes, but
/// an older dbtune did) is left out with a note, not restored.
pub(super) fn read_snapshot(path: &Path) -> Result<(Snapshot, Vec<String>)> {
    let text = read_trusted(path)?;
    let mut snap: Snapshot = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            Place::line(path.display(), e.line()),
            format!("not a dbtune snapshot: {e}"),
            "pass the file `dbtune apply --yes` wrote",
        )
    })?;
    let bad = |what: String| -> anyhow::Error {
        Error::plain(
            format!("snapshot `{}` {what}: it was not written by apply, or was edited", path.display()),
            "nothing was changed; roll back with the snapshot apply wrote, or set the values by hand",
        )
        .into()
    };
    let mut notes = Vec::new();
    let mut skip_credential = |scope: Scope, name: &str| -> bool {
        let credential = crate::secret::holds(scope, name).is_credential();
        if credential {
            notes.push(format!(
                "note: {scope} {name}: the snapshot records a credential, which apply no longer \
                 changes; it is not restored (set it by hand if it must go back)"
            ));
        }
        credential
    };
    if let Some(p) = &mut snap.postgres {
        for c in &p.changes {
            if !guc_name(&c.name) {
                return Err(bad(format!(
                    "names `{}`, which is not a parameter",
                    c.name.escape_debug()
                )));
            }
            if PG_NEVER.contains(&c.name.as_str()) {
                return Err(bad(format!("sets `{}`, which apply never changes", c.name)));
            }
            // What goes back into postgresql.auto.conf: ALTER SYSTEM
            // refuses a newline (the file's grammar has none in a
            // value), so apply never wrote one. Other control characters
            // are values like any other, escaped wherever shown.
            let values = [c.previous_auto_conf.as_deref(), c.applied.as_deref()];
            if values.into_iter().flatten().any(|v| v.contains('\n')) {
                return Err(bad(format!("gives `{}` a value with a newline", c.name)));
            }
        }
        p.changes
            .retain(|c| !skip_credential(Scope::Postgres, &c.name));
    }
    if let Some(r) = &mut snap.redis {
        for c in &r.changes {
            let name_ok = !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
            if !name_ok {
                return Err(bad(format!(
                    "names `{}`, which is not a Redis setting",
                    c.name.escape_debug()
                )));
            }
            if redis_never(&c.name).is_some() || super::REDIS_FILE_ONLY.contains(&c.name.as_str()) {
                return Err(bad(format!(
                    "sets Redis `{}`, which apply never changes",
                    c.name
                )));
            }
        }
        r.changes
            .retain(|c| !skip_credential(Scope::Redis, &c.name));
    }
    let changes = snap.postgres.iter().map(|p| p.changes.len()).sum::<usize>()
        + snap.redis.iter().map(|r| r.changes.len()).sum::<usize>();
    if changes == 0 {
        return Err(Error::plain(
            format!(
                "snapshot `{}` records no change to restore; nothing was changed",
                path.display()
            ),
            "pass the snapshot that `dbtune apply --yes` named when it made the changes",
        )
        .into());
    }
    Ok((snap, notes))
}

/// A snapshot's text, when it can be trusted as what apply wrote: the
/// same rule as dbtune's state files (a regular file, not a link, owned
/// by this user or root, writable by no one else). A snapshot names what
/// a rollback writes into postgresql.auto.conf, which PostgreSQL runs
/// commands from: one another user could have written is refused.
fn read_trusted(path: &Path) -> Result<String> {
    let shown = path.display();
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::plain(
            format!("`{shown}` is not a snapshot file"),
            "pass the file `dbtune apply --yes` wrote",
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = crate::atomic::Dir::open(parent).map_err(|e| {
        Error::plain(
            format!("cannot read snapshot `{shown}`: {e}"),
            "pass the file `dbtune apply --yes` wrote",
        )
    })?;
    match dir.read_state(name, crate::input::MAX_CONFIG)? {
        crate::atomic::State::Trusted(bytes) => Ok(crate::input::text_of(bytes, path, "snapshot")?),
        crate::atomic::State::Missing => Err(Error::plain(
            format!("snapshot `{shown}` does not exist"),
            "pass the file `dbtune apply --yes` wrote (apply names it)",
        )
        .into()),
        crate::atomic::State::Untrusted(why) => Err(Error::plain(
            format!("snapshot `{shown}` is not trusted: {why}; nothing was changed"),
            "a rollback restores only a snapshot no other user could have written: pass the one \
             apply wrote (yours or root's, mode 0600), or set the values by hand",
        )
        .into()),
    }
}

/// A parameter name as PostgreSQL's config grammar takes it, lower case
/// as the server reports it: a word, or two joined by a dot (an
/// extension's), never a directive of the file (`include`,
/// `include_dir`, `include_if_exists`), which would make the server read
/// another file.
fn guc_name(name: &str) -> bool {
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let ok = match name.split_once('.') {
        Some((a, b)) => word(a) && word(b),
        None => word(name),
    };
    ok && !["include", "include_dir", "include_if_exists"].contains(&name)
}

/// What `apply --yes` wrote first, so `apply --rollback` can undo it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub dbtune_version: String,
    pub created_unix: u64,
    pub postgres: Option<PgSnapshot>,
    pub redis: Option<RedisSnapshot>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgSnapshot {
    /// The URL the change was made through, password hidden.
    pub target: String,
    /// host:port (or socket directory:port) of that connection.
    #[serde(default)]
    pub host_port: String,
    /// pg_control's system identifier: rollback refuses another cluster.
    #[serde(default)]
    pub system_identifier: Option<String>,
    /// Where postgresql.auto.conf is, for a rollback with the server down.
    #[serde(default)]
    pub data_directory: Option<String>,
    pub changes: Vec<PgPrevious>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgPrevious {
    pub name: String,
    /// What the server ran before, for people.
    pub previous_setting: String,
    /// The value postgresql.auto.conf held, or None when it held none (then
    /// rollback RESETs the parameter).
    pub previous_auto_conf: Option<String>,
    /// What apply set.
    #[serde(default)]
    pub applied: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedisSnapshot {
    pub target: String,
    /// host:port of the server; rollback refuses another one.
    #[serde(default)]
    pub host_port: String,
    pub rewrite: bool,
    pub changes: Vec<RedisPrevious>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedisPrevious {
    pub name: String,
    pub previous: String,
    /// What apply set.
    #[serde(default)]
    pub applied: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::guc_name;

    #[test]
    fn only_plain_parameter_names_are_restored() {
        for ok in ["work_mem", "pg_stat_statements.max", "_x1"] {
            assert!(guc_name(ok), "{ok}");
        }
        for bad in [
            "include",
            "include_dir",
            "include_if_exists",
            "",
            "1abc",
            "a..b",
            "a.b.c",
            ".a",
            "a.",
            "work_mem = '1' #",
            "Work_Mem",
        ] {
            assert!(!guc_name(bad), "{bad}");
        }
    }
}
