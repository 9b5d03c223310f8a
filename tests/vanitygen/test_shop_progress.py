"""The shop's count of an order's units, from the jobs' statuses (the lifecycle's own definitions)."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.apps.vanitygen.candidates import PER_POINT
from xwpy.apps.vanitygen.web.server import unit_progress
from xwpy.lifecycle import JobStatus


def test_failed_and_cancelled_units_are_not_running():
    p = unit_progress(["COMPLETED", "ERROR", "CANCELLED", "RUNNING", "PENDING"], unit_points=10)
    assert p["units"] == 5
    assert p["units_done"] == 1
    assert p["units_running"] == 2  # ERROR was counted as running: it is final
    assert p["keys_searched"] == 10 * PER_POINT


@given(st.lists(st.sampled_from([s.value for s in JobStatus])), st.integers(0, 1000))
def test_every_unit_is_done_running_or_ended(statuses, points):
    p = unit_progress(statuses, points)
    ended = sum(1 for s in statuses if s in ("ERROR", "CANCELLED"))
    assert p["units_done"] + p["units_running"] + ended == p["units"] == len(statuses)
    assert p["keys_searched"] == p["units_done"] * points * PER_POINT
