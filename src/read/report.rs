//! The verdict: validate the loaded settings, compute the budget, and say
//! it in text, JSON or GitHub annotations. check-budget and render (on its
//! own output) both call `check_settings`.

use crate::service::Scope;
use crate::version::PgVersion;
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::read::budget::{self, Budget};
use crate::read::findings::{self, Finding, Severity};
use crate::read::safety;
use crate::read::settings::HostSettings;
use crate::target::Host;
use crate::units::ByteSize;

/// The verdict on a host's settings.
#[derive(Debug, Serialize)]
pub struct Report {
    pub pg_version: PgVersion,
    pub pg_version_source: String,
    /// The Redis and PgBouncer releases checked against, when their files
    /// were checked.
    pub redis_version: Option<crate::read::catalog::ServiceVersion>,
    pub pgbouncer_version: Option<crate::read::catalog::ServiceVersion>,
    /// Whether a postgresql.conf was among the files.
    pub postgres_checked: bool,
    pub files: Vec<String>,
    pub findings: Vec<Finding>,
    pub budget: Budget,
    /// The total that must fit (`--level`).
    pub level: Level,
    /// What the budget assumed about the workload.
    pub assumptions: crate::model::Assumptions,
    /// Whether the servers start with these settings (`--prove-start`).
    pub start_proof: Option<crate::prove::StartProof>,
    /// The total at the load an observation saw (`--observed`), with each
    /// assumption it replaced.
    pub observed: Option<ObservedLevel>,
}

