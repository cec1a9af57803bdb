//! Files: minijinja templates that only format the plan, then the files
//! parsed back into settings so the budget checks what was written.

pub mod output;

use std::path::PathBuf;

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::Error;
use crate::plan::Plan;
use crate::read::grammar;
use crate::read::report::Report;
use crate::read::settings::{HostSettings, ServiceSettings};
use crate::service::{FileKind, Service};
use crate::units::ByteSize;
use crate::version::PgVersion;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub kind: FileKind,
    pub file: &'static str,
    /// The template it came from.
    pub template: &'static str,
    pub content: String,
    pub executable: bool,
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "postgresql.conf.j2",
        include_str!("../../templates/postgresql.conf.j2"),
    ),
    (
        "redis.conf.j2",
        include_str!("../../templates/redis.conf.j2"),
    ),
    (
        "pgbouncer.ini.j2",
        include_str!("../../templates/pgbouncer.ini.j2"),
    ),
    (
        "sysctl.conf.j2",
        include_str!("../../templates/sysctl.conf.j2"),
    ),
    (
        "zfs-datasets.sh.j2",
        include_str!("../../templates/zfs-datasets.sh.j2"),
    ),
    (
        "zfs-arc.conf.j2",
        include_str!("../../templates/zfs-arc.conf.j2"),
    ),
    (
        "systemd.conf.j2",
        include_str!("../../templates/systemd.conf.j2"),
    ),
    (
        "docker-compose.override.yml.j2",
        include_str!("../../templates/docker-compose.override.yml.j2"),
    ),
    (
        "docker-compose.yml.j2",
        include_str!("../../templates/docker-compose.yml.j2"),
    ),
    (
        "pg_hba.conf.j2",
        include_str!("../../templates/pg_hba.conf.j2"),
    ),
    (
        "cnpg-cluster.yaml.j2",
        include_str!("../../templates/cnpg-cluster.yaml.j2"),
    ),
    (
        "patroni.yml.j2",
        include_str!("../../templates/patroni.yml.j2"),
    ),
];

/// `$DBTUNE_TEMPLATE_DIR`, else `$XDG_CONFIG_HOME/dbtune/templates`.
pub fn user_template_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DBTUNE_TEMPLATE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("dbtune/templates"))
}

/// One loader for every template: the user's override directory first,
/// then the built-ins embedded in the binary.
fn environment(override_dir: Option<PathBuf>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("size", |bytes: u64| ByteSize(bytes).to_string());
    // Text in a comment stays on its line, whatever it holds.
    env.add_filter("comment", |text: String| one_line(&text));
    // A word for a shell script: single-quoted, so nothing in it runs.
    env.add_filter("sh", |text: String| shell_quote(&text));
    // A YAML string: double-quoted with JSON's escapes (a JSON string is a
    // YAML double-quoted scalar), so a value is never read as a number,
    // a boolean or more YAML.
    env.add_filter("yaml", |text: String| {
        serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".into())
    });
    env.set_loader(move |name| {
        if let Some(dir) = &override_dir {
            let p = dir.join(name);
            if std::fs::symlink_metadata(&p).is_ok() {
                return crate::input::read_text(&p, "template", crate::input::MAX_DOCUMENT)
                    .map(Some)
                    .map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                    });
            }
        }
        Ok(TEMPLATES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string()))
    });
    env
}

/// Control characters (a newline would start a new directive) become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// POSIX shell single quoting: `it's` -> `'it'\''s'`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    version: &'static str,
    #[serde(flatten)]
    plan: &'a Plan,
}

/// The names a rendered file must hold, each as often as the plan sets
/// it: the file's shape, whatever the values.
fn names_of(sections: &crate::plan::Sections, prefix_section: bool) -> Vec<String> {
    let mut v: Vec<String> = sections
        .0
        .iter()
        .flat_map(|sec| {
            sec.settings.iter().map(move |x| {
                if prefix_section {
                    format!("{}.{}", sec.title, x.name)
                } else {
                    x.name.clone()
                }
            })
        })
        .collect();
    v.sort();
    v
}

fn parsed_names(s: &ServiceSettings) -> Vec<String> {
    let mut v: Vec<String> = s
        .entries
        .iter()
        .flat_map(|(k, es)| std::iter::repeat_n(k.clone(), es.len()))
        .collect();
    v.sort();
    v
}

