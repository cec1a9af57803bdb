//! A scratch PostgreSQL cluster: initdb in a temp dir, loopback and a socket
//! in that dir only, a free port; stopped and removed when dropped. It never
//! touches an existing cluster. As root it runs as the `postgres` user
//! (initdb and postgres refuse root).

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

/// Where PostgreSQL's programs are, or an error saying how to get them.
pub fn pg_bin_dir() -> Result<PathBuf> {
    crate::facts::detect::postgres_bin_dir()
        .ok_or_else(|| anyhow!("PostgreSQL is not installed (apt-get install postgresql)"))
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// (uid, gid) of `postgres` when we are root: PostgreSQL and PgBouncer
/// refuse to run as root, and scratch servers (bench's, the start proof's)
/// run as that user.
pub(crate) fn postgres_ids() -> Result<Option<(u32, u32)>> {
    let out = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        if !out.status.success() {
            bail!("running as root needs a `postgres` user to run PostgreSQL as");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

pub struct Cluster {
    pub port: u16,
    pub dir: TempDir,
    /// The server's programs (postgres, initdb).
    pub bin: PathBuf,
    /// Client programs (psql, pg_isready, pgbench): the installed ones,
    /// which talk to any server version; a server-only build (npm's) has none.
    pub client_bin: PathBuf,
    ids: Option<(u32, u32)>,
    child: Option<Child>,
    /// The host-sized cgroup the server runs in (`bench --ram`); removed
    /// after the server stops.
    pub cgroup: Option<super::cgroup::Cgroup>,
}

/// A program run as `ids` (the postgres user, when we are root).
pub(crate) fn command_as(bin: &Path, ids: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(bin);
    if let Some((uid, gid)) = ids {
        c.uid(uid).gid(gid);
    }
    c
}

/// initdb of the PostgreSQL in `bin` into `data`: local connections
/// trusted, superuser `postgres`, no fsync (scratch data), plus `extra`.
pub(crate) fn initdb(
    bin: &Path,
    data: &Path,
    ids: Option<(u32, u32)>,
    extra: &[&str],
) -> Result<()> {
    let out = command_as(&bin.join("initdb"), ids)
        .arg("-D")
        .arg(data)
        .args(["--auth-local=trust", "-U", "postgres", "--no-sync"])
        .args(extra)
        .output()
        .context("cannot run initdb")?;
    if !out.status.success() {
        bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Cluster {
    fn command(bin: &Path, ids: Option<(u32, u32)>) -> Command {
        command_as(bin, ids)
    }

    /// Starts a cluster whose postgresql.conf is `conf` plus `extra` lines
    /// (which win, being later), trusting every local connection.
    pub fn start(conf: &str, extra: &[(&str, &str)]) -> Result<Cluster> {
        Cluster::start_with(conf, extra, "trust")
    }

    /// As `start`, with `host_auth` (e.g. `scram-sha-256`) for TCP
    /// connections; the Unix socket stays trusted.
    pub fn start_with(conf: &str, extra: &[(&str, &str)], host_auth: &str) -> Result<Cluster> {
        Cluster::start_in(&pg_bin_dir()?, conf, extra, host_auth)
    }

    /// As `start_with`, with the server programs in `bin` (another
    /// PostgreSQL version than the installed one).
    pub fn start_in(
        bin: &Path,
        conf: &str,
        extra: &[(&str, &str)],
        host_auth: &str,
    ) -> Result<Cluster> {
        Cluster::start_limited(bin, conf, extra, host_auth, None)
    }

    /// As `start_in`, the server (and every process it forks) inside
    /// `cgroup` when given.
    pub fn start_limited(
        bin: &Path,
        conf: &str,
        extra: &[(&str, &str)],
        host_auth: &str,
        cgroup: Option<super::cgroup::Cgroup>,
    ) -> Result<Cluster> {
        let bin = bin.to_path_buf();
        let client_bin = crate::facts::detect::postgres_bin_dir()
            .filter(|d| d.join("psql").is_file())
            .unwrap_or_else(|| bin.clone());
        let ids = postgres_ids()?;
        let dir = super::scratch::tempdir()?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        initdb(&bin, &data, ids, &[&format!("--auth-host={host_auth}")])?;
        let port = free_port()?;
        let mut text = conf.to_string();
        text.push_str(&format!(
            "\n# bench overrides\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
        ));
        text.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            dir.path().display()
        ));
        for (k, v) in extra {
            text.push_str(&format!("{k} = '{v}'\n"));
        }
        let conf_path = dir.path().join("postgresql.conf");
        fs::write(&conf_path, text)?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&conf_path, Some(uid), Some(gid))?;
        }
        let mut c = Cluster {
            port,
            dir,
            bin,
            client_bin,
            ids,
            child: None,
            cgroup,
        };
        c.start_again()?;
        Ok(c)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (again) and waits until it answers; an error with
    /// its log when it exits or is not ready within 60 s.
    pub fn start_again(&mut self) -> Result<()> {
        let conf_path = self.dir.path().join("postgresql.conf");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))?;
        let mut command = match &self.cgroup {
            Some(cg) => {
                let mut c = Command::new(self.bin.join("postgres"));
                cg.enter(&mut c, self.ids);
                c
            }
            None => Self::command(&self.bin.join("postgres"), self.ids),
        };
        stop_with_parent(&mut command);
        let child = command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-c")
            .arg(format!("config_file={}", conf_path.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start postgres")?;
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ready = Command::new(self.client_bin.join("pg_isready"))
                .arg("-h")
                .arg(self.dir.path())
                .args(["-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                bail!("postgres exited ({st}):\n{}", self.log());
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("postgres not ready after 60 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fast shutdown (SIGINT), waiting for the server to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The postmaster's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A client program (psql, pgbench) pointed at this cluster.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(self.client_bin.join(program));
        c.env("PGHOST", self.dir.path())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", "postgres")
            .env_remove("PGPASSWORD");
        c
    }

    pub fn psql(&self, sql: &str) -> Result<String> {
        let out = self
            .client("psql")
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()?;
        if !out.status.success() {
            bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The server gets SIGINT (fast shutdown) when the thread that started it
/// dies, however it dies: a bench or test killed with SIGKILL must not leave
/// scratch servers holding memory. Set after the uid change (which would
/// clear it), and checked against a parent that died before it was set.
/// SIGINT stops each server dbtune starts: PostgreSQL's fast shutdown,
/// Redis's and PgBouncer's shutdown.
pub(crate) fn stop_with_parent(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork
    // and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other(
                    "the parent exited before the server started",
                ));
            }
            Ok(())
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
