//! PgBouncer's start proof: the files' sections and keys in the order
//! PgBouncer reads them (`%include`s followed by dbtune), each written as
//! `key = value` (a pgbouncer.ini value is the rest of its line, so nothing
//! is lost), leaving out the keys the proof decides; then a `[pgbouncer]`
//! section of the proof's own. Ready means it answers on its socket.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Result;

use super::{Attempt, Override, Process, Scratch, Server, ServerLine, ServiceProof, Wait, Why};
use crate::note;
use crate::read::catalog::BouncerCatalog;
use crate::read::settings::{Location, Read, ServiceSettings};
use crate::secret;
use crate::service::{Scope, Service};

/// A pgbouncer on this machine and its release (`1.18.0`).
#[derive(Clone, Debug)]
pub struct Binary {
    pub program: PathBuf,
    pub release: String,
}

/// The pgbouncer of `release` (`1.18`) on this machine: the one on PATH
/// (or /usr/sbin, /usr/local/bin) when it is that release, else the one
/// scripts/fetch-redis-pgbouncer.sh built.
pub fn find(release: &str) -> Option<Binary> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(crate::facts::detect::which("pgbouncer"));
    candidates.push("/usr/sbin/pgbouncer".into());
    candidates.push("/usr/local/bin/pgbouncer".into());
    candidates.push(super::server_cache().join(format!("pgbouncer/{release}/bin/pgbouncer")));
    let (program, release) =
        super::find_program(candidates, release_of, |v| super::major_minor(v) == release)?;
    Some(Binary { program, release })
}

