"""Simulated workers: many light clients in one process, speaking the real HTTPS protocol.

Each simulated host registers, says hello, then loops: ask for work (long poll), "run" each replica
at once (a trivial, deterministic result: honest replicas agree), report the results inline and,
in the same round trip, ask for more work. Prints a JSON summary on stdout when done.

    python -m bench.loadgen --url URL --ca CA --token VOLUNTEER --workers 1000 --slots 4 --seconds 30
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from xwpy import archive, pki


DEBUG = bool(__import__("os").environ.get("XWPY_LOADGEN_DEBUG"))


class Sim:
    def __init__(self, reactor, url: str, ca_pem: bytes, connections: int):
        self.reactor = reactor
        self.url = url.rstrip("/") + "/api/v1"
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = connections
        pool.retryAutomatically = False
        self.agent = Agent(reactor, contextFactory=pki.PinnedPolicy(ca_pem), pool=pool, connectTimeout=30)
        self.pool = pool
        self.reported = 0
        self.requests = 0
        self.errors = 0
        self.stop_at = float("inf")
        self._results: dict[int, tuple[str, str]] = {}

    async def call(self, token: str, path: str, payload) -> dict:
        body = json.dumps(payload).encode()
        headers = Headers({b"authorization": [f"Bearer {token}".encode()], b"content-type": [b"application/json"]})
        resp = await self.agent.request(b"POST", (self.url + path).encode(), headers, FileBodyProducer(io.BytesIO(body)))
        raw = await readBody(resp)
        self.requests += 1
        if resp.code != 200:
            raise RuntimeError(f"{path}: HTTP {resp.code} {raw[:200]!r}")
        return json.loads(raw)

    def result_of(self, job_id: int) -> tuple[str, str]:
        """The archive an honest worker would produce for this job, and its digest."""
        got = self._results.get(job_id)
        if got is None:
            data = archive.from_files({"stdout": b"job %d\n" % job_id})
            got = (hashlib.sha256(data).hexdigest(), base64.b64encode(data).decode())
            self._results[job_id] = got
        return got

    async def worker(self, volunteer: str, index: int, slots: int, wait: float) -> None:
        reg = await self.call(volunteer, "/work/register", {"name": f"sim{index}", "cpus": slots, "memory": 1 << 34})
        token = reg["token"]
        await self.call(token, "/work/hello", {})
        ask = {"slots": slots, "wait": wait}
        reply = await self.call(token, "/work/request", ask)
        while self.reactor.seconds() < self.stop_at:
            replicas = reply.get("replicas", [])
            if DEBUG:
                print(f"{self.reactor.seconds():.3f} sim{index} host {reg['host_id']} got {[a['replica_id'] for a in replicas]}", file=sys.stderr, flush=True)
            if not replicas:
                reply = await self.call(token, "/work/request", ask)
                continue
            results = []
            for a in replicas:
                digest, inline = self.result_of(a["job_id"])
                results.append({"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": digest, "inline": inline})
            reply = await self.call(token, "/work/results", {"results": results, "next": ask})
            if DEBUG:
                print(f"{self.reactor.seconds():.3f} sim{index} host {reg['host_id']} outcome {reply['outcome']}", file=sys.stderr, flush=True)
            self.reported += sum(1 for v in reply["outcome"].values() if v == "accepted")


async def main(reactor, args) -> None:
    sim = Sim(reactor, args.url, open(args.ca, "rb").read(), args.workers + 8)
    start = reactor.seconds()
    sim.stop_at = start + args.seconds
    ds = []
    for i in range(args.workers):
        d = Deferred.fromCoroutine(sim.worker(args.token, i, args.slots, args.wait))
        d.addErrback(lambda f: setattr(sim, "errors", sim.errors + 1) or print(f.getErrorMessage(), file=sys.stderr))
        ds.append(d)
        if i % 50 == 49:  # do not open a thousand TLS handshakes in the same instant
            await task.deferLater(reactor, 0.05, lambda: None)
    await defer.DeferredList(ds)
    await sim.pool.closeCachedConnections()
    print(json.dumps({"reported": sim.reported, "requests": sim.requests, "errors": sim.errors,
                      "seconds": reactor.seconds() - start}))


def run() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, args)))


if __name__ == "__main__":
    run()
