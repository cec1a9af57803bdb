//! check-budget: find the configs, load them (following includes), validate
//! every setting, compute the budget, and report in text, JSON or GitHub
//! annotations. `render` runs the same `check_settings` on its own output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::budget::{self, Budget};
pub use crate::cli::Level;
use crate::error::InputError;
use crate::load;
use crate::render::output::{self, Manifest};
use crate::safety;
use crate::settings::{HostSettings, ServiceSettings};
use crate::target::CheckTarget;
use crate::units::ByteSize;
use crate::validate::{self, Finding, Severity};

/// The verdict on a host's settings.
#[derive(Debug, Serialize)]
pub struct Report {
    pub pg_version: u32,
    pub pg_version_source: String,
    /// The Redis and PgBouncer releases checked against, when their files
    /// were checked.
    pub redis_version: Option<crate::catalog::ServiceVersion>,
    pub pgbouncer_version: Option<crate::catalog::ServiceVersion>,
    /// Whether a postgresql.conf was among the files.
    pub postgres_checked: bool,
    pub files: Vec<String>,
    pub findings: Vec<Finding>,
    pub budget: Budget,
    /// The total that must fit (`--level`).
    pub level: Level,
    /// What the budget assumed about the workload.
    pub assumptions: budget::Assumptions,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Errors that can lose data or stop a server.
    pub fn unsafe_errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error && f.safety)
            .count()
    }

    pub fn ok(&self) -> bool {
        self.errors() == 0 && self.budget_fits()
    }

    /// Whether the total `--level` names fits in RAM.
    pub fn budget_fits(&self) -> bool {
        match self.level {
            Level::Worst => self.budget.total_fits(),
            Level::Typical => self.budget.typical <= self.budget.ram,
        }
    }

    /// Judged at `level`: at the typical level a worst case over RAM is a
    /// warning.
    pub fn at_level(mut self, level: Level) -> Report {
        self.level = level;
        if level == Level::Typical && !self.budget.total_fits() {
            self.findings.push(Finding::warning(
                "budget",
                None,
                format!(
                    "the worst case ({} of {}) does not fit: only the typical moment ({}) is checked",
                    self.budget.worst, self.budget.ram, self.budget.typical
                ),
                Some("at the worst case (every connection sorting at once) the OOM killer picks a process".into()),
            ));
        }
        self
    }

    pub fn verdict(&self) -> &'static str {
        if self.unsafe_errors() > 0 {
            "unsafe"
        } else if !self.budget_fits() {
            "does-not-fit"
        } else if self.errors() > 0 {
            "invalid"
        } else {
            "fits"
        }
    }
}

