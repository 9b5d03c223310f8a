"""Users and their tokens."""

from __future__ import annotations

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.catalog.rows import User
from xwpy.server.catalog.schema import users


def _row(r) -> User:
    return User(r.id, r.login, r.role, r.group_name, r.token_hash, bool(r.disabled), r.token_expires)


def insert(conn, *, login: str, role: str, group: str, token_hash: str, now: float,
           expires: float | None = None) -> int:
    values = dict(login=login, role=role, group_name=group, token_hash=token_hash, created_at=now)
    if expires is not None:  # (named only when set: tests write this row into older catalogs)
        values["token_expires"] = expires
    res = conn.execute(users.insert().values(**values))
    return res.inserted_primary_key[0]


def all_users(conn) -> list[User]:
    return [_row(r) for r in conn.execute(select(users).order_by(users.c.id))]


class UsersComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def add(self, *, login: str, role: str, group: str, token_hash: str, now: float,
            expires: float | None = None) -> Deferred:
        def thd(conn) -> User:
            uid = insert(conn, login=login, role=role, group=group, token_hash=token_hash, now=now, expires=expires)
            return User(uid, login, role, group, token_hash, False, expires)

        return self.catalog.write(thd)

    def update(self, user_id: int, **values) -> Deferred:
        """Change a user's ``disabled``, ``token_hash`` or ``token_expires``; the updated user."""

        def thd(conn) -> User:
            conn.execute(users.update().where(users.c.id == user_id).values(**values))
            return _row(conn.execute(select(users).where(users.c.id == user_id)).one())

        return self.catalog.write(thd)

    def all(self) -> Deferred:
        return self.catalog.read(all_users)
