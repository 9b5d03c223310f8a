"""The committer against real nodes: a certified result reaches the chain once, whatever was
interrupted — the oracle before or after sending, or the node itself."""

from __future__ import annotations

import pytest
import pytest_twisted
from tests.oracle.conftest import deploy, start_chain

from xwpy.chain.contracts import TaskStatus as OnChain
from xwpy.chain.tx import TxSender
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.localgrid import free_port
from xwpy.oracle.committer import Committer
from xwpy.oracle.follower import Follower

DIGEST = bytes(range(32))
RESULT = b'{"sha256":"' + b"ab" * 32 + b'"}'


class Crash(BaseException):
    """The coordinator dies here (a BaseException: nothing on the way catches it)."""


async def certified(stack, catalog, link, **request) -> int:
    """A request on chain, followed into the catalog and certified: the committer's input."""
    stack.request(**request)
    [pk] = await Follower(link, catalog, start_block=stack.deployment.block, confirmations=0,
                          block_range=1000, wall=lambda: 1.0).poll()
    c = catalog.chain
    await c.update(pk, TaskStatus.NEW, TaskStatus.RUNNING, 1.0, round=1, jobs=[(1, "0")])
    await c.update(pk, TaskStatus.RUNNING, TaskStatus.CERTIFIED, 1.0, result_job=1, digest=DIGEST.hex(), result=RESULT)
    return pk


async def drive(committer, catalog, pk, steps: int = 12):
    for _ in range(steps):
        t = await catalog.chain.get(pk)
        if t.status.final:
            return t
        await committer.advance(t)
    raise AssertionError(f"task {pk} still {t.status.value} after {steps} steps")


def oracle_nonce(stack) -> int:
    return stack.w3.eth.get_transaction_count(stack.accounts["oracle"].address)


def completions(stack, task_id: int) -> list:
    return stack.hub.completed_events(stack.deployment.block, task_id=task_id)


