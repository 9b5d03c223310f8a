"""Payout epochs: what each volunteer earns from the pool, and how the epoch's root reaches the
distributor exactly once. Pure (no I/O): :mod:`xwpy.oracle.payer` does the I/O around it.

An epoch pays the pool share of the chain tasks committed since the last one (each task belongs
to one epoch: ``chain_tasks.payout_epoch``). A task's share — what the hub paid the pool for it,
``fee_split`` — is split over the credit its jobs' VALID replicas earned, per host, and each
host's part goes to its payout address (``payouts.split``: exact, no dust). A host with no payout
address when the epoch is built is owed its part (``EpochPlan.owed``: the catalog's
``payout_owed``, stored with the epoch): the first epoch built after it gives an address pays
what it is owed to that address with its new parts (``EpochPlan.owed_paid``: cleared with that
epoch), so nothing stays in the distributor for ever and nobody else gets it. An epoch never
commits more than the distributor holds uncommitted, and never leaves owed more than it still
holds: if the new parts would exceed what it holds beside what is owed (tasks paid to an older
pool), they are scaled down to that (``split`` again); what is owed is paid whole.

The commit is journaled as a task's is (``committer.plan``): the signed ``commitEpoch`` is stored
with the epoch's tree before it is sent; after a crash the distributor's root for the epoch's
number says whether it is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from xwpy.chain.payouts import split
from xwpy.chain.tx import TxState
from xwpy.lifecycle.replica import Validation

CREDIT_UNITS = 1000  # credit is kept to the millisecond (scheduler/credit.PRECISION): split integers


@dataclass(frozen=True)
class TaskShare:
    task: int  # the chain task's row id
    share: int  # base units of RLC its commit paid the pool


@dataclass(frozen=True)
class Earned:
    """One replica of one of a task's jobs, as the catalog has it."""

    task: int
    host: int
    validation: str
    credit: float | None


@dataclass(frozen=True)
class Owed:
    """What a host was owed by an earlier epoch (it had no payout address then), not paid yet."""

    id: int  # the catalog's row
    host: int
    amount: int  # base units of RLC


@dataclass(frozen=True)
class EpochPlan:
    amounts: dict[str, int]  # payout address -> base units
    tasks: tuple[int, ...]  # the tasks it pays out (each then belongs to this epoch)
    owed_paid: tuple[int, ...] = ()  # the Owed rows it pays (cleared with it)
    owed: dict[int, int] = field(default_factory=dict)  # host -> base units of these tasks it is owed from now on

    @property
    def total(self) -> int:
        return sum(self.amounts.values())


def plan_epoch(unpaid: Sequence[TaskShare], earned: Iterable[Earned], addresses: Mapping[int, str | None],
               available: int, owed: Sequence[Owed] = ()) -> EpochPlan | None:
    """The next epoch over the UNPAID tasks (committed, in no epoch yet) and what earlier epochs
    OWED hosts that had no address, or None when it would pay nobody (then the tasks wait for a
    later one, when a volunteer has said where to be paid, and what is owed stays owed).

    EARNED: their jobs' replicas; only VALID ones with credit count. ADDRESSES: host -> payout
    address (None: none given). AVAILABLE: what the distributor holds uncommitted (what is owed
    included: it was never committed). Of each task's share, the parts of hosts with an address
    are paid, the others' are owed (``EpochPlan.owed``); an Owed row of a host that has an address
    now is paid to it whole (``EpochPlan.owed_paid``), the others stay owed."""
    credits: dict[int, dict[int, int]] = {}
    for e in earned:
        if e.validation != Validation.VALID.value or not e.credit or e.credit <= 0:
            continue
        units = round(e.credit * CREDIT_UNITS)
        if units > 0:
            per_host = credits.setdefault(e.task, {})
            per_host[e.host] = per_host.get(e.host, 0) + units
    # Each task's share split over its hosts: a part to an address ("a" keys) or owed ("h" keys).
    parts: dict[str, int] = {}
    for t in unpaid:
        by_host = credits.get(t.task, {})
        for key, amount in split(t.share, {f"{host:020d}": c for host, c in by_host.items()}).items():
            address = addresses.get(int(key))
            part = "a" + address if address else "h" + key
            parts[part] = parts.get(part, 0) + amount
    # What was owed, paid whole to the hosts that have an address now: its RLC is in the
    # distributor already (their tasks' shares, never committed).
    paying = [o for o in owed if addresses.get(o.host) and o.amount > 0]
    backed = max(available, 0) - sum(o.amount for o in paying)
    if backed < 0:  # the distributor holds less than is owed (never, if each share was paid to it)
        paying, backed = [], max(available, 0)
    if sum(parts.values()) > backed:
        # Less uncommitted than the shares (tasks paid to an older pool): the new parts, paid or
        # owed, scaled down to what the distributor holds beside what is owed (``split``: exact).
        parts = split(backed, parts)
    out: dict[str, int] = {}
    owed_now: dict[int, int] = {}
    for part, amount in parts.items():
        if part[0] == "a":
            out[part[1:]] = out.get(part[1:], 0) + amount
        elif amount > 0:
            owed_now[int(part[1:])] = owed_now.get(int(part[1:]), 0) + amount
    for o in paying:
        address = addresses[o.host]
        out[address] = out.get(address, 0) + o.amount
    out = {a: v for a, v in out.items() if v > 0}
    if not out:
        return None
    return EpochPlan(out, tuple(t.task for t in unpaid), tuple(o.id for o in paying), owed_now)


@dataclass(frozen=True)
class Stored:
    """A stored epoch whose commitEpoch was signed, as the catalog has it."""

    epoch: int
    root: bytes
    commit_nonce: int


@dataclass(frozen=True)
class Action:
    kind: str  # committed | fail | wait | resend | sign | replace
    reason: str = ""


def plan_commit(e: Stored, root_on_chain: bytes, epoch_count: int, tx: TxState, node_nonce: int | None,
                pending_for: int | None = None, *, replace_after: int | None = None) -> Action:
    """What to do next for an epoch whose commitEpoch was stored, given the distributor's root for
    its number, its epoch count, the stored transaction's state and the oracle's next nonce.
    PENDING_FOR: blocks the stored transaction has been pending; from REPLACE_AFTER on it is
    signed again on its nonce with higher fees (a queueing node whose base fee rose: the
    committer's ``bumped_fees``), as a task's commit is.

    Never a second commit of the epoch: a new transaction is signed only when the stored one can
    no longer be mined (its nonce went to another transaction, or it reverted) and the
    distributor does not have the root."""
    if root_on_chain == e.root:
        return Action("committed")
    if epoch_count >= e.epoch:
        # The number went to another root: its leaves (which name the number) can never be claimed.
        return Action("fail", f"the distributor's epoch {e.epoch} has another root: build the epoch again")
    if tx.kind == "pending":
        if replace_after is not None and pending_for is not None and pending_for >= replace_after:
            return Action("replace", f"pending for {pending_for} blocks")
        return Action("wait")
    if tx.kind == "mined":
        if tx.receipt["status"] == 1:
            return Action("wait")  # mined, yet the root reads empty: a node behind its own receipts
        return Action("fail", "commitEpoch reverted: build the epoch again")
    if epoch_count != e.epoch - 1:
        # Mined now, it would get another number than its leaves name (a distributor reset?).
        return Action("fail", f"the distributor is at epoch {epoch_count}, this one was built as {e.epoch}")
    if node_nonce is not None and node_nonce == e.commit_nonce:
        return Action("resend")
    return Action("sign", "the stored commitEpoch can no longer be mined where it is (its nonce moved)")
