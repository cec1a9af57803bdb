//! Findings about settings: unknown names (with a "did you mean"), bad
//! units and types, values out of range, parameters the target PostgreSQL
//! version lacks, settings made twice. Every finding points at file:line.

use crate::service::Scope;
use std::fmt;

use serde::Serialize;

use crate::read::catalog::{
    self, BouncerCatalog, BouncerType, Lookup, PgCatalog, PgParam, RedisCatalog, RedisKey,
    RedisType, Suggestion, Suggestions,
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
    /// A memory rule broken whatever the total (`limits`): apply refuses a
    /// change that breaks one, as it refuses a set that does not fit.
    #[serde(skip)]
    pub memory_limit: bool,
    /// A key the target release lacks that other releases have (listed):
    /// an error only when the release was stated (report::judge).
    #[serde(skip)]
    pub other_releases: Option<Vec<String>>,
}

impl Finding {
    /// The same finding, marked as a memory rule.
    pub fn memory_limit(self) -> Finding {
        Finding {
            memory_limit: true,
            ..self
        }
    }

    /// The same finding, marked as a key that exists only in `releases`.
    pub fn only_in(self, releases: Vec<String>) -> Finding {
        Finding {
            other_releases: Some(releases),
            ..self
        }
    }

    pub fn error(
        service: Scope,
        at: Option<&Location>,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Finding {
            severity: Severity::Error,
            safety: false,
            memory_limit: false,
            other_releases: None,
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
                    "`{}` is set again at {}; this value ({}) is ignored",
                    crate::secret::name(name),
                    last.at,
                    crate::secret::show(service, name, &e.value)
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
            Lookup::NotYet(v) => out.push(
                Finding::error(
                    Scope::Postgres,
                    Some(&e.at),
                    format!("`{name}` does not exist in PostgreSQL {version}: it was added in {v}"),
                    Some(format!("remove it, or check against --pg-version {v}")),
                )
                .only_in(catalog::pg_majors_with(name)),
            ),
            Lookup::Removed(v, renamed) => out.push(
                Finding::error(
                    Scope::Postgres,
                    Some(&e.at),
                    format!("`{name}` does not exist in PostgreSQL {version}: {v} was the last version with it"),
                    Some(match renamed {
                        Some(r) => format!("it is called `{r}` now"),
                        None => "remove it".into(),
                    }),
                )
                .only_in(catalog::pg_majors_with(name)),
            ),
            Lookup::Unknown => out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!("unknown parameter `{}`", crate::secret::name(name)),
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
            let f = Finding::error(
                Scope::Redis,
                Some(&e.at),
                match added {
                    Some(v) => format!("`{name}` does not exist in {v_name}: it was added in {v}"),
                    None => format!(
                        "unknown directive `{}` for {v_name}",
                        crate::secret::name(name)
                    ),
                },
                Some(match added {
                    Some(v) => format!("check against --redis-version {v}, or remove it"),
                    None => match cat.suggest(name, &mut suggestions) {
                        Suggestion::Found(sug) => format!("did you mean `{sug}`?"),
                        other => format!("not a {v_name} directive{}", skipped(&other)),
                    },
                }),
            );
            out.push(match added {
                Some(_) => f.only_in(
                    catalog::redis_releases_with(name)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                ),
                None => f,
            });
            continue;
        };
        if key.typ == RedisType::Deprecated {
            // Redis skips a deprecated name with exactly one argument; with
            // any other count it is a bad directive.
            match entries
                .iter()
                .find(|e| e.args.as_ref().is_some_and(|a| a.len() != 1))
            {
                Some(bad) => out.push(Finding::error(
                    Scope::Redis,
                    Some(&bad.at),
                    format!("`{name}` with {}: {v_name} refuses to start (a deprecated directive it skips only with one argument)", arguments(bad)),
                    Some("remove the line".into()),
                )),
                None => out.push(Finding::warning(
                    Scope::Redis,
                    Some(&e.at),
                    format!("`{name}` is deprecated: {v_name} reads and ignores it"),
                    Some("remove the line".into()),
                )),
            }
            continue;
        }
        // Redis sets every line in turn, and the first it refuses stops it.
        for e in entries {
            out.extend(redis_entry(key, name, e, &v_name));
        }
    }
    duplicates(s, Scope::Redis, REDIS_REPEATABLE, &mut out);
    out
}

