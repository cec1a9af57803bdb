//! The real-config corpus (tests/fixtures/corpus, SOURCES.toml): what
//! check-budget says about each published file at its stated release and
//! RAM (snapshots, reviewed by hand in the corpus README), and dbtune's
//! shared memory for every PostgreSQL file against the server's own figure
//! on the major the file is for.

use std::path::{Path, PathBuf};

use crate::harness;
use dbtune::units::{ByteSize, MIB};
use dbtune::version::PgVersion;

#[derive(serde::Deserialize)]
struct Sources {
    corpus: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    file: String,
    release: Option<String>,
    ram: Option<String>,
    root: Option<String>,
    cwd: Option<String>,
    included_by: Option<String>,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(harness::fixture("corpus"))
}

/// The files a server is pointed at (not the ones they include).
fn entries() -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus_dir().join("SOURCES.toml")).unwrap();
    let s: Sources = toml::from_str(&text).unwrap();
    s.corpus
        .into_iter()
        .filter(|e| e.included_by.is_none())
        .collect()
}

/// The check-budget command line of one file: its release by flag, its
/// RAM (else the corpus host's 8 GiB), `--root` or the working directory
/// its includes need.
fn check_args(e: &Entry) -> (PathBuf, Vec<String>) {
    let dir = corpus_dir();
    let (cwd, file) = match &e.cwd {
        Some(cwd) => {
            let depth = Path::new(cwd).components().count();
            let up = "../".repeat(depth);
            (dir.join(cwd), format!("{up}{}", e.file))
        }
        None => (dir.clone(), e.file.clone()),
    };
    let mut args = vec!["check-budget".to_string(), file];
    let facts = harness::fixture("facts/corpus.toml");
    args.extend(["--facts".into(), facts]);
    if let Some(ram) = &e.ram {
        args.extend(["--ram".into(), ram.clone()]);
    }
    let release = e
        .release
        .clone()
        .expect("every corpus file states its release");
    let flag = match e.file.split('/').next().unwrap() {
        "postgres" => "--pg-version",
        "redis" => "--redis-version",
        "pgbouncer" => "--pgbouncer-version",
        other => panic!("unknown corpus service {other}"),
    };
    args.extend([flag.into(), release]);
    if let Some(root) = &e.root {
        let depth = e
            .cwd
            .as_ref()
            .map_or(0, |c| Path::new(c).components().count());
        args.extend(["--root".into(), format!("{}{root}", "../".repeat(depth))]);
    }
    (cwd, args)
}

/// What check-budget says about each corpus file (text), at its stated
/// release and RAM. tests/fixtures/corpus/README.md reviews every finding
/// against the servers.
#[test]
fn check_budget_on_every_corpus_file() {
    let facts = harness::fixture("facts/corpus.toml");
    for e in entries() {
        let (cwd, args) = check_args(&e);
        let out = harness::dbtune()
            .current_dir(&cwd)
            .args(&args)
            .output()
            .unwrap();
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == facts {
                    "facts/corpus.toml".into()
                } else {
                    a.clone()
                }
            })
            .collect();
        let text = format!(
            "$ (cd {}) dbtune {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            e.cwd.as_deref().unwrap_or("."),
            shown.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .replace(&facts, "facts/corpus.toml");
        let name = e.file.replace(['/', '.'], "_");
        insta::assert_snapshot!(format!("corpus__{name}"), text);
    }
}

/// A copy of the corpus's PostgreSQL files that a server of this machine
/// can read, adapted where the published files cannot be read here as they
/// were on their hosts (the adaptations are in the text dbtune reads too,
/// so both judge the same files; none touches a setting that sizes shared
/// memory):
/// - an absolute include (`/etc/...`) points into the copy of the file's
///   `root`;
/// - `lc_messages`, `lc_monetary`, `lc_numeric`, `lc_time` are `C`: this
///   machine has no en_US locales, and PostgreSQL checks the file's value
///   even when the command line overrides it;
/// - a `;` after a value (rinha2024-avelfir-java.conf: a syntax error
///   PostgreSQL refuses the whole file for, and dbtune reports) is removed.
fn adapted_copy(dir: &Path, e: &Entry) -> PathBuf {
    let root = e.root.as_ref().map(|r| dir.join(r));
    copy_tree(
        &corpus_dir().join("postgres"),
        &dir.join("postgres"),
        root.as_deref(),
    );
    dir.join(&e.file)
}

