"""Dispatch throughput of the scheduler with job graphs and comparators versus without, in the
same process.

The scheduler's engine (every dispatch decision: submit, assign, report, certify) is driven
directly, without HTTP or the catalog, over N jobs: as independent jobs; as a graph (half of
them roots, each other job after two of those, held until they are certified and released as
they are: the hosts are never short of work, so the ratio is the graph's own cost); and as that graph with a comparator, every result different from the others and found
equivalent to them (the quorum over equivalences). Rounds alternate and the median ratios are
printed (target: no drop over 10 %, ratio >= 0.90). The comparator's own work (reading and
comparing two results) runs on the catalog's reader threads, not on the dispatch path; its cost is
the app's, and is printed apart for `numeric` on a small JSON output.

    python -m bench.bench_graphs                  # 20,000 jobs, 5 rounds each
    python -m bench.bench_graphs --jobs 50000 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from xwpy.compare import numeric
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

GiB = 1 << 30
HOSTS = 64
SLOTS = 4


def _jobs(n: int, graph: bool, rnd: random.Random) -> list[NewJob]:
    out = []
    roots = max(2, n // 2)
    for i in range(n):
        after_new = tuple(sorted(set(rnd.sample(range(roots), 2)))) if graph and i >= roots else ()
        out.append(NewJob(7, 1, Policy(2, 2, 4, 3), PUBLIC, GiB, {"inputs": []}, after_new=after_new))
    return out


def run(n: int, graph: bool, seed: int, comparator: bool = False) -> float:
    """Jobs certified per second through the engine, submission included."""
    rnd = random.Random(seed)
    e = Engine(lease_seconds=1e9)
    for h in range(1, HOSTS + 1):
        e.add_host(HostState(h, 100 + h, "", 64 * GiB, last_alive=0.0, cores=SLOTS))
    e.refresh_pool(0.0)
    new = _jobs(n, graph, rnd)
    t0 = time.perf_counter()
    e.add_jobs(new, 0.0)
    certified = 0
    now = 1.0
    while e.jobs:
        now += 1
        progressed = False
        for h in range(1, HOSTS + 1):
            if not e.has_ready():  # as the dispatcher: workers are woken when work appears, not spun
                break
            reps, _ = e.assign(h, SLOTS, now)
            if reps:
                progressed = True
                if comparator:
                    out = [Report(r.id, True, digest=f"{r.id:064x}", size=1,
                                  equivalent=frozenset(x.digest for x in e.jobs[r.job_id].replicas if x.digest))
                           for r in reps]
                    _, ch = e.report(h, out, now)
                else:
                    _, ch = e.report(h, [Report(r.id, True, digest="d" * 64, size=1) for r in reps], now)
                certified += len(ch.finished)
        if not progressed and e.jobs and not e.has_ready():
            raise RuntimeError(f"{len(e.jobs)} jobs left that no host takes")
    elapsed = time.perf_counter() - t0
    assert certified == n
    return n / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    plain, graphs, compared = [], [], []
    for r in range(a.rounds):  # alternated: a busy machine weighs on all alike
        plain.append(run(a.jobs, False, r))
        graphs.append(run(a.jobs, True, r))
        compared.append(run(a.jobs, True, r, comparator=True))
    ratios = [g / q for g, q in zip(graphs, plain)]
    ratios_c = [c / q for c, q in zip(compared, plain)]
    load = os.getloadavg()[0]
    print(f"scheduler dispatch, {a.jobs} jobs (replication 2, {HOSTS} hosts x {SLOTS} slots), load {load:.1f}:")
    print(f"  independent jobs: {statistics.median(plain):,.0f} jobs/s (min {min(plain):,.0f}, max {max(plain):,.0f})")
    print(f"  job graph:        {statistics.median(graphs):,.0f} jobs/s (min {min(graphs):,.0f}, max {max(graphs):,.0f})")
    print(f"  graph + comparator: {statistics.median(compared):,.0f} jobs/s "
          f"(min {min(compared):,.0f}, max {max(compared):,.0f})")
    print(f"  ratio graph/independent: median {statistics.median(ratios):.2f} "
          f"(per round: {', '.join(f'{x:.2f}' for x in ratios)})   (target >= 0.90)")
    print(f"  ratio graph+comparator/independent: median {statistics.median(ratios_c):.2f} "
          f"(per round: {', '.join(f'{x:.2f}' for x in ratios_c)})   (target >= 0.90)")
    a_out = {"stdout": b'{"n": 7, "x": 8.311873115, "y": [0.000911881965, 1.5]}\n'}
    b_out = {"stdout": b'{"n": 7, "x": 8.311873115000001, "y": [0.0009118819650001, 1.5]}\n'}
    t0 = time.perf_counter()
    for _ in range(20_000):
        numeric(a_out, b_out, {"rtol": 1e-9})
    print(f"  numeric comparator, one pair of small JSON outputs: {(time.perf_counter() - t0) / 20_000 * 1e6:.1f} us "
          "(on a catalog reader thread, per pair of results)")


if __name__ == "__main__":
    main()
