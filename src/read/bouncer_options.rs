//! PgBouncer's `[databases]` connection strings and `[users]` lines as the
//! target release reads them (src/loader.c: parse_database, parse_user):
//! `key=value` pairs separated by spaces, a value quoted with `'...'` or
//! running to the next space, each key one of the release's options
//! (data/pgbouncer-options.tsv, generated from each release's source by
//! scripts/gen-pgbouncer-options.py). PgBouncer refuses to start on a line
//! it cannot parse, an option it does not know, a port that does not start
//! with digits, a pool mode or load-balancing value it does not know, and a
//! reserved database name; numbers it reads with atoi(), so `5x` is 5 and
//! `many` is 0 without a word (a warning here).

use std::sync::OnceLock;

use crate::read::catalog::BouncerCatalog;
use crate::read::findings::Finding;
use crate::read::settings::{Location, ServiceSettings};
use crate::service::Scope;

struct Row {
    release: String,
    section: String,
    name: String,
    kind: String,
    allows: Vec<String>,
}

fn rows() -> &'static [Row] {
    static ALL: OnceLock<Vec<Row>> = OnceLock::new();
    ALL.get_or_init(|| {
        include_str!("../../data/pgbouncer-options.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Row {
                    release: f[0].to_string(),
                    section: f[1].to_string(),
                    name: f[2].to_string(),
                    kind: f[3].to_string(),
                    allows: f
                        .get(4)
                        .filter(|s| !s.is_empty())
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    })
}

fn version_key(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The option `name` of `section` in `release`.
fn option<'a>(release: &str, section: &str, name: &str) -> Option<&'a Row> {
    rows()
        .iter()
        .find(|r| r.release == release && r.section == section && r.name == name)
}

/// The first release after `release` that has the option.
fn added_in(release: &str, section: &str, name: &str) -> Option<&'static str> {
    let after = version_key(release);
    rows()
        .iter()
        .filter(|r| r.section == section && r.name == name && r.kind != "reserved")
        .filter(|r| version_key(&r.release) > after)
        .min_by_key(|r| version_key(&r.release))
        .map(|r| r.release.as_str())
}

/// The options of a section in a release, for a hint.
fn names(release: &str, section: &str) -> Vec<&'static str> {
    rows()
        .iter()
        .filter(|r| r.release == release && r.section == section && r.kind != "reserved")
        .map(|r| r.name.as_str())
        .collect()
}

/// One `key=value` pair as PgBouncer splits it, or why it cannot.
#[derive(Debug, PartialEq)]
pub enum Pair {
    Ok(String, String),
    Bad(&'static str),
}

/// Splits a connection string as PgBouncer's cstr_get_pair does: spaces (only)
/// skipped; a key up to `=` or a space, then `=`; a value in single quotes
/// (`''` is a quote) or up to the next space, never empty.
pub fn pairs(s: &str) -> Vec<Pair> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ws = |c: u8| c == b' ';
    loop {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return out;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        // Bytes, not a str slice: after a quoted value PgBouncer cuts the
        // next byte whatever it is, so a key can start inside a character.
        let key = String::from_utf8_lossy(&b[k0..i]);
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' || key.is_empty() {
            out.push(Pair::Bad("a key without `=value`"));
            return out;
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    out.push(Pair::Bad("a quote that is not closed"));
                    return out;
                }
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let ch = s[i..].chars().next().expect("in bounds");
                value.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            value.push_str(&s[v0..i]);
        }
        if value.is_empty() {
            out.push(Pair::Bad("an empty value"));
            return out;
        }
        out.push(Pair::Ok(key.to_string(), value));
        if i < b.len() {
            i += 1;
        }
    }
}

/// C's atoi: blanks, a sign, the leading digits; None when there are no
/// digits (atoi gives 0).
fn atoi(v: &str) -> Option<i64> {
    let t = v.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    Some(sign * digits.parse::<i64>().unwrap_or(i64::MAX))
}

/// The nearest option name within two edits, for "did you mean".
fn nearest(name: &str, options: &[&'static str]) -> Option<&'static str> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    options
        .iter()
        .map(|o| (dist(name, o), *o))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, o)| o)
}

/// Findings for every `[databases]` and `[users]` line, at its line.
pub fn findings(s: &ServiceSettings, version: &str) -> Vec<Finding> {
    let release = BouncerCatalog::get(version).version.as_str();
    let mut out = Vec::new();
    for (key, entries) in &s.entries {
        let Some((section, name)) = key.split_once('.') else {
            continue;
        };
        if section != "databases" && section != "users" {
            continue;
        }
        // PgBouncer reads every line in turn: each is checked.
        for e in entries {
            line(release, section, name, &e.value, &e.at, &mut out);
        }
    }
    out
}

