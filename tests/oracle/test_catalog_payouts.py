"""The payout epochs' catalog component against a real database (SQLite; PostgreSQL when given):
an epoch is stored with its leaves, its signed commit and its tasks in one transaction; a task is
in one epoch at most; a failed epoch gives its tasks back; only committed leaves are claims."""

from __future__ import annotations

import pytest
import pytest_twisted
from sqlalchemy import select
from twisted.internet import reactor

from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.server.catalog.connector import Catalog
from xwpy.server.catalog.payouts import EpochTaken, Leaf
from xwpy.server.catalog.schema import chain_tasks, payout_epochs, payout_leaves
from tests.oracle.test_catalog_chain import CID, HUB, PRICE, new

DIST = "0x" + "cd" * 20
ALICE, BOB = "0x" + "a1" * 20, "0x" + "b0" * 20


@pytest.fixture
def catalog(catalog_url):
    cat = Catalog.open(catalog_url, reactor)
    yield cat
    pytest_twisted.blockon(cat.close())


async def committed_tasks(catalog, n: int) -> list[int]:
    ids = await catalog.chain.ingest(CID, HUB, None, [new(i + 1) for i in range(n)], 10, "0xaa", 1.0)

    def thd(conn):
        conn.execute(chain_tasks.update().where(chain_tasks.c.id.in_(ids[:-1]))
                     .values(status=TaskStatus.COMMITTED.value, jobs=[[7, "0"], [8, "1"]]))

    await catalog.write(thd)  # the last one stays NEW: not to be paid out
    return ids


def epoch(number: int, tasks: list[int], **kw):
    fields = dict(chain_id=CID, distributor=DIST, epoch=number, root="0x" + "ee" * 32, total=2**70 + 3,
                  commit_tx="0x" + f"{number:064x}", commit_raw=b"signed", commit_nonce=4,
                  leaves=[Leaf(0, ALICE, 2**70, ("0x" + "01" * 32,)), Leaf(1, BOB, 3, ("0x" + "02" * 32,))],
                  task_ids=tasks, now=5.0)
    fields.update(kw)
    return fields


@pytest_twisted.ensureDeferred
async def test_an_epoch_takes_its_tasks_once_and_a_failed_one_gives_them_back(catalog):
    p = catalog.payouts
    ids = await committed_tasks(catalog, 3)
    unpaid = await p.unpaid(CID, HUB, 100)
    assert [(t.id, t.price, t.job_ids) for t in unpaid] == [(ids[0], PRICE, (7, 8)), (ids[1], PRICE, (7, 8))]
    assert await p.open(CID, DIST) is None

    pk = await p.add(**epoch(1, [ids[0], ids[1]]))
    assert await p.unpaid(CID, HUB, 100) == []
    e = await p.open(CID, DIST)
    assert (e.id, e.epoch, e.total, e.status, e.commit_raw) == (pk, 1, 2**70 + 3, "COMMITTING", b"signed")
    assert await p.claims(CID, DIST, ALICE) == []  # not committed yet: nothing to claim

    # A second epoch naming a task the first took stores nothing at all.
    with pytest.raises(EpochTaken):
        await p.add(**epoch(2, [ids[1]]))
    rows = await catalog.read(lambda conn: conn.execute(select(payout_epochs.c.id)).all())
    assert [r.id for r in rows] == [pk]

    await p.failed(pk, "commitEpoch reverted", 6.0)
    assert [t.id for t in await p.unpaid(CID, HUB, 100)] == [ids[0], ids[1]]
    assert await p.open(CID, DIST) is None

    pk2 = await p.add(**epoch(1, [ids[0], ids[1]]))
    await p.resigned(pk2, commit_tx="0x" + "99" * 32, commit_raw=b"again", commit_nonce=5, now=7.0)
    e = await p.open(CID, DIST)
    assert (e.commit_tx, e.commit_raw, e.commit_nonce) == ("0x" + "99" * 32, b"again", 5)
    await p.committed(pk2, 42, 8.0)
    assert await p.open(CID, DIST) is None
    [c] = await p.claims(CID, DIST, ALICE)
    assert (c.epoch, c.index, c.amount, c.proof) == (1, 0, 2**70, ("0x" + "01" * 32,))
    assert [c.amount for c in await p.claims(CID, DIST, BOB, 1)] == [3]
    assert await p.claims(CID, DIST, BOB, 2) == []
    assert await p.claims(CID, "0x" + "ef" * 20, BOB) == []  # another distributor's
    leaves = await catalog.read(lambda conn: conn.execute(select(payout_leaves)).all())
    assert len(leaves) == 4  # the failed epoch's leaves stay, for the record
