//! The domain's names: the services dbtune tunes on a host (PostgreSQL
//! always runs; PgBouncer, Redis and ZFS are a choice the profile makes and
//! `--services` overrides), the kinds of file it writes and reads, and what
//! a finding or budget term is about.

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
        f.pad(self.name())
    }
}

/// What a finding, a budget term or a drift is about: a service, the OS
/// (kernel settings, the OS reserve) or the host as a whole (its RAM,
/// the applications beside the databases). Serialized as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Postgres,
    Pgbouncer,
    Redis,
    Zfs,
    Os,
    Host,
    /// The budget as a whole (a typical case near the limit).
    Budget,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Postgres => "postgres",
            Scope::Pgbouncer => "pgbouncer",
            Scope::Redis => "redis",
            Scope::Zfs => "zfs",
            Scope::Os => "os",
            Scope::Host => "host",
            Scope::Budget => "budget",
        }
    }
}

impl From<Service> for Scope {
    fn from(s: Service) -> Scope {
        match s {
            Service::Postgres => Scope::Postgres,
            Service::Pgbouncer => Scope::Pgbouncer,
            Service::Redis => Scope::Redis,
            Service::Zfs => Scope::Zfs,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What a config file configures: the artifacts render writes (`--only`) and
/// the files check-budget classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Postgres,
    Redis,
    Pgbouncer,
    Zfs,
    /// sysctl settings and module options (99-dbtune.conf).
    Os,
    /// systemd drop-ins and a compose override with each service's memory
    /// limit from the budget.
    Limits,
}

impl FileKind {
    /// The service whose settings the file holds, if it is one.
    pub fn service(self) -> Option<Service> {
        match self {
            FileKind::Postgres => Some(Service::Postgres),
            FileKind::Pgbouncer => Some(Service::Pgbouncer),
            FileKind::Redis => Some(Service::Redis),
            FileKind::Zfs | FileKind::Os | FileKind::Limits => None,
        }
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
