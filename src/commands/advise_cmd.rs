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
    Ok(ExitCode::SUCCESS)
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
