"""Hosts: the volunteers' machines, their tokens and reputations."""

from __future__ import annotations

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.catalog.rows import Host
from xwpy.server.catalog.schema import hosts, users


def _row(r) -> Host:
    return Host(
        r.id, r.owner_id, r.name, r.token_hash, r.cpus, r.memory, r.os, r.registered_at, r.last_alive,
        r.reputation, r.login, r.group_name, r.platform or "", bool(r.images), bool(r.network),
        r.disk or 0, r.revoked_at, r.credit or 0.0, r.payout_address,
    )


def all_hosts(conn) -> list[Host]:
    q = select(hosts, users.c.login, users.c.group_name).join(users, users.c.id == hosts.c.owner_id)
    return [_row(r) for r in conn.execute(q.order_by(hosts.c.id))]


class HostsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, *, owner_id, name, token_hash, cpus, memory, os, now, platform="", images=False,
            network=False) -> Deferred:
        def thd(conn) -> int:
            res = conn.execute(
                hosts.insert().values(
                    owner_id=owner_id, name=name, token_hash=token_hash, cpus=cpus, memory=memory, os=os,
                    registered_at=now, last_alive=now, reputation=0, platform=platform, images=images,
                    network=network,
                )
            )
            return res.inserted_primary_key[0]

        return self.catalog.write(thd)

    def revoke(self, host_id: int, now: float) -> Deferred:
        """Revoke the host's token (once: a second revocation keeps the first time); the host."""

        def thd(conn) -> Host:
            conn.execute(hosts.update().where(hosts.c.id == host_id, hosts.c.revoked_at.is_(None)).values(revoked_at=now))
            q = select(hosts, users.c.login, users.c.group_name).join(users, users.c.id == hosts.c.owner_id)
            return _row(conn.execute(q.where(hosts.c.id == host_id)).one())

        return self.catalog.write(thd)

    def set_payout_address(self, host_id: int, address: str | None) -> Deferred:
        """Where the host's share of the pool is paid from the next epoch on; the host."""

        def thd(conn) -> Host:
            conn.execute(hosts.update().where(hosts.c.id == host_id).values(payout_address=address))
            q = select(hosts, users.c.login, users.c.group_name).join(users, users.c.id == hosts.c.owner_id)
            return _row(conn.execute(q.where(hosts.c.id == host_id)).one())

        return self.catalog.write(thd)

    def all(self) -> Deferred:
        return self.catalog.read(all_hosts)
