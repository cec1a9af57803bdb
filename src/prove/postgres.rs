//! PostgreSQL's start proof: initdb in a scratch directory, a
//! postgresql.conf generated from the settings as dbtune read them, the
//! proof's own settings on the server's command line, and the postmaster's
//! own word that it accepts connections (`ready` in postmaster.pid, which
//! is what `pg_ctl start -w` reads).
//!
//! Why a generated file rather than the user's files: the settings are
//! those check-budget judged, includes already followed (`--root` too,
//! where an absolute include names the host's /etc, which the scratch
//! server could not read), every line the server names maps back to the
//! user's file:line, and no include can make the server read a file dbtune
//! did not. The cost: a line PostgreSQL's grammar refuses never reaches the
//! server (check-budget already reports it, by the same grammar, as an
//! error that stops the server), and a file PostgreSQL would read that
//! dbtune does not is not proven.
//!
//! Why the command line for the proof's own settings: it wins over any
//! file, and PostgreSQL still checks the file's value for each of them (a
//! `port = 'abc'` is still refused) without acting on it.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::Result;

use super::{Attempt, Override, Process, Scratch, Server, ServerLine, ServiceProof, Wait, Why};
use crate::note;
use crate::read::catalog::{Lookup, PgCatalog};
use crate::read::effective::Pg;
use crate::read::settings::{Location, ServiceSettings};
use crate::secret;
use crate::service::{Scope, Service};
use crate::units::ByteSize;
use crate::version::PgVersion;

/// PostgreSQL's programs of one major version on this machine.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The directory of `postgres` and `initdb`.
    pub bin: PathBuf,
    /// `15.18`.
    pub release: String,
}

/// The postgres (with initdb beside it) of `major` on this machine: the
/// one on PATH or the newest Debian one, Debian's and PGDG's directory for
/// that major, and the servers scripts/fetch-postgres.sh fetched.
pub fn find(major: u32) -> Option<Binaries> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(crate::facts::detect::postgres_bin_dir());
    dirs.push(format!("/usr/lib/postgresql/{major}/bin").into());
    dirs.push(format!("/usr/pgsql-{major}/bin").into());
    dirs.push(super::server_cache().join(format!("postgres/{major}/bin")));
    let candidates = dirs
        .iter()
        .filter(|d| d.join("initdb").is_file())
        .map(|d| d.join("postgres"))
        .collect();
    let (program, release) = super::find_program(candidates, release_of, |v| {
        v.split('.').next().and_then(|m| m.parse().ok()) == Some(major)
    })?;
    Some(Binaries {
        bin: program.parent()?.to_path_buf(),
        release,
    })
}

/// `15.18` from "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
fn release_of(program: &Path) -> Option<String> {
    let out = super::version_output(program)?;
    out.split_whitespace().nth(2).map(str::to_string)
}

/// Settings whose value lists libraries the server loads, and the JIT
/// provider it loads from its library directory.
const LIBRARIES: [&str; 4] = [
    "shared_preload_libraries",
    "local_preload_libraries",
    "session_preload_libraries",
    "jit_provider",
];

/// The first library a setting names from outside the server's own
/// library directory: anything with a `/` (`/tmp/x/evil`, `../x`) but
/// `$libdir/NAME`. A bare name is looked up in dynamic_library_path,
/// which the proof sets to `$libdir`. (setting, library, where)
fn foreign_library(s: &ServiceSettings) -> Option<(&'static str, String, Location)> {
    for name in LIBRARIES {
        let Some(e) = s.get(name) else { continue };
        for lib in e.value.split(',').map(|l| l.trim().trim_matches('"')) {
            let inside = match lib.strip_prefix("$libdir/") {
                Some(rest) => !rest.contains('/'),
                None => !lib.contains('/'),
            };
            if !inside {
                return Some((name, lib.to_string(), e.at.clone()));
            }
        }
    }
    None
}

