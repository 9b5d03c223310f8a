"""Fencing's cost (issue 17): the scheduler's writes with the lease's epoch checked in every
transaction, against the same writes unchecked, in one process, rounds alternated.

    python -m bench.bench_fencing                 # SQLite, and PostgreSQL when XWPY_TEST_PG is set
    python -m bench.bench_fencing --jobs 2000 --rounds 5

Each round makes a fresh catalog, then drives the real scheduler engine (jobs submitted, one
replica assigned at a time to each of 8 hosts, each result reported: the dispatch path's writes)
and commits every step through the real catalog connector, all steps of a wave queued together
as a busy coordinator queues them (group commit). The coordinator's process adds HTTP and the
reactor around the same writes, so the ratio here is the fence's share of the write path at most.
Prints replicas/s min / median / max for each side and the ratio of medians (fenced / unfenced).
Whole-round rates on a busy machine spread by more than the check costs, so the fenced rounds
also time the check itself (``lease.check``, wrapped here): its share of the time spent in write
transactions, and its mean per transaction — the fence's cost without the machine's noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from twisted.internet import defer, task

from xwpy import tokens
from xwpy.server.catalog import jobs as jobs_catalog
from xwpy.server.catalog import lease
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

HOSTS = 8


class CheckTimer:
    """``lease.check`` timed: the connector calls it through the module, once per write transaction."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0
        self._check = lease.check

    def __call__(self, conn, mine: int) -> None:
        t = time.perf_counter()
        try:
            self._check(conn, mine)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def _setup(conn) -> int:
    owner = users_catalog.insert(conn, login="owner", role="user", group="", token_hash=tokens.token_hash("o"), now=1.0)
    conn.execute(text("INSERT INTO apps (id, name, owner_id, access, command, limits, validator, replication, quorum, "
                      "created_at) VALUES (1, 'a', :o, 'public', '[]', '{}', 'quorum', 2, 2, 0)"), {"o": owner})
    return owner


async def one_round(reactor, url: str, fenced: bool, n_jobs: int, checks: list | None = None) -> float:
    """Replicas certified per second over one round on a fresh catalog at ``url``; a fenced round
    appends (check seconds, write-transaction seconds, transactions) to ``checks``."""
    cat = Catalog.open(url, reactor)
    timer = CheckTimer()
    lease.check = timer
    try:
        if fenced:
            held = lease.for_engine(cat.engine, lease.session_name(), ttl=60)
            cat.fence(held.try_lead().epoch)
        owner = await cat.write(_setup)
        hosts = [await cat.hosts.add(owner_id=owner, name=f"h{i}", token_hash=f"{i:064d}", cpus=1, memory=1, os="",
                                     now=0.0) for i in range(HOSTS)]
        eng = Engine(lease_seconds=3600)
        for h in hosts:
            eng.add_host(HostState(h, owner, "", 1 << 30, last_alive=0))
        row = {"app_id": 1, "owner_id": owner, "batch": "b", "args": ["x"], "inputs": [], "replication": 2,
               "quorum": 2, "max_replicas": 4, "max_errors": 2, "memory": 0, "visibility": "public", "vis_group": ""}
        started = time.perf_counter()
        writes = []
        for start in range(0, n_jobs, 100):
            _, ch = eng.add_jobs([NewJob(owner, 1, Policy(2, 2, 4, 2), PUBLIC, 0, dict(row))
                                  for _ in range(min(100, n_jobs - start))], 1.0)
            writes.append(cat.write(jobs_catalog.apply, ch, engine=True))
        await defer.gatherResults(writes)
        replicas = 0
        now = 2.0
        while eng.jobs:
            wave, reports = [], []
            for h in hosts:
                reps, ch = eng.assign(h, 1, now)
                if ch:
                    wave.append(cat.write(jobs_catalog.apply, ch, engine=True))
                reports += [(h, r) for r in reps]
            for h, r in reports:
                _, ch = eng.report(h, [Report(r.id, True, digest="d" * 64, size=3, exit_code=0)], now)
                wave.append(cat.write(jobs_catalog.apply, ch, engine=True))
            replicas += len(reports)
            await defer.gatherResults(wave)
            now += 1.0
            if not reports:
                raise RuntimeError("the engine assigned nothing with jobs left")
        rate = replicas / (time.perf_counter() - started)
        if fenced and checks is not None:
            checks.append((timer.seconds, cat.write_seconds, timer.calls))
        return rate
    finally:
        lease.check = timer._check
        await cat.close()


def fresh(base: str | None, tmp: Path, i: int) -> tuple[str, callable]:
    if base is None:
        path = tmp / f"c{i}.sqlite"
        return f"sqlite:///{path}", lambda: None
    from xwpy.localgrid import drop_postgres_database, fresh_postgres_database

    url = fresh_postgres_database(base)
    return url, lambda: drop_postgres_database(url)


async def measure(reactor, base: str | None, rounds: int, n_jobs: int) -> dict:
    out: dict = {False: [], True: [], "checks": []}
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        for r in range(rounds):
            for fenced in ((False, True) if r % 2 == 0 else (True, False)):  # alternated: drift cancels
                url, drop = fresh(base, Path(tmp), i)
                i += 1
                try:
                    from xwpy.server.catalog import revision
                    from xwpy.server.catalog.connector import make_engine

                    eng = make_engine(url)
                    revision.open_or_create(eng)
                    eng.dispose()
                    out[fenced].append(await one_round(reactor, url, fenced, n_jobs, out["checks"]))
                finally:
                    drop()
    return out


def report(name: str, got: dict) -> None:
    def stats(xs):
        return f"{min(xs):8.0f} {statistics.median(xs):8.0f} {max(xs):8.0f}"

    print(f"{name:<12} unfenced replicas/s min/median/max {stats(got[False])}")
    print(f"{name:<12} fenced   replicas/s min/median/max {stats(got[True])}")
    print(f"{name:<12} ratio of medians fenced/unfenced: {statistics.median(got[True]) / statistics.median(got[False]):.3f}")
    share = statistics.median(c / w for c, w, _ in got["checks"])
    per = statistics.median(c / n * 1e3 for c, _, n in got["checks"])
    tx = statistics.median(w / n * 1e3 for _, w, n in got["checks"])
    print(f"{name:<12} the check: {share:.1%} of write-transaction time (median of rounds), "
          f"{per:.3f} ms of a {tx:.2f} ms transaction")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pg", default=os.environ.get("XWPY_TEST_PG"), help="a PostgreSQL server URL (default: XWPY_TEST_PG)")
    args = p.parse_args(argv)

    async def run(reactor):
        print(f"fencing: {args.jobs} jobs r2 q2 on {HOSTS} hosts, {args.rounds} rounds each side, "
              f"load {os.getloadavg()[0]:.1f}")
        report("sqlite", await measure(reactor, None, args.rounds, args.jobs))
        if args.pg:
            report("postgresql", await measure(reactor, args.pg, args.rounds, args.jobs))

    task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
