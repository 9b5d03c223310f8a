"""The oracle's bookkeeping: on-chain tasks and the block cursor of each hub it follows.

Every function is one step of the oracle, run as one transaction (``catalog.write``): new tasks
are inserted together with the cursor that covers them, and each status change is a
compare-and-set on the status the oracle last saw, so a step decided on stale state changes
nothing (and says so) instead of undoing a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import func, select
from twisted.internet.defer import Deferred

from xwpy.lifecycle.chaintask import ACTIVE, TaskStatus, transition
from xwpy.server.catalog.schema import chain_cursors, chain_tasks

MAX_INT64 = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Cursor:
    block: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """A TaskRequested event, as the follower hands it to the catalog."""

    task_id: int
    app_id: int
    app: str
    params: bytes
    requester: str
    callback: str
    price: int
    deadline: int
    block_number: int
    log_tx: str
    log_index: int
    request_hash: str | None = None  # 0x-hex


@dataclass(frozen=True, slots=True)
class ChainTask:
    id: int
    chain_id: int
    hub: str
    task_id: int
    app_id: int
    app: str
    params: bytes
    requester: str
    callback: str
    price: int
    deadline: int
    status: TaskStatus
    state: dict
    round: int
    pending: list | None
    jobs: list[tuple[int, str]]
    result_job: int | None
    digest: str | None
    result: bytes | None
    commit_tx: str | None
    commit_raw: bytes | None
    commit_nonce: int | None
    commit_attempts: int
    commit_block: int | None
    commit_gas: int | None
    error: str | None
    block_number: int
    log_tx: str
    log_index: int
    created_at: float
    updated_at: float
    finished_at: float | None = None
    request_hash: str | None = None
    commit_sent_block: int | None = None

    @property
    def job_ids(self) -> list[int]:
        return [j for j, _ in self.jobs]


def _task(r) -> ChainTask:
    return ChainTask(
        id=r.id, chain_id=r.chain_id, hub=r.hub, task_id=r.task_id, app_id=r.app_id, app=r.app,
        params=bytes(r.params), requester=r.requester, callback=r.callback, price=int(r.price),
        deadline=r.deadline, status=TaskStatus(r.status), state=dict(r.state or {}), round=r.round,
        pending=r.pending, jobs=[(int(j), str(t)) for j, t in (r.jobs or [])], result_job=r.result_job,
        digest=r.digest, result=None if r.result is None else bytes(r.result), commit_tx=r.commit_tx,
        commit_raw=None if r.commit_raw is None else bytes(r.commit_raw), commit_nonce=r.commit_nonce,
        commit_attempts=r.commit_attempts, commit_block=r.commit_block, commit_gas=r.commit_gas,
        error=r.error, block_number=r.block_number, log_tx=r.log_tx, log_index=r.log_index,
        created_at=r.created_at, updated_at=r.updated_at, finished_at=r.finished_at, request_hash=r.request_hash,
        commit_sent_block=r.commit_sent_block,
    )


# -- the cursor and new tasks: one transaction ----------------------------------------------------


def get_cursor(conn, chain_id: int, hub: str) -> Cursor | None:
    r = conn.execute(
        select(chain_cursors.c.block, chain_cursors.c.block_hash).where(
            chain_cursors.c.chain_id == chain_id, chain_cursors.c.hub == hub
        )
    ).first()
    return None if r is None else Cursor(r.block, r.block_hash)


def _set_cursor(conn, chain_id: int, hub: str, block: int, block_hash: str, now: float) -> None:
    where = (chain_cursors.c.chain_id == chain_id) & (chain_cursors.c.hub == hub)
    res = conn.execute(chain_cursors.update().where(where).values(block=block, block_hash=block_hash, updated_at=now))
    if res.rowcount == 0:
        conn.execute(
            chain_cursors.insert().values(chain_id=chain_id, hub=hub, block=block, block_hash=block_hash, updated_at=now)
        )


# A task as it starts (its round stays: batch names must not repeat).
_FRESH = dict(
    status=TaskStatus.NEW.value, state={}, pending=None, jobs=[], result_job=None, digest=None, result=None,
    commit_tx=None, commit_raw=None, commit_nonce=None, commit_attempts=0, commit_block=None, commit_gas=None,
    commit_sent_block=None,
)


def ingest(
    conn, chain_id: int, hub: str, expect: Cursor | None, tasks: Iterable[NewTask], block: int, block_hash: str,
    now: float,
) -> list[int]:
    """Insert the tasks not seen before and move the cursor to BLOCK, atomically.

    EXPECT is the cursor the caller read before fetching the events: if another follower moved it
    since, nothing is written and ``ValueError`` says so. Returns the ids of the new rows, and of
    the rows whose id a reorganisation gave to another request: such a row starts again, as NEW,
    for the new request (whatever was computed or committed was for the one that is gone).
    """
    current = get_cursor(conn, chain_id, hub)
    if current != expect:
        raise ValueError(f"cursor moved from {expect} to {current} meanwhile")
    new = []
    for t in tasks:
        request = dict(
            app_id=t.app_id, app=t.app[:64], params=t.params, requester=t.requester, callback=t.callback,
            price=str(t.price), deadline=min(t.deadline, MAX_INT64), block_number=t.block_number, log_tx=t.log_tx,
            log_index=t.log_index, request_hash=t.request_hash,
        )
        exists = conn.execute(
            select(chain_tasks.c.id, chain_tasks.c.request_hash).where(
                chain_tasks.c.chain_id == chain_id, chain_tasks.c.hub == hub, chain_tasks.c.task_id == t.task_id
            )
        ).first()
        if exists is not None:
            if t.request_hash is None or exists.request_hash in (None, t.request_hash):
                continue  # seen in an earlier pass (a rewind after a reorganisation)
            conn.execute(chain_tasks.update().where(chain_tasks.c.id == exists.id).values(
                **request, **_FRESH, error=f"request replaced by a reorganisation (was {exists.request_hash})",
                updated_at=now, finished_at=None,
            ))
            new.append(exists.id)
            continue
        res = conn.execute(
            chain_tasks.insert().values(
                chain_id=chain_id, hub=hub, task_id=t.task_id, **request, **_FRESH, round=0, created_at=now,
                updated_at=now,
            )
        )
        new.append(res.inserted_primary_key[0])
    _set_cursor(conn, chain_id, hub, block, block_hash, now)
    return new


def rewind(conn, chain_id: int, hub: str, block: int, block_hash: str, now: float) -> None:
    """Move the cursor back (a reorganisation deeper than the confirmation depth)."""
    _set_cursor(conn, chain_id, hub, block, block_hash, now)


# -- reading tasks ------------------------------------------------------------------------------


def get(conn, pk: int) -> ChainTask | None:
    r = conn.execute(select(chain_tasks).where(chain_tasks.c.id == pk)).first()
    return None if r is None else _task(r)


def find(conn, chain_id: int, hub: str, task_id: int) -> ChainTask | None:
    r = conn.execute(
        select(chain_tasks).where(
            chain_tasks.c.chain_id == chain_id, chain_tasks.c.hub == hub, chain_tasks.c.task_id == task_id
        )
    ).first()
    return None if r is None else _task(r)


def active(conn, chain_id: int, hub: str) -> list[ChainTask]:
    q = (
        select(chain_tasks)
        .where(
            chain_tasks.c.status.in_([s.value for s in ACTIVE]),
            chain_tasks.c.chain_id == chain_id,
            chain_tasks.c.hub == hub,
        )
        .order_by(chain_tasks.c.id)
    )
    return [_task(r) for r in conn.execute(q)]


def listing(conn, chain_id: int, hub: str, *, after: int = 0, limit: int = 100) -> list[ChainTask]:
    q = (
        select(chain_tasks)
        .where(chain_tasks.c.chain_id == chain_id, chain_tasks.c.hub == hub, chain_tasks.c.id > after)
        .order_by(chain_tasks.c.id)
        .limit(limit)
    )
    return [_task(r) for r in conn.execute(q)]


# -- changing a task: compare-and-set on its status ---------------------------------------------

_FIELDS = frozenset(
    {
        "state", "round", "pending", "jobs", "result_job", "digest", "result", "commit_tx", "commit_raw",
        "commit_nonce", "commit_attempts", "commit_block", "commit_gas", "error", "commit_sent_block",
    }
)


class StaleTask(Exception):
    """The task's status is no longer the one the step was decided on."""


