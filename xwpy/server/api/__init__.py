"""The coordinator's HTTPS JSON API (``/api/v1``): one module per group of endpoints."""

from xwpy import logs
from xwpy.server.api import apps, chain, dashboard, data, hosts, jobs, ops, uploads, users, work
from xwpy.server.api.router import Api


def build(grid, access_log: bool = False) -> Api:
    """The route table over ``grid`` (:class:`xwpy.server.grid.Grid`): handlers call it, nothing below."""
    api = Api(grid.directory)
    if access_log:
        api.access_log = logs.access_log()
    for module in (users, apps, data, uploads, jobs, hosts, work, chain, ops, dashboard):
        module.install(api, grid)
    return api
