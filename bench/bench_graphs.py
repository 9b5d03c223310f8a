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

Each run is timed in the process's CPU seconds (the engine is one thread: on a busy machine the
wall clock measures the neighbours too, and its per-round ratios swung from 0.56 to 1.18 at load
3.4); the wall-clock figures are printed beside. Every job's results have a digest of their own, in
the reference too (one digest shared by every job spared the reference the strings every real
result has). Last, the settling of one job of many results, each found equivalent to all the
earlier (a numeric app with a large quorum): with the job's tally kept from one decision to the
next (quorum.Tally) and counted from scratch at each, as before; and the comparisons of a job's
results, each read and parsed once (compare.Prepared) and at each comparison, as before.

    python -m bench.bench_graphs                  # 20,000 jobs, 5 rounds each
    python -m bench.bench_graphs --jobs 50000 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from xwpy import archive
from xwpy.compare import Prepared, equivalent, numeric, prepare
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.lifecycle import ReplicaStatus
from xwpy.server.scheduler.quorum import Policy, ReplicaView, Tally, decide

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


def run(n: int, graph: bool, seed: int, comparator: bool = False) -> tuple[float, float]:
    """Jobs certified per CPU second and per wall-clock second through the engine, submission included."""
    rnd = random.Random(seed)
    e = Engine(lease_seconds=1e9)
    for h in range(1, HOSTS + 1):
        e.add_host(HostState(h, 100 + h, "", 64 * GiB, last_alive=0.0, cores=SLOTS))
    e.refresh_pool(0.0)
    new = _jobs(n, graph, rnd)
    t0, c0 = time.perf_counter(), time.process_time()
    e.add_jobs(new, 0.0)
    certified = 0
    aside = 0.0  # CPU seconds making the reports (see below)
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
                # The workers' reports, and the comparator's verdicts on them, are made outside the
                # dispatch path (by workers; on the catalog's reader threads): their CPU is left out.
                s0 = time.process_time()
                if comparator:
                    out = [Report(r.id, True, digest=f"{r.id:064x}", size=1,
                                  equivalent=frozenset(x.digest for x in e.jobs[r.job_id].replicas if x.digest))
                           for r in reps]
                else:
                    out = [Report(r.id, True, digest=f"{r.job_id:064x}", size=1) for r in reps]
                aside += time.process_time() - s0
                _, ch = e.report(h, out, now)
                certified += len(ch.finished)
        if not progressed and e.jobs and not e.has_ready():
            raise RuntimeError(f"{len(e.jobs)} jobs left that no host takes")
    elapsed, cpu = time.perf_counter() - t0 - aside, time.process_time() - c0 - aside
    assert certified == n
    return n / cpu, n / elapsed


def settle_costs(results: int) -> tuple[float, float]:
    """Seconds to settle one job as its ``results`` results arrive one by one, each found
    equivalent to every earlier one (quorum = all of them): with its tally kept, and recounted."""
    digests = [f"{i:064x}" for i in range(results)]
    views = [ReplicaView(i + 1, ReplicaStatus.DONE, d, equivalent=frozenset(digests[:i])) for i, d in enumerate(digests)]
    policy = Policy(results, results, results, 1)
    out = []
    for keep in (True, False):
        c0 = time.process_time()
        tally = Tally()
        for k in range(1, results + 1):
            decide(policy, views[:k], tally if keep else None)
        out.append(time.process_time() - c0)
    return out[0], out[1]


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
    load = os.getloadavg()[0]
    print(f"scheduler dispatch, {a.jobs} jobs (replication 2, {HOSTS} hosts x {SLOTS} slots), load {load:.1f}:")

    def line(name: str, runs: list[tuple[float, float]]) -> None:
        cpu, wall = [c for c, _ in runs], [w for _, w in runs]
        print(f"  {name:20s} {statistics.median(cpu):,.0f} jobs per CPU second (min {min(cpu):,.0f}, max {max(cpu):,.0f}); "
              f"wall clock {statistics.median(wall):,.0f} jobs/s")

    line("independent jobs:", plain)
    line("job graph:", graphs)
    line("graph + comparator:", compared)
    for name, runs in (("graph", graphs), ("graph+comparator", compared)):
        ratios = [g[0] / q[0] for g, q in zip(runs, plain)]
        walls = [g[1] / q[1] for g, q in zip(runs, plain)]
        print(f"  ratio {name}/independent: median {statistics.median(ratios):.2f} "
              f"(per round: {', '.join(f'{x:.2f}' for x in ratios)}; wall clock median {statistics.median(walls):.2f})"
              "   (target >= 0.90)")
    for k in (16, 64, 256):
        kept, recounted = settle_costs(k)
        print(f"  settling one job of {k} results, each equivalent to all the earlier: {kept * 1e3:,.1f} ms with its "
              f"tally kept, {recounted * 1e3:,.1f} ms recounted at each result")
    a_out = {"stdout": b'{"n": 7, "x": 8.311873115, "y": [0.000911881965, 1.5]}\n'}
    b_out = {"stdout": b'{"n": 7, "x": 8.311873115000001, "y": [0.0009118819650001, 1.5]}\n'}
    t0 = time.perf_counter()
    for _ in range(20_000):
        numeric(a_out, b_out, {"rtol": 1e-9})
    print(f"  numeric comparator, one pair of small JSON outputs: {(time.perf_counter() - t0) / 20_000 * 1e6:.1f} us "
          "(on a catalog reader thread, per pair of results)")
    once, again = compare_costs(16)
    print(f"  comparing a job's 16 results each with the earlier ones (small JSON archives): {once * 1e3:.1f} ms with "
          f"each result read and parsed once (compare.Prepared), {again * 1e3:.1f} ms parsing them at every comparison")


def compare_costs(results: int) -> tuple[float, float]:
    """CPU seconds to compare each of a job's results with the earlier ones, as the coordinator
    does at each report: each result prepared once and kept, and read and parsed at each pair."""
    blobs = [archive.from_files({"stdout": f'{{"n": 7, "x": {8.311873115 + i * 1e-15!r}, "y": [0.000911881965, 1.5]}}\n'
                                 .encode()}) for i in range(results)]
    params = {"rtol": 1e-9}
    c0 = time.process_time()
    kept = Prepared()
    for k in range(results):
        def prepared(i: int):
            return kept.get(i, lambda: (prepare(numeric, archive.read_files(blobs[i]), params), len(blobs[i])))
        mine = prepared(k)
        assert all(equivalent(numeric, mine, prepared(i), params) for i in range(k))
    c1 = time.process_time()
    for k in range(results):
        mine = archive.read_files(blobs[k])
        for i in range(k):
            theirs = archive.read_files(blobs[i])
            assert numeric(mine, theirs, params) and numeric(theirs, mine, params)
    return c1 - c0, time.process_time() - c1


if __name__ == "__main__":
    main()
