//! dbtune: tune PostgreSQL, Redis, PgBouncer and ZFS for a host, and prove
//! the whole set fits in its memory.
//!
//! The pipeline, one module per stage:
//! `facts` (detect / facts file) -> `profile` (policy) -> `plan` (pure
//! settings with reasons) -> `render` (templates, files) -> `parse` ->
//! `settings` -> `budget` (worst and typical case, term by term).

pub mod atomic;
pub mod bench;
pub mod budget;
pub mod calibration;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod commands;
pub mod error;
pub mod facts;
pub mod input;
pub mod live;
pub mod load;
pub mod parse;
pub mod pgvalue;
pub mod plan;
pub mod profile;
pub mod redact;
pub mod render;
pub mod safety;
pub mod service;
pub mod settings;
pub mod target;
pub mod units;
pub mod validate;
