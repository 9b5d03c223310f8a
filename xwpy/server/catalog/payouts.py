"""The oracle's payout epochs: each epoch's tree (leaves with their proofs), its signed
commitEpoch, and which chain tasks it paid out.

An epoch is stored in one transaction with its signed transaction and with its tasks marked
(``chain_tasks.payout_epoch``) before anything is sent: a task is in one epoch at most, and a
restart finds the very transaction it may have sent. An epoch that failed (its commit reverted,
or its number went to another root) gives its tasks back to the next epoch in the transaction
that says so.

What a host without a payout address earned in an epoch is stored with that epoch as owed to it
(``payout_owed``); the first epoch built after it gives an address pays it, and the rows are
marked paid by that epoch in the transaction that stores it (a row is paid once: ``add`` refuses
an epoch that would pay a row another epoch paid). A failed epoch deletes what it stored as owed
and gives back what it paid.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.server.catalog.schema import chain_tasks, payout_epochs, payout_leaves, payout_owed

COMMITTING, COMMITTED, FAILED = "COMMITTING", "COMMITTED", "FAILED"


@dataclass(frozen=True, slots=True)
class PayoutEpoch:
    id: int
    chain_id: int
    distributor: str
    epoch: int
    root: str  # 0x-hex
    total: int
    status: str
    commit_tx: str
    commit_raw: bytes
    commit_nonce: int
    commit_block: int | None
    error: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    account: str
    amount: int
    proof: tuple[str, ...]  # 0x-hex siblings from the leaf up


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """One committed leaf of an account: what it may claim."""

    epoch: int
    index: int
    account: str
    amount: int
    proof: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnpaidTask:
    id: int
    price: int
    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OwedRow:
    """What a host is owed: earned in epoch FROM_EPOCH (payout_epochs.id) while it had no address."""

    id: int
    host: int
    amount: int
    from_epoch: int


def _epoch(r) -> PayoutEpoch:
    return PayoutEpoch(r.id, r.chain_id, r.distributor, r.epoch, r.root, int(r.total), r.status, r.commit_tx,
                       bytes(r.commit_raw), r.commit_nonce, r.commit_block, r.error, r.created_at)


class EpochTaken(Exception):
    """A task given to a new epoch is in another one already: nothing was stored."""


def _claim(conn, column, ids: list[int], pk: int, taken: str) -> None:
    """Set ``column`` to the epoch ``pk`` on the rows ``ids`` of its table, each only if no epoch
    claimed it before (in chunks: bounded statements); EpochTaken(``taken``) if one had."""
    table = column.table
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        res = conn.execute(table.update().where(table.c.id.in_(part), column.is_(None)).values({column.name: pk}))
        if res.rowcount != len(part):
            raise EpochTaken(taken)


class PayoutsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def unpaid(self, chain_id: int, hub: str, limit: int) -> Deferred:
        """The hub's COMMITTED tasks in no epoch yet, oldest first: (row id, price, job ids)."""

        def thd(conn) -> list[UnpaidTask]:
            q = (select(chain_tasks.c.id, chain_tasks.c.price, chain_tasks.c.jobs)
                 .where(chain_tasks.c.chain_id == chain_id, chain_tasks.c.hub == hub,
                        chain_tasks.c.status == TaskStatus.COMMITTED.value, chain_tasks.c.payout_epoch.is_(None))
                 .order_by(chain_tasks.c.id).limit(limit))
            return [UnpaidTask(r.id, int(r.price), tuple(int(j) for j, _ in (r.jobs or []))) for r in conn.execute(q)]

        return self.catalog.read(thd)

    def open(self, chain_id: int, distributor: str) -> Deferred:
        """The distributor's epoch being committed (at most one), or None."""

        def thd(conn) -> PayoutEpoch | None:
            q = select(payout_epochs).where(payout_epochs.c.chain_id == chain_id,
                                            payout_epochs.c.distributor == distributor,
                                            payout_epochs.c.status == COMMITTING)
            r = conn.execute(q.order_by(payout_epochs.c.id)).first()
            return None if r is None else _epoch(r)

        return self.catalog.read(thd)

    def add(self, *, chain_id: int, distributor: str, epoch: int, root: str, total: int, commit_tx: str,
            commit_raw: bytes, commit_nonce: int, leaves: list[Leaf], task_ids: list[int], now: float,
            owed: dict[int, int] | None = None, owed_paid: list[int] | None = None) -> Deferred:
        """Store a new epoch, its leaves and signed commit, mark its tasks, store what it leaves OWED
        (host -> base units) and mark the OWED_PAID rows paid by it, atomically; its row id.
        Raises EpochTaken (and stores nothing) if one of the tasks is in an epoch already, or one
        of the owed rows was paid already."""

        def thd(conn) -> int:
            pk = conn.execute(payout_epochs.insert().values(
                chain_id=chain_id, distributor=distributor, epoch=epoch, root=root, total=str(total),
                status=COMMITTING, commit_tx=commit_tx, commit_raw=commit_raw, commit_nonce=commit_nonce,
                created_at=now, updated_at=now)).inserted_primary_key[0]
            if leaves:
                conn.execute(payout_leaves.insert(), [
                    dict(epoch_id=pk, idx=leaf.index, account=leaf.account, amount=str(leaf.amount),
                         proof=list(leaf.proof)) for leaf in leaves])
            _claim(conn, chain_tasks.c.payout_epoch, task_ids, pk,
                   f"a task of epoch {epoch} is in another epoch already")
            _claim(conn, payout_owed.c.paid_epoch, list(owed_paid or ()), pk,
                   f"what epoch {epoch} pays as owed was paid by another epoch already")
            rows = [dict(chain_id=chain_id, distributor=distributor, host_id=host, amount=str(amount),
                         from_epoch=pk) for host, amount in sorted((owed or {}).items()) if amount > 0]
            if rows:
                conn.execute(payout_owed.insert(), rows)
            return pk

        return self.catalog.write(thd)

    def resigned(self, pk: int, *, commit_tx: str, commit_raw: bytes, commit_nonce: int, now: float) -> Deferred:
        """The epoch's commit signed anew (its old nonce went to another transaction)."""

        def thd(conn) -> None:
            conn.execute(payout_epochs.update().where(payout_epochs.c.id == pk, payout_epochs.c.status == COMMITTING)
                         .values(commit_tx=commit_tx, commit_raw=commit_raw, commit_nonce=commit_nonce,
                                 updated_at=now))

        return self.catalog.write(thd)

    def committed(self, pk: int, block: int | None, now: float) -> Deferred:
        def thd(conn) -> None:
            conn.execute(payout_epochs.update().where(payout_epochs.c.id == pk)
                         .values(status=COMMITTED, commit_block=block, updated_at=now))

        return self.catalog.write(thd)

    def failed(self, pk: int, why: str, now: float) -> Deferred:
        """The epoch can never be claimed: its tasks go back to the next epoch."""

        def thd(conn) -> None:
            conn.execute(payout_epochs.update().where(payout_epochs.c.id == pk)
                         .values(status=FAILED, error=why[:1000], updated_at=now))
            conn.execute(chain_tasks.update().where(chain_tasks.c.payout_epoch == pk).values(payout_epoch=None))
            # Its tasks are paid again by the next epoch: what they left owed goes, what it paid is owed again.
            conn.execute(payout_owed.delete().where(payout_owed.c.from_epoch == pk))
            conn.execute(payout_owed.update().where(payout_owed.c.paid_epoch == pk).values(paid_epoch=None))

        return self.catalog.write(thd)

    def owed(self, chain_id: int, distributor: str) -> Deferred:
        """What the distributor's epochs left owed to hosts, not paid yet, oldest first."""

        def thd(conn) -> list[OwedRow]:
            q = (select(payout_owed).where(payout_owed.c.chain_id == chain_id,
                                           payout_owed.c.distributor == distributor,
                                           payout_owed.c.paid_epoch.is_(None))
                 .order_by(payout_owed.c.id))
            return [OwedRow(r.id, r.host_id, int(r.amount), r.from_epoch) for r in conn.execute(q)]

        return self.catalog.read(thd)

    def owed_to(self, host_ids: list[int]) -> Deferred:
        """host id -> base units of RLC owed to it and not paid yet (hosts owed nothing are absent)."""

        def thd(conn) -> dict[int, int]:
            out: dict[int, int] = {}
            for chunk in range(0, len(host_ids), 500):
                q = select(payout_owed.c.host_id, payout_owed.c.amount).where(
                    payout_owed.c.host_id.in_(host_ids[chunk:chunk + 500]), payout_owed.c.paid_epoch.is_(None))
                for r in conn.execute(q):
                    out[r.host_id] = out.get(r.host_id, 0) + int(r.amount)
            return out

        return self.catalog.read(thd)

    def list(self, chain_id: int, distributor: str) -> Deferred:
        def thd(conn) -> list[PayoutEpoch]:
            q = select(payout_epochs).where(payout_epochs.c.chain_id == chain_id,
                                            payout_epochs.c.distributor == distributor)
            return [_epoch(r) for r in conn.execute(q.order_by(payout_epochs.c.id))]

        return self.catalog.read(thd)

    def claims(self, chain_id: int, distributor: str, account: str, epoch: int | None = None) -> Deferred:
        """ACCOUNT's leaves in the distributor's COMMITTED epochs (one epoch's with EPOCH), oldest first."""

        def thd(conn) -> list[ClaimRow]:
            q = (select(payout_epochs.c.epoch, payout_leaves.c.idx, payout_leaves.c.account, payout_leaves.c.amount,
                        payout_leaves.c.proof)
                 .join(payout_epochs, payout_epochs.c.id == payout_leaves.c.epoch_id)
                 .where(payout_epochs.c.chain_id == chain_id, payout_epochs.c.distributor == distributor,
                        payout_epochs.c.status == COMMITTED, payout_leaves.c.account == account))
            if epoch is not None:
                q = q.where(payout_epochs.c.epoch == epoch)
            return [ClaimRow(r.epoch, r.idx, r.account, int(r.amount), tuple(r.proof or ()))
                    for r in conn.execute(q.order_by(payout_epochs.c.epoch))]

        return self.catalog.read(thd)
