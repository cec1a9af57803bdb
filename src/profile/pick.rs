//! What render tunes when no profile is named. The host's size is a fact;
//! what the database is for and what else runs beside it are questions, so
//! no profile is guessed from RAM: PostgreSQL alone, for the workload the
//! user states, else `mixed`.

use super::*;

use crate::error::Error;

/// The workload when none is stated: short queries and reports both get
/// settings that do not fail them (parallel query for reports, JIT off for
/// short queries, checkpoints spaced for both), where `web` would starve a
/// report and `analytics` would size for a few connections.
pub const DEFAULT_WORKLOAD: Workload = Workload::Mixed;

/// The profile for a host none was named for, and the sentence that says
/// what it is.
pub fn unnamed(
    profiles: &Profiles,
    workload: Option<Workload>,
) -> Result<(Profile, Origin, String), Error> {
    let (mut p, origin) = profiles.get(GENERIC)?;
    let w = workload.unwrap_or(DEFAULT_WORKLOAD);
    p.workload = w;
    let why = if workload.is_some() {
        "--workload"
    } else {
        "the default; --workload web, mixed, analytics or ingest says yours"
    };
    let say = format!(
        "no profile named: PostgreSQL alone for {} {w} workload ({why}); name a \
         profile (`dbtune profiles`) or write one to add Redis, PgBouncer or memory for the \
         applications on this host (docs/profiles.md)",
        if w == Workload::Analytics || w == Workload::Ingest {
            "an"
        } else {
            "a"
        }
    );
    Ok((p, origin, say))
}

impl Profile {
    /// The profile with the workload `--workload` states, and what changed
    /// (None when it says what the profile does).
    pub fn with_workload(mut self, workload: Option<Workload>) -> (Profile, Option<String>) {
        match workload {
            Some(w) if w != self.workload => {
                let said = format!(
                    "workload: {w} (--workload; profile {} says {})",
                    self.name, self.workload
                );
                self.workload = w;
                (self, Some(said))
            }
            _ => (self, None),
        }
    }
}
