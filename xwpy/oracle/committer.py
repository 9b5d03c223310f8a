"""Put a CERTIFIED task's result on chain, once.

Before anything is sent the hub is asked for the task's state; a task already completed there
(by this oracle before a crash), refunded, or past its deadline gets no transaction. A commit is
signed first, and its hash and bytes are stored (status COMMITTING, one transaction) before the
bytes go to the node. After a crash or a node restart the stored hash says where things stand:
mined (done, or reverted: sign again while attempts remain), pending (wait), or unknown to the
node: the very same bytes are sent again if their nonce is still the next one, else the commit
is signed anew (its old nonce went to another transaction, so the old bytes can never be mined).
The hub refuses a second commit of a task in any case.

On a node that queues transactions (geth; hardhat without automining) two more things can
happen. A commit waits behind a free nonce (a hole: its transaction was lost, or an older
version reserved a nonce and failed to store what it signed): the hole is filled with a
transfer of nothing to ourselves. A commit offers too little (the base fee rose): after
``replace_after`` blocks it is signed again on its nonce with fees raised by at least an
eighth (nodes refuse a replacement below +10%), up to a cap. Nothing is signed closer to the
deadline than ``margin`` seconds: a commit mined too late reverts, yet publishes the result
the requester then gets back its price for.

``plan`` and ``bumped_fees`` are the whole decision, pure; :class:`Committer` does the I/O
around them. One commit is signed and sent at a time, so the oracle's nonces go out in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import DeferredLock
from twisted.logger import Logger

from xwpy.chain.contracts import TaskInfo
from xwpy.chain.contracts import TaskStatus as OnChain
from xwpy.chain.tx import Fees, NonceTaken, TxState, TxTimeout, fees_of
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.runner import Outcome
from xwpy.server.catalog.chain import ChainTask

log = Logger()

MAX_ATTEMPTS = 3  # mined-but-reverted commits before giving up
REPLACE_AFTER_BLOCKS = 3  # blocks a commit may stay pending before it is sent with higher fees
BUMP = (9, 8)  # a replacement offers at least 9/8 of the fees it replaces (nodes want +10%)


@dataclass(frozen=True)
class Action:
    kind: str  # committed | expire | fail | sign | resend | wait | fill | replace
    reason: str = ""


def plan(t: ChainTask, on_chain: TaskInfo, chain_time: int, tx: TxState | None, node_nonce: int | None,
         head_block: int | None = None, *, margin: float = 0.0, replace_after: int = REPLACE_AFTER_BLOCKS) -> Action:
    """What to do next for a CERTIFIED or COMMITTING task, given what the chain says.

    TX: the state of the stored commit transaction (COMMITTING only); NODE_NONCE: the oracle's
    next nonce on the node, counting its pending transactions (needed when that transaction is
    pending or unknown there); HEAD_BLOCK: the node's last block (to see a commit stuck since
    ``t.commit_sent_block``). MARGIN: seconds before the deadline past which nothing is signed.
    """
    if on_chain.status is OnChain.NONE:
        return Action("fail", "the hub has no such task (a reorganisation removed its request?)")
    if not same_request(t, on_chain):
        return Action("fail", "the hub's task is another request now (a reorganisation gave its id away)")
    if on_chain.status is OnChain.COMPLETED:
        ours = bytes.fromhex(t.digest or "")
        if on_chain.digest != ours:
            return Action("committed", f"completed on chain with digest 0x{on_chain.digest.hex()}, not ours")
        return Action("committed")
    if on_chain.status is OnChain.REFUNDED:
        return Action("expire", "refunded to the requester")
    if chain_time > on_chain.deadline:
        return Action("expire", "deadline passed before the result was committed")
    late = chain_time + margin > on_chain.deadline
    too_late = Action("expire", f"less than {margin:g} s before the deadline: too late to publish the result")
    if t.status is TaskStatus.CERTIFIED or t.commit_tx is None:
        return too_late if late else Action("sign")
    if tx is None:
        raise ValueError("a COMMITTING task needs its transaction's state")
    if tx.kind == "pending":
        if node_nonce is not None and t.commit_nonce is not None and node_nonce < t.commit_nonce:
            return Action("fill", f"nonce {node_nonce} below this commit's {t.commit_nonce} is free")
        pending_for = None if head_block is None or t.commit_sent_block is None else head_block - t.commit_sent_block
        if pending_for is not None and pending_for >= replace_after and not late:
            return Action("replace", f"pending for {pending_for} blocks")
        return Action("wait")
    if tx.kind == "mined":
        if tx.receipt["status"] == 1:
            return Action("wait")  # mined, yet the task reads open: a node behind its own receipts
        if t.commit_attempts >= MAX_ATTEMPTS:
            return Action("fail", f"{t.commit_attempts} commits reverted")
        return too_late if late else Action("sign", "the last commit reverted")
    if late:
        return too_late
    if node_nonce is not None and t.commit_nonce == node_nonce:
        return Action("resend")
    # Its nonce went to another transaction, or lies above a hole (an automining node refuses
    # it there): signed anew, the commit takes the node's next nonce, filling the hole.
    return Action("sign", "the stored commit can no longer be mined where it is (its nonce moved)")


def bumped_fees(old: Fees, now: Fees, cap: int) -> Fees | None:
    """The fees of a replacement for a transaction offering OLD, when the node suggests NOW: at
    least BUMP times OLD in both parts (rounded up), and NOW if higher. None above CAP (wei per
    gas): the operator's ceiling, so a fee spike cannot drain the oracle's account."""
    num, den = BUMP
    tip = max(-(-old.tip * num // den), now.tip)
    max_fee = max(-(-old.max_fee * num // den), now.max_fee, tip)
    if max_fee > cap:
        return None
    return Fees(max_fee, tip)


def same_request(t: ChainTask, on_chain: TaskInfo) -> bool:
    """Whether the hub's task T.task_id is the request T was computed for: its content hash (rows
    of older versions have none: then the fields the hub keeps)."""
    if t.request_hash is not None:
        return on_chain.request_hash == _b(t.request_hash)
    return (on_chain.app_id, on_chain.requester.lower(), on_chain.callback.lower(), on_chain.price, on_chain.deadline) == (
        t.app_id, t.requester.lower(), t.callback.lower(), t.price, t.deadline)


class Committer:
    def __init__(self, catalog, link, *, wall, chain_now=None, receipt_wait: float = 10.0, margin: float = 30.0,
                 replace_after: int = REPLACE_AFTER_BLOCKS, max_fee: int = 1000 * 10**9):
        self.catalog = catalog
        self.link = link
        self.wall = wall
        self.chain_now = chain_now  # the chain clock's estimate: an idle node's last block is old
        self.receipt_wait = receipt_wait
        self.margin = margin
        self.replace_after = replace_after
        self.max_fee = max_fee
        self._send = DeferredLock()  # nonces go out in order

    async def _set(self, t: ChainTask, new: TaskStatus | None, **fields) -> None:
        await self.catalog.chain.update(t.id, t.status, new, self.wall(), **fields)

    async def advance(self, t: ChainTask) -> Outcome:
        on_chain = await self.link.task(t.task_id)
        head = await self.link.head()
        tx = node_nonce = None
        if t.status is TaskStatus.COMMITTING and t.commit_tx:
            tx = await self.link.tx_state(_b(t.commit_tx))
            if tx.kind != "mined":
                node_nonce = await self.link.pending_nonce()
        now = max(head.timestamp, int(self.chain_now())) if self.chain_now is not None else head.timestamp
        action = plan(t, on_chain, now, tx, node_nonce, head.number, margin=self.margin,
                      replace_after=self.replace_after)
        if action.kind == "committed":
            fields = {}
            if tx is not None and tx.kind == "mined" and tx.receipt["status"] == 1:
                fields = {"commit_block": tx.receipt["blockNumber"], "commit_gas": tx.receipt["gasUsed"]}
            await self._set(t, TaskStatus.COMMITTED, error=action.reason or None, **fields)
            log.info("task {task}: committed on chain", task=t.task_id)
            return Outcome.PROGRESS
        if action.kind in ("expire", "fail"):
            await self._set(t, TaskStatus.EXPIRED if action.kind == "expire" else TaskStatus.FAILED, error=action.reason)
            log.warn("task {task}: {why}", task=t.task_id, why=action.reason)
            return Outcome.PROGRESS
        if action.kind == "wait":
            return await self._await_receipt(t, _b(t.commit_tx))
        if action.kind == "fill":
            async with self._send:
                await self._fill(t, node_nonce, action.reason)
            return Outcome.RETRY
        if action.kind == "replace":
            async with self._send:
                tx_hash = await self._replace(t, on_chain, head.number, action.reason)
            return Outcome.RETRY if tx_hash is None else await self._await_receipt(t, tx_hash)
        if action.kind == "resend":
            async with self._send:
                sent = await self._broadcast(t.commit_raw)
            if sent is None:
                return Outcome.PROGRESS
            log.info("task {task}: sent the stored commit 0x{tx} again", task=t.task_id, tx=t.commit_tx[2:])
            return await self._await_receipt(t, _b(t.commit_tx))
        if action.reason:
            log.info("task {task}: signing a new commit: {why}", task=t.task_id, why=action.reason)
        async with self._send:
            tx_hash = await self._sign_and_send(t, on_chain, head.number)
        if tx_hash is None:
            return Outcome.PROGRESS
        return await self._await_receipt(t, tx_hash)

    async def _broadcast(self, raw: bytes) -> bytes | None:
        try:
            return await self.link.broadcast(raw)
        except NonceTaken:
            return None  # the next look signs anew

    async def _sign_and_send(self, t: ChainTask, on_chain: TaskInfo, head_block: int) -> bytes | None:
        # plan() checked that the hub's task is T's request (by the fields for an older row).
        request_hash = _b(t.request_hash) if t.request_hash else on_chain.request_hash
        prepared = await self.link.prepare_commit(t.task_id, request_hash, _b(t.digest), t.result or b"")
        # The nonce is used only once this is stored: a failed write signs the same one again.
        await self._set(
            t, TaskStatus.COMMITTING, commit_tx="0x" + prepared.tx_hash.hex(), commit_raw=prepared.raw,
            commit_nonce=prepared.nonce, commit_attempts=t.commit_attempts + 1, commit_sent_block=head_block,
        )
        sent = await self._broadcast(prepared.raw)
        return None if sent is None else prepared.tx_hash

    async def _replace(self, t: ChainTask, on_chain: TaskInfo, head_block: int, why: str) -> bytes | None:
        """The stuck commit again, on its nonce, with higher fees; None when over the cap."""
        old = fees_of(t.commit_raw)
        fees = bumped_fees(old, await self.link.suggested_fees(), self.max_fee)
        if fees is None:
            log.warn("task {task}: commit {why}, but a replacement would offer more than the cap of {cap} wei/gas",
                     task=t.task_id, why=why, cap=self.max_fee)
            return None
        request_hash = _b(t.request_hash) if t.request_hash else on_chain.request_hash
        prepared = await self.link.prepare_commit(t.task_id, request_hash, _b(t.digest), t.result or b"",
                                                  nonce=t.commit_nonce, fees=fees)
        await self._set(t, None, commit_tx="0x" + prepared.tx_hash.hex(), commit_raw=prepared.raw,
                        commit_sent_block=head_block)
        log.info("task {task}: commit {why}: replaced by 0x{tx} offering {fee} wei/gas (was {old})",
                 task=t.task_id, why=why, tx=prepared.tx_hash.hex(), fee=fees.max_fee, old=old.max_fee)
        sent = await self._broadcast(prepared.raw)
        return None if sent is None else prepared.tx_hash

    async def _fill(self, t: ChainTask, nonce: int, why: str) -> None:
        """Send a transfer of nothing on NONCE, unless a stored commit holds it (then that one's
        own look replaces it if it is stuck)."""
        holders = [o for o in await self.catalog.chain.active(self.link.chain_id, self.link.hub_address)
                   if o.status is TaskStatus.COMMITTING and o.commit_nonce == nonce and o.id != t.id]
        if holders:
            return
        filler = await self.link.prepare_filler(nonce)
        if await self._broadcast(filler.raw) is not None:
            log.warn("task {task}: {why}: filled with 0x{tx}", task=t.task_id, why=why, tx=filler.tx_hash.hex())

    async def _await_receipt(self, t: ChainTask, tx_hash: bytes) -> Outcome:
        try:
            receipt = await self.link.wait(tx_hash, self.receipt_wait)
        except TxTimeout:
            return Outcome.RETRY
        if receipt["status"] == 1:
            # The hub's commit succeeded, so the task is completed with our digest: no need to ask.
            row = await self.catalog.chain.get(t.id)
            if row.status.final:
                return Outcome.PROGRESS
            await self.catalog.chain.update(t.id, row.status, TaskStatus.COMMITTED, self.wall(),
                                            commit_block=receipt["blockNumber"], commit_gas=receipt["gasUsed"])
            log.info("task {task}: committed on chain", task=t.task_id)
        return Outcome.PROGRESS  # reverted: the next look at the chain says why


def _b(hex_text: str | None) -> bytes:
    text = hex_text or ""
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)
