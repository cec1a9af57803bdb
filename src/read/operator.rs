//! PostgreSQL settings kept in an operator's YAML: a CloudNativePG
//! `Cluster` manifest or a Patroni configuration file. Each parameter
//! becomes a setting at its own file:line, so the rest of the read side
//! (findings, safety, budget) judges it exactly as a postgresql.conf line;
//! what the operator itself decides about a parameter (it sets it, refuses
//! it, or keeps it in the DCS) is judged here.
//!
//! YAML is read with `yaml-rust2` (a maintained YAML 1.2 parser whose
//! events carry each node's line; serde_yaml is archived): its events are
//! built into a small tree that keeps every key's line.
//!
//! Sources (facts, not text, carried over):
//! - CloudNativePG, "PostgreSQL Configuration":
//!   <https://cloudnative-pg.io/documentation/current/postgresql_conf/>,
//!   and the operator's lists of fixed parameters and defaults in
//!   `pkg/postgres/configuration.go` (`FixedConfigurationParameters`,
//!   `CnpgConfigurationSettings`).
//! - Patroni, "Patroni configuration", section "PostgreSQL parameters
//!   controlled by Patroni":
//!   <https://patroni.readthedocs.io/en/latest/patroni_configuration.html>,
//!   and `ConfigHandler.CMDLINE_OPTIONS` in `patroni/postgresql/config.py`.

use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Error, Place};
use crate::read::findings::Finding;
use crate::read::settings::{Location, ServiceSettings};
use crate::service::Scope;
use crate::units::ByteSize;

pub const CNPG_DOCS: &str = "https://cloudnative-pg.io/documentation/current/postgresql_conf/";
pub const PATRONI_DOCS: &str =
    "https://patroni.readthedocs.io/en/latest/patroni_configuration.html";

/// Which operator's file it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Cnpg,
    Patroni,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Cnpg => "CloudNativePG",
            Operator::Patroni => "Patroni",
        }
    }
}

/// What the file says beyond the parameters: the container's resources
/// and image (CloudNativePG), and what the operator decides about the
/// parameters set.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub operator: Operator,
    pub file: String,
    /// `spec.resources.limits.memory`: the RAM PostgreSQL has.
    pub memory_limit: Option<(ByteSize, Location)>,
    /// `spec.resources.limits.hugepages-2Mi` (or `-1Gi`), added up.
    pub hugepages: Option<(ByteSize, Location)>,
    /// `spec.imageName` and the major its tag names.
    pub image: Option<(String, Location)>,
    pub image_major: Option<u32>,
    /// What the operator does with the parameters set, and values the
    /// manifest's schema refuses: judged when the file was read.
    pub findings: Vec<Finding>,
}

// ---------------------------------------------------------------------------
// A YAML tree with lines.

#[derive(Clone, Debug)]
enum Node {
    /// Keys with their lines, in file order.
    Map(Vec<(String, usize, Node)>),
    Seq,
    Scalar {
        text: String,
        plain: bool,
        line: usize,
    },
    Alias,
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, n)| n)
    }

    fn entry(&self, key: &str) -> Option<(usize, &Node)> {
        match self {
            // YAML keys are unique; a repeated one is refused when read.
            Node::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, l, n)| (*l, n)),
            _ => None,
        }
    }

    fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

enum Frame {
    Map(Vec<(String, usize, Node)>, Option<(String, usize)>),
    Seq(Vec<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// A key given twice in one mapping: (key, line).
    duplicate: Option<(String, usize)>,
}

impl Builder {
    fn add(&mut self, node: Node, line: usize) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(v)) => v.push(node),
            Some(Frame::Map(entries, pending)) => match pending.take() {
                None => {
                    let key = match &node {
                        Node::Scalar { text, .. } => text.clone(),
                        _ => String::new(),
                    };
                    if entries.iter().any(|(k, _, _)| *k == key) && self.duplicate.is_none() {
                        self.duplicate = Some((key.clone(), line));
                    }
                    *pending = Some((key, line));
                }
                Some((key, kline)) => entries.push((key, kline, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::MappingStart(..) => self.stack.push(Frame::Map(Vec::new(), None)),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(Vec::new())),
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Map(m, _)) => Node::Map(m),
                    Some(Frame::Seq(_)) => Node::Seq,
                    None => return,
                };
                self.add(node, line);
            }
            Event::Scalar(text, style, _, _) => self.add(
                Node::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                    line,
                },
                line,
            ),
            Event::Alias(_) => self.add(Node::Alias, line),
            _ => {}
        }
    }
}

