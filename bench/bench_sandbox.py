"""What the bubblewrap sandbox and image apps cost per job, against ``--confinement uid``, side by
side in one run.

1. The launcher alone: ``python -m xwpy.worker.sandbox SPEC`` running ``true`` as a job uid, without
   bwrap, with bwrap, and with bwrap in an image's root (what the worker spawns for every
   replica), N times each, alternating.
2. Unpacking the image (busybox, built here with :mod:`xwpy.image.build`): the median time of
   :func:`xwpy.image.unpack.unpack`, several times, and the disk the unpacked tree takes (du).
3. End to end: trivial jobs (``echo``) through a coordinator and one worker (2 slots), first with
   ``--confinement uid``, then with the default bwrap sandbox, then in the image app (its first
   unpack done by the warm-up jobs): jobs per second and ms per job; and the image cache's hit
   rate over the image worker's jobs, from the ``unpacked:`` lines of its log.

Targets (the issue): bwrap adds at most 10 ms per job; an image job, once its image is unpacked,
at most 20 ms.

    python -m bench.bench_sandbox [--launches 100] [--jobs 200]      (or: scripts/bench sandbox)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xwpy.image import build
from xwpy.localgrid import LocalGrid, child_env

JOB_UID = 61990  # an unprivileged uid for the launcher measure (root only)
CONFINEMENTS = ("uid", "bwrap", "image")


def busybox_image(tmp: Path) -> tuple[Path, str]:
    """A one-layer busybox image (``sh``, ``echo``, ``true``) written under ``tmp``: its path and id."""
    root = build.busybox_root(tmp / "bb-root", applets=("sh", "echo", "true"))
    path = tmp / "bb.tar"
    image_id = build.write(path, [build.layer_from_dir(root)], env=["PATH=/bin"])
    return path, image_id


def unpack_cost(image: Path, n: int) -> dict[str, float]:
    """Unpack ``image`` ``n`` times into fresh directories: the median seconds, the files and
    bytes :func:`unpack` counts, and the tree's disk use (``du -s``, bytes)."""
    from xwpy.image.unpack import unpack

    times, disk = [], 0
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-unpack-") as tmp:
        for i in range(n):
            dest = Path(tmp) / f"u{i}"
            t = time.perf_counter()
            done = unpack(image, dest)
            times.append(time.perf_counter() - t)
            disk = int(subprocess.run(["du", "-s", "-B1", str(dest)], capture_output=True, text=True,
                                      check=True).stdout.split()[0])
            shutil.rmtree(dest)
    return {"seconds": statistics.median(times), "min": min(times), "max": max(times), "files": done.files,
            "bytes": done.bytes, "disk": disk}


def launcher_ms(n: int, image: Path, image_id: str) -> dict[str, float]:
    from xwpy.worker import bwrap
    from xwpy.worker.images import ImageCache

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
        # As the worker runs an image job: the image's root (unpacked once, with its mount points) as /.
        image_root = str(ImageCache(Path(tmp) / "images").unpack(image_id, image))
        argv = bwrap.build(bwrap.Spec(workdir=str(job), argv=("/bin/true",), layout=layout, image_root=image_root),
                           bwrap=shutil.which("bwrap"))
        in_image = {**base, "bwrap": {"argv": argv, "reach": [str(job), image_root]}}
        env = {**child_env(), "PATH": "/usr/local/bin:/usr/bin:/bin"}
        totals = dict.fromkeys(CONFINEMENTS, 0.0)
        for i in range(n + 1):
            for name, spec in (("uid", base), ("bwrap", sandboxed), ("image", in_image)):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "xwpy.worker.sandbox", json.dumps(spec)], env=env, check=True)
                if i:  # the first round warms the caches
                    totals[name] += time.perf_counter() - t
    return {name: total / n * 1000 for name, total in totals.items()}


