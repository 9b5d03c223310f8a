"""The reads that pages, ``status --watch`` and polling scripts repeat, answered from memory, never
stale.

Every change to the jobs and replicas tables is one of the scheduler's committed ``Changes``
records (the dispatcher is their only writer: :func:`xwpy.server.catalog.jobs.apply`), and the
dispatcher hands each one here once it is committed, before anyone is told of it (:meth:`changed`).
So:

* a job's row with its replicas is kept once read and dropped when a committed change touches it
  (the job, one of its replicas, or a new replica of it); a read that began before a change was
  committed is not kept, whatever it saw;
* the counts of jobs by status (``GET /jobs/summary``, the dashboards) are kept until a change adds
  or updates jobs, and the valid results by host (the host lists) until one updates replicas: each
  answer is stamped with the version its read began under and serves
  only while that is the latest (:class:`xwpy.server.fresh.Fresh`, which also shares one read
  between the requests that arrive while it runs).

What is served is what the catalog holds once the latest commit is in: a read after a write, by
anyone, sees the write. Answers are shared: callers must not change them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from xwpy.server.catalog.rows import Job
from xwpy.server.fresh import Fresh

KEEP_JOBS = 4096  # job rows kept (the least recently read go first)
FOREVER = float("inf")


class Version:
    """A counter that :class:`Fresh` stamps answers with (as it does the dashboards' feed)."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.version = 0


class Reads:
    def __init__(self, catalog, reactor, keep: int = KEEP_JOBS):
        self.catalog = catalog
        self.keep = keep
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._job_of_replica: dict[int, int] = {}  # the replicas of the jobs kept
        self._answers: dict[int, Any] = {}  # a kept job's answer, made once (final jobs: it is fixed)
        self._epoch = 0  # bumped by every committed change of jobs or replicas
        self.statuses = Version(reactor)  # jobs added or updated
        self.validations = Version(reactor)  # replicas updated
        self._counts = Fresh(self.statuses, max_age=FOREVER)
        self._done = Fresh(self.validations, max_age=FOREVER)
        self.hits = self.misses = 0

    # -- reads -------------------------------------------------------------------------------------

    async def job(self, job_id: int) -> Job | None:
        """The job with its replicas, as the catalog holds it (None: no such job)."""
        job = self._jobs.get(job_id)
        if job is not None:
            self.hits += 1
            self._jobs.move_to_end(job_id)
            return job
        self.misses += 1
        epoch = self._epoch
        job = await self.catalog.jobs.get(job_id)
        if job is not None and epoch == self._epoch:  # no commit since the read began: it is current
            self._keep(job)
        return job

    def answer(self, job: Job, make: Callable[[Job], Any]) -> Any:
        """``make(job)``, made once while ``job`` is the row kept (a final job's encoded answer: it
        depends on the row only); made afresh for any other."""
        if self._jobs.get(job.id) is not job:
            return make(job)
        answer = self._answers.get(job.id)
        if answer is None:
            answer = self._answers[job.id] = make(job)
        return answer

    async def counts(self, owner_id: int | None, batch: str | None) -> dict[str, int]:
        """Jobs by status, of one owner (None: every owner's) and batch (None: all)."""
        return await self._counts.get((owner_id, batch), lambda: self.catalog.jobs.summary(owner_id=owner_id, batch=batch),
                                      self.statuses.version)

    async def work_done(self, host_ids: list[int]) -> dict[int, int]:
        """Valid results each of these hosts gave."""
        key = tuple(sorted(host_ids))
        return await self._done.get(key, lambda: self.catalog.jobs.valid_by_host(list(key)), self.validations.version)

    # -- changes -----------------------------------------------------------------------------------

    def changed(self, ch: Any | None) -> None:
        """A scheduler change is committed (None: anything may have changed, drop everything).
        Called before the change's writer and waiters hear of the commit."""
        self._epoch += 1
        if ch is None:
            self._jobs.clear()
            self._job_of_replica.clear()
            self._answers.clear()
            self.statuses.version += 1
            self.validations.version += 1
            return
        if self._jobs:  # (under dispatch load most commits touch no job kept: cost them little)
            touched = set(ch.jobs)
            touched.update(row["id"] for row in ch.jobs_new)
            touched.update(row["job_id"] for row in ch.replicas_new)
            if len(ch.replicas) <= len(self._job_of_replica):
                touched.update(j for r in ch.replicas if (j := self._job_of_replica.get(r)) is not None)
            else:
                touched.update(j for r, j in self._job_of_replica.items() if r in ch.replicas)
            for job_id in touched:
                self._drop(job_id)
        # Coarser than it could be (not every update of a job changes its status, nor of a replica
        # its validation), and cheap: a count is read again at most once per change, when asked.
        if ch.jobs_new or ch.jobs:
            self.statuses.version += 1
        if ch.replicas:
            self.validations.version += 1

    def _keep(self, job: Job) -> None:
        self._drop(job.id)
        self._jobs[job.id] = job
        for r in job.replicas:
            self._job_of_replica[r.id] = job.id
        while len(self._jobs) > self.keep:
            self._drop(next(iter(self._jobs)))

    def _drop(self, job_id: int) -> None:
        job = self._jobs.pop(job_id, None)
        self._answers.pop(job_id, None)
        if job is not None:
            for r in job.replicas:
                self._job_of_replica.pop(r.id, None)


__all__ = ["KEEP_JOBS", "Reads"]