/// The budget at an observed load: the worst case's heavy query times the
/// most active backends seen at once, Redis at its observed peak, the
/// rest at its typical moment. Each replaced assumption is named.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ObservedLevel {
    pub total: ByteSize,
    pub replaced: Vec<String>,
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
        self.level_fits(self.level)
    }

    /// The total a level counts: the worst case, the busy level (the rest
    /// of the set at its typical moment while the busy share of the
    /// queries that can run at once are heavy), the typical moment.
    pub fn level_total(&self, level: Level) -> ByteSize {
        match level {
            Level::Worst => self.budget.worst,
            // Never below the typical moment: when the pools in front are
            // small, the typical share of max_connections can be more.
            Level::Busy => self
                .budget
                .exposure
                .as_ref()
                .map_or(self.budget.typical, |e| {
                    e.busy_total().max(self.budget.typical)
                }),
            Level::Typical => self.budget.typical,
        }
    }

    pub fn level_fits(&self, level: Level) -> bool {
        self.level_total(level) <= self.budget.ram
    }

    /// The strictest level the set fits at, if any.
    pub fn fits_at(&self) -> Option<Level> {
        Level::ALL.into_iter().find(|l| self.level_fits(*l))
    }

    /// With the observed level of `obs` (read from `source`).
    pub fn with_observation(
        mut self,
        obs: &crate::observation::Observation,
        source: &str,
    ) -> Report {
        let b = &self.budget;
        let mut replaced = Vec::new();
        let mut total = b.exposure.as_ref().map_or(b.typical, |e| e.rest);
        if let (Some(e), Some(p)) = (&b.exposure, &obs.postgres) {
            let active = p.peaks.get("active").map_or(0.0, |x| x.max).ceil() as u64;
            total += e.heavy_query * active;
            replaced.push(format!(
                "heavy queries at once: {active}, the most active backends seen at once in {:.0} s \
                 ({source}), instead of the busy share's {}",
                obs.seconds, e.required
            ));
        }
        if let Some(r) = &obs.redis {
            let assumed: ByteSize = b
                .terms
                .iter()
                .filter(|t| t.service == Scope::Redis)
                .map(|t| t.typical)
                .sum();
            let rss = r.peaks.get("used_memory_rss").map_or(0.0, |x| x.max);
            let cow = ["rdb_last_cow_size", "aof_last_cow_size"]
                .iter()
                .filter_map(|k| r.gauges.get(*k))
                .fold(0.0_f64, |a, b| a.max(*b));
            if assumed > ByteSize::ZERO {
                let seen = ByteSize((rss + cow) as u64);
                total = total - assumed.min(total) + seen;
                replaced.push(format!(
                    "Redis: {seen} (its peak RSS {} + the last fork's copy-on-write {}, {source}) \
                     instead of its typical {assumed}",
                    ByteSize(rss as u64),
                    ByteSize(cow as u64)
                ));
            }
        }
        if let Some(b) = &obs.pgbouncer {
            let assumed: ByteSize = self
                .budget
                .terms
                .iter()
                .filter(|t| t.service == Scope::Pgbouncer)
                .map(|t| t.typical)
                .sum();
            let peak = |k: &str| b.peaks.get(k).map_or(0.0, |x| x.max).ceil() as u64;
            let (clients, servers) = (
                peak("clients_active") + peak("clients_waiting"),
                peak("servers_active"),
            );
            let pkt_buf = b
                .settings
                .iter()
                .find(|s| s.name == "pkt_buf")
                .and_then(|s| s.value.parse::<u64>().ok())
                .unwrap_or(4096);
            if assumed > ByteSize::ZERO {
                // As the budget's own term: each connection's buffer and
                // its 1 KiB, plus the process.
                let seen =
                    (ByteSize(pkt_buf) + ByteSize::kib(1)) * (clients + servers) + ByteSize::mib(2);
                total = total - assumed.min(total) + seen;
                replaced.push(format!(
                    "PgBouncer: {seen} for the {clients} client and {servers} server connection(s) \
                     active at once at their most, observe's own console connection among them \
                     ({source}), instead of its typical {assumed}"
                ));
            }
        }
        if let Some(p) = &obs.postgres {
            let temp_files: f64 = p
                .databases
                .values()
                .filter_map(|c| c.get("temp_files"))
                .sum();
            replaced.push(format!(
                "kept: each heavy query's sort and hash memory is the worst case's (PostgreSQL \
                 counts no backend's work memory; {temp_files:.0} temp file(s) in the window say \
                 how many sorts or hashes outgrew work_mem)"
            ));
        }
        if obs.postgres.as_ref().is_some_and(|p| p.restarted)
            || obs.redis.as_ref().is_some_and(|r| r.restarted)
        {
            replaced
                .push("a server restarted inside the window: its peaks may miss the load".into());
        }
        self.observed = Some(ObservedLevel { total, replaced });
        self
    }

    /// Judged at `level`: below the worst case, a worst case over RAM is
    /// a warning that says by how much.
    pub fn at_level(mut self, level: Level) -> Report {
        self.level = level;
        if level != Level::Worst && !self.budget.total_fits() {
            let (judged, hint) = match level {
                Level::Busy => (
                    format!(
                        "the busy level ({}) is judged: --level worst requires the worst case",
                        self.level_total(Level::Busy)
                    ),
                    "at the worst case (every connection running its heavy query at once) the OOM killer \
                     picks a process; the exposure line says how many heavy queries the set survives",
                ),
                _ => (
                    format!("only the typical moment ({}) is checked", self.budget.typical),
                    "at the worst case (every connection sorting at once) the OOM killer picks a process",
                ),
            };
            self.findings.push(Finding::warning(
                Scope::Budget,
                None,
                format!(
                    "the worst case ({} of {}) does not fit: {judged}",
                    self.budget.worst, self.budget.ram
                ),
                Some(hint.into()),
            ));
        }
        self
    }

    /// With the start proof: its refusals and what it could not prove
    /// join the findings, in file:line order.
    pub fn with_start_proof(mut self, proof: crate::prove::StartProof) -> Report {
        self.findings.extend(proof.findings());
        self.findings.sort_by(|a, b| {
            let key = |f: &Finding| f.at.as_ref().map(|l| (l.file.clone(), l.line));
            key(a).cmp(&key(b))
        });
        self.start_proof = Some(proof);
        self
    }

    pub fn verdict(&self) -> Verdict {
        if self.unsafe_errors() > 0 {
            Verdict::Unsafe
        } else if !self.budget_fits() {
            Verdict::DoesNotFit
        } else if self.errors() > 0 {
            Verdict::Invalid
        } else {
            Verdict::Fits
        }
    }

    /// More findings about the same host (a live server's health).
    pub fn with_findings(mut self, more: impl IntoIterator<Item = Finding>) -> Report {
        self.findings.extend(more);
        self
    }
}

/// What a report concludes, worst first: settings that can lose data or
/// stop a server, a set that does not fit, settings a server refuses, or a
/// set that fits. Serialized as `unsafe`, `does-not-fit`, `invalid`,
/// `fits` (the JSON's `verdict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Unsafe,
    DoesNotFit,
    Invalid,
    Fits,
}

