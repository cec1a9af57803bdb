//! `advise --out DIR`: the advised set as a directory that check-budget,
//! diff and apply take as they take render's. Each file holds what the
//! server was observed to run with (the settings not at their defaults),
//! with the system-wide proposals in place and their rule and evidence
//! above them, so check-budget judges the whole set and diff shows only
//! the proposals. Proposals for one role or database go to `roles.sql`
//! (apply changes system settings only). Values that may hold a secret
//! are not in the observation, so they are left out and named. Pure: the
//! command writes the files.

use std::collections::BTreeMap;

use crate::advise::{Advice, Proposal};
use crate::observation::{Observation, ObservedSetting};
use crate::read::catalog::RedisCatalog;
use crate::secret::{self, Holds};
use crate::service::Scope;

/// One file of the advised set.
#[derive(Debug)]
pub struct AdvisedFile {
    pub name: &'static str,
    pub content: String,
}

/// pg_settings sources that a configuration file can carry: what the
/// server runs with on purpose. `default` and `override` (computed at
/// start) are not the file's; `database`, `user` and `client` are not
/// the system's.
const PG_SOURCES: &[&str] = &["configuration file", "command line", "environment variable"];

fn comment(text: &str) -> String {
    // One comment line per sentence group; never a line break from data.
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("# {clean}\n")
}

fn header(obs: &Observation, service: &str, target: &str) -> String {
    let mut s = String::new();
    s.push_str(&comment(&format!(
        "{service} as advised by dbtune advise {} from an observation of {} over {:.0} s \
         ({} samples).",
        env!("CARGO_PKG_VERSION"),
        secret::escape_controls(target),
        obs.seconds,
        obs.samples
    )));
    s.push_str(
        "# The settings the server ran with that are not at their defaults, with each\n\
         # proposal in place under its rule and evidence. `dbtune diff DIR URL` shows\n\
         # only the proposals; `dbtune apply DIR URL` makes them (dry run first).\n",
    );
    s
}

fn pg_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

