"""Read-path speed: what the dashboards and ``status --watch`` poll, measured with wrk (128 TLS
keep-alive connections) against a real coordinator with a populated catalog, and against a bare
Twisted TLS server (same certificate, a trivial resource) in the same run, for a ratio.

    python -m bench.bench_reads                   # 10 s per read (about 2 minutes)
    python -m bench.bench_reads --seconds 20 --jobs 50000
    python -m bench.bench_reads --while-dispatch  # a job and a batch read at 32 and 128 connections,
                                                  # while simulated workers take and report work

While dispatch runs, the coordinator's one reactor thread serves both: what a read costs there is
taken from dispatch, so each line also says the replicas dispatched per second during it.

The token goes to wrk in a Lua script file readable by its owner only, never on a command line.
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
from dataclasses import dataclass
from pathlib import Path

from bench import clients
from bench.bench_dispatch import Bench
from bench.clients import REPO
from xwpy.localgrid import LocalGrid, child_env, free_port, wait_for

CONNECTIONS = 128
TARGET_RPS, TARGET_P99_MS = 4000, 50.0

# wrk's report, as one JSON line (its own summary is made for eyes).
LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "micros": %d, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(label: str, url: str, token: str, seconds: float, scratch: Path, connections: int = CONNECTIONS) -> Result:
    """``wrk`` on ``url`` with the bearer token (in a 0600 Lua file, removed after)."""
    script = scratch / "reads.lua"
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n{LUA_DONE}')
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        script.unlink()
    r = json.loads(out.strip().splitlines()[-1])
    return Result(label, r["requests"] / (r["micros"] / 1e6), r["p50"] / 1000, r["p99"] / 1000, r["errors"])


def bare_server(grid: LocalGrid) -> tuple[subprocess.Popen, str]:
    """The reference: a Twisted Site over TLS (the site's own certificate) answering a few bytes."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.bench_reads", "--bare", str(port), str(grid.cfg.dir)],
                            env=child_env(), cwd=REPO)
    url = f"https://127.0.0.1:{port}/"

    def up():
        if proc.poll() is not None:
            raise RuntimeError("the bare reference server exited")
        return subprocess.run(["curl", "-sk", "-o", os.devnull, url]).returncode == 0

    wait_for(up, 30, "the bare reference server")
    return proc, url


def serve_bare(port: int, site_dir: str) -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server

    from xwpy import pki

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            request.setHeader(b"content-type", b"application/json")
            return b'{"hello":"world"}'

    site = server.Site(Hello())
    site.log = lambda request: None  # as the coordinator's: its own access log, not twisted.web's
    d = Path(site_dir)
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.protocols.tls import TLSMemoryBIOFactory

    tls = pki.ServerTLS((d / "server.pem").read_bytes(), (d / "server.key").read_bytes())  # the coordinator's TLS
    TCP4ServerEndpoint(reactor, port, backlog=1024, interface="127.0.0.1").listen(TLSMemoryBIOFactory(tls, False, site))
    reactor.run()


