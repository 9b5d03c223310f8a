"""The oracle's record of on-chain tasks: what the CLI and the shop show beside the hub's own view.

Read through the API, with its rights (admins: the tasks' grid jobs are the oracle account's, which
nobody logs in as), never from the catalog file: an operator's tools may run on another machine
than the coordinator, and the catalog's layout is the coordinator's business.
"""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import ADMIN, Api, Ctx, not_found
from xwpy.server.errors import NotFound


def install(api: Api, grid) -> None:
    @api.route("GET", "/chain/tasks", ADMIN, query=protocol.ChainQuery, reply=protocol.ChainTasks, errors=(404,))
    async def tasks(ctx: Ctx):
        """The tasks of the oracle's hub in the order it saw them, from ``?after=`` (a task's row id),
        each with its request, jobs and commit (the dashboard's chain section)."""
        oracle = _oracle(grid)
        rows = await oracle.tasks(after=ctx.args.after, limit=ctx.args.limit)
        return protocol.ChainTasks(tasks=tuple(
            protocol.ChainTaskRow(id=t.id, task=t.task_id, app=t.app, status=t.status.value, requester=t.requester,
                                  price=str(t.price), deadline=t.deadline, jobs=t.job_ids, digest=t.digest,
                                  commit_tx=t.commit_tx, commit_block=t.commit_block, error=t.error)
            for t in rows))

    @api.route("GET", "/chain/tasks/{task:int}", ADMIN, reply=protocol.ChainTaskInfo)
    async def task(ctx: Ctx, task: int):
        """One task of the hub this coordinator's oracle serves: its status, jobs and commit."""
        record = await _oracle(grid).record(task)
        if record is None:
            raise not_found(f"task {task} (not seen by the oracle yet)")
        return protocol.ChainTaskInfo(**record)


def _oracle(grid):
    """The oracle this coordinator runs, linked to its chain (else 404: nothing to show)."""
    if grid.oracle is None or grid.oracle.link is None:
        raise NotFound("this coordinator runs no oracle ([oracle] enabled = false)", code="no_oracle")
    return grid.oracle