/// "2 arguments", "no argument": how many a line gave.
fn arguments(e: &Entry) -> String {
    match e.args.as_ref().map_or(1, Vec::len) {
        0 => "no argument".into(),
        1 => "1 argument".into(),
        n => format!("{n} arguments"),
    }
}

/// One line as loadServerConfigFromString reads it: a config that takes
/// one argument gets exactly one; a multi-argument config (save, bind...)
/// given one non-empty argument splits it at spaces (so `save "900 1"` is
/// `save 900 1`); then the value by its type and by the config's own check.
fn redis_entry(key: &RedisKey, name: &str, e: &Entry, v_name: &str) -> Option<Finding> {
    let given: Vec<String> = e.args.clone().unwrap_or_else(|| vec![e.value.clone()]);
    if key.typ == RedisType::Directive {
        return redis_directive(name, &given, &e.at, v_name);
    }
    if !key.multi_arg {
        if given.len() != 1 {
            return Some(Finding::error(
                Scope::Redis,
                Some(&e.at),
                format!(
                    "`{name}` takes one argument and this line gives {}: {v_name} refuses to start",
                    arguments(e)
                ),
                Some(format!(
                    "quote a value that has spaces: {name} \"{}\"",
                    e.value
                )),
            ));
        }
        return redis_value(key, name, &given[0], &e.at, v_name)
            .or_else(|| redis_check(key, name, &given, &e.at, v_name));
    }
    let args = match given.as_slice() {
        [one] if !one.is_empty() => crate::read::grammar::redis_args(one).unwrap_or_default(),
        _ => given,
    };
    if let RedisType::EnumMulti(values) = &key.typ {
        let bad = args
            .iter()
            .find(|w| !values.iter().any(|x| x.eq_ignore_ascii_case(w)));
        if args.is_empty() || bad.is_some() {
            return Some(Finding::error(
                Scope::Redis,
                Some(&e.at),
                match bad {
                    Some(w) => format!(
                        "`{w}` is not a valid value for `{name}`: {v_name} refuses to start"
                    ),
                    None => format!("`{name}` needs at least one value: {v_name} refuses to start"),
                },
                Some(format!("valid values, one or more: {}", values.join(", "))),
            ));
        }
    }
    redis_check(key, name, &args, &e.at, v_name)
}

/// Directives the file parser handles itself, by their argument counts.
fn redis_directive(name: &str, args: &[String], at: &Location, v_name: &str) -> Option<Finding> {
    let ok = match name {
        "rename-command" => args.len() == 2,
        "user" | "loadmodule" => !args.is_empty(),
        _ => true,
    };
    (!ok).then(|| {
        Finding::error(
            Scope::Redis,
            Some(at),
            format!(
                "`{name}` with {} argument(s): {v_name} refuses to start (\"Bad directive or wrong number of arguments\")",
                args.len()
            ),
            Some(match name {
                "rename-command" => "write rename-command COMMAND NEW-NAME (\"\" to disable it)".into(),
                _ => format!("give {name} its arguments"),
            }),
        )
    })
}

/// The checks config.c names in data/redis-*.tsv (a special config's
/// setter, another's is_valid function), each implemented below; a test
/// keeps this list and the catalogs in step.
pub const REDIS_CHECKS: &[&str] = &[
    "setConfigSaveOption",
    "setConfigClientOutputBufferLimitOption",
    "setConfigOOMScoreAdjValuesOption",
    "setConfigNotifyKeyspaceEventsOption",
    "setConfigBindOption",
    "setConfigReplicaOfOption",
    "setConfigLatencyTrackingInfoPercentilesOutputOption",
    "setConfigDirOption",
    "isValidActiveDefrag",
    "isValidAnnouncedHostname",
    "isValidAnnouncedNodename",
    "isValidDBfilename",
    "isValidAOFfilename",
    "isValidAOFdirname",
    "isValidProcTitleTemplate",
    "isValidShutdownOnSigFlags",
];

