//! `advise`: an observation (read from a file, or taken first from URLs)
//! turned into proposals by `advise`, judged against the host the servers
//! run on.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::advise;
use crate::cli::{AdviseArgs, AdviseFormat, CompareArgs, ObserveArgs};
use crate::console;
use crate::observation::Observation;
use crate::render::Artifact;
use crate::service::FileKind;
use crate::units::ByteSize;

pub(super) fn advise(args: AdviseArgs) -> Result<ExitCode> {
    let from_file = match args.inputs.as_slice() {
        [one] if !one.contains("://") => Some(Path::new(one).to_path_buf()),
        _ => None,
    };
    let obs = match &from_file {
        Some(path) => read(path)?,
        None => crate::live::observe::observe_for(&ObserveArgs {
            targets: args.inputs.clone(),
            seconds: args.seconds,
            interval: 1,
            out: None,
            host: args.host.clone(),
            live: args.live.clone(),
        })?,
    };
    let host = host(&obs, &args)?;
    let advice = advise::advise(&obs, &host);
    let text = match args.format {
        AdviseFormat::Json => serde_json::to_string_pretty(&advice)? + "\n",
        AdviseFormat::Text => advise::text(&advice),
    };
    console::print(&text)?;
    if let Some(dir) = &args.out {
        write_out(dir, &obs, &advice, &host, &args)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The advised set written as a directory render's readers take, with a
/// manifest naming the host it was judged for.
fn write_out(
    dir: &Path,
    obs: &Observation,
    advice: &advise::Advice,
    host: &crate::target::Host,
    args: &AdviseArgs,
) -> Result<()> {
    let (files, notes) = crate::advise_out::files(obs, advice);
    if files.is_empty() {
        return Err(crate::error::Error::refusal(
            "nothing to write: the observation has no PostgreSQL or Redis settings",
        )
        .with_hint("observe with a role that may read pg_settings, or CONFIG GET on Redis")
        .into());
    }
    let artifacts: Vec<Artifact> = files
        .into_iter()
        .map(|f| Artifact {
            kind: match f.name {
                "redis.conf" => FileKind::Redis,
                _ => FileKind::Postgres,
            },
            file: f.name,
            template: "(advise)",
            content: f.content,
            executable: false,
        })
        .collect();
    let owned: std::collections::BTreeSet<&str> = artifacts.iter().map(|a| a.file).collect();
    let from = match args.inputs.as_slice() {
        [one] if !one.contains("://") => format!("observation {one}"),
        _ => "servers observed for this run".into(),
    };
    let manifest = crate::manifest::Manifest {
        dbtune_version: env!("CARGO_PKG_VERSION").into(),
        profile: "advise".into(),
        profile_origin: crate::secret::args_masked(&from).into_owned(),
        layout: Default::default(),
        host: host.into(),
        reserves: host.reserves.clone(),
        assumptions: host.assumptions.clone(),
        files: Default::default(),
    };
    let report =
        crate::render::output::write_dir(dir, &artifacts, Some(&owned), manifest, args.force)?;
    if let Some(e) = report.raced_error(dir) {
        if !args.force {
            return Err(e.into());
        }
    }
    for (f, bak) in &report.backed_up {
        crate::note!("kept your {f} as {}", bak.display());
    }
    if !report.written.is_empty() {
        crate::note!("wrote {} in {}", report.written.join(", "), dir.display());
    }
    if !report.unchanged.is_empty() {
        crate::note!("unchanged: {}", report.unchanged.join(", "));
    }
    for n in notes {
        crate::note!("note: {n}");
    }
    Ok(())
}

/// `compare`: two observation files; exit 1 when a measure regressed.
pub(super) fn compare(args: CompareArgs) -> Result<ExitCode> {
    let (before, after) = (read(&args.before)?, read(&args.after)?);
    let c = crate::compare::compare(&before, &after);
    let text = match args.format {
        AdviseFormat::Json => serde_json::to_string_pretty(&c)? + "\n",
        AdviseFormat::Text => crate::compare::text(&c),
    };
    console::print(&text)?;
    let regressed = c
        .changes
        .iter()
        .any(|x| x.outcome == crate::compare::Outcome::Regressed);
    Ok(if regressed {
        ExitCode::from(crate::error::EXIT_NO)
    } else {
        ExitCode::SUCCESS
    })
}

/// An observation file, checked to be one this dbtune reads.
pub(super) fn read(path: &Path) -> Result<Observation> {
    let text = crate::input::read_text(path, "observation", crate::input::MAX_DOCUMENT)?;
    Ok(crate::observation::parse(&text, path)?)
}

/// The host to judge the proposals against: flags and facts first, else
/// the observation's own host (resolved when it was taken).
fn host(obs: &Observation, args: &AdviseArgs) -> Result<crate::target::Host> {
    let mut flags = crate::target::Flags {
        ram: args.host.ram,
        facts: args.host.facts.as_deref(),
        filesystem: args.host.filesystem.as_deref(),
        ..Default::default()
    };
    // The releases the servers run, for the advised files' checks.
    flags.redis_version = obs.redis.as_ref().map(|r| r.version.as_str());
    flags.pgbouncer_version = obs.pgbouncer.as_ref().map(|b| b.version.as_str());
    if flags.ram.is_none() && flags.facts.is_none() {
        flags.ram = Some(ByteSize(obs.host.ram_bytes));
    }
    let postgres = obs.postgres.as_ref().map(|p| crate::target::LivePostgres {
        major: p.major,
        build: p.build.clone(),
        release: p.version.clone(),
    });
    crate::target::resolve(
        &flags,
        None,
        crate::target::Purpose::Live {
            all_local: false,
            postgres: postgres.as_ref(),
            data_dir: None,
        },
    )
}
