"""The reads that pages, ``status --watch`` and polling scripts repeat, answered from memory, never
stale.

Every change to the jobs and replicas tables is one of the scheduler's committed ``Changes``
records (the dispatcher is their only writer: :func:`xwpy.server.catalog.jobs.apply`), and the
dispatcher hands each one here once it is committed, before anyone is told of it (:meth:`changed`).
So:

* a job's row with its replicas is kept once read and dropped when a committed change touches it
  (the job, one of its replicas, or a new replica of it); a read that began before a change was
  committed is not kept, whatever it saw;
* the counts of jobs by status of an owner and batch (``GET /jobs/summary``, the dashboards) are
  read once, in the catalog writer's queue — so that the count holds exactly the changes committed
  before it and none after — then kept up to date from each committed change: its new jobs (their
  rows) and the status moves the engine records (``Changes.moves``: owner, batch, before, after).
  Under dispatch a commit lands every few milliseconds; a count read again after each (as it was)
  made a batch's summary a catalog read per request, a tenth of a job read's rate;
* the valid results by host (the host lists) are kept until a change updates replicas: each answer
  is stamped with the version its read began under and serves only while that is the latest
  (:class:`xwpy.server.fresh.Fresh`, which also shares one read between the requests that arrive
  while it runs).

What is served is what the catalog holds once the latest commit is in: a read after a write, by
anyone, sees the write. Answers are shared: callers must not change them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from xwpy.server.catalog.rows import Job
from xwpy.server.fresh import Fresh

KEEP_JOBS = 4096  # job rows kept (the least recently read go first)
KEEP_COUNTS = 1024  # (owner, batch) counts kept up to date (the least recently read go first)
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
        self.validations = Version(reactor)  # replicas updated
        # Jobs by status, per (owner id, batch) asked for (None: any), kept exact (see above).
        self._counts: OrderedDict[tuple[int | None, str | None], dict[str, int]] = OrderedDict()
        self._counting: dict[tuple[int | None, str | None], list[Deferred]] = {}  # reads in flight: their callers
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
        """Jobs by status, of one owner (None: every owner's) and batch (None: all): a copy of the
        counts kept, read from the catalog the first time a key is asked for."""
        key = (owner_id, batch)
        kept = self._counts.get(key)
        if kept is None:
            waiters = self._counting.get(key)
            if waiters is None:  # one read for the callers that come while it runs
                waiters = self._counting[key] = []
                read = self.catalog.jobs.summary_in_order(owner_id=owner_id, batch=batch)
                read.addBoth(self._counted, key, waiters)
            mine: Deferred = Deferred()
            waiters.append(mine)
            kept = await mine
        else:
            self._counts.move_to_end(key)
        return dict(kept)

    def _counted(self, result, key, waiters: list[Deferred]) -> None:
        """The count read in the writer's queue, delivered in the order of the commits around it
        (those before it are in it and were told to :meth:`changed` already; those after it are
        told next): kept from now on, and updated by each change; then its callers hear it (or
        the read's failure)."""
        self._counting.pop(key, None)
        if not isinstance(result, Failure):
            self._counts[key] = result
            while len(self._counts) > KEEP_COUNTS:
                self._counts.popitem(last=False)
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

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
            self._counts.clear()  # (a count in flight was read in order: still exact when it lands)
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
        if self._counts and (ch.jobs_new or ch.moves):
            self._count(ch)
        # Coarser than it could be (not every update of a replica changes its validation), and
        # cheap: the valid results are read again at most once per change, when asked.
        if ch.replicas:
            self.validations.version += 1

    def _count(self, ch: Any) -> None:
        """The counts kept, moved by a committed change: +1 for each new job, -1 and +1 for each
        status move, in every kept (owner, batch) the job belongs to (None: any)."""
        counts = self._counts
        moves = [(row["owner_id"], row.get("batch"), None, row["status"]) for row in ch.jobs_new]
        moves += ch.moves
        for owner, batch, before, after in moves:
            keys = ((owner, batch), (owner, None), (None, batch), (None, None)) if batch is not None \
                else ((owner, None), (None, None))  # (a job of no batch is in no named batch's count)
            for key in keys:
                kept = counts.get(key)
                if kept is None:
                    continue
                if before is not None:
                    kept[before] -= 1
                kept[after] = kept.get(after, 0) + 1

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


__all__ = ["KEEP_COUNTS", "KEEP_JOBS", "Reads"]
