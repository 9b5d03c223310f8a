"""Jobs that cannot progress: failed replicas retried on the only host, the no-quorum rule, and
the one line saying why (policy.refusal, why.explain, Engine.why / reap). Pure, no clock."""

from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.lifecycle import JobStatus
from xwpy.server.scheduler import policy as pol
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC, Visibility
from xwpy.server.scheduler.quorum import Policy
from xwpy.server.scheduler.why import explain

GiB = 1 << 30
LEASE = 10.0


def engine(*hosts, memory=8 * GiB):
    e = Engine(lease_seconds=LEASE)
    for hid, owner in hosts:
        e.add_host(HostState(hid, owner, "", memory, last_alive=0.0))
    e.refresh_pool(0.0)
    return e


def job(owner=99, r=1, q=None, max_errors=3, memory=GiB, vis=PUBLIC):
    q = q or r
    return NewJob(owner, 1, Policy(r, q, max(2 * r, r + 2), max_errors), vis, memory, {})


def run(e, host, now, ok=True, digest="d" * 64):
    [rep], _ = e.assign(host, 1, now)
    outcome, ch = e.report(host, [Report(rep.id, ok, digest=digest if ok else None, exit_code=0 if ok else 1,
                                         stderr_tail="" if ok else "boom")], now)
    assert outcome == {rep.id: "accepted"}
    return rep, ch


def heartbeat(e, now):
    for hid in e.hosts:
        e.heartbeat(hid, [], now)


def test_failed_replica_is_retried_on_the_only_host_until_its_budget_ends():
    e = engine((1, 10))
    [jid], _ = e.add_jobs([job(max_errors=3)], 0.0)
    run(e, 1, 1.0, ok=False)
    assert e.jobs[jid].status is JobStatus.RUNNING
    run(e, 1, 2.0, ok=False)
    _, ch = run(e, 1, 3.0, ok=False)
    assert jid in ch.finished and ch.jobs[jid]["status"] == JobStatus.ERROR
    assert "3 replicas failed" in ch.jobs[jid]["error"] and "boom" in ch.jobs[jid]["error"]


def test_failed_then_success_on_the_only_host_completes():
    e = engine((1, 10))
    [jid], _ = e.add_jobs([job()], 0.0)
    run(e, 1, 1.0, ok=False)
    _, ch = run(e, 1, 2.0)
    assert ch.jobs[jid]["status"] == JobStatus.COMPLETED


def test_replicas_running_count_towards_the_hosts_a_job_waits_for():
    """Replication 3, quorum 2, two hosts alive both running it: one more host is wanted (for the
    third replica), not two (the new-user trial saw "waiting for 2 more distinct hosts")."""
    e = engine((1, 10), (2, 20))
    [jid], _ = e.add_jobs([job(r=3, q=2)], 0.0)
    for host in (1, 2):
        [rep], _ = e.assign(host, 1, 1.0)
        assert rep.job_id == jid
    w = e.why(jid, 1.0)
    assert "2 running" in w.line and "waiting for 1 more distinct host:" in w.line, w.line


def test_replication_larger_than_the_hosts_says_why_then_ends_in_error():
    e = engine((1, 10))
    [jid], _ = e.add_jobs([job(r=3, q=2)], 0.0)
    run(e, 1, 1.0)
    w = e.why(jid, 1.0)
    assert w.stalled and "waiting for 1 more distinct host" in w.line and "the only host" in w.line
    heartbeat(e, 2.0)
    ch = e.reap(2.0)  # stuck from now on
    assert not ch.finished and "ends in ERROR in 10 s" in e.why(jid, 2.0).line
    heartbeat(e, 11.0)
    assert not e.reap(11.0).finished  # not yet: the patience is one lease
    heartbeat(e, 12.5)
    ch = e.reap(12.5)
    assert ch.finished == [jid] and ch.jobs[jid]["status"] == JobStatus.ERROR
    assert ch.jobs[jid]["error"].startswith("no quorum possible: 1 agreeing result of 2 needed")


def test_a_host_joining_ends_the_wait():
    e = engine((1, 10))
    [jid], _ = e.add_jobs([job(r=2, q=2)], 0.0)
    run(e, 1, 1.0)
    heartbeat(e, 2.0)
    e.reap(2.0)
    assert e.jobs[jid].stuck_since == 2.0
    e.add_host(HostState(2, 11, "", 8 * GiB, last_alive=5.0))
    heartbeat(e, 5.0)
    e.reap(5.0)
    assert e.jobs[jid].stuck_since is None
    assert not e.why(jid, 5.0).stalled
    _, ch = run(e, 2, 6.0)
    assert ch.jobs[jid]["status"] == JobStatus.COMPLETED