def populate(bench: Bench, grid: LocalGrid, jobs: int) -> tuple[str, int, int]:
    """A batch of ``jobs`` jobs of which simulated workers finish a part; returns the owner's
    token, a certified job and a pending one."""
    admin = grid.client()
    token = grid.user("alice")
    alice = grid.client(token)
    alice.register_app(name="trivial", command=["true"], replication=1, quorum=1)
    ids: list[int] = []
    for start in range(0, jobs, 5000):
        ids += alice.submit([{"app": "trivial", "args": [str(i)]} for i in range(start, min(jobs, start + 5000))],
                            batch="b")
    lg = bench.loadgen(grid, token, 50, 600)  # alice lends 50 hosts: her host list
    try:
        wait_for(lambda: admin.call("GET", "/stats")["certified"] >= min(jobs // 4, 5000), 120, "jobs to finish")
    finally:
        lg.kill()
        lg.wait()
    done = alice.job(ids[0])
    assert done["status"] == "COMPLETED", done["status"]
    return token, ids[0], ids[-1]


@dataclass
class Busy:
    """A read measured while dispatch runs, and the dispatch rate meanwhile."""

    read: Result
    connections: int
    replicas_per_s: float


# The dispatch that runs beside the reads: simulated workers whose replicas each "run" JOB_SECONDS,
# DISPATCH_WORKERS x 4 slots of them, so at most DISPATCH_WORKERS * 4 / JOB_SECONDS replicas a
# second are offered (a busy site; bench_dispatch measures the saturated coordinator, which has no
# reactor time left for anyone: reads there took 500-1,100 req/s with a p99 of 200-280 ms).
DISPATCH_WORKERS, JOB_SECONDS = 250, 1.0


def while_dispatch(bench: Bench, jobs: int, seconds: float, rounds: int, scratch: Path) -> list[Busy]:
    """A certified job's read and its batch's summary at 32 and 128 connections, ``rounds`` times
    each (alternated), while DISPATCH_WORKERS simulated workers take and report trivial jobs of
    another user's backlog (every commit changes the jobs table: the summary is read again after
    each, a job read is served from memory)."""
    grid = bench.grid("reads_dispatch", "sqlite")
    out: list[Busy] = []
    lg = None
    try:
        grid.start_coordinator()
        token, done, _ = populate(bench, grid, jobs)
        admin = grid.client()
        bob = grid.client(grid.user("bob"))
        bob.register_app(name="busy", command=["true"], replication=1, quorum=1)
        runs = [(label, url, c) for _ in range(rounds) for c in (32, 128)
                for label, url in (("job (certified)", f"{grid.url}/api/v1/jobs/{done}"),
                                   ("batch summary", f"{grid.url}/api/v1/jobs/summary?batch=b"))]
        backlog = int(DISPATCH_WORKERS * 4 / JOB_SECONDS * (len(runs) * (seconds + 2) + 30))
        for start in range(0, backlog, 5000):
            bob.submit([{"app": "busy", "args": [str(i)]} for i in range(start, min(backlog, start + 5000))])
        lg = clients.spawn("bench.loadgen", grid, grid.user("vol2", "worker"), 24 * 3600, workers=DISPATCH_WORKERS,
                           slots=4, **{"job-seconds": JOB_SECONDS})
        wait_for(lambda: admin.call("GET", "/stats")["hosts"] >= DISPATCH_WORKERS + 50, 120, "workers to register")
        time.sleep(3)  # warm-up: connections open, queues full (a measurement window, not a sync)
        for label, url, connections in runs:
            s0, t0 = admin.call("GET", "/stats")["dispatched"], time.monotonic()
            r = wrk(label, url, token, seconds, scratch, connections)
            rate = (admin.call("GET", "/stats")["dispatched"] - s0) / (time.monotonic() - t0)
            out.append(Busy(r, connections, rate))
            print(f"  {label}, {connections} connections: {r.rps:,.0f} req/s, p99 {r.p99_ms:.1f} ms, "
                  f"{r.errors} errors; dispatch meanwhile {rate:,.0f} replicas/s", flush=True)
    finally:
        if lg is not None:
            lg.kill()
            lg.wait()
        grid.close()
    return out


def print_busy(busy: list[Busy], seconds: float) -> None:
    print(f"reads while {DISPATCH_WORKERS} simulated workers x 4 slots take work, replicas of {JOB_SECONDS:g} s "
          f"(wrk, 2 threads, {seconds:g} s a run; medians of the runs, min-max in brackets):")
    print(f"{'read':<16} {'conns':>5} {'req/s':>22} {'p99 ms':>20} {'dispatch replicas/s':>24}")
    for label in dict.fromkeys(b.read.label for b in busy):
        for c in (32, 128):
            mine = [b for b in busy if b.read.label == label and b.connections == c]
            if mine:
                print(f"{label:<16} {c:>5} {_spread([b.read.rps for b in mine]):>22} "
                      f"{_spread([b.read.p99_ms for b in mine], 1):>20} {_spread([b.replicas_per_s for b in mine]):>24}")
    worst = min(b.read.rps for b in busy)
    print(f"worst run: {worst:,.0f} req/s, p99 at most {max(b.read.p99_ms for b in busy):.1f} ms  "
          f"(targets >= {TARGET_RPS:,} req/s, p99 <= {TARGET_P99_MS:g} ms)")


def _spread(values: list[float], digits: int = 0) -> str:
    v = sorted(values)
    return f"{statistics.median(v):,.{digits}f} [{v[0]:,.{digits}f}-{v[-1]:,.{digits}f}]"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        return serve_bare(int(sys.argv[2]), sys.argv[3])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="wrk's run per read")
    p.add_argument("--jobs", type=int, default=20_000, help="jobs in the catalog")
    p.add_argument("--while-dispatch", action="store_true", help="job and batch reads while dispatch runs")
    p.add_argument("--rounds", type=int, default=3, help="with --while-dispatch: runs of each read")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_reads: wrk is missing (Debian: apt-get install -y wrk)")
    if args.while_dispatch:
        root = Path(tempfile.mkdtemp(prefix="xwpy-bench-reads-"))
        scratch = root / "scratch"
        scratch.mkdir(mode=0o700)
        try:
            busy = while_dispatch(Bench(root, None), args.jobs, args.seconds, args.rounds, scratch)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print()
        print_busy(busy, args.seconds)
        return
    root = Path(tempfile.mkdtemp(prefix="xwpy-bench-reads-"))
    scratch = root / "scratch"
    scratch.mkdir(mode=0o700)
    bench = Bench(root, None)
    grid = bench.grid("reads", "sqlite")
    bare = None
    results: list[Result] = []
    try:
        grid.start_coordinator()
        token, done, pending = populate(bench, grid, args.jobs)
        version = grid.client(token).call("GET", "/dashboard/feed?after=-1")["version"]
        api = grid.url + "/api/v1"
        reads = [
            ("job (certified)", f"{api}/jobs/{done}"),
            ("job (pending)", f"{api}/jobs/{pending}"),
            ("batch summary", f"{api}/jobs/summary?batch=b"),
            ("host list (50)", f"{api}/hosts"),
            ("live feed", f"{api}/dashboard/feed?after=-1"),
            ("dashboard jobs", f"{api}/dashboard/jobs?seen={version}"),
        ]
        bare, bare_url = bare_server(grid)
        time.sleep(1)  # let the coordinator's log of the loadgen's end settle (not a sync: a quiet start)
        # The reference first and last: the machine's other load shifts both sides alike.
        first = wrk("bare Twisted TLS", bare_url, token, args.seconds, scratch)
        print(f"  bare Twisted TLS: {first.rps:,.0f} req/s", flush=True)
        for label, url in reads:
            results.append(wrk(label, url, token, args.seconds, scratch))
            print(f"  {label}: {results[-1].rps:,.0f} req/s", flush=True)
        last = wrk("bare Twisted TLS", bare_url, token, args.seconds, scratch)
        print(f"  bare Twisted TLS: {last.rps:,.0f} req/s", flush=True)
        results.insert(0, Result("bare Twisted TLS", (first.rps + last.rps) / 2, (first.p50_ms + last.p50_ms) / 2,
                                 max(first.p99_ms, last.p99_ms), first.errors + last.errors))
    finally:
        if bare is not None:
            bare.kill()
            bare.wait()
        grid.close()
        shutil.rmtree(root, ignore_errors=True)
    ref = results[0].rps
    print()
    print(f"wrk, {CONNECTIONS} TLS keep-alive connections, 2 threads, {args.seconds:g} s each; "
          f"catalog of {args.jobs:,} jobs (SQLite); {os.cpu_count()} cores")
    print("(bare: the mean of its runs before and after the reads; p99: the worse of the two)")
    print(f"{'read':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'errors':>7}")
    for r in results:
        print(f"{r.label:<20} {r.rps:>8,.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.rps / ref:>8.2f} {r.errors:>7}")
    job = results[1]
    print(f"job read: {job.rps:,.0f} req/s (target >= {TARGET_RPS:,}), p99 {job.p99_ms:.1f} ms "
          f"(target <= {TARGET_P99_MS:g})")


if __name__ == "__main__":
    main()
