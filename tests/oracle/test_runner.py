"""The runner with a real coordinator in this process (no chain needed): each task's jobs are
submitted exactly once, whatever the moment the oracle dies."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.grid import GridLink
from xwpy.oracle.handlers.hashchain import HashChainHandler
from xwpy.oracle.runner import Outcome, Runner, batch_name
from xwpy.server.catalog import chain as chain_catalog
from xwpy.server.coordinator import Coordinator
from xwpy.site import init_site

CID, HUB = 7, "0x" + "ab" * 20
HANDLERS = {"hashchain": HashChainHandler()}


class Crash(BaseException):
    pass


@pytest.fixture
def coordinator(tmp_path):
    cfg, _ = init_site(tmp_path / "site", port=0)
    co = Coordinator(cfg, reactor)
    co.startService()
    pytest_twisted.blockon(co.ready)
    yield co
    pytest_twisted.blockon(co.stopService())


async def oracle(co, now: float = 100.0) -> Runner:
    """A (re)started oracle's runner: a fresh grid link over the same coordinator."""
    grid = GridLink(co.grid)
    await grid.setup(HANDLERS)
    return Runner(co.catalog, grid, HANDLERS, chain_now=lambda: now, wall=lambda: 1.0, margin=10.0,
                  on_jobs=lambda pk, ids: None)


async def request(co, task_id: int, app: str = "hashchain", params: bytes = b'{"text":"a","rounds":5}',
                  deadline: int = 1_000) -> int:
    c = co.catalog.chain
    task = chain_catalog.NewTask(task_id, 1, app, params, "0x" + "11" * 20, "0x" + "00" * 20, 10, deadline, 3,
                                 "0x" + "22" * 32, task_id)
    [pk] = await c.ingest(CID, HUB, await c.cursor(CID, HUB), [task], task_id, f"0x{task_id:064x}", 1.0)
    return pk


async def run(runner: Runner, co, pk: int, steps: int = 10):
    for _ in range(steps):
        t = await co.catalog.chain.get(pk)
        if t.status not in (TaskStatus.NEW, TaskStatus.RUNNING) or await runner.advance(t) is not Outcome.PROGRESS:
            return await co.catalog.chain.get(pk)
    raise AssertionError("no rest")


async def oracle_jobs(co, runner) -> list:
    return list(await co.catalog.jobs.list(owner_id=runner.grid.user.id, batch=None, status=None, after=0, limit=100))


@pytest_twisted.ensureDeferred
async def test_a_request_becomes_one_job_of_the_oracles_public_app(coordinator):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1)
    t = await run(runner, coordinator, pk)
    assert t.status is TaskStatus.RUNNING and t.pending is None and t.round == 1 and len(t.jobs) == 1
    [job] = await oracle_jobs(coordinator, runner)
    assert (job.id, job.app, job.owner, job.batch, job.status) == (t.jobs[0][0], "oracle-hashchain", "oracle", batch_name(pk, 1), "PENDING")
    assert job.args == ["5", b"a".hex()] and (job.replication, job.quorum) == (2, 2)
    app = coordinator.directory.app_names["oracle-hashchain"]
    assert app.access == "public" and app.owner == "oracle"
    # A second oracle start reuses its account and app.
    again = await oracle(coordinator)
    assert again.grid.user.id == runner.grid.user.id and again.grid.apps["hashchain"].id == app.id


@pytest_twisted.ensureDeferred
async def test_killed_before_submitting_it_submits_once_after_restart(coordinator, monkeypatch):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1)

    async def crash(*args):
        raise Crash()

    monkeypatch.setattr(runner.grid, "submit", crash)
    with pytest.raises(Crash):
        await run(runner, coordinator, pk)
    t = await coordinator.catalog.chain.get(pk)
    assert t.status is TaskStatus.RUNNING and t.pending and t.jobs == []
    assert await oracle_jobs(coordinator, runner) == []
    t = await run(await oracle(coordinator), coordinator, pk)
    assert len(t.jobs) == 1 and len(await oracle_jobs(coordinator, runner)) == 1


@pytest_twisted.ensureDeferred
async def test_killed_after_submitting_it_adopts_the_batch_after_restart(coordinator, monkeypatch):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1)
    real = runner.grid.submit

    async def submit_then_crash(*args):
        await real(*args)
        raise Crash()

    monkeypatch.setattr(runner.grid, "submit", submit_then_crash)
    with pytest.raises(Crash):
        await run(runner, coordinator, pk)
    [job] = await oracle_jobs(coordinator, runner)
    assert (await coordinator.catalog.chain.get(pk)).jobs == []
    t = await run(await oracle(coordinator), coordinator, pk)
    assert t.jobs == [(job.id, "0")] and len(await oracle_jobs(coordinator, runner)) == 1


@pytest_twisted.ensureDeferred
async def test_failed_jobs_are_retried_as_new_rounds_then_the_task_fails(coordinator):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1)
    for attempt in range(3):
        t = await run(runner, coordinator, pk)
        assert t.status is TaskStatus.RUNNING and len(t.jobs) == attempt + 1 and t.round == attempt + 1
        await coordinator.dispatcher.cancel([t.jobs[-1][0]])  # as if the job had failed
    t = await run(runner, coordinator, pk)
    assert t.status is TaskStatus.FAILED and "3 attempts failed" in t.error
    assert {j.batch for j in await oracle_jobs(coordinator, runner)} == {batch_name(pk, r) for r in (1, 2, 3)}


@pytest_twisted.ensureDeferred
async def test_a_passed_deadline_expires_the_task_and_cancels_its_jobs(coordinator):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1, deadline=500)
    t = await run(runner, coordinator, pk)
    assert t.status is TaskStatus.RUNNING
    t = await run(await oracle(coordinator, now=501.0), coordinator, pk)
    assert t.status is TaskStatus.EXPIRED and t.finished_at is not None
    assert [j.status for j in await oracle_jobs(coordinator, runner)] == ["CANCELLED"]


@pytest.mark.parametrize(
    "app,params,deadline,status,needle",
    [
        ("nosuchapp", b"{}", 1_000, TaskStatus.FAILED, "no app 'nosuchapp'"),
        ("hashchain", b'{"text":"a"}', 1_000, TaskStatus.FAILED, "bad params"),
        ("hashchain", b'{"text":"a","rounds":1}', 50, TaskStatus.EXPIRED, "deadline passed"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_requests_it_cannot_run_end_at_once_with_the_reason(coordinator, app, params, deadline, status, needle):
    runner = await oracle(coordinator)
    pk = await request(coordinator, 1, app=app, params=params, deadline=deadline)
    t = await run(runner, coordinator, pk)
    assert t.status is status and needle in t.error
    assert await oracle_jobs(coordinator, runner) == []


@pytest_twisted.ensureDeferred
async def test_a_row_of_a_foreign_app_left_by_an_older_version_gets_no_work(coordinator):
    """Issue 18, 1: a version that picked handlers by name ingested a stranger's "hashchain"."""
    grid = GridLink(coordinator.grid)
    await grid.setup(HANDLERS)
    runner = Runner(coordinator.catalog, grid, HANDLERS, chain_now=lambda: 100.0, wall=lambda: 1.0, margin=10.0,
                    on_jobs=lambda pk, ids: None, served={2: "hashchain"})
    pk = await request(coordinator, 1)  # app id 1, named "hashchain"
    t = await run(runner, coordinator, pk)
    assert t.status is TaskStatus.FAILED and "#1" in t.error
    assert await oracle_jobs(coordinator, runner) == []
