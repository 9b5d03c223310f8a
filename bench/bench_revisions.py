"""Dispatch throughput of two revisions of xwpy, alternated in one invocation: did a change cost speed?

    python -m bench.bench_revisions OLD NEW [--rounds 5] [--seconds 15] [--workers 1000] [--replication 2]

Each revision is exported (``git archive``) into a temporary directory and measured with its own
code from end to end — its coordinator, its simulated workers (bench/loadgen.py) and its
``bench_dispatch.Bench.throughput`` — on a fresh SQLite catalog each run. The two alternate, the
first of each round swapped every round, so a machine's load drifting during the runs weighs on
both alike; it prints min / median / max of each and the ratio of the medians, for throughput and
for the coordinator's CPU time per replica (which what else runs on the machine moves less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run inside the exported tree (its bench and its xwpy on sys.path): one throughput run.
ONE_RUN = """
import json, sys, tempfile
from pathlib import Path
from bench.bench_dispatch import Bench, Run
workers, replication, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
with tempfile.TemporaryDirectory(prefix="xwpy-bench-rev-") as d:
    r = Bench(Path(d), None).throughput(Run("rev", workers, replication, "sqlite"), seconds)
print(json.dumps({"replicas_per_s": r.replicas_per_s, "cpu": r.cpu}))
"""


def export(rev: str, into: Path) -> tuple[str, Path]:
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = into / sha
    tree.mkdir()
    archive = subprocess.Popen(["git", "-C", str(REPO), "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return sha, tree


def one(tree: Path, workers: int, replication: int, seconds: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run([sys.executable, "-c", ONE_RUN, str(workers), str(replication), str(seconds)], cwd=tree,
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run in {tree.name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def spread(xs: list[float]) -> str:
    return f"min {min(xs):,.0f} / median {statistics.median(xs):,.0f} / max {max(xs):,.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=15.0, help="measurement window of each run")
    p.add_argument("--workers", type=int, default=1000, help="simulated workers")
    p.add_argument("--replication", type=int, default=2)
    a = p.parse_args()
    one_min, five_min, _ = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="xwpy-revisions-") as d:
        trees = [export(a.old, Path(d)), export(a.new, Path(d))]
        rates: dict[str, list[float]] = {sha: [] for sha, _ in trees}
        cpu: dict[str, list[float]] = {sha: [] for sha, _ in trees}  # coordinator CPU ms per replica
        for r in range(a.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            for sha, tree in order:
                got = one(tree, a.workers, a.replication, a.seconds)
                rates[sha].append(got["replicas_per_s"])
                cpu[sha].append(got["cpu"] / 100 / got["replicas_per_s"] * 1e3 if got["replicas_per_s"] else float("nan"))
            print(f"  round {r + 1}/{a.rounds}: " + ", ".join(f"{sha} {rates[sha][-1]:,.0f} ({cpu[sha][-1]:.3f} ms CPU)"
                                                             for sha, _ in trees), flush=True)
    (old, _), (new, _) = trees
    print(f"dispatch, SQLite, {a.workers} simulated workers, replication {a.replication}, {a.seconds:.0f} s windows, "
          f"{a.rounds} rounds alternated (load average {one_min:.2f} / {five_min:.2f} before; "
          f"{os.getloadavg()[0]:.2f} after):")
    for sha, _ in trees:
        print(f"  {sha}: {spread(rates[sha])} replicas/s; coordinator CPU per replica (all its threads) "
              f"min {min(cpu[sha]):.3f} / median {statistics.median(cpu[sha]):.3f} / max {max(cpu[sha]):.3f} ms")
    print(f"  ratio of medians {new} / {old}: {statistics.median(rates[new]) / statistics.median(rates[old]):.3f} "
          f"(throughput), {statistics.median(cpu[new]) / statistics.median(cpu[old]):.3f} (CPU per replica)")


if __name__ == "__main__":
    main()
