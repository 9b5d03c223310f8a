"""Scheduler engine scenarios that the property test does not aim at: fairness and liveness."""

from xwpy.server.scheduler.engine import Engine, HostState, NewJob
from xwpy.server.scheduler.policy import PUBLIC, Visibility
from xwpy.server.scheduler.quorum import Policy

GiB = 1 << 30


def engine(*hosts):
    e = Engine(lease_seconds=10)
    for hid, owner, group in hosts:
        e.add_host(HostState(hid, owner, group, 8 * GiB, last_alive=0.0))
    e.refresh_pool(0.0)
    return e


def job(owner, r=2, vis=PUBLIC, memory=GiB):
    return NewJob(owner, 1, Policy(r, r, r + 2, 3), vis, memory, {})


def test_private_job_is_not_held_back_by_strangers_hosts():
    # Two strangers' hosts are alive, but only the owner's two hosts may run the job: the
    # distinct-volunteers rule must not wait for a volunteer who can never take it.
    e = engine((1, 10, ""), (2, 11, ""), (3, 20, ""), (4, 20, ""))
    [jid], _ = e.add_jobs([job(20, vis=Visibility("owner", 20))], 0.0)
    assert e.assign(1, 1, 0.0)[0] == [] and e.assign(2, 1, 0.0)[0] == []
    assert [r.job_id for r in e.assign(3, 1, 0.0)[0]] == [jid]
    assert [r.job_id for r in e.assign(4, 1, 0.0)[0]] == [jid]


def test_distinct_volunteers_while_the_pool_allows():
    e = engine((1, 10, ""), (2, 10, ""), (3, 11, ""))
    [jid], _ = e.add_jobs([job(99)], 0.0)
    assert e.assign(1, 1, 0.0)[0]
    assert e.assign(2, 1, 0.0)[0] == []  # same volunteer as host 1; volunteer 11 is still around
    assert e.assign(3, 1, 0.0)[0]


def test_same_volunteer_allowed_when_nobody_else_can():
    e = engine((1, 10, ""), (2, 10, ""))
    e.add_jobs([job(99)], 0.0)
    assert e.assign(1, 1, 0.0)[0] and e.assign(2, 1, 0.0)[0]


def test_group_jobs_count_the_groups_volunteers_only():
    e = engine((1, 10, "lab"), (2, 10, "lab"), (3, 11, ""))
    [jid], _ = e.add_jobs([job(12, vis=Visibility("group", 12, "lab"))], 0.0)
    assert e.assign(3, 1, 0.0)[0] == []  # not in the group
    assert e.assign(1, 1, 0.0)[0] and e.assign(2, 1, 0.0)[0]


def test_memory_must_fit():
    e = engine((1, 10, ""))
    e.add_jobs([job(99, r=1, memory=16 * GiB)], 0.0)
    assert e.assign(1, 1, 0.0)[0] == []


def test_fair_share_between_owners_and_oldest_first_within():
    e = engine(*[(h, 100 + h, "") for h in range(1, 7)])
    a_jobs, _ = e.add_jobs([job(1, r=1) for _ in range(4)], 0.0)
    b_jobs, _ = e.add_jobs([job(2, r=1) for _ in range(4)], 0.0)
    got = [e.assign(h, 1, 0.0)[0][0].job_id for h in range(1, 7)]
    assert sum(j in a_jobs for j in got) == 3 and sum(j in b_jobs for j in got) == 3
    assert [j for j in got if j in a_jobs] == a_jobs[:3]
    assert [j for j in got if j in b_jobs] == b_jobs[:3]


def test_one_request_takes_several_jobs_never_two_of_one():
    e = engine((1, 10, ""), (2, 11, ""))
    ids, _ = e.add_jobs([job(99, r=2) for _ in range(3)], 0.0)
    reps, ch = e.assign(1, 8, 0.0)
    assert sorted(r.job_id for r in reps) == ids
    assert len(ch.replicas_new) == 3 and {j["status"] for j in ch.jobs.values()} == {"RUNNING"}


def adaptive_engine(spot_check=0.0, reputation=10_000):  # a long-trusted host: checked at spot_check
    e = Engine(lease_seconds=10, trust_threshold=10, spot_check=spot_check, salt=b"s")
    e.add_host(HostState(1, 10, "", 8 * GiB, reputation, last_alive=0.0))  # trusted
    e.add_host(HostState(2, 11, "", 8 * GiB, 0, last_alive=0.0))  # new
    e.add_host(HostState(3, 12, "", 8 * GiB, 0, last_alive=0.0))
    e.refresh_pool(0.0)
    return e


