//! Which profile fits a host best, and why.

use super::*;

use std::path::Path;

use crate::facts::StorageKind;
use crate::units::ByteSize;

/// How far a host is from a profile's nominal host: RAM counts most (it
/// sizes everything), then CPUs, then storage. Each term is a factor-of-2
/// distance.
fn distance(p: &NominalHost, ram: ByteSize, cpus: u32, storage: StorageKind) -> (f64, Vec<String>) {
    let log2 = |a: f64, b: f64| (a.max(1.0) / b.max(1.0)).log2().abs();
    let ram_d = log2(ram.bytes() as f64, p.ram.bytes() as f64);
    let cpu_d = log2(cpus as f64, p.cpus as f64);
    let storage_d = match (storage, p.storage) {
        (a, b) if a == b => 0.0,
        (StorageKind::Hdd, _) | (_, StorageKind::Hdd) => 1.0,
        _ => 0.5,
    };
    let mut misses = Vec::new();
    if ram_d >= 1.0 {
        misses.push(format!("RAM {ram} here, {} nominal", p.ram));
    }
    if cpu_d >= 1.0 {
        misses.push(format!("{cpus} CPUs here, {} nominal", p.cpus));
    }
    if storage_d > 0.0 {
        misses.push(format!("{storage} here, {} nominal", p.storage));
    }
    (1.5 * ram_d + cpu_d + storage_d, misses)
}

/// The profile whose nominal host is closest to this one, and why; says
/// which traits differ when none fits well.
pub fn pick_from<'a>(
    profiles: impl IntoIterator<Item = &'a Profile>,
    ram: ByteSize,
    cpus: u32,
    storage: StorageKind,
) -> Option<(String, String)> {
    let mut scored: Vec<(f64, &Profile, Vec<String>)> = profiles
        .into_iter()
        .map(|p| {
            let (d, misses) = distance(&p.host, ram, cpus, storage);
            (d, p, misses)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (d, p, misses) = scored.into_iter().next()?;
    let host = format!("{ram}, {cpus} CPUs, {storage}");
    let nominal = format!("{}, {} CPUs, {}", p.host.ram, p.host.cpus, p.host.storage);
    let reason = if misses.is_empty() {
        format!(
            "this host ({host}) is closest to {} (written for {nominal})",
            p.name
        )
    } else if d < 2.5 {
        format!(
            "this host ({host}) is closest to {} (written for {nominal}); it differs in {}",
            p.name,
            misses.join(", ")
        )
    } else {
        format!(
            "no profile fits this host ({host}) well: the closest is {} (written for {nominal}), which \
             differs in {}; write a profile for this host (docs/profiles.md)",
            p.name,
            misses.join(", ")
        )
    };
    Some((p.name.clone(), reason))
}

/// The built-in profile for a host, and why.
pub fn pick(ram: ByteSize, cpus: u32, storage: StorageKind) -> (String, String) {
    let builtins: Vec<Profile> = BUILTIN
        .iter()
        .map(|(name, text)| {
            Profile::parse(text, Path::new(name)).expect("built-in profiles are valid (tested)")
        })
        .collect();
    pick_from(&builtins, ram, cpus, storage).expect("there are built-in profiles")
}

impl Profiles {
    /// The profile closest to a host among every profile dbtune sees
    /// (built-in and the user's), and why.
    pub fn pick(&self, ram: ByteSize, cpus: u32, storage: StorageKind) -> (String, String) {
        pick_from(self.entries.iter().map(|(p, _)| p), ram, cpus, storage)
            .unwrap_or_else(|| pick(ram, cpus, storage))
    }
}
