//! Settings that can lose data or stop a server from starting, judged
//! against what is known about the host. check-budget reports them in any
//! set (someone else's files included), render refuses to write one, and
//! apply refuses to push one.

use crate::model::Assumptions;
use crate::read::effective::Pg;
use crate::read::findings::Finding;
use crate::read::settings::{HostSettings, Location, ServiceSettings};
use crate::service::Scope;
use crate::units::ByteSize;

/// What is known about the host, beyond the files.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// PostgreSQL's data directory (and pg_wal) is on ZFS, and how that is known.
    pub pg_on_zfs: bool,
    pub pg_on_zfs_source: String,
    /// Huge pages on the live host, when apply checks a running server.
    pub live_huge_pages: Option<LiveHugePages>,
    /// The size of the filesystem pg_wal is on, and where that was read.
    pub wal_space: Option<(ByteSize, String)>,
}

/// Huge pages a local PostgreSQL could map at its next start.
#[derive(Clone, Debug)]
pub struct LiveHugePages {
    /// Free pages, plus those the running server holds (released when it
    /// restarts).
    pub available: u64,
    pub page_size: ByteSize,
    /// What the running server reports it needs
    /// (`shared_memory_size_in_huge_pages`, 15+), for its current settings.
    pub server_reports: Option<u64>,
    pub source: String,
}

fn at(e: Option<&crate::read::settings::Entry>) -> Option<&Location> {
    e.map(|e| &e.at)
}

/// Every safety finding in a set.
pub fn findings(settings: &HostSettings, ctx: &Context, a: &Assumptions) -> Vec<Finding> {
    let mut out = raw(settings, ctx, a);
    for f in &mut out {
        f.safety = true;
    }
    out
}

fn raw(settings: &HostSettings, ctx: &Context, a: &Assumptions) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(pg) = &settings.postgres {
        postgres(pg, settings, ctx, a, &mut out);
    }
    if let Some(r) = &settings.redis {
        redis(r, &mut out);
        redis_role(r, a, &mut out);
    }
    if let Some(b) = &settings.pgbouncer {
        pgbouncer(b, &mut out);
    }
    out
}

fn postgres(
    s: &ServiceSettings,
    hs: &HostSettings,
    ctx: &Context,
    a: &Assumptions,
    out: &mut Vec<Finding>,
) {
    let pg = Pg::new(s, hs.pg_version);
    if !pg.bool("fsync", true) {
        out.push(Finding::error(
            Scope::Postgres,
            at(s.get("fsync")),
            "fsync = off: a crash or power loss can corrupt the whole cluster, not just lose the last commits"
                .into(),
            Some(
                "remove it; for faster commits that risk only the last moments, use synchronous_commit = off"
                    .into(),
            ),
        ));
    }
    if !pg.bool("full_page_writes", true) && !ctx.pg_on_zfs {
        out.push(Finding::error(
            Scope::Postgres,
            at(s.get("full_page_writes")),
            format!(
                "full_page_writes = off, but nothing shows the data directory is on ZFS ({}): \
                 after a crash a torn page is silent corruption",
                ctx.pg_on_zfs_source
            ),
            Some(
                "remove it; only a copy-on-write filesystem (ZFS) never writes a partial page. If the data \
                 directory and pg_wal really are on ZFS, say so with --filesystem zfs or --facts"
                    .into(),
            ),
        ));
    }
    // In a CloudNativePG pod the huge pages are the container's limits,
    // judged by `operator` (not the host's vm.nr_hugepages).
    let pod = hs
        .deployment
        .as_ref()
        .is_some_and(|d| d.operator == crate::read::operator::Operator::Cnpg);
    if pg.text("huge_pages", "try") == "on" && !pod {
        huge_pages(s, &pg, hs, ctx, a, out);
    }
    reserved_slots(s, &pg, out);
    process_limit(s, &pg, out);
    wal_size_floor(s, &pg, out);
    wal_room(s, &pg, ctx, out);
    recovery_targets(s, out);
    if pg.text("wal_level", "replica") == "minimal" {
        let senders = pg.int("max_wal_senders", 10);
        let archive = pg.text("archive_mode", "off");
        let wl = at(s.get("wal_level"));
        if senders > 0 {
            out.push(Finding::error(
                Scope::Postgres,
                wl,
                format!(
                    "wal_level = minimal with max_wal_senders = {senders} ({}): PostgreSQL refuses to start \
                     (WAL streaming needs wal_level replica)",
                    pg.src("max_wal_senders")
                ),
                Some("set max_wal_senders = 0, or wal_level = replica".into()),
            ));
        }
        if archive != "off" {
            out.push(Finding::error(
                Scope::Postgres,
                wl,
                format!(
                    "wal_level = minimal with archive_mode = {archive} ({}): PostgreSQL refuses to start \
                     (archiving needs wal_level replica)",
                    pg.src("archive_mode")
                ),
                Some("turn archive_mode off, or set wal_level = replica".into()),
            ));
        }
        if hs.pg_version >= 17 && pg.bool("summarize_wal", false) {
            out.push(Finding::error(
                Scope::Postgres,
                wl,
                "wal_level = minimal with summarize_wal = on: PostgreSQL refuses to start".into(),
                Some("turn summarize_wal off, or set wal_level = replica".into()),
            ));
        }
    }
}