@pytest_twisted.ensureDeferred
async def test_a_certified_result_is_committed_once(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link)
    before = oracle_nonce(stack)
    t = await drive(Committer(catalog, link, wall=lambda: 2.0), catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.error is None
    info = stack.hub.task(t.task_id)
    assert info.status is OnChain.COMPLETED and info.digest == DIGEST
    [event] = completions(stack, t.task_id)
    assert event.result == RESULT and "0x" + event.ref.tx_hash.hex() == t.commit_tx
    assert (t.commit_block, t.commit_gas) == (event.ref.block_number, stack.w3.eth.get_transaction_receipt(t.commit_tx)["gasUsed"])
    assert oracle_nonce(stack) == before + 1
    # Looking again changes nothing and sends nothing.
    assert (await drive(Committer(catalog, link, wall=lambda: 3.0), catalog, pk)).status is TaskStatus.COMMITTED
    assert oracle_nonce(stack) == before + 1


@pytest_twisted.ensureDeferred
async def test_a_task_already_completed_on_chain_gets_no_second_transaction(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link)
    t = await catalog.chain.get(pk)
    # Committed before a crash that lost the catalog's record of it.
    stack.hub.commit(stack.sender("oracle"), t.task_id, DIGEST, RESULT)
    before = oracle_nonce(stack)
    t = await drive(Committer(catalog, make_link(stack.w3, stack.deployment), wall=lambda: 2.0), catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.commit_tx is None
    assert oracle_nonce(stack) == before and len(completions(stack, t.task_id)) == 1


@pytest_twisted.ensureDeferred
async def test_killed_between_storing_and_sending_it_sends_the_same_bytes(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link)
    before = oracle_nonce(stack)

    async def crash(raw):
        raise Crash()

    monkeypatch.setattr(link, "broadcast", crash)
    with pytest.raises(Crash):
        await Committer(catalog, link, wall=lambda: 2.0).advance(await catalog.chain.get(pk))
    stored = await catalog.chain.get(pk)
    assert stored.status is TaskStatus.COMMITTING and stored.commit_nonce == before and oracle_nonce(stack) == before
    t = await drive(Committer(catalog, make_link(stack.w3, stack.deployment), wall=lambda: 3.0), catalog, pk)
    assert t.status is TaskStatus.COMMITTED
    assert t.commit_tx == stored.commit_tx and t.commit_attempts == 1  # the very same transaction
    assert oracle_nonce(stack) == before + 1 and len(completions(stack, t.task_id)) == 1


@pytest_twisted.ensureDeferred
async def test_killed_after_sending_it_finds_its_transaction(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link)
    before = oracle_nonce(stack)

    async def crash(tx_hash, timeout):
        raise Crash()

    monkeypatch.setattr(link, "wait", crash)
    with pytest.raises(Crash):
        await Committer(catalog, link, wall=lambda: 2.0).advance(await catalog.chain.get(pk))
    t = await drive(Committer(catalog, make_link(stack.w3, stack.deployment), wall=lambda: 3.0), catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.commit_attempts == 1
    assert oracle_nonce(stack) == before + 1 and len(completions(stack, t.task_id)) == 1


@pytest_twisted.ensureDeferred
async def test_a_stored_commit_whose_nonce_was_taken_is_signed_again(stack, catalog, make_link, monkeypatch):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link)

    async def crash(raw):
        raise Crash()

    monkeypatch.setattr(link, "broadcast", crash)
    with pytest.raises(Crash):
        await Committer(catalog, link, wall=lambda: 2.0).advance(await catalog.chain.get(pk))
    stored = await catalog.chain.get(pk)
    # Another process used the oracle's key meanwhile: the stored bytes can never be mined now.
    stack.token.approve(stack.sender("oracle"), stack.accounts["stranger"].address, 1)
    t = await drive(Committer(catalog, make_link(stack.w3, stack.deployment), wall=lambda: 3.0), catalog, pk)
    assert t.status is TaskStatus.COMMITTED and t.commit_tx != stored.commit_tx and t.commit_attempts == 2
    assert len(completions(stack, t.task_id)) == 1


@pytest_twisted.ensureDeferred
async def test_past_the_deadline_nothing_is_sent(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link, ttl=60)
    stack.advance(120)
    before = oracle_nonce(stack)
    t = await drive(Committer(catalog, link, wall=lambda: 2.0), catalog, pk)
    assert t.status is TaskStatus.EXPIRED and "deadline" in t.error and oracle_nonce(stack) == before
    # ... and the requester gets the escrow back.
    requester = stack.sender("requester")
    balance = stack.token.balance_of(requester.address)
    stack.hub.refund(requester, t.task_id)
    assert stack.token.balance_of(requester.address) == balance + t.price


@pytest.mark.parametrize("kind", ["embedded", "ganache"])
@pytest_twisted.ensureDeferred
async def test_the_node_restarts_in_the_middle(kind, tmp_path, catalog, make_link, monkeypatch):
    port = free_port()
    opts = {"state_dir": tmp_path / "chain"} if kind == "embedded" else {"db_path": str(tmp_path / "ganache-db")}
    node = start_chain(kind, port=port, **opts)
    try:
        stack = deploy(node.web3())
        link = make_link(stack.w3, stack.deployment)
        first = await certified(stack, catalog, link)
        second = await certified(stack, catalog, link)
        before = oracle_nonce(stack)

        # 1. The node goes down between storing the commit and sending it; it comes back.
        real_broadcast = link.broadcast

        async def node_down(raw):
            node.stop(kill=kind == "embedded")
            return await real_broadcast(raw)

        monkeypatch.setattr(link, "broadcast", node_down)
        committer = Committer(catalog, link, wall=lambda: 2.0)
        with pytest.raises(Exception):
            await committer.advance(await catalog.chain.get(first))
        monkeypatch.setattr(link, "broadcast", real_broadcast)
        stored = await catalog.chain.get(first)
        assert stored.status is TaskStatus.COMMITTING
        with pytest.raises(Exception):
            await committer.advance(stored)  # still down: nothing changes
        node = start_chain(kind, port=port, **opts)
        t = await drive(committer, catalog, first)
        assert t.status is TaskStatus.COMMITTED and t.commit_tx == stored.commit_tx
        assert oracle_nonce(stack) == before + 1

        # 2. The commit is sent and mined, then the node goes down before its receipt is read.
        real_wait = link.wait

        async def node_dies(tx_hash, timeout):
            await real_wait(tx_hash, timeout)
            node.stop(kill=kind == "embedded")
            raise ConnectionError("node gone")

        monkeypatch.setattr(link, "wait", node_dies)
        with pytest.raises(ConnectionError):
            await committer.advance(await catalog.chain.get(second))
        monkeypatch.setattr(link, "wait", real_wait)
        node = start_chain(kind, port=port, **opts)
        t2 = await drive(Committer(catalog, make_link(stack.w3, stack.deployment), wall=lambda: 3.0), catalog, second)
        assert t2.status is TaskStatus.COMMITTED and t2.commit_attempts == 1
        assert oracle_nonce(stack) == before + 2
        assert [len(completions(stack, t.task_id)) for t in (t, t2)] == [1, 1]
    finally:
        node.stop()


@pytest_twisted.ensureDeferred
async def test_a_key_that_is_not_the_hubs_oracle_is_refused_and_given_up(stack, catalog, make_link):
    link = make_link(stack.w3, stack.deployment, key=stack.accounts["stranger"].key)
    pk = await certified(stack, catalog, link)
    t = await drive(Committer(catalog, link, wall=lambda: 2.0), catalog, pk)
    assert t.status is TaskStatus.FAILED and "reverted" in t.error
    assert stack.hub.task(t.task_id).status is OnChain.REQUESTED
    receipt = stack.w3.eth.get_transaction_receipt(t.commit_tx)
    assert receipt["status"] == 0
    reason = TxSender(stack.w3, stack.accounts["stranger"].key).explain(receipt)
    assert "caller is not the oracle" in reason


@pytest_twisted.ensureDeferred
async def test_a_reorganisation_that_gives_the_id_to_another_request_never_delivers_ours(ganache_node, catalog, make_link):
    """Issue 18, 4: a request is its id and its content hash. On ganache (evm_snapshot/revert: the
    embedded chain cannot reorganise), request A is ingested and certified, the chain is
    reorganised, and B, another requester's, gets the same task id: A's result is not committed
    for B, and the follower starts the row again for B."""
    stack = deploy(ganache_node.web3())
    link = make_link(stack.w3, stack.deployment)
    snapshot = stack.w3.provider.make_request("evm_snapshot", [])["result"]
    pk = await certified(stack, catalog, link, params=b'{"prefix":"1A"}')
    a = await catalog.chain.get(pk)
    assert stack.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    b_id = stack.request(params=b'{"prefix":"1B"}', role="requester2")
    for _ in range(3):
        stack.w3.provider.make_request("evm_mine", [])  # the new branch is the longer one
    assert b_id == a.task_id and stack.hub.task(b_id).request_hash.hex() != a.request_hash[2:]
    before = oracle_nonce(stack)
    t = await drive(Committer(catalog, link, wall=lambda: 2.0), catalog, pk)
    assert t.status is TaskStatus.FAILED and "another request" in t.error
    assert oracle_nonce(stack) == before and stack.hub.task(b_id).status is OnChain.REQUESTED
    # The follower sees the reorganisation and the row starts again, for B.
    follower = Follower(link, catalog, start_block=stack.deployment.block, confirmations=0, block_range=1000,
                        wall=lambda: 3.0)
    assert await follower.poll() == [pk]  # rewound, read again: B, in A's row
    row = await catalog.chain.get(pk)
    assert (row.status, row.params, row.requester, row.digest) == (
        TaskStatus.NEW, b'{"prefix":"1B"}', stack.accounts["requester2"].address, None)
    assert row.request_hash == "0x" + stack.hub.task(b_id).request_hash.hex()


@pytest_twisted.ensureDeferred
async def test_nothing_is_signed_too_close_to_the_deadline(stack, catalog, make_link):
    """Issue 18, 7: a commit mined after the deadline reverts, yet publishes the result, and the
    requester gets its price back: within the margin nothing is signed."""
    link = make_link(stack.w3, stack.deployment)
    pk = await certified(stack, catalog, link, ttl=120)
    stack.advance(100)
    before = oracle_nonce(stack)
    t = await drive(Committer(catalog, link, wall=lambda: 2.0, margin=60), catalog, pk)
    assert t.status is TaskStatus.EXPIRED and "too late" in t.error and oracle_nonce(stack) == before
    assert completions(stack, t.task_id) == []
