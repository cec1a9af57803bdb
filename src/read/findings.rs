//! Findings about settings: unknown names (with a "did you mean"), bad
//! units and types, values out of range, parameters the target PostgreSQL
//! version lacks, settings made twice. Every finding points at file:line.

use crate::service::Scope;
use std::fmt;

use serde::Serialize;

use crate::read::catalog::{
    BouncerCatalog, BouncerType, Lookup, PgCatalog, PgParam, RedisCatalog, RedisKey, RedisType,
    Suggestion, Suggestions,
};
use crate::read::settings::{Entry, Location, ServiceSettings};
use crate::units::parse_redis_memory;
use crate::version::PgVersion;

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
    pub service: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(
        service: Scope,
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
        service: Scope,
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

/// Lines the server's own parser refuses: each an error at its line.
fn syntax_findings(s: &ServiceSettings, scope: Scope) -> Vec<Finding> {
    s.syntax_errors
        .iter()
        .map(|e| Finding::error(scope, Some(&e.at), e.message.clone(), e.hint.clone()))
        .collect()
}

/// Said of a name the "did you mean" search skipped.
fn skipped(s: &Suggestion) -> String {
    match s {
        Suggestion::Skipped => format!(
            " (no \"did you mean\": dbtune looks for one for the first {} unknown names only)",
            Suggestions::MAX
        ),
        _ => String::new(),
    }
}

/// A repeated setting: every earlier occurrence is ignored.
fn duplicates(s: &ServiceSettings, service: Scope, skip: &[&str], out: &mut Vec<Finding>) {
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

/// `release` is the exact server version (`16.4`) when known: it decides
/// parameters a minor release added.
pub fn postgres(
    s: &ServiceSettings,
    version: PgVersion,
    build: Option<&[String]>,
    release: Option<&str>,
) -> Vec<Finding> {
    let cat = PgCatalog::get(version);
    let mut suggestions = Suggestions::new();
    // Lines PostgreSQL's own lexer refuses: the server would not start.
    let mut out = syntax_findings(s, Scope::Postgres);
    for (name, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        // Qualified names (pg_stat_statements.max) belong to extensions:
        // PostgreSQL accepts them as placeholders.
        if name.contains('.') {
            continue;
        }
        match cat.lookup(name) {
            Lookup::Known(p) => known_param(p, name, entries, build, release, version, &mut out),
            Lookup::NotYet(v) => out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!("`{name}` does not exist in PostgreSQL {version}: it was added in {v}"),
                Some(format!("remove it, or check against --pg-version {v}")),
            )),
            Lookup::Removed(v, renamed) => out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!("`{name}` does not exist in PostgreSQL {version}: {v} was the last version with it"),
                Some(match renamed {
                    Some(r) => format!("it is called `{r}` now"),
                    None => "remove it".into(),
                }),
            )),
            Lookup::Unknown => out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!("unknown parameter `{name}`"),
                Some(match cat.suggest(name, &mut suggestions) {
                    Suggestion::Found(s) => format!("did you mean `{s}`?"),
                    other => format!(
                        "not a PostgreSQL {version} parameter; extension parameters are written `extension.name`{}",
                        skipped(&other)
                    ),
                }),
            )),
        }
    }
    duplicates(s, Scope::Postgres, &[], &mut out);
    out
}

/// Findings on a parameter the version knows: fixed at build, only in
/// some builds, a value the build lacks, added in a minor release, or a
/// value PostgreSQL refuses.
fn known_param(
    p: &PgParam,
    name: &str,
    entries: &[Entry],
    build: Option<&[String]>,
    release: Option<&str>,
    version: PgVersion,
    out: &mut Vec<Finding>,
) {
    let e = entries.last().expect("entries are never empty");
    if p.context == "internal" {
        out.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            format!("`{name}` is fixed when PostgreSQL is built or initdb runs; it cannot be set"),
            Some("remove the line".into()),
        ));
        return;
    }
    let lacks = |feature: &str| build.is_some_and(|b| !b.iter().any(|f| f == feature));
    if let Some(feature) = &p.build_only {
        if lacks(feature) {
            out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!("`{name}` exists only in builds with the {feature} patch, and this server's build lacks it: it would not start"),
                Some("remove the line".into()),
            ));
            return;
        }
        if build.is_none() {
            out.push(Finding::warning(
                Scope::Postgres,
                Some(&e.at),
                format!("`{name}` exists only in builds with the {feature} patch (Debian, Ubuntu, PGDG packages)"),
                Some("other builds refuse it and do not start: keep it only for such a server".into()),
            ));
        }
    }
    // PostgreSQL applies only the last occurrence of a name and never
    // reads the values of the earlier ones (`duplicates` says they are
    // ignored): only the value in effect can stop it.
    let needs = p
        .build_values
        .iter()
        .find(|b| b.value.eq_ignore_ascii_case(e.value.trim()));
    if let Some(b) = needs.filter(|b| lacks(&b.feature)) {
        out.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            format!(
                "`{name} = {}` needs a PostgreSQL built with {}, and this server's build lacks it: it would not start",
                e.value, b.feature
            ),
            Some(format!("valid here: {}", p.enumvals.join(", "))),
        ));
    }
    if let Some(f) = since_minor(p, name, &e.at, release, version) {
        out.push(f);
    }
    match crate::read::pgvalue::read(p, &e.value) {
        Err(err) => out.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            err.message,
            err.hint,
        )),
        Ok(_) if p.name == "timezone" || p.name == "log_timezone" => {
            out.extend(time_zone(&p.name, &e.value, &e.at, version, build))
        }
        Ok(_) => {}
    }
}

