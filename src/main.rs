use std::process::ExitCode;

use clap::Parser;
use dbtune::error::{Error, EXIT_ERROR};
use dbtune::redact::scrub;

fn main() -> ExitCode {
    let cli = match dbtune::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // check-budget --format json answers in JSON on every exit,
            // a command line it cannot parse too (stdout; stderr as usual).
            if e.use_stderr() && wants_json_check() {
                let first = e.render().to_string();
                let message = first
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                print!(
                    "{}",
                    dbtune::commands::json_error(
                        message,
                        None,
                        Some("see `dbtune check-budget --help`")
                    )
                );
            }
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
        Err(e) => {
            // The whole cause chain: "cannot read x: permission denied".
            eprintln!("{}", scrub(&format!("error: {e:#}")));
            // dbtune's own errors carry their exit code; anything else
            // (I/O, a server's error) means it could not run.
            ExitCode::from(e.downcast_ref::<Error>().map_or(EXIT_ERROR, Error::code))
        }
    }
}

/// Whether the command line asks for `check-budget` with `--format json`
/// (looked at by hand because clap could not parse it).
fn wants_json_check() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "check-budget");
    let json = args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json");
    check && json
}
