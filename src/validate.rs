//! Findings about settings: unknown names (with a "did you mean"), bad
//! units and types, values out of range, parameters the target PostgreSQL
//! version lacks, settings made twice. Every finding points at file:line.

use std::fmt;

use serde::Serialize;

use crate::catalog::{pgbouncer_keys, redis_keys, KeyList, Lookup, PgCatalog};
use crate::settings::{Location, ServiceSettings};
use crate::units::parse_redis_memory;

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

pub fn postgres(s: &ServiceSettings, version: u32, build: Option<&[String]>) -> Vec<Finding> {
    let cat = PgCatalog::get(version);
    let mut out = Vec::new();
    // Lines PostgreSQL's own lexer refuses: the server would not start.
    for e in &s.syntax_errors {
        out.push(Finding::error(
            "postgres",
            Some(&e.at),
            e.message.clone(),
            e.hint.clone(),
        ));
    }
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
                let lacks = |feature: &str| build.is_some_and(|b| !b.iter().any(|f| f == feature));
                if let Some(feature) = &p.build_only {
                    if lacks(feature) {
                        out.push(Finding::error(
                            "postgres",
                            Some(&e.at),
                            format!("`{name}` exists only in builds with the {feature} patch, and this server's build lacks it: it would not start"),
                            Some("remove the line".into()),
                        ));
                        continue;
                    }
                    if build.is_none() {
                        out.push(Finding::warning(
                            "postgres",
                            Some(&e.at),
                            format!("`{name}` exists only in builds with the {feature} patch (Debian, Ubuntu, PGDG packages)"),
                            Some("other builds refuse it and do not start: keep it only for such a server".into()),
                        ));
                    }
                }
                for e in entries {
                    let needs = p
                        .build_values
                        .iter()
                        .find(|b| b.value.eq_ignore_ascii_case(e.value.trim()));
                    if let Some(b) = needs.filter(|b| lacks(&b.feature)) {
                        out.push(Finding::error(
                            "postgres",
                            Some(&e.at),
                            format!(
                                "`{name} = {}` needs a PostgreSQL built with {}, and this server's build lacks it: it would not start",
                                e.value, b.feature
                            ),
                            Some(format!("valid here: {}", p.enumvals.join(", "))),
                        ));
                    }
                }
                if let Some((without, with)) = &p.since_minor {
                    out.push(Finding::warning(
                        "postgres",
                        Some(&e.at),
                        format!(
                            "`{name}` was added in a minor release of PostgreSQL {version}: {without} lacks it, {with} has it"
                        ),
                        Some("check the server's exact version (SELECT version()); older minors refuse it".into()),
                    ));
                }
                for e in entries {
                    if let Err(err) = crate::pgvalue::read(p, &e.value) {
                        out.push(Finding::error("postgres", Some(&e.at), err.message, err.hint));
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
        postgres(&parse::postgresql_conf(text, "pg.conf").unwrap(), v, None)
    }

    #[test]
    fn postgres_values_are_checked_against_the_catalog() {
        // Each expectation agrees with PostgreSQL 15 (`postgres -C` on a
        // file holding the line; tests/pg_oracle.rs asks every version).
        let cases: &[(&str, Option<&str>)] = &[
            ("shared_buffers = 128MB", None),
            ("shared_buffers = 16384", None),
            ("shared_buffers = 1.5GB", Some("syntax error near `GB`")),
            ("shared_buffers = '1.5GB'", None),
            ("shared_buffers = 128mb", Some("not a valid unit")),
            ("shared_buffers = 64kB", Some("below its minimum")),
            ("work_mem = '4 MB'", None),
            ("work_mem = 4.5", Some("below its minimum")),
            ("work_mem = '0.5MB'", None),
            ("checkpoint_timeout = 15min", None),
            ("checkpoint_timeout = '1.5min'", None),
            ("checkpoint_timeout = 15MB", Some("not a valid unit")),
            ("checkpoint_timeout = 5", Some("below its minimum")),
            ("max_connections = 0x64", None),
            ("max_connections = 1.5", None),
            ("max_connections = 09", Some("octal")),
            ("max_connections = lots", Some("needs a number")),
            ("unix_socket_permissions = 0777", None),
            ("log_file_mode = 0600", None),
            ("jit = of", None),
            ("jit = maybe", Some("needs a boolean")),
            ("jit = off", None),
            ("jit = TRUE", None),
            ("fsync = ' on'", Some("needs a boolean")),
            ("huge_pages = maybe", Some("not a valid value")),
            ("huge_pages = ON", None),
            ("huge_pages = of", Some("not a valid value")),
            ("wal_compression = lz4", None),
            ("random_page_cost = 1.1", None),
            ("random_page_cost = -1", Some("below its minimum")),
            ("random_page_cost = '1e308'", None),
            ("random_page_cost = 1e308", Some("syntax error")),
            ("block_size = 16384", Some("cannot be set")),
            ("shared_bufers = 1GB", Some("did you mean `shared_buffers`")),
            ("pg_stat_statements.max = 10000", None),
            ("log_directory = /var/log/pg", Some("syntax error near `/`")),
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
