//! Parsers: config text -> `ServiceSettings`, every value with file:line.
//!
//! Each follows its server's own grammar for one file's text: PostgreSQL's
//! `name = value` with quoting and escapes (guc-file.l), Redis's argument
//! splitting (sdssplitargs), PgBouncer's ini sections. They return items:
//! settings and include directives; `load` follows the includes.

use crate::error::InputError;
use crate::settings::{Location, ServiceSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeKind {
    /// A file that must exist.
    File,
    /// A file that may be missing (`include_if_exists`).
    IfExists,
    /// Every `*.conf` in a directory, in name order (`include_dir`).
    Dir,
    /// A file name that may contain `*` (Redis 7).
    Glob,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Set {
        name: String,
        value: String,
        line: usize,
    },
    Include {
        kind: IncludeKind,
        target: String,
        line: usize,
    },
    /// A pgbouncer.ini section header.
    Section { name: String, line: usize },
}

/// Settings of one file without includes (render's own output); an include
/// directive is an error here.
fn no_includes(items: Vec<Item>, file: &str) -> Result<ServiceSettings, InputError> {
    let mut out = ServiceSettings {
        files: vec![file.to_string()],
        ..Default::default()
    };
    for it in items {
        match it {
            Item::Set { name, value, line } => out.push(&name, value, loc(file, line)),
            Item::Include { line, .. } => {
                return Err(bad(
                    file,
                    line,
                    "an include directive here cannot be followed",
                    "check files on disk with `dbtune check-budget`, which follows includes",
                ))
            }
            Item::Section { .. } => {}
        }
    }
    Ok(out)
}

fn loc(file: &str, line: usize) -> Location {
    Location {
        file: file.to_string(),
        line,
    }
}

fn bad(file: &str, line: usize, msg: impl Into<String>, hint: &str) -> InputError {
    InputError::new(format!("{file}:{line}"), msg, hint)
}

/// postgresql.conf: `name = value` or `name value`; values are bare tokens
/// or single-quoted strings (`''` and backslash escapes); `#` starts a
/// comment outside quotes. Names are case-insensitive.
pub fn postgresql_conf(text: &str, file: &str) -> Result<ServiceSettings, InputError> {
    no_includes(pg_items(text, file)?, file)
}

/// The items of one postgresql.conf text.
pub fn pg_items(text: &str, file: &str) -> Result<Vec<Item>, InputError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad(
                file,
                n,
                format!("expected a parameter name, found `{line}`"),
                "lines look like `name = value`",
            ));
        }
        let mut rest = line[name_end..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start();
        }
        let (value, after) = if let Some(q) = rest.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((j, c)) = chars.next() {
                match c {
                    '\'' if q[j + 1..].starts_with('\'') => {
                        v.push('\'');
                        chars.next();
                    }
                    '\'' => {
                        end = Some(j + 1);
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some('r') => v.push('\r'),
                        Some('b') => v.push('\u{8}'),
                        Some('f') => v.push('\u{c}'),
                        Some(o) => v.push(o),
                        None => {}
                    },
                    c => v.push(c),
                }
            }
            let Some(end) = end else {
                return Err(bad(
                    file,
                    n,
                    format!("unterminated quoted value for `{name}`"),
                    "close the string with `'`",
                ));
            };
            (v, &q[end..])
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '#')
                .unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        let after = after.trim_start();
        if !(after.is_empty() || after.starts_with('#')) {
            return Err(bad(
                file,
                n,
                format!("unexpected `{after}` after the value of `{name}`"),
                "quote values that contain spaces: name = 'a b'",
            ));
        }
        let name = name.to_ascii_lowercase();
        let kind = match name.as_str() {
            "include" => Some(IncludeKind::File),
            "include_if_exists" => Some(IncludeKind::IfExists),
            "include_dir" => Some(IncludeKind::Dir),
            _ => None,
        };
        out.push(match kind {
            Some(kind) => Item::Include {
                kind,
                target: value,
                line: n,
            },
            None => Item::Set {
                name,
                value,
                line: n,
            },
        });
    }
    Ok(out)
}

