//! Byte sizes and the unit conventions of each config format.
//!
//! Every memory quantity that crosses a module boundary is a [`ByteSize`];
//! the formats disagree on what "k" means (Redis: 1000, PostgreSQL: 1024),
//! so each format's rules live here next to each other.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, Sub};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

/// A number of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const ZERO: ByteSize = ByteSize(0);

    pub const fn b(n: u64) -> Self {
        ByteSize(n)
    }
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * KIB)
    }
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * MIB)
    }
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * GIB)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
    pub fn as_mib_f64(self) -> f64 {
        self.0 as f64 / MIB as f64
    }
    pub fn saturating_sub(self, other: ByteSize) -> ByteSize {
        ByteSize(self.0.saturating_sub(other.0))
    }
    /// `self * f`, rounded down.
    pub fn scale(self, f: f64) -> ByteSize {
        ByteSize((self.0 as f64 * f).max(0.0).floor() as u64)
    }
    /// Rounded down to a multiple of `unit`.
    pub fn floor_to(self, unit: ByteSize) -> ByteSize {
        if unit.0 == 0 {
            return self;
        }
        ByteSize(self.0 / unit.0 * unit.0)
    }
    /// Number of `unit`s needed to hold `self`, rounded up.
    pub fn div_ceil(self, unit: ByteSize) -> u64 {
        self.0.div_ceil(unit.0.max(1))
    }

    /// Parses a size typed by a person: `8GiB`, `512MiB`, `4G`, `1.5GiB`,
    /// `4GB`. `KB/MB/GB/TB` mean powers of 1024 here, as they do on memory
    /// modules (JEDEC); a bare number is refused because its unit is a guess.
    pub fn parse_human(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        if num.is_empty() {
            return Err(format!(
                "`{s}` is not a size: it should start with a number, like `8GiB`"
            ));
        }
        let n: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size: `{num}` is not a number"))?;
        let mult = match unit.to_ascii_lowercase().as_str() {
            "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => GIB,
            "t" | "tb" | "tib" => TIB,
            "" => {
                return Err(format!(
                    "`{s}` has no unit: write it as `{num}GiB`, `{num}MiB` or `{num}B`"
                ))
            }
            _ => {
                return Err(format!(
                    "`{s}` has an unknown unit `{unit}`: use B, KiB, MiB, GiB or TiB"
                ))
            }
        };
        let bytes = n * mult as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
            return Err(format!("`{s}` is too large"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }

    /// The largest binary unit that divides the size exactly, as PostgreSQL
    /// writes it: `kB`, `MB`, `GB`, `TB`. Falls back to `kB` (rounded up),
    /// since PostgreSQL settings are never finer than a kilobyte.
    pub fn pg(self) -> String {
        let b = self.0;
        for (unit, name) in [(TIB, "TB"), (GIB, "GB"), (MIB, "MB")] {
            if b >= unit && b.is_multiple_of(unit) {
                return format!("{}{}", b / unit, name);
            }
        }
        format!("{}kB", b.div_ceil(KIB))
    }

    /// Redis notation: `mb`/`gb` are powers of 1024 (`m`/`g` would be 1000).
    pub fn redis(self) -> String {
        let b = self.0;
        for (unit, name) in [(GIB, "gb"), (MIB, "mb"), (KIB, "kb")] {
            if b >= unit && b.is_multiple_of(unit) {
                return format!("{}{}", b / unit, name);
            }
        }
        b.to_string()
    }
}

impl fmt::Display for ByteSize {
    /// Human form: `4 GiB`, `1.5 GiB`, `336 MiB`, `12 KiB`, `100 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        let (v, u) = if self.0 >= TIB {
            (b / TIB as f64, "TiB")
        } else if self.0 >= GIB {
            (b / GIB as f64, "GiB")
        } else if self.0 >= MIB {
            (b / MIB as f64, "MiB")
        } else if self.0 >= KIB {
            (b / KIB as f64, "KiB")
        } else {
            return write!(f, "{} B", self.0);
        };
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").unwrap_or(&s);
        write!(f, "{s} {u}")
    }
}