fn parse(text: &str, file: &str) -> Result<Vec<Node>, Error> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        return Err(Error::input(
            Place::line(file, e.marker().line()),
            format!(
                "not valid YAML: {} (column {})",
                e.info(),
                e.marker().col() + 1
            ),
            "check the indentation and quoting on that line (a tab, an unclosed quote, a `:` in a \
             plain value); `kubectl apply --dry-run=client -f FILE` shows the same error",
        ));
    }
    if let Some((key, line)) = b.duplicate {
        return Err(Error::input(
            Place::line(file, line),
            format!("`{key}` is given twice in the same mapping"),
            "YAML keys are unique: keep one (Kubernetes and Patroni each keep a different one)",
        ));
    }
    Ok(b.docs)
}

// ---------------------------------------------------------------------------
// Which operator.

/// The operator whose file `text` is, from its content: a CloudNativePG
/// `Cluster` (`apiVersion: postgresql.cnpg.io/v1`, `kind: Cluster`) in any
/// document of the file, or a Patroni file (top-level `scope`, and
/// `postgresql` or `bootstrap`). None when it is neither, or not YAML.
pub fn detect(text: &str) -> Option<Operator> {
    let docs = parse(text, "").ok()?;
    if docs.iter().any(is_cnpg_cluster) {
        return Some(Operator::Cnpg);
    }
    docs.iter()
        .any(|d| {
            d.get("scope").is_some()
                && (d.get("postgresql").is_some() || d.get("bootstrap").is_some())
        })
        .then_some(Operator::Patroni)
}

fn is_cnpg_cluster(d: &Node) -> bool {
    d.get("apiVersion")
        .and_then(Node::text)
        .is_some_and(|v| v.starts_with("postgresql.cnpg.io/"))
        && d.get("kind").and_then(Node::text) == Some("Cluster")
}

/// Whether a file name looks like YAML.
pub fn yaml_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

// ---------------------------------------------------------------------------
// What each operator does with a parameter.

/// CloudNativePG's `FixedConfigurationParameters`: the operator sets these
/// itself; its validating webhook refuses a `Cluster` that sets one.
const CNPG_FIXED: &[&str] = &[
    "allow_system_table_mods",
    "archive_cleanup_command",
    "archive_command",
    "archive_mode",
    "bonjour",
    "bonjour_name",
    "cluster_name",
    "config_file",
    "data_directory",
    "data_sync_retry",
    "event_source",
    "external_pid_file",
    "hba_file",
    "hot_standby",
    "ident_file",
    "jit_provider",
    "listen_addresses",
    "log_destination",
    "log_directory",
    "log_file_mode",
    "log_filename",
    "log_rotation_age",
    "log_rotation_size",
    "log_truncate_on_rotation",
    "logging_collector",
    "pg_failover_slots.primary_dsn",
    "pg_failover_slots.standby_slot_names",
    "port",
    "primary_conninfo",
    "primary_slot_name",
    "promote_trigger_file",
    "recovery_end_command",
    "recovery_min_apply_delay",
    "recovery_target",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_xid",
    "restart_after_crash",
    "restore_command",
    "shared_preload_libraries",
    "ssl",
    "ssl_ca_file",
    "ssl_cert_file",
    "ssl_crl_file",
    "ssl_dh_params_file",
    "ssl_ecdh_curve",
    "ssl_key_file",
    "ssl_passphrase_command",
    "ssl_passphrase_command_supports_reload",
    "ssl_prefer_server_ciphers",
    "stats_temp_directory",
    "synchronized_standby_slots",
    "synchronous_standby_names",
    "syslog_facility",
    "syslog_ident",
    "syslog_sequence_numbers",
    "syslog_split_messages",
    "temp_tablespaces",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
];

