//! The PostgreSQL major versions dbtune knows, and the one it assumes when
//! nothing says which: one place, so adding a major is one edit here plus
//! its catalog (data/pg-catalog-N.tsv).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A supported PostgreSQL major version (13..=18). It can only be made from a
/// supported number ([`PgVersion::new`]) or by clamping a live server's
/// ([`PgVersion::nearest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PgVersion(u32);

impl PgVersion {
    pub const OLDEST: PgVersion = PgVersion(13);
    pub const NEWEST: PgVersion = PgVersion(18);
    /// Assumed when no flag, facts file, manifest or local server says.
    pub const DEFAULT: PgVersion = PgVersion(16);

    /// The major if dbtune supports it.
    pub fn new(major: u32) -> Option<PgVersion> {
        (Self::OLDEST.0..=Self::NEWEST.0)
            .contains(&major)
            .then_some(PgVersion(major))
    }

    /// A major written in code (tables, tests); panics on one dbtune does
    /// not support, at compile time in a const.
    pub const fn of(major: u32) -> PgVersion {
        assert!(major >= Self::OLDEST.0 && major <= Self::NEWEST.0);
        PgVersion(major)
    }

    /// The closest supported major: a live server older or newer than the
    /// catalogs is read with the nearest one.
    pub fn nearest(major: u32) -> PgVersion {
        PgVersion(major.clamp(Self::OLDEST.0, Self::NEWEST.0))
    }

    pub fn major(self) -> u32 {
        self.0
    }

    /// Every supported major, oldest first.
    pub fn all() -> impl DoubleEndedIterator<Item = PgVersion> {
        (Self::OLDEST.0..=Self::NEWEST.0).map(PgVersion)
    }

    /// Position among the supported majors (0 for the oldest).
    pub fn index(self) -> usize {
        (self.0 - Self::OLDEST.0) as usize
    }

    /// How `--pg-version` shows its values in help.
    pub const VALUE_NAME: &'static str = "13..18";

    /// "13 to 18", for messages.
    pub fn range_text() -> String {
        format!("{} to {}", Self::OLDEST, Self::NEWEST)
    }
}

impl Default for PgVersion {
    fn default() -> Self {
        PgVersion::DEFAULT
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<PgVersion> for u32 {
    fn from(v: PgVersion) -> u32 {
        v.0
    }
}

impl TryFrom<u32> for PgVersion {
    type Error = String;
    fn try_from(major: u32) -> Result<Self, String> {
        PgVersion::new(major).ok_or_else(|| {
            format!(
                "PostgreSQL {major} is not supported: dbtune knows PostgreSQL {}",
                PgVersion::range_text()
            )
        })
    }
}

/// For `--pg-version 16`.
impl FromStr for PgVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let major: u32 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a PostgreSQL major version, like 16"))?;
        PgVersion::try_from(major)
    }
}

/// `version >= 15` reads as the docs do.
impl PartialEq<u32> for PgVersion {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<u32> for PgVersion {
    fn partial_cmp(&self, other: &u32) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_supported_majors_are_made() {
        assert_eq!(PgVersion::new(12), None);
        assert_eq!(PgVersion::new(19), None);
        assert_eq!(PgVersion::new(15).map(PgVersion::major), Some(15));
        assert_eq!(PgVersion::nearest(9), PgVersion::OLDEST);
        assert_eq!(PgVersion::nearest(42), PgVersion::NEWEST);
        assert_eq!(PgVersion::all().count(), 6);
        assert!(PgVersion::all().any(|v| v == PgVersion::DEFAULT));
        assert!("12".parse::<PgVersion>().unwrap_err().contains("13 to 18"));
        assert_eq!("17".parse::<PgVersion>().unwrap().major(), 17);
        assert!(PgVersion::new(16).unwrap() >= 15);
        assert_eq!(
            PgVersion::VALUE_NAME,
            format!("{}..{}", PgVersion::OLDEST, PgVersion::NEWEST)
        );
    }
}
