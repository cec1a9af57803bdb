//! The start proof (`--prove-start`): for what stops a server, the real
//! server is the oracle. dbtune's catalogs say what each release accepts,
//! but a server refuses a set for reasons no catalog lists: a preloaded
//! library that is not installed, reserved connections that leave none, a
//! time zone its data lacks, a group that does not exist. Where the target
//! release's binaries are on this machine, the proof starts that server
//! with the files' settings in a scratch directory, listening on a socket
//! there only, waits until it accepts connections or exits (bounded),
//! stops it whatever happens (a guard, and the parent-death signal when
//! dbtune itself is killed), and says what it found: it starts, it refused
//! (each line the server logged, as an error), or why it was not proven.
//!
//! Input is data, never code: a committed config must not make CI run
//! code. So the proof overrides every setting that runs a command, never
//! loads a library from outside the server's own library directory (it
//! does not start the server at all instead), loads no Redis module, and
//! hands the server only lines dbtune read itself (no include of its own).
//! Where the server listens and keeps its files, how it logs, files that
//! belong to the host (certificates, ACL and auth files) and memory this
//! machine need not have are the proof's too; every override is said in
//! the report ([`Override`]), with the value and line it replaced.

pub mod pgbouncer;
pub mod postgres;
pub mod redis;

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;
use tempfile::TempDir;

use crate::read::findings::Finding;
use crate::read::settings::{HostSettings, Location, ServiceSettings};
use crate::secret::{self, Holds};
use crate::service::{Scope, Service};
use crate::target::Host;

/// What the start proof found, one entry per service whose files were
/// checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StartProof {
    pub services: Vec<ServiceProof>,
}

/// One service's proof.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceProof {
    pub service: Service,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The server that was started (or would have been).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// What the proof set instead of the files, when it started a server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
    /// The file the service's settings start from (refusals without a
    /// line of their own are reported there).
    #[serde(skip)]
    pub main_file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// It accepted connections.
    Starts,
    /// It exited before accepting connections: each line it logged.
    Refused { lines: Vec<ServerLine> },
    /// Nothing was proven, and why (a warning, never silence).
    NotProven {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<Location>,
        hint: String,
    },
}

/// One line a server logged when it refused, with the file:line of the
/// setting it names when dbtune can tell. Secrets masked, the scratch
/// directory shown as `<scratch>`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerLine {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
}

/// A server release and the program that runs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Server {
    /// `PostgreSQL 15.18`, `Redis 7.0.15`, `PgBouncer 1.24.1`.
    pub release: String,
    pub program: PathBuf,
}

/// A setting the proof decides instead of the files.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Override {
    pub name: String,
    /// What the proof used: a value, or what it did (`not loaded`).
    pub to: String,
    /// The files' value (masked when secret), when they set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
    pub why: Why,
}

/// Why the proof overrides a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// Where it listens and keeps its files: a socket and files in the
    /// scratch directory, never the host's.
    Place,
    /// How it logs: to its output, plainly, so dbtune can read a refusal.
    Logging,
    /// It would run a command or load code named by the files.
    Code,
    /// It names the host's files (certificates, ACL and auth files) or
    /// accounts, or another server to connect to.
    Host,
    /// Memory is the budget's question: this machine need not have it.
    Memory,
}

impl Why {
    fn describe(self) -> &'static str {
        match self {
            Why::Place => "its own place (socket and files in the scratch directory)",
            Why::Logging => "its own logging (so dbtune reads a refusal)",
            Why::Code => "no command run, no library from elsewhere",
            Why::Host => "the host's files, accounts and servers",
            Why::Memory => "memory this machine need not have",
        }
    }
}

/// A value in the report's lists: quoted when empty or spaced; what the
/// proof did instead of a value (`(not loaded)`) and its own paths
/// (`<scratch>/...`) as they are.
fn shown_value(v: &str) -> String {
    let phrase = v.starts_with('(') || v.starts_with("<scratch>");
    if !phrase && (v.is_empty() || v.contains([' ', ',', '\t'])) {
        format!("'{v}'")
    } else {
        v.to_string()
    }
}