/// CloudNativePG's own defaults where they differ from PostgreSQL's and
/// weigh in the budget or the checks: a parameter the manifest leaves out
/// runs with these, not with PostgreSQL's.
pub const CNPG_DEFAULTS: &[(&str, &str)] = &[
    ("max_parallel_workers", "32"),
    ("max_replication_slots", "32"),
    ("max_worker_processes", "32"),
    ("shared_memory_type", "mmap"),
    ("dynamic_shared_memory_type", "posix"),
    ("wal_keep_size", "512MB"),
    ("wal_level", "logical"),
    ("wal_log_hints", "on"),
];

/// Where CloudNativePG's defaults are said to come from in a report.
pub const CNPG_DEFAULTS_FILE: &str = "CloudNativePG default";

/// Patroni's `CMDLINE_OPTIONS`: passed to the postmaster on its command
/// line, so a value in the local `postgresql.parameters` has no effect.
/// (name, where it comes from instead, Patroni's default, its minimum).
const PATRONI_CONTROLLED: &[(&str, &str, &str, Option<i64>)] = &[
    ("listen_addresses", "postgresql.listen", "", None),
    ("port", "postgresql.listen", "", None),
    ("cluster_name", "scope", "", None),
    ("hot_standby", "Patroni (always on)", "on", None),
    ("max_connections", "DCS", "100", Some(25)),
    ("max_locks_per_transaction", "DCS", "64", Some(32)),
    ("max_prepared_transactions", "DCS", "0", Some(0)),
    ("max_replication_slots", "DCS", "10", Some(4)),
    ("max_wal_senders", "DCS", "10", Some(3)),
    ("max_worker_processes", "DCS", "8", Some(2)),
    ("track_commit_timestamp", "DCS", "off", None),
    ("wal_keep_segments", "DCS", "8", Some(1)),
    ("wal_keep_size", "DCS", "128MB", None),
    ("wal_level", "DCS", "replica", None),
    ("wal_log_hints", "DCS", "on", None),
];

/// The parameters Patroni keeps in the DCS (the same on every member).
pub fn patroni_dcs_kept(name: &str) -> bool {
    PATRONI_CONTROLLED
        .iter()
        .any(|(n, from, _, _)| *n == name && *from == "DCS")
}

/// The least value Patroni accepts for `name` (below it, Patroni runs
/// PostgreSQL with its own default).
pub fn patroni_min(name: &str) -> Option<i64> {
    PATRONI_CONTROLLED
        .iter()
        .find(|(n, _, _, _)| *n == name)
        .and_then(|(_, _, _, min)| *min)
}

/// Whether CloudNativePG sets `name` itself (a render leaves it out).
pub fn cnpg_fixed(name: &str) -> bool {
    CNPG_FIXED.contains(&name)
}

// ---------------------------------------------------------------------------
// Reading.

/// A YAML value as a PostgreSQL value: what the operator writes into the
/// server's configuration.
fn value_of(n: &Node) -> Option<(String, bool, usize)> {
    match n {
        Node::Scalar { text, plain, line } => Some((text.clone(), *plain, *line)),
        _ => None,
    }
}

/// Whether a plain YAML scalar is typed as something other than a string:
/// null, booleans, integers and floats, with YAML 1.1's booleans (`on`,
/// `off`, `yes`, `no`, `y`, `n`) because Kubernetes reads manifests with a
/// YAML 1.1 parser (go-yaml v2 under sigs.k8s.io/yaml).
fn typed_not_string(text: &str) -> bool {
    let t = text.trim();
    matches!(
        t,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
    ) || matches!(
        t.to_ascii_lowercase().as_str(),
        "on" | "off" | "yes" | "no" | "y" | "n"
    ) || t.parse::<i64>().is_ok()
        || t.parse::<f64>()
            .is_ok_and(|_| t.chars().any(|c| c.is_ascii_digit()))
        || (t.starts_with("0x") && i64::from_str_radix(&t[2..], 16).is_ok())
        || (t.starts_with("0o") && i64::from_str_radix(&t[2..], 8).is_ok())
}