/// A built-in template's output, parsed back, holds exactly the settings
/// the plan made: nothing a value smuggled in (a newline, a quote) can add
/// a directive. Override templates are the user's to shape.
fn verify_shape(plan: &Plan, a: &Artifact) -> Result<()> {
    let parsed = match a.file {
        "postgresql.conf" => grammar::postgresql_conf(&a.content, a.file)?,
        "redis.conf" => grammar::redis_conf(&a.content, a.file)?,
        "pgbouncer.ini" => grammar::pgbouncer_ini(&a.content, a.file)?,
        "99-dbtune.conf" | "zfs-arc.conf" => {
            let mut os = ServiceSettings::default();
            grammar::os_conf(&a.content, a.file, &mut os)?;
            os
        }
        _ => return Ok(()),
    };
    let want = match a.file {
        "postgresql.conf" => names_of(&plan.postgres, false),
        "redis.conf" => plan.redis.as_ref().map_or(vec![], |r| names_of(r, false)),
        "pgbouncer.ini" => plan
            .pgbouncer
            .as_ref()
            .map_or(vec![], |b| names_of(b, true)),
        "99-dbtune.conf" => names_of(&plan.sysctl, false),
        _ => vec!["zfs.zfs_arc_max".to_string()],
    };
    let got = parsed_names(&parsed);
    if got != want {
        let extra: Vec<&String> = got.iter().filter(|n| !want.contains(n)).collect();
        anyhow::bail!(
            "the rendered {} does not hold exactly the planned settings (unexpected: {extra:?}); \
             a value must have broken out of its line. This is a dbtune bug: please report it",
            a.file
        );
    }
    Ok(())
}

/// Renders every file the plan calls for, in a fixed order.
pub fn render(plan: &Plan, template_dir: Option<PathBuf>) -> Result<Vec<Artifact>> {
    let overridden = |tpl: &str| {
        template_dir
            .as_ref()
            .is_some_and(|d| std::fs::symlink_metadata(d.join(tpl)).is_ok())
    };
    let overrides: Vec<&str> = TEMPLATES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| overridden(n))
        .collect();
    let out = render_all(plan, template_dir)?;
    for a in &out {
        if !overrides.contains(&a.template) {
            verify_shape(plan, a)?;
        }
    }
    Ok(out)
}

/// One file render makes: what it is, its name and template.
struct Slot {
    kind: FileKind,
    file: &'static str,
    template: &'static str,
    executable: bool,
}

/// The config files the plan calls for, in a fixed order.
fn config_slots(plan: &Plan) -> Vec<Slot> {
    let slot = |kind, file, template| Slot {
        kind,
        file,
        template,
        executable: false,
    };
    let mut out = vec![slot(
        FileKind::Postgres,
        "postgresql.conf",
        "postgresql.conf.j2",
    )];
    if plan.redis.is_some() {
        out.push(slot(FileKind::Redis, "redis.conf", "redis.conf.j2"));
    }
    if plan.pgbouncer.is_some() {
        out.push(slot(
            FileKind::Pgbouncer,
            "pgbouncer.ini",
            "pgbouncer.ini.j2",
        ));
    }
    if let Some(z) = &plan.zfs {
        if z.script {
            out.push(Slot {
                executable: true,
                ..slot(FileKind::Zfs, "zfs-datasets.sh", "zfs-datasets.sh.j2")
            });
        }
        out.push(slot(FileKind::Zfs, "zfs-arc.conf", "zfs-arc.conf.j2"));
    }
    out.push(slot(FileKind::Os, "99-dbtune.conf", "sysctl.conf.j2"));
    out
}

/// The services that get a systemd drop-in: (service, unit, file).
fn limit_units(plan: &Plan) -> Vec<(Service, &'static str, &'static str)> {
    let mut out = vec![(
        Service::Postgres,
        "postgresql@.service",
        "postgresql.service.conf",
    )];
    if plan.pgbouncer.is_some() {
        out.push((
            Service::Pgbouncer,
            "pgbouncer.service",
            "pgbouncer.service.conf",
        ));
    }
    if plan.redis.is_some() {
        out.push((
            Service::Redis,
            "redis-server.service",
            "redis-server.service.conf",
        ));
    }
    out
}

const COMPOSE: &str = "docker-compose.override.yml";

/// Every file render makes for `plan` ([`render`] and [`render_limits`]),
/// whether it is written now or not: what render owns in an --out
/// directory, and removes there once it no longer makes it.
pub fn files_of(plan: &Plan) -> std::collections::BTreeSet<&'static str> {
    config_slots(plan)
        .iter()
        .map(|s| s.file)
        .chain(limit_units(plan).iter().map(|(_, _, f)| *f))
        .chain([COMPOSE])
        .collect()
}

