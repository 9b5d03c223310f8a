"""Credit for certified work (issue 18): the pure decision, and the engine granting it with the
certification (in the same Changes record, hence the same transaction)."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.server.scheduler import credit
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

GiB = 1 << 30
seconds = st.floats(0, 1e6, allow_nan=False)


@given(st.dictionaries(st.integers(1, 50), seconds, max_size=8), st.data())
def test_only_valid_replicas_earn_and_each_the_least_claim(claims, data):
    valid = data.draw(st.sets(st.sampled_from(sorted(claims))) if claims else st.just(set()))
    got = credit.grant(claims, valid)
    assert set(got) == valid  # the others (outvoted, failed, lost) earn nothing
    if valid:
        least = min(claims[r] for r in valid)
        assert set(got.values()) == {least}  # equal shares: nobody inflates by running slowly
        assert all(0 <= v <= claims[r] for r, v in got.items())


@given(seconds, seconds)
def test_a_claim_is_never_negative(a, b):
    assert credit.claim(a, b) == round(max(0.0, b - a), credit.PRECISION) >= 0


def test_a_liar_outvoted_earns_nothing_and_the_honest_hosts_the_same_least_run_time():
    e = Engine(lease_seconds=100)
    for hid in (1, 2, 3):
        e.add_host(HostState(hid, 10 + hid, "", 8 * GiB, last_alive=0.0))
    e.refresh_pool(0.0)
    [jid], _ = e.add_jobs([NewJob(99, 1, Policy(3, 2, 5, 3), PUBLIC, GiB, {})], 0.0)
    reps = {hid: e.assign(hid, 1, 0.0)[0][0] for hid in (1, 2, 3)}
    _, ch1 = e.report(3, [Report(reps[3].id, True, digest="lie", size=1, exit_code=0)], 5.0)
    _, ch2 = e.report(1, [Report(reps[1].id, True, digest="ok", size=1, exit_code=0)], 20.0)
    assert "credit" not in ch1.replicas.get(reps[3].id, {}) and not e.hosts[1].credit  # nothing certified yet
    _, ch = e.report(2, [Report(reps[2].id, True, digest="ok", size=1, exit_code=0)], 30.0)
    assert ch.jobs[jid]["status"] == "COMPLETED"
    # Certified now: hosts 1 (20 s) and 2 (30 s) earn the lesser, 20; the liar nothing.
    assert ch.replicas[reps[1].id]["credit"] == ch.replicas[reps[2].id]["credit"] == 20.0
    assert "credit" not in ch.replicas[reps[3].id]
    assert ch.hosts[1]["credit"] == ch.hosts[2]["credit"] == 20.0 and "credit" not in ch.hosts.get(3, {})
    assert [e.hosts[h].credit for h in (1, 2, 3)] == [20.0, 20.0, 0.0]


def test_credit_adds_up_over_jobs():
    e = Engine(lease_seconds=100)
    for hid in (1, 2):
        e.add_host(HostState(hid, 10 + hid, "", 8 * GiB, last_alive=0.0, credit=1.5))
    e.refresh_pool(0.0)
    e.add_jobs([NewJob(99, 1, Policy(2, 2, 4, 3), PUBLIC, GiB, {})], 0.0)
    r1, r2 = e.assign(1, 1, 0.0)[0][0], e.assign(2, 1, 0.0)[0][0]
    e.report(1, [Report(r1.id, True, digest="d", size=1, exit_code=0)], 2.0)
    _, ch = e.report(2, [Report(r2.id, True, digest="d", size=1, exit_code=0)], 3.0)
    assert ch.hosts[1]["credit"] == ch.hosts[2]["credit"] == 3.5
