//! PostgreSQL's time zone settings as its check hooks read them
//! (check_timezone and check_log_timezone in commands/variable.c, pg_tzset
//! in timezone/pgtz.c, tzparse in timezone/localtime.c): a name of the time
//! zone database (data/pg-timezones.tsv, asked of the servers by
//! scripts/gen-pg-timezones.sh), a POSIX TZ spec such as `EST5EDT` or
//! `<+03>-3`, and for `timezone` alone a number of hours. A value none of
//! these reads stops the server at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::version::PgVersion;

const DATA: &str = include_str!("../../data/pg-timezones.tsv");

/// Where a zone name comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Database {
    /// The tz database PostgreSQL ships and installs (share/timezone).
    Bundled,
    /// Only in the host's own database, which builds configured
    /// --with-system-tzdata read (Debian, Ubuntu, PGDG packages).
    System,
}

/// Zone names by upper case (the servers match them case-insensitively),
/// with the majors that have them.
struct Zones {
    bundled: BTreeMap<String, BTreeSet<u32>>,
    system: BTreeSet<String>,
}

fn zones() -> &'static Zones {
    static ZONES: OnceLock<Zones> = OnceLock::new();
    ZONES.get_or_init(|| {
        let mut z = Zones {
            bundled: BTreeMap::new(),
            system: BTreeSet::new(),
        };
        for line in DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let f: Vec<&str> = line.split('\t').collect();
            let name = f[0].to_ascii_uppercase();
            match f.get(2).copied() {
                Some("system") => {
                    z.system.insert(name);
                }
                _ => {
                    let majors = f
                        .get(1)
                        .map(|m| m.split(',').filter_map(|x| x.parse().ok()).collect())
                        .unwrap_or_default();
                    z.bundled.insert(name, majors);
                }
            }
        }
        z
    })
}

/// Which database has `name` for this major, if one does.
fn in_database(name: &str, version: PgVersion) -> Option<Database> {
    let upper = name.to_ascii_uppercase();
    let z = zones();
    if z.bundled
        .get(&upper)
        .is_some_and(|m| m.contains(&version.major()))
    {
        Some(Database::Bundled)
    } else if z.system.contains(&upper) {
        Some(Database::System)
    } else {
        None
    }
}

/// How PostgreSQL reads a time zone value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A name of the database the server has.
    Zone(Database),
    /// A POSIX TZ spec (`EST5EDT`, `<+03>-3`, `UTC+3`).
    Posix,
    /// A number of hours from UTC (`timezone` only).
    Hours,
    /// `INTERVAL '...'` (`timezone` only): what is inside the quotes is
    /// read by the server's interval input, which dbtune does not judge.
    Interval,
}

/// pg_tzset: a zone file (one leading `:` skipped, any case), `GMT`, or a
/// POSIX spec of the upper-cased value.
fn tzset(value: &str, version: PgVersion) -> Option<Reading> {
    // TZ_STRLEN_MAX
    if value.len() > 255 {
        return None;
    }
    let upper = value.to_ascii_uppercase();
    if upper == "GMT" {
        return Some(Reading::Zone(Database::Bundled));
    }
    if let Some(db) = in_database(value.strip_prefix(':').unwrap_or(value), version) {
        return Some(Reading::Zone(db));
    }
    (!upper.starts_with(':') && posix_spec(upper.as_bytes())).then_some(Reading::Posix)
}

/// check_timezone: `INTERVAL '...'`, then a number of hours (strtod over
/// the whole value, less than a week either way), then pg_tzset.
pub fn timezone(value: &str, version: PgVersion) -> Option<Reading> {
    if value.len() >= 8 && value.as_bytes()[..8].eq_ignore_ascii_case(b"interval") {
        // `interval`, spaces, a quote, and the next quote ends the value.
        let rest = value[8..].trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        let inner = rest.strip_prefix('\'')?;
        return (inner.find('\'') == Some(inner.len() - 1)).then_some(Reading::Interval);
    }
    let (hours, end) = crate::read::pgvalue::c_strtod(value.as_bytes());
    if end > 0 && end == value.len() {
        // strtod's ERANGE: an underflow is a zero offset, an overflow inf.
        let hours = hours.or_else(|| value.trim().parse::<f64>().ok());
        // pg_tzset_offset writes the offset as whole hours (at most 167)
        // and tzparse reads it back.
        return hours
            .filter(|h| h.is_finite() && (h * 3600.0).trunc().abs() < 168.0 * 3600.0)
            .map(|_| Reading::Hours);
    }
    tzset(value, version)
}

