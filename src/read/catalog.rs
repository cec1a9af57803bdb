//! What each server accepts: PostgreSQL's parameter catalog per major
//! version, Redis's and PgBouncer's key lists. Kept as data generated from
//! the real servers (scripts/gen-pg-catalog.sh, scripts/gen-key-lists.sh):
//! one catalog per PostgreSQL major, with the release it came from; the
//! parameters a later minor release added (scripts/gen-pg-minor-additions.sh);
//! and the values that depend on how a server was built (data/pg-build.toml).

use crate::version::PgVersion;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

const PG_CATALOGS: [(u32, &str); 6] = [
    (13, include_str!("../../data/pg-catalog-13.tsv")),
    (14, include_str!("../../data/pg-catalog-14.tsv")),
    (15, include_str!("../../data/pg-catalog-15.tsv")),
    (16, include_str!("../../data/pg-catalog-16.tsv")),
    (17, include_str!("../../data/pg-catalog-17.tsv")),
    (18, include_str!("../../data/pg-catalog-18.tsv")),
];
const PG_MINOR_ADDITIONS: &str = include_str!("../../data/pg-minor-additions.tsv");
const PG_BUILD: &str = include_str!("../../data/pg-build.toml");
/// Redis configs per release, from src/config.c (scripts/gen-redis-keys.py).
const REDIS: [(&str, &str); 4] = [
    ("7.0", include_str!("../../data/redis-7.0.tsv")),
    ("7.2", include_str!("../../data/redis-7.2.tsv")),
    ("7.4", include_str!("../../data/redis-7.4.tsv")),
    ("8.0", include_str!("../../data/redis-8.0.tsv")),
];
/// PgBouncer settings per release, from src/main.c (scripts/gen-pgbouncer-keys.py).
const PGBOUNCER: [(&str, &str); 7] = [
    ("1.18", include_str!("../../data/pgbouncer-1.18.tsv")),
    ("1.19", include_str!("../../data/pgbouncer-1.19.tsv")),
    ("1.20", include_str!("../../data/pgbouncer-1.20.tsv")),
    ("1.21", include_str!("../../data/pgbouncer-1.21.tsv")),
    ("1.22", include_str!("../../data/pgbouncer-1.22.tsv")),
    ("1.23", include_str!("../../data/pgbouncer-1.23.tsv")),
    ("1.24", include_str!("../../data/pgbouncer-1.24.tsv")),
];

