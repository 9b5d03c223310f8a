"""Dispatch benchmark: how many replicas one coordinator hands out and certifies, how fast a small
job comes back, and whether that holds as the catalog grows.

    python -m bench.bench_dispatch            # the whole table (about 15 minutes)
    python -m bench.bench_dispatch --quick    # a smaller table (about 6 minutes)
    python -m bench.bench_dispatch --versus-dask-only   # only the side-by-side with Dask (about 4 minutes)

Simulated workers (``bench/loadgen.py``, one separate process, many light clients) speak the real
HTTPS protocol to a real coordinator process. Every transition is persisted (SQLite by default;
PostgreSQL when --pg URL is given or XWPY_TEST_PG is set). Dask distributed runs the same count of
trivial tasks on this machine in the same run, for a ratio.

The ratio with Dask measures the same work on both sides: N trivial jobs (tasks) from the first
submission to the last result — submission included on both — with xwpy and Dask alternated
ROUNDS times in one invocation (each side's servers started before and kept idle while the other
runs), and prints min / median / max of each and the median ratio: figures that hold on a busy
machine, not a best run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import clients
from xwpy.localgrid import LocalGrid, fresh_postgres_database, wait_for

@dataclass
class Run:
    label: str
    workers: int
    replication: int
    db: str
    prefill: int = 0
    replicas_per_s: float = 0.0
    jobs_per_s: float = 0.0
    commits_per_s: float = 0.0
    rss_mb: float = 0.0
    cpu: float = 0.0


class Bench:
    def __init__(self, root: Path, db_url: str | None):
        self.root = root
        self.db_url = db_url

    def grid(self, name: str, db: str) -> LocalGrid:
        root = self.root / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        database = fresh_postgres_database(self.db_url) if db == "postgres" else None
        return LocalGrid(root, heartbeat=10.0, database=database)

    def loadgen(self, grid: LocalGrid, token: str, workers: int, seconds: float, slots: int = 4) -> subprocess.Popen:
        return clients.spawn("bench.loadgen", grid, token, seconds, log=os.environ.get("XWPY_LOADGEN_LOG"),
                             workers=workers, slots=slots)

    def throughput(self, run: Run, seconds: float, prefill_pending: int = 0) -> Run:
        grid = self.grid(run.label.replace(" ", "_"), run.db)
        try:
            if run.prefill:
                prefill(grid.cfg.database_url, run.prefill, prefill_pending)
            grid.start_coordinator()
            admin = grid.client()
            vol = grid.user("vol", "worker")
            alice = grid.client(grid.user("alice"))
            app = "trivial"
            alice.register_app(name=app, command=["true"], replication=run.replication, quorum=min(run.replication, 2))
            backlog = int(2500 * (seconds + 20) * (1 if run.replication == 1 else 0.5))
            for start in range(0, backlog, 5000):
                alice.submit([{"app": app, "args": [str(i)]} for i in range(start, min(backlog, start + 5000))])
            lg = self.loadgen(grid, vol, run.workers, seconds + 15)
            proc = psutil.Process(grid.coordinator.popen.pid)
            wait_for(lambda: admin.call("GET", "/stats")["hosts"] >= run.workers, 60, "workers to register")
            time.sleep(3)  # warm-up: connections open, queues full (measurement window, not a sync)
            s0, t0 = admin.call("GET", "/stats"), time.monotonic()
            proc.cpu_percent()
            rss = 0.0
            while time.monotonic() - t0 < seconds:
                time.sleep(0.5)
                rss = max(rss, proc.memory_info().rss / 2**20)
            s1, t1 = admin.call("GET", "/stats"), time.monotonic()
            run.cpu = proc.cpu_percent()
            dt = t1 - t0
            run.replicas_per_s = (s1["dispatched"] - s0["dispatched"]) / dt
            run.jobs_per_s = (s1["certified"] - s0["certified"]) / dt
            run.commits_per_s = (s1["commits"] - s0["commits"]) / dt
            run.rss_mb = rss
            lg.kill()
            lg.wait()
            return run
        finally:
            grid.close()

    def idle_site(self, grid: LocalGrid, replication: int, workers: int, seconds: float, slots: int = 4,
                  idle: int | None = None):
        """``grid``'s coordinator started, alice's app "trivial" registered and ``workers`` simulated
        workers waiting for work (at least ``idle`` of them): (admin, alice, the load generator)."""
        grid.start_coordinator()
        admin = grid.client()
        vol = grid.user("vol", "worker")
        alice = grid.client(grid.user("alice"))
        alice.register_app(name="trivial", command=["true"], replication=replication, quorum=min(replication, 2))
        lg = self.loadgen(grid, vol, workers, seconds, slots=slots)
        try:
            wait_for(lambda: admin.call("GET", "/stats")["waiting_workers"] >= (idle or workers), 120, "idle workers")
        except BaseException:
            lg.kill()
            lg.wait()
            raise
        return admin, alice, lg

    def latency(self, samples: int) -> tuple[float, float, float]:
        grid = self.grid("latency", "sqlite")
        try:
            admin, alice, lg = self.idle_site(grid, 3, 6, 600, slots=1)
            times = []
            for i in range(samples + 10):
                t = time.perf_counter()
                [jid] = alice.submit([{"app": "trivial", "args": [str(i)]}])
                job = alice.job(jid, wait=30)
                dt = time.perf_counter() - t
                assert job["status"] == "COMPLETED", job
                if i >= 10:  # the first few open connections
                    times.append(dt * 1000)
                wait_for(lambda: admin.call("GET", "/stats")["waiting_workers"] >= 6, 30, "workers idle again", 0.001)
            lg.kill()
            lg.wait()
            times.sort()
            return statistics.median(times), times[int(len(times) * 0.99) - 1], times[-1]
        finally:
            grid.close()


def prefill(url: str, completed: int, pending: int) -> None:
    """Fill a fresh SQLite catalog with certified jobs (one replica each) and pending jobs, fast."""
    from sqlalchemy import create_engine

    from xwpy import tokens
    from xwpy.server.catalog import revision

    eng = create_engine(url)
    revision.open_or_create(eng)
    eng.dispose()
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    with db:
        db.execute("INSERT INTO users (id, login, token_hash, role, group_name, disabled, created_at) VALUES (900, 'history', ?, 'user', '', 0, ?)",
                   (tokens.token_hash("history-" + str(now)), now))
        db.execute("INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, created_at) "
                   "VALUES (900, 'history', 900, 'private', '[\"true\"]', ?, 'quorum', 1, 1, ?)",
                   (json.dumps({"wall_seconds": 60, "cpu_seconds": 60, "memory_bytes": 1 << 28, "output_bytes": 1 << 20, "processes": 4}), now))
        db.execute("INSERT INTO hosts (id, owner_id, name, token_hash, cpus, memory, os, registered_at, last_alive, reputation) "
                   "VALUES (900, 900, 'history', ?, 1, 0, '', ?, ?, 0)", (tokens.token_hash("h-" + str(now)), now - 1e5, now - 1e5))
    step = 100_000
    for start in range(1, completed + pending + 1, step):
        end = min(completed + pending, start + step - 1)
        jobs, reps = [], []
        for i in range(start, end + 1):
            done = i <= completed
            # A result digest as real ones are, spread over the whole key space: the index on
            # jobs.result_sha256 then grows as a real catalog's does (new results land on pages
            # all over it), not as a sorted run that new digests never reach.
            digest = hashlib.sha256(b"%d" % i).hexdigest()
            jobs.append((i, 900, 900, "history", json.dumps([str(i)]), "[]", "COMPLETED" if done else "PENDING", 1, 1, 3, 3,
                         1 << 28, "owner", "", digest if done else None, 2048 if done else None, now - 1e5))
            if done:
                reps.append((i, i, 900, "DONE", "VALID", now - 1e5, now - 1e5, 0, digest, 2048))
        with db:
            db.executemany("INSERT INTO jobs (id, app_id, owner_id, batch, args, inputs, status, replication, quorum, max_replicas, "
                           "max_errors, memory, visibility, vis_group, result_sha256, result_size, submitted_at) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
            db.executemany("INSERT INTO replicas (id, job_id, host_id, status, validation, lease_expires, assigned_at, exit_code, "
                           "result_sha256, result_size) VALUES (?,?,?,?,?,?,?,?,?,?)", reps)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


@dataclass
class Pair:
    """One growth pair: the same run with the small and with the large catalog."""

    small: Run
    large: Run

    @property
    def change(self) -> float:
        """Throughput change from the small catalog to the large one."""
        return self.large.replicas_per_s / self.small.replicas_per_s - 1

    @property
    def cpu_change(self) -> float:
        """Change of the coordinator's CPU time per replica (less moved by what else runs)."""
        return cpu_per_replica(self.large) / cpu_per_replica(self.small) - 1


