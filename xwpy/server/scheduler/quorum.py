"""Certification: what a job's replicas add up to. Pure functions, no I/O.

A job is certified when ``quorum`` finished replicas report the same result digest, or when one
result is proven by the app's verifier. Disagreement and failures add replicas, up to
``max_replicas`` results in all; ``max_errors`` failed replicas end the job in ERROR. Replicas lost
with their host, or aborted, are not the job's fault and count against neither bound.

With an app's comparator (:mod:`xwpy.compare`), results need not be identical to agree: each
result carries the digests of the earlier ones the comparator found equivalent to it. The
comparator need not be an equivalence (it may not be transitive), so no classes are formed: a
result's support is the independent results identical or equivalent to it, and the result with
the largest support (the first reported among equals) is certified — the canonical result — once
that support reaches ``quorum``; exactly the results in its support are valid. Each valid result
was found equivalent to the canonical one itself, never only through a third; and one decision
names one canonical result, after which the job is final.

``decide`` sees replicas only, not hosts: a job that still wants replicas but that no host alive
may run (its replicas disagree and every host has given a result, or its quorum needs more distinct
hosts than the site has) is ended by the scheduler's no-quorum rule, documented in ``policy.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from xwpy import protocol
from xwpy.lifecycle import ReplicaStatus
from xwpy.verify import Verdict


@dataclass(frozen=True, slots=True)
class Policy:
    replication: int
    quorum: int
    max_replicas: int
    max_errors: int
    # Adaptive replication (as BOINC's): a job first sent to a trusted host — one whose recent
    # results all agreed with others' — may be certified by that host's result alone, except
    # for random spot checks. Off by default: then nothing is certified without a quorum.
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.quorum <= self.replication <= self.max_replicas:
            raise ValueError(
                "need 1 <= quorum <= replication <= max_replicas, got "
                f"quorum={self.quorum} replication={self.replication} max_replicas={self.max_replicas}"
            )
        if self.max_errors < 1:
            raise ValueError(f"max_errors must be at least 1, got {self.max_errors}")


@dataclass(frozen=True, slots=True)
class ReplicaView:
    id: int
    status: ReplicaStatus
    digest: str | None = None
    verdict: Verdict | None = None  # None when the app has no verifier
    # The replica whose work it continues (it resumed from that one's checkpoint): the two are one
    # vote, or a host could have its lie certified by handing it on in a checkpoint.
    origin: int | None = None
    # The digests of earlier results its app's comparator found equivalent to its own (empty:
    # bitwise, identical results only).
    equivalent: frozenset[str] = frozenset()

    @property
    def lineage(self) -> int:
        return self.id if self.origin is None else self.origin


@dataclass(frozen=True, slots=True)
class Decision:
    certified: str | None = None  # the certified digest
    error: str | None = None  # the job ends in ERROR with this reason
    valid: frozenset[int] = field(default_factory=frozenset)
    invalid: frozenset[int] = field(default_factory=frozenset)
    abort: frozenset[int] = field(default_factory=frozenset)  # active replicas no longer needed
    spawn: int = 0  # new replicas wanted now

    @property
    def final(self) -> bool:
        return self.certified is not None or self.error is not None


def _winner(quorum: int, candidates: list[ReplicaView]) -> str | None:
    proven = [r for r in candidates if r.verdict is Verdict.VERIFIED]
    if proven:
        return min(proven, key=lambda r: r.id).digest
    counts = _votes(candidates)
    if not counts:
        return None
    first_seen = {}
    for r in sorted(candidates, key=lambda r: r.id):
        first_seen.setdefault(r.digest, r.id)
    # Largest agreement wins; among equals, the digest reported first (deterministic).
    digest, n = min(counts.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))
    return digest if n >= quorum else None


def equivalent_pairs(candidates: list[ReplicaView]) -> set[frozenset[str]]:
    """The pairs of distinct digests a comparator found equivalent (empty when bitwise)."""
    return {frozenset((r.digest, d)) for r in candidates for d in r.equivalent if d != r.digest}


def _votes(candidates: list[ReplicaView]) -> Counter:
    """Per digest, the independent results (one per lineage) identical or equivalent to it."""
    pairs = equivalent_pairs(candidates) if any(r.equivalent for r in candidates) else None
    if not pairs:
        return Counter(digest for digest, _ in {(r.digest, r.lineage) for r in candidates})
    digests = {r.digest for r in candidates}
    return Counter({d: len({r.lineage for r in candidates if r.digest == d or frozenset((d, r.digest)) in pairs})
                    for d in digests})


def supports(canonical: str, r: ReplicaView, pairs: set[frozenset[str]]) -> bool:
    """Whether the result ``r`` counts for ``canonical``: identical, or found equivalent to it."""
    return r.digest == canonical or frozenset((canonical, r.digest)) in pairs


def agreement(candidates: list[ReplicaView]) -> int:
    """The most independent results that agree."""
    return max(_votes(candidates).values(), default=0)


SOLO = Policy(1, 1, 1, 1)


def decide(policy: Policy, replicas: list[ReplicaView]) -> Decision:
    if policy.quorum == 1 and len(replicas) == 1:
        # One replica, a quorum of one (adaptive replication's trusted host, an app of replication
        # 1): its result, unless rejected, is certified — what the general rule below gives, at a
        # fifth of its cost (a tenth of the reactor's time for a replica under dispatch).
        r = replicas[0]
        if r.status is ReplicaStatus.DONE and r.digest is not None and r.verdict is not Verdict.REJECTED:
            return Decision(certified=r.digest, valid=frozenset((r.id,)))
    return decide_generally(policy, replicas)


def decide_generally(policy: Policy, replicas: list[ReplicaView]) -> Decision:
    """:func:`decide`, without its shortcut for one replica."""
    done = [r for r in replicas if r.status is ReplicaStatus.DONE]
    candidates = [r for r in done if r.verdict is not Verdict.REJECTED and r.digest is not None]
    active = frozenset(r.id for r in replicas if r.status.active)
    failed = sum(1 for r in replicas if r.status is ReplicaStatus.FAILED)

    winner = _winner(policy.quorum, candidates)
    if winner is not None:
        pairs = equivalent_pairs(candidates)
        valid = frozenset(r.id for r in candidates if supports(winner, r, pairs))
        return Decision(
            certified=winner,
            valid=valid,
            invalid=frozenset(r.id for r in done) - valid,
            abort=active,
        )
    if failed >= policy.max_errors:
        return Decision(
            error=f"{failed} replicas failed (max_errors={policy.max_errors})",
            invalid=frozenset(r.id for r in done),
            abort=active,
        )
    best = agreement(candidates)
    wanted = max(
        policy.quorum - best - len(active),  # enough results to possibly reach quorum
        policy.replication - len(active) - len(candidates),  # the replication floor
        0,
    )
    budget = policy.max_replicas - (len(active) + len(done) + failed)
    spawn = min(wanted, max(budget, 0))
    if spawn == 0 and not active:
        return Decision(
            error=(
                f"no quorum: best agreement {best} of {policy.quorum} needed after "
                f"{len(done)} results (max_replicas={policy.max_replicas})"
            ),
            invalid=frozenset(r.id for r in done),
        )
    return Decision(spawn=spawn)


DEFAULT_MAX_ERRORS = 3


def default_policy(spec: protocol.JobSpec, app) -> Policy:
    """A submitted job's policy: what it asks for, else its app's, within the protocol's bounds."""
    replication = spec.replication or app.replication
    quorum = spec.quorum or min(app.quorum, replication)
    max_replicas = spec.max_replicas or min(protocol.MAX_REPLICAS, max(2 * replication, replication + 2))
    return Policy(replication, quorum, max_replicas, spec.max_errors or DEFAULT_MAX_ERRORS, adaptive=app.adaptive)
