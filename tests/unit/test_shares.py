"""Fair share between users and priorities (scheduler/shares.py, the engine's queues): the order as
pure functions, checked with hypothesis; the engine giving a saturated grid's slots in the ratio of
the shares, and an owner's jobs by priority."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.server.scheduler import shares
from xwpy.server.scheduler.engine import Engine, HostState, JobState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

owners_st = st.lists(st.integers(1, 50), min_size=1, max_size=8, unique=True)
share_st = st.floats(0.01, 100, allow_nan=False)


@st.composite
def situations(draw):
    owners = draw(owners_st)
    running = {o: draw(st.integers(0, 100)) for o in owners}
    recent = {o: draw(st.floats(0, 100, allow_nan=False)) for o in owners}
    share = {o: draw(share_st) for o in owners}
    return owners, running, recent, share


@given(situations())
def test_the_order_is_every_owner_least_served_per_share_first(s):
    owners, running, recent, share = s
    out = shares.order(owners, running, recent, share.__getitem__)
    assert sorted(out) == sorted(owners)
    keys = [(running[o] + recent[o]) / share[o] for o in out]
    assert keys == sorted(keys)


@given(situations(), st.integers(1, 20), st.floats(0, 50, allow_nan=False))
def test_more_use_never_moves_an_owner_forward_a_bigger_share_never_back(s, more, more_recent):
    owners, running, recent, share = s
    o = owners[0]
    before = shares.order(owners, running, recent, share.__getitem__).index(o)
    busier = shares.order(owners, {**running, o: running[o] + more}, {**recent, o: recent[o] + more_recent},
                          share.__getitem__)
    assert busier.index(o) >= before
    bigger = shares.order(owners, running, recent, {**share, o: share[o] * 2}.__getitem__)
    assert bigger.index(o) <= before


@given(situations(), st.floats(0.1, 10, allow_nan=False))
def test_only_the_ratio_of_shares_counts(s, c):
    owners, running, recent, share = s
    a = shares.order(owners, running, recent, share.__getitem__)
    b = shares.order(owners, running, recent, {o: v * c for o, v in share.items()}.__getitem__)
    k = {o: (running[o] + recent[o]) / share[o] for o in owners}
    for x in owners:
        for y in owners:
            if k[x] < k[y] * (1 - 1e-9):  # clearly ahead (not a tie up to rounding)
                assert a.index(x) < a.index(y) and b.index(x) < b.index(y)


@given(st.dictionaries(st.integers(1, 20), st.integers(1, 10), min_size=1, max_size=6), st.integers(1, 300))
def test_slots_given_one_by_one_follow_the_shares(share, slots):
    """On a saturated grid every free slot goes to the first in the order: each owner then holds
    its share of the slots to within one slot (Adams' apportionment: max (r - 1) / s <= min r / s)."""
    running = dict.fromkeys(share, 0)
    for _ in range(slots):
        running[shares.order(share, running, {}, share.__getitem__)[0]] += 1
    assert sum(running.values()) == slots
    most_over = max((r - 1) / share[o] for o, r in running.items() if r)
    least = min(r / share[o] for o, r in running.items())
    assert most_over <= least + 1e-12


@given(st.floats(0, 100, allow_nan=False), st.integers(0, 100), st.floats(0, 1e6, allow_nan=False),
       st.floats(0, 1e6, allow_nan=False), st.floats(1, 1e6, allow_nan=False))
def test_usage_decays_toward_what_runs_and_in_two_steps_as_in_one(recent, running, t1, t2, half_life):
    u = shares.Usage(recent, 0.0)
    one = shares.decayed(u, running, t1 + t2, half_life)
    two = shares.decayed(shares.decayed(u, running, t1, half_life), running, t1 + t2, half_life)
    assert math.isclose(one.recent, two.recent, rel_tol=1e-9, abs_tol=1e-9)
    lo, hi = sorted((recent, float(running)))
    assert lo - 1e-9 <= one.recent <= hi + 1e-9  # between where it was and what runs now
    if t1 + t2 >= half_life:  # a half-life later, at least half of the way there
        assert abs(one.recent - running) <= abs(recent - running) / 2 + 1e-9


def test_usage_halves_each_half_life_once_nothing_runs():
    u = shares.decayed(shares.Usage(8.0, 0.0), 0, 3600.0, 3600.0)
    assert u.recent == pytest.approx(4.0) and u.at == 3600.0
    assert shares.decayed(shares.Usage(8.0, 0.0), 0, 1.0, 0).recent == 0.0  # no memory at all


def test_a_user_who_ran_the_grid_alone_waits_behind_a_newcomer_with_as_much_running():
    order = shares.order([1, 2], {1: 2, 2: 2}, {1: 10.0}, lambda o: 1.0)
    assert order == [2, 1]


# -- the engine ------------------------------------------------------------------------------------


def _job(owner: int, priority: int = 0) -> NewJob:
    return NewJob(owner_id=owner, app_id=1, policy=Policy(1, 1, 1, 1), visibility=PUBLIC, memory=0,
                  row={"owner_id": owner}, priority=priority)


def _engine(share: dict[int, float], half_life: float = 600.0, hosts: int = 8) -> Engine:
    e = Engine(lease_seconds=1e9, share=share.__getitem__, usage_half_life=half_life)
    for h in range(1, hosts + 1):
        e.add_host(HostState(h, 100 + h, "", 0, last_alive=0.0, cores=1))
    return e


@pytest.mark.parametrize("half_life", [0.0, 600.0])
def test_a_saturated_grid_serves_two_users_in_the_ratio_of_their_shares(half_life):
    """8 one-slot hosts, jobs of 10 s, far more work queued than they can run: over a window the
    jobs completed by alice (share 3) and bob (share 1) are 3 to 1."""
    e = _engine({1: 3.0, 2: 1.0}, half_life)
    e.add_jobs([_job(1) for _ in range(2000)] + [_job(2) for _ in range(2000)], 0.0)
    done = {1: 0, 2: 0}
    now = 0.0
    for step in range(400):
        now = step * 1.25  # a host of the eight finishes every 1.25 s, each job taking 10 s
        hid = step % 8 + 1
        host = e.hosts[hid]
        for rid in list(host.active):
            r = e.replicas[rid]
            owner = e.jobs[r.job_id].owner_id
            e.report(hid, [_report(rid)], now)
            if step >= 80:  # after a warm-up
                done[owner] += 1
        e.assign(hid, 1, now)
    assert done[1] / done[2] == pytest.approx(3.0, abs=0.3)


def _report(rid: int) -> Report:
    return Report(replica_id=rid, ok=True, digest="d" * 64, exit_code=0)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.25, 4.0), st.integers(0, 80), st.integers(8, 40), st.sampled_from([0.0, 30.0, 600.0]))