def cpu_per_replica(run: Run) -> float:
    """The coordinator's CPU seconds (all its threads) per replica dispatched."""
    return run.cpu / 100 / run.replicas_per_s if run.replicas_per_s else float("nan")


def growth_pairs(bench: Bench, rounds: int, sizes: tuple[int, int], seconds: float) -> list[Pair]:
    """Throughput (SQLite, 1,000 workers, r1) with ``sizes[0]`` and with ``sizes[1]`` certified
    jobs in the catalog, ``rounds`` pairs, the order within a pair swapped every round (the large
    run first in every other pair), so that a machine's load drifting during the runs, or the
    second run of a pair finding the page cache warmer, weighs on both sizes alike."""
    pairs = []
    for r in range(rounds):
        order = sizes if r % 2 == 0 else sizes[::-1]
        runs = {n: bench.throughput(Run(f"sqlite w1000 r1 +{n:,} jobs", 1000, 1, "sqlite", prefill=n), seconds)
                for n in order}
        pair = Pair(runs[sizes[0]], runs[sizes[1]])
        pairs.append(pair)
        print(f"  growth pair {r + 1}/{rounds} ({'small first' if r % 2 == 0 else 'large first'}): "
              f"{sizes[0]:,} jobs {pair.small.replicas_per_s:,.0f}, {sizes[1]:,} jobs {pair.large.replicas_per_s:,.0f} "
              f"replicas/s ({pair.change:+.1%}); CPU per replica {cpu_per_replica(pair.small) * 1e3:.3f} / "
              f"{cpu_per_replica(pair.large) * 1e3:.3f} ms ({pair.cpu_change:+.1%})", flush=True)
    return pairs


