//! The one reader of PostgreSQL parameter values, following the server's
//! own rules (src/backend/utils/misc/guc.c): `parse_bool`, `parse_int`
//! (strtol with base 0, so hex and octal, then strtod for fractions and
//! exponents), `parse_real` (strtod), units converted to the parameter's
//! base unit with the fraction rounded to the next smaller unit, enums
//! matched case-insensitively. Validation, the budget, the planner's
//! clamps and the live commands all read values here, so they cannot
//! disagree about what a value means.
//!
//! This reads a value after the config file's lexer has done its part
//! (quotes removed); what may appear unquoted is `grammar`'s business.

use crate::read::catalog::{PgParam, VarType};

/// A value as PostgreSQL holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum PgValue {
    Bool(bool),
    /// In the parameter's own unit (8kB pages for shared_buffers...).
    Int(i64),
    Real(f64),
    /// The enum entry matched, lowercase.
    Enum(String),
    String(String),
}

impl PgValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PgValue::Int(n) => Some(*n as f64),
            PgValue::Real(x) => Some(*x),
            _ => None,
        }
    }
}

/// Why PostgreSQL would refuse a value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueError {
    pub message: String,
    pub hint: Option<String>,
}

fn refuse(message: String, hint: Option<String>) -> ValueError {
    ValueError { message, hint }
}

/// C's isspace in the "C" locale.
fn c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `parse_bool_with_len`: unique prefixes of true/false/yes/no, on/off
/// with at least two letters, 1 and 0; any case; nothing else (no spaces).
pub fn parse_bool(v: &str) -> Option<bool> {
    let lower = v.to_ascii_lowercase();
    let prefix_of = |word: &str| !lower.is_empty() && word.starts_with(lower.as_str());
    match lower.as_bytes().first()? {
        b't' if prefix_of("true") => Some(true),
        b'f' if prefix_of("false") => Some(false),
        b'y' if prefix_of("yes") => Some(true),
        b'n' if prefix_of("no") => Some(false),
        b'o' if lower.len() >= 2 && "on".starts_with(lower.as_str()) => Some(true),
        b'o' if lower.len() >= 2 && "off".starts_with(lower.as_str()) => Some(false),
        b'1' if lower.len() == 1 => Some(true),
        b'0' if lower.len() == 1 => Some(false),
        _ => None,
    }
}

/// strtol(s, &end, 0) for other parsers of C heritage (PgBouncer's).
pub fn c_strtol(s: &[u8]) -> (Option<i64>, usize) {
    strtol(s)
}

/// strtod(s, &end) for other parsers of C heritage (PgBouncer's).
pub fn c_strtod(s: &[u8]) -> (Option<f64>, usize) {
    strtod(s)
}

/// glibc's strtol(s, &end, 0) for a 64-bit long: the value (None on
/// overflow, i.e. ERANGE) and the bytes consumed (0 when nothing parsed).
fn strtol(s: &[u8]) -> (Option<i64>, usize) {
    let mut i = 0;
    while i < s.len() && c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let (radix, mut j) = if s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16u32, i + 2)
    } else if s.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let start = j;
    let mut acc: i128 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(radix)) {
        acc = acc * radix as i128 + d as i128;
        if acc > i64::MAX as i128 + 1 {
            overflow = true;
            acc = i64::MAX as i128 + 1;
        }
        j += 1;
    }
    if j == start {
        return (Some(0), 0);
    }
    let v = if neg { -acc } else { acc };
    if overflow || v > i64::MAX as i128 || v < i64::MIN as i128 {
        return (None, j);
    }
    (Some(v as i64), j)
}

