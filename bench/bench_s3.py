"""Data throughput through an object store versus through the coordinator (issue 17, Measured).

Two sites on this machine, each with a real coordinator process: one keeping its blobs itself
([blobs] backend = "local", the default), one in SeaweedFS (``weed server -s3`` on loopback,
backend = "s3"). On each, one host holding ``--count`` replicas moves, with the worker's own
:class:`xwpy.worker.link.Link` (in this process), ``--count`` downloads of a ``--size-mib`` input
at once, then ``--count`` uploads of as many distinct results at once: through the coordinator
(``/data``, ``/uploads``) on the first site, by presigned URLs straight to the store
(``/work/blob-url``) on the second. Printed: each phase's throughput (MiB/s of data), the CPU
seconds the coordinator process spent in it (and SeaweedFS's, and this process's), and the ratio
of the two sites' throughputs and coordinator CPU.

    python -m bench.bench_s3 [--count 100] [--size-mib 64]

The issue's figure is --count 100 --size-mib 64 (6.4 GiB each way per site, and as much disk);
on a small machine run fewer or smaller transfers and say which.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

MiB = 1 << 20


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def write_file(path: Path, size: int, tag: bytes) -> str:
    """``size`` bytes (a random 4 MiB block repeated, ``tag`` first); their sha256."""
    block = bytearray(os.urandom(4 * MiB))
    block[:len(tag)] = tag
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = bytes(block[:min(left, len(block))])
            f.write(b)
            h.update(b)
            left -= len(b)
            block[:len(tag)] = b"." * len(tag)  # the tag once
    return h.hexdigest()


def prepare(root: Path, direct: bool, count: int, size: int, src: Path, digest: str):
    """A site (and its coordinator, and SeaweedFS when ``direct``) whose one host holds
    ``count`` replicas of jobs reading ``src``: (grid, host token, replica ids, weed pid)."""
    from xwpy.localgrid import LocalGrid

    g = LocalGrid(root)
    weed = None
    if direct:
        weed = g.start_seaweedfs()["proc"].popen.pid
    g.configure_scheduler(lease_heartbeats=100000.0)  # the bench is its host: no heartbeats
    g.configure("limits", max_upload_sessions=max(count, 16))
    g.start_coordinator()
    alice = g.client(g.user("alice"))
    alice.register_app(name="t", command=["{python}", "-c", "pass"], replication=1, quorum=1,
                       limits={"output_bytes": size + MiB, "wall_seconds": 3600})
    alice.put_data(src)
    alice.submit([{"app": "t", "args": [str(i)], "inputs": [{"name": "in.bin", "sha256": digest}]} for i in range(count)])
    volunteer = g.client(g.user("vol", "worker"))
    reg = volunteer.call("POST", "/work/register", {"name": "bench", "cpus": count, "memory": 1 << 40,
                                                    "os": "Linux x86_64"})
    host = g.client(reg["token"])
    held: list[int] = []
    while len(held) < count:
        got = host.call("POST", "/work/request", {"slots": min(count - len(held), 256), "wait": 5})["replicas"]
        held += [r["replica_id"] for r in got]
    return g, reg["token"], held, weed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100, help="transfers at once, each way")
    ap.add_argument("--size-mib", type=int, default=64, help="each transfer's size")
    args = ap.parse_args()
    count, size = args.count, args.size_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-s3-"))
    sites = []
    try:
        src = root / "in.bin"
        digest = write_file(src, size, b"input")
        uploads = root / "up"
        uploads.mkdir()
        files = []
        for i in range(count):  # distinct results (one identical to a stored blob is not sent)
            p = uploads / f"{i}.bin"
            files.append((p, write_file(p, size, f"result {i}".encode())))
        for name, direct in (("coordinator", False), ("seaweedfs", True)):
            sites.append((name, direct, *prepare(root / name, direct, count, size, src, digest)))
        src.unlink()
        rows = run(sites, files, digest, root, count)
        print(f"\n{count} parallel transfers of {args.size_mib} MiB each way, load {os.getloadavg()[0]:.1f} "
              f"({os.cpu_count()} CPUs)")
        print(f"{'path':<13} {'phase':<9} {'MiB/s':>8} {'seconds':>8} {'coord. CPU s':>13} {'weed CPU s':>11} "
              f"{'bench CPU s':>12}")
        for r in rows:
            print(f"{r['site']:<13} {r['phase']:<9} {r['rate']:>8.1f} {r['seconds']:>8.2f} {r['coord_cpu']:>13.2f} "
                  f"{r['weed_cpu']:>11} {r['own_cpu']:>12.2f}")
        by = {(r["site"], r["phase"]): r for r in rows}
        for phase in ("download", "upload"):
            a, b = by[("seaweedfs", phase)], by[("coordinator", phase)]
            print(f"{phase}: presigned/coordinator throughput {a['rate'] / b['rate']:.2f}; coordinator CPU "
                  f"{a['coord_cpu']:.2f} s against {b['coord_cpu']:.2f} s "
                  f"({a['coord_cpu'] / b['coord_cpu'] if b['coord_cpu'] else float('nan'):.3f})")
    finally:
        for _, _, g, *_ in sites:
            g.close()
        shutil.rmtree(root, ignore_errors=True)


def run(sites, files, digest: str, root: Path, count: int) -> list[dict]:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, gatherResults

    from xwpy.worker.link import Link

    rows: list[dict] = []

    async def phase(site: str, g, weed: int | None, label: str, make) -> None:
        coord = g.coordinator.popen.pid
        c0, w0, o0 = cpu(coord), cpu(weed) if weed else 0.0, cpu(os.getpid())
        started = time.monotonic()
        await gatherResults([Deferred.fromCoroutine(make(i)) for i in range(count)], consumeErrors=True)
        took = time.monotonic() - started
        moved = sum(f[0].stat().st_size for f in files) if label == "upload" else count * files[0][0].stat().st_size
        rows.append({"site": site, "phase": label, "seconds": took, "rate": moved / MiB / took,
                     "coord_cpu": cpu(coord) - c0, "weed_cpu": f"{cpu(weed) - w0:.2f}" if weed else "-",
                     "own_cpu": cpu(os.getpid()) - o0})

    async def main() -> None:
        for site, direct, g, token, held, weed in sites:
            link = Link(reactor, g.url, g.cfg.ca_cert.read_bytes(), token)
            link.direct = direct  # as its hello would say
            dest = root / f"{site}-got"
            dest.mkdir()
            try:
                await phase(site, g, weed, "download",
                            lambda i: link.download(digest, dest / f"{i}.bin", replica=held[i]))
                shutil.rmtree(dest)
                await phase(site, g, weed, "upload",
                            lambda i: link.upload(files[i][0], files[i][1], replica=held[i]))
            finally:
                await link.close()

    def start():
        d = Deferred.fromCoroutine(main())
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    return rows


if __name__ == "__main__":
    main()
