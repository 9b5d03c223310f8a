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

from dataclasses import dataclass, field

from xwpy import protocol
from xwpy.lifecycle import ReplicaStatus
from xwpy.lifecycle.replica import ACTIVE
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


class _Votes:
    """One digest's votes: the first replica that reported it, the lineages that did, and the
    lineages identical or equivalent to it (the same set as long as no pair names the digest)."""

    __slots__ = ("first", "lineages", "support")

    def __init__(self, first: int, lineages: set[int]) -> None:
        self.first = first
        self.lineages = lineages
        self.support = lineages


class Tally:
    """What a job's results add up to: per digest, the independent results (lineages) identical or
    equivalent to it. A memo kept beside the job from one decision to the next (a result never
    changes once reported), so a decision counts only the results new since the last one: without
    it every decision rebuilt every pair from every result, a cost that grew with the cube of a
    job's results. :func:`decide` gives the same answer with or without one.

    Only the pairs a comparator found are used, each as found: equivalence is never inferred
    through a third result (the comparator need not be transitive)."""

    __slots__ = ("seen", "digests", "pairs")

    def __init__(self) -> None:
        self.seen: set[int] = set()  # the replica ids counted
        self.digests: dict[str, _Votes] = {}  # digest reported -> its votes
        # digest -> the other digests found equivalent to it (None while none is: bitwise)
        self.pairs: dict[str, set[str]] | None = None

    def add(self, r: ReplicaView) -> None:
        """Count one more result (not counted before)."""
        g, lineage = r.digest, r.lineage
        self.seen.add(r.id)
        pairs = self.pairs
        new = ()
        if r.equivalent:
            if pairs is None:
                pairs = self.pairs = {}
            known = pairs.get(g, _EMPTY)
            new = [x for x in r.equivalent if x != g and x not in known]
            if new:
                pairs.setdefault(g, set()).update(new)
                for x in new:
                    pairs.setdefault(x, set()).add(g)
        partners = pairs.get(g, _EMPTY) if pairs else _EMPTY
        digests = self.digests
        v = digests.get(g)
        if v is None:  # a digest first reported now: with everything found equivalent to it so far
            v = digests[g] = _Votes(r.id, {lineage})
            if partners:
                v.support = set(v.lineages)
                for x in partners:
                    w = digests.get(x)
                    if w is not None:
                        v.support |= w.lineages
        else:
            if r.id < v.first:
                v.first = r.id
            v.lineages.add(lineage)
            if new:
                if v.support is v.lineages:
                    v.support = set(v.lineages)
                else:
                    v.support.add(lineage)
                for x in new:
                    w = digests.get(x)
                    if w is not None:
                        v.support |= w.lineages
            elif v.support is not v.lineages:
                v.support.add(lineage)
        for x in partners:  # the digests found equivalent to this one count it too
            w = digests.get(x)
            if w is None:
                continue
            if w.support is w.lineages:
                w.support = set(w.lineages)
            if x in new:
                w.support |= v.lineages
            else:
                w.support.add(lineage)

    def update(self, candidates: list[ReplicaView]) -> "Tally":
        """Count the candidates not counted yet; a tally that counted a result no longer among them
        (not a memo of these results) is counted anew."""
        seen = self.seen
        fresh = [r for r in candidates if r.id not in seen]
        if len(candidates) - len(fresh) != len(seen):
            self.__init__()
            fresh = candidates
        for r in fresh:
            self.add(r)
        return self

    def best(self) -> tuple[str | None, int]:
        """The digest with the largest support (the first reported among equals), and that support."""
        if not self.digests:
            return None, 0
        digest, v = min(self.digests.items(), key=lambda kv: (-len(kv[1].support), kv[1].first))
        return digest, len(v.support)

    def supports(self, canonical: str, digest: str) -> bool:
        """Whether a result ``digest`` counts for ``canonical``: identical, or found equivalent to it."""
        return digest == canonical or (self.pairs is not None and digest in self.pairs.get(canonical, _EMPTY))


_EMPTY: frozenset = frozenset()


_DONE, _FAILED = ReplicaStatus.DONE, ReplicaStatus.FAILED


def agreement(candidates: list[ReplicaView], tally: Tally | None = None) -> int:
    """The most independent results that agree."""
    return (tally or Tally()).update(candidates).best()[1]


SOLO = Policy(1, 1, 1, 1)


def decide(policy: Policy, replicas: list[ReplicaView], tally: Tally | None = None) -> Decision:
    """What the job's replicas add up to. ``tally``: the job's memo of its results counted so far
    (:class:`Tally`; brought up to date here), else they are counted from scratch — the same answer."""
    if policy.quorum == 1 and len(replicas) == 1:
        # One replica, a quorum of one (adaptive replication's trusted host, an app of replication
        # 1): its result, unless rejected, is certified — what the general rule below gives, at a
        # fifth of its cost (a tenth of the reactor's time for a replica under dispatch).
        r = replicas[0]
        if r.status is ReplicaStatus.DONE and r.digest is not None and r.verdict is not Verdict.REJECTED:
            return Decision(certified=r.digest, valid=frozenset((r.id,)))
    return decide_generally(policy, replicas, tally)


def decide_generally(policy: Policy, replicas: list[ReplicaView], tally: Tally | None = None) -> Decision:
    """:func:`decide`, without its shortcut for one replica."""
    done: list[ReplicaView] = []
    candidates: list[ReplicaView] = []
    active: list[int] = []
    failed = 0
    proven: ReplicaView | None = None  # the first result its app's verifier proved
    for r in replicas:  # (one pass: decide runs at every result)
        status = r.status
        if status is _DONE:
            done.append(r)
            if r.digest is not None and r.verdict is not Verdict.REJECTED:
                candidates.append(r)
                if r.verdict is Verdict.VERIFIED and (proven is None or r.id < proven.id):
                    proven = r
        elif status is _FAILED:
            failed += 1
        elif status in ACTIVE:
            active.append(r.id)
    active = frozenset(active)

    tally = (tally or Tally()).update(candidates)
    winner, best = tally.best()
    if proven is not None:
        winner = proven.digest
    elif best < policy.quorum:
        winner = None
    if winner is not None:
        valid = frozenset(r.id for r in candidates if tally.supports(winner, r.digest))
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
