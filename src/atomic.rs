//! Replacing a file so that nothing is lost: the new content goes to a
//! temporary file beside the real one, takes over its mode and owner,
//! reaches the disk, and is renamed over it; a reader sees the old file or
//! the new one, never half. A symlink is written through: its target is
//! replaced and the link stays.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Error;

/// Prefix of dbtune's temporary files; a run that was killed leaves them,
/// and the next run (holding the directory's lock) removes them.
pub const TEMP_PREFIX: &str = ".dbtune-tmp-";

/// Where writing to `path` really lands: `path` itself, or the file a
/// symlink at `path` points to. A link to nowhere is refused.
pub fn resolve_target(path: &Path) -> Result<PathBuf, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => path.canonicalize().map_err(|e| {
            Error::plain(
                format!(
                    "`{}` is a symlink to a file that cannot be reached ({e})",
                    path.display()
                ),
                "fix or remove the link; dbtune writes through links but never replaces them",
            )
        }),
        Ok(m) if !m.is_file() => Err(Error::plain(
            format!("`{}` exists and is not a regular file", path.display()),
            "move it out of the way",
        )),
        _ => Ok(path.to_path_buf()),
    }
}

/// Mode and owner a replacement must keep.
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The mode and owner of an existing file (following links).
pub fn keep_of(path: &Path) -> Option<Keep> {
    std::fs::metadata(path).ok().map(|m| Keep {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// Whether this process could give a new file `keep`'s owner: root can,
/// anyone else only when the owner is already theirs.
pub fn can_keep_owner(keep: &Keep) -> bool {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    uid == 0 || (keep.uid == uid && (keep.gid == gid || in_group(keep.gid)))
}

fn in_group(gid: u32) -> bool {
    // SAFETY: a NULL list with size 0 asks for the count only.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: the buffer holds n entries.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

/// A test hook that stands for `kill -9` at a chosen point:
/// `DBTUNE_FAILPOINT=done:N` aborts once N replacements are complete,
/// `tmp:N` in the Nth one after its temporary file is written.
fn failpoint(stage: &str, n: u32) {
    let Ok(v) = std::env::var("DBTUNE_FAILPOINT") else {
        return;
    };
    if v.split_once(':')
        .is_some_and(|(s, k)| s == stage && k.parse() == Ok(n))
    {
        std::process::abort();
    }
}

static REPLACED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Writes `data` to `path` (through a symlink), keeping the existing
/// file's mode and owner, or giving a new file `new_mode`.
pub fn replace(path: &Path, data: &[u8], new_mode: u32) -> Result<()> {
    let n = REPLACED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    replace_inner(path, data, new_mode, n)?;
    failpoint("done", n);
    Ok(())
}

fn replace_inner(path: &Path, data: &[u8], new_mode: u32, n: u32) -> Result<()> {
    let real = resolve_target(path)?;
    let keep = keep_of(&real);
    let dir = real.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in `{}`", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("cannot write `{}`", real.display()))?;
    let f = tmp.as_file();
    match keep {
        Some(k) => {
            if let Err(e) = std::os::unix::fs::fchown(f, Some(k.uid), Some(k.gid)) {
                return Err(anyhow::Error::new(Error::plain(
                    format!(
                        "cannot keep the owner of `{}` (uid {}, gid {}): {e}",
                        real.display(),
                        k.uid,
                        k.gid
                    ),
                    "run dbtune as that user or as root; nothing was replaced",
                )));
            }
            f.set_permissions(std::fs::Permissions::from_mode(k.mode))?;
        }
        None => f.set_permissions(std::fs::Permissions::from_mode(new_mode))?,
    }
    f.sync_all()
        .with_context(|| format!("cannot write `{}`", real.display()))?;
    failpoint("tmp", n);
    tmp.persist(&real)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace `{}`", real.display()))?;
    // The rename reaches the disk with the directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes temporary files a killed run left in `dir`.
pub fn clean_temp_files(dir: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_file())
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed.push(name);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_survives_and_links_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.conf");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace(&link, b"new", 0o644).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(keep_of(&real).unwrap().mode, 0o640);
        let dangling = dir.path().join("dangling.conf");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(replace(&dangling, b"x", 0o644).is_err());
    }
}
