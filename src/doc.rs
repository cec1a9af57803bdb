//! Structured input (profiles, facts files, manifests): where a value is
//! written, so an error can name its line, and the rules every loader
//! holds values to (plain one-line text, names, ranges). Input is data,
//! never code: each value is checked when it is read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::units::ByteSize;

/// A number in 0..=1, checked while reading so the error points at its line.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
pub struct Fraction(pub f64);

impl Fraction {
    /// `v` when it is in 0..=1, else why not.
    pub fn new(v: f64) -> Result<Fraction, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Fraction(v))
        } else {
            Err(format!(
                "{v} is not a fraction: it must be between 0.0 and 1.0"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fraction::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A profile value that fails its check: where, what, and what to do.
#[derive(Clone, Debug)]
pub struct BadValue {
    /// The keys down to the value (`zfs`, `data`, `atime`); an array's
    /// element by its index (`reserve`, `0`, `memory`).
    pub path: Vec<String>,
    pub message: String,
    pub hint: String,
}

impl BadValue {
    /// `key` inside the dotted `section` (`postgres`, `zfs.data`,
    /// `reserve.2`), or at the top.
    pub(crate) fn at(section: Option<&str>, key: impl Into<String>) -> BadValue {
        let mut path: Vec<String> = section
            .map(|s| s.split('.').map(str::to_string).collect())
            .unwrap_or_default();
        path.push(key.into());
        BadValue {
            path,
            message: String::new(),
            hint: String::new(),
        }
    }

    /// The key the value is under.
    pub fn key(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }

    pub(crate) fn says(mut self, message: impl Into<String>, hint: impl Into<String>) -> BadValue {
        self.message = message.into();
        self.hint = hint.into();
        self
    }
}

/// The line of the value at `path` in a TOML text (keys, and array indexes
/// as numbers), or when its last key is not written there, of the table it
/// would be in (the nearest one that is). From toml's own spans: a probe
/// walks the document and fails where the path ends, and the error's span
/// is where the deserializer was (dotted keys, inline tables and arrays of
/// tables included).
pub fn toml_line(text: &str, path: &[&str]) -> usize {
    use serde::de::DeserializeSeed;
    match Probe(path).deserialize(toml::de::Deserializer::new(text)) {
        Err(e) => e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        Ok(()) => 1,
    }
}

/// The line of the value at `path` in a JSON text, the same way: serde_json
/// places the probe's error where it stopped.
pub fn json_line(text: &str, path: &[&str]) -> usize {
    use serde::de::DeserializeSeed;
    match Probe(path).deserialize(&mut serde_json::Deserializer::from_str(text)) {
        Err(e) => e.line().max(1),
        Ok(()) => 1,
    }
}

/// A walk down `path` that ends with an error, for its place.
struct Probe<'a>(&'a [&'a str]);

impl<'de> serde::de::DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0.split_first() {
            None => Err(serde::de::Error::custom("here")),
            Some((key, rest)) => d.deserialize_any(ProbeStep { key, rest }),
        }
    }
}

struct ProbeStep<'a> {
    key: &'a str,
    rest: &'a [&'a str],
}

impl<'de> serde::de::Visitor<'de> for ProbeStep<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a table with `{}`", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == self.key {
                return m.next_value_seed(Probe(self.rest));
            }
            m.next_value::<serde::de::IgnoredAny>()?;
        }
        Err(serde::de::Error::custom("not written"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let want: usize = self.key.parse().unwrap_or(usize::MAX);
        for _ in 0..want {
            if s.next_element::<serde::de::IgnoredAny>()?.is_none() {
                return Err(serde::de::Error::custom("not written"));
            }
        }
        match s.next_element_seed(Probe(self.rest))? {
            Some(()) => Ok(()),
            None => Err(serde::de::Error::custom("not written")),
        }
    }
}

/// Why `s` is not plain one-line text of at most `max` characters.
pub fn plain_text_problem(s: &str, max: usize) -> Option<String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Some(format!(
            "contains a control character ({}): values are one line of plain text",
            c.escape_debug()
        ));
    }
    if s.chars().count() > max {
        return Some(format!("is longer than {max} characters"));
    }
    None
}

pub(crate) fn text_ok(s: &str, max: usize, at: BadValue) -> Result<(), BadValue> {
    match plain_text_problem(s, max) {
        None => Ok(()),
        Some(why) => {
            let key = at.key().to_string();
            Err(at.says(
                format!("`{key}` {why}"),
                "write it as one line of plain text",
            ))
        }
    }
}

/// A ZFS pool name (`pool`) or one component of a dataset name: letters,
/// digits and `_ - . :`; a pool starts with a letter and is not a name
/// zpool reserves.
pub fn is_zfs_name(s: &str, pool: bool) -> bool {
    let ok_chars = !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
    if !ok_chars {
        return false;
    }
    if pool {
        let reserved = [
            "mirror", "raidz", "draid", "spare", "log", "cache", "special",
        ];
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && !reserved.iter().any(|r| s.starts_with(r))
            && !s.starts_with("c0")
    } else {
        s != "." && s != ".."
    }
}

pub(crate) fn range_u32(
    section: &str,
    key: &str,
    v: u32,
    lo: u32,
    hi: u32,
    why: &str,
) -> Result<(), BadValue> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(BadValue::at(Some(section), key).says(
            format!("{section}.{key} = {v} is out of range"),
            format!("{lo} to {hi}: {why}"),
        ))
    }
}

pub(crate) fn range_size(
    section: &str,
    key: &str,
    v: ByteSize,
    lo: ByteSize,
    hi: ByteSize,
    why: &str,
) -> Result<(), BadValue> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(BadValue::at(Some(section), key).says(
            format!("{section}.{key} = {v} is out of range"),
            format!("{lo} to {hi}: {why}"),
        ))
    }
}