impl fmt::Display for Override {
    /// `name` when the files do not set it; `name FROM (at)` for where it
    /// listens and keeps files (the scratch directory's value says
    /// nothing); else `name FROM -> TO (at)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, &self.at) {
            (Some(from), Some(at)) if self.why == Why::Place || *from == self.to => {
                write!(f, "{} {} ({at})", self.name, shown_value(from))
            }
            (Some(from), Some(at)) => write!(
                f,
                "{} {} -> {} ({at})",
                self.name,
                shown_value(from),
                shown_value(&self.to)
            ),
            _ => f.write_str(&self.name),
        }
    }
}

impl Override {
    /// A setting the proof always sets, with the files' value when they
    /// set one.
    fn of(s: &ServiceSettings, scope: Scope, name: &str, to: impl Into<String>, why: Why) -> Self {
        let e = s.get(name);
        Override {
            name: name.to_string(),
            to: to.into(),
            from: e.map(|e| secret::show(scope, name, &e.value)),
            at: e.map(|e| e.at.clone()),
            why,
        }
    }
}

impl ServiceProof {
    fn new(service: Service, main_file: &str, outcome: Outcome) -> Self {
        ServiceProof {
            service,
            outcome,
            server: None,
            overrides: Vec::new(),
            main_file: main_file.to_string(),
        }
    }

    fn not_proven(service: Service, main_file: &str, reason: String, hint: &str) -> Self {
        ServiceProof::new(
            service,
            main_file,
            Outcome::NotProven {
                reason,
                at: None,
                hint: hint.to_string(),
            },
        )
    }

    /// The findings this proof adds to the report: an error per line a
    /// refusing server logged (a server that does not start is what
    /// `unsafe` means), a warning when nothing was proven.
    pub fn findings(&self) -> Vec<Finding> {
        let scope = Scope::from(self.service);
        let main = Location {
            file: self.main_file.clone(),
            line: 0,
        };
        let release = self
            .server
            .as_ref()
            .map_or(String::new(), |s| s.release.clone());
        match &self.outcome {
            Outcome::Starts => Vec::new(),
            Outcome::Refused { lines } => lines
                .iter()
                .map(|l| {
                    let mut f = Finding::error(
                        scope,
                        Some(l.at.as_ref().unwrap_or(&main)),
                        format!("{release} refused to start with these settings: {}", l.text),
                        Some(format!(
                            "this machine's {release} said so (--prove-start): fix the setting; a \
                             group, locale or library it names must exist on the host too"
                        )),
                    );
                    f.safety = true;
                    f
                })
                .collect(),
            Outcome::NotProven { reason, at, hint } => vec![Finding::warning(
                scope,
                Some(at.as_ref().unwrap_or(&main)),
                format!("not proven: {reason}"),
                Some(hint.clone()),
            )],
        }
    }
}

impl StartProof {
    pub fn findings(&self) -> Vec<Finding> {
        self.services.iter().flat_map(|s| s.findings()).collect()
    }
}

