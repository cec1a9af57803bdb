//! The read side: what a host's config files say, and whether they fit.
//!
//! Every command that reads configs (check-budget, render's self-check,
//! inspect/diff/apply) goes through these stages in this order:
//!
//! 1. [`grammar`]: each format's lexical rules (PostgreSQL's guc-file.l,
//!    Redis's config.c, PgBouncer's ini), one line at a time;
//! 2. [`include`](mod@include): follows include/include_dir/%include as each server does,
//!    giving every setting its file:line;
//! 3. [`settings`]: the effective settings of each service, last one wins;
//! 4. [`catalog`] and [`pgvalue`]: what each server release accepts, and how
//!    PostgreSQL reads a value with its unit ([`timezone`]: its time zones);
//! 5. [`findings`] and [`safety`]: unknown, out-of-range, repeated and unsafe
//!    settings;
//! 6. [`effective`]: the value PostgreSQL runs with for each parameter;
//!    [`limits`]: memory rules broken whatever the total; [`budget`]: the
//!    worst- and typical-case memory, term by term, with the formulas of
//!    [`model`](crate::model);
//!    [`operator`]: a CloudNativePG `Cluster` or a Patroni YAML read into
//!    the same settings, with what the operator decides about them;
//! 7. [`discover`] finds the files under the paths given, and [`report`]
//!    gives the verdict as text, JSON or GitHub annotations.

pub mod bouncer_options;
pub mod budget;
pub mod catalog;
pub mod discover;
pub mod effective;
pub mod findings;
pub mod grammar;
pub mod include;
pub mod limits;
pub mod operator;
pub mod pgvalue;
pub mod report;
pub mod safety;
pub mod settings;
pub mod timezone;
