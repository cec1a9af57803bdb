//! The servers a live command talks to: targets from the command line or
//! the environment, connected with their state read, and the host they run
//! on resolved as check-budget resolves it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::state::*;
use super::*;
use crate::error::Error;
use crate::facts::detect::Detector;
use crate::read::discover;
use crate::read::settings::HostSettings;
use crate::read::settings::Releases;
use crate::target::{self, Host};
use crate::version::PgVersion;

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// At most one PostgreSQL and one Redis, from the arguments or, when none
/// are given, the environment.
pub(super) fn targets(args: &[String]) -> Result<(Option<Target>, Option<Target>)> {
    let list = if args.is_empty() {
        conn::env_targets()?
    } else {
        args.iter()
            .map(|a| conn::parse_target(a))
            .collect::<Result<Vec<_>>>()?
    };
    if list.is_empty() {
        return Err(Error::plain(
            "no server to talk to",
            "give postgres://... and/or redis://... URLs, or set PGHOST/PGUSER/... and REDIS_URL",
        )
        .into());
    }
    let (mut pg, mut redis) = (None, None);
    for t in list {
        let slot = match t {
            Target::Postgres { .. } => &mut pg,
            Target::Redis { .. } => &mut redis,
        };
        if let Some(prev) = slot.as_ref() {
            return Err(Error::plain(
                format!(
                    "two servers of one kind: {} and {}",
                    Target::shown(prev),
                    t.shown()
                ),
                "inspect one host at a time",
            )
            .into());
        }
        *slot = Some(t);
    }
    Ok((pg, redis))
}

pub(super) struct Live {
    pub(super) pg: Option<(tokio_postgres::Client, PgState)>,
    pub(super) redis: Option<(redis::aio::MultiplexedConnection, RedisState)>,
}

pub(super) async fn connect(
    pg: &Option<Target>,
    redis: &Option<Target>,
    t: Duration,
) -> Result<Live> {
    let pg = match pg {
        Some(Target::Postgres {
            config,
            tls,
            root_cert,
            shown,
        }) => {
            let c = conn::connect_postgres(config, *tls, root_cert.as_deref(), shown, t).await?;
            let s = pg_state(&c, shown, t).await?;
            Some((c, s))
        }
        _ => None,
    };
    let redis = match redis {
        Some(Target::Redis { url, shown }) => {
            let mut c = conn::connect_redis(url, shown, t).await?;
            let s = redis_state(&mut c, shown, t).await?;
            Some((c, s))
        }
        _ => None,
    };
    Ok(Live { pg, redis })
}

/// The servers' host, resolved as check-budget resolves it (the same
/// code): flags > facts file > manifest > this machine when every server
/// runs on it; the release is the live server's. When PostgreSQL runs
/// here, where its data directory really is decides whether it is on ZFS.
pub(super) fn servers_host(
    flags: &target::Flags,
    manifest: Option<&crate::manifest::Manifest>,
    live: &Live,
    all_local: bool,
) -> Result<Host> {
    let postgres = live.pg.as_ref().map(|(_, s)| target::LivePostgres {
        major: s.major,
        build: s.build_features(),
        release: s.version.clone(),
    });
    let data_dir = local_data_dir(live, all_local);
    target::resolve(
        flags,
        manifest,
        target::Purpose::Live {
            all_local,
            postgres: postgres.as_ref(),
            data_dir: data_dir.as_ref(),
        },
    )
}

/// For a PostgreSQL on this machine: whether its data directory (and
/// pg_wal) is on ZFS, as detection sees it. Detection beats any file.
pub(super) fn local_data_dir(live: &Live, all_local: bool) -> Option<target::LocalDataDir> {
    let (_, s) = live.pg.as_ref()?;
    if !all_local {
        return None;
    }
    let dir = s.get("data_directory").map(|d| d.setting.clone())?;
    if dir.is_empty() {
        return None;
    }
    let facts = Detector::host().detect(Some(Path::new(&dir)));
    let fs = facts
        .storage
        .filesystem
        .as_ref()
        .map_or("an unknown filesystem".to_string(), |f| f.value.clone());
    Some(target::LocalDataDir {
        on_zfs: facts.data_on_zfs(),
        source: format!("detected: the server's data_directory {dir} is on {fs}"),
    })
}

pub(super) fn live_settings(live: &Live) -> HostSettings {
    HostSettings {
        pg_version: live
            .pg
            .as_ref()
            .map_or(PgVersion::DEFAULT, |(_, s)| PgVersion::nearest(s.major)),
        postgres: live.pg.as_ref().map(|(_, s)| s.service_settings()),
        pg_build: live.pg.as_ref().map(|(_, s)| s.build_features()),
        pg_release: live.pg.as_ref().map(|(_, s)| s.version.clone()),
        redis: live.redis.as_ref().map(|(_, s)| s.service_settings()),
        ..Default::default()
    }
}

/// The files of `dir` as the live servers read them: their releases.
pub(super) fn load_dir(dir: &Path, live: &Live) -> Result<(HostSettings, discover::Found)> {
    let found = discover::discover(&[dir.to_path_buf()])?;
    let running = live_settings(live);
    let releases = Releases {
        pg_version: running.pg_version,
        pg_build: running.pg_build,
        pg_release: running.pg_release,
        ..Default::default()
    };
    let settings = discover::load_found(&found, &releases, None)?;
    Ok((settings, found))
}

/// host:port of a target, as the snapshot records it.
pub(super) fn host_port(t: &Target) -> String {
    match t {
        Target::Postgres { config, .. } => {
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                None => "localhost".into(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}")
        }
        Target::Redis { url, .. } => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
            let hp = rest[..auth_end].rsplit('@').next().unwrap_or("");
            if hp.contains(':') && !hp.ends_with(']') {
                hp.to_string()
            } else {
                format!("{hp}:6379")
            }
        }
    }
}

/// What the command line says of the servers' host: a live server's
/// versions are its own, so only RAM, facts and filesystem.
pub(super) fn host_flags(host: &crate::cli::ServersHostArgs) -> target::Flags<'_> {
    target::Flags {
        ram: host.ram,
        facts: host.facts.as_deref(),
        filesystem: host.filesystem.as_deref(),
        ..Default::default()
    }
}
