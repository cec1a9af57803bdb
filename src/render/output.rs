//! Writing rendered files: atomically, never over a file someone edited
//! since dbtune wrote it, with a manifest that makes the directory
//! self-describing. And `--check`: the same comparison without writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Artifact;
use crate::error::Error;

pub const MANIFEST: &str = "dbtune-manifest.json";

/// What dbtune wrote into a directory, and for what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub dbtune_version: String,
    pub profile: String,
    pub profile_origin: String,
    /// The resolved host: RAM, CPUs, storage, ZFS, PostgreSQL version, each
    /// with its source.
    pub host: crate::plan::Host,
    /// Memory claimed outside the files (OS reserve, the profile's
    /// reservations), for checking the budget of this directory later.
    pub reserves: Vec<crate::read::budget::HostReserve>,
    /// The budget assumptions of the profile (sorts per query...).
    pub assumptions: crate::read::budget::Assumptions,
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

/// A manifest value that fails its check: the key to find its line by.
struct BadEntry {
    key: String,
    value: Option<String>,
    message: String,
    hint: String,
}

impl BadEntry {
    fn new(key: &str, message: impl Into<String>, hint: impl Into<String>) -> BadEntry {
        BadEntry {
            key: key.to_string(),
            value: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn from_profile(bad: crate::profile::BadValue, value: Option<String>) -> BadEntry {
        BadEntry {
            key: bad.key.to_string(),
            value,
            message: bad.message,
            hint: bad.hint,
        }
    }
}

/// A name dbtune may have written into a directory: one plain file name,
/// never a path, a hidden name (its own state and temporary files) or
/// anything that could end a line.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

fn is_sha256(h: &str) -> bool {
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
                format!("{}:{}", path.display(), e.line()),
                format!("the manifest is not valid: {e}"),
                hint,
            )
        })?;
        if let Err(bad) = m.check() {
            let line = crate::facts::line_of_key(text, &bad.key, bad.value.as_deref());
            return Err(Error::input(
                format!("{}:{line}", path.display()),
                format!("the manifest is not valid: {}", bad.message),
                format!("{}; {hint}", bad.hint),
            ));
        }
        Ok(m)
    }

    fn check(&self) -> Result<(), BadEntry> {
        let text = |key: &str, v: &str| match crate::facts::text_problem(v) {
            Some(why) => Err(BadEntry {
                value: Some(v.to_string()),
                ..BadEntry::new(
                    key,
                    format!("`{key}` {why}"),
                    "it is one line of plain text",
                )
            }),
            None => Ok(()),
        };
        text("dbtune_version", &self.dbtune_version)?;
        text("profile", &self.profile)?;
        text("profile_origin", &self.profile_origin)?;
        let h = &self.host;
        if let Some(hint) = crate::facts::ram_problem(h.ram) {
            return Err(BadEntry {
                value: Some(h.ram.0.to_string()),
                ..BadEntry::new("ram", format!("host.ram {} is out of range", h.ram), hint)
            });
        }
        if let Some(hint) = crate::facts::cpus_problem(h.cpus) {
            return Err(BadEntry {
                value: Some(h.cpus.to_string()),
                ..BadEntry::new(
                    "cpus",
                    format!("host.cpus {} is out of range", h.cpus),
                    hint,
                )
            });
        }
        for (key, v) in [
            ("ram_source", &h.ram_source),
            ("cpus_source", &h.cpus_source),
            ("storage_source", &h.storage_source),
            ("zfs_source", &h.zfs_source),
            ("pg_on_zfs_source", &h.pg_on_zfs_source),
            ("pg_version_source", &h.pg_version_source),
            ("pg_build_source", &h.pg_build_source),
        ] {
            text(key, v)?;
        }
        for f in h.pg_build.iter().flatten() {
            if !crate::facts::PG_BUILD_FEATURES.contains(&f.as_str()) {
                return Err(BadEntry {
                    value: Some(f.clone()),
                    ..BadEntry::new(
                        "pg_build",
                        format!("`{}` is not a build feature dbtune knows", f.escape_debug()),
                        format!("features: {}", crate::facts::PG_BUILD_FEATURES.join(", ")),
                    )
                });
            }
        }
        for r in &self.reserves {
            crate::profile::check_reserve(&r.name, r.memory).map_err(|bad| {
                let value = match bad.key {
                    "memory" => r.memory.0.to_string(),
                    _ => r.name.clone(),
                };
                BadEntry::from_profile(bad, Some(value))
            })?;
            text("source", &r.source)?;
        }
        crate::profile::check_assumptions(
            &self.assumptions,
            "assumptions",
            "busy_fraction_typical",
        )
        .map_err(|bad| BadEntry::from_profile(bad, None))?;
        for (name, hash) in &self.files {
            if !is_file_name(name) {
                return Err(BadEntry {
                    value: None,
                    ..BadEntry::new(
                        "files",
                        format!("`{}` is not a file name dbtune writes", name.escape_debug()),
                        "files are named as render names them, without a directory",
                    )
                });
            }
            if !is_sha256(hash) {
                return Err(BadEntry::new(
                    name,
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

/// Written before any file is replaced and removed after the manifest:
/// when a run is killed in between, the next one knows which contents
/// were dbtune's own, so it never blames a hand edit that did not happen.
const JOURNAL: &str = ".dbtune-pending.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    files: BTreeMap<String, String>,
}

fn read_journal(dir: &Path) -> Journal {
    let p = dir.join(JOURNAL);
    crate::input::read_text(&p, "journal", crate::input::MAX_DOCUMENT)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// An exclusive (or shared) lock on the directory itself, held while the
/// value lives: two renders into one directory take turns.
pub struct DirLock {
    _file: std::fs::File,
}

/// How long a render waits for another to finish with the directory.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub fn lock_dir(dir: &Path, exclusive: bool) -> Result<DirLock> {
    let file = std::fs::File::open(dir)
        .with_context(|| format!("cannot open `{}` to lock it", dir.display()))?;
    let try_lock = |f: &std::fs::File| {
        if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        }
    };
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        match try_lock(&file) {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                if start.elapsed() > LOCK_WAIT {
                    return Err(Error::plain(
                        format!(
                            "another dbtune has held `{}` for over {} s; nothing was written",
                            dir.display(),
                            LOCK_WAIT.as_secs()
                        ),
                        "wait for it to finish (renders into one directory take turns), or check for a stuck process",
                    )
                    .into());
                }
                if !said {
                    eprintln!("waiting for another dbtune working in {}", dir.display());
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock `{}`", dir.display()))
            }
        }
    }
}

/// A free backup name: FILE.bak, else FILE.bak.1, FILE.bak.2...
fn backup_path(path: &Path) -> PathBuf {
    let base = format!("{}.bak", path.display());
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while std::fs::symlink_metadata(&p).is_ok() {
        p = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    p
}

#[derive(Debug, Default)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub backed_up: Vec<(String, String)>,
    /// Temporary files a killed run had left, now removed.
    pub cleaned: Vec<String>,
    /// Files that are symlinks, written through to their target.
    pub through_links: Vec<(String, String)>,
}

/// What to do with one artifact.
struct Step<'a> {
    artifact: &'a Artifact,
    path: PathBuf,
    /// Someone else's content: kept as .bak first (with --force).
    edited: bool,
    same: bool,
    /// An owner that replacing the file would not keep (not root).
    owner: Option<String>,
}

/// Writes the artifacts and the manifest into `dir`, holding the
/// directory's lock throughout.
///
/// A file that exists and differs from what dbtune last wrote (per the
/// manifest, or the journal of a run that was killed), or that dbtune
/// never wrote, is someone's: without `force` nothing is written and the
/// list is returned as an error; with `force` each is kept as a `.bak`
/// first. Existing files keep their mode and owner; symlinks are written
/// through. The manifest is written last, after every file is in place.
pub fn write_dir(
    dir: &Path,
    artifacts: &[Artifact],
    mut manifest: Manifest,
    force: bool,
) -> Result<WriteReport> {
    make_out_dir(dir)?;
    let _lock = lock_dir(dir, true)?;
    let mut report = WriteReport {
        cleaned: crate::atomic::clean_temp_files(dir),
        ..Default::default()
    };
    let previous = read_manifest(dir)?;
    let journal = read_journal(dir);
    let ours = |file: &str, hash: &str| {
        previous
            .as_ref()
            .and_then(|m| m.files.get(file))
            .is_some_and(|h| h == hash)
            || journal.files.get(file).is_some_and(|h| h == hash)
    };
    let steps = artifacts
        .iter()
        .map(|a| step(dir, a, &ours, &mut report))
        .collect::<Result<Vec<_>>>()?;
    refuse_to_take(dir, &steps, force)?;
    write_journal(dir, journal, &steps)?;
    for st in &steps {
        let a = st.artifact;
        if st.same {
            report.unchanged.push(a.file.to_string());
        } else {
            if st.edited {
                let bak = backup_path(&st.path);
                std::fs::copy(&st.path, &bak)
                    .with_context(|| format!("cannot keep a backup of `{}`", st.path.display()))?;
                report
                    .backed_up
                    .push((a.file.to_string(), bak.display().to_string()));
            }
            crate::atomic::replace(
                &st.path,
                a.content.as_bytes(),
                if a.executable { 0o755 } else { 0o644 },
            )?;
            report.written.push(a.file.to_string());
        }
        manifest
            .files
            .insert(a.file.to_string(), sha256(a.content.as_bytes()));
    }
    // Files rendered earlier with a wider --only stay recorded.
    if let Some(prev) = previous {
        for (f, h) in prev.files {
            manifest.files.entry(f).or_insert(h);
        }
    }
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    crate::atomic::replace(&dir.join(MANIFEST), json.as_bytes(), 0o644)?;
    let _ = std::fs::remove_file(dir.join(JOURNAL));
    Ok(report)
}

/// --out as a directory, created when missing.
fn make_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::plain(
            format!("--out `{}` is a file, not a directory", dir.display()),
            "name a directory; dbtune creates it if it is missing",
        )
        .into());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::plain(
            format!("cannot create --out directory `{}`: {e}", dir.display()),
            "check the path and its permissions, or print to stdout by leaving out --out",
        )
    })?;
    Ok(())
}