/// The first of `names` the files set, for a finding about them all.
fn first_set<'a>(s: &'a ServiceSettings, names: &[&str]) -> Option<&'a Location> {
    names.iter().find_map(|n| at(s.get(n)))
}

/// PostmasterMain: the reserved slots (superuser_reserved_connections,
/// and reserved_connections from 16) must leave max_connections a slot.
fn reserved_slots(s: &ServiceSettings, pg: &Pg, out: &mut Vec<Finding>) {
    let max = pg.int_or_boot("max_connections");
    let superuser = pg.int_or_boot("superuser_reserved_connections");
    let reserved = pg.int_or_boot("reserved_connections");
    if superuser + reserved < max {
        return;
    }
    let plus = if pg.version() >= 16 {
        format!(
            " plus reserved_connections ({reserved}, {})",
            pg.src("reserved_connections")
        )
    } else {
        String::new()
    };
    out.push(Finding::error(
        Scope::Postgres,
        first_set(
            s,
            &[
                "max_connections",
                "superuser_reserved_connections",
                "reserved_connections",
            ],
        ),
        format!(
            "superuser_reserved_connections ({superuser}, {}){plus} must be less than max_connections \
             ({max}, {}): PostgreSQL refuses to start",
            pg.src("superuser_reserved_connections"),
            pg.src("max_connections"),
        ),
        Some(format!(
            "raise max_connections to at least {}, or reserve fewer slots",
            superuser + reserved + 1
        )),
    ));
}

/// PostgreSQL's MAX_BACKENDS: connections, autovacuum workers, background
/// workers and WAL senders share 262143 process slots, with the autovacuum
/// launcher (13-16; the check hooks of these settings), and from 17 the
/// slot sync worker too (InitializeMaxBackends); 18 counts
/// autovacuum_worker_slots instead of autovacuum_max_workers.
fn process_limit(s: &ServiceSettings, pg: &Pg, out: &mut Vec<Finding>) {
    const MAX_BACKENDS: i64 = 262_143;
    let autovacuum = if pg.version() >= 18 {
        "autovacuum_worker_slots"
    } else {
        "autovacuum_max_workers"
    };
    let special = if pg.version() >= 17 { 2 } else { 1 };
    let names = [
        "max_connections",
        autovacuum,
        "max_worker_processes",
        "max_wal_senders",
    ];
    let total: i64 = names.iter().map(|n| pg.int_or_boot(n)).sum::<i64>() + special;
    if total <= MAX_BACKENDS {
        return;
    }
    let terms: Vec<String> = names
        .iter()
        .map(|n| format!("{n} {} ({})", pg.int_or_boot(n), pg.src(n)))
        .collect();
    out.push(Finding::error(
        Scope::Postgres,
        first_set(s, &names),
        format!(
            "{} plus {special} more come to {total} server processes, above PostgreSQL's limit of \
             {MAX_BACKENDS}: it refuses to start",
            terms.join(" plus ")
        ),
        Some(format!(
            "lower max_connections by at least {} (PgBouncer in front serves many clients with few connections)",
            total - MAX_BACKENDS
        )),
    ));
}