impl Add for ByteSize {
    type Output = ByteSize;
    fn add(self, o: ByteSize) -> ByteSize {
        ByteSize(self.0.saturating_add(o.0))
    }
}
impl AddAssign for ByteSize {
    fn add_assign(&mut self, o: ByteSize) {
        self.0 = self.0.saturating_add(o.0);
    }
}
impl Sub for ByteSize {
    type Output = ByteSize;
    fn sub(self, o: ByteSize) -> ByteSize {
        ByteSize(self.0.saturating_sub(o.0))
    }
}
impl Mul<u64> for ByteSize {
    type Output = ByteSize;
    fn mul(self, n: u64) -> ByteSize {
        ByteSize(self.0.saturating_mul(n))
    }
}
impl std::iter::Sum for ByteSize {
    fn sum<I: Iterator<Item = ByteSize>>(iter: I) -> ByteSize {
        iter.fold(ByteSize::ZERO, |a, b| a + b)
    }
}

/// Serialised as a plain number of bytes, so `jq` and scripts need no parser.
impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Read from a number of bytes or from a string with a unit (`"4GiB"`).
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size: a number of bytes or a string like \"4GiB\"")
        })? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse_human(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Redis memory units: `k`/`m`/`g` are powers of 1000, `kb`/`mb`/`gb` powers
/// of 1024, any case; a bare number is bytes.
/// As Redis's memtoull reads them: no sign, no spaces, and no digits at all
/// reads as 0 (strtoull of an empty string), as Redis does.
pub fn parse_redis_memory(s: &str) -> Option<ByteSize> {
    let t = s.to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = if num.is_empty() { 0 } else { num.parse().ok()? };
    let mult = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => KIB,
        "m" => 1_000_000,
        "mb" => MIB,
        "g" => 1_000_000_000,
        "gb" => GIB,
        _ => return None,
    };
    n.checked_mul(mult).map(ByteSize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_parse_with_binary_units() {
        let cases = [
            ("8GiB", 8 * GIB),
            ("8 GiB", 8 * GIB),
            ("4GB", 4 * GIB),
            ("4g", 4 * GIB),
            ("512MiB", 512 * MIB),
            ("1.5GiB", 3 * GIB / 2),
            ("100B", 100),
            ("1TiB", TIB),
        ];
        for (input, bytes) in cases {
            assert_eq!(ByteSize::parse_human(input), Ok(ByteSize(bytes)), "{input}");
        }
    }

    #[test]
    fn human_sizes_without_unit_or_with_junk_are_refused() {
        for bad in ["4096", "GiB", "4XB", "", "1..5G", "-1GiB"] {
            assert!(ByteSize::parse_human(bad).is_err(), "{bad} should fail");
        }
        assert!(ByteSize::parse_human("4096")
            .unwrap_err()
            .contains("4096GiB"));
    }

    #[test]
    fn postgres_notation_uses_largest_exact_unit() {
        assert_eq!(ByteSize::mib(256).pg(), "256MB");
        assert_eq!(ByteSize::gib(8).pg(), "8GB");
        assert_eq!(ByteSize::mib(1536).pg(), "1536MB");
        assert_eq!(ByteSize::kib(640).pg(), "640kB");
        assert_eq!(ByteSize::b(1000).pg(), "1kB");
    }

    #[test]
    fn redis_units_distinguish_k_from_kb() {
        assert_eq!(parse_redis_memory("1k"), Some(ByteSize(1000)));
        assert_eq!(parse_redis_memory("1KB"), Some(ByteSize(1024)));
        assert_eq!(parse_redis_memory("2mb"), Some(ByteSize::mib(2)));
        assert_eq!(parse_redis_memory("2M"), Some(ByteSize(2_000_000)));
        assert_eq!(parse_redis_memory("3Gb"), Some(ByteSize::gib(3)));
        assert_eq!(parse_redis_memory("12345"), Some(ByteSize(12345)));
        assert_eq!(parse_redis_memory("12x"), None);
        assert_eq!(parse_redis_memory(" 12"), None, "Redis reads no spaces");
        assert_eq!(
            parse_redis_memory("mb"),
            Some(ByteSize(0)),
            "memtoull of no digits is 0"
        );
        assert_eq!(ByteSize::mib(146).redis(), "146mb");
    }

    #[test]
    fn display_is_short_and_exact_when_it_can_be() {
        assert_eq!(ByteSize::gib(4).to_string(), "4 GiB");
        assert_eq!(ByteSize::mib(1536).to_string(), "1.5 GiB");
        assert_eq!(ByteSize::mib(336).to_string(), "336 MiB");
        assert_eq!(ByteSize(100).to_string(), "100 B");
    }
}