/// `timezone` and `log_timezone` as their check hooks read them: a zone
/// the server's database has, a POSIX TZ spec, or (timezone) hours.
fn time_zone(
    name: &str,
    v: &str,
    at: &Location,
    version: PgVersion,
    build: Option<&[String]>,
) -> Option<Finding> {
    use crate::read::timezone::{self, Database, Reading};
    let reading = if name == "timezone" {
        timezone::timezone(v, version)
    } else {
        timezone::log_timezone(v, version)
    };
    match reading {
        None => {
            let close = timezone::suggest(v, version);
            Some(Finding::error(
                Scope::Postgres,
                Some(at),
                format!("`{name} = '{v}'` is not a time zone PostgreSQL {version} knows: it refuses to start"),
                Some(match close {
                    Some(z) => format!("did you mean `{z}`?"),
                    None => format!(
                        "write a name from pg_timezone_names (UTC, Europe/Paris, America/New_York...) or a POSIX TZ spec \
                         (EST5EDT, <+03>-3){}",
                        if name == "timezone" { ", or hours from UTC (-5)" } else { "" }
                    ),
                }),
            ))
        }
        Some(Reading::Zone(Database::System)) => {
            let debian = build.map(|b| b.iter().any(|f| f == "debian"));
            let what = format!(
                "`{name} = '{v}'` names a zone only builds that read the host's time zone database have \
                 (Debian, Ubuntu, PGDG packages: --with-system-tzdata)"
            );
            match debian {
                Some(true) => None,
                Some(false) => Some(Finding::error(
                    Scope::Postgres,
                    Some(at),
                    format!("{what}, and this server's build ships its own: it would not start"),
                    Some("use the name without its directory (Europe/Paris for posix/Europe/Paris)".into()),
                )),
                None => Some(Finding::warning(
                    Scope::Postgres,
                    Some(at),
                    what,
                    Some("other builds refuse it and do not start: prefer the plain name (Europe/Paris)".into()),
                )),
            }
        }
        Some(_) => None,
    }
}

