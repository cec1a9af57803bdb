//! Reading config files from disk: size, binary and encoding guards, and
//! include directives followed the way each server follows them (relative to
//! the including file's directory, at most 10 levels deep, cycles refused).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Place};
use crate::input;
use crate::read::grammar::{self, IncludeKind, Item};
use crate::read::settings::{Location, ServiceSettings};

/// PostgreSQL's own limit (CONF_FILE_MAX_DEPTH): the main file is at depth
/// 0 and a file may be read at depth 10, so a chain of ten nested includes
/// is accepted and an eleventh refused. PgBouncer's (MAX_INCLUDE in
/// libusual's cfparser.c) is the same; Redis has none and gets this one.
const MAX_DEPTH: usize = 10;

/// Files one set may read through its includes, counting a file each
/// time it is read: nesting include_dir or globs ten deep multiplies
/// (ten directories of ten files is ten billion reads), and no server's
/// depth limit stops that. Far above any real configuration.
const MAX_FILES: usize = 10_000;

/// The UTF-8 byte order mark some editors put at the start of a file.
pub const BOM: char = '\u{feff}';

/// Reads a config file as UTF-8 text: a regular file of at most
/// [`input::MAX_CONFIG`], never a device or a pipe.
pub fn read_text(path: &Path) -> Result<String, Error> {
    input::read_text(path, "config file", input::MAX_CONFIG)
}

