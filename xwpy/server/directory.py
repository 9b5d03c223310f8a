"""Who is who: users, hosts and apps, cached in memory for the request path.

Tokens are looked up by their sha256 in a dictionary: authenticating a request costs no database
round trip. The cache is filled from the catalog at start and updated by the grid
(:mod:`xwpy.server.grid`) after each committed change.
"""

from __future__ import annotations

from dataclasses import dataclass

from xwpy import tokens
from xwpy.server.catalog.rows import App, Host, User


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or a host acting for its owner."""

    user: User
    host_id: int | None = None


class Directory:
    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self._user_tokens: dict[str, User] = {}
        self.logins: dict[str, User] = {}
        self.hosts: dict[int, Host] = {}
        self._host_tokens: dict[str, Host] = {}
        self.apps: dict[int, App] = {}
        self.app_names: dict[str, App] = {}

    def load(self, users: list[User], hosts: list[Host], apps: list[App]) -> None:
        for u in users:
            self.add_user(u)
        for h in hosts:
            self.add_host(h)
        for a in apps:
            self.add_app(a)

    def add_user(self, u: User) -> None:
        self.users[u.id] = u
        self._user_tokens[u.token_hash] = u
        self.logins[u.login] = u

    def add_host(self, h: Host) -> None:
        self.hosts[h.id] = h
        self._host_tokens[h.token_hash] = h

    def add_app(self, a: App) -> None:
        self.apps[a.id] = a
        self.app_names[a.name] = a

    def principal(self, token: str) -> Principal | None:
        if not token or len(token) > 256:
            return None
        digest = tokens.token_hash(token)
        user = self._user_tokens.get(digest)
        if user is not None:
            return None if user.disabled else Principal(user)
        host = self._host_tokens.get(digest)
        if host is not None:
            owner = self.users.get(host.owner_id)
            if owner is not None and not owner.disabled:
                return Principal(owner, host.id)
        return None

    # -- rights ------------------------------------------------------------------------------------

    def may_use_app(self, user: User, app: App) -> bool:
        """Owners, admins, everyone for public apps, the owner's group for group apps."""
        if user.admin or app.owner_id == user.id or app.access == "public":
            return True
        return app.access == "group" and bool(user.group) and user.group == self.group_of(app.owner_id)

    def group_of(self, user_id: int) -> str:
        u = self.users.get(user_id)
        return u.group if u else ""
