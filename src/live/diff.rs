//! `diff`: every setting of a directory against what runs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::{servers::*, state::*};
use crate::cli::DiffArgs;
use crate::console;
use crate::error::EXIT_NO;
use crate::note;
use crate::read::settings::{HostSettings, Location, ServiceSettings};
use crate::secret::Value;
use crate::service::Scope;

pub(super) fn drifts(live: &Live, files: &HostSettings) -> Vec<Drift> {
    let mut out = Vec::new();
    if let (Some(f), Some((_, s))) = (&files.postgres, &live.pg) {
        out.extend(pg_drift(f, s));
    }
    if let (Some(f), Some((_, s))) = (&files.redis, &live.redis) {
        out.extend(redis_drift(f, s));
    }
    out
}

pub fn diff(args: DiffArgs) -> Result<ExitCode> {
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(&args.targets)?;
    let rt = runtime()?;
    let live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let (files, _) = load_dir(&args.dir, &live)?;
    if files.postgres.is_some() && live.pg.is_none() {
        note!("note: no PostgreSQL server given: postgresql.conf is not compared");
    }
    if files.redis.is_some() && live.redis.is_none() {
        note!("note: no Redis server given: redis.conf is not compared");
    }
    let d = drifts(&live, &files);
    let differ: Vec<&Drift> = d.iter().filter(|x| !x.same).collect();
    let out = if args.json {
        serde_json::to_string_pretty(
            &json!({"schema": 1, "same": d.len() - differ.len(), "settings": d}),
        )? + "\n"
    } else {
        let lines: String = differ.iter().map(|x| format!("{x}\n")).collect();
        format!(
            "{lines}{} setting(s) differ, {} the same\n",
            differ.len(),
            d.len() - differ.len()
        )
    };
    console::print(&out)?;
    Ok(if differ.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

/// A file setting compared with what runs. Both values are shown (and
/// serialized) masked when the setting holds a credential.
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    pub service: Scope,
    pub name: String,
    pub file_value: Value,
    pub at: Location,
    /// None: the server has no such setting.
    pub live: Option<Value>,
    pub same: bool,
}

pub fn pg_drift(file: &ServiceSettings, live: &PgState) -> Vec<Drift> {
    let mut out = Vec::new();
    for (name, entries) in &file.entries {
        if name.contains('.') {
            continue; // extension placeholders are not in pg_settings until loaded
        }
        let e = entries.last().expect("never empty");
        let l = live.get(name);
        out.push(Drift {
            service: Scope::Postgres,
            name: name.clone(),
            file_value: Value::new(Scope::Postgres, name, e.value.clone()),
            at: e.at.clone(),
            live: l.map(|l| Value::new(Scope::Postgres, name, l.display())),
            same: l.is_some_and(|l| pg_same(&e.value, l, live.major)),
        });
    }
    out
}

pub fn redis_drift(file: &ServiceSettings, live: &RedisState) -> Vec<Drift> {
    let mut out = Vec::new();
    for (name, entries) in &file.entries {
        if REDIS_FILE_ONLY.contains(&name.as_str()) {
            continue;
        }
        let e = entries.last().expect("never empty");
        let value = if name == "save" {
            entries
                .iter()
                .map(|e| e.value.trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            e.value.clone()
        };
        // Files are read under the newest release's names; an older
        // server answers CONFIG GET with its own (7.0's
        // `server_cpulist`), which is also the name CONFIG SET takes.
        let (live_name, l) = match live.config.get(name) {
            Some(l) => (name.clone(), Some(l)),
            None => live
                .config
                .iter()
                .find(|(k, _)| crate::read::catalog::redis_new_name(k).as_deref() == Some(name))
                .map_or((name.clone(), None), |(k, v)| (k.clone(), Some(v))),
        };
        out.push(Drift {
            service: Scope::Redis,
            name: live_name,
            file_value: Value::new(Scope::Redis, name, value.clone()),
            at: e.at.clone(),
            live: l.map(|l| Value::new(Scope::Redis, name, l.clone())),
            same: l.is_some_and(|l| redis_same(name, &value, l)),
        });
    }
    out
}