/// Validation, safety and budget of settings already loaded from files:
/// pure.
pub fn check_settings(
    settings: &HostSettings,
    target: &Host,
    live_huge_pages: Option<safety::LiveHugePages>,
) -> Report {
    judge(settings, target, live_huge_pages, true)
}

/// Safety and budget of what a live server runs: the same verdict, without
/// judging each value as a file's (the server took them, and its own
/// settings list holds parameters no file may set).
pub fn check_running(settings: &HostSettings, target: &Host) -> Report {
    judge(settings, target, None, false)
}

fn judge(
    settings: &HostSettings,
    target: &Host,
    live_huge_pages: Option<safety::LiveHugePages>,
    validate: bool,
) -> Report {
    let mut findings = Vec::new();
    if let (true, Some(pg)) = (validate, &settings.postgres) {
        findings.extend(findings::postgres(
            pg,
            settings.pg_version,
            settings.pg_build.as_deref(),
            settings.pg_release.as_deref(),
        ));
    }
    if let (true, Some(r)) = (validate, &settings.redis) {
        findings.extend(findings::redis(r, &settings.redis_version));
    }
    if let (true, Some(b)) = (validate, &settings.pgbouncer) {
        findings.extend(findings::pgbouncer(b, &settings.pgbouncer_version));
    }
    if let (true, Some(d)) = (validate, &settings.deployment) {
        findings.extend(d.findings.iter().cloned());
    }
    stated_releases(&mut findings, target);
    let ctx = safety::Context {
        pg_on_zfs: target.pg_on_zfs.value,
        pg_on_zfs_source: target.pg_on_zfs.source.clone(),
        live_huge_pages,
        wal_space: target
            .wal_space
            .as_ref()
            .map(|w| (w.value, w.source.clone())),
    };
    findings.extend(safety::findings(settings, &ctx, &target.assumptions));
    let budget = budget::compute(
        settings,
        target.ram.value,
        &target.ram.source,
        &target.reserves,
        &target.assumptions,
    );
    findings.extend(crate::read::limits::findings(settings, target.ram.value));
    // Borrowed keys: cloning the file name per comparison made sorting
    // 300 000 findings the slowest step of a check.
    fn key(f: &Finding) -> Option<(&str, usize)> {
        f.at.as_ref().map(|l| (l.file.as_str(), l.line))
    }
    findings.sort_by(|a, b| key(a).cmp(&key(b)));
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
        pg_version_source: target.pg_version.source.clone(),
        // The releases the files were checked against, for each service
        // whose files there are (a render's own check names none).
        redis_version: settings
            .redis
            .as_ref()
            .map(|_| target.redis_version.clone())
            .filter(|v| !v.version.is_empty()),
        pgbouncer_version: settings
            .pgbouncer
            .as_ref()
            .map(|_| target.pgbouncer_version.clone())
            .filter(|v| !v.version.is_empty()),
        postgres_checked: settings.postgres.is_some(),
        files,
        findings,
        budget,
        level: Level::Worst,
        assumptions: target.assumptions.clone(),
        start_proof: None,
        observed: None,
    }
}

/// A key that exists only in other releases is an error when the target
/// release was stated (a flag, facts, a manifest); when it was assumed
/// (this machine's server, the newest), a warning that names the releases
/// that have it and the flag to state yours.
fn stated_releases(findings: &mut [Finding], target: &Host) {
    for f in findings.iter_mut() {
        let Some(releases) = &f.other_releases else {
            continue;
        };
        let (stated, assumed, flag) = match f.service {
            Scope::Postgres => (
                target.pg_version_stated,
                format!(
                    "PostgreSQL {} ({})",
                    target.pg_version.value, target.pg_version.source
                ),
                "--pg-version",
            ),
            Scope::Redis => (
                target.redis_version.stated,
                format!(
                    "Redis {} ({})",
                    target.redis_version.version, target.redis_version.source
                ),
                "--redis-version",
            ),
            Scope::Pgbouncer => (
                target.pgbouncer_version.stated,
                format!(
                    "PgBouncer {} ({})",
                    target.pgbouncer_version.version, target.pgbouncer_version.source
                ),
                "--pgbouncer-version",
            ),
            _ => continue,
        };
        if stated {
            continue;
        }
        f.severity = Severity::Warning;
        f.message = format!(
            "{}; the release is not stated, {assumed} was assumed",
            f.message
        );
        f.hint = Some(format!(
            "{} {}: state the release the file is for with {flag} (or a facts file), \
             and this is an error when it lacks the key",
            releases.join(", "),
            if releases.len() == 1 {
                "has it"
            } else {
                "have it"
            },
        ));
        f.hint = f.hint.take().map(|h| {
            if releases.len() == 1 {
                format!("release {h}")
            } else {
                format!("releases {h}")
            }
        });
    }
}