/// A parameter added in a minor release: judged only when the exact
/// release is known (a facts file, a live server).
fn since_minor(
    p: &PgParam,
    name: &str,
    at: &Location,
    release: Option<&str>,
    version: PgVersion,
) -> Option<Finding> {
    let (Some((without, with)), Some(rel)) = (&p.since_minor, release) else {
        return None;
    };
    let minor = |v: &str| {
        v.split('.')
            .nth(1)
            .and_then(|m| m.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|m| m.parse::<u32>().ok())
    };
    match (minor(rel), minor(without), minor(with)) {
        (Some(r), Some(lo), _) if r <= lo => Some(Finding::error(
            Scope::Postgres,
            Some(at),
            format!("`{name}` does not exist in PostgreSQL {rel}: {without} lacks it, {with} has it"),
            Some("remove it, or update the server to a newer minor release".into()),
        )),
        (Some(r), _, Some(hi)) if r < hi => Some(Finding::warning(
            Scope::Postgres,
            Some(at),
            format!("`{name}` was added in a minor release of PostgreSQL {version} between {without} and {with}; the server is {rel}"),
            Some("check that it has it (SHOW it in psql); older minors refuse it".into()),
        )),
        _ => None,
    }
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

/// Redis directives against the catalog of the target release: names
/// (any case, old names too), and values by the type Redis declares.
pub fn redis(s: &ServiceSettings, version: &str) -> Vec<Finding> {
    let cat = RedisCatalog::get(version);
    let v_name = format!("Redis {}", cat.version);
    let mut suggestions = Suggestions::new();
    let mut out = syntax_findings(s, Scope::Redis);
    for (name, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        let Some(key) = cat.key(name) else {
            let added = cat.added_in(name);
            out.push(Finding::error(
                Scope::Redis,
                Some(&e.at),
                match added {
                    Some(v) => format!("`{name}` does not exist in {v_name}: it was added in {v}"),
                    None => format!("unknown directive `{name}` for {v_name}"),
                },
                Some(match added {
                    Some(v) => format!("check against --redis-version {v}, or remove it"),
                    None => match cat.suggest(name, &mut suggestions) {
                        Suggestion::Found(sug) => format!("did you mean `{sug}`?"),
                        other => format!("not a {v_name} directive{}", skipped(&other)),
                    },
                }),
            ));
            continue;
        };
        if key.typ == RedisType::Deprecated {
            out.push(Finding::warning(
                Scope::Redis,
                Some(&e.at),
                format!("`{name}` is deprecated: {v_name} reads and ignores it"),
                Some("remove the line".into()),
            ));
            continue;
        }
        for e in entries {
            out.extend(redis_value(key, name, &e.value, &e.at, &v_name));
        }
    }
    duplicates(s, Scope::Redis, REDIS_REPEATABLE, &mut out);
    out
}

/// What Redis says of one directive's argument (read exactly: no
/// trimming): not a yes/no, not a listed value, not a size or integer, or
/// out of its range.
fn redis_value(
    key: &RedisKey,
    name: &str,
    v: &str,
    at: &Location,
    v_name: &str,
) -> Option<Finding> {
    let bad = |what: String, hint: String| Finding::error(Scope::Redis, Some(at), what, Some(hint));
    match &key.typ {
        RedisType::Bool if !(v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("no")) => {
            return Some(bad(
                format!("`{name} {v}`: {v_name} wants yes or no"),
                "write yes or no".into(),
            ))
        }
        RedisType::Enum(values) if !values.iter().any(|x| x.eq_ignore_ascii_case(v)) => {
            return Some(bad(
                if name == "maxmemory-policy" {
                    format!("`{v}` is not an eviction policy")
                } else {
                    format!("`{v}` is not a valid value for `{name}`")
                },
                format!("valid values: {}", values.join(", ")),
            ))
        }
        RedisType::EnumMulti(values)
            if v.split_whitespace()
                .any(|w| !values.iter().any(|x| x.eq_ignore_ascii_case(w))) =>
        {
            return Some(bad(
                format!("`{v}` is not a valid value for `{name}`"),
                format!("valid values: {}", values.join(", ")),
            ))
        }
        RedisType::Memory { percent } => {
            // N% is stored as -N: the lower bound limits the percentage.
            let pct = percent
                .then(|| v.strip_suffix('%').and_then(redis_int))
                .flatten()
                .map(|n| -n);
            let value = pct.or_else(|| parse_redis_memory(v).map(|b| b.bytes() as i128));
            match value {
                None => return Some(bad(
                    format!("`{name} {v}`: not a size"),
                    format!(
                        "Redis sizes: 1k = 1000, 1kb = 1024, m/mb, g/gb, any case; a bare number is bytes{}",
                        if *percent { "; or N% of maxmemory" } else { "" }
                    ),
                )),
                Some(n) => return redis_range(name, v, n, key.bounds, at),
            }
        }
        RedisType::Integer => {
            match redis_int(v) {
                None => return Some(bad(
                    format!("`{name}` needs a whole number, not `{v}`"),
                    "Redis reads digits with an optional minus sign: no +, no leading 0, no spaces"
                        .into(),
                )),
                Some(n) => return redis_range(name, v, n, key.bounds, at),
            }
        }
        _ => {}
    }
    None
}

/// Redis's string2ll: an optional minus, then 1-9 and digits, or a lone
/// 0; nothing else (no +, no leading zeros, no spaces).
fn redis_int(v: &str) -> Option<i128> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let ok = v == "0"
        || (digits.starts_with(|c: char| ('1'..='9').contains(&c))
            && digits.chars().all(|c| c.is_ascii_digit()));
    let n: i128 = v.parse().ok().filter(|_| ok)?;
    (i64::MIN as i128..=i64::MAX as i128)
        .contains(&n)
        .then_some(n)
}