def print_growth(pairs: list[Pair], sizes: tuple[int, int]) -> list[str]:
    """The growth figures: each size's spread, and the median of the pairs' changes (a pair's two
    runs ran minutes apart at most; their ratio carries less of the machine's drift than the ratio
    of two medians would)."""
    changes = [p.change for p in pairs]
    cpu = [p.cpu_change for p in pairs]
    return [
        f"growth {sizes[0]:,} -> {sizes[1]:,} jobs in the catalog, {len(pairs)} pairs (order alternated):",
        f"  {sizes[0]:,}: {Spread([p.small.replicas_per_s for p in pairs])} replicas/s; "
        f"{sizes[1]:,}: {Spread([p.large.replicas_per_s for p in pairs])} replicas/s",
        f"  throughput change per pair: median {statistics.median(changes):+.1%} "
        f"(min {min(changes):+.1%}, max {max(changes):+.1%})   (target: no drop over 10%)",
        f"  coordinator CPU per replica, change per pair: median {statistics.median(cpu):+.1%} "
        f"(min {min(cpu):+.1%}, max {max(cpu):+.1%}); {sizes[0]:,}: "
        f"{statistics.median(cpu_per_replica(p.small) for p in pairs) * 1e3:.3f} ms, {sizes[1]:,}: "
        f"{statistics.median(cpu_per_replica(p.large) for p in pairs) * 1e3:.3f} ms (medians)",
    ]


