"""The coordinator as the oracle needs it: its own account and apps, batches, job outcomes.

The oracle submits like any user (``xwpy.server.submission``: same checks, same replication
policy), as the account ``oracle``, created at the first start with a token nobody is ever shown:
no one can log in as the oracle, and its jobs are visible to admins. Its apps are public, so
every volunteer's host may run them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Sequence

from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy import archive, protocol, tokens
from xwpy.oracle.handlers.base import GridApp, Handler, JobView, Unit
from xwpy.server import submission
from xwpy.server.catalog.rows import App, User

log = Logger()

ORACLE_LOGIN = "oracle"
MAX_RESULT_FILES = 64 << 20


class GridAppUnavailable(Exception):
    pass


FILES_CACHE = 1024  # result archives are immutable (content-addressed): keep the unpacked ones


class GridLink:
    def __init__(self, co):
        self.co = co
        self.user: User | None = None
        self.apps: dict[str, App] = {}  # hub app name -> grid app
        self.unusable: dict[str, str] = {}  # hub app name -> why its grid app cannot be used
        self._files: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    async def setup(self, handlers: dict[str, Handler]) -> None:
        co = self.co
        user = co.directory.logins.get(ORACLE_LOGIN)
        if user is None:
            user = await co.catalog.users.add(
                login=ORACLE_LOGIN, role="user", group="", token_hash=tokens.token_hash(tokens.new_token("xwu")),
                now=time.time(),
            )
            co.directory.add_user(user)
            log.info("created the oracle's grid account {login!r}", login=ORACLE_LOGIN)
        self.user = user
        for name, handler in handlers.items():
            try:
                self.apps[name] = await self._app(handler.grid_app)
            except GridAppUnavailable as e:
                self.unusable[name] = str(e)
                log.error("oracle app {name}: {why}", name=name, why=str(e))

    async def _app(self, spec: GridApp) -> App:
        co = self.co
        existing = co.directory.app_names.get(spec.name)
        if existing is not None:
            if existing.owner_id != self.user.id:
                raise GridAppUnavailable(f"the grid app {spec.name!r} belongs to {existing.owner!r}, not to the oracle")
            if existing.command != tuple(spec.command) or existing.validator != spec.validator:
                log.warn("the grid app {name} was registered with another command or validator than this "
                         "version's; keeping it as it is", name=spec.name)
            return existing
        limits = protocol.encode(protocol.Limits(**spec.limits))
        app_id = await co.catalog.apps.add(
            name=spec.name, owner_id=self.user.id, access="public", bundle=None, command=list(spec.command),
            limits=limits, validator=spec.validator, replication=spec.replication, quorum=spec.quorum, now=time.time(),
        )
        app = App(app_id, spec.name, self.user.id, self.user.login, "public", None, tuple(spec.command), limits,
                  spec.validator, spec.replication, spec.quorum)
        co.directory.add_app(app)
        log.info("registered the grid app {name} for the oracle", name=spec.name)
        return app

    # -- jobs ---------------------------------------------------------------------------------

    async def submit(self, batch: str, app: str, units: Sequence[Unit]) -> list[int]:
        """Submit UNITS as one batch (committed together); raises ProtocolError/ApiError if bad."""
        msg = protocol.parse(
            protocol.SubmitJobs,
            {"batch": batch, "jobs": [{"app": self.apps[app].name, "args": list(u.args)} for u in units]},
        )
        return await submission.submit(self.co, self.user, msg)

    async def batch_ids(self, batch: str, limit: int) -> list[int]:
        jobs = await self.co.catalog.jobs.list(owner_id=self.user.id, batch=batch, status=None, after=0, limit=limit)
        return [j.id for j in jobs]

    async def cancel(self, job_ids: list[int]) -> None:
        if job_ids:
            await self.co.dispatcher.cancel(job_ids)

    async def view(self, job_id: int, tag: str) -> JobView:
        job = await self.co.catalog.jobs.get(job_id)
        if job is None:
            return JobView(job_id, tag, "ERROR", error="job not in the catalog")
        files = None
        if job.status == "COMPLETED" and job.result_sha256:
            try:
                files = await self.result_files(job.result_sha256)
            except Exception as e:  # noqa: BLE001 - a certified result we cannot read is a failed job to the handler
                return JobView(job_id, tag, "ERROR", job.result_sha256, error=f"result unreadable: {e}")
        return JobView(job_id, tag, job.status, job.result_sha256, files, job.error)

    async def result_files(self, sha256: str) -> dict[str, bytes]:
        """The files of a result archive: from the blob store, or the catalog's small blobs."""
        if sha256 in self._files:
            self._files.move_to_end(sha256)
            return self._files[sha256]
        co = self.co
        if co.blobs.size(sha256) is not None:
            data = await deferToThread(co.blobs.read, sha256)
        else:
            data = await co.catalog.blobs.get(sha256)
            if data is None:
                raise FileNotFoundError(f"result {sha256} is stored nowhere")
        files = await deferToThread(archive.read_files, data, max_total=MAX_RESULT_FILES)
        self._files[sha256] = files
        if len(self._files) > FILES_CACHE:
            self._files.popitem(last=False)
        return files

    def on_final(self, listener: Callable[[list[int]], None]) -> None:
        self.co.dispatcher.on_final(listener)

    def live_hosts(self) -> int:
        engine, now = self.co.dispatcher.engine, self.co.reactor.seconds()
        return sum(1 for h in engine.hosts.values() if h.alive(now, engine.lease_seconds))