/// `1.18.0` from "PgBouncer 1.18.0".
fn release_of(program: &Path) -> Option<String> {
    let out = super::version_output(program)?;
    out.lines()
        .next()?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// `[pgbouncer]` keys the proof sets itself (the files' lines for them are
/// left out), with the value and why.
fn own(scratch: &Path, port: u16) -> Vec<(&'static str, String, Why)> {
    let dir = scratch.display().to_string();
    vec![
        ("listen_addr", String::new(), Why::Place),
        ("listen_port", port.to_string(), Why::Place),
        ("unix_socket_dir", dir, Why::Place),
        ("unix_socket_mode", "0700".into(), Why::Place),
        ("pidfile", String::new(), Why::Place),
        ("logfile", String::new(), Why::Logging),
        ("syslog", "0".into(), Why::Logging),
    ]
}

/// `[pgbouncer]` keys that name the host's files and accounts, and what
/// the proof does instead: a file missing here becomes an empty one in
/// the scratch directory; the account the server runs as and TLS (the
/// host's certificate files) are left out.
enum Host {
    /// A file the server opens: kept when it is here, else an empty one.
    File(&'static str),
    LeftOut(&'static str),
}

fn host_key(key: &str, value: &str) -> Option<Host> {
    match key {
        "auth_file" => Some(Host::File("userlist.txt")),
        "auth_hba_file" => Some(Host::File("pg_hba.conf")),
        "user" => Some(Host::LeftOut("(left out: the proof runs as its own user)")),
        "client_tls_sslmode" if value != "disable" => Some(Host::LeftOut("disable")),
        _ => None,
    }
}

/// The proof's pgbouncer.ini, which file:line each of its lines stands
/// for, and what it overrode; files to create in the scratch directory.
fn conf(
    s: &ServiceSettings,
    scratch: &Path,
    port: u16,
) -> (String, Vec<Option<Location>>, Vec<Override>, Vec<String>) {
    let own = own(scratch, port);
    let shown = |v: &str| v.replace(&scratch.display().to_string(), "<scratch>");
    let mut overrides: Vec<Override> = own
        .iter()
        .map(|(key, value, why)| Override {
            // [pgbouncer] keys are named as written in the section.
            name: key.to_string(),
            ..Override::of(
                s,
                Scope::Pgbouncer,
                &format!("pgbouncer.{key}"),
                shown(value),
                *why,
            )
        })
        .collect();
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut empty_files = Vec::new();
    let mut text = String::from(
        ";; dbtune --prove-start: the files' sections and keys, then the proof's own\n",
    );
    let mut map = vec![None];
    for item in s.in_order() {
        match item {
            Read::Section(name, at) => {
                text.push_str(&format!("[{name}]\n"));
                map.push(Some(at.clone()));
            }
            Read::Setting(full, e) => {
                let (section, key) = full.split_once('.').unwrap_or(("", full));
                if section == "pgbouncer" {
                    if own.iter().any(|(k, _, _)| *k == key) {
                        continue;
                    }
                    let value = e.value.as_str();
                    match host_key(key, value) {
                        Some(Host::File(_)) if Path::new(value).is_file() => {}
                        Some(Host::File(file)) => {
                            let path = scratch.join(file).display().to_string();
                            overrides.push(Override {
                                name: key.to_string(),
                                to: format!(
                                    "{} (empty: the file is not on this machine)",
                                    shown(&path)
                                ),
                                from: Some(secret::show(Scope::Pgbouncer, full, value)),
                                at: Some(e.at.clone()),
                                why: Why::Host,
                            });
                            extra.push((key.to_string(), path));
                            empty_files.push(file.to_string());
                            continue;
                        }
                        Some(Host::LeftOut(to)) => {
                            overrides.push(Override {
                                name: key.to_string(),
                                to: to.to_string(),
                                from: Some(secret::show(Scope::Pgbouncer, full, value)),
                                at: Some(e.at.clone()),
                                why: Why::Host,
                            });
                            if key == "client_tls_sslmode" {
                                extra.push((key.to_string(), "disable".into()));
                            }
                            continue;
                        }
                        None => {}
                    }
                }
                text.push_str(&format!("{key} = {}\n", e.value));
                map.push(Some(e.at.clone()));
            }
        }
    }
    // A section may be opened again: these keys join [pgbouncer], last.
    text.push_str("[pgbouncer]\n");
    map.push(None);
    for (key, value) in own
        .iter()
        .map(|(k, v, _)| (k.to_string(), v.clone()))
        .chain(extra)
    {
        text.push_str(&format!("{key} = {value}\n"));
        map.push(None);
    }
    (text, map, overrides, empty_files)
}

/// A PgBouncer started for the proof, running until dropped.
pub struct Running {
    pub process: Process,
    pub scratch: Scratch,
    pub port: u16,
}

/// Starts `b` with the files' settings in a new scratch directory.
pub fn start(b: &Binary, s: &ServiceSettings) -> Result<(Attempt<Running>, Vec<Override>)> {
    let scratch = Scratch::new()?;
    let port = crate::bench::cluster::free_port()?;
    let (text, map, overrides, empty) = conf(s, scratch.path(), port);
    for f in &empty {
        scratch.write(f, "")?;
    }
    let ini = scratch.write("pgbouncer.ini", &text)?;
    let mut c = scratch.command(&b.program);
    c.arg(&ini);
    let mut process = Process::spawn(c, &scratch.path().join("pgbouncer.log"))?;
    let socket = scratch.path().join(format!(".s.PGSQL.{port}"));
    let attempt = match process.wait(|| answers(&socket)) {
        Wait::Ready => Attempt::Running(Running {
            process,
            scratch,
            port,
        }),
        Wait::Exited(status) => Attempt::Refused(refusal(
            &process.log(),
            s,
            &map,
            &ini,
            (scratch.path(), &b.release),
            status,
        )),
        Wait::Timeout => Attempt::NotReady(format!(
            "PgBouncer {} did not answer within {} s (it was stopped)",
            b.release,
            super::READY_WITHIN.as_secs()
        )),
    };
    Ok((attempt, overrides))
}

/// PgBouncer answers an SSLRequest on its socket (`N` or `S`): its event
/// loop runs.
fn answers(socket: &Path) -> bool {
    let Ok(mut c) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
    let ssl_request = [0u8, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut buf = [0u8; 1];
    c.write_all(&ssl_request).is_ok() && c.read(&mut buf).is_ok_and(|n| n == 1)
}

/// `ERROR message` from "2026-11-30 15:46:30.032 UTC [32390] ERROR message".
fn log_line(line: &str) -> Option<(&str, &str)> {
    let (_, rest) = line.split_once("] ")?;
    rest.split_once(' ')
}

/// What PgBouncer said when it refused: its ERROR, FATAL and WARNING
/// lines, each placed at the line of the files it names.
fn refusal(
    log: &str,
    s: &ServiceSettings,
    map: &[Option<Location>],
    ini: &Path,
    (scratch, release): (&Path, &str),
    status: ExitStatus,
) -> Vec<ServerLine> {
    let cat = BouncerCatalog::get(&super::major_minor(release));
    // [pgbouncer] keys the release knows; a [databases] entry is a
    // connection string, masked as one; anything else (a [users] line, a
    // line of an included .env file) may hold anything.
    let known = |n: &str| match n.split_once('.') {
        Some(("pgbouncer", key)) => cat.key(key).is_some(),
        Some(("databases", _)) => true,
        _ => false,
    };
    let in_conf = format!(" in configuration ({}:", ini.display());
    let mut out = Vec::new();
    for line in log.lines().map(str::trim_end) {
        let text = match log_line(line) {
            Some((level @ ("ERROR" | "FATAL" | "WARNING"), msg)) => format!("{level} {msg}"),
            Some(_) => continue,
            None if line.trim().is_empty() => continue,
            None => line.to_string(),
        };
        let mut text = text;
        let mut at = None;
        if let Some(i) = text.find(&in_conf) {
            let rest = &text[i + in_conf.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            at = digits
                .parse::<usize>()
                .ok()
                .and_then(|n| map.get(n.checked_sub(1)?).cloned().flatten());
            let after = rest[digits.len()..].strip_prefix(')').unwrap_or("");
            text = format!("{}{after}", &text[..i]);
        }
        // "unknown parameter: pgbouncer/foo_bar"
        if at.is_none() {
            if let Some(name) = text.split("parameter: ").nth(1) {
                at = s
                    .get(&name.trim().replacen('/', ".", 1))
                    .map(|e| e.at.clone());
            }
        }
        if at.is_none() {
            at = super::setting_named(&text, s, |w| format!("pgbouncer.{w}"));
        }
        out.push(ServerLine {
            text: super::scrub(&text, Scope::Pgbouncer, s, scratch, &known),
            at,
        });
    }
    if out.is_empty() {
        out.push(ServerLine {
            text: format!("it exited ({status}) before answering and logged nothing"),
            at: None,
        });
    }
    out
}

/// The proof of one pgbouncer.ini set with this machine's PgBouncer
/// `release`.
pub fn prove(s: &ServiceSettings, release: &str) -> ServiceProof {
    let main = s.files.first().cloned().unwrap_or_default();
    let Some(b) = find(release) else {
        return ServiceProof::not_proven(
            Service::Pgbouncer,
            &main,
            format!("no PgBouncer {release} here"),
            &format!(
                "to prove the set starts, put PgBouncer {release} on this machine (its package, \
                 or bash scripts/fetch-redis-pgbouncer.sh)"
            ),
        );
    };
    note!(
        "start proof: starting PgBouncer {} ({}) in a scratch directory",
        b.release,
        b.program.display()
    );
    let server = Server {
        release: format!("PgBouncer {}", b.release),
        program: b.program.clone(),
    };
    let proof = match start(&b, s) {
        Ok((attempt, overrides)) => {
            let mut p = ServiceProof::new(Service::Pgbouncer, &main, super::outcome(attempt));
            p.overrides = overrides;
            p
        }
        Err(e) => ServiceProof::not_proven(
            Service::Pgbouncer,
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
    fn the_files_keys_come_first_in_their_sections_and_the_proofs_last() {
        let s = grammar::pgbouncer_ini(
            "[databases]\napp = host=127.0.0.1 dbname=app password=x\n[pgbouncer]\nlisten_port = 6432\n\
             auth_file = /nonexistent/userlist.txt\nuser = pgbouncer\nmax_client_conn = 200\n",
            "pgbouncer.ini",
        )
        .unwrap();
        let (text, map, overrides, empty) = conf(&s, Path::new("/scratch"), 7000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "[databases]");
        assert_eq!(lines[2], "app = host=127.0.0.1 dbname=app password=x");
        assert_eq!(map[2].as_ref().unwrap().line, 2);
        assert_eq!(lines[3], "[pgbouncer]");
        assert_eq!(lines[4], "max_client_conn = 200");
        assert!(!text.contains("6432") && !text.contains("user = pgbouncer"));
        assert!(text.contains("\nlisten_port = 7000\n"));
        assert!(text.contains("\nauth_file = /scratch/userlist.txt\n"));
        assert_eq!(empty, ["userlist.txt"]);
        let port = overrides.iter().find(|o| o.name == "listen_port").unwrap();
        assert_eq!(
            (port.from.as_deref(), port.to.as_str()),
            (Some("6432"), "7000")
        );
        let auth = overrides.iter().find(|o| o.name == "auth_file").unwrap();
        assert_eq!(auth.why, Why::Host);
        assert!(auth.to.starts_with("<scratch>/userlist.txt"), "{}", auth.to);
    }

    #[test]
    fn log_lines_give_their_level() {
        assert_eq!(
            log_line("2026-11-30 15:46:30.032 UTC [32390] FATAL cannot load config file"),
            Some(("FATAL", "cannot load config file"))
        );
        assert_eq!(log_line("no brackets here"), None);
    }
}
