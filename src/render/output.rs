//! Writing rendered files: atomically, never over a file someone edited
//! since dbtune wrote it, never through a link that leaves the directory,
//! with a manifest that makes the directory self-describing, and removing
//! what a render no longer owns. And `--check`: the same comparison
//! without writing.
//!
//! What proves that dbtune wrote a file is its hash in the manifest (or in
//! the journal of a run that was killed), and only when those state files
//! could not have been written by another user: see [`atomic::State`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Artifact;
use crate::atomic::{self, Dir, Judged, State, Swap, Target};
use crate::error::{Error, Place};
pub use crate::manifest::sha256;
use crate::manifest::{is_file_name, is_sha256, Manifest, MANIFEST};

/// Written before any file is replaced and removed after the manifest:
/// when a run is killed in between, the next one knows which contents
/// were dbtune's own, so it never blames a hand edit that did not happen.
const JOURNAL: &str = ".dbtune-pending.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    files: BTreeMap<String, String>,
}

/// What the directory's state files prove dbtune wrote.
#[derive(Debug, Default)]
struct Record {
    /// The manifest, when trusted.
    manifest: Option<Manifest>,
    /// The journal's hashes, when trusted.
    journal: BTreeMap<String, String>,
    /// State files present but not trusted, and why.
    distrusted: Vec<String>,
}

impl Record {
    fn read(out: &Dir) -> Result<Record> {
        let mut r = Record::default();
        match out.read_state(MANIFEST, crate::input::MAX_DOCUMENT)? {
            State::Missing => {}
            State::Trusted(bytes) => {
                let shown = out.shown(MANIFEST);
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::input(
                        Place::file(shown.display()),
                        "the manifest is not valid UTF-8",
                        "restore it from version control, or remove it and render with --force",
                    )
                })?;
                r.manifest = Some(Manifest::parse(&text, &shown)?);
            }
            State::Untrusted(why) => r.distrusted.push(format!("`{MANIFEST}`: {why}")),
        }
        match out.read_state(JOURNAL, crate::input::MAX_DOCUMENT)? {
            State::Missing => {}
            // A journal dbtune cannot read proves nothing; it is rewritten.
            State::Trusted(bytes) => {
                r.journal = serde_json::from_slice::<Journal>(&bytes)
                    .map(|j| j.files)
                    .unwrap_or_default();
                r.journal
                    .retain(|name, hash| is_file_name(name) && is_sha256(hash));
            }
            State::Untrusted(why) => r.distrusted.push(format!("`{JOURNAL}`: {why}")),
        }
        Ok(r)
    }

    /// Whether `hash` is what dbtune last wrote (or was writing) as `file`.
    fn ours(&self, file: &str, hash: &str) -> bool {
        self.manifest
            .as_ref()
            .and_then(|m| m.files.get(file))
            .is_some_and(|h| h == hash)
            || self.journal.get(file).is_some_and(|h| h == hash)
    }

    /// Whether `data` is anything dbtune wrote or was writing here.
    fn known(&self, data: &[u8]) -> bool {
        let h = sha256(data);
        self.manifest
            .as_ref()
            .is_some_and(|m| m.files.values().any(|x| *x == h))
            || self.journal.values().any(|x| *x == h)
    }

    /// Every file the state files say dbtune wrote or was writing.
    fn recorded(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.journal.keys().cloned().collect();
        if let Some(m) = &self.manifest {
            all.extend(m.files.keys().cloned());
        }
        all
    }

    /// Why files may be listed as not dbtune's although it wrote them.
    fn distrust_note(&self) -> String {
        if self.distrusted.is_empty() {
            return String::new();
        }
        format!(
            "\nnote: {} proves nothing, so no file counts as dbtune's: {}. dbtune trusts its \
             state files only as regular files owned by this user or root and writable by no one \
             else",
            if self.distrusted.len() == 1 {
                "this state file"
            } else {
                "these state files"
            },
            self.distrusted.join("; ")
        )
    }
}

#[derive(Debug, Default)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// Files someone else wrote, replaced with --force: where each went.
    pub backed_up: Vec<(String, PathBuf)>,
    /// Files dbtune no longer renders for these inputs, removed.
    pub removed: Vec<String>,
    /// Files changed (or created) while dbtune replaced them: where the
    /// change was kept.
    pub raced: Vec<(String, PathBuf)>,
    /// Temporary files a killed run had left, now removed.
    pub cleaned: Vec<String>,
    /// What a killed run had displaced and not yet compared, kept.
    pub kept_leftovers: Vec<(String, PathBuf)>,
    /// Files that are symlinks, written through to their target.
    pub through_links: Vec<(String, PathBuf)>,
    /// State files that proved nothing, and why.
    pub distrusted: Vec<String>,
}