def adaptive_job(adaptive=True, memory=GiB):
    return NewJob(99, 1, Policy(3, 2, 6, 3, adaptive=adaptive), PUBLIC, memory, {})


def test_a_trusted_host_certifies_an_adaptive_job_alone():
    from xwpy.server.scheduler.engine import Report

    e = adaptive_engine()
    [jid], _ = e.add_jobs([adaptive_job()], 0.0)
    [r], ch = e.assign(1, 1, 0.0)
    assert ch.jobs[jid]["solo"] is True
    assert e.assign(2, 1, 0.0)[0] == []  # nobody else gets it
    _, ch = e.report(1, [Report(r.id, True, digest="d", size=1, exit_code=0)], 1.0)
    assert ch.jobs[jid]["status"] == "COMPLETED" and ch.jobs[jid]["result_sha256"] == "d"
    assert e.hosts[1].reputation == 10_000  # an unchecked result earns no trust


def test_untrusted_hosts_and_plain_jobs_get_the_quorum():
    e = adaptive_engine()
    [jid], _ = e.add_jobs([adaptive_job()], 0.0)
    [r], ch = e.assign(2, 1, 0.0)  # first replica on a new host
    assert "solo" not in ch.jobs.get(jid, {})
    assert e.assign(1, 1, 0.0)[0] and e.assign(3, 1, 0.0)[0]
    e2 = adaptive_engine()
    [jid2], _ = e2.add_jobs([adaptive_job(adaptive=False)], 0.0)
    e2.assign(1, 1, 0.0)
    assert e2.jobs[jid2].solo is False and e2.jobs[jid2].wanted == 2


def test_spot_checks_replicate_a_share_of_trusted_jobs():
    e = adaptive_engine(spot_check=0.25)
    # Hosts hold all 400 at once here: jobs that need no memory, so that packing does not bound them.
    ids, _ = e.add_jobs([adaptive_job(memory=0) for _ in range(400)], 0.0)
    solo = 0
    for _ in ids:
        [r], _ = e.assign(1, 1, 0.0)
        solo += e.jobs[r.job_id].solo
        if not e.jobs[r.job_id].solo:  # spot-checked: the other hosts take its other replicas
            assert e.assign(2, 1, 0.0)[0] and e.assign(3, 1, 0.0)[0]
    assert 0.65 < solo / len(ids) < 0.85


def test_a_trusted_host_that_fails_hands_the_job_back_to_the_quorum():
    e = adaptive_engine()
    [jid], _ = e.add_jobs([adaptive_job()], 0.0)
    [r], _ = e.assign(1, 1, 0.0)
    ch = e.lose(1, None, 1.0, "worker restarted")
    assert ch.jobs[jid]["solo"] is False and e.jobs[jid].wanted == 3


def test_a_host_that_lost_its_replica_may_take_the_job_again():
    # Three hosts, quorum 2 of 3: one host restarts and loses its replica. Without it taking the
    # job again the job could never complete.
    from xwpy.server.scheduler.engine import Report

    e = engine((1, 10, ""), (2, 11, ""), (3, 12, ""))
    [jid], _ = e.add_jobs([NewJob(99, 1, Policy(3, 3, 5, 3), PUBLIC, GiB, {})], 0.0)
    reps = [e.assign(h, 1, 0.0)[0][0] for h in (1, 2, 3)]
    e.report(2, [Report(reps[1].id, True, digest="d", size=1, exit_code=0)], 1.0)
    e.lose(3, None, 1.0, "worker restarted")
    assert e.assign(2, 1, 1.0)[0] == []  # gave a result: never again
    [again], _ = e.assign(3, 1, 1.0)
    assert again.job_id == jid


