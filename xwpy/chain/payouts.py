"""Paying volunteers for what they certified: one epoch's split of the pool's RLC and its Merkle
tree, as contracts/Distributor.vy checks it. Pure (no I/O): tested directly and with hypothesis.

Leaf: keccak256(abi_encode(epoch, index, account, amount)); inner nodes hash their two children in
ascending order (sorted pairs), an odd node out is carried up as it is. A proof is the siblings
from the leaf up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from eth_abi import encode
from eth_utils import keccak, to_checksum_address


def split(pool: int, credits: Mapping[str, int]) -> dict[str, int]:
    """The pool's POOL base units shared in proportion to each address's credit (integers: the
    ledger's credit in thousandths), exactly: each gets the floor of its share, and the remainder
    left by the floors (fewer units than addresses) goes one unit each to the largest fractional
    parts, ties to the lower address. Addresses with no credit get nothing (and are absent)."""
    credits = {a: c for a, c in credits.items() if c > 0}
    total = sum(credits.values())
    if pool <= 0 or total == 0:
        return {}
    out = {a: pool * c // total for a, c in credits.items()}
    left = pool - sum(out.values())
    by_fraction = sorted(credits, key=lambda a: (-(pool * credits[a] % total), a.lower()))
    for a in by_fraction[:left]:
        out[a] += 1
    return {a: v for a, v in out.items() if v > 0}


def epoch_amounts(tasks: Iterable[tuple[int, Mapping[str, int]]]) -> dict[str, int]:
    """What each address earns in an epoch: each task's pool share (base units) split over the
    credit its jobs' certifying replicas earned (address -> thousandths), summed over the tasks.
    A task whose jobs earned no credit pays nobody: its share stays uncommitted in the
    distributor, for the next epoch to distribute (never lost)."""
    out: dict[str, int] = {}
    for share, credits in tasks:
        for a, v in split(share, credits).items():
            out[a] = out.get(a, 0) + v
    return out


def leaf(epoch: int, index: int, account: str, amount: int) -> bytes:
    return keccak(encode(["uint256", "uint256", "address", "uint256"], [epoch, index, account, amount]))


def _parent(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


@dataclass(frozen=True)
class Claim:
    index: int
    account: str
    amount: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class Epoch:
    epoch: int
    root: bytes
    total: int
    claims: tuple[Claim, ...]

    def claim_of(self, account: str) -> Claim | None:
        account = account.lower()
        return next((c for c in self.claims if c.account.lower() == account), None)


def build(epoch: int, amounts: Mapping[str, int]) -> Epoch:
    """The epoch's tree over AMOUNTS (address -> base units, at least one), leaves in address order."""
    accounts = sorted((to_checksum_address(a) for a, v in amounts.items() if v > 0), key=str.lower)
    if not accounts:
        raise ValueError("an epoch pays at least one volunteer")
    value = {to_checksum_address(a): v for a, v in amounts.items()}
    level = [leaf(epoch, i, a, value[a]) for i, a in enumerate(accounts)]
    proofs: list[list[bytes]] = [[] for _ in accounts]
    positions = list(range(len(accounts)))  # each leaf's node index at the current level
    while len(level) > 1:
        for i, pos in enumerate(positions):
            sibling = pos ^ 1
            if sibling < len(level):
                proofs[i].append(level[sibling])
            positions[i] = pos // 2
        level = [_parent(level[k], level[k + 1]) if k + 1 < len(level) else level[k] for k in range(0, len(level), 2)]
    claims = tuple(Claim(i, a, value[a], tuple(proofs[i])) for i, a in enumerate(accounts))
    return Epoch(epoch, level[0], sum(value[a] for a in accounts), claims)


def verify(epoch: int, claim: Claim, root: bytes) -> bool:
    """What the contract checks: the claim's leaf and proof lead to ROOT."""
    node = leaf(epoch, claim.index, claim.account, claim.amount)
    for sibling in claim.proof:
        node = _parent(node, sibling)
    return node == root
