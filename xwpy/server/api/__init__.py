"""The coordinator's HTTPS JSON API (``/api/v1``): one module per group of endpoints."""

from xwpy.server.api import apps, chain, data, hosts, jobs, ops, users, work
from xwpy.server.api.router import Api


def build(co) -> Api:
    api = Api(co.directory)
    api.access_log = co.config.coordinator.access_log
    for module in (users, apps, data, jobs, hosts, work, chain, ops):
        module.install(api, co)
    return api
