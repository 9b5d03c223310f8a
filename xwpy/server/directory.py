"""Who is who: users, hosts and apps, cached in memory for the request path.

Tokens are looked up by their sha256 in a dictionary: authenticating a request costs no database
round trip. The cache is filled from the catalog at start and updated by the grid
(:mod:`xwpy.server.grid`) after each committed change. A change to who may call (a user disabled
or enabled, a token rotated, a host revoked) goes through :meth:`Directory.credentials_changed`,
the one place where anything that remembers principals must forget them: it takes effect on the
next request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from xwpy import tokens
from xwpy.server.catalog.rows import App, Host, User
from xwpy.server.errors import Unauthorized


def refusal(user: User, host: Host | None, now: float) -> Unauthorized | None:
    """Why a known token is refused at ``now`` (its user's, or its host's when ``host`` is given),
    or None. A host token follows its owner's account (disabled: refused) but not the expiry of
    the owner's own token: each token has its own life."""
    if host is not None and host.revoked_at is not None:
        return Unauthorized(f"host {host.id} ({host.name}) was revoked: its worker must be registered again",
                            code="revoked")
    if user.disabled:
        return Unauthorized(f"account {user.login} is disabled", code="disabled")
    if host is None and user.token_expires is not None and now >= user.token_expires:
        return Unauthorized(f"the token of {user.login} expired at {_utc(user.token_expires)}: "
                            "ask an admin for a new one (xwpy token rotate)", code="expired")
    return None


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or a host acting for its owner."""

    user: User
    host_id: int | None = None


class Directory:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the coordinator's reactor.seconds: token expiry is read from it
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
        old = self.users.get(u.id)
        if old is not None and old.token_hash != u.token_hash:
            self._user_tokens.pop(old.token_hash, None)
        self.users[u.id] = u
        self._user_tokens[u.token_hash] = u
        self.logins[u.login] = u

    def add_host(self, h: Host) -> None:
        self.hosts[h.id] = h
        self._host_tokens[h.token_hash] = h

    def credentials_changed(self, *, user: User | None = None, host: Host | None = None) -> None:
        """A user's account or token, or a host's token, changed (committed to the catalog): from
        the next request on, the old token is unknown (rotated) or refused (disabled, revoked), and
        the new one is known. Any cache of principals (token -> caller) must be dropped here."""
        if user is not None:
            self.add_user(user)
        if host is not None:
            self.add_host(host)

    def add_app(self, a: App) -> None:
        self.apps[a.id] = a
        self.app_names[a.name] = a

    def principal(self, token: str) -> Principal | None:
        """The caller a token stands for; None for a token never issued (or rotated away). A
        known token that may no longer be used raises :class:`Unauthorized` saying why."""
        if not token or len(token) > 256:
            return None
        digest = tokens.token_hash(token)  # the dictionary holds only hashes: no timing to compare
        user = self._user_tokens.get(digest)
        host = None
        if user is None:
            host = self._host_tokens.get(digest)
            if host is None:
                return None
            user = self.users.get(host.owner_id)
            if user is None:
                return None
        why = refusal(user, host, self.clock())
        if why is not None:
            raise why
        return Principal(user, None if host is None else host.id)

    # -- rights ------------------------------------------------------------------------------------

    def may_use_app(self, user: User, app: App) -> bool:
        """Owners, admins, everyone for public apps, the owner's group for group apps."""
        if user.admin or app.owner_id == user.id or app.access == "public":
            return True
        return app.access == "group" and bool(user.group) and user.group == self.group_of(app.owner_id)

    def share_of(self, user_id: int, shares: dict[str, float], default: float) -> float:
        """A user's weight in the fair share: as ``shares`` names their login, else ``default``."""
        u = self.users.get(user_id)
        return shares.get(u.login, default) if u is not None else default

    def group_of(self, user_id: int) -> str:
        u = self.users.get(user_id)
        return u.group if u else ""