impl WriteReport {
    /// Files changed while dbtune replaced them, as the error a render
    /// without --force ends with (everything else was written).
    pub fn raced_error(&self, dir: &Path) -> Option<Error> {
        if self.raced.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .raced
            .iter()
            .map(|(f, bak)| {
                let doing = if self.removed.contains(f) {
                    "removing it (no longer rendered)"
                } else {
                    "replacing it: the rendered file is in place"
                };
                format!(
                    "`{f}` changed while dbtune was {doing}, and your version is kept as `{}`",
                    bak.display()
                )
            })
            .collect();
        Some(Error::plain(
            format!(
                "{} (in `{}`); nothing is lost, but the change is not in the file",
                each.join("; "),
                dir.display()
            ),
            "compare your version with the file and carry over what you still want (a change \
             that should last belongs in the profile or a template); keep editors out of the \
             directory while dbtune renders into it",
        ))
    }
}

/// What to do with one artifact.
struct Step<'a> {
    artifact: &'a Artifact,
    target: Target,
    judged: Option<Judged>,
    /// Someone else's content: kept as .bak first (with --force).
    edited: bool,
    same: bool,
    /// An owner that replacing the file would not keep (not root).
    owner: Option<String>,
}

/// A file dbtune wrote earlier and no longer renders for these inputs.
struct Stale {
    file: String,
    /// Its content when it is dbtune's own (then it is removed).
    ours: Option<Vec<u8>>,
}

/// Writes the artifacts and the manifest into `dir`, holding the
/// directory's lock throughout. `owned` is every file render makes for
/// these inputs, written now or not (`--only`): a file the state files
/// record and `owned` lacks is removed when it is still dbtune's own, and
/// treated as an edited file otherwise (None: not known, nothing is
/// removed).
///
/// A file that exists and differs from what dbtune last wrote, or that
/// dbtune never wrote, is someone's: without `force` nothing is written
/// and the list is returned as an error; with `force` each is kept as a
/// `.bak`. Existing files keep their mode and owner; symlinks inside the
/// directory are written through, one leaving it is refused. The manifest
/// is written last, after every file is in place.
pub fn write_dir(
    dir: &Path,
    artifacts: &[Artifact],
    owned: Option<&BTreeSet<&str>>,
    mut manifest: Manifest,
    force: bool,
) -> Result<WriteReport> {
    make_out_dir(dir)?;
    let out = Dir::open(dir).with_context(|| format!("cannot open `{}`", dir.display()))?;
    let _lock = out.lock(true)?;
    let record = Record::read(&out)?;
    let mut report = WriteReport {
        distrusted: record.distrusted.clone(),
        ..Default::default()
    };
    // Where each file lands, before anything is written: a link leaving
    // the directory stops the render here.
    let targets = artifacts
        .iter()
        .map(|a| Target::resolve(&out, a.file))
        .collect::<Result<Vec<_>, Error>>()?;
    clean(&out, &targets, &record, &mut report)?;
    let mut steps = Vec::new();
    for (a, t) in artifacts.iter().zip(targets) {
        steps.push(step(a, t, &record, &mut report)?);
    }
    let stale = stale_files(&out, owned, &record)?;
    refuse_to_take(dir, &steps, &stale, &record, force)?;
    write_journal(&out, &record, &steps)?;
    for st in &steps {
        let a = st.artifact;
        if st.same {
            report.unchanged.push(a.file.to_string());
        } else {
            let done = st.target.swap(&Swap {
                data: a.content.as_bytes(),
                judged: st.judged.as_ref(),
                new_mode: if a.executable { 0o755 } else { 0o644 },
                new_owner: None,
                backup: st.edited,
            })?;
            if let Some(b) = done.backup {
                report.backed_up.push((a.file.to_string(), b));
            }
            if let Some(b) = done.raced {
                report.raced.push((a.file.to_string(), b));
            }
            report.written.push(a.file.to_string());
        }
        manifest
            .files
            .insert(a.file.to_string(), sha256(a.content.as_bytes()));
    }
    for s in &stale {
        let done = out.take_out(&s.file, s.ours.as_deref(), s.ours.is_none())?;
        if let Some(b) = done.backup {
            report.backed_up.push((s.file.clone(), b));
        }
        if let Some(b) = done.raced {
            report.raced.push((s.file.clone(), b));
        }
        report.removed.push(s.file.clone());
    }
    keep_records(&out, owned, &record, &mut manifest);
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    out.write_state(MANIFEST, json.as_bytes())?;
    out.remove_state(JOURNAL)?;
    Ok(report)
}