fn render_all(plan: &Plan, template_dir: Option<PathBuf>) -> Result<Vec<Artifact>> {
    let env = environment(template_dir);
    let ctx = TemplateContext {
        version: env!("CARGO_PKG_VERSION"),
        plan,
    };
    let one = |tpl: &str| -> Result<String> {
        env.get_template(tpl)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| {
                anyhow::Error::new(Error::plain(
                    format!("template `{tpl}` failed: {e:#}"),
                    "a template in your override directory may use a name the plan does not have; \
                     compare it with templates/ in the dbtune sources",
                ))
            })
    };
    config_slots(plan)
        .into_iter()
        .map(|s| {
            Ok(Artifact {
                kind: s.kind,
                file: s.file,
                template: s.template,
                content: one(s.template)?,
                executable: s.executable,
            })
        })
        .collect()
}

/// One service's limits: its worst case in the budget, as a hard memory
/// limit, and the file descriptors it may open.
#[derive(Clone, Debug, Serialize)]
pub struct Limit {
    pub service: Service,
    pub unit: &'static str,
    /// What `systemctl restart` takes: PostgreSQL's Debian instance
    /// (`postgresql@15-main`), the unit's name for the others.
    pub restart: String,
    pub compose_name: &'static str,
    pub file: &'static str,
    pub memory_max: u64,
    pub memory_high: u64,
    pub memory_reason: String,
    pub nofile: u64,
    pub nofile_reason: String,
}

/// The open-file limit a service gets at least: the usual soft limit.
const NOFILE_FLOOR: u64 = 1024;

/// The words for a limit raised to [`NOFILE_FLOOR`], so the comment's
/// sum and the value agree.
fn at_least(need: u64) -> String {
    if need < NOFILE_FLOOR {
        format!(" ({need}), raised to {NOFILE_FLOOR}, the usual soft limit")
    } else {
        String::new()
    }
}

/// The limits that make the budget real, from the budget of the rendered
/// files: per service, MemoryMax is its worst case (rounded up to a MiB),
/// so the limits add up to the budget's services.
pub fn limits_of(plan: &Plan, budget: &crate::read::budget::Budget) -> Vec<Limit> {
    let mib = |b: ByteSize| b.div_ceil(ByteSize::mib(1)) * 1024 * 1024;
    let setting = |sections: &crate::plan::Sections, name: &str| -> Option<u64> {
        sections
            .0
            .iter()
            .flat_map(|s| &s.settings)
            .find(|x| x.name == name)
            .and_then(|x| x.value.parse().ok())
    };
    limit_units(plan)
        .into_iter()
        .map(|(service, unit, file)| {
            let (nofile, nofile_reason) = match (service, &plan.pgbouncer, &plan.redis) {
                (Service::Pgbouncer, Some(b), _) => {
                    let clients = setting(b, "max_client_conn").unwrap_or(100);
                    let servers = setting(b, "max_db_connections").unwrap_or(0);
                    let need = clients + servers + 100;
                    (
                        need.max(NOFILE_FLOOR),
                        format!(
                            "one per client ({clients}) and per server connection ({servers}), plus 100 for PgBouncer itself{}",
                            at_least(need)
                        ),
                    )
                }
                (Service::Redis, _, Some(r)) => {
                    let clients = setting(r, "maxclients").unwrap_or(10000);
                    let need = clients + 128;
                    (
                        need.max(NOFILE_FLOOR),
                        format!(
                            "one per client (maxclients {clients}), plus the 32 Redis keeps and some for files{}",
                            at_least(need)
                        ),
                    )
                }
                _ => (
                    4096,
                    "each PostgreSQL process opens up to max_files_per_process (1000) files, plus sockets and pipes"
                        .to_string(),
                ),
            };
            let worst = budget.service_worst(service);
            let max = mib(worst);
            Limit {
                service,
                unit,
                restart: match service {
                    Service::Postgres => {
                        format!("postgresql@{}-main", plan.host.pg_version.value)
                    }
                    _ => unit.trim_end_matches(".service").to_string(),
                },
                compose_name: service.name(),
                file,
                memory_max: max,
                memory_high: max / 10 * 9 / (1024 * 1024) * (1024 * 1024),
                memory_reason: format!(
                    "{service}'s worst case in the budget ({worst}): its terms added up, term by term as \
                     render printed them"
                ),
                nofile,
                nofile_reason,
            }
        })
        .collect()
}