/// A value quoted as PostgreSQL's config lexer reads it back (guc-file.l:
/// `''` for a quote, backslash escapes for the rest).
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The proof's postgresql.conf: every setting the files make, once, with
/// the value in effect (includes followed, the last line won), and for
/// each line of it the file:line it stands for.
pub fn conf(s: &ServiceSettings) -> (String, Vec<Option<Location>>) {
    let mut text = String::from(
        "# dbtune --prove-start: the files' settings as dbtune read them; the proof's own are on the command line\n",
    );
    let mut map = vec![None];
    for (name, entries) in &s.entries {
        let Some(e) = entries.last() else { continue };
        text.push_str(&format!("{name} = {}\n", quote(&e.value)));
        map.push(Some(e.at.clone()));
    }
    (text, map)
}

/// What the proof sets on the command line, each with the value to pass.
fn overrides(
    s: &ServiceSettings,
    version: PgVersion,
    scratch: &Path,
    port: u16,
) -> Vec<(Override, String)> {
    let cat = PgCatalog::get(version);
    let pg = Pg::new(s, version);
    let dir = scratch.display().to_string();
    let data = scratch.join("data").display().to_string();
    let shown = |v: &str| v.replace(&dir, "<scratch>");
    let mut out = Vec::new();
    let mut set = |name: &str, value: String, why: Why| {
        // Only what this major has: an unknown name on the command line
        // stops the server.
        if matches!(cat.lookup(name), Lookup::Known(_)) {
            let o = Override::of(s, Scope::Postgres, name, shown(&value), why);
            out.push((o, value));
        }
    };
    for (name, value) in [
        ("data_directory", data.clone()),
        ("config_file", format!("{dir}/postgresql.conf")),
        ("hba_file", format!("{data}/pg_hba.conf")),
        ("ident_file", format!("{data}/pg_ident.conf")),
        ("port", port.to_string()),
        ("listen_addresses", String::new()),
        ("unix_socket_directories", dir.clone()),
        ("external_pid_file", String::new()),
        ("log_directory", "log".into()),
        ("stats_temp_directory", "pg_stat_tmp".into()),
    ] {
        set(name, value, Why::Place);
    }
    for (name, value) in [
        ("logging_collector", "off"),
        ("log_destination", "stderr"),
        ("log_line_prefix", ""),
        ("log_min_messages", "warning"),
        ("log_error_verbosity", "default"),
        ("lc_messages", "C"),
    ] {
        set(name, value.into(), Why::Logging);
    }
    // Never run a command the files name, never load code from outside
    // the server's own library directory: a committed config must not
    // make CI run code. (A preloaded library with a path never gets here:
    // the proof does not start the server at all.)
    for (name, value) in [
        ("archive_command", ""),
        ("archive_library", ""),
        ("restore_command", ""),
        ("archive_cleanup_command", ""),
        ("recovery_end_command", ""),
        ("ssl_passphrase_command", ""),
        ("dynamic_library_path", "$libdir"),
    ] {
        set(name, value.into(), Why::Code);
    }
    // The certificate and key are the host's files.
    if pg.bool("ssl", false) {
        set("ssl", "off".into(), Why::Host);
    }
    // Memory is the budget's question; the scratch server gets at most
    // PostgreSQL's defaults. A value the server would refuse stays, for
    // the server to say so.
    let cap = |name: &str, max: ByteSize, out: &mut Vec<(Override, String)>| {
        if pg.read(name).is_some() && pg.mem(name, 0) > max.bytes() as i64 {
            let o = Override::of(s, Scope::Postgres, name, max.pg(), Why::Memory);
            out.push((o, max.pg()));
        }
    };
    cap("shared_buffers", ByteSize::mib(128), &mut out);
    cap("wal_buffers", ByteSize::mib(16), &mut out);
    if matches!(cat.lookup("min_dynamic_shared_memory"), Lookup::Known(_)) {
        cap("min_dynamic_shared_memory", ByteSize::mib(128), &mut out);
    }
    let huge = Override::of(s, Scope::Postgres, "huge_pages", "off", Why::Memory);
    out.push((huge, "off".into()));
    out
}