fn redis_arg(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn proposal_lines(p: &Proposal) -> String {
    let mut s = comment(&format!(
        "advised ({}): {} -> {}{}. {}",
        p.rule,
        p.current,
        p.proposed,
        if p.restart { ", needs a restart" } else { "" },
        p.evidence
    ));
    if let Some(r) = &p.room {
        s.push_str(&comment(&format!("room: {r}")));
    }
    s
}

/// The proposals for one service that apply to the whole server.
fn system(a: &Advice, scope: Scope) -> BTreeMap<String, &Proposal> {
    a.advice
        .iter()
        .filter(|p| p.service == scope && p.applies_to == "system")
        .map(|p| (p.setting.to_ascii_lowercase(), p))
        .collect()
}

fn left_out(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    comment(&format!(
        "left out, set on the server but not in the observation (they may hold a secret): {}. \
         Keep them in your own configuration",
        names.join(", ")
    ))
}

fn postgres(obs: &Observation, a: &Advice) -> Option<AdvisedFile> {
    let p = obs.postgres.as_ref()?;
    let mut proposals = system(a, Scope::Postgres);
    let mut body = String::new();
    let mut secrets = Vec::new();
    let mut settings: Vec<&ObservedSetting> = p
        .settings
        .iter()
        .filter(|s| PG_SOURCES.contains(&s.source.as_str()) || proposals.contains_key(&s.name))
        .collect();
    settings.sort_by(|a, b| a.name.cmp(&b.name));
    for s in settings {
        if secret::holds(Scope::Postgres, &s.name) != Holds::Plain {
            secrets.push(s.name.clone());
            continue;
        }
        if let Some(p) = proposals.remove(&s.name) {
            body.push_str(&proposal_lines(p));
            body.push_str(&format!("{} = {}\n", s.name, pg_quote(&p.proposed)));
        } else {
            body.push_str(&format!("{} = {}\n", s.name, pg_quote(&s.value)));
        }
    }
    for (name, p) in proposals {
        body.push_str(&proposal_lines(p));
        body.push_str(&format!("{name} = {}\n", pg_quote(&p.proposed)));
    }
    Some(AdvisedFile {
        name: "postgresql.conf",
        content: header(obs, "postgresql.conf", &p.target) + &left_out(&secrets) + &body,
    })
}

fn redis(obs: &Observation, a: &Advice) -> Option<AdvisedFile> {
    let r = obs.redis.as_ref()?;
    if r.settings.is_empty() {
        return None;
    }
    let catalog = RedisCatalog::get(&r.version);
    let mut proposals = system(a, Scope::Redis);
    let mut body = String::new();
    let mut secrets = Vec::new();
    let mut settings: Vec<&ObservedSetting> = r.settings.iter().collect();
    settings.sort_by(|a, b| a.name.cmp(&b.name));
    let mut written = std::collections::BTreeSet::new();
    for s in settings {
        // CONFIG GET * lists old names beside the current ones: each
        // config once, by the name this release reads.
        let Some(key) = catalog.key(&s.name) else {
            continue;
        };
        if !written.insert(key.name.clone()) {
            continue;
        }
        // Not a replica: CONFIG GET says "", which no file may say.
        if key.name == "replicaof" && s.value.trim().is_empty() {
            continue;
        }
        if secret::holds(Scope::Redis, &s.name) != Holds::Plain {
            secrets.push(s.name.clone());
            continue;
        }
        let value = match proposals.remove(&s.name) {
            Some(p) => {
                body.push_str(&proposal_lines(p));
                p.proposed.clone()
            }
            None => s.value.clone(),
        };
        // A config of several arguments is written as CONFIG GET joins
        // them (`save 3600 1 300 100`); `save ""` is none.
        let arg = if key.multi_arg && !value.is_empty() {
            value
                .split_whitespace()
                .map(redis_arg)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            redis_arg(&value)
        };
        body.push_str(&format!("{} {arg}\n", key.name));
    }
    for (name, p) in proposals {
        body.push_str(&proposal_lines(p));
        body.push_str(&format!("{name} {}\n", redis_arg(&p.proposed)));
    }
    Some(AdvisedFile {
        name: "redis.conf",
        content: header(obs, "redis.conf", &r.target) + &left_out(&secrets) + &body,
    })
}

fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Proposals for one role or database, as SQL to run with psql.
fn roles(a: &Advice) -> Option<AdvisedFile> {
    let scoped: Vec<&Proposal> = a
        .advice
        .iter()
        .filter(|p| p.service == Scope::Postgres && p.applies_to != "system")
        .collect();
    if scoped.is_empty() {
        return None;
    }
    let mut s = String::from(
        "-- Proposals for one role or database (dbtune advise). apply changes system\n\
         -- settings only: run this with psql as a superuser or the object's owner;\n\
         -- new sessions of that role or database take it.\n",
    );
    for p in scoped {
        let (kind, name) = p
            .applies_to
            .split_once(' ')
            .unwrap_or(("role", &p.applies_to));
        let kind = if kind == "database" {
            "DATABASE"
        } else {
            "ROLE"
        };
        s.push_str(&format!(
            "-- {}: {} -> {}. {}\n",
            p.rule,
            p.current,
            p.proposed,
            p.evidence.replace(|c: char| c.is_control(), " ")
        ));
        s.push_str(&format!(
            "ALTER {kind} {} SET {} = {};\n",
            sql_ident(name),
            p.setting,
            pg_quote(&p.proposed)
        ));
    }
    Some(AdvisedFile {
        name: "roles.sql",
        content: s,
    })
}

/// The advised set's files, and what the directory cannot hold.
pub fn files(obs: &Observation, a: &Advice) -> (Vec<AdvisedFile>, Vec<String>) {
    let mut notes = Vec::new();
    let files: Vec<AdvisedFile> = [postgres(obs, a), redis(obs, a), roles(a)]
        .into_iter()
        .flatten()
        .collect();
    let bouncer: Vec<&Proposal> = a
        .advice
        .iter()
        .filter(|p| p.service == Scope::Pgbouncer)
        .collect();
    if !bouncer.is_empty() {
        notes.push(format!(
            "not in the directory: {} (PgBouncer's [databases] and auth are not in the \
             observation, so no whole pgbouncer.ini can be written, and apply does not change \
             PgBouncer): set it in your pgbouncer.ini and RELOAD",
            bouncer
                .iter()
                .map(|p| format!("{} = {}", p.setting, p.proposed))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    (files, notes)
}