/// glibc's strtod: decimal and hexadecimal floats, inf, infinity, nan, any
/// case, leading whitespace and a sign. The value (None on ERANGE:
/// overflow, or underflow to zero or a subnormal) and the bytes consumed.
fn strtod(s: &[u8]) -> (Option<f64>, usize) {
    let mut i = 0;
    while i < s.len() && c_space(s[i]) {
        i += 1;
    }
    let sign_at = i;
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let rest = &s[i..];
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let sign = if neg { -1.0 } else { 1.0 };
    if lower.starts_with(b"infinity") {
        return (Some(sign * f64::INFINITY), i + 8);
    }
    if lower.starts_with(b"inf") {
        return (Some(sign * f64::INFINITY), i + 3);
    }
    if lower.starts_with(b"nan") {
        // nan(chars) is accepted too; the caller rejects NaN anyway.
        let mut j = i + 3;
        if s.get(j) == Some(&b'(') {
            if let Some(close) = s[j..].iter().position(|c| *c == b')') {
                if s[j + 1..j + close]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += close + 1;
                }
            }
        }
        return (Some(f64::NAN), j);
    }
    if rest.len() >= 3
        && rest[0] == b'0'
        && (rest[1] == b'x' || rest[1] == b'X')
        && (rest[2].is_ascii_hexdigit()
            || (rest[2] == b'.' && rest.get(3).is_some_and(|c| c.is_ascii_hexdigit())))
    {
        return hex_float(s, i + 2, neg);
    }
    // Decimal: digits [. digits] | . digits, then an optional exponent.
    let mut j = i;
    let mut digits = 0;
    while s.get(j).is_some_and(|c| c.is_ascii_digit()) {
        j += 1;
        digits += 1;
    }
    if s.get(j) == Some(&b'.') {
        j += 1;
        while s.get(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return (Some(0.0), 0);
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if s.get(k).is_some_and(|c| c.is_ascii_digit()) {
            while s.get(k).is_some_and(|c| c.is_ascii_digit()) {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[sign_at..j]).unwrap_or("0");
    let v: f64 = text.parse().unwrap_or(0.0);
    let mantissa_nonzero = s[i..j]
        .iter()
        .take_while(|c| **c != b'e' && **c != b'E')
        .any(|c| (b'1'..=b'9').contains(c));
    (range_checked(v, mantissa_nonzero), j)
}

fn range_checked(v: f64, mantissa_nonzero: bool) -> Option<f64> {
    if v.is_infinite() || (mantissa_nonzero && v.abs() < f64::MIN_POSITIVE) {
        None
    } else {
        Some(v)
    }
}

/// `0x1.8p3` and friends, from just after the `0x`.
fn hex_float(s: &[u8], mut j: usize, neg: bool) -> (Option<f64>, usize) {
    let mut mant = 0f64;
    let mut nonzero = false;
    let mut exp: i64 = 0;
    while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(16)) {
        mant = mant * 16.0 + d as f64;
        nonzero |= d != 0;
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        j += 1;
        while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(16)) {
            mant = mant * 16.0 + d as f64;
            nonzero |= d != 0;
            exp -= 4;
            j += 1;
        }
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let mut k = j + 1;
        let mut eneg = false;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            eneg = s[k] == b'-';
            k += 1;
        }
        if s.get(k).is_some_and(|c| c.is_ascii_digit()) {
            let mut e: i64 = 0;
            while let Some(d) = s.get(k).filter(|c| c.is_ascii_digit()) {
                e = (e * 10 + (d - b'0') as i64).min(100_000);
                k += 1;
            }
            exp += if eneg { -e } else { e };
            j = k;
        }
    }
    let v = mant * 2f64.powi(exp.clamp(-100_000, 100_000) as i32);
    let v = if neg { -v } else { v };
    (range_checked(v, nonzero), j)
}

/// A memory or time unit as pg_settings names a parameter's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
enum UnitKind {
    /// Bytes per unit.
    Memory(f64),
    /// Milliseconds per unit.
    Time(f64),
}

fn param_unit(unit: &str) -> Option<UnitKind> {
    Some(match unit {
        "B" => UnitKind::Memory(1.0),
        "kB" => UnitKind::Memory(1024.0),
        "8kB" => UnitKind::Memory(8192.0),
        "MB" => UnitKind::Memory(1024.0 * 1024.0),
        "ms" => UnitKind::Time(1.0),
        "s" => UnitKind::Time(1000.0),
        "min" => UnitKind::Time(60_000.0),
        _ => return None,
    })
}

const MEMORY_UNITS: &[(&str, f64)] = &[
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("kB", 1024.0),
    ("B", 1.0),
];

const TIME_UNITS: &[(&str, f64)] = &[
    ("d", 86_400_000.0),
    ("h", 3_600_000.0),
    ("min", 60_000.0),
    ("s", 1000.0),
    ("ms", 1.0),
    ("us", 0.001),
];

/// Bytes (or ms) per unit the user may write, for a unit name.
pub fn memory_unit_bytes(unit: &str) -> Option<f64> {
    MEMORY_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, m)| *m)
}