/// Reads a CloudNativePG `Cluster` or a Patroni file: the PostgreSQL
/// settings, each at its line, and what else the file says.
pub fn read(path: &Path) -> Result<(ServiceSettings, Deployment), Error> {
    let text = crate::read::include::read_text(path)?;
    let file = path.display().to_string();
    read_text(&text, &file)
}

pub fn read_text(text: &str, file: &str) -> Result<(ServiceSettings, Deployment), Error> {
    let docs = parse(text, file)?;
    if let Some(doc) = docs.iter().find(|d| is_cnpg_cluster(d)) {
        return Ok(cnpg(doc, file));
    }
    match docs.first() {
        Some(doc) if doc.get("scope").is_some() => Ok(patroni(doc, file)),
        _ => Err(Error::input(
            Place::file(file),
            "neither a CloudNativePG `Cluster` nor a Patroni configuration",
            "dbtune reads a manifest with `apiVersion: postgresql.cnpg.io/v1` and `kind: Cluster`, or a \
             Patroni file with a top-level `scope`",
        )),
    }
}

fn at(file: &str, line: usize) -> Location {
    Location {
        file: file.to_string(),
        line,
    }
}

fn cnpg(doc: &Node, file: &str) -> (ServiceSettings, Deployment) {
    let mut s = ServiceSettings {
        files: vec![file.to_string()],
        ..Default::default()
    };
    let mut d = Deployment {
        operator: Operator::Cnpg,
        file: file.to_string(),
        memory_limit: None,
        hugepages: None,
        image: None,
        image_major: None,
        findings: Vec::new(),
    };
    let mut set = Vec::new();
    if let Some(Node::Map(params)) = doc.path(&["spec", "postgresql", "parameters"]) {
        for (key, kline, node) in params {
            let name = key.to_ascii_lowercase();
            let Some((value, plain, vline)) = value_of(node) else {
                d.findings.push(Finding::error(
                    Scope::Postgres,
                    Some(&at(file, *kline)),
                    format!("`{key}` is not a single value: CloudNativePG takes a string for each parameter"),
                    Some("write the value as one quoted string".into()),
                ));
                continue;
            };
            let loc = at(file, vline.max(*kline));
            if plain && typed_not_string(&value) {
                d.findings.push(Finding::error(
                    Scope::Postgres,
                    Some(&loc),
                    format!(
                        "`{key}: {value}` is not a string: the Cluster's schema takes only strings for \
                         parameters, so Kubernetes refuses the manifest ({CNPG_DOCS})"
                    ),
                    Some(format!("quote it: {key}: \"{value}\"")),
                ));
            }
            if cnpg_fixed(&name) {
                d.findings.push(Finding::error(
                    Scope::Postgres,
                    Some(&loc),
                    format!(
                        "`{name}` is a fixed parameter: CloudNativePG sets it itself and refuses a Cluster \
                         that sets it ({CNPG_DOCS})"
                    ),
                    Some(match name.as_str() {
                        "shared_preload_libraries" => {
                            "remove it: the operator loads the libraries of the extensions you configure \
                             (pg_stat_statements.*, auto_explain.*...)"
                                .to_string()
                        }
                        "synchronous_standby_names" => {
                            "remove it: use spec.postgresql.synchronous".to_string()
                        }
                        _ => "remove it from spec.postgresql.parameters".to_string(),
                    }),
                ));
                continue;
            }
            set.push(name.clone());
            s.push(&name, value, loc);
        }
    }
    // The operator's defaults for what the manifest leaves out, first: the
    // manifest's own lines are read after them.
    let mut with_defaults = ServiceSettings {
        files: s.files.clone(),
        ..Default::default()
    };
    for (name, value) in CNPG_DEFAULTS {
        if !set.iter().any(|n| n == name) {
            with_defaults.push(name, *value, at(CNPG_DEFAULTS_FILE, 0));
        }
    }
    for r in s.in_order() {
        if let crate::read::settings::Read::Setting(name, e) = r {
            with_defaults.push(name, e.value.clone(), e.at.clone());
        }
    }
    let limits = doc.path(&["spec", "resources", "limits"]);
    let quantity = |key: &str, d: &mut Deployment| -> Option<(ByteSize, Location)> {
        let (line, n) = limits?.entry(key)?;
        let loc = at(file, line);
        match n.text().map(parse_quantity) {
            Some(Ok(b)) => Some((b, loc)),
            Some(Err(why)) => {
                d.findings.push(Finding::error(
                    Scope::Postgres,
                    Some(&loc),
                    format!("spec.resources.limits.{key}: {why}"),
                    Some("write it as Kubernetes does: 4Gi, 512Mi, 4G or a number of bytes".into()),
                ));
                None
            }
            None => None,
        }
    };
    d.memory_limit = quantity("memory", &mut d);
    let huge: Vec<(ByteSize, Location)> = ["hugepages-2Mi", "hugepages-1Gi"]
        .iter()
        .filter_map(|k| quantity(k, &mut d))
        .collect();
    if let Some(first) = huge.first() {
        let total = huge
            .iter()
            .fold(ByteSize::ZERO, |a, (b, _)| ByteSize(a.0 + b.0));
        d.hugepages = Some((total, first.1.clone()));
    }
    if let Some((line, Node::Scalar { text, .. })) =
        doc.path(&["spec"]).and_then(|s| s.entry("imageName"))
    {
        d.image_major = image_major(text);
        d.image = Some((text.clone(), at(file, line)));
    }
    cnpg_huge_pages(&with_defaults, &mut d);
    // The operator archives WAL (archive_mode on) unless told not to, and
    // PostgreSQL refuses to start with archiving at wal_level minimal.
    if let Some(e) = with_defaults
        .get("wal_level")
        .filter(|e| e.value.trim().eq_ignore_ascii_case("minimal"))
    {
        d.findings.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            "wal_level = minimal, but CloudNativePG runs with archive_mode on (a fixed parameter) and \
             streams WAL to its replicas: PostgreSQL refuses to start with WAL archiving at wal_level \
             minimal"
                .to_string(),
            Some(
                "use replica (the operator's default is logical); minimal is only for a single instance \
                 whose WAL archiving is disabled"
                    .into(),
            ),
        ));
    }
    (with_defaults, d)
}