/// The limit files: a systemd drop-in per service and a compose override.
pub fn render_limits(
    plan: &Plan,
    budget: &crate::read::budget::Budget,
    template_dir: Option<PathBuf>,
) -> Result<Vec<Artifact>> {
    let env = environment(template_dir);
    let limits = limits_of(plan, budget);
    let one = |tpl: &str, ctx: minijinja::Value| -> Result<String> {
        env.get_template(tpl)
            .and_then(|t| t.render(ctx))
            .map_err(|e| {
                anyhow::Error::new(Error::plain(
                    format!("template `{tpl}` failed: {e:#}"),
                    "an override template may use a name the context does not have",
                ))
            })
    };
    let base = |extra: minijinja::Value| {
        minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            profile => &plan.profile,
            ..extra
        }
    };
    let mut out = Vec::new();
    for l in &limits {
        out.push(Artifact {
            kind: FileKind::Limits,
            file: l.file,
            template: "systemd.conf.j2",
            content: one("systemd.conf.j2", base(minijinja::context! { limit => l }))?,
            executable: false,
        });
    }
    out.push(Artifact {
        kind: FileKind::Limits,
        file: COMPOSE,
        template: "docker-compose.override.yml.j2",
        content: one(
            "docker-compose.override.yml.j2",
            base(minijinja::context! { limits => &limits }),
        )?,
        executable: false,
    });
    Ok(out)
}

/// The compose layout's own files (`render --layout compose`), from a plan
/// made by [`crate::plan::layout::compose`]: the pg_hba.conf its
/// postgresql.conf names, and a docker-compose.yml running each service in
/// its official image with these files mounted and the limits of the
/// files' budget. A whole file, not an override: an override merges into
/// services the user already defined (their images, commands, volumes),
/// while this layout needs its own command lines and mounts to work.
pub fn render_compose(
    plan: &Plan,
    budget: &crate::read::budget::Budget,
    template_dir: Option<PathBuf>,
) -> Result<Vec<Artifact>> {
    use crate::plan::layout::COMPOSE_HBA;
    let env = environment(template_dir);
    let limits = limits_of(plan, budget);
    let major = plan.host.pg_version.value.major();
    // The image's VOLUME: 18+ keeps data in /var/lib/postgresql/MAJOR/docker
    // so pg_upgrade --link works across majors on one mount.
    let (pg_volume, pg_volume_reason) = if major >= 18 {
        (
            "/var/lib/postgresql",
            "the image's volume from PostgreSQL 18 on (PGDATA is /var/lib/postgresql/MAJOR/docker below it)",
        )
    } else {
        (
            "/var/lib/postgresql/data",
            "the image's volume and PGDATA before PostgreSQL 18",
        )
    };
    let pg_limit = limits
        .iter()
        .find(|l| l.service == Service::Postgres)
        .map_or(0, |l| l.memory_max);
    let (redis_image, redis_image_reason) = match plan.host.redis_version.known() {
        Some(v) => (
            format!("redis:{v}"),
            format!("the official image of the Redis release the files are for ({v})"),
        ),
        None => (
            "redis:7".to_string(),
            "the official image, Redis 7 (the release is not known: a facts file from the host gives it)"
                .to_string(),
        ),
    };
    let ctx = minijinja::context! {
        version => env!("CARGO_PKG_VERSION"),
        profile => &plan.profile,
        limits => &limits,
        hba_path => COMPOSE_HBA,
        pg_major => major,
        pg_volume,
        pg_volume_reason,
        shm_size => pg_limit,
        shm_reason => format!(
            "/dev/shm holds the dynamic shared memory of parallel queries and parallel index builds; \
             Docker's 64 MB would fail them (could not resize shared memory segment). Its pages count \
             against the memory limit, so the limit ({}) bounds it, not this size",
            ByteSize(pg_limit)
        ),
        redis => plan.redis.is_some(),
        redis_image,
        redis_image_reason,
        pgbouncer => plan.pgbouncer.is_some(),
        pgbouncer_auth_file => plan
            .pgbouncer
            .as_ref()
            .and_then(|b| b.value("auth_file"))
            .unwrap_or("/etc/pgbouncer/userlist.txt"),
    };
    let one = |tpl: &'static str, file: &'static str, kind: FileKind| -> Result<Artifact> {
        let content = env
            .get_template(tpl)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| {
                anyhow::Error::new(Error::plain(
                    format!("template `{tpl}` failed: {e:#}"),
                    "an override template may use a name the context does not have",
                ))
            })?;
        Ok(Artifact {
            kind,
            file,
            template: tpl,
            content,
            executable: false,
        })
    };
    Ok(vec![
        one("pg_hba.conf.j2", "pg_hba.conf", FileKind::Postgres)?,
        one(
            "docker-compose.yml.j2",
            "docker-compose.yml",
            FileKind::Limits,
        )?,
    ])
}

