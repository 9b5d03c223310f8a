"""The coordinator as the oracle needs it: its own account and apps, batches, job outcomes.

Everything goes through the coordinator's grid (:class:`xwpy.server.grid.Grid`). The oracle
submits like any user (same checks, same replication policy), as the account ``oracle``, created at the first start with a token nobody is ever shown:
no one can log in as the oracle, and its jobs are visible to admins. Its apps are public, so
every volunteer's host may run them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy import archive, protocol
from xwpy.lifecycle import JobStatus
from xwpy.oracle.handlers.base import GridApp, Handler, JobView, Unit
from xwpy.server.catalog.rows import App, User
from xwpy.server.errors import Conflict, NotFound
from xwpy.server.grid import Grid

log = Logger()

ORACLE_LOGIN = "oracle"
MAX_RESULT_FILES = 64 << 20


class GridAppUnavailable(Exception):
    pass


FILES_CACHE = 1024  # result archives are immutable (content-addressed): keep the unpacked ones


class GridLink:
    def __init__(self, grid: Grid):
        self.grid = grid
        self.user: User | None = None
        self.apps: dict[str, App] = {}  # hub app name -> grid app
        self.unusable: dict[str, str] = {}  # hub app name -> why its grid app cannot be used
        self._files: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    async def setup(self, handlers: dict[str, Handler]) -> None:
        user = self.grid.user(ORACLE_LOGIN)
        if user is None:
            user, _ = await self.grid.add_user(ORACLE_LOGIN, "user", "")  # its token is never shown
            log.info("created the oracle's grid account {login!r}", login=ORACLE_LOGIN)
        self.user = user
        for name, handler in handlers.items():
            try:
                self.apps[name] = await self._app(handler.grid_app)
            except GridAppUnavailable as e:
                self.unusable[name] = str(e)
                log.error("oracle app {name}: {why}", name=name, why=str(e))

    async def _app(self, spec: GridApp) -> App:
        existed = spec.name in {a.name for a in self.grid.apps_for(self.user)}
        try:
            app = await self.grid.ensure_app(
                self.user, name=spec.name, command=spec.command, limits=protocol.encode(protocol.Limits(**spec.limits)),
                validator=spec.validator, replication=spec.replication, quorum=spec.quorum,
            )
        except Conflict as e:
            raise GridAppUnavailable(str(e)) from None
        if not existed:
            log.info("registered the grid app {name} for the oracle", name=spec.name)
        elif app.command != tuple(spec.command) or app.validator != spec.validator:
            log.warn("the grid app {name} was registered with another command or validator than this "
                     "version's; keeping it as it is", name=spec.name)
        return app

    # -- jobs ---------------------------------------------------------------------------------

    async def submit(self, batch: str, app: str, units: Sequence[Unit]) -> list[int]:
        """Submit UNITS as one batch (committed together); raises ProtocolError/GridError if bad."""
        msg = protocol.parse(
            protocol.SubmitJobs,
            {"batch": batch, "jobs": [{"app": self.apps[app].name, "args": list(u.args)} for u in units]},
        )
        return await self.grid.submit(self.user, msg)

    async def batch_ids(self, batch: str, limit: int) -> list[int]:
        jobs = await self.grid.jobs(owner_id=self.user.id, batch=batch, status=None, after=0, limit=limit)
        return [j.id for j in jobs]

    async def cancel(self, job_ids: list[int]) -> None:
        await self.grid.cancel_jobs(job_ids)

    async def statuses(self, job_ids: list[int]) -> dict[int, str]:
        return await self.grid.job_statuses(job_ids) if job_ids else {}

    async def view(self, job_id: int, tag: str) -> JobView:
        try:
            job = await self.grid.job_for(self.user, job_id)
        except NotFound:
            return JobView(job_id, tag, JobStatus.ERROR.value, error="job not in the catalog")
        files = None
        if job.status == JobStatus.COMPLETED.value and job.result_sha256:
            try:
                files = await self.result_files(job.result_sha256)
            except Exception as e:  # noqa: BLE001 - a certified result we cannot read is a failed job to the handler
                return JobView(job_id, tag, JobStatus.ERROR.value, job.result_sha256, error=f"result unreadable: {e}")
        return JobView(job_id, tag, job.status, job.result_sha256, files, job.error)

    async def result_files(self, sha256: str) -> dict[str, bytes]:
        """The files of a result archive: from the blob store, or the catalog's small blobs."""
        if sha256 in self._files:
            self._files.move_to_end(sha256)
            return self._files[sha256]
        data = await self.grid.read_blob(sha256)
        if data is None:
            raise FileNotFoundError(f"result {sha256} is stored nowhere")
        files = await deferToThread(archive.read_files, data, max_total=MAX_RESULT_FILES)
        self._files[sha256] = files
        if len(self._files) > FILES_CACHE:
            self._files.popitem(last=False)
        return files

    def on_final(self, listener: Callable[[list[int]], None]) -> None:
        self.grid.on_final(listener)

    async def earned(self, job_ids: list[int]) -> list[tuple[int, int, str, float | None]]:
        """(job id, host id, validation, credit) of every replica of these jobs (payouts)."""
        return await self.grid.earned(job_ids)

    def payout_addresses(self) -> dict[int, str | None]:
        return self.grid.payout_addresses()

    def live_hosts(self) -> int:
        return len(self.grid.alive_hosts())