/// Names that changed, for a "did you mean" that knows history; the
/// catalogs say in which version each side exists.
const PG_RENAMES: &[(&str, &str)] = &[
    ("force_parallel_mode", "debug_parallel_query"),
    ("ssl_ecdh_curve", "ssl_groups"),
    ("wal_keep_segments", "wal_keep_size"),
    ("checkpoint_segments", "max_wal_size"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarType {
    Bool,
    Integer,
    Real,
    Enum,
    String,
}

/// A value only some builds accept (lz4 needs a build with lz4).
#[derive(Clone, Debug, PartialEq)]
pub struct BuildValue {
    pub value: String,
    pub feature: String,
}

#[derive(Clone, Debug)]
pub struct PgParam {
    pub name: String,
    pub vartype: VarType,
    /// pg_settings' unit: `8kB`, `kB`, `MB`, `ms`, `s`, `min`...
    pub unit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub enumvals: Vec<String>,
    pub context: String,
    /// The built-in default, as pg_settings.boot_val shows it.
    pub boot_val: Option<String>,
    /// Enum spellings PostgreSQL accepts, with the value it shows for each,
    /// when that differs (`true` is `on`, `on` is `pglz`).
    pub aliases: Vec<(String, String)>,
    /// Enum values some builds add.
    pub build_values: Vec<BuildValue>,
    /// Present only in builds with this feature (`debian`).
    pub build_only: Option<String>,
    /// Added in a minor release: (a release without it, one with it).
    pub since_minor: Option<(String, String)>,
    /// A check hook raises values below this (other than -1) to it,
    /// silently: the server accepts them and runs with the floor.
    pub hook_floor: Option<f64>,
}

fn vartype(s: &str) -> VarType {
    match s {
        "bool" => VarType::Bool,
        "integer" => VarType::Integer,
        "real" => VarType::Real,
        "enum" => VarType::Enum,
        _ => VarType::String,
    }
}

/// What a name means for one PostgreSQL version.
pub enum Lookup<'a> {
    Known(&'a PgParam),
    /// Exists only from a later version.
    NotYet(u32),
    /// Existed up to an earlier version (and may have a new name).
    Removed(u32, Option<&'a str>),
    /// Not a parameter of any version dbtune knows; [`PgCatalog::suggest`]
    /// looks for the one meant.
    Unknown,
}

pub struct PgCatalog {
    pub version: PgVersion,
    /// The release the catalog was generated from, e.g. `18.4`.
    pub release: String,
    params: BTreeMap<String, PgParam>,
}

#[derive(Debug, Deserialize)]
struct BuildData {
    value: Vec<BuildValueRow>,
    param: Vec<BuildParamRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildValueRow {
    param: String,
    value: String,
    feature: String,
    since: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildParamRow {
    name: String,
    feature: String,
    vartype: String,
    context: String,
}

impl PgCatalog {
    /// The catalog of one supported major version, built once.
    pub fn get(version: PgVersion) -> &'static PgCatalog {
        static CATALOGS: [OnceLock<PgCatalog>; PG_CATALOGS.len()] =
            [const { OnceLock::new() }; PG_CATALOGS.len()];
        CATALOGS[version.index()].get_or_init(|| build(version))
    }

    /// Every parameter of the version.
    pub fn params(&self) -> impl Iterator<Item = &PgParam> {
        self.params.values()
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        let lower = name.to_ascii_lowercase();
        if let Some(p) = self.params.get(&lower) {
            return Lookup::Known(p);
        }
        let has = |v: &PgVersion| PgCatalog::get(*v).params.contains_key(&lower);
        if let Some(v) = PgVersion::all().filter(|v| *v > self.version).find(has) {
            return Lookup::NotYet(v.major());
        }
        let renamed = PG_RENAMES
            .iter()
            .find(|(old, _)| *old == lower)
            .map(|(_, new)| *new);
        if let Some(v) = PgVersion::all()
            .filter(|v| *v < self.version)
            .rev()
            .find(has)
        {
            return Lookup::Removed(v.major(), renamed);
        }
        if let Some(new) = renamed {
            // Gone before the oldest version dbtune knows.
            return Lookup::Removed(PgVersion::OLDEST.major() - 1, Some(new));
        }
        Lookup::Unknown
    }

    /// The parameter an unknown name was probably meant to be.
    pub fn suggest(&self, name: &str, budget: &mut Suggestions) -> Suggestion {
        budget.closest(
            &name.to_ascii_lowercase(),
            self.params.keys().map(String::as_str),
        )
    }
}

fn opt(f: &[&str], i: usize) -> Option<String> {
    f.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string())
}

/// The release a data file was generated from, from its first line:
/// "# PostgreSQL 18.4 parameters from ...", "# Redis 7.0.15 ...".
fn release_of(text: &str) -> String {
    text.lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?")
        .to_string()
}

fn build(version: PgVersion) -> PgCatalog {
    let text = PG_CATALOGS
        .iter()
        .find(|(v, _)| version == *v)
        .map(|(_, t)| *t)
        .expect("a catalog for every supported version");
    let release = release_of(text);
    let mut params = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let p = PgParam {
            name: f[0].to_ascii_lowercase(),
            vartype: vartype(f.get(1).copied().unwrap_or("string")),
            unit: opt(&f, 2),
            min: opt(&f, 3).and_then(|s| s.parse().ok()),
            max: opt(&f, 4).and_then(|s| s.parse().ok()),
            enumvals: opt(&f, 5).map_or(Vec::new(), |s| s.split(',').map(str::to_string).collect()),
            context: f.get(6).unwrap_or(&"").to_string(),
            boot_val: f.get(7).map(|s| s.to_string()),
            aliases: opt(&f, 8).map_or(Vec::new(), |s| {
                s.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            build_values: Vec::new(),
            build_only: None,
            since_minor: None,
            hook_floor: None,
        };
        params.insert(p.name.clone(), p);
    }
    for line in PG_MINOR_ADDITIONS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        if f.get(1).and_then(|m| m.parse::<u32>().ok()) == Some(version.major()) {
            if let Some(p) = params.get_mut(f[0]) {
                p.since_minor = Some((
                    f.get(2).unwrap_or(&"?").to_string(),
                    f.get(3).unwrap_or(&"?").to_string(),
                ));
            }
        }
    }
    let b: BuildData = toml::from_str(PG_BUILD).expect("data/pg-build.toml is valid (tested)");
    for v in b.value.into_iter().filter(|v| version >= v.since) {
        if let Some(p) = params.get_mut(&v.param) {
            p.build_values.push(BuildValue {
                value: v.value,
                feature: v.feature,
            });
        }
    }
    for bp in b.param {
        params.entry(bp.name.clone()).or_insert(PgParam {
            name: bp.name,
            vartype: vartype(&bp.vartype),
            unit: None,
            min: None,
            max: None,
            enumvals: Vec::new(),
            context: bp.context,
            boot_val: None,
            aliases: Vec::new(),
            build_values: Vec::new(),
            build_only: Some(bp.feature),
            since_minor: None,
            hook_floor: None,
        });
    }
    // Check hooks that raise small values instead of refusing them
    // (check_wal_buffers, check_autovacuum_work_mem); tests/it/pg_versions.rs
    // asks every server.
    if let Some(p) = params.get_mut("wal_buffers") {
        p.hook_floor = Some(4.0);
    }
    let mwm_min = params.get("maintenance_work_mem").and_then(|p| p.min);
    if let Some(p) = params.get_mut("autovacuum_work_mem") {
        p.hook_floor = mwm_min;
    }
    PgCatalog {
        version,
        release,
        params,
    }
}

/// What a "did you mean" search found for an unknown name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Suggestion {
    Found(String),
    /// Nothing close enough.
    None,
    /// Not searched: the check already searched [`Suggestions::MAX`] names.
    Skipped,
}

impl Suggestion {
    pub fn found(&self) -> Option<&str> {
        match self {
            Suggestion::Found(s) => Some(s),
            _ => None,
        }
    }
}

/// The "did you mean" searches of one check. A search scores the name
/// against every name of a catalog (a few hundred Jaro-Winkler scores, each
/// quadratic in the names' lengths): at hundreds of microseconds a name it
/// made a file of 300 000 unknown names take minutes. A check searches at
/// most [`Suggestions::MAX`] names, so its cost stays linear in the file
/// with a small constant; names past the limit are reported without one.
#[derive(Debug, Default)]
pub struct Suggestions {
    searched: usize,
}

impl Suggestions {
    /// More unknown names than this is not a file with typos in it.
    pub const MAX: usize = 50;

    pub fn new() -> Self {
        Suggestions::default()
    }

    /// The closest of `known` to `name`, if close enough to be a typo.
    pub fn closest<'a>(&mut self, name: &str, known: impl Iterator<Item = &'a str>) -> Suggestion {
        if self.searched >= Self::MAX {
            return Suggestion::Skipped;
        }
        self.searched += 1;
        match did_you_mean(name, known) {
            Some(s) => Suggestion::Found(s),
            None => Suggestion::None,
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Jaro-Winkler scores computed on this thread (tests pin the bound).
    static SCORED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The closest known name, if one is close enough to be a typo.
fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .map(|k| {
            #[cfg(test)]
            SCORED.with(|c| c.set(c.get() + 1));
            (strsim::jaro_winkler(name, k), k)
        })
        .filter(|(score, _)| *score > 0.88)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

/// A `major.minor` release of Redis or PgBouncer, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceVersion {
    pub version: String,
    pub source: String,
    /// Nothing named the release: `version` is the newest dbtune knows.
    #[serde(skip)]
    pub assumed: bool,
    /// A flag, a facts file or a manifest named the release. Otherwise it
    /// is assumed (this machine's server, or the newest), and a key only
    /// other releases have is a warning, not an error.
    pub stated: bool,
}

impl ServiceVersion {
    /// The release when something named it.
    pub fn known(&self) -> Option<&str> {
        (!self.assumed).then_some(self.version.as_str())
    }
}

/// The Redis releases dbtune knows that have directive `name`.
pub fn redis_releases_with(name: &str) -> Vec<&'static str> {
    REDIS_VERSIONS
        .iter()
        .copied()
        .filter(|v| RedisCatalog::get(v).key(name).is_some())
        .collect()
}

/// The PgBouncer releases dbtune knows that have setting `name`.
pub fn pgbouncer_releases_with(name: &str) -> Vec<&'static str> {
    PGBOUNCER_VERSIONS
        .iter()
        .copied()
        .filter(|v| BouncerCatalog::get(v).key(name).is_some())
        .collect()
}

/// The PostgreSQL majors dbtune knows that have parameter `name`.
pub fn pg_majors_with(name: &str) -> Vec<String> {
    crate::version::PgVersion::all()
        .filter(|v| matches!(PgCatalog::get(*v).lookup(name), Lookup::Known(_)))
        .map(|v| v.to_string())
        .collect()
}

/// The newest known release at or below `wanted` ("7.0.15" -> "7.0",
/// "7.3" -> "7.2", "9.1" -> "8.0"); the oldest when `wanted` is older
/// than every one, with a note.
fn pick_version(known: &[&str], wanted: &str) -> (String, Option<String>) {
    if wanted.is_empty() {
        return (known[known.len() - 1].to_string(), None);
    }
    let key = |v: &str| -> (u32, u32) {
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let w = key(wanted);
    match known.iter().rev().find(|k| key(k) <= w) {
        Some(k) if key(k) == w => (k.to_string(), None),
        Some(k) => (
            k.to_string(),
            Some(format!(
                "{wanted} is newer than dbtune knows: checked as {k}"
            )),
        ),
        None => (
            known[0].to_string(),
            Some(format!(
                "{wanted} is older than dbtune knows: checked as {}",
                known[0]
            )),
        ),
    }
}

pub const REDIS_VERSIONS: [&str; 4] = ["7.0", "7.2", "7.4", "8.0"];

/// The current name of an old Redis directive (`slaveof` is `replicaof`),
/// by the newest release's aliases: files are read under current names.
pub fn redis_new_name(name: &str) -> Option<String> {
    RedisCatalog::get(REDIS_VERSIONS[REDIS_VERSIONS.len() - 1])
        .current_name(name)
        .map(str::to_string)
}
pub const PGBOUNCER_VERSIONS: [&str; 7] = ["1.18", "1.19", "1.20", "1.21", "1.22", "1.23", "1.24"];

/// Resolves a Redis version given as any `x.y[.z]` to a known one.
pub fn redis_version(wanted: &str) -> (String, Option<String>) {
    pick_version(&REDIS_VERSIONS, wanted)
}

/// Resolves a PgBouncer version given as any `x.y[.z]` to a known one.
pub fn pgbouncer_version(wanted: &str) -> (String, Option<String>) {
    pick_version(&PGBOUNCER_VERSIONS, wanted)
}

/// What one Redis config takes, as Redis declares it.
#[derive(Clone, Debug, PartialEq)]
pub enum RedisType {
    Bool,
    String,
    Enum(Vec<String>),
    /// Several enum values in one argument list (`oom-score-adj`...).
    EnumMulti(Vec<String>),
    Integer,
    /// A size with Redis's units; `percent`: or `N%`.
    Memory {
        percent: bool,
    },
    /// Its own parser (save, bind, client-output-buffer-limit...).
    Special,
    /// Still read from a file, and ignored.
    Deprecated,
    /// Handled by the file parser itself (include, rename-command...).
    Directive,
}

#[derive(Clone, Debug)]
pub struct RedisKey {
    pub name: String,
    pub typ: RedisType,
    pub immutable: bool,
    /// Not listed by CONFIG GET *, still read from files.
    pub hidden: bool,
    /// The old name Redis still reads.
    pub alias: Option<String>,
    /// The range Redis declares for a number (C limits as numbers).
    pub bounds: Option<(i128, i128)>,
    /// Takes several arguments (MULTI_ARG_CONFIG): a single one is split
    /// at spaces; every other config takes exactly one.
    pub multi_arg: bool,
    /// The function config.c judges the value with beyond its type: a
    /// special config's setter or another's is_valid function.
    pub check: Option<String>,
}

/// A bound as config.c writes it: a number or one of C's limits.
fn c_limit(s: &str) -> Option<i128> {
    Some(match s.trim() {
        "INT_MAX" => i32::MAX as i128,
        "INT_MIN" => i32::MIN as i128,
        "UINT_MAX" => u32::MAX as i128,
        "LONG_MAX" | "LLONG_MAX" | "SSIZE_MAX" | "LONG_LONG_MAX" => i64::MAX as i128,
        "LONG_MIN" | "LLONG_MIN" => i64::MIN as i128,
        "ULONG_MAX" | "ULLONG_MAX" | "SIZE_MAX" => u64::MAX as i128,
        n => n.parse().ok()?,
    })
}

pub struct RedisCatalog {
    pub version: String,
    pub release: String,
    keys: BTreeMap<String, RedisKey>,
    /// Old names Redis still reads (`slaveof`, `hash-max-ziplist-entries`).
    aliases: BTreeMap<String, String>,
}

impl RedisCatalog {
    pub fn get(version: &str) -> &'static RedisCatalog {
        static CATS: [OnceLock<RedisCatalog>; 4] = [const { OnceLock::new() }; 4];
        let (v, _) = redis_version(version);
        let i = REDIS_VERSIONS.iter().position(|k| *k == v).unwrap_or(0);
        CATS[i].get_or_init(|| {
            let text = REDIS[i].1;
            let release = release_of(text);
            let mut keys = BTreeMap::new();
            let mut aliases = BTreeMap::new();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                let f: Vec<&str> = line.split('\t').collect();
                let list = || {
                    f.get(3)
                        .map(|s| {
                            s.split(',')
                                .filter(|x| !x.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let typ = match f.get(1).copied().unwrap_or("") {
                    "bool" => RedisType::Bool,
                    "enum" => RedisType::Enum(list()),
                    "enum-multi" => RedisType::EnumMulti(list()),
                    "integer" | "integer-or-percent" => RedisType::Integer,
                    "memory" => RedisType::Memory { percent: false },
                    "memory-or-percent" => RedisType::Memory { percent: true },
                    "special" => RedisType::Special,
                    "deprecated" => RedisType::Deprecated,
                    "directive" => RedisType::Directive,
                    _ => RedisType::String,
                };
                let name = f[0].to_string();
                if let Some(alias) = f.get(2).filter(|a| !a.is_empty()) {
                    aliases.insert(alias.to_string(), name.clone());
                }
                let context = f.get(4).copied().unwrap_or("");
                let bounds = f.get(3).and_then(|a| {
                    let (lo, hi) = a.split_once("..")?;
                    Some((c_limit(lo)?, c_limit(hi)?))
                });
                keys.insert(
                    name.clone(),
                    RedisKey {
                        name,
                        typ,
                        immutable: context.contains("immutable"),
                        hidden: context.contains("hidden"),
                        alias: f.get(2).filter(|a| !a.is_empty()).map(|a| a.to_string()),
                        bounds,
                        multi_arg: context.contains("multi-arg"),
                        check: f.get(5).filter(|c| !c.is_empty()).map(|c| c.to_string()),
                    },
                );
            }
            RedisCatalog {
                version: v.clone(),
                release,
                keys,
                aliases,
            }
        })
    }

    /// Every config of the release.
    pub fn keys(&self) -> impl Iterator<Item = &RedisKey> {
        self.keys.values()
    }

    /// A config by name or old name (any case, as Redis reads it). Files
    /// are read under the newest release's names (`redis_new_name`), so a
    /// name this release knows only by an older spelling is found by it:
    /// 7.0's `server_cpulist`, read as 7.4's `server-cpulist`.
    pub fn key(&self, name: &str) -> Option<&RedisKey> {
        let lower = name.to_ascii_lowercase();
        self.keys
            .get(&lower)
            .or_else(|| self.aliases.get(&lower).and_then(|n| self.keys.get(n)))
            .or_else(|| {
                let newest = REDIS_VERSIONS[REDIS_VERSIONS.len() - 1];
                if self.version == newest {
                    return None;
                }
                RedisCatalog::get(newest)
                    .aliases
                    .iter()
                    .filter(|(_, current)| **current == lower)
                    .find_map(|(old, _)| self.keys.get(old))
            })
    }

    /// The current name of an old one.
    pub fn current_name(&self, name: &str) -> Option<&str> {
        self.aliases
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn suggest(&self, name: &str, budget: &mut Suggestions) -> Suggestion {
        budget.closest(name, self.keys.keys().map(String::as_str))
    }
}

/// What one PgBouncer setting takes, as PgBouncer declares it.
#[derive(Clone, Debug, PartialEq)]
pub enum BouncerType {
    /// strtol with base 0, the whole value.
    Int,
    /// strtoul with base 0, the whole value.
    Uint,
    /// Seconds as a decimal number (strtod), not negative, no unit.
    Time,
    /// One of these, any case.
    Lookup(Vec<String>),
    String,
}

#[derive(Clone, Debug)]
pub struct BouncerKey {
    pub name: String,
    pub typ: BouncerType,
    /// Applied only at start (CF_NO_RELOAD).
    pub restart: bool,
}

pub struct BouncerCatalog {
    pub version: String,
    pub release: String,
    /// Section names PgBouncer knows, exactly as written (case matters).
    pub sections: Vec<String>,
    keys: BTreeMap<String, BouncerKey>,
}

impl BouncerCatalog {
    pub fn get(version: &str) -> &'static BouncerCatalog {
        static CATS: [OnceLock<BouncerCatalog>; 7] = [const { OnceLock::new() }; 7];
        let (v, _) = pgbouncer_version(version);
        let i = PGBOUNCER_VERSIONS.iter().position(|k| *k == v).unwrap_or(0);
        CATS[i].get_or_init(|| {
            let text = PGBOUNCER[i].1;
            let release = release_of(text);
            let sections = text
                .lines()
                .find_map(|l| l.strip_prefix("# sections: "))
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let mut keys = BTreeMap::new();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                let f: Vec<&str> = line.split('\t').collect();
                let typ = match f.get(1).copied().unwrap_or("") {
                    "int" => BouncerType::Int,
                    "uint" => BouncerType::Uint,
                    "time" => BouncerType::Time,
                    "lookup" => BouncerType::Lookup(
                        f.get(2)
                            .map(|s| s.split(',').map(str::to_string).collect())
                            .unwrap_or_default(),
                    ),
                    _ => BouncerType::String,
                };
                keys.insert(
                    f[0].to_string(),
                    BouncerKey {
                        name: f[0].to_string(),
                        typ,
                        restart: f.get(3) == Some(&"restart"),
                    },
                );
            }
            BouncerCatalog {
                version: v.clone(),
                release,
                sections,
                keys,
            }
        })
    }

    /// Every `[pgbouncer]` setting of the release.
    pub fn keys(&self) -> impl Iterator<Item = &BouncerKey> {
        self.keys.values()
    }

    /// A `[pgbouncer]` setting: PgBouncer matches names exactly (strcmp).
    pub fn key(&self, name: &str) -> Option<&BouncerKey> {
        self.keys.get(name)
    }

    /// The release that first has `name`, when a later one does.
    pub fn added_in(&self, name: &str) -> Option<&'static str> {
        let me = PGBOUNCER_VERSIONS.iter().position(|v| *v == self.version)?;
        PGBOUNCER_VERSIONS[me + 1..]
            .iter()
            .find(|v| BouncerCatalog::get(v).keys.contains_key(name))
            .copied()
    }

    pub fn suggest(&self, name: &str, budget: &mut Suggestions) -> Suggestion {
        let lower = name.to_ascii_lowercase();
        if self.keys.contains_key(&lower) {
            return Suggestion::Found(lower);
        }
        budget.closest(&lower, self.keys.keys().map(String::as_str))
    }
}

impl RedisCatalog {
    /// The release that first has `name`, when a later one does.
    pub fn added_in(&self, name: &str) -> Option<&'static str> {
        let me = REDIS_VERSIONS.iter().position(|v| *v == self.version)?;
        REDIS_VERSIONS[me + 1..]
            .iter()
            .find(|v| RedisCatalog::get(v).key(name).is_some())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_builds_from_its_own_server_catalog() {
        for v in PgVersion::all() {
            let c = PgCatalog::get(v);
            assert_eq!(c.version, v);
            assert!(c.release.starts_with(&format!("{v}.")), "{}", c.release);
            assert!(matches!(c.lookup("shared_buffers"), Lookup::Known(_)));
        }
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(17)).lookup("io_method"),
            Lookup::NotYet(18)
        ));
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(13)).lookup("huge_page_size"),
            Lookup::NotYet(14)
        ));
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(14)).lookup("stats_temp_directory"),
            Lookup::Known(_)
        ));
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(15)).lookup("stats_temp_directory"),
            Lookup::Removed(14, None)
        ));
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(16)).lookup("force_parallel_mode"),
            Lookup::Removed(15, Some("debug_parallel_query"))
        ));
        assert!(matches!(
            PgCatalog::get(crate::version::PgVersion::of(15)).lookup("wal_keep_segments"),
            Lookup::Removed(12, Some("wal_keep_size"))
        ));
    }

    #[test]
    fn attributes_that_changed_between_versions_are_the_servers() {
        let get = |v: u32, n: &str| match PgCatalog::get(crate::version::PgVersion::of(v)).lookup(n)
        {
            Lookup::Known(p) => p.clone(),
            _ => panic!("{n} in {v}"),
        };
        assert_eq!(get(13, "wal_compression").vartype, VarType::Bool);
        assert_eq!(get(15, "wal_compression").vartype, VarType::Enum);
        assert_eq!(get(17, "io_combine_limit").max, Some(32.0));
        assert_eq!(get(18, "io_combine_limit").max, Some(128.0));
        assert_eq!(get(16, "maintenance_work_mem").min, Some(1024.0));
        assert_eq!(get(17, "maintenance_work_mem").min, Some(64.0));
        assert_eq!(get(18, "log_connections").vartype, VarType::String);
        assert_eq!(get(17, "autovacuum_max_workers").context, "postmaster");
        assert_eq!(get(18, "autovacuum_max_workers").context, "sighup");
        assert!(get(14, "allow_in_place_tablespaces").since_minor.is_some());
        assert_eq!(
            get(16, "extension_destdir").build_only.as_deref(),
            Some("debian")
        );
        let wc = get(15, "wal_compression");
        assert!(wc
            .build_values
            .iter()
            .any(|b| b.value == "lz4" && b.feature == "lz4"));
        assert!(wc.aliases.contains(&("on".to_string(), "pglz".to_string())));
    }

    #[test]
    fn typos_get_a_suggestion() {
        let pg15 = PgCatalog::get(crate::version::PgVersion::of(15));
        let mut budget = Suggestions::new();
        assert!(matches!(pg15.lookup("shared_bufers"), Lookup::Unknown));
        assert_eq!(
            pg15.suggest("shared_bufers", &mut budget),
            Suggestion::Found("shared_buffers".into())
        );
        assert_eq!(pg15.suggest("zzzz_qqq", &mut budget), Suggestion::None);
        assert_eq!(
            RedisCatalog::get("7.0")
                .suggest("maxmemroy", &mut budget)
                .found(),
            Some("maxmemory")
        );
    }

    /// A check scores at most `Suggestions::MAX` unknown names against a
    /// catalog, however many a file holds: the work is bounded, and the
    /// names past the limit are said to be skipped, not "no match".
    #[test]
    fn the_did_you_mean_search_is_bounded_per_check() {
        let pg = PgCatalog::get(crate::version::PgVersion::of(18));
        let per_search = pg.params().count();
        let before = SCORED.with(|c| c.get());
        let mut budget = Suggestions::new();
        let results: Vec<Suggestion> = (0..10_000)
            .map(|i| pg.suggest(&format!("shared_bufers_{i}"), &mut budget))
            .collect();
        let scored = SCORED.with(|c| c.get()) - before;
        assert_eq!(scored, Suggestions::MAX * per_search);
        assert!(results[..Suggestions::MAX]
            .iter()
            .all(|s| *s != Suggestion::Skipped));
        assert!(results[Suggestions::MAX..]
            .iter()
            .all(|s| *s == Suggestion::Skipped));
    }

    #[test]
    fn redis_old_names_map_to_new_ones() {
        let c = RedisCatalog::get("7.0");
        assert_eq!(
            c.current_name("hash-max-ziplist-entries"),
            Some("hash-max-listpack-entries")
        );
        assert_eq!(c.current_name("slaveof"), Some("replicaof"));
        // Read under 7.4's name, known to 7.0 by its old one.
        assert_eq!(
            RedisCatalog::get("7.0")
                .key("server-cpulist")
                .map(|k| k.name.as_str()),
            Some("server_cpulist")
        );
        assert!(c.key("maxmemory-clients").is_some());
        assert!(c.key("locale-collate").is_none());
        assert_eq!(c.added_in("locale-collate"), Some("7.2"));
        assert!(RedisCatalog::get("7.2.4").key("locale-collate").is_some());
        assert_eq!(redis_version("7.0.15").0, "7.0");
        assert_eq!(redis_version("9.1").0, "8.0");
    }

    #[test]
    fn pgbouncer_keys_follow_the_release() {
        let c = BouncerCatalog::get("1.18.0");
        assert!(c.key("max_prepared_statements").is_none());
        assert_eq!(c.added_in("max_prepared_statements"), Some("1.21"));
        assert!(BouncerCatalog::get("1.24")
            .key("max_user_client_connections")
            .is_some());
        assert!(
            c.key("MAX_CLIENT_CONN").is_none(),
            "PgBouncer matches names exactly"
        );
        assert_eq!(
            c.suggest("MAX_CLIENT_CONN", &mut Suggestions::new())
                .found(),
            Some("max_client_conn")
        );
        assert_eq!(c.sections, ["pgbouncer", "databases", "users"]);
        assert!(BouncerCatalog::get("1.19")
            .sections
            .contains(&"peers".to_string()));
    }
}