/// Which total of the budget must fit in RAM, strictest first. An
/// `observed` level (what a live host was seen to hold, from `observe`)
/// goes after `typical` once observations exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Every connection sorting, every worker busy, every fork copying:
    /// the honest ceiling, what render and apply size for.
    #[default]
    Worst,
    /// check-budget's default gate: the set at its typical moment while
    /// the busy share of the queries that can run at once (max_connections,
    /// or PgBouncer's pools in front) are heavy ones (the worst case's
    /// query: its nodes at hash_mem, JIT where it can run).
    Busy,
    /// A typical moment (a share of connections running one node each).
    Typical,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Worst, Level::Busy, Level::Typical];

    pub fn name(self) -> &'static str {
        match self {
            Level::Worst => "worst case",
            Level::Busy => "busy",
            Level::Typical => "typical",
        }
    }
}

/// How a report is written: each format is a variant here and one function
/// below (the command line's names for them are in `cli`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A readable report (colour only on a terminal, never with NO_COLOR).
    Text,
    /// A stable JSON document (docs/check-budget.md).
    Json,
    /// GitHub Actions annotations at file:line, then the text report.
    Github,
}

impl Report {
    /// The report in `format`; `color` only matters to text.
    pub fn render(&self, format: Format, color: bool) -> String {
        match format {
            Format::Text => text(self, color),
            Format::Json => json(self),
            Format::Github => github(self),
        }
    }
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

/// check-budget's text report (and render's, inspect's): the findings, the
/// budget table, the assumptions and one verdict line.
pub fn text(r: &Report, color: bool) -> String {
    Text { report: r, color }.to_string()
}

pub struct Text<'a> {
    pub report: &'a Report,
    /// ANSI colour on the severities and the verdict.
    pub color: bool,
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, s: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, p) = (self.report, Paint(self.color));
        for f in &r.findings {
            let sev = match f.severity {
                Severity::Error => p.wrap("1;31", "error"),
                Severity::Warning => p.wrap("1;33", "warning"),
            };
            let at = f.at.as_ref().map_or(String::new(), |l| format!("{l}: "));
            let unsafe_ = if f.safety { "unsafe: " } else { "" };
            writeln!(s, "{at}{sev}: {unsafe_}{}", f.message)?;
            if let Some(h) = &f.hint {
                writeln!(s, "  hint: {h}")?;
            }
        }
        if !r.findings.is_empty() {
            writeln!(s)?;
        }
        let b = r.budget.clone();
        write!(s, "{}", b.table())?;
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
            Level::Busy => format!(
                "busy level {} of {ram} ({}; worst case {worst})",
                r.level_total(Level::Busy),
                match &r.budget.exposure {
                    Some(e) => format!(
                        "{} heavy queries at once survive, {} needed",
                        e.survives.min(e.can_run),
                        e.required
                    ),
                    None => "no PostgreSQL: the typical moment".to_string(),
                }
            ),
            Level::Typical => format!(
                "typical {} of {ram} (--level typical; worst case {worst})",
                r.budget.typical
            ),
        };
        if let Some(proof) = &r.start_proof {
            write!(s, "{proof}")?;
        }
        writeln!(s, "levels: {}", levels_text(r))?;
        if let Some(o) = &r.observed {
            for x in &o.replaced {
                writeln!(s, "observed: {x}")?;
            }
        }
        if let Some(e) = &r.budget.exposure {
            writeln!(s, "exposure: {}", e.describe(ram))?;
        }
        writeln!(s, "assumptions: {}", r.assumptions.describe())?;
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
        writeln!(
        s,
        "\n{verdict}: {budget_line}; {errors} error(s){unsafe_note}, {warnings} warning(s); {versions}"
    )
    }
}