/// Validation, safety and budget of settings already loaded: pure.
pub fn check_settings(
    settings: &HostSettings,
    target: &CheckTarget,
    live_huge_pages: Option<safety::LiveHugePages>,
) -> Report {
    let mut findings = Vec::new();
    if let Some(pg) = &settings.postgres {
        findings.extend(validate::postgres(
            pg,
            settings.pg_version,
            settings.pg_build.as_deref(),
            settings.pg_release.as_deref(),
        ));
    }
    if let Some(r) = &settings.redis {
        findings.extend(validate::redis(r, &settings.redis_version));
    }
    if let Some(b) = &settings.pgbouncer {
        findings.extend(validate::pgbouncer(b, &settings.pgbouncer_version));
    }
    let ctx = safety::Context {
        pg_on_zfs: target.pg_on_zfs,
        pg_on_zfs_source: target.pg_on_zfs_source.clone(),
        live_huge_pages,
    };
    findings.extend(safety::findings(settings, &ctx, &target.assumptions));
    let budget = budget::compute(
        settings,
        target.ram,
        &target.ram_source,
        &target.reserves,
        &target.assumptions,
    );
    findings.extend(budget.problems.iter().cloned());
    findings.sort_by(|a, b| {
        let key = |f: &Finding| f.at.as_ref().map(|l| (l.file.clone(), l.line));
        key(a).cmp(&key(b))
    });
    let mut files = Vec::new();
    for s in [
        &settings.postgres,
        &settings.redis,
        &settings.pgbouncer,
        &settings.os,
    ]
    .into_iter()
    .flatten()
    {
        files.extend(s.files.iter().cloned());
    }
    Report {
        pg_version: settings.pg_version,
        pg_version_source: target.pg_version_source.clone(),
        redis_version: None,
        pgbouncer_version: None,
        postgres_checked: settings.postgres.is_some(),
        files,
        findings,
        budget,
        level: Level::Worst,
        assumptions: target.assumptions.clone(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
    PgBouncer,
    Os,
}

/// What a file is, from its name, else from its first setting.
pub fn classify(path: &Path) -> Result<Kind, InputError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.contains("postgresql") || name.starts_with("postgres") {
        return Ok(Kind::Postgres);
    }
    if name.contains("redis") {
        return Ok(Kind::Redis);
    }
    if name.contains("pgbouncer") || name.ends_with(".ini") {
        return Ok(Kind::PgBouncer);
    }
    if name.contains("sysctl") || name.starts_with("zfs") || name == "99-dbtune.conf" {
        return Ok(Kind::Os);
    }
    let text = load::read_text(path)?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
    match first {
        Some(l) if l.starts_with('[') => Ok(Kind::PgBouncer),
        Some(l) if l.starts_with("options ") => Ok(Kind::Os),
        Some(l) if l.starts_with("vm.") || l.starts_with("kernel.") || l.starts_with("net.") => {
            Ok(Kind::Os)
        }
        Some(l) if l.contains('=') => Ok(Kind::Postgres),
        Some(_) => Ok(Kind::Redis),
        None => Err(InputError::plain(
            format!(
                "`{}` has no settings, so dbtune cannot tell what it configures",
                path.display()
            ),
            "name it postgresql.conf, redis.conf or pgbouncer.ini",
        )),
    }
}

/// Config files and the manifest found under the paths given.
#[derive(Debug, Default)]
pub struct Found {
    pub postgres: Option<PathBuf>,
    pub redis: Option<PathBuf>,
    pub pgbouncer: Option<PathBuf>,
    pub os: Vec<PathBuf>,
    pub manifest: Option<Manifest>,
}

const DIR_NAMES: &[(&str, Kind)] = &[
    ("postgresql.conf", Kind::Postgres),
    ("redis.conf", Kind::Redis),
    ("pgbouncer.ini", Kind::PgBouncer),
    ("99-dbtune.conf", Kind::Os),
    ("zfs-arc.conf", Kind::Os),
];

pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let put = |kind: Kind, p: PathBuf, found: &mut Found| -> Result<(), InputError> {
        let slot = match kind {
            Kind::Postgres => &mut found.postgres,
            Kind::Redis => &mut found.redis,
            Kind::PgBouncer => &mut found.pgbouncer,
            Kind::Os => {
                found.os.push(p);
                return Ok(());
            }
        };
        if let Some(prev) = slot.as_ref() {
            return Err(InputError::plain(
                format!(
                    "two {} configs: `{}` and `{}`",
                    match kind {
                        Kind::Postgres => "PostgreSQL",
                        Kind::Redis => "Redis",
                        _ => "PgBouncer",
                    },
                    prev.display(),
                    p.display()
                ),
                "check one host at a time; included files are followed, so name only the main one",
            ));
        }
        *slot = Some(p);
        Ok(())
    };
    for p in paths {
        if p.is_dir() {
            let mut any = false;
            for (name, kind) in DIR_NAMES {
                let f = p.join(name);
                if f.is_file() {
                    put(*kind, f, &mut found)?;
                    any = true;
                }
            }
            if let Some(m) = output::read_manifest(p)? {
                found.manifest = Some(m);
            }
            if !any {
                return Err(InputError::plain(
                    format!("no config file found in `{}`", p.display()),
                    "dbtune looks for postgresql.conf, redis.conf, pgbouncer.ini, 99-dbtune.conf and \
                     zfs-arc.conf in a directory; name files directly to check others",
                )
                .into());
            }
        } else if p.exists() {
            put(classify(p)?, p.clone(), &mut found)?;
        } else {
            return Err(InputError::plain(
                format!("`{}` does not exist", p.display()),
                "pass config files or a directory of them",
            )
            .into());
        }
    }
    Ok(found)
}

/// Loads what was found, following includes.
pub fn load_found(
    found: &Found,
    pg_version: u32,
    pg_build: Option<Vec<String>>,
    root: Option<&Path>,
) -> Result<HostSettings, InputError> {
    let mut hs = HostSettings {
        pg_version,
        pg_build,
        ..Default::default()
    };
    if let Some(p) = &found.postgres {
        hs.postgres = Some(load::postgres(p, root)?);
    }
    if let Some(p) = &found.redis {
        hs.redis = Some(load::redis(p, root)?);
    }
    if let Some(p) = &found.pgbouncer {
        hs.pgbouncer = Some(load::pgbouncer(p, root)?);
    }
    if !found.os.is_empty() {
        let mut os = ServiceSettings::default();
        for p in &found.os {
            load::os(p, &mut os)?;
        }
        hs.os = Some(os);
    }
    Ok(hs)
}

/// ANSI colour, only when asked for.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

