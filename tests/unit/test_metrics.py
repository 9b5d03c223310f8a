"""Submission times kept per submission, not per job: each job finds its own submission's time."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.server.metrics import SubmitTimes

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
