"""Simulated dashboard viewers: many open pages in one process, each doing what the page's script
does (xwpy/server/web/app.js): long-poll the feed, then make the three reads of a refresh, at
most once per MIN_GAP seconds. Prints a JSON summary on stdout when done.

A page parses and draws on its own machine, not the coordinator's: here each answer is read whole
but only the feed's is parsed, over a minimal HTTP/1.1 keep-alive client (clients.Connection; a
browser's three connections per page) rather than twisted.web's Agent, so that on this 2-core machine the pages'
own work takes as little as it can from the coordinator and the workers being measured.

    XWPY_TOKEN=TOKEN python -m bench.viewers --url URL --ca CA --viewers 100 --seconds 30

(bench/clients.py: how it is started and its clients launched.)
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from twisted.internet import defer, ssl, task
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol

from bench import clients
from bench.clients import Connection

MIN_GAP = 1.0  # app.js's MIN_GAP
FEED_WAIT = 20  # app.js's FEED_WAIT
READS = ("/dashboard/jobs?all=1&seen={v}", "/dashboard/hosts?seen={v}", "/dashboard/throughput")


class Viewers:
    def __init__(self, c: clients.Clients, token: str, ca_pem: bytes):
        self.c = c
        url = urlsplit(c.url)
        self.host, self.port, self.prefix = url.hostname, url.port, url.path
        self.tls = ssl.optionsForClientTLS(self.host, trustRoot=ssl.Certificate.loadPEM(ca_pem))
        self.headers = (f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                        "Accept: application/json\r\n\r\n").encode()
        self.refreshes = 0

    def summary(self) -> dict:
        return {"refreshes": self.refreshes}

    async def get(self, conn: Connection, path: str) -> bytes:
        status, body = await conn.request(f"GET {self.prefix}{path} HTTP/1.1\r\n".encode() + self.headers)
        self.c.requests += 1
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status} {body[:200]!r}")
        return body

    async def client(self, index: int) -> None:
        """One open page, with its three connections."""
        endpoint = SSL4ClientEndpoint(self.c.reactor, self.host, self.port, self.tls)
        conns = [await connectProtocol(endpoint, Connection()) for _ in READS]
        try:
            version = -1
            clock = self.c.reactor
            while clock.seconds() < self.c.stop_at:
                started = clock.seconds()
                feed = await self.get(conns[0], f"/dashboard/feed?after={version}&wait={0 if version < 0 else FEED_WAIT}")
                version = json.loads(feed)["version"]
                await defer.gatherResults([Deferred.fromCoroutine(self.get(conn, p.format(v=max(version, 0))))
                                           for conn, p in zip(conns, READS)])
                self.refreshes += 1
                gap = MIN_GAP - (clock.seconds() - started)
                if gap > 0:
                    await task.deferLater(clock, gap, lambda: None)
        finally:
            for conn in conns:
                conn.transport.loseConnection()


def run() -> None:
    p = clients.arguments("simulated dashboard viewers")
    p.add_argument("--viewers", type=int, default=100)
    args = p.parse_args()
    token = clients.token()
    ca_pem = open(args.ca, "rb").read()
    clients.run(args, 1, args.viewers, lambda c: Viewers(c, token, ca_pem))


if __name__ == "__main__":
    run()