/// `huge_pages = on` in a pod needs huge pages among the container's
/// limits (Kubernetes gives a container none otherwise): PostgreSQL would
/// not start.
fn cnpg_huge_pages(s: &ServiceSettings, d: &mut Deployment) {
    let Some(e) = s.get("huge_pages") else {
        return;
    };
    let on = matches!(
        e.value.trim().to_ascii_lowercase().as_str(),
        "on" | "true" | "yes" | "1"
    );
    if !on {
        return;
    }
    let pg = crate::read::effective::Pg::new(s, crate::version::PgVersion::DEFAULT);
    let need = crate::read::effective::pg_shared_estimate(&pg);
    match &d.hugepages {
        None => d.findings.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            format!(
                "huge_pages = on, but spec.resources.limits has no hugepages-2Mi (or hugepages-1Gi): the \
                 container gets no huge pages and PostgreSQL, needing about {need} of shared memory in \
                 them, will not start"
            ),
            Some(format!(
                "add `hugepages-2Mi: {}Mi` to spec.resources.limits and requests (the nodes must have \
                 them reserved), or set huge_pages to \"try\"",
                need.div_ceil(ByteSize::mib(2)) * 2
            )),
        )),
        Some((have, at)) if *have < need => d.findings.push(Finding::error(
            Scope::Postgres,
            Some(&e.at),
            format!(
                "huge_pages = on needs about {need} of huge pages but the container may use {have} \
                 (at {at}): PostgreSQL will not start"
            ),
            Some(format!(
                "raise the hugepages limit to {}Mi or more, or set huge_pages to \"try\"",
                need.div_ceil(ByteSize::mib(2)) * 2
            )),
        )),
        Some(_) => {}
    }
}

