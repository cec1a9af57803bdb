//! `render`: the profile and host resolved, the plan, its files checked as
//! check-budget checks files, then printed or written into `--out`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::RenderArgs;
use crate::console;
use crate::error::{Error, EXIT_NO};
use crate::facts::detect::Detector;
use crate::facts::Facts;
use crate::note;
use crate::plan::{self, Host};
use crate::profile::{self, Origin, Profile, Profiles};
use crate::read::report;
use crate::render::{self, output};
use crate::service::FileKind;
use crate::service::Service;
use crate::target;

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
            let (p, origin, say) = profile::unnamed(&Profiles::load()?, args.workload)?;
            note!("profile {}: {say}", p.name);
            (p, origin)
        }
    };
    let (profile, said) = profile.with_workload(args.workload);
    if let Some(said) = said {
        note!("{said}");
    }
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
    let host = target::resolve(
        &flags,
        None,
        target::Purpose::Render {
            profile: &profile,
            facts: facts.as_ref(),
        },
    )?;
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

pub(super) fn render_cmd(args: RenderArgs) -> Result<ExitCode> {
    use crate::cli::Layout;
    let (profile, origin, host, without_only) = resolve(&args)?;
    // The flag, else the profile's (how the team deploys), else systemd.
    let layout = args.layout.or(profile.layout).unwrap_or_default();
    if layout != Layout::Systemd && !args.only.is_empty() {
        // The compose file mounts every file beside it; an operator's file
        // is one file.
        let (whose, hint) = if args.layout.is_some() {
            (
                "--layout",
                "leave out --only (or use --services to choose the services)",
            )
        } else {
            (
                "the profile's layout",
                "leave out --only, or add --layout systemd to print single files",
            )
        };
        return Err(Error::plain(
            format!("--only cannot be used with {whose} {layout}: its files go together"),
            hint,
        )
        .into());
    }
    let (plan, mut artifacts) = render_checked(&args, &profile, &host, layout)?;
    let mut without_only = without_only;
    let operator = match layout {
        Layout::Cnpg => Some(crate::read::operator::Operator::Cnpg),
        Layout::Patroni => Some(crate::read::operator::Operator::Patroni),
        Layout::Systemd | Layout::Compose => None,
    };
    if let Some(operator) = operator {
        let template_dir = args.templates.clone().or_else(render::user_template_dir);
        artifacts = vec![render::render_operator(
            &plan,
            &artifacts,
            operator,
            template_dir,
        )?];
        without_only = None;
    }
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
            let manifest = crate::manifest::Manifest {
                dbtune_version: env!("CARGO_PKG_VERSION").into(),
                profile: profile.name.clone(),
                profile_origin: origin.to_string(),
                layout,
                host: (&plan.host).into(),
                reserves: plan.host.reserves.clone(),
                assumptions: plan.host.assumptions.clone(),
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
    layout: crate::cli::Layout,
) -> Result<(plan::Plan, Vec<render::Artifact>)> {
    let mut plan = plan::build(profile, host)?;
    plan.layout = layout;
    let compose = layout == crate::cli::Layout::Compose;
    let plan = if compose {
        plan::layout::compose(plan)
    } else {
        plan
    };
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
    if compose {
        artifacts.extend(render::render_compose(&plan, &report.budget, template_dir)?);
    } else {
        artifacts.extend(render::render_limits(&plan, &report.budget, template_dir)?);
    }
    let budget = &report.budget;
    let summary = format!(
        "budget for profile {} on {} ({}), PostgreSQL {}: worst case {} of {} ({})",
        profile.name,
        host.ram.value,
        host.ram.source,
        host.pg_version.value,
        budget.worst,
        budget.ram,
        budget.headroom_text()
    );
    if !report.ok() || !report.findings.is_empty() {
        // The plan sizes everything to fit and writes only valid settings;
        // reaching this is a dbtune bug or an override template's doing.
        return Err(Error::refusal(format!(
            "the rendered files do not pass their own check: {summary}\n{}",
            report::text(&report, false)
        ))
        .with_hint(
            "if you use override templates, check they print the plan's values; otherwise \
             please report this with the command line",
        )
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
        FileKind::Zfs => format!("ZFS is not used on this host ({})", host.zfs.source),
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