/// Each level's total and whether it fits, the strictest that does, and
/// the place of the observed level.
pub fn levels_text(r: &Report) -> String {
    let mut parts: Vec<String> = Level::ALL
        .iter()
        .map(|l| {
            let total = r.level_total(*l);
            let fits = if total <= r.budget.ram {
                "fits".to_string()
            } else {
                format!("{} over", total - r.budget.ram)
            };
            format!("{} {total} ({fits})", l.name())
        })
        .collect();
    parts.push(match &r.observed {
        Some(o) => {
            let fits = if o.total <= r.budget.ram {
                "fits".to_string()
            } else {
                format!("{} over", o.total - r.budget.ram)
            };
            format!("observed {} ({fits})", o.total)
        }
        None => "observed: none (no observation of the live host)".into(),
    });
    let at = match r.fits_at() {
        Some(l) => format!("fits at the {} level", l.name()),
        None => "fits at no level".to_string(),
    };
    format!(
        "{}; {at}, judged at {} (--level)",
        parts.join(", "),
        r.level.name()
    )
}

#[derive(Serialize)]
struct JsonLevel {
    total: ByteSize,
    fits: bool,
    /// The assumptions an observation replaced (the observed level).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replaced: Vec<String>,
}

#[derive(Serialize)]
struct JsonLevels {
    worst: JsonLevel,
    busy: JsonLevel,
    typical: JsonLevel,
    /// What a live host was seen to hold: null until observations exist.
    observed: Option<JsonLevel>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    /// Bumped only on incompatible changes.
    schema: u32,
    verdict: Verdict,
    ram: ByteSize,
    ram_source: &'a str,
    pg_version: PgVersion,
    pg_version_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_version: Option<&'a crate::read::catalog::ServiceVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pgbouncer_version: Option<&'a crate::read::catalog::ServiceVersion>,
    level: Level,
    /// The strictest level the set fits at, null when none.
    fits_at: Option<Level>,
    levels: JsonLevels,
    #[serde(skip_serializing_if = "Option::is_none")]
    exposure: Option<&'a budget::Exposure>,
    /// Counts of the findings, whatever the verdict: a set can be both
    /// over its RAM and invalid.
    errors: usize,
    warnings: usize,
    #[serde(rename = "unsafe")]
    unsafe_: usize,
    assumptions: &'a crate::model::Assumptions,
    worst: ByteSize,
    typical: ByteSize,
    headroom: i128,
    files: &'a [String],
    findings: &'a [Finding],
    terms: &'a [budget::Term],
    #[serde(skip_serializing_if = "Option::is_none")]
    start_proof: Option<&'a [crate::prove::ServiceProof]>,
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
        fits_at: r.fits_at(),
        levels: {
            let at = |l: Level| JsonLevel {
                total: r.level_total(l),
                fits: r.level_fits(l),
                replaced: Vec::new(),
            };
            JsonLevels {
                worst: at(Level::Worst),
                busy: at(Level::Busy),
                typical: at(Level::Typical),
                observed: r.observed.as_ref().map(|o| JsonLevel {
                    total: o.total,
                    fits: o.total <= r.budget.ram,
                    replaced: o.replaced.clone(),
                }),
            }
        },
        exposure: r.budget.exposure.as_ref(),
        errors: r.errors(),
        warnings: r.findings.len() - r.errors(),
        unsafe_: r.unsafe_errors(),
        assumptions: &r.assumptions,
        worst: r.budget.worst,
        typical: r.budget.typical,
        headroom: r.budget.headroom(),
        files: &r.files,
        findings: &r.findings,
        terms: &r.budget.terms,
        start_proof: r.start_proof.as_ref().map(|p| p.services.as_slice()),
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
        // A place without a line (a whole file, a server's refusal that
        // names none) is annotated on the file: `line=0` is no line.
        let loc = f.at.as_ref().map_or(String::new(), |l| match l.line {
            0 => format!("file={},", gh_escape(&l.file, true)),
            n => format!("file={},line={n},", gh_escape(&l.file, true)),
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
                    "does not fit: {} {} of {} RAM ({}), --level {}",
                    r.level.name(),
                    r.level_total(r.level),
                    r.budget.ram,
                    r.budget.ram_source,
                    match r.level {
                        Level::Worst => "worst",
                        Level::Busy => "busy",
                        Level::Typical => "typical",
                    }
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
