"""The committer on a node that queues transactions, as geth does (hardhat, automining off: a
block is mined when the test says). There a free nonce below a commit, or a commit offering too
little, stalls every later commit: issue 18, items 2 and 3."""

from __future__ import annotations

import pytest_twisted
from twisted.internet.defer import DeferredLock
from tests.oracle.conftest import automine, deploy, mine
from tests.oracle.test_committer import RESULT, certified, completions, oracle_nonce

from xwpy.chain.tx import fees_of
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.committer import Committer
from xwpy.oracle.payer import Payer
from xwpy.server.catalog import chain as chain_catalog


def committer(catalog, link, **kw) -> Committer:
    return Committer(catalog, link, wall=lambda: 2.0, receipt_wait=0.05, **kw)


async def mine_until_committed(stack, committer, catalog, pk, blocks: int = 12):
    """One look, one block, until the task is final: what the oracle's loop does on a node
    that mines on an interval, without depending on time."""
    for _ in range(blocks):
        t = await catalog.chain.get(pk)
        if t.status.final:
            return t
        await committer.advance(t)
        mine(stack.w3)
    return await catalog.chain.get(pk)


async def ready(hardhat_node, catalog, make_link, n: int = 1):
    stack = deploy(hardhat_node.web3())
    link = make_link(stack.w3, stack.deployment)
    pks = [await certified(stack, catalog, link) for _ in range(n)]
    automine(stack.w3, False)  # from here on, transactions queue until a block is mined
    return stack, link, pks


