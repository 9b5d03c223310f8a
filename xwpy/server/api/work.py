"""The worker protocol: register a host, say hello, pull work (long poll), heartbeat, report."""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred

from xwpy import protocol
from xwpy.server.api.router import HOST, USER, Api, Ctx


def install(api: Api, grid) -> None:
    def timing() -> dict:
        return protocol.encode(grid.timing())

    @api.route("POST", "/work/register", USER, body=protocol.RegisterHost, reply=protocol.HostRegistered)
    async def register(ctx: Ctx):
        host_id, token = await grid.register_host(ctx.user, ctx.body)
        return {"host_id": host_id, "token": token, **timing()}

    @api.route("POST", "/work/hello", HOST, body=protocol.Hello, reply=protocol.WorkerTiming)
    async def hello(ctx: Ctx):
        await grid.hello(ctx.principal.host_id, ctx.body)
        return timing()

    async def pull(ctx: Ctx, want: protocol.WorkRequest) -> list:
        d = Deferred.fromCoroutine(grid.request_work(ctx.principal.host_id, want))
        ctx.request.notifyFinish().addErrback(lambda _: d.cancel())  # worker gone: stop waiting for it
        try:
            got = await d
        except CancelledError:
            return []
        return got  # (encoded already: the grid's wire_assignment)

    @api.route("POST", "/work/request", HOST, body=protocol.WorkRequest, reply=protocol.WorkReply)
    async def request(ctx: Ctx):
        return {"replicas": await pull(ctx, ctx.body)}

    @api.route("POST", "/work/alive", HOST, body=protocol.Alive, reply=protocol.AliveReply)
    async def alive(ctx: Ctx):
        abort = await grid.alive(ctx.principal.host_id, ctx.body)
        return {"abort": abort, "heartbeat_seconds": grid.config.scheduler.heartbeat_seconds,
                "credit": grid.credit(ctx.principal.host_id)}

    @api.route("POST", "/work/results", HOST, body=protocol.Results, reply=protocol.ResultsReply)
    async def results(ctx: Ctx):
        msg = ctx.body
        if msg.next is None:
            outcome, replicas = await grid.report(ctx.principal.host_id, msg.results), None
        else:  # one commit for the results and the next leases; nothing ready: the long poll
            outcome, got = await grid.report_and_request(ctx.principal.host_id, msg.results, msg.next)
            replicas = got or await pull(ctx, msg.next)  # (encoded already)
        # (protocol.ResultsReply, encoded: its assignments are already)
        return {"outcome": {str(k): v for k, v in outcome.items()}, "replicas": replicas}

    @api.route("POST", "/work/blob-url", HOST, body=protocol.BlobUrlRequest, reply=protocol.BlobUrl,
               errors=(404, 413, 503))
    async def blob_url(ctx: Ctx):
        """A presigned URL of the site's object store for one blob of one replica this host holds
        ([blobs] backend = "s3"; 404 on a site that keeps its blobs itself)."""
        return await grid.blob_url(ctx.principal.host_id, ctx.body)

    @api.route("POST", "/work/release", HOST, body=protocol.Release, reply=protocol.Released)
    async def release(ctx: Ctx):
        await grid.release(ctx.principal.host_id, ctx.body.replicas)
        return protocol.Released(released=ctx.body.replicas)
