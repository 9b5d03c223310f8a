"""Users and their tokens."""

from __future__ import annotations

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.catalog.rows import User
from xwpy.server.catalog.schema import users


def _row(r) -> User:
    return User(r.id, r.login, r.role, r.group_name, r.token_hash, bool(r.disabled))


def insert(conn, *, login: str, role: str, group: str, token_hash: str, now: float) -> int:
    res = conn.execute(
        users.insert().values(login=login, role=role, group_name=group, token_hash=token_hash, created_at=now)
    )
    return res.inserted_primary_key[0]


def all_users(conn) -> list[User]:
    return [_row(r) for r in conn.execute(select(users).order_by(users.c.id))]


class UsersComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, *, login: str, role: str, group: str, token_hash: str, now: float) -> Deferred:
        def thd(conn) -> User:
            uid = insert(conn, login=login, role=role, group=group, token_hash=token_hash, now=now)
            return User(uid, login, role, group, token_hash)

        return self.catalog.write(thd)

    def all(self) -> Deferred:
        return self.catalog.read(all_users)