/// strtoll(s, &end, 10) that must end at the end of `s`: spaces, a sign,
/// digits (saturating at the 64-bit limits); the empty string is 0.
fn strtoll_whole(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let neg = matches!(b.get(i), Some(b'-'));
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let start = i;
    let mut v: i128 = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        v = (v * 10 + i128::from(d - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    if i == start {
        // No digits: strtoll's end is the start of the string.
        return s.is_empty().then_some(0);
    }
    if i != b.len() {
        return None;
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// What a config's own check in config.c says of its arguments.
fn redis_check(
    key: &RedisKey,
    name: &str,
    args: &[String],
    at: &Location,
    v_name: &str,
) -> Option<Finding> {
    let refuse = |why: String, hint: &str| {
        Some(Finding::error(
            Scope::Redis,
            Some(at),
            format!(
                "`{name} {}`: {why}: {v_name} refuses to start",
                args.join(" ")
            ),
            Some(hint.to_string()),
        ))
    };
    let one = args.first().map(String::as_str).unwrap_or("");
    match key.check.as_deref()? {
        "setConfigSaveOption" => {
            // A single "" means no snapshots.
            let pairs: &[String] = if args.len() == 1 && args[0].is_empty() {
                &[]
            } else {
                args
            };
            let ok = pairs.len().is_multiple_of(2)
                && pairs.iter().enumerate().all(|(i, a)| {
                    strtoll_whole(a).is_some_and(|n| if i % 2 == 0 { n >= 1 } else { n >= 0 })
                });
            if !ok {
                return refuse(
                    "save takes pairs of seconds (at least 1) and changes (at least 0)".into(),
                    "write save 900 1 (several pairs: save 900 1 300 10), or save \"\" for no snapshots",
                );
            }
        }
        "setConfigClientOutputBufferLimitOption" => {
            let class_ok = |c: &str| {
                ["normal", "slave", "replica", "pubsub"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(c))
            };
            let ok = args.len().is_multiple_of(4)
                && args.chunks(4).all(|g| {
                    class_ok(&g[0])
                        && parse_redis_memory(&g[1]).is_some()
                        && parse_redis_memory(&g[2]).is_some()
                        // Read into an int: a value past 2^31 wraps.
                        && strtoll_whole(&g[3]).is_some_and(|n| n as i32 >= 0)
                });
            if !ok {
                return refuse(
                    "each limit is a class (normal, replica, pubsub), a hard and a soft size and seconds".into(),
                    "write client-output-buffer-limit normal 0 0 0 (four values per class)",
                );
            }
        }
        "setConfigOOMScoreAdjValuesOption" => {
            let ok = args.len() == 3
                && args
                    .iter()
                    .all(|a| strtoll_whole(a).is_some_and(|n| (-2000..=2000).contains(&n)));
            if !ok {
                return refuse(
                    "it takes three scores from -2000 to 2000 (master, replica, background child)"
                        .into(),
                    "write oom-score-adj-values 0 200 800",
                );
            }
        }
        "setConfigNotifyKeyspaceEventsOption" => {
            if let Some(c) = one.chars().find(|c| !"Ag$lshzxeKEtmdn".contains(*c)) {
                return refuse(
                    format!("`{c}` is not an event class"),
                    "classes are the letters of Ag$lshzxeKEtmdn (K or E, and what to notify of: KEA for everything); \"\" for none",
                );
            }
        }
        "setConfigBindOption" if args.len() > 16 => {
            return refuse(
                format!("{} addresses, more than Redis's 16", args.len()),
                "bind at most 16 addresses",
            );
        }
        "setConfigReplicaOfOption" => {
            let no_one = args.len() == 2
                && args[0].eq_ignore_ascii_case("no")
                && args[1].eq_ignore_ascii_case("one");
            let ok = no_one
                || (args.len() == 2
                    && strtoll_whole(&args[1]).is_some_and(|p| (0..=65535).contains(&p)));
            if !ok {
                return refuse(
                    "it takes a host and a port (0-65535), or `no one`".into(),
                    "write replicaof 10.0.0.5 6379, or remove the line",
                );
            }
        }
        "setConfigLatencyTrackingInfoPercentilesOutputOption" => {
            let list: &[String] = if args.len() == 1 && args[0].is_empty() {
                &[]
            } else {
                args
            };
            let pct = |a: &str| {
                let (x, end) = crate::read::pgvalue::c_strtod(a.as_bytes());
                let leading_space = a.starts_with(|c: char| c.is_ascii_whitespace() || c == '\x0b');
                x.filter(|x| !a.is_empty() && !leading_space && end == a.len() && !x.is_nan())
            };
            if let Some(bad) = list
                .iter()
                .find(|a| pct(a).is_none_or(|x| !(0.0..=100.0).contains(&x)))
            {
                return refuse(
                    format!("`{bad}` is not a percentile from 0 to 100"),
                    "write numbers from 0 to 100: latency-tracking-info-percentiles 50 99 99.9",
                );
            }
        }
        // chdir() on the host that runs Redis: not something a file says.
        "setConfigDirOption" => {}
        "isValidActiveDefrag" if one.eq_ignore_ascii_case("yes") => {
            return Some(Finding::warning(
                Scope::Redis,
                Some(at),
                "activedefrag yes needs a Redis built with its own jemalloc: Debian's and Ubuntu's \
                 redis-server 7 refuse to start with it"
                    .into(),
                Some("keep it only for a Redis built from source or redis.io's packages".into()),
            ));
        }
        "isValidAnnouncedHostname"
            if one.len() >= 256
                || !one
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
        {
            return refuse(
                "a host name is letters, digits, - and ., under 256 characters".into(),
                "write the host name other nodes reach this one at",
            );
        }
        "isValidAnnouncedNodename" => {
            if let Some(c) = one.chars().find(|c| "!#$%&()*+:;<>?@[]^{|}~".contains(*c)) {
                return refuse(
                    format!("`{c}` may not appear in a node name"),
                    "use letters, digits, - _ . and spaces",
                );
            }
        }
        "isValidDBfilename" | "isValidAOFfilename" | "isValidAOFdirname" => {
            let must_have = key.check.as_deref() != Some("isValidDBfilename");
            if one.contains(['/', '\\']) || (must_have && one.is_empty()) {
                return refuse(
                    "it is a file name in `dir`, not a path, and not empty".into(),
                    "write just the name, and set the directory with `dir`",
                );
            }
        }
        "isValidProcTitleTemplate" => {
            if let Err(why) = proc_title(one) {
                return refuse(
                    why,
                    "variables are {title} {listen-addr} {server-mode} {port} {tls-port} {unixsocket} {config-file}, {{ is a brace; the default is \"{title} {listen-addr} {server-mode}\"",
                );
            }
        }
        "isValidShutdownOnSigFlags" => {
            let has = |w: &str| args.iter().any(|a| a.eq_ignore_ascii_case(w));
            if has("save") && has("nosave") {
                return refuse(
                    "save and nosave cannot both be given".into(),
                    "keep one of them",
                );
            }
        }
        _ => {}
    }
    None
}

/// validateProcTitleTemplate: sdstemplate with Redis's variables, then
/// the result with spaces trimmed must not be empty. At load time the
/// title, and (outside cluster mode, without unixsocket) server-mode and
/// unixsocket, expand to nothing.
fn proc_title(template: &str) -> Result<(), String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return Err("it ends inside a variable".into());
        }
        if let Some(r) = after.strip_prefix('{') {
            out.push('{');
            rest = r;
            continue;
        }
        let Some(close) = after.find('}') else {
            return Err("a variable is not closed with }".into());
        };
        match &after[..close] {
            "title" | "server-mode" | "unixsocket" => {}
            "listen-addr" | "config-file" | "port" | "tls-port" => out.push('x'),
            other => return Err(format!("`{{{other}}}` is not a variable Redis knows")),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.trim_matches(' ').is_empty() {
        return Err("it gives an empty title".into());
    }
    Ok(())
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
            Some(("pgbouncer", name)) => out.extend(bouncer_setting(
                cat,
                name,
                &e.value,
                &e.at,
                &mut suggestions,
            )),
            _ => continue,
        }
    }
    out.extend(crate::read::bouncer_options::findings(s, version));
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
        let only_in = |f: Finding| match added {
            Some(_) => f.only_in(
                catalog::pgbouncer_releases_with(name)
                    .into_iter()
                    .map(String::from)
                    .collect(),
            ),
            None => f,
        };
        return bad(
            match added {
                Some(v) => format!("`{name}` does not exist in {v_name}: it was added in {v}"),
                None => format!(
                    "unknown setting `{}`: {v_name} refuses to start",
                    crate::secret::name(name)
                ),
            },
            match added {
                Some(v) => format!("check against --pgbouncer-version {v}, or remove it"),
                None => match cat.suggest(name, suggestions) {
                    Suggestion::Found(sug) => {
                        format!("did you mean `{sug}`? names are case-sensitive")
                    }
                    other => format!("not a {v_name} setting{}", skipped(&other)),
                },
            },
        )
        .map(only_in);
    };
    // The ini reader takes a value as it comes: one that starts with `;`
    // or `#` is not a comment but the value itself.
    if v.starts_with([';', '#']) {
        let show = |v: &str| crate::secret::show(Scope::Pgbouncer, &format!("pgbouncer.{name}"), v);
        return bad(
            format!(
                "`{name}` starts with `{}`: PgBouncer reads `{}` as the value, not as a comment",
                &v[..1],
                show(v)
            ),
            format!(
                "leave it empty (`{name} =`) or remove the line; a comment goes on its own line"
            ),
        );
    }
    if let Some(pos) = v
        .find(" #")
        .or_else(|| v.find(" ;"))
        .or_else(|| v.find("\t#"))
    {
        let show = |v: &str| crate::secret::show(Scope::Pgbouncer, &format!("pgbouncer.{name}"), v);
        return bad(
            format!(
                "`{name}` has a comment after its value: PgBouncer reads `{}` as the value",
                show(v)
            ),
            format!(
                "move the comment to its own line; the value is `{}`",
                show(v[..pos].trim())
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
        // file holding the line; tests/it/pg_oracle.rs asks every version).
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

    /// The values issue #19 found Redis 7.0.15 refusing at start and dbtune
    /// passing, and their good forms (tests/it/services_oracle.rs starts 7.0
    /// and 8.0 with each).
    #[test]
    fn redis_special_values_are_judged_by_their_own_checks() {
        let errors = |line: &str| {
            let s = grammar::redis_conf(line, "r.conf").unwrap();
            redis(&s, "7.0")
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| f.message)
                .collect::<Vec<_>>()
        };
        for bad in [
            "save \"900\"",
            "save 900",
            "save 0 1",
            "notify-keyspace-events \"Zq\"",
            "oom-score-adj-values \"1 2\"",
            "oom-score-adj-values 0 200 2001",
            "latency-tracking-info-percentiles \"abc\"",
            "latency-tracking-info-percentiles 50 101",
            "proc-title-template \"{bogus}\"",
            "proc-title-template \"{title}\"",
            "client-output-buffer-limit master 0 0 0",
            "replicaof localhost 70000",
            "shutdown-on-sigint save nosave",
            "shutdown-on-sigint \"\"",
            "dbfilename /tmp/dump.rdb",
            "maxmemory",
            "logfile a b",
            "rename-command FLUSHALL",
        ] {
            assert_eq!(errors(bad).len(), 1, "{bad}: {:?}", errors(bad));
        }
        for good in [
            "save \"900 1\"",
            "save 900 1 300 10",
            "save \"\"",
            "notify-keyspace-events \"KEA\"",
            "notify-keyspace-events \"\"",
            "oom-score-adj-values \"0 200 800\"",
            "latency-tracking-info-percentiles \"50 99 99.9\"",
            "latency-tracking-info-percentiles \"\"",
            "proc-title-template \"{title} {listen-addr} {server-mode}\"",
            "client-output-buffer-limit replica 256mb 64mb 60 pubsub 32mb 8mb 60",
            "replicaof no one",
            "shutdown-on-sigint nosave now",
            "logfile \"a b\"",
            "rename-command FLUSHALL \"\"",
        ] {
            assert_eq!(errors(good), Vec::<String>::new(), "{good}");
        }
    }

    /// Every check a Redis catalog names is one `redis_check` implements.
    #[test]
    fn every_check_the_redis_catalogs_name_is_implemented() {
        for v in crate::read::catalog::REDIS_VERSIONS {
            for k in RedisCatalog::get(v).keys() {
                if let Some(c) = &k.check {
                    assert!(
                        REDIS_CHECKS.contains(&c.as_str()),
                        "Redis {v}: {} is judged by {c}",
                        k.name
                    );
                }
            }
        }
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

    /// As PgBouncer 1.18 reads them (tests/it/services_oracle.rs starts it).
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
