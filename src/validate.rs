//! Findings about settings: unknown names (with a "did you mean"), bad
//! units and types, values out of range, parameters the target PostgreSQL
//! version lacks, settings made twice. Every finding points at file:line.

use std::fmt;

use serde::Serialize;

use crate::catalog::{pgbouncer_keys, redis_keys, KeyList, Lookup, PgCatalog, PgParam, VarType};
use crate::settings::{Location, ServiceSettings};
use crate::units::{parse_redis_memory, pg_memory_unit, pg_time_unit_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A setting that can lose data or stop a server (`safety`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub safety: bool,
    pub service: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(
        service: &'static str,
        at: Option<&Location>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Finding {
            severity: Severity::Error,
            safety: false,
            service,
            at: at.cloned(),
            message,
            hint,
        }
    }

    pub fn warning(
        service: &'static str,
        at: Option<&Location>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(service, at, message, hint)
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        let unsafe_ = if self.safety { "unsafe: " } else { "" };
        write!(f, "{}: {unsafe_}{}", self.severity, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// A repeated setting: every earlier occurrence is ignored.
fn duplicates(s: &ServiceSettings, service: &'static str, skip: &[&str], out: &mut Vec<Finding>) {
    for (name, entries) in &s.entries {
        if entries.len() < 2 || skip.contains(&name.as_str()) {
            continue;
        }
        let last = entries.last().expect("len >= 2");
        for e in &entries[..entries.len() - 1] {
            out.push(Finding::warning(
                service,
                Some(&e.at),
                format!(
                    "`{name}` is set again at {}; this value ({}) is ignored",
                    last.at, e.value
                ),
                Some("remove one of them so the file says what the server does".into()),
            ));
        }
    }
}

/// PostgreSQL's boolean spellings: on, off, true, false, yes, no, 1, 0, and
/// unambiguous prefixes of them.
fn pg_bool(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    if v.is_empty() {
        return false;
    }
    if ["1", "0", "on", "off"].contains(&v.as_str()) {
        return true;
    }
    if v.len() >= 2 && "off".starts_with(&v) {
        return true;
    }
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| w.starts_with(&v))
}

fn memory_unit_bytes(unit: &str) -> Option<f64> {
    match unit {
        "8kB" => Some(8192.0),
        u => pg_memory_unit(u).map(|b| b as f64),
    }
}

/// Splits `128 MB` into (128.0, "MB"). PostgreSQL reads integers with
/// strtol (so 0x1F works) and, since 12, fractions when a unit follows.
fn split_number(v: &str) -> Option<(f64, &str)> {
    let v = v.trim();
    let (sign, body) = match v.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, v.strip_prefix('+').unwrap_or(v)),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        let n = i64::from_str_radix(&hex[..end], 16).ok()?;
        return Some((sign * n as f64, hex[end..].trim()));
    }
    let end = body
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '.'
                || ((c == 'e' || c == 'E')
                    && body[i + 1..]
                        .starts_with(|d: char| d.is_ascii_digit() || d == '-' || d == '+'))
                || ((c == '-' || c == '+') && i > 0 && body[..i].ends_with(['e', 'E'])))
        })
        .map_or(body.len(), |(i, _)| i);
    let n: f64 = body[..end].parse().ok()?;
    Some((sign * n, body[end..].trim()))
}