/// Temporary files a killed run left in each directory written to: what
/// dbtune wrote goes, anything else is kept as a backup.
fn clean(out: &Dir, targets: &[Target], record: &Record, report: &mut WriteReport) -> Result<()> {
    let mut dirs: Vec<&Dir> = vec![out];
    for t in targets {
        if !dirs.iter().any(|d| d.same_as(&t.dir)) {
            dirs.push(&t.dir);
        }
    }
    for d in dirs {
        // A state file's temporary file is dbtune's whatever it holds.
        let left = atomic::clean_leftovers(d, &|file, b| {
            file == MANIFEST || file == JOURNAL || record.known(b)
        })?;
        report.cleaned.extend(left.removed);
        report.kept_leftovers.extend(left.kept);
    }
    Ok(())
}

/// Files recorded as dbtune's that these inputs no longer render.
fn stale_files(out: &Dir, owned: Option<&BTreeSet<&str>>, record: &Record) -> Result<Vec<Stale>> {
    let mut stale = Vec::new();
    let Some(owned) = owned else {
        return Ok(stale);
    };
    for file in record.recorded() {
        if owned.contains(file.as_str()) || !is_file_name(&file) {
            continue;
        }
        let ours = match out.peek(&file, crate::input::MAX_CONFIG)? {
            atomic::Peek::Missing => continue,
            atomic::Peek::File(bytes) => record.ours(&file, &sha256(&bytes)).then_some(bytes),
            // A link or anything else there is not dbtune's to remove.
            atomic::Peek::Other => None,
        };
        stale.push(Stale { file, ours });
    }
    Ok(stale)
}

/// Files render owns but did not write now (`--only`) keep their record:
/// the hash of the manifest or journal that the file holds, else the
/// manifest's.
fn keep_records(
    out: &Dir,
    owned: Option<&BTreeSet<&str>>,
    record: &Record,
    manifest: &mut Manifest,
) {
    for file in record.recorded() {
        if manifest.files.contains_key(&file) || owned.is_some_and(|o| !o.contains(file.as_str())) {
            continue;
        }
        let before = record.manifest.as_ref().and_then(|m| m.files.get(&file));
        let now = match out.peek(&file, crate::input::MAX_CONFIG) {
            Ok(atomic::Peek::File(b)) => Some(sha256(&b)),
            _ => None,
        };
        let keep = match now {
            Some(h) if record.ours(&file, &h) => Some(h),
            _ => before.cloned(),
        };
        if let Some(h) = keep {
            manifest.files.insert(file, h);
        }
    }
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

/// What writing one artifact means: where it lands, whether the file
/// there is the same, or someone else's.
fn step<'a>(
    a: &'a Artifact,
    target: Target,
    record: &Record,
    report: &mut WriteReport,
) -> Result<Step<'a>> {
    if let Some(real) = &target.through_link {
        report
            .through_links
            .push((a.file.to_string(), real.clone()));
    }
    let judged = target.judge(crate::input::MAX_CONFIG)?;
    let (edited, same) = match &judged {
        Some(j) if j.bytes == a.content.as_bytes() => (false, true),
        Some(j) => (!record.ours(a.file, &sha256(&j.bytes)), false),
        None => (false, false),
    };
    let owner = match &judged {
        Some(j) if !same && !atomic::can_keep_owner(&j.keep) => Some(format!(
            "`{}` (uid {}, gid {})",
            a.file, j.keep.uid, j.keep.gid
        )),
        _ => None,
    };
    Ok(Step {
        artifact: a,
        target,
        judged,
        edited,
        same,
        owner,
    })
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Nothing is written when a file would change owner, or (without
/// --force) when one is someone else's.
fn refuse_to_take(
    dir: &Path,
    steps: &[Step],
    stale: &[Stale],
    record: &Record,
    force: bool,
) -> Result<()> {
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
    let edited: Vec<&str> = steps
        .iter()
        .filter(|s| s.edited)
        .map(|s| s.artifact.file)
        .collect();
    let gone: Vec<&str> = stale
        .iter()
        .filter(|s| s.ours.is_none())
        .map(|s| s.file.as_str())
        .collect();
    if force || (edited.is_empty() && gone.is_empty()) {
        return Ok(());
    }
    let mut what = Vec::new();
    if !edited.is_empty() {
        what.push(format!("not overwriting {}", quoted(&edited)));
    }
    if !gone.is_empty() {
        what.push(format!(
            "not removing {} (no longer rendered for these inputs)",
            quoted(&gone)
        ));
    }
    let n = edited.len() + gone.len();
    Err(Error::plain(
        format!(
            "{} in `{}`: changed since dbtune wrote {}, or not written by dbtune; nothing was \
             written{}",
            what.join("; "),
            dir.display(),
            if n == 1 { "it" } else { "them" },
            record.distrust_note()
        ),
        "see what differs with `dbtune render --check --out DIR` (same flags); \
         --force writes anyway and keeps each of these as FILE.bak",
    )
    .into())
}

/// The journal first: from here on, a kill leaves contents dbtune knows.
fn write_journal(out: &Dir, record: &Record, steps: &[Step]) -> Result<()> {
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
        let mut merged = Journal {
            files: record.journal.clone(),
        };
        merged.files.extend(pending);
        out.write_state(
            JOURNAL,
            (serde_json::to_string_pretty(&merged)? + "\n").as_bytes(),
        )?;
    }
    Ok(())
}

