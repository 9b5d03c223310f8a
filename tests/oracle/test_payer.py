"""The payout epochs against real nodes (the embedded chain and ganache) and a real catalog: the
hub pays each commit's pool share to the distributor, an epoch's root reaches it once whatever
was interrupted — the oracle before or after sending, another transaction taking its nonce —
each volunteer's leaf pays exactly its part, and no task is paid out twice. The grid is a stub
(the replicas' credit and the hosts' addresses, as the catalog would give them)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredLock, succeed
from twisted.internet.task import Clock

from xwpy.chain.contracts import fee_split
from xwpy.chain.deploy import Deployment, deploy_demo
from xwpy.chain.accounts import demo_accounts
from xwpy.chain.tx import TxSender
from xwpy.oracle.committer import Committer
from xwpy.oracle.payer import Payer
from tests.oracle.conftest import HASHCHAIN_PRICE, Stack
from tests.oracle.test_committer import Crash, certified, drive

ACC = demo_accounts()
# Three hosts certified the task's job: two VALID with equal credit, an outvoted liar.
EARNED = [(1, 10, "VALID", 2.5), (1, 11, "VALID", 2.5), (1, 12, "INVALID", 9.0)]
ADDRESSES = {10: ACC["requester2"].address, 11: ACC["stranger"].address, 12: ACC["app_owner"].address}


class GridStub:
    def __init__(self, addresses=None):
        self.addresses = dict(ADDRESSES if addresses is None else addresses)

    def earned(self, job_ids):
        return succeed([e for e in EARNED if e[0] in job_ids])

    def payout_addresses(self):
        return dict(self.addresses)


@pytest.fixture
def stack(node) -> Stack:
    return payer_stack(node.web3())


def payer_stack(w3) -> Stack:
    d = deploy_demo(w3, accounts=ACC, pool=None)  # the hub's pool: the distributor
    app_id = d.hub_at(w3).register_app(TxSender(w3, ACC["app_owner"].key), "hashchain", HASHCHAIN_PRICE)
    return Stack(w3, Deployment(**{**d.to_json(), "apps": {**d.apps, "hashchain": app_id}}), ACC)


def payer(catalog, link, grid=None) -> Payer:
    return Payer(catalog, grid or GridStub(), link, DeferredLock(), wall=lambda: 5.0, receipt_wait=5.0)


def nonce(stack) -> int:
    return stack.w3.eth.get_transaction_count(ACC["oracle"].address)


async def committed_task(stack, catalog, link) -> int:
    pk = await certified(stack, catalog, link)
    await drive(Committer(catalog, link, wall=lambda: 2.0), catalog, pk)
    return pk


def dist(stack):
    return stack.deployment.distributor_at(stack.w3)


async def claims(catalog, link, account):
    return await catalog.payouts.claims(link.chain_id, link.deployment.distributor, account)


@pytest_twisted.ensureDeferred
async def test_an_epoch_pays_each_valid_volunteer_its_part_once(stack, catalog, make_link, capsys):
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)
    share = fee_split(stack.hub.task(1).price, stack.deployment.pool_fee_bps)[1]
    assert stack.token.balance_of(dist(stack).address) == share > 0
    before = nonce(stack)
    e = await payer(catalog, link).new_epoch()
    assert e is not None and e.epoch == 1 and dist(stack).epoch_count() == 1 and nonce(stack) == before + 1
    assert dist(stack).root(1).hex() == e.root[2:] and dist(stack).uncommitted() == 0
    with capsys.disabled():
        print(f"\ncommitEpoch gas: {stack.w3.eth.get_transaction_receipt(e.commit_tx)['gasUsed']}")
    [a] = await claims(catalog, link, ACC["requester2"].address)
    [b] = await claims(catalog, link, ACC["stranger"].address)
    assert a.amount + b.amount == share and abs(a.amount - b.amount) <= 1
    assert await claims(catalog, link, ACC["app_owner"].address) == []  # the liar: nothing
    # The next epoch has nothing to pay: the task is in epoch 1, and stays there.
    assert await payer(catalog, link).new_epoch() is None
    assert dist(stack).epoch_count() == 1 and nonce(stack) == before + 1
    for role, c in (("requester2", a), ("stranger", b)):
        was = stack.token.balance_of(ACC[role].address)
        dist(stack).claim(stack.sender(role), c.epoch, c.index, c.amount, [bytes.fromhex(p[2:]) for p in c.proof])
        assert stack.token.balance_of(ACC[role].address) == was + c.amount
    assert stack.token.balance_of(dist(stack).address) == 0


@pytest_twisted.ensureDeferred
async def test_killed_between_storing_and_sending_it_sends_the_same_bytes(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)
    before = nonce(stack)

    async def crash(raw):
        raise Crash()

    monkeypatch.setattr(link, "broadcast", crash)
    with pytest.raises(Crash):
        await payer(catalog, link).new_epoch()
    [stored] = await catalog.payouts.list(link.chain_id, link.deployment.distributor)
    assert stored.status == "COMMITTING" and stored.commit_nonce == before and nonce(stack) == before
    assert dist(stack).epoch_count() == 0
    # Restarted: the oracle's tick finds the stored epoch and sends the very same transaction.
    e = await payer(catalog, make_link(stack.w3, stack.deployment)).advance()
    [done] = await catalog.payouts.list(link.chain_id, link.deployment.distributor)
    assert e is not None and done.status == "COMMITTED" and done.commit_tx == stored.commit_tx
    assert dist(stack).epoch_count() == 1 and nonce(stack) == before + 1


@pytest_twisted.ensureDeferred
async def test_killed_after_sending_it_finds_its_transaction(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)
    before = nonce(stack)

    async def crash(epoch):
        raise Crash()

    monkeypatch.setattr(link, "epoch_state", crash)  # sent, the coordinator dies before recording it
    with pytest.raises(Crash):
        await payer(catalog, link).new_epoch()
    assert dist(stack).epoch_count() == 1 and nonce(stack) == before + 1
    restarted = payer(catalog, make_link(stack.w3, stack.deployment))
    assert await restarted.new_epoch() is not None  # the stored one, found committed: no other
    [done] = await catalog.payouts.list(link.chain_id, link.deployment.distributor)
    assert done.status == "COMMITTED" and dist(stack).epoch_count() == 1 and nonce(stack) == before + 1
    assert await restarted.new_epoch() is None and nonce(stack) == before + 1


@pytest_twisted.ensureDeferred
async def test_a_stored_epoch_whose_nonce_was_taken_is_signed_again_for_the_same_number(stack, catalog, make_link,
                                                                                       monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)

    async def crash(raw):
        raise Crash()

    monkeypatch.setattr(link, "broadcast", crash)
    with pytest.raises(Crash):
        await payer(catalog, link).new_epoch()
    [stored] = await catalog.payouts.list(link.chain_id, link.deployment.distributor)
    # Another transaction of the oracle's key took the nonce: the stored bytes can never be mined.
    stack.token.approve(stack.sender("oracle"), ACC["stranger"].address, 1)
    assert await payer(catalog, make_link(stack.w3, stack.deployment)).advance() is not None  # signed anew, sent
    [done] = await catalog.payouts.list(link.chain_id, link.deployment.distributor)
    assert done.status == "COMMITTED" and done.commit_tx != stored.commit_tx and done.epoch == 1
    assert dist(stack).epoch_count() == 1 and dist(stack).root(1).hex() == stored.root[2:]


@pytest_twisted.ensureDeferred
async def test_a_host_without_an_address_is_owed_its_part_and_paid_it_once_across_a_kill(stack, catalog, make_link,
                                                                                       monkeypatch):
    """Host 11 has no payout address when epoch 1 is built: it is owed its part (kept in the
    catalog, stored with epoch 1). It gives one; epoch 2, built with no new task, pays what it is
    owed; killed between storing epoch 2 and sending it, the restarted oracle sends the same bytes,
    the owed row was cleared with the stored epoch, and nothing is paid twice."""
    link = make_link(stack.w3, stack.deployment)
    await committed_task(stack, catalog, link)
    share = fee_split(stack.hub.task(1).price, stack.deployment.pool_fee_bps)[1]
    grid = GridStub({10: ACC["requester2"].address})
    first = await payer(catalog, link, grid).new_epoch()
    assert first is not None and dist(stack).epoch_count() == 1
    [a] = await claims(catalog, link, ACC["requester2"].address)
    owed = await catalog.payouts.owed_to([10, 11, 12])
    assert owed == {11: share - a.amount} and abs(owed[11] - a.amount) <= 1  # the liar is owed nothing
    assert dist(stack).uncommitted() == owed[11]  # still in the distributor, now owed to host 11
    assert await payer(catalog, link, grid).new_epoch() is None  # no address yet: it waits

    grid.addresses[11] = ACC["stranger"].address
    before = nonce(stack)

    async def crash(raw):
        raise Crash()

    monkeypatch.setattr(link, "broadcast", crash)
    with pytest.raises(Crash):
        await payer(catalog, link, grid).new_epoch()
    stored = (await catalog.payouts.list(link.chain_id, link.deployment.distributor))[-1]
    assert stored.status == "COMMITTING" and stored.epoch == 2 and stored.total == owed[11]
    assert await catalog.payouts.owed_to([11]) == {}  # cleared with the stored epoch
    restarted = make_link(stack.w3, stack.deployment)
    e = await payer(catalog, restarted, grid).advance()
    done = (await catalog.payouts.list(link.chain_id, link.deployment.distributor))[-1]
    assert e is not None and done.status == "COMMITTED" and done.commit_tx == stored.commit_tx
    assert dist(stack).epoch_count() == 2 and nonce(stack) == before + 1 and dist(stack).uncommitted() == 0
    assert await payer(catalog, restarted, grid).new_epoch() is None and nonce(stack) == before + 1
    [b] = await claims(catalog, link, ACC["stranger"].address)
    assert b.epoch == 2 and b.amount == owed[11] and a.amount + b.amount == share
    for role, c in (("requester2", a), ("stranger", b)):
        was = stack.token.balance_of(ACC[role].address)
        dist(stack).claim(stack.sender(role), c.epoch, c.index, c.amount, [bytes.fromhex(p[2:]) for p in c.proof])
        assert stack.token.balance_of(ACC[role].address) == was + c.amount
    assert stack.token.balance_of(dist(stack).address) == 0


@pytest_twisted.ensureDeferred
async def test_a_failed_epoch_gives_back_what_it_paid_as_owed_and_takes_back_what_it_left_owed(catalog):
    kw = dict(chain_id=1, distributor="0x" + "d" * 40, total=0, commit_tx="0x" + "1" * 64, commit_raw=b"x",
              commit_nonce=0, leaves=[], task_ids=[], now=1.0)
    one = await catalog.payouts.add(epoch=1, root="0x" + "a" * 64, owed={11: 40, 12: 2}, **kw)
    await catalog.payouts.committed(one, 1, 2.0)
    rows = {o.host: o for o in await catalog.payouts.owed(1, kw["distributor"])}
    assert {h: o.amount for h, o in rows.items()} == {11: 40, 12: 2}
    two = await catalog.payouts.add(epoch=2, root="0x" + "b" * 64, owed={13: 5}, owed_paid=[rows[11].id], **kw)
    assert await catalog.payouts.owed_to([11, 12, 13]) == {12: 2, 13: 5}
    from xwpy.server.catalog.payouts import EpochTaken
    with pytest.raises(EpochTaken):  # a row is paid once: nothing of this epoch is stored
        await catalog.payouts.add(epoch=3, root="0x" + "c" * 64, owed={14: 1}, owed_paid=[rows[11].id], **kw)
    assert await catalog.payouts.owed_to([11, 12, 13, 14]) == {12: 2, 13: 5}
    await catalog.payouts.failed(two, "reverted", 3.0)
    assert await catalog.payouts.owed_to([11, 12, 13]) == {11: 40, 12: 2}


def test_epochs_come_every_epoch_seconds_on_the_injected_clock():
    clock, calls = Clock(), []
    loop = Payer(None, None, None, DeferredLock(), wall=clock.seconds).every(clock, 3600.0,
                                                                             lambda: calls.append(clock.seconds()))
    clock.advance(3599)
    assert calls == []  # none at start: the first epoch is one epoch away
    clock.advance(1)
    clock.advance(3600)
    assert calls == [3600.0, 7200.0]
    loop.stop()