#[derive(Clone, Copy, PartialEq)]
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
    /// Redis's working directory as it reads: a `dir` line changes it
    /// (Redis chdir()s as it reads the line), and a relative include after
    /// it is opened from there.
    redis_cwd: PathBuf,
    /// Absolute include paths are read under this directory (a CI checkout
    /// of /etc), when given.
    root: Option<PathBuf>,
    /// Files read so far (each time it is read), held to MAX_FILES.
    read: usize,
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
            redis_cwd: PathBuf::from("."),
            root: root.map(Path::to_path_buf),
            read: 0,
        }
    }

    fn file(&mut self, path: &Path, from: Option<&Location>) -> Result<(), Error> {
        if let Some(at) = from {
            self.within_root(path, at)?;
        }
        let canon = self.may_enter(path, from)?;
        self.read += 1;
        // An unreadable include is reported at the line that includes it.
        let text = read_text(path).map_err(|e| match from {
            Some(at) => e.or_at(Place::from(at)),
            None => e,
        })?;
        let name = display(path);
        // None of the servers skips a byte order mark: PostgreSQL reads it
        // as letters of the first name, Redis as part of the first word,
        // PgBouncer as a syntax error. Each refuses the file; say so once,
        // plainly, and read the rest as the server would have meant it.
        let text = match text.strip_prefix(BOM) {
            Some(rest) => {
                self.out.syntax_errors.push(bom_error(self.format, &name));
                rest
            }
            None => text.as_str(),
        };
        let items = match self.format {
            Format::Postgres => {
                let parsed = grammar::pg_items(text, &name);
                self.out.syntax_errors.extend(parsed.errors);
                parsed.items
            }
            Format::Redis => grammar::redis_items(text, &name)?,
            Format::PgBouncer => {
                let parsed = grammar::pgbouncer_items(text, &name);
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

    /// Where `target` is from `base`: an absolute path under --root when
    /// given.
    fn resolve(&self, base: &Path, target: &str) -> PathBuf {
        let target_path = Path::new(target);
        match &self.root {
            Some(root) if target_path.is_absolute() => {
                root.join(target_path.strip_prefix("/").unwrap_or(target_path))
            }
            _ => base.join(target),
        }
    }

    /// An include the server cannot open: an error at the including line,
    /// remembered so that check-budget still exits 2 (a file it names was
    /// not read) after reporting everything else.
    fn unread(&mut self, at: &Location, message: String, hint: &str) {
        self.out
            .syntax_errors
            .push(crate::read::settings::SyntaxError {
                at: at.clone(),
                message,
                hint: Some(hint.to_string()),
            });
        self.out.unread.push(at.clone());
    }

    fn server(&self) -> &'static str {
        match self.format {
            Format::Postgres => "PostgreSQL",
            Format::Redis => "Redis",
            Format::PgBouncer => "PgBouncer",
        }
    }

    /// With --root, what an include names must be under it once `..` and
    /// links are resolved: files checked out of a pull request must not
    /// make check-budget read (and echo into a CI log) anything else on
    /// the runner.
    fn within_root(&self, path: &Path, at: &Location) -> Result<(), Error> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let root = root.canonicalize().unwrap_or_else(|_| root.clone());
        // A file that is not there is reported where it is looked for.
        let Ok(real) = path.canonicalize() else {
            return Ok(());
        };
        if real.starts_with(&root) {
            return Ok(());
        }
        Err(Error::input(
            Place::from(at),
            format!(
                "`{}` leads outside --root `{}` (to `{}`): not read",
                display(path),
                root.display(),
                real.display()
            ),
            "under --root every include must stay inside it: write the path as the server's host \
             sees it (/etc/...), without `..` or links out",
        ))
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
                from.map_or_else(|| Place::file(display(path)), Place::from),
                format!(
                    "include cycle: `{}` includes itself through {}",
                    display(path),
                    chain.join(" -> ")
                ),
                "remove one of the include directives",
            ));
        }
        if self.read >= MAX_FILES {
            return Err(Error::input(
                from.map_or_else(|| Place::file(display(path)), Place::from),
                format!(
                    "includes read more than {MAX_FILES} files: `{}` would be one more",
                    display(path)
                ),
                "nested include_dir or globs multiply: include each directory once, from the \
                 main file",
            ));
        }
        // The file about to be read is at depth `stack.len()`.
        if self.stack.len() > MAX_DEPTH {
            return Err(Error::input(
                from.map_or_else(|| Place::file(display(path)), Place::from),
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
            Item::Directive {
                name: key,
                args,
                line,
            } => {
                if self.format == Format::Redis && key == "dir" && args.len() == 1 {
                    self.redis_cwd = self.resolve(&self.redis_cwd.clone(), &args[0]);
                }
                self.out.push_args(&key, args, at(line))
            }
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
                let base = match self.format {
                    Format::Redis => self.redis_cwd.clone(),
                    _ => base.to_path_buf(),
                };
                self.include(&base, kind, &target, &at(line))?;
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
        let path = self.resolve(base, target);
        match kind {
            IncludeKind::File => {
                if !path.exists() {
                    // Reported at the including line, and the rest read on:
                    // the server stops here, but every other finding of the
                    // same pass is worth seeing at once.
                    let hint = match (&self.root, self.format) {
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
                    };
                    self.unread(
                        at,
                        format!(
                            "included file `{}` does not exist: {} refuses to start",
                            display(&path),
                            self.server()
                        ),
                        hint,
                    );
                    return Ok(());
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
                self.within_root(&path, at)?;
                if !path.exists() {
                    self.unread(
                        at,
                        format!(
                            "include_dir `{}` does not exist: PostgreSQL refuses to start",
                            display(&path)
                        ),
                        "fix the path (relative to the including file)",
                    );
                    return Ok(());
                }
                for f in self.include_dir(&path, at)? {
                    self.file(&f, Some(at))?;
                }
                Ok(())
            }
            IncludeKind::Glob => {
                // Redis reads a directory matched by the glob as an empty
                // file (fopen succeeds, fgets reads nothing).
                for f in glob(&path).into_iter().filter(|f| !f.is_dir()) {
                    self.file(&f, Some(at))?;
                }
                Ok(())
            }
        }
    }

    /// The files an `include_dir` reads, as PostgreSQL lists them
    /// (GetConfFilesInDir): names of at least six bytes ending in `.conf`
    /// and not starting with a dot, in strcmp order; each is stat()ed
    /// (following links), a directory skipped, anything else read.
    fn include_dir(&self, dir: &Path, at: &Location) -> Result<Vec<PathBuf>, Error> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::input(
                Place::from(at),
                format!("cannot read include_dir `{}`: {e}", display(dir)),
                "fix the path (relative to the including file)",
            )
        })?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.as_bytes();
                    n.len() >= 6 && n[0] != b'.' && n.ends_with(b".conf")
                })
            })
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let meta = std::fs::metadata(&f).map_err(|e| {
                Error::input(
                    Place::from(at),
                    format!(
                        "`{}` in include_dir `{}` cannot be read: {e}; PostgreSQL refuses to start",
                        display(&f),
                        display(dir)
                    ),
                    "fix or remove it (a link to a file that is gone, or a file you may not read)",
                )
            })?;
            let ft = meta.file_type();
            if ft.is_dir() {
                continue;
            }
            if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket() {
                let kind = if ft.is_fifo() {
                    "a FIFO (named pipe): PostgreSQL would open it and wait for a writer, forever"
                } else if ft.is_socket() {
                    "a socket: PostgreSQL cannot open it and refuses to start"
                } else {
                    "a device, not a config file"
                };
                return Err(Error::input(
                    Place::from(at),
                    format!(
                        "`{}` in include_dir `{}` is {kind}",
                        display(&f),
                        display(dir)
                    ),
                    "remove it from the directory, or rename it so its name does not end in .conf",
                ));
            }
            out.push(f);
        }
        Ok(out)
    }
}

