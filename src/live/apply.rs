//! `apply`: the changes a directory makes to what runs, vetted as
//! check-budget vets files, asked of the server first, made with a
//! snapshot, and read back.

use std::fmt;

use crate::facts::detect::{Detector, HugePagesFree};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::*;
use super::{change::*, diff::*, rollback::*, servers::*, snapshot::*, state::*};
use crate::cli::ApplyArgs;
use crate::console;
use crate::error::Error;
use crate::note;
use crate::read::findings::Severity;
use crate::read::report::{self, Verdict};
use crate::read::safety;
use crate::read::settings::HostSettings;
use crate::secret::Value;
use crate::service::Scope;
use crate::target::{self};
use crate::units::ByteSize;

/// Where a server listens and keeps its files: apply never moves those
/// (clients and the service manager would lose it); diff still shows them.
pub(super) const PG_NEVER: &[&str] = &[
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
];

pub(super) const REDIS_NEVER: &[&str] = &[
    "port",
    "bind",
    "dir",
    "unixsocket",
    "tls-port",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "logfile",
    "pidfile",
    "daemonize",
    "supervised",
];

/// Redis settings that decide who may run which command: apply never
/// changes them (credentials are recognised by name in `secret`).
pub(super) const REDIS_ACCESS: &[&str] = &[
    "aclfile",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "protected-mode",
];

/// Why apply never changes Redis setting `name`, when it does not.
pub(super) fn redis_never(name: &str) -> Option<&'static str> {
    if REDIS_NEVER.contains(&name) {
        Some("it moves where clients or the service manager find the server")
    } else if REDIS_ACCESS.contains(&name) {
        Some("it decides who may run which command")
    } else {
        None
    }
}

/// What makes a PostgreSQL change take effect, from pg_settings.context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Needs {
    Reload,
    Restart,
    /// Fixed when the cluster was created: no ALTER SYSTEM changes it.
    Initdb,
}

impl Needs {
    pub(super) fn of(context: &str) -> Needs {
        match context {
            "postmaster" => Needs::Restart,
            "internal" => Needs::Initdb,
            _ => Needs::Reload,
        }
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Needs::Reload => "reload",
            Needs::Restart => "restart",
            Needs::Initdb => "initdb",
        })
    }
}

/// One PostgreSQL setting apply changes with ALTER SYSTEM.
#[derive(Clone, Debug)]
pub(super) struct PgChange {
    pub(super) name: String,
    /// What the server runs, as a person reads it.
    pub(super) from: String,
    pub(super) to: Value,
    pub(super) needs: Needs,
}

/// One Redis setting apply changes with CONFIG SET.
#[derive(Clone, Debug)]
pub(super) struct RedisChange {
    pub(super) name: String,
    pub(super) from: Value,
    pub(super) to: Value,
}

/// Everything apply would do, and what it leaves alone and why.
#[derive(Debug, Default)]
pub(super) struct ChangeSet {
    pub(super) pg: Vec<PgChange>,
    pub(super) redis: Vec<RedisChange>,
    pub(super) notes: Vec<String>,
}

/// The dry run's list: notes on what apply leaves alone, then each change.
impl fmt::Display for ChangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for c in &self.pg {
            writeln!(
                f,
                "postgres  {}: {} -> {}  (ALTER SYSTEM, needs a {})",
                c.name, c.from, c.to, c.needs
            )?;
        }
        for c in &self.redis {
            writeln!(
                f,
                "redis     {}: {} -> {}  (CONFIG SET)",
                c.name, c.from, c.to
            )?;
        }
        Ok(())
    }
}

impl ChangeSet {
    pub(super) fn len(&self) -> usize {
        self.pg.len() + self.redis.len()
    }

    pub(super) fn needs_restart(&self) -> bool {
        self.pg.iter().any(|c| c.needs == Needs::Restart)
    }
}

