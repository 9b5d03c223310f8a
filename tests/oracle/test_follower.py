"""The follower against a real node and catalog: every request lands in the catalog exactly once,
whatever happens between fetching the events and committing them."""

from __future__ import annotations

import pytest
import pytest_twisted
from sqlalchemy import update
from twisted.internet.defer import Deferred

from xwpy.oracle.follower import Follower
from xwpy.server.catalog import chain as chain_catalog
from xwpy.server.catalog.schema import chain_cursors


def follower(link, catalog, stack, **kw) -> Follower:
    opts = dict(start_block=stack.deployment.block, confirmations=0, block_range=1000, wall=lambda: 1.0)
    opts.update(kw)
    return Follower(link, catalog, **opts)


async def task_ids(catalog, link) -> list[int]:
    rows = await catalog.chain.list(link.chain_id, link.hub_address, limit=1000)
    return [t.task_id for t in rows]


@pytest_twisted.ensureDeferred
async def test_requests_are_ingested_once_across_restarts(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    for _ in range(3):
        stack.request()
    first = await follower(link, catalog, stack).poll()
    assert len(first) == 3
    assert await follower(link, catalog, stack).poll() == []  # nothing new: nothing written
    stack.request(app="hashchain", params=b'{"text":"x","rounds":1}')
    stack.request()
    # A restarted oracle: a new link, a new follower, the same catalog.
    again = await follower(make_link(stack.w3, stack.deployment), catalog, stack).poll()
    assert len(again) == 2
    assert await task_ids(catalog, link) == [1, 2, 3, 4, 5]
    t4 = await catalog.chain.find(link.chain_id, link.hub_address, 4)
    assert (t4.app, t4.params, t4.requester, t4.price) == (
        "hashchain", b'{"text":"x","rounds":1}', stack.accounts["requester"].address, 10**9)
    assert t4.deadline > stack.now()


@pytest_twisted.ensureDeferred
async def test_killed_before_or_after_its_commit_it_neither_loses_nor_repeats(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    for _ in range(2):
        stack.request()
    real = chain_catalog.ChainComponent.ingest

    def killed_before(self, *args):
        raise SystemError("killed after fetching the events, before the transaction")

    monkeypatch.setattr(chain_catalog.ChainComponent, "ingest", killed_before)
    with pytest.raises(SystemError):
        await follower(link, catalog, stack).poll()
    assert await catalog.chain.cursor(link.chain_id, link.hub_address) is None
    assert await task_ids(catalog, link) == []

    async def killed_after(self, *args):
        await real(self, *args)
        raise SystemError("killed after the commit, before anyone heard of it")

    monkeypatch.setattr(chain_catalog.ChainComponent, "ingest", lambda self, *a: Deferred.fromCoroutine(killed_after(self, *a)))
    with pytest.raises(SystemError):
        await follower(link, catalog, stack).poll()
    assert await task_ids(catalog, link) == [1, 2]
    monkeypatch.setattr(chain_catalog.ChainComponent, "ingest", real)
    stack.request()
    assert len(await follower(make_link(stack.w3, stack.deployment), catalog, stack).poll()) == 1
    assert await task_ids(catalog, link) == [1, 2, 3]


@pytest_twisted.ensureDeferred
async def test_confirmations_hold_back_the_newest_blocks(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    f = follower(link, catalog, stack, confirmations=2)
    await f.poll()
    stack.request()
    assert await f.poll() == []
    stack.w3.provider.make_request("evm_mine", [])
    assert await f.poll() == []
    stack.w3.provider.make_request("evm_mine", [])
    assert len(await f.poll()) == 1
    cursor = await catalog.chain.cursor(link.chain_id, link.hub_address)
    assert cursor.block == stack.w3.eth.block_number - 2


@pytest_twisted.ensureDeferred
async def test_small_block_ranges_catch_up_in_one_poll(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    for _ in range(4):
        stack.request()  # approve + request: two blocks each
    new = await follower(link, catalog, stack, block_range=1).poll()
    assert len(new) == 4
    cursor = await catalog.chain.cursor(link.chain_id, link.hub_address)
    assert cursor.block == stack.w3.eth.block_number


@pytest_twisted.ensureDeferred
async def test_a_changed_block_hash_under_the_cursor_reads_the_range_again(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    f = follower(link, catalog, stack, confirmations=1)
    stack.request()
    stack.w3.provider.make_request("evm_mine", [])
    assert len(await f.poll()) == 1
    # As if the chain had reorganised under the cursor: its block's hash is not the stored one.
    await catalog.write(lambda conn: conn.execute(update(chain_cursors).values(block_hash="0x" + "00" * 32)))
    stack.request()
    stack.w3.provider.make_request("evm_mine", [])
    assert len(await f.poll()) == 1  # re-read from before the cursor: task 1 is not repeated
    assert await task_ids(catalog, link) == [1, 2]
    cursor = await catalog.chain.cursor(link.chain_id, link.hub_address)
    assert cursor.block_hash == "0x" + bytes(stack.w3.eth.get_block(cursor.block)["hash"]).hex()


@pytest_twisted.ensureDeferred
async def test_a_strangers_app_with_one_of_our_names_gets_no_task(stack, catalog, make_link):
    """Issue 18, 1: registerApp is open and names are not unique. A stranger's price-0 app named
    "hashchain" must not get grid work (nor an oracle-paid commit): only the deployment's app ids
    are served."""
    stranger = stack.sender("stranger")
    squat = stack.hub.register_app(stranger, "hashchain", 0)
    assert squat != stack.deployment.apps["hashchain"]
    stack.hub.request(stranger, squat, b'{"text":"free work","rounds":100000}', None, stack.now() + 3600)
    ours = stack.request(app="hashchain", params=b'{"text":"x","rounds":1}')
    link = make_link(stack.w3, stack.deployment)
    [pk] = await follower(link, catalog, stack).poll()
    t = await catalog.chain.get(pk)
    assert (t.task_id, t.app_id, t.app) == (ours, stack.deployment.apps["hashchain"], "hashchain")
    assert await task_ids(catalog, link) == [ours]
