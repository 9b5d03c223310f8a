"""The coordinator's HTTPS JSON API (``/api/v1``): one module per group of endpoints."""

from xwpy import logs
from xwpy.server.api import apps, chain, data, hosts, jobs, ops, users, work
from xwpy.server.api.router import Api


def build(co, access_log: bool = False) -> Api:
    api = Api(co.directory)
    if access_log:
        api.access_log = logs.access_log()
    for module in (users, apps, data, jobs, hosts, work, chain, ops):
        module.install(api, co)
    return api
