#!/usr/bin/env python3
"""Measures the constants of dbtune's memory model on the real servers and
writes them to data/pg-memory.tsv and data/redis-memory.tsv.

PostgreSQL, for every major scripts/fetch-postgres.sh cached and the
installed one (run as root: the servers run as the postgres user, the
backend measurements need a memory cgroup):

  (shared memory is measured by scripts/measure-shared-memory.py)
  backend        the cgroup's anonymous memory per connection after each ran
                 the same app-like statements over 20 tables (the idle cost
                 of a backend that has touched a schema);
  hash           the cgroup's peak anonymous memory per connection while
                 each runs a hash join feeding a hash aggregate sized to fill
                 hash_mem, over 2 x hash_mem (the factor a hash node takes
                 of its budget);
  jit            the extra per connection with JIT on (where the build has
                 llvmjit), the same query.

Redis (the installed one and the ones scripts/fetch-redis-pgbouncer.sh
built), in a memory cgroup with maxmemory 256 MB, allkeys-lru:

  fragmentation  the cgroup's peak anonymous memory over maxmemory while
                 values of mixed sizes are written past maxmemory;
  fork           the extra anonymous memory while every key is rewritten
                 during a slow BGSAVE (rdb-key-save-delay), over the
                 memory in use when it forked.

Then, per role (data/redis-roles.tsv), each in a fresh server in its own
memory cgroup with maxmemory 128 MB and the role's policy, the same two
factors under the role's own workload (the largest of 3 runs: one run is
noisy):

  cache          the churn above (allkeys-lru);
  sessions       SET EX of 0.5-4 KB values with TTLs of 2-30 s, reads and
                 rewrites of live sessions, 3 x maxmemory written
                 (volatile-lru: expiry and eviction both churn);
  queue          tasks of 0.2-8 KB LPUSHed until writes are refused (OOM,
                 counted) and popped to empty by a consumer that SETs a
                 result with a TTL (Celery's broker and backend), three
                 times (noeviction); its fork is the larger of a BGSAVE's
                 and an AOF rewrite's;
  mixed          the sessions', the queue's and cache SETs without a TTL
                 at once (noeviction).

  The fork copy of a role is measured while its workload keeps writing at
  full speed through a save slowed to ~6 s (rdb-key-save-delay), over the
  memory in use when it forked.

Usage: scripts/calibrate-memory.py [--only postgres|redis] [BIN_DIR...]
"""

import json
import os
import random
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
PG = pwd.getpwnam("postgres")


