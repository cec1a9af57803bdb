use std::process::ExitCode;

use clap::Parser;
use dbtune::console;
use dbtune::error::{Error, EXIT_ERROR};
use dbtune::secret::args_masked;

fn main() -> ExitCode {
    let cli = match dbtune::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap echoes bad values: a URL with its password must not
            // show (the whole argument is replaced by its masked form).
            let text = args_masked(&e.render().to_string()).into_owned();
            // check-budget --format json answers in JSON on every exit,
            // a command line it cannot parse too (stdout; stderr as usual).
            if e.use_stderr() && wants_json_check() {
                let message = text.lines().next().unwrap_or("");
                let message = message.trim_start_matches("error: ");
                let _ = console::print(&dbtune::commands::json_error(
                    message,
                    None,
                    Some("see `dbtune check-budget --help`"),
                ));
            }
            if e.use_stderr() {
                console::message(text.trim_end_matches('\n'));
            } else if let Err(w) = console::print(&text) {
                // --help and --version are data: one that cannot be
                // written (a full disk) fails like any other output (a
                // closed pipe stays quiet in `console`).
                console::message(&format!("error: cannot write to stdout: {w}"));
                return ExitCode::from(EXIT_ERROR);
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match dbtune::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The whole cause chain: "cannot read x: permission denied".
            console::message(&format!("error: {e:#}"));
            // dbtune's own errors carry their exit code; anything else
            // (I/O, a server's error) means it could not run.
            ExitCode::from(e.downcast_ref::<Error>().map_or(EXIT_ERROR, Error::code))
        }
    }
}

/// Whether the command line asks for `check-budget` with `--format json`
/// (looked at by hand because clap could not parse it).
fn wants_json_check() -> bool {
    // args_os: an argument that is not UTF-8 (a file name) must not
    // panic here; it is neither of the two words looked for.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let check = args.iter().any(|a| a == "check-budget");
    let json = args.iter().any(|a| a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json");
    check && json
}