def grid_rate(jobs: int, image: Path) -> tuple[dict[str, tuple[float, float]], tuple[int, int]]:
    """Jobs/s and ms per job for each confinement; and the image worker's (unpacks, jobs run)."""
    out, warm_jobs = {}, 4
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-grid-") as tmp:
        grid = LocalGrid(Path(tmp))
        try:
            grid.start_coordinator()
            vol = grid.user("vol", "worker")
            client = grid.client(grid.user("bench"))
            client.register_app(name="trivial", command=["echo", "{args}"], replication=1, quorum=1)
            image_sha = client.put_data(image, name=image.name)["sha256"]
            client.register_app(name="trivial-image", command=["/bin/echo", "{args}"], image=image_sha,
                                replication=1, quorum=1)
            for confinement in CONFINEMENTS:
                app = "trivial-image" if confinement == "image" else "trivial"
                flag = "bwrap" if confinement == "image" else confinement
                w = grid.start_worker(f"w-{confinement}", vol, "--confinement", flag, slots=2)
                # The warm-up: for the image, its one download and unpack on this host.
                warm = client.submit([{"app": app, "args": ["warm", str(i)]} for i in range(warm_jobs)])
                warmed = grid.wait_final(client, warm, timeout=120)
                t = time.perf_counter()
                ids = client.submit([{"app": app, "args": [confinement, str(i)]} for i in range(jobs)])
                done = grid.wait_final(client, ids, timeout=600)
                seconds = time.perf_counter() - t
                bad = [j for j in {**warmed, **done}.values() if j["status"] != "COMPLETED"]
                if bad:
                    raise SystemExit(f"{len(bad)} jobs did not complete with {confinement}: {bad[0]['error']}")
                w.stop()
                out[confinement] = (jobs / seconds, seconds / jobs * 1000)
                if confinement == "image":
                    unpacks = (warm_jobs + jobs, w.output().count("unpacked:"))
        finally:
            grid.close()
    return out, unpacks


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--launches", type=int, default=100)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--unpacks", type=int, default=7, help="times the image is unpacked for its median")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xwpy-bench-image-") as tmp:
        image, image_id = busybox_image(Path(tmp))
        ms = launcher_ms(a.launches, image, image_id)
        print(f"launcher, {a.launches} runs each of `true` ({'as a job uid' if os.geteuid() == 0 else 'as this user'}):")
        print(f"  {'confinement':12} {'ms per job':>10}")
        for name in CONFINEMENTS:
            print(f"  {name:12} {ms[name]:10.1f}")
        print(f"  bwrap adds {ms['bwrap'] - ms['uid']:.1f} ms per job (x{ms['bwrap'] / ms['uid']:.2f})")
        print(f"  image adds {ms['image'] - ms['uid']:.1f} ms per job (x{ms['image'] / ms['uid']:.2f})"
              f" ({ms['image'] - ms['bwrap']:+.1f} ms against bwrap; target at most 20)")
        u = unpack_cost(image, a.unpacks)
        print(f"image unpack (busybox, {image.stat().st_size} bytes archive), median of {a.unpacks}:")
        print(f"  {u['seconds'] * 1000:.1f} ms (min {u['min'] * 1000:.1f}, max {u['max'] * 1000:.1f}),"
              f" {u['files']} files, {u['bytes']} bytes of files, du {u['disk']} bytes")
        rate, (ran, unpacks) = grid_rate(a.jobs, image)
    print(f"end to end, {a.jobs} trivial jobs (echo), 1 coordinator, 1 worker with 2 slots:")
    print(f"  {'confinement':12} {'jobs/s':>8} {'ms per job':>10}")
    for name in CONFINEMENTS:
        print(f"  {name:12} {rate[name][0]:8.1f} {rate[name][1]:10.1f}")
    print(f"  ratio bwrap/uid: x{rate['uid'][0] / rate['bwrap'][0]:.2f} time per job")
    print(f"  ratio image/uid: x{rate['uid'][0] / rate['image'][0]:.2f} time per job"
          f" (image adds {rate['image'][1] - rate['uid'][1]:.1f} ms of wall time per job, 2 slots; target at most 20)")
    print(f"  image cache: {unpacks} unpack(s) for {ran} jobs (warm-up included), hit rate"
          f" {(ran - unpacks) / ran:.1%} (target: one unpack per image per host)")


if __name__ == "__main__":
    main()
