//! What each server accepts: PostgreSQL's parameter catalog per major
//! version, Redis's and PgBouncer's key lists. Kept as data generated from
//! the real servers (scripts/gen-pg-catalog.sh, scripts/gen-key-lists.sh):
//! one catalog per PostgreSQL major, with the release it came from; the
//! parameters a later minor release added (scripts/gen-pg-minor-additions.sh);
//! and the values that depend on how a server was built (data/pg-build.toml).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

const PG_CATALOGS: [(u32, &str); 6] = [
    (13, include_str!("../data/pg-catalog-13.tsv")),
    (14, include_str!("../data/pg-catalog-14.tsv")),
    (15, include_str!("../data/pg-catalog-15.tsv")),
    (16, include_str!("../data/pg-catalog-16.tsv")),
    (17, include_str!("../data/pg-catalog-17.tsv")),
    (18, include_str!("../data/pg-catalog-18.tsv")),
];
const PG_MINOR_ADDITIONS: &str = include_str!("../data/pg-minor-additions.tsv");
const PG_BUILD: &str = include_str!("../data/pg-build.toml");
const REDIS: &str = include_str!("../data/redis-7.0.txt");
const PGBOUNCER: &str = include_str!("../data/pgbouncer-1.18.txt");

pub const PG_VERSIONS_SUPPORTED: std::ops::RangeInclusive<u32> = 13..=18;

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
    Unknown(Option<String>),
}

pub struct PgCatalog {
    pub version: u32,
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
    /// The catalog of one major version (13..=18), built once.
    pub fn get(version: u32) -> &'static PgCatalog {
        static CATALOGS: [OnceLock<PgCatalog>; 6] = [const { OnceLock::new() }; 6];
        let v = version.clamp(*PG_VERSIONS_SUPPORTED.start(), *PG_VERSIONS_SUPPORTED.end());
        CATALOGS[(v - PG_VERSIONS_SUPPORTED.start()) as usize].get_or_init(|| build(v))
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
        let has = |v: u32| PgCatalog::get(v).params.contains_key(&lower);
        if let Some(v) = (self.version + 1..=*PG_VERSIONS_SUPPORTED.end()).find(|v| has(*v)) {
            return Lookup::NotYet(v);
        }
        let renamed = PG_RENAMES
            .iter()
            .find(|(old, _)| *old == lower)
            .map(|(_, new)| *new);
        if let Some(v) = (*PG_VERSIONS_SUPPORTED.start()..self.version)
            .rev()
            .find(|v| has(*v))
        {
            return Lookup::Removed(v, renamed);
        }
        if let Some(new) = renamed {
            // Gone before the oldest version dbtune knows.
            return Lookup::Removed(PG_VERSIONS_SUPPORTED.start() - 1, Some(new));
        }
        Lookup::Unknown(did_you_mean(&lower, self.params.keys().map(String::as_str)))
    }
}

fn opt(f: &[&str], i: usize) -> Option<String> {
    f.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string())
}

fn build(version: u32) -> PgCatalog {
    let text = PG_CATALOGS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, t)| *t)
        .expect("a catalog for every supported version");
    // "# PostgreSQL 18.4 parameters from ..."
    let release = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?")
        .to_string();
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
        if f.get(1).and_then(|m| m.parse::<u32>().ok()) == Some(version) {
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
    // (check_wal_buffers, check_autovacuum_work_mem); tests/pg_versions.rs
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

/// The closest known name, if one is close enough to be a typo.
pub fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.88)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

/// A list of known key names: Redis's directives, PgBouncer's settings.
pub struct KeyList {
    names: BTreeSet<String>,
}

impl KeyList {
    fn parse(text: &str, extra: &[&str]) -> KeyList {
        let mut names: BTreeSet<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_string)
            .collect();
        names.extend(extra.iter().map(|e| e.to_string()));
        KeyList { names }
    }

    pub fn knows(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn suggest(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.names.iter().map(String::as_str))
    }
}

/// Old names Redis still reads, and the name they mean now.
pub fn redis_new_name(name: &str) -> Option<String> {
    let renamed = name
        .replace("ziplist", "listpack")
        .replace("slaveof", "replicaof")
        .replace("slave", "replica");
    (renamed != name).then_some(renamed)
}

/// Redis directives: every CONFIG parameter of the version the list was
/// generated from, plus directives that only exist in the file.
pub fn redis_keys() -> &'static KeyList {
    static CAT: OnceLock<KeyList> = OnceLock::new();
    CAT.get_or_init(|| {
        KeyList::parse(
            REDIS,
            &[
                "include",
                "rename-command",
                "loadmodule",
                "user",
                "sentinel",
            ],
        )
    })
}

/// PgBouncer's [pgbouncer] settings.
pub fn pgbouncer_keys() -> &'static KeyList {
    static CAT: OnceLock<KeyList> = OnceLock::new();
    CAT.get_or_init(|| KeyList::parse(PGBOUNCER, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_builds_from_its_own_server_catalog() {
        for v in PG_VERSIONS_SUPPORTED {
            let c = PgCatalog::get(v);
            assert_eq!(c.version, v);
            assert!(c.release.starts_with(&format!("{v}.")), "{}", c.release);
            assert!(matches!(c.lookup("shared_buffers"), Lookup::Known(_)));
        }
        assert!(matches!(
            PgCatalog::get(17).lookup("io_method"),
            Lookup::NotYet(18)
        ));
        assert!(matches!(
            PgCatalog::get(13).lookup("huge_page_size"),
            Lookup::NotYet(14)
        ));
        assert!(matches!(
            PgCatalog::get(14).lookup("stats_temp_directory"),
            Lookup::Known(_)
        ));
        assert!(matches!(
            PgCatalog::get(15).lookup("stats_temp_directory"),
            Lookup::Removed(14, None)
        ));
        assert!(matches!(
            PgCatalog::get(16).lookup("force_parallel_mode"),
            Lookup::Removed(15, Some("debug_parallel_query"))
        ));
        assert!(matches!(
            PgCatalog::get(15).lookup("wal_keep_segments"),
            Lookup::Removed(12, Some("wal_keep_size"))
        ));
    }

    #[test]
    fn attributes_that_changed_between_versions_are_the_servers() {
        let get = |v: u32, n: &str| match PgCatalog::get(v).lookup(n) {
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
        match PgCatalog::get(15).lookup("shared_bufers") {
            Lookup::Unknown(Some(s)) => assert_eq!(s, "shared_buffers"),
            _ => panic!("expected a suggestion"),
        }
        assert!(matches!(
            PgCatalog::get(15).lookup("zzzz_qqq"),
            Lookup::Unknown(None)
        ));
        assert_eq!(
            redis_keys().suggest("maxmemroy").as_deref(),
            Some("maxmemory")
        );
    }

    #[test]
    fn redis_old_names_map_to_new_ones() {
        assert_eq!(
            redis_new_name("hash-max-ziplist-entries").as_deref(),
            Some("hash-max-listpack-entries")
        );
        assert_eq!(redis_new_name("slaveof").as_deref(), Some("replicaof"));
        assert_eq!(redis_new_name("maxmemory"), None);
        assert!(redis_keys().knows("maxmemory-clients"));
    }
}