/// check_log_timezone: pg_tzset alone (no interval, no number of hours,
/// though a bare number is a POSIX spec with an empty abbreviation).
pub fn log_timezone(value: &str, version: PgVersion) -> Option<Reading> {
    tzset(value, version)
}

/// The zone name a value probably meant (`Europe/Pari`, `utc+`), if one
/// of the major's bundled names is close.
pub fn suggest(value: &str, version: PgVersion) -> Option<String> {
    let upper = value.to_ascii_uppercase();
    let names: Vec<&str> = zones()
        .bundled
        .iter()
        .filter(|(_, majors)| majors.contains(&version.major()))
        .map(|(n, _)| n.as_str())
        .collect();
    let close = crate::read::catalog::Suggestions::new().closest(&upper, names.into_iter());
    // Shown as the database spells it.
    let found = close.found()?.to_string();
    DATA.lines()
        .filter_map(|l| l.split('\t').next())
        .find(|n| n.eq_ignore_ascii_case(&found))
        .map(str::to_string)
}

/// tzparse (not the last-ditch case): STD OFFSET [DST [OFFSET] [,RULE,RULE]],
/// a name unquoted (no digit, `,`, `-` or `+`; PostgreSQL allows an empty
/// standard one) or in `<...>`, offsets `[+-]hh[:mm[:ss]]` (hours to 167),
/// rules `Jn`, `n` or `Mm.w.d` with an optional `/offset`. A DST name
/// without rules takes the US rules.
pub fn posix_spec(s: &[u8]) -> bool {
    let zname = |mut i: usize| -> Option<(usize, usize)> {
        // (end of the name, end of the token)
        if s.get(i) == Some(&b'<') {
            i += 1;
            let start = i;
            while i < s.len() && s[i] != b'>' {
                i += 1;
            }
            (s.get(i) == Some(&b'>')).then_some((i - start, i + 1))
        } else {
            let start = i;
            while i < s.len() && !s[i].is_ascii_digit() && !b",-+".contains(&s[i]) {
                i += 1;
            }
            Some((i - start, i))
        }
    };
    let Some((_, i)) = zname(0) else {
        return false;
    };
    if i == s.len() {
        return false;
    }
    let Some(mut i) = offset(s, i) else {
        return false;
    };
    if i == s.len() {
        return true;
    }
    let Some((dst_len, after)) = zname(i) else {
        return false;
    };
    if dst_len == 0 {
        return false;
    }
    i = after;
    if i < s.len() && s[i] != b',' && s[i] != b';' {
        match offset(s, i) {
            Some(j) => i = j,
            None => return false,
        }
    }
    if i == s.len() {
        return true;
    }
    if s[i] != b',' && s[i] != b';' {
        return false;
    }
    let Some(i) = rule(s, i + 1) else {
        return false;
    };
    if s.get(i) != Some(&b',') {
        return false;
    }
    rule(s, i + 1) == Some(s.len())
}

/// getnum: digits, never above `max` on the way, at least `min`.
fn num(s: &[u8], mut i: usize, min: u32, max: u32) -> Option<usize> {
    if !s.get(i)?.is_ascii_digit() {
        return None;
    }
    let mut n: u32 = 0;
    while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
        n = n * 10 + u32::from(d - b'0');
        if n > max {
            return None;
        }
        i += 1;
    }
    (n >= min).then_some(i)
}

/// getoffset: an optional sign, then getsecs: hh[:mm[:ss]], hours up to 167
/// (a week), minutes to 59, seconds to 60.
fn offset(s: &[u8], mut i: usize) -> Option<usize> {
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    i = num(s, i, 0, 24 * 7 - 1)?;
    if s.get(i) == Some(&b':') {
        i = num(s, i + 1, 0, 59)?;
        if s.get(i) == Some(&b':') {
            i = num(s, i + 1, 0, 60)?;
        }
    }
    Some(i)
}

