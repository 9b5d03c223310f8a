"""Simulated dashboard viewers: many open pages in one process, each doing what the page's script
does (xwpy/server/web/app.js): long-poll the feed, then make the three reads of a refresh, at
most once per MIN_GAP seconds. Each answer is read whole, but only the feed's is parsed: a page
parses and draws on its own machine, not the coordinator's, so that cost is not the grid's.
Prints a JSON summary on stdout when done.

    XWPY_TOKEN=TOKEN python -m bench.viewers --url URL --ca CA --viewers 100 --seconds 30

(bench/clients.py: how it is started and its clients launched.)
"""

from __future__ import annotations

import json

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.web.client import readBody
from twisted.web.http_headers import Headers

from bench import clients

MIN_GAP = 1.0  # app.js's MIN_GAP
FEED_WAIT = 20  # app.js's FEED_WAIT
READS = ("/dashboard/jobs?all=1&seen={v}", "/dashboard/hosts?seen={v}", "/dashboard/throughput")


class Viewers:
    def __init__(self, c: clients.Clients, token: str):
        self.c = c
        self.headers = Headers({b"authorization": [f"Bearer {token}".encode()]})
        self.refreshes = 0

    async def get(self, path: str) -> bytes:
        resp = await self.c.agent.request(b"GET", (self.c.url + path).encode(), self.headers)
        raw = await readBody(resp)
        self.c.requests += 1
        if resp.code != 200:
            raise RuntimeError(f"{path}: HTTP {resp.code} {raw[:200]!r}")
        return raw

    def summary(self) -> dict:
        return {"refreshes": self.refreshes}

    async def client(self, index: int) -> None:
        """One open page."""
        version = -1
        clock = self.c.reactor
        while clock.seconds() < self.c.stop_at:
            started = clock.seconds()
            feed = await self.get(f"/dashboard/feed?after={version}&wait={0 if version < 0 else FEED_WAIT}")
            version = json.loads(feed)["version"]
            await defer.gatherResults([Deferred.fromCoroutine(self.get(p.format(v=max(version, 0)))) for p in READS])
            self.refreshes += 1
            gap = MIN_GAP - (clock.seconds() - started)
            if gap > 0:
                await task.deferLater(clock, gap, lambda: None)


def run() -> None:
    p = clients.arguments("simulated dashboard viewers")
    p.add_argument("--viewers", type=int, default=100)
    args = p.parse_args()
    token = clients.token()
    clients.run(args, args.viewers * 2, args.viewers, lambda c: Viewers(c, token))


if __name__ == "__main__":
    run()
