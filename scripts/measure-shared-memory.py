#!/usr/bin/env python3
"""Measures PostgreSQL's shared memory on the real servers, per major, and
writes the constants of dbtune's shared-memory model to
data/pg-shared-memory.tsv and what each preloadable library adds to
data/pg-preload-libraries.tsv.

Every number is the size of the postmaster's shared mappings (the main
segment, the SysV stub and the DSM control segment, read from
/proc/PID/maps) of a server started on a fresh data directory with
`-c` settings: exact bytes on every major (`postgres -C
shared_memory_size`, from 15, reports whole MB only).

The model (docs/budget-model.md), with MaxBackends = max_connections +
autovacuum slots (autovacuum_max_workers, or autovacuum_worker_slots from
18) + the autovacuum launcher (and from 17 the slot sync worker) +
max_worker_processes + max_wal_senders, and L = MaxBackends +
max_prepared_transactions:

    shared_buffers x (1 + buffer_overhead) + wal_buffers
    + min_dynamic_shared_memory + fixed
    + MaxBackends x slot
    + max_prepared_transactions x prepared
    + L x max_locks_per_transaction x lock
    + L x max_pred_locks_per_transaction x pred_lock
    + MaxBackends x track_activity_query_size x query
    + max_replication_slots x replication_slot
    + (18) (MaxBackends + 38) x io_max_concurrency x aio_handle

Each constant comes from a base point and one setting changed at a time
(the others already known); then `fixed` is raised by the largest shortfall
over a grid of points the fit did not use (shared_buffers 16 MB to 2 GB,
20 to 2000 connections, each with more locks, predicate locks, prepared
transactions, workers, query size or dynamic shared memory), so that the
model is never under on the grid; the largest excess over the grid is
recorded too.

Libraries: each .so of the build's lib directory preloaded alone at the
base point, minus the base; with a setting that sizes its memory
(pg_stat_statements.max) at two values, the bytes per unit. A library that
does not load in the build is left out.

Run as root (the servers run as the postgres user):
    scripts/measure-shared-memory.py [MAJOR...]
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("calibrate", ROOT / "scripts/calibrate-memory.py")
cal = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cal)

MIB = 1 << 20
AUX_18 = 38  # NUM_AUXILIARY_PROCS on 18: 6 + MAX_IO_WORKERS (32)

BASE = {"shared_buffers": "128MB", "wal_buffers": "4MB", "max_connections": "100",
        "max_locks_per_transaction": "64", "max_pred_locks_per_transaction": "64",
        "track_activity_query_size": "1024", "max_prepared_transactions": "0",
        "max_worker_processes": "8", "max_wal_senders": "10", "autovacuum_max_workers": "3",
        "max_replication_slots": "10", "min_dynamic_shared_memory": "0"}


def size(v):
    for u, m in {"kB": 1024, "MB": MIB, "GB": 1 << 30}.items():
        if v.endswith(u):
            return int(v[: -len(u)]) * m
    return int(v)


def backends(major, s):
    av = int(s.get("autovacuum_worker_slots", 16)) if major >= 18 else int(s["autovacuum_max_workers"])
    # The autovacuum launcher, and from 17 the slot sync worker.
    special = 2 if major >= 17 else 1
    return (int(s["max_connections"]) + av + special + int(s["max_worker_processes"])
            + int(s["max_wal_senders"]))


def io_concurrency(major, s):
    if major < 18:
        return 0
    v = int(s.get("io_max_concurrency", -1))
    if v >= 0:
        return v
    return min(64, max(1, size(s["shared_buffers"]) // 8192 // (backends(major, s) + AUX_18)))


def features(major, s):
    mb = backends(major, s)
    p = int(s["max_prepared_transactions"])
    lslots = mb + p
    return {
        "slot": mb,
        "prepared": p,
        "lock": lslots * int(s["max_locks_per_transaction"]),
        "pred_lock": lslots * int(s["max_pred_locks_per_transaction"]),
        "query": mb * int(s["track_activity_query_size"]),
        "replication_slot": int(s["max_replication_slots"]),
        "aio_handle": (mb + AUX_18) * io_concurrency(major, s) if major >= 18 else 0,
    }


def buckets(entries):
    """The bucket array of a shared hash table (dynahash): a pointer per
    bucket, buckets the next power of two of the entries, in segments of
    256 buckets."""
    n = 1
    while n < entries:
        n <<= 1
    return 8 * max(n, 256)


def lock_buckets(major, s):
    """The bucket arrays of the lock tables (locks, and their holders x 2)
    and the predicate-lock tables (targets, and locks x 2, with the 10% the
    server adds to them): steps at each power of two that a linear fit
    cannot follow."""
    f = features(major, s)
    lock, pred = f["lock"], f["pred_lock"]
    return buckets(lock) + buckets(2 * lock) + 1.1 * (buckets(pred) + buckets(2 * pred))


def model(major, c, s):
    sb = size(s["shared_buffers"])
    f = features(major, s)
    return (sb * (1 + c["buffer_overhead"]) + size(s["wal_buffers"])
            + size(s["min_dynamic_shared_memory"]) + c["fixed"] + lock_buckets(major, s)
            + sum(c[k] * v for k, v in f.items()))


class Major:
    def __init__(self, major, tmp):
        self.major = major
        self.bin = cal.cache() / "postgres" / str(major) / "bin"
        self.data = Path(tmp) / "data"
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, preexec_fn=cal.as_postgres())

    def measure(self, **change):
        s = dict(BASE, **{k: str(v) for k, v in change.items()})
        if self.major < 14:
            # min_dynamic_shared_memory is new in 14.
            s["min_dynamic_shared_memory"] = "0"
        given = {k: v for k, v in s.items() if not (k == "min_dynamic_shared_memory" and self.major < 14)}
        srv = cal.Server(self.bin, self.data, given)
        try:
            return srv.shared_mapped(), s
        finally:
            srv.stop()


def fit(m):
    major = m.major
    pin = {"io_max_concurrency": 1} if major >= 18 else {}
    base, s0 = m.measure(**pin)
    f0 = features(major, s0)
    c = {k: 0.0 for k in f0}

    def delta(key, **change):
        v, s = m.measure(**dict(pin, **change))
        f = features(major, s)
        known = sum(c[k] * (f[k] - f0[k]) for k in f if k != key)
        known += lock_buckets(major, s) - lock_buckets(major, s0)
        return (v - base - known) / (f[key] - f0[key])

    if major >= 18:
        c["aio_handle"] = delta("aio_handle", io_max_concurrency=33)
    c["lock"] = delta("lock", max_locks_per_transaction=1088)
    c["pred_lock"] = delta("pred_lock", max_pred_locks_per_transaction=1088)
    c["query"] = delta("query", track_activity_query_size=9216)
    c["replication_slot"] = delta("replication_slot", max_replication_slots=1010)
    c["slot"] = delta("slot", max_connections=1100)
    c["prepared"] = delta("prepared", max_prepared_transactions=1000)
    big, _ = m.measure(**dict(pin, shared_buffers="1GB"))
    c["buffer_overhead"] = (big - base) / (size("1GB") - size("128MB")) - 1
    c["fixed"] = 0.0
    c["fixed"] = base - model(major, c, s0)

    # Points the fit did not use; fixed covers the largest shortfall.
    grid = []
    for sb in ["16MB", "128MB", "2GB"]:
        for conns in [20, 500, 2000]:
            for extra in [{}, {"max_pred_locks_per_transaction": 256},
                          {"max_prepared_transactions": 100, "max_locks_per_transaction": 256},
                          {"max_worker_processes": 32, "max_wal_senders": 20, "autovacuum_max_workers": 10},
                          {"min_dynamic_shared_memory": "64MB", "track_activity_query_size": 4096}]:
                grid.append(dict(shared_buffers=sb, max_connections=conns, **extra))
    results = []
    for point in grid:
        s = dict(BASE, **{k: str(v) for k, v in point.items()})
        if major < 14:
            s["min_dynamic_shared_memory"] = "0"
        sb = size(s["shared_buffers"])
        s["wal_buffers"] = f"{min(max(sb // 32, 64 * 1024), 16 * MIB) // 1024}kB"
        real, _ = m.measure(**s)
        results.append((real, s))
    short = max(real - model(major, c, s) for real, s in results)
    c["fixed"] += max(0.0, short)
    for real, s in results:
        print(f"  {major} {model(major, c, s) / real - 1:+.4f} {real / MIB:.1f} MiB "
              + " ".join(f"{k}={v}" for k, v in s.items() if BASE.get(k) != v), file=sys.stderr)
    over = max(model(major, c, s) / real - 1 for real, s in results)
    c["grid_over"] = over
    c["grid_points"] = len(results)
    return c, base, s0


def libraries(m, base):
    """Bytes each loadable library adds at the base point (and per
    pg_stat_statements.max entry); on 18 with io_max_concurrency pinned as
    at the base point."""
    pin = {"io_max_concurrency": 1} if m.major >= 18 else {}
    lib_dir = m.bin.parent / "lib" / "postgresql"
    if not lib_dir.is_dir():
        lib_dir = m.bin.parent / "lib"
    out = []
    for so in sorted(lib_dir.glob("*.so")):
        name = so.stem
        try:
            v, _ = m.measure(**dict(pin, shared_preload_libraries=name))
        except RuntimeError:
            continue  # does not load in this build (a missing libperl, libpython...)
        per = 0.0
        fixed = v - base
        if name == "pg_stat_statements":
            v2, _ = m.measure(**dict(pin, shared_preload_libraries=name, **{"pg_stat_statements.max": 20000}))
            per = (v2 - v) / 15000
            fixed = v - base - per * 5000
        out.append((name, max(0, int(fixed)), per))
    return out


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the servers run as the postgres user")
    majors = [int(a) for a in sys.argv[1:]] or [13, 14, 15, 16, 17, 18]
    rows, libs = {}, {}
    for major in majors:
        with tempfile.TemporaryDirectory(prefix="dbtune-shm-") as tmp:
            os.chmod(tmp, 0o755)
            os.chown(tmp, cal.PG.pw_uid, cal.PG.pw_gid)
            m = Major(major, tmp)
            version = subprocess.run([str(m.bin / "postgres"), "--version"], capture_output=True,
                                     text=True).stdout.split()[2]
            c, base, _ = fit(m)
            rows[major] = (version, c)
            print(major, version, c, file=sys.stderr)
            libs[major] = libraries(m, base)
    date = time.strftime("%Y-%m-%d")
    out = ROOT / "data/pg-shared-memory.tsv"
    kept = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line and not line.startswith("#") and int(line.split("\t")[0]) not in rows:
                kept[int(line.split("\t")[0])] = line
    cols = ["buffer_overhead", "fixed", "slot", "prepared", "lock", "pred_lock", "query",
            "replication_slot", "aio_handle", "grid_over"]
    for major, (version, c) in rows.items():
        kept[major] = "\t".join([str(major), version, f"{c['buffer_overhead']:.5f}", str(int(c["fixed"]) + 1)]
                                + [f"{c[k]:.4f}" for k in cols[2:-1]] + [f"{c['grid_over']:+.4f}"])
    with open(out, "w") as f:
        f.write(f"# PostgreSQL shared memory measured by scripts/measure-shared-memory.py on {date} "
                "(docs/budget-model.md explains each column).\n")
        f.write("# major\tversion\t" + "\t".join(cols) + "\n")
        for major in sorted(kept):
            f.write(kept[major] + "\n")
    out = ROOT / "data/pg-preload-libraries.tsv"
    kept = []
    if out.exists():
        kept = [l for l in out.read_text().splitlines()
                if l and not l.startswith("#") and int(l.split("\t")[0]) not in libs]
    for major, items in libs.items():
        for name, fixed, per in items:
            kept.append(f"{major}\t{name}\t{fixed}\t{per:.1f}")
    kept.sort(key=lambda l: (int(l.split("\t")[0]), l.split("\t")[1]))
    with open(out, "w") as f:
        f.write(f"# Shared memory each library adds when preloaded, measured by "
                f"scripts/measure-shared-memory.py on {date}:\n"
                "# bytes over the base point (rounded to pages), and for pg_stat_statements the bytes per\n"
                "# pg_stat_statements.max entry (the fixed part then at 0 entries). A library absent here\n"
                "# did not load in that major's build.\n")
        f.write("# major\tlibrary\tfixed_bytes\tbytes_per_unit\n")
        for line in kept:
            f.write(line + "\n")
    print("wrote data/pg-shared-memory.tsv, data/pg-preload-libraries.tsv", file=sys.stderr)


if __name__ == "__main__":
    main()