def test_hosts_that_join_between_pool_refreshes_count_at_once():
    # The pool is refreshed by the lease reaper every few seconds; a volunteer whose hosts join in
    # between must not be free to give two replicas of one job while others are there.
    e = Engine(lease_seconds=10)
    e.refresh_pool(0.0)  # a coordinator just started: nobody yet
    [jid], _ = e.add_jobs([job(99, r=3)], 0.0)
    for hid, owner in ((1, 10), (2, 11), (3, 12), (4, 10)):
        e.add_host(HostState(hid, owner, "", 8 * GiB, last_alive=0.5))
    assert e.assign(1, 1, 0.5)[0] and e.assign(2, 1, 0.5)[0]
    assert e.assign(4, 1, 0.5)[0] == []  # volunteer 10 already has one; volunteer 12 is there
    assert e.assign(3, 1, 0.5)[0]


def test_after_a_long_outage_the_first_host_back_is_not_alone():
    # The coordinator was down for longer than a lease: the hosts alive when it stopped are presumed
    # alive for a lease, so the first volunteer to reconnect cannot take all of a job's replicas.
    e = Engine(lease_seconds=10)
    hosts = [HostState(hid, owner, "", 8 * GiB, last_alive=100.0) for hid, owner in ((1, 10), (2, 10), (3, 11), (4, 12))]
    e.load(hosts=hosts, jobs=[], replicas=[], next_job_id=1, next_replica_id=1, now=500.0)
    [jid], _ = e.add_jobs([job(99, r=3)], 500.0)
    e.heartbeat(1, [], 500.0)
    e.heartbeat(2, [], 500.0)
    e.reap(501.0)
    assert e.assign(1, 1, 501.0)[0] and e.assign(2, 1, 501.0)[0] == []
    e.reap(511.0)  # a lease later the others never came back: volunteer 10 may take it again
    e.heartbeat(1, [], 511.0)
    e.heartbeat(2, [], 511.0)
    assert e.assign(2, 1, 511.0)[0]


def test_newly_trusted_hosts_are_checked_more():
    # Checked with probability trust_threshold / reputation while that exceeds spot_check.
    for reputation, expected in ((10, 0.0), (20, 0.5), (40, 0.75), (10_000, 0.9)):
        e = adaptive_engine(spot_check=0.1, reputation=reputation)
        ids, _ = e.add_jobs([adaptive_job() for _ in range(600)], 0.0)
        solo = 0
        for _ in ids:
            [r], _ = e.assign(1, 1, 0.0)
            solo += e.jobs[r.job_id].solo
            e.lose(1, None, 0.0, "next")  # keep the host's reputation as it is
            e.cancel([r.job_id], 0.0)
        assert abs(solo / len(ids) - expected) < 0.07, (reputation, solo / len(ids))


def test_a_caught_liar_owes_more_trust_each_time_and_undecided_jobs_move_nothing():
    from xwpy.server.scheduler.engine import Report

    e = engine((1, 10, ""), (2, 11, ""), (3, 12, ""))
    e.trust_threshold = 10
    e.hosts[1].reputation = 7

    def run_job(digests, r=3, q=2, m=3):
        [jid], _ = e.add_jobs([NewJob(99, 1, Policy(r, q, m, 3), PUBLIC, GiB, {})], 0.0)
        reps = {h: e.assign(h, 1, 0.0)[0][0] for h in digests}
        for h, d in digests.items():
            e.report(h, [Report(reps[h].id, True, digest=d, size=1, exit_code=0)], 0.0)

    run_job({1: "lie", 2: "true", 3: "true"})
    assert [e.hosts[h].reputation for h in (1, 2, 3)] == [-10, 1, 1]
    run_job({1: "lie", 2: "true", 3: "true"})
    assert e.hosts[1].reputation == -20  # caught twice: 30 valid results to be trusted again
    run_job({1: "true", 2: "true", 3: "true"})
    assert e.hosts[1].reputation == -19
    run_job({1: "a", 2: "b", 3: "c"})  # no quorum within max_replicas: nobody was proven wrong
    assert [e.hosts[h].reputation for h in (1, 2, 3)] == [-19, 3, 2]  # (3 was aborted in the third job)


def test_a_host_is_alive_within_one_lease_of_its_last_sign_or_while_presumed():
    from xwpy.server.scheduler.engine import HostState

    h = HostState(id=1, owner_id=1, group="", memory=0, last_alive=100.0)
    assert h.alive(now=130.0, lease_seconds=30.0)
    assert not h.alive(now=130.5, lease_seconds=30.0)
    h.presumed_until = 140.0  # alive when the coordinator stopped: given one more lease after a restart
    assert h.alive(now=140.0, lease_seconds=30.0) and not h.alive(now=140.5, lease_seconds=30.0)
