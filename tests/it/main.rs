//! The integration tests, one binary: every module shares one harness
//! (servers on free loopback ports in temp dirs, the dbtune binary with a
//! clean environment) and is compiled once.

mod harness;

mod action;
mod advise;
mod ansible;
mod bench;
mod check_budget;
mod cli;
mod compose;
mod corpus;
mod deploy;
mod detect;
mod files;
mod includes;
mod live;
mod no_panics;
mod observe;
mod operators;
mod output;
mod pg_start;
mod pg_versions;
mod prove;
mod redis_roles;
mod render;
mod safety;
mod servers;
mod services_oracle;
mod shell;
