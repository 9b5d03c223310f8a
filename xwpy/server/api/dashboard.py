"""The web dashboard (``/``): its files, and what its pages read — who is signed in, a long poll
that wakes when jobs change, the jobs (counts, batches, the latest) and hosts, throughput over
time. Every read goes through the grid with the caller's rights, exactly as the CLI's do; the
pages one change wakes share their reads, encoded once (``?seen=V``: the feed's version the page
was woken with; :mod:`xwpy.server.fresh`)."""

from __future__ import annotations

from xwpy import __version__, protocol
from xwpy.lifecycle import JobStatus
from xwpy.server import web
from xwpy.server.api.hosts import host_rows
from xwpy.server.api.jobs import job_info, owner_filter
from xwpy.server.api.router import USER, Api, Ctx, Raw, json_raw
from xwpy.server.samples import SAMPLE_SECONDS

FINAL = [s.value for s in JobStatus if s.final]
BATCHES, JOBS = 20, 50  # the latest batches and jobs a page shows


def install(api: Api, grid) -> None:
    for path, (body, ctype) in web.pages().items():
        api.page(path, Raw(body, ctype, headers=web.HEADERS))

    @api.route("GET", "/dashboard/site", USER, reply=protocol.DashboardSite)
    async def site(ctx: Ctx):
        """Who is signed in, and what this site shows them."""
        u = ctx.user
        oracle = grid.oracle is not None and getattr(grid.oracle, "link", None) is not None
        return protocol.DashboardSite(login=u.login, role=u.role, admin=u.admin, oracle=oracle and u.admin,
                                      sample_seconds=SAMPLE_SECONDS, version=__version__)

    @api.route("GET", "/dashboard/feed", USER, query=protocol.FeedQuery, reply=protocol.Feed)
    async def feed(ctx: Ctx):
        """The page reloads what it shows when the counter moves."""
        return protocol.Feed(version=await grid.feed.wait(ctx.args.after, ctx.args.wait))

    @api.route("GET", "/dashboard/jobs", USER, query=protocol.SeenQuery, reply=protocol.DashboardJobs)
    async def jobs(ctx: Ctx):
        """The caller's jobs (``?all=1``: an admin's, every owner's): counts by status, the latest
        batches' counts, and the latest jobs with why they wait."""
        owner = owner_filter(ctx)

        async def read():
            counts = await grid.job_counts(owner_id=owner, batch=None)
            batches = await grid.batches(owner_id=owner, limit=BATCHES)
            newest = await grid.newest_jobs(owner_id=owner, batch=None, status=None, limit=JOBS)
            alive = grid.alive_hosts()
            return json_raw(protocol.encode(protocol.DashboardJobs(
                counts=counts,
                batches=tuple(protocol.BatchCounts(batch=b, counts=c, total=sum(c.values()),
                                                   final=sum(c[s] for s in FINAL)) for b, c in batches),
                jobs=tuple(job_info(j, grid=grid, alive=alive) for j in newest),
            )))

        return await grid.shared(("jobs", owner), read, ctx.args.seen)

    @api.route("GET", "/dashboard/hosts", USER, query=protocol.SeenQuery, reply=protocol.HostList)
    async def hosts(ctx: Ctx):
        """The caller's hosts (every host for an admin), as ``GET /hosts``."""
        user = ctx.user
        key = ("hosts", None if user.admin else user.id)
        return await grid.shared(key, lambda: _hosts(grid, user), ctx.args.seen)

    made: list = [-1, None]  # (samples' version, the answer drawn from them), for every page

    @api.route("GET", "/dashboard/throughput", USER, reply=protocol.Throughput)
    async def throughput(ctx: Ctx):
        """The whole site's rates over the last hour (figures, no job of anyone's): encoded once
        per sample (an hour is 360 points), however many pages ask."""
        if made[0] != grid.samples.version:
            made[:] = [grid.samples.version, json_raw({"sample_seconds": SAMPLE_SECONDS, "points": grid.samples.rates()})]
        return made[1]


async def _hosts(grid, user) -> Raw:
    return json_raw(protocol.encode(protocol.HostList(hosts=tuple(await host_rows(grid, user)))))
