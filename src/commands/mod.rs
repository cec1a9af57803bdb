//! The commands: turn parsed flags into a resolved host and profile, run
//! the pipeline, and print. Data to stdout, everything else to stderr.
//! `detect` and `profiles` are here; one module per larger command
//! ([`render_cmd`], [`check_cmd`], [`bench_cmd`]; [`shell_cmd`] for
//! completions and the man page); the live commands are in `live`, one
//! module per verb.

mod advise_cmd;
mod bench_cmd;
mod check_cmd;
mod render_cmd;
mod shell_cmd;

use bench_cmd::bench;
use check_cmd::check_budget;
pub use check_cmd::json_error;
use render_cmd::render_cmd;
pub use render_cmd::resolve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::console;
use crate::error::Error;
use crate::facts::detect::Detector;
use crate::facts::Suggestion;
use crate::note;
use crate::profile::Profiles;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Detect {
            json,
            workload,
            data_dir,
            root,
        } => detect(json, workload, data_dir, root),
        Command::Profiles { json } => profiles(json),
        Command::Render(args) => render_cmd(args),
        Command::CheckBudget(args) => check_budget(args),
        Command::Inspect(args) => crate::live::inspect::inspect(args),
        Command::Observe(args) => crate::live::observe::observe(args),
        Command::Advise(args) => advise_cmd::advise(args),
        Command::Compare(args) => advise_cmd::compare(args),
        Command::Diff(args) => crate::live::diff::diff(args),
        Command::Apply(args) => crate::live::apply::apply(args),
        Command::Bench(args) => bench(args),
        Command::BenchHoldMemory { bytes } => {
            crate::bench::services::hold_memory(bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => shell_cmd::completions(shell),
        Command::Man { dir } => shell_cmd::man(dir.as_deref()),
    }
}

fn detect(
    json: bool,
    workload: Option<crate::profile::Workload>,
    data_dir: Option<PathBuf>,
    root: Option<PathBuf>,
) -> Result<ExitCode> {
    let detector =
        match root {
            // A fixture tree that is not there would describe an empty host.
            Some(root) if !root.is_dir() => return Err(Error::plain(
                format!("--root: `{}` is not a directory", root.display()),
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
    // The host's size is a fact; what runs on it is a question: detect says
    // what render tunes when none is named, never a profile guessed by size.
    let (p, _, reason) = crate::profile::unnamed(&Profiles::load()?, workload)?;
    facts.suggested_profile = Some(Suggestion {
        name: p.name,
        reason,
    });
    let text = if json {
        serde_json::to_string_pretty(&facts)? + "\n"
    } else {
        facts.to_string()
    };
    console::print(&text)?;
    Ok(ExitCode::SUCCESS)
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