def test_a_restarted_scheduler_goes_on_from_the_usage_stored_as_jobs_ended(share, warm, after, half_life):
    """A saturated grid, two users; after a while every running job ends (each owner's usage is
    stored with its jobs' ends: Changes.usage) and the scheduler is rebuilt from what the catalog
    holds: from then on it gives every slot as the scheduler that did not restart does (it went on
    from what was running at its start before, as if the past had been forgotten)."""
    shares_of = {1: share, 2: 1.0}
    a = _engine(shares_of, half_life)
    a.add_jobs([_job(1) for _ in range(200)] + [_job(2) for _ in range(200)], 0.0)
    stored: dict[int, dict] = {}

    def step(e: Engine, k: int, now: float) -> list[int]:
        hid = k % 8 + 1
        for rid in list(e.hosts[hid].active):
            stored.update(e.report(hid, [_report(rid)], now)[1].usage)
        return [e.jobs[r.job_id].owner_id for r in e.assign(hid, 1, now)[0]]

    for k in range(warm):
        step(a, k, k * 1.25)
    now = warm * 1.25
    for hid, host in a.hosts.items():  # every running job ends
        for rid in list(host.active):
            stored.update(a.report(hid, [_report(rid)], now)[1].usage)
    b = _engine(shares_of, half_life)
    b.load(hosts=[HostState(h, 100 + h, "", 0, last_alive=now, cores=1) for h in a.hosts],
           jobs=[JobState(id=j.id, owner_id=j.owner_id, app_id=j.app_id, policy=j.policy, visibility=j.visibility,
                          memory=j.memory, status=j.status, priority=j.priority) for j in a.jobs.values()],
           replicas=[], next_job_id=a.next_job_id, next_replica_id=a.next_replica_id, now=now,
           usage={o: shares.Usage(**u) for o, u in stored.items()})
    assert b.usage(now) == a.usage(now)
    for k in range(warm + 1, warm + 1 + after):
        assert step(b, k, k * 1.25) == step(a, k, k * 1.25)


def test_an_owners_jobs_go_by_priority_then_oldest_first():
    e = _engine({1: 1.0}, hosts=1)
    ids, _ = e.add_jobs([_job(1, 0), _job(1, 5), _job(1, -3), _job(1, 5)], 0.0)
    order = []
    for t in range(4):
        [r], _ = e.assign(1, 1, float(t))
        order.append(r.job_id)
        e.report(1, [_report(r.id)], float(t))
    assert order == [ids[1], ids[3], ids[0], ids[2]]
