"""Hosts: volunteers see their machines, admins see all."""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import ADMIN, USER, USER_OR_HOST, Api, Ctx


async def host_rows(grid, user) -> list[protocol.HostInfo]:
    """The user's hosts (every host for an admin) as the API shows them."""
    out = []
    hosts = grid.hosts_for(user)
    by_owner: dict[int, float] = {}  # a volunteer's credit: its hosts' summed
    for seen in hosts:
        by_owner[seen.host.owner_id] = by_owner.get(seen.host.owner_id, 0.0) + _credit(seen)
    done = await grid.work_done([seen.host.id for seen in hosts])
    owed = await grid.owed([seen.host.id for seen in hosts])
    for seen in hosts:
        h, state = seen.host, seen.state
        out.append(
            protocol.HostInfo(
                id=h.id, name=h.name, owner=seen.owner,
                # What it lends now (its last hello), else what it said when it registered.
                cpus=(state.cores if state and state.cores else h.cpus),
                memory=state.memory if state else h.memory, os=h.os,
                platform=state.platform if state else h.platform,
                images=state.images if state else h.images, network=state.network if state else h.network,
                disk=state.disk if state else h.disk,
                last_alive=state.last_alive if state else h.last_alive,
                alive=seen.alive,
                running=len(state.active) if state else 0,
                reputation=state.reputation if state else h.reputation,
                suspended=state.suspended if state else "",
                done=done.get(h.id, 0),
                revoked=h.revoked_at is not None,
                credit=_credit(seen),
                owner_credit=round(by_owner[h.owner_id], 3),
                payout_address=h.payout_address,
                owed=str(owed.get(h.id, 0)),
            )
        )
    return out


def _credit(seen) -> float:
    return seen.state.credit if seen.state else seen.host.credit


def install(api: Api, grid) -> None:
    @api.route("GET", "/hosts", USER, reply=protocol.HostList)
    async def listing(ctx: Ctx):
        return protocol.HostList(hosts=tuple(await host_rows(grid, ctx.user)))

    @api.route("POST", "/hosts/{host_id:int}/revoke", USER, reply=protocol.HostRevoked)
    async def revoke(ctx: Ctx, host_id: int):
        """Revoke a host's token: its owner's or an admin's doing."""
        host = await grid.revoke_host(ctx.user, host_id)
        return protocol.HostRevoked(id=host.id, name=host.name, revoked=True)

    @api.route("PUT", "/hosts/{host_id:int}/payout-address", USER_OR_HOST, body=protocol.PayoutAddress,
               reply=protocol.HostPayout)
    async def payout_address(ctx: Ctx, host_id: int):
        """Where the host's share of the pool is paid from the next epoch on (null: nowhere): the
        host's own token, its owner's or an admin's (``xwpy worker payout-address``)."""
        host = await grid.set_payout_address(ctx.principal, host_id, ctx.body.address)
        return protocol.HostPayout(id=host.id, payout_address=host.payout_address)

    @api.route("GET", "/stats", ADMIN, reply=protocol.MapOf(protocol.Float(-1e18, 1e18), 256))
    async def stats(ctx: Ctx):
        """Counters for operators and benchmarks."""
        return grid.stats()