/// Checks one PostgreSQL value against its parameter; Err is the message.
pub fn pg_value(p: &PgParam, value: &str) -> Result<(), (String, Option<String>)> {
    let bad = |why: String, hint: Option<String>| Err((why, hint));
    match p.vartype {
        VarType::String => Ok(()),
        VarType::Bool => {
            if pg_bool(value) {
                Ok(())
            } else {
                bad(
                    format!("`{}` needs a boolean, not `{value}`", p.name),
                    Some("write on or off".into()),
                )
            }
        }
        VarType::Enum => {
            let v = value.trim().to_ascii_lowercase();
            let has_bool =
                p.enumvals.iter().any(|e| e == "on") && p.enumvals.iter().any(|e| e == "off");
            if p.enumvals.iter().any(|e| e.eq_ignore_ascii_case(&v)) || (has_bool && pg_bool(&v)) {
                Ok(())
            } else {
                bad(
                    format!("`{value}` is not a valid value for `{}`", p.name),
                    Some(format!("valid values: {}", p.enumvals.join(", "))),
                )
            }
        }
        VarType::Integer | VarType::Real => {
            let Some((n, unit)) = split_number(value) else {
                return bad(
                    format!("`{}` needs a number, not `{value}`", p.name),
                    p.unit.as_ref().map(|u| format!("a bare number is in {u}")),
                );
            };
            let param_unit = p.unit.as_deref().unwrap_or("");
            let in_param_unit = if unit.is_empty() {
                n
            } else if let (Some(from), Some(to)) =
                (memory_unit_bytes(unit), memory_unit_bytes(param_unit))
            {
                n * from / to
            } else if let (Some(from), Some(to)) =
                (pg_time_unit_ms(unit), pg_time_unit_ms(param_unit))
            {
                n * from / to
            } else {
                let valid = if memory_unit_bytes(param_unit).is_some() {
                    "B, kB, MB, GB, TB (case-sensitive)"
                } else if pg_time_unit_ms(param_unit).is_some() {
                    "us, ms, s, min, h, d"
                } else {
                    "none: this parameter takes a plain number"
                };
                return bad(
                    format!("`{unit}` is not a valid unit for `{}`", p.name),
                    Some(format!("valid units: {valid}")),
                );
            };
            if p.vartype == VarType::Integer && unit.is_empty() && n.fract() != 0.0 {
                return bad(
                    format!("`{}` needs an integer, not `{value}`", p.name),
                    p.unit.as_ref().map(|u| format!("a bare number is in {u}")),
                );
            }
            let v = if p.vartype == VarType::Integer {
                in_param_unit.round()
            } else {
                in_param_unit
            };
            let show = |x: f64| match p.unit.as_deref() {
                Some(u) => format!("{x} x {u}"),
                None => x.to_string(),
            };
            if let Some(min) = p.min.filter(|m| v < *m) {
                return bad(
                    format!("`{}` = {value} is below its minimum {}", p.name, show(min)),
                    None,
                );
            }
            if let Some(max) = p.max.filter(|m| v > *m) {
                return bad(
                    format!("`{}` = {value} is above its maximum {}", p.name, show(max)),
                    None,
                );
            }
            Ok(())
        }
    }
}

pub fn postgres(s: &ServiceSettings, version: u32) -> Vec<Finding> {
    let cat = PgCatalog::get(version);
    let mut out = Vec::new();
    for (name, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        // Qualified names (pg_stat_statements.max) belong to extensions:
        // PostgreSQL accepts them as placeholders.
        if name.contains('.') {
            continue;
        }
        match cat.lookup(name) {
            Lookup::Known(p) => {
                if p.context == "internal" {
                    out.push(Finding::error(
                        "postgres",
                        Some(&e.at),
                        format!("`{name}` is fixed when PostgreSQL is built or initdb runs; it cannot be set"),
                        Some("remove the line".into()),
                    ));
                    continue;
                }
                for e in entries {
                    if let Err((msg, hint)) = pg_value(p, &e.value) {
                        out.push(Finding::error("postgres", Some(&e.at), msg, hint));
                    }
                }
            }
            Lookup::NotYet(v) => out.push(Finding::error(
                "postgres",
                Some(&e.at),
                format!("`{name}` does not exist in PostgreSQL {version}: it was added in {v}"),
                Some(format!("remove it, or check against --pg-version {v}")),
            )),
            Lookup::Removed(v, renamed) => out.push(Finding::error(
                "postgres",
                Some(&e.at),
                format!("`{name}` does not exist in PostgreSQL {version}: {v} was the last version with it"),
                Some(match renamed {
                    Some(r) => format!("it is called `{r}` now"),
                    None => "remove it".into(),
                }),
            )),
            Lookup::Unknown(suggestion) => out.push(Finding::error(
                "postgres",
                Some(&e.at),
                format!("unknown parameter `{name}`"),
                Some(match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("not a PostgreSQL {version} parameter; extension parameters are written `extension.name`"),
                }),
            )),
        }
    }
    duplicates(s, "postgres", &[], &mut out);
    out
}

/// An unknown key, with the closest known one when it looks like a typo.
fn unknown_key(
    cat: &KeyList,
    service: &'static str,
    what: &str,
    name: &str,
    at: &Location,
    otherwise: &str,
) -> Finding {
    Finding::error(
        service,
        Some(at),
        format!("unknown {what} `{name}`"),
        Some(match cat.suggest(name) {
            Some(sug) => format!("did you mean `{sug}`?"),
            None => otherwise.to_string(),
        }),
    )
}