/// A PostgreSQL started for the proof, running until dropped.
pub struct Running {
    pub process: Process,
    /// The scratch directory: the data directory is `data` in it, and
    /// the socket is there (`-h` for psql).
    pub scratch: Scratch,
    pub port: u16,
}

/// Starts PostgreSQL from `b` with the files' settings in a new scratch
/// directory; the overrides it ran with.
pub fn start(
    b: &Binaries,
    s: &ServiceSettings,
    version: PgVersion,
) -> Result<(Attempt<Running>, Vec<Override>)> {
    let scratch = Scratch::new()?;
    let data = scratch.path().join("data");
    crate::bench::cluster::initdb(
        &b.bin,
        &data,
        scratch.ids,
        &["--locale=C", "--encoding=UTF8"],
    )?;
    let (text, map) = conf(s);
    let conf_path = scratch.write("postgresql.conf", &text)?;
    let port = crate::bench::cluster::free_port()?;
    let overrides = overrides(s, version, scratch.path(), port);
    let mut c = scratch.command(&b.bin.join("postgres"));
    c.arg("-D").arg(&data);
    for (o, value) in &overrides {
        c.arg("-c").arg(format!("{}={value}", o.name));
    }
    let mut process = Process::spawn(c, &scratch.path().join("postgres.log"))?;
    let pid_file = data.join("postmaster.pid");
    let attempt = match process.wait(|| ready(&pid_file)) {
        Wait::Ready => Attempt::Running(Running {
            process,
            scratch,
            port,
        }),
        Wait::Exited(status) => Attempt::Refused(refusal(
            &process.log(),
            s,
            &map,
            &conf_path,
            (scratch.path(), version),
            status,
        )),
        Wait::Timeout => Attempt::NotReady(format!(
            "PostgreSQL {} did not accept connections within {} s (it was stopped)",
            b.release,
            super::READY_WITHIN.as_secs()
        )),
    };
    Ok((attempt, overrides.into_iter().map(|(o, _)| o).collect()))
}

