"""Certification decisions, case by case and as properties over arbitrary replica histories."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.lifecycle import ReplicaStatus as S
from xwpy.server.scheduler.quorum import Policy, ReplicaView, decide, decide_generally
from xwpy.verify import Verdict

P = Policy(replication=3, quorum=2, max_replicas=6, max_errors=3)


def done(i, digest, verdict=None):
    return ReplicaView(i, S.DONE, digest, verdict)


def test_new_job_wants_its_replication():
    assert decide(P, []).spawn == 3


def test_two_agreeing_results_certify_and_abort_the_rest():
    d = decide(P, [done(1, "a"), done(2, "a"), ReplicaView(3, S.RUNNING)])
    assert d.certified == "a" and d.valid == {1, 2} and d.abort == {3} and not d.invalid


def test_disagreement_with_nothing_running_asks_for_one_more():
    d = decide(P, [done(1, "a"), done(2, "b"), done(3, "c")])
    assert d.certified is None and d.spawn == 1


def test_the_minority_is_invalid_once_certified():
    d = decide(P, [done(1, "a"), done(2, "b"), done(3, "a")])
    assert d.certified == "a" and d.invalid == {2}


def test_lost_replicas_are_replaced_without_using_the_budget():
    reps = [ReplicaView(i, S.LOST) for i in range(1, 20)] + [ReplicaView(20, S.RUNNING)]
    d = decide(P, reps)
    assert d.spawn == 2 and d.error is None


def test_too_many_failures_end_in_error():
    d = decide(P, [ReplicaView(i, S.FAILED) for i in (1, 2, 3)])
    assert d.error and "3 replicas failed" in d.error


def test_no_quorum_within_max_replicas_is_an_error():
    reps = [done(i, str(i)) for i in range(1, 7)]
    d = decide(P, reps)
    assert d.error and d.error.startswith("no quorum") and d.invalid == set(range(1, 7))


def test_a_verified_result_certifies_alone():
    d = decide(P, [done(1, "m", Verdict.VERIFIED), ReplicaView(2, S.RUNNING)])
    assert d.certified == "m" and d.abort == {2}


def test_unverifiable_claims_need_the_quorum_and_rejected_ones_do_not_count():
    assert decide(P, [done(1, "none", Verdict.UNVERIFIABLE), ReplicaView(2, S.RUNNING), ReplicaView(3, S.RUNNING)]).certified is None
    d = decide(P, [done(1, "x", Verdict.REJECTED), done(2, "x", Verdict.REJECTED)])
    assert d.certified is None and d.spawn == 3


@pytest.mark.parametrize("bad", [(3, 4, 5, 1), (3, 2, 2, 1), (3, 2, 6, 0), (1, 0, 1, 1)])
def test_policy_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        Policy(*bad)


policies = st.builds(
    lambda r, q, extra, e: Policy(r, min(q, r), r + extra, e),
    st.integers(1, 5), st.integers(1, 5), st.integers(0, 5), st.integers(1, 4),
)
replica = st.tuples(
    st.sampled_from(list(S)),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([None, Verdict.VERIFIED, Verdict.UNVERIFIABLE, Verdict.REJECTED]),
)


@settings(max_examples=500)
@given(policies, st.lists(replica, max_size=12), st.booleans())
def test_invariants(policy, raw, with_verifier):
    reps = [
        ReplicaView(i, status, digest if status is S.DONE else None, verdict if (with_verifier and status is S.DONE) else None)
        for i, (status, digest, verdict) in enumerate(raw, 1)
    ]
    d = decide(policy, reps)
    done_reps = [r for r in reps if r.status is S.DONE]
    active = {r.id for r in reps if r.status.active}
    # At most one outcome.
    assert not (d.certified and d.error)
    if d.certified is not None:
        agreeing = [r for r in done_reps if r.digest == d.certified and r.verdict is not Verdict.REJECTED]
        # Never certified without quorum agreement, unless the verifier proved one of them.
        assert len(agreeing) >= policy.quorum or any(r.verdict is Verdict.VERIFIED for r in agreeing)
        assert d.valid == {r.id for r in agreeing}
        assert d.valid | d.invalid == {r.id for r in done_reps} and not d.valid & d.invalid
    if d.final:
        assert d.abort == active and d.spawn == 0
    else:
        assert not d.abort and not d.valid and not d.invalid
        # Never more results than max_replicas (lost and aborted ones do not count).
        counted = len(active) + len(done_reps) + sum(1 for r in reps if r.status is S.FAILED)
        assert d.spawn <= max(0, policy.max_replicas - counted)
        assert d.spawn > 0 or active  # a live job always has something under way or wanted
        best = max(Counter(r.digest for r in done_reps if r.verdict is not Verdict.REJECTED).values(), default=0)
        assert best < policy.quorum


@given(policies, replica, st.sampled_from([None, 7]), st.sampled_from([frozenset(), frozenset({"b"}), frozenset({"a", "c"})]))
def test_the_shortcut_for_one_replica_decides_as_the_general_rule(policy, raw, origin, equivalent):
    status, digest, verdict = raw
    one = [ReplicaView(1, status, digest if status is S.DONE else None, verdict, origin, equivalent)]
    assert decide(policy, one) == decide_generally(policy, one)
