//! Grammars: config text -> `ServiceSettings`, every value with file:line.
//!
//! Each follows its server's own grammar for one file's text: PostgreSQL's
//! `name = value` with quoting and escapes (guc-file.l), Redis's argument
//! splitting (sdssplitargs), PgBouncer's ini sections. They return items:
//! settings and include directives; `include` follows them.

use crate::error::{Error, Place};
use crate::read::settings::{Location, ServiceSettings, SyntaxError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeKind {
    /// A file that must exist.
    File,
    /// A file that may be missing (`include_if_exists`).
    IfExists,
    /// Every `*.conf` in a directory, in name order (`include_dir`).
    Dir,
    /// A path that may contain `*`, `?` or `[` in any part (Redis 7's glob).
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
    /// A redis.conf directive and its arguments, as Redis splits them.
    Directive {
        name: String,
        args: Vec<String>,
        line: usize,
    },
    /// A pgbouncer.ini section header.
    Section { name: String, line: usize },
    /// A pgbouncer.ini `key = value`: it belongs to the section open where
    /// it is read, which an `%include` before it may have changed, so the
    /// reader of the items names it (`in_section`).
    Key {
        key: String,
        value: String,
        line: usize,
    },
}

/// A pgbouncer.ini key's name in the section open at its line:
/// `section.key`, or PgBouncer's refusal of a setting outside any section.
pub fn in_section(
    section: Option<&str>,
    key: &str,
    file: &str,
    line: usize,
) -> Result<String, SyntaxError> {
    match section {
        Some(sec) => Ok(format!("{sec}.{key}")),
        None => Err(SyntaxError {
            at: loc(file, line),
            message:
                "setting outside any section: PgBouncer refuses this line (and does not start)"
                    .into(),
            hint: Some("put it under [databases], [users] or [pgbouncer]".into()),
        }),
    }
}

/// Settings of one file without includes (render's own output); an include
/// directive is an error here.
fn no_includes(items: Vec<Item>, file: &str) -> Result<ServiceSettings, Error> {
    let mut out = ServiceSettings {
        files: vec![file.to_string()],
        ..Default::default()
    };
    let mut section: Option<String> = None;
    for it in items {
        match it {
            Item::Set { name, value, line } => out.push(&name, value, loc(file, line)),
            Item::Directive { name, args, line } => out.push_args(&name, args, loc(file, line)),
            Item::Key { key, value, line } => {
                match in_section(section.as_deref(), &key, file, line) {
                    Ok(name) => out.push(&name, value, loc(file, line)),
                    Err(e) => out.syntax_errors.push(e),
                }
            }
            Item::Include { line, .. } => {
                return Err(bad(
                    file,
                    line,
                    "an include directive here cannot be followed",
                    "check files on disk with `dbtune check-budget`, which follows includes",
                ))
            }
            Item::Section { name, line } => {
                out.section(&name, loc(file, line));
                section = Some(name);
            }
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

fn bad(file: &str, line: usize, msg: impl Into<String>, hint: &str) -> Error {
    Error::input(Place::line(file, line), msg, hint)
}

/// postgresql.conf, by PostgreSQL's own grammar (`parse_pg`); an include
/// directive is an error here. Lines the grammar refuses are kept as
/// syntax errors in the settings, for validation to report.
pub fn postgresql_conf(text: &str, file: &str) -> Result<ServiceSettings, Error> {
    let parsed = parse_pg(text, file);
    let mut out = no_includes(parsed.items, file)?;
    out.syntax_errors = parsed.errors;
    Ok(out)
}

/// One postgresql.conf text: its settings and includes, and the lines
/// PostgreSQL's grammar refuses.
#[derive(Debug, Default)]
pub struct PgParse {
    pub items: Vec<Item>,
    pub errors: Vec<SyntaxError>,
}

/// The items of one postgresql.conf text (see `parse_pg`).
pub fn pg_items(text: &str, file: &str) -> PgParse {
    parse_pg(text, file)
}

/// Tokens of PostgreSQL's config lexer (src/backend/utils/misc/guc-file.l).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Id,
    QualifiedId,
    Str,
    UnquotedStr,
    Integer,
    Real,
    Equals,
    Eol,
    Error,
    Eof,
}

/// guc-file.l's lexer: flex picks the longest match, and on a tie the rule
/// written first. LETTER includes every byte from 0x80 (UTF-8 text).
struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
}

fn letter(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn letter_or_digit(c: u8) -> bool {
    letter(c) || c.is_ascii_digit()
}

impl<'a> Lexer<'a> {
    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(self.pos + i).copied()
    }

    fn run(&self, from: usize, f: impl Fn(u8) -> bool) -> usize {
        let mut n = from;
        while self.at(n).is_some_and(&f) {
            n += 1;
        }
        n
    }

    fn id_len(&self, from: usize) -> usize {
        if self.at(from).is_some_and(letter) {
            self.run(from + 1, letter_or_digit)
        } else {
            from
        }
    }

    fn next(&mut self) -> (Tok, &'a [u8]) {
        // [ \t\r]+ and #.* are eaten.
        loop {
            match self.at(0) {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'#') => {
                    while self.at(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let Some(c) = self.at(0) else {
            return (Tok::Eof, &[]);
        };
        if c == b'\n' {
            self.pos += 1;
            return (Tok::Eol, &self.b[self.pos - 1..self.pos]);
        }
        let id = self.id_len(0);
        let qid = if id > 0 && self.at(id) == Some(b'.') && self.at(id + 1).is_some_and(letter) {
            self.id_len(id + 1)
        } else {
            0
        };
        let string = if c == b'\'' { self.string_len() } else { 0 };
        let unquoted = if letter(c) {
            self.run(1, |c| letter_or_digit(c) || b"-._:/".contains(&c))
        } else {
            0
        };
        let sign = usize::from(c == b'-' || c == b'+');
        let integer = {
            let digits = self.run(sign, |c| c.is_ascii_digit());
            let dec = if digits > sign {
                self.run(digits, |c| c.is_ascii_alphabetic())
            } else {
                0
            };
            let hex = if self.at(sign) == Some(b'0')
                && self.at(sign + 1) == Some(b'x')
                && self.at(sign + 2).is_some_and(|c| c.is_ascii_hexdigit())
            {
                let h = self.run(sign + 2, |c| c.is_ascii_hexdigit());
                self.run(h, |c| c.is_ascii_alphabetic())
            } else {
                0
            };
            dec.max(hex)
        };
        let real = {
            let int = self.run(sign, |c| c.is_ascii_digit());
            if self.at(int) == Some(b'.') {
                let frac = self.run(int + 1, |c| c.is_ascii_digit());
                let mut e = frac;
                if matches!(self.at(e), Some(b'e' | b'E')) {
                    let mut k = e + 1;
                    if matches!(self.at(k), Some(b'+' | b'-')) {
                        k += 1;
                    }
                    if self.at(k).is_some_and(|c| c.is_ascii_digit()) {
                        e = self.run(k, |c| c.is_ascii_digit());
                    }
                }
                e
            } else {
                0
            }
        };
        // The rules in guc-file.l's order: the first of the longest wins.
        let candidates = [
            (Tok::Id, id),
            (Tok::QualifiedId, qid),
            (Tok::Str, string),
            (Tok::UnquotedStr, unquoted),
            (Tok::Integer, integer),
            (Tok::Real, real),
            (Tok::Equals, usize::from(c == b'=')),
        ];
        let (mut tok, mut len) = (Tok::Error, 0);
        for (t, l) in candidates {
            if l > len {
                (tok, len) = (t, l);
            }
        }
        if len == 0 {
            // `.`: any one byte (a UTF-8 sequence is letters, never here).
            (tok, len) = (Tok::Error, 1);
        }
        let text = &self.b[self.pos..self.pos + len];
        self.pos += len;
        (tok, text)
    }

    /// `'([^'\\\n]|\\.|'')*'`: the length, or 0 when it does not close on
    /// its line.
    fn string_len(&self) -> usize {
        let mut i = 1;
        loop {
            match self.at(i) {
                None | Some(b'\n') => return 0,
                Some(b'\\') => match self.at(i + 1) {
                    None | Some(b'\n') => return 0,
                    Some(_) => i += 2,
                },
                Some(b'\'') if self.at(i + 1) == Some(b'\'') => i += 2,
                Some(b'\'') => return i + 1,
                Some(_) => i += 1,
            }
        }
    }
}

/// GUC_scanstr: a quoted value without its quotes, `''` as `'` and the
/// backslash escapes \b \f \n \r \t, octal \ooo, and \x as x.
fn unquote(raw: &[u8]) -> String {
    let inner = &raw[1..raw.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'\\' if i + 1 < inner.len() => {
                i += 1;
                match inner[i] {
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let mut v: u32 = 0;
                        let mut n = 0;
                        while n < 3 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                            v = v * 8 + (inner[i] - b'0') as u32;
                            i += 1;
                            n += 1;
                        }
                        out.push(v as u8);
                        continue;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            b'\'' if inner.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ParseConfigFp: per line, a name (an identifier, or two joined by a
/// dot), an optional `=`, one value (an identifier, a quoted string, a
/// number, or an unquoted string: letters, digits and `- . _ : /`), then
/// the end of the line. Anything else is a syntax error at that line, as
/// PostgreSQL reports it; the server refuses to start with one.
pub fn parse_pg(text: &str, file: &str) -> PgParse {
    let mut lx = Lexer {
        b: text.as_bytes(),
        pos: 0,
    };
    let mut out = PgParse::default();
    let mut line = 1;
    loop {
        let (mut tok, mut t) = lx.next();
        if tok == Tok::Eof {
            break;
        }
        if tok == Tok::Eol {
            line += 1;
            continue;
        }
        let start_line = line;
        let fail = |tok: Tok, t: &[u8], out: &mut PgParse| {
            let near = if matches!(tok, Tok::Eol | Tok::Eof) {
                "near end of line".to_string()
            } else {
                format!("near `{}`", String::from_utf8_lossy(t))
            };
            out.errors.push(SyntaxError {
                at: loc(file, start_line),
                message: format!(
                    "syntax error {near}: PostgreSQL refuses this line (and does not start)"
                ),
                hint: Some(
                    "lines are `name = value`; quote values that are not a plain word or number \
                     ('1.5GB', '/var/log/pg', 'a.conf')"
                        .into(),
                ),
            });
        };
        let ok = 'line: {
            if !matches!(tok, Tok::Id | Tok::QualifiedId) {
                break 'line false;
            }
            let name = String::from_utf8_lossy(t).to_ascii_lowercase();
            (tok, t) = lx.next();
            if tok == Tok::Equals {
                (tok, t) = lx.next();
            }
            if !matches!(
                tok,
                Tok::Id | Tok::Str | Tok::Integer | Tok::Real | Tok::UnquotedStr
            ) {
                break 'line false;
            }
            let value = if tok == Tok::Str {
                unquote(t)
            } else {
                String::from_utf8_lossy(t).into_owned()
            };
            let (end, et) = lx.next();
            if !matches!(end, Tok::Eol | Tok::Eof) {
                (tok, t) = (end, et);
                break 'line false;
            }
            let kind = match name.as_str() {
                "include" => Some(IncludeKind::File),
                "include_if_exists" => Some(IncludeKind::IfExists),
                "include_dir" => Some(IncludeKind::Dir),
                _ => None,
            };
            out.items.push(match kind {
                Some(kind) => Item::Include {
                    kind,
                    target: value,
                    line: start_line,
                },
                None => Item::Set {
                    name,
                    value,
                    line: start_line,
                },
            });
            if end == Tok::Eol {
                line += 1;
            } else {
                return out;
            }
            true
        };
        if !ok {
            fail(tok, t, &mut out);
            // Resynchronise at the end of the line.
            while !matches!(tok, Tok::Eol | Tok::Eof) {
                (tok, _) = lx.next();
            }
            if tok == Tok::Eof {
                break;
            }
            line += 1;
        }
    }
    out
}

/// Splits a Redis config line into arguments the way Redis does
/// (sdssplitargs): whitespace-separated, `"double"` quotes with \n \t \"
/// \\ \xHH escapes, `'single'` quotes with only \' escaped. None for
/// unbalanced quotes.
pub fn redis_args(line: &str) -> Option<Vec<String>> {
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
pub fn redis_conf(text: &str, file: &str) -> Result<ServiceSettings, Error> {
    no_includes(redis_items(text, file)?, file)
}

/// The items of one redis.conf text. Old directive names (ziplist, slave)
/// are stored under their current names.
pub fn redis_items(text: &str, file: &str) -> Result<Vec<Item>, Error> {
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
                kind: if crate::read::include::is_glob(target) {
                    IncludeKind::Glob
                } else {
                    IncludeKind::File
                },
                target: target.clone(),
                line: n,
            });
            continue;
        }
        let name = crate::read::catalog::redis_new_name(&name).unwrap_or(name);
        out.push(Item::Directive {
            name,
            args: args[1..].to_vec(),
            line: n,
        });
    }
    Ok(out)
}

/// pgbouncer.ini: `[section]` headers, `key = value`, `;` or `#` comments at
/// the start of a line. Keys are stored as `section.key`, both exactly as
/// written: PgBouncer matches them case-sensitively.
pub fn pgbouncer_ini(text: &str, file: &str) -> Result<ServiceSettings, Error> {
    let parsed = pgbouncer_items(text, file);
    let mut out = no_includes(parsed.items, file)?;
    out.syntax_errors.extend(parsed.errors);
    out.syntax_errors.sort_by_key(|e| e.at.line);
    Ok(out)
}

/// The items of one pgbouncer.ini text, by libusual's ini grammar (the
/// parser PgBouncer uses): a key is letters, digits and `_ . - *`; then `=`; the value is the rest of the line, trailing space
/// trimmed (a `#` after it is part of it). Keys are left to the reader to
/// place in a section (`Item::Key`): an `%include`d file continues the
/// section it was included from, and the last section it opens carries on
/// after it, as in PgBouncer.
pub fn pgbouncer_items(text: &str, file: &str) -> PgParse {
    let mut out = PgParse::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let mut line = raw.trim_start();
        let syntax = |msg: String, out: &mut PgParse| {
            out.errors.push(SyntaxError {
                at: loc(file, n),
                message: format!("{msg}: PgBouncer refuses this line (and does not start)"),
                hint: Some(
                    "lines are [section], key = value, or a comment starting with ; or #".into(),
                ),
            });
        };
        // A section header may be followed by a comment or a setting.
        if let Some(rest) = line.strip_prefix('[') {
            let Some(close) = rest.find(']') else {
                syntax("unclosed section header".into(), &mut out);
                continue;
            };
            out.items.push(Item::Section {
                name: rest[..close].to_string(),
                line: n,
            });
            line = rest[close + 1..].trim_start();
        }
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(target) = line
            .strip_prefix("%include")
            .filter(|t| t.starts_with([' ', '\t']))
        {
            out.items.push(Item::Include {
                kind: IncludeKind::File,
                target: target.trim().to_string(),
                line: n,
            });
            continue;
        }
        // The libusual in PgBouncer 1.18-1.24 has no quoted keys: a key is
        // the run of these characters (possibly empty), then `=`.
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-*".contains(c)))
            .unwrap_or(line.len());
        let (key, rest) = line.split_at(end);
        let Some(value) = rest.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            syntax(format!("expected `=` after `{key}`"), &mut out);
            continue;
        };
        out.items.push(Item::Key {
            key: key.to_string(),
            value: value.trim_start_matches([' ', '\t']).trim_end().to_string(),
            line: n,
        });
    }
    out
}

/// A sysctl.d file (`key = value`) or a modprobe options file
/// (`options zfs zfs_arc_max=N`): both feed the host terms of the budget.
pub fn os_conf(text: &str, file: &str, into: &mut ServiceSettings) -> Result<(), Error> {
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
        let s = postgresql_conf("a = 1\nb = 'open\nc = 3\n", "f").unwrap();
        assert_eq!(s.syntax_errors.len(), 1);
        assert_eq!(s.syntax_errors[0].at.line, 2);
        assert_eq!(s.get("c").unwrap().at.line, 3, "the next line is read");
        let s = postgresql_conf("a = 1 2\n", "f").unwrap();
        assert!(s.syntax_errors[0].message.contains("near `2`"));
    }

    /// What PostgreSQL 15's own lexer accepts and refuses, checked with
    /// `postgres -C` against a config file holding each line.
    #[test]
    fn the_lexer_accepts_and_refuses_what_postgres_does() {
        let refused = [
            "shared_buffers = 1.5GB",
            "work_mem = 0.5MB",
            "include a.conf",
            "log_directory = /var/log/pg",
            "my..custom = 1",
            "work_mem = 1e3",
            "max_connections = 0X10",
            "shared_buffers = 128 MB",
            "search_path = $user",
            "a.b.c = 1",
            "work_mem = 4MB;",
            "work_mem =",
            "= 4MB",
            "work_mem = 'open",
        ];
        for line in refused {
            let p = parse_pg(line, "f");
            assert_eq!(p.errors.len(), 1, "{line}: {:?}", p.items);
        }
        let accepted = [
            ("shared_buffers = '1.5GB'", "shared_buffers", "1.5GB"),
            ("max_connections = 1.5", "max_connections", "1.5"),
            (
                "unix_socket_permissions = 0777",
                "unix_socket_permissions",
                "0777",
            ),
            ("work_mem = -4MB", "work_mem", "-4MB"),
            ("work_mem = +4MB", "work_mem", "+4MB"),
            ("max_connections = 1.", "max_connections", "1."),
            ("max_connections = .5e1", "max_connections", ".5e1"),
            ("x.y = a/b", "x.y", "a/b"),
            ("max_connections 0x64", "max_connections", "0x64"),
            (
                "timezone = Europe/Paris # comment",
                "timezone",
                "Europe/Paris",
            ),
            (
                "log_line_prefix = '%m \\'x\\' it''s'",
                "log_line_prefix",
                "%m 'x' it's",
            ),
            ("Work_Mem = 4MB", "work_mem", "4MB"),
        ];
        for (line, name, value) in accepted {
            let p = parse_pg(line, "f");
            assert!(p.errors.is_empty(), "{line}: {:?}", p.errors);
            match &p.items[..] {
                [Item::Set {
                    name: n, value: v, ..
                }] => {
                    assert_eq!((n.as_str(), v.as_str()), (name, value), "{line}")
                }
                other => panic!("{line}: {other:?}"),
            }
        }
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
        // Kept as written: PgBouncer matches names case-sensitively, so
        // validation can say that Max_Client_Conn is not max_client_conn.
        assert_eq!(s.get("pgbouncer.Max_Client_Conn").unwrap().at.line, 5);
        assert_eq!(
            pgbouncer_ini("x = 1\n", "b").unwrap().syntax_errors.len(),
            1
        );
        let s = pgbouncer_ini("[pgbouncer] ; c\nmax client = 1\n'a b' = 2\n", "b").unwrap();
        assert_eq!(s.syntax_errors.len(), 2, "{:?}", s.syntax_errors);
        assert_eq!(s.syntax_errors[0].at.line, 2);
    }
}
