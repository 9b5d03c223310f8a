"""Vanity searches on an xwpy grid: the app's registration and a search backend made of jobs.

Each work unit is one job of the ``vanitygen`` app. A claimed match is checked on the coordinator
by the app's verifier (one key derivation), so one verified result certifies it; a "no match"
claim needs two agreeing replicas. The client re-verifies what it gets (``run_search``) and
cancels the units still running once a match is in.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from xwpy import archive
from xwpy.client.api import Client, ClientError
from xwpy.lifecycle.job import FINAL, JobStatus

APP = "vanitygen"
COMMAND = ["{python}", "-m", "xwpy.apps.vanitygen.unit", "{args}"]
VALIDATOR = "verifier:vanitygen"


def ensure_app(client: Client, name: str = APP, *, wall_seconds: int = 3600, replication: int = 2) -> dict:
    """The grid's vanity app, registered now if the site has none by that name. ``replication``
    is for "no match" claims (a match is certified by the verifier alone)."""
    try:
        app = client.app(name)
    except ClientError as e:
        if e.status != 404:
            raise
        return client.register_app(
            name=name, command=COMMAND, validator=VALIDATOR, replication=replication, quorum=replication,
            access="public",
            limits={"wall_seconds": wall_seconds, "cpu_seconds": wall_seconds, "memory_bytes": 512 << 20,
                    "output_bytes": 1 << 20, "processes": 8},
        )
    if list(app["command"]) != COMMAND or app["validator"] != VALIDATOR:
        raise ClientError(f"app {name!r} on this site is not the vanity search app (command {app['command']})")
    return app


def in_flight(client: Client, asked: int | None = None) -> tuple[int, str]:
    """How many units to keep in flight, and why: twice the job slots the grid says it can run for
    this account now (``GET /users/me``: every live host's, not only the caller's own), or ASKED;
    either way within the account's job quota (``[limits] max_jobs_per_user``) less the jobs it
    has in progress, so that no submission is refused over_quota. At least 1; a SearchError when
    the quota is full already."""
    from xwpy.apps.vanitygen.search import SearchError

    try:
        me = client.me()
    except ClientError:
        me = {}
    slots = me.get("slots")
    if slots is None:  # a coordinator of an earlier version: the hosts this account sees
        try:
            slots = sum(h["cpus"] for h in client.hosts() if h["alive"])
        except ClientError:
            slots = 0
    n = asked or 2 * max(1, slots)
    why = "as asked" if asked else f"twice the grid's {slots} live job slot{'' if slots == 1 else 's'}"
    limit, active = me.get("max_jobs"), me.get("jobs_in_progress") or 0
    if limit:
        room = limit - active
        if room < 1:
            raise SearchError(f"you have {active} job{'' if active == 1 else 's'} in progress and may have {limit} "
                              "([limits] max_jobs_per_user): wait for some to end, or cancel some")
        if n > room:
            n, why = room, f"your job quota: {limit}, {active} in progress"
    return n, why


class GridBackend:
    """``xwpy.apps.vanitygen.search.Backend`` over a coordinator: units are jobs of one batch."""

    def __init__(self, client: Client, batch: str, *, app: str = APP, interval: float = 0.2):
        self.client = client
        self.batch = batch
        self.app = app
        self.interval = interval
        self._unit_of: dict[int, int] = {}  # job id -> unit index, while pending

    def submit(self, units: Sequence[tuple[int, list[str]]]) -> None:
        if not units:
            return
        ids = self.client.submit([{"app": self.app, "args": list(args)} for _, args in units], batch=self.batch)
        self._unit_of.update(zip(ids, (index for index, _ in units)))

    def poll(self, timeout: float) -> list[tuple[int, Optional[bytes]]]:
        deadline = time.monotonic() + timeout
        while True:
            done = self._finished()
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(self.interval)  # refresh period of an interactive client

    def _finished(self) -> list[tuple[int, Optional[bytes]]]:
        out = []
        if not self._unit_of:
            return out
        first = min(self._unit_of)
        for status in sorted(FINAL):
            for job in self.client.jobs(batch=self.batch, status=status.value):
                if job["id"] < first or job["id"] not in self._unit_of:
                    continue
                index = self._unit_of.pop(job["id"])
                out.append((index, self._result(job["id"]) if status is JobStatus.COMPLETED else None))
        return out

    def _result(self, job_id: int) -> Optional[bytes]:
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "result.tar"
            self.client.result(job_id, dest)
            return archive.read_files(dest.read_bytes()).get("result.json")

    def cancel(self, indices: Sequence[int]) -> None:
        wanted = set(indices)
        ids = [jid for jid, index in self._unit_of.items() if index in wanted]
        if ids:
            self.client.cancel(ids)
            for jid in ids:
                self._unit_of.pop(jid, None)
