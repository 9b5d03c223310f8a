"""Simulated dashboard viewers: many open pages in one process, each doing what the page's script
does (xwpy/server/web/app.js): long-poll the feed, then make the three reads of a refresh, at
most once per MIN_GAP seconds. Prints a JSON summary on stdout when done.

    python -m bench.viewers --url URL --ca CA --token TOKEN --viewers 100 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from xwpy import pki

MIN_GAP = 1.0  # app.js's MIN_GAP
FEED_WAIT = 20  # app.js's FEED_WAIT
READS = ("/dashboard/jobs?all=1&seen={v}", "/dashboard/hosts?seen={v}", "/dashboard/throughput")


class Viewers:
    def __init__(self, reactor, url: str, ca_pem: bytes, token: str, connections: int):
        self.reactor = reactor
        self.url = url.rstrip("/") + "/api/v1"
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = connections
        self.agent = Agent(reactor, contextFactory=pki.PinnedPolicy(ca_pem), pool=pool, connectTimeout=30)
        self.pool = pool
        self.headers = Headers({b"authorization": [f"Bearer {token}".encode()]})
        self.requests = self.refreshes = self.errors = 0
        self.stop_at = float("inf")

    async def get(self, path: str) -> dict:
        resp = await self.agent.request(b"GET", (self.url + path).encode(), self.headers)
        raw = await readBody(resp)
        self.requests += 1
        if resp.code != 200:
            raise RuntimeError(f"{path}: HTTP {resp.code} {raw[:200]!r}")
        return json.loads(raw)

    async def viewer(self) -> None:
        version = -1
        while self.reactor.seconds() < self.stop_at:
            started = self.reactor.seconds()
            feed = await self.get(f"/dashboard/feed?after={version}&wait={0 if version < 0 else FEED_WAIT}")
            version = feed["version"]
            await defer.gatherResults([Deferred.fromCoroutine(self.get(p.format(v=max(version, 0)))) for p in READS])
            self.refreshes += 1
            gap = MIN_GAP - (self.reactor.seconds() - started)
            if gap > 0:
                await task.deferLater(self.reactor, gap, lambda: None)


async def main(reactor, args) -> None:
    v = Viewers(reactor, args.url, open(args.ca, "rb").read(), args.token, args.viewers * 2)
    start = reactor.seconds()
    v.stop_at = start + args.seconds
    ds = []
    for i in range(args.viewers):
        d = Deferred.fromCoroutine(v.viewer())
        d.addErrback(lambda f: setattr(v, "errors", v.errors + 1) or print(f.getErrorMessage(), file=sys.stderr))
        ds.append(d)
        if i % 20 == 19:
            await task.deferLater(reactor, 0.05, lambda: None)
    await defer.DeferredList(ds)
    await v.pool.closeCachedConnections()
    print(json.dumps({"requests": v.requests, "refreshes": v.refreshes, "errors": v.errors,
                      "seconds": reactor.seconds() - start}))


def run() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, args)))


if __name__ == "__main__":
    run()
