//! Which files to read: the paths given on the command line, classified by
//! name (else by their first setting), and directories searched for the
//! files render writes, with their manifest.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::Manifest;
use crate::read::include;
use crate::read::settings::{HostSettings, Releases, ServiceSettings};
use crate::service::FileKind;

/// What a file is, from its name, else from its first setting.
pub fn classify(path: &Path) -> Result<FileKind, Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if crate::read::operator::yaml_name(path) {
        // An operator's YAML, whatever its name (cluster.yaml, patroni.yml).
        return Ok(FileKind::Postgres);
    }
    if name.contains("postgresql") || name.starts_with("postgres") {
        return Ok(FileKind::Postgres);
    }
    if name.contains("redis") {
        return Ok(FileKind::Redis);
    }
    if name.contains("pgbouncer") || name.ends_with(".ini") {
        return Ok(FileKind::Pgbouncer);
    }
    if name.contains("sysctl") || name.starts_with("zfs") || name == "99-dbtune.conf" {
        return Ok(FileKind::Os);
    }
    let text = include::read_text(path)?;
    // An operator's YAML under another name (patroni.conf...).
    if crate::read::operator::detect(&text).is_some() {
        return Ok(FileKind::Postgres);
    }
    // The first line that tells: PostgreSQL's own include directives do;
    // a plain `include` is both PostgreSQL's and Redis's, so the next line
    // decides.
    let first = text
        .trim_start_matches(include::BOM)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .find(|l| l.split_whitespace().next() != Some("include"));
    let word = first.and_then(|l| l.split(|c: char| c.is_whitespace() || c == '=').next());
    if matches!(word, Some("include_if_exists" | "include_dir")) {
        return Ok(FileKind::Postgres);
    }
    match first {
        Some(l) if l.starts_with('[') => Ok(FileKind::Pgbouncer),
        Some(l) if l.starts_with("options ") => Ok(FileKind::Os),
        Some(l) if l.starts_with("vm.") || l.starts_with("kernel.") || l.starts_with("net.") => {
            Ok(FileKind::Os)
        }
        Some(l) if l.contains('=') => Ok(FileKind::Postgres),
        Some(_) => Ok(FileKind::Redis),
        None => Err(Error::plain(
            format!(
                "`{}` has no settings, so dbtune cannot tell what it configures",
                path.display()
            ),
            "name it postgresql.conf, redis.conf or pgbouncer.ini",
        )),
    }
}

/// What a path is (following links), None when nothing is there; any other
/// failure (permission denied on it or a directory above it) is an error
/// that says so, never taken for a missing file.
fn stat(p: &Path) -> Result<Option<std::fs::Metadata>, Error> {
    match std::fs::metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::plain(
            format!("cannot read `{}`: {e}", p.display()),
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                "the user running dbtune may not read it: check the permissions of the file and of every \
                 directory above it (ls -ld), or run dbtune as a user who can"
            } else {
                "check the path"
            },
        )),
    }
}

/// Config files and the manifest found under the paths given.
#[derive(Debug, Default)]
pub struct Found {
    pub postgres: Option<PathBuf>,
    pub redis: Option<PathBuf>,
    pub pgbouncer: Option<PathBuf>,
    pub os: Vec<PathBuf>,
    pub manifest: Option<Manifest>,
    /// The directory the manifest is in.
    pub manifest_dir: Option<PathBuf>,
    /// PostgreSQL's settings read from an operator's YAML (the file in
    /// `postgres`), read when found: the host to judge them on depends on
    /// what it says (its memory limit, its image).
    pub deployment: Option<(ServiceSettings, crate::read::operator::Deployment)>,
}

impl Found {
    /// Takes the manifest of `dir`: a set judged with one manifest gives
    /// one answer; two rendered directories in one check are refused.
    fn take_manifest(&mut self, dir: &Path, m: Manifest) -> Result<(), Error> {
        let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        match &self.manifest_dir {
            Some(prev) if *prev != canon => Err(Error::plain(
                format!(
                    "files from two rendered directories: `{}` and `{}` each have a manifest",
                    prev.display(),
                    dir.display()
                ),
                "check one host at a time",
            )),
            _ => {
                self.manifest = Some(m);
                self.manifest_dir = Some(canon);
                Ok(())
            }
        }
    }
}

/// The manifest beside a file named on the command line, when it lists
/// that file: render's files are judged as render meant them whether the
/// directory or the files are named.
fn manifest_listing(file: &Path) -> anyhow::Result<Option<(PathBuf, Manifest)>> {
    let dir = match file.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => return Ok(None),
    };
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    Ok(crate::manifest::read_manifest(dir)?
        .filter(|m| m.files.contains_key(name))
        .map(|m| (dir.to_path_buf(), m)))
}

