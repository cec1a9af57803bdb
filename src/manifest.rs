//! The manifest render writes beside its files: the facts, profile and
//! dbtune version a directory was rendered from, the memory claimed
//! outside the files, and each file's hash. check-budget, apply and diff
//! read it to judge the directory as render meant it; render reads it to
//! know which files are its own (only when no other user could have
//! written it: `render::output`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Place};
use crate::facts::StorageKind;
use crate::target::Host;
use crate::units::ByteSize;
use crate::version::PgVersion;

pub const MANIFEST: &str = "dbtune-manifest.json";

/// What dbtune wrote into a directory, and for what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub dbtune_version: String,
    pub profile: String,
    pub profile_origin: String,
    /// Where the files run (`--layout` or the profile's): older manifests
    /// without it were rendered for systemd.
    #[serde(default)]
    pub layout: crate::plan::layout::Layout,
    /// The resolved host: RAM, CPUs, storage, ZFS, PostgreSQL version, each
    /// with its source.
    pub host: HostRecord,
    /// Memory claimed outside the files (OS reserve, the profile's
    /// reservations), for checking the budget of this directory later.
    pub reserves: Vec<crate::model::HostReserve>,
    /// The budget assumptions of the profile (sorts per query...).
    pub assumptions: crate::model::Assumptions,
    /// sha256 of each file as dbtune wrote it.
    pub files: BTreeMap<String, String>,
}

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A manifest value that fails its check: the keys down to it, to find
/// its line by.
struct BadEntry {
    path: Vec<String>,
    message: String,
    hint: String,
}