/// What writing one artifact means: where it lands (through a symlink),
/// whether the file there is the same, or someone else's.
fn step<'a>(
    dir: &Path,
    a: &'a Artifact,
    ours: &dyn Fn(&str, &str) -> bool,
    report: &mut WriteReport,
) -> Result<Step<'a>> {
    let path = dir.join(a.file);
    let real = crate::atomic::resolve_target(&path)?;
    if real != path {
        report
            .through_links
            .push((a.file.to_string(), real.display().to_string()));
    }
    let existing = match std::fs::symlink_metadata(&real) {
        Ok(_) => Some(crate::input::read_bytes(
            &real,
            "file",
            crate::input::MAX_CONFIG,
        )?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", real.display())),
    };
    let (edited, same) = match &existing {
        Some(b) if b == a.content.as_bytes() => (false, true),
        Some(b) => (!ours(a.file, &sha256(b)), false),
        None => (false, false),
    };
    let owner = if same {
        None
    } else {
        crate::atomic::keep_of(&real)
            .filter(|k| !crate::atomic::can_keep_owner(k))
            .map(|k| format!("`{}` (uid {}, gid {})", a.file, k.uid, k.gid))
    };
    Ok(Step {
        artifact: a,
        path,
        edited,
        same,
        owner,
    })
}

