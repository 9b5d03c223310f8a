"""Sleep is not death: a silent host keeps its replicas until their deadline, and a job whose quorum
waits on it may get one extra replica per silent replica (scheduler/silence.py; the engine's reap,
assign and why). Pure, no clock: time is passed in."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.lifecycle import JobStatus, ReplicaStatus
from xwpy.server.scheduler import silence
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy
from xwpy.server.scheduler.silence import Held, extras, fate, may_take_extra

LEASE = 10.0
K = silence.SILENT_LEASES


# -- the pure rules ----------------------------------------------------------------------------------


def test_a_short_nap_costs_nothing_a_long_silence_gets_one_extra():
    asleep = lambda t: [Held(1, t)]  # noqa: E731
    assert extras(asleep(K * LEASE - 0.1), set(), agreeing=0, quorum=1, lease=LEASE) == []
    assert extras(asleep(K * LEASE), set(), agreeing=0, quorum=1, lease=LEASE) == [1]
    assert extras(asleep(100 * LEASE), {1}, agreeing=0, quorum=1, lease=LEASE) == []  # it has one already


def test_extras_only_as_many_as_the_quorum_lacks_without_the_silent_ones():
    held = [Held(1, 50.0), Held(2, 50.0), Held(3, 0.0)]
    assert extras(held, set(), agreeing=0, quorum=3, lease=LEASE) == [1, 2]
    assert extras(held, set(), agreeing=1, quorum=3, lease=LEASE) == [1]
    assert extras(held, set(), agreeing=0, quorum=1, lease=LEASE) == []  # the awake one may do
    assert extras(held, {1}, agreeing=0, quorum=3, lease=LEASE) == [2]


@given(
    silent=st.lists(st.floats(0, 1000), max_size=6),
    awake=st.integers(0, 4),
    agreeing=st.integers(0, 4),
    quorum=st.integers(1, 6),
    covered=st.sets(st.integers(0, 10)),
)
def test_extras_never_exceed_what_the_quorum_lacks_nor_one_per_silent_replica(silent, awake, agreeing, quorum, covered):
    held = [Held(i, t) for i, t in enumerate(silent)] + [Held(100 + i, 0.0) for i in range(awake)]
    out = extras(held, covered, agreeing=agreeing, quorum=quorum, lease=LEASE)
    assert len(out) == len(set(out)) <= max(quorum - agreeing - awake, 0)
    for i in out:
        assert i not in covered and silent[i] >= K * LEASE  # silent long enough, not covered yet
    # Monotone: silent longer never means fewer extras.
    longer = [Held(r.id, r.silent_for + LEASE if r.silent_for else 0.0) for r in held]
    assert len(extras(longer, covered, agreeing=agreeing, quorum=quorum, lease=LEASE)) >= len(out)


def test_fate_separates_the_hosts_liveness_from_the_replicas_deadline():
    assert fate(now=50, lease_expires=10, deadline=100, host_alive=False) is None  # asleep: waited for
    assert fate(now=50, lease_expires=10, deadline=100, host_alive=True) == silence.NOT_HELD  # awake without it
    assert fate(now=50, lease_expires=60, deadline=100, host_alive=True) is None
    assert fate(now=101, lease_expires=200, deadline=100, host_alive=True) == silence.DEADLINE_PASSED
    assert fate(now=101, lease_expires=10, deadline=100, host_alive=False) == silence.DEADLINE_PASSED
    assert fate(now=11, lease_expires=10, deadline=None, host_alive=False) == silence.NOT_HELD  # an old replica


def test_reliable_hosts_take_extras_at_once_others_a_lease_later():
    assert may_take_extra(silence.RELIABLE, 0.0, LEASE)
    assert not may_take_extra(silence.RELIABLE - 1, LEASE - 0.1, LEASE)
    assert may_take_extra(0, LEASE, LEASE)


# -- in the engine ------------------------------------------------------------------------------------


def grid(*reputations, r=1, q=1, deadline=1000.0):
    app = type("App", (), {"limits": {}, "network": False, "deadline": deadline,
                           "versions": (type("V", (), {"runs_on": "any", "image": None})(),)})()
    e = Engine(lease_seconds=LEASE, apps=lambda _: app)
    for i, rep in enumerate(reputations, 1):
        e.add_host(HostState(i, i, "", 1 << 30, rep, last_alive=0.0))
    [jid], _ = e.add_jobs([NewJob(99, 1, Policy(r, q, r + 1, 3), PUBLIC, 0, {})], 0.0)
    return e, jid


def awake(e, now, *hosts):
    for h in hosts:
        e.heartbeat(h, sorted(e.hosts[h].active), now)


def test_a_host_back_before_the_deadline_keeps_its_replica_and_its_result_counts():
    e, jid = grid(0)
    [rep], ch = e.assign(1, 1, 0.0)
    assert ch.replicas_new[0]["deadline"] == 1000.0
    for now in range(5, 500, 5):  # host 1 asleep for 500 s, fifty leases
        assert not e.reap(float(now)).replicas
    assert e.replicas[rep.id].status is ReplicaStatus.ASSIGNED
    assert e.heartbeat(1, [rep.id], 500.0)[0] == []  # back: nothing to abort
    outcome, ch = e.report(1, [Report(rep.id, True, digest="a" * 64, size=1, exit_code=0)], 501.0)
    assert outcome == {rep.id: "accepted"} and ch.jobs[jid]["status"] == JobStatus.COMPLETED


def test_past_its_deadline_a_replica_is_lost_and_its_job_wants_another():
    e, jid = grid(0, deadline=100.0)
    [rep], _ = e.assign(1, 1, 0.0)
    assert not e.reap(100.0).replicas
    ch = e.reap(100.5)
    assert ch.replicas[rep.id] == {"status": "LOST", "finished_at": 100.5, "error": silence.DEADLINE_PASSED}
    assert e.jobs[jid].wanted == 1
    outcome, _ = e.report(1, [Report(rep.id, True, digest="a" * 64, size=1, exit_code=0)], 101.0)
    assert outcome == {rep.id: "lost"}  # too late


def test_an_awake_host_that_does_not_hold_its_replica_loses_it_at_the_lease():
    e, jid = grid(0)
    [rep], _ = e.assign(1, 1, 0.0)
    awake(e, 5.0, 1)
    e.heartbeat(1, [], 9.0)  # the worker never received it
    assert not e.reap(15.0).replicas
    assert e.reap(15.5).replicas[rep.id]["error"] == silence.NOT_HELD


def test_extra_goes_to_a_reliable_host_first_then_to_any_and_the_first_result_wins():
    e, jid = grid(0, 0, silence.RELIABLE)  # host 1 will sleep; host 3 is reliable
    [silent], _ = e.assign(1, 1, 0.0)
    now = 0.0
    while not e.jobs[jid].extra_for:
        now += 1.0
        awake(e, now, 2, 3)
        e.reap(now)
    assert now == K * LEASE  # wanted once host 1 was silent for K leases
    assert e.why(jid, now).line.startswith("waiting on 1 silent host (silent 30 s")
    assert "1 extra replica wanted elsewhere" in e.why(jid, now).line
    assert e.assign(2, 1, now)[0] == []  # host 2 is not reliable: not yet
    [extra], ch = e.assign(3, 1, now)
    assert extra.covers == silent.id and ch.replicas_new[0]["covers"] == silent.id
    assert "1 extra replica started elsewhere" in e.why(jid, now).line
    assert e.jobs[jid].wanted == 0
    for _ in range(20):  # no second extra beside the same silent replica
        now += 1.0
        awake(e, now, 2, 3)
        e.reap(now)
        assert e.assign(2, 1, now)[0] == []
    # Host 1 wakes up and reports first: certified once, the extra is aborted...
    outcome, ch = e.report(1, [Report(silent.id, True, digest="a" * 64, size=1, exit_code=0)], now)
    assert outcome == {silent.id: "accepted"} and ch.finished == [jid]
    assert ch.replicas[extra.id]["status"] == "ABORTED"
    # ... and its worker is told so at its next heartbeat; its late result changes nothing.
    assert e.heartbeat(3, [extra.id], now)[0] == [extra.id]
    outcome, ch = e.report(3, [Report(extra.id, True, digest="a" * 64, size=1, exit_code=0)], now)
    assert outcome == {extra.id: "unknown"} and not ch.jobs


def test_a_host_back_before_its_extra_started_wants_it_no_more():
    e, jid = grid(0, 0)
    [silent], _ = e.assign(1, 1, 0.0)
    now = 0.0
    while not e.jobs[jid].extra_for:
        now += 1.0
        awake(e, now, 2)
        e.reap(now)
    assert e.jobs[jid].wanted == 1
    awake(e, now, 1)  # back, before host 2 (not reliable) may take the extra
    assert (e.jobs[jid].wanted, e.jobs[jid].extra_for) == (0, [])
    for _ in range(30):
        now += 1.0
        awake(e, now, 1, 2)
        e.reap(now)
        assert e.assign(2, 1, now)[0] == []
    assert "silent" not in e.why(jid, now).line


def test_an_unreliable_host_takes_the_extra_a_lease_later_and_the_extra_may_win():
    e, jid = grid(0, 0)
    [silent], _ = e.assign(1, 1, 0.0)
    now = 0.0
    while True:
        now += 1.0
        awake(e, now, 2)
        e.reap(now)
        got, _ = e.assign(2, 1, now)
        if got:
            break
    assert now == K * LEASE + LEASE
    [extra] = got
    outcome, ch = e.report(2, [Report(extra.id, True, digest="b" * 64, size=1, exit_code=0)], now)
    assert ch.jobs[jid]["status"] == "COMPLETED" and ch.replicas[silent.id]["status"] == "ABORTED"
    assert e.heartbeat(1, [silent.id], now + 1)[0] == [silent.id]  # the sleeper, back, aborts its copy


def test_an_extra_lost_is_replaced_and_a_quorum_waits_on_the_silent_ones_only_when_it_must():
    e, jid = grid(0, 0, 0, 0, r=2, q=2)
    [a], _ = e.assign(1, 1, 0.0)
    [b], _ = e.assign(2, 1, 0.0)
    now = 0.0
    for _ in range(60):  # host 1 asleep; hosts 2, 3 awake: one extra, after K leases and one more
        now += 1.0
        awake(e, now, 2, 3)
        e.reap(now)
        e.assign(3, 1, now)
    [extra] = [r for r in e.jobs[jid].replicas if r.covers == a.id]
    e.lose(3, None, now, "worker restarted")  # the extra is lost: another may replace it
    for _ in range(15):
        now += 1.0
        awake(e, now, 2, 4)
        e.reap(now)
        e.assign(4, 1, now)
    assert [r.host_id for r in e.jobs[jid].replicas if r.covers == a.id and r.status.active] == [4]
