"""Dashboard viewers' cost to dispatch: replicas handed out per second with no page open, and with
100 dashboards open (bench/viewers.py: each long-polls the feed and reloads what the page shows
at most every 2 s, as app.js does), alternated so that a slow moment of the machine does not land
on one side only.

    python -m bench.bench_dashboard              # 2 rounds of each, 20 s windows (about 4 minutes)
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

from bench import clients
from bench.bench_dispatch import Bench
from xwpy.localgrid import wait_for

WORKERS = 500


def measure(bench: Bench, label: str, n_viewers: int, seconds: float) -> tuple[float, dict | None]:
    """Replicas dispatched per second over the window; the viewers' own summary (None without)."""
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
        s0, t0 = admin.call("GET", "/stats"), time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
        s1, t1 = admin.call("GET", "/stats"), time.monotonic()
        rate = (s1["dispatched"] - s0["dispatched"]) / (t1 - t0)
        summary = None
        if pages is not None:
            out, _ = pages.communicate(timeout=120)
            summary = json.loads(out)
        lg.kill()
        lg.wait()
        return rate, summary
    finally:
        grid.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window per run")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-dash-"))
    bench = Bench(root, None)
    alone, watched, served = [], [], []
    try:
        for i in range(args.rounds):
            rate, _ = measure(bench, f"alone{i}", 0, args.seconds)
            alone.append(rate)
            print(f"  round {i + 1}: no viewer: {rate:,.0f} replicas/s", flush=True)
            rate, pages = measure(bench, f"watched{i}", args.viewers, args.seconds)
            watched.append(rate)
            served.append(pages["requests"] / pages["seconds"])
            print(f"  round {i + 1}: {args.viewers} viewers: {rate:,.0f} replicas/s "
                  f"({pages['requests'] / pages['seconds']:,.0f} dashboard requests/s, {pages['errors']} errors)",
                  flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    a, w = statistics.median(alone), statistics.median(watched)
    print()
    print(f"dispatch, {WORKERS} simulated workers, replication 1, SQLite: {a:,.0f} replicas/s with no viewer, "
          f"{w:,.0f} with {args.viewers} dashboards open ({statistics.median(served):,.0f} requests/s to them)")
    print(f"ratio with/without = {w / a:.2f}   (target >= 0.90)")


if __name__ == "__main__":
    main()