def test_disagreeing_replicas_with_no_host_left_end_in_error():
    e = engine((1, 10), (2, 11), (3, 12))
    [jid], _ = e.add_jobs([job(r=3, q=2)], 0.0)
    for h in (1, 2, 3):
        run(e, h, 1.0, digest=str(h) * 64)
    assert e.jobs[jid].status is JobStatus.RUNNING
    assert "replicas disagree (3 results, 3 digests" in e.why(jid, 1.0).line
    heartbeat(e, 2.0)
    e.reap(2.0)
    heartbeat(e, 20.0)
    ch = e.reap(20.0)
    assert ch.jobs[jid]["status"] == JobStatus.ERROR
    assert "3 results disagree (3 digests, best agreement 1 of 2)" in ch.jobs[jid]["error"]
    assert {f.get("validation") for f in ch.replicas.values()} == {"INVALID"}


def test_a_job_whose_results_disagree_says_so_while_more_run_or_wait():
    """Two results that disagree, quorum 2: the job wants a third. While it waits for a slot, and
    while the third runs, the scheduler says why it is not certified (the status line, the
    dashboard: both show this ``why``) — it said nothing once the third was running."""
    e = engine((1, 10), (2, 11), (3, 12))
    [jid], _ = e.add_jobs([job(r=2, q=2)], 0.0)
    run(e, 1, 1.0, digest="a" * 64)
    run(e, 2, 1.0, digest="b" * 64)
    queued = e.why(jid, 1.0)
    assert queued.line.startswith("replicas disagree (2 results, best agreement 1 of 2); queued: ")
    e.assign(3, 1, 2.0)
    running = e.why(jid, 2.0)
    assert running.line == "replicas disagree (2 results, best agreement 1 of 2): 1 more running"
    assert not running.stalled
    [r3] = [r for r in e.jobs[jid].replicas if r.host_id == 3]
    e.report(3, [Report(r3.id, True, digest="a" * 64)], 3.0)
    assert jid not in e.jobs  # certified: nothing to say


def test_results_a_comparator_found_equivalent_do_not_disagree():
    e = engine((1, 10), (2, 11), (3, 12))
    [jid], _ = e.add_jobs([job(r=3, q=3)], 0.0)
    [r1], _ = e.assign(1, 1, 1.0)
    [r2], _ = e.assign(2, 1, 1.0)
    e.assign(3, 1, 1.0)
    e.report(1, [Report(r1.id, True, digest="a" * 64)], 1.0)
    e.report(2, [Report(r2.id, True, digest="b" * 64, equivalent=frozenset({"a" * 64}))], 1.0)
    assert e.why(jid, 1.0).line == ""  # two agreeing results of three: nothing wrong, one more running


def test_a_site_with_no_worker_alive_never_ends_an_untried_job():
    e = engine()
    [jid], _ = e.add_jobs([job()], 0.0)
    assert e.why(jid, 0.0).line.startswith("no host alive: no worker has registered")
    assert not e.reap(1000.0).finished


def test_why_memory_and_visibility():
    e = engine((1, 10), memory=GiB)
    [big, private], _ = e.add_jobs([job(memory=4 * GiB), job(owner=7, vis=Visibility("owner", 7))], 0.0)
    assert "needs 4096 MiB of memory, more than any host alive offers (largest 1024 MiB)" in e.why(big, 0.0).line
    assert "may read its inputs" in e.why(private, 0.0).line
    assert e.why(big, 0.0).stalled


def test_refusal_reasons():
    host = pol.HostView(1, 10, "", GiB)
    base = dict(host=host, visibility=PUBLIC, memory_needed=0, hosts_used=(), owners_used=frozenset(), pool_owners=2)
    assert pol.refusal(**base) is None
    assert pol.refusal(**{**base, "hosts_used": (1,)}) == pol.RAN_IT
    assert pol.refusal(**{**base, "memory_needed": 2 * GiB}) == pol.TOO_SMALL
    assert pol.refusal(**{**base, "visibility": Visibility("owner", 5)}) == pol.NOT_ADMITTED
    assert pol.refusal(**{**base, "owners_used": {10}}) == pol.SAME_VOLUNTEER
    assert pol.refusal(**{**base, "owners_used": {10}, "pool_owners": 1}) is None  # relaxed


