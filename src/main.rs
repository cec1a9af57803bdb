use std::process::ExitCode;

use clap::Parser;
use dbtune::error::{Refusal, EXIT_ERROR, EXIT_NO};
use dbtune::redact::scrub;

fn main() -> ExitCode {
    let cli = match dbtune::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap echoes bad values: a password in one must not show.
            let text = e.render().to_string();
            let clean = scrub(&text);
            if clean == text {
                e.exit();
            }
            if e.use_stderr() {
                eprint!("{clean}");
            } else {
                print!("{clean}");
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match dbtune::commands::run(cli) {
        Ok(code) => code,
        Err(e) if e.is::<Refusal>() => {
            eprintln!("{}", scrub(&format!("error: {e}")));
            ExitCode::from(EXIT_NO)
        }
        Err(e) => {
            // The whole cause chain: "cannot read x: permission denied".
            eprintln!("{}", scrub(&format!("error: {e:#}")));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
