//! What runs: PostgreSQL's pg_settings and Redis's INFO / CONFIG GET,
//! read with a timeout, as the settings the read side judges.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::*;
use crate::error::Error;
use crate::read::pgvalue::PgValue;
use crate::read::settings::{Location, ServiceSettings};
use crate::secret::{self};
use crate::service::Scope;
use crate::units::{parse_redis_memory, ByteSize};
use crate::version::PgVersion;

/// One row of pg_settings.
#[derive(Clone, Debug, Serialize)]
pub struct PgSetting {
    pub name: String,
    pub setting: String,
    pub unit: Option<String>,
    pub vartype: String,
    pub source: String,
    pub sourcefile: Option<String>,
    pub sourceline: Option<i32>,
    pub pending_restart: bool,
    pub context: String,
    /// The values of an enum.
    pub enumvals: Vec<String>,
}

impl PgSetting {
    /// The value as a person may read it: `128MB`, `5min`, `on`; a
    /// credential masked (`primary_conninfo`'s password), control
    /// characters escaped. Never sent back to a server: that is `setting`.
    pub fn display(&self) -> String {
        match (self.unit.as_deref(), self.setting.parse::<f64>()) {
            (Some(u), Ok(n)) if unit_bytes(u).is_some() && n >= 0.0 => {
                ByteSize((n * unit_bytes(u).unwrap_or(1.0)) as u64).pg()
            }
            (Some(u), Ok(_)) => format!("{}{u}", self.setting),
            _ => secret::show(Scope::Postgres, &self.name, &self.setting),
        }
    }

    /// The row as a catalog entry, for the one value reader. Without
    /// min/max: the live value is in range, and a file's value is judged
    /// by validation.
    pub fn as_param(&self, major: u32) -> crate::read::catalog::PgParam {
        use crate::read::catalog::{Lookup, PgCatalog, VarType};
        // The live enumvals are this build's own; the spellings PostgreSQL
        // accepts beyond them come from the version's catalog.
        let aliases = match PgCatalog::get(PgVersion::nearest(major)).lookup(&self.name) {
            Lookup::Known(p) => p.aliases.clone(),
            _ => Vec::new(),
        };
        crate::read::catalog::PgParam {
            name: self.name.clone(),
            vartype: match self.vartype.as_str() {
                "bool" => VarType::Bool,
                "integer" => VarType::Integer,
                "real" => VarType::Real,
                "enum" => VarType::Enum,
                _ => VarType::String,
            },
            unit: self.unit.clone(),
            min: None,
            max: None,
            enumvals: self.enumvals.clone(),
            context: self.context.clone(),
            boot_val: None,
            aliases,
            build_values: Vec::new(),
            build_only: None,
            since_minor: None,
            hook_floor: match PgCatalog::get(PgVersion::nearest(major)).lookup(&self.name) {
                Lookup::Known(p) => p.hook_floor,
                _ => None,
            },
        }
    }

    pub fn location(&self) -> Location {
        match (&self.sourcefile, self.sourceline) {
            (Some(f), Some(l)) => Location {
                file: f.clone(),
                line: l.max(0) as usize,
            },
            _ => Location {
                file: format!("live ({})", self.source),
                line: 0,
            },
        }
    }
}

