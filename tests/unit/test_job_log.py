"""The job log's lines: each committed state change of a job once, consecutive jobs together."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xwpy.logs import JobLog, status_runs
from xwpy.server.scheduler.engine import Changes


@given(st.dictionaries(st.integers(1, 40), st.sampled_from(["PENDING", "RUNNING", "COMPLETED"]), max_size=30),
       st.dictionaries(st.integers(41, 60), st.sampled_from(["PENDING"]), max_size=10))
def test_the_job_log_gives_each_state_change_once_in_runs(updated, new):
    """The job log's lines (xwpy.logs.status_runs): every change of status once, consecutive jobs
    going to one status on one line, and nothing for an update that is not of a status."""
    ch = Changes(jobs_new=[{"id": j, "status": s} for j, s in new.items()],
                 jobs={**{j: {"status": s, "started_at": 1.0} for j, s in updated.items()}, 99: {"error": "x"}})
    runs = status_runs(ch)
    assert {j: s for first, last, s in runs for j in range(first, last + 1)} == {**updated, **new}
    assert all(not (a[1] + 1 == b[0] and a[2] == b[2]) for a, b in zip(runs, runs[1:]))  # runs are maximal


def test_lines_in_text_and_json():
    import io
    import json

    text, js = io.StringIO(), io.StringIO()
    for out, fmt in ((text, "text"), (js, "json")):
        JobLog(out, fmt, clock=lambda: 0.0).changes(
            Changes(jobs_new=[{"id": i, "status": "PENDING"} for i in (5, 6, 7)], jobs={3: {"status": "ERROR"}}))
    assert [line.split("] ", 1)[1] for line in text.getvalue().splitlines()] == ["job 3 ERROR", "jobs 5-7 PENDING"]
    assert [(e["first"], e["last"], e["status"], e["log_namespace"]) for e in map(json.loads, js.getvalue().splitlines())] == [
        (3, 3, "ERROR", "xwpy.jobs"), (5, 7, "PENDING", "xwpy.jobs")]
