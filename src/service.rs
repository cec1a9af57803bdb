//! The services dbtune tunes on a host. PostgreSQL always runs; PgBouncer,
//! Redis and ZFS are a choice the profile makes and `--services` overrides.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Postgres,
    Pgbouncer,
    Redis,
    Zfs,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Postgres,
        Service::Pgbouncer,
        Service::Redis,
        Service::Zfs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Pgbouncer => "pgbouncer",
            Service::Redis => "redis",
            Service::Zfs => "zfs",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `postgres, pgbouncer, redis`.
pub fn list(services: &[Service]) -> String {
    services
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}
