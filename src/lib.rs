//! dbtune: tune PostgreSQL, Redis, PgBouncer and ZFS for a host, and prove
//! the whole set fits in its memory.
//!
//! The pipeline, one module per stage, in the order data flows:
//!
//! - write side: [`facts`] (detect, or a facts file) and [`target`] (flags +
//!   facts + manifest -> the host to tune for) -> [`profile`] (policy) ->
//!   [`plan`] (pure settings, each with its reason) -> [`render`] (templates
//!   -> files, atomically);
//! - read side: [`read`] (grammar -> includes -> settings -> catalogs ->
//!   findings -> budget -> report), used by check-budget, by render on its
//!   own output, and by [`live`] (inspect, diff, apply against a server);
//! - [`bench`](mod@bench) measures a plan on scratch clusters, and
//!   [`prove`] starts the real servers with a set of files to prove it
//!   starts (`--prove-start`).
//!
//! [`commands`] wires each subcommand's flags to these stages; [`cli`] is the
//! flags, [`error`] the one error type and its exit codes.

// The pipeline.
pub mod advise;
pub mod advise_out;
pub mod bench;
pub mod compare;
pub mod facts;
pub mod live;
pub mod manifest;
pub mod model;
pub mod observation;
pub mod plan;
pub mod profile;
pub mod prove;
pub mod read;
pub mod render;
pub mod target;

// The command line.
pub mod cli;
pub mod commands;
pub mod error;

// Shared vocabulary: services and file kinds, units, measured constants,
// and the I/O helpers every stage uses.
pub mod atomic;
pub mod calibration;
pub mod console;
pub mod doc;
pub mod input;
pub mod secret;
pub mod service;
pub mod units;
pub mod version;
