//! Writing rendered files: atomically, never over a file someone edited
//! since dbtune wrote it, with a manifest that makes the directory
//! self-describing. And `--check`: the same comparison without writing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Artifact;
use crate::error::InputError;

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
    pub reserves: Vec<crate::budget::HostReserve>,
    /// The budget assumptions of the profile (sorts per query...).
    pub assumptions: crate::budget::Assumptions,
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

pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let p = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", p.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        InputError::new(
            format!("{}:{}", p.display(), e.line()),
            format!("the manifest is not valid: {e}"),
            "dbtune uses it to know which files it wrote; restore it from version control, \
             or remove it and render with --force (edited files are kept as .bak)",
        )
        .into()
    })
}

/// Writes `data` to `path` through a temporary file in the same directory
/// and a rename: a reader sees the old file or the new one, never half.
fn write_atomic(path: &Path, data: &[u8], executable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".dbtune-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace `{}`", path.display()))?;
    Ok(())
}

/// A free backup name: FILE.bak, else FILE.bak.1, FILE.bak.2...
fn backup_path(path: &Path) -> PathBuf {
    let base = format!("{}.bak", path.display());
    let mut p = PathBuf::from(&base);
    let mut n = 1;
    while p.exists() {
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
}

/// Writes the artifacts and the manifest into `dir`.
///
/// A file that exists and differs from what dbtune last wrote (per the
/// manifest), or that dbtune never wrote, is someone's: without `force`
/// nothing is written and the list is returned as an error; with `force`
/// each is kept as a `.bak` first.
pub fn write_dir(
    dir: &Path,
    artifacts: &[Artifact],
    mut manifest: Manifest,
    force: bool,
) -> Result<WriteReport> {
    if dir.exists() && !dir.is_dir() {
        return Err(InputError::plain(
            format!("--out `{}` is a file, not a directory", dir.display()),
            "name a directory; dbtune creates it if it is missing",
        )
        .into());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        InputError::plain(
            format!("cannot create --out directory `{}`: {e}", dir.display()),
            "check the path and its permissions, or print to stdout by leaving out --out",
        )
    })?;
    let previous = read_manifest(dir)?;
    let mut conflicts = Vec::new();
    let mut plan = Vec::new();
    for a in artifacts {
        let path = dir.join(a.file);
        match std::fs::read(&path) {
            Ok(existing) if existing == a.content.as_bytes() => plan.push((a, path, false, true)),
            Ok(existing) => {
                let ours = previous
                    .as_ref()
                    .and_then(|m| m.files.get(a.file))
                    .is_some_and(|h| *h == sha256(&existing));
                if !ours {
                    conflicts.push(a.file.to_string());
                }
                plan.push((a, path, !ours, false));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                plan.push((a, path, false, false))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(InputError::plain(
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
    let mut report = WriteReport::default();
    for (a, path, edited, same) in plan {
        if same {
            report.unchanged.push(a.file.to_string());
        } else {
            if edited {
                let bak = backup_path(&path);
                std::fs::copy(&path, &bak)
                    .with_context(|| format!("cannot keep a backup of `{}`", path.display()))?;
                report
                    .backed_up
                    .push((a.file.to_string(), bak.display().to_string()));
            }
            write_atomic(&path, a.content.as_bytes(), a.executable)?;
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
    write_atomic(&dir.join(MANIFEST), json.as_bytes(), false)?;
    Ok(report)
}

/// Compares the artifacts with `dir`: a unified diff per differing or
/// missing file; empty when everything matches.
pub fn check_dir(dir: &Path, artifacts: &[Artifact]) -> Result<String> {
    let mut out = String::new();
    for a in artifacts {
        let path = dir.join(a.file);
        let old = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        if old != a.content {
            let old_name = if path.exists() {
                format!("a/{}", a.file)
            } else {
                "/dev/null".to_string()
            };
            let diff = similar::TextDiff::from_lines(&old, &a.content);
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&old_name, &format!("b/{}", a.file))
                    .to_string(),
            );
        }
    }
    Ok(out)
}
