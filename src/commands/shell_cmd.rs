//! `completions` and `man`: the command line described for shells and for
//! man, generated from the same clap definitions as the parser (`cli`), so
//! neither can drift from the flags dbtune accepts.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::console;

/// The completion script for `shell` on stdout: the script names the binary
/// `dbtune`, whatever path it was run by.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dbtune", &mut out);
    console::print(&String::from_utf8(out).context("completion script is not UTF-8")?)?;
    Ok(ExitCode::SUCCESS)
}

/// dbtune.1 on stdout, or, with a directory, that page and one page per
/// command (dbtune-render.1...), as packages install them.
pub fn man(dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write man pages into `{}`", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            console::print(&String::from_utf8(out).context("man page is not UTF-8")?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