/// The PostgreSQL major an image's tag names: `postgresql:16.4` -> 16,
/// `17.2-bookworm`, `16-standard-bookworm`, `15`; None when the tag does
/// not start with a major (`latest`, a digest).
pub fn image_major(image: &str) -> Option<u32> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let (_, tag) = last.split_once(':')?;
    let digits: String = tag.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = &tag[digits.len()..];
    if digits.is_empty() || !(rest.is_empty() || rest.starts_with('.') || rest.starts_with('-')) {
        return None;
    }
    digits.parse().ok()
}

fn patroni(doc: &Node, file: &str) -> (ServiceSettings, Deployment) {
    let mut s = ServiceSettings {
        files: vec![file.to_string()],
        ..Default::default()
    };
    let mut d = Deployment {
        operator: Operator::Patroni,
        file: file.to_string(),
        memory_limit: None,
        hugepages: None,
        image: None,
        image_major: None,
        findings: Vec::new(),
    };
    // The DCS's parameters first: a local value of the others wins over
    // them, as Patroni's local configuration does.
    for (dcs, keys) in [
        (true, &["bootstrap", "dcs", "postgresql", "parameters"][..]),
        (false, &["postgresql", "parameters"][..]),
    ] {
        let Some(Node::Map(params)) = doc.path(keys) else {
            continue;
        };
        for (key, kline, node) in params {
            let name = key.to_ascii_lowercase();
            let Some((value, _, vline)) = value_of(node) else {
                d.findings.push(Finding::error(
                    Scope::Postgres,
                    Some(&at(file, *kline)),
                    format!("`{key}` is not a single value"),
                    Some("write the parameter's value as one scalar".into()),
                ));
                continue;
            };
            let loc = at(file, vline.max(*kline));
            let controlled = PATRONI_CONTROLLED.iter().find(|(n, _, _, _)| *n == name);
            match controlled {
                Some((_, from, _, _)) if !dcs || *from != "DCS" => {
                    let message = if *from == "DCS" {
                        format!(
                            "`{name}` has no effect here: Patroni keeps it in the DCS, the same on every \
                             member, and ignores a local value ({PATRONI_DOCS})"
                        )
                    } else {
                        format!(
                            "`{name}` has no effect: Patroni sets it from {from} ({PATRONI_DOCS})"
                        )
                    };
                    let hint = if *from == "DCS" {
                        "move it to bootstrap.dcs.postgresql.parameters (a running cluster: \
                         patronictl edit-config)"
                            .to_string()
                    } else {
                        format!("remove it; set {from} instead")
                    };
                    d.findings.push(Finding::warning(
                        Scope::Postgres,
                        Some(&loc),
                        message,
                        Some(hint),
                    ));
                    continue;
                }
                Some((_, _, default, Some(min))) => {
                    if let Ok(v) = value.trim().parse::<i64>() {
                        if v < *min {
                            d.findings.push(Finding::warning(
                                Scope::Postgres,
                                Some(&loc),
                                format!(
                                    "Patroni refuses `{name}` below {min} and runs PostgreSQL with its \
                                     default {default} instead ({PATRONI_DOCS})"
                                ),
                                Some(format!("set {min} or more")),
                            ));
                            s.push(&name, *default, loc);
                            continue;
                        }
                    }
                }
                _ => {}
            }
            s.push(&name, value, loc);
        }
    }
    (s, d)
}

