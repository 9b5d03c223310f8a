"""What the benchmarks' simulated clients share (bench/loadgen.py: workers, bench/viewers.py:
dashboards): a process running many light HTTPS clients of one site, started by a bench, each
client a coroutine, launched a few at a time, ending with a JSON summary on stdout.

The bearer token reaches the process in its environment (XWPY_TOKEN), never on its command line
(which every process of the machine can read)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Protocol

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, HTTPConnectionPool

from xwpy import pki

REPO = Path(__file__).resolve().parents[1]
TOKEN_VARIABLE = "XWPY_TOKEN"


def spawn(module: str, grid, token: str, seconds: float, log: str | None = None, **options: Any) -> subprocess.Popen:
    """``python -m module`` against ``grid`` (a LocalGrid) for ``seconds``; ``options`` become
    ``--name value`` arguments. Its stdout (the summary) is a pipe."""
    from xwpy.localgrid import child_env

    argv = [sys.executable, "-m", module, "--url", grid.url, "--ca", str(grid.cfg.ca_cert), "--seconds", str(seconds)]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    return subprocess.Popen(argv, env={**child_env(), TOKEN_VARIABLE: token}, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=open(log or os.devnull, "ab"))


class Clients:
    """An HTTPS agent pinned to the site's CA with ``connections`` keep-alive connections, and the
    counters every simulated client bumps."""

    def __init__(self, reactor, url: str, ca_pem: bytes, connections: int):
        self.reactor = reactor
        self.url = url.rstrip("/") + "/api/v1"
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = connections
        self.pool.retryAutomatically = False
        self.agent = Agent(reactor, contextFactory=pki.PinnedPolicy(ca_pem), pool=self.pool, connectTimeout=30)
        self.requests = self.errors = 0
        self.stop_at = float("inf")


class Connection(Protocol):
    """One HTTP/1.1 keep-alive connection, one request at a time; answers with a Content-Length
    (the coordinator's always have one)."""

    def __init__(self) -> None:
        self._buf = b""
        self._d: Deferred | None = None
        self._head: tuple[int, int] | None = None

    def request(self, raw: bytes) -> Deferred:
        self._d, self._buf, self._head = Deferred(), b"", None
        self.transport.write(raw)
        return self._d

    def dataReceived(self, data: bytes) -> None:
        self._buf += data
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self._buf[:end].split(b"\r\n")
            length = next(int(v) for k, _, v in (h.partition(b":") for h in lines[1:])
                          if k.strip().lower() == b"content-length")
            self._head, self._buf = (int(lines[0].split()[1]), length), self._buf[end + 4:]
        status, length = self._head
        if len(self._buf) >= length and self._d is not None:
            d, self._d = self._d, None
            d.callback((status, self._buf[:length]))

    def connectionLost(self, reason) -> None:
        if self._d is not None:
            d, self._d = self._d, None
            d.errback(reason)


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every client process takes (add its own)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    return p


def token() -> str:
    value = os.environ.get(TOKEN_VARIABLE)
    if not value:
        sys.exit(f"set {TOKEN_VARIABLE} to the token the simulated clients use")
    return value


class Simulation(Protocol):
    async def client(self, index: int) -> None: ...

    def summary(self) -> dict: ...


def run(args, connections: int, count: int, make: Callable[[Clients], Simulation], batch: int = 20) -> None:
    """Run ``count`` clients of ``make(clients)`` (``client(index)``) until ``args.seconds`` have
    passed, opening ``batch`` at a time (not a thousand TLS handshakes in the same instant), then
    print its ``summary()`` with the requests, errors and seconds taken, as one JSON line."""

    async def main(reactor) -> None:
        c = Clients(reactor, args.url, open(args.ca, "rb").read(), connections)
        sim = make(c)
        start = reactor.seconds()
        c.stop_at = start + args.seconds

        def failed(f):
            c.errors += 1
            print(f.getErrorMessage(), file=sys.stderr)

        ds = []
        for i in range(count):
            ds.append(Deferred.fromCoroutine(sim.client(i)).addErrback(failed))
            if i % batch == batch - 1:
                await task.deferLater(reactor, 0.05, lambda: None)
        await defer.DeferredList(ds)
        await c.pool.closeCachedConnections()
        print(json.dumps({**sim.summary(), "requests": c.requests, "errors": c.errors,
                          "seconds": reactor.seconds() - start}))

    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))


__all__ = ["Clients", "Connection", "REPO", "arguments", "run", "spawn", "token"]