const REDIS_REPEATABLE: &[&str] = &[
    "save",
    "rename-command",
    "loadmodule",
    "user",
    "client-output-buffer-limit",
    "sentinel",
    "bind",
];

const REDIS_MEMORY: &[&str] = &[
    "maxmemory",
    "repl-backlog-size",
    "client-query-buffer-limit",
    "proto-max-bulk-len",
    "auto-aof-rewrite-min-size",
    "active-defrag-ignore-bytes",
];

const REDIS_POLICIES: &[&str] = &[
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
];

pub fn redis(s: &ServiceSettings) -> Vec<Finding> {
    let cat = redis_keys();
    let mut out = Vec::new();
    for (name, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        if !cat.knows(name) {
            out.push(unknown_key(
                cat,
                "redis",
                "directive",
                name,
                &e.at,
                "not a Redis 7.0 directive",
            ));
            continue;
        }
        for e in entries {
            let v = e.value.trim();
            let bad_size = REDIS_MEMORY.contains(&name.as_str()) && parse_redis_memory(v).is_none();
            let bad_clients = name == "maxmemory-clients"
                && !(v.ends_with('%') && v.trim_end_matches('%').parse::<u32>().is_ok())
                && parse_redis_memory(v).is_none();
            if bad_size || bad_clients {
                out.push(Finding::error(
                    "redis",
                    Some(&e.at),
                    format!("`{name} {v}`: not a size"),
                    Some("Redis sizes: 1k = 1000, 1kb = 1024, m/mb, g/gb, any case; a bare number is bytes".into()),
                ));
            }
            if name == "maxmemory-policy"
                && !REDIS_POLICIES.contains(&v.to_ascii_lowercase().as_str())
            {
                out.push(Finding::error(
                    "redis",
                    Some(&e.at),
                    format!("`{v}` is not an eviction policy"),
                    Some(format!("valid policies: {}", REDIS_POLICIES.join(", "))),
                ));
            }
        }
    }
    duplicates(s, "redis", REDIS_REPEATABLE, &mut out);
    out
}

const PGBOUNCER_NUMERIC: &[&str] = &[
    "max_client_conn",
    "default_pool_size",
    "min_pool_size",
    "reserve_pool_size",
    "max_db_connections",
    "max_user_connections",
    "pkt_buf",
    "listen_port",
];

