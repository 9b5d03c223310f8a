"""Fair share: two users with shares 3:1 on a saturated grid; their throughput ratio over a window.

    python -m bench.bench_shares                  # 20 simulated workers x 2 slots, jobs of 0.2 s
    python -m bench.bench_shares --alice 2 --bob 1 --window 30

Alice and bob each queue far more jobs than the grid can run in the window, at once; after a
warm-up, the jobs each gets certified in the window are counted (their batch summaries). Target:
alice / bob = the ratio of their shares (3 +- 0.3 for 3:1). The reference printed beside it is the
same grid with equal shares (1:1), run the same way in the same process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench import clients
from xwpy.localgrid import LocalGrid, wait_for

APP = ["{python}", "-c", "print(1)"]  # never run: the simulated workers answer for it


def certified(client, batch: str) -> int:
    return client.summary(batch).get("COMPLETED", 0)


def run(shares: tuple[float, float], args) -> tuple[int, int]:
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-shares-") as tmp:
        site = LocalGrid(Path(tmp), heartbeat=10.0)
        site.configure("shares", alice=shares[0], bob=shares[1])
        loadgen = None
        try:
            site.start_coordinator()
            admin = site.client()
            vol = site.user("vol", "worker")
            alice, bob = site.client(site.user("alice")), site.client(site.user("bob"))
            alice.register_app(name="work", command=APP, replication=1, quorum=1, access="public")
            per_second = args.workers * args.slots / args.job_seconds
            queued = int(per_second * (args.warmup + args.window) * 1.5) + 1000  # neither runs dry
            for who in (alice, bob):
                for start in range(0, queued, 10_000):
                    who.submit([{"app": "work", "args": [str(n)]} for n in range(start, min(queued, start + 10_000))],
                               who is alice and "a" or "b")
            loadgen = clients.spawn("bench.loadgen", site, vol, 3600, workers=args.workers, slots=args.slots,
                                    **{"job-seconds": args.job_seconds})
            wait_for(lambda: admin.call("GET", "/stats")["hosts"] >= args.workers, 60, "workers to register")
            time.sleep(args.warmup)  # the warm-up being measured past, not a synchronisation
            a0, b0 = certified(alice, "a"), certified(bob, "b")
            time.sleep(args.window)  # the window being measured
            a1, b1 = certified(alice, "a"), certified(bob, "b")
            if a1 >= queued or b1 >= queued:
                raise SystemExit("a user ran out of queued jobs: the grid was not saturated (raise the queue)")
            return a1 - a0, b1 - b0
        finally:
            if loadgen is not None:
                loadgen.kill()
                loadgen.wait()
            site.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alice", type=float, default=3.0, help="alice's share")
    p.add_argument("--bob", type=float, default=1.0, help="bob's share")
    p.add_argument("--workers", type=int, default=20, help="simulated workers (bench/loadgen.py)")
    p.add_argument("--slots", type=int, default=2)
    p.add_argument("--job-seconds", type=float, default=0.2, help="each job's simulated run time")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before the window opens")
    p.add_argument("--window", type=float, default=20.0, help="seconds counted")
    args = p.parse_args()
    target = args.alice / args.bob
    ea, eb = run((1.0, 1.0), args)
    a, b = run((args.alice, args.bob), args)
    print(f"{args.workers} simulated workers x {args.slots} slots, jobs of {args.job_seconds} s, "
          f"{args.window:.0f} s window after {args.warmup:.0f} s, load average {os.getloadavg()[0]:.1f}:")
    print(f"equal shares 1:1 (reference): alice {ea / args.window:,.1f} jobs/s, bob {eb / args.window:,.1f} jobs/s, "
          f"ratio {ea / max(eb, 1):.2f}")
    print(f"shares {args.alice:g}:{args.bob:g}: alice {a / args.window:,.1f} jobs/s, bob {b / args.window:,.1f} jobs/s, "
          f"ratio {a / max(b, 1):.2f}   (target {target:g} +- {target / 10:.1f}); "
          f"total {(a + b) / max(ea + eb, 1):.0%} of the reference's")


if __name__ == "__main__":
    main()
