//! Each Redis role's budget against the real server: the low-memory
//! profile rendered with the role, its redis.conf started on Redis 7.0
//! (Debian's) and 8.0 (built), the role's workload run past maxmemory and
//! through a slowed save, and the memory Redis held at its peak compared
//! with the budget check-budget computes for that file and role.
//!
//! maxmemory is lowered to 24 MiB so each role runs in seconds: the
//! factors are per byte of maxmemory, and a small Redis has more fixed
//! overhead per byte than a large one, so the test is the harder case.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbtune::model::Assumptions;
use dbtune::profile::RedisRole;
use dbtune::read::budget;
use dbtune::read::settings::HostSettings;
use dbtune::service::Scope;
use dbtune::units::ByteSize;

use crate::harness::{self, Redis};

const MAXMEMORY: u64 = 24 << 20;

/// RESP for commands of plain words.
fn resp(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// A deterministic stream of sizes and picks (no clock, no crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo + 1)
    }
}

/// The role's writes, `bytes` of values: what calibrate-memory.py runs,
/// scaled down.
fn workload(role: RedisRole, bytes: u64, rng: &mut Lcg, n: &mut u64) -> Vec<u8> {
    let blob = vec![b'v'; 16384];
    let mut out = Vec::new();
    let mut written = 0;
    while written < bytes {
        *n += 1;
        let i = *n;
        let kind = match role {
            RedisRole::Mixed => {
                [RedisRole::Cache, RedisRole::Sessions, RedisRole::Queue][rng.next(0, 2) as usize]
            }
            r => r,
        };
        match kind {
            RedisRole::Cache => {
                // Small values, then large ones under new keys: the churn
                // that fragments most.
                let size = if i.is_multiple_of(2) {
                    rng.next(60, 120)
                } else {
                    rng.next(3000, 9000)
                };
                resp(
                    &mut out,
                    &[
                        b"SET",
                        format!("cache:{i}").as_bytes(),
                        &blob[..size as usize],
                    ],
                );
                written += size;
            }
            RedisRole::Sessions => {
                let size = rng.next(512, 4096);
                // A new session, or a live one rewritten, with a TTL.
                let k = if i.is_multiple_of(4) {
                    i - rng.next(1, 3).min(i - 1)
                } else {
                    i
                };
                resp(
                    &mut out,
                    &[
                        b"SET",
                        format!("session:{k}").as_bytes(),
                        &blob[..size as usize],
                        b"EX",
                        rng.next(1, 10).to_string().as_bytes(),
                    ],
                );
                resp(&mut out, &[b"GET", format!("session:{}", i / 2).as_bytes()]);
                written += size;
            }
            _ => {
                // A task queued; every fourth step a worker takes two and
                // stores a result with a TTL (Celery's broker and backend):
                // the producers outrun the workers until Redis refuses.
                let size = rng.next(200, 8192);
                resp(&mut out, &[b"LPUSH", b"celery", &blob[..size as usize]]);
                written += size;
                if i.is_multiple_of(4) {
                    resp(&mut out, &[b"RPOP", b"celery", b"2"]);
                    resp(
                        &mut out,
                        &[
                            b"SET",
                            format!("celery-task-meta-{i}").as_bytes(),
                            &blob[..rng.next(100, 1024) as usize],
                            b"EX",
                            b"30",
                        ],
                    );
                }
            }
        }
    }
    out
}

fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What Redis holds now: the server's anonymous memory, plus what a
/// saving child holds alone (the pages the parent copied away from it).
fn held(pid: u32) -> u64 {
    let mut kib = status_kib(pid, "RssAnon:");
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if status_kib(child, "PPid:") != pid as u64 {
            continue;
        }
        let rollup = fs::read_to_string(format!("/proc/{child}/smaps_rollup")).unwrap_or_default();
        for l in rollup.lines() {
            if let Some(v) = l
                .strip_prefix("Private_Dirty:")
                .or_else(|| l.strip_prefix("Private_Clean:"))
            {
                kib += v
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
    }
    kib << 10
}

/// Samples `held` every 10 ms until dropped; the peak.
struct Peak {
    run: Arc<AtomicBool>,
    t: Option<std::thread::JoinHandle<u64>>,
}

impl Peak {
    fn start(pid: u32) -> Peak {
        let run = Arc::new(AtomicBool::new(true));
        let r = run.clone();
        let t = std::thread::spawn(move || {
            let mut max = 0;
            while r.load(Ordering::Relaxed) {
                max = max.max(held(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            max.max(held(pid))
        });
        Peak { run, t: Some(t) }
    }

    fn stop(mut self) -> u64 {
        self.run.store(false, Ordering::Relaxed);
        self.t.take().unwrap().join().unwrap()
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.run.store(false, Ordering::Relaxed);
    }
}

/// The rendered redis.conf of low-memory with `role`, maxmemory lowered,
/// and the paths left to the harness.
fn rendered(role: RedisRole) -> String {
    let mut p = harness::builtin("low-memory");
    p.redis.role = role;
    let host = harness::host_for(&p, Some(ByteSize::gib(4)), None, None, None);
    let files = harness::render_checked(&p, &host);
    let conf = &files
        .iter()
        .find(|a| a.file == "redis.conf")
        .expect("redis.conf")
        .content;
    conf.lines()
        .filter(|l| !["dir ", "port ", "bind "].iter().any(|k| l.starts_with(k)))
        .map(|l| {
            if l.starts_with("maxmemory ") {
                format!("maxmemory {MAXMEMORY}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// The budget check-budget computes for `conf` as a directory rendered for
/// `role` (the manifest's assumptions), on Redis `version`: total, fork.
fn budget_of(conf: &str, role: RedisRole, version: &str) -> (u64, u64) {
    let settings = HostSettings {
        redis: Some(dbtune::read::grammar::redis_conf(conf, "redis.conf").unwrap()),
        redis_version: version.into(),
        ..Default::default()
    };
    let a = Assumptions {
        redis_role: Some(role),
        ..Default::default()
    };
    let b = budget::compute(&settings, ByteSize::gib(4), "test", &[], &a);
    let fork = b
        .terms
        .iter()
        .find(|t| t.service == Scope::Redis && t.name == "fork copy-on-write")
        .map_or(0, |t| t.worst.bytes());
    (b.service_worst(Scope::Redis).bytes(), fork)
}

fn role_on_real_redis(role: RedisRole) {
    let conf = rendered(role);
    for version in ["7.0", "8.0"] {
        let label = format!("{role} on Redis {version}");
        let r = if version == "7.0" {
            Redis::start(&conf, &[])
        } else {
            Redis::start_version(version, &conf, &[])
        };
        let pid = r.info("process_id") as u32;
        let (worst, fork_term) = budget_of(&conf, role, version);
        let mut rng = Lcg(7);
        let mut n = 0;
        // Past maxmemory three times over: eviction, expiry or refusals.
        let peak = Peak::start(pid);
        for _ in 0..3 {
            r.pipe(&workload(role, MAXMEMORY, &mut rng, &mut n));
        }
        let data_peak = peak.stop();
        // A save of about two seconds with the workload writing through it,
        // once the rendered save rules' own forks are done.
        r.cmd(&["CONFIG", "SET", "save", ""]);
        for _ in 0..200 {
            if r.info("rdb_bgsave_in_progress") == 0 && r.info("aof_rewrite_in_progress") == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let dbsize: u64 = r.cmd(&["DBSIZE"]).trim().parse().unwrap_or(1).max(1);
        let delay = (2_000_000 / dbsize).max(1);
        r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", &delay.to_string()]);
        let before = held(pid);
        let peak = Peak::start(pid);
        let started = r.cmd(&["BGSAVE"]);
        assert!(started.contains("started"), "{label}: {started}");
        let mut rounds = 0;
        while r.info("rdb_bgsave_in_progress") == 1 && rounds < 40 {
            r.pipe(&workload(role, MAXMEMORY / 4, &mut rng, &mut n));
            rounds += 1;
        }
        let save_peak = peak.stop();
        r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
        assert!(rounds > 0, "{label}: the save ended before any write");
        let real = data_peak.max(save_peak);
        eprintln!(
            "{label}: held {} at its peak ({} during the save, {} before it), budget {} (fork {})",
            ByteSize(real),
            ByteSize(save_peak),
            ByteSize(before),
            ByteSize(worst),
            ByteSize(fork_term)
        );
        assert!(
            real <= worst,
            "{label}: Redis held {} but the budget says {}",
            ByteSize(real),
            ByteSize(worst)
        );
    }
}

#[test]
fn a_cache_stays_under_its_budget_on_real_redis() {
    role_on_real_redis(RedisRole::Cache);
}

#[test]
fn sessions_stay_under_their_budget_on_real_redis() {
    role_on_real_redis(RedisRole::Sessions);
}

#[test]
fn a_queue_stays_under_its_budget_on_real_redis() {
    role_on_real_redis(RedisRole::Queue);
}

#[test]
fn a_mixed_redis_stays_under_its_budget_on_real_redis() {
    role_on_real_redis(RedisRole::Mixed);
}

/// The role travels with the files: the manifest records it, and
/// check-budget of the directory judges Redis with that role's factors,
/// as render sized it (a hand-written directory gets the worst bound).
#[test]
fn check_budget_judges_a_rendered_directory_with_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = harness::dbtune()
        .args(["render", "--profile", "low-memory", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", harness::whole_output(&run));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("dbtune-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["assumptions"]["redis_role"], "mixed");
    let check = harness::dbtune()
        .args(["check-budget", "--level", "worst"])
        .arg(&out)
        .output()
        .unwrap();
    let text = harness::whole_output(&check);
    assert!(check.status.success(), "{text}");
    assert!(
        text.contains("x 1.11 worst (measured for role mixed")
            && text.contains("maxmemory x 1.56 (measured for role mixed")
            && text.contains("margin +50%, data/redis-roles.tsv"),
        "{text}"
    );
    // The same redis.conf without the manifest: nobody said what it
    // holds, so the worst churn's bound.
    let bare = dir.path().join("bare");
    fs::create_dir(&bare).unwrap();
    fs::copy(out.join("redis.conf"), bare.join("redis.conf")).unwrap();
    let check = harness::dbtune()
        .args(["check-budget", "--ram", "4GiB", "--level", "worst"])
        .arg(&bare)
        .output()
        .unwrap();
    let text = harness::whole_output(&check);
    assert!(text.contains("x 1.95 worst (measured on Redis"), "{text}");
}
