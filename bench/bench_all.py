"""Issue 19's figures in one command, each with its spread: what the README's performance section
quotes (medians, with the machine's load).

    python -m bench.bench_all            # about 25 minutes
    python -m bench.bench_all --quick    # fewer rounds and smaller runs (about 12 minutes)

1. dispatch: N trivial jobs from first submission to last result, xwpy (SQLite, 1,000 simulated
   workers, replication 1) and Dask distributed alternated (bench_dispatch --versus-dask-only);
2. latency, submission to certification of one job (replication 3);
3. reads (a certified job, a batch's summary) at 32 and 128 connections while simulated workers
   take work (bench_reads --while-dispatch);
4. growth: throughput with 10,000 and with 1,000,000 jobs in the catalog, in pairs (order alternated).

Every figure is the median of its runs with min and max; the load average is printed before and
after (the machine is shared: what ran beside a figure moves it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import bench_dispatch, bench_reads
from bench.bench_dispatch import Bench, Spread, load_note


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, smaller runs")
    p.add_argument("--rounds", type=int, help="rounds of each alternated comparison (default 5, quick 3)")
    p.add_argument("--skip", action="append", default=[], choices=["dispatch", "latency", "reads", "growth"],
                   help="leave a part out (repeatable)")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        sys.exit("bench_all: Dask (the dispatch reference) is missing: run 'scripts/setup test,postgres,bench' first")
    if "reads" not in args.skip and shutil.which("wrk") is None:
        sys.exit("bench_all: wrk is missing (Debian: apt-get install -y wrk), or --skip reads")
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-all-"))
    bench = Bench(root, None)
    before = load_note()
    print(before, flush=True)
    lines: list[str] = []
    try:
        if "dispatch" not in args.skip:
            jobs = 5000 if args.quick else 10_000
            print(f"dispatch: {jobs:,} jobs, xwpy and Dask alternated {rounds} times", flush=True)
            ours, theirs, how = bench_dispatch.versus_dask(bench, rounds, jobs)
            ratios = Spread([a / b for a, b in zip(ours.values, theirs.values)])
            lines += [
                f"dispatch, {jobs:,} trivial jobs, first submission to last result (SQLite, 1,000 workers, r1):",
                f"  xwpy  {ours} jobs/s   (target: median >= 3,000)",
                f"  Dask  {theirs} tasks/s ({how})",
                f"  ratio median of rounds {statistics.median(ratios.values):.2f} "
                f"(min {min(ratios.values):.2f}, max {max(ratios.values):.2f}); of medians "
                f"{ours.median / theirs.median:.2f}   (target >= 5)",
            ]
        if "latency" not in args.skip:
            samples = 100 if args.quick else 300
            print(f"latency: {samples} jobs one at a time", flush=True)
            p50, p99, worst = bench.latency(samples)
            lines.append(f"latency submit -> certified, replication 3, {samples} jobs: p50 {p50:.1f} ms, "
                         f"p99 {p99:.1f} ms, max {worst:.1f} ms   (targets 50 / 250)")
        if "reads" not in args.skip:
            seconds = 5.0 if args.quick else 8.0
            print(f"reads while dispatch runs: {rounds} runs of each", flush=True)
            scratch = root / "scratch"
            scratch.mkdir(mode=0o700, exist_ok=True)
            busy = bench_reads.while_dispatch(bench, 20_000, seconds, rounds, scratch)
            for label in dict.fromkeys(b.read.label for b in busy):
                for c in (32, 128):
                    mine = [b for b in busy if b.read.label == label and b.connections == c]
                    lines.append(f"read {label}, {c} connections, while dispatch runs: "
                                 f"{Spread([b.read.rps for b in mine])} req/s, p99 {_ms([b.read.p99_ms for b in mine])}; "
                                 f"dispatch meanwhile {Spread([b.replicas_per_s for b in mine])} replicas/s")
            lines.append(f"  (targets: >= {bench_reads.TARGET_RPS:,} req/s, p99 <= {bench_reads.TARGET_P99_MS:g} ms)")
        if "growth" not in args.skip:
            sizes = (10_000, 100_000) if args.quick else (10_000, 1_000_000)
            g_rounds = max(2, rounds - 1)  # an even count: as many pairs of each order
            print(f"growth: {g_rounds} pairs, {sizes[0]:,} and {sizes[1]:,} jobs in the catalog", flush=True)
            pairs = bench_dispatch.growth_pairs(bench, g_rounds, sizes, 10.0 if args.quick else 15.0)
            lines += bench_dispatch.print_growth(pairs, sizes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(before)
    print(load_note().replace("before", "after"))
    for line in lines:
        print(line)


def _ms(values: list[float]) -> str:
    v = sorted(values)
    return f"min {v[0]:.1f} / median {statistics.median(v):.1f} / max {v[-1]:.1f} ms"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