/// ReadControlFile: min_wal_size and max_wal_size must each be at least
/// two WAL segments (16 MB each unless initdb was given --wal-segsize),
/// counted in whole megabytes divided by the segment size.
fn wal_size_floor(s: &ServiceSettings, pg: &Pg, out: &mut Vec<Finding>) {
    const SEGMENT_MB: i64 = 16;
    for name in ["min_wal_size", "max_wal_size"] {
        let mb = pg.int_or_boot(name);
        if s.get(name).is_none() || mb / SEGMENT_MB >= 2 {
            continue;
        }
        out.push(Finding::error(
            Scope::Postgres,
            at(s.get(name)),
            format!(
                "{name} = {mb}MB is less than two WAL segments (2 x {SEGMENT_MB} MB, the size initdb \
                 gives them): PostgreSQL refuses to start"
            ),
            Some(format!("set {name} to at least {}MB", 2 * SEGMENT_MB)),
        ));
    }
}

/// max_wal_size against the filesystem pg_wal is on, when its size is
/// known: more than the filesystem cannot be kept (a full pg_wal stops
/// PostgreSQL), and more than a tenth of it is what render would not
/// write (max_wal_size is a soft limit, and the data shares the disk).
fn wal_room(s: &ServiceSettings, pg: &Pg, ctx: &Context, out: &mut Vec<Finding>) {
    let (Some((space, from)), Some(e)) = (&ctx.wal_space, s.get("max_wal_size")) else {
        return;
    };
    let max = ByteSize::mib(pg.int_or_boot("max_wal_size").max(0) as u64);
    let cap = crate::plan::postgres::wal_space_cap(*space);
    if max <= cap {
        return;
    }
    let hint = Some(format!(
        "set max_wal_size to at most {} (a tenth of the filesystem), or move pg_wal to a larger one \
         and say its size in the facts file (storage.wal_space)",
        cap.pg()
    ));
    if max >= *space {
        out.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            format!(
                "max_wal_size = {} is as large as the filesystem pg_wal is on ({space}, {from}): \
                 once the WAL fills it PostgreSQL stops, and this lets it",
                max.pg()
            ),
            hint,
        ));
    } else {
        out.push(Finding::warning(
            Scope::Postgres,
            Some(&e.at),
            format!(
                "max_wal_size = {} is more than a tenth of the filesystem pg_wal is on ({space}, \
                 {from}): it is a soft limit (heavy writes or a failing archive pass it), the data \
                 shares the disk, and a full pg_wal stops PostgreSQL",
                max.pg()
            ),
            hint,
        ));
    }
}

/// The recovery_target* settings' assign hooks: each, as PostgreSQL
/// applies the files in order (only the last occurrence of a name counts),
/// refuses to start when another kind of target is set before it, even
/// when its own value is empty.
fn recovery_targets(s: &ServiceSettings, out: &mut Vec<Finding>) {
    const TARGETS: [&str; 5] = [
        "recovery_target",
        "recovery_target_lsn",
        "recovery_target_name",
        "recovery_target_time",
        "recovery_target_xid",
    ];
    let mut set: Vec<(&str, &crate::read::settings::Entry)> = TARGETS
        .iter()
        .filter_map(|n| s.get(n).map(|e| (*n, e)))
        .collect();
    set.sort_by_key(|(_, e)| e.seq);
    let mut current: Option<(&str, &crate::read::settings::Entry)> = None;
    for (name, e) in set {
        if let Some((before, b)) = current {
            out.push(Finding::error(
                Scope::Postgres,
                Some(&e.at),
                format!(
                    "`{name}` comes after `{before} = '{}'` ({}): PostgreSQL refuses to start with more than \
                     one recovery target",
                    b.value, b.at
                ),
                Some(
                    "keep one recovery target and remove the other lines (an empty one after a set one \
                     counts too)"
                        .into(),
                ),
            ));
            return;
        }
        current = (!e.value.is_empty()).then_some((name, e));
    }
}

