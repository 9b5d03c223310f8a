"""Job graphs (scheduler/graph.py and the engine's use of it): a child never gets a replica before
every job it runs after is certified; a parent that ends uncertified cancels exactly its
descendants; cycles are found; a rebuilt engine holds and releases the same jobs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.lifecycle import JobStatus
from xwpy.server.scheduler import graph
from xwpy.server.scheduler.engine import Engine, HostState, JobState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy
from xwpy.server.catalog.rows import ActiveJob

GiB = 1 << 30
STATUSES = list(JobStatus)


@given(st.dictionaries(st.integers(1, 50), st.sampled_from(STATUSES), max_size=8))
def test_decide_holds_until_all_certified_and_ends_on_any_failure(parents):
    step = graph.decide(parents)
    failed = any(s in (JobStatus.ERROR, JobStatus.CANCELLED) for s in parents.values())
    assert (step.end is not None) == failed
    assert step.ready == (not failed and all(s is JobStatus.COMPLETED for s in parents.values()))
    if not failed and not step.ready:
        assert set(step.waiting) == {p for p, s in parents.items() if not s.final}
    if failed:
        assert str(min(p for p, s in parents.items() if s in (JobStatus.ERROR, JobStatus.CANCELLED))) in step.end


def _acyclic(edges) -> bool:
    indegree = [0] * len(edges)
    for i, es in enumerate(edges):
        indegree[i] = len(set(es))
    children = [[] for _ in edges]
    for i, es in enumerate(edges):
        for p in set(es):
            children[p].append(i)
    ready = [i for i, d in enumerate(indegree) if d == 0]
    seen = 0
    while ready:
        i = ready.pop()
        seen += 1
        for c in children[i]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    return seen == len(edges)


@given(st.integers(1, 12).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n)))
def test_cycle_is_found_exactly_when_there_is_one(edges):
    loop = graph.cycle(edges)
    assert (loop is None) == _acyclic(edges)
    if loop is not None:
        assert loop[0] == loop[-1]
        assert all(loop[k + 1] in edges[loop[k]] for k in range(len(loop) - 1))


def test_a_long_chain_does_not_recurse():
    n = 20_000
    assert graph.cycle([[i - 1] if i else [] for i in range(n)]) is None
    e = _engine()
    ids, _ = e.add_jobs([_job(after_new=(i - 1,) if i else ()) for i in range(n)], 0.0)
    ch = e.cancel([ids[0]], 1.0)[1]
    assert sum(1 for f in ch.jobs.values() if f.get("status") == "CANCELLED") == n


def _engine() -> Engine:
    e = Engine(lease_seconds=1e9)
    e.add_host(HostState(1, 10, "", 8 * GiB, last_alive=0.0))
    e.refresh_pool(0.0)
    return e


def _job(after=(), after_new=()) -> NewJob:
    return NewJob(7, 1, Policy(1, 1, 1, 1), PUBLIC, GiB, {"inputs": []}, after=tuple(after), after_new=tuple(after_new))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 30), st.booleans())
def test_children_run_only_after_their_parents_and_failures_end_exactly_the_descendants(seed, n, rebuild):
    rnd = random.Random(seed)
    parents = [sorted(rnd.sample(range(i), rnd.randint(0, min(i, 3)))) for i in range(n)]
    e = _engine()
    # Submitted in two requests: the second names the first's jobs by id.
    cut = rnd.randint(0, n)
    ids, ch = e.add_jobs([_job(after_new=parents[i]) for i in range(cut)], 0.0)
    ids2, ch2 = e.add_jobs([_job(after=[ids[p] for p in parents[i] if p < cut],
                                 after_new=[p - cut for p in parents[i] if p >= cut]) for i in range(cut, n)], 0.0)
    ids += ids2
    index = {jid: i for i, jid in enumerate(ids)}
    status = {jid: JobStatus.PENDING for jid in ids}
    rows = {r["id"]: dict(r) for r in ch.jobs_new + ch2.jobs_new}

    def apply(c):
        for jid, fields in c.jobs.items():
            rows[jid].update(fields)
            if "status" in fields:
                status[jid] = JobStatus(fields["status"])

    apply(ch)
    apply(ch2)
    assert all(rows[jid].get("after", []) == sorted(ids[p] for p in parents[index[jid]]) for jid in ids)
    cancelled_by_owner = set()
    running = []
    t = 1.0
    while any(not s.final for s in status.values()):
        t += 1
        if rebuild and not running and rnd.random() < 0.1:  # the coordinator restarts: rebuilt from the rows written
            active = [r for r in rows.values() if not JobStatus(r["status"]).final]
            e2 = _engine()
            ch = e2.load(hosts=[HostState(1, 10, "", 8 * GiB, last_alive=t)],
                         jobs=[JobState.of(_active(r)) for r in active],
                         replicas=[], next_job_id=e.next_job_id, next_replica_id=e.next_replica_id, now=t,
                         ended={jid: s for jid, s in status.items() if s.final})
            if not any(e.jobs[r["id"]].replicas for r in active):  # (replicas are not modelled in rows here)
                e = e2
                apply(ch)
        reps, ch = e.assign(1, rnd.randint(1, 4), t)
        apply(ch)
        for r in reps:  # never a replica before every parent is certified
            assert all(status[ids[p]] is JobStatus.COMPLETED for p in parents[index[r.job_id]])
        running += reps
        if running and rnd.random() < 0.8:
            k = rnd.randint(1, len(running))
            done_now, running = running[:k], running[k:]
            out, ch = e.report(1, [Report(r.id, rnd.random() < 0.85, digest="d" * 64) for r in done_now], t)
            apply(ch)
        elif rnd.random() < 0.2:
            victim = rnd.choice(ids)
            done, ch = e.cancel([victim], t)
            cancelled_by_owner.update(done)
            running = [r for r in running if r.job_id in e.jobs]
            apply(ch)
        elif not running:
            active = [jid for jid, s in status.items() if not s.final]
            assert not active or e.has_ready(), f"held jobs with no parent active: {active}"
    failed = {jid for jid, s in status.items() if s is JobStatus.ERROR} | cancelled_by_owner

    def descends(i, roots):
        stack, seen = list(parents[i]), set()
        while stack:
            p = stack.pop()
            if ids[p] in roots:
                return True
            if p not in seen:
                seen.add(p)
                stack += parents[p]
        return False

    for jid in ids:
        i = index[jid]
        by_graph = rows[jid].get("error", "") or ""
        if jid in cancelled_by_owner or status[jid] is JobStatus.ERROR:
            continue
        # Cancelled by the graph exactly when a job it descends from ended uncertified first.
        assert (status[jid] is JobStatus.CANCELLED) == descends(i, failed), (jid, status[jid], by_graph)
        if status[jid] is JobStatus.CANCELLED:
            assert by_graph.startswith("cancelled: job ")


def _active(r: dict) -> ActiveJob:
    return ActiveJob(r["id"], r["owner_id"] if "owner_id" in r else 7, 1, JobStatus(r["status"]), 1, 1, 1, 1, GiB,
                     "public", "", False, False, 0, tuple(r.get("after") or ()))


def test_why_names_the_jobs_a_held_job_waits_for():
    e = _engine()
    ids, _ = e.add_jobs([_job(), _job(), _job(after_new=(0, 1))], 0.0)
    assert e.why(ids[2], 0.0).line == f"waiting for 2 jobs it runs after to be certified: {ids[0]}, {ids[1]}"
    assert not e.why(ids[2], 0.0).stalled


# -- the submission's checks of the inputs taken from jobs' results (server/submission.py) --------

def _submission(*specs):
    from xwpy import protocol
    return protocol.parse(protocol.SubmitJobs, {"jobs": list(specs)})


def test_an_unknown_key_is_named_as_the_submitter_wrote_it():
    """`xwpy submit app -i in0=@nokey`: the error says `in0=@nokey:stdout`, not the wire's
    results[0].job the client made of it."""
    from xwpy.server.errors import BadRequest
    from xwpy.server.submission import _graph

    msg = _submission({"app": "a", "results": [{"name": "in0", "job": "nokey"}]})
    with pytest.raises(BadRequest) as e:
        _graph(msg, {})
    assert str(e.value) == "input in0=@nokey:stdout: no job with the key 'nokey' in this submission"
    assert e.value.field == "jobs[0].inputs"


def test_a_file_missing_from_a_certified_result_is_refused_at_submit():
    from xwpy.server.errors import BadRequest
    from xwpy.server.submission import certified_files, check_result_files

    msg = _submission({"app": "a", "results": [{"name": "in0", "job": "12", "member": "out.txt"}]},
                      {"app": "a", "results": [{"name": "in0", "job": "13", "member": "nope.txt"}]})
    parents = {12: "COMPLETED", 13: "RUNNING"}
    assert certified_files(msg, parents) == [12]  # a job not certified yet: its files are not known
    check_result_files(msg, {12: {"stdout", "out.txt"}})
    with pytest.raises(BadRequest) as e:
        check_result_files(msg, {12: {"stdout", "stderr"}})
    assert str(e.value) == ("input in0=@12:out.txt: the certified result of job 12 has no file 'out.txt' "
                            "(it has: stderr, stdout)")
    assert e.value.field == "jobs[0].inputs"
