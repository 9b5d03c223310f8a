"""Users: admins create accounts; everyone can see who they are."""

from __future__ import annotations

from xwpy import __version__, protocol
from xwpy.server.api.router import ADMIN, ANON, USER, Api, Ctx


def user_info(u, token: str | None = None) -> dict:
    return protocol.encode(protocol.UserInfo(id=u.id, login=u.login, role=u.role, group=u.group, token=token))


def install(api: Api, grid) -> None:
    @api.route("GET", "/ping", ANON)
    async def ping(ctx: Ctx):
        return {"service": "xwpy", "version": __version__, "api": "v1"}

    @api.route("GET", "/users/me", USER)
    async def me(ctx: Ctx):
        return user_info(ctx.user)

    @api.route("GET", "/users", ADMIN)
    async def list_users(ctx: Ctx):
        return {"users": [user_info(u) for u in grid.directory.users.values()]}

    @api.route("POST", "/users", ADMIN)
    async def add_user(ctx: Ctx):
        msg = protocol.parse(protocol.NewUser, ctx.json())
        user, token = await grid.add_user(msg.login, msg.role, msg.group)
        return user_info(user, token)
