"""Applications: a command template, limits, a validator, who may use them."""

from __future__ import annotations

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.catalog.rows import App
from xwpy.server.catalog.schema import apps, users


def _row(r) -> App:
    return App(
        r.id, r.name, r.owner_id, r.login, r.access, r.bundle_sha256, tuple(r.command), dict(r.limits),
        r.validator, r.replication, r.quorum, bool(r.adaptive), bool(r.network),
    )


def all_apps(conn) -> list[App]:
    q = select(apps, users.c.login).join(users, users.c.id == apps.c.owner_id).order_by(apps.c.id)
    return [_row(r) for r in conn.execute(q)]


class AppsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, *, name, owner_id, access, bundle, command, limits, validator, replication, quorum, now,
            adaptive=False, network=False) -> Deferred:
        def thd(conn) -> int:
            res = conn.execute(
                apps.insert().values(
                    name=name, owner_id=owner_id, access=access, bundle_sha256=bundle, command=list(command),
                    limits=limits, validator=validator, replication=replication, quorum=quorum, adaptive=adaptive,
                    network=network, created_at=now,
                )
            )
            return res.inserted_primary_key[0]

        return self.catalog.write(thd)

    def all(self) -> Deferred:
        return self.catalog.read(all_apps)