/// `convert_to_base_unit`: `value` written in `unit_text` (the rest of
/// the string: a unit of at most three characters, then only spaces),
/// in the parameter's unit, with the fraction rounded to the next
/// smaller unit as PostgreSQL does ("1.5GB" is 1536 MB exactly).
fn convert(value: f64, unit_text: &[u8], base: UnitKind) -> Option<f64> {
    let mut n = 0;
    while n < unit_text.len() && !c_space(unit_text[n]) && n < 3 {
        n += 1;
    }
    let unit = std::str::from_utf8(&unit_text[..n]).ok()?;
    if !unit_text[n..].iter().all(|c| c_space(*c)) {
        return None;
    }
    let (table, per_base) = match base {
        UnitKind::Memory(b) => (MEMORY_UNITS, b),
        UnitKind::Time(b) => (TIME_UNITS, b),
    };
    let i = table.iter().position(|(u, _)| *u == unit)?;
    let mult = table[i].1 / per_base;
    let mut v = value * mult;
    if let Some((_, next)) = table.get(i + 1) {
        let next = next / per_base;
        v = (v / next).round_ties_even() * next;
    }
    Some(v)
}

fn units_hint(p: &PgParam) -> Option<String> {
    match p.unit.as_deref().and_then(param_unit) {
        Some(UnitKind::Memory(_)) => {
            Some("valid units: B, kB, MB, GB, TB (case-sensitive)".to_string())
        }
        Some(UnitKind::Time(_)) => Some("valid units: us, ms, s, min, h, d".to_string()),
        None => None,
    }
}

/// `parse_int` / `parse_real` up to the range check: the number in the
/// parameter's unit.
pub fn number(p: &PgParam, value: &str) -> Result<f64, ValueError> {
    let bytes = value.as_bytes();
    let base = p.unit.as_deref().and_then(param_unit);
    let not_a_number = || {
        refuse(
            format!("`{}` needs a number, not `{value}`", p.name),
            p.unit.as_ref().map(|u| {
                format!(
                    "a bare number is in {u}; {}",
                    units_hint(p).unwrap_or_default()
                )
            }),
        )
    };
    let (mut v, end) = if p.vartype == VarType::Integer {
        let (n, end) = strtol(bytes);
        let stop = bytes.get(end).copied();
        if matches!(stop, Some(b'.' | b'e' | b'E')) || n.is_none() {
            strtod(bytes)
        } else {
            (n.map(|n| n as f64), end)
        }
    } else {
        strtod(bytes)
    };
    if end == 0 {
        return Err(not_a_number());
    }
    let Some(mut x) = v.take() else {
        return Err(refuse(
            format!("`{}` = {value} is outside the range of a number", p.name),
            None,
        ));
    };
    if x.is_nan() {
        return Err(not_a_number());
    }
    let mut rest = &bytes[end..];
    while rest.first().is_some_and(|c| c_space(*c)) {
        rest = &rest[1..];
    }
    if rest
        .first()
        .is_some_and(|c| c.is_ascii_digit() || b".+-".contains(c))
    {
        // "09": strtol reads an octal 0 and stops at the 9.
        return Err(refuse(
            format!("`{}` needs a number, not `{value}`", p.name),
            Some(if value.trim_start().starts_with('0') {
                "a leading 0 makes a number octal (digits 0-7); write it without the 0".into()
            } else {
                "write one number, with a unit where the parameter has one".into()
            }),
        ));
    }
    if !rest.is_empty() {
        let unit = String::from_utf8_lossy(rest).trim().to_string();
        let Some(base) = base else {
            return Err(refuse(
                format!("`{unit}` is not a valid unit for `{}`", p.name),
                Some("valid units: none: this parameter takes a plain number".into()),
            ));
        };
        x = convert(x, rest, base).ok_or_else(|| {
            refuse(
                format!("`{unit}` is not a valid unit for `{}`", p.name),
                units_hint(p),
            )
        })?;
    }
    if p.vartype == VarType::Integer {
        x = x.round_ties_even();
    }
    Ok(x)
}