/// What each server says of a file that starts with a byte order mark.
fn bom_error(format: Format, file: &str) -> crate::read::settings::SyntaxError {
    let (server, reads) = match format {
        Format::Postgres => ("PostgreSQL", "as letters of the first name"),
        Format::Redis => ("Redis", "as part of the first line's directive"),
        Format::PgBouncer => ("PgBouncer", "as a syntax error"),
    };
    crate::read::settings::SyntaxError {
        at: Location {
            file: file.to_string(),
            line: 1,
        },
        message: format!(
            "the file starts with a UTF-8 byte order mark (BOM): {server} reads it {reads} and refuses to start"
        ),
        hint: Some(
            "save the file as UTF-8 without a BOM (for example `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`)".into(),
        ),
    }
}

/// Whether a Redis include is a pattern: Redis hands it to glob(3) when it
/// holds `*`, `?` or `[` anywhere, a directory part included.
pub fn is_glob(target: &str) -> bool {
    target.contains(['*', '?', '['])
}

/// glob(3) as Redis calls it (no flags): each part of the path may hold a
/// pattern; a pattern part is matched against the names in the directories
/// found so far (a leading dot only by a dot), a plain part is taken as
/// written; the last part must exist (lstat). The result is sorted. What
/// cannot be listed matches nothing, as glob ignores such errors.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    let parts: Vec<Component> = pattern.components().collect();
    for part in &parts {
        let name = part.as_os_str().as_bytes();
        let Component::Normal(_) = part else {
            found = found.into_iter().map(|d| d.join(part)).collect();
            continue;
        };
        if !is_glob(&String::from_utf8_lossy(name)) {
            found = found.into_iter().map(|d| d.join(part)).collect();
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let list = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(list) else {
                continue;
            };
            for e in entries.flatten() {
                let n = e.file_name();
                if fnmatch(name, n.as_bytes()) {
                    next.push(dir.join(&n));
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.symlink_metadata().is_ok());
    found.sort();
    found
}

/// fnmatch(3) with FNM_PERIOD (what glob asks for): `*` and `?` match any
/// bytes but a leading dot, `[...]` a set (`!` or `^` negates, `a-z`
/// ranges, `[:alpha:]` classes), a backslash escapes the next byte.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        // Only a literal dot (possibly escaped) matches a leading one.
        return pattern.starts_with(b"\\.") && fnmatch_at(&pattern[2..], &name[1..]);
    }
    fnmatch_at(pattern, name)
}

fn fnmatch_at(p: &[u8], n: &[u8]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some(b'*') => (0..=n.len()).any(|i| fnmatch_at(&p[1..], &n[i..])),
        Some(b'?') => !n.is_empty() && fnmatch_at(&p[1..], &n[1..]),
        Some(b'[') => match (bracket(&p[1..], n.first().copied()), n.first()) {
            (Some((true, used)), Some(_)) => fnmatch_at(&p[1 + used..], &n[1..]),
            (Some(_), _) => false,
            // No closing bracket: `[` is itself.
            (None, Some(b'[')) => fnmatch_at(&p[1..], &n[1..]),
            (None, _) => false,
        },
        Some(b'\\') if p.len() > 1 => n.first() == Some(&p[1]) && fnmatch_at(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && fnmatch_at(&p[1..], &n[1..]),
    }
}