/// Splits a Redis config line into arguments the way Redis does:
/// whitespace-separated, `"double"` quotes with \n \t \" \\ \xHH escapes,
/// `'single'` quotes with only \' escaped.
fn redis_args(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut it = line.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let Some(&first) = it.peek() else {
            return Some(args);
        };
        let mut cur = String::new();
        match first {
            '"' => {
                it.next();
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => match it.next()? {
                            'n' => cur.push('\n'),
                            't' => cur.push('\t'),
                            'r' => cur.push('\r'),
                            'a' => cur.push('\u{7}'),
                            'b' => cur.push('\u{8}'),
                            'x' => {
                                let h: String = [it.next()?, it.next()?].iter().collect();
                                cur.push(u8::from_str_radix(&h, 16).ok()? as char);
                            }
                            c => cur.push(c),
                        },
                        c => cur.push(c),
                    }
                }
                // A closing quote must be followed by a space or the end.
                if it.peek().is_some_and(|c| !c.is_whitespace()) {
                    return None;
                }
            }
            '\'' => {
                it.next();
                loop {
                    match it.next()? {
                        '\'' => break,
                        '\\' if it.peek() == Some(&'\'') => {
                            it.next();
                            cur.push('\'');
                        }
                        c => cur.push(c),
                    }
                }
                if it.peek().is_some_and(|c| !c.is_whitespace()) {
                    return None;
                }
            }
            _ => {
                while let Some(&c) = it.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    cur.push(c);
                    it.next();
                }
            }
        }
        args.push(cur);
    }
}

/// redis.conf: a directive and its arguments per line; `#` starts a comment
/// only at the start of a line. Directive names are case-insensitive.
/// Arguments are stored joined by single spaces.
pub fn redis_conf(text: &str, file: &str) -> Result<ServiceSettings, InputError> {
    no_includes(redis_items(text, file)?, file)
}

/// The items of one redis.conf text. Old directive names (ziplist, slave)
/// are stored under their current names.
pub fn redis_items(text: &str, file: &str) -> Result<Vec<Item>, InputError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args = redis_args(line).ok_or_else(|| {
            bad(
                file,
                n,
                "unbalanced quotes",
                "close the quoted argument, and put a space after the closing quote",
            )
        })?;
        let name = args[0].to_ascii_lowercase();
        if name == "include" {
            let Some(target) = args.get(1) else {
                return Err(bad(
                    file,
                    n,
                    "`include` without a file",
                    "write `include /path/to/file.conf`",
                ));
            };
            out.push(Item::Include {
                kind: if target.contains('*') {
                    IncludeKind::Glob
                } else {
                    IncludeKind::File
                },
                target: target.clone(),
                line: n,
            });
            continue;
        }
        let name = crate::catalog::redis_new_name(&name).unwrap_or(name);
        out.push(Item::Set {
            name,
            value: args[1..].join(" "),
            line: n,
        });
    }
    Ok(out)
}

/// pgbouncer.ini: `[section]` headers, `key = value`, `;` or `#` comments at
/// the start of a line. Keys are stored as `section.key`.
pub fn pgbouncer_ini(text: &str, file: &str) -> Result<ServiceSettings, InputError> {
    no_includes(pgbouncer_items(text, file, &mut None)?, file)
}

/// The items of one pgbouncer.ini text. `section` carries the current
/// section into and out of `%include`d files, as PgBouncer does.
pub fn pgbouncer_items(
    text: &str,
    file: &str,
    section: &mut Option<String>,
) -> Result<Vec<Item>, InputError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[') {
            let Some(name) = s.strip_suffix(']') else {
                return Err(bad(
                    file,
                    n,
                    "unclosed section header",
                    "write it as [section]",
                ));
            };
            let name = name.trim().to_ascii_lowercase();
            out.push(Item::Section {
                name: name.clone(),
                line: n,
            });
            *section = Some(name);
            continue;
        }
        if let Some(target) = line.strip_prefix("%include") {
            out.push(Item::Include {
                kind: IncludeKind::File,
                target: target.trim().to_string(),
                line: n,
            });
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(
                file,
                n,
                format!("expected `key = value`, found `{line}`"),
                "every line in a section is key = value",
            ));
        };
        let Some(sec) = section.as_ref() else {
            return Err(bad(
                file,
                n,
                "setting outside any section",
                "put settings under [pgbouncer] or [databases]",
            ));
        };
        let key = k.trim();
        // Database names keep their case; pgbouncer's own keys do not matter.
        let key = if sec == "databases" || sec == "users" {
            key.to_string()
        } else {
            key.to_ascii_lowercase()
        };
        out.push(Item::Set {
            name: format!("{sec}.{key}"),
            value: v.trim().to_string(),
            line: n,
        });
    }
    Ok(out)
}

