"""Drive a task from NEW to CERTIFIED (or FAILED / EXPIRED) with its handler and the grid.

Jobs are submitted exactly once, in three steps that each survive a crash:

1. the batch the handler decided on is written into the task (``pending``, under the next
   ``round`` number) together with the handler's new state: one transaction;
2. it is submitted as the grid batch ``oracle-<task>-<round>`` (the scheduler commits a batch's
   jobs in one transaction: all or none);
3. the job ids are recorded in the task and ``pending`` cleared: one transaction.

After a crash between 1 and 3 the batch name tells: jobs under it exist (adopt them) or not
(submit now). Each status change is a compare-and-set on the status the step started from.
"""

from __future__ import annotations

import enum
import secrets
from typing import Callable

from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy.lifecycle import JobStatus
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.handlers.base import BadParams, Context, Done, Fail, Handler, Submit, Unit, Wait
from xwpy.protocol import ProtocolError
from xwpy.server.catalog.chain import ChainTask
from xwpy.server.errors import GridError

log = Logger()


class Outcome(enum.Enum):
    PROGRESS = "progress"  # the task changed: look at it again
    IDLE = "idle"  # nothing to do until one of its jobs ends
    RETRY = "retry"  # waiting on something outside (the chain): look again later


def batch_name(task_pk: int, round_: int) -> str:
    return f"oracle-{task_pk}-{round_}"


