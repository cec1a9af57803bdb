//! Live servers: read what PostgreSQL and Redis actually run, turn it into
//! the same settings the read side judges, compare it with files, and
//! change it (ALTER SYSTEM, CONFIG SET) with a snapshot to roll back. The
//! only async module; each call gets its own timeout.
//!
//! One module per verb, over what they share:
//!
//! - [`conn`] (URLs, TLS, passwords) and [`servers`] (connect, and the
//!   host the servers run on) -> [`state`] (what runs);
//! - verbs: [`inspect`], [`observe`] (a window of counters, written as
//!   an `observation::Observation`), [`diff`], [`apply`] (with [`change`]
//!   and [`snapshot`]), [`rollback`] (with [`offline`] for a stopped
//!   server);
//! - [`show`](mod@show): what inspect and diff print.

pub mod apply;
pub mod change;
pub mod conn;
pub mod diff;
pub mod inspect;
pub mod observe;
pub mod offline;
mod prove;
pub mod rollback;
pub mod servers;
mod show;
pub mod snapshot;
pub mod state;

pub use conn::Target;
pub use diff::{pg_drift, redis_drift, Drift};
pub use snapshot::{PgPrevious, PgSnapshot, RedisPrevious, RedisSnapshot, Snapshot};
pub use state::{
    pg_same, pg_state, redis_same, redis_state, PgSetting, PgState, RedisState, REDIS_FILE_ONLY,
};
