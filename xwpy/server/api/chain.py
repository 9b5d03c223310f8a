"""The oracle's record of on-chain tasks: what the CLI and the shop show beside the hub's own view.

Read through the API, with its rights, never from the catalog file: an operator's tools may run
on another machine than the coordinator, and the catalog's layout is the coordinator's business.
"""

from __future__ import annotations

from collections import Counter

from xwpy.server.api.router import ADMIN, Api, Ctx, not_found
from xwpy.server.errors import NotFound


def install(api: Api, grid) -> None:
    @api.route("GET", "/chain/tasks", ADMIN)
    async def tasks(ctx: Ctx):
        """The tasks of the oracle's hub in the order it saw them, from ``?after=`` (a task's row id),
        each with its request, jobs and commit (the dashboard's chain section)."""
        link = grid.oracle.link if grid.oracle is not None else None
        if link is None:
            raise NotFound("this coordinator runs no oracle ([oracle] enabled = false)", code="no_oracle")
        rows = await grid.catalog.chain.list(link.chain_id, link.hub_address, after=ctx.qint("after", 0, 0, 2**62),
                                             limit=ctx.qint("limit", 100, 1, 1000))
        return {"tasks": [{"id": t.id, "task": t.task_id, "app": t.app, "status": t.status.value,
                           "requester": t.requester, "price": str(t.price), "deadline": t.deadline,
                           "jobs": t.job_ids, "digest": t.digest, "commit_tx": t.commit_tx,
                           "commit_block": t.commit_block, "error": t.error} for t in rows]}

    @api.route("GET", "/chain/tasks/{task:int}", ADMIN)
    async def task(ctx: Ctx, task: int):
        """One task of the hub this coordinator's oracle serves: its status, jobs and commit."""
        link = grid.oracle.link if grid.oracle is not None else None
        if link is None:
            raise NotFound("this coordinator runs no oracle ([oracle] enabled = false)", code="no_oracle")
        t = await grid.catalog.chain.find(link.chain_id, link.hub_address, task)
        if t is None:
            raise not_found(f"task {task} (not seen by the oracle yet)")
        statuses = await grid.catalog.jobs.statuses(t.job_ids) if t.job_ids else {}
        return {
            "task": t.task_id, "chain_id": t.chain_id, "hub": t.hub, "app": t.app, "status": t.status.value,
            "error": t.error, "jobs": t.job_ids, "job_statuses": dict(Counter(statuses.values())),
            "state": t.state, "digest": t.digest, "commit_tx": t.commit_tx, "commit_block": t.commit_block,
        }
