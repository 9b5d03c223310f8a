"""The worker protocol: register a host, say hello, pull work (long poll), heartbeat, report."""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred

from xwpy import protocol
from xwpy.server.api.router import HOST, USER, Api, Ctx


def install(api: Api, grid) -> None:
    def timing() -> dict:
        return protocol.encode(grid.timing())

    @api.route("POST", "/work/register", USER)
    async def register(ctx: Ctx):
        host_id, token = await grid.register_host(ctx.user, protocol.parse(protocol.RegisterHost, ctx.json()))
        return {"host_id": host_id, "token": token, **timing()}

    @api.route("POST", "/work/hello", HOST)
    async def hello(ctx: Ctx):
        await grid.hello(ctx.principal.host_id, protocol.parse(protocol.Hello, ctx.json()))
        return timing()

    async def pull(ctx: Ctx, want: protocol.WorkRequest) -> list:
        d = Deferred.fromCoroutine(grid.request_work(ctx.principal.host_id, want))
        ctx.request.notifyFinish().addErrback(lambda _: d.cancel())  # worker gone: stop waiting for it
        try:
            got = await d
        except CancelledError:
            return []
        return [protocol.encode(a) for a in got]

    @api.route("POST", "/work/request", HOST)
    async def request(ctx: Ctx):
        return {"replicas": await pull(ctx, protocol.parse(protocol.WorkRequest, ctx.json()))}

    @api.route("POST", "/work/alive", HOST)
    async def alive(ctx: Ctx):
        abort = await grid.alive(ctx.principal.host_id, protocol.parse(protocol.Alive, ctx.json()))
        return {"abort": abort, "heartbeat_seconds": grid.config.scheduler.heartbeat_seconds}

    @api.route("POST", "/work/results", HOST)
    async def results(ctx: Ctx):
        msg = protocol.parse(protocol.Results, ctx.json())
        outcome = await grid.report(ctx.principal.host_id, msg.results)
        reply = {"outcome": {str(k): v for k, v in outcome.items()}}
        if msg.next is not None:
            reply["replicas"] = await pull(ctx, msg.next)
        return reply

    @api.route("POST", "/work/release", HOST)
    async def release(ctx: Ctx):
        msg = protocol.parse(protocol.Release, ctx.json())
        await grid.release(ctx.principal.host_id, msg.replicas)
        return {"released": list(msg.replicas)}
