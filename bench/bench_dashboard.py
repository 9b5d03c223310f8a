"""Dashboard viewers' cost to dispatch: replicas handed out per second with no page open, and with
100 dashboards open (bench/viewers.py: each long-polls the feed and reloads what the page shows
at most every 2 s, as app.js does), alternated so that a slow moment of the machine does not land
on one side only.

    python -m bench.bench_dashboard              # 3 rounds of each, 20 s windows (about 6 minutes)
    python -m bench.bench_dashboard --viewers 300 --rounds 3

Simulated workers (bench/loadgen.py) and viewers (bench/viewers.py) are separate processes
speaking HTTPS to a real coordinator (SQLite catalog), as in bench/bench_dispatch.py."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from bench import clients
from bench.bench_dispatch import Bench, Spread, load_note
from xwpy.localgrid import wait_for

WORKERS = 500


def measure(bench: Bench, label: str, n_viewers: int, seconds: float) -> tuple[float, float, dict | None]:
    """Replicas dispatched per second over the window, the coordinator's CPU milliseconds per
    replica dispatched (viewers included: what they cost it shows here, steadier than a rate on a
    busy machine); the viewers' own summary (None without)."""
    grid = bench.grid(label, "sqlite")
    try:
        grid.start_coordinator()
        admin = grid.client()
        alice = grid.client(grid.user("alice"))
        alice.register_app(name="trivial", command=["true"], replication=1, quorum=1)
        backlog = int(2500 * (seconds + 20))
        for start in range(0, backlog, 5000):
            alice.submit([{"app": "trivial", "args": [str(i)]} for i in range(start, min(backlog, start + 5000))],
                         batch="b")
        lg = bench.loadgen(grid, grid.user("vol", "worker"), WORKERS, seconds + 15)
        pages = clients.spawn("bench.viewers", grid, grid.admin_token, seconds + 15, viewers=n_viewers) if n_viewers else None
        wait_for(lambda: admin.call("GET", "/stats")["hosts"] >= WORKERS, 60, "workers to register")
        time.sleep(3)  # warm-up: connections open, queues full (a measurement window, not a sync)
        coordinator = psutil.Process(grid.coordinator.popen.pid)
        c0 = sum(coordinator.cpu_times()[:2])
        s0, t0 = admin.call("GET", "/stats"), time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
        s1, t1 = admin.call("GET", "/stats"), time.monotonic()
        cpu = sum(coordinator.cpu_times()[:2]) - c0
        rate = (s1["dispatched"] - s0["dispatched"]) / (t1 - t0)
        cpu_ms = 1000 * cpu / max(1, s1["dispatched"] - s0["dispatched"])
        summary = None
        if pages is not None:
            out, _ = pages.communicate(timeout=120)
            summary = json.loads(out)
        lg.kill()
        lg.wait()
        return rate, cpu_ms, summary
    finally:
        grid.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window per run")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-dash-"))
    bench = Bench(root, None)
    alone, watched, served, cpu_alone, cpu_watched = [], [], [], [], []
    print(load_note(), flush=True)
    try:
        for i in range(args.rounds):
            rate, cpu, _ = measure(bench, f"alone{i}", 0, args.seconds)
            alone.append(rate)
            cpu_alone.append(cpu)
            print(f"  round {i + 1}: no viewer: {rate:,.0f} replicas/s ({cpu:.3f} ms coordinator CPU a replica)", flush=True)
            rate, cpu, pages = measure(bench, f"watched{i}", args.viewers, args.seconds)
            watched.append(rate)
            cpu_watched.append(cpu)
            served.append(pages["requests"] / pages["seconds"])
            print(f"  round {i + 1}: {args.viewers} viewers: {rate:,.0f} replicas/s ({cpu:.3f} ms a replica; "
                  f"{pages['requests'] / pages['seconds']:,.0f} dashboard requests/s, {pages['errors']} errors)",
                  flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    a, w = Spread(alone), Spread(watched)
    ratios = [x / y for x, y in zip(watched, alone)]
    print()
    print(load_note().replace("before the runs", "after the runs"))
    print(f"dispatch, {WORKERS} simulated workers, replication 1, SQLite, {args.rounds} rounds alternated:")
    print(f"  no viewer:  {a} replicas/s, coordinator CPU {statistics.median(cpu_alone):.3f} ms a replica (median)")
    print(f"  {args.viewers} dashboards open: {w} replicas/s, coordinator CPU {statistics.median(cpu_watched):.3f} ms "
          f"a replica ({statistics.median(served):,.0f} requests/s to them)")
    print(f"ratio with/without: of medians {w.median / a.median:.2f}, per round "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; CPU a replica without/with "
          f"{statistics.median(cpu_alone) / statistics.median(cpu_watched):.2f}   (target >= 0.90)")


if __name__ == "__main__":
    main()