pub fn pgbouncer(s: &ServiceSettings) -> Vec<Finding> {
    let cat = pgbouncer_keys();
    let mut out = Vec::new();
    for (key, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        let Some((section, name)) = key.split_once('.') else {
            continue;
        };
        match section {
            "pgbouncer" => {
                if !cat.knows(name) {
                    out.push(unknown_key(
                        cat,
                        "pgbouncer",
                        "setting",
                        name,
                        &e.at,
                        "not a PgBouncer 1.18 setting",
                    ));
                    continue;
                }
                let v = e.value.trim();
                if let Some(pos) = v
                    .find(" #")
                    .or_else(|| v.find(" ;"))
                    .or_else(|| v.find("\t#"))
                {
                    out.push(Finding::error(
                        "pgbouncer",
                        Some(&e.at),
                        format!("`{name}` has a comment after its value: PgBouncer reads `{v}` as the value"),
                        Some(format!(
                            "move the comment to its own line; the value is `{}`",
                            v[..pos].trim()
                        )),
                    ));
                    continue;
                }
                if PGBOUNCER_NUMERIC.contains(&name) && v.parse::<u64>().is_err() {
                    out.push(Finding::error(
                        "pgbouncer",
                        Some(&e.at),
                        format!("`{name}` needs a whole number, not `{v}`"),
                        None,
                    ));
                }
                if name == "pool_mode" && !["session", "transaction", "statement"].contains(&v) {
                    out.push(Finding::error(
                        "pgbouncer",
                        Some(&e.at),
                        format!("`{v}` is not a pool mode"),
                        Some("session, transaction or statement".into()),
                    ));
                }
                if name == "auth_type" && (v == "md5" || v == "plain" || v == "trust" || v == "any")
                {
                    out.push(Finding::warning(
                        "pgbouncer",
                        Some(&e.at),
                        format!("auth_type = {v} is weak"),
                        Some("use scram-sha-256".into()),
                    ));
                }
            }
            "databases" | "users" | "peers" => {}
            other => out.push(Finding::warning(
                "pgbouncer",
                Some(&e.at),
                format!("unknown section [{other}]: PgBouncer ignores it"),
                Some("sections are [databases], [users], [peers] and [pgbouncer]".into()),
            )),
        }
    }
    duplicates(s, "pgbouncer", &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn pg(text: &str, v: u32) -> Vec<Finding> {
        postgres(&parse::postgresql_conf(text, "pg.conf").unwrap(), v)
    }

    #[test]
    fn postgres_values_are_checked_against_the_catalog() {
        let cases: &[(&str, Option<&str>)] = &[
            ("shared_buffers = 128MB", None),
            ("shared_buffers = 16384", None),
            ("shared_buffers = 1.5GB", None),
            ("shared_buffers = 128mb", Some("not a valid unit")),
            ("shared_buffers = 64kB", Some("below its minimum")),
            ("work_mem = '4 MB'", None),
            ("work_mem = 4.5", Some("needs an integer")),
            ("checkpoint_timeout = 15min", None),
            ("checkpoint_timeout = 15MB", Some("not a valid unit")),
            ("checkpoint_timeout = 5", Some("below its minimum")),
            ("max_connections = 0x64", None),
            ("max_connections = lots", Some("needs a number")),
            ("jit = of", None),
            ("jit = maybe", Some("needs a boolean")),
            ("jit = off", None),
            ("jit = TRUE", None),
            ("huge_pages = maybe", Some("not a valid value")),
            ("huge_pages = ON", None),
            ("wal_compression = lz4", None),
            ("random_page_cost = 1.1", None),
            ("random_page_cost = -1", Some("below its minimum")),
            ("block_size = 16384", Some("cannot be set")),
            ("shared_bufers = 1GB", Some("did you mean `shared_buffers`")),
            ("pg_stat_statements.max = 10000", None),
        ];
        for (line, want) in cases {
            let f = pg(line, 15);
            match want {
                None => assert!(f.is_empty(), "{line}: {f:?}"),
                Some(w) => {
                    let all = format!("{f:?}");
                    assert!(all.contains(w), "{line}: wanted {w}, got {all}");
                }
            }
        }
    }

    #[test]
    fn version_specific_parameters() {
        assert!(pg("io_method = worker", 18).is_empty());
        let f = pg("io_method = worker", 16);
        assert!(f[0].message.contains("added in 18"), "{f:?}");
        let f = pg("force_parallel_mode = on", 16);
        assert!(f[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("debug_parallel_query"));
        assert!(pg("stats_temp_directory = 'pg_stat_tmp'", 14).is_empty());
    }

    #[test]
    fn set_twice_warns_at_the_ignored_line() {
        let f = pg("work_mem = 4MB\nwork_mem = 8MB\n", 15);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].at.as_ref().unwrap().line, 1);
        assert!(f[0].message.contains("pg.conf:2"));
    }

    #[test]
    fn redis_directives_and_sizes() {
        let s = parse::redis_conf(
            "maxmemory 1gb\nmaxmemroy 2gb\nmaxmemory-policy lru\nsave 900 1\nsave 60 100\nhash-max-ziplist-entries 512\nrepl-backlog-size 1x\n",
            "r.conf",
        )
        .unwrap();
        let f = redis(&s);
        let all = format!("{f:?}");
        assert!(all.contains("did you mean `maxmemory`"), "{all}");
        assert!(all.contains("not an eviction policy"), "{all}");
        assert!(all.contains("repl-backlog-size 1x"), "{all}");
        assert_eq!(f.len(), 3, "{all}");
    }

    #[test]
    fn pgbouncer_keys() {
        let s = parse::pgbouncer_ini(
            "[pgbouncer]\nmax_client_con = 10\npool_mode = sessions\nauth_type = md5\n[bogus]\nx = 1\n",
            "b.ini",
        )
        .unwrap();
        let f = pgbouncer(&s);
        let all = format!("{f:?}");
        assert!(all.contains("did you mean `max_client_conn`"), "{all}");
        assert!(all.contains("not a pool mode"), "{all}");
        assert!(all.contains("auth_type = md5 is weak"), "{all}");
        assert!(all.contains("unknown section [bogus]"), "{all}");
    }
}
