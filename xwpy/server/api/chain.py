"""The oracle's record of on-chain tasks: what the CLI and the shop show beside the hub's own view.

Read through the API, with its rights (admins: the tasks' grid jobs are the oracle account's, which
nobody logs in as), never from the catalog file: an operator's tools may run on another machine
than the coordinator, and the catalog's layout is the coordinator's business.
"""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import ADMIN, USER_OR_HOST, Api, Ctx, not_found
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


    @api.route("GET", "/payouts/{account}", USER_OR_HOST, reply=protocol.PayoutClaims)
    async def claims(ctx: Ctx, account: str):
        """What ACCOUNT (a payout address of one of the caller's hosts; a host's token: its own)
        may claim from the distributor: its leaves in the committed epochs, with their proofs."""
        return await _claims(ctx, account, None)

    @api.route("GET", "/payouts/{account}/{epoch:int}", USER_OR_HOST, reply=protocol.PayoutClaims)
    async def claim(ctx: Ctx, account: str, epoch: int):
        """ACCOUNT's leaf in one committed epoch, with its proof (404: nothing for it there)."""
        reply = await _claims(ctx, account, epoch)
        if not reply.claims:
            raise NotFound(f"nothing for {account} in payout epoch {epoch} (not committed, or it earned nothing)")
        return reply

    async def _claims(ctx: Ctx, account: str, epoch: int | None) -> protocol.PayoutClaims:
        account = protocol.parse(protocol.PayoutAddress, {"address": account}).address
        mine = grid.payout_accounts(ctx.user, ctx.principal.host_id)
        if account.lower() not in mine and not (ctx.user.admin and ctx.principal.host_id is None):
            raise NotFound(f"no payouts of {account} for you: it is not the payout address of one of your hosts")
        found = await _oracle(grid).claims(account, epoch)
        if found is None:
            raise NotFound("the oracle's deployment has no payout distributor", code="no_distributor")
        return protocol.PayoutClaims(
            chain_id=found["chain_id"], distributor=found["distributor"], token=found["token"], account=account,
            claims=tuple(protocol.PayoutClaim(epoch=c.epoch, index=c.index, amount=str(c.amount), proof=c.proof)
                         for c in found["claims"]))


def _oracle(grid):
    """The oracle this coordinator runs, linked to its chain (else 404: nothing to show)."""
    if grid.oracle is None or grid.oracle.link is None:
        raise NotFound("this coordinator runs no oracle ([oracle] enabled = false)", code="no_oracle")
    return grid.oracle
