"""Tolerant validation: the numeric comparator (xwpy.compare), the quorum over results a
comparator finds equivalent (quorum.decide), homogeneous redundancy (the engine)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.compare import Prepared, UnknownComparator, equivalent, known_comparators, load_comparator, numeric, prepare
from xwpy.lifecycle import JobStatus, ReplicaStatus
from xwpy.server.catalog.rows import App
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy, ReplicaView, Tally, decide
from xwpy.verify import Verdict

GiB = 1 << 30


def out(text: str, **more: bytes) -> dict[str, bytes]:
    return {"stdout": text.encode(), **more}


@pytest.mark.parametrize("a, b, rtol, atol, same", [
    ('{"x": 3.141592653589793}', '{"x": 3.1415926535897936}', 1e-9, 0, True),  # last digits differ
    ('{"x": 3.141592653589793}', '{"x": 3.1447}', 1e-9, 0, False),  # beyond rtol
    ("a,b\n1.0,2e3\n", "a,b\n1.0000000001,2000.0000001\n", 1e-9, 0, True),  # CSV
    ("a,b\n1.0,2e3\n", "a,c\n1.0,2e3\n", 1e-9, 0, False),  # the text around differs
    ("t 0.0 1\n", "t 1e-12 1\n", 0, 1e-9, True),  # atol near zero
    ("t 0.0 1\n", "t 1e-12 1\n", 1e-3, 0, False),  # rtol alone: 0 vs 1e-12 differ
    ("nan inf -inf\n", "nan inf -inf\n", 1e-9, 0, True),
    ("1 2 3\n", "1 2\n", 1e-9, 0, False),  # not the same count of numbers
])
def test_numeric_compares_numbers_within_tolerances_and_the_rest_exactly(a, b, rtol, atol, same):
    params = {"rtol": rtol, "atol": atol}
    assert numeric(out(a), out(b), params) is same
    assert numeric(out(b), out(a), params) is same


def test_numeric_wants_the_same_files_and_binary_ones_identical():
    assert not numeric(out("1.0"), out("1.0", extra=b"x"), {})
    assert numeric(out("1", bin=b"\xff\x00"), out("1", bin=b"\xff\x00"), {})
    assert not numeric(out("1", bin=b"\xff\x00"), out("1", bin=b"\xff\x01"), {})


def test_comparators_are_found_by_name_as_verifiers_are():
    assert "numeric" in known_comparators()
    assert load_comparator("numeric") is numeric
    with pytest.raises(UnknownComparator):
        load_comparator("no-such-comparator")


def test_prepared_results_are_made_once_and_bounded_by_their_sizes():
    kept = Prepared(max_bytes=10)
    made = []

    def make(key, size):
        return lambda: (made.append(key) or key.upper(), size)

    assert kept.get("a", make("a", 4)) == "A" and kept.get("a", make("a", 4)) == "A" and made == ["a"]
    kept.get("b", make("b", 4))
    kept.get("a", make("a", 4))  # a is the most recently used now
    kept.get("c", make("c", 4))  # 12 bytes: b goes
    assert len(kept) == 2 and kept.get("a", make("a", 4)) == "A" and made == ["a", "b", "c"]
    assert kept.get("big", make("big", 11)) == "BIG" and len(kept) == 2  # larger than the bound: not kept


@given(st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=4),
       st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=4))
def test_numeric_prepared_once_answers_as_numeric(xs, ys):
    a, b = out(" ".join(map(repr, xs))), out(" ".join(map(repr, ys)))
    params = {"rtol": 1e-3}
    pa, pb = prepare(numeric, a, params), prepare(numeric, b, params)
    assert equivalent(numeric, pa, pb, params) is numeric(a, b, params) is numeric(b, a, params)
    assert equivalent(numeric, pa, pb, params) is equivalent(numeric, pb, pa, params)  # parsed already: the same


# -- the quorum over equivalences -------------------------------------------------------------------

DIGESTS = "abcde"


@st.composite
def reports(draw):
    """Results (digest from a few) and a comparator's verdicts: any symmetric relation, not
    necessarily transitive; each result carries the earlier digests it was found equivalent to."""
    pairs = {frozenset(p) for p in itertools.combinations(DIGESTS, 2) if draw(st.booleans())}
    digests = draw(st.lists(st.sampled_from(DIGESTS), min_size=1, max_size=8))
    views = []
    for i, d in enumerate(digests):
        earlier = {v.digest for v in views}
        views.append(ReplicaView(i + 1, ReplicaStatus.DONE, d,
                                 equivalent=frozenset(e for e in earlier if frozenset((d, e)) in pairs)))
    return pairs, views


@settings(max_examples=400)
@given(reports(), st.integers(1, 4), st.booleans())
def test_a_non_transitive_comparator_never_certifies_two_canonical_results(case, quorum, memo):
    pairs, views = case
    policy = Policy(quorum, quorum, 8, 3)
    seen: set[str] = set()
    tally = Tally() if memo else None  # the job's tally kept from one decision to the next, or none
    for n in range(1, len(views) + 1):  # the results as they arrive: the first certification is final
        d = decide(policy, views[:n], tally)
        if d.certified is None:
            continue
        seen.add(d.certified)
        # Every valid result is identical or equivalent to the canonical one itself, never only
        # through a third; at least `quorum` of them; every other result is invalid.
        valid = [v for v in views[:n] if v.id in d.valid]
        assert all(v.digest == d.certified or frozenset((v.digest, d.certified)) in pairs for v in valid)
        assert len(valid) >= quorum
        assert d.valid | d.invalid == {v.id for v in views[:n]} and not d.valid & d.invalid
        break
    assert len(seen) <= 1


@st.composite
def histories(draw):
    """A job's replicas (some resumed from others: one lineage), their results arriving in any
    order, each with the digests of the results before it a comparator (any symmetric relation)
    found equivalent, some verified or rejected by a verifier; and, at some arrivals, one result
    counted before missing from what a decision is given."""
    pairs = {frozenset(p) for p in itertools.combinations(DIGESTS, 2) if draw(st.booleans())}
    n = draw(st.integers(1, 10))
    arrival = draw(st.permutations(range(1, n + 1)))
    origin = {i: draw(st.sampled_from([None, *range(1, i)])) for i in range(1, n + 1)}
    views, steps = {}, []
    for rid in arrival:
        d = draw(st.sampled_from(DIGESTS))
        verdict = draw(st.sampled_from([None, None, Verdict.UNVERIFIABLE, Verdict.REJECTED, Verdict.VERIFIED]))
        earlier = {v.digest for v in views.values() if v.verdict is not Verdict.REJECTED}
        views[rid] = ReplicaView(rid, ReplicaStatus.DONE, d, verdict, origin[rid],
                                 frozenset(e for e in earlier if frozenset((d, e)) in pairs))
        replicas = [views.get(i) or ReplicaView(i, ReplicaStatus.RUNNING, origin=origin[i]) for i in range(1, n + 1)]
        if draw(st.booleans()) and len(views) > 1 and draw(st.booleans()):
            gone = draw(st.sampled_from(sorted(views)))
            replicas = [r for r in replicas if r.id != gone]
        steps.append(replicas)
    return steps


@settings(max_examples=500)
@given(histories(), st.integers(1, 4), st.integers(0, 3))
def test_a_kept_tally_decides_as_a_recount(steps, quorum, extra):
    """The job's tally, kept from one decision to the next, gives every decision a recount from
    scratch gives, whatever the order results arrive in."""
    policy = Policy(quorum, quorum, quorum + extra, 3)
    tally = Tally()
    for replicas in steps:
        assert decide(policy, replicas, tally) == decide(policy, replicas)


def test_bitwise_is_unchanged_and_equivalence_joins_the_votes():
    a, b = ReplicaView(1, ReplicaStatus.DONE, "x"), ReplicaView(2, ReplicaStatus.DONE, "y")
    assert decide(Policy(2, 2, 4, 3), [a, b]).certified is None
    b2 = ReplicaView(2, ReplicaStatus.DONE, "y", equivalent=frozenset({"x"}))
    d = decide(Policy(2, 2, 4, 3), [a, b2])
    assert d.certified == "x" and d.valid == {1, 2}  # the first reported of equals is canonical


# -- homogeneous redundancy --------------------------------------------------------------------------

def _App(homogeneous: bool) -> App:
    return App(1, "f", 7, "alice", "public", None, ("x",), {"memory_bytes": GiB}, "quorum", 2, 2,
               homogeneous=homogeneous)


def test_homogeneous_redundancy_keeps_a_jobs_replicas_on_one_platform():
    for homogeneous in (True, False):
        e = Engine(lease_seconds=1e9, apps=lambda app_id: _App(homogeneous))
        for hid, platform in ((1, "linux-x86_64"), (2, "linux-aarch64"), (3, "linux-x86_64")):
            e.add_host(HostState(hid, 10 + hid, "", 8 * GiB, last_alive=0.0, platform=platform))
        e.refresh_pool(0.0)
        [jid], _ = e.add_jobs([NewJob(7, 1, Policy(2, 2, 4, 3), PUBLIC, GiB, {"inputs": []})], 0.0)
        assert e.assign(1, 1, 0.0)[0]
        assert bool(e.assign(2, 1, 0.0)[0]) is (not homogeneous)
        if homogeneous:
            assert "homogeneous redundancy" in e.why(jid, 0.0).line or e.assign(3, 1, 0.0)[0]
            [r3] = [r for r in e.jobs[jid].replicas if r.host_id == 3]
            _, ch = e.report(3, [Report(r3.id, True, digest="d")], 1.0)
            assert e.jobs[jid].status is JobStatus.RUNNING
