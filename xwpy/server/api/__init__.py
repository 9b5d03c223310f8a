"""The coordinator's HTTPS JSON API (``/api/v1``): one module per group of endpoints."""

from xwpy import logs, protocol
from xwpy.server.api import apps, chain, dashboard, data, hosts, jobs, ops, uploads, users, work
from xwpy.server.api import openapi
from xwpy.server.api.router import ANON, Api, Ctx, json_raw


def build(grid, access_log: bool = False) -> Api:
    """The route table over ``grid`` (:class:`xwpy.server.grid.Grid`): handlers call it, nothing below."""
    api = Api(grid.directory)
    if access_log:
        api.access_log = logs.access_log()
    for module in (users, apps, data, uploads, jobs, hosts, work, chain, ops, dashboard):
        module.install(api, grid)
    described: list = []

    @api.route("GET", "/openapi.json", ANON, reply=protocol.Json())
    async def description(ctx: Ctx):
        """This API's OpenAPI 3.1 document (public: it says what is checked, not what is stored)."""
        if not described:  # built once, from every route (this one included)
            described.append(json_raw(openapi.document(api.routes())))
        return described[0]

    return api
