"""The Python API's pure parts: the watcher's slices of more pending jobs than one poll may name,
JobFailed's message, and a Grid's settings from the environment."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy.client.api import ClientError
from xwpy.client.futures import Grid, JobFailed, poll_slice


@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=300, unique=True), st.integers(1, 50),
       st.integers(0, 10**6))
def test_slices_name_every_pending_job_in_turn(ids, limit, start):
    seen: set[int] = set()
    for _ in range(math.ceil(len(ids) / limit)):
        part, start = poll_slice(ids, start, limit)
        assert len(part) == min(limit, len(ids)) and set(part) <= set(ids)
        seen.update(part)
    assert seen == set(ids)


def test_job_failed_says_why_and_shows_stderr():
    e = JobFailed(7, "1 replica failed (max_errors 1)", "Traceback...\nValueError: bad\n", 1)
    text = str(e)
    assert text.startswith("job 7 ended in ERROR: 1 replica failed") and text.endswith("ValueError: bad")
    assert "(exit 1)" in text and e.stderr_tail.endswith("bad\n")


def test_from_env_needs_a_coordinator(tmp_path):
    with pytest.raises(ClientError, match="XWPY_URL"):
        Grid.from_env({})
    with pytest.raises(ClientError, match="no coordinator running"):
        Grid.from_env({"XWPY_SITE": str(tmp_path)})
