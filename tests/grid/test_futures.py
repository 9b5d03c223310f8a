"""The Python API (xwpy.client.futures) against a real coordinator and workers: results in order,
cancellation reaching the coordinator, a failure carrying its stderr, the stdlib's wait and
as_completed, asyncio, and a bounded number of connections however many futures are pending."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf

import pytest

from tests.grid.conftest import SLOW, SQUARE
from tests.harness import wait_for
from xwpy import Grid, JobFailed, JobNotFound
from xwpy.client.futures import JobFuture
from xwpy.client.futures import FETCHERS

pytestmark = pytest.mark.slow

FAIL = ["{python}", "-c", "import sys; sys.stderr.write('bad input ' + sys.argv[1] + '\\n'); sys.exit(3)", "{args}"]
BIG = ["{python}", "-c", "import sys; sys.stdout.write('y' * int(sys.argv[1]))", "{args}"]  # a result not inline
MOST_CONNECTIONS = 2 + FETCHERS  # submitting and cancelling, watching, fetching


def _grid(grid, slots: int = 1) -> Grid:
    grid.start_coordinator()
    token = grid.user("alice")
    alice = grid.client(token)
    alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    alice.register_app(name="fail", command=FAIL, replication=1, quorum=1)
    alice.register_app(name="big", command=BIG, replication=1, quorum=1)
    grid.start_worker("w", grid.user("vol", "worker"), slots=slots)
    return Grid(grid.url, grid.cfg.ca_cert, token)


def test_map_500_in_input_order(grid):
    with _grid(grid, slots=4) as g:
        results = list(g.map("square", range(500)))
        assert results == [f"{n * n}\n".encode() for n in range(500)]
        assert g.connections <= MOST_CONNECTIONS
        assert g.downloads == 0  # small results came inline with the wait answers


def test_500_pending_cost_a_few_connections_and_cancel_reaches_the_coordinator(grid):
    with _grid(grid) as g:
        futures = g.sweep("slow", "600", "{i}", i="1..500")
        assert [f.params for f in futures[:2]] == [{"i": "1"}, {"i": "2"}]
        wait_for(lambda: g.polls >= 3, 60, "the watcher's long polls")
        assert not any(f.done() for f in futures)
        assert g.connections <= MOST_CONNECTIONS
        assert all(f.cancel() for f in futures[:5])  # one by one
        assert g.cancel(futures[5:]) == 495  # all at once
        assert all(f.cancelled() for f in futures)
        done, not_done = cf.wait(futures, timeout=0)
        assert len(done) == 500 and not not_done
        assert len(set(cf.as_completed(futures, timeout=0))) == 500
        statuses = {j["id"]: j["status"] for j in g._control.jobs()}
        assert {statuses[f.job_id] for f in futures} == {"CANCELLED"}
        assert g.connections <= MOST_CONNECTIONS


def test_failure_carries_stderr_and_as_completed_yields_each_once(grid, tmp_path):
    with _grid(grid, slots=2) as g:
        ok = [g.submit("square", n) for n in range(6)]
        bad = g.submit("fail", "x17", max_errors=1)
        saved = g.submit("square", 9, save=tmp_path / "saved", extract=tmp_path / "out")
        seen = list(cf.as_completed([*ok, bad, saved], timeout=120))
        assert len(seen) == 8 and set(seen) == {*ok, bad, saved}
        assert [f.result() for f in ok] == [f"{n * n}\n".encode() for n in range(6)]
        with pytest.raises(JobFailed) as failed:
            bad.result()
        assert failed.value.job_id == bad.job_id and "bad input x17" in failed.value.stderr_tail
        assert failed.value.exit_code == 3 and "bad input x17" in str(failed.value)
        assert saved.result() == tmp_path / "out" / f"job-{saved.job_id}"
        assert (saved.result() / "stdout").read_text() == "81\n"
        assert (tmp_path / "saved" / f"job-{saved.job_id}.tar").is_file()
        assert g.downloads == 0  # small results, saved and extracted too, came with the wait answers
        big = 200_000  # more than a worker reports inline: uploaded, then downloaded by the future
        assert g.submit("big", big).result(timeout=120) == b"y" * big and g.downloads == 1
        assert not bad.cancel() and not ok[0].cancel()  # final: nothing to cancel

        async def both():
            return await asyncio.gather(g.submit_async("square", 12), asyncio.wrap_future(g.submit("square", 13)))

        assert asyncio.run(both()) == [b"144\n", b"169\n"]


def test_progress_bar_counts_the_jobs(grid, capsys):
    with _grid(grid) as g:
        assert list(g.map("square", [2, 3], progress=True)) == [b"4\n", b"9\n"]
    assert "2/2" in capsys.readouterr().err


def test_from_env(grid):
    grid.start_coordinator()
    g = Grid.from_env({"XWPY_SITE": str(grid.cfg.dir)})
    g.close()
    assert g.endpoint.url == grid.url


def _follow(g: Grid, job_id: int) -> JobFuture:
    """A future of this Grid for a job it did not submit (the watcher asks for it like any other)."""
    future = JobFuture(g, job_id, save=None, extract=None)
    with g._changed:
        g._pending[job_id] = future
        g._added = True
        g._changed.notify_all()
    return future


def test_a_deleted_job_fails_its_future_only_and_another_users_job_looks_the_same(grid):
    grid.start_coordinator()
    token = grid.user("alice")
    alice = grid.client(token)
    alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
    bob = grid.client(grid.user("bob"))
    bob.register_app(name="bobs-square", command=SQUARE, replication=1, quorum=1)
    [bobs] = bob.submit([{"app": "bobs-square", "args": ["5"]}])
    with Grid(grid.url, grid.cfg.ca_cert, token) as g:
        futures = [g.submit("square", n) for n in (2, 3, 4)]  # no worker yet: all three wait
        wait_for(lambda: g.polls >= 1, 60, "the watcher's long poll")
        alice.call("DELETE", f"/jobs/{futures[1].job_id}")  # deleted by its owner meanwhile
        grid.start_worker("w", grid.user("vol", "worker"))
        assert futures[0].result(timeout=120) == b"4\n" and futures[2].result(timeout=120) == b"16\n"
        # Cancelled first, then deleted: the watcher saw one or the other; either way it raises.
        with pytest.raises((JobNotFound, cf.CancelledError)):
            futures[1].result(timeout=60)
        # Once deleted, and someone else's: the same answer, the same exception, nothing else touched.
        answer = alice.call("POST", "/jobs/wait", {"ids": [futures[1].job_id, bobs, futures[0].job_id]})
        assert answer["missing"] == sorted([futures[1].job_id, bobs])
        assert [f["id"] for f in answer["final"]] == [futures[0].job_id]
        deleted, foreign = _follow(g, futures[1].job_id), _follow(g, bobs)
        for f in (deleted, foreign):
            with pytest.raises(JobNotFound) as missing:
                f.result(timeout=60)
            assert str(missing.value) == f"job {f.job_id} not found: deleted, or not yours"
        assert bob.job(bobs)["id"] == bobs  # still there, bob's