def cache():
    return Path(os.environ.get("DBTUNE_CACHE", "/var/cache/dbtune"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- cgroups -------------------------------------------------------------

def cgroup_base():
    try:
        if "memory" in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split():
            return Path("/sys/fs/cgroup"), 2
    except OSError:
        pass
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrl, path = line.split(":", 2)
        if "memory" in ctrl.split(","):
            return Path("/sys/fs/cgroup/memory" + path), 1
    sys.exit("no memory cgroup controller")


class Cgroup:
    def __init__(self, name):
        base, self.v = cgroup_base()
        self.path = base / f"dbtune-calibrate-{os.getpid()}-{name}"
        self.path.mkdir()

    def join(self):
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def anon(self):
        """Anonymous memory charged now (what cannot be reclaimed but by
        freeing it; shared memory is counted apart)."""
        stat = dict(l.split() for l in (self.path / "memory.stat").read_text().splitlines())
        return int(stat["total_rss"] if self.v == 1 else stat["anon"])

    def shmem(self):
        stat = dict(l.split() for l in (self.path / "memory.stat").read_text().splitlines())
        return int(stat["total_shmem"] if self.v == 1 else stat["shmem"])

    def remove(self):
        for _ in range(50):
            pids = (self.path / "cgroup.procs").read_text().split()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        try:
            self.path.rmdir()
        except OSError:
            pass


class Peak:
    """Samples a cgroup's anonymous memory every 10 ms until stopped."""

    def __init__(self, cg):
        self.cg, self.max, self.run = cg, 0, True
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while self.run:
            self.max = max(self.max, self.cg.anon())
            time.sleep(0.01)

    def stop(self):
        self.run = False
        self.t.join()
        return self.max


# --- PostgreSQL ------------------------------------------------------------

def as_postgres(cg=None):
    def pre():
        if cg is not None:
            cg.join()
        os.setgid(PG.pw_gid)
        os.setuid(PG.pw_uid)
    return pre


class Server:
    def __init__(self, bin_dir, data, settings, cg=None):
        self.bin, self.data = Path(bin_dir), data
        self.sock = data.parent
        self.port = free_port()
        args = [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port),
                "-c", "listen_addresses=", "-c", f"unix_socket_directories={self.sock}",
                "-c", "huge_pages=off", "-c", "logging_collector=off"]
        for k, v in settings.items():
            args += ["-c", f"{k}={v}"]
        self.log = open(data.parent / "server.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, preexec_fn=as_postgres(cg))
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError((data.parent / "server.log").read_text()[-2000:])
            if subprocess.run([psql_bin(), "-h", str(self.sock), "-p", str(self.port), "-U", "postgres",
                               "-XAtqc", "SELECT 1", "postgres"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("not ready")

    def shared_mapped(self):
        """Bytes of the postmaster's shared mappings (the main segment,
        the SysV stub, the DSM control segment)."""
        total = 0
        for line in Path(f"/proc/{self.proc.pid}/maps").read_text().splitlines():
            f = line.split()
            if f[1][3] == "s" and (len(f) < 6 or f[5].startswith(("/dev/zero", "/SYSV", "/dev/shm"))):
                lo, hi = (int(x, 16) for x in f[0].split("-"))
                total += hi - lo
        return total

    def sql(self, q):
        r = subprocess.run([psql_bin(), "-h", str(self.sock), "-p", str(self.port), "-U", "postgres",
                            "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", q, "postgres"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{q}: {r.stderr}")
        return r.stdout.strip()

    def session(self):
        return subprocess.Popen([psql_bin(), "-h", str(self.sock), "-p", str(self.port), "-U", "postgres",
                                 "-XAtq", "-v", "ON_ERROR_STOP=1", "postgres"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, bufsize=1)

    def stop(self):
        self.proc.send_signal(2)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def psql_bin():
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "psql").exists():
            return str(d / "psql")
    return shutil.which("psql")


def ask(sess, q, marker):
    """Runs q in an open psql session and waits for its output to end."""
    try:
        sess.stdin.write(q.rstrip().rstrip(";") + f";\n\\echo {marker}\n")
        sess.stdin.flush()
    except BrokenPipeError:
        raise RuntimeError("session ended: " + sess.stderr.read())
    out = []
    while True:
        line = sess.stdout.readline()
        if not line:
            raise RuntimeError("session ended: " + sess.stderr.read())
        if line.strip() == marker:
            return out
        out.append(line.strip())


BASE = {"shared_buffers": "128MB", "wal_buffers": "4MB", "max_connections": "100",
        "max_locks_per_transaction": "64", "track_activity_query_size": "1024",
        "max_prepared_transactions": "0", "max_worker_processes": "8", "max_wal_senders": "10",
        "autovacuum_max_workers": "3"}


APP_TABLES = 20


def backends(bin_dir, data, major, jit_build):
    """Per-connection memory: idle after app statements, and at the peak of
    the hash query; with JIT on too where the build has it."""
    out = {}
    work_mem = 8 * MIB
    hmm = 2.0
    settings = dict(BASE, work_mem="8MB", hash_mem_multiplier="2", max_parallel_workers_per_gather="0",
                    jit="off", autovacuum="off")
    cg = Cgroup(f"pg{major}")
    try:
        srv = Server(bin_dir, data, settings, cg)
        try:
            setup = []
            for i in range(APP_TABLES):
                setup.append(f"CREATE TABLE IF NOT EXISTS app{i} (id bigint PRIMARY KEY, ref bigint, "
                             f"name text, created timestamptz DEFAULT now(), payload jsonb)")
                setup.append(f"CREATE INDEX IF NOT EXISTS app{i}_ref ON app{i} (ref)")
                setup.append(f"INSERT INTO app{i} SELECT g, g % 100, md5(g::text), now(), "
                             f"jsonb_build_object('k', g) FROM generate_series(1, 2000) g ON CONFLICT DO NOTHING")
            srv.sql(";".join(setup))
            srv.sql("CHECKPOINT")
            n = 16
            time.sleep(0.5)
            a0 = cg.anon()
            sessions = [srv.session() for _ in range(n)]
            app = ";".join(
                [f"SELECT count(*), max(a.name) FROM app{i} a JOIN app{(i + 1) % APP_TABLES} b ON a.ref = b.id "
                 f"WHERE a.payload ? 'k'" for i in range(APP_TABLES)]
                + ["SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                   "WHERE c.relname LIKE 'app%' ORDER BY 1, 2 LIMIT 50"])
            for i, s in enumerate(sessions):
                ask(s, app, f"done{i}")
            time.sleep(0.5)
            a1 = cg.anon()
            out["backend"] = (a1 - a0) / n
            rows = int(work_mem * hmm / 100)
            hostile = (f"SET enable_sort = off; SELECT count(*) FROM (SELECT a.m, count(*) FROM "
                       f"(SELECT md5(g::text) AS m FROM generate_series(1, {rows}) g) a JOIN "
                       f"(SELECT md5(g::text) AS m FROM generate_series(1, {rows}) g) b USING (m) GROUP BY a.m) s")

            def hash_peak(jit):
                # JIT at its most: compiled, inlined and optimized.
                pre = ("SET jit = on; SET jit_above_cost = 0; SET jit_inline_above_cost = 0; "
                       "SET jit_optimize_above_cost = 0; " if jit else "SET jit = off; ")
                before = cg.anon()
                peak = Peak(cg)
                threads = [threading.Thread(target=ask, args=(s, pre + hostile, f"h{i}"))
                           for i, s in enumerate(sessions)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return (peak.stop() - before) / n

            out["hash"] = hash_peak(False) / (2 * work_mem * hmm)
            if jit_build:
                # The difference of two peaks is noisy: the largest of three.
                out["jit"] = max(hash_peak(True) - hash_peak(False) for _ in range(3))
            for s in sessions:
                try:
                    s.stdin.close()
                except BrokenPipeError:
                    pass
                s.wait()
        finally:
            srv.stop()
    finally:
        cg.remove()
    return out


def postgres(bins):
    rows = []
    for bin_dir in bins:
        version = subprocess.run([str(Path(bin_dir) / "postgres"), "--version"], capture_output=True,
                                 text=True).stdout.split()[2]
        major = int(version.split(".")[0])
        jit = (Path(bin_dir).parent / "lib" / "llvmjit.so").exists() or \
            (Path(bin_dir).parent / "lib" / "postgresql" / "llvmjit.so").exists()
        with tempfile.TemporaryDirectory(prefix="dbtune-calibrate-") as tmp:
            os.chmod(tmp, 0o755)
            os.chown(tmp, PG.pw_uid, PG.pw_gid)
            data = Path(tmp) / "data"
            subprocess.run([str(Path(bin_dir) / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync"],
                           check=True, capture_output=True, preexec_fn=as_postgres())
            be = backends(bin_dir, data, major, jit)
        row = dict(major=major, version=version, **be)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    # One row per major: the installed build wins over npm's of the same
    # major only where it measured JIT.
    by_major = {}
    for r in rows:
        if r["major"] not in by_major or "jit" in r:
            by_major[r["major"]] = r
    out = ROOT / "data/pg-memory.tsv"
    # Majors not measured this time keep their rows.
    kept = []
    if out.exists():
        for line in out.read_text().splitlines():
            if line and not line.startswith("#") and int(line.split("\t")[0]) not in by_major:
                kept.append(line)
    with open(out, "w") as f:
        f.write("# PostgreSQL memory constants measured by scripts/calibrate-memory.py on "
                f"{time.strftime('%Y-%m-%d')} (docs/budget-model.md explains each); shared memory is in "
                "data/pg-shared-memory.tsv.\n")
        f.write("# major\tversion\tbackend_bytes\thash_factor\tjit_bytes\n")
        rows_out = {int(l.split("\t")[0]): l for l in kept}
        for m, r in by_major.items():
            rows_out[m] = (f"{m}\t{r['version']}\t{int(r['backend'])}\t{r['hash']:.3f}"
                           f"\t{int(r['jit']) if 'jit' in r else ''}")
        for m in sorted(rows_out):
            f.write(rows_out[m] + "\n")
    print(f"wrote {out}", file=sys.stderr)


# --- Redis -----------------------------------------------------------------

def redis_bins():
    out = []
    if shutil.which("redis-server"):
        out.append((shutil.which("redis-server"), shutil.which("redis-cli")))
    for d in sorted((cache() / "redis").glob("*/bin")):
        out.append((str(d / "redis-server"), str(d / "redis-cli")))
    return out


def redis(bins):
    rows = []
    maxmemory = 256 * MIB
    for server, cli in bins:
        version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout.split()[2][2:]
        cg = Cgroup("redis")
        with tempfile.TemporaryDirectory(prefix="dbtune-calibrate-") as tmp:
            port = free_port()
            proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                                     "--save", "", "--appendonly", "no", "--maxmemory", str(maxmemory),
                                     "--maxmemory-policy", "allkeys-lru", "--daemonize", "no",
                                     "--logfile", f"{tmp}/log"],
                                    preexec_fn=cg.join)
            try:
                def rc(*args):
                    return subprocess.run([cli, "-p", str(port), *args], capture_output=True,
                                          text=True).stdout.strip()
                for _ in range(100):
                    if rc("PING") == "PONG":
                        break
                    time.sleep(0.05)
                empty = cg.anon()
                # Idle clients: what each connection holds once it has sent a
                # command and had its reply.
                before = cg.anon()
                socks = []
                for _ in range(1000):
                    c = socket.create_connection(("127.0.0.1", port))
                    c.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
                    socks.append(c)
                for c in socks:
                    c.recv(100)
                time.sleep(0.5)
                clients = (cg.anon() - before) / len(socks)
                for c in socks:
                    c.close()

                def fill(total, prefix, sizes):
                    lines, i, written = [], 0, 0
                    while written < total:
                        v = "x" * sizes[i % len(sizes)]
                        k = f"{prefix}:{i}"
                        lines.append(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n")
                        written += len(v)
                        i += 1
                    subprocess.run([cli, "-p", str(port), "--pipe"], input="".join(lines).encode(),
                                   capture_output=True)

                def rewrite(_used):
                    # Every key there now, rewritten with a value of its size.
                    keys = rc("--scan").split()
                    lines = []
                    for k in keys:
                        n = 5000 if k.startswith("l:") else 90
                        v = "y" * n
                        lines.append(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n")
                    subprocess.run([cli, "-p", str(port), "--pipe"], input="".join(lines).encode(),
                                   capture_output=True)

                peak = Peak(cg)
                # jemalloc's worst pattern: small values past maxmemory, then
                # large ones under new keys. Eviction frees small values
                # here and there; their pages stay, partly used, while the
                # large values take new ones.
                fill(2 * maxmemory, "s", [60, 90, 120])
                fill(2 * maxmemory, "l", [3000, 5000, 9000])
                frag = (peak.stop() - empty) / maxmemory
                used = int(rc("INFO", "memory").split("used_memory:")[1].split()[0])
                before = cg.anon()
                rc("CONFIG", "SET", "rdb-key-save-delay", "200")
                rc("BGSAVE")
                time.sleep(0.2)
                peak = Peak(cg)
                # Every key rewritten while the child still walks them.
                rewrite(used)
                fork = (peak.stop() - before) / used
                rc("CONFIG", "SET", "rdb-key-save-delay", "0")

            finally:
                proc.kill()
                proc.wait()
                cg.remove()
        row = dict(version=".".join(version.split(".")[:2]), release=version, frag=frag, fork=fork,
                   base=empty, clients=clients)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    out = ROOT / "data/redis-memory.tsv"
    with open(out, "w") as f:
        f.write("# Redis memory constants measured by scripts/calibrate-memory.py on "
                f"{time.strftime('%Y-%m-%d')} (docs/budget-model.md explains each).\n")
        f.write("# version\trelease\tfragmentation\tfork_copy\tprocess_bytes\tclient_bytes\n")
        for r in rows:
            f.write(f"{r['version']}\t{r['release']}\t{r['frag']:.3f}\t{r['fork']:.3f}\t{r['base']}"
                    f"\t{int(r['clients'])}\n")
    print(f"wrote {out}", file=sys.stderr)
    return rows

# --- Redis roles -----------------------------------------------------------

class Resp:
    """A pipelining RESP client: what the roles' workloads need of one."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.r = self.sock.makefile("rb")

    @staticmethod
    def enc(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def reply(self):
        line = self.r.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.r.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def pipe(self, cmds):
        """Sends commands at once; their replies (errors as values)."""
        self.sock.sendall(b"".join(cmds))
        return [self.reply() for _ in cmds]

    def call(self, *args):
        return self.pipe([self.enc(*args)])[0]

    def info(self, field):
        text = self.call("INFO", "all").decode()
        return text.split(field + ":")[1].split()[0]


BLOB = b"v" * 16384


class Workload:
    """A role's clients: each step sends one pipelined batch."""

    def __init__(self, role, port, maxmemory, rng):
        self.role, self.mm, self.rng = role, maxmemory, rng
        self.c = Resp(port)
        self.consumer = Resp(port)
        self.sessions = 0
        self.tasks = 0
        self.cached = 0
        self.refused = 0
        self.written = 0

    def refused_in(self, replies):
        n = sum(1 for r in replies if isinstance(r, RuntimeError))
        for r in replies:
            if isinstance(r, RuntimeError) and not str(r).startswith("OOM"):
                raise r
        self.refused += n
        return n

    def session_batch(self, n=200):
        rng, cmds = self.rng, []
        for _ in range(n):
            x = rng.random()
            if x < 0.5 or self.sessions == 0:
                size = rng.randint(512, 4096)
                self.sessions += 1
                cmds.append(Resp.enc("SET", f"session:{self.sessions}", BLOB[:size], "EX", rng.randint(2, 30)))
                self.written += size
            elif x < 0.8:
                cmds.append(Resp.enc("GET", f"session:{rng.randint(max(1, self.sessions - 20000), self.sessions)}"))
            else:
                # A live session rewritten (a login refreshes it, its size changes).
                size = rng.randint(512, 4096)
                k = f"session:{rng.randint(max(1, self.sessions - 5000), self.sessions)}"
                cmds.append(Resp.enc("SET", k, BLOB[:size], "EX", rng.randint(2, 30)))
                self.written += size
        return self.refused_in(self.c.pipe(cmds))

    def produce(self, n=200):
        cmds = []
        for _ in range(n):
            size = self.rng.randint(200, 8192)
            self.tasks += 1
            cmds.append(Resp.enc("LPUSH", "celery", BLOB[:size]))
            self.written += size
        return self.refused_in(self.c.pipe(cmds))

    def consume(self, n=20):
        """A worker: takes tasks (RPOP with a count, as a BRPOP loop
        would one by one) and stores each result with a TTL."""
        got = self.consumer.pipe([Resp.enc("RPOP", "celery", 10) for _ in range(n)])
        done = sum(len(g) for g in got if isinstance(g, list))
        cmds = []
        for _ in range(done):
            self.tasks += 1
            cmds.append(Resp.enc("SET", f"celery-task-meta-{self.tasks}", BLOB[:self.rng.randint(100, 1024)],
                                 "EX", self.rng.randint(5, 60)))
        if cmds:
            self.refused_in(self.consumer.pipe(cmds))
        return done

    def cache_batch(self, n=100):
        cmds = []
        for _ in range(n):
            size = self.rng.choice([60, 90, 120, 3000, 5000, 9000])
            self.cached += 1
            cmds.append(Resp.enc("SET", f"cache:{self.cached}", BLOB[:size]))
            self.written += size
        return self.refused_in(self.c.pipe(cmds))

    def queue_cycles(self, cycles):
        for _ in range(cycles):
            # Fill: the producers outrun the workers until Redis refuses.
            while self.produce() < 20:
                self.consume(2)
            # Drain: the workers catch up, to an empty queue.
            while self.consume() > 0:
                pass

    def run(self):
        """The fragmentation phase."""
        if self.role == "sessions":
            while self.written < 3 * self.mm:
                self.session_batch()
        elif self.role == "queue":
            self.queue_cycles(3)
        elif self.role == "mixed":
            for _ in range(3):
                while True:
                    refused = self.session_batch(100) + self.produce(100) + self.cache_batch(50)
                    self.consume(2)
                    if refused > 50:
                        break
                while self.consume() > 0:
                    self.session_batch(50)
        self.prepare_fork()

    def prepare_fork(self):
        """Before a save: a full Redis (a queue at its deepest)."""
        if self.role in ("queue", "mixed"):
            while self.produce() < 20:
                pass

    def step(self):
        """Full-speed writes while a save runs."""
        if self.role == "sessions":
            self.session_batch()
        elif self.role == "queue":
            self.consume(10)
            self.produce(100)
        else:
            self.consume(5)
            self.session_batch(50)
            self.produce(50)
            self.cache_batch(20)


ROLE_POLICY = {"sessions": "volatile-lru", "queue": "noeviction", "mixed": "noeviction"}


def redis_role(server, role, maxmemory, seed):
    cg = Cgroup(f"redis-{role}")
    with tempfile.TemporaryDirectory(prefix="dbtune-calibrate-") as tmp:
        port = free_port()
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                                 "--save", "", "--appendonly", "no", "--maxmemory", str(maxmemory),
                                 "--maxmemory-policy", ROLE_POLICY[role], "--daemonize", "no",
                                 "--logfile", f"{tmp}/log"],
                                preexec_fn=cg.join)
        try:
            for _ in range(100):
                try:
                    Resp(port).call("PING")
                    break
                except OSError:
                    time.sleep(0.05)
            empty = cg.anon()
            w = Workload(role, port, maxmemory, random.Random(seed))
            peak = Peak(cg)
            w.run()
            frag = (peak.stop() - empty) / maxmemory

            def fork(start, busy):
                w.prepare_fork()
                keys = w.c.call("DBSIZE")
                # A save of ~6 s, whatever the number of keys.
                w.c.call("CONFIG", "SET", "rdb-key-save-delay", str(max(1, int(6e6 / max(keys, 1)))))
                used = int(w.c.info("used_memory"))
                before = cg.anon()
                pk = Peak(cg)
                w.c.call(*start)
                time.sleep(0.05)
                while w.c.info(busy) == "1":
                    for _ in range(5):
                        w.step()
                f = (pk.stop() - before) / used
                w.c.call("CONFIG", "SET", "rdb-key-save-delay", "0")
                return f

            forks = fork(["BGSAVE"], "rdb_bgsave_in_progress")
            if role == "queue":
                forks = max(forks, fork(["BGREWRITEAOF"], "aof_rewrite_in_progress"))
            refused = w.refused
        finally:
            proc.kill()
            proc.wait()
            cg.remove()
    return frag, forks, refused


def redis_roles(bins, cache_rows, runs=3):
    # Smaller than the churn's 256 MB: 3 runs x 3 roles x each release in
    # about a quarter of an hour.
    maxmemory = 128 * MIB
    rows = []
    for (server, _), c in zip(bins, cache_rows):
        rows.append(dict(version=c["version"], release=c["release"], role="cache", frag=c["frag"],
                         fork=c["fork"], runs=1, refused=0))
        for role in ("sessions", "queue", "mixed"):
            got = [redis_role(server, role, maxmemory, seed) for seed in range(runs)]
            row = dict(version=c["version"], release=c["release"], role=role,
                       frag=max(g[0] for g in got), fork=max(g[1] for g in got), runs=runs,
                       refused=max(g[2] for g in got))
            print(json.dumps(dict(row, each=got)), file=sys.stderr)
            rows.append(row)
    out = ROOT / "data/redis-roles.tsv"
    with open(out, "w") as f:
        f.write("# Redis fragmentation and fork copy per role, measured by scripts/calibrate-memory.py on "
                f"{time.strftime('%Y-%m-%d')} (docs/budget-model.md explains each): maxmemory 128 MB, "
                "the role's policy and workload, the largest of `runs` runs; cache is this run's churn "
                "(data/redis-memory.tsv, whose rows dbtune sizes a cache with).\n")
        f.write("# version\trelease\trole\tfragmentation\tfork_copy\truns\twrites_refused\n")
        for r in rows:
            f.write(f"{r['version']}\t{r['release']}\t{r['role']}\t{r['frag']:.3f}\t{r['fork']:.3f}"
                    f"\t{r['runs']}\t{r['refused']}\n")
    print(f"wrote {out}", file=sys.stderr)


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the servers run as postgres inside memory cgroups")
    args = sys.argv[1:]
    only = None
    if args[:1] == ["--only"]:
        only, args = args[1], args[2:]
    if only in (None, "postgres"):
        bins = args or [str(p) for p in sorted(cache().glob("postgres/*/bin"), key=lambda p: int(p.parent.name))]
        installed = Path(psql_bin()).parent
        if (installed / "postgres").exists() and not args:
            bins.append(str(installed))
        postgres(bins)
    if only in (None, "redis"):
        bins = redis_bins()
        redis_roles(bins, redis(bins))


if __name__ == "__main__":
    main()