/// getrule: `Jn` (1-365), `n` (0-365) or `Mm.w.d`, then `/offset`.
fn rule(s: &[u8], i: usize) -> Option<usize> {
    let mut i = match s.get(i)? {
        b'J' => num(s, i + 1, 1, 365)?,
        b'M' => {
            let i = num(s, i + 1, 1, 12)?;
            (s.get(i) == Some(&b'.')).then_some(())?;
            let i = num(s, i + 1, 1, 5)?;
            (s.get(i) == Some(&b'.')).then_some(())?;
            num(s, i + 1, 0, 6)?
        }
        c if c.is_ascii_digit() => num(s, i, 0, 365)?,
        _ => return None,
    };
    if s.get(i) == Some(&b'/') {
        i = offset(s, i + 1)?;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> PgVersion {
        PgVersion::of(major)
    }

    /// Each verdict as PostgreSQL 18 gave it (`postgres -C timezone` with
    /// the value in postgresql.conf); tests/it/pg_start.rs asks every major.
    #[test]
    fn timezone_values_read_as_postgresql_reads_them() {
        let ok = [
            "Europe/Paris",
            "europe/paris",
            ":Europe/Paris",
            "Factory",
            "GMT",
            "gmt",
            "UTC",
            "Etc/GMT+5",
            "EST5EDT",
            "FOO3",
            "-3:30",
            "<+03>-3",
            "UTC+3",
            "abc3def,M3.2.0/-1,M11.1.0",
            "abc3def,M3.2.0,M11.1.0/30",
            "abc3def,J1,J365",
            "A1",
            "ABC1DE",
            "ABC1DEF2",
            "167",
            "167.999",
            "0x10",
            "1e1",
            " 5",
            "5 ",
            "<>5",
            "1e-400",
            "interval '1'",
        ];
        for value in ok {
            assert!(timezone(value, v(18)).is_some(), "{value:?} is accepted");
        }
        let refused = [
            "Mars/Olympus",
            "Europe/Paris ",
            " Europe/Paris",
            "XYZ",
            "abc3def,J0,J365",
            "168",
            "inf",
            "nan",
            "right/UTC",
            "ABC1DEF2,M3.2.0",
            "",
            ":",
            "Intervalx",
            "interval '+02:00' hour to minute",
        ];
        for value in refused {
            assert!(timezone(value, v(18)).is_none(), "{value:?} is refused");
        }
        // What PostgreSQL 18 refuses but builds that read the host's tz
        // database (Debian's 15) accept.
        for value in ["posixrules", "localtime", "posix/Europe/Paris"] {
            assert_eq!(
                timezone(value, v(18)),
                Some(Reading::Zone(Database::System)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn log_timezone_reads_no_hours_but_a_bare_number_is_a_posix_spec() {
        assert_eq!(log_timezone("5", v(16)), Some(Reading::Posix));
        assert_eq!(log_timezone("168", v(16)), None);
        assert_eq!(timezone("5", v(16)), Some(Reading::Hours));
        // `INTERVAL '1'` upper-cased is a POSIX spec: a name, an offset of
        // 1, a DST name `'`, as PostgreSQL 18 reads it.
        assert_eq!(log_timezone("interval '1'", v(16)), Some(Reading::Posix));
        assert_eq!(timezone("interval '1'", v(16)), Some(Reading::Interval));
    }

    #[test]
    fn a_misspelt_zone_gets_the_name_it_meant() {
        assert_eq!(
            suggest("Europe/Pari", v(17)).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(suggest("Mars/Olympus", v(17)), None);
    }

    #[test]
    fn system_database_names_are_only_in_builds_that_read_the_hosts() {
        assert_eq!(
            timezone("posix/Europe/Paris", v(15)),
            Some(Reading::Zone(Database::System))
        );
        assert_eq!(
            timezone("Europe/Paris", v(13)),
            Some(Reading::Zone(Database::Bundled))
        );
    }
}