fn adapt(text: &str, root: Option<&Path>) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end();
        let start = body.trim_start();
        let setting = !start.starts_with('#') && body.contains('=');
        let mut l = line.to_string();
        if let Some(root) = root {
            if start.starts_with("include") {
                l = l.replace("'/etc/", &format!("'{}/etc/", root.display()));
            }
        }
        if setting
            && ["lc_messages", "lc_monetary", "lc_numeric", "lc_time"]
                .iter()
                .any(|k| start.starts_with(k))
        {
            let key = start
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap();
            l = format!("{key} = 'C'\n");
        }
        if setting && body.ends_with(';') && !body.contains('#') {
            l = format!("{}\n", body.trim_end_matches(';'));
        }
        out.push_str(&l);
    }
    out
}

fn copy_tree(src: &Path, dst: &Path, root: Option<&Path>) {
    std::fs::create_dir_all(dst).unwrap();
    harness::chown_postgres(dst);
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to, root);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            harness::write(&to, &adapt(&text, root));
        }
    }
}

/// An initdb'd data directory of one major.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(major: u32) -> Cluster {
        let bin = harness::pg_server(major);
        let dir = harness::server_dir();
        let mut c = harness::as_postgres(&bin.join("initdb"));
        c.arg("-D")
            .arg(dir.path().join("data"))
            .args(["--no-sync", "-U", "postgres"]);
        harness::run_ok(c);
        Cluster { bin, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the file needs overridden to be read on this machine, as `-c`
    /// settings (none of them sizes shared memory): the data directory and
    /// its hba/ident files, no pid file and no TLS (paths of the original
    /// host), no huge pages (the mapping is read exactly), and only the
    /// preload libraries this build has (repmgr, vchord, online_analyze,
    /// Supabase's set are not in it; dbtune counts an unknown library as
    /// 0, so both leave them out).
    fn overrides(&self, libs: &str) -> Vec<(String, String)> {
        let data = self.data().display().to_string();
        let lib_dir = self.bin.parent().unwrap().join("lib/postgresql");
        let have: Vec<&str> = libs
            .split(',')
            .map(|l| l.trim().trim_matches('"'))
            .filter(|l| !l.is_empty())
            .filter(|l| {
                let name = l.strip_prefix("$libdir/").unwrap_or(l);
                let name = name.strip_suffix(".so").unwrap_or(name);
                lib_dir.join(format!("{name}.so")).is_file()
            })
            .collect();
        let mut o: Vec<(String, String)> = [
            ("data_directory", data.clone()),
            ("hba_file", format!("{data}/pg_hba.conf")),
            ("ident_file", format!("{data}/pg_ident.conf")),
            ("external_pid_file", String::new()),
            ("ssl", "off".into()),
            ("shared_preload_libraries", have.join(",")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        o.push(("huge_pages".into(), "off".into()));
        o
    }

    /// `postgres -C shared_memory_size` (15+), in MB rounded up.
    fn shared_memory_size(&self, conf: &Path, libs: &str) -> u64 {
        let mut c = harness::as_postgres(&self.bin.join("postgres"));
        c.arg("-D")
            .arg(self.data())
            .arg("-c")
            .arg(format!("config_file={}", conf.display()))
            .args(["-C", "shared_memory_size"]);
        for (k, v) in self.overrides(libs) {
            c.arg("-c").arg(format!("{k}={v}"));
        }
        harness::run_ok(c).trim().parse().unwrap()
    }

    /// The server started on the file, its shared mappings read (exact
    /// bytes; 13 and 14 have no shared_memory_size, and from 15 it is whole
    /// MB): scripts/measure-shared-memory.py measures the same way.
    fn shared_mapped(&self, major: u32, conf: &Path, libs: &str) -> u64 {
        let mut c = harness::as_postgres(&self.bin.join("postgres"));
        let port = harness::free_port();
        c.arg("-D")
            .arg(self.data())
            .arg("-c")
            .arg(format!("config_file={}", conf.display()));
        let mut o = self.overrides(libs);
        o.extend(
            [
                ("port", port.to_string()),
                ("listen_addresses", String::new()),
                (
                    "unix_socket_directories",
                    self.dir.path().display().to_string(),
                ),
                ("logging_collector", "off".into()),
                ("archive_mode", "off".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        if major < 15 {
            // A directory of the original host (gone in 15).
            o.push(("stats_temp_directory".into(), "pg_stat_tmp".into()));
        }
        for (k, v) in o {
            c.arg("-c").arg(format!("{k}={v}"));
        }
        let mut server = harness::Proc::spawn(
            "postgres",
            c,
            self.dir.path().join("server.log"),
            libc::SIGINT,
        );
        let pid_file = self.data().join("postmaster.pid");
        // The status line of postmaster.pid says `ready` once it accepts
        // connections (its shared memory is set up long before).
        server.wait_until(|| {
            std::fs::read_to_string(&pid_file).is_ok_and(|t| t.lines().any(|l| l.trim() == "ready"))
        });
        let real = harness::shared_mapped(server.child.id());
        drop(server);
        real
    }
}

/// At most this much over the server's figure (the model's 1% margin, the
/// largest excess over the measured grid, 2.3% on 14 at 20 MiB; and the
/// MB the server rounds its figure to).
const OVER: f64 = 0.05;

/// Every PostgreSQL file of the corpus, on the major it states (all of 13
/// to 18 for a file that states none): dbtune's shared memory is never
/// under the server's (the shared segments the running server maps, in
/// bytes; from 15 also `postgres -C shared_memory_size`, whole MB, compared
/// at that rounding) and at most OVER above the mapped bytes.
#[test]
fn corpus_shared_memory_is_never_under_the_servers() {
    let mut clusters: Vec<(u32, Cluster)> = Vec::new();
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for e in entries().iter().filter(|e| e.file.starts_with("postgres/")) {
        let majors: Vec<u32> = match &e.release {
            Some(r) => vec![r.parse().unwrap()],
            None => (13..=18).collect(),
        };
        for major in majors {
            if !clusters.iter().any(|(m, _)| *m == major) {
                clusters.push((major, Cluster::new(major)));
            }
            let cluster = &clusters.iter().find(|(m, _)| *m == major).unwrap().1;
            let dir = harness::server_dir();
            let conf = adapted_copy(dir.path(), e);
            let s = dbtune::read::include::postgres(&conf, None).unwrap();
            let pg = dbtune::read::effective::Pg::new(&s, PgVersion::of(major));
            let libs = pg.text("shared_preload_libraries", "");
            let est = dbtune::read::effective::pg_shared_estimate(&pg);
            // Exact bytes from the running server on every major, and from
            // 15 the figure the server reports too, at its rounding.
            let real = ByteSize(cluster.shared_mapped(major, &conf, &libs));
            let mut under = est < real;
            let mut reported = String::new();
            if major >= 15 {
                let mb = cluster.shared_memory_size(&conf, &libs);
                under |= est.bytes().div_ceil(MIB) < mb;
                reported = format!(", shared_memory_size {mb} MB");
            }
            let ratio = est.bytes() as f64 / real.bytes() as f64;
            let line = format!(
                "{} on {major}: dbtune {est}, the server maps {real}{reported} ({:+.2}%)",
                e.file,
                (ratio - 1.0) * 100.0
            );
            if under || ratio > 1.0 + OVER {
                bad.push(line.clone());
            }
            lines.push(line);
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert!(lines.len() >= 20, "only {} compared", lines.len());
    assert!(bad.is_empty(), "out of bounds:\n{}", bad.join("\n"));
}
