//! Files: minijinja templates that only format the plan, then the files
//! parsed back into settings so the budget checks what was written.

pub mod output;

use std::path::PathBuf;

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::check::Report;
use crate::error::InputError;
use crate::parse;
use crate::plan::Plan;
use crate::settings::{HostSettings, ServiceSettings};
use crate::units::ByteSize;

/// What a rendered file is, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Postgres,
    Redis,
    Pgbouncer,
    Zfs,
    Os,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub kind: Kind,
    pub file: &'static str,
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
    env.set_loader(move |name| {
        if let Some(dir) = &override_dir {
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(t) => return Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read template {}: {e}", p.display()),
                    ))
                }
            }
        }
        Ok(TEMPLATES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string()))
    });
    env
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    version: &'static str,
    #[serde(flatten)]
    plan: &'a Plan,
}

/// Renders every file the plan calls for, in a fixed order.
pub fn render(plan: &Plan, template_dir: Option<PathBuf>) -> Result<Vec<Artifact>> {
    let env = environment(template_dir);
    let ctx = TemplateContext {
        version: env!("CARGO_PKG_VERSION"),
        plan,
    };
    let one = |tpl: &str| -> Result<String> {
        env.get_template(tpl)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| {
                anyhow::Error::new(InputError::plain(
                    format!("template `{tpl}` failed: {e:#}"),
                    "a template in your override directory may use a name the plan does not have; \
                     compare it with templates/ in the dbtune sources",
                ))
            })
    };
    let mut out = vec![Artifact {
        kind: Kind::Postgres,
        file: "postgresql.conf",
        content: one("postgresql.conf.j2")?,
        executable: false,
    }];
    if plan.redis.is_some() {
        out.push(Artifact {
            kind: Kind::Redis,
            file: "redis.conf",
            content: one("redis.conf.j2")?,
            executable: false,
        });
    }
    if plan.pgbouncer.is_some() {
        out.push(Artifact {
            kind: Kind::Pgbouncer,
            file: "pgbouncer.ini",
            content: one("pgbouncer.ini.j2")?,
            executable: false,
        });
    }
    if plan.zfs.is_some() {
        out.push(Artifact {
            kind: Kind::Zfs,
            file: "zfs-datasets.sh",
            content: one("zfs-datasets.sh.j2")?,
            executable: true,
        });
        out.push(Artifact {
            kind: Kind::Zfs,
            file: "zfs-arc.conf",
            content: one("zfs-arc.conf.j2")?,
            executable: false,
        });
    }
    out.push(Artifact {
        kind: Kind::Os,
        file: "99-dbtune.conf",
        content: one("sysctl.conf.j2")?,
        executable: false,
    });
    Ok(out)
}

/// Parses rendered (or committed) files back into settings, by file name.
pub fn parse_artifacts<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    pg_version: u32,
) -> Result<HostSettings, InputError> {
    let mut hs = HostSettings {
        pg_version,
        ..Default::default()
    };
    let mut os = ServiceSettings::default();
    for (name, text) in files {
        match name {
            "postgresql.conf" => hs.postgres = Some(parse::postgresql_conf(text, name)?),
            "redis.conf" => hs.redis = Some(parse::redis_conf(text, name)?),
            "pgbouncer.ini" => hs.pgbouncer = Some(parse::pgbouncer_ini(text, name)?),
            "99-dbtune.conf" | "zfs-arc.conf" => parse::os_conf(text, name, &mut os)?,
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
        plan.host.pg_version,
    )
    .context("dbtune could not parse a file it rendered (a bug, or an override template)")?;
    Ok(crate::check::check_settings(
        &settings,
        plan.host.ram,
        &plan.host.ram_source,
        &plan.reserves,
        &plan.assumptions,
        &plan.host.pg_version_source,
    ))
}