/// A number outside the range Redis declares for a config.
fn redis_range(
    name: &str,
    v: &str,
    n: i128,
    bounds: Option<(i128, i128)>,
    at: &Location,
) -> Option<Finding> {
    let (lo, hi) = bounds?;
    (n < lo || n > hi).then(|| {
        Finding::error(
            Scope::Redis,
            Some(at),
            format!("`{name} {v}` is out of range: Redis refuses it"),
            Some(format!("{lo} to {hi}")),
        )
    })
}

/// libusual's strtol(value, &end, 0) over the whole value.
fn c_int(v: &str) -> bool {
    let (n, end) = crate::read::pgvalue::c_strtol(v.as_bytes());
    n.is_some() && end == v.len() && end > 0
}

/// PgBouncer settings against the catalog of the target release, as
/// PgBouncer reads them: sections and names exactly as written, numbers by
/// strtol/strtoul with base 0 over the whole value, times as decimal
/// seconds (no unit), lookups in any case.
pub fn pgbouncer(s: &ServiceSettings, version: &str) -> Vec<Finding> {
    let cat = BouncerCatalog::get(version);
    let mut out = syntax_findings(s, Scope::Pgbouncer);
    // A section header alone is enough for PgBouncer to refuse it; each
    // unknown section is said once, at its first header or setting.
    let mut bad_sections: Vec<&str> = Vec::new();
    let sections = s
        .sections
        .iter()
        .map(|(section, at)| (section.as_str(), at));
    let setting_sections = s.entries.iter().filter_map(|(key, entries)| {
        let e = entries.last().expect("entries are never empty");
        key.split_once('.').map(|(section, _)| (section, &e.at))
    });
    for (section, at) in sections.chain(setting_sections) {
        if !cat.sections.iter().any(|x| x == section) && !bad_sections.contains(&section) {
            bad_sections.push(section);
            out.push(bouncer_unknown_section(cat, section, at));
        }
    }
    let mut suggestions = Suggestions::new();
    for (key, entries) in &s.entries {
        let e = entries.last().expect("entries are never empty");
        match key.split_once('.') {
            Some(("pgbouncer", name)) => {
                out.extend(bouncer_setting(cat, name, &e.value, &e.at, &mut suggestions))
            }
            _ => continue,
        }
    }
    duplicates(s, Scope::Pgbouncer, &[], &mut out);
    out
}

