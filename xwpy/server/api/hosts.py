"""Hosts: volunteers see their machines, admins see all."""

from __future__ import annotations

import dataclasses

from xwpy.server.api.router import ADMIN, USER, Api, Ctx


def install(api: Api, co) -> None:
    @api.route("GET", "/hosts", USER)
    async def listing(ctx: Ctx):
        now = co.now()
        out = []
        for h in co.directory.hosts.values():
            if not ctx.user.admin and h.owner_id != ctx.user.id:
                continue
            engine = co.dispatcher.engine
            state = engine.hosts.get(h.id)
            last_alive = state.last_alive if state else h.last_alive
            out.append(
                {
                    "id": h.id, "name": h.name, "owner": co.directory.users[h.owner_id].login,
                    # What it lends now (its last hello), else what it said when it registered.
                    "cpus": (state.cores if state and state.cores else h.cpus),
                    "memory": state.memory if state else h.memory, "os": h.os,
                    "platform": state.platform if state else h.platform,
                    "images": state.images if state else h.images, "network": state.network if state else h.network,
                    "last_alive": last_alive,
                    "alive": state.alive(now, engine.lease_seconds) if state else False,
                    "running": len(state.active) if state else 0,
                    "reputation": state.reputation if state else h.reputation,
                    "suspended": state.suspended if state else "",
                }
            )
        return {"hosts": out}

    @api.route("GET", "/stats", ADMIN)
    async def stats(ctx: Ctx):
        """Counters for operators and benchmarks."""
        d = co.dispatcher
        return {
            **dataclasses.asdict(d.stats),
            "active_jobs": len(d.engine.jobs),
            "active_replicas": sum(len(h.active) for h in d.engine.hosts.values()),
            "hosts": len(d.engine.hosts),
            "waiting_workers": d.waiting_workers,
            "commits": co.catalog.commits,
            "writes": co.catalog.writes,
            "write_seconds": co.catalog.write_seconds,
        }