/// The differences between the directory and the servers, sorted into
/// changes apply makes and notes on the ones it does not.
pub(super) fn change_set(live: &Live, files: &HostSettings) -> ChangeSet {
    let mut set = ChangeSet::default();
    for d in drifts(live, files).into_iter().filter(|d| !d.same) {
        // A password or a connection string with one: changing it live can
        // lock every client out (requirepass) or break replication, and a
        // snapshot would have to keep the old one in clear. Never applied.
        if d.file_value.holds().is_credential() {
            set.notes.push(format!(
                "{} {}: holds a credential; apply never changes authentication settings \
                 (it could lock clients out, and a snapshot would keep the old one): change it by hand",
                d.service, d.name
            ));
            continue;
        }
        let never = match d.service {
            Scope::Postgres => PG_NEVER
                .contains(&d.name.as_str())
                .then_some("it moves where clients or the service manager find the server"),
            _ => redis_never(&d.name),
        };
        if let Some(why) = never {
            set.notes.push(format!(
                "{} {}: {} -> {} not applied: {why}; change it by hand",
                d.service,
                d.name,
                d.live.as_ref().map_or("?".to_string(), |v| v.to_string()),
                d.file_value
            ));
            continue;
        }
        if d.service == Scope::Redis {
            set.redis.push(RedisChange {
                from: d
                    .live
                    .clone()
                    .unwrap_or_else(|| Value::new(Scope::Redis, &d.name, "")),
                name: d.name,
                to: d.file_value,
            });
            continue;
        }
        match live.pg.as_ref().and_then(|(_, s)| s.get(&d.name)) {
            None => set
                .notes
                .push(format!("postgres {}: unknown to this server, skipped", d.name)),
            Some(s) if s.source == "command line" || s.source == "override" => set.notes.push(format!(
                "postgres {}: set on the server's command line ({}), which ALTER SYSTEM cannot override",
                d.name,
                s.display()
            )),
            Some(s) if s.context == "internal" => set
                .notes
                .push(format!("postgres {}: fixed at initdb, skipped", d.name)),
            Some(_) if alter_args(&d.name, d.file_value.expose()).is_err() => {
                let why = alter_args(&d.name, d.file_value.expose()).unwrap_err();
                set.notes.push(format!("postgres {}: not applied: {why}", d.name))
            }
            Some(s) => set.pg.push(PgChange {
                name: d.name.clone(),
                from: s.display(),
                to: d.file_value,
                needs: Needs::of(&s.context),
            }),
        }
    }
    set
}

/// The live settings with the changes made: what the servers run after.
pub(super) fn after_change(live: &Live, files: &HostSettings, set: &ChangeSet) -> HostSettings {
    let mut after = live_settings(live);
    if let (Some(t), Some(f)) = (after.postgres.as_mut(), files.postgres.as_ref()) {
        for c in &set.pg {
            if let Some(e) = f.get(&c.name) {
                t.entries.insert(c.name.clone(), vec![e.clone()]);
            }
        }
    }
    if let (Some(t), Some(f)) = (after.redis.as_mut(), files.redis.as_ref()) {
        for c in &set.redis {
            t.entries.insert(c.name.clone(), f.all(&c.name).to_vec());
        }
    }
    after
}