fn bouncer_unknown_section(cat: &BouncerCatalog, section: &str, at: &Location) -> Finding {
    Finding::error(
        Scope::Pgbouncer,
        Some(at),
        format!(
            "unknown section [{section}]: PgBouncer {} refuses to start",
            cat.version
        ),
        Some(format!(
            "sections are {} (exactly so: names are case-sensitive)",
            cat.sections
                .iter()
                .map(|x| format!("[{x}]"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    )
}

/// What PgBouncer would say of one [pgbouncer] setting: unknown, a
/// comment read as part of the value, a value it refuses, or weak auth.
fn bouncer_setting(
    cat: &BouncerCatalog,
    name: &str,
    v: &str,
    at: &Location,
    suggestions: &mut Suggestions,
) -> Option<Finding> {
    let v_name = format!("PgBouncer {}", cat.version);
    let bad = |what: String, hint: String| {
        Some(Finding::error(Scope::Pgbouncer, Some(at), what, Some(hint)))
    };
    let Some(k) = cat.key(name) else {
        let added = cat.added_in(name);
        return bad(
            match added {
                Some(v) => format!("`{name}` does not exist in {v_name}: it was added in {v}"),
                None => format!("unknown setting `{name}`: {v_name} refuses to start"),
            },
            match added {
                Some(v) => format!("check against --pgbouncer-version {v}, or remove it"),
                None => match cat.suggest(name, suggestions) {
                    Suggestion::Found(sug) => format!("did you mean `{sug}`? names are case-sensitive"),
                    other => format!("not a {v_name} setting{}", skipped(&other)),
                },
            },
        );
    };
    if let Some(pos) = v
        .find(" #")
        .or_else(|| v.find(" ;"))
        .or_else(|| v.find("\t#"))
    {
        return bad(
            format!("`{name}` has a comment after its value: PgBouncer reads `{v}` as the value"),
            format!(
                "move the comment to its own line; the value is `{}`",
                v[..pos].trim()
            ),
        );
    }
    match &k.typ {
        BouncerType::Int | BouncerType::Uint if !c_int(v) => {
            return bad(
                format!("`{name}` needs a whole number, not `{v}`: {v_name} refuses to start"),
                "digits only (0x for hex, a leading 0 for octal)".into(),
            )
        }
        BouncerType::Time => {
            let (x, end) = crate::read::pgvalue::c_strtod(v.as_bytes());
            if !(end == v.len() && end > 0 && x.is_some_and(|x| x >= 0.0)) {
                return bad(
                    format!(
                        "`{name}` needs seconds as a number, not `{v}`: {v_name} refuses to start"
                    ),
                    "write seconds without a unit: 600, or 0.5".into(),
                );
            }
        }
        BouncerType::Lookup(values) if !values.iter().any(|x| x.eq_ignore_ascii_case(v)) => {
            return bad(
                if name == "pool_mode" {
                    format!("`{v}` is not a pool mode: {v_name} refuses to start")
                } else {
                    format!("`{v}` is not a valid value for `{name}`: {v_name} refuses to start")
                },
                format!("valid values: {}", values.join(", ")),
            )
        }
        _ => {}
    }
    let weak = ["md5", "plain", "trust", "any"];
    (name == "auth_type" && weak.iter().any(|w| w.eq_ignore_ascii_case(v))).then(|| {
        Finding::warning(
            Scope::Pgbouncer,
            Some(at),
            format!("auth_type = {v} is weak"),
            Some("use scram-sha-256".into()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::grammar;

    fn pg(text: &str, v: u32) -> Vec<Finding> {
        postgres(
            &grammar::postgresql_conf(text, "pg.conf").unwrap(),
            crate::version::PgVersion::of(v),
            None,
            None,
        )
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
        let s = grammar::redis_conf(
            "maxmemory 1gb\nmaxmemroy 2gb\nmaxmemory-policy lru\nsave 900 1\nsave 60 100\nhash-max-ziplist-entries 512\nrepl-backlog-size 1x\n",
            "r.conf",
        )
        .unwrap();
        let f = redis(&s, "7.0");
        let all = format!("{f:?}");
        assert!(all.contains("did you mean `maxmemory`"), "{all}");
        assert!(all.contains("not an eviction policy"), "{all}");
        assert!(all.contains("repl-backlog-size 1x"), "{all}");
        assert_eq!(f.len(), 3, "{all}");
    }

    #[test]
    fn redis_directives_follow_the_release() {
        let s = grammar::redis_conf(
            "locale-collate \"\"\nset-max-listpack-entries 128\nappendonly maybe\n",
            "r.conf",
        )
        .unwrap();
        let f = format!("{:?}", redis(&s, "7.0"));
        assert!(
            f.contains("`locale-collate` does not exist in Redis 7.0: it was added in 7.2"),
            "{f}"
        );
        assert!(f.contains("yes or no"), "{f}");
        let f = redis(&s, "7.2");
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn pgbouncer_keys() {
        let s = grammar::pgbouncer_ini(
            "[pgbouncer]\nmax_client_con = 10\npool_mode = sessions\nauth_type = md5\n[bogus]\nx = 1\n",
            "b.ini",
        )
        .unwrap();
        let f = pgbouncer(&s, "1.18");
        let all = format!("{f:?}");
        assert!(all.contains("did you mean `max_client_conn`"), "{all}");
        assert!(all.contains("not a pool mode"), "{all}");
        assert!(all.contains("auth_type = md5 is weak"), "{all}");
        assert!(all.contains("unknown section [bogus]"), "{all}");
    }

    /// As PgBouncer 1.18 reads them (tests/services_oracle.rs starts it).
    #[test]
    fn pgbouncer_reads_names_exactly_and_times_without_units() {
        let s = grammar::pgbouncer_ini(
            "[pgbouncer]\nMAX_CLIENT_CONN = 10\nauth_type = foo\nserver_idle_timeout = 10s\npool_mode = SESSION\nmax_prepared_statements = 100\n",
            "b.ini",
        )
        .unwrap();
        let f = format!("{:?}", pgbouncer(&s, "1.18"));
        assert!(f.contains("unknown setting `MAX_CLIENT_CONN`"), "{f}");
        assert!(
            f.contains("`foo` is not a valid value for `auth_type`"),
            "{f}"
        );
        assert!(f.contains("needs seconds as a number, not `10s`"), "{f}");
        assert!(!f.contains("SESSION"), "{f}");
        assert!(f.contains("added in 1.21"), "{f}");
        assert!(!format!("{:?}", pgbouncer(&s, "1.24")).contains("added in"));
    }
}
