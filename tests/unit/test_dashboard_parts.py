"""The dashboard's pure parts: throughput samples, the change feed, and `xwpy why`'s line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from xwpy.client.commands.jobs import why_text
from xwpy.server.feed import Feed
from xwpy.server.fresh import Fresh
from xwpy.server.samples import Sample, Samples


def test_rates_are_per_minute_over_each_interval():
    s = Samples()
    s.add(Sample(100.0, certified=0, reported=0, queued=50, running=2))
    s.add(Sample(110.0, certified=5, reported=10, queued=40, running=2))
    s.add(Sample(130.0, certified=5, reported=12, queued=40, running=1))
    assert s.rates() == [
        {"t": 110.0, "certified_per_minute": 30.0, "reported_per_minute": 60.0, "queued": 40, "running": 2},
        {"t": 130.0, "certified_per_minute": 0.0, "reported_per_minute": 6.0, "queued": 40, "running": 1},
    ]


def test_the_ring_keeps_the_latest_and_ignores_a_clock_going_back():
    s = Samples(capacity=3)
    for t in range(10):
        s.add(Sample(float(t), t, t, 0, 0))
    s.add(Sample(5.0, 99, 99, 0, 0))  # earlier than the last: dropped
    assert len(s) == 3 and [p["t"] for p in s.rates()] == [8.0, 9.0]


@given(st.lists(st.tuples(st.floats(0.1, 100), st.integers(-5, 50), st.integers(0, 1000)), max_size=30))
def test_rates_are_never_negative_and_in_time_order(steps):
    s, t, certified = Samples(), 0.0, 0
    for dt, more, queued in steps:
        t += dt
        certified = max(certified + more, 0) if more >= 0 else 0  # a restart sets counters back to zero
        s.add(Sample(t, certified, certified, queued, 0))
    rates = s.rates()
    assert len(rates) == max(len(steps) - 1, 0)
    assert all(r["certified_per_minute"] >= 0 for r in rates)
    assert [r["t"] for r in rates] == sorted(r["t"] for r in rates)


def test_the_feed_answers_at_once_when_behind_and_settled():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    feed.bump()
    got = []
    feed.wait(0, 30).addCallback(got.append)
    assert got == []  # the change is settling: answered with the others it wakes
    clock.advance(1.0)
    assert got == [1]
    feed.wait(0, 30).addCallback(got.append)
    assert got == [1, 1]


def test_the_feed_wakes_its_waiters_once_a_burst_of_changes_settles():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    got = []
    feed.wait(0, 30).addCallback(got.append)
    feed.wait(0, 30).addCallback(got.append)
    clock.advance(10)
    assert got == [] and feed.waiting == 2
    for _ in range(500):
        feed.bump()
        clock.advance(0.001)
    assert got == []
    clock.advance(0.6)  # a second after the first change
    assert got == [500, 500] and feed.waiting == 0
    assert not clock.getDelayedCalls()  # their timers are cancelled


def test_the_feed_answers_after_the_wait_with_no_change():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    got = []
    feed.wait(0, 30).addCallback(got.append)
    clock.advance(29.9)
    assert got == []
    clock.advance(0.2)
    assert got == [0] and feed.waiting == 0


@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=8))
def test_the_feed_wakes_pages_no_sooner_than_pace_times_what_their_reads_took(costs):
    # Changes never stop (a busy grid); after each wake the pages' reads take costs[i] seconds.
    clock = Clock()
    feed = Feed(clock, settle=1.0, pace=10)
    wakes = []
    for cost in costs:
        feed.wait(feed.version, 60).addCallback(lambda _: wakes.append(clock.seconds()))
        feed.bump()
        seen = len(wakes)
        while len(wakes) == seen:
            clock.advance(0.05)
            feed.bump()
        if len(wakes) > 1:
            gap = wakes[-1] - wakes[-2]
            assert gap >= max(1.0, 10 * last) - 1e-9
            assert gap <= max(1.0, 10 * last) + 0.05 + 1e-9  # and no later than that
        feed.spent(cost)
        last = cost
    assert len(wakes) == len(costs)


def test_cheap_reads_keep_the_pages_woken_every_settle():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    got = []
    for _ in range(3):
        feed.wait(feed.version, 30).addCallback(lambda _: got.append(clock.seconds()))
        feed.bump()
        clock.advance(1.0)
        feed.spent(0.01)
    assert got == [1.0, 2.0, 3.0]


def test_a_wait_ending_while_a_change_settles_is_answered_by_the_change():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    got = []
    feed.wait(0, 5).addCallback(got.append)
    clock.advance(4.5)
    feed.bump()
    clock.advance(0.6)  # its wait is over, the change is not settled
    assert got == []
    clock.advance(0.4)
    assert got == [1]


class Reads:
    """A read whose answers the test hands out: ``pending`` are its Deferreds, in call order."""

    def __init__(self):
        self.pending: list = []

    def __call__(self):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.pending.append(d)
        return d


def fresh_get(fresh, key, read, seen):
    from twisted.internet.defer import Deferred

    out = []
    Deferred.fromCoroutine(fresh.get(key, read, seen)).addCallback(out.append)
    return out


def test_pages_woken_by_one_change_share_one_read():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    fresh = Fresh(feed, max_age=5.0)
    read = Reads()
    feed.bump()
    answers = [fresh_get(fresh, "jobs", read, seen=1) for _ in range(100)]
    assert len(read.pending) == 1  # one read in flight serves the hundred
    read.pending[0].callback({"n": 1})
    assert all(a == [{"n": 1}] for a in answers)
    assert fresh_get(fresh, "jobs", read, seen=1) == [{"n": 1}] and len(read.pending) == 1  # kept
    assert fresh_get(fresh, "hosts", read, seen=1) == [] and len(read.pending) == 2  # another key: its own read


def test_a_page_that_saw_a_later_change_gets_a_new_read():
    clock = Clock()
    feed = Feed(clock, settle=1.0)
    fresh = Fresh(feed, max_age=5.0)
    read = Reads()
    first = fresh_get(fresh, "jobs", read, seen=0)
    feed.bump()  # a job ended while the first read ran: it may not show it
    later = fresh_get(fresh, "jobs", read, seen=1)
    assert len(read.pending) == 2
    read.pending[0].callback("before")
    read.pending[1].callback("after")
    assert first == ["before"] and later == ["after"]
    assert fresh_get(fresh, "jobs", read, seen=1) == ["after"]
    assert fresh_get(fresh, "jobs", read, seen=99) == ["after"]  # a version from the future is now
    clock.advance(5.0)  # too old, changes or not (a host that went quiet announces nothing)
    assert fresh_get(fresh, "jobs", read, seen=1) == [] and len(read.pending) == 3


def job(status, **kw):
    base = {"id": 7, "status": status, "replicas": [], "error": None, "why": "", "stalled": False, "quorum": 2,
            "result_sha256": None, "progress": None}
    return {**base, **kw}


def replica(status, digest=None):
    return {"status": status, "result_sha256": digest}


def test_why_says_how_a_job_ended():
    assert why_text(job("COMPLETED", result_sha256="ab" * 32, replicas=[replica("DONE", "ab" * 32)] * 2)) == \
        f"job 7 is certified: 2 results agree on {'ab' * 6}"
    assert why_text(job("ERROR", error="replicas disagree\n")) == "job 7 ended in ERROR: replicas disagree"
    assert why_text(job("CANCELLED")) == "job 7 was cancelled"


def test_why_gives_the_schedulers_reason_or_the_way_to_a_quorum():
    assert why_text(job("PENDING", why="no host alive", stalled=True)) == "job 7 is PENDING, stalled: no host alive"
    line = why_text(job("RUNNING", progress=0.25,
                        replicas=[replica("RUNNING"), replica("DONE", "cd" * 32), replica("FAILED")]))
    assert line == "job 7 is RUNNING: 1 replica running, 25% done; certified when 2 results agree (1 do so far)"


def test_the_samples_version_moves_with_each_sample_kept_only():
    s = Samples()
    s.add(Sample(10.0, 0, 0, 0, 0))
    s.add(Sample(20.0, 1, 1, 0, 0))
    assert s.version == 2
    s.add(Sample(15.0, 9, 9, 0, 0))  # dropped (the clock went back): the rates did not change
    assert s.version == 2