/// What a PostgreSQL restart could map in huge pages, when `huge_pages =
/// on` is in the set after the change: asked of this machine when the
/// server runs here; on another host apply cannot see, only
/// --huge-pages-reserved (the user's word) lets it through.
pub(super) fn restart_huge_pages(
    live: &Live,
    after: &HostSettings,
    all_local: bool,
    vouched: bool,
) -> Result<Option<safety::LiveHugePages>> {
    let (Some((_, s)), Some(pg_after)) = (&live.pg, &after.postgres) else {
        return Ok(None);
    };
    let pg = crate::read::effective::Pg::new(pg_after, after.pg_version);
    if pg.text("huge_pages", "try") != "on" {
        return Ok(None);
    }
    // The user's word counts only where dbtune cannot look: on this
    // machine /proc says how many pages there are.
    if vouched && !all_local {
        return Ok(Some(safety::LiveHugePages {
            available: u64::MAX,
            page_size: ByteSize::mib(2),
            server_reports: None,
            source: "--huge-pages-reserved".into(),
        }));
    }
    if !all_local {
        return Err(Error::refusal(format!(
            "huge_pages = on: after a restart PostgreSQL will not start unless the host has about {} of \
             huge pages free, and {} is not on this machine, so apply cannot look; nothing was changed",
            crate::read::effective::pg_shared_estimate(&pg),
            s.target
        ))
        .with_hint(
            "on the server's host check HugePages_Free in /proc/meminfo (vm.nr_hugepages), then run \
             again with --huge-pages-reserved",
        )
        .into());
    }
    let size = pg
        .read("huge_page_size")
        .and_then(|v| v.as_f64())
        .map(|kb| ByteSize::kib(kb as u64));
    let Some(HugePagesFree { free, page, source }) = Detector::host().huge_pages_free(size) else {
        return Ok(Some(safety::LiveHugePages {
            available: 0,
            page_size: ByteSize::mib(2),
            server_reports: None,
            source: "this machine reports no huge pages".into(),
        }));
    };
    // The running server gives back the pages it holds when it restarts.
    let reports: Option<u64> = s
        .get("shared_memory_size_in_huge_pages")
        .and_then(|x| x.setting.parse().ok())
        .filter(|n: &u64| *n > 0);
    let holds = match s.get("huge_pages_status").map(|x| x.setting.as_str()) {
        Some("on") => reports.unwrap_or(0),
        Some(_) => 0,
        None if s.get("huge_pages").is_some_and(|x| x.setting == "on") => reports.unwrap_or(0),
        None => 0,
    };
    Ok(Some(safety::LiveHugePages {
        available: free + holds,
        page_size: page,
        server_reports: reports,
        source: if holds > 0 {
            format!("{source}, plus {holds} the running server holds")
        } else {
            source
        },
    }))
}

pub(super) fn print_refusal(what: &str, report: &report::Report) -> anyhow::Error {
    Error::refusal(format!(
        "{what}; nothing was changed\n{}",
        report::text(report, false)
    ))
    .into()
}

