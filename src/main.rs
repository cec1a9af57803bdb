use std::process::ExitCode;

use clap::Parser;
use dbtune::error::{Refusal, EXIT_ERROR, EXIT_NO};

fn main() -> ExitCode {
    let cli = dbtune::cli::Cli::parse();
    match dbtune::commands::run(cli) {
        Ok(code) => code,
        Err(e) if e.is::<Refusal>() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_NO)
        }
        Err(e) => {
            // The whole cause chain: "cannot read x: permission denied".
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
