//! Redis's start proof: the files' own lines, copied as written (dbtune's
//! reader keeps a directive's arguments joined by spaces, so rewriting a
//! line from the parsed value would lose its quoting), in the order Redis
//! reads them with includes followed, leaving out the directives the proof
//! decides; then the proof's own lines, which Redis applies last. Ready
//! means it answers PING on its socket.
//!
//! Why leave the files' lines out rather than override them later: Redis
//! acts on some as it reads them (it changes to `dir` and opens `logfile`
//! at once, and a missing one stops it), and those name the host's paths.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{Attempt, Override, Process, Scratch, Server, ServerLine, ServiceProof, Wait, Why};
use crate::note;
use crate::read::catalog::RedisCatalog;
use crate::read::grammar;
use crate::read::settings::{Location, Read, ServiceSettings};
use crate::secret;
use crate::service::{Scope, Service};

/// A redis-server on this machine and its release (`7.0.15`).
#[derive(Clone, Debug)]
pub struct Binary {
    pub program: PathBuf,
    pub release: String,
}

/// The redis-server of `release` (`7.0`) on this machine: the one on
/// PATH or in /usr/bin or /usr/local/bin when it is that release, else the
/// one scripts/fetch-redis-pgbouncer.sh built.
pub fn find(release: &str) -> Option<Binary> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(crate::facts::detect::which("redis-server"));
    candidates.push("/usr/bin/redis-server".into());
    candidates.push("/usr/local/bin/redis-server".into());
    candidates.push(super::server_cache().join(format!("redis/{release}/bin/redis-server")));
    let (program, release) =
        super::find_program(candidates, release_of, |v| super::major_minor(v) == release)?;
    Some(Binary { program, release })
}

/// `7.0.15` from "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc...".
fn release_of(program: &Path) -> Option<String> {
    let out = super::version_output(program)?;
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map(str::to_string)
}

/// A Redis config argument in double quotes, as Redis reads it back.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The directives the proof sets itself (the files' lines for them are
/// left out), with the value and why.
fn own(scratch: &Path) -> Vec<(&'static str, String, Why)> {
    let dir = scratch.display().to_string();
    vec![
        ("port", "0".into(), Why::Place),
        ("bind", "127.0.0.1".into(), Why::Place),
        (
            "unixsocket",
            quoted(&format!("{dir}/redis.sock")),
            Why::Place,
        ),
        ("unixsocketperm", "700".into(), Why::Place),
        ("dir", quoted(&dir), Why::Place),
        ("dbfilename", "dump.rdb".into(), Why::Place),
        ("appendfilename", "appendonly.aof".into(), Why::Place),
        ("appenddirname", "appendonlydir".into(), Why::Place),
        // Read, written and locked at start in cluster mode; a corrupt one
        // is quoted whole in the refusal.
        (
            "cluster-config-file",
            quoted(&format!("{dir}/nodes.conf")),
            Why::Place,
        ),
        ("pidfile", quoted(""), Why::Place),
        ("daemonize", "no".into(), Why::Place),
        ("supervised", "no".into(), Why::Place),
        ("logfile", quoted(""), Why::Logging),
        ("syslog-enabled", "no".into(), Why::Logging),
        // TLS needs the host's certificate files.
        ("tls-port", "0".into(), Why::Host),
        ("tls-replication", "no".into(), Why::Host),
        ("tls-cluster", "no".into(), Why::Host),
    ]
}

/// Directives left out with nothing in their place, and why.
fn left_out(name: &str) -> Option<(&'static str, Why)> {
    match name {
        // A module is code: a committed config must not make CI run it.
        "loadmodule" => Some(("(not loaded)", Why::Code)),
        // A scratch server connects to no other server.
        "replicaof" => Some(("(left out)", Why::Host)),
        // The host's files (aclfile, tls-cert-file, tls-ca-cert-dir...):
        // the server would read them, and quote them when it cannot.
        _ if names_a_path(name) => Some(("(not read)", Why::Host)),
        _ => None,
    }
}