pub fn apply(args: ApplyArgs) -> Result<ExitCode> {
    if let Some(snap) = &args.rollback {
        return rollback(&args, snap);
    }
    let (dir, urls) = apply_dir(&args)?;
    let t = Duration::from_secs(args.live.timeout);
    let (pg_t, redis_t) = targets(urls)?;
    let all_local = pg_t.iter().chain(&redis_t).all(|x| x.is_local());
    let rt = runtime()?;
    let mut live = rt.block_on(connect(&pg_t, &redis_t, t))?;
    let (files, found) = load_dir(&dir, &live)?;
    let flags = host_flags(&args.host);
    let host = servers_host(&flags, found.manifest.as_ref(), &live, all_local)?;
    for n in &host.notes {
        note!("{n}");
    }
    let set = change_set(&live, &files);
    let after = after_change(&live, &files, &set);
    let huge = restart_huge_pages(&live, &after, all_local, args.huge_pages_reserved)?;
    let after_report = vet(&files, &after, &host, huge, args.level)?;
    if let Some((c, s)) = &live.pg {
        let problems = rt.block_on(pg_preflight(c, s, &set, &after, all_local, t))?;
        if !problems.is_empty() {
            return Err(Error::refusal(format!(
                "after this change PostgreSQL would not start, or would not load what it is told to; \
                 nothing was changed\n{}",
                problems
                    .iter()
                    .map(|p| format!("  {p}\n"))
                    .collect::<String>()
            ))
            .into());
        }
    }
    if let (true, Some((c, s)), Some(f)) = (args.prove_start, &live.pg, files.postgres.as_ref()) {
        let changes = set
            .pg
            .iter()
            .filter_map(|ch| f.get(&ch.name).map(|e| (ch.name.clone(), e.clone())))
            .collect();
        super::prove::restart(&rt, c, s, changes, t)?;
    }

    let mut out = set.to_string();
    if set.len() == 0 {
        out.push_str(&format!(
            "nothing to change: the servers run what {} says\n",
            dir.display()
        ));
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        out.push_str(&format!(
            "dry run: {} change(s), worst case after them {} of {}; run again with --yes to apply them \
             (a snapshot of the current values is written first)\n",
            set.len(),
            after_report.budget.worst,
            after_report.budget.ram
        ));
        console::print(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    console::print(&out)?;
    let snap_path = take_snapshot(&rt, &live, &pg_t, &redis_t, &set, &args.snapshot_dir, t)?;
    note!("snapshot of the previous values: {}", snap_path.display());
    execute(&rt, &mut live, &set, &snap_path, t)
}

/// What the server itself would refuse only at the next reload or
/// restart, asked of the server before anything changes: SSL files that
/// are not there (the reload keeps the old SSL state and logs it), a
/// preloaded library that is not installed, a socket group that does not
/// exist (both stop the next start). Each problem is one line.
pub(super) async fn pg_preflight(
    c: &tokio_postgres::Client,
    s: &PgState,
    set: &ChangeSet,
    after: &HostSettings,
    all_local: bool,
    t: Duration,
) -> Result<Vec<String>> {
    let changed = |n: &str| set.pg.iter().any(|c| c.name == n);
    let Some(pg_after) = after.postgres.as_ref() else {
        return Ok(Vec::new());
    };
    let value = |n: &str| -> Option<String> {
        pg_after
            .get(n)
            .map(|e| e.value.clone())
            .or_else(|| s.get(n).map(|x| x.setting.clone()))
    };
    let mut out = Vec::new();
    let exists = |path: String| async move {
        super::state::pg_query(
            c,
            "SELECT (pg_stat_file($1, true)).size IS NOT NULL",
            &[&path],
            t,
        )
        .await
        .map(|rows| rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    };
    let ssl_on = value("ssl").and_then(|v| crate::read::pgvalue::parse_bool(&v)) == Some(true);
    let ssl_changed = [
        "ssl",
        "ssl_cert_file",
        "ssl_key_file",
        "ssl_ca_file",
        "ssl_crl_file",
    ]
    .iter()
    .any(|n| changed(n));
    if ssl_on && ssl_changed {
        for (name, required) in [
            ("ssl_cert_file", true),
            ("ssl_key_file", true),
            ("ssl_ca_file", false),
            ("ssl_crl_file", false),
        ] {
            let Some(path) = value(name).filter(|p| !p.is_empty()) else {
                continue;
            };
            if (required || changed(name)) && !exists(path.clone()).await? {
                out.push(format!(
                    "ssl = on needs {name} `{path}`, which the server cannot find (relative paths are \
                     in its data directory): the reload would keep the old SSL state and say so only in its log"
                ));
            }
        }
    }
    if changed("shared_preload_libraries") {
        let libdir: String = super::state::pg_query(
            c,
            "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'",
            &[],
            t,
        )
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or_default();
        for lib in value("shared_preload_libraries")
            .unwrap_or_default()
            .split(',')
            .map(|l| l.trim().trim_matches('"'))
            .filter(|l| !l.is_empty())
        {
            let base = lib.replace("$libdir", &libdir);
            let path = if base.contains('/') {
                base
            } else {
                format!("{libdir}/{base}")
            };
            let found = exists(path.clone()).await? || exists(format!("{path}.so")).await?;
            if !found {
                out.push(format!(
                    "shared_preload_libraries names `{lib}`, which is not installed in {libdir}: \
                     PostgreSQL would not start after the restart this change needs"
                ));
            }
        }
    }
    if changed("unix_socket_group") {
        if let Some(group) = value("unix_socket_group").filter(|g| !g.is_empty()) {
            if all_local {
                if !group_exists(&group) {
                    out.push(format!(
                        "unix_socket_group `{group}` is not a group on this machine: PostgreSQL would \
                         not start after the restart this change needs"
                    ));
                }
            } else {
                note!(
                    "note: unix_socket_group `{group}`: the server is not on this machine, so apply \
                     cannot see whether the group exists there; check before the restart"
                );
            }
        }
    }
    Ok(out)
}

/// Whether a group (by name, or a number as PostgreSQL also takes) exists
/// on this machine.
pub(super) fn group_exists(group: &str) -> bool {
    if group.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let Ok(name) = std::ffi::CString::new(group) else {
        return false;
    };
    // SAFETY: getgrnam reads a NUL-terminated name; the result is only
    // compared with NULL, never dereferenced.
    !unsafe { libc::getgrnam(name.as_ptr()) }.is_null()
}

/// The directory to apply and the server URLs after it.
pub(super) fn apply_dir(args: &ApplyArgs) -> Result<(std::path::PathBuf, &[String])> {
    let (dir, urls) = args
        .args
        .split_first()
        .expect("clap requires DIR without --rollback");
    if dir.contains("://") {
        return Err(Error::plain(
            format!(
                "`{}` is a server, but apply needs the directory to apply first",
                conn::redact(dir)
            ),
            "dbtune apply DIR [URL...]",
        )
        .into());
    }
    if args.data_dir.is_some() {
        return Err(Error::plain(
            "--data-dir is for `apply --rollback` with PostgreSQL stopped",
            "leave it out: apply changes a running server",
        )
        .into());
    }
    Ok((std::path::PathBuf::from(dir), urls))
}

/// The directory first, exactly as check-budget judges it; then the
/// servers as they would run after the change. The report after the
/// change, or the refusal (printed).
pub(super) fn vet(
    files: &HostSettings,
    after: &HostSettings,
    host: &target::Host,
    huge: Option<crate::read::safety::LiveHugePages>,
    level: report::Level,
) -> Result<report::Report> {
    // Judged at the level check-budget's gate uses (busy by default), so
    // a directory check-budget passes is one apply takes.
    let dir_report = report::check_settings(files, host, huge.clone()).at_level(level);
    if !dir_report.ok() {
        let what = match dir_report.verdict() {
            Verdict::Unsafe => "the directory holds settings that can lose data or stop a server",
            Verdict::DoesNotFit => "the directory's settings would not fit the host's memory",
            Verdict::Invalid | Verdict::Fits => "the directory's settings are invalid",
        };
        return Err(print_refusal(what, &dir_report));
    }
    let after_report = report::check_settings(after, host, huge).at_level(level);
    let blocking = after_report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error && (f.safety || f.memory_limit));
    if !after_report.budget_fits() || blocking {
        let what = if after_report.unsafe_errors() > 0 {
            "after this change the servers would run settings that can lose data or stop them"
        } else {
            "the servers would not fit their memory after this change"
        };
        return Err(print_refusal(what, &after_report));
    }
    Ok(after_report)
}

/// Makes the changes, saying each as it lands so that a failure (a server
/// that dies halfway) still shows exactly what was applied.
pub(super) fn execute(
    rt: &tokio::runtime::Runtime,
    live: &mut Live,
    set: &ChangeSet,
    snap_path: &Path,
    t: Duration,
) -> Result<ExitCode> {
    let mut progress = Progress {
        applied: Vec::new(),
        reloaded: false,
        postgres_changes: !set.pg.is_empty(),
        undo: format!(
            "undo with: dbtune apply --rollback {} --yes [URL...] (with PostgreSQL stopped: add --data-dir PGDATA)",
            snap_path.display()
        ),
    };
    if let Some((c, _)) = &live.pg {
        for ch in &set.pg {
            if let Err(e) = rt.block_on(pg_alter(c, &ch.name, Some(ch.to.expose()), t)) {
                return Err(progress.fail(format!("{e:#}")));
            }
            progress.done(format!("postgres {} = {}", ch.name, ch.to));
        }
        if !set.pg.is_empty() {
            rt.block_on(pg_reload(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
            progress.reloaded = true;
        }
    }
    let mut redis_restart = Vec::new();
    if let Some((c, r)) = live.redis.as_mut() {
        for ch in &set.redis {
            match rt.block_on(redis_config_set(c, &ch.name, ch.to.expose(), t)) {
                Ok(()) => progress.done(format!("redis {} {}", ch.name, ch.to)),
                Err(e) if e.contains("immutable") => redis_restart.push(ch.name.clone()),
                Err(e) => {
                    return Err(
                        progress.fail(format!("CONFIG SET {} {} failed: {e}", ch.name, ch.to))
                    )
                }
            }
        }
        if r.info.get("config_file").is_some_and(|f| !f.is_empty()) {
            rt.block_on(redis_rewrite(c, t))
                .map_err(|e| progress.fail(format!("{e:#}")))?;
        }
    }
    // Read back: what took effect, what waits for a restart.
    if let Some((c, s)) = live.pg.as_mut() {
        *s = rt
            .block_on(pg_state(c, &s.target.clone(), t))
            .map_err(|e| progress.fail(format!("reading the settings back failed: {e:#}")))?;
    }
    let outcome = Outcome {
        set,
        pg: live.pg.as_ref().map(|(_, s)| s),
        redis_restart: &redis_restart,
        snap_path,
    };
    console::print(&format!("{outcome}{}\n", progress.undo))?;
    Ok(ExitCode::SUCCESS)
}

/// What apply has changed so far, for the error when a change fails.
pub(super) struct Progress {
    pub(super) applied: Vec<String>,
    pub(super) reloaded: bool,
    pub(super) postgres_changes: bool,
    pub(super) undo: String,
}

impl Progress {
    pub(super) fn done(&mut self, change: String) {
        note!("applied: {change}");
        self.applied.push(change);
    }

    /// A failed live change, saying what was applied before it and where
    /// those changes stand.
    pub(super) fn fail(&self, what: String) -> anyhow::Error {
        Error::LiveChange {
            message: crate::secret::escape_controls(&what).into_owned(),
            applied: self.applied.clone(),
            state: if self.reloaded || !self.postgres_changes {
                "in effect where the server allows it".into()
            } else {
                "PostgreSQL's are in postgresql.auto.conf, not reloaded: they take effect at the \
                 next reload or restart unless rolled back"
                    .into()
            },
            hint: self.undo.clone(),
        }
        .into()
    }
}

/// Each change as the servers report it after apply.
pub(super) struct Outcome<'a> {
    pub(super) set: &'a ChangeSet,
    /// PostgreSQL as read back after the changes.
    pub(super) pg: Option<&'a PgState>,
    pub(super) redis_restart: &'a [String],
    pub(super) snap_path: &'a Path,
}

impl fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.pg {
            for ch in &self.set.pg {
                let status = match s.get(&ch.name) {
                    Some(now) if now.pending_restart => {
                        "set; takes effect after a restart".to_string()
                    }
                    Some(now) if pg_same(ch.to.expose(), now, s.major) => "in effect".to_string(),
                    Some(now) => format!(
                        "not in effect: the server runs {} ({})",
                        now.display(),
                        now.source
                    ),
                    None => "gone from pg_settings".to_string(),
                };
                writeln!(f, "postgres  {} = {}: {status}", ch.name, ch.to)?;
            }
        }
        for name in self.redis_restart {
            writeln!(f, "redis     {name}: immutable while Redis runs; takes effect after a restart with the file")?;
        }
        for ch in self
            .set
            .redis
            .iter()
            .filter(|c| !self.redis_restart.contains(&c.name))
        {
            writeln!(f, "redis     {} = {}: in effect", ch.name, ch.to)?;
        }
        if self.set.needs_restart() {
            writeln!(
                f,
                "note: restart PostgreSQL for the settings marked above; if it does not start, \
                 `dbtune apply --rollback {} --data-dir PGDATA --yes` restores them with the server down",
                self.snap_path.display()
            )?;
        }
        Ok(())
    }
}
