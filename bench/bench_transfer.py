"""What the transfer path costs (issue 12, item 5), against copying the same file in this process.

1. Reference: copy a file of ``--size-mib`` here, hashing it as it goes (what a download must do
   at least: read, hash, write), with the peak resident memory it adds to this process.
2. The worker's wire (:class:`xwpy.worker.link.Link`, in this process) against a real coordinator
   on loopback (TLS): a download (streamed to disk, hashed) and an upload (an upload session,
   chunked), then both again through a proxy that cuts the connection twice each way: rate,
   bytes carried per byte of data, peak memory added.
3. The issue's scenario (tests/grid/test_big_data.py): a worker process fetching a ``--scenario-mib``
   input and sending back a result as big, through connections cut twice each way: bytes carried,
   the worker's peak RSS (target: under 200 MiB), the whole job's time.

    python -m bench.bench_transfer [--size-mib 512] [--scenario-mib 1024]    (or: scripts/bench transfer)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from tests.cutproxy import CutProxy
from tests.grid.test_big_data import rss, transfer_through_cuts, write_input
from tests.harness import Grid

MiB = 1 << 20


class Peak:
    """The peak VmRSS of this process above what it was when made, sampled every 20 ms."""

    def __init__(self):
        self.base = rss(os.getpid())
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(os.getpid()))

    def added(self) -> int:
        self._stop.set()
        self._t.join()
        return max(0, self.peak - self.base)


def reference_copy(src: Path, dest: Path) -> tuple[float, int]:
    peak = Peak()
    started = time.monotonic()
    h = hashlib.sha256()
    with open(src, "rb") as f, open(dest, "wb") as out:
        while block := f.read(MiB):
            h.update(block)
            out.write(block)
    took = time.monotonic() - started
    return took, peak.added()


def wire_phases(grid: Grid, token: str, src: Path, digest: str, work: Path, size: int) -> list[tuple]:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from xwpy.worker.link import Link

    rows: list[tuple] = []
    up_src = work / "up.bin"
    shutil.copyfile(src, up_src)
    with open(up_src, "r+b") as f:  # not the same data as the download: a new blob to store
        f.write(b"upload")
    with open(up_src, "rb") as f:
        up_digest = hashlib.file_digest(f, "sha256").hexdigest()

    async def measure(label: str, url: str, proxy: CutProxy | None, fn) -> None:
        link = Link(reactor, url, grid.cfg.ca_cert.read_bytes(), token)
        peak = Peak()
        started = time.monotonic()
        try:
            await fn(link)
        finally:
            await link.close()
        took = time.monotonic() - started
        carried = None
        if proxy is not None:
            carried = (proxy.sent["down"] if "download" in label else proxy.sent["up"]) / size
        rows.append((label, took, peak.added(), carried))

    async def main() -> None:
        dest = work / "got.bin"
        await measure("Link download", grid.url, None, lambda link: link.download(digest, dest))
        dest.unlink()
        await measure("Link upload (session)", grid.url, None, lambda link: link.upload(up_src, up_digest))
        cuts = [int(size * 0.3), int(size * 0.65)]
        proxy = CutProxy(grid.port, down=cuts)
        await measure("Link download, cut twice", proxy.url, proxy, lambda link: link.download(digest, dest))
        proxy.close()
        with open(up_src, "r+b") as f:  # again a new blob
            f.write(b"UPLOAD")
        with open(up_src, "rb") as f:
            again = hashlib.file_digest(f, "sha256").hexdigest()
        proxy = CutProxy(grid.port, up=cuts)
        await measure("Link upload, cut twice", proxy.url, proxy, lambda link: link.upload(up_src, again))
        proxy.close()

    def run():
        d = Deferred.fromCoroutine(main())
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=512, help="the file moved by the wire phases")
    ap.add_argument("--scenario-mib", type=int, default=1024, help="the worker scenario's input and result (0: skip)")
    args = ap.parse_args()
    size = args.size_mib * MiB
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-transfer-"))
    try:
        scenario = None
        if args.scenario_mib:
            g = Grid(root / "scenario")
            try:
                started = time.monotonic()
                scenario = transfer_through_cuts(g, root, args.scenario_mib * MiB)
                scenario["seconds"] = time.monotonic() - started
            finally:
                g.close()
                shutil.rmtree(root / "scenario", ignore_errors=True)
                for leftover in root.glob("*.tar"):
                    leftover.unlink()
        src = root / "data.bin"
        digest = write_input(src, size)
        ref_took, ref_mem = reference_copy(src, root / "copy.bin")
        (root / "copy.bin").unlink()
        g = Grid(root / "wire")
        try:
            g.start_coordinator()
            token = g.user("alice")
            g.client(token).put_data(src)
            rows = wire_phases(g, token, src, digest, root, size)
        finally:
            g.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ref_rate = size / ref_took / MiB
    print(f"\ntransfers of {args.size_mib} MiB on loopback (TLS), this process; reference: a hashed file copy here\n")
    print(f"{'':32} {'MiB/s':>8} {'x ref':>7} {'peak RSS added':>15} {'bytes carried':>14}")
    print(f"{'reference: hashed copy':32} {ref_rate:8.0f} {1.0:7.2f} {ref_mem / MiB:12.1f} MiB {'':>14}")
    for label, took, mem, carried in rows:
        rate = size / took / MiB
        print(f"{label:32} {rate:8.0f} {rate / ref_rate:7.2f} {mem / MiB:12.1f} MiB "
              f"{'' if carried is None else f'{carried:.3f} x':>14}")
    if scenario is not None:
        print(f"\nworker scenario, {args.scenario_mib} MiB in and out, cut twice each way: "
              f"job done in {scenario['seconds']:.0f} s; carried {scenario['down'] / (args.scenario_mib * MiB):.3f} x down, "
              f"{scenario['up'] / (args.scenario_mib * MiB):.3f} x up (target <= 1.1); worker peak RSS "
              f"{scenario['peak_rss'] / MiB:.0f} MiB (target < 200) over {scenario['samples']} samples")


if __name__ == "__main__":
    main()
