//! Reading config files from disk: size, binary and encoding guards, and
//! include directives followed the way each server follows them (relative to
//! the including file's directory, at most 10 levels deep, cycles refused).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::input;
use crate::read::grammar::{self, IncludeKind, Item};
use crate::read::settings::{Location, ServiceSettings};

/// PostgreSQL's own limit (CONF_FILE_MAX_DEPTH); Redis and PgBouncer get the same.
const MAX_DEPTH: usize = 10;

/// Reads a config file as UTF-8 text: a regular file of at most
/// [`input::MAX_CONFIG`], never a device or a pipe.
pub fn read_text(path: &Path) -> Result<String, Error> {
    input::read_text(path, "config file", input::MAX_CONFIG)
}

#[derive(Clone, Copy)]
enum Format {
    Postgres,
    Redis,
    PgBouncer,
}

struct Loader {
    format: Format,
    out: ServiceSettings,
    /// The files being read, outermost first: canonical (to find a cycle)
    /// and as the user named them (to show it).
    stack: Vec<(PathBuf, String)>,
    section: Option<String>,
    /// Absolute include paths are read under this directory (a CI checkout
    /// of /etc), when given.
    root: Option<PathBuf>,
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

impl Loader {
    fn new(format: Format, root: Option<&Path>) -> Self {
        Loader {
            format,
            out: ServiceSettings::default(),
            stack: Vec::new(),
            section: None,
            root: root.map(Path::to_path_buf),
        }
    }

    fn file(&mut self, path: &Path, from: Option<&Location>) -> Result<(), Error> {
        let canon = self.may_enter(path, from)?;
        // An unreadable include is reported at the line that includes it.
        let text = read_text(path).map_err(|e| match from {
            Some(at) => e.or_at(&at.to_string()),
            None => e,
        })?;
        let name = display(path);
        let items = match self.format {
            Format::Postgres => {
                let parsed = grammar::pg_items(&text, &name);
                self.out.syntax_errors.extend(parsed.errors);
                parsed.items
            }
            Format::Redis => grammar::redis_items(&text, &name)?,
            Format::PgBouncer => {
                let parsed = grammar::pgbouncer_items(&text, &name);
                self.out.syntax_errors.extend(parsed.errors);
                parsed.items
            }
        };
        self.out.files.push(name.clone());
        self.stack.push((canon, display(path)));
        // PostgreSQL reads a relative include from the including file's
        // directory; Redis and PgBouncer open it as given, from their
        // working directory (here: dbtune's).
        let base = match self.format {
            Format::Postgres => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            Format::Redis | Format::PgBouncer => PathBuf::from("."),
        };
        for it in items {
            self.item(it, &name, &base)?;
        }
        self.stack.pop();
        Ok(())
    }