/// Reads `value` for parameter `p` as PostgreSQL would, range included.
/// Enum values some builds add (lz4) are accepted: the build is judged
/// elsewhere, when it is known.
pub fn read(p: &PgParam, value: &str) -> Result<PgValue, ValueError> {
    match p.vartype {
        VarType::String => Ok(PgValue::String(value.to_string())),
        VarType::Bool => parse_bool(value).map(PgValue::Bool).ok_or_else(|| {
            refuse(
                format!("`{}` needs a boolean, not `{value}`", p.name),
                Some("write on or off (true/false, yes/no, 1/0)".into()),
            )
        }),
        VarType::Enum => enum_value(p, value).map(PgValue::Enum).ok_or_else(|| {
            let mut valid: Vec<String> = p
                .enumvals
                .iter()
                .filter(|e| !e.is_empty())
                .cloned()
                .collect();
            valid.extend(
                p.build_values
                    .iter()
                    .map(|b| format!("{} (builds with {})", b.value, b.feature)),
            );
            refuse(
                format!("`{value}` is not a valid value for `{}`", p.name),
                Some(format!("valid values: {}", valid.join(", "))),
            )
        }),
        VarType::Integer | VarType::Real => {
            let x = number(p, value)?;
            if p.vartype == VarType::Integer && (x > i32::MAX as f64 || x < i32::MIN as f64) {
                return Err(refuse(
                    format!(
                        "`{}` = {value} is outside PostgreSQL's integer range",
                        p.name
                    ),
                    None,
                ));
            }
            let show = |b: f64| match p.unit.as_deref() {
                Some(u) => format!("{b} x {u}"),
                None => b.to_string(),
            };
            // With a unit written, say what it is in the parameter's unit.
            let in_unit = |x: f64| match p.unit.as_deref() {
                Some(u) if x.is_finite() && value.chars().any(|c| c.is_ascii_alphabetic()) => {
                    format!(" ({x} x {u})")
                }
                _ => String::new(),
            };
            if let Some(min) = p.min.filter(|m| x < *m) {
                return Err(refuse(
                    format!(
                        "`{}` = {value}{} is below its minimum {}",
                        p.name,
                        in_unit(x),
                        show(min)
                    ),
                    None,
                ));
            }
            if let Some(max) = p.max.filter(|m| x > *m) {
                return Err(refuse(
                    format!(
                        "`{}` = {value}{} is above its maximum {}",
                        p.name,
                        in_unit(x),
                        show(max)
                    ),
                    None,
                ));
            }
            let x = match p.hook_floor {
                Some(floor) if x != -1.0 && x < floor => floor,
                _ => x,
            };
            Ok(if p.vartype == VarType::Integer {
                PgValue::Int(x as i64)
            } else {
                PgValue::Real(x)
            })
        }
    }
}

/// `config_enum_lookup_by_name`: a whole, case-insensitive match of a
/// listed value, of a spelling the server accepts (the catalog's aliases,
/// asked of the server), or of a value some builds add; the result is
/// what PostgreSQL shows for it (`on` is `pglz` for wal_compression).
fn enum_value(p: &PgParam, value: &str) -> Option<String> {
    if let Some((_, shown)) = p
        .aliases
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(value))
    {
        return Some(shown.clone());
    }
    p.enumvals
        .iter()
        .map(String::as_str)
        .chain(p.build_values.iter().map(|b| b.value.as_str()))
        // An empty value is listed for some (ssl_max_protocol_version).
        .find(|e| e.eq_ignore_ascii_case(value))
        .map(str::to_ascii_lowercase)
}

/// `n` (in the parameter's unit) written back as PostgreSQL reads it:
/// memory in the largest exact unit, time with its unit, counts bare.
pub fn format_number(p: &PgParam, n: f64) -> String {
    match p.unit.as_deref().and_then(param_unit) {
        Some(UnitKind::Memory(per)) if p.vartype == VarType::Integer => {
            crate::units::ByteSize((n.max(0.0) * per) as u64).pg()
        }
        Some(UnitKind::Time(_)) => format!("{}{}", n, p.unit.as_deref().unwrap_or("")),
        _ if p.vartype == VarType::Integer => format!("{}", n as i64),
        _ => format!("{n}"),
    }
}

/// A memory parameter's value in bytes (None for -1 and other
/// negatives, which mean "use another setting").
pub fn bytes(p: &PgParam, v: &PgValue) -> Option<u64> {
    let UnitKind::Memory(per) = p.unit.as_deref().and_then(param_unit)? else {
        return None;
    };
    let n = v.as_f64()?;
    (n >= 0.0).then_some((n * per) as u64)
}