fn line(
    release: &str,
    section: &str,
    name: &str,
    value: &str,
    at: &Location,
    out: &mut Vec<Finding>,
) {
    let v_name = format!("PgBouncer {release}");
    let what = if section == "databases" {
        format!("database `{name}`")
    } else {
        format!("user `{name}`")
    };
    // The `*` fallback is read when a client asks for a database no line
    // names, not at start.
    let fallback = section == "databases" && name == "*";
    let refuses = if fallback {
        format!("{v_name} starts, and fails when a client asks for a database not listed")
    } else {
        format!("{v_name} refuses to start")
    };
    let mut say = |message: String, hint: String| {
        out.push(if fallback {
            Finding::warning(Scope::Pgbouncer, Some(at), message, Some(hint))
        } else {
            Finding::error(Scope::Pgbouncer, Some(at), message, Some(hint))
        });
    };
    if section == "databases"
        && option(release, "databases", name).is_some_and(|r| r.kind == "reserved")
    {
        say(
            format!("database name `{name}` is reserved (the admin console): {refuses}"),
            "name the pool otherwise; `dbname=` keeps the server's database name".into(),
        );
        return;
    }
    // Warnings apart: `say` holds `out` until the last pair.
    let mut notes = Vec::new();
    for pair in pairs(value) {
        let (key, v) = match pair {
            Pair::Ok(k, v) => (k, v),
            Pair::Bad(why) => {
                say(
                    format!("{what}: `{value}` does not parse ({why}): {refuses}"),
                    "write key=value pairs separated by spaces; quote a value with spaces in \
                     single quotes; a comment goes on its own line"
                        .into(),
                );
                break;
            }
        };
        let Some(opt) = option(release, section, &key).filter(|r| r.kind != "reserved") else {
            let options = names(release, section);
            say(
                match added_in(release, section, &key) {
                    Some(v) => format!(
                        "{what}: `{key}` is not a [{section}] option in {v_name}: it was added in {v}; {refuses}"
                    ),
                    None => format!("{what}: unknown option `{key}`: {refuses}"),
                },
                match (added_in(release, section, &key), nearest(&key, &options)) {
                    (Some(v), _) => format!("check against --pgbouncer-version {v}, or remove it"),
                    (None, Some(n)) => format!("did you mean `{n}`?"),
                    (None, None) => format!("[{section}] options in {v_name}: {}", options.join(", ")),
                },
            );
            continue;
        };
        match opt.kind.as_str() {
            "port" if atoi(&v).unwrap_or(0) == 0 => say(
                format!("{what}: port `{v}` is not a port number: {refuses}"),
                "PgBouncer reads no environment variables or templates here: write the number".into(),
            ),
            "int" => match atoi(&v) {
                None => notes.push(Finding::warning(
                    Scope::Pgbouncer,
                    Some(at),
                    format!("{what}: `{key}={v}` is not a number: {v_name} reads it as 0"),
                    Some("write the number; PgBouncer reads no environment variables or templates here".into()),
                )),
                Some(n) if v.trim() != n.to_string() && v.trim() != format!("+{n}") => {
                    notes.push(Finding::warning(
                        Scope::Pgbouncer,
                        Some(at),
                        format!("{what}: `{key}={v}`: {v_name} reads it as {n}"),
                        Some("write the number alone".into()),
                    ))
                }
                _ => {}
            },
            "lookup" if !opt.allows.iter().any(|a| a.eq_ignore_ascii_case(&v)) => say(
                format!("{what}: `{key}={v}` is not a value {v_name} knows: {refuses}"),
                format!("valid values: {}", opt.allows.join(", ")),
            ),
            _ => {}
        }
    }
    out.extend(notes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::grammar;

    fn check(ini: &str, v: &str) -> Vec<Finding> {
        findings(&grammar::pgbouncer_ini(ini, "pgbouncer.ini").unwrap(), v)
    }

    #[test]
    fn pairs_split_as_pgbouncer_does() {
        assert_eq!(
            pairs("host=db port=5432 password='a b''c'"),
            vec![
                Pair::Ok("host".into(), "db".into()),
                Pair::Ok("port".into(), "5432".into()),
                Pair::Ok("password".into(), "a b'c".into()),
            ]
        );
        assert_eq!(
            pairs("host = db"),
            vec![Pair::Ok("host".into(), "db".into())]
        );
        assert_eq!(
            pairs("host=db ; note"),
            vec![
                Pair::Ok("host".into(), "db".into()),
                Pair::Bad("a key without `=value`")
            ]
        );
        assert_eq!(
            pairs("password='open"),
            vec![Pair::Bad("a quote that is not closed")]
        );
        assert_eq!(pairs("host="), vec![Pair::Bad("an empty value")]);
        assert!(pairs("").is_empty());
        // The byte after a closing quote is cut whatever it is (util.c's
        // cstr_get_value), here the first of two: what is left of the
        // character is a key without `=value`, and nothing panics.
        assert_eq!(
            pairs("pool_size='A'®"),
            vec![
                Pair::Ok("pool_size".into(), "A".into()),
                Pair::Bad("a key without `=value`")
            ]
        );
        assert_eq!(
            pairs("pool_size='A'x port=1"),
            vec![
                Pair::Ok("pool_size".into(), "A".into()),
                Pair::Ok("port".into(), "1".into())
            ]
        );
    }

    #[test]
    fn options_are_the_releases() {
        let f = check("[databases]\napp = host=db pool_sise=5\n", "1.24");
        assert!(
            format!("{f:?}").contains("did you mean `pool_size`"),
            "{f:?}"
        );
        let f = check("[databases]\napp = host=db reserve_pool_size=2\n", "1.18");
        assert!(format!("{f:?}").contains("added in 1.24"), "{f:?}");
        assert!(check("[databases]\napp = host=db reserve_pool_size=2\n", "1.24").is_empty());
        let f = check("[users]\napp = max_user_conections=3\n", "1.24");
        assert!(
            format!("{f:?}").contains("did you mean `max_user_connections`"),
            "{f:?}"
        );
        let f = check("[databases]\napp = host=db port=${DB_PORT}\n", "1.24");
        assert!(format!("{f:?}").contains("not a port number"), "{f:?}");
        let f = check("[databases]\napp = host=db pool_size=many\n", "1.24");
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("reads it as 0"), "{f:?}");
        let f = check("[databases]\npgbouncer = host=db\n", "1.20");
        assert!(format!("{f:?}").contains("reserved"), "{f:?}");
        assert!(
            format!("{:?}", check("[databases]\npgbouncer = host=db\n", "1.18"))
                .contains("reserved")
        );
        assert!(check("[databases]\napp = host=db pool_mode=Transaction\n", "1.18").is_empty());
    }
}