def update(conn, pk: int, expect: TaskStatus, new: TaskStatus | None, now: float, **fields: Any) -> None:
    """Set FIELDS (and status NEW, checked against the life cycle) if the task is still EXPECT.

    Raises StaleTask otherwise, and nothing is written.
    """
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"not a chain task field: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(fields, updated_at=now)
    if new is not None and new is not expect:
        transition(expect, new)
        values["status"] = new.value
        if new.final:
            values["finished_at"] = now
    if "jobs" in values:
        values["jobs"] = [[int(j), str(t)] for j, t in values["jobs"]]
    res = conn.execute(
        chain_tasks.update().where(chain_tasks.c.id == pk, chain_tasks.c.status == expect.value).values(**values)
    )
    if res.rowcount != 1:
        raise StaleTask(f"chain task {pk} is no longer {expect.value}")


def counts(conn, chain_id: int, hub: str) -> dict[str, int]:
    """Tasks of one hub by status (every status, zero included)."""
    q = (select(chain_tasks.c.status, func.count())
         .where(chain_tasks.c.chain_id == chain_id, chain_tasks.c.hub == hub).group_by(chain_tasks.c.status))
    out = {s.value: 0 for s in TaskStatus}
    out.update({status: n for status, n in conn.execute(q)})
    return out


class ChainComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def cursor(self, chain_id: int, hub: str) -> Deferred:
        return self.catalog.read(get_cursor, chain_id, hub)

    def ingest(self, chain_id, hub, expect, tasks, block, block_hash, now) -> Deferred:
        return self.catalog.write(ingest, chain_id, hub, expect, list(tasks), block, block_hash, now)

    def rewind(self, chain_id, hub, block, block_hash, now) -> Deferred:
        return self.catalog.write(rewind, chain_id, hub, block, block_hash, now)

    def get(self, pk: int) -> Deferred:
        return self.catalog.read(get, pk)

    def find(self, chain_id: int, hub: str, task_id: int) -> Deferred:
        return self.catalog.read(find, chain_id, hub, task_id)

    def counts(self, chain_id: int, hub: str) -> Deferred:
        return self.catalog.read(counts, chain_id, hub)

    def active(self, chain_id: int, hub: str) -> Deferred:
        return self.catalog.read(active, chain_id, hub)

    def list(self, chain_id: int, hub: str, *, after: int = 0, limit: int = 100) -> Deferred:
        return self.catalog.read(lambda conn: listing(conn, chain_id, hub, after=after, limit=limit))

    def update(self, pk: int, expect: TaskStatus, new: TaskStatus | None, now: float, **fields) -> Deferred:
        return self.catalog.write(lambda conn: update(conn, pk, expect, new, now, **fields))