def dask_rate(tasks: int) -> tuple[float, str]:
    """Trivial tasks per second through Dask distributed on this machine: the better of two
    worker processes and two worker threads (in-process), so that Dask gets its best case."""
    import logging

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    best = (0.0, "")
    for processes in (True, False):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.gather(client.map(_inc, range(100), pure=False))  # warm-up
            t = time.perf_counter()
            client.gather(client.map(_inc, range(tasks), pure=False))
            rate = tasks / (time.perf_counter() - t)
        best = max(best, (rate, "2 worker processes" if processes else "2 worker threads"))
    return best


def _inc(x: int) -> int:
    return x + 1


@dataclass
class Spread:
    values: list[float]

    def __str__(self) -> str:
        v = sorted(self.values)
        return f"min {v[0]:,.0f} / median {statistics.median(v):,.0f} / max {v[-1]:,.0f}"

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def versus_dask(bench: Bench, rounds: int, jobs: int, workers: int = 1000) -> tuple[Spread, Spread, str]:
    """``jobs`` trivial jobs through xwpy (replication 1, ``workers`` simulated workers) and as
    many trivial tasks through Dask, each timed from the first submission to the last result,
    alternated ``rounds`` times. Dask runs in its better configuration on this machine (picked
    once, before the rounds: two worker processes or two worker threads)."""
    import logging

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    _, dask_how = dask_rate(min(jobs, 5000))
    grid = bench.grid("versus_dask", "sqlite")
    ours, theirs = [], []
    lg = None
    try:
        admin, alice, lg = bench.idle_site(grid, 1, workers, 24 * 3600, idle=workers // 2)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=dask_how.endswith("processes"),
                          dashboard_address=None) as cluster, Client(cluster) as dask:
            dask.gather(dask.map(_inc, range(100), pure=False))  # warm-up
            for r in range(rounds):
                certified = admin.call("GET", "/stats")["certified"]
                t = time.perf_counter()
                for start in range(0, jobs, 5000):
                    alice.submit([{"app": "trivial", "args": [f"{r}.{i}"]} for i in range(start, min(jobs, start + 5000))])
                wait_for(lambda: admin.call("GET", "/stats")["certified"] >= certified + jobs, 600,
                         "the round's jobs to be certified", 0.05)
                ours.append(jobs / (time.perf_counter() - t))
                t = time.perf_counter()
                dask.gather(dask.map(_inc, range(jobs), pure=False))
                theirs.append(jobs / (time.perf_counter() - t))
                print(f"  round {r + 1}/{rounds}: xwpy {ours[-1]:,.0f} jobs/s, Dask {theirs[-1]:,.0f} tasks/s", flush=True)
    finally:
        if lg is not None:
            lg.kill()
            lg.wait()
        grid.close()
    return Spread(ours), Spread(theirs), dask_how


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {one:.2f} (1 min) / {five:.2f} (5 min) before the runs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smaller table")
    p.add_argument("--seconds", type=float, default=15.0, help="measurement window per run")
    p.add_argument("--pg", default=os.environ.get("XWPY_TEST_PG"), help="PostgreSQL URL (adds PostgreSQL runs)")
    p.add_argument("--json", dest="json_out", help="also write the results here")
    p.add_argument("--rounds", type=int, default=5, help="xwpy and Dask alternated this many times (at least 5 for a median)")
    p.add_argument("--versus-dask-only", action="store_true", help="only the side-by-side with Dask")
    args = p.parse_args()
    try:  # the reference: say so before ten minutes of runs rather than crash after them
        import dask.distributed  # noqa: F401
    except ImportError:
        sys.exit("bench_dispatch: Dask (its reference) is missing: run 'scripts/bench dispatch', "
                 "or 'scripts/setup test,postgres,bench' first")
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-"))
    bench = Bench(root, args.pg)
    print(load_note(), flush=True)
    side_jobs = 5000 if args.quick else 10_000
    if args.versus_dask_only:
        try:
            ours, theirs, how = versus_dask(bench, args.rounds, side_jobs)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print_versus(ours, theirs, how, side_jobs)
        return
    runs: list[Run] = []
    dbs = ["sqlite"] + (["postgres"] if args.pg else [])
    try:
        shapes = [(1000, 1), (1000, 3)] if args.quick else [(100, 1), (1000, 1), (100, 3), (1000, 3)]
        for db in dbs:
            for workers, r in shapes:
                run = bench.throughput(Run(f"{db} w{workers} r{r}", workers, r, db), args.seconds)
                runs.append(run)
                print(f"  {run.label}: {run.replicas_per_s:,.0f} replicas/s, {run.jobs_per_s:,.0f} jobs/s certified", flush=True)
        growth = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
        for n in growth:
            run = bench.throughput(Run(f"sqlite w1000 r1 +{n:,} jobs", 1000, 1, "sqlite", prefill=n), args.seconds)
            runs.append(run)
            print(f"  {run.label}: {run.replicas_per_s:,.0f} replicas/s", flush=True)
        mem = bench.throughput(Run("sqlite w1000 r1 100k pending", 1000, 1, "sqlite", prefill=1), args.seconds,
                               prefill_pending=100_000)
        runs.append(mem)
        print(f"  memory: {mem.rss_mb:.0f} MiB RSS", flush=True)
        p50, p99, worst = bench.latency(100 if args.quick else 300)
        print(f"  latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
        ours, theirs, dask_how = versus_dask(bench, args.rounds, side_jobs)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ref = next(r for r in runs if r.label == "sqlite w1000 r1")
    print()
    print(f"{'run':36} {'replicas/s':>11} {'jobs/s':>9} {'commits/s':>10} {'coord CPU':>9} {'RSS MiB':>8}")
    for r in runs:
        print(f"{r.label:36} {r.replicas_per_s:11,.0f} {r.jobs_per_s:9,.0f} {r.commits_per_s:10,.0f} {r.cpu:8.0f}% {r.rss_mb:8.0f}")
    first_growth = next(r for r in runs if r.prefill == growth[0])
    last_growth = next(r for r in runs if r.prefill == growth[-1])
    change = last_growth.replicas_per_s / first_growth.replicas_per_s - 1
    print()
    print(f"throughput, SQLite, 1,000 workers, replication 1:  {ref.replicas_per_s:,.0f} replicas/s   (target >= 2,000)")
    print_versus(ours, theirs, dask_how, side_jobs)
    print(f"latency submit -> certified, replication 3:      p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms   (targets 50 / 250)")
    print(f"growth {growth[0]:,} -> {growth[-1]:,} jobs in the catalog:  throughput {change:+.1%}   (target: no drop over 10%)")
    print(f"coordinator RSS, 1,000 workers + 100k pending jobs: {mem.rss_mb:.0f} MiB   (target <= 300)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"runs": [r.__dict__ for r in runs], "xwpy_vs_dask": [ours.values, theirs.values],
                                                   "latency_ms": [p50, p99, worst]}, indent=2))


def print_versus(ours: Spread, theirs: Spread, dask_how: str, jobs: int) -> None:
    ratios = [a / b for a, b in zip(ours.values, theirs.values)]
    print(f"side by side, {jobs:,} trivial jobs from first submission to last result, {len(ours.values)} rounds alternated:")
    print(f"  xwpy (SQLite, 1,000 workers, replication 1): {ours} jobs/s")
    print(f"  Dask distributed ({dask_how}):        {theirs} tasks/s")
    print(f"  ratio xwpy/Dask: median {ours.median / theirs.median:.2f} (per round: "
          f"{', '.join(f'{x:.2f}' for x in ratios)})   (target >= 5)")


if __name__ == "__main__":
    main()