@pytest_twisted.ensureDeferred
async def test_a_failed_catalog_write_leaves_no_nonce_hole(hardhat_node, catalog, make_link, monkeypatch):
    """The commit is signed, storing it fails, the oracle tries again: the same nonce is signed
    again. (Before, the first signature had used the nonce up: the retry queued above a hole and
    nothing of the oracle's was ever mined again.)"""
    stack, link, [pk] = await ready(hardhat_node, catalog, make_link)
    before = oracle_nonce(stack)
    real = chain_catalog.ChainComponent.update
    failed = []

    def flaky(self, pk_, expect, new, now, **fields):
        if new is TaskStatus.COMMITTING and not failed:
            failed.append(fields["commit_nonce"])
            raise OSError("disk full")
        return real(self, pk_, expect, new, now, **fields)

    monkeypatch.setattr(chain_catalog.ChainComponent, "update", flaky)
    c = committer(catalog, link)
    try:
        await c.advance(await catalog.chain.get(pk))
    except OSError:
        pass
    assert failed == [before]
    t = await mine_until_committed(stack, c, catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.commit_nonce == before
    assert oracle_nonce(stack) == before + 1 and len(completions(stack, t.task_id)) == 1


@pytest_twisted.ensureDeferred
async def test_a_hole_left_by_an_older_version_is_filled(hardhat_node, catalog, make_link):
    """A stored commit queued above a free nonce (what an older version left): the hole is filled
    with a transfer of nothing, and the commit is mined."""
    stack, link, [pk] = await ready(hardhat_node, catalog, make_link)
    before = oracle_nonce(stack)
    t = await catalog.chain.get(pk)
    prepared = await link.prepare_commit(t.task_id, bytes.fromhex(t.request_hash[2:]), bytes.fromhex(t.digest),
                                         RESULT, nonce=before + 1)
    await catalog.chain.update(pk, TaskStatus.CERTIFIED, TaskStatus.COMMITTING, 2.0, commit_tx="0x" + prepared.tx_hash.hex(),
                               commit_raw=prepared.raw, commit_nonce=before + 1, commit_attempts=1)
    await link.broadcast(prepared.raw)
    mine(stack.w3, 3)
    assert (await link.tx_state(prepared.tx_hash)).kind == "pending" and oracle_nonce(stack) == before  # stalled
    t = await mine_until_committed(stack, committer(catalog, link), catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.commit_tx == "0x" + prepared.tx_hash.hex()
    assert oracle_nonce(stack) == before + 2  # the filler, then the commit


@pytest_twisted.ensureDeferred
async def test_a_stuck_commit_is_replaced_with_higher_fees_within_bounded_blocks(hardhat_node, catalog, make_link):
    """The base fee jumps above what the commit offers: after replace_after blocks it is sent
    again on its nonce with higher fees, and mined; the commit after it follows."""
    stack, link, [first, second] = await ready(hardhat_node, catalog, make_link, n=2)
    before = oracle_nonce(stack)
    c = committer(catalog, link, replace_after=3)
    await c.advance(await catalog.chain.get(first))
    stuck = await catalog.chain.get(first)
    offered = fees_of(stuck.commit_raw)
    jump = offered.max_fee * 20
    stack.w3.provider.make_request("hardhat_setNextBlockBaseFeePerGas", [hex(jump)])
    mine(stack.w3)
    assert (await link.tx_state(bytes.fromhex(stuck.commit_tx[2:]))).kind == "pending"
    await c.advance(await catalog.chain.get(second))  # queues behind the stuck one
    t = await mine_until_committed(stack, c, catalog, first, blocks=3 + 3)
    assert t.status is TaskStatus.COMMITTED and t.commit_tx != stuck.commit_tx and t.commit_nonce == before
    assert fees_of(t.commit_raw).max_fee >= offered.max_fee * 9 // 8
    t2 = await mine_until_committed(stack, c, catalog, second, blocks=3 + 3)
    assert t2.status is TaskStatus.COMMITTED and t2.commit_nonce == before + 1
    assert [len(completions(stack, x.task_id)) for x in (t, t2)] == [1, 1]


@pytest_twisted.ensureDeferred
async def test_no_replacement_above_the_cap(hardhat_node, catalog, make_link):
    stack, link, [pk] = await ready(hardhat_node, catalog, make_link)
    c = committer(catalog, link, replace_after=1)
    await c.advance(await catalog.chain.get(pk))
    stuck = await catalog.chain.get(pk)
    c.max_fee = fees_of(stuck.commit_raw).max_fee  # no room for a replacement
    stack.w3.provider.make_request("hardhat_setNextBlockBaseFeePerGas", [hex(c.max_fee * 20)])
    t = await mine_until_committed(stack, c, catalog, pk, blocks=4)
    assert t.status is TaskStatus.COMMITTING and t.commit_tx == stuck.commit_tx
    assert fees_of(t.commit_raw).max_fee == c.max_fee  # nothing above the cap was signed



@pytest_twisted.ensureDeferred
async def test_a_stuck_commit_epoch_is_replaced_with_higher_fees_and_mined_once(hardhat_node, catalog, make_link):
    """The payer's commitEpoch takes the committer's bump path: the base fee jumps above what it
    offers, after replace_after blocks it is signed again on its nonce with higher fees, and the
    epoch's root reaches the distributor exactly once."""
    from tests.oracle.test_payer import GridStub, committed_task, dist, payer_stack

    stack = payer_stack(hardhat_node.web3())
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)
    automine(stack.w3, False)
    before = oracle_nonce(stack)
    p = Payer(catalog, GridStub(), link, DeferredLock(), wall=lambda: 5.0, receipt_wait=0.05, replace_after=3)
    assert await p.new_epoch() is None  # built, stored, sent: pending
    [stuck] = await catalog.payouts.list(link.chain_id, stack.deployment.distributor)
    offered = fees_of(stuck.commit_raw)
    stack.w3.provider.make_request("hardhat_setNextBlockBaseFeePerGas", [hex(offered.max_fee * 20)])
    mine(stack.w3)
    assert (await link.tx_state(bytes.fromhex(stuck.commit_tx[2:]))).kind == "pending"
    for _ in range(3 + 3):
        [e] = await catalog.payouts.list(link.chain_id, stack.deployment.distributor)
        if e.status == "COMMITTED":
            break
        await p.advance()
        mine(stack.w3)
    [done] = await catalog.payouts.list(link.chain_id, stack.deployment.distributor)
    assert done.status == "COMMITTED" and done.commit_tx != stuck.commit_tx
    assert done.commit_nonce == stuck.commit_nonce == before
    assert fees_of(done.commit_raw).max_fee >= offered.max_fee * 9 // 8
    assert oracle_nonce(stack) == before + 1  # one transaction mined on that nonce
    assert dist(stack).epoch_count() == 1 and dist(stack).root(1).hex() == stuck.root[2:]
    assert await p.new_epoch() is None and dist(stack).epoch_count() == 1  # nothing committed twice