/// A sysctl.d file (`key = value`) or a modprobe options file
/// (`options zfs zfs_arc_max=N`): both feed the host terms of the budget.
pub fn os_conf(text: &str, file: &str, into: &mut ServiceSettings) -> Result<(), InputError> {
    into.files.push(file.to_string());
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("options ") {
            let mut words = rest.split_whitespace();
            let module = words.next().unwrap_or("");
            for w in words {
                if let Some((k, v)) = w.split_once('=') {
                    into.push(&format!("{module}.{k}"), v, loc(file, n));
                }
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(
                file,
                n,
                format!("expected `key = value`, found `{line}`"),
                "sysctl.d lines are key = value",
            ));
        };
        into.push(k.trim(), v.trim(), loc(file, n));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_conf_grammar() {
        let text = "# comment\n\
                    shared_buffers = 128MB   # trailing\n\
                    Work_Mem 4MB\n\
                    search_path = '\"$user\", public'\n\
                    log_line_prefix = 'it''s \\'x\\' %m'\n\
                    shared_buffers=256MB\n";
        let s = postgresql_conf(text, "pg.conf").unwrap();
        assert_eq!(s.get("shared_buffers").unwrap().value, "256MB");
        assert_eq!(s.get("shared_buffers").unwrap().at.line, 6);
        assert_eq!(s.all("shared_buffers").len(), 2);
        assert_eq!(s.get("work_mem").unwrap().value, "4MB");
        assert_eq!(s.get("search_path").unwrap().value, "\"$user\", public");
        assert_eq!(s.get("log_line_prefix").unwrap().value, "it's 'x' %m");
    }

    #[test]
    fn postgresql_conf_errors_point_at_the_line() {
        let e = postgresql_conf("a = 1\nb = 'open\n", "f").unwrap_err();
        assert_eq!(e.location.as_deref(), Some("f:2"));
        let e = postgresql_conf("a = 1 2\n", "f").unwrap_err();
        assert!(e.message.contains("unexpected"));
    }

    #[test]
    fn redis_arguments_split_like_redis() {
        assert_eq!(
            redis_args(r#"rename-command FLUSHALL """#).unwrap(),
            vec!["rename-command", "FLUSHALL", ""]
        );
        assert_eq!(
            redis_args(r#"a "x\x41y" 'it\'s'"#).unwrap(),
            vec!["a", "xAy", "it's"]
        );
        assert!(redis_args(r#"a "open"#).is_none());
        assert!(redis_args(r#"a "x"y"#).is_none());
        let s = redis_conf("save 900 1\nSAVE 60 10000\nmaxmemory 1gb\n", "r").unwrap();
        assert_eq!(s.all("save").len(), 2);
        assert_eq!(s.get("maxmemory").unwrap().value, "1gb");
    }

    #[test]
    fn pgbouncer_sections_prefix_keys() {
        let s = pgbouncer_ini(
            "[databases]\napp = host=127.0.0.1 pool_size=20\n[pgbouncer]\n; c\nMax_Client_Conn = 100\n",
            "b",
        )
        .unwrap();
        assert_eq!(
            s.get("databases.app").unwrap().value,
            "host=127.0.0.1 pool_size=20"
        );
        assert_eq!(s.get("pgbouncer.max_client_conn").unwrap().at.line, 5);
        assert!(pgbouncer_ini("x = 1\n", "b").is_err());
    }
}
