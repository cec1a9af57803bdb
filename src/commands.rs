//! The commands: turn parsed flags into a resolved host and profile, run
//! the pipeline, and print. Data to stdout, everything else to stderr.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::read::{discover, report};
use crate::version::PgVersion;

use crate::cli::{CheckArgs, Cli, Command, Format, RenderArgs};
use crate::console;
use crate::error::{Error, EXIT_NO};
use crate::facts::detect::Detector;
use crate::facts::{Facts, Suggestion};
use crate::note;
use crate::plan::{self, Host};
use crate::profile::{self, Origin, Profile, Profiles};
use crate::render::{self, output};
use crate::service::FileKind;
use crate::service::Service;
use crate::target;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Detect {
            json,
            data_dir,
            root,
        } => detect(json, data_dir, root),
        Command::Profiles { json } => profiles(json),
        Command::Render(args) => render_cmd(args),
        Command::CheckBudget(args) => check_budget(args),
        Command::Inspect(args) => crate::live::inspect::inspect(args),
        Command::Diff(args) => crate::live::diff::diff(args),
        Command::Apply(args) => crate::live::apply::apply(args),
        Command::Bench(args) => bench(args),
    }
}

fn check_budget(args: CheckArgs) -> Result<ExitCode> {
    let format = args.format;
    match check_budget_report(&args) {
        Ok(code) => Ok(code),
        // With --format json every exit prints JSON, a failure to run too.
        Err(e) if format == Format::Json => {
            let ours = e.downcast_ref::<Error>();
            let text = json_error(
                &ours.map_or_else(|| format!("{e:#}"), |i| i.message().to_string()),
                ours.and_then(Error::location),
                ours.and_then(Error::hint),
            );
            console::print(&text)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// check-budget's answer when it cannot run (exit 2) in `--format json`:
/// what went wrong, where, and the hint; a command-line argument with a
/// password in it is masked before it becomes JSON.
pub fn json_error(message: &str, at: Option<&str>, hint: Option<&str>) -> String {
    let mask = |s: &str| crate::secret::args_masked(s).into_owned();
    let doc = serde_json::json!({
        "schema": 1,
        "verdict": "error",
        "error": { "message": mask(message), "at": at.map(mask), "hint": hint },
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn check_budget_report(args: &CheckArgs) -> Result<ExitCode> {
    let found = discover::discover(&args.paths)?;
    let profile = match &args.profile {
        Some(name) => Some(Profiles::load()?.get(name)?.0),
        None => None,
    };
    let flags = target::Flags {
        ram: args.ram,
        facts: args.facts.as_deref(),
        filesystem: args.filesystem.as_deref(),
        pg_version: args.pg_version,
        redis_version: args.redis_version.as_deref(),
        pgbouncer_version: args.pgbouncer_version.as_deref(),
        profile: profile.as_ref(),
        reserves: &args.reserve,
        assumptions: target::AssumptionFlags {
            sorts_per_query: args.sorts_per_query,
            busy_share: args.busy_share,
            manual_maintenance: args.manual_maintenance,
            backend_memory: args.backend_memory,
        },
        ..Default::default()
    };
    let host = target::resolve(
        &flags,
        found.manifest.as_ref(),
        target::ThisMachine::WithNote,
        None,
    )?;
    for n in &host.notes {
        note!("{n}");
    }
    let mut settings = discover::load_found(
        &found,
        host.pg_version,
        host.pg_build.clone(),
        args.root.as_deref(),
    )?;
    // An assumed release is validated as the newest, and budgeted with the
    // largest factors measured (as render does).
    settings.redis_version = host.redis_version.known().unwrap_or("").to_string();
    settings.pg_release = host.pg_release.clone();
    settings.pgbouncer_version = host.pgbouncer_version.version.clone();
    let mut report = report::check_settings(&settings, &host, None).at_level(args.level);
    if args.prove_start {
        report = report.with_start_proof(crate::prove::check(&settings, &host));
    }
    if settings.redis.is_some() {
        report.redis_version = Some(host.redis_version.clone());
    }
    if settings.pgbouncer.is_some() {
        report.pgbouncer_version = Some(host.pgbouncer_version.clone());
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let out = report.render(args.format, color);
    if color {
        console::print_colored(&out)?;
    } else {
        console::print(&out)?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

fn detect(json: bool, data_dir: Option<PathBuf>, root: Option<PathBuf>) -> Result<ExitCode> {
    let detector =
        match root {
            // A fixture tree that is not there would describe an empty host.
            Some(root) if !root.is_dir() => return Err(Error::input(
                "--root",
                format!("`{}` is not a directory", root.display()),
                "pass a directory laid out like / (proc/, sys/, ...), as tests/fixtures/hosts has",
            )
            .into()),
            Some(root) => Detector {
                root,
                probe_commands: false,
            },
            None => Detector::host(),
        };
    let mut facts = detector.detect(data_dir.as_deref());
    let (name, reason) = pick_for(&facts)?;
    facts.suggested_profile = Some(Suggestion { name, reason });
    let text = if json {
        serde_json::to_string_pretty(&facts)? + "\n"
    } else {
        facts.to_string()
    };
    console::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The profile closest to a host among every profile dbtune sees
/// (built-in and the user's).
fn pick_among(
    cat: &Profiles,
    ram: crate::units::ByteSize,
    cpus: u32,
    storage: crate::facts::StorageKind,
) -> (String, String) {
    profile::pick_from(cat.entries.iter().map(|(p, _)| p), ram, cpus, storage)
        .unwrap_or_else(|| profile::pick(ram, cpus, storage))
}

fn pick_for(f: &Facts) -> Result<(String, String)> {
    Ok(pick_among(
        &Profiles::load()?,
        f.memory.effective(),
        f.cpu.effective(),
        f.storage.kind.value,
    ))
}

fn profiles(json: bool) -> Result<ExitCode> {
    let cat = Profiles::load()?;
    let mut out = String::new();
    if json {
        let list: Vec<_> = cat
            .entries
            .iter()
            .map(|(p, o)| {
                serde_json::json!({
                    "name": p.name,
                    "description": p.description,
                    "workload": p.workload,
                    "origin": o.to_string(),
                    "host": p.host,
                })
            })
            .collect();
        out = serde_json::to_string_pretty(&list)? + "\n";
    } else {
        for (p, o) in &cat.entries {
            out.push_str(&format!(
                "{:<12} {:>7} {:>3} CPUs {:<4} PG {}  {}  [{}]\n",
                p.name,
                p.host.ram.to_string(),
                p.host.cpus,
                p.host.storage.to_string(),
                p.host.pg_version,
                p.description,
                o
            ));
        }
    }
    console::print(&out)?;
    if let (false, Some(d)) = (json, &cat.user_dir) {
        note!("user profiles are read from {}", d.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Picks the profile and resolves every host fact: flag > facts file >
/// detected > the profile's nominal host. The last is the profile as the
/// inputs give it without `--only`, when `--only` chose the services.
pub fn resolve(args: &RenderArgs) -> Result<(Profile, Origin, Host, Option<Profile>)> {
    let facts = match &args.facts {
        Some(f) => Some(Facts::load(f)?),
        None if args.profile.is_none() && args.profile_file.is_none() => {
            Some(Detector::host().detect(args.data_dir.as_deref()))
        }
        None => None,
    };
    let (profile, origin) = match (&args.profile_file, &args.profile) {
        (Some(f), _) => (profile::load_file(f)?, Origin::File(f.clone())),
        (None, Some(name)) => Profiles::load()?.get(name)?,
        (None, None) => {
            let f = facts
                .as_ref()
                .expect("facts are detected when no profile is named");
            let (name, reason) = pick_among(
                &Profiles::load()?,
                args.ram.unwrap_or(f.memory.effective()),
                args.cpus.unwrap_or(f.cpu.effective()),
                args.storage.unwrap_or(f.storage.kind.value),
            );
            note!("profile: {reason}");
            Profiles::load()?.get(&name)?
        }
    };
    let without_only = (args.services.is_empty() && !args.only.is_empty()).then(|| profile.clone());
    let profile = choose_services(profile, &args.services, &args.only);
    let flags = target::Flags {
        ram: args.ram,
        cpus: args.cpus,
        storage: args.storage,
        facts: args.facts.as_deref(),
        filesystem: args.filesystem.as_deref(),
        pg_version: args.pg_version,
        ..Default::default()
    };
    let host = target::render_host(&flags, facts.as_ref(), &profile);
    Ok((profile, origin, host, without_only))
}

/// The services the host runs: `--services`, else those `--only` names
/// (printing a subset of files for a host that runs more is what
/// `--services` is for), else the profile's. Said on stderr when it
/// differs from the profile.
fn choose_services(profile: Profile, services: &[Service], only: &[FileKind]) -> Profile {
    let from_only: Vec<Service> = only
        .iter()
        // ZFS is the facts' (or --services') call, not a file list's.
        .filter_map(|k| k.service())
        .collect();
    let (mut wanted, why) = if !services.is_empty() {
        (services.to_vec(), "--services")
    } else if !from_only.is_empty() {
        (from_only, "--only")
    } else {
        return profile;
    };
    if !wanted.contains(&Service::Postgres) {
        wanted.insert(0, Service::Postgres);
    }
    // --only leaves ZFS as the facts decide.
    let zfs_as_is = why == "--only";
    let before = profile.services();
    let zfs_mode = profile.zfs.enabled;
    let mut p = profile.with_services(&wanted);
    if zfs_as_is {
        p.zfs.enabled = zfs_mode;
    }
    wanted.sort();
    wanted.dedup();
    if p.services() != before {
        note!(
            "services: {} ({why}; profile {} runs {})",
            crate::service::list(&p.services()),
            p.name,
            crate::service::list(&before)
        );
    }
    p
}

fn render_cmd(args: RenderArgs) -> Result<ExitCode> {
    let (profile, origin, host, without_only) = resolve(&args)?;
    let picked = args.profile.is_none() && args.profile_file.is_none();
    let (plan, artifacts) = render_checked(&args, &profile, &host, picked)?;
    // What render owns in --out: every file it makes for these inputs;
    // --only limits what is written now, not what is dbtune's.
    let owned: Option<BTreeSet<&'static str>> = match &without_only {
        None => Some(artifacts.iter().map(|a| a.file).collect()),
        // A profile that only fits with the services --only chose: which
        // files the others would be is unknown, so nothing is removed.
        Some(p) => plan::build(p, &host)
            .ok()
            .map(|full| render::files_of(&full)),
    };
    let selected: Vec<_> = if args.only.is_empty() {
        artifacts
    } else {
        for k in &args.only {
            if !artifacts.iter().any(|a| a.kind == *k) {
                return Err(not_rendered(*k, &host).into());
            }
        }
        artifacts
            .into_iter()
            .filter(|a| args.only.contains(&a.kind))
            .collect()
    };
    match (&args.out, args.check) {
        (Some(dir), true) => check_out(dir, &selected, owned.as_ref()),
        (Some(dir), false) => {
            let manifest = output::Manifest {
                dbtune_version: env!("CARGO_PKG_VERSION").into(),
                profile: profile.name.clone(),
                profile_origin: origin.to_string(),
                host: plan.host.clone(),
                reserves: plan.reserves.clone(),
                assumptions: plan.assumptions.clone(),
                files: Default::default(),
            };
            let report = output::write_dir(dir, &selected, owned.as_ref(), manifest, args.force)?;
            say_written(&report, dir, args.force);
            match report.raced_error(dir) {
                // --force replaces edited files and keeps them: said above.
                Some(e) if !args.force => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        (None, _) => {
            let mut out = String::new();
            let many = selected.len() > 1;
            for (i, a) in selected.iter().enumerate() {
                if many {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str(&format!("# ==> {} <==\n", a.file));
                }
                out.push_str(&a.content);
            }
            console::print(&out).context("cannot write to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The plan and every file rendered from it, checked as check-budget
/// checks files (a refusal if they fail), with the budget said on stderr.
fn render_checked(
    args: &RenderArgs,
    profile: &Profile,
    host: &Host,
    picked: bool,
) -> Result<(plan::Plan, Vec<render::Artifact>)> {
    let plan = plan::build(profile, host).map_err(|e| match e {
        Error::Refusal(msg) if picked => Error::Refusal(format!(
            "{msg}\nnote: dbtune picked `{}` for this host; built-in profiles reserve memory for \
                 the applications they were written beside. A host that runs only the databases \
                 needs a profile of its own without [[reserve]] entries (docs/profiles.md)",
            profile.name
        )),
        other => other,
    })?;
    let template_dir = args.templates.clone().or_else(render::user_template_dir);
    if let Some(d) = &args.templates {
        if !d.is_dir() {
            return Err(Error::plain(
                format!("--templates `{}` is not a directory", d.display()),
                "name a directory holding files such as postgresql.conf.j2",
            )
            .into());
        }
    }
    let mut artifacts = render::render(&plan, template_dir.clone())?;
    let report = render::check(&plan, &artifacts)?;
    // The limits that make the budget real come from the files' own budget.
    artifacts.extend(render::render_limits(&plan, &report.budget, template_dir)?);
    let budget = &report.budget;
    let summary = format!(
        "budget for profile {} on {} ({}), PostgreSQL {}: worst case {} of {} ({})",
        profile.name,
        host.ram,
        host.ram_source,
        host.pg_version,
        budget.worst,
        budget.ram,
        budget.headroom_text()
    );
    if !report.ok() || !report.findings.is_empty() {
        // The plan sizes everything to fit and writes only valid settings;
        // reaching this is a dbtune bug or an override template's doing.
        return Err(Error::Refusal(format!(
            "the rendered files do not pass their own check: {summary}\n{}\
             hint: if you use override templates, check they print the plan's values; \
             otherwise please report this with the command line",
            report::text(&report, false)
        ))
        .into());
    }
    note!("{summary}\n{}", budget.table());
    for n in &plan.notes {
        note!("note: {n}");
    }
    Ok((plan, artifacts))
}

/// render --check --out DIR: the diff, and exit 1 when the directory
/// differs from what dbtune renders now.
fn check_out(
    dir: &Path,
    selected: &[render::Artifact],
    owned: Option<&BTreeSet<&str>>,
) -> Result<ExitCode> {
    let found = output::check_dir(dir, selected, owned)?;
    if found.diff.is_empty() {
        note!("{}: up to date", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    console::print(&found.diff)?;
    let them = if found.edited.len() == 1 {
        "it"
    } else {
        "them"
    };
    let hint = if found.edited.is_empty() {
        "run the same command without --check to update it".to_string()
    } else {
        format!(
            "{} changed by hand (or not written by dbtune): the same command without --check \
             refuses to replace {them}; add --force to replace {them} (each kept as FILE.bak)",
            found.edited.join(", "),
        )
    };
    let stale = if found.stale.is_empty() {
        String::new()
    } else {
        format!(
            "\nnote: no longer rendered for these inputs: {} (render removes {})",
            found.stale.join(", "),
            if found.stale.len() == 1 { "it" } else { "them" }
        )
    };
    note!(
        "{}: differs from what dbtune renders now{stale}{}\nhint: {hint}",
        dir.display(),
        found.distrust_note
    );
    Ok(ExitCode::from(EXIT_NO))
}

/// What writing the directory did, on stderr (without --force, a file
/// edited while render ran is the error render ends with).
fn say_written(report: &output::WriteReport, dir: &Path, force: bool) {
    if !report.cleaned.is_empty() {
        note!(
            "removed temporary files an interrupted run left: {}",
            report.cleaned.join(", ")
        );
    }
    for (f, bak) in &report.kept_leftovers {
        note!(
            "an interrupted run had moved aside a {f} it had not compared yet: kept as {}",
            bak.display()
        );
    }
    for why in &report.distrusted {
        note!("note: not taken as proof of what dbtune wrote: {why}");
    }
    for (f, target) in &report.through_links {
        note!("{f} is a symlink: wrote through to {}", target.display());
    }
    for (f, bak) in &report.backed_up {
        note!("kept your {f} as {}", bak.display());
    }
    for (f, bak) in report.raced.iter().filter(|_| force) {
        note!(
            "{f} changed while dbtune was replacing it: kept the change as {}",
            bak.display()
        );
    }
    if !report.written.is_empty() {
        note!("wrote {} in {}", report.written.join(", "), dir.display());
    }
    if !report.removed.is_empty() {
        note!(
            "removed {} (no longer rendered for these inputs)",
            report.removed.join(", ")
        );
    }
    if !report.unchanged.is_empty() {
        note!("unchanged: {}", report.unchanged.join(", "));
    }
}

fn not_rendered(k: FileKind, host: &Host) -> Error {
    let why = match k {
        FileKind::Redis => "Redis is not among the host's services".to_string(),
        FileKind::Pgbouncer => "PgBouncer is not among the host's services".to_string(),
        FileKind::Zfs => format!("ZFS is not used on this host ({})", host.zfs_source),
        FileKind::Postgres | FileKind::Os | FileKind::Limits => "it is always rendered".to_string(),
    };
    Error::plain(
        format!(
            "--only {}: nothing to render, {why}",
            format!("{k:?}").to_lowercase()
        ),
        "add it with --services, or leave it out of --only",
    )
}

fn bench(args: crate::cli::BenchArgs) -> Result<ExitCode> {
    use crate::bench::{self, Options, Workload};
    let facts = Detector::host().detect(None);
    let ram = facts.memory.effective();
    let (cpus, storage) = (facts.cpu.effective(), facts.storage.kind.value);
    let pg_version = facts.servers.pg_version().ok_or_else(|| {
        Error::plain(
            format!(
                "no PostgreSQL {} found on this machine",
                PgVersion::range_text()
            ),
            "apt-get install postgresql",
        )
    })?;
    let configs = bench_configs(&args, &facts, pg_version)?;
    let workloads = if args.only.is_empty() {
        vec![
            Workload::Floor,
            Workload::CopyIndex,
            Workload::ConcurrentCopy,
            Workload::Tpcb,
            Workload::SelectOnly,
            Workload::Write,
            Workload::Analytic,
        ]
    } else {
        args.only.clone()
    };
    let opts = Options {
        rows: args.rows,
        streams: args.streams,
        scale: args.scale.unwrap_or_else(|| bench::scale_for(ram)),
        clients: args.clients,
        seconds: args.seconds,
        write_seconds: args.write_seconds,
        runs: args.runs,
        workloads,
    };
    note!(
        "bench on this machine: {ram}, {cpus} CPUs, {storage}, PostgreSQL {pg_version}; {} configs, {} runs each",
        configs.len(),
        opts.runs
    );
    let series = bench::run(&configs, &opts, |m| note!("{m}"))?;
    if args.json {
        console::print(&(serde_json::to_string_pretty(&series)? + "\n"))?;
    } else {
        console::print(&bench::report(&series, &configs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The configs bench compares on this machine: PostgreSQL's defaults, a
/// PGTune-style baseline, each profile asked for (and its initial-load
/// variant), and the user's own files.
fn bench_configs(
    args: &crate::cli::BenchArgs,
    facts: &Facts,
    pg_version: PgVersion,
) -> Result<Vec<crate::bench::Config>> {
    use crate::bench::{self, Config};
    let ram = facts.memory.effective();
    let (cpus, storage) = (facts.cpu.effective(), facts.storage.kind.value);
    let mut configs = vec![
        Config {
            name: "defaults".into(),
            conf: String::new(),
            extra: vec![],
        },
        Config {
            name: "pgtune-dw".into(),
            conf: bench::pgtune::dw(ram, cpus, storage, pg_version),
            extra: vec![],
        },
    ];
    let names = if args.profile.is_empty() {
        vec![profile::pick(ram, cpus, storage).0]
    } else {
        args.profile.clone()
    };
    let catalog = Profiles::load()?;
    let mut variants = Vec::new();
    for name in names {
        let (p, _) = catalog.get(&name)?;
        if args.initial_load && p.postgres.replication {
            let mut load = p.clone();
            load.postgres.replication = false;
            variants.push((format!("dbtune {name} initial-load"), load));
        }
        variants.push((format!("dbtune {name}"), p));
    }
    variants.sort_by_key(|(n, _)| n.ends_with("initial-load"));
    for (label, p) in variants {
        let mut host = target::render_host(&target::Flags::default(), Some(facts), &p);
        // The scratch clusters live in temp dirs, never on ZFS.
        host.zfs = false;
        host.zfs_source = "bench: not on ZFS".into();
        host.pg_on_zfs = false;
        host.pg_on_zfs_source = "bench: scratch clusters in temp dirs".into();
        host.zfs_datasets = false;
        host.pg_version = pg_version;
        let plan = plan::build(&p, &host)?;
        let conf = render::render(&plan, None)?
            .into_iter()
            .find(|a| a.kind == FileKind::Postgres)
            .expect("postgresql.conf is always rendered")
            .content;
        // No huge pages are reserved on this machine for the scratch cluster.
        let extra = if conf.contains("\nhuge_pages = on") {
            vec![("huge_pages".into(), "off".into())]
        } else {
            vec![]
        };
        configs.push(Config {
            name: label,
            conf,
            extra,
        });
    }
    for c in &args.config {
        let (name, path) = c.split_once('=').ok_or_else(|| {
            Error::plain(
                format!("--config `{c}` is not NAME=FILE"),
                "e.g. --config mine=/etc/postgresql/15/main/postgresql.conf",
            )
        })?;
        let conf = crate::read::include::read_text(std::path::Path::new(path))?;
        configs.push(Config {
            name: name.into(),
            conf,
            extra: vec![],
        });
    }
    Ok(configs)
}
