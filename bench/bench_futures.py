"""Futures overhead: jobs/s through ``Grid.map`` (submit, follow with one long poll, get each job's
stdout) against raw batch submission (``Client.submit``, then polling the batch's summary every
50 ms until all are final, no result read), same jobs, same workers, one site, alternated. Also
the coordinator's CPU time per job in each (less noisy than jobs/s on a busy machine).

    python -m bench.bench_futures                     # real workers: 2 × 2 slots, 300 square jobs a run
    python -m bench.bench_futures --fake 50 --jobs 5000   # 50 simulated workers (bench/loadgen.py)

Target: map at 90 % or more of raw. With simulated workers (no process per job) the jobs cost
almost nothing, and the figure is the futures' own ceiling. Small results (the catalog's, up to
64 KiB) come inline with the wait answers: no download per job.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from bench import clients
from xwpy import Grid
from xwpy.lifecycle import FINAL_NAMES
from xwpy.localgrid import LocalGrid, wait_for

SQUARE = ["{python}", "-c", "import sys; n = int(sys.argv[1]); print(n * n)", "{args}"]
POLL = 0.05  # the raw run's summary polling interval: learning the end within 50 ms, a strict reference


def raw(client, jobs: int) -> float:
    batch = f"raw-{secrets.token_hex(4)}"
    t0 = time.perf_counter()
    for start in range(0, jobs, 10_000):
        client.submit([{"app": "square", "args": [str(n)]} for n in range(start, min(jobs, start + 10_000))], batch)
    while sum(v for k, v in client.summary(batch).items() if k in FINAL_NAMES) < jobs:
        time.sleep(POLL)  # the reference's polling interval (what is measured), not a synchronisation
    return jobs / (time.perf_counter() - t0)


def futures(grid: Grid, jobs: int) -> float:
    t0 = time.perf_counter()
    results = list(grid.map("square", range(jobs)))
    rate = jobs / (time.perf_counter() - t0)
    assert len(results) == jobs
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=300, help="jobs in each run")
    p.add_argument("--rounds", type=int, default=3, help="runs of each, alternated")
    p.add_argument("--workers", type=int, default=2, help="real workers (each --slots slots)")
    p.add_argument("--slots", type=int, default=2)
    p.add_argument("--fake", type=int, default=0, help="simulated workers (bench/loadgen.py) instead of real ones")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-futures-") as tmp:
        site = LocalGrid(Path(tmp), heartbeat=10.0)
        try:
            site.start_coordinator()
            admin = site.client()
            vol = site.user("vol", "worker")
            token = site.user("alice")
            client = site.client(token)
            client.register_app(name="square", command=SQUARE, replication=1, quorum=1)
            if args.fake:
                loadgen = clients.spawn("bench.loadgen", site, vol, 3600, workers=args.fake, slots=args.slots)
                hosts = args.fake
            else:
                loadgen = None
                for i in range(args.workers):
                    site.start_worker(f"w{i}", vol, slots=args.slots)
                hosts = args.workers
            wait_for(lambda: admin.call("GET", "/stats")["hosts"] >= hosts, 60, "workers to register")
            grid = Grid(site.url, site.cfg.ca_cert, token)
            raw(client, min(args.jobs, 50))  # warm-up: connections open, workers' apps fetched
            futures(grid, min(args.jobs, 50))
            coordinator = psutil.Process(site.coordinator.popen.pid)
            rates: dict[str, list[float]] = {"raw": [], "map": []}
            cpu: dict[str, list[float]] = {"raw": [], "map": []}  # the coordinator's CPU ms per job
            for r in range(args.rounds):
                for label, run in (("raw", lambda: raw(client, args.jobs)), ("map", lambda: futures(grid, args.jobs))):
                    before = sum(coordinator.cpu_times()[:2])
                    rates[label].append(run())
                    cpu[label].append((sum(coordinator.cpu_times()[:2]) - before) * 1000 / args.jobs)
                    print(f"  round {r + 1} {label}: {rates[label][-1]:,.1f} jobs/s, "
                          f"coordinator {cpu[label][-1]:.2f} ms CPU a job", flush=True)
            grid.close()
            if loadgen is not None:
                loadgen.kill()
                loadgen.wait()
        finally:
            site.close()
    ref, got = statistics.median(rates["raw"]), statistics.median(rates["map"])
    workers = f"{args.fake} simulated workers" if args.fake else f"{args.workers} real workers × {args.slots} slots"
    cref, cgot = statistics.median(cpu["raw"]), statistics.median(cpu["map"])
    print(f"\n{args.jobs} jobs a run, {workers}, {args.rounds} rounds alternated (medians), "
          f"load average {os.getloadavg()[0]:.1f}:")
    print(f"raw batch submission + summary polling: {ref:,.1f} jobs/s, coordinator {cref:.2f} ms CPU a job")
    print(f"Grid.map (futures, stdout received):    {got:,.1f} jobs/s, coordinator {cgot:.2f} ms CPU a job")
    print(f"ratio map/raw: {got / ref:.1%}   (target >= 90%); coordinator CPU map/raw {cgot / cref:.2f}; "
          f"connections the Grid opened: {grid.connections}, results downloaded one by one: {grid.downloads}")


if __name__ == "__main__":
    main()
