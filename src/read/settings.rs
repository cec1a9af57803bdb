//! Settings: what config files say, each value with the file:line it came
//! from. The parsers produce it; the budget model reads it. Values stay raw
//! strings here: what a unit means depends on the format and the parameter,
//! and that is the reader's business (see `budget`).

use crate::version::PgVersion;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Where a value came from: a file and line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Location {
    /// `file:line`; line 0 means "no line" (a live server's value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

impl From<&Location> for crate::error::Place {
    /// The place of an error about a value: its file and line (none for a
    /// live server's value).
    fn from(at: &Location) -> Self {
        match at.line {
            0 => crate::error::Place::file(&at.file),
            l => crate::error::Place::line(&at.file, l),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub value: String,
    pub at: Location,
    /// Its place in the order the server reads the set (includes where
    /// they are, postgresql.auto.conf last): some settings are judged in
    /// that order.
    #[serde(skip)]
    pub seq: usize,
    /// A Redis directive's arguments as Redis split them (`value` is them
    /// joined by spaces); None in the other formats.
    #[serde(skip)]
    pub args: Option<Vec<String>>,
}

/// One service's settings: every occurrence of every name, in file order.
/// For single-valued settings the last occurrence wins; repeatable Redis
/// directives (`save`, `rename-command`) keep all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceSettings {
    pub entries: BTreeMap<String, Vec<Entry>>,
    /// The files read, in order (the first is the one named).
    pub files: Vec<String>,
    /// Lines the server's own grammar refuses (PostgreSQL reports them all
    /// and does not start): validation reports each.
    pub syntax_errors: Vec<SyntaxError>,
    /// Section headers read (pgbouncer.ini), with where.
    pub sections: Vec<(String, Location)>,
    /// Includes that name a file or directory that is not there (each also
    /// a syntax error at its line).
    #[serde(skip)]
    pub unread: Vec<Location>,
    /// Entries pushed so far: the next one's `seq`.
    #[serde(skip)]
    pub pushed: usize,
    /// Every setting and section header in the order the server reads
    /// them, includes followed: the start proof hands the server the
    /// lines in this order (`save ""` before or after `save 900 1` is not
    /// the same set).
    #[serde(skip)]
    pub order: Vec<Order>,
}

/// One thing read, by its place in `entries` or `sections`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// `entries[name][index]`.
    Setting { name: String, index: usize },
    /// `sections[index]`.
    Section(usize),
}

/// What [`ServiceSettings::in_order`] yields.
#[derive(Clone, Copy, Debug)]
pub enum Read<'a> {
    Setting(&'a str, &'a Entry),
    Section(&'a str, &'a Location),
}

/// A line the server's config grammar refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyntaxError {
    pub at: Location,
    pub message: String,
    pub hint: Option<String>,
}

impl ServiceSettings {
    pub fn push(&mut self, name: &str, value: impl Into<String>, at: Location) {
        self.push_entry(name, value.into(), None, at);
    }

    /// A Redis directive: its arguments, and their join as the value.
    pub fn push_args(&mut self, name: &str, args: Vec<String>, at: Location) {
        self.push_entry(name, args.join(" "), Some(args), at);
    }

    fn push_entry(&mut self, name: &str, value: String, args: Option<Vec<String>>, at: Location) {
        let seq = self.pushed;
        self.pushed += 1;
        let list = self.entries.entry(name.to_string()).or_default();
        list.push(Entry {
            value,
            at,
            seq,
            args,
        });
        let index = list.len() - 1;
        self.order.push(Order::Setting {
            name: name.to_string(),
            index,
        });
    }

    /// A section header (pgbouncer.ini).
    pub fn section(&mut self, name: &str, at: Location) {
        self.sections.push((name.to_string(), at));
        self.order.push(Order::Section(self.sections.len() - 1));
    }

    /// Settings and section headers in the order they were read.
    pub fn in_order(&self) -> impl Iterator<Item = Read<'_>> {
        self.order.iter().filter_map(|r| match r {
            Order::Setting { name, index } => {
                let (name, list) = self.entries.get_key_value(name)?;
                Some(Read::Setting(name, list.get(*index)?))
            }
            Order::Section(i) => {
                let (name, at) = self.sections.get(*i)?;
                Some(Read::Section(name, at))
            }
        })
    }

    /// The value in effect: the last occurrence.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name).and_then(|v| v.last())
    }

    pub fn all(&self, name: &str) -> &[Entry] {
        self.entries.get(name).map_or(&[], |v| v.as_slice())
    }
}

/// The server releases a set of files is read for: the PostgreSQL major
/// (with its build and exact release when known) and the Redis and
/// PgBouncer releases (empty: the newest dbtune knows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Releases {
    pub pg_version: PgVersion,
    pub pg_build: Option<Vec<String>>,
    pub pg_release: Option<String>,
    pub redis_version: String,
    pub pgbouncer_version: String,
}

/// Everything on one host that the budget looks at.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostSettings {
    pub postgres: Option<ServiceSettings>,
    /// The PostgreSQL major version the settings are for.
    pub pg_version: PgVersion,
    /// What the target PostgreSQL build supports (`lz4`...), when known.
    pub pg_build: Option<Vec<String>>,
    /// The exact PostgreSQL release (`16.4`), when known.
    pub pg_release: Option<String>,
    /// The Redis and PgBouncer releases the files are for (`7.0`,
    /// `1.18`...); empty means the newest dbtune knows.
    pub redis_version: String,
    pub pgbouncer_version: String,
    pub redis: Option<ServiceSettings>,
    /// Keys are `section.key`; `[databases]` entries are `databases.NAME`.
    pub pgbouncer: Option<ServiceSettings>,
    /// sysctl keys (`vm.nr_hugepages`) and `zfs_arc_max` from the modprobe
    /// options file.
    pub os: Option<ServiceSettings>,
    /// The PostgreSQL settings came from an operator's YAML (CloudNativePG,
    /// Patroni): what else it says, and its findings.
    #[serde(skip)]
    pub deployment: Option<crate::read::operator::Deployment>,
}

impl HostSettings {
    /// Whether an include named a file or directory that is not there: the
    /// report has every finding, and check-budget exits 2 (a file it names
    /// was not read).
    pub fn has_unread_includes(&self) -> bool {
        [&self.postgres, &self.redis, &self.pgbouncer]
            .into_iter()
            .flatten()
            .any(|s| !s.unread.is_empty())
    }
}
