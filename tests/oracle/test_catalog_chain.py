"""The oracle's catalog component against a real database (SQLite; PostgreSQL when given)."""

from __future__ import annotations

import pytest
import pytest_twisted
from sqlalchemy import func, select
from twisted.internet import reactor

from xwpy.lifecycle import IllegalTransition
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.server.catalog import chain
from xwpy.server.catalog.connector import Catalog
from xwpy.server.catalog.schema import chain_cursors, chain_tasks

CID = 131277322940537  # above 2**32: chain ids need BigInteger
HUB = "0x" + "ab" * 20
PRICE = 2**200 + 7  # uint256 amounts stay exact


@pytest.fixture
def catalog(catalog_url):
    cat = Catalog.open(catalog_url, reactor)
    yield cat
    pytest_twisted.blockon(cat.close())


def new(task_id: int, block: int = 5, **kw) -> chain.NewTask:
    fields = dict(
        task_id=task_id, app_id=1, app="hashchain", params=b'{"x":1}', requester="0x" + "11" * 20,
        callback="0x" + "00" * 20, price=PRICE, deadline=2_000_000_000, block_number=block,
        log_tx="0x" + "22" * 32, log_index=0,
    )
    fields.update(kw)
    return chain.NewTask(**fields)


def count(conn, table):
    return conn.execute(select(func.count()).select_from(table)).scalar()


@pytest_twisted.ensureDeferred
async def test_ingest_writes_tasks_and_cursor_together_and_skips_known_tasks(catalog):
    c = catalog.chain
    assert await c.cursor(CID, HUB) is None
    ids = await c.ingest(CID, HUB, None, [new(1), new(2)], 10, "0xaa", 1.0)
    assert len(ids) == 2
    cur = await c.cursor(CID, HUB)
    assert cur == chain.Cursor(10, "0xaa")
    # A rewound pass sees task 2 again, and task 3: only 3 is new.
    again = await c.ingest(CID, HUB, cur, [new(2), new(3, block=11)], 11, "0xbb", 2.0)
    assert len(again) == 1
    t3 = await c.get(again[0])
    assert (t3.task_id, t3.status, t3.price, t3.deadline, t3.jobs, t3.pending) == (3, TaskStatus.NEW, PRICE, 2_000_000_000, [], None)
    assert await c.find(CID, HUB, 2) == await c.get(ids[1])
    assert [t.task_id for t in await c.active(CID, HUB)] == [1, 2, 3]
    assert await c.active(CID, "0x" + "cd" * 20) == []  # another hub's tasks are its own


@pytest_twisted.ensureDeferred
async def test_ingest_from_a_stale_cursor_writes_nothing(catalog):
    c = catalog.chain
    await c.ingest(CID, HUB, None, [new(1)], 10, "0xaa", 1.0)
    with pytest.raises(ValueError, match="cursor moved"):
        await c.ingest(CID, HUB, None, [new(2)], 12, "0xcc", 2.0)  # a second follower, late
    assert await c.cursor(CID, HUB) == chain.Cursor(10, "0xaa")
    assert await c.find(CID, HUB, 2) is None


@pytest_twisted.ensureDeferred
async def test_a_failure_inside_the_transaction_keeps_neither_tasks_nor_cursor(catalog):
    def ingest_then_crash(conn):
        chain.ingest(conn, CID, HUB, None, [new(1), new(2)], 10, "0xaa", 1.0)
        raise RuntimeError("killed between the inserts and the commit")

    with pytest.raises(RuntimeError):
        await catalog.write(ingest_then_crash)
    assert await catalog.read(lambda conn: (count(conn, chain_tasks), count(conn, chain_cursors))) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_updates_compare_and_set_on_the_status(catalog):
    c = catalog.chain
    [pk] = await c.ingest(CID, HUB, None, [new(1)], 10, "0xaa", 1.0)
    await c.update(pk, TaskStatus.NEW, TaskStatus.RUNNING, 2.0, state={"base": "ff"}, round=1, pending=[["0", ["a"]]])
    with pytest.raises(chain.StaleTask):  # decided on the NEW row: refused, nothing written
        await c.update(pk, TaskStatus.NEW, TaskStatus.FAILED, 3.0, error="late")
    await c.update(pk, TaskStatus.RUNNING, None, 4.0, jobs=[(7, "0")], pending=None)
    t = await c.get(pk)
    assert (t.status, t.state, t.round, t.pending, t.jobs, t.error, t.updated_at) == (
        TaskStatus.RUNNING, {"base": "ff"}, 1, None, [(7, "0")], None, 4.0)
    with pytest.raises(IllegalTransition):
        await c.update(pk, TaskStatus.RUNNING, TaskStatus.COMMITTED, 5.0)
    with pytest.raises(ValueError, match="not a chain task field"):
        await c.update(pk, TaskStatus.RUNNING, None, 5.0, status="COMMITTED")
    raw = bytes(range(256)) * 2
    await c.update(pk, TaskStatus.RUNNING, TaskStatus.CERTIFIED, 6.0, digest="ab" * 32, result=b"r", result_job=7)
    await c.update(pk, TaskStatus.CERTIFIED, TaskStatus.COMMITTING, 7.0, commit_tx="0x" + "cd" * 32,
                   commit_raw=raw, commit_nonce=3, commit_attempts=1)
    await c.update(pk, TaskStatus.COMMITTING, TaskStatus.COMMITTED, 8.0, commit_block=12, commit_gas=150_000)
    t = await c.get(pk)
    assert (t.status, t.commit_raw, t.commit_nonce, t.finished_at, t.result) == (TaskStatus.COMMITTED, raw, 3, 8.0, b"r")
    assert await c.active(CID, HUB) == []