/// postmaster.pid's status line says `ready` (PM_STATUS_READY).
fn ready(pid_file: &Path) -> bool {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.lines().nth(7).map(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

/// Lines every start and stop logs, which say nothing about a refusal;
/// and the warning the proof's own empty archive_command causes.
const ROUTINE: &[&str] = &[
    "LOG:  starting PostgreSQL",
    "LOG:  listening on",
    "LOG:  database system",
    "LOG:  redirecting log output",
    "LOG:  ending log output",
    "LOG:  received fast shutdown",
    "LOG:  received smart shutdown",
    "LOG:  aborting any active transactions",
    "LOG:  background worker",
    "LOG:  shutting down",
    "LOG:  checkpoint starting",
    "LOG:  checkpoint complete",
    "LOG:  skipping missing configuration file",
    "WARNING:  archive_mode enabled, yet archiving is not configured",
];

/// Each line PostgreSQL logged when it refused, placed at the setting it
/// names. A line about the generated file (`in file "..." line N`) is
/// placed at the user's line that generated line stands for.
fn refusal(
    log: &str,
    s: &ServiceSettings,
    map: &[Option<Location>],
    conf_path: &Path,
    (scratch, version): (&Path, PgVersion),
    status: ExitStatus,
) -> Vec<ServerLine> {
    let cat = PgCatalog::get(version);
    let known = |n: &str| matches!(cat.lookup(n), Lookup::Known(_));
    let generated = conf_path.display().to_string();
    let main = s.files.first().cloned().unwrap_or_default();
    let in_file = format!(" in file \"{generated}\" line ");
    let mut out = Vec::new();
    for line in log.lines().map(str::trim_end) {
        if line.trim().is_empty() || ROUTINE.iter().any(|r| line.starts_with(r)) {
            continue;
        }
        let mut text = line.to_string();
        let mut at = None;
        if let Some(i) = text.find(&in_file) {
            let rest = &text[i + in_file.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            at = digits
                .parse::<usize>()
                .ok()
                .and_then(|n| map.get(n.checked_sub(1)?).cloned().flatten());
            text = format!("{}{}", &text[..i], &rest[digits.len()..]);
        }
        text = text.replace(&format!("\"{generated}\""), &format!("\"{main}\""));
        if at.is_none() {
            at = super::setting_named(&text, s, |w| w.to_ascii_lowercase());
        }
        // "FATAL:  could not..." reads as "FATAL: could not...".
        let text = text.replacen(":  ", ": ", 1);
        out.push(ServerLine {
            text: super::scrub(&text, Scope::Postgres, s, scratch, &known),
            at,
        });
    }
    if out.is_empty() {
        out.push(ServerLine {
            text: format!("it exited ({status}) before accepting connections and logged nothing"),
            at: None,
        });
    }
    out
}

/// The proof of one PostgreSQL set: does this machine's PostgreSQL of
/// `version` start with it?
pub fn prove(s: &ServiceSettings, version: PgVersion) -> ServiceProof {
    let main = s.files.first().cloned().unwrap_or_default();
    if let Some((name, lib, at)) = foreign_library(s) {
        let mut p = ServiceProof::not_proven(
            Service::Postgres,
            &main,
            format!(
                "{name} loads a library from outside the server's directory (`{}`)",
                secret::show(Scope::Postgres, name, &lib)
            ),
            "name it without a path: PostgreSQL then loads it from its own library directory \
             ($libdir); the proof never loads code from anywhere else",
        );
        if let super::Outcome::NotProven { at: a, .. } = &mut p.outcome {
            *a = Some(at);
        }
        return p;
    }
    let Some(b) = find(version.major()) else {
        return ServiceProof::not_proven(
            Service::Postgres,
            &main,
            format!("no PostgreSQL {version} here"),
            &format!(
                "to prove the set starts, install PostgreSQL {version}'s server on this machine \
                 (apt-get install postgresql-{version}, or bash scripts/fetch-postgres.sh)"
            ),
        );
    };
    note!(
        "start proof: starting PostgreSQL {} ({}) in a scratch directory",
        b.release,
        b.bin.display()
    );
    let server = Server {
        release: format!("PostgreSQL {}", b.release),
        program: b.bin.join("postgres"),
    };
    let proof = match start(&b, s, version) {
        Ok((attempt, overrides)) => {
            let mut p = ServiceProof::new(Service::Postgres, &main, super::outcome(attempt));
            p.overrides = overrides;
            p
        }
        Err(e) => ServiceProof::not_proven(
            Service::Postgres,
            &main,
            format!("the proof could not run here: {e:#}"),
            "fix what stopped it on this machine, or leave out --prove-start",
        ),
    };
    ServiceProof {
        server: Some(server),
        ..proof
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::grammar;

    #[test]
    fn a_generated_line_reads_back_as_the_value() {
        let values = [
            "plain",
            "it's",
            "back\\slash",
            "\"$user\", public",
            "line\nbreak\tand\rreturn",
            "bell\u{7}and\u{1}",
            "ünïcode ✓",
            "",
            "'quoted'",
            "\\'",
        ];
        let mut s = ServiceSettings::default();
        for (i, v) in values.iter().enumerate() {
            s.push(
                &format!("x.v{i}"),
                *v,
                Location {
                    file: "f".into(),
                    line: i + 1,
                },
            );
        }
        let (text, map) = conf(&s);
        let back = grammar::postgresql_conf(&text, "gen").unwrap();
        assert!(back.syntax_errors.is_empty(), "{:?}", back.syntax_errors);
        for (i, v) in values.iter().enumerate() {
            let e = back.get(&format!("x.v{i}")).unwrap();
            assert_eq!(e.value, *v);
            assert_eq!(map[e.at.line - 1].as_ref().unwrap().line, i + 1);
        }
    }

    fn settings(lines: &str) -> ServiceSettings {
        grammar::postgresql_conf(lines, "postgresql.conf").unwrap()
    }

    #[test]
    fn a_library_with_a_path_is_outside_the_servers_directory() {
        for (conf, outside) in [
            (
                "shared_preload_libraries = 'pg_stat_statements, auto_explain'",
                None,
            ),
            (
                "shared_preload_libraries = '$libdir/pg_stat_statements'",
                None,
            ),
            ("shared_preload_libraries = 'not_installed'", None),
            (
                "shared_preload_libraries = '/tmp/x/evil'",
                Some("/tmp/x/evil"),
            ),
            (
                "shared_preload_libraries = 'a, \"/tmp/x/evil\"'",
                Some("/tmp/x/evil"),
            ),
            (
                "local_preload_libraries = '../../tmp/evil'",
                Some("../../tmp/evil"),
            ),
            (
                "session_preload_libraries = '$libdir/../../tmp/evil'",
                Some("$libdir/../../tmp/evil"),
            ),
            ("jit_provider = '../../tmp/jit'", Some("../../tmp/jit")),
        ] {
            let got = foreign_library(&settings(conf)).map(|(_, l, _)| l);
            assert_eq!(got.as_deref(), outside, "{conf}");
        }
    }

    #[test]
    fn commands_are_emptied_and_memory_capped() {
        let s = settings(
            "archive_command = 'touch /tmp/MARKER'\nshared_buffers = '8GB'\nwal_buffers = 64\nhuge_pages = on\n\
             ssl = on\nport = 5433\n",
        );
        let o = overrides(&s, PgVersion::nearest(15), Path::new("/scratch"), 5999);
        let get = |n: &str| {
            o.iter()
                .find(|(o, _)| o.name == n)
                .map(|(o, v)| (o, v.as_str()))
        };
        let (a, v) = get("archive_command").unwrap();
        assert_eq!(
            (v, a.from.as_deref(), a.why),
            ("", Some("touch /tmp/MARKER"), Why::Code)
        );
        assert_eq!(get("restore_command").unwrap().1, "");
        assert_eq!(get("ssl_passphrase_command").unwrap().1, "");
        assert_eq!(get("archive_library").unwrap().1, "");
        assert_eq!(get("dynamic_library_path").unwrap().1, "$libdir");
        assert_eq!(get("shared_buffers").unwrap().1, "128MB");
        // 64 pages of 8 kB is not above 16 MB.
        assert!(get("wal_buffers").is_none());
        assert_eq!(get("huge_pages").unwrap().1, "off");
        assert_eq!(get("ssl").unwrap().1, "off");
        let (p, v) = get("port").unwrap();
        assert_eq!(
            (v, p.from.as_deref(), p.at.as_ref().map(|l| l.line)),
            ("5999", Some("5433"), Some(6))
        );
        assert_eq!(get("data_directory").unwrap().0.to, "<scratch>/data");
        // PostgreSQL 15 has no stats_temp_directory; 13 does.
        assert!(get("stats_temp_directory").is_none());
        let o13 = overrides(&s, PgVersion::nearest(13), Path::new("/scratch"), 5999);
        assert!(o13.iter().any(|(o, _)| o.name == "stats_temp_directory"));
        assert!(!o13.iter().any(|(o, _)| o.name == "archive_library"));
        // A small shared_buffers is left as it is.
        let small = settings("shared_buffers = '64MB'\n");
        let o = overrides(&small, PgVersion::nearest(15), Path::new("/s"), 1);
        assert!(!o.iter().any(|(o, _)| o.name == "shared_buffers"));
    }
}