/// Whether a directive names a file or directory, by the words Redis
/// names them with (`aclfile`, `cluster-config-file`, `tls-ca-cert-dir`,
/// `appenddirname`): a directive a later release adds is caught by its
/// name, not by a list that must keep up.
fn names_a_path(name: &str) -> bool {
    name == "unixsocket"
        || name.split('-').any(|w| {
            w.ends_with("file") || w.ends_with("filename") || w == "dir" || w.ends_with("dirname")
        })
}

/// The proof's redis.conf, which file:line each of its lines stands for,
/// and what it overrode.
fn conf(
    s: &ServiceSettings,
    scratch: &Path,
) -> Result<(String, Vec<Option<Location>>, Vec<Override>)> {
    let own = own(scratch);
    let mut overrides: Vec<Override> = own
        .iter()
        .map(|(name, value, why)| {
            let to = value
                .trim_matches('"')
                .replace(&scratch.display().to_string(), "<scratch>");
            Override::of(s, Scope::Redis, name, to, *why)
        })
        .collect();
    let mut text = String::from("# dbtune --prove-start: the files' lines, then the proof's own\n");
    let mut map = vec![None];
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Settings only: an `include` line is never handed to the server. The
    // included files' lines come inline, in the order Redis reads them,
    // and only from the files dbtune itself read and checked.
    for item in s.in_order() {
        let Read::Setting(name, e) = item else {
            continue;
        };
        if own.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        if let Some((to, why)) = left_out(name) {
            overrides.push(Override {
                name: name.to_string(),
                to: to.to_string(),
                from: Some(secret::show(Scope::Redis, name, &e.value)),
                at: Some(e.at.clone()),
                why,
            });
            continue;
        }
        if !files.contains_key(&e.at.file) {
            let t = crate::read::include::read_text(Path::new(&e.at.file))?;
            files.insert(e.at.file.clone(), t.lines().map(str::to_string).collect());
        }
        let line = files[&e.at.file]
            .get(e.at.line.wrapping_sub(1))
            .map(|l| l.trim())
            .unwrap_or("");
        // The line must still be the one read (the file may have changed).
        let same = grammar::redis_items(line, &e.at.file)
            .ok()
            .and_then(|items| items.into_iter().next())
            .is_some_and(|i| matches!(i, grammar::Item::Directive { name: n, .. } if n == name));
        if !same {
            bail!("{} changed while dbtune read it", e.at);
        }
        text.push_str(line);
        text.push('\n');
        map.push(Some(e.at.clone()));
    }
    for (name, value, _) in &own {
        text.push_str(&format!("{name} {value}\n"));
        map.push(None);
    }
    Ok((text, map, overrides))
}

/// A Redis started for the proof, running until dropped.
pub struct Running {
    pub process: Process,
    pub scratch: Scratch,
}

/// Starts `b` with the files' lines in a new scratch directory.
pub fn start(b: &Binary, s: &ServiceSettings) -> Result<(Attempt<Running>, Vec<Override>)> {
    let scratch = Scratch::new()?;
    let (text, map, overrides) = conf(s, scratch.path())?;
    let conf_path = scratch.write("redis.conf", &text)?;
    let mut c = scratch.command(&b.program);
    c.arg(&conf_path);
    let mut process = Process::spawn(c, &scratch.path().join("redis.log"))?;
    let socket = scratch.path().join("redis.sock");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let attempt = match process.wait(|| answers(&socket)) {
        Wait::Ready => Attempt::Running(Running { process, scratch }),
        Wait::Exited(status) => Attempt::Refused(refusal(
            &process.log(),
            s,
            &map,
            &lines,
            (scratch.path(), &b.release),
            status,
        )),
        Wait::Timeout => Attempt::NotReady(format!(
            "Redis {} did not answer PING within {} s (it was stopped)",
            b.release,
            super::READY_WITHIN.as_secs()
        )),
    };
    Ok((attempt, overrides))
}

