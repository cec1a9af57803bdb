//! `check-budget`: the files found, the host resolved for judging them,
//! the report in the format asked.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{CheckArgs, Format};
use crate::console;
use crate::error::{Error, Place, EXIT_NO};
use crate::note;
use crate::profile::Profiles;
use crate::read::{discover, report};
use crate::target;

pub(super) fn check_budget(args: CheckArgs) -> Result<ExitCode> {
    let format = args.format;
    match check_budget_report(&args) {
        Ok(code) => Ok(code),
        // With --format json every exit prints JSON, a failure to run too.
        Err(e) if format == Format::Json => {
            let ours = e.downcast_ref::<Error>();
            let text = json_error(
                &ours.map_or_else(|| format!("{e:#}"), |i| i.message().to_string()),
                ours.and_then(Error::place),
                ours.and_then(Error::hint),
            );
            console::print(&text)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// check-budget's answer when it cannot run (exit 2) in `--format json`:
/// what went wrong, where (`at` as file:line, and each part), and the
/// hint; a command-line argument with a password in it is masked before it
/// becomes JSON.
pub fn json_error(message: &str, place: Option<&Place>, hint: Option<&str>) -> String {
    let mask = |s: &str| crate::secret::args_masked(s).into_owned();
    let doc = serde_json::json!({
        "schema": 1,
        "verdict": "error",
        "error": {
            "message": mask(message),
            "at": place.map(|p| mask(&p.to_string())),
            "file": place.map(|p| mask(&p.file)),
            "line": place.and_then(|p| p.line),
            "setting": place.and_then(|p| p.setting.as_deref()),
            "hint": hint,
        },
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
        container: args.container,
        assumptions: target::AssumptionFlags {
            sorts_per_query: args.sorts_per_query,
            busy_share: args.busy_share,
            manual_maintenance: args.manual_maintenance,
            redis_write_rate: args.redis_write_rate,
            backend_memory: args.backend_memory,
            redis_role: args.redis_role,
        },
        deployment: found.deployment.as_ref().map(|(_, d)| d),
        ..Default::default()
    };
    let host = target::resolve(&flags, found.manifest.as_ref(), target::Purpose::Check)?;
    for n in &host.notes {
        note!("{n}");
    }
    let settings = discover::load_found(&found, &host.releases(), args.root.as_deref())?;
    let mut report = report::check_settings(&settings, &host, None).at_level(args.level);
    if args.prove_start {
        report = report.with_start_proof(crate::prove::check(&settings, &host));
    }
    if let Some(path) = &args.observed {
        let obs = super::advise_cmd::read(path)?;
        report = report.with_observation(&obs, &path.display().to_string());
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let out = report.render(args.format, color);
    if color {
        console::print_colored(&out)?;
    } else {
        console::print(&out)?;
    }
    Ok(if settings.has_unread_includes() {
        // Reported at its line with everything else; still "could not run".
        ExitCode::from(2)
    } else if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}
