//! Where the files run. The plan is made for a host's services (the
//! systemd layout); [`compose`] moves it into containers on a compose
//! network: what changes is only where services listen, where Redis keeps
//! its files and how PgBouncer finds PostgreSQL, each with its reason.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Plan, Sections, Setting};

/// Where the files run: `render --layout`, or a profile's `layout` (how a
/// team deploys), the flag first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The host's services, with systemd drop-ins (and a compose override
    /// for the limits).
    #[default]
    Systemd,
    /// Every service in its official image on one compose network.
    Compose,
    /// PostgreSQL's settings as a CloudNativePG `Cluster`.
    Cnpg,
    /// PostgreSQL's settings as a Patroni fragment.
    Patroni,
}

impl Layout {
    /// Every layout, as a profile or `--layout` spells it.
    pub const ALL: [Layout; 4] = [
        Layout::Systemd,
        Layout::Compose,
        Layout::Cnpg,
        Layout::Patroni,
    ];
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Systemd => "systemd",
            Layout::Compose => "compose",
            Layout::Cnpg => "cnpg",
            Layout::Patroni => "patroni",
        })
    }
}

/// The file the compose layout mounts as PostgreSQL's pg_hba.conf.
pub const COMPOSE_HBA: &str = "/etc/postgresql/pg_hba.conf";
/// The official redis image's data directory (its VOLUME).
pub const COMPOSE_REDIS_DIR: &str = "/data";
/// PostgreSQL's service name in the rendered docker-compose.yml.
pub const COMPOSE_PG_HOST: &str = "postgres";

fn find<'a>(s: &'a mut Sections, name: &str) -> Option<&'a mut Setting> {
    s.0.iter_mut()
        .flat_map(|sec| sec.settings.iter_mut())
        .find(|x| x.name == name)
}

fn replace(s: &mut Sections, name: &str, value: impl ToString, reason: impl Into<String>) {
    if let Some(x) = find(s, name) {
        x.value = value.to_string();
        x.reason = reason.into();
    }
}

/// The plan for the compose layout: each service listens on its
/// container's network (the container is its own network namespace, so
/// "every interface" is the compose network and the container's loopback),
/// clients from elsewhere need a password, Redis keeps its files where the
/// official image has its volume, and PgBouncer reaches PostgreSQL by its
/// service name. Memory, connections and every other value stay the plan's.
pub fn compose(mut plan: Plan) -> Plan {
    plan.layout = Layout::Compose;
    let pg = &mut plan.postgres;
    replace(
        pg,
        "listen_addresses",
        "'*'",
        "compose layout: every interface of the container, which is the compose network and its own \
         loopback; pg_hba.conf (hba_file) admits the network's clients only with a SCRAM password",
    );
    // hba_file right after listen_addresses: the two say who may connect.
    if let Some(sec) =
        pg.0.iter_mut()
            .find(|sec| sec.settings.iter().any(|x| x.name == "listen_addresses"))
    {
        let at = sec
            .settings
            .iter()
            .position(|x| x.name == "listen_addresses")
            .map_or(sec.settings.len(), |i| i + 1);
        sec.settings.insert(
            at,
            Setting {
                name: "hba_file".into(),
                value: format!("'{COMPOSE_HBA}'"),
                reason: "compose layout: the rendered pg_hba.conf the compose file mounts; without it \
                         PostgreSQL reads the one the image's entrypoint wrote in the data directory, \
                         which admits every address"
                    .into(),
            },
        );
    }
    if let Some(r) = plan.redis.as_mut() {
        replace(
            r,
            "bind",
            "* -::*",
            "compose layout: every IPv4 interface of the container (the compose network), IPv6 only \
             where the network has it (the - makes it optional: compose networks are IPv4-only \
             unless enable_ipv6 is set); the password the compose file passes keeps others out",
        );
        replace(
            r,
            "protected-mode",
            "yes",
            "refuse outside clients while no password is set: the compose file passes one \
             (--requirepass from $REDIS_PASSWORD), so a Redis started without it serves only \
             its container's loopback",
        );
        replace(
            r,
            "dir",
            COMPOSE_REDIS_DIR,
            "compose layout: the official redis image's data directory (its volume), owned by the \
             redis user it runs as: RDB and AOF files go here",
        );
    }
    if let Some(b) = plan.pgbouncer.as_mut() {
        if let Some(db) = b.0.iter_mut().find(|sec| sec.title == "databases") {
            for x in &mut db.settings {
                if let Some(rest) = x.value.strip_prefix("host=127.0.0.1 ") {
                    x.value = format!("host={COMPOSE_PG_HOST} {rest}");
                    x.reason = format!(
                        "{}; host {COMPOSE_PG_HOST}: PostgreSQL's service name on the compose network",
                        x.reason
                    );
                }
            }
        }
        replace(
            b,
            "listen_addr",
            "*",
            "compose layout: every interface of the container, which is the compose network; \
             clients authenticate with SCRAM against auth_file",
        );
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_changes_where_services_listen_and_nothing_else() {
        let profile = crate::plan::fixture::profile("low-memory");
        let host = crate::plan::fixture::host(&profile, 4, 2, 16);
        let before = crate::plan::build(&profile, &host).unwrap();
        let after = compose(before.clone());
        assert_eq!(after.postgres.value("listen_addresses"), Some("'*'"));
        assert_eq!(
            after.postgres.value("hba_file"),
            Some("'/etc/postgresql/pg_hba.conf'")
        );
        let r = after.redis.as_ref().unwrap();
        assert_eq!(r.value("bind"), Some("* -::*"));
        assert_eq!(r.value("protected-mode"), Some("yes"));
        assert_eq!(r.value("dir"), Some("/data"));
        assert!(r.value("requirepass").is_none(), "no secret in the plan");
        // Memory and connections are the systemd plan's.
        for name in ["shared_buffers", "work_mem", "max_connections"] {
            assert_eq!(after.postgres.value(name), before.postgres.value(name));
        }
        assert_eq!(
            r.value("maxmemory"),
            before.redis.as_ref().unwrap().value("maxmemory")
        );
    }
}