/// What `--check` found: a unified diff per differing, missing or no
/// longer rendered file, and which of those were changed by hand (not
/// what dbtune last wrote).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub diff: String,
    pub edited: Vec<String>,
    /// Files recorded as dbtune's that these inputs no longer render.
    pub stale: Vec<String>,
    /// Why files counted as changed by hand although dbtune may have
    /// written them (the state files prove nothing), or empty.
    pub distrust_note: String,
}

/// Compares the artifacts with `dir`, reading the state files as render
/// does (the journal of a killed run included); an empty diff when
/// everything matches.
pub fn check_dir(
    dir: &Path,
    artifacts: &[Artifact],
    owned: Option<&BTreeSet<&str>>,
) -> Result<CheckReport> {
    let out = if dir.is_dir() {
        Some(Dir::open(dir).with_context(|| format!("cannot open `{}`", dir.display()))?)
    } else {
        None
    };
    let _lock = out.as_ref().map(|d| d.lock(false)).transpose()?;
    let record = match &out {
        Some(d) => Record::read(d)?,
        None => Record::default(),
    };
    let mut report = CheckReport {
        distrust_note: record.distrust_note(),
        ..Default::default()
    };
    for a in artifacts {
        // Read as render would write: a link leaving the directory is
        // refused here too, never read.
        let old = match &out {
            Some(d) => Target::resolve(d, a.file)?
                .judge(crate::input::MAX_CONFIG)?
                .map(|j| j.bytes),
            None => None,
        };
        if old.as_deref() == Some(a.content.as_bytes()) {
            continue;
        }
        if let Some(bytes) = &old {
            if !record.ours(a.file, &sha256(bytes)) {
                report.edited.push(a.file.to_string());
            }
        }
        report
            .diff
            .push_str(&unified(a.file, old.as_deref(), Some(&a.content)));
    }
    let (Some(out), Some(owned)) = (&out, owned) else {
        return Ok(report);
    };
    for file in record.recorded() {
        if owned.contains(file.as_str()) || !is_file_name(&file) {
            continue;
        }
        let old = match out.peek(&file, crate::input::MAX_CONFIG)? {
            atomic::Peek::Missing => continue,
            atomic::Peek::File(bytes) => Some(bytes),
            atomic::Peek::Other => None,
        };
        if !old.as_ref().is_some_and(|b| record.ours(&file, &sha256(b))) {
            report.edited.push(file.clone());
        }
        report.diff.push_str(&unified(
            &file,
            Some(old.as_deref().unwrap_or_default()),
            None,
        ));
        report.stale.push(file);
    }
    Ok(report)
}

/// A unified diff of one file, `None` standing for no file.
fn unified(file: &str, old: Option<&[u8]>, new: Option<&str>) -> String {
    let old_text = old
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let old_name = match old {
        Some(_) => format!("a/{file}"),
        None => "/dev/null".to_string(),
    };
    let new_name = match new {
        Some(_) => format!("b/{file}"),
        None => "/dev/null".to_string(),
    };
    similar::TextDiff::from_lines(old_text.as_str(), new.unwrap_or_default())
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string()
}