/// `huge_pages = on` makes PostgreSQL refuse to start when it cannot map
/// its shared memory in huge pages: the pages must be reserved in the same
/// set (vm.nr_hugepages), or free on the live host.
fn huge_pages(
    s: &ServiceSettings,
    pg: &Pg,
    hs: &HostSettings,
    ctx: &Context,
    a: &Assumptions,
    out: &mut Vec<Finding>,
) {
    let need = crate::read::effective::pg_shared_estimate(pg);
    let where_on = at(s.get("huge_pages"));
    if let Some(live) = &ctx.live_huge_pages {
        let est_pages = need.div_ceil(live.page_size);
        let pages = est_pages.max(live.server_reports.unwrap_or(0));
        if pages > live.available {
            out.push(Finding::error(
                Scope::Postgres,
                where_on,
                format!(
                    "huge_pages = on needs about {pages} huge pages of {} ({} of shared memory) but this host \
                     has {} for PostgreSQL ({}): after a restart PostgreSQL would not start",
                    live.page_size,
                    live.page_size * pages,
                    live.available,
                    live.source
                ),
                Some(format!(
                    "reserve them first (vm.nr_hugepages = {} or more, then check /proc/meminfo), or set huge_pages = try",
                    pages + pages / 50 + 8
                )),
            ));
        }
        return;
    }
    let reserved = hs
        .os
        .as_ref()
        .and_then(|os| os.get("vm.nr_hugepages"))
        .map(|e| (e.value.trim().parse::<u64>().unwrap_or(0), e.at.clone()));
    match reserved {
        None | Some((0, _)) => out.push(Finding::error(
            Scope::Postgres,
            where_on,
            format!(
                "huge_pages = on, but this set reserves no huge pages (vm.nr_hugepages): PostgreSQL needs \
                 about {need} of shared memory in them and will not start without"
            ),
            Some(
                "check the sysctl file that sets vm.nr_hugepages together with postgresql.conf, \
                 or set huge_pages = try"
                    .into(),
            ),
        )),
        Some((n, nat)) if a.hugepage_size * n < need => out.push(Finding::error(
            Scope::Postgres,
            where_on,
            format!(
                "PostgreSQL needs about {need} of shared memory but only {} of huge pages are reserved \
                 (vm.nr_hugepages = {n} at {nat}), and huge_pages = on: it will not start",
                a.hugepage_size * n
            ),
            Some("raise vm.nr_hugepages, or set huge_pages = try".into()),
        )),
        Some(_) => {}
    }
}