pub(super) fn unit_bytes(unit: &str) -> Option<f64> {
    match unit {
        "8kB" => Some(8192.0),
        u => crate::read::pgvalue::memory_unit_bytes(u),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PgState {
    pub target: String,
    pub version: String,
    pub major: u32,
    pub user: String,
    pub superuser: bool,
    pub settings: Vec<PgSetting>,
    pub connections: BTreeMap<String, i64>,
    pub max_connections: i64,
    pub cache_hit_ratio: Option<f64>,
    /// Whether dbtune's own connection is encrypted.
    pub tls: bool,
    /// pg_control's system identifier: which cluster this is, whatever
    /// address it was reached at. None when the role may not read it.
    pub system_identifier: Option<String>,
}

impl PgState {
    /// A parameter by name; names are case-insensitive (`TimeZone`).
    pub fn get(&self, name: &str) -> Option<&PgSetting> {
        self.settings
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// What this server's build supports, from the values it lists
    /// (lz4 in wal_compression or default_toast_compression, io_uring in
    /// io_method) and the parameters it has (Debian's extension_destdir).
    pub fn build_features(&self) -> Vec<String> {
        let lists = |name: &str, v: &str| {
            self.get(name)
                .is_some_and(|s| s.enumvals.iter().any(|e| e == v))
        };
        let mut out = Vec::new();
        if lists("wal_compression", "lz4") || lists("default_toast_compression", "lz4") {
            out.push("lz4".to_string());
        }
        if lists("wal_compression", "zstd") {
            out.push("zstd".to_string());
        }
        if lists("io_method", "io_uring") {
            out.push("liburing".to_string());
        }
        if self.get("extension_destdir").is_some() {
            out.push("debian".to_string());
        }
        out
    }

    /// Settings as the budget reads them, each located in its file when
    /// the server says where it came from.
    pub fn service_settings(&self) -> ServiceSettings {
        let mut s = ServiceSettings {
            files: vec![format!("live {}", self.target)],
            ..Default::default()
        };
        for p in &self.settings {
            s.push(
                &p.name.to_ascii_lowercase(),
                p.setting.clone(),
                p.location(),
            );
        }
        s
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RedisState {
    pub target: String,
    pub info: BTreeMap<String, String>,
    pub config: BTreeMap<String, String>,
}

impl RedisState {
    pub fn info_num(&self, k: &str) -> Option<f64> {
        self.info.get(k).and_then(|v| v.parse().ok())
    }

    pub fn service_settings(&self) -> ServiceSettings {
        let mut s = ServiceSettings {
            files: vec![format!("live {}", self.target)],
            ..Default::default()
        };
        for (k, v) in &self.config {
            s.push(
                k,
                v.clone(),
                Location {
                    file: format!("live CONFIG GET {k}"),
                    line: 0,
                },
            );
        }
        s
    }
}

pub(super) async fn timed<T>(
    what: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!(Error::plain(
            format!("{what}: no answer within {} s", timeout.as_secs()),
            "the server is busy or unreachable; raise --timeout",
        ))),
    }
}

pub(crate) async fn pg_query(
    c: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    timeout: Duration,
) -> Result<Vec<tokio_postgres::Row>> {
    timed(
        sql.split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
        timeout,
        async {
            c.query(sql, params)
                .await
                .map_err(|e| anyhow!("query failed: {}", conn::pg_error_text(&e)))
        },
    )
    .await
}

pub async fn pg_state(c: &tokio_postgres::Client, target: &str, t: Duration) -> Result<PgState> {
    let rows = pg_query(
        c,
        "SELECT name, setting, unit, vartype, source, sourcefile, sourceline, pending_restart, context, coalesce(enumvals, '{}') FROM pg_settings",
        &[],
        t,
    )
    .await?;
    let settings: Vec<PgSetting> = rows
        .iter()
        .map(|r| PgSetting {
            name: r.get(0),
            setting: r.get::<_, Option<String>>(1).unwrap_or_default(),
            unit: r.get(2),
            vartype: r.get(3),
            source: r.get(4),
            sourcefile: r.get(5),
            sourceline: r.get(6),
            pending_restart: r.get(7),
            context: r.get(8),
            enumvals: r.get(9),
        })
        .collect();
    let version: String = pg_query(c, "SHOW server_version", &[], t).await?[0].get(0);
    let num: String = pg_query(c, "SHOW server_version_num", &[], t).await?[0].get(0);
    let major = num.parse::<u32>().unwrap_or(0) / 10000;
    let who = pg_query(
        c,
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
        &[],
        t,
    )
    .await?;
    let (user, superuser) = (who[0].get::<_, String>(0), who[0].get::<_, bool>(1));
    let mut connections = BTreeMap::new();
    for r in pg_query(
        c,
        "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1",
        &[],
        t,
    )
    .await?
    {
        connections.insert(r.get::<_, Option<String>>(0).unwrap_or_default(), r.get::<_, i64>(1));
    }
    let cache_hit_ratio = pg_query(
        c,
        "SELECT sum(blks_hit)::float8 / nullif(sum(blks_hit) + sum(blks_read), 0) FROM pg_stat_database",
        &[],
        t,
    )
    .await?[0]
        .get::<_, Option<f64>>(0);
    let tls = pg_query(
        c,
        "SELECT coalesce(bool_or(ssl), false) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
        t,
    )
    .await?[0]
        .get::<_, bool>(0);
    let max_connections = settings
        .iter()
        .find(|s| s.name == "max_connections")
        .and_then(|s| s.setting.parse().ok())
        .unwrap_or(0);
    // pg_control_system() may be denied to ordinary roles: then None.
    let system_identifier = match c
        .query(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
    {
        Ok(rows) => rows.first().and_then(|r| r.get::<_, Option<String>>(0)),
        Err(_) => None,
    };
    Ok(PgState {
        target: target.to_string(),
        version,
        major,
        user,
        superuser,
        settings,
        connections,
        max_connections,
        cache_hit_ratio,
        tls,
        system_identifier,
    })
}

/// `INFO all` as field -> value.
pub(super) async fn redis_info(
    con: &mut redis::aio::MultiplexedConnection,
    t: Duration,
) -> Result<BTreeMap<String, String>> {
    let text: String = timed("INFO", t, async {
        redis::cmd("INFO")
            .arg("all")
            .query_async(con)
            .await
            .map_err(|e| anyhow!("INFO failed: {e}"))
    })
    .await?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

pub async fn redis_state(
    con: &mut redis::aio::MultiplexedConnection,
    target: &str,
    t: Duration,
) -> Result<RedisState> {
    let info = redis_info(con, t).await?;
    let config: BTreeMap<String, String> = timed("CONFIG GET", t, async {
        let pairs: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("*")
            .query_async(con)
            .await
            .map_err(|e| {
                anyhow!("CONFIG GET * failed: {e} (is CONFIG renamed or denied by an ACL?)")
            })?;
        Ok(pairs
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect())
    })
    .await?;
    Ok(RedisState {
        target: target.to_string(),
        info,
        config,
    })
}

/// Whether a file's value and the live one are the same setting: the
/// file's value read as PostgreSQL reads it (`pgvalue`), against the
/// live row's type and unit.
pub fn pg_same(file_value: &str, live: &PgSetting, major: u32) -> bool {
    let param = live.as_param(major);
    let Ok(file) = crate::read::pgvalue::read(&param, file_value) else {
        return false;
    };
    let Ok(running) = crate::read::pgvalue::read(&param, &live.setting) else {
        return file_value.trim() == live.setting;
    };
    match (&file, &running) {
        (PgValue::Real(a), PgValue::Real(b)) => (a - b).abs() <= b.abs() * 1e-9,
        (PgValue::String(a), PgValue::String(b)) => a == b,
        _ => file == running,
    }
}

/// Redis's CONFIG GET answers sizes in bytes and `save` as one string.
pub fn redis_same(name: &str, file_value: &str, live: &str) -> bool {
    if name == "save" {
        return file_value.trim_matches('"') == live;
    }
    match (parse_redis_memory(file_value), live.parse::<u64>()) {
        (Some(a), Ok(b)) if a.bytes() == b => true,
        _ => file_value.eq_ignore_ascii_case(live),
    }
}

/// Redis file directives CONFIG GET/SET know nothing about.
pub const REDIS_FILE_ONLY: &[&str] = &[
    "include",
    "rename-command",
    "loadmodule",
    "user",
    "sentinel",
];