pub fn text(r: &Report, color: bool) -> String {
    let p = Paint(color);
    let mut s = String::new();
    for f in &r.findings {
        let sev = match f.severity {
            Severity::Error => p.wrap("1;31", "error"),
            Severity::Warning => p.wrap("1;33", "warning"),
        };
        let at = f.at.as_ref().map_or(String::new(), |l| format!("{l}: "));
        let unsafe_ = if f.safety { "unsafe: " } else { "" };
        let _ = writeln!(s, "{at}{sev}: {unsafe_}{}", f.message);
        if let Some(h) = &f.hint {
            let _ = writeln!(s, "  hint: {h}");
        }
    }
    if !r.findings.is_empty() {
        s.push('\n');
    }
    let mut b = r.budget.clone();
    b.problems.clear(); // already listed above, with the other findings
    s.push_str(&b.table());
    let worst = r.budget.worst;
    let ram = r.budget.ram;
    let errors = r.errors();
    let warnings = r.findings.len() - errors;
    // One verdict, then the counts once.
    let unsafe_ = r.unsafe_errors();
    let verdict = if unsafe_ > 0 {
        p.wrap("1;31", "unsafe")
    } else if !r.budget_fits() {
        p.wrap("1;31", "does not fit")
    } else if errors > 0 {
        p.wrap("1;31", "invalid")
    } else {
        p.wrap("1;32", "fits")
    };
    let budget_line = match r.level {
        Level::Worst => format!("worst case {worst} of {ram} ({})", r.budget.headroom_text()),
        Level::Typical => format!(
            "typical {} of {ram} (--level typical; worst case {worst})",
            r.budget.typical
        ),
    };
    let _ = writeln!(s, "assumptions: {}", r.assumptions.describe());
    let mut versions: Vec<String> = Vec::new();
    if r.postgres_checked {
        versions.push(format!(
            "PostgreSQL {} ({})",
            r.pg_version, r.pg_version_source
        ));
    }
    if let Some(v) = &r.redis_version {
        versions.push(format!("Redis {} ({})", v.version, v.source));
    }
    if let Some(v) = &r.pgbouncer_version {
        versions.push(format!("PgBouncer {} ({})", v.version, v.source));
    }
    let versions = versions.join(", ");
    let unsafe_note = if unsafe_ > 0 {
        format!(" ({unsafe_} can lose data or stop a server)")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "\n{verdict}: {budget_line}; {errors} error(s){unsafe_note}, {warnings} warning(s); {versions}"
    );
    s
}

#[derive(Serialize)]
struct JsonReport<'a> {
    /// Bumped only on incompatible changes.
    schema: u32,
    verdict: &'static str,
    ram: ByteSize,
    ram_source: &'a str,
    pg_version: u32,
    pg_version_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_version: Option<&'a crate::catalog::ServiceVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pgbouncer_version: Option<&'a crate::catalog::ServiceVersion>,
    level: Level,
    assumptions: &'a budget::Assumptions,
    worst: ByteSize,
    typical: ByteSize,
    headroom: i128,
    files: &'a [String],
    findings: &'a [Finding],
    terms: &'a [budget::Term],
}

pub fn json(r: &Report) -> String {
    let j = JsonReport {
        schema: 1,
        verdict: r.verdict(),
        ram: r.budget.ram,
        ram_source: &r.budget.ram_source,
        pg_version: r.pg_version,
        pg_version_source: &r.pg_version_source,
        redis_version: r.redis_version.as_ref(),
        pgbouncer_version: r.pgbouncer_version.as_ref(),
        level: r.level,
        assumptions: &r.assumptions,
        worst: r.budget.worst,
        typical: r.budget.typical,
        headroom: r.budget.headroom(),
        files: &r.files,
        findings: &r.findings,
        terms: &r.budget.terms,
    };
    let mut s = serde_json::to_string_pretty(&j).expect("serialisable");
    s.push('\n');
    s
}

/// GitHub Actions workflow commands escape %, CR and LF in messages, and
/// also `:` and `,` in properties.
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

pub fn github(r: &Report) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let msg = match &f.hint {
            Some(h) => format!("{}\nhint: {h}", f.message),
            None => f.message.clone(),
        };
        let loc = f.at.as_ref().map_or(String::new(), |l| {
            format!("file={},line={},", gh_escape(&l.file, true), l.line)
        });
        let _ = writeln!(
            s,
            "::{level} {loc}title=dbtune {}::{}",
            f.service,
            gh_escape(&msg, false)
        );
    }
    if !r.budget_fits() {
        let _ = writeln!(
            s,
            "::error title=dbtune memory budget::{}",
            gh_escape(
                &format!(
                    "does not fit: worst case {} of {} RAM ({})",
                    r.budget.worst, r.budget.ram, r.budget.ram_source
                ),
                false
            )
        );
    }
    s.push_str(&text(r, false));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_messages_are_escaped() {
        assert_eq!(gh_escape("a%b\nc", false), "a%25b%0Ac");
        assert_eq!(gh_escape("x:y,z", true), "x%3Ay%2Cz");
    }
}