/// Parses rendered (or committed) files back into settings, by file name.
pub fn parse_artifacts<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    pg_version: PgVersion,
    pg_build: Option<Vec<String>>,
) -> Result<HostSettings, Error> {
    let mut hs = HostSettings {
        pg_version,
        pg_build,
        ..Default::default()
    };
    let mut os = ServiceSettings::default();
    for (name, text) in files {
        match name {
            "postgresql.conf" => hs.postgres = Some(grammar::postgresql_conf(text, name)?),
            "redis.conf" => hs.redis = Some(grammar::redis_conf(text, name)?),
            "pgbouncer.ini" => hs.pgbouncer = Some(grammar::pgbouncer_ini(text, name)?),
            "99-dbtune.conf" | "zfs-arc.conf" => grammar::os_conf(text, name, &mut os)?,
            _ => {}
        }
    }
    if !os.files.is_empty() {
        hs.os = Some(os);
    }
    Ok(hs)
}

/// The files as written, validated and budgeted exactly as check-budget
/// would: render's proof that its output is valid and fits.
pub fn check(plan: &Plan, artifacts: &[Artifact]) -> Result<Report> {
    let settings = parse_artifacts(
        artifacts.iter().map(|a| (a.file, a.content.as_str())),
        plan.host.pg_version.value,
        plan.host.pg_build.value.clone(),
    )
    .context("dbtune could not parse a file it rendered (a bug, or an override template)")?;
    Ok(crate::read::report::check_settings(
        &settings, &plan.host, None,
    ))
}

/// One PostgreSQL parameter of an operator's file: its value as the
/// rendered postgresql.conf holds it, and the plan's reason.
#[derive(Clone, Debug, Serialize)]
struct OperatorParam {
    name: String,
    value: String,
    reason: String,
}

