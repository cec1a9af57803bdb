//! What each server accepts: PostgreSQL's parameter catalog per major
//! version, Redis's and PgBouncer's key lists. Kept as data generated from
//! the real servers (scripts/gen-pg-catalog.sh, scripts/gen-key-lists.sh),
//! plus the hand-kept version differences in data/pg-versions.toml.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

const PG15: &str = include_str!("../data/pg-catalog-15.tsv");
const PG_VERSIONS: &str = include_str!("../data/pg-versions.toml");
const REDIS: &str = include_str!("../data/redis-7.0.txt");
const PGBOUNCER: &str = include_str!("../data/pgbouncer-1.18.txt");

pub const PG_VERSIONS_SUPPORTED: std::ops::RangeInclusive<u32> = 13..=18;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarType {
    Bool,
    Integer,
    Real,
    Enum,
    String,
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
}

#[derive(Debug, Deserialize)]
struct Delta {
    param: Vec<DeltaParam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaParam {
    name: String,
    since: Option<u32>,
    until: Option<u32>,
    renamed: Option<String>,
    vartype: Option<String>,
    unit: Option<String>,
    min: Option<String>,
    max: Option<String>,
    enumvals: Option<Vec<String>>,
    context: Option<String>,
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
    params: BTreeMap<String, PgParam>,
    later: BTreeMap<String, u32>,
    removed: BTreeMap<String, (u32, Option<String>)>,
}

impl PgCatalog {
    /// The catalog of one major version (13..=18), built once.
    pub fn get(version: u32) -> &'static PgCatalog {
        // Built on first use, per version: render needs one.
        static CATALOGS: [OnceLock<PgCatalog>; 6] = [const { OnceLock::new() }; 6];
        let v = version.clamp(*PG_VERSIONS_SUPPORTED.start(), *PG_VERSIONS_SUPPORTED.end());
        CATALOGS[(v - PG_VERSIONS_SUPPORTED.start()) as usize].get_or_init(|| build(v))
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        let lower = name.to_ascii_lowercase();
        if let Some(p) = self.params.get(&lower) {
            return Lookup::Known(p);
        }
        if let Some(v) = self.later.get(&lower) {
            return Lookup::NotYet(*v);
        }
        if let Some((v, renamed)) = self.removed.get(&lower) {
            return Lookup::Removed(*v, renamed.as_deref());
        }
        Lookup::Unknown(did_you_mean(&lower, self.params.keys().map(String::as_str)))
    }
}

fn build(version: u32) -> PgCatalog {
    let mut params = BTreeMap::new();
    for line in PG15
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let opt = |i: usize| f.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
        let p = PgParam {
            name: f[0].to_ascii_lowercase(),
            vartype: vartype(f[1]),
            unit: opt(2),
            min: opt(3).and_then(|s| s.parse().ok()),
            max: opt(4).and_then(|s| s.parse().ok()),
            enumvals: opt(5).map_or(Vec::new(), |s| s.split(',').map(str::to_string).collect()),
            context: f.get(6).unwrap_or(&"").to_string(),
            boot_val: f.get(7).map(|s| s.to_string()),
        };
        params.insert(p.name.clone(), p);
    }
    let delta: Delta =
        toml::from_str(PG_VERSIONS).expect("data/pg-versions.toml is valid (tested)");
    let mut later = BTreeMap::new();
    let mut removed = BTreeMap::new();
    for d in delta.param {
        let exists = d.since.is_none_or(|s| version >= s) && d.until.is_none_or(|u| version <= u);
        if exists {
            if !params.contains_key(&d.name) {
                params.insert(
                    d.name.clone(),
                    PgParam {
                        name: d.name.clone(),
                        vartype: vartype(d.vartype.as_deref().unwrap_or("string")),
                        unit: d.unit.clone(),
                        min: d.min.as_deref().and_then(|s| s.parse().ok()),
                        max: d.max.as_deref().and_then(|s| s.parse().ok()),
                        enumvals: d.enumvals.clone().unwrap_or_default(),
                        context: d.context.clone().unwrap_or_else(|| "user".into()),
                        boot_val: None,
                    },
                );
            }
        } else {
            params.remove(&d.name);
            match (d.since, d.until) {
                (Some(s), _) if version < s => {
                    later.insert(d.name.clone(), s);
                }
                (_, Some(u)) => {
                    removed.insert(d.name.clone(), (u, d.renamed.clone()));
                }
                _ => {}
            }
        }
    }
    PgCatalog {
        version,
        params,
        later,
        removed,
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
    fn every_version_builds_and_differs_where_the_release_notes_say() {
        for v in PG_VERSIONS_SUPPORTED {
            let c = PgCatalog::get(v);
            assert_eq!(c.version, v);
            assert!(matches!(c.lookup("shared_buffers"), Lookup::Known(_)));
        }
        assert!(matches!(
            PgCatalog::get(17).lookup("io_method"),
            Lookup::NotYet(18)
        ));
        assert!(matches!(
            PgCatalog::get(18).lookup("io_method"),
            Lookup::Known(_)
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
