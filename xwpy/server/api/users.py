"""Users: admins create, disable and enable accounts; everyone can see who they are and rotate
their own token (an admin anyone's)."""

from __future__ import annotations

from xwpy import __version__, protocol
from xwpy.server.api.router import ADMIN, ANON, USER, Api, Ctx


def user_info(u, token: str | None = None) -> dict:
    return protocol.encode(protocol.UserInfo(id=u.id, login=u.login, role=u.role, group=u.group, token=token,
                                             disabled=u.disabled, expires_at=u.token_expires))


def install(api: Api, grid) -> None:
    @api.route("GET", "/ping", ANON, reply=protocol.Ping)
    async def ping(ctx: Ctx):
        return protocol.Ping(service="xwpy", version=__version__, api="v1")

    @api.route("GET", "/users/me", USER, reply=protocol.UserInfo)
    async def me(ctx: Ctx):
        slots, max_jobs, active = grid.room(ctx.user)
        return {**user_info(ctx.user), "slots": slots, "max_jobs": max_jobs, "jobs_in_progress": active}

    @api.route("GET", "/users", ADMIN, reply=protocol.UserList)
    async def list_users(ctx: Ctx):
        return {"users": [user_info(u) for u in grid.directory.users.values()]}

    @api.route("POST", "/users", ADMIN, body=protocol.NewUser, reply=protocol.UserInfo, errors=(409,))
    async def add_user(ctx: Ctx):
        msg = ctx.body
        user, token = await grid.add_user(msg.login, msg.role, msg.group, msg.expires_at)
        return user_info(user, token)

    @api.route("POST", "/users/{login}/disable", ADMIN, reply=protocol.UserInfo)
    async def disable(ctx: Ctx, login: str):
        return user_info(await grid.set_disabled(ctx.user, login, True))

    @api.route("POST", "/users/{login}/enable", ADMIN, reply=protocol.UserInfo)
    async def enable(ctx: Ctx, login: str):
        return user_info(await grid.set_disabled(ctx.user, login, False))

    @api.route("POST", "/users/{login}/token", USER, body=protocol.NewToken, reply=protocol.UserInfo)
    async def rotate(ctx: Ctx, login: str):
        user, token = await grid.rotate_token(ctx.user, login, ctx.body.expires_at)
        return user_info(user, token)