/// PostgreSQL's settings as an operator's YAML (`render --layout`): a
/// CloudNativePG `Cluster` or a Patroni fragment, from the checked
/// postgresql.conf among `artifacts` (values as PostgreSQL reads them)
/// and the plan's reasons. A Cluster's memory limit is PostgreSQL's worst
/// case in the budget of these very parameters, plus the container's own
/// overhead, so the file passes check-budget against its own limit.
pub fn render_operator(
    plan: &Plan,
    artifacts: &[Artifact],
    operator: crate::read::operator::Operator,
    template_dir: Option<PathBuf>,
) -> Result<Artifact> {
    use crate::read::operator::{self as op, Operator};
    let conf = artifacts
        .iter()
        .find(|a| a.file == "postgresql.conf")
        .context("render made no postgresql.conf")?;
    let parsed = grammar::postgresql_conf(&conf.content, conf.file)?;
    let mut params = Vec::new();
    for s in plan.postgres.0.iter().flat_map(|sec| &sec.settings) {
        let Some(e) = parsed.get(&s.name) else {
            continue;
        };
        let leave_out = match operator {
            Operator::Cnpg => op::cnpg_fixed(&s.name),
            // Patroni sets these from postgresql.listen and scope.
            Operator::Patroni => matches!(
                s.name.as_str(),
                "listen_addresses" | "port" | "cluster_name"
            ),
        };
        if leave_out || params.iter().any(|p: &OperatorParam| p.name == s.name) {
            continue;
        }
        let mut p = OperatorParam {
            name: s.name.clone(),
            value: e.value.clone(),
            reason: s.reason.clone(),
        };
        // Patroni replaces a value below its minimum with its default:
        // the minimum is the nearest value it keeps.
        if let (Operator::Patroni, Some(min)) = (operator, op::patroni_min(&s.name)) {
            if p.value.parse::<i64>().is_ok_and(|v| v < min) {
                p.reason = format!(
                    "{} (raised from {}: Patroni's least value)",
                    p.reason, p.value
                );
                p.value = min.to_string();
            }
        }
        params.push(p);
    }
    let env = environment(template_dir);
    let host = &plan.host;
    let version = env!("CARGO_PKG_VERSION");
    let (file, template, content) = match operator {
        Operator::Cnpg => {
            // The settings the pod runs with: the operator's defaults for
            // what is left out, then the parameters.
            let here = || crate::read::settings::Location {
                file: "cluster.yaml".into(),
                line: 0,
            };
            let mut pg = ServiceSettings::default();
            for (name, value) in op::CNPG_DEFAULTS {
                if !params.iter().any(|p| p.name == *name) {
                    pg.push(name, *value, here());
                }
            }
            for p in &params {
                pg.push(&p.name, p.value.clone(), here());
            }
            let huge_on = pg.get("huge_pages").is_some_and(|e| e.value == "on");
            let need = crate::read::effective::pg_shared_estimate(
                &crate::read::effective::Pg::new(&pg, host.pg_version.value),
            );
            let huge_mib = need.div_ceil(ByteSize::mib(2)) * 2;
            let hs = HostSettings {
                pg_version: host.pg_version.value,
                pg_build: host.pg_build.value.clone(),
                postgres: Some(pg.clone()),
                // Shared memory in the pod's huge pages is outside its
                // memory limit, as check-budget counts it.
                deployment: huge_on.then(|| op::Deployment {
                    operator: Operator::Cnpg,
                    file: "cluster.yaml".into(),
                    memory_limit: None,
                    hugepages: Some((ByteSize::mib(huge_mib), here())),
                    image: None,
                    image_major: None,
                    findings: Vec::new(),
                }),
                ..Default::default()
            };
            // check-budget judges the file with the default assumptions
            // unless told otherwise: the larger of the two.
            let worst = [host.assumptions.clone(), Default::default()]
                .iter()
                .map(|a| {
                    crate::read::budget::compute(&hs, ByteSize::gib(1), "", &[], a)
                        .service_worst(Service::Postgres)
                })
                .max()
                .unwrap_or_default();
            let overhead = ByteSize(crate::calibration::CONTAINER_OVERHEAD);
            let limit_mib = ByteSize(worst.0 + overhead.0).div_ceil(ByteSize::mib(1));
            let ctx = minijinja::context! {
                version,
                profile => &plan.profile,
                host => crate::manifest::HostRecord::from(&plan.host),
                name => "postgres",
                image => format!("ghcr.io/cloudnative-pg/postgresql:{}", host.pg_version.value),
                parameters => &params,
                memory => format!("{limit_mib}Mi"),
                memory_reason => format!(
                    "PostgreSQL's worst case in dbtune's budget of these parameters ({worst}{}) plus \
                     the container's own {overhead}: check-budget reads this limit as the pod's RAM",
                    if huge_on { ", its shared memory in huge pages apart" } else { "" }
                ),
                cpu => host.cpus.value.to_string(),
                hugepages => huge_on.then(|| format!("{huge_mib}Mi")),
                hugepages_reason => format!(
                    "huge_pages = on: PostgreSQL's shared memory (about {need}) in 2 MiB pages; the \
                     nodes must have them reserved"
                ),
            };
            ("cluster.yaml", "cnpg-cluster.yaml.j2", ctx)
        }
        Operator::Patroni => {
            let (dcs, local): (Vec<_>, Vec<_>) =
                params.iter().partition(|p| op::patroni_dcs_kept(&p.name));
            let ctx = minijinja::context! {
                version,
                profile => &plan.profile,
                host => crate::manifest::HostRecord::from(&plan.host),
                name => "postgres",
                dcs => dcs,
                parameters => local,
            };
            ("patroni.yml", "patroni.yml.j2", ctx)
        }
    };
    let text = env
        .get_template(template)
        .and_then(|t| t.render(content))
        .map_err(|e| {
            anyhow::Error::new(Error::plain(
                format!("template `{template}` failed: {e:#}"),
                "an override template may use a name the context does not have",
            ))
        })?;
    // Read back as check-budget reads it: what the operator would refuse
    // or ignore is never written.
    let (_, back) = op::read_text(&text, file)?;
    if let Some(f) = back.findings.first() {
        return Err(Error::refusal(format!(
            "the rendered {file} would not work under {}: {f}",
            operator.name()
        ))
        .with_hint("change the profile so the plan avoids it (docs/kubernetes.md)")
        .into());
    }
    Ok(Artifact {
        kind: FileKind::Postgres,
        file,
        template,
        content: text,
        executable: false,
    })
}
