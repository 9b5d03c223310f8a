"""Submission times kept per submission, not per job: each job finds its own submission's time.
The certification histogram scrapes as prometheus_client's own would."""

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import Histogram as ClientHistogram

from xwpy.server.metrics import LATENCY_BUCKETS, SubmitTimes, latency_histogram

# Submissions: (number of jobs, seconds after the previous one).
submissions = st.lists(st.tuples(st.integers(1, 50), st.floats(0, 100)), min_size=1, max_size=30)


def fill(subs):
    times, expected, next_id, t = SubmitTimes(), {}, 1, 0.0
    for n, dt in subs:
        t += dt
        times.add(next_id, t)
        expected.update({jid: t for jid in range(next_id, next_id + n)})
        next_id += n
    return times, expected, [n for n, _ in subs]


@given(submissions)
def test_each_job_gets_its_submissions_time(subs):
    times, expected, _ = fill(subs)
    assert all(times.at(jid) == t for jid, t in expected.items())
    assert times.at(0) is None  # a job from before this coordinator started


@given(submissions, st.data())
def test_forgetting_keeps_every_job_from_the_oldest_active_on(subs, data):
    times, expected, sizes = fill(subs)
    oldest = data.draw(st.sampled_from(sorted(expected)))
    times.forget_before(oldest)
    assert all(times.at(jid) == t for jid, t in expected.items() if jid >= oldest)
    # Exactly the submissions with a job at or after the oldest active one are kept.
    last_ids = [sum(sizes[:i + 1]) for i in range(len(sizes))]
    assert len(times) == sum(1 for last in last_ids if last >= oldest)


@given(st.lists(st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(0, 1e6, allow_nan=False)), max_size=50))
def test_the_histogram_scrapes_as_prometheus_clients_own(values):
    ours = latency_histogram()
    theirs = ClientHistogram(ours.name, ours.documentation, buckets=LATENCY_BUCKETS, registry=None)
    for v in values:  # (bounds themselves included: a value equal to a bound is in its bucket)
        ours.observe(v)
        theirs.observe(v)
    [mine], [ref] = ours.collect(), theirs.collect()
    assert (mine.name, mine.type, mine.documentation) == (ref.name, ref.type, ref.documentation)
    expected = [(x.name, x.labels, x.value) for x in ref.samples if not x.name.endswith("_created")]
    assert [(x.name, x.labels, x.value) for x in mine.samples] == expected