/// A bracket expression after its `[`: whether `c` is in it, and how many
/// pattern bytes it took (its `]` included); None when it never closes.
fn bracket(p: &[u8], c: Option<u8>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = 0;
    let negate = matches!(p.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let b = *p.get(i)?;
        if b == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if b == b'[' && p.get(i + 1) == Some(&b':') {
            let rest = &p[i + 2..];
            if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                let class = &rest[..end];
                hit |= match class {
                    b"alpha" => c.is_ascii_alphabetic(),
                    b"digit" => c.is_ascii_digit(),
                    b"alnum" => c.is_ascii_alphanumeric(),
                    b"upper" => c.is_ascii_uppercase(),
                    b"lower" => c.is_ascii_lowercase(),
                    b"space" => c.is_ascii_whitespace() || c == 0x0b,
                    b"punct" => c.is_ascii_punctuation(),
                    b"xdigit" => c.is_ascii_hexdigit(),
                    b"blank" => c == b' ' || c == b'\t',
                    b"cntrl" => c.is_ascii_control(),
                    b"graph" => c.is_ascii_graphic(),
                    b"print" => c.is_ascii_graphic() || c == b' ',
                    _ => false,
                };
                i += 2 + end + 2;
                continue;
            }
        }
        let (lo, next) = match b {
            b'\\' => (*p.get(i + 1)?, i + 2),
            _ => (b, i + 1),
        };
        if p.get(next) == Some(&b'-') && p.get(next + 1).is_some_and(|e| *e != b']') {
            let (hi, after) = match p[next + 1] {
                b'\\' => (*p.get(next + 2)?, next + 3),
                e => (e, next + 2),
            };
            hit |= (lo..=hi).contains(&c);
            i = after;
        } else {
            hit |= lo == c;
            i = next;
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
    use super::*;

    #[test]
    fn patterns_match_like_fnmatch_with_fnm_period() {
        let m = |p: &str, n: &str| fnmatch(p.as_bytes(), n.as_bytes());
        assert!(m("*.conf", "a.conf"));
        assert!(m("redis-*.conf", "redis-1.conf"));
        assert!(!m("*.conf", "a.conf.bak"));
        assert!(m("*", ""));
        assert!(!m("a*b", "ac"));
        assert!(!m("*.conf", ".hidden.conf"), "a leading dot needs a dot");
        assert!(m(".*.conf", ".hidden.conf"));
        assert!(m("?.conf", "a.conf") && !m("?.conf", "ab.conf"));
        assert!(m("[ab].conf", "b.conf") && !m("[ab].conf", "c.conf"));
        assert!(m("[!ab].conf", "c.conf") && !m("[^ab].conf", "a.conf"));
        assert!(m("[0-9][0-9]-*", "01-x") && !m("[0-9]*", "x1"));
        assert!(m("[[:digit:]]*", "7a") && !m("[[:digit:]]*", "a7"));
        assert!(m("[]]", "]") && m("a\\*", "a*") && !m("a\\*", "ab"));
        assert!(m("a[", "a["), "an unclosed bracket is itself");
    }

    #[test]
    fn globs_expand_patterns_in_directory_parts_too() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["a", "b", ".c"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
            std::fs::write(d.path().join(sub).join("x.conf"), "").unwrap();
        }
        std::fs::write(d.path().join("a").join("y.conf"), "").unwrap();
        let names = |pattern: &str| -> Vec<String> {
            glob(&d.path().join(pattern))
                .iter()
                .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("*/x.conf"), ["a/x.conf", "b/x.conf"]);
        assert_eq!(names("?/*.conf"), ["a/x.conf", "a/y.conf", "b/x.conf"]);
        assert_eq!(names(".*/x.conf"), [".c/x.conf"]);
        assert_eq!(names("*/nope.conf"), Vec::<String>::new());
        assert_eq!(names("*"), ["a", "b"]);
    }
}