/// Nothing is written when a file would change owner, or (without
/// --force) when one is someone else's.
fn refuse_to_take(dir: &Path, steps: &[Step], force: bool) -> Result<()> {
    let owners: Vec<&str> = steps.iter().filter_map(|s| s.owner.as_deref()).collect();
    if !owners.is_empty() {
        return Err(Error::plain(
            format!(
                "cannot keep the owner of {} in `{}`: replacing would hand them to this user; nothing was written",
                owners.join(", "),
                dir.display()
            ),
            "run dbtune as their owner or as root",
        )
        .into());
    }
    let conflicts: Vec<&str> = steps
        .iter()
        .filter(|s| s.edited)
        .map(|s| s.artifact.file)
        .collect();
    if !conflicts.is_empty() && !force {
        return Err(Error::plain(
            format!(
                "not overwriting {} in `{}`: changed since dbtune wrote {}, or not written by dbtune",
                conflicts.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
                dir.display(),
                if conflicts.len() == 1 { "it" } else { "them" }
            ),
            "see what differs with `dbtune render --check --out DIR` (same flags); \
             --force writes anyway and keeps each of these as FILE.bak",
        )
        .into());
    }
    Ok(())
}

/// The journal first: from here on, a kill leaves contents dbtune knows.
fn write_journal(dir: &Path, journal: Journal, steps: &[Step]) -> Result<()> {
    let pending: Vec<(String, String)> = steps
        .iter()
        .filter(|s| !s.same)
        .map(|s| {
            (
                s.artifact.file.to_string(),
                sha256(s.artifact.content.as_bytes()),
            )
        })
        .collect();
    if !pending.is_empty() {
        let mut merged = journal;
        merged.files.extend(pending);
        crate::atomic::replace(
            &dir.join(JOURNAL),
            (serde_json::to_string_pretty(&merged)? + "\n").as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// What `--check` found: a unified diff per differing or missing file, and
/// which of those were changed by hand (not what dbtune last wrote).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub diff: String,
    pub edited: Vec<String>,
}

/// Compares the artifacts with `dir`; an empty diff when everything matches.
pub fn check_dir(dir: &Path, artifacts: &[Artifact]) -> Result<CheckReport> {
    let _lock = if dir.is_dir() {
        Some(lock_dir(dir, false)?)
    } else {
        None
    };
    let manifest = if dir.is_dir() {
        read_manifest(dir)?
    } else {
        None
    };
    let mut out = CheckReport::default();
    for a in artifacts {
        let path = dir.join(a.file);
        let old = if std::fs::symlink_metadata(&path).is_ok() {
            Some(crate::input::read_bytes(
                &path,
                "file",
                crate::input::MAX_CONFIG,
            )?)
        } else {
            None
        };
        if old.as_deref() == Some(a.content.as_bytes()) {
            continue;
        }
        if let Some(bytes) = &old {
            let ours = manifest
                .as_ref()
                .and_then(|m| m.files.get(a.file))
                .is_some_and(|h| *h == sha256(bytes));
            if !ours {
                out.edited.push(a.file.to_string());
            }
        }
        let old_text = old
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let old_name = if path.exists() {
            format!("a/{}", a.file)
        } else {
            "/dev/null".to_string()
        };
        let diff = similar::TextDiff::from_lines(&old_text, &a.content);
        out.diff.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&old_name, &format!("b/{}", a.file))
                .to_string(),
        );
    }
    Ok(out)
}
