"""The Python API's pure parts: the watcher's slices of more pending jobs than one poll may name,
JobFailed's message, a Grid's settings from the environment, and the results a wait answer
carries inline (within its budget, checked against their digest)."""

import base64
import hashlib
import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy import archive
from xwpy.client.api import ClientError
from xwpy.client.futures import Grid, JobFailed, _inline, poll_slice
from xwpy.server.grid import with_inline


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


@given(st.lists(st.tuples(st.sampled_from(["COMPLETED", "ERROR"]), st.integers(0, 100), st.booleans()), max_size=40),
       st.integers(0, 1000))
def test_inline_results_stay_within_the_answers_budget(jobs, budget):
    ends, small = [], {}
    for jid, (status, size, kept) in enumerate(jobs, 1):
        digest = f"{jid:064x}" if status == "COMPLETED" else None
        if digest is not None and kept:
            small[digest] = b"x" * size
        ends.append((jid, status, digest))
    out = with_inline(ends, small, budget)
    assert [o[:3] for o in out] == ends  # every final job, in order, whatever is inline
    carried = [o[3] for o in out if o[3] is not None]
    assert sum(map(len, carried)) <= budget
    assert all(data == small[digest] for _, _, digest, data in out if data is not None)
    left = budget - sum(map(len, carried))
    assert all(len(small[d]) > left for _, _, d, data in out if data is None and d in small)  # left out: did not fit


def test_an_inline_result_is_used_only_when_it_hashes_to_the_certified_digest():
    data = archive.from_files({"stdout": b"81\n"})
    digest = hashlib.sha256(data).hexdigest()
    encoded = base64.b64encode(data).decode()
    assert _inline(encoded, digest) == data
    assert _inline(encoded, "0" * 64) is None  # damaged or not this job's: downloaded instead
    assert _inline("not base64!", digest) is None and _inline(None, digest) is None
    out = io.BytesIO()
    assert archive.copy_member(data, "stdout", out) and out.getvalue() == b"81\n"