/// A Kubernetes quantity as bytes: plain (`1073741824`, `1e9`), decimal
/// (`k`, `M`, `G`, `T`, `P`, `E`) or binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`,
/// `Ei`) suffixes, fractions (`1.5Gi`); `m` (milli) is refused for memory.
pub fn parse_quantity(s: &str) -> Result<ByteSize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        x if (x.starts_with('e') || x.starts_with('E')) && x[1..].parse::<i32>().is_ok() => {
            10f64.powi(x[1..].parse::<i32>().unwrap_or(0))
        }
        _ => {
            return Err(format!(
                "`{s}` is not a Kubernetes memory quantity (a number with Ki, Mi, Gi, Ti or k, M, G, T)"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a Kubernetes memory quantity"))?;
    if n < 0.0 || !n.is_finite() {
        return Err(format!("`{s}` is negative"));
    }
    // Kubernetes rounds a fractional byte count up.
    Ok(ByteSize((n * mult).ceil() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_in_every_suffix() {
        let q = |s: &str| parse_quantity(s).map(|b| b.0);
        assert_eq!(q("1073741824"), Ok(1 << 30));
        assert_eq!(q("1Gi"), Ok(1 << 30));
        assert_eq!(q("1.5Gi"), Ok(3 << 29));
        assert_eq!(q("512Mi"), Ok(512 << 20));
        assert_eq!(q("4G"), Ok(4_000_000_000));
        assert_eq!(q("128M"), Ok(128_000_000));
        assert_eq!(q("100k"), Ok(100_000));
        assert_eq!(q("1e9"), Ok(1_000_000_000));
        assert!(q("4GB").is_err(), "GB is not a Kubernetes suffix");
        assert!(q("100m").is_err(), "milli-bytes are not memory");
        assert!(q("lots").is_err());
    }

    #[test]
    fn the_major_from_an_image_tag() {
        let m = image_major;
        assert_eq!(m("ghcr.io/cloudnative-pg/postgresql:16.4"), Some(16));
        assert_eq!(
            m("ghcr.io/cloudnative-pg/postgresql:17.2-bookworm"),
            Some(17)
        );
        assert_eq!(
            m("ghcr.io/cloudnative-pg/postgresql:16-standard-bookworm"),
            Some(16)
        );
        assert_eq!(m("registry:5000/postgresql:15"), Some(15));
        assert_eq!(m("registry:5000/postgresql"), None, "a port is not a tag");
        assert_eq!(m("ghcr.io/cloudnative-pg/postgresql:latest"), None);
        assert_eq!(m("postgresql@sha256:abc"), None);
        assert_eq!(m("postgres:16.4@sha256:abc"), Some(16));
    }

    #[test]
    fn operators_are_told_apart_by_content() {
        let cnpg = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec: {}\n";
        assert_eq!(detect(cnpg), Some(Operator::Cnpg));
        let other = "apiVersion: postgresql.cnpg.io/v1\nkind: Pooler\n";
        assert_eq!(detect(other), None);
        assert_eq!(
            detect("scope: x\npostgresql:\n  listen: :5432\n"),
            Some(Operator::Patroni)
        );
        assert_eq!(detect("services:\n  db: {}\n"), None);
    }

    #[test]
    fn values_keep_their_text_and_line() {
        let (s, d) = read_text(
            "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nspec:\n  postgresql:\n    parameters:\n      \
             work_mem: \"4MB\"\n      Search_Path: '\"$user\", public'\n",
            "c.yaml",
        )
        .unwrap();
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        let w = s.get("work_mem").unwrap();
        assert_eq!((w.value.as_str(), w.at.line), ("4MB", 6));
        assert_eq!(s.get("search_path").unwrap().value, "\"$user\", public");
        // The operator's own defaults stand for what is left out.
        assert_eq!(s.get("max_worker_processes").unwrap().value, "32");
    }

    #[test]
    fn yaml_typed_values_are_told_from_strings() {
        for t in [
            "100", "1.5", "true", "null", "~", "0x10", "1e3", "on", "Off", "yes",
        ] {
            assert!(typed_not_string(t), "{t}");
        }
        for t in ["4MB", "replica", "1s", "0.9x", "online"] {
            assert!(!typed_not_string(t), "{t}");
        }
    }
}