fn loopback(addr: &str) -> bool {
    let a = addr.trim().trim_start_matches('-');
    a == "localhost"
        || a == "::1"
        || a.starts_with("127.")
        || a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn redis(r: &ServiceSettings, out: &mut Vec<Finding>) {
    let protected = r
        .get("protected-mode")
        .is_none_or(|e| !e.value.trim().eq_ignore_ascii_case("no"));
    if protected {
        return;
    }
    let password = r
        .get("requirepass")
        .is_some_and(|e| !e.value.trim().trim_matches('"').is_empty())
        || r.get("aclfile").is_some()
        || r.all("user").iter().any(|e| {
            let mut words = e.value.split_whitespace();
            words.next() == Some("default")
                && words.any(|w| w.starts_with('>') || w.starts_with('#'))
        });
    // Unset, Redis listens on every interface (* -::*).
    let binds: Vec<String> = match r.get("bind") {
        Some(e) => e.value.split_whitespace().map(str::to_string).collect(),
        None => vec!["*".into(), "-::*".into()],
    };
    let exposed: Vec<&String> = binds.iter().filter(|b| !loopback(b)).collect();
    if !password && !exposed.is_empty() {
        out.push(Finding::warning(
            Scope::Redis,
            at(r.get("protected-mode")),
            format!(
                "protected-mode no, no password, and Redis listens on {}: anyone who reaches the port \
                 can read, change and delete everything",
                exposed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Some("set a password (requirepass or ACL users), bind to loopback, or leave protected-mode on".into()),
        ));
    }
}

/// A Redis whose role is known (`--redis-role`, the profile's, the
/// manifest's) whose maxmemory-policy can evict what that role must keep:
/// a queued task, a session without a TTL. Unset, Redis does not evict.
fn redis_role(r: &ServiceSettings, a: &Assumptions, out: &mut Vec<Finding>) {
    use crate::profile::EvictionPolicy;
    let Some(role) = a.redis_role else {
        return;
    };
    let entry = r.get("maxmemory-policy");
    let policy = match entry {
        Some(e) => match EvictionPolicy::parse(e.value.trim().trim_matches('"')) {
            Some(p) => p,
            None => return,
        },
        None => EvictionPolicy::Noeviction,
    };
    if role.allows(policy) {
        return;
    }
    out.push(Finding::error(
        Scope::Redis,
        at(entry),
        format!(
            "maxmemory-policy {policy} can evict what a Redis of role {role} must keep: {}",
            role.when_full(policy)
        ),
        Some(format!(
            "set maxmemory-policy {} (what role {role} can lose), or say the Redis is a cache \
             (--redis-role cache) if the application can lose any key",
            role.policy()
        )),
    ));
}

fn pgbouncer(b: &ServiceSettings, out: &mut Vec<Finding>) {
    let Some(auth) = b.get("pgbouncer.auth_type") else {
        return;
    };
    if !auth.value.trim().eq_ignore_ascii_case("trust") {
        return;
    }
    let listen = b
        .get("pgbouncer.listen_addr")
        .map(|e| e.value.trim().to_string())
        .unwrap_or_default();
    let exposed: Vec<&str> = listen
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty() && !loopback(a))
        .collect();
    if !exposed.is_empty() {
        out.push(Finding::error(
            Scope::Pgbouncer,
            Some(&auth.at),
            format!(
                "auth_type = trust while PgBouncer listens on {}: anyone who reaches the port logs in \
                 as any user without a password",
                exposed.join(", ")
            ),
            Some("use auth_type = scram-sha-256, or listen on loopback only".into()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::grammar;

    fn pg(text: &str) -> HostSettings {
        pg_on(16, text)
    }

    fn pg_on(major: u32, text: &str) -> HostSettings {
        HostSettings {
            postgres: Some(grammar::postgresql_conf(text, "pg.conf").unwrap()),
            pg_version: crate::version::PgVersion::of(major),
            ..Default::default()
        }
    }

    fn msgs(hs: &HostSettings, ctx: &Context) -> String {
        format!("{:?}", findings(hs, ctx, &Assumptions::default()))
    }

    #[test]
    fn full_page_writes_off_needs_zfs() {
        let hs = pg("full_page_writes = off\n");
        assert!(msgs(&hs, &Context::default()).contains("torn page"));
        let zfs = Context {
            pg_on_zfs: true,
            pg_on_zfs_source: "--filesystem zfs".into(),
            ..Default::default()
        };
        assert_eq!(msgs(&hs, &zfs), "[]");
        assert!(msgs(&pg("fsync = of\n"), &zfs).contains("fsync = off"));
    }

    #[test]
    fn wal_level_minimal_needs_no_senders_and_no_archiving() {
        let m = msgs(&pg("wal_level = minimal\n"), &Context::default());
        assert!(m.contains("max_wal_senders = 10"), "{m}");
        let m = msgs(
            &pg("wal_level = minimal\nmax_wal_senders = 0\narchive_mode = on\n"),
            &Context::default(),
        );
        assert!(m.contains("archive_mode = on"), "{m}");
        assert_eq!(
            msgs(
                &pg("wal_level = minimal\nmax_wal_senders = 0\n"),
                &Context::default()
            ),
            "[]"
        );
    }

    /// Each as PostgreSQL refuses it at start (tests/it/pg_start.rs asks
    /// every major).
    #[test]
    fn settings_postgres_checks_against_each_other_at_start() {
        let m = |major: u32, text: &str| msgs(&pg_on(major, text), &Context::default());
        assert!(m(15, "max_connections = 3\n")
            .contains("must be less than max_connections (3, pg.conf:1)"));
        assert_eq!(m(15, "max_connections = 4\n"), "[]");
        assert!(m(16, "max_connections = 5\nreserved_connections = 2\n")
            .contains("plus reserved_connections (2"));
        assert_eq!(
            m(16, "max_connections = 6\nreserved_connections = 2\n"),
            "[]"
        );
        assert!(m(16, "max_connections = 262122\n").contains("262144 server processes"));
        assert_eq!(m(16, "max_connections = 262121\n"), "[]");
        assert!(m(17, "max_connections = 262121\n").contains("262144 server processes"));
        assert_eq!(m(17, "max_connections = 262120\n"), "[]");
        assert!(m(18, "max_connections = 262108\n").contains("262144 server processes"));
        assert_eq!(m(18, "max_connections = 262107\n"), "[]");
        assert!(m(15, "min_wal_size = 31MB\n").contains("less than two WAL segments"));
        assert_eq!(m(15, "min_wal_size = 32767kB\n"), "[]", "rounded to 32 MB");
        assert!(m(15, "max_wal_size = 16MB\nmin_wal_size = 32MB\n").contains("max_wal_size = 16MB"));
        let two = "recovery_target_time = '2020-01-01'\nrecovery_target_xid = ''\n";
        assert!(m(13, two).contains("`recovery_target_xid` comes after `recovery_target_time"));
        let empty_first = "recovery_target_xid = ''\nrecovery_target_time = '2020-01-01'\n";
        assert_eq!(m(13, empty_first), "[]");
        let same = "recovery_target_time = '2020-01-01'\nrecovery_target_time = '2021-01-01'\n";
        assert_eq!(m(18, same), "[]");
    }

    #[test]
    fn huge_pages_on_needs_reserved_pages() {
        let m = msgs(&pg("huge_pages = on\n"), &Context::default());
        assert!(m.contains("reserves no huge pages"), "{m}");
        let mut hs = pg("huge_pages = on\nshared_buffers = 1GB\n");
        let mut os = ServiceSettings::default();
        grammar::os_conf("vm.nr_hugepages = 100\n", "sysctl.conf", &mut os).unwrap();
        hs.os = Some(os);
        assert!(msgs(&hs, &Context::default()).contains("only 200 MiB of huge pages"));
        let mut os = ServiceSettings::default();
        grammar::os_conf("vm.nr_hugepages = 600\n", "sysctl.conf", &mut os).unwrap();
        hs.os = Some(os);
        assert_eq!(msgs(&hs, &Context::default()), "[]");
        assert_eq!(msgs(&pg("huge_pages = try\n"), &Context::default()), "[]");
    }

    #[test]
    fn open_redis_and_trusting_pgbouncer() {
        let r = |t: &str| HostSettings {
            redis: Some(grammar::redis_conf(t, "r.conf").unwrap()),
            ..Default::default()
        };
        assert!(
            msgs(&r("protected-mode no\nbind 0.0.0.0\n"), &Context::default())
                .contains("protected-mode no")
        );
        assert_eq!(
            msgs(
                &r("protected-mode no\nbind 127.0.0.1 -::1\n"),
                &Context::default()
            ),
            "[]"
        );
        assert_eq!(
            msgs(
                &r("protected-mode no\nbind 0.0.0.0\nrequirepass s3cret\n"),
                &Context::default()
            ),
            "[]"
        );
        let b = |t: &str| HostSettings {
            pgbouncer: Some(grammar::pgbouncer_ini(t, "b.ini").unwrap()),
            ..Default::default()
        };
        assert!(msgs(
            &b("[pgbouncer]\nauth_type = trust\nlisten_addr = *\n"),
            &Context::default()
        )
        .contains("auth_type = trust"));
        assert_eq!(
            msgs(
                &b("[pgbouncer]\nauth_type = trust\nlisten_addr = 127.0.0.1\n"),
                &Context::default()
            ),
            "[]"
        );
    }
}