impl BadEntry {
    fn new(path: &[&str], message: impl Into<String>, hint: impl Into<String>) -> BadEntry {
        BadEntry {
            path: path.iter().map(|k| k.to_string()).collect(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A profile rule's verdict, its path under the manifest's `prefix`.
    fn from_profile(prefix: &[&str], bad: crate::doc::BadValue) -> BadEntry {
        let key = bad.key().to_string();
        let mut path: Vec<String> = prefix.iter().map(|k| k.to_string()).collect();
        path.push(key);
        BadEntry {
            path,
            message: bad.message,
            hint: bad.hint,
        }
    }
}

/// A name dbtune may have written into a directory: one plain file name,
/// never a path, a hidden name (its own state and temporary files) or
/// anything that could end a line.
pub(crate) fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

pub(crate) fn is_sha256(h: &str) -> bool {
    h.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

impl Manifest {
    /// Parses and checks a manifest (`path` names it in errors): the
    /// values it holds are checked against the same bounds the facts file
    /// and profile loaders apply, since check-budget and apply budget with
    /// them and print them.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, Error> {
        let hint = "restore the manifest from version control, or remove it and render again \
                    with --force (files it no longer vouches for are kept as FILE.bak)";
        let m: Manifest = serde_json::from_str(text).map_err(|e| {
            Error::input(
                Place::line(path.display(), e.line()),
                format!("the manifest is not valid: {e}"),
                hint,
            )
        })?;
        if let Err(bad) = m.check() {
            let keys: Vec<&str> = bad.path.iter().map(String::as_str).collect();
            let line = crate::doc::json_line(text, &keys);
            return Err(Error::input(
                Place::line(path.display(), line).setting(bad.path.join(".")),
                format!("the manifest is not valid: {}", bad.message),
                format!("{}; {hint}", bad.hint),
            ));
        }
        Ok(m)
    }

    fn check(&self) -> Result<(), BadEntry> {
        let text = |path: &[&str], v: &str| match crate::facts::text_problem(v) {
            Some(why) => Err(BadEntry::new(
                path,
                format!("`{}` {why}", path.join(".")),
                "it is one line of plain text",
            )),
            None => Ok(()),
        };
        text(&["dbtune_version"], &self.dbtune_version)?;
        text(&["profile"], &self.profile)?;
        text(&["profile_origin"], &self.profile_origin)?;
        let h = &self.host;
        if let Some(hint) = crate::facts::ram_problem(h.ram) {
            return Err(BadEntry::new(
                &["host", "ram"],
                format!("host.ram {} is out of range", h.ram),
                hint,
            ));
        }
        if let Some(hint) = crate::facts::cpus_problem(h.cpus) {
            return Err(BadEntry::new(
                &["host", "cpus"],
                format!("host.cpus {} is out of range", h.cpus),
                hint,
            ));
        }
        for (key, v) in [
            ("ram_source", &h.ram_source),
            ("cpus_source", &h.cpus_source),
            ("storage_source", &h.storage_source),
            ("zfs_source", &h.zfs_source),
            ("pg_on_zfs_source", &h.pg_on_zfs_source),
            ("pg_version_source", &h.pg_version_source),
            ("pg_build_source", &h.pg_build_source),
            ("wal_space_source", &h.wal_space_source),
        ] {
            text(&["host", key], v)?;
        }
        if h.wal_space.is_some_and(|w| w < crate::facts::MIN_WAL_SPACE) {
            return Err(BadEntry::new(
                &["host", "wal_space"],
                "host.wal_space is too small".to_string(),
                format!("at least {}", crate::facts::MIN_WAL_SPACE),
            ));
        }
        for f in h.pg_build.iter().flatten() {
            if !crate::facts::PG_BUILD_FEATURES.contains(&f.as_str()) {
                return Err(BadEntry::new(
                    &["host", "pg_build"],
                    format!("`{}` is not a build feature dbtune knows", f.escape_debug()),
                    format!("features: {}", crate::facts::PG_BUILD_FEATURES.join(", ")),
                ));
            }
        }
        for (i, r) in self.reserves.iter().enumerate() {
            let i = i.to_string();
            crate::model::check_reserve("reserves", &r.name, r.memory)
                .map_err(|bad| BadEntry::from_profile(&["reserves", &i], bad))?;
            text(&["reserves", &i, "source"], &r.source)?;
        }
        crate::model::check_assumptions(&self.assumptions, "assumptions", "busy_fraction_typical")
            .map_err(|bad| BadEntry::from_profile(&["assumptions"], bad))?;
        for (name, hash) in &self.files {
            if !is_file_name(name) {
                return Err(BadEntry::new(
                    &["files"],
                    format!("`{}` is not a file name dbtune writes", name.escape_debug()),
                    "files are named as render names them, without a directory",
                ));
            }
            if !is_sha256(hash) {
                return Err(BadEntry::new(
                    &["files", name],
                    format!("the hash of `{name}` is not `sha256:` and 64 hex digits"),
                    "the manifest records each file's sha256 as render wrote it",
                ));
            }
        }
        Ok(())
    }
}

/// The manifest of `dir`, checked, for reading its values (check-budget,
/// apply). Whether it proves what dbtune wrote is render's question.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let p = dir.join(MANIFEST);
    if std::fs::symlink_metadata(&p).is_err() {
        return Ok(None);
    }
    let text = crate::input::read_text(&p, "manifest", crate::input::MAX_DOCUMENT)?;
    Ok(Some(Manifest::parse(&text, &p)?))
}

/// The host a directory was rendered for, as the manifest records it
/// (one field per fact and one for its source: the file's format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub ram: ByteSize,
    pub ram_source: String,
    pub cpus: u32,
    pub cpus_source: String,
    pub storage: StorageKind,
    pub storage_source: String,
    /// ZFS is in use on the host: its ARC is capped and budgeted.
    pub zfs: bool,
    pub zfs_source: String,
    /// PostgreSQL's data directory (and its WAL directory, when pg_wal
    /// links elsewhere) is on ZFS. Only then are full_page_writes,
    /// wal_init_zero and wal_recycle turned off: on any other filesystem a
    /// crash could leave torn pages.
    #[serde(default)]
    pub pg_on_zfs: bool,
    #[serde(default)]
    pub pg_on_zfs_source: String,
    /// Render zfs-datasets.sh: the data is on ZFS, or the profile asks.
    #[serde(default)]
    pub zfs_datasets: bool,
    /// The size of pg_wal's filesystem the files were rendered for, when
    /// known: max_wal_size stays within a tenth of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_space: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wal_space_source: String,
    pub pg_version: PgVersion,
    pub pg_version_source: String,
    /// What the target PostgreSQL build supports (`lz4`...), when known:
    /// a value its build lacks stops the server from starting.
    #[serde(default)]
    pub pg_build: Option<Vec<String>>,
    #[serde(default)]
    pub pg_build_source: String,
    /// The Redis and PgBouncer releases the files were written for, when
    /// something named them (a flag, facts, the live server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer_version: Option<String>,
}

impl From<&Host> for HostRecord {
    fn from(h: &Host) -> HostRecord {
        HostRecord {
            ram: h.ram.value,
            ram_source: h.ram.source.clone(),
            cpus: h.cpus.value,
            cpus_source: h.cpus.source.clone(),
            storage: h.storage.value,
            storage_source: h.storage.source.clone(),
            zfs: h.zfs.value,
            zfs_source: h.zfs.source.clone(),
            pg_on_zfs: h.pg_on_zfs.value,
            pg_on_zfs_source: h.pg_on_zfs.source.clone(),
            zfs_datasets: h.zfs_datasets,
            wal_space: h.wal_space.as_ref().map(|w| w.value),
            wal_space_source: h
                .wal_space
                .as_ref()
                .map_or(String::new(), |w| w.source.clone()),
            pg_version: h.pg_version.value,
            pg_version_source: h.pg_version.source.clone(),
            pg_build: h.pg_build.value.clone(),
            pg_build_source: h.pg_build.source.clone(),
            redis_version: h
                .redis_version
                .stated
                .then(|| h.redis_version.version.clone()),
            pgbouncer_version: h
                .pgbouncer_version
                .stated
                .then(|| h.pgbouncer_version.version.clone()),
        }
    }
}

/// A host as the manifest (and the templates' context) writes it.
pub fn serialize_host<S: serde::Serializer>(h: &Host, s: S) -> Result<S::Ok, S::Error> {
    HostRecord::from(h).serialize(s)
}
