"""What the bubblewrap sandbox costs per job, against ``--confinement uid``, side by side in one run.

1. The launcher alone: ``python -m xwpy.worker.sandbox SPEC`` running ``true`` as a job uid, without
   and with bwrap (what the worker spawns for every replica), N times each, alternating.
2. End to end: trivial jobs (``echo``) through a coordinator and one worker (2 slots), first with
   ``--confinement uid``, then with the default bwrap sandbox: jobs per second and ms per job.

    python -m bench.bench_sandbox [--launches 100] [--jobs 200]      (or: scripts/bench sandbox)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xwpy.localgrid import LocalGrid, child_env

JOB_UID = 61990  # an unprivileged uid for the launcher measure (root only)


def launcher_ms(n: int) -> dict[str, float]:
    from xwpy.worker import bwrap

    layout = bwrap.host_layout()
    root = os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-") as tmp:
        os.chmod(tmp, 0o711)
        job = Path(tmp) / "job"
        job.mkdir()
        if root:
            os.chown(job, JOB_UID, JOB_UID)
        base = {"argv": ["true"], "cwd": str(job), "uid": JOB_UID if root else None, "gid": JOB_UID if root else None,
                "cpu": 60, "memory": 1 << 30, "fsize": 1 << 20, "nproc": 64}
        binds = bwrap.interpreter_paths()
        argv = bwrap.build(bwrap.Spec(workdir=str(job), argv=("true",), layout=layout, ro_binds=binds), bwrap=shutil.which("bwrap"))
        sandboxed = {**base, "bwrap": {"argv": argv, "reach": [str(job), *binds]}}
        env = {**child_env(), "PATH": "/usr/local/bin:/usr/bin:/bin"}
        totals = {"uid": 0.0, "bwrap": 0.0}
        for i in range(n + 1):
            for name, spec in (("uid", base), ("bwrap", sandboxed)):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "xwpy.worker.sandbox", json.dumps(spec)], env=env, check=True)
                if i:  # the first round warms the caches
                    totals[name] += time.perf_counter() - t
    return {name: total / n * 1000 for name, total in totals.items()}


def grid_rate(jobs: int) -> dict[str, tuple[float, float]]:
    out = {}
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-grid-") as tmp:
        grid = LocalGrid(Path(tmp))
        try:
            grid.start_coordinator()
            vol = grid.user("vol", "worker")
            client = grid.client(grid.user("bench"))
            client.register_app(name="trivial", command=["echo", "{args}"], replication=1, quorum=1)
            for confinement in ("uid", "bwrap"):
                w = grid.start_worker(f"w-{confinement}", vol, "--confinement", confinement, slots=2)
                warm = client.submit([{"app": "trivial", "args": ["warm", str(i)]} for i in range(4)])
                grid.wait_final(client, warm, timeout=120)
                t = time.perf_counter()
                ids = client.submit([{"app": "trivial", "args": [confinement, str(i)]} for i in range(jobs)])
                done = grid.wait_final(client, ids, timeout=600)
                seconds = time.perf_counter() - t
                bad = [j for j in done.values() if j["status"] != "COMPLETED"]
                if bad:
                    raise SystemExit(f"{len(bad)} jobs did not complete with {confinement}: {bad[0]['error']}")
                w.stop()
                out[confinement] = (jobs / seconds, seconds / jobs * 1000)
        finally:
            grid.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--launches", type=int, default=100)
    p.add_argument("--jobs", type=int, default=200)
    a = p.parse_args()
    ms = launcher_ms(a.launches)
    print(f"launcher, {a.launches} runs each of `true` ({'as a job uid' if os.geteuid() == 0 else 'as this user'}):")
    print(f"  {'confinement':12} {'ms per job':>10}")
    for name in ("uid", "bwrap"):
        print(f"  {name:12} {ms[name]:10.1f}")
    print(f"  bwrap adds {ms['bwrap'] - ms['uid']:.1f} ms per job (x{ms['bwrap'] / ms['uid']:.2f})")
    rate = grid_rate(a.jobs)
    print(f"end to end, {a.jobs} trivial jobs (echo), 1 coordinator, 1 worker with 2 slots:")
    print(f"  {'confinement':12} {'jobs/s':>8} {'ms per job':>10}")
    for name in ("uid", "bwrap"):
        print(f"  {name:12} {rate[name][0]:8.1f} {rate[name][1]:10.1f}")
    print(f"  ratio bwrap/uid: x{rate['uid'][0] / rate['bwrap'][0]:.2f} time per job")


if __name__ == "__main__":
    main()
