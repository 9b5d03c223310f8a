"""Operators' endpoints: the coordinator's health (anyone: load balancers have no token) and its
metrics (admins: Prometheus sends the token, ``authorization: credentials_file``)."""

from __future__ import annotations

import json

from xwpy.server import health, metrics
from xwpy.server.api.router import ADMIN, ANON, Api, Ctx, Raw


def install(api: Api, grid) -> None:
    @api.route("GET", "/health", ANON)
    async def check(ctx: Ctx):
        """200 when the catalog takes a write, the blob store a file and the chain node (if the
        oracle runs) answers; 503 naming what failed. Says nothing a stranger could use."""
        status, body = health.verdict(await health.run(grid))
        return Raw(json.dumps(body).encode(), "application/json", status)

    @api.route("GET", "/metrics", ADMIN)
    async def scrape(ctx: Ctx):
        return Raw(await metrics.scrape(grid), metrics.CONTENT_TYPE)