/// The proof in the text report: one line per service, then what was
/// overridden, grouped by why.
impl fmt::Display for StartProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.services.is_empty() {
            return writeln!(
                f,
                "start proof: no PostgreSQL, Redis or PgBouncer files to prove"
            );
        }
        writeln!(
            f,
            "start proof on this machine (a scratch directory, a socket only, stopped after):"
        )?;
        for p in &self.services {
            let server = p.server.as_ref().map_or(String::new(), |s| {
                format!("{} ({})", s.release, s.program.display())
            });
            match &p.outcome {
                Outcome::Starts => writeln!(f, "  {:<10} starts      {server}", p.service)?,
                Outcome::Refused { .. } => writeln!(
                    f,
                    "  {:<10} refused     {server}: its lines are the errors above",
                    p.service
                )?,
                Outcome::NotProven { reason, .. } => {
                    writeln!(f, "  {:<10} not proven  {reason}", p.service)?
                }
            }
            let mut whys: Vec<Why> = p.overrides.iter().map(|o| o.why).collect();
            whys.sort();
            whys.dedup();
            for why in whys {
                let items: Vec<String> = p
                    .overrides
                    .iter()
                    .filter(|o| o.why == why)
                    .map(Override::to_string)
                    .collect();
                writeln!(f, "    {}: {}", why.describe(), items.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Proves each service whose files were found, as check-budget judged
/// them: PostgreSQL of the report's major, Redis and PgBouncer of the
/// resolved releases. Progress goes to stderr (a proof takes seconds).
pub fn check(settings: &HostSettings, host: &Host) -> StartProof {
    let mut out = StartProof::default();
    if let Some(pg) = &settings.postgres {
        out.services.push(postgres::prove(pg, settings.pg_version));
    }
    if let Some(r) = &settings.redis {
        out.services
            .push(redis::prove(r, &host.redis_version.version));
    }
    if let Some(b) = &settings.pgbouncer {
        out.services
            .push(pgbouncer::prove(b, &host.pgbouncer_version.version));
    }
    out
}

// ---------------------------------------------------------------------------
// Finding the servers on this machine.

/// Where scripts/fetch-postgres.sh and scripts/fetch-redis-pgbouncer.sh
/// keep the servers they fetch and build: $DBTUNE_CACHE, else
/// /var/cache/dbtune as root, else ~/.cache/dbtune.
pub fn server_cache() -> PathBuf {
    if let Some(d) = std::env::var_os("DBTUNE_CACHE") {
        return PathBuf::from(d);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/cache/dbtune");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    base.join("dbtune")
}

/// The first program among `candidates` (each once) whose release, as
/// `version_of` reads it from the program, `wanted` accepts.
fn find_program(
    candidates: Vec<PathBuf>,
    version_of: impl Fn(&Path) -> Option<String>,
    wanted: impl Fn(&str) -> bool,
) -> Option<(PathBuf, String)> {
    let mut seen = Vec::new();
    for c in candidates {
        let Ok(canon) = c.canonicalize() else {
            continue;
        };
        if seen.contains(&canon) || !canon.is_file() {
            continue;
        }
        seen.push(canon);
        if let Some(v) = version_of(&c) {
            if wanted(&v) {
                return Some((c, v));
            }
        }
    }
    None
}

/// A program's `--version` output (stdout), when it runs.
fn version_output(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `7.0` from `7.0.15`.
fn major_minor(release: &str) -> String {
    release.split('.').take(2).collect::<Vec<_>>().join(".")
}

// ---------------------------------------------------------------------------
// The scratch directory and the server process.

/// A directory for one scratch server, owned by the user the server runs
/// as (the postgres user when dbtune is root: PostgreSQL and PgBouncer
/// refuse root, and Redis needs no more), mode 0700, removed with
/// everything in it when dropped.
pub struct Scratch {
    dir: TempDir,
    ids: Option<(u32, u32)>,
}

impl Scratch {
    pub fn new() -> Result<Scratch> {
        let ids = crate::bench::cluster::postgres_ids()?;
        // A socket path is at most 107 bytes: a long $TMPDIR would make
        // the server fail to listen, which is no fault of the files.
        let tmp = std::env::temp_dir();
        let base = if tmp.as_os_str().len() > 60 {
            PathBuf::from("/tmp")
        } else {
            tmp
        };
        let dir = tempfile::Builder::new()
            .prefix("dbtune-prove-")
            .tempdir_in(base)
            .context("cannot make a scratch directory")?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        Ok(Scratch { dir, ids })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file the server reads, mode 0600: a config may hold passwords.
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.path().join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        f.write_all(text.as_bytes())?;
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(path)
    }

    /// `program` run as the server user, in the scratch directory, with
    /// an environment of its own (nothing of the caller's leaks in: no
    /// LD_PRELOAD, no PG* or locale of the caller's).
    fn command(&self, program: &Path) -> Command {
        let mut c = crate::bench::cluster::command_as(program, self.ids);
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", self.path())
            .current_dir(self.path());
        c
    }
}

/// How long a server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A server started for the proof: stopped when dropped (SIGINT, then
/// SIGKILL after 30 s), and when dbtune dies (PR_SET_PDEATHSIG).
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

/// How waiting for a server ended.
enum Wait {
    Ready,
    Exited(ExitStatus),
    Timeout,
}

impl Process {
    /// Starts `c` with its output in `log`.
    fn spawn(mut c: Command, log: &Path) -> Result<Process> {
        let f = fs::File::create(log)?;
        crate::bench::cluster::stop_with_parent(&mut c);
        let child = c
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("cannot start {:?}", c.get_program()))?;
        Ok(Process {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Waits until `ready` holds, the server exits, or READY_WITHIN
    /// passes.
    fn wait(&mut self, mut ready: impl FnMut() -> bool) -> Wait {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Wait::Exited(st);
            }
            if ready() {
                return Wait::Ready;
            }
            if start.elapsed() > READY_WITHIN {
                return Wait::Timeout;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote so far.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// SIGINT (PostgreSQL's fast shutdown, Redis's and PgBouncer's
    /// shutdown), SIGKILL if it has not exited within 30 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: a signal to our own child, which has not been reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The outcome of one start: the server running (held until dropped),
/// refused with its lines, or not ready in time.
pub enum Attempt<T> {
    Running(T),
    Refused(Vec<ServerLine>),
    NotReady(String),
}

/// What an attempt proved; a running server is stopped (and its scratch
/// directory removed) here.
fn outcome<T>(attempt: Attempt<T>) -> Outcome {
    match attempt {
        Attempt::Running(running) => {
            drop(running);
            Outcome::Starts
        }
        Attempt::Refused(lines) => Outcome::Refused { lines },
        Attempt::NotReady(reason) => Outcome::NotProven {
            reason,
            at: None,
            hint:
                "the server may start more slowly here than on the host; prove again, or look at \
                   what it waits for (a huge max_connections, a slow disk)"
                    .into(),
        },
    }
}

/// Lines the server logged when it refused, cleaned for people: a value
/// of a secret setting (a password, a connection string's password, an
/// ACL rule's) is masked wherever it appears, so is every argument of a
/// setting the server's release does not know (`known` says which it
/// does: a typo of a secret's name, a line of an included `.env` file,
/// keeps its secret), control characters escaped, the scratch directory
/// shown as `<scratch>`.
fn scrub(
    text: &str,
    scope: Scope,
    s: &ServiceSettings,
    scratch: &Path,
    known: &dyn Fn(&str) -> bool,
) -> String {
    let mut out = text.replace(&scratch.display().to_string(), "<scratch>");
    let mut hidden: Vec<(String, String)> = Vec::new();
    for (name, entries) in &s.entries {
        let holds = secret::holds(scope, name);
        let unknown = !known(name);
        if holds == Holds::Plain && !unknown {
            continue;
        }
        for e in entries {
            let args = e.args.as_deref();
            // The value whole, and each argument alone (a Redis line may
            // echo one, in quotes).
            let mut parts = vec![e.value.clone()];
            parts.extend(args.into_iter().flatten().cloned());
            for raw in parts {
                if unknown {
                    hidden.extend(
                        raw.split_whitespace()
                            .map(|w| (w.to_string(), secret::MASK.to_string())),
                    );
                    hidden.push((raw.clone(), secret::MASK.to_string()));
                } else {
                    hidden.push((raw.clone(), secret::masked(holds, &raw)));
                }
                hidden.extend(
                    secret::secrets_in(holds, &raw, args)
                        .into_iter()
                        .map(|p| (p, secret::MASK.to_string())),
                );
            }
        }
    }
    // Longest first: a password of two words goes whole before either
    // word could be masked alone and leave the other.
    hidden.retain(|(raw, shown)| raw.len() >= 2 && raw != shown);
    hidden.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
    for (raw, shown) in hidden {
        if out.contains(raw.as_str()) {
            out = out.replace(raw.as_str(), &shown);
        }
    }
    secret::escape_controls(&out).into_owned()
}

/// The location of the setting a server's line is about: a quoted or bare
/// word that is a setting the files set (by name, case-insensitive), else
/// a quoted word that is one of a setting's values (`could not access file
/// "not_installed"` is about shared_preload_libraries).
fn setting_named(
    text: &str,
    s: &ServiceSettings,
    key: impl Fn(&str) -> String,
) -> Option<Location> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_.-/$".contains(c)))
        .filter(|w| !w.is_empty())
        .collect();
    for w in &words {
        if let Some(e) = s.get(&key(w)) {
            return Some(e.at.clone());
        }
    }
    let quoted: Vec<&str> = text.split('"').skip(1).step_by(2).collect();
    for q in quoted {
        for entries in s.entries.values() {
            let Some(e) = entries.last() else { continue };
            let listed = e
                .value
                .split([',', ' '])
                .map(|v| v.trim().trim_matches('"'))
                .any(|v| !v.is_empty() && v == q);
            if listed {
                return Some(e.at.clone());
            }
        }
    }
    None
}