const DIR_NAMES: &[(&str, FileKind)] = &[
    ("postgresql.conf", FileKind::Postgres),
    ("cluster.yaml", FileKind::Postgres),
    ("patroni.yml", FileKind::Postgres),
    ("redis.conf", FileKind::Redis),
    ("pgbouncer.ini", FileKind::Pgbouncer),
    ("99-dbtune.conf", FileKind::Os),
    ("zfs-arc.conf", FileKind::Os),
];

pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let put = |kind: FileKind, p: PathBuf, found: &mut Found| -> Result<(), Error> {
        let slot = match kind {
            FileKind::Postgres => &mut found.postgres,
            FileKind::Redis => &mut found.redis,
            FileKind::Pgbouncer => &mut found.pgbouncer,
            // Limits are never classified; ZFS module options are OS settings.
            FileKind::Os | FileKind::Zfs | FileKind::Limits => {
                found.os.push(p);
                return Ok(());
            }
        };
        if let Some(prev) = slot.as_ref() {
            return Err(Error::plain(
                format!(
                    "two {} configs: `{}` and `{}`",
                    match kind {
                        FileKind::Postgres => "PostgreSQL",
                        FileKind::Redis => "Redis",
                        _ => "PgBouncer",
                    },
                    prev.display(),
                    p.display()
                ),
                "check one host at a time; included files are followed, so name only the main one",
            ));
        }
        *slot = Some(p);
        Ok(())
    };
    for p in paths {
        match stat(p)? {
            Some(m) if m.is_dir() => {
                let mut any = false;
                for (name, kind) in DIR_NAMES {
                    let f = p.join(name);
                    // Anything but a directory is taken: reading refuses
                    // a pipe or a device and says so.
                    if stat(&f)?.is_some_and(|m| !m.is_dir()) {
                        put(*kind, f, &mut found)?;
                        any = true;
                    }
                }
                if let Some(m) = crate::manifest::read_manifest(p)? {
                    found.take_manifest(p, m)?;
                }
                if !any {
                    return Err(Error::plain(
                        format!("no config file found in `{}`", p.display()),
                        "dbtune looks for postgresql.conf, cluster.yaml, patroni.yml, redis.conf, pgbouncer.ini, \
                         99-dbtune.conf and zfs-arc.conf in a directory; name files directly to check others",
                    )
                    .into());
                }
            }
            Some(_) => {
                put(classify(p)?, p.clone(), &mut found)?;
                if let Some((dir, m)) = manifest_listing(p)? {
                    found.take_manifest(&dir, m)?;
                }
            }
            None => {
                return Err(Error::plain(
                    format!("`{}` does not exist", p.display()),
                    "pass config files or a directory of them",
                )
                .into())
            }
        }
    }
    if let Some(p) = found.postgres.as_ref().filter(|p| {
        // By name, else by content (a Patroni file called patroni.conf).
        crate::read::operator::yaml_name(p)
            || include::read_text(p).is_ok_and(|t| crate::read::operator::detect(&t).is_some())
    }) {
        found.deployment = Some(crate::read::operator::read(p)?);
    }
    Ok(found)
}

/// Loads what was found, following includes.
pub fn load_found(
    found: &Found,
    releases: &Releases,
    root: Option<&Path>,
) -> Result<HostSettings, Error> {
    let mut hs = HostSettings {
        pg_version: releases.pg_version,
        pg_build: releases.pg_build.clone(),
        pg_release: releases.pg_release.clone(),
        redis_version: releases.redis_version.clone(),
        pgbouncer_version: releases.pgbouncer_version.clone(),
        ..Default::default()
    };
    if let Some((s, d)) = &found.deployment {
        hs.postgres = Some(s.clone());
        hs.deployment = Some(d.clone());
    } else if let Some(p) = &found.postgres {
        hs.postgres = Some(include::postgres(p, root)?);
    }
    if let Some(p) = &found.redis {
        hs.redis = Some(include::redis(p, root)?);
    }
    if let Some(p) = &found.pgbouncer {
        hs.pgbouncer = Some(include::pgbouncer(p, root)?);
    }
    if !found.os.is_empty() {
        let mut os = ServiceSettings::default();
        for p in &found.os {
            include::os(p, &mut os)?;
        }
        hs.os = Some(os);
    }
    Ok(hs)
}