/// Redis answers on its socket: its event loop runs (a socket that only
/// listens may still be loading modules or data).
fn answers(socket: &Path) -> bool {
    let Ok(mut c) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 64];
    c.write_all(b"PING\r\n").is_ok() && c.read(&mut buf).is_ok_and(|n| n > 0)
}

/// A log line's level and message: `1:C 30 Nov 2026 15:46:20.078 # text`.
fn log_line(line: &str) -> Option<(char, &str)> {
    let mut it = line.splitn(6, ' ');
    let who = it.next()?;
    let (pid, role) = who.split_once(':')?;
    if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) || role.len() != 1 {
        return None;
    }
    let rest = it.nth(4)?;
    let mut chars = rest.chars();
    let level = chars.next()?;
    Some((level, chars.as_str().trim_start()))
}

/// Lines every start logs, at the warning level (`#`) in Redis 7.0 and
/// before: its banner, which says nothing about a refusal.
fn routine(msg: &str) -> bool {
    msg.starts_with("oO0OoO0OoO0Oo Redis is starting")
        || msg.starts_with("Redis version=")
        || msg == "Configuration loaded"
}

/// `>>> 'requirepasss ...'` as it may be shown: a line Redis could not
/// place is a directive it does not know (a typo of `requirepass`, a
/// line of an included `.env` file), so whether its arguments are secret
/// cannot be told: the directive by name only.
fn echoed(line: &str) -> String {
    match line.split_once(' ') {
        Some((name, _)) => format!("'{} ...'", secret::name(name)),
        None => format!("'{}'", secret::name(line)),
    }
}