class Runner:
    def __init__(self, catalog, grid, handlers: dict[str, Handler], *, chain_now: Callable[[], float],
                 wall: Callable[[], float], margin: float, on_jobs: Callable[[int, list[int]], None],
                 served: dict[int, str] | None = None):
        self.catalog = catalog
        self.served = served  # app id -> name (ChainLink.served); None: trust the rows
        self.grid = grid
        self.handlers = handlers
        self.chain_now = chain_now
        self.wall = wall
        self.margin = margin
        self.on_jobs = on_jobs

    def _ctx(self, t: ChainTask) -> Context:
        return Context(now=self.chain_now(), deadline=t.deadline, margin=self.margin, hosts=self.grid.live_hosts(),
                       seed=secrets.randbits(256))

    async def _set(self, t: ChainTask, new: TaskStatus | None, **fields) -> None:
        await self.catalog.chain.update(t.id, t.status, new, self.wall(), **fields)

    async def advance(self, t: ChainTask) -> Outcome:
        if t.status is TaskStatus.NEW:
            return await self._start(t)
        if t.status is TaskStatus.RUNNING:
            return await self._step(t)
        raise ValueError(f"the runner does not handle {t.status.value} tasks")

    def _handler(self, t: ChainTask) -> Handler | None:
        """T's handler; None also for a row of a foreign app (ingested by a version that picked
        handlers by the hub app's name, which anyone can register)."""
        if self.served is not None and self.served.get(t.app_id) != t.app:
            return None
        return self.handlers.get(t.app)

    async def _start(self, t: ChainTask) -> Outcome:
        handler = self._handler(t)
        if handler is None:
            await self._set(t, TaskStatus.FAILED, error=f"this oracle runs no app {t.app!r} #{t.app_id}")
            return Outcome.PROGRESS
        if t.app in self.grid.unusable:
            await self._set(t, TaskStatus.FAILED, error=self.grid.unusable[t.app])
            return Outcome.PROGRESS
        ctx = self._ctx(t)
        if ctx.now > t.deadline:
            await self._set(t, TaskStatus.EXPIRED, error="deadline passed before the work started")
            return Outcome.PROGRESS
        try:
            state, decision = await deferToThread(handler.start, t.params, ctx)
        except BadParams as e:
            await self._set(t, TaskStatus.FAILED, error=f"bad params: {e}")
            return Outcome.PROGRESS
        if not isinstance(decision, Submit) or not decision.units:
            reason = decision.reason if isinstance(decision, Fail) else "the handler started no job"
            await self._set(t, TaskStatus.FAILED, error=reason)
            return Outcome.PROGRESS
        await self._decide_batch(t, TaskStatus.RUNNING, decision.units, dict(decision.state or state))
        return Outcome.PROGRESS

    async def _decide_batch(self, t: ChainTask, new: TaskStatus | None, units, state: dict) -> None:
        pending = [[u.tag, list(u.args)] for u in units]
        await self._set(t, new, state=state, round=t.round + 1, pending=pending)

    async def _submit_pending(self, t: ChainTask) -> Outcome:
        units = [Unit(str(tag), tuple(args)) for tag, args in t.pending]
        batch = batch_name(t.id, t.round)
        ids = await self.grid.batch_ids(batch, limit=len(units) + 1)
        if not ids:
            try:
                ids = await self.grid.submit(batch, t.app, units)
            except (GridError, ProtocolError) as e:  # the handler asked for jobs the grid refuses
                await self._set(t, TaskStatus.FAILED, error=f"grid refused the jobs: {e}", pending=None)
                return Outcome.PROGRESS
        else:
            log.info("task {task}: adopting batch {batch} submitted before a restart", task=t.task_id, batch=batch)
        if len(ids) != len(units):
            raise RuntimeError(f"batch {batch} holds {len(ids)} jobs, {len(units)} were decided")
        self.on_jobs(t.id, ids)
        await self._set(t, None, jobs=t.jobs + [(i, u.tag) for i, u in zip(ids, units)], pending=None)
        return Outcome.PROGRESS

    async def _step(self, t: ChainTask) -> Outcome:
        if t.pending:
            return await self._submit_pending(t)
        handler = self._handler(t)
        ctx = self._ctx(t)
        jobs = [await self.grid.view(j, tag) for j, tag in t.jobs]
        active = [j.job_id for j in jobs if not j.final]
        if handler is None or ctx.now > t.deadline:
            why = f"this oracle no longer runs {t.app!r}" if handler is None else "deadline passed before a result"
            await self._set(t, TaskStatus.FAILED if handler is None else TaskStatus.EXPIRED, error=why)
            await self._cancel(active)
            return Outcome.PROGRESS
        decision = await deferToThread(handler.step, t.params, t.state, jobs, ctx)  # pure, but may verify keys
        if isinstance(decision, Wait):
            if decision.state is not None and dict(decision.state) != t.state:
                await self._set(t, None, state=dict(decision.state))
            return Outcome.IDLE
        if isinstance(decision, Submit):
            if not decision.units:
                return Outcome.IDLE
            await self._decide_batch(t, None, decision.units, dict(decision.state or t.state))
            return Outcome.PROGRESS
        if isinstance(decision, Done):
            job = next((j for j in jobs if j.job_id == decision.job_id), None)
            if job is None or job.status != JobStatus.COMPLETED.value or not job.digest:
                raise RuntimeError(f"handler of {t.app!r} returned a result of job {decision.job_id}, not certified")
            await self._set(t, TaskStatus.CERTIFIED, result_job=job.job_id, digest=job.digest, result=decision.result)
            log.info("task {task}: certified by job {job}", task=t.task_id, job=job.job_id)
            await self._cancel([j for j in active if j != job.job_id])
            return Outcome.PROGRESS
        if isinstance(decision, Fail):
            await self._set(t, TaskStatus.FAILED, error=decision.reason)
            log.warn("task {task} failed: {why}", task=t.task_id, why=decision.reason)
            await self._cancel(active)
            return Outcome.PROGRESS
        raise TypeError(f"not a decision: {decision!r}")

    async def _cancel(self, job_ids: list[int]) -> None:
        """Best effort: work no longer needed. A crash before this only wastes some cycles."""
        try:
            await self.grid.cancel(job_ids)
        except Exception as e:  # noqa: BLE001
            log.warn("could not cancel jobs {ids}: {e}", ids=job_ids, e=str(e)[:200])
