"""Simulated workers: many light clients in one process, speaking the real HTTPS protocol.

Each simulated host (on a keep-alive connection of its own, through the minimal HTTP/1.1 client
of bench/clients.py: twisted.web's Agent cost the load generator more than the coordinator spent
on a replica, on the same two cores) registers, says hello, then loops: ask for work (long
poll), "run" each replica at once (a trivial, deterministic result: honest replicas agree), report the results inline and,
in the same round trip, ask for more work. Prints a JSON summary on stdout when done.

    XWPY_TOKEN=VOLUNTEER python -m bench.loadgen --url URL --ca CA --workers 1000 --slots 4 --seconds 30

(bench/clients.py: how it is started and its clients launched.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from urllib.parse import urlsplit

from twisted.internet import ssl
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater

from bench import clients
from xwpy import archive

DEBUG = bool(os.environ.get("XWPY_LOADGEN_DEBUG"))


class Sim:
    def __init__(self, c: clients.Clients, volunteer: str, slots: int, wait: float, ca_pem: bytes,
                 job_seconds: float = 0.0):
        self.c = c
        self.volunteer, self.slots, self.wait = volunteer, slots, wait
        self.job_seconds = job_seconds  # how long each round of replicas "runs" before its report
        self.reported = 0
        self._results: dict[int, tuple[str, str]] = {}
        url = urlsplit(c.url)
        self.host, self.port, self.prefix = url.hostname, url.port, url.path
        self.tls = ssl.optionsForClientTLS(self.host, trustRoot=ssl.Certificate.loadPEM(ca_pem))

    async def call(self, conn: clients.Connection, token: str, path: str, payload) -> dict:
        body = json.dumps(payload).encode()
        head = (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        status, raw = await conn.request(head.encode() + body)
        self.c.requests += 1
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status} {raw[:200]!r}")
        return json.loads(raw)

    def result_of(self, job_id: int) -> tuple[str, str]:
        """The archive an honest worker would produce for this job, and its digest."""
        got = self._results.get(job_id)
        if got is None:
            data = archive.from_files({"stdout": b"job %d\n" % job_id})
            got = (hashlib.sha256(data).hexdigest(), base64.b64encode(data).decode())
            self._results[job_id] = got
        return got

    def summary(self) -> dict:
        return {"reported": self.reported}

    async def client(self, index: int) -> None:
        """One simulated worker, on a keep-alive connection of its own."""
        conn = await connectProtocol(SSL4ClientEndpoint(self.c.reactor, self.host, self.port, self.tls),
                                     clients.Connection())
        try:
            await self.work(conn, index)
        finally:
            conn.transport.loseConnection()

    async def work(self, conn: clients.Connection, index: int) -> None:
        reg = await self.call(conn, self.volunteer, "/work/register",
                              {"name": f"sim{index}", "cpus": self.slots, "memory": 1 << 34})
        token = reg["token"]
        await self.call(conn, token, "/work/hello", {})
        ask = {"slots": self.slots, "wait": self.wait}
        reply = await self.call(conn, token, "/work/request", ask)
        clock = self.c.reactor
        while clock.seconds() < self.c.stop_at:
            replicas = reply.get("replicas", [])
            if DEBUG:
                print(f"{clock.seconds():.3f} sim{index} host {reg['host_id']} got {[a['replica_id'] for a in replicas]}",
                      file=sys.stderr, flush=True)
            if not replicas:
                reply = await self.call(conn, token, "/work/request", ask)
                continue
            if self.job_seconds:
                await deferLater(clock, self.job_seconds)  # the simulated run (not a synchronisation)
            results = []
            for a in replicas:
                digest, inline = self.result_of(a["job_id"])
                results.append({"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": digest, "inline": inline})
            reply = await self.call(conn, token, "/work/results", {"results": results, "next": ask})
            if DEBUG:
                print(f"{clock.seconds():.3f} sim{index} host {reg['host_id']} outcome {reply['outcome']}",
                      file=sys.stderr, flush=True)
            self.reported += sum(1 for v in reply["outcome"].values() if v == "accepted")


def run() -> None:
    p = clients.arguments("simulated workers")
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--job-seconds", type=float, default=0.0, help="each replica's simulated run time")
    args = p.parse_args()
    volunteer = clients.token()
    ca_pem = open(args.ca, "rb").read()
    clients.run(args, 1, args.workers,
                lambda c: Sim(c, volunteer, args.slots, args.wait, ca_pem, args.job_seconds), batch=50)


if __name__ == "__main__":
    run()