/// What Redis said when it refused: the FATAL CONFIG FILE ERROR block
/// (placed at the line it names), and its warnings (`#`) other than the
/// host's own (`WARNING ...` about overcommit and the like).
fn refusal(
    log: &str,
    s: &ServiceSettings,
    map: &[Option<Location>],
    generated: &[String],
    (scratch, release): (&Path, &str),
    status: ExitStatus,
) -> Vec<ServerLine> {
    let cat = RedisCatalog::get(&super::major_minor(release));
    let known = |n: &str| cat.key(n).is_some();
    let at_line = |n: usize| map.get(n.checked_sub(1)?).cloned().flatten();
    let mut out = Vec::new();
    let mut lines = log.lines().map(str::trim_end).peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("*** FATAL CONFIG FILE ERROR") {
            let mut at = None;
            let mut said = Vec::new();
            while let Some(next) = lines.peek() {
                if next.starts_with("***") || (next.is_empty() && !said.is_empty()) {
                    break;
                }
                let next = lines.next().unwrap_or_default();
                if let Some(n) = next.strip_prefix("Reading the configuration file, at line ") {
                    at = n.trim().parse().ok().and_then(at_line);
                } else if !next.starts_with(">>> ") && !next.is_empty() {
                    said.push(next);
                }
            }
            out.push(ServerLine {
                text: super::scrub(&said.join(" "), Scope::Redis, s, scratch, &known),
                at,
            });
            continue;
        }
        let msg = match log_line(line) {
            Some(('#', msg)) if !msg.starts_with("WARNING") && !routine(msg) => msg,
            Some(_) => continue,
            None if line.trim().is_empty() => continue,
            None => line,
        };
        // Redis 8 echoes lines it could not place: `>>> 'foo bar'`.
        let (text, at) = match msg.strip_prefix(">>> '").and_then(|m| m.strip_suffix('\'')) {
            Some(echo) => {
                let at = generated
                    .iter()
                    .position(|g| g.trim() == echo)
                    .and_then(|i| at_line(i + 1));
                (format!(">>> {}", echoed(echo)), at)
            }
            None => (
                msg.to_string(),
                super::setting_named(msg, s, |w| w.to_ascii_lowercase()),
            ),
        };
        out.push(ServerLine {
            text: super::scrub(&text, Scope::Redis, s, scratch, &known),
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

/// The proof of one redis.conf set with this machine's Redis `release`.
pub fn prove(s: &ServiceSettings, release: &str) -> ServiceProof {
    let main = s.files.first().cloned().unwrap_or_default();
    let Some(b) = find(release) else {
        return ServiceProof::not_proven(
            Service::Redis,
            &main,
            format!("no Redis {release} here"),
            &format!(
                "to prove the set starts, put Redis {release}'s redis-server on this machine (its \
                 package, or bash scripts/fetch-redis-pgbouncer.sh)"
            ),
        );
    };
    note!(
        "start proof: starting Redis {} ({}) in a scratch directory",
        b.release,
        b.program.display()
    );
    let server = Server {
        release: format!("Redis {}", b.release),
        program: b.program.clone(),
    };
    let proof = match start(&b, s) {
        Ok((attempt, overrides)) => {
            let mut p = ServiceProof::new(Service::Redis, &main, super::outcome(attempt));
            p.overrides = overrides;
            p
        }
        Err(e) => ServiceProof::not_proven(
            Service::Redis,
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

    #[test]
    fn the_start_banner_is_no_refusal() {
        let log = "1:C 30 Nov 2026 18:22:10.801 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n\
                   1:C 30 Nov 2026 18:22:10.801 # Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=1, just started\n\
                   1:C 30 Nov 2026 18:22:10.801 # Configuration loaded\n\
                   1:M 30 Nov 2026 18:22:10.802 # Unrecoverable error: corrupted cluster config file.\n";
        use std::os::unix::process::ExitStatusExt;
        let lines = refusal(
            log,
            &ServiceSettings::default(),
            &[],
            &[],
            (Path::new("/scratch"), "7.0.15"),
            ExitStatus::from_raw(256),
        );
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Unrecoverable error: corrupted cluster config file."]
        );
    }

    #[test]
    fn log_lines_give_their_level() {
        assert_eq!(
            log_line("29956:M 30 Nov 2026 15:46:20.078 # >>> 'foo bar'"),
            Some(('#', ">>> 'foo bar'"))
        );
        assert_eq!(
            log_line("1:C 01 Dec 2026 01:02:03.004 * Configuration loaded"),
            Some(('*', "Configuration loaded"))
        );
        assert_eq!(log_line("Invalid save parameters"), None);
        assert_eq!(log_line(">>> 'save \"900\"'"), None);
    }

    #[test]
    fn every_directive_naming_a_path_is_the_proofs_or_left_out() {
        let scratch = Path::new("/scratch");
        let own = own(scratch);
        for name in [
            "dir",
            "dbfilename",
            "appendfilename",
            "appenddirname",
            "logfile",
            "pidfile",
            "unixsocket",
            "cluster-config-file",
            "aclfile",
            "tls-cert-file",
            "tls-key-file",
            "tls-client-cert-file",
            "tls-client-key-file",
            "tls-dh-params-file",
            "tls-ca-cert-file",
            "tls-ca-cert-dir",
        ] {
            match own.iter().find(|(n, _, _)| *n == name) {
                Some((_, value, _)) => assert!(
                    !value.trim_matches('"').starts_with('/')
                        || value.trim_matches('"').starts_with("/scratch"),
                    "{name} {value}"
                ),
                None => assert!(left_out(name).is_some(), "{name} reaches the server"),
            }
        }
        for plain in ["maxmemory", "rdb-del-sync-files", "save", "appendfsync"] {
            assert!(left_out(plain).is_none(), "{plain}");
        }
    }

    #[test]
    fn an_echoed_password_is_masked() {
        assert_eq!(echoed("requirepass \"s3cret\""), "'requirepass ...'");
        assert_eq!(echoed("requirepasss s3cret"), "'requirepasss ...'");
        assert_eq!(echoed("GITHUB_TOKEN=ghp_x"), "'GITHUB_TOKEN=...'");
        assert_eq!(echoed("foo"), "'foo'");
    }
}
