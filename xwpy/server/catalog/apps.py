"""Applications: a command template, limits, a validator, who may use them, and the versions of
its bundle or image for each platform."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.protocol import DEFAULT_DEADLINE
from xwpy.server.catalog.rows import App, AppVersion
from xwpy.server.catalog.schema import app_versions, apps, users


def _row(r, extra: tuple[AppVersion, ...] = ()) -> App:
    return App(
        r.id, r.name, r.owner_id, r.login, r.access, r.bundle_sha256, tuple(r.command), dict(r.limits),
        r.validator, r.replication, r.quorum, bool(r.adaptive), bool(r.network), dict(r.image) if r.image else None,
        r.platform or "any", extra, deadline=r.deadline, checkpoints=r.checkpoints,
        comparator=r.comparator, compare=dict(r.compare) if r.compare else None, homogeneous=bool(r.homogeneous),
    )


def all_apps(conn) -> list[App]:
    extra: dict[int, list[AppVersion]] = defaultdict(list)
    for v in conn.execute(select(app_versions).order_by(app_versions.c.id)):
        extra[v.app_id].append(AppVersion(v.platform, v.bundle_sha256, dict(v.image) if v.image else None))
    q = select(apps, users.c.login).join(users, users.c.id == apps.c.owner_id).order_by(apps.c.id)
    return [_row(r, tuple(extra.get(r.id, ()))) for r in conn.execute(q)]


class AppsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, *, name, owner_id, access, bundle, command, limits, validator, replication, quorum, now,
            adaptive=False, network=False, image=None, platform="any", deadline=DEFAULT_DEADLINE,
            checkpoints="keep", comparator=None, compare=None, homogeneous=False) -> Deferred:
        def thd(conn) -> int:
            res = conn.execute(
                apps.insert().values(
                    name=name, owner_id=owner_id, access=access, bundle_sha256=bundle, command=list(command),
                    limits=limits, validator=validator, replication=replication, quorum=quorum, adaptive=adaptive,
                    network=network, created_at=now, image=image, platform=platform, deadline=deadline,
                    checkpoints=checkpoints, comparator=comparator, compare=compare, homogeneous=homogeneous,
                )
            )
            return res.inserted_primary_key[0]

        return self.catalog.write(thd)

    def add_version(self, *, app_id: int, version: AppVersion, now: float) -> Deferred:
        def thd(conn) -> None:
            conn.execute(app_versions.insert().values(
                app_id=app_id, platform=version.platform, bundle_sha256=version.bundle, image=version.image,
                created_at=now))

        return self.catalog.write(thd)

    def all(self) -> Deferred:
        return self.catalog.read(all_apps)