reasons = st.one_of(st.none(), st.sampled_from([pol.RAN_IT, pol.TOO_SMALL, pol.NOT_ADMITTED, pol.SAME_VOLUNTEER]))


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(["PENDING", "RUNNING", "COMPLETED", "ERROR", "CANCELLED"]),
    active=st.integers(0, 3), wanted=st.integers(0, 3), quorum=st.integers(1, 3),
    digests=st.lists(st.sampled_from(["a", "b", "c"]), max_size=4),
    refusals=st.lists(reasons, max_size=5), known=st.integers(0, 6),
    ends_in=st.one_of(st.none(), st.floats(-5, 100)),
)
def test_explain_is_one_line_and_stalled_only_when_no_host_alive_may_take_it(
        status, active, wanted, quorum, digests, refusals, known, ends_in):
    w = explain(status=status, active=active, wanted=wanted, quorum=quorum, digests=digests, refusals=refusals,
                hosts_known=max(known, len(refusals)), memory_needed=GiB, largest_memory=GiB, ends_in=ends_in)
    assert "\n" not in w.line
    if status in ("COMPLETED", "ERROR", "CANCELLED"):
        assert not w.stalled and w.line == ""
        return
    if wanted == 0:  # nothing more wanted: silent, unless results disagree while more run
        assert not w.stalled
        assert bool(w.line) == (active > 0 and len(set(digests)) > 1 and max(map(digests.count, digests)) < quorum)
        return
    assert w.line  # a job that wants replicas always says what it waits for
    assert w.stalled == (active == 0 and all(r is not None for r in refusals))


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(st.sampled_from(["fail", "a", "b"]), min_size=1, max_size=12),
       replication=st.integers(1, 3), hosts=st.integers(1, 3))
def test_every_tried_job_ends_or_can_progress(outcomes, replication, hosts):
    """Whatever the hosts report, a job is never left wanting replicas that no host alive may
    take once the patience has passed: it is final, or some host may take it."""
    e = engine(*[(h, 10 + h) for h in range(1, hosts + 1)])
    [jid], _ = e.add_jobs([job(r=replication, q=min(2, replication))], 0.0)
    now = 1.0
    for o in outcomes:
        if jid not in e.jobs:
            break
        host = next((h for h in sorted(e.hosts) if e._refusal(e.hosts[h].view(), e.jobs[jid]) is None), None)
        if host is None:
            break
        run(e, host, now, ok=o != "fail", digest=o * 64)
        now += 1.0
    for _ in range(3):  # reaps one lease apart: stuck, then ended
        heartbeat(e, now)
        e.reap(now)
        last, now = now, now + LEASE + 1
    if jid in e.jobs:
        assert not e.why(jid, last).stalled


def test_a_queued_job_says_when_the_hosts_that_may_run_it_are_suspended():
    why = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], refusals=[None], hosts_known=3,
                  suspended=["owner load 80% above 50%", "owner load 60% above 50%"])
    assert not why.stalled and why.line.endswith("waiting for a free slot (2 hosts suspended: their owners are using them)")
    one = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], refusals=[None], hosts_known=3,
                  suspended=["outside its computing window (opens at 18:00)"], alive=3)
    assert one.line.endswith("waiting for a free slot (1 host suspended: outside its computing window)")
    every = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], refusals=[None], hosts_known=3,
                    suspended=["outside its computing window (opens at 18:00)", "on battery"], alive=2)
    assert every.line == "queued: every host alive is suspended (2 hosts suspended: 1 on battery, " \
                         "1 outside its computing window)", every.line
    mixed = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], refusals=[None], hosts_known=4,
                    suspended=["outside its computing window (opens at 18:00)", "on battery",
                               "outside its computing window (opens at 22:30)", "owner load 90% above 50%"])
    assert mixed.line.endswith("(4 hosts suspended: 2 outside their computing windows, 1 on battery, "
                               "1 in use by its owner)"), mixed.line
    plain = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], refusals=[None], hosts_known=3)
    assert plain.line.endswith("waiting for a free slot")


def test_mixed_refusals_count_hosts_in_words():
    why = explain(status="PENDING", active=0, wanted=1, quorum=1, digests=[], hosts_known=3,
                  refusals=[pol.FEW_CORES, pol.FEW_CORES, pol.NO_VERSION])
    assert why.stalled
    assert why.line == ("no host alive may run it (2 hosts have too few cores, "
                        "1 host has no version of its app for its platform)")


class Listing:
    """The coordinator's job listing, as a batch watch reads it."""

    def __init__(self, running=(), pending=()):
        self.jobs = {"RUNNING": list(running), "PENDING": list(pending)}

    def call(self, method, path, **q):
        assert (method, path) == ("GET", "/jobs")
        return {"jobs": self.jobs[q["status"]]}


def test_a_batch_watch_says_why_jobs_wait_even_when_none_is_stalled():
    from xwpy.client.commands.jobs import _stalled_line

    suspended = "queued: every host alive is suspended (2 hosts suspended: their owners are using them)"
    stalled = {"id": 7, "why": "no host alive: no worker has registered with this site yet", "stalled": True}
    assert _stalled_line(Listing(pending=[{"id": 3, "why": suspended, "stalled": False}] * 2), "b") == \
        f"waiting: job 3: {suspended} (and 1 more waiting)"
    # Stalled jobs come first: nothing but a change on the site gets them going.
    assert _stalled_line(Listing(running=[{"id": 3, "why": suspended}], pending=[stalled]), "b") == \
        f"stalled: job 7: {stalled['why']}"
    assert _stalled_line(Listing(running=[{"id": 3, "why": ""}]), "b") == ""  # running, nothing to say
