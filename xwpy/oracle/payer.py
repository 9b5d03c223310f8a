"""The oracle's payout epochs, I/O around :mod:`xwpy.oracle.epochs`.

Every ``epoch_seconds`` (the oracle's reactor, injected: tests drive a ``Clock``) :meth:`Payer.new_epoch`
takes the hub's tasks committed since the last epoch, asks the grid what their jobs' replicas
earned and where each host wants to be paid, adds what earlier epochs owe hosts that have an
address now, builds the tree, and commits its root to the distributor. The signed
``commitEpoch`` is stored with the epoch's leaves, its tasks marked, what it leaves owed and what
owed it pays, in one catalog transaction, before it is sent (the committer's journal: the same sender
and the same lock, so the oracle's nonces go out in order). :meth:`Payer.advance` then drives a
stored epoch to COMMITTED from what the distributor says, and after a restart from its row:
a second ``commitEpoch`` is signed only when the stored one can no longer be mined. A
``commitEpoch`` pending ``replace_after`` blocks (a queueing node whose base fee rose) is signed
again on its nonce with the committer's ``bumped_fees``, up to ``max_fee``: one nonce, so the
epoch's root is committed once whichever of the two is mined.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from twisted.internet import task as ttask
from twisted.internet.defer import DeferredLock
from twisted.logger import Logger

from xwpy.chain import payouts
from xwpy.chain.contracts import fee_split
from xwpy.chain.tx import NonceTaken, TxTimeout, fees_of
from xwpy.oracle.committer import REPLACE_AFTER_BLOCKS, bumped_fees
from xwpy.oracle.epochs import Earned, Owed, Stored, TaskShare, plan_commit, plan_epoch
from xwpy.server.catalog.payouts import Leaf, PayoutEpoch

log = Logger()

MAX_TASKS = 5000  # tasks paid out by one epoch (the rest by the next)
_AGAIN = object()  # a step sent a transaction: look again


class Payer:
    def __init__(self, catalog, grid, link, send_lock: DeferredLock, *, wall, receipt_wait: float = 10.0,
                 replace_after: int = REPLACE_AFTER_BLOCKS, max_fee: int = 1000 * 10**9):
        self.catalog = catalog
        self.grid = grid  # xwpy.oracle.grid.GridLink
        self.link = link
        self._send = send_lock  # the committer's: one signed transaction at a time
        self._busy = DeferredLock()  # one look at the epochs at a time
        self.wall = wall
        self.receipt_wait = receipt_wait
        self.replace_after = replace_after
        self.max_fee = max_fee  # wei per gas: no replacement offers more
        # The block at which each commitEpoch was first seen pending (after a restart: its first
        # look), to tell how long it has been stuck without a catalog column.
        self._pending_since: dict[str, int] = {}

    def every(self, clock, seconds: float, epoch) -> ttask.LoopingCall:
        """Call EPOCH (a Deferred-returning function: the service's, which logs and goes on) every
        SECONDS on CLOCK (the reactor; a ``Clock`` in tests), the first one SECONDS from now."""
        loop = ttask.LoopingCall(epoch)
        loop.clock = clock
        loop.start(seconds, now=False).addErrback(lambda f: log.failure("payout epochs stopped", f))
        return loop

    @property
    def distributor(self) -> str:
        return self.link.distributor.address

    async def new_epoch(self) -> PayoutEpoch | None:
        """Finish the epoch being committed, if any; else build the next one and commit it."""
        async with self._busy:
            open_ = await self.catalog.payouts.open(self.link.chain_id, self.distributor)
            if open_ is not None:
                return await self._advance(open_)
            return await self._build()

    async def advance(self, *, wait: bool = True) -> PayoutEpoch | None:
        """Drive the epoch being committed, if any (each oracle tick: cheap when there is none).
        Without WAIT (the oracle's tick) it neither waits for a pending commitEpoch nor for a look
        already under way: the tick must not hold up the tasks."""
        if not wait and self._busy.locked:
            return None
        async with self._busy:
            open_ = await self.catalog.payouts.open(self.link.chain_id, self.distributor)
            return None if open_ is None else await self._advance(open_, wait=wait)

    async def _build(self) -> PayoutEpoch | None:
        link = self.link
        unpaid = await self.catalog.payouts.unpaid(link.chain_id, link.hub_address, MAX_TASKS)
        owed = [Owed(o.id, o.host, o.amount) for o in await self.catalog.payouts.owed(link.chain_id, self.distributor)]
        addresses = {h: to_checksum_address(a) for h, a in self.grid.payout_addresses().items() if a}
        if not unpaid and not any(o.host in addresses for o in owed):
            return None  # nothing new, and nobody owed has said where to be paid yet
        task_of = {j: t.id for t in unpaid for j in t.job_ids}
        earned = [Earned(task_of[j], host, validation, credit)
                  for j, host, validation, credit in await self.grid.earned(sorted(task_of))] if task_of else []
        bps = link.deployment.pool_fee_bps
        shares = [TaskShare(t.id, fee_split(t.price, bps)[1]) for t in unpaid]
        plan = plan_epoch(shares, earned, addresses, await link.uncommitted(), owed)
        if plan is None:
            log.debug("payouts: {n} task(s) to pay out, nobody to pay yet", n=len(unpaid))
            return None
        number = await link.epoch_count() + 1
        tree = payouts.build(number, plan.amounts)
        leaves = [Leaf(c.index, c.account, c.amount, tuple("0x" + p.hex() for p in c.proof)) for c in tree.claims]
        async with self._send:
            prepared = await link.prepare_epoch(tree.root, tree.total)
            # Stored before it is sent: after a crash the row says which transaction may be out.
            pk = await self.catalog.payouts.add(
                chain_id=link.chain_id, distributor=self.distributor, epoch=number, root="0x" + tree.root.hex(),
                total=tree.total, commit_tx="0x" + prepared.tx_hash.hex(), commit_raw=prepared.raw,
                commit_nonce=prepared.nonce, leaves=leaves, task_ids=list(plan.tasks), now=self.wall(),
                owed=plan.owed, owed_paid=list(plan.owed_paid))
            log.info("payout epoch {n}: {total} base units of RLC to {k} volunteer address(es) for {t} task(s) "
                     "and {p} part(s) owed before, {o} host(s) owed their part (no payout address), "
                     "commitEpoch 0x{tx}", n=number, total=tree.total, k=len(leaves), t=len(plan.tasks),
                     p=len(plan.owed_paid), o=len(plan.owed), tx=prepared.tx_hash.hex())
            await self._broadcast(prepared.raw)
        [row] = [e for e in await self.catalog.payouts.list(link.chain_id, self.distributor) if e.id == pk]
        return await self._advance(row)

    async def _broadcast(self, raw: bytes) -> None:
        try:
            await self.link.broadcast(raw)
        except NonceTaken:
            pass  # the next look signs anew

    async def _advance(self, e: PayoutEpoch, *, wait: bool = True) -> PayoutEpoch | None:
        """Look at a stored epoch until it is committed or failed, or must wait (a few steps: a
        transaction sent again is then looked at at once)."""
        for _ in range(3):
            outcome = await self._step(e, wait)
            if outcome is not _AGAIN:
                return outcome
            e = await self.catalog.payouts.open(self.link.chain_id, self.distributor)
            if e is None:
                return None
        return None

    async def _step(self, e: PayoutEpoch, wait: bool):
        link = self.link
        tx = await link.tx_state(_b(e.commit_tx))
        if tx.kind == "pending" and wait:
            try:
                await link.wait(_b(e.commit_tx), self.receipt_wait)
            except TxTimeout:
                pass  # still pending: plan_commit says whether it has been stuck long enough to replace
            tx = await link.tx_state(_b(e.commit_tx))
        count, root = await link.epoch_state(e.epoch)
        node_nonce = None if tx.kind == "mined" else await link.pending_nonce()
        pending_for = None
        if tx.kind == "pending":
            head = (await link.head()).number
            pending_for = head - self._pending_since.setdefault(e.commit_tx, head)
        action = plan_commit(Stored(e.epoch, _b(e.root), e.commit_nonce), root, count, tx, node_nonce, pending_for,
                             replace_after=self.replace_after)
        if action.kind == "committed":
            block = tx.receipt["blockNumber"] if tx.kind == "mined" and tx.receipt["status"] == 1 else None
            await self.catalog.payouts.committed(e.id, block, self.wall())
            log.info("payout epoch {n} committed: volunteers may claim ({total} base units)", n=e.epoch, total=e.total)
            return e
        if action.kind == "fail":
            await self.catalog.payouts.failed(e.id, action.reason, self.wall())
            log.warn("payout epoch {n}: {why}; its tasks go to the next epoch", n=e.epoch, why=action.reason)
            return None
        if action.kind == "resend":
            async with self._send:
                await self._broadcast(e.commit_raw)
            log.info("payout epoch {n}: sent the stored commitEpoch again", n=e.epoch)
            return _AGAIN
        if action.kind == "replace":
            async with self._send:
                replaced = await self._replace(e, action.reason)
            return _AGAIN if replaced else None
        if action.kind == "sign":
            async with self._send:
                prepared = await link.prepare_epoch(_b(e.root), e.total)
                await self.catalog.payouts.resigned(e.id, commit_tx="0x" + prepared.tx_hash.hex(),
                                                    commit_raw=prepared.raw, commit_nonce=prepared.nonce,
                                                    now=self.wall())
                log.info("payout epoch {n}: {why}: signed anew as 0x{tx}", n=e.epoch, why=action.reason,
                         tx=prepared.tx_hash.hex())
                await self._broadcast(prepared.raw)
            return _AGAIN
        return None  # wait

    async def _replace(self, e: PayoutEpoch, why: str) -> bool:
        """The stuck commitEpoch again, on its nonce, with higher fees; False when over the cap."""
        old = fees_of(e.commit_raw)
        fees = bumped_fees(old, await self.link.suggested_fees(), self.max_fee)
        if fees is None:
            log.warn("payout epoch {n}: commitEpoch {why}, but a replacement would offer more than the cap of "
                     "{cap} wei/gas", n=e.epoch, why=why, cap=self.max_fee)
            return False
        prepared = await self.link.prepare_epoch(_b(e.root), e.total, nonce=e.commit_nonce, fees=fees)
        await self.catalog.payouts.resigned(e.id, commit_tx="0x" + prepared.tx_hash.hex(), commit_raw=prepared.raw,
                                            commit_nonce=prepared.nonce, now=self.wall())
        self._pending_since.pop(e.commit_tx, None)
        log.info("payout epoch {n}: commitEpoch {why}: replaced by 0x{tx} offering {fee} wei/gas (was {old})",
                 n=e.epoch, why=why, tx=prepared.tx_hash.hex(), fee=fees.max_fee, old=old.max_fee)
        await self._broadcast(prepared.raw)
        return True

    async def claims(self, account: str, epoch: int | None = None) -> list:
        return await self.catalog.payouts.claims(self.link.chain_id, self.distributor, to_checksum_address(account),
                                                 epoch)


def _b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text[2:] if hex_text.startswith("0x") else hex_text)