    /// The canonical path of a file not already being read, at a depth the
    /// servers allow.
    fn may_enter(&self, path: &Path, from: Option<&Location>) -> Result<PathBuf, Error> {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.iter().any(|(c, _)| *c == canon) {
            let mut chain: Vec<&str> = self.stack.iter().map(|(_, shown)| shown.as_str()).collect();
            let again = display(path);
            chain.push(&again);
            return Err(Error::input(
                from.map_or(display(path), |l| l.to_string()),
                format!(
                    "include cycle: `{}` includes itself through {}",
                    display(path),
                    chain.join(" -> ")
                ),
                "remove one of the include directives",
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::input(
                from.map_or(display(path), |l| l.to_string()),
                format!("includes nested more than {MAX_DEPTH} deep"),
                "flatten the include chain",
            ));
        }
        Ok(canon)
    }

    /// One setting, section or include of a file being read.
    fn item(&mut self, it: Item, name: &str, base: &Path) -> Result<(), Error> {
        let at = |line: usize| Location {
            file: name.to_string(),
            line,
        };
        match it {
            Item::Set {
                name: key,
                value,
                line,
            } => self.out.push(&key, value, at(line)),
            Item::Key { key, value, line } => {
                match grammar::in_section(self.section.as_deref(), &key, name, line) {
                    Ok(full) => self.out.push(&full, value, at(line)),
                    Err(e) => self.out.syntax_errors.push(e),
                }
            }
            // An included pgbouncer.ini continues the section it was
            // included from, and its last section carries on after it.
            Item::Section { name: sec, line } => {
                self.out.section(&sec, at(line));
                self.section = Some(sec)
            }
            Item::Include { kind, target, line } => {
                self.include(base, kind, &target, &at(line))?;
            }
        }
        Ok(())
    }

    fn include(
        &mut self,
        base: &Path,
        kind: IncludeKind,
        target: &str,
        at: &Location,
    ) -> Result<(), Error> {
        let target_path = Path::new(target);
        let path = match &self.root {
            Some(root) if target_path.is_absolute() => {
                root.join(target_path.strip_prefix("/").unwrap_or(target_path))
            }
            _ => base.join(target),
        };
        match kind {
            IncludeKind::File => {
                if !path.exists() {
                    return Err(Error::input(
                        at.to_string(),
                        format!("included file `{}` does not exist", display(&path)),
                        match (&self.root, self.format) {
                            (None, _) if target_path.is_absolute() => {
                                "an absolute path names the server's host: check a copy of it with --root DIR \
                                 (DIR/etc/... for /etc/...)"
                            }
                            (_, Format::Postgres) => {
                                "fix the path (relative to the including file), or use include_if_exists"
                            }
                            _ => {
                                "Redis and PgBouncer read a relative include from their working directory: \
                                 run dbtune from there, or write the path in full"
                            }
                        },
                    ));
                }
                self.file(&path, Some(at))
            }
            IncludeKind::IfExists => {
                if path.exists() {
                    self.file(&path, Some(at))
                } else {
                    Ok(())
                }
            }
            IncludeKind::Dir => {
                let entries = std::fs::read_dir(&path).map_err(|e| {
                    Error::input(
                        at.to_string(),
                        format!("cannot read include_dir `{}`: {e}", display(&path)),
                        "fix the path (relative to the including file)",
                    )
                })?;
                // PostgreSQL reads *.conf files, skipping hidden ones, in
                // strcmp order of their names.
                let mut files: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && p.extension().is_some_and(|e| e == "conf")
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                files.sort();
                for f in files {
                    self.file(&f, Some(at))?;
                }
                Ok(())
            }
            IncludeKind::Glob => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let pattern = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.path())
                            .filter(|p| {
                                p.is_file()
                                    && p.file_name()
                                        .is_some_and(|n| glob_match(&pattern, &n.to_string_lossy()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort();
                for f in files {
                    self.file(&f, Some(at))?;
                }
                Ok(())
            }
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}

/// postgresql.conf and everything it includes, then `postgresql.auto.conf`
/// beside it when present (PostgreSQL reads it last, so it wins).
pub fn postgres(path: &Path, root: Option<&Path>) -> Result<ServiceSettings, Error> {
    let mut l = Loader::new(Format::Postgres, root);
    l.file(path, None)?;
    let auto = path.with_file_name("postgresql.auto.conf");
    if auto.is_file()
        && path
            .file_name()
            .is_some_and(|n| n != "postgresql.auto.conf")
    {
        l.file(&auto, None)?;
    }
    Ok(l.out)
}

pub fn redis(path: &Path, root: Option<&Path>) -> Result<ServiceSettings, Error> {
    let mut l = Loader::new(Format::Redis, root);
    l.file(path, None)?;
    Ok(l.out)
}

pub fn pgbouncer(path: &Path, root: Option<&Path>) -> Result<ServiceSettings, Error> {
    let mut l = Loader::new(Format::PgBouncer, root);
    l.file(path, None)?;
    Ok(l.out)
}

/// A sysctl.d file or a modprobe options file, added to `into`.
pub fn os(path: &Path, into: &mut ServiceSettings) -> Result<(), Error> {
    let text = read_text(path)?;
    grammar::os_conf(&text, &display(path), into)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_a_shell_star() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(glob_match("redis-*.conf", "redis-1.conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "ac"));
    }
}
