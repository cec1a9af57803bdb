//! `apply --prove-start`: before changing anything, start this machine's
//! PostgreSQL of the live server's major with the settings a restart would
//! read after the change, and refuse when it would not start. A restart-only
//! change that stops the server is found here, not at the next restart.

use std::time::Duration;

use anyhow::Result;

use crate::error::Error;
use crate::note;
use crate::prove::{self, Outcome};
use crate::read::settings::{Entry, Location, ServiceSettings};
use crate::version::PgVersion;

use super::PgState;

/// What a restart would read after the change: the server's config files
/// as they are now (pg_file_settings, in the order the server reads them),
/// then the changes (ALTER SYSTEM writes them to postgresql.auto.conf,
/// read last), then what its command line sets (which a restart keeps).
async fn after_restart(
    c: &tokio_postgres::Client,
    s: &PgState,
    changes: &[(String, Entry)],
    t: Duration,
) -> Result<ServiceSettings> {
    let rows = super::state::pg_query(
        c,
        "SELECT sourcefile, sourceline, name, setting, error FROM pg_file_settings ORDER BY seqno",
        &[],
        t,
    )
    .await?;
    let mut out = ServiceSettings {
        files: vec![format!("live {} after the change", s.target)],
        ..Default::default()
    };
    for r in rows {
        let at = Location {
            file: r.get::<_, Option<String>>(0).unwrap_or_default(),
            line: r.get::<_, Option<i32>>(1).unwrap_or(0).max(0) as usize,
        };
        match r.get::<_, Option<String>>(2) {
            Some(name) => {
                let value = r.get::<_, Option<String>>(3).unwrap_or_default();
                out.push(&name.to_ascii_lowercase(), value, at);
            }
            // A line the server's grammar refused: the restart stops there.
            None => out.syntax_errors.push(crate::read::settings::SyntaxError {
                at,
                message: r.get::<_, Option<String>>(4).unwrap_or_default(),
                hint: None,
            }),
        }
    }
    // As ALTER SYSTEM writes each change: a list parameter's elements
    // quoted one by one, which is what the restart reads.
    for (name, e) in changes {
        let args = super::change::alter_args(name, &e.value).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.push(
            name,
            super::change::auto_conf_value(name, &args),
            e.at.clone(),
        );
    }
    for p in s.settings.iter().filter(|p| p.source == "command line") {
        out.push(
            &p.name.to_ascii_lowercase(),
            p.setting.clone(),
            p.location(),
        );
    }
    Ok(out)
}

/// Proves the set after `changes` starts; a refusal (with the server's
/// lines) when it would not, nothing changed. When this machine lacks the
/// server's major, or the proof cannot run, it says so and lets apply go on.
pub(crate) fn restart(
    rt: &tokio::runtime::Runtime,
    c: &tokio_postgres::Client,
    s: &PgState,
    changes: Vec<(String, Entry)>,
    t: Duration,
) -> Result<()> {
    if changes.is_empty() {
        note!("start proof: no PostgreSQL change, nothing to prove");
        return Ok(());
    }
    let Some(version) = PgVersion::new(s.major) else {
        note!(
            "warning: not proven: PostgreSQL {} is not a version dbtune knows ({})",
            s.major,
            PgVersion::range_text()
        );
        return Ok(());
    };
    let settings = match rt.block_on(after_restart(c, s, &changes, t)) {
        Ok(settings) => settings,
        Err(e) => {
            note!(
                "warning: not proven: cannot read the server's config files: {e:#}\n\
                 hint: pg_file_settings needs a superuser"
            );
            return Ok(());
        }
    };
    if let Some(e) = settings.syntax_errors.first() {
        return Err(Error::refusal(format!(
            "PostgreSQL would not start after the restart this change needs: its config file has a \
             line it refuses, at {}: {}; nothing was changed",
            e.at, e.message
        ))
        .into());
    }
    let proof = prove::postgres::prove(&settings, version);
    let release = proof
        .server
        .as_ref()
        .map_or(format!("PostgreSQL {version}"), |s| s.release.clone());
    match &proof.outcome {
        Outcome::Starts => {
            note!("start proof: this machine's {release} starts with the settings after the change");
            Ok(())
        }
        Outcome::Refused { lines } => Err(Error::refusal(format!(
            "after this change PostgreSQL would not start: this machine's {release} refused the \
             settings a restart would read (in a scratch directory, --prove-start); nothing was changed\n{}",
            lines
                .iter()
                .map(|l| match &l.at {
                    Some(at) => format!("  {at}: {}\n", l.text),
                    None => format!("  {}\n", l.text),
                })
                .collect::<String>()
        ))
        .with_hint("fix what the server names in the directory, then apply again")
        .into()),
        Outcome::NotProven { reason, at, hint } => {
            let at = at.as_ref().map_or(String::new(), |a| format!("{a}: "));
            note!("{at}warning: not proven: {reason}\nhint: {hint}");
            Ok(())
        }
    }
}
