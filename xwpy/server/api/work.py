"""The worker protocol: register a host, say hello, pull work (long poll), heartbeat, report."""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred

from xwpy import protocol, tokens
from xwpy.server.api.router import HOST, USER, Api, Ctx
from xwpy.server.catalog.rows import Host
from xwpy.server.scheduler.engine import HostState


def install(api: Api, co) -> None:
    def timing() -> dict:
        return protocol.encode(
            protocol.WorkerTiming(
                heartbeat_seconds=co.config.scheduler.heartbeat_seconds, lease_seconds=co.config.lease_seconds
            )
        )

    @api.route("POST", "/work/register", USER)
    async def register(ctx: Ctx):
        msg = protocol.parse(protocol.RegisterHost, ctx.json())
        token = tokens.new_token("xwh")
        digest = tokens.token_hash(token)
        now = co.now()
        host_id = await co.catalog.hosts.add(
            owner_id=ctx.user.id, name=msg.name, token_hash=digest, cpus=msg.cpus, memory=msg.memory, os=msg.os, now=now,
            platform=msg.platform or "", images=msg.images, network=msg.network,
        )
        co.directory.add_host(
            Host(host_id, ctx.user.id, msg.name, digest, msg.cpus, msg.memory, msg.os, now, now, 0, ctx.user.login,
                 ctx.user.group, msg.platform or "", msg.images, msg.network)
        )
        co.dispatcher.add_host(HostState(host_id, ctx.user.id, ctx.user.group, msg.memory, 0, now, cores=msg.cpus,
                                         platform=msg.platform or "", images=msg.images, network=msg.network))
        co.log.info("host {id} ({name}) registered by {login}", id=host_id, name=msg.name, login=ctx.user.login)
        return {"host_id": host_id, "token": token, **timing()}

    @api.route("POST", "/work/hello", HOST)
    async def hello(ctx: Ctx):
        msg = protocol.parse(protocol.Hello, ctx.json())
        offer = {k: v for k, v in protocol.encode(msg).items() if v is not None}
        await co.dispatcher.hello(ctx.principal.host_id, offer)
        return timing()

    async def pull(ctx: Ctx, want: protocol.WorkRequest) -> list:
        d = Deferred.fromCoroutine(co.dispatcher.request_work(ctx.principal.host_id, want.slots, want.wait))
        ctx.request.notifyFinish().addErrback(lambda _: d.cancel())  # worker gone: stop waiting for it
        try:
            got = await d
        except CancelledError:
            return []
        return [protocol.encode(co.assignment(x)) for x in got]

    @api.route("POST", "/work/request", HOST)
    async def request(ctx: Ctx):
        return {"replicas": await pull(ctx, protocol.parse(protocol.WorkRequest, ctx.json()))}

    @api.route("POST", "/work/alive", HOST)
    async def alive(ctx: Ctx):
        msg = protocol.parse(protocol.Alive, ctx.json())
        abort = await co.dispatcher.alive(ctx.principal.host_id, msg.held, {p.replica_id: p.done for p in msg.progress},
                                          msg.suspended)
        return {"abort": abort, "heartbeat_seconds": co.config.scheduler.heartbeat_seconds}

    @api.route("POST", "/work/results", HOST)
    async def results(ctx: Ctx):
        msg = protocol.parse(protocol.Results, ctx.json())
        outcome = await co.dispatcher.report(ctx.principal.host_id, list(msg.results))
        reply = {"outcome": {str(k): v for k, v in outcome.items()}}
        if msg.next is not None:
            reply["replicas"] = await pull(ctx, msg.next)
        return reply

    @api.route("POST", "/work/release", HOST)
    async def release(ctx: Ctx):
        msg = protocol.parse(protocol.Release, ctx.json())
        await co.dispatcher.release(ctx.principal.host_id, msg.replicas)
        return {"released": list(msg.replicas)}