/// A time parameter's value in milliseconds.
pub fn millis(p: &PgParam, v: &PgValue) -> Option<f64> {
    let UnitKind::Time(per) = p.unit.as_deref().and_then(param_unit)? else {
        return None;
    };
    Some(v.as_f64()? * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, vartype: VarType, unit: Option<&str>, min: f64, max: f64) -> PgParam {
        PgParam {
            name: name.into(),
            vartype,
            unit: unit.map(str::to_string),
            min: Some(min),
            max: Some(max),
            enumvals: vec![],
            context: "user".into(),
            boot_val: None,
            aliases: vec![],
            build_values: vec![],
            build_only: None,
            since_minor: None,
            hook_floor: None,
        }
    }

    #[test]
    fn booleans_follow_parse_bool() {
        for (v, want) in [
            ("on", Some(true)),
            ("ON", Some(true)),
            ("of", Some(false)),
            ("o", None),
            ("t", Some(true)),
            ("tr", Some(true)),
            ("truex", None),
            ("y", Some(true)),
            ("n", Some(false)),
            ("1", Some(true)),
            ("0", Some(false)),
            ("01", None),
            (" on", None),
            ("on ", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(v), want, "{v:?}");
        }
    }

    #[test]
    fn integers_follow_parse_int() {
        let wm = param("work_mem", VarType::Integer, Some("kB"), 64.0, 2147483647.0);
        let sb = param(
            "shared_buffers",
            VarType::Integer,
            Some("8kB"),
            16.0,
            1073741823.0,
        );
        let mc = param("max_connections", VarType::Integer, None, 1.0, 262143.0);
        let perm = param(
            "unix_socket_permissions",
            VarType::Integer,
            None,
            0.0,
            511.0,
        );
        let ok = |p: &PgParam, v: &str| read(p, v).unwrap_or_else(|e| panic!("{v}: {e:?}"));
        assert_eq!(ok(&sb, "1.5GB"), PgValue::Int(196608));
        assert_eq!(ok(&sb, "16384"), PgValue::Int(16384));
        assert_eq!(ok(&wm, "0.5MB"), PgValue::Int(512));
        assert_eq!(ok(&wm, "4 MB"), PgValue::Int(4096));
        assert_eq!(ok(&wm, " 4MB "), PgValue::Int(4096));
        assert_eq!(ok(&wm, "1e3"), PgValue::Int(1000));
        assert_eq!(ok(&mc, "0x64"), PgValue::Int(100));
        assert_eq!(ok(&mc, "1.5"), PgValue::Int(2));
        assert_eq!(ok(&mc, "2.5"), PgValue::Int(2), "rint rounds half to even");
        assert_eq!(ok(&perm, "0777"), PgValue::Int(511));
        assert_eq!(ok(&perm, "0600"), PgValue::Int(384));
        for bad in ["09", "4mb", "4 M B", "lots", "", "4MBx", "nan", "1e400"] {
            assert!(read(&wm, bad).is_err() || read(&mc, bad).is_err(), "{bad}");
        }
        assert!(read(&mc, "09").is_err());
        assert!(read(&wm, "32kB").is_err(), "below the minimum");
        assert!(read(&mc, "10 MB").is_err(), "no unit allowed");
        assert!(read(&wm, "3000GB").is_err(), "above the maximum");
    }

    #[test]
    fn reals_and_time_units() {
        let rpc = param("random_page_cost", VarType::Real, None, 0.0, f64::MAX);
        assert_eq!(read(&rpc, "1.1").unwrap(), PgValue::Real(1.1));
        assert_eq!(read(&rpc, "1e308").unwrap(), PgValue::Real(1e308));
        assert!(read(&rpc, "inf").is_err());
        assert!(read(&rpc, "1e309").is_err());
        let ct = param(
            "checkpoint_timeout",
            VarType::Integer,
            Some("s"),
            30.0,
            86400.0,
        );
        assert_eq!(read(&ct, "1.5min").unwrap(), PgValue::Int(90));
        assert_eq!(read(&ct, "5min").unwrap(), PgValue::Int(300));
        assert_eq!(read(&ct, "300000ms").unwrap(), PgValue::Int(300));
        let v = read(&ct, "1h").unwrap();
        assert_eq!(millis(&ct, &v), Some(3_600_000.0));
    }

    #[test]
    fn enums_match_whole_names_and_the_servers_own_spellings() {
        let cat = |v: u32, n: &str| match crate::read::catalog::PgCatalog::get(
            crate::version::PgVersion::of(v),
        )
        .lookup(n)
        {
            crate::read::catalog::Lookup::Known(p) => p.clone(),
            _ => panic!("{n}"),
        };
        let hp = cat(16, "huge_pages");
        assert_eq!(read(&hp, "ON").unwrap(), PgValue::Enum("on".into()));
        assert_eq!(read(&hp, "true").unwrap(), PgValue::Enum("on".into()));
        assert!(read(&hp, "of").is_err(), "enums take no prefixes");
        let wl = cat(16, "wal_level");
        assert_eq!(
            read(&wl, "hot_standby").unwrap(),
            PgValue::Enum("replica".into())
        );
        let wc = cat(16, "wal_compression");
        assert_eq!(read(&wc, "on").unwrap(), PgValue::Enum("pglz".into()));
        assert_eq!(read(&wc, "LZ4").unwrap(), PgValue::Enum("lz4".into()));
        assert!(
            read(&cat(13, "wal_compression"), "lz4").is_err(),
            "a boolean in 13"
        );
    }
}
